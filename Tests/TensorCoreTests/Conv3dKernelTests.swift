import Testing
import TensorCore
import TestSupport

/// One convolution configuration exercised by the kernel tests.
struct ConvCase: Sendable, CustomTestStringConvertible {
    var name: String
    var inChannels: Int
    var outChannels: Int
    var kernel: Triple
    var stride: Triple
    var padding: Triple
    var input: Triple
    var batch = 2

    var testDescription: String { name }

    func geometry() throws -> ConvGeometry {
        try ConvGeometry(inChannels: inChannels, outChannels: outChannels, kernel: kernel, stride: stride, padding: padding, input: input)
    }

    static let all: [ConvCase] = [
        ConvCase(name: "k3 s1 p0, 1→1", inChannels: 1, outChannels: 1, kernel: Triple(3), stride: Triple(1), padding: Triple(0), input: Triple(5, 6, 7)),
        ConvCase(name: "k3 s2 p1, 2→3", inChannels: 2, outChannels: 3, kernel: Triple(3), stride: Triple(2), padding: Triple(1), input: Triple(8, 9, 7)),
        ConvCase(name: "k(3,1,2) s(1,2,1) p(2,0,1), 3→2", inChannels: 3, outChannels: 2, kernel: Triple(3, 1, 2), stride: Triple(1, 2, 1), padding: Triple(2, 0, 1), input: Triple(5, 4, 6)),
        ConvCase(name: "k2 s2 p0, 4→4", inChannels: 4, outChannels: 4, kernel: Triple(2), stride: Triple(2), padding: Triple(0), input: Triple(6, 6, 5)),
        ConvCase(name: "k(1,3,3) s(2,1,3) p(0,1,2), 2→1", inChannels: 2, outChannels: 1, kernel: Triple(1, 3, 3), stride: Triple(2, 1, 3), padding: Triple(0, 1, 2), input: Triple(3, 7, 8)),
        ConvCase(name: "k5 p2 wider than input, 1→2", inChannels: 1, outChannels: 2, kernel: Triple(5), stride: Triple(1), padding: Triple(2), input: Triple(4, 5, 3)),
        ConvCase(name: "k(2,2,1) p(1,0,2): all-padding W runs, 2→2", inChannels: 2, outChannels: 2, kernel: Triple(2, 2, 1), stride: Triple(1), padding: Triple(1, 0, 2), input: Triple(3, 4, 3)),
        ConvCase(name: "k3 s(2,3,2) p(1,2,0), 3→2, batch 3", inChannels: 3, outChannels: 2, kernel: Triple(3), stride: Triple(2, 3, 2), padding: Triple(1, 2, 0), input: Triple(7, 8, 7), batch: 3),
        // K = 80·27 = 2160 rows, so a chunk holds only max(64, 512 KiB / (4·K)) = 64 positions:
        // several chunks per sample, boundaries falling mid-row.
        ConvCase(name: "chunked, unit W stride, 80→2", inChannels: 80, outChannels: 2, kernel: Triple(3), stride: Triple(1), padding: Triple(1), input: Triple(4, 5, 7)),
        ConvCase(name: "chunked, W stride 2, 80→1", inChannels: 80, outChannels: 1, kernel: Triple(3), stride: Triple(1, 1, 2), padding: Triple(1), input: Triple(4, 6, 9)),
        chunkedSingleSample,
        // kW·C_in >= 16: the channels-last (vol2row) unfolding; the cases above with few
        // input channels use the planar (vol2col) one.
        ConvCase(name: "channels-last k3 s2 p1, 6→2", inChannels: 6, outChannels: 2, kernel: Triple(3), stride: Triple(2), padding: Triple(1), input: Triple(5, 6, 7)),
        ConvCase(name: "channels-last k(1,2,4) s(1,2,3) p(0,1,2), 4→3", inChannels: 4, outChannels: 3, kernel: Triple(1, 2, 4), stride: Triple(1, 2, 3), padding: Triple(0, 1, 2), input: Triple(3, 5, 9)),
        ConvCase(name: "channels-last k2 s1 p(0,1,2), 8→2, batch 3", inChannels: 8, outChannels: 2, kernel: Triple(2), stride: Triple(1), padding: Triple(0, 1, 2), input: Triple(3, 4, 5), batch: 3),
        // Planar unfolding (kW·C_in = 15) with K = 2160 rows: several chunks per sample.
        ConvCase(name: "chunked planar k(12,12,1) p(6,6,0), 15→2", inChannels: 15, outChannels: 2, kernel: Triple(12, 12, 1), stride: Triple(1), padding: Triple(6, 6, 0), input: Triple(4, 4, 9)),
    ]

