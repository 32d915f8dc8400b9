import Cohort
import Foundation
import Testing
import TensorCore
import VolumeIO
@testable import Preprocessing

/// The shared data folder (`shared/data`, beside the repository), found by walking up from
/// this file, or from `ADWB_SHARED_DATA` when set; nil when absent (a bare clone).
enum SharedData {
    static let folder: URL? = {
        if let path = ProcessInfo.processInfo.environment["ADWB_SHARED_DATA"] {
            return URL(fileURLWithPath: path)
        }
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.pathComponents.count > 1 {
            let candidate = directory.appendingPathComponent("shared/data")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("SHA256SUMS").path) { return candidate }
            directory.deleteLastPathComponent()
        }
        return nil
    }()
}

/// A volume on an identity-like grid for hand-made cases.
func testVolume(_ shape: [Int], _ values: [Float], affine: Affine = .scaling([1, 1, 1])) throws -> Volume {
    try Volume(data: Tensor(shape: shape, scalars: values), affine: affine)
}

@Suite struct BrainExtractionTests {
    /// One synthetic scan: which recipe, which participant.
    struct SyntheticCase: CustomTestStringConvertible, Sendable {
        let shape: Int
        let voxelSize: Double
        let varyGeometry: Bool
        let participant: Int
        var testDescription: String { "\(shape)^3 at \(voxelSize) mm\(varyGeometry ? ", varied geometry" : ""), participant \(participant)" }
    }

    static let syntheticCases = [
        SyntheticCase(shape: 96, voxelSize: 2, varyGeometry: false, participant: 0),
        SyntheticCase(shape: 96, voxelSize: 2, varyGeometry: false, participant: 1),
        SyntheticCase(shape: 96, voxelSize: 2, varyGeometry: true, participant: 2),
        SyntheticCase(shape: 96, voxelSize: 2, varyGeometry: true, participant: 3),
        SyntheticCase(shape: 96, voxelSize: 2, varyGeometry: true, participant: 5),
        SyntheticCase(shape: 128, voxelSize: 1.5, varyGeometry: true, participant: 3),
    ]

    static func render(_ synthetic: SyntheticCase) throws -> SyntheticScan {
        var options = SyntheticCohortOptions()
        options.participants = 8
        options.seed = 7
        options.shape = [synthetic.shape, synthetic.shape, synthetic.shape]
        options.voxelSize = synthetic.voxelSize
        options.varyGeometry = synthetic.varyGeometry
        let participants = try SyntheticCohort.participants(options)
        return SyntheticCohort.render(participants[synthetic.participant], session: 0, options: options)
    }

    @Test(arguments: syntheticCases)
    func syntheticScansMatchTheirTrueMasks(_ synthetic: SyntheticCase) throws {
        let scan = try Self.render(synthetic)
        let start = Date()
        let mask = try BrainExtraction.extractBrain(scan.t1)
        let seconds = Date().timeIntervalSince(start)
        let dice = try Overlap.dice(mask, scan.mask)
        print(String(format: "skull strip, synthetic %@ (%@, %@): Dice %.4f, Jaccard %.4f, %.2f s", synthetic.testDescription,
                     scan.t1.shape.map(String.init).joined(separator: "x"), scan.t1.affine.axisCodes, dice,
                     try Overlap.jaccard(mask, scan.mask), seconds))
        #expect(dice >= 0.9, "Dice \(dice)")
        #expect(Grid(mask) == Grid(scan.t1))
        #expect(mask.data.scalars.allSatisfy { $0 == 0 || $0 == 1 })
    }

    @Test func colin27WholeHeadAgainstItsBETBrain() throws {
        guard let shared = SharedData.folder else {
            print("skipped colin27 skull strip: no shared/data found above \(#filePath) (set ADWB_SHARED_DATA)")
            return
        }
        let head = try VolumeReader.read(shared.appendingPathComponent("colin27/ch2.nii.gz"))
        let bet = try VolumeReader.read(shared.appendingPathComponent("colin27/ch2bet.nii.gz"))
        let start = Date()
        let mask = try BrainExtraction.extractBrain(head, label: "colin27/ch2.nii.gz")
        let seconds = Date().timeIntervalSince(start)
        let dice = try Overlap.dice(mask, bet, label: "colin27/ch2bet.nii.gz")
        let volumes = (BinaryMask(nonzeroOf: mask).count, BinaryMask(nonzeroOf: bet).count)
        print(String(format: "skull strip, colin27 %@ at 1 mm: Dice %.4f vs ch2bet (%d vs %d voxels), %.2f s on %d threads",
                     head.shape.map(String.init).joined(separator: "x"), dice, volumes.0, volumes.1, seconds, Engine.threads))
        // Reported, with a loose floor: BET's mask is one method's answer, not ground truth.
        #expect(dice >= 0.85)
    }

