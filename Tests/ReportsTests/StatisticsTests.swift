import Foundation
import Reports
import Testing

/// Reference values from numpy 2.4, scipy 1.17 and scikit-learn 1.9:
/// Tests/Fixtures/Statistics/stats_cases.json, written by Tests/Fixtures/make_stats_fixtures.py.
enum StatisticsFixtures {
    struct TwoSampleCase: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let a: [Double]
        let b: [Double]
        let mean_a, mean_b, sd_a, sd_b: Double
        let cohens_d: Double
        let auc: Double
        let welch_t, welch_df, welch_p: Double
        var testDescription: String { name }
    }

    struct IncompleteBetaCase: Decodable, Sendable, CustomTestStringConvertible {
        let x, a, b, value: Double
        var testDescription: String { "I_\(x)(\(a), \(b))" }
    }

    struct BenjaminiHochbergCase: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let p: [Double]
        let q: [Double]
        var testDescription: String { name }
    }

    struct Table: Decodable, Sendable {
        let two_sample: [TwoSampleCase]
        let incomplete_beta: [IncompleteBetaCase]
        let benjamini_hochberg: [BenjaminiHochbergCase]
    }

    static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/Statistics/stats_cases.json")

    static let table: Table = {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        do {
            return try decoder.decode(Table.self, from: Data(contentsOf: url))
        } catch {
            fatalError("cannot read \(url.path): \(error)")
        }
    }()
}

/// |actual − expected| ≤ max(absolute, relative·|expected|); equal values (zeros, infinities) always match.
private func isClose(_ actual: Double, _ expected: Double, relative: Double, absolute: Double = 0) -> Bool {
    actual == expected || abs(actual - expected) <= max(absolute, relative * abs(expected))
}

/// SplitMix64 (Steele, Lea & Flood 2014): a seeded generator so the property tests are reproducible.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// `count` scores rounded to a quarter, so that ties within and across samples are common.
private func tiedScores(_ count: Int, shift: Double, using generator: inout SplitMix64) -> [Double] {
    (0..<count).map { _ in ((Double.random(in: -2...2, using: &generator) + shift) * 4).rounded() / 4 }
}

// MARK: - Fixtures (numpy / scipy / scikit-learn)

@Suite("Statistics against numpy, scipy and scikit-learn")
struct StatisticsFixtureTests {
    @Test func fixtureFileCoversTheBrief() {
        let table = StatisticsFixtures.table
        #expect(table.two_sample.count >= 12)
        #expect(table.two_sample.map { min($0.a.count, $0.b.count) }.min() == 2)
        #expect(table.two_sample.map { max($0.a.count, $0.b.count) }.max() == 200)
        #expect(table.two_sample.contains { $0.welch_p < 1e-30 })
        #expect(table.incomplete_beta.count >= 10)
        #expect(table.benjamini_hochberg.count >= 3)
    }

    @Test(arguments: StatisticsFixtures.table.two_sample)
    func meanAndStandardDeviation(_ fixture: StatisticsFixtures.TwoSampleCase) {
        #expect(isClose(Statistics.mean(fixture.a), fixture.mean_a, relative: 1e-9))
        #expect(isClose(Statistics.mean(fixture.b), fixture.mean_b, relative: 1e-9))
        #expect(isClose(Statistics.standardDeviation(fixture.a), fixture.sd_a, relative: 1e-9))
        #expect(isClose(Statistics.standardDeviation(fixture.b), fixture.sd_b, relative: 1e-9))
    }

    @Test(arguments: StatisticsFixtures.table.two_sample)
    func cohensD(_ fixture: StatisticsFixtures.TwoSampleCase) {
        let d = Statistics.cohensD(fixture.a, fixture.b)
        #expect(isClose(d, fixture.cohens_d, relative: 1e-9), "d \(d) vs numpy \(fixture.cohens_d)")
    }

    @Test(arguments: StatisticsFixtures.table.two_sample)
    func rocAUC(_ fixture: StatisticsFixtures.TwoSampleCase) {
        let auc = Statistics.rocAUC(positives: fixture.a, negatives: fixture.b)
        #expect(abs(auc - fixture.auc) <= 1e-12, "AUC \(auc) vs sklearn \(fixture.auc)")
    }

