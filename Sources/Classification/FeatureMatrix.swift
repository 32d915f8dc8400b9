import Extraction
import Foundation
import TensorCore

extension FeatureTable {
    /// The rows of `scans`, in their order, `[n, F]`.
    /// - Throws: `.missingRow` naming the split line of a scan without features, and
    ///   `.duplicateRow` when the folder has a (participant, session) twice.
    func matrix(for scans: [LabelledScan], set: String) throws(ClassificationError) -> Tensor {
        var position: [ScanKey: Int] = [:]
        for (i, row) in rows.enumerated() {
            let key = ScanKey(participantID: row.participantID, sessionID: row.sessionID)
            guard position.updateValue(i, forKey: key) == nil else {
                throw .duplicateRow(participant: row.participantID, session: row.sessionID, source: directory.path)
            }
        }
        var indices: [Int] = []
        for scan in scans {
            guard let i = position[scan.key] else {
                throw .missingRow(set: set, line: scan.line, participant: scan.participantID, session: scan.sessionID, source: directory.path)
            }
            indices.append(i)
        }
        do { return try values.gatheringBatch(indices) } catch { throw .io("\(directory.path): \(error)") }
    }

    /// `read`, with its error as a classification error.
    static func readForClassification(_ directory: URL) throws(ClassificationError) -> FeatureTable {
        do { return try read(directory) } catch { throw .extraction(error) }
    }
}
