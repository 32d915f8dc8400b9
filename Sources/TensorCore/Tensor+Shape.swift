/// Shape manipulation: reshape, axis permutation, batch slicing and concatenation.
extension Tensor {
    /// The same elements under a new shape; one extent may be `-1` and is inferred.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var resolved = newShape
        let inferred = newShape.indices.filter { newShape[$0] == -1 }
        guard inferred.count <= 1 else {
            throw TensorError.invalidShape(operation: "reshape", shape: newShape, reason: "more than one -1")
        }
        if let axis = inferred.first {
            resolved[axis] = 1
            let known = try Tensor.elementCount(of: resolved, operation: "reshape")
            guard known > 0, count % known == 0 else {
                throw TensorError.shapeMismatch(operation: "reshape", expected: shape, got: newShape)
            }
            resolved[axis] = count / known
        }
        let newCount = try Tensor.elementCount(of: resolved, operation: "reshape")
        guard newCount == count else {
            throw TensorError.shapeMismatch(operation: "reshape \(count) elements", expected: shape, got: newShape)
        }
        return Tensor(unchecked: resolved, scalars)
    }

    /// Reorders axes: result axis `i` is input axis `order[i]` (as `torch.permute`).
    public func permuted(_ order: [Int]) throws -> Tensor {
        guard order.count == rank, Set(order) == Set(0..<rank) else {
            throw TensorError.invalidArgument(operation: "permute", reason: "\(order) is not a permutation of 0..<\(rank)")
        }
        let outShape = order.map { shape[$0] }
        let inStrides = strides
        let gatherStrides = order.map { inStrides[$0] }
        var out = [Float](repeating: 0, count: count)
        var index = [Int](repeating: 0, count: rank)
        scalars.withUnsafeBufferPointer { x in
            var source = 0
            for flat in 0..<count {
                out[flat] = x[source]
                // Advance the multi-index like an odometer, updating the source offset.
                var axis = rank - 1
                while axis >= 0 {
                    index[axis] += 1
                    source += gatherStrides[axis]
                    if index[axis] < outShape[axis] { break }
                    source -= gatherStrides[axis] * outShape[axis]
                    index[axis] = 0
                    axis -= 1
                }
            }
        }
        return Tensor(unchecked: outShape, out)
    }

    /// Matrix transpose of a 2-D tensor.
    public func transposed() throws -> Tensor {
        try checkRank(2, "transpose", layout: "rows, columns")
        return try permuted([1, 0])
    }

    /// The items `range` along the first axis (a batch slice), copied.
    public func batch(_ range: Range<Int>) throws -> Tensor {
        guard rank >= 1, range.lowerBound >= 0, range.upperBound <= shape[0] else {
            throw TensorError.invalidArgument(operation: "batch", reason: "range \(range) out of bounds for shape \(shape)")
        }
        let itemCount = shape.dropFirst().reduce(1, *)
        var outShape = shape
        outShape[0] = range.count
        return Tensor(unchecked: outShape, Array(scalars[(range.lowerBound * itemCount)..<(range.upperBound * itemCount)]))
    }

    /// The items at `indices` along the first axis, in that order (for shuffled minibatches).
    public func gatheringBatch(_ indices: [Int]) throws -> Tensor {
        guard rank >= 1 else { throw TensorError.invalidArgument(operation: "gatheringBatch", reason: "scalar tensor") }
        let itemCount = shape.dropFirst().reduce(1, *)
        var outShape = shape
        outShape[0] = indices.count
        var out = [Float]()
        out.reserveCapacity(indices.count * itemCount)
        for index in indices {
            guard index >= 0 && index < shape[0] else {
                throw TensorError.invalidArgument(operation: "gatheringBatch", reason: "index \(index) out of bounds for \(shape[0]) items")
            }
            out.append(contentsOf: scalars[(index * itemCount)..<((index + 1) * itemCount)])
        }
        return Tensor(unchecked: outShape, out)
    }

    /// Stacks same-shaped tensors along the first axis (each contributes its items).
    public static func concatenatingBatches(_ parts: [Tensor]) throws -> Tensor {
        guard let first = parts.first else {
            throw TensorError.invalidArgument(operation: "concatenatingBatches", reason: "no tensors")
        }
        var total = 0
        for part in parts {
            guard part.rank >= 1, part.rank == first.rank, part.shape.dropFirst() == first.shape.dropFirst() else {
                throw TensorError.shapeMismatch(operation: "concatenatingBatches", expected: first.shape, got: part.shape)
            }
            total += part.shape[0]
        }
        var outShape = first.shape
        outShape[0] = total
        return Tensor(unchecked: outShape, parts.flatMap { $0.scalars })
    }
}
