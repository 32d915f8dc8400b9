import Classification
import Cohort
import Foundation

/// One held-out scan's prediction by one back end in one fold.
public struct Prediction: Sendable, Equatable {
    public var participantID: String
    public var sessionID: String
    public var fold: Int
    /// Labels: positions in the task's classes.
    public var truth: Int
    public var predicted: Int
    /// Per class, in the task's class order (NaN when the model gives none).
    public var probabilities: [Double]
    /// Per-class scores for ROC: the probabilities, or the decision values when the model
    /// has no probabilities (one value, for the positive class, in a two-class task).
    public var scores: [Double]
}

/// A back end's predictions of one fold's validation scans, read from `adwb classify`'s
/// `predictions.tsv`.
struct FoldPredictions {
    var fold: Int
    var rows: [Prediction]

    static func read(_ url: URL, fold: Int, task: ClassificationTask) throws(CompareError) -> FoldPredictions {
        let table: TSVTable
        do { table = try TSVTable(contentsOf: url) } catch { throw .cohort(error) }
        let classes = task.classes.map(\.rawValue)
        func column(_ name: String) throws(CompareError) -> Int {
            guard let index = table.header.firstIndex(of: name) else { throw .badOutput(path: url.path, reason: "no \(name) column") }
            return index
        }
        let (participant, session, diagnosis, predicted, set) = (try column("participant_id"), try column("session_id"), try column("diagnosis"),
                                                                 try column("predicted"), try column("set"))
        let probabilities = try classes.map { (name: String) throws(CompareError) in try column("prob_\(name)") }
        let decisions = table.header.indices.filter { table.header[$0].hasPrefix("decision_") }
        var rows: [Prediction] = []
        let width = table.header.count
        for line in table.lines {
            let fields = line.fields
            guard fields.count == width else {
                throw .badOutput(path: url.path, reason: "line \(line.number) has \(fields.count) fields, the header \(width)")
            }
            guard fields[set] == "validation" else { continue }
            guard let truth = classes.firstIndex(of: fields[diagnosis]), let guess = classes.firstIndex(of: fields[predicted]) else {
                throw .badOutput(path: url.path, reason: "line \(line.number): diagnosis '\(fields[diagnosis])' or prediction '\(fields[predicted])' is not one of \(classes.joined(separator: ", "))")
            }
            let p = probabilities.map { Double(fields[$0]) ?? .nan }
            let d = decisions.map { Double(fields[$0]) ?? .nan }
            let scores = p.allSatisfy(\.isFinite) ? (classes.count == 2 ? [p[1]] : p) : d
            rows.append(Prediction(participantID: fields[participant], sessionID: fields[session], fold: fold, truth: truth, predicted: guess,
                                   probabilities: p, scores: scores))
        }
        guard !rows.isEmpty else { throw .badOutput(path: url.path, reason: "no validation rows") }
        return FoldPredictions(fold: fold, rows: rows)
    }
}

/// The `notes` of a classification's `metrics.json` (warnings worth repeating in the report).
enum ClassifyNotes {
    private struct Notes: Decodable { var notes: [String] }

    static func read(_ folder: URL) throws -> [String] {
        let data = try Data(contentsOf: folder.appendingPathComponent(ClassifyJob.metricsFile))
        return try JSONDecoder().decode(Notes.self, from: data).notes
    }
}
