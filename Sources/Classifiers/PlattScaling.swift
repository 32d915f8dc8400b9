import Foundation
import TensorCore

/// Class probabilities from SVM decision values, as libsvm computes them: Platt's sigmoid per
/// one-vs-one pair, fitted on cross-validated decision values, then pairwise coupling.
///
/// ```
/// P(y = +1 | f) = 1 / (1 + exp(A f + B))          (Platt 2000)
/// ```
/// `A` and `B` minimise the cross-entropy against Platt's regularised targets
/// `t₊ = (N₊ + 1) / (N₊ + 2)`, `t₋ = 1 / (N₋ + 2)`, by Newton's method with a backtracking
/// line search (Lin, Lin & Weng, "A note on Platt's probabilistic outputs for support vector
/// machines", Machine Learning 68, 2007). `A` is usually negative: `f > 0` means the pair's
/// first class (libsvm's sign; scikit-learn's `probA_`, `probB_` are the same numbers).
enum PlattScaling {
    /// libsvm's `svm_binary_svc_probability`: decision values of every sample from a model
    /// trained without it (`folds`-fold cross-validation on a seeded shuffle), then the sigmoid
    /// fitted on them.
    /// - Parameters:
    ///   - labels: `y_i` ∈ {+1, −1} of the pair's samples, `[l]`.
    ///   - generator: the shuffle's source (advanced by `l` draws).
    ///   - decide: trains on the samples `train` and returns the decision values of `test`
    ///     (positions into `labels`; both classes are present in `train`).
    /// - Returns: the sigmoid's `(A, B)`.
    static func crossValidatedSigmoid(
        labels: [Int8], folds: Int = 5, generator: inout Xoshiro256StarStar,
        decide: (_ train: [Int], _ test: [Int]) -> [Double]
    ) -> (a: Double, b: Double) {
        let l = labels.count
        var order = Array(0..<l)
        for i in 0..<l { order.swapAt(i, i + generator.nextIndex(below: l - i)) }
        var decisions = [Double](repeating: 0, count: l)
        for fold in 0..<folds {
            let begin = fold * l / folds, end = (fold + 1) * l / folds
            let train = Array(order[..<begin] + order[end...])
            let test = Array(order[begin..<end])
            let positives = train.filter { labels[$0] == 1 }.count
            let negatives = train.count - positives
            // A fold whose training part lacks a class predicts that class's sign outright.
            let values: [Double]
            if positives == 0 && negatives == 0 {
                values = Array(repeating: 0, count: test.count)
            } else if negatives == 0 {
                values = Array(repeating: 1, count: test.count)
            } else if positives == 0 {
                values = Array(repeating: -1, count: test.count)
            } else {
                values = decide(train, test)
            }
            for (t, sample) in test.enumerated() { decisions[sample] = values[t] }
        }
        return sigmoid(decisionValues: decisions, positive: labels.map { $0 == 1 })
    }

