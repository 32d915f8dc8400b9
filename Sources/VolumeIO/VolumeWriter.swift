import Foundation
import TensorCore

/// How integer outputs store values that are not already integers in the type's range.
public enum OutputScaling: String, Sendable, Codable, CaseIterable {
    /// Map the finite value range onto the type's range with `scl_slope`/`scl_inter` (as
    /// nibabel does); values that fit exactly are stored unscaled.
    case automatic
    /// Store values as they are; a value the type cannot hold exactly is an error.
    case none
}

/// How to write a volume.
public struct VolumeWriteOptions: Sendable {
    /// On-disk type. float32 keeps every value; int16 and uint8 are what templates, masks and
    /// label maps usually ship as.
    public var datatype: VoxelType
    public var scaling: OutputScaling
    /// zlib level for `.nii.gz`: 1 (default, nibabel's choice) is fast; 6–9 trade time for
    /// somewhat smaller files.
    public var compressionLevel: Int

    public init(datatype: VoxelType = .float32, scaling: OutputScaling = .automatic, compressionLevel: Int = 1) {
        self.datatype = datatype
        self.scaling = scaling
        self.compressionLevel = compressionLevel
    }
}

/// Writes NIfTI-1 single files (`.nii`, `.nii.gz`), little-endian, that nibabel, FSL, ITK and
/// viewers read with the same data and affine.
///
/// Both transforms are set from the affine: the sform exactly (as Float32), and the qform as
/// its nearest rotation and voxel sizes. Codes come from the source header when there is one
/// (sform: its sform code, else its qform code, else 2 "aligned"; qform: its qform code, else
/// the sform code when the affine has no shear, else 0 "unknown"). The file appears
/// atomically (temporary name, then rename).
public enum VolumeWriter {
    public static func write(_ volume: Volume, to url: URL, options: VolumeWriteOptions = VolumeWriteOptions()) throws {
        let path = url.path
        try check(volume, options: options, path: path)
        let shape = volume.shape
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: volume.data.count * options.datatype.byteCount, alignment: 64)
        defer { raw.deallocate() }
        let scaling = try volume.data.withUnsafeBufferPointer { values in
            try encode(values, shape: shape, options: options, into: raw, path: path)
        }
        try write(volume, voxels: UnsafeRawBufferPointer(raw), frames: nil, datatype: options.datatype, scaling: scaling, options: options, to: url)
    }

    /// Checks the output name, gzip level, extents and affine before anything is written.
    private static func check(_ volume: Volume, options: VolumeWriteOptions, path: String) throws {
        let lower = path.lowercased()
        guard lower.hasSuffix(".nii.gz") || lower.hasSuffix(".nii") else {
            throw VolumeError.unsupportedOutput(path: path, reason: "the writer makes NIfTI-1 files: name the output .nii or .nii.gz")
        }
        guard (0...9).contains(options.compressionLevel) else {
            throw VolumeError.unsupportedOutput(path: path, reason: "gzip level must be 0...9, got \(options.compressionLevel)")
        }
        guard volume.shape.allSatisfy({ $0 <= Int(Int16.max) }) else {
            throw VolumeError.unsupportedOutput(path: path, reason: "NIfTI-1 holds at most 32767 voxels per axis, got \(volume.shape)")
        }
        guard volume.affine.isFinite else { throw VolumeError.invalidAffine(path: path, reason: "the affine holds NaN or infinity") }
    }

    /// Writes the header of `volume` (4-D with `frames` volumes along `dim[4]` when given) and the encoded
    /// `voxels` atomically to `url`.
    private static func write(_ volume: Volume, voxels raw: UnsafeRawBufferPointer, frames: Int?, datatype: VoxelType,
                              scaling: LinearScaling?, options: VolumeWriteOptions, to url: URL) throws {
        let path = url.path
        let compressed = path.lowercased().hasSuffix(".nii.gz")
        let block = try headerBlock(volume, datatype: datatype, scaling: scaling, frames: frames, path: path)
        do {
            try AtomicFile.write(to: url) { sink in
                if compressed {
                    let gzip = GzipWriter(sink: sink, level: options.compressionLevel)
                    try block.withUnsafeBytes { try gzip.write($0) }
                    try gzip.write(raw)
                    try gzip.finish()
                } else {
                    try block.withUnsafeBytes { try sink.write($0) }
                    try sink.write(raw)
                }
            }
        } catch let error as FileWriteError {
            if case let .cannotWrite(_, reason) = error { throw VolumeError.cannotWrite(path: path, reason: reason) }
            throw error
        } catch let error as ByteSourceError {
            throw VolumeError.cannotWrite(path: path, reason: "\(error)")
        }
    }

    /// Writes a 4-D float32 NIfTI-1 file of `frames` (each `[X, Y, Z]`, all one shape) on the
    /// grid of `affine`: frame `t` is the file's volume `t` (`dim[4]`, 4-D even for one frame),
    /// as feature maps with one channel per frame, which viewers show as a time series.
    /// - Throws: `VolumeError` for a bad name, mismatched or oversized frames, or a failed write.
    public static func write(frames: [Tensor], affine: Affine, to url: URL, compressionLevel: Int = 1) throws {
        let path = url.path
        guard let first = frames.first, first.rank == 3, frames.allSatisfy({ $0.shape == first.shape }) else {
            throw VolumeError.unsupportedOutput(path: path, reason: "a 4-D file needs at least one frame, all 3-D and of one shape")
        }
        guard frames.count <= Int(Int16.max) else {
            throw VolumeError.unsupportedOutput(path: path, reason: "NIfTI-1 holds at most 32767 frames, got \(frames.count)")
        }
        let volume = try Volume(data: first, affine: affine)
        let options = VolumeWriteOptions(datatype: .float32, compressionLevel: compressionLevel)
        try check(volume, options: options, path: path)
        let frameBytes = first.count * VoxelType.float32.byteCount
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: frameBytes * frames.count, alignment: 64)
        defer { raw.deallocate() }
        for (t, frame) in frames.enumerated() {
            let slice = UnsafeMutableRawBufferPointer(rebasing: raw[(t * frameBytes)..<((t + 1) * frameBytes)])
            frame.withUnsafeBufferPointer { _ = VoxelCodec.encode($0, shape: first.shape, type: .float32, scaling: nil, into: slice) }
        }
        try write(volume, voxels: UnsafeRawBufferPointer(raw), frames: frames.count, datatype: .float32, scaling: nil,
                  options: options, to: url)
    }

    /// Encodes `values` as `options.datatype` into `raw`; returns the scaling written to the
    /// header, nil when the values went in unscaled.
    ///
    /// Integer outputs are first encoded unscaled, checking in the same pass that every value
    /// is an integer in range (the common case: masks, labels, integer scans). Only when one is
    /// not does a second pass map the finite range onto the type's with a slope and intercept,
    /// or, with `OutputScaling.none`, the first offending value become the error.
    static func encode(_ values: UnsafeBufferPointer<Float>, shape: [Int], options: VolumeWriteOptions,
                       into raw: UnsafeMutableRawBufferPointer, path: String) throws -> LinearScaling? {
        let type = options.datatype
        let check = VoxelCodec.encode(values, shape: shape, type: type, scaling: nil, into: raw)
        guard let range = type.integerRange, check.unstorable > 0 else { return nil }
        if let index = values.firstIndex(where: { !$0.isFinite }) {
            throw VolumeError.valueNotRepresentable(path: path, value: values[index], datatype: type)
        }
        if options.scaling == .none {
            let index = values.firstIndex { !(VoxelCodec.isIntegral($0) && range.contains(Double($0))) } ?? 0
            throw VolumeError.valueNotRepresentable(path: path, value: values[index], datatype: type)
        }
        let (lo, hi) = (Double(check.low), Double(check.high))
        // The header stores Float32: round slope and intercept first, then quantise with them.
        // A range too narrow for a normal Float32 slope gets the smallest normal one (a zero
        // slope would read back as "unscaled").
        let slope = Double(max(Float(hi > lo ? (hi - lo) / (range.upperBound - range.lowerBound) : 1), .leastNormalMagnitude))
        let scaling = LinearScaling(slope: slope, intercept: Double(Float(lo - range.lowerBound * slope)))
        guard slope.isFinite, scaling.intercept.isFinite else {
            throw VolumeError.valueNotRepresentable(path: path, value: check.high, datatype: type)
        }
        VoxelCodec.encode(values, shape: shape, type: type, scaling: scaling, into: raw)
        return scaling
    }

    /// The 352 bytes before the voxels: the NIfTI-1 header and an empty extender.
    /// `frames` nil writes a 3-D file, otherwise a 4-D one of that many volumes.
    static func headerBlock(_ volume: Volume, datatype: VoxelType, scaling: LinearScaling?, frames: Int? = nil, path: String) throws -> [UInt8] {
        let affine = volume.affine
        var qform: QuaternionTransform, exact: Bool
        do { (qform, exact) = try AffineGeometry.quaternionTransform(of: affine) } catch {
            throw VolumeError.invalidAffine(path: path, reason: "cannot express it as a qform: \(error)")
        }
        let source = volume.header
        let sformCode = [source?.sformCode ?? 0, source?.qformCode ?? 0].first { $0 > 0 } ?? 2
        var qformCode = exact ? sformCode : 0
        // Unchanged geometry keeps the source's own qform (e.g. scanner space beside an MNI
        // sform) under its own code; a new affine (resampled, registered) gets its own qform.
        if let source, source.affine == affine, source.qformCode > 0, let stored = source.quaternion {
            (qform, qformCode) = (stored, source.qformCode)
        }
        let spatialUnits = (source?.xyztUnits ?? 0) & 0x07

        var block = HeaderBuilder(size: VolumeHeader.nifti1Size + 4)
        block.int32(0, 348)
        block.uint8(39, source?.dimInfo ?? 0)
        let dims = frames.map { [4] + volume.shape + [$0, 1, 1, 1] } ?? [3] + volume.shape + [1, 1, 1, 1]
        for (axis, extent) in dims.enumerated() { block.int16(40 + 2 * axis, extent) }
        block.int16(70, datatype.code)
        block.int16(72, datatype.byteCount * 8)
        let pixdim = [qform.qfac] + qform.zooms + [1, 1, 1, 1]
        for (axis, value) in pixdim.enumerated() { block.float32(76 + 4 * axis, value) }
        block.float32(108, Double(VolumeHeader.nifti1Size + 4))
        block.float32(112, scaling?.slope ?? 1)
        block.float32(116, scaling?.intercept ?? 0)
        block.uint8(123, spatialUnits == 0 ? 2 : spatialUnits)
        block.string(148, "ADWorkbench", length: 80)
        block.int16(252, qformCode)
        block.int16(254, sformCode)
        for (index, value) in [qform.b, qform.c, qform.d].enumerated() { block.float32(256 + 4 * index, value) }
        for (index, value) in qform.offset.enumerated() { block.float32(268 + 4 * index, value) }
        for row in 0..<3 {
            for column in 0..<4 { block.float32(280 + 16 * row + 4 * column, affine[row, column]) }
        }
        block.string(344, "n+1", length: 4)
        guard block.allFinite else {
            throw VolumeError.invalidAffine(path: path, reason: "its entries or voxel sizes do not fit in Float32:\n\(affine)")
        }
        return block.bytes
    }
}

/// Little-endian field writer for a header block.
struct HeaderBuilder {
    private(set) var bytes: [UInt8]
    /// False once a Float32 field received a value that overflowed (or was NaN).
    private(set) var allFinite = true

    init(size: Int) { bytes = [UInt8](repeating: 0, count: size) }

    private mutating func put<T: FixedWidthInteger>(_ offset: Int, _ value: T) {
        withUnsafeBytes(of: value.littleEndian) { raw in
            for k in 0..<raw.count { bytes[offset + k] = raw[k] }
        }
    }

    mutating func uint8(_ offset: Int, _ value: UInt8) { bytes[offset] = value }
    mutating func int16(_ offset: Int, _ value: Int) { put(offset, Int16(value)) }
    mutating func int32(_ offset: Int, _ value: Int) { put(offset, Int32(value)) }
    mutating func float32(_ offset: Int, _ value: Double) {
        allFinite = allFinite && Float(value).isFinite
        put(offset, Float(value).bitPattern)
    }
    mutating func string(_ offset: Int, _ text: String, length: Int) {
        for (k, byte) in text.utf8.prefix(length).enumerated() { bytes[offset + k] = byte }
    }
}
