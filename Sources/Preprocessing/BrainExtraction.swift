import Foundation
import Patches
import TensorCore
import VolumeIO

/// How `BrainExtraction.extractBrain` finds the brain in a whole-head T1-weighted scan.
/// Every default follows from the method and from adult head anatomy, not from one data set
/// (see each field); `validate()` checks the ranges.
public struct BrainExtractionOptions: Sendable, Equatable, Codable {
    /// The intensity above which a voxel may be brain tissue.
    public enum Threshold: Sendable, Equatable, Codable {
        /// The lower of the two three-class Otsu thresholds over the head (default). A T1
        /// head has three intensity groups: dark (CSF, bone, vessels, air cavities),
        /// intermediate (grey matter, muscle) and bright (white matter, fat, marrow); the
        /// lower cut separates grey matter from CSF and bone, which is the brain's boundary.
        case otsuThreeClass
        /// The two-class Otsu threshold over the head: higher (between grey and white matter
        /// on many scans), for images with little CSF or bone signal contrast.
        case otsu
        /// `p2 + f · (p98 − p2)` with the image's robust range (2nd and 98th percentiles),
        /// as FSL BET's thresholds; `f` in (0, 1).
        case robustRangeFraction(Double)
    }

    public var threshold: Threshold = .otsuThreeClass
    /// The head, over which Otsu's histogram is taken, is the voxels above
    /// `p2 + headFraction · (p98 − p2)`: FSL BET's "brain/background" threshold (Smith 2002,
    /// Hum. Brain Mapp. 17:143, 10 %), which drops air and its noise.
    public var headFraction: Double = 0.1
    /// Bins of the head's histogram (over the head's threshold to its 99.9th percentile).
    /// 256 resolves 0.4 % of the range, far finer than the tissue classes' spread.
    public var histogramBins: Int = 256
    /// Erosion radius (mm) that cuts the thin bridges between brain and non-brain tissue of
    /// the thresholded mask (optic nerves about 3-4 mm thick, vessels and dura, partial-volume
    /// links across thin bone): a ball of radius r removes parts thinner than 2r. 3 mm cuts
    /// those while the brain's core survives; at 4 mm and above the gyri of atrophied brains
    /// (thinner cortex, wider sulci) start to come off the core.
    public var erosionRadius: Double = 3
    /// Dilation radius (mm) that grows the core back. The erosion radius plus 2 mm, so that
    /// tissue the erosion detached from the core (gyri) comes back, yet less than the erosion
    /// radius plus the 4-7 mm of skull that separates brain from scalp.
    public var dilationRadius: Double = 5
    /// Keep the dilation within the thresholded mask (a conditional dilation, then the
    /// component that holds the core), so the mask follows the tissue's boundary instead of
    /// the ball's. Off: the plain dilation of the core.
    public var dilateWithinThreshold: Bool = true
    /// Closing radius (mm; 0 turns it off) that seals the sulci and the interhemispheric
    /// fissure at the brain's surface, so the mask is the brain's envelope (with its sulcal
    /// CSF, as BET's and manual masks are): a 5 mm ball cannot enter gaps narrower than 10 mm,
    /// which holds sulci at the surface even with atrophy. The closing only adds voxels.
    public var closingRadius: Double = 5
    /// Fill enclosed cavities after the closing: the ventricles, and the depths of the sulci
    /// that the closing sealed at the surface (`scipy.ndimage.binary_fill_holes`).
    public var fillHoles: Bool = true

    public init() {}

