import Foundation
import Reports
import Testing

/// Reference values from statsmodels 0.15, scipy 1.17 and numpy 2.4:
/// Tests/Fixtures/Statistics/paired_fixtures.json, written by
/// Tests/Fixtures/make_paired_fixtures.py.
enum PairedFixtures {
    struct McNemarCase: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let b, c: Int
        let exact: Bool
        let statistic, p: Double
        var testDescription: String { name }
    }

    struct CorrectedTCase: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let differences: [Double]
        let test_fraction: Double
        let t, degrees_of_freedom, p: Double
        var testDescription: String { name }
    }

    struct PercentileCase: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let values: [Double]
        let confidence, low, high: Double
        var testDescription: String { name }
    }

    struct Table: Decodable, Sendable {
        let mcnemar: [McNemarCase]
        let corrected_t: [CorrectedTCase]
        let percentiles: [PercentileCase]
    }

    static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/Statistics/paired_fixtures.json")

    static let table: Table = {
        // The fixture is committed; a missing or malformed file is a broken checkout.
        try! JSONDecoder().decode(Table.self, from: Data(contentsOf: url))
    }()
}

/// A small seeded generator (SplitMix64, Steele, Lea & Flood 2014) so the tests do not depend
/// on TensorCore.
private struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Paired predictions with `b` subjects only the first classifier gets right, `c` only the
/// second, and some concordant subjects (both right, both wrong) interleaved, which must not
/// count.
private func pairedPredictions(b: Int, c: Int) -> (first: [Bool], second: [Bool]) {
    var first = [Bool]()
    var second = [Bool]()
    for _ in 0..<b { first += [true, true]; second += [false, true] }
    for _ in 0..<c { first += [false, false]; second += [true, false] }
    return (first, second)
}

@Suite struct PairedComparisonTests {
    // MARK: McNemar

