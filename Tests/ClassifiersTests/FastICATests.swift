import Foundation
import Learn
import TensorCore
import TestSupport
import Testing
@testable import Classifiers

/// One dataset of `Tests/Fixtures/FastICA/` and scikit-learn's fits on it.
private struct FastICAFixture: Decodable {
    struct Fit: Decodable {
        var algorithm: String
        var contrast: String
        var whitening: String
        var n_iter: Int
        var sources: Data
        var components: Data
        var whitening_matrix: Data
        var mean: Data
    }

    var name: String
    var n: Int
    var d: Int
    var k: Int
    var x: Data
    var fits: [Fit]

    static func load(_ name: String) throws -> FastICAFixture {
        try LinearICAFixtures.load(FastICAFixture.self, "FastICA/\(name).json")
    }

    func data() throws -> Tensor { try LinearICAFixtures.matrix(x, n, d) }

    /// Our estimator with scikit-learn's settings of `fit` (tolerance 1e-6, 1000 steps).
    func estimator(_ fit: Fit) -> FastICA {
        let contrast: FastICA.Contrast = switch fit.contrast {
        case "exp": .exp
        case "cube": .cube
        default: .logcosh(alpha: 1)
        }
        return FastICA(components: k, algorithm: fit.algorithm == "deflation" ? .deflation : .parallel,
                       contrast: contrast, whitening: fit.whitening == "svd" ? .svd : .eigen,
                       tolerance: 1e-6, maxIterations: 1000, seed: 0)
    }
}

/// Column statistics and matchings of `[n, k]` source matrices, in double precision.
private enum SourceComparison {
    static func column(_ s: Tensor, _ j: Int) -> [Double] {
        let (n, k) = (s.shape[0], s.shape[1])
        return (0..<n).map { Double(s.scalars[$0 * k + j]) }
    }

    static func correlation(_ a: [Double], _ b: [Double]) -> Double {
        let n = Double(a.count)
        let (ma, mb) = (a.reduce(0, +) / n, b.reduce(0, +) / n)
        var (ab, aa, bb) = (0.0, 0.0, 0.0)
        for (x, y) in zip(a, b) {
            ab += (x - ma) * (y - mb)
            aa += (x - ma) * (x - ma)
            bb += (y - mb) * (y - mb)
        }
        return ab / (aa * bb).squareRoot()
    }

    /// Greedy one-to-one matching of `ours`' columns to `theirs`' by |correlation|, most
    /// certain first: for each of our columns, the matched column and the signed correlation.
    static func match(_ ours: Tensor, _ theirs: Tensor) -> [(column: Int, correlation: Double)] {
        let k = ours.shape[1]
        var table = [[Double]](repeating: [Double](repeating: 0, count: k), count: k)
        for i in 0..<k { for j in 0..<k { table[i][j] = correlation(column(ours, i), column(theirs, j)) } }
        var result = [(column: Int, correlation: Double)](repeating: (-1, 0), count: k)
        var used = Set<Int>()
        let order = (0..<k).sorted { (table[$0].map(abs).max() ?? 0) > (table[$1].map(abs).max() ?? 0) }
        for i in order {
            var best = -1
            for j in 0..<k where !used.contains(j) && (best < 0 || abs(table[i][j]) > abs(table[i][best])) { best = j }
            used.insert(best)
            result[i] = (best, table[i][best])
        }
        return result
    }

    /// `Aᵀ B` for row-major `[n, p]` and `[n, q]` arrays, in double.
    static func crossProduct(_ a: [Double], _ b: [Double], n: Int, p: Int, q: Int) -> [Double] {
        var out = [Double](repeating: 0, count: p * q)
        for r in 0..<n { for i in 0..<p { for j in 0..<q { out[i * q + j] += a[r * p + i] * b[r * q + j] } } }
        return out
    }
}

