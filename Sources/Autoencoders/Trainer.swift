import Foundation
import NeuralNet
import Patches
import TensorCore

/// One row of `training_log.csv`: a finished epoch.
public struct TrainingLogRow: Sendable, Codable, Equatable {
    public var phase: String
    /// 1-based within the phase.
    public var epoch: Int
    /// Minibatch steps done in the whole run at the epoch's end.
    public var step: Int
    public var learningRate: Double
    /// Mean training objective (reconstruction loss plus penalties) over the epoch's minibatches.
    public var trainLoss: Double
    /// Mean squared error of what the phase reconstructs, over the epoch's training patches.
    public var trainMSE: Double
    /// The same on the validation patches (the early-stopping criterion); NaN without validation.
    public var validationMSE: Double
    /// Mean squared error of the whole model's reconstruction of the validation patches.
    public var validationPatchMSE: Double
    /// What predicting each validation patch's own mean would score (the bar to beat).
    public var validationMeanPatchMSE: Double
    /// Mean activation of the phase's code units on the validation patches (NaN for a CAE).
    public var validationMeanActivation: Double
    public var seconds: Double

    static let csvHeader = "phase,epoch,step,learning_rate,train_loss,train_mse,val_mse,val_patch_mse,val_mean_patch_mse,val_mean_activation,seconds"

    var csvLine: String {
        func number(_ value: Double) -> String { value.isNaN ? "" : "\(value)" }
        return [phase, "\(epoch)", "\(step)", number(learningRate), number(trainLoss), number(trainMSE), number(validationMSE),
                number(validationPatchMSE), number(validationMeanPatchMSE), number(validationMeanActivation),
                String(format: "%.3f", seconds)].joined(separator: ",")
    }
}

/// Where a run is in its training, saved in every checkpoint so `--resume` continues exactly.
public struct TrainerState: Sendable, Codable, Equatable {
    public var phase = 0
    /// The epoch in progress within the phase (0-based); equal to the phase's epochs once done.
    public var epoch = 0
    /// Minibatches finished in the epoch in progress.
    public var batch = 0
    /// Minibatches finished in the whole run.
    public var step = 0
    public var epochTally = ReconstructionTally()
    /// Best validation error of this phase so far, and its epoch (1-based).
    public var best: Double?
    public var bestEpoch = 0
    public var epochsWithoutImprovement = 0
    public var log: [TrainingLogRow] = []
    public var finished = false
    /// Seconds spent in the epoch in progress before the last checkpoint.
    public var epochSeconds = 0.0

    public init() {}

    /// Log values may be NaN (no validation, no activations); JSON spells them as strings.
    static let nonFinite = JSONEncoder.NonConformingFloatEncodingStrategy.convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")

    /// Reads the state as checkpoints store it.
    public static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }
}

/// What the loop reports while it runs.
public enum TrainingEvent {
    case phaseStarted(name: String, index: Int, epochs: Int, batchesPerEpoch: Int)
    case batchFinished(phase: String, epoch: Int, batch: Int, batches: Int, loss: Double)
    case epochFinished(TrainingLogRow)
    case earlyStopped(phase: String, epoch: Int, bestEpoch: Int)
    case checkpointWritten(URL)
}

/// How a call to `Trainer.run()` ended.
public enum TrainingOutcome: Equatable {
    case finished
    /// Stopped by request after a checkpoint; continue with a new trainer resumed from it.
    case stopped(checkpoint: URL)
}

/// The files of a pretraining run's output folder.
public struct RunDirectory: Sendable {
    public let url: URL
    public init(_ url: URL) { self.url = url }
    public var config: URL { url.appendingPathComponent("config.json") }
    public var model: URL { url.appendingPathComponent("model.safetensors") }
    public var log: URL { url.appendingPathComponent("training_log.csv") }
    public var checkpoints: URL { url.appendingPathComponent("checkpoints") }
    public var lastCheckpoint: URL { checkpoints.appendingPathComponent("last.safetensors") }
    public var bestCheckpoint: URL { checkpoints.appendingPathComponent("best.safetensors") }

    /// Deletes a run's own files (and its checkpoints folder); anything else in the folder stays.
    public func removeRun() throws {
        for file in [config, model, log, checkpoints] where FileManager.default.fileExists(atPath: file.path) {
            try FileManager.default.removeItem(at: file)
        }
    }
}

