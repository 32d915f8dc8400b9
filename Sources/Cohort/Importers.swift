import Foundation

/// Builds manifests from the folder layouts the field's data come in. Each importer returns
/// a manifest whose paths are relative to the dataset's root (rebased when written
/// elsewhere) plus notes for the user: skipped images, participants without images, etc.
public struct ImportResult: Sendable {
    public var manifest: Manifest
    /// Things the user should know (one line each), printed by the CLI.
    public var notes: [String]
}

/// How importers read diagnoses from BIDS and label tables.
public struct LabelOptions: Sendable {
    /// The column holding the diagnosis; `nil`: the first of `diagnosis`, `diagnosis_bl`,
    /// `diagnosis_sc`, `dx`, `DX`, `group` that the tables have.
    public var column: String?
    /// Words (matched case-insensitively) replaced before parsing, e.g. `control` -> `CN`;
    /// map a word to the empty string to leave such scans unlabelled.
    public var map: [String: String]

    /// ADNI's words: `Dementia` -> AD, `EMCI` and `LMCI` -> MCI.
    public static let adniWords = ["dementia": "AD", "emci": "MCI", "lmci": "MCI"]

    public init(column: String? = nil, map: [String: String] = [:]) {
        self.column = column
        self.map = Self.adniWords
        for (word, diagnosis) in map { self.map[word.lowercased()] = diagnosis }
    }
}

/// Reads diagnoses with `LabelOptions`, collecting every unknown word (with how often and
/// where it was seen) so that one error can list them all.
struct LabelReader {
    static let aliases = ["diagnosis", "diagnosis_bl", "diagnosis_sc", "dx", "DX", "group"]
    private(set) var column: String?
    private let explicit: Bool
    private let map: [String: String]
    private var columnSeen = false
    private var unknown: [String: (count: Int, file: String)] = [:]

    init(_ options: LabelOptions) {
        column = options.column
        explicit = options.column != nil
        map = options.map
    }

    /// Shows the reader a table's header: without an explicit column, the first table with
    /// one of the aliases decides which column is read everywhere.
    mutating func see(header: [String]) {
        if column == nil { column = Self.aliases.first { header.contains($0) } }
        if let column, header.contains(column) { columnSeen = true }
    }

    /// The diagnosis word of a row (`""` when unlabelled or unknown; unknown words are kept
    /// for `check`). `file` is where the row's value came from.
    mutating func diagnosis(_ info: [String: String], file: String) -> String {
        guard let column, let raw = info[column] else { return "" }
        let word = map[raw.trimmingCharacters(in: .whitespaces).lowercased()] ?? raw
        do {
            _ = try Diagnosis.parse(word)
            return word
        } catch {
            unknown[raw, default: (0, file)].count += 1
            return ""
        }
    }

    /// One error listing every unknown word, or naming an explicit column no table had.
    func check(tables: String) throws(CohortError) {
        if explicit, let column, !columnSeen {
            throw .invalidLayout(path: tables, reason: "no table has the column \"\(column)\" given with --diagnosis-column")
        }
        guard let column, let file = unknown.values.map(\.file).sorted().first else { return }
        let words = unknown.sorted { ($0.value.count, $1.key) > ($1.value.count, $0.key) }
            .map { "\"\($0.key)\" (\($0.value.count) row\($0.value.count == 1 ? "" : "s"))" }.joined(separator: ", ")
        let example = unknown.keys.sorted().prefix(2).map { "\($0.lowercased())=CN" }.joined(separator: ",")
        throw .invalidLayout(path: file, reason: "column \(column): unknown diagnosis \(words); expected CN, NC, MCI, AD or empty. Map the words with --label-map (e.g. \(example)) or choose another column with --diagnosis-column")
    }
}

public enum CohortImporter {
    // MARK: BIDS

