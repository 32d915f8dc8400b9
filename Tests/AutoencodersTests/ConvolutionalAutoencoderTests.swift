import Foundation
import NeuralNet
import TensorCore
import Testing
import TestSupport
@testable import Autoencoders

private func caeOptions(channels: [Int], decoder: CAEOptions.DecoderKind, activation: ActivationName = .relu,
                        kernel: Int = 3, corruption: CorruptionKind = .none, level: Double = 0.1) -> CAEOptions {
    var options = CAEOptions()
    options.channels = channels
    options.decoder = decoder
    options.activation = activation
    options.kernel = kernel
    options.corruption = corruption
    options.corruptionLevel = level
    return options
}

struct CAEShapeCase: Sendable, CustomStringConvertible {
    var size: [Int]
    var decoder: CAEOptions.DecoderKind
    var description: String { "\(size) \(decoder)" }

    static let all: [CAEShapeCase] = [[8, 8, 8], [1, 8, 8], [8, 8, 1], [8, 1, 8], [4, 8, 16]].flatMap { size in
        [CAEOptions.DecoderKind.transpose, .upsample].map { CAEShapeCase(size: size, decoder: $0) }
    }
}

struct CAEGradientCase: Sendable, CustomStringConvertible {
    var size: [Int] = [4, 4, 4]
    var decoder: CAEOptions.DecoderKind
    var activation: ActivationName
    var corruption: CorruptionKind = .none
    var level: Double = 0.1
    var description: String { "\(size) \(decoder) \(activation) \(corruption)" }

    static let all: [CAEGradientCase] = [
        CAEGradientCase(decoder: .transpose, activation: .relu),
        CAEGradientCase(decoder: .transpose, activation: .tanh),
        CAEGradientCase(decoder: .upsample, activation: .relu),
        CAEGradientCase(decoder: .upsample, activation: .sigmoid, corruption: .gaussian, level: 0.2),
        CAEGradientCase(decoder: .transpose, activation: .tanh, corruption: .masking, level: 0.3),
        CAEGradientCase(size: [1, 4, 4], decoder: .transpose, activation: .tanh),
        CAEGradientCase(size: [4, 4, 1], decoder: .upsample, activation: .tanh),
    ]
}

@Suite struct ConvolutionalAutoencoderShapeTests {
    @Test(arguments: CAEShapeCase.all)
    func reconstructionHasTheInputShape(_ c: CAEShapeCase) throws {
        let model = try ConvolutionalAutoencoder(patchSize: c.size, options: caeOptions(channels: [2, 3], decoder: c.decoder), seed: 1)
        let x = TestSupport.randomTensor([2, 1] + c.size, seed: 2)
        let y = try model.module.forward(x, mode: .inference)
        #expect(y.shape == x.shape)
        let yTraining = try model.module.forward(x, mode: .training)
        #expect(yTraining.shape == x.shape)
        // Two pooling levels divide every non-flat axis by 4 and leave flat axes at 1.
        let codes = try model.encoder.forward(x, mode: .inference)
        #expect(codes.shape == [2, 3] + c.size.map { $0 == 1 ? 1 : $0 / 4 })
        // The flat axis is neither convolved (kernel 1, padding 0) nor pooled.
        let kernel = Triple(c.size[0] == 1 ? 1 : 3, c.size[1] == 1 ? 1 : 3, c.size[2] == 1 ? 1 : 3)
        let pool = Triple(c.size[0] == 1 ? 1 : 2, c.size[1] == 1 ? 1 : 2, c.size[2] == 1 ? 1 : 2)
        let convolutions = model.encoder.layers.compactMap { $0 as? Conv3d } + model.decoder.layers.compactMap { $0 as? Conv3d }
        let transposed = model.decoder.layers.compactMap { $0 as? ConvTranspose3d }
        #expect(convolutions.count + transposed.count == 4)
        for conv in convolutions {
            #expect(conv.kernel == kernel)
            #expect(conv.padding == Triple(kernel.d / 2, kernel.h / 2, kernel.w / 2))
            #expect(conv.stride == Triple(1))
        }
        for conv in transposed {
            #expect(conv.kernel == kernel)
            #expect(conv.stride == pool)
            #expect(conv.outputPadding == Triple(pool.d - 1, pool.h - 1, pool.w - 1))
        }
        let pools = model.encoder.layers.compactMap { $0 as? MaxPool3d }
        #expect(pools.count == 2)
        for p in pools { #expect(p.kernel == pool && p.stride == pool) }
        for u in model.decoder.layers.compactMap({ $0 as? Upsample3d }) { #expect(u.factor == pool) }
    }

    @Test func transposeDecoderStateMatchesPyTorchSequentialLayout() throws {
        let model = try ConvolutionalAutoencoder(patchSize: [8, 8, 8], options: caeOptions(channels: [2, 3], decoder: .transpose), seed: 1)
        // encoder: 0 Conv3d(1→2), 1 ReLU, 2 MaxPool3d, 3 Conv3d(2→3), 4 ReLU, 5 MaxPool3d
        // decoder: 0 ConvTranspose3d(3→2), 1 ReLU, 2 ConvTranspose3d(2→1)  ([C_in, C_out, k, k, k])
        #expect(AETest.layout(model.module) == [
            "encoder.0.weight [2, 1, 3, 3, 3]", "encoder.0.bias [2]",
            "encoder.3.weight [3, 2, 3, 3, 3]", "encoder.3.bias [3]",
            "decoder.0.weight [3, 2, 3, 3, 3]", "decoder.0.bias [2]",
            "decoder.2.weight [2, 1, 3, 3, 3]", "decoder.2.bias [1]",
        ])
        #expect(model.encoder.layers.count == 6)
        #expect(model.encoder.layers[1] is ReLU && model.encoder.layers[2] is MaxPool3d)
        #expect(model.decoder.layers.count == 3)
        #expect(model.decoder.layers[1] is ReLU)
        #expect(model.decoder.layers[2] is ConvTranspose3d)
    }

