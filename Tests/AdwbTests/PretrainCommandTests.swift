import ArgumentParser
import Autoencoders
import Cohort
import Foundation
import NeuralNet
import TensorCore
import Testing
import TestSupport
@testable import adwb

// End-to-end tests of `adwb pretrain`: options are parsed and the command run in-process (as
// `adwb` would), on a tiny synthetic cohort, and the run folder's files are checked. The few
// checks of what the command prints run the built `adwb` executable.

// MARK: - Helpers

/// Six participants with one session each, 48³ voxels of 4 mm: writes the cohort into
/// `scratch/cohort` and returns its manifest.
private func makeCohort(_ scratch: ScratchFolder) throws -> URL {
    var options = SyntheticCohortOptions()
    options.participants = 6
    options.shape = [48, 48, 48]
    options.voxelSize = 4
    options.secondSessionFraction = 0
    return try SyntheticCohort.generate(options, to: scratch.url("cohort"), generator: "PretrainCommandTests").manifestURL
}

/// `adwb pretrain ARGUMENTS`, parsed and run in-process.
private func pretrain(_ arguments: [String]) throws {
    var command = try ADWorkbench.parseAsRoot(["pretrain"] + arguments)
    try command.run()
}

/// The parsed `adwb pretrain` command (validated as the command line would be).
private func parsePretrain(_ arguments: [String]) throws -> PretrainCommand {
    try #require(try ADWorkbench.parseAsRoot(["pretrain"] + arguments) as? PretrainCommand)
}

/// The message `adwb` prints for an error (as ArgumentParser formats it for a user).
private func message(_ error: any Error) -> String { ADWorkbench.message(for: error) }

/// Tiny settings: each run takes well under a second of training.
private let saeTiny = ["--patches-per-epoch", "400", "--validation-patches", "100", "--epochs", "2", "--batch-size", "50",
                       "--hidden", "8", "--patch-size", "3x3x3"]
private let caeTiny = ["--channels", "2,3", "--patch-size", "8x8x8", "--patches-per-epoch", "32", "--batch-size", "8",
                       "--validation-patches", "16", "--epochs", "2"]

/// `provenance` of `config.json`, read independently of the library's own types.
private struct RecordedProvenance: Decodable, Equatable {
    struct Skipped: Decodable, Equatable {
        var line: Int?
        var path: String
        var reason: String
    }
    var adwbVersion: String
    var manifest: String
    var manifestSha256: String
    var scans: Int
    var skippedScans: [Skipped]
    var trainingParticipants: [String]
    var validationParticipants: [String]
}

private struct RecordedRun: Decodable {
    var provenance: RecordedProvenance
}

private var snakeCaseDecoder: JSONDecoder {
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    return decoder
}

/// The resolved configuration and provenance in `out/config.json`.
private func readRecord(_ out: URL) throws -> (config: PretrainConfig, provenance: RecordedProvenance) {
    let data = try Data(contentsOf: out.appendingPathComponent("config.json"))
    return (try JSONDecoder().decode(PretrainConfig.self, from: data), try snakeCaseDecoder.decode(RecordedRun.self, from: data).provenance)
}

/// The configuration a command line resolves to (without running anything).
private func resolved(_ arguments: [String]) throws -> PretrainConfig {
    try parsePretrain(arguments).resolvedConfig()
}

