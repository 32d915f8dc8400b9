import Autoencoders
@testable import Classification
import Cohort
import Extraction
import Foundation
import TensorCore
import Testing
import TestSupport
import VolumeIO

/// The issue's check of the explanation maps: on the synthetic cohort, whose disease effect
/// is placed in the hippocampi (smaller) and the ventricles (larger), besides a thinner
/// cortex, each map's mean |value| over the hippocampi and ventricles is larger than over
/// the rest of the brain.
///
/// Protocol:
/// - cohort: `SyntheticCohortOptions` seed 0 (`ADWB_EXPLAIN_COHORT` picks another), 80
///   participants (40 CN, 40 AD), effect size 2, 48³ voxels at 4 mm, one session each;
///   split with 4 folds and no test set, seed 0: `split-0` (60 training, 20 validation);
/// - regions: the hippocampi and ventricles are the voxels labelled 5 or 6 in the `_dseg`
///   maps of at least half of the scans (the synthetic heads are posed differently); the rest
///   of the brain is every other voxel in at least half of the brain masks;
/// - a CAE (8 and 16 channels, 12³ patches z-scored in the brain mask and zero outside it,
///   8 epochs of 1,024 patches) pretrained on the training scans;
/// - maps: a linear SVM (the back end's defaults) on the CAE's features extracted with the
///   default options (3×3×3 regions, mean pooling); a linear SVM on voxel ICA (defaults:
///   20 components, 2³ blocks); the CNN head on whole volumes (encoder frozen, 2×2×2 pooling,
///   one hidden layer of 16, Adam 1e-3, 25 epochs) with 8-voxel (32 mm) occlusion cubes, the
///   physical size of the default 16-voxel cube at 2 mm.
///
/// Why the background is set to zero: z-scoring within the brain mask leaves the voxels
/// outside it at −mean/SD of the brain, a per-scan constant that carries the global atrophy
/// (more CSF: a darker brain) into every background voxel, a shortcut the models take. With
/// the background kept, the CNN head reaches balanced accuracy 0.95 and 1.0 on cohorts 0 and
/// 1 (0.80 and 0.75 without), and its CN occlusion map on cohort 0 does not peak in the
/// hippocampi and ventricles (ratio 0.97; 1.95 on cohort 1; the deep-feature SVM 1.40 and
/// 1.57); with a smaller CAE (4 and 8 channels, 3 short epochs) at 40 participants the
/// deep-feature SVM's largest univariate effects were corner regions outside the head
/// (|d| ≈ 3) and its map and the CNN's were below 1 (0.98; CN 0.61, AD 0.93): the maps
/// showed, correctly, that the models used the background.
///
/// Measured with this protocol (ratio over the hippocampi and ventricles / rest of the brain),
/// cohort seeds 0, 1, 2, 3, 4 (about 17 s each in a release build on two busy cores):
/// - SVM on deep features: 1.32, 1.17, 1.12, 1.28, 1.30;
/// - SVM on voxel ICA: 2.32, 1.88, 1.93, 2.37, 3.84;
/// - CNN occlusion CN: 1.69, 2.00, 2.33, 2.75, 1.90; AD: 1.42, 1.64, 1.86, 1.92, 1.78 (balanced
///   accuracy 0.80, 0.75, 0.60, 0.80, 0.65; 5 to 8 scans averaged per class).
///
/// The protocol was settled after exploring, and the deep-feature and CNN maps are the
/// fragile ones. At 40 participants the deep-feature SVM's map failed on cohort 2 (0.91);
/// with 4×4×4 regions it was near 1 (1.05 at 40 participants, 1.09 at 80: finer regions
/// split the centre of the brain and their weights are noisier). Other CNN heads gave
/// occlusion maps that peak elsewhere on some cohorts: a frozen encoder with 3×3×3 pooling
/// on cohort 2 (AD 0.69 at 80 participants), and several heads at 40 participants; fine-tuning
/// the whole network at Adam 3e-4 passed on cohorts 0 to 2 with balanced accuracy 0.55 to 0.65.
@Suite struct ExplanationAtrophyTests {
    @Test func mapsPeakWhereTheSyntheticAtrophyWasPlaced() throws {
        let scratch = try ScratchFolder("classify-explain-atrophy")
        defer { scratch.remove() }
        var cohort = SyntheticCohortOptions()
        cohort.seed = ProcessInfo.processInfo.environment["ADWB_EXPLAIN_COHORT"].flatMap(UInt64.init) ?? 0
        cohort.participants = 80
        cohort.effect = 2
        cohort.shape = [48, 48, 48]
        cohort.voxelSize = 4
        cohort.proportions = [0.5, 0, 0.5]
        cohort.unlabeledFraction = 0
        cohort.secondSessionFraction = 0
        let manifestURL = try SyntheticCohort.generate(cohort, to: scratch.url("cohort"), generator: "ExplanationAtrophyTests").manifestURL
        let manifest = try Manifest(contentsOf: manifestURL)
        try CohortSplitter.split(manifest, options: SplitOptions(folds: 4, testFraction: 0, seed: 0)).write(to: scratch.url("split"), source: manifest)
        let split = scratch.url("split/split-0")

        var atrophy = [Int](repeating: 0, count: 48 * 48 * 48), brain = atrophy
        for row in manifest.rows {
            let labels = try VolumeReader.read(manifest.url(for: try #require(row.labelPath))).data.scalars
            let mask = try VolumeReader.read(manifest.url(for: try #require(row.maskPath))).data.scalars
            for v in labels.indices {
                if labels[v] == Float(Tissue.hippocampus.rawValue) || labels[v] == Float(Tissue.ventricles.rawValue) { atrophy[v] += 1 }
                if mask[v] != 0 { brain[v] += 1 }
            }
        }
        let half = manifest.rows.count / 2
        let inside = atrophy.indices.filter { atrophy[$0] >= half }
        let outside = brain.indices.filter { brain[$0] >= half && atrophy[$0] < half }
        #expect(inside.count > 100 && outside.count > 10 * inside.count, "\(inside.count) and \(outside.count) voxels")
        let scanHeader = try VolumeReader.readHeader(manifest.url(for: manifest.rows[0].path))
        /// Mean |value| over the hippocampi and ventricles / over the rest of the brain.
        func ratio(_ url: URL) throws -> Double {
            let header = try VolumeReader.readHeader(url)
            #expect(header.spatialShape == [48, 48, 48] && header.volumeCount == 1 && header.affine == scanHeader.affine,
                    "\(url.lastPathComponent) is not on the scans' grid")
            let map = try VolumeReader.read(url).data.scalars
            let mean = { (voxels: [Int]) in voxels.reduce(0.0) { $0 + Double(abs(map[$1])) } / Double(voxels.count) }
            return mean(inside) / mean(outside)
        }

        var config = PretrainConfig(model: .cae)
        config.seed = 1
        config.patches.size = [12, 12, 12]
        config.patches.zeroOutsideMask = true
        config.patches.patchesPerEpoch = 1024
        config.cae!.channels = [8, 16]
        config.training.batchSize = 32
        config.training.epochs = 8
        _ = try Pretraining.start(config: config, manifest: split.appendingPathComponent("train.tsv"), output: scratch.url("cae")).trainer.run()
        let features = try Extraction.run(model: scratch.url("cae"), manifest: manifestURL, options: ExtractionOptions())
        try ExtractionOutput.prepare(scratch.url("features"), overwrite: false)
        _ = try ExtractionOutput.write(features, run: try PretrainedRun.load(scratch.url("cae")), to: scratch.url("features"))

        var ratios: [(map: String, ratio: Double)] = []
        var svm = ClassifyRequest(backend: .svm, task: .adVsCN, split: split, out: scratch.url("svm"))
        svm.features = scratch.url("features")
        svm.explanations = ExplanationSettings()
        let svmRecord = try #require(try ClassifyJob.run(svm).report.explanations)
        #expect(svmRecord.files.map(\.file) == ["svm_weights.tsv", "svm_weights.nii.gz"] && svmRecord.notes.isEmpty, "\(svmRecord)")
        ratios.append(("SVM on deep features", try ratio(scratch.url("svm/svm_weights.nii.gz"))))

        var ica = ClassifyRequest(backend: .icaSVM, task: .adVsCN, split: split, out: scratch.url("ica"))
        ica.manifest = manifestURL
        ica.explanations = ExplanationSettings()
        let icaRecord = try #require(try ClassifyJob.run(ica).report.explanations)
        #expect(icaRecord.files.map(\.file) == ["svm_weights.tsv", "svm_weights.nii.gz"] && icaRecord.notes.isEmpty, "\(icaRecord)")
        ratios.append(("SVM on voxel ICA", try ratio(scratch.url("ica/svm_weights.nii.gz"))))

        var cnn = ClassifyRequest(backend: .cnn, task: .adVsCN, split: split, out: scratch.url("cnn"))
        cnn.manifest = manifestURL
        cnn.model = scratch.url("cae")
        cnn.cnn.freeze = "all"
        cnn.cnn.grid = [2, 2, 2]
        cnn.cnn.hidden = [16]
        cnn.cnn.learningRate = 1e-3
        cnn.cnn.epochs = 25
        cnn.cnn.patience = 25
        var occlusion = ExplanationSettings()
        occlusion.occlusionCube = 8
        cnn.explanations = occlusion
        let cnnReport = try ClassifyJob.run(cnn).report
        let cnnRecord = try #require(cnnReport.explanations)
        #expect(cnnRecord.files.map(\.file) == ["occlusion_CN.nii.gz", "occlusion_AD.nii.gz"], "\(cnnRecord)")
        #expect(cnnRecord.files.map { $0.scans ?? 0 } == [cnnRecord.scansPerClass?["CN"] ?? -1, cnnRecord.scansPerClass?["AD"] ?? -1])
        for file in cnnRecord.files { ratios.append(("CNN occlusion \(file.className ?? "?")", try ratio(scratch.url("cnn/\(file.file)")))) }

        print("explanation maps, mean |value| over the hippocampi and ventricles / over the rest of the brain (cohort \(cohort.seed)): "
              + ratios.map { "\($0.map) \(String(format: "%.2f", $0.ratio))" }.joined(separator: ", ")
              + "; CNN balanced accuracy \(cnnReport.sets[0].metrics.balancedAccuracy), scans averaged \(cnnRecord.scansPerClass ?? [:])")
        #expect(ratios.count == 4)
        for (map, value) in ratios { #expect(value > 1, "\(map): \(value)") }
    }
}
