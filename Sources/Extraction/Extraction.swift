import Autoencoders
import Cohort
import Foundation
import NeuralNet
import Patches
import TensorCore
import VolumeIO

/// A manifest row whose scan was turned into features.
public struct ExtractedRow: Sendable, Codable, Equatable {
    /// Position among the manifest's rows (0-based).
    public var index: Int
    /// Line in the manifest file.
    public var line: Int?
    public var participantID: String
    public var sessionID: String
    public var diagnosis: Diagnosis?
    /// The scan's voxel grid: extents `[X, Y, Z]` and the 4×4 affine (row-major).
    public var shape: [Int]
    public var affine: [Double]

    enum CodingKeys: String, CodingKey {
        case index, line, diagnosis, shape, affine
        case participantID = "participant_id", sessionID = "session_id"
    }
}

extension Shard {
    /// Reads `i/n` (1 ≤ i ≤ n ≤ 100000).
    public init(parsing text: String) throws(ExtractionError) {
        guard let shard = Shard(text) else { throw .invalidOption("shard '\(text)': \(Shard.syntax)") }
        self = shard
    }

    /// Checks `1 ≤ index ≤ count ≤ 100000`.
    public func validate() throws(ExtractionError) {
        guard isValid else { throw .invalidOption("shard \(index)/\(count): needs 1 <= i <= n <= 100000") }
    }
}

/// Everything about a set of extracted features but the values: what was extracted, from
/// which manifest and model, with which options. Stored as `shard.json` in a shard's folder
/// and under `extraction` in `summary.json`.
public struct ExtractionRecord: Sendable, Codable, Equatable {
    public var adwbVersion: String
    /// The manifest (absolute path) and the SHA-256 of its bytes.
    public var manifest: String
    public var manifestSha256: String
    public var manifestRows: Int
    /// The pretraining run (absolute path) and the SHA-256 of its `model.safetensors`.
    public var model: String
    public var modelSha256: String
    /// The SHA-256 of the run's `config.json` (how scans were normalised, the architecture).
    public var modelConfigSha256: String
    public var modelKind: ModelKind
    /// Set when the features come from the model's architecture with untrained weights drawn
    /// from this seed (a baseline), not from the trained weights.
    public var untrainedSeed: UInt64?
    public var options: ExtractionOptions
    /// The encoder as applied, e.g. `Conv3d(1→8, k3)–relu–MaxPool3d(2)`.
    public var encoder: String
    public var mapChannels: Int
    public var featureChannels: Int
    public var shard: Shard
    /// Extracted rows, in manifest order.
    public var rows: [ExtractedRow]
    /// Rows left out with `--skip-bad`.
    public var skipped: [SkippedScan]

    enum CodingKeys: String, CodingKey {
        case manifest, model, options, encoder, shard, rows, skipped
        case adwbVersion = "adwb_version", manifestSha256 = "manifest_sha256", manifestRows = "manifest_rows"
        case modelSha256 = "model_sha256", modelConfigSha256 = "model_config_sha256", modelKind = "model_kind", untrainedSeed = "untrained_seed", mapChannels = "map_channels", featureChannels = "feature_channels"
    }

    /// Features per scan.
    public var featureCount: Int { featureChannels * options.regionCount }
}

/// Extracted features: one row of `values [N, F]` per `record.rows` entry.
public struct FeatureSet: Sendable, Equatable {
    public var record: ExtractionRecord
    public var values: Tensor
}

