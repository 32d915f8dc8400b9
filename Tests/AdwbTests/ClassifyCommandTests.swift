import Foundation
import NeuralNet
import TensorCore
import Testing
import TestSupport

// End-to-end tests of `adwb classify`, running the built executable on a split folder and a
// feature folder written here (synthetic features: AD and CN are Gaussian blobs apart).

private enum ClassifyCLI {
    /// 12 CN and 12 AD participants, 4 features; participants 0–7 of each class train, 8–9
    /// validate, 10–11 test.
    static func write(split: URL, features: URL) throws {
        var generator = Xoshiro256StarStar(seed: 17)
        var rows: [(participant: String, diagnosis: String, set: String, values: [Float])] = []
        for (c, diagnosis) in ["CN", "AD"].enumerated() {
            for i in 0..<12 {
                let centre: Float = c == 0 ? -1.5 : 1.5
                let values = (0..<4).map { j in (j < 2 ? centre : 0) + generator.nextStandardNormal() }
                rows.append((String(format: "sub-%02d%02d", c, i), diagnosis, i < 8 ? "train" : i < 10 ? "validation" : "test", values))
            }
        }
        try FileManager.default.createDirectory(at: split, withIntermediateDirectories: true)
        for set in ["train", "validation", "test"] {
            let text = "participant_id\tsession_id\tpath\tdiagnosis\n"
                + rows.filter { $0.set == set }.map { "\($0.participant)\tses-M000\t\($0.participant).nii.gz\t\($0.diagnosis)\n" }.joined()
            try Data(text.utf8).write(to: split.appendingPathComponent("\(set).tsv"))
        }
        try FileManager.default.createDirectory(at: features, withIntermediateDirectories: true)
        func json(_ strings: [String]) throws -> String { String(decoding: try JSONEncoder().encode(strings), as: UTF8.self) }
        let metadata = [
            "participant_id": try json(rows.map { $0.participant }), "session_id": try json(rows.map { _ in "ses-M000" }),
            "diagnosis": try json(rows.map { $0.diagnosis }), "feature_names": try json((0..<4).map { "c\($0)_x0_y0_z0" }),
        ]
        let values = try Tensor(shape: [rows.count, 4], scalars: rows.flatMap { $0.values })
        try SafeTensors.encode([("features", .float32(values))], metadata: metadata).write(to: features.appendingPathComponent("features.safetensors"))
    }
}

private func adwb(_ arguments: [String], scratch: ScratchFolder) throws -> (status: Int32, stdout: String, stderr: String) {
    try runBuiltExecutable("adwb", arguments, scratch: scratch)
}

@Suite struct ClassifyCommandTests {
    @Test func classifyWithTheSVMBackendWritesPredictionsAndMetrics() throws {
        let scratch = try ScratchFolder("classify-cli")
        defer { scratch.remove() }
        try ClassifyCLI.write(split: scratch.url("split"), features: scratch.url("features"))
        let out = scratch.url("out")
        let result = try adwb(["classify", "--backend", "svm", "--features", scratch.path("features"), "--split", scratch.path("split"),
                               "--out", out.path, "--kernel", "linear", "--c", "0.1,1", "--inner-folds", "2", "--threads", "1"], scratch: scratch)
        #expect(result.status == 0, "\(result.stderr)")
        for name in ["predictions.tsv", "metrics.json"] {
            let url = out.appendingPathComponent(name)
            #expect(result.stdout.contains("\(name): \(url.path)"), "stdout does not name \(name): \(result.stdout)")
            #expect(FileManager.default.fileExists(atPath: url.path), "\(name) missing")
        }
        #expect(result.stderr.contains("validation (4 scans)") && result.stderr.contains("test (4 scans)"), "\(result.stderr)")
        #expect(result.stderr.contains("chosen by inner cross-validation: C="), "\(result.stderr)")
        let predictions = try String(contentsOf: out.appendingPathComponent("predictions.tsv"), encoding: .utf8)
        let lines = predictions.split(separator: "\n")
        #expect(lines.first == "participant_id\tsession_id\tdiagnosis\tpredicted\tprob_CN\tprob_AD\tset")
        #expect(lines.count == 9)

        // Again into the same folder: refused without --overwrite, accepted with it.
        let again = try adwb(["classify", "--backend", "svm", "--features", scratch.path("features"), "--split", scratch.path("split"),
                              "--out", out.path, "--kernel", "linear", "--c", "1"], scratch: scratch)
        #expect(again.status != 0 && again.stderr.contains("--overwrite"), "\(again.stderr)")
        let overwritten = try adwb(["classify", "--backend", "svm", "--features", scratch.path("features"), "--split", scratch.path("split"),
                                    "--out", out.path, "--kernel", "linear", "--c", "1", "--overwrite"], scratch: scratch)
        #expect(overwritten.status == 0, "\(overwritten.stderr)")
    }

