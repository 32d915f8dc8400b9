import Foundation
import TensorCore

/// The NIfTI quaternion ("qform") parameters of an affine (NIfTI-1 header, `quatern_b/c/d`,
/// `qoffset_x/y/z`, `pixdim[0..3]`).
public struct QuaternionTransform: Sendable, Equatable {
    /// Quaternion (b, c, d) of the rotation; a = √(1 − b² − c² − d²) ≥ 0.
    public var b, c, d: Double
    /// `pixdim[0]`: −1 when the third voxel axis is flipped (a left-handed voxel grid).
    public var qfac: Double
    /// `pixdim[1..3]`: voxel sizes in mm (positive).
    public var zooms: [Double]
    /// `qoffset_x/y/z`: world position of voxel (0,0,0).
    public var offset: [Double]
}

/// Conversions between affines, NIfTI quaternions and axis orientations, following nibabel
/// (`nifti1.Nifti1Header.get_qform/set_qform`, `orientations.io_orientation`), in Double.
public enum AffineGeometry {
    /// The affine of a qform: `A[:3,:3] = R(b,c,d) · diag(zooms₀, zooms₁, qfac·zooms₂)`.
    ///
    /// - Parameter tolerance: how far b²+c²+d² may exceed 1 (and below which 1 − b²−c²−d²
    ///   counts as 0): nibabel's 3 ε of the stored type, Float32 for NIfTI-1 (the default),
    ///   Float64 for NIfTI-2.
    /// - Throws: `QuaternionError` when b²+c²+d² exceeds 1 by more than `tolerance` or a
    ///   parameter is not finite.
    public static func affine(from q: QuaternionTransform, tolerance: Double = 3 * Double(Float.ulpOfOne)) throws -> Affine {
        let parameters = [q.b, q.c, q.d, q.qfac] + q.zooms + q.offset
        guard parameters.allSatisfy(\.isFinite) else { throw QuaternionError.nonFinite(parameters) }
        let norm = q.b * q.b + q.c * q.c + q.d * q.d
        let w2 = 1 - norm
        let a: Double
        if abs(w2) < tolerance {
            a = 0
        } else if w2 < 0 {
            throw QuaternionError.notUnit(b: q.b, c: q.c, d: q.d)
        } else {
            a = w2.squareRoot()
        }
        let r = rotationMatrix(w: a, x: q.b, y: q.c, z: q.d)
        let zooms = [q.zooms[0], q.zooms[1], q.zooms[2] * q.qfac]
        return Affine(rows: [r[0] * zooms[0], r[1] * zooms[1], r[2] * zooms[2], q.offset[0]],
                      [r[3] * zooms[0], r[4] * zooms[1], r[5] * zooms[2], q.offset[1]],
                      [r[6] * zooms[0], r[7] * zooms[1], r[8] * zooms[2], q.offset[2]])
    }

    /// The qform that best represents `affine`: zooms are the column lengths, qfac the sign
    /// of the determinant, the rotation the nearest orthogonal matrix (polar decomposition),
    /// as nibabel's `set_qform(strip_shears=True)`.
    /// - Returns: the parameters and whether the affine had no shear (so the qform is exact).
    public static func quaternionTransform(of affine: Affine) throws -> (transform: QuaternionTransform, exact: Bool) {
        var m = affine.linearPart
        let zooms = affine.voxelSizes
        guard zooms.allSatisfy({ $0 > 0 && $0.isFinite }) else { throw AffineError.singular(affine) }
        for r in 0..<3 { for c in 0..<3 { m[r * 3 + c] /= zooms[c] } }
        var qfac = 1.0
        if determinant3(m) < 0 {
            qfac = -1
            for r in 0..<3 { m[r * 3 + 2] *= -1 }
        }
        let (u, _, vt) = try LinearAlgebra.svd(doublePrecision: m, rows: 3, columns: 3)
        let rotation = multiply3(u, vt)
        let exact = zip(rotation, m).allSatisfy { abs($0 - $1) <= 1e-8 + 1e-5 * abs($1) }
        let (_, b, c, d) = quaternion(of: rotation)
        return (QuaternionTransform(b: b, c: c, d: d, qfac: qfac, zooms: zooms, offset: affine.translation), exact)
    }

