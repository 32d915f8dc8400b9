import Foundation
import Testing
import TensorCore
import TestSupport
import VolumeIO
@testable import Patches

/// Where patches come from, how many each scan gives, and reproducibility.
struct PatchSamplerTests {
    static func key(_ origin: PatchOrigin) -> [Int] { [origin.scan] + origin.voxel.array + origin.flipped.map { $0 ? 1 : 0 } }

    static func sameBatches(_ a: [PatchBatch], _ b: [PatchBatch]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { x, y in
            x.origins == y.origins && x.patches.shape == y.patches.shape && x.patches.scalars == y.patches.scalars
        }
    }

    static func augmented(_ options: PatchSamplingOptions) -> PatchSamplingOptions {
        var options = options
        options.augmentation.flipProbability = 0.3
        options.augmentation.maxShift = 2
        options.augmentation.intensityScale = 0.1
        options.augmentation.intensityOffset = 0.2
        return options
    }

    // MARK: Centring

    @Test func everyPatchIsCentredInTheMaskAndInsideTheVolume() throws {
        try withTemporaryDirectory { directory in
            let cohort = try makeCohort(in: directory, count: 3)
            for size in [[5, 6, 4], [7, 7, 7], [2, 3, 8]] {
                let options = testOptions(size: size, patches: 600)
                let all = patches(of: try epochBatches(cohort.sources, options: options), volume: options.patchVolume)
                #expect(all.count == 600)
                for (origin, _) in all {
                    let phantom = cohort.phantoms[origin.scan]
                    let o = origin.voxel.array
                    let centre = (0..<3).map { o[$0] + size[$0] / 2 }
                    #expect((0..<3).allSatisfy { o[$0] >= 0 && o[$0] + size[$0] <= phantom.shape[$0] },
                            "patch at \(o) of size \(size) leaves the \(phantom.shape) volume")
                    #expect(phantom.mask[phantom.index(centre)], "centre \(centre) of scan \(origin.scan) not in the mask")
                }
                // Scan 1's mask touches the volume's faces: centres near them must be absent
                // (no patch fits) but centres elsewhere in its mask are used.
                let fromEdgeScan = all.filter { $0.origin.scan == 1 }
                #expect(fromEdgeScan.count == 200)
                let edge = cohort.phantoms[1]
                let onFace = (0..<edge.voxelCount).contains { i in
                    edge.mask[i] && (i / (edge.shape[1] * edge.shape[2]) == 0 || i % edge.shape[2] == edge.shape[2] - 1)
                }
                #expect(onFace, "fixture: scan 1's mask should touch the volume's faces")
                // Patches are spread over many places.
                #expect(Set(all.map { Self.key($0.origin) }).count > 300, "size \(size): too few distinct patches")
            }
        }
    }

    @Test func withoutMaskCentresAreInTheForeground() throws {
        try withTemporaryDirectory { directory in
            let cohort = try makeCohort(in: directory, count: 2, masks: false)
            for threshold in [0.1, 0.6] {
                var options = testOptions(size: [5, 5, 3], patches: 400)
                options.foregroundThreshold = threshold
                let foregrounds = cohort.phantoms.map { referenceForeground($0.values, threshold: threshold) }
                let all = patches(of: try epochBatches(cohort.sources, options: options), volume: options.patchVolume)
                #expect(all.count == 400)
                let bad = all.filter { !isValidPatch(origin: $0.origin.voxel, size: options.size, mask: foregrounds[$0.origin.scan],
                                                    shape: cohort.phantoms[$0.origin.scan].shape) }
                #expect(bad.isEmpty, "threshold \(threshold): \(bad.count) patches not centred in the foreground")
            }
        }
    }

    @Test func shiftedPatchesStayCentredInTheMask() throws {
        try withTemporaryDirectory { directory in
            let cohort = try makeCohort(in: directory, count: 3)
            var options = testOptions(size: [5, 4, 6], patches: 400)
            options.augmentation.maxShift = 4
            let shifted = patches(of: try epochBatches(cohort.sources, options: options, seed: 9), volume: options.patchVolume)
            var plain = options
            plain.augmentation.maxShift = 0
            let unshifted = patches(of: try epochBatches(cohort.sources, options: plain, seed: 9), volume: options.patchVolume)
            #expect(shifted.count == 400 && unshifted.count == 400)
            let normalised = cohort.phantoms.map { referenceNormalised($0.values, mask: $0.mask, options: options) }
            var moved = 0, worst: Float = 0
            for (s, u) in zip(shifted, unshifted) {
                let phantom = cohort.phantoms[s.origin.scan]
                #expect(isValidPatch(origin: s.origin.voxel, size: options.size, mask: phantom.mask, shape: phantom.shape),
                        "shifted patch \(s.origin.voxel) not centred in the mask")
                worst = max(worst, worstExcess(s.values, referencePatch(normalised[s.origin.scan], shape: phantom.shape,
                                                                        origin: s.origin.voxel, size: options.size)))
                // Same draw, then a shift of at most maxShift per axis.
                #expect(s.origin.scan == u.origin.scan)
                let delta = (0..<3).map { s.origin.voxel.array[$0] - u.origin.voxel.array[$0] }
                #expect(delta.allSatisfy { abs($0) <= 4 }, "shift \(delta) exceeds maxShift 4")
                if delta != [0, 0, 0] { moved += 1 }
            }
            #expect(worst == 0, "shifted patch values differ from the source at their origin by \(worst)")
            #expect(moved > 200, "only \(moved) of 400 patches shifted")
        }
    }

    @Test func intensityAugmentationStaysWithinItsBounds() throws {
        try withTemporaryDirectory { directory in
            let cohort = try makeCohort(in: directory, count: 2)
            var options = testOptions(size: [4, 4, 4], patches: 300)
            options.augmentation.intensityScale = 0.25
            options.augmentation.intensityOffset = 0.4
            let all = patches(of: try epochBatches(cohort.sources, options: options), volume: options.patchVolume)
            let normalised = cohort.phantoms.map { referenceNormalised($0.values, mask: $0.mask, options: options) }
            var scales: [Double] = [], offsets: [Double] = []
            for (origin, values) in all {
                // a = r·scale + offset: least squares over the patch's 64 values.
                let r = referencePatch(normalised[origin.scan], shape: cohort.phantoms[0].shape, origin: origin.voxel, size: options.size)
                    .map { Double($0) }
                let a = values.map { Double($0) }
                let (mr, ma) = (r.reduce(0, +) / Double(r.count), a.reduce(0, +) / Double(a.count))
                let covariance = zip(r, a).reduce(0) { $0 + ($1.0 - mr) * ($1.1 - ma) }
                let variance = r.reduce(0) { $0 + ($1 - mr) * ($1 - mr) }
                guard variance > 1e-3 else { continue }
                let scale = covariance / variance
                let offset = ma - scale * mr
                let residual = zip(r, a).reduce(0.0) { max($0, abs($1.1 - (scale * $1.0 + offset))) }
                #expect(residual < 1e-4, "patch is not an affine map of its source block (residual \(residual))")
                #expect(scale >= 0.75 - 1e-4 && scale <= 1.25 + 1e-4, "scale \(scale) outside 1 ± 0.25")
                #expect(abs(offset) <= 0.4 + 1e-4, "offset \(offset) outside ± 0.4")
                scales.append(scale)
                offsets.append(offset)
            }
            #expect(scales.count > 250)
            // Both are actually drawn, over most of their range.
            #expect((scales.min() ?? 1) < 0.85 && (scales.max() ?? 1) > 1.15, "scales span \(scales.min() ?? 0)...\(scales.max() ?? 0)")
            #expect((offsets.min() ?? 0) < -0.3 && (offsets.max() ?? 0) > 0.3, "offsets span \(offsets.min() ?? 0)...\(offsets.max() ?? 0)")
        }
    }

    // MARK: Determinism

    @Test func sameSeedSameBatchesWhateverWorkersDepthAndCache() throws {
        try withTemporaryDirectory { directory in
            let cohort = try makeCohort(in: directory, count: 5)
            var options = Self.augmented(testOptions(size: [4, 5, 3], patches: 230))
            options.scansPerBlock = 2
            let reference = try epochBatches(cohort.sources, options: options, seed: 11, epoch: 1, batchSize: 17, workers: 1,
                                             queueDepth: 1, cacheMegabytes: 512)
            #expect(reference.count == 14)
            #expect(reference.last?.origins.count == 230 - 13 * 17)
            for (workers, depth, megabytes) in [(1, 1, 512), (2, 1, 0), (2, 4, 512), (4, 2, 0), (4, 8, 512), (3, 3, 0)] {
                let other = try epochBatches(cohort.sources, options: options, seed: 11, epoch: 1, batchSize: 17, workers: workers,
                                             queueDepth: depth, cacheMegabytes: megabytes)
                #expect(Self.sameBatches(reference, other), "workers \(workers), depth \(depth), cache \(megabytes) MB changed the batches")
            }
        }
    }

    @Test func seedAndEpochChangeThePatches() throws {
        try withTemporaryDirectory { directory in
            let cohort = try makeCohort(in: directory, count: 3)
            let options = Self.augmented(testOptions(size: [5, 5, 5], patches: 90))
            let a = try epochBatches(cohort.sources, options: options, seed: 1)
            let b = try epochBatches(cohort.sources, options: options, seed: 2)
            let c = try epochBatches(cohort.sources, options: options, seed: 1, epoch: 1)
            #expect(Self.sameBatches(a, try epochBatches(cohort.sources, options: options, seed: 1)))
            #expect(!Self.sameBatches(a, b))
            #expect(!Self.sameBatches(a, c))
            let (ka, kb) = (a.flatMap(\.origins).map(Self.key), b.flatMap(\.origins).map(Self.key))
            let equalPositions = zip(ka, kb).filter { $0.0 == $0.1 }.count
            #expect(equalPositions < 10, "seeds 1 and 2 agree on \(equalPositions) of 90 patches")
        }
    }

    @Test func patchSequenceDoesNotDependOnBatchSize() throws {
        try withTemporaryDirectory { directory in
            let cohort = try makeCohort(in: directory, count: 4)
            let options = Self.augmented(testOptions(size: [3, 4, 5], patches: 101))
            let runs = try [1, 7, 32, 101, 500].map { batchSize -> [PatchBatch] in
                let batches = try epochBatches(cohort.sources, options: options, batchSize: batchSize)
                #expect(batches.count == (101 + batchSize - 1) / batchSize)
                #expect(batches.dropLast().allSatisfy { $0.origins.count == batchSize })
                return batches
            }
            let sequences = runs.map { patches(of: $0, volume: options.patchVolume) }
            for sequence in sequences.dropFirst() {
                #expect(sequence.map(\.origin) == sequences[0].map(\.origin))
                #expect(sequence.flatMap(\.values) == sequences[0].flatMap(\.values))
            }
        }
    }

    // MARK: Balance

    @Test(arguments: [(103, 7, 10), (48, 6, 48), (5, 7, 2), (1, 1, 1), (250, 3, 64)])
    func epochSharesPatchesEquallyAmongScans(total: Int, scanCount: Int, batchSize: Int) throws {
        try withTemporaryDirectory { directory in
            let cohort = try makeCohort(in: directory, count: scanCount + 2, distinct: 3)
            // The sampler draws from a subset of the cache's sources.
            let scans = Array((0..<(scanCount + 2)).filter { $0 != 1 }.prefix(scanCount))
            var options = testOptions(size: [4, 4, 4], patches: total)
            options.scansPerBlock = 3
            let batches = try epochBatches(cohort.sources, options: options, scans: scans, batchSize: batchSize)
            let expectedBatches = (total + batchSize - 1) / batchSize
            #expect(batches.count == expectedBatches)
            #expect(batches.dropLast().allSatisfy { $0.origins.count == batchSize })
            #expect(batches.last?.origins.count == total - (expectedBatches - 1) * batchSize)
            let origins = batches.flatMap(\.origins)
            #expect(origins.count == total)
            var counts: [Int: Int] = [:]
            for origin in origins { counts[origin.scan, default: 0] += 1 }
            #expect(Set(counts.keys).isSubset(of: Set(scans)), "patches from a scan outside the sampler's")
            let (low, high) = (total / scanCount, (total + scanCount - 1) / scanCount)
            for scan in scans {
                let n = counts[scan] ?? 0
                #expect(n == low || n == high, "scan \(scan) gave \(n) patches, not \(low) or \(high)")
            }
            #expect(scans.filter { (counts[$0] ?? 0) == high && high != low }.count == total % scanCount)
        }
    }

    @Test func planCoversTheQuotasWithinTheVisitCap() throws {
        var options = testOptions(size: [10, 10, 10], patches: 1000)  // 4000 B per patch
        options.scansPerBlock = 4
        options.blockMegabytes = 1  // 61 patches per visit (values and bookkeeping)
        let sampler = try PatchSampler(scans: [3, 5, 8], options: options, seed: 3)
        #expect(sampler.patchesPerVisit == 1_000_000 / 4 / (4000 + PatchSampler.bookkeepingBytes))
        #expect(sampler.patchesPerVisit == 61)
        for epoch in 0..<3 {
            let plan = sampler.plan(epoch: epoch)
            let visits = plan.flatMap { $0 }
            #expect(plan.dropLast().allSatisfy { $0.count == 4 } && (plan.last?.count ?? 0) <= 4)
            #expect(visits.allSatisfy { $0.count >= 1 && $0.count <= sampler.patchesPerVisit })
            #expect(visits.reduce(0) { $0 + $1.count } == 1000)
            for scan in [3, 5, 8] {
                let mine = visits.filter { $0.scan == scan }
                let total = mine.reduce(0) { $0 + $1.count }
                #expect(total == 333 || total == 334)
                #expect(mine.map(\.ordinal).sorted() == Array(0..<mine.count), "visit ordinals of scan \(scan)")
            }
            #expect(sampler.plan(epoch: epoch) == plan, "plan must be deterministic")
        }
        #expect(sampler.plan(epoch: 0) != sampler.plan(epoch: 1))
        // Which scan gets the extra patch is drawn per epoch.
        var lucky: [[Int]] = []
        for epoch in 0..<12 {
            var totals: [Int: Int] = [:]
            for visit in sampler.plan(epoch: epoch).joined() { totals[visit.scan, default: 0] += visit.count }
            lucky.append(totals.filter { $0.value == 334 }.map { $0.key })
        }
        #expect(lucky.allSatisfy { $0.count == 1 })
        #expect(Set(lucky.map { $0.first ?? -1 }).count > 1, "the extra patch always goes to the same scan")
    }

    @Test func fixedPatchSetIsReshuffledEachEpoch() throws {
        try withTemporaryDirectory { directory in
            let cohort = try makeCohort(in: directory, count: 7, distinct: 3)
            var options = testOptions(size: [5, 5, 5], patches: 103)
            options.scansPerBlock = 2
            options.resampleEachEpoch = false
            let sampler = try PatchSampler(scans: Array(0..<7), options: options, seed: 8)
            #expect(sampler.plan(epoch: 0).count > 1, "needs more than one block")
            let e0 = patches(of: try epochBatches(cohort.sources, options: options, seed: 8, epoch: 0, batchSize: 10), volume: 125)
            let e1 = patches(of: try epochBatches(cohort.sources, options: options, seed: 8, epoch: 1, batchSize: 10), volume: 125)
            #expect(e0.count == 103 && e1.count == 103)
            let k0 = e0.map { Self.key($0.origin) }, k1 = e1.map { Self.key($0.origin) }
            #expect(k0.sorted { $0.lexicographicallyPrecedes($1) } == k1.sorted { $0.lexicographicallyPrecedes($1) },
                    "resampleEachEpoch = false must give the same patch multiset")
            #expect(k0 != k1, "the order must change between epochs")
            // The values travel with their origins.
            let v0 = Dictionary(e0.map { (Self.key($0.origin), Array($0.values)) }, uniquingKeysWith: { a, _ in a })
            #expect(e1.allSatisfy { v0[Self.key($0.origin)] == Array($0.values) })

            options.resampleEachEpoch = true
            let r0 = try epochBatches(cohort.sources, options: options, seed: 8, epoch: 0).flatMap(\.origins).map(Self.key)
            let r1 = try epochBatches(cohort.sources, options: options, seed: 8, epoch: 1).flatMap(\.origins).map(Self.key)
            #expect(r0.sorted { $0.lexicographicallyPrecedes($1) } != r1.sorted { $0.lexicographicallyPrecedes($1) },
                    "resampleEachEpoch = true must draw new patches")
            let common = Set(r0).intersection(Set(r1)).count
            #expect(common < 20, "epochs 0 and 1 share \(common) of 103 patches")
        }
    }

    // MARK: Resuming

    @Test func skipBatchesYieldsTheRestOfTheFullStream() throws {
        try withTemporaryDirectory { directory in
            let cohort = try makeCohort(in: directory, count: 5)
            var options = Self.augmented(testOptions(size: [3, 3, 3], patches: 157))
            options.scansPerBlock = 2
            let full = try epochBatches(cohort.sources, options: options, seed: 4, epoch: 2, batchSize: 7)
            #expect(full.count == 23)
            for skip in [0, 1, 2, 3, 5, 10, 21, 22, 23, 30] {
                let rest = try epochBatches(cohort.sources, options: options, seed: 4, epoch: 2, batchSize: 7, skipBatches: skip,
                                            workers: 3, queueDepth: 2)
                #expect(Self.sameBatches(rest, Array(full.dropFirst(skip))), "skip \(skip): \(rest.count) batches")
            }
        }
    }

    @Test func skipLandingOnBlockBoundaries() throws {
        // Batch size = block size: every skip starts exactly at a block's first patch.
        try withTemporaryDirectory { directory in
            let cohort = try makeCohort(in: directory, count: 4)
            var options = testOptions(size: [3, 3, 3], patches: 80)
            options.scansPerBlock = 1  // one visit of 20 patches per block
            let sampler = try PatchSampler(scans: Array(0..<4), options: options, seed: 6)
            #expect(sampler.plan(epoch: 0).map { $0.reduce(0) { $0 + $1.count } } == [20, 20, 20, 20])
            let full = try epochBatches(cohort.sources, options: options, seed: 6, batchSize: 20)
            for skip in 0...4 {
                let rest = try epochBatches(cohort.sources, options: options, seed: 6, batchSize: 20, skipBatches: skip)
                #expect(Self.sameBatches(rest, Array(full.dropFirst(skip))), "skip \(skip)")
            }
        }
    }
}
