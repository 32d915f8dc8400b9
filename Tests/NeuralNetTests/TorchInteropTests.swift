import Foundation
import NeuralNet
import Testing
import TensorCore
import TestSupport

/// Fixtures made by Tests/Fixtures/make_torch_fixtures.py (PyTorch 2.13, float64 reference).
private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures")

private func float(_ tensors: [String: SafeTensors.Value], _ name: String) throws -> Tensor {
    let value = try #require(tensors[name], "fixture lacks \(name)")
    guard case let .float32(t) = value else { throw TensorError.invalidArgument(operation: name, reason: "not float") }
    return t
}

/// The stack of make_torch_fixtures.py, built from our layers (indices match PyTorch's names).
private func referenceStack() throws -> Sequential {
    var generator = Xoshiro256StarStar(seed: 1)
    return Sequential([
        Conv3d(inChannels: 2, outChannels: 3, kernel: Triple(3), padding: Triple(1), using: &generator),
        BatchNorm(features: 3, spatial: true),
        ReLU(),
        MaxPool3d(kernel: Triple(2)),
        try ConvTranspose3d(inChannels: 3, outChannels: 2, kernel: Triple(3), stride: Triple(2), padding: Triple(1),
                            outputPadding: Triple(1), using: &generator),
        AvgPool3d(kernel: Triple(2)),
    ])
}

@Test func pytorchStackMatchesForwardBackwardAndRunningStatistics() throws {
    let model = try referenceStack()
    try Checkpoint.load(model, from: fixtures.appendingPathComponent("torch_stack_state.safetensors"))
    let io = try SafeTensors.read(from: fixtures.appendingPathComponent("torch_stack_io.safetensors")).tensors

    let output = try model.forward(try float(io, "input"), mode: .training)
    let expectedOutput = try float(io, "output")
    let forwardError = try output.maxAbsDifference(expectedOutput)
    #expect(TestSupport.isClose(output, expectedOutput, rtol: 1e-4, atol: 1e-5), "forward differs from PyTorch by \(forwardError)")

    model.zeroGradients()
    let gradInput = try model.backward(try float(io, "grad_output"))
    #expect(TestSupport.isClose(gradInput, try float(io, "grad_input"), rtol: 1e-3, atol: 1e-5))
    for (name, parameter) in model.namedParameters() {
        let expected = try float(io, "grad.\(name)")
        let error = try parameter.gradient.maxAbsDifference(expected)
        #expect(TestSupport.isClose(parameter.gradient, expected, rtol: 1e-3, atol: 1e-4), "gradient of \(name) differs by \(error)")
    }
    let norm = try #require(model.layers[1] as? BatchNorm)
    #expect(TestSupport.isClose(norm.runningMean, try float(io, "after.1.running_mean"), rtol: 1e-4, atol: 1e-6))
    #expect(TestSupport.isClose(norm.runningVariance, try float(io, "after.1.running_var"), rtol: 1e-4, atol: 1e-6))
    #expect(norm.batchesTracked == 1)
}

/// The fixture script verified that `safetensors.torch.load_file` reads
/// `swift_conv3d.safetensors` (written by our writer) and that `nn.Conv3d` with its weights
/// reproduces its output. Here: our writer still produces those exact bytes from the same
/// tensors, and our convolution still computes that output from those weights.
@Test func safetensorsInteropFileIsWhatPyTorchVerified() throws {
    var generator = Xoshiro256StarStar(seed: 7)
    let conv = Conv3d(inChannels: 2, outChannels: 4, kernel: Triple(3), stride: Triple(2), padding: Triple(1), using: &generator)
    conv.bias.value = Initializer.uniform(shape: [4], bound: 0.5, using: &generator)
    let input = TestSupport.randomTensor([1, 2, 5, 6, 7], seed: 8)
    let output = try conv.forward(input, mode: .inference)
    let committed = fixtures.appendingPathComponent("swift_conv3d.safetensors")
    if ProcessInfo.processInfo.environment["ADWB_REGENERATE_FIXTURES"] != nil {
        let entries = Checkpoint.stateEntries(of: conv) + [("input", .float32(input)), ("output", .float32(output))]
        try AtomicFile.write(try SafeTensors.encode(entries, metadata: ["writer": "ADWorkbench"]), to: committed)
    }
    let stored = try SafeTensors.read(from: committed).tensors
    #expect(try float(stored, "weight") == conv.weight.value)
    #expect(try float(stored, "bias") == conv.bias.value)
    #expect(try float(stored, "input") == input)
    #expect(TestSupport.isClose(output, try float(stored, "output"), rtol: 1e-5, atol: 1e-6))
    let order = ["weight", "bias", "input", "output"]
    let rewritten = try SafeTensors.encode(order.map { ($0, stored[$0]!) }, metadata: ["writer": "ADWorkbench"])
    #expect(try Data(contentsOf: committed) == rewritten)
}
