import Foundation
import Testing
import TensorCore
import TestSupport
@testable import VolumeIO
@testable import Preprocessing

/// Shared inputs of the resampling and reorientation tests: seeded volumes, rotations, and the
/// scipy / nibabel references in Tests/Fixtures/Preprocessing/resampling_fixtures.json, written
/// by Tests/Fixtures/make_resampling_fixtures.py.
enum ResamplingFixtures {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let volumes = fixtures.appendingPathComponent("Volumes")

    struct Interpolation: Decodable, CustomTestStringConvertible {
        let name: String
        let shape: [Int]
        let values: [Float]
        let points: [[Double]]
        let linear: [Double]
        let bspline: [Double]
        var testDescription: String { name }
    }

    struct Canonical: Decodable, CustomTestStringConvertible, Sendable {
        let path: String
        let source_axcodes: String
        let shape: [Int]
        let affine: [[Double]]
        let axcodes: String
        let probe_voxels: [[Int]]
        let probe_values: [Double]
        var testDescription: String { path }
    }

    struct File: Decodable {
        let interpolation: [Interpolation]
        let canonical: [Canonical]
    }

    static func load() -> File {
        let url = fixtures.appendingPathComponent("Preprocessing/resampling_fixtures.json")
        do { return try JSONDecoder().decode(File.self, from: Data(contentsOf: url)) } catch {
            preconditionFailure("cannot read \(url.path): \(error)")
        }
    }

    /// Values uniform in [-1, 1) from a seeded generator.
    static func randomVolume(_ shape: [Int], seed: UInt64, affine: Affine) throws -> Volume {
        try Volume(data: TestSupport.randomTensor(shape, seed: seed), affine: affine)
    }

    /// Rotation by `degrees` about `axis` (Rodrigues), row by row.
    static func rotation(axis: [Double], degrees: Double) -> [Double] {
        let length = (axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]).squareRoot()
        let (x, y, z) = (axis[0] / length, axis[1] / length, axis[2] / length)
        let angle = degrees * .pi / 180
        let (c, s) = (cos(angle), sin(angle))
        let t = 1 - c
        return [t * x * x + c, t * x * y - s * z, t * x * z + s * y,
                t * x * y + s * z, t * y * y + c, t * y * z - s * x,
                t * x * z - s * y, t * y * z + s * x, t * z * z + c]
    }

    /// `[R · diag(scaled) | translation]`.
    static func affine(_ rotation: [Double], scaled: [Double], translation: [Double]) -> Affine {
        let rows = (0..<3).map { r in (0..<3).map { c in rotation[r * 3 + c] * scaled[c] } + [translation[r]] }
        return Affine(rows: rows[0], rows[1], rows[2])
    }

    /// A grid of `shape` with rotated axes of `voxelSize` mm whose centre is at `centre`.
    static func rotatedGrid(_ shape: [Int], voxelSize: Double, rotation: [Double], centre: [Double]) -> Grid {
        let linear = affine(rotation, scaled: [voxelSize, voxelSize, voxelSize], translation: [0, 0, 0])
        let middle = linear.apply(shape.map { Double($0 - 1) / 2 })
        return Grid(shape: shape, affine: affine(rotation, scaled: [voxelSize, voxelSize, voxelSize],
                                                 translation: (0..<3).map { centre[$0] - middle[$0] }))
    }

    /// An isotropic Gaussian blob of standard deviation `sigma` mm and peak `peak` centred on
    /// `centre` (world mm), sampled on `grid`.
    static func blob(on grid: Grid, centre: [Double], sigma: Double, peak: Float) throws -> Volume {
        let shape = grid.shape
        let values = (0..<grid.count).map { index -> Float in
            let voxel = [Double(index / (shape[1] * shape[2])), Double(index / shape[2] % shape[1]), Double(index % shape[2])]
            let p = grid.affine.apply(voxel)
            let r2 = (0..<3).reduce(0) { $0 + (p[$1] - centre[$1]) * (p[$1] - centre[$1]) }
            return peak * Float(exp(-r2 / (2 * sigma * sigma)))
        }
        return try Volume(data: Tensor(shape: shape, scalars: values), affine: grid.affine)
    }

    /// The integral of a volume's intensities: their sum times the voxel volume (mm³).
    static func integral(_ volume: Volume) -> Double {
        let sizes = volume.voxelSizes
        return volume.data.scalars.reduce(0) { $0 + Double($1) } * sizes[0] * sizes[1] * sizes[2]
    }
}

