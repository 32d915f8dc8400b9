import Testing
import TensorCore
import TestSupport

/// Everything that changes `Engine` threads lives here, serialized, and restores the previous
/// setting. (Other suites may run concurrently; they only see a different worker count, which
/// must not change their results beyond rounding.)
@Suite(.serialized) struct EngineThreadTests {
    /// Runs `body` with `threads` kernel threads, restoring the previous count afterwards.
    static func withThreads<R>(_ threads: Int, _ body: () throws -> R) rethrows -> R {
        let previous = Engine.threads
        Engine.setThreads(threads)
        defer { Engine.setThreads(previous) }
        return try body()
    }

    @Test func setThreadsIsReported() {
        let previous = Engine.threads
        Self.withThreads(1) { #expect(Engine.threads == 1) }
        Self.withThreads(3) { #expect(Engine.threads == 3) }
        #expect(Engine.threads == previous)
        #expect(Engine.availableCores >= 1)
        #expect(Engine.blasDescription.contains("OpenBLAS"))
    }

    @Test(arguments: [1, 2, 3])
    func parallelRangesCoverEachIndexOnce(threads: Int) {
        Self.withThreads(threads) {
            for (count, grain) in [(0, 1), (1, 1), (2, 1), (7, 1), (1000, 1), (1000, 300), (1000, 2000)] {
                var hits = [Int](repeating: 0, count: count)
                hits.withUnsafeMutableBufferPointer { h in
                    // Ranges are disjoint, so unsynchronised writes to distinct indices are safe.
                    Engine.parallelRanges(count, minimumPerWorker: grain) { range in
                        for i in range { h[i] += 1 }
                    }
                }
                #expect(hits.allSatisfy { $0 == 1 }, "count \(count) grain \(grain) threads \(threads)")
                // Workers never exceed the thread count nor count / grain (marked by range start).
                var starts = [Int](repeating: 0, count: Swift.max(1, count))
                starts.withUnsafeMutableBufferPointer { s in
                    Engine.parallelRanges(count, minimumPerWorker: grain) { range in s[range.lowerBound] = 1 }
                }
                let rangeCount = count == 0 ? 0 : starts.reduce(0, +)
                #expect(rangeCount <= Swift.max(1, Swift.min(threads, count / grain)), "count \(count) grain \(grain) threads \(threads)")
            }
        }
    }

    @Test func parallelWorkersRunsEachWorkerOnce() {
        Self.withThreads(2) {
            for workers in [1, 2, 5] {
                var calls = [Int](repeating: 0, count: workers)
                calls.withUnsafeMutableBufferPointer { c in
                    Engine.parallelWorkers(workers) { worker in c[worker] += 1 }
                }
                #expect(calls == [Int](repeating: 1, count: workers))
            }
        }
    }

    @Test func convolutionIsIdenticalForOneAndTwoThreads() throws {
        for c in [ConvCase.all[1], ConvCase.all[2], ConvCase.all[8], ConvCase.chunkedSingleSample] {
            let g = try c.geometry()
            let x = TestSupport.randomTensor(g.inputShape(c.batch), seed: 200)
            let w = TestSupport.randomTensor(g.weightShape, seed: 201)
            let b = TestSupport.randomTensor([g.outChannels], seed: 202)
            let dy = TestSupport.randomTensor(g.outputShape(c.batch), seed: 203)
            let (y1, dx1, grads1) = Self.withThreads(1) {
                (Conv3dKernels.forward(g, input: x, weight: w, bias: b),
                 Conv3dKernels.backwardData(g, gradOutput: dy, weight: w),
                 Conv3dKernels.backwardWeights(g, input: x, gradOutput: dy))
            }
            let (y2, dx2, grads2, grads2Again) = Self.withThreads(2) {
                (Conv3dKernels.forward(g, input: x, weight: w, bias: b),
                 Conv3dKernels.backwardData(g, gradOutput: dy, weight: w),
                 Conv3dKernels.backwardWeights(g, input: x, gradOutput: dy),
                 Conv3dKernels.backwardWeights(g, input: x, gradOutput: dy))
            }
            // Each output element / each sample is owned by one worker: bit-identical.
            #expect(y1 == y2, "forward differs between 1 and 2 threads for \(c.name)")
            #expect(dx1 == dx2, "backwardData differs between 1 and 2 threads for \(c.name)")
            // Weight gradients are reduced per worker, so only reproducible for a fixed count…
            #expect(grads2.weight == grads2Again.weight && grads2.bias == grads2Again.bias,
                    "backwardWeights not reproducible at 2 threads for \(c.name)")
            // …and equal up to rounding across counts.
            expectClose(grads2.weight.scalars, grads1.weight.scalars.map(Double.init), rtol: 1e-4, atol: 1e-4, "dW \(c.name)")
            expectClose(grads2.bias.scalars, grads1.bias.scalars.map(Double.init), rtol: 1e-4, atol: 1e-4, "db \(c.name)")
        }
    }

    @Test func poolingAndUpsamplingAreIdenticalForOneAndTwoThreads() throws {
        let x = TestSupport.randomTensor([2, 3, 4, 5, 6], seed: 210)
        let (k, s) = (Triple(2), Triple(2))
        let out = try Pool3dKernels.outputExtent(input: Triple(4, 5, 6), kernel: k, stride: s, operation: "test")
        func run() -> [Tensor] {
            let (pooled, indices) = Pool3dKernels.maxPool(x, kernel: k, stride: s, output: out)
            return [
                pooled,
                Pool3dKernels.maxPoolBackward(pooled, indices: indices, inputShape: x.shape),
                Pool3dKernels.avgPool(x, kernel: k, stride: s, output: out),
                Upsample3dKernels.forward(x, factor: Triple(2), mode: .trilinear),
                x.parallelMap { $0 * 2 + 1 },
            ]
        }
        let one = Self.withThreads(1, run)
        let two = Self.withThreads(2, run)
        #expect(one == two)
    }

    @Test func parallelMapLargeTensorIdenticalAcrossThreadCounts() {
        let x = TestSupport.randomTensor([2 * Tensor.parallelGrain + 17], seed: 220)
        let serial = x.map { $0 * $0 - 0.5 }
        for threads in [1, 2, 3] {
            let parallel = Self.withThreads(threads) { x.parallelMap { $0 * $0 - 0.5 } }
            #expect(parallel == serial, "threads \(threads)")
        }
    }
}
