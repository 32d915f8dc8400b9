import Autoencoders
import Extraction
import Foundation
import Learn
import NeuralNet
import TensorCore

/// What the CNN head's training produced, for `metrics.json`.
public struct CNNTrainingRecord: Codable, Equatable, Sendable {
    /// `volumes` (encoder + head on whole scans) or `features` (head on extracted features).
    public var input: String
    public var encoder: String?
    public var initialisation: String?
    public var frozenEncoderLayers: Int?
    public var trainableParameters: Int
    public var bestEpoch: Int
    public var stoppingParticipants: Int
    public var history: [EpochRecord]

    enum CodingKeys: String, CodingKey {
        case input, encoder, initialisation, history
        case frozenEncoderLayers = "frozen_encoder_layers", trainableParameters = "trainable_parameters"
        case bestEpoch = "best_epoch", stoppingParticipants = "stopping_participants"
    }
}

/// The CNN head back end: a new dense head (dropout, hidden ReLU layers, softmax) on a
/// pretrained encoder's pooled feature map, fine-tuned end to end on whole volumes; or the
/// same head on extracted features (whose encoder was applied once, i.e. frozen).
enum CNNBackend {
    static let checkpointFile = "cnn_best.safetensors"
    static let logFile = "training_log.tsv"

    /// Trains on `split.train` and returns probabilities for every evaluated set, and on whole
    /// volumes with `request.explanations` the occlusion maps of the best weights (with the
    /// seconds they took).
    /// - Parameters:
    ///   - table: the features (`--features`), or nil for whole volumes;
    ///   - volumes: the training and evaluated scans, their headers checked (whole volumes);
    ///   - checkpoint: where the best epoch's weights are written as training goes;
    ///   - explainProgress: (stage, done, total) while occlusion maps are computed.
    static func run(_ request: ClassifyRequest, split: LabelledSplit, table: FeatureTable?, volumes: (train: VolumeScans, evaluated: [VolumeScans])?,
                    checkpoint: URL, progress: (Int, Int, Int, Int) -> Void, explainProgress: (String, Int, Int) -> Void,
                    shouldStop: () -> Bool) throws(ClassificationError)
        -> (record: CNNTrainingRecord, probabilities: [Tensor], occlusion: (maps: OcclusionMaps, seconds: Double)?) {
        let settings = request.cnn
        try settings.validate()
        let k = split.task.classes.count
        if let table {
            let standardiser: Standardiser.Fitted
            let train: Tensor
            do {
                let rows = try table.matrix(for: split.train, set: "train.tsv")
                standardiser = try Standardiser().fit(rows)
                train = try standardiser.transform(rows)
            } catch let error as ClassificationError { throw error } catch let error as LearnError { throw .learn(error) } catch { throw .io("\(error)") }
            let head: [any Layer]
            do {
                head = try HeadNetwork.denseHead(inputs: train.shape[1], hidden: settings.hidden, classes: k, dropout: Float(settings.dropout), seed: request.seed)
            } catch { throw .invalidOption("\(error)") }
            let network = HeadNetwork(encoder: [], head: head, frozenLayers: 0)
            let trained = try HeadTrainer.train(network, inputs: FeatureRows(values: train), labels: split.trainLabels, groups: split.trainGroups,
                                                classes: k, settings: settings, augment: false, seed: request.seed, checkpoint: checkpoint,
                                                progress: progress, shouldStop: shouldStop)
            var probabilities: [Tensor] = []
            for (name, scans) in split.evaluated {
                let x: Tensor
                do { x = try standardiser.transform(try table.matrix(for: scans, set: "\(name).tsv")) } catch let error as ClassificationError {
                    throw error
                } catch let error as LearnError { throw .learn(error) } catch { throw .io("\(error)") }
                probabilities.append(try trained.probabilities(FeatureRows(values: x), batchSize: settings.batchSize))
            }
            let record = CNNTrainingRecord(input: "features", encoder: nil, initialisation: nil, frozenEncoderLayers: nil,
                                           trainableParameters: network.trainableParameters.reduce(0) { $0 + $1.parameter.value.count },
                                           bestEpoch: trained.bestEpoch, stoppingParticipants: trained.stoppingParticipants, history: trained.history)
            return (record, probabilities, nil)
        }
        guard let model = request.model, let volumes else { throw .invalidOption("the CNN head needs --features, or --model with --manifest") }
        let run: PretrainedRun
        let encoder: FeatureEncoder
        let encoderLayers: [any Layer]
        do {
            let loaded = try PretrainedRun.load(model)
            try checkPretrainingParticipants(loaded, split: split)
            run = settings.initialisation == "random" ? try loaded.untrained(seed: request.seed) : loaded
            encoder = try FeatureEncoder(run: run, options: ExtractionOptions())
            encoderLayers = try encoder.makeNetworks().map.layers
        } catch let error as ClassificationError { throw error } catch { throw .invalidOption("\(model.path): \(error)") }
        // Normalised as the pretraining run normalised its patches.
        var trainInputs = volumes.train
        trainInputs.options = run.config.patches
        let grid = Triple(settings.grid[0], settings.grid[1], settings.grid[2])
        if let problem = encoder.geometryProblemForHead(trainInputs.shape, grid: grid) { throw .invalidOption(problem) }
        let frozen = settings.freeze == "all" ? Int.max : settings.freeze == "none" ? 0 : Int(settings.freeze) ?? 0
        let weighted = encoderLayers.filter { $0.parameterCount > 0 }.count
        let pool = AdaptiveAvgPool3d(grid: grid), flatten = Flatten()
        let standardisation = Standardisation(features: encoder.mapChannels * grid.product)
        try fitStandardisation(standardisation, features: Sequential(encoderLayers + [pool, flatten]), inputs: trainInputs, batchSize: settings.batchSize)
        let head: [any Layer]
        do {
            head = [pool, flatten, standardisation]
                + (try HeadNetwork.denseHead(inputs: encoder.mapChannels * grid.product, hidden: settings.hidden, classes: k,
                                             dropout: Float(settings.dropout), seed: request.seed))
        } catch { throw .invalidOption("\(error)") }
        let network = HeadNetwork(encoder: encoderLayers, head: head, frozenLayers: min(frozen, weighted))
        let trained = try HeadTrainer.train(network, inputs: trainInputs, labels: split.trainLabels, groups: split.trainGroups, classes: k,
                                            settings: settings, augment: true, seed: request.seed, checkpoint: checkpoint,
                                            progress: progress, shouldStop: shouldStop)
        var probabilities: [Tensor] = []
        var evaluated: [VolumeScans] = []
        for var inputs in volumes.evaluated {
            inputs.options = run.config.patches
            probabilities.append(try trained.probabilities(inputs, batchSize: settings.batchSize))
            evaluated.append(inputs)
        }
        var occlusion: (maps: OcclusionMaps, seconds: Double)?
        if let explanations = request.explanations, let validation = evaluated.first, let p = probabilities.first {
            let started = Date()
            let maps = try OcclusionMaps.compute(trained, validation: validation, probabilities: p, classNames: split.task.classes.map(\.rawValue),
                                                 settings: explanations, progress: explainProgress, shouldStop: shouldStop)
            occlusion = (maps, Date().timeIntervalSince(started))
        }
        let record = CNNTrainingRecord(input: "volumes", encoder: encoder.summary, initialisation: settings.initialisation,
                                       frozenEncoderLayers: min(frozen, weighted),
                                       trainableParameters: network.trainableParameters.reduce(0) { $0 + $1.parameter.value.count },
                                       bestEpoch: trained.bestEpoch, stoppingParticipants: trained.stoppingParticipants, history: trained.history)
        return (record, probabilities, occlusion)
    }

