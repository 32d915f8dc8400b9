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

    /// `x . y` of single-precision vectors accumulated in double (`cblas_dsdot`).
    @inlinable
    public static func dsdot(count: Int, x: UnsafePointer<Float>, incx: Int = 1, y: UnsafePointer<Float>, incy: Int = 1) -> Double {
        count > 0 ? cblas_dsdot(Int32(count), x, Int32(incx), y, Int32(incy)) : 0
    }
}

/// Mixed-precision level-1 kernels that CBLAS lacks: float32 data against a float64 vector,
/// for iterative solvers (liblinear's coordinate descent) whose stopping rule needs `wᵀx`
/// more exactly than single precision gives. SIMD over 8 lanes.
public enum MixedPrecision {
    /// `Σ_j x_j w_j` for float32 `x` and float64 `w`.
    @inlinable
    public static func dot(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Double>, count: Int) -> Double {
        // Two accumulators hide the latency of the dependent additions.
        var sum0 = SIMD8<Double>(), sum1 = SIMD8<Double>()
        var j = 0
        while j + 16 <= count {
            let a0 = SIMD8<Double>(UnsafeRawPointer(x + j).loadUnaligned(as: SIMD8<Float>.self))
            let a1 = SIMD8<Double>(UnsafeRawPointer(x + j + 8).loadUnaligned(as: SIMD8<Float>.self))
            sum0 += a0 * UnsafeRawPointer(w + j).loadUnaligned(as: SIMD8<Double>.self)
            sum1 += a1 * UnsafeRawPointer(w + j + 8).loadUnaligned(as: SIMD8<Double>.self)
            j += 16
        }
        var total = (sum0 + sum1).sum()
        while j < count {
            total += Double(x[j]) * w[j]
            j += 1
        }
        return total
    }

    /// `w += a · x` for float32 `x` and float64 `w`.
    @inlinable
    public static func axpy(_ a: Double, _ x: UnsafePointer<Float>, _ w: UnsafeMutablePointer<Double>, count: Int) {
        let scale = SIMD8<Double>(repeating: a)
        var j = 0
        while j + 8 <= count {
            let xs = SIMD8<Double>(UnsafeRawPointer(x + j).loadUnaligned(as: SIMD8<Float>.self))
            let raw = UnsafeMutableRawPointer(w + j)
            raw.storeBytes(of: raw.loadUnaligned(as: SIMD8<Double>.self) + scale * xs, as: SIMD8<Double>.self)
            j += 8
        }
        while j < count {
            w[j] += a * Double(x[j])
            j += 1
        }
    }
}
