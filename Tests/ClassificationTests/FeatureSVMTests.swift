@testable import Classification
import Cohort
import Extraction
import Foundation
import Learn
import Testing
import TestSupport

/// The svm and ica-svm back ends on an extraction output folder (synthetic features whose
/// classes are Gaussian blobs, so AD vs CN is learnable).
@Suite struct FeatureSVMTests {
    /// 25 CN, 10 MCI and 25 AD participants; 5 + 5 of CN and AD in validation and in test.
    static let cohort = FeatureCohort.make(perClass: [25, 10, 25])

    /// A scratch folder with the cohort's split and feature folders.
    static func prepared(_ name: String, cohort: FeatureCohort = cohort) throws -> ScratchFolder {
        let scratch = try ScratchFolder(name)
        try Fixture.writeSplit(scratch.url("split"), cohort)
        try Fixture.writeFeatures(scratch.url("features"), cohort.all)
        return scratch
    }

    static func grid(_ svm: SVMSettings) -> [[String: String]] {
        svm.cGrid.flatMap { c in svm.kernel == "linear" ? [["C": "\(c)"]] : svm.gammaValues.map { ["C": "\(c)", "gamma": $0] } }
    }

    @Test(arguments: ["linear", "rbf"])
    func svmWritesPredictionsAndMetricsThatAgree(kernel: String) throws {
        let scratch = try Self.prepared("classify-svm-\(kernel)")
        defer { scratch.remove() }
        var request = Fixture.request(.svm, split: scratch.url("split"), features: scratch.url("features"), out: scratch.url("out"))
        request.svm.kernel = kernel
        if kernel == "rbf" {
            request.svm.cValues = [1, 10]
            request.svm.gammaValues = ["scale*0.1", "scale"]
            request.svm.innerFolds = 3
        }
        let (report, files) = try ClassifyJob.run(request)
        #expect(files.map({ $0.lastPathComponent }) == [ClassifyJob.predictionsFile, ClassifyJob.metricsFile])
        try checkOutputs(scratch.url("out"), cohort: Self.cohort, task: .adVsCN)

        let written = try Fixture.report(scratch.url("out"))
        #expect(written.backend == .svm && written.task == .adVsCN && written.positiveClass == "AD")
        let train = Self.cohort.train.filter { $0.diagnosis == .cn || $0.diagnosis == .ad }
        #expect(written.trainScans == train.count)
        #expect(written.trainParticipants == Set(train.map({ $0.participant })).count)
        #expect(written.trainPerClass == ["CN": train.filter { $0.diagnosis == .cn }.count, "AD": train.filter { $0.diagnosis == .ad }.count])
        #expect(written.svmSettings == request.svm && written.icaSettings == nil && written.cnnSettings == nil)
        #expect(written.provenance.seed == 5)
        let featureBytes = try Data(contentsOf: scratch.url("features/features.safetensors"))
        #expect(written.provenance.featuresSha256 == SHA256.hex(featureBytes))
        #expect(report.sets.count == written.sets.count)

        // Learnable data: well above chance on both evaluated sets.
        for set in written.sets {
            #expect(set.metrics.balancedAccuracy >= 0.8, "\(kernel) \(set.set): balanced accuracy \(set.metrics.balancedAccuracy)")
            #expect(set.metrics.rocAUC >= 0.85, "\(kernel) \(set.set): ROC AUC \(set.metrics.rocAUC)")
        }

        // The grid search: every candidate scored on every inner fold, the best one chosen.
        let selection = try #require(written.modelSelection)
        let grid = Self.grid(request.svm)
        #expect(grid.contains(selection.chosen), "chosen \(selection.chosen) is not in the grid \(grid)")
        #expect(selection.innerFolds == request.svm.innerFolds)
        #expect(selection.candidates.map({ $0.settings }) == grid)
        #expect(selection.candidates.allSatisfy { $0.foldScores.count == request.svm.innerFolds })
        var best = 0
        for (i, candidate) in selection.candidates.enumerated() where candidate.mean > selection.candidates[best].mean { best = i }
        #expect(selection.chosen == selection.candidates[best].settings, "chose \(selection.chosen), best mean is \(selection.candidates[best])")
    }

