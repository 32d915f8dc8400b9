import Foundation
import Crypto
import TensorCore

/// One scan of a cohort: a line of a manifest TSV.
///
/// Paths are kept as written (relative to the manifest's folder, or absolute); resolve them
/// with `Manifest.url(for:)`.
public struct ManifestRow: Sendable, Equatable {
    /// BIDS participant label, e.g. `sub-0007`. All of a participant's sessions stay on one
    /// side of every split.
    public var participantID: String
    /// BIDS session label, e.g. `ses-M000`.
    public var sessionID: String
    /// The scan (NIfTI or Analyze).
    public var path: String
    /// `nil`: unlabelled (pretraining only).
    public var diagnosis: Diagnosis?
    /// Years.
    public var age: Double?
    /// As written (`M`, `F`, ...).
    public var sex: String?
    /// Mini-Mental State Examination score, 0-30.
    public var mmse: Double?
    /// Clinical Dementia Rating: 0, 0.5, 1, 2 or 3.
    public var cdr: Double?
    /// Acquisition site or scanner.
    public var site: String?
    /// A brain mask on the scan's grid (non-zero = brain).
    public var maskPath: String?
    /// A tissue label map on the scan's grid (e.g. the synthetic cohort's ground truth).
    public var labelPath: String?
    /// Columns the schema does not know, by column name; carried through to every output.
    public var extra: [String: String]
    /// 1-based line in the manifest file it was read from (`nil` for rows made in code).
    public var line: Int?

    public init(participantID: String, sessionID: String, path: String, diagnosis: Diagnosis?,
                age: Double? = nil, sex: String? = nil, mmse: Double? = nil, cdr: Double? = nil,
                site: String? = nil, maskPath: String? = nil, labelPath: String? = nil,
                extra: [String: String] = [:], line: Int? = nil) {
        self.participantID = participantID
        self.sessionID = sessionID
        self.path = path
        self.diagnosis = diagnosis
        self.age = age
        self.sex = sex
        self.mmse = mmse
        self.cdr = cdr
        self.site = site
        self.maskPath = maskPath
        self.labelPath = labelPath
        self.extra = extra
        self.line = line
    }
}

/// A cohort manifest: the TSV that tells every command which scans to use.
///
/// Format (see `data-manifests/README.md`): a header line, then one tab-separated row per
/// scan. Required columns `participant_id`, `session_id`, `path`, `diagnosis`; optional
/// `age`, `sex`, `mmse`, `cdr`, `site`, `mask_path`, `label_path`; any other column is kept
/// and written back out unchanged.
public struct Manifest: Sendable, Equatable {
    public static let requiredColumns = ["participant_id", "session_id", "path", "diagnosis"]
    public static let optionalColumns = ["age", "sex", "mmse", "cdr", "site", "mask_path", "label_path"]

    /// The folder relative paths are resolved against (the manifest file's folder).
    public var directory: URL
    /// Optional columns present, in schema order (written even where a row has no value).
    public var optionalColumns: [String]
    /// Unknown columns, in the order they appeared.
    public var extraColumns: [String]
    public var rows: [ManifestRow]

    public init(directory: URL, rows: [ManifestRow], optionalColumns: [String]? = nil, extraColumns: [String] = []) {
        self.directory = directory.standardizedFileURL
        self.rows = rows
        self.extraColumns = extraColumns
        self.optionalColumns = optionalColumns ?? Self.optionalColumns.filter { column in
            rows.contains { $0.value(ofOptionalColumn: column) != nil }
        }
    }

    // MARK: Reading

    /// Reads a manifest and refuses it if any row has an error (unknown label, bad number,
    /// wrong field count, duplicate participant/session, ...). Files are not opened: use
    /// `ManifestValidator` for the full check.
    public init(contentsOf url: URL) throws(CohortError) {
        let (manifest, issues) = try Self.parse(contentsOf: url)
        let errors = issues.filter { $0.severity == .error }
        guard let manifest, errors.isEmpty else { throw .invalidManifest(path: url.path, issues: errors) }
        self = manifest
    }

    /// Parses a manifest, collecting every row-level problem instead of stopping at the
    /// first. `manifest` is `nil` only when the header lacks a required column. Rows with
    /// errors are kept (with the bad field left empty) so later checks still see them.
    public static func parse(contentsOf url: URL) throws(CohortError) -> (manifest: Manifest?, issues: [ManifestIssue]) {
        let table = try TSVTable(contentsOf: url)
        return parse(table, directory: url.deletingLastPathComponent())
    }

