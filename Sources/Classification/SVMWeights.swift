import Extraction
import Foundation
import TensorCore

/// A linear SVM's weight vector, read from its fitted pipeline without reaching into the
/// solver, and carried back into the scans' space.
///
/// Every step of the pipelines (standardisers, FastICA, a linear SVM) is affine, so the
/// decision function is `f(x) = Wx + b` and its weights are finite differences at any point:
/// ```
/// W[c, j] = (f_c(x₀ + h_j·e_j) − f_c(x₀)) / h_j
/// ```
/// exact up to Float32 rounding whatever the steps; `x₀` is the training rows' mean and
/// `h_j` the training standard deviation of input `j` (1 for a constant input), so that every
/// probe stays among the data.
enum SVMWeights {
    /// Probe rows per decision call (bounds memory to `probeRows · d` floats).
    static let probeRows = 512

    /// Weights `[m][d]` of the affine `decision` (`[n, d] → [n, m]`), per unit of each input.
    /// - Parameters:
    ///   - x0: the probe point `[d]`; `steps`: the step of each input `[d]`, non-zero.
    static func probe(_ decision: (Tensor) throws -> Tensor, at x0: [Float], steps: [Float]) throws(ClassificationError) -> [[Double]] {
        let d = x0.count
        guard d > 0, steps.count == d, steps.allSatisfy({ $0 != 0 && $0.isFinite }) else {
            throw .invalidOption("weight probe: \(d) inputs and \(steps.count) non-zero steps needed")
        }
        var weights: [[Double]] = []
        var base: [Double] = []
        // Rows x₀ + h_j·e_j in blocks; the first block also holds x₀ itself (its row 0).
        for first in stride(from: 0, to: d, by: probeRows) {
            let inputs = Array(first..<min(d, first + probeRows))
            let offset = first == 0 ? 1 : 0
            var rows = [Float](repeating: 0, count: (inputs.count + offset) * d)
            for r in 0..<(inputs.count + offset) { for j in 0..<d { rows[r * d + j] = x0[j] } }
            for (r, j) in inputs.enumerated() { rows[(r + offset) * d + j] += steps[j] }
            let values: Tensor
            do { values = try decision(try Tensor(shape: [inputs.count + offset, d], scalars: rows)) } catch {
                throw .io("probing the SVM's weights: \(error)")
            }
            guard values.rank == 2, values.shape[0] == inputs.count + offset, values.shape[1] >= 1 else {
                throw .io("probing the SVM's weights: decision values of shape \(values.shape) for \(inputs.count + offset) rows")
            }
            let m = values.shape[1]
            if first == 0 {
                base = (0..<m).map { Double(values.scalars[$0]) }
                weights = Array(repeating: [Double](repeating: 0, count: d), count: m)
            }
            guard m == base.count else { throw .io("probing the SVM's weights: \(m) decision columns, then \(base.count)") }
            for (r, j) in inputs.enumerated() {
                for c in 0..<m { weights[c][j] = (Double(values.scalars[(r + offset) * m + c]) - base[c]) / Double(steps[j]) }
            }
        }
        return weights
    }