    @Test(arguments: StatisticsFixtures.table.two_sample)
    func welchTTest(_ fixture: StatisticsFixtures.TwoSampleCase) {
        let result = Statistics.welchTTest(fixture.a, fixture.b)
        #expect(isClose(result.t, fixture.welch_t, relative: 1e-9), "t \(result.t) vs scipy \(fixture.welch_t)")
        #expect(isClose(result.degreesOfFreedom, fixture.welch_df, relative: 1e-9),
                "df \(result.degreesOfFreedom) vs scipy \(fixture.welch_df)")
        #expect(isClose(result.p, fixture.welch_p, relative: 1e-8, absolute: 1e-300), "p \(result.p) vs scipy \(fixture.welch_p)")
    }

    @Test(arguments: StatisticsFixtures.table.incomplete_beta)
    func regularizedIncompleteBeta(_ fixture: StatisticsFixtures.IncompleteBetaCase) {
        let value = Statistics.regularizedIncompleteBeta(fixture.x, a: fixture.a, b: fixture.b)
        #expect(isClose(value, fixture.value, relative: 1e-12), "\(value) vs scipy \(fixture.value)")
    }

    @Test(arguments: StatisticsFixtures.table.benjamini_hochberg)
    func benjaminiHochberg(_ fixture: StatisticsFixtures.BenjaminiHochbergCase) {
        let q = Statistics.benjaminiHochberg(fixture.p)
        #expect(q.count == fixture.q.count)
        for (ours, theirs) in zip(q, fixture.q) {
            #expect(isClose(ours, theirs, relative: 1e-12), "q \(ours) vs scipy \(theirs)")
        }
    }
}

// MARK: - Mean and standard deviation

@Suite struct MeanAndStandardDeviationTests {
    @Test func smallHandComputedCases() {
        #expect(Statistics.mean([1, 2, 3, 4]) == 2.5)
        #expect(Statistics.mean([-7]) == -7)
        // Σ(x − 5)² = 32 over n − 1 = 7.
        #expect(isClose(Statistics.standardDeviation([2, 4, 4, 4, 5, 5, 7, 9]), (32.0 / 7).squareRoot(), relative: 1e-15))
        #expect(Statistics.standardDeviation([3, 3, 3]) == 0)
    }

    @Test func twoPassSurvivesALargeOffset() {
        // The one-pass Σx² − n·x̄² would return garbage here (x² ≈ 1e18, deviations ≈ 1).
        #expect(Statistics.standardDeviation([1e9 + 1, 1e9 + 2, 1e9 + 3]) == 1)
        #expect(Statistics.mean([1e9 + 1, 1e9 + 2, 1e9 + 3]) == 1e9 + 2)
    }

    @Test func refinedMeanOfAMillionEqualValues() {
        // A plain running sum of 0.1 a million times is off by ~1e-11 relative; the refinement pass recovers it.
        let mean = Statistics.mean([Double](repeating: 0.1, count: 1_000_000))
        #expect(abs(mean - 0.1) <= 0.1.ulp)
    }

    @Test func emptyShortAndNonFiniteInputs() {
        #expect(Statistics.mean([]).isNaN)
        #expect(Statistics.standardDeviation([]).isNaN)
        #expect(Statistics.standardDeviation([4]).isNaN)
        #expect(Statistics.mean([1, .nan]).isNaN)
        #expect(Statistics.mean([1, .infinity]) == .infinity)
        #expect(Statistics.mean([-.infinity, 1]) == -.infinity)
        #expect(Statistics.mean([.infinity, -.infinity]).isNaN)
        #expect(Statistics.standardDeviation([1, .infinity]).isNaN)
        #expect(Statistics.standardDeviation([1, 2, .nan]).isNaN)
        // numpy overflows the same way.
        #expect(Statistics.mean([1e308, 1e308]) == .infinity)
    }
}

// MARK: - Cohen's d

@Suite struct CohensDTests {
    @Test func handComputedCases() {
        // Means 2 and 5, both SDs 1.
        #expect(Statistics.cohensD([1, 2, 3], [4, 5, 6]) == -3)
        #expect(Statistics.cohensD([4, 5, 6], [1, 2, 3]) == 3)
        // A group of one adds nothing to the pooled variance: s_p² = (0 + 2)/1.
        #expect(isClose(Statistics.cohensD([1], [2, 4]), -(2.0).squareRoot(), relative: 1e-15))
    }

