import Classifiers
import Foundation
import Learn
import Patches
import TensorCore
import VolumeIO

/// Where voxel features come from: the training scans' common grid, block-averaged by
/// `factor`, restricted to the voxels inside the brain mask of enough training scans.
struct VoxelLayout: Sendable {
    /// The scans' grid and affine.
    var scanShape: Triple
    var scanAffine: Affine
    var factor: Int
    /// The block-averaged grid (`⌊extent / factor⌋` per axis) and its affine.
    var grid: Triple
    var affine: Affine
    /// Selected voxels of `grid` (flat indices, X slowest), `[v]`.
    var voxels: [Int]

    /// Intensities normalised as pretraining does (z-score in the mask, zero outside).
    static var normalisation: PatchSamplingOptions {
        var options = PatchSamplingOptions()
        options.zeroOutsideMask = true
        return options
    }

    /// Reads the training scans once: their common grid, and the voxels where at least
    /// `settings.maskFraction` of them have brain. Returns the layout and the training matrix.
    static func fit(_ scans: [LabelledScan], settings: ICASettings, progress: (Int, Int) -> Void) throws(ClassificationError) -> (VoxelLayout, Tensor) {
        guard settings.voxelDownsample >= 1, (0...1).contains(settings.maskFraction) else {
            throw .invalidOption("voxel downsample \(settings.voxelDownsample) (≥ 1) and mask fraction \(settings.maskFraction) (0 to 1)")
        }
        let first = try load(scans[0])
        let factor = settings.voxelDownsample
        let grid = Triple(first.shape.d / factor, first.shape.h / factor, first.shape.w / factor)
        guard grid.product > 0 else { throw .invalidOption("scans of \(first.shape.array) are smaller than the downsampling factor \(factor)") }
        var blocks: [[Float]] = []
        var inside = [Int](repeating: 0, count: grid.product)
        for (i, scan) in scans.enumerated() {
            let loaded = i == 0 ? first : try load(scan)
            try checkGrid(loaded, scan, like: first)
            let (values, mask) = downsample(loaded, factor: factor, grid: grid)
            for j in 0..<grid.product where mask[j] { inside[j] += 1 }
            blocks.append(values)
            progress(i + 1, scans.count)
        }
        let needed = max(1, Int((settings.maskFraction * Double(scans.count)).rounded(.up)))
        let voxels = (0..<grid.product).filter { inside[$0] >= needed }
        guard voxels.count >= 2 else { throw .invalidOption("only \(voxels.count) voxel(s) lie in the brain mask of \(needed) training scans") }
        var centre = Affine.identity
        for axis in 0..<3 {
            centre.entries[axis * 4 + axis] = Double(factor)
            centre.entries[axis * 4 + 3] = Double(factor - 1) / 2
        }
        let layout = VoxelLayout(scanShape: first.shape, scanAffine: first.affine, factor: factor, grid: grid,
                                 affine: first.affine * centre, voxels: voxels)
        return (layout, layout.matrix(blocks))
    }

    /// The rows of `scans`, `[n, v]`, on this layout.
    func rows(_ scans: [LabelledScan], set: String) throws(ClassificationError) -> Tensor {
        var blocks: [[Float]] = []
        for scan in scans {
            let loaded = try Self.load(scan)
            guard loaded.shape == scanShape, Self.sameGrid(loaded.affine, scanAffine) else {
                throw .badScan("\(scan.location(set)): \(scan.image.path) is not on the training scans' grid (\(scanShape.array)); voxel ICA needs registered scans on one grid")
            }
            blocks.append(Self.downsample(loaded, factor: factor, grid: grid).values)
        }
        return matrix(blocks)
    }

    private func matrix(_ blocks: [[Float]]) -> Tensor {
        Tensor(uninitializedShape: [blocks.count, voxels.count]) { out in
            for (i, block) in blocks.enumerated() {
                for (j, voxel) in voxels.enumerated() { out[i * voxels.count + j] = block[voxel] }
            }
        }
    }

    private static func load(_ scan: LabelledScan) throws(ClassificationError) -> NormalisedScan {
        do { return try NormalisedScan.load(VolumeScans.source(scan), options: normalisation) } catch { throw .badScan("\(error)") }
    }

    private static func checkGrid(_ loaded: NormalisedScan, _ scan: LabelledScan, like first: NormalisedScan) throws(ClassificationError) {
        guard loaded.shape == first.shape, sameGrid(loaded.affine, first.affine) else {
            throw .badScan("\(scan.location("train.tsv")): \(scan.image.path) has grid \(loaded.shape.array) and affine \(loaded.affine), the first training scan \(first.shape.array) and \(first.affine); voxel ICA needs registered scans on one grid")
        }
    }

    /// Affines equal to within 1e-3 mm (header round-off).
    static func sameGrid(_ a: Affine, _ b: Affine) -> Bool {
        zip(a.entries, b.entries).allSatisfy { abs($0 - $1) <= 1e-3 }
    }

