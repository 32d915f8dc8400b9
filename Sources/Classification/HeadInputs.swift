import Foundation
import Patches
import TensorCore
import VolumeIO

/// Where a head's inputs come from: rows of a feature matrix or whole normalised volumes
/// read from disk batch by batch (never the whole cohort in memory).
protocol HeadInputs: Sendable {
    var count: Int { get }
    /// One sample's shape, without the batch axis.
    var sampleShape: [Int] { get }
    /// Samples `indices` stacked `[B, …]`; augmented when `augmentation` is given.
    func batch(_ indices: [Int], augmentation: inout Augmenter?) throws(ClassificationError) -> Tensor
}

/// Rows of a standardised feature matrix `[n, d]`.
struct FeatureRows: HeadInputs {
    var values: Tensor
    var count: Int { values.shape[0] }
    var sampleShape: [Int] { [values.shape[1]] }

    func batch(_ indices: [Int], augmentation: inout Augmenter?) throws(ClassificationError) -> Tensor {
        do { return try values.gatheringBatch(indices) } catch { throw .io("\(error)") }
    }
}

/// Scans normalised as the pretraining run normalised its patches, `[1, X, Y, Z]` each; all
/// on one grid (checked from the headers before training).
struct VolumeScans: HeadInputs {
    var scans: [LabelledScan]
    var options: PatchSamplingOptions
    var shape: Triple
    var count: Int { scans.count }
    var sampleShape: [Int] { [1] + shape.array }

    /// Checks every scan's header (readable, 3-D, mask extents) and that all share `shape`.
    init(_ scans: [LabelledScan], options: PatchSamplingOptions, set: String, shape expected: Triple?) throws(ClassificationError) {
        var shape = expected
        for scan in scans {
            let found: Triple
            do { found = try NormalisedScan.checkHeaders(Self.source(scan)) } catch { throw .badScan("\(set): \(error)") }
            if let shape, shape != found {
                throw .badScan("\(scan.location(set)): \(scan.image.path) is \(found.array), the training scans \(shape.array); whole-volume training needs scans on one grid (resample or register them first)")
            }
            shape = found
        }
        guard let shape else { throw .invalidOption("\(set) has no scans") }
        (self.scans, self.options, self.shape) = (scans, options, shape)
    }

    static func source(_ scan: LabelledScan) -> ScanSource {
        ScanSource(name: "\(scan.participantID)/\(scan.sessionID)", image: scan.image, mask: scan.mask, line: scan.manifestLine)
    }

    func batch(_ indices: [Int], augmentation: inout Augmenter?) throws(ClassificationError) -> Tensor {
        var scalars: [Float] = []
        scalars.reserveCapacity(indices.count * shape.product)
        for i in indices {
            let scan: NormalisedScan
            do { scan = try NormalisedScan.load(Self.source(scans[i]), options: options) } catch { throw .badScan("\(error)") }
            scalars += augmentation?.apply(scan.values, shape: shape) ?? scan.values
        }
        do { return try Tensor(shape: [indices.count] + sampleShape, scalars: scalars) } catch { throw .io("\(error)") }
    }
}

/// Random training-time changes of a volume `[X, Y, Z]` (X slowest): a flip of the first
/// (left–right in RAS) axis, an integer shift per axis with zeros shifted in, and a global
/// intensity scale.
struct Augmenter {
    var flipProbability: Double
    var maxShift: Int
    var intensityScale: Double
    var generator: Xoshiro256StarStar

    mutating func apply(_ values: [Float], shape: Triple) -> [Float] {
        let flip = generator.nextUnitDouble() < flipProbability
        let shift = (0..<3).map { _ in maxShift == 0 ? 0 : generator.nextIndex(below: 2 * maxShift + 1) - maxShift }
        let scale = Float(1 + intensityScale * (2 * generator.nextUnitDouble() - 1))
        var out = [Float](repeating: 0, count: values.count)
        let (nx, ny, nz) = (shape.d, shape.h, shape.w)
        for x in 0..<nx {
            let sx = (flip ? nx - 1 - x : x) - shift[0]
            guard sx >= 0, sx < nx else { continue }
            for y in 0..<ny {
                let sy = y - shift[1]
                guard sy >= 0, sy < ny else { continue }
                for z in 0..<nz {
                    let sz = z - shift[2]
                    guard sz >= 0, sz < nz else { continue }
                    out[(x * ny + y) * nz + z] = scale * values[(sx * ny + sy) * nz + sz]
                }
            }
        }
        return out
    }
}
