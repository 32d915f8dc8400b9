import Foundation
import NeuralNet
import Testing
import TensorCore
import TestSupport

// Every layer is checked twice: its forward pass against an independent naive loop written
// here, and its backward pass (input and parameter gradients) against central finite
// differences of a random projection of its output (TestSupport.gradientCheck).

// MARK: - Reference implementations (Double accumulation, direct loops)

/// Direct convolution, PyTorch `F.conv3d` semantics, weight `[C_out, C_in, kD, kH, kW]`.
func referenceConv3d(_ x: Tensor, weight: Tensor, bias: Tensor, stride s: Triple, padding p: Triple) -> Tensor {
    let (n, cin) = (x.shape[0], x.shape[1])
    let (cout, k) = (weight.shape[0], Triple(weight.shape[2], weight.shape[3], weight.shape[4]))
    let od = (x.shape[2] + 2 * p.d - k.d) / s.d + 1
    let oh = (x.shape[3] + 2 * p.h - k.h) / s.h + 1
    let ow = (x.shape[4] + 2 * p.w - k.w) / s.w + 1
    let outShape = [n, cout, od, oh, ow]
    var out = [Double](repeating: 0, count: outShape.reduce(1, *))
    for b in 0..<n {
        for o in 0..<cout {
            for zd in 0..<od {
                for zh in 0..<oh {
                    for zw in 0..<ow {
                        var total = Double(bias.scalars[o])
                        for c in 0..<cin {
                            for a in 0..<k.d {
                                for e in 0..<k.h {
                                    for f in 0..<k.w {
                                        let (id, ih, iw) = (zd * s.d - p.d + a, zh * s.h - p.h + e, zw * s.w - p.w + f)
                                        guard (0..<x.shape[2]).contains(id), (0..<x.shape[3]).contains(ih),
                                              (0..<x.shape[4]).contains(iw) else { continue }
                                        total += Double(x.scalars[flatIndex(x.shape, b, c, id, ih, iw)])
                                            * Double(weight.scalars[flatIndex(weight.shape, o, c, a, e, f)])
                                    }
                                }
                            }
                        }
                        out[flatIndex(outShape, b, o, zd, zh, zw)] = total
                    }
                }
            }
        }
    }
    return tensor(outShape, out)
}

/// Transposed convolution by its scatter definition (PyTorch `F.conv_transpose3d`), weight
/// `[C_in, C_out, kD, kH, kW]`: every input element adds `x · w` at `i·stride − padding + k`.
func referenceConvTranspose3d(_ x: Tensor, weight: Tensor, bias: Tensor, stride s: Triple, padding p: Triple,
                              outputPadding op: Triple) -> Tensor {
    let (n, cin) = (x.shape[0], x.shape[1])
    let (cout, k) = (weight.shape[1], Triple(weight.shape[2], weight.shape[3], weight.shape[4]))
    let od = (x.shape[2] - 1) * s.d - 2 * p.d + k.d + op.d
    let oh = (x.shape[3] - 1) * s.h - 2 * p.h + k.h + op.h
    let ow = (x.shape[4] - 1) * s.w - 2 * p.w + k.w + op.w
    let outShape = [n, cout, od, oh, ow]
    var out = [Double](repeating: 0, count: outShape.reduce(1, *))
    for b in 0..<n {
        for o in 0..<cout {
            for zd in 0..<od { for zh in 0..<oh { for zw in 0..<ow {
                out[flatIndex(outShape, b, o, zd, zh, zw)] = Double(bias.scalars[o])
            } } }
        }
        for c in 0..<cin {
            for id in 0..<x.shape[2] { for ih in 0..<x.shape[3] { for iw in 0..<x.shape[4] {
                let v = Double(x.scalars[flatIndex(x.shape, b, c, id, ih, iw)])
                for o in 0..<cout {
                    for a in 0..<k.d { for e in 0..<k.h { for f in 0..<k.w {
                        let (zd, zh, zw) = (id * s.d - p.d + a, ih * s.h - p.h + e, iw * s.w - p.w + f)
                        guard (0..<od).contains(zd), (0..<oh).contains(zh), (0..<ow).contains(zw) else { continue }
                        out[flatIndex(outShape, b, o, zd, zh, zw)] += v * Double(weight.scalars[flatIndex(weight.shape, c, o, a, e, f)])
                    } } }
                }
            } } }
        }
    }
    return tensor(outShape, out)
}

/// Max or average pooling by direct loops (no padding, floor mode).
func referencePool(_ x: Tensor, kernel k: Triple, stride s: Triple, max isMax: Bool) -> Tensor {
    let od = (x.shape[2] - k.d) / s.d + 1, oh = (x.shape[3] - k.h) / s.h + 1, ow = (x.shape[4] - k.w) / s.w + 1
    let outShape = [x.shape[0], x.shape[1], od, oh, ow]
    var out = [Double](repeating: 0, count: outShape.reduce(1, *))
    for b in 0..<x.shape[0] { for c in 0..<x.shape[1] {
        for zd in 0..<od { for zh in 0..<oh { for zw in 0..<ow {
            var window: [Double] = []
            for a in 0..<k.d { for e in 0..<k.h { for f in 0..<k.w {
                window.append(Double(x.scalars[flatIndex(x.shape, b, c, zd * s.d + a, zh * s.h + e, zw * s.w + f)]))
            } } }
            out[flatIndex(outShape, b, c, zd, zh, zw)] = isMax ? window.max()! : window.reduce(0, +) / Double(window.count)
        } } }
    } }
    return tensor(outShape, out)
}