/// `resolved(arguments)`, recording an issue (instead of ending the test) if it throws.
private func resolvedOrRecord(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) -> PretrainConfig? {
    do {
        return try resolved(arguments)
    } catch {
        Issue.record("\(arguments) failed: \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

private func fileExists(_ url: URL) -> Bool { FileManager.default.fileExists(atPath: url.path) }

/// `training_log.csv` as lines of fields (header first).
private func readLog(_ out: URL) throws -> [[String]] {
    let text = try String(contentsOf: out.appendingPathComponent("training_log.csv"), encoding: .utf8)
    #expect(text.hasSuffix("\n"))
    return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
}

private let logHeader = "phase,epoch,step,learning_rate,train_loss,train_mse,val_mse,val_patch_mse,val_mean_patch_mse,val_mean_activation,seconds"

/// Checks every file of a finished run in `out`: config.json (provenance against the
/// manifest), model.safetensors (with the configuration as metadata), training_log.csv (one
/// row per epoch of each phase) and checkpoints/last.safetensors.
@discardableResult
private func checkFinishedRun(_ out: URL, manifest: URL, phases: [String], epochs: Int, batchesPerEpoch: Int,
                              fineTuneEpochs: Int = 0, skippedLines: [Int] = [], validated: Bool = true, sourceLocation: SourceLocation = #_sourceLocation)
    throws -> (config: PretrainConfig, provenance: RecordedProvenance, tensors: [String: SafeTensors.Value]) {
    for name in ["config.json", "model.safetensors", "training_log.csv", "checkpoints/last.safetensors"] {
        #expect(fileExists(out.appendingPathComponent(name)), "\(name) is missing", sourceLocation: sourceLocation)
    }
    let configText = try String(contentsOf: out.appendingPathComponent("config.json"), encoding: .utf8)
    let (config, provenance) = try readRecord(out)

    // Provenance: the version, the manifest and its bytes' SHA-256, the participant split.
    let raw = try #require(try JSONSerialization.jsonObject(with: Data(configText.utf8)) as? [String: Any], sourceLocation: sourceLocation)
    let rawProvenance = try #require(raw["provenance"] as? [String: Any], sourceLocation: sourceLocation)
    #expect(rawProvenance["manifest_sha256"] as? String == referenceSHA256(try Data(contentsOf: manifest)), sourceLocation: sourceLocation)
    #expect(rawProvenance["adwb_version"] as? String == ADWorkbenchVersion.string, sourceLocation: sourceLocation)
    #expect(!provenance.adwbVersion.isEmpty, sourceLocation: sourceLocation)
    #expect(provenance.manifest == manifest.standardizedFileURL.path, sourceLocation: sourceLocation)
    let rows = try Manifest(contentsOf: manifest).rows
    let usedRows = rows.filter { row in !skippedLines.contains(row.line ?? -1) }
    #expect(provenance.scans == usedRows.count, sourceLocation: sourceLocation)
    #expect(provenance.skippedScans.map(\.line) == skippedLines.map { Optional($0) }, sourceLocation: sourceLocation)
    let training = Set(provenance.trainingParticipants), validation = Set(provenance.validationParticipants)
    #expect(training.isDisjoint(with: validation), sourceLocation: sourceLocation)
    #expect(training.union(validation) == Set(usedRows.map(\.participantID)), sourceLocation: sourceLocation)
    #expect(provenance.trainingParticipants.count + provenance.validationParticipants.count == Set(usedRows.map(\.participantID)).count,
            sourceLocation: sourceLocation)
    #expect(!training.isEmpty && validation.isEmpty == !validated, sourceLocation: sourceLocation)

    // The model carries the run's configuration.
    let (tensors, metadata) = try SafeTensors.read(from: out.appendingPathComponent("model.safetensors"))
    #expect(metadata["adwb_config"] == configText, sourceLocation: sourceLocation)
    #expect(metadata["adwb_version"] == ADWorkbenchVersion.string, sourceLocation: sourceLocation)
    if let embedded = metadata["adwb_config"] {
        #expect(try JSONDecoder().decode(PretrainConfig.self, from: Data(embedded.utf8)) == config, sourceLocation: sourceLocation)
    }
    #expect(!tensors.isEmpty, sourceLocation: sourceLocation)

    // The log: the header, then one row per epoch with the running step count.
    let log = try readLog(out)
    #expect(log.first?.joined(separator: ",") == logHeader, sourceLocation: sourceLocation)
    let expected = phases.flatMap { phase in (1...epochs).map { (phase, $0) } } + (0..<fineTuneEpochs).map { ("fine-tune", $0 + 1) }
    #expect(log.count == 1 + expected.count, sourceLocation: sourceLocation)
    for (index, row) in log.dropFirst().enumerated() where index < expected.count {
        #expect(row.count == 11, "\(row)", sourceLocation: sourceLocation)
        guard row.count == 11 else { continue }
        #expect(row[0] == expected[index].0 && row[1] == "\(expected[index].1)", "\(row)", sourceLocation: sourceLocation)
        #expect(row[2] == "\((index + 1) * batchesPerEpoch)", "step in \(row)", sourceLocation: sourceLocation)
        // learning_rate, train_loss, train_mse; then val_mse, val_patch_mse, val_mean_patch_mse (empty without validation).
        for column in 3...5 {
            #expect(Double(row[column]).map { $0.isFinite } == true, "column \(column) of \(row)", sourceLocation: sourceLocation)
        }
        for column in 6...8 {
            if validated {
                #expect(Double(row[column]).map { $0.isFinite } == true, "column \(column) of \(row)", sourceLocation: sourceLocation)
            } else {
                #expect(row[column].isEmpty, "column \(column) of \(row)", sourceLocation: sourceLocation)
            }
        }
    }

    // The last checkpoint says the run is finished.
    let (_, checkpointMetadata) = try SafeTensors.read(from: out.appendingPathComponent("checkpoints/last.safetensors"))
    let state = try #require(checkpointMetadata["adwb_trainer_state"], sourceLocation: sourceLocation)
    let stateObject = try JSONSerialization.jsonObject(with: Data(state.utf8)) as? [String: Any]
    #expect(stateObject?["finished"] as? Bool == true, sourceLocation: sourceLocation)
    return (config, provenance, tensors)
}

private func shape(_ value: SafeTensors.Value?) -> [Int]? {
    switch value {
    case let .float32(tensor): return tensor.shape
    case let .int64(shape, _): return shape
    case nil: return nil
    }
}

/// FIPS 180-4 SHA-256, written here so the recorded hash is checked independently of the
/// library that computed it.
private func referenceSHA256(_ data: Data) -> String {
    let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
        0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
        0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
        0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
        0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
        0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]
    var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
    var message = [UInt8](data)
    let bits = UInt64(message.count) * 8
    message.append(0x80)
    while message.count % 64 != 56 { message.append(0) }
    for shift in stride(from: 56, through: 0, by: -8) { message.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
    func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
    var w = [UInt32](repeating: 0, count: 64)
    for chunk in stride(from: 0, to: message.count, by: 64) {
        for i in 0..<16 {
            let b = chunk + 4 * i
            w[i] = UInt32(message[b]) << 24 | UInt32(message[b + 1]) << 16 | UInt32(message[b + 2]) << 8 | UInt32(message[b + 3])
        }
        for i in 16..<64 {
            let s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
            let s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
            w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
        }
        var (a, b, c, d, e, f, g, hh) = (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7])
        for i in 0..<64 {
            let t1 = hh &+ (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) &+ ((e & f) ^ (~e & g)) &+ k[i] &+ w[i]
            let t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) &+ ((a & b) ^ (a & c) ^ (b & c))
            (hh, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
        }
        for (i, value) in [a, b, c, d, e, f, g, hh].enumerated() { h[i] = h[i] &+ value }
    }
    return h.map { String(format: "%08x", $0) }.joined()
}

/// Runs the built `adwb` with `arguments`.
private func runExecutable(_ arguments: [String], scratch: ScratchFolder) throws -> (status: Int32, stdout: String, stderr: String) {
    try runBuiltExecutable("adwb", arguments, scratch: scratch)
}

// MARK: - Tests

@Test func referenceSHA256MatchesPublishedVectors() {
    #expect(referenceSHA256(Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    #expect(referenceSHA256(Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    // Two blocks of padding.
    #expect(referenceSHA256(Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
}

@Test func saeRunWritesEveryFile() throws {
    let scratch = try ScratchFolder("pretrain-sae")
    defer { scratch.remove() }
    let manifest = try makeCohort(scratch)
    let out = scratch.url("run")
    try pretrain(["--model", "sae", "--manifest", manifest.path, "--out", out.path, "--seed", "5"] + saeTiny)

    let (config, provenance, tensors) = try checkFinishedRun(out, manifest: manifest, phases: ["layer1"], epochs: 2, batchesPerEpoch: 8)
    // The resolved options: the command line's, the SAE defaults otherwise.
    var expected = PretrainConfig(model: .sae)
    expected.seed = 5
    expected.patches.size = [3, 3, 3]
    expected.patches.patchesPerEpoch = 400
    expected.training.validationPatches = 100
    expected.training.epochs = 2
    expected.training.batchSize = 50
    expected.sae!.hidden = [8]
    #expect(config == expected)
    #expect(provenance.scans == 6 && provenance.skippedScans.isEmpty)
    // PyTorch names and layouts: Linear(27 → 8) and Linear(8 → 27).
    #expect(shape(tensors["encoder.0.weight"]) == [8, 27])
    #expect(shape(tensors["decoder.0.weight"]) == [27, 8])
    // A SAE logs the mean activation of its code units.
    let log = try readLog(out)
    #expect(log.dropFirst().allSatisfy { $0.count == 11 && Double($0[9]) != nil })
}

@Test func caeRunWritesEveryFile() throws {
    let scratch = try ScratchFolder("pretrain-cae")
    defer { scratch.remove() }
    let manifest = try makeCohort(scratch)
    let out = scratch.url("run")
    try pretrain(["--model", "cae", "--manifest", manifest.path, "--out", out.path] + caeTiny)

    let (config, _, tensors) = try checkFinishedRun(out, manifest: manifest, phases: ["cae"], epochs: 2, batchesPerEpoch: 4)
    var expected = PretrainConfig(model: .cae)
    expected.cae!.channels = [2, 3]
    expected.patches.size = [8, 8, 8]
    expected.patches.patchesPerEpoch = 32
    expected.training.batchSize = 8
    expected.training.validationPatches = 16
    expected.training.epochs = 2
    #expect(config == expected)
    #expect(config.sae == nil)
    // Conv3d(1 → 2, k 3) first: [out, in, k, k, k].
    #expect(shape(tensors["encoder.0.weight"]) == [2, 1, 3, 3, 3])
    // No mean activation for a CAE: the column is empty.
    let log = try readLog(out)
    #expect(log.count == 3 && log.dropFirst().allSatisfy { $0.count == 11 && $0[9].isEmpty })
}

/// With no validation participants the validation columns are NaN (empty in the log).
@Test func saeRunWithoutValidation() throws {
    let scratch = try ScratchFolder("pretrain-no-validation")
    defer { scratch.remove() }
    let manifest = try makeCohort(scratch)
    let out = scratch.url("run")
    try pretrain(["--model", "sae", "--manifest", manifest.path, "--out", out.path, "--validation-fraction", "0"] + saeTiny)
    let (_, provenance, _) = try checkFinishedRun(out, manifest: manifest, phases: ["layer1"], epochs: 2, batchesPerEpoch: 8, validated: false)
    #expect(provenance.trainingParticipants.count == 6 && provenance.validationParticipants.isEmpty)
}

@Test func presetPayan2015WithOverrides() throws {
    let scratch = try ScratchFolder("pretrain-payan")
    defer { scratch.remove() }
    let manifest = try makeCohort(scratch)
    let out = scratch.url("run")
    try pretrain(["--preset", "payan2015", "--manifest", manifest.path, "--out", out.path] + saeTiny)

    let (config, _, tensors) = try checkFinishedRun(out, manifest: manifest, phases: ["layer1"], epochs: 2, batchesPerEpoch: 8)
    // The overrides win...
    #expect(config.patches.size == [3, 3, 3] && config.patches.patchesPerEpoch == 400)
    #expect(config.sae?.hidden == [8])
    #expect(config.training.epochs == 2 && config.training.batchSize == 50 && config.training.validationPatches == 100)
    // ...and the preset's values stay otherwise.
    let preset = try PretrainConfig.preset("payan2015")
    #expect(config.model == .sae && config.preset == "payan2015")
    #expect(config.patches.normalization == .minmax)
    #expect(config.sae?.outputActivation == .sigmoid && config.sae?.activation == .sigmoid)
    #expect(config.sae?.sparsityTarget == 0.01 && config.sae?.sparsityWeight == 3)
    #expect(config.training.weightDecay == 1e-4 && config.training.learningRate == 1e-2)
    var rest = config
    rest.patches.size = preset.patches.size
    rest.patches.patchesPerEpoch = preset.patches.patchesPerEpoch
    rest.sae!.hidden = preset.sae!.hidden
    rest.training.epochs = preset.training.epochs
    rest.training.batchSize = preset.training.batchSize
    rest.training.validationPatches = preset.training.validationPatches
    #expect(rest == preset)
    #expect(shape(tensors["encoder.0.weight"]) == [8, 27])
}

@Test func presetHosseini2016WithOverrides() throws {
    let scratch = try ScratchFolder("pretrain-hosseini")
    defer { scratch.remove() }
    let manifest = try makeCohort(scratch)
    let out = scratch.url("run")
    try pretrain(["--preset", "hosseini2016", "--manifest", manifest.path, "--out", out.path, "--kernel", "1"] + caeTiny)

    let (config, _, tensors) = try checkFinishedRun(out, manifest: manifest, phases: ["cae"], epochs: 2, batchesPerEpoch: 4)
    #expect(config.model == .cae && config.preset == "hosseini2016")
    #expect(config.cae?.channels == [2, 3] && config.cae?.kernel == 1)
    #expect(config.patches.size == [8, 8, 8] && config.patches.patchesPerEpoch == 32)
    #expect(config.training.epochs == 2 && config.training.batchSize == 8 && config.training.validationPatches == 16)
    let preset = try PretrainConfig.preset("hosseini2016")
    #expect(config.cae?.activation == .relu && config.cae?.decoder == .transpose)
    #expect(config.patches.normalization == preset.patches.normalization)
    #expect(config.training.checkpointEvery == preset.training.checkpointEvery && config.training.learningRate == preset.training.learningRate)
    var rest = config
    rest.cae!.channels = preset.cae!.channels
    rest.cae!.kernel = preset.cae!.kernel
    rest.patches.size = preset.patches.size
    rest.patches.patchesPerEpoch = preset.patches.patchesPerEpoch
    rest.training.epochs = preset.training.epochs
    rest.training.batchSize = preset.training.batchSize
    rest.training.validationPatches = preset.training.validationPatches
    #expect(rest == preset)
    #expect(shape(tensors["encoder.0.weight"]) == [2, 1, 1, 1, 1])
}

@Test func yamlConfigFileIsUsedAndOptionsOverrideIt() throws {
    let scratch = try ScratchFolder("pretrain-yaml")
    defer { scratch.remove() }
    let manifest = try makeCohort(scratch)
    let yaml = scratch.url("settings.yaml")
    try """
    # A hand-written configuration.
    model: sae
    seed: 7
    patches:
      size: [3, 3, 3]
      patches_per_epoch: 400
      normalization: minmax
    sae:
      hidden: [8]
      sparsity_target: 0
      tied_weights: true
    training:
      epochs: 3
      batch_size: 50
      validation_patches: 100
      learning_rate: 5e-3
      weight_decay: 1e-5
    """.write(to: yaml, atomically: true, encoding: .utf8)
    let out = scratch.url("run")
    try pretrain(["--config", yaml.path, "--manifest", manifest.path, "--out", out.path, "--epochs", "2", "--learning-rate", "0.002"])

    let (config, _, tensors) = try checkFinishedRun(out, manifest: manifest, phases: ["layer1"], epochs: 2, batchesPerEpoch: 8)
    // The file's values...
    #expect(config.model == .sae && config.preset == nil && config.seed == 7)
    #expect(config.patches.size == [3, 3, 3] && config.patches.patchesPerEpoch == 400 && config.patches.normalization == .minmax)
    #expect(config.sae?.hidden == [8] && config.sae?.sparsityTarget == 0 && config.sae?.tiedWeights == true)
    #expect(config.training.batchSize == 50 && config.training.validationPatches == 100 && config.training.weightDecay == 1e-5)
    // ...under the command line's.
    #expect(config.training.epochs == 2 && config.training.learningRate == 0.002)
    // Everything else is the SAE default.
    #expect(config.sae?.activation == .sigmoid && config.training.optimizer == .adam && config.training.patience == 5)
    // Tied weights: no separate decoder weight.
    #expect(shape(tensors["encoder.0.weight"]) == [8, 27])
    #expect(tensors["decoder.0.weight"] == nil)
    #expect(shape(tensors["decoder.0.bias"]) == [27])
}

@Test func jsonConfigFileIsUsedAndOptionsOverrideIt() throws {
    let scratch = try ScratchFolder("pretrain-json")
    defer { scratch.remove() }
    let manifest = try makeCohort(scratch)
    let json = scratch.url("settings.json")
    try """
    {"model": "cae", "seed": 3,
     "cae": {"channels": [2, 3], "decoder": "upsample", "kernel": 3},
     "patches": {"size": [8, 8, 8], "patches_per_epoch": 32},
     "training": {"batch_size": 8, "validation_patches": 16, "epochs": 2, "optimizer": "sgd", "learning_rate": 0.01}}
    """.write(to: json, atomically: true, encoding: .utf8)
    let out = scratch.url("run")
    try pretrain(["--config", json.path, "--manifest", manifest.path, "--out", out.path, "--decoder", "transpose", "--momentum", "0.5"])

    let (config, _, _) = try checkFinishedRun(out, manifest: manifest, phases: ["cae"], epochs: 2, batchesPerEpoch: 4)
    #expect(config.model == .cae && config.seed == 3)
    #expect(config.cae?.channels == [2, 3] && config.cae?.kernel == 3)
    #expect(config.patches.size == [8, 8, 8] && config.patches.patchesPerEpoch == 32)
    #expect(config.training.optimizer == .sgd && config.training.learningRate == 0.01 && config.training.batchSize == 8)
    // Options win over the file.
    #expect(config.cae?.decoder == .transpose && config.training.momentum == 0.5)

    // A misspelt key is an error naming it.
    let misspelt = scratch.url("misspelt.json")
    try #"{"model": "sae", "training": {"learning_rat": 0.1}}"#.write(to: misspelt, atomically: true, encoding: .utf8)
    #expect { try resolved(["--config", misspelt.path, "--manifest", manifest.path, "--out", scratch.path("unused")]) } throws: { error in
        "\(error)".contains("training.learning_rat")
    }
    #expect(!fileExists(scratch.url("unused")))
}

@Test func printConfigRoundTripsThroughConfig() throws {
    let scratch = try ScratchFolder("pretrain-print")
    defer { scratch.remove() }
    let out = scratch.url("never-written")
    let arguments = ["--preset", "payan2015", "--hidden", "8,4", "--seed", "11", "--learning-rate", "0.003", "--flip-probability", "0.5",
                     "--corruption", "masking", "--corruption-level", "0.25", "--schedule", "cosine", "--tied", "--out", out.path]
    let expected = try resolved(arguments + ["--print-config"])
    #expect(expected.preset == "payan2015" && expected.sae?.hidden == [8, 4] && expected.seed == 11 && expected.sae?.tiedWeights == true)
    #expect(expected.training.learningRate == 0.003 && expected.patches.augmentation.flipProbability == 0.5)
    #expect(expected.sae?.corruption == .masking && expected.sae?.corruptionLevel == 0.25 && expected.training.schedule == .cosine)
    #expect(expected.patches.normalization == .minmax && expected.sae?.sparsityTarget == 0.01)

    // The built executable prints YAML and nothing else (no manifest needed), writing no files.
    let printed = try runExecutable(["pretrain", "--print-config"] + arguments, scratch: scratch)
    #expect(printed.status == 0, "\(printed.stderr)")
    #expect(printed.stdout.contains("payan2015") && printed.stdout.contains("learning_rate"))
    #expect(!fileExists(out))
    let yaml = scratch.url("printed.yaml")
    try printed.stdout.write(to: yaml, atomically: true, encoding: .utf8)

    // Given back with --config, it resolves to the same configuration, and prints the same.
    let again = resolvedOrRecord(["--config", yaml.path, "--print-config", "--out", out.path])
    #expect(again == expected)
    let reprinted = try runExecutable(["pretrain", "--config", yaml.path, "--print-config", "--out", out.path], scratch: scratch)
    #expect(reprinted.status == 0 && reprinted.stdout == printed.stdout, "\(reprinted.stderr)")
    // The CAE defaults, the same way.
    let cae = try runExecutable(["pretrain", "--model", "cae", "--print-config", "--out", out.path], scratch: scratch)
    #expect(cae.status == 0 && cae.stdout.contains("channels"), "\(cae.stderr)")
    let caeYAML = scratch.url("cae.yaml")
    try cae.stdout.write(to: caeYAML, atomically: true, encoding: .utf8)
    #expect(resolvedOrRecord(["--config", caeYAML.path, "--print-config", "--out", out.path]) == PretrainConfig(model: .cae))
    #expect(!fileExists(out))
}

/// A configuration printed and read back keeps every value exactly, and reads as a person
/// would write it (whole numbers as whole numbers, switches as true/false).
@Test func printConfigKeepsValuesExact() throws {
    let scratch = try ScratchFolder("pretrain-print-exact")
    defer { scratch.remove() }
    let out = scratch.url("never-written")
    for seed in ["123456789", "18446744073709551615"] {
        let arguments = ["--model", "sae", "--seed", seed, "--learning-rate", "0.0012345678", "--patches-per-epoch", "123456789",
                         "--print-config", "--out", out.path]
        let expected = try resolved(arguments)
        #expect(expected.seed == UInt64(seed)!)
        let printed = try runExecutable(["pretrain"] + arguments, scratch: scratch)
        #expect(printed.status == 0, "\(printed.stderr)")
        let lines = Set(printed.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) })
        for line in ["seed: \(seed)", "patches_per_epoch: 123456789", "batch_size: 256", "tied_weights: false", "restore_best: true"] {
            #expect(lines.contains(line), "printed YAML lacks `\(line)`:\n\(printed.stdout)")
        }
        let yaml = scratch.url("printed-\(seed).yaml")
        try printed.stdout.write(to: yaml, atomically: true, encoding: .utf8)
        let again = resolvedOrRecord(["--config", yaml.path, "--print-config", "--out", out.path])
        #expect(again?.seed == expected.seed)
        #expect(again?.training.learningRate == 0.0012345678)
        #expect(again?.patches.patchesPerEpoch == 123456789)
    }
}

