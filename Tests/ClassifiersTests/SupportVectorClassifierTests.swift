import Foundation
import Learn
import TensorCore
import TestSupport
import Testing
@testable import Classifiers

private func matrix(_ rows: [[Float]]) -> Tensor { SVMFixture.matrix(rows) }

@Suite struct SupportVectorClassifierTests {
    // MARK: Hand-computed solutions

    /// Two points x₁ = (1, 0) (class 4, y = +1) and x₂ = (−1, 0) (class 9, y = −1), linear
    /// kernel: Q = [[1, 1], [1, 1]], yᵀα = 0 forces α₁ = α₂ = a, so the dual is 2a² − 2a:
    /// a = ½ (free for C = 10), objective −½, w = (1, 0), ρ = 0; f(x) = x₁ in libsvm's sign,
    /// −x₁ in scikit-learn's for two classes. With C = ¼ both sit at the bound: a = ¼,
    /// objective 2/16 − ½ = −3/8, ρ = 0 (the middle of the interval the bounds allow).
    @Test(arguments: [(10.0, 0.5, -0.5), (0.25, 0.25, -0.375)])
    func twoPointsLinear(c: Double, alpha: Double, objective: Double) throws {
        let x = matrix([[1, 0], [-1, 0]])
        let fitted = try SupportVectorClassifier(options: SVMOptions(kernel: .linear, c: c)).fit(x, [4, 9])
        #expect(fitted.classes == [4, 9])
        #expect(fitted.supportIndices == [0, 1])
        #expect(fitted.supportVectorCounts == [1, 1])
        #expect(fitted.dualCoefficients.count == 1)
        #expect(abs(fitted.dualCoefficients[0][0] + alpha) < 1e-12)
        #expect(abs(fitted.dualCoefficients[0][1] - alpha) < 1e-12)
        #expect(abs(fitted.intercepts[0]) < 1e-12)
        #expect(abs(fitted.objectives[0] - objective) < 1e-12)
        #expect(fitted.converged)
        let scores = try fitted.decisionFunction(matrix([[2, 5], [-3, 1]]))
        #expect(scores.shape == [2, 1])
        #expect(abs(scores.scalars[0] - Float(-4 * alpha)) < 1e-6)
        #expect(abs(scores.scalars[1] - Float(6 * alpha)) < 1e-6)
        #expect(try fitted.predict(matrix([[2, 5], [-3, 1]])) == [4, 9])
    }

    /// The same two points with the RBF kernel, γ = ½: K₁₂ = k = e^(−γ·4) = e^(−2), so
    /// Q = [[1, −k], [−k, 1]] and the dual is (1 − k)a² − 2a: a = 1 / (1 − k), objective
    /// −1 / (1 − k), ρ = 0, and the training points sit on the margins f = ±1.
    @Test func twoPointsRBF() throws {
        let x = matrix([[1, 0], [-1, 0]])
        let fitted = try SupportVectorClassifier(options: SVMOptions(kernel: .rbf(gamma: .value(0.5)), c: 10)).fit(x, [0, 1])
        let k = exp(-2.0)
        #expect(abs(fitted.dualCoefficients[0][1] - 1 / (1 - k)) < 1e-6)
        #expect(abs(fitted.objectives[0] + 1 / (1 - k)) < 1e-6)
        #expect(abs(fitted.intercepts[0]) < 1e-6)
        let scores = try fitted.decisionFunction(matrix([[1, 0], [-1, 0], [0, 3]]))
        #expect(abs(scores.scalars[0] + 1) < 1e-5)
        #expect(abs(scores.scalars[1] - 1) < 1e-5)
        #expect(abs(scores.scalars[2]) < 1e-6)
    }

    // MARK: Options resolved from the data

