import Cohort
import Foundation
import Learn

/// One labelled scan of a split, as a classifier sees it.
public struct LabelledScan: Sendable, Equatable {
    public var participantID: String
    public var sessionID: String
    public var diagnosis: Diagnosis
    /// Position of `diagnosis` in the task's classes.
    public var label: Int
    /// Its line in the split's TSV.
    public var line: Int?
    /// Its line in the `--manifest` its scan was taken from (nil when the split's own path is used).
    public var manifestLine: Int?
    /// The scan and mask, resolved against the split file's folder.
    public var image: URL
    public var mask: URL?

    public var key: ScanKey { ScanKey(participantID: participantID, sessionID: sessionID) }

    /// "validation.tsv line 3 (manifest line 18)", for messages about the scan.
    func location(_ set: String) -> String {
        "\(set)\(line.map { " line \($0)" } ?? "")\(manifestLine.map { " (manifest line \($0))" } ?? "")"
    }
}

/// (participant, session): how rows of different files are matched.
public struct ScanKey: Hashable, Sendable {
    public var participantID: String
    public var sessionID: String
}

/// A split folder's rows restricted to a task: training rows and the sets to predict.
public struct LabelledSplit: Sendable {
    public var task: ClassificationTask
    public var train: [LabelledScan]
    /// `validation` and, when the split has one, `test`.
    public var evaluated: [(name: String, scans: [LabelledScan])]

    /// Rows of the split whose diagnosis belongs to `task`; the rest (other diagnoses,
    /// unlabelled) are left out.
    /// - Throws: `.missingClass` when training lacks one of the task's classes, `.emptySet`
    ///   when validation (or test) holds none of them.
    public init(_ split: SplitFolder, task: ClassificationTask) throws(ClassificationError) {
        self.task = task
        func scans(_ manifest: Manifest) -> [LabelledScan] {
            manifest.rows.compactMap { row in
                guard let diagnosis = row.diagnosis, let label = task.label(diagnosis) else { return nil }
                return LabelledScan(participantID: row.participantID, sessionID: row.sessionID, diagnosis: diagnosis, label: label,
                                    line: row.line, manifestLine: nil, image: manifest.url(for: row.path),
                                    mask: row.maskPath.map { manifest.url(for: $0) })
            }
        }
        train = scans(split.train)
        for diagnosis in task.classes where !train.contains(where: { $0.diagnosis == diagnosis }) {
            throw .missingClass(set: "train.tsv", diagnosis: diagnosis, task: task)
        }
        evaluated = [("validation", scans(split.validation))]
        if let test = split.test { evaluated.append(("test", scans(test))) }
        for (name, rows) in evaluated where rows.isEmpty { throw .emptySet(set: "\(name).tsv", task: task) }
    }

    /// Every row's participant, for participant-level inner folds.
    public var trainGroups: [String] { train.map(\.participantID) }
    public var trainLabels: [Int] { train.map(\.label) }
}
