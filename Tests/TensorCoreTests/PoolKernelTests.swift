import Testing
import TensorCore
import TestSupport

struct PoolCase: Sendable, CustomTestStringConvertible {
    var name: String
    var shape: [Int]  // [N, C, D, H, W]
    var kernel: Triple
    var stride: Triple
    var testDescription: String { name }
    var input: Triple { Triple(shape[2], shape[3], shape[4]) }

    static let all: [PoolCase] = [
        PoolCase(name: "k2 s2 even", shape: [2, 3, 4, 4, 6], kernel: Triple(2), stride: Triple(2)),
        PoolCase(name: "k2 s2 floor drops a border", shape: [1, 2, 5, 4, 7], kernel: Triple(2), stride: Triple(2)),
        PoolCase(name: "k3 s(1,2,1) overlapping", shape: [2, 2, 5, 5, 4], kernel: Triple(3), stride: Triple(1, 2, 1)),
        PoolCase(name: "k(2,3,1) s1 overlapping, anisotropic", shape: [1, 3, 3, 5, 4], kernel: Triple(2, 3, 1), stride: Triple(1)),
        PoolCase(name: "k(1,2,3) s(2,1,2)", shape: [2, 1, 4, 3, 7], kernel: Triple(1, 2, 3), stride: Triple(2, 1, 2)),
        // Output W >= 8: the vectorised 2x2x2 path (eight outputs at a time) plus a scalar tail.
        PoolCase(name: "k2 s2 vector block + tail", shape: [1, 2, 4, 5, 21], kernel: Triple(2), stride: Triple(2)),
        PoolCase(name: "k2 s2 two vector blocks, odd W", shape: [2, 1, 2, 2, 33], kernel: Triple(2), stride: Triple(2)),
    ]
}

/// Naive pooling references: every window of every plane, in Double.
enum PoolReference {
    /// `body(plane, outFlatInPlane, windowInPlaneFlatIndices)` for every output element.
    static func forEachWindow(shape: [Int], kernel: Triple, stride: Triple, _ body: (Int, Int, [Int]) -> Void) {
        let (d, h, w) = (shape[2], shape[3], shape[4])
        let od = (d - kernel.d) / stride.d + 1, oh = (h - kernel.h) / stride.h + 1, ow = (w - kernel.w) / stride.w + 1
        for plane in 0..<(shape[0] * shape[1]) {
            var o = 0
            for zo in 0..<od { for yo in 0..<oh { for xo in 0..<ow {
                var window: [Int] = []
                for a in 0..<kernel.d { for b in 0..<kernel.h { for c in 0..<kernel.w {
                    window.append(((zo * stride.d + a) * h + (yo * stride.h + b)) * w + (xo * stride.w + c))
                } } }
                body(plane, o, window)
                o += 1
            } } }
        }
    }

    /// Max values and indices (within the plane) by PyTorch's CPU rule, scanning the window in
    /// (d, h, w) order from −∞: an element wins when `value > best || value.isNaN`, so the
    /// first maximum wins ties, a NaN propagates, and the last NaN of a window is reported.
    static func maxPool(_ x: Tensor, kernel: Triple, stride: Triple) -> (values: [Float], indices: [Int]) {
        let inPlane = x.shape[2...].reduce(1, *)
        var values: [Float] = [], indices: [Int] = []
        forEachWindow(shape: x.shape, kernel: kernel, stride: stride) { plane, _, window in
            var best = -Float.infinity
            var bestIndex = window[0]
            for i in window {
                let value = x.scalars[plane * inPlane + i]
                if value > best || value.isNaN { (best, bestIndex) = (value, i) }
            }
            values.append(best)
            indices.append(bestIndex)
        }
        return (values, indices)
    }

    /// Equal, counting NaN as equal to NaN.
    static func sameValues(_ a: [Float], _ b: [Float]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
    }

    static func avgPool(_ x: Tensor, kernel: Triple, stride: Triple) -> [Double] {
        let inPlane = x.shape[2...].reduce(1, *)
        var result: [Double] = []
        forEachWindow(shape: x.shape, kernel: kernel, stride: stride) { plane, _, window in
            result.append(window.reduce(0.0) { $0 + Double(x.scalars[plane * inPlane + $1]) } / Double(window.count))
        }
        return result
    }

    static func avgPoolBackward(_ dy: Tensor, inputShape: [Int], kernel: Triple, stride: Triple) -> [Double] {
        let inPlane = inputShape[2...].reduce(1, *)
        let outPlane = dy.shape[2...].reduce(1, *)
        var dx = [Double](repeating: 0, count: inputShape.reduce(1, *))
        forEachWindow(shape: inputShape, kernel: kernel, stride: stride) { plane, o, window in
            let share = Double(dy.scalars[plane * outPlane + o]) / Double(window.count)
            for i in window { dx[plane * inPlane + i] += share }
        }
        return dx
    }
}

