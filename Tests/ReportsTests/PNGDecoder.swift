import CZlib
import Foundation

/// A minimal PNG reader for the tests, independent of any image tool: checks the signature,
/// every chunk's length and CRC-32, reads `IHDR`, inflates the concatenated `IDAT` data with
/// zlib's `uncompress`, and unfilters the rows. The encoder writes filter type 0 (none) only,
/// so any other filter byte is reported as an error rather than decoded.
struct DecodedPNG {
    var width = 0
    var height = 0
    var bitDepth: UInt8 = 0
    var colorType: UInt8 = 0
    var interlace: UInt8 = 0
    /// Chunk types in file order.
    var chunkTypes: [String] = []
    /// Row-major samples without filter bytes.
    var pixels: [UInt8] = []

    struct Malformed: Error, CustomStringConvertible {
        let description: String
    }

    init(_ data: Data) throws {
        let bytes = [UInt8](data)
        guard bytes.starts(with: [137, 80, 78, 71, 13, 10, 26, 10]) else { throw Malformed(description: "bad signature") }
        func bigEndian(_ offset: Int) -> Int {
            bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | Int($1) }
        }
        var compressed: [UInt8] = []
        var offset = 8
        while offset < bytes.count {
            guard offset + 12 <= bytes.count else { throw Malformed(description: "truncated chunk header at \(offset)") }
            let length = bigEndian(offset)
            guard offset + 12 + length <= bytes.count else { throw Malformed(description: "truncated chunk at \(offset)") }
            let body = Array(bytes[(offset + 4)..<(offset + 8 + length)])
            let type = String(decoding: body[0..<4], as: UTF8.self)
            let data = Array(body[4...])
            guard crc32(0, body, uInt(body.count)) == uLong(bigEndian(offset + 8 + length)) else {
                throw Malformed(description: "CRC mismatch in \(type)")
            }
            chunkTypes.append(type)
            switch type {
            case "IHDR":
                guard length == 13 else { throw Malformed(description: "IHDR length \(length)") }
                width = data[0..<4].reduce(0) { $0 << 8 | Int($1) }
                height = data[4..<8].reduce(0) { $0 << 8 | Int($1) }
                bitDepth = data[8]
                colorType = data[9]
                guard data[10] == 0, data[11] == 0 else { throw Malformed(description: "unknown compression or filter method") }
                interlace = data[12]
            case "IDAT":
                compressed += data
            default:
                break
            }
            offset += 12 + length
        }
        let channels = colorType == 2 ? 3 : 1
        let rowBytes = width * channels
        let expected = height * (rowBytes + 1)
        var filtered = [UInt8](repeating: 0, count: expected)
        var inflatedLength = uLong(expected)
        let status = uncompress(&filtered, &inflatedLength, compressed, uLong(compressed.count))
        guard status == Z_OK, Int(inflatedLength) == expected else {
            throw Malformed(description: "inflate gave status \(status), \(inflatedLength) of \(expected) bytes")
        }
        for row in 0..<height {
            let start = row * (rowBytes + 1)
            guard filtered[start] == 0 else { throw Malformed(description: "row \(row) has filter type \(filtered[start])") }
            pixels += filtered[(start + 1)..<(start + 1 + rowBytes)]
        }
    }
}
