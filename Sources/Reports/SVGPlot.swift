import Foundation

/// One named series of points for `SVGPlot.scatter` and `SVGPlot.lines`.
public struct PlotSeries: Sendable {
    /// Legend text (plain text).
    public var name: String
    /// Points in the axes' data units, drawn in order; points with a non-finite coordinate are
    /// skipped.
    public var points: [(x: Double, y: Double)]
    /// Any CSS colour (`"#0072B2"`, `"teal"`); `nil` takes the palette colour of the series'
    /// position.
    public var color: String?

    public init(name: String, points: [(x: Double, y: Double)], color: String? = nil) {
        self.name = name
        self.points = points
        self.color = color
    }
}

/// Inline SVG figures for report sections: standalone `<svg>` elements (SVG namespace, a
/// `viewBox`, `role="img"` and a `<title>`) that are well-formed XML and need no scripts, fonts
/// or network.
///
/// Data plots have a title, axes with ticks at nice numbers (1, 2 or 5 × 10^k; powers of ten on
/// a log axis), light grid lines, axis labels and, with more than one series, a legend box in
/// the top-right corner. Series take the Okabe–Ito colour-blind-safe palette in turn unless they
/// give their own colour. Sizes are in SVG user units (CSS pixels); text is escaped; points with
/// non-finite coordinates are skipped, and a figure without any point says "no data".
public enum SVGPlot {
    /// The Okabe–Ito palette (Okabe & Ito, 2008), ordered for contrast on white (yellow last).
    static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]

    /// A scatter plot: one 3-unit-radius circle per point, `width × height` units (at least
    /// 160 high and wide enough for the plot area).
    public static func scatter(_ series: [PlotSeries], title: String, xLabel: String, yLabel: String, width: Int = 560, height: Int = 420) -> String {
        let kept = series.map { $0.points.filter { $0.x.isFinite && $0.y.isFinite } }
        let all = kept.joined()
        let chart = Chart(
            width: width, height: height,
            xAxis: { PlotAxis.linear(spanning: PlotAxis.range(of: all.map(\.x)), targetTicks: $0) },
            yAxis: { PlotAxis.linear(spanning: PlotAxis.range(of: all.map(\.y)), targetTicks: $0) }
        )
        var svg = chart.open(title: title)
        for (index, points) in kept.enumerated() where !points.isEmpty {
            svg += "<g fill=\"\(color(series[index], index))\" fill-opacity=\"0.8\">\n"
            for point in points {
                svg += chart.marker(at: point)
            }
            svg += "</g>\n"
        }
        let legend = series.count > 1 ? series.enumerated().map { LegendEntry(name: $1.name, color: color($1, $0), isLine: false) } : []
        return svg + chart.close(xLabel: xLabel, yLabel: yLabel, legend: legend, hasData: !all.isEmpty)
    }

    /// A line plot: each series joined in the order given (a one-point series is a dot). With
    /// `logY`, the y axis is logarithmic and points with y ≤ 0 are dropped, like non-finite ones.
    public static func lines(_ series: [PlotSeries], title: String, xLabel: String, yLabel: String, logY: Bool = false, width: Int = 560, height: Int = 360) -> String {
        let kept = series.map { $0.points.filter { $0.x.isFinite && $0.y.isFinite && (!logY || $0.y > 0) } }
        let all = kept.joined()
        let yRange = PlotAxis.range(of: all.map(\.y))
        let chart = Chart(
            width: width, height: height,
            xAxis: { PlotAxis.linear(spanning: PlotAxis.range(of: all.map(\.x)), targetTicks: $0) },
            yAxis: { logY ? PlotAxis.logarithmic(spanning: yRange) : PlotAxis.linear(spanning: yRange, targetTicks: $0) }
        )
        var svg = chart.open(title: title)
        for (index, points) in kept.enumerated() where !points.isEmpty {
            let stroke = color(series[index], index)
            if points.count == 1 {
                svg += "<g fill=\"\(stroke)\">\(chart.marker(at: points[0]))</g>\n"
            } else {
                let coordinates = points.map { "\(number(chart.xPixel($0.x))),\(number(chart.yPixel($0.y)))" }
                svg += "<polyline points=\"\(coordinates.joined(separator: " "))\" fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"1.75\" stroke-linejoin=\"round\"/>\n"
            }
        }
        let legend = series.count > 1 ? series.enumerated().map { LegendEntry(name: $1.name, color: color($1, $0), isLine: true) } : []
        return svg + chart.close(xLabel: xLabel, yLabel: yLabel, legend: legend, hasData: !all.isEmpty)
    }

    /// A histogram of the finite `values` in `bins` equal bins (clamped to 1…10 000) from their
    /// minimum to their maximum, the last bin closed; a constant sample gets one bin-wide window
    /// centred on its value. The count axis starts at 0 and has whole-number ticks.
    public static func histogram(_ values: [Double], bins: Int, title: String, xLabel: String, yLabel: String = "count", width: Int = 560, height: Int = 320) -> String {
        let binCount = min(max(bins, 1), 10_000)
        var counts = [Int](repeating: 0, count: binCount)
        var lower = 0.0, upper = 1.0
        let range = PlotAxis.range(of: values)
        if let range {
            let magnitude = max(abs(range.min), abs(range.max))
            let half = range.max - range.min > magnitude * 1e-12 ? 0 : max(0.5, magnitude * 1e-6)
            (lower, upper) = (range.min - half, range.max + half)
            for value in values where value.isFinite {
                let clamped = min(max(value, lower), upper)
                let bin = ((clamped - lower) / (upper - lower) * Double(binCount)).rounded(.down)
                counts[min(Int(bin), binCount - 1)] += 1
            }
        }
        let tallest = Double(max(counts.max() ?? 0, 1))
        let chart = Chart(
            width: width, height: height,
            xAxis: { PlotAxis.linear(spanning: (lower, upper), targetTicks: $0, padding: (0.02, 0.02)) },
            yAxis: { PlotAxis.linear(spanning: (0, tallest), targetTicks: $0, padding: (0, 0.05), integerTicks: true) }
        )
        var svg = chart.open(title: title)
        if range != nil {
            svg += "<g fill=\"\(palette[0])\" stroke=\"#fff\" stroke-width=\"0.5\">\n"
            let base = chart.yPixel(0)
            for (bin, count) in counts.enumerated() where count > 0 {
                let left = chart.xPixel(lower + (upper - lower) * Double(bin) / Double(binCount))
                let right = chart.xPixel(lower + (upper - lower) * Double(bin + 1) / Double(binCount))
                let top = chart.yPixel(Double(count))
                svg += "<rect x=\"\(number(left))\" y=\"\(number(top))\" width=\"\(number(right - left))\" height=\"\(number(base - top))\"/>\n"
            }
            svg += "</g>\n"
        }
        return svg + chart.close(xLabel: xLabel, yLabel: yLabel, legend: [], hasData: range != nil)
    }

    /// A PNG shown at its pixel size (`pixelWidth × pixelHeight` units, drawn without smoothing)
    /// with `title` above and `caption` below, both word-wrapped to the figure's width (at least
    /// 240 units). An empty PNG or a size below 1 gives a "no image" placeholder.
    public static func image(png: Data, pixelWidth: Int, pixelHeight: Int, title: String, caption: String?) -> String {
        let hasImage = !png.isEmpty && pixelWidth > 0 && pixelHeight > 0
        let imageWidth = hasImage ? Double(min(pixelWidth, 100_000)) : 240
        let imageHeight = hasImage ? Double(min(pixelHeight, 100_000)) : 40
        let margin = 8.0
        let width = max(imageWidth + 2 * margin, 240)
        let imageLeft = (width - imageWidth) / 2
        var body = ""
        var y = margin
        for line in wrap(title, maxCharacters: Int((width - 2 * margin) / 7.5)) {
            body += "<text x=\"\(number(width / 2))\" y=\"\(number(y + 14))\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"600\">\(XHTML.escape(line))</text>\n"
            y += 18
        }
        y += 4
        let frame = "x=\"\(number(imageLeft))\" y=\"\(number(y))\" width=\"\(number(imageWidth))\" height=\"\(number(imageHeight))\""
        if hasImage {
            body += "<image \(frame) preserveAspectRatio=\"none\" style=\"image-rendering:pixelated\" href=\"data:image/png;base64,\(png.base64EncodedString())\"/>\n"
        } else {
            body += "<rect \(frame) fill=\"none\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>\n"
            body += "<text x=\"\(number(width / 2))\" y=\"\(number(y + imageHeight / 2 + 4))\" text-anchor=\"middle\" fill=\"#777\" font-style=\"italic\">no image</text>\n"
        }
        y += imageHeight + 4
        for line in wrap(caption ?? "", maxCharacters: Int((width - 2 * margin) / 6)) {
            body += "<text x=\"\(number(width / 2))\" y=\"\(number(y + 12))\" text-anchor=\"middle\" fill=\"#333\">\(XHTML.escape(line))</text>\n"
            y += 15
        }
        return svgOpen(width: width, height: y + margin, title: title) + body + "</svg>\n"
    }

    // MARK: Shared pieces

    /// The series' own colour (escaped) or the palette's colour for position `index`.
    static func color(_ series: PlotSeries, _ index: Int) -> String {
        XHTML.escape(series.color ?? palette[index % palette.count])
    }

    /// The `<svg>` start tag with its `<title>` and a white background.
    static func svgOpen(width: Double, height: Double, title: String) -> String {
        let w = number(width), h = number(height)
        return """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(w)" height="\(h)" viewBox="0 0 \(w) \(h)" role="img" font-family="system-ui, -apple-system, Arial, sans-serif" font-size="11">
            <title>\(XHTML.escape(title))</title>
            <rect width="\(w)" height="\(h)" fill="#fff"/>

            """
    }

    /// A coordinate rounded to 0.1 unit, without trailing zeros (`12`, `-0.5`, `310.2`);
    /// non-finite values give `0` and magnitudes are capped at 10⁹.
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        let tenths = Int((min(max(value, -1e9), 1e9) * 10).rounded())
        let whole = tenths / 10, fraction = abs(tenths % 10)
        guard fraction != 0 else { return String(whole) }
        return (tenths < 0 && whole == 0 ? "-0" : String(whole)) + "." + String(fraction)
    }

    /// `text`'s words greedily packed into lines of at most `maxCharacters` characters (a longer
    /// word gets a line of its own).
    static func wrap(_ text: String, maxCharacters: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(whereSeparator: \.isWhitespace) {
            if line.isEmpty {
                line = String(word)
            } else if line.count + 1 + word.count <= maxCharacters {
                line += " " + word
            } else {
                lines.append(line)
                line = String(word)
            }
        }
        if !line.isEmpty { lines.append(line) }
        return lines
    }
}

