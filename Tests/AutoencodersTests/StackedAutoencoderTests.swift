import Foundation
import NeuralNet
import TensorCore
import Testing
import TestSupport
@testable import Autoencoders

// The stacked autoencoder's gradients are checked against central finite differences of the
// objective `trainStep` itself reports (reconstruction + KL sparsity + weight decay), and that
// objective against an independent Double implementation of the documented formula.

/// One configuration of a gradient check: 8 input features, batch 4.
struct SAEGradientCase: Sendable, CustomStringConvertible {
    var hidden: [Int]
    var phase: Int
    var tied: Bool
    var output: ActivationName
    var activation: ActivationName = .sigmoid
    var corruption: CorruptionKind = .none
    var corruptionLevel: Double = 0.3

    var fineTuning: Bool { phase == hidden.count }

    var description: String {
        "hidden \(hidden) phase \(fineTuning ? "fine-tune" : String(phase)) \(tied ? "tied" : "untied") \(activation)→\(output)"
            + (corruption == .none ? "" : " \(corruption) \(corruptionLevel)")
    }

    var options: SAEOptions {
        var options = SAEOptions()
        options.hidden = hidden
        options.tiedWeights = tied
        options.outputActivation = output
        options.activation = activation
        // Sparsity needs sigmoid units; a non-sigmoid case runs without it (as validate demands).
        options.sparsityTarget = activation == .sigmoid ? 0.1 : 0
        options.sparsityWeight = 3
        options.corruption = corruption
        options.corruptionLevel = corruptionLevel
        options.fineTuneEpochs = fineTuning ? 1 : 0
        return options
    }

    func model(seed: UInt64 = 7) throws -> StackedAutoencoder {
        let model = try StackedAutoencoder(inputFeatures: 8, options: options, seed: seed)
        AETest.randomizeBiases(model.module, seed: seed &+ 1000)
        return model
    }

    static let all: [SAEGradientCase] = {
        var cases: [SAEGradientCase] = []
        for tied in [false, true] {
            for output in [ActivationName.sigmoid, .linear] {
                cases.append(SAEGradientCase(hidden: [5], phase: 0, tied: tied, output: output))
                cases.append(SAEGradientCase(hidden: [5, 3], phase: 1, tied: tied, output: output))
                cases.append(SAEGradientCase(hidden: [5, 3], phase: 2, tied: tied, output: output))
            }
        }
        cases.append(SAEGradientCase(hidden: [5, 3], phase: 0, tied: false, output: .sigmoid))
        // Denoising: the corruption is fixed by reseeding the noise generator for every evaluation.
        cases.append(SAEGradientCase(hidden: [5], phase: 0, tied: false, output: .sigmoid, corruption: .masking, corruptionLevel: 0.3))
        cases.append(SAEGradientCase(hidden: [5, 3], phase: 1, tied: true, output: .linear, corruption: .gaussian, corruptionLevel: 0.2))
        cases.append(SAEGradientCase(hidden: [5, 3], phase: 1, tied: false, output: .sigmoid, corruption: .masking, corruptionLevel: 0.4))
        cases.append(SAEGradientCase(hidden: [5, 3], phase: 2, tied: false, output: .sigmoid, corruption: .masking, corruptionLevel: 0.3))
        cases.append(SAEGradientCase(hidden: [5, 3], phase: 2, tied: true, output: .linear, corruption: .gaussian, corruptionLevel: 0.2))
        // Other hidden activations (no sparsity penalty).
        cases.append(SAEGradientCase(hidden: [5], phase: 0, tied: false, output: .linear, activation: .tanh))
        cases.append(SAEGradientCase(hidden: [5, 3], phase: 2, tied: true, output: .sigmoid, activation: .tanh))
        return cases
    }()
}

/// Patches `[4, 1, 2, 2, 2]` (8 features) with values in [0, 1].
private func saeBatch(seed: UInt64 = 41) -> Tensor {
    TestSupport.randomTensor([4, 1, 2, 2, 2], seed: seed, low: 0, high: 1)
}

