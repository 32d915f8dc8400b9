import Testing
import TensorCore
import TestSupport

/// Elementwise arithmetic, bias broadcast, reductions and the parallel elementwise loops.
@Suite struct TensorOpsTests {
    // MARK: Elementwise

    @Test func binaryOperationsMatchNaive() throws {
        let a = TestSupport.randomTensor([3, 4, 5], seed: 1)
        let b = TestSupport.randomTensor([3, 4, 5], seed: 2, low: 0.5, high: 2)
        let cases: [(String, Tensor, (Double, Double) -> Double)] = [
            ("add", try a.adding(b), { $0 + $1 }),
            ("subtract", try a.subtracting(b), { $0 - $1 }),
            ("multiply", try a.multiplying(b), { $0 * $1 }),
            ("divide", try a.dividing(b), { $0 / $1 }),
            ("zipMap", try a.zipMap(b, "custom") { 2 * $0 - $1 * $1 }, { 2 * $0 - $1 * $1 }),
        ]
        for (name, result, op) in cases {
            #expect(result.shape == a.shape)
            let expected = (0..<a.count).map { op(Double(a.scalars[$0]), Double(b.scalars[$0])) }
            expectClose(result.scalars, expected, rtol: 1e-6, atol: 1e-6, name)
        }
        expectClose(a.scaled(by: -2.5).scalars, a.scalars.map { Double($0) * -2.5 }, rtol: 1e-6, atol: 0, "scaled")
        expectClose(a.adding(scalar: 0.75).scalars, a.scalars.map { Double($0) + 0.75 }, rtol: 1e-6, atol: 1e-7, "adding scalar")
        expectClose(a.map { $0 * $0 }.scalars, a.scalars.map { Double($0) * Double($0) }, rtol: 1e-6, atol: 0, "map")
    }

    @Test func zipMapShapeMismatchThrows() {
        let a = TestSupport.randomTensor([3, 4], seed: 3)
        for other in [TestSupport.randomTensor([4, 3], seed: 4), TestSupport.randomTensor([12], seed: 5), TestSupport.randomTensor([3, 4, 1], seed: 6)] {
            let error = #expect(throws: TensorError.self) { try a.zipMap(other, "test") { $0 + $1 } }
            #expect(error?.isShapeMismatch == true, "\(other.shape)")
            #expect(throws: TensorError.self) { try a.adding(other) }
            #expect(throws: TensorError.self) { try a.maxAbsDifference(other) }
        }
    }

    @Test func addScaledIsSaxpy() throws {
        var y = TestSupport.randomTensor([4, 7], seed: 7)
        let y0 = y
        let x = TestSupport.randomTensor([4, 7], seed: 8)
        try y.addScaled(x, alpha: -0.3)
        expectClose(y.scalars, (0..<y.count).map { Double(y0.scalars[$0]) - 0.3 * Double(x.scalars[$0]) }, rtol: 1e-6, atol: 1e-6)
        try y.addScaled(x)
        expectClose(y.scalars, (0..<y.count).map { Double(y0.scalars[$0]) + 0.7 * Double(x.scalars[$0]) }, rtol: 1e-5, atol: 1e-6)
        let error = #expect(throws: TensorError.self) { try y.addScaled(TestSupport.randomTensor([7, 4], seed: 9)) }
        #expect(error?.isShapeMismatch == true)
    }

    @Test func fillIsFiniteAndMaxAbsDifference() throws {
        var t = TestSupport.randomTensor([2, 5], seed: 10)
        let u = TestSupport.randomTensor([2, 5], seed: 11)
        let expected = zip(t.scalars, u.scalars).map { abs($0 - $1) }.max()!
        #expect(try t.maxAbsDifference(u) == expected)
        #expect(t.isFinite)
        t[1, 3] = .nan
        #expect(!t.isFinite)
        t.fill(.infinity)
        #expect(!t.isFinite)
        t.fill(2)
        #expect(t.scalars == [Float](repeating: 2, count: 10) && t.shape == [2, 5])
    }

