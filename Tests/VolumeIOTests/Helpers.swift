import Foundation
import TensorCore
import TestSupport
@testable import VolumeIO

// Helpers shared by the VolumeIO test suites.

/// Every byte a file decodes to (gzip inflated).
func decompressedBytes(_ url: URL) throws -> [UInt8] {
    let (source, _, _) = try openByteSource(path: url.path)
    var bytes: [UInt8] = []
    while true {
        let chunk = try source.readBytes(1 << 16)
        bytes += chunk
        if chunk.count < 1 << 16 { return bytes }
    }
}

/// Writes `bytes` as a one-member gzip file with our writer, atomically.
func writeGzip(_ bytes: [UInt8], to url: URL, level: Int = 1) throws {
    try AtomicFile.write(to: url) { sink in
        let writer = GzipWriter(sink: sink, level: level)
        try bytes.withUnsafeBytes { try writer.write($0) }
        try writer.finish()
    }
}
