import Foundation
import Testing
@testable import Reports

/// The tick chooser: nice steps (1, 2, 5 × 10^k), ticks inside the range, compact labels.
@Suite struct PlotAxisTests {
    @Test func niceTicksForHandPickedRanges() {
        #expect(PlotAxis.niceTicks(lower: 0, upper: 1, target: 5).values == [0, 0.2, 0.4, 0.6, 0.8, 1])
        #expect(PlotAxis.niceTicks(lower: 0, upper: 97, target: 5).values == [0, 20, 40, 60, 80])
        #expect(PlotAxis.niceTicks(lower: -3.7, upper: 12.2, target: 5).values == [0, 5, 10])
        #expect(PlotAxis.niceTicks(lower: 1e-6, upper: 3e-6, target: 4).values == [1e-6, 1.5e-6, 2e-6, 2.5e-6, 3e-6])
        #expect(PlotAxis.niceTicks(lower: -250, upper: -40, target: 4).values == [-250, -200, -150, -100, -50])
        #expect(PlotAxis.niceTicks(lower: 0.1, upper: 0.7, target: 6).values == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
        #expect(PlotAxis.niceTicks(lower: 0, upper: 3, target: 10, minimumStep: 1).values == [0, 1, 2, 3])
    }

    @Test func degenerateRangesGiveNoTicksInsteadOfTrapping() {
        #expect(PlotAxis.niceTicks(lower: .nan, upper: 1, target: 5).values.isEmpty)
        #expect(PlotAxis.niceTicks(lower: 0, upper: .infinity, target: 5).values.isEmpty)
        #expect(PlotAxis.niceTicks(lower: 2, upper: 2, target: 5).values.isEmpty)
        #expect(PlotAxis.niceTicks(lower: 3, upper: 1, target: 5).values.isEmpty)
        #expect(PlotAxis.niceTicks(lower: 0, upper: .leastNonzeroMagnitude * 100, target: 5).values.isEmpty)
        #expect(PlotAxis.niceTicks(lower: -1.7e308, upper: 1.7e308, target: 0).values.count <= 3)
    }

    @Test func labelsAreCompact() {
        #expect(PlotAxis.linear(spanning: (0, 1), targetTicks: 5, padding: (0, 0)).ticks.map(\.label) == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        #expect(PlotAxis.linear(spanning: (1.2e6, 4.8e6), targetTicks: 4, padding: (0, 0)).ticks.map(\.label) == ["2e6", "3e6", "4e6"])
        #expect(PlotAxis.linear(spanning: (1.05e6, 1.35e6), targetTicks: 3, padding: (0, 0)).ticks.map(\.label) == ["1.1e6", "1.2e6", "1.3e6"])
        #expect(PlotAxis.linear(spanning: (0, 3e-5), targetTicks: 3, padding: (0, 0)).ticks.map(\.label) == ["0", "1e-5", "2e-5", "3e-5"])
        #expect(PlotAxis.linear(spanning: (-1, 1), targetTicks: 4, padding: (0, 0)).ticks.map(\.label) == ["-1.0", "-0.5", "0.0", "0.5", "1.0"])
        #expect(PlotAxis.linear(spanning: (0, 8e5), targetTicks: 4, padding: (0, 0)).ticks.map(\.label) == ["0", "200000", "400000", "600000", "800000"])
        #expect(PlotAxis.linear(spanning: (-3.14e-4, -3.1e-4), targetTicks: 8, padding: (0, 0)).ticks.map(\.label) == ["-3.14e-4", "-3.135e-4", "-3.13e-4", "-3.125e-4", "-3.12e-4", "-3.115e-4", "-3.11e-4", "-3.105e-4", "-3.1e-4"])
        // A constant range gets ±10 % around its value; zero gets ±1.
        #expect(PlotAxis.linear(spanning: (3, 3), targetTicks: 5).ticks.map(\.label) == ["2.7", "2.8", "2.9", "3.0", "3.1", "3.2", "3.3"])
        #expect(PlotAxis.linear(spanning: (0, 0), targetTicks: 2).ticks.map(\.label) == ["-1", "0", "1"])
        #expect(PlotAxis.linear(spanning: nil, targetTicks: 5, padding: (0, 0)).ticks.count == 6)
    }

