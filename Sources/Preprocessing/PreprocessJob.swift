import Cohort
import Foundation
import TensorCore
import VolumeIO

/// The version written into records and cache keys: a new version recomputes every scan.
public let preprocessingVersion = "adwb-preprocess-1"

/// One scan's record, written next to its outputs as `<stem>_preproc.json` once they are all
/// on disk: its presence with the same `cacheKey` is what lets a rerun skip the scan.
public struct ScanRecord: Sendable, Codable, Equatable {
    public var participantID: String
    public var sessionID: String
    /// The manifest line of the row.
    public var line: Int?
    /// SHA-256 over the input files' bytes, the template's fingerprint, the options and the version.
    public var cacheKey: String
    /// Output files, relative to the run's folder.
    public var image: String
    public var mask: String?
    public var labels: String?
    public var transforms: [String]
    public var qcFigure: QCEntry.Figure?
    public var skullStrip: SkullStripMethod?
    public var registration: RegistrationResult?
    public var dice: Double?
    public var warnings: [String]
    public var seconds: [String: Double]

    enum CodingKeys: String, CodingKey {
        case participantID = "participant_id", sessionID = "session_id", line, cacheKey = "cache_key", image, mask, labels,
             transforms, qcFigure = "qc_figure", skullStrip = "skull_strip", registration, dice, warnings, seconds
    }
}

/// A scan that could not be preprocessed.
public struct FailedScan: Sendable, Codable, Equatable, CustomStringConvertible {
    public var participantID: String
    public var sessionID: String
    public var line: Int?
    public var reason: String

    public var description: String { "\(line.map { "line \($0): " } ?? "")\(participantID) \(sessionID): \(reason)" }

    enum CodingKeys: String, CodingKey {
        case participantID = "participant_id", sessionID = "session_id", line, reason
    }
}

/// What a run did.
public struct PreprocessSummary: Sendable {
    /// The new manifest (nil for a shard run, which writes none).
    public var manifestURL: URL?
    public var qcPage: URL?
    public var records: [ScanRecord]
    /// Scans whose outputs were already there with the same cache key.
    public var reused: Int
    public var failed: [FailedScan]
}

/// Why a run stopped.
public enum PreprocessJobError: Error, CustomStringConvertible {
    case scan(FailedScan)
    case badScans([FailedScan])
    case interrupted
    case preprocessing(PreprocessingError)
    case cohort(CohortError)

    public var description: String {
        switch self {
        case let .scan(failure): return failure.description
        case let .badScans(failures):
            return "\(failures.count) scan\(failures.count == 1 ? "" : "s") could not be preprocessed (rerun with --skip-bad to leave them out):\n"
                + failures.map { "  " + $0.description }.joined(separator: "\n")
        case .interrupted: return "interrupted: finished scans are kept and a rerun reuses them"
        case let .preprocessing(error): return error.description
        case let .cohort(error): return error.description
        }
    }
}

/// `adwb preprocess`: every scan of a manifest through `ScanPreprocessor`, in parallel, into a
/// BIDS-derivatives-like folder:
///
///     OUT/manifest.tsv                      the new manifest (path, mask_path, label_path → outputs)
///     OUT/preprocess.json                   options, template, per-scan records and failures
///     OUT/template/                         the template used (the built-in one is written here)
///     OUT/qc/index.html, OUT/qc/*.png       the QC page
///     OUT/sub-X/ses-Y/anat/sub-X_ses-Y_…    per scan: _desc-preproc_T1w.nii.gz, _desc-brain_mask.nii.gz,
///                                           _dseg.nii.gz, _xfm-ras.txt, _xfm-itk.txt, _xfm-flirt.mat,
///                                           _preproc.json (written last: the cache entry)
public struct PreprocessJob: Sendable {
    public var manifestURL: URL
    public var output: URL
    public var preprocessor: ScanPreprocessor
    public var shard: Shard = .whole
    public var workers: Int = 1
    public var skipBad = false

    public init(manifest: URL, output: URL, preprocessor: ScanPreprocessor) {
        (self.manifestURL, self.output, self.preprocessor) = (manifest, output.standardizedFileURL, preprocessor)
    }

    /// The file that marks a folder as `adwb preprocess` output (so a rerun may add to it).
    public static let marker = ".adwb-preprocess"

