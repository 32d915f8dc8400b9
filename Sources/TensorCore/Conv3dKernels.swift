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

    /// Per-worker buffers: scratch for preparing a sample, one unfolded chunk, and an optional
    /// output slab (for fused pooling).
    struct Scratch {
        let prepared: UnsafeMutablePointer<Float>
        let unfolded: UnsafeMutablePointer<Float>
        let slab: UnsafeMutablePointer<Float>

        init(_ g: ConvGeometry, _ unfolding: ConvUnfolding, prepared: UnsafeMutablePointer<Float>? = nil, slab: Int = 0) {
            self.prepared = prepared ?? .allocate(capacity: unfolding.scratchCount(g))
            unfolded = .allocate(capacity: g.columnRows * Conv3dKernels.chunkLength(g))
            self.slab = .allocate(capacity: slab)
        }

        /// Frees the buffers (the prepared sample only when this scratch allocated it).
        func deallocate(ownsPrepared: Bool = true) {
            if ownsPrepared { prepared.deallocate() }
            unfolded.deallocate()
            slab.deallocate()
        }
    }

    /// Writes the convolution (with bias) of output positions `start..<start+length` of one
    /// prepared sample into `out[C_out, length]` (row stride `ldc`), chunk by chunk.
    static func convolve(
        _ g: ConvGeometry, _ unfolding: ConvUnfolding, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        source: UnsafePointer<Float>, buffer: UnsafeMutablePointer<Float>, start: Int, length: Int,
        out: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        let chunk = chunkLength(g)
        var offset = 0
        while offset < length {
            let count = min(chunk, length - offset)
            unfolding.unfold(g, source: source, start: start + offset, length: count, into: buffer)
            if let bias {
                for o in 0..<g.outChannels { (out + o * ldc + offset).update(repeating: bias[o], count: count) }
            }
            unfolding.outputGEMM(g, weight: weight, unfolded: buffer, length: count, accumulate: bias != nil,
                                 out: out + offset, ldc: ldc)
            offset += count
        }
    }

    /// Forward convolution.
    ///
    /// Output positions are unfolded and multiplied chunk by chunk *within each output depth
    /// plane*, so a plane's values never depend on how many planes surround it: a volume
    /// encoded in slabs along its first axis gives the same bits as in one pass (OpenBLAS's
    /// `sgemm` may round a column differently when the matrix has another number of columns).
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
        let plane = g.output.h * g.output.w
        let chunk = min(chunkLength(g), plane)
        let chunksPerPlane = (plane + chunk - 1) / chunk
        let w = unfolding.orderedWeight(g, weight)
        return Tensor(uninitializedShape: g.outputShape(n)) { out in
            let outBase = out.baseAddress!
            input.withUnsafeBufferPointer { xb in
                w.withUnsafeBufferPointer { wb in
                    bias.withOptionalBase { b in
                        forEachItem(g, unfolding, samples: n, itemsPerSample: g.output.d * chunksPerPlane, input: xb.baseAddress!) {
                            sample, item, source, scratch in
                            let (depth, piece) = item.quotientAndRemainder(dividingBy: chunksPerPlane)
                            let start = depth * plane + piece * chunk
                            convolve(g, unfolding, weight: wb.baseAddress!, bias: b, source: source, buffer: scratch.unfolded,
                                     start: start, length: min(chunk, plane - piece * chunk),
                                     out: outBase + sample * g.outChannels * outSpatial + start, ldc: outSpatial)
                        }
                    }
                }
            }
        }
    }

    /// Convolution followed by 2×2×2, stride-2 max pooling, without materialising the
    /// convolution's output: each pair of output depth slices is computed into a per-worker
    /// slab (a few hundred KiB, cache-resident) and pooled from there. Same values and the same
    /// indices (into the convolution's output planes) as `forward` then `Pool3dKernels.maxPool`;
    /// it saves writing and re-reading the largest tensor of an encoder (the first layer's
    /// output, 134 MB on the benchmark batch).
    /// - Returns: the pooled `[N, C_out, D'/2, H'/2, W'/2]` and, per pooled element, the flat
    ///   index of its maximum within its `D'·H'·W'` convolution-output plane.
    public static func forwardMaxPooled(_ g: ConvGeometry, input: Tensor, weight: Tensor, bias: Tensor?) -> (Tensor, [Int32]) {
        let n = input.shape[0]
        precondition(input.shape == g.inputShape(n), "conv3d forwardMaxPooled: input \(input.shape) vs \(g.inputShape(n))")
        precondition(weight.shape == g.weightShape && (bias == nil || bias!.shape == [g.outChannels]), "conv3d forwardMaxPooled: parameters")
        precondition(g.output.d >= 2 && g.output.h >= 2 && g.output.w >= 2, "conv3d forwardMaxPooled: output \(g.output) too small to pool")
        let unfolding = ConvUnfolding.choose(g)
        let pooled = Triple(g.output.d / 2, g.output.h / 2, g.output.w / 2)
        let slab = 2 * g.output.h * g.output.w
        let pairPlane = pooled.h * pooled.w
        let w = unfolding.orderedWeight(g, weight)
        var indices = [Int32](unsafeUninitializedCapacity: n * g.outChannels * pooled.product) { _, initialized in
            initialized = n * g.outChannels * pooled.product
        }
        let output = Tensor(uninitializedShape: [n, g.outChannels, pooled.d, pooled.h, pooled.w]) { out in
            let outBase = out.baseAddress!
            indices.withUnsafeMutableBufferPointer { idx in
                let idxBase = idx.baseAddress!
                input.withUnsafeBufferPointer { xb in
                    w.withUnsafeBufferPointer { wb in
                        bias.withOptionalBase { b in
                            forEachItem(g, unfolding, samples: n, itemsPerSample: pooled.d, slab: g.outChannels * slab,
                                        input: xb.baseAddress!) { sample, pair, source, scratch in
                                convolve(g, unfolding, weight: wb.baseAddress!, bias: b, source: source, buffer: scratch.unfolded,
                                         start: pair * slab, length: slab, out: scratch.slab, ldc: slab)
                                for o in 0..<g.outChannels {
                                    let target = (sample * g.outChannels + o) * pooled.product + pair * pairPlane
                                    Pool3dKernels.maxPool2(scratch.slab + o * slab, Triple(2, g.output.h, g.output.w),
                                                           Triple(1, pooled.h, pooled.w), outBase + target, idxBase + target)
                                    // Indices from the slab are relative to its first slice.
                                    let shift = Int32(truncatingIfNeeded: pair * slab)
                                    for i in target..<(target + pairPlane) { idxBase[i] &+= shift }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (output, indices)
    }

    /// Weight and bias gradients of a convolution whose output went through 2×2×2 max pooling
    /// (`forwardMaxPooled`), from the pooled gradient and the pooling indices alone. Only the
    /// element that won each window receives gradient, so the sums run over the pooled
    /// positions (1/8 of the output, and only the non-zero gradients) and the full-size output
    /// gradient is never built:
    /// ```
    /// dW[o, c, k] = Σ_n Σ_p g[n, o, p] · x[n, c, pos(idx[n, o, p]) ⊕ k]      db[o] = Σ_n Σ_p g[n, o, p]
    /// ```
    /// Worth it when `K = C_in·kD·kH·kW` is small (a first layer on one-channel scans); for
    /// wide layers the dense GEMM of `backward` does the same sums faster.
    /// - Parameters:
    ///   - input: `[N, C_in, D, H, W]` of the forward pass.
    ///   - gradPooled: `[N, C_out, D'/2, H'/2, W'/2]`.
    ///   - indices: as returned by `forwardMaxPooled`.
    public static func weightGradientThroughMaxPool(
        _ g: ConvGeometry, input: Tensor, gradPooled: Tensor, indices: [Int32]
    ) -> (weight: Tensor, bias: Tensor) {
        let n = input.shape[0]
        let pooled = Triple(g.output.d / 2, g.output.h / 2, g.output.w / 2)
        precondition(input.shape == g.inputShape(n), "conv3d weightGradientThroughMaxPool: input \(input.shape)")
        precondition(gradPooled.shape == [n, g.outChannels, pooled.d, pooled.h, pooled.w] && indices.count == gradPooled.count,
                     "conv3d weightGradientThroughMaxPool: pooled gradient \(gradPooled.shape) for output \(g.output)")
        // Zero-padded NCDHW copy of a sample, so every tap is inside without bounds checks.
        let padded = Triple(g.input.d + 2 * g.padding.d, g.input.h + 2 * g.padding.h, g.input.w + 2 * g.padding.w)
        let (k, outPlane) = (g.columnRows, g.output.h * g.output.w)
        var weightGrad = [Float](repeating: 0, count: g.outChannels * k)
        var biasGrad = [Double](repeating: 0, count: g.outChannels)
        weightGrad.withUnsafeMutableBufferPointer { dWBuffer in
            biasGrad.withUnsafeMutableBufferPointer { dBBuffer in
                let (dW, dB) = (dWBuffer.baseAddress!, dBBuffer.baseAddress!)
                input.withUnsafeBufferPointer { xb in
                    gradPooled.withUnsafeBufferPointer { gb in
                        indices.withUnsafeBufferPointer { ib in
                            // Workers own output channels: each writes only its own rows of dW,
                            // visiting samples in order, so no reduction is needed.
                            Engine.parallelRanges(g.outChannels) { channels in
                                let sample = UnsafeMutablePointer<Float>.allocate(capacity: g.inChannels * padded.product)
                                let winnerValues = UnsafeMutablePointer<Float>.allocate(capacity: pooled.product)
                                let winnerCorners = UnsafeMutablePointer<Int>.allocate(capacity: pooled.product)
                                defer {
                                    sample.deallocate()
                                    winnerValues.deallocate()
                                    winnerCorners.deallocate()
                                }
                                sample.update(repeating: 0, count: g.inChannels * padded.product)
                                var offsets = [Int]()  // padded-buffer offset of each tap (c, kd, kh, kw)
                                for c in 0..<g.inChannels {
                                    for kd in 0..<g.kernel.d { for kh in 0..<g.kernel.h { for kw in 0..<g.kernel.w {
                                        offsets.append(((c * padded.d + kd) * padded.h + kh) * padded.w + kw)
                                    } } }
                                }
                                for s in 0..<n {
                                    for c in 0..<g.inChannels {
                                        for z in 0..<g.input.d {
                                            for y in 0..<g.input.h {
                                                let from = xb.baseAddress! + ((s * g.inChannels + c) * g.input.d + z) * g.input.h * g.input.w + y * g.input.w
                                                let to = sample + ((c * padded.d + z + g.padding.d) * padded.h + y + g.padding.h) * padded.w + g.padding.w
                                                to.update(from: from, count: g.input.w)
                                            }
                                        }
                                    }
                                    for o in channels {
                                        let row = dW + o * k
                                        let plane = (s * g.outChannels + o) * pooled.product
                                        // First the winners with a non-zero gradient (ReLU zeroes about half),
                                        // gathered without a branch: a data-dependent branch here mispredicted
                                        // half the time and cost more than the sums.
                                        var count = 0
                                        var total = 0.0
                                        var p = plane
                                        for pd in 0..<pooled.d {
                                            for ph in 0..<pooled.h {
                                                for pw in 0..<pooled.w {
                                                    let value = gb[p]
                                                    // The winner's place in its 2×2×2 window, without division.
                                                    var r = Int(ib[p]) - ((2 * pd * g.output.h + 2 * ph) * g.output.w + 2 * pw)
                                                    p += 1
                                                    let dz = r >= outPlane ? 1 : 0
                                                    r -= dz * outPlane
                                                    let dy = r >= g.output.w ? 1 : 0
                                                    r -= dy * g.output.w
                                                    let (od, oh, ow) = (2 * pd + dz, 2 * ph + dy, 2 * pw + r)
                                                    winnerValues[count] = value
                                                    winnerCorners[count] = ((od * g.stride.d) * padded.h + oh * g.stride.h) * padded.w + ow * g.stride.w
                                                    count += value != 0 ? 1 : 0
                                                    total += Double(value)
                                                }
                                            }
                                        }
                                        offsets.withUnsafeBufferPointer { tap in
                                            for m in 0..<count {
                                                let (value, window) = (winnerValues[m], sample + winnerCorners[m])
                                                for t in 0..<k { row[t] += value * window[tap[t]] }
                                            }
                                        }
                                        dB[o] += total
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (Tensor(unchecked: g.weightShape, weightGrad), Tensor(unchecked: [g.outChannels], biasGrad.map { Float($0) }))
    }

    /// Runs `compute(sample, item, prepared sample, scratch)` for items `0..<itemsPerSample`
    /// of every sample. Workers own whole samples when there are enough of them; a single
    /// large sample (a whole volume) is prepared once and its items are split among the workers.
    static func forEachItem(
        _ g: ConvGeometry, _ unfolding: ConvUnfolding, samples n: Int, itemsPerSample: Int, slab: Int = 0,
        input: UnsafePointer<Float>, _ compute: (Int, Int, UnsafePointer<Float>, Scratch) -> Void
    ) {
        let sampleCount = g.inChannels * g.input.product
        if n >= Engine.threads || itemsPerSample == 1 {
            Engine.parallelRanges(n) { range in
                let scratch = Scratch(g, unfolding, slab: slab)
                defer { scratch.deallocate() }
                for sample in range {
                    let source = unfolding.prepare(g, sample: input + sample * sampleCount, scratch: scratch.prepared)
                    for item in 0..<itemsPerSample { compute(sample, item, source, scratch) }
                }
            }
        } else {
            let prepared = UnsafeMutablePointer<Float>.allocate(capacity: unfolding.scratchCount(g))
            defer { prepared.deallocate() }
            for sample in 0..<n {
                let source = unfolding.prepare(g, sample: input + sample * sampleCount, scratch: prepared)
                Engine.parallelRanges(itemsPerSample) { range in
                    let scratch = Scratch(g, unfolding, prepared: prepared, slab: slab)
                    defer { scratch.deallocate(ownsPrepared: false) }
                    for item in range { compute(sample, item, source, scratch) }
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
