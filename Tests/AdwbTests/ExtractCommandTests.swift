import Autoencoders
import Cohort
import Foundation
import Testing
import TestSupport
import VolumeIO

// End-to-end tests of `adwb extract`, running the built executable on a tiny cohort (six
// participants, 32³ voxels) and a tiny SAE trained once per process in-process.

private enum ExtractCLI {
    static let folder = FileManager.default.temporaryDirectory.appendingPathComponent("adwb-extract-cli-\(getpid())")

    static let manifest: URL = {
        atexit { try? FileManager.default.removeItem(at: ExtractCLI.folder) }
        var options = SyntheticCohortOptions()
        options.participants = 6
        options.shape = [32, 32, 32]
        options.voxelSize = 6
        options.proportions = [0.5, 0, 0.5]
        options.secondSessionFraction = 0
        do {
            return try SyntheticCohort.generate(options, to: folder.appendingPathComponent("cohort"), generator: "ExtractCommandTests").manifestURL
        } catch {
            fatalError("cannot generate the extract CLI test cohort: \(error)")
        }
    }()

    /// A one-layer SAE (3³ patches, 6 units), trained for one short epoch.
    static let run: URL = {
        var config = PretrainConfig(model: .sae)
        config.seed = 11
        config.patches.size = [3, 3, 3]
        config.patches.patchesPerEpoch = 200
        config.sae!.hidden = [6]
        config.training.batchSize = 50
        config.training.epochs = 1
        config.training.validationPatches = 50
        let output = folder.appendingPathComponent("run-sae")
        do {
            let setup = try Pretraining.start(config: config, manifest: manifest, output: output)
            _ = try setup.trainer.run()
        } catch {
            fatalError("cannot train the extract CLI test run: \(error)")
        }
        return output
    }()
}

private let outputFiles = ["features.npy", "features.tsv", "features.safetensors", "feature_stats.tsv", "summary.json", "report.html"]

/// Runs the built `adwb` with `arguments`.
private func adwb(_ arguments: [String], scratch: ScratchFolder) throws -> (status: Int32, stdout: String, stderr: String) {
    try runBuiltExecutable("adwb", arguments, scratch: scratch)
}

/// `adwb extract` on the shared run, small and on one thread.
private func extract(_ arguments: [String], scratch: ScratchFolder) throws -> (status: Int32, stdout: String, stderr: String) {
    try adwb(["extract", "--model", ExtractCLI.run.path, "--threads", "1", "--workers", "2"] + arguments, scratch: scratch)
}

private func bytes(_ folder: URL) -> [String: Data] {
    var files: [String: Data] = [:]
    for name in outputFiles { files[name] = try? Data(contentsOf: folder.appendingPathComponent(name)) }
    return files
}

/// The shared manifest with its paths made absolute and row `row`'s image replaced by `path`.
private func manifestReplacing(row: Int, with path: String, to url: URL) throws {
    let source = ExtractCLI.manifest
    let text = try String(contentsOf: source, encoding: .utf8)
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
    if lines.last == [""] { lines.removeLast() }
    let header = lines[0]
    let pathColumns = header.indices.filter { ["path", "mask_path", "label_path"].contains(header[$0]) }
    for r in 1..<lines.count {
        for column in pathColumns where column < lines[r].count && !lines[r][column].isEmpty && !lines[r][column].hasPrefix("/") {
            lines[r][column] = source.deletingLastPathComponent().appendingPathComponent(lines[r][column]).standardizedFileURL.path
        }
    }
    lines[row + 1][header.firstIndex(of: "path")!] = path
    try Data((lines.map { $0.joined(separator: "\t") }.joined(separator: "\n") + "\n").utf8).write(to: url)
}

