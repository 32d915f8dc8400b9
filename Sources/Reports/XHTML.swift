import Foundation

/// Text and table markup for reports that are HTML5 and, at the same time, well-formed XML.
public enum XHTML {
    /// `text` made safe as XML character data or as an attribute value (either quote style):
    /// `&`, `<`, `>`, `"` and `'` become references, and the characters XML 1.0 forbids (C0
    /// controls other than tab, line feed and carriage return; U+FFFE; U+FFFF) become U+FFFD.
    public static func escape(_ text: String) -> String {
        var escaped = String()
        escaped.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            case "\t", "\n", "\r": escaped.unicodeScalars.append(scalar)
            case "\u{0}"..."\u{1F}", "\u{FFFE}", "\u{FFFF}": escaped.unicodeScalars.append("\u{FFFD}")
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    /// A `<table>` with one header row and the given body rows; every cell's text is escaped.
    ///
    /// Columns whose index is in `numericColumns` (0-based) are right-aligned with tabular
    /// digits (class `num`, styled by `HTMLDocument`). Short rows are padded with empty cells to
    /// the widest row or header; an empty `header` gives a table without `<thead>`.
    public static func table(header: [String], rows: [[String]], numericColumns: Set<Int>) -> String {
        let columns = max(header.count, rows.map(\.count).max() ?? 0)
        func cells(_ texts: [String], tag: String) -> String {
            var html = "<tr>"
            for column in 0..<columns {
                let text = column < texts.count ? escape(texts[column]) : ""
                let scope = tag == "th" ? " scope=\"col\"" : ""
                let style = numericColumns.contains(column) ? " class=\"num\"" : ""
                html += "<\(tag)\(scope)\(style)>\(text)</\(tag)>"
            }
            return html + "</tr>\n"
        }
        var html = "<table>\n"
        if !header.isEmpty {
            html += "<thead>" + cells(header, tag: "th") + "</thead>\n"
        }
        html += "<tbody>\n"
        for row in rows {
            html += cells(row, tag: "td")
        }
        return html + "</tbody>\n</table>\n"
    }
}

/// A self-contained report page: a title, a table of contents and numbered sections.
///
/// `render()` gives HTML5 that is also well-formed XML (XHTML namespace, every element closed,
/// numeric character references only), with an inline print-friendly style sheet and no
/// scripts, fonts or other external resources.
public struct HTMLDocument: Sendable {
    /// Page title, plain text: the `<title>` and the `<h1>`.
    private let title: String
    private var sections: [(id: String, title: String, body: String)] = []

    /// An empty document titled `title` (plain text, escaped when rendered).
    public init(title: String) {
        self.title = title
    }

    /// Appends a section and its entry in the table of contents.
    ///
    /// - Parameters:
    ///   - id: The section's fragment identifier; should be unique in the document and made of
    ///     letters, digits, `-` and `_` (it is escaped, not rewritten).
    ///   - title: Plain-text heading.
    ///   - body: Well-formed, already-escaped XHTML (for example `XHTML.table` or `SVGPlot` output).
    public mutating func addSection(id: String, title: String, body: String) {
        sections.append((id: id, title: title, body: body))
    }

    /// The whole page, starting with `<!DOCTYPE html>`.
    public func render() -> String {
        var html = """
            <!DOCTYPE html>
            <html xmlns="http://www.w3.org/1999/xhtml" lang="en">
            <head>
            <meta charset="utf-8"/>
            <meta name="viewport" content="width=device-width, initial-scale=1"/>
            <title>\(XHTML.escape(title))</title>
            <style>\(Self.styleSheet)</style>
            </head>
            <body>
            <h1>\(XHTML.escape(title))</h1>

            """
        if !sections.isEmpty {
            html += "<nav aria-label=\"Contents\">\n<h2>Contents</h2>\n<ol>\n"
            for section in sections {
                html += "<li><a href=\"#\(XHTML.escape(section.id))\">\(XHTML.escape(section.title))</a></li>\n"
            }
            html += "</ol>\n</nav>\n"
        }
        html += "<main>\n"
        for section in sections {
            html += "<section id=\"\(XHTML.escape(section.id))\">\n<h2>\(XHTML.escape(section.title))</h2>\n\(section.body)\n</section>\n"
        }
        return html + "</main>\n</body>\n</html>\n"
    }

    /// System fonts only; figures and tables are kept whole on printed pages. Contains no `<`
    /// or `&`, so it stays well-formed XML without a CDATA section.
    private static let styleSheet = """

        body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
               font-size: 16px; line-height: 1.5; color: #1a1a1a; background: #fff;
               max-width: 62rem; margin: 0 auto; padding: 1.5rem; }
        h1 { font-size: 1.75rem; margin: 0 0 1rem; }
        h2 { font-size: 1.3rem; margin: 2.2rem 0 0.8rem; padding-bottom: 0.2rem; border-bottom: 1px solid #d0d0d0; }
        nav h2 { margin-top: 1rem; }
        nav ol { padding-left: 1.6rem; }
        a { color: #0b5394; }
        table { border-collapse: collapse; margin: 1rem 0; font-size: 0.92rem; }
        th, td { padding: 0.3rem 0.7rem; border-bottom: 1px solid #e0e0e0; text-align: left; vertical-align: top; }
        thead th { border-bottom: 2px solid #888; }
        .num { text-align: right; font-variant-numeric: tabular-nums; }
        svg { display: block; max-width: 100%; height: auto; margin: 1rem 0; }
        @media print {
            body { max-width: none; padding: 0; font-size: 10pt; }
            a { color: inherit; text-decoration: none; }
            h2 { break-after: avoid; }
            svg, table { break-inside: avoid; }
        }

        """
}
