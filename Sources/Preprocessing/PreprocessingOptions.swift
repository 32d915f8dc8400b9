import Foundation
import VolumeIO

/// The steps `adwb preprocess` can run. Whatever the order they are given in, they run in
/// this order: reorient → register → skull-strip → bias field → normalise, then the outputs
/// are resampled into template space when the scan was registered.
public enum PreprocessStep: String, Sendable, Codable, CaseIterable, Comparable {
    case reorient
    case register
    case skullstrip
    case biasfield
    case normalise

    public static func < (a: PreprocessStep, b: PreprocessStep) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Where the brain mask comes from.
public enum SkullStripMethod: String, Sendable, Codable, CaseIterable {
    /// The manifest's `mask_path` when the row has one, else the template's brain mask when
    /// there is one and the scan is registered, else the built-in method.
    case auto
    /// The manifest's `mask_path` (an error for rows without one).
    case given
    /// The template's brain mask brought into the scan through the registration.
    case template
    /// `BrainExtraction.extractBrain`: threshold, erosion, largest component, dilation, holes.
    case builtin
}

/// How intensities are put on a common scale, within the brain mask.
public enum NormalisationMethod: String, Sendable, Codable, CaseIterable {
    /// Mean 0, standard deviation 1 inside the mask.
    case zscore
    /// Percentile clipping to [0, 1] inside the mask.
    case minmax
}

/// Everything `PreprocessJob` does to each scan. Recorded in `preprocess.json` and in every
/// scan's sidecar; any change to it gives new cache keys, so a rerun recomputes.
public struct PreprocessingOptions: Sendable, Codable, Equatable {
    /// Stored in running order, so the options encode to the same JSON (and cache keys) in
    /// every process (a `Set` would encode in a per-process hash order).
    private var stepList: [PreprocessStep] = [.reorient, .register, .skullstrip, .normalise]
    public var steps: Set<PreprocessStep> {
        get { Set(stepList) }
        set { stepList = newValue.sorted() }
    }
    public var registration = RegistrationOptions()
    public var skullStrip: SkullStripMethod = .auto
    public var brainExtraction = BrainExtractionOptions()
    public var biasField = BiasFieldCorrection()
    public var normalisation: NormalisationMethod = .zscore
    /// Percentiles (0-100) mapped to 0 and 1 by `minmax`.
    public var clipPercentiles: [Double] = [0.5, 99.5]
    /// How the registered image is resampled into template space (masks and labels always
    /// use nearest neighbour).
    public var interpolation: Interpolation = .linear
    /// The grid of the registered outputs; nil: the template's grid.
    public var outputGrid: Grid?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case stepList = "steps", registration, skullStrip = "skull_strip", brainExtraction = "brain_extraction", biasField = "bias_field",
             normalisation, clipPercentiles = "clip_percentiles", interpolation, outputGrid = "output_grid"
    }

    /// The steps in the order they run.
    public var orderedSteps: [PreprocessStep] { stepList }

    public func validate() throws(PreprocessingError) {
        try registration.validate()
        try brainExtraction.validate()
        try biasField.validate()
        guard clipPercentiles.count == 2, clipPercentiles.allSatisfy({ $0.isFinite && (0...100).contains($0) }),
              clipPercentiles[0] < clipPercentiles[1] else {
            throw .invalidOption(name: "clip percentiles", value: "\(clipPercentiles)", reason: "two increasing percentiles in 0...100")
        }
        if skullStrip == .template, !steps.contains(.register) {
            throw .invalidOption(name: "skull strip", value: "template", reason: "the template's mask reaches the scan through the registration: add the register step")
        }
        if let outputGrid {
            guard outputGrid.shape.allSatisfy({ (1...2048).contains($0) }), outputGrid.affine.isFinite,
                  (try? outputGrid.affine.inverse()) != nil else {
                throw .invalidOption(name: "output grid", value: outputGrid.description, reason: "extents 1...2048 and an invertible affine")
            }
            guard steps.contains(.register) else {
                throw .invalidOption(name: "output grid", value: outputGrid.description, reason: "outputs are put on a grid in template space: add the register step")
            }
        }
    }
}
