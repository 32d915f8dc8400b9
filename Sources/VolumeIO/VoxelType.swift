/// The on-disk type of a voxel: the NIfTI `datatype` codes this workbench reads (Analyze 7.5
/// uses the same codes for the subset it has: uint8, int16, int32, float32, float64).
public enum VoxelType: Int, Sendable, CaseIterable, Codable, CustomStringConvertible {
    case uint8 = 2
    case int16 = 4
    case int32 = 8
    case float32 = 16
    case float64 = 64
    case int8 = 256
    case uint16 = 512
    case uint32 = 768
    case int64 = 1024
    case uint64 = 1280

    /// The NIfTI `datatype` code.
    public var code: Int { rawValue }

    /// Bytes per voxel.
    public var byteCount: Int {
        switch self {
        case .uint8, .int8: return 1
        case .int16, .uint16: return 2
        case .int32, .uint32, .float32: return 4
        case .int64, .uint64, .float64: return 8
        }
    }

    /// The numpy-style name (`"int16"`, `"float32"`, ...).
    public var description: String {
        switch self {
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .int16: return "int16"
        case .uint16: return "uint16"
        case .int32: return "int32"
        case .uint32: return "uint32"
        case .int64: return "int64"
        case .uint64: return "uint64"
        case .float32: return "float32"
        case .float64: return "float64"
        }
    }

    /// Parses a numpy-style name.
    public init?(name: String) {
        guard let match = VoxelType.allCases.first(where: { $0.description == name }) else { return nil }
        self = match
    }

    public var isFloatingPoint: Bool { self == .float32 || self == .float64 }

    /// The types Analyze 7.5 defines (nibabel rejects the others in an Analyze header).
    public var isAnalyzeType: Bool { [.uint8, .int16, .int32, .float32, .float64].contains(self) }

    /// The representable range for integer types, as Doubles (nil for floating point).
    public var integerRange: ClosedRange<Double>? {
        switch self {
        case .uint8: return 0...255
        case .int8: return -128...127
        case .int16: return -32768...32767
        case .uint16: return 0...65535
        case .int32: return -2_147_483_648...2_147_483_647
        case .uint32: return 0...4_294_967_295
        case .int64: return -9.223372036854775808e18...9.223372036854774784e18
        case .uint64: return 0...1.8446744073709549568e19
        case .float32, .float64: return nil
        }
    }
}
