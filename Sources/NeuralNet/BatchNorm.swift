import TensorCore

/// Batch normalisation (Ioffe & Szegedy 2015) over the channel axis of `[N, C]` (1-d) or
/// `[N, C, D, H, W]` (3-d) inputs, as `nn.BatchNorm1d` / `nn.BatchNorm3d`.
///
/// ```
/// y = (x − mean) / sqrt(var + eps) · weight + bias
/// ```
/// Training uses the batch's statistics (biased variance) and updates the running ones,
/// `running = (1 − momentum)·running + momentum·batch` (unbiased variance); inference uses
/// the running statistics. State names follow PyTorch: `weight`, `bias`, `running_mean`,
/// `running_var`, `num_batches_tracked`.
public final class BatchNorm: Layer {
    public let features: Int
    public let spatial: Bool
    public let epsilon: Float
    public let momentum: Float
    public let weight: Parameter
    public let bias: Parameter
    public private(set) var runningMean: Tensor
    public private(set) var runningVariance: Tensor
    public private(set) var batchesTracked: Int = 0
    private var cache: (normalized: Tensor, inverseStd: [Float], mode: Mode)?

    /// - Parameters:
    ///   - features: channels `C`.
    ///   - spatial: `true` for `[N, C, D, H, W]` inputs (BatchNorm3d), `false` for `[N, C]`.
    public init(features: Int, spatial: Bool, epsilon: Float = 1e-5, momentum: Float = 0.1) {
        precondition(features > 0, "BatchNorm: features must be positive")
        (self.features, self.spatial, self.epsilon, self.momentum) = (features, spatial, epsilon, momentum)
        weight = Parameter(Tensor(repeating: 1, shape: [features]))
        bias = Parameter(Tensor(zeros: [features]))
        runningMean = Tensor(zeros: [features])
        runningVariance = Tensor(repeating: 1, shape: [features])
    }

    private func layout(_ x: Tensor, _ operation: String) throws -> (n: Int, inner: Int) {
        guard x.rank == (spatial ? 5 : 2), x.shape[1] == features else {
            throw TensorError.invalidShape(operation: operation, shape: x.shape,
                                           reason: spatial ? "expected [N, \(features), D, H, W]" : "expected [N, \(features)]")
        }
        return (x.shape[0], spatial ? x.shape[2...].reduce(1, *) : 1)
    }

    public func forward(_ x: Tensor, mode: Mode) throws -> Tensor {
        let (n, inner) = try layout(x, "BatchNorm")
        let perChannel = n * inner
        var mean = runningMean.scalars
        var variance = runningVariance.scalars
        if mode == .training {
            guard perChannel > 1 else {
                throw TensorError.invalidArgument(operation: "BatchNorm", reason: "training needs more than one value per channel, got input \(x.shape)")
            }
            for c in 0..<features {
                var total = 0.0, squares = 0.0
                for s in 0..<n {
                    let base = (s * features + c) * inner
                    for i in 0..<inner {
                        let v = Double(x.scalars[base + i])
                        total += v
                        squares += v * v
                    }
                }
                let m = total / Double(perChannel)
                let v = max(0, squares / Double(perChannel) - m * m)
                mean[c] = Float(m)
                variance[c] = Float(v)
            }
            runningMean = try Tensor(shape: [features], scalars: (0..<features).map {
                (1 - momentum) * runningMean.scalars[$0] + momentum * mean[$0]
            })
            let unbias = Float(perChannel) / Float(perChannel - 1)
            runningVariance = try Tensor(shape: [features], scalars: (0..<features).map {
                (1 - momentum) * runningVariance.scalars[$0] + momentum * variance[$0] * unbias
            })
            batchesTracked += 1
        }
        let inverseStd = variance.map { 1 / ($0 + epsilon).squareRoot() }
        var normalized = x
        var y = x
        normalized.withUnsafeMutableBufferPointer { xhat in
            y.withUnsafeMutableBufferPointer { out in
                for s in 0..<n {
                    for c in 0..<features {
                        let base = (s * features + c) * inner
                        let (m, k, g, b) = (mean[c], inverseStd[c], weight.value.scalars[c], bias.value.scalars[c])
                        for i in 0..<inner {
                            let h = (xhat[base + i] - m) * k
                            xhat[base + i] = h
                            out[base + i] = h * g + b
                        }
                    }
                }
            }
        }
        cache = (normalized, inverseStd, mode)
        return y
    }

    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        let (xhat, inverseStd, mode) = try cached(cache, "BatchNorm")
        try gradOutput.checkShape(xhat.shape, "BatchNorm.backward")
        let (n, inner) = try layout(xhat, "BatchNorm.backward")
        let count = Float(n * inner)
        var gradWeight = [Float](repeating: 0, count: features)
        var gradBias = [Float](repeating: 0, count: features)
        for c in 0..<features {
            var sumG = 0.0, sumGX = 0.0
            for s in 0..<n {
                let base = (s * features + c) * inner
                for i in 0..<inner {
                    sumG += Double(gradOutput.scalars[base + i])
                    sumGX += Double(gradOutput.scalars[base + i] * xhat.scalars[base + i])
                }
            }
            gradBias[c] = Float(sumG)
            gradWeight[c] = Float(sumGX)
        }
        weight.accumulate(try Tensor(shape: [features], scalars: gradWeight))
        bias.accumulate(try Tensor(shape: [features], scalars: gradBias))
        var dx = gradOutput
        dx.withUnsafeMutableBufferPointer { d in
            for s in 0..<n {
                for c in 0..<features {
                    let base = (s * features + c) * inner
                    let scale = weight.value.scalars[c] * inverseStd[c]
                    for i in 0..<inner {
                        if mode == .training {
                            // dx = γ/σ · (g − mean(g) − x̂ · mean(g·x̂))
                            d[base + i] = scale * (d[base + i] - gradBias[c] / count - xhat.scalars[base + i] * gradWeight[c] / count)
                        } else {
                            d[base + i] = scale * d[base + i]
                        }
                    }
                }
            }
        }
        return dx
    }

    public func visitState(prefix: String, _ visit: (String, StateEntry) -> Void) {
        visit(joinPath(prefix, "weight"), .parameter(weight))
        visit(joinPath(prefix, "bias"), .parameter(bias))
        visit(joinPath(prefix, "running_mean"), .buffer(get: { self.runningMean }, set: { self.runningMean = $0 }))
        visit(joinPath(prefix, "running_var"), .buffer(get: { self.runningVariance }, set: { self.runningVariance = $0 }))
        visit(joinPath(prefix, "num_batches_tracked"),
              .integerBuffer(get: { self.batchesTracked }, set: { self.batchesTracked = $0 }))
    }
}
