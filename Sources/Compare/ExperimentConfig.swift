import Autoencoders
import Classification
import Cohort
import Extraction
import Foundation
import Yams

/// Where the encoders of an experiment learn their features.
public enum PretrainingMode: String, Codable, Sendable, CaseIterable {
    /// Once per outer fold, on that fold's training participants (labelled or not) plus the
    /// `unlabelled_manifest` scans: the fold's validation participants are never seen.
    case perFold = "per-fold"
    /// Once, on `unlabelled_manifest` alone: an independent set that shares no participant
    /// with the experiment's manifest (checked).
    case independent
}

/// One encoder of an experiment: a pretraining configuration, or a finished run to reuse.
public struct EncoderSpec: Codable, Sendable, Equatable {
    /// How back ends refer to it (`encoder: sae`).
    public var name: String
    /// The resolved pretraining configuration (preset or model defaults, then the file's
    /// `settings`).
    public var config: PretrainConfig
    /// A finished `adwb pretrain` run to reuse instead of pretraining (its participants must
    /// not include any evaluated participant: checked).
    public var run: String?
}

/// One back end of the comparison.
public struct BackendSpec: Codable, Sendable, Equatable {
    /// Where the input comes from.
    public enum Input: String, Codable, Sendable, CaseIterable {
        /// Features extracted by `encoder`.
        case features
        /// The scans' voxels (ICA + SVM, Yang et al. 2011).
        case voxels
        /// Whole volumes through `encoder`'s layers, fine-tuned with a dense head.
        case volumes
    }

    /// Its column in the report (`svm-sae`).
    public var name: String
    public var kind: Backend
    public var input: Input
    /// The encoder whose features (or layers) it uses; nil for voxels.
    public var encoder: String?
    public var svm: SVMSettings
    public var ica: ICASettings
    public var cnn: CNNSettings
}

/// An `adwb compare` experiment: which scans, which task, which encoders and back ends, how
/// the folds are made, and the seeds. Read from YAML (or JSON) by `ExperimentConfig.load`.
///
/// ```yaml
/// name: ad-vs-cn
/// manifest: preprocessed/manifest.tsv     # relative to this file
/// task: ad-cn                             # ad-cn | mci-cn | ad-mci | cn-mci-ad
/// folds: 5
/// seed: 0
/// pretraining: per-fold                   # or independent (with unlabelled_manifest)
/// encoders:
///   - {name: sae, preset: payan2015}
///   - {name: cae, preset: hosseini2016, settings: {training: {epochs: 3}}}
/// backends:
///   - {name: svm-sae, kind: svm, encoder: sae}
///   - {name: svm-cae, kind: svm, encoder: cae}
///   - {name: ica-svm, kind: ica-svm}      # on voxels
///   - {name: cnn, kind: cnn, encoder: cae, cnn: {epochs: 20}}
/// ```
public struct ExperimentConfig: Codable, Sendable, Equatable {
    /// The report folder's prefix: letters, digits, `.`, `_`, `-`.
    public var name: String
    /// The cohort manifest (participant_id, session_id, path, diagnosis), resolved against
    /// the configuration file's folder.
    public var manifest: String
    public var task: ClassificationTask = .adVsCN
    /// Participant-level, class-stratified outer folds made from `seed` ...
    public var folds = 5
    /// ... or an existing `adwb manifest split` folder (`split-<i>/train.tsv`, `validation.tsv`).
    public var splits: String?
    /// Seeds the folds, the pretraining, the inner grid searches, ICA and the CNN head.
    public var seed: UInt64 = 0
    public var pretraining: PretrainingMode = .perFold
    /// Extra unlabelled scans for pretraining (per fold), or the independent pretraining set.
    public var unlabelledManifest: String?
    public var encoders: [EncoderSpec] = []
    /// How encoders' feature maps become feature vectors.
    public var extraction = ExtractionOptions()
    public var backends: [BackendSpec] = []
    /// Bootstrap replicates for the 95% intervals of the fold means.
    public var bootstrapReplicates = 2000
    /// The intervals' confidence level.
    public var confidence = 0.95
    /// Explanation maps (occlusion for CNN heads on volumes, weight maps for linear SVMs);
    /// nil (`explanations: off`) makes none.
    public var explanations: ExplanationSettings? = ExplanationSettings()