    @Test func explainWritesTheSVMsWeightsAndSaysWhereTheyAre() throws {
        let scratch = try ScratchFolder("classify-cli-explain")
        defer { scratch.remove() }
        try ClassifyCLI.write(split: scratch.url("split"), features: scratch.url("features"))
        let out = scratch.url("out")
        let result = try adwb(["classify", "--backend", "svm", "--features", scratch.path("features"), "--split", scratch.path("split"),
                               "--out", out.path, "--kernel", "linear", "--c", "1", "--inner-folds", "2", "--explain", "--threads", "1"], scratch: scratch)
        #expect(result.status == 0, "\(result.stderr)")
        let table = out.appendingPathComponent("svm_weights.tsv")
        #expect(result.stdout.contains("svm_weights.tsv: \(table.path)"), "\(result.stdout)")
        #expect(result.stderr.contains("explanation map (svm_weights_table, AD): \(table.path)"), "\(result.stderr)")
        // These features come without an extraction record: no map in the scans' space, and a note saying why.
        #expect(result.stderr.contains("explanations: no SVM weight map in the scans' space"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("svm_weights.nii.gz").path))
    }

    @Test func classifyRefusesInputsItCannotUseWithAClearMessage() throws {
        let scratch = try ScratchFolder("classify-cli-bad")
        defer { scratch.remove() }
        try ClassifyCLI.write(split: scratch.url("split"), features: scratch.url("features"))
        let common = ["--split", scratch.path("split"), "--out", scratch.path("out")]
        let cases: [([String], String)] = [
            (["classify", "--backend", "svm"] + common, "--features"),
            (["classify", "--backend", "svm", "--features", scratch.path("features"), "--manifest", scratch.path("split/train.tsv")] + common, "not both"),
            (["classify", "--backend", "cnn", "--features", scratch.path("features"), "--model", scratch.path("run")] + common, "--model"),
            (["classify", "--backend", "svm", "--features", scratch.path("features"), "--kernel", "foo"] + common, "foo"),
            (["classify", "--backend", "svm", "--features", scratch.path("features"), "--c", "0"] + common, "C values"),
            (["classify", "--backend", "svm", "--features", scratch.path("features"), "--gamma", "xyz"] + common, "xyz"),
            (["classify", "--backend", "forest", "--features", scratch.path("features")] + common, "forest"),
            (["classify", "--backend", "svm", "--features", scratch.path("split")] + common, "not an `adwb extract` output folder"),
            (["classify", "--backend", "svm", "--features", scratch.path("features"), "--occlusion-cube", "8"] + common, "apply with --explain"),
            (["classify", "--backend", "svm", "--features", scratch.path("features"), "--explain", "--occlusion-stride", "40"] + common,
             "occlusion stride 40"),
        ]
        for (arguments, phrase) in cases {
            let result = try adwb(arguments, scratch: scratch)
            #expect(result.status != 0, "\(arguments) succeeded")
            #expect(result.stderr.contains(phrase), "\(arguments): stderr lacks '\(phrase)': \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: scratch.path("out/predictions.tsv")))
        }
    }
}
