import Foundation
import TensorCore

/// `max(0, x)`.
public final class ReLU: Layer {
    private var output: Tensor?
    public init() {}

    public func forward(_ x: Tensor, mode: Mode) throws -> Tensor {
        let y = x.parallelMap { $0 > 0 ? $0 : 0 }
        output = mode == .training ? y : nil
        return y
    }

    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        try gradOutput.parallelZipMap(try cached(output, "ReLU"), "ReLU.backward") { g, y in y > 0 ? g : 0 }
    }
}

/// `x` for `x > 0`, `slope · x` otherwise.
public final class LeakyReLU: Layer {
    public let slope: Float
    private var input: Tensor?
    public init(slope: Float = 0.01) { self.slope = slope }

    public func forward(_ x: Tensor, mode: Mode) throws -> Tensor {
        input = mode == .training ? x : nil
        let slope = slope
        return x.parallelMap { $0 > 0 ? $0 : slope * $0 }
    }

    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        let slope = slope
        return try gradOutput.parallelZipMap(try cached(input, "LeakyReLU"), "LeakyReLU.backward") { g, x in x > 0 ? g : slope * g }
    }
}

/// Logistic sigmoid `1 / (1 + e^-x)`.
public final class Sigmoid: Layer {
    private var output: Tensor?
    public init() {}

    /// Numerically stable for large `|x|` (never evaluates `exp` of a large positive number).
    @inlinable
    public static func sigmoid(_ x: Float) -> Float {
        if x >= 0 { return 1 / (1 + expf(-x)) }
        let e = expf(x)
        return e / (1 + e)
    }

    public func forward(_ x: Tensor, mode: Mode) throws -> Tensor {
        let y = x.parallelMap(Sigmoid.sigmoid)
        output = mode == .training ? y : nil
        return y
    }

    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        try gradOutput.parallelZipMap(try cached(output, "Sigmoid"), "Sigmoid.backward") { g, y in g * y * (1 - y) }
    }
}

/// Hyperbolic tangent.
public final class Tanh: Layer {
    private var output: Tensor?
    public init() {}

    public func forward(_ x: Tensor, mode: Mode) throws -> Tensor {
        let y = x.parallelMap { tanhf($0) }
        output = mode == .training ? y : nil
        return y
    }

    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        try gradOutput.parallelZipMap(try cached(output, "Tanh"), "Tanh.backward") { g, y in g * (1 - y * y) }
    }
}

/// Softmax over the class axis of `[N, C]` logits (max-subtracted for stability).
public final class Softmax: Layer {
    private var output: Tensor?
    public init() {}

    /// Row-wise softmax of `[N, C]`.
    public static func probabilities(_ logits: Tensor) throws -> Tensor {
        try logits.checkRank(2, "Softmax", layout: "N, C")
        let (n, c) = (logits.shape[0], logits.shape[1])
        var y = logits
        y.withUnsafeMutableBufferPointer { p in
            for row in 0..<n {
                let base = row * c
                var largest = -Float.infinity
                for j in 0..<c { largest = max(largest, p[base + j]) }
                var total: Float = 0
                for j in 0..<c {
                    p[base + j] = expf(p[base + j] - largest)
                    total += p[base + j]
                }
                for j in 0..<c { p[base + j] /= total }
            }
        }
        return y
    }

    public func forward(_ x: Tensor, mode: Mode) throws -> Tensor {
        let y = try Softmax.probabilities(x)
        output = mode == .training ? y : nil
        return y
    }

    /// `dx = y ⊙ (g − Σ_j g_j y_j)` row by row.
    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        let y = try cached(output, "Softmax")
        try gradOutput.checkShape(y.shape, "Softmax.backward")
        let (n, c) = (y.shape[0], y.shape[1])
        var dx = gradOutput
        dx.withUnsafeMutableBufferPointer { d in
            for row in 0..<n {
                let base = row * c
                var dot: Float = 0
                for j in 0..<c { dot += d[base + j] * y.scalars[base + j] }
                for j in 0..<c { d[base + j] = y.scalars[base + j] * (d[base + j] - dot) }
            }
        }
        return dx
    }
}
