import CZlib
import Foundation

/// Why a byte stream could not be read. `VolumeReader` wraps these into `VolumeError`s that
/// name the file.
enum ByteSourceError: Error, Equatable {
    case io(String)
    /// The gzip stream ended before its end-of-stream marker (a cut-off download or copy).
    case truncatedGzip
    /// zlib rejected the stream; the reason is zlib's message ("incorrect data check" for a
    /// CRC-32 mismatch, "incorrect length check" for an ISIZE mismatch, ...).
    case corruptGzip(String)
}

/// A forward-only stream of bytes: a plain file, or the decompressed content of a gzip file.
/// Volume readers pull exactly the bytes they need and skip the rest, so no file is ever
/// loaded whole.
protocol ByteSource: AnyObject {
    /// Fills `buffer` from the stream; returns fewer bytes than asked only at the end.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// Discards up to `count` bytes; returns how many were skipped (fewer only at the end).
    func skip(_ count: Int) throws -> Int
    /// Reads to the end of the stream so that every integrity check runs (for gzip: the
    /// CRC-32 and length of each member); returns the number of bytes that were left.
    func drain() throws -> Int
}

extension ByteSource {
    /// Reads up to `count` bytes into a new array (shorter only at the end of the stream).
    func readBytes(_ count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let got = try bytes.withUnsafeMutableBytes { try read(into: $0) }
        bytes.removeLast(count - got)
        return bytes
    }
}

/// An open file read with `read(2)` in large blocks.
final class FileByteSource: ByteSource {
    private let descriptor: Int32
    /// Size of the file in bytes when it was opened.
    let size: Int

    init(path: String) throws {
        // Checked before opening: opening a FIFO for reading would block until a writer came.
        var status = stat()
        guard stat(path, &status) == 0 else { throw ByteSourceError.io(String(cString: strerror(errno))) }
        guard (status.st_mode & S_IFMT) == S_IFREG else { throw ByteSourceError.io("not a regular file") }
        descriptor = open(path, O_RDONLY | O_NONBLOCK)
        guard descriptor >= 0 else { throw ByteSourceError.io(String(cString: strerror(errno))) }
        guard fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
            close(descriptor)
            throw ByteSourceError.io("not a regular file")
        }
        size = Int(status.st_size)
    }

    deinit { close(descriptor) }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var filled = 0
        while filled < buffer.count {
            // read(2) on Linux moves at most ~2 GiB per call.
            let request = min(buffer.count - filled, 1 << 30)
            let got = Foundation.read(descriptor, buffer.baseAddress! + filled, request)
            if got < 0 {
                if errno == EINTR { continue }
                throw ByteSourceError.io(String(cString: strerror(errno)))
            }
            if got == 0 { break }
            filled += got
        }
        return filled
    }

    func skip(_ count: Int) throws -> Int {
        let here = lseek(descriptor, 0, SEEK_CUR)
        guard here >= 0 else { throw ByteSourceError.io(String(cString: strerror(errno))) }
        let target = Int(here) + min(count, max(0, size - Int(here)))
        guard lseek(descriptor, off_t(target), SEEK_SET) >= 0 else {
            throw ByteSourceError.io(String(cString: strerror(errno)))
        }
        return target - Int(here)
    }

    /// Moves back to the first byte.
    func rewind() throws {
        guard lseek(descriptor, 0, SEEK_SET) == 0 else { throw ByteSourceError.io(String(cString: strerror(errno))) }
    }

    func drain() throws -> Int {
        let here = lseek(descriptor, 0, SEEK_CUR)
        guard here >= 0 else { throw ByteSourceError.io(String(cString: strerror(errno))) }
        return max(0, size - Int(here))
    }
}

/// The decompressed content of a gzip file (RFC 1952), inflated by zlib as it is read.
///
/// zlib verifies each member's CRC-32 and length (ISIZE) when it reaches the member's end, so
/// a corrupt stream fails with `.corruptGzip` and a cut-off one with `.truncatedGzip`; callers
/// who stop early call `drain()` to run those checks over the rest. Concatenated members (as
/// `cat a.gz b.gz` makes) are read as one stream, as gzip(1) does.
final class GzipByteSource: ByteSource {
    private let file: FileByteSource
    private let stream: UnsafeMutablePointer<z_stream>
    private let input: UnsafeMutableRawBufferPointer
    private var fileExhausted = false
    private var finished = false

