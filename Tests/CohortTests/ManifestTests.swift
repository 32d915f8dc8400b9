import Foundation
import Testing
import TensorCore
import TestSupport
import VolumeIO
import Cohort

// MARK: - Fixtures shared by the Cohort suites

/// Files the Cohort tests build in temporary folders.
enum Fixture {
    /// Writes UTF-8 text, creating the parent folders.
    static func write(_ text: String, to url: URL) throws {
        try writeBytes(Array(text.utf8), to: url)
    }

    static func writeBytes(_ bytes: [UInt8], to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: url)
    }

    /// An empty file (importers only look at names).
    static func touch(_ url: URL) throws { try write("", to: url) }

    static func folder(_ url: URL) throws {
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// TSV text: fields joined by tabs, one row a line, LF line ends.
    static func tsv(_ rows: [[String]]) -> String {
        rows.map { $0.joined(separator: "\t") }.joined(separator: "\n") + "\n"
    }

    /// A tiny float32 NIfTI-1 volume; voxel `i` (flat, x fastest on disk) holds `value(i)`.
    static func volume(_ url: URL, shape: [Int] = [6, 7, 5], voxelSize: [Double] = [1, 1, 1],
                       value: (Int) -> Float = { Float($0 % 17) }) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let count = shape.reduce(1, *)
        let data = try Tensor(shape: shape, scalars: (0..<count).map(value))
        try VolumeWriter.write(try Volume(data: data, affine: Affine.scaling(voxelSize)), to: url)
    }

    /// A 4-D NIfTI-1 file of `volumes` volumes of `shape`: the writer makes 3-D files only, so
    /// this writes `[X, Y, Z * volumes]` (the same bytes) and patches `dim[0]`, `dim[3]`, `dim[4]`.
    static func fourDimensionalVolume(_ url: URL, shape: [Int] = [6, 7, 5], volumes: Int = 2) throws {
        try volume(url, shape: [shape[0], shape[1], shape[2] * volumes])
        var bytes = [UInt8](try Data(contentsOf: url))
        func int16(_ offset: Int, _ value: Int) {
            bytes[offset] = UInt8(value & 0xff)
            bytes[offset + 1] = UInt8((value >> 8) & 0xff)
        }
        int16(40, 4)          // dim[0]: four axes
        int16(46, shape[2])   // dim[3]
        int16(48, volumes)    // dim[4]
        try Data(bytes).write(to: url)
    }

    /// Bytes from a seeded generator (garbage "scans").
    static func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var generator = Xoshiro256StarStar(seed: seed)
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
    }

    static func exists(_ url: URL) -> Bool { FileManager.default.fileExists(atPath: url.path) }
}

// MARK: - TSV parsing

@Suite struct TSVTableTests {
    @Test func parsesHeaderAndNumberedLines() {
        let table = TSVTable(text: "a\tb\tc\n1\t\t3\n 4 \t5\t6\n")
        #expect(table.header == ["a", "b", "c"])
        #expect(table.lines.map(\.number) == [2, 3])
        // Empty fields are kept; spaces around fields are trimmed.
        #expect(table.lines.map(\.fields) == [["1", "", "3"], ["4", "5", "6"]])
        #expect(table.column("b") == 1)
        #expect(table.column("z") == nil)
    }

    @Test func blankLinesAreSkippedButStillCounted() {
        let table = TSVTable(text: "\na\tb\n\n1\t2\n   \n\t\n3\t4")
        #expect(table.header == ["a", "b"])
        #expect(table.lines.map(\.number) == [4, 7])
        #expect(table.lines.map(\.fields) == [["1", "2"], ["3", "4"]])
    }

