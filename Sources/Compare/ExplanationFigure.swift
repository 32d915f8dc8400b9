import Foundation
import Reports
import TensorCore
import VolumeIO

/// A map over the anatomy: sagittal, coronal and axial slices through the map's strongest
/// voxel, the anatomy in grey and the map in colour (red positive, blue negative, opacity
/// growing with |value| / max |value|; values below a fifth of the maximum are not drawn).
/// A map with no negative value (a magnitude) is shown from its minimum to its maximum
/// instead, so a map that is nowhere zero still shows where it is largest.
/// Voxels where the anatomy is exactly 0 (outside the brain of masked scans) are black and
/// carry no colour.
///
/// Slices are cut along the volume's voxel axes, which for scans in template space are the
/// RAS axes: sagittal panels show the second axis across and the third up, coronal the first
/// across and the third up, axial the first across and the second up.
enum ExplanationFigure {
    /// - Parameters:
    ///   - anatomy, map: `[X, Y, Z]` volumes on one grid.
    ///   - scale: pixels per voxel.
    /// - Returns: the PNG and its size, or nil when the map is empty (all zero).
    static func render(anatomy: Tensor, map: Tensor, scale: Int = 3) -> (png: Data, width: Int, height: Int)? {
        guard anatomy.shape.count == 3, anatomy.shape == map.shape else { return nil }
        let (nx, ny, nz) = (map.shape[0], map.shape[1], map.shape[2])
        let values = map.scalars, grey = anatomy.scalars
        // The peak inside the anatomy (anywhere when the anatomy has no zeros).
        let candidates = grey.contains(0) ? values.indices.filter { grey[$0] != 0 } : Array(values.indices)
        guard let peakIndex = candidates.max(by: { abs(values[$0]) < abs(values[$1]) }), abs(values[peakIndex]) > 0,
              values[peakIndex].isFinite else { return nil }
        let peak = (peakIndex / (ny * nz), peakIndex / nz % ny, peakIndex % nz)
        let strongest = abs(values[peakIndex])
        let floor = candidates.allSatisfy({ values[$0] >= 0 }) ? candidates.map { values[$0] }.min() ?? 0 : 0
        let finiteGrey = grey.filter { $0.isFinite && $0 != 0 }.sorted()
        let (low, high) = finiteGrey.isEmpty ? (Float(0), Float(1))
            : (finiteGrey[finiteGrey.count / 100], finiteGrey[min(finiteGrey.count - 1, finiteGrey.count * 99 / 100)])
        // Panels: (columns, rows, voxel index of (column, row from the bottom)).
        let panels: [(Int, Int, (Int, Int) -> Int)] = [
            (ny, nz, { c, r in (peak.0 * ny + c) * nz + r }),
            (nx, nz, { c, r in (c * ny + peak.1) * nz + r }),
            (nx, ny, { c, r in (c * ny + r) * nz + peak.2 }),
        ]
        let gap = 2 * scale
        let width = panels.reduce(0) { $0 + $1.0 * scale } + gap * (panels.count - 1)
        let height = panels.map { $0.1 * scale }.max() ?? 0
        var pixels = [UInt8](repeating: 255, count: width * height * 3)
        var left = 0
        for (columns, rows, index) in panels {
            for r in 0..<rows {
                for c in 0..<columns {
                    let voxel = index(c, r)
                    let inside = grey[voxel].isFinite && grey[voxel] != 0
                    let g = inside ? Double(min(max((grey[voxel] - low) / max(high - low, 1e-6), 0), 1)) : 0
                    var rgb = [g, g, g]
                    let v = Double(values[voxel] - floor) / Double(max(strongest - floor, .leastNormalMagnitude))
                    if inside, v.isFinite, abs(v) >= 0.2 {
                        let alpha = min(1, abs(v))
                        let colour = v > 0 ? [1.0, 0.15, 0.05] : [0.1, 0.35, 1.0]
                        rgb = zip(rgb, colour).map { (1 - alpha) * $0 + alpha * $1 }
                    }
                    for dy in 0..<scale {
                        let y = height - 1 - (r * scale + dy)
                        for dx in 0..<scale {
                            let p = (y * width + left + c * scale + dx) * 3
                            for channel in 0..<3 { pixels[p + channel] = UInt8((rgb[channel] * 255).rounded()) }
                        }
                    }
                }
            }
            left += columns * scale + gap
        }
        return (PNGImage.rgb(width: width, height: height, pixels: pixels), width, height)
    }
}
