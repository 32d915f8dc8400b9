import Foundation
import NeuralNet
import Patches
import TensorCore

/// Which autoencoder `adwb pretrain` trains.
public enum ModelKind: String, Sendable, Codable, CaseIterable {
    /// Stacked (sparse / denoising) autoencoder on flattened patches.
    case sae
    /// Convolutional 3-D autoencoder.
    case cae
}

/// Elementwise functions a configuration can name.
public enum ActivationName: String, Sendable, Codable, CaseIterable {
    case sigmoid, relu, tanh, linear

    /// A fresh layer computing this activation (nil for `linear`).
    public func layer() -> (any Layer)? {
        switch self {
        case .sigmoid: return Sigmoid()
        case .relu: return ReLU()
        case .tanh: return Tanh()
        case .linear: return nil
        }
    }
}

/// Input corruption for denoising autoencoders (Vincent et al. 2008, 2010): the model sees
/// the corrupted input and is trained to reconstruct the clean one.
public enum CorruptionKind: String, Sendable, Codable, CaseIterable {
    case none
    /// Each input value is set to 0 with probability `level`.
    case masking
    /// Adds N(0, level²) noise to each input value.
    case gaussian
}

/// The stacked autoencoder's architecture and penalties.
///
/// ```
/// encoder: x [N, F] → Dense(F→h₁) → act → … → Dense(h_{K−1}→h_K) → act
/// decoder: mirror; the last layer maps back to F with `outputActivation`
/// loss (UFLDL): ½·mean_n ‖x̂ − x‖² + β·Σ_j KL(ρ ‖ ρ̂_j) + λ/2·Σ ‖W‖²
/// ```
public struct SAEOptions: Sendable, Codable, Equatable {
    /// Hidden units per layer, from the input side (`[150]` is one layer of 150).
    public var hidden: [Int] = [150]
    public var activation: ActivationName = .sigmoid
    /// The activation of the layer that reconstructs the patch: `sigmoid` for inputs in
    /// [0, 1] (min-max), `linear` for z-scored inputs. Inner decoders use `activation`.
    public var outputActivation: ActivationName = .sigmoid
    /// Decoder weights are the transposed encoder weights.
    public var tiedWeights: Bool = false
    /// Target mean activation ρ of each hidden unit; 0 turns the KL penalty off.
    public var sparsityTarget: Double = 0.05
    /// Weight β of the KL sparsity penalty.
    public var sparsityWeight: Double = 3
    public var corruption: CorruptionKind = .none
    /// Masking probability or Gaussian standard deviation.
    public var corruptionLevel: Double = 0.3
    /// Epochs of joint fine-tuning of the whole stack after greedy layer-wise training (0: none).
    public var fineTuneEpochs: Int = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case hidden, activation, corruption
        case outputActivation = "output_activation", tiedWeights = "tied_weights", sparsityTarget = "sparsity_target"
        case sparsityWeight = "sparsity_weight", corruptionLevel = "corruption_level", fineTuneEpochs = "fine_tune_epochs"
    }
}

/// The convolutional autoencoder's architecture.
///
/// ```
/// encoder, per level i: Conv3d(c_{i−1}→c_i, k, padding k/2) → act → MaxPool3d(2)
/// decoder, per level, mirrored:
///   transpose: ConvTranspose3d(c_i→c_{i−1}, k, stride 2, padding k/2, output padding 1) → act
///   upsample:  Upsample3d(2, nearest) → Conv3d(c_i→c_{i−1}, k, padding k/2) → act
/// (no activation after the last decoder layer; c₀ = 1)
/// ```
/// An axis on which the patch has extent 1 (2-D slices) gets kernel and pooling 1 there.
public struct CAEOptions: Sendable, Codable, Equatable {
    public var channels: [Int] = [8, 16, 32]
    /// Odd kernel extent, the same along each axis.
    public var kernel: Int = 3
    public var activation: ActivationName = .relu
    public var decoder: DecoderKind = .transpose
    public var corruption: CorruptionKind = .none
    public var corruptionLevel: Double = 0.1

    public enum DecoderKind: String, Sendable, Codable, CaseIterable { case transpose, upsample }

    public init() {}

    enum CodingKeys: String, CodingKey {
        case channels, kernel, activation, decoder, corruption
        case corruptionLevel = "corruption_level"
    }
}