@Suite struct FastICATests {
    @Test(arguments: ["laplace", "uniform", "subgaussian", "wide_laplace", "gram"])
    func matchesScikitLearn(dataset: String) throws {
        let fixture = try FastICAFixture.load(dataset)
        let x = try fixture.data()
        let (n, d, k) = (fixture.n, fixture.d, fixture.k)
        for reference in fixture.fits {
            let label = "\(dataset) \(reference.algorithm)/\(reference.contrast)/\(reference.whitening)"
            let (fitted, sources) = try fixture.estimator(reference).fitTransform(x)
            #expect(fitted.converged, "\(label)")
            #expect(fitted.warning == nil, "\(label)")
            #expect(sources.shape == [n, k], "\(label)")
            #expect(fitted.components.shape == [k, d] && fitted.mixing.shape == [d, k] && fitted.unmixing.shape == [k, k])

            // Each of our sources is one of scikit-learn's, up to sign and order.
            let theirs = try LinearICAFixtures.matrix(reference.sources, n, k)
            let matching = SourceComparison.match(sources, theirs)
            let weakest = matching.map { abs($0.correlation) }.min() ?? 0
            // Parallel FastICA has one fixed point here, whatever the start; deflation's
            // estimates depend on the order components are extracted in.
            let parallel = reference.algorithm == "parallel"
            #expect(weakest >= (parallel ? 0.9999 : 0.99), "\(label): weakest matched |correlation| \(weakest)")
            // Unit-variance sources: aligned, they agree value by value too.
            var worstSource = 0.0
            for (c, match) in matching.enumerated() {
                let sign = match.correlation < 0 ? -1.0 : 1.0
                let ours = SourceComparison.column(sources, c), aligned = SourceComparison.column(theirs, match.column)
                for i in 0..<n { worstSource = max(worstSource, abs(ours[i] - sign * aligned[i])) }
                let mean = ours.reduce(0, +) / Double(n)
                let variance = ours.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)
                #expect(abs(mean) < 1e-4 && abs(variance - 1) < 1e-3, "\(label): source \(c) mean \(mean), variance \(variance)")
            }
            #expect(worstSource < (parallel ? 0.02 : 0.5), "\(label): largest source difference \(worstSource)")

            // Same centring as scikit-learn.
            let theirMean = LinearICAFixtures.floats(reference.mean)
            let meanGap = zip(fitted.mean.scalars, theirMean).map { abs($0 - $1) }.max() ?? 0
            #expect(meanGap < 1e-5, "\(label): mean difference \(meanGap)")

            // The whitened training data is orthonormal: K Xcᵀ Xc Kᵀ = I.
            var centred = [Double](repeating: 0, count: n * d)
            for i in 0..<n { for j in 0..<d { centred[i * d + j] = Double(x[i, j]) - Double(fitted.mean.scalars[j]) } }
            let whiteningT = (0..<(d * k)).map { Double(fitted.whitening.scalars[($0 % k) * d + $0 / k]) }  // Kᵀ [d, k]
            var white = [Double](repeating: 0, count: n * k)
            for i in 0..<n {
                for c in 0..<k { for j in 0..<d { white[i * k + c] += centred[i * d + j] * whiteningT[j * k + c] } }
            }
            let gram = SourceComparison.crossProduct(white, white, n: n, p: k, q: k)
            let whiteningError = (0..<(k * k)).map { abs(gram[$0] - ($0 / k == $0 % k ? 1 : 0)) }.max() ?? 0
            #expect(whiteningError < 1e-4, "\(label): |K Xcᵀ Xc Kᵀ − I| \(whiteningError)")

            // The mixing matrix inverts the components on their span.
            let product = try Tensor.matmul(fitted.components, fitted.mixing)
            let identityError = (0..<(k * k)).map { abs(Double(product.scalars[$0]) - ($0 / k == $0 % k ? 1 : 0)) }.max() ?? 0
            #expect(identityError < 1e-4, "\(label): |components·mixing − I| \(identityError)")
            let projector = try Tensor.matmul(fitted.mixing, fitted.components)
            let squared = try Tensor.matmul(projector, projector)
            var projectorError: Float = 0
            for i in 0..<d {
                for j in 0..<d {
                    projectorError = max(projectorError, abs(squared[i, j] - projector[i, j]), abs(projector[i, j] - projector[j, i]))
                }
            }
            #expect(projectorError < 1e-4, "\(label): mixing·components is not a projector (\(projectorError))")
        }
    }

    /// The eigen and SVD whitenings agree with scikit-learn's `whitening_` (same signs).
    @Test func whiteningMatchesScikitLearn() throws {
        let fixture = try FastICAFixture.load("laplace")
        let x = try fixture.data()
        for reference in fixture.fits {
            let fitted = try fixture.estimator(reference).fit(x)
            let theirs = LinearICAFixtures.floats(reference.whitening_matrix)
            let scale = theirs.map(abs).max() ?? 1
            let gap = zip(fitted.whitening.scalars, theirs).map { abs($0 - $1) }.max() ?? 0
            #expect(gap / scale < 1e-3, "\(reference.whitening): whitening difference \(gap / scale) of the largest entry")
        }
    }

    @Test func transformOfTrainingRowsGivesTheSources() throws {
        let fixture = try FastICAFixture.load("gram")
        let x = try fixture.data()
        let (fitted, sources) = try FastICA(components: 5).fitTransform(x)
        let again = try fitted.transform(x)
        #expect(again == sources)
        let reconstructed = try fitted.inverseTransform(sources)
        let projected = try fitted.inverseTransform(try fitted.transform(reconstructed))
        // inverseTransform projects onto the components' span: applying it twice changes nothing.
        var gap: Float = 0
        for i in 0..<(x.count) { gap = max(gap, abs(reconstructed.scalars[i] - projected.scalars[i])) }
        #expect(gap < 1e-3 * (x.scalars.map(abs).max() ?? 1))
    }

    @Test func fullRankRoundTrip() throws {
        let x = TestSupport.randomTensor([300, 4], seed: 3)
        let fitted = try FastICA().fit(x)
        #expect(fitted.componentCount == 4)
        let back = try fitted.inverseTransform(try fitted.transform(x))
        #expect(TestSupport.isClose(back, x, rtol: 1e-4, atol: 1e-4))
    }

    @Test(arguments: [FastICA.Algorithm.parallel, .deflation])
    func reportsNonConvergence(algorithm: FastICA.Algorithm) throws {
        let fixture = try FastICAFixture.load("laplace")
        let fitted = try FastICA(components: 4, algorithm: algorithm, tolerance: 1e-12, maxIterations: 1).fit(try fixture.data())
        #expect(!fitted.converged)
        #expect(fitted.iterations == 1)
        #expect(fitted.warning == "FastICA did not converge in 1 iterations (tolerance 1e-12); consider raising maxIterations or tolerance")
    }

    /// Two fits with one seed give identical bytes. Run in a child process (an exit test):
    /// tests run concurrently in one process, and another test's LAPACK call changes OpenBLAS's
    /// thread count (`Engine.withLibraryThreads`) and with it the rounding of our eigensolves.
    @Test func sameSeedSameBytes() async {
        await #expect(processExitsWith: .success) {
            for name in ["uniform", "gram"] {
                for algorithm in [FastICA.Algorithm.parallel, .deflation] {
                    for whitening in [FastICA.Whitening.eigen, .svd] {
                        let x = try FastICAFixture.load(name).data()
                        let estimator = FastICA(components: 4, algorithm: algorithm, whitening: whitening, seed: 11)
                        let (first, second) = (try estimator.fit(x), try estimator.fit(x))
                        #expect(first == second, "\(name) \(algorithm) \(whitening): two fits differ")
                    }
                }
            }
        }
    }

    @Test func rejectsNonFiniteData() throws {
        var x = TestSupport.randomTensor([20, 3], seed: 1)
        x[4, 2] = .infinity
        #expect {
            _ = try FastICA().fit(x)
        } throws: { error in
            guard case LearnError.nonFinite(_, let row, let column, _) = error else { return false }
            return row == 4 && column == 2
        }
    }

    @Test func rejectsBadOptions() throws {
        let x = TestSupport.randomTensor([20, 3], seed: 1)
        let bad: [(FastICA, String)] = [
            (FastICA(components: 4), "components"), (FastICA(components: 0), "components"),
            (FastICA(tolerance: 0), "tolerance"), (FastICA(maxIterations: 0), "maxIterations"),
            (FastICA(contrast: .logcosh(alpha: 3)), "contrast alpha"),
        ]
        for (estimator, option) in bad {
            #expect {
                _ = try estimator.fit(x)
            } throws: { error in
                guard case LearnError.invalidOption(let name, _, _) = error else { return false }
                return name == option
            }
        }
    }

    /// With fewer samples than features the centred data has rank n − 1: asking for n
    /// components is refused, naming both numbers; the default takes n − 1.
    @Test(arguments: [FastICA.Whitening.eigen, .svd])
    func refusesMoreComponentsThanTheRank(whitening: FastICA.Whitening) throws {
        let x = try FastICAFixture.load("gram").data()
        #expect {
            _ = try FastICA(components: 60, whitening: whitening).fit(x)
        } throws: { error in
            guard case LearnError.numerical(let message) = error else { return false }
            return message.contains("60 components") && message.contains("rank 59")
        }
        let fitted = try FastICA(whitening: whitening).fit(x)
        #expect(fitted.componentCount == 59)
    }
}
