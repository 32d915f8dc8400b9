import Cohort
import Foundation
import Testing
import TensorCore
import VolumeIO
@testable import Preprocessing

@Suite struct IntensityNormalisationTests {
    /// A random image (values 100-1100) and a random mask on a 12×10×8 grid.
    static func imageAndMask(seed: UInt64 = 3) throws -> (image: Volume, mask: Volume) {
        var generator = Xoshiro256StarStar(seed: seed)
        let count = 12 * 10 * 8
        let values = (0..<count).map { _ in 100 + 1000 * generator.nextUnitFloat() }
        let mask = (0..<count).map { _ -> Float in generator.nextUnitFloat() < 0.4 ? 1 : 0 }
        let affine = Affine.scaling([1.5, 1.5, 2], origin: [-9, -7, -8])
        return (try testVolume([12, 10, 8], values, affine: affine), try testVolume([12, 10, 8], mask, affine: affine))
    }

    /// numpy.percentile's default (linear): rank p/100 · (n − 1) between sorted neighbours.
    static func numpyPercentile(_ sorted: [Float], _ p: Double) -> Double {
        let rank = p / 100 * Double(sorted.count - 1)
        let low = Int(rank.rounded(.down))
        let high = min(low + 1, sorted.count - 1)
        return Double(sorted[low]) + (rank - Double(low)) * (Double(sorted[high]) - Double(sorted[low]))
    }

