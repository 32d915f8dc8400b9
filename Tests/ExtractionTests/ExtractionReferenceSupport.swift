import Autoencoders
import Foundation
import NeuralNet
import Patches
import TensorCore
import TestSupport
import VolumeIO
@testable import Extraction

/// The PyTorch reference fixtures of Tests/Fixtures/make_extraction_fixtures.py and runs that
/// carry their weights, built once per process.
enum ExtractionReference {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent("Extraction")

    /// `volume.nii`: 23x19x21 float32, 2 mm voxels, flipped first axis, non-zero origin.
    static var volume: URL { folder.appendingPathComponent("volume.nii") }
    static let volumeShape = Triple(23, 19, 21)

    /// `expected.safetensors`: PyTorch's maps and features.
    static let expected: [String: Tensor] = {
        do {
            let (tensors, _) = try SafeTensors.read(from: folder.appendingPathComponent("expected.safetensors"))
            return tensors.compactMapValues { value in
                if case let .float32(t) = value { return t }
                return nil
            }
        } catch {
            fatalError("cannot read the extraction reference fixtures: \(error)")
        }
    }()

    /// The reference runs, loaded afresh (a `PretrainedRun` is not `Sendable`).
    static var caeRun: PretrainedRun { load(caeFolder) }
    static var saeRun: PretrainedRun { load(saeFolder) }

    /// A CAE run folder (8³ patches, channels [4, 8], kernel 3, ReLU, transpose decoder, no intensity
    /// normalisation) whose weights are `cae_state.safetensors`.
    static let caeFolder: URL = makeRun("cae", state: "cae_state.safetensors") {
        var config = PretrainConfig(model: .cae)
        config.patches.size = [8, 8, 8]
        config.cae!.channels = [4, 8]
        config.cae!.kernel = 3
        config.cae!.activation = .relu
        config.cae!.decoder = .transpose
        return config
    }

    /// A SAE run folder (5³ patches, hidden [6, 3], sigmoid units and output, untied, no intensity
    /// normalisation) whose weights are `sae_state.safetensors`.
    static let saeFolder: URL = makeRun("sae", state: "sae_state.safetensors") {
        var config = PretrainConfig(model: .sae)
        config.patches.size = [5, 5, 5]
        config.sae!.hidden = [6, 3]
        config.sae!.activation = .sigmoid
        config.sae!.outputActivation = .sigmoid
        config.sae!.tiedWeights = false
        return config
    }

    private static func load(_ url: URL) -> PretrainedRun {
        do { return try PretrainedRun.load(url) } catch { fatalError("cannot load the reference run \(url.path): \(error)") }
    }

    /// Sets a run up with `Pretraining.start` (writing its `config.json`; nothing is trained),
    /// puts the fixture's state in as `model.safetensors` and loads the run (a strict load:
    /// the fixture's names and shapes must be the configured model's).
    private static func makeRun(_ name: String, state: String, _ make: () -> PretrainConfig) -> URL {
        var config = make()
        config.seed = 11
        config.patches.normalization = .none
        config.patches.patchesPerEpoch = 16
        config.training.epochs = 1
        config.training.batchSize = 8
        config.training.validationFraction = 0
        let manifest = ExtractionCohort.manifest  // generates the cohort (and its clean-up) first
        let output = ExtractionCohort.folder.appendingPathComponent("reference-\(name)")
        do {
            _ = try Pretraining.start(config: config, manifest: manifest, output: output)
            let directory = RunDirectory(output)
            try? FileManager.default.removeItem(at: directory.model)
            try FileManager.default.copyItem(at: folder.appendingPathComponent(state), to: directory.model)
            _ = try PretrainedRun.load(output)
            return output
        } catch {
            fatalError("cannot set up the \(name) reference run: \(error)")
        }
    }

    /// Extraction options with the given fields (the rest default).
    static func options(pooling: RegionPooling = .mean, grid: [Int] = [3, 3, 3], saeLevels: Int? = nil,
                        saeDeepLayers: DeepSAELayers = .grid) -> ExtractionOptions {
        var options = ExtractionOptions()
        (options.pooling, options.grid, options.saeLevels, options.saeDeepLayers) = (pooling, grid, saeLevels, saeDeepLayers)
        return options
    }

    /// Resources with a slab budget of `megabytes` (0: one map row per slab).
    static func tiles(_ megabytes: Int) -> ExtractionResources {
        var resources = ExtractionResources()
        resources.tileMegabytes = megabytes
        return resources
    }

    /// Extracts `url` with a fresh extractor for `run` (nil `line`: not from a manifest).
    static func extract(_ run: PretrainedRun, _ url: URL, options: ExtractionOptions, resources: ExtractionResources = ExtractionResources(),
                        keepMap: Bool = false, line: Int? = nil) throws -> ScanFeatures {
        let extractor = try FeatureExtractor(run: run, options: options, resources: resources)
        let networks = try extractor.encoder.makeNetworks()
        return try extractor.extract(ScanSource(name: url.lastPathComponent, image: url, line: line), networks: networks, keepMap: keepMap)
    }

    /// Writes a float32 NIfTI of `shape` with values in [0, 1] (a seeded random field plus a
    /// gentle gradient, so regions differ) and the given voxel size and origin.
    static func writeVolume(_ shape: Triple, seed: UInt64, to url: URL, voxel: Double = 1.5, origin: [Double] = [-30, 12, 5]) throws {
        var generator = Xoshiro256StarStar(seed: seed)
        var values = [Float](repeating: 0, count: shape.product)
        for i in 0..<shape.d {
            for j in 0..<shape.h {
                for k in 0..<shape.w {
                    let trend = Float(i + 2 * j + 3 * k) / Float(shape.d + 2 * shape.h + 3 * shape.w)
                    values[(i * shape.h + j) * shape.w + k] = 0.6 * generator.nextUnitFloat() + 0.4 * trend
                }
            }
        }
        let volume = try Volume(data: try Tensor(shape: shape.array, scalars: values), affine: Affine.scaling([voxel, voxel, voxel], origin: origin))
        try VolumeWriter.write(volume, to: url)
    }

    /// Where `a` and `b` differ bit for bit (which also tells -0 from 0), nil when they are
    /// identical: the count, the first index and its values, and the largest difference.
    static func bitDifference(_ a: [Float], _ b: [Float]) -> String? {
        guard a.count == b.count else { return "\(a.count) values vs \(b.count)" }
        var (count, first, largest) = (0, -1, Float(0))
        for i in a.indices where a[i].bitPattern != b[i].bitPattern {
            if count == 0 { first = i }
            count += 1
            largest = max(largest, abs(a[i] - b[i]))
        }
        guard count > 0 else { return nil }
        return "\(count) of \(a.count) values differ, first at \(first) (\(a[first]) vs \(b[first])), largest difference \(largest)"
    }

    /// Largest violation of `|a − b| <= atol + rtol·|b|` (0 when all close; infinity on a
    /// length mismatch or NaN).
    static func closeness(_ a: [Float], _ b: [Float], rtol: Float = 1e-5, atol: Float = 1e-6) -> Float {
        TestSupport.closeness(a, b, rtol: rtol, atol: atol)
    }
}