/// Optimisation, validation, early stopping and checkpoints.
public struct TrainingOptions: Sendable, Codable, Equatable {
    /// Epochs per phase (each SAE layer is a phase; a CAE has one).
    public var epochs: Int = 20
    public var batchSize: Int = 256
    public var optimizer: OptimizerName = .adam
    public var learningRate: Double = 1e-3
    /// SGD momentum (ignored by Adam).
    public var momentum: Double = 0.9
    /// λ of the `λ/2·Σ‖W‖²` penalty on weights (not biases).
    public var weightDecay: Double = 0
    public var schedule: ScheduleName = .constant
    /// `step` schedule: multiply the rate by `gamma` every `stepSize` epochs.
    public var stepSize: Int = 10
    public var gamma: Double = 0.5
    /// `cosine` schedule: the rate reached at the last epoch.
    public var minimumLearningRate: Double = 0
    /// Epochs without a validation improvement of more than `minDelta` before a phase stops
    /// early; 0 never stops early.
    public var patience: Int = 5
    public var minDelta: Double = 0
    /// Keep the weights of the best validation epoch at the end of each phase.
    public var restoreBest: Bool = true
    /// Write a checkpoint every this many minibatch steps (besides each epoch's end); 0: epochs only.
    public var checkpointEvery: Int = 1000
    /// Fraction of participants (not scans) held out for validation patches.
    public var validationFraction: Double = 0.1
    /// Validation patches drawn (the same ones every epoch) from the held-out participants.
    public var validationPatches: Int = 5000

    public enum OptimizerName: String, Sendable, Codable, CaseIterable { case adam, sgd }
    public enum ScheduleName: String, Sendable, Codable, CaseIterable { case constant, step, cosine }

    public init() {}

    enum CodingKeys: String, CodingKey {
        case epochs, optimizer, momentum, schedule, gamma, patience
        case batchSize = "batch_size", learningRate = "learning_rate", weightDecay = "weight_decay", stepSize = "step_size"
        case minimumLearningRate = "minimum_learning_rate", minDelta = "min_delta", restoreBest = "restore_best"
        case checkpointEvery = "checkpoint_every", validationFraction = "validation_fraction", validationPatches = "validation_patches"
    }

    func schedule(epochs: Int) -> LearningRateSchedule {
        switch schedule {
        case .constant: return .constant
        case .step: return .step(stepSize: stepSize, gamma: Float(gamma))
        case .cosine: return .cosine(totalEpochs: max(1, epochs - 1), minimum: Float(minimumLearningRate))
        }
    }
}

/// Everything that determines a pretraining run's result, as written to `config.json`.
/// Runtime settings that don't change results (threads, workers, cache size) are not here.
public struct PretrainConfig: Sendable, Codable, Equatable {
    public var model: ModelKind
    /// The preset the defaults came from, if any (informational once resolved).
    public var preset: String?
    public var seed: UInt64 = 0
    public var patches = PatchSamplingOptions()
    public var sae: SAEOptions?
    public var cae: CAEOptions?
    public var training = TrainingOptions()

    /// The defaults for `model`: 5³ patches scaled to [0, 1] (min-max) and one sparse layer of
    /// 150 sigmoid units with a sigmoid output for a SAE; z-scored 32³ patches and three
    /// convolution levels for a CAE.
    public init(model: ModelKind) {
        self.model = model
        switch model {
        case .sae:
            sae = SAEOptions()
            // Sigmoid units reconstructing [0, 1] inputs, as the UFLDL sparse autoencoder.
            patches.normalization = .minmax
            sae!.outputActivation = .sigmoid
        case .cae:
            cae = CAEOptions()
            patches.size = [32, 32, 32]
            patches.patchesPerEpoch = 2048
            training.batchSize = 16
            training.validationPatches = 256
            training.checkpointEvery = 100
        }
    }

    /// Names `preset(_:)` accepts.
    public static let presetNames = ["payan2015", "hosseini2016"]

