import Foundation
import NeuralNet
import Testing
import TensorCore
import TestSupport

/// Central differences of a loss's returned value with respect to its first input.
func lossGradient(at x: Tensor, step: Float = 1e-3, _ loss: (Tensor) throws -> LossValue) throws -> Tensor {
    try TestSupport.numericalGradient(of: { Double(try loss($0).value) }, at: x, step: step)
}

@Suite struct MeanSquaredErrorTests {
    @Test func handComputedValue() throws {
        let p = try Tensor(shape: [3], scalars: [1, 2, 3])
        let t = try Tensor(shape: [3], scalars: [0, 2, 5])
        let loss = try Loss.meanSquaredError(p, t)
        #expect(abs(loss.value - 5.0 / 3.0) < 1e-6)
        // 2(p − t)/3 = [2/3, 0, −4/3]
        #expect(TestSupport.isClose(loss.gradient, tensor([3], [2.0 / 3, 0, -4.0 / 3])))
    }

    @Test func valueAndGradientMatchReferences() throws {
        let p = random([2, 1, 3, 2, 2], seed: 301)
        let t = random([2, 1, 3, 2, 2], seed: 302)
        let loss = try Loss.meanSquaredError(p, t)
        var expected = 0.0
        for (a, b) in zip(p.scalars, t.scalars) { expected += (Double(a) - Double(b)) * (Double(a) - Double(b)) }
        expected /= Double(p.count)
        #expect(abs(Double(loss.value) - expected) < 1e-6)
        let numeric = try lossGradient(at: p) { try Loss.meanSquaredError($0, t) }
        #expect(TestSupport.isClose(loss.gradient, numeric, rtol: 1e-2, atol: 1e-4))
    }

    @Test func shapeMismatchThrows() {
        #expect(throws: TensorError.self) { try Loss.meanSquaredError(Tensor(zeros: [2, 3]), Tensor(zeros: [3, 2])) }
    }
}

@Suite struct BinaryCrossEntropyTests {
    @Test func handComputedValue() throws {
        let p = try Tensor(shape: [2], scalars: [0.8, 0.3])
        let t = try Tensor(shape: [2], scalars: [1, 0])
        let loss = try Loss.binaryCrossEntropy(p, t)
        let expected = -(log(0.8) + log(0.7)) / 2
        #expect(abs(Double(loss.value) - expected) < 1e-6)
        // (p − t) / (p(1 − p)) / 2 = [−1/(0.8·2), 1/(0.7·2)]
        #expect(TestSupport.isClose(loss.gradient, tensor([2], [-1 / 1.6, 1 / 1.4]), rtol: 1e-5))
    }

    @Test func valueAndGradientMatchReferences() throws {
        let p = random([2, 6], seed: 311, low: 0.1, high: 0.9)
        // Soft targets as well as hard ones.
        let t = try Tensor(shape: [2, 6], scalars: [0, 1, 0.25, 1, 0, 0.5, 1, 1, 0, 0.75, 0, 1])
        let loss = try Loss.binaryCrossEntropy(p, t)
        var expected = 0.0
        for (pi, ti) in zip(p.scalars.map(Double.init), t.scalars.map(Double.init)) { expected -= ti * log(pi) + (1 - ti) * log(1 - pi) }
        expected /= Double(p.count)
        #expect(abs(Double(loss.value) - expected) < 1e-5)
        let numeric = try lossGradient(at: p) { try Loss.binaryCrossEntropy($0, t) }
        #expect(TestSupport.isClose(loss.gradient, numeric, rtol: 1e-2, atol: 1e-4))
    }

    @Test func saturatedProbabilitiesAreClampedLikePyTorch() throws {
        // log(0) is clamped at −100: a confident wrong answer costs 100, a confident right one 0.
        let loss = try Loss.binaryCrossEntropy(try Tensor(shape: [2], scalars: [0, 1]), try Tensor(shape: [2], scalars: [1, 1]))
        #expect(loss.value.isFinite)
        #expect(abs(loss.value - 50) < 1e-4)
        #expect(loss.gradient.isFinite)
    }
}

@Suite struct SoftmaxCrossEntropyTests {
    /// `−log softmax(z)_y` in Double via log-sum-exp.
    static func negativeLogLikelihood(_ logits: [Double], _ label: Int) -> Double {
        let m = logits.max()!
        return m + log(logits.map { exp($0 - m) }.reduce(0, +)) - logits[label]
    }

