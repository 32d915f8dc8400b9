/// 3-D convolution kernels over `[N, C, D, H, W]` tensors, as "vol2row" + sgemm.
///
/// Each sample is first copied into a zero-padded, channels-last buffer
/// `[D + 2pD, H + 2pH, W + 2pW, C_in]`. Every output position's receptive field is then a few
/// contiguous runs of that buffer (for stride 1 along W, one run of `kW·C_in` floats per
/// `(kd, kh)`), copied into one row of a position-major matrix `rows[P, K]`,
/// `K = kD·kH·kW·C_in`, and each pass is one GEMM per chunk of positions:
/// ```
/// out[C_out, P] = W'[C_out, K] · rows[P, K]ᵀ (+ bias)        W' = W permuted to [C_out, kD, kH, kW, C_in]
/// dW'[C_out, K] += dOut[C_out, P] · rows[P, K]
/// dRows[P, K]    = dOut[C_out, P]ᵀ · W'[C_out, K]              then scattered back into the padded buffer
/// ```
/// `dOut` and `out` stay in the tensor's own `[C_out, P]` layout, so only the input side is
/// ever transposed. Compared with the NCDHW vol2col (one short run per output row per
/// `(c, kd, kh, kw)`), the row copies are 27× fewer and 48-float long for the encoder's second
/// layer, which made its forward pass about 1.7× faster on the benchmark.
///
/// The row matrix is never built whole: positions go in chunks of at most `rowBudgetBytes`
/// (inside a core's L2), each worker reusing its buffers. Workers own fixed samples or fixed
/// chunks, and per-worker partial sums are combined in worker order, so results are
/// bit-reproducible for a given thread count.
public enum Conv3dKernels {
    /// Bytes of one worker's row buffer.
    public static let rowBudgetBytes = 512 * 1024

    /// Output positions per chunk for `geometry`.
    static func chunkLength(_ g: ConvGeometry) -> Int {
        min(g.output.product, max(64, rowBudgetBytes / (MemoryLayout<Float>.size * g.columnRows)))
    }

    /// Extent of the padded channels-last copy of one sample: `(D + 2pD, H + 2pH, W + 2pW)`.
    static func paddedExtent(_ g: ConvGeometry) -> Triple {
        Triple(g.input.d + 2 * g.padding.d, g.input.h + 2 * g.padding.h, g.input.w + 2 * g.padding.w)
    }

    // MARK: Layout changes

    /// Copies one NCDHW sample into the zero-padded channels-last buffer `padded`.
    static func pad(_ g: ConvGeometry, sample x: UnsafePointer<Float>, into padded: UnsafeMutablePointer<Float>) {
        let p = paddedExtent(g)
        let c = g.inChannels
        let inSpatial = g.input.product
        padded.update(repeating: 0, count: p.product * c)
        for z in 0..<g.input.d {
            for y in 0..<g.input.h {
                let source = x + (z * g.input.h + y) * g.input.w
                let target = padded + (((z + g.padding.d) * p.h + y + g.padding.h) * p.w + g.padding.w) * c
                if c == 1 {
                    target.update(from: source, count: g.input.w)
                } else {
                    for w in 0..<g.input.w {
                        for channel in 0..<c { target[w * c + channel] = source[channel * inSpatial + w] }
                    }
                }
            }
        }
    }

    /// Adds the interior of a padded channels-last gradient into one NCDHW sample (the
    /// adjoint of `pad`).
    static func unpad(_ g: ConvGeometry, padded: UnsafePointer<Float>, into x: UnsafeMutablePointer<Float>) {
        let p = paddedExtent(g)
        let c = g.inChannels
        let inSpatial = g.input.product
        for z in 0..<g.input.d {
            for y in 0..<g.input.h {
                let target = x + (z * g.input.h + y) * g.input.w
                let source = padded + (((z + g.padding.d) * p.h + y + g.padding.h) * p.w + g.padding.w) * c
                for w in 0..<g.input.w {
                    for channel in 0..<c { target[channel * inSpatial + w] += source[w * c + channel] }
                }
            }
        }
    }

    /// Weight `[C_out, C_in, kD, kH, kW]` reordered to the row layout `[C_out, kD, kH, kW, C_in]`.
    static func rowOrderedWeight(_ g: ConvGeometry, _ w: UnsafePointer<Float>) -> [Float] {
        let (c, taps) = (g.inChannels, g.kernel.product)
        return [Float](unsafeUninitializedCapacity: g.outChannels * taps * c) { out, initialized in
            for o in 0..<g.outChannels {
                for channel in 0..<c {
                    for t in 0..<taps { out[(o * taps + t) * c + channel] = w[(o * c + channel) * taps + t] }
                }
            }
            initialized = g.outChannels * taps * c
        }
    }

