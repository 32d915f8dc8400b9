import Foundation
import Testing
import Cohort
import TensorCore
import TestSupport
import VolumeIO
@testable import Preprocessing

/// A small smooth test volume: a few Gaussian blobs on an anisotropic, shifted grid.
private func blobs(shape: [Int] = [20, 18, 16], voxel: [Double] = [2, 2.2, 2.5], origin: [Double] = [-20, -21, -19]) throws -> Volume {
    var values = [Float](repeating: 0, count: shape.reduce(1, *))
    let affine = Affine.scaling(voxel, origin: origin)
    let centres: [([Double], Double, Double)] = [([0, 0, 0], 9, 100), ([8, -5, 4], 4, 60), ([-7, 6, -3], 5, 80), ([3, 9, 8], 3, 40)]
    for i in 0..<shape[0] { for j in 0..<shape[1] { for k in 0..<shape[2] {
        let x = affine.apply([Double(i), Double(j), Double(k)])
        var v = 5.0
        for (c, s, a) in centres {
            let d2 = (0..<3).reduce(0.0) { $0 + (x[$1] - c[$1]) * (x[$1] - c[$1]) }
            v += a * exp(-d2 / (2 * s * s))
        }
        values[(i * shape[1] + j) * shape[2] + k] = Float(v)
    }}}
    return try Volume(data: Tensor(shape: shape, scalars: values), affine: affine)
}

@Suite struct CorrelationCostTests {
    /// The analytic gradient of the NCC with respect to the 12 affine entries matches central
    /// differences of the cost itself.
    @Test func gradientMatchesFiniteDifferences() throws {
        let fixedVolume = try blobs()
        // The moving grid covers every fixed sample under the tested transform, so no sample
        // crosses its edge between the finite-difference points.
        let movingVolume = try blobs(shape: [34, 30, 28], voxel: [1.8, 2, 2.3], origin: [-30, -30, -32])
        let fixed = LevelImage(fixedVolume, factors: [1, 1, 1], sigma: 0)
        let moving = LevelImage(movingVolume, factors: [1, 1, 1], sigma: 0)
        let cost = try CorrelationCost(fixed: fixed, region: [Bool](repeating: true, count: fixed.values.count), stride: 1, moving: moving)
        let a = [1.03, 0.04, -0.02, -0.03, 0.98, 0.05, 0.01, -0.04, 1.02], b = [1.2, -0.7, 0.4]
        let evaluation = cost.evaluate(a: a, b: b)
        #expect(evaluation.overlap > 0.5)
        let h = 1e-4
        var worst = 0.0
        for index in 0..<12 {
            var plusA = a, minusA = a, plusB = b, minusB = b
            if index < 9 { plusA[index] += h; minusA[index] -= h } else { plusB[index - 9] += h; minusB[index - 9] -= h }
            let numeric = (cost.evaluate(a: plusA, b: plusB).correlation - cost.evaluate(a: minusA, b: minusB).correlation) / (2 * h)
            let analytic = index < 9 ? evaluation.gradientA[index] : evaluation.gradientB[index - 9]
            let scale = max(abs(numeric), 1e-3)
            worst = max(worst, abs(analytic - numeric) / scale)
            #expect(abs(analytic - numeric) <= 0.02 * scale + 1e-5, "entry \(index): analytic \(analytic), numeric \(numeric)")
        }
        print("NCC gradient: worst relative difference to central differences \(worst)")
    }

    /// An image against itself correlates 1; against its negative, −1.
    @Test func correlationOfAnImageWithItselfAndItsNegative() throws {
        let volume = try blobs()
        let level = LevelImage(volume, factors: [1, 1, 1], sigma: 0)
        var negative = level
        negative.values = level.values.map { -$0 }
        let identity = [1.0, 0, 0, 0, 1, 0, 0, 0, 1]
        let region = [Bool](repeating: true, count: level.values.count)
        let same = try CorrelationCost(fixed: level, region: region, stride: 1, moving: level).evaluate(a: identity, b: [0, 0, 0])
        let opposite = try CorrelationCost(fixed: level, region: region, stride: 1, moving: negative).evaluate(a: identity, b: [0, 0, 0])
        #expect(abs(same.correlation - 1) < 1e-6)
        #expect(abs(opposite.correlation + 1) < 1e-6)
        #expect(same.overlap == 1)
    }

