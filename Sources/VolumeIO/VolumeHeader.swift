import Foundation

/// The header layouts this workbench reads.
public enum VolumeFormat: String, Sendable, Codable {
    case nifti1 = "NIfTI-1"
    case nifti2 = "NIfTI-2"
    /// Analyze 7.5, read as SPM2 reads it (and nibabel's `nib.load`): the SPM origin in
    /// `originator` and the scale factor in `funused1`/`funused2`.
    case analyze = "Analyze 7.5"
}

public enum ByteOrder: String, Sendable, Codable {
    case littleEndian = "little-endian"
    case bigEndian = "big-endian"
}

/// Which header fields the affine came from (nibabel's `get_best_affine` order).
public enum TransformSource: String, Sendable, Codable {
    /// `srow_x/y/z`, because `sform_code > 0`.
    case sform
    /// The quaternion, because `sform_code == 0` and `qform_code > 0`.
    case qform
    /// Neither code set: voxel sizes from `pixdim`, x flipped, centred on the grid.
    case pixdim
    /// Analyze: voxel sizes from `pixdim`, x flipped, origin from SPM's `originator` when set.
    case analyzeOrigin
}

/// `stored · slope + intercept` gives the voxel value (NIfTI `scl_slope`, `scl_inter`).
public struct LinearScaling: Sendable, Equatable, Codable {
    public var slope: Double
    public var intercept: Double

    public init(slope: Double, intercept: Double) {
        self.slope = slope
        self.intercept = intercept
    }
}

/// A parsed NIfTI-1, NIfTI-2 or Analyze 7.5 header: what the file holds and where, with
/// nibabel's load-time fixes applied (zero voxel sizes → 1, negative → absolute value,
/// `qfac` other than ±1 → 1, unknown transform codes → 0).
public struct VolumeHeader: Sendable, Equatable {
    public var format: VolumeFormat
    /// Header and voxels in separate files (`.hdr` + `.img`) rather than one `.nii`.
    public var isPair: Bool
    public var byteOrder: ByteOrder
    /// `dim[1...dim[0]]`: extents of every axis, all ≥ 1 (the first three are i, j, k).
    public var dims: [Int]
    public var datatype: VoxelType
    /// `pixdim[0...7]` (pixdim[0] is qfac for NIfTI).
    public var pixdim: [Double]
    /// Byte offset of the voxel data in the data file.
    public var voxOffset: Int
    /// nil when the file stores values unscaled (slope 0 or not finite).
    public var scaling: LinearScaling?
    /// NIfTI `qform_code` and `sform_code` (0 unknown, 1 scanner, 2 aligned, 3 Talairach,
    /// 4 MNI152, 5 other template); 0 for Analyze.
    public var qformCode: Int
    public var sformCode: Int
    /// NIfTI `dim_info` (frequency/phase/slice axes) and `xyzt_units`, kept for writing back.
    public var dimInfo: UInt8
    public var xyztUnits: UInt8
    /// NIfTI `intent_code`, `descrip`.
    public var intentCode: Int
    public var descrip: String
    /// Codes of the header extensions (e.g. 6 comment, 32 CIFTI, 4 AFNI), in file order.
    public var extensionCodes: [Int]
    /// The qform as stored (NIfTI only), whatever its code: the writer keeps it when the
    /// affine is unchanged, so a scanner-space qform survives beside an MNI sform.
    public var quaternion: QuaternionTransform?
    /// The voxel-to-world affine (nibabel's `img.affine`) and where it came from.
    public var affine: Affine
    public var affineSource: TransformSource

    /// Extents of the three spatial axes (i, j, k), 1 for absent ones.
    public var spatialShape: [Int] { (0..<3).map { $0 < dims.count ? dims[$0] : 1 } }
    /// Number of 3-D volumes: the product of `dim[4...]` (1 for a 3-D file).
    public var volumeCount: Int { dims.dropFirst(3).reduce(1, *) }
    /// Voxels in one 3-D volume.
    public var voxelsPerVolume: Int { spatialShape.reduce(1, *) }
    /// Bytes of one stored 3-D volume.
    public var bytesPerVolume: Int { voxelsPerVolume * datatype.byteCount }
    /// Bytes of all the stored voxel data (overflow was ruled out when the header was parsed).
    public var dataByteCount: Int { bytesPerVolume * volumeCount }

