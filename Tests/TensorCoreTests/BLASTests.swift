import Testing
import TensorCore
import TestSupport

/// The CBLAS wrappers and `Tensor.matmul`, against naive Double loops.
@Suite struct BLASTests {
    struct TransposeCase: Sendable, CustomTestStringConvertible {
        var transposeA: Bool
        var transposeB: Bool
        var testDescription: String { "A\(transposeA ? "ᵀ" : "")·B\(transposeB ? "ᵀ" : "")" }
    }

    static let transposeCases = [
        TransposeCase(transposeA: false, transposeB: false), TransposeCase(transposeA: true, transposeB: false),
        TransposeCase(transposeA: false, transposeB: true), TransposeCase(transposeA: true, transposeB: true),
    ]

    /// A sub-matrix `rows x columns` starting at (`rowOffset`, `columnOffset`) of a random
    /// buffer whose row stride is `ld`.
    struct Strided {
        var buffer: [Float]
        var rows: Int, columns: Int, ld: Int, offset: Int
        init(rows: Int, columns: Int, ld: Int, rowOffset: Int, columnOffset: Int, seed: UInt64) {
            precondition(columnOffset + columns <= ld)
            (self.rows, self.columns, self.ld) = (rows, columns, ld)
            offset = rowOffset * ld + columnOffset
            buffer = TestSupport.randomTensor([(rows + rowOffset + 1) * ld], seed: seed).scalars
        }
        func element(_ r: Int, _ c: Int) -> Double { Double(buffer[offset + r * ld + c]) }
        func isInside(_ flat: Int) -> Bool {
            let relative = flat - offset
            guard relative >= 0 else { return false }
            return relative / ld < rows && relative % ld < columns
        }
    }

    /// Runs `sgemm` (or `parallelSgemm`) on sub-matrices of larger buffers (leading dimensions
    /// larger than needed, non-zero offsets) and checks `C = alpha·op(A)·op(B) + beta·C` against
    /// a Double triple loop, and that nothing outside the C sub-matrix changed.
    static func checkGemm(
        m: Int, n: Int, k: Int, _ t: TransposeCase, alpha: Float, beta: Float, parallel: Bool,
        rtol: Double = 1e-5, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        // Stored shapes: A is m x k (or k x m transposed), B is k x n (or n x k transposed).
        let a = t.transposeA
            ? Strided(rows: k, columns: m, ld: m + 3, rowOffset: 1, columnOffset: 2, seed: 1)
            : Strided(rows: m, columns: k, ld: k + 4, rowOffset: 2, columnOffset: 1, seed: 1)
        let b = t.transposeB
            ? Strided(rows: n, columns: k, ld: k + 2, rowOffset: 1, columnOffset: 1, seed: 2)
            : Strided(rows: k, columns: n, ld: n + 5, rowOffset: 1, columnOffset: 3, seed: 2)
        var c = Strided(rows: m, columns: n, ld: n + 3, rowOffset: 1, columnOffset: 2, seed: 3)
        let c0 = c
        func opA(_ i: Int, _ p: Int) -> Double { t.transposeA ? a.element(p, i) : a.element(i, p) }
        func opB(_ p: Int, _ j: Int) -> Double { t.transposeB ? b.element(j, p) : b.element(p, j) }

        a.buffer.withUnsafeBufferPointer { ap in
            b.buffer.withUnsafeBufferPointer { bp in
                c.buffer.withUnsafeMutableBufferPointer { cp in
                    if parallel {
                        BLAS.parallelSgemm(transposeA: t.transposeA, transposeB: t.transposeB, m: m, n: n, k: k, alpha: alpha,
                                           a: ap.baseAddress! + a.offset, lda: a.ld, b: bp.baseAddress! + b.offset, ldb: b.ld,
                                           beta: beta, c: cp.baseAddress! + c.offset, ldc: c.ld)
                    } else {
                        BLAS.sgemm(transposeA: t.transposeA, transposeB: t.transposeB, m: m, n: n, k: k, alpha: alpha,
                                   a: ap.baseAddress! + a.offset, lda: a.ld, b: bp.baseAddress! + b.offset, ldb: b.ld,
                                   beta: beta, c: cp.baseAddress! + c.offset, ldc: c.ld)
                    }
                }
            }
        }
        var actual: [Float] = []
        var expected: [Double] = []
        actual.reserveCapacity(m * n)
        expected.reserveCapacity(m * n)
        for i in 0..<m {
            for j in 0..<n {
                var total = 0.0
                for p in 0..<k { total += opA(i, p) * opB(p, j) }
                expected.append(Double(alpha) * total + Double(beta) * c0.element(i, j))
                actual.append(Float(c.element(i, j)))
            }
        }
        let name = "\(parallel ? "parallelSgemm" : "sgemm") m=\(m) n=\(n) k=\(k) \(t.testDescription)"
        expectClose(actual, expected, rtol: rtol, atol: 1e-5, name, sourceLocation: sourceLocation)
        let outside = c.buffer.indices.filter { !c.isInside($0) && c.buffer[$0] != c0.buffer[$0] }
        #expect(outside.isEmpty, "\(name) wrote outside C at \(outside.prefix(5))", sourceLocation: sourceLocation)
    }

