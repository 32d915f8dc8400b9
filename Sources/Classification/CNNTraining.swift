import Foundation
import Learn
import NeuralNet
import TensorCore

/// One epoch of head training, as `training_log.tsv` and `metrics.json` record it.
public struct EpochRecord: Codable, Equatable, Sendable {
    public var epoch: Int
    /// Mean training loss over the epoch's batches (weighted as trained).
    public var trainLoss: Double
    /// Unweighted cross-entropy on the early-stopping participants.
    public var stoppingLoss: Double
    public var stoppingBalancedAccuracy: Double
    public var seconds: Double

    enum CodingKeys: String, CodingKey {
        case epoch, seconds
        case trainLoss = "train_loss", stoppingLoss = "stopping_loss", stoppingBalancedAccuracy = "stopping_balanced_accuracy"
    }
}

/// A trained head: the network at its best early-stopping epoch.
final class TrainedHead {
    let network: HeadNetwork
    let classes: Int
    let history: [EpochRecord]
    let bestEpoch: Int
    let stoppingParticipants: Int

    init(network: HeadNetwork, classes: Int, history: [EpochRecord], bestEpoch: Int, stoppingParticipants: Int) {
        (self.network, self.classes, self.history, self.bestEpoch, self.stoppingParticipants) = (network, classes, history, bestEpoch, stoppingParticipants)
    }

    /// Softmax probabilities `[n, k]` of every input, in inference mode, `batchSize` at a time.
    func probabilities(_ inputs: some HeadInputs, batchSize: Int) throws(ClassificationError) -> Tensor {
        var scalars: [Float] = []
        var none: Augmenter?
        for start in stride(from: 0, to: inputs.count, by: batchSize) {
            let x = try inputs.batch(Array(start..<min(inputs.count, start + batchSize)), augmentation: &none)
            do {
                scalars += try Softmax.probabilities(try network.forward(x, mode: .inference)).scalars
            } catch { throw .io("\(error)") }
        }
        do { return try Tensor(shape: [inputs.count, classes], scalars: scalars) } catch { throw .io("\(error)") }
    }
}

/// Training a head with minibatch Adam, class balancing, augmentation and early stopping on
/// held-out training participants; the best epoch's weights are kept (and checkpointed).
enum HeadTrainer {
    /// - Parameters:
    ///   - inputs: every training sample; `labels` and `groups` (participant ids) per sample.
    ///   - checkpoint: where the best weights are written (atomically) whenever they improve.
    ///   - progress: (epoch, epochs, batch, batches) after every batch.
    ///   - shouldStop: polled between batches; true ends training with `.interrupted`.
    static func train(_ network: HeadNetwork, inputs: some HeadInputs, labels: [Int], groups: [String], classes: Int,
                      settings: CNNSettings, augment: Bool, seed: UInt64, checkpoint: URL?,
                      progress: (Int, Int, Int, Int) -> Void, shouldStop: () -> Bool) throws(ClassificationError) -> TrainedHead {
        let split = try holdOut(groups: groups, labels: labels, classes: classes, fraction: settings.stoppingFraction,
                                seed: SplitMix64.derive(seed, 1))
        let fitLabels = split.train.map { labels[$0] }
        // Two parameter groups: the encoder's layers at a fraction of the head's rate.
        let trainable = network.trainableParameters
        let encoderParameters = trainable.filter { $0.name.hasPrefix("encoder.") }
        let headParameters = trainable.filter { !$0.name.hasPrefix("encoder.") }
        let optimizers: [Adam]
        do {
            // A random encoder has nothing to preserve: it trains at the head's rate.
            let encoderScale = settings.initialisation == "random" ? 1 : settings.encoderLearningRateScale
            optimizers = try [(headParameters, settings.learningRate), (encoderParameters, settings.learningRate * encoderScale)]
                .filter { !$0.0.isEmpty }
                .map { try Adam(parameters: $0.0, learningRate: Float($0.1), weightDecay: Float(settings.weightDecay)) }
        } catch { throw .invalidOption("\(error)") }
        let counts = (0..<classes).map { c in fitLabels.filter { $0 == c }.count }
        let classWeights: [Float]? = settings.balance == "class-weights"
            ? counts.map { Float(Double(fitLabels.count) / Double(classes * max(1, $0))) } : nil
        var generator = Xoshiro256StarStar(seed: SplitMix64.derive(seed, 2))
        var augmenter: Augmenter? = augment
            ? Augmenter(flipProbability: settings.flipProbability, maxShift: settings.maxShift, intensityScale: settings.intensityScale,
                        generator: Xoshiro256StarStar(seed: SplitMix64.derive(seed, 3)))
            : nil
        var history: [EpochRecord] = []
        var best: (loss: Double, epoch: Int, weights: [Tensor])?
        let parameters = network.parameters()
        for epoch in 1...settings.epochs {
            let started = Date()
            var order = epochOrder(split.train, labels: labels, classes: classes, oversample: settings.balance == "oversample", using: &generator)
            order.seededShuffle(using: &generator)
            let batches = (order.count + settings.batchSize - 1) / settings.batchSize
            var lossSum = 0.0
            for b in 0..<batches {
                if shouldStop() { throw .interrupted }
                let indices = Array(order[(b * settings.batchSize)..<min(order.count, (b + 1) * settings.batchSize)])
                let x = try inputs.batch(indices, augmentation: &augmenter)
                do {
                    network.zeroGradients()
                    let loss = try Loss.softmaxCrossEntropy(logits: try network.forward(x, mode: .training), labels: indices.map { labels[$0] },
                                                            classWeights: classWeights)
                    guard loss.value.isFinite else { throw ClassificationError.diverged(epoch: epoch, loss: Double(loss.value)) }
                    try network.accumulateParameterGradients(loss.gradient)
                    for optimizer in optimizers { optimizer.step() }
                    lossSum += Double(loss.value)
                } catch let error as ClassificationError {
                    throw error
                } catch {
                    throw .io("training step: \(error)")
                }
                progress(epoch, settings.epochs, b + 1, batches)
            }
            let (stoppingLoss, balanced) = try evaluate(network, inputs: inputs, rows: split.test, labels: labels, classes: classes,
                                                        batchSize: settings.batchSize)
            guard stoppingLoss.isFinite else { throw .diverged(epoch: epoch, loss: stoppingLoss) }
            history.append(EpochRecord(epoch: epoch, trainLoss: lossSum / Double(max(1, batches)), stoppingLoss: stoppingLoss,
                                       stoppingBalancedAccuracy: balanced, seconds: Date().timeIntervalSince(started)))
            if let current = best, stoppingLoss >= current.loss {
                if epoch - current.epoch >= settings.patience { break }
                continue
            }
            best = (stoppingLoss, epoch, parameters.map(\.value))
            if let checkpoint {
                do {
                    try Checkpoint.save(network, to: checkpoint, metadata: ["epoch": "\(epoch)", "stopping_loss": "\(stoppingLoss)"])
                } catch { throw .io("\(checkpoint.path): \(error)") }
            }
        }
        guard let best else { throw .invalidOption("no epoch ran") }
        for (parameter, value) in zip(parameters, best.weights) { parameter.value = value }
        let stoppingParticipants = Set(split.test.map { groups[$0] }).count
        return TrainedHead(network: network, classes: classes, history: history, bestEpoch: best.epoch, stoppingParticipants: stoppingParticipants)
    }

