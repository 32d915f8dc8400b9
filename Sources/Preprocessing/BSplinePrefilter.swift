import Foundation
import TensorCore

/// Cubic B-spline interpolation coefficients of a volume (Unser, Aldroubi & Eden, "B-spline
/// signal processing", IEEE Trans. Signal Processing 41(2), 1993; Unser, "Splines: a perfect
/// fit for signal and image processing", IEEE Signal Processing Magazine 16(6), 1999).
///
/// The coefficients `c` make the spline `Σ c[m] β³(x − m)` pass through every sample. Along
/// each axis they come from the exact recursive filter with the single pole z = √3 − 2:
///
/// ```
/// c⁺[0] = mirror-symmetric initial value,  c⁺[k] = 6·s[k] + z·c⁺[k−1]
/// c[n−1] = z/(z² − 1) · (c⁺[n−1] + z·c⁺[n−2]),  c[k] = z·(c[k+1] − c⁺[k])
/// ```
///
/// with the signal extended mirror-symmetrically about its first and last samples
/// (… s₂ s₁ | s₀ s₁ … sₙ₋₂ sₙ₋₁ | sₙ₋₂ sₙ₋₃ …), so the causal initial value is the sum over
/// one period (2n − 2 samples) of that extension. This is scipy.ndimage's `spline_filter(order=3,
/// mode='mirror')` (`ni_splines.c`), computed the same way; the interpolation must extend
/// the coefficients by the same mirror.
enum BSplinePrefilter {
    /// The pole of the cubic B-spline's inverse filter.
    static let pole = 3.0.squareRoot() - 2

    /// The coefficients of `values` (shape `[X, Y, Z]`, Z fastest), filtered along each axis
    /// in turn in Double and stored as Float. Axes of one voxel are left as they are (the
    /// spline through one sample is that constant).
    static func coefficients(_ values: [Float], shape: [Int]) -> [Float] {
        precondition(shape.count == 3 && values.count == shape.reduce(1, *), "coefficients of \(values.count) values for shape \(shape)")
        var coefficients = values
        coefficients.withUnsafeMutableBufferPointer { buffer in
            guard let data = buffer.baseAddress else { return }
            for axis in 0..<3 where shape[axis] > 1 {
                filter(data, shape: shape, axis: axis)
            }
        }
        return coefficients
    }

    /// Filters every line along `axis` in place, `width` lines at a time: the volume is
    /// `[outer, n, inner]` around that axis, and a block holds `width` neighbouring lines
    /// (neighbouring columns of one outer slice when `inner > 1`, consecutive rows when the
    /// axis is the contiguous one), copied as `block[r · width + c]` so that each recursion
    /// step is one vector operation across the block and the strided axes are read a cache
    /// line at a time.
    static func filter(_ data: UnsafeMutablePointer<Float>, shape: [Int], axis: Int) {
        let n = shape[axis]
        let outer = shape[..<axis].reduce(1, *)
        let inner = shape[(axis + 1)...].reduce(1, *)
        let width = 16
        // Where line c of a block starts relative to line 0, and how far apart its samples are.
        let (lineStride, sampleStride) = inner > 1 ? (1, inner) : (n, 1)
        let linesPerGroup = inner > 1 ? inner : outer
        let groups = inner > 1 ? outer : 1
        let blocksPerGroup = (linesPerGroup + width - 1) / width
        Engine.parallelRanges(groups * blocksPerGroup, minimumPerWorker: max(1, 4096 / (n * width))) { range in
            var block = [Double](repeating: 0, count: n * width)
            var sum = [Double](repeating: 0, count: width)
            block.withUnsafeMutableBufferPointer { buffer in
                sum.withUnsafeMutableBufferPointer { sumBuffer in
                    guard let b = buffer.baseAddress, let s = sumBuffer.baseAddress else { return }
                    for index in range {
                        let group = index / blocksPerGroup
                        let firstLine = (index % blocksPerGroup) * width
                        let lines = min(width, linesPerGroup - firstLine)
                        let start = data + (group * n * inner + firstLine * lineStride)
                        // Load with the cubic spline's gain (1 − z)(1 − 1/z) = 6.
                        for c in 0..<lines {
                            let line = start + c * lineStride
                            for r in 0..<n { b[r * width + c] = 6 * Double(line[r * sampleStride]) }
                        }
                        filterBlock(b, n: n, width: width, columns: lines, sum: s)
                        for c in 0..<lines {
                            let line = start + c * lineStride
                            for r in 0..<n { line[r * sampleStride] = Float(b[r * width + c]) }
                        }
                    }
                }
            }
        }
    }

    /// The causal and anti-causal passes over `columns` lines of length `n ≥ 2` stored
    /// row by row in `b` (`b[r · width + c]` is sample r of line c).
    static func filterBlock(_ b: UnsafeMutablePointer<Double>, n: Int, width: Int, columns: Int, sum: UnsafeMutablePointer<Double>) {
        let z = pole
        // Causal initial value for the mirror extension (scipy `_init_causal_mirror`):
        // (s₀ + zⁿ⁻¹ sₙ₋₁ + Σ_{r=1}^{n−2} zʳ (s_r + zⁿ⁻¹ sₙ₋₁₋ᵣ)) / (1 − z²⁽ⁿ⁻¹⁾).
        let zLast = pow(z, Double(n - 1))
        let last = (n - 1) * width
        for c in 0..<columns { sum[c] = b[c] + zLast * b[last + c] }
        var zr = z
        for r in stride(from: 1, to: n - 1, by: 1) {
            let row = r * width, mirrored = (n - 1 - r) * width
            for c in 0..<columns { sum[c] += zr * (b[row + c] + zLast * b[mirrored + c]) }
            zr *= z
        }
        let scale = 1 / (1 - zLast * zLast)
        for c in 0..<columns { b[c] = sum[c] * scale }
        for r in 1..<n {
            let row = r * width, previous = row - width
            for c in 0..<columns { b[row + c] += z * b[previous + c] }
        }
        // Anti-causal initial value (scipy `_init_anticausal_mirror`).
        let gain = z / (z * z - 1)
        let beforeLast = last - width
        for c in 0..<columns { b[last + c] = gain * (b[last + c] + z * b[beforeLast + c]) }
        for r in stride(from: n - 2, through: 0, by: -1) {
            let row = r * width, next = row + width
            for c in 0..<columns { b[row + c] = z * (b[next + c] - b[row + c]) }
        }
    }
}
