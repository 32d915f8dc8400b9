import Foundation
import Testing
import TestSupport
import VolumeIO
import Cohort

/// Writes `manifest` into `directory/manifests/<name>.tsv` (another folder than the
/// dataset's), reads it back and checks every path still names an existing file and every
/// other field survived. Returns the manifest read back.
@discardableResult
func writeAndReadBack(_ manifest: Manifest, _ directory: URL, name: String,
                      sourceLocation: SourceLocation = #_sourceLocation) throws -> Manifest {
    let url = directory.appendingPathComponent("manifests/\(name).tsv")
    try Fixture.folder(url.deletingLastPathComponent())
    try manifest.write(to: url)
    let back = try Manifest(contentsOf: url)
    #expect(back.rows.count == manifest.rows.count, sourceLocation: sourceLocation)
    #expect(back.extraColumns == manifest.extraColumns, sourceLocation: sourceLocation)
    for (original, read) in zip(manifest.rows, back.rows) {
        #expect(read.path.hasPrefix("../"), "\(read.path) is relative to manifests/", sourceLocation: sourceLocation)
        #expect(back.url(for: read.path) == manifest.url(for: original.path), sourceLocation: sourceLocation)
        #expect(Fixture.exists(back.url(for: read.path)), "\(read.path)", sourceLocation: sourceLocation)
        #expect(read.labelPath.map(back.url(for:)) == original.labelPath.map(manifest.url(for:)), sourceLocation: sourceLocation)
        if let label = read.labelPath { #expect(Fixture.exists(back.url(for: label)), sourceLocation: sourceLocation) }
        var same = read
        (same.path, same.labelPath, same.line) = (original.path, original.labelPath, nil)
        #expect(same == original, sourceLocation: sourceLocation)
    }
    return back
}

func findRow(_ manifest: Manifest, _ participant: String, _ session: String) -> ManifestRow? {
    manifest.rows.first { $0.participantID == participant && $0.sessionID == session }
}

/// The error `body` throws; an issue is recorded unless it throws `CohortError.invalidLayout`.
@discardableResult
func expectInvalidLayout(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> CohortError? {
    let error = #expect(throws: CohortError.self, sourceLocation: sourceLocation) { try body() }
    if case .invalidLayout = error { return error }
    Issue.record("expected invalidLayout, got \(String(describing: error))", sourceLocation: sourceLocation)
    return error
}

// MARK: - BIDS

/// A small BIDS tree:
/// - sub-01: ses-M000, ses-M012 (one T1w each) and ses-M024 with an empty anat/;
/// - sub-02: two sessions and `sub-02_sessions.tsv` making ses-M012 MCI (CN in participants.tsv)
///   and saying n/a for ses-M000;
/// - sub-03: no session folders;
/// - sub-04: two runs in ses-M000 (and a FLAIR that is not a T1w);
/// - sub-05: in participants.tsv without any image;
/// - sub-06: images but not in participants.tsv.
func makeBIDS(_ root: URL, participants: Bool = true) throws {
    if participants {
        try Fixture.write(Fixture.tsv([
            ["participant_id", "diagnosis", "age", "sex", "handedness"],
            ["sub-01", "CN", "70", "F", "R"],
            ["sub-02", "CN", "68", "M", "L"],
            ["sub-03", "AD", "75.5", "F", "R"],
            ["sub-04", "MCI", "n/a", "M", "R"],
            ["sub-05", "AD", "80", "F", "L"],
        ]), to: root.appendingPathComponent("participants.tsv"))
    }
    try Fixture.write("{\"Name\": \"tiny\", \"BIDSVersion\": \"1.8.0\"}\n", to: root.appendingPathComponent("dataset_description.json"))
    try Fixture.touch(root.appendingPathComponent("sub-notes.txt"))   // a file, not a subject
    // One real (tiny) NIfTI; the rest need only exist, the importer reads names.
    try Fixture.volume(root.appendingPathComponent("sub-01/ses-M000/anat/sub-01_ses-M000_T1w.nii.gz"))
    for path in [
        "sub-01/ses-M012/anat/sub-01_ses-M012_T1w.nii.gz",
        "sub-01/ses-M012/anat/sub-01_ses-M012_T1w.json",
        "sub-02/ses-M000/anat/sub-02_ses-M000_T1w.nii",
        "sub-02/ses-M012/anat/sub-02_ses-M012_T1w.nii.gz",
        "sub-03/anat/sub-03_T1w.nii.gz",
        "sub-04/ses-M000/anat/sub-04_ses-M000_run-02_T1w.nii.gz",
        "sub-04/ses-M000/anat/sub-04_ses-M000_run-01_T1w.nii.gz",
        "sub-04/ses-M000/anat/sub-04_ses-M000_FLAIR.nii.gz",
        "sub-06/ses-M000/anat/sub-06_ses-M000_T1w.nii.gz",
    ] { try Fixture.touch(root.appendingPathComponent(path)) }
    try Fixture.folder(root.appendingPathComponent("sub-01/ses-M024/anat"))
    try Fixture.write(Fixture.tsv([
        ["session_id", "diagnosis", "acq_time"],
        ["ses-M000", "n/a", "n/a"],
        ["ses-M012", "MCI", "2011-01-01"],
    ]), to: root.appendingPathComponent("sub-02/sub-02_sessions.tsv"))
}

@Suite struct BIDSImporterTests {
    @Test func importsSubjectsSessionsAndLabels() throws {
        try withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("bids")
            try makeBIDS(root)
            let result = try CohortImporter.fromBIDS(root)
            let manifest = result.manifest
            #expect(manifest.directory == root.standardizedFileURL)
            #expect(manifest.rows.map { "\($0.participantID) \($0.sessionID)" } == [
                "sub-01 ses-M000", "sub-01 ses-M012", "sub-02 ses-M000", "sub-02 ses-M012",
                "sub-03 ses-M000", "sub-04 ses-M000", "sub-06 ses-M000",
            ])
            #expect(manifest.rows.map(\.diagnosis) == [.cn, .cn, .cn, .mci, .ad, .mci, nil])

            let first = try #require(findRow(manifest, "sub-01", "ses-M000"))
            #expect(first.path == "sub-01/ses-M000/anat/sub-01_ses-M000_T1w.nii.gz")
            #expect(first.age == 70 && first.sex == "F")
            #expect(first.extra == ["handedness": "R", "acq_time": ""])

            // The sessions file overrides the participant's values for its session only, and
            // its n/a values fall back to the participant's (sub-02 ses-M000 stays CN).
            #expect(findRow(manifest, "sub-02", "ses-M012")?.extra == ["handedness": "L", "acq_time": "2011-01-01"])
            #expect(findRow(manifest, "sub-02", "ses-M012")?.age == 68)
            #expect(findRow(manifest, "sub-02", "ses-M000")?.extra["acq_time"] == "")
            #expect(findRow(manifest, "sub-02", "ses-M000")?.path == "sub-02/ses-M000/anat/sub-02_ses-M000_T1w.nii")

            // No session folders: ses-M000.
            let third = try #require(findRow(manifest, "sub-03", "ses-M000"))
            #expect(third.path == "sub-03/anat/sub-03_T1w.nii.gz")
            #expect(third.age == 75.5)

            // Two runs: the first by name, and a note.
            let fourth = try #require(findRow(manifest, "sub-04", "ses-M000"))
            #expect(fourth.path == "sub-04/ses-M000/anat/sub-04_ses-M000_run-01_T1w.nii.gz")
            #expect(fourth.age == nil, "n/a is no age")
            #expect(result.notes.contains { $0.contains("sub-04 ses-M000: 2 T1w images, using sub-04_ses-M000_run-01_T1w.nii.gz") },
                    "\(result.notes)")

            #expect(result.notes.contains { $0.contains("sub-01 ses-M024") && $0.contains("no *_T1w") }, "\(result.notes)")
            #expect(result.notes.contains { $0.contains("sub-06 is not in participants.tsv") }, "\(result.notes)")
            #expect(result.notes.contains { $0.contains("1 participant in participants.tsv without a T1w image (e.g. sub-05)") },
                    "\(result.notes)")
            #expect(!manifest.participants.contains("sub-05"))
            #expect(manifest.extraColumns == ["handedness", "acq_time"])
            #expect(manifest.optionalColumns == ["age", "sex"])

            try writeAndReadBack(manifest, directory, name: "bids")
        }
    }

    @Test func withoutParticipantsTSVEverythingIsUnlabelled() throws {
        try withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("bids")
            try makeBIDS(root, participants: false)
            let result = try CohortImporter.fromBIDS(root)
            #expect(result.manifest.rows.count == 7)
            // Only sub-02's sessions file labels anything.
            #expect(result.manifest.rows.filter { $0.diagnosis != nil }.map(\.participantID) == ["sub-02"])
            #expect(result.notes.contains { $0.contains("no participants.tsv") })
            #expect(!result.notes.contains { $0.contains("is not in participants.tsv") })
        }
    }

    @Test func badBIDSLayoutsAreRefused() throws {
        try withTemporaryDirectory { directory in
            let empty = directory.appendingPathComponent("empty")
            try Fixture.folder(empty)
            let error = expectInvalidLayout { _ = try CohortImporter.fromBIDS(empty) }
            #expect(error?.description.contains("not a BIDS dataset") == true)

            let noKey = directory.appendingPathComponent("nokey")
            try makeBIDS(noKey)
            try Fixture.write("subject\tdiagnosis\nsub-01\tCN\n", to: noKey.appendingPathComponent("participants.tsv"))
            expectInvalidLayout { _ = try CohortImporter.fromBIDS(noKey) }

            let badLabel = directory.appendingPathComponent("badlabel")
            try makeBIDS(badLabel)
            try Fixture.write("participant_id\tdiagnosis\nsub-01\tAlzheimer\n", to: badLabel.appendingPathComponent("participants.tsv"))
            let error3 = #expect(throws: CohortError.self) { try CohortImporter.fromBIDS(badLabel) }
            #expect(error3?.description.contains("Alzheimer") == true, "\(String(describing: error3))")
        }
    }
}