@Suite struct PoolKernelTests {
    static func output(_ c: PoolCase) throws -> Triple {
        try Pool3dKernels.outputExtent(input: c.input, kernel: c.kernel, stride: c.stride, operation: "test")
    }

    @Test(arguments: PoolCase.all)
    func maxPoolMatchesNaive(_ c: PoolCase) throws {
        let out = try Self.output(c)
        let x = TestSupport.randomTensor(c.shape, seed: UInt64(c.shape.reduce(1, *)))
        let (pooled, indices) = Pool3dKernels.maxPool(x, kernel: c.kernel, stride: c.stride, output: out)
        #expect(pooled.shape == [c.shape[0], c.shape[1], out.d, out.h, out.w])
        let reference = PoolReference.maxPool(x, kernel: c.kernel, stride: c.stride)
        #expect(pooled.scalars == reference.values, "values \(c.name)")
        #expect(indices.map(Int.init) == reference.indices, "indices \(c.name)")
    }

    @Test(arguments: PoolCase.all)
    func maxPoolTiesPickFirstInWindow(_ c: PoolCase) throws {
        let out = try Self.output(c)
        // Values from {0, 1, 2}: many ties; PyTorch keeps the first maximum in scan order.
        let x = TestSupport.randomTensor(c.shape, seed: 7, low: 0, high: 3).map { $0.rounded(.down) }
        let (pooled, indices) = Pool3dKernels.maxPool(x, kernel: c.kernel, stride: c.stride, output: out)
        let reference = PoolReference.maxPool(x, kernel: c.kernel, stride: c.stride)
        #expect(pooled.scalars == reference.values)
        #expect(indices.map(Int.init) == reference.indices)
    }

    @Test(arguments: PoolCase.all)
    func maxPoolPropagatesNaN(_ c: PoolCase) throws {
        let out = try Self.output(c)
        // One element in 2·|window| is NaN: windows with none, one and several of them.
        var x = TestSupport.randomTensor(c.shape, seed: 21)
        var g = Xoshiro256StarStar(seed: 22)
        let rate = 1 / Float(2 * c.kernel.product)
        for i in 0..<x.count where g.nextUnitFloat() < rate { x[flat: i] = .nan }
        let (pooled, indices) = Pool3dKernels.maxPool(x, kernel: c.kernel, stride: c.stride, output: out)
        let reference = PoolReference.maxPool(x, kernel: c.kernel, stride: c.stride)
        #expect(reference.values.contains { $0.isNaN } && reference.values.contains { !$0.isNaN })
        #expect(PoolReference.sameValues(pooled.scalars, reference.values), "values \(c.name)")
        #expect(indices.map(Int.init) == reference.indices, "indices \(c.name)")
    }

    @Test func maxPoolNaNBeatsLaterLargerValues() throws {
        // NaN first, then larger values: the NaN must survive (it used to be replaced).
        for k in [Triple(2), Triple(3)] {
            var x = TestSupport.randomTensor([1, 1, k.d, k.h, k.w], seed: 23)
            x[flat: 0] = .nan
            x[flat: x.count - 1] = 100
            let (pooled, indices) = Pool3dKernels.maxPool(x, kernel: k, stride: k, output: Triple(1))
            #expect(pooled.scalars[0].isNaN, "kernel \(k)")
            #expect(indices[0] == 0, "kernel \(k)")
        }
    }

    @Test func maxPoolAllNegativeInfinityAndNaN() throws {
        // A window of −∞ still reports an index inside the window; a NaN wins as in PyTorch.
        var x = Tensor(repeating: -.infinity, shape: [1, 1, 2, 2, 4])
        x[0, 0, 1, 1, 3] = .nan
        let (pooled, indices) = Pool3dKernels.maxPool(x, kernel: Triple(2), stride: Triple(2), output: Triple(1, 1, 2))
        #expect(pooled.scalars[0] == -.infinity)
        #expect(indices[0] == 0)
        #expect(pooled.scalars[1].isNaN)
        #expect(indices[1] == (1 * 2 + 1) * 4 + 3)
    }

    @Test(arguments: PoolCase.all)
    func maxPoolBackwardRoutesToArgmax(_ c: PoolCase) throws {
        let out = try Self.output(c)
        let x = TestSupport.randomTensor(c.shape, seed: UInt64(c.shape.reduce(1, *)) + 1)
        let (pooled, indices) = Pool3dKernels.maxPool(x, kernel: c.kernel, stride: c.stride, output: out)
        let dy = TestSupport.randomTensor(pooled.shape, seed: 11)
        let dx = Pool3dKernels.maxPoolBackward(dy, indices: indices, inputShape: c.shape)
        #expect(dx.shape == c.shape)
        // Scatter to the naive argmax, summing where overlapping windows share a maximum.
        let inPlane = c.shape[2...].reduce(1, *)
        let outPlane = out.product
        var expected = [Double](repeating: 0, count: x.count)
        for (o, index) in PoolReference.maxPool(x, kernel: c.kernel, stride: c.stride).indices.enumerated() {
            expected[(o / outPlane) * inPlane + index] += Double(dy.scalars[o])
        }
        expectClose(dx.scalars, expected, rtol: 1e-6, atol: 1e-6, c.name)
        // Total gradient is conserved.
        #expect(abs(Double(dx.sum()) - Double(dy.sum())) <= 1e-4)
    }

