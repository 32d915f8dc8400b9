import Foundation
import TensorCore

/// What to do with NaN or infinite voxels (after scaling and conversion to Float32).
public enum NonFinitePolicy: String, Sendable, Codable, CaseIterable {
    /// Throw `VolumeError.nonFiniteVoxels` naming the file, the count and the first voxel.
    case reject
    /// Keep them (for inspection, e.g. `adwb info`).
    case keep
    /// Replace them with 0, as `numpy.nan_to_num` would for NaN.
    case zero
}

/// How to read a volume file.
public struct VolumeReadOptions: Sendable {
    /// Which 3-D volume of a 4-D (or higher) file: the flattened index over `dim[4...]`.
    public var volumeIndex: Int
    public var nonFinite: NonFinitePolicy

    public init(volumeIndex: Int = 0, nonFinite: NonFinitePolicy = .reject) {
        self.volumeIndex = volumeIndex
        self.nonFinite = nonFinite
    }
}

/// Reads NIfTI-1 (`.nii`, `.nii.gz`, `.hdr`/`.img` pairs), NIfTI-2 and Analyze 7.5
/// (`.hdr`/`.img`, `.img.gz`) volumes, with nibabel's rules for the affine and scaling.
///
/// Memory stays bounded by the file: the header is checked (dimensions, overflow, and the
/// data size against what the file could hold) before any voxel buffer is allocated, and
/// only the requested 3-D volume is kept. Gzip is inflated as it streams and its CRC-32 and
/// length are always verified, even when the requested volume ends early in the stream.
public enum VolumeReader {
    /// Parses the header only (and lists its extensions). Header-only `.hdr` files succeed.
    public static func readHeader(_ url: URL) throws -> VolumeHeader {
        try OpenedVolume(url: url, openData: false).header
    }

    /// Parses the header and opens the data (the `.img` of a pair) without reading voxels:
    /// fails as `read` would on a missing image file or a file too small for the header's
    /// dims (for gzip, too small even at deflate's best ratio).
    public static func checkReadable(_ url: URL) throws -> VolumeHeader {
        try OpenedVolume(url: url, openData: true).header
    }

    /// Reads one 3-D volume.
    public static func read(_ url: URL, options: VolumeReadOptions = VolumeReadOptions()) throws -> Volume {
        let opened = try OpenedVolume(url: url, openData: true)
        let header = opened.header
        guard (0..<header.volumeCount).contains(options.volumeIndex) else {
            throw VolumeError.volumeIndexOutOfRange(path: url.path, index: options.volumeIndex, count: header.volumeCount)
        }
        var result: Tensor?
        try opened.streamVolumes(wanted: { $0 == options.volumeIndex }) { _, raw in
            result = try decodeVolume(raw, header: header, policy: options.nonFinite, path: opened.dataPath)
        }
        // streamVolumes visited every volume, so the index (checked above) was decoded.
        return try Volume(data: result!, affine: header.affine, header: header)
    }

    /// Streams every 3-D volume of the file through `body` in order (one in memory at a time),
    /// then checks the file's integrity (gzip CRC-32 and length). Returns the header.
    @discardableResult
    public static func forEachVolume(_ url: URL, nonFinite: NonFinitePolicy = .keep,
                                     _ body: (_ index: Int, _ volume: Tensor) throws -> Void) throws -> VolumeHeader {
        let opened = try OpenedVolume(url: url, openData: true)
        try opened.streamVolumes { index, raw in
            try body(index, try decodeVolume(raw, header: opened.header, policy: nonFinite, path: opened.dataPath))
        }
        return opened.header
    }