/// A run's config.json is a valid --config whatever the seed (it is a UInt64).
@Test func largeSeedsSurviveConfigFiles() throws {
    let scratch = try ScratchFolder("pretrain-large-seed")
    defer { scratch.remove() }
    let manifest = try makeCohort(scratch)
    let first = scratch.url("first")
    for seed in [UInt64(1) << 62, UInt64.max] {
        try? FileManager.default.removeItem(at: first)
        try pretrain(["--model", "sae", "--manifest", manifest.path, "--out", first.path, "--seed", "\(seed)"] + saeTiny)
        let recorded = try readRecord(first).config
        #expect(recorded.seed == seed)
        let again = resolvedOrRecord(["--config", first.appendingPathComponent("config.json").path, "--manifest", manifest.path,
                                      "--out", scratch.path("unused")])
        #expect(again == recorded, "seed \(seed)")
    }
}

@Test func aRunsOwnConfigReproducesIt() throws {
    let scratch = try ScratchFolder("pretrain-reproduce")
    defer { scratch.remove() }
    let manifest = try makeCohort(scratch)
    let first = scratch.url("first"), second = scratch.url("second")
    // Noise (masking corruption) and augmentation make every random stream matter.
    try pretrain(["--model", "sae", "--manifest", manifest.path, "--out", first.path, "--seed", "9", "--corruption", "masking",
                  "--flip-probability", "0.5", "--max-shift", "1", "--hidden", "8,4"] + saeTiny.filter { $0 != "--hidden" && $0 != "8" })
    try checkFinishedRun(first, manifest: manifest, phases: ["layer1", "layer2"], epochs: 2, batchesPerEpoch: 8)
    try pretrain(["--config", first.appendingPathComponent("config.json").path, "--manifest", manifest.path, "--out", second.path])

    #expect(try readRecord(second).config == readRecord(first).config)
    #expect(try Data(contentsOf: second.appendingPathComponent("config.json")) == Data(contentsOf: first.appendingPathComponent("config.json")))
    let model = try Data(contentsOf: first.appendingPathComponent("model.safetensors"))
    #expect(try Data(contentsOf: second.appendingPathComponent("model.safetensors")) == model)
    // The same losses epoch by epoch (all but the seconds column).
    #expect(try readLog(second).map { $0.dropLast() } == readLog(first).map { $0.dropLast() })

    // A different seed does change the weights (so the comparison above means something).
    let third = scratch.url("third")
    try pretrain(["--config", first.appendingPathComponent("config.json").path, "--manifest", manifest.path, "--out", third.path,
                  "--seed", "10"])
    #expect(try Data(contentsOf: third.appendingPathComponent("model.safetensors")) != model)
}

