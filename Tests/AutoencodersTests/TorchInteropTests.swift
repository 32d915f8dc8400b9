import Autoencoders
import Foundation
import NeuralNet
import TensorCore
import Testing
import TestSupport

/// The autoencoders against PyTorch: fixtures made by Tests/Fixtures/make_autoencoder_fixtures.py
/// (PyTorch 2.13; float64 reference outputs from the float32 weights, stored as float32). Each
/// case's PyTorch module has `encoder` / `decoder` `nn.Sequential` halves laid out as ours, so
/// its `state_dict` loads strictly into `model.module` and our forward pass must reproduce
/// PyTorch's. No Python at run time: the fixtures are committed.
@Suite struct AutoencoderTorchInteropTests {
    /// Every case the fixture script writes (`cases.json` must list exactly these).
    static let caseNames = [
        "sae_sigmoid", "sae_linear_output", "sae_tied_tanh",
        "cae_transpose", "cae_upsample", "cae_anisotropic_k5_tanh", "cae_slice_transpose", "cae_slice_upsample",
    ]

    /// Largest |ours − PyTorch| accepted (outputs are O(1); the fixtures agree to about 2e-7,
    /// float32 rounding).
    static let tolerance: Float = 1e-5

    @Test func manifestListsExactlyTheTestedCases() throws {
        #expect(try Manifest.load().cases.map(\.name) == Self.caseNames)
    }

    @Test(arguments: caseNames)
    func forwardPassEqualsPyTorch(_ name: String) throws {
        let fixture = try Fixture(name)
        let model = try fixture.buildModel(seed: 1)
        let input = try fixture.float("fixture.input")
        let expected = try fixture.float("fixture.output")
        try #require(input.shape == [fixture.spec.batch, 1] + fixture.spec.patchSize)
        let flat = try input.reshaped(model is StackedAutoencoder ? [fixture.spec.batch, -1] : input.shape)
        // Not vacuous: with its own initial weights the model is far from PyTorch's output.
        #expect(try model.module.forward(flat, mode: .inference).maxAbsDifference(expected) > 1e-2)
        try Checkpoint.load(model.module, tensors: fixture.state, path: fixture.url.path)

        switch model {
        case let sae as StackedAutoencoder:
            let x = try input.reshaped([fixture.spec.batch, sae.inputFeatures])
            for mode in [Mode.inference, .training] {
                try expectClose(try sae.module.forward(x, mode: mode), expected, "\(name) module.forward(\(mode))")
            }
            try expectClose(try sae.reconstruct(input), expected, "\(name) reconstruct")
            let levels = fixture.spec.sae!.hidden.count
            for level in 1...levels {
                try expectClose(try sae.encode(x, levels: level), try fixture.float("fixture.codes.\(level)"), "\(name) encode(levels: \(level))")
            }
            let codes = try fixture.float("fixture.codes.\(levels)")
            try expectClose(try sae.decode(codes, from: levels), expected, "\(name) decode(from: \(levels))")
        case let cae as ConvolutionalAutoencoder:
            for mode in [Mode.inference, .training] {
                try expectClose(try cae.module.forward(input, mode: mode), expected, "\(name) module.forward(\(mode))")
            }
            try expectClose(try cae.encoder.forward(input, mode: .inference), try fixture.float("fixture.codes"), "\(name) encoder")
        default:
            Issue.record("unexpected model type \(type(of: model))")
        }
    }

    /// Our state has PyTorch's names, order and shapes: those of the fixture's `state_dict`,
    /// for the model built directly and for the one `makeAutoencoder` builds from a configuration.
    @Test(arguments: caseNames)
    func stateEntriesHavePyTorchNamesAndShapes(_ name: String) throws {
        let fixture = try Fixture(name)
        let expected = fixture.spec.state.map { Entry(name: $0.name, shape: $0.shape) }
        let stored = fixture.state.map { Entry(name: $0.key, shape: $0.value.shape) }
        #expect(Set(stored) == Set(expected), "\(name): the safetensors file and cases.json disagree")

        let direct = try fixture.buildModel(seed: 42)
        #expect(entries(of: direct) == expected, "\(name): state of the model built from its options")

        var config = PretrainConfig(model: fixture.spec.model == "sae" ? .sae : .cae)
        config.patches.size = fixture.spec.patchSize
        if var sae = config.sae {
            try fixture.spec.sae!.apply(to: &sae)
            sae.sparsityTarget = 0  // the KL penalty needs sigmoid units; it has no state
            config.sae = sae
        }
        if var cae = config.cae {
            try fixture.spec.cae!.apply(to: &cae)
            config.cae = cae
        }
        #expect(entries(of: try makeAutoencoder(config)) == expected, "\(name): state of makeAutoencoder's model")
    }

