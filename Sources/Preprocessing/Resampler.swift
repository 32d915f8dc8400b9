import Foundation
import TensorCore
import VolumeIO

/// How a value between voxel centres is computed.
public enum Interpolation: String, Sendable, Codable, CaseIterable {
    /// The voxel whose centre is nearest, ⌊u + ½⌋ per axis (ties go to the higher index):
    /// copies values, so label maps and masks keep only their own labels.
    case nearest
    /// Trilinear interpolation of the 8 surrounding voxels.
    case linear
    /// Cubic B-spline interpolation (the spline through every voxel, 4×4×4 coefficients per
    /// point), with the exact recursive prefilter and mirror-symmetric boundary of
    /// `BSplinePrefilter`: scipy.ndimage `map_coordinates(order=3, mode='mirror')` inside the
    /// source. Smoother than linear, sharper at the same grid; it can over- and undershoot
    /// near edges (ringing), so clip afterwards if the range matters.
    case bspline
}

/// Resampling of volumes onto other grids, and the exact (whole-voxel) crops and pads.
///
/// Conventions: grids and volumes map voxel indices (i, j, k), 0-based, to world millimetres
/// (RAS+) with their affines; a `transform` maps output world points to source world points
/// ("output space to source space", as the transforms ITK and ANTs resample with, and as
/// `RegistrationResult.transform`, template → scan).
public enum Resampler {
    /// How far (in voxels) outside the span of voxel centres, [0, n − 1], a point still
    /// counts as inside for linear and B-spline interpolation (it is clamped to the edge):
    /// rounding in the affines must not turn an edge voxel into fill.
    public static let edgeTolerance = 1e-4

    /// `volume` resampled onto `grid`: output voxel v takes the source's value at
    ///
    /// ```
    /// u = volume.affine⁻¹ · transform · grid.affine · v      (source voxel coordinates)
    /// ```
    ///
    /// Points outside the source get `fill`: for linear and B-spline when some coordinate of
    /// u leaves [0, n − 1] by more than `edgeTolerance`; for nearest when the voxel
    /// ⌊u + ½⌋ does not exist (u outside [−½, n − ½)).
    ///
    /// The voxel → voxel matrix is computed once in Double; entries within 1e-9 of an
    /// integer are set to it, which cancels the rounding of inverting and multiplying the
    /// affines so that grids sharing voxel centres copy voxels exactly (resampling onto the
    /// volume's own grid returns its voxels bit for bit, with every interpolation but
    /// `.bspline`, which is exact to Float rounding). Positions are Double: each row's start
    /// from the matrix, then one addition per voxel along k (linear, B-spline; drift under
    /// 1e-10 voxel) or start + k · step (nearest); weights and sums are Float (relative error
    /// about 1e-7, far below any intensity that matters). Rows of i are split over the
    /// engine's threads and every row is computed on its own, so the result does not depend
    /// on the thread count.
    ///
    /// - Parameters:
    ///   - transform: output world → source world; the identity resamples in place.
    ///   - fill: the value of output voxels outside the source.
    ///   - antiAliasing: blur the source first when the output is coarser. Along source axis
    ///     a, one output step spans s_a source voxels (the row norm of the voxel → voxel
    ///     matrix), and scikit-image's `resize(anti_aliasing=True)` rule asks for a Gaussian
    ///     of σ_a = max(0, (s_a − 1)/2) voxels; the blur is one isotropic Gaussian
    ///     (`GaussianSmoothing.smooth`) of the widest of these in mm, max_a σ_a · size_a, so
    ///     an anisotropic source is blurred a little more than needed along its coarse axes.
    ///     Off by default; not with `.nearest` (labels must not be blurred).
    ///   - name: how errors name the scan (its path).
    /// - Returns: a volume on `grid` (its shape and affine), without a header: the data now
    ///   live in the grid's space, which the source header's transform codes do not describe.
    /// - Throws: `.unsupportedVolume` for a volume without voxels or with a singular or
    ///   non-finite affine; `.invalidOption` for a grid with an empty or oversized shape or
    ///   a singular or non-finite affine, a transform that is not finite or not invertible,
    ///   or anti-aliasing with `.nearest`.
    public static func resample(_ volume: Volume, onto grid: Grid, transform: Affine = .identity,
                                interpolation: Interpolation = .linear, fill: Float = 0, antiAliasing: Bool = false,
                                name: String = "volume") throws(PreprocessingError) -> Volume {
        try check(grid, name: "grid")
        guard transform.isFinite else {
            throw .invalidOption(name: "transform", value: "\(transform.entries)", reason: "holds NaN or infinity")
        }
        guard (try? transform.inverse()) != nil else {
            throw .invalidOption(name: "transform", value: "\(transform.entries)", reason: "is singular (it collapses space)")
        }
        guard !(antiAliasing && interpolation == .nearest) else {
            throw .invalidOption(name: "anti-aliasing", value: "on", reason: "nearest-neighbour resampling copies labels, which must not be blurred")
        }
        guard volume.shape.allSatisfy({ $0 >= 1 }) else {
            throw .unsupportedVolume(path: name, reason: "it has no voxels (shape \(volume.shape))")
        }
        let map = try voxelMap(from: grid.affine, through: transform, to: volume, name: name)
        var values = volume.data.scalars
        if antiAliasing {
            let sizes = volume.voxelSizes
            let sigma = (0..<3).map { a in max(0, (rowNorm(map, a) - 1) / 2) * sizes[a] }.max() ?? 0
            values = GaussianSmoothing.smooth(volume, sigma: sigma).data.scalars
        }
        if interpolation == .bspline { values = BSplinePrefilter.coefficients(values, shape: volume.shape) }
        let data = values.withUnsafeBufferPointer { source in
            Tensor(uninitializedShape: grid.shape) { output in
                let sampler = VoxelSampler(source, shape: volume.shape, interpolation: interpolation, fill: fill)
                sampleGrid(sampler, map: map, shape: grid.shape, into: output)
            }
        }
        return Reorientation.makeVolume(data, affine: grid.affine)
    }

