import Foundation
import VolumeIO

/// Why a preprocessing step could not run. Every case names the scan (its path, or a label
/// such as "template") and the value at fault; none is a crash.
public enum PreprocessingError: Error, Equatable, CustomStringConvertible {
    /// An option outside its range, e.g. a negative voxel size or an unknown step.
    case invalidOption(name: String, value: String, reason: String)
    /// The volume is not usable for this step: 4-D, too small, a degenerate affine...
    case unsupportedVolume(path: String, reason: String)
    /// NaN or infinite voxels where finite intensities are needed.
    case nonFiniteVoxels(path: String, count: Int)
    /// Nothing above the background: an empty or constant image, or an empty mask.
    case noForeground(path: String, reason: String)
    /// Two images that must share a grid do not (e.g. a mask on another grid than its scan).
    case gridMismatch(path: String, expected: String, found: String)
    /// The registration did not produce a usable transform (diverged, left the field of view,
    /// or ended with an implausible fit).
    case registrationFailed(path: String, reason: String)
    /// A transform file that cannot be read.
    case invalidTransformFile(path: String, line: Int, reason: String)
    /// Reading or writing a volume failed.
    case volume(VolumeError)
    /// A file or folder could not be written.
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidOption(name, value, reason): return "invalid \(name) \(value): \(reason)"
        case let .unsupportedVolume(path, reason): return "\(path): \(reason)"
        case let .nonFiniteVoxels(path, count): return "\(path): \(count) NaN or infinite voxel\(count == 1 ? "" : "s"); preprocessing needs finite intensities"
        case let .noForeground(path, reason): return "\(path): no foreground: \(reason)"
        case let .gridMismatch(path, expected, found): return "\(path): on grid \(found), expected \(expected)"
        case let .registrationFailed(path, reason): return "\(path): registration failed: \(reason)"
        case let .invalidTransformFile(path, line, reason): return "\(path):\(line): not a transform: \(reason)"
        case let .volume(error): return error.description
        case let .cannotWrite(path, reason): return "\(path): cannot write: \(reason)"
        }
    }
}