    /// The inverse reordering, for weight gradients.
    static func tensorOrderedWeight(_ g: ConvGeometry, _ rowOrdered: UnsafePointer<Float>) -> Tensor {
        let (c, taps) = (g.inChannels, g.kernel.product)
        return Tensor(uninitializedShape: g.weightShape) { out in
            for o in 0..<g.outChannels {
                for channel in 0..<c {
                    for t in 0..<taps { out[(o * c + channel) * taps + t] = rowOrdered[(o * taps + t) * c + channel] }
                }
            }
        }
    }

    // MARK: vol2row / row2vol

    /// Visits output positions `start..<start+length` of one sample: `body(j, base)` where `j`
    /// counts from 0 and `base` is the padded-buffer offset (in floats) of the position's
    /// receptive-field corner.
    @inline(__always)
    static func forEachPosition(_ g: ConvGeometry, start: Int, length: Int, _ body: (Int, Int) -> Void) {
        let p = paddedExtent(g)
        let c = g.inChannels
        var od = start / (g.output.h * g.output.w)
        var oh = (start / g.output.w) % g.output.h
        var ow = start % g.output.w
        for j in 0..<length {
            body(j, ((od * g.stride.d * p.h + oh * g.stride.h) * p.w + ow * g.stride.w) * c)
            ow += 1
            if ow == g.output.w {
                ow = 0
                oh += 1
                if oh == g.output.h { oh = 0; od += 1 }
            }
        }
    }

    /// Fills `rows[length, K]` with the receptive fields of positions `start..<start+length`.
    static func vol2row(_ g: ConvGeometry, padded: UnsafePointer<Float>, start: Int, length: Int, rows: UnsafeMutablePointer<Float>) {
        let p = paddedExtent(g)
        let c = g.inChannels
        let k = g.columnRows
        let run = g.kernel.w * c
        // One contiguous run of kW·C floats per (kd, kh): (w..w+kW) × all channels. Short
        // runs (few input channels) are copied inline: a memcpy call per 12 bytes made the
        // first encoder layer (C_in = 1) several times slower.
        let inline = run <= 16
        forEachPosition(g, start: start, length: length) { j, base in
            var target = rows + j * k
            for kd in 0..<g.kernel.d {
                for kh in 0..<g.kernel.h {
                    let source = padded + base + (kd * p.h + kh) * p.w * c
                    if inline {
                        for t in 0..<run { target[t] = source[t] }
                    } else {
                        target.update(from: source, count: run)
                    }
                    target += run
                }
            }
        }
    }

    /// Adds `rows[length, K]` back into the padded buffer (the adjoint of `vol2row`).
    static func row2vol(_ g: ConvGeometry, rows: UnsafePointer<Float>, start: Int, length: Int, padded: UnsafeMutablePointer<Float>) {
        let p = paddedExtent(g)
        let c = g.inChannels
        let k = g.columnRows
        let run = g.kernel.w * c
        forEachPosition(g, start: start, length: length) { j, base in
            var source = rows + j * k
            for kd in 0..<g.kernel.d {
                for kh in 0..<g.kernel.h {
                    let target = padded + base + (kd * p.h + kh) * p.w * c
                    for t in 0..<run { target[t] += source[t] }
                    source += run
                }
            }
        }
    }

    // MARK: Convolution passes

    /// Per-worker scratch: a padded sample and a row chunk.
    struct Scratch {
        let padded: UnsafeMutablePointer<Float>
        let rows: UnsafeMutablePointer<Float>

        init(padded: UnsafeMutablePointer<Float>, rows: UnsafeMutablePointer<Float>) {
            (self.padded, self.rows) = (padded, rows)
        }

        init(_ g: ConvGeometry) {
            padded = .allocate(capacity: Conv3dKernels.paddedExtent(g).product * g.inChannels)
            rows = .allocate(capacity: g.columnRows * Conv3dKernels.chunkLength(g))
        }