    // MARK: Bias

    @Test(arguments: [0, 1, 2, 4])
    func addingBiasAlongAxisOfRank5(axis: Int) throws {
        let shape = [2, 3, 2, 2, 3]
        let x = TestSupport.randomTensor(shape, seed: 12)
        let bias = TestSupport.randomTensor([shape[axis]], seed: 13)
        let y = try x.addingBias(bias, axis: axis)
        #expect(y.shape == shape)
        let strides = Reference.strides(shape)
        var expected = [Double](repeating: .nan, count: x.count)
        for index in Reference.multiIndices(shape) {
            let flat = zip(index, strides).map(*).reduce(0, +)
            expected[flat] = Double(x.scalars[flat]) + Double(bias.scalars[index[axis]])
        }
        expectClose(y.scalars, expected, rtol: 1e-6, atol: 1e-6, "axis \(axis)")
    }

    @Test func addingBiasRejectsBadArguments() {
        let x = TestSupport.randomTensor([2, 3, 4], seed: 14)
        #expect((#expect(throws: TensorError.self) { try x.addingBias(Tensor(zeros: [4]), axis: 1) })?.isShapeMismatch == true)
        #expect((#expect(throws: TensorError.self) { try x.addingBias(Tensor(zeros: [3, 1]), axis: 1) })?.isShapeMismatch == true)
        #expect((#expect(throws: TensorError.self) { try x.addingBias(Tensor(zeros: [3]), axis: 3) })?.isInvalidArgument == true)
        #expect((#expect(throws: TensorError.self) { try x.addingBias(Tensor(zeros: [3]), axis: -1) })?.isInvalidArgument == true)
    }

    // MARK: Reductions

    @Test func wholeTensorReductions() {
        let t = TestSupport.randomTensor([3, 4, 5], seed: 15)
        let total = t.scalars.reduce(0.0) { $0 + Double($1) }
        #expect(abs(Double(t.sum()) - total) <= 1e-5)
        #expect(abs(Double(t.mean()) - total / 60) <= 1e-6)
        #expect(t.max() == t.scalars.reduce(-Float.infinity) { Swift.max($0, $1) })
        #expect(t.min() == t.scalars.reduce(Float.infinity) { Swift.min($0, $1) })
        let empty = Tensor(zeros: [0, 3])
        #expect(empty.sum() == 0)
        #expect(empty.mean().isNaN)
        #expect(empty.max() == -.infinity && empty.min() == .infinity)
    }

    @Test func sumAccumulatesInDouble() {
        // 2^24 + 1 + 1 + ... is not representable step by step in Float.
        var values = [Float](repeating: 1, count: 1001)
        values[0] = 16_777_216
        let t = try! Tensor(shape: [1001], scalars: values)
        #expect(t.sum() == 16_778_216)
    }

