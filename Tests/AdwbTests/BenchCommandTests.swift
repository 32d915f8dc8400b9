import ArgumentParser
import Benchmarks
import Foundation
import Testing
@testable import adwb

@Test func benchKernelNamesFollowThePeerScript() {
    // The peer scripts' kernels (PyTorch, nibabel), then our own without a peer.
    let names = Bench.kernels().map(\.name)
    #expect(names == ["sgemm_1024", "sgemm_2048", "cae_encoder_forward", "cae_train_step", "sae_epoch_100k", "cae_encode_volume",
                      "nifti_read_mni_1mm", "nifti_write_mni_1mm", "synth_render_96", "synth_scan_96",
                      "sae_pretrain_100k", "cae_pretrain_step", "sae_pretrain_stream_100k", "extract_volume_cae"])
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
