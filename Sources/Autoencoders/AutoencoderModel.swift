import Foundation
import NeuralNet
import TensorCore

/// Running sums over a pass of minibatches (an epoch's training or a validation set).
///
/// `squaredError / elements` is the mean squared error of what the current phase
/// reconstructs (the patch, or for a deeper SAE layer the codes below it);
/// `patchSquaredError / patchElements` that of the patch itself, when computed.
public struct ReconstructionTally: Sendable, Codable, Equatable {
    public var objective = 0.0
    public var squaredError = 0.0
    public var elements = 0.0
    public var patchSquaredError = 0.0
    public var patchElements = 0.0
    public var activationSum = 0.0
    public var activations = 0.0
    public var batches = 0

    public init() {}

    public var meanSquaredError: Double { elements > 0 ? squaredError / elements : .nan }
    public var patchMeanSquaredError: Double { patchElements > 0 ? patchSquaredError / patchElements : .nan }
    public var meanActivation: Double { activations > 0 ? activationSum / activations : .nan }
    /// Mean per-batch training objective (loss plus penalties).
    public var meanObjective: Double { batches > 0 ? objective / Double(batches) : .nan }

    public mutating func add(_ other: ReconstructionTally) {
        objective += other.objective
        squaredError += other.squaredError
        elements += other.elements
        patchSquaredError += other.patchSquaredError
        patchElements += other.patchElements
        activationSum += other.activationSum
        activations += other.activations
        batches += other.batches
    }
}

/// A model the pretraining loop can train phase by phase.
public protocol AutoencoderModel: AnyObject {
    /// The whole model, whose state names are those saved in checkpoints.
    var module: EncoderDecoder { get }
    /// Number of training phases.
    var phaseCount: Int { get }
    /// Parameters trained in `phase`, with their state names.
    func parameters(phase: Int) -> [(name: String, parameter: Parameter)]
    /// One minibatch's forward and backward pass (gradients are added, not zeroed).
    /// - Parameters:
    ///   - batch: clean patches `[N, 1, d, h, w]`.
    ///   - noise: the generator for input corruption.
    ///   - weightDecay: λ of `λ/2·Σ‖W‖²` over the phase's weights.
    /// - Returns: the batch's objective and error sums (`batches == 1`).
    func trainStep(_ batch: Tensor, phase: Int, noise: inout Xoshiro256StarStar, weightDecay: Float) throws -> ReconstructionTally
    /// Reconstruction errors on clean patches, in inference mode.
    func evaluate(_ batch: Tensor, phase: Int) throws -> ReconstructionTally
}

extension AutoencoderModel {
    /// `module`'s named parameters restricted to `subset` (by identity), in state order.
    func named(_ subset: [Parameter]) -> [(name: String, parameter: Parameter)] {
        let wanted = Set(subset.map { ObjectIdentifier($0) })
        return module.namedParameters().filter { wanted.contains(ObjectIdentifier($0.parameter)) }
    }
}

/// Input corruption for denoising training (see `CorruptionKind`).
enum Corruption {
    static func apply(_ x: Tensor, kind: CorruptionKind, level: Double, using generator: inout Xoshiro256StarStar) -> Tensor {
        switch kind {
        case .none:
            return x
        case .masking:
            let keep = Float(1 - level)
            var y = x
            y.withUnsafeMutableBufferPointer { p in
                for i in 0..<p.count where generator.nextUnitFloat() >= keep { p[i] = 0 }
            }
            return y
        case .gaussian:
            let sigma = Float(level)
            var y = x
            y.withUnsafeMutableBufferPointer { p in
                for i in 0..<p.count { p[i] += sigma * generator.nextStandardNormal() }
            }
            return y
        }
    }
}

/// `Σ (a − b)²` in Double.
func squaredDistance(_ a: Tensor, _ b: Tensor) -> Double {
    a.withUnsafeBufferPointer { x in
        b.withUnsafeBufferPointer { y in
            var total = 0.0
            for i in 0..<min(x.count, y.count) {
                let d = Double(x[i] - y[i])
                total += d * d
            }
            return total
        }
    }
}

/// Builds the model a configuration describes, with weights drawn from `seed`.
public func makeAutoencoder(_ config: PretrainConfig) throws -> any AutoencoderModel {
    try config.validate()
    let initSeed = SplitMix64.derive(config.seed, 0x1_0000)
    switch config.model {
    case .sae:
        return try StackedAutoencoder(inputFeatures: config.patches.patchVolume, options: config.sae!, seed: initSeed)
    case .cae:
        return try ConvolutionalAutoencoder(patchSize: config.patches.size, options: config.cae!, seed: initSeed)
    }
}