    @Test func zScoreGivesMeanZeroAndUnitDeviationInTheMask() throws {
        let (image, mask) = try Self.imageAndMask()
        let inside = mask.data.scalars.map { $0 != 0 }
        for outside in IntensityNormalisation.Outside.allCases {
            let normalised = try IntensityNormalisation.zScore(image, mask: mask, outside: outside)
            let values = zip(normalised.data.scalars, inside).filter(\.1).map { Double($0.0) }
            let mean = values.reduce(0, +) / Double(values.count)
            let sd = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)).squareRoot()
            #expect(abs(mean) < 1e-6 && abs(sd - 1) < 1e-6, "\(outside): mean \(mean), sd \(sd)")
            #expect(normalised.affine == image.affine)
            for (index, isInside) in inside.enumerated() where !isInside {
                let (got, original) = (normalised.data.scalars[index], image.data.scalars[index])
                switch outside {
                case .zero: #expect(got == 0)
                case .unchanged: #expect(got == original)
                case .scaled: #expect(got != original && got.isFinite)
                }
            }
        }
    }

    @Test(arguments: [[0.5, 99.5], [0, 100], [2, 98], [10, 37.5]])
    func minMaxClipsAtNumpyPercentiles(_ percentiles: [Double]) throws {
        let (image, mask) = try Self.imageAndMask(seed: 9)
        let inside = mask.data.scalars.map { $0 != 0 }
        let sorted = zip(image.data.scalars, inside).filter(\.1).map(\.0).sorted()
        let (low, high) = (Self.numpyPercentile(sorted, percentiles[0]), Self.numpyPercentile(sorted, percentiles[1]))
        let normalised = try IntensityNormalisation.minMax(image, mask: mask, percentiles: percentiles, outside: .scaled)
        for (v, got) in zip(image.data.scalars, normalised.data.scalars) {
            let expected = Float(min(max((Double(v) - low) / (high - low), 0), 1))
            #expect(abs(got - expected) <= 1e-6, "\(v) → \(got), expected \(expected) (p \(percentiles))")
        }
        let maskedValues = zip(normalised.data.scalars, inside).filter(\.1).map(\.0)
        #expect(maskedValues.min() == 0 && maskedValues.max() == 1)
        let zeroed = try IntensityNormalisation.minMax(image, mask: mask, percentiles: percentiles)
        #expect(zip(zeroed.data.scalars, inside).allSatisfy { $1 || $0 == 0 })
    }

    @Test func normalisationRefusesBadInput() throws {
        let (image, mask) = try Self.imageAndMask()
        var nanValues = image.data.scalars
        nanValues[17] = .nan
        let nanImage = try testVolume(image.shape, nanValues, affine: image.affine)
        let emptyMask = try testVolume(image.shape, [Float](repeating: 0, count: image.data.count), affine: image.affine)
        let shiftedMask = try testVolume(image.shape, mask.data.scalars, affine: .scaling([1.5, 1.5, 2]))
        #expect(throws: PreprocessingError.nonFiniteVoxels(path: "scan.nii", count: 1)) {
            _ = try IntensityNormalisation.zScore(nanImage, mask: mask, label: "scan.nii")
        }
        #expect(throws: PreprocessingError.noForeground(path: "mask of image", reason: "the mask is empty")) {
            _ = try IntensityNormalisation.minMax(image, mask: emptyMask)
        }
        #expect {
            _ = try IntensityNormalisation.zScore(image, mask: shiftedMask)
        } throws: { error in
            guard case let .gridMismatch(path, _, _) = error as? PreprocessingError else { return false }
            return path == "mask of image"
        }
        for bad in [[99.0, 1], [-1, 50], [5, 101], [50]] {
            #expect {
                _ = try IntensityNormalisation.minMax(image, mask: mask, percentiles: bad)
            } throws: { error in
                guard case let .invalidOption(name, _, _) = error as? PreprocessingError else { return false }
                return name == "clip percentiles"
            }
        }
        let correction = BiasFieldCorrection()
        #expect(throws: PreprocessingError.self) { _ = try correction.correct(nanImage, mask: mask) }
        #expect(throws: PreprocessingError.self) { _ = try correction.correct(image, mask: emptyMask) }
        #expect(throws: PreprocessingError.self) { _ = try correction.correct(image, mask: shiftedMask) }
        var badDegree = BiasFieldCorrection()
        badDegree.degree = 12
        #expect(throws: PreprocessingError.invalidOption(name: "bias degree", value: "12", reason: "must be in 0...8")) {
            _ = try badDegree.correct(image, mask: mask)
        }
    }

    // MARK: Bias field

    /// Pearson correlation of two runs of values.
    static func correlation(_ a: [Double], _ b: [Double]) -> Double {
        let (ma, mb) = (a.reduce(0, +) / Double(a.count), b.reduce(0, +) / Double(b.count))
        var (sab, saa, sbb) = (0.0, 0.0, 0.0)
        for (x, y) in zip(a, b) {
            sab += (x - ma) * (y - mb)
            saa += (x - ma) * (x - ma)
            sbb += (y - mb) * (y - mb)
        }
        return sab / (saa * sbb).squareRoot()
    }

    /// Coefficient of variation (sd / mean) of `values` where `select` holds.
    static func variation(_ values: [Float], _ select: [Bool]) -> Double {
        let chosen = zip(values, select).filter(\.1).map { Double($0.0) }
        let mean = chosen.reduce(0, +) / Double(chosen.count)
        return (chosen.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(chosen.count)).squareRoot() / mean
    }

    @Test func polynomialFieldOnAPiecewiseConstantPhantomIsRecovered() throws {
        // Three nested ellipsoidal "tissues" (CSF-, grey- and white-matter-like levels) inside a
        // head-sized mask, times exp(smooth cubic) of world coordinates, plus 1 % noise.
        let shape = [64, 72, 48]
        let affine = Affine.scaling([2.5, 2.5, 3], origin: [-79, -89, -70])
        let levels: [Double] = [250, 600, 1000]
        var generator = Xoshiro256StarStar(seed: 21)
        var (values, truth, mask, tissue) = ([Float](), [Double](), [Float](), [Int]())
        for i in 0..<shape[0] { for j in 0..<shape[1] { for k in 0..<shape[2] {
            let p = affine.apply([Double(i), Double(j), Double(k)])
            let (x, y, z) = (p[0] / 80, p[1] / 90, p[2] / 70)
            let r2 = x * x + y * y + z * z
            let logField = 0.25 * x - 0.2 * y * y + 0.15 * x * z + 0.1 * z * z * z - 0.12 * x * y * z + 0.05
            let field = exp(logField)
            let level = r2 > 1 ? -1 : r2 > 0.7 ? 0 : r2 > 0.35 ? 1 : 2
            let clean = level < 0 ? 0 : levels[level] * field
            let noise = Double(generator.nextStandardNormal()) * 0.01 * levels[2]
            values.append(Float(max(0, clean + (level < 0 ? 0 : noise))))
            truth.append(field)
            mask.append(level < 0 ? 0 : 1)
            tissue.append(level)
        } } }
        let image = try testVolume(shape, values, affine: affine)
        let result = try BiasFieldCorrection().correct(image, mask: try testVolume(shape, mask, affine: affine))
        #expect(result.coefficients.count == 20)
        let inside = mask.map { $0 != 0 }
        let fitted = zip(result.field.data.scalars, inside).filter(\.1).map { Double($0.0) }
        let expected = zip(truth, inside).filter(\.1).map(\.0)
        let r = Self.correlation(fitted.map(log), expected.map(log))
        print(String(format: "bias field, phantom: log-field correlation %.4f", r))
        #expect(r > 0.95)
        for level in 0..<3 {
            let select = tissue.map { $0 == level }
            let before = Self.variation(image.data.scalars, select)
            let after = Self.variation(result.corrected.data.scalars, select)
            let floor = 0.01 * levels[2] / levels[level]
            print(String(format: "bias field, phantom tissue %d: CV %.4f → %.4f (noise alone %.4f)", level, before, after, floor))
            // Most of the way from the biased spread down to the noise's.
            #expect(before - after >= 0.8 * (before - floor), "tissue \(level)")
        }
        // The field is scaled to a geometric mean of 1 over the fitted voxels.
        let meanLog = fitted.map(log).reduce(0, +) / Double(fitted.count)
        #expect(abs(meanLog) < 0.05)
    }

    @Test func syntheticScanWhiteMatterBecomesMoreUniform() throws {
        var options = SyntheticCohortOptions()
        options.participants = 4
        options.seed = 11
        options.biasField = 0.3
        let participant = try SyntheticCohort.participants(options)[1]
        let scan = SyntheticCohort.render(participant, session: 0, options: options)
        // The same scan without a bias field (same anatomy and noise): the floor.
        options.biasField = 0
        let flat = SyntheticCohort.render(participant, session: 0, options: options)
        let whiteMatter = BinaryMask(grid: Grid(scan.labels), voxels: scan.labels.data.scalars.map { $0 == Float(Tissue.whiteMatter.rawValue) })
        // Interior white matter (one voxel in from the label's edge): no partial volumes.
        let interior = Morphology.erode(whiteMatter, radius: 2.5).voxels
        let correction = BiasFieldCorrection()
        let corrected = try correction.correct(scan.t1, mask: scan.mask).corrected.data.scalars
        let flatCorrected = try correction.correct(flat.t1, mask: flat.mask).corrected.data.scalars
        let label = (Self.variation(scan.t1.data.scalars, whiteMatter.voxels), Self.variation(corrected, whiteMatter.voxels))
        let core = (Self.variation(scan.t1.data.scalars, interior), Self.variation(corrected, interior))
        let floor = (Self.variation(flat.t1.data.scalars, interior), Self.variation(flatCorrected, interior))
        print(String(format: "bias field, synthetic scan (bias 0.3): WM label CV %.4f → %.4f; interior WM CV %.4f → %.4f (no bias: %.4f, corrected %.4f)",
                     label.0, label.1, core.0, core.1, floor.0, floor.1))
        #expect(label.1 < label.0)
        #expect(core.0 - core.1 >= 0.8 * (core.0 - floor.0), "most of the way to the bias-free spread")
        #expect(floor.1 <= 1.05 * floor.0, "an unbiased scan stays (nearly) as it was")
    }

    @Test func legendreAndTermOrder() {
        let values = BiasFieldCorrection.legendre(0.5, upTo: 3)
        #expect(values.count == 4)
        #expect(abs(values[2] - (3 * 0.25 - 1) / 2) < 1e-15 && abs(values[3] - (5 * 0.125 - 3 * 0.5) / 2) < 1e-15)
        let terms = BiasFieldCorrection().terms
        #expect(terms.count == 20)
        #expect(terms.prefix(4).map { [$0.0, $0.1, $0.2] } == [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
        var linear = BiasFieldCorrection()
        linear.degree = 1
        #expect(linear.terms.count == 4)
    }
}
