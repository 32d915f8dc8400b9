import CZlib
import Foundation

/// Encodes 8-bit images as PNG files (ISO/IEC 15948), for embedding in reports.
///
/// The file holds the signature, an `IHDR` chunk (8 bits per sample, no interlacing), one `IDAT`
/// chunk and `IEND`. Every row has filter type 0 (none); the filtered rows are deflated with
/// zlib's `compress2` at the default level, and each chunk carries zlib's CRC-32. The bytes depend
/// only on the pixels, so the same image always gives the same file.
public enum PNGImage {
    /// A greyscale PNG (colour type 0): `pixels` holds `width × height` bytes, row-major, row 0
    /// at the top, 0 black and 255 white.
    ///
    /// - Precondition: `width` and `height` are 1…2³¹−1 and `pixels.count == width × height`.
    public static func grayscale(width: Int, height: Int, pixels: [UInt8]) -> Data {
        encode(width: width, height: height, channels: 1, colorType: 0, pixels: pixels)
    }

    /// A truecolour PNG (colour type 2): `pixels` holds `width × height` red, green, blue byte
    /// triples, row-major, row 0 at the top.
    ///
    /// - Precondition: `width` and `height` are 1…2³¹−1 and `pixels.count == width × height × 3`.
    public static func rgb(width: Int, height: Int, pixels: [UInt8]) -> Data {
        encode(width: width, height: height, channels: 3, colorType: 2, pixels: pixels)
    }

    private static func encode(width: Int, height: Int, channels: Int, colorType: UInt8, pixels: [UInt8]) -> Data {
        let limit = Int(Int32.max)
        precondition((1...limit).contains(width) && (1...limit).contains(height), "PNG dimensions must be 1...2^31-1, got \(width)×\(height)")
        let rowBytes = width * channels
        precondition(
            pixels.count % rowBytes == 0 && pixels.count / rowBytes == height,
            "PNG \(width)×\(height) with \(channels) channel(s) needs \(height) × \(rowBytes) bytes, got \(pixels.count)"
        )

        // Each row is preceded by its filter type byte (0: none).
        var filtered = [UInt8]()
        filtered.reserveCapacity(height * (rowBytes + 1))
        for row in 0..<height {
            filtered.append(0)
            filtered.append(contentsOf: pixels[(row * rowBytes)..<((row + 1) * rowBytes)])
        }
        var compressedLength = compressBound(uLong(filtered.count))
        var compressed = [UInt8](repeating: 0, count: Int(compressedLength))
        let status = compress2(&compressed, &compressedLength, filtered, uLong(filtered.count), Z_DEFAULT_COMPRESSION)
        // With a compressBound-sized buffer, only a failed allocation inside zlib can fail.
        precondition(status == Z_OK, "zlib compress2 failed with status \(status)")
        compressed.removeSubrange(Int(compressedLength)...)

        var header = [UInt8]()
        appendBigEndian(UInt32(width), to: &header)
        appendBigEndian(UInt32(height), to: &header)
        header += [8, colorType, 0, 0, 0]  // bit depth, colour type, deflate, filter method 0, no interlace

        var png: [UInt8] = [137, 80, 78, 71, 13, 10, 26, 10]
        appendChunk("IHDR", header, to: &png)
        appendChunk("IDAT", compressed, to: &png)
        appendChunk("IEND", [], to: &png)
        return Data(png)
    }

    /// Appends length, type, data and the CRC-32 of type and data.
    private static func appendChunk(_ type: StaticString, _ data: [UInt8], to png: inout [UInt8]) {
        precondition(data.count <= Int(Int32.max), "a PNG chunk holds at most 2^31-1 bytes, got \(data.count)")
        let body = type.withUTF8Buffer { Array($0) } + data
        appendBigEndian(UInt32(data.count), to: &png)
        png += body
        appendBigEndian(UInt32(truncatingIfNeeded: crc32(0, body, uInt(body.count))), to: &png)
    }

    private static func appendBigEndian(_ value: UInt32, to bytes: inout [UInt8]) {
        bytes += [UInt8(truncatingIfNeeded: value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
    }
}
