/// How a convolution unfolds its input into a matrix for `sgemm`, chosen per geometry.
///
/// - `channelsLast` ("vol2row"): the sample is copied into a zero-padded channels-last buffer
///   `[D + 2pD, H + 2pH, W + 2pW, C_in]` and each output position's receptive field becomes a
///   row of `rows[P, K]`, `K = kD·kH·kW·C_in`, built from one contiguous run of `kW·C_in` floats
///   per `(kd, kh)`. Weights are used reordered to `[C_out, kD, kH, kW, C_in]`.
/// - `planar` ("vol2col", the classic NCDHW im2col): `col[K, P]`, `K = C_in·kD·kH·kW`, built
///   from runs along W of each input plane.
///
/// Runs are what cost: vol2row copies 27× fewer, longer runs when there are many input
/// channels (the encoder's second layer: forward about 1.7× faster), while with one input
/// channel its runs shrink to 3 floats and vol2col's runs along W win (the first layer).
/// `choose(_:)` picks channels-last once a run holds at least 16 floats.
public enum ConvUnfolding: Sendable, Equatable {
    case channelsLast
    case planar

    public static func choose(_ g: ConvGeometry) -> ConvUnfolding {
        g.kernel.w * g.inChannels >= 16 ? .channelsLast : .planar
    }

    /// Floats of per-sample scratch the unfolding needs (the padded copy), 0 for planar.
    func scratchCount(_ g: ConvGeometry) -> Int {
        self == .channelsLast ? Self.paddedExtent(g).product * g.inChannels : 0
    }

    /// Readies one NCDHW sample for `unfold` and returns what `unfold` reads.
    func prepare(_ g: ConvGeometry, sample: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        guard self == .channelsLast else { return sample }
        Self.pad(g, sample: sample, into: scratch)
        return UnsafePointer(scratch)
    }

    /// Builds the matrix of output positions `start..<start+length` into `buffer`.
    func unfold(_ g: ConvGeometry, source: UnsafePointer<Float>, start: Int, length: Int, into buffer: UnsafeMutablePointer<Float>) {
        switch self {
        case .channelsLast: Self.vol2row(g, padded: source, start: start, length: length, rows: buffer)
        case .planar: Self.vol2col(g, input: source, start: start, length: length, columns: buffer)
        }
    }

    /// Adds an unfolded gradient back (adjoint of `unfold`) into `target`: the padded scratch
    /// for channels-last (then `finishFolding`), the sample's gradient for planar.
    func fold(_ g: ConvGeometry, _ buffer: UnsafePointer<Float>, start: Int, length: Int, into target: UnsafeMutablePointer<Float>) {
        switch self {
        case .channelsLast: Self.row2vol(g, rows: buffer, start: start, length: length, padded: target)
        case .planar: Self.col2vol(g, columns: buffer, start: start, length: length, gradInput: target)
        }
    }

    /// Adds a padded channels-last gradient into the sample's NCDHW gradient.
    func finishFolding(_ g: ConvGeometry, scratch: UnsafePointer<Float>, into sample: UnsafeMutablePointer<Float>) {
        if self == .channelsLast { Self.unpad(g, padded: scratch, into: sample) }
    }

    /// The weight in the order the unfolded matrix uses.
    func orderedWeight(_ g: ConvGeometry, _ weight: Tensor) -> [Float] {
        guard self == .channelsLast else { return weight.scalars }
        return weight.withUnsafeBufferPointer { Self.rowOrderedWeight(g, $0.baseAddress!) }
    }

    /// A weight gradient in unfolded order, back in PyTorch's `[C_out, C_in, kD, kH, kW]`.
    func tensorWeight(_ g: ConvGeometry, _ ordered: [Float]) -> Tensor {
        guard self == .channelsLast else { return try! Tensor(shape: g.weightShape, scalars: ordered) }
        return ordered.withUnsafeBufferPointer { Self.tensorOrderedWeight(g, $0.baseAddress!) }
    }

