import Autoencoders
import Cohort
import Extraction
import Foundation
import TensorCore
import Testing

/// Helpers shared by the extraction run tests (on `ExtractionCohort`'s cohort and runs).
enum ExtractionTest {
    /// The six files `ExtractionOutput.write` leaves, exports first.
    static let outputFiles = [FeatureExport.arrayFile, FeatureExport.tableFile, FeatureExport.safetensorsFile,
                              ExtractionOutput.statisticsFile, ExtractionOutput.summaryFile, ExtractionOutput.reportFile]

    enum Model: String, Sendable, CaseIterable {
        case sae, cae
        var url: URL { self == .sae ? ExtractionCohort.saeRun : ExtractionCohort.caeRun }
    }

    static func options(_ pooling: RegionPooling = .mean, grid: [Int] = [3, 3, 3]) -> ExtractionOptions {
        var options = ExtractionOptions()
        options.pooling = pooling
        options.grid = grid
        return options
    }

    static func resources(workers: Int) -> ExtractionResources {
        var resources = ExtractionResources()
        resources.workers = workers
        return resources
    }

    /// `Extraction.run` on the shared cohort (or another manifest).
    static func extract(_ model: Model, options: ExtractionOptions = options(), workers: Int = 2, shard: Shard = .whole,
                        manifest: URL = ExtractionCohort.manifest, skipBad: Bool = false) throws -> FeatureSet {
        try Extraction.run(model: model.url, manifest: manifest, options: options, resources: resources(workers: workers),
                           shard: shard, skipBad: skipBad)
    }

    /// `ExtractionOutput.write` into `folder` (created); returns the files' bytes by name.
    @discardableResult
    static func writeOutputs(_ set: FeatureSet, model: Model, to folder: URL) throws -> [String: Data] {
        try ExtractionOutput.prepare(folder, overwrite: false)
        let run = try PretrainedRun.load(model.url)
        let urls = try ExtractionOutput.write(set, run: run, to: folder)
        let names = urls.map { $0.lastPathComponent }
        #expect(names == outputFiles)
        return try outputBytes(folder)
    }

    /// The bytes of the six output files in `folder`.
    static func outputBytes(_ folder: URL) throws -> [String: Data] {
        var bytes: [String: Data] = [:]
        for name in outputFiles { bytes[name] = try Data(contentsOf: folder.appendingPathComponent(name)) }
        return bytes
    }

    /// Records an issue for every output file whose bytes differ.
    static func expectSameFiles(_ a: [String: Data], _ b: [String: Data], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for name in outputFiles {
            let (x, y) = (a[name], b[name])
            #expect(x != nil && x == y, "\(name) differs (\(what)): \(x?.count ?? -1) vs \(y?.count ?? -1) bytes", sourceLocation: sourceLocation)
        }
    }

    static func bits(_ tensor: Tensor) -> [UInt32] { tensor.scalars.map { $0.bitPattern } }

    /// The shared cohort's manifest as header and rows of fields, with every path column made
    /// absolute (so edited copies can live in another folder).
    static func absoluteManifest() throws -> (header: [String], rows: [[String]]) {
        let source = ExtractionCohort.manifest
        let folder = source.deletingLastPathComponent()
        let text = try String(contentsOf: source, encoding: .utf8)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        let header = lines[0].split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        let pathColumns = header.indices.filter { ["path", "mask_path", "label_path"].contains(header[$0]) }
        let rows = lines.dropFirst().map { line -> [String] in
            var fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            for column in pathColumns where column < fields.count {
                let value = fields[column]
                if !value.isEmpty && value != "n/a" && !value.hasPrefix("/") {
                    fields[column] = folder.appendingPathComponent(value).standardizedFileURL.path
                }
            }
            return fields
        }
        return (header, rows)
    }

    /// Writes a manifest of `header` and `rows` to `url`.
    static func writeManifest(header: [String], rows: [[String]], to url: URL) throws {
        let text = ([header] + rows).map { $0.joined(separator: "\t") }.joined(separator: "\n") + "\n"
        try Data(text.utf8).write(to: url)
    }

    /// The message of an `ExtractionError.shards` thrown by `body` (nil if it did not throw,
    /// a description of the error if it threw something else).
    static func shardsError(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let ExtractionError.shards(message) {
            return message
        } catch {
            return "unexpected error: \(error)"
        }
    }

    /// The messages of an `ExtractionError.badScans` thrown by `body`.
    static func badScans(_ body: () throws -> Void) -> [String]? {
        do {
            try body()
            return nil
        } catch let ExtractionError.badScans(messages) {
            return messages
        } catch {
            return ["unexpected error: \(error)"]
        }
    }
}