/// PyTorch's `area_pixel_compute_source_index` (align_corners=False) along one axis:
/// the two source indices and the weight of the upper one.
func linearTaps(output o: Int, factor: Int, input: Int) -> (Int, Int, Double) {
    let source = max(0, (Double(o) + 0.5) / Double(factor) - 0.5)
    let low = Int(source.rounded(.down))
    let high = low < input - 1 ? low + 1 : low
    return (low, high, source - Double(low))
}

/// Nearest or trilinear upsampling by direct loops.
func referenceUpsample(_ x: Tensor, factor f: Triple, trilinear: Bool) -> Tensor {
    let (d, h, w) = (x.shape[2], x.shape[3], x.shape[4])
    let outShape = [x.shape[0], x.shape[1], d * f.d, h * f.h, w * f.w]
    var out = [Double](repeating: 0, count: outShape.reduce(1, *))
    for b in 0..<x.shape[0] { for c in 0..<x.shape[1] {
        for zd in 0..<outShape[2] { for zh in 0..<outShape[3] { for zw in 0..<outShape[4] {
            let value: Double
            if trilinear {
                let (d0, d1, ld) = linearTaps(output: zd, factor: f.d, input: d)
                let (h0, h1, lh) = linearTaps(output: zh, factor: f.h, input: h)
                let (w0, w1, lw) = linearTaps(output: zw, factor: f.w, input: w)
                func at(_ i: Int, _ j: Int, _ l: Int) -> Double { Double(x.scalars[flatIndex(x.shape, b, c, i, j, l)]) }
                var total = 0.0
                for (i, wi) in [(d0, 1 - ld), (d1, ld)] {
                    for (j, wj) in [(h0, 1 - lh), (h1, lh)] {
                        for (l, wl) in [(w0, 1 - lw), (w1, lw)] { total += wi * wj * wl * at(i, j, l) }
                    }
                }
                value = total
            } else {
                value = Double(x.scalars[flatIndex(x.shape, b, c, zd / f.d, zh / f.h, zw / f.w)])
            }
            out[flatIndex(outShape, b, c, zd, zh, zw)] = value
        } } }
    } }
    return tensor(outShape, out)
}

/// Per-channel batch mean and biased variance of `[N, C]` or `[N, C, D, H, W]`.
func referenceChannelStatistics(_ x: Tensor) -> (mean: [Double], variance: [Double]) {
    let (n, c) = (x.shape[0], x.shape[1])
    let inner = x.count / (n * c)
    var mean = [Double](repeating: 0, count: c), variance = [Double](repeating: 0, count: c)
    for ch in 0..<c {
        var values: [Double] = []
        for b in 0..<n { for i in 0..<inner { values.append(Double(x.scalars[(b * c + ch) * inner + i])) } }
        let m = values.reduce(0, +) / Double(values.count)
        mean[ch] = m
        variance[ch] = values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(values.count)
    }
    return (mean, variance)
}

/// `(x − mean) / sqrt(var + eps) · γ + β` per channel.
func referenceBatchNorm(_ x: Tensor, mean: [Double], variance: [Double], gamma: Tensor, beta: Tensor, epsilon: Double) -> Tensor {
    let (n, c) = (x.shape[0], x.shape[1])
    let inner = x.count / (n * c)
    var out = [Double](repeating: 0, count: x.count)
    for b in 0..<n { for ch in 0..<c { for i in 0..<inner {
        let index = (b * c + ch) * inner + i
        out[index] = (Double(x.scalars[index]) - mean[ch]) / (variance[ch] + epsilon).squareRoot()
            * Double(gamma.scalars[ch]) + Double(beta.scalars[ch])
    } } }
    return tensor(x.shape, out)
}

// MARK: - Dense, Flatten, Dropout

@Suite struct DenseLayerTests {
    @Test func forwardMatchesNaiveLoops() throws {
        var generator = Xoshiro256StarStar(seed: 11)
        let layer = Dense(inFeatures: 4, outFeatures: 3, using: &generator)
        layer.bias.value = random([3], seed: 12)
        let x = random([2, 4], seed: 13)
        var expected = [Double](repeating: 0, count: 6)
        for i in 0..<2 {
            for o in 0..<3 {
                var total = Double(layer.bias.value.scalars[o])
                for j in 0..<4 { total += Double(x.scalars[i * 4 + j]) * Double(layer.weight.value.scalars[o * 4 + j]) }
                expected[i * 3 + o] = total
            }
        }
        let y = try layer.forward(x, mode: .inference)
        #expect(TestSupport.isClose(y, tensor([2, 3], expected)))
    }

    @Test func gradientsMatchFiniteDifferences() throws {
        var generator = Xoshiro256StarStar(seed: 21)
        let layer = Dense(inFeatures: 5, outFeatures: 3, using: &generator)
        layer.bias.value = random([3], seed: 22)
        let (error, location) = try TestSupport.gradientCheck(layer, input: random([2, 5], seed: 23))
        #expect(error < linearGradientTolerance, "\(location)")
    }

