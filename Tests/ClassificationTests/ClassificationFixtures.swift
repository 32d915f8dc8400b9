import Autoencoders
@testable import Classification
import Cohort
import Foundation
import NeuralNet
import TensorCore
import Testing
import TestSupport

// Shared fixtures of the classification tests: split folders and feature folders written
// from synthetic rows (no scans needed), readers of the outputs, and an independent
// recomputation of the metrics from predictions.tsv.

/// One scan of a synthetic split: ids, diagnosis (nil = unlabelled) and features.
struct SyntheticRow: Sendable {
    var participant: String
    var session: String
    var diagnosis: Diagnosis?
    var features: [Float]

    var path: String { "\(participant)_\(session)_T1w.nii.gz" }
}

/// A synthetic cohort of feature rows: class-dependent Gaussian blobs, so the classes are
/// learnable (CN around −shift, MCI around 0, AD around +shift on the first `informative`
/// features; every feature has unit-variance noise).
struct FeatureCohort: Sendable {
    var train: [SyntheticRow]
    var validation: [SyntheticRow]
    var test: [SyntheticRow]

    var all: [SyntheticRow] { train + validation + test }

    /// - Parameters:
    ///   - perClass: participants of CN, MCI and AD.
    ///   - unlabelled: extra participants without a diagnosis (all in train).
    /// Participant `i` of a class goes to train (i mod 5 ∈ {0, 1, 2}), validation (3) or test
    /// (4); every third participant has a second session.
    static func make(perClass: [Int] = [15, 10, 15], unlabelled: Int = 3, features d: Int = 6, informative: Int = 3,
                     shift: Float = 1.2, seed: UInt64 = 7) -> FeatureCohort {
        var generator = Xoshiro256StarStar(seed: seed)
        var cohort = FeatureCohort(train: [], validation: [], test: [])
        var number = 0
        func rows(_ diagnosis: Diagnosis?, sessions: Int) -> [SyntheticRow] {
            number += 1
            let participant = String(format: "sub-%03d", number)
            let centre: Float = diagnosis.map { $0 == .cn ? -shift : $0 == .ad ? shift : 0 } ?? 0
            return (0..<sessions).map { s in
                let features = (0..<d).map { j in (j < informative ? centre : 0) + generator.nextStandardNormal() }
                return SyntheticRow(participant: participant, session: s == 0 ? "ses-M000" : "ses-M012", diagnosis: diagnosis, features: features)
            }
        }
        for (c, diagnosis) in [Diagnosis.cn, .mci, .ad].enumerated() {
            for i in 0..<perClass[c] {
                let made = rows(diagnosis, sessions: i % 3 == 2 ? 2 : 1)
                switch i % 5 {
                case 3: cohort.validation += made
                case 4: cohort.test += made
                default: cohort.train += made
                }
            }
        }
        for _ in 0..<unlabelled { cohort.train += rows(nil, sessions: 1) }
        return cohort
    }
}

enum Fixture {
    /// A manifest TSV of `rows` (paths are never opened by the feature back ends).
    static func manifestText(_ rows: [SyntheticRow]) -> String {
        "participant_id\tsession_id\tpath\tdiagnosis\n"
            + rows.map { "\($0.participant)\t\($0.session)\t\($0.path)\t\($0.diagnosis?.rawValue ?? "n/a")\n" }.joined()
    }

