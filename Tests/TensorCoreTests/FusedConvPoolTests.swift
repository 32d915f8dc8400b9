import Testing
import TensorCore
import TestSupport

/// `Conv3dKernels.forwardMaxPooled` must equal `forward` then `Pool3dKernels.maxPool`:
/// the same pooled values and the same indices into the convolution's output planes.
@Test(arguments: [
    (inChannels: 1, outChannels: 3, input: Triple(7, 9, 11), batch: 2),    // planar unfolding, odd sizes
    (inChannels: 16, outChannels: 4, input: Triple(6, 5, 20), batch: 3),   // channels-last, several chunks
    (inChannels: 2, outChannels: 2, input: Triple(9, 12, 34), batch: 1),   // one sample split across workers
])
func fusedConvolutionAndPoolingMatchesSeparatePasses(_ c: (inChannels: Int, outChannels: Int, input: Triple, batch: Int)) throws {
    let g = try ConvGeometry(inChannels: c.inChannels, outChannels: c.outChannels, kernel: Triple(3), stride: Triple(1),
                             padding: Triple(1), input: c.input)
    let x = TestSupport.randomTensor(g.inputShape(c.batch), seed: 11)
    let w = TestSupport.randomTensor(g.weightShape, seed: 12)
    let b = TestSupport.randomTensor([c.outChannels], seed: 13)
    let full = Conv3dKernels.forward(g, input: x, weight: w, bias: b)
    let pooledExtent = Triple(g.output.d / 2, g.output.h / 2, g.output.w / 2)
    let (expected, expectedIndices) = Pool3dKernels.maxPool(full, kernel: Triple(2), stride: Triple(2), output: pooledExtent)
    let (fused, indices) = Conv3dKernels.forwardMaxPooled(g, input: x, weight: w, bias: b)
    #expect(fused.shape == expected.shape)
    #expect(TestSupport.isClose(fused, expected, rtol: 1e-5, atol: 1e-5))
    #expect(indices == expectedIndices)
}

/// The weight gradient summed over pooling winners only equals the dense route:
/// max-pool backward to the full-size gradient, then the convolution's weight gradient.
@Test(arguments: [
    (inChannels: 1, stride: 1, input: Triple(7, 9, 11), batch: 3),
    (inChannels: 2, stride: 2, input: Triple(10, 9, 12), batch: 2),
])
func weightGradientThroughMaxPoolMatchesDenseRoute(_ c: (inChannels: Int, stride: Int, input: Triple, batch: Int)) throws {
    let g = try ConvGeometry(inChannels: c.inChannels, outChannels: 4, kernel: Triple(3), stride: Triple(c.stride),
                             padding: Triple(1), input: c.input)
    let x = TestSupport.randomTensor(g.inputShape(c.batch), seed: 31)
    let w = TestSupport.randomTensor(g.weightShape, seed: 32)
    let (pooled, indices) = Conv3dKernels.forwardMaxPooled(g, input: x, weight: w, bias: nil)
    // A pooled gradient with some exact zeros, as after a ReLU.
    let gradPooled = TestSupport.randomTensor(pooled.shape, seed: 33).map { $0 < -0.3 ? 0 : $0 }
    let full = Pool3dKernels.maxPoolBackward(gradPooled, indices: indices, inputShape: g.outputShape(c.batch))
    let dense = Conv3dKernels.backwardWeights(g, input: x, gradOutput: full)
    let sparse = Conv3dKernels.weightGradientThroughMaxPool(g, input: x, gradPooled: gradPooled, indices: indices)
    #expect(TestSupport.isClose(sparse.weight, dense.weight, rtol: 1e-4, atol: 1e-4))
    #expect(TestSupport.isClose(sparse.bias, dense.bias, rtol: 1e-4, atol: 1e-4))
}