    @Test func upsampleDecoderStateMatchesPyTorchSequentialLayout() throws {
        let model = try ConvolutionalAutoencoder(patchSize: [8, 8, 8], options: caeOptions(channels: [2, 3], decoder: .upsample), seed: 1)
        // decoder: 0 Upsample, 1 Conv3d(3→2), 2 ReLU, 3 Upsample, 4 Conv3d(2→1)  ([C_out, C_in, k, k, k])
        #expect(AETest.layout(model.module) == [
            "encoder.0.weight [2, 1, 3, 3, 3]", "encoder.0.bias [2]",
            "encoder.3.weight [3, 2, 3, 3, 3]", "encoder.3.bias [3]",
            "decoder.1.weight [2, 3, 3, 3, 3]", "decoder.1.bias [2]",
            "decoder.4.weight [1, 2, 3, 3, 3]", "decoder.4.bias [1]",
        ])
        #expect(model.decoder.layers.count == 5)
        #expect(model.decoder.layers[0] is Upsample3d && model.decoder.layers[3] is Upsample3d)
        #expect(model.decoder.layers[2] is ReLU)
    }

    @Test func sigmoidActivationsSitWhereReLUsWere() throws {
        let model = try ConvolutionalAutoencoder(patchSize: [8, 8, 8], options: caeOptions(channels: [2, 3], decoder: .transpose, activation: .sigmoid), seed: 1)
        #expect(model.encoder.layers[1] is Sigmoid && model.encoder.layers[4] is Sigmoid && model.decoder.layers[1] is Sigmoid)
        #expect(AETest.layout(model.module).count == 8)
    }

    @Test func rejectsBadArchitectures() {
        #expect(throws: PretrainError.self) {
            try ConvolutionalAutoencoder(patchSize: [8, 8, 8], options: caeOptions(channels: [2], decoder: .transpose, kernel: 4), seed: 1)
        }
        #expect(throws: PretrainError.self) {
            try ConvolutionalAutoencoder(patchSize: [8, 8], options: caeOptions(channels: [2], decoder: .transpose), seed: 1)
        }
        #expect(throws: PretrainError.self) {
            try ConvolutionalAutoencoder(patchSize: [8, 8, 8], options: caeOptions(channels: [], decoder: .transpose), seed: 1)
        }
    }
}

@Suite struct ConvolutionalAutoencoderTrainingTests {
    static let weightDecay: Float = 0.05