    @Test func edgeCases() {
        #expect(Statistics.cohensD([1], [2]).isNaN)
        #expect(Statistics.cohensD([], [1, 2]).isNaN)
        #expect(Statistics.cohensD([], [1, 2, 3]).isNaN)
        #expect(Statistics.cohensD([2, 2], [2, 2, 2]) == 0)
        #expect(Statistics.cohensD([3, 3], [2, 2, 2]) == .infinity)
        #expect(Statistics.cohensD([1, 1], [2, 2]) == -.infinity)
        #expect(Statistics.cohensD([1, .nan], [2, 3]).isNaN)
        #expect(Statistics.cohensD([1, 1, .nan], [1, 1]).isNaN)
        #expect(Statistics.cohensD([1, .infinity], [2, 3]).isNaN)
    }
}

// MARK: - ROC AUC

@Suite struct RocAUCTests {
    @Test func handComputedCases() {
        #expect(Statistics.rocAUC(positives: [1, 2], negatives: [0]) == 1)
        #expect(Statistics.rocAUC(positives: [0], negatives: [1, 2]) == 0)
        // Pairs (1,1) tie → ½, (2,1) win → 1: (½ + 1)/2.
        #expect(Statistics.rocAUC(positives: [1, 2], negatives: [1]) == 0.75)
        #expect(Statistics.rocAUC(positives: [5, 5, 5], negatives: [5, 5]) == 0.5)
        // 3 beats both negatives (2), 2 beats 1 and ties 2 (1.5), 0 loses both: 3.5 of 6 pairs.
        #expect(Statistics.rocAUC(positives: [3, 2, 0], negatives: [1, 2]) == 3.5 / 6)
        #expect(Statistics.rocAUC(positives: [.infinity], negatives: [-.infinity, 0]) == 1)
        #expect(Statistics.rocAUC(positives: [.infinity, 0], negatives: [.infinity]) == 0.25)
        #expect(Statistics.rocAUC(positives: [0.0], negatives: [-0.0]) == 0.5)
    }

    @Test func emptyOrNaNGivesNaN() {
        #expect(Statistics.rocAUC(positives: [], negatives: [1]).isNaN)
        #expect(Statistics.rocAUC(positives: [1], negatives: []).isNaN)
        #expect(Statistics.rocAUC(positives: [1, .nan], negatives: [0]).isNaN)
        #expect(Statistics.rocAUC(positives: [1], negatives: [.nan, 0]).isNaN)
    }

    @Test func swappingTheGroupsGivesTheComplement() {
        var generator = SplitMix64(state: 1)
        for round in 0..<50 {
            let a = tiedScores(1 + round % 17, shift: 0.3, using: &generator)
            let b = tiedScores(1 + (round * 7) % 23, shift: 0, using: &generator)
            let sum = Statistics.rocAUC(positives: a, negatives: b) + Statistics.rocAUC(positives: b, negatives: a)
            // Each AUC is an exact count divided once, so the sum is 1 up to that one rounding each.
            #expect(abs(sum - 1) <= .ulpOfOne, "round \(round): \(sum)")
        }
    }

    @Test func matchesThePairCountAndIgnoresOrder() {
        var generator = SplitMix64(state: 2)
        for round in 0..<30 {
            let positives = tiedScores(1 + round * 3, shift: 0.5, using: &generator)
            let negatives = tiedScores(2 + round * 2, shift: 0, using: &generator)
            var wins = 0.0
            for positive in positives {
                for negative in negatives {
                    wins += positive > negative ? 1 : positive == negative ? 0.5 : 0
                }
            }
            let auc = Statistics.rocAUC(positives: positives, negatives: negatives)
            #expect(abs(auc - wins / Double(positives.count * negatives.count)) <= 1e-15)
            let shuffled = Statistics.rocAUC(positives: positives.shuffled(using: &generator),
                                             negatives: negatives.shuffled(using: &generator))
            #expect(shuffled == auc)
        }
    }
}

// MARK: - Welch's t-test and Student's t

@Suite struct WelchTTestTests {
    @Test func fewerThanTwoValuesGivesNaN() {
        for (a, b) in [([1.0], [1.0, 2, 3]), ([1.0, 2, 3], [2.0]), ([], []), ([], [1.0, 2])] {
            let result = Statistics.welchTTest(a, b)
            #expect(result.t.isNaN && result.degreesOfFreedom.isNaN && result.p.isNaN)
        }
    }

    @Test func bothGroupsConstant() {
        let equal = Statistics.welchTTest([2, 2, 2], [2, 2])
        // No test is possible (as scipy): NaN, which Benjamini–Hochberg leaves out of its count.
        #expect(equal.t.isNaN && equal.p.isNaN && equal.degreesOfFreedom.isNaN)
        let higher = Statistics.welchTTest([3, 3], [2, 2, 2])
        #expect(higher.t == .infinity && higher.p == 0 && higher.degreesOfFreedom.isNaN)
        let lower = Statistics.welchTTest([1, 1], [2, 2, 2])
        #expect(lower.t == -.infinity && lower.p == 0 && lower.degreesOfFreedom.isNaN)
    }

