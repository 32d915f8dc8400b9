import Foundation
import TensorCore
import VolumeIO

/// A whole scan read, checked and brought to the common intensity scale: what patches are
/// cut from in training and what a trained encoder sees whole in extraction.
///
/// `values` is `Volume.data [X, Y, Z]` row-major (`k` fastest) after normalisation;
/// `mask` marks the brain mask (from `mask_path`) or, without one, the foreground (voxels
/// above `foregroundThreshold` × the scan's 99th percentile).
public struct NormalisedScan: Sendable {
    public let shape: Triple
    public let values: [Float]
    public let mask: [Bool]
    /// Voxels in `mask`.
    public let maskVoxels: Int
    /// The image's voxel-to-world (RAS+ mm) affine.
    public let affine: Affine

    /// A scan already in memory: `values` normalised, `mask` of the same `shape.product` voxels.
    public init(shape: Triple, values: [Float], mask: [Bool], affine: Affine) {
        precondition(values.count == shape.product && mask.count == shape.product,
                     "NormalisedScan: \(values.count) values and \(mask.count) mask voxels for shape \(shape)")
        (self.shape, self.values, self.mask, self.affine) = (shape, values, mask, affine)
        maskVoxels = mask.reduce(0) { $0 + ($1 ? 1 : 0) }
    }

    /// The scan's extents as its headers give them, after the checks that need no voxels: the
    /// files open, the image and mask are 3-D, and the mask (if any) has the image's extents.
    /// - Throws: `PatchError.badScan` naming the file (and manifest line).
    public static func checkHeaders(_ source: ScanSource) throws(PatchError) -> Triple {
        var url = source.image
        func threeD(_ url: URL) throws -> VolumeHeader {
            let header = try VolumeReader.readHeader(url)
            guard header.volumeCount == 1 else {
                throw PatchError.badScan(path: url.path, line: source.line,
                                         reason: "expected a 3-D image, got \(header.volumeCount) volumes (dimensions \(header.dims))")
            }
            return header
        }
        do {
            let header = try threeD(url)
            if let mask = source.mask {
                url = mask
                let maskHeader = try threeD(mask)
                guard maskHeader.spatialShape == header.spatialShape else {
                    throw PatchError.badScan(path: mask.path, line: source.line,
                                             reason: "mask dimensions \(maskHeader.spatialShape) differ from the image's \(header.spatialShape)")
                }
            }
            let shape = header.spatialShape
            return Triple(shape[0], shape[1], shape[2])
        } catch let error as PatchError {
            throw error
        } catch {
            throw badScan(url, line: source.line, error)
        }
    }

    /// A reader's error as a bad scan; its message starts with the path, which `badScan` names already.
    static func badScan(_ url: URL, line: Int?, _ error: any Error) -> PatchError {
        let message = String(describing: error)
        return .badScan(path: url.path, line: line, reason: message.hasPrefix(url.path + ": ") ? String(message.dropFirst(url.path.count + 2)) : message)
    }

    /// Reads the image (and its mask), checks it and normalises it.
    /// - Throws: `PatchError.badScan` naming the file (and manifest line) for unreadable
    ///   files, NaN/Inf voxels, 4-D images, a mask of another size or an empty mask.
    public static func load(_ source: ScanSource, options: PatchSamplingOptions) throws(PatchError) -> NormalisedScan {
        func fail(_ url: URL, _ reason: String) -> PatchError { .badScan(path: url.path, line: source.line, reason: reason) }
        func read(_ url: URL) throws(PatchError) -> Volume {
            do { return try VolumeReader.read(url) } catch { throw badScan(url, line: source.line, error) }
        }
        try options.validate()
        let shape = try checkHeaders(source)
        let image = try read(source.image)
        var mask: [Bool]
        if let maskURL = source.mask {
            // `checkHeaders` saw the mask's extents are the image's.
            mask = try read(maskURL).data.scalars.map { $0 != 0 }
        } else {
            var finite = image.data.scalars
            let p99 = Percentiles.of(&finite, [99])[0]
            let threshold = Float(options.foregroundThreshold * p99)
            mask = image.data.scalars.map { $0 > threshold }
        }
        let maskVoxels = mask.reduce(0) { $0 + ($1 ? 1 : 0) }
        guard maskVoxels > 0 else {
            throw fail(source.mask ?? source.image, source.mask == nil ? "no voxel above the foreground threshold" : "the brain mask is empty")
        }
        var values = image.data.scalars
        normalise(&values, mask: mask, options: options)
        return NormalisedScan(shape: shape, values: values, mask: mask, affine: image.affine)
    }

