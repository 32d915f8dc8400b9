import Foundation
import Learn
import TensorCore
import Testing
@testable import Classifiers

/// One dataset of `Tests/Fixtures/LinearSVC/` and scikit-learn's fits on it.
private struct LinearSVCFixture: Decodable {
    struct Fit: Decodable {
        var loss: String
        var balanced: Bool
        var coef: [[Double]]
        var intercept: [Double]
        var decision: [[Double]]
        var predict: [Int]
        var n_iter: Int
    }

    var name: String
    var c: Double
    var tolerance: Double
    var max_iterations: Int
    var n_train: Int
    var n_test: Int
    var features: Int
    var x_train: Data
    var y_train: [Int]
    var x_test: Data
    var y_test: [Int]
    var fits: [Fit]

    static func load(_ name: String) throws -> LinearSVCFixture {
        try LinearICAFixtures.load(LinearSVCFixture.self, "LinearSVC/\(name).json")
    }

    func train() throws -> Tensor { try LinearICAFixtures.matrix(x_train, n_train, features) }
    func test() throws -> Tensor { try LinearICAFixtures.matrix(x_test, n_test, features) }

    func estimator(_ fit: Fit) -> LinearSVC {
        LinearSVC(c: c, loss: fit.loss == "hinge" ? .hinge : .squaredHinge, tolerance: tolerance,
                  maxIterations: max_iterations, classWeight: fit.balanced ? .balanced : .none)
    }
}

@Suite struct LinearSVCTests {
    /// The dual optimum is unique, so at a tight tolerance our coefficients match liblinear's
    /// whatever order the coordinates are visited in.
    @Test(arguments: ["binary", "three_class"])
    func matchesScikitLearn(dataset: String) throws {
        let fixture = try LinearSVCFixture.load(dataset)
        let (train, test) = (try fixture.train(), try fixture.test())
        for reference in fixture.fits {
            let label = "\(dataset) \(reference.loss) balanced=\(reference.balanced)"
            let fitted = try fixture.estimator(reference).fit(train, fixture.y_train)
            #expect(fitted.converged, "\(label)")
            #expect(fitted.warning == nil, "\(label)")
            #expect(fitted.classes == Array(Set(fixture.y_train)).sorted(), "\(label)")
            let m = reference.coef.count
            #expect(fitted.coefficients.shape == [m, fixture.features], "\(label)")

            // Coefficients and intercepts, relative to the largest coefficient.
            let scale = reference.coef.flatMap { $0 }.map(abs).max() ?? 1
            var worst = 0.0
            for row in 0..<m {
                for j in 0..<fixture.features {
                    worst = max(worst, abs(Double(fitted.coefficients[row, j]) - reference.coef[row][j]))
                }
                worst = max(worst, abs(Double(fitted.intercepts[row]) - reference.intercept[row]))
            }
            #expect(worst / scale < 1e-3, "\(label): coefficient difference \(worst / scale) of the largest")

            let scores = try fitted.decisionFunction(test)
            #expect(scores.shape == [fixture.n_test, m], "\(label)")
            var worstScore = 0.0
            for i in 0..<fixture.n_test {
                for j in 0..<m { worstScore = max(worstScore, abs(Double(scores[i, j]) - reference.decision[i][j])) }
            }
            #expect(worstScore < 1e-3, "\(label): decision difference \(worstScore)")

            let predicted = try fitted.predict(test)
            let agreement = Double(zip(predicted, reference.predict).filter { $0 == $1 }.count) / Double(fixture.n_test)
            #expect(agreement >= 0.995, "\(label): prediction agreement \(agreement)")
        }
    }

    @Test func decisionShapes() throws {
        let binary = try LinearSVCFixture.load("binary")
        let three = try LinearSVCFixture.load("three_class")
        let twoScores = try LinearSVC().fit(try binary.train(), binary.y_train).decisionFunction(try binary.test())
        let threeScores = try LinearSVC().fit(try three.train(), three.y_train).decisionFunction(try three.test())
        #expect(twoScores.shape == [binary.n_test, 1])
        #expect(threeScores.shape == [three.n_test, 3])
    }

