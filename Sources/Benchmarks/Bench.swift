import Cohort
import Foundation
import NeuralNet
import TensorCore
import VolumeIO

/// One kernel's timing: the median of `runs` timed calls after one warm-up call.
public struct KernelTiming: Codable, Sendable {
    public var ms: Double
    /// Effective GFLOP/s (fixed FLOP count over the median time), or nil when not a FLOP-bound kernel.
    public var gflops: Double?
    /// Throughput of an I/O kernel in MB/s (10⁶ bytes of voxel data as stored, uncompressed),
    /// nil for compute kernels.
    public var mb_per_s: Double?
    /// Training throughput of a pretraining kernel, in patches per second.
    public var patches_per_s: Double?
    public var runs: Int
    /// What the last timed call found, to set beside a peer's (e.g. an SVM's support vectors
    /// and solver iterations); nil for kernels that report nothing.
    public var facts: [String: Double]?
}

/// The benchmark report: `{"threads", "peak_rss_mb", "kernels": {name: {"ms", "gflops", "runs"}}}`
/// (I/O kernels give `mb_per_s` instead of `gflops`), plus `skipped: {name: reason}` when a
/// kernel's input was missing.
public struct BenchReport: Codable, Sendable {
    public var threads: Int
    public var peak_rss_mb: Double
    public var kernels: [String: KernelTiming]
    public var skipped: [String: String]?
}

/// A kernel that cannot run here (its input file is missing), with the reason.
public struct BenchSkipped: Error {
    public let reason: String
}

/// The workbench's benchmark. Kernel names and shapes follow ../shared/peers/bench_peers.py,
/// so each figure can be set beside PyTorch's (and OpenBLAS's, for sgemm) on the same machine.
public enum Bench {
    /// A named workload: `prepare` builds its inputs once and returns the call to time.
    public struct Kernel {
        public let name: String
        public let gflop: Double?
        /// Megabytes moved per call, for I/O kernels.
        public let megabytes: Double?
        /// Patches trained per call, for pretraining kernels.
        public let patches: Double?
        /// Builds the inputs; returns the call to time and what to report after it.
        public let prepare: () throws -> (call: () throws -> Void, facts: () -> [String: Double]?)

        public init(name: String, gflop: Double?, megabytes: Double? = nil, patches: Double? = nil,
                    prepare: @escaping () throws -> () throws -> Void) {
            self.init(name: name, gflop: gflop, megabytes: megabytes, patches: patches, reporting: { (try prepare(), { nil }) })
        }

        /// A kernel whose `facts` describe the last timed call's result.
        public init(name: String, gflop: Double?, megabytes: Double? = nil, patches: Double? = nil,
                    reporting prepare: @escaping () throws -> (call: () throws -> Void, facts: () -> [String: Double]?)) {
            self.name = name
            self.gflop = gflop
            self.megabytes = megabytes
            self.patches = patches
            self.prepare = prepare
        }
    }

    /// The 1 mm MNI ICBM152 2009a T1 template (uint8, 197×233×189 = 8.68 MB of voxels), from
    /// `$ADWB_SHARED_DATA` or ../shared/data.
    public static var mniTemplate: URL {
        let root = ProcessInfo.processInfo.environment["ADWB_SHARED_DATA"] ?? "../shared/data"
        return URL(fileURLWithPath: root)
            .appendingPathComponent("mni-icbm152-2009a-sym/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
    }

    static let mniTemplateMegabytes = Double(197 * 233 * 189) / 1e6

    static func requireTemplate() throws -> URL {
        let url = mniTemplate
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw BenchSkipped(reason: "\(url.path) not found (set ADWB_SHARED_DATA to the shared data folder)")
        }
        return url
    }

    /// Reading the template as nibabel's `load(...).get_fdata()` does: inflate, convert, scale.
    static var niftiRead: Kernel { Kernel(name: "nifti_read_mni_1mm", gflop: nil, megabytes: mniTemplateMegabytes) {
        let url = try requireTemplate()
        return { _ = try VolumeReader.read(url) }
    } }

    /// Writing it back as uint8 `.nii.gz` (gzip level 1, nibabel's default), as `nib.save` does.
    static var niftiWrite: Kernel { Kernel(name: "nifti_write_mni_1mm", gflop: nil, megabytes: mniTemplateMegabytes) {
        let volume = try VolumeReader.read(try requireTemplate())
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("adwb-bench-\(getpid()).nii.gz")
        return {
            defer { try? FileManager.default.removeItem(at: output) }
            try VolumeWriter.write(volume, to: output, options: VolumeWriteOptions(datatype: .uint8))
        }
    } }

