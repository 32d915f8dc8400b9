import TensorCore
import VolumeIO

/// Labelled connected components of a mask (see `Morphology.components`).
public struct ConnectedComponents: Sendable, Equatable {
    /// One label per voxel (layout of `BinaryMask.voxels`): 0 outside the mask, else
    /// `1...sizes.count`, numbered in the memory order of each component's first voxel, as
    /// `scipy.ndimage.label` numbers them.
    public var labels: [Int32]
    /// `sizes[c − 1]` is the number of voxels labelled `c`.
    public var sizes: [Int]
}

/// Binary morphology on `BinaryMask`s with ball structuring elements in millimetres.
///
/// **The ball.** A ball of radius `r` mm holds the voxel offsets `o = (o_i, o_j, o_k)` with
/// ```
/// |o|² = (o_i s_i)² + (o_j s_j)² + (o_k s_k)² ≤ r²     (to a relative 1e-9)
/// ```
/// where `s` are the grid's voxel sizes (the lengths of the affine's columns; the axes are
/// taken as orthogonal, as they are up to small shears in scanner files). With anisotropic
/// voxels it spans fewer voxels along the coarse axes; a radius below every voxel size is
/// the single centre voxel (the operation is then the identity). The relative 1e-9 keeps
/// offsets exactly on the sphere, e.g. (2, 0, 0) for r = 2 at 1 mm, in the ball whatever the
/// rounding.
///
/// **Speed.** Erosion and dilation threshold an exact Euclidean distance transform
/// (`DistanceTransform`), so they cost O(voxels) whatever the radius: dilation keeps the
/// voxels within `r` of the mask, erosion those farther than `r` from the background.
///
/// **Borders** follow `scipy.ndimage`'s defaults (`border_value=0`): dilation sees nothing
/// beyond the grid, erosion treats the outside as background (so a mask touching the grid's
/// edge is eroded from it), except where stated.
///
/// **Connectivity** is 6 (face neighbours) for foreground components and for the
/// background in hole filling: `scipy.ndimage`'s default structure
/// `generate_binary_structure(3, 1)`.
///
/// Every operation is deterministic and independent of the thread count.
public enum Morphology {
    /// Squared radius with the relative 1e-9 slack of the ball's definition.
    private static func ballLimit(_ radius: Double) -> Double { radius * radius * (1 + 1e-9) }

    private static func checkRadius(_ radius: Double, _ mask: BinaryMask, _ operation: String) {
        precondition(radius.isFinite && radius >= 0, "\(operation): the ball radius must be finite and ≥ 0 mm, got \(radius)")
        precondition(mask.grid.voxelSizes.allSatisfy { $0 > 0 && $0.isFinite },
                     "\(operation): voxel sizes \(mask.grid.voxelSizes) must be positive")
    }

    /// Whether a ball of `radius` mm is only the centre voxel on this grid (reaches no neighbour).
    private static func ballIsTrivial(_ radius: Double, _ mask: BinaryMask) -> Bool {
        mask.grid.voxelSizes.allSatisfy { $0 * $0 > ballLimit(radius) }
    }

    /// Dilation by a ball of `radius` mm: the voxels within `radius` of the mask,
    /// `scipy.ndimage.binary_dilation(mask, ball)`.
    public static func dilate(_ mask: BinaryMask, radius: Double) -> BinaryMask {
        checkRadius(radius, mask, "dilate")
        let spacing = mask.grid.voxelSizes
        // Nothing beyond the ball's reach from the mask's bounding box can change.
        guard !ballIsTrivial(radius, mask),
              let window = Window(around: mask, margin: spacing.map { Int((radius / $0).rounded(.down)) }, clip: true)
        else { return mask }
        let distance = DistanceTransform.squaredDistance(to: window.extract(mask), shape: window.shape, spacing: spacing)
        let limit = ballLimit(radius)
        return BinaryMask(grid: mask.grid, voxels: window.insert(distance.map { $0 <= limit }, into: mask.shape))
    }

