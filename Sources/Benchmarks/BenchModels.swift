import NeuralNet
import TensorCore

/// The reference networks of the peer benchmark (../shared/peers/bench_peers.py), built from
/// the workbench's layers with the same shapes.
public enum BenchModels {
    /// `Conv3d(1→16, k3, p1)–ReLU–MaxPool3d(2)–Conv3d(16→32, k3, p1)–ReLU–MaxPool3d(2)`:
    /// `[N, 1, D, H, W] → [N, 32, D/4, H/4, W/4]`.
    public static func encoder(seed: UInt64) -> Sequential {
        var generator = Xoshiro256StarStar(seed: seed)
        return Sequential([
            Conv3d(inChannels: 1, outChannels: 16, kernel: Triple(3), padding: Triple(1), using: &generator),
            ReLU(),
            MaxPool3d(kernel: Triple(2)),
            Conv3d(inChannels: 16, outChannels: 32, kernel: Triple(3), padding: Triple(1), using: &generator),
            ReLU(),
            MaxPool3d(kernel: Triple(2)),
        ])
    }

    /// The *strided* decoder: `ConvTranspose3d(32→16, k3, s2, p1, op1)–ReLU–ConvTranspose3d(16→1, k3, s2, p1, op1)`.
    public static func stridedDecoder(seed: UInt64) throws -> Sequential {
        var generator = Xoshiro256StarStar(seed: seed)
        return Sequential([
            try ConvTranspose3d(inChannels: 32, outChannels: 16, kernel: Triple(3), stride: Triple(2), padding: Triple(1),
                                outputPadding: Triple(1), using: &generator),
            ReLU(),
            try ConvTranspose3d(inChannels: 16, outChannels: 1, kernel: Triple(3), stride: Triple(2), padding: Triple(1),
                                outputPadding: Triple(1), using: &generator),
        ])
    }

    /// FLOPs (multiply-add = 2) of the encoder's convolutions on one `D×H×W` volume.
    public static func encoderFlops(_ d: Int, _ h: Int, _ w: Int) -> Double {
        2.0 * 27 * (1 * 16 * Double(d * h * w) + 16 * 32 * Double((d / 2) * (h / 2) * (w / 2)))
    }

    /// FLOPs of the strided decoder on a `D×H×W` input volume (counted per input voxel).
    public static func stridedDecoderFlops(_ d: Int, _ h: Int, _ w: Int) -> Double {
        2.0 * 27 * (32 * 16 * Double((d / 4) * (h / 4) * (w / 4)) + 16 * 1 * Double((d / 2) * (h / 2) * (w / 2)))
    }
}