private func rows(_ t: Tensor) -> [[Double]] {
    let n = t.shape[0]
    let f = t.count / n
    return (0..<n).map { i in (0..<f).map { Double(t.scalars[i * f + $0]) } }
}

@Suite struct StackedAutoencoderGradientTests {
    static let weightDecay: Float = 0.05
    static let noiseSeed: UInt64 = 2024

    @Test(arguments: SAEGradientCase.all)
    func trainStepGradientsMatchFiniteDifferencesOfTheObjective(_ c: SAEGradientCase) throws {
        let model = try c.model()
        let check = try AETest.finiteDifferenceCheck(model, batch: saeBatch(), phase: c.phase, noiseSeed: Self.noiseSeed,
                                                     weightDecay: Self.weightDecay, step: 1e-2)
        let trained = model.parameters(phase: c.phase).map(\.name)
        #expect(!trained.isEmpty)
        var largest = 0.0
        for name in trained {
            let analytic = try #require(check.analytic[name])
            let numeric = try #require(check.numeric[name])
            let selected = try Tensor(shape: [numeric.indices.count], scalars: numeric.indices.map { analytic.scalars[$0] })
            let numericTensor = try Tensor(shape: [numeric.values.count], scalars: numeric.values.map(Float.init))
            let (excess, location) = AETest.worstExcess(selected, numericTensor, atol: 2e-4, rtol: 5e-3, name: name)
            #expect(excess <= 0, "\(c): \(location)")
            largest = max(largest, AETest.maxAbs(numericTensor))
        }
        // The check means something only if the objective actually depends on the parameters.
        #expect(largest > 0.05, "\(c): largest numeric gradient \(largest)")
        // Parameters outside the phase (frozen lower levels, untrained upper levels) get nothing.
        for (name, gradient) in check.analytic where !trained.contains(name) {
            #expect(AETest.maxAbs(gradient) == 0, "\(c): frozen \(name) received a gradient")
        }
    }

    @Test(arguments: SAEGradientCase.all)
    func objectiveIsTheDocumentedLossComputedInDouble(_ c: SAEGradientCase) throws {
        let model = try c.model()
        let x = saeBatch()
        var noise = Xoshiro256StarStar(seed: Self.noiseSeed)
        model.module.zeroGradients()
        let tally = try model.trainStep(x, phase: c.phase, noise: &noise, weightDecay: Self.weightDecay)
        let reference = ReferenceSAE(model).objective(rows(x), phase: c.phase, noiseSeed: Self.noiseSeed, lambda: Double(Self.weightDecay))
        #expect(abs(tally.objective - reference) <= 1e-5 * max(1, abs(reference)), "\(c): trainStep \(tally.objective) reference \(reference)")
        #expect(tally.batches == 1)
    }

    @Test func sparsityAndWeightDecayContributeToTheObjective() throws {
        let c = SAEGradientCase(hidden: [5, 3], phase: 2, tied: false, output: .sigmoid)
        let x = saeBatch()
        func objective(sparsity: Bool, lambda: Float) throws -> Double {
            var options = c.options
            if !sparsity { options.sparsityTarget = 0 }
            let model = try StackedAutoencoder(inputFeatures: 8, options: options, seed: 7)
            var noise = Xoshiro256StarStar(seed: 1)
            return try model.trainStep(x, phase: 2, noise: &noise, weightDecay: lambda).objective
        }
        let plain = try objective(sparsity: false, lambda: 0)
        let withSparsity = try objective(sparsity: true, lambda: 0)
        let withDecay = try objective(sparsity: false, lambda: 0.05)
        // ρ = 0.1 while sigmoid units start near 0.5: the KL term is large and positive.
        #expect(withSparsity > plain + 0.1)
        #expect(withDecay > plain)
    }

