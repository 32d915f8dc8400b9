import Classifiers
import Foundation

/// The back ends `adwb classify` offers.
public enum Backend: String, Codable, CaseIterable, Sendable {
    /// SVM on extracted deep features.
    case svm
    /// FastICA then SVM: on extracted features, or on voxels (Yang et al. 2011) with a manifest.
    case icaSVM = "ica-svm"
    /// The pretrained encoder plus a dense head, fine-tuned on whole volumes (CAE or SAE run),
    /// or a dense head on extracted features.
    case cnn
}

/// Settings of the ICA + SVM back end.
public struct ICASettings: Codable, Equatable, Sendable {
    /// Independent components (at most the training scans − 1 on voxels).
    public var components = 20
    /// `parallel` or `deflation`.
    public var algorithm = "parallel"
    /// `logcosh`, `exp` or `cube`.
    public var contrast = "logcosh"
    /// `eigen` or `svd` PCA whitening.
    public var whitening = "eigen"
    public var tolerance = 1e-4
    public var maxIterations = 200
    /// Voxel mode: average `f×f×f` blocks before ICA (1 keeps every voxel).
    public var voxelDownsample = 2
    /// Voxel mode: keep voxels inside the brain mask of at least this fraction of the
    /// training scans.
    public var maskFraction = 0.5

    public init() {}

    enum CodingKeys: String, CodingKey {
        case components, algorithm, contrast, whitening, tolerance
        case maxIterations = "max_iterations", voxelDownsample = "voxel_downsample", maskFraction = "mask_fraction"
    }

    /// Checks every value before anything is read.
    func validate() throws(ClassificationError) {
        do { try FastICA.fromSettings(self, seed: 0).validate() } catch let error as ClassificationError { throw error } catch {
            throw .invalidOption("ICA: \(error)")
        }
        guard (1...64).contains(voxelDownsample) else { throw .invalidOption("voxel downsample \(voxelDownsample): 1 to 64") }
        guard maskFraction.isFinite, (0...1).contains(maskFraction) else { throw .invalidOption("mask fraction \(maskFraction): 0 to 1") }
    }
}

/// One `adwb classify` run.
public struct ClassifyRequest: Sendable {
    public var backend: Backend
    public var task: ClassificationTask
    /// An `adwb extract` output folder (feature back ends) ...
    public var features: URL?
    /// ... or a manifest of scans (voxel ICA, whole-volume CNN).
    public var manifest: URL?
    /// A pretraining run (whole-volume CNN head).
    public var model: URL?
    /// A `split-<i>/` folder.
    public var split: URL
    public var out: URL
    public var svm = SVMSettings()
    public var ica = ICASettings()
    public var cnn = CNNSettings()
    /// Explanation maps (occlusion for the CNN head on volumes, weight maps for a linear
    /// SVM); nil for none.
    public var explanations: ExplanationSettings?
    public var seed: UInt64 = 0
    public var overwrite = false

    public init(backend: Backend, task: ClassificationTask, split: URL, out: URL) {
        (self.backend, self.task, self.split, self.out) = (backend, task, split, out)
    }
}
