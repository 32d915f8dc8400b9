import Foundation
import Reports
import Testing
import TestSupport

/// Escaping, tables, and a whole report with every figure type parsed as XML.
@Suite struct XHTMLTests {
    @Test func escapeCoversMarkupQuotesAndForbiddenCharacters() {
        #expect(XHTML.escape("<a href=\"x\">Tom & Jerry's</a>") == "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;")
        #expect(XHTML.escape("tab\there\nnew line, é, 🧠") == "tab\there\nnew line, é, 🧠")
        #expect(XHTML.escape("bell\u{7} nul\u{0} \u{FFFF}") == "bell\u{FFFD} nul\u{FFFD} \u{FFFD}")
        #expect(XHTML.escape("") == "")
    }

    @Test func tablesEscapeCellsPadRowsAndRightAlignNumbers() throws {
        let html = XHTML.table(header: ["subject", "age", "MMSE"], rows: [["<sub-01>", "71.5", "28"], ["sub&02"], ["sub-03", "80", "22", "extra"]], numericColumns: [1, 2])
        let tree = try XMLTree(html)
        #expect(tree.all("th").map(\.text) == ["subject", "age", "MMSE", ""])
        #expect(tree.all("th").map { $0.attributes["class"] } == [nil, "num", "num", nil])
        let cells = tree.all("td")
        #expect(cells.count == 12)
        #expect(cells.map(\.text) == ["<sub-01>", "71.5", "28", "", "sub&02", "", "", "", "sub-03", "80", "22", "extra"])
        #expect(cells[1].attributes["class"] == "num" && cells[0].attributes["class"] == nil)
        #expect(try XMLTree(XHTML.table(header: [], rows: [], numericColumns: [0])).all("tr").isEmpty)
    }

    @Test func emptyDocumentIsWellFormed() throws {
        let tree = try XMLTree(HTMLDocument(title: "Empty").render())
        #expect(tree.all("nav").isEmpty && tree.all("section").isEmpty)
        #expect(tree.all("h1").map(\.text) == ["Empty"])
    }

    /// A report holding every figure type, fed the awkward cases (empty series, NaN points, one
    /// point, a constant series, a log axis, an empty PNG), parsed by Foundation's XMLParser.
    @Test func reportWithEveryFigureParsesAsXML() throws {
        let nasty = "Ratios <&> \"quoted\" 'single'"
        var document = HTMLDocument(title: nasty)
        let curve = (0..<50).map { (x: Double($0), y: exp(-Double($0) / 10)) }
        let noisy = curve.enumerated().map { (x: $1.x, y: $0 % 7 == 3 ? Double.nan : $1.y * 1.1) }
        let sections: [(id: String, title: String, body: String)] = [
            ("cohort", "Cohort", XHTML.table(header: ["group", "n", "age"], rows: [["AD", "101", "74.2"], ["CN & MCI", "212", "72.9"]], numericColumns: [1, 2])),
            ("scatter", nasty, SVGPlot.scatter(
                [PlotSeries(name: "train", points: curve), PlotSeries(name: "empty", points: []), PlotSeries(name: "one", points: [(x: 3, y: 0.4)]), PlotSeries(name: "NaN", points: [(x: .nan, y: 1)])],
                title: nasty, xLabel: "epoch <n>", yLabel: "loss & more")),
            ("scatter-empty", "Empty scatter", SVGPlot.scatter([], title: "Nothing", xLabel: "x", yLabel: "y")),
            ("scatter-one", "One point", SVGPlot.scatter([PlotSeries(name: "p", points: [(x: 1e9, y: -1e-9)])], title: "One", xLabel: "x", yLabel: "y")),
            ("lines", "Curves", SVGPlot.lines(
                [PlotSeries(name: "train", points: curve), PlotSeries(name: "validation", points: noisy), PlotSeries(name: "constant", points: curve.map { (x: $0.x, y: 0.3) })],
                title: "Training", xLabel: "epoch", yLabel: "MSE")),
            ("lines-log", "Log curves", SVGPlot.lines(
                [PlotSeries(name: "train", points: curve + [(x: 51, y: 0), (x: 52, y: -1)]), PlotSeries(name: "validation", points: noisy, color: "#999999")],
                title: "Training (log)", xLabel: "epoch", yLabel: "MSE", logY: true)),
            ("lines-constant", "Constant", SVGPlot.lines([PlotSeries(name: "c", points: [(x: 2, y: 2), (x: 2, y: 2)])], title: "Constant", xLabel: "x", yLabel: "y")),
            ("histogram", "Histogram", SVGPlot.histogram(curve.map(\.y) + [.nan, -.infinity], bins: 12, title: "Values", xLabel: "value")),
            ("histogram-empty", "Empty histogram", SVGPlot.histogram([], bins: 5, title: "None", xLabel: "value")),
            ("montage", "Montage", {
                let tiles: [[Float]] = (0..<4).map { tile in (0..<64).map { Float(($0 % 8) * ($0 / 8) + tile) } }
                let montage = Montage.grayscale(tiles: tiles, tileWidth: 8, tileHeight: 8, columns: 2, scale: 3, scaling: .shared)
                let png = PNGImage.grayscale(width: montage.width, height: montage.height, pixels: montage.pixels)
                return SVGPlot.image(png: png, pixelWidth: montage.width, pixelHeight: montage.height, title: "Slices", caption: "Shared scaling & nearest-neighbour ×3")
            }()),
            ("image-empty", "No image", SVGPlot.image(png: Data(), pixelWidth: 0, pixelHeight: 0, title: "Missing", caption: "<none>")),
        ]
        for section in sections {
            document.addSection(id: section.id, title: section.title, body: section.body)
        }
        let html = document.render()
        #expect(html.hasPrefix("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n"))
        #expect(html.contains("<meta charset=\"utf-8\"/>") && html.contains("<style>"))
        #expect(!html.contains("&nbsp;") && !html.contains("<script") && !html.contains("http://fonts") && !html.contains("https://"))

        let tree = try XMLTree(html)
        #expect(tree.all("title").first?.text == nasty)
        #expect(tree.all("h1").map(\.text) == [nasty])
        let sectionElements = tree.all("section")
        #expect(sectionElements.map { $0.attributes["id"] } == sections.map(\.id))
        #expect(tree.all("a").map { $0.attributes["href"] } == sections.map { "#\($0.id)" })
        #expect(tree.all("a").map(\.text) == sections.map(\.title))
        #expect(tree.all("h2").map(\.text) == ["Contents"] + sections.map(\.title))
        #expect(tree.all("svg").count == sections.count - 1)
        #expect(tree.all("svg").allSatisfy { $0.attributes["viewBox"] != nil && $0.attributes["role"] == "img" })
        #expect(tree.all("text").filter { $0.text == "no data" }.count == 2)
        #expect(tree.all("image").count == 1)
    }
}
