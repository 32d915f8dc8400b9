/// Reductions over the whole tensor or one axis. Sums accumulate in Double so that large
/// volumes (millions of voxels) do not lose precision.
extension Tensor {
    public func sum() -> Float {
        var total = 0.0
        for value in scalars { total += Double(value) }
        return Float(total)
    }

    /// `Σ x²` in Double, accumulated in fixed-size blocks split across the kernel threads
    /// (blocks are added in order, so the result does not depend on the thread count).
    public func sumOfSquares() -> Double {
        let block = Tensor.parallelGrain
        let blocks = (count + block - 1) / block
        var partial = [Double](repeating: 0, count: blocks)
        partial.withUnsafeMutableBufferPointer { sums in
            let target = sums.baseAddress!
            withUnsafeBufferPointer { x in
                let source = x.baseAddress!
                Engine.parallelRanges(blocks) { range in
                    for b in range {
                        var total: Float = 0
                        for i in (b * block)..<Swift.min(count, (b + 1) * block) { total += source[i] * source[i] }
                        target[b] = Double(total)
                    }
                }
            }
        }
        return partial.reduce(0, +)
    }

    public func mean() -> Float { count == 0 ? .nan : Float(Double(sum()) / Double(count)) }

    public func max() -> Float { scalars.max() ?? -.infinity }
    public func min() -> Float { scalars.min() ?? .infinity }

    /// `(outer, extent, inner)` around `axis`, after checking it.
    private func split(at axis: Int, _ operation: String) throws -> (Int, Int, Int) {
        guard axis >= 0 && axis < rank else {
            throw TensorError.invalidArgument(operation: operation, reason: "axis \(axis) out of range for shape \(shape)")
        }
        return (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }

    private func reduce(
        axis: Int, keepingDimension: Bool, _ operation: String,
        _ body: (_ read: (Int) -> Float, _ extent: Int) -> Float
    ) throws -> Tensor {
        let (outer, extent, inner) = try split(at: axis, operation)
        var outShape = shape
        if keepingDimension { outShape[axis] = 1 } else { outShape.remove(at: axis) }
        var out = [Float](repeating: 0, count: outer * inner)
        scalars.withUnsafeBufferPointer { x in
            for o in 0..<outer {
                for i in 0..<inner {
                    let base = o * extent * inner + i
                    out[o * inner + i] = body({ x[base + $0 * inner] }, extent)
                }
            }
        }
        return Tensor(unchecked: outShape, out)
    }

    /// Sum along `axis` (removed from the shape unless `keepingDimension`). Rows are added
    /// into Double accumulators in memory order, which keeps the loop streaming.
    public func sum(axis: Int, keepingDimension: Bool = false) throws -> Tensor {
        let (outer, extent, inner) = try split(at: axis, "sum(axis:)")
        var outShape = shape
        if keepingDimension { outShape[axis] = 1 } else { outShape.remove(at: axis) }
        var totals = [Double](repeating: 0, count: outer * inner)
        scalars.withUnsafeBufferPointer { x in
            totals.withUnsafeMutableBufferPointer { acc in
                for o in 0..<outer {
                    let target = acc.baseAddress! + o * inner
                    for j in 0..<extent {
                        let row = x.baseAddress! + (o * extent + j) * inner
                        for i in 0..<inner { target[i] += Double(row[i]) }
                    }
                }
            }
        }
        return Tensor(unchecked: outShape, totals.map { Float($0) })
    }

    /// Mean along `axis`.
    public func mean(axis: Int, keepingDimension: Bool = false) throws -> Tensor {
        let extent = try split(at: axis, "mean(axis:)").1
        return try sum(axis: axis, keepingDimension: keepingDimension).scaled(by: 1 / Float(extent))
    }

    /// Maximum along `axis`.
    public func max(axis: Int, keepingDimension: Bool = false) throws -> Tensor {
        try reduce(axis: axis, keepingDimension: keepingDimension, "max(axis:)") { read, extent in
            var best = -Float.infinity
            for j in 0..<extent { best = Swift.max(best, read(j)) }
            return best
        }
    }

    /// Index of the first maximum along `axis`, as integers in the reduced shape's row-major
    /// order (NaN compares as never larger).
    public func argmax(axis: Int) throws -> [Int] {
        let (outer, extent, inner) = try split(at: axis, "argmax(axis:)")
        var result = [Int](repeating: 0, count: outer * inner)
        scalars.withUnsafeBufferPointer { x in
            for o in 0..<outer {
                for i in 0..<inner {
                    let base = o * extent * inner + i
                    var best = -Float.infinity
                    for j in 0..<extent where x[base + j * inner] > best {
                        best = x[base + j * inner]
                        result[o * inner + i] = j
                    }
                }
            }
        }
        return result
    }
}