    /// Spatial unit from `xyzt_units` ("mm" when unset, as NIfTI readers assume).
    public var spatialUnit: String {
        switch xyztUnits & 0x07 {
        case 1: return "m"
        case 3: return "um"
        default: return "mm"
        }
    }

    /// Temporal unit from `xyzt_units`, nil when unset.
    public var temporalUnit: String? {
        switch xyztUnits & 0x38 {
        case 8: return "s"
        case 16: return "ms"
        case 24: return "us"
        case 32: return "Hz"
        case 40: return "ppm"
        case 48: return "rad/s"
        default: return nil
        }
    }
}

// MARK: - Parsing

/// Reads fields of one byte order from a header block; offsets are checked by the caller
/// (the block always holds the whole fixed-size header).
struct HeaderFields {
    let bytes: [UInt8]
    let bigEndian: Bool

    private func load<T: FixedWidthInteger>(_ offset: Int, as: T.Type) -> T {
        var value: T = 0
        withUnsafeMutableBytes(of: &value) { raw in
            for k in 0..<MemoryLayout<T>.size { raw[k] = bytes[offset + k] }
        }
        return bigEndian ? T(bigEndian: value) : T(littleEndian: value)
    }

    func int16(_ offset: Int) -> Int { Int(load(offset, as: Int16.self)) }
    func int32(_ offset: Int) -> Int { Int(load(offset, as: Int32.self)) }
    func int64(_ offset: Int) -> Int64 { load(offset, as: Int64.self) }
    func uint8(_ offset: Int) -> UInt8 { bytes[offset] }
    func float32(_ offset: Int) -> Double { Double(Float(bitPattern: load(offset, as: UInt32.self))) }
    func float64(_ offset: Int) -> Double { Double(bitPattern: load(offset, as: UInt64.self)) }

