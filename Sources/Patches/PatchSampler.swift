import Foundation
import TensorCore

/// Where a patch was cut: the scan (index into the cache's sources), the voxel of its first
/// corner in the volume, and whether it was mirrored along each axis.
public struct PatchOrigin: Sendable, Equatable, Hashable {
    public var scan: Int
    public var voxel: Triple
    public var flipped: [Bool]
}

/// Patches cut from a few scan visits and shuffled together: the unit a worker produces.
public struct PatchBlock: Sendable {
    /// `origins.count` patches of `patchVolume` values each, `[n, d, h, w]` row-major.
    public var patches: [Float]
    public var origins: [PatchOrigin]
}

/// Draws random patches from scans, reproducibly.
///
/// An epoch's `patchesPerEpoch` patches are shared out equally (each scan gets ⌊P/S⌋ or
/// ⌈P/S⌉; which scans get the extra ones is drawn per epoch), split into scan *visits* small
/// enough for the memory budget, and the visits put in a random order. Groups of
/// `scansPerBlock` visits form *blocks*, whose patches are shuffled together. Every random
/// choice is drawn from a stream derived from `(seed, epoch, ...)`, so any block can be made
/// on its own, by any thread, in any order, and is always the same.
public struct PatchSampler: Sendable {
    /// Indices of the scans to draw from, into the cache's sources.
    public let scans: [Int]
    public let options: PatchSamplingOptions
    public let seed: UInt64

    /// One visit to a scan: `count` patches, the `ordinal`-th visit to that scan this epoch.
    public struct Visit: Sendable, Equatable {
        public var scan: Int
        public var count: Int
        public var ordinal: Int
    }

    /// - Parameter scans: indices into the `ScanCache`'s sources (several samplers, such as
    ///   training and validation, can share one cache).
    public init(scans: [Int], options: PatchSamplingOptions, seed: UInt64) throws(PatchError) {
        try options.validate()
        guard !scans.isEmpty else { throw .invalidOption(name: "scans", value: "0", reason: "no scans to draw patches from") }
        (self.scans, self.options, self.seed) = (scans, options, seed)
    }

    // Stream tags, so that the streams of different purposes never coincide.
    private enum Stream: UInt64 { case quota = 1, order, visit, augment, shuffle }

    private func generator(_ stream: Stream, _ path: UInt64...) -> Xoshiro256StarStar {
        var seedValue = SplitMix64.derive(seed, stream.rawValue)
        for value in path { seedValue = SplitMix64.derive(seedValue, value) }
        return Xoshiro256StarStar(seed: seedValue)
    }

    /// The most patches one visit may cut (`blockMegabytes / scansPerBlock` of patches).
    public var patchesPerVisit: Int {
        max(1, options.blockMegabytes * 1_000_000 / options.scansPerBlock / (options.patchVolume * 4))
    }

    /// The epoch's blocks, each a list of visits, in the order they are consumed.
    public func plan(epoch: Int) -> [[Visit]] {
        let drawEpoch = UInt64(options.resampleEachEpoch ? epoch : 0)
        let (base, extra) = options.patchesPerEpoch.quotientAndRemainder(dividingBy: scans.count)
        var quotaGenerator = generator(.quota, drawEpoch)
        var luckyOrder = Array(scans.indices)
        shuffle(&luckyOrder, &quotaGenerator)
        var quota = [Int](repeating: base, count: scans.count)
        for position in luckyOrder.prefix(extra) { quota[position] += 1 }

        var visits: [Visit] = []
        for (position, scan) in scans.enumerated() where quota[position] > 0 {
            let parts = (quota[position] + patchesPerVisit - 1) / patchesPerVisit
            for part in 0..<parts {
                let count = quota[position] * (part + 1) / parts - quota[position] * part / parts
                visits.append(Visit(scan: scan, count: count, ordinal: part))
            }
        }
        var orderGenerator = generator(.order, UInt64(epoch))
        shuffle(&visits, &orderGenerator)
        return stride(from: 0, to: visits.count, by: options.scansPerBlock).map {
            Array(visits[$0..<min($0 + options.scansPerBlock, visits.count)])
        }
    }