    /// Decimated smoothing equals full smoothing then taking every f-th voxel.
    @Test func pyramidLevelIsSmoothThenDecimate() throws {
        let volume = try blobs()
        let level = LevelImage(volume, factors: [2, 3, 2], sigma: 2.5)
        let smooth = GaussianSmoothing.smooth(volume, sigma: 2.5)
        #expect(level.shape == [10, 6, 8])
        var worst: Float = 0
        for i in 0..<10 { for j in 0..<6 { for k in 0..<8 {
            let a = level.values[(i * 6 + j) * 8 + k]
            let b = smooth.data.scalars[((2 * i) * 18 + 3 * j) * 16 + 2 * k]
            worst = max(worst, abs(a - b))
        }}}
        #expect(worst < 1e-3, "largest difference \(worst)")
        #expect(level.affine.apply([1, 1, 1]) == volume.affine.apply([2, 3, 2]))
    }
}

@Suite struct RegistrationInputTests {
    private func template() throws -> (Volume, Volume) {
        (try PreprocessingFixtures.copy(PreprocessingFixtures.mni2mmT1), try PreprocessingFixtures.copy(PreprocessingFixtures.mni2mmMask))
    }

    @Test func nanVoxelsAreRefusedByName() throws {
        let (image, mask) = try template()
        var values = image.data.scalars
        values[1234] = .nan
        let bad = try Volume(data: Tensor(shape: image.shape, scalars: values), affine: image.affine)
        #expect(throws: PreprocessingError.nonFiniteVoxels(path: "scan.nii.gz", count: 1)) {
            try AffineRegistration().register(bad, to: image, templateMask: mask, name: "scan.nii.gz")
        }
    }

    @Test func aConstantImageHasNoForeground() throws {
        let (image, mask) = try template()
        let flat = try Volume(data: Tensor(shape: image.shape, scalars: [Float](repeating: 7, count: image.data.count)), affine: image.affine)
        #expect(throws: PreprocessingError.noForeground(path: "flat", reason: "every voxel is 7.0")) {
            try AffineRegistration().register(flat, to: image, templateMask: mask, name: "flat")
        }
    }

    /// A scan of inverted contrast (a T2-like image against a T1 template) fails with a message
    /// that names the likely cause, instead of returning a transform.
    @Test func aTemplateOfAnotherContrastFailsClearly() throws {
        let (image, mask) = try template()
        let high = image.data.scalars.max() ?? 0
        let maskValues = mask.data.scalars
        let inverted = try Volume(data: Tensor(shape: image.shape, scalars: zip(image.data.scalars, maskValues).map { $1 != 0 ? high - $0 : 0 }),
                                  affine: image.affine)
        do {
            let result = try AffineRegistration().register(inverted, to: image, templateMask: mask, name: "t2.nii.gz")
            Issue.record("an inverted-contrast scan registered without complaint: NCC \(result.correlation), \(result.warnings)")
        } catch {
            guard case let .registrationFailed(path, reason) = error else { Issue.record("\(error)"); return }
            #expect(path == "t2.nii.gz")
            #expect(reason.contains("modality"), "\(reason)")
        }
    }

    /// Images that do not overlap (a scan 1 m away, no centre-of-mass start) fail by name.
    @Test func imagesThatDoNotOverlapFail() throws {
        let (image, mask) = try template()
        var far = image
        far.affine[0, 3] += 1000
        var options = RegistrationOptions()
        options.start = .identity
        do {
            _ = try AffineRegistration(options: options).register(far, to: image, templateMask: mask, name: "far")
            Issue.record("registered images that do not overlap")
        } catch {
            guard case let .registrationFailed(path, reason) = error else { Issue.record("\(error)"); return }
            #expect(path == "far" && reason.contains("overlap"), "\(reason)")
        }
        // The centre-of-mass start finds it.
        let result = try AffineRegistration().register(far, to: image, templateMask: mask, name: "far")
        let truth = Affine(rows: [1, 0, 0, 1000], [0, 1, 0, 0], [0, 0, 1, 0])
        #expect(displacement(result.transform, truth, over: mask).mean < 1)
    }

    @Test func maskOnAnotherGridAndBadOptionsAreRefused() throws {
        let (image, mask) = try template()
        var shifted = mask
        shifted.affine[1, 3] += 2
        #expect(throws: PreprocessingError.self) { try AffineRegistration().register(image, to: image, templateMask: shifted) }
        for change in [{ (o: inout RegistrationOptions) in o.stages = [] },
                       { (o: inout RegistrationOptions) in o.stages = [RegistrationStage(model: .affine, shrinkFactors: [0])] },
                       { (o: inout RegistrationOptions) in o.iterations = 0 },
                       { (o: inout RegistrationOptions) in o.tolerance = .nan },
                       { (o: inout RegistrationOptions) in o.minimumOverlap = 0 }] {
            var options = RegistrationOptions()
            change(&options)
            #expect(throws: PreprocessingError.self) { try options.validate() }
        }
    }
}

