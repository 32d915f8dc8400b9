import Foundation
import NeuralNet
import TensorCore
import TestSupport
@testable import Autoencoders

// Helpers shared by this target's suites. Everything lives in `AETest` so that names cannot
// collide with other files of the target.

enum AETest {
    /// The parameter names and shapes of a model, in state order.
    static func layout(_ layer: any Layer) -> [String] {
        layer.namedParameters().map { "\($0.name) \($0.parameter.value.shape)" }
    }

    /// Sets every bias of `layer` to small seeded random values (biases start at zero, which
    /// would hide a bias that is added twice or not at all).
    static func randomizeBiases(_ layer: any Layer, seed: UInt64) {
        for (index, entry) in layer.namedParameters().enumerated() where entry.name.hasSuffix("bias") {
            entry.parameter.value = TestSupport.randomTensor(entry.parameter.value.shape, seed: seed &+ UInt64(index), low: -0.5, high: 0.5)
        }
    }

    /// The message of a validation failure, or nil when the configuration is valid.
    static func validationMessage(_ config: PretrainConfig) -> String? {
        do {
            try config.validate()
            return nil
        } catch {
            return error.description
        }
    }

    /// Σ (a − b)² in Double, computed here (not with the module's helper).
    static func sumOfSquaredDifferences(_ a: Tensor, _ b: Tensor) -> Double {
        precondition(a.count == b.count)
        var total = 0.0
        for (x, y) in zip(a.scalars, b.scalars) { total += (Double(x) - Double(y)) * (Double(x) - Double(y)) }
        return total
    }

    /// `|analytic − numeric| − (atol + rtol·|numeric|)` at its worst over a tensor, with where.
    static func worstExcess(_ analytic: Tensor, _ numeric: Tensor, atol: Double, rtol: Double, name: String)
        -> (excess: Double, location: String)
    {
        var worst = (-Double.infinity, "none")
        for i in 0..<analytic.count {
            let (a, n) = (Double(analytic.scalars[i]), Double(numeric.scalars[i]))
            var excess = abs(a - n) - (atol + rtol * abs(n))
            if excess.isNaN { excess = .infinity }
            if excess > worst.0 { worst = (excess, "\(name)[\(i)]: analytic \(a) numeric \(n)") }
        }
        return worst
    }

    /// The largest magnitude in a tensor.
    static func maxAbs(_ t: Tensor) -> Double { t.scalars.reduce(0.0) { max($0, abs(Double($1))) } }

    /// Central differences of `model.trainStep(...).objective` with respect to every entry of
    /// `parameters` (every entry, or those `entries` picks), each evaluation with zeroed
    /// gradients and a fresh noise generator seeded with `noiseSeed` (so corruption is fixed).
    /// Returns the analytic gradients of one trainStep of every module parameter, and the
    /// numeric ones of `parameters`.
    static func finiteDifferenceCheck(
        _ model: any AutoencoderModel, batch: Tensor, phase: Int, noiseSeed: UInt64, weightDecay: Float,
        step: Float, entries: ((Int) -> Bool)? = nil
    ) throws -> (analytic: [String: Tensor], numeric: [String: (indices: [Int], values: [Double])], objective: Double) {
        let all = model.module.namedParameters()
        func objective() throws -> Double {
            for entry in all { entry.parameter.zeroGradient() }
            var noise = Xoshiro256StarStar(seed: noiseSeed)
            return try model.trainStep(batch, phase: phase, noise: &noise, weightDecay: weightDecay).objective
        }
        let base = try objective()
        var analytic: [String: Tensor] = [:]
        for entry in all { analytic[entry.name] = entry.parameter.gradient }
        var numeric: [String: (indices: [Int], values: [Double])] = [:]
        for (name, parameter) in model.parameters(phase: phase) {
            let original = parameter.value
            var indices: [Int] = [], values: [Double] = []
            for i in 0..<original.count where entries?(i) ?? true {
                var probe = original
                probe[flat: i] = original.scalars[i] + step
                parameter.value = probe
                let plus = try objective()
                probe[flat: i] = original.scalars[i] - step
                parameter.value = probe
                let minus = try objective()
                indices.append(i)
                values.append((plus - minus) / (2 * Double(step)))
            }
            parameter.value = original
            numeric[name] = (indices, values)
        }
        for entry in all { entry.parameter.zeroGradient() }
        return (analytic, numeric, base)
    }
}

// MARK: - An independent Double implementation of the stacked autoencoder's objective

/// The documented SAE objective computed in Double from the model's weights:
/// `½·mean_n ‖x̂ − x‖² + β·Σ_j KL(ρ ‖ ρ̂_j) + λ/2·Σ ‖W‖²` (see `StackedAutoencoder`).
struct ReferenceSAE {
    typealias Matrix = [[Double]]
    /// Encoder weights `[h_{k+1}][h_k]` and biases.
    var w: [Matrix] = [], b: [[Double]] = []
    /// Decoder weights in nn.Linear layout `[h_k][h_{k+1}]` (the transpose of `w` when tied).
    var v: [Matrix] = [], c: [[Double]] = []
    var tied: Bool
    var options: SAEOptions

