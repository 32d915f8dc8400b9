import Autoencoders
@testable import Classification
import Cohort
import Foundation
import NeuralNet
import TensorCore
import Testing
import TestSupport

/// The cnn back end on whole volumes (`--model` + `--manifest`): the pretrained CAE encoder
/// with a new dense head, fine-tuned (or partly frozen) on the split's training scans.
@Suite struct CNNVolumeTests {
    static func request(out: URL) -> ClassifyRequest {
        var request = ClassifyRequest(backend: .cnn, task: .adVsCN, split: VolumeCohort.split, out: out)
        request.manifest = VolumeCohort.manifest
        request.model = VolumeCohort.caeRun
        request.seed = 1
        request.cnn.epochs = 2
        request.cnn.grid = [2, 2, 2]
        request.cnn.hidden = [8]
        request.cnn.batchSize = 4
        request.cnn.patience = 2
        return request
    }

    /// The float tensors of a safetensors file by name.
    static func tensors(_ url: URL) throws -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for (name, value) in try SafeTensors.read(from: url).tensors {
            if case let .float32(tensor) = value { result[name] = tensor }
        }
        return result
    }

    /// Encoder tensors of the CNN checkpoint in `out` that differ from the pretrained model's
    /// (every one of them must exist there with the same shape).
    static func changedEncoderTensors(_ out: URL) throws -> [String] {
        let checkpoint = try tensors(out.appendingPathComponent("cnn_best.safetensors"))
        let pretrained = try tensors(RunDirectory(VolumeCohort.caeRun).model)
        var changed: [String] = []
        for (name, tensor) in checkpoint where name.hasPrefix("encoder.") {
            guard let original = pretrained[name], original.shape == tensor.shape else {
                Issue.record("\(name) \(tensor.shape) has no counterpart in the pretrained model")
                continue
            }
            if original.scalars != tensor.scalars { changed.append(name) }
        }
        return changed.sorted()
    }

    @Test func fineTuningOnWholeVolumesRunsEndToEnd() throws {
        let scratch = try ScratchFolder("classify-cnn-volumes")
        defer { scratch.remove() }
        let out = scratch.url("out")
        let (report, files) = try ClassifyJob.run(Self.request(out: out))
        #expect(files.map({ $0.lastPathComponent }) == [ClassifyJob.predictionsFile, ClassifyJob.metricsFile, "cnn_best.safetensors", "training_log.tsv"])
        try checkOutputs(out, expected: expectedLines(try SplitFolder(VolumeCohort.split), task: .adVsCN), task: .adVsCN)
        let cnn = try #require(report.cnn)
        #expect(cnn.input == "volumes" && cnn.initialisation == "pretrained" && cnn.frozenEncoderLayers == 0)
        #expect(cnn.encoder?.isEmpty == false)
        #expect(cnn.history.count == 2 && (1...2).contains(cnn.bestEpoch))
        #expect(cnn.stoppingParticipants >= 2)
        let written = try Fixture.report(out)
        #expect(written.cnn == cnn)

        let names = try Self.tensors(out.appendingPathComponent("cnn_best.safetensors")).keys.sorted()
        #expect(names.contains("encoder.0.weight") && names.contains("encoder.3.weight"), "\(names)")
        #expect(names.contains { $0.hasPrefix("head.") } && names.allSatisfy { $0.hasPrefix("encoder.") || $0.hasPrefix("head.") }, "\(names)")
        // The input standardisation of the pooled map is saved with the head: 8 channels × 2³ cells.
        let state = try Self.tensors(out.appendingPathComponent("cnn_best.safetensors"))
        let standardisation = state.filter { $0.key.hasPrefix("head.") && $0.key.hasSuffix(".mean") }
        #expect(standardisation.count == 1 && standardisation.first?.value.shape == [64], "\(standardisation.keys)")
        // Fine-tuning everything changes the encoder.
        let changed = try Self.changedEncoderTensors(out)
        #expect(changed.contains("encoder.0.weight") && changed.contains("encoder.3.weight"), "changed: \(changed)")
    }

    @Test func freezingKeepsTheChosenEncoderLayersAsPretrained() throws {
        let scratch = try ScratchFolder("classify-cnn-freeze")
        defer { scratch.remove() }
        var parameters: [String: Int] = [:]
        for (freeze, expectedFrozen, unchanged) in [("all", 2, ["encoder.0.bias", "encoder.0.weight", "encoder.3.bias", "encoder.3.weight"]),
                                                     ("1", 1, ["encoder.0.bias", "encoder.0.weight"])] {
            var request = Self.request(out: scratch.url("out-\(freeze)"))
            request.cnn.freeze = freeze
            let cnn = try #require(try ClassifyJob.run(request).report.cnn)
            parameters[freeze] = cnn.trainableParameters
            #expect(cnn.frozenEncoderLayers == expectedFrozen, "freeze \(freeze): \(String(describing: cnn.frozenEncoderLayers)) layers frozen")
            let changed = try Self.changedEncoderTensors(request.out)
            let all = ["encoder.0.bias", "encoder.0.weight", "encoder.3.bias", "encoder.3.weight"]
            #expect(changed == all.filter { !unchanged.contains($0) }, "freeze \(freeze): changed \(changed)")
        }
        // Head only: 64 → 8 → 2.
        #expect(parameters["all"] == 64 * 8 + 8 + 8 * 2 + 2)
        // Plus the second convolution (4 → 8 channels, 3³).
        #expect(parameters["1"] == 64 * 8 + 8 + 8 * 2 + 2 + 8 * 4 * 27 + 8)
    }

    /// A scan on a smaller grid than the training scans' is refused, naming the set, its line
    /// in that file, and the scan.
    @Test func aScanOfAnotherShapeIsABadScanNamingIt() throws {
        let scratch = try ScratchFolder("classify-cnn-shape")
        defer { scratch.remove() }
        let split = try SplitFolder(VolumeCohort.split)
        let target = split.validation.rows[1]
        let splitLine = try #require(target.line)
        let (cropped, manifestLine) = try VolumeCohort.manifestReplacing(target, stem: "cropped", at: scratch.url("manifest.tsv")) {
            try VolumeCohort.copyCropped($0, to: $1, depth: 30)
        }
        #expect(manifestLine != splitLine)

        var request = Self.request(out: scratch.url("out"))
        request.manifest = scratch.url("manifest.tsv")
        let error = Fixture.failure(request)
        guard case let .badScan(message)? = error else {
            Issue.record("expected badScan, got \(String(describing: error))")
            return
        }
        #expect(message.contains(cropped.path) && message.contains("[32, 32, 30]"), "\(message)")
        #expect(message.contains("validation.tsv"), "the message does not name the set: \(message)")
        #expect(!message.contains("validation.tsv line \(manifestLine):"),
                "the message gives the manifest's line \(manifestLine) as a line of validation.tsv (its line there is \(splitLine)): \(message)")
        #expect(!FileManager.default.fileExists(atPath: scratch.path("out/\(ClassifyJob.predictionsFile)")))
        // Headers are cheap to check: a bad validation scan should stop the run before training
        // (`VolumeScans` promises scans "checked from the headers before training").
        #expect(!FileManager.default.fileExists(atPath: scratch.path("out/cnn_best.safetensors")),
                "the validation scans' headers were checked only after training (a checkpoint was written)")
    }

    @Test func aPoolingGridLargerThanTheFeatureMapIsRefused() throws {
        let scratch = try ScratchFolder("classify-cnn-grid")
        defer { scratch.remove() }
        var request = Self.request(out: scratch.url("out"))
        request.cnn.grid = [9, 9, 9]  // the map of a 32³ scan is 8³
        let error = Fixture.failure(request)
        guard case let .invalidOption(message)? = error else {
            Issue.record("expected invalidOption, got \(String(describing: error))")
            return
        }
        #expect(message.contains("--cnn-grid"), "\(message)")
    }

    @Test func aModelFolderThatIsNoRunIsRefused() throws {
        let scratch = try ScratchFolder("classify-cnn-model")
        defer { scratch.remove() }
        var request = Self.request(out: scratch.url("out"))
        request.model = scratch.url("nothing")
        let error = Fixture.failure(request)
        guard case let .invalidOption(message)? = error else {
            Issue.record("expected invalidOption, got \(String(describing: error))")
            return
        }
        #expect(message.contains(scratch.path("nothing")), "\(message)")
    }
}
