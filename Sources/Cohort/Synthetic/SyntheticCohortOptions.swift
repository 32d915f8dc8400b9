import Foundation

/// The recipe of the built-in synthetic cohort (`adwb synth`). Every field is recorded in
/// the cohort's `synth.json`; the same recipe and seed give byte-identical files.
public struct SyntheticCohortOptions: Sendable, Equatable, Codable {
    /// Participants to generate.
    public var participants: Int = 60
    public var seed: UInt64 = 0
    /// Disease effect size: at 1, AD participants have on average 25% smaller hippocampi,
    /// 60% larger ventricles, 10% thinner cortex (35% more around the medial temporal lobes)
    /// than CN participants of the same age; MCI half of that. 0 makes the classes identical
    /// in anatomy; larger values make classification easier.
    public var effect: Double = 1
    /// Shares of CN, MCI and AD among participants (normalised; counts are exact, largest
    /// remainder first).
    public var proportions: [Double] = [0.5, 0.3, 0.2]
    /// Share of participants (of every class alike) whose diagnosis is left empty: scans for
    /// unsupervised pretraining only. Their true condition is kept in `synth_condition`.
    public var unlabeledFraction: Double = 0.2
    /// Share of participants with a second session 12 months later (`ses-M012`).
    public var secondSessionFraction: Double = 0.25
    /// Grid size in voxels `[X, Y, Z]`. The field of view (shape x voxel size) must be at
    /// least 185 mm, which holds every brain; below about 215 mm the scalp of larger heads is
    /// cut at the grid's edge, as in cropped real scans. Memory: about 17 bytes per voxel
    /// while a scan is rendered (15 MB at 96^3).
    public var shape: [Int] = [96, 96, 96]
    /// Isotropic voxel size (mm).
    public var voxelSize: Double = 2
    /// When set, about a third of the scans get another voxel size (same field of view) and
    /// about a third are stored with flipped axes (LAS or LPS), as mixed real cohorts are.
    public var varyGeometry: Bool = false
    /// Noise standard deviation relative to white matter (Rician, as magnitude images are).
    public var noise: Double = 0.03
    /// Largest typical relative deviation of the smooth multiplicative bias field.
    public var biasField: Double = 0.15
    /// Acquisition sites; each has its own intensity scale, contrast and noise.
    public var sites: Int = 2

    public init() {}

    /// Checks ranges; the error names the option.
    public func validate() throws(CohortError) {
        func fail(_ name: String, _ value: Any, _ reason: String) -> CohortError {
            .invalidParameter(name: name, value: "\(value)", reason: reason)
        }
        guard participants >= 1, participants <= 100_000 else { throw fail("participants", participants, "must be 1...100000") }
        guard effect.isFinite, effect >= 0, effect <= 3 else { throw fail("effect", effect, "must be in 0...3") }
        guard proportions.count == 3, proportions.allSatisfy({ $0.isFinite && $0 >= 0 }),
              proportions.reduce(0, +) > 0, proportions.reduce(0, +).isFinite else {
            throw fail("proportions", proportions, "three non-negative shares for CN, MCI, AD, not all zero")
        }
        guard (0...1).contains(unlabeledFraction) else { throw fail("unlabeled fraction", unlabeledFraction, "must be in 0...1") }
        guard (0...1).contains(secondSessionFraction) else { throw fail("second-session fraction", secondSessionFraction, "must be in 0...1") }
        guard shape.count == 3, shape.allSatisfy({ (16...512).contains($0) }) else { throw fail("shape", shape, "three sizes in 16...512") }
        guard voxelSize.isFinite, (0.5...8).contains(voxelSize) else { throw fail("voxel size", voxelSize, "must be in 0.5...8 mm") }
        let fieldOfView = shape.map { Double($0) * voxelSize }
        guard fieldOfView.allSatisfy({ $0 >= 185 }) else {
            throw fail("shape x voxel size", fieldOfView, "the field of view must be at least 185 mm on every axis to hold the largest brain (the scalp needs about 215 mm)")
        }
        guard noise.isFinite, (0...0.5).contains(noise) else { throw fail("noise", noise, "must be in 0...0.5") }
        guard biasField.isFinite, (0...0.5).contains(biasField) else { throw fail("bias field", biasField, "must be in 0...0.5") }
        guard (1...26).contains(sites) else { throw fail("sites", sites, "must be 1...26") }
    }
}
