/// Upsampling of `[N, C, D, H, W]` tensors by integer factors, with PyTorch's
/// `nn.Upsample(scale_factor:, mode:)` conventions (`align_corners=False` for trilinear).
public enum Upsample3dKernels {
    public enum Mode: String, Sendable, Codable { case nearest, trilinear }

    /// One output coordinate's two source taps along an axis.
    struct Taps { var low: Int; var high: Int; var highWeight: Float }

    /// Source taps for every output index along one axis of extent `input` upsampled `factor`×.
    static func taps(input: Int, factor: Int, mode: Mode) -> [Taps] {
        (0..<(input * factor)).map { out in
            switch mode {
            case .nearest:
                return Taps(low: out / factor, high: out / factor, highWeight: 0)
            case .trilinear:
                // align_corners=False: source = (out + 0.5) / factor - 0.5, clamped at 0.
                let source = max(0, (Float(out) + 0.5) / Float(factor) - 0.5)
                let low = min(Int(source), input - 1)
                let high = min(low + 1, input - 1)
                return Taps(low: low, high: high, highWeight: source - Float(low))
            }
        }
    }

    /// Forward (`gradient == false`) or adjoint (`gradient == true`) of upsampling, which share
    /// the same weights: the adjoint scatters each output element back to its eight sources.
    static func apply(_ x: Tensor, inputDims: Triple, factor: Triple, mode: Mode, adjoint: Bool) -> Tensor {
        let planes = x.shape[0] * x.shape[1]
        let outDims = Triple(inputDims.d * factor.d, inputDims.h * factor.h, inputDims.w * factor.w)
        let (td, th, tw) = (taps(input: inputDims.d, factor: factor.d, mode: mode),
                            taps(input: inputDims.h, factor: factor.h, mode: mode),
                            taps(input: inputDims.w, factor: factor.w, mode: mode))
        let resultDims = adjoint ? inputDims : outDims
        var result = Tensor(zeros: [x.shape[0], x.shape[1], resultDims.d, resultDims.h, resultDims.w])
        result.withUnsafeMutableBufferPointer { r in
            let rBase = r.baseAddress!
            x.withUnsafeBufferPointer { xp in
                Engine.parallelRanges(planes) { range in
                    for plane in range {
                        let small = adjoint ? rBase + plane * inputDims.product : nil
                        let large = adjoint ? nil : rBase + plane * outDims.product
                        let source = xp.baseAddress! + plane * (adjoint ? outDims.product : inputDims.product)
                        var o = 0
                        for d in td {
                            for h in th {
                                for w in tw {
                                    // The (up to) eight source corners and their trilinear weights.
                                    var total: Float = 0
                                    let g = small == nil ? 0 : source[o]
                                    for a in 0..<2 {
                                        let wd = a == 0 ? 1 - d.highWeight : d.highWeight
                                        if wd == 0 { continue }
                                        for b in 0..<2 {
                                            let wh = b == 0 ? 1 - h.highWeight : h.highWeight
                                            if wh == 0 { continue }
                                            for c in 0..<2 {
                                                let ww = c == 0 ? 1 - w.highWeight : w.highWeight
                                                if ww == 0 { continue }
                                                let index = ((a == 0 ? d.low : d.high) * inputDims.h + (b == 0 ? h.low : h.high)) * inputDims.w
                                                    + (c == 0 ? w.low : w.high)
                                                if let small { small[index] += wd * wh * ww * g } else { total += wd * wh * ww * source[index] }
                                            }
                                        }
                                    }
                                    if let large { large[o] = total }
                                    o += 1
                                }
                            }
                        }
                    }
                }
            }
        }
        return result
    }

    /// Upsamples `[N, C, D, H, W]` to `[N, C, D·fd, H·fh, W·fw]`.
    public static func forward(_ input: Tensor, factor: Triple, mode: Mode) -> Tensor {
        apply(input, inputDims: Triple(input.shape[2], input.shape[3], input.shape[4]), factor: factor, mode: mode, adjoint: false)
    }

    /// Gradient of `forward` with respect to its input.
    public static func backward(_ gradOutput: Tensor, inputShape: [Int], factor: Triple, mode: Mode) -> Tensor {
        apply(gradOutput, inputDims: Triple(inputShape[2], inputShape[3], inputShape[4]), factor: factor, mode: mode, adjoint: true)
    }
}