/// One legend row: a swatch (a short line or a dot) in `color` and the series name.
private struct LegendEntry {
    let name: String
    /// Already escaped.
    let color: String
    let isLine: Bool
}

/// The frame of a data plot: margins, the two axes, and the drawing of everything but the data.
///
/// Margins (in SVG units): 34 above for the title, 46 below for tick labels and the x label,
/// 16 on the right, and on the left enough for the longest y tick label plus the y label.
private struct Chart {
    let width: Double
    let height: Double
    let left: Double
    let top = 34.0
    let right = 16.0
    let bottom = 46.0
    let x: PlotAxis
    let y: PlotAxis

    /// Builds the y axis for about one tick per 50 units of height, sizes the left margin to its
    /// labels, then builds the x axis for about one tick per 90 units of width. The sizes are
    /// clamped to 160…100 000 (and widened to fit the margins).
    init(width: Int, height: Int, xAxis: (Int) -> PlotAxis, yAxis: (Int) -> PlotAxis) {
        self.height = Double(min(max(height, 160), 100_000))
        let y = yAxis(max(2, Int((self.height - top - bottom) / 50)))
        let longest = y.ticks.map(\.label.count).max() ?? 1
        left = 34 + 6.5 * Double(longest)
        self.width = max(Double(min(max(width, 160), 100_000)), left + right + 100)
        x = xAxis(max(2, Int((self.width - left - right) / 90)))
        self.y = y
    }

