import Foundation
import VolumeIO

/// The input checks shared by the masking, extraction and normalisation steps; each throws
/// the `PreprocessingError` that names the scan by `label`.
enum InputValidation {
    /// Throws `.gridMismatch` naming `label` unless `volume` lies on `reference`'s grid
    /// (`Grid.matches`).
    static func requireSameGrid(_ volume: Volume, as reference: Volume, label: String) throws(PreprocessingError) {
        let (expected, found) = (Grid(reference), Grid(volume))
        guard expected.matches(found) else {
            throw .gridMismatch(path: label, expected: gridDescription(expected), found: gridDescription(found))
        }
    }

    /// Throws `.nonFiniteVoxels` with their count unless every voxel is finite.
    static func requireFinite(_ volume: Volume, label: String) throws(PreprocessingError) {
        let bad = volume.data.scalars.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
        guard bad == 0 else { throw .nonFiniteVoxels(path: label, count: bad) }
    }

    /// Throws `.unsupportedVolume` unless every voxel size is positive and finite.
    static func requireVoxelSizes(_ volume: Volume, label: String) throws(PreprocessingError) {
        let sizes = volume.voxelSizes
        guard sizes.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw .unsupportedVolume(path: label, reason: "degenerate affine: voxel sizes \(sizes) mm")
        }
    }

    /// The mask volume `mask` as a `BinaryMask` (nonzero = inside) after checking that it lies
    /// on `image`'s grid and is not empty.
    static func mask(_ mask: Volume, on image: Volume, label: String) throws(PreprocessingError) -> BinaryMask {
        try requireSameGrid(mask, as: image, label: label)
        let binary = BinaryMask(nonzeroOf: mask)
        guard binary.voxels.contains(true) else { throw .noForeground(path: label, reason: "the mask is empty") }
        return binary
    }

    /// A grid's extents, voxel sizes, orientation and origin, for error messages.
    private static func gridDescription(_ grid: Grid) -> String {
        "\(grid) origin \(grid.affine.translation.map { String(format: "%.4g", $0) })"
    }
}