    /// Creates `output`, or accepts it when it is empty or an earlier run's (marked); refuses
    /// any other folder, whose files could be mistaken for ours or overwritten.
    public static func prepare(_ output: URL) throws(PreprocessingError) {
        let fileManager = FileManager.default
        let markerURL = output.appendingPathComponent(marker)
        if fileManager.fileExists(atPath: output.path) {
            let contents = (try? fileManager.contentsOfDirectory(atPath: output.path)) ?? []
            // Shards started together may see each other's marker while it is being written.
            // (AtomicFile writes it as `.<name>.tmp-…` first.)
            guard contents.allSatisfy({ $0.hasPrefix("." + marker) }) || contents.contains(marker) else {
                throw .cannotWrite(path: output.path, reason: "the folder is not empty and holds no earlier adwb preprocess run; choose a new --out")
            }
        }
        do {
            try fileManager.createDirectory(at: output, withIntermediateDirectories: true)
            if !fileManager.fileExists(atPath: markerURL.path) {
                try AtomicFile.write(Data("adwb preprocess output: a rerun into this folder reuses finished scans\n".utf8), to: markerURL)
            }
        } catch {
            throw .cannotWrite(path: output.path, reason: "\(error)")
        }
    }

    /// The space label in output names: `template` (registered) or `native` (RAS-reoriented scan grid).
    var space: String { preprocessor.options.steps.contains(.register) ? "template" : "native" }