    /// A BIDS raw dataset: `sub-*/[ses-*/]anat/*_T1w.nii[.gz]` plus `participants.tsv`
    /// (`participant_id`, the diagnosis column chosen by `labels`; `age`, `sex`, `mmse`, `cdr`,
    /// `site` when present, any other column carried as an extra) and per-participant
    /// `sub-*_sessions.tsv` whose values override the participant's for that session. A
    /// dataset without sessions gets `ses-M000`. With several T1w images in a session (runs,
    /// acquisitions) the first in name order is used and the others noted.
    public static func fromBIDS(_ root: URL, labels: LabelOptions = LabelOptions()) throws(CohortError) -> ImportResult {
        let root = root.standardizedFileURL
        let relative = RelativePaths(from: root)
        var notes: [String] = []
        var reader = LabelReader(labels)
        let participantsURL = root.appendingPathComponent("participants.tsv")
        var participantInfo: [String: [String: String]] = [:]
        var extraColumns: [String] = []
        if FileManager.default.fileExists(atPath: participantsURL.path) {
            let table = try TSVTable(contentsOf: participantsURL)
            guard table.column("participant_id") != nil else {
                throw .invalidLayout(path: participantsURL.path, reason: "no participant_id column")
            }
            participantInfo = try table.keyedRows(by: ["participant_id"], path: participantsURL.path)
            reader.see(header: table.header)
            extraColumns = extras(table.header, excluding: ["participant_id", reader.column])
        } else {
            notes.append("no participants.tsv in \(root.path): every scan is unlabelled")
        }
        let subjects = try subfolders(root, prefix: "sub-")
        guard !subjects.isEmpty else { throw .invalidLayout(path: root.path, reason: "no sub-* folders: not a BIDS dataset") }
        var rows: [ManifestRow] = []
        for subject in subjects {
            let participant = subject.lastPathComponent
            let sessionsURL = subject.appendingPathComponent("\(participant)_sessions.tsv")
            var sessionInfo: [String: [String: String]] = [:]
            if FileManager.default.fileExists(atPath: sessionsURL.path) {
                let table = try TSVTable(contentsOf: sessionsURL)
                sessionInfo = try table.keyedRows(by: ["session_id"], path: sessionsURL.path)
                reader.see(header: table.header)
                for column in extras(table.header, excluding: ["session_id", reader.column]) where !extraColumns.contains(column) {
                    extraColumns.append(column)
                }
            }
            let sessions = try subfolders(subject, prefix: "ses-")
            let sessionFolders: [(String, URL)] = sessions.isEmpty
                ? [("ses-M000", subject)] : sessions.map { ($0.lastPathComponent, $0) }
            for (session, folder) in sessionFolders {
                let anat = folder.appendingPathComponent("anat")
                let images = try files(anat).filter { $0.hasSuffix("_T1w.nii.gz") || $0.hasSuffix("_T1w.nii") }
                guard let image = images.first else {
                    if !sessions.isEmpty { notes.append("\(participant) \(session): no *_T1w.nii[.gz] in anat/") }
                    continue
                }
                if images.count > 1 {
                    notes.append("\(participant) \(session): \(images.count) T1w images, using \(image)")
                }
                if participantInfo[participant] == nil && !participantInfo.isEmpty {
                    notes.append("\(participant) is not in participants.tsv: unlabelled")
                }
                var info = participantInfo[participant] ?? [:]
                // Session values override the participant's, except where the session has none.
                let sessionValues = (sessionInfo[session] ?? [:]).filter { !Manifest.isMissing($0.value) }
                info.merge(sessionValues) { _, session in session }
                let labelSource = reader.column.map { sessionValues[$0] != nil } == true ? sessionsURL : participantsURL
                info["diagnosis"] = reader.diagnosis(info, file: labelSource.path)
                let path = relative.path(of: anat.appendingPathComponent(image))
                rows.append(try row(participant: participant, session: session, path: path, info: info,
                                    extraColumns: extraColumns, source: labelSource.path))
            }
        }
        try reader.check(tables: participantsURL.path)
        let imported = Set(rows.map(\.participantID))
        let missing = participantInfo.keys.filter { !imported.contains($0) }.sorted()
        if !missing.isEmpty {
            notes.append("\(missing.count) participant\(missing.count == 1 ? "" : "s") in participants.tsv without a T1w image (e.g. \(missing[0]))")
        }
        return ImportResult(manifest: Manifest(directory: root, rows: fillExtras(rows, extraColumns), extraColumns: extraColumns), notes: notes)
    }

    // MARK: CAPS

