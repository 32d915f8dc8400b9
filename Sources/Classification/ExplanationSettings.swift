import Foundation

/// What `adwb classify --explain` computes: occlusion-sensitivity maps for the CNN head on
/// whole volumes, the weight vector of a linear SVM mapped back into the scans' space.
///
/// Occlusion costs one forward pass of the network per cube position and scan: with cube
/// edge `c` and stride `s`, a volume of `n³` voxels needs `(⌈(n − c)/s⌉ + 1)³` passes, e.g.
/// 216 for 96³ with the defaults (`c = s = 16`), 1,331 with `s = c/2` (8): the stride
/// defaults to the cube's edge (non-overlapping cubes), halving it makes the map smoother at
/// six times the cost.
public struct ExplanationSettings: Codable, Equatable, Sendable {
    /// Edge of the blanked cube, in voxels of the scans' grid.
    public var occlusionCube = 16
    /// Step between cube positions, in voxels (1 to the cube's edge); nil for the cube's
    /// edge. The last position along an axis is moved back to end at the volume's edge, so
    /// every voxel is covered and every cube lies whole inside the volume.
    public var occlusionStride: Int?
    /// The value the cube's voxels are set to, in the network's normalised intensities (0 is
    /// the brain's mean intensity for z-scored scans).
    public var occlusionFill = 0.0
    /// Correctly classified validation scans averaged per class, at most (the first ones in
    /// `validation.tsv` order); bounds the cost.
    public var maxScansPerClass = 8
    /// Occluded copies of a scan per forward pass.
    public var batchSize = 4

    public init() {}

    enum CodingKeys: String, CodingKey {
        case occlusionCube = "occlusion_cube", occlusionStride = "occlusion_stride", occlusionFill = "occlusion_fill"
        case maxScansPerClass = "max_scans_per_class", batchSize = "batch_size"
    }

    /// The stride in effect.
    public var stride: Int { occlusionStride ?? occlusionCube }

    /// Checks every value before anything is read.
    public func validate() throws(ClassificationError) {
        guard (1...4096).contains(occlusionCube) else { throw .invalidOption("occlusion cube \(occlusionCube): 1 to 4096 voxels") }
        guard (1...occlusionCube).contains(stride) else {
            throw .invalidOption("occlusion stride \(stride): 1 to the cube's edge (\(occlusionCube)), so that every voxel is covered")
        }
        guard occlusionFill.isFinite else { throw .invalidOption("occlusion fill \(occlusionFill): must be a finite number") }
        guard (1...100_000).contains(maxScansPerClass) else { throw .invalidOption("explanation scans per class \(maxScansPerClass): 1 to 100000") }
        guard (1...4096).contains(batchSize) else { throw .invalidOption("explanation batch size \(batchSize): 1 to 4096") }
    }
}

/// The explanation maps of a run, as `metrics.json` records them.
public struct ExplanationRecord: Codable, Equatable, Sendable {
    /// One file written into the output folder.
    public struct File: Codable, Equatable, Sendable {
        public var file: String
        /// `occlusion` (a class's mean occlusion sensitivity), `svm_weights` (a linear SVM's
        /// weights in the scans' space) or `svm_weights_table` (its weight per feature).
        public var kind: String
        /// The class: whose probability the occlusion map follows, or the class that positive
        /// SVM weights argue for.
        public var className: String?
        /// Occlusion maps: the scans averaged.
        public var scans: Int?
        /// What a voxel's value is, in words.
        public var values: String

        enum CodingKeys: String, CodingKey { case file, kind, values, className = "class", scans }
    }

    /// The settings used, the stride resolved.
    public var settings: ExplanationSettings
    public var files: [File]
    /// Occlusion maps: correctly classified validation scans averaged, per class (0 when none).
    public var scansPerClass: [String: Int]?
    /// Why a map was not written, and anything else worth knowing about them.
    public var notes: [String]

    enum CodingKeys: String, CodingKey { case settings, files, notes, scansPerClass = "scans_per_class" }
}
