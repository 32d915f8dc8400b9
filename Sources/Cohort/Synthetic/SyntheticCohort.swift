import Foundation
import TensorCore
import VolumeIO

/// The built-in synthetic cohort: procedural T1-weighted head scans with ground-truth brain
/// masks and tissue labels, in which disease is an anatomical effect (see
/// `data-manifests/synthetic-cohort.md` for the recipe).
public enum SyntheticCohort {
    /// What `generate` wrote.
    public struct Summary: Sendable {
        public var manifest: Manifest
        public var manifestURL: URL
        public var scans: Int
    }

    /// Renders one session of one participant (for tests and previews; `generate` writes them all).
    public static func render(_ participant: SyntheticParticipant, session: Int, options: SyntheticCohortOptions) -> SyntheticScan {
        SyntheticRenderer(options: options).render(participant, participant.sessions[session])
    }

    /// The cohort's template (`adwb preprocess`'s default registration target): the
    /// canonical anatomy of an average cognitively normal 70-year-old, unposed (world = head
    /// coordinates, origin at the brain's centre), noise- and bias-free, on the recipe's grid;
    /// with its brain mask and tissue labels. Every scan's `headToWorld` maps this template's
    /// world onto the scan's.
    public static func template(_ options: SyntheticCohortOptions) throws(CohortError) -> SyntheticScan {
        try options.validate()
        return SyntheticRenderer(options: options).renderTemplate()
    }

    /// The participants a recipe describes (no voxels yet).
    public static func participants(_ options: SyntheticCohortOptions) throws(CohortError) -> [SyntheticParticipant] {
        try options.validate()
        return SyntheticParticipant.draw(options)
    }

    /// Writes the cohort into `directory` as a BIDS-like tree:
    /// `sub-XXXX/ses-MNNN/anat/sub-XXXX_ses-MNNN_{T1w,desc-brain_mask,dseg}.nii.gz`, plus
    /// `manifest.tsv` (with `mask_path`, `label_path` and the ground-truth extras
    /// `synth_condition`, `synth_severity`, `hippocampus_ml`, `ventricles_ml`),
    /// `participants.tsv`, `dataset_description.json`, `dseg.tsv` and `synth.json` (the recipe).
    /// `directory` must be empty, missing, or an earlier synthetic cohort (which is replaced).
    /// `progress(done, total)` is called after each scan.
    public static func generate(_ options: SyntheticCohortOptions, to directory: URL, generator: String,
                                progress: (Int, Int) -> Void = { _, _ in }) throws(CohortError) -> Summary {
        let participants = try participants(options)
        let directory = directory.standardizedFileURL
        try prepare(directory)
        // The recipe first: it marks the folder as a synthetic cohort, so an interrupted run
        // can be rerun into it; the manifest comes last, once every scan is on disk.
        try writeRecipe(participants, options: options, to: directory, generator: generator)
        let renderer = SyntheticRenderer(options: options)
        let total = participants.scanCount
        var rows: [ManifestRow] = []
        var done = 0
        for participant in participants {
            for session in participant.sessions {
                let folder = "\(participant.id)/\(session.id)/anat"
                let stem = "\(folder)/\(participant.id)_\(session.id)"
                let scan = renderer.render(participant, session)
                do {
                    try FileManager.default.createDirectory(at: directory.appendingPathComponent(folder), withIntermediateDirectories: true)
                    try VolumeWriter.write(scan.t1, to: directory.appendingPathComponent(stem + "_T1w.nii.gz"),
                                           options: VolumeWriteOptions(datatype: .int16, scaling: .none))
                    try VolumeWriter.write(scan.mask, to: directory.appendingPathComponent(stem + "_desc-brain_mask.nii.gz"),
                                           options: VolumeWriteOptions(datatype: .uint8, scaling: .none))
                    try VolumeWriter.write(scan.labels, to: directory.appendingPathComponent(stem + "_dseg.nii.gz"),
                                           options: VolumeWriteOptions(datatype: .uint8, scaling: .none))
                } catch {
                    throw .writing(directory.appendingPathComponent(stem), error)
                }
                rows.append(ManifestRow(
                    participantID: participant.id, sessionID: session.id, path: stem + "_T1w.nii.gz",
                    diagnosis: participant.isLabeled ? participant.condition : nil,
                    age: (session.age * 10).rounded() / 10, sex: participant.sex, mmse: session.mmse, cdr: session.cdr,
                    site: participant.site, maskPath: stem + "_desc-brain_mask.nii.gz", labelPath: stem + "_dseg.nii.gz",
                    extra: ["synth_condition": participant.condition.rawValue,
                            "synth_severity": String(format: "%.3f", session.severity),
                            "hippocampus_ml": String(format: "%.3f", scan.hippocampusML),
                            "ventricles_ml": String(format: "%.3f", scan.ventriclesML)]))
                done += 1
                progress(done, total)
            }
        }
        let manifest = Manifest(directory: directory, rows: rows,
                                extraColumns: ["synth_condition", "synth_severity", "hippocampus_ml", "ventricles_ml"])
        try writeSidecars(participants, to: directory, generator: generator)
        let manifestURL = directory.appendingPathComponent("manifest.tsv")
        try manifest.write(to: manifestURL)
        return Summary(manifest: manifest, manifestURL: manifestURL, scans: total)
    }

