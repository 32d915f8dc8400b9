/// 3-D convolution kernels over `[N, C, D, H, W]` tensors: the input is unfolded in chunks
/// (see `ConvUnfolding`) and each pass is one GEMM per chunk of output positions:
/// ```
/// out[C_out, P]  = W[C_out, K] · unfolded (+ bias)
/// dW[C_out, K]  += dOut[C_out, P] · unfoldedᵀ
/// dUnfolded      = Wᵀ · dOut, folded back into dInput
/// ```
/// `out` and `dOut` stay in the tensor's own `[C_out, P]` layout. The unfolded matrix is never
/// built whole: positions go in short chunks, each worker reusing its buffers. Workers own
/// fixed samples or fixed chunks, and per-worker partial sums are combined in worker order,
/// so results are bit-reproducible for a given thread count.
public enum Conv3dKernels {
    /// Output positions per chunk.
    ///
    /// Set by measurement of Debian's OpenBLAS 0.3.21 (Cooperlake kernels) on the benchmark's
    /// shapes, not by cache size: its small-matrix path, which skips packing, takes the
    /// channels-last GEMMs up to 32 positions (C_out 32, K 432: ~100 GFLOP/s per core for all
    /// three passes against 70–78 at 303 positions), while the planar GEMMs (few input
    /// channels, K = 27) peak near 256 positions (~105 GFLOP/s forward).
    static func chunkLength(_ g: ConvGeometry) -> Int {
        min(g.output.product, ConvUnfolding.choose(g) == .channelsLast ? 32 : 256)
    }

    // MARK: Convolution passes

    /// Per-worker buffers: scratch for preparing a sample and one unfolded chunk.
    struct Scratch {
        let prepared: UnsafeMutablePointer<Float>
        let unfolded: UnsafeMutablePointer<Float>

        init(prepared: UnsafeMutablePointer<Float>, unfolded: UnsafeMutablePointer<Float>) {
            (self.prepared, self.unfolded) = (prepared, unfolded)
        }

        init(_ g: ConvGeometry, _ unfolding: ConvUnfolding) {
            prepared = .allocate(capacity: unfolding.scratchCount(g))
            unfolded = .allocate(capacity: g.columnRows * Conv3dKernels.chunkLength(g))
        }

        func deallocate() {
            prepared.deallocate()
            unfolded.deallocate()
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
        precondition(bias == nil || bias!.shape == [g.outChannels], "conv3d forward: bias \(bias!.shape) vs [\(g.outChannels)]")
        let unfolding = ConvUnfolding.choose(g)
        let outSpatial = g.output.product
        let chunk = chunkLength(g)
        let chunks = (outSpatial + chunk - 1) / chunk
        let w = unfolding.orderedWeight(g, weight)
        return Tensor(uninitializedShape: g.outputShape(n)) { out in
            let outBase = out.baseAddress!
            input.withUnsafeBufferPointer { xb in
                w.withUnsafeBufferPointer { wb in
                    func compute(_ sample: Int, _ chunkIndex: Int, _ source: UnsafePointer<Float>, _ buffer: UnsafeMutablePointer<Float>) {
                        let start = chunkIndex * chunk
                        let length = min(chunk, outSpatial - start)
                        unfolding.unfold(g, source: source, start: start, length: length, into: buffer)
                        let c = outBase + sample * g.outChannels * outSpatial + start
                        if let bias {
                            bias.withUnsafeBufferPointer { b in
                                for o in 0..<g.outChannels { (c + o * outSpatial).update(repeating: b[o], count: length) }
                            }
                        }
                        unfolding.outputGEMM(g, weight: wb.baseAddress!, unfolded: buffer, length: length,
                                             accumulate: bias != nil, out: c, ldc: outSpatial)
                    }
                    forEachChunk(g, unfolding, samples: n, chunks: chunks, input: xb.baseAddress!, compute)
                }
            }
        }
    }

