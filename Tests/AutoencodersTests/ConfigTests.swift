import Foundation
import NeuralNet
import Patches
import TensorCore
import Testing
import TestSupport
@testable import Autoencoders

// MARK: - PretrainConfig.validate and presets

@Suite struct PretrainConfigValidationTests {
    @Test func defaultsOfBothModelsAreValid() {
        #expect(AETest.validationMessage(PretrainConfig(model: .sae)) == nil)
        #expect(AETest.validationMessage(PretrainConfig(model: .cae)) == nil)
        let sae = PretrainConfig(model: .sae)
        #expect(sae.sae != nil && sae.cae == nil)
        #expect(sae.patches.size == [5, 5, 5])
        let cae = PretrainConfig(model: .cae)
        #expect(cae.cae != nil && cae.sae == nil)
        #expect(cae.patches.size == [32, 32, 32])
    }

    /// Each mutation of a valid configuration, and a text its error must contain.
    static let badSAE: [(String, @Sendable (inout PretrainConfig) -> Void, [String])] = [
        ("epochs 0", { $0.training.epochs = 0 }, ["training.epochs"]),
        ("epochs too many", { $0.training.epochs = 100_001 }, ["training.epochs"]),
        ("batch 0", { $0.training.batchSize = 0 }, ["training.batch_size"]),
        ("negative learning rate", { $0.training.learningRate = -0.1 }, ["training.learning_rate"]),
        ("zero learning rate", { $0.training.learningRate = 0 }, ["training.learning_rate"]),
        ("NaN learning rate", { $0.training.learningRate = .nan }, ["training.learning_rate"]),
        ("infinite learning rate", { $0.training.learningRate = .infinity }, ["training.learning_rate"]),
        ("momentum 1", { $0.training.momentum = 1 }, ["training.momentum"]),
        ("negative momentum", { $0.training.momentum = -0.1 }, ["training.momentum"]),
        ("negative weight decay", { $0.training.weightDecay = -1e-4 }, ["training.weight_decay"]),
        ("step size 0", { $0.training.stepSize = 0 }, ["step_size"]),
        ("gamma 0", { $0.training.gamma = 0 }, ["gamma"]),
        ("negative minimum rate", { $0.training.minimumLearningRate = -1 }, ["minimum_learning_rate"]),
        ("negative patience", { $0.training.patience = -1 }, ["patience"]),
        ("negative min delta", { $0.training.minDelta = -1 }, ["min_delta"]),
        ("negative checkpoint every", { $0.training.checkpointEvery = -1 }, ["checkpoint_every"]),
        ("validation fraction 1", { $0.training.validationFraction = 1 }, ["training.validation_fraction"]),
        ("negative validation fraction", { $0.training.validationFraction = -0.1 }, ["training.validation_fraction"]),
        ("validation patches 0", { $0.training.validationPatches = 0 }, ["training.validation_patches"]),
        ("empty hidden", { $0.sae!.hidden = [] }, ["sae.hidden"]),
        ("zero hidden units", { $0.sae!.hidden = [10, 0] }, ["sae.hidden"]),
        ("linear hidden activation", { $0.sae!.activation = .linear }, ["sae.activation"]),
        ("sparsity with relu", { $0.sae!.activation = .relu }, ["sae.activation", "sparsity"]),
        ("sparsity with tanh", { $0.sae!.activation = .tanh }, ["sae.activation", "sparsity"]),
        ("sparsity target 1", { $0.sae!.sparsityTarget = 1 }, ["sae.sparsity_target"]),
        ("negative sparsity target", { $0.sae!.sparsityTarget = -0.1 }, ["sae.sparsity_target"]),
        ("negative sparsity weight", { $0.sae!.sparsityWeight = -1 }, ["sae.sparsity_weight"]),
        ("masking level 1", { $0.sae!.corruption = .masking; $0.sae!.corruptionLevel = 1 }, ["sae.corruption_level"]),
        ("masking level 0", { $0.sae!.corruption = .masking; $0.sae!.corruptionLevel = 0 }, ["sae.corruption_level"]),
        ("gaussian level 0", { $0.sae!.corruption = .gaussian; $0.sae!.corruptionLevel = 0 }, ["sae.corruption_level"]),
        ("gaussian level infinite", { $0.sae!.corruption = .gaussian; $0.sae!.corruptionLevel = .infinity }, ["sae.corruption_level"]),
        ("negative fine-tune epochs", { $0.sae!.fineTuneEpochs = -1 }, ["sae.fine_tune_epochs"]),
        ("both sections", { $0.cae = CAEOptions() }, ["'cae'"]),
        ("no sae section", { $0.sae = nil }, ["'sae'"]),
        ("two-axis patch size", { $0.patches.size = [5, 5] }, ["patch size"]),
        ("zero patch extent", { $0.patches.size = [5, 0, 5] }, ["patch size"]),
        ("clip percentiles reversed", { $0.patches.clipPercentiles = [99, 1] }, ["clip percentiles"]),
        ("zero patches per epoch", { $0.patches.patchesPerEpoch = 0 }, ["patches per epoch"]),
    ]

