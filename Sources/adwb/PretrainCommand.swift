import ArgumentParser
import Autoencoders
import Foundation
import Patches
import TensorCore

/// `adwb pretrain`: train a stacked or convolutional autoencoder on random patches.
struct PretrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pretrain",
        abstract: "Pretrain a stacked (sae) or convolutional (cae) autoencoder on random 3-D patches of every scan in a manifest.",
        discussion: """
        Settings are resolved in order: the model's defaults or --preset, then --config FILE (YAML or JSON, the \
        keys of a run's config.json), then the options given here. The resolved configuration is written to \
        OUT/config.json with the seed, the manifest's SHA-256 and the adwb version; OUT also gets model.safetensors \
        (PyTorch names and layouts), training_log.csv and checkpoints/. Ctrl-C checkpoints and stops; --resume \
        continues and ends with the same weights as an uninterrupted run. Presets: \(PretrainConfig.presetNames.joined(separator: ", ")).
        """
    )

    @Option(help: "sae or cae (optional with --preset or a config file naming it).")
    var model: ModelKind?
    @Option(help: "Start from a published configuration: \(PretrainConfig.presetNames.joined(separator: ", ")).")
    var preset: String?
    @Option(help: "A YAML or JSON file of settings (see --print-config for every key).")
    var config: String?
    @Option(help: "The cohort manifest (TSV); every row is used, labelled or not. With --resume, a new location of the same file.")
    var manifest: String?
    @Option(help: "Output folder for the run.")
    var out: String?

    @Flag(help: "Continue the run in --out from its last checkpoint (its configuration is reused).")
    var resume = false
    @Flag(help: "Replace an earlier run in --out (its config.json, model.safetensors, training_log.csv and checkpoints/; nothing else).")
    var overwrite = false
    @Flag(name: .customLong("skip-bad"), help: "Leave out scans that cannot be read (listed at the end) instead of stopping.")
    var skipBad = false
    @Flag(name: .customLong("print-config"), help: "Print the resolved configuration as YAML and exit.")
    var printConfig = false
    @Option(name: .customLong("stop-after-epochs"), help: "Stop, checkpointed, after this many epochs (e.g. to fit a scheduler's time slot); continue with --resume.")
    var stopAfterEpochs: Int?

    @OptionGroup(title: "Patches") var patches: PatchArguments
    @OptionGroup(title: "Stacked autoencoder (sae)") var sae: SAEArguments
    @OptionGroup(title: "Convolutional autoencoder (cae)") var cae: CAEArguments
    @OptionGroup(title: "Training") var training: TrainingArguments
    @OptionGroup(title: "Resources") var resources: ResourceArguments
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if resume && overwrite { throw ValidationError("--resume continues a run; --overwrite replaces it: choose one") }
        if resume && skipBad { throw ValidationError("--skip-bad applies when a run starts; a resumed run keeps the scans it skipped") }
        if resume && (model != nil || preset != nil || config != nil) {
            throw ValidationError("--resume reuses the run's configuration; drop --model, --preset and --config")
        }
        if !printConfig && manifest == nil && !resume { throw ValidationError("--manifest is required") }
        if !printConfig && out == nil { throw ValidationError("--out is required") }
        if let stopAfterEpochs, stopAfterEpochs < 1 { throw ValidationError("--stop-after-epochs must be at least 1") }
    }

    func resolvedConfig() throws -> PretrainConfig {
        var resolved = try ConfigFile.resolve(model: model, preset: preset, file: config.map { URL(fileURLWithPath: $0) })
        try patches.apply(to: &resolved.patches)
        if resolved.sae != nil { try sae.apply(to: &resolved.sae!) } else if sae.isSet { throw ValidationError("SAE options were given for a \(resolved.model.rawValue) model") }
        if resolved.cae != nil {
            try cae.apply(to: &resolved.cae!)
            sae.applyShared(to: &resolved.cae!)
        } else if cae.isSet { throw ValidationError("CAE options were given for a \(resolved.model.rawValue) model") }
        training.apply(to: &resolved.training, seed: &resolved.seed)
        try resolved.validate()
        return resolved
    }

    func run() throws {
        compute.apply()
        if printConfig {
            print(try ConfigFile.yaml(try resolvedConfig()), terminator: "")
            return
        }
        guard let out else { throw ValidationError("--out is required") }
        let output = URL(fileURLWithPath: out)
        let setup: Pretraining.Setup
        if resume {
            if patches.isSet || sae.isSet || sae.sharedIsSet || cae.isSet || training.isSet {
                throw ValidationError("--resume continues with the run's own configuration; hyper-parameter options cannot change it")
            }
            let recorded = Pretraining.recordedThreads(output: output)
            if compute.threads == nil, let recorded {
                Engine.setThreads(recorded)
            } else if let recorded, recorded != Engine.threads {
                log("warning: the run used \(recorded) threads; with \(Engine.threads) its weights will not be byte-identical to an uninterrupted run")
            }
            setup = try Pretraining.resume(output: output, manifest: manifest.map { URL(fileURLWithPath: $0) }, resources: resources.value)
            log("resuming \(output.path) at phase \(setup.trainer.state.phase + 1), epoch \(setup.trainer.state.epoch + 1), step \(setup.trainer.state.step)")
        } else {
            let resolved = try resolvedConfig()
            let checking = SharedProgress(label: "checking scans")
            setup = try Pretraining.start(config: resolved, manifest: URL(fileURLWithPath: manifest!), output: output,
                                          resources: resources.value, skipBad: skipBad, overwrite: overwrite) { done, total in
                checking.update(done, total)
            }
            let p = setup.provenance
            log("\(resolved.model.rawValue)\(resolved.preset.map { " (\($0))" } ?? ""): \(p.scans) scans, "
                + "\(p.trainingParticipants.count) training / \(p.validationParticipants.count) validation participants; config: \(RunDirectory(output).config.path)")
        }
        let trainer = setup.trainer
        trainer.stopAfterEpochs = stopAfterEpochs
        let interrupt = InterruptFlag()
        trainer.shouldStop = { interrupt.isSet }
        var bar: ProgressBar?
        trainer.observer = { event in
            switch event {
            case let .phaseStarted(name, index, epochs, _):
                log("phase \(index + 1)/\(trainer.config.phaseNames.count): \(name), \(epochs) epoch\(epochs == 1 ? "" : "s")")
            case let .batchFinished(phase, epoch, batch, batches, _):
                if bar == nil || batch == 1 { bar = ProgressBar("\(phase) epoch \(epoch)", total: batches) }
                bar?.update(batch)
            case let .epochFinished(row):
                bar = nil
                var text = "\(row.phase) epoch \(row.epoch): train loss \(short(row.trainLoss)), train mse \(short(row.trainMSE))"
                if !row.validationMSE.isNaN {
                    text += ", val mse \(short(row.validationMSE)) (patch \(short(row.validationPatchMSE)), patch-mean predictor \(short(row.validationMeanPatchMSE)))"
                }
                if !row.validationMeanActivation.isNaN { text += ", mean activation \(short(row.validationMeanActivation))" }
                log(text + String(format: ", %.1f s", row.seconds))
            case let .earlyStopped(phase, epoch, best):
                log("\(phase): no validation improvement for \(trainer.config.training.patience) epochs; stopped after epoch \(epoch) (best: epoch \(best))")
            case .checkpointWritten:
                break
            }
        }
        let directory = RunDirectory(output)
        switch try trainer.run() {
        case .finished:
            print("model: \(directory.model.path)")
            print("config: \(directory.config.path)")
            print("log: \(directory.log.path)")
        case let .stopped(checkpoint):
            print("stopped; checkpoint: \(checkpoint.path) (continue with: adwb pretrain --resume --out \(out))")
        }
        if !setup.provenance.skippedScans.isEmpty {
            print("skipped \(setup.provenance.skippedScans.count) scan(s):")
            for scan in setup.provenance.skippedScans { print("  \(scan)") }
        }
        if let signalNumber = interrupt.signalNumber { throw ExitCode(128 + signalNumber) }
    }
}

