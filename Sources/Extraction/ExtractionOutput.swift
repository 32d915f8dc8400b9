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

    /// Every file an extraction or a shard may write into its folder.
    static var ownFiles: [String] {
        [FeatureExport.arrayFile, FeatureExport.tableFile, FeatureExport.safetensorsFile, statisticsFile, summaryFile, reportFile,
         ShardFolder.recordFile, ShardFolder.arrayFile]
    }

    /// Creates `directory`, refusing one that holds an extraction already unless `overwrite`
    /// (whose files are then replaced as the new ones are written).
    public static func prepare(_ directory: URL, overwrite: Bool) throws {
        let existing = ownFiles.filter { FileManager.default.fileExists(atPath: directory.appendingPathComponent($0).path) }
        if !existing.isEmpty && !overwrite {
            throw ExtractionError.io("\(directory.path) already holds extraction outputs (\(existing.joined(separator: ", "))): replace them with --overwrite or choose another --out")
        }
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw ExtractionError.io("cannot create \(directory.path): \((error as NSError).localizedDescription)")
        }
    }

    /// The SHA-256 of `run`'s `model.safetensors`.
    public static func modelSha(_ run: PretrainedRun) throws -> String { try Extraction.modelSha(run) }

    /// Writes the feature exports and the report for `set` (extracted with `run`).
    /// - Returns: the files written, exports first.
    public static func write(_ set: FeatureSet, run: PretrainedRun, to directory: URL) throws -> [URL] {
        var urls = try FeatureExport.write(set, to: directory)
        urls += try FeatureReport(set: set, run: run).write(to: directory)
        // Shard files left by an earlier run in this folder would contradict the new outputs.
        for name in [ShardFolder.recordFile, ShardFolder.arrayFile] {
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
        }
        return urls
    }
}
