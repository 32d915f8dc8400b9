import Autoencoders
import Classification
import Foundation
import Reports
import TensorCore
import VolumeIO

/// The comparison's report folder: `index.html` (self-contained: inline SVG, no scripts or
/// external files), `metrics.json`, `metrics.tsv`, `predictions.tsv` and the experiment file.
struct CompareReport {
    static let htmlFile = "index.html"
    static let metricsJSON = "metrics.json"
    static let metricsTSV = "metrics.tsv"
    static let predictionsFile = "predictions.tsv"
    static let configFile = "experiment.yaml"

    let results: CompareResults
    let provenance: Provenance
    let options: CompareOptions
    let folds: [Fold]
    let encoders: [EncoderRecord]
    /// The averaged explanation maps, in `results.explanations`' order, and the mean
    /// anatomy they are drawn over (nil when the scans do not share a grid).
    let maps: [Volume]
    let anatomy: Tensor?

    /// Writes every file (each atomically; `index.html` last) and returns them.
    mutating func write() throws(CompareError) -> [URL] {
        var files: [(String, Data)] = [
            (Self.metricsJSON, try metricsJSON()),
            (Self.metricsTSV, Data(metricsTable().utf8)),
            (Self.predictionsFile, Data(predictionsTable().utf8)),
        ]
        if let text = options.configText { files.append((Self.configFile, Data(text.utf8))) }
        files.append((Self.htmlFile, Data(html().utf8)))
        do { try FileManager.default.createDirectory(at: options.report, withIntermediateDirectories: true) } catch {
            throw .io("cannot create \(options.report.path): \(error.localizedDescription)")
        }
        var written: [URL] = []
        for (name, data) in files {
            let url = options.report.appendingPathComponent(name)
            do { try AtomicFile.write(data, to: url) } catch { throw .io("\(url.path): \(error)") }
            written.append(url)
        }
        return written
    }

    // MARK: data files

    struct MetricsFile: Encodable {
        var results: CompareResults
        var provenance: Provenance
    }

