import Foundation

/// One axis of an `SVGPlot` figure: the interval it shows and its labelled ticks.
///
/// Linear axes pad the data range and put ticks at the "nice" multiples (1, 2 or 5 × 10^k) that
/// fall inside it; logarithmic axes span whole decades with ticks at powers of ten. Positions
/// are in scale units: data units on a linear axis, log10 of them on a logarithmic one.
struct PlotAxis: Sendable {
    /// Ends of the axis in scale units; `lower < upper`, both finite.
    let lower: Double
    let upper: Double
    let logarithmic: Bool
    /// Ticks in ascending order, each at a position in scale units with its label.
    let ticks: [(position: Double, label: String)]

    /// Data values are clamped to ±this before ranges are taken, so spans stay finite.
    static let largestValue = 1e300

    /// `value` (data units) in scale units.
    func scaled(_ value: Double) -> Double {
        logarithmic ? log10(value) : value
    }

    /// Where `position` (scale units) falls: 0 at `lower`, 1 at `upper`.
    func fraction(_ position: Double) -> Double {
        (position - lower) / (upper - lower)
    }

    /// The smallest and largest of `values` that are finite (clamped to ±`largestValue`), or
    /// `nil` when there are none.
    static func range(of values: some Sequence<Double>) -> (min: Double, max: Double)? {
        var result: (min: Double, max: Double)?
        for value in values where value.isFinite {
            let value = min(max(value, -largestValue), largestValue)
            result = (min(result?.min ?? value, value), max(result?.max ?? value, value))
        }
        return result
    }

    /// A linear axis over `range` (0…1 when `nil`), widened by `padding` × its span below and
    /// above, with about `targetTicks` ticks (at least a step of 1 when `integerTicks`).
    ///
    /// A constant (or nearly constant) range is widened to ±10 % of its value (±1 around 0).
    static func linear(
        spanning range: (min: Double, max: Double)?, targetTicks: Int,
        padding: (below: Double, above: Double) = (0.04, 0.04), integerTicks: Bool = false
    ) -> PlotAxis {
        let first = min(max(range?.min ?? 0, -largestValue), largestValue)
        let second = min(max(range?.max ?? 1, -largestValue), largestValue)
        var lower = min(first, second), upper = max(first, second)
        let magnitude = max(abs(lower), abs(upper))
        if upper - lower <= magnitude * 1e-12 {
            let half = magnitude == 0 ? 1 : magnitude * 0.1
            lower -= half
            upper += half
        } else {
            let span = upper - lower
            lower -= span * max(padding.below, 0)
            upper += span * max(padding.above, 0)
        }
        let (values, exponent) = niceTicks(lower: lower, upper: upper, target: targetTicks, minimumStep: integerTicks ? 1 : 0)
        let ticks = zip(values, labels(values, stepExponent: exponent)).map { (position: $0, label: $1) }
        return PlotAxis(lower: lower, upper: upper, logarithmic: false, ticks: ticks)
    }

    /// A logarithmic axis over the positive `range` (1…10 when `nil` or not positive), from the
    /// power of ten at or below its minimum to the one at or above its maximum; ticks at every
    /// power of ten, or every few so that at most about eight are labelled.
    static func logarithmic(spanning range: (min: Double, max: Double)?) -> PlotAxis {
        var lower = 0.0, upper = 1.0
        if let range, range.min > 0, range.max >= range.min {
            lower = floor(log10(range.min))
            upper = ceil(log10(range.max))
            if upper <= lower {  // one exact power of ten
                lower -= 1
                upper += 1
            }
        }
        let stride = max(1, ((upper - lower) / 8).rounded(.up))
        lower = (lower / stride).rounded(.down) * stride
        upper = (upper / stride).rounded(.up) * stride
        var ticks: [(position: Double, label: String)] = []
        var exponent = lower
        while exponent <= upper {
            ticks.append((position: exponent, label: powerOfTenLabel(Int(exponent))))
            exponent += stride
        }
        return PlotAxis(lower: lower, upper: upper, logarithmic: true, ticks: ticks)
    }