// MARK: - CAPS

let capsSuffixCropped = "_T1w_space-MNI152NLin2009cSym_desc-Crop_res-1x1x1_T1w.nii.gz"
let capsSuffixUncropped = "_T1w_space-MNI152NLin2009cSym_res-1x1x1_T1w.nii.gz"

/// `subjects/sub-01/{ses-M000 (both), ses-M012 (cropped only)}`, `sub-02/ses-M000` (both),
/// `sub-03/ses-M000` (uncropped only).
func makeCAPS(_ root: URL) throws {
    func image(_ participant: String, _ session: String, cropped: Bool) throws {
        let name = "\(participant)_\(session)" + (cropped ? capsSuffixCropped : capsSuffixUncropped)
        try Fixture.touch(root.appendingPathComponent("subjects/\(participant)/\(session)/t1_linear/\(name)"))
    }
    try image("sub-01", "ses-M000", cropped: true)
    try image("sub-01", "ses-M000", cropped: false)
    try image("sub-01", "ses-M012", cropped: true)
    try image("sub-02", "ses-M000", cropped: true)
    try image("sub-02", "ses-M000", cropped: false)
    try image("sub-03", "ses-M000", cropped: false)
    // Side files ClinicaDL writes next to the images.
    try Fixture.touch(root.appendingPathComponent("subjects/sub-01/ses-M000/t1_linear/sub-01_ses-M000_T1w_space-MNI152NLin2009cSym_res-1x1x1_affine.mat"))
    try Fixture.touch(root.appendingPathComponent("subjects/sub-02/ses-M000/t1_linear/sub-02_ses-M000_T1w_space-MNI152NLin2009cSym_desc-Crop_res-1x1x1_T1w.json"))
}

