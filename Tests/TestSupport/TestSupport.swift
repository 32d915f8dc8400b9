import Foundation
import NeuralNet
import TensorCore

/// Shared helpers for the test targets: tolerant comparison, seeded random tensors and
/// central finite-difference gradient checks.
public enum TestSupport {
    /// A tensor with elements uniform in `[low, high)` from a seeded generator.
    public static func randomTensor(_ shape: [Int], seed: UInt64, low: Float = -1, high: Float = 1) -> Tensor {
        var generator = Xoshiro256StarStar(seed: seed)
        return Tensor(uninitializedShape: shape) { out in
            for i in 0..<out.count { out[i] = low + (high - low) * generator.nextUnitFloat() }
        }
    }

    /// Largest violation of `|a − b| <= atol + rtol·|b|` over all elements, 0 when close
    /// (shapes must match, else `.infinity`).
    public static func closeness(_ a: Tensor, _ b: Tensor, rtol: Float, atol: Float) -> Float {
        guard a.shape == b.shape else { return .infinity }
        return closeness(a.scalars, b.scalars, rtol: rtol, atol: atol)
    }

    /// `closeness` of two runs of values (different lengths give `.infinity`).
    public static func closeness<A: Collection<Float>, B: Collection<Float>>(_ a: A, _ b: B, rtol: Float, atol: Float) -> Float {
        guard a.count == b.count else { return .infinity }
        var worst: Float = 0
        for (x, y) in zip(a, b) {
            let excess = abs(x - y) - (atol + rtol * abs(y))
            if !(excess <= 0) { worst = max(worst, excess.isNaN ? .infinity : excess) }
        }
        return worst
    }

    public static func isClose(_ a: Tensor, _ b: Tensor, rtol: Float = 1e-4, atol: Float = 1e-5) -> Bool {
        closeness(a, b, rtol: rtol, atol: atol) == 0
    }

    /// Central-difference estimate of `∂f/∂x` at every element of `x`, evaluated in Float
    /// but accumulated in Double: `(f(x + h) − f(x − h)) / 2h`.
    public static func numericalGradient(of f: (Tensor) throws -> Double, at x: Tensor, step h: Float = 1e-2) rethrows -> Tensor {
        var gradient = [Float](repeating: 0, count: x.count)
        var probe = x
        for i in 0..<x.count {
            let original = x.scalars[i]
            probe[flat: i] = original + h
            let plus = try f(probe)
            probe[flat: i] = original - h
            let minus = try f(probe)
            probe[flat: i] = original
            gradient[i] = Float((plus - minus) / (2 * Double(h)))
        }
        return try! Tensor(shape: x.shape, scalars: gradient)
    }

    /// A fixed random projection `Σ r_i y_i` as a scalar objective of a layer's output, so
    /// every output element contributes a distinct weight to the gradient.
    public static func projection(_ y: Tensor, seed: UInt64) -> (value: Double, gradient: Tensor) {
        let r = randomTensor(y.shape, seed: seed)
        var total = 0.0
        for (a, b) in zip(y.scalars, r.scalars) { total += Double(a) * Double(b) }
        return (total, r)
    }

    /// Checks a layer's input gradient and every parameter gradient against central finite
    /// differences of a random projection of its output.
    /// - Returns: the worst relative error found, `|analytic − numeric| / max(1, |numeric|)`,
    ///   and a description of where.
    public static func gradientCheck(_ layer: any Layer, input: Tensor, step: Float = 1e-2, seed: UInt64 = 99) throws -> (error: Float, location: String) {
        let output = try layer.forward(input, mode: .training)
        let (_, r) = projection(output, seed: seed)
        layer.zeroGradients()
        let inputGradient = try layer.backward(r)
        var worst: (Float, String) = (0, "none")
        func objective(_ x: Tensor) throws -> Double {
            let y = try layer.forward(x, mode: .training)
            var total = 0.0
            for (a, b) in zip(y.scalars, r.scalars) { total += Double(a) * Double(b) }
            return total
        }
        func compare(_ analytic: Tensor, _ numeric: Tensor, _ name: String) {
            for i in 0..<analytic.count {
                let error = abs(analytic.scalars[i] - numeric.scalars[i]) / max(1, abs(numeric.scalars[i]))
                if !(error <= worst.0) { worst = (error.isNaN ? .infinity : error, "\(name)[\(i)]: analytic \(analytic.scalars[i]) numeric \(numeric.scalars[i])") }
            }
        }
        compare(inputGradient, try numericalGradient(of: objective, at: input, step: step), "input")
        for (name, parameter) in layer.namedParameters() {
            let analytic = parameter.gradient
            let original = parameter.value
            let numeric = try numericalGradient(of: { value in
                parameter.value = value
                return try objective(input)
            }, at: original, step: step)
            parameter.value = original
            compare(analytic, numeric, name)
        }
        return worst
    }
}

extension Tensor {
    /// Element at a flat row-major index (tests only).
    public subscript(flat index: Int) -> Float {
        get { scalars[index] }
        set { withUnsafeMutableBufferPointer { $0[index] = newValue } }
    }
}

/// A fresh directory under the system temporary directory, removed by `body`'s end.
public func withTemporaryDirectory<R>(_ body: (URL) throws -> R) throws -> R {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("adwb-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try body(directory)
}

/// The product `name` (e.g. `adwb`) built beside the running test bundle, for tests that run
/// the real executable (to see its exit status or printed output).
public func builtExecutable(_ name: String) throws -> URL {
    var folders: [URL] = []
    if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
        folders.append(URL(fileURLWithPath: exe).deletingLastPathComponent())
    }
    for bundle in [Bundle.main] + Bundle.allBundles {
        folders += [bundle.bundleURL, bundle.bundleURL.deletingLastPathComponent()]
    }
    for folder in folders {
        let candidate = folder.appendingPathComponent(name)
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isFolder), !isFolder.boolValue,
           FileManager.default.isExecutableFile(atPath: candidate.path) {
            return candidate
        }
    }
    throw MissingExecutable(name: name, searched: folders.map(\.path))
}

/// `builtExecutable` found nothing.
public struct MissingExecutable: Error, CustomStringConvertible {
    public let name: String
    public let searched: [String]
    public var description: String { "no \(name) executable beside the test bundle (looked in \(searched))" }
}

/// A scratch folder under the system temporary directory, removed by `remove()`.
public struct ScratchFolder {
    public let root: URL

    public init(_ name: String) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("adwb-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    public func url(_ component: String) -> URL { root.appendingPathComponent(component) }
    public func path(_ component: String) -> String { url(component).path }
    public func remove() { try? FileManager.default.removeItem(at: root) }
}

/// Runs the built executable `name` with `arguments` (stdin empty); its stdout and stderr
/// go through files in `scratch`, so large outputs never block on a pipe.
public func runBuiltExecutable(_ name: String, _ arguments: [String], scratch: ScratchFolder) throws -> (status: Int32, stdout: String, stderr: String) {
    let id = UUID().uuidString
    let stdoutURL = scratch.url("stdout-\(id)"), stderrURL = scratch.url("stderr-\(id)")
    _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
    let stdout = try FileHandle(forWritingTo: stdoutURL), stderr = try FileHandle(forWritingTo: stderrURL)
    let process = Process()
    process.executableURL = try builtExecutable(name)
    process.arguments = arguments
    process.standardOutput = stdout
    process.standardError = stderr
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    try stdout.close()
    try stderr.close()
    return (process.terminationStatus, try String(contentsOf: stdoutURL, encoding: .utf8), try String(contentsOf: stderrURL, encoding: .utf8))
}