    /// Writes `train.tsv`, `validation.tsv` and (when given) `test.tsv` into `folder`.
    static func writeSplit(_ folder: URL, train: [SyntheticRow], validation: [SyntheticRow], test: [SyntheticRow]?) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data(manifestText(train).utf8).write(to: folder.appendingPathComponent("train.tsv"))
        try Data(manifestText(validation).utf8).write(to: folder.appendingPathComponent("validation.tsv"))
        if let test { try Data(manifestText(test).utf8).write(to: folder.appendingPathComponent("test.tsv")) }
    }

    static func writeSplit(_ folder: URL, _ cohort: FeatureCohort, withTest: Bool = true) throws {
        try writeSplit(folder, train: cohort.train, validation: cohort.validation, test: withTest ? cohort.test : nil)
    }

    /// An `adwb extract`-like output folder: `features.safetensors` (as `FeatureExport`
    /// writes it: tensor `features [N, F]`, ids and names as JSON lists in the metadata) with
    /// `rows` in a shuffled order, so the back ends must match rows by (participant, session).
    static func writeFeatures(_ folder: URL, _ rows: [SyntheticRow], shuffleSeed: UInt64 = 99) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var order = Array(rows.indices)
        var generator = Xoshiro256StarStar(seed: shuffleSeed)
        order.seededShuffle(using: &generator)
        let shuffled = order.map { rows[$0] }
        let d = rows.first?.features.count ?? 0
        let values = try Tensor(shape: [shuffled.count, d], scalars: shuffled.flatMap({ $0.features }))
        func json(_ strings: [String]) throws -> String { String(decoding: try JSONEncoder().encode(strings), as: UTF8.self) }
        let metadata = [
            "participant_id": try json(shuffled.map({ $0.participant })),
            "session_id": try json(shuffled.map({ $0.session })),
            "diagnosis": try json(shuffled.map { $0.diagnosis?.rawValue ?? "n/a" }),
            "feature_names": try json((0..<d).map { "c\($0)_x0_y0_z0" }),
            "format": "pt",
        ]
        let bytes = try SafeTensors.encode([("features", .float32(values))], metadata: metadata)
        try bytes.write(to: folder.appendingPathComponent("features.safetensors"))
    }

    /// A request of `backend` on a split and feature folder, with small, fast settings.
    static func request(_ backend: Backend, task: ClassificationTask = .adVsCN, split: URL, features: URL?, out: URL) -> ClassifyRequest {
        var request = ClassifyRequest(backend: backend, task: task, split: split, out: out)
        request.features = features
        request.seed = 5
        request.svm.kernel = "linear"
        request.svm.cValues = [0.1, 1]
        request.svm.gammaValues = ["scale"]
        request.svm.innerFolds = 2
        request.ica.components = 3
        request.cnn.hidden = [8]
        request.cnn.epochs = 12
        request.cnn.batchSize = 8
        request.cnn.learningRate = 1e-2
        request.cnn.dropout = 0.1
        request.cnn.patience = 12
        return request
    }

    /// The error `ClassifyJob.run` throws, nil when it succeeds.
    static func failure(_ request: ClassifyRequest) -> ClassificationError? {
        do {
            _ = try ClassifyJob.run(request)
            return nil
        } catch {
            return error
        }
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return decoder
    }

    static func report(_ out: URL) throws -> ClassifyReport {
        try decoder().decode(ClassifyReport.self, from: Data(contentsOf: out.appendingPathComponent(ClassifyJob.metricsFile)))
    }

    /// metrics.json re-encoded with every timing (`seconds`, and each epoch's) set to zero:
    /// what two runs with the same inputs and seed must agree on byte for byte.
    static func metricsWithoutTimings(_ out: URL) throws -> Data {
        var report = try report(out)
        report.seconds = [:]
        if var cnn = report.cnn {
            for i in cnn.history.indices { cnn.history[i].seconds = 0 }
            report.cnn = cnn
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return try encoder.encode(report)
    }
}

/// One line of predictions.tsv.
struct PredictionLine: Equatable {
    var participant: String
    var session: String
    var diagnosis: String
    var predicted: String
    var probabilities: [Double]
    var set: String
}

enum Predictions {
    /// Header fields and lines of `out/predictions.tsv`.
    static func read(_ out: URL) throws -> (header: [String], lines: [PredictionLine]) {
        let text = try String(contentsOf: out.appendingPathComponent(ClassifyJob.predictionsFile), encoding: .utf8)
        #expect(text.hasSuffix("\n"), "predictions.tsv does not end with a line break")
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map {
            $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        }
        let header = lines.first ?? []
        let probabilityColumns = header.indices.filter { header[$0].hasPrefix("prob_") }
        let setColumn = header.count - 1
        var parsed: [PredictionLine] = []
        for fields in lines.dropFirst() {
            guard fields.count == header.count else {
                Issue.record("predictions.tsv line has \(fields.count) fields, the header \(header.count): \(fields)")
                continue
            }
            let probabilities = probabilityColumns.map { Double(Float(fields[$0]) ?? .nan) }
            parsed.append(PredictionLine(participant: fields[0], session: fields[1], diagnosis: fields[2], predicted: fields[3],
                                         probabilities: probabilities, set: fields[setColumn]))
        }
        return (header, parsed)
    }
}