    static let badCAE: [(String, @Sendable (inout PretrainConfig) -> Void, [String])] = [
        ("patch not divisible by 2^levels", { $0.patches.size = [12, 12, 12] }, ["patch size", "divisible by 8"]),
        ("one axis not divisible", { $0.patches.size = [32, 32, 20] }, ["patch size", "divisible by 8"]),
        ("flat axis of extent 2", { $0.patches.size = [2, 32, 32] }, ["patch size"]),
        ("even kernel", { $0.cae!.kernel = 4 }, ["cae.kernel"]),
        ("kernel 13", { $0.cae!.kernel = 13 }, ["cae.kernel"]),
        ("kernel 0", { $0.cae!.kernel = 0 }, ["cae.kernel"]),
        ("no channels", { $0.cae!.channels = [] }, ["cae.channels"]),
        ("nine levels", { $0.cae!.channels = [Int](repeating: 2, count: 9) }, ["cae.channels"]),
        ("zero channels", { $0.cae!.channels = [8, 0] }, ["cae.channels"]),
        ("masking level 1", { $0.cae!.corruption = .masking; $0.cae!.corruptionLevel = 1 }, ["cae.corruption_level"]),
        ("gaussian level negative", { $0.cae!.corruption = .gaussian; $0.cae!.corruptionLevel = -0.1 }, ["cae.corruption_level"]),
        ("both sections", { $0.sae = SAEOptions() }, ["'sae'"]),
        ("no cae section", { $0.cae = nil }, ["'cae'"]),
        ("epochs 0", { $0.training.epochs = 0 }, ["training.epochs"]),
    ]

    @Test func eachBadSAEOptionIsRejectedByName() {
        for (label, mutate, needles) in Self.badSAE {
            var config = PretrainConfig(model: .sae)
            mutate(&config)
            let message = AETest.validationMessage(config)
            #expect(message != nil, "\(label) was accepted")
            for needle in needles {
                #expect(message?.contains(needle) == true, "\(label): '\(message ?? "nil")' does not name \(needle)")
            }
        }
    }

    @Test func eachBadCAEOptionIsRejectedByName() {
        for (label, mutate, needles) in Self.badCAE {
            var config = PretrainConfig(model: .cae)
            mutate(&config)
            let message = AETest.validationMessage(config)
            #expect(message != nil, "\(label) was accepted")
            for needle in needles {
                #expect(message?.contains(needle) == true, "\(label): '\(message ?? "nil")' does not name \(needle)")
            }
        }
    }

    @Test func acceptedEdgeCases() {
        var config = PretrainConfig(model: .sae)
        // Non-sigmoid units are fine without the sparsity penalty.
        config.sae!.activation = .relu
        config.sae!.sparsityTarget = 0
        #expect(AETest.validationMessage(config) == nil)
        config.sae!.activation = .tanh
        config.sae!.corruption = .masking
        config.sae!.corruptionLevel = 0.999
        config.training.validationFraction = 0
        config.training.weightDecay = 0
        #expect(AETest.validationMessage(config) == nil)
        // The sparsity weight is not checked when the penalty is off.
        config.sae!.sparsityWeight = -5
        #expect(AETest.validationMessage(config) == nil)

        var cae = PretrainConfig(model: .cae)
        cae.cae!.channels = [2, 3]
        // Flat axes (2-D slices) are exempt from the divisibility rule.
        cae.patches.size = [1, 8, 8]
        #expect(AETest.validationMessage(cae) == nil)
        cae.patches.size = [8, 8, 1]
        #expect(AETest.validationMessage(cae) == nil)
        cae.patches.size = [4, 8, 12]
        #expect(AETest.validationMessage(cae) == nil)
        cae.cae!.kernel = 1
        #expect(AETest.validationMessage(cae) == nil)
        cae.cae!.kernel = 11
        #expect(AETest.validationMessage(cae) == nil)
    }