/// The case of the `PreprocessingError` that `body` throws ("none" when it returns).
func thrownKind(_ body: () throws -> Void) -> String {
    do {
        try body()
        return "none"
    } catch {
        switch error as? PreprocessingError {
        case .invalidOption?: return "invalidOption"
        case .unsupportedVolume?: return "unsupportedVolume"
        case .noForeground?: return "noForeground"
        default: return "\(error)"
        }
    }
}

@Suite struct ResamplingTests {
    /// 9×8×7 random values on an oblique grid (rotated, anisotropic, off-centre).
    static let oblique = try! ResamplingFixtures.randomVolume(
        [9, 8, 7], seed: 5,
        affine: ResamplingFixtures.affine(ResamplingFixtures.rotation(axis: [0.2, -1, 0.4], degrees: 17),
                                          scaled: [1.3, 0.7, 2.2], translation: [-90.3, 17.1, -3.3]))

    @Test(arguments: Interpolation.allCases)
    func resamplingOntoTheVolumesOwnGridGivesItsVoxels(_ interpolation: Interpolation) throws {
        let volume = Self.oblique
        let same = try Resampler.resample(volume, onto: Grid(volume), interpolation: interpolation, fill: .nan)
        #expect(same.affine == volume.affine && same.header == nil)
        if interpolation == .bspline {
            let worst = TestSupport.closeness(same.data, volume.data, rtol: 0, atol: 1e-5)
            #expect(worst == 0, "B-spline misses a voxel by \(worst) more than 1e-5")
        } else {
            #expect(same.data.scalars.map(\.bitPattern) == volume.data.scalars.map(\.bitPattern))
        }
    }

    @Test(arguments: ResamplingFixtures.load().interpolation)
    func pointValuesMatchScipyMapCoordinates(_ reference: ResamplingFixtures.Interpolation) throws {
        let volume = try Volume(data: Tensor(shape: reference.shape, scalars: reference.values), affine: .identity)
        let linear = Resampler.sample(volume, atVoxels: reference.points, interpolation: .linear)
        let bspline = Resampler.sample(volume, atVoxels: reference.points, interpolation: .bspline)
        for (index, point) in reference.points.enumerated() {
            #expect(abs(Double(linear[index]) - reference.linear[index]) < 2e-6, "linear at \(point): \(linear[index]) vs scipy \(reference.linear[index])")
            #expect(abs(Double(bspline[index]) - reference.bspline[index]) < 1e-5, "B-spline at \(point): \(bspline[index]) vs scipy \(reference.bspline[index])")
        }
    }

    @Test func nearestNeighbourKeepsOnlyExistingLabels() throws {
        let labels: [Float] = [0, 2, 5, 41]
        // Blocks of 3×3×3 voxels with labels in a pattern.
        let values = (0..<(12 * 12 * 12)).map { index -> Float in
            let (i, j, k) = (index / 144, index / 12 % 12, index % 12)
            return labels[(i / 3 + 2 * (j / 3) + 3 * (k / 3)) % labels.count]
        }
        let volume = try Volume(data: Tensor(shape: [12, 12, 12], scalars: values), affine: .scaling([1, 1, 1], origin: [-5.5, -5.5, -5.5]))
        let grid = ResamplingFixtures.rotatedGrid([15, 14, 13], voxelSize: 0.8, rotation: ResamplingFixtures.rotation(axis: [1, -2, 0.5], degrees: 33), centre: [0.3, -0.2, 0.1])
        let resampled = try Resampler.resample(volume, onto: grid, interpolation: .nearest, fill: 0)
        let found = Set(resampled.data.scalars)
        #expect(found.isSubset(of: Set(labels)))
        #expect(found == Set(labels))
    }