    /// Checks every field's range.
    /// - Throws: `PreprocessingError.invalidOption` naming the field.
    public func validate() throws(PreprocessingError) {
        func radius(_ name: String, _ value: Double) throws(PreprocessingError) {
            guard value.isFinite, (0...50).contains(value) else {
                throw .invalidOption(name: name, value: "\(value)", reason: "must be a radius in 0...50 mm")
            }
        }
        if case let .robustRangeFraction(f) = threshold, !(f > 0 && f < 1) {
            throw .invalidOption(name: "threshold fraction", value: "\(f)", reason: "must be in (0, 1)")
        }
        guard headFraction > 0, headFraction < 1 else {
            throw .invalidOption(name: "head fraction", value: "\(headFraction)", reason: "must be in (0, 1)")
        }
        guard (16...4096).contains(histogramBins) else {
            throw .invalidOption(name: "histogram bins", value: "\(histogramBins)", reason: "must be in 16...4096")
        }
        try radius("erosion radius", erosionRadius)
        try radius("dilation radius", dilationRadius)
        try radius("closing radius", closingRadius)
    }
}

/// Skull stripping: finding the brain in a whole-head scan and masking images with it.
public enum BrainExtraction {
    /// The image with every voxel outside `mask` set to 0 (nonzero mask voxels are inside).
    /// The result keeps the image's affine and header.
    /// - Parameter label: names the mask in errors (its path, or e.g. "brain mask").
    /// - Throws: `.gridMismatch` naming both grids unless the mask has the image's extents
    ///   and affine (within 1e-4 mm).
    public static func applyMask(_ mask: Volume, to image: Volume, label: String = "mask") throws(PreprocessingError) -> Volume {
        try InputValidation.requireSameGrid(mask, as: image, label: label)
        var masked = image
        let inside = mask.data.scalars
        masked.data.withUnsafeMutableBufferPointer { values in
            for index in values.indices where inside[index] == 0 { values[index] = 0 }
        }
        return masked
    }

    /// A brain mask for a whole-head T1-weighted scan, by thresholding and mathematical
    /// morphology:
    ///
    /// 1. threshold (`options.threshold`, default: the lower three-class Otsu cut over the
    ///    head), separating brain tissue from CSF, bone and air;
    /// 2. erosion by `erosionRadius` mm, which cuts thin bridges to scalp, eyes and neck;
    /// 3. the largest 6-connected component: the brain's core;
    /// 4. dilation by `dilationRadius` mm, within the thresholded mask by default, keeping the
    ///    component that holds the core;
    /// 5. closing by `closingRadius` mm, which seals sulci and the fissure at the surface;
    /// 6. hole filling: ventricles and the sealed sulcal depths.
    ///
    /// A simple, fast substitute for surface-model methods (FSL BET) or atlas-based ones
    /// (ROBEX, HD-BET): it assumes T1 contrast (brain brighter than CSF and bone) and a dark
    /// gap of CSF and skull around most of the brain.
    ///
    /// - Parameters:
    ///   - t1: a T1-weighted whole-head volume `[X, Y, Z]`, finite; its voxel sizes (from the
    ///     affine) turn the radii into voxels, so anisotropic grids get the same millimetres.
    ///   - label: names the scan in errors (its path, or e.g. "T1").
    /// - Returns: the mask on `t1`'s grid: 1 inside the brain, 0 outside (Float32).
    /// - Throws: `.invalidOption` for bad options, `.unsupportedVolume` for a degenerate
    ///   affine, `.nonFiniteVoxels` for NaN or infinite voxels, `.noForeground` for a
    ///   constant image or when nothing is left after the threshold or the erosion.
    public static func extractBrain(_ t1: Volume, options: BrainExtractionOptions = BrainExtractionOptions(),
                                    label: String = "T1") throws(PreprocessingError) -> Volume {
        try options.validate()
        try InputValidation.requireVoxelSizes(t1, label: label)
        try InputValidation.requireFinite(t1, label: label)
        let threshold = try brainThreshold(t1, options: options, label: label)
        let grid = Grid(t1)
        let tissue = BinaryMask(grid: grid, voxels: t1.data.scalars.map { Double($0) > threshold })
        guard tissue.voxels.contains(true) else {
            throw .noForeground(path: label, reason: "no voxel above the brain threshold \(String(format: "%.4g", threshold))")
        }
        let core = Morphology.largestComponent(Morphology.erode(tissue, radius: options.erosionRadius))
        guard let coreVoxel = core.voxels.firstIndex(of: true) else {
            throw .noForeground(path: label, reason: "nothing is left of the \(tissue.count) voxels above \(String(format: "%.4g", threshold)) after a \(options.erosionRadius) mm erosion; try a smaller erosion radius or a lower threshold")
        }
        var brain = Morphology.dilate(core, radius: options.dilationRadius)
        if options.dilateWithinThreshold {
            for index in brain.voxels.indices where !tissue.voxels[index] { brain.voxels[index] = false }
            // The core is connected and lies in the thresholded mask, so one component holds it.
            let components = Morphology.components(brain)
            let coreLabel = components.labels[coreVoxel]
            brain.voxels = components.labels.map { $0 == coreLabel }
        }
        if options.closingRadius > 0 { brain = Morphology.close(brain, radius: options.closingRadius) }
        if options.fillHoles { brain = Morphology.fillHoles(brain) }
        return brain.volume
    }