@Suite struct CAPSImporterTests {
    @Test func importsCroppedImagesWithSessionLabels() throws {
        try withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("caps")
            try makeCAPS(root)
            let labels = directory.appendingPathComponent("labels.tsv")
            try Fixture.write(Fixture.tsv([
                ["participant_id", "session_id", "diagnosis", "age", "sex", "cohort"],
                ["sub-01", "ses-M000", "CN", "70", "F", "A"],
                ["sub-01", "ses-M012", "MCI", "71", "F", "A"],
                ["sub-02", "ses-M000", "AD", "80", "M", "B"],
            ]), to: labels)
            let result = try CohortImporter.fromCAPS(root, labels: labels)
            let manifest = result.manifest
            #expect(manifest.rows.map { "\($0.participantID) \($0.sessionID)" } == ["sub-01 ses-M000", "sub-01 ses-M012", "sub-02 ses-M000"])
            #expect(manifest.rows.map(\.diagnosis) == [.cn, .mci, .ad])
            #expect(manifest.rows.map(\.age) == [70, 71, 80])
            #expect(manifest.rows[0].path == "subjects/sub-01/ses-M000/t1_linear/sub-01_ses-M000" + capsSuffixCropped)
            #expect(manifest.rows.allSatisfy { $0.path.contains("_desc-Crop_") })
            #expect(manifest.extraColumns == ["cohort"])
            #expect(manifest.rows.map { $0.extra["cohort"] } == ["A", "A", "B"])
            #expect(result.notes.contains { $0.contains("sub-03 ses-M000: no cropped (desc-Crop) t1_linear image") }, "\(result.notes)")
            try writeAndReadBack(manifest, directory, name: "caps")
        }
    }

    @Test func uncroppedFlagPicksTheUncroppedImages() throws {
        try withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("caps")
            try makeCAPS(root)
            let labels = directory.appendingPathComponent("labels.tsv")
            try Fixture.write(Fixture.tsv([
                ["participant_id", "session_id", "diagnosis"],
                ["sub-01", "ses-M000", "CN"],
                ["sub-02", "ses-M000", "AD"],
            ]), to: labels)
            let result = try CohortImporter.fromCAPS(root, labels: labels, uncropped: true)
            let manifest = result.manifest
            #expect(manifest.rows.map { "\($0.participantID) \($0.sessionID)" } == ["sub-01 ses-M000", "sub-02 ses-M000", "sub-03 ses-M000"])
            #expect(manifest.rows.map(\.path) == ["sub-01", "sub-02", "sub-03"].map {
                "subjects/\($0)/ses-M000/t1_linear/\($0)_ses-M000" + capsSuffixUncropped
            })
            #expect(manifest.rows.map(\.diagnosis) == [.cn, .ad, nil])
            #expect(result.notes.contains { $0.contains("sub-01 ses-M012: no uncropped t1_linear image") }, "\(result.notes)")
            #expect(result.notes.contains { $0.contains("sub-03 ses-M000 has no row in the labels TSV") }, "\(result.notes)")
            try writeAndReadBack(manifest, directory, name: "caps-uncropped")
        }
    }

    @Test func participantLevelLabelsLabelEverySession() throws {
        try withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("caps")
            try makeCAPS(root)
            let labels = directory.appendingPathComponent("participants.tsv")
            try Fixture.write(Fixture.tsv([
                ["participant_id", "diagnosis_bl", "site"],
                ["sub-01", "MCI", "S1"],
                ["sub-02", "NC", "S2"],
            ]), to: labels)
            let manifest = try CohortImporter.fromCAPS(root, labels: labels).manifest
            #expect(manifest.rows.map(\.diagnosis) == [.mci, .mci, .cn])
            #expect(manifest.rows.map(\.site) == ["S1", "S1", "S2"])
            #expect(manifest.extraColumns.isEmpty)
        }
    }

    @Test func shortLineInASessionLabelsTSVIsRefused() throws {
        try withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("caps")
            try makeCAPS(root)
            // Participant-level labels: a short line is an error naming it (keyedRows).
            let participantLabels = directory.appendingPathComponent("participants.tsv")
            try Fixture.write("participant_id\tdiagnosis\tage\nsub-01\tCN\t70\nsub-02\tAD\n", to: participantLabels)
            let error = #expect(throws: CohortError.self) { try CohortImporter.fromCAPS(root, labels: participantLabels) }
            #expect(error?.description.contains("line 3: 2 fields where the header has 3") == true, "\(String(describing: error))")

            // Session-level labels are held to the same rule.
            let sessionLabels = directory.appendingPathComponent("labels.tsv")
            try Fixture.write("participant_id\tsession_id\tdiagnosis\nsub-01\tses-M000\tCN\nsub-02\tses-M000\n", to: sessionLabels)
            let error2 = #expect(throws: CohortError.self) { try CohortImporter.fromCAPS(root, labels: sessionLabels) }
            #expect(error2?.description.contains("line 3") == true, "\(String(describing: error2))")
        }
    }

    @Test func withoutLabelsEverythingIsUnlabelled() throws {
        try withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("caps")
            try makeCAPS(root)
            let result = try CohortImporter.fromCAPS(root)
            #expect(result.manifest.rows.count == 3)
            #expect(result.manifest.rows.allSatisfy { $0.diagnosis == nil })
            #expect(result.notes.contains { $0.contains("no --labels TSV") })
            try writeAndReadBack(result.manifest, directory, name: "caps-unlabelled")
        }
    }

    @Test func badCAPSLayoutsAreRefused() throws {
        try withTemporaryDirectory { directory in
            // subjects/ exists but holds no sub-* folder.
            let hollow = directory.appendingPathComponent("hollow")
            try Fixture.folder(hollow.appendingPathComponent("subjects"))
            let error = expectInvalidLayout { _ = try CohortImporter.fromCAPS(hollow) }
            #expect(error?.description.contains("not a CAPS folder") == true)

            // A labels TSV without participant_id.
            let root = directory.appendingPathComponent("caps")
            try makeCAPS(root)
            let labels = directory.appendingPathComponent("labels.tsv")
            try Fixture.write("subject\tdiagnosis\nsub-01\tCN\n", to: labels)
            expectInvalidLayout { _ = try CohortImporter.fromCAPS(root, labels: labels) }

            // An empty folder (no subjects/ at all).
            let empty = directory.appendingPathComponent("empty")
            try Fixture.folder(empty)
            let error3 = expectInvalidLayout { _ = try CohortImporter.fromCAPS(empty) }
            #expect(error3?.description.contains("no subjects/ folder") == true)
        }
    }
}