    @Test func errorDescriptionSaysInvalidConfiguration() {
        var config = PretrainConfig(model: .sae)
        config.training.batchSize = 0
        #expect(throws: PretrainError.invalidConfig("training.batch_size must be 1 to 10^7, got 0")) { try config.validate() }
        #expect(AETest.validationMessage(config)?.hasPrefix("invalid configuration: ") == true)
    }

    @Test func phaseNamesListGreedyLayersThenFineTuning() {
        var config = PretrainConfig(model: .sae)
        config.sae!.hidden = [10, 5]
        #expect(config.phaseNames == ["layer1", "layer2"])
        config.sae!.fineTuneEpochs = 3
        config.training.epochs = 7
        #expect(config.phaseNames == ["layer1", "layer2", "fine-tune"])
        #expect(config.epochs(phase: 0) == 7 && config.epochs(phase: 1) == 7 && config.epochs(phase: 2) == 3)
        #expect(PretrainConfig(model: .cae).phaseNames == ["cae"])
    }
}

@Suite struct PresetTests {
    @Test func payan2015HasThePublishedValues() throws {
        let config = try PretrainConfig.preset("payan2015")
        #expect(config.model == .sae)
        #expect(config.preset == "payan2015")
        #expect(config.patches.size == [5, 5, 5])
        #expect(config.patches.normalization == .minmax)
        #expect(config.patches.patchesPerEpoch == 100_000)
        let sae = try #require(config.sae)
        #expect(config.cae == nil)
        #expect(sae.hidden == [150])
        #expect(sae.activation == .sigmoid)
        #expect(sae.outputActivation == .sigmoid)
        #expect(sae.sparsityTarget == 0.01)
        #expect(sae.sparsityWeight == 3)
        #expect(sae.corruption == .none)
        #expect(sae.tiedWeights == false)
        #expect(config.training.weightDecay == 1e-4)
        #expect(config.training.batchSize == 1000)
        #expect(config.training.optimizer == .adam)
        #expect(config.training.learningRate == 0.01)
        #expect(config.training.epochs == 40)
        #expect(AETest.validationMessage(config) == nil)
        let model = try #require(try makeAutoencoder(config) as? StackedAutoencoder)
        #expect(model.inputFeatures == 125)
        #expect(AETest.layout(model.module) == ["encoder.0.weight [150, 125]", "encoder.0.bias [150]", "decoder.0.weight [125, 150]", "decoder.0.bias [125]"])
    }

    @Test func hosseini2016HasThePublishedValues() throws {
        let config = try PretrainConfig.preset("hosseini2016")
        #expect(config.model == .cae)
        #expect(config.preset == "hosseini2016")
        let cae = try #require(config.cae)
        #expect(config.sae == nil)
        #expect(cae.channels == [8, 16, 32])
        #expect(cae.kernel == 3)
        #expect(cae.activation == .relu)
        #expect(config.patches.size == [32, 32, 32])
        #expect(config.patches.normalization == .zscore)
        #expect(AETest.validationMessage(config) == nil)
        // 3×3×3 kernels and 2×2×2 max pooling on each of the three levels.
        let model = try #require(try makeAutoencoder(config) as? ConvolutionalAutoencoder)
        let convolutions = model.encoder.layers.compactMap { $0 as? Conv3d }
        #expect(convolutions.map(\.outChannels) == [8, 16, 32])
        #expect(convolutions.allSatisfy { $0.kernel == Triple(3) })
        let pools = model.encoder.layers.compactMap { $0 as? MaxPool3d }
        #expect(pools.count == 3 && pools.allSatisfy { $0.kernel == Triple(2) })
    }

