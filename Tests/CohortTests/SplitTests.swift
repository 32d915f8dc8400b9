import Foundation
import Testing
import TestSupport
import Cohort

/// A cohort made in code: participants `sub-0001`, ... with two sessions each
/// (`scans/<participant>_<session>.nii`), classes interleaved. Among the labelled
/// participants every third has an unlabelled follow-up, every fifth an unlabelled baseline
/// (its class comes from the follow-up) and every seventh converts at follow-up (its class is
/// the baseline's).
func splitCohort(cn: Int, mci: Int, ad: Int, unlabeled: Int,
                 directory: URL = URL(fileURLWithPath: "/data/cohort")) -> Manifest {
    var classes: [Diagnosis?] = []
    var remaining: [(Diagnosis?, Int)] = [(.cn, cn), (.mci, mci), (.ad, ad), (nil, unlabeled)]
    while remaining.contains(where: { $0.1 > 0 }) {
        for index in remaining.indices where remaining[index].1 > 0 {
            classes.append(remaining[index].0)
            remaining[index].1 -= 1
        }
    }
    var rows: [ManifestRow] = []
    for (index, diagnosis) in classes.enumerated() {
        let participant = String(format: "sub-%04d", index + 1)
        var baseline = diagnosis
        var followUp = diagnosis
        if let diagnosis {
            if index % 3 == 0 { followUp = nil }
            else if index % 5 == 0 { baseline = nil }
            else if index % 7 == 0 { followUp = diagnosis == .ad ? .mci : .ad }
        }
        for (session, label) in [("ses-M000", baseline), ("ses-M012", followUp)] {
            rows.append(ManifestRow(participantID: participant, sessionID: session,
                                    path: "scans/\(participant)_\(session).nii", diagnosis: label,
                                    age: Double(60 + index % 30), sex: index % 2 == 0 ? "F" : "M"))
        }
    }
    return Manifest(directory: directory, rows: rows)
}

/// Each participant's class: the diagnosis of its first labelled session (nil: unlabelled).
func strata(_ manifest: Manifest) -> [String: Diagnosis?] {
    var result: [String: Diagnosis?] = [:]
    for row in manifest.rows {
        if case .some(.some(_)) = result[row.participantID] { continue }
        result[row.participantID] = row.diagnosis
    }
    return result
}

func rowKeys(_ manifest: Manifest) -> [String] { manifest.rows.map { $0.participantID + "/" + $0.sessionID } }