    @Test func unweightedValueAndGradient() throws {
        let logits = random([4, 3], seed: 321, low: -2, high: 2)
        let labels = [0, 2, 1, 2]
        let loss = try Loss.softmaxCrossEntropy(logits: logits, labels: labels)
        var expected = 0.0
        var gradient: [Double] = []
        for i in 0..<4 {
            let z = logits.scalars[(i * 3)..<(i * 3 + 3)].map(Double.init)
            expected += Self.negativeLogLikelihood(z, labels[i])
            let total = z.map(exp).reduce(0, +)
            gradient += (0..<3).map { j in (exp(z[j]) / total - (j == labels[i] ? 1 : 0)) / 4 }
        }
        #expect(abs(Double(loss.value) - expected / 4) < 1e-5)
        #expect(TestSupport.isClose(loss.gradient, tensor([4, 3], gradient), rtol: 1e-4, atol: 1e-6))
        let numeric = try lossGradient(at: logits) { try Loss.softmaxCrossEntropy(logits: $0, labels: labels) }
        #expect(TestSupport.isClose(loss.gradient, numeric, rtol: 1e-2, atol: 2e-4))
    }

    @Test func classWeightedMeanOnAThreeByThreeExample() throws {
        let z: [[Double]] = [[2.0, -1.0, 0.5], [0.1, 0.2, 0.3], [-1.5, 1.0, 3.0]]
        let labels = [0, 2, 1]
        let weights: [Double] = [0.2, 1.0, 3.0]
        let logits = tensor([3, 3], z.flatMap { $0 })
        let loss = try Loss.softmaxCrossEntropy(logits: logits, labels: labels, classWeights: weights.map { Float($0) })
        // Σ w_y·(−log p_y) / Σ w_y with w_y = 0.2, 3.0, 1.0.
        var numerator = 0.0, denominator = 0.0
        for i in 0..<3 {
            numerator += weights[labels[i]] * Self.negativeLogLikelihood(z[i], labels[i])
            denominator += weights[labels[i]]
        }
        #expect(abs(Double(loss.value) - numerator / denominator) < 1e-5)
        // Differs from the unweighted mean, so the weights are really used.
        let plain = try Loss.softmaxCrossEntropy(logits: logits, labels: labels)
        #expect(abs(plain.value - loss.value) > 0.1)
        let numeric = try lossGradient(at: logits) {
            try Loss.softmaxCrossEntropy(logits: $0, labels: labels, classWeights: weights.map { Float($0) })
        }
        #expect(TestSupport.isClose(loss.gradient, numeric, rtol: 1e-2, atol: 2e-4))
    }

    @Test func largeLogitsStayFiniteWithTheExactGradient() throws {
        let logits = try Tensor(shape: [2, 2], scalars: [1000, 0, -1000, 1000])
        let loss = try Loss.softmaxCrossEntropy(logits: logits, labels: [1, 0])
        #expect(loss.value.isFinite && loss.gradient.isFinite)
        // softmax is [1, 0] and [0, 1]: (p − onehot) / 2.
        #expect(TestSupport.isClose(loss.gradient, tensor([2, 2], [0.5, -0.5, -0.5, 0.5]), atol: 1e-6))
    }

    @Test
    func largeMarginsGiveTheExactLoss() throws {
        // −log softmax(z)_y = logsumexp(z) − z_y: 80 for the first row, 2000 for the second.
        let logits = try Tensor(shape: [2, 2], scalars: [0, 80, -1000, 1000])
        let loss = try Loss.softmaxCrossEntropy(logits: logits, labels: [0, 0])
        let expected = (Self.negativeLogLikelihood([0, 80], 0) + Self.negativeLogLikelihood([-1000, 1000], 0)) / 2
        #expect(abs(Double(loss.value) - expected) <= 1e-4 * expected, "\(loss.value) vs \(expected)")
    }

    @Test func invalidLabelsAndWeightsThrow() {
        let logits = random([3, 3], seed: 331)
        #expect(throws: TensorError.self) { try Loss.softmaxCrossEntropy(logits: logits, labels: [0, 3, 1]) }
        #expect(throws: TensorError.self) { try Loss.softmaxCrossEntropy(logits: logits, labels: [0, -1, 1]) }
        #expect(throws: TensorError.self) { try Loss.softmaxCrossEntropy(logits: logits, labels: [0, 1]) }
        #expect(throws: TensorError.self) { try Loss.softmaxCrossEntropy(logits: logits, labels: [0, 1, 2, 0]) }
        #expect(throws: TensorError.self) { try Loss.softmaxCrossEntropy(logits: logits, labels: [0, 1, 2], classWeights: [1, 1]) }
        #expect(throws: TensorError.self) {
            try Loss.softmaxCrossEntropy(logits: logits, labels: [0, 1, 2], classWeights: [1, 1, 1, 1])
        }
        #expect(throws: TensorError.self) { try Loss.softmaxCrossEntropy(logits: logits, labels: [0, 0, 0], classWeights: [0, 1, 1]) }
        #expect(throws: TensorError.self) { try Loss.softmaxCrossEntropy(logits: random([3], seed: 1), labels: [0]) }
    }
}