@Suite struct TransformFileTests {
    private let transform = Affine(rows: [1.05, -0.2, 0.1, 6.5], [0.22, 0.9, -0.21, -10.25], [0.15, 0.16, 1.02, 8.5])

    @Test func plainMatrixRoundTrips() throws {
        try withTemporaryDirectory { folder in
            let url = folder.appendingPathComponent("xfm.txt")
            try TransformFile.write(TransformFile.matrixText(transform, comment: ["template -> scan"]), to: url)
            #expect(try TransformFile.readMatrix(url) == transform)
            try TransformFile.write("1 0 0 0\n0 1 0\n0 0 1 0\n0 0 0 1\n", to: url)
            #expect(throws: PreprocessingError.invalidTransformFile(path: url.path, line: 2, reason: "expected 4 finite numbers, found '0 1 0'")) {
                try TransformFile.readMatrix(url)
            }
        }
    }

    /// ITK's text form is in LPS; reading it back (with or without a centre) gives the RAS map.
    @Test func itkTextRoundTripsAndHonoursTheCentre() throws {
        try withTemporaryDirectory { folder in
            let url = folder.appendingPathComponent("xfm.txt")
            let text = TransformFile.itkText(transform)
            #expect(text.hasPrefix("#Insight Transform File V1.0\n#Transform 0\nTransform: AffineTransform_double_3_3\nParameters: "))
            try TransformFile.write(text, to: url)
            let back = try TransformFile.readITK(url)
            #expect(zip(back.entries, transform.entries).allSatisfy { abs($0 - $1) < 1e-12 })
            // LPS point p maps to A (p − c) + t + c: a pure translation t = (1, 2, 3) in LPS is (−1, −2, 3) in RAS.
            try TransformFile.write("#Insight Transform File V1.0\n#Transform 0\nTransform: MatrixOffsetTransformBase_double_3_3\n"
                + "Parameters: 1 0 0 0 1 0 0 0 1 1 2 3\nFixedParameters: 10 20 30\n", to: url)
            #expect(try TransformFile.readITK(url) == Affine(rows: [1, 0, 0, -1], [0, 1, 0, -2], [0, 0, 1, 3]))
            // A rotation about a centre: the centre stays put.
            try TransformFile.write("#Insight Transform File V1.0\n#Transform 0\nTransform: AffineTransform_double_3_3\n"
                + "Parameters: 0 -1 0 1 0 0 0 0 1 0 0 0\nFixedParameters: 10 20 30\n", to: url)
            let rotation = try TransformFile.readITK(url)
            let centreRAS = [-10.0, -20, 30]
            #expect(rotation.apply(centreRAS).enumerated().allSatisfy { abs($1 - centreRAS[$0]) < 1e-12 })
            try TransformFile.write("#Insight Transform File V1.0\nTransform: Euler3DTransform_double_3_3\nParameters: 0 0 0 0 0 0\n", to: url)
            #expect(throws: PreprocessingError.self) { try TransformFile.readITK(url) }
        }
    }

    /// FLIRT matrices: identity between identical grids; a world shift appears with FSL's
    /// x flip for RAS-stored images; and the conversion inverts.
    @Test func fslMatrixConventions() throws {
        let grid = Grid(shape: [91, 109, 91], affine: .scaling([2, 2, 2], origin: [-90, -126, -72]))
        let identity = try TransformFile.fslMatrix(.identity, scan: grid, template: grid)
        #expect(zip(identity.entries, Affine.identity.entries).allSatisfy { abs($0 - $1) < 1e-12 })
        // Template point x sits at scan point x + (4, 0, 0): scan → template moves by −4 mm in x,
        // which FSL's flipped x coordinate sees as +4.
        let shift = Affine(rows: [1, 0, 0, 4], [0, 1, 0, 0], [0, 0, 1, 0])
        let flirt = try TransformFile.fslMatrix(shift, scan: grid, template: grid)
        #expect(abs(flirt[0, 3] - 4) < 1e-12 && abs(flirt[1, 3]) < 1e-12 && abs(flirt[0, 0] - 1) < 1e-12)
        // An LAS-stored (radiological) scan: no flip on its side.
        let las = Grid(shape: [91, 109, 91], affine: Affine(rows: [-2, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72]))
        let back = try TransformFile.transform(fromFSL: try TransformFile.fslMatrix(transform, scan: las, template: grid), scan: las, template: grid)
        #expect(zip(back.entries, transform.entries).allSatisfy { abs($0 - $1) < 1e-9 })
    }
}
