/// The solution of one binary C-SVC dual problem.
struct SolutionInfo: Sendable, Equatable {
    /// `α_i` (non-negative, unsigned), `[l]`, in the problem's order.
    var alpha: [Double]
    /// The offset `ρ` of the decision function `f(x) = Σ y_i α_i K(x_i, x) − ρ`.
    var rho: Double
    /// The dual objective `½ αᵀQα − eᵀα` at `α` (libsvm's `si->obj`).
    var objective: Double
    /// Solver iterations (working-set updates).
    var iterations: Int
    /// Whether each `α_i` ended at its upper bound `C_i`, `[l]`.
    var atUpperBound: [Bool]
    /// False when `maxIterations` stopped the solver before the stopping criterion held.
    var converged: Bool
}

/// Sequential minimal optimisation for the C-SVC dual, as libsvm's `Solver` (Chang & Lin,
/// "LIBSVM: a library for support vector machines", ACM TIST 2011):
///
/// ```
/// min_α  ½ αᵀQα − eᵀα
/// s.t.   0 ≤ α_i ≤ C_i,   yᵀα = 0,      Q_ij = y_i y_j K(x_i, x_j),  y_i ∈ {+1, −1}
/// ```
///
/// Each iteration updates two variables analytically. The pair is chosen by the
/// second-order working set selection of Fan, Chen & Lin, "Working set selection using
/// second order information for training support vector machines", JMLR 6 (2005) 1889–1918
/// (WSS 2): `i` is the maximal violator, `j` the variable of the other side that promises the
/// largest decrease of the objective. The solver stops when the maximal KKT violation
/// `m(α) − M(α)` drops below `tolerance`.
///
/// With `shrinking`, every `min(l, 1000)` iterations the variables that sit at a bound and
/// are unlikely to move are removed from the active set (moved behind it, together with
/// their rows and columns of `Q`); their gradients are rebuilt from `Ḡ` (the gradient part
/// due to variables at their upper bound) and the free variables once the violation is within
/// `10 · tolerance`, and at the end, before optimality is checked on all variables.
///
/// The gradient and `α` are kept in double precision; `Q` in single precision (libsvm's
/// `Qfloat`).
struct SMOSolver: Sendable {
    /// Stopping tolerance on the maximal violation (libsvm's `eps`).
    var tolerance: Double
    /// Whether to shrink the active set.
    var shrinking: Bool
    /// Iteration limit; nil for none.
    var maxIterations: Int?

    /// Solves the dual for `q` from `α = 0`.
    /// - Parameters:
    ///   - q: the problem's `Q`, `[l, l]`.
    ///   - labels: `y_i` ∈ {+1, −1}, `[l]`.
    ///   - bounds: `C_i > 0`, `[l]`.
    /// - Returns: `α`, `ρ`, the objective and the iteration count.
    func solve(_ q: QMatrix, labels: [Int8], bounds: [Double]) -> SolutionInfo {
        let run = SMORun(q, labels: labels, bounds: bounds, settings: self)
        return run.solve()
    }
}

/// The state of one solve. Arrays are raw buffers: the inner loops run over them millions of
/// times, and shrinking exchanges entries of all of them together.
private final class SMORun {
    enum Status: UInt8 { case lowerBound, upperBound, free }

    /// libsvm's `TAU`: replaces a non-positive curvature `Q_ii + Q_jj − 2 y_i y_j Q_ij`
    /// (a non-PSD kernel such as the sigmoid, or rounding) so the step stays finite.
    private static let tau = 1e-12

    let l: Int
    let q: QMatrix
    let eps: Double
    let shrinking: Bool
    let maxIterations: Int?
    let y: UnsafeMutablePointer<Int8>
    /// `y_i` as a Double, for the loops without branches on the class.
    let sign: UnsafeMutablePointer<Double>
    /// Membership of `I_up = {t : y_t = +1, α_t < C_t} ∪ {t : y_t = −1, α_t > 0}` (the
    /// variables that may move in the direction of `y_t`) and of `I_low` (the opposite), as
    /// additive masks: 0 for members, NaN otherwise, so that `value + mask` is NaN outside
    /// the set and never wins a comparison, without a branch or a select.
    let upMask: UnsafeMutablePointer<Double>
    let lowMask: UnsafeMutablePointer<Double>
    let alpha: UnsafeMutablePointer<Double>
    let status: UnsafeMutablePointer<Status>
    /// Gradient `Qα − e`.
    let gradient: UnsafeMutablePointer<Double>
    /// `Ḡ_i = Σ_{j: α_j = C_j} C_j Q_ij`, so that a shrunk variable's gradient can be rebuilt
    /// from the free variables alone.
    let gradientBar: UnsafeMutablePointer<Double>
    let bound: UnsafeMutablePointer<Double>
    /// `Q_ii`, in the current order.
    let diagonal: UnsafeMutablePointer<Double>
    /// Original index of the variable at each position.
    let activeSet: UnsafeMutablePointer<Int>
    var activeSize: Int
    /// Set once the gradient has been rebuilt near the end (libsvm's `unshrink`).
    var unshrunk = false
    /// Exchanges of one shrinking pass, handed to `Q` together.
    var swaps: [(Int, Int)] = []

