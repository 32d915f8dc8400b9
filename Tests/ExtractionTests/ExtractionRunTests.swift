import Autoencoders
import Cohort
import Extraction
import Foundation
import NeuralNet
import TensorCore
import Testing
import TestSupport
import VolumeIO
#if canImport(FoundationXML)
import FoundationXML
#endif

// Whole extractions on the shared tiny cohort (`ExtractionCohort`): determinism across worker
// counts and runs, shards and their merge, bad scans, the exports and the report.

private typealias Ex = ExtractionTest

// MARK: - Determinism

struct RunDeterminismCase: Sendable, CustomTestStringConvertible {
    var model: ExtractionTest.Model
    var pooling: RegionPooling
    var grid: [Int]
    var testDescription: String { "\(model.rawValue), \(pooling.rawValue) pooling, grid \(grid)" }
}

@Test(arguments: [
    RunDeterminismCase(model: .sae, pooling: .max, grid: [3, 3, 3]),
    RunDeterminismCase(model: .sae, pooling: .mean, grid: [2, 3, 1]),
    RunDeterminismCase(model: .cae, pooling: .mean, grid: [3, 3, 3]),
    RunDeterminismCase(model: .cae, pooling: .max, grid: [2, 2, 2]),
])
func extractionIsDeterministic(_ c: RunDeterminismCase) throws {
    let options = Ex.options(c.pooling, grid: c.grid)
    let one = try Ex.extract(c.model, options: options, workers: 1)
    let three = try Ex.extract(c.model, options: options, workers: 3)
    #expect(one.record == three.record)
    #expect(one.values.shape == three.values.shape)
    #expect(Ex.bits(one.values) == Ex.bits(three.values), "features differ between 1 and 3 workers")
    #expect(one.record.rows.count == 12)
    #expect(one.values.shape == [12, one.record.featureCount])
    #expect(one.record.featureCount == one.record.featureChannels * c.grid.reduce(1, *))
    #expect(one.values.scalars.allSatisfy { $0.isFinite })
    // Not all equal: the extraction did something.
    #expect(Set(one.values.scalars).count > 1)

    let root = temporaryFolder("determinism")
    defer { try? FileManager.default.removeItem(at: root) }
    let first = try Ex.writeOutputs(one, model: c.model, to: root.appendingPathComponent("a"))
    let second = try Ex.writeOutputs(three, model: c.model, to: root.appendingPathComponent("b"))
    Ex.expectSameFiles(first, second, "two runs of \(c.testDescription)")
}

@Test func poolingsDiffer() throws {
    // Max and mean pooling give different features, and max ≥ mean region by region (for
    // the CAE with a region grid of one cell, every max is at least the mean).
    let max = try Ex.extract(.cae, options: Ex.options(.max, grid: [1, 1, 1]))
    let mean = try Ex.extract(.cae, options: Ex.options(.mean, grid: [1, 1, 1]))
    #expect(max.values.shape == mean.values.shape)
    let ordered = zip(max.values.scalars, mean.values.scalars).allSatisfy { $0 >= $1 }
    #expect(ordered)
    #expect(max.values.scalars != mean.values.scalars)
}

// MARK: - Shards

