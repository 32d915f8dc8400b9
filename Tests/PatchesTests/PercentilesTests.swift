import Foundation
import Testing
import TensorCore
@testable import Patches

/// `Percentiles` (quickselect and numpy-style interpolation) against sort-based references.
struct PercentilesTests {
    /// Random data of `n` values; `distinct` small gives many duplicates.
    static func data(_ n: Int, distinct: Int?, seed: UInt64) -> [Float] {
        var generator = Xoshiro256StarStar(seed: seed)
        return (0..<n).map { _ in
            if let distinct { return Float(generator.nextIndex(below: distinct)) - Float(distinct / 2) }
            return (generator.nextUnitFloat() - 0.3) * 1000
        }
    }

    static let sizes = [1, 2, 3, 4, 5, 7, 8, 16, 31, 100, 257, 1000, 4099]
    static let percentiles: [Double] = [0, 0.5, 1, 2.5, 10, 25, 33.3, 50, 66.7, 75, 90, 97.5, 99, 99.5, 100]

    @Test func ofMatchesSortedReferenceOnRandomData() {
        var cases = 0
        for n in Self.sizes {
            for distinct in [nil, 1, 2, 5, 50] as [Int?] {
                let values = Self.data(n, distinct: distinct, seed: UInt64(n * 31 + (distinct ?? 0)))
                let sorted = values.map { Double($0) }.sorted()
                var work = values
                let got = Percentiles.of(&work, Self.percentiles)
                #expect(got.count == Self.percentiles.count)
                for (p, value) in zip(Self.percentiles, got) {
                    let expected = numpyPercentile(sorted: sorted, p)
                    #expect(abs(value - expected) <= 1e-9 * max(1, abs(expected)),
                            "n=\(n) distinct=\(String(describing: distinct)) p=\(p): \(value) vs \(expected)")
                }
                // Reordered, never changed.
                #expect(work.sorted() == values.sorted(), "n=\(n): Percentiles.of must only reorder its input")
                cases += 1
            }
        }
        #expect(cases == Self.sizes.count * 5)
    }

    @Test func ofMatchesKnownNumpyValues() {
        func of(_ values: [Float], _ p: [Double]) -> [Double] {
            var work = values
            return Percentiles.of(&work, p)
        }
        // np.percentile([1, 2, 3, 4], [25, 50, 75]) == [1.75, 2.5, 3.25]
        #expect(of([4, 1, 3, 2], [25, 50, 75]) == [1.75, 2.5, 3.25])
        // np.percentile([1, 2, 3, 4, 5], 10) == 1.4
        #expect(abs(of([5, 3, 1, 4, 2], [10])[0] - 1.4) < 1e-12)
        // np.percentile([10, 20], 99.5) == 19.95
        #expect(abs(of([20, 10], [99.5])[0] - 19.95) < 1e-12)
        // np.percentile([5, 5, 5, 1], 50) == 5; [0, 100] are min and max.
        #expect(of([5, 5, 1, 5], [50, 0, 100]) == [5, 1, 5])
        // A single value is every percentile.
        #expect(of([-3.5], [0, 37, 100]) == [-3.5, -3.5, -3.5])
        // Out-of-range percentiles clamp to 0 and 100.
        #expect(of([3, 1, 2], [-10, 250]) == [1, 3])
    }

    @Test func selectPutsTheKthSmallestInPlace() {
        var checked = 0
        for n in Self.sizes where n <= 1000 {
            for distinct in [nil, 1, 3, 20] as [Int?] {
                let values = Self.data(n, distinct: distinct, seed: UInt64(7 * n + (distinct ?? 0)))
                let sorted = values.sorted()
                // Every k for small arrays, a spread of k (ends included) for larger ones.
                let ks = n <= 64 ? Array(0..<n) : [0, 1, n / 3, n / 2, n - 2, n - 1]
                for k in ks {
                    var work = values
                    let got = Percentiles.select(&work, k)
                    #expect(got == sorted[k], "n=\(n) k=\(k): \(got) vs \(sorted[k])")
                    #expect(work[k] == sorted[k])
                    #expect(work[..<k].allSatisfy { $0 <= got }, "n=\(n) k=\(k): a larger value before k")
                    #expect(work[(k + 1)...].allSatisfy { $0 >= got }, "n=\(n) k=\(k): a smaller value after k")
                    #expect(work.sorted() == sorted, "n=\(n) k=\(k): select must only reorder")
                    checked += 1
                }
            }
        }
        // Sizes up to 64: every k (77 per data set); 100, 257 and 1000: six each; four data sets.
        #expect(checked == (77 + 3 * 6) * 4)
    }

    @Test func selectOnAdversarialOrders() {
        // Sorted, reversed, organ-pipe and sawtooth inputs, with and without duplicates.
        let n = 301
        let orders: [[Float]] = [
            (0..<n).map { Float($0) },
            (0..<n).map { Float(n - $0) },
            (0..<n).map { Float(min($0, n - 1 - $0)) },
            (0..<n).map { Float($0 % 7) },
            (0..<n).map { _ in 4 },
        ]
        for (o, values) in orders.enumerated() {
            let sorted = values.sorted()
            for k in [0, 1, 2, 50, 150, 151, 299, 300] {
                var work = values
                #expect(Percentiles.select(&work, k) == sorted[k], "order \(o) k=\(k)")
            }
        }
    }
}
