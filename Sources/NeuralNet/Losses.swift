import Foundation
import TensorCore

/// A scalar loss and its gradient with respect to the loss function's first input.
public struct LossValue: Sendable {
    public var value: Float
    public var gradient: Tensor
}

/// Loss functions. Each returns the value and the gradient to feed into `backward`.
public enum Loss {
    /// Mean squared error over all elements, as `F.mse_loss(reduction="mean")`.
    /// ```
    /// L = mean((p − t)²),  ∂L/∂p = 2(p − t) / count
    /// ```
    public static func meanSquaredError(_ prediction: Tensor, _ target: Tensor) throws -> LossValue {
        try target.checkShape(prediction.shape, "meanSquaredError target")
        let scale = 2 / Float(max(1, prediction.count))
        let gradient = try prediction.parallelZipMap(target, "meanSquaredError") { ($0 - $1) * scale }
        // Σ(p − t)² recovered from the gradient: (g / scale)².
        let total = gradient.sumOfSquares() / Double(scale * scale)
        return LossValue(value: Float(total / Double(max(1, prediction.count))), gradient: gradient)
    }

    /// Half the squared error summed over features, averaged over samples: the
    /// reconstruction term of the UFLDL sparse autoencoder.
    /// ```
    /// L = ½ · mean_i ‖p_i − t_i‖²,  ∂L/∂p = (p − t) / N        (p, t: [N, ...])
    /// ```
    public static func halfSumSquaredError(_ prediction: Tensor, _ target: Tensor) throws -> LossValue {
        try target.checkShape(prediction.shape, "halfSumSquaredError target")
        let n = Float(max(1, prediction.shape.first ?? 1))
        let difference = try prediction.parallelZipMap(target, "halfSumSquaredError") { $0 - $1 }
        return LossValue(value: Float(0.5 * difference.sumOfSquares() / Double(n)), gradient: difference.parallelMap { $0 / n })
    }

    /// Binary cross-entropy on probabilities (after a sigmoid), mean over elements, as
    /// `F.binary_cross_entropy` (log terms clamped at −100, as PyTorch does).
    /// ```
    /// L = −mean(t·log p + (1 − t)·log(1 − p)),  ∂L/∂p = (p − t) / (p(1 − p)) / count
    /// ```
    public static func binaryCrossEntropy(_ probabilities: Tensor, _ target: Tensor) throws -> LossValue {
        try target.checkShape(probabilities.shape, "binaryCrossEntropy target")
        let n = Float(max(1, probabilities.count))
        var total = 0.0
        for (p, t) in zip(probabilities.scalars, target.scalars) {
            total -= Double(t * max(logf(p), -100) + (1 - t) * max(logf(1 - p), -100))
        }
        let gradient = try probabilities.zipMap(target, "binaryCrossEntropy") { p, t in
            (p - t) / max(p * (1 - p), 1e-12) / n
        }
        return LossValue(value: Float(total / Double(n)), gradient: gradient)
    }

