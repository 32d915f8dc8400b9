import Foundation
import Yams

/// Reading and writing pretraining configurations as YAML or JSON.
///
/// A file may set any subset of the keys of `config.json` (snake_case, e.g.
/// `training: {learning_rate: 0.001}`); the rest come from the preset or the model's
/// defaults. Unknown keys are errors (a misspelt option must not be silently ignored).
/// A `provenance` section, as in a run's own `config.json`, is ignored, so a finished run's
/// configuration can be given back to `--config` to repeat it.
///
/// Files are read as YAML (JSON is YAML) into a node tree and merged over the defaults'
/// tree node by node, so every scalar keeps its text until it is decoded into its field:
/// `1e-3` is a number, `true` a flag, and a 64-bit seed keeps all its digits.
public enum ConfigFile {
    /// The resolved configuration: defaults of `model` or `preset` (arguments win over the
    /// file's `model:` and `preset:`), then the file's values.
    public static func resolve(model: ModelKind?, preset: String?, file: URL?) throws(PretrainError) -> PretrainConfig {
        try resolve(model: model, preset: preset, mapping: try file.map(read) ?? Node.Mapping([]), name: file?.path ?? "<options>")
    }

    /// As `resolve(model:preset:file:)`, from a mapping already parsed (e.g. a section of an
    /// experiment file); `name` says where it came from in messages.
    public static func resolve(model: ModelKind?, preset: String?, mapping fileMapping: Node.Mapping, name: String) throws(PretrainError) -> PretrainConfig {
        let presetName = preset ?? fileMapping["preset"]?.string
        var base: PretrainConfig
        if let presetName {
            base = try PretrainConfig.preset(presetName)
            if let model, model != base.model {
                throw .invalidConfig("preset \(presetName) is a \(base.model.rawValue) configuration, not \(model.rawValue)")
            }
            if model == nil, let fileModel = fileMapping["model"]?.string, fileModel != base.model.rawValue {
                throw .invalidConfig("\(name): preset \(presetName) is a \(base.model.rawValue) configuration, not \(fileModel)")
            }
        } else {
            guard let kindName = model?.rawValue ?? fileMapping["model"]?.string else {
                throw .invalidConfig("choose a model (--model sae|cae, or `model:` in the config file)")
            }
            guard let kind = ModelKind(rawValue: kindName) else { throw .invalidConfig("\(name): model '\(kindName)' is not sae or cae") }
            base = PretrainConfig(model: kind)
        }
        var merged = try merge(fileMapping, into: try node(of: base), path: "", file: name)
        // The arguments' model and preset win over the file's.
        merged = replacing(merged, key: "model", with: Node(base.model.rawValue))
        if let presetName { merged = replacing(merged, key: "preset", with: Node(presetName)) }
        do {
            return try YAMLDecoder().decode(PretrainConfig.self, from: Node.mapping(merged))
        } catch let error as DecodingError {
            throw .invalidConfig("\(name): \(describe(error))")
        } catch {
            throw .invalidConfig("\(name): \(error)")
        }
    }

    /// `mapping`'s values laid over `defaults` (refusing keys `defaults` does not encode,
    /// except the `optionalKeys` its nil fields leave out), decoded back into `T`.
    public static func overlay<T: Codable>(_ mapping: Node.Mapping, on defaults: T, optionalKeys: Set<String> = [],
                                           name: String) throws(PretrainError) -> T {
        var base: Node.Mapping
        do {
            let encoder = YAMLEncoder()
            guard let node = try Yams.compose(yaml: try encoder.encode(defaults))?.mapping else { throw PretrainError.invalidConfig("empty") }
            base = node
        } catch {
            throw .invalidConfig("cannot represent the defaults of \(name): \(error)")
        }
        // nil fields are absent from the defaults' encoding: placeholders let the file set
        // them, and those it leaves alone are dropped again so they decode as nil.
        let placeholder = Node("adwb-unset-optional")
        var pairs = Array(base).map { ($0.key, $0.value) }
        for key in optionalKeys.sorted() where !pairs.contains(where: { $0.0.string == key }) { pairs.append((Node(key), placeholder)) }
        base = Node.Mapping(pairs)
        let merged = Node.Mapping(Array(try merge(mapping, into: base, path: "", file: name, runConfig: false)).filter { $0.value != placeholder })
        do {
            return try YAMLDecoder().decode(T.self, from: Node.mapping(merged))
        } catch let error as DecodingError {
            throw .invalidConfig("\(name): \(describe(error))")
        } catch {
            throw .invalidConfig("\(name): \(error)")
        }
    }

