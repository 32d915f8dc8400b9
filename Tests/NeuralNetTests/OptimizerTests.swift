import Foundation
import NeuralNet
import Testing
import TensorCore
import TestSupport

/// Two parameters (a matrix and a vector) with fixed gradients, one gradient element zero.
private func makeParameters() -> (named: [(name: String, parameter: Parameter)], gradients: [Tensor]) {
    let weight = Parameter(random([2, 3], seed: 401))
    let bias = Parameter(random([4], seed: 402))
    var g1 = random([2, 3], seed: 403)
    g1[flat: 4] = 0
    let g2 = random([4], seed: 404, low: -3, high: 3)
    return ([("layer.weight", weight), ("layer.bias", bias)], [g1, g2])
}

private func applyFixedGradients(_ named: [(name: String, parameter: Parameter)], _ gradients: [Tensor]) {
    for (entry, g) in zip(named, gradients) { entry.parameter.gradient = g }
}

/// Runs `steps` steps of `optimizer` under the fixed gradients and checks every parameter
/// against `reference(initial, gradient, steps)` (the update formula written out in Double).
/// - Returns: each parameter's initial value, for further checks.
@discardableResult
private func expectStepsMatch(_ optimizer: Optimizer, _ named: [(name: String, parameter: Parameter)], _ gradients: [Tensor],
                              steps: Int, reference: ([Double], [Double], Int) -> [Double]) -> [Tensor] {
    let initial = named.map { $0.parameter.value }
    for _ in 0..<steps {
        applyFixedGradients(named, gradients)
        optimizer.step()
    }
    #expect(optimizer.stepCount == steps)
    for (index, entry) in named.enumerated() {
        let expected = reference(initial[index].scalars.map(Double.init), gradients[index].scalars.map(Double.init), steps)
        let actual = entry.parameter.value
        #expect(TestSupport.isClose(actual, tensor(actual.shape, expected), rtol: 1e-5, atol: 1e-6), "\(entry.name)")
    }
    return initial
}

// MARK: - SGD

struct SGDCase: Sendable, CustomTestStringConvertible {
    var learningRate: Double
    var momentum = 0.0
    var dampening = 0.0
    var weightDecay = 0.0
    var nesterov = false
    var testDescription: String { "lr \(learningRate) momentum \(momentum) dampening \(dampening) wd \(weightDecay) nesterov \(nesterov)" }

    /// torch.optim.SGD written out, in Double.
    func reference(_ initial: [Double], gradient: [Double], steps: Int) -> [Double] {
        var theta = initial
        var buffer: [Double]? = nil
        for _ in 0..<steps {
            var d = zip(gradient, theta).map { $0 + weightDecay * $1 }
            if momentum != 0 {
                if let b = buffer {
                    buffer = zip(b, d).map { momentum * $0 + (1 - dampening) * $1 }
                } else {
                    buffer = d
                }
                d = nesterov ? zip(d, buffer!).map { $0 + momentum * $1 } : buffer!
            }
            theta = zip(theta, d).map { $0 - learningRate * $1 }
        }
        return theta
    }
}

let sgdCases: [SGDCase] = [
    SGDCase(learningRate: 0.1),
    SGDCase(learningRate: 0.1, momentum: 0.9),
    SGDCase(learningRate: 0.05, momentum: 0.9, nesterov: true),
    SGDCase(learningRate: 0.1, weightDecay: 0.05),
    SGDCase(learningRate: 0.1, momentum: 0.9, dampening: 0.5, weightDecay: 0.01),
    SGDCase(learningRate: 0.2, momentum: 0.8, weightDecay: 0.1, nesterov: true),
]

@Suite struct SGDTests {
    @Test(arguments: sgdCases, [1, 3])
    func matchesTheUpdateFormula(_ c: SGDCase, steps: Int) throws {
        let (named, gradients) = makeParameters()
        let optimizer = try SGD(parameters: named, learningRate: Float(c.learningRate), momentum: Float(c.momentum),
                                dampening: Float(c.dampening), weightDecay: Float(c.weightDecay), nesterov: c.nesterov)
        let initial = expectStepsMatch(optimizer, named, gradients, steps: steps) { c.reference($0, gradient: $1, steps: $2) }
        for (index, entry) in named.enumerated() { #expect(entry.parameter.value != initial[index]) }
    }

    @Test func learningRateChangesTakeEffectOnTheNextStep() throws {
        let p = Parameter(try Tensor(shape: [2], scalars: [1, -1]))
        let optimizer = try SGD(parameters: [("p", p)], learningRate: 0.1)
        p.gradient = try Tensor(shape: [2], scalars: [2, 4])
        optimizer.step()
        optimizer.learningRate = 0.01
        optimizer.step()
        // 1 − (0.1 + 0.01)·2 and −1 − (0.1 + 0.01)·4
        #expect(TestSupport.isClose(p.value, tensor([2], [0.78, -1.44]), rtol: 1e-6))
    }

    @Test func momentumBufferIsExposedAndRestored() throws {
        let (named, gradients) = makeParameters()
        let optimizer = try SGD(parameters: named, learningRate: 0.1, momentum: 0.9)
        #expect(optimizer.stateTensors().isEmpty)
        applyFixedGradients(named, gradients)
        optimizer.step()
        let state = optimizer.stateTensors()
        #expect(state.map(\.0) == ["layer.weight.momentum_buffer", "layer.bias.momentum_buffer"])
        // The first buffer is the gradient itself.
        #expect(state[0].1 == gradients[0])
        #expect(throws: TensorError.self) {
            try optimizer.loadState(["layer.weight.momentum_buffer": Tensor(zeros: [3, 2])], stepCount: 1)
        }
    }