    /// One synthetic-cohort scan at the default recipe (96^3 at 2 mm): rendering the anatomy,
    /// partial-volume blur, bias field and noise (`synth_render_96`), and the same plus writing
    /// its T1, mask and label map as .nii.gz (`synth_scan_96`, what `adwb synth` does per scan).
    static var synthKernels: [Kernel] {
        func participant() throws -> SyntheticParticipant {
            var options = SyntheticCohortOptions()
            options.participants = 1
            return try SyntheticCohort.participants(options)[0]
        }
        return [
            Kernel(name: "synth_render_96", gflop: nil) {
                let subject = try participant()
                return { _ = SyntheticCohort.render(subject, session: 0, options: SyntheticCohortOptions()) }
            },
            Kernel(name: "synth_scan_96", gflop: nil) {
                var options = SyntheticCohortOptions()
                options.participants = 1
                options.secondSessionFraction = 0
                let output = FileManager.default.temporaryDirectory.appendingPathComponent("adwb-bench-synth-\(getpid())")
                return {
                    defer { try? FileManager.default.removeItem(at: output) }
                    _ = try SyntheticCohort.generate(options, to: output, generator: "bench")
                }
            },
        ]
    }

    /// Every kernel, in the order they run.
    public static func kernels() -> [Kernel] {
        [
            sgemm(1024), sgemm(2048),
            Kernel(name: "cae_encoder_forward", gflop: 64 * BenchModels.encoderFlops(32, 32, 32) / 1e9) {
                let encoder = BenchModels.encoder(seed: 0)
                let x = TestData.uniform([64, 1, 32, 32, 32], seed: 1)
                return { _ = try encoder.forward(x, mode: .inference) }
            },
            Kernel(name: "cae_train_step",
                   gflop: 3 * 64 * (BenchModels.encoderFlops(32, 32, 32) + BenchModels.stridedDecoderFlops(32, 32, 32)) / 1e9) {
                let model = Sequential([BenchModels.encoder(seed: 0), try BenchModels.stridedDecoder(seed: 1)])
                let optimizer = try Adam(parameters: model.namedParameters(), learningRate: 1e-3)
                let x = TestData.uniform([64, 1, 32, 32, 32], seed: 1)
                return {
                    model.zeroGradients()
                    let loss = try Loss.meanSquaredError(try model.forward(x, mode: .training), x)
                    // The input needs no gradient (as in PyTorch, where it does not require grad).
                    try model.accumulateParameterGradients(loss.gradient)
                    optimizer.step()
                }
            },
            Kernel(name: "sae_epoch_100k", gflop: 3 * 2.0 * 100_000 * (125 * 150 + 150 * 125) / 1e9) {
                try sparseAutoencoderEpoch()
            },
            Kernel(name: "cae_encode_volume", gflop: BenchModels.encoderFlops(121, 145, 121) / 1e9) {
                let encoder = BenchModels.encoder(seed: 0)
                let volume = TestData.uniform([1, 1, 121, 145, 121], seed: 2)
                return { _ = try encoder.forward(volume, mode: .inference) }
            },
            niftiRead, niftiWrite,
        ] + synthKernels + pretrainKernels + extractKernels + classifierKernels + registrationKernels
    }

