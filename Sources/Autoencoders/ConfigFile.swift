import Foundation
import Yams

/// Reading and writing pretraining configurations as YAML or JSON.
///
/// A file may set any subset of the keys of `config.json` (snake_case, e.g.
/// `training: {learning_rate: 0.001}`); the rest come from the preset or the model's
/// defaults. Unknown keys are errors (a misspelt option must not be silently ignored).
/// A `provenance` section, as in a run's own `config.json`, is ignored, so a finished run's
/// configuration can be given back to `--config` to repeat it.
public enum ConfigFile {
    /// The resolved configuration: defaults of `model` or `preset` (arguments win over the
    /// file's `model:` and `preset:`), then the file's values.
    public static func resolve(model: ModelKind?, preset: String?, file: URL?) throws(PretrainError) -> PretrainConfig {
        var tree: [String: Any] = [:]
        let path = file?.path ?? "<options>"
        if let file { tree = try read(file) }
        tree["provenance"] = nil
        let presetName = preset ?? tree["preset"] as? String
        var base: PretrainConfig
        if let presetName {
            base = try PretrainConfig.preset(presetName)
            if let model, model != base.model {
                throw .invalidConfig("preset \(presetName) is a \(base.model.rawValue) configuration, not \(model.rawValue)")
            }
        } else {
            let name = model?.rawValue ?? tree["model"] as? String
            guard let name else { throw .invalidConfig("choose a model (--model sae|cae, or `model:` in the config file)") }
            guard let kind = ModelKind(rawValue: name) else { throw .invalidConfig("\(path): model '\(name)' is not sae or cae") }
            base = PretrainConfig(model: kind)
        }
        if let model { tree["model"] = model.rawValue }
        tree["preset"] = presetName
        let merged = try merge(file: tree, into: encodeTree(base), path: "", file: path)
        let config: PretrainConfig
        do {
            let data = try JSONSerialization.data(withJSONObject: merged)
            config = try decoder.decode(PretrainConfig.self, from: data)
        } catch let error as DecodingError {
            throw .invalidConfig("\(path): \(describe(error))")
        } catch {
            throw .invalidConfig("\(path): \(error)")
        }
        return config
    }

    /// Parses a YAML or JSON file (JSON is YAML) into a dictionary.
    static func read(_ url: URL) throws(PretrainError) -> [String: Any] {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw .invalidConfig("cannot read \(url.path): \((error as NSError).localizedDescription)")
        }
        let parsed: Any?
        do { parsed = try Yams.load(yaml: text) } catch {
            throw .invalidConfig("\(url.path) is not valid YAML or JSON: \(error)")
        }
        guard let parsed else { return [:] }
        guard let tree = parsed as? [String: Any] else { throw .invalidConfig("\(url.path): expected a mapping of options at the top level") }
        return tree
    }

    /// `file`'s values laid over `base`, refusing keys `base` does not have.
    static func merge(file: [String: Any], into base: [String: Any], path: String, file name: String) throws(PretrainError) -> [String: Any] {
        var result = base
        for key in file.keys.sorted() {
            let value = file[key]!
            let full = path.isEmpty ? key : "\(path).\(key)"
            guard let current = base[key] else {
                if key == "preset" && path.isEmpty { result[key] = value; continue }
                let known = base.keys.sorted().joined(separator: ", ")
                throw .invalidConfig("\(name): unknown option '\(full)' (known here: \(known))")
            }
            if let nested = value as? [String: Any] {
                guard let currentNested = current as? [String: Any] else { throw .invalidConfig("\(name): '\(full)' is not a section") }
                result[key] = try merge(file: nested, into: currentNested, path: full, file: name)
            } else if isNumber(current), let text = value as? String, let number = Double(text) {
                // YAML 1.1 reads `1e-3` (no dot) as text; accept it where a number belongs.
                result[key] = number
            } else {
                result[key] = value
            }
        }
        return result
    }

    private static func isNumber(_ value: Any) -> Bool {
        !(value is Bool) && (value is Int || value is Double || value is UInt64 || value is NSNumber)
    }

    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return encoder
    }

    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }

    static func encodeTree(_ config: PretrainConfig) throws(PretrainError) -> [String: Any] {
        do {
            return try JSONSerialization.jsonObject(with: try encoder.encode(config)) as? [String: Any] ?? [:]
        } catch {
            throw .invalidConfig("cannot encode the configuration: \(error)")
        }
    }

    /// The configuration as YAML (for `--print-config`).
    public static func yaml(_ config: PretrainConfig) throws -> String {
        try YAMLSerialization(tree: encodeTree(config))
    }

    private static func YAMLSerialization(tree: [String: Any]) throws -> String {
        try Yams.dump(object: tree, sortKeys: true)
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? snake($0.stringValue) }.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case let .typeMismatch(type, context): return "'\(path(context.codingPath))' should be \(describe(type)): \(context.debugDescription)"
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

    private static func snake(_ key: String) -> String {
        var result = ""
        for character in key {
            if character.isUppercase { result += "_" + character.lowercased() } else { result.append(character) }
        }
        return result
    }
}