@Test(arguments: [1, 3, 20])
func shardsMergeToTheSingleRun(_ count: Int) throws {
    let root = temporaryFolder("shards-\(count)")
    defer { try? FileManager.default.removeItem(at: root) }
    let options = Ex.options(.max)
    let single = try Ex.extract(.sae, options: options)
    let singleFiles = try Ex.writeOutputs(single, model: .sae, to: root.appendingPathComponent("single"))

    var folders: [URL] = []
    var rowsSeen = 0
    for index in 1...count {
        let shard = Shard(index: index, count: count)
        let set = try Ex.extract(.sae, options: options, workers: 1 + index % 2, shard: shard)
        #expect(set.record.shard == shard)
        let expectedRows = Array(shard.rows(of: 12))
        let rowIndices = set.record.rows.map { $0.index }
        #expect(rowIndices == expectedRows)
        #expect(set.values.shape == [expectedRows.count, set.record.featureCount])
        rowsSeen += set.record.rows.count
        let folder = root.appendingPathComponent("shard-\(index)")
        try ExtractionOutput.prepare(folder, overwrite: false)
        try ShardFolder.write(set, to: folder)
        // The shard reads back exactly.
        let back = try ShardFolder.read(folder)
        #expect(back.record == set.record)
        #expect(Ex.bits(back.values) == Ex.bits(set.values))
        folders.append(folder)
    }
    #expect(rowsSeen == 12)
    if count == 20 {
        // With more shards than rows some are empty, and they still merge.
        let empty = try folders.filter { try ShardFolder.read($0).record.rows.isEmpty }
        #expect(empty.count == 8)
    }

    // Scrambled order: the merge sorts by shard index.
    let scrambled = (0..<count).map { folders[($0 * 7 + 2) % count] }
    let merged = try ShardFolder.merge(try scrambled.map { try ShardFolder.read($0) })
    #expect(merged.record == single.record)
    #expect(Ex.bits(merged.values) == Ex.bits(single.values))
    let mergedFiles = try Ex.writeOutputs(merged, model: .sae, to: root.appendingPathComponent("merged"))
    Ex.expectSameFiles(singleFiles, mergedFiles, "\(count) merged shards vs one run")
}

