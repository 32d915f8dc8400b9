import NeuralNet
import Testing
import TensorCore
import TestSupport

@Test func denseGradientSmoke() throws {
    var generator = Xoshiro256StarStar(seed: 1)
    let layer = Dense(inFeatures: 3, outFeatures: 2, using: &generator)
    let (error, location) = try TestSupport.gradientCheck(layer, input: TestSupport.randomTensor([4, 3], seed: 2))
    #expect(error < 1e-2, "\(location)")
}
