import Testing
import TensorCore
import TestSupport

/// Reference arithmetic for the TensorCore tests. Everything here is computed in Double with
/// plain loops, independently of the code under test.
enum Reference {
    /// `Σ a_i b_i` in Double.
    static func dot(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count)
        var total = 0.0
        for i in a.indices { total += Double(a[i]) * Double(b[i]) }
        return total
    }

    /// `Σ |a_i b_i|`: the magnitude against which a dot product's rounding error is judged.
    static func absDot(_ a: [Float], _ b: [Float]) -> Double {
        var total = 0.0
        for i in a.indices { total += abs(Double(a[i]) * Double(b[i])) }
        return total
    }

    /// Row-major strides of `shape`.
    static func strides(_ shape: [Int]) -> [Int] {
        var result = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in shape.indices.reversed() {
            result[axis] = running
            running *= shape[axis]
        }
        return result
    }

    /// Every multi-index of `shape` in row-major order.
    static func multiIndices(_ shape: [Int]) -> [[Int]] {
        let count = shape.reduce(1, *)
        guard count > 0 else { return [] }
        var result: [[Int]] = []
        result.reserveCapacity(count)
        var index = [Int](repeating: 0, count: shape.count)
        for _ in 0..<count {
            result.append(index)
            var axis = shape.count - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < shape[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
        return result
    }

    /// `A[m, n]` as Double from a row-major Float tensor or array.
    static func matrix(_ values: [Float], rows: Int, columns: Int) -> [[Double]] {
        (0..<rows).map { r in (0..<columns).map { c in Double(values[r * columns + c]) } }
    }

    static func matmul(_ a: [[Double]], _ b: [[Double]]) -> [[Double]] {
        let (m, k, n) = (a.count, b.count, b.first?.count ?? 0)
        var c = [[Double]](repeating: [Double](repeating: 0, count: n), count: m)
        for i in 0..<m { for j in 0..<n { for p in 0..<k { c[i][j] += a[i][p] * b[p][j] } } }
        return c
    }

    static func transpose(_ a: [[Double]]) -> [[Double]] {
        guard let columns = a.first?.count else { return [] }
        return (0..<columns).map { c in a.map { $0[c] } }
    }

    static func identity(_ n: Int) -> [[Double]] {
        (0..<n).map { r in (0..<n).map { c in r == c ? 1 : 0 } }
    }

    static func maxAbs(_ a: [[Double]]) -> Double { a.flatMap { $0 }.map(abs).max() ?? 0 }

    static func maxAbsDifference(_ a: [[Double]], _ b: [[Double]]) -> Double {
        precondition(a.count == b.count)
        var worst = 0.0
        for (ra, rb) in zip(a, b) {
            precondition(ra.count == rb.count)
            for (x, y) in zip(ra, rb) { worst = max(worst, abs(x - y)) }
        }
        return worst
    }
}

extension TensorError {
    var isShapeMismatch: Bool { if case .shapeMismatch = self { true } else { false } }
    var isInvalidShape: Bool { if case .invalidShape = self { true } else { false } }
    var isInvalidArgument: Bool { if case .invalidArgument = self { true } else { false } }
}

/// Expects `actual[i] ≈ expected[i]` for all `i`, i.e. `|a − e| <= atol + rtol·|e|`, and reports
/// the worst element when not.
func expectClose(
    _ actual: [Float], _ expected: [Double], rtol: Double = 1e-5, atol: Double = 1e-5,
    _ what: String = "", sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(actual.count == expected.count, "\(what): count \(actual.count) vs \(expected.count)", sourceLocation: sourceLocation)
    guard actual.count == expected.count else { return }
    var worst = 0.0
    var worstIndex = -1
    for i in actual.indices {
        let excess = abs(Double(actual[i]) - expected[i]) - (atol + rtol * abs(expected[i]))
        if !(excess <= worst) {
            worst = excess.isNaN ? .infinity : excess
            worstIndex = i
        }
    }
    #expect(
        worstIndex < 0,
        "\(what): element \(worstIndex) is \(worstIndex >= 0 ? actual[worstIndex] : 0), expected \(worstIndex >= 0 ? expected[worstIndex] : 0)",
        sourceLocation: sourceLocation)
}

/// Expects two Double quantities to agree relative to `scale` (e.g. the sum of absolute terms).
func expectRelativelyClose(
    _ a: Double, _ b: Double, scale: Double, tolerance: Double, _ what: String = "",
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let error = abs(a - b) / max(scale, .leastNormalMagnitude)
    #expect(error <= tolerance, "\(what): \(a) vs \(b), relative error \(error) > \(tolerance)", sourceLocation: sourceLocation)
}