    private func model(_ c: CAEGradientCase) throws -> ConvolutionalAutoencoder {
        let options = caeOptions(channels: [2], decoder: c.decoder, activation: c.activation, corruption: c.corruption, level: c.level)
        let model = try ConvolutionalAutoencoder(patchSize: c.size, options: options, seed: 3)
        AETest.randomizeBiases(model.module, seed: 4)
        return model
    }

    /// The smallest gap between the largest and the second largest value of any max-pooling
    /// window of the first level (the convolution's output; sigmoid and tanh are monotonic),
    /// and for ReLU the distance of each window's maximum from 0. Finite differences that move a value across
    /// such a gap see the kink of max pooling, not the gradient.
    private func smallestPoolingGap(_ model: ConvolutionalAutoencoder, input: Tensor) throws -> Float {
        let conv = try #require(model.encoder.layers.first as? Conv3d)
        let pool = try #require(model.encoder.layers.compactMap { $0 as? MaxPool3d }.first)
        let z = try conv.forward(input, mode: .inference)
        let (n, c, d, h, w) = (z.shape[0], z.shape[1], z.shape[2], z.shape[3], z.shape[4])
        let k = pool.kernel
        var smallest = Float.infinity
        for b in 0..<n { for ch in 0..<c {
            for zd in 0..<(d / k.d) { for zh in 0..<(h / k.h) { for zw in 0..<(w / k.w) {
                var window: [Float] = []
                for i in 0..<k.d { for j in 0..<k.h { for l in 0..<k.w {
                    window.append(z[b, ch, zd * k.d + i, zh * k.h + j, zw * k.w + l])
                } } }
                window.sort(by: >)
                if model.options.activation == .relu {
                    // ReLU's own kink at 0 matters for the window's maximum; a tie matters only
                    // between positive values (ReLU passes no gradient to the others).
                    smallest = min(smallest, abs(window[0]))
                    if window[1] > 0 { smallest = min(smallest, window[0] - window[1]) }
                } else {
                    smallest = min(smallest, window[0] - window[1])
                }
            } } }
        } }
        return smallest
    }

    @Test(arguments: CAEGradientCase.all)
    func trainStepGradientsMatchFiniteDifferencesOfTheObjective(_ c: CAEGradientCase) throws {
        let model = try model(c)
        // A batch and noise whose pooling windows have no near-ties: with step h, weights move
        // the convolution's outputs by at most h·Σ|x| over the kernel, far below the gap.
        var chosen: (x: Tensor, noiseSeed: UInt64)?
        for seed in UInt64(5)..<UInt64(60) {
            let x = TestSupport.randomTensor([2, 1] + c.size, seed: seed)
            var noise = Xoshiro256StarStar(seed: seed &+ 1000)
            let corrupted = Corruption.apply(x, kind: c.corruption, level: c.level, using: &noise)
            if try smallestPoolingGap(model, input: corrupted) > 0.02 { chosen = (x, seed &+ 1000); break }
        }
        let (x, noiseSeed) = try #require(chosen)
        // Every third entry of every parameter.
        let check = try AETest.finiteDifferenceCheck(model, batch: x, phase: 0, noiseSeed: noiseSeed, weightDecay: Self.weightDecay,
                                                     step: 2e-3, entries: { $0 % 3 == 0 })
        let names = model.parameters(phase: 0).map(\.name)
        #expect(names == model.module.namedParameters().map(\.name))
        var largest = 0.0
        var compared = 0
        for name in names {
            let analytic = try #require(check.analytic[name])
            let numeric = try #require(check.numeric[name])
            let selected = try Tensor(shape: [numeric.indices.count], scalars: numeric.indices.map { analytic.scalars[$0] })
            let numericTensor = try Tensor(shape: [numeric.values.count], scalars: numeric.values.map(Float.init))
            let (excess, location) = AETest.worstExcess(selected, numericTensor, atol: 3e-4, rtol: 1e-2, name: name)
            #expect(excess <= 0, "\(c): \(location)")
            largest = max(largest, AETest.maxAbs(numericTensor))
            compared += numeric.indices.count
            // Every parameter of the single phase is trained.
            #expect(AETest.maxAbs(analytic) > 0, "\(c): \(name) got no gradient")
        }
        #expect(compared >= 10)
        #expect(largest > 0.01, "\(c): largest numeric gradient \(largest)")
    }