/// The training loop shared by every autoencoder: epochs of streamed minibatches, Adam or
/// SGD with a learning-rate schedule, validation on held-out participants' patches with
/// early stopping, a checkpoint every N steps and at each epoch's end, and exact resumption.
///
/// Reproducibility: patches come from `(seed, phase, epoch)` streams, input corruption from
/// `(seed, step)`, and a checkpoint holds the weights, the optimiser's moments and this
/// loop's state, so a resumed run ends with the same bytes as an uninterrupted one (same
/// thread count).
public final class Trainer {
    public let config: PretrainConfig
    public let model: any AutoencoderModel
    public let directory: RunDirectory
    public private(set) var state: TrainerState
    let training: PatchSampler
    /// Prepared scans for both samplers (they index its sources).
    let cache: ScanCache
    let validation: PatchSampler?
    /// Extra metadata stored in checkpoints and the final model (config JSON, provenance).
    let metadata: [String: String]
    /// Threads cutting patches and blocks allowed to wait ready.
    public var workers = 2
    public var queueDepth = 4
    public var observer: (TrainingEvent) -> Void = { _ in }
    /// Polled after each minibatch; `true` checkpoints and stops (e.g. after SIGINT).
    public var shouldStop: () -> Bool = { false }
    /// Stop (checkpointed) after this many epochs have finished in this call to `run()`.
    public var stopAfterEpochs: Int?
    private var resumedOptimizer: (tensors: [String: Tensor], step: Int)?
    /// The validation patches' error when each is predicted by its own mean (computed once).
    private var meanPredictorMSE: Double?

    public init(config: PretrainConfig, model: any AutoencoderModel, directory: RunDirectory,
                cache: ScanCache, training: PatchSampler, validation: PatchSampler?,
                metadata: [String: String] = [:]) {
        (self.config, self.model, self.directory) = (config, model, directory)
        (self.cache, self.training, self.validation) = (cache, training, validation)
        self.metadata = metadata
        state = TrainerState()
    }

    /// Restores the model, optimiser and loop state from the run's last checkpoint.
    public func resume() throws {
        let url = directory.lastCheckpoint
        let (tensors, stored) = try SafeTensors.read(from: url)
        guard let json = stored["adwb_trainer_state"], let restored = try? TrainerState.decoder.decode(TrainerState.self, from: Data(json.utf8)) else {
            throw PretrainError.io("\(url.path): not a pretraining checkpoint (no trainer state)")
        }
        let phases = config.phaseNames.count
        guard (0...phases).contains(restored.phase), restored.epoch >= 0, (0...config.batchesPerEpoch).contains(restored.batch), restored.step >= 0,
              restored.phase == phases || restored.epoch <= config.epochs(phase: restored.phase) else {
            throw PretrainError.io("\(url.path): its training state (phase \(restored.phase), epoch \(restored.epoch), batch \(restored.batch)) does not fit this run's configuration")
        }
        var modelTensors: [String: SafeTensors.Value] = [:]
        var optimizerTensors: [String: Tensor] = [:]
        for (name, value) in tensors {
            if name.hasPrefix("optimizer.") {
                guard case let .float32(t) = value else { throw PretrainError.io("\(url.path): optimizer state '\(name)' is not float32") }
                optimizerTensors[String(name.dropFirst("optimizer.".count))] = t
            } else {
                modelTensors[name] = value
            }
        }
        try Checkpoint.load(model.module, tensors: modelTensors, path: url.path)
        resumedOptimizer = (optimizerTensors, Int(stored["adwb_optimizer_step"] ?? "0") ?? 0)
        state = restored
    }

    private func makeOptimizer(phase: Int) throws -> any Optimizer {
        let parameters = model.parameters(phase: phase)
        let t = config.training
        switch t.optimizer {
        case .adam: return try Adam(parameters: parameters, learningRate: Float(t.learningRate))
        case .sgd: return try SGD(parameters: parameters, learningRate: Float(t.learningRate), momentum: Float(t.momentum))
        }
    }

    /// Epoch number that keys the patch streams: unique per (phase, epoch).
    private func streamEpoch(phase: Int, epoch: Int) -> Int { phase * 1_000_000 + epoch }

