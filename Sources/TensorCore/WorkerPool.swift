import Foundation

/// A fixed set of helper threads that run one parallel region at a time, with worker `w`
/// always executing `body(w)` (worker 0 on the calling thread).
///
/// Why not `DispatchQueue.concurrentPerform`: on Linux it sometimes runs both iterations of a
/// two-way split on the calling thread, one after the other, because no pool thread is awake
/// yet (measured: 5 ms halves taking 8 ms or 17 ms at random, and whole benchmark runs at
/// half speed). Here the helpers exist for the life of the process and sleep on a condition
/// variable between regions, so every region gets every core.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let finished = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // All below are guarded by `mutex`.
    private var generation = 0
    private var job: ((Int) -> Void)?
    private var participants = 0
    private var remaining = 0
    private var helpers = 0
    private var busy = false

    private init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        pthread_cond_init(finished, nil)
    }

    /// Runs `body(0..<workers)` concurrently and returns when all have finished. A call made
    /// while a region is already running (from inside a worker) runs its workers one after
    /// another on the calling thread, which keeps the same static split.
    func run(_ workers: Int, _ body: (Int) -> Void) {
        pthread_mutex_lock(mutex)
        if busy || workers <= 1 {
            pthread_mutex_unlock(mutex)
            for worker in 0..<workers { body(worker) }
            return
        }
        busy = true
        while helpers < workers - 1 {
            helpers += 1
            // The helper must wait for generations after this one, even if it first takes
            // the lock after the region below has been published.
            let (index, seen) = (helpers, generation)
            let thread = Thread { [self] in helperLoop(index, seen: seen) }
            thread.stackSize = 8 << 20
            thread.start()
        }
        withoutActuallyEscaping(body) { body in
            job = body
            participants = workers
            remaining = workers - 1
            generation &+= 1
            pthread_cond_broadcast(wake)
            pthread_mutex_unlock(mutex)

            body(0)

            pthread_mutex_lock(mutex)
            while remaining > 0 { pthread_cond_wait(finished, mutex) }
            job = nil
            busy = false
            pthread_mutex_unlock(mutex)
        }
    }

    private func helperLoop(_ index: Int, seen initial: Int) {
        var seen = initial
        pthread_mutex_lock(mutex)
        while true {
            while generation == seen { pthread_cond_wait(wake, mutex) }
            seen = generation
            guard index < participants, let body = job else { continue }
            pthread_mutex_unlock(mutex)
            body(index)
            pthread_mutex_lock(mutex)
            remaining -= 1
            if remaining == 0 { pthread_cond_signal(finished) }
        }
    }
}
