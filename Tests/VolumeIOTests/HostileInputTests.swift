import Foundation
import Testing
import TensorCore
import TestSupport
@testable import VolumeIO

/// Hostile and damaged volume files: thousands of seeded header mutations (bit flips, absurd
/// field values in both byte orders, truncation, offsets past the end, wrong magic, missing
/// image files, damaged gzip) must each give a typed `VolumeError` or a valid volume whose
/// voxels fit in the file. No crash, no trap, no allocation beyond what the file could hold.
@Suite struct HostileInputTests {
    static let fixtures = VolumeFixtures.volumes

    static func fixture(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: fixtures.appendingPathComponent(path)))
    }

    static let int16Nifti1 = "generated/dtype_int16_le.nii"  // 7x6x5 int16, vox_offset 352
    static let float32Nifti1BE = "generated/dtype_float32_be.nii"  // 7x6x5 float32, big-endian
    static let fourDGzip = "generated/four_d_int16.nii.gz"  // 10x9x8x3 int16, extension, vox_offset 432
    static let nifti2Single = "generated/nifti2_single.nii"  // 11x9x7 float32, vox_offset 544
    static let analyzeHeader = "shared-copies/nifti-edge-cases/generated/anatomical_analyze75.hdr"  // 33x41x25 int16
    static let analyzeImage = "shared-copies/nifti-edge-cases/generated/anatomical_analyze75.img"

    static func write(_ bytes: [UInt8], to url: URL) throws { try Data(bytes).write(to: url) }

    static func fileSize(_ url: URL) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? NSNumber)?.intValue ?? 0
    }

    // MARK: Byte-level field access

    static func put<T: FixedWidthInteger>(_ value: T, at offset: Int, bigEndian: Bool, in bytes: inout [UInt8]) {
        withUnsafeBytes(of: bigEndian ? value.bigEndian : value.littleEndian) { raw in
            for k in 0..<raw.count where offset + k < bytes.count { bytes[offset + k] = raw[k] }
        }
    }

    static func get<T: FixedWidthInteger>(_: T.Type, at offset: Int, bigEndian: Bool, in bytes: [UInt8]) -> T? {
        guard offset + MemoryLayout<T>.size <= bytes.count else { return nil }
        var value: T = 0
        withUnsafeMutableBytes(of: &value) { raw in
            for k in 0..<raw.count { raw[k] = bytes[offset + k] }
        }
        return bigEndian ? T(bigEndian: value) : T(littleEndian: value)
    }

    static func putFloat32(_ value: Float, at offset: Int, bigEndian: Bool, in bytes: inout [UInt8]) {
        put(value.bitPattern, at: offset, bigEndian: bigEndian, in: &bytes)
    }

    static func putFloat64(_ value: Double, at offset: Int, bigEndian: Bool, in bytes: inout [UInt8]) {
        put(value.bitPattern, at: offset, bigEndian: bigEndian, in: &bytes)
    }

    enum Width {
        case int16, int32, int64, float32, float64
        case bytes(Int)
    }

    struct Field {
        let name: String
        let offset: Int
        let width: Width
        init(_ name: String, _ offset: Int, _ width: Width) {
            (self.name, self.offset, self.width) = (name, offset, width)
        }
    }

    enum Format { case nifti1, nifti2, analyze }

    /// What a mutator needs to know about one base file.
    struct Layout {
        let format: Format
        let bigEndian: Bool
        /// The data is in the same file as the header (`.nii`) rather than a `.img`.
        var singleFile: Bool { format != .analyze }
        var headerSize: Int { format == .nifti2 ? 540 : 348 }
        var fields: [Field] { format == .nifti2 ? HostileInputTests.nifti2Fields : HostileInputTests.nifti1Fields }
    }

    /// NIfTI-1 (and Analyze 7.5, same offsets; glmax/glmin/originator matter for Analyze).
    static let nifti1Fields: [Field] =
        [Field("sizeof_hdr", 0, .int32), Field("dim_info", 39, .bytes(1))]
        + (0..<8).map { Field("dim[\($0)]", 40 + 2 * $0, .int16) }
        + [Field("intent_code", 68, .int16), Field("datatype", 70, .int16), Field("bitpix", 72, .int16)]
        + (0..<8).map { Field("pixdim[\($0)]", 76 + 4 * $0, .float32) }
        + [Field("vox_offset", 108, .float32), Field("scl_slope", 112, .float32), Field("scl_inter", 116, .float32),
           Field("xyzt_units", 123, .bytes(1)), Field("cal_max", 124, .float32), Field("cal_min", 128, .float32),
           Field("glmax", 140, .int32), Field("glmin", 144, .int32),
           Field("qform_code", 252, .int16), Field("originator[0]", 253, .int16), Field("sform_code", 254, .int16),
           Field("originator[1]", 255, .int16), Field("quatern_b", 256, .float32), Field("originator[2]", 257, .int16),
           Field("quatern_c", 260, .float32), Field("quatern_d", 264, .float32), Field("qoffset_x", 268, .float32),
           Field("qoffset_y", 272, .float32), Field("qoffset_z", 276, .float32)]
        + (0..<12).map { Field("srow[\($0)]", 280 + 4 * $0, .float32) }
        + [Field("magic", 344, .bytes(4))]

    static let nifti2Fields: [Field] =
        [Field("sizeof_hdr", 0, .int32), Field("magic", 4, .bytes(8)), Field("datatype", 12, .int16), Field("bitpix", 14, .int16)]
        + (0..<8).map { Field("dim[\($0)]", 16 + 8 * $0, .int64) }
        + (0..<8).map { Field("pixdim[\($0)]", 104 + 8 * $0, .float64) }
        + [Field("vox_offset", 168, .int64), Field("scl_slope", 176, .float64), Field("scl_inter", 184, .float64),
           Field("cal_max", 192, .float64), Field("cal_min", 200, .float64),
           Field("qform_code", 344, .int32), Field("sform_code", 348, .int32),
           Field("quatern_b", 352, .float64), Field("quatern_c", 360, .float64), Field("quatern_d", 368, .float64),
           Field("qoffset_x", 376, .float64), Field("qoffset_y", 384, .float64), Field("qoffset_z", 392, .float64)]
        + (0..<12).map { Field("srow[\($0)]", 400 + 8 * $0, .float64) }
        + [Field("xyzt_units", 500, .int32), Field("intent_code", 504, .int32), Field("dim_info", 524, .bytes(1))]

    static let integerSpecials: [Int64] = [
        0, -1, 1, 2, 3, 4, 7, 8, 16, 255, 256, 348, 352, 540, 544, 32767, -32768, 32768, 65535,
        Int64(Int32.max), Int64(Int32.min), 1 << 31, 1 << 32, 1 << 40, 1 << 62, Int64.max, Int64.min,
    ]
    static let floatSpecials: [Double] = [
        0, -0.0, 1, -1, 0.5, 2, 352, 544, 1e-30, -1e-30, 1e30, -1e30, 2_147_483_648, 9e15, 1e20,
        .nan, .infinity, -.infinity, Double(Float.greatestFiniteMagnitude), Double(Float.leastNonzeroMagnitude),
        .greatestFiniteMagnitude,
    ]

    // MARK: Mutations

    /// One mutated copy of a base file and, when the outcome is certain, the outcomes allowed
    /// (`VolumeError` case names or "success").
    struct Mutant {
        var bytes: [UInt8]
        var description: String
        var expected: Set<String>? = nil
    }

    static func pick<T>(_ values: [T], _ rng: inout Xoshiro256StarStar) -> T {
        values[Int(rng.next() % UInt64(values.count))]
    }

    static func below(_ bound: Int, _ rng: inout Xoshiro256StarStar) -> Int {
        bound <= 0 ? 0 : Int(rng.next() % UInt64(bound))
    }

    /// Writes an absurd value into `field`, in the file's byte order or the other one.
    static func writeField(_ field: Field, layout: Layout, bytes: inout [UInt8], rng: inout Xoshiro256StarStar) -> String {
        let swapped = rng.next() % 4 == 0
        let order = layout.bigEndian != swapped
        let integer: Int64 = rng.next() % 4 == 0 ? Int64(bitPattern: rng.next()) : pick(integerSpecials, &rng)
        let real: Double = rng.next() % 5 == 0 ? Double(bitPattern: rng.next()) : pick(floatSpecials, &rng)
        let orderName = swapped ? "swapped" : "native"
        switch field.width {
        case .int16:
            put(Int16(truncatingIfNeeded: integer), at: field.offset, bigEndian: order, in: &bytes)
            return "\(field.name) = \(Int16(truncatingIfNeeded: integer)) (int16, \(orderName))"
        case .int32:
            put(Int32(truncatingIfNeeded: integer), at: field.offset, bigEndian: order, in: &bytes)
            return "\(field.name) = \(Int32(truncatingIfNeeded: integer)) (int32, \(orderName))"
        case .int64:
            put(integer, at: field.offset, bigEndian: order, in: &bytes)
            return "\(field.name) = \(integer) (int64, \(orderName))"
        case .float32:
            let value = rng.next() % 5 == 0 ? Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) : Float(real)
            putFloat32(value, at: field.offset, bigEndian: order, in: &bytes)
            return "\(field.name) = \(value) (float32, \(orderName))"
        case .float64:
            putFloat64(real, at: field.offset, bigEndian: order, in: &bytes)
            return "\(field.name) = \(real) (float64, \(orderName))"
        case let .bytes(count):
            let choices: [[UInt8]] = [
                Array("n+1\0".utf8), Array("ni1\0".utf8), Array("n+2\0\r\n\u{1a}\n".utf8), Array("ni2\0\r\n\u{1a}\n".utf8),
                [UInt8](repeating: 0, count: count), (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) },
            ]
            let value = rng.next() % 3 == 0 ? pick(choices, &rng) : (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            for k in 0..<count where field.offset + k < bytes.count { bytes[field.offset + k] = k < value.count ? value[k] : 0 }
            return "\(field.name) = \(value.prefix(count)) (bytes)"
        }
    }

    /// The outcome a single field write makes certain, judged from the value as the reader
    /// will see it (in the file's byte order). nil when several outcomes are possible.
    static func certainOutcome(after field: Field, layout: Layout, original: [UInt8], bytes: [UInt8],
                               dataFileSize: Int, compressed: Bool) -> Set<String>? {
        let be = layout.bigEndian
        let rank: Int
        let dataBytes: Int
        switch layout.format {
        case .nifti2:
            rank = Int(get(Int64.self, at: 16, bigEndian: be, in: original)!)
            dataBytes = 4 * (1...rank).reduce(1) { $0 * Int(get(Int64.self, at: 16 + 8 * $1, bigEndian: be, in: original)!) }
        case .nifti1, .analyze:
            rank = Int(get(Int16.self, at: 40, bigEndian: be, in: original)!)
            let type = VoxelType(rawValue: Int(get(Int16.self, at: 70, bigEndian: be, in: original)!))!
            dataBytes = type.byteCount * (1...rank).reduce(1) { $0 * Int(get(Int16.self, at: 40 + 2 * $1, bigEndian: be, in: original)!) }
        }
        func integer(_ offset: Int) -> Int64 {
            switch field.width {
            case .int16: return Int64(get(Int16.self, at: offset, bigEndian: be, in: bytes)!)
            case .int32: return Int64(get(Int32.self, at: offset, bigEndian: be, in: bytes)!)
            default: return get(Int64.self, at: offset, bigEndian: be, in: bytes)!
            }
        }
        switch field.name {
        case "sizeof_hdr":
            let little = get(UInt32.self, at: 0, bigEndian: false, in: bytes)!, big = get(UInt32.self, at: 0, bigEndian: true, in: bytes)!
            return [348, 540].contains(little) || [348, 540].contains(big) ? nil : ["notAVolume"]
        case "dim[0]":
            return (1...7).contains(integer(field.offset)) ? nil : ["invalidHeaderField"]
        case let name where name.hasPrefix("dim["):
            let axis = Int(name.dropFirst(4).dropLast())!
            return axis <= rank && integer(field.offset) < 1 ? ["invalidHeaderField"] : nil
        case "datatype":
            let code = Int(integer(field.offset))
            guard let type = VoxelType(rawValue: code), layout.format != .analyze || type.isAnalyzeType else {
                return ["unsupportedDatatype"]
            }
            return nil
        case "magic" where layout.format == .nifti1:
            return Array(bytes[344..<348]) == Array("n+1\0".utf8) ? ["success"] : ["notAVolume"]
        case "magic" where layout.format == .nifti2:
            return Array(bytes[4..<12]) == Array("n+2\0\r\n\u{1a}\n".utf8) ? ["success"] : ["notAVolume"]
        case "vox_offset":
            let value: Double
            if layout.format == .nifti2 {
                value = Double(get(Int64.self, at: 168, bigEndian: be, in: bytes)!)
            } else {
                value = Double(Float(bitPattern: get(UInt32.self, at: 108, bigEndian: be, in: bytes)!))
            }
            guard value.isFinite, value >= 0, value < 9e15 else { return ["invalidHeaderField"] }
            let offset = Int(value)
            if layout.singleFile && offset < layout.headerSize + 4 { return ["invalidHeaderField"] }
            if offset + dataBytes > dataFileSize {
                return compressed ? ["truncatedData", "dataSizeExceedsFile"] : ["truncatedData"]
            }
            return nil
        default:
            return nil
        }
    }

    /// One seeded mutation of a header-bearing file (the `.nii`, the decompressed `.nii.gz`
    /// content, or an Analyze `.hdr`). `dataFileSize`: bytes of the file holding the voxels.
    static func mutate(_ original: [UInt8], layout: Layout, dataFileSize: Int, compressed: Bool,
                       rng: inout Xoshiro256StarStar) -> Mutant {
        var bytes = original
        let roll = below(100, &rng)
        let headerEnd = min(original.count, layout.headerSize)
        func flipBits() -> String {
            // Mostly the fixed header; sometimes the extension area and first voxels too.
            let span = rng.next() % 8 == 0 ? min(bytes.count, layout.headerSize + 200) : headerEnd
            let count = 1 + below(4, &rng)
            let bits = (0..<count).map { _ in below(span * 8, &rng) }
            for bit in bits { bytes[bit / 8] ^= UInt8(1 << (bit % 8)) }
            return "flip bits \(bits)"
        }
        func fieldWrite() -> (String, Field) {
            let field = pick(layout.fields, &rng)
            return (writeField(field, layout: layout, bytes: &bytes, rng: &rng), field)
        }
        switch roll {
        case 0..<30:
            return Mutant(bytes: bytes, description: flipBits())
        case 30..<62:
            let (description, field) = fieldWrite()
            let expected = certainOutcome(after: field, layout: layout, original: original, bytes: bytes,
                                          dataFileSize: dataFileSize, compressed: compressed)
            return Mutant(bytes: bytes, description: description, expected: expected)
        case 62..<70:
            // Truncation: half the time inside the header.
            let length = rng.next() % 2 == 0 ? below(headerEnd, &rng) : below(original.count, &rng)
            let expected: Set<String>
            switch length {
            case 0: expected = ["emptyFile"]
            case ..<layout.headerSize: expected = ["truncatedHeader"]
            default: expected = ["truncatedData"]
            }
            return Mutant(bytes: Array(original.prefix(length)), description: "truncate to \(length) of \(original.count)", expected: expected)
        case 70..<75:
            let past = dataFileSize + 1 + below(1 << 20, &rng)
            if layout.format == .nifti2 {
                put(Int64(past), at: 168, bigEndian: layout.bigEndian, in: &bytes)
            } else {
                putFloat32(Float(past), at: 108, bigEndian: layout.bigEndian, in: &bytes)
            }
            return Mutant(bytes: bytes, description: "vox_offset \(past) past the end (\(dataFileSize) bytes)",
                          expected: compressed ? ["truncatedData", "dataSizeExceedsFile"] : ["truncatedData"])
        case 75..<79:
            guard layout.format != .analyze else { return Mutant(bytes: bytes, description: flipBits()) }
            let (offset, length) = layout.format == .nifti2 ? (4, 8) : (344, 4)
            repeat {
                for k in offset..<(offset + length) { bytes[k] = UInt8(truncatingIfNeeded: rng.next()) }
            } while Array(bytes[offset..<(offset + length)]) == Array(original[offset..<(offset + length)])
            return Mutant(bytes: bytes, description: "wrong magic \(Array(bytes[offset..<(offset + length)]))", expected: ["notAVolume"])
        case 79..<81:
            return Mutant(bytes: [], description: "zero bytes", expected: ["emptyFile"])
        case 81..<88:
            // Plausible dimensions: a different shape over the same bytes, or more than the file holds.
            let rank = 1 + below(5, &rng)
            let extents = (0..<rank).map { _ in 1 + below(14, &rng) }
            let be = layout.bigEndian
            let byteCount: Int
            if layout.format == .nifti2 {
                put(Int64(rank), at: 16, bigEndian: be, in: &bytes)
                for (axis, extent) in extents.enumerated() { put(Int64(extent), at: 24 + 8 * axis, bigEndian: be, in: &bytes) }
                byteCount = 4
            } else {
                put(Int16(rank), at: 40, bigEndian: be, in: &bytes)
                for (axis, extent) in extents.enumerated() { put(Int16(extent), at: 42 + 2 * axis, bigEndian: be, in: &bytes) }
                byteCount = VoxelType(rawValue: Int(get(Int16.self, at: 70, bigEndian: be, in: original)!))!.byteCount
            }
            let offset: Int
            if layout.format == .nifti2 {
                offset = Int(get(Int64.self, at: 168, bigEndian: be, in: original)!)
            } else {
                offset = Int(Float(bitPattern: get(UInt32.self, at: 108, bigEndian: be, in: original)!))
            }
            let fits = offset + extents.reduce(byteCount, *) <= dataFileSize
            return Mutant(bytes: bytes, description: "dims \(extents)", expected: fits ? ["success"] : ["truncatedData"])
        default:
            let steps = 2 + below(3, &rng)
            let parts = (0..<steps).map { _ in rng.next() % 2 == 0 ? flipBits() : fieldWrite().0 }
            return Mutant(bytes: bytes, description: parts.joined(separator: "; "))
        }
    }

    /// One seeded mutation of the raw bytes of a gzip file (header, deflate data, trailer).
    static func mutateGzip(_ original: [UInt8], rng: inout Xoshiro256StarStar) -> Mutant {
        var bytes = original
        let roll = below(100, &rng)
        switch roll {
        case 0..<45:
            // 1-4 bit flips: in the 10-byte gzip header, the deflate data, or the trailer.
            let count = 1 + below(4, &rng)
            var places: [Int] = []
            for _ in 0..<count {
                let region = below(10, &rng)
                let byte: Int
                switch region {
                case 0..<3: byte = below(10, &rng)
                case 3..<8: byte = 10 + below(original.count - 18, &rng)
                default: byte = original.count - 8 + below(8, &rng)
                }
                bytes[byte] ^= UInt8(1 << below(8, &rng))
                places.append(byte)
            }
            return Mutant(bytes: bytes, description: "gzip: flip bits in bytes \(places)")
        case 45..<70:
            let length = below(original.count, &rng)
            let expected: Set<String> = length == 0 ? ["emptyFile"] : length == 1 ? ["truncatedHeader"] : ["truncatedGzip"]
            return Mutant(bytes: Array(original.prefix(length)), description: "gzip: truncate to \(length) of \(original.count)", expected: expected)
        case 70..<80:
            let byte = original.count - 8 + below(4, &rng)
            bytes[byte] ^= UInt8(1 + below(255, &rng))
            return Mutant(bytes: bytes, description: "gzip: CRC-32 byte \(byte) changed", expected: ["corruptGzip"])
        case 80..<85:
            let byte = original.count - 4 + below(4, &rng)
            bytes[byte] ^= UInt8(1 + below(255, &rng))
            return Mutant(bytes: bytes, description: "gzip: ISIZE byte \(byte) changed", expected: ["corruptGzip"])
        case 85..<90:
            let tail = (0..<(1 + below(600, &rng))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let safeTail = tail[0] == 0x1f ? [0] + tail : tail
            return Mutant(bytes: bytes + safeTail, description: "gzip: \(safeTail.count) trailing garbage bytes", expected: ["success"])
        case 90..<94:
            return Mutant(bytes: bytes + original, description: "gzip: two concatenated members", expected: ["success"])
        default:
            // A run of bytes overwritten inside the deflate data.
            let start = 10 + below(original.count - 18, &rng)
            let length = 1 + below(64, &rng)
            let value = UInt8(truncatingIfNeeded: rng.next())
            for k in start..<min(start + length, original.count) { bytes[k] = value }
            let changed = bytes != original
            return Mutant(bytes: bytes, description: "gzip: \(length) bytes from \(start) set to \(value)",
                          expected: changed ? nil : ["success"])
        }
    }

    // MARK: Probing one file

    /// Outcome counts: "success" or a `VolumeError` case name.
    struct Tally {
        var counts: [String: Int] = [:]
        var mutants = 0
        var successes: Int { counts["success", default: 0] }
        var errors: Int { counts.filter { $0.key != "success" }.values.reduce(0, +) }
        var errorKinds: Int { counts.keys.filter { $0 != "success" }.count }
        mutating func add(_ outcome: String) { counts[outcome, default: 0] += 1 }
        var summary: String { counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") }
    }

    static func caseName(_ error: VolumeError) -> String {
        Mirror(reflecting: error).children.first?.label ?? "\(error)"
    }

    /// Reads `url` as every public entry point does and checks the contract: a `VolumeError`
    /// naming the file, or a valid 3-D volume whose stored bytes fit in the data file.
    /// - Parameters:
    ///   - dataURL: the file holding the voxels (the `.img` of a pair; `url` otherwise).
    ///   - expected: the outcomes allowed, when certain.
    ///   - baseline: volumes (by index) a success must reproduce exactly.
    static func probe(_ url: URL, dataURL: URL? = nil, mutant: Mutant, baseline: [Int: Volume]? = nil,
                      rng: inout Xoshiro256StarStar, tally: inout Tally) {
        tally.mutants += 1
        let dataFile = dataURL ?? url
        let dataSize = fileSize(dataFile)
        let head = (try? FileHandle(forReadingFrom: dataFile)).flatMap { handle -> Data? in
            defer { try? handle.close() }
            return try? handle.read(upToCount: 2)
        }
        let compressed = head.map { [UInt8]($0) == [0x1f, 0x8b] } ?? false
        let bound = compressed ? GzipByteSource.maximumExpansion * dataSize : dataSize
        let context = "\(mutant.description) [\(url.lastPathComponent)]"

        func checkError(_ error: VolumeError, _ what: String) {
            #expect(error.path == url.path || error.path == dataFile.path, "\(context): \(what) error names \(error.path)")
        }

        var header: VolumeHeader?
        do {
            header = try VolumeReader.readHeader(url)
        } catch let error as VolumeError {
            checkError(error, "readHeader")
        } catch {
            Issue.record("\(context): readHeader threw \(type(of: error)), not VolumeError: \(error)")
        }

        let policy = pick(NonFinitePolicy.allCases, &rng)
        var indices = [0]
        if let header, header.volumeCount > 1, rng.next() % 2 == 0 { indices.append(header.volumeCount - 1) }
        var readSucceeded = false
        for index in indices {
            do {
                let volume = try VolumeReader.read(url, options: VolumeReadOptions(volumeIndex: index, nonFinite: policy))
                tally.add("success")
                readSucceeded = true
                let stored = volume.header
                #expect(stored != nil, "\(context): a read volume keeps its header")
                guard let stored else { continue }
                #expect(volume.data.count > 0, "\(context): empty volume")
                #expect(volume.shape.count == 3 && volume.shape == stored.spatialShape, "\(context): shape \(volume.shape)")
                #expect(volume.data.count * stored.datatype.byteCount <= bound,
                        "\(context): \(volume.data.count) voxels of \(stored.datatype) from a \(dataSize)-byte file")
                #expect(stored.dataByteCount <= bound, "\(context): header promises \(stored.dataByteCount) bytes, file \(dataSize)")
                #expect(volume.affine.isFinite, "\(context): affine not finite")
                if policy == .reject || policy == .zero {
                    #expect(volume.data.scalars.allSatisfy { $0.isFinite }, "\(context): non-finite voxels under \(policy)")
                }
                if let expected = mutant.expected {
                    #expect(expected.contains("success"), "\(context): read succeeded, expected \(expected.sorted())")
                }
                if let baseline, let reference = baseline[index], policy == .keep || policy == .reject {
                    #expect(stored == reference.header, "\(context): a successful read of damaged gzip gave another header")
                    #expect(volume.data.scalars == reference.data.scalars, "\(context): a successful read of damaged gzip gave other voxels")
                }
            } catch let error as VolumeError {
                let name = caseName(error)
                tally.add(name)
                checkError(error, "read")
                if let expected = mutant.expected {
                    #expect(expected.contains(name), "\(context): got \(error), expected \(expected.sorted())")
                }
            } catch {
                Issue.record("\(context): read threw \(type(of: error)), not VolumeError: \(error)")
            }
        }

        let summary = VolumeSummary.inspect(url)
        #expect((summary.error == nil) == (summary.format != nil), "\(context): summary half-filled")
        if readSucceeded && policy == .keep {
            #expect(summary.error == nil, "\(context): read succeeded but inspect failed: \(summary.error ?? "")")
        }
    }

    /// Checks the tallies make sense: the mutations found both readable and unreadable files.
    static func expectMix(_ tally: Tally, name: String, minimumSuccessShare: Double = 0.05, minimumErrorShare: Double = 0.2) {
        let reads = tally.successes + tally.errors
        print("HostileInputTests \(name): \(tally.mutants) mutants, \(reads) reads: \(tally.summary)")
        #expect(tally.mutants >= 500, "\(name): \(tally.mutants) mutants")
        #expect(Double(tally.successes) >= minimumSuccessShare * Double(reads), "\(name): too few successes: \(tally.summary)")
        #expect(Double(tally.errors) >= minimumErrorShare * Double(reads), "\(name): too few errors: \(tally.summary)")
        #expect(tally.errorKinds >= 3, "\(name): error kinds \(tally.summary)")
    }

    // MARK: Seeded mutation runs

    /// Plain NIfTI-1 `.nii`, little- and big-endian.
    @Test(arguments: [(HostileInputTests.int16Nifti1, false, UInt64(101)), (HostileInputTests.float32Nifti1BE, true, UInt64(102))])
    func mutatedNifti1SingleFile(base: String, bigEndian: Bool, seed: UInt64) throws {
        let original = try Self.fixture(base)
        let layout = Layout(format: .nifti1, bigEndian: bigEndian)
        var rng = Xoshiro256StarStar(seed: seed)
        var tally = Tally()
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("mutant.nii")
            for _ in 0..<900 {
                let mutant = Self.mutate(original, layout: layout, dataFileSize: original.count, compressed: false, rng: &rng)
                try Self.write(mutant.bytes, to: url)
                Self.probe(url, mutant: mutant, rng: &rng, tally: &tally)
            }
        }
        Self.expectMix(tally, name: base)
    }

    /// NIfTI-1 `.nii.gz` (4-D, with an extension): the decompressed bytes mutated, then
    /// gzipped again by `GzipWriter`.
    @Test func mutatedNifti1GzipContent() throws {
        let gzURL = Self.fixtures.appendingPathComponent(Self.fourDGzip)
        let content = try decompressedBytes(gzURL)
        #expect(content.count == 432 + 10 * 9 * 8 * 3 * 2)
        let layout = Layout(format: .nifti1, bigEndian: false)
        var rng = Xoshiro256StarStar(seed: 201)
        var tally = Tally()
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("mutant.nii.gz")
            for _ in 0..<600 {
                // The capacity check uses the compressed size, so the certain outcomes for
                // offsets past the end allow both truncation errors.
                let mutant = Self.mutate(content, layout: layout, dataFileSize: content.count, compressed: true, rng: &rng)
                try writeGzip(mutant.bytes, to: url)
                Self.probe(url, mutant: mutant, rng: &rng, tally: &tally)
            }
        }
        Self.expectMix(tally, name: "\(Self.fourDGzip) (content)")
    }

    /// NIfTI-1 `.nii.gz`: the compressed bytes themselves damaged. A success must give
    /// exactly the original volume (the CRC-32 covers the content).
    @Test func mutatedNifti1GzipBytes() throws {
        let gzURL = Self.fixtures.appendingPathComponent(Self.fourDGzip)
        let original = try Self.fixture(Self.fourDGzip)
        let baseline = [
            0: try VolumeReader.read(gzURL, options: VolumeReadOptions(volumeIndex: 0, nonFinite: .keep)),
            2: try VolumeReader.read(gzURL, options: VolumeReadOptions(volumeIndex: 2, nonFinite: .keep)),
        ]
        var rng = Xoshiro256StarStar(seed: 301)
        var tally = Tally()
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("mutant.nii.gz")
            for _ in 0..<700 {
                let mutant = Self.mutateGzip(original, rng: &rng)
                try Self.write(mutant.bytes, to: url)
                Self.probe(url, mutant: mutant, baseline: baseline, rng: &rng, tally: &tally)
            }
        }
        Self.expectMix(tally, name: "\(Self.fourDGzip) (compressed bytes)")
        #expect(tally.counts["truncatedGzip", default: 0] > 50, "\(tally.summary)")
        #expect(tally.counts["corruptGzip", default: 0] > 50, "\(tally.summary)")
    }

    /// NIfTI-2 single file.
    @Test func mutatedNifti2SingleFile() throws {
        let original = try Self.fixture(Self.nifti2Single)
        let layout = Layout(format: .nifti2, bigEndian: false)
        var rng = Xoshiro256StarStar(seed: 401)
        var tally = Tally()
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("mutant.nii")
            for _ in 0..<1000 {
                let mutant = Self.mutate(original, layout: layout, dataFileSize: original.count, compressed: false, rng: &rng)
                try Self.write(mutant.bytes, to: url)
                Self.probe(url, mutant: mutant, rng: &rng, tally: &tally)
            }
        }
        Self.expectMix(tally, name: Self.nifti2Single)
    }

    /// Analyze 7.5 `.hdr`/`.img`: the header mutated; sometimes the image deleted or cut.
    @Test func mutatedAnalyzePair() throws {
        let header = try Self.fixture(Self.analyzeHeader)
        let image = try Self.fixture(Self.analyzeImage)
        let layout = Layout(format: .analyze, bigEndian: false)
        var rng = Xoshiro256StarStar(seed: 501)
        var tally = Tally()
        try withTemporaryDirectory { directory in
            let hdr = directory.appendingPathComponent("mutant.hdr"), img = directory.appendingPathComponent("mutant.img")
            try Self.write(image, to: img)
            var imageIntact = true
            for _ in 0..<800 {
                var mutant: Mutant
                let roll = Self.below(100, &rng)
                if roll < 6 {
                    mutant = Mutant(bytes: header, description: ".img deleted", expected: ["missingImageFile"])
                    try? FileManager.default.removeItem(at: img)
                    imageIntact = false
                } else if roll < 12 {
                    let length = Self.below(image.count, &rng)
                    mutant = Mutant(bytes: header, description: ".img truncated to \(length)", expected: ["truncatedData"])
                    try Self.write(Array(image.prefix(length)), to: img)
                    imageIntact = false
                } else {
                    if !imageIntact {
                        try Self.write(image, to: img)
                        imageIntact = true
                    }
                    mutant = Self.mutate(header, layout: layout, dataFileSize: image.count, compressed: false, rng: &rng)
                }
                try Self.write(mutant.bytes, to: hdr)
                Self.probe(hdr, dataURL: img, mutant: mutant, rng: &rng, tally: &tally)
            }
        }
        Self.expectMix(tally, name: Self.analyzeHeader)
        #expect(tally.counts["missingImageFile", default: 0] > 10, "\(tally.summary)")
    }

    // MARK: Explicit cases

    /// `dtype_int16_le.nii` with `edit` applied, written to `directory/name`.
    static func editedNifti1(_ directory: URL, _ name: String = "edited.nii", gzip: Bool = false,
                             _ edit: (inout [UInt8]) -> Void) throws -> URL {
        var bytes = try fixture(int16Nifti1)
        edit(&bytes)
        let url = directory.appendingPathComponent(name)
        if gzip { try writeGzip(bytes, to: url) } else { try write(bytes, to: url) }
        return url
    }

    static func setNifti1Dims(_ dims: [Int], in bytes: inout [UInt8]) {
        for axis in 0..<8 { put(Int16(truncatingIfNeeded: axis < dims.count ? dims[axis] : 1), at: 40 + 2 * axis, bigEndian: false, in: &bytes) }
    }

    static func editedNifti2(_ directory: URL, _ edit: (inout [UInt8]) -> Void) throws -> URL {
        var bytes = try fixture(nifti2Single)
        edit(&bytes)
        let url = directory.appendingPathComponent("edited2.nii")
        try write(bytes, to: url)
        return url
    }

    static func setNifti2Dims(_ dims: [Int64], in bytes: inout [UInt8]) {
        for axis in 0..<8 { put(axis < dims.count ? dims[axis] : 1, at: 16 + 8 * axis, bigEndian: false, in: &bytes) }
    }

    /// The error `read` throws, or a recorded issue.
    static func readError(_ url: URL, options: VolumeReadOptions = VolumeReadOptions(), sourceLocation: SourceLocation = #_sourceLocation) -> VolumeError? {
        do {
            let volume = try VolumeReader.read(url, options: options)
            Issue.record("\(url.lastPathComponent): read a \(volume.shape) volume, expected an error", sourceLocation: sourceLocation)
        } catch let error as VolumeError {
            return error
        } catch {
            Issue.record("\(url.lastPathComponent): \(type(of: error)) is not a VolumeError: \(error)", sourceLocation: sourceLocation)
        }
        return nil
    }

    /// The `field` of an `.invalidHeaderField` error, nil for other errors.
    static func invalidField(_ error: VolumeError?) -> String? {
        if case let .invalidHeaderField(_, field, _, _)? = error { return field }
        return nil
    }

    @Test func axesOf32767InNifti1() throws {
        try withTemporaryDirectory { directory in
            // 32767³ int16 = 7.0e13 bytes: representable, so the check against the file applies.
            let cube = try Self.editedNifti1(directory) { Self.setNifti1Dims([3, 32767, 32767, 32767], in: &$0) }
            let cubeBytes = 32767 * 32767 * 32767 * 2
            #expect(Self.readError(cube) == .truncatedData(path: cube.path, expectedBytes: cubeBytes, availableBytes: 772 - 352))
            // 4 axes: 2.3e18 bytes still fits in Int.
            let four = try Self.editedNifti1(directory) { Self.setNifti1Dims([4, 32767, 32767, 32767, 32767], in: &$0) }
            #expect(Self.readError(four) == .truncatedData(path: four.path, expectedBytes: cubeBytes * 32767, availableBytes: 420))
            // 7 axes: 2 · 32767⁷ ≈ 8e31 overflows: rejected while parsing the dims.
            let seven = try Self.editedNifti1(directory) { Self.setNifti1Dims([7] + [Int](repeating: 32767, count: 7), in: &$0) }
            #expect(Self.invalidField(Self.readError(seven)) == "dim")
            #expect(throws: VolumeError.self) { _ = try VolumeReader.readHeader(seven) }
            // The same cube gzipped: checked against deflate's maximum expansion of the file.
            let gz = try Self.editedNifti1(directory, "cube.nii.gz", gzip: true) { Self.setNifti1Dims([3, 32767, 32767, 32767], in: &$0) }
            let available = 1032 * Self.fileSize(gz) - 352
            #expect(Self.readError(gz) == .dataSizeExceedsFile(path: gz.path, needed: cubeBytes, available: available))
        }
    }

    @Test func hugeNifti2DimsAreRejectedBeforeAllocating() throws {
        try withTemporaryDirectory { directory in
            for dims: [Int64] in [[3, Int64.max, 9, 7], [3, 1 << 40, 1 << 40, 1 << 40], [4, 11, 9, 7, Int64.max],
                                  [7, 1 << 10, 1 << 10, 1 << 10, 1 << 10, 1 << 10, 1 << 10, 1 << 10]] {
                let url = try Self.editedNifti2(directory) { Self.setNifti2Dims(dims, in: &$0) }
                let error = Self.readError(url)
                #expect(Self.invalidField(error) == "dim", "dims \(dims): \(String(describing: error))")
                #expect(Self.invalidField(Self.headerError(url)) == "dim")
            }
            // 2^31 on one axis fits in Int: more data than the file has.
            let wide = try Self.editedNifti2(directory) { Self.setNifti2Dims([3, 1 << 31, 9, 7], in: &$0) }
            #expect(Self.readError(wide) == .truncatedData(path: wide.path, expectedBytes: 4 * (1 << 31) * 63, availableBytes: 3316 - 544))
            // Negative and zero extents.
            for (axis, value) in [(1, Int64(-1)), (2, Int64.min), (3, 0)] {
                let url = try Self.editedNifti2(directory) { bytes in
                    Self.put(value, at: 16 + 8 * axis, bigEndian: false, in: &bytes)
                }
                #expect(Self.invalidField(Self.readError(url)) == "dim[\(axis)]", "dim[\(axis)] = \(value)")
            }
            for rank: Int64 in [0, 8, -1, Int64.max] {
                let url = try Self.editedNifti2(directory) { Self.put(rank, at: 16, bigEndian: false, in: &$0) }
                #expect(Self.invalidField(Self.readError(url)) == "dim[0]", "dim[0] = \(rank)")
            }
        }
    }

    static func headerError(_ url: URL) -> VolumeError? {
        do { _ = try VolumeReader.readHeader(url) } catch let error as VolumeError { return error } catch {
            Issue.record("\(type(of: error)) is not a VolumeError: \(error)")
        }
        return nil
    }

    @Test func badNifti1DimsAreInvalidFields() throws {
        try withTemporaryDirectory { directory in
            for (axis, value) in [(1, -1), (2, -32768), (3, 0)] {
                let url = try Self.editedNifti1(directory) { Self.put(Int16(value), at: 40 + 2 * axis, bigEndian: false, in: &$0) }
                #expect(Self.invalidField(Self.readError(url)) == "dim[\(axis)]", "dim[\(axis)] = \(value)")
            }
            for rank in [0, 8, -1, 32767] {
                let url = try Self.editedNifti1(directory) { Self.put(Int16(rank), at: 40, bigEndian: false, in: &$0) }
                #expect(Self.invalidField(Self.readError(url)) == "dim[0]", "dim[0] = \(rank)")
                #expect(Self.invalidField(Self.headerError(url)) == "dim[0]")
            }
        }
    }

    @Test func voxOffsetOutsideTheFile() throws {
        try withTemporaryDirectory { directory in
            // Past the end: the data cannot be there.
            let past = try Self.editedNifti1(directory) { Self.putFloat32(10_000, at: 108, bigEndian: false, in: &$0) }
            #expect(Self.readError(past) == .truncatedData(path: past.path, expectedBytes: 420, availableBytes: 0))
            let pastGz = try Self.editedNifti1(directory, "past.nii.gz", gzip: true) { Self.putFloat32(10_000, at: 108, bigEndian: false, in: &$0) }
            #expect(Self.readError(pastGz) == .truncatedData(path: pastGz.path, expectedBytes: 420, availableBytes: 0))
            let past2 = try Self.editedNifti2(directory) { Self.put(Int64(1 << 40), at: 168, bigEndian: false, in: &$0) }
            #expect(Self.readError(past2) == .truncatedData(path: past2.path, expectedBytes: 693 * 4, availableBytes: 0))

            // Inside the header (or not an offset at all) in a one-file NIfTI.
            for value: Float in [348, 351, 0, -1, .nan, .infinity, 1e20] {
                let url = try Self.editedNifti1(directory) { Self.putFloat32(value, at: 108, bigEndian: false, in: &$0) }
                #expect(Self.invalidField(Self.readError(url)) == "vox_offset", "vox_offset \(value)")
            }
            for value: Int64 in [540, 543, 0, -1, Int64.min, Int64.max] {
                let url = try Self.editedNifti2(directory) { Self.put(value, at: 168, bigEndian: false, in: &$0) }
                #expect(Self.invalidField(Self.readError(url)) == "vox_offset", "NIfTI-2 vox_offset \(value)")
            }

            // Analyze: the offset is into the .img.
            var header = try Self.fixture(Self.analyzeHeader)
            Self.putFloat32(1e6, at: 108, bigEndian: false, in: &header)
            let hdr = directory.appendingPathComponent("far.hdr"), img = directory.appendingPathComponent("far.img")
            try Self.write(header, to: hdr)
            try Self.write(try Self.fixture(Self.analyzeImage), to: img)
            #expect(Self.readError(hdr) == .truncatedData(path: img.path, expectedBytes: 33 * 41 * 25 * 2, availableBytes: 0))
        }
    }

    @Test func emptyShortAndForeignFiles() throws {
        try withTemporaryDirectory { directory in
            let empty = directory.appendingPathComponent("empty.nii")
            try Self.write([], to: empty)
            #expect(Self.readError(empty) == .emptyFile(path: empty.path))
            #expect(Self.headerError(empty) == .emptyFile(path: empty.path))
            #expect(VolumeSummary.inspect(empty).error != nil)
            let emptyGz = directory.appendingPathComponent("empty.nii.gz")
            try Self.write([], to: emptyGz)
            #expect(Self.readError(emptyGz) == .emptyFile(path: emptyGz.path))

            let original = try Self.fixture(Self.int16Nifti1)
            let short = directory.appendingPathComponent("short.nii")
            try Self.write(Array(original.prefix(100)), to: short)
            #expect(Self.readError(short) == .truncatedHeader(path: short.path, bytes: 100, needed: 348))
            try Self.write(Array(original.prefix(2)), to: short)
            #expect(Self.readError(short) == .truncatedHeader(path: short.path, bytes: 2, needed: 348))
            let short2 = directory.appendingPathComponent("short2.nii")
            try Self.write(Array(try Self.fixture(Self.nifti2Single).prefix(100)), to: short2)
            #expect(Self.readError(short2) == .truncatedHeader(path: short2.path, bytes: 100, needed: 540))

            // Wrong magic in a .nii, and the pair magic in a one-file name.
            for magic in [[0xde, 0xad, 0xbe, 0xef], Array("ni1\0".utf8), [0, 0, 0, 0]] as [[UInt8]] {
                let url = try Self.editedNifti1(directory) { bytes in for k in 0..<4 { bytes[344 + k] = magic[k] } }
                #expect(Self.readError(url).map(Self.caseName) == "notAVolume", "magic \(magic)")
            }
            let badMagic2 = try Self.editedNifti2(directory) { $0[5] = UInt8(ascii: "x") }
            #expect(Self.readError(badMagic2).map(Self.caseName) == "notAVolume", "NIfTI-2 magic")
            let badSize = try Self.editedNifti1(directory) { Self.put(Int32(349), at: 0, bigEndian: false, in: &$0) }
            #expect(Self.readError(badSize).map(Self.caseName) == "notAVolume", "sizeof_hdr 349")
            // Text and a directory.
            let text = directory.appendingPathComponent("notes.nii")
            try Self.write(Array(String(repeating: "not a volume\n", count: 40).utf8), to: text)
            #expect(Self.readError(text).map(Self.caseName) == "notAVolume", "text file")
            #expect(Self.readError(directory).map(Self.caseName) == "cannotRead", "a directory")
            #expect(Self.readError(directory.appendingPathComponent("absent.nii")).map(Self.caseName) == "cannotRead", "absent file")
        }
    }

    @Test func pairWithoutImage() throws {
        try withTemporaryDirectory { directory in
            let hdr = directory.appendingPathComponent("lonely.hdr")
            try Self.write(try Self.fixture(Self.analyzeHeader), to: hdr)
            let base = directory.appendingPathComponent("lonely").path
            let tried = [base + ".img", base + ".img.gz", base + ".IMG", base + ".IMG.gz"]
            #expect(Self.readError(hdr) == .missingImageFile(header: hdr.path, tried: tried))
            // The header alone is readable.
            let header = try VolumeReader.readHeader(hdr)
            #expect(header.format == .analyze && header.dims == [33, 41, 25])
            #expect(VolumeSummary.inspect(hdr).error != nil)
            // Given the .img of a pair whose .hdr is missing.
            let img = directory.appendingPathComponent("headless.img")
            try Self.write(try Self.fixture(Self.analyzeImage), to: img)
            #expect(Self.readError(img).map(Self.caseName) == "missingHeaderFile", "headless .img")
            // A cut image.
            try Self.write(Array(try Self.fixture(Self.analyzeImage).prefix(1000)), to: directory.appendingPathComponent("lonely.img"))
            #expect(Self.readError(hdr) == .truncatedData(path: base + ".img", expectedBytes: 67650, availableBytes: 1000))
        }
    }

    @Test func damagedGzip() throws {
        try withTemporaryDirectory { directory in
            let original = try Self.fixture(Self.fourDGzip)
            let half = directory.appendingPathComponent("half.nii.gz")
            try Self.write(Array(original.prefix(original.count / 2)), to: half)
            #expect(Self.readError(half) == .truncatedGzip(path: half.path))
            // Cut inside the 8-byte trailer: every voxel is there, the check is not.
            try Self.write(Array(original.dropLast(3)), to: half)
            #expect(Self.readError(half) == .truncatedGzip(path: half.path))

            let crc = directory.appendingPathComponent("crc.nii.gz")
            var bad = original
            bad[bad.count - 8] ^= 0x01
            try Self.write(bad, to: crc)
            #expect(Self.readError(crc) == .corruptGzip(path: crc.path, reason: "incorrect data check"))
            // The CRC is checked even when the requested volume is the first of three.
            #expect(Self.readError(crc, options: VolumeReadOptions(volumeIndex: 0)) == .corruptGzip(path: crc.path, reason: "incorrect data check"))
            var badLength = original
            badLength[badLength.count - 1] ^= 0x80
            try Self.write(badLength, to: crc)
            #expect(Self.readError(crc) == .corruptGzip(path: crc.path, reason: "incorrect length check"))

            // The fixtures made by the generator script.
            let truncatedFixture = Self.fixtures.appendingPathComponent("generated/truncated.nii.gz")
            #expect(Self.readError(truncatedFixture) == .truncatedGzip(path: truncatedFixture.path))
            let badCRCFixture = Self.fixtures.appendingPathComponent("generated/bad_crc.nii.gz")
            #expect(Self.readError(badCRCFixture).map(Self.caseName) == "corruptGzip", "bad_crc.nii.gz")
        }
    }

    @Test func gzipPromisingATerabyte() throws {
        try withTemporaryDirectory { directory in
            // 10000 · 10000 · 5000 int16 = 10^12 bytes from a file of a few hundred bytes.
            let url = try Self.editedNifti1(directory, "tera.nii.gz", gzip: true) { Self.setNifti1Dims([3, 10000, 10000, 5000], in: &$0) }
            let size = Self.fileSize(url)
            #expect(size > 0 && size < 2000)
            #expect(Self.readError(url) == .dataSizeExceedsFile(path: url.path, needed: 1_000_000_000_000, available: 1032 * size - 352))
            // Header-only reading is fine: it allocates nothing for the voxels.
            let header = try VolumeReader.readHeader(url)
            #expect(header.dataByteCount == 1_000_000_000_000)
            #expect(VolumeSummary.inspect(url).error != nil)
        }
    }

    @Test func otherInvalidFields() throws {
        try withTemporaryDirectory { directory in
            let complex = try Self.editedNifti1(directory) { Self.put(Int16(32), at: 70, bigEndian: false, in: &$0) }
            #expect(Self.readError(complex) == .unsupportedDatatype(path: complex.path, code: 32))
            let unknown = try Self.editedNifti1(directory) { Self.put(Int16(-1), at: 70, bigEndian: false, in: &$0) }
            #expect(Self.readError(unknown) == .unsupportedDatatype(path: unknown.path, code: -1))

            let inter = try Self.editedNifti1(directory) { bytes in
                Self.putFloat32(2, at: 112, bigEndian: false, in: &bytes)
                Self.putFloat32(.nan, at: 116, bigEndian: false, in: &bytes)
            }
            #expect(Self.invalidField(Self.readError(inter)) == "scl_inter")

            let sform = try Self.editedNifti1(directory) { bytes in
                Self.put(Int16(1), at: 254, bigEndian: false, in: &bytes)
                Self.putFloat32(.infinity, at: 280, bigEndian: false, in: &bytes)
            }
            #expect(Self.readError(sform).map(Self.caseName) == "invalidAffine", "infinite srow")
            let qform = try Self.editedNifti1(directory) { bytes in
                Self.put(Int16(0), at: 254, bigEndian: false, in: &bytes)
                Self.put(Int16(1), at: 252, bigEndian: false, in: &bytes)
                for k in 0..<3 { Self.putFloat32(0.9, at: 256 + 4 * k, bigEndian: false, in: &bytes) }
            }
            #expect(Self.readError(qform).map(Self.caseName) == "invalidAffine", "non-unit quaternion")

            // Analyze has no int8.
            var analyze = try Self.fixture(Self.analyzeHeader)
            Self.put(Int16(256), at: 70, bigEndian: false, in: &analyze)
            let hdr = directory.appendingPathComponent("int8.hdr")
            try Self.write(analyze, to: hdr)
            try Self.write(try Self.fixture(Self.analyzeImage), to: directory.appendingPathComponent("int8.img"))
            #expect(Self.readError(hdr) == .unsupportedDatatype(path: hdr.path, code: 256))

            // Volume index past the last (three volumes).
            let fourD = Self.fixtures.appendingPathComponent(Self.fourDGzip)
            for index in [3, -1, Int.max] {
                #expect(Self.readError(fourD, options: VolumeReadOptions(volumeIndex: index))
                        == .volumeIndexOutOfRange(path: fourD.path, index: index, count: 3))
            }
        }
    }

    /// Malformed extension blocks end the extension list; the voxels still start at vox_offset.
    @Test func hostileExtensionSizes() throws {
        let gzURL = Self.fixtures.appendingPathComponent(Self.fourDGzip)
        let content = try decompressedBytes(gzURL)
        let reference = try VolumeReader.read(gzURL, options: VolumeReadOptions(volumeIndex: 2))
        #expect(reference.header?.extensionCodes == [6])
        try withTemporaryDirectory { directory in
            let sizes: [Int32] = [.max, .min, -8, -1, 0, 7, 8, 9, 72, 79, 81, 88, 1 << 20]
            for size in sizes {
                for code: Int32 in [6, -1, .max] {
                    var bytes = content
                    Self.put(size, at: 356, bigEndian: false, in: &bytes)
                    Self.put(code, at: 360, bigEndian: false, in: &bytes)
                    let url = directory.appendingPathComponent("ext.nii.gz")
                    try writeGzip(bytes, to: url)
                    do {
                        let volume = try VolumeReader.read(url, options: VolumeReadOptions(volumeIndex: 2))
                        let same = volume.data.scalars == reference.data.scalars
                        #expect(same, "esize \(size), ecode \(code): voxels moved")
                        #expect(volume.header?.voxOffset == 432)
                    } catch {
                        Issue.record("esize \(size), ecode \(code): \(error)")
                    }
                }
            }
            // An extender that announces extensions in a header whose data starts right after it.
            var tight = try Self.fixture(Self.int16Nifti1)
            tight[348] = 1
            let url = directory.appendingPathComponent("tight.nii")
            try Self.write(tight, to: url)
            #expect(try VolumeReader.read(url).header?.extensionCodes == [])
        }
    }

    /// A pair header given by a relative path shorter than ".hdr" and without that extension:
    /// working out the image's name must not trap.
    @Test func shortRelativePairNameDoesNotTrap() async {
        await #expect(processExitsWith: .success) {
            let directory = FileManager.default.temporaryDirectory
                .appendingPathComponent("volumeio-hostile-\(UUID().uuidString)", isDirectory: true)
            try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Fixtures/Volumes/shared-copies/nifti-edge-cases/generated/anatomical_analyze75.hdr")
            try? FileManager.default.copyItem(at: source, to: directory.appendingPathComponent("ab"))
            _ = FileManager.default.changeCurrentDirectoryPath(directory.path)
            let relative = URL(string: "ab")!
            #expect(relative.path == "ab")
            do {
                _ = try VolumeReader.read(relative)
            } catch {
                #expect(error is VolumeError)
            }
        }
    }
}
