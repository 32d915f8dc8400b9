import Foundation
import NeuralNet
import TensorCore

/// A convolutional 3-D autoencoder (Masci et al. 2011; in 3-D for brain MRI, Hosseini-Asl
/// et al. 2016), trained end to end on patches and, being fully convolutional, applicable
/// to whole volumes afterwards.
///
/// ```
/// x: [N, 1, d, h, w] → encoder → [N, c_L, d/2^L, h/2^L, w/2^L] → decoder → [N, 1, d, h, w]
/// loss: mean((x̂ − x)²) + λ/2·Σ‖W‖²
/// ```
/// See `CAEOptions` for the blocks. State names are those of `nn.Sequential` halves
/// (`encoder.0.weight` is the first Conv3d, `[c_1, 1, k, k, k]`).
public final class ConvolutionalAutoencoder: AutoencoderModel {
    public let options: CAEOptions
    public let patchSize: [Int]
    public let module: EncoderDecoder
    public let encoder: Sequential
    public let decoder: Sequential
    private let weights: [Parameter]

    public init(patchSize: [Int], options: CAEOptions, seed: UInt64) throws {
        guard patchSize.count == 3, !options.channels.isEmpty, options.kernel % 2 == 1 else {
            throw PretrainError.invalidConfig("a convolutional autoencoder needs a 3-axis patch size, channels and an odd kernel")
        }
        self.options = options
        self.patchSize = patchSize
        var generator = Xoshiro256StarStar(seed: seed)
        // Axes along which the patch is flat (2-D slices) are neither convolved nor pooled.
        func perAxis(_ value: Int, flat: Int) -> Triple {
            Triple(patchSize[0] == 1 ? flat : value, patchSize[1] == 1 ? flat : value, patchSize[2] == 1 ? flat : value)
        }
        let kernel = perAxis(options.kernel, flat: 1)
        let padding = perAxis(options.kernel / 2, flat: 0)
        let factor = perAxis(2, flat: 1)
        let initialization: WeightInitialization = options.activation == .relu ? .he : .xavier
        let channels = [1] + options.channels
        var encoderLayers: [any Layer] = []
        for level in options.channels.indices {
            encoderLayers.append(Conv3d(inChannels: channels[level], outChannels: channels[level + 1], kernel: kernel,
                                        padding: padding, initialization: initialization, using: &generator))
            if let activation = options.activation.layer() { encoderLayers.append(activation) }
            encoderLayers.append(MaxPool3d(kernel: factor))
        }
        var decoderLayers: [any Layer] = []
        for level in options.channels.indices.reversed() {
            let (input, output) = (channels[level + 1], channels[level])
            switch options.decoder {
            case .transpose:
                decoderLayers.append(try ConvTranspose3d(
                    inChannels: input, outChannels: output, kernel: kernel, stride: factor, padding: padding,
                    outputPadding: perAxis(1, flat: 0), initialization: initialization, using: &generator))
            case .upsample:
                decoderLayers.append(try Upsample3d(factor: factor))
                decoderLayers.append(Conv3d(inChannels: input, outChannels: output, kernel: kernel, padding: padding,
                                            initialization: initialization, using: &generator))
            }
            if level > 0, let activation = options.activation.layer() { decoderLayers.append(activation) }
        }
        encoder = Sequential(encoderLayers)
        decoder = Sequential(decoderLayers)
        module = EncoderDecoder(encoder: encoder, decoder: decoder)
        weights = (encoderLayers + decoderLayers).compactMap { ($0 as? Conv3d)?.weight ?? ($0 as? ConvTranspose3d)?.weight }
    }

    public var phaseCount: Int { 1 }

    public func parameters(phase: Int) -> [(name: String, parameter: Parameter)] { module.namedParameters() }

    public func trainStep(_ batch: Tensor, phase: Int, noise: inout Xoshiro256StarStar, weightDecay: Float) throws -> ReconstructionTally {
        let corrupted = Corruption.apply(batch, kind: options.corruption, level: options.corruptionLevel, using: &noise)
        let y = try module.forward(corrupted, mode: .training)
        let loss = try Loss.meanSquaredError(y, batch)
        // The input needs no gradient.
        try module.accumulateParameterGradients(loss.gradient)
        var tally = ReconstructionTally()
        tally.batches = 1
        tally.objective = Double(loss.value)
        if weightDecay > 0 { tally.objective += Double(Loss.applyWeightDecay(weights, lambda: weightDecay)) }
        tally.squaredError = Double(loss.value) * Double(batch.count)
        tally.elements = Double(batch.count)
        (tally.patchSquaredError, tally.patchElements) = (tally.squaredError, tally.elements)
        return tally
    }

    public func evaluate(_ batch: Tensor, phase: Int) throws -> ReconstructionTally {
        let y = try module.forward(batch, mode: .inference)
        var tally = ReconstructionTally()
        tally.batches = 1
        tally.squaredError = squaredDistance(y, batch)
        tally.elements = Double(batch.count)
        (tally.patchSquaredError, tally.patchElements) = (tally.squaredError, tally.elements)
        return tally
    }
}
