import Autoencoders
import Cohort
import Foundation
import TensorCore

/// Where a comparison's numbers came from: enough to repeat it.
public struct Provenance: Codable, Sendable {
    public var adwbVersion: String
    public var compareVersion: String
    public var started: String
    public var configuration: ExperimentConfig
    /// The experiment file as written (nil when built in code).
    public var configurationText: String?
    public var seed: UInt64
    public var manifest: String
    public var manifestSha256: String
    /// SHA-256 of the manifest's text and every scan file's size and modification time.
    public var cohortFingerprint: String
    public var scans: Int
    public var participants: Int
    public var folds: [String]
    public var work: String
    public var encoderRuns: [String]
    public var machine: [String: String]
    public var threads: Int
    /// Wall-clock seconds per stage kind, summed over folds (stages reused from an earlier
    /// run count nothing).
    public var seconds: [String: Double] = [:]

    enum CodingKeys: String, CodingKey {
        case started, configuration, seed, manifest, scans, participants, folds, work, machine, threads, seconds
        case adwbVersion = "adwb_version", compareVersion = "compare_version", configurationText = "configuration_text"
        case manifestSha256 = "manifest_sha256", cohortFingerprint = "cohort_fingerprint", encoderRuns = "encoder_runs"
    }

    static func collect(options: CompareOptions, manifest: Manifest, manifestURL: URL, cohort: CohortFingerprint, folds: [Fold],
                        encoderRuns: [String], started: Date) -> Provenance {
        let formatter = ISO8601DateFormatter()
        var system = utsname()
        uname(&system)
        func text<T>(_ field: T) -> String {
            withUnsafeBytes(of: field) { bytes in String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self) }
        }
        let machine = ["os": "\(text(system.sysname)) \(text(system.release))", "architecture": text(system.machine),
                       "processors": "\(ProcessInfo.processInfo.activeProcessorCount)",
                       "memory_gb": String(format: "%.1f", Double(ProcessInfo.processInfo.physicalMemory) / 1e9)]
        return Provenance(adwbVersion: Pretraining.version, compareVersion: Compare.compareVersion, started: formatter.string(from: started),
                          configuration: options.config, configurationText: options.configText, seed: options.config.seed,
                          manifest: manifestURL.path, manifestSha256: manifest.contentHash, cohortFingerprint: cohort.hash,
                          scans: manifest.rows.count, participants: manifest.participants.count, folds: folds.map(\.folder.path),
                          work: options.work.path, encoderRuns: encoderRuns, machine: machine, threads: Engine.threads)
    }
}