@Test func resumeEndsWithTheWeightsOfAnUninterruptedRun() throws {
    let scratch = try ScratchFolder("pretrain-resume")
    defer { scratch.remove() }
    let manifest = try makeCohort(scratch)
    let interrupted = scratch.url("interrupted"), straight = scratch.url("straight")
    let options = ["--model", "sae", "--manifest", manifest.path, "--seed", "4", "--corruption", "gaussian", "--corruption-level", "0.1",
                   "--checkpoint-every", "3"] + saeTiny

    try pretrain(options + ["--out", interrupted.path, "--stop-after-epochs", "1"])
    // Stopped after one epoch: checkpointed, logged, no model yet.
    #expect(fileExists(interrupted.appendingPathComponent("checkpoints/last.safetensors")))
    #expect(!fileExists(interrupted.appendingPathComponent("model.safetensors")))
    #expect(try readLog(interrupted).count == 2)
    let configBefore = try Data(contentsOf: interrupted.appendingPathComponent("config.json"))
    let checkpointBefore = try Data(contentsOf: interrupted.appendingPathComponent("checkpoints/last.safetensors"))

    // Starting a new run into the folder is refused, pointing at --resume.
    #expect { try pretrain(options + ["--out", interrupted.path]) } throws: { error in
        "\(error)".contains("--resume") && "\(error)".contains("already holds")
    }
    // --resume cannot change hyper-parameters, nor take --model, --preset or --config.
    #expect { try pretrain(["--resume", "--out", interrupted.path, "--epochs", "3"]) } throws: { error in
        error is ValidationError && message(error).contains("hyper-parameter")
    }
    #expect { try pretrain(["--resume", "--out", interrupted.path, "--learning-rate", "0.1"]) } throws: { error in error is ValidationError }
    #expect { try pretrain(["--resume", "--out", interrupted.path, "--model", "sae"]) } throws: { error in
        message(error).contains("--resume")
    }
    // None of that touched the run.
    #expect(try Data(contentsOf: interrupted.appendingPathComponent("config.json")) == configBefore)
    #expect(try Data(contentsOf: interrupted.appendingPathComponent("checkpoints/last.safetensors")) == checkpointBefore)

    try pretrain(["--resume", "--out", interrupted.path])
    try pretrain(options + ["--out", straight.path])

    try checkFinishedRun(interrupted, manifest: manifest, phases: ["layer1"], epochs: 2, batchesPerEpoch: 8)
    try checkFinishedRun(straight, manifest: manifest, phases: ["layer1"], epochs: 2, batchesPerEpoch: 8)
    #expect(try Data(contentsOf: interrupted.appendingPathComponent("model.safetensors"))
            == Data(contentsOf: straight.appendingPathComponent("model.safetensors")))
    #expect(try readLog(interrupted).map { $0.dropLast() } == readLog(straight).map { $0.dropLast() })
    // A finished run resumes to nothing more: the model stays as it is.
    let finished = try Data(contentsOf: interrupted.appendingPathComponent("model.safetensors"))
    try pretrain(["--resume", "--out", interrupted.path])
    #expect(try Data(contentsOf: interrupted.appendingPathComponent("model.safetensors")) == finished)
    #expect(try readLog(interrupted).count == 3)
}

