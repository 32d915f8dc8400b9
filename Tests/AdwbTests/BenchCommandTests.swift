import ArgumentParser
import Benchmarks
import TensorCore
import Foundation
import Testing
@testable import adwb

@Test func benchKernelNamesFollowThePeerScript() {
    // The peer scripts' kernels (PyTorch, nibabel), then our own without a peer.
    let names = Bench.kernels().map(\.name)
    let classifiers = ["400x512", "400x2048", "1000x512", "1000x2048", "4000x512", "4000x2048"].flatMap {
        ["svc_rbf_fit_\($0)", "svc_linear_fit_\($0)", "linear_svc_fit_\($0)"]
    }
    let first: [String] = ["sgemm_1024", "sgemm_2048", "cae_encoder_forward", "cae_train_step", "sae_epoch_100k", "cae_encode_volume",
                           "nifti_read_mni_1mm", "nifti_write_mni_1mm", "synth_render_96", "synth_scan_96",
                           "sae_pretrain_100k", "cae_pretrain_step", "sae_pretrain_stream_100k", "extract_volume_cae"]
    let last: [String] = ["fastica_400x20000_k20", "fastica_400x20000_k50", "fastica_4000x512_k20", "fastica_4000x512_k50",
                          "register_affine_mni_1mm", "register_affine_mni_2mm", "register_affine_synthetic_96", "resample_linear_mni_1mm"]
    let expected: [String] = first + classifiers + last
    #expect(names == expected)
}

@Test func classifierKernelsReportTheirSolverFacts() throws {
    let report = try Bench.run(filters: ["svc_rbf_fit_400x512", "linear_svc_fit_400x512"])
    let svc = try #require(report.kernels["svc_rbf_fit_400x512"]?.facts)
    // bench_peers.py's scikit-learn SVC on its own draw of this shape: 390 support vectors, 591 iterations.
    let supportVectors = try #require(svc["n_support"])
    #expect(supportVectors > 100 && supportVectors <= 400)
    #expect((svc["n_iter"] ?? 0) > 0)
    #expect((report.kernels["linear_svc_fit_400x512"]?.facts?["n_iter"] ?? 0) > 0)
    #expect(report.kernels.values.allSatisfy { $0.gflops == nil })
}

@Test func dumpedClassifierDataIsWhatTheKernelsFit() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("adwb-dump-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: directory) }
    let files = try Bench.dumpClassifierData(to: directory).map(\.lastPathComponent)
    #expect(files.count == 6 * 2 + 4)
    let x = try NumpyFile.read(from: directory.appendingPathComponent("svm_400x512_x.npy"))
    let y = try NumpyFile.read(from: directory.appendingPathComponent("svm_400x512_y.npy"))
    let (expectedX, expectedY) = BenchData.classification(samples: 400, features: 512, seed: 0)
    #expect(x == expectedX)
    #expect(y.scalars == expectedY.map(Float.init))
    // Standardised: every column has mean 0 and variance 1.
    let column = (0..<400).map { Double(x.scalars[$0 * 512 + 70]) }
    #expect(abs(column.reduce(0, +) / 400) < 1e-5)
    #expect(abs(column.map { $0 * $0 }.reduce(0, +) / 400 - 1) < 1e-4)
    #expect(try NumpyFile.read(from: directory.appendingPathComponent("fastica_4000x512_k20.npy")).shape == [4000, 512])
}

@Test func benchReportHasTheStableJSONSchema() throws {
    let report = try Bench.run(filters: ["sgemm_1024"])
    #expect(Set(report.kernels.keys) == ["sgemm_1024"])
    let timing = try #require(report.kernels["sgemm_1024"])
    #expect(timing.ms > 0 && timing.runs == 5)
    #expect((timing.gflops ?? 0) > 0)
    #expect(report.peak_rss_mb > 0)
    let object = try #require(JSONSerialization.jsonObject(with: JSONEncoder().encode(report)) as? [String: Any])
    #expect(Set(object.keys) == ["threads", "peak_rss_mb", "kernels"])
    let kernel = try #require((object["kernels"] as? [String: Any])?["sgemm_1024"] as? [String: Any])
    #expect(Set(kernel.keys) == ["ms", "gflops", "runs"])
}

@Test func flopCountsMatchThePeerScript() {
    // bench_peers.py: encoder 9.06 GFLOP for N=64 at 32³; volume 9.0 GFLOP; strided CAE 10.2 forward.
    #expect(abs(64 * BenchModels.encoderFlops(32, 32, 32) / 1e9 - 9.06) < 0.01)
    #expect(abs(BenchModels.encoderFlops(121, 145, 121) / 1e9 - 9.0) < 0.05)
    #expect(abs(64 * (BenchModels.encoderFlops(32, 32, 32) + BenchModels.stridedDecoderFlops(32, 32, 32)) / 1e9 - 10.2) < 0.05)
}

@Test func threadsOptionIsValidated() {
    #expect(throws: (any Error).self) { _ = try ADWorkbench.parseAsRoot(["bench", "--threads", "0"]) }
    #expect(throws: (any Error).self) { _ = try ADWorkbench.parseAsRoot(["bench", "--no-such-flag"]) }
    #expect((try? ADWorkbench.parseAsRoot(["bench", "--json", "--threads", "2", "--filter", "sgemm"])) is BenchCommand)
}

@Test func unknownFilterIsAnError() throws {
    let command = try #require(try ADWorkbench.parseAsRoot(["bench", "--filter", "no_such_kernel"]) as? BenchCommand)
    #expect(throws: ValidationError.self) { try command.run() }
}

