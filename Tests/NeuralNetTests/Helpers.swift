import Foundation
import NeuralNet
import TensorCore
import Testing
import TestSupport

/// Tolerance on `TestSupport.gradientCheck`'s relative error for Float32 central
/// differences with step 1e-2 (piecewise-smooth or curved layers).
let gradientTolerance: Float = 2e-2
/// Tighter tolerance for layers that are linear in their input and parameters, where central
/// differences are exact up to Float rounding.
let linearGradientTolerance: Float = 5e-3

/// A tensor whose elements are pairwise distinct by at least `gap` in magnitude and at
/// least `gap` away from zero, in a seeded random order with random signs. Perturbing one
/// element by less than `gap` therefore never changes which element of a pooling window is
/// the maximum, nor the sign of any element (no ReLU/LeakyReLU/MaxPool kink is crossed).
func distinctTensor(_ shape: [Int], seed: UInt64, gap: Float = 0.03) -> Tensor {
    let count = shape.reduce(1, *)
    var generator = Xoshiro256StarStar(seed: seed)
    var magnitudes = (1...max(1, count)).map { Float($0) * gap }
    magnitudes.shuffle(using: &generator)
    let values = (0..<count).map { i in generator.next() & 1 == 0 ? magnitudes[i] : -magnitudes[i] }
    return try! Tensor(shape: shape, scalars: values)
}

/// A seeded random tensor (shorthand for `TestSupport.randomTensor`).
func random(_ shape: [Int], seed: UInt64, low: Float = -1, high: Float = 1) -> Tensor {
    TestSupport.randomTensor(shape, seed: seed, low: low, high: high)
}

/// Builds a tensor from Double values computed by a reference implementation.
func tensor(_ shape: [Int], _ values: [Double]) -> Tensor {
    try! Tensor(shape: shape, scalars: values.map { Float($0) })
}

/// Row-major flat index of a 5-d index into `[N, C, D, H, W]`.
func flatIndex(_ shape: [Int], _ n: Int, _ c: Int, _ d: Int, _ h: Int, _ w: Int) -> Int {
    (((n * shape[1] + c) * shape[2] + d) * shape[3] + h) * shape[4] + w
}

/// The same check as `TestSupport.gradientCheck`, but with every forward pass in `mode`
/// (for layers whose inference-mode backward is meaningful, such as BatchNorm).
func gradientCheck(_ layer: any Layer, input: Tensor, mode: Mode, step: Float = 1e-2, seed: UInt64 = 99) throws -> Float {
    let output = try layer.forward(input, mode: mode)
    let r = random(output.shape, seed: seed)
    layer.zeroGradients()
    let analyticInput = try layer.backward(r)
    func objective(_ x: Tensor) throws -> Double {
        let y = try layer.forward(x, mode: mode)
        return zip(y.scalars, r.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }
    var worst: Float = 0
    func compare(_ analytic: Tensor, _ numeric: Tensor) {
        for (a, b) in zip(analytic.scalars, numeric.scalars) {
            let error = abs(a - b) / max(1, abs(b))
            worst = max(worst, error.isNaN ? .infinity : error)
        }
    }
    compare(analyticInput, try TestSupport.numericalGradient(of: objective, at: input, step: step))
    for parameter in layer.parameters() {
        let original = parameter.value
        let numeric = try TestSupport.numericalGradient(of: { value in
            parameter.value = value
            return try objective(input)
        }, at: original, step: step)
        parameter.value = original
        compare(parameter.gradient, numeric)
    }
    return worst
}

/// A fresh empty directory under the system temporary directory; remove it when done.
func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("NeuralNetTests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Expects `body` to throw `NeuralNetError.invalidConfiguration`.
func expectInvalidConfiguration<R>(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> R) {
    let error = #expect(throws: NeuralNetError.self, sourceLocation: sourceLocation) { _ = try body() }
    guard let error else { return }
    if case .invalidConfiguration = error { return }
    Issue.record("expected invalidConfiguration, got \(error)", sourceLocation: sourceLocation)
}
