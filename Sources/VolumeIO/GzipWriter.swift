import CZlib
import Foundation
import TensorCore

/// Streams bytes through zlib's deflate into a gzip file (RFC 1952: one member, with the
/// CRC-32 and length trailer that readers check).
final class GzipWriter {
    private let sink: AtomicFile.Sink
    private let stream: UnsafeMutablePointer<z_stream>
    private let output: UnsafeMutableRawBufferPointer

    /// - Parameter level: zlib compression level, 0 (store) to 9 (smallest).
    init(sink: AtomicFile.Sink, level: Int, blockSize: Int = 1 << 18) throws {
        precondition((0...9).contains(level), "gzip level must be 0...9, got \(level)")
        self.sink = sink
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        output = .allocate(byteCount: blockSize, alignment: 16)
        // 15 window bits + 16: write a gzip wrapper; memLevel 8 is zlib's default.
        let status = deflateInit2_(stream, Int32(level), Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                                   zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            stream.deallocate()
            output.deallocate()
            throw ByteSourceError.corruptGzip("zlib deflateInit2 failed (\(status))")
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
        output.deallocate()
    }

    /// Compresses `bytes` (the output may lag behind until `finish()`).
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let chunk = min(bytes.count - offset, 1 << 30)
            stream.pointee.next_in = UnsafeMutablePointer(mutating: (bytes.baseAddress! + offset).assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(chunk)
            try pump(flush: Z_NO_FLUSH)
            offset += chunk
        }
    }

    /// Flushes the compressor and writes the gzip trailer.
    func finish() throws {
        stream.pointee.avail_in = 0
        try pump(flush: Z_FINISH)
    }

    private func pump(flush: Int32) throws {
        while true {
            stream.pointee.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(output.count)
            let status = deflate(stream, flush)
            guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                throw ByteSourceError.corruptGzip("zlib deflate failed (\(status))")
            }
            let produced = output.count - Int(stream.pointee.avail_out)
            if produced > 0 { try sink.write(UnsafeRawBufferPointer(rebasing: output[0..<produced])) }
            if flush == Z_FINISH ? status == Z_STREAM_END : stream.pointee.avail_out != 0 { return }
        }
    }
}
