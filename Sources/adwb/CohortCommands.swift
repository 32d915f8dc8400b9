import ArgumentParser
import Cohort
import Foundation

/// `adwb synth`: the built-in synthetic cohort.
struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Generate the built-in synthetic cohort: T1-like volumes, brain masks, tissue labels and manifest.tsv.",
        discussion: """
        Anatomy is procedural but brain-like (scalp, skull, CSF, folded cortex, white matter, ventricles, \
        hippocampi, deep grey nuclei) and varies per participant; AD shows enlarged ventricles, hippocampal and \
        medial-temporal loss and cortical thinning, MCI half of it. The same options and seed give byte-identical \
        files. Recipe: data-manifests/synthetic-cohort.md.
        """
    )

    @Option(help: "Participants to generate.")
    var participants = 60

    @Option(help: "Output folder (created; must be empty or an earlier synthetic cohort).")
    var out: String

    @Option(help: "Random seed.")
    var seed: UInt64 = 0

    @Option(help: "Disease effect size: 1 = AD hippocampi 25% smaller, ventricles 60% larger, cortex 10% thinner than CN; 0 = no difference.")
    var effect = 1.0

    @Option(help: "Shares of CN,MCI,AD (normalised).")
    var proportions = "0.5,0.3,0.2"

    @Option(help: "Share of participants left unlabelled (pretraining only).")
    var unlabeled = 0.2

    @Option(name: .customLong("second-session"), help: "Share of participants with a second session 12 months later.")
    var secondSession = 0.25

    @Option(help: "Grid size X,Y,Z in voxels (or one number for a cube).")
    var shape = "96"

    @Option(name: .customLong("voxel-size"), help: "Isotropic voxel size in mm.")
    var voxelSize = 2.0

    @Flag(name: .customLong("vary-geometry"), help: "Give some scans another voxel size or flipped axes, as mixed real cohorts have.")
    var varyGeometry = false

    @Option(help: "Noise standard deviation relative to white matter.")
    var noise = 0.03

    @Option(name: .customLong("bias-field"), help: "Typical relative amplitude of the smooth intensity bias field.")
    var biasField = 0.15

    @Option(help: "Acquisition sites (each with its own intensity scale, contrast and noise).")
    var sites = 2

    @OptionGroup var compute: ComputeOptions

    func recipe() throws -> SyntheticCohortOptions {
        var options = SyntheticCohortOptions()
        options.participants = participants
        options.seed = seed
        options.effect = effect
        options.proportions = try numbers(proportions, option: "--proportions")
        options.unlabeledFraction = unlabeled
        options.secondSessionFraction = secondSession
        let sizes = try numbers(shape, option: "--shape").map { value in
            guard let size = Int(exactly: value), (1...4096).contains(size) else {
                throw ValidationError("--shape: \(value) is not a whole number of voxels")
            }
            return size
        }
        options.shape = sizes.count == 1 ? Array(repeating: sizes[0], count: 3) : sizes
        options.voxelSize = voxelSize
        options.varyGeometry = varyGeometry
        options.noise = noise
        options.biasField = biasField
        options.sites = sites
        try options.validate()
        return options
    }

    func run() throws {
        compute.apply()
        let options = try recipe()
        var bar: ProgressBar?
        let summary = try SyntheticCohort.generate(options, to: URL(fileURLWithPath: out),
                                                   generator: "adwb \(ADWorkbenchVersion.string)") { done, total in
            if bar == nil { bar = ProgressBar("synth", total: total) }
            bar?.update(done)
        }
        let labelled = summary.manifest.rows.filter { $0.diagnosis != nil }.count
        print("wrote \(summary.scans) scans (\(labelled) labelled) of \(options.participants) participants to \(summary.manifestURL.deletingLastPathComponent().path)")
        print("manifest: \(summary.manifestURL.path)")
    }
}

/// Comma-separated numbers from an option.
func numbers(_ text: String, option: String) throws -> [Double] {
    try text.split(separator: ",").map { part in
        guard let value = Double(part.trimmingCharacters(in: .whitespaces)), value.isFinite else {
            throw ValidationError("\(option): \"\(part)\" is not a number")
        }
        return value
    }
}