    func metricsJSON() throws(CompareError) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        do { return try encoder.encode(MetricsFile(results: results, provenance: provenance)) } catch { throw .io("encoding metrics.json: \(error)") }
    }

    static func number(_ value: Double) -> String {
        value.isNaN ? "NaN" : value.isInfinite ? (value > 0 ? "inf" : "-inf") : "\(value)"
    }

    /// One row per back end and fold, then its `mean`, `std`, `pooled`, `ci_low`, `ci_high`.
    func metricsTable() -> String {
        var text = (["backend", "fold", "scans", "participants"] + MetricSet.names).joined(separator: "\t") + "\n"
        for backend in results.backends {
            for fold in backend.folds {
                text += ([backend.name, "\(fold.fold ?? -1)", "\(fold.scans)", "\(fold.participants)"]
                    + MetricSet.names.map { Self.number(fold.metrics[$0]) }).joined(separator: "\t") + "\n"
            }
            let rows: [(String, (MetricSummary) -> Double)] = [("mean", \.mean), ("std", \.std), ("pooled", \.pooled), ("ci_low", \.low), ("ci_high", \.high)]
            for (label, value) in rows {
                text += ([backend.name, label, "\(backend.pooled.scans)", "\(backend.pooled.participants)"]
                    + MetricSet.names.map { Self.number(backend.summary[$0].map(value) ?? .nan) }).joined(separator: "\t") + "\n"
            }
        }
        return text
    }

    /// Every held-out prediction: back end, fold, scan, truth, prediction, probabilities and
    /// the scores ROC curves are drawn from.
    func predictionsTable() -> String {
        let classes = results.classes
        let scoreNames = results.classes.count == 2 ? ["score_\(classes[1])"] : classes.map { "score_\($0)" }
        var text = (["backend", "fold", "participant_id", "session_id", "diagnosis", "predicted"] + classes.map { "prob_\($0)" } + scoreNames)
            .joined(separator: "\t") + "\n"
        for backend in results.backends {
            for row in results.predictions[backend.name] ?? [] {
                let scores = row.scores.count == scoreNames.count ? row.scores : Array(repeating: .nan, count: scoreNames.count)
                text += ([backend.name, "\(row.fold)", row.participantID, row.sessionID, classes[row.truth], classes[row.predicted]]
                    + row.probabilities.map(Self.number) + scores.map(Self.number)).joined(separator: "\t") + "\n"
            }
        }
        return text
    }

    // MARK: index.html

    func html() -> String {
        var document = HTMLDocument(title: "ADWorkbench comparison: \(results.experiment) (\(results.task.title))")
        document.addSection(id: "summary", title: "Summary", body: summarySection())
        document.addSection(id: "metrics", title: "Metrics with \(Int((results.confidence * 100).rounded()))% intervals", body: metricsSection())
        document.addSection(id: "folds", title: "Per-fold metrics", body: foldsSection())
        document.addSection(id: "roc", title: "ROC curves", body: rocSection())
        document.addSection(id: "confusion", title: "Confusion matrices", body: confusionSection())
        document.addSection(id: "significance", title: "Paired comparisons", body: significanceSection())
        document.addSection(id: "pretraining", title: "Pretraining loss curves", body: pretrainingSection())
        document.addSection(id: "explanations", title: "Where the models look", body: explanationsSection())
        for (encoder, sections) in featureSections() {
            document.addSection(id: "features-\(encoder)", title: "Feature report: \(encoder) (fold 0)", body: sections)
        }
        document.addSection(id: "provenance", title: "Provenance", body: provenanceSection())
        return document.render()
    }

    static func format(_ value: Double, digits: Int = 3) -> String {
        value.isFinite ? String(format: "%.\(digits)f", value) : "n/a"
    }

    var pretrainingStatement: String {
        switch options.config.pretraining {
        case .perFold:
            return "Encoders were pretrained separately in every fold, on that fold's training participants (labelled and unlabelled)"
                + (options.config.unlabelledManifest == nil ? "" : " and the scans of the unlabelled manifest")
                + ", never on its validation participants."
        case .independent:
            return "Encoders were pretrained once, on an independent unlabelled set that shares no participant with the experiment's manifest."
        }
    }

    func summarySection() -> String {
        let config = options.config
        var text = "<p>\(results.backends.count) back ends compared on the same \(results.folds) participant-level folds"
            + " (\(config.splits == nil ? "stratified by diagnosis, made from seed \(config.seed)" : "given in \(XHTML.escape(config.splits ?? ""))")); "
            + "every back end saw the same held-out scans. \(XHTML.escape(pretrainingStatement)) "
            + "Standardisers, ICA, the SVMs' grid searches (participant-level inner folds) and the CNN head's early stopping were fitted "
            + "inside each fold's training participants.</p>\n"
        if let best = results.best, let ba = best.summary["balanced_accuracy"] {
            text += "<p>Highest mean balanced accuracy: <strong>\(XHTML.escape(best.name))</strong>, \(Self.format(ba.mean)) ± \(Self.format(ba.std)) "
                + "over the folds (pooled \(Self.format(ba.pooled)), \(Int((results.confidence * 100).rounded()))% bootstrap interval "
                + "\(Self.format(ba.low))–\(Self.format(ba.high))).</p>\n"
        }
        var rows: [[String]] = []
        for backend in results.backends {
            rows.append([backend.name, backend.kind, backend.input, backend.encoder ?? "-", "\(backend.pooled.scans)", "\(backend.pooled.participants)"])
        }
        text += XHTML.table(header: ["back end", "kind", "input", "encoder", "held-out scans", "participants"], rows: rows, numericColumns: [4, 5])
        if !results.notes.isEmpty {
            text += "<p>Notes from the back ends:</p><ul>" + results.notes.map { "<li>\(XHTML.escape($0))</li>" }.joined() + "</ul>\n"
        }
        return text
    }

    func metricsSection() -> String {
        let rows = results.backends.map { backend in
            [backend.name] + MetricSet.names.map { name -> String in
                guard let s = backend.summary[name] else { return "n/a" }
                return "\(Self.format(s.mean)) ± \(Self.format(s.std)) [\(Self.format(s.low)), \(Self.format(s.high))]"
            }
        }
        return "<p>Mean ± standard deviation over the folds, with the \(Int((results.confidence * 100).rounded()))% percentile bootstrap interval "
            + "(\(results.bootstrapReplicates) replicates resampling participants, on all held-out predictions pooled) in brackets. "
            + (results.classes.count == 2
                ? "Sensitivity, precision and F1 are those of \(XHTML.escape(results.classes[1])); specificity is the recall of \(XHTML.escape(results.classes[0]))."
                : "Sensitivity, specificity, precision and F1 are macro averages over the classes; ROC AUC is one-vs-rest, averaged.")
            + "</p>\n" + XHTML.table(header: ["back end"] + MetricSet.titles, rows: rows, numericColumns: Set(1...MetricSet.names.count))
    }

    func foldsSection() -> String {
        var rows: [[String]] = []
        for backend in results.backends {
            for fold in backend.folds {
                rows.append([backend.name, "\(fold.fold ?? -1)", "\(fold.scans)"] + MetricSet.names.map { Self.format(fold.metrics[$0]) })
            }
        }
        let plot = SVGPlot.scatter(results.backends.enumerated().map { index, backend in
            PlotSeries(name: backend.name, points: backend.folds.map { (x: Double($0.fold ?? 0) + 0.08 * (Double(index) - Double(results.backends.count - 1) / 2),
                                                                          y: $0.metrics.balancedAccuracy) })
        }, title: "Balanced accuracy per fold", xLabel: "fold", yLabel: "balanced accuracy")
        return plot + XHTML.table(header: ["back end", "fold", "scans"] + MetricSet.titles, rows: rows, numericColumns: Set(1..<(3 + MetricSet.names.count)))
    }

    func rocSection() -> String {
        let positives = results.backends.flatMap { $0.roc.map(\.positive) }
        var seen: Set<String> = []
        var body = "<p>Pooled held-out predictions of every fold (scores: class probabilities, or decision values where a model has none).</p>\n"
        for positive in positives where seen.insert(positive).inserted {
            let series = results.backends.compactMap { backend -> PlotSeries? in
                guard let curve = backend.roc.first(where: { $0.positive == positive }) else { return nil }
                return PlotSeries(name: "\(backend.name) (AUC \(Self.format(curve.auc)))", points: curve.points.map { (x: $0[0], y: $0[1]) })
            } + [PlotSeries(name: "chance", points: [(0, 0), (1, 1)], color: "#bbbbbb")]
            let title = results.classes.count == 2 ? "ROC: \(results.task.title)" : "ROC: \(positive) against the rest"
            body += SVGPlot.lines(series, title: title, xLabel: "false-positive rate", yLabel: "true-positive rate", width: 520, height: 460)
        }
        let missing = results.backends.filter { $0.roc.isEmpty }.map(\.name)
        if !missing.isEmpty { body += "<p>No scores to draw a curve from: \(XHTML.escape(missing.joined(separator: ", "))).</p>\n" }
        return body
    }

    func confusionSection() -> String {
        var body = "<p>All folds pooled; rows are the true diagnosis, columns the prediction.</p>\n"
        for backend in results.backends {
            body += "<h3>\(XHTML.escape(backend.name))</h3>\n"
            let rows = results.classes.enumerated().map { index, name in
                ["true \(name)"] + backend.pooled.confusion[index].map(String.init)
            }
            body += XHTML.table(header: [""] + results.classes.map { "predicted \($0)" }, rows: rows, numericColumns: Set(1...results.classes.count))
        }
        return body
    }

    func significanceSection() -> String {
        guard !results.paired.isEmpty else { return "<p>One back end: nothing to compare.</p>" }
        let rows = results.paired.map { test in
            [test.first, test.second, "\(test.mcNemarB)", "\(test.mcNemarC)", String(format: "%.3g", test.mcNemarP) + (test.mcNemarExact ? " (exact)" : ""),
             Self.format(test.meanDifference), Self.format(test.t, digits: 2), String(format: "%.3g", test.p)]
        }
        return "<p>McNemar's test on the pooled held-out scans (b: only the first back end right, c: only the second; exact binomial below "
            + "25 discordant scans, else χ² with continuity correction), and Nadeau &amp; Bengio's corrected resampled t-test on the "
            + "per-fold balanced-accuracy differences (first − second; variance inflated by n₂/n₁ = "
            + "\(Self.format(results.testFraction / (1 - results.testFraction)))). p-values are not corrected for the number of pairs.</p>\n"
            + XHTML.table(header: ["first", "second", "b", "c", "McNemar p", "mean Δ balanced accuracy", "t", "p (corrected t)"], rows: rows,
                          numericColumns: Set(2...7))
    }

    func explanationsSection() -> String {
        guard !results.explanations.isEmpty else {
            return "<p>No explanation maps (explanations are off, or no back end makes them: occlusion needs a CNN head on volumes, weight maps a linear SVM).</p>"
        }
        var body = "<p>Each map is the mean over folds of the per-fold maps (NIfTI files beside this page, on the scans' grid: FSLeyes, "
            + "MRIcron or nilearn open them). Occlusion: the drop in the true class's probability when a cube around a voxel is blanked, "
            + "averaged over correctly classified validation scans of the class. Weight maps: the linear SVM's weights per training SD, "
            + "mapped through the pooling regions (deep features) or the ICA components (voxels). Slices through each map's strongest "
            + "voxel over the mean of the task's scans; red positive, blue negative.</p>\n"
        for (summary, map) in zip(results.explanations, maps) {
            let title = "\(summary.backend): \(summary.kind)\(summary.className.map { " (\($0))" } ?? "")"
            let caption = "\(summary.values) Mean of \(summary.folds) fold\(summary.folds == 1 ? "" : "s")\(summary.scans.map { ", \($0) scans" } ?? ""); file \(summary.file)."
            if let anatomy, let figure = ExplanationFigure.render(anatomy: anatomy, map: map.data) {
                body += SVGPlot.image(png: figure.png, pixelWidth: figure.width, pixelHeight: figure.height, title: title, caption: caption)
            } else {
                body += "<p><strong>\(XHTML.escape(title))</strong>: \(XHTML.escape(caption)) (no figure: the map is empty or the scans do not share a grid)</p>\n"
            }
        }
        return body
    }

    /// Validation reconstruction error per epoch of every pretraining run, one plot per encoder.
    func pretrainingSection() -> String {
        var body = "<p>\(XHTML.escape(pretrainingStatement)) Validation MSE on held-out patches of the pretraining participants.</p>\n"
        for name in Array(NSOrderedSet(array: encoders.map(\.name))) as? [String] ?? [] {
            let series = encoders.filter { $0.name == name }.compactMap { record -> PlotSeries? in
                let points = Self.lossCurve(URL(fileURLWithPath: record.run))
                guard !points.isEmpty else { return nil }
                return PlotSeries(name: record.fold.map { "fold \($0)" } ?? "shared", points: points)
            }
            guard !series.isEmpty else { continue }
            body += SVGPlot.lines(series, title: "\(name): validation MSE", xLabel: "epoch (all phases in order)", yLabel: "MSE")
        }
        return body
    }

    /// (epoch, validation MSE) from a run's `training_log.csv`, epochs numbered across phases.
    static func lossCurve(_ run: URL) -> [(x: Double, y: Double)] {
        guard let text = try? String(contentsOf: RunDirectory(run).log, encoding: .utf8) else { return [] }
        let lines = text.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        guard let header = lines.first, let column = header.firstIndex(of: "val_mse") else { return [] }
        return lines.dropFirst().enumerated().compactMap { index, fields in
            guard fields.count == header.count, let value = Double(fields[column]), value.isFinite else { return nil }
            return (Double(index + 1), value)
        }
    }

    /// Fold 0's (or the shared) feature-report sections per encoder with features.
    func featureSections() -> [(String, String)] {
        var seen: Set<String> = []
        var result: [(String, String)] = []
        for record in encoders where record.fold ?? 0 == 0 {
            guard let folder = record.features, seen.insert(record.name).inserted else { continue }
            let sections = ReportSections.read(URL(fileURLWithPath: folder)).filter { $0.id != "training" }
            guard !sections.isEmpty else { continue }
            result.append((record.name, sections.map { "<h3>\(XHTML.escape($0.title))</h3>\n\($0.body)" }.joined(separator: "\n")))
        }
        return result
    }

    func provenanceSection() -> String {
        let p = provenance
        var rows: [[String]] = [
            ["adwb", "\(p.adwbVersion) (\(p.compareVersion))"],
            ["started", p.started],
            ["seed", "\(p.seed)"],
            ["manifest", p.manifest],
            ["manifest SHA-256", p.manifestSha256],
            ["cohort fingerprint", p.cohortFingerprint],
            ["scans / participants", "\(p.scans) / \(p.participants)"],
            ["folds", p.folds.joined(separator: ", ")],
            ["stage outputs", p.work],
            ["machine", p.machine.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")],
            ["threads", "\(p.threads)"],
        ]
        for record in encoders {
            rows.append(["encoder \(record.name)\(record.fold.map { ", fold \($0)" } ?? "")", "\(record.origin): \(record.run)"])
        }
        for (stage, seconds) in p.seconds.sorted(by: { $0.key < $1.key }) { rows.append(["time: \(stage)", String(format: "%.1f s", seconds)]) }
        var body = XHTML.table(header: ["", ""], rows: rows, numericColumns: [])
        if let text = p.configurationText {
            body += "<h3>Experiment file</h3>\n<pre>\(XHTML.escape(text))</pre>\n"
        }
        return body
    }
}
