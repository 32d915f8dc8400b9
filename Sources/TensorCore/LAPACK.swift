import COpenBLAS

/// A LAPACK routine reported failure through its `info` value.
public enum LinearAlgebraError: Error, Equatable, CustomStringConvertible {
    /// `info < 0`: argument number `argument` was illegal (a bug in the wrapper or its input).
    case illegalArgument(routine: String, argument: Int)
    /// `info > 0` from a factorisation: the matrix is exactly singular at pivot `pivot`.
    case singular(routine: String, pivot: Int)
    /// `info > 0` from Cholesky: the leading minor of order `order` is not positive definite.
    case notPositiveDefinite(routine: String, order: Int)
    /// `info > 0` from an iterative routine (eigen/SVD): it did not converge.
    case noConvergence(routine: String, info: Int)
    /// The input held NaN or infinity, which LAPACK cannot be trusted with.
    case nonFiniteInput(routine: String)

    public var description: String {
        switch self {
        case let .illegalArgument(routine, argument): return "\(routine): argument \(argument) is illegal"
        case let .singular(routine, pivot): return "\(routine): matrix is singular (zero pivot at \(pivot))"
        case let .notPositiveDefinite(routine, order):
            return "\(routine): matrix is not positive definite (leading minor of order \(order))"
        case let .noConvergence(routine, info): return "\(routine): did not converge (info \(info))"
        case let .nonFiniteInput(routine): return "\(routine): input contains NaN or infinity"
        }
    }
}

/// Dense linear algebra on 2-D tensors through LAPACKE (row-major storage throughout).
public enum LinearAlgebra {
    private static func square(_ a: Tensor, _ routine: String) throws -> Int {
        guard a.rank == 2, a.shape[0] == a.shape[1] else {
            throw TensorError.invalidShape(operation: routine, shape: a.shape, reason: "expected a square matrix")
        }
        guard a.scalars.allSatisfy({ $0.isFinite }) else { throw LinearAlgebraError.nonFiniteInput(routine: routine) }
        return a.shape[0]
    }

    private static func check(_ info: Int32, _ routine: String, positive: (Int) -> LinearAlgebraError) throws {
        if info < 0 { throw LinearAlgebraError.illegalArgument(routine: routine, argument: Int(-info)) }
        if info > 0 { throw positive(Int(info)) }
    }

