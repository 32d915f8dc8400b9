import ArgumentParser
import Cohort
import Foundation
import Testing
@testable import adwb
@testable import VolumeIO

private let fixtureURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/synth_fixtures.json")

/// What Tests/Fixtures/make_synth_fixtures.py recorded with nibabel.
private struct SynthFixture: Decodable {
    struct Probe: Decodable { var voxel: [Int]; var value: Double }
    struct File: Decodable {
        var sha256_uncompressed: String
        var shape: [Int]
        var dtype: String
        var affine: [Double]
        var sum: Double
        var min: Double
        var max: Double
        var nonzero: Int
        var probes: [Probe]
    }
    var recipe: [String]
    var rows: [[String: String]]
    var files: [String: File]
}

private func temporaryFolder(_ name: String) -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("adwb-\(name)-\(UUID().uuidString)")
}

/// A .gz file's decompressed bytes.
private func decompressed(_ url: URL) throws -> Data {
    let (source, _, _) = try openByteSource(path: url.path)
    var data = Data()
    while true {
        let chunk = try source.readBytes(1 << 20)
        data.append(contentsOf: chunk)
        if chunk.count < 1 << 20 { return data }
    }
}

private func run(_ arguments: [String]) throws {
    var command = try ADWorkbench.parseAsRoot(arguments)
    try command.run()
}

@Test func synthMatchesWhatNibabelRead() throws {
    let fixture = try JSONDecoder().decode(SynthFixture.self, from: Data(contentsOf: fixtureURL))
    let out = temporaryFolder("synth")
    defer { try? FileManager.default.removeItem(at: out) }
    try run(["synth"] + fixture.recipe + ["--out", out.path])
    let manifest = try Manifest(contentsOf: out.appendingPathComponent("manifest.tsv"))
    #expect(manifest.rows.map(\.path) == fixture.rows.map { $0["path"] ?? "" })
    #expect(manifest.rows.map { $0.diagnosis?.rawValue ?? "" } == fixture.rows.map { $0["diagnosis"] ?? "-" })
    #expect(fixture.files.count == 3 * manifest.rows.count)
    for (path, expected) in fixture.files.sorted(by: { $0.key < $1.key }) {
        let url = out.appendingPathComponent(path)
        // The same bytes as the files nibabel read when the fixture was made.
        #expect(SHA256.hex(try decompressed(url)) == expected.sha256_uncompressed, "\(path)")
        let volume = try VolumeReader.read(url)
        #expect(volume.shape == expected.shape)
        #expect(volume.header?.datatype.description == expected.dtype)
        #expect(volume.affine.entries == expected.affine)
        let values = volume.data.scalars
        #expect(values.reduce(0.0) { $0 + Double($1) } == expected.sum)
        #expect(Double(values.min() ?? .nan) == expected.min && Double(values.max() ?? .nan) == expected.max)
        #expect(values.filter { $0 != 0 }.count == expected.nonzero)
        for probe in expected.probes {
            #expect(Double(volume.data[probe.voxel[0], probe.voxel[1], probe.voxel[2]]) == probe.value)
        }
    }
}