    /// Erosion by a ball of `radius` mm: the mask voxels whose whole ball lies in the mask,
    /// `scipy.ndimage.binary_erosion(mask, ball, border_value=borderValue)`.
    /// - Parameter borderValue: what lies beyond the grid: `false` (scipy's default) erodes
    ///   the mask from the grid's edges, `true` leaves edges alone.
    public static func erode(_ mask: BinaryMask, radius: Double, borderValue: Bool = false) -> BinaryMask {
        checkRadius(radius, mask, "erode")
        // One background layer around the bounding box holds a nearest background voxel of
        // every mask voxel (clamping a farther one into the box only brings it closer).
        guard !ballIsTrivial(radius, mask), let window = Window(around: mask, margin: [1, 1, 1], clip: true) else { return mask }
        let spacing = mask.grid.voxelSizes
        let local = window.extract(mask)
        let distance = DistanceTransform.squaredDistance(to: local.map { !$0 }, shape: window.shape, spacing: spacing)
        let limit = ballLimit(radius)
        let (nx, ny, nz) = (window.shape[0], window.shape[1], window.shape[2])
        let grid = mask.shape
        var eroded = [Bool](repeating: false, count: local.count)
        // Squared distance (mm²) from grid index `i` to the nearest voxel beyond the grid along one axis.
        func edge(_ i: Int, _ n: Int, _ s: Double) -> Double {
            let steps = Double(min(i + 1, n - i))
            return steps * steps * s * s
        }
        local.withUnsafeBufferPointer { inside in
            distance.withUnsafeBufferPointer { far in
                eroded.withUnsafeMutableBufferPointer { out in
                    let (source, depth, target) = (inside, far, out)
                    Engine.parallelRanges(nx) { range in
                        for i in range {
                            for j in 0..<ny {
                                let edgeIJ = min(edge(i + window.lower[0], grid[0], spacing[0]), edge(j + window.lower[1], grid[1], spacing[1]))
                                for k in 0..<nz {
                                    let index = (i * ny + j) * nz + k
                                    guard source[index], depth[index] > limit else { continue }
                                    target[index] = borderValue || min(edgeIJ, edge(k + window.lower[2], grid[2], spacing[2])) > limit
                                }
                            }
                        }
                    }
                }
            }
        }
        return BinaryMask(grid: mask.grid, voxels: window.insert(eroded, into: grid))
    }

    /// Opening: erosion then dilation by the same ball, `scipy.ndimage.binary_opening`.
    /// Removes parts thinner than the ball's diameter (bridges, spurs) and keeps the rest.
    public static func open(_ mask: BinaryMask, radius: Double) -> BinaryMask {
        dilate(erode(mask, radius: radius), radius: radius)
    }

    /// Closing: dilation then erosion by the same ball, computed as if the grid went on
    /// forever with background, so it only ever adds voxels (scipy's `binary_closing` on the
    /// mask padded with `⌊r/s⌋ + 1` background voxels per side, then cropped; scipy's closing
    /// of the unpadded array would also erode the mask where it touches the grid's edge).
    /// Fills gaps and clefts narrower than the ball's diameter.
    public static func close(_ mask: BinaryMask, radius: Double) -> BinaryMask {
        checkRadius(radius, mask, "close")
        let spacing = mask.grid.voxelSizes
        // Beyond this margin around the bounding box (reaching past the grid where needed) no
        // voxel is within `radius` of the dilated mask, so the result in the window is exact.
        guard !ballIsTrivial(radius, mask),
              let window = Window(around: mask, margin: spacing.map { Int((radius / $0).rounded(.down)) + 1 }, clip: false)
        else { return mask }
        let local = BinaryMask(grid: Grid(shape: window.shape, affine: mask.grid.affine), voxels: window.extract(mask))
        let closed = erode(dilate(local, radius: radius), radius: radius)
        return BinaryMask(grid: mask.grid, voxels: window.insert(closed.voxels, into: mask.shape))
    }

    /// The 6-connected components of the mask (`scipy.ndimage.label` with its default
    /// structure), found by flood fill in memory order.
    public static func components(_ mask: BinaryMask) -> ConnectedComponents {
        let shape = mask.shape
        var labels = [Int32](repeating: 0, count: mask.voxels.count)
        var sizes: [Int] = []
        var stack: [Int] = []
        mask.voxels.withUnsafeBufferPointer { inside in
            labels.withUnsafeMutableBufferPointer { label in
                for seed in inside.indices where inside[seed] && label[seed] == 0 {
                    let current = Int32(sizes.count + 1)
                    label[seed] = current
                    stack.append(seed)
                    var size = 0
                    while let index = stack.popLast() {
                        size += 1
                        forEachNeighbour(index, shape) { neighbour in
                            if inside[neighbour] && label[neighbour] == 0 {
                                label[neighbour] = current
                                stack.append(neighbour)
                            }
                        }
                    }
                    sizes.append(size)
                }
            }
        }
        return ConnectedComponents(labels: labels, sizes: sizes)
    }

    /// The largest 6-connected component (ties go to the one whose first voxel comes first in
    /// memory order); an empty mask stays empty.
    public static func largestComponent(_ mask: BinaryMask) -> BinaryMask {
        let found = components(mask)
        guard let biggest = found.sizes.max(), let largest = found.sizes.firstIndex(of: biggest) else { return mask }
        let label = Int32(largest + 1)
        return BinaryMask(grid: mask.grid, voxels: found.labels.map { $0 == label })
    }