/// A progress bar updated from worker threads, created once the total is known.
final class SharedProgress: @unchecked Sendable {
    private let label: String
    private let lock = NSLock()
    private var bar: ProgressBar?

    init(label: String) { self.label = label }

    func update(_ done: Int, _ total: Int) {
        lock.lock()
        defer { lock.unlock() }
        if bar == nil { bar = ProgressBar(label, total: total) }
        bar?.update(done)
    }
}

private func log(_ text: String) { FileHandle.standardError.write(Data(("pretrain: " + text + "\n").utf8)) }

private func short(_ value: Double) -> String { String(format: "%.5g", value) }

/// Set by SIGINT or SIGTERM: the trainer checkpoints and stops at the next minibatch; an
/// extraction stops after the scans in hand and cleans up.
final class InterruptFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var received: Int32?
    private var sources: [DispatchSourceSignal] = []

    /// `notice` is printed (on stderr) when a signal arrives.
    init(notice: String = "pretrain: stopping after this minibatch (checkpointing)...") {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { [weak self] in
                guard let self else { return }
                self.lock.lock()
                self.received = signalNumber
                self.lock.unlock()
                FileHandle.standardError.write(Data("\n\(notice)\n".utf8))
            }
            source.resume()
            sources.append(source)
        }
    }

    var isSet: Bool { signalNumber != nil }

    /// The signal received, if any.
    var signalNumber: Int32? {
        lock.lock()
        defer { lock.unlock() }
        return received
    }
}

