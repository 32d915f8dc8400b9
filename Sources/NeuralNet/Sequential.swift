import TensorCore

/// Layers applied in order; children are named `0`, `1`, ... as in `torch.nn.Sequential`.
public final class Sequential: Layer {
    public private(set) var layers: [any Layer]

    public init(_ layers: [any Layer]) { self.layers = layers }

    public func forward(_ input: Tensor, mode: Mode) throws -> Tensor {
        var x = input
        for layer in layers { x = try layer.forward(x, mode: mode) }
        return x
    }

    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        var g = gradOutput
        for layer in layers.reversed() { g = try layer.backward(g) }
        return g
    }

    public func visitState(prefix: String, _ visit: (String, StateEntry) -> Void) {
        for (index, layer) in layers.enumerated() {
            layer.visitState(prefix: joinPath(prefix, String(index)), visit)
        }
    }
}
