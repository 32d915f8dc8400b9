import Foundation
import Testing
import TensorCore
import TestSupport
import VolumeIO
@testable import Patches

// Shared fixtures for the Patches tests: small synthetic scans written to temporary NIfTI
// files, and independent reference implementations (normalisation, numpy percentiles, patch
// cutting) the sampler's output is checked against.

/// A synthetic scan kept in memory beside its files: voxel values `[X, Y, Z]` (k fastest) and
/// the mask written with it (non-zero voxels).
struct Phantom {
    var shape: [Int]
    var values: [Float]
    var mask: [Bool]

    func index(_ x: Int, _ y: Int, _ z: Int) -> Int { (x * shape[1] + y) * shape[2] + z }
    func index(_ voxel: [Int]) -> Int { index(voxel[0], voxel[1], voxel[2]) }
    var voxelCount: Int { shape.reduce(1, *) }
}

/// A brain-like phantom: an ellipsoid "brain" (intensities ~40-140 with a gradient and noise)
/// in dim background noise (0-3). `radiusFraction` scales the ellipsoid's radii relative to the
/// volume: about 0.55 makes the mask touch the volume's faces.
func makePhantom(shape: [Int] = [20, 24, 18], seed: UInt64, radiusFraction: Double = 0.33) -> Phantom {
    var generator = Xoshiro256StarStar(seed: SplitMix64.derive(seed, 77))
    let centre = shape.map { Double($0 - 1) / 2 + Double(generator.nextIndex(below: 3)) - 1 }
    let radii = shape.map { Double($0) * radiusFraction }
    let count = shape.reduce(1, *)
    var values = [Float](repeating: 0, count: count)
    var mask = [Bool](repeating: false, count: count)
    for x in 0..<shape[0] {
        for y in 0..<shape[1] {
            for z in 0..<shape[2] {
                let i = (x * shape[1] + y) * shape[2] + z
                let r = [x, y, z].enumerated().reduce(0.0) { sum, axis in
                    let d = (Double(axis.element) - centre[axis.offset]) / radii[axis.offset]
                    return sum + d * d
                }
                if r <= 1 {
                    mask[i] = true
                    values[i] = 60 + 4 * Float(x) - 1.5 * Float(z) + 30 * generator.nextUnitFloat()
                } else {
                    values[i] = 3 * generator.nextUnitFloat()
                }
            }
        }
    }
    return Phantom(shape: shape, values: values, mask: mask)
}

/// Writes `values` (shape `[X, Y, Z]`) as a NIfTI-1 file.
func writeVolume(_ values: [Float], shape: [Int], to url: URL, datatype: VoxelType = .float32) throws {
    let volume = try Volume(data: Tensor(shape: shape, scalars: values), affine: .scaling([1.2, 1, 1.1], origin: [-10, 4, 2]))
    try VolumeWriter.write(volume, to: url, options: VolumeWriteOptions(datatype: datatype))
}

/// Writes `mask` as an int16 label map whose non-zero labels vary (1, 2 and 7), so only
/// "non-zero" (not "equal to 1") can make it the mask.
func writeMask(_ mask: [Bool], shape: [Int], to url: URL) throws {
    let labels: [Float] = mask.enumerated().map { $0.element ? [1, 2, 7][$0.offset % 3] : 0 }
    try writeVolume(labels, shape: shape, to: url, datatype: .int16)
}

/// A small cohort on disk.
struct PhantomCohort {
    var sources: [ScanSource]
    /// The phantom behind each source (sources may share files and so phantoms).
    var phantoms: [Phantom]
}