extension ModelKind: ExpressibleByArgument {}
extension IntensityNormalization: ExpressibleByArgument {}
extension ActivationName: ExpressibleByArgument {}
extension CorruptionKind: ExpressibleByArgument {}
extension CAEOptions.DecoderKind: ExpressibleByArgument {}
extension TrainingOptions.OptimizerName: ExpressibleByArgument {}
extension TrainingOptions.ScheduleName: ExpressibleByArgument {}

/// Whole numbers separated by commas or `x` (`5x5x5`, `150,100`).
func integers(_ text: String, option: String) throws -> [Int] {
    try text.split(whereSeparator: { $0 == "," || $0 == "x" }).map { part in
        guard let value = Int(part.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("\(option): \"\(part)\" is not a whole number") }
        return value
    }
}

struct PatchArguments: ParsableArguments {
    @Option(name: .customLong("patch-size"), help: "Patch extent DxHxW in voxels, or one number for a cube (1 on an axis gives 2-D slices).")
    var patchSize: String?
    @Option(help: "Intensity normalisation per scan: zscore, minmax or none.")
    var normalization: IntensityNormalization?
    @Option(name: .customLong("clip-percentiles"), help: "LOW,HIGH percentiles mapped to 0 and 1 by minmax.")
    var clipPercentiles: String?
    @Option(name: .customLong("foreground-threshold"), help: "Without a mask_path: fraction of the 99th percentile above which voxels are foreground.")
    var foregroundThreshold: Double?
    @Flag(name: .customLong("zero-outside-mask"), inversion: .prefixedNo, help: "Set voxels outside the mask to 0 after normalisation.")
    var zeroOutsideMask: Bool?
    @Option(name: .customLong("patches-per-epoch"), help: "Patches drawn per epoch, shared equally by the training scans.")
    var patchesPerEpoch: Int?
    @Flag(name: .customLong("fixed-patches"), inversion: .prefixedNo,
          help: "Train on the same patch locations every epoch (order and augmentation drawn anew) instead of new patches.")
    var fixedPatches: Bool?
    @Option(name: .customLong("scans-per-block"), help: "Scan visits whose patches are shuffled together.")
    var scansPerBlock: Int?
    @Option(name: .customLong("block-mb"), help: "Memory for one shuffled block of patches, in MB.")
    var blockMegabytes: Int?
    @Option(name: .customLong("flip-probability"), help: "Augmentation: probability of mirroring a patch along each axis.")
    var flipProbability: Double?
    @Option(name: .customLong("max-shift"), help: "Augmentation: largest shift of the sampling window, in voxels.")
    var maxShift: Int?
    @Option(name: .customLong("intensity-scale"), help: "Augmentation: multiply patches by 1 + U(-s, s).")
    var intensityScale: Double?
    @Option(name: .customLong("intensity-offset"), help: "Augmentation: add U(-o, o) to patches.")
    var intensityOffset: Double?

    var isSet: Bool {
        patchSize != nil || normalization != nil || clipPercentiles != nil || foregroundThreshold != nil || zeroOutsideMask != nil
            || patchesPerEpoch != nil || fixedPatches != nil || scansPerBlock != nil || blockMegabytes != nil || flipProbability != nil
            || maxShift != nil || intensityScale != nil || intensityOffset != nil
    }