    /// `volume` resampled to new voxel sizes over the same field of view: the grid of
    /// `Grid(volume).withVoxelSize(voxelSize)` (same axis directions and first voxel centre,
    /// enough voxels to reach past the last one; see there).
    /// - Parameters:
    ///   - voxelSize: the new voxel sizes in mm along the volume's axes i, j, k.
    ///   - fill: the value of the output voxels past the source's last voxel centre.
    /// - Throws: `.invalidOption` for voxel sizes that are not three positive finite numbers or
    ///   give an oversized grid; otherwise as `resample(_:onto:transform:interpolation:fill:antiAliasing:name:)`.
    public static func resample(_ volume: Volume, voxelSize: [Double], interpolation: Interpolation = .linear,
                                fill: Float = 0, antiAliasing: Bool = false, name: String = "volume") throws(PreprocessingError) -> Volume {
        guard volume.affine.isFinite, volume.voxelSizes.allSatisfy({ $0 > 0 }) else {
            throw .unsupportedVolume(path: name, reason: "its affine is not finite or has a zero voxel axis")
        }
        let grid = try Grid(volume).withVoxelSize(voxelSize)
        return try resample(volume, onto: grid, interpolation: interpolation, fill: fill, antiAliasing: antiAliasing, name: name)
    }

    /// `volume` cropped and/or padded to `shape` by whole voxels, without interpolation: every
    /// output voxel is a copy of the source voxel at the same world position, or `fill` where
    /// there is none. The axes keep their directions and sizes; the affine's translation moves
    /// to the world position of the first kept (or padded) voxel.
    ///
    /// Along each axis the output starts at source index `offset` (negative when padding):
    /// - centred on the grid: `offset = ⌊(n − n′ + 1)/2⌋`, so the output's centre is the
    ///   source's, or half a voxel past it when n − n′ is odd (e.g. crop 3 → 2 before, 1
    ///   after; pad 3 → 1 before, 2 after);
    /// - centred on a world point p: `offset = ⌊u − (n′ − 1)/2 + ½⌋` with u the source voxel
    ///   coordinates of p, so the output's centre is the voxel centre nearest p (half up).
    ///
    /// - Parameters:
    ///   - shape: the output extents `[X, Y, Z]`, each ≥ 1.
    ///   - world: the point (mm, RAS+) to centre on; nil centres on the volume's grid.
    ///   - fill: the value of padded voxels.
    /// - Returns: the cropped volume; its header (if any) is kept with the new extents and
    ///   affine, since the data stay in the same space.
    /// - Throws: `.invalidOption` for a bad shape or point; `.unsupportedVolume` for a
    ///   singular or non-finite volume affine when centring on a point.
    public static func cropOrPad(_ volume: Volume, to shape: [Int], centredOn world: [Double]? = nil, fill: Float = 0,
                                 name: String = "volume") throws(PreprocessingError) -> Volume {
        try checkShape(shape, name: "crop shape")
        let source = volume.shape
        var offset = [0, 0, 0]
        if let world {
            guard world.count == 3, world.allSatisfy(\.isFinite) else {
                throw .invalidOption(name: "crop centre", value: "\(world)", reason: "needs three finite world coordinates (mm)")
            }
            guard volume.affine.isFinite, let inverse = try? volume.affine.inverse() else {
                throw .unsupportedVolume(path: name, reason: "its affine is singular or not finite")
            }
            let u = inverse.apply(world)
            for a in 0..<3 {
                let start = (u[a] - Double(shape[a] - 1) / 2 + 0.5).rounded(.down)
                guard abs(start) < Double(1 << 40) else {
                    throw .invalidOption(name: "crop centre", value: "\(world)", reason: "lies absurdly far outside \(name)")
                }
                offset[a] = Int(start)
            }
        } else {
            for a in 0..<3 {
                let difference = source[a] - shape[a] + 1
                // Floor division (Swift's `/` truncates toward zero).
                offset[a] = difference >= 0 ? difference / 2 : -((-difference + 1) / 2)
            }
        }
        let (n0, n1, n2) = (shape[0], shape[1], shape[2])
        let (s1, s2) = (source[1], source[2])
        let data = volume.data.withUnsafeBufferPointer { input in
            Tensor(uninitializedShape: shape) { output in
                guard let from = input.baseAddress, let to = output.baseAddress else { return }
                // The output k range that lands inside the source is the same on every row.
                let kLow = min(max(0, -offset[2]), n2), kHigh = max(kLow, min(n2, s2 - offset[2]))
                Engine.parallelRanges(n0, minimumPerWorker: max(1, (1 << 15) / max(1, n1 * n2))) { rows in
                    for i in rows {
                        for j in 0..<n1 {
                            let row = to + (i * n1 + j) * n2
                            let (si, sj) = (i + offset[0], j + offset[1])
                            guard (0..<source[0]).contains(si), (0..<s1).contains(sj) else {
                                row.update(repeating: fill, count: n2)
                                continue
                            }
                            row.update(repeating: fill, count: kLow)
                            (row + kLow).update(from: from + ((si * s1 + sj) * s2 + kLow + offset[2]), count: kHigh - kLow)
                            (row + kHigh).update(repeating: fill, count: n2 - kHigh)
                        }
                    }
                }
            }
        }
        let affine = translated(volume.affine, by: offset)
        return Reorientation.makeVolume(data, affine: affine,
                                        header: volume.header.map { Reorientation.regridded($0, shape: shape, affine: affine) })
    }

