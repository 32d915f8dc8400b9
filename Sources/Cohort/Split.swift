import Foundation
import TensorCore

/// A manifest's rows grouped by participant, each participant with its stratum: the
/// diagnosis of its first labelled session (`nil` when it has none).
struct ParticipantGroups {
    /// Participants in order of first appearance.
    var participants: [String]
    var stratum: [String: Diagnosis?]

    init(_ manifest: Manifest) {
        participants = manifest.participants
        var stratum: [String: Diagnosis?] = [:]
        for row in manifest.rows {
            if let existing = stratum[row.participantID], existing != nil { continue }
            stratum[row.participantID] = row.diagnosis
        }
        self.stratum = stratum
    }

    var participantsPerStratum: [Diagnosis?: Int] {
        var counts: [Diagnosis?: Int] = [:]
        for participant in participants { counts[stratum[participant] ?? nil, default: 0] += 1 }
        return counts
    }

    /// Labelled participants per class.
    var participantsPerClass: [Diagnosis: Int] {
        var counts: [Diagnosis: Int] = [:]
        for participant in participants { if let diagnosis = stratum[participant] ?? nil { counts[diagnosis, default: 0] += 1 } }
        return counts
    }

    /// Labelled participants of one class, in order of first appearance.
    func members(of diagnosis: Diagnosis) -> [String] {
        participants.filter { stratum[$0] == diagnosis }
    }
}

/// How to split a cohort.
public struct SplitOptions: Sendable, Equatable {
    /// Cross-validation folds (k >= 2).
    public var folds: Int
    /// Share of each class's participants held out as the test set first (0 = no test set).
    public var testFraction: Double
    public var seed: UInt64

    public init(folds: Int, testFraction: Double = 0, seed: UInt64) {
        self.folds = folds
        self.testFraction = testFraction
        self.seed = seed
    }
}

/// A participant-level stratified split: an optional held-out test set and k folds of the rest.
public struct CohortSplit: Sendable {
    public struct Fold: Sendable {
        /// The other folds' labelled participants plus every unlabelled participant.
        public var train: Manifest
        /// This fold's labelled participants.
        public var validation: Manifest
    }

    public var options: SplitOptions
    public var folds: [Fold]
    /// `nil` when `testFraction` is 0.
    public var test: Manifest?
}

/// Stratified k-fold at the participant level (as scikit-learn's StratifiedGroupKFold and
/// ClinicaDL's `split`): all sessions of a participant land in the same fold; strata are the
/// diagnoses; unlabelled participants join every fold's training set (for pretraining) and
/// never a validation or test set.
///
/// Each class's participants are shuffled with the seed and dealt round-robin over the folds,
/// the dealing continuing from where the previous class stopped, so every fold holds
/// floor(n_c / k) or ceil(n_c / k) participants of class c and the folds' sizes differ by at
/// most one participant per class. The test set takes the first round(f * n_c) participants
/// of each shuffled class.
public enum CohortSplitter {
    public static func split(_ manifest: Manifest, options: SplitOptions) throws(CohortError) -> CohortSplit {
        let k = options.folds
        guard k >= 2 else { throw .invalidParameter(name: "folds", value: "\(k)", reason: "a cross-validation needs at least 2 folds") }
        guard options.testFraction >= 0, options.testFraction < 1 else {
            throw .invalidParameter(name: "test fraction", value: "\(options.testFraction)", reason: "must be in [0, 1)")
        }
        let groups = ParticipantGroups(manifest)
        var random = Xoshiro256StarStar(seed: options.seed)
        var testParticipants: Set<String> = []
        var foldOf: [String: Int] = [:]
        var dealt = 0
        for diagnosis in Diagnosis.allCases {
            var members = groups.members(of: diagnosis)
            guard !members.isEmpty else { continue }
            members.seededShuffle(using: &random)
            let testCount = Int((options.testFraction * Double(members.count)).rounded())
            testParticipants.formUnion(members.prefix(testCount))
            let remaining = members.dropFirst(testCount)
            guard remaining.count >= k else {
                let held = testCount > 0 ? " after \(testCount) went to the test set" : ""
                throw .impossibleSplit(reason: "class \(diagnosis.rawValue) has \(remaining.count) participant\(remaining.count == 1 ? "" : "s")\(held), fewer than the \(k) folds (every fold needs at least one); use fewer folds")
            }
            for (index, participant) in remaining.enumerated() { foldOf[participant] = (dealt + index) % k }
            dealt += remaining.count
        }
        guard dealt > 0 else { throw .impossibleSplit(reason: "the manifest has no labelled participants") }

        var folds: [CohortSplit.Fold] = []
        for fold in 0..<k {
            let validation = manifest.filter { foldOf[$0.participantID] == fold }
            let train = manifest.filter { row in
                guard !testParticipants.contains(row.participantID) else { return false }
                return foldOf[row.participantID].map { $0 != fold } ?? true
            }
            folds.append(CohortSplit.Fold(train: train, validation: validation))
        }
        if options.testFraction > 0 && testParticipants.isEmpty {
            throw .impossibleSplit(reason: "a test fraction of \(options.testFraction) holds out no participant of any class (round(f x class size) is 0); raise it or use 0")
        }
        let test = testParticipants.isEmpty ? nil : manifest.filter { testParticipants.contains($0.participantID) }
        return CohortSplit(options: options, folds: folds, test: test)
    }
}