    /// The early-stopping participants: in every class, `fraction` of its participants
    /// (rounded, at least one), drawn with `seed`; all their scans leave training.
    /// - Throws: `.invalidOption` when a class has fewer than two participants (it could not
    ///   be both trained on and held out).
    static func holdOut(groups: [String], labels: [Int], classes: Int, fraction: Double,
                        seed: UInt64) throws(ClassificationError) -> (train: [Int], test: [Int]) {
        var firstLabel: [String: Int] = [:]
        var order: [String] = []
        for (g, label) in zip(groups, labels) where firstLabel[g] == nil {
            firstLabel[g] = label
            order.append(g)
        }
        var generator = Xoshiro256StarStar(seed: seed)
        var held = Set<String>()
        for c in 0..<classes {
            var members = order.filter { firstLabel[$0] == c }
            guard members.count >= 2 else {
                throw .invalidOption("class \(c) has \(members.count) training participant(s): early stopping needs at least two per class (one held out, one trained on)")
            }
            members.seededShuffle(using: &generator)
            let count = min(members.count - 1, max(1, Int((fraction * Double(members.count)).rounded())))
            held.formUnion(members.prefix(count))
        }
        let test = groups.indices.filter { held.contains(groups[$0]) }
        let train = groups.indices.filter { !held.contains(groups[$0]) }
        return (train, test)
    }

    /// The epoch's sample order before shuffling: every row once, and with `oversample` the
    /// rows of smaller classes drawn again (with replacement) until each class has as many
    /// as the largest. Nothing is dropped.
    static func epochOrder(_ rows: [Int], labels: [Int], classes: Int, oversample: Bool, using generator: inout Xoshiro256StarStar) -> [Int] {
        guard oversample else { return rows }
        let byClass = (0..<classes).map { c in rows.filter { labels[$0] == c } }
        let largest = byClass.map(\.count).max() ?? 0
        var order = rows
        for members in byClass where !members.isEmpty {
            for _ in members.count..<largest { order.append(members[generator.nextIndex(below: members.count)]) }
        }
        return order
    }

    /// Mean unweighted cross-entropy and balanced accuracy on `rows`.
    static func evaluate(_ network: HeadNetwork, inputs: some HeadInputs, rows: [Int], labels: [Int], classes: Int,
                         batchSize: Int) throws(ClassificationError) -> (loss: Double, balancedAccuracy: Double) {
        var none: Augmenter?
        var total = 0.0
        var predicted: [Int] = []
        for start in stride(from: 0, to: rows.count, by: batchSize) {
            let indices = Array(rows[start..<min(rows.count, start + batchSize)])
            let x = try inputs.batch(indices, augmentation: &none)
            do {
                let logits = try network.forward(x, mode: .inference)
                let loss = try Loss.softmaxCrossEntropy(logits: logits, labels: indices.map { labels[$0] })
                total += Double(loss.value) * Double(indices.count)
                for i in 0..<indices.count {
                    let row = logits.scalars[(i * classes)..<((i + 1) * classes)]
                    predicted.append(row.indices.max { row[$0] < row[$1] }.map { $0 - i * classes } ?? 0)
                }
            } catch { throw .io("evaluation: \(error)") }
        }
        let metrics = ClassificationMetrics(truth: rows.map { labels[$0] }, predicted: predicted, probabilities: nil, classes: Array(0..<classes))
        return (total / Double(max(1, rows.count)), metrics.balancedAccuracy)
    }
}