    /// One sample with several chunks: fewer samples than threads, so the kernels split the
    /// chunks of one sample among workers instead of giving each worker whole samples.
    static let chunkedSingleSample = ConvCase(
        name: "chunked, batch 1, 80→3", inChannels: 80, outChannels: 3, kernel: Triple(3), stride: Triple(1),
        padding: Triple(1), input: Triple(4, 5, 7), batch: 1)

    /// Cases whose full column matrix exceeds the kernels' 512 KiB per-worker buffer budget.
    static var chunked: [ConvCase] {
        all.filter { c in (try? c.geometry()).map { $0.columnRows * $0.output.product * MemoryLayout<Float>.size > 512 * 1024 } ?? false }
    }
}

/// Direct Double references for convolution, written over flat row-major arrays.
enum ConvReference {
    /// Calls `body(outFlat, inFlat, weightFlat)` for every in-bounds tap of every output element.
    static func forEachTap(_ g: ConvGeometry, batch n: Int, _ body: (Int, Int, Int) -> Void) {
        let (cin, cout) = (g.inChannels, g.outChannels)
        let (id, ih, iw) = (g.input.d, g.input.h, g.input.w)
        let (od, oh, ow) = (g.output.d, g.output.h, g.output.w)
        let (kd, kh, kw) = (g.kernel.d, g.kernel.h, g.kernel.w)
        for s in 0..<n {
            for o in 0..<cout {
                for zo in 0..<od { for yo in 0..<oh { for xo in 0..<ow {
                    let outFlat = (((s * cout + o) * od + zo) * oh + yo) * ow + xo
                    for c in 0..<cin {
                        for a in 0..<kd { for b in 0..<kh { for e in 0..<kw {
                            let z = zo * g.stride.d - g.padding.d + a
                            let y = yo * g.stride.h - g.padding.h + b
                            let x = xo * g.stride.w - g.padding.w + e
                            guard (0..<id).contains(z), (0..<ih).contains(y), (0..<iw).contains(x) else { continue }
                            let inFlat = (((s * cin + c) * id + z) * ih + y) * iw + x
                            let weightFlat = (((o * cin + c) * kd + a) * kh + b) * kw + e
                            body(outFlat, inFlat, weightFlat)
                        } } }
                    }
                } } }
            }
        }
    }

    static func forward(_ g: ConvGeometry, input: Tensor, weight: Tensor, bias: Tensor?) -> [Double] {
        let n = input.shape[0]
        let outSpatial = g.output.product
        var out = [Double](repeating: 0, count: n * g.outChannels * outSpatial)
        if let bias {
            for i in out.indices { out[i] = Double(bias.scalars[(i / outSpatial) % g.outChannels]) }
        }
        let (x, w) = (input.scalars, weight.scalars)
        forEachTap(g, batch: n) { o, i, k in out[o] += Double(x[i]) * Double(w[k]) }
        return out
    }

    static func backwardData(_ g: ConvGeometry, gradOutput: Tensor, weight: Tensor) -> [Double] {
        let n = gradOutput.shape[0]
        var dx = [Double](repeating: 0, count: n * g.inChannels * g.input.product)
        let (dy, w) = (gradOutput.scalars, weight.scalars)
        forEachTap(g, batch: n) { o, i, k in dx[i] += Double(dy[o]) * Double(w[k]) }
        return dx
    }

    static func backwardWeights(_ g: ConvGeometry, input: Tensor, gradOutput: Tensor) -> (weight: [Double], bias: [Double]) {
        let n = input.shape[0]
        var dw = [Double](repeating: 0, count: g.weightShape.reduce(1, *))
        let (x, dy) = (input.scalars, gradOutput.scalars)
        forEachTap(g, batch: n) { o, i, k in dw[k] += Double(dy[o]) * Double(x[i]) }
        var db = [Double](repeating: 0, count: g.outChannels)
        let outSpatial = g.output.product
        for (flat, value) in dy.enumerated() { db[(flat / outSpatial) % g.outChannels] += Double(value) }
        return (dw, db)
    }
}

