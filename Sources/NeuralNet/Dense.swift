import TensorCore

/// How a layer's weights are drawn at construction.
public enum WeightInitialization: String, Sendable, Codable {
    /// He/Kaiming uniform, `bound = sqrt(6 / fanIn)`: for ReLU networks.
    case he
    /// Xavier/Glorot uniform, `bound = sqrt(6 / (fanIn + fanOut))`: for sigmoid/tanh networks.
    case xavier

    func draw(shape: [Int], fanIn: Int, fanOut: Int, using generator: inout some RandomNumberGenerator) -> Tensor {
        switch self {
        case .he: return Initializer.heUniform(shape: shape, fanIn: fanIn, using: &generator)
        case .xavier: return Initializer.xavierUniform(shape: shape, fanIn: fanIn, fanOut: fanOut, using: &generator)
        }
    }
}

/// Fully connected layer, `y = x Wᵀ + b`.
///
/// ```
/// x: [N, F_in]  W: [F_out, F_in] (PyTorch's nn.Linear layout)  b: [F_out]  y: [N, F_out]
/// ```
/// Biases start at zero.
public final class Dense: Layer {
    public let weight: Parameter
    public let bias: Parameter
    public let inFeatures: Int
    public let outFeatures: Int
    private var input: Tensor?

    public init(inFeatures: Int, outFeatures: Int, initialization: WeightInitialization = .he,
                using generator: inout some RandomNumberGenerator) {
        precondition(inFeatures > 0 && outFeatures > 0, "Dense: features must be positive (\(inFeatures) -> \(outFeatures))")
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = Parameter(initialization.draw(shape: [outFeatures, inFeatures], fanIn: inFeatures, fanOut: outFeatures, using: &generator))
        bias = Parameter(Tensor(zeros: [outFeatures]))
    }

    public func forward(_ x: Tensor, mode: Mode) throws -> Tensor {
        guard x.rank == 2, x.shape[1] == inFeatures else {
            throw TensorError.shapeMismatch(operation: "Dense(\(inFeatures) -> \(outFeatures)) input [N, F]",
                                            expected: [x.shape.first ?? 0, inFeatures], got: x.shape)
        }
        input = mode == .training ? x : nil
        let (n, f) = (x.shape[0], outFeatures)
        // Start every row at the bias and let sgemm add x·Wᵀ onto it (beta = 1).
        return Tensor(uninitializedShape: [n, f]) { out in
            bias.value.withUnsafeBufferPointer { b in
                for row in 0..<n { (out.baseAddress! + row * f).update(from: b.baseAddress!, count: f) }
            }
            x.withUnsafeBufferPointer { xp in
                weight.value.withUnsafeBufferPointer { wp in
                    BLAS.parallelSgemm(transposeB: true, m: n, n: f, k: inFeatures, a: xp.baseAddress!, lda: inFeatures,
                               b: wp.baseAddress!, ldb: inFeatures, beta: 1, c: out.baseAddress!, ldc: f)
                }
            }
        }
    }

    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        let x = try cached(input, "Dense")
        try gradOutput.checkShape([x.shape[0], outFeatures], "Dense.backward")
        weight.accumulate(try Tensor.matmul(gradOutput, x, transposeA: true))
        bias.accumulate(try gradOutput.sum(axis: 0))
        return try Tensor.matmul(gradOutput, weight.value)
    }

    public func visitState(prefix: String, _ visit: (String, StateEntry) -> Void) {
        visit(joinPath(prefix, "weight"), .parameter(weight))
        visit(joinPath(prefix, "bias"), .parameter(bias))
    }
}

/// Collapses every axis after the first: `[N, ...] -> [N, F]`.
public final class Flatten: Layer {
    private var inputShape: [Int]?
    public init() {}

    public func forward(_ x: Tensor, mode: Mode) throws -> Tensor {
        guard x.rank >= 1 else { throw TensorError.invalidShape(operation: "Flatten", shape: x.shape, reason: "needs a batch axis") }
        inputShape = x.shape
        return try x.reshaped([x.shape[0], x.shape.dropFirst().reduce(1, *)])
    }

    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        try gradOutput.reshaped(try cached(inputShape, "Flatten"))
    }
}

/// Inverted dropout (Srivastava et al. 2014): in training, zeroes each element with
/// probability `p` and scales survivors by `1/(1-p)`; the identity in inference.
public final class Dropout: Layer {
    public let probability: Float
    private var generator: Xoshiro256StarStar
    /// The last training forward's mask; `.some(nil)` after a pass that dropped nothing.
    private var mask: Tensor??

    public init(probability: Float, seed: UInt64) throws {
        guard probability >= 0 && probability < 1 else {
            throw TensorError.invalidArgument(operation: "Dropout", reason: "probability \(probability) must be in [0, 1)")
        }
        self.probability = probability
        generator = Xoshiro256StarStar(seed: seed)
    }

    public func forward(_ x: Tensor, mode: Mode) throws -> Tensor {
        guard mode == .training, probability > 0 else {
            mask = .some(nil)
            return x
        }
        let keep = 1 - probability
        let scale = 1 / keep
        let m = Tensor(uninitializedShape: x.shape) { out in
            for i in 0..<out.count { out[i] = generator.nextUnitFloat() < keep ? scale : 0 }
        }
        mask = m
        return try x.multiplying(m)
    }

    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        guard let mask = try cached(mask, "Dropout") else { return gradOutput }
        return try gradOutput.multiplying(mask)
    }
}