    @Test func theSameSeedGivesTheSameFiles() throws {
        let scratch = try Self.prepared("classify-svm-repeat")
        defer { scratch.remove() }
        var request = Fixture.request(.svm, split: scratch.url("split"), features: scratch.url("features"), out: scratch.url("a"))
        request.svm.kernel = "rbf"
        request.svm.cValues = [1, 10]
        request.svm.gammaValues = ["scale", "0.5"]
        _ = try ClassifyJob.run(request)
        request.out = scratch.url("b")
        _ = try ClassifyJob.run(request)
        let predictions = try (0..<2).map { try Data(contentsOf: scratch.url(["a", "b"][$0]).appendingPathComponent(ClassifyJob.predictionsFile)) }
        #expect(predictions[0] == predictions[1], "predictions.tsv differs between two runs with seed 5")
        let metrics = try (0..<2).map { try Fixture.metricsWithoutTimings(scratch.url(["a", "b"][$0])) }
        #expect(metrics[0] == metrics[1], "metrics.json differs (timings aside) between two runs with seed 5")
    }

    @Test func threeClassTaskHasThreeProbabilityColumnsAndAThreeByThreeConfusion() throws {
        let scratch = try Self.prepared("classify-svm-3")
        defer { scratch.remove() }
        var request = Fixture.request(.svm, task: .threeClass, split: scratch.url("split"), features: scratch.url("features"), out: scratch.url("out"))
        request.svm.kernel = "rbf"
        request.svm.cValues = [1]
        _ = try ClassifyJob.run(request)
        try checkOutputs(scratch.url("out"), cohort: Self.cohort, task: .threeClass)
        let report = try Fixture.report(scratch.url("out"))
        #expect(report.classes == ["CN", "MCI", "AD"] && report.positiveClass == nil)
        #expect(report.trainPerClass.keys.sorted() == ["AD", "CN", "MCI"])
        for set in report.sets {
            #expect(set.metrics.confusion.count == 3 && set.metrics.confusion.allSatisfy { $0.count == 3 })
            #expect(set.metrics.sensitivity == nil && set.metrics.specificity == nil)
            #expect(set.metrics.balancedAccuracy > 0.5, "\(set.set): three-class balanced accuracy \(set.metrics.balancedAccuracy)")
        }
        // One grid candidate: nothing to search, the single setting is recorded as chosen.
        #expect(report.modelSelection?.chosen == ["C": "1.0", "gamma": "scale"])
    }

    /// Without Platt scaling the probability columns are NaN, there is no log loss, and ROC
    /// AUC comes from the decision values (a rank statistic).
    @Test func withoutProbabilitiesTheColumnsAreNaNAndAUCComesFromDecisionValues() throws {
        let scratch = try Self.prepared("classify-svm-noprob")
        defer { scratch.remove() }
        var request = Fixture.request(.svm, split: scratch.url("split"), features: scratch.url("features"), out: scratch.url("out"))
        request.svm.probability = false
        _ = try ClassifyJob.run(request)
        let (header, lines) = try Predictions.read(scratch.url("out"))
        #expect(!lines.isEmpty && lines.allSatisfy { $0.probabilities.count == 2 && $0.probabilities.allSatisfy { $0.isNaN } })
        // The decision values are written instead, and their AUC is the reported one.
        let decision = try #require(header.firstIndex(of: "decision_AD"))
        let rows = try String(contentsOf: scratch.url("out/predictions.tsv"), encoding: .utf8).split(separator: "\n").dropFirst()
            .map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        let report = try Fixture.report(scratch.url("out"))
        for set in report.sets {
            let scored = rows.filter { $0.last == set.set }.map { (positive: $0[2] == "AD", score: Double($0[decision]) ?? .nan) }
            var won = 0.0
            for a in scored where a.positive { for b in scored where !b.positive { won += a.score > b.score ? 1 : a.score == b.score ? 0.5 : 0 } }
            let pairs = Double(scored.filter(\.positive).count * scored.filter { !$0.positive }.count)
            #expect(abs(won / pairs - set.metrics.rocAUC) < 1e-6, "\(set.set)")
            #expect(set.metrics.logLoss == nil)
            #expect(set.metrics.rocAUC >= 0.85, "\(set.set): ROC AUC from decision values \(set.metrics.rocAUC)")
            #expect(set.metrics.balancedAccuracy >= 0.8)
            let recomputed = RecomputedMetrics(lines.filter { $0.set == set.set }, classes: ["CN", "AD"])
            #expect(set.metrics.confusion == recomputed.confusion && same(set.metrics.balancedAccuracy, recomputed.balancedAccuracy))
        }
    }

