import Foundation

/// Errors writing files.
public enum FileWriteError: Error, CustomStringConvertible {
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotWrite(path, reason): return "cannot write \(path): \(reason)"
        }
    }
}

/// Writes whole files so that a reader never sees a partial one: the bytes go to a
/// temporary file in the same directory, are flushed to disk, and the temporary file is
/// renamed over the destination (an atomic replace on POSIX file systems). A run killed
/// mid-write leaves at most a stray `.tmp` file, never a half-written checkpoint or report.
public enum AtomicFile {
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { sink in try data.withUnsafeBytes { try sink.write($0) } }
    }

    /// Streams a file: `produce` writes its bytes in pieces through the sink; the destination
    /// appears (atomically) only once `produce` has returned and the bytes are on disk. If
    /// `produce` throws, the temporary file is removed and the error rethrown.
    public static func write(to url: URL, _ produce: (Sink) throws -> Void) throws {
        let directory = url.deletingLastPathComponent()
        // Unique per process and per call, so concurrent writers never share a temporary.
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UUID().uuidString)")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw FileWriteError.cannotWrite(path: url.path, reason: String(cString: strerror(errno))) }
        let sink = Sink(descriptor: fd, path: url.path)
        var open = true
        do {
            try produce(sink)
            guard fsync(fd) == 0 else { throw FileWriteError.cannotWrite(path: url.path, reason: String(cString: strerror(errno))) }
            close(fd)
            open = false
            guard rename(temporary.path, url.path) == 0 else {
                throw FileWriteError.cannotWrite(path: url.path, reason: String(cString: strerror(errno)))
            }
        } catch {
            if open { close(fd) }
            unlink(temporary.path)
            throw error
        }
    }

    /// The write end of a file being written by `AtomicFile.write(to:_:)`.
    public final class Sink {
        private let descriptor: Int32
        private let path: String
        /// Bytes written so far.
        public private(set) var bytesWritten = 0

        init(descriptor: Int32, path: String) {
            self.descriptor = descriptor
            self.path = path
        }

        public func write(_ bytes: UnsafeRawBufferPointer) throws {
            var offset = 0
            while offset < bytes.count {
                let written = Foundation.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw FileWriteError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
                }
                offset += written
            }
            bytesWritten += bytes.count
        }
    }
}