    /// Runs `compute(sample, chunk, prepared sample, unfolded buffer)` over every chunk of every
    /// sample. Workers own whole samples when there are enough of them; a single large
    /// sample (a whole volume) is prepared once and its chunks are split among the workers.
    static func forEachChunk(
        _ g: ConvGeometry, _ unfolding: ConvUnfolding, samples n: Int, chunks: Int, input: UnsafePointer<Float>,
        _ compute: (Int, Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void
    ) {
        let sampleCount = g.inChannels * g.input.product
        if n >= Engine.threads || chunks == 1 {
            Engine.parallelRanges(n) { range in
                let scratch = Scratch(g, unfolding)
                defer { scratch.deallocate() }
                for sample in range {
                    let source = unfolding.prepare(g, sample: input + sample * sampleCount, scratch: scratch.prepared)
                    for chunkIndex in 0..<chunks { compute(sample, chunkIndex, source, scratch.unfolded) }
                }
            }
        } else {
            let prepared = UnsafeMutablePointer<Float>.allocate(capacity: unfolding.scratchCount(g))
            defer { prepared.deallocate() }
            for sample in 0..<n {
                let source = unfolding.prepare(g, sample: input + sample * sampleCount, scratch: prepared)
                Engine.parallelRanges(chunks) { range in
                    let buffer = UnsafeMutablePointer<Float>.allocate(capacity: g.columnRows * chunkLength(g))
                    defer { buffer.deallocate() }
                    for chunkIndex in range { compute(sample, chunkIndex, source, buffer) }
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

    /// The backward pass of a convolution in one sweep: each chunk is unfolded once for the
    /// weight gradient, then the same buffer receives the unfolded input gradient, which is
    /// folded back into the input gradient.
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
        let unfolding = ConvUnfolding.choose(g)
        let (outSpatial, sampleCount, k) = (g.output.product, g.inChannels * g.input.product, g.columnRows)
        let chunk = chunkLength(g)
        let chunks = (outSpatial + chunk - 1) / chunk
        let wantsWeights = input != nil
        // Folding into the input gradient needs each sample owned by one worker; the weight
        // gradient alone can split a small batch's chunks instead.
        let items = needsInputGradient ? n : n * chunks
        let workers = max(1, min(Engine.threads, items))
        let weightCount = g.outChannels * k
        let stride = wantsWeights ? weightCount + g.outChannels : 0
        let orderedWeight = weight.map { unfolding.orderedWeight(g, $0) } ?? []
        var gradInput = needsInputGradient ? Tensor(zeros: g.inputShape(n)) : nil
        // One [dW | db] accumulator per worker (dW in unfolded order), summed in worker order.
        var partials = [Float](repeating: 0, count: workers * stride)
        partials.withUnsafeMutableBufferPointer { acc in
            gradOutput.withUnsafeBufferPointer { gy in
                input.withOptionalBase { x in
                    gradInput.withOptionalMutableBase { gx in
                        orderedWeight.withUnsafeBufferPointer { wb in
                            Engine.parallelWorkers(workers) { worker in
                                let dW = acc.baseAddress! + worker * stride
                                let dB = dW + weightCount
                                let scratch = Scratch(g, unfolding)
                                let gradScratch = UnsafeMutablePointer<Float>.allocate(capacity: gx == nil ? 0 : unfolding.scratchCount(g))
                                defer {
                                    scratch.deallocate()
                                    gradScratch.deallocate()
                                }
                                var source: UnsafePointer<Float>?
                                var preparedSample = -1
                                for item in (items * worker / workers)..<(items * (worker + 1) / workers) {
                                    let sample = needsInputGradient ? item : item / chunks
                                    if let x, sample != preparedSample {
                                        source = unfolding.prepare(g, sample: x + sample * sampleCount, scratch: scratch.prepared)
                                        preparedSample = sample
                                    }
                                    let foldTarget = unfolding == .channelsLast ? gradScratch : (gx.map { $0 + sample * sampleCount } ?? gradScratch)
                                    if gx != nil { foldTarget.update(repeating: 0, count: unfolding.scratchCount(g)) }
                                    for chunkIndex in needsInputGradient ? 0..<chunks : (item % chunks)..<(item % chunks + 1) {
                                        let start = chunkIndex * chunk
                                        let length = min(chunk, outSpatial - start)
                                        let dy = gy.baseAddress! + sample * g.outChannels * outSpatial + start
                                        if let source {
                                            unfolding.unfold(g, source: source, start: start, length: length, into: scratch.unfolded)
                                            unfolding.weightGradientGEMM(g, gradOutput: dy, ldd: outSpatial, unfolded: scratch.unfolded,
                                                                         length: length, into: dW)
                                            for o in 0..<g.outChannels {
                                                let row = dy + o * outSpatial
                                                var total: Float = 0
                                                for j in 0..<length { total += row[j] }
                                                dB[o] += total
                                            }
                                        }
                                        if gx != nil {
                                            unfolding.inputGradientGEMM(g, gradOutput: dy, ldd: outSpatial, weight: wb.baseAddress!,
                                                                        length: length, into: scratch.unfolded)
                                            unfolding.fold(g, scratch.unfolded, start: start, length: length, into: foldTarget)
                                        }
                                    }
                                    if let gx { unfolding.finishFolding(g, scratch: gradScratch, into: gx + sample * sampleCount) }
                                }
                            }
                        }
                    }
                }
            }
        }
        guard wantsWeights else { return (gradInput, nil, nil) }
        var orderedGrad = [Float](repeating: 0, count: weightCount)
        var biasGrad = [Float](repeating: 0, count: g.outChannels)
        for worker in 0..<workers {
            let base = worker * stride
            for i in 0..<weightCount { orderedGrad[i] += partials[base + i] }
            for o in 0..<g.outChannels { biasGrad[o] += partials[base + weightCount + o] }
        }
        return (gradInput, unfolding.tensorWeight(g, orderedGrad), Tensor(unchecked: [g.outChannels], biasGrad))
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
