import Foundation
import TensorCore
import Testing
import TestSupport
@testable import Autoencoders

@Suite struct CorruptionTests {
    static let count = 200_000

    /// Values in [1, 2): none is 0 before corruption.
    private func input() -> Tensor { TestSupport.randomTensor([Self.count], seed: 17, low: 1, high: 2) }

    @Test(arguments: [0.1, 0.3, 0.75])
    func maskingZeroesTheGivenFractionAndKeepsTheRest(_ level: Double) throws {
        let x = input()
        var generator = Xoshiro256StarStar(seed: 99)
        let y = Corruption.apply(x, kind: .masking, level: level, using: &generator)
        #expect(y.shape == x.shape)
        var zeros = 0, changed = 0
        for (a, b) in zip(x.scalars, y.scalars) {
            if b == 0 { zeros += 1 } else if a != b { changed += 1 }
        }
        #expect(changed == 0)
        // Binomial(n, level): 6 standard deviations.
        let fraction = Double(zeros) / Double(Self.count)
        let bound = 6 * (level * (1 - level) / Double(Self.count)).squareRoot()
        #expect(abs(fraction - level) < bound, "masked \(fraction) of the values for level \(level)")
    }

    @Test func maskingIsIndependentAcrossPositionsAndDeterministicPerSeed() throws {
        let x = input()
        var g1 = Xoshiro256StarStar(seed: 5), g2 = Xoshiro256StarStar(seed: 5), g3 = Xoshiro256StarStar(seed: 6)
        let a = Corruption.apply(x, kind: .masking, level: 0.5, using: &g1)
        let b = Corruption.apply(x, kind: .masking, level: 0.5, using: &g2)
        let c = Corruption.apply(x, kind: .masking, level: 0.5, using: &g3)
        #expect(a == b)
        #expect(a != c)
        // Masks of two different seeds agree on about half the positions (not all, not none).
        var agree = 0
        for (p, q) in zip(a.scalars, c.scalars) where (p == 0) == (q == 0) { agree += 1 }
        let fraction = Double(agree) / Double(Self.count)
        #expect(abs(fraction - 0.5) < 0.01)
        // The first and second halves are masked at the same rate (no positional bias).
        let half = Self.count / 2
        let first = a.scalars[..<half].filter { $0 == 0 }.count, second = a.scalars[half...].filter { $0 == 0 }.count
        #expect(abs(Double(first - second)) / Double(half) < 0.015)
    }

    @Test(arguments: [0.05, 0.5, 2.0])
    func gaussianNoiseHasTheGivenStandardDeviation(_ level: Double) throws {
        let x = input()
        var generator = Xoshiro256StarStar(seed: 3)
        let y = Corruption.apply(x, kind: .gaussian, level: level, using: &generator)
        #expect(y.shape == x.shape)
        var sum = 0.0, sumSquares = 0.0
        for (a, b) in zip(x.scalars, y.scalars) {
            let e = Double(b) - Double(a)
            sum += e
            sumSquares += e * e
        }
        let n = Double(Self.count)
        let mean = sum / n
        let std = (sumSquares / n - mean * mean).squareRoot()
        // Standard errors: σ/√n for the mean, σ/√(2n) for the standard deviation; 6 of each.
        #expect(abs(mean) < 6 * level / n.squareRoot(), "mean \(mean)")
        #expect(abs(std - level) < 6 * level / (2 * n).squareRoot(), "std \(std) for level \(level)")
    }

    @Test func noneReturnsTheInputUnchangedAndDrawsNothing() throws {
        let x = input()
        var generator = Xoshiro256StarStar(seed: 8)
        let y = Corruption.apply(x, kind: .none, level: 0.9, using: &generator)
        #expect(y == x)
        var fresh = Xoshiro256StarStar(seed: 8)
        #expect(generator.next() == fresh.next())
    }

    @Test func corruptionDoesNotModifyTheCallersTensor() throws {
        let x = input()
        let copy = x
        var generator = Xoshiro256StarStar(seed: 8)
        _ = Corruption.apply(x, kind: .masking, level: 0.5, using: &generator)
        _ = Corruption.apply(x, kind: .gaussian, level: 0.5, using: &generator)
        #expect(x == copy)
        #expect(x.scalars.allSatisfy { v in v >= 1 })
    }
}