    @Test func oneGroupConstant() {
        // Only b's variance counts: ν = n_b − 1, t = (3 − 2)/(1/√3).
        let result = Statistics.welchTTest([3, 3, 3, 3], [1, 2, 3])
        #expect(result.degreesOfFreedom == 2)
        #expect(isClose(result.t, 3.0.squareRoot(), relative: 1e-15))
        // ν = 2 has the closed form p = 1 − |t|/√(2 + t²) = 1 − √3/√5.
        #expect(isClose(result.p, 1 - (3.0 / 5).squareRoot(), relative: 1e-13))
    }

    @Test func nonFiniteInputsGiveNaN() {
        for (a, b) in [([1.0, .nan, 3], [1.0, 2]), ([1.0, 2], [1.0, .infinity]), ([-.infinity, 1], [1.0, 2])] {
            let result = Statistics.welchTTest(a, b)
            #expect(result.t.isNaN && result.degreesOfFreedom.isNaN && result.p.isNaN)
        }
    }

    @Test func swappingTheGroupsFlipsOnlyTheSignOfT() {
        let a = [1.2, 3.4, 2.2, 5.0, 4.1]
        let b = [0.3, 0.9, 1.7]
        let forward = Statistics.welchTTest(a, b)
        let backward = Statistics.welchTTest(b, a)
        #expect(backward.t == -forward.t)
        #expect(backward.degreesOfFreedom == forward.degreesOfFreedom)
        #expect(backward.p == forward.p)
        #expect(forward.degreesOfFreedom >= Double(min(a.count, b.count) - 1))
        #expect(forward.degreesOfFreedom <= Double(a.count + b.count - 2))
    }

    @Test func largeGroupsDoNotTrap() {
        var generator = SplitMix64(state: 3)
        let a = (0..<300_000).map { _ in Double.random(in: 0...1, using: &generator) }
        let b = (0..<200_000).map { _ in Double.random(in: 0.01...1.01, using: &generator) }
        let result = Statistics.welchTTest(a, b)
        #expect(result.t < 0 && result.p < 1e-10 && result.degreesOfFreedom > 400_000)
        #expect(Statistics.rocAUC(positives: a, negatives: b) < 0.5)
    }
}

@Suite struct StudentTTests {
    @Test func closedFormsForOneAndTwoDegreesOfFreedom() {
        for t in [0.001, 0.3, 1, 2.5, 10, 1e3, 1e8, 1e100] {
            // ν = 1 (Cauchy): p = (2/π)·atan(1/|t|); ν = 2: p = 2/(s(s + |t|)), s = √(2 + t²).
            let cauchy = 2 / Double.pi * atan(1 / t)
            let s = (2 + t * t).squareRoot()
            #expect(isClose(Statistics.studentTTwoSidedP(t: t, degreesOfFreedom: 1), cauchy, relative: 1e-13), "t = \(t)")
            #expect(isClose(Statistics.studentTTwoSidedP(t: -t, degreesOfFreedom: 2), 2 / (s * (s + t)), relative: 1e-13), "t = \(t)")
        }
    }

    @Test func limitsAndInvalidArguments() {
        #expect(Statistics.studentTTwoSidedP(t: 0, degreesOfFreedom: 7.5) == 1)
        #expect(Statistics.studentTTwoSidedP(t: .infinity, degreesOfFreedom: 3) == 0)
        #expect(Statistics.studentTTwoSidedP(t: -.infinity, degreesOfFreedom: .infinity) == 0)
        #expect(Statistics.studentTTwoSidedP(t: .nan, degreesOfFreedom: 3).isNaN)
        #expect(Statistics.studentTTwoSidedP(t: 1, degreesOfFreedom: .nan).isNaN)
        #expect(Statistics.studentTTwoSidedP(t: 1, degreesOfFreedom: 0).isNaN)
        #expect(Statistics.studentTTwoSidedP(t: 1, degreesOfFreedom: -2).isNaN)
        #expect(Statistics.studentTTwoSidedP(t: 1.959963984540054, degreesOfFreedom: .infinity) == erfc(1.959963984540054 / 2.0.squareRoot()))
    }

