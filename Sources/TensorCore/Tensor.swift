/// Shape letters used across the workbench:
/// `N` batch, `C` channels, `D` depth, `H` height, `W` width (volumes are `N, C, D, H, W`),
/// `F` features, `K` reduction length of a GEMM.

/// A dense, contiguous, row-major Float32 tensor of any rank (scalars have shape `[]`).
///
/// The last axis varies fastest, so a volume batch `[N, C, D, H, W]` is laid out exactly as
/// PyTorch's default (`NCDHW`) memory format. Value semantics: copies share storage until one
/// is written (copy on write).
public struct Tensor: Sendable, Equatable {
    /// Extent of each axis.
    public private(set) var shape: [Int]
    /// The elements in row-major order; `scalars.count == shape.reduce(1, *)` always holds.
    public private(set) var scalars: [Float]

    /// Wraps `scalars` with `shape`, checking that the counts agree.
    /// - Throws: `TensorError.invalidShape` for negative or overflowing extents,
    ///   `TensorError.shapeMismatch` when the element count differs.
    public init(shape: [Int], scalars: [Float]) throws {
        let count = try Tensor.elementCount(of: shape, operation: "Tensor(shape:scalars:)")
        guard count == scalars.count else {
            throw TensorError.shapeMismatch(
                operation: "Tensor(shape:scalars:) element count", expected: [count], got: [scalars.count])
        }
        self.shape = shape
        self.scalars = scalars
    }

    /// A tensor of `shape` filled with `value`. `shape` comes from code, so a bad one traps.
    public init(repeating value: Float, shape: [Int]) {
        let count = Tensor.checkedCount(shape)
        self.shape = shape
        self.scalars = [Float](repeating: value, count: count)
    }

    /// A tensor of zeros.
    public init(zeros shape: [Int]) { self.init(repeating: 0, shape: shape) }

    /// A tensor whose every element is written by `initializer` (which must write all of them);
    /// avoids zero-filling buffers that a kernel overwrites anyway.
    public init(
        uninitializedShape shape: [Int],
        initializingWith initializer: (UnsafeMutableBufferPointer<Float>) throws -> Void
    ) rethrows {
        let count = Tensor.checkedCount(shape)
        self.shape = shape
        self.scalars = try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            try initializer(buffer)
            initialized = count
        }
    }

    /// A 0-d tensor.
    public init(scalar: Float) {
        shape = []
        scalars = [scalar]
    }

    /// Unchecked internal constructor: callers guarantee `scalars.count == product(shape)`.
    @usableFromInline
    init(unchecked shape: [Int], _ scalars: [Float]) {
        self.shape = shape
        self.scalars = scalars
    }

    public var rank: Int { shape.count }
    public var count: Int { scalars.count }

    /// Row-major strides in elements: `strides[i] = shape[(i+1)...].product`.
    public var strides: [Int] { Tensor.contiguousStrides(shape) }

    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[axis] = running
            running *= shape[axis]
        }
        return strides
    }

    /// The element count of `shape`, or a typed error for negative extents or overflow.
    /// The product of the non-zero extents must fit too, so an empty tensor such as
    /// `[0, 2^62, 4]` is refused: its strides and slices would overflow later.
    public static func elementCount(of shape: [Int], operation: String) throws -> Int {
        var nonZeroProduct = 1
        for extent in shape {
            guard extent >= 0 else {
                throw TensorError.invalidShape(operation: operation, shape: shape, reason: "negative extent")
            }
            let (product, overflow) = nonZeroProduct.multipliedReportingOverflow(by: Swift.max(extent, 1))
            guard !overflow else {
                throw TensorError.invalidShape(operation: operation, shape: shape, reason: "element count overflows Int")
            }
            nonZeroProduct = product
        }
        return shape.contains(0) ? 0 : nonZeroProduct
    }

    static func checkedCount(_ shape: [Int]) -> Int {
        do { return try elementCount(of: shape, operation: "Tensor") } catch {
            preconditionFailure("\(error)")
        }
    }

    /// Element at a full multi-index (bounds are checked).
    public subscript(_ index: Int...) -> Float {
        get { scalars[offset(of: index)] }
        set { scalars[offset(of: index)] = newValue }
    }

    func offset(of index: [Int]) -> Int {
        precondition(index.count == shape.count, "index \(index) has rank \(index.count), tensor has shape \(shape)")
        var offset = 0
        for (axis, i) in index.enumerated() {
            precondition(i >= 0 && i < shape[axis], "index \(index) out of bounds for shape \(shape)")
            offset = offset * shape[axis] + i
        }
        return offset
    }

    /// Read access to the contiguous storage.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeBufferPointer(body)
    }

    /// Write access to the contiguous storage (the shape cannot change).
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        try scalars.withUnsafeMutableBufferPointer { try body($0) }
    }

    /// Throws unless `self.shape == expected`.
    public func checkShape(_ expected: [Int], _ operation: String) throws {
        guard shape == expected else {
            throw TensorError.shapeMismatch(operation: operation, expected: expected, got: shape)
        }
    }

    /// Throws unless the tensor has `rank` axes.
    public func checkRank(_ rank: Int, _ operation: String, layout: String) throws {
        guard shape.count == rank else {
            throw TensorError.invalidShape(
                operation: operation, shape: shape, reason: "expected rank \(rank) (\(layout))")
        }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let preview = scalars.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(preview)\(count > 8 ? ", ..." : "")])"
    }
}