    /// Hole filling, `scipy.ndimage.binary_fill_holes`: background voxels that no 6-connected
    /// path of background voxels joins to the grid's border become foreground (ventricles
    /// and other enclosed cavities; a cavity open to the border through one face-adjacent
    /// channel is not a hole).
    public static func fillHoles(_ mask: BinaryMask) -> BinaryMask {
        // Outside the bounding box every voxel reaches the border straight along an axis, so
        // the box and one layer around it (the layer all background or on the border) suffice.
        guard let window = Window(around: mask, margin: [1, 1, 1], clip: true) else { return mask }
        let local = window.extract(mask)
        let shape = window.shape
        let (nx, ny, nz) = (shape[0], shape[1], shape[2])
        var outside = [Bool](repeating: false, count: local.count)
        var stack: [Int] = []
        local.withUnsafeBufferPointer { inside in
            outside.withUnsafeMutableBufferPointer { reached in
                func seed(_ index: Int) {
                    if !inside[index] && !reached[index] {
                        reached[index] = true
                        stack.append(index)
                    }
                }
                for i in 0..<nx {
                    for j in 0..<ny {
                        let onFace = i == 0 || i == nx - 1 || j == 0 || j == ny - 1
                        for k in 0..<nz where onFace || k == 0 || k == nz - 1 { seed((i * ny + j) * nz + k) }
                    }
                }
                while let index = stack.popLast() {
                    forEachNeighbour(index, shape) { seed($0) }
                }
            }
        }
        return BinaryMask(grid: mask.grid, voxels: window.insert(outside.map { !$0 }, into: mask.shape))
    }

    /// Calls `body` with each face neighbour of voxel `index` inside a grid of `shape`.
    @inline(__always)
    private static func forEachNeighbour(_ index: Int, _ shape: [Int], _ body: (Int) -> Void) {
        let nz = shape[2]
        let slice = shape[1] * nz
        let i = index / slice
        let j = (index - i * slice) / nz
        let k = index - i * slice - j * nz
        if i > 0 { body(index - slice) }
        if i < shape[0] - 1 { body(index + slice) }
        if j > 0 { body(index - nz) }
        if j < shape[1] - 1 { body(index + nz) }
        if k > 0 { body(index - 1) }
        if k < shape[2] - 1 { body(index + 1) }
    }
}

/// A box of grid indices that an operation works in: a mask's bounding box grown by a
/// margin, clipped to the grid or reaching beyond it (where it reads as background).
private struct Window {
    /// Grid index of the box's first voxel per axis (negative beyond the grid).
    let lower: [Int]
    /// Extents of the box.
    let shape: [Int]

    /// The bounding box of `mask` grown by `margin` voxels per axis; nil for an empty mask.
    init?(around mask: BinaryMask, margin: [Int], clip: Bool) {
        let grid = mask.shape
        var low = grid, high = [-1, -1, -1]
        mask.voxels.withUnsafeBufferPointer { voxels in
            for i in 0..<grid[0] {
                for j in 0..<grid[1] {
                    let row = (i * grid[1] + j) * grid[2]
                    guard let first = (0..<grid[2]).first(where: { voxels[row + $0] }),
                          let last = (0..<grid[2]).last(where: { voxels[row + $0] }) else { continue }
                    (low[0], high[0]) = (min(low[0], i), max(high[0], i))
                    (low[1], high[1]) = (min(low[1], j), max(high[1], j))
                    (low[2], high[2]) = (min(low[2], first), max(high[2], last))
                }
            }
        }
        guard high[0] >= 0 else { return nil }
        let lower = (0..<3).map { clip ? max(0, low[$0] - margin[$0]) : low[$0] - margin[$0] }
        let upper = (0..<3).map { clip ? min(grid[$0] - 1, high[$0] + margin[$0]) : high[$0] + margin[$0] }
        self.lower = lower
        shape = (0..<3).map { upper[$0] - lower[$0] + 1 }
    }

    /// The index ranges, in window and in grid coordinates, where the window meets a grid of `grid`.
    private func overlap(_ grid: [Int]) -> [(window: Int, grid: Int, count: Int)] {
        (0..<3).map { axis in
            let start = max(0, lower[axis])
            let end = min(grid[axis], lower[axis] + shape[axis])
            return (start - lower[axis], start, max(0, end - start))
        }
    }

    /// The window's voxels of `mask` (false beyond the grid).
    func extract(_ mask: BinaryMask) -> [Bool] {
        var out = [Bool](repeating: false, count: shape.reduce(1, *))
        copy(from: mask.voxels, shape: mask.shape, to: &out, shape: shape, overlap(mask.shape).map { ($0.grid, $0.window, $0.count) })
        return out
    }

    /// A grid of `grid` holding `voxels` (the window's) where the window meets it, false elsewhere.
    func insert(_ voxels: [Bool], into grid: [Int]) -> [Bool] {
        var out = [Bool](repeating: false, count: grid.reduce(1, *))
        copy(from: voxels, shape: shape, to: &out, shape: grid, overlap(grid).map { ($0.window, $0.grid, $0.count) })
        return out
    }

    /// Copies the box `ranges` (start in source, start in target, count per axis) row by row.
    private func copy(from source: [Bool], shape sourceShape: [Int], to target: inout [Bool], shape targetShape: [Int],
                      _ ranges: [(Int, Int, Int)]) {
        guard ranges.allSatisfy({ $0.2 > 0 }) else { return }
        for i in 0..<ranges[0].2 {
            for j in 0..<ranges[1].2 {
                let from = ((ranges[0].0 + i) * sourceShape[1] + ranges[1].0 + j) * sourceShape[2] + ranges[2].0
                let to = ((ranges[0].1 + i) * targetShape[1] + ranges[1].1 + j) * targetShape[2] + ranges[2].1
                for k in 0..<ranges[2].2 { target[to + k] = source[from + k] }
            }
        }
    }
}