    /// Creates `directory`, or clears an earlier synthetic cohort in it; refuses other content.
    private static func prepare(_ directory: URL) throws(CohortError) {
        let fileManager = FileManager.default
        do {
            if fileManager.fileExists(atPath: directory.path) {
                let contents = try fileManager.contentsOfDirectory(atPath: directory.path)
                if !contents.isEmpty {
                    guard isOurRecipe(directory.appendingPathComponent("synth.json")) else {
                        throw CohortError.cannotWrite(path: directory.path,
                            reason: "the folder is not empty and holds no synthetic cohort (synth.json); choose a new --out")
                    }
                    for name in contents where name.hasPrefix("sub-") || name == "manifest.tsv" {
                        try fileManager.removeItem(at: directory.appendingPathComponent(name))
                    }
                }
            } else {
                try fileManager.createDirectory(at: directory, withIntermediateDirectories: true)
            }
        } catch {
            throw .writing(directory, error)
        }
    }

    /// `synth.json`: the recipe, the generator's version and what the recipe makes.
    struct Recipe: Codable {
        var generator: String
        var recipe: SyntheticCohortOptions
        var participants_per_condition: [String: Int]
        var scans: Int
    }

    /// Whether `url` is a `synth.json` this generator wrote.
    private static func isOurRecipe(_ url: URL) -> Bool {
        guard let data = try? Data(contentsOf: url) else { return false }
        return (try? JSONDecoder().decode(Recipe.self, from: data)) != nil
    }

    private static func writeRecipe(_ participants: [SyntheticParticipant], options: SyntheticCohortOptions,
                                    to directory: URL, generator: String) throws(CohortError) {
        var perCondition: [String: Int] = [:]
        for participant in participants { perCondition[participant.condition.rawValue, default: 0] += 1 }
        try writeJSON(Recipe(generator: generator, recipe: options, participants_per_condition: perCondition,
                             scans: participants.scanCount),
                      to: directory.appendingPathComponent("synth.json"))
    }

    /// The BIDS files: `participants.tsv`, `dataset_description.json`, and `dseg.tsv`.
    private static func writeSidecars(_ participants: [SyntheticParticipant], to directory: URL,
                                      generator: String) throws(CohortError) {
        let participantsTable = TSVTable(
            header: ["participant_id", "diagnosis", "age", "sex", "site"],
            lines: participants.enumerated().map { index, participant in
                TSVTable.Line(number: index + 2, fields: [
                    participant.id, participant.isLabeled ? participant.condition.rawValue : "",
                    String(format: "%.1f", participant.baselineAge), participant.sex, participant.site,
                ])
            })
        let dseg = TSVTable(header: ["index", "name"], lines: Tissue.allCases.dropFirst().enumerated().map { index, tissue in
            TSVTable.Line(number: index + 2, fields: [String(tissue.rawValue), tissue.name])
        })
        let description = """
        {
          "Name": "ADWorkbench synthetic cohort",
          "BIDSVersion": "1.9.0",
          "DatasetType": "raw",
          "GeneratedBy": [{"Name": "adwb synth", "Version": "\(generator)"}]
        }

        """
        try writeAtomically(Data(participantsTable.text.utf8), to: directory.appendingPathComponent("participants.tsv"))
        try writeAtomically(Data(dseg.text.utf8), to: directory.appendingPathComponent("dseg.tsv"))
        try writeAtomically(Data(description.utf8), to: directory.appendingPathComponent("dataset_description.json"))
    }
}

extension [SyntheticParticipant] {
    /// Scans (sessions) of all participants.
    var scanCount: Int { reduce(0) { $0 + $1.sessions.count } }
}