    @Test(arguments: PairedFixtures.table.mcnemar)
    func mcNemarMatchesStatsmodels(_ reference: PairedFixtures.McNemarCase) {
        let (first, second) = pairedPredictions(b: reference.b, c: reference.c)
        let result = Statistics.mcNemar(firstCorrect: first, secondCorrect: second, exact: reference.exact)
        #expect(result.b == reference.b)
        #expect(result.c == reference.c)
        #expect(result.exact == reference.exact)
        #expect(abs(result.statistic - reference.statistic) <= 1e-12 * max(1, reference.statistic))
        #expect(abs(result.p - reference.p) <= 1e-10, "\(result.p) vs \(reference.p)")
        // The default picks the exact test below 25 discordant pairs.
        let automatic = Statistics.mcNemar(firstCorrect: first, secondCorrect: second)
        #expect(automatic.exact == (reference.b + reference.c < 25))
        if automatic.exact == reference.exact { #expect(automatic.p == result.p) }
    }

    @Test func mcNemarByHand() {
        // b = 0, c = 7, exact: p = 2·P(X ≤ 0) = 2·(½)⁷ = 1/64.
        let exact = Statistics.mcNemar(firstCorrect: Array(repeating: false, count: 7),
                                       secondCorrect: Array(repeating: true, count: 7))
        #expect(exact.b == 0 && exact.c == 7 && exact.exact)
        #expect(exact.statistic == 0)
        #expect(abs(exact.p - 1.0 / 64) < 1e-15)
        // b = 17, c = 8 (25 discordant, chi-square): (|17 − 8| − 1)²/25 = 64/25 = 2.56.
        let (first, second) = pairedPredictions(b: 17, c: 8)
        let chiSquare = Statistics.mcNemar(firstCorrect: first, secondCorrect: second)
        #expect(!chiSquare.exact)
        #expect(abs(chiSquare.statistic - 2.56) < 1e-15)
    }

    @Test func mcNemarWithoutDiscordantPairs() {
        for exact in [true, false] {
            let result = Statistics.mcNemar(firstCorrect: [true, false, true], secondCorrect: [true, false, true],
                                            exact: exact)
            #expect(result.b == 0 && result.c == 0 && result.statistic == 0 && result.p == 1)
            #expect(result.exact == exact)
        }
        let empty = Statistics.mcNemar(firstCorrect: [], secondCorrect: [])
        #expect(empty.p == 1 && empty.exact)
    }

    @Test func mcNemarIsSymmetric() {
        let (first, second) = pairedPredictions(b: 40, c: 12)
        let forward = Statistics.mcNemar(firstCorrect: first, secondCorrect: second)
        let backward = Statistics.mcNemar(firstCorrect: second, secondCorrect: first)
        #expect(forward.b == backward.c && forward.c == backward.b)
        #expect(forward.p == backward.p && forward.statistic == backward.statistic)
    }

    // MARK: Corrected resampled t-test

    @Test(arguments: PairedFixtures.table.corrected_t)
    func correctedTTestMatchesScipy(_ reference: PairedFixtures.CorrectedTCase) {
        let result = Statistics.correctedResampledTTest(differences: reference.differences,
                                                        testFraction: reference.test_fraction)
        #expect(abs(result.t - reference.t) <= 1e-10 * max(1, abs(reference.t)), "\(result.t) vs \(reference.t)")
        #expect(result.degreesOfFreedom == reference.degrees_of_freedom)
        #expect(abs(result.p - reference.p) <= 1e-10, "\(result.p) vs \(reference.p)")
    }

    @Test func correctedTTestByHand() {
        // d = 1, 3, 2, 4, 0 over 5 folds (f = 1/5): mean 2, s² = (1 + 1 + 0 + 4 + 4)/4 = 2.5,
        // factor 1/5 + (1/5)/(4/5) = 0.45, so t = 2/√(0.45·2.5) = 2/√(9/8) = 4√2/3, ν = 4.
        let result = Statistics.correctedResampledTTest(differences: [1, 3, 2, 4, 0], testFraction: 0.2)
        #expect(abs(result.t - 4 * 2.0.squareRoot() / 3) < 1e-14)
        #expect(result.degreesOfFreedom == 4)
        #expect(result.p == Statistics.studentTTwoSidedP(t: result.t, degreesOfFreedom: 4))
        // Uncorrected, the same data would give t = 2/√(2.5/5) = 2√2: the correction widens it.
        #expect(result.t < 2 * 2.0.squareRoot())
    }

    @Test func correctedTTestEdgeCases() {
        let constant = Statistics.correctedResampledTTest(differences: [0.02, 0.02, 0.02], testFraction: 1.0 / 3)
        #expect(constant.t == .infinity && constant.p == 0 && constant.degreesOfFreedom == 2)
        let negative = Statistics.correctedResampledTTest(differences: [-0.5, -0.5], testFraction: 0.5)
        #expect(negative.t == -.infinity && negative.p == 0)
        let zero = Statistics.correctedResampledTTest(differences: [0, 0, 0, 0], testFraction: 0.25)
        #expect(zero.t == 0 && zero.p == 1 && zero.degreesOfFreedom == 3)
        for (differences, fraction) in [([0.1], 0.2), ([0.1, .nan], 0.2), ([0.1, .infinity], 0.2),
                                        ([0.1, 0.2], 0), ([0.1, 0.2], 1), ([0.1, 0.2], .nan)] {
            let result = Statistics.correctedResampledTTest(differences: differences, testFraction: fraction)
            #expect(result.t.isNaN && result.degreesOfFreedom.isNaN && result.p.isNaN)
        }
    }

    // MARK: Bootstrap

    @Test(arguments: PairedFixtures.table.percentiles)
    func percentilesMatchNumpy(_ reference: PairedFixtures.PercentileCase) {
        // A statistic that ignores the resample and hands out the fixture's values in turn makes
        // the replicate values exactly those values, so the interval is numpy's percentiles.
        var generator = SeededGenerator(state: 1)
        var next = 0
        let interval = Statistics.bootstrapInterval(
            count: 3, replicates: reference.values.count, confidence: reference.confidence, using: &generator
        ) { _ in
            defer { next += 1 }
            return reference.values[next]
        }
        #expect(abs(interval.low - reference.low) <= 1e-14 * max(1, abs(reference.low)))
        #expect(abs(interval.high - reference.high) <= 1e-14 * max(1, abs(reference.high)))
    }

    @Test func bootstrapCoversTheTrueMean() {
        // 200 samples of 30 from N(5, 2²); a 95% percentile interval for the mean should contain 5
        // in about 95% of them (a little less for n = 30, the percentile method's known bias).
        var generator = SeededGenerator(state: 20_030)
        var covered = 0
        for _ in 0..<200 {
            let sample = (0..<30).map { _ in 5 + 2 * standardNormal(using: &generator) }
            let interval = Statistics.bootstrapInterval(sample, replicates: 1000, using: &generator)
            #expect(interval.low < interval.high)
            if interval.low <= 5, 5 <= interval.high { covered += 1 }
        }
        #expect((176...198).contains(covered), "covered \(covered) of 200")
    }

    @Test func bootstrapIsDeterministicForASeed() {
        let sample = [0.61, 0.72, 0.55, 0.80, 0.67, 0.70, 0.58, 0.77]
        var first = SeededGenerator(state: 42)
        var second = SeededGenerator(state: 42)
        var other = SeededGenerator(state: 43)
        let a = Statistics.bootstrapInterval(sample, using: &first)
        let b = Statistics.bootstrapInterval(sample, using: &second)
        let c = Statistics.bootstrapInterval(sample, using: &other)
        #expect(a == b)
        #expect(a != c)
        #expect(a.low >= 0.55 && a.high <= 0.80)  // the sample's extremes
    }

    @Test func bootstrapOfAConstantIsThatConstant() {
        var generator = SeededGenerator(state: 7)
        for constant in [2.5, 0.1, -3.75] {
            let interval = Statistics.bootstrapInterval(Array(repeating: constant, count: 17), using: &generator)
            #expect(interval.low == constant && interval.high == constant)
        }
    }

    @Test func bootstrapOverPairedIndices() {
        // Difference in accuracy of two classifiers over the same 40 subjects: the first is right
        // on all, the second on 30, so every resample's difference lies in [0, 1] and the
        // observed difference 0.25 falls inside the interval.
        let firstCorrect = Array(repeating: true, count: 40)
        let secondCorrect = (0..<40).map { $0 % 4 != 0 }
        var generator = SeededGenerator(state: 99)
        let interval = Statistics.bootstrapInterval(count: 40, confidence: 0.9, using: &generator) { indices in
            let wins = indices.reduce(0) { $0 + (firstCorrect[$1] ? 1 : 0) - (secondCorrect[$1] ? 1 : 0) }
            return Double(wins) / Double(indices.count)
        }
        #expect(0 < interval.low && interval.low < 0.25 && 0.25 < interval.high && interval.high < 0.5)
    }

    @Test func bootstrapInvalidInputs() {
        var generator = SeededGenerator(state: 3)
        let cases: [(low: Double, high: Double)] = [
            Statistics.bootstrapInterval([], using: &generator),
            Statistics.bootstrapInterval([1, .nan, 2], using: &generator),
            Statistics.bootstrapInterval([1, 2], replicates: 0, using: &generator),
            Statistics.bootstrapInterval([1, 2], confidence: 1, using: &generator),
            Statistics.bootstrapInterval([1, 2], confidence: 0, using: &generator),
        ]
        for interval in cases { #expect(interval.low.isNaN && interval.high.isNaN) }
    }
}

/// A standard normal draw by the Box–Muller transform.
private func standardNormal(using generator: inout SeededGenerator) -> Double {
    // 1 − U is in (0, 1], so the logarithm is finite.
    let u = 1 - Double.random(in: 0..<1, using: &generator)
    let v = Double.random(in: 0..<1, using: &generator)
    return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
}
