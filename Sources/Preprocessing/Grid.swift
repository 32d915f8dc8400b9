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
