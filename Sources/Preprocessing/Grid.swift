import VolumeIO

/// A voxel grid in the world: extents `[X, Y, Z]` and the voxel → world (RAS+ mm) affine.
/// Resampling targets, registration spaces and standard crops are grids.
public struct Grid: Sendable, Equatable, Codable, CustomStringConvertible {
    /// Extents `[X, Y, Z]`, each ≥ 1.
    public var shape: [Int]
    /// Voxel (i, j, k) → world millimetres (RAS+).
    public var affine: Affine

    public init(shape: [Int], affine: Affine) {
        precondition(shape.count == 3, "a grid has three extents, got \(shape)")
        self.shape = shape
        self.affine = affine
    }

    /// The grid a volume's voxels sit on.
    public init(_ volume: Volume) {
        self.init(shape: volume.shape, affine: volume.affine)
    }

    /// Whether `other` is the same grid: the same extents and every affine entry within
    /// 1e-4 (mm, or relative for entries above 1) — far below any voxel size, far above the
    /// rounding of affines stored as Float32 in NIfTI headers.
    public func matches(_ other: Grid) -> Bool {
        shape == other.shape && zip(affine.entries, other.affine.entries).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($0), abs($1)) }
    }

    /// Voxels in the grid.
    public var count: Int { shape.reduce(1, *) }

    /// Voxel sizes in mm (the lengths of the affine's columns).
    public var voxelSizes: [Double] { affine.voxelSizes }

    /// World position (mm) of the grid's centre: the midpoint between its first and last voxel.
    public var centre: [Double] { affine.apply(shape.map { Double($0 - 1) / 2 }) }

    public var description: String {
        "\(shape.map(String.init).joined(separator: "x")) at \(voxelSizes.map { String(format: "%.3g", $0) }.joined(separator: "x")) mm (\(affine.axisCodes))"
    }
}