    /// A ClinicaDL / Clinica CAPS folder after `t1-linear`:
    /// `subjects/sub-*/ses-*/t1_linear/sub-*_ses-*_T1w_space-MNI152NLin2009cSym[_desc-Crop]_res-1x1x1_T1w.nii.gz`.
    /// The cropped image (169x208x179, ClinicaDL's default) is used unless `uncropped`.
    /// CAPS holds no labels: `labels` is a TSV with `participant_id`, `session_id` and
    /// `diagnosis` (as ClinicaDL's `get-labels` writes) or a `participants.tsv` without
    /// sessions; its other columns are carried. Without it every scan is unlabelled.
    public static func fromCAPS(_ root: URL, labels: URL? = nil, uncropped: Bool = false,
                                labelOptions: LabelOptions = LabelOptions()) throws(CohortError) -> ImportResult {
        let root = root.standardizedFileURL
        let relative = RelativePaths(from: root)
        var reader = LabelReader(labelOptions)
        let subjectsFolder = root.appendingPathComponent("subjects")
        var notes: [String] = []
        var byParticipant: [String: [String: String]] = [:]
        var bySession: [String: [String: String]] = [:]
        var extraColumns: [String] = []
        if let labels {
            let table = try TSVTable(contentsOf: labels)
            guard table.column("participant_id") != nil else {
                throw .invalidLayout(path: labels.path, reason: "no participant_id column")
            }
            reader.see(header: table.header)
            if table.column("session_id") != nil {
                bySession = try table.keyedRows(by: ["participant_id", "session_id"], path: labels.path)
            } else {
                byParticipant = try table.keyedRows(by: ["participant_id"], path: labels.path)
            }
            extraColumns = extras(table.header, excluding: ["participant_id", "session_id", reader.column])
        } else {
            notes.append("no --labels TSV: every scan is unlabelled")
        }
        guard FileManager.default.fileExists(atPath: subjectsFolder.path) else {
            throw .invalidLayout(path: root.path, reason: "no subjects/ folder: not a CAPS folder")
        }
        let subjects = try subfolders(subjectsFolder, prefix: "sub-")
        guard !subjects.isEmpty else { throw .invalidLayout(path: subjectsFolder.path, reason: "no subjects/sub-* folders: not a CAPS folder") }
        var rows: [ManifestRow] = []
        for subject in subjects {
            let participant = subject.lastPathComponent
            for sessionFolder in try subfolders(subject, prefix: "ses-") {
                let session = sessionFolder.lastPathComponent
                let folder = sessionFolder.appendingPathComponent("t1_linear")
                let candidates = try files(folder).filter { $0.hasSuffix("_T1w.nii.gz") && $0.contains("space-MNI152NLin2009cSym") }
                let cropped = candidates.filter { $0.contains("_desc-Crop_") }
                let chosen = uncropped ? candidates.filter { !$0.contains("_desc-Crop_") } : cropped
                guard let image = chosen.first else {
                    notes.append("\(participant) \(session): no \(uncropped ? "uncropped" : "cropped (desc-Crop)") t1_linear image")
                    continue
                }
                var info = bySession[participant + "\t" + session] ?? byParticipant[participant] ?? [:]
                if let labels {
                    if info.isEmpty { notes.append("\(participant) \(session) has no row in the labels TSV: unlabelled") }
                    info["diagnosis"] = reader.diagnosis(info, file: labels.path)
                }
                let path = relative.path(of: folder.appendingPathComponent(image))
                rows.append(try row(participant: participant, session: session, path: path, info: info,
                                    extraColumns: extraColumns, source: labels?.path ?? root.path))
            }
        }
        try reader.check(tables: labels?.path ?? root.path)
        return ImportResult(manifest: Manifest(directory: root, rows: fillExtras(rows, extraColumns), extraColumns: extraColumns), notes: notes)
    }

    // MARK: OASIS-1

    /// Which OASIS-1 image to use.
    public enum OASISImage: String, Sendable, CaseIterable {
        /// `PROCESSED/MPRAGE/T88_111/*_t88_masked_gfc.hdr`: averaged, bias-corrected,
        /// atlas-registered (Talairach 1 mm) and skull-stripped; its FSL_SEG tissue map becomes `label_path`.
        case masked
        /// `PROCESSED/MPRAGE/T88_111/*_t88_gfc.hdr`: as `masked` with the skull.
        case unmasked
        /// `RAW/*_mpr-1_anon.hdr`: the first raw MPRAGE acquisition.
        case raw
    }

    /// What to do with OASIS-1 participants without a CDR (the under-60s).
    public enum MissingCDR: String, Sendable, CaseIterable {
        /// Keep them unlabelled (used for pretraining only).
        case unlabeled
        /// Count them as cognitively normal (they were recruited as such).
        case cn
        /// Leave them out.
        case drop
    }

