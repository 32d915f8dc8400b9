import Foundation
import NeuralNet
import TensorCore

/// A finished pretraining run read back from its folder: the resolved configuration, where
/// its data came from, and the model with its trained weights.
public struct PretrainedRun {
    public let directory: RunDirectory
    public let config: PretrainConfig
    public let provenance: PretrainProvenance
    public let model: any AutoencoderModel
    /// `config.json`'s bytes, recorded by whatever is derived from the run.
    public let configJSON: Data
    /// Set for an untrained copy: the seed its weights were drawn from.
    public let untrainedSeed: UInt64?

    /// Reads `config.json` and `model.safetensors` from `url`.
    /// - Throws: `PretrainError.io` when the folder holds no finished run,
    ///   `PretrainError.invalidConfig` for an unreadable configuration, and the checkpoint
    ///   loader's error when the weights do not fit the configured model.
    public static func load(_ url: URL) throws -> PretrainedRun {
        let directory = RunDirectory(url)
        let (record, data) = try RunRecord.read(directory, purpose: "to extract with")
        guard FileManager.default.fileExists(atPath: directory.model.path) else {
            throw PretrainError.io("\(url.path): no trained model (model.safetensors is missing; is the run finished?)")
        }
        let model = try makeAutoencoder(record.config)
        try Checkpoint.load(model.module, from: directory.model)
        return PretrainedRun(directory: directory, config: record.config, provenance: record.provenance, model: model, configJSON: data,
                             untrainedSeed: nil)
    }

    /// The same architecture with freshly drawn weights (a control: features of an untrained
    /// encoder), drawn from `seed`.
    public func untrained(seed: UInt64) throws -> PretrainedRun {
        var config = self.config
        config.seed = seed
        return PretrainedRun(directory: directory, config: self.config, provenance: provenance, model: try makeAutoencoder(config),
                             configJSON: configJSON, untrainedSeed: seed)
    }
}
