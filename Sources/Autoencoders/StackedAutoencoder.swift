import Foundation
import NeuralNet
import TensorCore

/// A stacked autoencoder on flattened patches, trained greedily layer by layer (Bengio et
/// al. 2007; Vincent et al. 2010), then optionally fine-tuned as a whole.
///
/// ```
/// x: [N, F]     (F = d·h·w; patches arrive as [N, 1, d, h, w])
/// level k:  a_{k+1} = act(a_k W_kᵀ + b_k)          W_k: [h_{k+1}, h_k]  (PyTorch nn.Linear)
///           â_k     = act'(a_{k+1} V_kᵀ + c_k)     V_k: [h_k, h_{k+1}] (or W_kᵀ when tied)
/// ```
/// Phase `k < K` trains level `k` alone to reconstruct its input `a_k` (the codes of the
/// frozen levels below) from a corrupted copy, with the KL sparsity penalty on `a_{k+1}` and
/// weight decay on its weights. The fine-tuning phase trains every level end to end to
/// reconstruct the clean patch, with the sparsity penalty on every code. The reconstruction
/// term is UFLDL's `½·mean_n ‖x̂ − x‖²` (Ng, CS294A notes).
///
/// State names mirror `nn.Sequential` halves: `encoder.{2k}.weight`, `decoder.{2(K−1−k)}.weight`
/// (tied decoders store only their bias; their weight is the encoder's, transposed).
public final class StackedAutoencoder: AutoencoderModel {
    public let options: SAEOptions
    public let inputFeatures: Int
    public let module: EncoderDecoder
    let encoders: [Dense]
    let encoderActivations: [any Layer]
    let decoders: [any Layer]
    /// `nil` for a linear output.
    let decoderActivations: [(any Layer)?]

    public init(inputFeatures: Int, options: SAEOptions, seed: UInt64) throws {
        guard inputFeatures >= 1, !options.hidden.isEmpty, options.activation != .linear else {
            throw PretrainError.invalidConfig("a stacked autoencoder needs input features, hidden layers and a non-linear activation")
        }
        self.options = options
        self.inputFeatures = inputFeatures
        var generator = Xoshiro256StarStar(seed: seed)
        let sizes = [inputFeatures] + options.hidden
        let initialization: WeightInitialization = options.activation == .relu ? .he : .xavier
        var encoders: [Dense] = [], encoderActivations: [any Layer] = []
        var decoders: [any Layer] = [], decoderActivations: [(any Layer)?] = []
        for level in options.hidden.indices {
            let encoder = Dense(inFeatures: sizes[level], outFeatures: sizes[level + 1], initialization: initialization, using: &generator)
            encoders.append(encoder)
            encoderActivations.append(options.activation.layer()!)
            decoders.append(options.tiedWeights
                ? TiedDense(transposing: encoder)
                : Dense(inFeatures: sizes[level + 1], outFeatures: sizes[level], initialization: initialization, using: &generator))
            decoderActivations.append(level == 0 ? options.outputActivation.layer() : options.activation.layer())
        }
        (self.encoders, self.encoderActivations, self.decoders, self.decoderActivations) =
            (encoders, encoderActivations, decoders, decoderActivations)
        let encoder = Sequential(zip(encoders, encoderActivations).flatMap { [$0 as any Layer, $1] })
        let decoder = Sequential(options.hidden.indices.reversed().flatMap { level -> [any Layer] in
            [decoders[level]] + (decoderActivations[level].map { [$0] } ?? [])
        })
        module = EncoderDecoder(encoder: encoder, decoder: decoder)
    }

    var levels: Int { options.hidden.count }
    public var phaseCount: Int { levels + (options.fineTuneEpochs > 0 ? 1 : 0) }
    func isFineTuning(_ phase: Int) -> Bool { phase >= levels }

    public func parameters(phase: Int) -> [(name: String, parameter: Parameter)] {
        if isFineTuning(phase) { return module.namedParameters() }
        return named(encoders[phase].parameters() + decoders[phase].parameters())
    }

    /// Weights (not biases) that weight decay applies to in `phase`.
    func decayedWeights(phase: Int) -> [Parameter] {
        let range = isFineTuning(phase) ? 0..<levels : phase..<(phase + 1)
        return range.flatMap { level -> [Parameter] in
            [encoders[level].weight] + ((decoders[level] as? Dense).map { [$0.weight] } ?? [])
        }
    }

    /// Codes of level `count` (`a_count`): the input passed through the first `count`
    /// encoder levels in inference mode. `x`: `[N, F]`.
    public func encode(_ x: Tensor, levels count: Int) throws -> Tensor {
        var a = x
        for level in 0..<count {
            a = try encoderActivations[level].forward(try encoders[level].forward(a, mode: .inference), mode: .inference)
        }
        return a
    }

    /// Maps codes of level `from` back down to the patch space (inference).
    public func decode(_ codes: Tensor, from level: Int) throws -> Tensor {
        var a = codes
        for l in stride(from: level - 1, through: 0, by: -1) {
            a = try decoders[l].forward(a, mode: .inference)
            if let activation = decoderActivations[l] { a = try activation.forward(a, mode: .inference) }
        }
        return a
    }

    /// The whole stack's reconstruction of patches `[N, 1, d, h, w]` or `[N, F]`, as `[N, F]`.
    public func reconstruct(_ patches: Tensor) throws -> Tensor {
        try decode(try encode(try flatten(patches), levels: levels), from: levels)
    }

