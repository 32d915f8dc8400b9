import Foundation
import Reports
import TensorCore

/// The quality-control record of one preprocessed scan: how well it registered, how well its
/// brain mask matches a reference, what went wrong, and its figure.
public struct QCEntry: Sendable, Codable, Equatable {
    /// The outcome of preprocessing the scan.
    public enum Status: Sendable, Codable, Equatable {
        case ok
        /// Preprocessed, with warnings worth a look.
        case warning
        /// Not preprocessed, and why.
        case failed(reason: String)

        private enum CodingKeys: String, CodingKey { case state, reason }

        /// `{"state": "ok" | "warning" | "failed", "reason": ...}` (reason only for failures).
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            switch try container.decode(String.self, forKey: .state) {
            case "ok": self = .ok
            case "warning": self = .warning
            case "failed": self = .failed(reason: try container.decode(String.self, forKey: .reason))
            case let other: throw DecodingError.dataCorruptedError(forKey: .state, in: container, debugDescription: "unknown QC state \(other)")
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            switch self {
            case .ok: try container.encode("ok", forKey: .state)
            case .warning: try container.encode("warning", forKey: .state)
            case let .failed(reason):
                try container.encode("failed", forKey: .state)
                try container.encode(reason, forKey: .reason)
            }
        }

        var text: String {
            switch self {
            case .ok: "ok"
            case .warning: "warning"
            case let .failed(reason): "failed: \(reason)"
            }
        }
    }

    /// A figure file in the QC folder and its size in pixels.
    public struct Figure: Sendable, Codable, Equatable {
        /// File name inside `qc/` (no folders), e.g. from `QCPage.writeFigure`.
        public var file: String
        public var width: Int
        public var height: Int

        public init(file: String, width: Int, height: Int) {
            (self.file, self.width, self.height) = (file, width, height)
        }
    }

    public var participantID: String
    public var sessionID: String
    /// The scan's `QCFigure.triplet`, nil when there is none (e.g. a failed scan).
    public var figure: Figure?
    /// Normalised cross-correlation of the registered image with the template (−1…1, higher
    /// is better), as the registration reports it; nil when not registered.
    public var ncc: Double?
    /// The registration's final cost as its optimiser reports it (lower is better).
    public var cost: Double?
    /// Dice overlap (0…1) of the brain mask with a reference mask, when there is one.
    public var dice: Double?
    public var warnings: [String]
    public var status: Status

    public init(participantID: String, sessionID: String, figure: Figure? = nil, ncc: Double? = nil, cost: Double? = nil,
                dice: Double? = nil, warnings: [String] = [], status: Status = .ok) {
        (self.participantID, self.sessionID, self.figure) = (participantID, sessionID, figure)
        (self.ncc, self.cost, self.dice, self.warnings, self.status) = (ncc, cost, dice, warnings, status)
    }

    enum CodingKeys: String, CodingKey {
        case participantID = "participant_id", sessionID = "session_id"
        case figure, ncc, cost, dice, warnings, status
    }

    var failed: Bool {
        if case .failed = status { return true }
        return false
    }
}

/// The quality-control page of a preprocessing run: `qc/index.html` with a summary table (one
/// row per scan, worst registration first, outliers and failures highlighted), the run's
/// settings and every scan's `QCFigure.triplet`.
///
/// Figures are separate PNG files in `qc/`, referenced by relative `<img>` paths, where the
/// feature report inlines its few figures as data URIs: a cohort has hundreds of scans, and
/// inlined they would make a page of tens of megabytes that the browser must decode whole,
/// while files load lazily, can be opened one by one, and are written as each scan is done
/// (so the run need not hold them in memory until the page is written). The page is HTML5
/// that is also well-formed XML, without scripts.
public enum QCPage {
    /// The folder, under a run's output directory, holding the page and the figures.
    public static let folder = "qc"
    public static let indexFile = "index.html"

    /// Scans that did not fail and have an NCC below this are flagged: the median minus three
    /// scaled median absolute deviations of the finite NCCs of the scans that did not fail,
    ///
    ///     median(ncc) − 3 · 1.4826 · median(|ncc − median(ncc)|)
    ///
    /// (1.4826 makes the MAD estimate the standard deviation of normal data; Leys et al. 2013,
    /// J. Exp. Soc. Psychol. 49:764). Nil when no scan has an NCC.
    public static func nccThreshold(_ entries: [QCEntry]) -> Double? {
        let values = entries.compactMap { entry in entry.failed ? nil : entry.ncc.flatMap { $0.isFinite ? $0 : nil } }
        guard !values.isEmpty else { return nil }
        let centre = median(values)
        return centre - 3 * 1.4826 * median(values.map { abs($0 - centre) })
    }