    /// Refuses a run pretrained on participants that this split evaluates: their scans would
    /// have shaped the encoder that is then scored on them.
    static func checkPretrainingParticipants(_ run: PretrainedRun, split: LabelledSplit) throws {
        let seen = Set(run.provenance.trainingParticipants + run.provenance.validationParticipants)
        for (name, scans) in split.evaluated {
            let overlap = Set(scans.map(\.participantID)).intersection(seen).sorted()
            guard overlap.isEmpty else {
                throw ClassificationError.invalidOption("\(run.directory.url.path) was pretrained on \(overlap.count) participant(s) of \(name).tsv (\(overlap.prefix(5).joined(separator: ", "))\(overlap.count > 5 ? ", ..." : "")): pretrain on the split's train.tsv (and unlabelled scans) so that the evaluated participants stay unseen")
            }
        }
    }

    /// Sets the head's input standardisation from the pooled encoder outputs of every
    /// training scan (unaugmented, in inference mode; labels are not used).
    static func fitStandardisation(_ standardisation: Standardisation, features: Sequential, inputs: VolumeScans,
                                   batchSize: Int) throws(ClassificationError) {
        var rows: [Float] = []
        var none: Augmenter?
        for start in stride(from: 0, to: inputs.count, by: batchSize) {
            let x = try inputs.batch(Array(start..<min(inputs.count, start + batchSize)), augmentation: &none)
            do { rows += try features.forward(x, mode: .inference).scalars } catch { throw .io("encoding training scans: \(error)") }
        }
        do { standardisation.fit(try Tensor(shape: [inputs.count, rows.count / max(1, inputs.count)], scalars: rows)) } catch {
            throw .io("\(error)")
        }
    }

    /// `training_log.tsv`: one line per epoch.
    static func log(_ history: [EpochRecord]) -> String {
        "epoch\ttrain_loss\tstopping_loss\tstopping_balanced_accuracy\tseconds\n"
            + history.map { "\($0.epoch)\t\($0.trainLoss)\t\($0.stoppingLoss)\t\($0.stoppingBalancedAccuracy)\t\($0.seconds)" }.joined(separator: "\n") + "\n"
    }
}

extension FeatureEncoder {
    /// Why volumes of `shape` cannot feed a head pooling this encoder's map to `grid`, or nil.
    func geometryProblemForHead(_ shape: Triple, grid: Triple) -> String? {
        let map = mapShape(for: shape)
        guard map.d >= grid.d, map.h >= grid.h, map.w >= grid.w else {
            return "scans of \(shape.array) give a \(map.array) feature map, smaller than the head's pooling grid \(grid.array); choose a coarser --cnn-grid"
        }
        return nil
    }
}