    /// Parses a TSV table (see `parse(contentsOf:)`).
    public static func parse(_ table: TSVTable, directory: URL) -> (manifest: Manifest?, issues: [ManifestIssue]) {
        var issues: [ManifestIssue] = []
        if table.header.isEmpty {
            return (nil, [ManifestIssue(.error, line: 1, "the file is empty: expected a header line with " + requiredColumns.joined(separator: ", "))])
        }
        let headerLine = table.headerLine
        var seen: Set<String> = []
        for name in table.header where !name.isEmpty && !seen.insert(name).inserted {
            issues.append(ManifestIssue(.error, line: headerLine, column: name, "column \"\(name)\" appears twice in the header"))
        }
        let missing = requiredColumns.filter { table.column($0) == nil }
        if !missing.isEmpty {
            let hint = table.header.count == 1 && table.header[0].contains(",") ? " (the file looks comma-separated; manifests are tab-separated)" : ""
            issues.append(ManifestIssue(.error, line: headerLine, "missing required column\(missing.count == 1 ? "" : "s") \(missing.joined(separator: ", "))\(hint)"))
            return (nil, issues)
        }
        let known = Set(requiredColumns + optionalColumns)
        let extraColumns = table.header.filter { !known.contains($0) && !$0.isEmpty }
        let presentOptional = optionalColumns.filter { table.column($0) != nil }
        if table.lines.isEmpty { issues.append(ManifestIssue(.error, line: headerLine, "the manifest has a header but no rows")) }

        var rows: [ManifestRow] = []
        var firstLineOfPair: [String: Int] = [:]
        for line in table.lines {
            if line.fields.count != table.header.count {
                issues.append(ManifestIssue(.error, line: line.number,
                    "\(line.fields.count) field\(line.fields.count == 1 ? "" : "s") where the header has \(table.header.count) (TSV fields are separated by tabs)"))
                continue
            }
            let (row, rowIssues) = parseRow(table.fields(of: line), line: line.number, extraColumns: extraColumns)
            issues += rowIssues
            let key = row.participantID + "\t" + row.sessionID
            if let first = firstLineOfPair[key] {
                issues.append(ManifestIssue(.error, line: line.number,
                    "duplicate participant/session \(row.participantID) \(row.sessionID) (first at line \(first))"))
            } else {
                firstLineOfPair[key] = line.number
            }
            rows.append(row)
        }
        issues += cohortIDWarnings(rows)
        let manifest = Manifest(directory: directory, rows: rows, optionalColumns: presentOptional, extraColumns: extraColumns)
        return (manifest, issues)
    }

    /// Words that mean "not known" in a number column (case-insensitive), besides empty.
    static func isMissing(_ value: String) -> Bool {
        value.isEmpty || ["n/a", "na", "nan"].contains(value.lowercased())
    }

    /// "Not known" in a text column: empty or `n/a` (other words, such as a site called NA, are values).
    static func isMissingText(_ value: String) -> Bool {
        value.isEmpty || value.lowercased() == "n/a"
    }