@Test func shardMergeErrorsNameTheProblem() throws {
    let root = temporaryFolder("shard-errors")
    defer { try? FileManager.default.removeItem(at: root) }
    func extracted(_ model: ExtractionTest.Model, _ index: Int, of count: Int, grid: [Int] = [3, 3, 3]) throws -> FeatureSet {
        let set = try Ex.extract(model, options: Ex.options(.mean, grid: grid), shard: Shard(index: index, count: count))
        let folder = root.appendingPathComponent("\(model.rawValue)-\(grid.map(String.init).joined())-\(index)of\(count)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try ShardFolder.write(set, to: folder)
        return try ShardFolder.read(folder)
    }
    let (s1, s2, s3) = (try extracted(.sae, 1, of: 3), try extracted(.sae, 2, of: 3), try extracted(.sae, 3, of: 3))
    #expect(throws: Never.self) { try ShardFolder.merge([s3, s1, s2]) }

    let missing = Ex.shardsError { _ = try ShardFolder.merge([s1, s3]) }
    #expect(missing?.contains("missing 2") == true, "\(missing ?? "no error")")
    let missingTwo = Ex.shardsError { _ = try ShardFolder.merge([s2]) }
    #expect(missingTwo?.contains("missing 1, 3") == true, "\(missingTwo ?? "no error")")

    let twice = Ex.shardsError { _ = try ShardFolder.merge([s1, s2, s2, s3]) }
    #expect(twice?.contains("given twice: 2") == true, "\(twice ?? "no error")")
    #expect(twice?.contains("missing") == false, "\(twice ?? "no error")")
    let both = Ex.shardsError { _ = try ShardFolder.merge([s1, s1, s2]) }
    #expect(both?.contains("missing 3") == true && both?.contains("given twice: 1") == true, "\(both ?? "no error")")

    let otherGrid = try extracted(.sae, 2, of: 3, grid: [2, 2, 2])
    let gridError = Ex.shardsError { _ = try ShardFolder.merge([s1, otherGrid, s3]) }
    #expect(gridError?.contains("extraction options") == true, "\(gridError ?? "no error")")

    let otherModel = try extracted(.cae, 2, of: 3)
    let modelError = Ex.shardsError { _ = try ShardFolder.merge([s1, otherModel, s3]) }
    #expect(modelError?.contains("model weights") == true, "\(modelError ?? "no error")")

    let otherCount = try extracted(.sae, 2, of: 2)
    let countError = Ex.shardsError { _ = try ShardFolder.merge([s1, otherCount, s3]) }
    #expect(countError?.contains("shard count") == true, "\(countError ?? "no error")")

    let none = Ex.shardsError { _ = try ShardFolder.merge([]) }
    #expect(none?.contains("no shard") == true, "\(none ?? "no error")")

    // A folder that is not a shard.
    let notShard = root.appendingPathComponent("not-a-shard")
    try FileManager.default.createDirectory(at: notShard, withIntermediateDirectories: true)
    let readError = Ex.shardsError { _ = try ShardFolder.read(notShard) }
    #expect(readError?.contains("not an extraction shard") == true, "\(readError ?? "no error")")
}

/// The error `Shard(parsing:)` throws for `text`, nil when it accepts it.
private func shardParseError(_ text: String) -> ExtractionError? {
    do {
        _ = try Shard(parsing: text)
        return nil
    } catch {
        return error
    }
}

@Test func shardParsing() throws {
    let shard = try Shard(parsing: "2/5")
    #expect(shard == Shard(index: 2, count: 5))
    #expect(shard.description == "2/5")
    #expect(try Shard(parsing: "1/1") == .whole)
    #expect(try Shard(parsing: "7/7") == Shard(index: 7, count: 7))
    for text in ["0/3", "4/3", "a/b", "3", "1/0", "", "/", "1/2/3", "-1/3", "1/-3", "1/100001"] {
        let error = shardParseError(text)
        guard case let .invalidOption(message)? = error else {
            Issue.record("'\(text)': \(error.map { "\($0)" } ?? "accepted")")
            continue
        }
        #expect(message.contains("'\(text)'"), "\(message)")
    }
}

@Test func shardsCoverEveryRowOnce() {
    for total in 0...40 {
        for count in 1...25 {
            var covered: [Int] = []
            for index in 1...count {
                let rows = Shard(index: index, count: count).rows(of: total)
                #expect(rows.lowerBound <= rows.upperBound)
                covered += Array(rows)
            }
            if covered != Array(0..<total) { Issue.record("shards of \(count) over \(total) rows cover \(covered)") }
        }
    }
}

// MARK: - Bad scans

@Test func badScansAreNamedOrSkipped() throws {
    let root = temporaryFolder("bad-scans")
    defer { try? FileManager.default.removeItem(at: root) }
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    let (header, cleanRows) = try Ex.absoluteManifest()
    let pathColumn = try #require(header.firstIndex(of: "path"))
    #expect(cleanRows.count == 12)
    let clean = try Ex.extract(.sae)

    // Four broken copies, each replacing one row's image (line = row + 2: the header is line 1).
    func image(_ row: Int) -> URL { URL(fileURLWithPath: cleanRows[row][pathColumn]) }
    let missing = root.appendingPathComponent("missing.nii.gz")
    let truncated = root.appendingPathComponent("truncated.nii.gz")
    let whole = try Data(contentsOf: image(4))
    try whole.prefix(whole.count / 2).write(to: truncated)
    let nanImage = root.appendingPathComponent("nan.nii.gz")
    var volume = try VolumeReader.read(image(7))
    volume.data[flat: 20 * 40 * 40 + 20 * 40 + 20] = .nan
    try VolumeWriter.write(try Volume(data: volume.data, affine: volume.affine), to: nanImage)
    let fourD = root.appendingPathComponent("four-d.nii.gz")
    let frames = try VolumeReader.read(image(10)).data
    try VolumeWriter.write(frames: [frames, frames], affine: volume.affine, to: fourD)
    let bad: [(row: Int, url: URL, what: String)] = [(1, missing, "missing"), (4, truncated, "truncated"), (7, nanImage, "NaN"), (10, fourD, "4-D")]

    func manifest(_ name: String, _ replaced: [(row: Int, url: URL, what: String)]) throws -> URL {
        var rows = cleanRows
        for item in replaced { rows[item.row][pathColumn] = item.url.path }
        let url = root.appendingPathComponent(name)
        try Ex.writeManifest(header: header, rows: rows, to: url)
        return url
    }

    // A copy with absolute paths extracts exactly as the original.
    let copy = try Ex.extract(.sae, manifest: try manifest("copy.tsv", []))
    #expect(copy.record.rows == clean.record.rows)
    #expect(Ex.bits(copy.values) == Ex.bits(clean.values))

    // Each alone, without --skip-bad: the run stops, naming the line and the file.
    for item in bad {
        let url = try manifest("bad-\(item.row).tsv", [item])
        let messages = Ex.badScans { _ = try Ex.extract(.sae, manifest: url) }
        #expect(messages?.count == 1, "\(item.what): \(messages ?? [])")
        let message = messages?.first ?? ""
        #expect(message.contains("manifest line \(item.row + 2): "), "\(item.what): \(message)")
        #expect(message.contains(item.url.path), "\(item.what): \(message)")
    }
    // All four: without --skip-bad the header problems (missing, 4-D) are all listed before any work.
    let all = try manifest("all-bad.tsv", bad)
    let messages = Ex.badScans { _ = try Ex.extract(.sae, manifest: all) } ?? []
    #expect(messages.count >= 2)
    #expect(messages.contains { $0.contains("manifest line 3: ") && $0.contains(missing.path) }, "\(messages)")
    #expect(messages.contains { $0.contains("manifest line 12: ") && $0.contains(fourD.path) }, "\(messages)")

    // With --skip-bad: left out and listed; the other rows are extracted as in the clean run.
    for workers in [1, 3] {
        let set = try Ex.extract(.sae, workers: workers, manifest: all, skipBad: true)
        let badRows = Set(bad.map { $0.row })
        let kept = set.record.rows.map { $0.index }
        #expect(kept == (0..<12).filter { !badRows.contains($0) })
        let skippedLines = set.record.skipped.map { $0.line }
        #expect(skippedLines == [3, 6, 9, 12])
        let skippedPaths = set.record.skipped.map { $0.path }
        #expect(skippedPaths == bad.map { $0.url.path })
        #expect(set.record.skipped.allSatisfy { !$0.reason.isEmpty })
        let width = set.record.featureCount
        #expect(width == clean.record.featureCount)
        for (r, row) in set.record.rows.enumerated() {
            let mine = Array(set.values.scalars[(r * width)..<((r + 1) * width)]).map { $0.bitPattern }
            let theirs = Array(clean.values.scalars[(row.index * width)..<((row.index + 1) * width)]).map { $0.bitPattern }
            if mine != theirs { Issue.record("row \(row.index) differs from the clean run (\(workers) workers)") }
            #expect(row == clean.record.rows[row.index])
        }

        if workers == 1 {
            let out = root.appendingPathComponent("skipped-out")
            try Ex.writeOutputs(set, model: .sae, to: out)
            let summary = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("summary.json"))) as? [String: Any])
            let skipped = try #require(summary["skipped"] as? [[String: Any]])
            let lines = skipped.compactMap { $0["line"] as? Int }
            let paths = skipped.compactMap { $0["path"] as? String }
            #expect(lines == [3, 6, 9, 12])
            #expect(paths == bad.map { $0.url.path })
            #expect(summary["scans"] as? Int == 8)
            let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
            #expect(html.contains("(4 skipped)"))
        }
    }
}