// MARK: - OASIS-1

let oasisHeader = "ID,M/F,Hand,Age,Educ,SES,MMSE,CDR,eTIV,nWBV,ASF,Delay"

/// The clinical CSV as OASIS distributes it (CRLF line ends), with CDR 0, 0.5, 1, 2, empty and "N/A".
let oasisClinical = [
    oasisHeader,
    "OAS1_0001_MR1,F,R,74,2,3,29,0,1344,0.743,1.306,N/A",
    "OAS1_0002_MR1,F,R,55,4,1,29,0,1147,0.81,1.531,N/A",
    "OAS1_0003_MR1,F,R,73,4,3,27,0.5,1454,0.708,1.207,N/A",
    "OAS1_0004_MR1,M,R,28,,,,,1588,0.803,1.105,N/A",
    "OAS1_0005_MR1,M,R,18,,,N/A,N/A,1737,0.848,1.01,N/A",
    "OAS1_0006_MR1,F,R,81,2,4,20,1,1500,0.7,1.1,N/A",
    "OAS1_0007_MR1,M,R,80,3,2,15,2,1400,0.69,1.2,N/A",
    // Reliability rescans have their own, mostly empty, row: MR1's values stand in.
    "OAS1_0001_MR2,F,R,74,,,,,1344,0.743,1.306,1",
].joined(separator: "\r\n") + "\r\n"

