import Testing
import TensorCore
import TestSupport

/// `BLAS.parallelSgemm` splits rows or columns across the default workers; every transpose
/// combination and a strided sub-matrix must give what one `sgemm` call gives.
struct ParallelGEMMTests {
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func splitMatchesSingleCall(transposes: (Bool, Bool)) throws {
        let (ta, tb) = transposes
        for (m, n, k) in [(300, 40, 70), (40, 300, 70), (257, 129, 65)] {
            let lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2
            let a = TestSupport.randomTensor([(ta ? k : m) * lda], seed: 1)
            let b = TestSupport.randomTensor([(tb ? n : k) * ldb], seed: 2)
            var single = TestSupport.randomTensor([m * ldc], seed: 3)
            var split = single
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    single.withUnsafeMutableBufferPointer { cp in
                        BLAS.sgemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 0.5, a: ap.baseAddress!, lda: lda,
                                   b: bp.baseAddress!, ldb: ldb, beta: 2, c: cp.baseAddress!, ldc: ldc)
                    }
                    split.withUnsafeMutableBufferPointer { cp in
                        BLAS.parallelSgemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 0.5, a: ap.baseAddress!, lda: lda,
                                           b: bp.baseAddress!, ldb: ldb, beta: 2, c: cp.baseAddress!, ldc: ldc)
                    }
                }
            }
            #expect(TestSupport.isClose(split, single, rtol: 1e-5, atol: 1e-5), "m=\(m) n=\(n) k=\(k)")
        }
    }
}
