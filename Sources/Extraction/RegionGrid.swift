import Foundation
import NeuralNet
import TensorCore

/// The grid of regions a feature map is pooled over, with PyTorch's adaptive-pooling bounds:
///
/// ```
/// region i along an axis of n map voxels and g regions:  ⌊i·n/g⌋ ..< ⌈(i+1)·n/g⌉
/// ```
/// Regions are numbered `r = (i·g_y + j)·g_z + k`; a feature is `channel · regions + r`.
public struct RegionGrid: Sendable, Equatable {
    public let mapShape: Triple
    public let grid: Triple

    /// - Throws: `ExtractionError.invalidOption` when the grid is finer than the map.
    public init(mapShape: Triple, grid: [Int]) throws(ExtractionError) {
        guard grid.count == 3, mapShape.d >= grid[0], mapShape.h >= grid[1], mapShape.w >= grid[2], grid.allSatisfy({ $0 >= 1 }) else {
            throw .invalidOption("a \(grid.map(String.init).joined(separator: "x")) grid needs a feature map at least that large; this one is \(mapShape.d)x\(mapShape.h)x\(mapShape.w)")
        }
        self.mapShape = mapShape
        self.grid = Triple(grid[0], grid[1], grid[2])
    }

    public var count: Int { grid.product }

    /// Map voxels of region `index` along `axis`.
    public func bounds(_ index: Int, axis: Int) -> Range<Int> {
        let (n, g) = axis == 0 ? (mapShape.d, grid.d) : axis == 1 ? (mapShape.h, grid.h) : (mapShape.w, grid.w)
        return AdaptiveAvgPool3d.bounds(index, length: n, cells: g)
    }

    /// The per-axis indices `(i, j, k)` of region `r`.
    public func indices(of region: Int) -> (Int, Int, Int) {
        (region / (grid.h * grid.w), region / grid.w % grid.h, region % grid.w)
    }

    /// The centre of region `r` in map voxel coordinates.
    public func centre(of region: Int) -> [Double] {
        let (i, j, k) = indices(of: region)
        return [bounds(i, axis: 0), bounds(j, axis: 1), bounds(k, axis: 2)].map { Double($0.lowerBound + $0.upperBound - 1) / 2 }
    }
}

/// Pools a feature map `[C, X', Y', Z']` over a `RegionGrid`, slab by slab along `X'`, in
/// the same order whatever the slabs, so any slab plan gives the same bytes.
struct RegionPooler {
    let grid: RegionGrid
    let channels: Int
    let pooling: RegionPooling
    /// `[C, R]`: running maxima, or sums in Double.
    private var maxima: [Float]
    private var sums: [Double]

    init(grid: RegionGrid, channels: Int, pooling: RegionPooling) {
        (self.grid, self.channels, self.pooling) = (grid, channels, pooling)
        maxima = pooling == .max ? [Float](repeating: -.infinity, count: channels * grid.count) : []
        sums = pooling == .mean ? [Double](repeating: 0, count: channels * grid.count) : []
    }

    /// Adds map rows `rows` (global `X'` indices) held in `slab [1, C, s, Y', Z']` whose row
    /// 0 is global row `firstRow`.
    mutating func add(_ slab: Tensor, firstRow: Int, rows: Range<Int>) {
        let (ny, nz) = (grid.mapShape.h, grid.mapShape.w)
        let slabRows = slab.shape[2]
        let (gx, gy, gz) = (grid.grid.d, grid.grid.h, grid.grid.w)
        let yBounds = (0..<gy).map { grid.bounds($0, axis: 1) }
        let zBounds = (0..<gz).map { grid.bounds($0, axis: 2) }
        let regions = grid.count
        slab.withUnsafeBufferPointer { values in
            for x in rows {
                let regionsX = (0..<gx).filter { grid.bounds($0, axis: 0).contains(x) }
                for c in 0..<channels {
                    let plane = (c * slabRows + (x - firstRow)) * ny * nz
                    for i in regionsX {
                        for j in 0..<gy {
                            for k in 0..<gz {
                                let slot = c * regions + (i * gy + j) * gz + k
                                switch pooling {
                                case .max:
                                    var best = maxima[slot]
                                    for y in yBounds[j] {
                                        let row = plane + y * nz
                                        for z in zBounds[k] { best = max(best, values[row + z]) }
                                    }
                                    maxima[slot] = best
                                case .mean:
                                    var total = 0.0
                                    for y in yBounds[j] {
                                        let row = plane + y * nz
                                        for z in zBounds[k] { total += Double(values[row + z]) }
                                    }
                                    sums[slot] += total
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The pooled values `[C, R]` once every row has been added.
    func result() -> [Float] {
        switch pooling {
        case .max: return maxima
        case .mean:
            return sums.indices.map { slot in
                let (i, j, k) = grid.indices(of: slot % grid.count)
                let size = grid.bounds(i, axis: 0).count * grid.bounds(j, axis: 1).count * grid.bounds(k, axis: 2).count
                return Float(sums[slot] / Double(size))
            }
        }
    }
}