/// `disc1/` holds 0001 (MR1 and MR2), 0002-0004; `disc2/` 0005, 0006 and 0008 (not in the
/// CSV) and 0009 (no image); 0007 sits directly in the root.
func makeOASIS(_ root: URL) throws {
    func session(_ folder: String, _ id: String) throws {
        let base = root.appendingPathComponent(folder.isEmpty ? id : "\(folder)/\(id)")
        for path in [
            "PROCESSED/MPRAGE/T88_111/\(id)_mpr_n4_anon_111_t88_masked_gfc.hdr",
            "PROCESSED/MPRAGE/T88_111/\(id)_mpr_n4_anon_111_t88_masked_gfc.img",
            "PROCESSED/MPRAGE/T88_111/\(id)_mpr_n4_anon_111_t88_gfc.hdr",
            "PROCESSED/MPRAGE/T88_111/\(id)_mpr_n4_anon_111_t88_gfc.img",
            "PROCESSED/MPRAGE/SUBJ_111/\(id)_mpr_n4_anon_sbj_111.hdr",
            "FSL_SEG/\(id)_mpr_n4_anon_111_t88_masked_gfc_fseg.hdr",
            "FSL_SEG/\(id)_mpr_n4_anon_111_t88_masked_gfc_fseg.img",
            "RAW/\(id)_mpr-1_anon.hdr",
            "RAW/\(id)_mpr-1_anon.img",
            "RAW/\(id)_mpr-2_anon.hdr",
            "\(id).xml",
        ] { try Fixture.touch(base.appendingPathComponent(path)) }
    }
    for id in ["OAS1_0001_MR1", "OAS1_0001_MR2", "OAS1_0002_MR1", "OAS1_0003_MR1", "OAS1_0004_MR1"] { try session("disc1", id) }
    for id in ["OAS1_0005_MR1", "OAS1_0006_MR1", "OAS1_0008_MR1"] { try session("disc2", id) }
    try session("", "OAS1_0007_MR1")
    try Fixture.folder(root.appendingPathComponent("disc2/OAS1_0009_MR1/RAW"))
    try Fixture.folder(root.appendingPathComponent("disc2/notes"))
    try Fixture.write(oasisClinical, to: root.appendingPathComponent("oasis_cross-sectional.csv"))
}

