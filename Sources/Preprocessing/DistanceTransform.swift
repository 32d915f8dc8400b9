import TensorCore

/// The exact squared Euclidean distance transform of a binary mask on an anisotropic grid,
/// the kernel behind `Morphology`'s ball erosion and dilation.
///
/// For every voxel `x` of a `[X, Y, Z]` grid (k fastest) it gives
/// ```
/// D(x) = min over feature voxels y of  Σ_a ((x_a − y_a) · s_a)²     (mm²)
/// ```
/// with `s_a` the voxel size along axis `a`, or `+∞` when there is no feature voxel. It is
/// separable (Felzenszwalb & Huttenlocher, "Distance transforms of sampled functions",
/// Theory of Computing 8, 2012): a two-sweep 1-D distance along k, then, along j and i, the
/// lower envelope of the parabolas `w (q − p)² + f(p)`, `w = s_a²`. Each pass is O(voxels),
/// so a ball of any radius costs the same; lines are split among the `Engine` workers (each
/// line is computed whole by one worker, so the result does not depend on the thread count).
enum DistanceTransform {
    /// `D(x)` for every voxel (see the type's documentation), in Float64 so that the ball test
    /// `D ≤ r²` agrees with a direct evaluation of the offsets' lengths.
    /// - Precondition: `feature.count == shape` product, three positive finite `spacing`.
    static func squaredDistance(to feature: [Bool], shape: [Int], spacing: [Double]) -> [Double] {
        precondition(shape.count == 3 && feature.count == shape.reduce(1, *), "squaredDistance: \(feature.count) voxels for shape \(shape)")
        precondition(spacing.count == 3 && spacing.allSatisfy { $0 > 0 && $0.isFinite }, "squaredDistance: voxel sizes \(spacing)")
        let (nx, ny, nz) = (shape[0], shape[1], shape[2])
        var distance = [Double](repeating: .infinity, count: feature.count)
        guard !feature.isEmpty else { return distance }
        let wk = spacing[2] * spacing[2]
        feature.withUnsafeBufferPointer { mask in
            distance.withUnsafeMutableBufferPointer { out in
                let (source, target) = (mask, out)
                // Along k: the gap to the nearest feature voxel of the same row, from both sides.
                Engine.parallelRanges(nx * ny, minimumPerWorker: 64) { rows in
                    for row in rows {
                        let base = row * nz
                        var last = -1
                        for k in 0..<nz {
                            if source[base + k] { last = k }
                            if last >= 0 { target[base + k] = wk * Double((k - last) * (k - last)) }
                        }
                        last = -1
                        for k in stride(from: nz - 1, through: 0, by: -1) {
                            if source[base + k] { last = k }
                            if last >= 0 { target[base + k] = min(target[base + k], wk * Double((last - k) * (last - k))) }
                        }
                    }
                }
            }
        }
        // Along j: the lines (i, ·, k) of slab i; along i: the lines (·, j, k) of slab j.
        envelopePass(&distance, slabs: nx, slabBase: ny * nz, length: ny, stride: nz, width: nz, weight: spacing[1] * spacing[1])
        envelopePass(&distance, slabs: ny, slabBase: nz, length: nx, stride: ny * nz, width: nz, weight: spacing[0] * spacing[0])
        return distance
    }

    /// Replaces every line `f` of `values` by `min_p w (q − p)² + f(p)` over its finite `f(p)`.
    /// Slab `s` holds `width` lines side by side: line `k` has its `length` entries at
    /// `s · slabBase + q · stride + k`. A slab is copied into a transposed tile first, so the
    /// strided reads become row reads and each line is contiguous.
    private static func envelopePass(_ values: inout [Double], slabs: Int, slabBase: Int, length n: Int, stride: Int,
                                     width: Int, weight w: Double) {
        values.withUnsafeMutableBufferPointer { buffer in
            let data = buffer
            Engine.parallelRanges(slabs) { range in
                // Per-worker scratch: the tile, and one line's envelope (parabola vertices and bounds).
                let tile = UnsafeMutableBufferPointer<Double>.allocate(capacity: n * width)
                let vertices = UnsafeMutableBufferPointer<Int>.allocate(capacity: n)
                let bounds = UnsafeMutableBufferPointer<Double>.allocate(capacity: n + 1)
                let output = UnsafeMutableBufferPointer<Double>.allocate(capacity: n)
                defer {
                    tile.deallocate()
                    vertices.deallocate()
                    bounds.deallocate()
                    output.deallocate()
                }
                for slab in range {
                    let base = slab * slabBase
                    for q in 0..<n {
                        let row = base + q * stride
                        for k in 0..<width { tile[k * n + q] = data[row + k] }
                    }
                    for k in 0..<width {
                        let line = UnsafeMutableBufferPointer(rebasing: tile[(k * n)..<(k * n + n)])
                        if lowerEnvelope(line, weight: w, vertices: vertices, bounds: bounds, output: output) {
                            for q in 0..<n { line[q] = output[q] }
                        }
                    }
                    for q in 0..<n {
                        let row = base + q * stride
                        for k in 0..<width { data[row + k] = tile[k * n + q] }
                    }
                }
            }
        }
    }

    /// `output[q] = min_p w (q − p)² + line[p]` over the finite `line[p]`; false (and `output`
    /// untouched) when there is none, i.e. the line stays `+∞`.
    @inline(__always)
    private static func lowerEnvelope(_ line: UnsafeMutableBufferPointer<Double>, weight w: Double, vertices: UnsafeMutableBufferPointer<Int>,
                                      bounds: UnsafeMutableBufferPointer<Double>, output: UnsafeMutableBufferPointer<Double>) -> Bool {
        let n = line.count
        // Parabola `vertices[m]` is the lowest on [bounds[m], bounds[m + 1]).
        var top = -1
        for q in 0..<n where line[q] < .infinity {
            let height = line[q] + w * Double(q * q)
            if top < 0 {
                top = 0
                vertices[0] = q
                (bounds[0], bounds[1]) = (-.infinity, .infinity)
                continue
            }
            var crossing: Double
            // bounds[0] = −∞, so the loop stops at the first parabola at the latest.
            repeat {
                let p = vertices[top]
                crossing = (height - (line[p] + w * Double(p * p))) / (2 * w * Double(q - p))
                if crossing <= bounds[top] { top -= 1 } else { break }
            } while true
            top += 1
            vertices[top] = q
            bounds[top] = crossing
            bounds[top + 1] = .infinity
        }
        guard top >= 0 else { return false }
        var m = 0
        for q in 0..<n {
            while bounds[m + 1] < Double(q) { m += 1 }
            let p = vertices[m]
            output[q] = w * Double((q - p) * (q - p)) + line[p]
        }
        return true
    }
}
