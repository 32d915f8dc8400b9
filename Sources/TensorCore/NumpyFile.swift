import Foundation

/// Why a `.npy` file could not be read.
public enum NumpyFileError: Error, Equatable, CustomStringConvertible {
    case malformed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .malformed(path, reason): return "\(path): not a float32 .npy array numpy wrote (\(reason))"
        }
    }
}

/// NumPy's `.npy` format (version 1.0) for little-endian float32 arrays in C order, the
/// format `numpy.load` reads without options.
///
/// ```
/// \x93NUMPY 0x01 0x00 <u16 header length> {'descr': '<f4', 'fortran_order': False, 'shape': (N, F), }  … '\n'
/// ```
/// The header is padded with spaces so that the data starts at a multiple of 64 bytes, as
/// numpy itself writes it.
public enum NumpyFile {
    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    /// The file's bytes for `tensor` (its shape and values, C order).
    public static func encode(_ tensor: Tensor) -> Data {
        let shape = tensor.shape.count == 1 ? "(\(tensor.shape[0]),)" : "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }"
        let unpadded = magic.count + 2 + 2 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data(magic + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        tensor.withUnsafeBufferPointer { values in
            #if _endian(little)
            data.append(values)
            #else
            for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
            #endif
        }
        return data
    }

    /// Writes `tensor` atomically to `url`.
    public static func write(_ tensor: Tensor, to url: URL) throws {
        try AtomicFile.write(encode(tensor), to: url)
    }

    /// Reads a float32 C-order array (versions 1.0–3.0 of the format).
    /// - Throws: `NumpyFileError.malformed` for anything else (another dtype, Fortran order,
    ///   a truncated file), and the file system's error when it cannot be read.
    public static func read(from url: URL) throws -> Tensor {
        let bytes = [UInt8](try Data(contentsOf: url))
        return try decode(bytes, path: url.path)
    }

    /// Decodes `.npy` bytes; `path` names them in errors.
    public static func decode(_ bytes: [UInt8], path: String) throws(NumpyFileError) -> Tensor {
        func fail(_ reason: String) -> NumpyFileError { .malformed(path: path, reason: reason) }
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw fail("no NUMPY magic") }
        let major = bytes[6]
        let (lengthBytes, start): (Int, Int) = major == 1 ? (2, 10) : (4, 12)
        guard (1...3).contains(major), bytes.count >= start else { throw fail("format version \(major)") }
        var length = 0
        for k in 0..<lengthBytes { length |= Int(bytes[8 + k]) << (8 * k) }
        guard start + length <= bytes.count else { throw fail("header longer than the file") }
        let header = String(decoding: bytes[start..<(start + length)], as: UTF8.self)
        guard header.contains("'descr': '<f4'") else { throw fail("dtype is not '<f4'") }
        guard header.contains("'fortran_order': False") else { throw fail("not C order") }
        guard let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw fail("no shape")
        }
        var shape: [Int] = []
        for part in header[open.upperBound..<close].split(separator: ",") {
            let text = part.trimmingCharacters(in: .whitespaces)
            guard let extent = Int(text), extent >= 0 else { throw fail("shape entry '\(text)'") }
            shape.append(extent)
        }
        var count = 1
        for extent in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: extent)
            guard !overflow else { throw fail("shape \(shape) is too large") }
            count = product
        }
        let dataStart = start + length
        guard count <= (bytes.count - dataStart) / 4, bytes.count - dataStart == count * 4 else {
            throw fail("\(bytes.count - dataStart) data bytes for shape \(shape) (\(count) float32 values)")
        }
        var values = [Float](repeating: 0, count: count)
        for i in 0..<count {
            let o = dataStart + 4 * i
            values[i] = Float(bitPattern: UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24)
        }
        do { return try Tensor(shape: shape, scalars: values) } catch { throw fail("shape \(shape)") }
    }
}