    /// A NUL-terminated (or full-length) Latin-1 string field.
    func string(_ offset: Int, length: Int) -> String {
        let field = bytes[offset..<(offset + length)]
        let text = field.prefix { $0 != 0 }
        return String(decoding: text.map { $0 < 0x80 ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
    }
}

extension VolumeHeader {
    /// Header sizes (`sizeof_hdr`) of the two layouts.
    static let nifti1Size = 348
    static let nifti2Size = 540

    /// Identifies the layout from the first four bytes (`sizeof_hdr`, in either byte order).
    static func detect(sizeofHeader bytes: [UInt8], path: String) throws -> (size: Int, bigEndian: Bool) {
        guard bytes.count == 4 else {
            if bytes.isEmpty { throw VolumeError.emptyFile(path: path) }
            throw VolumeError.truncatedHeader(path: path, bytes: bytes.count, needed: nifti1Size)
        }
        let little = Int(UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24)
        let big = Int(UInt32(bytes[3]) | UInt32(bytes[2]) << 8 | UInt32(bytes[1]) << 16 | UInt32(bytes[0]) << 24)
        for size in [nifti1Size, nifti2Size] {
            if little == size { return (size, false) }
            if big == size { return (size, true) }
        }
        throw VolumeError.notAVolume(path: path, reason: "sizeof_hdr is \(little) (little-endian) / \(big) (big-endian), expected 348 or 540")
    }

    /// Parses a whole fixed-size header block (348 or 540 bytes).
    /// - Parameters:
    ///   - singleFileName: the name says one-file NIfTI (`.nii`); a pair magic is then an error.
    ///   - pairFileName: the name says a pair header (`.hdr`); the voxels are then in the
    ///     `.img` whatever the magic says, as nibabel decides by name.
    static func parse(_ block: [UInt8], bigEndian: Bool, path: String, singleFileName: Bool, pairFileName: Bool) throws -> VolumeHeader {
        let fields = HeaderFields(bytes: block, bigEndian: bigEndian)
        if block.count == nifti2Size {
            return try parseNifti2(fields, path: path, singleFileName: singleFileName, pairFileName: pairFileName)
        }
        let magic = Array(block[344..<348])
        switch magic {
        case Array("n+1\0".utf8), Array("ni1\0".utf8):
            return try parseNifti1(fields, isPair: magic[1] == UInt8(ascii: "i") || pairFileName, path: path,
                                   singleFileName: singleFileName)
        default:
            if singleFileName {
                throw VolumeError.notAVolume(path: path, reason: "magic is \(printable(magic)), expected \"n+1\" for a .nii file")
            }
            return try parseAnalyze(fields, path: path)
        }
    }

    static func printable(_ bytes: [UInt8]) -> String {
        "\"" + bytes.map { (0x20..<0x7f).contains($0) ? String(UnicodeScalar($0)) : String(format: "\\x%02x", $0) }.joined() + "\""
    }

    private static func field(_ path: String, _ name: String, _ value: Any, _ reason: String) -> VolumeError {
        .invalidHeaderField(path: path, field: name, value: "\(value)", reason: reason)
    }

    /// `dim[0]` and `dim[1...dim[0]]`, checked: 1...7 axes, every extent ≥ 1, and the byte
    /// count of the data representable.
    private static func checkedDims(_ raw: [Int64], datatype: VoxelType, path: String) throws -> [Int] {
        let rank = raw[0]
        guard (1...7).contains(rank) else { throw field(path, "dim[0]", rank, "must be 1...7") }
        var dims: [Int] = []
        var bytes = datatype.byteCount
        for axis in 1...Int(rank) {
            let extent = raw[axis]
            guard extent >= 1, extent <= Int64(Int.max) else {
                throw field(path, "dim[\(axis)]", extent, "every axis needs at least one voxel")
            }
            let (product, overflow) = bytes.multipliedReportingOverflow(by: Int(extent))
            guard !overflow else { throw field(path, "dim", raw[1...Int(rank)].map { $0 }, "the data size overflows") }
            bytes = product
            dims.append(Int(extent))
        }
        return dims
    }

    /// nibabel's load-time fix of `pixdim[1...3]`: 0 → 1, negative → absolute value.
    private static func fixedPixdim(_ raw: [Double]) -> [Double] {
        var pixdim = raw
        for axis in 1...3 {
            if pixdim[axis] == 0 { pixdim[axis] = 1 }
            pixdim[axis] = abs(pixdim[axis])
        }
        return pixdim
    }

    /// The `vox_offset` as a byte count, checked to lie past the header for one-file NIfTI.
    private static func checkedOffset(_ value: Double, minimum: Int, path: String) throws -> Int {
        guard value.isFinite, value >= 0, value < 9.0e15 else { throw field(path, "vox_offset", value, "not a byte offset") }
        let offset = Int(value)  // nibabel truncates too
        guard offset >= minimum else {
            throw field(path, "vox_offset", offset, "inside the header (a one-file NIfTI's data starts at \(minimum) or later)")
        }
        return offset
    }

    /// nibabel treats an unknown transform code as 0.
    private static func transformCode(_ code: Int) -> Int { (0...5).contains(code) ? code : 0 }

    /// The pixdim fall-back (nibabel `shape_zoom_affine` with x flipped): voxel sizes on the
    /// diagonal, the grid centred on the world origin.
    private static func fallbackAffine(dims: [Int], pixdim: [Double]) -> Affine {
        let shape = (0..<3).map { Double($0 < dims.count ? dims[$0] : 1) }
        var zooms = (0..<3).map { $0 < dims.count ? pixdim[$0 + 1] : 1 }
        zooms[0] = -zooms[0]
        return Affine.scaling(zooms, origin: (0..<3).map { -(shape[$0] - 1) / 2 * zooms[$0] })
    }

    /// nibabel's `get_best_affine`: sform if its code is set, else qform, else the fall-back.
    /// - Parameter tolerance: how far b²+c²+d² may exceed 1: 3 ε of the header's float type.
    private static func bestAffine(sformCode: Int, sform: Affine, qformCode: Int, quaternion: QuaternionTransform,
                                   tolerance: Double, dims: [Int], pixdim: [Double], path: String) throws -> (Affine, TransformSource) {
        let (affine, source): (Affine, TransformSource)
        if sformCode > 0 {
            (affine, source) = (sform, .sform)
        } else if qformCode > 0 {
            do { (affine, source) = (try AffineGeometry.affine(from: quaternion, tolerance: tolerance), .qform) } catch {
                throw VolumeError.invalidAffine(path: path, reason: "qform: \(error)")
            }
        } else {
            (affine, source) = (fallbackAffine(dims: dims, pixdim: pixdim), .pixdim)
        }
        guard affine.isFinite else {
            throw VolumeError.invalidAffine(path: path, reason: "\(source.rawValue) holds NaN or infinity")
        }
        return (affine, source)
    }

    private static func datatype(code: Int, path: String) throws -> VoxelType {
        guard let type = VoxelType(rawValue: code) else { throw VolumeError.unsupportedDatatype(path: path, code: code) }
        return type
    }

    private static func parseNifti1(_ h: HeaderFields, isPair: Bool, path: String, singleFileName: Bool) throws -> VolumeHeader {
        if singleFileName && isPair {
            throw VolumeError.notAVolume(path: path, reason: "magic \"ni1\" marks a .hdr/.img pair, but the name is a one-file .nii")
        }
        let type = try datatype(code: h.int16(70), path: path)
        let dims = try checkedDims((0..<8).map { Int64(h.int16(40 + 2 * $0)) }, datatype: type, path: path)
        var pixdim = fixedPixdim((0..<8).map { h.float32(76 + 4 * $0) })
        if pixdim[0] != 1 && pixdim[0] != -1 { pixdim[0] = 1 }
        let slope = h.float32(112), inter = h.float32(116)
        let scaling = try niftiScaling(slope: slope, intercept: inter, path: path)
        let qformCode = transformCode(h.int16(252)), sformCode = transformCode(h.int16(254))
        let quaternion = QuaternionTransform(b: h.float32(256), c: h.float32(260), d: h.float32(264), qfac: pixdim[0],
                                             zooms: Array(pixdim[1...3]), offset: [h.float32(268), h.float32(272), h.float32(276)])
        let sform = Affine(rows: (0..<4).map { h.float32(280 + 4 * $0) }, (0..<4).map { h.float32(296 + 4 * $0) },
                           (0..<4).map { h.float32(312 + 4 * $0) })
        let (affine, source) = try bestAffine(sformCode: sformCode, sform: sform, qformCode: qformCode, quaternion: quaternion,
                                              tolerance: 3 * Double(Float.ulpOfOne), dims: dims, pixdim: pixdim, path: path)
        return VolumeHeader(
            format: .nifti1, isPair: isPair, byteOrder: h.bigEndian ? .bigEndian : .littleEndian, dims: dims, datatype: type,
            pixdim: pixdim, voxOffset: try checkedOffset(h.float32(108), minimum: isPair ? 0 : nifti1Size + 4, path: path),
            scaling: scaling, qformCode: qformCode, sformCode: sformCode, dimInfo: h.uint8(39), xyztUnits: h.uint8(123),
            intentCode: h.int16(68), descrip: h.string(148, length: 80), extensionCodes: [], quaternion: quaternion,
            affine: affine, affineSource: source)
    }

    private static func parseNifti2(_ h: HeaderFields, path: String, singleFileName: Bool, pairFileName: Bool) throws -> VolumeHeader {
        let magic = Array(h.bytes[4..<12])
        let isPair: Bool
        switch magic {
        case Array("n+2\0\r\n\u{1a}\n".utf8): isPair = pairFileName
        case Array("ni2\0\r\n\u{1a}\n".utf8): isPair = true
        default:
            throw VolumeError.notAVolume(path: path, reason: "sizeof_hdr says NIfTI-2 but the magic is \(printable(magic))")
        }
        if singleFileName && isPair {
            throw VolumeError.notAVolume(path: path, reason: "magic \"ni2\" marks a .hdr/.img pair, but the name is a one-file .nii")
        }
        let type = try datatype(code: h.int16(12), path: path)
        let dims = try checkedDims((0..<8).map { h.int64(16 + 8 * $0) }, datatype: type, path: path)
        var pixdim = fixedPixdim((0..<8).map { h.float64(104 + 8 * $0) })
        if pixdim[0] != 1 && pixdim[0] != -1 { pixdim[0] = 1 }
        let scaling = try niftiScaling(slope: h.float64(176), intercept: h.float64(184), path: path)
        let qformCode = transformCode(h.int32(344)), sformCode = transformCode(h.int32(348))
        let quaternion = QuaternionTransform(b: h.float64(352), c: h.float64(360), d: h.float64(368), qfac: pixdim[0],
                                             zooms: Array(pixdim[1...3]), offset: [h.float64(376), h.float64(384), h.float64(392)])
        let sform = Affine(rows: (0..<4).map { h.float64(400 + 8 * $0) }, (0..<4).map { h.float64(432 + 8 * $0) },
                           (0..<4).map { h.float64(464 + 8 * $0) })
        let (affine, source) = try bestAffine(sformCode: sformCode, sform: sform, qformCode: qformCode, quaternion: quaternion,
                                              tolerance: 3 * Double.ulpOfOne, dims: dims, pixdim: pixdim, path: path)
        let offset = h.int64(168)
        return VolumeHeader(
            format: .nifti2, isPair: isPair, byteOrder: h.bigEndian ? .bigEndian : .littleEndian, dims: dims, datatype: type,
            pixdim: pixdim, voxOffset: try checkedOffset(Double(offset), minimum: isPair ? 0 : nifti2Size + 4, path: path),
            scaling: scaling, qformCode: qformCode, sformCode: sformCode, dimInfo: h.uint8(524),
            xyztUnits: UInt8(truncatingIfNeeded: h.int32(500)), intentCode: h.int32(504), descrip: h.string(240, length: 80),
            extensionCodes: [], quaternion: quaternion, affine: affine, affineSource: source)
    }

    /// NIfTI scaling: none when the slope is 0 or not finite; a finite slope needs a finite
    /// intercept (nibabel raises the same error).
    private static func niftiScaling(slope: Double, intercept: Double, path: String) throws -> LinearScaling? {
        guard slope != 0, slope.isFinite else { return nil }
        guard intercept.isFinite else { throw field(path, "scl_inter", intercept, "a valid scl_slope needs a finite intercept") }
        return LinearScaling(slope: slope, intercept: intercept)
    }

    /// Analyze 7.5 as SPM2 (and nibabel's `Spm2AnalyzeHeader`) reads it.
    private static func parseAnalyze(_ h: HeaderFields, path: String) throws -> VolumeHeader {
        let code = h.int16(70)
        guard let type = VoxelType(rawValue: code), type.isAnalyzeType else {
            throw VolumeError.unsupportedDatatype(path: path, code: code)
        }
        let rawDims = (0..<8).map { Int64(h.int16(40 + 2 * $0)) }
        let dims = try checkedDims(rawDims, datatype: type, path: path)
        let pixdim = fixedPixdim((0..<8).map { h.float32(76 + 4 * $0) })
        // SPM2: scale factor in funused1 (NIfTI's scl_slope slot), intercept in funused2;
        // else the glmin/glmax → cal_min/cal_max mapping; else unscaled.
        var scaling: LinearScaling?
        let slope = h.float32(112)
        if slope.isFinite && slope != 0 {
            let inter = h.float32(116)
            scaling = LinearScaling(slope: slope, intercept: inter.isFinite ? inter : 0)
        } else {
            let unscaled = Double(h.int32(140) - h.int32(144)), scaled = h.float32(124) - h.float32(128)
            if unscaled != 0 && scaled != 0 && scaled.isFinite {
                let s = scaled / unscaled
                scaling = LinearScaling(slope: s, intercept: h.float32(128) - s * Double(h.int32(144)))
            }
        }
        // SPM99/SPM2 origin: 1-based voxel of the world origin in `originator`, used when it
        // lies plausibly near the grid; the raw dim[1...3] bound it, as in nibabel.
        let origin = (0..<3).map { Double(h.int16(253 + 2 * $0)) }
        let extents = (1...3).map { Double(rawDims[$0]) }
        let centre: [Double]
        if origin.contains(where: { $0 != 0 }) && (0..<3).allSatisfy({ origin[$0] > -extents[$0] && origin[$0] < 2 * extents[$0] }) {
            centre = origin.map { $0 - 1 }
        } else {
            centre = extents.map { ($0 - 1) / 2 }
        }
        let zooms = [-pixdim[1], pixdim[2], pixdim[3]]
        let affine = Affine.scaling(zooms, origin: (0..<3).map { -centre[$0] * zooms[$0] })
        guard affine.isFinite else { throw VolumeError.invalidAffine(path: path, reason: "pixdim holds NaN or infinity") }
        return VolumeHeader(
            format: .analyze, isPair: true, byteOrder: h.bigEndian ? .bigEndian : .littleEndian, dims: dims, datatype: type,
            pixdim: pixdim, voxOffset: try checkedOffset(h.float32(108), minimum: 0, path: path), scaling: scaling,
            qformCode: 0, sformCode: 0, dimInfo: 0, xyztUnits: 0, intentCode: 0, descrip: h.string(148, length: 80),
            extensionCodes: [], quaternion: nil, affine: affine, affineSource: .analyzeOrigin)
    }
}
