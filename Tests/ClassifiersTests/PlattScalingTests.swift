import Foundation
import TensorCore
import Testing
@testable import Classifiers

@Suite struct PlattScalingTests {
    /// Decision values from two overlapping groups: the fitted sigmoid is a stationary point
    /// of the cross-entropy against Platt's targets (both gradient entries below libsvm's
    /// stopping threshold 1e-5, up to rounding), with A < 0 so that f > 0 means the positive
    /// class; for values and labels symmetric about 0, B = 0.
    @Test func sigmoidIsTheCrossEntropyMinimiser() {
        var generator = Xoshiro256StarStar(seed: 7)
        var values: [Double] = []
        var positive: [Bool] = []
        for i in 0..<200 {
            let isPositive = i % 2 == 0
            values.append((isPositive ? 1 : -1) + 1.2 * Double(generator.nextStandardNormal()))
            positive.append(isPositive)
        }
        let (a, b) = PlattScaling.sigmoid(decisionValues: values, positive: positive)
        #expect(a < 0)
        let prior1 = Double(positive.filter { $0 }.count), prior0 = Double(positive.count) - prior1
        var (g1, g2) = (0.0, 0.0)
        for (f, isPositive) in zip(values, positive) {
            let target = isPositive ? (prior1 + 1) / (prior1 + 2) : 1 / (prior0 + 2)
            let p = 1 / (1 + exp(a * f + b))
            g1 += f * (target - p)
            g2 += target - p
        }
        #expect(abs(g1) < 1e-4 && abs(g2) < 1e-4)
        #expect(PlattScaling.probability(2, a: a, b: b) > 0.5)
        #expect(PlattScaling.probability(-2, a: a, b: b) < 0.5)

        let symmetric = PlattScaling.sigmoid(decisionValues: [-2, -1, -0.5, 0.5, 1, 2, -0.2, 0.2], positive: [false, false, true, true, true, true, false, false])
        #expect(abs(symmetric.b) < 1e-9)
    }

    /// Pairwise probabilities consistent with p (r_ij = p_i / (p_i + p_j)) give p back, to
    /// within the coupling's stopping tolerance 0.005 / k.
    @Test func couplingRecoversConsistentProbabilities() {
        for p in [[0.5, 0.3, 0.2], [0.1, 0.2, 0.3, 0.4], [0.7, 0.3]] {
            let k = p.count
            var r = [[Double]](repeating: [Double](repeating: 0, count: k), count: k)
            for i in 0..<k { for j in 0..<k where i != j { r[i][j] = p[i] / (p[i] + p[j]) } }
            let coupled = PlattScaling.coupling(r)
            #expect(abs(coupled.reduce(0, +) - 1) < 1e-12)
            for (value, expected) in zip(coupled, p) { #expect(abs(value - expected) < 0.005 / Double(k)) }
        }
    }

    /// The cross-validation draws its shuffle from the generator: the same seed gives the
    /// same sigmoid, and a fold without one class predicts that class's sign outright.
    @Test func crossValidationIsSeeded() {
        let labels: [Int8] = [1, 1, 1, 1, 1, 1, -1, -1, -1, -1]
        let decide: ([Int], [Int]) -> [Double] = { _, test in test.map { labels[$0] == 1 ? 0.8 : -0.8 } }
        var first = Xoshiro256StarStar(seed: 3), second = Xoshiro256StarStar(seed: 3)
        let a = PlattScaling.crossValidatedSigmoid(labels: labels, generator: &first, decide: decide)
        let b = PlattScaling.crossValidatedSigmoid(labels: labels, generator: &second, decide: decide)
        #expect(a == b)
        #expect(a.a < 0)
        // One positive, one negative sample: every training part of 2 folds of 1 lacks a class.
        var generator = Xoshiro256StarStar(seed: 1)
        let tiny = PlattScaling.crossValidatedSigmoid(labels: [1, -1], folds: 2, generator: &generator) { _, _ in
            Issue.record("trained on one class")
            return []
        }
        // The decision values are then −1 for the positive sample and +1 for the negative one.
        #expect(tiny.a > 0)
    }
}
