import Foundation
import TensorCore

/// Updates named parameters from their gradients. Implementations are per-parameter update
/// rules with PyTorch's semantics, so a run can be compared step for step with `torch.optim`.
public protocol Optimizer: AnyObject {
    var learningRate: Float { get set }
    /// Number of `step()` calls so far.
    var stepCount: Int { get }
    /// Applies one update to every parameter from its current gradient.
    func step()
    /// Per-parameter state tensors by `<parameter path>.<state name>` (for checkpoints).
    func stateTensors() -> [(String, Tensor)]
    /// Restores state saved by `stateTensors()`; the step count comes separately.
    func loadState(_ tensors: [String: Tensor], stepCount: Int) throws
}

/// Stochastic gradient descent with optional momentum, Nesterov momentum and (coupled) L2
/// weight decay, as `torch.optim.SGD`:
/// ```
/// g ← ∇ + λθ;  b ← μb + (1 − dampening)g (b₁ = g);  g ← nesterov ? g + μb : b;  θ ← θ − ηg
/// ```
public final class SGD: Optimizer {
    public var learningRate: Float
    public let momentum: Float
    public let dampening: Float
    public let weightDecay: Float
    public let nesterov: Bool
    public private(set) var stepCount = 0
    private let parameters: [(name: String, parameter: Parameter)]
    private var buffers: [Tensor?]

    public init(parameters: [(name: String, parameter: Parameter)], learningRate: Float, momentum: Float = 0,
                dampening: Float = 0, weightDecay: Float = 0, nesterov: Bool = false) throws {
        guard learningRate > 0, momentum >= 0, weightDecay >= 0, !(nesterov && (momentum == 0 || dampening != 0)) else {
            throw NeuralNetError.invalidConfiguration(
                "SGD: learning rate must be positive, momentum and weight decay non-negative; Nesterov needs momentum and no dampening")
        }
        (self.learningRate, self.momentum, self.dampening, self.weightDecay, self.nesterov) =
            (learningRate, momentum, dampening, weightDecay, nesterov)
        self.parameters = parameters
        buffers = Array(repeating: nil, count: parameters.count)
    }

    public func step() {
        for (index, entry) in parameters.enumerated() {
            let p = entry.parameter
            var g = p.gradient
            if weightDecay != 0 { g = (try? g.adding(p.value.scaled(by: weightDecay))) ?? g }
            if momentum != 0 {
                if var buffer = buffers[index] {
                    buffer = buffer.scaled(by: momentum)
                    try? buffer.addScaled(g, alpha: 1 - dampening)
                    buffers[index] = buffer
                } else {
                    buffers[index] = g
                }
                let b = buffers[index]!
                if nesterov { try? g.addScaled(b, alpha: momentum) } else { g = b }
            }
            try? p.value.addScaled(g, alpha: -learningRate)
        }
        stepCount += 1
    }

    public func stateTensors() -> [(String, Tensor)] {
        zip(parameters, buffers).compactMap { entry, buffer in buffer.map { ("\(entry.name).momentum_buffer", $0) } }
    }

    /// A missing buffer means that parameter has not been stepped with momentum yet; a key
    /// naming no parameter is an error. Nothing changes when this throws.
    public func loadState(_ tensors: [String: Tensor], stepCount: Int) throws {
        let names = parameters.map { "\($0.name).momentum_buffer" }
        if let unexpected = Set(tensors.keys).subtracting(names).sorted().first {
            throw NeuralNetError.stateMismatch("SGD state has unexpected '\(unexpected)'")
        }
        var loaded: [Tensor?] = []
        for (entry, name) in zip(parameters, names) {
            let t = tensors[name]
            if let t { try t.checkShape(entry.parameter.value.shape, "SGD state \(entry.name)") }
            loaded.append(t)
        }
        buffers = loaded
        self.stepCount = stepCount
    }
}

/// Adam (Kingma & Ba 2015) and, with `decoupledWeightDecay`, AdamW (Loshchilov & Hutter
/// 2019), as `torch.optim.Adam` / `torch.optim.AdamW`:
/// ```
/// Adam:  g ← ∇ + λθ            AdamW: θ ← θ(1 − ηλ), g ← ∇
/// m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²
/// θ ← θ − η/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
/// ```
public final class Adam: Optimizer {
    public var learningRate: Float
    public let beta1: Float
    public let beta2: Float
    public let epsilon: Float
    public let weightDecay: Float
    public let decoupledWeightDecay: Bool
    public private(set) var stepCount = 0
    private let parameters: [(name: String, parameter: Parameter)]
    private var firstMoments: [Tensor]
    private var secondMoments: [Tensor]

