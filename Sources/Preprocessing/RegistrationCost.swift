import TensorCore
import VolumeIO

/// One pyramid level of an image: values on a decimated grid.
struct LevelImage: Sendable {
    /// Voxel values, shape `[X, Y, Z]`, Z fastest.
    var values: [Float]
    var shape: [Int]
    /// Voxel → world (RAS mm) of the decimated grid.
    var affine: Affine

    /// `volume` smoothed with a Gaussian of `sigma` mm, then every `factors[a]`-th voxel along
    /// axis `a`, starting with voxel 0 (so voxel 0 keeps its world position).
    init(_ volume: Volume, factors: [Int], sigma: Double) {
        let sigmas = volume.voxelSizes.map { sigma > 0 ? sigma / $0 : 0 }
        (values, shape) = GaussianSmoothing.smoothAndDecimate(volume.data.scalars, shape: volume.shape, sigmas: sigmas, factors: factors)
        var affine = volume.affine
        for r in 0..<3 { for c in 0..<3 { affine[r, c] *= Double(factors[c]) } }
        self.affine = affine
    }
}

/// The fixed image's samples at one level and the normalised cross-correlation (NCC) between
/// them and the moving image seen through a world affine, with its analytic gradient.
///
/// The transform maps fixed world points x to moving world points y = A x + b (RAS mm); the
/// moving image is interpolated trilinearly at y. Samples whose y falls outside the moving
/// grid are left out (the cost is over the overlap), as in ITK.
struct CorrelationCost: Sendable {
    /// Fixed-grid voxel coordinates of the samples, three per sample.
    let positions: [Float]
    /// Fixed intensities at the samples.
    let fixedValues: [Float]
    let fixedAffine: Affine
    let moving: LevelImage
    let movingInverse: Affine

    var sampleCount: Int { fixedValues.count }

    /// Samples in blocks of this many: partial sums per block, added in block order, so the
    /// figures do not depend on the thread count.
    static let blockSize = 8192

    /// What one evaluation gives.
    struct Evaluation {
        /// Normalised cross-correlation over the valid samples, in [-1, 1].
        var correlation: Double
        /// d NCC / d A (row by row) and d NCC / d b.
        var gradientA: [Double]
        var gradientB: [Double]
        /// Share of samples inside the moving image.
        var overlap: Double
    }

    /// - Parameters:
    ///   - fixed: the fixed level; samples are the voxels where `region` is true, every
    ///     `stride`-th in memory order.
    init(fixed: LevelImage, region: [Bool], stride: Int, moving: LevelImage) throws(PreprocessingError) {
        var positions: [Float] = [], values: [Float] = []
        var seen = 0
        let (ny, nz) = (fixed.shape[1], fixed.shape[2])
        for index in region.indices where region[index] {
            defer { seen += 1 }
            guard seen % stride == 0 else { continue }
            let i = index / (ny * nz), j = (index / nz) % ny, k = index % nz
            positions += [Float(i), Float(j), Float(k)]
            values.append(fixed.values[index])
        }
        guard !values.isEmpty else {
            throw .noForeground(path: "template", reason: "no voxel of the template's mask (or foreground) is left at a \(fixed.shape) pyramid level")
        }
        self.positions = positions
        self.fixedValues = values
        self.fixedAffine = fixed.affine
        self.moving = moving
        do { movingInverse = try moving.affine.inverse() } catch { throw .unsupportedVolume(path: "moving image", reason: "singular affine") }
    }

