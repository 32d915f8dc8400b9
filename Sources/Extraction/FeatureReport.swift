import Autoencoders
import Cohort
import Foundation
import NeuralNet
import Patches
import Reports
import TensorCore
import VolumeIO

/// Where a feature comes from: its map channel and the region it pools, with the region's
/// centre in the reference scan's voxels and in world millimetres.
public struct FeatureOrigin: Sendable, Codable, Equatable {
    public var feature: Int
    public var name: String
    public var channel: Int
    public var region: [Int]
    public var centreVoxel: [Double]
    public var centreWorld: [Double]

    enum CodingKeys: String, CodingKey {
        case feature, name, channel, region
        case centreVoxel = "centre_voxel", centreWorld = "centre_world_mm"
    }
}

/// The feature report of an extraction: `feature_stats.tsv` (per-feature statistics),
/// `summary.json` (the headline figures) and `report.html` (self-contained: inline SVG and
/// PNG, no script, no network), with the top discriminative features and their regions, a
/// PCA projection coloured by diagnosis, the first-layer filters, reconstruction examples and
/// the pretraining loss curves.
public struct FeatureReport {
    public let set: FeatureSet
    public let run: PretrainedRun
    public let statistics: FeatureStatistics
    public let origins: [FeatureOrigin]
    /// Rows shown in the top-features table and listed in `summary.json`.
    public var topCount = 20

    public init(set: FeatureSet, run: PretrainedRun) throws {
        self.set = set
        self.run = run
        statistics = FeatureStatistics(values: set.values, labels: set.record.rows.map(\.diagnosis),
                                       participants: set.record.rows.map(\.participantID))
        origins = try Self.origins(set.record, run: run)
    }

    /// Each feature's channel and region, placed on the first extracted scan's grid.
    static func origins(_ record: ExtractionRecord, run: PretrainedRun) throws -> [FeatureOrigin] {
        guard let reference = record.rows.first else { return [] }
        let encoder = try FeatureEncoder(run: run, options: record.options)
        let shape = Triple(reference.shape[0], reference.shape[1], reference.shape[2])
        let grid = try RegionGrid(mapShape: encoder.mapShape(for: shape), grid: record.options.grid)
        let affine = Affine(entries: reference.affine)
        let names = FeatureExport.featureNames(record)
        let regions = (0..<grid.count).map { region -> (voxel: [Double], world: [Double]) in
            let centre = grid.centre(of: region)
            let voxel = (0..<3).map { axis -> Double in
                let (scale, offset) = encoder.mapToInput(axis: axis)
                return scale * centre[axis] + offset
            }
            return (voxel, affine.apply(voxel))
        }
        return names.indices.map { feature in
            let (channel, region) = (feature / grid.count, feature % grid.count)
            let (i, j, k) = grid.indices(of: region)
            return FeatureOrigin(feature: feature, name: names[feature], channel: channel, region: [i, j, k],
                                 centreVoxel: regions[region].voxel, centreWorld: regions[region].world)
        }
    }

    /// The three files' names and bytes.
    public func files() throws -> [(name: String, bytes: Data)] {
        let projection = try? pca()
        return [(ExtractionOutput.statisticsFile, Data(statisticsTable().utf8)),
                (ExtractionOutput.summaryFile, try summaryJSON(projection: projection)),
                (ExtractionOutput.reportFile, Data(html(projection: projection).utf8))]
    }

    // MARK: feature_stats.tsv