@Test func extractWritesSixFilesAndShardsMergeToTheSame() throws {
    let scratch = try ScratchFolder("extract-run")
    defer { scratch.remove() }
    let manifest = ExtractCLI.manifest.path
    let single = scratch.url("single")
    let result = try extract(["--manifest", manifest, "--out", single.path, "--grid", "2x2x1", "--pool", "max"], scratch: scratch)
    #expect(result.status == 0, "\(result.stderr)")
    for name in outputFiles {
        let url = single.appendingPathComponent(name)
        #expect(result.stdout.contains("\(name): \(url.path)"), "stdout does not name \(name): \(result.stdout)")
        #expect(FileManager.default.fileExists(atPath: url.path), "\(name) missing")
    }

    // Two shards, merged (given in reverse order): the same six files, byte for byte.
    let (a, b, merged) = (scratch.url("shard-1"), scratch.url("shard-2"), scratch.url("merged"))
    for (index, folder) in [(1, a), (2, b)] {
        let shard = try extract(["--manifest", manifest, "--out", folder.path, "--grid", "2x2x1", "--pool", "max", "--shard", "\(index)/2"], scratch: scratch)
        #expect(shard.status == 0, "\(shard.stderr)")
        #expect(shard.stdout.contains("shard \(index)/2"))
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("shard.json").path))
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("features.npy").path))
    }
    let merge = try adwb(["extract", "merge", b.path, a.path, "--out", merged.path], scratch: scratch)
    #expect(merge.status == 0, "\(merge.stderr)")
    let (expected, got) = (bytes(single), bytes(merged))
    for name in outputFiles {
        #expect(expected[name] != nil && expected[name] == got[name], "\(name) differs between the single run and the merged shards")
    }

    // Extracting again into the same folder needs --overwrite.
    let again = try extract(["--manifest", manifest, "--out", single.path, "--grid", "2x2x1", "--pool", "max"], scratch: scratch)
    #expect(again.status != 0)
    #expect(again.stderr.contains("--overwrite"), "\(again.stderr)")
}

@Test func extractWritesFeatureMaps() throws {
    let scratch = try ScratchFolder("extract-maps")
    defer { scratch.remove() }
    let out = scratch.url("out")
    let result = try extract(["--manifest", ExtractCLI.manifest.path, "--out", out.path, "--grid", "1", "--feature-maps"], scratch: scratch)
    #expect(result.status == 0, "\(result.stderr)")
    let maps = out.appendingPathComponent("maps")
    #expect(result.stdout.contains("feature maps: \(maps.path)"))
    let manifest = try Manifest(contentsOf: ExtractCLI.manifest)
    let expected = manifest.rows.map { "\($0.participantID)_\($0.sessionID)_features.nii.gz" }.sorted()
    let found = try FileManager.default.contentsOfDirectory(atPath: maps.path).sorted()
    #expect(found == (expected + ["index.tsv"]).sorted())
    for name in expected {
        let header = try VolumeReader.readHeader(maps.appendingPathComponent(name))
        #expect(header.dims.count == 4 && header.volumeCount >= 1, "\(name): dims \(header.dims)")
    }
    let index = try String(contentsOf: maps.appendingPathComponent("index.tsv"), encoding: .utf8)
    let lines = index.split(separator: "\n").map(String.init)
    #expect(lines.first == "participant_id\tsession_id\tfile")
    #expect(lines.dropFirst().map { $0.split(separator: "\t").last.map(String.init) ?? "" }.sorted() == expected)
    // No staging folder is left behind.
    #expect(try FileManager.default.contentsOfDirectory(atPath: out.path).allSatisfy { !$0.hasPrefix(".maps") })

    // Replacing the run without maps removes the old maps, which would contradict it.
    let again = try extract(["--manifest", ExtractCLI.manifest.path, "--out", out.path, "--grid", "2", "--overwrite"], scratch: scratch)
    #expect(again.status == 0, "\(again.stderr)")
    #expect(!FileManager.default.fileExists(atPath: maps.path))
}