/// `adwb manifest ...`: cohort manifests.
struct ManifestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manifest",
        abstract: "Validate, split and import cohort manifests (TSV: participant_id, session_id, path, diagnosis, ...).",
        discussion: "Schema: data-manifests/README.md.",
        subcommands: [ValidateManifestCommand.self, SummaryManifestCommand.self, SplitManifestCommand.self, CheckSplitCommand.self,
                      FromBIDSCommand.self, FromCAPSCommand.self, FromOASISCommand.self]
    )
}

extension ManifestIssue.Severity: ExpressibleByArgument {}

struct ValidateManifestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Report every problem of a manifest at once, each with its line number.",
        discussion: """
        Errors (exit status 1): missing or unreadable files, duplicate participant/session pairs, unknown labels, \
        bad numbers, scans whose dims or voxel sizes differ from the rest, masks whose dims differ from their scan. \
        Warnings (printed, exit 0): class imbalance, classes with fewer participants than --folds, diagnoses that \
        change between sessions.
        """
    )

    @Argument(help: "The manifest TSV.")
    var manifest: String

    @Option(help: "Folds the cohort will be split into (a class with fewer participants is a warning).")
    var folds = 5

    @Flag(help: "Also read every scan's voxels: NaN/Inf or constant images are errors.")
    var intensities = false

    @Flag(name: .customLong("check-files"), inversion: .prefixedNo, help: "Open every scan, mask and label map (their headers) and compare grids.")
    var checkFiles = true

    @Option(name: .customLong("mixed-geometry"), help: "Severity of scans whose grid differs from the cohort's: error (before training) or warning (raw cohorts to preprocess).")
    var mixedGeometry: ManifestIssue.Severity = .error

    @Flag(help: "Print the issues as one JSON object.")
    var json = false

    @OptionGroup var compute: ComputeOptions

    func run() throws {
        compute.apply()
        let options = ManifestValidationOptions(checkFiles: checkFiles, checkIntensities: intensities,
                                                mixedGeometry: mixedGeometry, folds: folds)
        let validation = ManifestValidator.validate(URL(fileURLWithPath: manifest), options: options)
        if json {
            struct Report: Encodable {
                var manifest: String
                var valid: Bool
                var rows: Int
                var participants_per_class: [String: Int]
                var issues: [ManifestIssue]
            }
            let report = Report(manifest: manifest, valid: validation.isValid, rows: validation.manifest?.rows.count ?? 0,
                                participants_per_class: Dictionary(uniqueKeysWithValues: validation.participantsPerClass.map { ($0.key.rawValue, $0.value) }),
                                issues: validation.issues)
            try printJSONLine(report)
        } else {
            for issue in validation.issues {
                print(manifest + (issue.line.map { ":\($0)" } ?? "") + ": \(issue.severity.rawValue): \(issue.message)")
            }
            if let parsed = validation.manifest {
                let counts = validation.participantsPerClass
                let classes = Diagnosis.allCases.map { "\($0.rawValue) \(counts[$0] ?? 0)" }.joined(separator: ", ")
                // Rows whose diagnosis is an error are not "unlabelled".
                let badLabels = Set(validation.errors.filter { $0.column == "diagnosis" }.compactMap(\.line))
                let unlabeled = parsed.rows.filter { $0.diagnosis == nil && !badLabels.contains($0.line ?? 0) }.count
                print("\(manifest): \(parsed.rows.count) scans, \(parsed.participants.count) participants (\(classes)); \(unlabeled) unlabelled scans; "
                      + "\(validation.errors.count) error\(validation.errors.count == 1 ? "" : "s"), \(validation.warnings.count) warning\(validation.warnings.count == 1 ? "" : "s")")
            }
        }
        if !validation.isValid { throw ExitCode(1) }
    }
}

