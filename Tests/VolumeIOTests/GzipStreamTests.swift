import Foundation
import Testing
import TensorCore
import TestSupport
@testable import VolumeIO

/// The streamed gzip layer under the volume reader: `GzipWriter` → file → `GzipByteSource`
/// round trips, multi-member streams, truncation and trailer corruption, skip/drain counts.
@Suite struct GzipStreamTests {
    // MARK: Helpers

    /// Seeded test bytes: the first half uniformly random (incompressible), the rest short
    /// repeating runs (compressible), so deflate uses stored, literal and match codes.
    static func payload(_ count: Int, seed: UInt64) -> [UInt8] {
        var generator = Xoshiro256StarStar(seed: seed)
        var bytes = [UInt8](repeating: 0, count: count)
        for index in 0..<count {
            if index < count / 2 {
                bytes[index] = UInt8(truncatingIfNeeded: generator.next() >> 56)
            } else {
                bytes[index] = UInt8(truncatingIfNeeded: (index / 37) % 11 + (index % 3))
            }
        }
        return bytes
    }

    /// Writes `bytes` as a one-member gzip file with our writer; returns the file's bytes.
    @discardableResult
    static func gzip(_ bytes: [UInt8], level: Int, to url: URL) throws -> [UInt8] {
        try writeGzip(bytes, to: url, level: level)
        return [UInt8](try Data(contentsOf: url))
    }

    static func write(_ bytes: [UInt8], to url: URL) throws {
        try Data(bytes).write(to: url)
    }

    /// Reads the whole stream with reads of the sizes in `chunks` (cycled; all > 0), handing
    /// every chunk's bytes to `received` as they arrive (so callers see what came before a throw).
    static func readAll(_ source: any ByteSource, chunks: [Int], received: (([UInt8]) -> Void)? = nil) throws -> [UInt8] {
        var out: [UInt8] = []
        var turn = 0
        while true {
            let want = chunks[turn % chunks.count]
            turn += 1
            let part = try source.readBytes(want)
            out += part
            received?(part)
            if part.count < want { return out }
        }
    }

    /// Opens `url` through `GzipByteSource` directly (whatever its first bytes).
    static func gzipSource(_ url: URL, blockSize: Int = 1 << 18) throws -> GzipByteSource {
        try GzipByteSource(file: FileByteSource(path: url.path), blockSize: blockSize)
    }

    // MARK: Round trips