// MARK: - Exports

@Test func exportsAgree() throws {
    let root = temporaryFolder("exports")
    defer { try? FileManager.default.removeItem(at: root) }
    let set = try Ex.extract(.cae, options: Ex.options(.max, grid: [2, 2, 2]))
    try Ex.writeOutputs(set, model: .cae, to: root)

    let array = try NumpyFile.read(from: root.appendingPathComponent(FeatureExport.arrayFile))
    let (n, f) = (set.record.rows.count, set.record.featureCount)
    #expect(array.shape == [n, f])
    #expect(Ex.bits(array) == Ex.bits(set.values))
    // summary.json keeps the whole record (every row's grid), for classifiers that map features back to the scans.
    #expect(try ExtractionOutput.record(in: root) == set.record)
    #expect(try ExtractionOutput.record(in: root.appendingPathComponent("no-such-folder")) == nil)

    // The manifest, in order.
    let manifest = try Manifest(contentsOf: ExtractionCohort.manifest)
    #expect(n == manifest.rows.count)
    let unlabelled = manifest.rows.filter { $0.diagnosis == nil }.count
    #expect(unlabelled >= 1, "the cohort should have an unlabelled row")

    // features.tsv: header, then one row per scan whose values read back to the npy's bits.
    let text = try String(contentsOf: root.appendingPathComponent(FeatureExport.tableFile), encoding: .utf8)
    #expect(text.hasSuffix("\n"))
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map {
        $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
    }
    #expect(lines.count == n + 1)
    let names = FeatureExport.featureNames(set.record)
    #expect(names.count == f)
    #expect(Set(names).count == f)
    #expect(names.first == "c0_x0_y0_z0")
    #expect(lines.first == ["participant_id", "session_id", "diagnosis"] + names)
    var tableBits: [UInt32] = []
    for (r, fields) in lines.dropFirst().enumerated() {
        #expect(fields.count == 3 + f)
        guard fields.count == 3 + f, r < manifest.rows.count else { continue }
        let row = manifest.rows[r]
        #expect(fields[0] == row.participantID && fields[1] == row.sessionID)
        #expect(fields[2] == (row.diagnosis?.rawValue ?? "n/a"))
        for field in fields.dropFirst(3) {
            guard let value = Float(field) else {
                Issue.record("'\(field)' is not a float")
                continue
            }
            tableBits.append(value.bitPattern)
        }
    }
    #expect(tableBits == Ex.bits(array))

    // features.safetensors: the same tensor and the rows' identifiers.
    let (tensors, metadata) = try SafeTensors.read(from: root.appendingPathComponent(FeatureExport.safetensorsFile))
    guard case let .float32(stored)? = tensors["features"] else {
        Issue.record("no float32 'features' tensor: \(tensors.keys.sorted())")
        return
    }
    #expect(stored.shape == [n, f])
    #expect(Ex.bits(stored) == Ex.bits(array))
    func decoded(_ key: String) throws -> [String] {
        try JSONDecoder().decode([String].self, from: Data((metadata[key] ?? "").utf8))
    }
    #expect(try decoded("participant_id") == manifest.rows.map { $0.participantID })
    #expect(try decoded("session_id") == manifest.rows.map { $0.sessionID })
    #expect(try decoded("diagnosis") == manifest.rows.map { $0.diagnosis?.rawValue ?? "n/a" })
    #expect(try decoded("feature_names") == names)
}

