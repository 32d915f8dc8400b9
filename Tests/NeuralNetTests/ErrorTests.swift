import Foundation
import NeuralNet
import Testing
import TensorCore
import TestSupport

/// A freshly built layer, its name in `backwardWithoutForward`, a valid input and a valid
/// output gradient shape.
struct LayerCase: @unchecked Sendable, CustomTestStringConvertible {
    var name: String
    var make: @Sendable () throws -> any Layer
    var input: [Int]
    var testDescription: String { name }
}

let layerCases: [LayerCase] = [
    LayerCase(name: "Dense", make: {
        var g = Xoshiro256StarStar(seed: 1)
        return Dense(inFeatures: 3, outFeatures: 2, using: &g)
    }, input: [2, 3]),
    LayerCase(name: "Conv3d", make: {
        var g = Xoshiro256StarStar(seed: 1)
        return Conv3d(inChannels: 1, outChannels: 2, kernel: Triple(3), padding: Triple(1), using: &g)
    }, input: [2, 1, 3, 3, 3]),
    LayerCase(name: "ConvTranspose3d", make: {
        var g = Xoshiro256StarStar(seed: 1)
        return try ConvTranspose3d(inChannels: 2, outChannels: 1, kernel: Triple(2), stride: Triple(2), using: &g)
    }, input: [2, 2, 2, 2, 2]),
    LayerCase(name: "ReLU", make: { ReLU() }, input: [2, 4]),
    LayerCase(name: "LeakyReLU", make: { LeakyReLU() }, input: [2, 4]),
    LayerCase(name: "Sigmoid", make: { Sigmoid() }, input: [2, 4]),
    LayerCase(name: "Tanh", make: { Tanh() }, input: [2, 4]),
    LayerCase(name: "Softmax", make: { Softmax() }, input: [2, 4]),
    LayerCase(name: "MaxPool3d", make: { MaxPool3d(kernel: Triple(2)) }, input: [2, 1, 4, 4, 2]),
    LayerCase(name: "AvgPool3d", make: { AvgPool3d(kernel: Triple(2)) }, input: [2, 1, 4, 4, 2]),
    LayerCase(name: "Upsample3d", make: { try Upsample3d(factor: Triple(2)) }, input: [2, 1, 2, 2, 2]),
    LayerCase(name: "Flatten", make: { Flatten() }, input: [2, 1, 2, 2, 2]),
    LayerCase(name: "BatchNorm", make: { BatchNorm(features: 2, spatial: true) }, input: [2, 2, 2, 2, 2]),
    LayerCase(name: "Sequential", make: {
        var g = Xoshiro256StarStar(seed: 1)
        return Sequential([Dense(inFeatures: 3, outFeatures: 2, using: &g), ReLU()])
    }, input: [2, 3]),
]

@Suite struct BackwardOrderErrorTests {
    @Test(arguments: layerCases)
    func backwardBeforeForwardThrows(_ c: LayerCase) throws {
        let layer = try c.make()
        // The gradient's shape is that of a real output, so only the missing forward is wrong.
        let outputShape = try c.make().forward(Tensor(repeating: 0.5, shape: c.input), mode: .inference).shape
        let error = #expect(throws: NeuralNetError.self) { try layer.backward(Tensor(repeating: 1, shape: outputShape)) }
        guard let error else { return }
        guard case let .backwardWithoutForward(name) = error else {
            Issue.record("expected backwardWithoutForward, got \(error)")
            return
        }
        // Sequential reports its last layer.
        #expect(name == (c.name == "Sequential" ? "ReLU" : c.name))
        #expect(error.description.contains("backward called without a training-mode forward pass"))
    }

    @Test(arguments: ["Dense", "Conv3d", "ConvTranspose3d", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "MaxPool3d"])
    func backwardAfterInferenceForwardThrows(_ name: String) throws {
        let c = try #require(layerCases.first { $0.name == name })
        let layer = try c.make()
        let y = try layer.forward(random(c.input, seed: 3), mode: .training)
        _ = try layer.forward(random(c.input, seed: 4), mode: .inference)
        #expect(throws: NeuralNetError.backwardWithoutForward(layer: name)) { try layer.backward(y) }
    }