    func flatten(_ batch: Tensor) throws -> Tensor {
        let n = batch.shape.first ?? 0
        guard batch.count == n * inputFeatures else {
            throw TensorError.invalidShape(operation: "StackedAutoencoder input", shape: batch.shape, reason: "expected \(inputFeatures) values per patch")
        }
        return try batch.reshaped([n, inputFeatures])
    }

    private func forwardLevel(_ level: Int, _ x: Tensor, mode: Mode) throws -> Tensor {
        try encoderActivations[level].forward(try encoders[level].forward(x, mode: mode), mode: mode)
    }

    private func decodeLevel(_ level: Int, _ h: Tensor, mode: Mode) throws -> Tensor {
        let y = try decoders[level].forward(h, mode: mode)
        return try decoderActivations[level]?.forward(y, mode: mode) ?? y
    }

    private func backDecodeLevel(_ level: Int, _ g: Tensor) throws -> Tensor {
        let gy = try decoderActivations[level]?.backward(g) ?? g
        return try decoders[level].backward(gy)
    }

    private func sparsity(_ h: Tensor) throws -> LossValue? {
        guard options.sparsityTarget > 0, options.sparsityWeight > 0 else { return nil }
        return try Loss.sparsityPenalty(activations: h, targetSparsity: Float(options.sparsityTarget), weight: Float(options.sparsityWeight))
    }

    public func trainStep(_ batch: Tensor, phase: Int, noise: inout Xoshiro256StarStar, weightDecay: Float) throws -> ReconstructionTally {
        let x = try flatten(batch)
        var tally = ReconstructionTally()
        tally.batches = 1
        var objective = 0.0
        if !isFineTuning(phase) {
            let input = try encode(x, levels: phase)
            let corrupted = Corruption.apply(input, kind: options.corruption, level: options.corruptionLevel, using: &noise)
            let h = try forwardLevel(phase, corrupted, mode: .training)
            let y = try decodeLevel(phase, h, mode: .training)
            let reconstruction = try Loss.halfSumSquaredError(y, input)
            var gradHidden = try backDecodeLevel(phase, reconstruction.gradient)
            objective += Double(reconstruction.value)
            if let penalty = try sparsity(h) {
                try gradHidden.addScaled(penalty.gradient)
                objective += Double(penalty.value)
            }
            try encoders[phase].accumulateParameterGradients(try encoderActivations[phase].backward(gradHidden))
            tally.squaredError = squaredDistance(y, input)
            tally.elements = Double(input.count)
            if phase == 0 { (tally.patchSquaredError, tally.patchElements) = (tally.squaredError, tally.elements) }
            tally.activationSum = Double(h.sum())
            tally.activations = Double(h.count)
        } else {
            let corrupted = Corruption.apply(x, kind: options.corruption, level: options.corruptionLevel, using: &noise)
            var codes: [Tensor] = []
            var a = corrupted
            for level in 0..<levels {
                a = try forwardLevel(level, a, mode: .training)
                codes.append(a)
            }
            var y = a
            for level in stride(from: levels - 1, through: 0, by: -1) { y = try decodeLevel(level, y, mode: .training) }
            let reconstruction = try Loss.halfSumSquaredError(y, x)
            objective += Double(reconstruction.value)
            var g = reconstruction.gradient
            for level in 0..<levels { g = try backDecodeLevel(level, g) }
            for level in stride(from: levels - 1, through: 0, by: -1) {
                if let penalty = try sparsity(codes[level]) {
                    try g.addScaled(penalty.gradient)
                    objective += Double(penalty.value)
                }
                let gPre = try encoderActivations[level].backward(g)
                if level == 0 { try encoders[0].accumulateParameterGradients(gPre) } else { g = try encoders[level].backward(gPre) }
            }
            tally.squaredError = squaredDistance(y, x)
            tally.elements = Double(x.count)
            (tally.patchSquaredError, tally.patchElements) = (tally.squaredError, tally.elements)
            tally.activationSum = Double(codes[levels - 1].sum())
            tally.activations = Double(codes[levels - 1].count)
        }
        if weightDecay > 0 { objective += Double(Loss.applyWeightDecay(decayedWeights(phase: phase), lambda: weightDecay)) }
        tally.objective = objective
        return tally
    }

    public func evaluate(_ batch: Tensor, phase: Int) throws -> ReconstructionTally {
        let x = try flatten(batch)
        var tally = ReconstructionTally()
        tally.batches = 1
        let level = isFineTuning(phase) ? levels - 1 : phase
        let input = isFineTuning(phase) ? x : try encode(x, levels: phase)
        let h = isFineTuning(phase) ? try encode(x, levels: levels) : try forwardLevel(phase, input, mode: .inference)
        let codeReconstruction = try decodeLevel(level, h, mode: .inference)
        let patch = isFineTuning(phase) ? try decode(h, from: levels) : try decode(codeReconstruction, from: phase)
        tally.squaredError = isFineTuning(phase) ? squaredDistance(patch, x) : squaredDistance(codeReconstruction, input)
        tally.elements = Double(input.count)
        tally.patchSquaredError = squaredDistance(patch, x)
        tally.patchElements = Double(x.count)
        tally.activationSum = Double(h.sum())
        tally.activations = Double(h.count)
        return tally
    }
}