        func deallocate() {
            padded.deallocate()
            rows.deallocate()
        }
    }

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
        let (outSpatial, inSpatial, k) = (g.output.product, g.input.product, g.columnRows)
        let chunk = chunkLength(g)
        let chunks = (outSpatial + chunk - 1) / chunk
        let w = weight.withUnsafeBufferPointer { rowOrderedWeight(g, $0.baseAddress!) }
        return Tensor(uninitializedShape: g.outputShape(n)) { out in
            let outBase = out.baseAddress!
            input.withUnsafeBufferPointer { xb in
                w.withUnsafeBufferPointer { wb in
                    func compute(_ sample: Int, _ chunkIndex: Int, _ scratch: Scratch) {
                        let start = chunkIndex * chunk
                        let length = min(chunk, outSpatial - start)
                        vol2row(g, padded: scratch.padded, start: start, length: length, rows: scratch.rows)
                        let c = outBase + sample * g.outChannels * outSpatial + start
                        if let bias {
                            bias.withUnsafeBufferPointer { b in
                                for o in 0..<g.outChannels { (c + o * outSpatial).update(repeating: b[o], count: length) }
                            }
                        }
                        BLAS.sgemm(transposeB: true, m: g.outChannels, n: length, k: k, a: wb.baseAddress!, lda: k,
                                   b: scratch.rows, ldb: k, beta: bias == nil ? 0 : 1, c: c, ldc: outSpatial)
                    }
                    forEachSample(g, samples: n, chunks: chunks, input: xb.baseAddress!, inSpatial: inSpatial, compute)
                }
            }
        }
    }

    /// Runs `compute(sample, chunk, scratch)` over every chunk of every sample, with the
    /// sample already padded into `scratch.padded`. Workers own whole samples when there are
    /// enough of them; a single large sample (a whole volume) is padded once into a shared
    /// buffer and its chunks are split among the workers instead.
    static func forEachSample(
        _ g: ConvGeometry, samples n: Int, chunks: Int, input: UnsafePointer<Float>, inSpatial: Int,
        _ compute: (Int, Int, Scratch) -> Void
    ) {
        if n >= Engine.threads || chunks == 1 {
            Engine.parallelRanges(n) { range in
                let scratch = Scratch(g)
                defer { scratch.deallocate() }
                for sample in range {
                    pad(g, sample: input + sample * g.inChannels * inSpatial, into: scratch.padded)
                    for chunkIndex in 0..<chunks { compute(sample, chunkIndex, scratch) }
                }
            }
        } else {
            let shared = Scratch(g)
            defer { shared.deallocate() }
            for sample in 0..<n {
                pad(g, sample: input + sample * g.inChannels * inSpatial, into: shared.padded)
                Engine.parallelRanges(chunks) { range in
                    let rows = UnsafeMutablePointer<Float>.allocate(capacity: g.columnRows * chunkLength(g))
                    defer { rows.deallocate() }
                    for chunkIndex in range { compute(sample, chunkIndex, Scratch(padded: shared.padded, rows: rows)) }
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
        return backward(g, input: nil, gradOutput: gradOutput, weight: weight, needsInputGradient: true).input!
    }

    /// Gradients with respect to the weight and the bias, summed over the batch.
    /// - Returns: `weight` `[C_out, C_in, kD, kH, kW]` and `bias` `[C_out]`.
    public static func backwardWeights(_ g: ConvGeometry, input: Tensor, gradOutput: Tensor) -> (weight: Tensor, bias: Tensor) {
        let grads = backward(g, input: input, gradOutput: gradOutput, weight: nil, needsInputGradient: false)
        return (grads.weight!, grads.bias!)
    }

    /// The backward pass of a convolution in one sweep: each chunk's rows are built once
    /// for the weight gradient, then the same buffer receives the row gradient that is
    /// scattered into the input gradient.
    /// - Parameters:
    ///   - input: `[N, C_in, D, H, W]` of the forward pass, or nil when only the input
    ///     gradient is wanted.
    ///   - gradOutput: `[N, C_out, D_out, H_out, W_out]`.
    ///   - weight: `[C_out, C_in, kD, kH, kW]`; needed only when `needsInputGradient`.
    /// - Returns: the `input` gradient (when requested), and the `weight` and `bias`
    ///   gradients summed over the batch (when `input` was given).
    public static func backward(
        _ g: ConvGeometry, input: Tensor?, gradOutput: Tensor, weight: Tensor?, needsInputGradient: Bool
    ) -> (input: Tensor?, weight: Tensor?, bias: Tensor?) {
        let n = gradOutput.shape[0]
        precondition(input == nil || input!.shape == g.inputShape(n), "conv3d backward: input vs \(g.inputShape(n))")
        precondition(gradOutput.shape == g.outputShape(n), "conv3d backward: \(gradOutput.shape) vs \(g.outputShape(n))")
        precondition(!needsInputGradient || weight?.shape == g.weightShape, "conv3d backward: weight needed with shape \(g.weightShape)")
        let (outSpatial, inSpatial, k) = (g.output.product, g.input.product, g.columnRows)
        let chunk = chunkLength(g)
        let chunks = (outSpatial + chunk - 1) / chunk
        let wantsWeights = input != nil
        // Scattering into the input gradient needs each sample owned by one worker; the
        // weight gradient alone can split a small batch's chunks instead.
        let items = needsInputGradient ? n : n * chunks
        let workers = max(1, min(Engine.threads, items))
        let weightCount = g.outChannels * k
        let stride = wantsWeights ? weightCount + g.outChannels : 0
        let rowWeight = weight.map { w in w.withUnsafeBufferPointer { rowOrderedWeight(g, $0.baseAddress!) } } ?? []
        var gradInput = needsInputGradient ? Tensor(zeros: g.inputShape(n)) : nil
        // One [dW' | db] accumulator per worker, summed in worker order afterwards.
        var partials = [Float](repeating: 0, count: workers * stride)
        partials.withUnsafeMutableBufferPointer { acc in
            gradOutput.withUnsafeBufferPointer { gy in
                input.withOptionalBase { x in
                    gradInput.withOptionalMutableBase { gx in
                        rowWeight.withUnsafeBufferPointer { wb in
                            Engine.parallelWorkers(workers) { worker in
                                let dW = acc.baseAddress! + worker * stride
                                let dB = dW + weightCount
                                let scratch = Scratch(g)
                                let gradPadded = UnsafeMutablePointer<Float>.allocate(capacity: gx == nil ? 0 : paddedExtent(g).product * g.inChannels)
                                defer {
                                    scratch.deallocate()
                                    gradPadded.deallocate()
                                }
                                func process(sample: Int, chunkIndex: Int) {
                                    let start = chunkIndex * chunk
                                    let length = min(chunk, outSpatial - start)
                                    let dy = gy.baseAddress! + sample * g.outChannels * outSpatial + start
                                    if x != nil {
                                        vol2row(g, padded: scratch.padded, start: start, length: length, rows: scratch.rows)
                                        BLAS.sgemm(m: g.outChannels, n: k, k: length, a: dy, lda: outSpatial,
                                                   b: scratch.rows, ldb: k, beta: 1, c: dW, ldc: k)
                                        for o in 0..<g.outChannels {
                                            let row = dy + o * outSpatial
                                            var total: Float = 0
                                            for j in 0..<length { total += row[j] }
                                            dB[o] += total
                                        }
                                    }
                                    if gx != nil {
                                        BLAS.sgemm(transposeA: true, m: length, n: k, k: g.outChannels, a: dy, lda: outSpatial,
                                                   b: wb.baseAddress!, ldb: k, c: scratch.rows, ldc: k)
                                        row2vol(g, rows: scratch.rows, start: start, length: length, padded: gradPadded)
                                    }
                                }
                                var padded = -1
                                for item in (items * worker / workers)..<(items * (worker + 1) / workers) {
                                    let sample = needsInputGradient ? item : item / chunks
                                    if sample != padded {
                                        if let x { pad(g, sample: x + sample * g.inChannels * inSpatial, into: scratch.padded) }
                                        padded = sample
                                    }
                                    if needsInputGradient {
                                        gradPadded.update(repeating: 0, count: paddedExtent(g).product * g.inChannels)
                                        for chunkIndex in 0..<chunks { process(sample: sample, chunkIndex: chunkIndex) }
                                        unpad(g, padded: gradPadded, into: gx! + sample * g.inChannels * inSpatial)
                                    } else {
                                        process(sample: sample, chunkIndex: item % chunks)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        guard wantsWeights else { return (gradInput, nil, nil) }
        var rowOrderedGrad = [Float](repeating: 0, count: weightCount)
        var biasGrad = [Float](repeating: 0, count: g.outChannels)
        for worker in 0..<workers {
            let base = worker * stride
            for i in 0..<weightCount { rowOrderedGrad[i] += partials[base + i] }
            for o in 0..<g.outChannels { biasGrad[o] += partials[base + weightCount + o] }
        }
        let weightGrad = rowOrderedGrad.withUnsafeBufferPointer { tensorOrderedWeight(g, $0.baseAddress!) }
        return (gradInput, weightGrad, Tensor(unchecked: [g.outChannels], biasGrad))
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
