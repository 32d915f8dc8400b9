import Foundation
import Testing
import TensorCore
import TestSupport
@testable import Cohort

/// Inputs found in review that once crashed, misled or lost data.
@Suite struct CohortEdgeCaseTests {
    @Test func lineEndsBlankLinesAndTrailingTabs() throws {
        // Old spreadsheet exports end lines with CR alone.
        let crOnly = TSVTable(text: "a\tb\r1\t2\r3\t4\r")
        #expect(crOnly.header == ["a", "b"] && crOnly.lines.map(\.fields) == [["1", "2"], ["3", "4"]])
        // Issues about the header name its real line.
        let late = Manifest.parse(TSVTable(text: "\n\nparticipant_id\tpath\n"), directory: URL(fileURLWithPath: "/"))
        #expect(late.manifest == nil && late.issues.first?.line == 3)
        // Trailing tabs make unnamed columns: not a duplicate, not an extra column.
        let trailing = Manifest.parse(TSVTable(text: "participant_id\tsession_id\tpath\tdiagnosis\t\t\nsub-1\tses-1\ta.nii\tCN\t\t\n"),
                                      directory: URL(fileURLWithPath: "/"))
        #expect(trailing.issues.filter { $0.severity == .error }.isEmpty, "\(trailing.issues)")
        #expect(trailing.manifest?.extraColumns == [])
        // "NA" means missing in number columns as in the diagnosis.
        let missing = Manifest.parse(TSVTable(text: "participant_id\tsession_id\tpath\tdiagnosis\tage\tmmse\nsub-1\tses-1\ta.nii\tNA\tNA\tnan\n"),
                                     directory: URL(fileURLWithPath: "/"))
        #expect(missing.issues.filter { $0.severity == .error }.isEmpty, "\(missing.issues)")
        #expect(missing.manifest?.rows.first?.age == nil && missing.manifest?.rows.first?.diagnosis == nil)
    }

