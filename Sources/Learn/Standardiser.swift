import TensorCore

/// Per-feature z-scoring, fitted on training rows only (scikit-learn's `StandardScaler`).
///
/// ```
/// z[i, j] = (x[i, j] − mean[j]) / scale[j],  scale[j] = population SD of column j (1 when 0)
/// ```
public struct Standardiser: Transformer, Codable, Equatable {
    /// Centre the columns (default true).
    public var centre: Bool
    /// Divide by the column's standard deviation (default true).
    public var scale: Bool

    public init(centre: Bool = true, scale: Bool = true) {
        self.centre = centre
        self.scale = scale
    }

    public func fit(_ x: Tensor) throws(LearnError) -> Fitted {
        let (n, d) = try Validation.matrix(x)
        var sum = [Double](repeating: 0, count: d)
        x.withUnsafeBufferPointer { p in
            for i in 0..<n { for j in 0..<d { sum[j] += Double(p[i * d + j]) } }
        }
        let mean = sum.map { $0 / Double(n) }
        var squares = [Double](repeating: 0, count: d)
        x.withUnsafeBufferPointer { p in
            for i in 0..<n { for j in 0..<d { let e = Double(p[i * d + j]) - mean[j]; squares[j] += e * e } }
        }
        // Constant columns keep scale 1 (as scikit-learn), so they become zeros, not NaNs.
        let sd = squares.map { s -> Double in let v = (s / Double(n)).squareRoot(); return v > 1e-12 ? v : 1 }
        return Fitted(mean: centre ? mean : Array(repeating: 0, count: d), scale: scale ? sd : Array(repeating: 1, count: d))
    }

    public struct Fitted: FittedTransformer, Codable, Equatable {
        /// Subtracted per feature, `[d]`.
        public var mean: [Double]
        /// Divided per feature, `[d]`, never zero.
        public var scale: [Double]
        public var inputFeatureCount: Int { mean.count }

        public init(mean: [Double], scale: [Double]) {
            precondition(mean.count == scale.count, "Standardiser: \(mean.count) means, \(scale.count) scales")
            self.mean = mean
            self.scale = scale
        }

        public func transform(_ x: Tensor) throws(LearnError) -> Tensor {
            let n = try Validation.matrix(x, features: mean.count)
            let d = mean.count
            var out = x
            out.withUnsafeMutableBufferPointer { p in
                for i in 0..<n {
                    for j in 0..<d { p[i * d + j] = Float((Double(p[i * d + j]) - mean[j]) / scale[j]) }
                }
            }
            return out
        }
    }
}
