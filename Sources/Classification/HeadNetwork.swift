import NeuralNet
import TensorCore

/// An encoder (possibly empty) followed by a classification head, with the encoder's first
/// layers optionally frozen. State names follow PyTorch's module paths: `encoder.<i>.weight`
/// for the pretrained layers (as in the pretraining checkpoint), `head.<j>.weight` for the new.
final class HeadNetwork: Layer {
    let encoderLayers: [any Layer]
    let headLayers: [any Layer]
    /// The first layers, run in inference mode and never updated.
    private let frozen: Sequential
    /// Everything after them.
    private let trainable: Sequential

    /// - Parameter frozenLayers: how many of `encoderLayers` (counting layers with weights)
    ///   stay fixed; the parameter-free layers that follow the last frozen one are frozen too.
    init(encoder: [any Layer], head: [any Layer], frozenLayers: Int) {
        encoderLayers = encoder
        headLayers = head
        var cut = 0
        var weighted = 0
        while cut < encoder.count {
            if encoder[cut].parameterCount > 0 {
                if weighted == frozenLayers { break }
                weighted += 1
            }
            cut += 1
        }
        frozen = Sequential(Array(encoder[..<cut]))
        trainable = Sequential(Array(encoder[cut...]) + head)
    }

    /// Parameters that training updates, with their state names.
    var trainableParameters: [(name: String, parameter: Parameter)] {
        let wanted = Set(trainable.parameters().map { ObjectIdentifier($0) })
        return namedParameters().filter { wanted.contains(ObjectIdentifier($0.parameter)) }
    }

    /// Logits `[N, k]` of inputs `[N, …]`.
    func forward(_ input: Tensor, mode: Mode) throws -> Tensor {
        try trainable.forward(try frozen.forward(input, mode: .inference), mode: mode)
    }

    func backward(_ gradOutput: Tensor) throws -> Tensor {
        try frozen.backward(try trainable.backward(gradOutput))
    }

    /// Gradients of the trainable parameters only (no gradient reaches the frozen layers).
    func accumulateParameterGradients(_ gradOutput: Tensor) throws {
        try trainable.accumulateParameterGradients(gradOutput)
    }

    func visitState(prefix: String, _ visit: (String, StateEntry) -> Void) {
        for (i, layer) in encoderLayers.enumerated() { layer.visitState(prefix: joinPath(prefix, "encoder.\(i)"), visit) }
        for (j, layer) in headLayers.enumerated() { layer.visitState(prefix: joinPath(prefix, "head.\(j)"), visit) }
    }

    /// `[Dropout → Dense → ReLU]` per hidden width, then `Dropout → Dense(k)`.
    static func denseHead(inputs: Int, hidden: [Int], classes: Int, dropout: Float, seed: UInt64) throws -> [any Layer] {
        var layers: [any Layer] = []
        var width = inputs
        for (i, h) in (hidden + [classes]).enumerated() {
            if dropout > 0 { layers.append(try Dropout(probability: dropout, seed: SplitMix64.derive(seed, UInt64(i)))) }
            var generator = Xoshiro256StarStar(seed: SplitMix64.derive(seed, 100 + UInt64(i)))
            layers.append(Dense(inFeatures: width, outFeatures: h, initialization: i == hidden.count ? .xavier : .he, using: &generator))
            if i < hidden.count { layers.append(ReLU()) }
            width = h
        }
        return layers
    }
}

/// Fixed per-feature standardisation of `[N, F]`, `(x − mean) / scale`, fitted once on the
/// training scans' encoder outputs before the head is trained (as a standardiser before an
/// SVM): pooled feature maps can be far from unit scale, which would saturate a fresh dense
/// layer. Saved as buffers `mean` and `scale`; never trained.
final class Standardisation: Layer {
    private(set) var mean: Tensor
    private(set) var scale: Tensor

    init(features: Int) {
        mean = Tensor(zeros: [features])
        scale = Tensor(repeating: 1, shape: [features])
    }

    /// Sets the statistics from rows `[N, F]`: the mean, and the population SD floored at a
    /// tenth of the features' median SD (a nearly constant feature, such as a channel that
    /// is almost never active, would otherwise be blown up by augmentation and dropout).
    func fit(_ rows: Tensor) {
        let (n, f) = (rows.shape[0], rows.shape[1])
        var means = [Float](repeating: 0, count: f), deviations = [Double](repeating: 0, count: f)
        for j in 0..<f {
            var total = 0.0
            for i in 0..<n { total += Double(rows.scalars[i * f + j]) }
            let m = total / Double(max(1, n))
            var squares = 0.0
            for i in 0..<n { let e = Double(rows.scalars[i * f + j]) - m; squares += e * e }
            means[j] = Float(m)
            deviations[j] = (squares / Double(max(1, n))).squareRoot()
        }
        let median = deviations.sorted()[f / 2]
        let floor = median > 0 ? median / 10 : 1
        let scales = deviations.map { Float(max($0, floor)) }
        mean = Tensor(uninitializedShape: [f]) { out in for j in 0..<f { out[j] = means[j] } }
        scale = Tensor(uninitializedShape: [f]) { out in for j in 0..<f { out[j] = scales[j] } }
    }

    func forward(_ input: Tensor, mode: Mode) throws -> Tensor {
        try input.checkShape([input.shape.first ?? 0, mean.count], "Standardisation")
        let f = mean.count
        var out = input
        out.withUnsafeMutableBufferPointer { p in
            for i in 0..<p.count { p[i] = (p[i] - mean.scalars[i % f]) / scale.scalars[i % f] }
        }
        return out
    }

    func backward(_ gradOutput: Tensor) throws -> Tensor {
        let f = mean.count
        var out = gradOutput
        out.withUnsafeMutableBufferPointer { p in
            for i in 0..<p.count { p[i] /= scale.scalars[i % f] }
        }
        return out
    }

    func visitState(prefix: String, _ visit: (String, StateEntry) -> Void) {
        visit(joinPath(prefix, "mean"), .buffer(get: { self.mean }, set: { self.mean = $0 }))
        visit(joinPath(prefix, "scale"), .buffer(get: { self.scale }, set: { self.scale = $0 }))
    }
}
