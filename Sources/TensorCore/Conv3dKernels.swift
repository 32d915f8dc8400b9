/// 3-D convolution kernels over `[N, C, D, H, W]` tensors, as vol2col + sgemm.
///
/// Per sample, the input is unfolded into a column matrix `col[K, P]`, `K = C_in·kD·kH·kW`
/// rows by `P` output positions, and the convolution is one GEMM:
/// ```
/// out[C_out, P] = W[C_out, K] · col[K, P] (+ bias)
/// dW[C_out, K] += dOut[C_out, P] · col[K, P]ᵀ
/// dCol[K, P]    = W[C_out, K]ᵀ · dOut[C_out, P]   then col2vol scatters dCol into dInput
/// ```
/// The column matrix is never built whole: positions are processed in chunks sized so one
/// chunk's columns stay within `columnBudgetBytes` (inside a core's L2), each worker reusing
/// one buffer. Workers own fixed ranges of (sample, chunk) items, so results are
/// bit-reproducible for a given thread count.
public enum Conv3dKernels {
    /// Bytes of one worker's column buffer.
    public static let columnBudgetBytes = 512 * 1024

    /// Output positions per chunk for `geometry`.
    static func chunkLength(_ g: ConvGeometry) -> Int {
        min(g.output.product, max(64, columnBudgetBytes / (MemoryLayout<Float>.size * g.columnRows)))
    }

    // MARK: vol2col / col2vol

    /// Visits the output positions `start..<start+length` of one sample as runs along W:
    /// `body(od, oh, ow, offset, runLength)` where `offset` is the run's first column.
    @inline(__always)
    static func forEachRun(_ g: ConvGeometry, start: Int, length: Int, _ body: (Int, Int, Int, Int, Int) -> Void) {
        let ohw = g.output.h * g.output.w
        var od = start / ohw
        var oh = (start / g.output.w) % g.output.h
        var ow = start % g.output.w
        var offset = 0
        while offset < length {
            let run = min(length - offset, g.output.w - ow)
            body(od, oh, ow, offset, run)
            offset += run
            ow = 0
            oh += 1
            if oh == g.output.h { oh = 0; od += 1 }
        }
    }

    /// Fills `columns[K, length]` (row stride `length`) with the patches of output positions
    /// `start..<start+length` of one sample whose input channels start at `input`.
    public static func vol2col(
        _ g: ConvGeometry, input: UnsafePointer<Float>, start: Int, length: Int, columns: UnsafeMutablePointer<Float>
    ) {
        let (ih, iw) = (g.input.h, g.input.w)
        let inSpatial = g.input.product
        var row = 0
        for c in 0..<g.inChannels {
            let channel = input + c * inSpatial
            for kd in 0..<g.kernel.d {
                for kh in 0..<g.kernel.h {
                    for kw in 0..<g.kernel.w {
                        let destination = columns + row * length
                        forEachRun(g, start: start, length: length) { od, oh, ow, offset, run in
                            let dst = destination + offset
                            let z = od * g.stride.d - g.padding.d + kd
                            let y = oh * g.stride.h - g.padding.h + kh
                            guard z >= 0, z < g.input.d, y >= 0, y < ih else {
                                dst.update(repeating: 0, count: run)
                                return
                            }
                            let source = channel + (z * ih + y) * iw
                            if g.stride.w == 1 {
                                let first = ow - g.padding.w + kw
                                let lo = min(run, max(0, -first))
                                let hi = max(lo, min(run, iw - first))
                                dst.update(repeating: 0, count: lo)
                                if hi > lo { (dst + lo).update(from: source + first + lo, count: hi - lo) }
                                (dst + hi).update(repeating: 0, count: run - hi)
                            } else {
                                for t in 0..<run {
                                    let x = (ow + t) * g.stride.w - g.padding.w + kw
                                    dst[t] = (x >= 0 && x < iw) ? source[x] : 0
                                }
                            }
                        }
                        row += 1
                    }
                }
            }
        }
    }

