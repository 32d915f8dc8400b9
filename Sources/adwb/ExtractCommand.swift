import ArgumentParser
import Autoencoders
import Cohort
import Extraction
import Foundation
import TensorCore

/// `adwb extract`: deep features per scan from a pretrained encoder, and the feature report.
struct ExtractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Turn every scan of a manifest into a feature vector with a pretrained encoder, and report on the features.",
        discussion: "`adwb extract --model RUN --manifest M.tsv --out DIR` runs the default subcommand; see `adwb extract run --help` for its options.",
        subcommands: [ExtractRunCommand.self, ExtractMergeCommand.self],
        defaultSubcommand: ExtractRunCommand.self
    )
}

struct ExtractRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Extract features (the default: `adwb extract --model ... --manifest ... --out ...`).",
        discussion: """
        The encoder of the pretraining run in --model is applied to each whole scan, normalised as in training: a \
        convolutional autoencoder's encoder runs fully convolutionally; a stacked autoencoder's first-layer weights \
        act as 3-D filters (Payan & Montana 2015). Each channel of the resulting feature map is pooled over a grid \
        of regions. OUT gets features.npy (float32, rows in manifest order), features.tsv, features.safetensors, \
        feature_stats.tsv, summary.json and report.html. With --shard i/n only that share of the manifest is \
        extracted into OUT (shard.json, shard-features.npy); `adwb extract merge` joins the shards into the files \
        a single run writes.
        """
    )

    @Option(help: "A finished pretraining run (the --out of adwb pretrain).")
    var model: String

    @Option(help: "The manifest (TSV) of scans to extract.")
    var manifest: String

    @Option(help: "Output folder.")
    var out: String

    @Option(help: "Region pooling: mean or max.")
    var pool: RegionPooling = .mean

    @Option(help: "Regions per axis, GXxGYxGZ or one number for all three (e.g. 2x2x2, 3).")
    var grid: String = "3x3x3"

    @Option(name: .customLong("sae-levels"), help: "Stacked autoencoders: encoder levels to use (default: all).")
    var saeLevels: Int?

    @Option(name: .customLong("sae-deep-layers"), help: "Stacked autoencoders: apply levels after the first at every position (grid, the default) or to each region's pooled codes (pooled).")
    var saeDeepLayers: DeepSAELayers?

    @Flag(name: .customLong("feature-maps"), help: "Also write each scan's feature map before pooling (4-D NIfTI, one frame per channel) to OUT/maps/.")
    var featureMaps = false

    @Option(help: "Extract only share i of n of the manifest (e.g. --shard $SLURM_ARRAY_TASK_ID/8); join with `adwb extract merge`.")
    var shard: String?

    @Option(name: .customLong("untrained-seed"), help: "Use the model's architecture with untrained weights drawn from this seed (a baseline for the trained features).")
    var untrainedSeed: UInt64?

    @Flag(name: .customLong("skip-bad"), help: "Leave out scans that cannot be used (listed at the end and in summary.json) instead of stopping.")
    var skipBad = false

    @Flag(help: "Replace the extraction outputs already in --out.")
    var overwrite = false

    @Option(help: "Scans encoded at once.")
    var workers: Int = 2

    @Option(name: .customLong("tile-mb"), help: "Memory for one slab of encoder activations, in MB: larger volumes are encoded in slabs (same result; a slab is at least one feature-map row, which a large model may need more for).")
    var tileMegabytes: Int = 256

    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        guard (1...64).contains(workers) else { throw ValidationError("--workers must be 1 to 64, got \(workers)") }
        guard (16...1_000_000).contains(tileMegabytes) else { throw ValidationError("--tile-mb must be 16 to 10^6, got \(tileMegabytes)") }
    }

    func run() throws {
        compute.apply()
        var options = ExtractionOptions()
        options.pooling = pool
        let cells = try integers(grid, option: "--grid")
        options.grid = cells.count == 1 ? Array(repeating: cells[0], count: 3) : cells
        options.saeLevels = saeLevels
        if let saeDeepLayers { options.saeDeepLayers = saeDeepLayers }
        try options.validate()
        // An explicit --shard (even 1/1) writes a shard folder for `merge`.
        let selected = try shard.map { try Shard(parsing: $0) } ?? .whole
        var resources = ExtractionResources()
        resources.workers = workers
        resources.tileMegabytes = tileMegabytes

        let output = URL(fileURLWithPath: out)
        try ExtractionOutput.prepare(output, overwrite: overwrite)
        var run = try PretrainedRun.load(URL(fileURLWithPath: model))
        if run.config.model == .cae && (saeLevels != nil || saeDeepLayers != nil) {
            throw ValidationError("--sae-levels and --sae-deep-layers apply to stacked autoencoders; \(model) is a convolutional autoencoder")
        }
        if let untrainedSeed { run = try run.untrained(seed: untrainedSeed) }
        let progress = SharedProgress(label: shard == nil ? "extracting" : "extracting shard \(selected)")
        let started = Date()
        // Maps go to a staging folder until the run has succeeded, so a failed or interrupted
        // run leaves none (SIGINT/SIGTERM stop it after the scans in hand).
        let staging = featureMaps ? try ExtractionOutput.stagingMaps(in: output) : nil
        defer { if let staging { try? FileManager.default.removeItem(at: staging) } }
        let interrupt = InterruptFlag(notice: "extract: stopping after the scans in hand (nothing will be written)...")
        let set: FeatureSet
        do {
            set = try Extraction.run(run, manifest: URL(fileURLWithPath: manifest), options: options, resources: resources,
                                     shard: selected, skipBad: skipBad, featureMaps: staging,
                                     progress: { done, total in progress.update(done, total) }, shouldStop: { interrupt.isSet },
                                     warn: { extractLog("warning: " + $0) })
        } catch ExtractionError.interrupted {
            extractLog(ExtractionError.interrupted.description)
            throw ExitCode(128 + (interrupt.signalNumber ?? SIGINT))
        }
        extractLog(String(format: "%d scans, %d features each (%@), %.1f s", set.record.rows.count, set.record.featureCount,
                          set.record.encoder, Date().timeIntervalSince(started)))
        if shard == nil {
            for url in try ExtractionOutput.write(set, run: run, to: output) { print("\(url.lastPathComponent): \(url.path)") }
        } else {
            try ExtractionOutput.writeShard(set, to: output)
            print("shard \(selected): \(output.appendingPathComponent(ShardFolder.recordFile).path)")
            print("join the shards with: adwb extract merge <shard folders> --out <folder>")
        }
        try ExtractionOutput.installMaps(from: staging, in: output)
        if featureMaps { print("feature maps: \(output.appendingPathComponent(ExtractionOutput.mapsFolder).path)") }
        report(skipped: set.record.skipped)
    }
}

