import Foundation
import Testing
import TestSupport
import VolumeIO
import Cohort

/// A valid cohort in a temporary folder: `count` participants alternating CN and AD, one
/// 6x7x5 scan each (`scans/sub-NN.nii`, each with different non-constant voxels). Tests break
/// one row at a time; the manifest's line of row `i` is `i + 2`.
struct ValidationCohort {
    let directory: URL
    var header = ["participant_id", "session_id", "path", "diagnosis"]
    var rows: [[String]]

    init(_ directory: URL, count: Int = 6) throws {
        self.directory = directory
        rows = []
        for index in 1...count {
            let participant = String(format: "sub-%02d", index)
            let path = "scans/\(participant).nii"
            try Fixture.volume(directory.appendingPathComponent(path), value: { Float(($0 * index + 3) % 23) })
            rows.append([participant, "ses-M000", path, index % 2 == 1 ? "CN" : "AD"])
        }
    }

    var manifestURL: URL { directory.appendingPathComponent("manifest.tsv") }

    /// Writes the manifest and validates it (2 folds unless told otherwise, so the base
    /// cohort of 3 + 3 raises nothing).
    func validate(_ options: ManifestValidationOptions = ManifestValidationOptions(folds: 2)) throws -> ManifestValidation {
        try Fixture.write(Fixture.tsv([header] + rows), to: manifestURL)
        return ManifestValidator.validate(manifestURL, options: options)
    }

    func url(_ path: String) -> URL { directory.appendingPathComponent(path) }

    /// Adds a column (header and a value for every row).
    mutating func addColumn(_ name: String, values: (Int) -> String) {
        header.append(name)
        for index in rows.indices { rows[index].append(values(index)) }
    }
}

@Suite struct ValidationTests {
    @Test func aGoodCohortHasNoIssues() throws {
        try withTemporaryDirectory { directory in
            let cohort = try ValidationCohort(directory)
            let validation = try cohort.validate()
            #expect(validation.issues.isEmpty, "\(validation.issues)")
            #expect(validation.isValid)
            #expect(validation.manifest?.rows.count == 6)
            #expect(validation.participantsPerClass == [.cn: 3, .ad: 3])
        }
    }

    // MARK: Errors in the text

    @Test func missingRequiredColumnIsLineOne() throws {
        try withTemporaryDirectory { directory in
            var cohort = try ValidationCohort(directory)
            cohort.header = ["participant_id", "session_id", "path", "dx"]
            let validation = try cohort.validate()
            #expect(validation.manifest == nil)
            #expect(validation.issues.count == 1)
            let issue = try #require(validation.issues.first)
            #expect(issue.severity == .error && issue.line == 1)
            #expect(issue.message.contains("missing required column diagnosis"), "\(issue.message)")
            #expect(issue.description.hasPrefix("line 1: error: "))
            #expect(!validation.isValid)
            #expect(throws: CohortError.self) { try Manifest(contentsOf: cohort.manifestURL) }
        }
    }