    @Test func backwardAccumulatesParameterGradientsUntilZeroed() throws {
        var generator = Xoshiro256StarStar(seed: 31)
        let layer = Dense(inFeatures: 3, outFeatures: 2, using: &generator)
        let x = random([2, 3], seed: 32)
        let g = random([2, 2], seed: 33)
        _ = try layer.forward(x, mode: .training)
        _ = try layer.backward(g)
        let once = layer.weight.gradient
        let onceBias = layer.bias.gradient
        _ = try layer.backward(g)
        #expect(TestSupport.isClose(layer.weight.gradient, once.scaled(by: 2)))
        #expect(TestSupport.isClose(layer.bias.gradient, onceBias.scaled(by: 2)))
        // dW = gᵀx by hand.
        var dW = [Double](repeating: 0, count: 6)
        for o in 0..<2 { for j in 0..<3 { for i in 0..<2 {
            dW[o * 3 + j] += Double(g.scalars[i * 2 + o]) * Double(x.scalars[i * 3 + j])
        } } }
        #expect(TestSupport.isClose(once, tensor([2, 3], dW)))
        layer.zeroGradients()
        #expect(layer.weight.gradient == Tensor(zeros: [2, 3]))
        #expect(layer.bias.gradient == Tensor(zeros: [2]))
    }
}

@Suite struct FlattenAndDropoutTests {
    @Test func flattenKeepsElementOrderAndGradientsMatch() throws {
        let layer = Flatten()
        let x = random([2, 3, 2, 2, 3], seed: 41)
        let y = try layer.forward(x, mode: .training)
        #expect(y.shape == [2, 36])
        #expect(y.scalars == x.scalars)
        let (error, location) = try TestSupport.gradientCheck(layer, input: x)
        #expect(error < linearGradientTolerance, "\(location)")
        let g = try layer.backward(random([2, 36], seed: 42))
        #expect(g.shape == x.shape)
    }

    @Test(arguments: [Float(0.25), 0.5, 0.8])
    func dropoutTrainingMasksAndRescales(probability: Float) throws {
        let layer = try Dropout(probability: probability, seed: 7)
        // Inputs away from zero so output / input recovers the mask exactly.
        let x = random([2, 3, 6, 7, 5], seed: 43, low: 0.5, high: 1.5)
        let y = try layer.forward(x, mode: .training)
        let scale = 1 / (1 - probability)
        var dropped = 0
        var mask = [Float](repeating: 0, count: x.count)
        for i in 0..<x.count {
            let (a, b) = (x.scalars[i], y.scalars[i])
            if b == 0 {
                dropped += 1
            } else {
                #expect(abs(b - a * scale) <= 1e-5 * abs(b), "element \(i): \(b) is neither 0 nor \(a)·\(scale)")
            }
            mask[i] = b / a
        }
        // 2520 Bernoulli(p) draws: the dropped fraction is within ~5 standard deviations of p.
        let fraction = Float(dropped) / Float(x.count)
        #expect(abs(fraction - probability) < 0.05, "dropped \(fraction), expected about \(probability)")
        // The backward pass applies the same mask: dx = g · (y / x).
        let g = random(x.shape, seed: 44)
        let dx = try layer.backward(g)
        let expected = try g.multiplying(try Tensor(shape: x.shape, scalars: mask))
        #expect(TestSupport.isClose(dx, expected, rtol: 1e-5, atol: 1e-6))
        // A second training pass draws a new mask.
        let y2 = try layer.forward(x, mode: .training)
        #expect(y2 != y)
    }

    @Test func dropoutIsIdentityInInferenceAndWithZeroProbability() throws {
        let layer = try Dropout(probability: 0.5, seed: 3)
        let x = random([2, 2, 3, 4, 2], seed: 45)
        #expect(try layer.forward(x, mode: .inference) == x)
        let g = random(x.shape, seed: 46)
        #expect(try layer.backward(g) == g)
        let none = try Dropout(probability: 0, seed: 3)
        #expect(try none.forward(x, mode: .training) == x)
        #expect(try none.backward(g) == g)
    }

    @Test func dropoutMasksAreSeeded() throws {
        let x = random([2, 50], seed: 47, low: 1, high: 2)
        let a = try Dropout(probability: 0.5, seed: 9).forward(x, mode: .training)
        let b = try Dropout(probability: 0.5, seed: 9).forward(x, mode: .training)
        let c = try Dropout(probability: 0.5, seed: 10).forward(x, mode: .training)
        #expect(a == b)
        #expect(a != c)
    }
}

// MARK: - Convolutions

struct ConvCase: Sendable, CustomTestStringConvertible {
    var name: String
    var inChannels: Int
    var outChannels: Int
    var kernel: Triple
    var stride: Triple
    var padding: Triple
    var outputPadding = Triple(0)
    var input: [Int]
    var testDescription: String { name }
}

let convolutionCases: [ConvCase] = [
    ConvCase(name: "k3 stride 1 pad 1", inChannels: 2, outChannels: 3, kernel: Triple(3), stride: Triple(1),
             padding: Triple(1), input: [2, 2, 4, 5, 3]),
    ConvCase(name: "k3 stride 2 pad 0 on odd sizes", inChannels: 1, outChannels: 2, kernel: Triple(3), stride: Triple(2),
             padding: Triple(0), input: [2, 1, 7, 5, 6]),
    ConvCase(name: "anisotropic kernel (3,1,2)", inChannels: 2, outChannels: 2, kernel: Triple(3, 1, 2), stride: Triple(1, 2, 1),
             padding: Triple(1, 0, 1), input: [2, 2, 5, 3, 4]),
    ConvCase(name: "3 channels k3 stride 2 pad 1 odd sizes", inChannels: 3, outChannels: 2, kernel: Triple(3), stride: Triple(2),
             padding: Triple(1), input: [2, 3, 5, 7, 3]),
    ConvCase(name: "k2 stride 2 pad 0", inChannels: 1, outChannels: 3, kernel: Triple(2), stride: Triple(2),
             padding: Triple(0), input: [2, 1, 4, 6, 2]),
    // kW·C_in ≥ 16 takes the channels-last unfolding.
    ConvCase(name: "6 channels k3 stride 2 pad 1 (channels-last)", inChannels: 6, outChannels: 2, kernel: Triple(3), stride: Triple(2),
             padding: Triple(1), input: [2, 6, 4, 3, 5]),
]

