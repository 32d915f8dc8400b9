import Foundation
import Testing
import TensorCore
import TestSupport
import VolumeIO
@testable import Patches

/// Bad scans and bad options: each error names the file (and manifest line) or the option.
struct BadInputTests {
    static let shape = [20, 24, 18]

    /// Checks that `error` is `.badScan` naming `path` and `line` (and, when given, a reason
    /// containing `reasonPart`).
    static func expectBadScan(_ error: PatchError?, path: URL, line: Int?, reasonPart: String? = nil, _ label: String,
                              sourceLocation: SourceLocation = #_sourceLocation) {
        guard case let .badScan(gotPath, gotLine, reason)? = error else {
            Issue.record("\(label): expected PatchError.badScan, got \(String(describing: error))", sourceLocation: sourceLocation)
            return
        }
        #expect(gotPath == path.path, "\(label): names \(gotPath)", sourceLocation: sourceLocation)
        #expect(gotLine == line, "\(label): line \(String(describing: gotLine))", sourceLocation: sourceLocation)
        #expect(!reason.isEmpty, sourceLocation: sourceLocation)
        if let reasonPart {
            #expect(reason.contains(reasonPart), "\(label): reason \"\(reason)\" lacks \"\(reasonPart)\"", sourceLocation: sourceLocation)
        }
        let description = error!.description
        #expect(description.contains(path.path), sourceLocation: sourceLocation)
        if let line {
            #expect(description.contains("manifest line \(line)"), "\(label): \(description)", sourceLocation: sourceLocation)
        } else {
            #expect(!description.contains("manifest line"), sourceLocation: sourceLocation)
        }
    }

    /// The error loading `source` raises, directly and through a cache.
    static func loadErrors(_ source: ScanSource, options: PatchSamplingOptions = testOptions()) -> [PatchError?] {
        let direct = patchError { _ = try PreparedScan.load(source, options: options) }
        let cache = ScanCache(sources: [source], options: options, megabytes: 16)
        let cached = patchError { _ = try cache.scan(0) }
        return [direct, cached]
    }

    /// A NIfTI-1 file with two 3-D volumes (`dim = [4, X, Y, Z, 2]`), made from a written 3-D file.
    static func writeFourD(_ values: [Float], to url: URL, scratch: URL) throws {
        try writeVolume(values, shape: shape, to: scratch)
        var bytes = [UInt8](try Data(contentsOf: scratch))
        func putInt16(_ offset: Int, _ value: Int16) {
            withUnsafeBytes(of: value.littleEndian) { for k in 0..<2 { bytes[offset + k] = $0[k] } }
        }
        putInt16(40, 4)  // dim[0]: four dimensions
        putInt16(48, 2)  // dim[4]: two volumes
        bytes += bytes[352...]  // the second volume's voxels
        try Data(bytes).write(to: url)
    }

    @Test func fixtureFourDFileIsReadableAsTwoVolumes() throws {
        try withTemporaryDirectory { directory in
            let phantom = makePhantom(seed: 3)
            let url = directory.appendingPathComponent("four_d.nii")
            try Self.writeFourD(phantom.values, to: url, scratch: directory.appendingPathComponent("scratch.nii"))
            let header = try VolumeReader.readHeader(url)
            #expect(header.volumeCount == 2)
            let second = try VolumeReader.read(url, options: VolumeReadOptions(volumeIndex: 1))
            #expect(second.data.scalars == phantom.values)
        }
    }