    /// Eigendecomposition of a symmetric matrix (`ssyevd`, divide and conquer; the upper
    /// triangle is read).
    ///
    /// ```
    /// A = V diag(values) Vᵀ
    /// ```
    /// - Returns: `values` `[n]` in ascending order and `vectors` `[n, n]` whose **columns** are
    ///   the orthonormal eigenvectors.
    public static func symmetricEigen(_ a: Tensor) throws -> (values: Tensor, vectors: Tensor) {
        let routine = "LAPACKE_ssyevd"
        let n = try square(a, routine)
        var vectors = a
        var values = Tensor(zeros: [n])
        guard 1 + 6 * n + 2 * n * n <= Int(Int32.max) else {
            throw TensorError.invalidShape(operation: routine, shape: a.shape, reason: "too large for LAPACK's 32-bit workspace sizes")
        }
        // Workspace sized by LAPACK's documented minimum, not by a workspace query: the query
        // returns its size as a float, which rounds below the need once n ≳ 2,900 (2n² > 2²⁴).
        var work = [Float](repeating: 0, count: 1 + 6 * n + 2 * n * n)
        var iwork = [Int32](repeating: 0, count: 3 + 5 * n)
        let info = Engine.withLibraryThreads { vectors.withUnsafeMutableBufferPointer { v in
            values.withUnsafeMutableBufferPointer { w in
                work.withUnsafeMutableBufferPointer { workPtr in
                    iwork.withUnsafeMutableBufferPointer { iworkPtr in
                        LAPACKE_ssyevd_work(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "V")), Int8(UInt8(ascii: "U")),
                                            Int32(n), v.baseAddress, Int32(max(1, n)), w.baseAddress,
                                            workPtr.baseAddress, Int32(workPtr.count), iworkPtr.baseAddress, Int32(iworkPtr.count))
                    }
                }
            }
        } }
        try check(info, routine) { .noConvergence(routine: routine, info: $0) }
        return (values, vectors)
    }

    /// Thin singular value decomposition (`sgesdd`).
    ///
    /// ```
    /// A = U diag(s) Vᵀ,  A: [m, n], U: [m, r], s: [r], Vᵀ: [r, n], r = min(m, n)
    /// ```
    /// Singular values come in descending order.
    public static func svd(_ a: Tensor) throws -> (u: Tensor, s: Tensor, vt: Tensor) {
        let routine = "LAPACKE_sgesdd"
        guard a.rank == 2 else {
            throw TensorError.invalidShape(operation: routine, shape: a.shape, reason: "expected a matrix")
        }
        guard a.scalars.allSatisfy({ $0.isFinite }) else { throw LinearAlgebraError.nonFiniteInput(routine: routine) }
        let (m, n) = (a.shape[0], a.shape[1])
        let r = min(m, n)
        var work = a
        var u = Tensor(zeros: [m, r])
        var s = Tensor(zeros: [r])
        var vt = Tensor(zeros: [r, n])
        let info = Engine.withLibraryThreads { work.withUnsafeMutableBufferPointer { aPtr in
            u.withUnsafeMutableBufferPointer { uPtr in
                s.withUnsafeMutableBufferPointer { sPtr in
                    vt.withUnsafeMutableBufferPointer { vtPtr in
                        LAPACKE_sgesdd(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "S")), Int32(m), Int32(n),
                                       aPtr.baseAddress, Int32(max(1, n)), sPtr.baseAddress,
                                       uPtr.baseAddress, Int32(max(1, r)), vtPtr.baseAddress, Int32(max(1, n)))
                    }
                }
            }
        } }
        try check(info, routine) { .noConvergence(routine: routine, info: $0) }
        return (u, s, vt)
    }

    /// Thin SVD in double precision (`dgesdd`) of a small row-major `rows × columns` matrix,
    /// for geometry (affines, orientations) where Float32 would lose the precision nibabel keeps.
    ///
    /// ```
    /// A = U diag(s) Vᵀ,  U: [m, r], s: [r] descending, Vᵀ: [r, n], r = min(m, n)
    /// ```
    public static func svd(doublePrecision a: [Double], rows m: Int, columns n: Int) throws
        -> (u: [Double], s: [Double], vt: [Double])
    {
        let routine = "LAPACKE_dgesdd"
        precondition(a.count == m * n, "svd: \(a.count) entries for a \(m)×\(n) matrix")
        guard a.allSatisfy({ $0.isFinite }) else { throw LinearAlgebraError.nonFiniteInput(routine: routine) }
        let r = min(m, n)
        var work = a
        var u = [Double](repeating: 0, count: m * r)
        var s = [Double](repeating: 0, count: r)
        var vt = [Double](repeating: 0, count: r * n)
        let info = Engine.withLibraryThreads {
            LAPACKE_dgesdd(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "S")), Int32(m), Int32(n), &work, Int32(max(1, n)),
                           &s, &u, Int32(max(1, r)), &vt, Int32(max(1, n)))
        }
        try check(info, routine) { .noConvergence(routine: routine, info: $0) }
        return (u, s, vt)
    }

    /// Cholesky factor of a symmetric positive-definite matrix (`spotrf`, lower triangle).
    ///
    /// ```
    /// A = L Lᵀ
    /// ```
    /// - Returns: `L` `[n, n]`, with zeros above the diagonal.
    /// - Throws: `LinearAlgebraError.notPositiveDefinite` when `A` is not.
    public static func cholesky(_ a: Tensor) throws -> Tensor {
        let routine = "LAPACKE_spotrf"
        let n = try square(a, routine)
        var l = a
        let info = Engine.withLibraryThreads {
            l.withUnsafeMutableBufferPointer {
                LAPACKE_spotrf(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "L")), Int32(n), $0.baseAddress, Int32(max(1, n)))
            }
        }
        try check(info, routine) { .notPositiveDefinite(routine: routine, order: $0) }
        l.withUnsafeMutableBufferPointer { p in
            for row in 0..<n { for column in (row + 1)..<max(row + 1, n) { p[row * n + column] = 0 } }
        }
        return l
    }

    /// Solves `A X = B` given the Cholesky factor `L` of `A` (`spotrs`).
    /// - Parameters:
    ///   - factor: `L` `[n, n]` from `cholesky(_:)`.
    ///   - b: right-hand sides `[n]` or `[n, k]`.
    /// - Returns: `X` with the shape of `b`.
    public static func choleskySolve(factor: Tensor, _ b: Tensor) throws -> Tensor {
        let routine = "LAPACKE_spotrs"
        let n = try square(factor, routine)
        let rhs = try rightHandSides(b, n: n, routine)
        var x = b
        let info = Engine.withLibraryThreads { factor.withUnsafeBufferPointer { l in
            x.withUnsafeMutableBufferPointer { xp in
                LAPACKE_spotrs(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "L")), Int32(n), Int32(rhs),
                               l.baseAddress, Int32(max(1, n)), xp.baseAddress, Int32(max(1, rhs)))
            }
        } }
        try check(info, routine) { .illegalArgument(routine: routine, argument: $0) }
        return x
    }

    /// Solves the general square system `A X = B` by LU with partial pivoting (`sgesv`).
    /// - Throws: `LinearAlgebraError.singular` when `A` is exactly singular.
    public static func solve(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        let routine = "LAPACKE_sgesv"
        let n = try square(a, routine)
        let rhs = try rightHandSides(b, n: n, routine)
        var lu = a
        var x = b
        var pivots = [Int32](repeating: 0, count: n)
        let info = Engine.withLibraryThreads { lu.withUnsafeMutableBufferPointer { ap in
            x.withUnsafeMutableBufferPointer { xp in
                LAPACKE_sgesv(LAPACK_ROW_MAJOR, Int32(n), Int32(rhs), ap.baseAddress, Int32(max(1, n)),
                              &pivots, xp.baseAddress, Int32(max(1, rhs)))
            }
        } }
        try check(info, routine) { .singular(routine: routine, pivot: $0) }
        return x
    }

    private static func rightHandSides(_ b: Tensor, n: Int, _ routine: String) throws -> Int {
        guard (b.rank == 1 || b.rank == 2), b.shape[0] == n else {
            throw TensorError.shapeMismatch(operation: "\(routine) right-hand side", expected: [n], got: b.shape)
        }
        guard b.scalars.allSatisfy({ $0.isFinite }) else { throw LinearAlgebraError.nonFiniteInput(routine: routine) }
        return b.rank == 1 ? 1 : b.shape[1]
    }
}
