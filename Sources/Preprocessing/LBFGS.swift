/// Limited-memory BFGS with a backtracking (Armijo) line search and a cap on every step's
/// largest parameter change: the optimiser of the affine registration. Parameters are
/// expected in comparable units (the registration scales them all to millimetres of
/// displacement), so the cap and the tolerance are in those units.
struct LBFGS {
    /// Curvature pairs kept.
    var memory = 7
    /// Largest change of any parameter in one step.
    var maxStep: Double
    /// Stop when a step changes no parameter by more than this.
    var tolerance: Double
    var maxIterations: Int

    struct Outcome {
        var parameters: [Double]
        var value: Double
        var iterations: Int
        var evaluations: Int
    }

    /// Minimises `objective`, which returns the value and gradient at a point, or nil where
    /// the point is not allowed (e.g. the images no longer overlap); such points are treated
    /// as worse than any other.
    func minimise(from start: [Double], _ objective: ([Double]) -> (value: Double, gradient: [Double])?) -> Outcome? {
        guard let first = objective(start) else { return nil }
        var x = start, (value, gradient) = first
        var pairs: [(s: [Double], y: [Double], rho: Double)] = []
        var evaluations = 1, iterations = 0
        while iterations < maxIterations {
            iterations += 1
            var direction = searchDirection(gradient, pairs)
            var slope = dot(direction, gradient)
            if slope >= 0 || pairs.isEmpty {
                pairs.removeAll()
                // Steepest descent, first step as long as the cap.
                let largest = gradient.map(abs).max() ?? 0
                guard largest > 0 else { break }
                direction = gradient.map { -$0 * maxStep / largest }
                slope = dot(direction, gradient)
            }
            let longest = direction.map(abs).max() ?? 0
            if longest > maxStep {
                direction = direction.map { $0 * maxStep / longest }
                slope = dot(direction, gradient)
            }
            var alpha = 1.0
            var accepted: (x: [Double], value: Double, gradient: [Double])?
            for _ in 0..<12 {
                let candidate = zip(x, direction).map { $0 + alpha * $1 }
                evaluations += 1
                if let (newValue, newGradient) = objective(candidate), newValue <= value + 1e-4 * alpha * slope {
                    accepted = (candidate, newValue, newGradient)
                    break
                }
                alpha *= 0.5
            }
            guard let (newX, newValue, newGradient) = accepted else { break }
            let s = zip(newX, x).map { $0 - $1 }, y = zip(newGradient, gradient).map { $0 - $1 }
            let sy = dot(s, y)
            if sy > 1e-12 {
                pairs.append((s, y, 1 / sy))
                if pairs.count > memory { pairs.removeFirst() }
            }
            (x, value, gradient) = (newX, newValue, newGradient)
            if (s.map(abs).max() ?? 0) < tolerance { break }
        }
        return Outcome(parameters: x, value: value, iterations: iterations, evaluations: evaluations)
    }

    /// −H g by the two-loop recursion over the stored pairs.
    private func searchDirection(_ gradient: [Double], _ pairs: [(s: [Double], y: [Double], rho: Double)]) -> [Double] {
        var q = gradient
        var alphas = [Double](repeating: 0, count: pairs.count)
        for index in pairs.indices.reversed() {
            let pair = pairs[index]
            alphas[index] = pair.rho * dot(pair.s, q)
            for i in q.indices { q[i] -= alphas[index] * pair.y[i] }
        }
        if let last = pairs.last {
            let gamma = dot(last.s, last.y) / max(dot(last.y, last.y), 1e-300)
            q = q.map { $0 * gamma }
        }
        for (index, pair) in pairs.enumerated() {
            let beta = pair.rho * dot(pair.y, q)
            for i in q.indices { q[i] += (alphas[index] - beta) * pair.s[i] }
        }
        return q.map { -$0 }
    }

    private func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
}
