import Cohort
import Autoencoders
import Extraction
import Foundation
import TensorCore
import Testing
import VolumeIO

/// Options and files that must be refused with a clear error, never a trap or a silent mix.
@Suite struct ExtractionEdgeTests {
    @Test func aGridThatFitsNoScanIsAnOptionError() throws {
        // The CAE's map of a 40³ scan is 10³: a 12-region grid fits none of the scans.
        #expect {
            _ = try ExtractionTest.extract(.cae, options: ExtractionTest.options(grid: [12, 1, 1]), skipBad: true)
        } throws: { error in
            guard case let ExtractionError.invalidOption(message) = error else { return false }
            return message.contains("none of the scans") && message.contains("12x1x1")
        }
    }

    @Test func aShardWhoseScansTheGridFitsNoneOfIsAnEmptyShard() throws {
        // A manifest whose last row is a scan too small for the CAE's map and a 3³ grid: the
        // shard holding only that row must merge like a whole run that skips it.
        let folder = temporaryFolder("misfit-shard")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let small = folder.appendingPathComponent("small.nii.gz")
        try VolumeWriter.write(try Volume(data: Tensor(repeating: 1, shape: [8, 8, 8]), affine: .identity), to: small)
        var (header, rows) = try ExtractionTest.absoluteManifest()
        var extra = rows[0]
        extra[header.firstIndex(of: "participant_id")!] = "sub-small"
        extra[header.firstIndex(of: "path")!] = small.path
        if let mask = header.firstIndex(of: "mask_path") { extra[mask] = "" }
        if let label = header.firstIndex(of: "label_path") { extra[label] = "" }
        rows.append(extra)
        let manifest = folder.appendingPathComponent("manifest.tsv")
        try ([header] + rows).map { $0.joined(separator: "\t") }.joined(separator: "\n").appending("\n").write(to: manifest, atomically: true, encoding: .utf8)

        let whole = try ExtractionTest.extract(.cae, manifest: manifest, skipBad: true)
        #expect(whole.record.skipped.count == 1)
        let count = rows.count
        let last = Shard(index: count, count: count)
        let lastShard = try ExtractionTest.extract(.cae, shard: last, manifest: manifest, skipBad: true)
        #expect(lastShard.record.rows.isEmpty && lastShard.record.skipped.count == 1)
        var shards = [lastShard]
        for index in 1..<count { shards.append(try ExtractionTest.extract(.cae, shard: Shard(index: index, count: count), manifest: manifest, skipBad: true)) }
        let merged = try ShardFolder.merge(shards)
        #expect(merged == whole)
    }

    @Test func aTileBudgetBelowOneRowIsWarnedAboutOnceAndChangesNothing() throws {
        var resources = ExtractionTest.resources(workers: 2)
        resources.tileMegabytes = 0
        var warnings: [String] = []
        let tight = try Extraction.run(model: ExtractionTest.Model.sae.url, manifest: ExtractionCohort.manifest, options: ExtractionTest.options(),
                                       resources: resources, warn: { warnings.append($0) })
        #expect(warnings.count == 1 && warnings[0].contains("tile budget"), "\(warnings)")
        #expect(tight == (try ExtractionTest.extract(.sae)))
        warnings = []
        _ = try Extraction.run(model: ExtractionTest.Model.sae.url, manifest: ExtractionCohort.manifest, options: ExtractionTest.options(),
                               resources: ExtractionTest.resources(workers: 2), warn: { warnings.append($0) })
        #expect(warnings.isEmpty)
    }

    @Test func stackedAutoencoderOptionsAreRefusedForAConvolutionalOne() throws {
        var options = ExtractionOptions()
        options.saeLevels = 1
        #expect(throws: ExtractionError.self) { _ = try ExtractionTest.extract(.cae, options: options) }
        options = ExtractionOptions()
        options.saeDeepLayers = .pooled
        #expect(throws: ExtractionError.self) { _ = try ExtractionTest.extract(.cae, options: options) }
    }

    @Test func mergeNoticesAnEditedModelConfiguration() throws {
        let set = try ExtractionTest.extract(.cae, shard: Shard(index: 1, count: 1))
        let run = try PretrainedRun.load(ExtractionTest.Model.cae.url)
        try ExtractionOutput.checkModel(run, matches: set.record)
        var edited = set.record
        edited.modelConfigSha256 = String(repeating: "0", count: 64)
        #expect(throws: ExtractionError.self) { try ExtractionOutput.checkModel(run, matches: edited) }
    }

    @Test func mergingShardsWithoutRowsIsNoUsableScan() throws {
        var empty = try ExtractionTest.extract(.cae, shard: Shard(index: 1, count: 1))
        empty.record.rows = []
        empty.values = Tensor(zeros: [0, empty.record.featureCount])
        #expect {
            _ = try ShardFolder.merge([empty])
        } throws: { error in
            guard case ExtractionError.noUsableScan = error else { return false }
            return true
        }
    }

    @Test func craftedShardFilesAreRefusedNotTrapped() throws {
        let folder = temporaryFolder("crafted-shard")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let set = try ExtractionTest.extract(.cae, shard: Shard(index: 1, count: 2))
        try ShardFolder.write(set, to: folder)
        let recordURL = folder.appendingPathComponent(ShardFolder.recordFile)
        let original = try String(contentsOf: recordURL, encoding: .utf8)

        // A grid whose region count would overflow.
        let hugeGrid = original.replacingOccurrences(of: "\"grid\" : [\n      3,\n      3,\n      3\n    ]",
                                                     with: "\"grid\" : [10000000, 10000000, 10000000]")
        #expect(hugeGrid != original)
        try hugeGrid.write(to: recordURL, atomically: true, encoding: .utf8)
        #expect(throws: ExtractionError.self) { _ = try ShardFolder.read(folder) }

        // A row outside the shard's range, and one with a broken grid.
        for (from, to) in [("\"index\" : 0", "\"index\" : -1"), ("\"shape\" : [\n        40,", "\"shape\" : [\n")] {
            let edited = original.replacingOccurrences(of: from, with: to)
            #expect(edited != original, "\(from)")
            try edited.write(to: recordURL, atomically: true, encoding: .utf8)
            #expect(throws: ExtractionError.self) { _ = try ShardFolder.read(folder) }
        }

        // A shard count of 0.
        let zeroCount = original.replacingOccurrences(of: "\"count\" : 2", with: "\"count\" : 0")
        #expect(zeroCount != original)
        try zeroCount.write(to: recordURL, atomically: true, encoding: .utf8)
        #expect(throws: ExtractionError.self) { _ = try ShardFolder.read(folder) }

        // An array header claiming 2^62 rows.
        try original.write(to: recordURL, atomically: true, encoding: .utf8)
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 1), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
        bytes += Array(header.utf8) + [0, 0, 0, 0]
        try Data(bytes).write(to: folder.appendingPathComponent(ShardFolder.arrayFile))
        #expect(throws: NumpyFileError.self) { _ = try ShardFolder.read(folder) }
    }
}
