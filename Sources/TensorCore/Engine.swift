import COpenBLAS
import Foundation

/// Process-wide compute settings shared by every kernel: how many worker threads the
/// workbench's parallel loops (and split GEMMs) use, and how OpenBLAS and the allocator are set
/// up around them.
public enum Engine {
    nonisolated(unsafe) private static var configuredThreads = 0

    /// Cores available to this process: its CPU affinity on Linux (so `taskset -c 0` gives 1,
    /// read once from `Cpus_allowed_list` in /proc/self/status), else the active processor count.
    public static let availableCores: Int = {
        let fallback = max(1, ProcessInfo.processInfo.activeProcessorCount)
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") })
        else { return fallback }
        // e.g. "0-3,6,8-9"
        var count = 0
        for part in line.dropFirst("Cpus_allowed_list:".count).split(separator: ",") {
            let bounds = part.split(separator: "-").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            if bounds.count == 2, bounds[1] >= bounds[0] { count += bounds[1] - bounds[0] + 1 }
            if bounds.count == 1 { count += 1 }
        }
        return count > 0 ? count : fallback
    }()

    /// Worker threads used by kernels; defaults to the cores available.
    public static var threads: Int {
        configuredThreads > 0 ? configuredThreads : availableCores
    }

    /// Sets the thread count for our kernels (and for the LAPACK calls that use OpenBLAS's
    /// own threads). A process-wide setting: call it once at start-up, before compute starts
    /// (results are reproducible for a given count, so it must not change mid-run).
    public static func setThreads(_ count: Int) {
        precondition(count >= 1, "thread count must be at least 1, got \(count)")
        configuredThreads = count
    }

    /// Runs `body` with OpenBLAS's internal thread pool at `threads` (for LAPACK routines,
    /// which parallelise inside), then returns it to one thread: everywhere else the
    /// workbench splits GEMMs across its own workers (see `BLAS.parallelSgemm`). The pool size
    /// is global to OpenBLAS: call this from the coordinating thread, never from inside one of
    /// the workbench's parallel regions (concurrent callers are serialised).
    public static func withLibraryThreads<R>(_ body: () throws -> R) rethrows -> R {
        _ = singleThreadedLibrary
        // The pool size is global to OpenBLAS: threads that run scans side by side (e.g.
        // `adwb preprocess --workers 2`, each fitting a bias field) take turns here instead
        // of resetting it under each other.
        libraryLock.lock()
        defer { libraryLock.unlock() }
        openblas_set_num_threads(Int32(threads))
        defer { openblas_set_num_threads(1) }
        return try body()
    }

    /// Held while OpenBLAS runs multi-threaded (recursive: LAPACK wrappers may nest).
    private static let libraryLock = NSRecursiveLock()

    /// Re-executes the current program with `OPENBLAS_NUM_THREADS=1` unless that variable is
    /// already set; returns normally (doing nothing) when it is set or the exec fails.
    ///
    /// OpenBLAS starts one thread per core when it is loaded, before `main` runs, and each
    /// spins (`sched_yield`) for about 2^28 cycles before sleeping. `setThreads`/the workers
    /// keep OpenBLAS single-threaded, but those first spinning threads still take a core for
    /// the first few hundred milliseconds (measured: the first benchmark kernel ran at half
    /// speed). With the variable set at load, OpenBLAS creates no pool; `withLibraryThreads`
    /// still grows one on demand for LAPACK. Call it first thing in `main`.
    public static func relaunchWithSingleThreadedBLASIfNeeded() {
        #if os(Linux)
        guard getenv("OPENBLAS_NUM_THREADS") == nil else { return }
        setenv("OPENBLAS_NUM_THREADS", "1", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        #endif
    }

    /// Tunes glibc's allocator for large, short-lived tensors: by default every block over
    /// 32 MiB is a fresh `mmap`, page-faulted in 4 KiB pages on first touch and unmapped when
    /// freed, which costs tens of milliseconds per activation of a volume batch on each
    /// training step. Serving them from the heap and never trimming it reuses the pages
    /// (the same settings PyTorch's tuned benchmark gives through `MALLOC_*_` variables).
    /// Called once by the `adwb` tool at start-up.
    public static func tuneAllocatorForLargeTensors() {
        #if os(Linux)
        // glibc's manual caps the threshold at 32 MiB (glibc 2.36 accepts more); where a
        // glibc refuses it, turning mmap off for malloc has the same effect.
        if mallopt(M_MMAP_THRESHOLD, Int32.max) == 0 { _ = mallopt(M_MMAP_MAX, 0) }
        _ = mallopt(M_TRIM_THRESHOLD, Int32.max)
        _ = mallopt(M_TOP_PAD, 256 << 20)
        #endif
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
    /// given thread count. OpenBLAS runs single-threaded inside each worker.
    public static func parallelWorkers(_ workers: Int, _ body: (Int) -> Void) {
        _ = singleThreadedLibrary
        // Kernels hand each worker disjoint memory or per-worker state.
        WorkerPool.shared.run(workers, body)
    }

    /// OpenBLAS starts with one thread per core; the workbench runs it single-threaded
    /// inside its own workers. Evaluated once, on the first parallel call.
    @usableFromInline static let singleThreadedLibrary: Void = openblas_set_num_threads(1)

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