    @Test func icaComponentsBeyondWhatTheFeaturesAllowAreRefused() throws {
        let scratch = try Self.prepared("classify-ica-too-many")
        defer { scratch.remove() }
        // 6 features: FastICA cannot find 10 components.
        var request = Fixture.request(.icaSVM, split: scratch.url("split"), features: scratch.url("features"), out: scratch.url("out"))
        request.ica.components = 10
        guard let error = Fixture.failure(request) else {
            Issue.record("10 components of 6 features were accepted")
            return
        }
        var refused = false
        switch error {
        case .invalidOption, .learn(.invalidOption): refused = true
        default: break
        }
        #expect(refused && error.description.contains("10") && error.description.contains("6"), "\(error)")
        // More components than an inner fold's training rows.
        request.ica.components = 1000
        guard case let .invalidOption(message)? = Fixture.failure(request) else {
            Issue.record("1000 components: expected invalidOption")
            return
        }
        #expect(message.contains("--ica-components"), "\(message)")
    }

    @Test func icaSVMOnFeaturesRecordsItsInput() throws {
        let scratch = try Self.prepared("classify-ica-features")
        defer { scratch.remove() }
        var request = Fixture.request(.icaSVM, split: scratch.url("split"), features: scratch.url("features"), out: scratch.url("out"))
        request.ica.components = 4
        let (report, files) = try ClassifyJob.run(request)
        #expect(files.map({ $0.lastPathComponent }) == [ClassifyJob.predictionsFile, ClassifyJob.metricsFile])
        #expect(!FileManager.default.fileExists(atPath: scratch.path("out/\(ClassifyJob.componentsFile)")))
        try checkOutputs(scratch.url("out"), cohort: Self.cohort, task: .adVsCN)
        let written = try Fixture.report(scratch.url("out"))
        #expect(written.backend == .icaSVM)
        #expect(written.ica?.input == "features" && written.ica?.components == 4)
        #expect(written.icaSettings == request.ica && written.svmSettings == request.svm)
        #expect(report.sets[0].metrics.balancedAccuracy >= 0.75, "ica-svm validation balanced accuracy \(report.sets[0].metrics.balancedAccuracy)")
    }

    // MARK: Errors

    @Test func aSplitRowWithoutFeaturesIsNamed() throws {
        let scratch = try ScratchFolder("classify-missing-row")
        defer { scratch.remove() }
        let cohort = Self.cohort
        // The third validation row (line 4 of validation.tsv) has no features.
        let absent = cohort.validation[2]
        try Fixture.writeSplit(scratch.url("split"), cohort)
        try Fixture.writeFeatures(scratch.url("features"), cohort.all.filter { $0.participant != absent.participant || $0.session != absent.session })
        for backend in [Backend.svm, .icaSVM, .cnn] {
            let out = scratch.url("out-\(backend.rawValue)")
            let error = Fixture.failure(Fixture.request(backend, split: scratch.url("split"), features: scratch.url("features"), out: out))
            guard case let .missingRow(set, line, participant, session, source)? = error else {
                Issue.record("\(backend): expected missingRow, got \(String(describing: error))")
                continue
            }
            #expect(set == "validation.tsv" && line == 4 && participant == absent.participant && session == absent.session, "\(backend): \(error!)")
            #expect(source.hasSuffix("features"), "\(source)")
            let message = error!.description
            #expect(message.contains("validation.tsv line 4") && message.contains(absent.participant) && message.contains(absent.session), "\(message)")
            #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent(ClassifyJob.predictionsFile).path))
        }
    }

    @Test func aFeatureFolderWithARowTwiceIsRefused() throws {
        let scratch = try ScratchFolder("classify-duplicate")
        defer { scratch.remove() }
        try Fixture.writeSplit(scratch.url("split"), Self.cohort)
        try Fixture.writeFeatures(scratch.url("features"), Self.cohort.all + [Self.cohort.test[0]])
        let error = Fixture.failure(Fixture.request(.svm, split: scratch.url("split"), features: scratch.url("features"), out: scratch.url("out")))
        guard case let .duplicateRow(participant, session, _)? = error else {
            Issue.record("expected duplicateRow, got \(String(describing: error))")
            return
        }
        #expect(participant == Self.cohort.test[0].participant && session == Self.cohort.test[0].session)
    }