    @Test func unknownPresetIsAnErrorListingTheKnownOnes() {
        do {
            _ = try PretrainConfig.preset("payan2016")
            Issue.record("an unknown preset was accepted")
        } catch {
            #expect(error.description.contains("payan2016"))
            #expect(error.description.contains("payan2015") && error.description.contains("hosseini2016"))
        }
        #expect(PretrainConfig.presetNames == ["payan2015", "hosseini2016"])
        for name in PretrainConfig.presetNames { #expect((try? PretrainConfig.preset(name)) != nil) }
    }
}

// MARK: - ConfigFile

@Suite struct ConfigFileTests {
    /// Writes `text` to a file with `name` and resolves it.
    private func resolve(_ text: String, name: String = "config.yaml", model: ModelKind? = nil, preset: String? = nil) throws -> PretrainConfig {
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent(name)
            try text.write(to: url, atomically: true, encoding: .utf8)
            return try ConfigFile.resolve(model: model, preset: preset, file: url)
        }
    }

    /// The error message of resolving `text`, or nil when it resolves.
    private func failure(_ text: String, name: String = "config.yaml", model: ModelKind? = .sae, preset: String? = nil) throws -> String? {
        do {
            _ = try resolve(text, name: name, model: model, preset: preset)
            return nil
        } catch let error as PretrainError {
            return error.description
        }
    }

    @Test func yamlSettingsAreMergedOverTheModelDefaults() throws {
        let config = try resolve("""
            seed: 42
            training:
              epochs: 3
              optimizer: sgd
            sae:
              hidden: [20, 10]
              tied_weights: true
            patches:
              size: [3, 4, 5]
            """, model: .sae)
        var expected = PretrainConfig(model: .sae)
        expected.seed = 42
        expected.training.epochs = 3
        expected.training.optimizer = .sgd
        expected.sae!.hidden = [20, 10]
        expected.sae!.tiedWeights = true
        expected.patches.size = [3, 4, 5]
        #expect(config == expected)
    }

    @Test func jsonSettingsAreMergedOverThePresetDefaults() throws {
        let config = try resolve(#"{"training": {"learning_rate": 0.005, "batch_size": 64}, "sae": {"fine_tune_epochs": 2}}"#,
                                 name: "config.json", preset: "payan2015")
        var expected = try PretrainConfig.preset("payan2015")
        expected.training.learningRate = 0.005
        expected.training.batchSize = 64
        expected.sae!.fineTuneEpochs = 2
        #expect(config == expected)
        // Values the file leaves alone keep the preset's.
        #expect(config.sae!.sparsityTarget == 0.01)
        #expect(config.patches.normalization == .minmax)
    }

    @Test func noFileGivesTheDefaultsOrThePreset() throws {
        #expect(try ConfigFile.resolve(model: .cae, preset: nil, file: nil) == PretrainConfig(model: .cae))
        #expect(try ConfigFile.resolve(model: nil, preset: "hosseini2016", file: nil) == PretrainConfig.preset("hosseini2016"))
        #expect(try ConfigFile.resolve(model: .sae, preset: "payan2015", file: nil) == PretrainConfig.preset("payan2015"))
        #expect(throws: PretrainError.self) { try ConfigFile.resolve(model: nil, preset: nil, file: nil) }
    }

    @Test func unknownKeysAreErrorsNamingTheirPath() throws {
        let top = try #require(try failure("trainin:\n  epochs: 3\n"))
        #expect(top.contains("'trainin'"))
        let nested = try #require(try failure("training: {learning_rat: 1}\n"))
        #expect(nested.contains("'training.learning_rat'"))
        let deep = try #require(try failure("patches:\n  augmentation:\n    flip: 0.5\n"))
        #expect(deep.contains("'patches.augmentation.flip'"))
        // Options of the other model are unknown too.
        let other = try #require(try failure("cae:\n  kernel: 5\n"))
        #expect(other.contains("'cae'"))
        // camelCase spellings are not the file's keys.
        let camel = try #require(try failure("training: {learningRate: 0.1}\n"))
        #expect(camel.contains("'training.learningRate'"))
        // A scalar where a section belongs.
        let scalar = try #require(try failure("training: 5\n"))
        #expect(scalar.contains("training"))
    }

