import Foundation
import NeuralNet
import Testing
import TensorCore
import TestSupport

@Test func halfSumSquaredErrorMatchesDefinitionAndFiniteDifferences() throws {
    let p = TestSupport.randomTensor([3, 4], seed: 1)
    let t = TestSupport.randomTensor([3, 4], seed: 2)
    let loss = try Loss.halfSumSquaredError(p, t)
    var expected = 0.0
    for (a, b) in zip(p.scalars, t.scalars) { expected += Double(a - b) * Double(a - b) }
    #expect(abs(Double(loss.value) - 0.5 * expected / 3) < 1e-5)
    let numeric = TestSupport.numericalGradient(of: { x in Double(try! Loss.halfSumSquaredError(x, t).value) }, at: p, step: 1e-2)
    #expect(TestSupport.isClose(loss.gradient, numeric, rtol: 1e-2, atol: 1e-3))
    #expect(throws: TensorError.self) { try Loss.halfSumSquaredError(p, TestSupport.randomTensor([4, 3], seed: 3)) }
}

@Test func reluAndLeakyReluKeepNaNAsPyTorchDoes() throws {
    let x = try Tensor(shape: [4], scalars: [-1, .nan, 2, 0])
    let relu = try ReLU().forward(x, mode: .inference)
    #expect(relu.scalars[0] == 0 && relu.scalars[1].isNaN && relu.scalars[2] == 2 && relu.scalars[3] == 0)
    let leaky = try LeakyReLU(slope: 0.1).forward(x, mode: .inference)
    #expect(abs(leaky.scalars[0] + 0.1) < 1e-7 && leaky.scalars[1].isNaN && leaky.scalars[2] == 2)
}

@Test func firstTrainableLayerSkipsOnlyTheInputGradient() throws {
    // accumulateParameterGradients on a Sequential whose first layer has no parameters.
    var generator = Xoshiro256StarStar(seed: 4)
    let make = { (generator: inout Xoshiro256StarStar) in
        Sequential([Flatten(), Dense(inFeatures: 8, outFeatures: 3, using: &generator), Tanh(), Dense(inFeatures: 3, outFeatures: 2, using: &generator)])
    }
    var copy = generator
    let a = make(&generator)
    let b = make(&copy)
    let x = TestSupport.randomTensor([5, 2, 4], seed: 5)
    let g = TestSupport.randomTensor([5, 2], seed: 6)
    _ = try a.forward(x, mode: .training)
    _ = try b.forward(x, mode: .training)
    _ = try a.backward(g)
    try b.accumulateParameterGradients(g)
    for (p, q) in zip(a.parameters(), b.parameters()) { #expect(p.gradient == q.gradient) }
}

/// Sequential fuses Conv3d + MaxPool3d(2) (after moving the activation behind the pooling);
/// outputs and all gradients must match running the same layers one by one.
@Test(arguments: [1, 16])
func fusedConvolutionPoolingInSequentialMatchesLayerByLayer(inChannels: Int) throws {
    func layers() -> (Conv3d, ReLU, MaxPool3d) {
        var generator = Xoshiro256StarStar(seed: 21)
        return (Conv3d(inChannels: inChannels, outChannels: 3, kernel: Triple(3), padding: Triple(1), using: &generator),
                ReLU(), MaxPool3d(kernel: Triple(2)))
    }
    let (conv, relu, pool) = layers()
    let model = Sequential([conv, relu, pool])
    let (refConv, refRelu, refPool) = layers()
    let x = TestSupport.randomTensor([2, inChannels, 5, 7, 6], seed: 22)
    let y = try model.forward(x, mode: .training)
    let expected = try refPool.forward(try refRelu.forward(try refConv.forward(x, mode: .training), mode: .training), mode: .training)
    #expect(TestSupport.isClose(y, expected, rtol: 1e-5, atol: 1e-6))
    let g = TestSupport.randomTensor(y.shape, seed: 23)
    let dx = try model.backward(g)
    let expectedDx = try refConv.backward(try refRelu.backward(try refPool.backward(g)))
    #expect(TestSupport.isClose(dx, expectedDx, rtol: 1e-4, atol: 1e-5))
    #expect(TestSupport.isClose(conv.weight.gradient, refConv.weight.gradient, rtol: 1e-4, atol: 1e-5))
    #expect(TestSupport.isClose(conv.bias.gradient, refConv.bias.gradient, rtol: 1e-4, atol: 1e-5))
    // Inference through the fused path gives the same values and keeps no caches.
    #expect(TestSupport.isClose(try model.forward(x, mode: .inference), expected, rtol: 1e-5, atol: 1e-6))
}

/// Training a first Conv3d + MaxPool3d through `accumulateParameterGradients` (which takes
/// the pooled-winners route for few input channels) gives `backward`'s parameter gradients.
@Test func parameterGradientsThroughFusedFirstLayerMatchBackward() throws {
    func model() -> Sequential {
        var generator = Xoshiro256StarStar(seed: 41)
        return Sequential([
            Conv3d(inChannels: 1, outChannels: 4, kernel: Triple(3), padding: Triple(1), using: &generator), ReLU(),
            MaxPool3d(kernel: Triple(2)), Flatten(), Dense(inFeatures: 4 * 3 * 3 * 4, outFeatures: 2, using: &generator),
        ])
    }
    let (a, b) = (model(), model())
    let x = TestSupport.randomTensor([3, 1, 6, 7, 9], seed: 42)
    let g = TestSupport.randomTensor([3, 2], seed: 43)
    _ = try a.forward(x, mode: .training)
    _ = try b.forward(x, mode: .training)
    _ = try a.backward(g)
    try b.accumulateParameterGradients(g)
    for (p, q) in zip(a.namedParameters(), b.namedParameters()) {
        #expect(TestSupport.isClose(q.parameter.gradient, p.parameter.gradient, rtol: 1e-4, atol: 1e-5), "\(p.name)")
    }
}

@Test func flattenKeepsTheFeatureCountOfAnEmptyBatch() throws {
    #expect(try Flatten().forward(Tensor(zeros: [0, 2, 3]), mode: .inference).shape == [0, 6])
}

@Test func failedCheckpointLoadLeavesTheModelUnchanged() throws {
    var generator = Xoshiro256StarStar(seed: 51)
    let model = Sequential([Dense(inFeatures: 3, outFeatures: 2, using: &generator), Dense(inFeatures: 2, outFeatures: 1, using: &generator)])
    let before = model.parameters().map(\.value)
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("partial-\(UUID().uuidString).safetensors")
    defer { try? FileManager.default.removeItem(at: url) }
    // Right first layer, wrong second: nothing may be assigned.
    try SafeTensors.write([("0.weight", .float32(Tensor(repeating: 7, shape: [2, 3]))), ("0.bias", .float32(Tensor(zeros: [2]))),
                           ("1.weight", .float32(Tensor(zeros: [5, 5]))), ("1.bias", .float32(Tensor(zeros: [1])))], to: url)
    #expect(throws: NeuralNetError.self) { try Checkpoint.load(model, from: url) }
    #expect(model.parameters().map(\.value) == before)
}
