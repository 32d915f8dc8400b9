import Testing
import TensorCore
import TestSupport

/// Construction, reshape, permutation, batch slicing/gathering/concatenation.
@Suite struct TensorShapeTests {
    // MARK: Construction

    @Test func initKeepsShapeAndScalars() throws {
        let values: [Float] = (0..<6).map { Float($0) * 1.5 - 2 }
        let t = try Tensor(shape: [2, 3], scalars: values)
        #expect(t.shape == [2, 3])
        #expect(t.scalars == values)
        #expect(t.rank == 2)
        #expect(t.count == 6)
        #expect(t.strides == [3, 1])
        // Subscript follows row-major order.
        for r in 0..<2 { for c in 0..<3 { #expect(t[r, c] == values[r * 3 + c]) } }
    }

    @Test func scalarAndEmptyShapes() throws {
        let s = try Tensor(shape: [], scalars: [4])
        #expect(s.rank == 0 && s.count == 1 && s.scalars == [4])
        #expect(Tensor(scalar: 4) == s)
        let empty = try Tensor(shape: [0, 3], scalars: [])
        #expect(empty.count == 0 && empty.shape == [0, 3])
    }

    @Test func initWithMismatchedCountThrowsShapeMismatch() {
        let error = #expect(throws: TensorError.self) { try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5]) }
        #expect(error?.isShapeMismatch == true, "\(String(describing: error))")
        if case let .shapeMismatch(_, expected, got)? = error {
            #expect(expected == [6])
            #expect(got == [5])
        }
        let tooMany = #expect(throws: TensorError.self) { try Tensor(shape: [], scalars: [1, 2]) }
        #expect(tooMany?.isShapeMismatch == true)
    }

    @Test(arguments: [[-1, 3], [2, -3], [Int.max, 2], [2, Int.max / 2 + 1], [1 << 32, 1 << 32]])
    func invalidShapeThrows(shape: [Int]) {
        let error = #expect(throws: TensorError.self) { try Tensor(shape: shape, scalars: []) }
        #expect(error?.isInvalidShape == true, "\(String(describing: error))")
        let direct = #expect(throws: TensorError.self) { try Tensor.elementCount(of: shape, operation: "test") }
        #expect(direct?.isInvalidShape == true)
    }

    @Test func elementCountAndStrides() throws {
        #expect(try Tensor.elementCount(of: [2, 3, 4], operation: "t") == 24)
        #expect(try Tensor.elementCount(of: [], operation: "t") == 1)
        #expect(try Tensor.elementCount(of: [5, 0, 7], operation: "t") == 0)
        for shape in [[2, 3, 4], [5], [1, 1, 3, 2, 6], [4, 0, 2]] {
            #expect(Tensor.contiguousStrides(shape) == Reference.strides(shape))
        }
    }

    @Test func subscriptWriteUpdatesRowMajorElement() {
        var t = Tensor(zeros: [2, 3, 4])
        t[1, 2, 3] = 7
        t[0, 1, 2] = -1
        #expect(t.scalars[1 * 12 + 2 * 4 + 3] == 7)
        #expect(t.scalars[0 * 12 + 1 * 4 + 2] == -1)
        #expect(t.sum() == 6)
    }

    @Test func copyOnWriteKeepsOriginal() {
        let original = TestSupport.randomTensor([3, 4], seed: 1)
        var copy = original
        copy[0, 0] = 100
        copy.fill(3)
        #expect(original == TestSupport.randomTensor([3, 4], seed: 1))
        #expect(copy.scalars.allSatisfy { $0 == 3 })
    }

    // MARK: Reshape

    @Test func reshapeInfersMinusOne() throws {
        let t = TestSupport.randomTensor([2, 3, 4], seed: 2)
        for (request, resolved) in [([4, -1], [4, 6]), ([-1], [24]), ([3, -1, 2], [3, 4, 2]), ([-1, 24], [1, 24]), ([2, 3, 4], [2, 3, 4])] {
            let r = try t.reshaped(request)
            #expect(r.shape == resolved, "reshape \(request)")
            #expect(r.scalars == t.scalars, "reshape \(request) must keep row-major order")
        }
    }

    @Test func badReshapeThrows() {
        let t = TestSupport.randomTensor([2, 3, 4], seed: 3)
        // Wrong total.
        #expect((#expect(throws: TensorError.self) { try t.reshaped([5, 5]) })?.isShapeMismatch == true)
        // -1 cannot divide the remainder.
        #expect((#expect(throws: TensorError.self) { try t.reshaped([5, -1]) })?.isShapeMismatch == true)
        // -1 next to a zero extent is ambiguous.
        #expect((#expect(throws: TensorError.self) { try t.reshaped([0, -1]) })?.isShapeMismatch == true)
        // Two -1s.
        #expect((#expect(throws: TensorError.self) { try t.reshaped([-1, -1]) })?.isInvalidShape == true)
        // Other negative extents.
        #expect((#expect(throws: TensorError.self) { try t.reshaped([-2, -12]) })?.isInvalidShape == true)
        #expect((#expect(throws: TensorError.self) { try t.reshaped([-1, -2]) })?.isInvalidShape == true)
    }

    // MARK: Permute

    @Test(arguments: [[2, 0, 3, 1], [3, 2, 1, 0], [0, 1, 2, 3], [1, 3, 0, 2]])
    func permutedMatchesNaiveIndexLoop(order: [Int]) throws {
        let shape = [2, 3, 4, 5]
        let t = TestSupport.randomTensor(shape, seed: 4)
        let p = try t.permuted(order)
        let outShape = order.map { shape[$0] }
        #expect(p.shape == outShape)
        var expected = [Float](repeating: .nan, count: t.count)
        let inStrides = Reference.strides(shape)
        let outStrides = Reference.strides(outShape)
        for index in Reference.multiIndices(shape) {
            // Output axis a is input axis order[a].
            let outIndex = order.map { index[$0] }
            let outFlat = zip(outIndex, outStrides).map(*).reduce(0, +)
            let inFlat = zip(index, inStrides).map(*).reduce(0, +)
            expected[outFlat] = t.scalars[inFlat]
        }
        #expect(p.scalars == expected)
        // Undoing the permutation restores the original.
        var inverse = [Int](repeating: 0, count: order.count)
        for (a, o) in order.enumerated() { inverse[o] = a }
        #expect(try p.permuted(inverse) == t)
    }

    @Test func permutedRejectsNonPermutations() {
        let t = TestSupport.randomTensor([2, 3, 4], seed: 5)
        for order in [[0, 0, 1], [0, 1], [0, 1, 3], [0, 1, 2, 3], [-1, 0, 1]] {
            let error = #expect(throws: TensorError.self) { try t.permuted(order) }
            #expect(error?.isInvalidArgument == true, "order \(order)")
        }
    }

    @Test func transposedMatchesNaive() throws {
        let t = TestSupport.randomTensor([3, 5], seed: 6)
        let tt = try t.transposed()
        #expect(tt.shape == [5, 3])
        for r in 0..<3 { for c in 0..<5 { #expect(tt[c, r] == t[r, c]) } }
        let error = #expect(throws: TensorError.self) { try TestSupport.randomTensor([2, 3, 4], seed: 1).transposed() }
        #expect(error?.isInvalidShape == true)
    }

    // MARK: Batches

    @Test func batchSliceCopiesItems() throws {
        let t = TestSupport.randomTensor([5, 2, 3], seed: 7)
        let b = try t.batch(1..<4)
        #expect(b.shape == [3, 2, 3])
        for i in 0..<3 { for j in 0..<2 { for k in 0..<3 { #expect(b[i, j, k] == t[i + 1, j, k]) } } }
        let whole = try t.batch(0..<5)
        #expect(whole == t)
        let none = try t.batch(2..<2)
        #expect(none.shape == [0, 2, 3] && none.count == 0)
    }

    @Test func batchOutOfRangeThrows() {
        let t = TestSupport.randomTensor([5, 2, 3], seed: 8)
        for range in [3..<6, -1..<2, 5..<7] {
            let error = #expect(throws: TensorError.self) { try t.batch(range) }
            #expect(error?.isInvalidArgument == true, "range \(range)")
        }
        #expect(throws: TensorError.self) { try Tensor(scalar: 1).batch(0..<1) }
    }

    @Test func gatheringBatchFollowsIndexOrder() throws {
        let t = TestSupport.randomTensor([5, 2, 3], seed: 9)
        let indices = [4, 0, 2, 0, 3]
        let g = try t.gatheringBatch(indices)
        #expect(g.shape == [5, 2, 3])
        for (i, source) in indices.enumerated() {
            for j in 0..<2 { for k in 0..<3 { #expect(g[i, j, k] == t[source, j, k]) } }
        }
        #expect(try t.gatheringBatch([]).shape == [0, 2, 3])
    }

    @Test func gatheringBatchOutOfRangeThrows() {
        let t = TestSupport.randomTensor([5, 2], seed: 10)
        for indices in [[5], [0, -1], [1, 2, 7]] {
            let error = #expect(throws: TensorError.self) { try t.gatheringBatch(indices) }
            #expect(error?.isInvalidArgument == true, "indices \(indices)")
        }
        #expect(throws: TensorError.self) { try Tensor(scalar: 1).gatheringBatch([0]) }
    }

    @Test func concatenatingBatchesStacksInOrder() throws {
        let parts = [
            TestSupport.randomTensor([2, 3, 2], seed: 11),
            TestSupport.randomTensor([1, 3, 2], seed: 12),
            TestSupport.randomTensor([0, 3, 2], seed: 13),
            TestSupport.randomTensor([3, 3, 2], seed: 14),
        ]
        let c = try Tensor.concatenatingBatches(parts)
        #expect(c.shape == [6, 3, 2])
        var row = 0
        for part in parts {
            for i in 0..<part.shape[0] {
                for j in 0..<3 { for k in 0..<2 { #expect(c[row, j, k] == part[i, j, k]) } }
                row += 1
            }
        }
        // Round trip with batch slicing.
        #expect(try c.batch(3..<6) == parts[3])
    }

    @Test func concatenatingBatchesRejectsMismatches() {
        let a = TestSupport.randomTensor([2, 3], seed: 15)
        let shapeError = #expect(throws: TensorError.self) {
            try Tensor.concatenatingBatches([a, TestSupport.randomTensor([2, 4], seed: 16)])
        }
        #expect(shapeError?.isShapeMismatch == true)
        let rankError = #expect(throws: TensorError.self) {
            try Tensor.concatenatingBatches([a, TestSupport.randomTensor([2, 3, 1], seed: 17)])
        }
        #expect(rankError?.isShapeMismatch == true)
        let emptyError = #expect(throws: TensorError.self) { try Tensor.concatenatingBatches([]) }
        #expect(emptyError?.isInvalidArgument == true)
    }

    /// Regression: rank-0 parts used to trap (index out of range on `shape[0]`) instead of
    /// throwing, unlike `batch` and `gatheringBatch`.
    @Test func concatenatingScalarsThrows() {
        #expect(throws: TensorError.self) { try Tensor.concatenatingBatches([Tensor(scalar: 1), Tensor(scalar: 2)]) }
        #expect(throws: TensorError.self) { try Tensor.concatenatingBatches([Tensor(scalar: 1)]) }
        #expect(throws: TensorError.self) { try Tensor.concatenatingBatches([Tensor(zeros: [1, 2]), Tensor(scalar: 1)]) }
    }
}

@Test func emptyShapesWhoseOtherExtentsOverflowAreRefused() {
    #expect(throws: TensorError.self) { try Tensor(shape: [0, 1 << 62, 4], scalars: []) }
    #expect((try? Tensor(shape: [0, 3, 4], scalars: []))?.count == 0)
}

@Test func argmaxIsExactBeyondFloatIntegerRange() throws {
    let n = (1 << 24) + 3
    var values = [Float](repeating: 0, count: n)
    values[n - 1] = 1
    #expect(try Tensor(shape: [n], scalars: values).argmax(axis: 0) == [n - 1])
}
