import Foundation
import TensorCore
import Testing

// NumpyFile against numpy itself: files numpy.save wrote (read, or rejected), and what numpy
// saw in a file NumpyFile wrote. Fixtures: Tests/Fixtures/make_npy_fixtures.py.

private let npyFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/Extraction/npy")

/// The tensor behind `adwb_written.npy`: `[4, 6]` with `i·0.25 − 1.5`, except a few special
/// values (the smallest subnormal, a negative subnormal, −0, the largest float).
private func deterministicTensor() throws -> Tensor {
    var values = (0..<24).map { Float($0) * 0.25 - 1.5 }
    values[6] = -0.0
    values[7] = Float.leastNonzeroMagnitude
    values[13] = -Float.leastNormalMagnitude / 4
    values[23] = Float.greatestFiniteMagnitude
    return try Tensor(shape: [4, 6], scalars: values)
}

private struct NumpyRead: Decodable {
    var file: String
    var version: [Int]
    var shape: [Int]
    var dtype: String
    var fortranOrder: Bool
    var headerLength: Int
    var dataOffset: Int
    var bits: [UInt32]
    var hex: [String]

    enum CodingKeys: String, CodingKey {
        case file, version, shape, dtype, bits, hex
        case fortranOrder = "fortran_order", headerLength = "header_length", dataOffset = "data_offset"
    }
}

private func npyBits(_ values: [Float]) -> [UInt32] { values.map { $0.bitPattern } }

@Test func readsNumpysFloat32Matrix() throws {
    let tensor = try NumpyFile.read(from: npyFixtures.appendingPathComponent("float32_2d.npy"))
    #expect(tensor.shape == [3, 4])
    let expected: [Float] = [1, -0.0, 1e-30, .nan,
                             -2.5, .greatestFiniteMagnitude, .infinity, .leastNonzeroMagnitude,
                             0.1, -1e-30, 65504, -7]
    // Bit for bit: −0 keeps its sign, NaN is numpy's quiet NaN, the subnormal survives.
    #expect(npyBits(tensor.scalars) == npyBits(expected))
}

@Test func readsNumpysVectorAndEmptyMatrix() throws {
    let vector = try NumpyFile.read(from: npyFixtures.appendingPathComponent("float32_1d.npy"))
    #expect(vector.shape == [5])
    #expect(npyBits(vector.scalars) == npyBits([0.5, -1, 2, -3.25, 1e20]))

    let empty = try NumpyFile.read(from: npyFixtures.appendingPathComponent("float32_empty.npy"))
    #expect(empty.shape == [0, 3])
    #expect(empty.scalars.isEmpty)
}

@Test(arguments: ["float64_2d.npy", "float32_fortran.npy"])
func rejectsWhatItCannotRead(_ name: String) throws {
    let url = npyFixtures.appendingPathComponent(name)
    // The files are well-formed for numpy (2 × 3 of 4 or 8 bytes after a 64-byte-aligned header).
    #expect(FileManager.default.fileExists(atPath: url.path))
    let error = #expect(throws: NumpyFileError.self) { try NumpyFile.read(from: url) }
    guard case let .malformed(path, reason) = error else { return }
    #expect(path == url.path)
    #expect(reason.contains(name.hasPrefix("float64") ? "dtype" : "C order"))
}

@Test func encodeMatchesTheCommittedFileNumpyRead() throws {
    let tensor = try deterministicTensor()
    let encoded = NumpyFile.encode(tensor)
    let committed = npyFixtures.appendingPathComponent("adwb_written.npy")
    if ProcessInfo.processInfo.environment["ADWB_WRITE_NPY_FIXTURE"] == "1" {
        try encoded.write(to: committed)
    }
    let fileBytes = try Data(contentsOf: committed)
    #expect(encoded == fileBytes, "NumpyFile.encode no longer gives the bytes numpy was checked against")

    // What numpy saw when it loaded that file.
    let seen = try JSONDecoder().decode(NumpyRead.self, from: try Data(contentsOf: npyFixtures.appendingPathComponent("numpy_read.json")))
    #expect(seen.file == "adwb_written.npy")
    #expect(seen.version == [1, 0])
    #expect(seen.shape == [4, 6])
    #expect(seen.dtype == "<f4")
    #expect(!seen.fortranOrder)
    #expect(seen.bits == npyBits(tensor.scalars))
    #expect(seen.hex.count == 24)
    #expect(seen.hex[7] == "0x1.0000000000000p-149")
    #expect(seen.hex[6] == "-0x0.0p+0")

    // The values start at a multiple of 64 bytes, right after the header numpy parsed.
    let headerLength = Int(encoded[8]) | Int(encoded[9]) << 8
    #expect(headerLength == seen.headerLength)
    #expect(seen.dataOffset == 10 + headerLength)
    #expect(seen.dataOffset % 64 == 0)
    #expect(encoded.count == seen.dataOffset + 24 * 4)
    #expect(encoded[10 + headerLength - 1] == UInt8(ascii: "\n"))

    // And the file reads back to the same bits.
    let back = try NumpyFile.decode([UInt8](encoded), path: "adwb_written.npy")
    #expect(back.shape == [4, 6])
    #expect(npyBits(back.scalars) == npyBits(tensor.scalars))
}

/// numpy 2.4's `np.save` header for these shapes (float32, C order): `(7,)` for one axis.
@Test(arguments: [([0], "(0,)"), ([7], "(7,)"), ([0, 3], "(0, 3)"), ([2, 3, 4], "(2, 3, 4)"), ([1, 1, 1, 1, 1], "(1, 1, 1, 1, 1)")])
func encodedHeadersAreAlignedAndReadBack(_ shape: [Int], _ numpyShape: String) throws {
    let count = shape.reduce(1, *)
    let tensor = try Tensor(shape: shape, scalars: (0..<count).map { Float($0) - 0.5 })
    let encoded = NumpyFile.encode(tensor)
    let headerLength = Int(encoded[8]) | Int(encoded[9]) << 8
    #expect((10 + headerLength) % 64 == 0)
    let header = String(decoding: encoded[10..<(10 + headerLength)], as: UTF8.self)
    let expected = "{'descr': '<f4', 'fortran_order': False, 'shape': \(numpyShape), }"
    #expect(header.hasPrefix(expected + " "))
    #expect(header.hasSuffix(" \n"))
    #expect(header.dropFirst(expected.count).dropLast().allSatisfy { $0 == " " })
    let back = try NumpyFile.decode([UInt8](encoded), path: "memory")
    #expect(back.shape == shape)
    #expect(npyBits(back.scalars) == npyBits(tensor.scalars))
}