    @Test func importedValuesAreCheckedLikeManifestValues() throws {
        try withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("bids")
            try Fixture.touch(root.appendingPathComponent("sub-01/anat/sub-01_T1w.nii.gz"))
            for (column, value) in [("age", "200"), ("mmse", "31"), ("cdr", "0.25"), ("age", "inf")] {
                try Fixture.write("participant_id\tdiagnosis\t\(column)\nsub-01\tAD\t\(value)\n", to: root.appendingPathComponent("participants.tsv"))
                let error = #expect(throws: CohortError.self) { try CohortImporter.fromBIDS(root) }
                #expect(error?.description.contains("participants.tsv") == true && error?.description.contains("sub-01") == true,
                        "\(String(describing: error))")
            }
        }
    }

    @Test func pathsThroughSymlinkedFolders() throws {
        try withTemporaryDirectory { directory in
            // real/cohort/m.tsv points at ../scans/c3.nii; link -> real/cohort.
            let real = directory.appendingPathComponent("real")
            try Fixture.volume(real.appendingPathComponent("scans/c3.nii"))
            try Fixture.write("participant_id\tsession_id\tpath\tdiagnosis\nsub-1\tses-1\t../scans/c3.nii\tCN\n",
                              to: real.appendingPathComponent("cohort/m.tsv"))
            let link = directory.appendingPathComponent("link")
            try FileManager.default.createSymbolicLink(at: link, withDestinationURL: real.appendingPathComponent("cohort"))
            let manifest = try Manifest(contentsOf: link.appendingPathComponent("m.tsv"))
            #expect(FileManager.default.fileExists(atPath: manifest.url(for: manifest.rows[0].path).path))
            // Written below the link, the rebased path opens the scan for any program.
            let written = link.appendingPathComponent("splits/split-0/train.tsv")
            try manifest.write(to: written)
            let back = try Manifest(contentsOf: written)
            let path = back.rows[0].path
            // The system resolves `..` from the folder's physical location (access(2) sees the raw path).
            #expect(access(written.deletingLastPathComponent().path + "/" + path, F_OK) == 0, "\(path)")
            #expect(FileManager.default.fileExists(atPath: back.url(for: path).path))
        }
    }

    @Test func splitNeverDeletesWhatItDidNotWrite() throws {
        try withTemporaryDirectory { directory in
            let rows = (1...8).map { ManifestRow(participantID: "sub-\($0)", sessionID: "ses-1", path: "\($0).nii", diagnosis: $0 % 2 == 0 ? .cn : .ad) }
            let manifest = Manifest(directory: directory, rows: rows)
            let split = try CohortSplitter.split(manifest, options: SplitOptions(folds: 2, seed: 1))
            // A folder with other content and no split.json is refused, untouched.
            let busy = directory.appendingPathComponent("busy")
            try Fixture.write("notes", to: busy.appendingPathComponent("split-notes.txt"))
            #expect(throws: CohortError.self) { try split.write(to: busy, source: manifest) }
            #expect(Fixture.exists(busy.appendingPathComponent("split-notes.txt")))
            // Over an earlier split, only its fold folders and test.tsv are replaced.
            let out = directory.appendingPathComponent("splits")
            try CohortSplitter.split(manifest, options: SplitOptions(folds: 4, seed: 1)).write(to: out, source: manifest)
            try Fixture.write("mine", to: out.appendingPathComponent("split-old-experiment/model.bin"))
            try split.write(to: out, source: manifest)
            let names = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
            #expect(names == ["split-0", "split-1", "split-old-experiment", "split.json"])
        }
    }

    @Test func anInterruptedSynthCanBeRerunIntoItsFolder() throws {
        try withTemporaryDirectory { directory in
            let options = smallRecipe(participants: 2)
            _ = try SyntheticCohort.generate(options, to: directory, generator: "test")
            // Kill after the first scans: the recipe is there, the manifest not yet.
            try FileManager.default.removeItem(at: directory.appendingPathComponent("manifest.tsv"))
            try FileManager.default.removeItem(at: directory.appendingPathComponent("participants.tsv"))
            let summary = try SyntheticCohort.generate(options, to: directory, generator: "test")
            #expect(try Manifest(contentsOf: summary.manifestURL).rows.count == summary.scans)
        }
    }

    @Test func recipesThatCannotWorkAreRefused() {
        var options = smallRecipe(participants: 10)
        options.proportions = [1e308, 1e308, 0]  // sums to infinity
        #expect(throws: CohortError.self) { try options.validate() }
        options = smallRecipe(participants: 10)
        options.shape = [61, 64, 64]  // 183 mm: a large brain would leave the grid
        #expect(throws: CohortError.self) { try options.validate() }
        options.shape = [62, 64, 64]
        #expect(throws: Never.self) { try options.validate() }
    }

    @Test func validatorReportsAMissingMaskEvenWhenTheScanIsMissing() throws {
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("m.tsv")
            try Fixture.write("participant_id\tsession_id\tpath\tdiagnosis\tmask_path\nsub-1\tses-1\tgone.nii\tCN\tgone_mask.nii\n", to: url)
            let issues = ManifestValidator.validate(url).errors
            #expect(issues.contains { $0.column == "path" && $0.line == 2 })
            #expect(issues.contains { $0.column == "mask_path" && $0.line == 2 })
        }
    }

    /// Thousands of damaged manifests (bytes changed, tabs and line ends inserted, cut short):
    /// each parses to a manifest or to issues, never a crash; whatever parses writes back out
    /// and reads again to the same rows.
    @Test func damagedManifestsNeverCrashTheParser() throws {
        let good = Array("""
        participant_id\tsession_id\tpath\tdiagnosis\tage\tsex\tmmse\tcdr\tsite\tmask_path\textra
        sub-01\tses-M000\ta.nii.gz\tCN\t71.5\tF\t29\t0\tA\tam.nii.gz\tx
        sub-02\tses-M000\t/abs/b.nii\tNC\t80\tM\t24\t0.5\tB\t\ty
        sub-02\tses-M012\t../c.hdr\tAD\tn/a\t\t\t1\t\t\t

        """.utf8)
        let alphabet = Array("\t\n\r,./-0123456789.eE+naADMCINsub\u{FEFF}é".utf8)
        var random = Xoshiro256StarStar(seed: 99)
        let directory = URL(fileURLWithPath: "/data/cohort")
        for _ in 0..<3000 {
            var bytes = good
            for _ in 0..<(1 + Int(random.next() % 6)) {
                let position = Int(random.next() % UInt64(bytes.count + 1))
                switch random.next() % 4 {
                case 0 where position < bytes.count: bytes[position] = alphabet[Int(random.next() % UInt64(alphabet.count))]
                case 1: bytes.insert(alphabet[Int(random.next() % UInt64(alphabet.count))], at: position)
                case 2 where position < bytes.count: bytes.remove(at: position)
                default: bytes = Array(bytes.prefix(position))
                }
            }
            let text = String(decoding: bytes, as: UTF8.self)
            let (manifest, issues) = Manifest.parse(TSVTable(text: text), directory: directory)
            #expect(manifest != nil || issues.contains { $0.severity == .error })
            guard let manifest, !issues.contains(where: { $0.severity == .error }) else { continue }
            let written = manifest.table(relativeTo: directory).text
            let (again, _) = Manifest.parse(TSVTable(text: written), directory: directory)
            #expect(again?.rows.map(\.participantID) == manifest.rows.map(\.participantID))
            #expect(again?.rows.map(\.diagnosis) == manifest.rows.map(\.diagnosis))
            #expect(again?.rows.map(\.age) == manifest.rows.map(\.age))
        }
    }
}