    @Test func wrongTypesAreErrorsNamingTheKey() throws {
        let text = try #require(try failure("training: {epochs: \"many\"}\n"))
        #expect(text.contains("training.epochs"))
        let snake = try #require(try failure("training: {batch_size: lots}\n"))
        #expect(snake.contains("training.batch_size"))
        let fraction = try #require(try failure("training: {epochs: 2.5}\n"))
        #expect(fraction.contains("training.epochs"))
        let badEnum = try #require(try failure("sae: {activation: softmax}\n"))
        #expect(badEnum.contains("sae.activation"))
        let list = try #require(try failure("sae: {hidden: 12}\n"))
        #expect(list.contains("sae.hidden"))
        let element = try #require(try failure("sae: {hidden: [12, x]}\n"))
        #expect(element.contains("sae.hidden"))
    }

    @Test func exponentNotationWithoutADotIsANumber() throws {
        let config = try resolve("training:\n  learning_rate: 1e-3\n  weight_decay: 5e-4\nsae:\n  sparsity_target: 1e-2\n", model: .sae)
        #expect(config.training.learningRate == 1e-3)
        #expect(config.training.weightDecay == 5e-4)
        #expect(config.sae!.sparsityTarget == 1e-2)
        // A quoted word is still not a number.
        #expect(try failure("training: {learning_rate: fast}\n") != nil)
    }

    @Test func theFilesModelIsUsedWithoutAModelArgument() throws {
        let config = try resolve("model: cae\ncae:\n  channels: [4]\npatches:\n  size: [8, 8, 8]\n")
        #expect(config.model == .cae)
        #expect(config.cae?.channels == [4])
        #expect(config.sae == nil)
        #expect(config.training.batchSize == PretrainConfig(model: .cae).training.batchSize)
        // The argument wins over the file.
        let overridden = try resolve("model: cae\n", model: .sae)
        #expect(overridden == PretrainConfig(model: .sae))
        // No model anywhere, or an unknown one, is an error.
        #expect(try failure("seed: 1\n", model: nil) != nil)
        let unknown = try #require(try failure("model: vae\n", model: nil))
        #expect(unknown.contains("vae"))
    }

    @Test func theFilesPresetIsUsed() throws {
        let config = try resolve("preset: hosseini2016\ntraining: {epochs: 2}\n")
        var expected = try PretrainConfig.preset("hosseini2016")
        expected.training.epochs = 2
        #expect(config == expected)
    }

    @Test func aPresetOfAnotherModelIsAnError() throws {
        #expect(throws: PretrainError.self) { try ConfigFile.resolve(model: .cae, preset: "payan2015", file: nil) }
        let message = try #require(try failure("preset: payan2015\n", model: .cae))
        #expect(message.contains("payan2015") && message.contains("cae"))
        #expect(try failure("training: {epochs: 2}\n", model: .cae, preset: "hosseini2016") == nil)
        let unknownPreset = try #require(try failure("preset: nobody2020\n", model: nil))
        #expect(unknownPreset.contains("nobody2020"))
    }

    @Test func aProvenanceSectionIsIgnored() throws {
        let config = try resolve("""
            model: sae
            seed: 9
            provenance:
              git_commit: abc123
              started: 2024-01-01T00:00:00Z
              anything: {nested: [1, 2]}
            """)
        var expected = PretrainConfig(model: .sae)
        expected.seed = 9
        #expect(config == expected)
    }

    @Test func anEmptyFileGivesTheDefaults() throws {
        #expect(try resolve("", model: .sae) == PretrainConfig(model: .sae))
        #expect(try failure("- 1\n- 2\n") != nil)
        #expect(try failure("training: {epochs: [1, 2\n") != nil)
    }

    @Test func aMissingFileIsAnErrorNamingIt() {
        let url = URL(fileURLWithPath: "/nonexistent/adwb-config-\(UUID().uuidString).yaml")
        do {
            _ = try ConfigFile.resolve(model: .sae, preset: nil, file: url)
            Issue.record("a missing file was accepted")
        } catch {
            #expect(error.description.contains(url.path))
        }
    }

