import Autoencoders
import Cohort
import Foundation
import TensorCore

/// The files a finished extraction leaves in its output folder: the feature exports
/// (`FeatureExport`) and the feature report (`feature_stats.tsv`, `summary.json`,
/// `report.html`), each written atomically.
public enum ExtractionOutput {
    public static let statisticsFile = "feature_stats.tsv"
    public static let summaryFile = "summary.json"
    public static let reportFile = "report.html"

    /// The files of a whole extraction.
    static var wholeRunFiles: [String] {
        [FeatureExport.arrayFile, FeatureExport.tableFile, FeatureExport.safetensorsFile, statisticsFile, summaryFile, reportFile]
    }

    /// Every file (and the maps folder) an extraction or a shard may write into its folder.
    static var ownFiles: [String] { wholeRunFiles + [ShardFolder.recordFile, ShardFolder.arrayFile, mapsFolder] }

    /// Creates `directory`, refusing one that holds an extraction (or a killed run's staging
    /// folder) unless `overwrite`: then staging leftovers are removed at once and the other
    /// files are replaced as the new ones are written.
    public static func prepare(_ directory: URL, overwrite: Bool) throws {
        // A run killed before it finished leaves its staging folder of maps.
        let leftovers = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasPrefix(stagingPrefix) }.sorted()
        let existing = ownFiles.filter { FileManager.default.fileExists(atPath: directory.appendingPathComponent($0).path) } + leftovers
        if !existing.isEmpty && !overwrite {
            throw ExtractionError.io("\(directory.path) already holds extraction outputs (\(existing.joined(separator: ", "))): replace them with --overwrite or choose another --out")
        }
        for leftover in leftovers { try FileManager.default.removeItem(at: directory.appendingPathComponent(leftover)) }
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw ExtractionError.io("cannot create \(directory.path): \((error as NSError).localizedDescription)")
        }
    }

    /// Checks that `run` is still the model `record` was extracted with (weights and
    /// configuration), as merging shards needs before it writes the report.
    public static func checkModel(_ run: PretrainedRun, matches record: ExtractionRecord) throws {
        guard try Extraction.modelSha(run) == record.modelSha256, SHA256.hex(run.configJSON) == record.modelConfigSha256 else {
            throw ExtractionError.shards("\(record.model) has changed since the shards were extracted (its model.safetensors or config.json differs)")
        }
    }

    /// The record of the extraction whose outputs are in `directory` (the `extraction` entry of
    /// its `summary.json`), or nil when the folder has no summary or one written before the
    /// record was kept there.
    /// - Throws: `ExtractionError.io` when `summary.json` cannot be read or its record decoded.
    public static func record(in directory: URL) throws(ExtractionError) -> ExtractionRecord? {
        struct Summary: Decodable { var extraction: ExtractionRecord? }
        let url = directory.appendingPathComponent(summaryFile)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        do { return try JSONDecoder().decode(Summary.self, from: try Data(contentsOf: url)).extraction } catch {
            throw .io("\(url.path): \(error)")
        }
    }

    /// Moves the feature maps of a finished run from `staging` to `directory/maps`, replacing
    /// an earlier run's; without `staging` an earlier run's maps are removed (they would
    /// contradict the new outputs). Only a folder holding our `index.tsv` counts as maps.
    public static func installMaps(from staging: URL?, in directory: URL) throws {
        let maps = directory.appendingPathComponent(mapsFolder)
        if FileManager.default.fileExists(atPath: maps.appendingPathComponent(mapsIndexFile).path) {
            try FileManager.default.removeItem(at: maps)
        }
        if let staging {
            guard !FileManager.default.fileExists(atPath: maps.path) else {
                throw ExtractionError.io("\(maps.path) exists and is not an adwb feature-map folder: the maps stay in \(staging.path)")
            }
            try FileManager.default.moveItem(at: staging, to: maps)
        }
    }

    /// A fresh folder for a run's feature maps until it has finished (removed if it fails).
    public static func stagingMaps(in directory: URL) throws -> URL {
        let staging = directory.appendingPathComponent("\(stagingPrefix)\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: false)
        return staging
    }

    static let stagingPrefix = ".maps.partial-"
    public static let mapsIndexFile = "index.tsv"
    public static let mapsFolder = "maps"

    /// Writes the feature exports and the report for `set` (extracted with `run`).
    /// - Returns: the files written, exports first.
    public static func write(_ set: FeatureSet, run: PretrainedRun, to directory: URL) throws -> [URL] {
        // Everything is computed before the first file is written, so an error leaves none.
        let files = try FeatureExport.files(set) + FeatureReport(set: set, run: run).files()
        let urls = try files.map { name, bytes in
            let url = directory.appendingPathComponent(name)
            try AtomicFile.write(bytes, to: url)
            return url
        }
        // Shard files left by an earlier run in this folder would contradict the new outputs.
        removeFiles([ShardFolder.recordFile, ShardFolder.arrayFile], in: directory)
        return urls
    }

    /// Writes a shard's files, removing a whole run's outputs left in `directory` by an
    /// earlier run (they would contradict the shard).
    public static func writeShard(_ set: FeatureSet, to directory: URL) throws {
        try ShardFolder.write(set, to: directory)
        removeFiles(wholeRunFiles, in: directory)
    }

    private static func removeFiles(_ names: [String], in directory: URL) {
        for name in names { try? FileManager.default.removeItem(at: directory.appendingPathComponent(name)) }
    }
}