    func apply(to options: inout PatchSamplingOptions) throws {
        if let patchSize {
            let extents = try integers(patchSize, option: "--patch-size")
            guard extents.count == 1 || extents.count == 3 else { throw ValidationError("--patch-size: give DxHxW or one number") }
            options.size = extents.count == 1 ? Array(repeating: extents[0], count: 3) : extents
        }
        if let normalization { options.normalization = normalization }
        if let clipPercentiles { options.clipPercentiles = try numbers(clipPercentiles, option: "--clip-percentiles") }
        if let foregroundThreshold { options.foregroundThreshold = foregroundThreshold }
        if let zeroOutsideMask { options.zeroOutsideMask = zeroOutsideMask }
        if let patchesPerEpoch { options.patchesPerEpoch = patchesPerEpoch }
        if let fixedPatches { options.resampleEachEpoch = !fixedPatches }
        if let scansPerBlock { options.scansPerBlock = scansPerBlock }
        if let blockMegabytes { options.blockMegabytes = blockMegabytes }
        if let flipProbability { options.augmentation.flipProbability = flipProbability }
        if let maxShift { options.augmentation.maxShift = maxShift }
        if let intensityScale { options.augmentation.intensityScale = intensityScale }
        if let intensityOffset { options.augmentation.intensityOffset = intensityOffset }
    }
}

struct SAEArguments: ParsableArguments {
    @Option(help: "Hidden units per layer from the input side, e.g. 150 or 400,150 (greedy layer-wise).")
    var hidden: String?
    @Option(help: "Hidden activation: sigmoid, tanh or relu (also the CAE's activation).")
    var activation: ActivationName?
    @Option(name: .customLong("output-activation"), help: "Activation reconstructing the patch: sigmoid (for minmax inputs) or linear.")
    var outputActivation: ActivationName?
    @Flag(inversion: .prefixedNo, help: "Tie decoder weights to the transposed encoder weights.")
    var tied: Bool?
    @Option(name: .customLong("sparsity-target"), help: "Target mean activation rho of the KL sparsity penalty (0: no penalty).")
    var sparsityTarget: Double?
    @Option(name: .customLong("sparsity-weight"), help: "Weight beta of the KL sparsity penalty.")
    var sparsityWeight: Double?
    @Option(help: "Denoising input corruption: none, masking or gaussian (also for the CAE).")
    var corruption: CorruptionKind?
    @Option(name: .customLong("corruption-level"), help: "Masking probability or Gaussian noise std.")
    var corruptionLevel: Double?
    @Option(name: .customLong("fine-tune-epochs"), help: "Epochs of joint fine-tuning of the whole stack after the greedy phases.")
    var fineTuneEpochs: Int?

    /// Options that only a SAE has (activation and corruption also apply to a CAE).
    var isSet: Bool { hidden != nil || outputActivation != nil || tied != nil || sparsityTarget != nil || sparsityWeight != nil || fineTuneEpochs != nil }

    /// Whether any option a CAE shares was given.
    var sharedIsSet: Bool { activation != nil || corruption != nil || corruptionLevel != nil }

    /// The options a CAE shares: activation and input corruption.
    func applyShared(to options: inout CAEOptions) {
        if let activation { options.activation = activation }
        if let corruption { options.corruption = corruption }
        if let corruptionLevel { options.corruptionLevel = corruptionLevel }
    }

    func apply(to options: inout SAEOptions) throws {
        if let hidden { options.hidden = try integers(hidden, option: "--hidden") }
        if let activation { options.activation = activation }
        if let outputActivation { options.outputActivation = outputActivation }
        if let tied { options.tiedWeights = tied }
        if let sparsityTarget { options.sparsityTarget = sparsityTarget }
        if let sparsityWeight { options.sparsityWeight = sparsityWeight }
        if let corruption { options.corruption = corruption }
        if let corruptionLevel { options.corruptionLevel = corruptionLevel }
        if let fineTuneEpochs { options.fineTuneEpochs = fineTuneEpochs }
    }
}

struct CAEArguments: ParsableArguments {
    @Option(help: "Channels per encoder level, e.g. 8,16,32 (each level halves the patch).")
    var channels: String?
    @Option(help: "Odd convolution kernel extent.")
    var kernel: Int?
    @Option(help: "Decoder blocks: transpose (ConvTranspose3d) or upsample (nearest upsampling + Conv3d).")
    var decoder: CAEOptions.DecoderKind?

    var isSet: Bool { channels != nil || kernel != nil || decoder != nil }