    /// The entries worst fit first: failed scans, then scans without a (finite) NCC, then by
    /// increasing NCC; ties by participant, session, then input order.
    static func worstFirst(_ entries: [QCEntry]) -> [QCEntry] {
        func key(_ entry: QCEntry) -> (Int, Double) {
            if entry.failed { return (0, 0) }
            guard let ncc = entry.ncc, ncc.isFinite else { return (1, 0) }
            return (2, ncc)
        }
        return entries.enumerated().sorted { a, b in
            let (ka, kb) = (key(a.element), key(b.element))
            return (ka.0, ka.1, a.element.participantID, a.element.sessionID, a.offset)
                < (kb.0, kb.1, b.element.participantID, b.element.sessionID, b.offset)
        }.map(\.element)
    }

    /// Why a row is highlighted, and its background colour.
    enum Flag {
        case failed, lowNCC, warning

        var colour: String {
            switch self {
            case .failed: "#f7c6c0"
            case .lowNCC: "#fbd8ae"
            case .warning: "#fff2bf"
            }
        }

        var text: String {
            switch self {
            case .failed: "failed"
            case .lowNCC: "low NCC"
            case .warning: "warnings"
            }
        }
    }

    static func flag(_ entry: QCEntry, threshold: Double?) -> Flag? {
        if entry.failed { return .failed }
        if let ncc = entry.ncc, let threshold, ncc < threshold { return .lowNCC }
        if entry.status == .warning || !entry.warnings.isEmpty { return .warning }
        return nil
    }

    /// The whole page (see the type's description).
    ///
    /// - Parameters:
    ///   - entries: One per scan, in any order.
    ///   - title: Plain-text page title.
    ///   - settings: Name and value of each setting of the run (template, options...), shown
    ///     as a table in the given order.
    public static func render(entries: [QCEntry], title: String, settings: [(String, String)]) -> String {
        let ordered = worstFirst(entries)
        let threshold = nccThreshold(entries)
        var document = HTMLDocument(title: title)
        document.addSection(id: "summary", title: "Summary", body: summary(ordered, threshold: threshold))
        document.addSection(id: "settings", title: "Settings",
                            body: settings.isEmpty ? "<p>No settings recorded.</p>"
                                : XHTML.table(header: ["setting", "value"], rows: settings.map { [$0.0, $0.1] }, numericColumns: []))
        document.addSection(id: "figures", title: "Figures", body: figures(ordered))
        return document.render()
    }

    /// Writes `render(...)` to `directory/qc/index.html` atomically (a temporary file renamed
    /// over it), creating `qc/` if needed.
    /// - Returns: The page's URL.
    @discardableResult
    public static func write(entries: [QCEntry], title: String, settings: [(String, String)], to directory: URL) throws(PreprocessingError) -> URL {
        let url = try makeFolder(in: directory).appendingPathComponent(indexFile)
        try atomicWrite(Data(render(entries: entries, title: title, settings: settings).utf8), to: url)
        return url
    }

