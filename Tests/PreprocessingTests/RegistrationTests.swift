import Foundation
import Testing
import Cohort
import TensorCore
import VolumeIO
@testable import Preprocessing

/// Mean and largest distance (mm) between where two transforms send the mask's voxels.
func displacement(_ a: Affine, _ b: Affine, over mask: Volume) -> (mean: Double, max: Double) {
    let values = mask.data.scalars
    let (ny, nz) = (mask.shape[1], mask.shape[2])
    var sum = 0.0, largest = 0.0, count = 0
    for index in values.indices where values[index] != 0 {
        let voxel = [Double(index / (ny * nz)), Double((index / nz) % ny), Double(index % nz)]
        let x = mask.affine.apply(voxel)
        let p = a.apply(x), q = b.apply(x)
        let d = ((p[0] - q[0]) * (p[0] - q[0]) + (p[1] - q[1]) * (p[1] - q[1]) + (p[2] - q[2]) * (p[2] - q[2])).squareRoot()
        sum += d
        largest = max(largest, d)
        count += 1
    }
    return (sum / Double(max(count, 1)), largest)
}

@Suite struct SyntheticRegistrationTests {
    @Test func scansOfTheSyntheticCohortRegisterToItsTemplate() throws {
        var options = SyntheticCohortOptions()
        options.participants = 6
        options.seed = 3
        let template = try SyntheticCohort.template(options)
        let participants = try SyntheticCohort.participants(options)
        for participant in participants.prefix(4) {
            let scan = SyntheticCohort.render(participant, session: 0, options: options)
            let start = Date()
            let result = try AffineRegistration().register(scan.t1, to: template.t1, name: participant.id)
            let error = displacement(result.transform, scan.headToWorld, over: template.mask)
            print(participant.id, String(format: "NCC %.4f mean %.3f mm max %.3f mm, %.2f s", result.correlation, error.mean, error.max, Date().timeIntervalSince(start)),
                  result.levels.map { "\($0.model.rawValue)x\($0.shrinkFactor): \($0.iterations)/\($0.evaluations) \(String(format: "%.3f→%.3f", $0.startCorrelation, $0.endCorrelation))" })
            #expect(error.mean < 2, "\(participant.id): mean displacement \(error.mean) mm is not under one 2 mm voxel")
        }
    }
}
