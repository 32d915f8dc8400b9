import Foundation
import TensorCore

/// A malformed or unexpected safetensors file.
public struct SafeTensorsError: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
}

/// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length,
/// a JSON header `{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
/// {string: string}}`, then the raw little-endian tensor bytes. Tensors are written row-major
/// in PyTorch's layouts, so `safetensors.torch.load_file` gives tensors that
/// `load_state_dict` accepts.
public enum SafeTensors {
    /// A tensor as stored: Float32 values, or a 64-bit integer (PyTorch `int64` buffers).
    public enum Value: Equatable, Sendable {
        case float32(Tensor)
        case int64(shape: [Int], values: [Int64])
    }

    /// Header bytes larger than this are refused before allocation (the reference
    /// implementation's limit is 100 MB).
    static let maximumHeaderBytes: UInt64 = 100_000_000

    /// Serialises named tensors (written in the order given) and string metadata.
    public static func encode(_ entries: [(String, Value)], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var body = Data()
        for (name, value) in entries {
            guard header[name] == nil, name != "__metadata__" else {
                throw SafeTensorsError(path: name, reason: "duplicate or reserved tensor name")
            }
            let begin = body.count
            let shape: [Int]
            let dtype: String
            switch value {
            case let .float32(tensor):
                shape = tensor.shape
                dtype = "F32"
                tensor.withUnsafeBufferPointer { p in
                    for v in p { withUnsafeBytes(of: v.bitPattern.littleEndian) { body.append(contentsOf: $0) } }
                }
            case let .int64(intShape, values):
                guard (try? Tensor.elementCount(of: intShape, operation: "safetensors")) == values.count else {
                    throw SafeTensorsError(path: name, reason: "\(values.count) int64 values do not fit shape \(intShape)")
                }
                shape = intShape
                dtype = "I64"
                for v in values { withUnsafeBytes(of: v.littleEndian) { body.append(contentsOf: $0) } }
            }
            header[name] = ["dtype": dtype, "shape": shape, "data_offsets": [begin, body.count]] as [String: Any]
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var out = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        out.append(body)
        return out
    }

    /// Writes atomically (temporary file, then rename).
    public static func write(_ entries: [(String, Value)], metadata: [String: String] = [:], to url: URL) throws {
        try AtomicFile.write(try encode(entries, metadata: metadata), to: url)
    }

    /// Parses a safetensors file, checking every offset and shape against the file's size.
    /// `I64` tensors come back as `.int64`; every other supported dtype (F64, F16, BF16, I32,
    /// I16, I8, U8, BOOL) is converted to Float32.
    public static func decode(_ bytes: Data, path: String = "<memory>") throws -> (tensors: [String: Value], metadata: [String: String]) {
        // Index from zero even when `bytes` is a slice of a larger buffer.
        let data = bytes.startIndex == 0 ? bytes : Data(bytes)
        func fail(_ reason: String) -> SafeTensorsError { SafeTensorsError(path: path, reason: reason) }
        guard data.count >= 8 else { throw fail("file of \(data.count) bytes is too short for a safetensors header") }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | (UInt64($1.element) << (8 * UInt64($1.offset))) }
        guard headerLength <= maximumHeaderBytes, headerLength <= UInt64(data.count - 8) else {
            throw fail("header length \(headerLength) exceeds the file (\(data.count) bytes)")
        }
        let bodyStart = 8 + Int(headerLength)
        let object = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<bodyStart))
        guard let header = object as? [String: Any] else { throw fail("header is not a JSON object") }
        var metadata: [String: String] = [:]
        var tensors: [String: Value] = [:]
        let bodyLength = data.count - bodyStart
        for (name, entry) in header {
            if name == "__metadata__" {
                guard let m = entry as? [String: String] else { throw fail("__metadata__ must map strings to strings") }
                metadata = m
                continue
            }
            guard let info = entry as? [String: Any], let dtype = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2 else {
                throw fail("tensor '\(name)' has a malformed header entry")
            }
            let elementSizes = ["F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1]
            guard let size = elementSizes[dtype] else { throw fail("tensor '\(name)' has unsupported dtype \(dtype)") }
            let count: Int
            do { count = try Tensor.elementCount(of: shape, operation: "safetensors '\(name)'") } catch {
                throw fail("tensor '\(name)' has invalid shape \(shape)")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= bodyLength, count.multipliedReportingOverflow(by: size) == (end - begin, false) else {
                throw fail("tensor '\(name)' offsets \(offsets) do not fit shape \(shape) of \(dtype) in a \(bodyLength)-byte body")
            }
            let bytes = data.subdata(in: (bodyStart + begin)..<(bodyStart + end))
            tensors[name] = try bytes.withUnsafeBytes { raw -> Value in
                func load<T: FixedWidthInteger>(_: T.Type, _ i: Int) -> T { T(littleEndian: raw.loadUnaligned(fromByteOffset: i * size, as: T.self)) }
                if dtype == "I64" { return .int64(shape: shape, values: (0..<count).map { load(Int64.self, $0) }) }
                let values: [Float] = (0..<count).map { i in
                    switch dtype {
                    case "F32": return Float(bitPattern: load(UInt32.self, i))
                    case "F64": return Float(Double(bitPattern: load(UInt64.self, i)))
                    case "F16": return Float(Float16(bitPattern: load(UInt16.self, i)))
                    case "BF16": return Float(bitPattern: UInt32(load(UInt16.self, i)) << 16)
                    case "I32": return Float(load(Int32.self, i))
                    case "I16": return Float(load(Int16.self, i))
                    case "I8": return Float(load(Int8.self, i))
                    default: return Float(load(UInt8.self, i))
                    }
                }
                return .float32(try Tensor(shape: shape, scalars: values))
            }
        }
        return (tensors, metadata)
    }

    public static func read(from url: URL) throws -> (tensors: [String: Value], metadata: [String: String]) {
        let data: Data
        do { data = try Data(contentsOf: url, options: .mappedIfSafe) } catch {
            throw SafeTensorsError(path: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        return try decode(data, path: url.path)
    }
}

/// Saving and restoring models and optimisers as safetensors files.
public enum Checkpoint {
    /// The model's parameters and buffers under their dotted PyTorch names.
    public static func stateEntries(of model: any Layer) -> [(String, SafeTensors.Value)] {
        var entries: [(String, SafeTensors.Value)] = []
        model.visitState(prefix: "") { name, entry in
            switch entry {
            case let .parameter(p): entries.append((name, .float32(p.value)))
            case let .buffer(get, _): entries.append((name, .float32(get())))
            case let .integerBuffer(get, _): entries.append((name, .int64(shape: [], values: [Int64(get())])))
            }
        }
        return entries
    }

    /// Writes the model's state (atomically). `metadata` is kept in the file's header.
    public static func save(_ model: any Layer, to url: URL, metadata: [String: String] = [:]) throws {
        try SafeTensors.write(stateEntries(of: model), metadata: metadata, to: url)
    }

    /// Loads state into `model`. Every parameter and buffer must be present with its shape
    /// and the file must hold nothing else (like `load_state_dict(strict=True)`).
    /// - Returns: the file's metadata.
    @discardableResult
    public static func load(_ model: any Layer, from url: URL) throws -> [String: String] {
        let (tensors, metadata) = try SafeTensors.read(from: url)
        try load(model, tensors: tensors, path: url.path)
        return metadata
    }

    /// Loads state into `model` from decoded tensors (see `load(_:from:)`); `path` names
    /// their file in errors.
    public static func load(_ model: any Layer, tensors: [String: SafeTensors.Value], path: String) throws {
        var unused = Set(tensors.keys)
        var problems: [String] = []
        var assignments: [() -> Void] = []
        // Check everything first and assign only when all of it fits, so a failed load leaves
        // the model as it was.
        model.visitState(prefix: "") { name, entry in
            unused.remove(name)
            guard let stored = tensors[name] else { problems.append("missing '\(name)'"); return }
            switch (entry, stored) {
            case let (.parameter(p), .float32(t)) where t.shape == p.value.shape:
                assignments.append { p.value = t }
            case let (.buffer(get, set), .float32(t)) where t.shape == get().shape:
                assignments.append { set(t) }
            case let (.integerBuffer(_, set), .int64(shape, values)) where values.count == 1 && shape.count <= 1:
                assignments.append { set(Int(values[0])) }
            default:
                problems.append("'\(name)' has the wrong shape or dtype")
            }
        }
        problems += unused.sorted().map { "unexpected '\($0)'" }
        guard problems.isEmpty else {
            throw NeuralNetError.stateMismatch("\(path): checkpoint does not fit the model: \(problems.joined(separator: ", "))")
        }
        for assign in assignments { assign() }
    }

    /// Writes an optimiser's state; its step count goes in the metadata as `step`.
    public static func saveOptimizer(_ optimizer: any Optimizer, to url: URL) throws {
        try SafeTensors.write(optimizer.stateTensors().map { ($0.0, .float32($0.1)) },
                              metadata: ["step": String(optimizer.stepCount), "optimizer": String(describing: type(of: optimizer))],
                              to: url)
    }

    /// Restores an optimiser's state saved by `saveOptimizer`; the file must come from the
    /// same kind of optimiser, and the optimiser is unchanged when this throws.
    public static func loadOptimizer(_ optimizer: any Optimizer, from url: URL) throws {
        let (tensors, metadata) = try SafeTensors.read(from: url)
        guard let step = metadata["step"].flatMap(Int.init), step >= 0 else {
            throw SafeTensorsError(path: url.path, reason: "optimizer checkpoint has no valid 'step' metadata")
        }
        let kind = String(describing: type(of: optimizer))
        guard metadata["optimizer"] == kind else {
            throw SafeTensorsError(path: url.path, reason: "checkpoint of optimizer '\(metadata["optimizer"] ?? "?")' cannot restore \(kind)")
        }
        var floats: [String: Tensor] = [:]
        for (name, value) in tensors {
            guard case let .float32(t) = value else {
                throw SafeTensorsError(path: url.path, reason: "optimizer state '\(name)' is not a float tensor")
            }
            floats[name] = t
        }
        try optimizer.loadState(floats, stepCount: step)
    }
}