    public init(parameters: [(name: String, parameter: Parameter)], learningRate: Float = 1e-3, beta1: Float = 0.9,
                beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0, decoupledWeightDecay: Bool = false) throws {
        guard learningRate > 0, (0..<1).contains(beta1), (0..<1).contains(beta2), epsilon > 0, weightDecay >= 0 else {
            throw NeuralNetError.invalidConfiguration(
                "Adam: needs learning rate > 0, betas in [0, 1), epsilon > 0, weight decay >= 0")
        }
        (self.learningRate, self.beta1, self.beta2, self.epsilon, self.weightDecay, self.decoupledWeightDecay) =
            (learningRate, beta1, beta2, epsilon, weightDecay, decoupledWeightDecay)
        self.parameters = parameters
        firstMoments = parameters.map { Tensor(zeros: $0.parameter.value.shape) }
        secondMoments = firstMoments
    }

    public func step() {
        stepCount += 1
        let t = Float(stepCount)
        let stepSize = learningRate / (1 - powf(beta1, t))
        let correction2 = (1 - powf(beta2, t)).squareRoot()
        let (b1, b2, eps, lr, wd, decoupled) = (beta1, beta2, epsilon, learningRate, weightDecay, decoupledWeightDecay)
        for index in parameters.indices {
            let p = parameters[index].parameter
            let gradient = p.gradient
            p.value.withUnsafeMutableBufferPointer { theta in
                firstMoments[index].withUnsafeMutableBufferPointer { m in
                    secondMoments[index].withUnsafeMutableBufferPointer { v in
                        gradient.withUnsafeBufferPointer { grad in
                            for i in 0..<theta.count {
                                var g = grad[i]
                                if wd != 0 {
                                    if decoupled { theta[i] *= 1 - lr * wd } else { g += wd * theta[i] }
                                }
                                m[i] = b1 * m[i] + (1 - b1) * g
                                v[i] = b2 * v[i] + (1 - b2) * g * g
                                theta[i] -= stepSize * m[i] / (v[i].squareRoot() / correction2 + eps)
                            }
                        }
                    }
                }
            }
        }
    }

    public func stateTensors() -> [(String, Tensor)] {
        parameters.indices.flatMap { i in
            [("\(parameters[i].name).exp_avg", firstMoments[i]), ("\(parameters[i].name).exp_avg_sq", secondMoments[i])]
        }
    }

    /// Every moment must be present with its parameter's shape, and nothing else; nothing
    /// changes when this throws.
    public func loadState(_ tensors: [String: Tensor], stepCount: Int) throws {
        func moment(_ entry: (name: String, parameter: Parameter), _ suffix: String) throws -> Tensor {
            guard let t = tensors["\(entry.name).\(suffix)"] else {
                throw NeuralNetError.stateMismatch("Adam state is missing \(entry.name).\(suffix)")
            }
            try t.checkShape(entry.parameter.value.shape, "Adam state \(entry.name).\(suffix)")
            return t
        }
        let first = try parameters.map { try moment($0, "exp_avg") }
        let second = try parameters.map { try moment($0, "exp_avg_sq") }
        guard tensors.count == 2 * parameters.count else {
            throw NeuralNetError.stateMismatch("Adam state has \(tensors.count - 2 * parameters.count) unexpected tensors")
        }
        (firstMoments, secondMoments) = (first, second)
        self.stepCount = stepCount
    }
}

/// A learning rate as a function of the epoch (0-based), from a base rate.
public enum LearningRateSchedule: Sendable, Codable, Equatable {
    case constant
    /// `base · gamma^⌊epoch / stepSize⌋`, as `torch.optim.lr_scheduler.StepLR`.
    case step(stepSize: Int, gamma: Float)
    /// `minimum + (base − minimum)(1 + cos(π·epoch/totalEpochs))/2`, the closed form of
    /// `CosineAnnealingLR` (past `totalEpochs` it rises again, as PyTorch's does).
    case cosine(totalEpochs: Int, minimum: Float)

    public func learningRate(base: Float, epoch: Int) -> Float {
        switch self {
        case .constant:
            return base
        case let .step(stepSize, gamma):
            return base * powf(gamma, Float(epoch / max(1, stepSize)))
        case let .cosine(totalEpochs, minimum):
            let progress = Float(epoch) / Float(max(1, totalEpochs))
            return minimum + (base - minimum) * (1 + cosf(Float.pi * progress)) / 2
        }
    }
}