    @Test func hugeDegreesOfFreedomApproachTheNormal() {
        for t in [0.5, 1.96, 5, 12] {
            let normal = erfc(t / 2.0.squareRoot())
            // The t tail exceeds the normal one by a relative ~(t⁴ + 2t²)/(4ν).
            for degreesOfFreedom in [1e12, 1e100, 1e300] {
                let p = Statistics.studentTTwoSidedP(t: t, degreesOfFreedom: degreesOfFreedom)
                #expect(isClose(p, normal, relative: 1e-12 + (t * t * t * t + 2 * t * t) / degreesOfFreedom), "t = \(t), ν = \(degreesOfFreedom): \(p) vs \(normal)")
            }
        }
    }

    @Test func tinyPValuesKeepTheirRelativeAccuracy() {
        // ν = 1 and ν = 2 far out in the tail, where 1 − x would have lost everything.
        #expect(isClose(Statistics.studentTTwoSidedP(t: 1e150, degreesOfFreedom: 1), 2 / Double.pi * 1e-150, relative: 1e-13))
        #expect(isClose(Statistics.studentTTwoSidedP(t: 1e150, degreesOfFreedom: 2), 1e-300, relative: 1e-13))
    }
}

// MARK: - Incomplete beta

@Suite struct IncompleteBetaTests {
    @Test func closedForms() {
        for x in [1e-12, 0.01, 0.3, 0.5, 0.77, 0.999] {
            #expect(isClose(Statistics.regularizedIncompleteBeta(x, a: 1, b: 1), x, relative: 1e-14))
            // I_x(a, 1) = x^a and I_x(1, b) = 1 − (1 − x)^b.
            #expect(isClose(Statistics.regularizedIncompleteBeta(x, a: 3.5, b: 1), pow(x, 3.5), relative: 1e-13))
            #expect(isClose(Statistics.regularizedIncompleteBeta(x, a: 1, b: 4.5), -expm1(4.5 * log1p(-x)), relative: 1e-13))
        }
        for a in [0.5, 3, 40, 1e3, 1e5, 1e9] {
            #expect(isClose(Statistics.regularizedIncompleteBeta(0.5, a: a, b: a), 0.5, relative: 1e-12), "a = \(a)")
        }
    }

    @Test func endpointsAndInvalidArguments() {
        #expect(Statistics.regularizedIncompleteBeta(0, a: 2, b: 3) == 0)
        #expect(Statistics.regularizedIncompleteBeta(1, a: 2, b: 3) == 1)
        for (x, a, b) in [(-0.1, 2.0, 3.0), (1.1, 2, 3), (.nan, 2, 3), (0.5, .nan, 3), (0.5, 2, .nan), (0.5, 0, 3),
                          (0.5, 2, -1), (0.5, .infinity, 3), (0.5, 2, .infinity)] {
            #expect(Statistics.regularizedIncompleteBeta(x, a: a, b: b).isNaN, "x \(x) a \(a) b \(b)")
        }
    }

    @Test func symmetryAndRangeOverAWideGrid() {
        var generator = SplitMix64(state: 4)
        for _ in 0..<2000 {
            // log-uniform shapes from 1e-3 to 1e9, far beyond the documented accuracy range.
            let a = pow(10, Double.random(in: -3...9, using: &generator))
            let b = pow(10, Double.random(in: -3...9, using: &generator))
            let x = Double.random(in: 0...1, using: &generator)
            let value = Statistics.regularizedIncompleteBeta(x, a: a, b: b)
            #expect((0...1).contains(value), "I_\(x)(\(a), \(b)) = \(value)")
            let mirrored = Statistics.regularizedIncompleteBeta(1 - x, a: b, b: a)
            #expect(abs(value + mirrored - 1) <= 1e-12, "I_\(x)(\(a), \(b)) = \(value), mirrored \(mirrored)")
        }
    }
}

// MARK: - Benjamini–Hochberg

