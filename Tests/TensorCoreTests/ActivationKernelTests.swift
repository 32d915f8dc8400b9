import Foundation
import Testing
import TensorCore
import TestSupport

extension ActivationKernels.Kind: CustomTestStringConvertible {
    public var testDescription: String {
        switch self {
        case .relu: "relu"
        case let .leakyRelu(slope): "leakyRelu(\(slope))"
        case .sigmoid: "sigmoid"
        case .tanh: "tanh"
        }
    }
}

/// Activation functions and derivatives against their textbook formulas in Double.
@Suite struct ActivationKernelTests {
    static let kinds: [ActivationKernels.Kind] = [.relu, .leakyRelu(slope: 0.1), .leakyRelu(slope: -0.5), .sigmoid, .tanh]

    static func reference(_ kind: ActivationKernels.Kind, _ x: Double) -> Double {
        switch kind {
        case .relu: return max(0, x)
        case let .leakyRelu(slope): return x > 0 ? x : Double(slope) * x
        case .sigmoid: return 1 / (1 + Foundation.exp(-x))
        case .tanh: return Foundation.tanh(x)
        }
    }

    static func derivative(_ kind: ActivationKernels.Kind, _ x: Double) -> Double {
        switch kind {
        case .relu: return x > 0 ? 1 : 0
        case let .leakyRelu(slope): return x > 0 ? 1 : Double(slope)
        case .sigmoid:
            let s = 1 / (1 + Foundation.exp(-x))
            return s * (1 - s)
        case .tanh:
            let t = Foundation.tanh(x)
            return 1 - t * t
        }
    }

    /// Input with ordinary values, exact zeros and large magnitudes (where a naive sigmoid
    /// overflows).
    static func input(count: Int, seed: UInt64) -> Tensor {
        var x = TestSupport.randomTensor([count], seed: seed, low: -4, high: 4)
        for (i, value) in [Float(0), -0.0, 100, -100, 1e-30, -1e-30, 88.8, -88.8, 30, -30].enumerated() where i < count {
            x[flat: i * 7 % count] = value
        }
        return x
    }

    @Test(arguments: kinds)
    func forwardMatchesFormula(_ kind: ActivationKernels.Kind) {
        let x = Self.input(count: 513, seed: 1)
        let y = ActivationKernels.forward(kind, x)
        #expect(y.shape == x.shape)
        #expect(y.isFinite)
        expectClose(y.scalars, x.scalars.map { Self.reference(kind, Double($0)) }, rtol: 2e-6, atol: 1e-7, kind.testDescription)
    }

    @Test(arguments: kinds)
    func backwardMatchesDerivative(_ kind: ActivationKernels.Kind) {
        let x = Self.input(count: 513, seed: 2)
        let y = ActivationKernels.forward(kind, x)
        let dy = TestSupport.randomTensor(x.shape, seed: 3)
        // The cached tensor is the output, except for leaky ReLU, which keeps its input.
        let cached: Tensor
        if case .leakyRelu = kind { cached = x } else { cached = y }
        let dx = ActivationKernels.backward(kind, gradOutput: dy, cached: cached)
        #expect(dx.shape == x.shape)
        let expected = (0..<x.count).map { Double(dy.scalars[$0]) * Self.derivative(kind, Double(x.scalars[$0])) }
        expectClose(dx.scalars, expected, rtol: 1e-5, atol: 1e-6, kind.testDescription)
    }

    @Test(arguments: kinds)
    func nanPropagates(_ kind: ActivationKernels.Kind) throws {
        // As in PyTorch, NaN in gives NaN out (ReLU must not map it to 0).
        let x = try Tensor(shape: [3], scalars: [.nan, 1, -1])
        let y = ActivationKernels.forward(kind, x)
        #expect(y.scalars[0].isNaN, "\(kind.testDescription)")
        #expect(!y.scalars[1].isNaN && !y.scalars[2].isNaN)
    }

    @Test func sigmoidIsStableAtExtremes() {
        #expect(FastMath.sigmoid(-200) == 0)
        #expect(FastMath.sigmoid(200) == 1)
        #expect(FastMath.sigmoid(0) == 0.5)
        for x in stride(from: Float(-20), through: 20, by: 0.37) {
            #expect(abs(Double(FastMath.sigmoid(x)) - Self.reference(.sigmoid, Double(x))) <= 2e-7)
        }
    }

    @Test(arguments: kinds)
    func largeTensorParallelPathMatchesSmall(_ kind: ActivationKernels.Kind) {
        // Above 2 × parallelGrain the loops are split across workers.
        let x = TestSupport.randomTensor([2 * Tensor.parallelGrain + 999], seed: 4, low: -3, high: 3)
        let y = ActivationKernels.forward(kind, x)
        let dy = TestSupport.randomTensor(x.shape, seed: 5)
        let dx = ActivationKernels.backward(kind, gradOutput: dy, cached: y)
        // Same values as element-by-element evaluation through the small-tensor path.
        for i in stride(from: 0, to: x.count, by: 4099) + [x.count - 1] {
            let one = try! Tensor(shape: [1], scalars: [x.scalars[i]])
            #expect(y.scalars[i] == ActivationKernels.forward(kind, one).scalars[0])
            let g = try! Tensor(shape: [1], scalars: [dy.scalars[i]])
            let c = try! Tensor(shape: [1], scalars: [y.scalars[i]])
            #expect(dx.scalars[i] == ActivationKernels.backward(kind, gradOutput: g, cached: c).scalars[0])
        }
    }

    @Test(arguments: kinds)
    func preservesMaxPoolRoutingIsTruthful(_ kind: ActivationKernels.Kind) throws {
        // Only ReLU claims it; for it, pooling first gives the same values. The negative-slope
        // leaky ReLU is a kind for which the orders really differ.
        let x = TestSupport.randomTensor([1, 2, 4, 4, 4], seed: 6, low: -2, high: 2)
        let out = try Pool3dKernels.outputExtent(input: Triple(4), kernel: Triple(2), stride: Triple(2), operation: "t")
        let poolThenF = ActivationKernels.forward(kind, Pool3dKernels.maxPool(x, kernel: Triple(2), stride: Triple(2), output: out).0)
        let fThenPool = Pool3dKernels.maxPool(ActivationKernels.forward(kind, x), kernel: Triple(2), stride: Triple(2), output: out).0
        #expect(kind.preservesMaxPoolRouting == (kind == .relu), "\(kind.testDescription)")
        if kind.preservesMaxPoolRouting { #expect(poolThenF == fThenPool) }
        if kind == .leakyRelu(slope: -0.5) { #expect(poolThenF != fThenPool) }
    }
}