@Test func resumeAcrossPhasesMatchesAnUninterruptedRun() throws {
    let scratch = try ScratchFolder("pretrain-resume-phases")
    defer { scratch.remove() }
    let manifest = try makeCohort(scratch)
    let interrupted = scratch.url("interrupted"), straight = scratch.url("straight")
    // Two greedy layers and fine-tuning; stop after every epoch, resuming each time (the
    // manifest given again at its own path).
    let options = ["--model", "sae", "--manifest", manifest.path, "--seed", "2", "--hidden", "8,4", "--fine-tune-epochs", "1"]
        + saeTiny.filter { $0 != "--hidden" && $0 != "8" }
    try pretrain(options + ["--out", interrupted.path, "--stop-after-epochs", "1"])
    var resumes = 0
    while !fileExists(interrupted.appendingPathComponent("model.safetensors")) && resumes < 10 {
        try pretrain(["--resume", "--out", interrupted.path, "--manifest", manifest.path, "--stop-after-epochs", "1"])
        resumes += 1
    }
    #expect(resumes == 4)
    try pretrain(options + ["--out", straight.path])
    try checkFinishedRun(interrupted, manifest: manifest, phases: ["layer1", "layer2"], epochs: 2, batchesPerEpoch: 8, fineTuneEpochs: 1)
    try checkFinishedRun(straight, manifest: manifest, phases: ["layer1", "layer2"], epochs: 2, batchesPerEpoch: 8, fineTuneEpochs: 1)
    let log = try readLog(interrupted)
    #expect(log.map(\.first) == ["phase", "layer1", "layer1", "layer2", "layer2", "fine-tune"])
    #expect(try Data(contentsOf: interrupted.appendingPathComponent("model.safetensors"))
            == Data(contentsOf: straight.appendingPathComponent("model.safetensors")))
}

