import Foundation
import Testing
import TensorCore
import TestSupport
import VolumeIO
@testable import Patches

/// Prepared scans and cut patches against normalisation, masking and cutting recomputed here
/// from their definitions.
struct NormalizationTests {
    /// Checks a prepared scan against the phantom: crop values, crop box, mask count and the
    /// complete set of valid origins (brute force over the whole volume).
    static func checkPrepared(_ scan: PreparedScan, phantom: Phantom, mask: [Bool], options: PatchSamplingOptions,
                              _ label: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let shape = phantom.shape
        let size = options.size
        let expected = referenceNormalised(phantom.values, mask: mask, options: options)
        #expect(scan.volumeShape == Triple(shape[0], shape[1], shape[2]), sourceLocation: sourceLocation)
        #expect(scan.maskVoxels == mask.filter { $0 }.count, "\(label): mask voxel count", sourceLocation: sourceLocation)
        let c = scan.cropOrigin, crop = scan.cropShape
        #expect(scan.data.count == crop.product, sourceLocation: sourceLocation)
        // Crop values = normalised volume at cropOrigin + crop position.
        var cropped: [Float] = []
        for x in 0..<crop.d { for y in 0..<crop.h { for z in 0..<crop.w {
            cropped.append(expected[phantom.index(c.d + x, c.h + y, c.w + z)])
        } } }
        let excess = worstExcess(scan.data, cropped)
        #expect(excess == 0, "\(label): prepared voxels differ from the reference normalisation by \(excess)",
                sourceLocation: sourceLocation)
        // Origins: exactly the valid ones, ascending.
        var valid: Set<Triple> = []
        for x in 0..<shape[0] { for y in 0..<shape[1] { for z in 0..<shape[2] {
            let o = Triple(x, y, z)
            if isValidPatch(origin: o, size: size, mask: mask, shape: shape) { valid.insert(o) }
        } } }
        let origins = scan.origins.map { linear -> Triple in
            let l = Int(linear)
            return Triple(c.d + l / (crop.h * crop.w), c.h + l / crop.w % crop.h, c.w + l % crop.w)
        }
        #expect(zip(scan.origins, scan.origins.dropFirst()).allSatisfy { $0 < $1 }, "\(label): origins ascending",
                sourceLocation: sourceLocation)
        #expect(Set(origins) == valid, "\(label): \(origins.count) origins vs \(valid.count) valid patches",
                sourceLocation: sourceLocation)
        #expect(scan.validPatchCount == valid.count, sourceLocation: sourceLocation)
        // Every valid patch lies inside the crop.
        #expect(valid.allSatisfy { o in
            (0..<3).allSatisfy { o.array[$0] >= c.array[$0] && o.array[$0] + size[$0] <= c.array[$0] + crop.array[$0] }
        }, "\(label): a valid patch leaves the crop", sourceLocation: sourceLocation)
    }

    static let optionGrid: [(IntensityNormalization, Bool)] = [
        (.zscore, false), (.zscore, true), (.minmax, false), (.minmax, true), (.none, false), (.none, true),
    ]

    @Test func preparedScanWithMaskMatchesReference() throws {
        try withTemporaryDirectory { directory in
            let cohort = try makeCohort(in: directory, count: 3)
            for (normalization, zero) in Self.optionGrid {
                for size in [[5, 6, 4], [1, 7, 6], [3, 4, 1], [2, 2, 2]] {
                    var options = testOptions(size: size, normalization: normalization)
                    options.zeroOutsideMask = zero
                    options.clipPercentiles = [2, 97]
                    for (i, source) in cohort.sources.enumerated() {
                        let scan = try PreparedScan.load(source, options: options)
                        Self.checkPrepared(scan, phantom: cohort.phantoms[i], mask: cohort.phantoms[i].mask, options: options,
                                           "scan \(i) \(normalization) zero=\(zero) size \(size)")
                    }
                }
            }
        }
    }

    @Test func preparedScanWithoutMaskUsesForeground() throws {
        try withTemporaryDirectory { directory in
            let cohort = try makeCohort(in: directory, count: 2, masks: false)
            for threshold in [0.1, 0.7, 0.0] {
                for (normalization, zero) in Self.optionGrid {
                    var options = testOptions(size: [5, 4, 3], normalization: normalization)
                    options.foregroundThreshold = threshold
                    options.zeroOutsideMask = zero
                    for (i, source) in cohort.sources.enumerated() {
                        let phantom = cohort.phantoms[i]
                        let foreground = referenceForeground(phantom.values, threshold: threshold)
                        let scan = try PreparedScan.load(source, options: options)
                        Self.checkPrepared(scan, phantom: phantom, mask: foreground, options: options,
                                           "scan \(i) threshold \(threshold) \(normalization)")
                    }
                }
            }
            // The thresholds matter: 0.7 keeps only part of the phantom's brain, 0 everything.
            let values = cohort.phantoms[0].values
            let kept = referenceForeground(values, threshold: 0.7).filter { $0 }.count
            #expect(kept > 0 && kept < cohort.phantoms[0].mask.filter { $0 }.count)
            #expect(referenceForeground(values, threshold: 0.0).filter { $0 }.count == values.count,
                    "every phantom voxel is positive, so threshold 0 keeps them all")
        }
    }

    @Test func zscoreAndMinmaxHaveTheirDefiningStatistics() throws {
        // Independent of the reference: z-scored mask voxels have mean 0 and population std 1;
        // minmax maps into [0, 1] with about p_low% at 0 and (100 − p_high)% at 1.
        try withTemporaryDirectory { directory in
            let cohort = try makeCohort(in: directory, count: 1)
            let phantom = cohort.phantoms[0]
            var options = testOptions(size: [1, 1, 1])
            let z = try PreparedScan.load(cohort.sources[0], options: options)
            var inside: [Double] = []
            for x in 0..<z.cropShape.d { for y in 0..<z.cropShape.h { for k in 0..<z.cropShape.w {
                let v = phantom.index(z.cropOrigin.d + x, z.cropOrigin.h + y, z.cropOrigin.w + k)
                if phantom.mask[v] { inside.append(Double(z.data[(x * z.cropShape.h + y) * z.cropShape.w + k])) }
            } } }
            #expect(inside.count == phantom.mask.filter { $0 }.count, "with size 1 the crop is the mask's box")
            let mean = inside.reduce(0, +) / Double(inside.count)
            let variance = inside.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(inside.count)
            #expect(abs(mean) < 1e-5)
            #expect(abs(variance - 1) < 1e-4, "population variance \(variance)")

            options.normalization = .minmax
            options.clipPercentiles = [10, 80]
            let m = try PreparedScan.load(cohort.sources[0], options: options)
            #expect(m.data.allSatisfy { $0 >= 0 && $0 <= 1 })
            var maskValues: [Float] = []
            for x in 0..<m.cropShape.d { for y in 0..<m.cropShape.h { for k in 0..<m.cropShape.w {
                if phantom.mask[phantom.index(m.cropOrigin.d + x, m.cropOrigin.h + y, m.cropOrigin.w + k)] {
                    maskValues.append(m.data[(x * m.cropShape.h + y) * m.cropShape.w + k])
                }
            } } }
            let n = Double(maskValues.count)
            let zeros = Double(maskValues.filter { $0 == 0 }.count) / n
            let ones = Double(maskValues.filter { $0 == 1 }.count) / n
            #expect(abs(zeros - 0.10) < 0.01, "fraction at 0: \(zeros)")
            #expect(abs(ones - 0.20) < 0.01, "fraction at 1: \(ones)")
        }
    }

    @Test func constantScanNormalisesToFiniteValues() throws {
        // A mask over constant voxels has std 0 and an empty percentile range: the divisor
        // falls back to 1, so nothing becomes NaN or infinite.
        try withTemporaryDirectory { directory in
            var phantom = makePhantom(seed: 12)
            for i in phantom.values.indices where phantom.mask[i] { phantom.values[i] = 80 }
            let image = directory.appendingPathComponent("flat.nii")
            let mask = directory.appendingPathComponent("flat_mask.nii")
            try writeVolume(phantom.values, shape: phantom.shape, to: image)
            try writeMask(phantom.mask, shape: phantom.shape, to: mask)
            for (normalization, zero) in Self.optionGrid {
                var options = testOptions(size: [3, 3, 3], normalization: normalization)
                options.zeroOutsideMask = zero
                let scan = try PreparedScan.load(ScanSource(name: "flat", image: image, mask: mask), options: options)
                #expect(scan.data.allSatisfy { $0.isFinite }, "\(normalization): non-finite values")
                Self.checkPrepared(scan, phantom: phantom, mask: phantom.mask, options: options, "flat \(normalization) zero=\(zero)")
            }
        }
    }

    /// Every patch of an epoch equals the reference-normalised source block at its recorded
    /// origin (mirrored as recorded), and is centred in the mask.
    static func checkEpoch(_ cohort: PhantomCohort, masks: [[Bool]], options: PatchSamplingOptions, seed: UInt64 = 5,
                           _ label: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [(origin: PatchOrigin, values: ArraySlice<Float>)] {
        let normalised = cohort.phantoms.indices.map { referenceNormalised(cohort.phantoms[$0].values, mask: masks[$0], options: options) }
        let batches = try epochBatches(cohort.sources, options: options, seed: seed, batchSize: 13)
        let all = patches(of: batches, volume: options.patchVolume)
        #expect(all.count == options.patchesPerEpoch, sourceLocation: sourceLocation)
        for batch in batches {
            #expect(batch.patches.shape == [batch.origins.count, 1] + options.size, sourceLocation: sourceLocation)
        }
        var worst: Float = 0, badCentres = 0
        for (origin, values) in all {
            let phantom = cohort.phantoms[origin.scan]
            if !isValidPatch(origin: origin.voxel, size: options.size, mask: masks[origin.scan], shape: phantom.shape) { badCentres += 1; continue }
            let expected = referencePatch(normalised[origin.scan], shape: phantom.shape, origin: origin.voxel, size: options.size,
                                          flipped: origin.flipped)
            worst = max(worst, worstExcess(values, expected))
        }
        #expect(badCentres == 0, "\(label): \(badCentres) patches not centred in the mask or not inside the volume",
                sourceLocation: sourceLocation)
        #expect(worst == 0, "\(label): patch values differ from the reference by \(worst)", sourceLocation: sourceLocation)
        return all
    }

    @Test func patchValuesEqualNormalisedSourceAtOrigin() throws {
        try withTemporaryDirectory { directory in
            let cohort = try makeCohort(in: directory, count: 3)
            let masks = cohort.phantoms.map(\.mask)
            for (normalization, zero) in Self.optionGrid {
                var options = testOptions(size: [5, 6, 4], normalization: normalization, patches: 150)
                options.zeroOutsideMask = zero
                options.clipPercentiles = [1, 99]
                _ = try Self.checkEpoch(cohort, masks: masks, options: options, "\(normalization) zero=\(zero)")
            }
        }
    }

    @Test func patchValuesWithoutMask() throws {
        try withTemporaryDirectory { directory in
            let cohort = try makeCohort(in: directory, count: 2, masks: false)
            for normalization in IntensityNormalization.allCases {
                var options = testOptions(size: [4, 4, 4], normalization: normalization, patches: 100)
                options.foregroundThreshold = 0.3
                let masks = cohort.phantoms.map { referenceForeground($0.values, threshold: 0.3) }
                _ = try Self.checkEpoch(cohort, masks: masks, options: options, "no mask, \(normalization)")
            }
        }
    }

    @Test func flippedPatchesAreMirroredBlocks() throws {
        try withTemporaryDirectory { directory in
            let cohort = try makeCohort(in: directory, count: 2)
            var options = testOptions(size: [4, 5, 3], patches: 200)
            options.augmentation.flipProbability = 0.5
            let all = try Self.checkEpoch(cohort, masks: cohort.phantoms.map(\.mask), options: options, "flips")
            // Flips happen along each axis, and a flipped patch is not its unflipped block.
            for axis in 0..<3 {
                let flipped = all.filter { $0.origin.flipped[axis] }.count
                #expect(flipped > 50 && flipped < 150, "axis \(axis) flipped in \(flipped) of 200 patches (p = 0.5)")
            }
            let normalised = cohort.phantoms.map { referenceNormalised($0.values, mask: $0.mask, options: options) }
            let differing = all.filter { patch in
                patch.origin.flipped.contains(true) && worstExcess(patch.values, referencePatch(
                    normalised[patch.origin.scan], shape: cohort.phantoms[0].shape, origin: patch.origin.voxel, size: options.size)) > 0
            }.count
            #expect(differing > 100, "flipped patches must differ from the unflipped block")
            // Probability 1 flips every axis of every patch; 0 never.
            options.augmentation.flipProbability = 1
            let always = try Self.checkEpoch(cohort, masks: cohort.phantoms.map(\.mask), options: options, "flip p=1")
            #expect(always.allSatisfy { $0.origin.flipped == [true, true, true] })
            options.augmentation.flipProbability = 0
            let never = try Self.checkEpoch(cohort, masks: cohort.phantoms.map(\.mask), options: options, "flip p=0")
            #expect(never.allSatisfy { $0.origin.flipped == [false, false, false] })
        }
    }

    @Test(arguments: [[1, 6, 5], [4, 5, 1], [1, 1, 7], [1, 1, 1]])
    func twoDimensionalSlices(size: [Int]) throws {
        try withTemporaryDirectory { directory in
            let cohort = try makeCohort(in: directory, count: 3)
            var options = testOptions(size: size, patches: 90)
            options.augmentation.flipProbability = 0.5
            let all = try Self.checkEpoch(cohort, masks: cohort.phantoms.map(\.mask), options: options, "slices \(size)")
            #expect(all.count == 90)
            #expect(Set(all.map(\.origin.voxel)).count > 30, "slices come from many places")
        }
    }
}
