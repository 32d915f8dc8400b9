import Foundation
import TensorCore
import VolumeIO

/// One scan to draw patches from: its image, optional brain mask, and where it came from.
public struct ScanSource: Sendable, Equatable {
    /// A name for messages and patch records, e.g. `sub-0001/ses-M000`.
    public var name: String
    public var image: URL
    public var mask: URL?
    /// The scan's line in its manifest, for error messages.
    public var line: Int?

    public init(name: String, image: URL, mask: URL? = nil, line: Int? = nil) {
        (self.name, self.image, self.mask, self.line) = (name, image, mask, line)
    }
}

/// A scan ready for patch drawing: normalised intensities, cropped to the box around its
/// mask that any patch centred in the mask can touch, and the list of valid patch origins.
///
/// Coordinates: `data` is the crop of `Volume.data [X, Y, Z]` starting at voxel `cropOrigin`,
/// row-major with `k` fastest. A patch of size `s` starting at voxel `o` is *centred* at
/// `o + s/2` (integer division per axis); it is valid when that centre lies in the mask and
/// the whole patch lies inside the volume.
public struct PreparedScan: Sendable {
    public let volumeShape: Triple
    public let cropOrigin: Triple
    public let cropShape: Triple
    /// Normalised voxels of the crop (`cropShape.product` values).
    let data: [Float]
    /// Valid patch origins as linear indices into the crop, ascending.
    let origins: [Int32]
    /// Voxels in the brain mask (or foreground).
    public let maskVoxels: Int
    /// The affine of the source image, for reports.
    public let affine: Affine

    /// Bytes held (for the cache's budget).
    var byteCount: Int { data.count * 4 + origins.count * 4 + 256 }

    /// Number of distinct patches that can be drawn.
    public var validPatchCount: Int { origins.count }