/// Runs extraction over a manifest (or a shard of it) and merges shards.
public enum Extraction {
    /// Extracts every usable scan of `manifest` (of its `shard`) with the run in `model`.
    /// - Parameters:
    ///   - skipBad: leave out scans that cannot be used (listed in the record) instead of
    ///     stopping at the first.
    ///   - featureMaps: a folder to write each scan's feature map into (4-D NIfTI named by
    ///     `featureMapNames`, listed in `index.tsv`), or nil.
    ///   - progress: `(done, total)` as scans finish (from any thread).
    ///   - shouldStop: polled before each scan; `true` ends the run with `.interrupted`.
    ///   - warn: told once when a scan's thinnest slab needs more memory than
    ///     `resources.tileMegabytes` (it is used anyway).
    /// - Throws: `ExtractionError.badScans` listing unusable scans (without `skipBad`), the
    ///   manifest's and model's errors, `ExtractionError.invalidOption` for bad options.
    public static func run(model: URL, manifest manifestURL: URL, options: ExtractionOptions, resources: ExtractionResources = ExtractionResources(),
                           shard: Shard = .whole, skipBad: Bool = false, featureMaps: URL? = nil,
                           progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in },
                           shouldStop: @escaping @Sendable () -> Bool = { false }, warn: (String) -> Void = { _ in }) throws -> FeatureSet {
        let run = try PretrainedRun.load(model)
        return try self.run(run, manifest: manifestURL, options: options, resources: resources, shard: shard, skipBad: skipBad,
                            featureMaps: featureMaps, progress: progress, shouldStop: shouldStop, warn: warn)
    }

    /// `run(model:…)` with a run already loaded (or an untrained copy of one).
    public static func run(_ run: PretrainedRun, manifest manifestURL: URL, options: ExtractionOptions,
                           resources: ExtractionResources = ExtractionResources(), shard: Shard = .whole, skipBad: Bool = false,
                           featureMaps: URL? = nil, progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in },
                           shouldStop: @escaping @Sendable () -> Bool = { false }, warn: (String) -> Void = { _ in }) throws -> FeatureSet {
        try shard.validate()
        let extractor = try FeatureExtractor(run: run, options: options, resources: resources)
        let (manifest, manifestSha, malformed) = try Pretraining.readManifest(manifestURL, expectedSha: nil, skipBad: skipBad)
        let sources = Pretraining.scanSources(manifest)
        let malformedLines = Set(malformed.compactMap(\.line))
        let selected = Array(shard.rows(of: manifest.rows.count)).filter { index in
            manifest.rows[index].line.map { !malformedLines.contains($0) } ?? true
        }
        let mapNames = featureMapNames(manifest.rows)
        if let featureMaps { try FileManager.default.createDirectory(at: featureMaps, withIntermediateDirectories: true) }

        // Header problems (missing files, 4-D images, masks of another size, volumes the
        // encoder or grid cannot cover) are all found before any work; problems inside the
        // data stop the run at the first one.
        var failures = [Int: SkippedScan]()
        var shapes = [Int: Triple]()
        var geometryFailures = 0
        for index in selected {
            let source = sources[index]
            do {
                let shape = try NormalisedScan.checkHeaders(source)
                if let reason = extractor.geometryProblem(shape) {
                    failures[index] = SkippedScan(line: source.line, path: source.image.path, reason: reason)
                    geometryFailures += 1
                } else {
                    shapes[index] = shape
                }
            } catch {
                failures[index] = SkippedScan(error, source: source)
            }
        }
        if shard == .whole, geometryFailures > 0 && geometryFailures == selected.count, let first = selected.first, let failure = failures[first] {
            // Not a bad scan but options that fit none of them (a shard cannot tell: others may fit).
            throw ExtractionError.invalidOption("the encoder and grid fit none of the scans: \(failure.reason)")
        }
        if !failures.isEmpty && !skipBad { throw ExtractionError.badScans(failures.keys.sorted().map { failures[$0]!.description }) }
        let queue = selected.filter { failures[$0] == nil }
        if let largest = shapes.values.max(by: { $0.product < $1.product }) {
            let needed = extractor.encoder.slabBytes(rows: 1, inputShape: largest)
            if needed > resources.tileMegabytes * 1_000_000 {
                warn("a slab of one feature-map row of a \(largest.d)x\(largest.h)x\(largest.w) scan needs about \((needed + 999_999) / 1_000_000) MB, more than the \(resources.tileMegabytes) MB tile budget: each worker uses that much")
            }
        }
        let results = ExtractionResults(count: queue.count)
        let workers = max(1, min(resources.workers, queue.count))
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            let networks: (map: Sequential, perRegion: Sequential?)
            do { networks = try extractor.encoder.makeNetworks() } catch { results.fail(error); return }
            while !shouldStop(), let position = results.next() {
                let index = queue[position]
                let source = sources[index]
                do {
                    var scan = try extractor.extract(source, networks: networks, keepMap: featureMaps != nil)
                    if let featureMaps, let map = scan.map {
                        try map.write(to: featureMaps.appendingPathComponent(mapNames[index]))
                        // Written: memory holds only the vectors until the run ends.
                        scan.map = nil
                    }
                    results.store(scan, at: position)
                } catch let error as PatchError {
                    results.reject(SkippedScan(error, source: source), at: position, fatal: !skipBad)
                } catch let ExtractionError.unusableScan(path, line, reason) {
                    results.reject(SkippedScan(line: line, path: path, reason: reason), at: position, fatal: !skipBad)
                } catch {
                    results.fail(error)
                }
                progress(results.finished, queue.count)
            }
        }
        if let error = results.error { throw error }
        if shouldStop() { throw ExtractionError.interrupted }
        for (position, skipped) in results.rejected { failures[queue[position]] = skipped }
        if !failures.isEmpty && !skipBad { throw ExtractionError.badScans(failures.keys.sorted().map { failures[$0]!.description }) }

        var rows: [ExtractedRow] = []
        var values: [Float] = []
        values.reserveCapacity(queue.count * extractor.featureCount)
        for (position, index) in queue.enumerated() {
            guard let scan = results.scans[position] else { continue }
            let row = manifest.rows[index]
            rows.append(ExtractedRow(index: index, line: row.line, participantID: row.participantID, sessionID: row.sessionID,
                                     diagnosis: row.diagnosis, shape: scan.inputShape.array, affine: scan.affine.entries))
            values += scan.features
        }
        // A malformed row belongs to the shard holding its line (rows the parser dropped, to the first).
        let shardLines = Set(shard.rows(of: manifest.rows.count).compactMap { manifest.rows[$0].line })
        let parsedLines = Set(manifest.rows.compactMap(\.line))
        let malformedHere = malformed.filter { item in
            item.line.map { shardLines.contains($0) || (!parsedLines.contains($0) && shard.index == 1) } ?? (shard.index == 1)
        }
        let skipped = ordered(malformedHere + failures.values)
        if shard == .whole && rows.isEmpty {
            throw ExtractionError.noUsableScan(manifest: manifestURL.path, skipped: skipped.map(\.description))
        }
        if let featureMaps {
            let index = (["participant_id\tsession_id\tfile"] + rows.map { "\($0.participantID)\t\($0.sessionID)\t\(mapNames[$0.index])" })
                .joined(separator: "\n") + "\n"
            try AtomicFile.write(Data(index.utf8), to: featureMaps.appendingPathComponent(ExtractionOutput.mapsIndexFile))
        }
        let record = ExtractionRecord(
            adwbVersion: Pretraining.version, manifest: manifestURL.standardizedFileURL.path, manifestSha256: manifestSha,
            manifestRows: manifest.rows.count, model: run.directory.url.standardizedFileURL.path, modelSha256: try modelSha(run),
            modelConfigSha256: SHA256.hex(run.configJSON),
            modelKind: run.config.model, untrainedSeed: run.untrainedSeed, options: options, encoder: extractor.encoder.summary, mapChannels: extractor.encoder.mapChannels,
            featureChannels: extractor.encoder.featureChannels, shard: shard, rows: rows, skipped: skipped)
        return FeatureSet(record: record, values: try Tensor(shape: [rows.count, extractor.featureCount], scalars: values))
    }

    /// Skipped scans in manifest order (then by path and reason, so the order never depends on timing).
    static func ordered(_ skipped: [SkippedScan]) -> [SkippedScan] {
        skipped.sorted { ($0.line ?? 0, $0.path, $0.reason) < ($1.line ?? 0, $1.path, $1.reason) }
    }

    /// The SHA-256 of the run's weights as loaded (the model file's bytes).
    static func modelSha(_ run: PretrainedRun) throws -> String {
        do { return SHA256.hex(try Data(contentsOf: run.directory.model)) } catch {
            throw ExtractionError.io("cannot read \(run.directory.model.path): \((error as NSError).localizedDescription)")
        }
    }

    /// Feature-map file names per manifest row: `<participant>_<session>_features.nii.gz`
    /// with characters other than letters, digits, `.`, `-` and `_` (and leading dots)
    /// replaced by `-`; rows whose names would coincide (ignoring case) get `_line<N>` added,
    /// then their position if need be, so no file overwrites another.
    static func featureMapNames(_ rows: [ManifestRow]) -> [String] {
        var names = rows.map { "\(FileNames.safeComponent($0.participantID))_\(FileNames.safeComponent($0.sessionID))" }
        // Rows sharing a name get their line, then (should that collide too) their position,
        // until every name is unique; each round lengthens only colliding names, so it ends.
        var round = 0
        while true {
            // Compared without case, for file systems that ignore it.
            let counts = Dictionary(names.map { ($0.lowercased(), 1) }, uniquingKeysWith: +)
            let colliding = names.indices.filter { counts[names[$0].lowercased()]! > 1 }
            if colliding.isEmpty { break }
            for index in colliding { names[index] += round == 0 ? "_line\(rows[index].line ?? index)" : "_\(index)" }
            round += 1
        }
        return names.map { $0 + "_features.nii.gz" }
    }
}

/// Results shared by the extraction workers: which scan to take next, what came out, and
/// the first fatal error.
final class ExtractionResults: @unchecked Sendable {
    private let lock = NSLock()
    private var nextPosition = 0
    private(set) var scans: [ScanFeatures?]
    private(set) var rejected: [(Int, SkippedScan)] = []
    private(set) var error: Error?
    private var stopped = false
    private var done = 0

    init(count: Int) { scans = Array(repeating: nil, count: count) }

    private func locked<R>(_ body: () -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }

    /// The next scan position to extract, nil when all are taken or the run stopped.
    func next() -> Int? {
        locked {
            guard !stopped, nextPosition < scans.count else { return nil }
            nextPosition += 1
            return nextPosition - 1
        }
    }

    var finished: Int { locked { done } }

    func store(_ scan: ScanFeatures, at position: Int) { locked { scans[position] = scan; done += 1 } }

    func reject(_ skipped: SkippedScan, at position: Int, fatal: Bool) {
        locked {
            rejected.append((position, skipped))
            done += 1
            if fatal { stopped = true }
        }
    }

    func fail(_ error: Error) {
        locked {
            if self.error == nil { self.error = error }
            stopped = true
        }
    }
}