/// The check every training and evaluation command makes: no participant on two sides.
public enum LeakageCheck {
    /// Throws `CohortError.dataLeakage` for the first participant (in the order of the sets
    /// given, then of their rows) found in two of them.
    public static func verify(_ sets: [(name: String, manifest: Manifest)]) throws(CohortError) {
        var owner: [String: String] = [:]
        for (name, manifest) in sets {
            for participant in manifest.participants {
                if let first = owner[participant], first != name {
                    throw .dataLeakage(participant: participant, first: first, second: name)
                }
                owner[participant] = name
            }
        }
    }
}

/// A `split-<i>/` folder as `adwb manifest split` writes it (ClinicaDL's folder naming, our
/// manifest columns): `train.tsv`, `validation.tsv`, and a `test.tsv` in it or in its parent.
public struct SplitFolder: Sendable {
    public var train: Manifest
    public var validation: Manifest
    public var test: Manifest?

    /// Reads the folder and refuses it when a participant is on two sides.
    public init(_ url: URL) throws(CohortError) {
        train = try Manifest(contentsOf: url.appendingPathComponent("train.tsv"))
        validation = try Manifest(contentsOf: url.appendingPathComponent("validation.tsv"))
        let candidates = [url.appendingPathComponent("test.tsv"), url.deletingLastPathComponent().appendingPathComponent("test.tsv")]
        if let testURL = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) {
            test = try Manifest(contentsOf: testURL)
        }
        var sets = [("train", train), ("validation", validation)]
        if let test { sets.append(("test", test)) }
        try LeakageCheck.verify(sets)
    }
}

extension CohortSplit {
    /// Writes `split-<i>/train.tsv` and `split-<i>/validation.tsv` for each fold (numbered from
    /// 0, as ClinicaDL does), `test.tsv` when there is a test set, and `split.json` (options,
    /// source manifest hash, counts). Paths are rewritten relative to each file's folder.
    /// `directory` must be empty, missing, or an earlier split (one with `split.json`), whose
    /// `split-<i>` folders and `test.tsv` are then replaced; nothing else in it is touched.
    public func write(to directory: URL, source: Manifest) throws(CohortError) {
        let fileManager = FileManager.default
        let recordURL = directory.appendingPathComponent("split.json")
        do {
            try fileManager.createDirectory(at: directory, withIntermediateDirectories: true)
            let contents = try fileManager.contentsOfDirectory(atPath: directory.path)
            if !contents.isEmpty {
                guard Self.isOurRecord(recordURL) else {
                    throw CohortError.cannotWrite(path: directory.path,
                        reason: "the folder is not empty and holds no earlier `adwb manifest split` (its split.json); choose a new --out")
                }
                // Only the files this writer makes; a fold folder goes only once it is empty.
                for name in contents where Self.isFoldFolder(name) {
                    let folder = directory.appendingPathComponent(name)
                    for file in ["train.tsv", "validation.tsv"] where fileManager.fileExists(atPath: folder.appendingPathComponent(file).path) {
                        try fileManager.removeItem(at: folder.appendingPathComponent(file))
                    }
                    if try fileManager.contentsOfDirectory(atPath: folder.path).isEmpty { try fileManager.removeItem(at: folder) }
                }
                if contents.contains("test.tsv") { try fileManager.removeItem(at: directory.appendingPathComponent("test.tsv")) }
            }
        } catch {
            throw .writing(directory, error)
        }
        // The record first: it marks the folder as ours, so an interrupted write can be redone.
        let record = SplitRecord(
            generator: SplitRecord.generatorName,
            folds: options.folds, test_fraction: options.testFraction, seed: options.seed,
            source_manifest_sha256: source.contentHash,
            participants: folds.map { fold in
                SplitRecord.FoldCounts(train: Self.counts(fold.train), validation: Self.counts(fold.validation))
            },
            test: test.map(Self.counts))
        try writeJSON(record, to: recordURL)
        for (index, fold) in folds.enumerated() {
            let folder = directory.appendingPathComponent("split-\(index)")
            try fold.train.write(to: folder.appendingPathComponent("train.tsv"))
            try fold.validation.write(to: folder.appendingPathComponent("validation.tsv"))
        }
        if let test { try test.write(to: directory.appendingPathComponent("test.tsv")) }
    }

    /// `split-<n>` exactly as this writer names fold folders (n >= 0, no sign or leading zero).
    public static func isFoldFolder(_ name: String) -> Bool {
        guard name.hasPrefix("split-"), let index = Int(name.dropFirst(6)), index >= 0 else { return false }
        return name == "split-\(index)"
    }

    /// Whether `url` is a `split.json` this writer made (other tools, e.g. ClinicaDL, write
    /// files of that name too).
    static func isOurRecord(_ url: URL) -> Bool {
        guard let data = try? Data(contentsOf: url), let record = try? JSONDecoder().decode(SplitRecord.self, from: data) else {
            return false
        }
        return record.generator == SplitRecord.generatorName
    }

    /// Participants per class name (`unlabeled` for those without a diagnosis).
    static func counts(_ manifest: Manifest) -> [String: Int] {
        ParticipantGroups(manifest).participantsPerStratum.reduce(into: [:]) { counts, entry in
            counts[entry.key?.rawValue ?? "unlabeled", default: 0] += entry.value
        }
    }
}

/// `split.json`: what produced a split folder.
struct SplitRecord: Codable {
    static let generatorName = "adwb manifest split"

    struct FoldCounts: Codable {
        var train: [String: Int]
        var validation: [String: Int]
    }

    var generator: String
    var folds: Int
    var test_fraction: Double
    var seed: UInt64
    var source_manifest_sha256: String
    var participants: [FoldCounts]
    var test: [String: Int]?
}