    @Test func invalidConfigurationsThrow() {
        let (named, _) = makeParameters()
        expectInvalidConfiguration { try SGD(parameters: named, learningRate: 0) }
        expectInvalidConfiguration { try SGD(parameters: named, learningRate: -0.1) }
        expectInvalidConfiguration { try SGD(parameters: named, learningRate: 0.1, momentum: -0.5) }
        expectInvalidConfiguration { try SGD(parameters: named, learningRate: 0.1, weightDecay: -1) }
        expectInvalidConfiguration { try SGD(parameters: named, learningRate: 0.1, nesterov: true) }
        expectInvalidConfiguration { try SGD(parameters: named, learningRate: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true) }
    }
}

// MARK: - Adam / AdamW

struct AdamCase: Sendable, CustomTestStringConvertible {
    var learningRate: Double
    var beta1 = 0.9
    var beta2 = 0.999
    var epsilon = 1e-8
    var weightDecay = 0.0
    var decoupled = false
    var testDescription: String {
        "\(decoupled ? "AdamW" : "Adam") lr \(learningRate) betas (\(beta1), \(beta2)) eps \(epsilon) wd \(weightDecay)"
    }

    /// Kingma & Ba's bias-corrected update (torch.optim.Adam / AdamW), in Double.
    func reference(_ initial: [Double], gradient: [Double], steps: Int) -> [Double] {
        var theta = initial
        var m = [Double](repeating: 0, count: theta.count)
        var v = m
        for t in 1...steps {
            for i in theta.indices {
                var g = gradient[i]
                if decoupled { theta[i] *= 1 - learningRate * weightDecay } else { g += weightDecay * theta[i] }
                m[i] = beta1 * m[i] + (1 - beta1) * g
                v[i] = beta2 * v[i] + (1 - beta2) * g * g
                let mHat = m[i] / (1 - pow(beta1, Double(t)))
                let vHat = v[i] / (1 - pow(beta2, Double(t)))
                theta[i] -= learningRate * mHat / (vHat.squareRoot() + epsilon)
            }
        }
        return theta
    }
}

let adamCases: [AdamCase] = [
    AdamCase(learningRate: 0.01),
    AdamCase(learningRate: 0.1, beta1: 0.8, beta2: 0.95, epsilon: 1e-3),
    AdamCase(learningRate: 0.05, weightDecay: 0.1),
    AdamCase(learningRate: 0.05, weightDecay: 0.1, decoupled: true),
    AdamCase(learningRate: 0.2, beta1: 0, beta2: 0.5, weightDecay: 0.5, decoupled: true),
]

@Suite struct AdamTests {
    @Test(arguments: adamCases, [1, 3])
    func matchesTheUpdateFormula(_ c: AdamCase, steps: Int) throws {
        let (named, gradients) = makeParameters()
        let optimizer = try Adam(parameters: named, learningRate: Float(c.learningRate), beta1: Float(c.beta1), beta2: Float(c.beta2),
                                 epsilon: Float(c.epsilon), weightDecay: Float(c.weightDecay), decoupledWeightDecay: c.decoupled)
        expectStepsMatch(optimizer, named, gradients, steps: steps) { c.reference($0, gradient: $1, steps: $2) }
    }

    @Test func firstStepMovesEachWeightByTheLearningRate() throws {
        // With no weight decay, Adam's first step is −lr·sign(g) (up to ε) for every g ≠ 0.
        let p = Parameter(try Tensor(shape: [3], scalars: [0, 0, 0]))
        let optimizer = try Adam(parameters: [("p", p)], learningRate: 0.01)
        p.gradient = try Tensor(shape: [3], scalars: [1e-3, -50, 0])
        optimizer.step()
        #expect(TestSupport.isClose(p.value, tensor([3], [-0.01, 0.01, 0]), rtol: 1e-4, atol: 1e-7))
    }

