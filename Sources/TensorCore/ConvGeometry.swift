/// Three integers along depth, height and width.
public struct Triple: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    public var d: Int, h: Int, w: Int
    public init(_ d: Int, _ h: Int, _ w: Int) { (self.d, self.h, self.w) = (d, h, w) }
    public init(_ all: Int) { self.init(all, all, all) }
    public var product: Int { d * h * w }
    public var array: [Int] { [d, h, w] }
    public var description: String { "(\(d), \(h), \(w))" }
}

/// Geometry of one 3-D convolution over `[N, C, D, H, W]` tensors.
///
/// ```
/// out = floor((in + 2·padding − kernel) / stride) + 1      (per axis)
/// ```
/// A transposed convolution is described by the geometry of the convolution it transposes:
/// its *output* is this geometry's `input`, its input this geometry's `output`.
public struct ConvGeometry: Sendable, Equatable {
    public let inChannels: Int
    public let outChannels: Int
    public let kernel: Triple
    public let stride: Triple
    public let padding: Triple
    /// Spatial extent of the input volume `(D, H, W)`.
    public let input: Triple
    /// Spatial extent of the output volume.
    public let output: Triple

    /// Rows of the column matrix: one per (input channel, kernel offset).
    public var columnRows: Int { inChannels * kernel.product }

    public init(inChannels: Int, outChannels: Int, kernel: Triple, stride: Triple, padding: Triple, input: Triple) throws {
        let operation = "Conv3d geometry"
        guard inChannels > 0, outChannels > 0 else {
            throw TensorError.invalidArgument(operation: operation, reason: "channels must be positive (in \(inChannels), out \(outChannels))")
        }
        for (name, value) in [("kernel", kernel), ("stride", stride)] where min(value.d, value.h, value.w) < 1 {
            throw TensorError.invalidArgument(operation: operation, reason: "\(name) \(value) must be at least 1")
        }
        guard min(padding.d, padding.h, padding.w) >= 0 else {
            throw TensorError.invalidArgument(operation: operation, reason: "padding \(padding) must not be negative")
        }
        func extent(_ size: Int, _ k: Int, _ s: Int, _ p: Int) throws -> Int {
            let span = size + 2 * p - k
            guard span >= 0 else {
                throw TensorError.invalidArgument(
                    operation: operation, reason: "kernel \(kernel) larger than padded input \(input) (padding \(padding))")
            }
            return span / s + 1
        }
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.input = input
        self.output = Triple(
            try extent(input.d, kernel.d, stride.d, padding.d),
            try extent(input.h, kernel.h, stride.h, padding.h),
            try extent(input.w, kernel.w, stride.w, padding.w))
    }

    /// `[n, C_in, D, H, W]` for a batch of `n`.
    public func inputShape(_ n: Int) -> [Int] { [n, inChannels, input.d, input.h, input.w] }
    /// `[n, C_out, D_out, H_out, W_out]` for a batch of `n`.
    public func outputShape(_ n: Int) -> [Int] { [n, outChannels, output.d, output.h, output.w] }
    /// PyTorch's Conv3d weight layout `[out, in, kD, kH, kW]`.
    public var weightShape: [Int] { [outChannels, inChannels, kernel.d, kernel.h, kernel.w] }
}
