import Testing
import TensorCore
@testable import Classifiers
@testable import Learn

/// Kernel values are single precision: settings that overflow it are refused, not fitted into
/// a NaN model.
@Suite struct SVMOverflowTests {
    static let x = try! Tensor(shape: [6, 2], scalars: [0, 1, 1, 0, 2, 2, 3, 1, 0.5, 0.2, 1.5, 2.5])
    static let y = [0, 1, 0, 1, 0, 1]

    @Test func aGammaBeyondSinglePrecisionIsAnOptionError() {
        #expect {
            _ = try SupportVectorClassifier(options: SVMOptions(kernel: .rbf(gamma: .value(1e39)))).fit(Self.x, Self.y)
        } throws: { error in
            guard case LearnError.invalidOption(let name, _, _) = error else { return false }
            return name == "gamma"
        }
    }

    @Test func anOverflowingPolynomialKernelIsANumericalError() throws {
        var generator = Xoshiro256StarStar(seed: 3)
        let big = Tensor(uninitializedShape: [40, 10]) { out in for i in 0..<out.count { out[i] = 1e4 * (1 + generator.nextUnitFloat()) } }
        #expect {
            _ = try SupportVectorClassifier(options: SVMOptions(kernel: .polynomial(degree: 5, gamma: .auto, coef0: 0)))
                .fit(big, (0..<40).map { $0 % 2 })
        } throws: { error in
            guard case LearnError.numerical(let message) = error else { return false }
            return message.contains("non-finite")
        }
    }
}
