import Cohort
import Foundation
import Preprocessing
import TensorCore
import VolumeIO

/// Affine registration and resampling, on the problem reports/bench_registration_peers.py
/// gives SimpleITK and ANTsPy: the MNI template moved by a fixed affine (rotations 10°, −8°,
/// 12°, scales 1.08, 0.94, 1.05, shift (8, −12, 6) mm about (0, −18, 18)), registered back.
extension Bench {
    /// The benchmark's true transform, template world → scan world (RAS mm).
    static var registrationTruth: Affine {
        let degrees = [10.0, -8, 12].map { $0 * .pi / 180 }
        let (cx, sx, cy, sy, cz, sz) = (cos(degrees[0]), sin(degrees[0]), cos(degrees[1]), sin(degrees[1]), cos(degrees[2]), sin(degrees[2]))
        let rotation = Affine(rows: [cz, -sz, 0, 0], [sz, cz, 0, 0], [0, 0, 1, 0])
            * Affine(rows: [cy, 0, sy, 0], [0, 1, 0, 0], [-sy, 0, cy, 0])
            * Affine(rows: [1, 0, 0, 0], [0, cx, -sx, 0], [0, sx, cx, 0])
        let linear = rotation * Affine.scaling([1.08, 0.94, 1.05])
        let centre = [0.0, -18, 18], shift = [8.0, -12, 6]
        var truth = linear
        let moved = linear.apply(centre)
        for r in 0..<3 { truth[r, 3] = centre[r] - moved[r] + shift[r] }
        return truth
    }

    /// Registers `template` moved by the benchmark's transform back onto itself; facts: the
    /// mean and largest error over the mask (mm), the final correlation and the cost evaluations.
    static func registrationKernel(_ name: String, load: @escaping () throws -> (template: Volume, mask: Volume)) -> Kernel {
        Kernel(name: name, gflop: nil, reporting: {
            let (template, mask) = try load()
            let truth = registrationTruth
            let moving = try Resampler.resample(template, onto: Grid(template), transform: try truth.inverse(), interpolation: .linear)
            var result: RegistrationResult?
            return ({ result = try AffineRegistration().register(moving, to: template, templateMask: mask) }, {
                guard let result else { return nil }
                let error = AffineRegistration.displacement(result.transform, truth, over: mask)
                return ["mean_error_mm": error.mean, "max_error_mm": error.max, "ncc": result.correlation,
                        "evaluations": Double(result.levels.reduce(0) { $0 + $1.evaluations })]
            })
        })
    }

    static var registrationKernels: [Kernel] {
        func shared(_ path: String) throws -> Volume {
            let root = mniTemplate.deletingLastPathComponent().deletingLastPathComponent()
            let url = root.appendingPathComponent(path)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw BenchSkipped(reason: "\(url.path) not found (set ADWB_SHARED_DATA to the shared data folder)")
            }
            return try VolumeReader.read(url)
        }
        return [
            registrationKernel("register_affine_mni_1mm") {
                (try VolumeReader.read(try requireTemplate()),
                 try shared("mni-icbm152-2009a-sym/derived/mni_icbm152_brain_mask_sym_09a_1mm_derived.nii.gz"))
            },
            registrationKernel("register_affine_mni_2mm") {
                (try shared("mni-icbm152-2009a-sym/derived/mni_icbm152_t1_sym_09a_2mm_derived.nii.gz"),
                 try shared("mni-icbm152-2009a-sym/derived/mni_icbm152_brain_mask_sym_09a_2mm_derived.nii.gz"))
            },
            registrationKernel("register_affine_synthetic_96") {
                let template = try SyntheticCohort.template(SyntheticCohortOptions())
                return (template.t1, template.mask)
            },
            Kernel(name: "resample_linear_mni_1mm", gflop: nil) {
                let template = try VolumeReader.read(try requireTemplate())
                let inverse = try registrationTruth.inverse()
                return { _ = try Resampler.resample(template, onto: Grid(template), transform: inverse, interpolation: .linear) }
            },
        ]
    }
}
