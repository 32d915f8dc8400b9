import Foundation
import TensorCore

/// An elementwise activation layer; `kind` selects the function.
public class ElementwiseActivation: Layer {
    public let kind: ActivationKernels.Kind
    /// The output (or, for leaky ReLU, the input) kept for `backward`.
    private var cache: Tensor?

    init(_ kind: ActivationKernels.Kind) { self.kind = kind }

    public func forward(_ x: Tensor, mode: Mode) throws -> Tensor {
        let y = ActivationKernels.forward(kind, x)
        if mode == .training {
            if case .leakyRelu = kind { cache = x } else { cache = y }
        } else {
            cache = nil
        }
        return y
    }

    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        let c = try cached(cache, String(describing: type(of: self)))
        try gradOutput.checkShape(c.shape, "\(type(of: self)).backward")
        return ActivationKernels.backward(kind, gradOutput: gradOutput, cached: c)
    }
}

/// `max(0, x)`.
public final class ReLU: ElementwiseActivation {
    public init() { super.init(.relu) }
}

/// `x` for `x > 0`, `slope · x` otherwise.
public final class LeakyReLU: ElementwiseActivation {
    public init(slope: Float = 0.01) { super.init(.leakyRelu(slope: slope)) }
}

/// Logistic sigmoid `1 / (1 + e^-x)`, stable for large `|x|`.
public final class Sigmoid: ElementwiseActivation {
    public init() { super.init(.sigmoid) }
}

/// Hyperbolic tangent.
public final class Tanh: ElementwiseActivation {
    public init() { super.init(.tanh) }
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
