import Testing
import TensorCore
import TestSupport

/// Everything that changes `Engine` threads lives here.
///
/// `Engine.setThreads` is process-wide, and every test target runs in one process with tests
/// in parallel: changing the count here while, say, a NeuralNet test checks that two training
/// runs are bit-identical would make that test flaky (weight-gradient reductions are only
/// reproducible for a fixed worker count). So each test that changes the count does so inside
/// an exit test — a child process — and the suite is also serialized. Expectations recorded in
/// the child are reported by the parent (with their comment, so every one carries one).
@Suite(.serialized) struct EngineThreadTests {
    /// Runs `body` with `threads` kernel threads, restoring the previous count afterwards.
    static func withThreads<R>(_ threads: Int, _ body: () throws -> R) rethrows -> R {
        let previous = Engine.threads
        Engine.setThreads(threads)
        defer { Engine.setThreads(previous) }
        return try body()
    }

    // MARK: Read-only (in process)

    @Test func defaultsAndDescription() {
        #expect(Engine.availableCores >= 1)
        #expect(Engine.threads >= 1)
        #expect(Engine.blasDescription.contains("OpenBLAS"))
    }

    @Test func withLibraryThreadsReturnsAndRethrows() {
        struct Marker: Error {}
        #expect(Engine.withLibraryThreads { 41 + 1 } == 42)
        #expect(throws: Marker.self) { try Engine.withLibraryThreads { throw Marker() } }
    }

    @Test func parallelRangesCoverEachIndexOnceAtDefaultThreads() {
        Self.checkParallelRanges(threads: Engine.threads)
    }

    // MARK: Thread count changes (child processes)

    @Test func setThreadsIsReported() async {
        await #expect(processExitsWith: .success) {
            let previous = Engine.threads
            EngineThreadTests.withThreads(1) { #expect(Engine.threads == 1, "threads after setThreads(1)") }
            EngineThreadTests.withThreads(3) { #expect(Engine.threads == 3, "threads after setThreads(3)") }
            #expect(Engine.threads == previous, "threads restored")
        }
    }

    /// Every index of `0..<count` is visited exactly once, by at most min(threads, count / grain)
    /// ranges.
    static func checkParallelRanges(threads: Int) {
        for (count, grain) in [(0, 1), (1, 1), (2, 1), (7, 1), (1000, 1), (1000, 300), (1000, 2000)] {
            var hits = [Int](repeating: 0, count: count)
            hits.withUnsafeMutableBufferPointer { h in
                // Ranges are disjoint, so unsynchronised writes to distinct indices are safe.
                Engine.parallelRanges(count, minimumPerWorker: grain) { range in
                    for i in range { h[i] += 1 }
                }
            }
            #expect(hits.allSatisfy { $0 == 1 }, "count \(count) grain \(grain) threads \(threads): each index once")
            var starts = [Int](repeating: 0, count: Swift.max(1, count))
            starts.withUnsafeMutableBufferPointer { s in
                Engine.parallelRanges(count, minimumPerWorker: grain) { range in s[range.lowerBound] = 1 }
            }
            let ranges = count == 0 ? 0 : starts.reduce(0, +)
            #expect(ranges <= Swift.max(1, Swift.min(threads, count / grain)),
                    "count \(count) grain \(grain) threads \(threads): \(ranges) ranges")
        }
    }