    /// A published configuration (see ../shared/MISSION.md):
    /// - `payan2015` (SAE; Payan & Montana 2015): 5×5×5 patches scaled to [0, 1], one layer of
    ///   150 sigmoid units with a sigmoid output, KL sparsity (ρ = 0.01, β = 3) and weight decay
    ///   λ = 1e-4 (the UFLDL values), 100,000 patches per epoch in minibatches of 1,000, Adam
    ///   at 0.01 for 40 epochs.
    /// - `hosseini2016` (CAE; after Hosseini-Asl et al. 2016): 3×3×3 kernels, 2×2×2 max
    ///   pooling, three levels of 8, 16, 32 channels, ReLU, z-scored 32³ patches.
    public static func preset(_ name: String) throws(PretrainError) -> PretrainConfig {
        switch name {
        case "payan2015":
            var config = PretrainConfig(model: .sae)
            config.preset = name
            config.patches.size = [5, 5, 5]
            config.patches.normalization = .minmax
            config.patches.patchesPerEpoch = 100_000
            config.sae!.hidden = [150]
            config.sae!.activation = .sigmoid
            config.sae!.outputActivation = .sigmoid
            config.sae!.sparsityTarget = 0.01
            config.sae!.sparsityWeight = 3
            config.training.weightDecay = 1e-4
            config.training.batchSize = 1000
            config.training.learningRate = 1e-2
            config.training.epochs = 40
            config.training.validationPatches = 10_000
            return config
        case "hosseini2016":
            var config = PretrainConfig(model: .cae)
            config.preset = name
            config.cae!.channels = [8, 16, 32]
            config.cae!.kernel = 3
            config.cae!.activation = .relu
            return config
        default:
            throw .invalidConfig("unknown preset '\(name)' (choose from \(presetNames.joined(separator: ", ")))")
        }
    }

    /// Checks every option and their combinations, naming the first problem.
    public func validate() throws(PretrainError) {
        do { try patches.validate() } catch { throw .invalidConfig(error.description) }
        func bad(_ message: String) -> PretrainError { .invalidConfig(message) }
        let t = training
        guard t.epochs >= 1, t.epochs <= 100_000 else { throw bad("training.epochs must be 1 to 100000, got \(t.epochs)") }
        guard t.batchSize >= 1, t.batchSize <= 10_000_000 else { throw bad("training.batch_size must be 1 to 10^7, got \(t.batchSize)") }
        guard t.learningRate > 0, t.learningRate.isFinite else { throw bad("training.learning_rate must be positive, got \(t.learningRate)") }
        guard t.momentum >= 0, t.momentum < 1 else { throw bad("training.momentum must be in [0, 1), got \(t.momentum)") }
        guard t.weightDecay >= 0, t.weightDecay.isFinite else { throw bad("training.weight_decay must be >= 0, got \(t.weightDecay)") }
        guard t.stepSize >= 1, t.gamma > 0, t.gamma.isFinite, t.minimumLearningRate >= 0, t.minimumLearningRate.isFinite else {
            throw bad("training: step_size must be >= 1, gamma finite and > 0, minimum_learning_rate finite and >= 0")
        }
        guard t.patience >= 0, t.minDelta >= 0, t.minDelta.isFinite, t.checkpointEvery >= 0 else {
            throw bad("training: patience, min_delta and checkpoint_every must be finite and >= 0")
        }
        guard t.validationFraction >= 0, t.validationFraction < 1 else { throw bad("training.validation_fraction must be in [0, 1), got \(t.validationFraction)") }
        guard t.validationPatches >= 1, t.validationPatches <= 100_000_000 else { throw bad("training.validation_patches must be 1 to 10^8") }
        switch model {
        case .sae:
            guard let sae, cae == nil else { throw bad("model sae takes an 'sae' section and no 'cae' section") }
            guard !sae.hidden.isEmpty, sae.hidden.allSatisfy({ $0 >= 1 && $0 <= 1_000_000 }) else { throw bad("sae.hidden needs one or more layer sizes >= 1, got \(sae.hidden)") }
            guard sae.activation != .linear else { throw bad("sae.activation must be sigmoid, tanh or relu") }
            if sae.sparsityTarget != 0 {
                guard sae.sparsityTarget > 0, sae.sparsityTarget < 1 else { throw bad("sae.sparsity_target must be in (0, 1), or 0 for no sparsity penalty") }
                guard sae.activation == .sigmoid else { throw bad("the KL sparsity penalty needs sigmoid hidden units (sae.activation = sigmoid), or sae.sparsity_target = 0") }
                guard sae.sparsityWeight >= 0, sae.sparsityWeight.isFinite else { throw bad("sae.sparsity_weight must be finite and >= 0") }
            }
            try Self.validateCorruption(sae.corruption, sae.corruptionLevel, "sae")
            guard sae.fineTuneEpochs >= 0, sae.fineTuneEpochs <= 100_000 else { throw bad("sae.fine_tune_epochs must be 0 to 100000") }
        case .cae:
            guard let cae, sae == nil else { throw bad("model cae takes a 'cae' section and no 'sae' section") }
            guard !cae.channels.isEmpty, cae.channels.count <= 8, cae.channels.allSatisfy({ $0 >= 1 && $0 <= 4096 }) else {
                throw bad("cae.channels needs 1 to 8 levels of 1 to 4096 channels, got \(cae.channels)")
            }
            guard cae.kernel >= 1, cae.kernel % 2 == 1, cae.kernel <= 11 else { throw bad("cae.kernel must be odd, 1 to 11, got \(cae.kernel)") }
            let factor = 1 << cae.channels.count
            for extent in patches.size where extent != 1 && extent % factor != 0 {
                throw bad("patch size \(patches.size) must be divisible by \(factor) (2^\(cae.channels.count) pooling levels) on every axis that is not 1")
            }
            try Self.validateCorruption(cae.corruption, cae.corruptionLevel, "cae")
        }
    }

