import Foundation

/// Seedable pseudo-random generators. Every random step in the workbench (initialisation,
/// dropout, shuffling, patch sampling) takes one of these, never the system generator, so a
/// run is fully described by its seed.

/// SplitMix64 (Steele, Lea & Flood 2014): used to expand one 64-bit seed into a
/// well-mixed state for `Xoshiro256StarStar`.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// xoshiro256** (Blackman & Vigna 2018): the workbench's default generator.
/// Fast, 256-bit state, passes BigCrush; seeded through SplitMix64 as its authors advise.
public struct Xoshiro256StarStar: RandomNumberGenerator, Sendable {
    private var s0, s1, s2, s3: UInt64

    public init(seed: UInt64) {
        var mixer = SplitMix64(seed: seed)
        s0 = mixer.next(); s1 = mixer.next(); s2 = mixer.next(); s3 = mixer.next()
    }

    @inline(__always)
    private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    public mutating func next() -> UInt64 {
        let result = Self.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = Self.rotl(s3, 45)
        return result
    }

    /// A generator for an independent stream, derived from this one's output (for example
    /// one per worker or per epoch) without disturbing reproducibility of the parent.
    public mutating func fork() -> Xoshiro256StarStar { Xoshiro256StarStar(seed: next()) }
}

extension RandomNumberGenerator {
    /// Uniform in [0, 1) with 24 random mantissa bits.
    @inlinable
    public mutating func nextUnitFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Uniform in [0, 1) with 53 random bits.
    @inlinable
    public mutating func nextUnitDouble() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Standard normal by the Box–Muller transform (one value per call; deterministic).
    public mutating func nextStandardNormal() -> Float {
        var u1 = nextUnitDouble()
        while u1 <= Double.leastNormalMagnitude { u1 = nextUnitDouble() }
        let u2 = nextUnitDouble()
        return Float((-2.0 * log(u1)).squareRoot() * cos(2.0 * Double.pi * u2))
    }
}


extension SplitMix64 {
    /// A seed for one independent stream, named by a path of integers under a root seed
    /// (for example `(seed, epoch, scan)`): each step mixes one more value through SplitMix64,
    /// so different paths give unrelated streams and the same path always the same one.
    public static func derive(_ seed: UInt64, _ path: UInt64...) -> UInt64 {
        var mixer = SplitMix64(seed: seed)
        for value in path { mixer = SplitMix64(seed: mixer.next() ^ value) }
        return mixer.next()
    }
}

extension RandomNumberGenerator {
    /// Uniform in `0..<bound` by a widening multiply (Lemire 2019, without the rejection
    /// step: its bias is below `bound / 2^64`), the same on every platform and Swift version.
    @inlinable
    public mutating func nextIndex(below bound: Int) -> Int {
        precondition(bound > 0, "nextIndex(below:) needs a positive bound, got \(bound)")
        return Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(bound)).high)
    }
}

extension Array {
    /// Fisher-Yates with our generator: the same order on every platform and Swift version
    /// (the standard library's `shuffle(using:)` may change its algorithm between releases).
    public mutating func seededShuffle(using generator: inout Xoshiro256StarStar) {
        guard count > 1 else { return }
        for i in stride(from: count - 1, to: 0, by: -1) {
            swapAt(i, Int(generator.next() % UInt64(i + 1)))
        }
    }
}
