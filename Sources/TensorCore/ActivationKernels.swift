import Foundation

/// Elementwise activation functions and their derivatives, as explicit parallel loops
/// (one `switch` outside each loop, so the loop body is a straight line the compiler
/// vectorises; a closure per element costs several times more on volume batches).
public enum ActivationKernels {
    public enum Kind: Sendable, Equatable {
        case relu
        case leakyRelu(slope: Float)
        case sigmoid
        case tanh

        /// True when max pooling may run before the function with the same outputs *and* the
        /// same gradients: `maxpool(f(x)) == f(maxpool(x))` and the element that receives each
        /// window's gradient carries the same gradient. Only ReLU qualifies: it is the identity
        /// above 0, and elsewhere its gradient is 0 whichever element wins. Sigmoid, tanh and
        /// leaky ReLU are monotone too, but in Float they can round distinct inputs to equal
        /// outputs (sigmoid and tanh saturate), which would move a window's gradient.
        public var preservesMaxPoolRouting: Bool { self == .relu }
    }

    /// `f(x)` for every element.
    public static func forward(_ kind: Kind, _ x: Tensor) -> Tensor {
        Tensor(uninitializedShape: x.shape) { out in
            let o = out.baseAddress!
            x.withUnsafeBufferPointer { xb in
                let input = xb.baseAddress!
                Engine.parallelRanges(x.count, minimumPerWorker: Tensor.parallelGrain) { range in
                    switch kind {
                    case .relu:
                        // `x < 0 ? 0 : x` keeps NaN as NaN, as torch.relu does.
                        for i in range { o[i] = input[i] < 0 ? 0 : input[i] }
                    case let .leakyRelu(slope):
                        for i in range { o[i] = input[i] < 0 ? slope * input[i] : input[i] }
                    case .sigmoid:
                        for i in range { o[i] = FastMath.sigmoid(input[i]) }
                    case .tanh:
                        for i in range { o[i] = tanhf(input[i]) }
                    }
                }
            }
        }
    }

    /// `gradOutput · f'(x)`, from the cached tensor each function needs: the *output* for
    /// ReLU, sigmoid and tanh, the *input* for leaky ReLU.
    public static func backward(_ kind: Kind, gradOutput: Tensor, cached: Tensor) -> Tensor {
        precondition(gradOutput.shape == cached.shape, "activation backward: \(gradOutput.shape) vs \(cached.shape)")
        return Tensor(uninitializedShape: cached.shape) { out in
            let o = out.baseAddress!
            gradOutput.withUnsafeBufferPointer { gb in
                cached.withUnsafeBufferPointer { cb in
                    let (g, c) = (gb.baseAddress!, cb.baseAddress!)
                    Engine.parallelRanges(cached.count, minimumPerWorker: Tensor.parallelGrain) { range in
                        switch kind {
                        case .relu:
                            for i in range { o[i] = c[i] > 0 ? g[i] : 0 }
                        case let .leakyRelu(slope):
                            for i in range { o[i] = c[i] > 0 ? g[i] : slope * g[i] }
                        case .sigmoid:
                            for i in range { o[i] = g[i] * c[i] * (1 - c[i]) }
                        case .tanh:
                            for i in range { o[i] = g[i] * (1 - c[i] * c[i]) }
                        }
                    }
                }
            }
        }
    }
}