    /// Adds `columns[K, length]` back into one sample's input-shaped gradient: the adjoint
    /// of `vol2col`.
    public static func col2vol(
        _ g: ConvGeometry, columns: UnsafePointer<Float>, start: Int, length: Int, gradInput: UnsafeMutablePointer<Float>
    ) {
        let (ih, iw) = (g.input.h, g.input.w)
        let inSpatial = g.input.product
        var row = 0
        for c in 0..<g.inChannels {
            let channel = gradInput + c * inSpatial
            for kd in 0..<g.kernel.d {
                for kh in 0..<g.kernel.h {
                    for kw in 0..<g.kernel.w {
                        let sourceRow = columns + row * length
                        forEachRun(g, start: start, length: length) { od, oh, ow, offset, run in
                            let src = sourceRow + offset
                            let z = od * g.stride.d - g.padding.d + kd
                            let y = oh * g.stride.h - g.padding.h + kh
                            guard z >= 0, z < g.input.d, y >= 0, y < ih else { return }
                            let target = channel + (z * ih + y) * iw
                            if g.stride.w == 1 {
                                let first = ow - g.padding.w + kw
                                let lo = min(run, max(0, -first))
                                let hi = max(lo, min(run, iw - first))
                                let shifted = target + first
                                for t in lo..<hi { shifted[t] += src[t] }
                            } else {
                                for t in 0..<run {
                                    let x = (ow + t) * g.stride.w - g.padding.w + kw
                                    if x >= 0 && x < iw { target[x] += src[t] }
                                }
                            }
                        }
                        row += 1
                    }
                }
            }
        }
    }

    // MARK: Convolution passes