/// --resume --manifest: the cohort (manifest and scans) moved since the run started.
@Test func resumeFindsAMovedManifest() throws {
    let scratch = try ScratchFolder("pretrain-resume-moved")
    defer { scratch.remove() }
    let manifest = try makeCohort(scratch)
    let interrupted = scratch.url("interrupted"), straight = scratch.url("straight")
    let options = ["--model", "sae", "--manifest", manifest.path, "--seed", "6"] + saeTiny
    try pretrain(options + ["--out", straight.path])
    try pretrain(options + ["--out", interrupted.path, "--stop-after-epochs", "1"])

    let moved = scratch.url("moved")
    try FileManager.default.moveItem(at: scratch.url("cohort"), to: moved)
    // Without --manifest the recorded path is gone: the error names it.
    #expect { try pretrain(["--resume", "--out", interrupted.path]) } throws: { error in "\(error)".contains(manifest.path) }
    try pretrain(["--resume", "--out", interrupted.path, "--manifest", moved.appendingPathComponent("manifest.tsv").path])
    #expect(try Data(contentsOf: interrupted.appendingPathComponent("model.safetensors"))
            == Data(contentsOf: straight.appendingPathComponent("model.safetensors")))
    #expect(try readLog(interrupted).map { $0.dropLast() } == readLog(straight).map { $0.dropLast() })
}