let transposedCases: [ConvCase] = [
    ConvCase(name: "stride 1 pad 1", inChannels: 2, outChannels: 3, kernel: Triple(3), stride: Triple(1),
             padding: Triple(1), input: [2, 2, 3, 4, 2]),
    ConvCase(name: "stride 1 pad 0 k2", inChannels: 1, outChannels: 2, kernel: Triple(2), stride: Triple(1),
             padding: Triple(0), input: [2, 1, 3, 2, 3]),
    ConvCase(name: "stride 2 pad 1 outputPadding 1", inChannels: 2, outChannels: 2, kernel: Triple(3), stride: Triple(2),
             padding: Triple(1), outputPadding: Triple(1), input: [2, 2, 3, 2, 3]),
    ConvCase(name: "anisotropic", inChannels: 1, outChannels: 2, kernel: Triple(3, 1, 2), stride: Triple(2, 1, 2),
             padding: Triple(1, 0, 0), outputPadding: Triple(1, 0, 1), input: [2, 1, 3, 4, 2]),
    // Six output channels: the transposed convolution's underlying unfolding is channels-last.
    ConvCase(name: "6 output channels stride 2 (channels-last)", inChannels: 2, outChannels: 6, kernel: Triple(3), stride: Triple(2),
             padding: Triple(1), outputPadding: Triple(1), input: [2, 2, 2, 3, 2]),
]

@Suite struct ConvolutionTests {
    @Test(arguments: convolutionCases)
    func conv3dForwardMatchesDirectLoops(_ c: ConvCase) throws {
        var generator = Xoshiro256StarStar(seed: 51)
        let layer = Conv3d(inChannels: c.inChannels, outChannels: c.outChannels, kernel: c.kernel, stride: c.stride,
                           padding: c.padding, using: &generator)
        layer.bias.value = random([c.outChannels], seed: 52)
        let x = random(c.input, seed: 53)
        let y = try layer.forward(x, mode: .inference)
        let expected = referenceConv3d(x, weight: layer.weight.value, bias: layer.bias.value, stride: c.stride, padding: c.padding)
        #expect(y.shape == expected.shape)
        #expect(TestSupport.isClose(y, expected, rtol: 1e-4, atol: 1e-5))
    }

    @Test(arguments: convolutionCases)
    func conv3dGradientsMatchFiniteDifferences(_ c: ConvCase) throws {
        var generator = Xoshiro256StarStar(seed: 61)
        let layer = Conv3d(inChannels: c.inChannels, outChannels: c.outChannels, kernel: c.kernel, stride: c.stride,
                           padding: c.padding, using: &generator)
        layer.bias.value = random([c.outChannels], seed: 62)
        let (error, location) = try TestSupport.gradientCheck(layer, input: random(c.input, seed: 63))
        #expect(error < linearGradientTolerance, "\(location)")
    }

    @Test(arguments: transposedCases)
    func convTranspose3dForwardMatchesScatterDefinition(_ c: ConvCase) throws {
        var generator = Xoshiro256StarStar(seed: 71)
        let layer = try ConvTranspose3d(inChannels: c.inChannels, outChannels: c.outChannels, kernel: c.kernel,
                                        stride: c.stride, padding: c.padding, outputPadding: c.outputPadding, using: &generator)
        #expect(layer.weight.value.shape == [c.inChannels, c.outChannels] + c.kernel.array)
        layer.bias.value = random([c.outChannels], seed: 72)
        let x = random(c.input, seed: 73)
        let y = try layer.forward(x, mode: .inference)
        let expected = referenceConvTranspose3d(x, weight: layer.weight.value, bias: layer.bias.value, stride: c.stride,
                                                padding: c.padding, outputPadding: c.outputPadding)
        #expect(y.shape == expected.shape)
        #expect(TestSupport.isClose(y, expected, rtol: 1e-4, atol: 1e-5))
    }

    @Test(arguments: transposedCases)
    func convTranspose3dGradientsMatchFiniteDifferences(_ c: ConvCase) throws {
        var generator = Xoshiro256StarStar(seed: 81)
        let layer = try ConvTranspose3d(inChannels: c.inChannels, outChannels: c.outChannels, kernel: c.kernel,
                                        stride: c.stride, padding: c.padding, outputPadding: c.outputPadding, using: &generator)
        layer.bias.value = random([c.outChannels], seed: 82)
        let (error, location) = try TestSupport.gradientCheck(layer, input: random(c.input, seed: 83))
        #expect(error < linearGradientTolerance, "\(location)")
    }