    public func run(progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in },
                    shouldStop: @escaping @Sendable () -> Bool = { false },
                    log: @escaping @Sendable (String) -> Void = { _ in }) throws(PreprocessJobError) -> PreprocessSummary {
        guard shard.isValid else { throw .preprocessing(.invalidOption(name: "shard", value: shard.description, reason: Shard.syntax)) }
        let manifest: Manifest
        do { manifest = try Manifest(contentsOf: manifestURL) } catch { throw .cohort(error) }
        do { try Self.prepare(output) } catch { throw .preprocessing(error) }
        let positions = Array(shard.rows(of: manifest.rows.count))
        let stems = Self.stems(manifest.rows)
        let templateFiles = try writeTemplate()
        let fingerprint = [preprocessingVersion, preprocessor.template?.fingerprint ?? "no template", optionsJSON()].joined(separator: "\n")

        let state = JobState(count: positions.count)
        let workers = max(1, min(workers, positions.count))
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while !shouldStop(), let slot = state.next() {
                let index = positions[slot]
                let row = manifest.rows[index]
                do {
                    let (record, reused) = try processRow(row, in: manifest, stem: stems[index], fingerprint: fingerprint, log: log)
                    state.store(record, reused: reused, at: slot)
                } catch {
                    let failure = FailedScan(participantID: row.participantID, sessionID: row.sessionID, line: row.line, reason: "\(error)")
                    state.fail(failure, at: slot, fatal: !skipBad)
                }
                progress(state.finished, positions.count)
            }
        }
        let (records, reused, failures) = state.results()
        if let fatal = failures.first, !skipBad { throw .scan(fatal) }
        if shouldStop() { throw .interrupted }
        guard shard == .whole else {
            return PreprocessSummary(manifestURL: nil, qcPage: nil, records: records, reused: reused, failed: failures)
        }
        guard !records.isEmpty else {
            // Nothing to list in a manifest, but the failures are kept for the user.
            _ = try writeQC(records: records, failures: failures, templateFiles: templateFiles)
            try writeRunRecord(records: records, failures: failures, templateFiles: templateFiles)
            throw .badScans(failures)
        }
        struct RowID: Hashable {
            let participant: String, session: String
            init(_ participant: String, _ session: String) { (self.participant, self.session) = (participant, session) }
        }
        // (participant, session) is unique in a valid manifest.
        let rowsByID = Dictionary(manifest.rows.map { (RowID($0.participantID, $0.sessionID), $0) }, uniquingKeysWith: { first, _ in first })
        let newManifest = Manifest(
            directory: output,
            rows: records.compactMap { record in
                guard let row = rowsByID[RowID(record.participantID, record.sessionID)] else { return nil }
                var out = row
                out.path = record.image
                out.maskPath = record.mask
                out.labelPath = record.labels
                out.extra["source_path"] = manifest.url(for: row.path).path
                out.extra["registration_ncc"] = record.registration.map { String(format: "%.4f", $0.correlation) } ?? ""
                out.extra["brain_mask_dice"] = record.dice.map { String(format: "%.4f", $0) } ?? ""
                return out
            },
            optionalColumns: Array(Set(manifest.optionalColumns + ["mask_path"] + (records.contains { $0.labels != nil } ? ["label_path"] : [])))
                .sorted { Manifest.optionalColumns.firstIndex(of: $0) ?? 99 < Manifest.optionalColumns.firstIndex(of: $1) ?? 99 },
            extraColumns: manifest.extraColumns.filter { !["source_path", "registration_ncc", "brain_mask_dice"].contains($0) }
                + ["source_path", "registration_ncc", "brain_mask_dice"])
        let manifestOut = output.appendingPathComponent("manifest.tsv")
        do { try newManifest.write(to: manifestOut) } catch { throw .cohort(error) }
        let qcPage = try writeQC(records: records, failures: failures, templateFiles: templateFiles)
        try writeRunRecord(records: records, failures: failures, templateFiles: templateFiles)
        return PreprocessSummary(manifestURL: manifestOut, qcPage: qcPage, records: records, reused: reused, failed: failures)
    }

    // MARK: One scan

    private func processRow(_ row: ManifestRow, in manifest: Manifest, stem: String, fingerprint: String,
                            log: @Sendable (String) -> Void) throws -> (ScanRecord, reused: Bool) {
        let imageURL = manifest.url(for: row.path)
        let maskURL = row.maskPath.map(manifest.url(for:)), labelURL = row.labelPath.map(manifest.url(for:))
        var keyText = fingerprint
        for url in [imageURL, maskURL, labelURL] {
            guard let url else { keyText += "\n-"; continue }
            guard let bytes = FileManager.default.contents(atPath: url.path) else {
                throw PreprocessingError.volume(.cannotRead(path: url.path, reason: "missing or unreadable"))
            }
            keyText += "\n" + SHA256.hex(bytes)
        }
        let key = SHA256.hex(Data(keyText.utf8))
        let folder = "\(FileNames.safeComponent(row.participantID))/\(FileNames.safeComponent(row.sessionID))/anat"
        let base = "\(folder)/\(stem)"
        let recordURL = output.appendingPathComponent(base + "_preproc.json")
        if let cached = try? JSONDecoder().decode(ScanRecord.self, from: Data(contentsOf: recordURL)), cached.cacheKey == key,
           ([cached.image] + [cached.mask, cached.labels].compactMap { $0 } + cached.transforms
            + (cached.qcFigure.map { ["\(QCPage.folder)/\($0.file)"] } ?? []))
            .allSatisfy({ FileManager.default.fileExists(atPath: output.appendingPathComponent($0).path) }) {
            return (cached, true)
        }

        // An earlier record (of other inputs or options) goes before any output is replaced,
        // so an interrupted run can never leave it vouching for new files.
        if FileManager.default.fileExists(atPath: recordURL.path) {
            do { try FileManager.default.removeItem(at: recordURL) } catch {
                throw PreprocessingError.cannotWrite(path: recordURL.path, reason: "cannot remove the earlier record: \(error)")
            }
        }
        let inputs = try ScanInputs.read(image: imageURL, mask: maskURL, labels: labelURL)
        let result = try preprocessor.process(inputs)
        do { try FileManager.default.createDirectory(at: output.appendingPathComponent(folder), withIntermediateDirectories: true) } catch {
            throw PreprocessingError.cannotWrite(path: output.appendingPathComponent(folder).path, reason: "\(error)")
        }
        func write(_ volume: Volume, _ suffix: String, _ datatype: VoxelType) throws -> String {
            let name = "\(base)_\(suffix).nii.gz"
            do {
                try VolumeWriter.write(volume, to: output.appendingPathComponent(name),
                                       options: VolumeWriteOptions(datatype: datatype, scaling: .none))
            } catch let error as VolumeError { throw PreprocessingError.volume(error) }
            return name
        }
        let imageName = try write(result.image, "space-\(space)_desc-preproc_T1w", .float32)
        let maskName = try result.mask.map { try write($0, "space-\(space)_desc-brain_mask", .uint8) }
        let labelName = try result.labels.map { try write($0, "space-\(space)_dseg", Self.labelType($0)) }
        var transforms: [String] = []
        if let registration = result.registration, let template = preprocessor.template {
            let comment = ["\(row.participantID) \(row.sessionID): template world -> scan world (RAS mm), y = T x",
                           "template: \(template.name); scan: \(imageURL.path)"]
            let files = [
                ("xfm-ras.txt", TransformFile.matrixText(registration.transform, comment: comment)),
                ("xfm-itk.txt", TransformFile.itkText(registration.transform)),
                ("xfm-flirt.mat", TransformFile.matrixText(try TransformFile.fslMatrix(registration.transform, scan: Grid(inputs.image),
                                                                                        template: Grid(template.image)))),
            ]
            for (suffix, text) in files {
                let name = "\(base)_\(suffix)"
                try TransformFile.write(text, to: output.appendingPathComponent(name))
                transforms.append(name)
            }
        }
        // The QC figure: the output with the template's edges (registered) or its mask outline.
        var figure: QCEntry.Figure?
        do {
            let edges = result.registration == nil ? nil : try templateOnOutputGrid()
            let picture = try QCFigure.triplet(image: result.image, template: edges, mask: result.mask, label: "\(row.participantID) \(row.sessionID)")
            figure = try QCPage.writeFigure(picture, participantID: row.participantID, sessionID: row.sessionID, to: output)
        }
        let record = ScanRecord(participantID: row.participantID, sessionID: row.sessionID, line: row.line, cacheKey: key,
                                image: imageName, mask: maskName, labels: labelName, transforms: transforms, qcFigure: figure,
                                skullStrip: result.skullStrip, registration: result.registration, dice: result.dice,
                                warnings: result.warnings, seconds: result.seconds)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(record), to: recordURL)
        for warning in result.warnings { log("\(row.participantID) \(row.sessionID): \(warning)") }
        return (record, false)
    }

    /// What the QC figures outline: the template (its brain only, when it has a mask, so the
    /// brain's edges rather than the scalp's stand out) on the output grid.
    private func templateOnOutputGrid() throws(PreprocessingError) -> Volume? {
        guard let template = preprocessor.template, let grid = preprocessor.outputGrid else { return nil }
        let brain = try template.mask.map { mask throws(PreprocessingError) in
            try BrainExtraction.applyMask(mask, to: template.image, label: "template mask")
        } ?? template.image
        if grid.matches(Grid(brain)) { return brain }
        return try Resampler.resample(brain, onto: grid, interpolation: .linear, name: "template")
    }

    // MARK: Run files

    /// The built-in template goes into OUT/template/ (a given one is named by its path).
    private func writeTemplate() throws(PreprocessJobError) -> [String] {
        guard let template = preprocessor.template else { return [] }
        let folder = output.appendingPathComponent("template")
        var names = ["template/template_T1w.nii.gz"]
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try VolumeWriter.write(template.image, to: output.appendingPathComponent(names[0]))
            if let mask = template.mask {
                names.append("template/template_desc-brain_mask.nii.gz")
                try VolumeWriter.write(mask, to: output.appendingPathComponent(names[1]), options: VolumeWriteOptions(datatype: .uint8, scaling: .none))
            }
        } catch let error as VolumeError {
            throw .preprocessing(.volume(error))
        } catch {
            throw .preprocessing(.cannotWrite(path: folder.path, reason: "\(error)"))
        }
        return names
    }

    private func optionsJSON() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Options are plain values: encoding cannot fail.
        return String(decoding: (try? encoder.encode(preprocessor.options)) ?? Data(), as: UTF8.self)
    }

    private func writeQC(records: [ScanRecord], failures: [FailedScan], templateFiles: [String]) throws(PreprocessJobError) -> URL {
        let entries = records.map { record in
            QCEntry(participantID: record.participantID, sessionID: record.sessionID, figure: record.qcFigure,
                    ncc: record.registration?.correlation, cost: record.registration.map { 1 - $0.correlation }, dice: record.dice,
                    warnings: record.warnings, status: record.warnings.isEmpty ? .ok : .warning)
        } + failures.map { failure in
            QCEntry(participantID: failure.participantID, sessionID: failure.sessionID, warnings: [], status: .failed(reason: failure.reason))
        }
        let settings: [(String, String)] = [
            ("manifest", manifestURL.path),
            ("template", preprocessor.template?.name ?? "none"),
            ("steps", preprocessor.options.orderedSteps.map(\.rawValue).joined(separator: ", ")),
            ("skull strip", preprocessor.options.skullStrip.rawValue),
            ("normalisation", preprocessor.options.normalisation.rawValue),
            ("output grid", preprocessor.outputGrid?.description ?? "each scan's own (RAS)"),
        ]
        do {
            return try QCPage.write(entries: entries, title: "Preprocessing QC", settings: settings, to: output)
        } catch {
            throw .preprocessing(error)
        }
    }

    /// `preprocess.json`: what was run, on what, and what came of each scan.
    struct RunRecord: Codable {
        var version: String
        var manifest: String
        var template: String
        var templateFingerprint: String?
        var templateFiles: [String]
        var options: PreprocessingOptions
        var scans: [ScanRecord]
        var failed: [FailedScan]

        enum CodingKeys: String, CodingKey {
            case version, manifest, template, templateFingerprint = "template_fingerprint", templateFiles = "template_files", options, scans, failed
        }
    }

    private func writeRunRecord(records: [ScanRecord], failures: [FailedScan], templateFiles: [String]) throws(PreprocessJobError) {
        let record = RunRecord(version: preprocessingVersion, manifest: manifestURL.path, template: preprocessor.template?.name ?? "none",
                               templateFingerprint: preprocessor.template?.fingerprint, templateFiles: templateFiles,
                               options: preprocessor.options, scans: records, failed: failures)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let url = output.appendingPathComponent("preprocess.json")
        do { try AtomicFile.write(try encoder.encode(record), to: url) } catch {
            throw .preprocessing(.cannotWrite(path: url.path, reason: "\(error)"))
        }
    }

    /// The smallest type that holds every label exactly: uint8, int16, int32, else float32.
    static func labelType(_ labels: Volume) -> VoxelType {
        let values = labels.data.scalars
        guard values.allSatisfy({ $0 == $0.rounded() }), let low = values.min(), let high = values.max() else { return .float32 }
        if low >= 0 && high <= 255 { return .uint8 }
        if low >= -32768 && high <= 32767 { return .int16 }
        if low >= -16_777_216 && high <= 16_777_216 { return .int32 }
        return .float32
    }

    // MARK: Names

    /// Output stems per row, `<participant>_<session>`, with `_line<N>` added to rows whose
    /// stems would coincide (ignoring case), so no scan overwrites another.
    static func stems(_ rows: [ManifestRow]) -> [String] {
        let names = rows.map { "\(FileNames.safeComponent($0.participantID))_\(FileNames.safeComponent($0.sessionID))" }
        let counts = Dictionary(names.map { ($0.lowercased(), 1) }, uniquingKeysWith: +)
        return names.enumerated().map { index, name in
            (counts[name.lowercased()] ?? 1) > 1 ? name + "_line\(rows[index].line ?? index + 2)" : name
        }
    }
}