@Test func resumeWithoutARunFailsClearly() throws {
    let scratch = try ScratchFolder("pretrain-resume-empty")
    defer { scratch.remove() }
    let empty = scratch.url("empty")
    try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
    #expect { try pretrain(["--resume", "--out", empty.path]) } throws: { error in
        "\(error)".contains(empty.path) && "\(error)".contains("no pretraining run to resume")
    }
    // A missing folder too, and nothing is created.
    let missing = scratch.url("missing")
    #expect { try pretrain(["--resume", "--out", missing.path]) } throws: { error in "\(error)".contains("no pretraining run") }
    #expect(!fileExists(missing))
}

@Test func resumeRefusesAChangedManifest() throws {
    let scratch = try ScratchFolder("pretrain-resume-manifest")
    defer { scratch.remove() }
    let manifest = try makeCohort(scratch)
    let out = scratch.url("run")
    try pretrain(["--model", "sae", "--manifest", manifest.path, "--out", out.path, "--stop-after-epochs", "1"] + saeTiny)
    // The manifest gains a trailing blank line: its SHA-256 no longer matches.
    try (String(contentsOf: manifest, encoding: .utf8) + "\n").write(to: manifest, atomically: true, encoding: .utf8)
    #expect { try pretrain(["--resume", "--out", out.path]) } throws: { error in "\(error)".contains("has changed since the run started") }
    #expect(!fileExists(out.appendingPathComponent("model.safetensors")))
}

@Test func missingScanStopsBeforeTrainingNamingItsLine() throws {
    let scratch = try ScratchFolder("pretrain-bad")
    defer { scratch.remove() }
    let manifest = try makeCohort(scratch)
    let rows = try Manifest(contentsOf: manifest).rows
    let victim = rows[2]
    #expect(victim.line == 4)
    try FileManager.default.removeItem(at: manifest.deletingLastPathComponent().appendingPathComponent(victim.path))

    let out = scratch.url("run")
    let arguments = ["--model", "sae", "--manifest", manifest.path] + saeTiny
    #expect { try pretrain(arguments + ["--out", out.path]) } throws: { error in
        let text = "\(error)"
        return text.contains("manifest line 4") && text.contains(victim.path) && text.contains("--skip-bad")
    }
    // Nothing trained, and no run recorded (so the same --out can be used once the file is back).
    #expect(!fileExists(out.appendingPathComponent("model.safetensors")))
    #expect(!fileExists(out.appendingPathComponent("config.json")))
    #expect(!fileExists(out.appendingPathComponent("checkpoints/last.safetensors")))

    // --skip-bad: the run completes without it and lists it, with its line.
    let result = try runExecutable(["pretrain"] + arguments + ["--out", out.path, "--skip-bad"], scratch: scratch)
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stdout.contains("skipped 1 scan(s):"))
    #expect(result.stdout.contains("manifest line 4") && result.stdout.contains(victim.path))
    let (_, provenance, _) = try checkFinishedRun(out, manifest: manifest, phases: ["layer1"], epochs: 2, batchesPerEpoch: 8,
                                                  skippedLines: [4])
    #expect(provenance.scans == 5)
    #expect(provenance.skippedScans.count == 1)
    #expect(provenance.skippedScans.first?.path.hasSuffix(victim.path) == true)
    #expect(provenance.skippedScans.first?.reason.isEmpty == false)
    #expect(!(provenance.trainingParticipants + provenance.validationParticipants).contains(victim.participantID))

    // In-process too: the same skipped scan is recorded.
    let again = scratch.url("again")
    try pretrain(arguments + ["--out", again.path, "--skip-bad"])
    #expect(try readRecord(again).provenance == provenance)

    // The skipped scan stays skipped when the run is resumed, and the result is the same.
    let partial = scratch.url("partial")
    try pretrain(arguments + ["--out", partial.path, "--skip-bad", "--stop-after-epochs", "1"])
    try pretrain(["--resume", "--out", partial.path])
    #expect(try Data(contentsOf: partial.appendingPathComponent("model.safetensors"))
            == Data(contentsOf: again.appendingPathComponent("model.safetensors")))
}