    /// Cuts and shuffles the patches of block `index` of `epoch`'s plan.
    public func block(_ visits: [Visit], epoch: Int, index: Int, cache: ScanCache) throws(PatchError) -> PatchBlock {
        guard cache.options.preparesScans(like: options) else {
            throw .invalidOption(name: "scan cache", value: "\(cache.options.size)",
                                 reason: "prepares scans for other patch or normalisation options than the sampler's \(options.size)")
        }
        let drawEpoch = UInt64(options.resampleEachEpoch ? epoch : 0)
        let volume = options.patchVolume
        let total = visits.reduce(0) { $0 + $1.count }
        var patches = [Float](repeating: 0, count: total * volume)
        var origins: [PatchOrigin] = []
        origins.reserveCapacity(total)
        for visit in visits {
            let scan = try cache.scan(visit.scan)
            var drawGenerator = generator(.visit, drawEpoch, UInt64(visit.scan), UInt64(visit.ordinal))
            var augmentGenerator = generator(.augment, UInt64(epoch), UInt64(visit.scan), UInt64(visit.ordinal))
            patches.withUnsafeMutableBufferPointer { out in
                for _ in 0..<visit.count {
                    let target = out.baseAddress! + origins.count * volume
                    origins.append(cut(from: scan, scanIndex: visit.scan, into: target, &drawGenerator, &augmentGenerator))
                }
            }
        }
        var shuffleGenerator = generator(.shuffle, UInt64(epoch), UInt64(index))
        var order = Array(0..<total)
        shuffle(&order, &shuffleGenerator)
        var shuffled = [Float](repeating: 0, count: patches.count)
        shuffled.withUnsafeMutableBufferPointer { out in
            patches.withUnsafeBufferPointer { source in
                for (position, item) in order.enumerated() {
                    (out.baseAddress! + position * volume).update(from: source.baseAddress! + item * volume, count: volume)
                }
            }
        }
        return PatchBlock(patches: shuffled, origins: order.map { origins[$0] })
    }

    /// Cuts one patch (drawing its origin, then its augmentation) into `target`.
    private func cut(from scan: PreparedScan, scanIndex: Int, into target: UnsafeMutablePointer<Float>,
                     _ draw: inout Xoshiro256StarStar, _ augment: inout Xoshiro256StarStar) -> PatchOrigin {
        let crop = scan.cropShape
        var linear = scan.origins[draw.nextIndex(below: scan.origins.count)]
        var position = [Int(linear) / (crop.h * crop.w), Int(linear) / crop.w % crop.h, Int(linear) % crop.w]
        let size = options.size
        let a = options.augmentation
        if a.maxShift > 0 {
            let span = 2 * a.maxShift + 1
            let shifted = (0..<3).map { position[$0] + augment.nextIndex(below: span) - a.maxShift }
            let inside = (0..<3).allSatisfy { shifted[$0] >= 0 && shifted[$0] < crop.array[$0] }
            if inside {
                let candidate = Int32((shifted[0] * crop.h + shifted[1]) * crop.w + shifted[2])
                if scan.isValidOrigin(candidate) { (position, linear) = (shifted, candidate) }
            }
        }
        let flips = (0..<3).map { _ in a.flipProbability > 0 && augment.nextUnitDouble() < a.flipProbability }
        var scale: Float = 1, offset: Float = 0
        if a.intensityScale > 0 { scale = Float(1 + a.intensityScale * (2 * augment.nextUnitDouble() - 1)) }
        if a.intensityOffset > 0 { offset = Float(a.intensityOffset * (2 * augment.nextUnitDouble() - 1)) }

        scan.data.withUnsafeBufferPointer { data in
            var written = 0
            for i in 0..<size[0] {
                let x = position[0] + (flips[0] ? size[0] - 1 - i : i)
                for j in 0..<size[1] {
                    let y = position[1] + (flips[1] ? size[1] - 1 - j : j)
                    let row = (x * crop.h + y) * crop.w + position[2]
                    if flips[2] {
                        for k in 0..<size[2] { target[written + k] = data[row + size[2] - 1 - k] * scale + offset }
                    } else {
                        for k in 0..<size[2] { target[written + k] = data[row + k] * scale + offset }
                    }
                    written += size[2]
                }
            }
        }
        let c = scan.cropOrigin
        return PatchOrigin(scan: scanIndex, voxel: Triple(c.d + position[0], c.h + position[1], c.w + position[2]), flipped: flips)
    }
}

/// Fisher-Yates with our generator (the standard library's `shuffle(using:)` may change
/// its algorithm between Swift versions; this one never does).
func shuffle<T>(_ items: inout [T], _ generator: inout Xoshiro256StarStar) {
    guard items.count > 1 else { return }
    for i in stride(from: items.count - 1, to: 0, by: -1) {
        items.swapAt(i, generator.nextIndex(below: i + 1))
    }
}