    /// Trains until every phase is done (or a stop is requested), writing `model.safetensors`
    /// at the end.
    /// - Throws: `PretrainError.nonFiniteLoss` (the last checkpoint is kept), `PatchError`
    ///   from a scan, or I/O errors.
    public func run() throws -> TrainingOutcome {
        try FileManager.default.createDirectory(at: directory.checkpoints, withIntermediateDirectories: true)
        let phases = config.phaseNames
        var epochsThisRun = 0
        while state.phase < phases.count {
            let phase = state.phase
            let name = phases[phase]
            let epochs = config.epochs(phase: phase)
            let optimizer = try makeOptimizer(phase: phase)
            if let saved = resumedOptimizer {
                if saved.step > 0 { try optimizer.loadState(saved.tensors, stepCount: saved.step) }
                resumedOptimizer = nil
            }
            let schedule = config.training.schedule(epochs: epochs)
            observer(.phaseStarted(name: name, index: phase, epochs: epochs, batchesPerEpoch: config.batchesPerEpoch))
            while state.epoch < epochs {
                // Start of the time not yet counted in `state.epochSeconds`.
                var started = Date()
                optimizer.learningRate = schedule.learningRate(base: Float(config.training.learningRate), epoch: state.epoch)
                let stream = PatchStream(sampler: training, cache: cache, epoch: streamEpoch(phase: phase, epoch: state.epoch),
                                         batchSize: config.training.batchSize, skipBatches: state.batch, workers: workers, queueDepth: queueDepth)
                while let batch = try stream.next() {
                    model.module.zeroGradients()
                    var noise = Xoshiro256StarStar(seed: SplitMix64.derive(config.seed, 0x2_0000, UInt64(state.step)))
                    let tally = try model.trainStep(batch.patches, phase: phase, noise: &noise, weightDecay: Float(config.training.weightDecay))
                    guard tally.objective.isFinite else {
                        throw PretrainError.nonFiniteLoss(step: state.step + 1, phase: name, epoch: state.epoch + 1,
                                                          value: "\(tally.objective)", checkpoint: lastGoodCheckpoint)
                    }
                    optimizer.step()
                    state.step += 1
                    state.batch += 1
                    state.epochTally.add(tally)
                    observer(.batchFinished(phase: name, epoch: state.epoch + 1, batch: state.batch, batches: stream.batchCount, loss: tally.objective))
                    let every = config.training.checkpointEvery
                    let stopping = shouldStop()
                    if stopping || (every > 0 && state.step % every == 0 && state.batch < stream.batchCount) {
                        state.epochSeconds += Date().timeIntervalSince(started)
                        started = Date()
                        try saveCheckpoint(optimizer)
                        if stopping { return .stopped(checkpoint: directory.lastCheckpoint) }
                    }
                }
                try finishEpoch(phase: phase, name: name, epochs: epochs, learningRate: Double(optimizer.learningRate), started: started)
                try saveCheckpoint(optimizer)
                epochsThisRun += 1
                let lastOfRun = phase == phases.count - 1 && state.epoch >= epochs
                if let limit = stopAfterEpochs, epochsThisRun >= limit, !lastOfRun {
                    return .stopped(checkpoint: directory.lastCheckpoint)
                }
            }
            // Phase done: keep its best weights, then move on with fresh bookkeeping.
            if config.training.restoreBest, state.best != nil {
                let (tensors, stored) = try SafeTensors.read(from: directory.bestCheckpoint)
                guard stored["adwb_phase"] == String(phase) else {
                    throw PretrainError.io("\(directory.bestCheckpoint.path) holds the best weights of phase \(stored["adwb_phase"] ?? "?"), not of phase \(phase)")
                }
                try Checkpoint.load(model.module, tensors: tensors, path: directory.bestCheckpoint.path)
            }
            state.phase += 1
            state.epoch = 0
            state.best = nil
            state.bestEpoch = 0
            state.epochsWithoutImprovement = 0
            try saveCheckpoint(nil)
        }
        try Checkpoint.save(model.module, to: directory.model, metadata: metadata.merging(["format": "pt"]) { $1 })
        state.finished = true
        try saveCheckpoint(nil)
        return .finished
    }

    /// The last checkpoint, if one has been written (it always holds finite weights: none is
    /// written after a non-finite loss).
    private var lastGoodCheckpoint: String? {
        FileManager.default.fileExists(atPath: directory.lastCheckpoint.path) ? directory.lastCheckpoint.path : nil
    }