    /// NCC and its gradient for y = A x + b (`a`: 9 entries row by row, `b`: 3).
    func evaluate(a: [Double], b: [Double]) -> Evaluation {
        // Fixed voxel → moving voxel: Minv · [A b] · F, as Float for the inner loop.
        let world = Affine(rows: [a[0], a[1], a[2], b[0]], [a[3], a[4], a[5], b[1]], [a[6], a[7], a[8], b[2]])
        let voxelMap = movingInverse * world * fixedAffine
        let p = (0..<12).map { Float(voxelMap[$0 / 4, $0 % 4]) }
        let n = sampleCount
        let blocks = (n + Self.blockSize - 1) / Self.blockSize
        var movingValues = [Float](repeating: 0, count: n)
        var gradients = [Float](repeating: 0, count: 3 * n)
        var valid = [Bool](repeating: false, count: n)
        // Per block: count, Σf, Σm, Σff, Σmm, Σfm.
        var sums = [Double](repeating: 0, count: 6 * blocks)
        let (nx, ny, nz) = (moving.shape[0], moving.shape[1], moving.shape[2])
        let limit = (Float(nx - 1), Float(ny - 1), Float(nz - 1))
        positions.withUnsafeBufferPointer { pos in
        fixedValues.withUnsafeBufferPointer { fixed in
        moving.values.withUnsafeBufferPointer { image in
        movingValues.withUnsafeMutableBufferPointer { mOut in
        gradients.withUnsafeMutableBufferPointer { gOut in
        valid.withUnsafeMutableBufferPointer { vOut in
        sums.withUnsafeMutableBufferPointer { sOut in
            let (mOut, gOut, vOut, sOut) = (mOut, gOut, vOut, sOut)
            Engine.parallelRanges(blocks) { blockRange in
                for block in blockRange {
                    var count = 0.0, sf = 0.0, sm = 0.0, sff = 0.0, smm = 0.0, sfm = 0.0
                    for s in (block * Self.blockSize)..<min(n, (block + 1) * Self.blockSize) {
                        let x = pos[3 * s], y = pos[3 * s + 1], z = pos[3 * s + 2]
                        let u = p[0] * x + p[1] * y + p[2] * z + p[3]
                        let v = p[4] * x + p[5] * y + p[6] * z + p[7]
                        let w = p[8] * x + p[9] * y + p[10] * z + p[11]
                        guard u >= 0, v >= 0, w >= 0, u <= limit.0, v <= limit.1, w <= limit.2 else { continue }
                        let i = min(Int(u), nx - 2), j = min(Int(v), ny - 2), k = min(Int(w), nz - 2)
                        let fu = u - Float(i), fv = v - Float(j), fw = w - Float(k)
                        let base = (i * ny + j) * nz + k
                        let c000 = image[base], c001 = image[base + 1]
                        let c010 = image[base + nz], c011 = image[base + nz + 1]
                        let c100 = image[base + ny * nz], c101 = image[base + ny * nz + 1]
                        let c110 = image[base + ny * nz + nz], c111 = image[base + ny * nz + nz + 1]
                        // Along w first, then v, then u; the gradient is that of the interpolant.
                        let c00 = c000 + fw * (c001 - c000), c01 = c010 + fw * (c011 - c010)
                        let c10 = c100 + fw * (c101 - c100), c11 = c110 + fw * (c111 - c110)
                        let c0 = c00 + fv * (c01 - c00), c1 = c10 + fv * (c11 - c10)
                        let value = c0 + fu * (c1 - c0)
                        let du = c1 - c0
                        let dv = (c01 - c00) + fu * ((c11 - c10) - (c01 - c00))
                        let dw0 = (c001 - c000) + fv * ((c011 - c010) - (c001 - c000))
                        let dw1 = (c101 - c100) + fv * ((c111 - c110) - (c101 - c100))
                        let dw = dw0 + fu * (dw1 - dw0)
                        mOut[s] = value
                        gOut[3 * s] = du
                        gOut[3 * s + 1] = dv
                        gOut[3 * s + 2] = dw
                        vOut[s] = true
                        let f = Double(fixed[s]), m = Double(value)
                        count += 1
                        sf += f
                        sm += m
                        sff += f * f
                        smm += m * m
                        sfm += f * m
                    }
                    let out = 6 * block
                    (sOut[out], sOut[out + 1], sOut[out + 2]) = (count, sf, sm)
                    (sOut[out + 3], sOut[out + 4], sOut[out + 5]) = (sff, smm, sfm)
                }
            }
        }}}}}}}
        var total = [Double](repeating: 0, count: 6)
        for block in 0..<blocks { for q in 0..<6 { total[q] += sums[6 * block + q] } }
        let count = total[0]
        guard count >= 2 else {
            return Evaluation(correlation: 0, gradientA: [Double](repeating: 0, count: 9), gradientB: [0, 0, 0], overlap: count / Double(max(n, 1)))
        }
        let meanF = total[1] / count, meanM = total[2] / count
        let varF = max(total[3] - count * meanF * meanF, 0), varM = max(total[4] - count * meanM * meanM, 0)
        let cov = total[5] - count * meanF * meanM
        guard varF > 0, varM > 0 else {
            return Evaluation(correlation: 0, gradientA: [Double](repeating: 0, count: 9), gradientB: [0, 0, 0], overlap: count / Double(n))
        }
        let norm = (varF * varM).squareRoot()
        let correlation = cov / norm
        // d NCC / d m_s = (f_s − f̄) / √(Vf Vm) − NCC (m_s − m̄) / Vm; then through the interpolant.
        let (weightF, weightM) = (1 / norm, correlation / varM)
        var partial = [Double](repeating: 0, count: 12 * blocks)
        positions.withUnsafeBufferPointer { pos in
        fixedValues.withUnsafeBufferPointer { fixed in
        movingValues.withUnsafeBufferPointer { mIn in
        gradients.withUnsafeBufferPointer { gIn in
        valid.withUnsafeBufferPointer { vIn in
        partial.withUnsafeMutableBufferPointer { pOut in
            let pOut = pOut
            Engine.parallelRanges(blocks) { blockRange in
                for block in blockRange {
                    // S1 = Σ w g (3), S2 = Σ w g vᵀ (3×3), g the moving-voxel gradient, v the fixed voxel.
                    var s1 = (0.0, 0.0, 0.0)
                    var s2 = [Double](repeating: 0, count: 9)
                    for s in (block * Self.blockSize)..<min(n, (block + 1) * Self.blockSize) where vIn[s] {
                        let weight = (Double(fixed[s]) - meanF) * weightF - (Double(mIn[s]) - meanM) * weightM
                        let g0 = weight * Double(gIn[3 * s]), g1 = weight * Double(gIn[3 * s + 1]), g2 = weight * Double(gIn[3 * s + 2])
                        let x = Double(pos[3 * s]), y = Double(pos[3 * s + 1]), z = Double(pos[3 * s + 2])
                        s1.0 += g0
                        s1.1 += g1
                        s1.2 += g2
                        s2[0] += g0 * x; s2[1] += g0 * y; s2[2] += g0 * z
                        s2[3] += g1 * x; s2[4] += g1 * y; s2[5] += g1 * z
                        s2[6] += g2 * x; s2[7] += g2 * y; s2[8] += g2 * z
                    }
                    let out = 12 * block
                    (pOut[out], pOut[out + 1], pOut[out + 2]) = s1
                    for q in 0..<9 { pOut[out + 3 + q] = s2[q] }
                }
            }
        }}}}}}
        var s = [Double](repeating: 0, count: 12)
        for block in 0..<blocks { for q in 0..<12 { s[q] += partial[12 * block + q] } }
        // With u = Minv (A (F v + f) + b) + m: dNCC/dA = Minvᵀ (S2 Fᵀ + S1 fᵀ), dNCC/db = Minvᵀ S1.
        let inverse = movingInverse.linearPart, fixedLinear = fixedAffine.linearPart, fixedShift = fixedAffine.translation
        var inner = [Double](repeating: 0, count: 9)   // S2 Fᵀ + S1 fᵀ, in moving-voxel × world
        for r in 0..<3 {
            for c in 0..<3 {
                var sum = s[r] * fixedShift[c]
                for k in 0..<3 { sum += s[3 + r * 3 + k] * fixedLinear[c * 3 + k] }
                inner[r * 3 + c] = sum
            }
        }
        var gradientA = [Double](repeating: 0, count: 9), gradientB = [0.0, 0, 0]
        for r in 0..<3 {
            for q in 0..<3 { gradientB[r] += inverse[q * 3 + r] * s[q] }
            for c in 0..<3 {
                for q in 0..<3 { gradientA[r * 3 + c] += inverse[q * 3 + r] * inner[q * 3 + c] }
            }
        }
        return Evaluation(correlation: correlation, gradientA: gradientA, gradientB: gradientB, overlap: count / Double(n))
    }
}
