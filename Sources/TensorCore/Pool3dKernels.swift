/// Pooling and upsampling kernels over `[N, C, D, H, W]` tensors (no padding, floor mode,
/// as `torch.nn.MaxPool3d(kernel, stride)`). Every (sample, channel) plane is independent, so
/// planes are split among workers.
public enum Pool3dKernels {
    /// Output extent of pooling `input` with `kernel` and `stride`, or an error if the kernel
    /// does not fit.
    public static func outputExtent(input: Triple, kernel: Triple, stride: Triple, operation: String) throws -> Triple {
        for (name, value) in [("kernel", kernel), ("stride", stride)] where min(value.d, value.h, value.w) < 1 {
            throw TensorError.invalidArgument(operation: operation, reason: "\(name) \(value) must be at least 1")
        }
        guard input.d >= kernel.d, input.h >= kernel.h, input.w >= kernel.w else {
            throw TensorError.invalidArgument(operation: operation, reason: "kernel \(kernel) larger than input \(input)")
        }
        return Triple((input.d - kernel.d) / stride.d + 1, (input.h - kernel.h) / stride.h + 1, (input.w - kernel.w) / stride.w + 1)
    }

    /// Max pooling.
    /// - Returns: the pooled tensor `[N, C, D', H', W']` and, per output element, the flat
    ///   index of its maximum within its input plane `D·H·W` (as PyTorch's `return_indices`).
    public static func maxPool(_ input: Tensor, kernel: Triple, stride: Triple, output: Triple) -> (Tensor, [Int32]) {
        let (n, c) = (input.shape[0], input.shape[1])
        let inDims = Triple(input.shape[2], input.shape[3], input.shape[4])
        let (inPlane, outPlane) = (inDims.product, output.product)
        var indices = [Int32](repeating: 0, count: n * c * outPlane)
        let pooled = Tensor(uninitializedShape: [n, c, output.d, output.h, output.w]) { out in
            let outBase = out.baseAddress!
            input.withUnsafeBufferPointer { x in
                indices.withUnsafeMutableBufferPointer { idx in
                    let idxBase = idx.baseAddress!
                    Engine.parallelRanges(n * c) { planes in
                        for plane in planes {
                            let src = x.baseAddress! + plane * inPlane
                            let dst = outBase + plane * outPlane
                            let arg = idxBase + plane * outPlane
                            if kernel == Triple(2) && stride == Triple(2) {
                                maxPool2(src, inDims, output, dst, arg)
                                continue
                            }
                            var o = 0
                            for od in 0..<output.d {
                                for oh in 0..<output.h {
                                    for ow in 0..<output.w {
                                        var best = -Float.infinity
                                        var bestIndex = ((od * stride.d) * inDims.h + oh * stride.h) * inDims.w + ow * stride.w
                                        for kd in 0..<kernel.d {
                                            for kh in 0..<kernel.h {
                                                let rowStart = ((od * stride.d + kd) * inDims.h + oh * stride.h + kh) * inDims.w + ow * stride.w
                                                for kw in 0..<kernel.w {
                                                    let value = src[rowStart + kw]
                                                    // A NaN wins and propagates, as in PyTorch.
                                                    if value > best || value.isNaN {
                                                        best = value
                                                        bestIndex = rowStart + kw
                                                    }
                                                }
                                            }
                                        }
                                        dst[o] = best
                                        arg[o] = Int32(bestIndex)
                                        o += 1
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (pooled, indices)
    }

    /// The common 2×2×2, stride-2 window with its eight reads unrolled (same visiting order
    /// and tie/NaN rule as the general loop).
    @inline(__always)
    static func maxPool2(_ src: UnsafePointer<Float>, _ inDims: Triple, _ output: Triple,
                         _ dst: UnsafeMutablePointer<Float>, _ arg: UnsafeMutablePointer<Int32>) {
        let (rowStride, sliceStride) = (inDims.w, inDims.h * inDims.w)
        var o = 0
        for od in 0..<output.d {
            for oh in 0..<output.h {
                let rowStart = (2 * od * inDims.h + 2 * oh) * inDims.w
                for ow in 0..<output.w {
                    var best = -Float.infinity
                    var bestIndex = rowStart + 2 * ow
                    @inline(__always) func visit(_ index: Int) {
                        let (a, b) = (src[index], src[index + 1])
                        if a > best || a.isNaN { best = a; bestIndex = index }
                        if b > best || b.isNaN { best = b; bestIndex = index + 1 }
                    }
                    let first = rowStart + 2 * ow
                    visit(first)
                    visit(first + rowStride)
                    visit(first + sliceStride)
                    visit(first + sliceStride + rowStride)
                    dst[o] = best
                    arg[o] = Int32(bestIndex)
                    o += 1
                }
            }
        }
    }

    /// Routes each pooled gradient to the input element that was the maximum.
    public static func maxPoolBackward(_ gradOutput: Tensor, indices: [Int32], inputShape: [Int]) -> Tensor {
        let planes = inputShape[0] * inputShape[1]
        let inPlane = inputShape[2...].reduce(1, *)
        let outPlane = gradOutput.count / max(1, planes)
        var gradInput = Tensor(zeros: inputShape)
        gradInput.withUnsafeMutableBufferPointer { gx in
            let gxBase = gx.baseAddress!
            gradOutput.withUnsafeBufferPointer { gy in
                indices.withUnsafeBufferPointer { idx in
                    Engine.parallelRanges(planes) { range in
                        for plane in range {
                            let dst = gxBase + plane * inPlane
                            for o in (plane * outPlane)..<((plane + 1) * outPlane) {
                                dst[Int(idx[o])] += gy[o]
                            }
                        }
                    }
                }
            }
        }
        return gradInput
    }

    /// Average pooling (every window lies inside the input).
    public static func avgPool(_ input: Tensor, kernel: Triple, stride: Triple, output: Triple) -> Tensor {
        let (n, c) = (input.shape[0], input.shape[1])
        let inDims = Triple(input.shape[2], input.shape[3], input.shape[4])
        let scale = 1 / Float(kernel.product)
        return Tensor(uninitializedShape: [n, c, output.d, output.h, output.w]) { out in
            let outBase = out.baseAddress!
            input.withUnsafeBufferPointer { x in
                Engine.parallelRanges(n * c) { planes in
                    for plane in planes {
                        let src = x.baseAddress! + plane * inDims.product
                        var o = plane * output.product
                        for od in 0..<output.d {
                            for oh in 0..<output.h {
                                for ow in 0..<output.w {
                                    var total: Float = 0
                                    for kd in 0..<kernel.d {
                                        for kh in 0..<kernel.h {
                                            let row = ((od * stride.d + kd) * inDims.h + oh * stride.h + kh) * inDims.w + ow * stride.w
                                            for kw in 0..<kernel.w { total += src[row + kw] }
                                        }
                                    }
                                    outBase[o] = total * scale
                                    o += 1
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Spreads each pooled gradient evenly over its window.
    public static func avgPoolBackward(_ gradOutput: Tensor, inputShape: [Int], kernel: Triple, stride: Triple) -> Tensor {
        let planes = inputShape[0] * inputShape[1]
        let inDims = Triple(inputShape[2], inputShape[3], inputShape[4])
        let output = Triple(gradOutput.shape[2], gradOutput.shape[3], gradOutput.shape[4])
        let scale = 1 / Float(kernel.product)
        var gradInput = Tensor(zeros: inputShape)
        gradInput.withUnsafeMutableBufferPointer { gx in
            let gxBase = gx.baseAddress!
            gradOutput.withUnsafeBufferPointer { gy in
                Engine.parallelRanges(planes) { range in
                    for plane in range {
                        let dst = gxBase + plane * inDims.product
                        var o = plane * output.product
                        for od in 0..<output.d {
                            for oh in 0..<output.h {
                                for ow in 0..<output.w {
                                    let share = gy[o] * scale
                                    o += 1
                                    for kd in 0..<kernel.d {
                                        for kh in 0..<kernel.h {
                                            let row = ((od * stride.d + kd) * inDims.h + oh * stride.h + kh) * inDims.w + ow * stride.w
                                            for kw in 0..<kernel.w { dst[row + kw] += share }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return gradInput
    }
}
