import TensorCore

/// Layers applied in order; children are named `0`, `1`, ... as in `torch.nn.Sequential`.
///
/// Two rewrites are applied when running; neither changes what is computed (results agree
/// up to float rounding where a fused pass splits its GEMMs differently):
/// 1. A ReLU directly followed by `MaxPool3d` runs as pooling then ReLU. Both orders give
///    identical outputs and gradients (see `ActivationKernels.Kind.preservesMaxPoolRouting`),
///    and the ReLU then touches 1/8 of the values for 2×2×2 pooling.
/// 2. A `Conv3d` then directly followed by a 2×2×2 `MaxPool3d` runs fused
///    (`Conv3d.forwardMaxPooled`), never writing the convolution's full-size output.
/// State names are unaffected.
public final class Sequential: Layer {
    public let layers: [any Layer]
    /// `layers` in the order they run, after the activation/pooling rewrite.
    private let executionOrder: [any Layer]

    public init(_ layers: [any Layer]) {
        self.layers = layers
        var order: [any Layer] = []
        var index = 0
        while index < layers.count {
            if index + 1 < layers.count, let activation = layers[index] as? ElementwiseActivation,
               activation.kind.preservesMaxPoolRouting, layers[index + 1] is MaxPool3d {
                order += [layers[index + 1], activation]
                index += 2
            } else {
                order.append(layers[index])
                index += 1
            }
        }
        executionOrder = order
    }

    public func forward(_ input: Tensor, mode: Mode) throws -> Tensor {
        var x = input
        var index = 0
        while index < executionOrder.count {
            if index + 1 < executionOrder.count, let conv = executionOrder[index] as? Conv3d,
               let pool = executionOrder[index + 1] as? MaxPool3d {
                x = try conv.forwardMaxPooled(x, pool: pool, mode: mode)
                index += 2
            } else {
                x = try executionOrder[index].forward(x, mode: mode)
                index += 1
            }
        }
        return x
    }

    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        var g = gradOutput
        for layer in executionOrder.reversed() { g = try layer.backward(g) }
        return g
    }

    /// Stops at the first layer that has parameters, which skips its input gradient; the
    /// parameter-free layers before it need no backward pass at all. When that layer is a
    /// `Conv3d` followed by `MaxPool3d`, the two finish together
    /// (`Conv3d.accumulateParameterGradients(throughMaxPool:gradPooled:)`).
    public func accumulateParameterGradients(_ gradOutput: Tensor) throws {
        guard let first = executionOrder.firstIndex(where: { $0.parameterCount > 0 }) else { return }
        let pooled = first + 1 < executionOrder.count ? executionOrder[first + 1] as? MaxPool3d : nil
        let conv = executionOrder[first] as? Conv3d
        var g = gradOutput
        for layer in executionOrder[(pooled != nil && conv != nil ? first + 2 : first + 1)...].reversed() {
            g = try layer.backward(g)
        }
        if let conv, let pooled {
            try conv.accumulateParameterGradients(throughMaxPool: pooled, gradPooled: g)
        } else {
            try executionOrder[first].accumulateParameterGradients(g)
        }
    }

    public func visitState(prefix: String, _ visit: (String, StateEntry) -> Void) {
        for (index, layer) in layers.enumerated() {
            layer.visitState(prefix: joinPath(prefix, String(index)), visit)
        }
    }
}

/// An autoencoder's two halves as one layer: `decoder(encoder(x))`, with state under
/// `encoder.*` and `decoder.*` (the names of a PyTorch module with those two attributes).
public final class EncoderDecoder: Layer {
    public let encoder: any Layer
    public let decoder: any Layer

    public init(encoder: any Layer, decoder: any Layer) {
        self.encoder = encoder
        self.decoder = decoder
    }

    public func forward(_ input: Tensor, mode: Mode) throws -> Tensor {
        try decoder.forward(try encoder.forward(input, mode: mode), mode: mode)
    }

    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        try encoder.backward(try decoder.backward(gradOutput))
    }

    public func accumulateParameterGradients(_ gradOutput: Tensor) throws {
        try encoder.accumulateParameterGradients(try decoder.backward(gradOutput))
    }

    public func visitState(prefix: String, _ visit: (String, StateEntry) -> Void) {
        encoder.visitState(prefix: joinPath(prefix, "encoder"), visit)
        decoder.visitState(prefix: joinPath(prefix, "decoder"), visit)
    }
}