    @Test func commaSeparatedFileGetsAHint() throws {
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("m.tsv")
            try Fixture.write("participant_id,session_id,path,diagnosis\nsub-01,ses-M000,a.nii,CN\n", to: url)
            let validation = ManifestValidator.validate(url)
            #expect(validation.issues.count == 1)
            #expect(validation.issues.first?.line == 1)
            #expect(validation.issues.first?.message.contains("comma-separated") == true)
        }
    }

    @Test func emptyFileAndHeaderOnlyAreErrorsOnLineOne() throws {
        try withTemporaryDirectory { directory in
            let empty = directory.appendingPathComponent("empty.tsv")
            try Fixture.write("\n\n", to: empty)
            let first = ManifestValidator.validate(empty)
            #expect(first.errors.map(\.line) == [1])
            #expect(first.errors.first?.message.contains("empty") == true)

            let headerOnly = directory.appendingPathComponent("header.tsv")
            try Fixture.write("participant_id\tsession_id\tpath\tdiagnosis\n", to: headerOnly)
            let second = ManifestValidator.validate(headerOnly)
            #expect(second.errors.map(\.line) == [1])
            #expect(second.errors.first?.message.contains("no rows") == true)
        }
    }

    @Test func unreadableManifestIsOneErrorWithoutALine() throws {
        try withTemporaryDirectory { directory in
            let validation = ManifestValidator.validate(directory.appendingPathComponent("absent.tsv"))
            #expect(validation.manifest == nil)
            #expect(validation.errors.count == 1)
            #expect(validation.errors.first?.line == nil)
            #expect(validation.errors.first?.message.contains("cannot read") == true)
        }
    }

    @Test func wrongFieldCountNamesItsLine() throws {
        try withTemporaryDirectory { directory in
            var cohort = try ValidationCohort(directory)
            cohort.rows[2] = ["sub-03", "ses-M000", "scans/sub-03.nii"]
            let validation = try cohort.validate()
            #expect(validation.errors.count == 1, "\(validation.errors)")
            let issue = try #require(validation.errors.first)
            #expect(issue.line == 4 && issue.severity == .error)
            #expect(issue.message.contains("3 fields where the header has 4"), "\(issue.message)")
        }
    }

    @Test func duplicateParticipantSessionNamesBothLines() throws {
        try withTemporaryDirectory { directory in
            var cohort = try ValidationCohort(directory)
            cohort.rows.append(cohort.rows[1])   // line 8 repeats line 3
            let validation = try cohort.validate()
            #expect(validation.errors.count == 1, "\(validation.errors)")
            let issue = try #require(validation.errors.first)
            #expect(issue.line == 8 && issue.severity == .error)
            #expect(issue.message.contains("sub-02 ses-M000"), "\(issue.message)")
            #expect(issue.message.contains("first at line 3"), "\(issue.message)")
        }
    }

    @Test func unknownLabelNamesItsLineAndColumn() throws {
        try withTemporaryDirectory { directory in
            var cohort = try ValidationCohort(directory)
            cohort.rows[3][3] = "ADD"
            let validation = try cohort.validate()
            #expect(validation.errors.count == 1, "\(validation.errors)")
            let issue = try #require(validation.errors.first)
            #expect(issue.line == 5 && issue.column == "diagnosis" && issue.severity == .error)
            #expect(issue.message.contains("\"ADD\""), "\(issue.message)")
            // The row is kept, unlabelled, for the later checks.
            #expect(validation.manifest?.rows.count == 6)
            #expect(validation.manifest?.rows[3].diagnosis == nil)
        }
    }

    @Test func badNumbersNameTheirLinesAndColumns() throws {
        try withTemporaryDirectory { directory in
            var cohort = try ValidationCohort(directory)
            cohort.addColumn("age") { _ in "70" }
            cohort.addColumn("mmse") { _ in "28" }
            cohort.addColumn("cdr") { _ in "0.5" }
            cohort.rows[1][4] = "abc"   // line 3
            cohort.rows[2][5] = "31"    // line 4
            cohort.rows[3][6] = "0.7"   // line 5
            cohort.rows[4][4] = "-1"    // line 6
            let validation = try cohort.validate()
            let errors = validation.errors
            #expect(errors.map(\.line) == [3, 4, 5, 6], "\(errors)")
            #expect(errors.map(\.column) == ["age", "mmse", "cdr", "age"])
            #expect(errors.allSatisfy { $0.severity == .error })
            #expect(errors[0].message.contains("\"abc\" is not a number"), "\(errors[0].message)")
            #expect(errors[1].message.contains("31 is outside 0-30"), "\(errors[1].message)")
            #expect(errors[2].message.contains("0.7 is not one of 0, 0.5, 1, 2, 3"), "\(errors[2].message)")
            #expect(errors[3].message.contains("outside 0-130"), "\(errors[3].message)")
        }
    }

    // MARK: Errors in the files

    @Test func missingScanFileNamesItsLine() throws {
        try withTemporaryDirectory { directory in
            var cohort = try ValidationCohort(directory)
            cohort.rows[2][2] = "scans/missing.nii"
            let validation = try cohort.validate()
            #expect(validation.errors.count == 1, "\(validation.errors)")
            let issue = try #require(validation.errors.first)
            #expect(issue.line == 4 && issue.column == "path" && issue.severity == .error)
            #expect(issue.message.contains("scans/missing.nii"), "\(issue.message)")
        }
    }

    @Test func garbageScanFileNamesItsLine() throws {
        try withTemporaryDirectory { directory in
            var cohort = try ValidationCohort(directory)
            try Fixture.writeBytes(Fixture.randomBytes(1000, seed: 42), to: cohort.url("scans/garbage.nii"))
            cohort.rows[4][2] = "scans/garbage.nii"
            let validation = try cohort.validate()
            #expect(validation.errors.count == 1, "\(validation.errors)")
            let issue = try #require(validation.errors.first)
            #expect(issue.line == 6 && issue.column == "path" && issue.severity == .error)
            #expect(issue.message.contains("garbage.nii"), "\(issue.message)")
        }
    }

    @Test func fourDimensionalVolumeIsAnError() throws {
        try withTemporaryDirectory { directory in
            var cohort = try ValidationCohort(directory)
            try Fixture.fourDimensionalVolume(cohort.url("scans/fmri.nii"))
            #expect(try VolumeReader.readHeader(cohort.url("scans/fmri.nii")).dims == [6, 7, 5, 2])
            cohort.rows[1][2] = "scans/fmri.nii"
            let validation = try cohort.validate()
            #expect(validation.errors.count == 1, "\(validation.errors)")
            let issue = try #require(validation.errors.first)
            #expect(issue.line == 3 && issue.column == "path" && issue.severity == .error)
            #expect(issue.message.contains("holds 2 volumes"), "\(issue.message)")
        }
    }

    @Test func scanWithOtherDimsIsAnErrorOrAWarning() throws {
        try withTemporaryDirectory { directory in
            var cohort = try ValidationCohort(directory)
            try Fixture.volume(cohort.url("scans/odd.nii"), shape: [6, 7, 6])
            cohort.rows[5][2] = "scans/odd.nii"
            let validation = try cohort.validate()
            #expect(validation.errors.count == 1, "\(validation.errors)")
            let issue = try #require(validation.errors.first)
            #expect(issue.line == 7 && issue.column == "path" && issue.severity == .error)
            #expect(issue.message.contains("[6, 7, 6]") && issue.message.contains("[6, 7, 5]"), "\(issue.message)")

            // For raw cohorts that preprocessing will resample: a warning.
            let relaxed = try cohort.validate(ManifestValidationOptions(mixedGeometry: .warning, folds: 2))
            #expect(relaxed.isValid)
            #expect(relaxed.warnings.map(\.line) == [7])
        }
    }

    @Test func scanWithOtherVoxelSizesIsAnError() throws {
        try withTemporaryDirectory { directory in
            var cohort = try ValidationCohort(directory)
            try Fixture.volume(cohort.url("scans/coarse.nii"), voxelSize: [1, 1, 1.5])
            cohort.rows[0][2] = "scans/coarse.nii"
            let validation = try cohort.validate()
            #expect(validation.errors.count == 1, "\(validation.errors)")
            let issue = try #require(validation.errors.first)
            #expect(issue.line == 2 && issue.column == "path" && issue.severity == .error)
            #expect(issue.message.contains("voxel size"), "\(issue.message)")
            #expect(issue.message.contains("1.5"), "\(issue.message)")
        }
    }

    @Test func scanWithOtherOrientationIsAWarning() throws {
        try withTemporaryDirectory { directory in
            var cohort = try ValidationCohort(directory)
            try Fixture.volume(cohort.url("scans/flipped.nii"), voxelSize: [-1, 1, 1])
            cohort.rows[3][2] = "scans/flipped.nii"
            let validation = try cohort.validate()
            #expect(validation.isValid, "\(validation.errors)")
            #expect(validation.warnings.map(\.line) == [5])
            #expect(validation.warnings.first?.message.contains("LAS") == true)
        }
    }

    @Test func maskWhoseDimsDoNotMatchItsScanIsAnError() throws {
        try withTemporaryDirectory { directory in
            var cohort = try ValidationCohort(directory)
            try Fixture.volume(cohort.url("masks/good.nii"), value: { Float($0 % 2) })
            try Fixture.volume(cohort.url("masks/small.nii"), shape: [6, 7, 4], value: { Float($0 % 2) })
            cohort.addColumn("mask_path") { index in index == 0 ? "masks/good.nii" : index == 2 ? "masks/small.nii" : "" }
            let validation = try cohort.validate()
            #expect(validation.errors.count == 1, "\(validation.errors)")
            let issue = try #require(validation.errors.first)
            #expect(issue.line == 4 && issue.column == "mask_path" && issue.severity == .error)
            #expect(issue.message.contains("[6, 7, 4]") && issue.message.contains("[6, 7, 5]"), "\(issue.message)")
        }
    }

    @Test func missingMaskAndMisalignedLabelMap() throws {
        try withTemporaryDirectory { directory in
            var cohort = try ValidationCohort(directory)
            try Fixture.volume(cohort.url("labels/shifted.nii"), voxelSize: [1, 1, 1.01], value: { Float($0 % 3) })
            cohort.addColumn("mask_path") { index in index == 1 ? "masks/absent.nii" : "" }
            cohort.addColumn("label_path") { index in index == 4 ? "labels/shifted.nii" : "" }
            let validation = try cohort.validate()
            #expect(validation.errors.map(\.line) == [3], "\(validation.errors)")
            #expect(validation.errors.first?.column == "mask_path")
            #expect(validation.warnings.map(\.line) == [6], "\(validation.warnings)")
            #expect(validation.warnings.first?.column == "label_path")
        }
    }

    // MARK: Intensities

    @Test func checkIntensitiesCatchesNaNAndConstantVolumes() throws {
        try withTemporaryDirectory { directory in
            var cohort = try ValidationCohort(directory)
            try Fixture.volume(cohort.url("scans/nan.nii"), value: { $0 == 17 ? .nan : Float($0 % 5) })
            try Fixture.volume(cohort.url("scans/flat.nii"), value: { _ in 5 })
            cohort.rows[1][2] = "scans/nan.nii"
            cohort.rows[3][2] = "scans/flat.nii"

            // Headers alone are fine.
            #expect(try cohort.validate().isValid)

            let validation = try cohort.validate(ManifestValidationOptions(checkIntensities: true, folds: 2))
            #expect(validation.errors.map(\.line) == [3, 5], "\(validation.errors)")
            #expect(validation.errors.allSatisfy { $0.severity == .error && $0.column == "path" })
            #expect(validation.errors[0].message.contains("1 NaN or infinite voxel"), "\(validation.errors[0].message)")
            #expect(validation.errors[1].message.contains("constant (every voxel is 5)"), "\(validation.errors[1].message)")
        }
    }

    // MARK: Warnings

    @Test func classImbalanceIsAWarning() throws {
        try withTemporaryDirectory { directory in
            var cohort = try ValidationCohort(directory, count: 8)
            for index in cohort.rows.indices { cohort.rows[index][3] = index < 6 ? "CN" : "AD" }
            let validation = try cohort.validate()
            #expect(validation.isValid)
            #expect(validation.participantsPerClass == [.cn: 6, .ad: 2])
            #expect(validation.warnings.count == 1, "\(validation.warnings)")
            let warning = try #require(validation.warnings.first)
            #expect(warning.severity == .warning && warning.line == nil)
            #expect(warning.message.contains("class imbalance") && warning.message.contains("CN 6, AD 2"), "\(warning.message)")

            // Within the ratio: nothing.
            let tolerant = try cohort.validate(ManifestValidationOptions(folds: 2, imbalanceRatio: 3))
            #expect(tolerant.issues.isEmpty, "\(tolerant.issues)")
        }
    }

    @Test func classSmallerThanTheFoldsIsAWarning() throws {
        try withTemporaryDirectory { directory in
            let cohort = try ValidationCohort(directory)
            let validation = try cohort.validate(ManifestValidationOptions(folds: 5))
            #expect(validation.isValid)
            #expect(validation.warnings.count == 2, "\(validation.warnings)")
            #expect(validation.warnings.allSatisfy { $0.severity == .warning && $0.line == nil })
            #expect(validation.warnings.contains { $0.message.contains("class CN has 3 participants, fewer than the 5 folds") })
            #expect(validation.warnings.contains { $0.message.contains("class AD has 3 participants, fewer than the 5 folds") })
            #expect(try cohort.validate(ManifestValidationOptions(folds: 3)).issues.isEmpty)
        }
    }

    @Test func converterParticipantIsAWarningOnItsLaterLine() throws {
        try withTemporaryDirectory { directory in
            var cohort = try ValidationCohort(directory)
            cohort.rows.insert(["sub-01", "ses-M012", "scans/sub-01.nii", "MCI"], at: 1)   // line 3; sub-01 is CN on line 2
            let validation = try cohort.validate()
            #expect(validation.isValid)
            #expect(validation.warnings.count == 1, "\(validation.warnings)")
            let warning = try #require(validation.warnings.first)
            #expect(warning.line == 3 && warning.column == "diagnosis" && warning.severity == .warning)
            #expect(warning.message.contains("sub-01") && warning.message.contains("at line 2"), "\(warning.message)")
            // Counted under its first labelled session.
            #expect(validation.participantsPerClass == [.cn: 3, .ad: 3])
        }
    }

    @Test func onlyWarningsLeaveTheManifestValid() throws {
        try withTemporaryDirectory { directory in
            var cohort = try ValidationCohort(directory, count: 8)
            for index in cohort.rows.indices { cohort.rows[index][3] = index < 6 ? "CN" : "AD" }
            cohort.rows.append(["sub-07", "ses-M012", "scans/sub-07.nii", "CN"])   // line 10: AD at line 8
            cohort.addColumn("sex") { index in index == 0 ? "X" : "F" }
            let validation = try cohort.validate(ManifestValidationOptions(folds: 3))
            #expect(validation.isValid)
            #expect(validation.errors.isEmpty)
            #expect(validation.warnings.count == validation.issues.count)
            let messages = validation.warnings.map(\.message)
            #expect(messages.contains { $0.contains("class imbalance") })
            #expect(messages.contains { $0.contains("class AD has 2 participants, fewer than the 3 folds") })
            #expect(validation.warnings.contains { $0.line == 10 && $0.column == "diagnosis" })
            #expect(validation.warnings.contains { $0.line == 2 && $0.column == "sex" })
            #expect(validation.warnings.count == 4, "\(validation.warnings)")
            // Manifest(contentsOf:) reads it too (warnings do not stop it).
            #expect(try Manifest(contentsOf: cohort.manifestURL).rows.count == 9)
        }
    }

    @Test func unlabelledOrSingleClassCohortsAreWarnings() throws {
        try withTemporaryDirectory { directory in
            var cohort = try ValidationCohort(directory)
            for index in cohort.rows.indices { cohort.rows[index][3] = "" }
            let none = try cohort.validate()
            #expect(none.isValid)
            #expect(none.warnings.map(\.message) == ["no labelled scans: the manifest can be used for pretraining only"])

            for index in cohort.rows.indices { cohort.rows[index][3] = "AD" }
            let one = try cohort.validate()
            #expect(one.isValid)
            #expect(one.warnings.count == 1)
            #expect(one.warnings.first?.message.contains("only one class (AD)") == true)
        }
    }

    // MARK: Everything at once

    @Test func manyProblemsAreAllReportedAtOnce() throws {
        try withTemporaryDirectory { directory in
            var cohort = try ValidationCohort(directory, count: 10)
            cohort.addColumn("age") { _ in "70" }
            cohort.addColumn("mmse") { _ in "28" }
            cohort.addColumn("cdr") { _ in "0" }
            cohort.addColumn("mask_path") { _ in "" }
            try Fixture.writeBytes(Fixture.randomBytes(600, seed: 7), to: cohort.url("scans/garbage.nii"))
            try Fixture.fourDimensionalVolume(cohort.url("scans/4d.nii"))
            try Fixture.volume(cohort.url("scans/odd.nii"), shape: [5, 7, 5])
            try Fixture.volume(cohort.url("masks/small.nii"), shape: [6, 6, 5])

            cohort.rows[1][3] = "dementia"                        // line 3: unknown label
            cohort.rows[2][4] = "abc"                             // line 4: age
            cohort.rows[3][5] = "31"                              // line 5: mmse
            cohort.rows[4][6] = "0.7"                             // line 6: cdr
            cohort.rows[5] = ["sub-06", "ses-M000", "scans/sub-06.nii"]   // line 7: field count
            cohort.rows[6][0] = "sub-01"                          // line 8: duplicate of line 2
            cohort.rows[7][2] = "scans/missing.nii"               // line 9: missing file
            cohort.rows[8][2] = "scans/garbage.nii"               // line 10: unreadable
            cohort.rows[9][2] = "scans/4d.nii"                    // line 11: 4-D
            cohort.rows.append(["sub-11", "ses-M000", "scans/odd.nii", "CN", "70", "28", "0", ""])          // line 12: dims
            cohort.rows.append(["sub-12", "ses-M000", "scans/sub-01.nii", "AD", "70", "28", "0", "masks/small.nii"])  // line 13: mask
            cohort.rows.append(["sub 13", "ses-M000", "scans/sub-02.nii", "AD", "70", "28", "0", ""])       // line 14: space in ID
            for index in 14...17 {                                // lines 15-18: fine
                cohort.rows.append([String(format: "sub-%02d", index), "ses-M000", "scans/sub-0\(index % 9 + 1).nii", "CN", "70", "28", "0", ""])
            }

            let validation = try cohort.validate()
            let expected = Array(3...14)
            #expect(Set(validation.errors.compactMap(\.line)) == Set(expected), "\(validation.errors)")
            for line in expected {
                #expect(validation.errors.contains { $0.line == line }, "no error on line \(line)")
            }
            #expect(!validation.errors.contains { [2, 15, 16, 17, 18].contains($0.line ?? 0) })
            #expect(validation.errors.allSatisfy { $0.line != nil })
            // Ordered by line, errors before warnings on a line, cohort-wide ones last.
            let lines = validation.issues.map { $0.line ?? .max }
            #expect(lines == lines.sorted())

            // Manifest(contentsOf:) refuses it, listing every text-level error.
            let error = #expect(throws: CohortError.self) { try Manifest(contentsOf: cohort.manifestURL) }
            guard case let .invalidManifest(path, issues) = error else {
                Issue.record("expected invalidManifest, got \(String(describing: error))")
                return
            }
            #expect(path == cohort.manifestURL.path)
            #expect(issues.map(\.line) == [3, 4, 5, 6, 7, 8, 14], "\(issues)")
            #expect(error?.description.contains("7 errors") == true)
            #expect(error?.description.contains("line 8: error: duplicate participant/session") == true)
        }
    }
}
