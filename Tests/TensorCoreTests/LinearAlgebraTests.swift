import Testing
import TensorCore
import TestSupport

/// The LAPACKE wrappers: decompositions are checked by reconstruction and orthonormality,
/// solvers by their residual, errors by their case.
@Suite struct LinearAlgebraTests {
    static func matrix(_ t: Tensor) -> [[Double]] { Reference.matrix(t.scalars, rows: t.shape[0], columns: t.shape[1]) }

    static func tensor(_ m: [[Double]]) -> Tensor {
        try! Tensor(shape: [m.count, m.first?.count ?? 0], scalars: m.flatMap { $0.map { Float($0) } })
    }

    static func randomSymmetric(_ n: Int, seed: UInt64) -> [[Double]] {
        let b = matrix(TestSupport.randomTensor([n, n], seed: seed))
        // Rounded to Float so the Double reference sees exactly what LAPACK sees.
        var a = b
        for i in 0..<n {
            for j in 0..<n {
                let mean: Double = (b[i][j] + b[j][i]) / 2
                a[i][j] = Double(Float(mean))
            }
        }
        return a
    }

    /// `B Bᵀ + n·I` for a random `B`: symmetric positive definite and well conditioned.
    static func randomSPD(_ n: Int, seed: UInt64) -> [[Double]] {
        let b = matrix(TestSupport.randomTensor([n, n], seed: seed))
        var a = Reference.matmul(b, Reference.transpose(b))
        for i in 0..<n { a[i][i] += Double(n) }
        // Round to Float so the Double reference sees exactly what LAPACK sees.
        return a.map { $0.map { Double(Float($0)) } }
    }

    static func expectOrthonormalColumns(_ q: [[Double]], tolerance: Double = 1e-5, sourceLocation: SourceLocation = #_sourceLocation) {
        let gram = Reference.matmul(Reference.transpose(q), q)
        let error = Reference.maxAbsDifference(gram, Reference.identity(gram.count))
        #expect(error <= tolerance, "QᵀQ differs from I by \(error)", sourceLocation: sourceLocation)
    }

    // MARK: Symmetric eigendecomposition