@Suite struct Conv3dKernelTests {
    static func seeds(_ c: ConvCase) -> UInt64 { UInt64(c.inChannels * 1000 + c.outChannels * 100 + c.input.product) }

    @Test(arguments: ConvCase.all)
    func forwardMatchesReference(_ c: ConvCase) throws {
        let g = try c.geometry()
        let seed = Self.seeds(c)
        let x = TestSupport.randomTensor(g.inputShape(c.batch), seed: seed)
        let w = TestSupport.randomTensor(g.weightShape, seed: seed + 1)
        let b = TestSupport.randomTensor([g.outChannels], seed: seed + 2)
        for bias in [nil, b] {
            let y = Conv3dKernels.forward(g, input: x, weight: w, bias: bias)
            #expect(y.shape == g.outputShape(c.batch))
            let expected = ConvReference.forward(g, input: x, weight: w, bias: bias)
            expectClose(y.scalars, expected, rtol: 1e-4, atol: 1e-4, "\(c.name), bias \(bias != nil)")
            // The library's own seven-loop reference must agree too (it is used elsewhere as
            // the oracle); skipped for the large chunked cases, where it is slow in debug.
            if g.columnRows <= 256 {
                let naive = Conv3dKernels.forwardNaive(g, input: x, weight: w, bias: bias)
                #expect(naive.shape == y.shape)
                expectClose(y.scalars, naive.scalars.map(Double.init), rtol: 1e-4, atol: 1e-4, "\(c.name) vs forwardNaive")
                expectClose(naive.scalars, expected, rtol: 1e-5, atol: 1e-5, "\(c.name) forwardNaive vs reference")
            }
        }
    }

    @Test func chunkedCasesReallySpanSeveralChunks() throws {
        // Chunks hold at least 64 positions and at most a 512 KiB slice of the K x P column
        // matrix; these cases exceed both, so every pass runs over several chunks per sample.
        #expect(ConvCase.chunked.count == 4)
        for c in ConvCase.chunked {
            let g = try c.geometry()
            #expect(g.output.product > 64, "\(c.name)")
            #expect(g.columnRows * g.output.product * MemoryLayout<Float>.size > 512 * 1024, "\(c.name)")
            #expect(64 % g.output.w != 0, "\(c.name): chunk boundaries should fall mid-row")
        }
    }

    @Test(arguments: ConvCase.all)
    func backwardDataIsAdjointOfForward(_ c: ConvCase) throws {
        let g = try c.geometry()
        let seed = Self.seeds(c) + 10
        let x = TestSupport.randomTensor(g.inputShape(c.batch), seed: seed)
        let w = TestSupport.randomTensor(g.weightShape, seed: seed + 1)
        let y = TestSupport.randomTensor(g.outputShape(c.batch), seed: seed + 2)
        let forward = Conv3dKernels.forward(g, input: x, weight: w, bias: nil)
        let back = Conv3dKernels.backwardData(g, gradOutput: y, weight: w)
        #expect(back.shape == x.shape)
        let lhs = Reference.dot(forward.scalars, y.scalars)
        let rhs = Reference.dot(x.scalars, back.scalars)
        let scale = max(Reference.absDot(forward.scalars, y.scalars), Reference.absDot(x.scalars, back.scalars))
        expectRelativelyClose(lhs, rhs, scale: scale, tolerance: 1e-4, "<conv(x), y> vs <x, convᵀ(y)> for \(c.name)")
    }

    @Test(arguments: ConvCase.all)
    func backwardDataMatchesReference(_ c: ConvCase) throws {
        let g = try c.geometry()
        let seed = Self.seeds(c) + 20
        let w = TestSupport.randomTensor(g.weightShape, seed: seed)
        let dy = TestSupport.randomTensor(g.outputShape(c.batch), seed: seed + 1)
        let dx = Conv3dKernels.backwardData(g, gradOutput: dy, weight: w)
        expectClose(dx.scalars, ConvReference.backwardData(g, gradOutput: dy, weight: w), rtol: 1e-4, atol: 1e-4, c.name)
    }