    @Test func roundTripAtEveryLevelWithOddChunkSizes() throws {
        try withTemporaryDirectory { directory in
            let oddChunks = [1, 7, 4093, 65_537, 3, 262_147, 13]
            for (sizeIndex, size) in [0, 1, 4099, 300_001].enumerated() {
                let data = Self.payload(size, seed: 1000 + UInt64(sizeIndex))
                for level in [0, 1, 6, 9] {
                    let url = directory.appendingPathComponent("round-\(size)-\(level).gz")
                    let file = try Self.gzip(data, level: level, to: url)
                    #expect(file.count >= 18, "a gzip member has at least a 10-byte header and 8-byte trailer")
                    if level == 0 { #expect(file.count > data.count, "level 0 stores (size \(size))") }

                    let (source, fileSize, compressed) = try openByteSource(path: url.path)
                    #expect(compressed, "gzip recognised by its magic (size \(size), level \(level))")
                    #expect(fileSize == file.count)
                    let back = try Self.readAll(source, chunks: oddChunks)
                    let same = back == data
                    #expect(same, "size \(size), level \(level): round trip through openByteSource")
                    #expect(try source.drain() == 0)
                    #expect(try source.readBytes(10).isEmpty, "reads after the end return nothing")

                    // A tiny input block makes every zlib call refill: same bytes.
                    for blockSize in [3, 64, 4096] {
                        let small = try Self.gzipSource(url, blockSize: blockSize)
                        let again = try Self.readAll(small, chunks: [5, 1, 8191])
                        let sameAgain = again == data
                        #expect(sameAgain, "size \(size), level \(level), input block \(blockSize)")
                    }
                }
            }
        }
    }

    @Test func openByteSourceSniffsMagicNotName() throws {
        try withTemporaryDirectory { directory in
            let data = Self.payload(1000, seed: 7)
            let gzNamedBin = directory.appendingPathComponent("stream.bin")
            try Self.gzip(data, level: 6, to: gzNamedBin)
            let (gz, _, compressed) = try openByteSource(path: gzNamedBin.path)
            #expect(compressed)
            #expect(try Self.readAll(gz, chunks: [333]) == data)

            let plainNamedGz = directory.appendingPathComponent("plain.nii.gz")
            try Self.write(data, to: plainNamedGz)
            let (plain, size, plainCompressed) = try openByteSource(path: plainNamedGz.path)
            #expect(!plainCompressed)
            #expect(size == data.count)
            #expect(try Self.readAll(plain, chunks: [333]) == data)

            // One byte 0x1f is not a gzip magic: a plain one-byte stream.
            let lone = directory.appendingPathComponent("lone")
            try Self.write([0x1f], to: lone)
            let (single, _, singleCompressed) = try openByteSource(path: lone.path)
            #expect(!singleCompressed)
            #expect(try single.readBytes(4) == [0x1f])

            #expect(throws: ByteSourceError.self) { _ = try openByteSource(path: directory.appendingPathComponent("absent").path) }
            #expect(throws: ByteSourceError.self) { _ = try openByteSource(path: directory.path) }
        }
    }

    // MARK: Multiple members and trailing bytes

    @Test func concatenatedMembersReadAsOneStream() throws {
        try withTemporaryDirectory { directory in
            let a = Self.payload(5000, seed: 11), b = Self.payload(3001, seed: 12)
            let gzA = try Self.gzip(a, level: 6, to: directory.appendingPathComponent("a.gz"))
            let gzB = try Self.gzip(b, level: 1, to: directory.appendingPathComponent("b.gz"))
            let gzEmpty = try Self.gzip([], level: 9, to: directory.appendingPathComponent("e.gz"))
            let cases: [(String, [UInt8], [UInt8])] = [
                ("a+b", gzA + gzB, a + b),
                ("a+empty+b", gzA + gzEmpty + gzB, a + b),
                ("empty+a", gzEmpty + gzA, a),
                ("b+b+b", gzB + gzB + gzB, b + b + b),
            ]
            for (name, file, expected) in cases {
                let url = directory.appendingPathComponent("\(name).gz")
                try Self.write(file, to: url)
                let (source, _, compressed) = try openByteSource(path: url.path)
                #expect(compressed)
                let all = try Self.readAll(source, chunks: [4099, 17])
                #expect(all.count == expected.count && all == expected, "\(name): all members, in order (\(all.count) of \(expected.count) bytes)")
                #expect(try source.drain() == 0)

                // skip() crosses member boundaries too.
                let skipping = try Self.gzipSource(url)
                #expect(try skipping.skip(expected.count - 10) == expected.count - 10, "\(name): skip across members")
                #expect(try skipping.readBytes(100) == Array(expected.suffix(10)))
            }
        }
    }

    /// A member whose successor's magic `1f 8b` straddles two input blocks (the first block
    /// ends on `1f`): the second member must still be read, not silently dropped, whatever the
    /// input block size.
    @Test func nextMemberMagicSplitAcrossInputBlocks() throws {
        try withTemporaryDirectory { directory in
            let a = Self.payload(5000, seed: 21), b = Self.payload(4000, seed: 22)
            let gzA = try Self.gzip(a, level: 6, to: directory.appendingPathComponent("a.gz"))
            let gzB = try Self.gzip(b, level: 6, to: directory.appendingPathComponent("b.gz"))
            let url = directory.appendingPathComponent("ab.gz")
            try Self.write(gzA + gzB, to: url)
            // Block sizes that end the first input block just before, on, and just after the
            // second member's first byte.
            for blockSize in [1, 2, gzA.count - 1, gzA.count, gzA.count + 1, gzA.count + 2] {
                let source = try Self.gzipSource(url, blockSize: blockSize)
                let back = try Self.readAll(source, chunks: [1 << 16])
                #expect(back.count == a.count + b.count, "input block \(blockSize): \(back.count) bytes, expected \(a.count + b.count)")
                let both = back == a + b
                #expect(both, "input block \(blockSize): both members")
            }

            // The same with the default 256 KiB input block: a first member of exactly
            // 2^18 − 1 bytes (stored, so its size follows the payload size).
            let target = (1 << 18) - 1
            var size = target - 40
            var first: [UInt8] = []
            var firstGz: [UInt8] = []
            for _ in 0..<12 {
                first = Self.payload(size, seed: 23)
                firstGz = try Self.gzip(first, level: 0, to: directory.appendingPathComponent("big.gz"))
                if firstGz.count == target { break }
                size += target - firstGz.count
            }
            try #require(firstGz.count == target, "could not make a \(target)-byte member")
            let bigURL = directory.appendingPathComponent("big-ab.gz")
            try Self.write(firstGz + gzB, to: bigURL)
            let (source, _, _) = try openByteSource(path: bigURL.path)
            let back = try Self.readAll(source, chunks: [1 << 16])
            #expect(back.count == first.count + b.count, "default input block: second member read")
            let bothBig = back == first + b
            #expect(bothBig, "default input block: both members")
        }
    }

    /// The same at the volume level: a valid two-member `.nii.gz` (as `cat` or bgzip-style
    /// tools make) whose first member is 2^18 − 1 bytes must read like the one-member file.
    @Test func multiMemberNiftiWithMemberEndingOneByteBeforeAnInputBlock() throws {
        try withTemporaryDirectory { directory in
            var content = Array([UInt8](try Data(contentsOf: VolumeFixtures.volumes.appendingPathComponent("generated/dtype_int16_le.nii"))).prefix(352))
            for (axis, extent) in [3, 64, 64, 40].enumerated() {
                content[40 + 2 * axis] = UInt8(extent & 0xff)
                content[41 + 2 * axis] = UInt8(extent >> 8)
            }
            content += Self.payload(64 * 64 * 40 * 2, seed: 24)
            let plain = directory.appendingPathComponent("reference.nii")
            try Self.write(content, to: plain)
            let reference = try VolumeReader.read(plain, options: VolumeReadOptions(nonFinite: .keep))

            let target = (1 << 18) - 1
            var split = target - 40
            var first: [UInt8] = []
            for _ in 0..<12 {
                first = try Self.gzip(Array(content.prefix(split)), level: 0, to: directory.appendingPathComponent("first.gz"))
                if first.count == target { break }
                split += target - first.count
            }
            try #require(first.count == target, "could not make a \(target)-byte member")
            let second = try Self.gzip(Array(content.dropFirst(split)), level: 6, to: directory.appendingPathComponent("second.gz"))
            let url = directory.appendingPathComponent("two-members.nii.gz")
            try Self.write(first + second, to: url)
            do {
                let volume = try VolumeReader.read(url, options: VolumeReadOptions(nonFinite: .keep))
                let same = volume.data.scalars == reference.data.scalars
                #expect(same, "two-member file: voxels differ from the one-member reading")
            } catch {
                Issue.record("valid two-member .nii.gz rejected: \(error)")
            }
        }
    }

    @Test func trailingGarbageAfterLastMemberIsIgnored() throws {
        try withTemporaryDirectory { directory in
            let data = Self.payload(7000, seed: 31)
            let gz = try Self.gzip(data, level: 6, to: directory.appendingPathComponent("x.gz"))
            let tails: [(String, [UInt8])] = [
                ("zeros", [UInt8](repeating: 0, count: 512)),  // tar-style padding
                ("text", Array("trailing garbage\n".utf8)),
                ("lone-1f", [0x1f]),
                ("1f-00", [0x1f, 0x00, 0x8b]),
            ]
            for (name, tail) in tails {
                let url = directory.appendingPathComponent("\(name).gz")
                try Self.write(gz + tail, to: url)
                for blockSize in [1 << 18, 5] {
                    let source = try Self.gzipSource(url, blockSize: blockSize)
                    let back = try Self.readAll(source, chunks: [999])
                    #expect(back.count == data.count && back == data, "\(name), input block \(blockSize): \(back.count) bytes")
                    #expect(try source.drain() == 0)
                }
            }
        }
    }

    // MARK: Damage

    @Test func truncationAtEveryLengthIsReported() throws {
        try withTemporaryDirectory { directory in
            let data = Self.payload(3000, seed: 41)
            let full = try Self.gzip(data, level: 6, to: directory.appendingPathComponent("full.gz"))
            var kinds: [String: Int] = [:]
            for length in 0..<full.count {
                let url = directory.appendingPathComponent("cut.gz")
                try Self.write(Array(full.prefix(length)), to: url)
                // Bytes delivered before the error must be a prefix of the real content.
                var delivered: [UInt8] = []
                do {
                    let source = try Self.gzipSource(url, blockSize: length % 2 == 0 ? 1 << 18 : 97)
                    _ = try Self.readAll(source, chunks: [701]) { delivered += $0 }
                    _ = try source.drain()
                    Issue.record("length \(length) of \(full.count): truncated stream read without error")
                } catch let error as ByteSourceError {
                    switch error {
                    case .truncatedGzip: kinds["truncatedGzip", default: 0] += 1
                    case .corruptGzip: kinds["corruptGzip", default: 0] += 1
                    case .io: Issue.record("length \(length): I/O error \(error)")
                    }
                    #expect(error == .truncatedGzip, "length \(length): a cut-off stream is truncated, got \(error)")
                }
                let prefix = delivered == Array(data.prefix(delivered.count))
                #expect(prefix, "length \(length): wrong bytes before the error")
            }
            #expect(kinds["truncatedGzip", default: 0] == full.count, "outcomes: \(kinds)")
        }
    }

    @Test func flippedTrailerBytesAreCorrupt() throws {
        try withTemporaryDirectory { directory in
            let data = Self.payload(2500, seed: 51)
            let full = try Self.gzip(data, level: 6, to: directory.appendingPathComponent("full.gz"))
            let url = directory.appendingPathComponent("bad.gz")
            // Trailer: CRC-32 (4 bytes) then ISIZE (4 bytes), little-endian.
            for offset in (full.count - 8)..<full.count {
                for mask: UInt8 in [0x01, 0x80, 0xff] {
                    var bad = full
                    bad[offset] ^= mask
                    try Self.write(bad, to: url)
                    let isCRC = offset < full.count - 4
                    let expected = isCRC ? "incorrect data check" : "incorrect length check"
                    #expect(throws: ByteSourceError.corruptGzip(expected), "trailer byte \(offset - full.count + 8), mask \(mask)") {
                        _ = try Self.readAll(try Self.gzipSource(url), chunks: [1000])
                    }
                    // Reading only part of the stream and draining finds the same damage.
                    #expect(throws: ByteSourceError.corruptGzip(expected)) {
                        let source = try Self.gzipSource(url)
                        _ = try source.readBytes(10)
                        _ = try source.drain()
                    }
                }
            }
            // A flipped byte inside the deflate data: never a silent success.
            var generator = Xoshiro256StarStar(seed: 52)
            for _ in 0..<200 {
                var bad = full
                let offset = 10 + Int(generator.next() % UInt64(full.count - 18))
                bad[offset] ^= UInt8(1 << (generator.next() % 8))
                try Self.write(bad, to: url)
                do {
                    let back = try Self.readAll(try Self.gzipSource(url), chunks: [4096])
                    Issue.record("flipped deflate byte \(offset) read without error (\(back == data ? "same" : "different") bytes)")
                } catch let error as ByteSourceError {
                    if case .io = error { Issue.record("offset \(offset): unexpected I/O error \(error)") }
                }
            }
        }
    }

    // MARK: skip / drain

    @Test func skipAndDrainCountsOnGzip() throws {
        try withTemporaryDirectory { directory in
            let count = 600_000  // more than two 256 KiB skip scratch buffers
            let data = Self.payload(count, seed: 61)
            let url = directory.appendingPathComponent("s.gz")
            try Self.gzip(data, level: 1, to: url)

            let source = try Self.gzipSource(url)
            #expect(try source.skip(0) == 0)
            #expect(try source.skip(1000) == 1000)
            #expect(try source.readBytes(10) == Array(data[1000..<1010]))
            #expect(try source.skip(300_000) == 300_000)
            #expect(try source.readBytes(3) == Array(data[301_010..<301_013]))
            #expect(try source.drain() == count - 301_013)
            #expect(try source.drain() == 0)
            #expect(try source.skip(5) == 0)
            #expect(try source.readBytes(5).isEmpty)

            let past = try Self.gzipSource(url)
            #expect(try past.skip(count + 12_345) == count, "skip past the end stops at the end")
            #expect(try past.drain() == 0)

            let fresh = try Self.gzipSource(url, blockSize: 1000)
            #expect(try fresh.drain() == count, "drain of an unread stream counts every byte")
        }
    }

    @Test func skipAndDrainCountsOnPlainFile() throws {
        try withTemporaryDirectory { directory in
            let data = Self.payload(10_000, seed: 71)
            let url = directory.appendingPathComponent("plain.bin")
            try Self.write(data, to: url)
            let source = try FileByteSource(path: url.path)
            #expect(source.size == data.count)
            #expect(try source.skip(0) == 0)
            #expect(try source.skip(100) == 100)
            #expect(try source.readBytes(4) == Array(data[100..<104]))
            #expect(try source.drain() == data.count - 104)
            #expect(try source.skip(50_000) == data.count - 104, "skip past the end stops at the end")
            #expect(try source.drain() == 0)
            #expect(try source.readBytes(4).isEmpty)
            try source.rewind()
            #expect(try source.readBytes(4) == Array(data[0..<4]))
        }
    }

    /// `GzipByteSource.drain()` is `skip(Int.max)`, so "skip everything" is part of the
    /// `ByteSource` contract; a plain file must not overflow computing `position + count`.
    @Test func plainFileSkipOfIntMaxDoesNotTrap() async {
        await #expect(processExitsWith: .success) {
            let directory = FileManager.default.temporaryDirectory
                .appendingPathComponent("volumeio-gzip-\(UUID().uuidString)", isDirectory: true)
            try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let url = directory.appendingPathComponent("plain.bin")
            try? Data(repeating: 7, count: 100).write(to: url)
            let source = try? FileByteSource(path: url.path)
            _ = try? source?.readBytes(10)
            let skipped = try? source?.skip(Int.max)
            #expect(skipped == 90)
        }
    }
}

