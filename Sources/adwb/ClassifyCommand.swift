import ArgumentParser
import Classification
import Foundation
import TensorCore

/// `adwb classify`: fit a back end on a split's training rows, predict its validation/test rows.
struct ClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Fit a classifier back end (svm, ica-svm, cnn) on a split's training participants and predict the rest.",
        discussion: """
        Inputs: --split names a split-<i>/ folder (train.tsv, validation.tsv, optionally test.tsv) as `adwb manifest \
        split` writes it. The svm back end takes --features (an `adwb extract` output folder); ica-svm takes \
        --features (FastICA on the deep features) or --manifest (spatial ICA on the scans' voxels, Yang et al. 2011); \
        cnn takes --model (a pretraining run) with --manifest (encoder + new dense head fine-tuned on whole volumes) \
        or --features (a dense head on the features). Rows whose diagnosis is not in --task are left out.
        SVM hyperparameters are chosen by grid search with participant-level inner cross-validation on the training \
        rows; standardisers and ICA are fitted on training rows only. OUT gets predictions.tsv (participant_id, \
        session_id, diagnosis, predicted, prob_<class>..., set) and metrics.json (accuracy, balanced accuracy, \
        sensitivity, specificity, ROC AUC, confusion matrix per set, the model selection, provenance); ica-svm on \
        voxels adds ica_components.nii.gz, cnn adds cnn_best.safetensors and training_log.tsv.
        With --explain: the cnn head on whole volumes adds occlusion_<CLASS>.nii.gz (the mean drop in the class's \
        probability when a cube around each voxel is blanked, over correctly classified validation scans); a linear \
        SVM adds svm_weights.tsv (its weight per feature) and svm_weights.nii.gz (the weights in the scans' space: \
        through the pooling regions for deep features, through the ICA components for voxels; one file per class \
        for three classes with liblinear). All maps are float32 NIfTI on the scans' grid.
        """
    )

    @Option(help: "Back end: svm, ica-svm or cnn.")
    var backend: Backend

    @Option(help: "ad-cn, mci-cn, ad-mci (two classes) or cn-mci-ad (three).")
    var task: ClassificationTask = .adVsCN

    @Option(help: "An `adwb extract` output folder.")
    var features: String?

    @Option(help: "A manifest of the scans (voxel ICA, whole-volume CNN).")
    var manifest: String?

    @Option(help: "cnn on whole volumes: the pretraining run whose encoder is fine-tuned.")
    var model: String?

    @Option(help: "A split-<i>/ folder.")
    var split: String

    @Option(help: "Output folder.")
    var out: String

    @Option(help: "Seed for inner folds, Platt scaling, ICA and the CNN.")
    var seed: UInt64 = 0

    @Flag(help: "Replace the classification outputs already in --out.")
    var overwrite = false

    @Option(name: .customLong("kernel"), help: "SVM kernel: linear, rbf, poly or sigmoid.")
    var kernel = "linear"

    @Option(name: .customLong("c"), help: "SVM C values to search, comma-separated (default: 0.001,0.01,0.1,1,10 for a linear kernel, 1,10,100,1000 for the others).")
    var cValues: String?

    @Option(name: .customLong("gamma"), help: "SVM gamma values to search: numbers, scale, auto or scale*<factor>, comma-separated.")
    var gammaValues = "scale*0.1,scale,scale*10"

    @Option(name: .customLong("degree"), help: "Polynomial kernel degree.")
    var degree = 3

    @Option(name: .customLong("coef0"), help: "Polynomial and sigmoid kernels' coef0.")
    var coef0 = 0.0

    @Option(name: .customLong("svm-solver"), help: "auto, smo (libsvm) or liblinear (linear kernel, many features).")
    var svmSolver = "auto"

    @Option(name: .customLong("class-weight"), help: "SVM class weights: balanced or none.")
    var classWeight = "balanced"

    @Option(name: .customLong("inner-folds"), help: "Participant-level inner folds of the grid search.")
    var innerFolds = 3

    @Flag(name: .customLong("no-probability"), help: "Skip Platt scaling (probability columns are NaN; for two classes ROC AUC comes from the decision values).")
    var noProbability = false

    @Option(name: .customLong("ica-components"), help: "Independent components.")
    var icaComponents = 20

    @Option(name: .customLong("ica-algorithm"), help: "parallel or deflation.")
    var icaAlgorithm = "parallel"

    @Option(name: .customLong("ica-contrast"), help: "logcosh, exp or cube.")
    var icaContrast = "logcosh"

    @Option(name: .customLong("ica-whitening"), help: "eigen or svd.")
    var icaWhitening = "eigen"

    @Option(name: .customLong("ica-max-iter"), help: "FastICA iterations before it stops with a warning.")
    var icaMaxIterations = 200

    @Option(name: .customLong("ica-tol"), help: "FastICA tolerance.")
    var icaTolerance = 1e-4

    @Option(name: .customLong("voxel-downsample"), help: "Voxel ICA: average f×f×f blocks first (1 keeps every voxel).")
    var voxelDownsample = 2

    @Option(name: .customLong("cnn-hidden"), help: "CNN head: hidden dense widths, comma-separated (empty for none).")
    var cnnHidden = "64"

    @Option(name: .customLong("cnn-dropout"), help: "CNN head: dropout before each dense layer.")
    var cnnDropout = 0.5

    @Option(name: .customLong("cnn-grid"), help: "CNN head on volumes: average-pool the encoder map to this grid (e.g. 3x3x3).")
    var cnnGrid = "3x3x3"

    @Option(name: .customLong("freeze"), help: "CNN head on volumes: none, all, or the number of first encoder layers kept fixed.")
    var freeze = "none"

    @Option(name: .customLong("init"), help: "CNN head on volumes: pretrained or random (the same architecture untrained).")
    var initialisation = "pretrained"

    @Option(name: .customLong("epochs"), help: "CNN head: most epochs.")
    var epochs = 30

    @Option(name: .customLong("batch-size"), help: "CNN head: scans per minibatch.")
    var batchSize = 4

    @Option(name: .customLong("lr"), help: "CNN head: Adam learning rate.")
    var learningRate = 3e-4

    @Option(name: .customLong("encoder-lr-scale"), help: "CNN head on volumes: the encoder's learning rate as a multiple of --lr.")
    var encoderLearningRateScale = 0.1

    @Option(name: .customLong("balance"), help: "CNN head: oversample (default), class-weights or none.")
    var balance = "oversample"

    @Option(name: .customLong("patience"), help: "CNN head: epochs without improvement before early stopping.")
    var patience = 8

    @Option(name: .customLong("max-shift"), help: "CNN head on volumes: augmentation shift, voxels per axis.")
    var maxShift = 2

    @Option(name: .customLong("flip"), help: "CNN head on volumes: probability of a left-right flip.")
    var flipProbability = 0.0

    @Flag(name: .customLong("explain"), help: "Write explanation maps: occlusion sensitivity (cnn on volumes), weight maps (linear SVM).")
    var explain = false

    @Option(name: .customLong("occlusion-cube"), help: "With --explain: edge of the blanked cube, in voxels.")
    var occlusionCube = ExplanationSettings().occlusionCube

    @Option(name: .customLong("occlusion-stride"), help: "With --explain: step between cube positions, in voxels (default: the cube's edge; half of it costs 6 to 8 times as much).")
    var occlusionStride: Int?

    @Option(name: .customLong("explain-max-scans"), help: "With --explain: correctly classified validation scans averaged per class, at most.")
    var explainMaxScans = ExplanationSettings().maxScansPerClass

    @OptionGroup var compute: ComputeOptions

    func run() throws {
        compute.apply()
        var request = ClassifyRequest(backend: backend, task: task, split: URL(fileURLWithPath: split), out: URL(fileURLWithPath: out))
        request.features = features.map { URL(fileURLWithPath: $0) }
        request.manifest = manifest.map { URL(fileURLWithPath: $0) }
        request.model = model.map { URL(fileURLWithPath: $0) }
        request.seed = seed
        request.overwrite = overwrite
        request.svm.kernel = kernel
        request.svm.solver = svmSolver
        request.svm.cValues = try cValues.map { try numbers($0, option: "--c") }
        request.svm.gammaValues = gammaValues.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        request.svm.degree = degree
        request.svm.coef0 = coef0
        request.svm.classWeight = classWeight
        request.svm.innerFolds = innerFolds
        request.svm.probability = !noProbability
        request.ica.components = icaComponents
        request.ica.algorithm = icaAlgorithm
        request.ica.contrast = icaContrast
        request.ica.whitening = icaWhitening
        request.ica.maxIterations = icaMaxIterations
        request.ica.tolerance = icaTolerance
        request.ica.voxelDownsample = voxelDownsample
        request.cnn.hidden = cnnHidden.isEmpty ? [] : try integers(cnnHidden, option: "--cnn-hidden")
        request.cnn.dropout = cnnDropout
        let cells = try integers(cnnGrid, option: "--cnn-grid")
        request.cnn.grid = cells.count == 1 ? Array(repeating: cells[0], count: 3) : cells
        request.cnn.freeze = freeze
        request.cnn.initialisation = initialisation
        request.cnn.epochs = epochs
        request.cnn.batchSize = batchSize
        request.cnn.learningRate = learningRate
        request.cnn.encoderLearningRateScale = encoderLearningRateScale
        request.cnn.balance = balance
        request.cnn.patience = patience
        request.cnn.maxShift = maxShift
        request.cnn.flipProbability = flipProbability
        if explain {
            var explanations = ExplanationSettings()
            explanations.occlusionCube = occlusionCube
            explanations.occlusionStride = occlusionStride
            explanations.maxScansPerClass = explainMaxScans
            request.explanations = explanations
        } else if occlusionStride != nil || occlusionCube != ExplanationSettings().occlusionCube
                    || explainMaxScans != ExplanationSettings().maxScansPerClass {
            throw ValidationError("--occlusion-cube, --occlusion-stride and --explain-max-scans apply with --explain")
        }

        // CNN training stops cleanly between minibatches; the other back ends are left to the
        // default signal action (nothing is written before they finish).
        let interrupt = backend == .cnn ? InterruptFlag(notice: "classify: stopping after this minibatch (nothing will be written)...") : nil
        var bars: [String: ProgressBar] = [:]
        let outcome: (report: ClassifyReport, files: [URL])
        do {
            outcome = try ClassifyJob.run(request, progress: { stage, done, total in
                let bar = bars[stage] ?? ProgressBar("classify: \(stage)", total: total)
                bars[stage] = bar
                bar.update(done)
            }, shouldStop: { interrupt?.isSet ?? false })
        } catch {
            // (A `catch ClassificationError.interrupted` pattern crashes Swift 6.3's SILGen here.)
            guard case .interrupted = error else { throw error }
            classifyLog(error.description)
            throw ExitCode(128 + (interrupt?.signalNumber ?? SIGINT))
        }
        let report = outcome.report
        if let chosen = report.modelSelection?.chosen, !chosen.isEmpty {
            classifyLog("chosen by inner cross-validation: " + chosen.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
        }
        if let cnn = report.cnn { classifyLog("best epoch \(cnn.bestEpoch) of \(cnn.history.count) (early stopping on \(cnn.stoppingParticipants) training participants)") }
        for note in report.notes { classifyLog("note: " + note) }
        if let explanations = report.explanations {
            for note in explanations.notes { classifyLog("explanations: " + note) }
            for file in explanations.files {
                classifyLog("explanation map (\(file.kind)\(file.className.map { ", " + $0 } ?? "")): "
                    + request.out.appendingPathComponent(file.file).path)
            }
            if explanations.files.isEmpty { classifyLog("explanations: no map was written") }
        }
        for set in report.sets {
            let m = set.metrics
            classifyLog(String(format: "%@ (%d scans): accuracy %.3f, balanced accuracy %.3f, ROC AUC %.3f", set.set, set.scans, m.accuracy,
                               m.balancedAccuracy, m.rocAUC))
        }
        for url in outcome.files { print("\(url.lastPathComponent): \(url.path)") }
    }
}

private func classifyLog(_ text: String) { FileHandle.standardError.write(Data(("classify: " + text + "\n").utf8)) }

extension Backend: ExpressibleByArgument {}
extension ClassificationTask: ExpressibleByArgument {}