    @Test func maxPoolBackwardSumsOverlappingWindows() throws {
        // One dominant element shared by all eight k2 s1 windows of a 3x3x3 volume.
        var x = TestSupport.randomTensor([1, 1, 3, 3, 3], seed: 12)
        x[0, 0, 1, 1, 1] = 10
        let (pooled, indices) = Pool3dKernels.maxPool(x, kernel: Triple(2), stride: Triple(1), output: Triple(2))
        #expect(indices.allSatisfy { $0 == 13 })
        let dy = TestSupport.randomTensor(pooled.shape, seed: 13)
        let dx = Pool3dKernels.maxPoolBackward(dy, indices: indices, inputShape: x.shape)
        let total = dy.scalars.reduce(0.0) { $0 + Double($1) }
        #expect(abs(Double(dx[0, 0, 1, 1, 1]) - total) <= 1e-6)
        #expect(dx.scalars.enumerated().allSatisfy { $0.offset == 13 || $0.element == 0 })
    }

    @Test(arguments: PoolCase.all)
    func avgPoolMatchesNaive(_ c: PoolCase) throws {
        let out = try Self.output(c)
        let x = TestSupport.randomTensor(c.shape, seed: UInt64(c.shape.reduce(1, *)) + 2)
        let y = Pool3dKernels.avgPool(x, kernel: c.kernel, stride: c.stride, output: out)
        #expect(y.shape == [c.shape[0], c.shape[1], out.d, out.h, out.w])
        expectClose(y.scalars, PoolReference.avgPool(x, kernel: c.kernel, stride: c.stride), rtol: 1e-5, atol: 1e-6, c.name)
    }

    @Test(arguments: PoolCase.all)
    func avgPoolBackwardMatchesNaiveAndIsAdjoint(_ c: PoolCase) throws {
        let out = try Self.output(c)
        let x = TestSupport.randomTensor(c.shape, seed: UInt64(c.shape.reduce(1, *)) + 3)
        let dy = TestSupport.randomTensor([c.shape[0], c.shape[1], out.d, out.h, out.w], seed: 14)
        let dx = Pool3dKernels.avgPoolBackward(dy, inputShape: c.shape, kernel: c.kernel, stride: c.stride)
        #expect(dx.shape == c.shape)
        expectClose(dx.scalars, PoolReference.avgPoolBackward(dy, inputShape: c.shape, kernel: c.kernel, stride: c.stride),
                    rtol: 1e-5, atol: 1e-6, c.name)
        let y = Pool3dKernels.avgPool(x, kernel: c.kernel, stride: c.stride, output: out)
        let lhs = Reference.dot(y.scalars, dy.scalars)
        let rhs = Reference.dot(x.scalars, dx.scalars)
        expectRelativelyClose(lhs, rhs, scale: Reference.absDot(y.scalars, dy.scalars) + Reference.absDot(x.scalars, dx.scalars),
                              tolerance: 1e-5, "<avg(x), y> vs <x, avgᵀ(y)> \(c.name)")
    }

    @Test func outputExtentFormula() throws {
        for size in 1...7 {
            for k in 1...size {
                for s in 1...3 {
                    var positions = 0
                    var start = 0
                    while start + k <= size { positions += 1; start += s }
                    let out = try Pool3dKernels.outputExtent(input: Triple(size, 6, 3), kernel: Triple(k, 2, 3), stride: Triple(s, 2, 1), operation: "t")
                    #expect(out == Triple(positions, 3, 1), "in \(size) k \(k) s \(s)")
                }
            }
        }
    }

    @Test func outputExtentErrors() {
        let attempts: [(String, Triple, Triple, Triple)] = [
            ("kernel larger than input", Triple(4, 4, 4), Triple(2, 5, 2), Triple(1)),
            ("kernel larger in W", Triple(4, 4, 2), Triple(2, 2, 3), Triple(2)),
            ("zero stride", Triple(4), Triple(2), Triple(2, 0, 2)),
            ("negative stride", Triple(4), Triple(2), Triple(-1)),
            ("zero kernel", Triple(4), Triple(0, 2, 2), Triple(1)),
        ]
        for (name, input, kernel, stride) in attempts {
            let error = #expect(throws: TensorError.self, "\(name)") {
                try Pool3dKernels.outputExtent(input: input, kernel: kernel, stride: stride, operation: "test")
            }
            #expect(error?.isInvalidArgument == true, "\(name)")
        }
    }
}
