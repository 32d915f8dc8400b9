import Foundation
import TensorCore
import VolumeIO

/// Separable Gaussian smoothing of volumes, optionally decimating as it goes (an image
/// pyramid's levels), with the width given in millimetres.
public enum GaussianSmoothing {
    /// `volume` convolved with a Gaussian of standard deviation `sigma` mm along every world
    /// axis (converted to voxels per axis with the voxel sizes). The kernel is truncated at
    /// 3 σ and renormalised over the taps inside the grid, so the border is not darkened by
    /// the zeros beyond it. σ below 0.1 voxel on an axis leaves that axis as it is.
    public static func smooth(_ volume: Volume, sigma: Double) -> Volume {
        let sigmas = volume.voxelSizes.map { $0 > 0 ? sigma / $0 : 0 }
        let (values, shape) = smoothAndDecimate(volume.data.scalars, shape: volume.shape, sigmas: sigmas, factors: [1, 1, 1])
        // Same shape as the input volume.
        return try! Volume(data: Tensor(shape: shape, scalars: values), affine: volume.affine, header: volume.header)
    }

    /// Smooths `values` (shape `[X, Y, Z]`, Z fastest) with per-axis σ in voxels and keeps
    /// every `factors[a]`-th voxel along axis `a` (starting at 0). Each axis is filtered only
    /// at the positions kept, so a pyramid level costs a fraction of a full-size smoothing.
    /// - Returns: the values and their shape `⌈shape / factors⌉`.
    static func smoothAndDecimate(_ values: [Float], shape: [Int], sigmas: [Double], factors: [Int]) -> (values: [Float], shape: [Int]) {
        precondition(shape.count == 3 && sigmas.count == 3 && factors.count == 3 && values.count == shape.reduce(1, *))
        var current = values, currentShape = shape
        for axis in 0..<3 {
            let factor = max(1, factors[axis])
            let sigma = sigmas[axis]
            guard factor > 1 || sigma >= 0.1 else { continue }
            let taps = sigma >= 0.1 ? kernel(sigma) : [1]
            (current, currentShape) = filter(current, shape: currentShape, axis: axis, kernel: taps, factor: factor)
        }
        return (current, currentShape)
    }

    /// A normalised Gaussian truncated at 3 σ (odd length, centre in the middle).
    static func kernel(_ sigma: Double) -> [Float] {
        let radius = Int((3 * sigma).rounded(.up))
        let variance = sigma * sigma
        return (-radius...radius).map { offset -> Float in Float(exp(-0.5 * Double(offset * offset) / variance)) }
    }

    /// One axis: output position p takes Σ_t w_t · in[p·factor + t − r] over the taps inside
    /// the grid, divided by those taps' weight.
    private static func filter(_ input: [Float], shape: [Int], axis: Int, kernel: [Float], factor: Int) -> ([Float], [Int]) {
        let radius = kernel.count / 2
        let length = shape[axis]
        var outShape = shape
        outShape[axis] = (length + factor - 1) / factor
        // Along `axis`: `outer` blocks of `length` slices of `inner` contiguous values.
        let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *)
        let outLength = outShape[axis]
        var output = [Float](repeating: 0, count: outer * outLength * inner)
        // Per output position: the first and last tap inside the grid and 1 / their weight.
        let bounds = (0..<outLength).map { position -> (low: Int, high: Int, scale: Float) in
            let centre = position * factor
            let low = max(0, centre - radius), high = min(length - 1, centre + radius)
            let sum = (low...high).reduce(Float(0)) { $0 + kernel[$1 - centre + radius] }
            return (low, high, 1 / sum)
        }
        input.withUnsafeBufferPointer { source in
        output.withUnsafeMutableBufferPointer { target in
        kernel.withUnsafeBufferPointer { weights in
            let (source, target, weights) = (source, target, weights)
            if inner == 1 {
                // The contiguous axis: one line per work item.
                Engine.parallelRanges(outer, minimumPerWorker: 64) { lines in
                    for line in lines {
                        let row = source.baseAddress! + line * length, out = target.baseAddress! + line * outLength
                        for position in 0..<outLength {
                            let (low, high, scale) = bounds[position]
                            let offset = radius - position * factor
                            var sum: Float = 0
                            for j in low...high { sum += weights[j + offset] * row[j] }
                            out[position] = sum * scale
                        }
                    }
                }
            } else {
                // Slower axes: each work item (block, position) is a weighted sum of contiguous slices.
                Engine.parallelRanges(outer * outLength, minimumPerWorker: 4) { items in
                    for item in items {
                        let block = item / outLength, position = item % outLength
                        let (low, high, scale) = bounds[position]
                        let offset = radius - position * factor
                        let out = target.baseAddress! + (block * outLength + position) * inner
                        for j in low...high {
                            let w = weights[j + offset] * scale
                            let row = source.baseAddress! + (block * length + j) * inner
                            if j == low {
                                for q in 0..<inner { out[q] = w * row[q] }
                            } else {
                                for q in 0..<inner { out[q] += w * row[q] }
                            }
                        }
                    }
                }
            }
        }}}
        return (output, outShape)
    }
}
