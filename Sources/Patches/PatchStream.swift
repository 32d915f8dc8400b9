import Foundation
import TensorCore

/// A minibatch of patches: `[n, 1, d, h, w]` (one channel) and where each came from.
public struct PatchBatch: Sendable {
    public var patches: Tensor
    public var origins: [PatchOrigin]
}

/// Streams one epoch of minibatches from a `PatchSampler`.
///
/// Worker threads cut blocks ahead of the consumer into a bounded queue (at most
/// `queueDepth` blocks waiting), so memory stays at a few blocks whatever the cohort's size.
/// Blocks are consumed in plan order, so the minibatches are the same for any number of
/// workers and any timing. Batches are consecutive runs of `batchSize` patches of the
/// epoch's sequence; the last one may be smaller.
public final class PatchStream {
    public let sampler: PatchSampler
    public let epoch: Int
    public let batchSize: Int
    /// Minibatches in the whole epoch.
    public let batchCount: Int
    private let shared: SharedQueue
    private var current: PatchBlock?
    private var currentOffset = 0
    private var nextBlock: Int
    private var emitted: Int
    /// The error that ended the stream, thrown again by later calls.
    private var failure: PatchError?

    /// - Parameters:
    ///   - skipBatches: minibatches to leave out at the start (to resume mid-epoch): only the
    ///     blocks from the first needed one are cut.
    ///   - workers: threads cutting blocks.
    ///   - queueDepth: blocks that may wait ready; bounds memory.
    public init(sampler: PatchSampler, cache: ScanCache, epoch: Int, batchSize: Int, skipBatches: Int = 0,
                workers: Int = 2, queueDepth: Int = 4) {
        precondition(batchSize >= 1 && skipBatches >= 0 && workers >= 1 && queueDepth >= 1, "PatchStream: invalid batch size, skip, workers or depth")
        self.sampler = sampler
        self.epoch = epoch
        self.batchSize = batchSize
        let total = sampler.options.patchesPerEpoch
        batchCount = (total + batchSize - 1) / batchSize
        let plan = sampler.plan(epoch: epoch)
        // Find the block holding the first patch wanted.
        var skipPatches = min(min(skipBatches, batchCount) * batchSize, total)
        var first = 0
        while first < plan.count {
            let size = plan[first].reduce(0) { $0 + $1.count }
            if skipPatches < size { break }
            skipPatches -= size
            first += 1
        }
        nextBlock = first
        emitted = min(skipBatches, batchCount)
        shared = SharedQueue(plan: plan, start: first, depth: queueDepth)
        currentOffset = skipPatches
        let (sampler, shared) = (sampler, shared)
        for _ in 0..<min(workers, max(1, plan.count - first)) {
            let thread = Thread {
                while let index = shared.claim() {
                    let result = Result { () throws(PatchError) -> PatchBlock in
                        try sampler.block(plan[index], epoch: epoch, index: index, cache: cache)
                    }
                    shared.deliver(index, result)
                }
            }
            thread.stackSize = 4 << 20
            thread.start()
        }
    }

    deinit { shared.cancel() }

    /// The most patches that were ever cut and waiting in the queue at once (the memory the
    /// stream holds beyond the minibatch being assembled and the block it comes from).
    public var peakQueuedPatches: Int { shared.peakQueuedPatches }

    /// The next minibatch, or `nil` at the end of the epoch.
    /// - Throws: `PatchError` from the scan a block needed; the stream is finished then and
    ///   every later call throws the same error.
    public func next() throws(PatchError) -> PatchBatch? {
        if let failure { throw failure }
        guard emitted < batchCount else { return nil }
        let volume = sampler.options.patchVolume
        let size = sampler.options.size
        var values: [Float] = []
        var origins: [PatchOrigin] = []
        let wanted = min(batchSize, sampler.options.patchesPerEpoch - emitted * batchSize)
        values.reserveCapacity(wanted * volume)
        while origins.count < wanted {
            if current == nil {
                guard nextBlock < shared.blockCount else { break }
                switch shared.take(nextBlock) {
                case let .success(block): current = block
                case let .failure(error):
                    shared.cancel()
                    failure = error
                    throw error
                }
                nextBlock += 1
            }
            let block = current!
            let take = min(wanted - origins.count, block.origins.count - currentOffset)
            values.append(contentsOf: block.patches[(currentOffset * volume)..<((currentOffset + take) * volume)])
            origins.append(contentsOf: block.origins[currentOffset..<(currentOffset + take)])
            currentOffset += take
            if currentOffset >= block.origins.count { current = nil; currentOffset = 0 }
        }
        emitted += 1
        let tensor = try! Tensor(shape: [origins.count, 1] + size, scalars: values)
        return PatchBatch(patches: tensor, origins: origins)
    }

    /// The ordered, bounded hand-over between the worker threads and the consumer.
    private final class SharedQueue: @unchecked Sendable {
        let blockCount: Int
        private let depth: Int
        private let condition = NSCondition()
        private var nextToClaim: Int
        private var nextToTake: Int
        private var results: [Int: Result<PatchBlock, PatchError>] = [:]
        private var cancelled = false
        private var queuedPatches = 0
        private var peak = 0

        init(plan: [[PatchSampler.Visit]], start: Int, depth: Int) {
            blockCount = plan.count
            self.depth = depth
            (nextToClaim, nextToTake) = (start, start)
        }

        /// The next block a worker should cut, waiting while the queue is full; nil when done.
        func claim() -> Int? {
            condition.lock()
            defer { condition.unlock() }
            while !cancelled && nextToClaim < blockCount && nextToClaim >= nextToTake + depth { condition.wait() }
            guard !cancelled, nextToClaim < blockCount else { return nil }
            nextToClaim += 1
            return nextToClaim - 1
        }

        var peakQueuedPatches: Int {
            condition.lock()
            defer { condition.unlock() }
            return peak
        }

        func deliver(_ index: Int, _ result: Result<PatchBlock, PatchError>) {
            condition.lock()
            results[index] = result
            queuedPatches += (try? result.get().origins.count) ?? 0
            peak = max(peak, queuedPatches)
            condition.broadcast()
            condition.unlock()
        }

        /// Waits for block `index` (always the next in order) and removes it from the queue.
        func take(_ index: Int) -> Result<PatchBlock, PatchError> {
            condition.lock()
            defer { condition.unlock() }
            while results[index] == nil { condition.wait() }
            nextToTake = index + 1
            condition.broadcast()
            let result = results.removeValue(forKey: index)!
            queuedPatches -= (try? result.get().origins.count) ?? 0
            return result
        }

        func cancel() {
            condition.lock()
            cancelled = true
            condition.broadcast()
            condition.unlock()
        }
    }
}