    init(_ q: QMatrix, labels: [Int8], bounds: [Double], settings: SMOSolver) {
        let l = q.count
        self.l = l
        self.q = q
        eps = settings.tolerance
        shrinking = settings.shrinking
        maxIterations = settings.maxIterations
        y = .allocate(capacity: l)
        sign = .allocate(capacity: l)
        upMask = .allocate(capacity: l)
        lowMask = .allocate(capacity: l)
        alpha = .allocate(capacity: l)
        status = .allocate(capacity: l)
        gradient = .allocate(capacity: l)
        gradientBar = .allocate(capacity: l)
        bound = .allocate(capacity: l)
        diagonal = .allocate(capacity: l)
        activeSet = .allocate(capacity: l)
        activeSize = l
        for i in 0..<l {
            y[i] = labels[i]
            sign[i] = Double(labels[i])
            alpha[i] = 0
            status[i] = .lowerBound
            upMask[i] = labels[i] == 1 ? 0 : .nan
            lowMask[i] = labels[i] == 1 ? .nan : 0
            // α = 0: the gradient is −e and no variable is at its upper bound.
            gradient[i] = -1
            gradientBar[i] = 0
            bound[i] = bounds[i]
            diagonal[i] = q.diagonal[i]
            activeSet[i] = i
        }
    }

    deinit {
        y.deallocate()
        sign.deallocate()
        upMask.deallocate()
        lowMask.deallocate()
        alpha.deallocate()
        status.deallocate()
        gradient.deallocate()
        gradientBar.deallocate()
        bound.deallocate()
        diagonal.deallocate()
        activeSet.deallocate()
    }

    func solve() -> SolutionInfo {
        var iterations = 0
        var converged = true
        // Shrink after min(l, 1000) iterations, then every min(l, 1000).
        var counter = min(l, 1000) + 1
        while true {
            if let maxIterations, iterations >= maxIterations {
                converged = false
                break
            }
            counter -= 1
            if counter == 0 {
                counter = min(l, 1000)
                if shrinking { shrink() }
            }
            var pair = selectWorkingSet()
            if pair == nil {
                // Optimal on the active set: check all variables with their true gradients.
                reconstructGradient()
                activeSize = l
                pair = selectWorkingSet()
                if pair == nil { break }
                counter = 1  // shrink again at the next iteration
            }
            guard let (i, j) = pair else { break }
            iterations += 1
            update(i, j)
        }
        if !converged && activeSize < l {
            // The objective and ρ need every gradient.
            reconstructGradient()
            activeSize = l
        }
        let rho = calculateRho()
        var sum = 0.0
        // obj = ½ αᵀQα − eᵀα = ½ Σ α_i (G_i + p_i) with G = Qα + p, p = −e.
        for i in 0..<l { sum += alpha[i] * (gradient[i] - 1) }
        var alphas = [Double](repeating: 0, count: l)
        var upper = [Bool](repeating: false, count: l)
        for i in 0..<l {
            alphas[activeSet[i]] = alpha[i]
            upper[activeSet[i]] = status[i] == .upperBound
        }
        return SolutionInfo(
            alpha: alphas, rho: rho, objective: sum / 2, iterations: iterations,
            atUpperBound: upper, converged: converged)
    }

    @inline(__always)
    private func updateStatus(_ i: Int) {
        status[i] = alpha[i] >= bound[i] ? .upperBound : (alpha[i] <= 0 ? .lowerBound : .free)
        let up = y[i] == 1 ? status[i] != .upperBound : status[i] != .lowerBound
        let low = y[i] == 1 ? status[i] != .lowerBound : status[i] != .upperBound
        upMask[i] = up ? 0 : .nan
        lowMask[i] = low ? 0 : .nan
    }