    @Test func aNaNInATrainingFeatureIsALearnError() throws {
        let scratch = try ScratchFolder("classify-nan")
        defer { scratch.remove() }
        var cohort = Self.cohort
        // The fourth AD-or-CN training row, feature 2.
        let inTask = cohort.train.indices.filter { cohort.train[$0].diagnosis == .cn || cohort.train[$0].diagnosis == .ad }
        cohort.train[inTask[3]].features[2] = .nan
        try Fixture.writeSplit(scratch.url("split"), cohort)
        try Fixture.writeFeatures(scratch.url("features"), cohort.all)
        for backend in [Backend.svm, .icaSVM, .cnn] {
            let out = scratch.url("out-\(backend.rawValue)")
            let error = Fixture.failure(Fixture.request(backend, split: scratch.url("split"), features: scratch.url("features"), out: out))
            guard case let .learn(.nonFinite(_, row, column, value))? = error else {
                Issue.record("\(backend): expected learn(nonFinite), got \(String(describing: error))")
                continue
            }
            #expect(row == 3 && column == 2 && value.isNaN, "\(backend): \(error!)")
            #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent(ClassifyJob.predictionsFile).path))
        }
    }

    @Test func aShardOrAnyOtherFolderIsNotAFeatureFolder() throws {
        let scratch = try ScratchFolder("classify-shard")
        defer { scratch.remove() }
        try Fixture.writeSplit(scratch.url("split"), Self.cohort)
        try FileManager.default.createDirectory(at: scratch.url("shard"), withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: scratch.url("shard/\(ShardFolder.recordFile)"))
        try FileManager.default.createDirectory(at: scratch.url("empty"), withIntermediateDirectories: true)
        for (folder, phrase) in [("shard", "adwb extract merge"), ("empty", "not an `adwb extract` output folder")] {
            for backend in [Backend.svm, .cnn] {
                let error = Fixture.failure(Fixture.request(backend, split: scratch.url("split"), features: scratch.url(folder), out: scratch.url("out")))
                guard case .extraction? = error else {
                    Issue.record("\(folder), \(backend): expected an extraction error, got \(String(describing: error))")
                    continue
                }
                #expect(error!.description.contains(phrase), "\(folder), \(backend): \(error!)")
            }
        }
    }

    @Test func existingOutputsNeedOverwrite() throws {
        let scratch = try Self.prepared("classify-overwrite")
        defer { scratch.remove() }
        var request = Fixture.request(.svm, split: scratch.url("split"), features: scratch.url("features"), out: scratch.url("out"))
        _ = try ClassifyJob.run(request)
        let error = Fixture.failure(request)
        guard case let .io(message)? = error else {
            Issue.record("expected io, got \(String(describing: error))")
            return
        }
        #expect(message.contains("--overwrite") && message.contains(ClassifyJob.predictionsFile), "\(message)")
        request.overwrite = true
        let (_, files) = try ClassifyJob.run(request)
        #expect(files.allSatisfy { FileManager.default.fileExists(atPath: $0.path) })
        // A file of another back end (a CNN checkpoint) blocks the folder too.
        try FileManager.default.removeItem(at: scratch.url("out/\(ClassifyJob.predictionsFile)"))
        try FileManager.default.removeItem(at: scratch.url("out/\(ClassifyJob.metricsFile)"))
        try Data().write(to: scratch.url("out/cnn_best.safetensors"))
        request.overwrite = false
        guard case .io? = Fixture.failure(request) else {
            Issue.record("a leftover CNN checkpoint did not block the output folder")
            return
        }
    }

