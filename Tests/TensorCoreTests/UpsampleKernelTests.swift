import Foundation
import Testing
import TensorCore
import TestSupport

/// Independent per-axis interpolation weights, following PyTorch's `upsample_trilinear3d`
/// with `align_corners=False`: `src = max(0, (dst + 0.5) / f − 0.5)`, `i0 = floor(src)`,
/// `i1 = min(i0 + 1, in − 1)`, `λ1 = src − i0`, `λ0 = 1 − λ1`.
enum UpsampleReference {
    /// Sparse weights `[(sourceIndex, weight)]` for each output index along one axis.
    static func linearWeights(input: Int, factor: Int) -> [[(Int, Double)]] {
        (0..<(input * factor)).map { dst in
            let src = max(0, (Double(dst) + 0.5) / Double(factor) - 0.5)
            let i0 = min(Int(src.rounded(.down)), input - 1)
            let i1 = min(i0 + 1, input - 1)
            let l1 = src - Double(i0)
            return [(i0, 1 - l1), (i1, l1)]
        }
    }

    static func nearestWeights(input: Int, factor: Int) -> [[(Int, Double)]] {
        (0..<(input * factor)).map { dst in [(Int((Double(dst) / Double(factor)).rounded(.down)), 1)] }
    }

    /// The dense linear map of upsampling one plane, `out[o] = Σ_i M[o][i] in[i]`, applied to
    /// every plane.
    static func forward(_ x: Tensor, factor: Triple, trilinear: Bool) -> [Double] {
        let (d, h, w) = (x.shape[2], x.shape[3], x.shape[4])
        let weights = trilinear ? linearWeights : nearestWeights
        let (wd, wh, ww) = (weights(d, factor.d), weights(h, factor.h), weights(w, factor.w))
        var out: [Double] = []
        for plane in 0..<(x.shape[0] * x.shape[1]) {
            let base = plane * d * h * w
            for td in wd { for th in wh { for tw in ww {
                var total = 0.0
                for (z, a) in td { for (y, b) in th { for (xx, c) in tw {
                    total += a * b * c * Double(x.scalars[base + (z * h + y) * w + xx])
                } } }
                out.append(total)
            } } }
        }
        return out
    }
}

@Suite struct UpsampleKernelTests {
    static let shapes: [([Int], Triple)] = [
        ([2, 2, 2, 3, 2], Triple(2)),
        ([1, 3, 3, 2, 4], Triple(2, 3, 1)),
        ([2, 1, 1, 4, 3], Triple(3, 2, 2)),
        ([1, 2, 2, 2, 2], Triple(4, 1, 2)),
    ]

    @Test(arguments: shapes)
    func nearestMatchesNaive(shape: [Int], factor: Triple) {
        let x = TestSupport.randomTensor(shape, seed: 1)
        let y = Upsample3dKernels.forward(x, factor: factor, mode: .nearest)
        #expect(y.shape == [shape[0], shape[1], shape[2] * factor.d, shape[3] * factor.h, shape[4] * factor.w])
        // out[n, c, z, y, x] = in[n, c, z / fd, y / fh, x / fw]
        var expected: [Double] = []
        for index in Reference.multiIndices(y.shape) {
            expected.append(Double(x[index[0], index[1], index[2] / factor.d, index[3] / factor.h, index[4] / factor.w]))
        }
        #expect(y.scalars.map(Double.init) == expected)
    }

    @Test func trilinearFactorTwoAlongOneAxisByHand() throws {
        // PyTorch, align_corners=False, factor 2 along W: the first and last outputs copy the
        // edge inputs; in between outputs alternate ¾·x[i] + ¼·x[i+1] and ¼·x[i] + ¾·x[i+1].
        let values: [Float] = [1, 5, -2, 4]
        let x = try Tensor(shape: [1, 1, 1, 1, 4], scalars: values)
        let y = Upsample3dKernels.forward(x, factor: Triple(1, 1, 2), mode: .trilinear)
        #expect(y.shape == [1, 1, 1, 1, 8])
        let v = values.map(Double.init)
        let expected = [v[0],
                        0.75 * v[0] + 0.25 * v[1], 0.25 * v[0] + 0.75 * v[1],
                        0.75 * v[1] + 0.25 * v[2], 0.25 * v[1] + 0.75 * v[2],
                        0.75 * v[2] + 0.25 * v[3], 0.25 * v[2] + 0.75 * v[3],
                        v[3]]
        expectClose(y.scalars, expected, rtol: 1e-6, atol: 1e-6)
    }

