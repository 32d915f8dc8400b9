import Cohort
import Foundation
import NeuralNet
import TensorCore

/// The features of a finished `adwb extract` folder, as a classifier reads them: one row of
/// `values [N, F]` per scan, with its ids and diagnosis, read from `features.safetensors`
/// (values and ids together, so they cannot disagree).
public struct FeatureTable: Sendable, Equatable {
    public struct Row: Sendable, Equatable, Hashable {
        public var participantID: String
        public var sessionID: String
        public var diagnosis: Diagnosis?
    }

    public var directory: URL
    public var rows: [Row]
    /// Feature names (`c<channel>_x<i>_y<j>_z<k>`), `[F]`.
    public var names: [String]
    public var values: Tensor
    /// SHA-256 of `features.safetensors`, for provenance.
    public var sha256: String

    /// Reads `directory/features.safetensors`.
    /// - Throws: `ExtractionError.io` naming the folder when it is not an extraction output (or
    ///   only a shard of one), or when its ids and values disagree.
    public static func read(_ directory: URL) throws(ExtractionError) -> FeatureTable {
        let url = directory.appendingPathComponent(FeatureExport.safetensorsFile)
        guard FileManager.default.fileExists(atPath: url.path) else {
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent(ShardFolder.recordFile).path) {
                throw .io("\(directory.path) holds one shard of an extraction; join the shards with `adwb extract merge` first")
            }
            throw .io("\(directory.path) is not an `adwb extract` output folder (no \(FeatureExport.safetensorsFile))")
        }
        let bytes: Data
        let decoded: (tensors: [String: SafeTensors.Value], metadata: [String: String])
        do {
            bytes = try Data(contentsOf: url)
            decoded = try SafeTensors.decode(bytes, path: url.path)
        } catch {
            throw .io("\(url.path): \(error)")
        }
        func strings(_ key: String) throws(ExtractionError) -> [String] {
            guard let text = decoded.metadata[key], let list = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else {
                throw .io("\(url.path): metadata '\(key)' is missing or not a list of strings")
            }
            return list
        }
        guard case let .float32(values)? = decoded.tensors["features"], values.rank == 2 else {
            throw .io("\(url.path): no float32 matrix named 'features'")
        }
        let participants = try strings("participant_id"), sessions = try strings("session_id")
        let diagnoses = try strings("diagnosis"), names = try strings("feature_names")
        let n = values.shape[0]
        guard participants.count == n, sessions.count == n, diagnoses.count == n, names.count == values.shape[1] else {
            throw .io("\(url.path): \(n)×\(values.shape[1]) features but \(participants.count) participant ids, \(sessions.count) session ids, \(diagnoses.count) diagnoses and \(names.count) names")
        }
        var rows: [Row] = []
        for i in 0..<n {
            let diagnosis: Diagnosis?
            do { diagnosis = try Diagnosis.parse(diagnoses[i]) } catch {
                throw .io("\(url.path): row \(i) (\(participants[i]) \(sessions[i])): \(error)")
            }
            rows.append(Row(participantID: participants[i], sessionID: sessions[i], diagnosis: diagnosis))
        }
        return FeatureTable(directory: directory, rows: rows, names: names, values: values, sha256: SHA256.hex(bytes))
    }
}
