import Patches
import VolumeIO

/// Brings a scan's intensities to a common scale from statistics over a (brain) mask. The
/// formulas are `Patches`' (`MaskedIntensityScaling`), so a scan normalised here and one
/// normalised by the patch sampler get the same numbers.
public enum IntensityNormalisation {
    /// What becomes of the voxels outside the mask.
    public enum Outside: String, Sendable, Codable, CaseIterable {
        /// Set to 0 (default): after skull stripping there is nothing to keep, and 0 is the
        /// brain's mean (z-score) or its low percentile (min-max).
        case zero
        /// Mapped by the same formula as the inside (the patch sampler's default).
        case scaled
        /// Left at their original values.
        case unchanged
    }

    /// Z-score within the mask:
    /// ```
    /// v' = (v − mean) / sd,   mean and population sd over the mask's voxels
    /// ```
    /// (a constant mask only has its mean removed). Afterwards the mask's voxels have mean 0
    /// and standard deviation 1, to Float32 rounding.
    /// - Parameters:
    ///   - image: intensities `[X, Y, Z]`, all finite.
    ///   - mask: on the image's grid; nonzero voxels are inside.
    ///   - label: names the image in errors (its mask is "mask of <label>").
    /// - Returns: the normalised image, with the input's affine and header.
    /// - Throws: `.gridMismatch`, `.nonFiniteVoxels`, `.noForeground` for an empty mask.
    public static func zScore(_ image: Volume, mask: Volume, outside: Outside = .zero,
                              label: String = "image") throws(PreprocessingError) -> Volume {
        try apply(image, mask: mask, outside: outside, label: label) { values, inside in
            MaskedIntensityScaling.zScore(&values, mask: inside)
        }
    }

    /// Min-max with percentile clipping within the mask:
    /// ```
    /// v' = clip((v − p_low) / (p_high − p_low), 0, 1)
    /// ```
    /// with `p_low`, `p_high` the mask's `percentiles` (0-100, numpy.percentile's default
    /// linear interpolation). The default `[0.5, 99.5]` is the patch sampler's: it ignores
    /// the 0.5 % extremes at each end (noise, vessels, partial volume with the skull).
    /// - Throws: as `zScore`, and `.invalidOption` unless `0 ≤ low < high ≤ 100`.
    public static func minMax(_ image: Volume, mask: Volume, percentiles: [Double] = [0.5, 99.5], outside: Outside = .zero,
                              label: String = "image") throws(PreprocessingError) -> Volume {
        guard percentiles.count == 2, percentiles[0] >= 0, percentiles[1] <= 100, percentiles[0] < percentiles[1] else {
            throw .invalidOption(name: "clip percentiles", value: "\(percentiles)", reason: "needs two percentiles 0 <= low < high <= 100")
        }
        return try apply(image, mask: mask, outside: outside, label: label) { values, inside in
            MaskedIntensityScaling.percentileMinMax(&values, mask: inside, percentiles: percentiles)
        }
    }

    /// Checks the inputs, runs `scale` on the voxels and treats the outside as asked.
    private static func apply(_ image: Volume, mask: Volume, outside: Outside, label: String,
                              _ scale: (inout [Float], [Bool]) -> Void) throws(PreprocessingError) -> Volume {
        try InputValidation.requireFinite(image, label: label)
        let inside = try InputValidation.mask(mask, on: image, label: "mask of \(label)").voxels
        let original = image.data.scalars
        var values = original
        scale(&values, inside)
        switch outside {
        case .zero: for index in values.indices where !inside[index] { values[index] = 0 }
        case .unchanged: for index in values.indices where !inside[index] { values[index] = original[index] }
        case .scaled: break
        }
        var result = image
        result.data.withUnsafeMutableBufferPointer { out in
            for index in out.indices { out[index] = values[index] }
        }
        return result
    }
}
