import Foundation
import TensorCore

/// How each scan's intensities are brought to a common scale before patches are cut.
public enum IntensityNormalization: String, Sendable, Codable, CaseIterable {
    /// `(v − mean) / std` with the mean and standard deviation taken over the brain mask.
    case zscore
    /// Clip to the mask's `[p_low, p_high]` percentiles, then scale that range to `[0, 1]`.
    case minmax
    /// The stored values (after the file's scaling), unchanged.
    case none
}

/// Random transformations applied to each patch as it is cut; all off by default.
public struct PatchAugmentation: Sendable, Codable, Equatable {
    /// Probability of mirroring a patch along each of its axes (independently).
    public var flipProbability: Double = 0
    /// Largest translation of the sampling window, in voxels per axis. A shifted window whose
    /// centre would leave the mask is not shifted, so every patch stays centred in the mask.
    public var maxShift: Int = 0
    /// Multiplies the patch by `1 + U(−s, s)`.
    public var intensityScale: Double = 0
    /// Adds `U(−o, o)` to the patch (in normalised units).
    public var intensityOffset: Double = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case flipProbability = "flip_probability", maxShift = "max_shift"
        case intensityScale = "intensity_scale", intensityOffset = "intensity_offset"
    }

    public var isIdentity: Bool { flipProbability == 0 && maxShift == 0 && intensityScale == 0 && intensityOffset == 0 }
}

/// What patches are cut and how (everything that changes the patches themselves).
///
/// A patch of size `[d, h, w]` spans `d` voxels along the volume's first array axis (`i`),
/// `h` along `j` and `w` along `k`: the same axes as `Volume.data [X, Y, Z]`, so a model
/// trained on patches sees whole volumes (`[1, 1, X, Y, Z]`) the same way. A size of 1 along
/// an axis gives 2-D slices.
public struct PatchSamplingOptions: Sendable, Codable, Equatable {
    /// Patch extent `[d, h, w]` in voxels.
    public var size: [Int] = [5, 5, 5]
    public var normalization: IntensityNormalization = .zscore
    /// The percentiles (0-100) that `minmax` maps to 0 and 1, taken over the mask.
    public var clipPercentiles: [Double] = [0.5, 99.5]
    /// Without a `mask_path`, voxels above this fraction of the scan's 99th percentile are
    /// the foreground that patches are centred in.
    public var foregroundThreshold: Double = 0.1
    /// Sets voxels outside the mask to 0 after normalisation (the mean for `zscore`).
    public var zeroOutsideMask: Bool = false
    /// Patches drawn per epoch, shared equally by the scans (each gets ⌊P/S⌋ or ⌈P/S⌉).
    public var patchesPerEpoch: Int = 100_000
    /// Draw new patches every epoch (`true`) or the same patch set every epoch (`false`,
    /// only their order changes), as when training on a fixed sample of patches.
    public var resampleEachEpoch: Bool = true
    /// Patches from this many scan visits are shuffled together before minibatches are cut:
    /// more mixes minibatches better and costs memory (see `blockMegabytes`).
    public var scansPerBlock: Int = 8
    /// Memory for one shuffled block of patches, in MB (10⁶ bytes). A scan visit is capped at
    /// `blockMegabytes / scansPerBlock` worth of patches; larger quotas use several visits.
    public var blockMegabytes: Int = 32
    public var augmentation = PatchAugmentation()

    public init() {}

    /// Configuration files and `config.json` use snake_case names.
    enum CodingKeys: String, CodingKey {
        case size, normalization, augmentation
        case clipPercentiles = "clip_percentiles", foregroundThreshold = "foreground_threshold"
        case zeroOutsideMask = "zero_outside_mask", patchesPerEpoch = "patches_per_epoch"
        case resampleEachEpoch = "resample_each_epoch", scansPerBlock = "scans_per_block", blockMegabytes = "block_megabytes"
    }

    /// Whether scans prepared for `other` (normalised, masked, cropped for its patch size)
    /// serve these options too.
    public func preparesScans(like other: PatchSamplingOptions) -> Bool {
        size == other.size && normalization == other.normalization && clipPercentiles == other.clipPercentiles
            && foregroundThreshold == other.foregroundThreshold && zeroOutsideMask == other.zeroOutsideMask
    }

    /// `size` as a `Triple`.
    public var extent: Triple { Triple(size[0], size[1], size[2]) }

    /// Values in one patch.
    public var patchVolume: Int { size.reduce(1, *) }

    /// Checks every field, naming the first bad one.
    public func validate() throws(PatchError) {
        func bad(_ name: String, _ value: Any, _ reason: String) -> PatchError { .invalidOption(name: name, value: "\(value)", reason: reason) }
        guard size.count == 3, size.allSatisfy({ $0 >= 1 && $0 <= 1024 }) else { throw bad("patch size", size, "needs three extents from 1 to 1024") }
        guard clipPercentiles.count == 2, clipPercentiles[0] >= 0, clipPercentiles[1] <= 100, clipPercentiles[0] < clipPercentiles[1] else {
            throw bad("clip percentiles", clipPercentiles, "needs two percentiles 0 <= low < high <= 100")
        }
        guard foregroundThreshold.isFinite, foregroundThreshold >= 0, foregroundThreshold < 1 else {
            throw bad("foreground threshold", foregroundThreshold, "must be in [0, 1)")
        }
        guard patchesPerEpoch >= 1, patchesPerEpoch <= 1_000_000_000 else { throw bad("patches per epoch", patchesPerEpoch, "must be 1 to 10^9") }
        guard scansPerBlock >= 1, scansPerBlock <= 100_000 else { throw bad("scans per block", scansPerBlock, "must be 1 to 100000") }
        guard blockMegabytes >= 1, blockMegabytes <= 1_000_000 else { throw bad("block megabytes", blockMegabytes, "must be 1 to 10^6") }
        let a = augmentation
        guard a.flipProbability >= 0, a.flipProbability <= 1 else { throw bad("flip probability", a.flipProbability, "must be in [0, 1]") }
        guard a.maxShift >= 0, a.maxShift <= 64 else { throw bad("max shift", a.maxShift, "must be 0 to 64 voxels") }
        guard a.intensityScale >= 0, a.intensityScale < 1 else { throw bad("intensity scale", a.intensityScale, "must be in [0, 1)") }
        guard a.intensityOffset >= 0, a.intensityOffset.isFinite else { throw bad("intensity offset", a.intensityOffset, "must be >= 0") }
    }
}

/// Why patches could not be drawn. Each case names the file or option to fix.
public enum PatchError: Error, Equatable, CustomStringConvertible {
    /// A scan or its mask could not be used; `line` is its manifest line when known.
    case badScan(path: String, line: Int?, reason: String)
    case invalidOption(name: String, value: String, reason: String)

    public var description: String {
        switch self {
        case let .badScan(path, line, reason):
            return "\(line.map { "manifest line \($0): " } ?? "")\(path): \(reason)"
        case let .invalidOption(name, value, reason): return "\(name) = \(value): \(reason)"
        }
    }
}