    static func sgemm(_ n: Int) -> Kernel {
        Kernel(name: "sgemm_\(n)", gflop: 2 * pow(Double(n), 3) / 1e9) {
            let a = TestData.uniform([n, n], seed: 3)
            let b = TestData.uniform([n, n], seed: 4)
            var c = Tensor(zeros: [n, n])
            return {
                a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        c.withUnsafeMutableBufferPointer { cp in
                            BLAS.parallelSgemm(m: n, n: n, k: n, a: ap.baseAddress!, lda: n, b: bp.baseAddress!, ldb: n,
                                       c: cp.baseAddress!, ldc: n)
                        }
                    }
                }
            }
        }
    }

    /// One epoch of the UFLDL sparse autoencoder: `Dense(125→150)–Sigmoid–Dense(150→125)–Sigmoid`
    /// on 100,000 patches in [0.1, 0.9], minibatches of 10,000, loss
    /// `½·mean‖x̂−x‖² + ½λ(‖W1‖²+‖W2‖²) + β·Σ KL(ρ‖ρ̂)` (ρ=0.01, β=3, λ=1e-4), Adam.
    static func sparseAutoencoderEpoch() throws -> () throws -> Void {
        var generator = Xoshiro256StarStar(seed: 0)
        let encode = Dense(inFeatures: 125, outFeatures: 150, initialization: .xavier, using: &generator)
        let decode = Dense(inFeatures: 150, outFeatures: 125, initialization: .xavier, using: &generator)
        let (hidden, output) = (Sigmoid(), Sigmoid())
        let model = Sequential([encode, hidden, decode, output])
        let optimizer = try Adam(parameters: model.namedParameters(), learningRate: 1e-3)
        let patches = TestData.uniform([100_000, 125], seed: 5, low: 0.1, high: 0.9)
        let batch = 10_000
        return {
            for start in stride(from: 0, to: patches.shape[0], by: batch) {
                let x = try patches.batch(start..<min(start + batch, patches.shape[0]))
                model.zeroGradients()
                let h = try hidden.forward(try encode.forward(x, mode: .training), mode: .training)
                let y = try output.forward(try decode.forward(h, mode: .training), mode: .training)
                let reconstruction = try Loss.halfSumSquaredError(y, x)
                let sparsity = try Loss.sparsityPenalty(activations: h, targetSparsity: 0.01, weight: 3)
                var gradHidden = try decode.backward(try output.backward(reconstruction.gradient))
                try gradHidden.addScaled(sparsity.gradient)
                _ = try encode.backward(try hidden.backward(gradHidden))
                Loss.applyWeightDecay([encode.weight, decode.weight], lambda: 1e-4)
                optimizer.step()
            }
        }
    }

    /// Runs the kernels whose names contain any of `filters` (all when empty).
    /// - Parameter progress: called with each kernel's name before it runs.
    public static func run(filters: [String] = [], progress: (String) -> Void = { _ in }) throws -> BenchReport {
        var timings: [String: KernelTiming] = [:]
        var skipped: [String: String] = [:]
        for kernel in kernels() where filters.isEmpty || filters.contains(where: { kernel.name.contains($0) }) {
            progress(kernel.name)
            let call: () throws -> Void
            let facts: () -> [String: Double]?
            do { (call, facts) = try kernel.prepare() } catch let skip as BenchSkipped {
                skipped[kernel.name] = skip.reason
                continue
            }
            let ms = try time(call)
            func perSecond(_ amount: Double) -> Double { ((amount / (ms.median / 1000)) * 100).rounded() / 100 }
            timings[kernel.name] = KernelTiming(
                ms: (ms.median * 1000).rounded() / 1000, gflops: kernel.gflop.map(perSecond),
                mb_per_s: kernel.megabytes.map(perSecond), patches_per_s: kernel.patches.map(perSecond), runs: ms.runs,
                facts: facts())
        }
        return BenchReport(threads: Engine.threads, peak_rss_mb: peakResidentMegabytes(), kernels: timings,
                           skipped: skipped.isEmpty ? nil : skipped)
    }

    /// Median wall time in ms over 5 timed calls after one warm-up (3 when the warm-up took
    /// over a second), the rule bench_peers.py uses.
    static func time(_ call: () throws -> Void) throws -> (median: Double, runs: Int) {
        let clock = ContinuousClock()
        let warmup = try clock.measure(call)
        let runs = warmup > .seconds(1) ? 3 : 5
        var samples: [Double] = []
        for _ in 0..<runs {
            let elapsed = try clock.measure(call)
            samples.append(Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) * 1e-15)
        }
        samples.sort()
        return (samples[samples.count / 2], runs)
    }

    /// Peak resident set size of this process in MiB (`VmHWM` in /proc/self/status).
    public static func peakResidentMegabytes() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return (kilobytes / 1024 * 10).rounded() / 10
    }
}

/// Seeded synthetic inputs for benchmarks.
public enum TestData {
    public static func uniform(_ shape: [Int], seed: UInt64, low: Float = 0, high: Float = 1) -> Tensor {
        var generator = Xoshiro256StarStar(seed: seed)
        return Tensor(uninitializedShape: shape) { out in
            for i in 0..<out.count { out[i] = low + (high - low) * generator.nextUnitFloat() }
        }
    }
}