    private struct Entry: Hashable, CustomStringConvertible {
        let name: String
        let shape: [Int]
        var description: String { "\(name)\(shape)" }
    }

    private func entries(of model: any AutoencoderModel) -> [Entry] {
        Checkpoint.stateEntries(of: model.module).map { Entry(name: $0.0, shape: $0.1.shape) }
    }

    private func expectClose(_ ours: Tensor, _ torch: Tensor, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        guard ours.shape == torch.shape else {
            Issue.record("\(what): shape \(ours.shape), PyTorch \(torch.shape)", sourceLocation: sourceLocation)
            return
        }
        let difference = try ours.maxAbsDifference(torch)
        #expect(difference < Self.tolerance, "\(what): max |ours − PyTorch| = \(difference)", sourceLocation: sourceLocation)
    }
}

// MARK: - Fixture files

private let fixtureFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures").appendingPathComponent("Autoencoders")

private extension SafeTensors.Value {
    var shape: [Int] {
        switch self {
        case let .float32(t): return t.shape
        case let .int64(shape, _): return shape
        }
    }
}

/// `cases.json`.
private struct Manifest: Decodable {
    let cases: [Case]

    struct Case: Decodable {
        let name: String
        let model: String
        let patchSize: [Int]
        let batch: Int
        let sae: SAE?
        let cae: CAE?
        /// `[name, shape]` pairs in `state_dict` order.
        let state: [StateItem]
    }

    struct SAE: Decodable {
        let hidden: [Int]
        let activation: String
        let outputActivation: String
        let tiedWeights: Bool

        func apply(to options: inout SAEOptions) throws {
            options.hidden = hidden
            options.activation = try #require(ActivationName(rawValue: activation))
            options.outputActivation = try #require(ActivationName(rawValue: outputActivation))
            options.tiedWeights = tiedWeights
        }
    }

    struct CAE: Decodable {
        let channels: [Int]
        let kernel: Int
        let activation: String
        let decoder: String

        func apply(to options: inout CAEOptions) throws {
            options.channels = channels
            options.kernel = kernel
            options.activation = try #require(ActivationName(rawValue: activation))
            options.decoder = try #require(CAEOptions.DecoderKind(rawValue: decoder))
        }
    }

    struct StateItem: Decodable {
        let name: String
        let shape: [Int]

        init(from decoder: Decoder) throws {
            var pair = try decoder.unkeyedContainer()
            name = try pair.decode(String.self)
            shape = try pair.decode([Int].self)
        }
    }

    static func load() throws -> Manifest {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(Manifest.self, from: Data(contentsOf: fixtureFolder.appendingPathComponent("cases.json")))
    }
}

/// One case: its description in `cases.json` and the tensors of `<name>.safetensors`.
private struct Fixture {
    let spec: Manifest.Case
    let url: URL
    /// The `state_dict` entries (everything but `fixture.*`).
    let state: [String: SafeTensors.Value]
    let extras: [String: SafeTensors.Value]

    init(_ name: String) throws {
        spec = try #require(try Manifest.load().cases.first { $0.name == name }, "cases.json has no case \(name)")
        url = fixtureFolder.appendingPathComponent("\(name).safetensors")
        let tensors = try SafeTensors.read(from: url).tensors
        state = tensors.filter { !$0.key.hasPrefix("fixture.") }
        extras = tensors.filter { $0.key.hasPrefix("fixture.") }
    }

    func float(_ key: String) throws -> Tensor {
        guard case let .float32(t) = try #require(extras[key], "\(spec.name) lacks \(key)") else {
            throw TensorError.invalidArgument(operation: key, reason: "not a float tensor")
        }
        return t
    }

    /// Our model with the case's options (weights drawn from `seed`, to be replaced).
    func buildModel(seed: UInt64) throws -> any AutoencoderModel {
        switch spec.model {
        case "sae":
            var options = SAEOptions()
            try #require(spec.sae).apply(to: &options)
            return try StackedAutoencoder(inputFeatures: spec.patchSize.reduce(1, *), options: options, seed: seed)
        case "cae":
            var options = CAEOptions()
            try #require(spec.cae).apply(to: &options)
            return try ConvolutionalAutoencoder(patchSize: spec.patchSize, options: options, seed: seed)
        default:
            throw TensorError.invalidArgument(operation: spec.name, reason: "unknown model \(spec.model)")
        }
    }
}
