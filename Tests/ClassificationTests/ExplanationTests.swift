import Autoencoders
@testable import Classification
import Extraction
import Foundation
import Learn
import TensorCore
import Testing
import TestSupport
import VolumeIO

/// The pieces of `--explain` on hand-made cases: occlusion sensitivity against a naive
/// recomputation, region painting and receptive fields, and the weight probe of affine
/// pipelines (directly and through voxel ICA to the scans' voxels).
@Suite struct ExplanationTests {
    // MARK: occlusion

    @Test func cubePositionsCoverTheAxisWithWholeCubes() {
        #expect(OcclusionSensitivity.starts(extent: 96, cube: 16, stride: 16) == [0, 16, 32, 48, 64, 80])
        #expect(OcclusionSensitivity.starts(extent: 96, cube: 16, stride: 8).count == 11)
        #expect(OcclusionSensitivity.starts(extent: 40, cube: 16, stride: 16) == [0, 16, 24])
        #expect(OcclusionSensitivity.starts(extent: 6, cube: 3, stride: 2) == [0, 2, 3])
        #expect(OcclusionSensitivity.starts(extent: 10, cube: 16, stride: 8) == [0])
        #expect(OcclusionSensitivity.starts(extent: 16, cube: 16, stride: 4) == [0])
    }

    /// A model whose class-1 probability is σ(a·Σ_box x − b): only the box's voxels matter.
    static func boxModel(shape: Triple, box: [Range<Int>], a: Float = 0.5, b: Float = 1) -> (Tensor) throws -> Tensor {
        { x in
            let n = x.shape[0]
            var out: [Float] = []
            for i in 0..<n {
                var total: Float = 0
                for u in box[0] { for v in box[1] { for w in box[2] {
                    total += x.scalars[i * shape.product + (u * shape.h + v) * shape.w + w]
                } } }
                let p = 1 / (1 + exp(-(a * total - b)))
                out += [1 - p, p]
            }
            return try Tensor(shape: [n, 2], scalars: out)
        }
    }

    @Test func occlusionEqualsANaiveRecomputationOnATinyVolume() throws {
        let shape = Triple(6, 5, 4)
        let volume = TestSupport.randomTensor([1, 1, 6, 5, 4], seed: 11, low: 0, high: 2)
        let model = Self.boxModel(shape: shape, box: [1..<3, 2..<4, 1..<2])
        var settings = ExplanationSettings()
        settings.occlusionCube = 3
        settings.occlusionStride = 2
        settings.occlusionFill = -0.5
        settings.batchSize = 3  // 3·2·2 = 12 positions: four batches
        for target in [0, 1] {
            let map = try OcclusionSensitivity.map(volume, target: target, settings: settings, probabilities: model)
            #expect(map.shape == [6, 5, 4])
            // Naive: every cube position (starts by hand: x 0, 2, 3; y 0, 2; z 0, 1), one forward pass each.
            let intact = try model(volume).scalars[target]
            var sums = [Double](repeating: 0, count: 120), counts = [Int](repeating: 0, count: 120)
            for x0 in [0, 2, 3] { for y0 in [0, 2] { for z0 in [0, 1] {
                var occluded = volume.scalars
                var inside: [Int] = []
                for x in x0..<(x0 + 3) { for y in y0..<(y0 + 3) { for z in z0..<(z0 + 3) {
                    occluded[(x * 5 + y) * 4 + z] = -0.5
                    inside.append((x * 5 + y) * 4 + z)
                } } }
                let p = try model(try Tensor(shape: [1, 1, 6, 5, 4], scalars: occluded)).scalars[target]
                for v in inside { sums[v] += Double(intact - p); counts[v] += 1 }
            } } }
            #expect(counts.allSatisfy { $0 > 0 })
            let expected = zip(sums, counts).map { Float($0 / Double($1)) }
            #expect(TestSupport.closeness(map.scalars, expected, rtol: 1e-5, atol: 1e-7) == 0, "class \(target)")
        }
    }