    /// `out[C_out, length] (+)= W[C_out, K] · unfolded` with `out`'s row stride `ldc`.
    func outputGEMM(_ g: ConvGeometry, weight: UnsafePointer<Float>, unfolded: UnsafePointer<Float>, length: Int,
                    accumulate: Bool, out: UnsafeMutablePointer<Float>, ldc: Int) {
        let k = g.columnRows
        BLAS.sgemm(transposeB: self == .channelsLast, m: g.outChannels, n: length, k: k, a: weight, lda: k,
                   b: unfolded, ldb: self == .channelsLast ? k : length, beta: accumulate ? 1 : 0, c: out, ldc: ldc)
    }

    /// `dW[C_out, K] += dOut[C_out, length] · unfoldedᵀ` (`dOut` with row stride `ldd`).
    func weightGradientGEMM(_ g: ConvGeometry, gradOutput: UnsafePointer<Float>, ldd: Int, unfolded: UnsafePointer<Float>,
                            length: Int, into gradWeight: UnsafeMutablePointer<Float>) {
        let k = g.columnRows
        BLAS.sgemm(transposeB: self == .planar, m: g.outChannels, n: k, k: length, a: gradOutput, lda: ldd,
                   b: unfolded, ldb: self == .channelsLast ? k : length, beta: 1, c: gradWeight, ldc: k)
    }

    /// The unfolded input gradient `Wᵀ · dOut` into `buffer`, in the unfolding's layout.
    func inputGradientGEMM(_ g: ConvGeometry, gradOutput: UnsafePointer<Float>, ldd: Int, weight: UnsafePointer<Float>,
                           length: Int, into buffer: UnsafeMutablePointer<Float>) {
        let k = g.columnRows
        switch self {
        case .channelsLast:
            BLAS.sgemm(transposeA: true, m: length, n: k, k: g.outChannels, a: gradOutput, lda: ldd,
                       b: weight, ldb: k, c: buffer, ldc: k)
        case .planar:
            BLAS.sgemm(transposeA: true, m: k, n: length, k: g.outChannels, a: weight, lda: k,
                       b: gradOutput, ldb: ldd, c: buffer, ldc: length)
        }
    }

    /// Extent of the padded channels-last copy of one sample: `(D + 2pD, H + 2pH, W + 2pW)`.
    static func paddedExtent(_ g: ConvGeometry) -> Triple {
        Triple(g.input.d + 2 * g.padding.d, g.input.h + 2 * g.padding.h, g.input.w + 2 * g.padding.w)
    }

    // MARK: Layout changes

