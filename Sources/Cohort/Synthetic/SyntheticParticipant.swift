import Foundation
import TensorCore

/// One synthetic participant: who they are and the traits that stay fixed across sessions.
public struct SyntheticParticipant: Sendable {
    public var id: String
    /// The condition its anatomy was generated with (also for unlabelled participants).
    public var condition: Diagnosis
    /// Whether the manifest shows the diagnosis.
    public var isLabeled: Bool
    public var sex: String
    public var site: String
    /// Age at the first session (years).
    public var baselineAge: Double
    /// Disease severity at baseline: 0 for CN, about `effect / 2` for MCI and `effect` for AD.
    public var severity: Double
    public var sessions: [SyntheticSession]

    /// Per-participant anatomy (fixed across sessions).
    var headScale: Vec3
    var brainShapePhases: [Float]
    var sulcalPhaseJitter: [Float]
    var hippocampusFactor: Float
    var ventricleFactor: Float
    var thicknessFactor: Float
    var deepGreyFactor: Float
}

/// One scan session of a synthetic participant.
public struct SyntheticSession: Sendable {
    public var id: String
    /// Months since baseline.
    public var months: Int
    public var age: Double
    public var severity: Double
    public var mmse: Double
    public var cdr: Double
    /// Per-scan randomness: pose, intensities, bias field, noise.
    var seed: UInt64
}

extension SyntheticParticipant {
    /// Draws every participant of a cohort. Counts per class are exact (largest remainder);
    /// the order of conditions, the unlabelled ones and the second sessions are shuffled with
    /// the seed. Each participant's anatomical traits come from its own generator.
    static func draw(_ options: SyntheticCohortOptions) -> [SyntheticParticipant] {
        let n = options.participants
        var random = Xoshiro256StarStar(seed: options.seed)
        let conditions = shuffled(exactCounts(options.proportions, total: n).enumerated().flatMap { index, count in
            Array(repeating: Diagnosis.allCases[index], count: count)
        }, &random)
        // Unlabelled and two-session participants: exact shares, spread evenly over classes.
        let unlabeled = stratifiedChoice(conditions, fraction: options.unlabeledFraction, &random)
        let twoSessions = stratifiedChoice(conditions, fraction: options.secondSessionFraction, &random)
        let width = max(4, String(n).count)
        return (0..<n).map { index in
            var traits = Xoshiro256StarStar(seed: options.seed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(index + 1))
            let condition = conditions[index]
            let level: Double = [0, 0.5, 1][condition.severity]
            let severity = level == 0 ? 0 : options.effect * level * clamp(1 + 0.2 * Double(traits.portableNormal()), 0.4, 1.6)
            let age = clamp(73 + 6 * Double(traits.portableNormal()), 55, 92)
            let sex = traits.nextUnitDouble() < 0.5 ? "F" : "M"
            let site = String(UnicodeScalar(UInt8(65 + Int(traits.next() % UInt64(options.sites)))))
            let size = Float(clamp(1 + 0.035 * Double(traits.portableNormal()), 0.92, 1.07))
            let aspect = (0..<3).map { _ in Float(clamp(1 + 0.02 * Double(traits.portableNormal()), 0.95, 1.05)) }
            var participant = SyntheticParticipant(
                id: "sub-" + String(repeating: "0", count: max(0, width - String(index + 1).count)) + String(index + 1),
                condition: condition, isLabeled: !unlabeled[index], sex: sex, site: "site-" + site,
                baselineAge: age, severity: severity, sessions: [],
                headScale: Vec3(x: size * aspect[0], y: size * aspect[1], z: size * aspect[2]),
                brainShapePhases: (0..<4).map { _ in Float(traits.nextUnitDouble() * 2 * .pi) },
                sulcalPhaseJitter: (0..<12).map { _ in 0.6 * traits.portableNormal() },
                hippocampusFactor: Float(clamp(1 + 0.08 * Double(traits.portableNormal()), 0.75, 1.25)),
                ventricleFactor: FastMath.exp(0.25 * traits.portableNormal()),
                thicknessFactor: Float(clamp(1 + 0.05 * Double(traits.portableNormal()), 0.85, 1.15)),
                deepGreyFactor: Float(clamp(1 + 0.06 * Double(traits.portableNormal()), 0.85, 1.15)))
            let sessionMonths = twoSessions[index] ? [0, 12] : [0]
            participant.sessions = sessionMonths.map { months in
                // Progression over a year: MCI and AD worsen, CN only ages.
                let progression = 1 + Double(months) / 12 * (condition == .cn ? 0 : 0.15)
                let sessionSeverity = severity * progression
                let (mmse, cdr) = clinicalScores(condition, severity: sessionSeverity, effect: options.effect, &traits)
                return SyntheticSession(id: String(format: "ses-M%03d", months), months: months,
                                        age: age + Double(months) / 12, severity: sessionSeverity,
                                        mmse: mmse, cdr: cdr, seed: traits.next())
            }
            return participant
        }
    }