    /// Reads, masks, normalises and crops a scan.
    /// - Throws: `PatchError.badScan` naming the file (and manifest line) for unreadable
    ///   files, NaN/Inf voxels, 4-D images, a mask of another size, an empty mask or one
    ///   too close to the edge for any patch.
    public static func load(_ source: ScanSource, options: PatchSamplingOptions) throws(PatchError) -> PreparedScan {
        func fail(_ url: URL, _ reason: String) -> PatchError { .badScan(path: url.path, line: source.line, reason: reason) }
        func read(_ url: URL) throws(PatchError) -> Volume {
            do {
                let header = try VolumeReader.readHeader(url)
                guard header.volumeCount == 1 else {
                    throw fail(url, "expected a 3-D image, got \(header.volumeCount) volumes (dimensions \(header.dims))")
                }
                return try VolumeReader.read(url)
            } catch let error as PatchError {
                throw error
            } catch {
                // The reader's messages start with the path, which `badScan` names already.
                let message = String(describing: error)
                throw fail(url, message.hasPrefix(url.path + ": ") ? String(message.dropFirst(url.path.count + 2)) : message)
            }
        }
        try options.validate()
        let image = try read(source.image)
        let shape = Triple(image.shape[0], image.shape[1], image.shape[2])
        var mask: [Bool]
        if let maskURL = source.mask {
            let maskVolume = try read(maskURL)
            guard maskVolume.shape == image.shape else {
                throw fail(maskURL, "mask dimensions \(maskVolume.shape) differ from the image's \(image.shape)")
            }
            mask = maskVolume.data.scalars.map { $0 != 0 }
        } else {
            var finite = image.data.scalars
            let p99 = Percentiles.of(&finite, [99])[0]
            let threshold = Float(options.foregroundThreshold * p99)
            mask = image.data.scalars.map { $0 > threshold }
        }
        let maskVoxels = mask.reduce(0) { $0 + ($1 ? 1 : 0) }
        guard maskVoxels > 0 else {
            throw fail(source.mask ?? source.image, source.mask == nil ? "no voxel above the foreground threshold" : "the brain mask is empty")
        }
        var values = image.data.scalars
        normalise(&values, mask: mask, options: options)

        // The crop: every voxel a patch centred in the mask can reach.
        let (nx, ny, nz) = (shape.d, shape.h, shape.w)
        let (sx, sy, sz) = (options.extent.d, options.extent.h, options.extent.w)
        var (lowX, lowY, lowZ) = (nx, ny, nz)
        var (highX, highY, highZ) = (-1, -1, -1)
        for x in 0..<nx {
            for y in 0..<ny {
                let row = (x * ny + y) * nz
                for z in 0..<nz where mask[row + z] {
                    lowX = min(lowX, x); highX = max(highX, x)
                    lowY = min(lowY, y); highY = max(highY, y)
                    lowZ = min(lowZ, z); highZ = max(highZ, z)
                }
            }
        }
        let cropLow = Triple(max(0, lowX - sx / 2), max(0, lowY - sy / 2), max(0, lowZ - sz / 2))
        let cropHigh = Triple(min(nx - 1, highX + sx - 1 - sx / 2), min(ny - 1, highY + sy - 1 - sy / 2), min(nz - 1, highZ + sz - 1 - sz / 2))
        let crop = Triple(cropHigh.d - cropLow.d + 1, cropHigh.h - cropLow.h + 1, cropHigh.w - cropLow.w + 1)
        guard crop.product < Int(Int32.max) else { throw fail(source.image, "the masked region is too large (over 2^31 voxels)") }

        var data = [Float](repeating: 0, count: crop.product)
        var origins: [Int32] = []
        for x in 0..<crop.d {
            let vx = x + cropLow.d
            for y in 0..<crop.h {
                let vy = y + cropLow.h
                let sourceRow = (vx * ny + vy) * nz + cropLow.w
                let targetRow = (x * crop.h + y) * crop.w
                for z in 0..<crop.w { data[targetRow + z] = values[sourceRow + z] }
                // Origins whose patch fits in the volume and whose centre is in the mask.
                guard vx + sx <= nx, vy + sy <= ny else { continue }
                let centreRow = ((vx + sx / 2) * ny + (vy + sy / 2)) * nz
                for z in 0..<crop.w {
                    let vz = z + cropLow.w
                    if vz + sz <= nz, mask[centreRow + vz + sz / 2] { origins.append(Int32(targetRow + z)) }
                }
            }
        }
        guard !origins.isEmpty else {
            throw fail(source.image, "no \(sx)x\(sy)x\(sz) patch centred in the mask fits inside the \(nx)x\(ny)x\(nz) volume")
        }
        return PreparedScan(volumeShape: shape, cropOrigin: cropLow, cropShape: crop, data: data, origins: origins,
                            maskVoxels: maskVoxels, affine: image.affine)
    }

    /// Normalises `values` in place from statistics over the mask (see `IntensityNormalization`).
    static func normalise(_ values: inout [Float], mask: [Bool], options: PatchSamplingOptions) {
        switch options.normalization {
        case .none:
            break
        case .zscore:
            var (sum, sumSquares, n) = (0.0, 0.0, 0.0)
            for (v, inside) in zip(values, mask) where inside {
                sum += Double(v)
                n += 1
            }
            let mean = sum / n
            for (v, inside) in zip(values, mask) where inside { sumSquares += (Double(v) - mean) * (Double(v) - mean) }
            let std = (sumSquares / n).squareRoot()
            let scale = std > 0 ? 1 / std : 1
            for i in values.indices { values[i] = Float((Double(values[i]) - mean) * scale) }
        case .minmax:
            var inside = zip(values, mask).compactMap { $1 ? $0 : nil }
            let bounds = Percentiles.of(&inside, options.clipPercentiles)
            let (low, range) = (bounds[0], bounds[1] - bounds[0])
            let scale = range > 0 ? 1 / range : 1
            for i in values.indices { values[i] = Float(min(max((Double(values[i]) - low) * scale, 0), 1)) }
        }
        if options.zeroOutsideMask {
            for i in values.indices where !mask[i] { values[i] = 0 }
        }
    }

    /// Whether `origin` (crop-linear) is a valid patch origin.
    func isValidOrigin(_ origin: Int32) -> Bool {
        var (low, high) = (0, origins.count)
        while low < high {
            let middle = (low + high) / 2
            if origins[middle] < origin { low = middle + 1 } else { high = middle }
        }
        return low < origins.count && origins[low] == origin
    }
}
