import Autoencoders
import Cohort
import Foundation
import NeuralNet
import Patches
import TensorCore

extension Bench {
    /// Pretraining through the `Autoencoders` models (what `adwb pretrain` runs), on the peer
    /// benchmark's shapes, reported as patches per second:
    /// - `sae_pretrain_100k`: the `payan2015` SAE (125→150→125 sigmoid, KL ρ=0.01 β=3, λ=1e-4)
    ///   over 100,000 in-memory patches in minibatches of 10,000 with Adam: bench_peers.py's
    ///   sparse AE epoch.
    /// - `cae_pretrain_step`: a CAE with channels 16, 32 and the transposed-convolution decoder
    ///   (bench_peers.py's strided-decoder CAE) on 64 patches of 32³, one Adam step.
    /// - `sae_pretrain_stream_100k`: one `payan2015` epoch of 100,000 patches streamed from a
    ///   12-participant synthetic cohort (96³) by the patch sampler, minibatches of 1,000:
    ///   sampling, queueing and training together (the cohort is cached after the warm-up call).
    static var pretrainKernels: [Kernel] {
        [
            Kernel(name: "sae_pretrain_100k", gflop: 3 * 2.0 * 100_000 * (125 * 150 + 150 * 125) / 1e9, patches: 100_000) {
                var config = try PretrainConfig.preset("payan2015")
                config.patches.normalization = .none
                let model = try makeAutoencoder(config)
                let optimizer = try Adam(parameters: model.parameters(phase: 0), learningRate: 1e-3)
                let patches = TestData.uniform([100_000, 1, 5, 5, 5], seed: 5, low: 0.1, high: 0.9)
                let batches = try stride(from: 0, to: 100_000, by: 10_000).map { try patches.batch($0..<($0 + 10_000)) }
                return {
                    var noise = Xoshiro256StarStar(seed: 0)
                    for batch in batches {
                        model.module.zeroGradients()
                        _ = try model.trainStep(batch, phase: 0, noise: &noise, weightDecay: 1e-4)
                        optimizer.step()
                    }
                }
            },
            Kernel(name: "cae_pretrain_step",
                   gflop: 3 * 64 * (BenchModels.encoderFlops(32, 32, 32) + BenchModels.stridedDecoderFlops(32, 32, 32)) / 1e9,
                   patches: 64) {
                var config = PretrainConfig(model: .cae)
                config.cae!.channels = [16, 32]
                let model = try makeAutoencoder(config)
                let optimizer = try Adam(parameters: model.parameters(phase: 0), learningRate: 1e-3)
                let x = TestData.uniform([64, 1, 32, 32, 32], seed: 1)
                return {
                    var noise = Xoshiro256StarStar(seed: 0)
                    model.module.zeroGradients()
                    _ = try model.trainStep(x, phase: 0, noise: &noise, weightDecay: 0)
                    optimizer.step()
                }
            },
            Kernel(name: "sae_pretrain_stream_100k", gflop: nil, patches: 100_000) {
                var cohort = SyntheticCohortOptions()
                cohort.participants = 12
                cohort.secondSessionFraction = 0
                let folder = FileManager.default.temporaryDirectory.appendingPathComponent("adwb-bench-pretrain-\(getpid())")
                let summary = try SyntheticCohort.generate(cohort, to: folder, generator: "bench")
                defer { try? FileManager.default.removeItem(at: folder) }
                let manifest = summary.manifest
                let sources = manifest.rows.map {
                    ScanSource(name: $0.participantID, image: manifest.url(for: $0.path), mask: $0.maskPath.map { manifest.url(for: $0) })
                }
                let config = try PretrainConfig.preset("payan2015")
                let cache = ScanCache(sources: sources, options: config.patches, megabytes: 512)
                let failures = cache.preload(Array(sources.indices), workers: 2)
                if let failure = failures.values.first { throw failure }
                let sampler = try PatchSampler(scans: Array(sources.indices), options: config.patches, seed: 0)
                let model = try makeAutoencoder(config)
                let optimizer = try Adam(parameters: model.parameters(phase: 0), learningRate: 1e-2)
                var epoch = 0
                return {
                    let stream = PatchStream(sampler: sampler, cache: cache, epoch: epoch, batchSize: config.training.batchSize)
                    epoch += 1
                    var noise = Xoshiro256StarStar(seed: 0)
                    while let batch = try stream.next() {
                        model.module.zeroGradients()
                        _ = try model.trainStep(batch.patches, phase: 0, noise: &noise, weightDecay: Float(config.training.weightDecay))
                        optimizer.step()
                    }
                }
            },
        ]
    }
}