    @Test
    func dropoutBackwardBeforeForwardThrows() throws {
        let layer = try Dropout(probability: 0.5, seed: 1)
        #expect(throws: NeuralNetError.backwardWithoutForward(layer: "Dropout")) { try layer.backward(Tensor(zeros: [2, 3])) }
    }

    @Test(arguments: layerCases.filter { $0.name != "Sequential" })
    func backwardWithAWrongGradientShapeThrows(_ c: LayerCase) throws {
        let layer = try c.make()
        let y = try layer.forward(random(c.input, seed: 5), mode: .training)
        // One more item in the batch than the forward pass produced.
        let wrong = [y.shape[0] + 1] + y.shape.dropFirst()
        #expect(throws: TensorError.self) { try layer.backward(Tensor(zeros: wrong)) }
    }
}

@Suite struct ShapeErrorTests {
    @Test func conv3dRejectsRank4AndWrongChannels() {
        var generator = Xoshiro256StarStar(seed: 1)
        let conv = Conv3d(inChannels: 2, outChannels: 3, kernel: Triple(3), padding: Triple(1), using: &generator)
        #expect(throws: TensorError.self) { try conv.forward(Tensor(zeros: [2, 4, 4, 4]), mode: .training) }
        #expect(throws: TensorError.self) { try conv.forward(Tensor(zeros: [2, 3, 4, 4, 4]), mode: .training) }
        #expect(throws: TensorError.self) { try conv.forward(Tensor(zeros: [2, 1, 4, 4, 4]), mode: .inference) }
        #expect(throws: TensorError.self) { try conv.forward(Tensor(zeros: [2, 2, 4, 4, 4, 1]), mode: .inference) }
        // The same layer still works on a valid input afterwards.
        #expect(throws: Never.self) { try conv.forward(Tensor(zeros: [2, 2, 4, 4, 4]), mode: .inference) }
    }

    @Test func conv3dKernelLargerThanThePaddedInputThrows() {
        var generator = Xoshiro256StarStar(seed: 1)
        let conv = Conv3d(inChannels: 1, outChannels: 1, kernel: Triple(3, 1, 1), using: &generator)
        #expect(throws: TensorError.self) { try conv.forward(Tensor(zeros: [2, 1, 2, 4, 4]), mode: .inference) }
    }

    @Test func denseRejectsWrongFeaturesAndRank() {
        var generator = Xoshiro256StarStar(seed: 1)
        let dense = Dense(inFeatures: 4, outFeatures: 2, using: &generator)
        let error = #expect(throws: TensorError.self) { try dense.forward(Tensor(zeros: [2, 5]), mode: .training) }
        if case let .shapeMismatch(_, expected, got)? = error {
            #expect(expected == [2, 4] && got == [2, 5])
        } else {
            Issue.record("expected shapeMismatch, got \(String(describing: error))")
        }
        #expect(throws: TensorError.self) { try dense.forward(Tensor(zeros: [2, 2, 2]), mode: .training) }
        #expect(throws: TensorError.self) { try dense.forward(Tensor(zeros: [4]), mode: .training) }
    }

