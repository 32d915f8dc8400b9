/// Elementwise arithmetic. Binary operations require identical shapes (no implicit
/// broadcasting, which hides bugs); the one broadcast the layers need, a per-channel or
/// per-feature bias, is the explicit `addingBias(_:axis:)`.
extension Tensor {
    /// Applies `transform` to every element.
    @inlinable
    public func map(_ transform: (Float) -> Float) -> Tensor {
        Tensor(unchecked: shape, scalars.map(transform))
    }

    /// Combines two same-shaped tensors element by element.
    public func zipMap(_ other: Tensor, _ operation: String, _ combine: (Float, Float) -> Float) throws -> Tensor {
        try other.checkShape(shape, operation)
        return Tensor(uninitializedShape: shape) { out in
            scalars.withUnsafeBufferPointer { a in
                other.scalars.withUnsafeBufferPointer { b in
                    for i in 0..<a.count { out[i] = combine(a[i], b[i]) }
                }
            }
        }
    }

    public func adding(_ other: Tensor) throws -> Tensor { try zipMap(other, "add") { $0 + $1 } }
    public func subtracting(_ other: Tensor) throws -> Tensor { try zipMap(other, "subtract") { $0 - $1 } }
    public func multiplying(_ other: Tensor) throws -> Tensor { try zipMap(other, "multiply") { $0 * $1 } }
    public func dividing(_ other: Tensor) throws -> Tensor { try zipMap(other, "divide") { $0 / $1 } }

    public func scaled(by factor: Float) -> Tensor { map { $0 * factor } }
    public func adding(scalar: Float) -> Tensor { map { $0 + scalar } }

    /// `self += alpha * other` in place (BLAS `saxpy`).
    public mutating func addScaled(_ other: Tensor, alpha: Float = 1) throws {
        try other.checkShape(shape, "addScaled")
        let n = count
        withUnsafeMutableBufferPointer { y in
            other.withUnsafeBufferPointer { x in
                BLAS.saxpy(count: n, alpha: alpha, x: x.baseAddress!, y: y.baseAddress!)
            }
        }
    }

    /// Sets every element to `value`, keeping the storage.
    public mutating func fill(_ value: Float) {
        withUnsafeMutableBufferPointer { $0.update(repeating: value) }
    }

    /// Adds `bias[j]` to every element whose index along `axis` is `j`.
    ///
    /// For a batch of volumes `[N, C, D, H, W]` and `axis: 1` this adds one value per channel;
    /// for features `[N, F]` and `axis: 1`, one per feature.
    /// - Throws: when `bias` is not `[shape[axis]]`.
    public func addingBias(_ bias: Tensor, axis: Int) throws -> Tensor {
        guard axis >= 0 && axis < rank else {
            throw TensorError.invalidArgument(operation: "addingBias", reason: "axis \(axis) out of range for shape \(shape)")
        }
        try bias.checkShape([shape[axis]], "addingBias")
        var result = self
        let outer = shape[..<axis].reduce(1, *)
        let channels = shape[axis]
        let inner = shape[(axis + 1)...].reduce(1, *)
        result.withUnsafeMutableBufferPointer { out in
            bias.withUnsafeBufferPointer { b in
                for o in 0..<outer {
                    for c in 0..<channels {
                        let base = (o * channels + c) * inner
                        let value = b[c]
                        for i in 0..<inner { out[base + i] += value }
                    }
                }
            }
        }
        return result
    }

    /// True when every element is finite (no NaN, no infinity).
    public var isFinite: Bool { scalars.allSatisfy { $0.isFinite } }

    /// Largest absolute elementwise difference (for tests and diagnostics).
    public func maxAbsDifference(_ other: Tensor) throws -> Float {
        try other.checkShape(shape, "maxAbsDifference")
        var worst: Float = 0
        for i in 0..<count { worst = Swift.max(worst, abs(scalars[i] - other.scalars[i])) }
        return worst
    }
}