    @Test func convTransposeStride2RestoresConvInputSize() throws {
        // A stride-2 k3 p1 conv maps 6 -> 3 and 5 -> 3; ConvTranspose3d with outputPadding 1
        // maps 3 back to 6 (PyTorch's usual decoder pairing).
        var generator = Xoshiro256StarStar(seed: 91)
        let down = Conv3d(inChannels: 1, outChannels: 2, kernel: Triple(3), stride: Triple(2), padding: Triple(1), using: &generator)
        let up = try ConvTranspose3d(inChannels: 2, outChannels: 1, kernel: Triple(3), stride: Triple(2), padding: Triple(1),
                                     outputPadding: Triple(1), using: &generator)
        let x = random([2, 1, 6, 6, 6], seed: 92)
        let code = try down.forward(x, mode: .inference)
        #expect(code.shape == [2, 2, 3, 3, 3])
        #expect(try up.forward(code, mode: .inference).shape == [2, 1, 6, 6, 6])
    }

    @Test func convTransposeIsAdjointOfConv() throws {
        // <conv(x; W), y> == <x, convT(y; W)> for shared weights and zero biases.
        var generator = Xoshiro256StarStar(seed: 93)
        let conv = Conv3d(inChannels: 2, outChannels: 3, kernel: Triple(3, 2, 3), stride: Triple(2, 1, 2), padding: Triple(1, 0, 1),
                          using: &generator)
        let transposed = try ConvTranspose3d(inChannels: 3, outChannels: 2, kernel: Triple(3, 2, 3), stride: Triple(2, 1, 2),
                                             padding: Triple(1, 0, 1), using: &generator)
        transposed.weight.value = conv.weight.value
        let x = random([2, 2, 5, 4, 5], seed: 94)
        let cx = try conv.forward(x, mode: .inference)
        let y = random(cx.shape, seed: 95)
        let ty = try transposed.forward(y, mode: .inference)
        #expect(ty.shape == x.shape)
        func dot(_ a: Tensor, _ b: Tensor) -> Double { zip(a.scalars, b.scalars).reduce(0) { $0 + Double($1.0) * Double($1.1) } }
        let (lhs, rhs) = (dot(cx, y), dot(x, ty))
        #expect(abs(lhs - rhs) <= 1e-4 * max(1, abs(lhs)))
    }
}

// MARK: - Pooling and upsampling

struct PoolCase: Sendable, CustomTestStringConvertible {
    var name: String
    var kernel: Triple
    var stride: Triple?
    var input: [Int]
    var testDescription: String { name }
}

let maxPoolCases: [PoolCase] = [
    PoolCase(name: "kernel 2 on odd sizes", kernel: Triple(2), stride: nil, input: [2, 2, 5, 5, 3]),
    PoolCase(name: "kernel 3 stride 2 on odd sizes", kernel: Triple(3), stride: Triple(2), input: [2, 2, 7, 5, 5]),
    PoolCase(name: "anisotropic kernel (2,3,1) stride (1,2,1)", kernel: Triple(2, 3, 1), stride: Triple(1, 2, 1), input: [2, 1, 3, 7, 2]),
]

let avgPoolCases: [PoolCase] = [
    PoolCase(name: "kernel 2", kernel: Triple(2), stride: nil, input: [2, 2, 5, 4, 3]),
    PoolCase(name: "kernel 3 stride 2 on odd sizes", kernel: Triple(3), stride: Triple(2), input: [2, 1, 7, 5, 5]),
    PoolCase(name: "anisotropic kernel (3,2,1) stride (1,2,2)", kernel: Triple(3, 2, 1), stride: Triple(1, 2, 2), input: [2, 2, 4, 5, 3]),
]

struct UpsampleCase: Sendable, CustomTestStringConvertible {
    var factor: Triple
    var trilinear: Bool
    var input: [Int]
    var testDescription: String { "\(trilinear ? "trilinear" : "nearest") ×\(factor)" }
}

let upsampleCases: [UpsampleCase] = [
    UpsampleCase(factor: Triple(2), trilinear: false, input: [2, 2, 2, 3, 2]),
    UpsampleCase(factor: Triple(2, 1, 3), trilinear: false, input: [2, 1, 3, 2, 2]),
    UpsampleCase(factor: Triple(2), trilinear: true, input: [2, 2, 3, 2, 3]),
    UpsampleCase(factor: Triple(3, 2, 1), trilinear: true, input: [2, 1, 2, 3, 2]),
]

@Suite struct PoolingTests {
    @Test(arguments: maxPoolCases)
    func maxPoolForwardAndGradients(_ c: PoolCase) throws {
        let layer = MaxPool3d(kernel: c.kernel, stride: c.stride)
        // Distinct values (gap 0.03 > step 0.01): no window has a tie or a near tie.
        let x = distinctTensor(c.input, seed: 101)
        let y = try layer.forward(x, mode: .training)
        #expect(y == referencePool(x, kernel: c.kernel, stride: c.stride ?? c.kernel, max: true))
        let (error, location) = try TestSupport.gradientCheck(layer, input: x)
        #expect(error < gradientTolerance, "\(location)")
    }

    @Test func maxPoolRoutesGradientToTheMaximum() throws {
        let layer = MaxPool3d(kernel: Triple(2))
        // One 2x2x2 window whose maximum (9) sits at flat index 5.
        let x = try Tensor(shape: [1, 1, 2, 2, 2], scalars: [1, 2, 3, 4, 5, 9, 7, 8])
        #expect(try layer.forward(x, mode: .training).scalars == [9])
        let dx = try layer.backward(try Tensor(shape: [1, 1, 1, 1, 1], scalars: [2.5]))
        #expect(dx.scalars == [0, 0, 0, 0, 0, 2.5, 0, 0])
    }