/// The same bytes come out for any thread count, including inputs that end exactly on a
/// batch boundary (1 MiB blocks × threads). Thread counts are process-wide: run in a child.
@Suite struct GzipDeterminismTests {
    @Test func outputIsIdenticalForEveryThreadCount() async {
        await #expect(processExitsWith: .success) {
            let previous = Engine.threads
            defer { Engine.setThreads(previous) }
            for size in [0, 352, (1 << 20) - 1, 1 << 20, 2 << 20, 3 << 20, 6 << 20, (6 << 20) + 5] {
                let bytes = GzipStreamTests.payload(size, seed: UInt64(size))
                var outputs: [[UInt8]] = []
                for threads in [1, 2, 3] {
                    Engine.setThreads(threads)
                    let url = FileManager.default.temporaryDirectory.appendingPathComponent("determinism-\(UUID().uuidString).gz")
                    defer { try? FileManager.default.removeItem(at: url) }
                    outputs.append((try? GzipStreamTests.gzip(bytes, level: 1, to: url)) ?? [])
                    #expect((try? decompressedBytes(url)) == bytes, "size \(size), \(threads) threads: round trip")
                }
                #expect(outputs[0] == outputs[1] && outputs[1] == outputs[2], "size \(size): bytes differ across thread counts")
            }
        }
    }
}