/// Everything the split promises, checked against the cohort it came from.
func checkSplit(_ split: CohortSplit, of manifest: Manifest, folds k: Int, testFraction: Double,
                sourceLocation: SourceLocation = #_sourceLocation) {
    let stratum = strata(manifest)
    let labelled = manifest.participants.filter { stratum[$0] != .some(nil) }
    let unlabelled = manifest.participants.filter { stratum[$0] == .some(nil) }
    let rowsOf = Dictionary(grouping: manifest.rows, by: \.participantID).mapValues { $0.map(\.sessionID) }
    #expect(split.folds.count == k, sourceLocation: sourceLocation)

    // The test set: round(f * n_c) participants of each class, all their sessions.
    let test = Set(split.test?.participants ?? [])
    if testFraction == 0 {
        #expect(split.test == nil, sourceLocation: sourceLocation)
    } else if let testManifest = split.test {
        for diagnosis in Diagnosis.allCases {
            let members = labelled.filter { stratum[$0] == diagnosis }
            let held = test.filter { stratum[$0] == diagnosis }
            #expect(held.count == Int((testFraction * Double(members.count)).rounded()),
                    "test holds \(held.count) of \(members.count) \(diagnosis.rawValue)", sourceLocation: sourceLocation)
        }
        #expect(test.isDisjoint(with: unlabelled), "no unlabelled participant is tested", sourceLocation: sourceLocation)
        for participant in test {
            #expect(testManifest.rows.filter { $0.participantID == participant }.map(\.sessionID) == rowsOf[participant],
                    sourceLocation: sourceLocation)
        }
    } else {
        Issue.record("no test set for a test fraction of \(testFraction)", sourceLocation: sourceLocation)
    }

    // Each labelled participant not tested is validated in exactly one fold, with all its
    // sessions, and trains in every other fold (never in its own).
    for participant in labelled where !test.contains(participant) {
        let home = split.folds.indices.filter { split.folds[$0].validation.participants.contains(participant) }
        #expect(home.count == 1, "\(participant) is validated in folds \(home)", sourceLocation: sourceLocation)
        for (index, fold) in split.folds.enumerated() {
            let validationSessions = fold.validation.rows.filter { $0.participantID == participant }.map(\.sessionID)
            let trainSessions = fold.train.rows.filter { $0.participantID == participant }.map(\.sessionID)
            if home.first == index {
                #expect(validationSessions == rowsOf[participant], sourceLocation: sourceLocation)
                #expect(trainSessions.isEmpty, "\(participant) trains in its own fold \(index)", sourceLocation: sourceLocation)
            } else {
                #expect(validationSessions.isEmpty, sourceLocation: sourceLocation)
                #expect(trainSessions == rowsOf[participant], sourceLocation: sourceLocation)
            }
        }
    }
    for (index, fold) in split.folds.enumerated() {
        // Unlabelled participants train everywhere and are never validated.
        for participant in unlabelled {
            #expect(fold.train.rows.filter { $0.participantID == participant }.map(\.sessionID) == rowsOf[participant],
                    "unlabelled \(participant) missing from fold \(index)'s train", sourceLocation: sourceLocation)
        }
        #expect(Set(fold.validation.participants).isDisjoint(with: unlabelled), sourceLocation: sourceLocation)
        // Test participants are nowhere in the folds.
        #expect(Set(fold.train.participants).isDisjoint(with: test), sourceLocation: sourceLocation)
        #expect(Set(fold.validation.participants).isDisjoint(with: test), sourceLocation: sourceLocation)
        // Train, validation and test cover every row exactly once, in the manifest's order.
        #expect(fold.train.rows.count + fold.validation.rows.count + (split.test?.rows.count ?? 0) == manifest.rows.count,
                sourceLocation: sourceLocation)
        #expect(Set(rowKeys(fold.train) + rowKeys(fold.validation) + (split.test.map(rowKeys) ?? [])) == Set(rowKeys(manifest)),
                sourceLocation: sourceLocation)
        #expect(fold.validation.directory == manifest.directory && fold.train.columns == manifest.columns,
                sourceLocation: sourceLocation)
        // Stratification: within one participant of n_c / k for every class.
        for diagnosis in Diagnosis.allCases {
            let available = labelled.filter { stratum[$0] == diagnosis && !test.contains($0) }.count
            guard available > 0 else { continue }
            let count = fold.validation.participants.filter { stratum[$0] == diagnosis }.count
            let target = Double(available) / Double(k)
            #expect(abs(Double(count) - target) < 1,
                    "fold \(index): \(count) \(diagnosis.rawValue) for a share of \(target)", sourceLocation: sourceLocation)
        }
        #expect(throws: Never.self, sourceLocation: sourceLocation) {
            try LeakageCheck.verify([("train", fold.train), ("validation", fold.validation)] + (split.test.map { [("test", $0)] } ?? []))
        }
    }
}

/// The fields of `split.json` (decoded independently of the library's own type).
struct SplitJSON: Decodable {
    struct Counts: Decodable {
        var train: [String: Int]
        var validation: [String: Int]
    }
    var folds: Int
    var test_fraction: Double
    var seed: UInt64
    var source_manifest_sha256: String
    var participants: [Counts]
    var test: [String: Int]?
}

@Suite struct SplitTests {
    @Test(arguments: [(2, 1 as UInt64), (3, 7), (5, 42)])
    func foldsKeepParticipantsTogetherAndStratify(_ folds: Int, _ seed: UInt64) throws {
        let manifest = splitCohort(cn: 12, mci: 8, ad: 10, unlabeled: 4)
        // The cohort has what the checks are about.
        let stratum = strata(manifest)
        #expect(stratum.values.filter { $0 == .cn }.count == 12)
        #expect(stratum.values.filter { $0 == nil }.count == 4)
        #expect(manifest.rows.contains { $0.diagnosis == nil && stratum[$0.participantID] != .some(nil) })

        let split = try CohortSplitter.split(manifest, options: SplitOptions(folds: folds, seed: seed))
        checkSplit(split, of: manifest, folds: folds, testFraction: 0)
    }

