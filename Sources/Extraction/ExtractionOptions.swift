import Foundation

/// How each region's values are summarised into one feature.
public enum RegionPooling: String, Sendable, Codable, CaseIterable {
    /// The largest response in the region (Payan & Montana 2015 pool by maximum).
    case max
    /// The average response over the region (steadier on small cohorts; the default).
    case mean
}

/// Where the deeper levels of a stacked autoencoder are applied.
public enum DeepSAELayers: String, Sendable, Codable, CaseIterable {
    /// On each region's pooled first-level codes (cheap; one code vector per region).
    case pooled
    /// At every position of the dense grid of patches, before pooling (each position's
    /// patch goes through the whole stack, as if encoded patch by patch).
    case grid
}

/// Everything that decides the feature values of an extraction (not how fast it runs).
///
/// A scan becomes a vector in two steps: the encoder turns the normalised volume into a
/// feature map `[C, X', Y', Z']`, then each channel is pooled over a grid of `g_x × g_y × g_z`
/// regions, giving `C · g_x · g_y · g_z` features ordered channel first (the layout of
/// PyTorch's `AdaptiveMaxPool3d`/`AdaptiveAvgPool3d` output, flattened).
public struct ExtractionOptions: Sendable, Codable, Equatable {
    public var pooling: RegionPooling = .mean
    /// Regions per axis `[g_x, g_y, g_z]`: region `i` along an axis of `n` map voxels spans
    /// `⌊i·n/g⌋ ..< ⌈(i+1)·n/g⌉` (PyTorch's adaptive pooling bounds).
    public var grid: [Int] = [3, 3, 3]
    /// Stacked autoencoders only: encoder levels used (nil: all of them).
    public var saeLevels: Int?
    /// Stacked autoencoders only: where levels after the first apply.
    public var saeDeepLayers: DeepSAELayers = .grid

    public init() {}

    enum CodingKeys: String, CodingKey {
        case pooling, grid
        case saeLevels = "sae_levels", saeDeepLayers = "sae_deep_layers"
    }

    /// Regions in the grid.
    public var regionCount: Int { grid.reduce(1, *) }

    /// Checks every field, naming the first bad one.
    public func validate() throws(ExtractionError) {
        guard grid.count == 3, grid.allSatisfy({ (1...64).contains($0) }) else {
            throw .invalidOption("grid \(grid): needs three region counts from 1 to 64")
        }
        if let saeLevels, !(1...64).contains(saeLevels) { throw .invalidOption("sae levels \(saeLevels): must be 1 to 64") }
    }
}

/// Settings that change how fast an extraction runs, never its result.
public struct ExtractionResources: Sendable {
    /// Scans encoded at once (each on its own copy of the encoder).
    public var workers = 2
    /// Memory for one slab of the encoder's activations, in MB (10⁶ bytes): volumes whose
    /// activations need more are encoded in slabs along the first axis (results are the same).
    public var tileMegabytes = 256

    public init() {}
}

/// Why features could not be extracted. Each case names the file, line or option to fix.
public enum ExtractionError: Error, Equatable, CustomStringConvertible {
    case invalidOption(String)
    /// Scans that could not be used (each message names the manifest line and file).
    case badScans([String])
    /// The model cannot be applied as configured (e.g. a layer the tiler does not know).
    case unsupportedModel(String)
    /// A scan the encoder cannot use: too small for its field of view or the grid, or giving
    /// non-finite features.
    case unusableScan(path: String, line: Int?, reason: String)
    /// Stopped on request (a signal) before every scan was extracted; nothing was written.
    case interrupted
    /// Every scan was left out (each listed).
    case noUsableScan(manifest: String, skipped: [String])
    /// Shard outputs that do not belong together or are incomplete.
    case shards(String)
    case io(String)

    public var description: String {
        switch self {
        case let .invalidOption(message): return message
        case let .badScans(messages):
            return "\(messages.count) scan\(messages.count == 1 ? "" : "s") could not be used (--skip-bad leaves them out):\n"
                + messages.map { "  " + $0 }.joined(separator: "\n")
        case let .unsupportedModel(message): return message
        case let .unusableScan(path, line, reason): return "\(line.map { "manifest line \($0): " } ?? "")\(path): \(reason)"
        case let .noUsableScan(manifest, skipped):
            return "no usable scan in \(manifest): all \(skipped.count) were left out:\n" + skipped.map { "  " + $0 }.joined(separator: "\n")
        case .interrupted: return "stopped before every scan was extracted; nothing was written"
        case let .shards(message): return message
        case let .io(message): return message
        }
    }
}