    @Test func denoisingChangesTheObjectiveAndConsumesTheNoiseGenerator() throws {
        let x = saeBatch()
        var clean = SAEGradientCase(hidden: [5], phase: 0, tied: false, output: .sigmoid).options
        clean.sparsityTarget = 0
        var masked = clean
        masked.corruption = .masking
        masked.corruptionLevel = 0.5
        let cleanModel = try StackedAutoencoder(inputFeatures: 8, options: clean, seed: 3)
        let maskedModel = try StackedAutoencoder(inputFeatures: 8, options: masked, seed: 3)
        var noiseA = Xoshiro256StarStar(seed: 5), noiseB = Xoshiro256StarStar(seed: 5)
        let a = try cleanModel.trainStep(x, phase: 0, noise: &noiseA, weightDecay: 0)
        let b = try maskedModel.trainStep(x, phase: 0, noise: &noiseB, weightDecay: 0)
        #expect(a.objective != b.objective)
        // No corruption draws nothing; masking draws once per value.
        var fresh = Xoshiro256StarStar(seed: 5)
        #expect(noiseA.next() == fresh.next())
        var fresh2 = Xoshiro256StarStar(seed: 5)
        #expect(noiseB.next() != fresh2.next())
    }
}

@Suite struct TiedDenseTests {
    @Test func forwardIsInputTimesTheEncoderWeightPlusBias() throws {
        var generator = Xoshiro256StarStar(seed: 1)
        let encoder = Dense(inFeatures: 5, outFeatures: 3, using: &generator)
        let tied = TiedDense(transposing: encoder)
        #expect(tied.bias.value.shape == [5])
        tied.bias.value = TestSupport.randomTensor([5], seed: 2)
        let x = TestSupport.randomTensor([2, 3], seed: 3)
        let y = try tied.forward(x, mode: .inference)
        #expect(y.shape == [2, 5])
        let w = encoder.weight.value  // [3, 5]
        var worst = 0.0
        for n in 0..<2 {
            for f in 0..<5 {
                var total = Double(tied.bias.value.scalars[f])
                for j in 0..<3 { total += Double(x.scalars[n * 3 + j]) * Double(w.scalars[j * 5 + f]) }
                worst = max(worst, abs(total - Double(y.scalars[n * 5 + f])))
            }
        }
        #expect(worst < 1e-5)
        // Only the bias is the layer's own state.
        #expect(tied.namedParameters().map(\.name) == ["bias"])
        #expect(tied.tiedWeight === encoder.weight)
    }

    @Test func inputAndBiasGradientsMatchFiniteDifferences() throws {
        var generator = Xoshiro256StarStar(seed: 11)
        let encoder = Dense(inFeatures: 5, outFeatures: 3, using: &generator)
        let tied = TiedDense(transposing: encoder)
        tied.bias.value = TestSupport.randomTensor([5], seed: 12)
        let (error, location) = try TestSupport.gradientCheck(tied, input: TestSupport.randomTensor([4, 3], seed: 13))
        #expect(error < 5e-3, "\(location)")
    }

    @Test func sharedWeightGradientMatchesFiniteDifferencesAndAddsToTheEncoder() throws {
        var generator = Xoshiro256StarStar(seed: 21)
        let encoder = Dense(inFeatures: 5, outFeatures: 3, using: &generator)
        let tied = TiedDense(transposing: encoder)
        tied.bias.value = TestSupport.randomTensor([5], seed: 22)
        let x = TestSupport.randomTensor([4, 3], seed: 23)
        let output = try tied.forward(x, mode: .training)
        let (_, r) = TestSupport.projection(output, seed: 24)
        // A gradient already present in the encoder's weight must be added to, not replaced.
        let previous = TestSupport.randomTensor([3, 5], seed: 25)
        encoder.weight.gradient = previous
        _ = try tied.backward(r)
        let numeric = try TestSupport.numericalGradient(of: { w in
            encoder.weight.value = w
            let y = try tied.forward(x, mode: .inference)
            var total = 0.0
            for (a, b) in zip(y.scalars, r.scalars) { total += Double(a) * Double(b) }
            return total
        }, at: encoder.weight.value)
        var added = encoder.weight.gradient
        try added.addScaled(previous, alpha: -1)
        #expect(TestSupport.isClose(added, numeric, rtol: 5e-3, atol: 5e-3))
        #expect(AETest.maxAbs(numeric) > 0.1)
    }
}

