import TensorCore

private func spatialDims(_ x: Tensor, _ operation: String) throws -> Triple {
    try x.checkRank(5, operation, layout: "N, C, D, H, W")
    return Triple(x.shape[2], x.shape[3], x.shape[4])
}

/// Max pooling over `[N, C, D, H, W]` windows (no padding, floor mode), keeping the argmax
/// of every window for the backward pass.
public final class MaxPool3d: Layer {
    public let kernel: Triple
    public let stride: Triple
    private var cache: (inputShape: [Int], indices: [Int32])?

    /// `stride` defaults to `kernel`, as in PyTorch.
    public init(kernel: Triple, stride: Triple? = nil) {
        self.kernel = kernel
        self.stride = stride ?? kernel
    }

    public func forward(_ x: Tensor, mode: Mode) throws -> Tensor {
        let output = try Pool3dKernels.outputExtent(input: try spatialDims(x, "MaxPool3d"), kernel: kernel, stride: stride, operation: "MaxPool3d")
        let (pooled, indices) = Pool3dKernels.maxPool(x, kernel: kernel, stride: stride, output: output)
        cache = mode == .training ? (x.shape, indices) : nil
        return pooled
    }

    /// True for the 2×2×2, stride-2 window that `Conv3d.forwardMaxPooled` can fuse.
    var isFusable: Bool { kernel == Triple(2) && stride == Triple(2) }

    /// The input shape and argmax indices kept by the last training forward pass.
    var recordedIndices: (inputShape: [Int], indices: [Int32])? { cache }

    /// Keeps what `backward` needs after a fused convolution + pooling forward pass.
    func record(inputShape: [Int], indices: [Int32], mode: Mode) {
        cache = mode == .training ? (inputShape, indices) : nil
    }

    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        let (inputShape, indices) = try cached(cache, "MaxPool3d")
        guard gradOutput.count == indices.count, gradOutput.rank == 5, gradOutput.shape[0...1] == inputShape[0...1] else {
            throw TensorError.shapeMismatch(operation: "MaxPool3d.backward", expected: inputShape, got: gradOutput.shape)
        }
        return Pool3dKernels.maxPoolBackward(gradOutput, indices: indices, inputShape: inputShape)
    }
}

/// Average pooling over `[N, C, D, H, W]` windows (no padding, floor mode).
public final class AvgPool3d: Layer {
    public let kernel: Triple
    public let stride: Triple
    private var inputShape: [Int]?

    public init(kernel: Triple, stride: Triple? = nil) {
        self.kernel = kernel
        self.stride = stride ?? kernel
    }

    public func forward(_ x: Tensor, mode: Mode) throws -> Tensor {
        let output = try Pool3dKernels.outputExtent(input: try spatialDims(x, "AvgPool3d"), kernel: kernel, stride: stride, operation: "AvgPool3d")
        inputShape = x.shape
        return Pool3dKernels.avgPool(x, kernel: kernel, stride: stride, output: output)
    }

    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        let shape = try cached(inputShape, "AvgPool3d")
        let output = try Pool3dKernels.outputExtent(input: Triple(shape[2], shape[3], shape[4]), kernel: kernel, stride: stride, operation: "AvgPool3d")
        try gradOutput.checkShape([shape[0], shape[1], output.d, output.h, output.w], "AvgPool3d.backward")
        return Pool3dKernels.avgPoolBackward(gradOutput, inputShape: shape, kernel: kernel, stride: stride)
    }
}

/// Upsampling by integer factors, nearest or trilinear (`align_corners=False`).
public final class Upsample3d: Layer {
    public let factor: Triple
    public let mode: Upsample3dKernels.Mode
    private var inputShape: [Int]?

    public init(factor: Triple, mode: Upsample3dKernels.Mode = .nearest) throws {
        guard min(factor.d, factor.h, factor.w) >= 1 else {
            throw TensorError.invalidArgument(operation: "Upsample3d", reason: "factor \(factor) must be at least 1")
        }
        self.factor = factor
        self.mode = mode
    }

    public func forward(_ x: Tensor, mode: Mode) throws -> Tensor {
        _ = try spatialDims(x, "Upsample3d")
        inputShape = x.shape
        return Upsample3dKernels.forward(x, factor: factor, mode: self.mode)
    }

    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        let shape = try cached(inputShape, "Upsample3d")
        try gradOutput.checkShape([shape[0], shape[1], shape[2] * factor.d, shape[3] * factor.h, shape[4] * factor.w], "Upsample3d.backward")
        return Upsample3dKernels.backward(gradOutput, inputShape: shape, factor: factor, mode: mode)
    }
}
