import ArgumentParser
import Cohort
import Foundation
import Preprocessing
import TensorCore
import VolumeIO

extension PreprocessStep: ExpressibleByArgument {}
extension SkullStripMethod: ExpressibleByArgument {}
extension NormalisationMethod: ExpressibleByArgument {}
extension Interpolation: ExpressibleByArgument {}
extension RegistrationStart: ExpressibleByArgument {}

/// `adwb preprocess`: reorientation, affine registration to a template, skull stripping and
/// intensity normalisation of every scan of a manifest.
struct PreprocessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preprocess",
        abstract: "Reorient, register to a template, skull-strip and normalise every scan of a manifest.",
        discussion: """
        Steps run in this order: reorient (to RAS, no resampling), register (rigid then affine, normalised \
        cross-correlation, multi-resolution, centre-of-mass start), skullstrip, biasfield (off by default), normalise \
        (inside the brain mask). Registered scans are resampled onto the template's grid (or --grid). OUT gets, per \
        scan, the preprocessed image, its brain mask, its labels, the transform (RAS 4x4, ITK/ANTs and FSL forms) and \
        a record; then manifest.tsv (pointing at the outputs, with mask_path), preprocess.json and qc/index.html. \
        A rerun into the same OUT skips scans whose inputs, template and options are unchanged. With --shard i/n only \
        that share of the manifest is processed; a final run without --shard reuses the shards' scans and writes the \
        manifest and the QC page. The default template is the built-in synthetic cohort's (written to OUT/template/).
        """
    )

    @Option(help: "The manifest (TSV) of scans to preprocess.")
    var manifest: String

    @Option(help: "Output folder (new, empty, or an earlier preprocess run's, whose finished scans are reused).")
    var out: String

    @Option(help: "Template T1 (NIfTI). Default: the built-in synthetic cohort's template (96^3 at 2 mm).")
    var template: String?

    @Option(name: .customLong("template-mask"), help: "The template's brain mask (same grid): where the fit is measured, and the mask of --skull-strip template.")
    var templateMask: String?

    @Option(help: "Comma-separated steps among reorient, register, skullstrip, biasfield, normalise.")
    var steps: String = "reorient,register,skullstrip,normalise"

    @Option(name: .customLong("skull-strip"), help: "Brain mask: auto (the manifest's mask_path, else the template's, else built-in), given, template or builtin.")
    var skullStrip: SkullStripMethod = .auto

    @Option(help: "Intensity normalisation inside the brain mask: zscore or minmax.")
    var normalise: NormalisationMethod = .zscore

    @Option(name: .customLong("clip-percentiles"), help: "minmax: the percentiles mapped to 0 and 1.")
    var clipPercentiles: String = "0.5,99.5"

    @Option(help: "Grid of the registered outputs: template (the template's), mni2mm (91x109x91), spm1p5mm (121x145x121 at 1.5 mm), clinicadl-crop (169x208x179 at 1 mm).")
    var grid: String = "template"

    @Option(name: .customLong("voxel-size"), help: "Resample the output grid to this voxel size in mm (one number or three), covering the same field of view.")
    var voxelSize: String?

    @Option(help: "Interpolation of the registered image: linear, bspline or nearest (masks and labels: nearest).")
    var interpolation: Interpolation = .linear

    @Option(name: .customLong("registration-start"), help: "Starting point of the registration: com (centres of mass), centre (grid centres) or identity.")
    var registrationStart: RegistrationStart = .centreOfMass

    @Option(name: .customLong("registration-iterations"), help: "Optimiser iterations per pyramid level.")
    var registrationIterations: Int = 100

    @Option(help: "Process only share i of n of the manifest (e.g. --shard $SLURM_ARRAY_TASK_ID/8); a final run without --shard writes the manifest.")
    var shard: String?

    @Flag(name: .customLong("skip-bad"), help: "Leave out scans that fail (listed at the end, in preprocess.json and on the QC page) instead of stopping.")
    var skipBad = false

    @Option(help: "Scans processed at once.")
    var workers: Int = 2

    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        guard (1...64).contains(workers) else { throw ValidationError("--workers must be 1 to 64, got \(workers)") }
        if templateMask != nil && template == nil { throw ValidationError("--template-mask needs --template") }
    }

    func run() throws {
        compute.apply()
        var options = PreprocessingOptions()
        options.steps = Set(try steps.split(separator: ",").map { name in
            let trimmed = name.trimmingCharacters(in: .whitespaces)
            guard let step = PreprocessStep(rawValue: trimmed) else {
                throw ValidationError("--steps: unknown step '\(trimmed)' (choose among \(PreprocessStep.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return step
        })
        guard !options.steps.isEmpty else { throw ValidationError("--steps: give at least one step") }
        options.skullStrip = skullStrip
        options.normalisation = normalise
        options.clipPercentiles = try numbers(clipPercentiles, option: "--clip-percentiles")
        options.interpolation = interpolation
        options.registration.start = registrationStart
        options.registration.iterations = registrationIterations

        let templateNeeded = options.steps.contains(.register) || options.skullStrip == .template
        if !templateNeeded, template != nil { preprocessLog("warning: --template is not used without the register step") }
        let loadedTemplate = try loadTemplate(needed: templateNeeded)
        options.outputGrid = try outputGrid(template: loadedTemplate)
        let preprocessor = try ScanPreprocessor(options: options, template: loadedTemplate)
        let selected = try shard.map { text in
            guard let parsed = Shard(text) else { throw ValidationError("--shard '\(text)': \(Shard.syntax)") }
            return parsed
        } ?? .whole
        let output = URL(fileURLWithPath: out)
        var job = PreprocessJob(manifest: URL(fileURLWithPath: manifest), output: output, preprocessor: preprocessor)
        job.shard = selected
        job.workers = workers
        job.skipBad = skipBad
        let progress = SharedProgress(label: shard == nil ? "preprocessing" : "preprocessing shard \(shard ?? "")")
        let interrupt = InterruptFlag(notice: "preprocess: stopping after the scans in hand (finished scans are kept)...")
        let started = Date()
        let summary: PreprocessSummary
        do {
            summary = try job.run(progress: { done, total in progress.update(done, total) }, shouldStop: { interrupt.isSet },
                                  log: { preprocessLog("warning: " + $0) })
        } catch {
            guard case .interrupted = error else { throw error }
            preprocessLog(error.description)
            throw ExitCode(128 + (interrupt.signalNumber ?? SIGINT))
        }
        let computed = summary.records.count - summary.reused
        preprocessLog(String(format: "%d scans (%d computed, %d reused from an earlier run), %d failed, %.1f s", summary.records.count,
                             computed, summary.reused, summary.failed.count, Date().timeIntervalSince(started)))
        if let ncc = summary.records.compactMap({ $0.registration?.correlation }).sorted().first {
            preprocessLog(String(format: "lowest registration correlation: %.3f (see the QC page)", ncc))
        }
        for failure in summary.failed { preprocessLog("skipped " + failure.description) }
        if let manifestURL = summary.manifestURL { print("manifest: \(manifestURL.path)") }
        if let qcPage = summary.qcPage { print("QC page: \(qcPage.path)") }
        if summary.manifestURL == nil {
            print("shard \(shard ?? ""): \(summary.records.count) scans in \(output.path)")
            print("when every shard has finished, run the same command without --shard to write manifest.tsv and the QC page")
        }
    }

    private func loadTemplate(needed: Bool) throws -> Template? {
        guard needed else { return nil }
        guard let template else {
            let synthetic = try SyntheticCohort.template(SyntheticCohortOptions())
            return try Template(image: synthetic.t1, mask: synthetic.mask, name: "built-in synthetic template (96x96x96 at 2 mm)")
        }
        func read(_ path: String) throws -> Volume {
            do { return try ScanInputs.read(image: URL(fileURLWithPath: path), mask: nil, labels: nil).image } catch {
                throw ValidationError("\(error)")
            }
        }
        return try Template(image: try read(template), mask: try templateMask.map(read), name: template)
    }

    private func outputGrid(template: Template?) throws -> Grid? {
        var chosen: Grid?
        switch grid {
        case "template": chosen = nil
        case "mni2mm": chosen = .mni2mm
        case "spm1p5mm": chosen = .spm1p5mm
        case "clinicadl-crop": chosen = .clinicaDLLinearCrop
        default: throw ValidationError("--grid '\(grid)': choose template, mni2mm, spm1p5mm or clinicadl-crop")
        }
        if let voxelSize {
            let sizes = try numbers(voxelSize, option: "--voxel-size")
            guard let base = chosen ?? template.map({ Grid($0.image) }) else { throw ValidationError("--voxel-size needs the register step") }
            chosen = try base.withVoxelSize(sizes.count == 1 ? Array(repeating: sizes[0], count: 3) : sizes)
        }
        return chosen
    }
}

private func preprocessLog(_ text: String) { FileHandle.standardError.write(Data(("preprocess: " + text + "\n").utf8)) }