@Suite struct StackedAutoencoderStructureTests {
    private func model(hidden: [Int], tied: Bool, output: ActivationName, features: Int = 10, fineTune: Int = 0, seed: UInt64 = 1) throws -> StackedAutoencoder {
        var options = SAEOptions()
        options.hidden = hidden
        options.tiedWeights = tied
        options.outputActivation = output
        options.fineTuneEpochs = fineTune
        return try StackedAutoencoder(inputFeatures: features, options: options, seed: seed)
    }

    @Test(arguments: [ActivationName.linear, .sigmoid])
    func untiedStateNamesFollowSequentialHalves(_ output: ActivationName) throws {
        let sae = try model(hidden: [6, 4], tied: false, output: output)
        // encoder: 0 Linear(10→6), 1 Sigmoid, 2 Linear(6→4), 3 Sigmoid
        // decoder: 0 Linear(4→6), 1 Sigmoid, 2 Linear(6→10), [3 output activation unless linear]
        #expect(AETest.layout(sae.module) == [
            "encoder.0.weight [6, 10]", "encoder.0.bias [6]",
            "encoder.2.weight [4, 6]", "encoder.2.bias [4]",
            "decoder.0.weight [6, 4]", "decoder.0.bias [6]",
            "decoder.2.weight [10, 6]", "decoder.2.bias [10]",
        ])
        let encoder = try #require(sae.module.encoder as? Sequential)
        let decoder = try #require(sae.module.decoder as? Sequential)
        #expect(encoder.layers.count == 4)
        #expect(encoder.layers[1] is Sigmoid && encoder.layers[3] is Sigmoid)
        #expect(decoder.layers.count == (output == .linear ? 3 : 4))
        #expect(decoder.layers[1] is Sigmoid)
        if output == .sigmoid { #expect(decoder.layers[3] is Sigmoid) }
    }

    @Test func tiedDecodersStoreOnlyTheirBias() throws {
        let sae = try model(hidden: [6, 4], tied: true, output: .sigmoid)
        #expect(AETest.layout(sae.module) == [
            "encoder.0.weight [6, 10]", "encoder.0.bias [6]",
            "encoder.2.weight [4, 6]", "encoder.2.bias [4]",
            "decoder.0.bias [6]",
            "decoder.2.bias [10]",
        ])
        let decoder = try #require(sae.module.decoder as? Sequential)
        let top = try #require(decoder.layers[0] as? TiedDense)
        let bottom = try #require(decoder.layers[2] as? TiedDense)
        #expect(top.tiedWeight === sae.encoders[1].weight)
        #expect(bottom.tiedWeight === sae.encoders[0].weight)
    }

    @Test(arguments: [false, true])
    func parametersOfEachPhaseAreThatLevelsOrAllForFineTuning(_ tied: Bool) throws {
        let sae = try model(hidden: [5, 3], tied: tied, output: .sigmoid, features: 8, fineTune: 2)
        #expect(sae.phaseCount == 3)
        let names = (0..<3).map { sae.parameters(phase: $0).map(\.name) }
        if tied {
            #expect(names[0] == ["encoder.0.weight", "encoder.0.bias", "decoder.2.bias"])
            #expect(names[1] == ["encoder.2.weight", "encoder.2.bias", "decoder.0.bias"])
        } else {
            #expect(names[0] == ["encoder.0.weight", "encoder.0.bias", "decoder.2.weight", "decoder.2.bias"])
            #expect(names[1] == ["encoder.2.weight", "encoder.2.bias", "decoder.0.weight", "decoder.0.bias"])
        }
        #expect(names[2] == sae.module.namedParameters().map(\.name))
        // The greedy phases partition the parameters.
        #expect(Set(names[0]).isDisjoint(with: names[1]))
        #expect(Set(names[0]).union(names[1]) == Set(names[2]))
        // parameters(phase:) hands out the module's own Parameter objects.
        let byName = Dictionary(uniqueKeysWithValues: sae.module.namedParameters().map { ($0.name, $0.parameter) })
        for phase in 0..<3 {
            for (name, parameter) in sae.parameters(phase: phase) { #expect(byName[name] === parameter) }
        }
        // Exactly these receive gradients from a trainStep of each phase.
        for phase in 0..<3 {
            sae.module.zeroGradients()
            var noise = Xoshiro256StarStar(seed: 1)
            _ = try sae.trainStep(saeBatch(), phase: phase, noise: &noise, weightDecay: 0.01)
            let touched = sae.module.namedParameters().filter { AETest.maxAbs($0.parameter.gradient) > 0 }.map(\.name)
            #expect(touched == names[phase], "phase \(phase)")
        }
    }

    @Test func withoutFineTuningThereIsOnePhasePerLevel() throws {
        let sae = try model(hidden: [5, 3, 2], tied: false, output: .linear, features: 8)
        #expect(sae.phaseCount == 3)
        #expect(sae.parameters(phase: 2).map(\.name) == ["encoder.4.weight", "encoder.4.bias", "decoder.0.weight", "decoder.0.bias"])
    }

    @Test func rejectsAWrongPatchSize() throws {
        let sae = try model(hidden: [5], tied: false, output: .linear, features: 8)
        var noise = Xoshiro256StarStar(seed: 1)
        #expect(throws: (any Error).self) { try sae.trainStep(Tensor(zeros: [4, 9]), phase: 0, noise: &noise, weightDecay: 0) }
        #expect(throws: (any Error).self) { try sae.evaluate(Tensor(zeros: [4, 1, 3, 3, 1]), phase: 0) }
    }

    @Test func reconstructEncodesAndDecodesTheWholeStack() throws {
        let sae = try model(hidden: [5, 3], tied: false, output: .sigmoid, features: 8)
        AETest.randomizeBiases(sae.module, seed: 5)
        let x = saeBatch()
        let y = try sae.reconstruct(x)
        #expect(y.shape == [4, 8])
        let reference = ReferenceSAE(sae)
        var a = rows(x)
        a = reference.decode(reference.decode(reference.encode(reference.encode(a, level: 0), level: 1), level: 1), level: 0)
        #expect(TestSupport.isClose(y, try Tensor(shape: [4, 8], scalars: a.flatMap { $0 }.map(Float.init)), rtol: 1e-5, atol: 1e-6))
        // The whole module (encoder then decoder Sequential) computes the same.
        let viaModule = try sae.module.forward(try x.reshaped([4, 8]), mode: .inference)
        #expect(TestSupport.isClose(viaModule, y, rtol: 1e-5, atol: 1e-6))
    }

    @Test func evaluateReportsCodeAndPatchErrorsOfEachPhase() throws {
        let sae = try model(hidden: [5, 3], tied: false, output: .sigmoid, features: 8, fineTune: 1)
        AETest.randomizeBiases(sae.module, seed: 9)
        let x = saeBatch()
        let r = ReferenceSAE(sae)
        let clean = rows(x)
        func sse(_ a: [[Double]], _ b: [[Double]]) -> Double { 2 * Double(a.count) * ReferenceSAE.halfMeanSquaredDistance(a, b) }
        let a1 = r.encode(clean, level: 0), a2 = r.encode(a1, level: 1)
        func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-5 * max(1, abs(b)) }

        let phase0 = try sae.evaluate(x, phase: 0)
        let y0 = r.decode(a1, level: 0)
        #expect(close(phase0.squaredError, sse(y0, clean)))
        #expect(close(phase0.patchSquaredError, sse(y0, clean)))
        #expect(phase0.elements == 32 && phase0.patchElements == 32)
        #expect(phase0.activations == 20)
        #expect(close(phase0.activationSum, a1.joined().reduce(0, +)))

        // Phase 1 reconstructs the level-1 codes; the patch error goes through both decoders.
        let phase1 = try sae.evaluate(x, phase: 1)
        let codeReconstruction = r.decode(a2, level: 1)
        #expect(close(phase1.squaredError, sse(codeReconstruction, a1)))
        #expect(phase1.elements == 20)
        #expect(close(phase1.patchSquaredError, sse(r.decode(codeReconstruction, level: 0), clean)))
        #expect(phase1.patchElements == 32)
        #expect(phase1.activations == 12)

        let fineTune = try sae.evaluate(x, phase: 2)
        let y = r.decode(r.decode(a2, level: 1), level: 0)
        #expect(close(fineTune.squaredError, sse(y, clean)))
        #expect(close(fineTune.patchSquaredError, sse(y, clean)))
        #expect(fineTune.elements == 32)
        #expect(close(fineTune.activationSum, a2.joined().reduce(0, +)))
    }

    @Test func trainStepTallyMatchesItsOwnReconstruction() throws {
        let sae = try model(hidden: [5], tied: true, output: .linear, features: 8)
        let x = saeBatch()
        var noise = Xoshiro256StarStar(seed: 1)
        let tally = try sae.trainStep(x, phase: 0, noise: &noise, weightDecay: 0)
        let y = try sae.reconstruct(x)
        let expected = AETest.sumOfSquaredDifferences(y, try x.reshaped([4, 8]))
        #expect(abs(tally.squaredError - expected) <= 1e-5 * max(1, expected))
        #expect(tally.elements == 32 && tally.patchElements == 32 && tally.batches == 1)
        // Without penalties the objective is ½·Σ(y − x)² / N.
        var plain = SAEOptions()
        plain.hidden = [5]
        plain.sparsityTarget = 0
        let unpenalised = try StackedAutoencoder(inputFeatures: 8, options: plain, seed: 2)
        let t = try unpenalised.trainStep(x, phase: 0, noise: &noise, weightDecay: 0)
        #expect(abs(t.objective - t.squaredError / 2 / 4) <= 1e-5 * max(1, t.objective))
    }
}