    /// One row from its fields by column name, with every problem found (the shared parser
    /// of manifests and importers). `line` is the manifest line issues name.
    static func parseRow(_ fields: [String: String], line: Int?, extraColumns: [String]) -> (ManifestRow, [ManifestIssue]) {
        var issues: [ManifestIssue] = []
        func text(_ column: String) -> String? {
            guard let value = fields[column], !isMissingText(value) else { return nil }
            return value
        }
        func identifier(_ column: String) -> String {
            let value = fields[column] ?? ""
            if value.isEmpty {
                issues.append(ManifestIssue(.error, line: line, column: column, "\(column) is empty"))
            } else if value.contains(where: \.isWhitespace) || value.contains("/") {
                issues.append(ManifestIssue(.error, line: line, column: column, "\(column) \"\(value)\" contains a space or slash"))
            }
            return value
        }
        func number(_ column: String, range: ClosedRange<Double>, allowed: [Double]? = nil) -> Double? {
            guard let value = fields[column], !isMissing(value) else { return nil }
            guard let number = Double(value), number.isFinite else {
                issues.append(ManifestIssue(.error, line: line, column: column, "\(column) \"\(value)\" is not a number"))
                return nil
            }
            if let allowed, !allowed.contains(number) {
                issues.append(ManifestIssue(.error, line: line, column: column,
                    "\(column) \(value) is not one of \(allowed.map(ManifestRow.format).joined(separator: ", "))"))
                return nil
            }
            guard range.contains(number) else {
                issues.append(ManifestIssue(.error, line: line, column: column,
                    "\(column) \(value) is outside \(ManifestRow.format(range.lowerBound))-\(ManifestRow.format(range.upperBound))"))
                return nil
            }
            return number
        }
        let participant = identifier("participant_id")
        let session = identifier("session_id")
        let path = fields["path"] ?? ""
        if path.isEmpty { issues.append(ManifestIssue(.error, line: line, column: "path", "path is empty")) }
        var diagnosis: Diagnosis? = nil
        do { diagnosis = try Diagnosis.parse(fields["diagnosis"] ?? "") } catch {
            issues.append(ManifestIssue(.error, line: line, column: "diagnosis", error.description))
        }
        let sex = text("sex")
        if let sex, !["M", "F", "MALE", "FEMALE", "O", "OTHER"].contains(sex.uppercased()) {
            issues.append(ManifestIssue(.warning, line: line, column: "sex", "sex \"\(sex)\" is not M, F or other"))
        }
        var extra: [String: String] = [:]
        for column in extraColumns { extra[column] = fields[column] ?? "" }
        let row = ManifestRow(
            participantID: participant, sessionID: session, path: path, diagnosis: diagnosis,
            age: number("age", range: 0...130), sex: sex,
            mmse: number("mmse", range: 0...30), cdr: number("cdr", range: 0...3, allowed: [0, 0.5, 1, 2, 3]),
            site: text("site"), maskPath: text("mask_path"), labelPath: text("label_path"),
            extra: extra, line: line)
        return (row, issues)
    }

    /// One warning per cohort for IDs without the BIDS prefixes ClinicaDL expects.
    private static func cohortIDWarnings(_ rows: [ManifestRow]) -> [ManifestIssue] {
        var issues: [ManifestIssue] = []
        for (prefix, column, key) in [("sub-", "participant_id", \ManifestRow.participantID), ("ses-", "session_id", \ManifestRow.sessionID)] {
            let offending = rows.filter { !$0[keyPath: key].isEmpty && !$0[keyPath: key].hasPrefix(prefix) }
            if let first = offending.first {
                issues.append(ManifestIssue(.warning, line: first.line, column: column,
                    "\(offending.count) row\(offending.count == 1 ? "" : "s") have a \(column) without the BIDS \"\(prefix)\" prefix (e.g. \"\(first[keyPath: key])\"); ClinicaDL expects it"))
            }
        }
        return issues
    }

    // MARK: Paths

    /// A manifest path resolved against the manifest's folder.
    /// `..` is taken from the folder's physical location (symbolic links resolved), as the
    /// system does when it opens the file.
    public func url(for path: String) -> URL { Self.resolve(path, in: physicalPath(directory)) }