    /// One row per feature: origin, per-class mean and SD, per-contrast d, AUC, t, p, q.
    func statisticsTable() -> String {
        var header = ["feature", "name", "channel", "region_i", "region_j", "region_k", "centre_voxel_i", "centre_voxel_j",
                      "centre_voxel_k", "centre_x_mm", "centre_y_mm", "centre_z_mm"]
        for summary in statistics.classes { header += ["n_\(summary.diagnosis.rawValue)", "mean_\(summary.diagnosis.rawValue)", "std_\(summary.diagnosis.rawValue)"] }
        for contrast in statistics.contrasts {
            let key = contrast.contrast.key
            header += ["cohens_d_\(key)", "auc_\(key)", "welch_t_\(key)", "p_\(key)", "q_bh_\(key)"]
        }
        var text = header.joined(separator: "\t") + "\n"
        for origin in origins {
            let f = origin.feature
            var fields = [String(f), origin.name, String(origin.channel)] + origin.region.map(String.init)
            fields += (origin.centreVoxel + origin.centreWorld).map { Self.number($0) }
            for summary in statistics.classes {
                fields += [String(summary.count), Self.number(summary.mean[f]), Self.number(summary.standardDeviation[f])]
            }
            for contrast in statistics.contrasts {
                fields += [contrast.cohensD[f], contrast.auc[f], contrast.t[f], contrast.p[f], contrast.q[f]].map { Self.number($0) }
            }
            text += fields.joined(separator: "\t") + "\n"
        }
        return text
    }

