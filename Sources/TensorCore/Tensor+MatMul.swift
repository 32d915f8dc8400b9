/// Matrix products through OpenBLAS `sgemm`.
extension Tensor {
    /// `op(a) · op(b)` for 2-D tensors, `op` being an optional transpose.
    ///
    /// ```
    /// a: [M, K] (or [K, M] transposed), b: [K, N] (or [N, K] transposed) -> [M, N]
    /// ```
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) throws -> Tensor {
        try a.checkRank(2, "matmul lhs", layout: "M, K")
        try b.checkRank(2, "matmul rhs", layout: "K, N")
        let (m, k) = transposeA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
        let (kb, n) = transposeB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
        guard k == kb else {
            throw TensorError.shapeMismatch(
                operation: "matmul inner dimension (lhs \(a.shape)\(transposeA ? "ᵀ" : ""), rhs \(b.shape)\(transposeB ? "ᵀ" : ""))",
                expected: [k], got: [kb])
        }
        return Tensor(uninitializedShape: [m, n]) { c in
            if m == 0 || n == 0 || k == 0 {
                c.update(repeating: 0)
                return
            }
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    BLAS.parallelSgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                               a: ap.baseAddress!, lda: a.shape[1], b: bp.baseAddress!, ldb: b.shape[1],
                               c: c.baseAddress!, ldc: n)
                }
            }
        }
    }
}