    @Test func byteOrderMarkIsDropped() throws {
        let table = TSVTable(text: "\u{FEFF}participant_id\tpath\nsub-01\tx.nii\n")
        #expect(table.header == ["participant_id", "path"])
        #expect(table.column("participant_id") == 0)

        // The same from a file whose first bytes are EF BB BF.
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("bom.tsv")
            try Fixture.writeBytes([0xEF, 0xBB, 0xBF] + Array("participant_id\tpath\nsub-01\tx.nii\n".utf8), to: url)
            let read = try TSVTable(contentsOf: url)
            #expect(read.header == ["participant_id", "path"])
            #expect(read.lines.map(\.fields) == [["sub-01", "x.nii"]])
        }
    }

    @Test func crlfLineEndsAreAccepted() throws {
        // In Swift "\r\n" is one Character: splitting on "\n" alone would not split CRLF text.
        let table = TSVTable(text: "a\tb\r\n1\t2\r\n\r\n3\t4\r\n")
        #expect(table.header == ["a", "b"])
        #expect(table.lines.map(\.number) == [2, 4])
        #expect(table.lines.map(\.fields) == [["1", "2"], ["3", "4"]])
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("crlf.tsv")
            try Fixture.write("participant_id\tsession_id\tpath\tdiagnosis\r\nsub-01\tses-M000\ta.nii\tCN\r\n", to: url)
            let manifest = try Manifest(contentsOf: url)
            #expect(manifest.rows.map(\.participantID) == ["sub-01"])
            #expect(manifest.rows.first?.diagnosis == .cn)
        }
    }

    @Test func missingFileIsCannotRead() throws {
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("nope.tsv")
            let error = #expect(throws: CohortError.self) { try TSVTable(contentsOf: url) }
            guard case let .cannotRead(path, _) = error else {
                Issue.record("expected cannotRead, got \(String(describing: error))")
                return
            }
            #expect(path == url.path)
        }
    }

    @Test func textReplacesTabsAndLineBreaksInsideFields() {
        let table = TSVTable(header: ["a", "b"], lines: TSVTable(text: "x\ty\n1\t2\n").lines)
        #expect(table.text == "a\tb\n1\t2\n")
        var edited = TSVTable(text: "a\tb\n1\t2\n")
        edited.header = ["a\tz", "b"]
        #expect(edited.text == "a z\tb\n1\t2\n")
        #expect(TSVTable(text: edited.text).header == ["a z", "b"])
    }
}

// MARK: - Manifests

/// A manifest exercising every column kind, written in `directory/cohort/manifest.tsv`, with
/// the files it names (empty files; reading a manifest does not open them).
struct SampleManifest {
    let root: URL
    var cohort: URL { root.appendingPathComponent("cohort") }
    var url: URL { cohort.appendingPathComponent("manifest.tsv") }
    var absoluteScan: URL { root.appendingPathComponent("elsewhere/sub-02_ses-M000.nii") }

    /// Extras `zeta` and `alpha` are deliberately not in alphabetical order and interleaved
    /// with the schema's columns.
    var header: [String] {
        ["participant_id", "zeta", "session_id", "path", "diagnosis", "age", "sex", "mmse", "cdr", "mask_path", "alpha"]
    }

    var rows: [[String]] {
        [
            ["sub-01", "z1", "ses-M000", "scans/sub-01_ses-M000.nii", "NC", "71.5", "F", "29", "0", "masks/sub-01_ses-M000_mask.nii", "a1"],
            ["sub-01", "z2", "ses-M012", "scans/sub-01_ses-M012.nii", "cn", "72.5", "F", "28", "0.5", "", "a2"],
            ["sub-02", "z3", "ses-M000", absoluteScan.path, "unlabeled", "n/a", "n/a", "", "", "", "a3"],
            ["sub-03", "", "ses-M000", "scans/sub-03_ses-M000.nii", "", "60", "M", "30", "0", "", ""],
            ["sub-04", "z5", "ses-M000", "scans/sub-04_ses-M000.nii", "AD", "80", "F", "18", "2", "masks/sub-04_ses-M000_mask.nii", "a5"],
            ["sub-05", "z6", "ses-M000", "scans/sub-05_ses-M000.nii", "mci", "65", "M", "26", "0.5", "", "a6"],
        ]
    }

    init(root: URL) throws {
        self.root = root
        try Fixture.write(Fixture.tsv([header] + rows), to: url)
        for row in rows {
            let path = row[3]
            try Fixture.touch(path.hasPrefix("/") ? URL(fileURLWithPath: path) : cohort.appendingPathComponent(path))
            if !row[9].isEmpty { try Fixture.touch(cohort.appendingPathComponent(row[9])) }
        }
    }
}

