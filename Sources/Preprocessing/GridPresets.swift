import VolumeIO

/// Standard template grids, and grids derived from others (new voxel sizes, a mask's
/// bounding box). All preset grids are in RAS voxel order (axis codes "RAS", diagonal
/// affines); where the template file itself is stored otherwise (FSL and SPM store x
/// reversed, "LAS"), the preset has the same voxel centres, indexed along +x.
extension Grid {
    /// FSL's MNI152 2 mm grid, 91×109×91 voxels of 2 mm covering x −90…90, y −126…90,
    /// z −72…108 mm; voxel (45, 63, 36) is the origin (0, 0, 0).
    ///
    /// FSL's `MNI152_T1_2mm.nii.gz` stores it LAS with the affine
    /// `[-2 0 0 90; 0 2 0 -126; 0 0 2 -72]`; this is its RAS twin `[2 0 0 -90; 0 2 0 -126;
    /// 0 0 2 -72]` (voxel i here is voxel 90 − i there). Source: the affine and shape are
    /// from memory of the FSL file, checked against nibabel's CIFTI-2 tests
    /// (nipy/nibabel `nibabel/cifti2/tests/test_cifti2io.py`, `hcp_affine` with volume shape
    /// (91, 109, 91): HCP grayordinates use this FSL grid); the FSL file itself was not read.
    public static let mni2mm = Grid(shape: [91, 109, 91], affine: .scaling([2, 2, 2], origin: [-90, -126, -72]))

    /// SPM12's 1.5 mm grid, 121×145×121 voxels covering x −90…90, y −126…90, z −72…108 mm
    /// (the bounding box of SPM's `TPM.nii` and of Clinica's `t1-volume` outputs, which
    /// ClinicaDL's t1-volume mode reads); voxel (60, 84, 48) is the origin.
    ///
    /// SPM stores it LAS, `[-1.5 0 0 90; 0 1.5 0 -126; 0 0 1.5 -72]` in nibabel's 0-based
    /// convention; this is the RAS twin. Source: from memory of `TPM.nii`, not checked
    /// against an SPM file; consistent with the bounding box `[-90 -126 -72; 90 90 108]` at
    /// 1.5 mm written in SPM normalisation batches (e.g. uoguelph-mlrg/vlr
    /// `spm/templates/template_normalize.m`), which gives exactly these extents, and with
    /// third-party code using this affine for 121×145×121 CAT12/SPM images.
    public static let spm1p5mm = Grid(shape: [121, 145, 121], affine: .scaling([1.5, 1.5, 1.5], origin: [-90, -126, -72]))

    /// The 1 mm grid of the MNI ICBM152 2009c nonlinear templates (symmetric and
    /// asymmetric), 193×229×193 voxels from (−96, −132, −78) mm; the grid Clinica's and
    /// ClinicaDL's `t1-linear` register to (`mni_icbm152_t1_tal_nlin_sym_09c.nii`).
    ///
    /// Source: read from `mni_icbm152_t1_tal_nlin_asym_09c_brain.nii.gz` in ../shared/data,
    /// and Clinica's test of the symmetric file (aramis-lab/clinica
    /// `test/unittests/utils/test_image.py`, `test_get_mni_template`: shape (193, 229, 193),
    /// affine `[1 0 0 -96; 0 1 0 -132; 0 0 1 -78]`).
    public static let mni152NLin2009c1mm = Grid(shape: [193, 229, 193], affine: .scaling([1, 1, 1], origin: [-96, -132, -78]))

    /// ClinicaDL's `t1-linear` crop: 169×208×179 voxels of 1 mm from (−84, −119, −78) mm,
    /// the voxels [12..<181, 13..<221, 0..<179] of `mni152NLin2009c1mm`.
    ///
    /// Source: Clinica (which runs t1-linear for ClinicaDL) crops with the fixed box
    /// `MNI_CROP_BBOX = (12, 181, 13, 221, 0, 179)` and gives the result the affine of
    /// `ref_cropped_template.nii.gz` (aramis-lab/clinica `clinica/utils/image.py`); its tests
    /// (`test/unittests/utils/test_image.py`) state that template's shape (169, 208, 179) and
    /// affine `[1 0 0 -84; 0 1 0 -119; 0 0 1 -78]`, the template grid shifted by (12, 13, 0).
    public static let clinicaDLLinearCrop = Grid(shape: [169, 208, 179], affine: .scaling([1, 1, 1], origin: [-84, -119, -78]))