    /// For each voxel axis: the world axis (0 = x/LR, 1 = y/PA, 2 = z/IS) it is closest to
    /// and the direction (+1 or −1), or nil for an axis that maps to nothing; nibabel's
    /// `io_orientation` (polar decomposition, strongest axes first, no axis used twice).
    public static func ioOrientation(_ affine: Affine) throws -> [(Int, Int)?] {
        var rs = affine.linearPart
        let zooms = affine.voxelSizes.map { $0 == 0 ? 1 : $0 }
        for r in 0..<3 { for c in 0..<3 { rs[r * 3 + c] /= zooms[c] } }
        let (u, s, vt) = try LinearAlgebra.svd(doublePrecision: rs, rows: 3, columns: 3)
        let tolerance = (s.max() ?? 0) * 3 * Double.ulpOfOne
        var r = [Double](repeating: 0, count: 9)
        for k in 0..<3 where s[k] > tolerance {
            for i in 0..<3 { for j in 0..<3 { r[i * 3 + j] += u[i * 3 + k] * vt[k * 3 + j] } }
        }
        // Strongest input axes first; ties keep axis order (a stable sort, as numpy's).
        var strength = [Double](repeating: 0, count: 3)
        for c in 0..<3 {
            for row in 0..<3 { strength[c] = max(strength[c], r[row * 3 + c] * r[row * 3 + c]) }
        }
        let order = [0, 1, 2].sorted { a, b in strength[a] > strength[b] || (strength[a] == strength[b] && a < b) }
        var result: [(Int, Int)?] = [nil, nil, nil]
        for input in order {
            let column = (0..<3).map { r[$0 * 3 + input] }
            guard column.contains(where: { abs($0) > 1e-8 }) else { continue }
            var output = 0
            for k in 1..<3 where abs(column[k]) > abs(column[output]) { output = k }
            result[input] = (output, column[output] < 0 ? -1 : 1)
            for c in 0..<3 { r[output * 3 + c] = 0 }
        }
        return result
    }

    /// Rotation matrix (row-major 3×3) of the quaternion w + xi + yj + zk (nibabel `quat2mat`).
    static func rotationMatrix(w: Double, x: Double, y: Double, z: Double) -> [Double] {
        let n = w * w + x * x + y * y + z * z
        guard n >= Double.ulpOfOne else { return [1, 0, 0, 0, 1, 0, 0, 0, 1] }
        let s = 2 / n
        let (X, Y, Z) = (x * s, y * s, z * s)
        let (wX, wY, wZ) = (w * X, w * Y, w * Z)
        let (xX, xY, xZ) = (x * X, x * Y, x * Z)
        let (yY, yZ, zZ) = (y * Y, y * Z, z * Z)
        return [1 - (yY + zZ), xY - wZ, xZ + wY,
                xY + wZ, 1 - (xX + zZ), yZ - wX,
                xZ - wY, yZ + wX, 1 - (xX + yY)]
    }

    /// Unit quaternion (w ≥ 0) of a proper rotation matrix, by the closed form of the NIfTI
    /// reference library (`nifti_mat44_to_quatern`), branching on the largest diagonal term.
    static func quaternion(of r: [Double]) -> (w: Double, x: Double, y: Double, z: Double) {
        let (r11, r12, r13) = (r[0], r[1], r[2])
        let (r21, r22, r23) = (r[3], r[4], r[5])
        let (r31, r32, r33) = (r[6], r[7], r[8])
        var a = r11 + r22 + r33 + 1
        var b, c, d: Double
        if a > 0.5 {
            a = 0.5 * a.squareRoot()
            b = 0.25 * (r32 - r23) / a
            c = 0.25 * (r13 - r31) / a
            d = 0.25 * (r21 - r12) / a
        } else {
            let xd = 1 + r11 - (r22 + r33)
            let yd = 1 + r22 - (r11 + r33)
            let zd = 1 + r33 - (r11 + r22)
            if xd > 1 {
                b = 0.5 * xd.squareRoot()
                c = 0.25 * (r12 + r21) / b
                d = 0.25 * (r13 + r31) / b
                a = 0.25 * (r32 - r23) / b
            } else if yd > 1 {
                c = 0.5 * yd.squareRoot()
                b = 0.25 * (r12 + r21) / c
                d = 0.25 * (r23 + r32) / c
                a = 0.25 * (r13 - r31) / c
            } else {
                d = 0.5 * zd.squareRoot()
                b = 0.25 * (r13 + r31) / d
                c = 0.25 * (r23 + r32) / d
                a = 0.25 * (r21 - r12) / d
            }
            if a < 0 { (a, b, c, d) = (-a, -b, -c, -d) }
        }
        return (a, b, c, d)
    }

    static func determinant3(_ m: [Double]) -> Double {
        m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) + m[2] * (m[3] * m[7] - m[4] * m[6])
    }

    static func multiply3(_ a: [Double], _ b: [Double]) -> [Double] {
        var product = [Double](repeating: 0, count: 9)
        for i in 0..<3 {
            for j in 0..<3 {
                for k in 0..<3 { product[i * 3 + j] += a[i * 3 + k] * b[k * 3 + j] }
            }
        }
        return product
    }
}

/// A qform that does not describe a rotation.
public enum QuaternionError: Error, Equatable, CustomStringConvertible {
    case notUnit(b: Double, c: Double, d: Double)
    case nonFinite([Double])

    public var description: String {
        switch self {
        case let .notUnit(b, c, d): return "quaternion (b, c, d) = (\(b), \(c), \(d)) has b²+c²+d² > 1"
        case let .nonFinite(values): return "qform parameters are not all finite: \(values)"
        }
    }
}