    /// The two-variable step on `(i, j)`: the unconstrained minimiser along the feasible
    /// direction, clipped to the box; then the gradient and `Ḡ` updates.
    private func update(_ i: Int, _ j: Int) {
        let active = activeSize
        let qi = q.column(i, length: active)
        let qj = q.column(j, length: active)
        let (ci, cj) = (bound[i], bound[j])
        let (oldI, oldJ) = (alpha[i], alpha[j])
        var (ai, aj) = (oldI, oldJ)
        if y[i] != y[j] {
            var curvature = diagonal[i] + diagonal[j] + Double(2 * qi[j])
            if curvature <= 0 { curvature = Self.tau }
            let delta = (-gradient[i] - gradient[j]) / curvature
            let diff = ai - aj
            ai += delta
            aj += delta
            if diff > 0 {
                if aj < 0 { aj = 0; ai = diff }
            } else {
                if ai < 0 { ai = 0; aj = -diff }
            }
            if diff > ci - cj {
                if ai > ci { ai = ci; aj = ci - diff }
            } else {
                if aj > cj { aj = cj; ai = cj + diff }
            }
        } else {
            var curvature = diagonal[i] + diagonal[j] - Double(2 * qi[j])
            if curvature <= 0 { curvature = Self.tau }
            let delta = (gradient[i] - gradient[j]) / curvature
            let sum = ai + aj
            ai -= delta
            aj += delta
            if sum > ci {
                if ai > ci { ai = ci; aj = sum - ci }
            } else {
                if aj < 0 { aj = 0; ai = sum }
            }
            if sum > cj {
                if aj > cj { aj = cj; ai = sum - cj }
            } else {
                if ai < 0 { ai = 0; aj = sum }
            }
        }
        alpha[i] = ai
        alpha[j] = aj

        let (deltaI, deltaJ) = (ai - oldI, aj - oldJ)
        for k in 0..<active {
            gradient[k] += Double(qi[k]) * deltaI + Double(qj[k]) * deltaJ
        }

        let wasUpperI = status[i] == .upperBound
        let wasUpperJ = status[j] == .upperBound
        updateStatus(i)
        updateStatus(j)
        if wasUpperI != (status[i] == .upperBound) {
            addToGradientBar(column: i, scale: wasUpperI ? -ci : ci)
        }
        if wasUpperJ != (status[j] == .upperBound) {
            addToGradientBar(column: j, scale: wasUpperJ ? -cj : cj)
        }
    }

    /// `Ḡ += scale · Q_:,i` over all `l` variables.
    private func addToGradientBar(column i: Int, scale: Double) {
        let qi = q.column(i, length: l)
        for k in 0..<l { gradientBar[k] += scale * Double(qi[k]) }
    }

    /// WSS 2 (Fan, Chen & Lin 2005, Algorithm 2):
    ///
    /// ```
    /// i = argmax { −y_t ∇f_t : t ∈ I_up }
    /// j = argmin { −b_it² / a_it : t ∈ I_low, −y_t ∇f_t < −y_i ∇f_i }
    ///     b_it = −y_i ∇f_i + y_t ∇f_t,  a_it = Q_ii + Q_tt − 2 y_i y_t Q_it  (τ if ≤ 0)
    /// ```
    /// - Returns: nil when `m(α) − M(α) < tolerance` (optimal on the active set).
    private func selectWorkingSet() -> (Int, Int)? {
        let active = activeSize
        let (gMax, i, gMax2) = extremeViolations(active)
        guard i >= 0 else { return nil }
        let qi = q.column(i, length: active)
        let twiceYi = 2 * sign[i]
        let qdi = diagonal[i]
        var gMinIndex = -1
        var objectiveDiffMin = Double.infinity
        // Dividing is the slow step, and only a candidate near the running minimum can win:
        // −b²/a ≤ min ⇔ −b² ≤ min · a (a > 0). The quotient is formed only when −b² is within
        // a relative 1e-9 of min · a; rounding errors are ~1e-16, so this picks exactly what
        // comparing every quotient would. Four lanes test the bound together (non-candidates
        // get NaN); the few that pass are taken in index order, `<=` keeping the last of
        // equal candidates, as libsvm does.
        func consider(_ t: Int, numerator: Double, curvature a: Double) {
            guard numerator <= objectiveDiffMin * a * (1 - 1e-9) else { return }
            let objectiveDiff = numerator / a
            if objectiveDiff <= objectiveDiffMin {
                gMinIndex = t
                objectiveDiffMin = objectiveDiff
            }
        }
        let tau = SIMD4<Double>(repeating: Self.tau)
        var t = 0
        while t + 4 <= active {
            let ySign = Self.load(sign + t)
            // b_it = −y_i ∇f_i + y_t ∇f_t (NaN outside I_low); a_it as in the step.
            let gradientDiff = gMax + (ySign * Self.load(gradient + t) + Self.load(lowMask + t))
            let column = SIMD4<Double>(UnsafeRawPointer(qi + t).loadUnaligned(as: SIMD4<Float>.self))
            let curvature = qdi + Self.load(diagonal + t) - twiceYi * ySign * column
            let a = tau.replacing(with: curvature, where: curvature .> 0)
            let numerator = (-(gradientDiff * gradientDiff)).replacing(with: .nan, where: .!(gradientDiff .> 0))
            let passes = numerator .<= objectiveDiffMin * a * (1 - 1e-9)
            if any(passes) {
                for lane in 0..<4 where passes[lane] { consider(t + lane, numerator: numerator[lane], curvature: a[lane]) }
            }
            t += 4
        }
        while t < active {
            let gradientDiff = gMax + (sign[t] * gradient[t] + lowMask[t])
            let curvature = qdi + diagonal[t] - twiceYi * sign[t] * Double(qi[t])
            consider(t, numerator: gradientDiff > 0 ? -(gradientDiff * gradientDiff) : .nan,
                     curvature: curvature > 0 ? curvature : Self.tau)
            t += 1
        }
        if gMax + gMax2 < eps || gMinIndex == -1 { return nil }
        return (i, gMinIndex)
    }