    @Test(arguments: ConvCase.all)
    func backwardWeightsMatchesReference(_ c: ConvCase) throws {
        let g = try c.geometry()
        let seed = Self.seeds(c) + 30
        let x = TestSupport.randomTensor(g.inputShape(c.batch), seed: seed)
        let dy = TestSupport.randomTensor(g.outputShape(c.batch), seed: seed + 1)
        let (dw, db) = Conv3dKernels.backwardWeights(g, input: x, gradOutput: dy)
        #expect(dw.shape == g.weightShape)
        #expect(db.shape == [g.outChannels])
        let (expectedW, expectedB) = ConvReference.backwardWeights(g, input: x, gradOutput: dy)
        expectClose(dw.scalars, expectedW, rtol: 1e-4, atol: 1e-4, "dW \(c.name)")
        expectClose(db.scalars, expectedB, rtol: 1e-4, atol: 1e-4, "db \(c.name)")
    }

    @Test func forwardIsLinearInBias() throws {
        // forward(x, w, b) − forward(x, w, nil) is b broadcast over every position.
        let g = try ConvCase.all[1].geometry()
        let x = TestSupport.randomTensor(g.inputShape(2), seed: 90)
        let w = TestSupport.randomTensor(g.weightShape, seed: 91)
        let b = TestSupport.randomTensor([g.outChannels], seed: 92)
        let difference = try Conv3dKernels.forward(g, input: x, weight: w, bias: b)
            .subtracting(Conv3dKernels.forward(g, input: x, weight: w, bias: nil))
        let outSpatial = g.output.product
        let expected = (0..<difference.count).map { Double(b.scalars[($0 / outSpatial) % g.outChannels]) }
        expectClose(difference.scalars, expected, rtol: 1e-5, atol: 1e-5)
    }

