import Foundation
import TensorCore

/// A 4×4 voxel-to-world transform in homogeneous coordinates, as nibabel's `img.affine`:
/// `world = A · (i, j, k, 1)ᵀ`, world axes in millimetres, RAS+ (x grows to the subject's
/// Right, y to Anterior, z to Superior), voxel indices 0-based.
public struct Affine: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The 16 entries, row by row. The last row is `0 0 0 1` for every affine built here.
    public var entries: [Double]

    /// - Precondition: `entries.count == 16`.
    public init(entries: [Double]) {
        precondition(entries.count == 16, "an affine has 16 entries, got \(entries.count)")
        self.entries = entries
    }

    /// The affine with rows `r0, r1, r2` and last row `0 0 0 1`.
    public init(rows r0: [Double], _ r1: [Double], _ r2: [Double]) {
        precondition(r0.count == 4 && r1.count == 4 && r2.count == 4, "affine rows have 4 entries")
        self.init(entries: r0 + r1 + r2 + [0, 0, 0, 1])
    }

    public static let identity = Affine(entries: [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1])

    /// A diagonal affine: voxel sizes `zooms` (mm) and world position `origin` of voxel (0,0,0).
    public static func scaling(_ zooms: [Double], origin: [Double] = [0, 0, 0]) -> Affine {
        Affine(rows: [zooms[0], 0, 0, origin[0]], [0, zooms[1], 0, origin[1]], [0, 0, zooms[2], origin[2]])
    }

    public subscript(row: Int, column: Int) -> Double {
        get { entries[row * 4 + column] }
        set { entries[row * 4 + column] = newValue }
    }

    /// The upper-left 3×3 block (rotations, zooms and shears), row by row.
    public var linearPart: [Double] { (0..<3).flatMap { r in (0..<3).map { c in self[r, c] } } }

    /// The translation column: the world position of voxel (0, 0, 0).
    public var translation: [Double] { (0..<3).map { self[$0, 3] } }

    public var isFinite: Bool { entries.allSatisfy(\.isFinite) }

    /// Matrix product `self · other`.
    public static func * (lhs: Affine, rhs: Affine) -> Affine {
        var out = [Double](repeating: 0, count: 16)
        for r in 0..<4 {
            for c in 0..<4 {
                var sum = 0.0
                for k in 0..<4 { sum += lhs[r, k] * rhs[k, c] }
                out[r * 4 + c] = sum
            }
        }
        return Affine(entries: out)
    }

    /// World coordinates (mm) of a (possibly fractional) voxel position.
    public func apply(_ voxel: [Double]) -> [Double] {
        (0..<3).map { r in self[r, 0] * voxel[0] + self[r, 1] * voxel[1] + self[r, 2] * voxel[2] + self[r, 3] }
    }

    /// The inverse transform (world → voxel).
    /// - Throws: `AffineError.singular` when the 3×3 block has no inverse (a zero voxel size).
    public func inverse() throws -> Affine {
        let m = linearPart
        // Cofactor expansion: exact enough for 3×3 and free of library calls.
        let c00 = m[4] * m[8] - m[5] * m[7], c01 = m[5] * m[6] - m[3] * m[8], c02 = m[3] * m[7] - m[4] * m[6]
        let det = m[0] * c00 + m[1] * c01 + m[2] * c02
        let scale = m.reduce(0) { max($0, abs($1)) }
        guard det.isFinite, abs(det) > 1e-12 * max(scale * scale * scale, .leastNormalMagnitude) else {
            throw AffineError.singular(self)
        }
        let inv = [
            c00, m[2] * m[7] - m[1] * m[8], m[1] * m[5] - m[2] * m[4],
            c01, m[0] * m[8] - m[2] * m[6], m[2] * m[3] - m[0] * m[5],
            c02, m[1] * m[6] - m[0] * m[7], m[0] * m[4] - m[1] * m[3],
        ].map { $0 / det }
        let t = translation
        let shift = (0..<3).map { r in -(inv[r * 3] * t[0] + inv[r * 3 + 1] * t[1] + inv[r * 3 + 2] * t[2]) }
        return Affine(rows: [inv[0], inv[1], inv[2], shift[0]], [inv[3], inv[4], inv[5], shift[1]],
                      [inv[6], inv[7], inv[8], shift[2]])
    }

    /// Voxel sizes in mm: the lengths of the first three columns, as nibabel's `voxel_sizes`.
    public var voxelSizes: [Double] {
        (0..<3).map { c in (0..<3).reduce(0) { $0 + self[$1, c] * self[$1, c] }.squareRoot() }
    }

    /// The world direction each voxel axis points to most, as nibabel's `aff2axcodes`:
    /// e.g. `"RAS"` (i → Right, j → Anterior, k → Superior), `"LPS"`, `"LIA"`. Obliques get the
    /// nearest axis; an axis that maps to nothing (a zero column) gets `"?"`.
    public var axisCodes: String {
        let labels: [(negative: Character, positive: Character)] = [("L", "R"), ("P", "A"), ("I", "S")]
        guard let orientation = try? AffineGeometry.ioOrientation(self) else { return "???" }
        return String(orientation.map { axis -> Character in
            guard let (worldAxis, sign) = axis else { return "?" }
            return sign > 0 ? labels[worldAxis].positive : labels[worldAxis].negative
        })
    }

    public var description: String {
        (0..<4).map { r in (0..<4).map { c in String(format: "%10.4f", self[r, c]) }.joined(separator: " ") }
            .joined(separator: "\n")
    }
}

/// An affine that cannot be used.
public enum AffineError: Error, Equatable, CustomStringConvertible {
    case singular(Affine)

    public var description: String {
        switch self {
        case let .singular(affine): return "the affine is singular (a zero or degenerate voxel axis):\n\(affine)"
        }
    }
}
