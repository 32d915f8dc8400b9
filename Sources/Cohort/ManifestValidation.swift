import Foundation
import VolumeIO

/// One problem found in a manifest, located by line (and column when it is about one field).
public struct ManifestIssue: Sendable, Equatable, Codable, CustomStringConvertible {
    public enum Severity: String, Sendable, Codable {
        /// Stops every command that reads the manifest.
        case error
        /// Printed, but the manifest is usable.
        case warning
    }

    public var severity: Severity
    /// 1-based line in the manifest (the header is line 1); `nil` for cohort-wide findings.
    public var line: Int?
    public var column: String?
    public var message: String

    public init(_ severity: Severity, line: Int? = nil, column: String? = nil, _ message: String) {
        self.severity = severity
        self.line = line
        self.column = column
        self.message = message
    }

    /// `line 7: error: unknown diagnosis "ADD" ...`
    public var description: String {
        (line.map { "line \($0): " } ?? "") + "\(severity.rawValue): \(message)"
    }
}

/// What `ManifestValidator` checks beyond the manifest's own text.
public struct ManifestValidationOptions: Sendable {
    /// Open every scan, mask and label map and compare their geometry.
    public var checkFiles: Bool
    /// Also read every scan's voxels: non-finite values and constant images are errors.
    public var checkIntensities: Bool
    /// Severity of a scan whose dims or voxel sizes differ from the cohort's most common ones:
    /// an error before training (patches and features need one grid); a warning for raw
    /// cohorts that preprocessing will resample.
    public var mixedGeometry: ManifestIssue.Severity
    /// Folds the cohort will be split into: a class with fewer participants is a warning.
    public var folds: Int
    /// Largest-to-smallest class size (in participants) above which imbalance is reported.
    public var imbalanceRatio: Double

    public init(checkFiles: Bool = true, checkIntensities: Bool = false, mixedGeometry: ManifestIssue.Severity = .error,
                folds: Int = 5, imbalanceRatio: Double = 1.5) {
        self.checkFiles = checkFiles
        self.checkIntensities = checkIntensities
        self.mixedGeometry = mixedGeometry
        self.folds = folds
        self.imbalanceRatio = imbalanceRatio
    }
}

/// The result of validating a manifest.
public struct ManifestValidation: Sendable {
    /// `nil` when the header is unusable.
    public var manifest: Manifest?
    /// Every problem, errors and warnings, ordered by line (cohort-wide ones last).
    public var issues: [ManifestIssue]

    public var errors: [ManifestIssue] { issues.filter { $0.severity == .error } }
    public var warnings: [ManifestIssue] { issues.filter { $0.severity == .warning } }
    public var isValid: Bool { errors.isEmpty }

    /// Participants per diagnosis (a participant counts under its first labelled session).
    public var participantsPerClass: [Diagnosis: Int] {
        manifest.map { ParticipantGroups($0).participantsPerClass } ?? [:]
    }
}

/// Checks a manifest the way training needs it to be, reporting every problem at once.
public enum ManifestValidator {
    public static func validate(_ url: URL, options: ManifestValidationOptions = ManifestValidationOptions()) -> ManifestValidation {
        let parsed: (manifest: Manifest?, issues: [ManifestIssue])
        do { parsed = try Manifest.parse(contentsOf: url) } catch {
            return ManifestValidation(manifest: nil, issues: [ManifestIssue(.error, error.description)])
        }
        guard let manifest = parsed.manifest else { return ManifestValidation(manifest: nil, issues: parsed.issues) }
        var issues = parsed.issues
        issues += labelIssues(manifest, options: options)
        if options.checkFiles { issues += fileIssues(manifest, options: options) }
        issues.sort { ($0.line ?? .max, $0.severity == .error ? 0 : 1) < ($1.line ?? .max, $1.severity == .error ? 0 : 1) }
        return ManifestValidation(manifest: manifest, issues: issues)
    }

    // MARK: Labels