    private static func validateCorruption(_ kind: CorruptionKind, _ level: Double, _ section: String) throws(PretrainError) {
        guard level.isFinite else { throw .invalidConfig("\(section).corruption_level must be finite, got \(level)") }
        switch kind {
        case .none: break
        case .masking:
            guard level > 0, level < 1 else { throw .invalidConfig("\(section).corruption_level (masking probability) must be in (0, 1), got \(level)") }
        case .gaussian:
            guard level > 0, level.isFinite else { throw .invalidConfig("\(section).corruption_level (noise std) must be positive, got \(level)") }
        }
    }

    /// Training phases: one per SAE layer (greedy) plus fine-tuning, or one for a CAE.
    public var phaseNames: [String] {
        switch model {
        case .cae: return ["cae"]
        case .sae:
            let sae = sae ?? SAEOptions()
            return sae.hidden.indices.map { "layer\($0 + 1)" } + (sae.fineTuneEpochs > 0 ? ["fine-tune"] : [])
        }
    }

    /// Minibatches in an epoch (the last may be smaller).
    var batchesPerEpoch: Int { (patches.patchesPerEpoch + training.batchSize - 1) / training.batchSize }

    /// Epochs of phase `index`.
    func epochs(phase index: Int) -> Int {
        model == .sae && phaseNames[index] == "fine-tune" ? (sae?.fineTuneEpochs ?? 0) : training.epochs
    }
}

/// Why pretraining stopped or could not start.
public enum PretrainError: Error, Equatable, CustomStringConvertible {
    case invalidConfig(String)
    /// Scans that cannot be used, each with its manifest line.
    case badScans([String])
    /// The loss became NaN or infinite; the last good checkpoint (if any) is kept.
    case nonFiniteLoss(step: Int, phase: String, epoch: Int, value: String, checkpoint: String?)
    /// A stop was requested (signal or `stopAfterEpochs`); the state is checkpointed.
    case interrupted(checkpoint: String)
    case io(String)

    public var description: String {
        switch self {
        case let .invalidConfig(message): return "invalid configuration: \(message)"
        case let .badScans(problems):
            return "\(problems.count) scan\(problems.count == 1 ? "" : "s") cannot be used (fix or remove them, or pass --skip-bad):\n"
                + problems.map { "  " + $0 }.joined(separator: "\n")
        case let .nonFiniteLoss(step, phase, epoch, value, checkpoint):
            return "the loss became \(value) at step \(step) (phase \(phase), epoch \(epoch)); training stopped. "
                + (checkpoint.map { "The last good checkpoint is \($0). " } ?? "No checkpoint had been written yet. ")
                + "A lower learning rate usually helps."
        case let .interrupted(checkpoint): return "stopped; state saved in \(checkpoint) (continue with --resume)"
        case let .io(message): return message
        }
    }
}
