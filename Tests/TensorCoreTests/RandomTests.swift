import Testing
import TensorCore
import TestSupport

/// A generator returning a fixed value, to probe the edges of the conversions.
struct ConstantGenerator: RandomNumberGenerator {
    var value: UInt64
    mutating func next() -> UInt64 { value }
}

/// Independent re-implementation of SplitMix64 + xoshiro256** from the published reference C
/// code (Blackman & Vigna), used as the oracle for the library's generator.
struct ReferenceXoshiro {
    var s: [UInt64]
    init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x = x &+ 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = [splitmix(), splitmix(), splitmix(), splitmix()]
    }
    static func rotl(_ x: UInt64, _ k: Int) -> UInt64 { (x << UInt64(k)) | (x >> UInt64(64 - k)) }
    mutating func next() -> UInt64 {
        let result = Self.rotl(s[1] &* 5, 7) &* 9
        let t = s[1] << 17
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = Self.rotl(s[3], 45)
        return result
    }
}

@Suite struct RandomTests {
    @Test func splitMix64PublishedVector() {
        // Published SplitMix64 outputs for seed 1234567 (e.g. Rosetta Code, "Pseudo-random
        // numbers/Splitmix64").
        var g = SplitMix64(seed: 1_234_567)
        let expected: [UInt64] = [6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423,
                                  4_593_380_528_125_082_431, 16_408_922_859_458_223_821]
        #expect((0..<5).map { _ in g.next() } == expected)
    }

    @Test(arguments: [0, 1, 42, UInt64.max])
    func xoshiroMatchesReferenceImplementation(seed: UInt64) {
        var g = Xoshiro256StarStar(seed: seed)
        var r = ReferenceXoshiro(seed: seed)
        for i in 0..<1000 {
            let (a, b) = (g.next(), r.next())
            if a != b {
                Issue.record("seed \(seed): output \(i) is \(a), reference \(b)")
                return
            }
        }
    }

    @Test func sameSeedSameSequenceDifferentSeedsDiffer() {
        var a = Xoshiro256StarStar(seed: 123)
        var b = Xoshiro256StarStar(seed: 123)
        var c = Xoshiro256StarStar(seed: 124)
        let sa = (0..<200).map { _ in a.next() }
        let sb = (0..<200).map { _ in b.next() }
        let sc = (0..<200).map { _ in c.next() }
        #expect(sa == sb)
        #expect(zip(sa, sc).filter { $0 == $1 }.count == 0, "neighbouring seeds should give unrelated streams")
        #expect(Set(sa).count == sa.count)
    }

    @Test func forkIsDeterministicAndIndependent() {
        var parent1 = Xoshiro256StarStar(seed: 9)
        var parent2 = Xoshiro256StarStar(seed: 9)
        var child1 = parent1.fork()
        var child2 = parent2.fork()
        let c1 = (0..<50).map { _ in child1.next() }
        #expect(c1 == (0..<50).map { _ in child2.next() })
        // The parents continue identically, and differently from the child.
        let p1 = (0..<50).map { _ in parent1.next() }
        #expect(p1 == (0..<50).map { _ in parent2.next() })
        #expect(p1 != c1)
        // fork() consumes exactly one parent output and seeds the child with it.
        var parent3 = Xoshiro256StarStar(seed: 9)
        var manual = Xoshiro256StarStar(seed: parent3.next())
        #expect(c1 == (0..<50).map { _ in manual.next() })
    }

    @Test func unitFloatAndDoubleStayInHalfOpenInterval() {
        var g = Xoshiro256StarStar(seed: 5)
        var sum = 0.0
        let draws = 20_000
        for _ in 0..<draws {
            let u = g.nextUnitFloat()
            #expect(u >= 0 && u < 1)
            let v = g.nextUnitDouble()
            #expect(v >= 0 && v < 1)
            sum += Double(u)
        }
        #expect(abs(sum / Double(draws) - 0.5) < 0.01)
        // The extremes of the underlying generator.
        var ones = ConstantGenerator(value: .max)
        #expect(ones.nextUnitFloat() < 1)
        #expect(ones.nextUnitFloat() == 1 - 1.0 / 16_777_216)
        #expect(ones.nextUnitDouble() < 1)
        var zeros = ConstantGenerator(value: 0)
        #expect(zeros.nextUnitFloat() == 0)
        #expect(zeros.nextUnitDouble() == 0)
    }