    /// Over many ranges (up to 10¹⁶ apart in scale, centred up to 5·10⁵ spans from 0), the
    /// ticks are consecutive multiples of one step of 1, 2 or 5 × 10^k inside the axis, there
    /// are a handful of them, and each label reads back as its value, in at most 9 characters
    /// unless the range is far (over 100 spans) from 0.
    @Test func ticksAreNiceOverManyRanges() throws {
        var state: UInt64 = 42
        func uniform() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53)
        }
        for _ in 0..<2000 {
            let span = pow(10, uniform() * 16 - 8)
            let offset = (uniform() - 0.5) * pow(10, uniform() * 6)
            let target = 2 + Int(uniform() * 8)
            let axis = PlotAxis.linear(spanning: (offset * span, (offset + 1) * span), targetTicks: target)
            #expect((2...(2 * target + 2)).contains(axis.ticks.count), "\(axis.ticks.count) ticks over \(axis.lower)...\(axis.upper)")
            let exponent = PlotAxis.niceTicks(lower: axis.lower, upper: axis.upper, target: target).exponent
            let units = axis.ticks.map { $0.position / pow(10, Double(exponent)) }
            for unit in units {
                #expect((unit - unit.rounded()).magnitude <= 1e-9 * max(1, unit.magnitude), "tick \(unit) × 1e\(exponent)")
            }
            let steps = Set(zip(units, units.dropFirst()).map { ($1 - $0).rounded() })
            #expect(steps.count == 1 && [1, 2, 5].contains(steps.first ?? 0), "steps \(steps) × 1e\(exponent)")
            for tick in axis.ticks {
                #expect(tick.position >= axis.lower && tick.position <= axis.upper)
                let read = try #require(Double(tick.label), "label \(tick.label)")
                #expect((read - tick.position).magnitude <= pow(10, Double(exponent)) * 1e-6, "label \(tick.label) for \(tick.position)")
                #expect(tick.label.count <= 9 || abs(offset) > 100, "long label \(tick.label)")
            }
        }
    }

    @Test func logarithmicAxesTickAtPowersOfTen() {
        #expect(PlotAxis.logarithmic(spanning: (0.003, 250)).ticks.map(\.label) == ["0.001", "0.01", "0.1", "1", "10", "100", "1000"])
        #expect(PlotAxis.logarithmic(spanning: (20, 80)).ticks.map(\.label) == ["10", "100"])
        #expect(PlotAxis.logarithmic(spanning: (100, 100)).ticks.map(\.label) == ["10", "100", "1000"])
        // 13 decades: every second power of ten is labelled.
        #expect(PlotAxis.logarithmic(spanning: (2e-7, 3e5)).ticks.map(\.label) == ["1e-8", "1e-6", "0.0001", "0.01", "1", "100", "10000", "1e6"])
        let wide = PlotAxis.logarithmic(spanning: (1e-100, 1e100))
        #expect(wide.ticks.map(\.label) == ["1e-100", "1e-75", "1e-50", "1e-25", "1", "1e25", "1e50", "1e75", "1e100"])
        #expect(PlotAxis.logarithmic(spanning: nil).ticks.map(\.label) == ["1", "10"])
        #expect(PlotAxis.logarithmic(spanning: (-5, 10)).ticks.map(\.label) == ["1", "10"])
    }

    @Test func coordinatesAreRoundedToTenths() {
        #expect(SVGPlot.number(1.0000000002) == "1")
        #expect(SVGPlot.number(12.25) == "12.3")
        #expect(SVGPlot.number(-0.04) == "0")
        #expect(SVGPlot.number(-0.46) == "-0.5")
        #expect(SVGPlot.number(-12.5) == "-12.5")
        #expect(SVGPlot.number(.nan) == "0")
        #expect(SVGPlot.number(1e300) == "1000000000")
    }
}