    @Test func itkSubjectWithAnisotropicVoxelsAgainstItsSkullStripLabels() throws {
        guard let shared = SharedData.folder else {
            print("skipped ITK subject skull strip: no shared/data found above \(#filePath) (set ADWB_SHARED_DATA)")
            return
        }
        // A real head at 2 x 2 x 3 mm, stored LSA; its reference brain is the labels > 0.
        let folder = shared.appendingPathComponent("subject-itk-kmeans-t1")
        let head = try VolumeReader.read(folder.appendingPathComponent("KmeansTest_T1UCharRaw.nii.gz"))
        let reference = try VolumeReader.read(folder.appendingPathComponent("KmeansTest_T1RawSkullStrip.nii.gz"))
        let mask = try BrainExtraction.extractBrain(head, label: "KmeansTest_T1UCharRaw.nii.gz")
        let dice = try Overlap.dice(mask, reference, label: "KmeansTest_T1RawSkullStrip.nii.gz")
        print(String(format: "skull strip, ITK subject %@ at %@ mm (%@): Dice %.4f vs its skull-strip labels",
                     head.shape.map(String.init).joined(separator: "x"), head.voxelSizes.map { String(format: "%.3g", $0) }.joined(separator: "x"),
                     head.affine.axisCodes, dice))
        #expect(dice >= 0.85)
    }

    @Test func applyMaskZeroesTheOutside() throws {
        let image = try testVolume([2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8])
        let mask = try testVolume([2, 2, 2], [1, 0, 0, 1, 0.5, 0, -1, 0])
        let masked = try BrainExtraction.applyMask(mask, to: image)
        #expect(masked.data.scalars == [1, 0, 0, 4, 5, 0, 7, 0])
        #expect(masked.affine == image.affine)
    }

