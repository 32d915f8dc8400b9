import Foundation
import Testing
import TensorCore
import TestSupport

@Suite struct AtomicFileTests {
    @Test func writesContentThatReadsBack() throws {
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("report.json")
            let data = Data((0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
            try AtomicFile.write(data, to: url)
            #expect(try Data(contentsOf: url) == data)
            // Only the destination remains: no temporary file left behind.
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["report.json"])
        }
    }

    @Test func replacesExistingFileCompletely() throws {
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("checkpoint.bin")
            try AtomicFile.write(Data(repeating: 0xAB, count: 4096), to: url)
            let shorter = Data("short".utf8)
            try AtomicFile.write(shorter, to: url)
            #expect(try Data(contentsOf: url) == shorter)
            try AtomicFile.write(Data(), to: url)
            #expect(try Data(contentsOf: url).isEmpty)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["checkpoint.bin"])
        }
    }

    @Test func nonExistentDirectoryThrows() throws {
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("missing/sub/out.txt")
            let error = #expect(throws: FileWriteError.self) { try AtomicFile.write(Data("x".utf8), to: url) }
            if case let .cannotWrite(path, reason)? = error {
                #expect(path == url.path)
                #expect(!reason.isEmpty)
            }
            #expect(!FileManager.default.fileExists(atPath: url.path))
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            #expect(leftovers.isEmpty)
        }
    }

    @Test func destinationIsADirectoryThrowsAndCleansUp() throws {
        try withTemporaryDirectory { directory in
            // rename(2) cannot replace a non-empty directory with a file.
            let url = directory.appendingPathComponent("taken")
            try FileManager.default.createDirectory(at: url.appendingPathComponent("inner"), withIntermediateDirectories: true)
            #expect(throws: FileWriteError.self) { try AtomicFile.write(Data("x".utf8), to: url) }
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["taken"])
        }
    }
}
