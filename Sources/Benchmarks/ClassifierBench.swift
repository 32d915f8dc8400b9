import Classifiers
import Foundation
import Learn
import TensorCore

extension Bench {
    /// The SVM training shapes of bench_peers.py (scikit-learn's SVC and LinearSVC, C = 1):
    /// n = 400, 1000, 4000 training rows of d = 512 or 2048 standardised features.
    static let svmShapes = [(400, 512), (400, 2048), (1000, 512), (1000, 2048), (4000, 512), (4000, 2048)]
    /// FastICA shapes of bench_peers.py: (samples, features, components).
    static let icaShapes = [(400, 20000, 20), (400, 20000, 50), (4000, 512, 20), (4000, 512, 50)]

    /// Training an SVM (`svc_<kernel>_fit_<n>x<d>`, the SMO solver with probability off, as
    /// the peers' SVC()) and the liblinear fast path (`linear_svc_fit_<n>x<d>`), and FastICA
    /// (`fastica_<n>x<d>_k<k>`: parallel, logcosh, unit-variance whitening, tol 1e-4, at most
    /// 200 iterations, as the peers' FastICA). Data: `BenchData`, built like the peers'.
    static var classifierKernels: [Kernel] {
        var kernels: [Kernel] = []
        for (n, d) in svmShapes {
            for kernel in ["rbf", "linear"] {
                kernels.append(Kernel(name: "svc_\(kernel)_fit_\(n)x\(d)", gflop: nil) { () throws -> (call: () throws -> Void, facts: () -> [String: Double]?) in
                    let (x, y) = BenchData.classification(samples: n, features: d, seed: 0)
                    var options = SVMOptions()
                    options.kernel = kernel == "rbf" ? .rbf(gamma: .scale) : .linear
                    let svc = SupportVectorClassifier(options: options)
                    let last = LastResult<FittedSVC>()
                    return ({ last.value = try svc.fit(x, y) }, {
                        last.value.map { ["n_support": Double($0.supportIndices.count), "n_iter": Double($0.iterations.reduce(0, +))] }
                    })
                })
            }
            kernels.append(Kernel(name: "linear_svc_fit_\(n)x\(d)", gflop: nil) { () throws -> (call: () throws -> Void, facts: () -> [String: Double]?) in
                let (x, y) = BenchData.classification(samples: n, features: d, seed: 0)
                let svc = LinearSVC()
                let last = LastResult<LinearSVC.Fitted>()
                return ({ last.value = try svc.fit(x, y) }, { last.value.map { ["n_iter": Double($0.iterations)] } })
            })
        }
        for (n, d, k) in icaShapes {
            kernels.append(Kernel(name: "fastica_\(n)x\(d)_k\(k)", gflop: nil) { () throws -> (call: () throws -> Void, facts: () -> [String: Double]?) in
                let x = BenchData.mixtures(samples: n, features: d, sources: k, seed: 0)
                let ica = FastICA(components: k)
                let last = LastResult<FastICA.Fitted>()
                return ({ last.value = try ica.fit(x) }, { last.value.map { ["n_iter": Double($0.iterations)] } })
            })
        }
        return kernels
    }
}

extension Bench {
    /// Writes the classifier kernels' inputs as `.npy` (float32; labels as 0/1 floats) into
    /// `directory`, so the peers can be timed on the very same matrices
    /// (`reports/bench_sklearn_same_data.py`): `svm_<n>x<d>_x.npy`, `svm_<n>x<d>_y.npy`,
    /// `fastica_<n>x<d>_k<k>.npy`.
    /// - Returns: the files written.
    public static func dumpClassifierData(to directory: URL) throws -> [URL] {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var files: [URL] = []
        func write(_ tensor: Tensor, _ name: String) throws {
            let url = directory.appendingPathComponent(name)
            try NumpyFile.write(tensor, to: url)
            files.append(url)
        }
        for (n, d) in svmShapes {
            let (x, y) = BenchData.classification(samples: n, features: d, seed: 0)
            try write(x, "svm_\(n)x\(d)_x.npy")
            try write(try Tensor(shape: [n], scalars: y.map(Float.init)), "svm_\(n)x\(d)_y.npy")
        }
        for (n, d, k) in icaShapes {
            try write(BenchData.mixtures(samples: n, features: d, sources: k, seed: 0), "fastica_\(n)x\(d)_k\(k).npy")
        }
        return files
    }
}