@Test func aFailedRunLeavesNoFeatureMaps() throws {
    let scratch = try ScratchFolder("extract-maps-failed")
    defer { scratch.remove() }
    // A truncated scan in the last row: the first rows' maps are written, then the run stops.
    let manifest = scratch.url("manifest.tsv")
    let truncated = scratch.url("truncated.nii.gz")
    let rows = try Manifest(contentsOf: ExtractCLI.manifest).rows
    let source = try Data(contentsOf: try Manifest(contentsOf: ExtractCLI.manifest).url(for: rows[0].path))
    try source.prefix(source.count / 2).write(to: truncated)
    try manifestReplacing(row: rows.count - 1, with: truncated.path, to: manifest)
    let out = scratch.url("out")
    let failed = try extract(["--manifest", manifest.path, "--out", out.path, "--grid", "1", "--feature-maps", "--workers", "1"], scratch: scratch)
    #expect(failed.status != 0)
    let left = (try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? []
    #expect(left.isEmpty, "left behind: \(left)")
}

@Test func mergeRefusesToWriteIntoAShardAndLeftoverStagingNeedsOverwrite() throws {
    let scratch = try ScratchFolder("extract-merge-into-shard")
    defer { scratch.remove() }
    let shard = scratch.url("one")
    let made = try extract(["--manifest", ExtractCLI.manifest.path, "--out", shard.path, "--grid", "1", "--shard", "1/1"], scratch: scratch)
    #expect(made.status == 0, "\(made.stderr)")
    let merged = try adwb(["extract", "merge", shard.path, "--out", shard.path, "--overwrite"], scratch: scratch)
    #expect(merged.status != 0 && merged.stderr.contains("must not be one of the shards"), "\(merged.stderr)")
    #expect(FileManager.default.fileExists(atPath: shard.appendingPathComponent("shard.json").path))

    // A killed run's staging folder counts as an output: refused, then removed by --overwrite.
    let out = scratch.url("out")
    try FileManager.default.createDirectory(at: out.appendingPathComponent(".maps.partial-1234"), withIntermediateDirectories: true)
    let refused = try extract(["--manifest", ExtractCLI.manifest.path, "--out", out.path, "--grid", "1"], scratch: scratch)
    #expect(refused.status != 0 && refused.stderr.contains(".maps.partial-1234"), "\(refused.stderr)")
    let replaced = try extract(["--manifest", ExtractCLI.manifest.path, "--out", out.path, "--grid", "1", "--overwrite"], scratch: scratch)
    #expect(replaced.status == 0, "\(replaced.stderr)")
    #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent(".maps.partial-1234").path))
}

@Test func anExplicitShardOfOneIsAShard() throws {
    let scratch = try ScratchFolder("extract-shard-one")
    defer { scratch.remove() }
    let out = scratch.url("one")
    let result = try extract(["--manifest", ExtractCLI.manifest.path, "--out", out.path, "--grid", "1", "--shard", "1/1"], scratch: scratch)
    #expect(result.status == 0, "\(result.stderr)")
    #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("shard.json").path))
    #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("features.npy").path))
    let merged = try adwb(["extract", "merge", out.path, "--out", scratch.url("merged").path], scratch: scratch)
    #expect(merged.status == 0, "\(merged.stderr)")
}

@Test func extractNamesABadScanOrSkipsIt() throws {
    let scratch = try ScratchFolder("extract-bad")
    defer { scratch.remove() }
    let missing = scratch.url("no-such-scan.nii.gz").path
    let manifest = scratch.url("manifest.tsv")
    try manifestReplacing(row: 2, with: missing, to: manifest)

    let failed = try extract(["--manifest", manifest.path, "--out", scratch.url("out").path, "--grid", "1"], scratch: scratch)
    #expect(failed.status != 0)
    #expect(failed.stderr.contains("manifest line 4"), "\(failed.stderr)")
    #expect(failed.stderr.contains(missing), "\(failed.stderr)")
    #expect(failed.stderr.contains("--skip-bad"), "\(failed.stderr)")

    let skipped = try extract(["--manifest", manifest.path, "--out", scratch.url("out-skip").path, "--grid", "1", "--skip-bad"], scratch: scratch)
    #expect(skipped.status == 0, "\(skipped.stderr)")
    #expect(skipped.stdout.contains("skipped 1 scan(s)"), "\(skipped.stdout)")
    #expect(skipped.stdout.contains("manifest line 4"), "\(skipped.stdout)")
    #expect(skipped.stdout.contains(missing), "\(skipped.stdout)")
}

@Test(arguments: [(["--grid", "0"], "grid"), (["--shard", "5/2"], "shard '5/2'"), (["--grid", "2x2"], "grid"), (["--workers", "0"], "--workers")])
func extractRejectsBadOptions(_ arguments: [String], _ mention: String) throws {
    let scratch = try ScratchFolder("extract-options")
    defer { scratch.remove() }
    let out = scratch.url("out")
    let result = try extract(["--manifest", ExtractCLI.manifest.path, "--out", out.path] + arguments, scratch: scratch)
    #expect(result.status != 0)
    #expect(result.stderr.contains(mention), "\(arguments): \(result.stderr)")
    // Rejected before anything is written.
    #expect(!FileManager.default.fileExists(atPath: out.path))
}
