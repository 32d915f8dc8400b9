import TensorCore
import VolumeIO

/// Reorders and reverses a volume's voxel axes so that they point along chosen world
/// directions, as nibabel's `as_closest_canonical` (for "RAS") and `apply_orientation`.
///
/// Nothing is interpolated: every voxel is copied as it is (intensities, masks and label maps
/// alike) and the affine is updated so that every voxel keeps its world position exactly.
/// Each voxel axis is matched to the world axis it is closest to (`Affine.axisCodes`,
/// nibabel's `io_orientation`), so an oblique scan becomes as near to the target as an index
/// permutation can make it, and stays oblique.
///
/// Orientation codes name, for voxel axes i, j, k in turn, the world direction each one grows
/// towards: one letter from each pair L/R (x), P/A (y), I/S (z), e.g. "RAS", "LPS", "LIA".
public enum Reorientation {
    /// `volume` with its voxel axes permuted and reversed so that its axis codes are "RAS".
    /// A volume already in RAS order is returned unchanged (same affine bits, same header).
    /// - Parameter name: how errors name the scan (its path).
    /// - Throws: `.unsupportedVolume` for an affine that is not finite or has a degenerate axis.
    public static func toRAS(_ volume: Volume, name: String = "volume") throws(PreprocessingError) -> Volume {
        try reorient(volume, to: "RAS", name: name)
    }

    /// `volume` with its voxel axes permuted and reversed so that its axis codes are `codes`.
    ///
    /// Output voxel `o` is input voxel `T · o` with `T = indexTransform(volume, to: codes)`,
    /// and the output affine is `volume.affine · T`. The header, when there is one, is kept
    /// with its extents, voxel sizes and `dim_info` axes permuted to match and its stored qform
    /// dropped, so the writer keeps the transform codes and units and derives a new qform
    /// from the new affine; the data are on the same world grid, only indexed differently.
    /// - Throws: `.invalidOption` for codes that are not one letter from each of L/R, P/A,
    ///   I/S; `.unsupportedVolume` for an affine that is not finite or has a degenerate axis.
    public static func reorient(_ volume: Volume, to codes: String, name: String = "volume") throws(PreprocessingError) -> Volume {
        let map = try axisMap(volume.affine, to: codes, name: name)
        if map.isIdentity { return volume }
        let inShape = volume.shape
        let outShape = map.sourceAxis.map { inShape[$0] }
        let inStrides = [inShape[1] * inShape[2], inShape[2], 1]
        // Input offset of output voxel (o0, o1, o2) is base + o0·d0 + o1·d1 + o2·d2.
        var base = 0
        var delta = [0, 0, 0]
        for n in 0..<3 {
            let axis = map.sourceAxis[n]
            delta[n] = map.flipped[n] ? -inStrides[axis] : inStrides[axis]
            if map.flipped[n] { base += (inShape[axis] - 1) * inStrides[axis] }
        }
        let (n1, n2) = (outShape[1], outShape[2])
        let (d0, d1, d2) = (delta[0], delta[1], delta[2])
        let data = volume.data.withUnsafeBufferPointer { input in
            Tensor(uninitializedShape: outShape) { output in
                guard let source = input.baseAddress, let target = output.baseAddress else { return }
                Engine.parallelRanges(outShape[0], minimumPerWorker: max(1, (1 << 15) / max(1, n1 * n2))) { slices in
                    for o0 in slices {
                        for o1 in 0..<n1 {
                            let from = source + (base + o0 * d0 + o1 * d1)
                            let to = target + (o0 * n1 + o1) * n2
                            for o2 in 0..<n2 { to[o2] = from[o2 * d2] }
                        }
                    }
                }
            }
        }
        let affine = volume.affine * map.indexTransform(shape: inShape)
        return makeVolume(data, affine: affine,
                          header: volume.header.map { regridded($0, shape: outShape, affine: affine, sourceAxis: map.sourceAxis) })
    }

    /// The voxel-index map of `reorient(volume, to: codes)`: output voxel `o` (homogeneous)
    /// is input voxel `T · o`, a signed axis permutation plus whole-voxel shifts (so
    /// `volume.affine · T` is the reoriented affine). Useful to carry voxel coordinates
    /// (landmarks, bounding boxes) across a reorientation.
    /// - Throws: as `reorient(_:to:name:)`.
    public static func indexTransform(_ volume: Volume, to codes: String, name: String = "volume") throws(PreprocessingError) -> Affine {
        try axisMap(volume.affine, to: codes, name: name).indexTransform(shape: volume.shape)
    }