    /// Shortest round-trip decimal; `NaN`, `inf`, `-inf` as numpy/pandas read them.
    static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "inf" : "-inf" }
        return "\(value)"
    }

    // MARK: PCA

    /// A 2-D principal-component projection of the standardised features.
    struct Projection {
        /// `[N][2]` scores.
        var scores: [[Double]]
        /// Fraction of the total variance along each of the two components.
        var explained: [Double]
    }

    /// PCA through LAPACK's SVD of the centred, standardised feature matrix `Z = U S Vᵀ`:
    /// scores `U[:, :2]·S[:2]`, explained variance `s²/Σs²`. Each component's sign is fixed
    /// so that its largest score (in magnitude) is positive.
    func pca() throws -> Projection? {
        let (n, f) = (set.values.shape[0], set.values.shape[1])
        guard n >= 3, f >= 2 else { return nil }
        var z = [Float](repeating: 0, count: n * f)
        let x = set.values.scalars
        for feature in 0..<f {
            let column = (0..<n).map { Double(x[$0 * f + feature]) }
            let (mean, sd) = (Statistics.mean(column), Statistics.standardDeviation(column))
            // Constant features carry no variance and stay 0.
            guard sd > 0, sd.isFinite else { continue }
            for r in 0..<n { z[r * f + feature] = Float((column[r] - mean) / sd) }
        }
        let (u, s, _) = try LinearAlgebra.svd(try Tensor(shape: [n, f], scalars: z))
        let rank = s.count
        let total = s.scalars.reduce(0.0) { $0 + Double($1) * Double($1) }
        guard rank >= 2, total > 0 else { return nil }
        var scores = [[Double]](repeating: [0, 0], count: n)
        for component in 0..<2 {
            var column = (0..<n).map { Double(u.scalars[$0 * rank + component]) * Double(s.scalars[component]) }
            if let extreme = column.max(by: { abs($0) < abs($1) }), extreme < 0 { column = column.map { -$0 } }
            for r in 0..<n { scores[r][component] = column[r] }
        }
        let explained = (0..<2).map { Double(s.scalars[$0]) * Double(s.scalars[$0]) / total }
        return Projection(scores: scores, explained: explained)
    }

    // MARK: summary.json

    struct ContrastHeadline: Codable {
        var contrast: String
        var positive: Int
        var negative: Int
        var significantFeatures: Int
        var bestAUC: Double
        var meanTop10Separation: Double

        enum CodingKeys: String, CodingKey {
            case contrast, positive, negative
            case significantFeatures = "features_q_below_0_05", bestAUC = "best_separation_auc", meanTop10Separation = "mean_top10_separation_auc"
        }
    }

    struct TopFeature: Codable {
        var origin: FeatureOrigin
        var cohensD: Double
        var auc: Double
        var p: Double
        var q: Double

        enum CodingKeys: String, CodingKey { case origin, cohensD = "cohens_d", auc, p, q }
    }

    struct Summary: Codable {
        var adwbVersion: String
        var scans: Int
        var features: Int
        var featureChannels: Int
        var grid: [Int]
        var pooling: RegionPooling
        var encoder: String
        var modelKind: ModelKind
        var model: String
        var modelSha256: String
        var modelConfigSha256: String
        var untrainedSeed: UInt64?
        var manifest: String
        var manifestSha256: String
        var classes: [String: Int]
        var unlabelled: Int
        var commonGrid: Bool
        var referenceScan: String?
        var contrasts: [ContrastHeadline]
        var primaryContrast: String?
        var topFeatures: [TopFeature]
        var pcaExplainedVariance: [Double]?
        var skipped: [SkippedScan]
        /// The whole record (every row's grid and affine among it), so that a classifier of
        /// these features can place them in the scans' space.
        var extraction: ExtractionRecord

        enum CodingKeys: String, CodingKey {
            case scans, features, grid, pooling, encoder, model, manifest, contrasts, skipped, extraction
            case classes = "participants_per_class", unlabelled = "unlabelled_scans"
            case adwbVersion = "adwb_version", featureChannels = "feature_channels", modelKind = "model_kind"
            case modelSha256 = "model_sha256", modelConfigSha256 = "model_config_sha256", untrainedSeed = "untrained_seed"
            case manifestSha256 = "manifest_sha256"
            case commonGrid = "common_grid", referenceScan = "reference_scan", primaryContrast = "primary_contrast"
            case topFeatures = "top_features", pcaExplainedVariance = "pca_explained_variance_ratio"
        }
    }

    /// Whether every scan has the first one's extents and affine (so a region is the same
    /// place in all of them).
    var commonGrid: Bool {
        guard let first = set.record.rows.first else { return true }
        return set.record.rows.allSatisfy { $0.shape == first.shape && $0.affine == first.affine }
    }

    func topFeatures(_ contrast: FeatureStatistics.ContrastSummary) -> [TopFeature] {
        contrast.ranking().prefix(topCount).map { f in
            TopFeature(origin: origins[f], cohensD: contrast.cohensD[f], auc: contrast.auc[f], p: contrast.p[f], q: contrast.q[f])
        }
    }

    func summaryJSON(projection: Projection?) throws -> Data {
        let record = set.record
        var classes: [String: Int] = [:]
        for summary in statistics.classes { classes[summary.diagnosis.rawValue] = summary.count }
        let headlines = statistics.contrasts.map { contrast in
            ContrastHeadline(
                contrast: contrast.contrast.description,
                positive: statistics.classes.first { $0.diagnosis == contrast.contrast.positive }?.count ?? 0,
                negative: statistics.classes.first { $0.diagnosis == contrast.contrast.negative }?.count ?? 0,
                significantFeatures: contrast.q.filter { $0 < 0.05 }.count,
                bestAUC: statistics.meanTopSeparation(contrast, top: 1),
                meanTop10Separation: statistics.meanTopSeparation(contrast, top: 10))
        }
        let summary = Summary(
            adwbVersion: record.adwbVersion, scans: record.rows.count, features: record.featureCount, featureChannels: record.featureChannels,
            grid: record.options.grid, pooling: record.options.pooling, encoder: record.encoder, modelKind: record.modelKind,
            model: record.model, modelSha256: record.modelSha256, modelConfigSha256: record.modelConfigSha256, untrainedSeed: record.untrainedSeed, manifest: record.manifest,
            manifestSha256: record.manifestSha256, classes: classes, unlabelled: record.rows.filter { $0.diagnosis == nil }.count,
            commonGrid: commonGrid, referenceScan: record.rows.first.map { "\($0.participantID)/\($0.sessionID)" },
            contrasts: headlines, primaryContrast: statistics.primary?.contrast.description,
            topFeatures: statistics.primary.map(topFeatures) ?? [], pcaExplainedVariance: projection?.explained,
            skipped: record.skipped, extraction: record)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "NaN")
        return try encoder.encode(summary)
    }

    // MARK: report.html

    static let diagnosisColours: [Diagnosis?: String] = [.cn: "#0072B2", .mci: "#E69F00", .ad: "#D55E00", nil: "#999999"]

    func html(projection: Projection?) -> String {
        var document = HTMLDocument(title: "ADWorkbench feature report")
        document.addSection(id: "overview", title: "Overview", body: overview())
        document.addSection(id: "top-features", title: "Top discriminative features", body: topFeaturesSection())
        document.addSection(id: "pca", title: "PCA projection", body: pcaSection(projection))
        document.addSection(id: "filters", title: "First-layer filters", body: filtersSection())
        document.addSection(id: "reconstructions", title: "Reconstruction examples", body: reconstructionSection())
        document.addSection(id: "training", title: "Pretraining loss curves", body: lossSection())
        return document.render()
    }

    /// The report's key sections for a larger report (`adwb compare`): top features, PCA,
    /// first-layer filters and loss curves, as (id, title, XHTML body).
    public func keySections() -> [(id: String, title: String, body: String)] {
        [("top-features", "Top discriminative features", topFeaturesSection()),
         ("pca", "PCA projection", pcaSection(try? pca())),
         ("filters", "First-layer filters", filtersSection()),
         ("training", "Pretraining loss curves", lossSection())]
    }

    func overview() -> String {
        let record = set.record
        let counts = statistics.classes.map { "\($0.diagnosis.rawValue) \($0.count)" }
        let unlabelled = record.rows.filter { $0.diagnosis == nil }.count
        var rows: [[String]] = [
            ["scans", "\(record.rows.count)" + (record.skipped.isEmpty ? "" : " (\(record.skipped.count) skipped)")],
            ["participants per class", (counts + (unlabelled > 0 ? ["unlabelled scans \(unlabelled)"] : [])).joined(separator: ", ")
                + " (statistics count participants: a participant's sessions with one diagnosis are averaged)"],
            ["features per scan", "\(record.featureCount) = \(record.featureChannels) channels × \(record.options.grid.map(String.init).joined(separator: "×")) regions (\(record.options.pooling.rawValue) pooling)"],
            ["encoder", "\(record.modelKind.rawValue.uppercased()): \(record.encoder)"],
            ["weights", record.untrainedSeed.map { "untrained, drawn from seed \($0) (baseline)" } ?? "trained (\(record.model))"],
            ["model SHA-256", record.modelSha256],
            ["manifest", record.manifest],
            ["manifest SHA-256", record.manifestSha256],
            ["normalisation", run.config.patches.normalization.rawValue],
            ["scan grids", commonGrid ? "all scans share one grid (regions are the same place in each)"
                : "scans differ in extents or affine: regions are placed on the reference scan's grid"],
        ]
        if let first = record.rows.first { rows.append(["reference scan", "\(first.participantID)/\(first.sessionID)"]) }
        var body = XHTML.table(header: ["", ""], rows: rows, numericColumns: [])
        if !record.skipped.isEmpty {
            body += "<p>Skipped scans:</p><ul>" + record.skipped.map { "<li>\(XHTML.escape($0.description))</li>" }.joined() + "</ul>"
        }
        return body
    }

    func topFeaturesSection() -> String {
        guard let primary = statistics.primary else {
            return "<p>No two diagnostic groups have at least two participants each, so there is nothing to compare.</p>"
        }
        let classNames = statistics.classes.map(\.diagnosis.rawValue)
        let header = ["feature", "channel", "region (i,j,k)", "centre voxel", "centre (mm)"] + classNames.map { "mean \($0)" }
            + ["Cohen's d", "AUC", "p (Welch)", "q (BH)"]
        func format(_ value: Double) -> String { value.isFinite ? String(format: "%.3g", value) : Self.number(value) }
        let rows = primary.ranking().prefix(topCount).map { f -> [String] in
            let origin = origins[f]
            return [origin.name, "\(origin.channel)", origin.region.map(String.init).joined(separator: ","),
                    origin.centreVoxel.map { String(format: "%.1f", $0) }.joined(separator: ", "),
                    origin.centreWorld.map { String(format: "%.1f", $0) }.joined(separator: ", ")]
                + statistics.classes.map { format($0.mean[f]) }
                + [format(primary.cohensD[f]), format(primary.auc[f]), format(primary.p[f]), format(primary.q[f])]
        }
        let numeric = Set(5..<header.count)
        var body = "<p>Contrast: <strong>\(XHTML.escape(primary.contrast.description))</strong>. Features ranked by the "
            + "Benjamini–Hochberg q-value of Welch's t-test, then by ROC AUC distance from 0.5. AUC &gt; 0.5: higher in "
            + "\(primary.contrast.positive.rawValue). \(primary.q.filter { $0 < 0.05 }.count) of \(primary.q.count) features have q &lt; 0.05; "
            + "the mean of the ten best separations max(AUC, 1 − AUC) is \(String(format: "%.3f", statistics.meanTopSeparation(primary, top: 10))). "
            + "Region centres are on the reference scan's grid; all statistics per feature are in feature_stats.tsv.</p>"
        body += XHTML.table(header: header, rows: Array(rows), numericColumns: numeric)
        body += SVGPlot.histogram(primary.auc.filter(\.isFinite), bins: 20, title: "ROC AUC of every feature (\(primary.contrast))",
                                  xLabel: "AUC", yLabel: "features")
        for other in statistics.contrasts.dropFirst() {
            body += "<p>\(XHTML.escape(other.contrast.description)): \(other.q.filter { $0 < 0.05 }.count) features with q &lt; 0.05; "
                + "mean of the ten best separations \(String(format: "%.3f", statistics.meanTopSeparation(other, top: 10))).</p>"
        }
        return body
    }

    func pcaSection(_ projection: Projection?) -> String {
        guard let projection else { return "<p>Too few scans or features for a projection.</p>" }
        let rows = set.record.rows
        let groups: [Diagnosis?] = [.cn, .mci, .ad, nil]
        let series = groups.compactMap { group -> PlotSeries? in
            let points = rows.indices.filter { rows[$0].diagnosis == group }.map { (x: projection.scores[$0][0], y: projection.scores[$0][1]) }
            guard !points.isEmpty else { return nil }
            return PlotSeries(name: group?.rawValue ?? "unlabelled", points: points, color: Self.diagnosisColours[group] ?? "#999999")
        }
        let (a, b) = (projection.explained[0] * 100, projection.explained[1] * 100)
        return "<p>Scans projected on the first two principal components of the standardised features (z-scored per feature).</p>"
            + SVGPlot.scatter(series, title: "PCA of the features, coloured by diagnosis",
                              xLabel: String(format: "PC1 (%.1f%% of variance)", a), yLabel: String(format: "PC2 (%.1f%% of variance)", b))
    }

    /// The central plane of a `[d, h, w]` block (row-major `values`) across its thinnest axis
    /// (the first of equals), so 2-D patches show their plane whichever axis is flat.
    /// - Returns: the plane row-major, its width and height, and the axis cut (0, 1, 2).
    static func centralSlice(_ values: ArraySlice<Float>, extent: Triple) -> (tile: [Float], width: Int, height: Int, axis: Int) {
        let sizes = extent.array
        let axis = sizes.indices.min { sizes[$0] < sizes[$1] }!
        let (rows, columns) = axis == 0 ? (1, 2) : axis == 1 ? (0, 2) : (0, 1)
        let strides = [extent.h * extent.w, extent.w, 1]
        let base = values.startIndex + sizes[axis] / 2 * strides[axis]
        var tile: [Float] = []
        tile.reserveCapacity(sizes[rows] * sizes[columns])
        for r in 0..<sizes[rows] {
            for c in 0..<sizes[columns] { tile.append(values[base + r * strides[rows] + c * strides[columns]]) }
        }
        return (tile, sizes[columns], sizes[rows], axis)
    }

    static let axisNames = ["first", "second", "third"]

    /// First-layer filters as central slices across their thinnest axis.
    func filterTiles() -> (tiles: [[Float]], width: Int, height: Int, axis: Int)? {
        let state = Dictionary(Checkpoint.stateEntries(of: run.model.module), uniquingKeysWith: { first, _ in first })
        guard case let .float32(weight) = state["encoder.0.weight"] else { return nil }
        let extent = run.config.patches.extent
        let kernel: Triple = run.config.model == .sae ? extent : Triple(weight.shape[2], weight.shape[3], weight.shape[4])
        let filters = weight.shape[0]
        let size = kernel.product
        guard filters > 0, weight.count == filters * size else { return nil }
        let slices = (0..<filters).map { f in Self.centralSlice(weight.scalars[(f * size)..<((f + 1) * size)], extent: kernel) }
        return (slices.map(\.tile), slices[0].width, slices[0].height, slices[0].axis)
    }

    func filtersSection() -> String {
        guard let (tiles, width, height, axis) = filterTiles() else { return "<p>The model has no first-layer filters to show.</p>" }
        let columns = min(tiles.count, 16)
        let scale = max(1, 48 / max(width, height))
        let montage = Montage.grayscale(tiles: tiles, tileWidth: width, tileHeight: height, columns: columns, scale: scale,
                                        gap: max(2, scale / 3), scaling: .perTile)
        let png = PNGImage.grayscale(width: montage.width, height: montage.height, pixels: montage.pixels)
        return SVGPlot.image(png: png, pixelWidth: montage.width, pixelHeight: montage.height,
                             title: "\(tiles.count) first-layer filters, central slice",
                             caption: "Each tile is one filter's central \(height)×\(width) slice across its \(Self.axisNames[axis]) axis, scaled to its own range (black: most negative weight, white: most positive)."
                                 + (run.untrainedSeed.map { " These are the untrained weights drawn from seed \($0)." } ?? ""))
    }

    /// Up to `count` patches (one per scan, evenly spread over the extracted scans) and the
    /// model's reconstructions, as `[N, 1, d, h, w]` each.
    func reconstructionExamples(count: Int = 6) throws -> (original: Tensor, reconstructed: Tensor)? {
        let rows = set.record.rows
        guard !rows.isEmpty else { return nil }
        // Parsed as extraction parsed it (so row positions agree), and only if it is unchanged.
        let (manifest, _, _) = try Pretraining.readManifest(URL(fileURLWithPath: set.record.manifest), expectedSha: set.record.manifestSha256,
                                                            skipBad: true)
        let chosen = (0..<min(count, rows.count)).map { rows[$0 * rows.count / min(count, rows.count)].index }
        let sources = Pretraining.scanSources(manifest)
        guard chosen.allSatisfy({ $0 < sources.count }) else { return nil }
        var options = run.config.patches
        options.patchesPerEpoch = chosen.count
        options.augmentation = PatchAugmentation()
        let cache = ScanCache(sources: chosen.map { sources[$0] }, options: options, megabytes: 256)
        let sampler = try PatchSampler(scans: Array(chosen.indices), options: options, seed: SplitMix64.derive(run.config.seed, 0x6_0000))
        let stream = PatchStream(sampler: sampler, cache: cache, epoch: 0, batchSize: chosen.count)
        guard let batch = try stream.next() else { return nil }
        let original = batch.patches
        let reconstructed: Tensor
        switch run.model {
        case let sae as StackedAutoencoder: reconstructed = try sae.reconstruct(original).reshaped(original.shape)
        default: reconstructed = try run.model.module.forward(original, mode: .inference)
        }
        return (original, reconstructed)
    }

    func reconstructionSection() -> String {
        let examples: (original: Tensor, reconstructed: Tensor)?
        do { examples = try reconstructionExamples() } catch {
            return "<p>No examples: \(XHTML.escape(String(describing: error)))</p>"
        }
        guard let (original, reconstructed) = examples else { return "<p>No scans to draw examples from.</p>" }
        let n = original.shape[0]
        let extent = Triple(original.shape[2], original.shape[3], original.shape[4])
        let size = extent.product
        func slice(_ t: Tensor, _ i: Int) -> (tile: [Float], width: Int, height: Int, axis: Int) {
            Self.centralSlice(t.scalars[(i * size)..<((i + 1) * size)], extent: extent)
        }
        let (w, h) = (slice(original, 0).width, slice(original, 0).height)
        let tiles = (0..<n).map { slice(original, $0).tile } + (0..<n).map { slice(reconstructed, $0).tile }
        let scale = max(1, 96 / max(h, w))
        let montage = Montage.grayscale(tiles: tiles, tileWidth: w, tileHeight: h, columns: n, scale: scale, gap: 2, scaling: .shared)
        let png = PNGImage.grayscale(width: montage.width, height: montage.height, pixels: montage.pixels)
        let error = zip(original.scalars, reconstructed.scalars).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) } / Double(original.count)
        return SVGPlot.image(png: png, pixelWidth: montage.width, pixelHeight: montage.height,
                             title: "Patches (top row) and their reconstructions (bottom row)",
                             caption: String(format: "Central %d×%d slices of %d patches (one per scan, drawn with the run's seed) on one grey scale; mean squared error of these patches %.4g.", h, w, n, error)
                                 + (run.untrainedSeed.map { " The model's weights are untrained (seed \($0))." } ?? ""))
    }

    func lossSection() -> String {
        guard let text = try? String(contentsOf: run.directory.log, encoding: .utf8) else {
            return "<p>No training log (\(XHTML.escape(run.directory.log.path))).</p>"
        }
        let lines = text.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        guard let header = lines.first, let phase = header.firstIndex(of: "phase"), let trainMSE = header.firstIndex(of: "train_mse"),
              let validationMSE = header.firstIndex(of: "val_mse") else {
            return "<p>The training log has no loss columns.</p>"
        }
        let baseline = header.firstIndex(of: "val_mean_patch_mse")
        var order: [String] = []
        var train: [String: [(x: Double, y: Double)]] = [:], validation: [String: [(x: Double, y: Double)]] = [:]
        var reference: [(x: Double, y: Double)] = []
        for (epoch, fields) in lines.dropFirst().enumerated() where fields.count == header.count {
            let name = fields[phase]
            if train[name] == nil { order.append(name) }
            let x = Double(epoch + 1)
            train[name, default: []].append((x, Double(fields[trainMSE]) ?? .nan))
            validation[name, default: []].append((x, Double(fields[validationMSE]) ?? .nan))
            if let baseline, name == order.first { reference.append((x, Double(fields[baseline]) ?? .nan)) }
        }
        var series: [PlotSeries] = []
        for name in order {
            series.append(PlotSeries(name: "\(name) training", points: train[name] ?? []))
            if validation[name]?.contains(where: { $0.y.isFinite }) ?? false {
                series.append(PlotSeries(name: "\(name) validation", points: validation[name] ?? []))
            }
        }
        if reference.contains(where: { $0.y.isFinite }) {
            series.append(PlotSeries(name: "patch-mean predictor (validation)", points: reference, color: "#999999"))
        }
        let values = series.flatMap(\.points).map(\.y).filter { $0.isFinite && $0 > 0 }
        let logY = (values.max() ?? 1) > 10 * (values.min() ?? 1)
        let note = run.untrainedSeed.map { "<p>These features come from untrained weights (seed \($0)); the curves are those of the trained run, for reference.</p>" } ?? ""
        return note + "<p>Mean squared reconstruction error per epoch from the pretraining log (\(XHTML.escape(run.directory.log.path))); "
            + "epochs are counted across phases (each SAE level is a phase, then fine-tuning). For a deeper SAE level the error is that of "
            + "the codes below it.</p>"
            + SVGPlot.lines(series, title: "Pretraining loss", xLabel: "epoch (all phases)", yLabel: "mean squared error", logY: logY)
    }
}