    /// Upper bound of deflate's compression ratio (RFC 1951 streams expand at most ~1032:1),
    /// used to reject headers that promise more data than the file could hold.
    static let maximumExpansion = 1032

    init(file: FileByteSource, blockSize: Int = 1 << 18) throws {
        self.file = file
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // At least 2 bytes: the next member's magic is carried over between blocks.
        input = .allocate(byteCount: max(2, blockSize), alignment: 16)
        // 15 window bits + 16: expect a gzip wrapper and check its trailer.
        let status = inflateInit2_(stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        // Every stored property is set, so deinit frees the buffers (inflateEnd on a stream
        // whose init failed is harmless).
        guard status == Z_OK else { throw ByteSourceError.corruptGzip("zlib inflateInit2 failed (\(status))") }
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
        input.deallocate()
    }

    /// Makes sure compressed input is available; false when the file has none left.
    private func refill() throws -> Bool {
        if stream.pointee.avail_in > 0 { return true }
        if fileExhausted { return false }
        let got = try file.read(into: input)
        if got == 0 {
            fileExhausted = true
            return false
        }
        stream.pointee.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_in = uInt(got)
        return true
    }

    /// After a member's end: continue if another gzip member follows, else stop. Bytes after
    /// the last member that are not a gzip header are ignored, as gzip(1) does.
    private func startNextMemberIfAny() throws {
        guard try refill() else {
            finished = true
            return
        }
        if stream.pointee.avail_in == 1 && !fileExhausted {
            // The two magic bytes may straddle input blocks: carry the first one over.
            let first = stream.pointee.next_in![0]
            input[0] = first
            let got = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: input[1...]))
            if got == 0 { fileExhausted = true }
            stream.pointee.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_in = uInt(1 + got)
        }
        let next = stream.pointee.next_in!
        if stream.pointee.avail_in >= 2 && next[0] == 0x1f && next[1] == 0x8b {
            inflateReset(stream)
        } else {
            finished = true
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var filled = 0
        while filled < buffer.count && !finished {
            // avail_out is 32-bit: hand zlib at most 1 GiB at a time.
            let request = min(buffer.count - filled, 1 << 30)
            stream.pointee.next_out = (buffer.baseAddress! + filled).assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(request)
            guard try refill() else { throw ByteSourceError.truncatedGzip }
            let status = inflate(stream, Z_NO_FLUSH)
            filled += request - Int(stream.pointee.avail_out)
            switch status {
            case Z_OK:
                continue
            case Z_STREAM_END:
                try startNextMemberIfAny()
            case Z_BUF_ERROR:
                // No progress possible: zlib needs input the file does not have.
                let more = try refill()
                if !more { throw ByteSourceError.truncatedGzip }
            case Z_NEED_DICT:
                throw ByteSourceError.corruptGzip("stream needs a preset dictionary")
            case Z_MEM_ERROR:
                throw ByteSourceError.corruptGzip("zlib ran out of memory")
            default:
                let message = stream.pointee.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                throw ByteSourceError.corruptGzip(message)
            }
        }
        return filled
    }

    func skip(_ count: Int) throws -> Int {
        var scratch = [UInt8](repeating: 0, count: min(count, 1 << 18))
        var skipped = 0
        while skipped < count && !finished {
            let got = try scratch.withUnsafeMutableBytes {
                try read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<min(count - skipped, $0.count)]))
            }
            if got == 0 { break }
            skipped += got
        }
        return skipped
    }

    func drain() throws -> Int { try skip(Int.max) }
}

/// Opens `path` as a byte stream: gzip-compressed files (recognised by their magic bytes
/// `1f 8b`, whatever the name) are inflated as they are read.
func openByteSource(path: String) throws -> (source: ByteSource, fileSize: Int, compressed: Bool) {
    let file = try FileByteSource(path: path)
    var magic: [UInt8] = [0, 0]
    let got = try magic.withUnsafeMutableBytes { try file.read(into: $0) }
    try file.rewind()
    if got == 2 && magic == [0x1f, 0x8b] {
        return (try GzipByteSource(file: file), file.size, true)
    }
    return (file, file.size, false)
}