    @Test(arguments: [Triple(2), Triple(3)])
    func maxPoolPropagatesNaNLikePyTorch(kernel: Triple) throws {
        // A single window whose first element is NaN: PyTorch's max_pool3d returns NaN.
        var x = distinctTensor([1, 1] + kernel.array, seed: 103)
        x[flat: 0] = .nan
        let y = try MaxPool3d(kernel: kernel).forward(x, mode: .inference)
        #expect(y.count == 1)
        #expect(y.scalars[0].isNaN, "window max is \(y.scalars[0])")
    }

    @Test(arguments: avgPoolCases)
    func avgPoolForwardAndGradients(_ c: PoolCase) throws {
        let layer = AvgPool3d(kernel: c.kernel, stride: c.stride)
        let x = random(c.input, seed: 111)
        let y = try layer.forward(x, mode: .training)
        #expect(TestSupport.isClose(y, referencePool(x, kernel: c.kernel, stride: c.stride ?? c.kernel, max: false)))
        let (error, location) = try TestSupport.gradientCheck(layer, input: x)
        #expect(error < linearGradientTolerance, "\(location)")
    }

    @Test(arguments: upsampleCases)
    func upsampleForwardAndGradients(_ c: UpsampleCase) throws {
        let layer = try Upsample3d(factor: c.factor, mode: c.trilinear ? .trilinear : .nearest)
        let x = random(c.input, seed: 121)
        let y = try layer.forward(x, mode: .training)
        #expect(TestSupport.isClose(y, referenceUpsample(x, factor: c.factor, trilinear: c.trilinear)))
        let (error, location) = try TestSupport.gradientCheck(layer, input: x)
        #expect(error < linearGradientTolerance, "\(location)")
    }

    @Test func upsampleHandComputedValues() throws {
        let x = try Tensor(shape: [1, 1, 1, 1, 2], scalars: [0, 1])
        let linear = try Upsample3d(factor: Triple(1, 1, 2), mode: .trilinear).forward(x, mode: .inference)
        // align_corners=False: sources -0.25→0 (clamped), 0.25, 0.75, 1.25→1 (clamped high tap).
        #expect(TestSupport.isClose(linear, try Tensor(shape: [1, 1, 1, 1, 4], scalars: [0, 0.25, 0.75, 1])))
        let nearest = try Upsample3d(factor: Triple(1, 1, 2), mode: .nearest).forward(x, mode: .inference)
        #expect(nearest.scalars == [0, 0, 1, 1])
    }
}

// MARK: - BatchNorm

@Suite struct BatchNormTests {
    static func makeLayer(features: Int, spatial: Bool, seed: UInt64) -> BatchNorm {
        let layer = BatchNorm(features: features, spatial: spatial)
        layer.weight.value = random([features], seed: seed, low: 0.5, high: 1.5)
        layer.bias.value = random([features], seed: seed + 1)
        return layer
    }

    @Test(arguments: [false, true])
    func trainingForwardUsesBatchStatisticsAndUpdatesRunningOnes(spatial: Bool) throws {
        let layer = Self.makeLayer(features: 3, spatial: spatial, seed: 131)
        let shape = spatial ? [2, 3, 3, 2, 2] : [6, 3]
        let x = random(shape, seed: 133, low: -2, high: 3)
        let y = try layer.forward(x, mode: .training)
        let (mean, variance) = referenceChannelStatistics(x)
        let expected = referenceBatchNorm(x, mean: mean, variance: variance, gamma: layer.weight.value, beta: layer.bias.value,
                                          epsilon: 1e-5)
        #expect(TestSupport.isClose(y, expected, rtol: 1e-4, atol: 1e-4))
        // running = 0.9·initial + 0.1·batch, with the unbiased variance.
        let m = Double(x.count / 3)
        #expect(TestSupport.isClose(layer.runningMean, tensor([3], mean.map { 0.1 * $0 })))
        #expect(TestSupport.isClose(layer.runningVariance, tensor([3], variance.map { 0.9 + 0.1 * $0 * m / (m - 1) })))
        #expect(layer.batchesTracked == 1)
        _ = try layer.forward(x, mode: .training)
        #expect(layer.batchesTracked == 2)
        #expect(TestSupport.isClose(layer.runningMean, tensor([3], mean.map { 0.9 * 0.1 * $0 + 0.1 * $0 })))
    }

    @Test(arguments: [false, true])
    func inferenceForwardUsesRunningStatistics(spatial: Bool) throws {
        let layer = Self.makeLayer(features: 2, spatial: spatial, seed: 141)
        let shape = spatial ? [2, 2, 2, 3, 2] : [5, 2]
        for seed in 0..<3 { _ = try layer.forward(random(shape, seed: 143 + UInt64(seed), low: -1, high: 4), mode: .training) }
        let (runningMean, runningVariance) = (layer.runningMean, layer.runningVariance)
        let x = random(shape, seed: 150)
        let y = try layer.forward(x, mode: .inference)
        let expected = referenceBatchNorm(x, mean: runningMean.scalars.map(Double.init), variance: runningVariance.scalars.map(Double.init),
                                          gamma: layer.weight.value, beta: layer.bias.value, epsilon: 1e-5)
        #expect(TestSupport.isClose(y, expected, rtol: 1e-4, atol: 1e-5))
        // Inference leaves the running statistics alone.
        #expect(layer.runningMean == runningMean)
        #expect(layer.runningVariance == runningVariance)
        #expect(layer.batchesTracked == 3)
    }