/// Shared by the workers: the next row to take, results by slot, failures.
private final class JobState: @unchecked Sendable {
    private let lock = NSLock()
    private var nextSlot = 0
    private var stopped = false
    private var records: [ScanRecord?]
    private var reusedCount = 0
    private var failures: [(Int, FailedScan)] = []
    private var finishedCount = 0

    /// Rows done so far (finished or failed).
    var finished: Int {
        lock.lock()
        defer { lock.unlock() }
        return finishedCount
    }

    init(count: Int) { records = Array(repeating: nil, count: count) }

    func next() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped, nextSlot < records.count else { return nil }
        defer { nextSlot += 1 }
        return nextSlot
    }

    func store(_ record: ScanRecord, reused: Bool, at slot: Int) {
        lock.lock()
        defer { lock.unlock() }
        records[slot] = record
        if reused { reusedCount += 1 }
        finishedCount += 1
    }

    func fail(_ failure: FailedScan, at slot: Int, fatal: Bool) {
        lock.lock()
        defer { lock.unlock() }
        failures.append((slot, failure))
        finishedCount += 1
        if fatal { stopped = true }
    }

    /// Records in manifest order, how many were reused, failures in manifest order.
    func results() -> ([ScanRecord], Int, [FailedScan]) {
        lock.lock()
        defer { lock.unlock() }
        return (records.compactMap { $0 }, reusedCount, failures.sorted { $0.0 < $1.0 }.map(\.1))
    }
}