    /// Configurations with many non-default values.
    static func variedConfigs() throws -> [PretrainConfig] {
        var sae = PretrainConfig(model: .sae)
        sae.seed = 123_456_789
        sae.patches.size = [3, 5, 7]
        sae.patches.normalization = .minmax
        sae.patches.clipPercentiles = [1, 99]
        sae.patches.zeroOutsideMask = true
        sae.patches.augmentation.flipProbability = 0.5
        sae.patches.augmentation.maxShift = 2
        sae.patches.augmentation.intensityOffset = 0.05
        sae.sae!.hidden = [40, 20, 10]
        sae.sae!.tiedWeights = true
        sae.sae!.outputActivation = .sigmoid
        sae.sae!.sparsityTarget = 0.03
        sae.sae!.sparsityWeight = 2.5
        sae.sae!.corruption = .masking
        sae.sae!.corruptionLevel = 0.25
        sae.sae!.fineTuneEpochs = 4
        sae.training.learningRate = 3e-4
        sae.training.weightDecay = 1e-5
        sae.training.schedule = .cosine
        sae.training.minimumLearningRate = 1e-6
        sae.training.optimizer = .sgd
        sae.training.momentum = 0.95
        sae.training.restoreBest = false
        sae.training.validationFraction = 0.2

        var cae = PretrainConfig(model: .cae)
        cae.seed = 7
        cae.patches.size = [1, 16, 16]
        cae.cae!.channels = [4, 8]
        cae.cae!.kernel = 5
        cae.cae!.decoder = .upsample
        cae.cae!.activation = .tanh
        cae.cae!.corruption = .gaussian
        cae.cae!.corruptionLevel = 0.15
        cae.training.schedule = .step
        cae.training.stepSize = 3
        cae.training.gamma = 0.1

        var preset = try PretrainConfig.preset("payan2015")
        preset.training.epochs = 5
        return [sae, cae, preset, try PretrainConfig.preset("hosseini2016"), PretrainConfig(model: .sae)]
    }

    @Test func printedYAMLResolvesToTheSameConfiguration() throws {
        for config in try Self.variedConfigs() {
            #expect(AETest.validationMessage(config) == nil)
            let yaml = try ConfigFile.yaml(config)
            let back = try resolve(yaml, name: "printed.yaml")
            #expect(back == config, "YAML:\n\(yaml)")
        }
    }

    @Test func encodedJSONRoundTrips() throws {
        for config in try Self.variedConfigs() {
            let data = try ConfigFile.encoder.encode(config)
            let text = try #require(String(data: data, encoding: .utf8))
            #expect(text.contains("\"learning_rate\""))
            #expect(!text.contains("learningRate"))
            #expect(try JSONDecoder().decode(PretrainConfig.self, from: data) == config)
            // The same file is a valid --config.
            #expect(try resolve(text, name: "config.json") == config, "JSON:\n\(text)")
        }
    }

    @Test func aRunsConfigWithProvenanceRepeatsTheRun() throws {
        let config = try Self.variedConfigs()[1]
        var tree = try #require(try JSONSerialization.jsonObject(with: ConfigFile.encoder.encode(config)) as? [String: Any])
        tree["provenance"] = ["adwb_version": "0.1", "git_commit": "deadbeef", "hosts": ["a", "b"]]
        let data = try JSONSerialization.data(withJSONObject: tree)
        #expect(try resolve(String(decoding: data, as: UTF8.self), name: "config.json") == config)
    }

    @Test func largeSeedsRoundTrip() throws {
        var config = PretrainConfig(model: .sae)
        config.seed = UInt64(Int64.max) + 12_345
        let json = String(decoding: try ConfigFile.encoder.encode(config), as: UTF8.self)
        #expect(try JSONDecoder().decode(PretrainConfig.self, from: Data(json.utf8)) == config)
        #expect(try resolve(json, name: "config.json") == config)
        #expect(try resolve(try ConfigFile.yaml(config), name: "printed.yaml") == config)
    }
}