    @Test func batchNorm1dTrainingGradients() throws {
        let layer = Self.makeLayer(features: 3, spatial: false, seed: 161)
        let (error, location) = try TestSupport.gradientCheck(layer, input: random([5, 3], seed: 163, low: -2, high: 2))
        #expect(error < gradientTolerance, "\(location)")
    }

    @Test func batchNorm3dTrainingGradients() throws {
        let layer = Self.makeLayer(features: 2, spatial: true, seed: 171)
        let (error, location) = try TestSupport.gradientCheck(layer, input: random([2, 2, 3, 4, 2], seed: 173, low: -2, high: 2))
        #expect(error < gradientTolerance, "\(location)")
    }

    @Test(arguments: [false, true])
    func inferenceGradients(spatial: Bool) throws {
        let layer = Self.makeLayer(features: 2, spatial: spatial, seed: 181)
        let shape = spatial ? [2, 2, 3, 2, 2] : [4, 2]
        _ = try layer.forward(random(shape, seed: 183, low: -1, high: 3), mode: .training)
        let error = try gradientCheck(layer, input: random(shape, seed: 185), mode: .inference)
        #expect(error < linearGradientTolerance)
    }
}

// MARK: - Activations

@Suite struct ActivationTests {
    static let shape = [2, 2, 3, 2, 2]

    @Test func reluValuesAndGradients() throws {
        let x = distinctTensor(Self.shape, seed: 191)
        let y = try ReLU().forward(x, mode: .inference)
        #expect(y.scalars == x.scalars.map { max(0, $0) })
        let (error, location) = try TestSupport.gradientCheck(ReLU(), input: x)
        #expect(error < gradientTolerance, "\(location)")
    }

    @Test func leakyReluValuesAndGradients() throws {
        let x = distinctTensor(Self.shape, seed: 193)
        let layer = LeakyReLU(slope: 0.1)
        let y = try layer.forward(x, mode: .inference)
        #expect(TestSupport.isClose(y, x.map { $0 > 0 ? $0 : 0.1 * $0 }))
        let (error, location) = try TestSupport.gradientCheck(layer, input: x)
        #expect(error < gradientTolerance, "\(location)")
    }

    @Test func sigmoidValuesAndGradients() throws {
        let x = random(Self.shape, seed: 195, low: -4, high: 4)
        let y = try Sigmoid().forward(x, mode: .inference)
        #expect(TestSupport.isClose(y, tensor(x.shape, x.scalars.map { 1 / (1 + exp(-Double($0))) }), rtol: 1e-5, atol: 1e-6))
        let extreme = try Sigmoid().forward(try Tensor(shape: [4], scalars: [-200, -30, 30, 200]), mode: .inference)
        #expect(extreme.isFinite)
        #expect(extreme.scalars[0] == 0 && extreme.scalars[3] == 1)
        #expect(abs(extreme.scalars[1] - Float(exp(-30.0))) < 1e-15)
        let (error, location) = try TestSupport.gradientCheck(Sigmoid(), input: x)
        #expect(error < gradientTolerance, "\(location)")
    }

    @Test func tanhValuesAndGradients() throws {
        let x = random(Self.shape, seed: 197, low: -3, high: 3)
        let y = try Tanh().forward(x, mode: .inference)
        #expect(TestSupport.isClose(y, tensor(x.shape, x.scalars.map { tanh(Double($0)) }), rtol: 1e-5, atol: 1e-6))
        let (error, location) = try TestSupport.gradientCheck(Tanh(), input: x)
        #expect(error < gradientTolerance, "\(location)")
    }

    @Test func softmaxValuesAndGradients() throws {
        let x = random([2, 5], seed: 199, low: -3, high: 3)
        let y = try Softmax().forward(x, mode: .inference)
        var expected: [Double] = []
        for row in 0..<2 {
            let z = x.scalars[(row * 5)..<(row * 5 + 5)].map(Double.init)
            let total = z.map(exp).reduce(0, +)
            expected += z.map { exp($0) / total }
        }
        #expect(TestSupport.isClose(y, tensor([2, 5], expected), rtol: 1e-5, atol: 1e-6))
        let (error, location) = try TestSupport.gradientCheck(Softmax(), input: x)
        #expect(error < gradientTolerance, "\(location)")
    }

    @Test func softmaxIsStableForLargeLogits() throws {
        let y = try Softmax.probabilities(try Tensor(shape: [2, 3], scalars: [1000, 0, 1000, -1000, -1000, -999]))
        #expect(y.isFinite)
        #expect(TestSupport.isClose(y, tensor([2, 3], [0.5, 0, 0.5, 1 / (2 + M_E), 1 / (2 + M_E), M_E / (2 + M_E)]), atol: 1e-6))
    }
}

// MARK: - Sequential

@Suite struct SequentialTests {
    static func makeStack(seed: UInt64) -> Sequential {
        var generator = Xoshiro256StarStar(seed: seed)
        return Sequential([
            Conv3d(inChannels: 1, outChannels: 2, kernel: Triple(3), padding: Triple(1), using: &generator),
            ReLU(),
            MaxPool3d(kernel: Triple(2)),
            Flatten(),
            Dense(inFeatures: 2 * 2 * 2 * 1, outFeatures: 3, using: &generator),
        ])
    }

    @Test func stateNamesFollowPyTorch() {
        let model = Self.makeStack(seed: 201)
        #expect(model.namedParameters().map(\.name) == ["0.weight", "0.bias", "4.weight", "4.bias"])
        #expect(model.parameterCount == (2 * 27 + 2) + (3 * 8 + 3))
    }