@Suite struct ManifestReadingTests {
    @Test func readsEveryColumnOfAGoodManifest() throws {
        try withTemporaryDirectory { directory in
            let sample = try SampleManifest(root: directory)
            let manifest = try Manifest(contentsOf: sample.url)
            #expect(manifest.directory == sample.cohort.standardizedFileURL)
            #expect(manifest.rows.count == 6)
            #expect(manifest.rows.map(\.line) == [2, 3, 4, 5, 6, 7])
            #expect(manifest.participants == ["sub-01", "sub-02", "sub-03", "sub-04", "sub-05"])

            // NC is CN; case is ignored; empty and "unlabeled" are unlabelled.
            #expect(manifest.rows.map(\.diagnosis) == [.cn, .cn, nil, nil, .ad, .mci])
            #expect(manifest.labeled.rows.map(\.participantID) == ["sub-01", "sub-01", "sub-04", "sub-05"])

            let first = manifest.rows[0]
            #expect(first.participantID == "sub-01" && first.sessionID == "ses-M000")
            #expect(first.age == 71.5 && first.sex == "F" && first.mmse == 29 && first.cdr == 0)
            #expect(first.maskPath == "masks/sub-01_ses-M000_mask.nii")
            #expect(first.labelPath == nil && first.site == nil)
            #expect(first.extra == ["zeta": "z1", "alpha": "a1"])
            #expect(manifest.rows[1].cdr == 0.5 && manifest.rows[1].maskPath == nil)

            // "n/a" and empty optional fields are absent.
            let unlabelled = manifest.rows[2]
            #expect(unlabelled.age == nil && unlabelled.sex == nil && unlabelled.mmse == nil && unlabelled.cdr == nil)
            #expect(manifest.rows[3].extra == ["zeta": "", "alpha": ""])

            // Optional columns in schema order; unknown ones in the order they appeared.
            #expect(manifest.optionalColumns == ["age", "sex", "mmse", "cdr", "mask_path"])
            #expect(manifest.extraColumns == ["zeta", "alpha"])
            #expect(manifest.columns == ["participant_id", "session_id", "path", "diagnosis",
                                         "age", "sex", "mmse", "cdr", "mask_path", "zeta", "alpha"])
        }
    }

    @Test func relativePathsResolveAgainstTheManifestFolderAndAbsoluteOnesStay() throws {
        try withTemporaryDirectory { directory in
            let sample = try SampleManifest(root: directory)
            let manifest = try Manifest(contentsOf: sample.url)
            #expect(manifest.url(for: manifest.rows[0].path)
                    == sample.cohort.appendingPathComponent("scans/sub-01_ses-M000.nii").standardizedFileURL)
            #expect(manifest.url(for: manifest.rows[2].path) == sample.absoluteScan.standardizedFileURL)
            #expect(manifest.url(for: "./scans/../scans/x.nii") == sample.cohort.appendingPathComponent("scans/x.nii").standardizedFileURL)
            for row in manifest.rows {
                #expect(Fixture.exists(manifest.url(for: row.path)), "\(row.path)")
                if let mask = row.maskPath { #expect(Fixture.exists(manifest.url(for: mask)), "\(mask)") }
            }
        }
    }

    @Test func roundTripReadWriteReadKeepsEveryRow() throws {
        try withTemporaryDirectory { directory in
            let sample = try SampleManifest(root: directory)
            let manifest = try Manifest(contentsOf: sample.url)
            let copy = sample.cohort.appendingPathComponent("copy.tsv")
            try manifest.write(to: copy)
            let back = try Manifest(contentsOf: copy)
            #expect(back.rows == manifest.rows)
            #expect(back == manifest)

            let text = try String(contentsOf: copy, encoding: .utf8)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            // Header: required, optional present (schema order), extras (as they appeared).
            #expect(lines[0] == "participant_id\tsession_id\tpath\tdiagnosis\tage\tsex\tmmse\tcdr\tmask_path\tzeta\talpha")
            // Canonical values: CN for NC, whole numbers without ".0", empty for absent.
            #expect(lines[1] == "sub-01\tses-M000\tscans/sub-01_ses-M000.nii\tCN\t71.5\tF\t29\t0\tmasks/sub-01_ses-M000_mask.nii\tz1\ta1")
            #expect(lines[3] == "sub-02\tses-M000\t\(sample.absoluteScan.path)\t\t\t\t\t\t\tz3\ta3")
            #expect(text.hasSuffix("\n") && lines.count == 8)
        }
    }

    @Test func writingIntoAnotherFolderRebasesRelativePaths() throws {
        try withTemporaryDirectory { directory in
            let sample = try SampleManifest(root: directory)
            let manifest = try Manifest(contentsOf: sample.url)
            let elsewhere = directory.appendingPathComponent("out/nested/moved.tsv")
            try Fixture.folder(elsewhere.deletingLastPathComponent())
            try manifest.write(to: elsewhere)
            let moved = try Manifest(contentsOf: elsewhere)

            #expect(moved.rows[0].path == "../../cohort/scans/sub-01_ses-M000.nii")
            #expect(moved.rows[0].maskPath == "../../cohort/masks/sub-01_ses-M000_mask.nii")
            #expect(moved.rows[2].path == sample.absoluteScan.path, "absolute paths stay absolute")
            #expect(moved.rows.count == manifest.rows.count)
            for (original, rebased) in zip(manifest.rows, moved.rows) {
                #expect(moved.url(for: rebased.path) == manifest.url(for: original.path))
                #expect(Fixture.exists(moved.url(for: rebased.path)))
                #expect(rebased.maskPath.map(moved.url(for:)) == original.maskPath.map(manifest.url(for:)))
                // Everything but the paths is unchanged.
                var same = rebased
                same.path = original.path
                same.maskPath = original.maskPath
                #expect(same == original)
            }

            // And back again into the original folder: the original paths.
            let again = sample.cohort.appendingPathComponent("again.tsv")
            try moved.write(to: again)
            #expect(try Manifest(contentsOf: again).rows == manifest.rows)
        }
    }

    @Test func writingIntoASubfolderAndASiblingFolder() throws {
        let directory = URL(fileURLWithPath: "/data/cohort")
        let manifest = Manifest(directory: directory, rows: [
            ManifestRow(participantID: "sub-01", sessionID: "ses-M000", path: "sub-01/anat/t1.nii.gz", diagnosis: .ad),
            ManifestRow(participantID: "sub-02", sessionID: "ses-M000", path: "t1.nii", diagnosis: nil),
        ])
        let sub = manifest.table(relativeTo: directory.appendingPathComponent("splits/split-0"))
        #expect(sub.lines.map { $0.fields[2] } == ["../../sub-01/anat/t1.nii.gz", "../../t1.nii"])
        let inside = manifest.table(relativeTo: directory.appendingPathComponent("sub-01"))
        #expect(inside.lines.map { $0.fields[2] } == ["anat/t1.nii.gz", "../t1.nii"])
        let sibling = manifest.table(relativeTo: URL(fileURLWithPath: "/data/cohort2"))
        #expect(sibling.lines.map { $0.fields[2] } == ["../cohort/sub-01/anat/t1.nii.gz", "../cohort/t1.nii"])
        #expect(manifest.table(relativeTo: directory).lines.map { $0.fields[2] } == ["sub-01/anat/t1.nii.gz", "t1.nii"])
    }

    @Test func columnsOfAManifestMadeInCode() {
        let manifest = Manifest(directory: URL(fileURLWithPath: "/data"), rows: [
            ManifestRow(participantID: "sub-01", sessionID: "ses-M000", path: "a.nii", diagnosis: .cn, mmse: 30, site: "X"),
            ManifestRow(participantID: "sub-02", sessionID: "ses-M000", path: "b.nii", diagnosis: .ad, age: 70),
        ])
        // Optional columns that some row fills, in schema order.
        #expect(manifest.optionalColumns == ["age", "mmse", "site"])
        #expect(manifest.table(relativeTo: manifest.directory).text
                == "participant_id\tsession_id\tpath\tdiagnosis\tage\tmmse\tsite\nsub-01\tses-M000\ta.nii\tCN\t\t30\tX\nsub-02\tses-M000\tb.nii\tAD\t70\t\t\n")
    }
}