struct SummaryManifestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summary",
        abstract: "The cohort's demographics per diagnosis: participants, scans, age, sex, MMSE and CDR (a paper's Table 1).",
        discussion: "A participant counts under its first labelled session's diagnosis; age, MMSE and CDR are over scans."
    )

    @Argument(help: "The manifest TSV.")
    var manifest: String

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        let summary = CohortSummary(try Manifest(contentsOf: URL(fileURLWithPath: manifest)))
        if json {
            try printJSONLine(summary)
        } else {
            print(summary.text, terminator: "")
        }
    }
}

struct SplitManifestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "split",
        abstract: "Stratified k-fold split at the participant level, with an optional held-out test set.",
        discussion: """
        Writes OUT/split-<i>/train.tsv and validation.tsv (i = 0..k-1, ClinicaDL's naming), OUT/test.tsv when \
        --test-fraction > 0, and OUT/split.json. All sessions of a participant stay together; strata are the \
        diagnoses; unlabelled participants go to every train.tsv (for pretraining), never to validation or test.
        """
    )

    @Argument(help: "The manifest TSV.")
    var manifest: String

    @Option(help: "Number of folds (k >= 2).")
    var folds = 5

    @Option(name: .customLong("test-fraction"), help: "Share of each class's participants held out as test.tsv first.")
    var testFraction = 0.0

    @Option(help: "Random seed.")
    var seed: UInt64 = 0

    @Option(help: "Output folder.")
    var out: String

    func run() throws {
        let source = try Manifest(contentsOf: URL(fileURLWithPath: manifest))
        let split = try CohortSplitter.split(source, options: SplitOptions(folds: folds, testFraction: testFraction, seed: seed))
        let directory = URL(fileURLWithPath: out)
        try split.write(to: directory, source: source)
        for (index, fold) in split.folds.enumerated() {
            print("split-\(index): train \(fold.train.participants.count) participants (\(fold.train.rows.count) scans), validation \(fold.validation.participants.count) (\(fold.validation.rows.count) scans)")
        }
        if let test = split.test { print("test: \(test.participants.count) participants (\(test.rows.count) scans)") }
        print("wrote \(directory.standardizedFileURL.path)")
    }
}

struct CheckSplitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-split",
        abstract: "Check split folders for data leakage (a participant in two of train, validation and test).",
        discussion: "Give a split-<i> folder or the folder holding them; exits 1 on the first leak, naming the participant."
    )

    @Argument(help: "A split-<i> folder, or the output folder of `adwb manifest split`.")
    var folder: String

    func run() throws {
        let url = URL(fileURLWithPath: folder)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        let folds = names.filter(CohortSplit.isFoldFolder).sorted { $0.localizedStandardCompare($1) == .orderedAscending }
        let folders = folds.isEmpty ? [url] : folds.map { url.appendingPathComponent($0) }
        for folder in folders {
            let split = try SplitFolder(folder)
            print("\(folder.lastPathComponent): ok (train \(split.train.participants.count), validation \(split.validation.participants.count)\(split.test.map { ", test \($0.participants.count)" } ?? "") participants)")
        }
    }
}

/// Options every importer shares.
struct ImportOutput: ParsableArguments {
    @Option(help: "Write the manifest here (paths relative to its folder); default: print it with absolute paths.")
    var out: String?

    func emit(_ result: ImportResult) throws {
        for note in result.notes { FileHandle.standardError.write(Data("note: \(note)\n".utf8)) }
        if let out {
            try result.manifest.write(to: URL(fileURLWithPath: out))
            let labelled = result.manifest.rows.filter { $0.diagnosis != nil }.count
            print("wrote \(result.manifest.rows.count) scans (\(labelled) labelled) of \(result.manifest.participants.count) participants to \(URL(fileURLWithPath: out).standardizedFileURL.path)")
        } else {
            print(result.manifest.table(relativeTo: nil).text, terminator: "")
        }
    }
}

/// How importers read diagnoses.
struct LabelArguments: ParsableArguments {
    @Option(name: .customLong("diagnosis-column"), help: "Column holding the diagnosis (default: the first of diagnosis, diagnosis_bl, diagnosis_sc, dx, DX, group).")
    var diagnosisColumn: String?

