/// Samples one volume's voxels (or, for `.bspline`, its B-spline coefficients), shape
/// `[X, Y, Z]` with k fastest, at continuous voxel coordinates (x, y, z) along i, j, k, with
/// the inside rules and `fill` of `Resampler.resample`:
/// - nearest: the voxel ⌊x + ½⌋, ⌊y + ½⌋, ⌊z + ½⌋ (ties go to the higher index), inside when
///   that voxel exists;
/// - linear and B-spline: inside when every coordinate is in [0, n − 1] widened by
///   `Resampler.edgeTolerance`, then clamped to [0, n − 1].
///
/// Rows (`sampleRow`) first find the run of k whose points are inside, sample it without
/// per-point checks, and check the points before and after it one by one.
struct VoxelSampler {
    let values: UnsafePointer<Float>
    let interpolation: Interpolation
    let fill: Float
    let n0, n1, n2: Int
    /// Strides of i and j (k's is 1).
    let s0, s1: Int
    /// Lowest and highest inside coordinate per axis (for nearest, the bounds of x + ½'s
    /// range [0, n) shifted back by ½).
    let low: Double
    let high0, high1, high2: Double

    init(_ buffer: UnsafeBufferPointer<Float>, shape: [Int], interpolation: Interpolation, fill: Float) {
        precondition(shape.count == 3 && buffer.count == shape.reduce(1, *) && buffer.count > 0,
                     "a sampler needs a non-empty [X, Y, Z] buffer, got \(buffer.count) values for \(shape)")
        // A non-empty buffer has a base address.
        values = buffer.baseAddress!
        self.interpolation = interpolation
        self.fill = fill
        (n0, n1, n2) = (shape[0], shape[1], shape[2])
        (s0, s1) = (shape[1] * shape[2], shape[2])
        // Nearest: x ∈ [−½, n − ½); linear and B-spline: x ∈ [0, n − 1] ± tolerance.
        let tolerance = Resampler.edgeTolerance
        low = interpolation == .nearest ? -0.5 : -tolerance
        let belowExtent = interpolation == .nearest ? 0.5 : 1 - tolerance
        (high0, high1, high2) = (Double(n0) - belowExtent, Double(n1) - belowExtent, Double(n2) - belowExtent)
    }

    /// Whether the point is inside (see the type's rules); any coordinate, NaN included, is safe.
    @inline(__always)
    func contains(_ x: Double, _ y: Double, _ z: Double) -> Bool {
        if interpolation == .nearest {
            let (u, v, w) = (x + 0.5, y + 0.5, z + 0.5)
            return u >= 0 && u < Double(n0) && v >= 0 && v < Double(n1) && w >= 0 && w < Double(n2)
        }
        return x >= low && x <= high0 && y >= low && y <= high1 && z >= low && z <= high2
    }

    /// The interpolated value at the point, or `fill` outside.
    @inline(__always)
    func value(at x: Double, _ y: Double, _ z: Double) -> Float {
        guard contains(x, y, z) else { return fill }
        switch interpolation {
        case .nearest: return nearest(x, y, z)
        case .linear: return linear(x, y, z)
        case .bspline: return cubic(x, y, z)
        }
    }