    /// Statistics of every voxel of every volume (after scaling, as Float32), streamed through
    /// in 1 MiB pieces whatever the volumes' shape, so a file of a million one-voxel volumes
    /// costs no more than one volume of the same size. Returns the header too.
    public static func statistics(_ url: URL) throws -> (header: VolumeHeader, statistics: VoxelStatistics) {
        let opened = try OpenedVolume(url: url, openData: true)
        let header = opened.header
        let swapped = (header.byteOrder == .bigEndian) != (1.bigEndian == 1)
        var statistics = VoxelStatistics()
        try opened.streamData(chunkBytes: 1 << 20) { raw in
            let count = raw.count / header.datatype.byteCount
            let values = Tensor(uninitializedShape: [count]) { out in
                // A [count, 1, 1] "volume": the conversion without a transpose.
                VoxelCodec.decode(raw, type: header.datatype, swapped: swapped, scaling: header.scaling, shape: [count, 1, 1], into: out)
            }
            values.withUnsafeBufferPointer { statistics.accumulate($0) }
        }
        return (header, statistics)
    }

    /// Decodes a stored volume into `[X, Y, Z]` Float32 and applies the non-finite policy.
    static func decodeVolume(_ raw: UnsafeRawBufferPointer, header: VolumeHeader, policy: NonFinitePolicy, path: String) throws -> Tensor {
        let shape = header.spatialShape
        let swapped = (header.byteOrder == .bigEndian) != (1.bigEndian == 1)
        var tensor = Tensor(uninitializedShape: shape) { out in
            VoxelCodec.decode(raw, type: header.datatype, swapped: swapped, scaling: header.scaling, shape: shape, into: out)
        }
        // Integers stay finite unless scaling overflows Float32; floats may hold NaN or inf.
        let identity = header.scaling.map { $0.slope == 1 && $0.intercept == 0 } ?? true
        guard header.datatype.isFloatingPoint || !identity, policy != .keep else { return tensor }
        let firstBad = tensor.withUnsafeBufferPointer { $0.firstIndex { !$0.isFinite } }
        guard let firstBad else { return tensor }
        switch policy {
        case .keep:
            break
        case .zero:
            tensor.withUnsafeMutableBufferPointer { values in
                for index in firstBad..<values.count where !values[index].isFinite { values[index] = 0 }
            }
        case .reject:
            let count = tensor.withUnsafeBufferPointer { $0[firstBad...].reduce(0) { $0 + ($1.isFinite ? 0 : 1) } }
            let (yz, k) = firstBad.quotientAndRemainder(dividingBy: shape[2])
            let (i, j) = yz.quotientAndRemainder(dividingBy: shape[1])
            throw VolumeError.nonFiniteVoxels(path: path, count: count, firstVoxel: [i, j, k], value: tensor.scalars[firstBad])
        }
        return tensor
    }
}

/// A volume file opened for reading: its parsed header and, when asked, its data stream
/// positioned at the first voxel.
struct OpenedVolume {
    let header: VolumeHeader
    /// The file holding the voxels (the `.img` of a pair).
    let dataPath: String
    private let data: ByteSource?

    /// Lower-cased name without a trailing `.gz`.
    private static func strippedName(_ path: String) -> String {
        let lower = path.lowercased()
        return lower.hasSuffix(".gz") ? String(lower.dropLast(3)) : lower
    }

    /// Candidate names for the other half of a pair, e.g. `x.hdr` → `x.img`, `x.img.gz`.
    private static func siblings(of path: String, from: String, to: String) -> [String] {
        var base = path
        if base.lowercased().hasSuffix(".gz") { base.removeLast(3) }
        // A pair header may have any name; only a matching extension is replaced.
        if base.lowercased().hasSuffix(from) { base.removeLast(from.count) }
        let upper = to.uppercased()
        return [base + to, base + to + ".gz", base + upper, base + upper + ".gz"]
    }

    private static func readError(_ error: Error, path: String) -> Error {
        switch error {
        case let error as ByteSourceError:
            switch error {
            case let .io(reason): return VolumeError.cannotRead(path: path, reason: reason)
            case .truncatedGzip: return VolumeError.truncatedGzip(path: path)
            case let .corruptGzip(reason): return VolumeError.corruptGzip(path: path, reason: reason)
            }
        default: return error
        }
    }