    /// OASIS-1 cross-sectional: folders `OAS1_xxxx_MRn` (directly in `root` or in `disc*`
    /// sub-folders) and the clinical CSV (`ID, M/F, Hand, Age, Educ, SES, MMSE, CDR, eTIV,
    /// nWBV, ASF, Delay`). Diagnosis from CDR: 0 -> CN, 0.5 -> MCI, >= 1 -> AD. IDs follow
    /// Clinica's OASIS converter: `OAS1_0001_MR1` becomes `sub-OASIS10001` `ses-M000`; the
    /// reliability rescans (`MR2`) become session `ses-M000rescan`. Age, sex, MMSE and CDR
    /// fill their columns; the other CSV columns are carried as extras.
    public static func fromOASIS(_ root: URL, clinical: URL, image: OASISImage = .masked,
                                 missingCDR: MissingCDR = .unlabeled) throws(CohortError) -> ImportResult {
        let root = root.standardizedFileURL
        let relative = RelativePaths(from: root)
        var notes: [String] = []
        let text: String
        do { text = try String(contentsOf: clinical, encoding: .utf8) } catch {
            throw .cannotRead(path: clinical.path, reason: TSVTable.reason(error))
        }
        let csv = CSV.parse(text)
        guard let header = csv.first?.fields, header.contains("ID") else {
            throw .invalidLayout(path: clinical.path, reason: "no ID column in the header: not the OASIS-1 clinical CSV")
        }
        let renamed = ["M/F": "sex", "Age": "age", "MMSE": "mmse", "CDR": "cdr"]
        let extraColumns = header.filter { $0 != "ID" && renamed[$0] == nil }
        var clinicalRows: [String: [String: String]] = [:]
        for (line, fields) in csv.dropFirst() {
            guard fields.count == header.count else {
                throw .invalidLayout(path: clinical.path, reason: "line \(line): \(fields.count) fields where the header has \(header.count)")
            }
            var info: [String: String] = [:]
            for (name, value) in zip(header, fields) { info[renamed[name] ?? name] = value }
            clinicalRows[info["ID"] ?? ""] = info
        }

        var sessionFolders: [URL] = []
        for folder in try subfolders(root, prefix: "") {
            if isOASISSession(folder.lastPathComponent) { sessionFolders.append(folder) }
            else { sessionFolders += try subfolders(folder, prefix: "OAS1_").filter { isOASISSession($0.lastPathComponent) } }
        }
        guard !sessionFolders.isEmpty else {
            throw .invalidLayout(path: root.path, reason: "no OAS1_xxxx_MRn folders (directly or in disc* folders): not an OASIS-1 tree")
        }
        sessionFolders.sort { $0.lastPathComponent < $1.lastPathComponent }
        var rows: [ManifestRow] = []
        var withoutCDR = 0
        for folder in sessionFolders {
            let id = folder.lastPathComponent
            let parts = id.split(separator: "_")
            let participant = "sub-OASIS1" + parts[1]
            let session = parts[2] == "MR1" ? "ses-M000" : "ses-M000rescan"
            guard let path = try oasisImage(folder, image: image) else {
                notes.append("\(id): no \(image.rawValue) image")
                continue
            }
            guard var info = clinicalRows[id] else {
                notes.append("\(id) is not in \(clinical.lastPathComponent): skipped")
                continue
            }
            // A reliability rescan (MR2) has its own row, mostly empty: it was the same visit,
            // so MR1's clinical values stand where MR2's are missing.
            if parts[2] == "MR2", let baseline = clinicalRows["OAS1_\(parts[1])_MR1"] {
                info.merge(baseline) { rescan, baseline in Manifest.isMissing(rescan) ? baseline : rescan }
            }
            let cdr = info["cdr"] ?? ""
            var diagnosis: String
            if let value = Double(cdr) {
                diagnosis = value == 0 ? "CN" : value == 0.5 ? "MCI" : value >= 1 ? "AD" : ""
                if diagnosis.isEmpty { throw .invalidLayout(path: clinical.path, reason: "\(id): CDR \(cdr) is not 0, 0.5 or >= 1") }
            } else {
                withoutCDR += 1
                switch missingCDR {
                case .unlabeled: diagnosis = ""
                case .cn: diagnosis = "CN"
                case .drop: continue
                }
            }
            info["diagnosis"] = diagnosis
            var row = try row(participant: participant, session: session, path: relative.path(of: path),
                              info: info, extraColumns: extraColumns, source: clinical.path)
            if image != .raw, let segmentation = try oasisSegmentation(folder) {
                row.labelPath = relative.path(of: segmentation)
            }
            rows.append(row)
        }
        if withoutCDR > 0 {
            let fate = ["unlabeled": "kept unlabelled", "cn": "counted as CN", "drop": "left out"][missingCDR.rawValue] ?? ""
            notes.append("\(withoutCDR) session\(withoutCDR == 1 ? "" : "s") without a CDR (in OASIS-1, the under-60s): \(fate) (--missing-cdr)")
        }
        return ImportResult(manifest: Manifest(directory: root, rows: rows, extraColumns: extraColumns), notes: notes)
    }

