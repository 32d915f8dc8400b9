import TensorCore

/// 3-D convolution over `[N, C_in, D, H, W]` (PyTorch's `nn.Conv3d`, no dilation or groups).
///
/// ```
/// weight: [C_out, C_in, kD, kH, kW]   bias: [C_out]   output: [N, C_out, D', H', W']
/// D' = floor((D + 2·padding − kD) / stride) + 1
/// ```
/// Weights start He-uniform over `fanIn = C_in·kD·kH·kW`, biases at zero.
public final class Conv3d: Layer {
    public let inChannels: Int
    public let outChannels: Int
    public let kernel: Triple
    public let stride: Triple
    public let padding: Triple
    public let weight: Parameter
    public let bias: Parameter
    private var input: Tensor?
    private var geometry: ConvGeometry?

    public init(inChannels: Int, outChannels: Int, kernel: Triple, stride: Triple = Triple(1), padding: Triple = Triple(0),
                initialization: WeightInitialization = .he, using generator: inout some RandomNumberGenerator) {
        precondition(inChannels > 0 && outChannels > 0, "Conv3d: channels must be positive (\(inChannels) -> \(outChannels))")
        (self.inChannels, self.outChannels, self.kernel, self.stride, self.padding) = (inChannels, outChannels, kernel, stride, padding)
        let fanIn = inChannels * kernel.product
        weight = Parameter(initialization.draw(shape: [outChannels, inChannels] + kernel.array, fanIn: fanIn,
                                               fanOut: outChannels * kernel.product, using: &generator))
        bias = Parameter(Tensor(zeros: [outChannels]))
    }

    /// The geometry for an input, re-validated when the input's spatial size changes.
    func geometry(for x: Tensor, _ operation: String) throws -> ConvGeometry {
        guard x.rank == 5, x.shape[1] == inChannels else {
            throw TensorError.invalidShape(operation: operation, shape: x.shape,
                                           reason: "expected [N, \(inChannels), D, H, W]")
        }
        let spatial = Triple(x.shape[2], x.shape[3], x.shape[4])
        if let geometry, geometry.input == spatial { return geometry }
        let g = try ConvGeometry(inChannels: inChannels, outChannels: outChannels, kernel: kernel,
                                 stride: stride, padding: padding, input: spatial)
        geometry = g
        return g
    }

    public func forward(_ x: Tensor, mode: Mode) throws -> Tensor {
        let g = try geometry(for: x, "Conv3d(\(inChannels) -> \(outChannels))")
        input = mode == .training ? x : nil
        return Conv3dKernels.forward(g, input: x, weight: weight.value, bias: bias.value)
    }

    /// This convolution followed by `pool` (2×2×2, stride 2) in one pass, which never
    /// materialises the convolution's output; `pool` keeps its indices for `backward`, so the
    /// two layers' backward passes run unchanged. Falls back to the two separate passes when
    /// the pooling window differs or the output is too small to pool.
    func forwardMaxPooled(_ x: Tensor, pool: MaxPool3d, mode: Mode) throws -> Tensor {
        let g = try geometry(for: x, "Conv3d(\(inChannels) -> \(outChannels))")
        guard pool.isFusable, min(g.output.d, g.output.h, g.output.w) >= 2 else {
            return try pool.forward(try forward(x, mode: mode), mode: mode)
        }
        input = mode == .training ? x : nil
        let (pooled, indices) = Conv3dKernels.forwardMaxPooled(g, input: x, weight: weight.value, bias: bias.value)
        pool.record(inputShape: g.outputShape(x.shape[0]), indices: indices, mode: mode)
        return pooled
    }

    /// `accumulateParameterGradients` for this convolution and the 2×2×2 `pool` that follows
    /// it, from the pooled gradient: when the input has few channels (K ≤ 64) the weight
    /// gradient is summed over the pooling winners only (`weightGradientThroughMaxPool`),
    /// which never builds the full-size gradient; otherwise the two backward passes run as usual.
    func accumulateParameterGradients(throughMaxPool pool: MaxPool3d, gradPooled: Tensor) throws {
        let x = try cached(input, "Conv3d")
        let g = try geometry(for: x, "Conv3d.backward")
        guard pool.isFusable, g.columnRows <= 64, let (inputShape, indices) = pool.recordedIndices,
              inputShape == g.outputShape(x.shape[0]), indices.count == gradPooled.count else {
            try accumulateParameterGradients(try pool.backward(gradPooled))
            return
        }
        try gradPooled.checkShape([x.shape[0], outChannels, g.output.d / 2, g.output.h / 2, g.output.w / 2], "Conv3d+MaxPool3d.backward")
        let grads = Conv3dKernels.weightGradientThroughMaxPool(g, input: x, gradPooled: gradPooled, indices: indices)
        weight.accumulate(grads.weight)
        bias.accumulate(grads.bias)
    }

    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        try backward(gradOutput, needsInputGradient: true)!
    }

    public func accumulateParameterGradients(_ gradOutput: Tensor) throws {
        _ = try backward(gradOutput, needsInputGradient: false)
    }

    private func backward(_ gradOutput: Tensor, needsInputGradient: Bool) throws -> Tensor? {
        let x = try cached(input, "Conv3d")
        let g = try geometry(for: x, "Conv3d.backward")
        try gradOutput.checkShape(g.outputShape(x.shape[0]), "Conv3d.backward")
        let grads = Conv3dKernels.backward(g, input: x, gradOutput: gradOutput, weight: weight.value,
                                           needsInputGradient: needsInputGradient)
        weight.accumulate(grads.weight!)
        bias.accumulate(grads.bias!)
        return grads.input
    }

    public func visitState(prefix: String, _ visit: (String, StateEntry) -> Void) {
        visit(joinPath(prefix, "weight"), .parameter(weight))
        visit(joinPath(prefix, "bias"), .parameter(bias))
    }
}

