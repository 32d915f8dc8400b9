import TensorCore

/// The decoder half of a tied-weight autoencoder: `y = x W + b` with the encoder's own
/// `W: [F_enc_out, F_enc_in]` (the transpose of the encoder's map), so the decoder maps
/// `[N, F_enc_out] → [N, F_enc_in]` without a weight of its own (Vincent et al. 2010). Gradients for `W` are
/// added into the encoder's parameter; only the bias is this layer's (state: `bias`).
/// ```
/// y = x·W + b      ∂L/∂W += xᵀ·g      ∂L/∂x = g·Wᵀ      ∂L/∂b = Σ_n g
/// ```
public final class TiedDense: Layer {
    public let tiedWeight: Parameter
    public let bias: Parameter
    private var input: Tensor?

    /// - Parameter encoder: the `Dense` whose weight this layer shares.
    public init(transposing encoder: Dense) {
        tiedWeight = encoder.weight
        bias = Parameter(Tensor(zeros: [encoder.inFeatures]))
    }

    public func forward(_ x: Tensor, mode: Mode) throws -> Tensor {
        let (rows, columns) = (tiedWeight.value.shape[0], tiedWeight.value.shape[1])
        guard x.rank == 2, x.shape[1] == rows else {
            throw TensorError.shapeMismatch(operation: "TiedDense(\(rows) -> \(columns)) input [N, F]", expected: [x.shape.first ?? 0, rows], got: x.shape)
        }
        input = mode == .training ? x : nil
        return try Tensor.matmul(x, tiedWeight.value).addingBias(bias.value, axis: 1)
    }

    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        let x = try cached(input, "TiedDense")
        try gradOutput.checkShape([x.shape[0], tiedWeight.value.shape[1]], "TiedDense.backward")
        tiedWeight.accumulate(try Tensor.matmul(x, gradOutput, transposeA: true))
        bias.accumulate(try gradOutput.sum(axis: 0))
        return try Tensor.matmul(gradOutput, tiedWeight.value, transposeB: true)
    }

    public func visitState(prefix: String, _ visit: (String, StateEntry) -> Void) {
        visit(joinPath(prefix, "bias"), .parameter(bias))
    }
}
