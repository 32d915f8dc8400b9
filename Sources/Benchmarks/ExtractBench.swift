import Autoencoders
import Extraction
import Foundation
import Patches
import TensorCore
import VolumeIO

extension Bench {
    /// Extraction through the `Extraction` stage (what `adwb extract` runs per scan, after
    /// reading the file): `extract_volume_cae` encodes one normalised 121×145×121 volume with
    /// the peer benchmark's encoder (Conv3d 1→16, ReLU, MaxPool 2, Conv3d 16→32, ReLU,
    /// MaxPool 2: a CAE with channels 16, 32) in slabs of the default memory budget, then
    /// mean-pools the 32 channels over 3×3×3 regions. bench_peers.py times the same encoder's
    /// forward pass over the volume (`volume_encode_121x145x121`).
    static var extractKernels: [Kernel] {
        [
            Kernel(name: "extract_volume_cae", gflop: BenchModels.encoderFlops(121, 145, 121) / 1e9) {
                var config = PretrainConfig(model: .cae)
                config.patches.size = [32, 32, 32]
                config.cae!.channels = [16, 32]
                let model = try makeAutoencoder(config)
                let extractor = try FeatureExtractor(config: config, model: model, options: ExtractionOptions())
                let networks = try extractor.encoder.makeNetworks()
                let shape = Triple(121, 145, 121)
                let scan = NormalisedScan(shape: shape, values: TestData.uniform([shape.product], seed: 2).scalars,
                                          mask: [Bool](repeating: true, count: shape.product), affine: .identity)
                let source = ScanSource(name: "bench", image: URL(fileURLWithPath: "/bench"))
                return { _ = try extractor.features(of: scan, source: source, networks: networks) }
            },
        ]
    }
}