struct ExtractMergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Join the outputs of `adwb extract --shard i/n` runs into the files one run over the whole manifest writes."
    )

    @Argument(help: "The shards' output folders (all n of them, any order).")
    var shards: [String]

    @Option(help: "Output folder.")
    var out: String

    @Flag(help: "Replace the extraction outputs already in --out.")
    var overwrite = false

    @OptionGroup var compute: ComputeOptions

    func run() throws {
        compute.apply()
        guard !shards.isEmpty else { throw ValidationError("give the shards' folders") }
        let output = URL(fileURLWithPath: out)
        let outputPath = output.resolvingSymlinksInPath().standardizedFileURL.path
        if shards.contains(where: { URL(fileURLWithPath: $0).resolvingSymlinksInPath().standardizedFileURL.path == outputPath }) {
            throw ValidationError("--out must not be one of the shards' folders (their files and maps would be replaced)")
        }
        try ExtractionOutput.prepare(output, overwrite: overwrite)
        let set = try ShardFolder.merge(try shards.map { try ShardFolder.read(URL(fileURLWithPath: $0)) })
        var run = try PretrainedRun.load(URL(fileURLWithPath: set.record.model))
        if let seed = set.record.untrainedSeed { run = try run.untrained(seed: seed) }
        try ExtractionOutput.checkModel(run, matches: set.record)
        extractLog("merged \(shards.count) shards: \(set.record.rows.count) scans, \(set.record.featureCount) features each")
        for url in try ExtractionOutput.write(set, run: run, to: output) { print("\(url.lastPathComponent): \(url.path)") }
        // Feature maps stay in the shards' folders; an earlier run's here would contradict these outputs.
        try ExtractionOutput.installMaps(from: nil, in: output)
        report(skipped: set.record.skipped)
    }
}

private func report(skipped: [SkippedScan]) {
    guard !skipped.isEmpty else { return }
    print("skipped \(skipped.count) scan(s):")
    for scan in skipped { print("  \(scan)") }
}

private func extractLog(_ text: String) { FileHandle.standardError.write(Data(("extract: " + text + "\n").utf8)) }

extension RegionPooling: ExpressibleByArgument {}
extension DeepSAELayers: ExpressibleByArgument {}