    // MARK: - Implementation

    /// For each output axis: the input axis it reads and whether it reads it backwards.
    struct AxisMap: Equatable {
        var sourceAxis: [Int]
        var flipped: [Bool]

        var isIdentity: Bool { sourceAxis == [0, 1, 2] && !flipped.contains(true) }

        /// Output index → input index: column n is ±e(sourceAxis[n]), and a reversed axis
        /// starts at its last voxel.
        func indexTransform(shape: [Int]) -> Affine {
            var t = Affine(entries: [Double](repeating: 0, count: 15) + [1])
            for n in 0..<3 {
                let axis = sourceAxis[n]
                t[axis, n] = flipped[n] ? -1 : 1
                if flipped[n] { t[axis, 3] = Double(shape[axis] - 1) }
            }
            return t
        }
    }

    /// The target world axis and direction of each output axis, from codes such as "LPS".
    static func parse(_ codes: String) throws(PreprocessingError) -> [(axis: Int, sign: Int)] {
        let letters: [Character: (axis: Int, sign: Int)] = [
            "L": (0, -1), "R": (0, 1), "P": (1, -1), "A": (1, 1), "I": (2, -1), "S": (2, 1),
        ]
        let targets = codes.uppercased().compactMap { letters[$0] }
        guard codes.count == 3, targets.count == 3, Set(targets.map(\.axis)).count == 3 else {
            throw .invalidOption(name: "orientation", value: "\"\(codes)\"",
                                 reason: "needs three letters, one from each of L/R, P/A and I/S (e.g. RAS, LPS, LIA)")
        }
        return targets
    }

    /// How to permute and reverse the axes of a volume with `affine` to reach `codes`.
    static func axisMap(_ affine: Affine, to codes: String, name: String) throws(PreprocessingError) -> AxisMap {
        let targets = try parse(codes)
        guard affine.isFinite, let orientation = try? AffineGeometry.ioOrientation(affine) else {
            throw .unsupportedVolume(path: name, reason: "its affine is not finite, so its axes have no orientation")
        }
        var current: [(axis: Int, sign: Int)] = []
        for entry in orientation {
            guard let (axis, sign) = entry else {
                throw .unsupportedVolume(path: name, reason: "a voxel axis of its affine points nowhere (axis codes \(affine.axisCodes))")
            }
            current.append((axis, sign))
        }
        var map = AxisMap(sourceAxis: [0, 0, 0], flipped: [false, false, false])
        for n in 0..<3 {
            // ioOrientation assigns each world axis to exactly one voxel axis.
            guard let source = current.firstIndex(where: { $0.axis == targets[n].axis }) else {
                throw .unsupportedVolume(path: name, reason: "its axes do not span the world axes (axis codes \(affine.axisCodes))")
            }
            map.sourceAxis[n] = source
            map.flipped[n] = current[source].sign != targets[n].sign
        }
        return map
    }

    /// `header` describing data of `shape` on `affine` whose axis n was axis `sourceAxis[n]`:
    /// extents, voxel sizes and `dim_info` follow the axes, the stored qform is dropped (the
    /// writer derives one from the affine under the header's codes).
    static func regridded(_ header: VolumeHeader, shape: [Int], affine: Affine, sourceAxis: [Int] = [0, 1, 2]) -> VolumeHeader {
        var header = header
        header.dims = shape + header.dims.dropFirst(3)
        if header.pixdim.count >= 4 {
            let sizes = header.pixdim[1...3]
            for n in 0..<3 { header.pixdim[1 + n] = sizes[1 + sourceAxis[n]] }
        }
        // dim_info packs the frequency, phase and slice axes (1-based, 0 = unknown) in 2-bit fields.
        var dimInfo: UInt8 = 0
        for shift: UInt8 in [0, 2, 4] {
            let old = Int((header.dimInfo >> shift) & 3)
            guard old > 0, let new = sourceAxis.firstIndex(of: old - 1) else { continue }
            dimInfo |= UInt8(new + 1) << shift
        }
        header.dimInfo = dimInfo
        header.affine = affine
        header.quaternion = nil
        return header
    }

    /// A volume from data built here, always 3-D.
    static func makeVolume(_ data: Tensor, affine: Affine, header: VolumeHeader? = nil) -> Volume {
        // Every caller builds `data` with a three-extent shape, so the rank check cannot fail.
        try! Volume(data: data, affine: affine, header: header)
    }
}
