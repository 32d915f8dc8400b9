import Classification
import Cohort
import Foundation
import TensorCore
import VolumeIO

/// One fold's explanation files from a back end's `metrics.json`.
struct FoldExplanations {
    var fold: Int
    var folder: URL
    var record: ExplanationRecord

    private struct Report: Decodable { var explanations: ExplanationRecord? }

    /// nil when the classification made no explanations.
    static func read(_ folder: URL, fold: Int) -> FoldExplanations? {
        guard let data = try? Data(contentsOf: folder.appendingPathComponent(ClassifyJob.metricsFile)),
              let record = try? JSONDecoder().decode(Report.self, from: data).explanations else { return nil }
        return FoldExplanations(fold: fold, folder: folder, record: record)
    }
}

/// A back end's explanation map averaged over the folds, as written into the report.
public struct ExplanationSummary: Codable, Equatable, Sendable {
    public var backend: String
    /// `occlusion` or the weight map's kind, as `adwb classify` names it.
    public var kind: String
    /// The class whose maps were averaged (occlusion), or nil.
    public var className: String?
    /// The NIfTI file, relative to the report folder.
    public var file: String
    public var folds: Int
    /// Scans averaged over all folds (occlusion).
    public var scans: Int?
    /// What a value means.
    public var values: String

    enum CodingKeys: String, CodingKey { case backend, kind, file, folds, scans, values, className = "class" }
}

/// Averages each back end's per-fold maps (all on the scans' common grid) and writes them
/// into the report's `explanations/` folder.
enum ExplanationMaps {
    static let folder = "explanations"

    /// - Returns: the averaged maps' records and volumes (for the report's figures), and notes
    ///   on maps that could not be averaged.
    static func average(_ explanations: [String: [FoldExplanations]], backends: [String], report: URL)
        throws(CompareError) -> (summaries: [ExplanationSummary], maps: [Volume], notes: [String]) {
        var summaries: [ExplanationSummary] = [], maps: [Volume] = [], notes: [String] = []
        for backend in backends {
            let folds = explanations[backend] ?? []
            notes += Array(Set(folds.flatMap { $0.record.notes })).sorted().map { "\(backend): \($0)" }
            // Maps of one kind and class, in order of first appearance.
            var groups: [(kind: String, className: String?, values: String, files: [(URL, Int?)])] = []
            for fold in folds {
                for file in fold.record.files where file.file.hasSuffix(".nii.gz") {
                    let url = fold.folder.appendingPathComponent(file.file)
                    if let index = groups.firstIndex(where: { $0.kind == file.kind && $0.className == file.className }) {
                        groups[index].files.append((url, file.scans))
                    } else {
                        groups.append((file.kind, file.className, file.values, [(url, file.scans)]))
                    }
                }
            }
            for group in groups {
                var sum: [Double] = []
                var reference: Volume?
                for (url, _) in group.files {
                    let volume: Volume
                    do { volume = try VolumeReader.read(url) } catch { throw .badOutput(path: url.path, reason: "\(error)") }
                    if let reference, reference.shape != volume.shape {
                        notes.append("\(backend): \(group.kind) maps of different folds lie on different grids; not averaged")
                        sum = []
                        break
                    }
                    if reference == nil { reference = volume; sum = [Double](repeating: 0, count: volume.data.count) }
                    for (i, value) in volume.data.scalars.enumerated() { sum[i] += Double(value) }
                }
                guard let reference, !sum.isEmpty else { continue }
                let mean = sum.map { Float($0 / Double(group.files.count)) }
                let name = FileNames.safeComponent([backend, group.kind, group.className].compactMap { $0 }.joined(separator: "_")) + ".nii.gz"
                let url = report.appendingPathComponent("\(folder)/\(name)")
                do {
                    let volume = try Volume(data: try Tensor(shape: reference.shape, scalars: mean), affine: reference.affine)
                    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                    try VolumeWriter.write(volume, to: url, options: VolumeWriteOptions(datatype: .float32, scaling: .none))
                    maps.append(volume)
                } catch { throw .io("\(url.path): \(error)") }
                let scans = group.files.compactMap(\.1)
                summaries.append(ExplanationSummary(backend: backend, kind: group.kind, className: group.className, file: "\(folder)/\(name)",
                                                    folds: group.files.count, scans: scans.isEmpty ? nil : scans.reduce(0, +), values: group.values))
            }
        }
        return (summaries, maps, notes)
    }

    /// The mean of the manifest's task scans (the anatomy the maps are drawn over), or nil
    /// when they do not share one grid.
    static func meanAnatomy(_ manifest: Manifest, shape: [Int]) -> Tensor? {
        var sum = [Double](repeating: 0, count: shape.reduce(1, *))
        var count = 0
        for row in manifest.rows {
            guard let volume = try? VolumeReader.read(manifest.url(for: row.path)), volume.shape == shape else { return nil }
            for (i, value) in volume.data.scalars.enumerated() where value.isFinite { sum[i] += Double(value) }
            count += 1
        }
        guard count > 0 else { return nil }
        return try? Tensor(shape: shape, scalars: sum.map { Float($0 / Double(count)) })
    }
}