@Test func peerBaselineReadsTheFiguresForOurKernels() throws {
    let json = """
    {"sgemm_2048": {"debian_openblas_ctypes": {"threads_2": {"ms": 86.0}, "threads_1": {"ms": 166.0}}},
     "torch": {"tuned": {"threads_2": {"conv3d_encoder_forward": {"ms": 79.0}, "cae_step_strided": {"ms": 236.0}}},
               "default": {"threads_2": {"conv3d_encoder_forward": {"ms": 269.0}}}}}
    """
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("peers-\(UUID().uuidString).json")
    try Data(json.utf8).write(to: url)
    defer { try? FileManager.default.removeItem(at: url) }
    let two = try PeerBaseline(contentsOf: url, threads: 2)
    #expect(two.figures["cae_encoder_forward"] == ["torch tuned": 79.0, "torch default": 269.0])
    #expect(two.figures["cae_train_step"] == ["torch tuned": 236.0])
    #expect(two.figures["sgemm_2048"] == ["openblas ctypes": 86.0])
    #expect(try PeerBaseline(contentsOf: url, threads: 1).figures == ["sgemm_2048": ["openblas ctypes": 166.0]])
    #expect(throws: PeerBaselineError.self) { try PeerBaseline(contentsOf: url, threads: 4) }
    #expect(throws: PeerBaselineError.self) { try PeerBaseline(contentsOf: url.appendingPathExtension("missing"), threads: 2) }
}

@Test func peerBaselineReadsScikitLearnRunsOfBothSources() throws {
    let json = """
    {"sklearn": {"svc": [{"fit_ms": 21.1, "n_train": 400, "d": 512, "kernel": "rbf"}],
                 "linear_svc": [{"fit_ms": 10.6, "n_train": 400, "d": 512}],
                 "fastica": [{"ms": 745.0, "n_samples": 400, "n_features": 20000, "n_components": 20, "threads": 1},
                             {"ms": 575.7, "n_samples": 400, "n_features": 20000, "n_components": 20, "threads": 2}]},
     "sklearn_same_data": {"svc": [{"fit_ms": 20.7, "n_train": 400, "d": 512, "kernel": "rbf"}]}}
    """
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("peers-\(UUID().uuidString).json")
    try Data(json.utf8).write(to: url)
    defer { try? FileManager.default.removeItem(at: url) }
    let two = try PeerBaseline(contentsOf: url, threads: 2)
    #expect(two.figures["svc_rbf_fit_400x512"] == ["scikit-learn": 21.1, "scikit-learn same data": 20.7])
    #expect(two.figures["linear_svc_fit_400x512"] == ["scikit-learn": 10.6])
    #expect(two.figures["fastica_400x20000_k20"] == ["scikit-learn": 575.7])
}

@Test func peerBaselineReadsNibabelFiguresAndMerges() throws {
    let torch = #"{"torch": {"tuned": {"threads_2": {"conv3d_encoder_forward": {"ms": 79.0}}}}}"#
    let nibabel = #"{"nibabel": {"threads_2": {"nifti_read_mni_1mm": {"ms": 47.0, "mb_per_s": 184.0}}}}"#
    let directory = FileManager.default.temporaryDirectory
    let urls = [torch, nibabel].map { _ in directory.appendingPathComponent("peers-\(UUID().uuidString).json") }
    defer { urls.forEach { try? FileManager.default.removeItem(at: $0) } }
    try Data(torch.utf8).write(to: urls[0])
    try Data(nibabel.utf8).write(to: urls[1])
    var merged = try PeerBaseline(contentsOf: urls[0], threads: 2)
    merged.merge(try PeerBaseline(contentsOf: urls[1], threads: 2))
    #expect(merged.figures == ["cae_encoder_forward": ["torch tuned": 79.0], "nifti_read_mni_1mm": ["nibabel": 47.0]])
    #expect((try? ADWorkbench.parseAsRoot(["bench", "--peers", "a.json", "--peers", "b.json"])) is BenchCommand)
}

@Test func ioKernelsReportMegabytesPerSecondOrAreSkipped() throws {
    let report = try Bench.run(filters: ["nifti_read"])
    if let timing = report.kernels["nifti_read_mni_1mm"] {
        #expect(timing.gflops == nil && (timing.mb_per_s ?? 0) > 0)
        let object = try #require(JSONSerialization.jsonObject(with: JSONEncoder().encode(report)) as? [String: Any])
        let kernel = try #require((object["kernels"] as? [String: Any])?["nifti_read_mni_1mm"] as? [String: Any])
        #expect(Set(kernel.keys) == ["ms", "mb_per_s", "runs"])
    } else {
        // No shared data here: the kernel is listed as skipped, with the reason.
        #expect(report.skipped?["nifti_read_mni_1mm"]?.contains("not found") == true)
        print("nifti_read_mni_1mm skipped: ../shared/data is not present")
    }
}

@Test func peerBaselineReadsTheRegistrationPeers() throws {
    let json = #"""
    {"schema": "peers-registration/1",
     "cases": {"1mm": {"configs": {"sitk_rigid_affine_ncc": {"median_s": 21.6}, "ants_affine_default": {"median_s": 32.5}}},
               "2mm": {"configs": {"ants_affine_default": {"median_s": 4.04}}}}}
    """#
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("peers-\(UUID().uuidString).json")
    try Data(json.utf8).write(to: url)
    defer { try? FileManager.default.removeItem(at: url) }
    let two = try PeerBaseline(contentsOf: url, threads: 2)
    #expect(two.figures["register_affine_mni_1mm"] == ["sitk_rigid_affine_ncc": 21_600, "ants_affine_default": 32_500])
    #expect(two.figures["register_affine_mni_2mm"] == ["ants_affine_default": 4_040])
    // Measured with two threads only.
    #expect(throws: PeerBaselineError.self) { try PeerBaseline(contentsOf: url, threads: 1) }
}