@Test func featureNamesPadTheChannel() throws {
    let set = try Ex.extract(.sae, options: Ex.options(grid: [1, 2, 3]), shard: Shard(index: 1, count: 12))
    let names = FeatureExport.featureNames(set.record)
    #expect(names.count == set.record.featureCount)
    #expect(names.count == set.record.featureChannels * 6)
    // With 12 channels the channel is written with two digits; regions x-major, then y, then z.
    var record = set.record
    record.featureChannels = 12
    let padded = FeatureExport.featureNames(record)
    #expect(padded.count == 72)
    #expect(padded.first == "c00_x0_y0_z0")
    #expect(padded[1] == "c00_x0_y0_z1")
    #expect(padded[3] == "c00_x0_y1_z0")
    #expect(padded[6] == "c01_x0_y0_z0")
    #expect(padded.last == "c11_x0_y1_z2")
    record.featureChannels = 1
    #expect(FeatureExport.featureNames(record) == ["c0_x0_y0_z0", "c0_x0_y0_z1", "c0_x0_y0_z2", "c0_x0_y1_z0", "c0_x0_y1_z1", "c0_x0_y1_z2"])
}

// MARK: - Report

/// Element names and `section` ids of an XML document, and the parser's verdict.
private final class ReportParser: NSObject, XMLParserDelegate {
    var elements: [String] = []
    var sectionIDs: [String] = []

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName qName: String?,
                attributes attributeDict: [String: String] = [:]) {
        elements.append(elementName)
        if elementName == "section", let id = attributeDict["id"] { sectionIDs.append(id) }
    }

    static func parse(_ data: Data) -> (ok: Bool, error: String?, parsed: ReportParser) {
        let delegate = ReportParser()
        let parser = XMLParser(data: data)
        parser.delegate = delegate
        let ok = parser.parse()
        return (ok, parser.parserError.map { "\($0)" }, delegate)
    }
}

