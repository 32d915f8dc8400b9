import CZlib
import Foundation
import TensorCore

/// Streams bytes into a gzip file (RFC 1952: one member, CRC-32 and length trailer), deflating
/// fixed-size blocks on the engine's workers, as pigz does.
///
/// Each 1 MiB block is deflated on its own, primed with the 32 KiB of input before it (so the
/// ratio stays close to a single stream's) and ended with a sync flush, which byte-aligns it so
/// the blocks concatenate into one valid deflate stream; the last block ends the stream. Block
/// boundaries do not depend on the thread count, so the bytes are the same for any number of
/// threads; the header's mtime is 0, so they are the same on every run.
final class GzipWriter {
    private let sink: AtomicFile.Sink
    private let level: Int32
    private let blockSize: Int
    /// Input not yet compressed (at most `blockSize × batch`).
    private var pending: [UInt8] = []
    /// The last 32 KiB already compressed: the dictionary of the next block.
    private var history: [UInt8] = []
    private var crc = crc32(0, nil, 0)
    private var length: UInt64 = 0
    private var started = false

    static let window = 32 * 1024

    /// - Parameter level: zlib compression level, 0 (store) to 9 (smallest).
    init(sink: AtomicFile.Sink, level: Int, blockSize: Int = 1 << 20) {
        precondition((0...9).contains(level), "gzip level must be 0...9, got \(level)")
        precondition(blockSize >= GzipWriter.window, "gzip blocks must hold at least one window")
        self.sink = sink
        self.level = Int32(level)
        self.blockSize = blockSize
    }

    /// Blocks compressed together: one per worker.
    private var batchBytes: Int { blockSize * max(1, Engine.threads) }

    /// Compresses `bytes` (output lags behind until a batch of blocks is full, or `finish()`).
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            // A full batch is compressed only once more input arrives, so the stream's last
            // block always holds data and ends with Z_FINISH, whatever the batch size.
            if pending.count == batchBytes { try compressPending(final: false) }
            let take = min(bytes.count - offset, batchBytes - pending.count)
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + take)]).assumingMemoryBound(to: UInt8.self))
            offset += take
        }
    }

    /// Compresses what is left, ends the deflate stream and writes the gzip trailer.
    func finish() throws {
        try compressPending(final: true)
        var trailer = [UInt8](repeating: 0, count: 8)
        for k in 0..<4 {
            trailer[k] = UInt8(truncatingIfNeeded: crc >> (8 * k))
            trailer[4 + k] = UInt8(truncatingIfNeeded: length >> (8 * k))
        }
        try trailer.withUnsafeBytes { try sink.write($0) }
    }

    private func compressPending(final: Bool) throws {
        if !started {
            // ID1 ID2, CM = deflate, no flags, mtime 0, no extra flags, OS = Unix.
            let header: [UInt8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]
            try header.withUnsafeBytes { try sink.write($0) }
            started = true
        }
        // Read in place (no second reference), so the removeAll below keeps the buffer.
        let blocks = max(1, (pending.count + blockSize - 1) / blockSize)
        var results = [BlockResult](repeating: .failure(Z_OK), count: blocks)
        var crcs = [uLong](repeating: 0, count: blocks)
        let level = level, blockSize = blockSize, previous = history
        pending.withUnsafeBytes { all in
            results.withUnsafeMutableBufferPointer { resultSlots in
                crcs.withUnsafeMutableBufferPointer { crcSlots in
                    Engine.parallelRanges(blocks) { range in
                        for block in range {
                            let start = block * blockSize, end = min(start + blockSize, all.count)
                            let data = UnsafeRawBufferPointer(rebasing: all[start..<end])
                            // The window before this block: from this batch, else the previous one.
                            let dictionary = start >= GzipWriter.window
                                ? Array(UnsafeRawBufferPointer(rebasing: all[(start - GzipWriter.window)..<start]))
                                : Array(previous.suffix(GzipWriter.window - start)) + Array(UnsafeRawBufferPointer(rebasing: all[0..<start]))
                            resultSlots[block] = GzipWriter.deflateBlock(data, dictionary: dictionary, level: level,
                                                                         last: final && block == blocks - 1)
                            if let base = data.baseAddress {
                                crcSlots[block] = crc32(0, base.assumingMemoryBound(to: Bytef.self), uInt(data.count))
                            }
                        }
                    }
                }
            }
        }
        for block in 0..<blocks {
            guard case let .success(bytes) = results[block] else {
                if case let .failure(code) = results[block] { throw ByteSourceError.corruptGzip("zlib deflate failed (\(code))") }
                continue
            }
            let size = min(blockSize, pending.count - block * blockSize)
            if size > 0 { crc = crc32_combine(crc, crcs[block], off_t(size)) }
            try bytes.withUnsafeBytes { try sink.write($0) }
        }
        length += UInt64(pending.count)
        history = Array((pending.count >= GzipWriter.window ? pending : history + pending).suffix(GzipWriter.window))
        pending.removeAll(keepingCapacity: true)
    }

    private enum BlockResult {
        case success([UInt8])
        case failure(Int32)
    }

    /// Raw-deflates one block, primed with `dictionary`; ends with a sync flush (byte-aligned,
    /// not final) unless `last`, which ends the stream.
    private static func deflateBlock(_ data: UnsafeRawBufferPointer, dictionary: [UInt8], level: Int32, last: Bool) -> BlockResult {
        // zlib keeps a pointer back to its z_stream: give it a fixed address.
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deallocate() }
        // −15 window bits: a raw deflate stream (the gzip wrapper is written by hand).
        var status = deflateInit2_(stream, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { return .failure(status) }
        defer { deflateEnd(stream) }
        if !dictionary.isEmpty {
            status = dictionary.withUnsafeBufferPointer { deflateSetDictionary(stream, $0.baseAddress, uInt($0.count)) }
            guard status == Z_OK else { return .failure(status) }
        }
        // Room for the worst case plus the flush markers, so one call finishes the block.
        var output = [UInt8](repeating: 0, count: Int(deflateBound(stream, uLong(data.count))) + 64)
        status = output.withUnsafeMutableBufferPointer { out -> Int32 in
            stream.pointee.next_in = UnsafeMutablePointer(mutating: data.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(data.count)
            stream.pointee.next_out = out.baseAddress
            stream.pointee.avail_out = uInt(out.count)
            return deflate(stream, last ? Z_FINISH : Z_SYNC_FLUSH)
        }
        guard status == (last ? Z_STREAM_END : Z_OK), stream.pointee.avail_in == 0 else { return .failure(status) }
        output.removeLast(Int(stream.pointee.avail_out))
        return .success(output)
    }
}