/// Writes `distinct` phantoms (scan `i` with a mask when `masks`) and lists `count` sources
/// cycling over them; source `i` has manifest line `i + 2`. Phantom 1 (when there is one) has a
/// mask touching the volume's faces, so the "patch inside the volume" rule matters.
func makeCohort(in directory: URL, count: Int, distinct: Int? = nil, masks: Bool = true, shape: [Int] = [20, 24, 18],
                seed: UInt64 = 1) throws -> PhantomCohort {
    let distinct = min(count, distinct ?? count)
    var phantoms: [Phantom] = []
    var files: [(URL, URL?)] = []
    for i in 0..<distinct {
        let phantom = makePhantom(shape: shape, seed: seed &* 1000 &+ UInt64(i), radiusFraction: i == 1 ? 0.56 : 0.33)
        let image = directory.appendingPathComponent("scan\(i)_T1w.nii")
        try writeVolume(phantom.values, shape: shape, to: image)
        var mask: URL?
        if masks {
            mask = directory.appendingPathComponent("scan\(i)_mask.nii.gz")
            try writeMask(phantom.mask, shape: shape, to: mask!)
        }
        phantoms.append(phantom)
        files.append((image, mask))
    }
    var sources: [ScanSource] = []
    var used: [Phantom] = []
    for i in 0..<count {
        let (image, mask) = files[i % distinct]
        sources.append(ScanSource(name: "sub-\(i)", image: image, mask: mask, line: i + 2))
        used.append(phantoms[i % distinct])
    }
    return PhantomCohort(sources: sources, phantoms: used)
}

/// numpy's default (`linear`) percentile of sorted values: `rank = p/100 · (n − 1)`, linear
/// interpolation between the neighbouring order statistics.
func numpyPercentile(sorted: [Double], _ p: Double) -> Double {
    let n = sorted.count
    let rank = min(max(p, 0), 100) / 100 * Double(n - 1)
    let lower = Int(rank.rounded(.down))
    let upper = min(lower + 1, n - 1)
    let t = rank - Double(lower)
    // numpy's _lerp: a + (b − a)·t, or b − (b − a)·(1 − t) for t ≥ 0.5.
    let (a, b) = (sorted[lower], sorted[upper])
    return t >= 0.5 ? b - (b - a) * (1 - t) : a + (b - a) * t
}

/// The foreground used without a mask: voxels above `threshold · p99` of all voxels.
func referenceForeground(_ values: [Float], threshold: Double) -> [Bool] {
    let p99 = numpyPercentile(sorted: values.map { Double($0) }.sorted(), 99)
    let cut = Float(threshold * p99)
    return values.map { $0 > cut }
}

/// Normalisation recomputed from its definition (see `IntensityNormalization`).
func referenceNormalised(_ values: [Float], mask: [Bool], options: PatchSamplingOptions) -> [Float] {
    let inside = zip(values, mask).filter { $0.1 }.map { Double($0.0) }
    var out: [Float]
    switch options.normalization {
    case .none:
        out = values
    case .zscore:
        let n = Double(inside.count)
        let mean = inside.reduce(0, +) / n
        let variance = inside.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n  // population
        let std = variance.squareRoot()
        let divisor = std > 0 ? std : 1
        out = values.map { Float((Double($0) - mean) / divisor) }
    case .minmax:
        let sorted = inside.sorted()
        let low = numpyPercentile(sorted: sorted, options.clipPercentiles[0])
        let high = numpyPercentile(sorted: sorted, options.clipPercentiles[1])
        let range = high - low > 0 ? high - low : 1
        out = values.map { Float(min(max((Double($0) - low) / range, 0), 1)) }
    }
    if options.zeroOutsideMask {
        for i in out.indices where !mask[i] { out[i] = 0 }
    }
    return out
}