    /// `m(α) = max{−y_t ∇f_t : t ∈ I_up}` with the last index attaining it (libsvm's `>=`
    /// scan), and `−M(α) = max{y_t ∇f_t : t ∈ I_low}`, over the active set; index −1 when
    /// `I_up` is empty.
    ///
    /// Four lanes at a time, each keeping its own maximum and the last index attaining it,
    /// merged at the end (largest value, then largest index): the same answer as one scan,
    /// without its chain of dependent comparisons.
    @inline(__always)
    private func extremeViolations(_ active: Int) -> (gMax: Double, index: Int, gMax2: Double) {
        var best = SIMD4<Double>(repeating: -.infinity)
        var bestIndex = SIMD4<Int64>(repeating: -1)
        var low = SIMD4<Double>(repeating: -.infinity)
        var index = SIMD4<Int64>(0, 1, 2, 3)
        var t = 0
        while t + 4 <= active {
            let yg = Self.load(sign + t) * Self.load(gradient + t)
            let violation = Self.load(upMask + t) - yg
            let better = violation .>= best
            best.replace(with: violation, where: better)
            bestIndex.replace(with: index, where: better)
            let lowViolation = yg + Self.load(lowMask + t)
            low.replace(with: lowViolation, where: lowViolation .>= low)
            index &+= 4
            t += 4
        }
        var gMax = best[0], gMaxIndex = Int(bestIndex[0])
        for lane in 1..<4 where best[lane] > gMax || (best[lane] == gMax && Int(bestIndex[lane]) > gMaxIndex) {
            gMax = best[lane]
            gMaxIndex = Int(bestIndex[lane])
        }
        var gMax2 = max(max(low[0], low[1]), max(low[2], low[3]))
        while t < active {
            let yg = sign[t] * gradient[t]
            let violation = upMask[t] - yg
            if violation >= gMax {
                gMax = violation
                gMaxIndex = t
            }
            let lowViolation = yg + lowMask[t]
            if lowViolation >= gMax2 { gMax2 = lowViolation }
            t += 1
        }
        return (gMax, gMaxIndex, gMax2)
    }

    /// Four consecutive values.
    @inline(__always)
    private static func load(_ pointer: UnsafeMutablePointer<Double>) -> SIMD4<Double> {
        UnsafeRawPointer(pointer).loadUnaligned(as: SIMD4<Double>.self)
    }

    /// Whether variable `i`, at a bound, cannot move given the current extreme violations
    /// `gMax1 = max{−y_t ∇f_t : t ∈ I_up}` and `gMax2 = max{y_t ∇f_t : t ∈ I_low}`.
    @inline(__always)
    private func canBeShrunk(_ i: Int, _ gMax1: Double, _ gMax2: Double) -> Bool {
        switch status[i] {
        case .upperBound: return y[i] == 1 ? -gradient[i] > gMax1 : -gradient[i] > gMax2
        case .lowerBound: return y[i] == 1 ? gradient[i] > gMax2 : gradient[i] > gMax1
        case .free: return false
        }
    }