/// Transposed 3-D convolution (PyTorch's `nn.ConvTranspose3d`): the adjoint of a `Conv3d`
/// with the same kernel, stride and padding, used to upsample in decoders.
///
/// ```
/// weight: [C_in, C_out, kD, kH, kW]   bias: [C_out]
/// D' = (D − 1)·stride − 2·padding + kD + outputPadding
/// ```
/// Weights start He-uniform over `fanIn = C_out·kD·kH·kW` (PyTorch's fan for this layout).
public final class ConvTranspose3d: Layer {
    public let inChannels: Int
    public let outChannels: Int
    public let kernel: Triple
    public let stride: Triple
    public let padding: Triple
    public let outputPadding: Triple
    public let weight: Parameter
    public let bias: Parameter
    private var input: Tensor?
    private var geometry: ConvGeometry?

    public init(inChannels: Int, outChannels: Int, kernel: Triple, stride: Triple = Triple(1), padding: Triple = Triple(0),
                outputPadding: Triple = Triple(0), initialization: WeightInitialization = .he,
                using generator: inout some RandomNumberGenerator) throws {
        precondition(inChannels > 0 && outChannels > 0, "ConvTranspose3d: channels must be positive")
        guard outputPadding.d < stride.d, outputPadding.h < stride.h, outputPadding.w < stride.w,
              min(outputPadding.d, outputPadding.h, outputPadding.w) >= 0 else {
            throw TensorError.invalidArgument(operation: "ConvTranspose3d",
                                              reason: "output padding \(outputPadding) must be non-negative and smaller than stride \(stride)")
        }
        (self.inChannels, self.outChannels, self.kernel, self.stride, self.padding, self.outputPadding) =
            (inChannels, outChannels, kernel, stride, padding, outputPadding)
        weight = Parameter(initialization.draw(shape: [inChannels, outChannels] + kernel.array, fanIn: outChannels * kernel.product,
                                               fanOut: inChannels * kernel.product, using: &generator))
        bias = Parameter(Tensor(zeros: [outChannels]))
    }

    /// Geometry of the forward convolution that this layer transposes: from our output
    /// (`C_out` channels) to our input (`C_in` channels).
    func geometry(for x: Tensor, _ operation: String) throws -> ConvGeometry {
        guard x.rank == 5, x.shape[1] == inChannels else {
            throw TensorError.invalidShape(operation: operation, shape: x.shape, reason: "expected [N, \(inChannels), D, H, W]")
        }
        let spatial = Triple(x.shape[2], x.shape[3], x.shape[4])
        if let geometry, geometry.output == spatial { return geometry }
        func extent(_ size: Int, _ s: Int, _ p: Int, _ k: Int, _ op: Int) -> Int { (size - 1) * s - 2 * p + k + op }
        let out = Triple(extent(spatial.d, stride.d, padding.d, kernel.d, outputPadding.d),
                         extent(spatial.h, stride.h, padding.h, kernel.h, outputPadding.h),
                         extent(spatial.w, stride.w, padding.w, kernel.w, outputPadding.w))
        guard min(out.d, out.h, out.w) >= 1 else {
            throw TensorError.invalidShape(operation: operation, shape: x.shape, reason: "output extent \(out) would be empty")
        }
        let g = try ConvGeometry(inChannels: outChannels, outChannels: inChannels, kernel: kernel,
                                 stride: stride, padding: padding, input: out)
        guard g.output == spatial else {
            throw TensorError.invalidShape(operation: operation, shape: x.shape, reason: "inconsistent transposed geometry")
        }
        geometry = g
        return g
    }

    public func forward(_ x: Tensor, mode: Mode) throws -> Tensor {
        let g = try geometry(for: x, "ConvTranspose3d(\(inChannels) -> \(outChannels))")
        input = mode == .training ? x : nil
        var y = Conv3dKernels.backwardData(g, gradOutput: x, weight: weight.value)
        try y.addBias(bias.value, axis: 1)
        return y
    }

    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        let g = try accumulateGradients(gradOutput)
        return Conv3dKernels.forward(g, input: gradOutput, weight: weight.value, bias: nil)
    }

    public func accumulateParameterGradients(_ gradOutput: Tensor) throws {
        _ = try accumulateGradients(gradOutput)
    }

    /// Adds the weight and bias gradients; returns the geometry for the input gradient.
    private func accumulateGradients(_ gradOutput: Tensor) throws -> ConvGeometry {
        let x = try cached(input, "ConvTranspose3d")
        let g = try geometry(for: x, "ConvTranspose3d.backward")
        try gradOutput.checkShape(g.inputShape(x.shape[0]), "ConvTranspose3d.backward")
        weight.accumulate(Conv3dKernels.backwardWeights(g, input: gradOutput, gradOutput: x).weight)
        bias.accumulate(try gradOutput.channelSums())
        return g
    }

    public func visitState(prefix: String, _ visit: (String, StateEntry) -> Void) {
        visit(joinPath(prefix, "weight"), .parameter(weight))
        visit(joinPath(prefix, "bias"), .parameter(bias))
    }
}
