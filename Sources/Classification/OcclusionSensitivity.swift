import Foundation
import NeuralNet
import TensorCore
import VolumeIO

/// Occlusion sensitivity (Zeiler & Fergus 2014): how much a class's probability falls when a
/// cube of the input is blanked, for every cube position of a grid covering the volume.
public enum OcclusionSensitivity {
    /// Cube starts along an axis of `n` voxels: `0, s, 2s, …` while the cube fits, then one
    /// ending at the last voxel if those leave voxels uncovered (`0` alone when the cube is
    /// at least `n` long; it is then clipped to the volume).
    public static func starts(extent n: Int, cube: Int, stride: Int) -> [Int] {
        guard n > cube else { return [0] }
        var starts = Array(Swift.stride(from: 0, through: n - cube, by: stride))
        if let last = starts.last, last + cube < n { starts.append(n - cube) }
        return starts
    }

    /// The occlusion map of one scan.
    ///
    /// ```
    /// drop(q)  = p_target(x) − p_target(x with cube q set to fill)        (probability units)
    /// map(v)   = mean of drop(q) over the cube positions q covering voxel v
    /// ```
    /// Positive values mark voxels whose content supports the target class.
    /// - Parameters:
    ///   - volume: the network's input for one scan, `[1, 1, X, Y, Z]`.
    ///   - target: the class followed (a column of the probabilities).
    ///   - settings: cube edge, stride and fill value (`batchSize` occluded copies per call).
    ///   - shouldStop: polled between batches; true ends the computation with `.interrupted`.
    ///   - probabilities: class probabilities `[B, C]` of inputs `[B, 1, X, Y, Z]`.
    /// - Returns: the map, `[X, Y, Z]`.
    public static func map(_ volume: Tensor, target: Int, settings: ExplanationSettings, shouldStop: () -> Bool = { false },
                           probabilities: (Tensor) throws -> Tensor) throws(ClassificationError) -> Tensor {
        try settings.validate()
        guard volume.rank == 5, volume.shape[0] == 1, volume.shape[1] == 1, volume.count > 0 else {
            throw .invalidOption("occlusion needs one single-channel volume [1, 1, X, Y, Z], got \(volume.shape)")
        }
        let shape = Triple(volume.shape[2], volume.shape[3], volume.shape[4])
        let cube = settings.occlusionCube
        let axes = shape.array.map { starts(extent: $0, cube: cube, stride: settings.stride) }
        var positions: [(Int, Int, Int)] = []
        for x in axes[0] { for y in axes[1] { for z in axes[2] { positions.append((x, y, z)) } } }
        func evaluate(_ batch: Tensor) throws(ClassificationError) -> [Float] {
            let p: Tensor
            do { p = try probabilities(batch) } catch { throw .io("occlusion forward pass: \(error)") }
            guard p.rank == 2, p.shape[0] == batch.shape[0], target >= 0, target < p.shape[1] else {
                throw .invalidOption("occlusion: probabilities of shape \(p.shape) for \(batch.shape[0]) inputs and class \(target)")
            }
            return (0..<p.shape[0]).map { p.scalars[$0 * p.shape[1] + target] }
        }
        let intact = try evaluate(volume)[0]
        let fill = Float(settings.occlusionFill)
        let (ny, nz) = (shape.h, shape.w)
        func cubeRanges(_ q: (Int, Int, Int)) -> (Range<Int>, Range<Int>, Range<Int>) {
            (q.0..<min(shape.d, q.0 + cube), q.1..<min(ny, q.1 + cube), q.2..<min(nz, q.2 + cube))
        }
        var sums = [Double](repeating: 0, count: shape.product)
        var covers = [Int](repeating: 0, count: shape.product)
        for first in Swift.stride(from: 0, to: positions.count, by: settings.batchSize) {
            if shouldStop() { throw .interrupted }
            let batch = Array(positions[first..<min(positions.count, first + settings.batchSize)])
            var scalars: [Float] = []
            scalars.reserveCapacity(batch.count * shape.product)
            for q in batch {
                let start = scalars.count
                scalars += volume.scalars
                let (xs, ys, zs) = cubeRanges(q)
                for x in xs { for y in ys { for z in zs { scalars[start + (x * ny + y) * nz + z] = fill } } }
            }
            let occluded: Tensor
            do { occluded = try Tensor(shape: [batch.count, 1] + shape.array, scalars: scalars) } catch { throw .io("\(error)") }
            for (q, p) in zip(batch, try evaluate(occluded)) {
                let drop = Double(intact) - Double(p)
                let (xs, ys, zs) = cubeRanges(q)
                for x in xs { for y in ys { for z in zs {
                    let v = (x * ny + y) * nz + z
                    sums[v] += drop
                    covers[v] += 1
                } } }
            }
        }
        // Every voxel is covered (see `starts`).
        return Tensor(uninitializedShape: shape.array) { out in
            for v in 0..<shape.product { out[v] = Float(sums[v] / Double(max(1, covers[v]))) }
        }
    }
}

