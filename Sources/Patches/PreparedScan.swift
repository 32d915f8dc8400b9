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
        let scan = try NormalisedScan.load(source, options: options)
        let (shape, mask, values) = (scan.shape, scan.mask, scan.values)
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
        guard crop.product < Int(Int32.max) else {
            throw PatchError.badScan(path: source.image.path, line: source.line, reason: "the masked region is too large (over 2^31 voxels)")
        }

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
            throw PatchError.badScan(path: source.image.path, line: source.line, reason: "no \(sx)x\(sy)x\(sz) patch centred in the mask fits inside the \(nx)x\(ny)x\(nz) volume")
        }
        return PreparedScan(volumeShape: shape, cropOrigin: cropLow, cropShape: crop, data: data, origins: origins,
                            maskVoxels: scan.maskVoxels, affine: scan.affine)
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