    /// libsvm's `do_shrinking`: once the violation is within 10·tolerance, rebuild the full
    /// gradient and reactivate everything (once); then move the variables that can be
    /// shrunk behind the active set.
    private func shrink() {
        var gMax1 = -Double.infinity
        var gMax2 = -Double.infinity
        for i in 0..<activeSize {
            if y[i] == 1 {
                if status[i] != .upperBound && -gradient[i] >= gMax1 { gMax1 = -gradient[i] }
                if status[i] != .lowerBound && gradient[i] >= gMax2 { gMax2 = gradient[i] }
            } else {
                if status[i] != .upperBound && -gradient[i] >= gMax2 { gMax2 = -gradient[i] }
                if status[i] != .lowerBound && gradient[i] >= gMax1 { gMax1 = gradient[i] }
            }
        }
        if !unshrunk && gMax1 + gMax2 <= eps * 10 {
            unshrunk = true
            reconstructGradient()
            activeSize = l
        }
        var i = 0
        while i < activeSize {
            if canBeShrunk(i, gMax1, gMax2) {
                activeSize -= 1
                while activeSize > i {
                    if !canBeShrunk(activeSize, gMax1, gMax2) {
                        swapIndex(i, activeSize)
                        break
                    }
                    activeSize -= 1
                }
            }
            i += 1
        }
        q.swapIndices(swaps)
        swaps.removeAll(keepingCapacity: true)
    }

    /// Exchanges variables `i` and `j` everywhere (`Q` with the rest of the pass).
    private func swapIndex(_ i: Int, _ j: Int) {
        swaps.append((i, j))
        swap(&y[i], &y[j])
        swap(&sign[i], &sign[j])
        swap(&upMask[i], &upMask[j])
        swap(&lowMask[i], &lowMask[j])
        swap(&gradient[i], &gradient[j])
        swap(&status[i], &status[j])
        swap(&alpha[i], &alpha[j])
        swap(&activeSet[i], &activeSet[j])
        swap(&gradientBar[i], &gradientBar[j])
        swap(&bound[i], &bound[j])
        swap(&diagonal[i], &diagonal[j])
    }

    /// Rebuilds the gradient of the inactive variables:
    ///
    /// ```
    /// ∇f_j = Ḡ_j − 1 + Σ_{i free} α_i Q_ij
    /// ```
    /// reading either the inactive columns over the active prefix or the free columns in
    /// full, whichever reads fewer values (libsvm's rule).
    private func reconstructGradient() {
        guard activeSize < l else { return }
        let active = activeSize
        for j in active..<l { gradient[j] = gradientBar[j] - 1 }
        let free = (0..<active).filter { status[$0] == .free }
        if free.count * l > 2 * active * (l - active) {
            forEachColumn(Array(active..<l), length: active) { i, qi in
                var sum = gradient[i]
                for j in free { sum += alpha[j] * Double(qi[j]) }
                gradient[i] = sum
            }
        } else {
            forEachColumn(free, length: l) { i, qi in
                let alphaI = alpha[i]
                for j in active..<l { gradient[j] += alphaI * Double(qi[j]) }
            }
        }
    }

    /// `body(i, Q_:,i[0..<length])` for each of `columns`, computing missing columns a batch
    /// at a time.
    private func forEachColumn(_ columns: [Int], length: Int, _ body: (Int, UnsafePointer<Float>) -> Void) {
        let batch = q.columnsAtOnce(length: length)
        var start = 0
        while start < columns.count {
            let chunk = Array(columns[start..<min(columns.count, start + batch)])
            q.prefetch(chunk, length: length)
            for i in chunk { body(i, q.column(i, length: length)) }
            start += chunk.count
        }
    }

    /// libsvm's `calculate_rho`: the mean of `y_i ∇f_i` over free variables, else the middle
    /// of the interval the bounded ones allow.
    private func calculateRho() -> Double {
        var freeCount = 0
        var upper = Double.infinity
        var lower = -Double.infinity
        var freeSum = 0.0
        for i in 0..<activeSize {
            let yg = Double(y[i]) * gradient[i]
            switch status[i] {
            case .upperBound:
                if y[i] == -1 { upper = min(upper, yg) } else { lower = max(lower, yg) }
            case .lowerBound:
                if y[i] == 1 { upper = min(upper, yg) } else { lower = max(lower, yg) }
            case .free:
                freeCount += 1
                freeSum += yg
            }
        }
        return freeCount > 0 ? freeSum / Double(freeCount) : (upper + lower) / 2
    }
}