    @Test(arguments: shapes)
    func trilinearMatchesPyTorchFormula(shape: [Int], factor: Triple) {
        let x = TestSupport.randomTensor(shape, seed: 2)
        let y = Upsample3dKernels.forward(x, factor: factor, mode: .trilinear)
        #expect(y.shape == [shape[0], shape[1], shape[2] * factor.d, shape[3] * factor.h, shape[4] * factor.w])
        expectClose(y.scalars, UpsampleReference.forward(x, factor: factor, trilinear: true), rtol: 1e-5, atol: 1e-6, "\(shape) × \(factor)")
    }

    @Test func trilinearFactorTwoVolumeAgainstPyTorchFormula() {
        let x = TestSupport.randomTensor([1, 2, 3, 4, 3], seed: 3)
        let y = Upsample3dKernels.forward(x, factor: Triple(2), mode: .trilinear)
        expectClose(y.scalars, UpsampleReference.forward(x, factor: Triple(2), trilinear: true), rtol: 1e-5, atol: 1e-6)
        // Interpolation preserves constants and stays within the input's range.
        let constant = Upsample3dKernels.forward(Tensor(repeating: 2.5, shape: [1, 1, 3, 2, 2]), factor: Triple(2), mode: .trilinear)
        expectClose(constant.scalars, [Double](repeating: 2.5, count: constant.count), rtol: 1e-6, atol: 1e-6)
        #expect(y.max() <= x.max() && y.min() >= x.min())
    }

    @Test(arguments: [Upsample3dKernels.Mode.nearest, .trilinear], shapes)
    func backwardIsAdjointOfForward(mode: Upsample3dKernels.Mode, setup: ([Int], Triple)) {
        let (shape, factor) = setup
        let x = TestSupport.randomTensor(shape, seed: 4)
        let up = Upsample3dKernels.forward(x, factor: factor, mode: mode)
        let dy = TestSupport.randomTensor(up.shape, seed: 5)
        let dx = Upsample3dKernels.backward(dy, inputShape: shape, factor: factor, mode: mode)
        #expect(dx.shape == shape)
        let lhs = Reference.dot(up.scalars, dy.scalars)
        let rhs = Reference.dot(x.scalars, dx.scalars)
        expectRelativelyClose(lhs, rhs, scale: Reference.absDot(up.scalars, dy.scalars) + Reference.absDot(x.scalars, dx.scalars),
                              tolerance: 1e-5, "<up(x), y> vs <x, upᵀ(y)> \(mode) \(shape) × \(factor)")
    }

    @Test(arguments: shapes)
    func nearestBackwardSumsBlocks(shape: [Int], factor: Triple) {
        let outShape = [shape[0], shape[1], shape[2] * factor.d, shape[3] * factor.h, shape[4] * factor.w]
        let dy = TestSupport.randomTensor(outShape, seed: 6)
        let dx = Upsample3dKernels.backward(dy, inputShape: shape, factor: factor, mode: .nearest)
        var expected = [Double](repeating: 0, count: shape.reduce(1, *))
        let strides = Reference.strides(shape)
        for (flat, index) in Reference.multiIndices(outShape).enumerated() {
            let source = [index[0], index[1], index[2] / factor.d, index[3] / factor.h, index[4] / factor.w]
            expected[zip(source, strides).map(*).reduce(0, +)] += Double(dy.scalars[flat])
        }
        expectClose(dx.scalars, expected, rtol: 1e-6, atol: 1e-6)
    }
}