    static func isOASISSession(_ name: String) -> Bool {
        let parts = name.split(separator: "_")
        return parts.count == 3 && parts[0] == "OAS1" && parts[1].count == 4 && parts[1].allSatisfy(\.isNumber)
            && (parts[2] == "MR1" || parts[2] == "MR2")
    }

    static func oasisImage(_ folder: URL, image: OASISImage) throws(CohortError) -> URL? {
        switch image {
        case .masked, .unmasked:
            let t88 = folder.appendingPathComponent("PROCESSED/MPRAGE/T88_111")
            let suffix = image == .masked ? "_t88_masked_gfc.hdr" : "_t88_gfc.hdr"
            return try files(t88).first { $0.hasSuffix(suffix) }.map { t88.appendingPathComponent($0) }
        case .raw:
            let raw = folder.appendingPathComponent("RAW")
            return try files(raw).first { $0.hasSuffix("_mpr-1_anon.hdr") }.map { raw.appendingPathComponent($0) }
        }
    }

    static func oasisSegmentation(_ folder: URL) throws(CohortError) -> URL? {
        let segmentation = folder.appendingPathComponent("FSL_SEG")
        return try files(segmentation).first { $0.hasSuffix("_fseg.hdr") }.map { segmentation.appendingPathComponent($0) }
    }

    // MARK: Shared

    /// A manifest row from a dictionary of named values (the manifest's columns, or the
    /// aliases `Age`, `gender`, `MMSE`, `CDR`, `cdr_global`; the diagnosis already read into
    /// `diagnosis`; `extraColumns` carried), parsed by the manifest's own row parser so an
    /// imported manifest always reads back. A bad value throws, naming `source`.
    static func row(participant: String, session: String, path: String, info: [String: String],
                    extraColumns: [String], source: String) throws(CohortError) -> ManifestRow {
        func value(_ names: [String]) -> String {
            names.lazy.compactMap { info[$0] }.first { !Manifest.isMissing($0) } ?? ""
        }
        var fields = ["participant_id": participant, "session_id": session, "path": path,
                      "diagnosis": info["diagnosis"] ?? "",
                      "age": value(["age", "Age"]), "sex": value(["sex", "gender"]), "mmse": value(["mmse", "MMSE"]),
                      "cdr": value(["cdr", "cdr_global", "CDR"]), "site": value(["site"])]
        for column in extraColumns { fields[column] = info[column] ?? "" }
        let (row, issues) = Manifest.parseRow(fields, line: nil, extraColumns: extraColumns)
        if let error = issues.first(where: { $0.severity == .error }) {
            throw .invalidLayout(path: source, reason: "\(participant) \(session): \(error.message)")
        }
        return row
    }

    /// Columns that are not a key, a manifest column, an alias read into one (`Age`,
    /// `gender`, `MMSE`, `CDR`, `cdr_global`) or the diagnosis column read.
    static func extras(_ header: [String], excluding keys: [String?]) -> [String] {
        let consumed = Set(keys.compactMap { $0 } + Manifest.requiredColumns + Manifest.optionalColumns
            + ["Age", "gender", "MMSE", "CDR", "cdr_global"])
        return header.filter { !consumed.contains($0) && !$0.isEmpty }
    }

    /// Rows made before every extra column was known get empty values for the later ones.
    static func fillExtras(_ rows: [ManifestRow], _ columns: [String]) -> [ManifestRow] {
        rows.map { row in
            var row = row
            for column in columns where row.extra[column] == nil { row.extra[column] = "" }
            return row
        }
    }

    /// Sub-folders of `folder` whose names start with `prefix`, sorted by name.
    static func subfolders(_ folder: URL, prefix: String) throws(CohortError) -> [URL] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: folder.path) } catch {
            throw .cannotRead(path: folder.path, reason: TSVTable.reason(error))
        }
        return names.filter { $0.hasPrefix(prefix) && !$0.hasPrefix(".") }.sorted().map { folder.appendingPathComponent($0) }.filter { url in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
        }
    }

    /// File names in `folder`, sorted; empty when the folder does not exist.
    static func files(_ folder: URL) throws(CohortError) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else { return [] }
        do { return try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { !$0.hasPrefix(".") }.sorted() } catch {
            throw .cannotRead(path: folder.path, reason: TSVTable.reason(error))
        }
    }
}
