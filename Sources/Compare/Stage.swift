import Cohort
import Foundation
import TensorCore

/// What a stage's output depends on: its kind, its settings and the keys of what it reads.
/// The stage key is the SHA-256 of this record's canonical JSON, so any change of input or
/// configuration gives a new key and the stage is redone.
struct StageInputs: Codable, Equatable {
    var kind: String
    var version: String
    /// The stage's own settings, as canonical JSON.
    var settings: String
    /// Keys or content hashes of everything it reads, by name.
    var inputs: [String: String]

    var key: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding plain strings and a dictionary of strings cannot fail.
        return SHA256.hex((try? encoder.encode(self)) ?? Data())
    }

    /// A Codable value as canonical (sorted-key) JSON text.
    static func canonical(_ value: some Encodable) throws(CompareError) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do { return String(decoding: try encoder.encode(value), as: UTF8.self) } catch { throw .io("encoding stage settings: \(error)") }
    }
}

/// One stage's folder in the work directory. `stage.json` (its inputs and key) is written
/// last, when the stage has finished; a folder without it holds an interrupted or failed
/// attempt, which the next run resumes (pretraining) or redoes.
struct Stage {
    static let recordFile = "stage.json"
    static let pendingFile = "stage-pending.json"

    let name: String
    let folder: URL
    let inputs: StageInputs

    var key: String { inputs.key }

    private var record: URL { folder.appendingPathComponent(Self.recordFile) }
    private var pending: URL { folder.appendingPathComponent(Self.pendingFile) }

    /// Whether the folder holds this stage finished with exactly these inputs.
    var isFinished: Bool { Self.read(record) == inputs }

    /// Whether an unfinished attempt with these inputs was started here.
    var wasStarted: Bool { Self.read(pending) == inputs && !isFinished }

    /// Marks the folder as holding an attempt with these inputs (an earlier finished record
    /// goes first, so a crash never leaves a record that describes other outputs).
    func begin() throws(CompareError) {
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            if FileManager.default.fileExists(atPath: record.path) { try FileManager.default.removeItem(at: record) }
            try AtomicFile.write(try Self.encoded(inputs), to: pending)
        } catch let error as CompareError { throw error } catch {
            throw .io("\(folder.path): cannot start stage \(name): \(error)")
        }
    }

    /// Records the stage as finished.
    func finish() throws(CompareError) {
        do {
            try AtomicFile.write(try Self.encoded(inputs), to: record)
            try? FileManager.default.removeItem(at: pending)
        } catch { throw .io("\(record.path): \(error)") }
    }

    private static func encoded(_ inputs: StageInputs) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return try encoder.encode(inputs)
    }

    private static func read(_ url: URL) -> StageInputs? {
        guard let data = try? Data(contentsOf: url) else { return nil }
        return try? JSONDecoder().decode(StageInputs.self, from: data)
    }
}
