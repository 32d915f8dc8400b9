import Foundation

/// Why a volume file could not be read or written. Every case names the file; none is a
/// crash: hostile or damaged input always ends up here.
public enum VolumeError: Error, Equatable, CustomStringConvertible {
    /// The file could not be opened or read (missing, a directory, permissions, I/O error).
    case cannotRead(path: String, reason: String)
    /// The file holds zero bytes.
    case emptyFile(path: String)
    /// The first bytes are not a NIfTI-1, NIfTI-2 or Analyze 7.5 header.
    case notAVolume(path: String, reason: String)
    /// The file ends inside the header.
    case truncatedHeader(path: String, bytes: Int, needed: Int)
    /// A header field holds a value that cannot describe a volume.
    case invalidHeaderField(path: String, field: String, value: String, reason: String)
    /// `datatype` is not one this workbench reads (e.g. complex, RGB, or an unknown code).
    case unsupportedDatatype(path: String, code: Int)
    /// A `.hdr` whose image file (`.img`, `.img.gz`) is not next to it.
    case missingImageFile(header: String, tried: [String])
    /// An `.img` whose header file (`.hdr`, `.hdr.gz`) is not next to it.
    case missingHeaderFile(image: String, tried: [String])
    /// The header promises more voxel data than the file could possibly hold (checked before
    /// anything is allocated; for gzip, against deflate's maximum expansion of the file).
    case dataSizeExceedsFile(path: String, needed: Int, available: Int)
    /// The voxel data stops before the header's dimensions are filled.
    case truncatedData(path: String, expectedBytes: Int, availableBytes: Int)
    /// The gzip stream is cut off before its end.
    case truncatedGzip(path: String)
    /// zlib rejected the gzip stream (bad CRC-32, bad length, invalid deflate data...).
    case corruptGzip(path: String, reason: String)
    /// A 4-D (or higher) volume index past the last volume.
    case volumeIndexOutOfRange(path: String, index: Int, count: Int)
    /// Voxels that are NaN or infinite (after scaling) where finite values are required.
    case nonFiniteVoxels(path: String, count: Int, firstVoxel: [Int], value: Float)
    /// The header's transform (sform, qform or pixdim) gives no usable affine.
    case invalidAffine(path: String, reason: String)
    /// The output name or options ask for something the writer does not produce.
    case unsupportedOutput(path: String, reason: String)
    /// A value that the output datatype cannot hold (e.g. NaN into int16).
    case valueNotRepresentable(path: String, value: Float, datatype: VoxelType)
    /// The output could not be written.
    case cannotWrite(path: String, reason: String)

    /// The file the error is about.
    public var path: String {
        switch self {
        case let .cannotRead(path, _), let .emptyFile(path), let .notAVolume(path, _),
             let .truncatedHeader(path, _, _), let .invalidHeaderField(path, _, _, _),
             let .unsupportedDatatype(path, _), let .missingImageFile(path, _), let .missingHeaderFile(path, _),
             let .dataSizeExceedsFile(path, _, _), let .truncatedData(path, _, _), let .truncatedGzip(path),
             let .corruptGzip(path, _), let .volumeIndexOutOfRange(path, _, _),
             let .nonFiniteVoxels(path, _, _, _), let .invalidAffine(path, _), let .unsupportedOutput(path, _),
             let .valueNotRepresentable(path, _, _), let .cannotWrite(path, _):
            return path
        }
    }

    public var description: String {
        switch self {
        case let .cannotRead(path, reason): return "\(path): cannot read: \(reason)"
        case let .emptyFile(path): return "\(path): empty: there is no header to read"
        case let .notAVolume(path, reason): return "\(path): not a NIfTI or Analyze volume: \(reason)"
        case let .truncatedHeader(path, bytes, needed):
            return "\(path): truncated header: \(bytes) bytes, a header needs \(needed)"
        case let .invalidHeaderField(path, field, value, reason): return "\(path): header field \(field) = \(value): \(reason)"
        case let .unsupportedDatatype(path, code): return "\(path): unsupported datatype code \(code)"
        case let .missingImageFile(header, tried):
            return "\(header): image file not found (tried \(tried.map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: ", ")))"
        case let .missingHeaderFile(image, tried):
            return "\(image): header file not found (tried \(tried.map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: ", ")))"
        case let .dataSizeExceedsFile(path, needed, available):
            return "\(path): header describes \(needed) bytes of voxel data but the file can hold at most \(available)"
        case let .truncatedData(path, expected, available):
            return "\(path): truncated voxel data: expected \(expected) bytes, found \(available)"
        case let .truncatedGzip(path): return "\(path): truncated gzip stream (the file was cut off)"
        case let .corruptGzip(path, reason): return "\(path): corrupt gzip stream: \(reason)"
        case let .volumeIndexOutOfRange(path, index, count):
            return "\(path): volume index \(index) out of range (the file has \(count) volume\(count == 1 ? "" : "s"))"
        case let .nonFiniteVoxels(path, count, voxel, value):
            return "\(path): \(count) non-finite voxel\(count == 1 ? "" : "s"), first at (i, j, k) = "
                + "(\(voxel.map(String.init).joined(separator: ", "))): \(value)"
        case let .invalidAffine(path, reason): return "\(path): no usable affine: \(reason)"
        case let .unsupportedOutput(path, reason): return "\(path): \(reason)"
        case let .valueNotRepresentable(path, value, datatype):
            return "\(path): value \(value) cannot be stored as \(datatype)"
        case let .cannotWrite(path, reason): return "\(path): cannot write: \(reason)"
        }
    }
}
