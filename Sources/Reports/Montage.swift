import Foundation

/// Lays 2-D slices (for example MRI slices, reconstructions or error maps) out as one 8-bit
/// greyscale image, ready for `PNGImage.grayscale`.
public enum Montage {
    /// How values become grey levels 0 (black) … 255 (white).
    public enum Scaling: Sendable {
        /// Each tile's finite minimum → 0 and maximum → 255.
        case perTile
        /// The finite minimum → 0 and maximum → 255 over all tiles, so tiles compare.
        case shared
        /// −m → 0, 0 → 128 (mid-grey), +m → 255, with m the largest finite |value| over all
        /// tiles: for signed maps such as differences.
        case symmetric
    }

    /// Grey level of the gaps, of unused grid cells and of constant tiles.
    static let midGrey: UInt8 = 128

    /// The tiles in a grid of `min(columns, tiles.count)` columns, filled row by row from the
    /// top left, each tile drawn with its row 0 at the top and enlarged `scale`× by
    /// nearest-neighbour repetition, separated by `gap`-pixel mid-grey lines (none at the outer
    /// edge); unused cells of the last row are mid-grey.
    ///
    /// Values map linearly to grey levels as `scaling` says, rounded to the nearest level; a
    /// tile (or, for `shared` and `symmetric`, the whole set) without spread is mid-grey, and
    /// non-finite values are black and ignored for the ranges. No tiles give an empty 0×0 image.
    ///
    /// - Parameters:
    ///   - tiles: Each tile is `tileWidth × tileHeight` values, row-major.
    ///   - scale: Output pixels per tile pixel along each axis.
    ///   - gap: Separator width in output pixels.
    /// - Returns: Row-major grey levels and the image size in pixels:
    ///   `width = c × tileWidth × scale + (c − 1) × gap` for `c` columns, likewise `height` for rows.
    /// - Precondition: `tileWidth`, `tileHeight`, `columns` and `scale` are at least 1, `gap` is
    ///   at least 0, and every tile holds `tileWidth × tileHeight` values.
    public static func grayscale(tiles: [[Float]], tileWidth: Int, tileHeight: Int, columns: Int, scale: Int, gap: Int = 1, scaling: Scaling) -> (pixels: [UInt8], width: Int, height: Int) {
        precondition(tileWidth >= 1 && tileHeight >= 1, "montage tiles must be at least 1×1, got \(tileWidth)×\(tileHeight)")
        precondition(columns >= 1 && scale >= 1 && gap >= 0, "montage needs columns ≥ 1, scale ≥ 1 and gap ≥ 0, got \(columns), \(scale), \(gap)")
        for (index, tile) in tiles.enumerated() {
            precondition(tile.count == tileWidth * tileHeight, "montage tile \(index) has \(tile.count) values, expected \(tileWidth)×\(tileHeight)")
        }
        guard !tiles.isEmpty else { return ([], 0, 0) }

        let gridColumns = min(columns, tiles.count)
        let gridRows = (tiles.count + gridColumns - 1) / gridColumns
        let cellWidth = tileWidth * scale, cellHeight = tileHeight * scale
        let width = gridColumns * cellWidth + (gridColumns - 1) * gap
        let height = gridRows * cellHeight + (gridRows - 1) * gap
        var pixels = [UInt8](repeating: midGrey, count: width * height)

        let overall = scaling == .perTile ? nil : range(of: tiles.joined())
        for (index, tile) in tiles.enumerated() {
            let levels: Levels
            switch scaling {
            case .perTile: levels = Levels(range: range(of: tile))
            case .shared: levels = Levels(range: overall)
            case .symmetric:
                let extent = overall.map { max(abs($0.min), abs($0.max)) } ?? 0
                levels = Levels(range: (-extent, extent))
            }
            let originX = (index % gridColumns) * (cellWidth + gap)
            let originY = (index / gridColumns) * (cellHeight + gap)
            var row = [UInt8](repeating: 0, count: cellWidth)
            for tileY in 0..<tileHeight {
                for tileX in 0..<tileWidth {
                    let level = levels.grey(tile[tileY * tileWidth + tileX])
                    for repeatX in 0..<scale {
                        row[tileX * scale + repeatX] = level
                    }
                }
                for repeatY in 0..<scale {
                    let start = (originY + tileY * scale + repeatY) * width + originX
                    pixels.replaceSubrange(start..<(start + cellWidth), with: row)
                }
            }
        }
        return (pixels, width, height)
    }

    /// Finite minimum and maximum of `values` (as `Double`, so spans cannot overflow), or `nil`.
    private static func range(of values: some Sequence<Float>) -> (min: Double, max: Double)? {
        var result: (min: Double, max: Double)?
        for value in values where value.isFinite {
            let value = Double(value)
            result = (min(result?.min ?? value, value), max(result?.max ?? value, value))
        }
        return result
    }

    /// A linear map from a value range onto 0…255.
    private struct Levels {
        let lower: Double
        let upper: Double

        /// `range` `nil` (no finite values) or without spread maps every finite value to mid-grey.
        init(range: (min: Double, max: Double)?) {
            lower = range?.min ?? 0
            upper = range?.max ?? 0
        }

        func grey(_ value: Float) -> UInt8 {
            guard value.isFinite else { return 0 }
            guard upper > lower else { return Montage.midGrey }
            let level = ((Double(value) - lower) / (upper - lower) * 255).rounded()
            return UInt8(min(max(level, 0), 255))
        }
    }
}
