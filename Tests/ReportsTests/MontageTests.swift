import Foundation
import Reports
import Testing

/// Montage layout and grey-level mapping on tiny tiles, checked against hand-computed images.
@Suite struct MontageTests {
    /// Three 2×1 tiles in two columns, scale 2, gap 1: a 9×5 image whose unused cell and gaps
    /// are mid-grey. A is 0…10 → 0, 255; B is constant (with a NaN) → 128, 0; C is 2…4 → 0, 255.
    @Test func perTileLayoutWithScaleAndGap() {
        let montage = Montage.grayscale(tiles: [[0, 10], [-1, .nan], [2, 4]], tileWidth: 2, tileHeight: 1, columns: 2, scale: 2, gap: 1, scaling: .perTile)
        #expect(montage.width == 9 && montage.height == 5)
        let tileRow: [UInt8] = [0, 0, 255, 255, 128, 128, 128, 0, 0]
        let gapRow = [UInt8](repeating: 128, count: 9)
        let lastRow: [UInt8] = [0, 0, 255, 255, 128, 128, 128, 128, 128]
        #expect(montage.pixels == tileRow + tileRow + gapRow + lastRow + lastRow)
    }

    /// Shared range 0…4 over both tiles: 0 → 0, 1 → 63.75 → 64, 2 → 127.5 → 128, 4 → 255;
    /// one column stacks the tiles with no gap.
    @Test func sharedScalingStacksInOneColumn() {
        let montage = Montage.grayscale(tiles: [[0, 1], [2, 4]], tileWidth: 2, tileHeight: 1, columns: 1, scale: 1, gap: 0, scaling: .shared)
        #expect(montage.width == 2 && montage.height == 2)
        #expect(montage.pixels == [0, 64, 128, 255])
    }

    /// Symmetric: m = 2 over both tiles (∞ ignored), v → (v + 2) / 4 × 255; rows run top-down
    /// and columns are capped at the tile count (2, not 3).
    @Test func symmetricScalingCentresZeroAtMidGrey() {
        let tiles: [[Float]] = [[-2, 0, 1, 2], [-1, .infinity, 0.5, -0.5]]
        let montage = Montage.grayscale(tiles: tiles, tileWidth: 2, tileHeight: 2, columns: 3, scale: 1, scaling: .symmetric)
        #expect(montage.width == 5 && montage.height == 2)
        #expect(montage.pixels == [0, 128, 128, 64, 0, 191, 255, 128, 159, 96])
    }

    @Test func degenerateTiles() {
        let empty = Montage.grayscale(tiles: [], tileWidth: 4, tileHeight: 4, columns: 2, scale: 3, scaling: .shared)
        #expect(empty.pixels.isEmpty && empty.width == 0 && empty.height == 0)
        let zeros = Montage.grayscale(tiles: [[0, 0, 0, 0]], tileWidth: 2, tileHeight: 2, columns: 1, scale: 1, scaling: .symmetric)
        #expect(zeros.pixels == [128, 128, 128, 128])
        let nonFinite = Montage.grayscale(tiles: [[.nan, .infinity, -.infinity, .nan]], tileWidth: 2, tileHeight: 2, columns: 4, scale: 1, scaling: .perTile)
        #expect(nonFinite.pixels == [0, 0, 0, 0])
        // A span wider than Float's range is computed in Double.
        let extreme = Montage.grayscale(tiles: [[-Float.greatestFiniteMagnitude, Float.greatestFiniteMagnitude]], tileWidth: 2, tileHeight: 1, columns: 1, scale: 1, scaling: .shared)
        #expect(extreme.pixels == [0, 255])
    }

    @Test func montageEncodesAsPNG() throws {
        let tiles: [[Float]] = (0..<5).map { tile in (0..<12).map { Float(($0 * 7 + tile * 3) % 11) } }
        let montage = Montage.grayscale(tiles: tiles, tileWidth: 4, tileHeight: 3, columns: 3, scale: 2, scaling: .perTile)
        #expect(montage.width == 3 * 8 + 2 && montage.height == 2 * 6 + 1)
        let png = try DecodedPNG(PNGImage.grayscale(width: montage.width, height: montage.height, pixels: montage.pixels))
        #expect(png.pixels == montage.pixels)
    }
}