    @Test(arguments: [CAEOptions.DecoderKind.transpose, .upsample])
    func objectiveIsMeanSquaredErrorPlusWeightDecayOnWeightsOnly(_ decoder: CAEOptions.DecoderKind) throws {
        let model = try model(CAEGradientCase(decoder: decoder, activation: .relu))
        let x = TestSupport.randomTensor([2, 1, 4, 4, 4], seed: 6)
        let y = try model.module.forward(x, mode: .inference)
        let sse = AETest.sumOfSquaredDifferences(y, x)
        var weights = 0.0
        for (name, p) in model.module.namedParameters() where name.hasSuffix(".weight") {
            for v in p.value.scalars { weights += Double(v) * Double(v) }
        }
        var noise = Xoshiro256StarStar(seed: 1)
        model.module.zeroGradients()
        let tally = try model.trainStep(x, phase: 0, noise: &noise, weightDecay: Self.weightDecay)
        let expected = sse / Double(x.count) + 0.5 * Double(Self.weightDecay) * weights
        #expect(abs(tally.objective - expected) <= 1e-5 * max(1, expected), "trainStep \(tally.objective) expected \(expected)")
        #expect(abs(tally.squaredError - sse) <= 1e-4 * max(1, sse))
        #expect(tally.elements == Double(x.count) && tally.patchElements == Double(x.count))
        #expect(tally.batches == 1)
        // No corruption: the generator is not drawn from.
        var fresh = Xoshiro256StarStar(seed: 1)
        #expect(noise.next() == fresh.next())
    }

    @Test(arguments: [CAEOptions.DecoderKind.transpose, .upsample])
    func evaluateSumsSquaredDifferencesOfTheInferenceReconstruction(_ decoder: CAEOptions.DecoderKind) throws {
        let model = try ConvolutionalAutoencoder(patchSize: [8, 8, 8], options: caeOptions(channels: [2, 3], decoder: decoder), seed: 8)
        AETest.randomizeBiases(model.module, seed: 9)
        let x = TestSupport.randomTensor([3, 1, 8, 8, 8], seed: 10)
        let tally = try model.evaluate(x, phase: 0)
        let expected = AETest.sumOfSquaredDifferences(try model.module.forward(x, mode: .inference), x)
        #expect(expected > 0)
        // (evaluate subtracts in Float before squaring in Double.)
        #expect(abs(tally.squaredError - expected) <= 1e-6 * max(1, expected))
        #expect(tally.patchSquaredError == tally.squaredError)
        #expect(tally.elements == 3 * 512 && tally.patchElements == 3 * 512)
        #expect(tally.batches == 1)
        #expect(tally.objective == 0)
        // evaluate neither trains nor accumulates gradients.
        #expect(model.module.namedParameters().allSatisfy { p in AETest.maxAbs(p.parameter.gradient) == 0 })
    }

    @Test func denoisingCorruptsTheInputButReconstructsTheCleanPatch() throws {
        // With masking at 0.5 the objective differs from the clean one; the target stays the
        // clean patch (evaluate on the clean input matches the uncorrupted reconstruction).
        let clean = try model(CAEGradientCase(decoder: .transpose, activation: .tanh))
        let noisy = try model(CAEGradientCase(decoder: .transpose, activation: .tanh, corruption: .masking, level: 0.5))
        #expect(AETest.layout(clean.module) == AETest.layout(noisy.module))
        for (a, b) in zip(clean.module.namedParameters(), noisy.module.namedParameters()) { #expect(a.parameter.value == b.parameter.value) }
        let x = TestSupport.randomTensor([2, 1, 4, 4, 4], seed: 11)
        var n1 = Xoshiro256StarStar(seed: 3), n2 = Xoshiro256StarStar(seed: 3)
        let a = try clean.trainStep(x, phase: 0, noise: &n1, weightDecay: 0)
        let b = try noisy.trainStep(x, phase: 0, noise: &n2, weightDecay: 0)
        #expect(a.objective != b.objective)
        // The noisy model's objective is the MSE of its reconstruction of the masked input vs x.
        var replay = Xoshiro256StarStar(seed: 3)
        let masked = Corruption.apply(x, kind: .masking, level: 0.5, using: &replay)
        let y = try noisy.module.forward(masked, mode: .inference)
        let expected = AETest.sumOfSquaredDifferences(y, x) / Double(x.count)
        #expect(abs(b.objective - expected) <= 1e-5 * max(1, expected))
    }
}