/// Metrics recomputed from predictions.tsv alone, independently of `ClassificationMetrics`.
struct RecomputedMetrics {
    var confusion: [[Int]]
    var accuracy: Double
    var balancedAccuracy: Double
    var sensitivity: Double?
    var specificity: Double?
    var rocAUC: Double

    init(_ lines: [PredictionLine], classes: [String]) {
        let k = classes.count
        var confusion = Array(repeating: Array(repeating: 0, count: k), count: k)
        for line in lines {
            if let t = classes.firstIndex(of: line.diagnosis), let p = classes.firstIndex(of: line.predicted) { confusion[t][p] += 1 }
        }
        let n = lines.count
        let correct = (0..<k).map { confusion[$0][$0] }.reduce(0, +)
        let recalls = (0..<k).compactMap { c -> Double? in
            let support = confusion[c].reduce(0, +)
            return support > 0 ? Double(confusion[c][c]) / Double(support) : nil
        }
        self.confusion = confusion
        accuracy = Double(correct) / Double(n)
        balancedAccuracy = recalls.reduce(0, +) / Double(recalls.count)
        if k == 2 {
            sensitivity = Double(confusion[1][1]) / Double(confusion[1].reduce(0, +))
            specificity = Double(confusion[0][0]) / Double(confusion[0].reduce(0, +))
        }
        /// Mann–Whitney: P(score of a positive > score of a negative), ties one half.
        func auc(_ c: Int) -> Double {
            let positives = lines.filter { $0.diagnosis == classes[c] }.map { $0.probabilities[c] }
            let negatives = lines.filter { $0.diagnosis != classes[c] }.map { $0.probabilities[c] }
            guard !positives.isEmpty, !negatives.isEmpty else { return .nan }
            var wins = 0.0
            for p in positives { for q in negatives { wins += p > q ? 1 : p == q ? 0.5 : 0 } }
            return wins / Double(positives.count * negatives.count)
        }
        rocAUC = k == 2 ? auc(1) : (0..<k).map(auc).reduce(0, +) / Double(k)
    }
}

/// `a` and `b` equal to 1e-9 (both NaN counts as equal).
func same(_ a: Double?, _ b: Double?) -> Bool {
    switch (a, b) {
    case (nil, nil): return true
    case let (x?, y?): return (x.isNaN && y.isNaN) || abs(x - y) <= 1e-9
    default: return false
    }
}

/// An evaluated scan as predictions.tsv must list it.
struct ExpectedLine {
    var participant: String
    var session: String
    var diagnosis: Diagnosis?
    var set: String
}

/// The cohort's validation (and test) rows of `task`'s classes, in order.
func expectedLines(_ cohort: FeatureCohort, task: ClassificationTask, withTest: Bool = true) -> [ExpectedLine] {
    func inTask(_ rows: [SyntheticRow], _ set: String) -> [ExpectedLine] {
        rows.filter { row in row.diagnosis.map { task.classes.contains($0) } ?? false }
            .map { ExpectedLine(participant: $0.participant, session: $0.session, diagnosis: $0.diagnosis, set: set) }
    }
    return inTask(cohort.validation, "validation") + (withTest ? inTask(cohort.test, "test") : [])
}

/// The split folder's validation (and test) rows of `task`'s classes, in order.
func expectedLines(_ split: SplitFolder, task: ClassificationTask) -> [ExpectedLine] {
    func inTask(_ manifest: Manifest, _ set: String) -> [ExpectedLine] {
        manifest.rows.filter { row in row.diagnosis.map { task.classes.contains($0) } ?? false }
            .map { ExpectedLine(participant: $0.participantID, session: $0.sessionID, diagnosis: $0.diagnosis, set: set) }
    }
    return inTask(split.validation, "validation") + (split.test.map { inTask($0, "test") } ?? [])
}