    /// Entries 0, 2, 4, 2, 0, 4: mean 2, variance 8/3, so "scale" = 1 / (3 · 8/3) = 1/8;
    /// "auto" = 1/3; a constant matrix has variance 0 and gets 1 (scikit-learn's rule).
    @Test func gammaRules() throws {
        let x = matrix([[0, 2, 4], [2, 0, 4]])
        #expect(abs(Gamma.scale.resolved(for: x.scalars, features: 3) - 0.125) < 1e-15)
        #expect(abs(Gamma.auto.resolved(for: x.scalars, features: 3) - 1.0 / 3) < 1e-15)
        #expect(Gamma.value(0.7).resolved(for: x.scalars, features: 3) == 0.7)
        #expect(Gamma.scale.resolved(for: [5, 5, 5, 5], features: 2) == 1)
        let fitted = try SupportVectorClassifier().fit(x, [0, 1])
        #expect(abs(fitted.gamma - 0.125) < 1e-15)
        let polynomial = try SupportVectorClassifier(options: SVMOptions(kernel: .polynomial(degree: 2, gamma: .auto, coef0: 1))).fit(x, [0, 1])
        #expect(abs(polynomial.gamma - 1.0 / 3) < 1e-15)
    }

    /// balanced: n / (k · n_c) = 100 / (2 · 80) and 100 / (2 · 20); custom weights by label,
    /// 1 for the labels not named; the fixture's class_weight_ from scikit-learn.
    @Test func classWeights() throws {
        let balanced = try ClassWeight.balanced.multipliers(classes: [0, 1], counts: [80, 20])
        #expect(balanced == [0.625, 2.5])
        let custom = try ClassWeight.custom([3: 2, 10: 0.5]).multipliers(classes: [3, 7, 10], counts: [5, 5, 5])
        #expect(custom == [2, 1, 0.5])
        #expect(try ClassWeight.none.multipliers(classes: [1, 2], counts: [3, 4]) == [1, 1])
        #expect(throws: LearnError.self) { try ClassWeight.custom([4: 2]).multipliers(classes: [3, 7], counts: [1, 1]) }

        let fixture = try SVMFixture.load("imbalanced_balanced")
        let counts = fixture.classes.map { label in fixture.y_train.filter { $0 == label }.count }
        let ours = try ClassWeight.balanced.multipliers(classes: fixture.classes, counts: counts)
        for (value, expected) in zip(ours, fixture.class_weight_values) { #expect(abs(value - expected) < 1e-12) }
    }

    // MARK: Equivalent computations

    /// All of Q up front (with the shared Gram matrix for three classes or Platt scaling),
    /// columns on demand with no budget (two columns cached), a small budget that keeps
    /// evicting, and no shrinking: the same optimum within the solver's tolerance, and (same
    /// seed, so the same cross-validation folds) the same probabilities.
    @Test(arguments: ["overlap_rbf", "three_class_rbf", "overlap_linear"])
    func cacheAndShrinkingGiveTheSameSolution(_ name: String) throws {
        let fixture = try SVMFixture.load(name)
        let base = fixture.options
        let reference = try SupportVectorClassifier(options: base).fit(fixture.xTrain, fixture.y_train)
        let referenceScores = try reference.decisionFunction(fixture.xTest)
        let referencePredictions = try reference.predict(fixture.xTest)
        let referenceProbabilities = base.probability ? try reference.predictProbability(fixture.xTest) : nil
        for variant in [(0.0, true), (0.05, true), (200.0, false), (0.0, false)] {
            var options = base
            options.cacheMegabytes = variant.0
            options.shrinking = variant.1
            let fitted = try SupportVectorClassifier(options: options).fit(fixture.xTrain, fixture.y_train)
            for (a, b) in zip(fitted.objectives, reference.objectives) { #expect(abs(a - b) <= 1e-5 * abs(b)) }
            #expect(fitted.supportIndices == reference.supportIndices)
            let scores = try fitted.decisionFunction(fixture.xTest)
            #expect(TestSupport.closeness(scores, referenceScores, rtol: 5e-3, atol: 5e-3) == 0)
            let predictions = try fitted.predict(fixture.xTest)
            #expect(zip(predictions, referencePredictions).filter { $0 != $1 }.count <= fixture.x_test.count / 200)
            if let referenceProbabilities {
                let probabilities = try fitted.predictProbability(fixture.xTest)
                #expect(TestSupport.closeness(probabilities, referenceProbabilities, rtol: 0, atol: 1e-2) == 0)
            }
        }
    }

    /// Kernel columns the same whichever way they are computed: the whole symmetric matrix
    /// by blocked GEMMs, one column by GEMV, several by one GEMM.
    @Test func kernelBlocksAgree() throws {
        let fixture = try SVMFixture.load("poly")
        let function = KernelFunction(fixture.options.kernel, gamma: fixture.gamma_value)
        let rows = KernelRows(fixture.xTrain.scalars, features: 6, order: Array(0..<100), function: function)
        let whole = QMatrix(indices: Array(0..<100), labels: Array(repeating: 1, count: 100), source: rows, gram: nil, budgetBytes: 1 << 20)
        let columns = QMatrix(indices: Array(0..<100), labels: Array(repeating: 1, count: 100), source: rows, gram: nil, budgetBytes: 0)
        columns.prefetch([3, 7, 8], length: 100)
        for i in [3, 7, 8, 50] {
            let a = whole.column(i, length: 100), b = columns.column(i, length: 100)
            for j in 0..<100 { #expect(abs(a[j] - b[j]) <= 1e-5 * max(1, abs(a[j]))) }
            #expect(abs(Double(a[i]) - whole.diagonal[i]) <= 1e-5 * max(1, whole.diagonal[i]))
        }
    }

    // MARK: Reproducibility

    @Test func fitsAreDeterministic() throws {
        let fixture = try SVMFixture.load("three_class_rbf")
        var options = fixture.options
        options.seed = 42
        let svc = SupportVectorClassifier(options: options)
        let first = try svc.fit(fixture.xTrain, fixture.y_train)
        let second = try svc.fit(fixture.xTrain, fixture.y_train)
        #expect(first == second)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        #expect(try encoder.encode(first) == encoder.encode(second))
        let firstProbabilities = try first.predictProbability(fixture.xTest)
        let secondProbabilities = try second.predictProbability(fixture.xTest)
        #expect(firstProbabilities == secondProbabilities)
    }

    /// A fit leaves nothing behind: refitting after another data set gives the same model.
    @Test func refitIsIdempotent() throws {
        let a = try SVMFixture.load("overlap_rbf"), b = try SVMFixture.load("imbalanced_rbf")
        let svc = SupportVectorClassifier(options: a.options)
        let first = try svc.fit(a.xTrain, a.y_train)
        _ = try svc.fit(b.xTrain, b.y_train)
        let again = try svc.fit(a.xTrain, a.y_train)
        #expect(first == again)
    }

    @Test func codableRoundTrip() throws {
        let fixture = try SVMFixture.load("three_class_rbf")
        let svc = SupportVectorClassifier(options: fixture.options)
        let decodedOptions = try JSONDecoder().decode(SupportVectorClassifier.self, from: JSONEncoder().encode(svc))
        #expect(decodedOptions == svc)
        let fitted = try svc.fit(fixture.xTrain, fixture.y_train)
        let decoded = try JSONDecoder().decode(FittedSVC.self, from: JSONEncoder().encode(fitted))
        #expect(decoded == fitted)
        let expected = try fitted.predict(fixture.xTest)
        #expect(try decoded.predict(fixture.xTest) == expected)
    }

    // MARK: Voting

    /// libsvm's vote: pair (i, j) votes i when its value is positive, else j; the most votes
    /// win and a tie goes to the lowest class index. Without support vectors the pairs'
    /// values are their intercepts (b = −ρ for three classes).
    @Test(arguments: [([1.0, -1, 1], 10), ([-1.0, 1, -1], 10), ([-1.0, -1, 1], 20), ([0.0, 0, 0], 30), ([1.0, 1, 0], 10)])
    func votesBreakTiesToTheLowestClass(intercepts: [Double], expected: Int) throws {
        let solutions = intercepts.map {
            SolutionInfo(alpha: [0, 0], rho: -$0, objective: 0, iterations: 0, atUpperBound: [false, false], converged: true)
        }
        let fitted = FittedSVC(
            classes: [10, 20, 30], x: [1, 2, 3], features: 1, order: [0, 1, 2], counts: [1, 1, 1],
            solutions: solutions, kernel: .linear, gamma: 0, sigmoids: nil, converged: true)
        #expect(fitted.intercepts == intercepts)
        #expect(try fitted.predict(matrix([[0]])) == [expected])
    }

    // MARK: Limits and errors

    @Test func iterationLimitStopsAndReports() throws {
        let fixture = try SVMFixture.load("overlap_linear")
        var options = fixture.options
        options.maxIterations = 50
        let fitted = try SupportVectorClassifier(options: options).fit(fixture.xTrain, fixture.y_train)
        #expect(!fitted.converged)
        #expect(fitted.iterations == [50])
        let complete = try SupportVectorClassifier(options: fixture.options).fit(fixture.xTrain, fixture.y_train)
        // Stopped early, the objective is higher than at the optimum but still decreased from 0.
        #expect(fitted.objectives[0] > complete.objectives[0])
        #expect(fitted.objectives[0] < 0)
        #expect(try fitted.predict(fixture.xTest).count == fixture.x_test.count)
    }

    @Test func nonFiniteValuesAreNamed() throws {
        var x = matrix([[0, 1], [1, 0], [2, 2], [3, 1]])
        x[2, 1] = .nan
        do {
            _ = try SupportVectorClassifier().fit(x, [0, 1, 0, 1])
            Issue.record("fit accepted a NaN")
        } catch {
            guard case .nonFinite(let what, let row, let column, let value) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(what == "X" && row == 2 && column == 1 && value.isNaN)
        }
        let fitted = try SupportVectorClassifier().fit(matrix([[0, 1], [1, 0], [2, 2], [3, 1]]), [0, 1, 0, 1])
        var test = matrix([[0, 0], [1, 1]])
        test[1, 0] = .infinity
        #expect(throws: LearnError.nonFinite(what: "X", row: 1, column: 0, value: .infinity)) { try fitted.predict(test) }
    }

    @Test func badDataIsRefused() throws {
        let x = matrix([[0, 1], [1, 0], [2, 2]])
        #expect(throws: LearnError.singleClass(label: 3)) { try SupportVectorClassifier().fit(x, [3, 3, 3]) }
        #expect(throws: LearnError.shapeMismatch(what: "label count", expected: 3, got: 2)) {
            try SupportVectorClassifier().fit(x, [0, 1])
        }
        let fitted = try SupportVectorClassifier().fit(x, [0, 1, 1])
        let wide = matrix([[0, 1, 2]])
        let mismatch = LearnError.shapeMismatch(what: "X feature count", expected: 2, got: 3)
        #expect(throws: mismatch) { try fitted.predict(wide) }
        #expect(throws: mismatch) { try fitted.decisionFunction(wide) }
        #expect(throws: LearnError.self) { try fitted.predictProbability(x) }
        do {
            _ = try fitted.predictProbability(x)
        } catch {
            guard case .invalidOption(let name, _, let reason) = error else { throw error }
            #expect(name == "probability" && reason.contains("refit"))
        }
    }

    @Test(arguments: [
        (SVMOptions(c: 0), "c"), (SVMOptions(c: -1), "c"), (SVMOptions(c: .nan), "c"), (SVMOptions(c: .infinity), "c"),
        (SVMOptions(tolerance: 0), "tolerance"), (SVMOptions(cacheMegabytes: -1), "cacheMegabytes"),
        (SVMOptions(maxIterations: 0), "maxIterations"), (SVMOptions(kernel: .rbf(gamma: .value(0))), "gamma"),
        (SVMOptions(kernel: .sigmoid(gamma: .value(-0.1), coef0: 0)), "gamma"),
        (SVMOptions(kernel: .polynomial(degree: 0, gamma: .scale, coef0: 0)), "degree"),
        (SVMOptions(kernel: .polynomial(degree: 2, gamma: .scale, coef0: .nan)), "coef0"),
        (SVMOptions(classWeight: .custom([0: 0])), "classWeight"), (SVMOptions(classWeight: .custom([5: 1])), "classWeight"),
    ])
    func badOptionsAreRefused(options: SVMOptions, name: String) throws {
        do {
            _ = try SupportVectorClassifier(options: options).fit(matrix([[0, 1], [1, 0], [2, 2]]), [0, 1, 1])
            Issue.record("accepted \(options)")
        } catch {
            guard case .invalidOption(let option, _, _) = error else { throw error }
            #expect(option == name)
        }
    }
}
