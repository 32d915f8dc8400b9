import TensorCore
import VolumeIO

/// A binary mask on a voxel grid: the representation every `Morphology` operation and the
/// brain extraction work on.
///
/// `voxels` holds one `Bool` (one byte) per voxel of `grid`, in the layout of `Volume.data`
/// `[X, Y, Z]`: voxel `(i, j, k)` is `voxels[(i * Y + j) * Z + k]` (k fastest), as nibabel's
/// arrays and `NormalisedScan.mask`. `Bool` rather than `UInt8` because a mask has no third
/// value; both take a byte.
public struct BinaryMask: Sendable, Equatable {
    /// Extents `[X, Y, Z]` and the voxel → world affine; `grid.voxelSizes` (mm) set the metric
    /// of the structuring elements.
    public var grid: Grid
    /// `true` inside the mask; `grid.count` entries.
    public var voxels: [Bool]

    /// - Precondition: `voxels.count == grid.count`.
    public init(grid: Grid, voxels: [Bool]) {
        precondition(voxels.count == grid.count, "BinaryMask: \(voxels.count) voxels for grid \(grid.shape)")
        self.grid = grid
        self.voxels = voxels
    }

    /// The nonzero voxels of `volume` (NaN counts as nonzero, as in numpy's `volume != 0`).
    public init(nonzeroOf volume: Volume) {
        self.init(grid: Grid(volume), voxels: volume.data.scalars.map { $0 != 0 })
    }

    /// Extents `[X, Y, Z]`.
    public var shape: [Int] { grid.shape }

    /// Voxels inside the mask.
    public var count: Int { voxels.reduce(0) { $0 + ($1 ? 1 : 0) } }

    /// The mask as a volume on its grid: 1 inside, 0 outside (Float32).
    public var volume: Volume {
        // The grid is 3-D by construction, so the tensor is.
        try! Volume(data: Tensor(shape: grid.shape, scalars: voxels.map { $0 ? 1 : 0 }), affine: grid.affine)
    }
}