    /// Normalises `values` in place from statistics over the mask (see `IntensityNormalization`).
    static func normalise(_ values: inout [Float], mask: [Bool], options: PatchSamplingOptions) {
        switch options.normalization {
        case .none:
            break
        case .zscore:
            MaskedIntensityScaling.zScore(&values, mask: mask)
        case .minmax:
            MaskedIntensityScaling.percentileMinMax(&values, mask: mask, percentiles: options.clipPercentiles)
        }
        if options.zeroOutsideMask {
            for i in values.indices where !mask[i] { values[i] = 0 }
        }
    }
}

/// The two normalisation formulas of `IntensityNormalization`, shared with `Preprocessing`
/// so that both give the same numbers: statistics over the voxels where `mask` is true
/// (accumulated in Float64, in voxel order), then one affine map applied to every voxel,
/// inside the mask and out, rounded to Float32 once.
public enum MaskedIntensityScaling {
    /// Z-score over the mask:
    /// ```
    /// v' = (v − mean) / sd,   mean, sd (population, 1/n) over the mask voxels
    /// ```
    /// A zero `sd` (a constant mask) leaves the scale at 1, so only the mean is removed.
    /// - Precondition: `mask.count == values.count` and at least one voxel is in the mask.
    /// - Returns: the mean and standard deviation used.
    @discardableResult
    public static func zScore(_ values: inout [Float], mask: [Bool]) -> (mean: Double, standardDeviation: Double) {
        precondition(mask.count == values.count, "zScore: \(mask.count) mask voxels for \(values.count) values")
        var (sum, sumSquares, n) = (0.0, 0.0, 0.0)
        for (v, inside) in zip(values, mask) where inside {
            sum += Double(v)
            n += 1
        }
        precondition(n > 0, "zScore: the mask is empty")
        let mean = sum / n
        for (v, inside) in zip(values, mask) where inside { sumSquares += (Double(v) - mean) * (Double(v) - mean) }
        let std = (sumSquares / n).squareRoot()
        let scale = std > 0 ? 1 / std : 1
        for i in values.indices { values[i] = Float((Double(values[i]) - mean) * scale) }
        return (mean, std)
    }

    /// Percentile min-max over the mask: the mask's `percentiles[0]` and `percentiles[1]`
    /// (0-100, numpy's default linear interpolation, see `Percentiles.of`) map to 0 and 1,
    /// and the result is clipped to `[0, 1]`:
    /// ```
    /// v' = clip((v − p_low) / (p_high − p_low), 0, 1)
    /// ```
    /// Equal percentiles (a constant mask) leave the scale at 1.
    /// - Precondition: `mask.count == values.count`, the mask is not empty, two percentiles.
    /// - Returns: the two percentile values used.
    @discardableResult
    public static func percentileMinMax(_ values: inout [Float], mask: [Bool], percentiles: [Double]) -> (low: Double, high: Double) {
        precondition(mask.count == values.count, "percentileMinMax: \(mask.count) mask voxels for \(values.count) values")
        precondition(percentiles.count == 2, "percentileMinMax: two percentiles, got \(percentiles)")
        var inside = zip(values, mask).compactMap { $1 ? $0 : nil }
        let bounds = Percentiles.of(&inside, percentiles)
        let (low, range) = (bounds[0], bounds[1] - bounds[0])
        let scale = range > 0 ? 1 / range : 1
        for i in values.indices { values[i] = Float(min(max((Double(values[i]) - low) * scale, 0), 1)) }
        return (bounds[0], bounds[1])
    }
}