    static func labelIssues(_ manifest: Manifest, options: ManifestValidationOptions) -> [ManifestIssue] {
        var issues: [ManifestIssue] = []
        // Participants whose diagnosis changes between sessions (converters): legitimate, but
        // the split stratifies by the first labelled session, so say so.
        var firstLabel: [String: (Diagnosis, Int?)] = [:]
        for row in manifest.rows {
            guard let diagnosis = row.diagnosis else { continue }
            if let (first, line) = firstLabel[row.participantID] {
                if first != diagnosis {
                    issues.append(ManifestIssue(.warning, line: row.line, column: "diagnosis",
                        "participant \(row.participantID) is \(diagnosis.rawValue) here but \(first.rawValue)\(line.map { " at line \($0)" } ?? ""); splits stratify by the first labelled session"))
                }
            } else {
                firstLabel[row.participantID] = (diagnosis, row.line)
            }
        }
        let counts = ParticipantGroups(manifest).participantsPerClass
        let present = Diagnosis.allCases.filter { (counts[$0] ?? 0) > 0 }
        if present.isEmpty {
            issues.append(ManifestIssue(.warning, "no labelled scans: the manifest can be used for pretraining only"))
            return issues
        }
        if present.count == 1 {
            issues.append(ManifestIssue(.warning, "only one class (\(present[0].rawValue)) is labelled: no classification task can be trained"))
        }
        let summary = present.map { "\($0.rawValue) \(counts[$0] ?? 0)" }.joined(separator: ", ")
        if let largest = present.map({ counts[$0] ?? 0 }).max(), let smallest = present.map({ counts[$0] ?? 0 }).min(),
           present.count > 1, Double(largest) > options.imbalanceRatio * Double(smallest) {
            issues.append(ManifestIssue(.warning,
                "class imbalance: participants per class \(summary); use balanced class weights or oversampling, and balanced accuracy"))
        }
        for diagnosis in present where (counts[diagnosis] ?? 0) < options.folds {
            issues.append(ManifestIssue(.warning,
                "class \(diagnosis.rawValue) has \(counts[diagnosis] ?? 0) participant\(counts[diagnosis] == 1 ? "" : "s"), fewer than the \(options.folds) folds: a \(options.folds)-fold split will fail"))
        }
        return issues
    }

    // MARK: Files

    /// What one row's files turned out to be.
    struct FileCheck: Sendable {
        var header: VolumeHeader?
        var issues: [ManifestIssue] = []
    }

    static func fileIssues(_ manifest: Manifest, options: ManifestValidationOptions) -> [ManifestIssue] {
        let rows = manifest.rows
        // One row at a time: decoding a scan already uses every worker.
        let checks = rows.map { check($0, in: manifest, options: options) }
        var issues = checks.flatMap(\.issues)
        issues += geometryIssues(rows: rows, headers: checks.map(\.header), severity: options.mixedGeometry)
        return issues
    }

    private static func check(_ row: ManifestRow, in manifest: Manifest, options: ManifestValidationOptions) -> FileCheck {
        var result = FileCheck()
        guard !row.path.isEmpty else { return result }
        let url = manifest.url(for: row.path)
        do {
            let header = try VolumeReader.checkReadable(url)
            if header.volumeCount > 1 {
                result.issues.append(ManifestIssue(.error, line: row.line, column: "path",
                    "\(row.path) holds \(header.volumeCount) volumes (dims \(header.dims)); each row must be one 3-D scan (select one with `adwb convert --volume`)"))
            }
            result.header = header
        } catch {
            result.issues.append(ManifestIssue(.error, line: row.line, column: "path", readProblem(row.path, error)))
        }
        if options.checkIntensities, result.header != nil {
            do {
                let statistics = try VolumeReader.statistics(url).statistics
                if statistics.nonFinite > 0 {
                    result.issues.append(ManifestIssue(.error, line: row.line, column: "path",
                        "\(row.path) has \(statistics.nonFinite) NaN or infinite voxel\(statistics.nonFinite == 1 ? "" : "s")"))
                } else if statistics.minimum == statistics.maximum {
                    result.issues.append(ManifestIssue(.error, line: row.line, column: "path",
                        "\(row.path) is constant (every voxel is \(ManifestRow.format(statistics.minimum)))"))
                }
            } catch {
                result.issues.append(ManifestIssue(.error, line: row.line, column: "path", readProblem(row.path, error)))
            }
        }
        for (column, path) in [("mask_path", row.maskPath), ("label_path", row.labelPath)] {
            guard let path else { continue }
            do {
                let header = try VolumeReader.checkReadable(manifest.url(for: path))
                // Without a readable scan there is nothing to compare the grid with.
                guard let scan = result.header else { continue }
                if header.spatialShape != scan.spatialShape {
                    result.issues.append(ManifestIssue(.error, line: row.line, column: column,
                        "\(column) \(path) has dims \(header.spatialShape) but its scan has \(scan.spatialShape)"))
                } else if !header.affine.isClose(to: scan.affine, tolerance: 1e-3) {
                    result.issues.append(ManifestIssue(.warning, line: row.line, column: column,
                        "\(column) \(path) has the scan's dims but a different affine (max difference \(String(format: "%.3g", header.affine.maximumDifference(from: scan.affine))))"))
                }
            } catch {
                result.issues.append(ManifestIssue(.error, line: row.line, column: column, readProblem(path, error)))
            }
        }
        return result
    }