    @Test(arguments: [0.2, 0.3])
    func testSetIsHeldOutPerClass(_ fraction: Double) throws {
        let manifest = splitCohort(cn: 12, mci: 8, ad: 10, unlabeled: 3)
        let split = try CohortSplitter.split(manifest, options: SplitOptions(folds: 3, testFraction: fraction, seed: 11))
        checkSplit(split, of: manifest, folds: 3, testFraction: fraction)
        let test = try #require(split.test)
        let stratum = strata(manifest)
        // 0.2: 2.4, 1.6, 2 -> 2 + 2 + 2; 0.3: 3.6, 2.4, 3 -> 4 + 2 + 3.
        let expected = fraction == 0.2 ? [Diagnosis.cn: 2, .mci: 2, .ad: 2] : [.cn: 4, .mci: 2, .ad: 3]
        for (diagnosis, count) in expected {
            #expect(test.participants.filter { stratum[$0] == diagnosis }.count == count)
        }
    }

    @Test func sameSeedSameSplitOtherSeedOtherSplit() throws {
        let manifest = splitCohort(cn: 12, mci: 8, ad: 10, unlabeled: 4)
        func assignment(_ seed: UInt64) throws -> [[String]] {
            let split = try CohortSplitter.split(manifest, options: SplitOptions(folds: 4, testFraction: 0.2, seed: seed))
            return split.folds.map(\.validation.participants) + [split.test?.participants ?? []]
        }
        let first = try CohortSplitter.split(manifest, options: SplitOptions(folds: 4, testFraction: 0.2, seed: 5))
        let second = try CohortSplitter.split(manifest, options: SplitOptions(folds: 4, testFraction: 0.2, seed: 5))
        #expect(first.folds.map(\.train) == second.folds.map(\.train))
        #expect(first.folds.map(\.validation) == second.folds.map(\.validation))
        #expect(first.test == second.test)
        #expect(first.options == second.options)

        let reference = try assignment(5)
        #expect(try assignment(6) != reference)
        #expect(try assignment(1234567) != reference)
        // Different seeds give different memberships, not just a different fold order.
        #expect(Set(try assignment(6).map { Set($0) }) != Set(reference.map { Set($0) }))
    }

