import TensorCore

/// A trainable tensor and its accumulated gradient.
///
/// A reference type so that layers, optimisers and checkpoints all see the same storage,
/// as `torch.nn.Parameter` does.
///
/// `value` and `gradient` always have the same shape (assigning another shape is a
/// programming error and traps with both shapes), so optimisers can update them element by
/// element. Not thread-safe: a model is trained from one thread at a time.
public final class Parameter: @unchecked Sendable {
    public var value: Tensor {
        didSet { precondition(value.shape == gradient.shape, "Parameter value \(value.shape) vs gradient \(gradient.shape)") }
    }
    /// Sum of gradients since the last `zeroGradients()`; same shape as `value`.
    public var gradient: Tensor {
        didSet { precondition(value.shape == gradient.shape, "Parameter gradient \(gradient.shape) vs value \(value.shape)") }
    }

    public init(_ value: Tensor) {
        self.value = value
        self.gradient = Tensor(zeros: value.shape)
    }

    public func zeroGradient() { gradient.fill(0) }

    /// Adds `delta` into the gradient (shapes are the layer's own, so a mismatch is a bug).
    func accumulate(_ delta: Tensor) {
        do { try gradient.addScaled(delta) } catch { preconditionFailure("\(error)") }
    }
}

/// Whether a forward pass is for training (dropout active, batch statistics used and
/// running statistics updated, activations kept for `backward`) or for inference.
public enum Mode: Sendable { case training, inference }

/// What a state visitor is shown: a trained parameter or a non-trained buffer
/// (BatchNorm's running statistics), both saved in checkpoints under their dotted path.
public enum StateEntry {
    case parameter(Parameter)
    case buffer(get: () -> Tensor, set: (Tensor) -> Void)
    /// A scalar integer buffer (PyTorch int64, such as BatchNorm's `num_batches_tracked`).
    case integerBuffer(get: () -> Int, set: (Int) -> Void)
}

/// A differentiable building block with an explicit forward and backward pass.
///
/// `forward` caches (in `.training` mode) what `backward` needs; `backward` returns the
/// gradient with respect to the input and *adds* parameter gradients into each
/// `Parameter.gradient`, which `zeroGradients()` clears (as llm.c and PyTorch do).
public protocol Layer: AnyObject {
    /// - Throws: `TensorError` when the input's shape does not fit the layer.
    func forward(_ input: Tensor, mode: Mode) throws -> Tensor
    /// - Throws: `TensorError` when the gradient's shape does not match the last output, or
    ///   `NeuralNetError.backwardWithoutForward` when no forward pass that kept what this
    ///   layer needs preceded it (layers that cache activations keep them in `.training` only).
    func backward(_ gradOutput: Tensor) throws -> Tensor
    /// The backward pass for a caller that does not need the input gradient (the first layer
    /// of a network in training): adds parameter gradients and may skip the cost of the
    /// input gradient, as PyTorch does for inputs that don't require grad.
    func accumulateParameterGradients(_ gradOutput: Tensor) throws
    /// Visits every parameter and buffer with its dotted path under `prefix`
    /// (PyTorch's `state_dict` names, for example `encoder.0.weight`).
    func visitState(prefix: String, _ visit: (String, StateEntry) -> Void)
}

extension Layer {
    public func visitState(prefix: String, _ visit: (String, StateEntry) -> Void) {}

    public func accumulateParameterGradients(_ gradOutput: Tensor) throws { _ = try backward(gradOutput) }

    /// All parameters with their dotted paths, in definition order.
    public func namedParameters() -> [(name: String, parameter: Parameter)] {
        var result: [(String, Parameter)] = []
        visitState(prefix: "") { name, entry in
            if case let .parameter(p) = entry { result.append((name, p)) }
        }
        return result
    }

    public func parameters() -> [Parameter] { namedParameters().map(\.parameter) }

    public func zeroGradients() { for p in parameters() { p.zeroGradient() } }

    /// Number of trained scalars.
    public var parameterCount: Int { parameters().reduce(0) { $0 + $1.value.count } }
}

/// Joins a prefix and a name with a dot, as PyTorch's module paths do.
@inlinable
public func joinPath(_ prefix: String, _ name: String) -> String { prefix.isEmpty ? name : "\(prefix).\(name)" }

/// Errors raised by layers, losses, optimisers and checkpoints.
public enum NeuralNetError: Error, Equatable, CustomStringConvertible {
    case backwardWithoutForward(layer: String)
    case invalidConfiguration(String)
    case stateMismatch(String)

    public var description: String {
        switch self {
        case let .backwardWithoutForward(layer): return "\(layer).backward called without a training-mode forward pass"
        case let .invalidConfiguration(message): return message
        case let .stateMismatch(message): return message
        }
    }
}

/// Fetches a cached tensor or reports that `backward` came before `forward`.
@inlinable
func cached<T>(_ value: T?, _ layer: String) throws -> T {
    guard let value else { throw NeuralNetError.backwardWithoutForward(layer: layer) }
    return value
}