/// Brute-force ROC AUC: pairs where the positive is larger count 1, ties ½.
private func bruteForceAUC(positives: [Float], negatives: [Float]) -> Double {
    var total = 0.0
    for p in positives {
        for q in negatives { total += p > q ? 1 : (p == q ? 0.5 : 0) }
    }
    return total / Double(positives.count * negatives.count)
}

@Test(arguments: ExtractionTest.Model.allCases)
func reportIsSelfContainedAndConsistent(_ model: ExtractionTest.Model) throws {
    let root = temporaryFolder("report-\(model.rawValue)")
    defer { try? FileManager.default.removeItem(at: root) }
    let set = try Ex.extract(model, options: Ex.options(.max))
    let files = try Ex.writeOutputs(set, model: model, to: root)
    let (n, f) = (set.record.rows.count, set.record.featureCount)

    // report.html: well-formed XML, the six sections, inline figures only.
    let data = try #require(files[ExtractionOutput.reportFile])
    let (ok, error, parsed) = ReportParser.parse(data)
    #expect(ok, "report.html is not well-formed: \(error ?? "")")
    let sections = ["overview", "top-features", "pca", "filters", "reconstructions", "training"]
    #expect(parsed.sectionIDs == sections)
    #expect(!parsed.elements.contains("script"))
    #expect(!parsed.elements.contains("img"))
    let html = String(decoding: data, as: UTF8.self)
    #expect(html.hasPrefix("<!DOCTYPE html>"))
    #expect(!html.lowercased().contains("<script"))
    for id in sections { #expect(html.contains("<section id=\"\(id)\">"), "section \(id)") }
    for id in ["top-features", "pca", "filters", "reconstructions", "training"] {
        guard let start = html.range(of: "<section id=\"\(id)\">"), let end = html[start.upperBound...].range(of: "</section>") else { continue }
        let body = html[start.upperBound..<end.lowerBound]
        #expect(body.contains("<svg"), "section \(id) has no inline SVG figure")
    }
    let allowed = ["http://www.w3.org/2000/svg", "http://www.w3.org/1999/xhtml"]
    var rest = html[...]
    while let found = rest.range(of: "http") {
        let tail = html[found.lowerBound...]
        if !allowed.contains(where: { tail.hasPrefix($0) }) {
            Issue.record("report.html refers to \(tail.prefix(60))")
        }
        rest = html[found.upperBound...]
    }

    // feature_stats.tsv: one row per feature; its AUC is the brute-force one.
    let stats = String(decoding: try #require(files[ExtractionOutput.statisticsFile]), as: UTF8.self)
    let table = stats.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
    #expect(table.count == f + 1)
    let columns = table[0]
    let aucColumn = try #require(columns.firstIndex(of: "auc_AD_vs_CN"))
    let nameColumn = try #require(columns.firstIndex(of: "name"))
    #expect(table.dropFirst().allSatisfy { $0.count == columns.count })
    let names = FeatureExport.featureNames(set.record)
    #expect(table.dropFirst().map { $0[nameColumn] } == names)
    let labels = set.record.rows.map { $0.diagnosis }
    let adRows = labels.indices.filter { labels[$0] == .ad }
    let cnRows = labels.indices.filter { labels[$0] == .cn }
    #expect(adRows.count >= 2 && cnRows.count >= 2)
    for feature in [0, f / 2, f - 1] {
        let column = { (rows: [Int]) in rows.map { set.values.scalars[$0 * f + feature] } }
        let expected = bruteForceAUC(positives: column(adRows), negatives: column(cnRows))
        let written = try #require(Double(table[feature + 1][aucColumn]))
        #expect(abs(written - expected) <= 1e-12, "feature \(feature): AUC \(written), brute force \(expected)")
    }
    // The class sizes.
    let adCount = try #require(columns.firstIndex(of: "n_AD"))
    let cnCount = try #require(columns.firstIndex(of: "n_CN"))
    #expect(table[1][adCount] == String(adRows.count))
    #expect(table[1][cnCount] == String(cnRows.count))

    // summary.json: decodes, and its counts match.
    let summaryData = try #require(files[ExtractionOutput.summaryFile])
    let summary = try #require(try JSONSerialization.jsonObject(with: summaryData) as? [String: Any])
    #expect(summary["scans"] as? Int == n)
    #expect(summary["features"] as? Int == f)
    #expect(summary["feature_channels"] as? Int == set.record.featureChannels)
    #expect(summary["primary_contrast"] as? String == "AD vs CN")
    #expect((summary["skipped"] as? [Any])?.isEmpty == true)
    #expect(summary["model_sha256"] as? String == set.record.modelSha256)

    struct Headline: Decodable {
        var scans: Int
        var features: Int
        var grid: [Int]
        var pooling: String
        var classes: [String: Int]
        var unlabelled: Int
        var skipped: [SkippedScan]

        enum CodingKeys: String, CodingKey {
            case scans, features, grid, pooling, skipped
            case classes = "participants_per_class", unlabelled = "unlabelled_scans"
        }
    }
    let headline = try JSONDecoder().decode(Headline.self, from: summaryData)
    #expect(headline.scans == n && headline.features == f)
    #expect(headline.grid == [3, 3, 3] && headline.pooling == "max")
    // One session per participant in this cohort: participants per class equal rows per class.
    #expect(headline.classes["AD"] == adRows.count && headline.classes["CN"] == cnRows.count)
    #expect(headline.unlabelled == labels.filter { $0 == nil }.count)
    #expect(headline.skipped.isEmpty)
}

// MARK: - Overwrite

@Test func prepareRefusesAnExtractionUnlessOverwrite() throws {
    let root = temporaryFolder("prepare")
    defer { try? FileManager.default.removeItem(at: root) }
    // A new (nested) folder is created.
    let fresh = root.appendingPathComponent("a/b")
    try ExtractionOutput.prepare(fresh, overwrite: false)
    var isFolder: ObjCBool = false
    #expect(FileManager.default.fileExists(atPath: fresh.path, isDirectory: &isFolder) && isFolder.boolValue)
    // A folder with other files is fine.
    try Data("notes".utf8).write(to: fresh.appendingPathComponent("notes.txt"))
    try ExtractionOutput.prepare(fresh, overwrite: false)

    try Data([1, 2, 3]).write(to: fresh.appendingPathComponent(FeatureExport.arrayFile))
    do {
        try ExtractionOutput.prepare(fresh, overwrite: false)
        Issue.record("prepare accepted a folder holding features.npy")
    } catch let ExtractionError.io(message) {
        #expect(message.contains(FeatureExport.arrayFile))
        #expect(message.contains("--overwrite"))
    }
    try ExtractionOutput.prepare(fresh, overwrite: true)
    // Untouched until the new files are written.
    #expect(try Data(contentsOf: fresh.appendingPathComponent(FeatureExport.arrayFile)) == Data([1, 2, 3]))

    // A shard's files count as an extraction too.
    let shardFolder = root.appendingPathComponent("shard")
    try FileManager.default.createDirectory(at: shardFolder, withIntermediateDirectories: true)
    try Data("{}".utf8).write(to: shardFolder.appendingPathComponent(ShardFolder.recordFile))
    #expect(throws: ExtractionError.self) { try ExtractionOutput.prepare(shardFolder, overwrite: false) }
}