    @Test func invalidSVMOptionsAreRefusedWithoutWritingAnything() throws {
        let scratch = try Self.prepared("classify-options")
        defer { scratch.remove() }
        let changes: [(String, (inout SVMSettings) -> Void, String)] = [
            ("kernel foo", { $0.kernel = "foo" }, "foo"),
            ("C = 0", { $0.cValues = [1, 0] }, "C values"),
            ("C < 0", { $0.cValues = [-1] }, "C values"),
            ("C = nan", { $0.cValues = [.nan] }, "C values"),
            ("no C", { $0.cValues = [] }, "C values"),
            ("gamma xyz", { $0.kernel = "rbf"; $0.gammaValues = ["scale", "xyz"] }, "xyz"),
            ("gamma 0", { $0.kernel = "rbf"; $0.gammaValues = ["0"] }, "gamma"),
            ("gamma scale*-1", { $0.kernel = "rbf"; $0.gammaValues = ["scale*-1"] }, "scale*-1"),
            ("no gamma", { $0.kernel = "rbf"; $0.gammaValues = [] }, "gamma"),
            ("inner folds 1", { $0.innerFolds = 1 }, "inner folds"),
            ("solver", { $0.solver = "newton" }, "newton"),
            ("liblinear rbf", { $0.kernel = "rbf"; $0.solver = "liblinear" }, "liblinear"),
            ("class weight", { $0.classWeight = "heavy" }, "heavy"),
        ]
        for (name, change, phrase) in changes {
            for backend in [Backend.svm, .icaSVM] {
                var request = Fixture.request(backend, split: scratch.url("split"), features: scratch.url("features"), out: scratch.url("out-\(name)"))
                change(&request.svm)
                let error = Fixture.failure(request)
                guard case let .invalidOption(message)? = error else {
                    Issue.record("\(name), \(backend): expected invalidOption, got \(String(describing: error))")
                    continue
                }
                #expect(message.contains(phrase), "\(name): \(message)")
                let written = (try? FileManager.default.contentsOfDirectory(atPath: scratch.path("out-\(name)"))) ?? []
                #expect(written.isEmpty, "\(name), \(backend): wrote \(written)")
            }
        }
        // ICA options of ica-svm on features.
        let icaChanges: [(String, (inout ICASettings) -> Void)] = [
            ("algorithm", { $0.algorithm = "serial" }), ("contrast", { $0.contrast = "tanh" }), ("whitening", { $0.whitening = "zca" }),
        ]
        for (name, change) in icaChanges {
            var request = Fixture.request(.icaSVM, split: scratch.url("split"), features: scratch.url("features"), out: scratch.url("out-ica"))
            change(&request.ica)
            guard case .invalidOption? = Fixture.failure(request) else {
                Issue.record("ICA \(name): expected invalidOption")
                continue
            }
        }
    }

    /// Invalid options must be found before `--overwrite` removes the outputs of an earlier run.
    @Test(arguments: [Backend.svm, .icaSVM, .cnn])
    func invalidOptionsWithOverwriteKeepTheEarlierOutputs(backend: Backend) throws {
        let scratch = try Self.prepared("classify-options-overwrite-\(backend.rawValue)")
        defer { scratch.remove() }
        var request = Fixture.request(backend, split: scratch.url("split"), features: scratch.url("features"), out: scratch.url("out"))
        _ = try ClassifyJob.run(request)
        let before = try Data(contentsOf: scratch.url("out/\(ClassifyJob.predictionsFile)"))
        request.overwrite = true
        if backend == .cnn { request.cnn.epochs = 0 } else { request.svm.kernel = "foo" }
        guard case .invalidOption? = Fixture.failure(request) else {
            Issue.record("\(backend): the invalid option was not refused")
            return
        }
        let after = try? Data(contentsOf: scratch.url("out/\(ClassifyJob.predictionsFile)"))
        #expect(after == before, "\(backend): a run refused for an invalid option deleted the earlier predictions.tsv")
        #expect(FileManager.default.fileExists(atPath: scratch.path("out/\(ClassifyJob.metricsFile)")),
                "\(backend): a run refused for an invalid option deleted the earlier metrics.json")
    }

    @Test func aSplitWithoutATestSetIsEvaluatedOnValidationOnly() throws {
        let scratch = try ScratchFolder("classify-no-test")
        defer { scratch.remove() }
        try Fixture.writeSplit(scratch.url("split"), Self.cohort, withTest: false)
        try Fixture.writeFeatures(scratch.url("features"), Self.cohort.all)
        let (report, _) = try ClassifyJob.run(Fixture.request(.svm, split: scratch.url("split"), features: scratch.url("features"), out: scratch.url("out")))
        #expect(report.sets.count == 1)
        try checkOutputs(scratch.url("out"), cohort: Self.cohort, task: .adVsCN, withTest: false)
    }
}