@Test func badOptionsAreRejectedBeforeAnythingIsWritten() throws {
    let scratch = try ScratchFolder("pretrain-options")
    defer { scratch.remove() }
    let out = scratch.url("run")
    let manifest = scratch.path("no-such-manifest.tsv")
    let base = ["--manifest", manifest, "--out", out.path]

    /// Runs the command line and returns the message it fails with ("" if it succeeds).
    func failure(_ arguments: [String]) -> String {
        do {
            try pretrain(arguments)
            return ""
        } catch {
            return message(error)
        }
    }

    // A patch size needs one or three extents.
    for size in ["3x3", "3,3", "3x3x3x3"] {
        let text = failure(["--model", "sae"] + base + ["--patch-size", size])
        #expect(text.contains("--patch-size") && text.contains("DxHxW"), "\(size): \(text)")
    }
    #expect(failure(["--model", "sae"] + base + ["--patch-size", "3xa"]).contains("not a whole number"))
    #expect(try resolved(["--model", "sae"] + base + ["--patch-size", "4"]).patches.size == [4, 4, 4])
    #expect(try resolved(["--model", "sae"] + base + ["--patch-size", "1x5x5"]).patches.size == [1, 5, 5])

    // CAE options with a SAE model, and SAE-only options with a CAE model.
    for cae in [["--channels", "2,3"], ["--kernel", "5"], ["--decoder", "upsample"]] {
        #expect(failure(["--model", "sae"] + base + cae).contains("CAE options were given for a sae model"), "\(cae)")
        #expect(failure(["--preset", "payan2015"] + base + cae).contains("CAE options"), "\(cae)")
    }
    for sae in [["--hidden", "8"], ["--tied"], ["--sparsity-target", "0.1"], ["--sparsity-weight", "1"], ["--output-activation", "sigmoid"],
                ["--fine-tune-epochs", "1"]] {
        #expect(failure(["--model", "cae"] + base + sae).contains("SAE options were given for a cae model"), "\(sae)")
        #expect(failure(["--preset", "hosseini2016"] + base + sae).contains("SAE options"), "\(sae)")
    }
    // Activation and corruption are shared: a CAE takes them.
    let shared = try resolved(["--model", "cae"] + base + ["--activation", "tanh", "--corruption", "gaussian", "--corruption-level", "0.2"])
    #expect(shared.cae?.activation == .tanh && shared.cae?.corruption == .gaussian && shared.cae?.corruptionLevel == 0.2)

    // Presets: unknown names are listed against the known ones; a preset fixes the model.
    let unknown = failure(base + ["--preset", "lecun1998"])
    #expect(unknown.contains("unknown preset 'lecun1998'") && unknown.contains("payan2015") && unknown.contains("hosseini2016"))
    #expect(failure(base + ["--preset", "payan2015", "--model", "cae"]).contains("not cae"))

    // --manifest and a model are required; an unknown model is refused by the parser.
    #expect(failure(["--model", "sae", "--out", out.path]).contains("--manifest is required"))
    #expect(failure(base).contains("choose a model"))
    #expect(!failure(["--model", "vae"] + base).isEmpty)
    // Other bad values.
    #expect(failure(["--model", "sae"] + base + ["--stop-after-epochs", "0"]).contains("--stop-after-epochs"))
    #expect(failure(["--model", "sae"] + base + ["--workers", "0"]).contains("--workers"))
    #expect(failure(["--model", "sae"] + base + ["--epochs", "0"]).contains("epochs"))
    #expect(failure(["--model", "cae"] + base + ["--patch-size", "6"]).contains("divisible"))
    #expect(failure(["--model", "sae"] + base + ["--sparsity-target", "0.1", "--activation", "relu"]).contains("sigmoid"))
    // A missing manifest names the file.
    #expect(failure(["--model", "sae"] + base).contains("no-such-manifest.tsv"))

    #expect(!fileExists(out))
}

@Test func overwriteReplacesOnlyTheRunsOwnFiles() throws {
    let scratch = try ScratchFolder("pretrain-overwrite")
    defer { scratch.remove() }
    let manifest = try makeCohort(scratch)
    let out = scratch.url("run")
    try pretrain(["--model", "sae", "--manifest", manifest.path, "--out", out.path, "--seed", "1"] + saeTiny)
    let notes = out.appendingPathComponent("notes.txt")
    try Data("mine".utf8).write(to: notes)
    #expect(throws: (any Error).self) { try pretrain(["--model", "sae", "--manifest", manifest.path, "--out", out.path] + saeTiny) }
    try pretrain(["--model", "sae", "--manifest", manifest.path, "--out", out.path, "--seed", "2", "--overwrite"] + saeTiny)
    #expect(try readRecord(out).config.seed == 2)
    #expect(try readLog(out).count == 3)
    #expect(try String(contentsOf: notes, encoding: .utf8) == "mine")
    #expect(throws: (any Error).self) { try parsePretrain(["--resume", "--overwrite", "--out", out.path]) }
}