func checkOutputs(_ out: URL, cohort: FeatureCohort, task: ClassificationTask, withTest: Bool = true,
                  sourceLocation: SourceLocation = #_sourceLocation) throws {
    try checkOutputs(out, expected: expectedLines(cohort, task: task, withTest: withTest), task: task, sourceLocation: sourceLocation)
}

/// Checks predictions.tsv (one line per evaluated scan, in order, with probabilities in
/// [0, 1] summing to one) and every metric of metrics.json against a recomputation from it.
func checkOutputs(_ out: URL, expected: [ExpectedLine], task: ClassificationTask, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let (header, lines) = try Predictions.read(out)
    let classes = task.classes.map({ $0.rawValue })
    let wantedHeader = ["participant_id", "session_id", "diagnosis", "predicted"] + classes.map { "prob_\($0)" } + ["set"]
    #expect(header == wantedHeader, "header \(header)", sourceLocation: sourceLocation)
    #expect(lines.count == expected.count, "\(lines.count) prediction lines for \(expected.count) evaluated scans", sourceLocation: sourceLocation)
    for (line, row) in zip(lines, expected) {
        let matches = line.participant == row.participant && line.session == row.session && line.set == row.set
            && line.diagnosis == row.diagnosis?.rawValue
        #expect(matches, "line \(line) for \(row)", sourceLocation: sourceLocation)
        #expect(classes.contains(line.predicted), sourceLocation: sourceLocation)
        let valid = line.probabilities.allSatisfy { $0 >= 0 && $0 <= 1 }
        #expect(valid, "probabilities \(line.probabilities)", sourceLocation: sourceLocation)
        let total = line.probabilities.reduce(0, +)
        #expect(abs(total - 1) < 1e-4, "probabilities sum to \(total)", sourceLocation: sourceLocation)
    }
    let report = try Fixture.report(out)
    let sets = report.sets.map { $0.set }
    var wantedSets: [String] = []
    for row in expected where !wantedSets.contains(row.set) { wantedSets.append(row.set) }
    #expect(report.classes == classes, sourceLocation: sourceLocation)
    #expect(sets == wantedSets, "sets \(sets)", sourceLocation: sourceLocation)
    for evaluated in report.sets {
        let subset = lines.filter { $0.set == evaluated.set }
        let participants = Set(subset.map { $0.participant }).count
        let recomputed = RecomputedMetrics(subset, classes: classes)
        let m = evaluated.metrics
        #expect(evaluated.scans == subset.count, sourceLocation: sourceLocation)
        #expect(evaluated.participants == participants, sourceLocation: sourceLocation)
        #expect(m.count == subset.count, sourceLocation: sourceLocation)
        #expect(m.confusion == recomputed.confusion, "\(evaluated.set): confusion \(m.confusion) vs \(recomputed.confusion)", sourceLocation: sourceLocation)
        #expect(same(m.accuracy, recomputed.accuracy), "\(evaluated.set): accuracy \(m.accuracy) vs \(recomputed.accuracy)", sourceLocation: sourceLocation)
        #expect(same(m.balancedAccuracy, recomputed.balancedAccuracy),
                "\(evaluated.set): balanced accuracy \(m.balancedAccuracy) vs \(recomputed.balancedAccuracy)", sourceLocation: sourceLocation)
        #expect(same(m.sensitivity, recomputed.sensitivity), "\(evaluated.set): sensitivity", sourceLocation: sourceLocation)
        #expect(same(m.specificity, recomputed.specificity), "\(evaluated.set): specificity", sourceLocation: sourceLocation)
        #expect(same(m.rocAUC, recomputed.rocAUC), "\(evaluated.set): ROC AUC \(m.rocAUC) vs \(recomputed.rocAUC)", sourceLocation: sourceLocation)
    }
}