    /// Copies one NCDHW sample into the zero-padded channels-last buffer `padded`.
    static func pad(_ g: ConvGeometry, sample x: UnsafePointer<Float>, into padded: UnsafeMutablePointer<Float>) {
        let p = Self.paddedExtent(g)
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
                    // Channel-outer, so the NCDHW side streams; the channels-last side is a
                    // small [W, C] block that stays in L1.
                    for channel in 0..<c {
                        let plane = source + channel * inSpatial
                        for w in 0..<g.input.w { target[w * c + channel] = plane[w] }
                    }
                }
            }
        }
    }

    /// Adds the interior of a padded channels-last gradient into one NCDHW sample (the
    /// adjoint of `pad`).
    static func unpad(_ g: ConvGeometry, padded: UnsafePointer<Float>, into x: UnsafeMutablePointer<Float>) {
        let p = Self.paddedExtent(g)
        let c = g.inChannels
        let inSpatial = g.input.product
        for z in 0..<g.input.d {
            for y in 0..<g.input.h {
                let target = x + (z * g.input.h + y) * g.input.w
                let source = padded + (((z + g.padding.d) * p.h + y + g.padding.h) * p.w + g.padding.w) * c
                // Channel-outer: writing the C planes in lockstep, 16 KiB apart, made this loop
                // two thirds of a transposed convolution's time (cache-set aliasing).
                for channel in 0..<c {
                    let plane = target + channel * inSpatial
                    for w in 0..<g.input.w { plane[w] += source[w * c + channel] }
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
        let p = Self.paddedExtent(g)
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
        let p = Self.paddedExtent(g)
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
        let p = Self.paddedExtent(g)
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

    // MARK: vol2col / col2vol (planar)

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

    /// The shared walk of `vol2col` and its adjoint `col2vol`: for every unfolded row
    /// `(c, kd, kh, kw)` and every run of output positions along W, `body(row, offset, run,
    /// ow, kw, inputRow)` where `inputRow` is the offset of the input row `(c, z, y)` the run
    /// reads, or nil when that row lies in the padding.
    @inline(__always)
    static func forEachPlanarRun(
        _ g: ConvGeometry, start: Int, length: Int, _ body: (Int, Int, Int, Int, Int, Int?) -> Void
    ) {
        var row = 0
        for c in 0..<g.inChannels {
            for kd in 0..<g.kernel.d {
                for kh in 0..<g.kernel.h {
                    for kw in 0..<g.kernel.w {
                        forEachRun(g, start: start, length: length) { od, oh, ow, offset, run in
                            let z = od * g.stride.d - g.padding.d + kd
                            let y = oh * g.stride.h - g.padding.h + kh
                            let inside = z >= 0 && z < g.input.d && y >= 0 && y < g.input.h
                            body(row, offset, run, ow, kw, inside ? (c * g.input.d + z) * g.input.h * g.input.w + y * g.input.w : nil)
                        }
                        row += 1
                    }
                }
            }
        }
    }

    /// The columns `lo..<hi` of a run whose input x, `first + t·stride` for column `t`, lies
    /// inside a row of `width`.
    @inline(__always)
    static func validSpan(first: Int, run: Int, width: Int, stride: Int = 1) -> (lo: Int, hi: Int) {
        // Smallest t with first + t·stride ≥ 0, and smallest t with first + t·stride ≥ width.
        func ceilingSteps(_ distance: Int) -> Int { distance <= 0 ? 0 : (distance + stride - 1) / stride }
        let lo = min(run, ceilingSteps(-first))
        return (lo, max(lo, min(run, ceilingSteps(width - first))))
    }

    /// Fills `columns[K, length]` (row stride `length`) with the patches of output positions
    /// `start..<start+length` of one sample whose input channels start at `input`.
    static func vol2col(
        _ g: ConvGeometry, input: UnsafePointer<Float>, start: Int, length: Int, columns: UnsafeMutablePointer<Float>
    ) {
        let iw = g.input.w
        forEachPlanarRun(g, start: start, length: length) { row, offset, run, ow, kw, inputRow in
            let dst = columns + row * length + offset
            guard let inputRow else {
                dst.update(repeating: 0, count: run)
                return
            }
            let source = input + inputRow
            if g.stride.w == 1 {
                let first = ow - g.padding.w + kw
                let (lo, hi) = validSpan(first: first, run: run, width: iw)
                dst.update(repeating: 0, count: lo)
                if hi > lo { (dst + lo).update(from: source + (first + lo), count: hi - lo) }
                (dst + hi).update(repeating: 0, count: run - hi)
            } else {
                let first = ow * g.stride.w - g.padding.w + kw
                let (lo, hi) = validSpan(first: first, run: run, width: iw, stride: g.stride.w)
                for t in 0..<lo { dst[t] = 0 }
                for t in lo..<hi { dst[t] = source[first + t * g.stride.w] }
                for t in hi..<run { dst[t] = 0 }
            }
        }
    }

    /// Adds `columns[K, length]` back into one sample's input-shaped gradient: the adjoint
    /// of `vol2col`.
    static func col2vol(
        _ g: ConvGeometry, columns: UnsafePointer<Float>, start: Int, length: Int, gradInput: UnsafeMutablePointer<Float>
    ) {
        let iw = g.input.w
        forEachPlanarRun(g, start: start, length: length) { row, offset, run, ow, kw, inputRow in
            guard let inputRow else { return }
            let src = columns + row * length + offset
            let target = gradInput + inputRow
            if g.stride.w == 1 {
                let first = ow - g.padding.w + kw
                let (lo, hi) = validSpan(first: first, run: run, width: iw)
                for t in lo..<hi { target[first + t] += src[t] }
            } else {
                let first = ow * g.stride.w - g.padding.w + kw
                let (lo, hi) = validSpan(first: first, run: run, width: iw, stride: g.stride.w)
                for t in lo..<hi { target[first + t * g.stride.w] += src[t] }
            }
        }
    }
}