    // MARK: - Implementation

    /// `affine` with its origin moved to the world position of voxel `offset`.
    static func translated(_ affine: Affine, by offset: [Int]) -> Affine {
        var moved = affine
        let origin = affine.apply(offset.map(Double.init))
        for r in 0..<3 { moved[r, 3] = origin[r] }
        return moved
    }

    /// Throws `.invalidOption` unless `grid` has a valid shape (see `checkShape`) and a
    /// finite, invertible affine.
    static func check(_ grid: Grid, name: String) throws(PreprocessingError) {
        try checkShape(grid.shape, name: name)
        guard grid.affine.isFinite, (try? grid.affine.inverse()) != nil else {
            throw .invalidOption(name: name, value: "\(grid.affine.entries)", reason: "its affine is singular or not finite")
        }
    }

    /// Throws `.invalidOption` unless `extents` are three counts ≥ 1 with at most 2³¹
    /// voxels in all (far beyond any scan, small enough never to overflow an index).
    static func checkShape(_ extents: [Int], name: String) throws(PreprocessingError) {
        guard extents.count == 3, extents.allSatisfy({ $0 >= 1 }),
              extents.reduce(1.0, { $0 * Double($1) }) <= Double(1 << 31) else {
            throw .invalidOption(name: name, value: "\(extents)", reason: "needs three extents of at least 1, at most 2^31 voxels in all")
        }
    }