    /// `path` resolved against a folder whose symbolic links are already resolved.
    private static func resolve(_ path: String, in physicalDirectory: URL) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path).standardizedFileURL
            : URL(fileURLWithPath: physicalDirectory.path + "/" + path).standardizedFileURL
    }

    // MARK: Selection

    /// Participant IDs in order of first appearance.
    public var participants: [String] {
        var seen: Set<String> = []
        return rows.compactMap { seen.insert($0.participantID).inserted ? $0.participantID : nil }
    }

    /// The same manifest restricted to rows satisfying `include` (columns and folder kept).
    public func filter(_ include: (ManifestRow) -> Bool) -> Manifest {
        var copy = self
        copy.rows = rows.filter(include)
        return copy
    }

    /// Rows with a diagnosis.
    public var labeled: Manifest { filter { $0.diagnosis != nil } }

    // MARK: Writing

    /// Output column order: required, the optional ones present, then the extra ones.
    public var columns: [String] { Self.requiredColumns + optionalColumns + extraColumns }

    /// The manifest as a table whose relative paths are rewritten to be relative to
    /// `outputDirectory` (absolute paths stay absolute), so a manifest written elsewhere
    /// still points at the same files; with `nil`, every path is made absolute.
    public func table(relativeTo outputDirectory: URL?) -> TSVTable {
        let base = outputDirectory?.standardizedFileURL
        // Symbolic links resolved once per table, not once per path.
        let physicalDirectory = physicalPath(directory)
        let relative = base.map { RelativePaths(from: $0) }
        func rebase(_ path: String) -> String {
            guard let base, let relative else { return Self.resolve(path, in: physicalDirectory).path }
            // Same folder (or an absolute path): as written, whatever the disk holds.
            if path.hasPrefix("/") || base.path == directory.path { return path }
            return relative.path(of: Self.resolve(path, in: physicalDirectory))
        }
        let lines = rows.enumerated().map { index, row in
            TSVTable.Line(number: index + 2, fields: columns.map { column in
                switch column {
                case "path": return rebase(row.path)
                case "mask_path": return row.maskPath.map(rebase) ?? ""
                case "label_path": return row.labelPath.map(rebase) ?? ""
                default:
                    return row.value(ofOptionalColumn: column) ?? row.value(ofRequiredColumn: column) ?? row.extra[column] ?? ""
                }
            })
        }
        return TSVTable(header: columns, lines: lines)
    }

    /// Writes the manifest atomically (temporary file + rename; the folder is created), paths
    /// rebased onto the destination's folder.
    /// A path holding a tab or line break cannot be written as TSV: an error, not a rewrite.
    public func write(to url: URL) throws(CohortError) {
        for row in rows {
            for path in [row.path, row.maskPath, row.labelPath].compactMap({ $0 })
            where path.contains(where: { $0 == "\t" || $0.isNewline }) {
                throw .cannotWrite(path: url.path, reason: "\(row.participantID) \(row.sessionID): the path \"\(path)\" holds a tab or line break, which TSV cannot carry; rename the file")
            }
        }
        try writeAtomically(Data(table(relativeTo: url.deletingLastPathComponent()).text.utf8), to: url)
    }

    /// SHA-256 of the manifest's canonical text (paths relative to its own folder): recorded
    /// by every run that consumes it, so results name exactly which cohort they came from.
    public var contentHash: String { SHA256.hex(Data(table(relativeTo: directory).text.utf8)) }
}

extension ManifestRow {
    /// Numbers written without a trailing `.0` when whole (`72`, `0.5`).
    static func format(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    func value(ofRequiredColumn column: String) -> String? {
        switch column {
        case "participant_id": return participantID
        case "session_id": return sessionID
        case "path": return path
        case "diagnosis": return diagnosis?.rawValue ?? ""
        default: return nil
        }
    }

    func value(ofOptionalColumn column: String) -> String? {
        switch column {
        case "age": return age.map(Self.format)
        case "sex": return sex
        case "mmse": return mmse.map(Self.format)
        case "cdr": return cdr.map(Self.format)
        case "site": return site
        case "mask_path": return maskPath
        case "label_path": return labelPath
        default: return nil
        }
    }
}

/// `url` with symbolic links resolved, also when its last components do not exist yet (a
/// folder about to be written): the longest existing ancestor is resolved and the rest appended.
func physicalPath(_ url: URL) -> URL {
    var existing = url.standardizedFileURL
    var missing: [String] = []
    while !FileManager.default.fileExists(atPath: existing.path), existing.pathComponents.count > 1 {
        missing.insert(existing.lastPathComponent, at: 0)
        existing = existing.deletingLastPathComponent()
    }
    return missing.reduce(existing.resolvingSymlinksInPath()) { $0.appendingPathComponent($1) }
}

/// Files expressed relative to one folder, with `..` where needed: from `/a/d`, `/a/b/c.nii`
/// is `../b/c.nii`. Symbolic links in the folders are resolved first (the base's once),
/// because the system resolves `..` from a folder's physical location.
struct RelativePaths {
    private let baseParts: [String]

    init(from base: URL) { baseParts = physicalPath(base).pathComponents }

    func path(of target: URL) -> String {
        // The file itself stays as named (a link to annexed content, half of a .hdr/.img pair).
        let targetParts = physicalPath(target.deletingLastPathComponent()).pathComponents + [target.lastPathComponent]
        var common = 0
        // Byte-wise: file systems tell NFC from NFD spellings that Swift's == calls equal.
        while common < min(targetParts.count - 1, baseParts.count),
              targetParts[common].utf8.elementsEqual(baseParts[common].utf8) { common += 1 }
        let ups = Array(repeating: "..", count: baseParts.count - common)
        return (ups + targetParts[common...]).joined(separator: "/")
    }
}

/// Hex SHA-256 digests for provenance records.
public enum SHA256 {
    public static func hex(_ data: Data) -> String {
        Crypto.SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
}