    @Test func forwardIsTheCompositionOfItsLayers() throws {
        let model = Self.makeStack(seed: 203)
        let x = random([2, 1, 4, 4, 2], seed: 204)
        var y = x
        for layer in model.layers { y = try layer.forward(y, mode: .inference) }
        #expect(try model.forward(x, mode: .inference) == y)
        #expect(y.shape == [2, 3])
    }

    @Test func stackGradientsMatchFiniteDifferences() throws {
        // Conv3d -> ReLU -> MaxPool3d -> Flatten -> Dense. With this seed no ReLU input lies
        // within reach of zero and no pooling window has a near tie, so the piecewise-linear
        // kinks are not crossed by the ±1e-2 probes (the tolerance below is met).
        let model = Self.makeStack(seed: 205)
        let (error, location) = try TestSupport.gradientCheck(model, input: random([2, 1, 4, 4, 2], seed: 206))
        #expect(error < gradientTolerance, "\(location)")
    }
}

// MARK: - Execution shortcuts

struct ActivationCase: Sendable, CustomTestStringConvertible {
    var name: String
    var make: @Sendable () -> any Layer
    var testDescription: String { name }
}

let activationsBeforePooling: [ActivationCase] = [
    ActivationCase(name: "ReLU", make: { ReLU() }),
    ActivationCase(name: "LeakyReLU(0.1)", make: { LeakyReLU(slope: 0.1) }),
    // A negative slope is not monotone, so it must not be swapped with the pooling.
    ActivationCase(name: "LeakyReLU(-0.5)", make: { LeakyReLU(slope: -0.5) }),
    ActivationCase(name: "Sigmoid", make: { Sigmoid() }),
    ActivationCase(name: "Tanh", make: { Tanh() }),
]

@Suite struct ExecutionShortcutTests {
    /// Sequential may run an activation followed by MaxPool3d in the other order; outputs and
    /// input gradients must equal running the layers one by one in definition order.
    @Test(arguments: activationsBeforePooling)
    func activationThenMaxPoolMatchesLayerByLayer(_ c: ActivationCase) throws {
        let x = distinctTensor([2, 2, 4, 3, 4], seed: 701, gap: 0.01)
        let g = random([2, 2, 2, 1, 2], seed: 702)
        let model = Sequential([c.make(), MaxPool3d(kernel: Triple(2))])
        let (activation, pool) = (c.make(), MaxPool3d(kernel: Triple(2)))
        let expected = try pool.forward(try activation.forward(x, mode: .training), mode: .training)
        let expectedGradient = try activation.backward(try pool.backward(g))
        #expect(try model.forward(x, mode: .training) == expected)
        #expect(TestSupport.isClose(try model.backward(g), expectedGradient, rtol: 1e-6, atol: 1e-7))
        #expect(try model.forward(x, mode: .inference) == expected)
    }

    static func makeModels(seed: UInt64) throws -> [(String, any Layer, [Int])] {
        var generator = Xoshiro256StarStar(seed: seed)
        return [
            ("Dense", Dense(inFeatures: 4, outFeatures: 3, using: &generator), [2, 4]),
            ("Conv3d", Conv3d(inChannels: 2, outChannels: 3, kernel: Triple(3), stride: Triple(2), padding: Triple(1),
                              using: &generator), [2, 2, 5, 4, 3]),
            ("ConvTranspose3d", try ConvTranspose3d(inChannels: 2, outChannels: 1, kernel: Triple(3), stride: Triple(2),
                                                    padding: Triple(1), outputPadding: Triple(1), using: &generator), [2, 2, 3, 2, 3]),
            ("BatchNorm", BatchNorm(features: 2, spatial: true), [2, 2, 3, 2, 2]),
            ("Sequential", Sequential([
                try Upsample3d(factor: Triple(2)),
                Conv3d(inChannels: 1, outChannels: 2, kernel: Triple(3), padding: Triple(1), using: &generator),
                ReLU(),
                MaxPool3d(kernel: Triple(2)),
                BatchNorm(features: 2, spatial: true),
                Flatten(),
                Dense(inFeatures: 2 * 2 * 3 * 2, outFeatures: 2, using: &generator),
                Sigmoid(),
            ]), [2, 1, 2, 3, 2]),
        ]
    }

    /// `accumulateParameterGradients` (which may skip the input gradient) must add the same
    /// parameter gradients as `backward`.
    @Test func accumulateParameterGradientsMatchesBackward() throws {
        for ((name, viaBackward, shape), (_, viaAccumulate, _)) in zip(try Self.makeModels(seed: 711), try Self.makeModels(seed: 711)) {
            let x = random(shape, seed: 712)
            let y = try viaBackward.forward(x, mode: .training)
            #expect(try viaAccumulate.forward(x, mode: .training) == y, "\(name)")
            let g = random(y.shape, seed: 713)
            viaBackward.zeroGradients()
            viaAccumulate.zeroGradients()
            _ = try viaBackward.backward(g)
            try viaAccumulate.accumulateParameterGradients(g)
            let (a, b) = (viaBackward.namedParameters(), viaAccumulate.namedParameters())
            #expect(a.count == b.count && !a.isEmpty, "\(name)")
            for (p, q) in zip(a, b) {
                #expect(p.parameter.gradient.scalars.contains { $0 != 0 }, "\(name) \(p.name)")
                #expect(TestSupport.isClose(q.parameter.gradient, p.parameter.gradient, rtol: 1e-5, atol: 1e-6), "\(name) \(p.name)")
            }
        }
    }
}
