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
        var result = self
        try result.addBias(bias, axis: axis)
        return result
    }

    /// In-place `addingBias(_:axis:)`; planes are split across the kernel threads.
    public mutating func addBias(_ bias: Tensor, axis: Int) throws {
        guard axis >= 0 && axis < rank else {
            throw TensorError.invalidArgument(operation: "addBias", reason: "axis \(axis) out of range for shape \(shape)")
        }
        try bias.checkShape([shape[axis]], "addBias")
        let channels = shape[axis]
        let inner = shape[(axis + 1)...].reduce(1, *)
        let planes = shape[...axis].reduce(1, *)
        withUnsafeMutableBufferPointer { out in
            let base = out.baseAddress!
            bias.withUnsafeBufferPointer { b in
                Engine.parallelRanges(planes, minimumPerWorker: Swift.max(1, Tensor.parallelGrain / Swift.max(1, inner))) { range in
                    for plane in range {
                        let value = b[plane % channels]
                        let row = base + plane * inner
                        for i in 0..<inner { row[i] += value }
                    }
                }
            }
        }
    }

    /// Sums of `[N, C, ...]` over every axis except axis 1: `[C]` (per-channel totals, as the
    /// bias gradient of a convolution). Each (sample, channel) plane is summed by one worker
    /// and the planes are added in order, so the result is reproducible.
    public func channelSums() throws -> Tensor {
        guard rank >= 2 else {
            throw TensorError.invalidShape(operation: "channelSums", shape: shape, reason: "expected [N, C, ...]")
        }
        let (n, c) = (shape[0], shape[1])
        let inner = count / Swift.max(1, n * c)
        var planeSums = [Double](repeating: 0, count: n * c)
        planeSums.withUnsafeMutableBufferPointer { sums in
            let target = sums.baseAddress!
            withUnsafeBufferPointer { x in
                let source = x.baseAddress!
                Engine.parallelRanges(n * c, minimumPerWorker: Swift.max(1, Tensor.parallelGrain / Swift.max(1, inner))) { range in
                    for plane in range {
                        let row = source + plane * inner
                        var total = 0.0
                        for i in 0..<inner { total += Double(row[i]) }
                        target[plane] = total
                    }
                }
            }
        }
        var totals = [Double](repeating: 0, count: c)
        for plane in 0..<(n * c) { totals[plane % c] += planeSums[plane] }
        return Tensor(unchecked: [c], totals.map { Float($0) })
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