    /// The head (or, for a skull-stripped image, the brain): voxels above BET's robust
    /// background threshold `p2 + headFraction · (p98 − p2)`, the largest 6-connected
    /// component, holes filled. What intensity statistics are taken over when the skull
    /// was not stripped.
    /// - Throws: `.nonFiniteVoxels`, `.noForeground` for a constant image.
    public static func headMask(_ image: Volume, options: BrainExtractionOptions = BrainExtractionOptions(),
                                label: String = "image") throws(PreprocessingError) -> Volume {
        try options.validate()
        try InputValidation.requireFinite(image, label: label)
        var values = image.data.scalars
        guard let low = values.min(), let high = values.max(), high > low else {
            throw .noForeground(path: label, reason: "the image is constant")
        }
        let range = Percentiles.of(&values, [2, 98])
        let threshold = range[0] + options.headFraction * (range[1] - range[0])
        let above = BinaryMask(grid: Grid(image), voxels: image.data.scalars.map { Double($0) > threshold })
        guard above.voxels.contains(true) else {
            throw .noForeground(path: label, reason: "no voxel above the background threshold \(String(format: "%.4g", threshold))")
        }
        return Morphology.fillHoles(Morphology.largestComponent(above)).volume
    }

    /// The intensity above which voxels are taken as brain tissue (step 1 of `extractBrain`).
    /// - Throws: `.noForeground` for a constant image or an empty head.
    static func brainThreshold(_ t1: Volume, options: BrainExtractionOptions, label: String) throws(PreprocessingError) -> Double {
        var values = t1.data.scalars
        guard let low = values.min(), let high = values.max() else {
            throw .unsupportedVolume(path: label, reason: "the image has no voxels (shape \(t1.shape))")
        }
        guard high > low else { throw .noForeground(path: label, reason: "the image is constant (every voxel is \(low))") }
        let range = Percentiles.of(&values, [2, 98])
        let (p2, p98) = (range[0], range[1])
        switch options.threshold {
        case let .robustRangeFraction(f): return p2 + f * (p98 - p2)
        case .otsu, .otsuThreeClass: break
        }
        let headThreshold = p2 + options.headFraction * (p98 - p2)
        var head = t1.data.scalars.filter { Double($0) > headThreshold }
        guard !head.isEmpty else {
            throw .noForeground(path: label, reason: "no voxel above the head threshold \(String(format: "%.4g", headThreshold))")
        }
        // The 99.9th percentile, not the maximum, tops the histogram: a few hot voxels
        // (vessels, artefacts) would otherwise squeeze the tissues into a few bins.
        let top = Percentiles.of(&head, [99.9])[0]
        guard top > headThreshold else { return headThreshold }
        let histogram = Otsu(head, low: headThreshold, high: top, bins: options.histogramBins)
        return options.threshold == .otsu ? histogram.twoClassThreshold : histogram.threeClassThresholds.lower
    }
}