    /// Forward convolution.
    /// - Parameters:
    ///   - input: `[N, C_in, D, H, W]` matching `g`.
    ///   - weight: `[C_out, C_in, kD, kH, kW]`.
    ///   - bias: `[C_out]` or nil.
    /// - Returns: `[N, C_out, D_out, H_out, W_out]`.
    public static func forward(_ g: ConvGeometry, input: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        let n = input.shape[0]
        precondition(input.shape == g.inputShape(n), "conv3d forward: input \(input.shape) vs \(g.inputShape(n))")
        precondition(weight.shape == g.weightShape, "conv3d forward: weight \(weight.shape) vs \(g.weightShape)")
        let outSpatial = g.output.product
        let inSpatial = g.input.product
        let k = g.columnRows
        let chunk = chunkLength(g)
        let chunksPerSample = (outSpatial + chunk - 1) / chunk
        return Tensor(uninitializedShape: g.outputShape(n)) { out in
            let outBase = out.baseAddress!
            input.withUnsafeBufferPointer { x in
                weight.withUnsafeBufferPointer { w in
                    Engine.parallelRanges(n * chunksPerSample) { items in
                        let columns = UnsafeMutablePointer<Float>.allocate(capacity: k * chunk)
                        defer { columns.deallocate() }
                        for item in items {
                            let sample = item / chunksPerSample
                            let start = (item % chunksPerSample) * chunk
                            let length = min(chunk, outSpatial - start)
                            vol2col(g, input: x.baseAddress! + sample * g.inChannels * inSpatial,
                                    start: start, length: length, columns: columns)
                            let c = outBase + sample * g.outChannels * outSpatial + start
                            BLAS.sgemm(m: g.outChannels, n: length, k: k, a: w.baseAddress!, lda: k,
                                       b: columns, ldb: length, c: c, ldc: outSpatial)
                            if let bias {
                                bias.withUnsafeBufferPointer { b in
                                    for o in 0..<g.outChannels {
                                        let row = c + o * outSpatial
                                        let value = b[o]
                                        for j in 0..<length { row[j] += value }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Gradient with respect to the input (also the forward pass of a transposed convolution).
    /// - Parameters:
    ///   - gradOutput: `[N, C_out, D_out, H_out, W_out]`.
    ///   - weight: `[C_out, C_in, kD, kH, kW]`.
    /// - Returns: `[N, C_in, D, H, W]`.
    public static func backwardData(_ g: ConvGeometry, gradOutput: Tensor, weight: Tensor) -> Tensor {
        let n = gradOutput.shape[0]
        precondition(gradOutput.shape == g.outputShape(n), "conv3d backwardData: \(gradOutput.shape) vs \(g.outputShape(n))")
        precondition(weight.shape == g.weightShape, "conv3d backwardData: weight \(weight.shape) vs \(g.weightShape)")
        let outSpatial = g.output.product
        let inSpatial = g.input.product
        let k = g.columnRows
        let chunk = chunkLength(g)
        var gradInput = Tensor(zeros: g.inputShape(n))
        gradInput.withUnsafeMutableBufferPointer { gx in
            let gxBase = gx.baseAddress!
            gradOutput.withUnsafeBufferPointer { gy in
                weight.withUnsafeBufferPointer { w in
                    // Workers own whole samples: col2vol scatters, so two workers must never
                    // write the same sample.
                    Engine.parallelRanges(n) { samples in
                        let columns = UnsafeMutablePointer<Float>.allocate(capacity: k * chunk)
                        defer { columns.deallocate() }
                        for sample in samples {
                            var start = 0
                            while start < outSpatial {
                                let length = min(chunk, outSpatial - start)
                                BLAS.sgemm(transposeA: true, m: k, n: length, k: g.outChannels,
                                           a: w.baseAddress!, lda: k,
                                           b: gy.baseAddress! + sample * g.outChannels * outSpatial + start, ldb: outSpatial,
                                           c: columns, ldc: length)
                                col2vol(g, columns: columns, start: start, length: length,
                                        gradInput: gxBase + sample * g.inChannels * inSpatial)
                                start += length
                            }
                        }
                    }
                }
            }
        }
        return gradInput
    }

    /// Gradients with respect to the weight and the bias, summed over the batch.
    /// - Returns: `weight` `[C_out, C_in, kD, kH, kW]` and `bias` `[C_out]`.
    public static func backwardWeights(_ g: ConvGeometry, input: Tensor, gradOutput: Tensor) -> (weight: Tensor, bias: Tensor) {
        let grads = backward(g, input: input, gradOutput: gradOutput, weight: nil, needsInputGradient: false)
        return (grads.weight, grads.bias)
    }

    /// The whole backward pass of a convolution in one sweep: each chunk's columns are built
    /// once and serve the weight gradient, then the same buffer receives the column
    /// gradient that is scattered into the input gradient.
    /// - Parameters:
    ///   - input: `[N, C_in, D, H, W]` of the forward pass.
    ///   - gradOutput: `[N, C_out, D_out, H_out, W_out]`.
    ///   - weight: `[C_out, C_in, kD, kH, kW]`; needed only when `needsInputGradient`.
    /// - Returns: `input` gradient (nil unless requested), `weight` and `bias` gradients
    ///   summed over the batch.
    public static func backward(
        _ g: ConvGeometry, input: Tensor, gradOutput: Tensor, weight: Tensor?, needsInputGradient: Bool
    ) -> (input: Tensor?, weight: Tensor, bias: Tensor) {
        let n = input.shape[0]
        precondition(input.shape == g.inputShape(n), "conv3d backward: input \(input.shape) vs \(g.inputShape(n))")
        precondition(gradOutput.shape == g.outputShape(n), "conv3d backward: \(gradOutput.shape) vs \(g.outputShape(n))")
        precondition(!needsInputGradient || weight?.shape == g.weightShape, "conv3d backward: weight needed with shape \(g.weightShape)")
        let outSpatial = g.output.product
        let inSpatial = g.input.product
        let k = g.columnRows
        let chunk = chunkLength(g)
        let chunksPerSample = (outSpatial + chunk - 1) / chunk
        // The input gradient is scattered, so then workers own whole samples; otherwise
        // they split the (sample, chunk) items, which balances small batches better.
        let items = needsInputGradient ? n : n * chunksPerSample
        let workers = min(Engine.threads, items)
        let weightCount = g.outChannels * k
        var gradInput = needsInputGradient ? Tensor(zeros: g.inputShape(n)) : nil
        // One accumulator per worker, [dW | db], summed in worker order afterwards so the
        // result is the same for a given thread count.
        var partials = [Float](repeating: 0, count: workers * (weightCount + g.outChannels))
        partials.withUnsafeMutableBufferPointer { acc in
            let accBase = acc.baseAddress!
            input.withUnsafeBufferPointer { x in
                gradOutput.withUnsafeBufferPointer { gy in
                  gradInput.withOptionalMutableBase { gxBase in
                   weight.withOptionalBase { w in
                    Engine.parallelWorkers(workers) { worker in
                        let dW = accBase + worker * (weightCount + g.outChannels)
                        let dB = dW + weightCount
                        let columns = UnsafeMutablePointer<Float>.allocate(capacity: k * chunk)
                        defer { columns.deallocate() }
                        func process(sample: Int, start: Int) {
                            let length = min(chunk, outSpatial - start)
                            vol2col(g, input: x.baseAddress! + sample * g.inChannels * inSpatial,
                                    start: start, length: length, columns: columns)
                            let dy = gy.baseAddress! + sample * g.outChannels * outSpatial + start
                            BLAS.sgemm(transposeB: true, m: g.outChannels, n: k, k: length,
                                       a: dy, lda: outSpatial, b: columns, ldb: length, beta: 1, c: dW, ldc: k)
                            for o in 0..<g.outChannels {
                                let row = dy + o * outSpatial
                                var total: Float = 0
                                for j in 0..<length { total += row[j] }
                                dB[o] += total
                            }
                            if let gxBase, let w {
                                BLAS.sgemm(transposeA: true, m: k, n: length, k: g.outChannels, a: w, lda: k,
                                           b: dy, ldb: outSpatial, c: columns, ldc: length)
                                col2vol(g, columns: columns, start: start, length: length,
                                        gradInput: gxBase + sample * g.inChannels * inSpatial)
                            }
                        }
                        for item in (items * worker / workers)..<(items * (worker + 1) / workers) {
                            if needsInputGradient {
                                for c in 0..<chunksPerSample { process(sample: item, start: c * chunk) }
                            } else {
                                process(sample: item / chunksPerSample, start: (item % chunksPerSample) * chunk)
                            }
                        }
                    }
                   }
                  }
                }
            }
        }
        var weightGrad = [Float](repeating: 0, count: weightCount)
        var biasGrad = [Float](repeating: 0, count: g.outChannels)
        for worker in 0..<workers {
            let base = worker * (weightCount + g.outChannels)
            for i in 0..<weightCount { weightGrad[i] += partials[base + i] }
            for o in 0..<g.outChannels { biasGrad[o] += partials[base + weightCount + o] }
        }
        return (gradInput, Tensor(unchecked: g.weightShape, weightGrad), Tensor(unchecked: [g.outChannels], biasGrad))
    }

    // MARK: Reference

    /// Direct seven-loop convolution, kept as the reference the fast path is tested against.
    public static func forwardNaive(_ g: ConvGeometry, input: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        let n = input.shape[0]
        var out = Tensor(zeros: g.outputShape(n))
        for s in 0..<n {
            for o in 0..<g.outChannels {
                for od in 0..<g.output.d {
                    for oh in 0..<g.output.h {
                        for ow in 0..<g.output.w {
                            var total = Double(bias?.scalars[o] ?? 0)
                            for c in 0..<g.inChannels {
                                for kd in 0..<g.kernel.d {
                                    for kh in 0..<g.kernel.h {
                                        for kw in 0..<g.kernel.w {
                                            let z = od * g.stride.d - g.padding.d + kd
                                            let y = oh * g.stride.h - g.padding.h + kh
                                            let x = ow * g.stride.w - g.padding.w + kw
                                            guard z >= 0, z < g.input.d, y >= 0, y < g.input.h, x >= 0, x < g.input.w else { continue }
                                            total += Double(input[s, c, z, y, x]) * Double(weight[o, c, kd, kh, kw])
                                        }
                                    }
                                }
                            }
                            out[s, o, od, oh, ow] = Float(total)
                        }
                    }
                }
            }
        }
        return out
    }
}

extension Optional where Wrapped == Tensor {
    /// The storage's base address (nil for nil) for the duration of `body`.
    mutating func withOptionalMutableBase<R>(_ body: (UnsafeMutablePointer<Float>?) -> R) -> R {
        guard case var .some(tensor) = self else { return body(nil) }
        self = nil  // keep the storage uniquely referenced, so writing does not copy it
        defer { self = tensor }
        return tensor.withUnsafeMutableBufferPointer { body($0.baseAddress) }
    }

    func withOptionalBase<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        guard let tensor = self else { return body(nil) }
        return tensor.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