    /// MMSE and CDR consistent with the condition (MMSE lower with severity).
    private static func clinicalScores(_ condition: Diagnosis, severity: Double, effect: Double,
                                       _ random: inout Xoshiro256StarStar) -> (Double, Double) {
        let noise = Double(random.portableNormal())
        switch condition {
        case .cn: return (clamp((29.2 + 0.8 * noise).rounded(), 26, 30), 0)
        case .mci: return (clamp((27 + 1.5 * noise).rounded(), 22, 30), 0.5)
        case .ad:
            let mmse = clamp((22 - 3 * (severity / max(effect, 1e-6) - 1) + 3 * noise).rounded(), 10, 27)
            let u = random.nextUnitDouble()
            return (mmse, mmse >= 24 && u < 0.5 ? 0.5 : mmse <= 16 && u < 0.5 ? 2 : 1)
        }
    }

    /// Integer counts for shares of a total (largest remainder, ties to the earlier class).
    static func exactCounts(_ shares: [Double], total: Int) -> [Int] {
        let sum = shares.reduce(0, +)
        let exact = shares.map { $0 / sum * Double(total) }
        var counts = exact.map { Int($0.rounded(.down)) }
        let order = exact.indices.sorted { (exact[$0] - Double(counts[$0]), -$0) > (exact[$1] - Double(counts[$1]), -$1) }
        for index in order.prefix(max(0, total - counts.reduce(0, +))) { counts[index] += 1 }
        precondition(counts.reduce(0, +) == total, "shares are validated finite and non-negative")
        return counts
    }

    /// Marks round(fraction x class size) members of every class, chosen with the generator.
    static func stratifiedChoice(_ conditions: [Diagnosis], fraction: Double, _ random: inout Xoshiro256StarStar) -> [Bool] {
        var marked = [Bool](repeating: false, count: conditions.count)
        for condition in Diagnosis.allCases {
            let members = shuffled(conditions.indices.filter { conditions[$0] == condition }, &random)
            for index in members.prefix(Int((fraction * Double(members.count)).rounded())) { marked[index] = true }
        }
        return marked
    }

    static func shuffled<T>(_ values: [T], _ random: inout Xoshiro256StarStar) -> [T] {
        var values = values
        values.seededShuffle(using: &random)
        return values
    }
}

func clamp<T: Comparable>(_ value: T, _ low: T, _ high: T) -> T { min(max(value, low), high) }

extension Xoshiro256StarStar {
    /// A standard normal draw (Box-Muller) computed with `FastMath`'s portable log and cos, so
    /// that a synthetic cohort is the same bits on every machine, not only on this one.
    mutating func portableNormal() -> Float {
        let u1 = (Float(next() >> 40) + 0.5) * (1.0 / 16_777_216.0)
        let u2 = Float(next() >> 40) * (1.0 / 16_777_216.0)
        return (-2 * FastMath.log(u1)).squareRoot() * FastMath.cos(2 * .pi * u2)
    }
}