    func apply(to options: inout CAEOptions) throws {
        if let channels { options.channels = try integers(channels, option: "--channels") }
        if let kernel { options.kernel = kernel }
        if let decoder { options.decoder = decoder }
    }
}

struct TrainingArguments: ParsableArguments {
    @Option(help: "Random seed (patches, initial weights, validation participants, noise).")
    var seed: UInt64?
    @Option(help: "Epochs per phase (each SAE layer is a phase).")
    var epochs: Int?
    @Option(name: .customLong("batch-size"), help: "Patches per minibatch.")
    var batchSize: Int?
    @Option(help: "adam or sgd.")
    var optimizer: TrainingOptions.OptimizerName?
    @Option(name: .customLong("learning-rate"), help: "Base learning rate.")
    var learningRate: Double?
    @Option(help: "SGD momentum.")
    var momentum: Double?
    @Option(name: .customLong("weight-decay"), help: "Lambda of the lambda/2 * sum ||W||^2 penalty on weights.")
    var weightDecay: Double?
    @Option(help: "Learning-rate schedule: constant, step or cosine.")
    var schedule: TrainingOptions.ScheduleName?
    @Option(name: .customLong("step-size"), help: "step schedule: epochs between decays.")
    var stepSize: Int?
    @Option(help: "step schedule: decay factor.")
    var gamma: Double?
    @Option(name: .customLong("min-learning-rate"), help: "cosine schedule: final learning rate.")
    var minimumLearningRate: Double?
    @Option(help: "Epochs without validation improvement before a phase stops early (0: never).")
    var patience: Int?
    @Option(name: .customLong("min-delta"), help: "Smallest validation improvement that counts.")
    var minDelta: Double?
    @Flag(name: .customLong("restore-best"), inversion: .prefixedNo,
          help: "End each phase with its best validation epoch's weights (--no-restore-best: the last epoch's).")
    var restoreBest: Bool?
    @Option(name: .customLong("checkpoint-every"), help: "Checkpoint every N minibatch steps besides each epoch's end (0: epochs only).")
    var checkpointEvery: Int?
    @Option(name: .customLong("validation-fraction"), help: "Share of participants held out for validation patches.")
    var validationFraction: Double?
    @Option(name: .customLong("validation-patches"), help: "Validation patches (the same ones every epoch).")
    var validationPatches: Int?

    var isSet: Bool {
        seed != nil || epochs != nil || batchSize != nil || optimizer != nil || learningRate != nil || momentum != nil || weightDecay != nil
            || schedule != nil || stepSize != nil || gamma != nil || minimumLearningRate != nil || patience != nil || minDelta != nil
            || restoreBest != nil || checkpointEvery != nil || validationFraction != nil || validationPatches != nil
    }

    func apply(to options: inout TrainingOptions, seed resolvedSeed: inout UInt64) {
        if let seed { resolvedSeed = seed }
        if let epochs { options.epochs = epochs }
        if let batchSize { options.batchSize = batchSize }
        if let optimizer { options.optimizer = optimizer }
        if let learningRate { options.learningRate = learningRate }
        if let momentum { options.momentum = momentum }
        if let weightDecay { options.weightDecay = weightDecay }
        if let schedule { options.schedule = schedule }
        if let stepSize { options.stepSize = stepSize }
        if let gamma { options.gamma = gamma }
        if let minimumLearningRate { options.minimumLearningRate = minimumLearningRate }
        if let patience { options.patience = patience }
        if let minDelta { options.minDelta = minDelta }
        if let restoreBest { options.restoreBest = restoreBest }
        if let checkpointEvery { options.checkpointEvery = checkpointEvery }
        if let validationFraction { options.validationFraction = validationFraction }
        if let validationPatches { options.validationPatches = validationPatches }
    }
}

struct ResourceArguments: ParsableArguments {
    @Option(help: "Threads loading scans and cutting patches (results do not depend on it).")
    var workers = 2
    @Option(name: .customLong("cache-mb"), help: "Memory for prepared scans, in MB (results do not depend on it).")
    var cacheMegabytes = 512

    func validate() throws {
        guard workers >= 1, workers <= 64 else { throw ValidationError("--workers must be 1 to 64") }
        guard cacheMegabytes >= 0 else { throw ValidationError("--cache-mb must be >= 0") }
    }

    var value: PretrainResources {
        var resources = PretrainResources()
        resources.workers = workers
        resources.cacheMegabytes = cacheMegabytes
        return resources
    }
}