@Suite struct BenjaminiHochbergTests {
    @Test func handComputedCases() {
        // p·m/rank = 0.03 for all three.
        #expect(zip(Statistics.benjaminiHochberg([0.01, 0.02, 0.03]), [0.03, 0.03, 0.03]).allSatisfy { isClose($0, $1, relative: 1e-15) })
        // Sorted 0.01, 0.03, 0.04, 0.5 give p·4/rank = 0.04, 0.06, 0.0533…, 0.5; the running minimum from
        // the top pulls 0.06 down to 0.0533….
        let q = Statistics.benjaminiHochberg([0.01, 0.04, 0.03, 0.5])
        #expect(zip(q, [0.04, 0.16 / 3, 0.16 / 3, 0.5]).allSatisfy { isClose($0, $1, relative: 1e-15) }, "\(q)")
        // 0.5·4/2 = 1 and 0.9·4/3 = 1.2 are capped at 1.
        #expect(Statistics.benjaminiHochberg([0.9, 0.5, 1, 0.04]) == [1, 1, 1, 0.16])
        #expect(Statistics.benjaminiHochberg([]) == [])
        #expect(Statistics.benjaminiHochberg([0.2]) == [0.2])
        #expect(Statistics.benjaminiHochberg([1, 1, 1]) == [1, 1, 1])
    }

    @Test func nanAndOutOfRangeValuesAreLeftOutOfM() {
        let valid = Statistics.benjaminiHochberg([0.01, 0.04, 0.03])
        let withGaps = Statistics.benjaminiHochberg([.nan, 0.01, 0.04, -0.5, 0.03, 1.5, .infinity])
        #expect(withGaps[0].isNaN && withGaps[3].isNaN && withGaps[5].isNaN && withGaps[6].isNaN)
        #expect([withGaps[1], withGaps[2], withGaps[4]] == valid)
        #expect(Statistics.benjaminiHochberg([.nan, .nan]).allSatisfy { $0.isNaN })
    }

    @Test func monotoneBoundedAndIndependentOfInputOrder() {
        var generator = SplitMix64(state: 5)
        for round in 0..<40 {
            // Mostly uniform p-values, some tiny, some tied.
            var p = (0..<(1 + round * 5)).map { _ in Double.random(in: 0...1, using: &generator) }
            p += (0..<round).map { _ in Double.random(in: 0...1e-4, using: &generator) }
            p += p.prefix(round / 3)
            let q = Statistics.benjaminiHochberg(p)
            #expect(zip(p, q).allSatisfy { $0 <= $1 && $1 <= 1 })
            let order = p.indices.sorted { p[$0] < p[$1] }
            #expect(zip(order, order.dropFirst()).allSatisfy { q[$0] <= q[$1] }, "q not monotone in p")
            let permutation = Array(p.indices).shuffled(using: &generator)
            let permutedQ = Statistics.benjaminiHochberg(permutation.map { p[$0] })
            #expect(permutedQ == permutation.map { q[$0] })
        }
    }
}

// MARK: - Hostile inputs

@Suite struct HostileInputTests {
    @Test func nothingTrapsAndResultsStayInRange() {
        let samples: [[Double]] = [
            [], [0], [1, 1], [.nan], [.infinity, -.infinity], [1e308, -1e308, 1e308], [.leastNonzeroMagnitude, -.leastNonzeroMagnitude],
            [.greatestFiniteMagnitude, .greatestFiniteMagnitude], [-0.0, 0.0, 1], [1, 2, 3, .nan], [1e-300, 2e-300, 3e-300],
        ]
        for a in samples {
            _ = Statistics.mean(a)
            #expect(Statistics.standardDeviation(a).isNaN || Statistics.standardDeviation(a) >= 0)
            let q = Statistics.benjaminiHochberg(a)
            #expect(q.count == a.count && q.allSatisfy { $0.isNaN || (0...1).contains($0) })
            for b in samples {
                _ = Statistics.cohensD(a, b)
                let auc = Statistics.rocAUC(positives: a, negatives: b)
                #expect(auc.isNaN || (0...1).contains(auc))
                let welch = Statistics.welchTTest(a, b)
                #expect(welch.p.isNaN || (0...1).contains(welch.p))
            }
        }
        let extremes = [0, .leastNonzeroMagnitude, 1e-300, 0.5, 1, 1e300, .greatestFiniteMagnitude, .infinity, .nan]
        for t in extremes + extremes.map(-) {
            for degreesOfFreedom in extremes {
                let p = Statistics.studentTTwoSidedP(t: t, degreesOfFreedom: degreesOfFreedom)
                #expect(p.isNaN || (0...1).contains(p), "t \(t) ν \(degreesOfFreedom): \(p)")
            }
        }
        for x in [0, .leastNonzeroMagnitude, 1e-300, 0.5, 1 - 1e-16, 1] {
            for a in extremes {
                for b in extremes {
                    let value = Statistics.regularizedIncompleteBeta(x, a: a, b: b)
                    #expect(value.isNaN || (0...1).contains(value), "I_\(x)(\(a), \(b)) = \(value)")
                }
            }
        }
    }
}
