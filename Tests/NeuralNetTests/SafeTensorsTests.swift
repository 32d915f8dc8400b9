import Foundation
import NeuralNet
import Testing
import TensorCore
import TestSupport

/// A safetensors file built by hand: 8-byte little-endian header length, header, body.
private func rawFile(header: String, body: [UInt8] = [], declaredLength: UInt64? = nil) -> Data {
    let json = Data(header.utf8)
    var data = Data()
    withUnsafeBytes(of: (declaredLength ?? UInt64(json.count)).littleEndian) { data.append(contentsOf: $0) }
    data.append(json)
    data.append(contentsOf: body)
    return data
}

private func littleEndianUInt64(_ data: Data, at offset: Int) -> UInt64 {
    (0..<8).reduce(UInt64(0)) { $0 | UInt64(data[data.startIndex + offset + $1]) << (8 * UInt64($1)) }
}

// MARK: - Format

@Suite struct SafeTensorsFormatTests {
    static let entries: [(String, SafeTensors.Value)] = [
        ("encoder.0.weight", .float32(random([2, 3], seed: 501))),
        ("scalar", .float32(Tensor(scalar: -2.5))),
        ("empty", .float32(Tensor(zeros: [0, 3]))),
        ("encoder.1.num_batches_tracked", .int64(shape: [], values: [7])),
        ("ids", .int64(shape: [3], values: [Int64.min, -1, Int64.max])),
    ]

