import COpenBLAS
import Dispatch
import Foundation

/// Process-wide compute settings shared by every kernel: how many threads the workbench's
/// own parallel loops use, and how many OpenBLAS uses for large matrix products.
public enum Engine {
    nonisolated(unsafe) private static var configuredThreads = 0

    /// Cores available to this process (respects CPU affinity, e.g. `taskset`).
    public static var availableCores: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// Worker threads used by kernels; defaults to the cores available.
    public static var threads: Int {
        configuredThreads > 0 ? configuredThreads : availableCores
    }

    /// Sets the thread count for our kernels and for OpenBLAS. Call before compute starts.
    public static func setThreads(_ count: Int) {
        precondition(count >= 1, "thread count must be at least 1, got \(count)")
        configuredThreads = count
        openblas_set_num_threads(Int32(count))
    }

    /// The OpenBLAS build in use (for example "OpenBLAS 0.3.21 DYNAMIC_ARCH ... Cooperlake").
    public static var blasDescription: String {
        let config = openblas_get_config().map { String(cString: $0) } ?? "OpenBLAS"
        let core = openblas_get_corename().map { String(cString: $0) } ?? "?"
        return "\(config.trimmingCharacters(in: .whitespaces)) (\(core))"
    }

    /// Runs `body(worker)` for `worker` in `0..<workers` on the kernel thread pool.
    ///
    /// Work is split statically (worker `w` always owns the same items) so that any
    /// reduction done per worker and then combined in worker order is bit-reproducible for a
    /// given thread count. OpenBLAS is switched to one thread inside, because the workers
    /// already occupy every core and nested BLAS threads would oversubscribe them.
    public static func parallelWorkers(_ workers: Int, _ body: (Int) -> Void) {
        if workers <= 1 {
            body(0)
            return
        }
        let blasThreads = openblas_get_num_threads()
        openblas_set_num_threads(1)
        // concurrentPerform returns only after every iteration has finished, so `body` never
        // outlives this call; kernels hand each worker disjoint memory or per-worker state.
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: workers, execute: unsafeBitCast(body, to: (@Sendable (Int) -> Void).self))
        }
        openblas_set_num_threads(blasThreads)
    }

    /// Splits `0..<count` into `threads` contiguous ranges (at most `count` of them) and runs
    /// `body(range)` for each in parallel.
    @inlinable
    public static func parallelRanges(_ count: Int, minimumPerWorker: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let workers = min(threads, max(1, count / max(1, minimumPerWorker)))
        parallelWorkers(workers) { worker in
            let lower = count * worker / workers
            let upper = count * (worker + 1) / workers
            if lower < upper { body(lower..<upper) }
        }
    }
}