    /// Single bright voxels end up, after resampling onto a rotated, shifted, finer grid
    /// through a rotating, scaling, shifting transform, with their intensity-weighted centroid
    /// where the transform's inverse sends them.
    @Test(arguments: [Interpolation.linear, .bspline])
    func landmarksLandWhereTheTransformSendsThem(_ interpolation: Interpolation) throws {
        let shape = [24, 24, 24]
        let landmarks = [[8, 10, 12], [15, 7, 9], [11, 16, 14], [6, 13, 17]]
        var values = [Float](repeating: 0, count: shape.reduce(1, *))
        for v in landmarks { values[(v[0] * shape[1] + v[1]) * shape[2] + v[2]] = 1000 }
        let source = try Volume(data: Tensor(shape: shape, scalars: values), affine: .scaling([2, 2, 2], origin: [-23, -23, -23]))
        // Output world → source world: rotate 10° about z, scale by 1.05, shift.
        let transform = ResamplingFixtures.affine(ResamplingFixtures.rotation(axis: [0, 0, 1], degrees: 10), scaled: [1.05, 1.05, 1.05],
                                                  translation: [3, -2, 1.5])
        let grid = ResamplingFixtures.rotatedGrid([38, 42, 40], voxelSize: 1.25, rotation: ResamplingFixtures.rotation(axis: [0.3, -0.5, 0.8], degrees: 30),
                                                  centre: [1, -2, 3])
        let output = try Resampler.resample(source, onto: grid, transform: transform, interpolation: interpolation)
        let back = try transform.inverse(), gridInverse = try grid.affine.inverse()
        var worst = 0.0
        for landmark in landmarks {
            let expected = back.apply(source.affine.apply(landmark.map(Double.init)))
            let centre = gridInverse.apply(expected).map { Int($0.rounded()) }
            var weight = 0.0, sum = [0.0, 0, 0]
            for i in (centre[0] - 4)...(centre[0] + 4) {
                for j in (centre[1] - 4)...(centre[1] + 4) {
                    for k in (centre[2] - 4)...(centre[2] + 4) {
                        let w = Double(output.data[i, j, k])
                        weight += w
                        for a in 0..<3 { sum[a] += w * [Double(i), Double(j), Double(k)][a] }
                    }
                }
            }
            let found = grid.affine.apply(sum.map { $0 / weight })
            let distance = (0..<3).reduce(0) { $0 + (found[$1] - expected[$1]) * (found[$1] - expected[$1]) }.squareRoot()
            worst = max(worst, distance)
            #expect(weight > 100, "landmark \(landmark) left no mass near \(expected)")
        }
        // A tenth of an output voxel (1.25 mm); measured: 0.04 mm (linear), 0.05 mm (B-spline).
        #expect(worst < 0.125, "\(interpolation): a landmark is \(worst) mm from where it belongs")
    }

    /// A smooth blob keeps its integral (sum × voxel volume) through coarser, finer and
    /// rotated grids.
    @Test(arguments: [Interpolation.linear, .bspline])
    func aSmoothBlobKeepsItsIntegral(_ interpolation: Interpolation) throws {
        let grid = Grid(shape: [40, 40, 40], affine: .scaling([1, 1, 1], origin: [-19.5, -19.5, -19.5]))
        let (sigma, peak) = (4.0, Float(100))
        let blob = try ResamplingFixtures.blob(on: grid, centre: [1.3, -0.7, 2.1], sigma: sigma, peak: peak)
        let exact = Double(peak) * pow(2 * Double.pi * sigma * sigma, 1.5)
        let original = ResamplingFixtures.integral(blob)
        #expect(abs(original / exact - 1) < 1e-3)
        let coarse = try Resampler.resample(blob, voxelSize: [2, 2, 2], interpolation: interpolation)
        #expect(coarse.voxelSizes == [2, 2, 2])
        let finer = try Resampler.resample(coarse, voxelSize: [1.5, 1.5, 1.5], interpolation: interpolation)
        let rotated = try Resampler.resample(blob, onto: ResamplingFixtures.rotatedGrid([40, 40, 40], voxelSize: 1, rotation: ResamplingFixtures.rotation(axis: [1, 1, 0], degrees: 25), centre: [0, 0, 0]),
                                             interpolation: interpolation)
        for (label, volume) in [("1 → 2 mm", coarse), ("2 → 1.5 mm", finer), ("rotated", rotated)] {
            let ratio = ResamplingFixtures.integral(volume) / original
            // Measured: within 3e-5.
            #expect(abs(ratio - 1) < 1e-3, "\(interpolation) \(label): integral ratio \(ratio)")
        }
    }