    @Test func occlusionIsPositiveNearTheBoxAndZeroFarFromIt() throws {
        let shape = Triple(24, 24, 24)
        let box = [4..<8, 4..<8, 4..<8]
        let volume = TestSupport.randomTensor([1, 1, 24, 24, 24], seed: 12, low: 0.5, high: 1.5)
        var settings = ExplanationSettings()
        settings.occlusionCube = 4
        settings.occlusionStride = 2
        let map = try OcclusionSensitivity.map(volume, target: 1, settings: settings, probabilities: Self.boxModel(shape: shape, box: box, a: 0.1, b: 4))
        for x in 0..<24 { for y in 0..<24 { for z in 0..<24 {
            let value = map.scalars[(x * 24 + y) * 24 + z]
            let inBox = box[0].contains(x) && box[1].contains(y) && box[2].contains(z)
            // Cubes touching the box start at 2, 4 or 6: they cover 2 ..< 10 on every axis.
            let far = [x, y, z].contains { $0 < 2 || $0 >= 10 }
            if inBox { #expect(value > 0, "(\(x), \(y), \(z)) in the box: \(value)") }
            if far { #expect(value == 0, "(\(x), \(y), \(z)) far from the box: \(value)") }
        } } }
    }

    @Test func occlusionRefusesAnythingButOneSingleChannelVolume() {
        let model = Self.boxModel(shape: Triple(4, 4, 4), box: [0..<1, 0..<1, 0..<1])
        for shape in [[2, 1, 4, 4, 4], [1, 2, 4, 4, 4], [1, 4, 4, 4]] {
            #expect(throws: ClassificationError.self) {
                _ = try OcclusionSensitivity.map(Tensor(zeros: shape), target: 0, settings: ExplanationSettings(), probabilities: model)
            }
        }
        var bad = ExplanationSettings()
        bad.occlusionStride = 17  // longer than the cube: voxels would be left uncovered
        #expect(throws: ClassificationError.self) { try bad.validate() }
    }

    // MARK: regions

    @Test func paintingAveragesOverlappingBoxesAndLeavesZeroOutside() {
        let shape = Triple(4, 3, 2)
        let boxes = [[0..<2, 0..<3, 0..<2], [1..<4, 1..<2, 0..<1]]
        let painted = SVMWeights.paint([1, 3], boxes: boxes, shape: shape)
        var expected = [Float](repeating: 0, count: 24)
        for x in 0..<4 { for y in 0..<3 { for z in 0..<2 {
            let inA = x < 2, inB = x >= 1 && y == 1 && z == 0
            expected[(x * 3 + y) * 2 + z] = inA && inB ? 2 : inA ? 1 : inB ? 3 : 0
        } } }
        #expect(painted == expected)
        #expect(SVMWeights.regionMagnitudes([3, 1, 4, -2], regions: 2) == [5, Double(5).squareRoot()])
    }

    /// A two-level CAE (conv k3 p1, ReLU, max-pool 2, twice): map voxels a ..< b see input
    /// voxels 4a − 3 ..< 4b + 3 (clipped), so on 16³ a 2×2×2 grid's regions are 0 ..< 11 and
    /// 5 ..< 16 along every axis.
    @Test func regionBoxesFollowTheEncodersReceptiveFields() throws {
        var config = PretrainConfig(model: .cae)
        config.patches.size = [8, 8, 8]
        config.cae!.channels = [2, 2]
        let cae = try ConvolutionalAutoencoder(patchSize: [8, 8, 8], options: config.cae!, seed: 1)
        var options = ExtractionOptions()
        options.grid = [2, 2, 2]
        let encoder = try FeatureEncoder(config: config, model: cae, options: options)
        let shape = Triple(16, 16, 16)
        #expect(encoder.mapShape(for: shape) == Triple(4, 4, 4))
        #expect(encoder.inputVoxels(ofMapVoxels: 1..<2, axis: 1, inputExtent: 16) == 1..<11)
        #expect(encoder.inputVoxels(ofMapVoxels: 3..<4, axis: 2, inputExtent: 16) == 9..<16)
        let grid = try RegionGrid(mapShape: encoder.mapShape(for: shape), grid: [2, 2, 2])
        let boxes = SVMWeights.regionBoxes(encoder: encoder, grid: grid, inputShape: shape)
        let (low, high) = (0..<11, 5..<16)
        #expect(boxes.count == 8)
        #expect(boxes[0] == [low, low, low] && boxes[1] == [low, low, high] && boxes[2] == [low, high, low] && boxes[7] == [high, high, high])
    }

    // MARK: weights

    @Test func probingRecoversTheWeightsOfAnAffinePipeline() throws {
        let d = 700  // more than one block of probe rows
        var generator = Xoshiro256StarStar(seed: 5)
        let mean = (0..<d).map { _ in Double(generator.nextStandardNormal()) * 3 }
        let scale = (0..<d).map { _ in 0.5 + generator.nextUnitDouble() * 4 }
        let w = (0..<2).map { _ in (0..<d).map { _ in Float(generator.nextStandardNormal()) } }
        let standardiser = Standardiser.Fitted(mean: mean, scale: scale)
        // Standardiser → two linear scores with intercepts.
        let decision: (Tensor) throws -> Tensor = { x in
            let z = try standardiser.transform(x)
            let n = x.shape[0]
            var out: [Float] = []
            for i in 0..<n {
                for c in 0..<2 {
                    var total: Double = c == 0 ? 0.3 : -1.2
                    for j in 0..<d { total += Double(z.scalars[i * d + j]) * Double(w[c][j]) }
                    out.append(Float(total))
                }
            }
            return try Tensor(shape: [n, 2], scalars: out)
        }
        let x0 = mean.map { Float($0) + 0.1 }
        let steps = scale.map(Float.init)
        let probed = try SVMWeights.probe(decision, at: x0, steps: steps)
        #expect(probed.count == 2 && probed.allSatisfy { $0.count == d })
        for c in 0..<2 {
            let expected = (0..<d).map { Float(Double(w[c][$0]) / scale[$0]) }
            #expect(TestSupport.closeness(probed[c].map(Float.init), expected, rtol: 1e-3, atol: 2e-5) == 0, "column \(c)")
        }
    }

    /// The voxel ICA weight map is the derivative of the decision value with respect to each
    /// scan voxel: compared with finite differences through block averaging, voxel
    /// selection, centring and the least-squares loadings.
    @Test func voxelWeightsAreTheDecisionFunctionsDerivativeInEveryScanVoxel() throws {
        let scanShape = Triple(4, 4, 6)  // blocks of 2: a 2×2×3 grid
        let voxels = [0, 1, 3, 4, 6, 8, 9, 11]
        let layout = VoxelLayout(scanShape: scanShape, scanAffine: .identity, factor: 2, grid: Triple(2, 2, 3), affine: .identity, voxels: voxels)
        let maps = TestSupport.randomTensor([voxels.count, 3], seed: 8)
        let ica = SpatialICA(layout: layout, maps: maps, iterations: 1, converged: true, warning: nil)
        let w: [Double] = [0.7, -1.3, 0.4]
        func decision(_ scan: [Float]) throws -> Double {
            let row = voxels.map { voxel -> Float in
                let (a, b, c) = (voxel / 6, voxel / 3 % 2, voxel % 3)
                var total: Float = 0
                for x in (2 * a)..<(2 * a + 2) { for y in (2 * b)..<(2 * b + 2) { for z in (2 * c)..<(2 * c + 2) { total += scan[(x * 4 + y) * 6 + z] } } }
                return total / 8
            }
            let loadings = try ica.loadings(try Tensor(shape: [1, voxels.count], scalars: row))
            return (0..<3).reduce(0.25) { $0 + w[$1] * Double(loadings.scalars[$1]) }
        }
        let map = layout.scanGradient(try ica.voxelGradient(w))
        let scan = TestSupport.randomTensor([96], seed: 9).scalars
        let base = try decision(scan)
        var numerical: [Float] = []
        for i in 0..<96 {
            var moved = scan
            moved[i] += 1
            numerical.append(Float(try decision(moved) - base))
        }
        #expect(TestSupport.closeness(map, numerical, rtol: 2e-3, atol: 2e-4) == 0, "map \(map)\nfinite differences \(numerical)")
        #expect(map.contains { $0 != 0 } && map[4] == 0, "voxels of unselected blocks get 0")
    }

    @Test func columnsFollowTheClassesTheyArgueFor() {
        #expect(SVMWeights.columnClasses(classes: 2, liblinear: false) == [1])
        #expect(SVMWeights.columnClasses(classes: 2, liblinear: true) == [1])
        #expect(SVMWeights.columnClasses(classes: 3, liblinear: true) == [0, 1, 2])
        #expect(SVMWeights.columnClasses(classes: 3, liblinear: false) == nil)
    }

    // MARK: through ClassifyJob

    /// A features folder without an extraction record (as tests write them) still gets the
    /// weight table; the map is skipped with a note. Three classes with the smo solver get a
    /// note and no file; an RBF kernel too.
    @Test func featureSVMsWriteTheirWeightTableAndExplainWhatTheyCannotMap() throws {
        let scratch = try ScratchFolder("classify-explain-features")
        defer { scratch.remove() }
        let cohort = FeatureCohort.make()
        try Fixture.writeSplit(scratch.url("split"), cohort)
        try Fixture.writeFeatures(scratch.url("features"), cohort.all)
        var request = Fixture.request(.svm, split: scratch.url("split"), features: scratch.url("features"), out: scratch.url("out"))
        request.explanations = ExplanationSettings()
        let (report, files) = try ClassifyJob.run(request)
        #expect(files.map(\.lastPathComponent) == [ClassifyJob.predictionsFile, ClassifyJob.metricsFile, "svm_weights.tsv"])
        let explanations = try #require(report.explanations)
        #expect(explanations.files.map(\.file) == ["svm_weights.tsv"] && explanations.files[0].className == "AD")
        #expect(explanations.notes.contains { $0.contains("no extraction record") }, "\(explanations.notes)")
        #expect(explanations.settings.occlusionStride == 16)
        #expect(try Fixture.report(scratch.url("out")).explanations == explanations)
        let table = try String(contentsOf: scratch.url("out/svm_weights.tsv"), encoding: .utf8).split(separator: "\n")
        #expect(table.first == "feature\tweight_AD\tweight_per_sd_AD" && table.count == 7)
        // The informative features (the first three: AD high) carry positive weights.
        let informative = table[1...3].compactMap { Double($0.split(separator: "\t")[1]) }
        #expect(informative.count == 3 && informative.allSatisfy { $0 > 0 }, "\(table)")

        var threeClass = request
        threeClass.task = .threeClass
        threeClass.out = scratch.url("out-3")
        let three = try #require(try ClassifyJob.run(threeClass).report.explanations)
        #expect(three.files.isEmpty && three.notes.contains { $0.contains("one-vs-one") }, "\(three.notes)")

        // liblinear's one-vs-rest columns: a weight per class.
        threeClass.svm.solver = "liblinear"
        threeClass.out = scratch.url("out-3-liblinear")
        let oneVsRest = try #require(try ClassifyJob.run(threeClass).report.explanations)
        #expect(oneVsRest.files.map(\.file) == ["svm_weights.tsv"] && oneVsRest.files[0].className == nil, "\(oneVsRest)")
        let header = try String(contentsOf: scratch.url("out-3-liblinear/svm_weights.tsv"), encoding: .utf8).split(separator: "\n").first
        #expect(header == "feature\tweight_CN\tweight_MCI\tweight_AD\tweight_per_sd_CN\tweight_per_sd_MCI\tweight_per_sd_AD")

        var rbf = request
        rbf.svm.kernel = "rbf"
        rbf.out = scratch.url("out-rbf")
        let kernel = try #require(try ClassifyJob.run(rbf).report.explanations)
        #expect(kernel.files.isEmpty && kernel.notes.contains { $0.contains("linear kernel") }, "\(kernel.notes)")
    }

    @Test func aCNNHeadOnFeaturesHasNoVolumeToOcclude() throws {
        let scratch = try ScratchFolder("classify-explain-cnn-features")
        defer { scratch.remove() }
        let cohort = FeatureCohort.make()
        try Fixture.writeSplit(scratch.url("split"), cohort)
        try Fixture.writeFeatures(scratch.url("features"), cohort.all)
        var request = Fixture.request(.cnn, split: scratch.url("split"), features: scratch.url("features"), out: scratch.url("out"))
        request.explanations = ExplanationSettings()
        let (report, files) = try ClassifyJob.run(request)
        #expect(files.count == 4, "\(files.map(\.lastPathComponent))")
        let explanations = try #require(report.explanations)
        #expect(explanations.files.isEmpty && explanations.notes.contains { $0.contains("whole volumes") }, "\(explanations)")
    }

    @Test func withoutExplanationsTheReportHasNone() throws {
        let scratch = try ScratchFolder("classify-explain-none")
        defer { scratch.remove() }
        let cohort = FeatureCohort.make()
        try Fixture.writeSplit(scratch.url("split"), cohort)
        try Fixture.writeFeatures(scratch.url("features"), cohort.all)
        let request = Fixture.request(.svm, split: scratch.url("split"), features: scratch.url("features"), out: scratch.url("out"))
        #expect(try ClassifyJob.run(request).report.explanations == nil)
        let json = try String(contentsOf: scratch.url("out/metrics.json"), encoding: .utf8)
        #expect(!json.contains("explanations"))
    }
}