    /// libsvm's `sigmoid_train`: `(A, B)` minimising
    ///
    /// ```
    /// F(A, B) = Σ_i −t_i log p_i − (1 − t_i) log(1 − p_i),   p_i = 1 / (1 + exp(A f_i + B))
    /// ```
    /// from `A = 0`, `B = log((N₋ + 1) / (N₊ + 1))`, by Newton steps on `H + σI` (σ = 1e-12)
    /// with backtracking (sufficient decrease 1e-4), until both gradient entries are below 1e-5
    /// (at most 100 iterations; steps below 1e-10 end the search).
    /// - Parameters:
    ///   - decisionValues: `f_i`, `[l]`.
    ///   - positive: whether sample `i` is of the positive class, `[l]`.
    static func sigmoid(decisionValues f: [Double], positive: [Bool]) -> (a: Double, b: Double) {
        let prior1 = Double(positive.filter { $0 }.count)
        let prior0 = Double(positive.count) - prior1
        let maxIterations = 100
        let minStep = 1e-10
        let sigma = 1e-12
        let eps = 1e-5
        let hiTarget = (prior1 + 1) / (prior1 + 2)
        let loTarget = 1 / (prior0 + 2)
        let t = positive.map { $0 ? hiTarget : loTarget }
        var a = 0.0
        var b = log((prior0 + 1) / (prior1 + 1))

        // Written in the two forms that never exponentiate a large positive number.
        func objective(_ a: Double, _ b: Double) -> Double {
            var value = 0.0
            for i in 0..<f.count {
                let fApB = f[i] * a + b
                value += fApB >= 0 ? t[i] * fApB + log(1 + exp(-fApB)) : (t[i] - 1) * fApB + log(1 + exp(fApB))
            }
            return value
        }

        var value = objective(a, b)
        for _ in 0..<maxIterations {
            var (h11, h22, h21, g1, g2) = (sigma, sigma, 0.0, 0.0, 0.0)
            for i in 0..<f.count {
                let fApB = f[i] * a + b
                let (p, q): (Double, Double)
                if fApB >= 0 {
                    p = exp(-fApB) / (1 + exp(-fApB))
                    q = 1 / (1 + exp(-fApB))
                } else {
                    p = 1 / (1 + exp(fApB))
                    q = exp(fApB) / (1 + exp(fApB))
                }
                let d2 = p * q
                h11 += f[i] * f[i] * d2
                h22 += d2
                h21 += f[i] * d2
                let d1 = t[i] - p
                g1 += f[i] * d1
                g2 += d1
            }
            if abs(g1) < eps && abs(g2) < eps { break }
            // Newton direction −(H + σI)⁻¹ g.
            let det = h11 * h22 - h21 * h21
            let dA = -(h22 * g1 - h21 * g2) / det
            let dB = -(-h21 * g1 + h11 * g2) / det
            let gd = g1 * dA + g2 * dB
            var step = 1.0
            while step >= minStep {
                let (newA, newB) = (a + step * dA, b + step * dB)
                let newValue = objective(newA, newB)
                if newValue < value + 1e-4 * step * gd {
                    (a, b, value) = (newA, newB, newValue)
                    break
                }
                step /= 2
            }
            if step < minStep { break }
        }
        return (a, b)
    }

    /// `P(y = +1 | f)` under the sigmoid `(a, b)`, in the form that avoids cancellation.
    static func probability(_ f: Double, a: Double, b: Double) -> Double {
        let fApB = f * a + b
        return fApB >= 0 ? exp(-fApB) / (1 + exp(-fApB)) : 1 / (1 + exp(fApB))
    }

    /// Pairwise coupling, method 2 of Wu, Lin & Weng, "Probability estimates for multi-class
    /// classification by pairwise coupling", JMLR 5 (2004) 975–1005 (libsvm's
    /// `multiclass_probability`): the `p` on the simplex minimising
    ///
    /// ```
    /// Σ_i Σ_{j≠i} (r_ji p_i − r_ij p_j)²,   Q_tt = Σ_{j≠t} r_jt²,  Q_tj = −r_jt r_tj
    /// ```
    /// by cyclic coordinate updates until `max_t |(Qp)_t − pᵀQp| < 0.005 / k` (at most
    /// `max(100, k)` sweeps).
    /// - Parameter r: `r[i][j]` ≈ P(class i | class i or j), `r[j][i] = 1 − r[i][j]`, `[k, k]`.
    /// - Returns: `p`, `[k]`, summing to one.
    static func coupling(_ r: [[Double]]) -> [Double] {
        let k = r.count
        var p = [Double](repeating: 1 / Double(k), count: k)
        var q = [[Double]](repeating: [Double](repeating: 0, count: k), count: k)
        for t in 0..<k {
            for j in 0..<t {
                q[t][t] += r[j][t] * r[j][t]
                q[t][j] = q[j][t]
            }
            for j in (t + 1)..<max(t + 1, k) {
                q[t][t] += r[j][t] * r[j][t]
                q[t][j] = -r[j][t] * r[t][j]
            }
        }
        let eps = 0.005 / Double(k)
        var qp = [Double](repeating: 0, count: k)
        for _ in 0..<max(100, k) {
            // Recomputed each sweep for accuracy.
            var pQp = 0.0
            for t in 0..<k {
                qp[t] = 0
                for j in 0..<k { qp[t] += q[t][j] * p[j] }
                pQp += p[t] * qp[t]
            }
            var maxError = 0.0
            for t in 0..<k { maxError = max(maxError, abs(qp[t] - pQp)) }
            if maxError < eps { break }
            for t in 0..<k {
                let diff = (-qp[t] + pQp) / q[t][t]
                p[t] += diff
                pQp = (pQp + diff * (diff * q[t][t] + 2 * qp[t])) / (1 + diff) / (1 + diff)
                for j in 0..<k {
                    qp[j] = (qp[j] + diff * q[t][j]) / (1 + diff)
                    p[j] /= 1 + diff
                }
            }
        }
        return p
    }
}
