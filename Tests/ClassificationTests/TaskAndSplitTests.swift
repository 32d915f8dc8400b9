@testable import Classification
import Cohort
import Foundation
import Testing
import TestSupport

/// Tasks, their labels, and how a split folder is restricted to a task's rows.
@Suite struct TaskAndSplitTests {
    @Test func everyTaskListsItsClassesMildestFirst() {
        let expected: [ClassificationTask: (classes: [Diagnosis], title: String, raw: String)] = [
            .adVsCN: ([.cn, .ad], "AD vs CN", "ad-cn"),
            .mciVsCN: ([.cn, .mci], "MCI vs CN", "mci-cn"),
            .adVsMCI: ([.mci, .ad], "AD vs MCI", "ad-mci"),
            .threeClass: ([.cn, .mci, .ad], "CN / MCI / AD", "cn-mci-ad"),
        ]
        #expect(Set(ClassificationTask.allCases) == Set(expected.keys))
        for task in ClassificationTask.allCases {
            let want = expected[task]!
            #expect(task.classes == want.classes, "\(task)")
            #expect(task.title == want.title, "\(task): \(task.title)")
            #expect(task.rawValue == want.raw)
            let severities = task.classes.map({ $0.severity })
            #expect(severities == severities.sorted() && Set(severities).count == severities.count, "\(task) not in severity order")
            // Labels are positions in `classes`; the positive class of a pair is the more severe.
            for (i, diagnosis) in task.classes.enumerated() { #expect(task.label(diagnosis) == i, "\(task) \(diagnosis)") }
            for diagnosis in Diagnosis.allCases where !task.classes.contains(diagnosis) { #expect(task.label(diagnosis) == nil) }
            #expect(task.label(nil) == nil)
        }
    }

    @Test func labelledSplitKeepsTheTasksRowsInFileOrder() throws {
        let scratch = try ScratchFolder("classify-labelled")
        defer { scratch.remove() }
        let cohort = FeatureCohort.make()
        try Fixture.writeSplit(scratch.url("split"), cohort)
        let folder = try SplitFolder(scratch.url("split"))
        for task in ClassificationTask.allCases {
            let split = try LabelledSplit(folder, task: task)
            func expected(_ rows: [SyntheticRow]) -> [(row: SyntheticRow, line: Int)] {
                rows.enumerated().compactMap { i, row in
                    row.diagnosis.map { task.classes.contains($0) } == true ? (row, i + 2) : nil
                }
            }
            let train = expected(cohort.train)
            #expect(split.train.count == train.count, "\(task): \(split.train.count) training rows, \(train.count) expected")
            for (scan, (row, line)) in zip(split.train, train) {
                #expect(scan.participantID == row.participant && scan.sessionID == row.session && scan.diagnosis == row.diagnosis)
                #expect(scan.line == line, "\(task) \(row.participant): line \(String(describing: scan.line)), expected \(line)")
                #expect(scan.label == task.label(row.diagnosis))
                #expect(scan.image.lastPathComponent == row.path)
            }
            #expect(split.trainLabels == train.map { task.label($0.row.diagnosis)! })
            #expect(split.trainGroups == train.map({ $0.row.participant }))
            #expect(split.evaluated.map({ $0.name }) == ["validation", "test"])
            #expect(split.evaluated[0].scans.map({ $0.participantID }) == expected(cohort.validation).map({ $0.row.participant }))
            #expect(split.evaluated[1].scans.map({ $0.participantID }) == expected(cohort.test).map({ $0.row.participant }))
            #expect(split.evaluated[1].scans.map({ $0.line }) == expected(cohort.test).map({ $0.line }))
            // Unlabelled rows and other diagnoses are gone.
            #expect(!split.train.contains { !task.classes.contains($0.diagnosis) })
        }
        let unlabelled = cohort.train.filter { $0.diagnosis == nil }.count
        let threeClass = try LabelledSplit(folder, task: .threeClass)
        #expect(unlabelled > 0 && threeClass.train.count == cohort.train.count - unlabelled)
    }

    @Test func trainingWithoutOneOfTheTasksClassesIsRefusedNamingIt() throws {
        let scratch = try ScratchFolder("classify-missing-class")
        defer { scratch.remove() }
        var cohort = FeatureCohort.make()
        cohort.train.removeAll { $0.diagnosis == .ad }
        try Fixture.writeSplit(scratch.url("split"), cohort)
        let folder = try SplitFolder(scratch.url("split"))
        for task in [ClassificationTask.adVsCN, .adVsMCI, .threeClass] {
            do {
                _ = try LabelledSplit(folder, task: task)
                Issue.record("\(task): a split without AD training rows was accepted")
            } catch {
                guard case let .missingClass(set, diagnosis, errorTask) = error else {
                    Issue.record("\(task): expected missingClass, got \(error)")
                    continue
                }
                #expect(set == "train.tsv" && diagnosis == .ad && errorTask == task)
                #expect(error.description.contains("AD") && error.description.contains("train.tsv"), "\(error)")
            }
        }
        // The task that needs no AD is fine.
        let withoutAD = try LabelledSplit(folder, task: .mciVsCN)
        #expect(withoutAD.train.count > 0)

        // Through the job: refused, and nothing is written.
        let out = scratch.url("out")
        let error = Fixture.failure(Fixture.request(.svm, split: scratch.url("split"), features: scratch.url("features"), out: out))
        guard case .missingClass(_, .ad, .adVsCN)? = error else {
            Issue.record("expected missingClass AD, got \(String(describing: error))")
            return
        }
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }

    @Test func evaluatedSetsWithoutAnyTaskRowAreRefused() throws {
        let scratch = try ScratchFolder("classify-empty-set")
        defer { scratch.remove() }
        let cohort = FeatureCohort.make()
        // Validation holds MCI (and unlabelled) rows only.
        let mci = cohort.validation.filter { $0.diagnosis == .mci }
        let unlabelled = SyntheticRow(participant: "sub-900", session: "ses-M000", diagnosis: nil, features: [])
        try Fixture.writeSplit(scratch.url("split-a"), train: cohort.train, validation: mci + [unlabelled], test: cohort.test)
        do {
            _ = try LabelledSplit(try SplitFolder(scratch.url("split-a")), task: .adVsCN)
            Issue.record("a validation set without CN or AD rows was accepted")
        } catch let error as ClassificationError {
            guard case let .emptySet(set, task) = error else { Issue.record("expected emptySet, got \(error)"); return }
            #expect(set == "validation.tsv" && task == .adVsCN)
            #expect(error.description.contains("validation.tsv"), "\(error)")
        }
        // The same for the test set.
        try Fixture.writeSplit(scratch.url("split-b"), train: cohort.train, validation: cohort.validation,
                               test: cohort.test.filter { $0.diagnosis == .mci })
        let error = Fixture.failure(Fixture.request(.svm, split: scratch.url("split-b"), features: scratch.url("features"), out: scratch.url("out")))
        guard case .emptySet("test.tsv", .adVsCN)? = error else {
            Issue.record("expected emptySet test.tsv, got \(String(describing: error))")
            return
        }
    }

    @Test func aParticipantOnTwoSidesIsRefusedBeforeAnythingIsFitted() throws {
        let scratch = try ScratchFolder("classify-leak")
        defer { scratch.remove() }
        let cohort = FeatureCohort.make()
        try Fixture.writeFeatures(scratch.url("features"), cohort.all)
        // A training participant's other session in validation.
        let leaked = try #require(cohort.train.first { $0.diagnosis == .ad })
        var second = leaked
        second.session = "ses-M024"
        try Fixture.writeSplit(scratch.url("split"), train: cohort.train, validation: cohort.validation + [second], test: cohort.test)
        for backend in Backend.allCases {
            let out = scratch.url("out-\(backend.rawValue)")
            var request = Fixture.request(backend, split: scratch.url("split"), features: scratch.url("features"), out: out)
            request.features = scratch.url("features")
            let error = Fixture.failure(request)
            guard case let .cohort(.dataLeakage(participant, first, secondSet))? = error else {
                Issue.record("\(backend): expected a data-leakage error, got \(String(describing: error))")
                continue
            }
            #expect(participant == leaked.participant && first == "train" && secondSet == "validation")
            #expect(!FileManager.default.fileExists(atPath: out.path), "\(backend): the output folder was created")
        }
        // A test.tsv beside the split folder (as `adwb manifest split` writes it) is checked too.
        try Fixture.writeSplit(scratch.url("parent/split-0"), train: cohort.train, validation: cohort.validation, test: nil)
        try Data(Fixture.manifestText(cohort.test + [second]).utf8).write(to: scratch.url("parent/test.tsv"))
        let error = Fixture.failure(Fixture.request(.svm, split: scratch.url("parent/split-0"), features: scratch.url("features"), out: scratch.url("out")))
        guard case .cohort(.dataLeakage(leaked.participant, "train", "test"))? = error else {
            Issue.record("expected leakage between train and test, got \(String(describing: error))")
            return
        }
    }

    @Test func eachBackendRefusesInputsItCannotUse() throws {
        let scratch = try ScratchFolder("classify-inputs")
        defer { scratch.remove() }
        let cohort = FeatureCohort.make()
        try Fixture.writeSplit(scratch.url("split"), cohort)
        let (features, manifest, model) = (scratch.url("features"), scratch.url("manifest.tsv"), scratch.url("run"))
        let cases: [(Backend, URL?, URL?, URL?, String)] = [
            (.svm, nil, nil, nil, "--features"),
            (.svm, nil, manifest, nil, "--features"),
            (.svm, features, manifest, nil, "not both"),
            (.icaSVM, nil, nil, nil, "--manifest"),
            (.icaSVM, features, nil, model, "--model"),
            (.cnn, nil, nil, nil, "--model"),
            (.cnn, nil, manifest, nil, "--model"),
            (.cnn, features, nil, model, "--model"),
            (.svm, features, nil, model, "cnn"),
        ]
        for (i, (backend, f, m, r, phrase)) in cases.enumerated() {
            var request = Fixture.request(backend, split: scratch.url("split"), features: f, out: scratch.url("out-\(i)"))
            request.manifest = m
            request.model = r
            let error = Fixture.failure(request)
            guard case let .invalidOption(message)? = error else {
                Issue.record("case \(i) (\(backend)): expected invalidOption, got \(String(describing: error))")
                continue
            }
            #expect(message.contains(phrase), "case \(i): \(message)")
            #expect(!FileManager.default.fileExists(atPath: scratch.path("out-\(i)")))
        }
    }
}