    @Test func masksOnAnotherGridAreRefused() throws {
        let image = try testVolume([3, 2, 2], [Float](repeating: 1, count: 12))
        let otherShape = try testVolume([2, 3, 2], [Float](repeating: 1, count: 12))
        var shifted = Affine.scaling([1, 1, 1])
        shifted[0, 3] = 0.001
        let otherAffine = try testVolume([3, 2, 2], [Float](repeating: 1, count: 12), affine: shifted)
        var nearly = Affine.scaling([1, 1, 1])
        nearly[1, 3] = 0.00005
        let sameWithinTolerance = try testVolume([3, 2, 2], [Float](repeating: 1, count: 12), affine: nearly)
        for mask in [otherShape, otherAffine] {
            #expect {
                _ = try BrainExtraction.applyMask(mask, to: image, label: "brain_mask.nii.gz")
            } throws: { error in
                guard case let .gridMismatch(path, expected, found) = error as? PreprocessingError else { return false }
                return path == "brain_mask.nii.gz" && expected.contains("3x2x2") && found != expected
            }
            #expect(throws: PreprocessingError.self) { _ = try Overlap.dice(image, mask) }
        }
        #expect(try BrainExtraction.applyMask(sameWithinTolerance, to: image).data == image.data)
    }

    @Test func overlapByHand() throws {
        let a = try testVolume([2, 2, 2], [1, 1, 1, 1, 0, 0, 0, 0])
        let b = try testVolume([2, 2, 2], [0, 0, 1, 1, 1, 1, 0, 0])
        let empty = try testVolume([2, 2, 2], [Float](repeating: 0, count: 8))
        #expect(try Overlap.dice(a, b) == 0.5)
        #expect(try Overlap.jaccard(a, b) == 2.0 / 6)
        #expect(try Overlap.dice(a, a) == 1)
        #expect(try Overlap.dice(a, empty) == 0)
        #expect(try Overlap.dice(empty, empty) == 1)
        #expect(try Overlap.jaccard(empty, empty) == 1)
    }

    @Test func badInputThrowsTypedErrors() throws {
        var values = [Float](repeating: 10, count: 4 * 4 * 4)
        values[5] = .nan
        values[9] = .infinity
        #expect(throws: PreprocessingError.nonFiniteVoxels(path: "T1", count: 2)) {
            _ = try BrainExtraction.extractBrain(try testVolume([4, 4, 4], values))
        }
        #expect {
            _ = try BrainExtraction.extractBrain(try testVolume([4, 4, 4], [Float](repeating: 7, count: 64)), label: "flat.nii")
        } throws: { error in
            guard case let .noForeground(path, reason) = error as? PreprocessingError else { return false }
            return path == "flat.nii" && reason.contains("constant")
        }
        // A bright speck too small to survive the erosion.
        var speck = [Float](repeating: 0, count: 16 * 16 * 16)
        speck[(8 * 16 + 8) * 16 + 8] = 100
        #expect {
            _ = try BrainExtraction.extractBrain(try testVolume([16, 16, 16], speck))
        } throws: { error in
            guard case let .noForeground(_, reason) = error as? PreprocessingError else { return false }
            return reason.contains("erosion")
        }
        let flatAffine = Affine(rows: [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0])
        #expect {
            _ = try BrainExtraction.extractBrain(try testVolume([4, 4, 4], [Float](repeating: 1, count: 64), affine: flatAffine))
        } throws: { error in
            if case .unsupportedVolume = error as? PreprocessingError { return true }
            return false
        }
    }

    @Test func optionsAreValidated() throws {
        let image = try testVolume([4, 4, 4], (0..<64).map(Float.init))
        let bad: [(String, (inout BrainExtractionOptions) -> Void)] = [
            ("erosion radius", { $0.erosionRadius = -1 }),
            ("dilation radius", { $0.dilationRadius = .nan }),
            ("closing radius", { $0.closingRadius = 100 }),
            ("threshold fraction", { $0.threshold = .robustRangeFraction(1.5) }),
            ("head fraction", { $0.headFraction = 0 }),
            ("histogram bins", { $0.histogramBins = 2 }),
        ]
        for (name, change) in bad {
            var options = BrainExtractionOptions()
            change(&options)
            #expect {
                _ = try BrainExtraction.extractBrain(image, options: options)
            } throws: { error in
                guard case let .invalidOption(option, _, _) = error as? PreprocessingError else { return false }
                return option == name
            }
        }
        let roundTrip = try JSONDecoder().decode(BrainExtractionOptions.self, from: JSONEncoder().encode(BrainExtractionOptions()))
        #expect(roundTrip == BrainExtractionOptions())
    }

    @Test func thresholdRulesOnNestedBlocks() throws {
        // Background 0; a dark shell (20, "CSF and bone") around a 10^3 block of tissue:
        // 60 ("grey matter") around a 100 ("white matter") core. Every rule cuts between 20 and 60.
        let n = 20
        var values = [Float](repeating: 0, count: n * n * n)
        func inside(_ range: Range<Int>, _ i: Int, _ j: Int, _ k: Int) -> Bool { range.contains(i) && range.contains(j) && range.contains(k) }
        for i in 0..<n { for j in 0..<n { for k in 0..<n {
            values[(i * n + j) * n + k] = inside(7..<13, i, j, k) ? 100 : inside(5..<15, i, j, k) ? 60 : inside(3..<17, i, j, k) ? 20 : 0
        } } }
        let image = try testVolume([n, n, n], values)
        for rule: BrainExtractionOptions.Threshold in [.otsuThreeClass, .otsu, .robustRangeFraction(0.5)] {
            var options = BrainExtractionOptions()
            options.threshold = rule
            let threshold = try BrainExtraction.brainThreshold(image, options: options, label: "blocks")
            #expect(threshold >= 20 && threshold < 60, "\(rule): \(threshold)")
            // The core (6^3 after a 2 mm erosion) regrows to the block's corners (2√3 mm away).
            options.erosionRadius = 2
            options.dilationRadius = 4
            let mask = try BrainExtraction.extractBrain(image, options: options)
            #expect(mask.data.scalars.reduce(0, +) == 1000, "\(rule): the 10^3 block, closed and filled, stays itself")
        }
    }
}
