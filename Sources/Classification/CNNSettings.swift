import Foundation

/// Settings of the CNN head: a pretrained encoder (or extracted features) followed by new
/// dense layers and a softmax, trained with early stopping on held-out training participants.
public struct CNNSettings: Codable, Equatable, Sendable {
    /// Widths of the new hidden dense layers (ReLU), before the softmax layer.
    public var hidden: [Int] = [64]
    /// Dropout probability before every dense layer.
    public var dropout = 0.5
    /// Whole volumes: the encoder's map is average-pooled to this grid before the dense layers.
    public var grid: [Int] = [3, 3, 3]
    /// Whole volumes: `none` (fine-tune everything), `all` (train the head only) or `N` (keep
    /// the first N encoder layers with weights fixed).
    public var freeze = "none"
    /// Whole volumes: `pretrained` (the run's weights) or `random` (the same architecture
    /// freshly initialised from the seed: the baseline fine-tuning should beat).
    public var initialisation = "pretrained"
    public var epochs = 30
    public var batchSize = 4
    /// Adam's learning rate (of the new head).
    public var learningRate = 3e-4
    /// The pretrained encoder's learning rate as a multiple of `learningRate`: pretrained
    /// layers are usually fine-tuned more gently than a fresh head (discriminative learning
    /// rates). A `random` encoder trains at the head's rate.
    public var encoderLearningRateScale = 0.1
    /// L2 penalty added to the gradient (Adam's `weight_decay`).
    public var weightDecay = 1e-4
    /// `oversample` (draw minority classes again until each class has the majority's count;
    /// nothing is dropped), `class-weights` (weighted cross-entropy) or `none`.
    public var balance = "oversample"
    /// Epochs without a lower early-stopping loss before training stops.
    public var patience = 8
    /// Share of each class's training participants held out for early stopping (at least
    /// one per class; never the split's validation or test participants).
    public var stoppingFraction = 0.2
    /// Augmentation of training volumes: probability of a left–right flip (off by default:
    /// atrophy can be lateralised), largest shift in voxels per axis, and relative intensity
    /// scaling (×(1 + u), u uniform in ±scale).
    public var flipProbability = 0.0
    public var maxShift = 2
    public var intensityScale = 0.1

    public init() {}

    enum CodingKeys: String, CodingKey {
        case hidden, dropout, grid, freeze, initialisation, epochs, balance, patience
        case batchSize = "batch_size", learningRate = "learning_rate", weightDecay = "weight_decay"
        case encoderLearningRateScale = "encoder_learning_rate_scale"
        case stoppingFraction = "stopping_fraction", flipProbability = "flip_probability", maxShift = "max_shift"
        case intensityScale = "intensity_scale"
    }

    func validate() throws(ClassificationError) {
        guard hidden.allSatisfy({ (1...65_536).contains($0) }) else { throw .invalidOption("hidden widths \(hidden): each 1 to 65536") }
        guard (0..<1).contains(dropout) else { throw .invalidOption("dropout \(dropout): must be in [0, 1)") }
        guard grid.count == 3, grid.allSatisfy({ (1...64).contains($0) }) else { throw .invalidOption("grid \(grid): three sizes, 1 to 64") }
        guard freeze == "none" || freeze == "all" || (Int(freeze).map { $0 >= 0 } ?? false) else {
            throw .invalidOption("freeze '\(freeze)': none, all or a number of encoder layers")
        }
        guard ["pretrained", "random"].contains(initialisation) else { throw .invalidOption("initialisation '\(initialisation)': pretrained or random") }
        guard (1...100_000).contains(epochs), (1...4096).contains(batchSize) else { throw .invalidOption("epochs \(epochs), batch size \(batchSize)") }
        guard learningRate.isFinite, learningRate > 0, weightDecay.isFinite, weightDecay >= 0 else {
            throw .invalidOption("learning rate \(learningRate), weight decay \(weightDecay)")
        }
        guard encoderLearningRateScale.isFinite, encoderLearningRateScale > 0 else {
            throw .invalidOption("encoder learning-rate scale \(encoderLearningRateScale): must be positive (freeze the encoder with freeze all)")
        }
        guard ["oversample", "class-weights", "none"].contains(balance) else { throw .invalidOption("balance '\(balance)': oversample, class-weights or none") }
        guard patience >= 1, stoppingFraction > 0, stoppingFraction < 1 else {
            throw .invalidOption("patience \(patience), stopping fraction \(stoppingFraction)")
        }
        guard (0...1).contains(flipProbability), (0...64).contains(maxShift), intensityScale >= 0, intensityScale < 1 else {
            throw .invalidOption("augmentation: flip \(flipProbability), shift \(maxShift), intensity \(intensityScale)")
        }
    }
}