    @Test func coupledAndDecoupledWeightDecayDiffer() throws {
        var results: [Tensor] = []
        for decoupled in [false, true] {
            let (named, gradients) = makeParameters()
            let optimizer = try Adam(parameters: named, learningRate: 0.05, weightDecay: 0.5, decoupledWeightDecay: decoupled)
            for _ in 0..<2 {
                applyFixedGradients(named, gradients)
                optimizer.step()
            }
            results.append(named[0].parameter.value)
        }
        #expect(results[0] != results[1])
    }

    @Test func stateTensorsAreNamedLikePyTorch() throws {
        let (named, gradients) = makeParameters()
        let optimizer = try Adam(parameters: named)
        applyFixedGradients(named, gradients)
        optimizer.step()
        let state = optimizer.stateTensors()
        #expect(state.map(\.0) == ["layer.weight.exp_avg", "layer.weight.exp_avg_sq", "layer.bias.exp_avg", "layer.bias.exp_avg_sq"])
        // After one step m = (1 − β₁)g and v = (1 − β₂)g².
        #expect(TestSupport.isClose(state[0].1, gradients[0].scaled(by: 0.1), rtol: 1e-5))
        #expect(TestSupport.isClose(state[1].1, gradients[0].map { 0.001 * $0 * $0 }, rtol: 1e-4, atol: 1e-9))
    }

    @Test func loadingIncompleteOrMisshapenStateThrows() throws {
        let (named, _) = makeParameters()
        let optimizer = try Adam(parameters: named)
        #expect(throws: NeuralNetError.stateMismatch("Adam state is missing layer.weight.exp_avg")) {
            try optimizer.loadState([:], stepCount: 3)
        }
        var state = Dictionary(uniqueKeysWithValues: optimizer.stateTensors())
        state["layer.bias.exp_avg_sq"] = Tensor(zeros: [5])
        #expect(throws: TensorError.self) { try optimizer.loadState(state, stepCount: 3) }
    }

    @Test func invalidConfigurationsThrow() {
        let (named, _) = makeParameters()
        expectInvalidConfiguration { try Adam(parameters: named, learningRate: 0) }
        expectInvalidConfiguration { try Adam(parameters: named, learningRate: -1e-3) }
        expectInvalidConfiguration { try Adam(parameters: named, beta1: 1) }
        expectInvalidConfiguration { try Adam(parameters: named, beta1: -0.1) }
        expectInvalidConfiguration { try Adam(parameters: named, beta2: 1.5) }
        expectInvalidConfiguration { try Adam(parameters: named, epsilon: 0) }
        expectInvalidConfiguration { try Adam(parameters: named, weightDecay: -0.01, decoupledWeightDecay: true) }
    }
}

// MARK: - Learning-rate schedules

@Suite struct LearningRateScheduleTests {
    @Test func constant() {
        for epoch in [0, 1, 50] { #expect(LearningRateSchedule.constant.learningRate(base: 0.3, epoch: epoch) == 0.3) }
    }

    @Test func stepDecay() {
        let schedule = LearningRateSchedule.step(stepSize: 3, gamma: 0.5)
        let expected: [(Int, Double)] = [(0, 0.1), (2, 0.1), (3, 0.05), (5, 0.05), (6, 0.025), (10, 0.0125)]
        for (epoch, rate) in expected {
            let actual = Double(schedule.learningRate(base: 0.1, epoch: epoch))
            #expect(abs(actual - rate) <= 1e-7, "epoch \(epoch): \(actual) vs \(rate)")
        }
    }

    @Test func cosineAnnealing() {
        let schedule = LearningRateSchedule.cosine(totalEpochs: 10, minimum: 0.001)
        for epoch in [0, 2, 5, 7, 10] {
            let expected = 0.001 + (0.1 - 0.001) * (1 + cos(Double.pi * Double(epoch) / 10)) / 2
            let actual = Double(schedule.learningRate(base: 0.1, epoch: epoch))
            #expect(abs(actual - expected) <= 1e-6, "epoch \(epoch): \(actual) vs \(expected)")
        }
        #expect(abs(schedule.learningRate(base: 0.1, epoch: 0) - 0.1) < 1e-7)
        #expect(abs(schedule.learningRate(base: 0.1, epoch: 5) - 0.0505) < 1e-6)
        #expect(abs(schedule.learningRate(base: 0.1, epoch: 10) - 0.001) < 1e-7)
        // Monotonically decreasing over the documented range.
        let rates = (0...10).map { schedule.learningRate(base: 0.1, epoch: $0) }
        #expect(zip(rates, rates.dropFirst()).allSatisfy { $0 > $1 })
    }
}
