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
            for kept in ["split-old-experiment/model.bin", "split-007/a.txt", "split-+1/a.txt", "split-0/model.pth"] {
                try Fixture.write("mine", to: out.appendingPathComponent(kept))
            }
            try split.write(to: out, source: manifest)
            let names = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
            #expect(names == ["split-+1", "split-0", "split-007", "split-1", "split-old-experiment", "split.json"])
            #expect(Fixture.exists(out.appendingPathComponent("split-0/model.pth")))
            #expect(try SplitFolder(out.appendingPathComponent("split-1")).validation.rows.count == 4)
            // Another tool's split.json (ClinicaDL writes one) does not make the folder ours.
            let clinicadl = directory.appendingPathComponent("clinicadl")
            try Fixture.write("{\"n_test\": 0.2}", to: clinicadl.appendingPathComponent("split.json"))
            try Fixture.write("participant_id\n", to: clinicadl.appendingPathComponent("test.tsv"))
            #expect(throws: CohortError.self) { try split.write(to: clinicadl, source: manifest) }
            #expect(Fixture.exists(clinicadl.appendingPathComponent("test.tsv")))
            #expect(CohortSplit.isFoldFolder("split-12") && !CohortSplit.isFoldFolder("split-012")
                    && !CohortSplit.isFoldFolder("split--1") && !CohortSplit.isFoldFolder("split-") && !CohortSplit.isFoldFolder("split-٣"))
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
            let withoutLines = { (rows: [ManifestRow]) in rows.map { row -> ManifestRow in var row = row; row.line = nil; return row } }
            #expect(withoutLines(again?.rows ?? []) == withoutLines(manifest.rows), "\(text)")
        }
    }

    @Test func symlinkedScanFilesKeepTheirNames() throws {
        try withTemporaryDirectory { directory in
            // As DataLad / git-annex lay out BIDS: the scan is a link into .git/annex.
            let annexed = directory.appendingPathComponent("ds/.git/annex/objects/XX/MD5E-s1--abc.nii")
            try Fixture.volume(annexed)
            let scan = directory.appendingPathComponent("ds/sub-01/anat/sub-01_T1w.nii")
            try FileManager.default.createDirectory(at: scan.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(at: scan, withDestinationURL: annexed)
            let manifest = Manifest(directory: directory.appendingPathComponent("ds"),
                                    rows: [ManifestRow(participantID: "sub-01", sessionID: "ses-M000", path: "sub-01/anat/sub-01_T1w.nii", diagnosis: .cn)])
            let out = directory.appendingPathComponent("manifests/m.tsv")
            try manifest.write(to: out)
            let back = try Manifest(contentsOf: out)
            #expect(back.rows[0].path == "../ds/sub-01/anat/sub-01_T1w.nii")
            // Written in its own folder, the text is as written (the hash does not follow links).
            #expect(manifest.table(relativeTo: manifest.directory).lines[0].fields[2] == "sub-01/anat/sub-01_T1w.nii")
        }
    }

    @Test func pathsTSVCannotCarryAreRefused() throws {
        try withTemporaryDirectory { directory in
            let manifest = Manifest(directory: directory, rows: [
                ManifestRow(participantID: "sub-01", sessionID: "ses-M000", path: "sub-01_acq-a\tb_T1w.nii.gz", diagnosis: .cn),
            ])
            let error = #expect(throws: CohortError.self) { try manifest.write(to: directory.appendingPathComponent("m.tsv")) }
            #expect(error?.description.contains("tab or line break") == true)
            #expect(!Fixture.exists(directory.appendingPathComponent("m.tsv")))
        }
    }

    @Test func analyzeHeaderWithoutItsImageIsAnError() throws {
        try withTemporaryDirectory { directory in
            // A real Analyze 7.5 header from the volume fixtures, without its .img.
            let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Fixtures/Volumes/generated/anatomical_analyze75_be.hdr")
            try FileManager.default.copyItem(at: fixture, to: directory.appendingPathComponent("a.hdr"))
            let url = directory.appendingPathComponent("m.tsv")
            try Fixture.write("participant_id\tsession_id\tpath\tdiagnosis\nsub-1\tses-1\ta.hdr\tCN\n", to: url)
            let errors = ManifestValidator.validate(url).errors
            #expect(errors.contains { $0.line == 2 && $0.message.contains("a.hdr") }, "\(errors)")
        }
    }

    @Test func diagnosisWordsAreMappedOrAllListed() throws {
        try withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("bids")
            for subject in ["sub-01", "sub-02", "sub-03", "sub-04"] {
                try Fixture.touch(root.appendingPathComponent("\(subject)/ses-M000/anat/\(subject)_ses-M000_T1w.nii.gz"))
            }
            try Fixture.write(Fixture.tsv([
                ["participant_id", "diagnosis", "group"],
                ["sub-01", "n/a", "control"], ["sub-02", "n/a", "patient"], ["sub-03", "n/a", "control"], ["sub-04", "Dementia", "patient"],
            ]), to: root.appendingPathComponent("participants.tsv"))
            // The diagnosis column is chosen once (never a per-row fall-back to `group`); ADNI's words are known.
            let byDiagnosis = try CohortImporter.fromBIDS(root)
            #expect(byDiagnosis.manifest.rows.map(\.diagnosis) == [nil, nil, nil, .ad])
            #expect(byDiagnosis.manifest.extraColumns == ["group"])
            // Unknown words: one error listing them all, naming the file and column.
            let error = #expect(throws: CohortError.self) { try CohortImporter.fromBIDS(root, labels: LabelOptions(column: "group")) }
            let message = error?.description ?? ""
            #expect(message.contains("participants.tsv") && message.contains("column group"), "\(message)")
            #expect(message.contains("\"control\" (2 rows)") && message.contains("\"patient\" (2 rows)"), "\(message)")
            // Mapped, they read.
            let mapped = try CohortImporter.fromBIDS(root, labels: LabelOptions(column: "group", map: ["Control": "CN", "patient": "AD"]))
            #expect(mapped.manifest.rows.map(\.diagnosis) == [.cn, .ad, .cn, .ad])
            #expect(mapped.manifest.extraColumns == [], "the diagnosis column read is not carried again")
            // A column no table has.
            #expect(throws: CohortError.self) { try CohortImporter.fromBIDS(root, labels: LabelOptions(column: "dx_typo")) }
            // A bad word from a sessions file names that file.
            try Fixture.write("session_id\tgroup\nses-M000\tunknownword\n", to: root.appendingPathComponent("sub-01/sub-01_sessions.tsv"))
            let sessionError = #expect(throws: CohortError.self) {
                try CohortImporter.fromBIDS(root, labels: LabelOptions(column: "group", map: ["control": "CN", "patient": "AD"]))
            }
            #expect(sessionError?.description.contains("sub-01_sessions.tsv") == true, "\(String(describing: sessionError))")
        }
    }
}