    /// Runs `body`, turning stream errors into `VolumeError`s naming `path`.
    private static func naming<R>(_ path: String, _ body: () throws -> R) throws -> R {
        do { return try body() } catch { throw readError(error, path: path) }
    }

    init(url: URL, openData: Bool) throws {
        var headerPath = url.path
        // Given the image of a pair, its header is the sibling .hdr, and the data come from
        // the image named (not from another sibling that happens to be there too).
        var namedImage: String?
        if Self.strippedName(headerPath).hasSuffix(".img") {
            let candidates = Self.siblings(of: headerPath, from: ".img", to: ".hdr")
            guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
                throw VolumeError.missingHeaderFile(image: headerPath, tried: candidates)
            }
            (namedImage, headerPath) = (headerPath, found)
        }
        let singleFileName = Self.strippedName(headerPath).hasSuffix(".nii")
        let pairFileName = Self.strippedName(headerPath).hasSuffix(".hdr")
        let (source, fileSize, compressed) = try Self.naming(headerPath) { try openByteSource(path: headerPath) }
        let path = headerPath
        var header = try Self.naming(path) { () throws -> VolumeHeader in
            let prefix = try source.readBytes(4)
            let (size, bigEndian) = try VolumeHeader.detect(sizeofHeader: prefix, path: path)
            let rest = try source.readBytes(size - 4)
            guard rest.count == size - 4 else {
                throw VolumeError.truncatedHeader(path: path, bytes: 4 + rest.count, needed: size)
            }
            return try VolumeHeader.parse(prefix + rest, bigEndian: bigEndian, path: path, singleFileName: singleFileName,
                                          pairFileName: pairFileName)
        }
        let headerSize = header.format == .nifti2 ? VolumeHeader.nifti2Size : VolumeHeader.nifti1Size
        var position = headerSize
        if header.format != .analyze {
            let limit = header.isPair ? Int.max : header.voxOffset
            header.extensionCodes = try Self.naming(path) {
                try Self.readExtensions(source, position: &position, limit: limit, bigEndian: header.byteOrder == .bigEndian)
            }
        }
        self.header = header
        guard openData else {
            (data, dataPath) = (nil, path)
            return
        }
        // The data file, and the most bytes it could deliver past vox_offset.
        let dataCompressed: Bool, capacity: Int
        if header.isPair {
            let candidates = namedImage.map { [$0] } ?? Self.siblings(of: path, from: ".hdr", to: ".img")
            guard let imagePath = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
                throw VolumeError.missingImageFile(header: path, tried: candidates)
            }
            let (image, imageSize, imageCompressed) = try Self.naming(imagePath) { try openByteSource(path: imagePath) }
            (data, dataPath, dataCompressed) = (image, imagePath, imageCompressed)
            capacity = Self.capacity(fileSize: imageSize, compressed: imageCompressed, offset: header.voxOffset)
            position = 0
        } else {
            (data, dataPath, dataCompressed) = (source, path, compressed)
            capacity = Self.capacity(fileSize: fileSize, compressed: compressed, offset: header.voxOffset)
        }
        let needed = header.dataByteCount
        // Checked before any voxel buffer exists: a hostile header cannot make us allocate
        // more than the file could hold.
        guard needed <= capacity else {
            if dataCompressed {
                throw VolumeError.dataSizeExceedsFile(path: dataPath, needed: needed, available: capacity)
            }
            throw VolumeError.truncatedData(path: dataPath, expectedBytes: needed, availableBytes: max(0, capacity))
        }
        // Move to the first voxel.
        let skip = header.voxOffset - position
        let skipped = try Self.naming(dataPath) { try data!.skip(skip) }
        guard skipped == skip else {
            throw VolumeError.truncatedData(path: dataPath, expectedBytes: needed, availableBytes: 0)
        }
    }

    /// Bytes the data file could hold past `offset`: its size for a plain file, deflate's
    /// maximum expansion of it for gzip.
    private static func capacity(fileSize: Int, compressed: Bool, offset: Int) -> Int {
        let (expanded, overflow) = fileSize.multipliedReportingOverflow(by: compressed ? GzipByteSource.maximumExpansion : 1)
        return overflow ? Int.max : max(-1, expanded - offset)
    }

    /// At most this many extensions are listed (real files carry a handful); a header with
    /// millions of tiny ones cannot make us spend memory or time on them.
    static let maximumExtensions = 64

    /// Reads the NIfTI extension list after the fixed header: a 4-byte extender whose first
    /// byte is non-zero when extensions follow, then blocks of (esize, ecode, payload). A
    /// malformed block, or the `maximumExtensions`-th, ends the list (the data still starts
    /// at `vox_offset`).
    private static func readExtensions(_ source: ByteSource, position: inout Int, limit: Int, bigEndian: Bool) throws -> [Int] {
        guard position + 4 <= limit else { return [] }
        let extender = try source.readBytes(4)
        position += extender.count
        guard extender.count == 4, extender[0] != 0 else { return [] }
        var codes: [Int] = []
        while position + 8 <= limit && codes.count < maximumExtensions {
            let block = try source.readBytes(8)
            position += block.count
            guard block.count == 8 else { break }
            let fields = HeaderFields(bytes: block, bigEndian: bigEndian)
            let size = fields.int32(0), code = fields.int32(4)
            guard size >= 8, size - 8 <= limit - position else { break }
            let skipped = try source.skip(size - 8)
            position += skipped
            guard skipped == size - 8 else { break }
            codes.append(code)
        }
        return codes
    }

    /// Passes all the stored voxel bytes to `body` in pieces of about `chunkBytes` (whole
    /// voxels), then reads to the end of the stream so that gzip's checks run.
    func streamData(chunkBytes: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let data else { preconditionFailure("streamData on a header-only open") }
        let voxel = header.datatype.byteCount
        let total = header.dataByteCount
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: min(total, max(voxel, chunkBytes / voxel * voxel)), alignment: 64)
        defer { buffer.deallocate() }
        var done = 0
        while done < total {
            let piece = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<min(buffer.count, total - done)])
            let got = try Self.naming(dataPath) { try data.read(into: piece) }
            guard got == piece.count else {
                throw VolumeError.truncatedData(path: dataPath, expectedBytes: total, availableBytes: done + got)
            }
            try body(UnsafeRawBufferPointer(piece))
            done += got
        }
        _ = try Self.naming(dataPath) { try data.drain() }
    }

    /// Passes the raw bytes of each stored 3-D volume that `wanted` accepts to `body`, in
    /// file order (the others are skipped), then reads to the end of the stream so that gzip's
    /// CRC-32 and length are checked.
    func streamVolumes(wanted: (Int) -> Bool = { _ in true },
                       _ body: (_ index: Int, _ raw: UnsafeRawBufferPointer) throws -> Void) throws {
        guard let data else { preconditionFailure("streamVolumes on a header-only open") }
        let volumeBytes = header.bytesPerVolume
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: volumeBytes, alignment: 64)
        defer { buffer.deallocate() }
        for index in 0..<header.volumeCount {
            let keep = wanted(index)
            let got = try Self.naming(dataPath) { keep ? try data.read(into: buffer) : try data.skip(volumeBytes) }
            guard got == volumeBytes else {
                throw VolumeError.truncatedData(path: dataPath, expectedBytes: header.dataByteCount,
                                                availableBytes: index * volumeBytes + got)
            }
            if keep { try body(index, UnsafeRawBufferPointer(buffer)) }
        }
        _ = try Self.naming(dataPath) { try data.drain() }
    }
}