    @Test(arguments: transposeCases)
    func sgemmSubmatricesWithAlphaBeta(_ t: TransposeCase) {
        Self.checkGemm(m: 5, n: 7, k: 3, t, alpha: 0.75, beta: -0.5, parallel: false)
        Self.checkGemm(m: 7, n: 2, k: 6, t, alpha: -1.5, beta: 2, parallel: false)
        Self.checkGemm(m: 4, n: 3, k: 5, t, alpha: 1, beta: 0, parallel: false)
    }

    /// `parallelSgemm` splits rows of C when m >= n, columns otherwise, once m·n·k reaches
    /// 2²¹; below that it is one plain call.
    @Test(arguments: transposeCases)
    func parallelSgemmMatchesNaive(_ t: TransposeCase) {
        Self.checkGemm(m: 130, n: 70, k: 240, t, alpha: 0.5, beta: -1.25, parallel: true, rtol: 1e-4)  // row split
        Self.checkGemm(m: 40, n: 300, k: 180, t, alpha: -0.75, beta: 0.5, parallel: true, rtol: 1e-4)  // column split
        Self.checkGemm(m: 5, n: 7, k: 3, t, alpha: 2, beta: 1, parallel: true)  // below the split threshold
    }

    @Test func sgemmBetaZeroOverwritesGarbage() {
        // Tensor.matmul and the conv kernels hand sgemm uninitialised output with beta = 0.
        let (m, n, k) = (4, 6, 5)
        let a = TestSupport.randomTensor([m, k], seed: 4).scalars
        let b = TestSupport.randomTensor([k, n], seed: 5).scalars
        var c = [Float](repeating: .nan, count: m * n)
        BLAS.sgemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &c, ldc: n)
        var expected: [Double] = []
        for i in 0..<m { for j in 0..<n { expected.append((0..<k).reduce(0.0) { $0 + Double(a[i * k + $1]) * Double(b[$1 * n + j]) }) } }
        expectClose(c, expected, rtol: 1e-5, atol: 1e-6)
    }

    @Test(arguments: [false, true])
    func sgemvWithLeadingDimensionAndStrides(transposeA: Bool) {
        let (rows, columns, lda) = (5, 4, 7)
        let (alpha, beta): (Float, Float) = (-1.25, 0.5)
        let a = TestSupport.randomTensor([rows * lda], seed: 6).scalars
        let xLength = transposeA ? rows : columns
        let yLength = transposeA ? columns : rows
        // x read with stride 2, y written with stride 3.
        let x = TestSupport.randomTensor([xLength * 2], seed: 7).scalars
        var y = TestSupport.randomTensor([yLength * 3], seed: 8).scalars
        let y0 = y
        BLAS.sgemv(transposeA: transposeA, rows: rows, columns: columns, alpha: alpha, a: a, lda: lda,
                   x: x, incx: 2, beta: beta, y: &y, incy: 3)
        var actual: [Float] = []
        var expected: [Double] = []
        for i in 0..<yLength {
            var total = 0.0
            for j in 0..<xLength {
                let aij = transposeA ? Double(a[j * lda + i]) : Double(a[i * lda + j])
                total += aij * Double(x[j * 2])
            }
            expected.append(Double(alpha) * total + Double(beta) * Double(y0[i * 3]))
            actual.append(y[i * 3])
        }
        expectClose(actual, expected, rtol: 1e-5, atol: 1e-6)
        for i in y.indices where i % 3 != 0 { #expect(y[i] == y0[i], "sgemv wrote between strided elements") }
    }

    @Test func level1Routines() {
        let n = 37
        let x = TestSupport.randomTensor([n], seed: 9).scalars
        var y = TestSupport.randomTensor([n], seed: 10).scalars
        let y0 = y

        BLAS.saxpy(count: n, alpha: 1.75, x: x, y: &y)
        expectClose(y, (0..<n).map { Double(y0[$0]) + 1.75 * Double(x[$0]) }, rtol: 1e-6, atol: 1e-6, "saxpy")

        let dot = BLAS.sdot(count: n, x: x, y: y0)
        expectRelativelyClose(Double(dot), Reference.dot(x, y0), scale: Reference.absDot(x, y0), tolerance: 1e-6, "sdot")

        var z = x
        BLAS.sscal(count: n, alpha: -0.3, x: &z)
        expectClose(z, x.map { Double($0) * -0.3 }, rtol: 1e-6, atol: 0, "sscal")

        let norm = BLAS.snrm2(count: n, x: x)
        expectRelativelyClose(Double(norm), Reference.dot(x, x).squareRoot(), scale: Reference.dot(x, x).squareRoot(), tolerance: 1e-6, "snrm2")
    }

    @Test func level1WithStrides() {
        let x = TestSupport.randomTensor([20], seed: 11).scalars
        var y = TestSupport.randomTensor([30], seed: 12).scalars
        let y0 = y
        // 10 elements of x at stride 2, 10 of y at stride 3.
        BLAS.saxpy(count: 10, alpha: 2, x: x, incx: 2, y: &y, incy: 3)
        for i in y.indices {
            let expected = i % 3 == 0 ? Double(y0[i]) + 2 * Double(x[(i / 3) * 2]) : Double(y0[i])
            #expect(abs(Double(y[i]) - expected) <= 1e-6, "saxpy strided at \(i)")
        }
        let xs = (0..<10).map { x[$0 * 2] }, ys = (0..<10).map { y0[$0 * 3] }
        let dot = BLAS.sdot(count: 10, x: x, incx: 2, y: y0, incy: 3)
        expectRelativelyClose(Double(dot), Reference.dot(xs, ys), scale: Reference.absDot(xs, ys), tolerance: 1e-6, "sdot strided")
        let norm = BLAS.snrm2(count: 10, x: x, incx: 2)
        expectRelativelyClose(Double(norm), Reference.dot(xs, xs).squareRoot(), scale: 1, tolerance: 1e-6, "snrm2 strided")
        var z = x
        BLAS.sscal(count: 10, alpha: 3, x: &z, incx: 2)
        for i in z.indices { #expect(z[i] == (i % 2 == 0 ? x[i] * 3 : x[i])) }
    }

    @Test func level1ZeroCount() {
        let x: [Float] = [1, 2, 3]
        var y: [Float] = [4, 5, 6]
        BLAS.saxpy(count: 0, alpha: 2, x: x, y: &y)
        #expect(y == [4, 5, 6])
        #expect(BLAS.sdot(count: 0, x: x, y: y) == 0)
        #expect(BLAS.snrm2(count: 0, x: x) == 0)
    }

    // MARK: Tensor.matmul

    @Test(arguments: transposeCases)
    func tensorMatmulMatchesNaive(_ t: TransposeCase) throws {
        let (m, n, k) = (4, 6, 3)
        let a = TestSupport.randomTensor(t.transposeA ? [k, m] : [m, k], seed: 13)
        let b = TestSupport.randomTensor(t.transposeB ? [n, k] : [k, n], seed: 14)
        let c = try Tensor.matmul(a, b, transposeA: t.transposeA, transposeB: t.transposeB)
        #expect(c.shape == [m, n])
        var expected: [Double] = []
        for i in 0..<m {
            for j in 0..<n {
                var total = 0.0
                for p in 0..<k {
                    let x = t.transposeA ? a[p, i] : a[i, p]
                    let y = t.transposeB ? b[j, p] : b[p, j]
                    total += Double(x) * Double(y)
                }
                expected.append(total)
            }
        }
        expectClose(c.scalars, expected, rtol: 1e-5, atol: 1e-6)
    }

    @Test func matmulInnerDimensionMismatchThrows() throws {
        let a = TestSupport.randomTensor([4, 3], seed: 15)
        let b = TestSupport.randomTensor([4, 5], seed: 16)
        let error = #expect(throws: TensorError.self) { try Tensor.matmul(a, b) }
        #expect(error?.isShapeMismatch == true)
        if case let .shapeMismatch(_, expected, got)? = error {
            #expect(expected == [3] && got == [4])
        }
        #expect((#expect(throws: TensorError.self) { try Tensor.matmul(a, a) })?.isShapeMismatch == true)
        #expect((#expect(throws: TensorError.self) { try Tensor.matmul(a, b, transposeB: true) })?.isShapeMismatch == true)
        // These combinations do fit.
        #expect(try Tensor.matmul(a, b, transposeA: true).shape == [3, 5])
        #expect(try Tensor.matmul(a, a, transposeB: true).shape == [4, 4])
    }

    @Test func matmulRejectsNonMatrices() {
        let matrix = TestSupport.randomTensor([3, 3], seed: 17)
        #expect((#expect(throws: TensorError.self) { try Tensor.matmul(TestSupport.randomTensor([3], seed: 1), matrix) })?.isInvalidShape == true)
        #expect((#expect(throws: TensorError.self) { try Tensor.matmul(matrix, TestSupport.randomTensor([3, 3, 1], seed: 1)) })?.isInvalidShape == true)
    }

    @Test func matmulWithEmptyInnerDimensionIsZero() throws {
        let c = try Tensor.matmul(Tensor(zeros: [3, 0]), Tensor(zeros: [0, 4]))
        #expect(c.shape == [3, 4])
        #expect(c.scalars.allSatisfy { $0 == 0 })
    }

    /// Regression: an empty outer dimension used to pass lda/ldb = 0 to sgemm and fail its
    /// precondition instead of returning an empty product.
    @Test func matmulWithEmptyOuterDimensionIsEmpty() throws {
        let a = TestSupport.randomTensor([2, 3], seed: 18)
        #expect(try Tensor.matmul(a, Tensor(zeros: [3, 0])).shape == [2, 0])
        #expect(try Tensor.matmul(Tensor(zeros: [3, 0]), TestSupport.randomTensor([3, 2], seed: 19), transposeA: true).shape == [0, 2])
        #expect(try Tensor.matmul(Tensor(zeros: [0, 3]), TestSupport.randomTensor([3, 2], seed: 20)).shape == [0, 2])
        #expect(try Tensor.matmul(a, Tensor(zeros: [0, 3]), transposeB: true).shape == [2, 0])
    }
}
