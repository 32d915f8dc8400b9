import Foundation
import Testing
import TensorCore
import TestSupport
import VolumeIO
@testable import Patches

/// The streaming queue: bounded memory (by counting, not timing), the cache's budget, and
/// errors from scans a block needs.
struct PatchStreamTests {
    /// Options for the memory tests: 8³ patches (2048 B plus 56 B of bookkeeping), 4 visits per
    /// block, 1 MB blocks, so a visit holds at most 118 patches and a block at most 472.
    static func memoryOptions() -> PatchSamplingOptions {
        var options = testOptions(size: [8, 8, 8], patches: 6000)
        options.scansPerBlock = 4
        options.blockMegabytes = 1
        return options
    }

    @Test func queuedPatchesStayBoundedWhateverTheCohortSize() throws {
        try withTemporaryDirectory { directory in
            let options = Self.memoryOptions()
            let depth = 2
            let probe = try PatchSampler(scans: [0], options: options, seed: 1)
            #expect(probe.patchesPerVisit == 118)
            // The bound depends on the options only, never on the number of scans.
            let bound = depth * options.scansPerBlock * probe.patchesPerVisit
            #expect(options.patchesPerEpoch > 5 * bound, "an epoch must be much larger than the bound for the test to mean anything")

            let cohort = try makeCohort(in: directory, count: 48, distinct: 4)
            let maxScanBytes = try (0..<4).map { try PreparedScan.load(cohort.sources[$0], options: options).byteCount }.max()!
            var peaks: [Int: Int] = [:]
            for scanCount in [4, 16, 48] {
                let sources = Array(cohort.sources.prefix(scanCount))
                let sampler = try PatchSampler(scans: Array(0..<scanCount), options: options, seed: 21)
                let plan = sampler.plan(epoch: 0)
                let blockSizes = plan.map { $0.reduce(0) { $0 + $1.count } }
                #expect(blockSizes.allSatisfy { $0 <= options.scansPerBlock * sampler.patchesPerVisit })
                #expect(plan.count > depth + 2, "\(scanCount) scans: the plan must have more blocks than the queue holds")
                for megabytes in [0, 1] {
                    let cache = ScanCache(sources: sources, options: options, megabytes: megabytes)
                    let stream = PatchStream(sampler: sampler, cache: cache, epoch: 0, batchSize: 100, workers: 3, queueDepth: depth)
                    var seen = 0, batches = 0, worstHeld = 0
                    while let batch = try stream.next() {
                        seen += batch.origins.count
                        batches += 1
                        worstHeld = max(worstHeld, cache.heldBytes)
                        #expect(stream.peakQueuedPatches <= bound)
                    }
                    #expect(seen == options.patchesPerEpoch)
                    #expect(batches == stream.batchCount && batches == 60)
                    let peak = stream.peakQueuedPatches
                    // Counted, so never below one whole block (each block is queued once).
                    #expect(peak >= blockSizes.min()!, "\(scanCount) scans: peak \(peak) below one block")
                    #expect(peak <= depth * blockSizes.max()!, "\(scanCount) scans: peak \(peak) above \(depth) blocks")
                    #expect(peak <= bound, "\(scanCount) scans: peak \(peak) above the bound \(bound)")
                    peaks[scanCount] = max(peaks[scanCount] ?? 0, peak)
                    // The cache keeps to its budget plus the scan being added.
                    #expect(worstHeld <= megabytes * 1_000_000 + maxScanBytes,
                            "\(scanCount) scans, \(megabytes) MB: held \(worstHeld) bytes")
                    #expect(cache.heldBytes <= megabytes * 1_000_000 + maxScanBytes)
                    #expect(cache.loads >= scanCount, "every scan is loaded at least once")
                }
            }
            // Twelve times the scans, no more queued patches than the bound allows; the peak
            // does not grow with the cohort.
            #expect(peaks[48]! <= bound && peaks[16]! <= bound && peaks[4]! <= bound)
            #expect(peaks[48]! <= depth * options.scansPerBlock * probe.patchesPerVisit)
        }
    }

    @Test func cacheBudgetEvictsLeastRecentlyUsed() throws {
        try withTemporaryDirectory { directory in
            let options = testOptions(size: [3, 3, 3])
            let cohort = try makeCohort(in: directory, count: 6, distinct: 3)
            let bytes = try (0..<6).map { try PreparedScan.load(cohort.sources[$0], options: options).byteCount }
            // Unlimited: everything stays, each loaded once.
            let big = ScanCache(sources: cohort.sources, options: options, megabytes: 512)
            for round in 0..<2 { for i in 0..<6 { _ = try big.scan(i) }; #expect(big.loads == 6, "round \(round)") }
            #expect(big.heldBytes == bytes.reduce(0, +))
            // Zero budget: only the latest scan is kept, so revisiting reloads.
            let none = ScanCache(sources: cohort.sources, options: options, megabytes: 0)
            for i in 0..<6 {
                _ = try none.scan(i)
                #expect(none.heldBytes == bytes[i], "a zero budget keeps exactly the scan just loaded")
            }
            _ = try none.scan(5)
            #expect(none.loads == 6, "the most recent scan is still held")
            _ = try none.scan(0)
            #expect(none.loads == 7, "an evicted scan is loaded again")
            // A reloaded scan is identical.
            let again = try none.scan(0), first = try big.scan(0)
            #expect(again.data == first.data && again.origins == first.origins)
        }
    }

    @Test func scansAreLoadedOnceWithManyWorkers() throws {
        try withTemporaryDirectory { directory in
            let cohort = try makeCohort(in: directory, count: 5)
            // 8³ patches (2048 B), 8 visits of at most 61 patches per 1 MB block: each scan's 400
            // patches take 7 visits, spread over several blocks cut on several threads at once.
            var options = testOptions(size: [8, 8, 8], patches: 2000)
            options.scansPerBlock = 8
            options.blockMegabytes = 1
            let sampler = try PatchSampler(scans: Array(0..<5), options: options, seed: 3)
            let cache = ScanCache(sources: cohort.sources, options: options, megabytes: 512)
            let stream = PatchStream(sampler: sampler, cache: cache, epoch: 0, batchSize: 50, workers: 4, queueDepth: 4)
            #expect(sampler.plan(epoch: 0).flatMap { $0 }.count == 35)
            let batches = try drain(stream)
            #expect(batches.reduce(0) { $0 + $1.origins.count } == 2000)
            #expect(cache.loads == 5, "each scan loaded once, got \(cache.loads) loads")
            let failures = cache.preload(Array(0..<5), workers: 3)
            #expect(failures.isEmpty)
            #expect(cache.loads == 5, "preload of cached scans loads nothing")
        }
    }

    @Test func streamReportsTheBadScanItNeeds() throws {
        try withTemporaryDirectory { directory in
            var cohort = try makeCohort(in: directory, count: 4)
            let missing = directory.appendingPathComponent("gone_T1w.nii")
            cohort.sources[2].image = missing
            let options = testOptions(size: [4, 4, 4], patches: 80)
            let sampler = try PatchSampler(scans: Array(0..<4), options: options, seed: 2)
            let cache = ScanCache(sources: cohort.sources, options: options, megabytes: 64)
            let stream = PatchStream(sampler: sampler, cache: cache, epoch: 0, batchSize: 8, workers: 2, queueDepth: 2)
            var delivered = 0
            var caught: PatchError?
            do throws(PatchError) {
                while let batch = try stream.next() { delivered += batch.origins.count }
            } catch {
                caught = error
            }
            guard case let .badScan(path, line, reason)? = caught else {
                Issue.record("expected PatchError.badScan, got \(String(describing: caught)) after \(delivered) patches")
                return
            }
            #expect(path == missing.path)
            #expect(line == 4)
            #expect(!reason.isEmpty)
            #expect(delivered < 80)
            #expect(caught?.description.contains("manifest line 4") == true)
        }
    }

    /// After `next()` has thrown, "the stream is finished": a further call must return (nil, or
    /// the error again), not wait for a block no worker will ever deliver.
    @Test func nextAfterAnErrorReturnsInsteadOfHanging() throws {
        try withTemporaryDirectory { directory in
            var cohort = try makeCohort(in: directory, count: 3)
            cohort.sources[0].image = directory.appendingPathComponent("absent.nii")
            cohort.sources[1].image = cohort.sources[0].image
            cohort.sources[2].image = cohort.sources[0].image
            let options = testOptions(size: [4, 4, 4], patches: 30)
            let sampler = try PatchSampler(scans: Array(0..<3), options: options, seed: 2)
            let cache = ScanCache(sources: cohort.sources, options: options, megabytes: 64)
            let stream = PatchStream(sampler: sampler, cache: cache, epoch: 0, batchSize: 8, workers: 1, queueDepth: 1)
            let first = patchError { _ = try stream.next() }
            #expect(first != nil, "every scan is missing, so the first batch fails")

            // The second call runs on its own thread so a hang fails this test instead of the run.
            nonisolated(unsafe) let shared = stream
            let finished = DispatchSemaphore(value: 0)
            let outcome = OSAllocatedResult()
            let thread = Thread {
                let result = patchError { _ = try shared.next() }
                outcome.set(result == nil ? "returned" : "threw \(result!)")
                finished.signal()
            }
            thread.start()
            // Generous: a finished stream answers at once; this only catches a permanent wait.
            let returned = finished.wait(timeout: .now() + 5) == .success
            #expect(returned, "PatchStream.next() after an error blocks forever (waits for a block that was already taken)")
            if returned { #expect(outcome.get() != nil) }
        }
    }
}

/// A string shared with a helper thread under a lock.
final class OSAllocatedResult: @unchecked Sendable {
    private let lock = NSLock()
    private var value: String?
    func set(_ newValue: String) { lock.lock(); value = newValue; lock.unlock() }
    func get() -> String? { lock.lock(); defer { lock.unlock() }; return value }
}