@Suite struct ContentHashTests {
    @Test func hashIsStable() throws {
        try withTemporaryDirectory { directory in
            let sample = try SampleManifest(root: directory)
            let manifest = try Manifest(contentsOf: sample.url)
            let hash = manifest.contentHash
            #expect(hash.count == 64 && hash.allSatisfy { $0.isHexDigit })
            #expect(try Manifest(contentsOf: sample.url).contentHash == hash)

            // Written canonically into the same folder: same content, same hash.
            let copy = sample.cohort.appendingPathComponent("copy.tsv")
            try manifest.write(to: copy)
            #expect(try Manifest(contentsOf: copy).contentHash == hash)

            // Line numbers are not content: the same rows made in code hash the same.
            let inCode = Manifest(directory: manifest.directory,
                                  rows: manifest.rows.map { var row = $0; row.line = nil; return row },
                                  optionalColumns: manifest.optionalColumns, extraColumns: manifest.extraColumns)
            #expect(inCode.contentHash == hash)
        }
    }

    @Test func hashChangesWhenARowChanges() throws {
        try withTemporaryDirectory { directory in
            let sample = try SampleManifest(root: directory)
            let manifest = try Manifest(contentsOf: sample.url)
            let hash = manifest.contentHash
            var edits: [(String, (inout ManifestRow) -> Void)] = [
                ("age", { $0.age = 71.6 }),
                ("diagnosis", { $0.diagnosis = .mci }),
                ("path", { $0.path = "scans/other.nii" }),
                ("extra", { $0.extra["alpha"] = "b1" }),
            ]
            edits.append(("session", { $0.sessionID = "ses-M006" }))
            var seen: Set<String> = [hash]
            for (name, edit) in edits {
                var changed = manifest
                edit(&changed.rows[0])
                #expect(changed.contentHash != hash, "editing \(name) must change the hash")
                seen.insert(changed.contentHash)
            }
            #expect(seen.count == edits.count + 1)
            // Dropping or reordering rows changes it too.
            var dropped = manifest
            dropped.rows.removeLast()
            #expect(dropped.contentHash != hash)
            var reordered = manifest
            reordered.rows.swapAt(0, 1)
            #expect(reordered.contentHash != hash)
        }
    }
}
