import Autoencoders
import Cohort
import Foundation
import NeuralNet
import TensorCore

/// The feature files of an extraction, readable without the workbench:
/// - `features.npy`: float32 `[N, F]`, rows in manifest order (`numpy.load`);
/// - `features.tsv`: `participant_id`, `session_id`, `diagnosis`, then one column per
///   feature, each value the shortest decimal that reads back to the same float32;
/// - `features.safetensors`: tensor `features [N, F]`, with the rows' identifiers and the
///   feature names (JSON arrays) in its metadata.
public enum FeatureExport {
    public static let arrayFile = "features.npy"
    public static let tableFile = "features.tsv"
    public static let safetensorsFile = "features.safetensors"

    /// `c<channel>_x<i>_y<j>_z<k>`: the feature's channel and region indices.
    public static func featureNames(_ record: ExtractionRecord) -> [String] {
        let grid = record.options.grid
        let width = String(max(0, record.featureChannels - 1)).count
        var names: [String] = []
        names.reserveCapacity(record.featureCount)
        for channel in 0..<record.featureChannels {
            let c = String(channel)
            let padded = String(repeating: "0", count: width - c.count) + c
            for i in 0..<grid[0] {
                for j in 0..<grid[1] {
                    for k in 0..<grid[2] { names.append("c\(padded)_x\(i)_y\(j)_z\(k)") }
                }
            }
        }
        return names
    }

    /// The diagnosis as written in the TSV (`n/a` when unlabelled, as BIDS writes a missing value).
    static func label(_ diagnosis: Diagnosis?) -> String { diagnosis?.rawValue ?? "n/a" }

    /// The three files' names and bytes.
    public static func files(_ set: FeatureSet) throws -> [(name: String, bytes: Data)] {
        let names = featureNames(set.record)
        let rows = set.record.rows
        let metadata = [
            "participant_id": try json(rows.map(\.participantID)),
            "session_id": try json(rows.map(\.sessionID)),
            "diagnosis": try json(rows.map { label($0.diagnosis) }),
            "feature_names": try json(names),
            "format": "pt",
        ]
        return [(arrayFile, NumpyFile.encode(set.values)), (tableFile, Data(table(set, names: names).utf8)),
                (safetensorsFile, try SafeTensors.encode([("features", .float32(set.values))], metadata: metadata))]
    }

    static func table(_ set: FeatureSet, names: [String]) -> String {
        var text = (["participant_id", "session_id", "diagnosis"] + names).joined(separator: "\t") + "\n"
        let width = set.record.featureCount
        set.values.withUnsafeBufferPointer { values in
            for (r, row) in set.record.rows.enumerated() {
                text += [row.participantID, row.sessionID, label(row.diagnosis)].joined(separator: "\t")
                for f in 0..<width { text += "\t\(values[r * width + f])" }
                text += "\n"
            }
        }
        return text
    }

    static func json(_ strings: [String]) throws -> String {
        String(decoding: try JSONEncoder().encode(strings), as: UTF8.self)
    }
}

/// A shard's folder: `shard.json` (its `ExtractionRecord`) and `shard-features.npy`.
public enum ShardFolder {
    public static let recordFile = "shard.json"
    public static let arrayFile = "shard-features.npy"

    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// Writes a shard's record and values (each atomically) into `directory`.
    public static func write(_ set: FeatureSet, to directory: URL) throws {
        try NumpyFile.write(set.values, to: directory.appendingPathComponent(arrayFile))
        try AtomicFile.write(try encoder.encode(set.record), to: directory.appendingPathComponent(recordFile))
    }

    /// Reads a shard written by `write`.
    public static func read(_ directory: URL) throws -> FeatureSet {
        let recordURL = directory.appendingPathComponent(recordFile)
        let record: ExtractionRecord
        do {
            record = try JSONDecoder().decode(ExtractionRecord.self, from: try Data(contentsOf: recordURL))
        } catch {
            throw ExtractionError.shards("\(directory.path) is not an extraction shard (\(recordFile): \(error))")
        }
        do { try check(record) } catch {
            throw ExtractionError.shards("\(directory.path): \(recordFile) is not a shard adwb wrote (\(error))")
        }
        let values = try NumpyFile.read(from: directory.appendingPathComponent(arrayFile))
        guard values.shape == [record.rows.count, record.featureCount] else {
            throw ExtractionError.shards("\(directory.path): \(arrayFile) has shape \(values.shape), its record lists \(record.rows.count) rows of \(record.featureCount) features")
        }
        return FeatureSet(record: record, values: values)
    }

