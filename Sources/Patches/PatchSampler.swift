import Foundation
import TensorCore

/// Where a patch was cut: the scan (index into the cache's sources), the voxel of its first
/// corner in the volume, and whether it was mirrored along each axis.
public struct PatchOrigin: Sendable, Equatable, Hashable {
    public var scan: Int
    public var voxel: Triple
    /// Bit `a` set: mirrored along axis `a` (0 = d, 1 = h, 2 = w).
    public var flips: UInt8

    /// `flips` as one flag per axis `[d, h, w]`.
    public var flipped: [Bool] { (0..<3).map { flips & (1 << $0) != 0 } }
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

    /// Bytes a block holds per patch: its values plus its record and shuffle slot.
    static let bookkeepingBytes = MemoryLayout<PatchOrigin>.stride + 2 * MemoryLayout<Int>.stride

    /// The most patches one visit may cut (`blockMegabytes / scansPerBlock` of patches).
    public var patchesPerVisit: Int {
        max(1, options.blockMegabytes * 1_000_000 / options.scansPerBlock / (options.patchVolume * 4 + Self.bookkeepingBytes))
    }

    /// The epoch's blocks, each a list of visits, in the order they are consumed.
    public func plan(epoch: Int) -> [[Visit]] {
        let drawEpoch = UInt64(options.resampleEachEpoch ? epoch : 0)
        let (base, extra) = options.patchesPerEpoch.quotientAndRemainder(dividingBy: scans.count)
        var quotaGenerator = generator(.quota, drawEpoch)
        var luckyOrder = Array(scans.indices)
        luckyOrder.seededShuffle(using: &quotaGenerator)
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
        visits.seededShuffle(using: &orderGenerator)
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
        // The block's order is drawn first, so each patch is cut straight into its shuffled slot:
        // slot `p` holds the `order[p]`-th patch cut.
        var shuffleGenerator = generator(.shuffle, UInt64(epoch), UInt64(index))
        var order = Array(0..<total)
        order.seededShuffle(using: &shuffleGenerator)
        var slot = [Int](repeating: 0, count: total)
        for (position, item) in order.enumerated() { slot[item] = position }
        var patches = [Float](repeating: 0, count: total * volume)
        var origins = [PatchOrigin](repeating: PatchOrigin(scan: 0, voxel: Triple(0), flips: 0), count: total)
        var item = 0
        for visit in visits {
            let scan = try cache.scan(visit.scan)
            var drawGenerator = generator(.visit, drawEpoch, UInt64(visit.scan), UInt64(visit.ordinal))
            var augmentGenerator = generator(.augment, UInt64(epoch), UInt64(visit.scan), UInt64(visit.ordinal))
            patches.withUnsafeMutableBufferPointer { out in
                for _ in 0..<visit.count {
                    let target = out.baseAddress! + slot[item] * volume
                    origins[slot[item]] = cut(from: scan, scanIndex: visit.scan, into: target, &drawGenerator, &augmentGenerator)
                    item += 1
                }
            }
        }
        return PatchBlock(patches: patches, origins: origins)
    }

    /// Cuts one patch (drawing its origin, then its augmentation) into `target`. Runs once per
    /// patch, so it allocates nothing.
    private func cut(from scan: PreparedScan, scanIndex: Int, into target: UnsafeMutablePointer<Float>,
                     _ draw: inout Xoshiro256StarStar, _ augment: inout Xoshiro256StarStar) -> PatchOrigin {
        let crop = scan.cropShape
        let linear = Int(scan.origins[draw.nextIndex(below: scan.origins.count)])
        var (x, y, z) = (linear / (crop.h * crop.w), linear / crop.w % crop.h, linear % crop.w)
        let size = options.extent
        let a = options.augmentation
        if a.maxShift > 0 {
            let span = 2 * a.maxShift + 1
            let sx = x + augment.nextIndex(below: span) - a.maxShift
            let sy = y + augment.nextIndex(below: span) - a.maxShift
            let sz = z + augment.nextIndex(below: span) - a.maxShift
            if sx >= 0, sx < crop.d, sy >= 0, sy < crop.h, sz >= 0, sz < crop.w,
               scan.isValidOrigin(Int32((sx * crop.h + sy) * crop.w + sz)) {
                (x, y, z) = (sx, sy, sz)
            }
        }
        var flips: UInt8 = 0
        if a.flipProbability > 0 {
            for axis in 0..<3 where augment.nextUnitDouble() < a.flipProbability { flips |= 1 << axis }
        }
        var scale: Float = 1, offset: Float = 0
        if a.intensityScale > 0 { scale = Float(1 + a.intensityScale * (2 * augment.nextUnitDouble() - 1)) }
        if a.intensityOffset > 0 { offset = Float(a.intensityOffset * (2 * augment.nextUnitDouble() - 1)) }

        let (flipD, flipH, flipW) = (flips & 1 != 0, flips & 2 != 0, flips & 4 != 0)
        scan.data.withUnsafeBufferPointer { data in
            var written = 0
            for i in 0..<size.d {
                let px = x + (flipD ? size.d - 1 - i : i)
                for j in 0..<size.h {
                    let py = y + (flipH ? size.h - 1 - j : j)
                    let row = (px * crop.h + py) * crop.w + z
                    if flipW {
                        for k in 0..<size.w { target[written + k] = data[row + size.w - 1 - k] * scale + offset }
                    } else if scale == 1 && offset == 0 {
                        (target + written).update(from: data.baseAddress! + row, count: size.w)
                    } else {
                        for k in 0..<size.w { target[written + k] = data[row + k] * scale + offset }
                    }
                    written += size.w
                }
            }
        }
        let c = scan.cropOrigin
        return PatchOrigin(scan: scanIndex, voxel: Triple(c.d + x, c.h + y, c.w + z), flips: flips)
    }
}