    @Test(arguments: [ConvCase.all[1], ConvCase.all[2], ConvCase.chunkedSingleSample])
    func combinedBackwardMatchesReference(_ c: ConvCase) throws {
        let g = try c.geometry()
        let x = TestSupport.randomTensor(g.inputShape(c.batch), seed: 94)
        let w = TestSupport.randomTensor(g.weightShape, seed: 95)
        let dy = TestSupport.randomTensor(g.outputShape(c.batch), seed: 96)
        let (expectedW, expectedB) = ConvReference.backwardWeights(g, input: x, gradOutput: dy)
        let expectedX = ConvReference.backwardData(g, gradOutput: dy, weight: w)

        let both = Conv3dKernels.backward(g, input: x, gradOutput: dy, weight: w, needsInputGradient: true)
        let dx = try #require(both.input)
        let (dw, db): (Tensor?, Tensor?) = (both.weight, both.bias)
        expectClose(dx.scalars, expectedX, rtol: 1e-4, atol: 1e-4, "dx \(c.name)")
        expectClose(try #require(dw).scalars, expectedW, rtol: 1e-4, atol: 1e-4, "dW \(c.name)")
        expectClose(try #require(db).scalars, expectedB, rtol: 1e-4, atol: 1e-4, "db \(c.name)")

        let weightsOnly = Conv3dKernels.backward(g, input: x, gradOutput: dy, weight: nil, needsInputGradient: false)
        #expect(weightsOnly.input == nil)
        let (dw2, db2): (Tensor?, Tensor?) = (weightsOnly.weight, weightsOnly.bias)
        expectClose(try #require(dw2).scalars, expectedW, rtol: 1e-4, atol: 1e-4, "dW weights-only \(c.name)")
        expectClose(try #require(db2).scalars, expectedB, rtol: 1e-4, atol: 1e-4, "db weights-only \(c.name)")
    }

    @Test func emptyBatchForward() throws {
        let g = try ConvCase.all[2].geometry()
        let w = TestSupport.randomTensor(g.weightShape, seed: 93)
        #expect(Conv3dKernels.forward(g, input: Tensor(zeros: g.inputShape(0)), weight: w, bias: nil).shape == g.outputShape(0))
    }

    /// Regression: an empty batch used to give zero workers and divide by zero in the
    /// backward pass instead of returning an empty input gradient and zero weight gradients.
    @Test(arguments: [ConvCase.all[2], ConvCase.chunkedSingleSample])
    func emptyBatchBackwardIsEmptyOrZero(_ c: ConvCase) throws {
        let g = try c.geometry()
        let w = TestSupport.randomTensor(g.weightShape, seed: 93)
        let x = Tensor(zeros: g.inputShape(0)), dy = Tensor(zeros: g.outputShape(0))
        #expect(Conv3dKernels.backwardData(g, gradOutput: dy, weight: w).shape == g.inputShape(0))
        let (dw, db) = Conv3dKernels.backwardWeights(g, input: x, gradOutput: dy)
        #expect(dw == Tensor(zeros: g.weightShape))
        #expect(db == Tensor(zeros: [g.outChannels]))
        let both = Conv3dKernels.backward(g, input: x, gradOutput: dy, weight: w, needsInputGradient: true)
        #expect(both.input?.shape == g.inputShape(0))
        let (dw2, db2): (Tensor?, Tensor?) = (both.weight, both.bias)
        #expect(dw2 == Tensor(zeros: g.weightShape))
        #expect(db2 == Tensor(zeros: [g.outChannels]))
    }
}

@Suite struct ConvGeometryTests {
    @Test func outputExtentFormula() throws {
        for size in 1...6 {
            for k in 1...4 {
                for s in 1...3 {
                    for p in 0...2 where size + 2 * p >= k {
                        let g = try ConvGeometry(inChannels: 1, outChannels: 1, kernel: Triple(k, 1, 1), stride: Triple(s, 1, 1),
                                                 padding: Triple(p, 0, 0), input: Triple(size, 3, 2))
                        // Count the window positions directly: starts at −p, −p+s, ... while the
                        // window still ends inside the padded input.
                        var positions = 0
                        var start = -p
                        while start + k <= size + p { positions += 1; start += s }
                        #expect(g.output.d == positions, "in \(size) k \(k) s \(s) p \(p)")
                        #expect(g.output.h == 3 && g.output.w == 2)
                    }
                }
            }
        }
        let g = try ConvGeometry(inChannels: 2, outChannels: 5, kernel: Triple(3, 1, 2), stride: Triple(2, 1, 3),
                                 padding: Triple(1, 0, 2), input: Triple(8, 9, 7))
        #expect(g.output == Triple((8 + 2 - 3) / 2 + 1, 9, (7 + 4 - 2) / 3 + 1))
        #expect(g.weightShape == [5, 2, 3, 1, 2])
        #expect(g.columnRows == 2 * 3 * 1 * 2)
        #expect(g.inputShape(4) == [4, 2, 8, 9, 7])
        #expect(g.outputShape(4) == [4, 5, g.output.d, g.output.h, g.output.w])
    }

    @Test func kernelLargerThanPaddedInputThrows() throws {
        for (kernel, padding, input) in [(Triple(3), Triple(0), Triple(2, 5, 5)), (Triple(1, 6, 1), Triple(0, 1, 0), Triple(4, 3, 4)),
                                         (Triple(2, 2, 8), Triple(1), Triple(3, 3, 5))] {
            let error = #expect(throws: TensorError.self) {
                try ConvGeometry(inChannels: 1, outChannels: 1, kernel: kernel, stride: Triple(1), padding: padding, input: input)
            }
            #expect(error?.isInvalidArgument == true, "kernel \(kernel) padding \(padding) input \(input)")
        }
        // Exactly fitting the padded input is fine and gives one position.
        let g = try ConvGeometry(inChannels: 1, outChannels: 1, kernel: Triple(4), stride: Triple(1), padding: Triple(1), input: Triple(2))
        #expect(g.output == Triple(1))
    }

    @Test func invalidArgumentsThrow() {
        let attempts: [(String, Int, Int, Triple, Triple, Triple)] = [
            ("zero stride", 1, 1, Triple(1), Triple(1, 0, 1), Triple(0)),
            ("negative stride", 1, 1, Triple(1), Triple(-1), Triple(0)),
            ("zero kernel", 1, 1, Triple(0, 1, 1), Triple(1), Triple(0)),
            ("negative padding", 1, 1, Triple(1), Triple(1), Triple(0, -1, 0)),
            ("zero in channels", 0, 1, Triple(1), Triple(1), Triple(0)),
            ("zero out channels", 1, 0, Triple(1), Triple(1), Triple(0)),
        ]
        for (name, cin, cout, kernel, stride, padding) in attempts {
            let error = #expect(throws: TensorError.self, "\(name)") {
                try ConvGeometry(inChannels: cin, outChannels: cout, kernel: kernel, stride: stride, padding: padding, input: Triple(4))
            }
            #expect(error?.isInvalidArgument == true, "\(name)")
        }
    }

    @Test func tripleBasics() {
        let t = Triple(2, 3, 4)
        #expect(t.product == 24)
        #expect(t.array == [2, 3, 4])
        #expect(Triple(5) == Triple(5, 5, 5))
    }
}