    @Option(name: .customLong("label-map"), help: "Words to replace before reading, e.g. control=CN,patient=AD (case-insensitive; word= leaves such scans unlabelled). ADNI's Dementia, EMCI and LMCI are mapped to AD, MCI, MCI.")
    var labelMap: String?

    func options() throws -> LabelOptions {
        var map: [String: String] = [:]
        for pair in (labelMap ?? "").split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty else { throw ValidationError("--label-map: \"\(pair)\" is not word=DIAGNOSIS") }
            guard (try? Diagnosis.parse(parts[1])) != nil else {
                throw ValidationError("--label-map: \"\(parts[1])\" is not CN, MCI, AD or empty")
            }
            map[parts[0]] = parts[1]
        }
        return LabelOptions(column: diagnosisColumn, map: map)
    }
}

struct FromBIDSCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "from-bids",
        abstract: "Manifest from a BIDS dataset: sub-*/[ses-*/]anat/*_T1w.nii[.gz] plus participants.tsv (and sub-*_sessions.tsv).",
        discussion: "The diagnosis comes from a diagnosis, diagnosis_bl, diagnosis_sc, dx or group column (or --diagnosis-column); other columns are carried."
    )

    @Argument(help: "The BIDS dataset folder.")
    var directory: String

    @OptionGroup var labels: LabelArguments

    @OptionGroup var output: ImportOutput

    func run() throws {
        try output.emit(try CohortImporter.fromBIDS(URL(fileURLWithPath: directory), labels: try labels.options()))
    }
}

struct FromCAPSCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "from-caps",
        abstract: "Manifest from a ClinicaDL/Clinica CAPS folder after t1-linear (subjects/sub-*/ses-*/t1_linear/).",
        discussion: "CAPS has no labels: give --labels (participant_id, session_id, diagnosis, as ClinicaDL's get-labels writes)."
    )

    @Argument(help: "The CAPS folder.")
    var directory: String

    @Option(help: "Labels TSV: participant_id, session_id, diagnosis (other columns carried).")
    var labels: String?

    @Flag(help: "Use the uncropped images instead of the desc-Crop ones.")
    var uncropped = false

    @OptionGroup var labelArguments: LabelArguments

    @OptionGroup var output: ImportOutput

    func run() throws {
        try output.emit(try CohortImporter.fromCAPS(URL(fileURLWithPath: directory), labels: labels.map { URL(fileURLWithPath: $0) },
                                                    uncropped: uncropped, labelOptions: try labelArguments.options()))
    }
}

extension CohortImporter.OASISImage: ExpressibleByArgument {}
extension CohortImporter.MissingCDR: ExpressibleByArgument {}

struct FromOASISCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "from-oasis",
        abstract: "Manifest from OASIS-1 cross-sectional folders (OAS1_xxxx_MRn, in disc* folders or not) and its clinical CSV.",
        discussion: "Diagnosis from CDR: 0 -> CN, 0.5 -> MCI, >= 1 -> AD. Age, sex, MMSE and CDR fill their columns; other CSV columns are carried."
    )

    @Argument(help: "The folder holding the OASIS-1 sessions (or disc1, disc2, ... folders).")
    var directory: String

    @Option(help: "The clinical table, oasis_cross-sectional.csv.")
    var clinical: String

    @Option(help: "Image to use: masked (T88 atlas-registered, skull-stripped), unmasked (T88 with skull) or raw (first MPRAGE).")
    var image: CohortImporter.OASISImage = .masked

    @Option(name: .customLong("missing-cdr"), help: "Participants without a CDR (the under-60s): unlabeled, cn or drop.")
    var missingCDR: CohortImporter.MissingCDR = .unlabeled

    @OptionGroup var output: ImportOutput

    func run() throws {
        try output.emit(try CohortImporter.fromOASIS(URL(fileURLWithPath: directory), clinical: URL(fileURLWithPath: clinical),
                                                     image: image, missingCDR: missingCDR))
    }
}