    /// Softmax cross-entropy on logits `[N, C]` with integer labels, optionally class-weighted
    /// (as `F.cross_entropy(weight=...)`: a weighted mean over samples).
    /// ```
    /// L = Σ_i w_{y_i} · (−log softmax(z_i)_{y_i}) / Σ_i w_{y_i}
    /// ∂L/∂z_i = w_{y_i} · (softmax(z_i) − onehot(y_i)) / Σ_i w_{y_i}
    /// ```
    public static func softmaxCrossEntropy(logits: Tensor, labels: [Int], classWeights: [Float]? = nil) throws -> LossValue {
        try logits.checkRank(2, "softmaxCrossEntropy", layout: "N, C")
        let (n, c) = (logits.shape[0], logits.shape[1])
        guard labels.count == n else {
            throw TensorError.shapeMismatch(operation: "softmaxCrossEntropy labels", expected: [n], got: [labels.count])
        }
        if let classWeights, classWeights.count != c {
            throw TensorError.shapeMismatch(operation: "softmaxCrossEntropy class weights", expected: [c], got: [classWeights.count])
        }
        if let bad = labels.first(where: { $0 < 0 || $0 >= c }) {
            throw TensorError.invalidArgument(operation: "softmaxCrossEntropy", reason: "label \(bad) outside 0..<\(c)")
        }
        var probabilities = try Softmax.probabilities(logits)
        let weights = labels.map { classWeights?[$0] ?? 1 }
        // −log p_y from the log-sum-exp of the logits, exact even where p_y underflows.
        let negativeLogLikelihood: [Double] = (0..<n).map { i in
            let row = logits.scalars[(i * c)..<((i + 1) * c)]
            let largest = Double(row.max() ?? 0)
            let logSum = log(row.reduce(0.0) { $0 + exp(Double($1) - largest) })
            return largest + logSum - Double(logits.scalars[i * c + labels[i]])
        }
        let totalWeight = weights.reduce(0, +)
        guard totalWeight > 0 else {
            throw TensorError.invalidArgument(operation: "softmaxCrossEntropy", reason: "class weights of the batch's labels sum to zero")
        }
        var loss = 0.0
        probabilities.withUnsafeMutableBufferPointer { p in
            for i in 0..<n {
                let base = i * c
                loss += Double(weights[i]) * negativeLogLikelihood[i]
                p[base + labels[i]] -= 1
                for j in 0..<c { p[base + j] *= weights[i] / totalWeight }
            }
        }
        return LossValue(value: Float(loss / Double(totalWeight)), gradient: probabilities)
    }

    /// The KL-divergence sparsity penalty of sparse autoencoders (Ng, *Sparse autoencoder*,
    /// CS294A notes) on hidden activations `[N, H]` in (0, 1).
    /// ```
    /// ρ̂_j = mean_i a_ij (clamped to [1e-6, 1 − 1e-6])
    /// P = β · Σ_j [ρ log(ρ/ρ̂_j) + (1 − ρ) log((1 − ρ)/(1 − ρ̂_j))]
    /// ∂P/∂a_ij = β/N · (−ρ/ρ̂_j + (1 − ρ)/(1 − ρ̂_j))
    /// ```
    /// - Parameters:
    ///   - targetSparsity: ρ, the desired mean activation (UFLDL uses 0.01–0.05).
    ///   - weight: β, the penalty's weight.
    public static func sparsityPenalty(activations: Tensor, targetSparsity rho: Float, weight beta: Float) throws -> LossValue {
        try activations.checkRank(2, "sparsityPenalty", layout: "N, H")
        guard rho > 0 && rho < 1 else {
            throw TensorError.invalidArgument(operation: "sparsityPenalty", reason: "target sparsity \(rho) must be in (0, 1)")
        }
        let (n, h) = (activations.shape[0], activations.shape[1])
        let meanActivation = try activations.mean(axis: 0)
        var penalty = 0.0
        var derivative = [Float](repeating: 0, count: h)
        let (low, high): (Float, Float) = (1e-6, 1 - 1e-6)
        for j in 0..<h {
            let raw = meanActivation.scalars[j]
            let r = min(max(raw, low), high)
            penalty += Double(rho * logf(rho / r) + (1 - rho) * logf((1 - rho) / (1 - r)))
            // The clamp has zero slope outside its range, as torch.clamp does.
            derivative[j] = (raw < low || raw > high) ? 0 : beta / Float(n) * (-rho / r + (1 - rho) / (1 - r))
        }
        let gradient = Tensor(uninitializedShape: [n, h]) { g in
            for i in 0..<n { for j in 0..<h { g[i * h + j] = derivative[j] } }
        }
        return LossValue(value: beta * Float(penalty), gradient: gradient)
    }

    /// L2 weight decay `λ/2 · Σ ‖W‖²` over `parameters`; adds `λ·W` to each gradient and
    /// returns the penalty.
    @discardableResult
    public static func applyWeightDecay(_ parameters: [Parameter], lambda: Float) -> Float {
        var total = 0.0
        for p in parameters {
            for v in p.value.scalars { total += Double(v * v) }
            p.accumulate(p.value.scaled(by: lambda))
        }
        return Float(0.5 * Double(lambda) * total)
    }
}