    /// Block means of the values, and blocks at least half inside the mask.
    private static func downsample(_ scan: NormalisedScan, factor: Int, grid: Triple) -> (values: [Float], mask: [Bool]) {
        if factor == 1 { return (scan.values, scan.mask) }
        var values = [Float](repeating: 0, count: grid.product)
        var mask = [Bool](repeating: false, count: grid.product)
        let (ny, nz) = (scan.shape.h, scan.shape.w)
        let cube = Float(factor * factor * factor)
        for a in 0..<grid.d { for b in 0..<grid.h { for c in 0..<grid.w {
            var total: Float = 0
            var brain = 0
            for x in (a * factor)..<((a + 1) * factor) { for y in (b * factor)..<((b + 1) * factor) { for z in (c * factor)..<((c + 1) * factor) {
                let i = (x * ny + y) * nz + z
                total += scan.values[i]
                if scan.mask[i] { brain += 1 }
            } } }
            let j = (a * grid.h + b) * grid.w + c
            values[j] = total / cube
            mask[j] = Float(brain) * 2 >= cube
        } } }
        return (values, mask)
    }
}

/// Spatial ICA over the training scans (Yang et al. 2011, on grey-matter maps; here on the
/// normalised T1 voxels): the subjects × voxels matrix is unmixed into `k` independent
/// spatial maps, and every scan's features are its loadings on them.
///
/// ```
/// Xᵀ [v, n]  →  FastICA (voxels as samples)  →  S [v, k]
/// loadings(x) = (x − x̄)ᵀ S (SᵀS)⁻¹       (least squares, the same for train and test)
/// ```
struct SpatialICA {
    var layout: VoxelLayout
    /// The component maps, `[v, k]`.
    var maps: Tensor
    var iterations: Int
    var converged: Bool
    var warning: String?

    static func fit(_ x: Tensor, layout: VoxelLayout, settings: ICASettings, seed: UInt64) throws(ClassificationError) -> SpatialICA {
        let n = x.shape[0]
        guard settings.components >= 1, settings.components < n else {
            throw .invalidOption("\(settings.components) ICA components from \(n) training scans: use 1 to \(n - 1)")
        }
        do {
            let ica = try FastICA.fromSettings(settings, seed: seed)
            let voxelsBySubjects = try x.transposed()
            let fitted = try ica.fit(voxelsBySubjects)
            return SpatialICA(layout: layout, maps: try fitted.transform(voxelsBySubjects), iterations: fitted.iterations,
                              converged: fitted.converged, warning: fitted.warning)
        } catch let error as ClassificationError { throw error } catch let error as LearnError { throw .learn(error) } catch {
            throw .io("\(error)")
        }
    }

    /// Loadings `[n, k]` of rows `x [n, v]`.
    func loadings(_ x: Tensor) throws(ClassificationError) -> Tensor {
        do {
            let (n, v) = (x.shape[0], x.shape[1])
            var centred = x
            centred.withUnsafeMutableBufferPointer { p in
                for i in 0..<n {
                    var total = 0.0
                    for j in 0..<v { total += Double(p[i * v + j]) }
                    let mean = Float(total / Double(v))
                    for j in 0..<v { p[i * v + j] -= mean }
                }
            }
            let gram = try Tensor.matmul(maps, maps, transposeA: true)
            let projected = try Tensor.matmul(centred, maps)
            // (SᵀS)⁻¹ Sᵀ(x − x̄) for every row: solve with the Gram matrix, rows as right-hand sides.
            return try LinearAlgebra.solve(gram, try projected.transposed()).transposed()
        } catch { throw .learn(.numerical("ICA loadings: \(error)")) }
    }

    /// The maps as a 4-D NIfTI (one frame per component) on the block-averaged grid.
    func writeMaps(to url: URL) throws(ClassificationError) {
        let k = maps.shape[1]
        let frames = (0..<k).map { c in
            var frame = [Float](repeating: 0, count: layout.grid.product)
            for (j, voxel) in layout.voxels.enumerated() { frame[voxel] = maps.scalars[j * k + c] }
            return frame
        }
        do {
            try VolumeWriter.write(frames: try frames.map { try Tensor(shape: layout.grid.array, scalars: $0) }, affine: layout.affine, to: url)
        } catch { throw .io("\(url.path): \(error)") }
    }
}

extension FastICA {
    /// The estimator `settings` describe.
    static func fromSettings(_ settings: ICASettings, seed: UInt64) throws(ClassificationError) -> FastICA {
        var ica = FastICA()
        ica.components = settings.components
        switch settings.algorithm {
        case "parallel": ica.algorithm = .parallel
        case "deflation": ica.algorithm = .deflation
        default: throw .invalidOption("ICA algorithm '\(settings.algorithm)': parallel or deflation")
        }
        switch settings.contrast {
        case "logcosh": ica.contrast = .logcosh(alpha: 1)
        case "exp": ica.contrast = .exp
        case "cube": ica.contrast = .cube
        default: throw .invalidOption("ICA contrast '\(settings.contrast)': logcosh, exp or cube")
        }
        switch settings.whitening {
        case "eigen": ica.whitening = .eigen
        case "svd": ica.whitening = .svd
        default: throw .invalidOption("ICA whitening '\(settings.whitening)': eigen or svd")
        }
        ica.tolerance = settings.tolerance
        ica.maxIterations = settings.maxIterations
        ica.seed = seed
        return ica
    }
}
