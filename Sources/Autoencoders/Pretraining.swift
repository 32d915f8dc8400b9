import Cohort
import Foundation
import NeuralNet
import Patches
import TensorCore

/// Settings that change how fast a run goes, never its result.
public struct PretrainResources: Sendable {
    /// Threads loading scans and cutting patches.
    public var workers = 2
    /// Blocks of patches allowed to wait ready (bounds memory with `blockMegabytes`).
    public var queueDepth = 4
    /// Prepared scans kept in memory, in MB (10⁶ bytes).
    public var cacheMegabytes = 512

    public init() {}
}

/// Where a run's inputs came from, saved under `provenance` in `config.json`.
public struct PretrainProvenance: Sendable, Codable, Equatable {
    public var adwbVersion: String
    /// The manifest as given (absolute), and the SHA-256 of its bytes.
    public var manifest: String
    public var manifestSha256: String
    public var scans: Int
    /// Scans left out with `--skip-bad`.
    public var skippedScans: [SkippedScan]
    public var trainingParticipants: [String]
    public var validationParticipants: [String]
    /// Engine threads of the run: results are byte-identical for the same thread count.
    public var threads: Int

    enum CodingKeys: String, CodingKey {
        case manifest, scans, threads
        case adwbVersion = "adwb_version", manifestSha256 = "manifest_sha256", skippedScans = "skipped_scans"
        case trainingParticipants = "training_participants", validationParticipants = "validation_participants"
    }
}

/// A scan left out because it could not be used.
public struct SkippedScan: Sendable, Codable, Equatable, CustomStringConvertible {
    /// Its manifest line.
    public var line: Int?
    public var path: String
    public var reason: String

    public init(line: Int?, path: String, reason: String) { (self.line, self.path, self.reason) = (line, path, reason) }

    /// Why `source` could not be used, from the error its reading gave.
    public init(_ error: PatchError, source: ScanSource) {
        if case let .badScan(path, line, reason) = error {
            self.init(line: line, path: path, reason: reason)
        } else {
            self.init(line: source.line, path: source.image.path, reason: error.description)
        }
    }

    public var description: String { PatchError.badScan(path: path, line: line, reason: reason).description }
}

/// `config.json`: the resolved configuration's keys at the top level (so the file can be
/// given back to `--config`) plus `provenance`.
struct RunRecord: Codable {
    var config: PretrainConfig
    var provenance: PretrainProvenance

    func encode(to encoder: Encoder) throws {
        try config.encode(to: encoder)
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(provenance, forKey: .provenance)
    }

    init(config: PretrainConfig, provenance: PretrainProvenance) {
        (self.config, self.provenance) = (config, provenance)
    }

    init(from decoder: Decoder) throws {
        config = try PretrainConfig(from: decoder)
        provenance = try decoder.container(keyedBy: Key.self).decode(PretrainProvenance.self, forKey: .provenance)
    }

    enum Key: String, CodingKey { case provenance }

    /// The record in `directory`'s `config.json`, and the file's bytes.
    /// - Throws: `PretrainError.io` without the file (`purpose` says what it was wanted for),
    ///   `PretrainError.invalidConfig` naming the bad key when it does not decode.
    static func read(_ directory: RunDirectory, purpose: String) throws -> (RunRecord, Data) {
        let data: Data
        do { data = try Data(contentsOf: directory.config) } catch {
            throw PretrainError.io("\(directory.url.path) holds no pretraining run \(purpose) (no config.json)")
        }
        do { return (try JSONDecoder().decode(RunRecord.self, from: data), data) } catch let error as DecodingError {
            throw PretrainError.invalidConfig("\(directory.config.path): \(ConfigFile.describe(error))")
        }
    }
}

/// Sets up pretraining runs: manifest → scans → checks → participant-level validation split
/// → samplers → model → `Trainer`.
public enum Pretraining {
    /// The workbench version recorded with every run.
    public static let version = "0.1.0"

    /// What `prepare` found: the trainer, and scans left out by `skipBad`.
    public struct Setup {
        public let trainer: Trainer
        public let provenance: PretrainProvenance
    }