    @Test(arguments: [0, 1, 2])
    func axisReductionsMatchNaive(axis: Int) throws {
        let shape = [3, 4, 5]
        let t = TestSupport.randomTensor(shape, seed: 16)
        let reducedShape = shape.enumerated().filter { $0.offset != axis }.map(\.element)
        var keptShape = shape
        keptShape[axis] = 1
        let strides = Reference.strides(shape)
        var sums: [Double] = []
        var maxima: [Double] = []
        var argmaxes: [Int] = []
        for outer in Reference.multiIndices(reducedShape) {
            var total = 0.0
            var best = -Double.infinity
            var bestIndex = -1
            for j in 0..<shape[axis] {
                var index = outer
                index.insert(j, at: axis)
                let value = Double(t.scalars[zip(index, strides).map(*).reduce(0, +)])
                total += value
                if value > best { best = value; bestIndex = j }
            }
            sums.append(total)
            maxima.append(best)
            argmaxes.append(bestIndex)
        }
        let sum = try t.sum(axis: axis)
        #expect(sum.shape == reducedShape)
        expectClose(sum.scalars, sums, rtol: 1e-6, atol: 1e-6, "sum axis \(axis)")
        #expect(try t.sum(axis: axis, keepingDimension: true).shape == keptShape)
        #expect(try t.sum(axis: axis, keepingDimension: true).scalars == sum.scalars)

        let mean = try t.mean(axis: axis)
        #expect(mean.shape == reducedShape)
        expectClose(mean.scalars, sums.map { $0 / Double(shape[axis]) }, rtol: 1e-5, atol: 1e-6, "mean axis \(axis)")
        #expect(try t.mean(axis: axis, keepingDimension: true).shape == keptShape)

        let maximum = try t.max(axis: axis)
        #expect(maximum.shape == reducedShape)
        #expect(maximum.scalars.map(Double.init) == maxima, "max axis \(axis)")
        #expect(try t.max(axis: axis, keepingDimension: true).shape == keptShape)

        #expect(try t.argmax(axis: axis) == argmaxes, "argmax axis \(axis)")
    }

    @Test func argmaxPicksFirstOfTies() throws {
        let t = try Tensor(shape: [2, 4], scalars: [1, 3, 3, 0, -2, -2, -2, -2])
        #expect(try t.argmax(axis: 1) == [1, 0])
        #expect(try t.argmax(axis: 0) == [0, 0, 0, 0])
    }

    @Test func reductionsRejectBadAxis() {
        let t = TestSupport.randomTensor([2, 3], seed: 17)
        for axis in [-1, 2] {
            #expect((#expect(throws: TensorError.self) { try t.sum(axis: axis) })?.isInvalidArgument == true)
            #expect((#expect(throws: TensorError.self) { try t.mean(axis: axis) })?.isInvalidArgument == true)
            #expect((#expect(throws: TensorError.self) { try t.max(axis: axis) })?.isInvalidArgument == true)
            #expect((#expect(throws: TensorError.self) { try t.argmax(axis: axis) })?.isInvalidArgument == true)
        }
    }

    // MARK: Parallel elementwise

    /// Large enough that two workers each get more than `parallelGrain` elements.
    static let parallelCount = 2 * Tensor.parallelGrain + 4_321

    @Test func parallelMapEqualsSerialMap() {
        let x = TestSupport.randomTensor([Self.parallelCount], seed: 18, low: -3, high: 3)
        let transform: @Sendable (Float) -> Float = { $0 > 0 ? $0 * 1.5 : $0 * 0.01 - 1 }
        let serial = x.map(transform)
        let parallel = x.parallelMap(transform)
        #expect(parallel.shape == x.shape)
        #expect(parallel == serial)
        // And against an index-by-index reference, including both ends of the range.
        #expect(parallel.scalars[0] == transform(x.scalars[0]))
        #expect(parallel.scalars[Self.parallelCount - 1] == transform(x.scalars[Self.parallelCount - 1]))
        // Small tensors take the inline path.
        let small = TestSupport.randomTensor([3, 7], seed: 19)
        #expect(small.parallelMap(transform) == small.map(transform))
    }

    @Test func parallelZipMapEqualsSerialZipMap() throws {
        let shape = [3, Self.parallelCount / 3]
        let a = TestSupport.randomTensor(shape, seed: 20)
        let b = TestSupport.randomTensor(shape, seed: 21)
        let combine: @Sendable (Float, Float) -> Float = { $0 * $1 + $0 }
        let serial = try a.zipMap(b, "serial", combine)
        let parallel = try a.parallelZipMap(b, "parallel", combine)
        #expect(parallel.shape == shape)
        #expect(parallel == serial)
        let error = #expect(throws: TensorError.self) { try a.parallelZipMap(TestSupport.randomTensor([shape[1], 3], seed: 22), "bad", combine) }
        #expect(error?.isShapeMismatch == true)
    }
}