    /// The 3×4 voxel → voxel matrix (row by row) from output grid voxels to source voxels,
    /// `volume.affine⁻¹ · transform · gridAffine`, with entries within 1e-9 of an integer
    /// set to it.
    static func voxelMap(from gridAffine: Affine, through transform: Affine, to volume: Volume,
                         name: String) throws(PreprocessingError) -> [Double] {
        guard volume.affine.isFinite, let inverse = try? volume.affine.inverse() else {
            throw .unsupportedVolume(path: name, reason: "its affine is singular or not finite:\n\(volume.affine)")
        }
        let full = inverse * transform * gridAffine
        return (0..<12).map { index in
            let value = full[index / 4, index % 4]
            let nearest = value.rounded()
            return abs(value - nearest) <= 1e-9 ? nearest : value
        }
    }

    /// Length of row `a` of the linear part of a 3×4 map.
    static func rowNorm(_ map: [Double], _ a: Int) -> Double {
        (map[4 * a] * map[4 * a] + map[4 * a + 1] * map[4 * a + 1] + map[4 * a + 2] * map[4 * a + 2]).squareRoot()
    }

    /// Fills `output` (shape `shape`, k fastest) with the samples of `sampler` at the source
    /// positions `map · (i, j, k, 1)`, rows of i split over the engine's threads.
    static func sampleGrid(_ sampler: VoxelSampler, map m: [Double], shape: [Int], into output: UnsafeMutableBufferPointer<Float>) {
        guard let out = output.baseAddress else { return }
        let (n1, n2) = (shape[1], shape[2])
        let step = (m[2], m[6], m[10])
        Engine.parallelRanges(shape[0], minimumPerWorker: max(1, (1 << 14) / max(1, n1 * n2))) { rows in
            for i in rows {
                for j in 0..<n1 {
                    let (di, dj) = (Double(i), Double(j))
                    let start = (m[0] * di + m[1] * dj + m[3], m[4] * di + m[5] * dj + m[7], m[8] * di + m[9] * dj + m[11])
                    sampler.sampleRow(into: out + (i * n1 + j) * n2, count: n2, start: start, step: step)
                }
            }
        }
    }

    /// Values of `volume` at source voxel positions `points` (each `[x, y, z]`), as
    /// `resample` computes them: the reference hook for tests against other libraries.
    static func sample(_ volume: Volume, atVoxels points: [[Double]], interpolation: Interpolation, fill: Float = 0) -> [Float] {
        var values = volume.data.scalars
        if interpolation == .bspline { values = BSplinePrefilter.coefficients(values, shape: volume.shape) }
        return values.withUnsafeBufferPointer { source in
            let sampler = VoxelSampler(source, shape: volume.shape, interpolation: interpolation, fill: fill)
            return points.map { sampler.value(at: $0[0], $0[1], $0[2]) }
        }
    }
}