    @Test func halvingTheResolutionKeepsTheVoxelsWhoseCentresCoincide() throws {
        let volume = try ResamplingFixtures.randomVolume([9, 8, 7], seed: 9, affine: .scaling([1, 1, 1], origin: [-4.25, 3.5, 10]))
        let half = try Resampler.resample(volume, voxelSize: [2, 2, 2], interpolation: .linear, fill: .nan)
        #expect(half.shape == [5, 5, 4])
        for i in 0..<5 {
            for j in 0..<5 {
                for k in 0..<4 {
                    let (u, v, w) = (2 * i, 2 * j, 2 * k)
                    let inside = u < 9 && v < 8 && w < 7
                    let value = half.data[i, j, k]
                    #expect(inside ? value == volume.data[u, v, w] : value.isNaN, "voxel \([i, j, k])")
                }
            }
        }
    }

    @Test func newVoxelSizesCoverTheFieldOfView() throws {
        let volume = Self.oblique
        let sizes = [2.0, 1.6, 3.1]
        let grid = try Grid(volume).withVoxelSize(sizes)
        let old = volume.voxelSizes
        #expect(zip(grid.voxelSizes, sizes).allSatisfy { abs($0 - $1) < 1e-12 })
        #expect(grid.affine.translation == volume.affine.translation)
        for axis in 0..<3 {
            // Same direction, and the last centre reaches the old last centre with less than a voxel to spare.
            let direction = (0..<3).map { grid.affine[$0, axis] / sizes[axis] - volume.affine[$0, axis] / old[axis] }
            #expect(direction.allSatisfy { abs($0) < 1e-12 })
            let reach = Double(grid.shape[axis] - 1) * sizes[axis], span = Double(volume.shape[axis] - 1) * old[axis]
            #expect(reach >= span && reach < span + sizes[axis], "axis \(axis): \(reach) mm for \(span) mm")
        }
        let resampled = try Resampler.resample(volume, voxelSize: sizes)
        #expect(resampled.shape == grid.shape && resampled.affine == grid.affine)
        let same = try Resampler.resample(volume, voxelSize: volume.voxelSizes, interpolation: .linear)
        #expect(same.affine == volume.affine && same.data == volume.data)
    }

