import Foundation
import Testing
import TestSupport
@testable import Reports

/// Each figure type on its own: well-formed SVG with its furniture, and the data drawn as
/// specified (non-finite and, on log axes, non-positive points dropped; legends; colours).
@Suite struct SVGPlotTests {
    /// Parses `svg` and checks the root element, its `<title>`, and that no geometry attribute
    /// holds a NaN or an infinity.
    static func figure(_ svg: String, title: String) throws -> XMLTree {
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\" "))
        let tree = try XMLTree(svg)
        let root = try #require(tree.elements.first)
        #expect(root.name == "svg" && root.attributes["role"] == "img")
        let width = try #require(root.attributes["width"]), height = try #require(root.attributes["height"])
        #expect(root.attributes["viewBox"] == "0 0 \(width) \(height)")
        #expect(tree.elements.count > 1 && tree.elements[1].name == "title" && tree.elements[1].text == title)
        let geometry: Set = ["x", "y", "cx", "cy", "width", "height", "points", "d", "viewBox", "transform"]
        for element in tree.elements {
            for (name, value) in element.attributes where geometry.contains(name) {
                #expect(!value.lowercased().contains("nan") && !value.lowercased().contains("inf"), "\(element.name) \(name)=\(value)")
            }
        }
        return tree
    }

    /// Labels of the x ticks (centred group) or the y ticks (right-aligned group).
    static func tickLabels(_ tree: XMLTree, anchor: String) -> [String] {
        tree.all("text").filter { tree.parent(of: $0)?.attributes["text-anchor"] == anchor }.map(\.text)
    }

    static func line(_ name: String, _ ys: [Double], color: String? = nil) -> PlotSeries {
        PlotSeries(name: name, points: ys.enumerated().map { (x: Double($0.offset), y: $0.element) }, color: color)
    }

    @Test func scatterHasEvenNiceTicksAndNoLegendForOneSeries() throws {
        let points = (0...97).map { (x: Double($0), y: sin(Double($0) / 9)) }
        let tree = try Self.figure(SVGPlot.scatter([PlotSeries(name: "only", points: points)], title: "Sine", xLabel: "slice", yLabel: "signal"), title: "Sine")
        #expect(tree.all("circle").count == 98)
        #expect(!tree.all("text").contains { $0.text == "only" })
        #expect(tree.all("text").contains { $0.text == "slice" } && tree.all("text").contains { $0.text == "signal" })
        #expect(Self.tickLabels(tree, anchor: "middle") == ["0", "20", "40", "60", "80", "100"])
        #expect(Self.tickLabels(tree, anchor: "end") == ["-1.0", "-0.5", "0.0", "0.5", "1.0"])
    }

    @Test func severalSeriesGetALegendAndCyclePaletteColours() throws {
        var series = (0..<9).map { Self.line("series \($0)", [Double($0), Double($0) + 1]) }
        series[2].color = "#123456"
        let tree = try Self.figure(SVGPlot.scatter(series, title: "Nine", xLabel: "x", yLabel: "y"), title: "Nine")
        let groups = tree.all("g").compactMap { $0.attributes["fill-opacity"] == nil ? nil : $0.attributes["fill"] }
        #expect(groups.count == 9)
        #expect(groups[0] == SVGPlot.palette[0] && groups[8] == SVGPlot.palette[0] && groups[1] == SVGPlot.palette[1])
        #expect(groups[2] == "#123456")
        #expect(Set(SVGPlot.palette).count == 8)
        for index in 0..<9 {
            #expect(tree.all("text").contains { $0.text == "series \(index)" })
        }
    }

    @Test func linesDropNonFinitePointsAndDotSinglePoints() throws {
        let series = [
            Self.line("loss", [1, .nan, 0.5, .infinity, 0.25]),
            Self.line("single", [.nan, 0.7]),
            Self.line("empty", []),
            Self.line("flat", [0.3, 0.3, 0.3]),
        ]
        let tree = try Self.figure(SVGPlot.lines(series, title: "Loss", xLabel: "epoch", yLabel: "MSE"), title: "Loss")
        let polylines = tree.all("polyline").map { $0.attributes["points", default: ""].split(separator: " ").count }
        #expect(polylines == [3, 3])
        #expect(tree.all("circle").count == 1)
        #expect(tree.all("path").filter { $0.attributes["stroke-width"] == "2" }.count == 4)  // a legend swatch per series
        #expect(tree.all("text").contains { $0.text == "empty" })
    }

    @Test func logLinesDropNonPositivePointsAndTickAtPowersOfTen() throws {
        let series = [Self.line("val", [0, 100, -1, 0.02, 3, .nan])]
        let tree = try Self.figure(SVGPlot.lines(series, title: "Log", xLabel: "epoch", yLabel: "MSE", logY: true), title: "Log")
        #expect(tree.all("polyline").first?.attributes["points"]?.split(separator: " ").count == 3)
        #expect(Self.tickLabels(tree, anchor: "end") == ["0.01", "0.1", "1", "10", "100"])
        let allBad = try Self.figure(SVGPlot.lines([Self.line("none", [0, -2, .nan])], title: "Log", xLabel: "x", yLabel: "y", logY: true), title: "Log")
        #expect(allBad.all("text").contains { $0.text == "no data" })
        #expect(Self.tickLabels(allBad, anchor: "end") == ["1", "10"])
    }

    /// Values 0, 0, 1, 2, 2, 2 (and a NaN) in 3 bins over 0…2 count 2, 1, 3; bar heights follow.
    @Test func histogramCountsBinsWithTheLastBinClosed() throws {
        let tree = try Self.figure(SVGPlot.histogram([0, 0, 1, 2, 2, 2, .nan, .infinity], bins: 3, title: "Histogram", xLabel: "intensity"), title: "Histogram")
        let bars = tree.all("rect").filter { $0.attributes["fill"] == nil }
        let heights = bars.compactMap { $0.attributes["height"].flatMap(Double.init) }
        #expect(heights.count == 3)
        #expect(abs(heights[0] / heights[1] - 2) < 0.01 && abs(heights[2] / heights[1] - 3) < 0.01)
        #expect(Self.tickLabels(tree, anchor: "end") == ["0", "1", "2", "3"])
        #expect(tree.all("text").contains { $0.text == "count" })
    }

    @Test func degenerateHistogramsStillDraw() throws {
        let constant = try Self.figure(SVGPlot.histogram([5, 5, 5], bins: 0, title: "c", xLabel: "v"), title: "c")
        #expect(constant.all("rect").filter { $0.attributes["fill"] == nil }.count == 1)
        #expect(Self.tickLabels(constant, anchor: "middle").contains("5.0"))
        let empty = try Self.figure(SVGPlot.histogram([.nan], bins: 10, title: "e", xLabel: "v"), title: "e")
        #expect(empty.all("text").contains { $0.text == "no data" })
        let huge = try Self.figure(SVGPlot.histogram([-.greatestFiniteMagnitude, .greatestFiniteMagnitude, 1e308], bins: Int.max, title: "h", xLabel: "v"), title: "h")
        #expect(!huge.all("rect").isEmpty)
    }

    @Test func imageEmbedsThePNGBetweenTitleAndCaption() throws {
        let png = PNGImage.grayscale(width: 3, height: 2, pixels: [0, 50, 100, 150, 200, 250])
        let caption = "Axial slices 40–60 of subject <sub-01> & friends, rescaled per tile, shown at twice the voxel size"
        let tree = try Self.figure(SVGPlot.image(png: png, pixelWidth: 6, pixelHeight: 4, title: "Montage", caption: caption), title: "Montage")
        let image = try #require(tree.all("image").first)
        let href = try #require(image.attributes["href"])
        #expect(href.hasPrefix("data:image/png;base64,"))
        #expect(Data(base64Encoded: String(href.dropFirst("data:image/png;base64,".count))) == png)
        #expect(image.attributes["width"] == "6" && image.attributes["height"] == "4")
        let texts = tree.all("text")
        let imageTop = try #require(image.attributes["y"].flatMap(Double.init))
        #expect(texts.first?.text == "Montage" && (texts.first?.attributes["y"].flatMap(Double.init) ?? .infinity) < imageTop)
        #expect(texts.dropFirst().map(\.text).joined(separator: " ") == caption)
        #expect(texts.count > 2)  // the caption wraps
        #expect(texts.dropFirst().allSatisfy { ($0.attributes["y"].flatMap(Double.init) ?? 0) > imageTop + 4 })

        let missing = try Self.figure(SVGPlot.image(png: Data(), pixelWidth: 0, pixelHeight: -3, title: "", caption: nil), title: "")
        #expect(missing.all("image").isEmpty && missing.all("text").map(\.text) == ["no image"])
    }

    @Test func oddSizesAndTextAreSafe() throws {
        let title = "A <b>&amp;</b> \"quoted\" 'title' \u{1}"
        let svg = SVGPlot.scatter([PlotSeries(name: "<&>", points: [(x: 1, y: 1)], color: "\"><script>")], title: title, xLabel: "<x>", yLabel: "&y", width: -5, height: 0)
        let tree = try Self.figure(svg, title: "A <b>&amp;</b> \"quoted\" 'title' \u{FFFD}")
        #expect(!svg.contains("<script>") && !svg.contains("<b>"))
        #expect(tree.all("circle").count == 1)
        #expect(tree.all("text").contains { $0.text == "<x>" } && tree.all("text").contains { $0.text == "&y" })
    }
}