    @Test func unitFloatCoversAllDeciles() {
        var g = Xoshiro256StarStar(seed: 6)
        var bins = [Int](repeating: 0, count: 10)
        for _ in 0..<10_000 { bins[Int(g.nextUnitFloat() * 10)] += 1 }
        // Expected 1000 per bin; 5 standard deviations ≈ 150.
        #expect(bins.allSatisfy { abs($0 - 1000) < 150 }, "\(bins)")
    }

    @Test func standardNormalMoments() {
        var g = Xoshiro256StarStar(seed: 7)
        let draws = 20_000
        var values: [Double] = []
        for _ in 0..<draws { values.append(Double(g.nextStandardNormal())) }
        let mean = values.reduce(0, +) / Double(draws)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(draws - 1)
        #expect(abs(mean) < 0.05, "mean \(mean)")
        #expect(abs(variance - 1) < 0.05, "variance \(variance)")
        // About 68.3% within one standard deviation, 95.4% within two.
        let within1 = Double(values.filter { abs($0) < 1 }.count) / Double(draws)
        let within2 = Double(values.filter { abs($0) < 2 }.count) / Double(draws)
        #expect(abs(within1 - 0.6827) < 0.02, "within 1σ: \(within1)")
        #expect(abs(within2 - 0.9545) < 0.01, "within 2σ: \(within2)")
        #expect(values.allSatisfy { $0.isFinite })
    }

    @Test func standardNormalIsDeterministic() {
        var a = Xoshiro256StarStar(seed: 8), b = Xoshiro256StarStar(seed: 8)
        #expect((0..<100).map { _ in a.nextStandardNormal() } == (0..<100).map { _ in b.nextStandardNormal() })
    }

    // MARK: Initializers

    @Test(arguments: [1, 27, 432])
    func heUniformRespectsBound(fanIn: Int) {
        var g = Xoshiro256StarStar(seed: UInt64(fanIn))
        let shape = [16, 8, 3, 3, 3]
        let w = Initializer.heUniform(shape: shape, fanIn: fanIn, using: &g)
        #expect(w.shape == shape)
        let bound = (6 / Double(fanIn)).squareRoot()
        let values = w.scalars.map(Double.init)
        #expect(values.allSatisfy { abs($0) <= bound * (1 + 1e-6) }, "bound \(bound)")
        // The range is actually used: near both ends, mean ≈ 0, variance ≈ bound²/3.
        #expect(values.max()! > 0.95 * bound && values.min()! < -0.95 * bound)
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.reduce(0) { $0 + $1 * $1 } / Double(values.count) - mean * mean
        #expect(abs(mean) < 0.05 * bound)
        #expect(abs(variance / (bound * bound / 3) - 1) < 0.1)
    }

    @Test func otherInitializersHaveTheirScale() {
        var g = Xoshiro256StarStar(seed: 30)
        let count = 8_000
        let heNormal = Initializer.heNormal(shape: [count], fanIn: 50, using: &g).scalars.map(Double.init)
        let std = (heNormal.reduce(0) { $0 + $1 * $1 } / Double(count)).squareRoot()
        #expect(abs(std / (2.0 / 50).squareRoot() - 1) < 0.05, "heNormal std \(std)")

        let xavier = Initializer.xavierUniform(shape: [count], fanIn: 20, fanOut: 40, using: &g).scalars.map(Double.init)
        let xavierBound = (6.0 / 60).squareRoot()
        #expect(xavier.allSatisfy { abs($0) <= xavierBound * (1 + 1e-6) })
        #expect(xavier.max()! > 0.95 * xavierBound)

        let normal = Initializer.normal(shape: [count], std: 3, using: &g).scalars.map(Double.init)
        let normalStd = (normal.reduce(0) { $0 + $1 * $1 } / Double(count)).squareRoot()
        #expect(abs(normalStd / 3 - 1) < 0.05)

        let uniform = Initializer.uniform(shape: [count], bound: 0.25, using: &g).scalars
        #expect(uniform.allSatisfy { abs($0) <= 0.25 })
    }

    @Test func initializersAreSeeded() {
        var a = Xoshiro256StarStar(seed: 31), b = Xoshiro256StarStar(seed: 31), c = Xoshiro256StarStar(seed: 32)
        let wa = Initializer.heUniform(shape: [4, 5], fanIn: 5, using: &a)
        #expect(wa == Initializer.heUniform(shape: [4, 5], fanIn: 5, using: &b))
        #expect(wa != Initializer.heUniform(shape: [4, 5], fanIn: 5, using: &c))
    }
}