    /// Column means `[d]` and population standard deviations `[d]` of rows `[n, d]`.
    static func moments(_ x: Tensor) -> (mean: [Float], sd: [Double]) {
        let (n, d) = (x.shape[0], x.shape[1])
        var sum = [Double](repeating: 0, count: d), squares = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { sum[j] += Double(x.scalars[i * d + j]) } }
        let mean = sum.map { $0 / Double(max(1, n)) }
        for i in 0..<n { for j in 0..<d { let e = Double(x.scalars[i * d + j]) - mean[j]; squares[j] += e * e } }
        return (mean.map(Float.init), squares.map { ($0 / Double(max(1, n))).squareRoot() })
    }

    /// Probe steps from standard deviations: the SD, or 1 for a (nearly) constant input.
    static func steps(_ sd: [Double]) -> [Float] { sd.map { $0 > 1e-12 ? Float($0) : 1 } }

    /// The class each decision column argues for when positive: one column for the positive
    /// class (label 1) of two; liblinear's one-vs-rest column per class of three; nil for
    /// libsvm's one-vs-one pairs, which have no column per class.
    static func columnClasses(classes: Int, liblinear: Bool) -> [Int]? {
        if classes == 2 { return [1] }
        return liblinear ? Array(0..<classes) : nil
    }

    // MARK: deep features

    /// Per pooling region `[R]`, the root-sum-square over channels of the weights of its
    /// features (`feature = channel · R + region`), given per training SD.
    ///
    /// A magnitude, not a signed sum: a channel's sign is arbitrary (a filter and its negative
    /// are equally good features), so weights of opposite sign on two channels of a region do
    /// not cancel: both make the region matter.
    static func regionMagnitudes(_ weightsPerSD: [Double], regions: Int) -> [Double] {
        var squares = [Double](repeating: 0, count: regions)
        for (f, w) in weightsPerSD.enumerated() { squares[f % regions] += w * w }
        return squares.map { $0.squareRoot() }
    }

    /// Each region's box of input voxels `[R][3]`: along each axis, the union of the receptive
    /// fields of its map voxels (regions overlap by the receptive fields' halo).
    static func regionBoxes(encoder: FeatureEncoder, grid: RegionGrid, inputShape: Triple) -> [[Range<Int>]] {
        (0..<grid.count).map { r in
            let (i, j, k) = grid.indices(of: r)
            return [i, j, k].enumerated().map { axis, index in
                encoder.inputVoxels(ofMapVoxels: grid.bounds(index, axis: axis), axis: axis, inputExtent: inputShape.array[axis])
            }
        }
    }

    /// A volume `[X, Y, Z]` (flat, X slowest) where each voxel holds the mean value of the
    /// boxes containing it, 0 outside every box.
    static func paint(_ values: [Double], boxes: [[Range<Int>]], shape: Triple) -> [Float] {
        var sums = [Double](repeating: 0, count: shape.product)
        var counts = [Int](repeating: 0, count: shape.product)
        for (value, box) in zip(values, boxes) {
            for x in box[0] { for y in box[1] { for z in box[2] {
                let v = (x * shape.h + y) * shape.w + z
                sums[v] += value
                counts[v] += 1
            } } }
        }
        return zip(sums, counts).map { $1 == 0 ? 0 : Float($0 / Double($1)) }
    }
}

extension SpatialICA {
    /// The gradient `[v]` of a function of the loadings with respect to the block-averaged
    /// voxels, from its gradient `w [k]` with respect to the loadings:
    /// ```
    /// loadings(x) = (SᵀS)⁻¹ Sᵀ P x        P: centring over the v voxels
    /// ∇ₓ = P S (SᵀS)⁻¹ w                   (≈ Σ_k w_k · component_k / v: FastICA's maps are
    ///                                        close to uncorrelated with unit variance)
    /// ```
    func voxelGradient(_ w: [Double]) throws(ClassificationError) -> [Double] {
        let (v, k) = (maps.shape[0], maps.shape[1])
        guard w.count == k else { throw .invalidOption("\(w.count) loading weights for \(k) components") }
        let u: Tensor
        do {
            let gram = try Tensor.matmul(maps, maps, transposeA: true)
            u = try LinearAlgebra.solve(gram, try Tensor(shape: [k, 1], scalars: w.map(Float.init)))
        } catch { throw .learn(.numerical("ICA weight map: \(error)")) }
        var g = (0..<v).map { j in (0..<k).reduce(0.0) { $0 + Double(maps.scalars[j * k + $1]) * Double(u.scalars[$1]) } }
        let mean = g.reduce(0, +) / Double(max(1, v))
        for j in g.indices { g[j] -= mean }
        return g
    }
}

extension VoxelLayout {
    /// Values of the selected voxels `[v]` as derivatives with respect to block means,
    /// carried to the scans' grid `[X, Y, Z]` (flat, X slowest): each scan voxel of a block
    /// gets the block's value / f³ (nearest-neighbour upsampling, scaled so that the result is
    /// the derivative with respect to the scan voxel itself: the chain rule through the block
    /// average). Voxels of unselected blocks, and the remainder rows beyond `f·⌊n/f⌋`, get 0.
    func scanGradient(_ blockGradient: [Double]) -> [Float] {
        var out = [Float](repeating: 0, count: scanShape.product)
        let f = factor
        let scale = 1 / Double(f * f * f)
        for (j, voxel) in voxels.enumerated() {
            let (a, b, c) = (voxel / (grid.h * grid.w), voxel / grid.w % grid.h, voxel % grid.w)
            let value = Float(blockGradient[j] * scale)
            for x in (a * f)..<((a + 1) * f) { for y in (b * f)..<((b + 1) * f) { for z in (c * f)..<((c + 1) * f) {
                out[(x * scanShape.h + y) * scanShape.w + z] = value
            } } }
        }
        return out
    }
}