    /// `row[k]` = the value at `start + k · step` for k in 0..<count.
    ///
    /// Linear and B-spline step through the run incrementally (one addition per axis and
    /// point; over a row of n points the positions drift by about n ulps, under 1e-10 voxel,
    /// and both clamp to the grid, so a drifted point still reads valid voxels); nearest
    /// computes each position afresh, since the voxel it reads must be the one `contains`
    /// accepted.
    func sampleRow(into row: UnsafeMutablePointer<Float>, count: Int, start: (Double, Double, Double), step: (Double, Double, Double)) {
        @inline(__always) func point(_ k: Int) -> (Double, Double, Double) {
            let t = Double(k)
            return (start.0 + t * step.0, start.1 + t * step.1, start.2 + t * step.2)
        }
        let inside = insideRun(count: count, start: start, step: step)
        for k in 0..<inside.lowerBound {
            let p = point(k)
            row[k] = value(at: p.0, p.1, p.2)
        }
        for k in inside.upperBound..<count {
            let p = point(k)
            row[k] = value(at: p.0, p.1, p.2)
        }
        switch interpolation {
        case .nearest:
            // Exact positions: the voxel read must be the one `contains` vouched for.
            for k in inside {
                let p = point(k)
                row[k] = nearest(p.0, p.1, p.2)
            }
        case .linear:
            var (x, y, z) = point(inside.lowerBound)
            for k in inside {
                row[k] = linear(x, y, z)
                (x, y, z) = (x + step.0, y + step.1, z + step.2)
            }
        case .bspline:
            var (x, y, z) = point(inside.lowerBound)
            for k in inside {
                row[k] = cubic(x, y, z)
                (x, y, z) = (x + step.0, y + step.1, z + step.2)
            }
        }
    }

    /// The k whose points `start + k · step` are all inside, as one range (possibly empty).
    ///
    /// Each coordinate is monotonic in k (a product by a fixed step plus a fixed start), so
    /// the points inside along each axis, and hence along all three, form one run. An
    /// estimate from the slab bounds is shrunk until both its ends pass `contains`, which
    /// makes every k between them inside; points outside the run are checked one by one.
    func insideRun(count: Int, start: (Double, Double, Double), step: (Double, Double, Double)) -> Range<Int> {
        var first = 0.0, last = Double(count - 1)
        // Narrows [first, last] to the k whose coordinate s + k·d lies in [low, top].
        func clip(_ s: Double, _ d: Double, _ top: Double) {
            if d == 0 {
                if !(s >= low && s <= top) { (first, last) = (1, 0) }
            } else {
                let (a, b) = ((low - s) / d, (top - s) / d)
                (first, last) = (max(first, min(a, b)), min(last, max(a, b)))
            }
        }
        clip(start.0, step.0, high0)
        clip(start.1, step.1, high1)
        clip(start.2, step.2, high2)
        guard first <= last else { return 0..<0 }
        var lower = Int(first.rounded(.up)), upper = Int(last.rounded(.down))
        func inside(_ k: Int) -> Bool {
            let t = Double(k)
            return contains(start.0 + t * step.0, start.1 + t * step.1, start.2 + t * step.2)
        }
        while lower <= upper && !inside(lower) { lower += 1 }
        while upper >= lower && !inside(upper) { upper -= 1 }
        return lower..<max(lower, upper + 1)
    }

    /// The voxel ⌊x + ½⌋, ⌊y + ½⌋, ⌊z + ½⌋ of an inside point.
    @inline(__always)
    func nearest(_ x: Double, _ y: Double, _ z: Double) -> Float {
        // Inside, x + ½ ∈ [0, n), so truncation is the floor and a valid index.
        values[Int(x + 0.5) * s0 + Int(y + 0.5) * s1 + Int(z + 0.5)]
    }

    /// Cell start offset, step to the next voxel and its Float weight along one axis of
    /// extent n, the coordinate clamped to [0, n − 1]; the step is 0 when the weight is (so
    /// grid points read one voxel only and the last voxel needs no neighbour).
    @inline(__always)
    static func cell(_ x: Double, _ n: Int, _ stride: Int) -> (offset: Int, next: Int, weight: Float) {
        let clamped = min(max(x, 0), Double(n - 1))
        let index = Int(clamped)
        let weight = Float(clamped - Double(index))
        return (index * stride, weight > 0 ? stride : 0, weight)
    }