    @Test func parallelRangesAndWorkersAtSeveralThreadCounts() async {
        await #expect(processExitsWith: .success) {
            for threads in [1, 2, 3] {
                EngineThreadTests.withThreads(threads) { EngineThreadTests.checkParallelRanges(threads: threads) }
            }
            EngineThreadTests.withThreads(2) {
                for workers in [1, 2, 5] {
                    var calls = [Int](repeating: 0, count: workers)
                    calls.withUnsafeMutableBufferPointer { c in
                        Engine.parallelWorkers(workers) { worker in c[worker] += 1 }
                    }
                    #expect(calls == [Int](repeating: 1, count: workers), "parallelWorkers(\(workers)) runs each worker once: \(calls)")
                }
            }
        }
    }

    static func checkConvolutionAcrossThreadCounts() throws {
        for c in [ConvCase.all[1], ConvCase.all[2], ConvCase.all[8], ConvCase.chunkedSingleSample] {
            let g = try c.geometry()
            let x = TestSupport.randomTensor(g.inputShape(c.batch), seed: 200)
            let w = TestSupport.randomTensor(g.weightShape, seed: 201)
            let b = TestSupport.randomTensor([g.outChannels], seed: 202)
            let dy = TestSupport.randomTensor(g.outputShape(c.batch), seed: 203)
            let (y1, dx1, grads1) = withThreads(1) {
                (Conv3dKernels.forward(g, input: x, weight: w, bias: b),
                 Conv3dKernels.backwardData(g, gradOutput: dy, weight: w),
                 Conv3dKernels.backwardWeights(g, input: x, gradOutput: dy))
            }
            let (y2, dx2, grads2, grads2Again) = withThreads(2) {
                (Conv3dKernels.forward(g, input: x, weight: w, bias: b),
                 Conv3dKernels.backwardData(g, gradOutput: dy, weight: w),
                 Conv3dKernels.backwardWeights(g, input: x, gradOutput: dy),
                 Conv3dKernels.backwardWeights(g, input: x, gradOutput: dy))
            }
            // Each output element is computed by exactly one worker: bit-identical.
            #expect(y1 == y2, "forward differs between 1 and 2 threads for \(c.name)")
            // The input gradient is accumulated per sample; compare to rounding (a sample's
            // chunks may be summed in a different grouping when workers split them).
            expectClose(dx2.scalars, dx1.scalars.map(Double.init), rtol: 1e-5, atol: 1e-5, "backwardData 1 vs 2 threads \(c.name)")
            // Weight gradients are reduced per worker, so only reproducible for a fixed count…
            #expect(grads2.weight == grads2Again.weight && grads2.bias == grads2Again.bias,
                    "backwardWeights not reproducible at 2 threads for \(c.name)")
            // …and equal up to rounding across counts.
            expectClose(grads2.weight.scalars, grads1.weight.scalars.map(Double.init), rtol: 1e-4, atol: 1e-4, "dW 1 vs 2 threads \(c.name)")
            expectClose(grads2.bias.scalars, grads1.bias.scalars.map(Double.init), rtol: 1e-4, atol: 1e-4, "db 1 vs 2 threads \(c.name)")
        }
    }

    @Test func convolutionForOneAndTwoThreads() async {
        await #expect(processExitsWith: .success) {
            do { try EngineThreadTests.checkConvolutionAcrossThreadCounts() } catch {
                Issue.record("convolution across thread counts threw \(error)")
            }
        }
    }

    static func checkPoolingUpsamplingActivations() throws {
        let x = TestSupport.randomTensor([2, 3, 4, 5, 6], seed: 210)
        let (k, s) = (Triple(2), Triple(2))
        let out = try Pool3dKernels.outputExtent(input: Triple(4, 5, 6), kernel: k, stride: s, operation: "test")
        let big = TestSupport.randomTensor([2 * Tensor.parallelGrain + 17], seed: 220)
        func run() -> [Tensor] {
            let (pooled, indices) = Pool3dKernels.maxPool(x, kernel: k, stride: s, output: out)
            return [
                pooled,
                Pool3dKernels.maxPoolBackward(pooled, indices: indices, inputShape: x.shape),
                Pool3dKernels.avgPool(x, kernel: k, stride: s, output: out),
                Upsample3dKernels.forward(x, factor: Triple(2), mode: .trilinear),
                big.parallelMap { $0 * $0 - 0.5 },
                ActivationKernels.forward(.tanh, big),
            ]
        }
        let one = withThreads(1, run)
        for threads in [2, 3] {
            let many = withThreads(threads, run)
            for i in one.indices { #expect(one[i] == many[i], "result \(i) differs between 1 and \(threads) threads") }
        }
        #expect(one[4] == big.map { $0 * $0 - 0.5 }, "parallelMap equals map")
    }

    @Test func elementwiseKernelsIdenticalAcrossThreadCounts() async {
        await #expect(processExitsWith: .success) {
            do { try EngineThreadTests.checkPoolingUpsamplingActivations() } catch {
                Issue.record("pooling/upsampling across thread counts threw \(error)")
            }
        }
    }

    static func checkMatmulAcrossThreadCounts() throws {
        // Large enough for parallelSgemm to split (m·n·k ≥ 2²¹).
        let a = TestSupport.randomTensor([160, 120], seed: 230)
        let b = TestSupport.randomTensor([120, 150], seed: 231)
        let one = try withThreads(1) { try Tensor.matmul(a, b) }
        let two = try withThreads(2) { try Tensor.matmul(a, b) }
        expectClose(two.scalars, one.scalars.map(Double.init), rtol: 1e-5, atol: 1e-5, "matmul 1 vs 2 threads")
        let twoAgain = try withThreads(2) { try Tensor.matmul(a, b) }
        #expect(two == twoAgain, "matmul not reproducible at 2 threads")
    }

    @Test func matmulAcrossThreadCounts() async {
        await #expect(processExitsWith: .success) {
            do { try EngineThreadTests.checkMatmulAcrossThreadCounts() } catch {
                Issue.record("matmul across thread counts threw \(error)")
            }
        }
    }
}