/// Mean occlusion maps per class of a trained head, over correctly classified validation scans.
struct OcclusionMaps {
    struct ClassMap {
        var classIndex: Int
        /// `[X, Y, Z]`, probability units.
        var map: Tensor
        var scans: Int
    }

    /// Classes with at least one correctly classified scan, in class order.
    var maps: [ClassMap]
    /// Scans averaged per class (0 for a class without a correctly classified scan).
    var scansPerClass: [Int]
    /// The grid of the first scan averaged.
    var affine: Affine?
    var notes: [String]

    /// - Parameters:
    ///   - validation: the validation scans, normalised as the network was trained;
    ///   - probabilities: the head's probabilities of those scans `[n, k]`, which decide which
    ///     are correctly classified;
    ///   - progress: (stage, scans done, scans in all).
    static func compute(_ head: TrainedHead, validation: VolumeScans, probabilities: Tensor, classNames: [String],
                        settings: ExplanationSettings, progress: (String, Int, Int) -> Void,
                        shouldStop: () -> Bool) throws(ClassificationError) -> OcclusionMaps {
        let predicted = ClassifyJob.argmax(probabilities)
        let chosen = classNames.indices.map { c in
            Array(validation.scans.indices.filter { validation.scans[$0].label == c && predicted[$0] == c }.prefix(settings.maxScansPerClass))
        }
        let total = chosen.reduce(0) { $0 + $1.count }
        var result = OcclusionMaps(maps: [], scansPerClass: chosen.map(\.count), affine: nil, notes: [])
        var done = 0
        var none: Augmenter?
        var mixedGrids = false
        for (c, rows) in chosen.enumerated() {
            guard !rows.isEmpty else {
                result.notes.append("no validation scan of \(classNames[c]) was classified correctly: no occlusion map for \(classNames[c])")
                continue
            }
            var sum = [Double](repeating: 0, count: validation.shape.product)
            for row in rows {
                let affine = try Self.affine(validation.scans[row])
                if let first = result.affine {
                    if !mixedGrids, !VoxelLayout.sameGrid(first, affine) {
                        mixedGrids = true
                        result.notes.append("occlusion maps average scans with different affines voxel by voxel (as the network sees them); they are written on the first scan's grid")
                    }
                } else {
                    result.affine = affine
                }
                let volume = try validation.batch([row], augmentation: &none)
                let map = try OcclusionSensitivity.map(volume, target: c, settings: settings, shouldStop: shouldStop) { x in
                    try Softmax.probabilities(try head.network.forward(x, mode: .inference))
                }
                for v in sum.indices { sum[v] += Double(map.scalars[v]) }
                done += 1
                progress("occlusion maps", done, total)
            }
            let mean = Tensor(uninitializedShape: validation.shape.array) { out in
                for v in sum.indices { out[v] = Float(sum[v] / Double(rows.count)) }
            }
            result.maps.append(ClassMap(classIndex: c, map: mean, scans: rows.count))
        }
        return result
    }

    private static func affine(_ scan: LabelledScan) throws(ClassificationError) -> Affine {
        do { return try VolumeReader.readHeader(scan.image).affine } catch { throw .badScan("\(scan.image.path): \(error)") }
    }
}
