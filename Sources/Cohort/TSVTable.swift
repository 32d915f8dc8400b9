import Foundation

/// A tab-separated table as BIDS and ClinicaDL write them: one header line, then one row per
/// line, fields separated by tabs, no quoting. Lines are kept with their 1-based line numbers
/// so every later complaint can name the line.
public struct TSVTable: Sendable, Equatable {
    /// One data line.
    public struct Line: Sendable, Equatable {
        /// 1-based line number in the file (the header is line 1).
        public var number: Int
        public var fields: [String]
    }

    public var header: [String]
    /// 1-based line number of the header (after any blank lines).
    public var headerLine: Int
    public var lines: [Line]

    public init(header: [String], lines: [Line], headerLine: Int = 1) {
        self.header = header
        self.headerLine = headerLine
        self.lines = lines
    }

    /// Parses TSV text. Accepts LF, CRLF or CR line ends and a UTF-8 byte-order mark; skips
    /// blank lines. Field counts are *not* checked here (callers report them with line numbers).
    public init(text: String) {
        var text = Substring(text)
        if text.hasPrefix("\u{FEFF}") { text = text.dropFirst() }
        var header: [String]? = nil
        var headerLine = 1
        var lines: [Line] = []
        var number = 0
        // "\r\n" is one Character in Swift: split on any of the three line ends.
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
            number += 1
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            if header == nil {
                header = fields
                headerLine = number
            } else {
                lines.append(Line(number: number, fields: fields))
            }
        }
        self.header = header ?? []
        self.headerLine = headerLine
        self.lines = lines
    }

    /// Reads a TSV file (UTF-8).
    public init(contentsOf url: URL) throws(CohortError) {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw .cannotRead(path: url.path, reason: Self.reason(error))
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw .cannotRead(path: url.path, reason: "not UTF-8 text")
        }
        self.init(text: text)
    }

    /// Column index by name (first match).
    public func column(_ name: String) -> Int? { header.firstIndex(of: name) }

    /// A line's fields by column name (the first of duplicated names wins; unnamed columns dropped).
    public func fields(of line: Line) -> [String: String] {
        var fields: [String: String] = [:]
        for (name, value) in zip(header, line.fields) where !name.isEmpty && fields[name] == nil { fields[name] = value }
        return fields
    }

    /// Rows keyed by the values of `keys` (joined by a tab); a line whose field count differs
    /// from the header's is an error naming `path` and the line.
    func keyedRows(by keys: [String], path: String) throws(CohortError) -> [String: [String: String]] {
        var result: [String: [String: String]] = [:]
        for line in lines {
            guard line.fields.count == header.count else {
                throw .invalidLayout(path: path, reason: "line \(line.number): \(line.fields.count) fields where the header has \(header.count)")
            }
            let fields = fields(of: line)
            result[keys.map { fields[$0] ?? "" }.joined(separator: "\t")] = fields
        }
        return result
    }

    /// The TSV text: header, then rows, LF line ends, a final newline. Tabs and line breaks
    /// inside fields are replaced by spaces (TSV has no quoting).
    public var text: String {
        func clean(_ field: String) -> String {
            String(field.map { $0 == "\t" || $0 == "\n" || $0 == "\r" ? " " : $0 })
        }
        var out = header.map(clean).joined(separator: "\t") + "\n"
        for line in lines { out += line.fields.map(clean).joined(separator: "\t") + "\n" }
        return out
    }

    static func reason(_ error: Error) -> String {
        let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError
        if let code = underlying?.code, underlying?.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(code)))
        }
        if (error as NSError).code == NSFileReadNoSuchFileError { return "no such file" }
        return (error as NSError).localizedDescription
    }
}

/// A comma-separated file as spreadsheets export them (OASIS's clinical table): RFC 4180
/// quoting (`"a, b"`, doubled quotes), LF or CRLF.
enum CSV {
    /// Rows of fields with their 1-based line numbers (of the line each row starts on).
    static func parse(_ text: String) -> [(line: Int, fields: [String])] {
        var rows: [(line: Int, fields: [String])] = []
        var fields: [String] = []
        var field = ""
        var quoted = false
        var line = 1
        var rowLine = 1
        var chars = text.hasPrefix("\u{FEFF}") ? Substring(text).dropFirst() : Substring(text)
        func endRow() {
            fields.append(field.trimmingCharacters(in: .whitespaces))
            if !(fields.count == 1 && fields[0].isEmpty) { rows.append((rowLine, fields)) }
            fields = []
            field = ""
        }
        while let c = chars.first {
            chars = chars.dropFirst()
            if quoted {
                if c == "\"" {
                    if chars.first == "\"" { field.append("\""); chars = chars.dropFirst() } else { quoted = false }
                } else {
                    if c == "\n" || c == "\r\n" { line += 1 }
                    field.append(c)
                }
            } else {
                switch c {
                case "\"": quoted = true
                case ",": fields.append(field.trimmingCharacters(in: .whitespaces)); field = ""
                case "\n", "\r\n":
                    endRow()
                    line += 1
                    rowLine = line
                case "\r": continue
                default: field.append(c)
                }
            }
        }
        if !field.isEmpty || !fields.isEmpty { endRow() }
        return rows
    }
}