    /// Parses a YAML or JSON file into its top-level mapping.
    public static func read(_ url: URL) throws(PretrainError) -> Node.Mapping {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw .invalidConfig("cannot read \(url.path): \((error as NSError).localizedDescription)")
        }
        let parsed: Node?
        do { parsed = try Yams.compose(yaml: text) } catch {
            throw .invalidConfig("\(url.path) is not valid YAML or JSON: \(error)")
        }
        guard let parsed else { return Node.Mapping([]) }
        guard let mapping = parsed.mapping else { throw .invalidConfig("\(url.path): expected a mapping of options at the top level") }
        return mapping
    }

    /// `file`'s values laid over `base`, refusing keys `base` does not have (with `runConfig`,
    /// a run's `provenance` section is skipped and a top-level `preset` accepted).
    static func merge(_ file: Node.Mapping, into base: Node.Mapping, path: String, file name: String,
                      runConfig: Bool = true) throws(PretrainError) -> Node.Mapping {
        var pairs = Array(base).map { ($0.key, $0.value) }
        for (keyNode, value) in file {
            guard let key = keyNode.string else { throw .invalidConfig("\(name): a key under '\(path)' is not text") }
            let full = path.isEmpty ? key : "\(path).\(key)"
            if runConfig && path.isEmpty && key == "provenance" { continue }
            guard let index = pairs.firstIndex(where: { $0.0.string == key }) else {
                if runConfig && path.isEmpty && key == "preset" { pairs.append((keyNode, value)); continue }
                let known = pairs.compactMap { $0.0.string }.sorted().joined(separator: ", ")
                throw .invalidConfig("\(name): unknown option '\(full)' (known here: \(known))")
            }
            if let nested = value.mapping {
                guard let current = pairs[index].1.mapping else { throw .invalidConfig("\(name): '\(full)' is not a section") }
                pairs[index].1 = .mapping(try merge(nested, into: current, path: full, file: name, runConfig: runConfig))
            } else {
                pairs[index].1 = value
            }
        }
        return Node.Mapping(pairs)
    }

    private static func replacing(_ mapping: Node.Mapping, key: String, with value: Node) -> Node.Mapping {
        var pairs = Array(mapping).map { ($0.key, $0.value) }
        if let index = pairs.firstIndex(where: { $0.0.string == key }) { pairs[index].1 = value } else { pairs.append((Node(key), value)) }
        return Node.Mapping(pairs)
    }

    private static func node(of config: PretrainConfig) throws(PretrainError) -> Node.Mapping {
        do {
            guard let mapping = try Yams.compose(yaml: try yaml(config))?.mapping else { throw PretrainError.invalidConfig("empty") }
            return mapping
        } catch {
            throw .invalidConfig("cannot represent the configuration: \(error)")
        }
    }

    /// `config.json`'s encoder: sorted keys, indented.
    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return encoder
    }

    /// The configuration as YAML with sorted keys (for `--print-config`; `--config` reads it back).
    public static func yaml(_ config: PretrainConfig) throws -> String {
        let encoder = YAMLEncoder()
        encoder.options.sortKeys = true
        guard let node = try Yams.compose(yaml: try encoder.encode(config)) else { return "" }
        return try Yams.serialize(node: readableNumbers(node), sortKeys: true)
    }

    /// Yams writes every number in scientific notation (`5e-1`); Swift's shortest exact
    /// spelling (`0.5`, `1e-05`) reads better and parses back to the same value.
    private static func readableNumbers(_ node: Node) -> Node {
        switch node {
        case let .scalar(scalar):
            guard scalar.style == .plain || scalar.style == .any, scalar.string.contains("e"), let value = Double(scalar.string) else { return node }
            return Node(value.description)
        case let .mapping(mapping):
            return .mapping(Node.Mapping(mapping.map { ($0.key, readableNumbers($0.value)) }))
        case let .sequence(sequence):
            return .sequence(Node.Sequence(sequence.map(readableNumbers)))
        default:
            return node
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case let .typeMismatch(type, context): return "'\(path(context.codingPath))' should be \(describe(type)) (\(context.debugDescription))"
        case let .valueNotFound(type, context): return "'\(path(context.codingPath))' needs a value (\(describe(type)))"
        case let .keyNotFound(key, context): return "'\(path(context.codingPath + [key]))' is missing"
        case let .dataCorrupted(context): return "'\(path(context.codingPath))': \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is UInt64.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is String.Type: return "text"
        default: return "\(type)"
        }
    }
}
