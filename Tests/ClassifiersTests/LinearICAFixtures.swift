import Foundation
import TensorCore

/// Reads the scikit-learn fixtures written by `Tests/Fixtures/make_linear_ica_fixtures.py`.
enum LinearICAFixtures {
    /// `Tests/Fixtures/<relative>`, located from this source file.
    static func url(_ relative: String) -> URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/\(relative)")
    }

    /// Decodes a fixture with `JSONDecoder` (base64 strings become `Data`).
    static func load<T: Decodable>(_ type: T.Type, _ relative: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(contentsOf: url(relative)))
    }

    /// Little-endian float32 values packed in `data`.
    static func floats(_ data: Data) -> [Float] {
        let bytes = [UInt8](data)
        return stride(from: 0, to: bytes.count - 3, by: 4).map { o in
            Float(bitPattern: UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24)
        }
    }

    /// A `[rows, columns]` tensor from packed float32 values.
    static func matrix(_ data: Data, _ rows: Int, _ columns: Int) throws -> Tensor {
        try Tensor(shape: [rows, columns], scalars: floats(data))
    }
}