    @Test func moreFoldsThanAClassHasIsImpossible() throws {
        let manifest = splitCohort(cn: 12, mci: 8, ad: 3, unlabeled: 2)
        let error = #expect(throws: CohortError.self) {
            try CohortSplitter.split(manifest, options: SplitOptions(folds: 5, seed: 1))
        }
        guard case let .impossibleSplit(reason) = error else {
            Issue.record("expected impossibleSplit, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("class AD has 3 participants"), "\(reason)")
        #expect(error?.description.contains("AD") == true)
        #expect(error?.description.hasPrefix("cannot split: ") == true)
        // Three folds would be fine... unless the test set takes one of the AD participants.
        #expect(throws: Never.self) { try CohortSplitter.split(manifest, options: SplitOptions(folds: 3, seed: 1)) }
        let afterTest = #expect(throws: CohortError.self) {
            try CohortSplitter.split(manifest, options: SplitOptions(folds: 3, testFraction: 0.25, seed: 1))
        }
        #expect(afterTest?.description.contains("class AD has 2 participants after 1 went to the test set") == true,
                "\(String(describing: afterTest))")
    }

    @Test func noLabelledParticipantsIsImpossible() throws {
        let manifest = splitCohort(cn: 0, mci: 0, ad: 0, unlabeled: 6)
        let error = #expect(throws: CohortError.self) {
            try CohortSplitter.split(manifest, options: SplitOptions(folds: 2, seed: 1))
        }
        guard case .impossibleSplit = error else {
            Issue.record("expected impossibleSplit, got \(String(describing: error))")
            return
        }
    }

    @Test(arguments: [(1, 0.0, "folds"), (0, 0.0, "folds"), (-3, 0.0, "folds"),
                      (5, 1.0, "test fraction"), (5, 1.5, "test fraction"), (5, -0.1, "test fraction"), (5, .nan, "test fraction")])
    func badParametersAreInvalid(_ folds: Int, _ fraction: Double, _ name: String) throws {
        let manifest = splitCohort(cn: 10, mci: 10, ad: 10, unlabeled: 0)
        let error = #expect(throws: CohortError.self) {
            try CohortSplitter.split(manifest, options: SplitOptions(folds: folds, testFraction: fraction, seed: 1))
        }
        guard case let .invalidParameter(parameter, _, _) = error else {
            Issue.record("expected invalidParameter, got \(String(describing: error))")
            return
        }
        #expect(parameter == name)
    }

    // MARK: Leakage

    @Test func leakageCheckNamesTheParticipantAndBothSets() throws {
        let manifest = splitCohort(cn: 4, mci: 0, ad: 4, unlabeled: 0)
        let train = manifest.filter { $0.participantID <= "sub-0007" }
        let validation = manifest.filter { $0.participantID >= "sub-0007" }
        let error = #expect(throws: CohortError.self) {
            try LeakageCheck.verify([("train", train), ("validation", validation)])
        }
        #expect(error == .dataLeakage(participant: "sub-0007", first: "train", second: "validation"))
        #expect(error?.description == "data leakage: participant sub-0007 is in train and validation")

        // Disjoint sets pass, even with a participant's sessions spread over its own set.
        #expect(throws: Never.self) {
            try LeakageCheck.verify([("train", manifest.filter { $0.participantID < "sub-0007" }), ("validation", validation)])
        }
        // The first leaking participant, in the order of the sets given.
        let third = manifest.filter { $0.participantID == "sub-0002" }
        let error2 = #expect(throws: CohortError.self) {
            try LeakageCheck.verify([("train", manifest.filter { $0.participantID < "sub-0007" }), ("validation", validation), ("test", third)])
        }
        #expect(error2 == .dataLeakage(participant: "sub-0002", first: "train", second: "test"))
    }

    // MARK: Writing and reading split folders

    @Test func writtenSplitReadsBackAndPointsAtTheSameFiles() throws {
        try withTemporaryDirectory { directory in
            let cohortFolder = directory.appendingPathComponent("cohort")
            let manifest = splitCohort(cn: 9, mci: 6, ad: 8, unlabeled: 3, directory: cohortFolder)
            for row in manifest.rows { try Fixture.touch(manifest.url(for: row.path)) }
            let split = try CohortSplitter.split(manifest, options: SplitOptions(folds: 3, testFraction: 0.25, seed: 9))
            let out = directory.appendingPathComponent("splits")
            try split.write(to: out, source: manifest)

            for index in 0..<3 {
                for name in ["train.tsv", "validation.tsv"] {
                    #expect(Fixture.exists(out.appendingPathComponent("split-\(index)/\(name)")), "split-\(index)/\(name)")
                }
            }
            #expect(!Fixture.exists(out.appendingPathComponent("split-3")))
            #expect(Fixture.exists(out.appendingPathComponent("test.tsv")))

            // split.json records what made the split.
            let record = try JSONDecoder().decode(SplitJSON.self, from: Data(contentsOf: out.appendingPathComponent("split.json")))
            #expect(record.folds == 3 && record.seed == 9 && record.test_fraction == 0.25)
            #expect(record.source_manifest_sha256 == manifest.contentHash)
            #expect(record.participants.count == 3)
            let stratum = strata(manifest)
            func counts(_ set: Manifest) -> [String: Int] {
                var counts: [String: Int] = [:]
                for participant in set.participants { counts[stratum[participant]??.rawValue ?? "unlabeled", default: 0] += 1 }
                return counts
            }
            for (index, fold) in split.folds.enumerated() where index < record.participants.count {
                #expect(record.participants[index].validation == counts(fold.validation))
                #expect(record.participants[index].train == counts(fold.train))
                #expect(record.participants[index].train["unlabeled"] == 3)
            }
            #expect(record.test == split.test.map(counts))
            #expect(record.test?.values.reduce(0, +) == split.test?.participants.count)

            let originals = Dictionary(uniqueKeysWithValues: manifest.rows.map { ($0.participantID + "/" + $0.sessionID, $0) })
            for (index, fold) in split.folds.enumerated() {
                let folder = try SplitFolder(out.appendingPathComponent("split-\(index)"))
                #expect(folder.train.participants == fold.train.participants)
                #expect(folder.validation.participants == fold.validation.participants)
                #expect(folder.test?.participants == split.test?.participants, "test.tsv found in the parent folder")
                // Paths were rewritten relative to split-<i>/ and still name the original files.
                for set in [folder.train, folder.validation, try #require(folder.test)] {
                    for row in set.rows {
                        let original = try #require(originals[row.participantID + "/" + row.sessionID])
                        #expect(row.path.hasPrefix("../"), "\(row.path)")
                        #expect(set.url(for: row.path) == manifest.url(for: original.path))
                        #expect(Fixture.exists(set.url(for: row.path)))
                        var same = row
                        same.path = original.path
                        same.line = nil
                        #expect(same == original)
                    }
                }
            }
        }
    }

    @Test func rewritingReplacesOldSplitFolders() throws {
        try withTemporaryDirectory { directory in
            let manifest = splitCohort(cn: 6, mci: 0, ad: 6, unlabeled: 0, directory: directory)
            let out = directory.appendingPathComponent("splits")
            try CohortSplitter.split(manifest, options: SplitOptions(folds: 4, testFraction: 0.2, seed: 1)).write(to: out, source: manifest)
            #expect(Fixture.exists(out.appendingPathComponent("split-3/train.tsv")))
            #expect(Fixture.exists(out.appendingPathComponent("test.tsv")))
            try CohortSplitter.split(manifest, options: SplitOptions(folds: 2, seed: 1)).write(to: out, source: manifest)
            let names = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
            #expect(names == ["split-0", "split-1", "split.json"])
            #expect(try SplitFolder(out.appendingPathComponent("split-1")).test == nil)
        }
    }

    @Test func handEditedLeakingSplitFolderIsRefused() throws {
        try withTemporaryDirectory { directory in
            let manifest = splitCohort(cn: 6, mci: 0, ad: 6, unlabeled: 2, directory: directory)
            let split = try CohortSplitter.split(manifest, options: SplitOptions(folds: 2, testFraction: 0.2, seed: 3))
            let out = directory.appendingPathComponent("splits")
            try split.write(to: out, source: manifest)
            let folder = out.appendingPathComponent("split-0")
            #expect(throws: Never.self) { try SplitFolder(folder) }

            // Copy a labelled training row into validation.tsv.
            let trainText = try String(contentsOf: folder.appendingPathComponent("train.tsv"), encoding: .utf8)
            let trainLines = trainText.split(separator: "\n").dropFirst()
            let leaked = try #require(trainLines.first { line in
                let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
                return split.folds[0].train.rows.contains { $0.participantID == fields[0] && $0.diagnosis != nil }
            })
            let participant = String(leaked.split(separator: "\t")[0])
            let validationURL = folder.appendingPathComponent("validation.tsv")
            let original = try String(contentsOf: validationURL, encoding: .utf8)
            try Fixture.write(original + String(leaked) + "\n", to: validationURL)
            let error = #expect(throws: CohortError.self) { try SplitFolder(folder) }
            #expect(error == .dataLeakage(participant: participant, first: "train", second: "validation"))
            #expect(error?.description == "data leakage: participant \(participant) is in train and validation")

            // A test participant copied into validation.tsv leaks too.
            let testText = try String(contentsOf: out.appendingPathComponent("test.tsv"), encoding: .utf8)
            let testLine = try #require(testText.split(separator: "\n").dropFirst().first)
            let testParticipant = String(testLine.split(separator: "\t")[0])
            try Fixture.write(original + String(testLine) + "\n", to: validationURL)
            let error2 = #expect(throws: CohortError.self) { try SplitFolder(folder) }
            #expect(error2 == .dataLeakage(participant: testParticipant, first: "validation", second: "test"))
        }
    }

    @Test func aTestFractionThatHoldsOutNobodyIsAClearError() throws {
        try withTemporaryDirectory { directory in
            let manifest = splitCohort(cn: 4, mci: 0, ad: 4, unlabeled: 0, directory: directory)
            // round(0.1 * 4) = 0: nobody would be held out.
            let error = #expect(throws: CohortError.self) {
                try CohortSplitter.split(manifest, options: SplitOptions(folds: 2, testFraction: 0.1, seed: 1))
            }
            #expect(error?.description.contains("holds out no participant") == true, "\(String(describing: error))")
        }
    }
}