    private static func readProblem(_ path: String, _ error: Error) -> String {
        if case let VolumeError.cannotRead(_, reason) = error { return "cannot read \(path): \(reason)" }
        return "\(path): \(error)"
    }

    /// Scans whose dims, voxel sizes or orientation differ from the cohort's most common ones.
    static func geometryIssues(rows: [ManifestRow], headers: [VolumeHeader?], severity: ManifestIssue.Severity) -> [ManifestIssue] {
        struct Grid: Hashable { var dims: [Int]; var voxelSizes: [Double] }
        func grid(_ header: VolumeHeader) -> Grid {
            Grid(dims: header.spatialShape, voxelSizes: header.affine.voxelSizes.map { ($0 * 1000).rounded() / 1000 })
        }
        let readable = zip(rows, headers).compactMap { row, header in header.map { (row, $0) } }
        guard readable.count > 1 else { return [] }
        let grids = readable.map { grid($0.1) }
        let common = mostCommon(grids)
        let orientations = readable.map { $0.1.affine.axisCodes }
        let commonOrientation = mostCommon(orientations)
        let agreeing = grids.filter { $0 == common }.count
        var issues: [ManifestIssue] = []
        for ((row, _), (found, orientation)) in zip(readable, zip(grids, orientations)) {
            if found.dims != common.dims {
                issues.append(ManifestIssue(severity, line: row.line, column: "path",
                    "\(row.path) has dims \(found.dims), the cohort's are \(common.dims) (\(agreeing) of \(grids.count) scans); resample the scans to one grid"))
            } else if found.voxelSizes != common.voxelSizes {
                issues.append(ManifestIssue(severity, line: row.line, column: "path",
                    "\(row.path) has voxel size \(found.voxelSizes.map(ManifestRow.format)) mm, the cohort's is \(common.voxelSizes.map(ManifestRow.format)) mm"))
            } else if orientation != commonOrientation {
                issues.append(ManifestIssue(.warning, line: row.line, column: "path",
                    "\(row.path) is stored \(orientation), most scans \(commonOrientation); reorient before comparing voxels"))
            }
        }
        return issues
    }

    /// The most frequent value; ties go to the one seen first.
    private static func mostCommon<T: Hashable>(_ values: [T]) -> T {
        var counts: [T: Int] = [:]
        for value in values { counts[value, default: 0] += 1 }
        var best = values[0]
        for value in values where counts[value, default: 0] > counts[best, default: 0] { best = value }
        return best
    }
}

extension Affine {
    /// Largest absolute difference between corresponding entries.
    func maximumDifference(from other: Affine) -> Double {
        zip(entries, other.entries).map { abs($0 - $1) }.max() ?? 0
    }

    func isClose(to other: Affine, tolerance: Double) -> Bool { maximumDifference(from: other) <= tolerance }
}