@Test func manifestCommandsValidateSplitAndCheck() throws {
    let out = temporaryFolder("manifest")
    defer { try? FileManager.default.removeItem(at: out) }
    try run(["synth", "--participants", "20", "--shape", "64", "--voxel-size", "3", "--out", out.appendingPathComponent("cohort").path])
    let manifest = out.appendingPathComponent("cohort/manifest.tsv").path
    try run(["manifest", "validate", manifest, "--folds", "2"])

    // A split: folders, test set, and a clean leakage check.
    let splits = out.appendingPathComponent("splits")
    try run(["manifest", "split", manifest, "--folds", "2", "--test-fraction", "0.2", "--seed", "3", "--out", splits.path])
    for name in ["split-0/train.tsv", "split-0/validation.tsv", "split-1/train.tsv", "split-1/validation.tsv", "test.tsv", "split.json"] {
        #expect(FileManager.default.fileExists(atPath: splits.appendingPathComponent(name).path), "\(name)")
    }
    try run(["manifest", "check-split", splits.path])
    // Other split-* entries beside the folds are not folds.
    try FileManager.default.createDirectory(at: splits.appendingPathComponent("split-notes"), withIntermediateDirectories: true)
    try run(["manifest", "check-split", splits.path])
    let fold = try SplitFolder(splits.appendingPathComponent("split-1"))
    #expect(fold.test != nil)
    // The written folds point at the scans (paths rebased onto split-<i>/).
    for row in fold.validation.rows { #expect(FileManager.default.fileExists(atPath: fold.validation.url(for: row.path).path)) }

    // Leak a training participant into validation: check-split fails, naming it.
    let train = splits.appendingPathComponent("split-0/train.tsv")
    let validation = splits.appendingPathComponent("split-0/validation.tsv")
    let trainLines = try String(contentsOf: train, encoding: .utf8).split(separator: "\n")
    let leaked = trainLines.first { $0.contains("\tCN\t") || $0.contains("\tAD\t") || $0.contains("\tMCI\t") }!
    try (String(contentsOf: validation, encoding: .utf8) + leaked + "\n").write(to: validation, atomically: true, encoding: .utf8)
    let participant = String(leaked.split(separator: "\t")[0])
    #expect { try run(["manifest", "check-split", splits.path]) } throws: { error in
        (error as? CohortError)?.description == "data leakage: participant \(participant) is in train and validation"
    }
}

@Test func validateExitsNonZeroOnErrorsOnly() throws {
    let out = temporaryFolder("validate")
    defer { try? FileManager.default.removeItem(at: out) }
    try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
    let broken = out.appendingPathComponent("broken.tsv")
    try "participant_id\tsession_id\tpath\tdiagnosis\nsub-01\tses-M000\tmissing.nii.gz\tAD\n".write(to: broken, atomically: true, encoding: .utf8)
    #expect(throws: ExitCode(1)) { try run(["manifest", "validate", broken.path]) }
    #expect(throws: ExitCode(1)) { try run(["manifest", "validate", broken.path, "--json"]) }
    // Without file checks only warnings remain (one class, fewer participants than folds).
    try run(["manifest", "validate", broken.path, "--no-check-files"])
}

@Test func importerWritesAManifestThatValidates() throws {
    let out = temporaryFolder("import")
    defer { try? FileManager.default.removeItem(at: out) }
    let cohort = out.appendingPathComponent("bids")
    try run(["synth", "--participants", "6", "--shape", "64", "--voxel-size", "3", "--out", cohort.path])
    let imported = out.appendingPathComponent("manifests/bids.tsv")
    try FileManager.default.createDirectory(at: imported.deletingLastPathComponent(), withIntermediateDirectories: true)
    try run(["manifest", "from-bids", cohort.path, "--out", imported.path])
    let manifest = try Manifest(contentsOf: imported)
    #expect(manifest.rows.count >= 6 && manifest.rows.allSatisfy { $0.path.hasPrefix("../bids/sub-") })
    try run(["manifest", "validate", imported.path, "--folds", "1"])
}

@Test func synthRejectsBadOptions() {
    let out = temporaryFolder("rejected").path
    let isOptionError = { (error: any Error) in error is ValidationError || error is CohortError }
    for bad in [["--proportions", "a,b,c"], ["--shape", "40", "--voxel-size", "2"], ["--effect", "5"], ["--shape", "1e30"],
                ["--shape", "96.5"], ["--proportions", "1e308,1e308,0"]] {
        #expect(performing: { try run(["synth", "--out", out] + bad) }, throws: isOptionError)
    }
    // Refused before anything was written.
    #expect(!FileManager.default.fileExists(atPath: out))
}

@Test func progressBarLine() {
    #expect(ProgressBar.line(label: "synth", done: 0, total: 4, elapsed: 0, width: 8) == "synth [--------] 0/4")
    #expect(ProgressBar.line(label: "synth", done: 2, total: 4, elapsed: 10, width: 8) == "synth [####----] 2/4  0:10 left")
    #expect(ProgressBar.line(label: "synth", done: 4, total: 4, elapsed: 3.25, width: 8) == "synth [########] 4/4  3.2 s")
}