    /// This grid with new voxel sizes over the same field of view: the axes keep their
    /// directions (each affine column rescaled to its new length), voxel (0, 0, 0) keeps its
    /// centre, and each axis gets
    ///
    /// ```
    /// n′ = ⌈(n − 1) · old / new⌉ + 1
    /// ```
    ///
    /// voxels, the fewest whose centres reach the old last centre (nibabel's
    /// `resample_to_output` rule, in the grid's own axes rather than world-aligned ones;
    /// ⌈⌉ ignores excesses below 1e-6 so equal sizes keep n). Voxels past the old last centre
    /// lie outside the old grid.
    /// - Parameter voxelSize: new voxel sizes in mm along axes i, j, k.
    /// - Throws: `.invalidOption` unless `voxelSize` holds three positive finite sizes and
    ///   the grid stays within `Resampler`'s size limit, or when this grid's affine has a
    ///   zero or non-finite column.
    public func withVoxelSize(_ voxelSize: [Double]) throws(PreprocessingError) -> Grid {
        guard voxelSize.count == 3, voxelSize.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw .invalidOption(name: "voxel size", value: "\(voxelSize)", reason: "needs three positive sizes in mm")
        }
        let old = voxelSizes
        guard affine.isFinite, old.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw .invalidOption(name: "grid", value: "\(affine.entries)", reason: "its affine has a zero or non-finite axis")
        }
        var newAffine = affine
        var newShape: [Int] = []
        for c in 0..<3 {
            let ratio = voxelSize[c] / old[c]
            for r in 0..<3 { newAffine[r, c] *= ratio }
            let span = Double(shape[c] - 1) / ratio
            guard span < Double(1 << 31) else {
                throw .invalidOption(name: "voxel size", value: "\(voxelSize)", reason: "makes a grid of over 2^31 voxels")
            }
            newShape.append(Int((span - 1e-6).rounded(.up)) + 1)
        }
        try Resampler.checkShape(newShape, name: "voxel size \(voxelSize)")
        return Grid(shape: newShape, affine: newAffine)
    }

    /// The sub-grid of `mask`'s grid enclosing its nonzero voxels (NaN counts as zero),
    /// widened by `margin` mm on every side (⌈margin / voxel size⌉ voxels per axis) and
    /// clamped to the mask's grid. Same axes and voxel sizes; its first voxel is a voxel of
    /// the mask's grid, so `Resampler.cropOrPad` or a `.nearest` resampling onto it copies
    /// voxels exactly.
    /// - Throws: `.invalidOption` for a negative or non-finite margin; `.unsupportedVolume`
    ///   for a mask whose affine has a zero or non-finite axis; `.noForeground` for a mask
    ///   without a nonzero voxel.
    public static func boundingBox(of mask: Volume, margin: Double = 0, name: String = "mask") throws(PreprocessingError) -> Grid {
        guard margin.isFinite, margin >= 0 else {
            throw .invalidOption(name: "margin", value: "\(margin)", reason: "needs a finite distance ≥ 0 mm")
        }
        let sizes = mask.voxelSizes
        guard mask.affine.isFinite, sizes.allSatisfy({ $0 > 0 }) else {
            throw .unsupportedVolume(path: name, reason: "its affine has a zero or non-finite axis")
        }
        let shape = mask.shape
        var low = shape, high = [-1, -1, -1]
        mask.data.withUnsafeBufferPointer { values in
            for i in 0..<shape[0] {
                for j in 0..<shape[1] {
                    let row = (i * shape[1] + j) * shape[2]
                    guard let first = (0..<shape[2]).first(where: { values[row + $0] != 0 && !values[row + $0].isNaN }) else { continue }
                    let last = (first..<shape[2]).last(where: { values[row + $0] != 0 && !values[row + $0].isNaN }) ?? first
                    (low[0], high[0]) = (min(low[0], i), max(high[0], i))
                    (low[1], high[1]) = (min(low[1], j), max(high[1], j))
                    (low[2], high[2]) = (min(low[2], first), max(high[2], last))
                }
            }
        }
        guard high[0] >= 0 else { throw .noForeground(path: name, reason: "no nonzero voxel to bound") }
        var start = [0, 0, 0], extent = [0, 0, 0]
        for a in 0..<3 {
            let widen = Int(min((margin / sizes[a] - 1e-9).rounded(.up), Double(shape[a])))
            start[a] = max(0, low[a] - max(0, widen))
            extent[a] = min(shape[a] - 1, high[a] + max(0, widen)) - start[a] + 1
        }
        return Grid(shape: extent, affine: Resampler.translated(mask.affine, by: start))
    }
}