@Suite struct MakeAutoencoderTests {
    private func saeConfig(seed: UInt64) -> PretrainConfig {
        var config = PretrainConfig(model: .sae)
        config.seed = seed
        config.patches.size = [2, 2, 2]
        config.sae!.hidden = [5, 3]
        return config
    }

    private func caeConfig(seed: UInt64) -> PretrainConfig {
        var config = PretrainConfig(model: .cae)
        config.seed = seed
        config.patches.size = [4, 4, 4]
        config.cae!.channels = [2]
        return config
    }

    private func values(_ model: any AutoencoderModel) -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: model.module.namedParameters().map { ($0.name, $0.parameter.value) })
    }

    @Test func theSameSeedGivesIdenticalWeightsAndAnotherSeedDifferentOnes() throws {
        for make in [saeConfig, caeConfig] {
            let a = values(try makeAutoencoder(make(5)))
            let b = values(try makeAutoencoder(make(5)))
            let c = values(try makeAutoencoder(make(6)))
            #expect(a == b)
            #expect(a.keys.sorted() == c.keys.sorted())
            for name in a.keys where name.hasSuffix("weight") {
                #expect(a[name] != c[name], "\(name) is the same for seeds 5 and 6")
            }
        }
    }

    @Test func buildsTheConfiguredModel() throws {
        let sae = try #require(try makeAutoencoder(saeConfig(seed: 1)) as? StackedAutoencoder)
        #expect(sae.inputFeatures == 8)
        #expect(sae.options.hidden == [5, 3])
        let cae = try #require(try makeAutoencoder(caeConfig(seed: 1)) as? ConvolutionalAutoencoder)
        #expect(cae.patchSize == [4, 4, 4])
        #expect(cae.phaseCount == 1)
    }

    @Test func validatesTheConfiguration() throws {
        var config = saeConfig(seed: 1)
        config.sae!.hidden = []
        #expect(throws: PretrainError.self) { try makeAutoencoder(config) }
        var bad = caeConfig(seed: 1)
        bad.patches.size = [6, 6, 6]
        bad.cae!.channels = [2, 2]
        #expect(throws: PretrainError.self) { try makeAutoencoder(bad) }
    }
}