    /// `.custom` with the balanced weights gives the very same fit as `.balanced`.
    @Test func customWeightsMatchBalanced() throws {
        let fixture = try LinearSVCFixture.load("binary")
        let train = try fixture.train()
        let n = Double(fixture.y_train.count)
        var weights: [Int: Double] = [:]
        for label in Set(fixture.y_train) {
            weights[label] = n / (2 * Double(fixture.y_train.filter { $0 == label }.count))
        }
        let balanced = try LinearSVC(classWeight: .balanced).fit(train, fixture.y_train)
        let custom = try LinearSVC(classWeight: .custom(weights)).fit(train, fixture.y_train)
        #expect(balanced == custom)
    }

    @Test func sameSeedSameFit() throws {
        let fixture = try LinearSVCFixture.load("three_class")
        let train = try fixture.train()
        let first = try LinearSVC(seed: 7).fit(train, fixture.y_train)
        let second = try LinearSVC(seed: 7).fit(train, fixture.y_train)
        #expect(first == second)
    }

    @Test func reportsNonConvergence() throws {
        let fixture = try LinearSVCFixture.load("binary")
        let fitted = try LinearSVC(loss: .hinge, tolerance: 1e-8, maxIterations: 1).fit(try fixture.train(), fixture.y_train)
        #expect(!fitted.converged)
        #expect(fitted.iterations == 1)
        #expect(fitted.warning?.contains("did not converge in 1 iterations") == true)
    }

    @Test func hasNoProbabilities() throws {
        let fixture = try LinearSVCFixture.load("binary")
        let fitted = try LinearSVC().fit(try fixture.train(), fixture.y_train)
        #expect {
            _ = try fitted.predictProbability(try fixture.test())
        } throws: { error in
            guard case LearnError.invalidOption(let name, _, _) = error else { return false }
            return name == "probability"
        }
    }

    @Test func rejectsBadOptions() throws {
        let x = try Tensor(shape: [4, 2], scalars: [0, 1, 1, 0, 2, 2, 3, 1])
        let y = [0, 0, 1, 1]
        let bad: [(LinearSVC, String)] = [
            (LinearSVC(c: 0), "c"), (LinearSVC(c: .infinity), "c"), (LinearSVC(tolerance: 0), "tolerance"),
            (LinearSVC(maxIterations: 0), "maxIterations"), (LinearSVC(interceptScaling: 0), "interceptScaling"),
            (LinearSVC(classWeight: .custom([0: -1])), "classWeight[0]"), (LinearSVC(classWeight: .custom([3: 2])), "classWeight"),
        ]
        for (estimator, option) in bad {
            #expect {
                _ = try estimator.fit(x, y)
            } throws: { error in
                guard case LearnError.invalidOption(let name, _, _) = error else { return false }
                return name == option
            }
        }
        // Without an intercept, its scaling is not used.
        #expect(throws: Never.self) { _ = try LinearSVC(fitIntercept: false, interceptScaling: 0).fit(x, y) }
    }

    @Test func rejectsNonFiniteData() throws {
        var x = try Tensor(shape: [4, 3], scalars: [Float](repeating: 1, count: 12))
        x[2, 1] = .nan
        #expect {
            _ = try LinearSVC().fit(x, [0, 1, 0, 1])
        } throws: { error in
            guard case LearnError.nonFinite(_, let row, let column, let value) = error else { return false }
            return row == 2 && column == 1 && value.isNaN
        }
    }

    @Test func withoutInterceptTheInterceptIsZero() throws {
        let fixture = try LinearSVCFixture.load("binary")
        let fitted = try LinearSVC(fitIntercept: false).fit(try fixture.train(), fixture.y_train)
        #expect(fitted.intercepts == [0])
    }
}