/// Benchmark data built as bench_peers.py builds its own with scikit-learn (the same recipe,
/// our generator, so not the same numbers: the report gives support vector and iteration
/// counts to set beside the peers').
public enum BenchData {
    /// `make_classification(n_informative=32, n_redundant=32, flip_y=0.01, class_sep=2.0)`
    /// then standardised: two classes of two Gaussian clusters each, centred on vertices of a
    /// hypercube of side 2·class_sep in the 32 informative dimensions with a random linear
    /// mixing per cluster; 32 random linear combinations of them; standard normal noise in
    /// the other features; 1% of the labels drawn at random.
    /// - Returns: `x [n, d]` standardised per feature, labels `y` in {0, 1}.
    public static func classification(samples n: Int, features d: Int, seed: UInt64) -> (x: Tensor, y: [Int]) {
        let informative = 32, redundant = 32, separation: Float = 2
        precondition(d >= informative + redundant, "BenchData: \(d) features, at least 64 needed")
        var generator = Xoshiro256StarStar(seed: seed)
        let clusters = 4
        let centroids = (0..<clusters).map { _ in (0..<informative).map { _ in generator.next() & 1 == 0 ? -separation : separation } }
        let mixings = (0..<clusters).map { _ in (0..<(informative * informative)).map { _ in 2 * generator.nextUnitFloat() - 1 } }
        let combination = (0..<(informative * redundant)).map { _ in 2 * generator.nextUnitFloat() - 1 }
        var y = [Int](repeating: 0, count: n)
        var x = Tensor(zeros: [n, d])
        x.withUnsafeMutableBufferPointer { p in
            var z = [Float](repeating: 0, count: informative)
            for i in 0..<n {
                let cluster = i % clusters
                y[i] = cluster % 2
                for j in 0..<informative { z[j] = generator.nextStandardNormal() }
                let row = i * d
                for j in 0..<informative {
                    var total = centroids[cluster][j]
                    for m in 0..<informative { total += z[m] * mixings[cluster][m * informative + j] }
                    p[row + j] = total
                }
                for j in 0..<redundant {
                    var total: Float = 0
                    for m in 0..<informative { total += p[row + m] * combination[m * redundant + j] }
                    p[row + informative + j] = total
                }
                for j in (informative + redundant)..<d { p[row + j] = generator.nextStandardNormal() }
                if generator.nextUnitDouble() < 0.01 { y[i] = Int(generator.next() & 1) }
            }
        }
        // The data is finite by construction.
        let standardised = (try? Standardiser().fit(x).transform(x)) ?? x
        return (standardised, y)
    }

    /// `k` Laplace sources `S [n, k]` mixed by a standard normal `A [k, d]`, plus noise:
    /// `X = S A + 0.1 N(0, 1)`.
    public static func mixtures(samples n: Int, features d: Int, sources k: Int, seed: UInt64) -> Tensor {
        var generator = Xoshiro256StarStar(seed: seed)
        let s = Tensor(uninitializedShape: [n, k]) { out in
            for i in 0..<out.count {
                let u = generator.nextUnitDouble() - 0.5
                out[i] = Float(-(u < 0 ? -1.0 : 1.0) * Foundation.log(max(1e-300, 1 - 2 * abs(u))))
            }
        }
        let a = Tensor(uninitializedShape: [k, d]) { out in for i in 0..<out.count { out[i] = generator.nextStandardNormal() } }
        var x = (try? Tensor.matmul(s, a)) ?? Tensor(zeros: [n, d])
        x.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] += 0.1 * generator.nextStandardNormal() } }
        return x
    }
}

/// The last timed call's result, for a kernel's facts.
final class LastResult<Value> {
    var value: Value?
}