    init(_ model: StackedAutoencoder) {
        options = model.options
        tied = model.options.tiedWeights
        for level in 0..<model.options.hidden.count {
            let encoder = model.encoders[level]
            let weight = Self.matrix(encoder.weight.value)
            w.append(weight)
            b.append(encoder.bias.value.scalars.map(Double.init))
            if let dense = model.decoders[level] as? Dense {
                v.append(Self.matrix(dense.weight.value))
                c.append(dense.bias.value.scalars.map(Double.init))
            } else {
                let tiedDecoder = model.decoders[level] as! TiedDense
                v.append(Self.transpose(weight))
                c.append(tiedDecoder.bias.value.scalars.map(Double.init))
            }
        }
    }

    static func matrix(_ t: Tensor) -> Matrix {
        let (rows, columns) = (t.shape[0], t.count / t.shape[0])
        return (0..<rows).map { r in (0..<columns).map { Double(t.scalars[r * columns + $0]) } }
    }

    static func transpose(_ m: Matrix) -> Matrix {
        (0..<m[0].count).map { j in m.map { $0[j] } }
    }

    static func apply(_ name: ActivationName, _ z: Double) -> Double {
        switch name {
        case .sigmoid: return 1 / (1 + exp(-z))
        case .tanh: return Foundation.tanh(z)
        case .relu: return max(0, z)
        case .linear: return z
        }
    }

    /// `act(a·Mᵀ + bias)` with `M: [out][in]`.
    static func layer(_ a: Matrix, _ m: Matrix, _ bias: [Double], _ activation: ActivationName) -> Matrix {
        a.map { row in
            (0..<m.count).map { o in
                var z = bias[o]
                for j in 0..<row.count { z += row[j] * m[o][j] }
                return apply(activation, z)
            }
        }
    }

    func encode(_ a: Matrix, level: Int) -> Matrix { Self.layer(a, w[level], b[level], options.activation) }

    func decode(_ h: Matrix, level: Int) -> Matrix {
        Self.layer(h, v[level], c[level], level == 0 ? options.outputActivation : options.activation)
    }

    func kl(_ h: Matrix) -> Double {
        guard options.sparsityTarget > 0, options.sparsityWeight > 0 else { return 0 }
        let rho = options.sparsityTarget
        var total = 0.0
        for j in 0..<h[0].count {
            let mean = h.map { $0[j] }.reduce(0, +) / Double(h.count)
            total += rho * log(rho / mean) + (1 - rho) * log((1 - rho) / (1 - mean))
        }
        return options.sparsityWeight * total
    }

    func decay(levels: Range<Int>, lambda: Double) -> Double {
        var total = 0.0
        for level in levels {
            for row in w[level] { for x in row { total += x * x } }
            if !tied { for row in v[level] { for x in row { total += x * x } } }
        }
        return 0.5 * lambda * total
    }

    static func halfMeanSquaredDistance(_ y: Matrix, _ t: Matrix) -> Double {
        var total = 0.0
        for (r, s) in zip(y, t) { for (p, q) in zip(r, s) { total += (p - q) * (p - q) } }
        return 0.5 * total / Double(y.count)
    }

    /// The corruption of the model's phase input, as a function applied to Double values:
    /// the same generator draws as `Corruption.apply` (which draws per element, regardless of
    /// the values), read off by corrupting ones (masking) or zeros (Gaussian).
    func corrupt(_ a: Matrix, noiseSeed: UInt64) -> Matrix {
        let (n, f) = (a.count, a[0].count)
        var generator = Xoshiro256StarStar(seed: noiseSeed)
        switch options.corruption {
        case .none: return a
        case .masking:
            let mask = Corruption.apply(Tensor(repeating: 1, shape: [n, f]), kind: .masking, level: options.corruptionLevel, using: &generator)
            return (0..<n).map { i in (0..<f).map { j in a[i][j] * Double(mask.scalars[i * f + j]) } }
        case .gaussian:
            let noise = Corruption.apply(Tensor(zeros: [n, f]), kind: .gaussian, level: options.corruptionLevel, using: &generator)
            return (0..<n).map { i in (0..<f).map { j in a[i][j] + Double(noise.scalars[i * f + j]) } }
        }
    }

    /// The objective of one trainStep on patches `x: [N, F]`.
    func objective(_ x: Matrix, phase: Int, noiseSeed: UInt64, lambda: Double) -> Double {
        let levels = options.hidden.count
        if phase < levels {
            var input = x
            for level in 0..<phase { input = encode(input, level: level) }
            let h = encode(corrupt(input, noiseSeed: noiseSeed), level: phase)
            let y = decode(h, level: phase)
            return Self.halfMeanSquaredDistance(y, input) + kl(h) + decay(levels: phase..<(phase + 1), lambda: lambda)
        }
        var a = corrupt(x, noiseSeed: noiseSeed)
        var penalty = 0.0
        for level in 0..<levels {
            a = encode(a, level: level)
            penalty += kl(a)
        }
        for level in stride(from: levels - 1, through: 0, by: -1) { a = decode(a, level: level) }
        return Self.halfMeanSquaredDistance(a, x) + penalty + decay(levels: 0..<levels, lambda: lambda)
    }
}