    @Test func convTranspose3dRejectsOutputPaddingNotBelowStride() {
        var generator = Xoshiro256StarStar(seed: 1)
        #expect(throws: TensorError.self) {
            try ConvTranspose3d(inChannels: 1, outChannels: 1, kernel: Triple(3), stride: Triple(2), outputPadding: Triple(2),
                                using: &generator)
        }
        #expect(throws: TensorError.self) {
            try ConvTranspose3d(inChannels: 1, outChannels: 1, kernel: Triple(3), outputPadding: Triple(1), using: &generator)
        }
        #expect(throws: TensorError.self) {
            try ConvTranspose3d(inChannels: 1, outChannels: 1, kernel: Triple(3), stride: Triple(2, 2, 1),
                                outputPadding: Triple(1, 1, 1), using: &generator)
        }
        #expect(throws: TensorError.self) {
            try ConvTranspose3d(inChannels: 1, outChannels: 1, kernel: Triple(3), stride: Triple(2), outputPadding: Triple(0, -1, 0),
                                using: &generator)
        }
        #expect(throws: Never.self) {
            try ConvTranspose3d(inChannels: 1, outChannels: 1, kernel: Triple(3), stride: Triple(2), outputPadding: Triple(1),
                                using: &generator)
        }
    }

    @Test func convTranspose3dRejectsWrongInputsAndEmptyOutputs() throws {
        var generator = Xoshiro256StarStar(seed: 1)
        let up = try ConvTranspose3d(inChannels: 2, outChannels: 1, kernel: Triple(1), padding: Triple(1), using: &generator)
        #expect(throws: TensorError.self) { try up.forward(Tensor(zeros: [2, 1, 3, 3, 3]), mode: .inference) }
        #expect(throws: TensorError.self) { try up.forward(Tensor(zeros: [2, 2, 3, 3]), mode: .inference) }
        // (1 − 1)·1 − 2·1 + 1 = −1: an empty output.
        #expect(throws: TensorError.self) { try up.forward(Tensor(zeros: [2, 2, 1, 1, 1]), mode: .inference) }
    }

    @Test func poolingAndUpsamplingRejectBadShapesAndArguments() {
        #expect(throws: TensorError.self) { try MaxPool3d(kernel: Triple(2)).forward(Tensor(zeros: [2, 1, 4, 4]), mode: .training) }
        #expect(throws: TensorError.self) { try MaxPool3d(kernel: Triple(3)).forward(Tensor(zeros: [2, 1, 4, 2, 4]), mode: .training) }
        #expect(throws: TensorError.self) { try MaxPool3d(kernel: Triple(0)).forward(Tensor(zeros: [2, 1, 4, 4, 4]), mode: .training) }
        #expect(throws: TensorError.self) {
            try MaxPool3d(kernel: Triple(2), stride: Triple(0, 1, 1)).forward(Tensor(zeros: [2, 1, 4, 4, 4]), mode: .training)
        }
        #expect(throws: TensorError.self) { try AvgPool3d(kernel: Triple(2)).forward(Tensor(zeros: [2, 4, 4]), mode: .training) }
        #expect(throws: TensorError.self) { try AvgPool3d(kernel: Triple(5)).forward(Tensor(zeros: [2, 1, 4, 4, 4]), mode: .training) }
        #expect(throws: TensorError.self) { try Upsample3d(factor: Triple(0, 1, 1)) }
        #expect(throws: TensorError.self) { try Upsample3d(factor: Triple(2)).forward(Tensor(zeros: [2, 1, 4]), mode: .training) }
    }

    @Test func batchNormRejectsWrongShapesAndSingleValueBatches() {
        let spatial = BatchNorm(features: 2, spatial: true)
        #expect(throws: TensorError.self) { try spatial.forward(Tensor(zeros: [2, 2]), mode: .training) }
        #expect(throws: TensorError.self) { try spatial.forward(Tensor(zeros: [2, 3, 2, 2, 2]), mode: .training) }
        let flat = BatchNorm(features: 3, spatial: false)
        #expect(throws: TensorError.self) { try flat.forward(Tensor(zeros: [4, 2]), mode: .training) }
        // One value per channel has no batch variance (PyTorch raises too) ...
        #expect(throws: TensorError.self) { try flat.forward(Tensor(zeros: [1, 3]), mode: .training) }
        #expect(flat.batchesTracked == 0)
        // ... but inference on a single sample is fine.
        #expect(throws: Never.self) { try flat.forward(Tensor(zeros: [1, 3]), mode: .inference) }
    }

    @Test func dropoutRejectsProbabilitiesOutsideZeroToOne() {
        #expect(throws: TensorError.self) { try Dropout(probability: 1, seed: 1) }
        #expect(throws: TensorError.self) { try Dropout(probability: -0.1, seed: 1) }
        #expect(throws: TensorError.self) { try Dropout(probability: .nan, seed: 1) }
    }

    @Test func softmaxRejectsRanksOtherThanTwo() {
        #expect(throws: TensorError.self) { try Softmax().forward(Tensor(zeros: [2, 3, 4]), mode: .training) }
        #expect(throws: TensorError.self) { try Softmax.probabilities(Tensor(zeros: [3])) }
    }

    @Test func sequentialPropagatesTheFailingLayersError() {
        var generator = Xoshiro256StarStar(seed: 1)
        let model = Sequential([Dense(inFeatures: 3, outFeatures: 4, using: &generator), ReLU(),
                                Dense(inFeatures: 5, outFeatures: 1, using: &generator)])
        #expect(throws: TensorError.self) { try model.forward(Tensor(zeros: [2, 3]), mode: .training) }
    }
}