@Suite struct SparsityPenaltyTests {
    static func klPenalty(_ a: Tensor, rho: Double, beta: Double) -> Double {
        let (n, h) = (a.shape[0], a.shape[1])
        var total = 0.0
        for j in 0..<h {
            let r = (0..<n).map { Double(a.scalars[$0 * h + j]) }.reduce(0, +) / Double(n)
            total += rho * log(rho / r) + (1 - rho) * log((1 - rho) / (1 - r))
        }
        return beta * total
    }

    @Test func valueAndGradient() throws {
        let a = random([4, 5], seed: 341, low: 0.02, high: 0.4)
        let loss = try Loss.sparsityPenalty(activations: a, targetSparsity: 0.05, weight: 3)
        let expected = Self.klPenalty(a, rho: 0.05, beta: 3)
        #expect(abs(Double(loss.value) - expected) <= 1e-4 * max(1, expected))
        #expect(loss.gradient.shape == [4, 5])
        let numeric = try lossGradient(at: a, step: 1e-3) { try Loss.sparsityPenalty(activations: $0, targetSparsity: 0.05, weight: 3) }
        #expect(TestSupport.isClose(loss.gradient, numeric, rtol: 2e-2, atol: 2e-3))
    }

    @Test func zeroWhenMeanActivationEqualsTarget() throws {
        let a = try Tensor(shape: [2, 2], scalars: [0.04, 0.1, 0.06, 0.0])
        let loss = try Loss.sparsityPenalty(activations: a, targetSparsity: 0.05, weight: 3)
        #expect(abs(loss.value) < 1e-6)
        #expect(loss.gradient.scalars.allSatisfy { abs($0) < 1e-4 })
    }

    @Test(arguments: [Float(0), 1, -0.1, 1.5])
    func targetOutsideOpenUnitIntervalThrows(rho: Float) {
        #expect(throws: TensorError.self) {
            try Loss.sparsityPenalty(activations: Tensor(repeating: 0.5, shape: [2, 3]), targetSparsity: rho, weight: 3)
        }
    }

    @Test func rankOtherThanTwoThrows() {
        #expect(throws: TensorError.self) {
            try Loss.sparsityPenalty(activations: Tensor(repeating: 0.5, shape: [2, 3, 1]), targetSparsity: 0.05, weight: 3)
        }
    }
}

@Suite struct WeightDecayTests {
    @Test func valueAndGradient() throws {
        let w1 = Parameter(try Tensor(shape: [2, 2], scalars: [1, -2, 3, 0.5]))
        let w2 = Parameter(try Tensor(shape: [3], scalars: [-1, 0, 4]))
        w1.gradient = try Tensor(shape: [2, 2], scalars: [0.1, 0.2, 0.3, 0.4])
        let lambda: Float = 0.01
        let penalty = Loss.applyWeightDecay([w1, w2], lambda: lambda)
        // λ/2 · (1 + 4 + 9 + 0.25 + 1 + 0 + 16) = 0.005 · 31.25
        #expect(abs(penalty - 0.15625) < 1e-7)
        #expect(TestSupport.isClose(w1.gradient, tensor([2, 2], [0.1 + 0.01, 0.2 - 0.02, 0.3 + 0.03, 0.4 + 0.005]), rtol: 1e-6))
        #expect(TestSupport.isClose(w2.gradient, tensor([3], [-0.01, 0, 0.04]), rtol: 1e-6))
        // The values themselves are untouched.
        #expect(w2.value.scalars == [-1, 0, 4])
    }

    @Test func gradientIsTheDerivativeOfThePenalty() throws {
        let w = Parameter(random([3, 4], seed: 351))
        let lambda: Float = 0.3
        Loss.applyWeightDecay([w], lambda: lambda)
        let numeric = TestSupport.numericalGradient(of: { value in
            Double(Loss.applyWeightDecay([Parameter(value)], lambda: lambda))
        }, at: w.value, step: 1e-2)
        #expect(TestSupport.isClose(w.gradient, numeric, rtol: 1e-2, atol: 1e-4))
    }
}