    enum CodingKeys: String, CodingKey {
        case name, manifest, task, folds, splits, seed, pretraining, encoders, extraction, backends, confidence, explanations
        case unlabelledManifest = "unlabelled_manifest", bootstrapReplicates = "bootstrap_replicates"
    }

    public init(name: String, manifest: String) {
        self.name = name
        self.manifest = manifest
    }

    /// Reads and checks an experiment file; relative paths stay relative (see `resolve`).
    public static func load(_ url: URL) throws(CompareError) -> ExperimentConfig {
        let mapping: Node.Mapping
        do { mapping = try ConfigFile.read(url) } catch { throw .config(error.description) }
        let config = try parse(mapping, name: url.path)
        try config.validate()
        return config
    }

    /// Builds a configuration from a parsed YAML mapping, naming `name` in messages.
    public static func parse(_ mapping: Node.Mapping, name file: String) throws(CompareError) -> ExperimentConfig {
        var reader = MappingReader(mapping, path: "", file: file)
        var config = ExperimentConfig(name: try reader.required("name", as: String.self), manifest: try reader.required("manifest", as: String.self))
        if let task = try reader.optional("task", as: String.self) {
            guard let value = ClassificationTask(rawValue: task) else {
                throw .config("\(file): task '\(task)' is not one of \(ClassificationTask.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            config.task = value
        }
        config.folds = try reader.optional("folds", as: Int.self) ?? config.folds
        config.splits = try reader.optional("splits", as: String.self)
        config.seed = try reader.optional("seed", as: UInt64.self) ?? config.seed
        if let mode = try reader.optional("pretraining", as: String.self) {
            guard let value = PretrainingMode(rawValue: mode) else { throw .config("\(file): pretraining '\(mode)' is not per-fold or independent") }
            config.pretraining = value
        }
        config.unlabelledManifest = try reader.optional("unlabelled_manifest", as: String.self)
        config.bootstrapReplicates = try reader.optional("bootstrap_replicates", as: Int.self) ?? config.bootstrapReplicates
        config.confidence = try reader.optional("confidence", as: Double.self) ?? config.confidence
        if let section = try reader.mapping("extraction") {
            do { config.extraction = try ConfigFile.overlay(section, on: ExtractionOptions(), optionalKeys: ["sae_levels"], name: "\(file): extraction") } catch {
                throw .config(error.description)
            }
        }
        if let off = try reader.optionalScalar("explanations") {
            guard ["off", "none", "false", "no"].contains(off) else { throw .config("\(file): 'explanations' is a section of settings or off") }
            config.explanations = nil
        } else if let section = try reader.mapping("explanations") {
            do {
                config.explanations = try ConfigFile.overlay(section, on: ExplanationSettings(), optionalKeys: ["occlusion_stride"], name: "\(file): explanations")
            } catch { throw .config(error.description) }
        }
        for (index, entry) in try reader.sequence("encoders").enumerated() {
            config.encoders.append(try encoder(entry, path: "encoders[\(index)]", file: file))
        }
        for (index, entry) in try reader.sequence("backends").enumerated() {
            config.backends.append(try backend(entry, path: "backends[\(index)]", file: file))
        }
        try reader.finish()
        return config
    }

    static func encoder(_ node: Node, path: String, file: String) throws(CompareError) -> EncoderSpec {
        guard let mapping = node.mapping else { throw .config("\(file): '\(path)' should be a mapping (name, preset or model, settings)") }
        var reader = MappingReader(mapping, path: path, file: file)
        let name = try reader.required("name", as: String.self)
        let preset = try reader.optional("preset", as: String.self)
        let model = try reader.optional("model", as: String.self)
        let run = try reader.optional("run", as: String.self)
        let settings = try reader.mapping("settings") ?? Node.Mapping([])
        try reader.finish()
        var kind: ModelKind?
        if let model {
            guard let value = ModelKind(rawValue: model) else { throw .config("\(file): '\(path).model' is '\(model)', not sae or cae") }
            kind = value
        }
        guard preset != nil || kind != nil || run != nil else {
            throw .config("\(file): '\(path)' (\(name)) needs a preset, a model (sae or cae) or a finished run to reuse")
        }
        if run != nil && (preset != nil || kind != nil || !settings.isEmpty) {
            throw .config("\(file): '\(path)' (\(name)) reuses a run: its configuration is the run's own; drop preset, model and settings")
        }
        var config = PretrainConfig(model: kind ?? .cae)
        if run == nil {
            do {
                config = try ConfigFile.resolve(model: kind, preset: preset, mapping: settings, name: "\(file): \(path).settings")
            } catch { throw .config(error.description) }
        }
        return EncoderSpec(name: name, config: config, run: run)
    }

    static func backend(_ node: Node, path: String, file: String) throws(CompareError) -> BackendSpec {
        guard let mapping = node.mapping else { throw .config("\(file): '\(path)' should be a mapping (name, kind, encoder, settings)") }
        var reader = MappingReader(mapping, path: path, file: file)
        let name = try reader.required("name", as: String.self)
        let kindText = try reader.required("kind", as: String.self)
        guard let kind = Backend(rawValue: kindText) else {
            throw .config("\(file): '\(path).kind' is '\(kindText)', not one of \(Backend.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let encoder = try reader.optional("encoder", as: String.self)
        var input: BackendSpec.Input
        switch kind {
        case .svm: input = .features
        case .icaSVM: input = encoder == nil ? .voxels : .features
        case .cnn: input = .volumes
        }
        if let text = try reader.optional("input", as: String.self) {
            guard let value = BackendSpec.Input(rawValue: text) else { throw .config("\(file): '\(path).input' is '\(text)', not features, voxels or volumes") }
            input = value
        }
        var spec = BackendSpec(name: name, kind: kind, input: input, encoder: encoder, svm: SVMSettings(), ica: ICASettings(), cnn: CNNSettings())
        do {
            if let section = try reader.mapping("svm") { spec.svm = try ConfigFile.overlay(section, on: spec.svm, optionalKeys: ["c_values"], name: "\(file): \(path).svm") }
            if let section = try reader.mapping("ica") { spec.ica = try ConfigFile.overlay(section, on: spec.ica, name: "\(file): \(path).ica") }
            if let section = try reader.mapping("cnn") { spec.cnn = try ConfigFile.overlay(section, on: spec.cnn, name: "\(file): \(path).cnn") }
        } catch let error as CompareError { throw error } catch { throw .config("\(error)") }
        try reader.finish()
        return spec
    }

    /// Checks names, references and combinations, naming the first problem.
    public func validate() throws(CompareError) {
        guard FileNames.safeComponent(name) == name else { throw .config("name '\(name)': use letters, digits, '.', '_' or '-' (it names the report folder)") }
        guard splits != nil || (2...100).contains(folds) else { throw .config("folds \(folds): 2 to 100") }
        guard bootstrapReplicates >= 100 && bootstrapReplicates <= 1_000_000 else { throw .config("bootstrap_replicates \(bootstrapReplicates): 100 to 10^6") }
        guard confidence > 0.5 && confidence < 1 else { throw .config("confidence \(confidence): between 0.5 and 1") }
        do { try extraction.validate() } catch { throw .config("extraction: \(error)") }
        if pretraining == .independent && unlabelledManifest == nil && encoders.contains(where: { $0.run == nil }) {
            throw .config("pretraining: independent needs unlabelled_manifest (the independent set the encoders learn from)")
        }
        guard !backends.isEmpty else { throw .config("backends: name at least one back end to compare") }
        var seen: Set<String> = []
        for encoder in encoders {
            guard FileNames.safeComponent(encoder.name) == encoder.name, seen.insert(encoder.name).inserted else {
                throw .config("encoder name '\(encoder.name)': names must be unique and use letters, digits, '.', '_' or '-'")
            }
            if encoder.run == nil { do { try encoder.config.validate() } catch { throw .config("encoder \(encoder.name): \(error)") } }
        }
        var backendNames: Set<String> = []
        for backend in backends {
            guard FileNames.safeComponent(backend.name) == backend.name, backendNames.insert(backend.name).inserted else {
                throw .config("back end name '\(backend.name)': names must be unique and use letters, digits, '.', '_' or '-'")
            }
            switch (backend.kind, backend.input) {
            case (.svm, .features), (.icaSVM, .features), (.icaSVM, .voxels), (.cnn, .volumes), (.cnn, .features): break
            default: throw .config("back end \(backend.name): a \(backend.kind.rawValue) back end does not take \(backend.input.rawValue)")
            }
            if backend.input == .voxels {
                guard backend.encoder == nil else { throw .config("back end \(backend.name): voxels need no encoder") }
            } else {
                guard let name = backend.encoder else { throw .config("back end \(backend.name): name the encoder it uses (encoder: ...)") }
                guard seen.contains(name) else {
                    throw .config("back end \(backend.name): no encoder named '\(name)' (encoders: \(encoders.map(\.name).joined(separator: ", ")))")
                }
            }
            do {
                var request = ClassifyRequest(backend: backend.kind, task: task, split: URL(fileURLWithPath: "/"), out: URL(fileURLWithPath: "/"))
                (request.svm, request.ica, request.cnn, request.explanations) = (backend.svm, backend.ica, backend.cnn, explanations)
                try request.validateSettings()
            } catch { throw .config("back end \(backend.name): \(error)") }
        }
    }

    /// The encoders some back end uses, in the order they are listed.
    public var usedEncoders: [EncoderSpec] {
        encoders.filter { encoder in backends.contains { $0.encoder == encoder.name } }
    }
}

/// Reads the keys of one YAML mapping, remembering which were read so that `finish` can
/// refuse the rest (a misspelt key must not be ignored).
struct MappingReader {
    private let mapping: Node.Mapping
    private let path: String
    private let file: String
    private var read: Set<String> = []

    init(_ mapping: Node.Mapping, path: String, file: String) { (self.mapping, self.path, self.file) = (mapping, path, file) }

    private func full(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private mutating func node(_ key: String) -> Node? {
        read.insert(key)
        guard let node = mapping[key], node != Node("~", Tag(.null)), node.null == nil else { return nil }
        return node
    }

    mutating func optional<T: ScalarValue>(_ key: String, as type: T.Type) throws(CompareError) -> T? {
        guard let node = node(key) else { return nil }
        guard let scalar = node.scalar, let value = T(scalarText: scalar.string) else {
            throw .config("\(file): '\(full(key))' should be \(T.description) (found \(node.scalar?.string ?? "a section"))")
        }
        return value
    }

    mutating func required<T: ScalarValue>(_ key: String, as type: T.Type) throws(CompareError) -> T {
        guard let value = try optional(key, as: type) else { throw .config("\(file): '\(full(key))' is missing") }
        return value
    }

    /// A key's scalar text, or nil when it is absent or not a scalar (left to `mapping`).
    mutating func optionalScalar(_ key: String) throws(CompareError) -> String? {
        guard let node = node(key) else { return nil }
        return node.scalar?.string
    }

    mutating func mapping(_ key: String) throws(CompareError) -> Node.Mapping? {
        guard let node = node(key) else { return nil }
        guard let mapping = node.mapping else { throw .config("\(file): '\(full(key))' should be a section of options") }
        return mapping
    }

    mutating func sequence(_ key: String) throws(CompareError) -> [Node] {
        guard let node = node(key) else { return [] }
        guard let sequence = node.sequence else { throw .config("\(file): '\(full(key))' should be a list") }
        return Array(sequence)
    }

    /// Refuses keys nobody read.
    func finish() throws(CompareError) {
        for key in mapping.keys {
            guard let text = key.string else { throw .config("\(file): a key under '\(path.isEmpty ? "the top level" : path)' is not text") }
            guard read.contains(text) else {
                throw .config("\(file): unknown option '\(full(text))' (known here: \(read.sorted().joined(separator: ", ")))")
            }
        }
    }
}

/// Scalars a configuration key can hold, parsed from YAML's text.
protocol ScalarValue {
    init?(scalarText: String)
    static var description: String { get }
}

extension String: ScalarValue {
    init?(scalarText: String) { self = scalarText }
    static var description: String { "text" }
}

extension Int: ScalarValue {
    init?(scalarText: String) { self.init(scalarText) }
    static var description: String { "an integer" }
}

extension UInt64: ScalarValue {
    init?(scalarText: String) { self.init(scalarText) }
    static var description: String { "a non-negative integer" }
}

extension Double: ScalarValue {
    init?(scalarText: String) {
        guard let value = Double(scalarText), value.isFinite else { return nil }
        self = value
    }
    static var description: String { "a number" }
}