    @Test func badScansNameTheFileAndManifestLine() throws {
        try withTemporaryDirectory { directory in
            let phantom = makePhantom(seed: 5)
            let image = directory.appendingPathComponent("good_T1w.nii")
            try writeVolume(phantom.values, shape: Self.shape, to: image)
            let mask = directory.appendingPathComponent("good_mask.nii.gz")
            try writeMask(phantom.mask, shape: Self.shape, to: mask)
            // The good scan loads.
            #expect(Self.loadErrors(ScanSource(name: "ok", image: image, mask: mask, line: 2)).allSatisfy { $0 == nil })

            // Missing image.
            let absent = directory.appendingPathComponent("absent_T1w.nii")
            for error in Self.loadErrors(ScanSource(name: "a", image: absent, mask: mask, line: 3)) {
                Self.expectBadScan(error, path: absent, line: 3, "missing image")
            }
            // Missing mask.
            let absentMask = directory.appendingPathComponent("absent_mask.nii")
            for error in Self.loadErrors(ScanSource(name: "b", image: image, mask: absentMask, line: 4)) {
                Self.expectBadScan(error, path: absentMask, line: 4, "missing mask")
            }
            // A mask of another shape.
            let small = directory.appendingPathComponent("small_mask.nii")
            try writeVolume([Float](repeating: 1, count: 20 * 24 * 17), shape: [20, 24, 17], to: small, datatype: .uint8)
            for error in Self.loadErrors(ScanSource(name: "c", image: image, mask: small, line: 5)) {
                Self.expectBadScan(error, path: small, line: 5, "mask of another shape")
            }
            // An empty mask.
            let empty = directory.appendingPathComponent("empty_mask.nii")
            try writeVolume([Float](repeating: 0, count: phantom.voxelCount), shape: Self.shape, to: empty, datatype: .uint8)
            for error in Self.loadErrors(ScanSource(name: "d", image: image, mask: empty, line: 6)) {
                Self.expectBadScan(error, path: empty, line: 6, reasonPart: "empty", "empty mask")
            }
            // A mask at the edge: its only voxels are on the i = 0 face, so no 5-voxel patch
            // centred there fits in the volume (the origin would be at i = −2).
            var edge = [Float](repeating: 0, count: phantom.voxelCount)
            for y in 5..<15 { for z in 4..<12 { edge[phantom.index(0, y, z)] = 1 } }
            let edgeMask = directory.appendingPathComponent("edge_mask.nii")
            try writeVolume(edge, shape: Self.shape, to: edgeMask, datatype: .uint8)
            for error in Self.loadErrors(ScanSource(name: "e", image: image, mask: edgeMask, line: 7)) {
                Self.expectBadScan(error, path: image, line: 7, reasonPart: "5x5x5", "mask at the edge")
            }
            // ... while a patch of extent 1 along i fits there.
            #expect(Self.loadErrors(ScanSource(name: "e", image: image, mask: edgeMask, line: 7),
                                    options: testOptions(size: [1, 5, 5])).allSatisfy { $0 == nil })
            // And a mask one voxel further in takes extent 3 (centre offset 1) but not 5.
            var inner = [Float](repeating: 0, count: phantom.voxelCount)
            for y in 5..<15 { for z in 4..<12 { inner[phantom.index(1, y, z)] = 1 } }
            let innerMask = directory.appendingPathComponent("inner_mask.nii")
            try writeVolume(inner, shape: Self.shape, to: innerMask, datatype: .uint8)
            #expect(Self.loadErrors(ScanSource(name: "f", image: image, mask: innerMask), options: testOptions(size: [3, 3, 3]))
                .allSatisfy { $0 == nil })
            for error in Self.loadErrors(ScanSource(name: "f", image: image, mask: innerMask), options: testOptions(size: [5, 3, 3])) {
                Self.expectBadScan(error, path: image, line: nil, reasonPart: "5x3x3", "mask one voxel in, extent 5")
            }

            // NaN voxels in the image, or in the mask.
            var withNaN = phantom.values
            withNaN[phantom.index(10, 12, 9)] = .nan
            let nanImage = directory.appendingPathComponent("nan_T1w.nii")
            try writeVolume(withNaN, shape: Self.shape, to: nanImage)
            for error in Self.loadErrors(ScanSource(name: "g", image: nanImage, mask: mask, line: 8)) {
                Self.expectBadScan(error, path: nanImage, line: 8, "NaN image")
            }
            for error in Self.loadErrors(ScanSource(name: "g", image: nanImage, line: 8)) {
                Self.expectBadScan(error, path: nanImage, line: 8, "NaN image without a mask")
            }
            var infinite = phantom.values
            infinite[0] = -.infinity
            let infImage = directory.appendingPathComponent("inf_T1w.nii")
            try writeVolume(infinite, shape: Self.shape, to: infImage)
            for error in Self.loadErrors(ScanSource(name: "h", image: infImage, mask: mask, line: 9)) {
                Self.expectBadScan(error, path: infImage, line: 9, "infinite image")
            }
            var nanMaskValues = phantom.mask.map { $0 ? Float(1) : 0 }
            nanMaskValues[3] = .nan
            let nanMask = directory.appendingPathComponent("nan_mask.nii")
            try writeVolume(nanMaskValues, shape: Self.shape, to: nanMask)
            for error in Self.loadErrors(ScanSource(name: "i", image: image, mask: nanMask, line: 10)) {
                Self.expectBadScan(error, path: nanMask, line: 10, "NaN mask")
            }

            // Not a volume at all.
            let text = directory.appendingPathComponent("notes.nii")
            try Data("not a NIfTI file".utf8).write(to: text)
            for error in Self.loadErrors(ScanSource(name: "j", image: text, line: 11)) {
                Self.expectBadScan(error, path: text, line: 11, "not a NIfTI file")
            }

            // No mask and nothing above the foreground threshold (an all-zero image).
            let blank = directory.appendingPathComponent("blank_T1w.nii")
            try writeVolume([Float](repeating: 0, count: phantom.voxelCount), shape: Self.shape, to: blank)
            for error in Self.loadErrors(ScanSource(name: "k", image: blank, line: 12)) {
                Self.expectBadScan(error, path: blank, line: 12, reasonPart: "foreground", "blank image without a mask")
            }
            // Unknown line: the message has none.
            for error in Self.loadErrors(ScanSource(name: "l", image: absent)) {
                Self.expectBadScan(error, path: absent, line: nil, "no line")
            }
        }
    }

    /// `PreparedScan.load` documents that 4-D images are rejected (`badScan`); patches must not
    /// silently come from the first volume of a time series or multi-channel file.
    @Test func fourDImageIsRejected() throws {
        try withTemporaryDirectory { directory in
            let phantom = makePhantom(seed: 6)
            let fourD = directory.appendingPathComponent("series_bold.nii")
            try Self.writeFourD(phantom.values, to: fourD, scratch: directory.appendingPathComponent("scratch.nii"))
            let mask = directory.appendingPathComponent("mask.nii")
            try writeMask(phantom.mask, shape: Self.shape, to: mask)
            for error in Self.loadErrors(ScanSource(name: "4d", image: fourD, mask: mask, line: 13)) {
                Self.expectBadScan(error, path: fourD, line: 13, "4-D image")
            }
            // A 4-D mask likewise.
            let image = directory.appendingPathComponent("image.nii")
            try writeVolume(phantom.values, shape: Self.shape, to: image)
            let fourDMask = directory.appendingPathComponent("mask_4d.nii")
            try Self.writeFourD(phantom.mask.map { $0 ? 1 : 0 }, to: fourDMask, scratch: directory.appendingPathComponent("scratch2.nii"))
            for error in Self.loadErrors(ScanSource(name: "4d mask", image: image, mask: fourDMask, line: 14)) {
                Self.expectBadScan(error, path: fourDMask, line: 14, "4-D mask")
            }
        }
    }

    @Test func preloadReportsFailuresByIndexAndLoadsTheRest() throws {
        try withTemporaryDirectory { directory in
            var cohort = try makeCohort(in: directory, count: 7, distinct: 3)
            let absent = directory.appendingPathComponent("absent.nii")
            let empty = directory.appendingPathComponent("empty_mask.nii")
            try writeVolume([Float](repeating: 0, count: 20 * 24 * 18), shape: Self.shape, to: empty, datatype: .uint8)
            let small = directory.appendingPathComponent("small_mask.nii")
            try writeVolume([Float](repeating: 1, count: 20 * 24 * 17), shape: [20, 24, 17], to: small, datatype: .uint8)
            cohort.sources[1].image = absent
            cohort.sources[3].mask = empty
            cohort.sources[6].mask = small
            let options = testOptions(size: [4, 4, 4])
            let cache = ScanCache(sources: cohort.sources, options: options, megabytes: 512)
            let progress = OSAllocatedIndices()
            let failures = cache.preload(Array(0..<7), workers: 3) { progress.add($0) }
            #expect(Set(failures.keys) == [1, 3, 6])
            Self.expectBadScan(failures[1], path: absent, line: 3, "preload missing image")
            Self.expectBadScan(failures[3], path: empty, line: 5, reasonPart: "empty", "preload empty mask")
            Self.expectBadScan(failures[6], path: small, line: 8, "preload mask shape")
            #expect(progress.sorted() == Array(0..<7), "progress reports every scan once")
            #expect(cache.loads == 7)
            // The good ones are cached: asking again loads nothing.
            for i in [0, 2, 4, 5] { _ = try cache.scan(i) }
            #expect(cache.loads == 7)
            #expect(cache.heldBytes > 0)
            // A failure is not cached as a success: asking again fails again.
            Self.expectBadScan(patchError { _ = try cache.scan(1) }, path: absent, line: 3, "scan after failed preload")
            // A subset, more workers than scans.
            let other = ScanCache(sources: cohort.sources, options: options, megabytes: 512)
            let some = other.preload([5, 1], workers: 8)
            #expect(Set(some.keys) == [1])
            #expect(other.loads == 2)
            #expect(other.preload([], workers: 2).isEmpty)
        }
    }

    @Test func invalidOptionsAreRejected() throws {
        #expect(patchError { try PatchSamplingOptions().validate() } == nil, "the defaults are valid")
        typealias Mutation = (String, (inout PatchSamplingOptions) -> Void)
        let cases: [Mutation] = [
            ("patch size", { $0.size = [5, 5] }),
            ("patch size", { $0.size = [5, 5, 5, 5] }),
            ("patch size", { $0.size = [] }),
            ("patch size", { $0.size = [5, 0, 5] }),
            ("patch size", { $0.size = [-1, 5, 5] }),
            ("patch size", { $0.size = [5, 5, 1025] }),
            ("clip percentiles", { $0.clipPercentiles = [1] }),
            ("clip percentiles", { $0.clipPercentiles = [1, 50, 99] }),
            ("clip percentiles", { $0.clipPercentiles = [-1, 99] }),
            ("clip percentiles", { $0.clipPercentiles = [1, 100.5] }),
            ("clip percentiles", { $0.clipPercentiles = [50, 50] }),
            ("clip percentiles", { $0.clipPercentiles = [90, 10] }),
            ("clip percentiles", { $0.clipPercentiles = [.nan, 99] }),
            ("foreground threshold", { $0.foregroundThreshold = -0.1 }),
            ("foreground threshold", { $0.foregroundThreshold = 1 }),
            ("foreground threshold", { $0.foregroundThreshold = .nan }),
            ("patches per epoch", { $0.patchesPerEpoch = 0 }),
            ("patches per epoch", { $0.patchesPerEpoch = -5 }),
            ("scans per block", { $0.scansPerBlock = 0 }),
            ("block megabytes", { $0.blockMegabytes = 0 }),
            ("flip probability", { $0.augmentation.flipProbability = 1.5 }),
            ("flip probability", { $0.augmentation.flipProbability = -0.1 }),
            ("flip probability", { $0.augmentation.flipProbability = .nan }),
            ("max shift", { $0.augmentation.maxShift = -1 }),
            ("max shift", { $0.augmentation.maxShift = 65 }),
            ("intensity scale", { $0.augmentation.intensityScale = 1 }),
            ("intensity scale", { $0.augmentation.intensityScale = -0.1 }),
            ("intensity scale", { $0.augmentation.intensityScale = .nan }),
            ("intensity offset", { $0.augmentation.intensityOffset = -1 }),
            ("intensity offset", { $0.augmentation.intensityOffset = .infinity }),
            ("intensity offset", { $0.augmentation.intensityOffset = .nan }),
        ]
        for (name, mutate) in cases {
            var options = PatchSamplingOptions()
            mutate(&options)
            for error in [patchError { try options.validate() },
                          patchError { _ = try PatchSampler(scans: [0], options: options, seed: 1) }] {
                guard case let .invalidOption(gotName, value, reason)? = error else {
                    Issue.record("\(name): expected invalidOption, got \(String(describing: error))")
                    continue
                }
                #expect(gotName == name, "expected the \(name) to be named, got \(gotName)")
                #expect(!value.isEmpty && !reason.isEmpty)
                #expect(error!.description.hasPrefix("\(name) = "))
            }
        }
        // Boundary values that are allowed.
        let allowed: [(inout PatchSamplingOptions) -> Void] = [
            { $0.size = [1, 1, 1] }, { $0.size = [1024, 1, 1] }, { $0.clipPercentiles = [0, 100] },
            { $0.foregroundThreshold = 0 }, { $0.augmentation.flipProbability = 1 }, { $0.augmentation.maxShift = 64 },
            { $0.augmentation.intensityScale = 0.99 }, { $0.patchesPerEpoch = 1 },
        ]
        for mutate in allowed {
            var options = PatchSamplingOptions()
            mutate(&options)
            #expect(patchError { try options.validate() } == nil, "\(options) should be valid")
        }
        // A sampler needs scans.
        guard case let .invalidOption(name, _, _)? = patchError({ _ = try PatchSampler(scans: [], options: PatchSamplingOptions(), seed: 1) }) else {
            Issue.record("an empty scan list must be an invalidOption")
            return
        }
        #expect(name == "scans")
    }
}

/// Indices reported from helper threads, under a lock.
final class OSAllocatedIndices: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int] = []
    func add(_ value: Int) { lock.lock(); values.append(value); lock.unlock() }
    func sorted() -> [Int] { lock.lock(); defer { lock.unlock() }; return values.sorted() }
}