    /// The figure's file name for a scan: `<participant>_<session>.png`, each id with every
    /// byte of its UTF-8 other than ASCII letters, digits and `-` written `~XX` (hexadecimal),
    /// so distinct scans get distinct names that are safe as files and as relative URLs.
    public static func figureFileName(participantID: String, sessionID: String) -> String {
        func encode(_ id: String) -> String {
            var name = ""
            for byte in id.utf8 {
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"):
                    name.unicodeScalars.append(Unicode.Scalar(byte))
                default:
                    name += String(format: "~%02X", byte)
                }
            }
            return name
        }
        return "\(encode(participantID))_\(encode(sessionID)).png"
    }

    /// Writes a scan's figure (e.g. `QCFigure.triplet`'s result) to
    /// `directory/qc/figureFileName(...)` atomically, creating `qc/` if needed.
    /// - Returns: The figure for the scan's `QCEntry`.
    public static func writeFigure(_ figure: (png: Data, width: Int, height: Int), participantID: String, sessionID: String,
                                   to directory: URL) throws(PreprocessingError) -> QCEntry.Figure {
        let file = figureFileName(participantID: participantID, sessionID: sessionID)
        try atomicWrite(figure.png, to: makeFolder(in: directory).appendingPathComponent(file))
        return QCEntry.Figure(file: file, width: figure.width, height: figure.height)
    }

    // MARK: Page parts

    static let tableHeader = ["#", "participant", "session", "status", "flag", "NCC", "cost", "Dice", "warnings", "figure"]
    static let numericColumns: Set<Int> = [0, 5, 6, 7]

    static func summary(_ ordered: [QCEntry], threshold: Double?) -> String {
        let flags = ordered.map { flag($0, threshold: threshold) }
        let failed = flags.filter { $0 == .failed }.count, low = flags.filter { $0 == .lowNCC }.count
        let rule = threshold.map { String(format: "%.4f", $0) } ?? "none (no scan has an NCC)"
        var html = "<p>\(ordered.count) scan\(ordered.count == 1 ? "" : "s"): \(failed) failed, \(low) with a low NCC, "
            + "\(flags.filter { $0 == .warning }.count) with warnings. Rows are ordered worst fit first: failed scans, then scans "
            + "without an NCC, then by increasing NCC.</p>\n"
            + "<p>NCC: normalised cross-correlation of the registered image with the template (−1 to 1, higher is better); cost: "
            + "the registration's final cost (lower is better); Dice: overlap of the brain mask with the reference mask, where "
            + "there is one. Low NCC: below the cohort's median − 3 × 1.4826 × MAD of the NCC (scans that did not fail) = "
            + "\(XHTML.escape(rule)). Highlighted rows: red failed, orange low NCC, yellow warnings.</p>\n"
        html += "<table>\n<thead><tr>" + tableHeader.enumerated().map { column, name in
            "<th scope=\"col\"\(numericColumns.contains(column) ? " class=\"num\"" : "")>\(XHTML.escape(name))</th>"
        }.joined() + "</tr></thead>\n<tbody>\n"
        for (index, entry) in ordered.enumerated() {
            let flag = flags[index]
            let cells = ["\(index + 1)", entry.participantID, entry.sessionID, entry.status.text, flag?.text ?? "",
                         number(entry.ncc, "%.4f"), number(entry.cost, "%.5g"), number(entry.dice, "%.3f"), entry.warnings.joined(separator: "; ")]
            html += "<tr\(flag.map { " style=\"background:\($0.colour)\"" } ?? "")>"
            for (column, text) in cells.enumerated() {
                html += "<td\(numericColumns.contains(column) ? " class=\"num\"" : "")>\(XHTML.escape(text))</td>"
            }
            html += "<td><a href=\"#\(anchor(index))\">\(entry.figure == nil ? "none" : "figure")</a></td></tr>\n"
        }
        return html + "</tbody>\n</table>\n"
    }

    static func figures(_ ordered: [QCEntry]) -> String {
        var html = "<p>Each figure shows the image's sagittal, coronal and axial slices through the grid's centre, in the table's "
            + "order. Sagittal: anterior on the left, superior at the top. Coronal and axial: neurological convention, the "
            + "subject's left on the left; superior at the top of the coronal slice, anterior at the top of the axial slice. "
            + "Letters at the panel edges (large enough panels) mark the directions: A/P anterior/posterior, S/I "
            + "superior/inferior, L/R left/right. Orange: the template's edges; cyan: the brain mask's boundary. Grey levels span "
            + "the 1st to 99th percentile of the image's nonzero voxels; pixels are square in millimetres. Click a figure to open "
            + "it at full size.</p>\n"
        for (index, entry) in ordered.enumerated() {
            let scan = "\(entry.participantID) / \(entry.sessionID)"
            html += "<figure id=\"\(anchor(index))\">\n"
            if let figure = entry.figure {
                let source = XHTML.escape(relativeURL(figure.file))
                html += "<a href=\"\(source)\"><img src=\"\(source)\" width=\"\(figure.width)\" height=\"\(figure.height)\" loading=\"lazy\" "
                    + "style=\"max-width:100%;height:auto\" alt=\"\(XHTML.escape("Sagittal, coronal and axial slices of \(scan)"))\"/></a>\n"
            } else {
                html += "<p>No figure.</p>\n"
            }
            var caption = "\(index + 1). \(scan): \(entry.status.text); NCC \(number(entry.ncc, "%.4f")), Dice \(number(entry.dice, "%.3f"))"
            if !entry.warnings.isEmpty { caption += "; " + entry.warnings.joined(separator: "; ") }
            html += "<figcaption>\(XHTML.escape(caption))</figcaption>\n</figure>\n"
        }
        return html
    }

    /// The fragment id of the figure of the row at `index` (0-based) of the ordered entries.
    static func anchor(_ index: Int) -> String { "scan-\(index + 1)" }

    /// `file` percent-encoded but for ASCII letters, digits and `-._~`, so that no file name
    /// can read as a folder, a scheme (`javascript:`) or a fragment.
    static func relativeURL(_ file: String) -> String {
        file.addingPercentEncoding(withAllowedCharacters: urlSafe) ?? ""
    }

    private static let urlSafe = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// `value` formatted, or "—" when nil or not finite.
    static func number(_ value: Double?, _ format: String) -> String {
        guard let value, value.isFinite else { return "—" }
        return String(format: format, value)
    }

    /// The middle value of `values` (not empty), or the mean of the two middle values.
    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    // MARK: Files

    static func makeFolder(in directory: URL) throws(PreprocessingError) -> URL {
        let url = directory.appendingPathComponent(folder, isDirectory: true)
        do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            throw .cannotWrite(path: url.path, reason: error.localizedDescription)
        }
        return url
    }

    static func atomicWrite(_ data: Data, to url: URL) throws(PreprocessingError) {
        do { try AtomicFile.write(data, to: url) } catch let FileWriteError.cannotWrite(_, reason) {
            throw .cannotWrite(path: url.path, reason: reason)
        } catch {
            throw .cannotWrite(path: url.path, reason: "\(error)")
        }
    }
}