    @Test func roundTripsFloatAndIntegerTensorsWithMetadata() throws {
        let metadata = ["format": "pt", "note": "héllo, \"world\""]
        let data = try SafeTensors.encode(Self.entries, metadata: metadata)
        let (tensors, decodedMetadata) = try SafeTensors.decode(data)
        #expect(decodedMetadata == metadata)
        #expect(tensors.count == Self.entries.count)
        for (name, value) in Self.entries { #expect(tensors[name] == value, "\(name)") }
    }

    @Test func roundTripsWithoutMetadata() throws {
        let (tensors, metadata) = try SafeTensors.decode(try SafeTensors.encode(Array(Self.entries.prefix(1))))
        #expect(metadata.isEmpty)
        #expect(tensors["encoder.0.weight"] == Self.entries[0].1)
    }

    @Test(arguments: 1...9)
    func layoutFollowsTheSpecification(nameLength: Int) throws {
        // Name lengths 1...9 move the header size through every residue mod 8.
        let name = String(repeating: "w", count: nameLength)
        let weight = random([2, 2], seed: 511)
        let data = try SafeTensors.encode([(name, .float32(weight)), ("n", .int64(shape: [1], values: [-1]))])
        let headerLength = Int(littleEndianUInt64(data, at: 0))
        #expect(headerLength % 8 == 0, "header of \(headerLength) bytes: data does not start 8-byte aligned")
        let bodyStart = 8 + headerLength
        let header = try #require(try JSONSerialization.jsonObject(with: data.subdata(in: 8..<bodyStart)) as? [String: Any])
        let entry = try #require(header[name] as? [String: Any])
        #expect(entry["dtype"] as? String == "F32")
        #expect(entry["shape"] as? [Int] == [2, 2])
        let offsets = try #require(entry["data_offsets"] as? [Int])
        #expect(offsets.count == 2 && offsets[1] - offsets[0] == 16)
        // The body holds the values as little-endian IEEE floats, row-major.
        let values = (0..<4).map { i -> Float in
            let base = bodyStart + offsets[0] + 4 * i
            let bits = (0..<4).reduce(UInt32(0)) { $0 | UInt32(data[base + $1]) << (8 * UInt32($1)) }
            return Float(bitPattern: bits)
        }
        #expect(values == weight.scalars)
        let intEntry = try #require(header["n"] as? [String: Any])
        #expect(intEntry["dtype"] as? String == "I64")
        let intOffsets = try #require(intEntry["data_offsets"] as? [Int])
        #expect(data.subdata(in: (bodyStart + intOffsets[0])..<(bodyStart + intOffsets[1])) == Data(repeating: 0xFF, count: 8))
        #expect(data.count == bodyStart + 16 + 8)
    }

    @Test func readsOtherDtypesAsFloat32() throws {
        let header = """
        {"d":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},\
        "h":{"dtype":"F16","shape":[1],"data_offsets":[8,10]},\
        "b":{"dtype":"BF16","shape":[1],"data_offsets":[10,12]},\
        "i":{"dtype":"I32","shape":[1],"data_offsets":[12,16]},\
        "u":{"dtype":"U8","shape":[2],"data_offsets":[16,18]}}
        """
        let body: [UInt8] = [0, 0, 0, 0, 0, 0, 0x04, 0x40,  // 2.5 as F64
                             0x00, 0x3E,                      // 1.5 as F16
                             0x00, 0xC0,                      // -2.0 as BF16
                             0xF9, 0xFF, 0xFF, 0xFF,          // -7 as I32
                             200, 3]
        let (tensors, _) = try SafeTensors.decode(rawFile(header: header, body: body))
        #expect(tensors["d"] == .float32(try Tensor(shape: [1], scalars: [2.5])))
        #expect(tensors["h"] == .float32(try Tensor(shape: [1], scalars: [1.5])))
        #expect(tensors["b"] == .float32(try Tensor(shape: [1], scalars: [-2])))
        #expect(tensors["i"] == .float32(try Tensor(shape: [1], scalars: [-7])))
        #expect(tensors["u"] == .float32(try Tensor(shape: [2], scalars: [200, 3])))
    }

    @Test func duplicateOrReservedNamesAreRefused() {
        let t = SafeTensors.Value.float32(Tensor(zeros: [1]))
        #expect(throws: SafeTensorsError.self) { try SafeTensors.encode([("a", t), ("a", t)]) }
        #expect(throws: SafeTensorsError.self) { try SafeTensors.encode([("__metadata__", t)]) }
    }

    @Test
    func encodeRejectsIntegerValuesThatDoNotFitTheirShape() {
        #expect(throws: SafeTensorsError.self) { try SafeTensors.encode([("n", .int64(shape: [2], values: [1, 2, 3]))]) }
    }

    @Test
    func decodeAcceptsADataSlice() throws {
        let encoded = try SafeTensors.encode(Self.entries, metadata: ["k": "v"])
        let slice = (Data([0xAA, 0xBB, 0xCC]) + encoded).dropFirst(3)
        #expect(slice.startIndex == 3)
        let (tensors, metadata) = try SafeTensors.decode(slice)
        #expect(metadata == ["k": "v"])
        for (name, value) in Self.entries { #expect(tensors[name] == value, "\(name)") }
    }
}

// MARK: - Hostile input

struct HostileFile: Sendable, CustomTestStringConvertible {
    var name: String
    var data: Data
    var testDescription: String { name }
}

private let goodEntry = #""t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#

let hostileFiles: [HostileFile] = [
    HostileFile(name: "empty", data: Data()),
    HostileFile(name: "shorter than the length prefix", data: Data([8, 0, 0, 0, 0, 0, 0])),
    HostileFile(name: "header length larger than the file",
                data: rawFile(header: "{}", declaredLength: 100)),
    HostileFile(name: "header length 2^64 - 1", data: rawFile(header: "{}", declaredLength: .max)),
    HostileFile(name: "header length just past the end",
                data: rawFile(header: "{\(goodEntry)}", body: [UInt8](repeating: 0, count: 8),
                              declaredLength: UInt64("{\(goodEntry)}".utf8.count + 9))),
    HostileFile(name: "non-JSON header", data: rawFile(header: "not json at all")),
    HostileFile(name: "truncated JSON header", data: rawFile(header: "{\"t\":{\"dtype\":")),
    HostileFile(name: "JSON array header", data: rawFile(header: "[1, 2, 3]")),
    HostileFile(name: "offsets past the end of the body",
                data: rawFile(header: "{\(goodEntry)}", body: [0, 0, 0, 0])),
    HostileFile(name: "shape disagrees with offsets",
                data: rawFile(header: #"{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, body: [UInt8](repeating: 0, count: 12))),
    HostileFile(name: "begin after end",
                data: rawFile(header: #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, body: [UInt8](repeating: 0, count: 8))),
    HostileFile(name: "negative offset",
                data: rawFile(header: #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}"#, body: [UInt8](repeating: 0, count: 8))),
    HostileFile(name: "negative extent",
                data: rawFile(header: #"{"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, body: [UInt8](repeating: 0, count: 8))),
    HostileFile(name: "overflowing shape",
                data: rawFile(header: #"{"t":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}"#,
                              body: [UInt8](repeating: 0, count: 8))),
    HostileFile(name: "unknown dtype",
                data: rawFile(header: #"{"t":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}"#, body: [UInt8](repeating: 0, count: 8))),
    HostileFile(name: "missing dtype",
                data: rawFile(header: #"{"t":{"shape":[2],"data_offsets":[0,8]}}"#, body: [UInt8](repeating: 0, count: 8))),
    HostileFile(name: "one data offset",
                data: rawFile(header: #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[8]}}"#, body: [UInt8](repeating: 0, count: 8))),
    HostileFile(name: "entry is not an object", data: rawFile(header: #"{"t":[1,2]}"#)),
    HostileFile(name: "non-string metadata", data: rawFile(header: #"{"__metadata__":{"step":3}}"#)),
]

@Suite struct SafeTensorsHostileInputTests {
    @Test(arguments: hostileFiles)
    func hostileInputThrowsSafeTensorsError(_ file: HostileFile) {
        #expect(throws: SafeTensorsError.self) { try SafeTensors.decode(file.data, path: "hostile.safetensors") }
    }

    @Test func errorsNameTheFile() throws {
        let error = #expect(throws: SafeTensorsError.self) { try SafeTensors.decode(Data(), path: "x/model.safetensors") }
        #expect(error?.path == "x/model.safetensors")
        #expect(error?.description.hasPrefix("x/model.safetensors: ") == true)
    }

    @Test func wellFormedHandWrittenFileIsAccepted() throws {
        // The control for the hostile cases: the same header with a fitting body decodes.
        let (tensors, _) = try SafeTensors.decode(rawFile(header: "{\(goodEntry)}", body: [0, 0, 0x80, 0x3F, 0, 0, 0, 0xC0]))
        #expect(tensors["t"] == .float32(try Tensor(shape: [2], scalars: [1, -2])))
    }

    @Test func missingFileThrowsSafeTensorsError() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(throws: SafeTensorsError.self) { try SafeTensors.read(from: directory.appendingPathComponent("absent.safetensors")) }
    }
}

// MARK: - Checkpoints

@Suite struct CheckpointTests {
    static let expectedNames = ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                                "1.num_batches_tracked", "2.weight", "2.bias"]

    static func makeModel(seed: UInt64, middleChannels: Int = 2) throws -> Sequential {
        var generator = Xoshiro256StarStar(seed: seed)
        let conv = Conv3d(inChannels: 1, outChannels: middleChannels, kernel: Triple(3), padding: Triple(1), using: &generator)
        conv.bias.value = random([middleChannels], seed: seed &+ 1)
        let norm = BatchNorm(features: middleChannels, spatial: true)
        norm.weight.value = random([middleChannels], seed: seed &+ 2, low: 0.5, high: 1.5)
        norm.bias.value = random([middleChannels], seed: seed &+ 3)
        let up = try ConvTranspose3d(inChannels: middleChannels, outChannels: 1, kernel: Triple(2), stride: Triple(2), using: &generator)
        up.bias.value = random([1], seed: seed &+ 4)
        return Sequential([conv, norm, up])
    }

    static let input = random([2, 1, 3, 3, 2], seed: 601)

    /// A model whose BatchNorm has seen two training batches.
    static func makeTrainedModel() throws -> Sequential {
        let model = try makeModel(seed: 1)
        _ = try model.forward(random([2, 1, 3, 3, 2], seed: 602, low: 0, high: 3), mode: .training)
        _ = try model.forward(random([2, 1, 3, 3, 2], seed: 603, low: -1, high: 2), mode: .training)
        return model
    }

    @Test func saveThenLoadRestoresOutputsAndBuffers() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("model.safetensors")
        let source = try Self.makeTrainedModel()
        try Checkpoint.save(source, to: url, metadata: ["epoch": "3"])
        let expected = try source.forward(Self.input, mode: .inference)
        #expect(expected.shape == [2, 1, 6, 6, 4])

        let restored = try Self.makeModel(seed: 999)
        #expect(try restored.forward(Self.input, mode: .inference) != expected)
        let metadata = try Checkpoint.load(restored, from: url)
        #expect(metadata == ["epoch": "3"])
        #expect(try restored.forward(Self.input, mode: .inference) == expected)

        let (a, b) = (try #require(source.layers[1] as? BatchNorm), try #require(restored.layers[1] as? BatchNorm))
        #expect(b.batchesTracked == 2)
        #expect(b.runningMean == a.runningMean)
        #expect(b.runningVariance == a.runningVariance)
        #expect(b.runningMean != Tensor(zeros: [2]))
        for (p, q) in zip(source.parameters(), restored.parameters()) { #expect(p.value == q.value) }
    }

    @Test func fileHoldsPyTorchStateDictNames() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("model.safetensors")
        try Checkpoint.save(try Self.makeTrainedModel(), to: url)
        let (tensors, _) = try SafeTensors.read(from: url)
        #expect(Set(tensors.keys) == Set(Self.expectedNames))
        #expect(tensors["1.num_batches_tracked"] == .int64(shape: [], values: [2]))
        if case let .float32(weight)? = tensors["2.weight"] { #expect(weight.shape == [2, 1, 2, 2, 2]) } else {
            Issue.record("2.weight is not a float tensor")
        }
    }

    /// Loads `url` into `model`, expecting `stateMismatch` whose message contains every fragment.
    func expectMismatch(_ model: any Layer, _ url: URL, mentioning fragments: [String],
                        sourceLocation: SourceLocation = #_sourceLocation) {
        let error = #expect(throws: NeuralNetError.self, sourceLocation: sourceLocation) { try Checkpoint.load(model, from: url) }
        guard let error else { return }
        guard case let .stateMismatch(message) = error else {
            Issue.record("expected stateMismatch, got \(error)", sourceLocation: sourceLocation)
            return
        }
        for fragment in fragments {
            #expect(message.contains(fragment), "\(message) does not mention \(fragment)", sourceLocation: sourceLocation)
        }
    }

    @Test func loadingIntoADifferentArchitectureThrowsStateMismatch() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("model.safetensors")
        try Checkpoint.save(try Self.makeTrainedModel(), to: url)

        // Wider middle: every tensor touching the middle channels has the wrong shape.
        expectMismatch(try Self.makeModel(seed: 5, middleChannels: 3), url,
                       mentioning: ["'0.weight' has the wrong shape", "'1.running_mean' has the wrong shape", "'2.weight'"])
        // An extra layer: its parameters are missing.
        var generator = Xoshiro256StarStar(seed: 6)
        let longer = Sequential(try Self.makeModel(seed: 6).layers + [
            Conv3d(inChannels: 1, outChannels: 1, kernel: Triple(1), using: &generator),
        ])
        expectMismatch(longer, url, mentioning: ["missing '3.weight'", "missing '3.bias'"])
        // A truncated model: the file's extra tensors are unexpected.
        let shorter = Sequential(Array(try Self.makeModel(seed: 7).layers.prefix(2)))
        expectMismatch(shorter, url, mentioning: ["unexpected '2.bias'", "unexpected '2.weight'"])
        // The error names the file.
        expectMismatch(shorter, url, mentioning: [url.path])
    }

    @Test func wrongDtypeForAnIntegerBufferThrowsStateMismatch() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("model.safetensors")
        let model = try Self.makeTrainedModel()
        let entries = Checkpoint.stateEntries(of: model).map { name, value -> (String, SafeTensors.Value) in
            name == "1.num_batches_tracked" ? (name, .float32(Tensor(scalar: 2))) : (name, value)
        }
        try SafeTensors.write(entries, to: url)
        expectMismatch(try Self.makeModel(seed: 8), url, mentioning: ["'1.num_batches_tracked' has the wrong shape or dtype"])
    }

    // MARK: Optimiser state

    private static func makeDense(seed: UInt64) -> Sequential {
        var generator = Xoshiro256StarStar(seed: seed)
        return Sequential([Dense(inFeatures: 3, outFeatures: 2, using: &generator), Tanh(),
                           Dense(inFeatures: 2, outFeatures: 2, using: &generator)])
    }

    private static func step(_ model: Sequential, _ optimizer: any Optimizer, seed: UInt64) throws {
        let x = random([2, 3], seed: seed)
        let target = random([2, 2], seed: seed + 1000)
        let loss = try Loss.meanSquaredError(try model.forward(x, mode: .training), target)
        model.zeroGradients()
        _ = try model.backward(loss.gradient)
        optimizer.step()
    }

    @Test func adamStateRoundTripContinuesIdentically() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (modelURL, optimizerURL) = (directory.appendingPathComponent("model.safetensors"),
                                        directory.appendingPathComponent("optimizer.safetensors"))
        let original = Self.makeDense(seed: 1)
        let adam = try Adam(parameters: original.namedParameters(), learningRate: 0.05, weightDecay: 0.01, decoupledWeightDecay: true)
        for seed in 0..<3 { try Self.step(original, adam, seed: UInt64(seed)) }
        try Checkpoint.save(original, to: modelURL)
        try Checkpoint.saveOptimizer(adam, to: optimizerURL)

        let resumed = Self.makeDense(seed: 2)
        try Checkpoint.load(resumed, from: modelURL)
        let resumedAdam = try Adam(parameters: resumed.namedParameters(), learningRate: 0.05, weightDecay: 0.01,
                                   decoupledWeightDecay: true)
        try Checkpoint.loadOptimizer(resumedAdam, from: optimizerURL)
        #expect(resumedAdam.stepCount == 3)
        for ((nameA, a), (nameB, b)) in zip(adam.stateTensors(), resumedAdam.stateTensors()) {
            #expect(nameA == nameB)
            #expect(a == b, "\(nameA)")
        }

        // A control that restores the weights but not the moments takes a different step.
        let control = Self.makeDense(seed: 3)
        try Checkpoint.load(control, from: modelURL)
        let freshAdam = try Adam(parameters: control.namedParameters(), learningRate: 0.05, weightDecay: 0.01, decoupledWeightDecay: true)

        try Self.step(original, adam, seed: 77)
        try Self.step(resumed, resumedAdam, seed: 77)
        try Self.step(control, freshAdam, seed: 77)
        #expect(resumedAdam.stepCount == 4)
        #expect(original.parameters().map(\.value) == resumed.parameters().map(\.value))
        #expect(original.parameters().map(\.value) != control.parameters().map(\.value))

        let (_, metadata) = try SafeTensors.read(from: optimizerURL)
        #expect(metadata["step"] == "3")
        #expect(metadata["optimizer"] == "Adam")
    }

    @Test func sgdMomentumRoundTripContinuesIdentically() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("sgd.safetensors")
        let model = Self.makeDense(seed: 4)
        let sgd = try SGD(parameters: model.namedParameters(), learningRate: 0.1, momentum: 0.9, nesterov: true)
        for seed in 0..<2 { try Self.step(model, sgd, seed: UInt64(seed)) }
        try Checkpoint.saveOptimizer(sgd, to: url)
        let twin = Self.makeDense(seed: 5)
        for (p, q) in zip(model.parameters(), twin.parameters()) { q.value = p.value }
        let twinSGD = try SGD(parameters: twin.namedParameters(), learningRate: 0.1, momentum: 0.9, nesterov: true)
        try Checkpoint.loadOptimizer(twinSGD, from: url)
        #expect(twinSGD.stepCount == 2)
        try Self.step(model, sgd, seed: 9)
        try Self.step(twin, twinSGD, seed: 9)
        #expect(model.parameters().map(\.value) == twin.parameters().map(\.value))
    }

    @Test func optimizerFileWithoutStepMetadataIsRefused() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("model.safetensors")
        let model = Self.makeDense(seed: 6)
        try Checkpoint.save(model, to: url)
        let adam = try Adam(parameters: model.namedParameters())
        #expect(throws: SafeTensorsError.self) { try Checkpoint.loadOptimizer(adam, from: url) }
        try SafeTensors.write([], metadata: ["step": "-1"], to: url)
        #expect(throws: SafeTensorsError.self) { try Checkpoint.loadOptimizer(adam, from: url) }
        // A valid step but no moments for the parameters.
        try SafeTensors.write([], metadata: ["step": "2", "optimizer": "Adam"], to: url)
        #expect(throws: NeuralNetError.self) { try Checkpoint.loadOptimizer(adam, from: url) }
    }

    @Test func optimizerFileOfAnotherKindOrWithExtraStateIsRefusedAndChangesNothing() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("optimizer.safetensors")
        let model = Self.makeDense(seed: 7)
        let sgd = try SGD(parameters: model.namedParameters(), learningRate: 0.1, momentum: 0.9)
        for p in model.parameters() { p.gradient.fill(1) }
        sgd.step()
        try Checkpoint.saveOptimizer(sgd, to: url)
        let adam = try Adam(parameters: model.namedParameters())
        #expect(throws: SafeTensorsError.self) { try Checkpoint.loadOptimizer(adam, from: url) }
        #expect(adam.stepCount == 0)
        // An SGD file with a tensor that names no parameter.
        let stray = Tensor(zeros: [1])
        try SafeTensors.write(sgd.stateTensors().map { ($0.0, .float32($0.1)) } + [("ghost.momentum_buffer", .float32(stray))],
                              metadata: ["step": "1", "optimizer": "SGD"], to: url)
        let fresh = try SGD(parameters: model.namedParameters(), learningRate: 0.1, momentum: 0.9)
        #expect(throws: NeuralNetError.self) { try Checkpoint.loadOptimizer(fresh, from: url) }
        #expect(fresh.stepCount == 0 && fresh.stateTensors().isEmpty)
    }
}