    /// Validates, logs and updates early stopping at the end of an epoch.
    private func finishEpoch(phase: Int, name: String, epochs: Int, learningRate: Double, started: Date) throws {
        let validationTally = try validate(phase: phase)
        let trainTally = state.epochTally
        let row = TrainingLogRow(
            phase: name, epoch: state.epoch + 1, step: state.step, learningRate: learningRate,
            trainLoss: trainTally.meanObjective, trainMSE: trainTally.meanSquaredError,
            validationMSE: validationTally?.tally.meanSquaredError ?? .nan,
            validationPatchMSE: validationTally?.tally.patchMeanSquaredError ?? .nan,
            validationMeanPatchMSE: validationTally?.meanPredictorMSE ?? .nan,
            validationMeanActivation: validationTally?.tally.meanActivation ?? .nan,
            seconds: state.epochSeconds + Date().timeIntervalSince(started))
        state.log.append(row)
        if let error = validationTally?.tally.meanSquaredError {
            guard error.isFinite else {
                throw PretrainError.nonFiniteLoss(step: state.step, phase: name, epoch: state.epoch + 1, value: "\(error) (validation)",
                                                  checkpoint: lastGoodCheckpoint)
            }
            if state.best.map({ error < $0 - config.training.minDelta }) ?? true {
                state.best = error
                state.bestEpoch = state.epoch + 1
                state.epochsWithoutImprovement = 0
                try Checkpoint.save(model.module, to: directory.bestCheckpoint, metadata: ["adwb_phase": String(phase), "format": "pt"])
            } else {
                state.epochsWithoutImprovement += 1
            }
        }
        state.epoch += 1
        state.batch = 0
        state.epochTally = ReconstructionTally()
        state.epochSeconds = 0
        observer(.epochFinished(row))
        let patience = config.training.patience
        if patience > 0, state.epochsWithoutImprovement >= patience, state.epoch < epochs {
            observer(.earlyStopped(phase: name, epoch: state.epoch, bestEpoch: state.bestEpoch))
            state.epoch = epochs
        }
        try writeLog()
    }

    /// Errors on the validation patches, and the patch-mean predictor's error on them.
    private func validate(phase: Int) throws -> (tally: ReconstructionTally, meanPredictorMSE: Double)? {
        guard let validation else { return nil }
        let stream = PatchStream(sampler: validation, cache: cache, epoch: 0, batchSize: config.training.batchSize,
                                 workers: workers, queueDepth: queueDepth)
        var tally = ReconstructionTally()
        // The validation patches are the same every epoch, so their patch-mean error is too.
        let known = meanPredictorMSE
        var (baselineError, elements) = (0.0, 0.0)
        while let batch = try stream.next() {
            tally.add(try model.evaluate(batch.patches, phase: phase))
            guard known == nil else { continue }
            let volume = validation.options.patchVolume
            batch.patches.withUnsafeBufferPointer { p in
                for patch in 0..<(p.count / volume) {
                    let values = p[(patch * volume)..<((patch + 1) * volume)]
                    let mean = values.reduce(0.0) { $0 + Double($1) } / Double(volume)
                    baselineError += values.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) }
                }
                elements += Double(p.count)
            }
        }
        let baseline = known ?? baselineError / elements
        meanPredictorMSE = baseline
        return (tally, baseline)
    }

    private func saveCheckpoint(_ optimizer: (any Optimizer)?) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = TrainerState.nonFinite
        var entries = Checkpoint.stateEntries(of: model.module)
        entries += (optimizer?.stateTensors() ?? []).map { ("optimizer.\($0.0)", SafeTensors.Value.float32($0.1)) }
        var stored = metadata
        stored["format"] = "pt"
        stored["adwb_trainer_state"] = String(decoding: try encoder.encode(state), as: UTF8.self)
        stored["adwb_optimizer_step"] = String(optimizer?.stepCount ?? 0)
        try SafeTensors.write(entries, metadata: stored, to: directory.lastCheckpoint)
        observer(.checkpointWritten(directory.lastCheckpoint))
    }

    private func writeLog() throws {
        let text = ([TrainingLogRow.csvHeader] + state.log.map(\.csvLine)).joined(separator: "\n") + "\n"
        try AtomicFile.write(Data(text.utf8), to: directory.log)
    }
}
