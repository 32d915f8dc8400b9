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

/// Adaptive average pooling of `[N, C, D, H, W]` to a fixed `[N, C, g_d, g_h, g_w]` grid, with
/// PyTorch's `AdaptiveAvgPool3d` bounds: along an axis of length `L`, output cell `i` averages
///
/// ```
/// ⌊i·L/g⌋ ..< ⌈(i+1)·L/g⌉
/// ```
/// so cells cover the whole input and overlap by at most one voxel when `g` does not divide `L`.
public final class AdaptiveAvgPool3d: Layer {
    public let grid: Triple
    private var inputShape: [Int]?

    public init(grid: Triple) {
        precondition(min(grid.d, grid.h, grid.w) >= 1, "AdaptiveAvgPool3d: grid \(grid)")
        self.grid = grid
    }

    /// The input range of output cell `i` along an axis of `length` split into `cells`
    /// (also the regions `adwb extract` pools feature maps over).
    public static func bounds(_ i: Int, length: Int, cells: Int) -> Range<Int> {
        (i * length / cells)..<(((i + 1) * length + cells - 1) / cells)
    }

    public func forward(_ x: Tensor, mode: Mode) throws -> Tensor {
        let size = try spatialDims(x, "AdaptiveAvgPool3d")
        guard size.d >= grid.d, size.h >= grid.h, size.w >= grid.w else {
            throw TensorError.invalidShape(operation: "AdaptiveAvgPool3d", shape: x.shape, reason: "smaller than the grid \(grid)")
        }
        inputShape = mode == .training ? x.shape : nil
        let planes = x.shape[0] * x.shape[1]
        let (inVolume, outVolume) = (size.d * size.h * size.w, grid.d * grid.h * grid.w)
        return Tensor(uninitializedShape: [x.shape[0], x.shape[1], grid.d, grid.h, grid.w]) { out in
            x.withUnsafeBufferPointer { input in
                for plane in 0..<planes {
                    var cell = plane * outVolume
                    for a in 0..<grid.d { for b in 0..<grid.h { for c in 0..<grid.w {
                        let (ra, rb, rc) = (Self.bounds(a, length: size.d, cells: grid.d), Self.bounds(b, length: size.h, cells: grid.h),
                                            Self.bounds(c, length: size.w, cells: grid.w))
                        var total: Float = 0
                        for i in ra { for j in rb { for k in rc { total += input[plane * inVolume + (i * size.h + j) * size.w + k] } } }
                        out[cell] = total / Float(ra.count * rb.count * rc.count)
                        cell += 1
                    } } }
                }
            }
        }
    }

    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        let shape = try cached(inputShape, "AdaptiveAvgPool3d")
        try gradOutput.checkShape([shape[0], shape[1], grid.d, grid.h, grid.w], "AdaptiveAvgPool3d.backward")
        let size = Triple(shape[2], shape[3], shape[4])
        let (inVolume, outVolume) = (size.d * size.h * size.w, grid.d * grid.h * grid.w)
        var gradInput = Tensor(zeros: shape)
        gradInput.withUnsafeMutableBufferPointer { g in
            gradOutput.withUnsafeBufferPointer { go in
                for plane in 0..<(shape[0] * shape[1]) {
                    var cell = plane * outVolume
                    for a in 0..<grid.d { for b in 0..<grid.h { for c in 0..<grid.w {
                        let (ra, rb, rc) = (Self.bounds(a, length: size.d, cells: grid.d), Self.bounds(b, length: size.h, cells: grid.h),
                                            Self.bounds(c, length: size.w, cells: grid.w))
                        let share = go[cell] / Float(ra.count * rb.count * rc.count)
                        for i in ra { for j in rb { for k in rc { g[plane * inVolume + (i * size.h + j) * size.w + k] += share } } }
                        cell += 1
                    } } }
                }
            }
        }
        return gradInput
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