    @Test func antiAliasingRemovesACheckerboardThatWouldAlias() throws {
        // 25 voxels: the 3 mm grid's 9 centres all fall on source voxels.
        let values = (0..<(25 * 25 * 25)).map { index -> Float in
            10 + ((index / 625 + index / 25 % 25 + index % 25) % 2 == 0 ? 1 : -1)
        }
        let volume = try Volume(data: Tensor(shape: [25, 25, 25], scalars: values), affine: .scaling([1, 1, 1]))
        func spread(_ volume: Volume) -> (mean: Double, deviation: Double) {
            let values = volume.data.scalars.map(Double.init)
            let mean = values.reduce(0, +) / Double(values.count)
            return (mean, (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)).squareRoot())
        }
        let aliased = try Resampler.resample(volume, voxelSize: [3, 3, 3], fill: 10)
        let smoothed = try Resampler.resample(volume, voxelSize: [3, 3, 3], fill: 10, antiAliasing: true)
        // Every third voxel of a checkerboard is a checkerboard at full contrast.
        #expect(spread(aliased).deviation > 0.99)
        #expect(spread(smoothed).deviation < 0.02 && abs(spread(smoothed).mean - 10) < 0.01, "\(spread(smoothed))")
        #expect(thrownKind { _ = try Resampler.resample(volume, voxelSize: [3, 3, 3], interpolation: .nearest, antiAliasing: true) } == "invalidOption")
    }

    @Test func cropOrPadCopiesTheVoxelsAtTheSameWorldPositions() throws {
        let volume = Self.oblique
        let inverse = try volume.affine.inverse()
        func check(_ result: Volume, _ label: String) {
            for i in 0..<result.shape[0] {
                for j in 0..<result.shape[1] {
                    for k in 0..<result.shape[2] {
                        let u = inverse.apply(result.affine.apply([Double(i), Double(j), Double(k)]))
                        let source = u.map { Int($0.rounded()) }
                        #expect(zip(u, source).allSatisfy { abs($0 - Double($1)) < 1e-9 }, "\(label): not a whole-voxel shift")
                        let inside = (0..<3).allSatisfy { (0..<volume.shape[$0]).contains(source[$0]) }
                        let expected = inside ? volume.data[source[0], source[1], source[2]] : -5
                        #expect(result.data[i, j, k] == expected, "\(label) voxel \([i, j, k]) from \(source)")
                    }
                }
            }
        }
        // Crop 4, pad 2, crop 3: 2 + 2, 1 + 1 and 2 + 1 voxels.
        let centred = try Resampler.cropOrPad(volume, to: [5, 10, 4], fill: -5)
        check(centred, "centred")
        #expect(centred.affine.apply([0, 0, 0]) == volume.affine.apply([2, -1, 2]))
        // Pads of an odd count put the extra voxel after.
        let padded = try Resampler.cropOrPad(volume, to: [12, 8, 7], fill: -5)
        #expect(padded.affine.apply([0, 0, 0]) == volume.affine.apply([-1, 0, 0]))
        // Centred on a world point: the output's centre voxel is the voxel nearest to it.
        let point = volume.affine.apply([6.2, 1.7, 3.4])
        let around = try Resampler.cropOrPad(volume, to: [3, 3, 3], centredOn: point, fill: -5)
        check(around, "around a point")
        #expect(zip(around.affine.apply([1, 1, 1]), volume.affine.apply([6, 2, 3])).allSatisfy { abs($0 - $1) < 1e-12 })
        let same = try Resampler.cropOrPad(volume, to: volume.shape)
        #expect(same.data == volume.data && same.affine == volume.affine)
    }

    @Test func cropKeepsTheHeaderWithTheNewGrid() throws {
        let volume = try VolumeReader.read(ResamplingFixtures.volumes.appendingPathComponent("generated/anatomical_le.nii"))
        let cropped = try Resampler.cropOrPad(volume, to: [20, 30, 25])
        let header = try #require(cropped.header)
        #expect(header.dims == [20, 30, 25] && header.affine == cropped.affine && header.sformCode == volume.header?.sformCode)
        #expect(try Resampler.resample(volume, onto: Grid(volume)).header == nil)
    }

    @Test func presetGridsAreWhereTheTemplatesAre() throws {
        let mni = Grid.mni2mm
        #expect(mni.shape == [91, 109, 91] && mni.voxelSizes == [2, 2, 2])
        #expect(mni.affine.apply([45, 63, 36]) == [0, 0, 0])
        // The same voxel centres as FSL's LAS file, indexed along +x.
        let fsl = Affine(rows: [-2, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72])
        let toRAS = try Reorientation.axisMap(fsl, to: "RAS", name: "FSL").indexTransform(shape: mni.shape)
        #expect(fsl * toRAS == mni.affine)
        let spm = Grid.spm1p5mm
        #expect(spm.shape == [121, 145, 121])
        #expect(spm.affine.apply([0, 0, 0]) == [-90, -126, -72] && spm.affine.apply([120, 144, 120]) == [90, 90, 108])
        let crop = Grid.clinicaDLLinearCrop, template = Grid.mni152NLin2009c1mm
        #expect(crop.shape == [169, 208, 179] && template.shape == [193, 229, 193])
        #expect(crop.affine == Resampler.translated(template.affine, by: [12, 13, 0]))
        #expect(crop.affine.apply([168, 207, 178]) == template.affine.apply([180, 220, 178]))
        for grid in [mni, spm, crop, template] { #expect(grid.affine.axisCodes == "RAS") }
    }

    @Test func boundingBoxEnclosesTheMaskWithItsMargin() throws {
        var values = [Float](repeating: 0, count: 10 * 12 * 8)
        for i in 3...5 { for j in 2...9 { values[(i * 12 + j) * 8 + 4] = 1 } }
        values[(4 * 12 + 5) * 8 + 5] = .nan
        let mask = try Volume(data: Tensor(shape: [10, 12, 8], scalars: values), affine: .scaling([2, 1, 0.5], origin: [-9, -5.5, 1]))
        // 1 mm is 1 voxel in x (rounded up), 1 in y, 2 in z.
        let box = try Grid.boundingBox(of: mask, margin: 1)
        #expect(box.shape == [5, 10, 5])
        #expect(box.affine.apply([0, 0, 0]) == mask.affine.apply([2, 1, 2]))
        #expect(try Grid.boundingBox(of: mask, margin: 100) == Grid(mask))
        let tight = try Grid.boundingBox(of: mask)
        #expect(tight.shape == [3, 8, 1])
        let cropped = try Resampler.resample(mask, onto: tight, interpolation: .nearest)
        #expect(cropped.data.scalars.allSatisfy { $0 == 1 })
        let empty = try Volume(data: Tensor(zeros: [4, 4, 4]), affine: .identity)
        #expect(thrownKind { _ = try Grid.boundingBox(of: empty) } == "noForeground")
        #expect(thrownKind { _ = try Grid.boundingBox(of: mask, margin: -1) } == "invalidOption")
    }

    @Test func badInputsAreTypedErrors() throws {
        let volume = Self.oblique
        let grid = Grid(volume)
        var flat = volume.affine
        for r in 0..<3 { flat[r, 1] = 0 }
        let singular = try Volume(data: volume.data, affine: flat)
        #expect(thrownKind { _ = try Resampler.resample(singular, onto: grid) } == "unsupportedVolume")
        #expect(thrownKind { _ = try Resampler.resample(singular, voxelSize: [1, 1, 1]) } == "unsupportedVolume")
        let empty = try Volume(data: Tensor(zeros: [0, 3, 3]), affine: .identity)
        #expect(thrownKind { _ = try Resampler.resample(empty, onto: grid) } == "unsupportedVolume")
        var notFinite = Affine.identity
        notFinite[1, 3] = .infinity
        #expect(thrownKind { _ = try Resampler.resample(volume, onto: grid, transform: notFinite) } == "invalidOption")
        #expect(thrownKind { _ = try Resampler.resample(volume, onto: grid, transform: .scaling([1, 0, 1])) } == "invalidOption")
        #expect(thrownKind { _ = try Resampler.resample(volume, onto: Grid(shape: [4, 0, 4], affine: .identity)) } == "invalidOption")
        #expect(thrownKind { _ = try Resampler.resample(volume, onto: Grid(shape: [4, 4, 4], affine: .scaling([1, 1, 0]))) } == "invalidOption")
        for sizes: [Double] in [[1, 1], [0, 1, 1], [-1, 1, 1], [.nan, 1, 1], [1e-9, 1, 1]] {
            #expect(thrownKind { _ = try Resampler.resample(volume, voxelSize: sizes) } == "invalidOption", "\(sizes)")
        }
        #expect(thrownKind { _ = try Resampler.cropOrPad(volume, to: [0, 1, 1]) } == "invalidOption")
        #expect(thrownKind { _ = try Resampler.cropOrPad(volume, to: [1, 1]) } == "invalidOption")
        #expect(thrownKind { _ = try Resampler.cropOrPad(volume, to: [2, 2, 2], centredOn: [1, 2]) } == "invalidOption")
        #expect(thrownKind { _ = try Resampler.cropOrPad(volume, to: [2, 2, 2], centredOn: [.infinity, 0, 0]) } == "invalidOption")
        #expect(thrownKind { _ = try Resampler.cropOrPad(singular, to: [2, 2, 2], centredOn: [0, 0, 0]) } == "unsupportedVolume")
    }
}
