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
