import Foundation

/// Figures from a run of ../shared/peers/bench_peers.py or reports/bench_nibabel_io.py (their
/// JSON output), looked up by the workbench's kernel names so `adwb bench --peers FILE` can
/// print them side by side.
public struct PeerBaseline: Sendable {
    /// For each of our kernels, the peer's figure in ms per configuration
    /// (`"torch tuned"`, `"torch default"`, `"openblas ctypes"`, `"nibabel"`, `"scikit-learn"`,
    /// `"scikit-learn same data"`).
    public private(set) var figures: [String: [String: Double]]

    /// Our kernel name → the peer script's key for the same workload.
    static let torchKeys = [
        "cae_encoder_forward": "conv3d_encoder_forward",
        "cae_train_step": "cae_step_strided",
        "sae_epoch_100k": "sparse_ae_epoch_100k",
        "cae_encode_volume": "volume_encode_121x145x121",
        // The same workloads run through the Autoencoders models and trainer step.
        "sae_pretrain_100k": "sparse_ae_epoch_100k",
        "cae_pretrain_step": "cae_step_strided",
        // Whole-volume feature extraction through the Extraction stage (slabs and pooling included).
        "extract_volume_cae": "volume_encode_121x145x121",
    ]

    /// Reads the peers' JSON for a thread count (the figures measured with `threads_N`).
    /// - Throws: when the file cannot be read or is not the peer script's output.
    public init(contentsOf url: URL, threads: Int) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw PeerBaselineError(path: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw PeerBaselineError(path: url.path, reason: "not a JSON object")
        }
        let threadKey = "threads_\(threads)"
        func ms(_ object: Any?) -> Double? { ((object as? [String: Any])?[threadKey] as? [String: Any])?["ms"] as? Double }
        var figures: [String: [String: Double]] = [:]
        let torch = root["torch"] as? [String: Any]
        for (ours, theirs) in Self.torchKeys {
            for config in ["tuned", "default"] {
                let perThreads = (torch?[config] as? [String: Any])?[threadKey] as? [String: Any]
                if let value = (perThreads?[theirs] as? [String: Any])?["ms"] as? Double {
                    figures[ours, default: [:]]["torch \(config)"] = value
                }
            }
        }
        if let value = ms((root["sgemm_2048"] as? [String: Any])?["debian_openblas_ctypes"]) {
            figures["sgemm_2048", default: [:]]["openblas ctypes"] = value
        }
        // bench_nibabel_io.py: {"nibabel": {"threads_N": {kernel: {"ms", "mb_per_s"}}}}, our names.
        let nibabel = (root["nibabel"] as? [String: Any])?[threadKey] as? [String: Any]
        for (kernel, figure) in nibabel ?? [:] {
            if let value = (figure as? [String: Any])?["ms"] as? Double { figures[kernel, default: [:]]["nibabel"] = value }
        }
        // bench_peers.py's scikit-learn section (its own data), and reports/bench_sklearn_same_data.py's
        // (scikit-learn on the matrices `adwb bench --dump-data` writes): lists of runs keyed by shape.
        for (section, label) in [("sklearn", "scikit-learn"), ("sklearn_same_data", "scikit-learn same data")] {
            let runs = root[section] as? [String: Any]
            func list(_ key: String) -> [[String: Any]] { runs?[key] as? [[String: Any]] ?? [] }
            for run in list("svc") {
                if let n = run["n_train"] as? Int, let d = run["d"] as? Int, let kernel = run["kernel"] as? String, let value = run["fit_ms"] as? Double {
                    figures["svc_\(kernel)_fit_\(n)x\(d)", default: [:]][label] = value
                }
            }
            for run in list("linear_svc") {
                if let n = run["n_train"] as? Int, let d = run["d"] as? Int, let value = run["fit_ms"] as? Double {
                    figures["linear_svc_fit_\(n)x\(d)", default: [:]][label] = value
                }
            }
            for run in list("fastica") where run["threads"] as? Int == threads {
                if let n = run["n_samples"] as? Int, let d = run["n_features"] as? Int, let k = run["n_components"] as? Int, let value = run["ms"] as? Double {
                    figures["fastica_\(n)x\(d)_k\(k)", default: [:]][label] = value
                }
            }
        }
        // reports/bench_registration_peers.py: {"cases": {"1mm"|"2mm": {"configs": {name: {"median_s"}}}}},
        // SimpleITK and ANTsPy registering the MNI template moved by the benchmark's affine (2 threads).
        if root["schema"] as? String == "peers-registration/1", threads == 2 {
            for (size, value) in root["cases"] as? [String: Any] ?? [:] {
                for (name, config) in (value as? [String: Any])?["configs"] as? [String: Any] ?? [:] {
                    if let seconds = (config as? [String: Any])?["median_s"] as? Double {
                        figures["register_affine_mni_\(size)", default: [:]][name] = seconds * 1000
                    }
                }
            }
        }
        guard !figures.isEmpty else {
            throw PeerBaselineError(path: url.path, reason: "no figures for \(threadKey) (is it bench_peers.py or bench_nibabel_io.py output?)")
        }
        self.figures = figures
    }

    /// Adds another file's figures (e.g. nibabel's beside PyTorch's).
    public mutating func merge(_ other: PeerBaseline) {
        figures.merge(other.figures) { mine, theirs in mine.merging(theirs) { _, new in new } }
    }
}

public struct PeerBaselineError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
}
