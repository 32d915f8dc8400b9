import Foundation

/// A thread-safe cache of prepared scans with a byte budget, evicting the least recently
/// used. Each scan is loaded once even when several workers ask for it at the same time
/// (the others wait for the first). Loading is deterministic, so what is cached never
/// changes the patches, only how fast they come.
public final class ScanCache: @unchecked Sendable {
    private let sources: [ScanSource]
    /// The options scans are prepared with (patch size, normalisation, mask handling).
    public let options: PatchSamplingOptions
    private let budget: Int
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var ready: [Int: (scan: PreparedScan, lastUse: Int)] = [:]
    private var loading: Set<Int> = []
    private var clock = 0
    private var bytes = 0
    private var loadCount = 0

    /// - Parameter megabytes: the budget in MB (10⁶ bytes); at least one scan is always kept.
    public init(sources: [ScanSource], options: PatchSamplingOptions, megabytes: Int) {
        self.sources = sources
        self.options = options
        budget = max(0, megabytes) * 1_000_000
    }

    /// The prepared scan at `index`, loading it if needed.
    public func scan(_ index: Int) throws(PatchError) -> PreparedScan {
        condition.lock()
        while true {
            if let entry = ready[index] {
                clock += 1
                ready[index] = (entry.scan, clock)
                condition.unlock()
                return entry.scan
            }
            if !loading.contains(index) { break }
            condition.wait()
        }
        loading.insert(index)
        condition.unlock()

        let result = Result { () throws(PatchError) -> PreparedScan in try PreparedScan.load(sources[index], options: options) }

        condition.lock()
        defer { condition.broadcast(); condition.unlock() }
        loading.remove(index)
        loadCount += 1
        let scan: PreparedScan
        switch result {
        case let .success(s): scan = s
        case let .failure(error): throw error
        }
        clock += 1
        ready[index] = (scan, clock)
        bytes += scan.byteCount
        while bytes > budget, ready.count > 1,
              let oldest = ready.filter({ $0.key != index }).min(by: { $0.value.lastUse < $1.value.lastUse }) {
            bytes -= oldest.value.scan.byteCount
            ready[oldest.key] = nil
        }
        return scan
    }

    public var sourceCount: Int { sources.count }

    /// The source of scan `index`.
    public func source(_ index: Int) -> ScanSource { sources[index] }

    /// Loads `indices` on `workers` threads (keeping what fits the budget), reporting each
    /// finished scan to `progress` (from the worker threads) and returning the failures by index.
    public func preload(_ indices: [Int], workers: Int, progress: @escaping @Sendable (Int) -> Void = { _ in }) -> [Int: PatchError] {
        let lock = NSLock()
        nonisolated(unsafe) var next = 0
        nonisolated(unsafe) var failures: [Int: PatchError] = [:]
        let group = DispatchGroup()
        for _ in 0..<max(1, min(workers, indices.count)) {
            group.enter()
            let thread = Thread { [self] in
                defer { group.leave() }
                while true {
                    lock.lock()
                    guard next < indices.count else { lock.unlock(); return }
                    let index = indices[next]
                    next += 1
                    lock.unlock()
                    do throws(PatchError) { _ = try scan(index) } catch {
                        lock.lock()
                        failures[index] = error
                        lock.unlock()
                    }
                    progress(index)
                }
            }
            thread.stackSize = 4 << 20
            thread.start()
        }
        group.wait()
        return failures
    }

    /// Scan loads performed so far (a scan evicted and needed again counts twice).
    public var loads: Int {
        condition.lock()
        defer { condition.unlock() }
        return loadCount
    }

    /// Bytes of prepared scans held now.
    public var heldBytes: Int {
        condition.lock()
        defer { condition.unlock() }
        return bytes
    }
}