@Suite struct OASISImporterTests {
    @Test func importsMaskedImagesWithCDRDiagnoses() throws {
        try withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("oasis")
            try makeOASIS(root)
            let result = try CohortImporter.fromOASIS(root, clinical: root.appendingPathComponent("oasis_cross-sectional.csv"))
            let manifest = result.manifest
            #expect(manifest.rows.map { "\($0.participantID) \($0.sessionID)" } == [
                "sub-OASIS10001 ses-M000", "sub-OASIS10001 ses-M000rescan", "sub-OASIS10002 ses-M000",
                "sub-OASIS10003 ses-M000", "sub-OASIS10004 ses-M000", "sub-OASIS10005 ses-M000",
                "sub-OASIS10006 ses-M000", "sub-OASIS10007 ses-M000",
            ])
            // CDR 0 -> CN, 0.5 -> MCI, >= 1 -> AD; no CDR -> unlabelled (default).
            #expect(manifest.rows.map(\.diagnosis) == [.cn, .cn, .cn, .mci, nil, nil, .ad, .ad])
            #expect(manifest.rows.map(\.cdr) == [0, 0, 0, 0.5, nil, nil, 1, 2])
            #expect(manifest.rows.map(\.mmse) == [29, 29, 29, 27, nil, nil, 20, 15])
            #expect(manifest.rows.map(\.age) == [74, 74, 55, 73, 28, 18, 81, 80])
            #expect(manifest.rows.map(\.sex) == ["F", "F", "F", "F", "M", "M", "F", "M"])

            let first = manifest.rows[0]
            #expect(first.path == "disc1/OAS1_0001_MR1/PROCESSED/MPRAGE/T88_111/OAS1_0001_MR1_mpr_n4_anon_111_t88_masked_gfc.hdr")
            #expect(first.labelPath == "disc1/OAS1_0001_MR1/FSL_SEG/OAS1_0001_MR1_mpr_n4_anon_111_t88_masked_gfc_fseg.hdr")
            #expect(manifest.rows.allSatisfy { $0.labelPath != nil })
            #expect(manifest.rows[7].path == "OAS1_0007_MR1/PROCESSED/MPRAGE/T88_111/OAS1_0007_MR1_mpr_n4_anon_111_t88_masked_gfc.hdr")

            // The other clinical columns are carried, in the CSV's order.
            #expect(manifest.extraColumns == ["Hand", "Educ", "SES", "eTIV", "nWBV", "ASF", "Delay"])
            #expect(first.extra == ["Hand": "R", "Educ": "2", "SES": "3", "eTIV": "1344", "nWBV": "0.743", "ASF": "1.306", "Delay": "N/A"])
            #expect(manifest.rows[1].extra["Delay"] == "1" && manifest.rows[1].extra["Educ"] == "2")
            #expect(manifest.rows[4].extra["Educ"] == "")

            #expect(result.notes.contains { $0.contains("OAS1_0008_MR1 is not in oasis_cross-sectional.csv") }, "\(result.notes)")
            #expect(result.notes.contains { $0.contains("OAS1_0009_MR1: no masked image") }, "\(result.notes)")
            #expect(result.notes.contains { $0.contains("2 sessions without a CDR") && $0.contains("kept unlabelled") }, "\(result.notes)")

            let back = try writeAndReadBack(manifest, directory, name: "oasis")
            #expect(back.rows.map(\.diagnosis) == manifest.rows.map(\.diagnosis))
        }
    }

    @Test func missingCDRPolicies() throws {
        try withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("oasis")
            try makeOASIS(root)
            let clinical = root.appendingPathComponent("oasis_cross-sectional.csv")

            let asCN = try CohortImporter.fromOASIS(root, clinical: clinical, missingCDR: .cn)
            #expect(asCN.manifest.rows.map(\.diagnosis) == [.cn, .cn, .cn, .mci, .cn, .cn, .ad, .ad])
            #expect(asCN.manifest.rows[4].cdr == nil, "the CDR itself stays missing")
            #expect(asCN.notes.contains { $0.contains("counted as CN") })

            let dropped = try CohortImporter.fromOASIS(root, clinical: clinical, missingCDR: .drop)
            #expect(dropped.manifest.participants == ["sub-OASIS10001", "sub-OASIS10002", "sub-OASIS10003", "sub-OASIS10006", "sub-OASIS10007"])
            #expect(dropped.manifest.rows.allSatisfy { $0.diagnosis != nil })
            #expect(dropped.notes.contains { $0.contains("2 sessions without a CDR") && $0.contains("left out") })
            try writeAndReadBack(dropped.manifest, directory, name: "oasis-dropped")
        }
    }

    @Test func rawAndUnmaskedImages() throws {
        try withTemporaryDirectory { directory in
            let root = directory.appendingPathComponent("oasis")
            try makeOASIS(root)
            let clinical = root.appendingPathComponent("oasis_cross-sectional.csv")

            let raw = try CohortImporter.fromOASIS(root, clinical: clinical, image: .raw).manifest
            #expect(raw.rows.count == 8)
            #expect(raw.rows[0].path == "disc1/OAS1_0001_MR1/RAW/OAS1_0001_MR1_mpr-1_anon.hdr")
            #expect(raw.rows.allSatisfy { $0.labelPath == nil && $0.path.hasSuffix("_mpr-1_anon.hdr") })
            try writeAndReadBack(raw, directory, name: "oasis-raw")

            let unmasked = try CohortImporter.fromOASIS(root, clinical: clinical, image: .unmasked).manifest
            #expect(unmasked.rows[0].path == "disc1/OAS1_0001_MR1/PROCESSED/MPRAGE/T88_111/OAS1_0001_MR1_mpr_n4_anon_111_t88_gfc.hdr")
            #expect(unmasked.rows.allSatisfy { !$0.path.contains("masked") })
        }
    }

    @Test func badOASISInputsAreRefused() throws {
        try withTemporaryDirectory { directory in
            let clinical = directory.appendingPathComponent("clinical.csv")
            try Fixture.write(oasisClinical, to: clinical)

            // An empty root.
            let empty = directory.appendingPathComponent("empty")
            try Fixture.folder(empty)
            let error = expectInvalidLayout { _ = try CohortImporter.fromOASIS(empty, clinical: clinical) }
            #expect(error?.description.contains("not an OASIS-1 tree") == true)

            let root = directory.appendingPathComponent("oasis")
            try makeOASIS(root)

            // Not the OASIS clinical table.
            let other = directory.appendingPathComponent("other.csv")
            try Fixture.write("Subject,Age\nOAS1_0001_MR1,74\n", to: other)
            expectInvalidLayout { _ = try CohortImporter.fromOASIS(root, clinical: other) }

            // A CDR that is none of 0, 0.5, >= 1.
            let odd = directory.appendingPathComponent("odd.csv")
            try Fixture.write(oasisClinical.replacingOccurrences(of: "27,0.5,1454", with: "27,0.7,1454"), to: odd)
            let error3 = #expect(throws: CohortError.self) { try CohortImporter.fromOASIS(root, clinical: odd) }
            #expect(error3?.description.contains("OAS1_0003_MR1: CDR 0.7") == true, "\(String(describing: error3))")

            // A short line.
            let short = directory.appendingPathComponent("short.csv")
            try Fixture.write(oasisHeader + "\nOAS1_0001_MR1,F,R,74\n", to: short)
            let error4 = #expect(throws: CohortError.self) { try CohortImporter.fromOASIS(root, clinical: short) }
            #expect(error4?.description.contains("line 2: 4 fields where the header has 12") == true, "\(String(describing: error4))")

            // A clinical file that is not there.
            let error5 = #expect(throws: CohortError.self) {
                try CohortImporter.fromOASIS(root, clinical: directory.appendingPathComponent("absent.csv"))
            }
            guard case .cannotRead = error5 else {
                Issue.record("expected cannotRead, got \(String(describing: error5))")
                return
            }
        }
    }
}
