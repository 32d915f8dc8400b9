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
        // Every index is written below, so the buffer is not zero-filled first.
        var indices = [Int32](unsafeUninitializedCapacity: n * c * outPlane) { _, initialized in initialized = n * c * outPlane }
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
                                                for kw in 0..<kernel.w { consider(src, rowStart + kw, &best, &bestIndex) }
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

    /// Takes `src[index]` as the running maximum when it is larger or NaN (PyTorch's rule),
    /// as selects rather than a branch.
    @inline(__always)
    static func consider(_ src: UnsafePointer<Float>, _ index: Int, _ best: inout Float, _ bestIndex: inout Int) {
        let value = src[index]
        let wins = value > best || value.isNaN
        best = wins ? value : best
        bestIndex = wins ? index : bestIndex
    }

    /// The common 2×2×2, stride-2 window, eight outputs at a time: each of the window's four
    /// input rows is loaded as 16 floats and split into even and odd elements, and the running
    /// maximum and the winner's position (0–7) are kept with vector selects. On real data which
    /// element wins is unpredictable, and the scalar loop's mispredicted branches cost several
    /// times the arithmetic (the benchmark's first pooling layer went from ~50 ms to ~10 ms).
    /// Candidates are visited in the general loop's order, with the same tie and NaN rule.
    static func maxPool2(_ src: UnsafePointer<Float>, _ inDims: Triple, _ output: Triple,
                         _ dst: UnsafeMutablePointer<Float>, _ arg: UnsafeMutablePointer<Int32>) {
        let (rowStride, sliceStride) = (inDims.w, inDims.h * inDims.w)
        let offsets = (0, 1, rowStride, rowStride + 1, sliceStride, sliceStride + 1, sliceStride + rowStride, sliceStride + rowStride + 1)
        let offsetTable = [offsets.0, offsets.1, offsets.2, offsets.3, offsets.4, offsets.5, offsets.6, offsets.7]
        let laneOffsets = SIMD8<Int32>(0, 2, 4, 6, 8, 10, 12, 14)
        let (rowStride32, sliceStride32) = (SIMD8<Int32>(repeating: Int32(truncatingIfNeeded: rowStride)),
                                            SIMD8<Int32>(repeating: Int32(truncatingIfNeeded: sliceStride)))
        let raw = UnsafeRawPointer(src)
        var o = 0
        for od in 0..<output.d {
            for oh in 0..<output.h {
                let rowStart = (2 * od * inDims.h + 2 * oh) * inDims.w
                var ow = 0
                while ow + 8 <= output.w {
                    let first = rowStart + 2 * ow
                    let row0 = raw.loadUnaligned(fromByteOffset: (first + offsets.0) * 4, as: SIMD16<Float>.self)
                    var best = row0.evenHalf
                    var code = SIMD8<Int32>()
                    @inline(__always) func visit(_ candidate: SIMD8<Float>, _ k: Int32) {
                        let wins = (candidate .> best) .| (candidate .!= candidate)
                        best.replace(with: candidate, where: wins)
                        code.replace(with: k, where: wins)
                    }
                    visit(row0.oddHalf, 1)
                    let row1 = raw.loadUnaligned(fromByteOffset: (first + offsets.2) * 4, as: SIMD16<Float>.self)
                    visit(row1.evenHalf, 2)
                    visit(row1.oddHalf, 3)
                    let row2 = raw.loadUnaligned(fromByteOffset: (first + offsets.4) * 4, as: SIMD16<Float>.self)
                    visit(row2.evenHalf, 4)
                    visit(row2.oddHalf, 5)
                    let row3 = raw.loadUnaligned(fromByteOffset: (first + offsets.6) * 4, as: SIMD16<Float>.self)
                    visit(row3.evenHalf, 6)
                    visit(row3.oddHalf, 7)
                    UnsafeMutableRawPointer(dst + o).storeBytes(of: best, as: SIMD8<Float>.self)
                    // Winner position from its code (bit 0: +1 along W, bit 1: next row, bit 2:
                    // next slice), computed for all eight lanes at once.
                    let position = SIMD8<Int32>(repeating: Int32(truncatingIfNeeded: first)) &+ laneOffsets
                        &+ (code & 1) &+ ((code &>> 1) & 1) &* rowStride32 &+ (code &>> 2) &* sliceStride32
                    UnsafeMutableRawPointer(arg + o).storeBytes(of: position, as: SIMD8<Int32>.self)
                    o += 8
                    ow += 8
                }
                for ow in ow..<output.w {
                    let first = rowStart + 2 * ow
                    var best = src[first]
                    var bestIndex = first
                    for offset in offsetTable.dropFirst() { consider(src, first + offset, &best, &bestIndex) }
                    dst[o] = best
                    arg[o] = Int32(truncatingIfNeeded: bestIndex)
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