    @Test func symmetricEigenReconstructs() throws {
        let n = 6
        let a = Self.randomSymmetric(n, seed: 1)
        let (values, vectors) = try LinearAlgebra.symmetricEigen(Self.tensor(a))
        #expect(values.shape == [n])
        #expect(vectors.shape == [n, n])
        let w = values.scalars.map(Double.init)
        for i in 1..<n { #expect(w[i - 1] <= w[i], "eigenvalues must ascend: \(w)") }
        let v = Self.matrix(vectors)
        Self.expectOrthonormalColumns(v)
        // A = V diag(w) Vᵀ
        let vw = v.map { row in zip(row, w).map { $0 * $1 } }
        let reconstructed = Reference.matmul(vw, Reference.transpose(v))
        let error = Reference.maxAbsDifference(reconstructed, a)
        #expect(error <= 1e-5 * max(1, Reference.maxAbs(a)), "‖V diag(w) Vᵀ − A‖∞ = \(error)")
        // Each column is an eigenvector: A v = w v.
        let av = Reference.matmul(a, v)
        for j in 0..<n { for i in 0..<n { #expect(abs(av[i][j] - w[j] * v[i][j]) <= 1e-5) } }
        // Trace is the sum of eigenvalues.
        var trace = 0.0
        for i in 0..<n { trace += a[i][i] }
        let eigenSum: Double = w.reduce(0, +)
        #expect(abs(trace - eigenSum) <= 1e-5)
    }

    @Test func symmetricEigenKnownSpectrum() throws {
        // Q diag(d) Qᵀ, with Q = I − 2uuᵀ/uᵀu a Householder reflection (orthonormal), has
        // eigenvalues d (up to the Float rounding of its entries).
        let n = 5
        let u = TestSupport.randomTensor([n], seed: 2).scalars.map(Double.init)
        let norm2 = u.reduce(0) { $0 + $1 * $1 }
        let q = (0..<n).map { i in (0..<n).map { j in (i == j ? 1 : 0) - 2 * u[i] * u[j] / norm2 } }
        let d: [Double] = [3, -1, 0.5, 2, -4]
        let qd = q.map { row in zip(row, d).map { $0 * $1 } }
        let a = Reference.matmul(qd, Reference.transpose(q))
        let values = try LinearAlgebra.symmetricEigen(Self.tensor(a)).values.scalars.map(Double.init)
        let sorted = d.sorted()
        for i in 0..<n { #expect(abs(values[i] - sorted[i]) <= 1e-5, "eigenvalue \(i): \(values[i]) vs \(sorted[i])") }
    }

    @Test func symmetricEigenReadsOnlyUpperTriangle() throws {
        let n = 4
        let a = Self.randomSymmetric(n, seed: 3)
        var garbage = a
        for i in 0..<n { for j in 0..<i { garbage[i][j] = 100 + Double(i * n + j) } }
        let clean = try LinearAlgebra.symmetricEigen(Self.tensor(a)).values.scalars
        let dirty = try LinearAlgebra.symmetricEigen(Self.tensor(garbage)).values.scalars
        expectClose(dirty, clean.map(Double.init), rtol: 1e-5, atol: 1e-5)
    }

    // MARK: SVD

    @Test(arguments: [(5, 3), (3, 5), (4, 4)])
    func svdReconstructs(m: Int, n: Int) throws {
        let a = TestSupport.randomTensor([m, n], seed: UInt64(10 * m + n))
        let (u, s, vt) = try LinearAlgebra.svd(a)
        let r = min(m, n)
        #expect(u.shape == [m, r])
        #expect(s.shape == [r])
        #expect(vt.shape == [r, n])
        let sv = s.scalars.map(Double.init)
        #expect(sv.allSatisfy { $0 >= 0 })
        for i in 1..<r { #expect(sv[i - 1] >= sv[i], "singular values must descend: \(sv)") }
        let um = Self.matrix(u), vtm = Self.matrix(vt)
        Self.expectOrthonormalColumns(um)
        Self.expectOrthonormalColumns(Reference.transpose(vtm))
        let us = um.map { row in zip(row, sv).map { $0 * $1 } }
        let reconstructed = Reference.matmul(us, vtm)
        let error = Reference.maxAbsDifference(reconstructed, Self.matrix(a))
        #expect(error <= 1e-5, "‖U diag(s) Vᵀ − A‖∞ = \(error)")
        // Σ s² = ‖A‖_F²
        let frobenius = a.scalars.reduce(0.0) { $0 + Double($1) * Double($1) }
        #expect(abs(sv.reduce(0) { $0 + $1 * $1 } - frobenius) <= 1e-4 * frobenius)
    }

    @Test func svdOfRankOneMatrix() throws {
        // x yᵀ has one singular value ‖x‖‖y‖ and the rest zero.
        let x = TestSupport.randomTensor([4], seed: 20).scalars.map(Double.init)
        let y = TestSupport.randomTensor([3], seed: 21).scalars.map(Double.init)
        let a = x.map { xi in y.map { xi * $0 } }
        let s = try LinearAlgebra.svd(Self.tensor(a)).s.scalars.map(Double.init)
        let expected = x.reduce(0) { $0 + $1 * $1 }.squareRoot() * y.reduce(0) { $0 + $1 * $1 }.squareRoot()
        #expect(abs(s[0] - expected) <= 1e-5 * expected)
        #expect(s[1] <= 1e-5 && s[2] <= 1e-5)
    }

    // MARK: Cholesky

    @Test func choleskyReconstructs() throws {
        let n = 6
        let a = Self.randomSPD(n, seed: 30)
        let l = try LinearAlgebra.cholesky(Self.tensor(a))
        #expect(l.shape == [n, n])
        let lm = Self.matrix(l)
        for i in 0..<n {
            #expect(lm[i][i] > 0, "diagonal \(i) must be positive")
            for j in (i + 1)..<n { #expect(lm[i][j] == 0, "L[\(i), \(j)] above the diagonal must be 0") }
        }
        let error = Reference.maxAbsDifference(Reference.matmul(lm, Reference.transpose(lm)), a)
        #expect(error <= 1e-5 * Reference.maxAbs(a), "‖L Lᵀ − A‖∞ = \(error)")
    }

    @Test func choleskySolveSatisfiesSystem() throws {
        let n = 5
        let a = Self.randomSPD(n, seed: 31)
        let l = try LinearAlgebra.cholesky(Self.tensor(a))

        let b = TestSupport.randomTensor([n], seed: 32)
        let x = try LinearAlgebra.choleskySolve(factor: l, b)
        #expect(x.shape == [n])
        let ax = Reference.matmul(a, x.scalars.map { [Double($0)] }).map { $0[0] }
        expectClose(ax.map { Float($0) }, b.scalars.map(Double.init), rtol: 0, atol: 1e-5, "A x = b")

        let bm = TestSupport.randomTensor([n, 3], seed: 33)
        let xm = try LinearAlgebra.choleskySolve(factor: l, bm)
        #expect(xm.shape == [n, 3])
        let residual = Reference.maxAbsDifference(Reference.matmul(a, Self.matrix(xm)), Self.matrix(bm))
        #expect(residual <= 1e-5, "‖A X − B‖∞ = \(residual)")
    }

    @Test func solveSatisfiesSystem() throws {
        let n = 5
        var a = Self.matrix(TestSupport.randomTensor([n, n], seed: 40))
        for i in 0..<n { a[i][i] += 3 }
        a = a.map { $0.map { Double(Float($0)) } }
        let b = TestSupport.randomTensor([n], seed: 41)
        let x = try LinearAlgebra.solve(Self.tensor(a), b)
        #expect(x.shape == [n])
        let ax = Reference.matmul(a, x.scalars.map { [Double($0)] }).map { $0[0] }
        expectClose(ax.map { Float($0) }, b.scalars.map(Double.init), rtol: 0, atol: 1e-5, "A x = b")

        let bm = TestSupport.randomTensor([n, 2], seed: 42)
        let xm = try LinearAlgebra.solve(Self.tensor(a), bm)
        #expect(xm.shape == [n, 2])
        let residual = Reference.maxAbsDifference(Reference.matmul(a, Self.matrix(xm)), Self.matrix(bm))
        #expect(residual <= 1e-5, "‖A X − B‖∞ = \(residual)")
    }

    @Test func solveNeedsPivoting() throws {
        // A zero leading entry: LU without row exchanges would fail.
        let a = try Tensor(shape: [3, 3], scalars: [0, 2, 1, 1, 1, 1, 2, 0, 3])
        let b = try Tensor(shape: [3], scalars: [3, 3, 5])  // solution (1, 1, 1)
        let x = try LinearAlgebra.solve(a, b)
        expectClose(x.scalars, [1, 1, 1], rtol: 0, atol: 1e-5)
    }

    // MARK: Errors

    @Test func singularSolveThrows() {
        let singular = try! Tensor(shape: [3, 3], scalars: [1, 2, 3, 2, 4, 6, 1, 0, 1])
        let error = #expect(throws: LinearAlgebraError.self) { try LinearAlgebra.solve(singular, Tensor(zeros: [3])) }
        guard case .singular? = error else {
            Issue.record("expected .singular, got \(String(describing: error))")
            return
        }
        let zero = #expect(throws: LinearAlgebraError.self) { try LinearAlgebra.solve(Tensor(zeros: [2, 2]), Tensor(zeros: [2, 1])) }
        guard case .singular(_, let pivot)? = zero else {
            Issue.record("expected .singular, got \(String(describing: zero))")
            return
        }
        #expect(pivot == 1)
    }

    @Test func notPositiveDefiniteCholeskyThrows() {
        // Leading 1x1 minor is positive, the 2x2 determinant 1 − 4 is not.
        let a = try! Tensor(shape: [3, 3], scalars: [1, 2, 0, 2, 1, 0, 0, 0, 1])
        let error = #expect(throws: LinearAlgebraError.self) { try LinearAlgebra.cholesky(a) }
        guard case .notPositiveDefinite(_, let order)? = error else {
            Issue.record("expected .notPositiveDefinite, got \(String(describing: error))")
            return
        }
        #expect(order == 2)
        let negative = #expect(throws: LinearAlgebraError.self) { try LinearAlgebra.cholesky(Tensor(repeating: -1, shape: [1, 1])) }
        guard case .notPositiveDefinite(_, 1)? = negative else {
            Issue.record("expected .notPositiveDefinite(order: 1), got \(String(describing: negative))")
            return
        }
    }

    @Test func nonFiniteInputThrows() {
        var a = Self.tensor(Self.randomSPD(3, seed: 50))
        a[1, 2] = .nan
        var b = TestSupport.randomTensor([3], seed: 51)
        let checks: [(String, () throws -> Void)] = [
            ("symmetricEigen", { _ = try LinearAlgebra.symmetricEigen(a) }),
            ("svd", { _ = try LinearAlgebra.svd(a) }),
            ("cholesky", { _ = try LinearAlgebra.cholesky(a) }),
            ("solve", { _ = try LinearAlgebra.solve(a, b) }),
        ]
        for (name, body) in checks {
            let error = #expect(throws: LinearAlgebraError.self, "\(name)") { try body() }
            guard case .nonFiniteInput? = error else {
                Issue.record("\(name): expected .nonFiniteInput, got \(String(describing: error))")
                continue
            }
        }
        // A finite matrix with an infinite right-hand side.
        let good = Self.tensor(Self.randomSPD(3, seed: 52))
        b[0] = .infinity
        let rhsError = #expect(throws: LinearAlgebraError.self) { try LinearAlgebra.solve(good, b) }
        if case .nonFiniteInput? = rhsError {} else {
            Issue.record("solve with infinite b: expected .nonFiniteInput, got \(String(describing: rhsError))")
        }
        let factor = try! LinearAlgebra.cholesky(good)
        let cholError = #expect(throws: LinearAlgebraError.self) { try LinearAlgebra.choleskySolve(factor: factor, b) }
        guard case .nonFiniteInput? = cholError else {
            Issue.record("choleskySolve: expected .nonFiniteInput, got \(String(describing: cholError))")
            return
        }
    }

    @Test func nonSquareThrowsTensorError() {
        let rect = TestSupport.randomTensor([3, 4], seed: 60)
        let vector = TestSupport.randomTensor([4], seed: 61)
        #expect((#expect(throws: TensorError.self) { try LinearAlgebra.symmetricEigen(rect) })?.isInvalidShape == true)
        #expect((#expect(throws: TensorError.self) { try LinearAlgebra.cholesky(rect) })?.isInvalidShape == true)
        #expect((#expect(throws: TensorError.self) { try LinearAlgebra.solve(rect, Tensor(zeros: [3])) })?.isInvalidShape == true)
        #expect((#expect(throws: TensorError.self) { try LinearAlgebra.choleskySolve(factor: rect, Tensor(zeros: [3])) })?.isInvalidShape == true)
        #expect((#expect(throws: TensorError.self) { try LinearAlgebra.symmetricEigen(vector) })?.isInvalidShape == true)
        #expect((#expect(throws: TensorError.self) { try LinearAlgebra.svd(vector) })?.isInvalidShape == true)
    }

    @Test func rightHandSideShapeMismatchThrows() {
        let a = Self.tensor(Self.randomSPD(3, seed: 70))
        for b in [Tensor(zeros: [4]), Tensor(zeros: [2, 2]), Tensor(zeros: [3, 1, 1])] {
            #expect((#expect(throws: TensorError.self) { try LinearAlgebra.solve(a, b) })?.isShapeMismatch == true, "\(b.shape)")
        }
        let factor = try! LinearAlgebra.cholesky(a)
        #expect((#expect(throws: TensorError.self) { try LinearAlgebra.choleskySolve(factor: factor, Tensor(zeros: [5])) })?.isShapeMismatch == true)
    }
}