    var plotRight: Double { width - right }
    var plotBottom: Double { height - bottom }

    /// Horizontal SVG coordinate of data value `value`.
    func xPixel(_ value: Double) -> Double {
        xTick(x.scaled(value))
    }

    /// Vertical SVG coordinate of data value `value` (up is larger).
    func yPixel(_ value: Double) -> Double {
        yTick(y.scaled(value))
    }

    /// A 3-unit circle at a data point (its fill comes from the enclosing group).
    func marker(at point: (x: Double, y: Double)) -> String {
        "<circle cx=\"\(SVGPlot.number(xPixel(point.x)))\" cy=\"\(SVGPlot.number(yPixel(point.y)))\" r=\"3\"/>\n"
    }

    /// The start tag, background, title and grid lines: what goes under the data.
    func open(title: String) -> String {
        var svg = SVGPlot.svgOpen(width: width, height: height, title: title)
        svg += "<text x=\"\(SVGPlot.number(width / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"600\">\(XHTML.escape(title))</text>\n"
        var grid = ""
        for tick in x.ticks {
            grid += "M\(SVGPlot.number(xTick(tick.position))),\(SVGPlot.number(top))V\(SVGPlot.number(plotBottom))"
        }
        for tick in y.ticks {
            grid += "M\(SVGPlot.number(left)),\(SVGPlot.number(yTick(tick.position)))H\(SVGPlot.number(plotRight))"
        }
        if !grid.isEmpty {
            svg += "<path d=\"\(grid)\" fill=\"none\" stroke=\"#e6e6e6\"/>\n"
        }
        return svg
    }