    /// The multiples of a nice step (1, 2 or 5 × 10^k, and at least `minimumStep`) that lie in
    /// `lower...upper`, with the step chosen so that about `target` intervals span the range
    /// (finer when that leaves fewer than two ticks), and the step's decimal exponent k. Empty
    /// for an empty, non-finite or degenerate range.
    static func niceTicks(lower: Double, upper: Double, target: Int, minimumStep: Double = 0) -> (values: [Double], exponent: Int) {
        guard lower.isFinite, upper.isFinite, upper > lower else { return ([], 0) }
        let intervals = Double(max(target, 1))
        let raw = upper / intervals - lower / intervals
        guard raw.isNormal else { return ([], 0) }
        var exponent = log10(raw).rounded(.down)
        let residual = raw / pow(10, exponent)
        // Round to the nearest of 1, 2, 5, 10 on a log scale (thresholds at geometric means).
        var mantissa: Double = residual < 2.0.squareRoot() ? 1 : residual < 10.0.squareRoot() ? 2 : residual < 50.0.squareRoot() ? 5 : 10
        if mantissa == 10 {
            mantissa = 1
            exponent += 1
        }
        if mantissa * pow(10, exponent) < minimumStep {
            mantissa = 1
            exponent = 0
        }
        // k ≥ 0: step = m·10^k; k < 0: values i·m / 10^-k, which rounds decimals best.
        let scale = pow(10, abs(exponent))
        let step = exponent >= 0 ? mantissa * scale : mantissa / scale
        guard step.isFinite, step > 0 else { return ([], 0) }
        let first = (lower / step - 1e-9).rounded(.up)
        let last = (upper / step + 1e-9).rounded(.down)
        guard last - first < 1000 else { return ([], 0) }
        // Steps round to as much as √2 × the requested interval: give small targets a finer step.
        if last - first < 1, target < 64 {
            return niceTicks(lower: lower, upper: upper, target: 2 * max(target, 1), minimumStep: minimumStep)
        }
        var values: [Double] = []
        var index = first
        while index <= last {
            let value = exponent >= 0 ? index * mantissa * scale : index * mantissa / scale
            values.append(value == 0 ? 0 : value)  // no negative zero
            index += 1
        }
        return (values, Int(exponent))
    }

    /// Labels for ticks a step of 10^`stepExponent` (times 1, 2 or 5) apart: fixed-point with
    /// just the decimals the step needs (`0.2`, `150`), or compact scientific (`2.5e6`, `3e-5`)
    /// when a fixed-point label would be over 6 characters and scientific ones are shorter.
    static func labels(_ values: [Double], stepExponent: Int) -> [String] {
        let fixed = values.map { String(format: "%.\(min(max(-stepExponent, 0), 15))f", $0) }
        let largest = values.map(abs).max() ?? 0
        let longestFixed = fixed.map(\.count).max() ?? 0
        guard longestFixed > 6, largest > 0 else { return fixed }
        let significant = min(max(Int(log10(largest).rounded(.down)) - stepExponent + 1, 1), 15)
        let compact = values.map { $0 == 0 ? "0" : scientific($0, significant: significant) }
        return (compact.map(\.count).max() ?? 0) < longestFixed ? compact : fixed
    }

    /// `1e-5`, `0.0001` … `100000`, `1e6`: powers of ten as plain decimals unless very large or small.
    static func powerOfTenLabel(_ exponent: Int) -> String {
        guard (-4...5).contains(exponent) else { return "1e\(exponent)" }
        return String(format: "%.\(max(-exponent, 0))f", pow(10, Double(exponent)))
    }

    /// `value` with `significant` digits as `mantissa`e`exponent`, without trailing zeros or a `+`.
    private static func scientific(_ value: Double, significant: Int) -> String {
        let printed = String(format: "%.\(significant - 1)e", value)
        guard let e = printed.firstIndex(of: "e"), let exponent = Int(printed[printed.index(after: e)...]) else { return printed }
        var mantissa = String(printed[..<e])
        if mantissa.contains(".") {
            while mantissa.hasSuffix("0") { mantissa.removeLast() }
            if mantissa.hasSuffix(".") { mantissa.removeLast() }
        }
        return exponent == 0 ? mantissa : "\(mantissa)e\(exponent)"
    }
}