/// The block of `volume` starting at `origin` of extent `size`, mirrored along the axes in
/// `flipped`, `[d, h, w]` row-major. Reads the unflipped block first and mirrors it after.
func referencePatch(_ volume: [Float], shape: [Int], origin: Triple, size: [Int], flipped: [Bool] = [false, false, false]) -> [Float] {
    var block = [Float](repeating: 0, count: size.reduce(1, *))
    for i in 0..<size[0] {
        for j in 0..<size[1] {
            for k in 0..<size[2] {
                let (x, y, z) = (origin.d + i, origin.h + j, origin.w + k)
                block[(i * size[1] + j) * size[2] + k] = volume[(x * shape[1] + y) * shape[2] + z]
            }
        }
    }
    var mirrored = block
    for i in 0..<size[0] {
        for j in 0..<size[1] {
            for k in 0..<size[2] {
                let (si, sj, sk) = (flipped[0] ? size[0] - 1 - i : i, flipped[1] ? size[1] - 1 - j : j, flipped[2] ? size[2] - 1 - k : k)
                mirrored[(i * size[1] + j) * size[2] + k] = block[(si * size[1] + sj) * size[2] + sk]
            }
        }
    }
    return mirrored
}

/// Whether the patch at `origin` is centred in `mask` (centre `origin + size/2`) and lies
/// wholly inside the volume.
func isValidPatch(origin: Triple, size: [Int], mask: [Bool], shape: [Int]) -> Bool {
    let o = origin.array
    guard (0..<3).allSatisfy({ o[$0] >= 0 && o[$0] + size[$0] <= shape[$0] }) else { return false }
    let c = (0..<3).map { o[$0] + size[$0] / 2 }
    return mask[(c[0] * shape[1] + c[1]) * shape[2] + c[2]]
}

/// Every batch of a stream, in order.
func drain(_ stream: PatchStream) throws -> [PatchBatch] {
    var batches: [PatchBatch] = []
    while let batch = try stream.next() { batches.append(batch) }
    return batches
}

/// The patches of `batches` one by one: origin and values.
func patches(of batches: [PatchBatch], volume: Int) -> [(origin: PatchOrigin, values: ArraySlice<Float>)] {
    batches.flatMap { batch in
        let scalars = batch.patches.scalars
        return batch.origins.enumerated().map { (n, origin) in (origin, scalars[(n * volume)..<((n + 1) * volume)]) }
    }
}

/// An epoch of batches from a fresh cache.
func epochBatches(_ sources: [ScanSource], options: PatchSamplingOptions, scans: [Int]? = nil, seed: UInt64 = 42,
                  epoch: Int = 0, batchSize: Int = 16, skipBatches: Int = 0, workers: Int = 2, queueDepth: Int = 2,
                  cacheMegabytes: Int = 64) throws -> [PatchBatch] {
    let sampler = try PatchSampler(scans: scans ?? Array(sources.indices), options: options, seed: seed)
    let cache = ScanCache(sources: sources, options: options, megabytes: cacheMegabytes)
    let stream = PatchStream(sampler: sampler, cache: cache, epoch: epoch, batchSize: batchSize, skipBatches: skipBatches,
                             workers: workers, queueDepth: queueDepth)
    return try drain(stream)
}

/// Largest `|a − b| − (atol + rtol·|b|)`, 0 when every pair is close.
func worstExcess<A: Collection<Float>, B: Collection<Float>>(_ a: A, _ b: B, rtol: Float = 1e-5, atol: Float = 1e-5) -> Float {
    TestSupport.closeness(a, b, rtol: rtol, atol: atol)
}

/// Small default options for tests.
func testOptions(size: [Int] = [5, 5, 5], normalization: IntensityNormalization = .zscore, patches: Int = 120) -> PatchSamplingOptions {
    var options = PatchSamplingOptions()
    options.size = size
    options.normalization = normalization
    options.patchesPerEpoch = patches
    options.scansPerBlock = 2
    options.blockMegabytes = 1
    return options
}

/// The `PatchError` a throwing call raised, nil when it did not throw.
/// (Any other error is recorded as an issue and returned as an `invalidOption` naming it.)
func patchError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> PatchError? {
    do {
        try body()
        return nil
    } catch let error as PatchError {
        return error
    } catch {
        Issue.record("expected a PatchError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
        return .invalidOption(name: "<not a PatchError>", value: "\(error)", reason: "")
    }
}
