import COpenBLAS

/// Thin row-major wrappers over OpenBLAS's CBLAS. Arguments are checked with preconditions:
/// these are internal building blocks called with shapes computed by the engine, and
/// `Tensor`-level operations validate user shapes (throwing) before reaching here.
public enum BLAS {
    /// `C = alpha * op(A) * op(B) + beta * C`, all row-major.
    ///
    /// `op(A)` is `m x k`, `op(B)` is `k x n`, `C` is `m x n`. Leading dimensions are the row
    /// strides of the matrices as stored (so `lda >= k` when `A` is not transposed and
    /// `lda >= m` when it is), which allows sub-matrices of larger buffers.
    @inlinable
    public static func sgemm(
        transposeA: Bool = false, transposeB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "sgemm: negative size m=\(m) n=\(n) k=\(k)")
        precondition(lda >= max(1, transposeA ? m : k), "sgemm: lda=\(lda) too small")
        precondition(ldb >= max(1, transposeB ? k : n), "sgemm: ldb=\(ldb) too small")
        precondition(ldc >= max(1, n), "sgemm: ldc=\(ldc) too small for n=\(n)")
        if m == 0 || n == 0 { return }
        _ = Engine.singleThreadedLibrary
        cblas_sgemm(
            CblasRowMajor,
            transposeA ? CblasTrans : CblasNoTrans,
            transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k),
            alpha, a, Int32(lda), b, Int32(ldb),
            beta, c, Int32(ldc))
    }

    /// `sgemm` split across the engine's workers, each running single-threaded OpenBLAS on a
    /// block of rows of `C` (or of columns, when `C` is wide and short). Same arguments and
    /// result as `sgemm`; the split is fixed for a thread count, so results are reproducible.
    ///
    /// The workbench keeps OpenBLAS's own pool at one thread and parallelises here instead:
    /// OpenBLAS's idle workers spin (`sched_yield`) after each call and steal the cores from
    /// the elementwise kernels that run between GEMMs (measured: the sparse-autoencoder
    /// epoch spent ~19% of its time in the scheduler).
    public static func parallelSgemm(
        transposeA: Bool = false, transposeB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        let splitRows = m >= n
        let extent = splitRows ? m : n
        // Below ~4 MFLOP a split costs more in dispatch than it gains.
        let workers = m * n * k < (1 << 21) ? 1 : min(Engine.threads, max(1, extent / 16))
        Engine.parallelWorkers(workers) { worker in
            let lower = extent * worker / workers
            let upper = extent * (worker + 1) / workers
            guard upper > lower else { return }
            if splitRows {
                sgemm(transposeA: transposeA, transposeB: transposeB, m: upper - lower, n: n, k: k, alpha: alpha,
                      a: a + (transposeA ? lower : lower * lda), lda: lda, b: b, ldb: ldb,
                      beta: beta, c: c + lower * ldc, ldc: ldc)
            } else {
                sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: upper - lower, k: k, alpha: alpha,
                      a: a, lda: lda, b: b + (transposeB ? lower * ldb : lower), ldb: ldb,
                      beta: beta, c: c + lower, ldc: ldc)
            }
        }
    }

    /// `y = alpha * op(A) * x + beta * y` with `A` stored `rows x columns` (row-major).
    @inlinable
    public static func sgemv(
        transposeA: Bool = false, rows: Int, columns: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        x: UnsafePointer<Float>, incx: Int = 1,
        beta: Float = 0, y: UnsafeMutablePointer<Float>, incy: Int = 1
    ) {
        precondition(rows >= 0 && columns >= 0 && lda >= max(1, columns), "sgemv: bad sizes")
        if rows == 0 || columns == 0 { return }
        cblas_sgemv(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans,
            Int32(rows), Int32(columns), alpha, a, Int32(lda), x, Int32(incx), beta, y, Int32(incy))
    }

    /// `y += alpha * x`.
    @inlinable
    public static func saxpy(
        count: Int, alpha: Float, x: UnsafePointer<Float>, incx: Int = 1,
        y: UnsafeMutablePointer<Float>, incy: Int = 1
    ) {
        if count > 0 { cblas_saxpy(Int32(count), alpha, x, Int32(incx), y, Int32(incy)) }
    }

    /// `x . y`, accumulated in single precision as OpenBLAS does.
    @inlinable
    public static func sdot(count: Int, x: UnsafePointer<Float>, incx: Int = 1, y: UnsafePointer<Float>, incy: Int = 1) -> Float {
        count > 0 ? cblas_sdot(Int32(count), x, Int32(incx), y, Int32(incy)) : 0
    }

    /// `x *= alpha`.
    @inlinable
    public static func sscal(count: Int, alpha: Float, x: UnsafeMutablePointer<Float>, incx: Int = 1) {
        if count > 0 { cblas_sscal(Int32(count), alpha, x, Int32(incx)) }
    }

    /// Euclidean norm of `x`.
    @inlinable
    public static func snrm2(count: Int, x: UnsafePointer<Float>, incx: Int = 1) -> Float {
        count > 0 ? cblas_snrm2(Int32(count), x, Int32(incx)) : 0
    }
}