    /// Trilinear interpolation of the 8 voxels around an inside point.
    @inline(__always)
    func linear(_ x: Double, _ y: Double, _ z: Double) -> Float {
        let (ox, dx, wx) = Self.cell(x, n0, s0)
        let (oy, dy, wy) = Self.cell(y, n1, s1)
        let (oz, dz, wz) = Self.cell(z, n2, 1)
        let p = values + (ox + oy + oz)
        let (ux, uy, uz) = (1 - wx, 1 - wy, 1 - wz)
        let c00 = uz * p[0] + wz * p[dz]
        let c01 = uz * p[dy] + wz * p[dy + dz]
        let c10 = uz * p[dx] + wz * p[dx + dz]
        let c11 = uz * p[dx + dy] + wz * p[dx + dy + dz]
        return ux * (uy * c00 + wy * c01) + wx * (uy * c10 + wy * c11)
    }

    /// The cell start (≤ n − 2, so the fraction is in [0, 1] and the taps in −1...n) and the
    /// cubic B-spline weights of the fraction t along one axis of extent n:
    /// ((1 − t)³, 4 − 6t² + 3t³, 1 + 3t + 3t² − 3t³, t³) / 6 for taps start − 1 … start + 2.
    @inline(__always)
    static func cubicCell(_ x: Double, _ n: Int) -> (start: Int, weights: SIMD4<Float>) {
        let clamped = min(max(x, 0), Double(n - 1))
        let start = min(Int(clamped), max(n - 2, 0))
        let t = Float(clamped - Double(start))
        let (t2, u) = (t * t, 1 - t)
        let t3 = t2 * t
        return (start, SIMD4<Float>(u * u * u, 4 - 6 * t2 + 3 * t3, 1 + 3 * t + 3 * t2 - 3 * t3, t3) * (1 / 6))
    }

    /// Offsets of the four taps around a cell start, mirrored about the first and last voxel
    /// as the prefilter assumes (−1 → 1, n → n − 2; an axis of one voxel has only tap 0).
    @inline(__always)
    static func mirroredTaps(_ start: Int, _ n: Int, _ stride: Int) -> SIMD4<Int> {
        var taps = SIMD4<Int>(start - 1, start, start + 1, start + 2)
        for m in 0..<4 {
            let tap = taps[m]
            taps[m] = (n == 1 ? 0 : tap < 0 ? -tap : tap >= n ? 2 * (n - 1) - tap : tap) * stride
        }
        return taps
    }

    /// Cubic B-spline interpolation from the 4×4×4 coefficients around an inside point.
    @inline(__always)
    func cubic(_ x: Double, _ y: Double, _ z: Double) -> Float {
        let (cx, wx) = Self.cubicCell(x, n0)
        let (cy, wy) = Self.cubicCell(y, n1)
        let (cz, wz) = Self.cubicCell(z, n2)
        var planes = SIMD4<Float>()
        if cx >= 1 && cx + 2 < n0 && cy >= 1 && cy + 2 < n1 && cz >= 1 && cz + 2 < n2 {
            // Away from the edges: four contiguous taps along k per (i, j).
            let corner = UnsafeRawPointer(values + ((cx - 1) * s0 + (cy - 1) * s1 + cz - 1))
            for a in 0..<4 {
                var plane = SIMD4<Float>()
                for b in 0..<4 {
                    plane += wy[b] * corner.loadUnaligned(fromByteOffset: 4 * (a * s0 + b * s1), as: SIMD4<Float>.self)
                }
                planes += wx[a] * plane
            }
        } else {
            let (tx, ty, tz) = (Self.mirroredTaps(cx, n0, s0), Self.mirroredTaps(cy, n1, s1), Self.mirroredTaps(cz, n2, 1))
            for a in 0..<4 {
                var plane = SIMD4<Float>()
                for b in 0..<4 {
                    let p = values + (tx[a] + ty[b])
                    plane += wy[b] * SIMD4<Float>(p[tz[0]], p[tz[1]], p[tz[2]], p[tz[3]])
                }
                planes += wx[a] * plane
            }
        }
        return (planes * wz).sum()
    }
}