    /// The axes, ticks, tick and axis labels, the legend (when given), a "no data" note when
    /// `hasData` is false, and the end tag: what goes over the data.
    func close(xLabel: String, yLabel: String, legend: [LegendEntry], hasData: Bool) -> String {
        let n = SVGPlot.number
        var svg = ""
        if !hasData {
            svg += "<text x=\"\(n((left + plotRight) / 2))\" y=\"\(n((top + plotBottom) / 2))\" text-anchor=\"middle\" fill=\"#777\" font-style=\"italic\">no data</text>\n"
        }
        var marks = "M\(n(left)),\(n(top))V\(n(plotBottom))H\(n(plotRight))"
        var xLabels = "", yLabels = ""
        for tick in x.ticks {
            let position = n(xTick(tick.position))
            marks += "M\(position),\(n(plotBottom))v5"
            xLabels += "<text x=\"\(position)\" y=\"\(n(plotBottom + 17))\">\(XHTML.escape(tick.label))</text>\n"
        }
        for tick in y.ticks {
            let position = yTick(tick.position)
            marks += "M\(n(left)),\(n(position))h-5"
            yLabels += "<text x=\"\(n(left - 8))\" y=\"\(n(position + 4))\">\(XHTML.escape(tick.label))</text>\n"
        }
        svg += "<path d=\"\(marks)\" fill=\"none\" stroke=\"#333\"/>\n"
        svg += "<g text-anchor=\"middle\" fill=\"#333\">\n\(xLabels)</g>\n<g text-anchor=\"end\" fill=\"#333\">\n\(yLabels)</g>\n"
        svg += "<text x=\"\(n((left + plotRight) / 2))\" y=\"\(n(height - 10))\" text-anchor=\"middle\" font-size=\"12\">\(XHTML.escape(xLabel))</text>\n"
        svg += "<text transform=\"rotate(-90)\" x=\"\(n(-(top + plotBottom) / 2))\" y=\"15\" text-anchor=\"middle\" font-size=\"12\">\(XHTML.escape(yLabel))</text>\n"
        if !legend.isEmpty {
            let longest = legend.map(\.name.count).max() ?? 0
            let boxWidth = 38 + 6.2 * Double(longest)
            let boxLeft = max(left + 4, plotRight - boxWidth - 6)
            svg += "<g>\n<rect x=\"\(n(boxLeft))\" y=\"\(n(top + 6))\" width=\"\(n(boxWidth))\" height=\"\(n(8 + 16 * Double(legend.count)))\" fill=\"#fff\" fill-opacity=\"0.9\" stroke=\"#999\"/>\n"
            for (row, entry) in legend.enumerated() {
                let middle = top + 18 + 16 * Double(row)
                if entry.isLine {
                    svg += "<path d=\"M\(n(boxLeft + 8)),\(n(middle))h18\" stroke=\"\(entry.color)\" stroke-width=\"2\"/>\n"
                } else {
                    svg += "<circle cx=\"\(n(boxLeft + 17))\" cy=\"\(n(middle))\" r=\"3.5\" fill=\"\(entry.color)\"/>\n"
                }
                svg += "<text x=\"\(n(boxLeft + 32))\" y=\"\(n(middle + 4))\">\(XHTML.escape(entry.name))</text>\n"
            }
            svg += "</g>\n"
        }
        return svg + "</svg>\n"
    }

    /// Horizontal coordinate of an x tick (position in scale units).
    private func xTick(_ position: Double) -> Double {
        left + x.fraction(position) * (plotRight - left)
    }

    /// Vertical coordinate of a y tick (position in scale units).
    private func yTick(_ position: Double) -> Double {
        plotBottom - y.fraction(position) * (plotBottom - top)
    }
}