    /// Starts a new run in `output` (which must not hold one already).
    /// - Parameters:
    ///   - skipBad: leave out scans that cannot be read (listed in the provenance) instead
    ///     of stopping before training.
    ///   - progress: `(done, total)` while the scans are checked.
    ///   - overwrite: replace a run already in `output` (its own files only), once the
    ///     manifest and scans have been checked; otherwise such a folder is refused.
    public static func start(config: PretrainConfig, manifest manifestURL: URL, output: URL, resources: PretrainResources = PretrainResources(),
                             skipBad: Bool = false, overwrite: Bool = false,
                             progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in }) throws -> Setup {
        try config.validate()
        let directory = RunDirectory(output)
        if !overwrite && FileManager.default.fileExists(atPath: directory.config.path) {
            throw PretrainError.io("\(output.path) already holds a pretraining run (config.json): continue it with --resume, replace it with --overwrite, or choose another --out")
        }
        let (manifest, sha, malformed) = try readManifest(manifestURL, expectedSha: nil, skipBad: skipBad)
        let sources = scanSources(manifest)
        let malformedLines = Set(malformed.compactMap(\.line))
        let candidates = sources.indices.filter { sources[$0].line.map { !malformedLines.contains($0) } ?? true }
        let cache = ScanCache(sources: sources, options: config.patches, megabytes: resources.cacheMegabytes)
        let done = Counter()
        let failures = cache.preload(candidates, workers: resources.workers) { _ in progress(done.increment(), candidates.count) }
        let unreadable = failures.keys.sorted().map { SkippedScan(failures[$0]!, source: sources[$0]) }
        if !unreadable.isEmpty && !skipBad { throw PretrainError.badScans(unreadable.map(\.description)) }
        let skipped = (malformed + unreadable).sorted { ($0.line ?? 0) < ($1.line ?? 0) }
        let usable = candidates.filter { failures[$0] == nil }
        let (trainingIDs, validationIDs) = try splitParticipants(manifest.rows, usable: usable, config: config)
        let provenance = PretrainProvenance(
            adwbVersion: version, manifest: manifestURL.standardizedFileURL.path, manifestSha256: sha, scans: usable.count,
            skippedScans: skipped, trainingParticipants: trainingIDs, validationParticipants: validationIDs, threads: Engine.threads)
        if overwrite { try directory.removeRun() }
        try FileManager.default.createDirectory(at: directory.checkpoints, withIntermediateDirectories: true)
        let record = try ConfigFile.encoder.encode(RunRecord(config: config, provenance: provenance))
        try AtomicFile.write(record, to: directory.config)
        let trainer = try makeTrainer(config: config, provenance: provenance, manifest: manifest, cache: cache, usable: usable,
                                      directory: directory, resources: resources, configJSON: record)
        return Setup(trainer: trainer, provenance: provenance)
    }

    /// Continues the run in `output` from its last checkpoint. The manifest must be the one
    /// the run started with (checked by SHA-256); `manifest` overrides its recorded path.
    /// Bytes equal an uninterrupted run's when `Engine.threads` equals the recorded
    /// `provenance.threads` (the caller sets it; `adwb pretrain --resume` does by default).
    public static func resume(output: URL, manifest override: URL? = nil, resources: PretrainResources = PretrainResources()) throws -> Setup {
        let directory = RunDirectory(output)
        let (record, data) = try RunRecord.read(directory, purpose: "to resume")
        guard FileManager.default.fileExists(atPath: directory.lastCheckpoint.path) else {
            throw PretrainError.io("\(output.path): no checkpoint to resume from (\(directory.lastCheckpoint.lastPathComponent) is missing)")
        }
        let provenance = record.provenance
        // The file is the one the run started with, so its malformed rows are among the skipped ones.
        let (manifest, _, _) = try readManifest(override ?? URL(fileURLWithPath: provenance.manifest), expectedSha: provenance.manifestSha256,
                                                skipBad: true)
        let sources = scanSources(manifest)
        let cache = ScanCache(sources: sources, options: record.config.patches, megabytes: resources.cacheMegabytes)
        // The scans skipped at the start stay skipped.
        let skippedLines = Set(provenance.skippedScans.compactMap(\.line))
        let usable = sources.indices.filter { sources[$0].line.map { !skippedLines.contains($0) } ?? true }
        let trainer = try makeTrainer(config: record.config, provenance: provenance, manifest: manifest, cache: cache, usable: usable,
                                      directory: directory, resources: resources, configJSON: data)
        try trainer.resume()
        return Setup(trainer: trainer, provenance: provenance)
    }

    /// The engine threads the run in `output` recorded (nil if it holds no readable run).
    public static func recordedThreads(output: URL) -> Int? {
        guard let data = try? Data(contentsOf: RunDirectory(output).config) else { return nil }
        return (try? JSONDecoder().decode(RunRecord.self, from: data))?.provenance.threads
    }

    private static func makeTrainer(config: PretrainConfig, provenance: PretrainProvenance, manifest: Manifest, cache: ScanCache,
                                    usable: [Int], directory: RunDirectory, resources: PretrainResources, configJSON: Data) throws -> Trainer {
        let validationSet = Set(provenance.validationParticipants)
        let trainingScans = usable.filter { !validationSet.contains(manifest.rows[$0].participantID) }
        let validationScans = usable.filter { validationSet.contains(manifest.rows[$0].participantID) }
        let training = try PatchSampler(scans: trainingScans, options: config.patches, seed: config.seed)
        var validation: PatchSampler?
        if !validationScans.isEmpty {
            var options = config.patches
            options.patchesPerEpoch = config.training.validationPatches
            options.resampleEachEpoch = false
            options.augmentation = PatchAugmentation()
            validation = try PatchSampler(scans: validationScans, options: options, seed: SplitMix64.derive(config.seed, 0x4_0000))
        }
        let model = try makeAutoencoder(config)
        let metadata = ["adwb_config": String(decoding: configJSON, as: UTF8.self), "adwb_version": version]
        let trainer = Trainer(config: config, model: model, directory: directory, cache: cache, training: training,
                              validation: validation, metadata: metadata)
        trainer.workers = resources.workers
        trainer.queueDepth = resources.queueDepth
        return trainer
    }

    /// Reads the manifest and its SHA-256. Malformed rows (bad fields, duplicates, unknown
    /// labels) stop the run, all listed with their lines; with `skipBad` they are returned to
    /// be skipped instead. A header without the required columns always stops it.
    public static func readManifest(_ url: URL, expectedSha: String?, skipBad: Bool) throws -> (Manifest, String, malformed: [SkippedScan]) {
        let bytes: Data
        do { bytes = try Data(contentsOf: url) } catch {
            throw CohortError.cannotRead(path: url.path, reason: (error as NSError).localizedDescription)
        }
        let sha = SHA256.hex(bytes)
        if let expectedSha, sha != expectedSha {
            throw PretrainError.io("\(url.path) has changed since the run started (SHA-256 \(sha.prefix(12))…, recorded \(expectedSha.prefix(12))…)")
        }
        let (parsed, issues) = try Manifest.parse(contentsOf: url)
        let errors = issues.filter { $0.severity == .error }
        guard let manifest = parsed, errors.isEmpty || (skipBad && errors.allSatisfy { $0.line != nil }) else {
            throw CohortError.invalidManifest(path: url.path, issues: errors)
        }
        guard !manifest.rows.isEmpty else { throw PretrainError.invalidConfig("\(url.path) lists no scans") }
        let reasons = Dictionary(grouping: errors, by: { $0.line ?? 0 })
        let malformed = reasons.keys.sorted().map { line in
            SkippedScan(line: line, path: url.path, reason: "malformed manifest row: " + reasons[line]!.map(\.message).joined(separator: "; "))
        }
        return (manifest, sha, malformed)
    }

    /// Every manifest row, labelled or not (pretraining is unsupervised).
    public static func scanSources(_ manifest: Manifest) -> [ScanSource] {
        manifest.rows.map { row in
            ScanSource(name: "\(row.participantID)/\(row.sessionID)", image: manifest.url(for: row.path),
                       mask: row.maskPath.map { manifest.url(for: $0) }, line: row.line)
        }
    }

    /// Holds out `validationFraction` of the participants with usable scans (at least one
    /// when the fraction is positive), drawn from the seed; all of a participant's sessions
    /// stay on one side.
    static func splitParticipants(_ rows: [ManifestRow], usable: [Int], config: PretrainConfig) throws -> (training: [String], validation: [String]) {
        var participants = Array(Set(usable.map { rows[$0].participantID })).sorted()
        guard !participants.isEmpty else { throw PretrainError.badScans(["no usable scan is left"]) }
        let fraction = config.training.validationFraction
        guard fraction > 0 else { return (participants, []) }
        guard participants.count >= 2 else {
            throw PretrainError.invalidConfig("validation needs at least 2 participants (the manifest has \(participants.count)); set validation_fraction to 0 to train without validation")
        }
        var generator = Xoshiro256StarStar(seed: SplitMix64.derive(config.seed, 0x3_0000))
        participants.seededShuffle(using: &generator)
        let held = min(participants.count - 1, max(1, Int((fraction * Double(participants.count)).rounded())))
        return (Array(participants[held...]).sorted(), Array(participants[..<held]).sorted())
    }
}

/// A thread-safe counter for progress reports.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func increment() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value
    }
}
