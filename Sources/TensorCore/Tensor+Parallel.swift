/// Elementwise loops split across the kernel threads; used for activations on large
/// volume batches, where a single core leaves half the machine idle.
extension Tensor {
    /// Minimum elements per worker before a loop is split (smaller loops run inline).
    public static let parallelGrain = 1 << 16

    /// `transform` applied to every element, in parallel.
    @inlinable
    public func parallelMap(_ transform: @escaping (Float) -> Float) -> Tensor {
        Tensor(uninitializedShape: shape) { out in
            let o = out.baseAddress!
            withUnsafeBufferPointer { x in
                let xp = x.baseAddress!
                Engine.parallelRanges(count, minimumPerWorker: Tensor.parallelGrain) { range in
                    for i in range { o[i] = transform(xp[i]) }
                }
            }
        }
    }

    /// `combine(self[i], other[i])` for every element, in parallel. Shapes must match.
    @inlinable
    public func parallelZipMap(_ other: Tensor, _ operation: String, _ combine: @escaping (Float, Float) -> Float) throws -> Tensor {
        try other.checkShape(shape, operation)
        return Tensor(uninitializedShape: shape) { out in
            let o = out.baseAddress!
            withUnsafeBufferPointer { x in
                other.withUnsafeBufferPointer { y in
                    let (xp, yp) = (x.baseAddress!, y.baseAddress!)
                    Engine.parallelRanges(count, minimumPerWorker: Tensor.parallelGrain) { range in
                        for i in range { o[i] = combine(xp[i], yp[i]) }
                    }
                }
            }
        }
    }
}