    /// Checks what a record says before anything relies on it: a possible shard, valid
    /// options, rows inside the shard's range in manifest order, each with a 3-D grid and a
    /// finite 4×4 affine.
    static func check(_ record: ExtractionRecord) throws(ExtractionError) {
        try record.shard.validate()
        try record.options.validate()
        guard (1...1_000_000).contains(record.featureChannels) else { throw .invalidOption("\(record.featureChannels) feature channels") }
        guard (0...1_000_000_000).contains(record.manifestRows) else { throw .invalidOption("\(record.manifestRows) manifest rows") }
        let range = record.shard.rows(of: record.manifestRows)
        var previous = -1
        for row in record.rows {
            guard range.contains(row.index), row.index > previous else {
                throw .invalidOption("row \(row.index) is outside shard \(record.shard)'s rows \(range) or out of order")
            }
            guard row.shape.count == 3, row.shape.allSatisfy({ (1...32767).contains($0) }) else { throw .invalidOption("row \(row.index): grid \(row.shape)") }
            guard row.affine.count == 16, row.affine.allSatisfy(\.isFinite) else { throw .invalidOption("row \(row.index): affine \(row.affine)") }
            previous = row.index
        }
    }

    /// Joins the shards of one extraction into the set a single run would have produced.
    /// - Throws: `ExtractionError.shards` when they come from different manifests, models or
    ///   options, or when a shard is missing or given twice.
    public static func merge(_ shards: [FeatureSet]) throws -> FeatureSet {
        guard let first = shards.first else { throw ExtractionError.shards("no shard to merge") }
        let reference = first.record
        for shard in shards {
            let r = shard.record
            do { try check(r) } catch { throw ExtractionError.shards("cannot merge shard \(r.shard): \(error)") }
            var differences: [String] = []
            if r.manifestSha256 != reference.manifestSha256 { differences.append("manifest") }
            if r.modelSha256 != reference.modelSha256 || r.untrainedSeed != reference.untrainedSeed { differences.append("model weights") }
            if r.modelConfigSha256 != reference.modelConfigSha256 { differences.append("model configuration") }
            if r.options != reference.options || r.encoder != reference.encoder { differences.append("extraction options") }
            if r.shard.count != reference.shard.count || r.manifestRows != reference.manifestRows { differences.append("shard count") }
            if r.adwbVersion != reference.adwbVersion { differences.append("adwb version") }
            guard differences.isEmpty else {
                throw ExtractionError.shards("shard \(r.shard) differs from shard \(reference.shard) in its \(differences.joined(separator: ", ")): they are not parts of one extraction")
            }
        }
        let indices = shards.map(\.record.shard.index)
        let expected = Array(1...reference.shard.count)
        guard indices.sorted() == expected else {
            let missing = Set(expected).subtracting(indices).sorted()
            let repeated = Dictionary(grouping: indices, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted()
            throw ExtractionError.shards("shards of \(reference.shard.count): "
                + (missing.isEmpty ? "" : "missing \(missing.map(String.init).joined(separator: ", "))")
                + (missing.isEmpty || repeated.isEmpty ? "" : "; ")
                + (repeated.isEmpty ? "" : "given twice: \(repeated.map(String.init).joined(separator: ", "))"))
        }
        let ordered = shards.sorted { $0.record.shard.index < $1.record.shard.index }
        var record = ordered[0].record
        record.shard = .whole
        record.rows = ordered.flatMap(\.record.rows)
        record.skipped = Extraction.ordered(ordered.flatMap(\.record.skipped))
        guard !record.rows.isEmpty else {
            throw ExtractionError.noUsableScan(manifest: record.manifest, skipped: record.skipped.map(\.description))
        }
        let values = try Tensor(shape: [record.rows.count, record.featureCount], scalars: ordered.flatMap(\.values.scalars))
        return FeatureSet(record: record, values: values)
    }
}
