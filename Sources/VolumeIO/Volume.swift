import TensorCore

/// One 3-D scan in memory: intensities and where each voxel sits in the world.
public struct Volume: Sendable {
    /// Voxel values after the file's scaling, shape `[X, Y, Z]`: voxel (i, j, k) is
    /// `data[i, j, k]` (k fastest in memory), the indexing of nibabel's arrays. For the engine's
    /// `[N, C, D, H, W]` kernels, `batched()` views it as `[1, 1, X, Y, Z]`.
    public var data: Tensor
    /// Voxel (i, j, k) → world millimetres (RAS+).
    public var affine: Affine
    /// The header this volume was read from, nil for volumes built in memory. The writer keeps
    /// its transform codes, units and `dim_info`.
    public var header: VolumeHeader?

    /// - Throws: `TensorError.invalidShape` unless `data` is 3-D.
    public init(data: Tensor, affine: Affine, header: VolumeHeader? = nil) throws {
        try data.checkRank(3, "Volume", layout: "[X, Y, Z]")
        self.data = data
        self.affine = affine
        self.header = header
    }

    /// Extents `[X, Y, Z]`.
    public var shape: [Int] { data.shape }

    /// Voxel sizes in mm, from the affine.
    public var voxelSizes: [Double] { affine.voxelSizes }

    /// The data as a one-volume, one-channel batch `[1, 1, X, Y, Z]` (shares storage).
    public func batched() -> Tensor {
        // A rank-3 tensor always reshapes to 1×1×shape.
        try! data.reshaped([1, 1] + data.shape)
    }
}

/// Summary statistics of voxel values (Float64 accumulation over Float32 voxels).
public struct VoxelStatistics: Sendable, Equatable, Codable {
    /// Voxels counted, finite or not.
    public var count: Int
    /// NaN or infinite voxels (excluded from the other figures).
    public var nonFinite: Int
    public var sum: Double
    public var minimum: Double
    public var maximum: Double

    public var mean: Double { count > nonFinite ? sum / Double(count - nonFinite) : .nan }

    public init() {
        (count, nonFinite, sum, minimum, maximum) = (0, 0, 0, .infinity, -.infinity)
    }

    /// Adds `values` to the summary.
    public mutating func accumulate(_ values: UnsafeBufferPointer<Float>) {
        // Per-worker partial sums keep the figure the same for a given thread count.
        let workers = max(1, min(Engine.threads, values.count / (1 << 16)))
        var partials = [VoxelStatistics](repeating: VoxelStatistics(), count: workers)
        partials.withUnsafeMutableBufferPointer { slots in
            Engine.parallelWorkers(workers) { worker in
                let start = values.count * worker / workers, end = values.count * (worker + 1) / workers
                var part = VoxelStatistics()
                var sum = 0.0, low = Float.infinity, high = -Float.infinity, bad = 0
                for index in start..<end {
                    let v = values[index]
                    if v.isFinite {
                        sum += Double(v)
                        low = min(low, v)
                        high = max(high, v)
                    } else {
                        bad += 1
                    }
                }
                (part.count, part.nonFinite, part.sum) = (end - start, bad, sum)
                (part.minimum, part.maximum) = (Double(low), Double(high))
                slots[worker] = part
            }
        }
        for part in partials { merge(part) }
    }

    public mutating func merge(_ other: VoxelStatistics) {
        count += other.count
        nonFinite += other.nonFinite
        sum += other.sum
        minimum = min(minimum, other.minimum)
        maximum = max(maximum, other.maximum)
    }

    /// Statistics of a whole tensor.
    public init(_ tensor: Tensor) {
        self.init()
        tensor.withUnsafeBufferPointer { accumulate($0) }
    }
}
