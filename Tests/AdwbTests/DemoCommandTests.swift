import Foundation
import Testing
import TestSupport

/// `adwb demo --quick` end to end, as a fresh user runs it, checked from its files alone.
@Test func quickDemoWritesACompleteConsistentReport() throws {
    let scratch = try ScratchFolder("demo-quick")
    defer { scratch.remove() }
    let arguments = ["demo", "--quick", "--dir", scratch.path("demo"), "--out", scratch.path("report"), "--threads", "2"]
    let run = try runBuiltExecutable("adwb", arguments, scratch: scratch)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stdout.contains("report: \(scratch.path("report/index.html"))"))
    #expect(run.stderr.contains("demo: preprocess") && run.stderr.contains("pretrain sae") && run.stderr.contains("cnn-cae: training"))

    // Every section of the report.
    let html = try String(contentsOf: scratch.url("report/index.html"), encoding: .utf8)
    let tree = try XMLTree(html.replacingOccurrences(of: "<!DOCTYPE html>", with: ""))
    let sections = tree.elements.filter { $0.name == "section" }.compactMap { $0.attributes["id"] }
    for id in ["summary", "metrics", "folds", "roc", "confusion", "significance", "pretraining", "features-sae", "features-cae", "provenance"] {
        #expect(sections.contains(id), "section \(id) missing: \(sections)")
    }
    #expect(tree.elements.filter { $0.name == "svg" }.count >= 8)
    #expect(!html.contains("http://") || !html.replacingOccurrences(of: "http://www.w3.org/", with: "").contains("http://"),
            "the report links to nothing outside itself")

    // metrics.tsv against metrics recomputed here from predictions.tsv.
    let predictions = try table(scratch.url("report/predictions.tsv"))
    let metrics = try table(scratch.url("report/metrics.tsv"))
    let backends = ["svm-sae", "svm-cae", "ica-svm", "cnn-cae"]
    #expect(Set(predictions.map { $0["backend"] ?? "" }) == Set(backends))
    var bestBalancedAccuracy = 0.0
    for backend in backends {
        let rows = predictions.filter { $0["backend"] == backend }
        // Every held-out scan once.
        #expect(Set(rows.map { "\($0["participant_id"]!)/\($0["session_id"]!)" }).count == rows.count)
        for fold in Set(rows.map { $0["fold"]! }).sorted() {
            let foldRows = rows.filter { $0["fold"] == fold }
            let expected = try #require(metrics.first { $0["backend"] == backend && $0["fold"] == fold })
            let truth = foldRows.map { $0["diagnosis"] == "AD" }, predicted = foldRows.map { $0["predicted"] == "AD" }
            let tp = Double(zip(truth, predicted).filter { $0 && $1 }.count), tn = Double(zip(truth, predicted).filter { !$0 && !$1 }.count)
            let positives = Double(truth.filter { $0 }.count), negatives = Double(truth.filter { !$0 }.count)
            let accuracy = (tp + tn) / Double(foldRows.count)
            let balanced = (tp / positives + tn / negatives) / 2
            #expect(abs(Double(expected["accuracy"]!)! - accuracy) < 1e-12, "\(backend) fold \(fold)")
            #expect(abs(Double(expected["balanced_accuracy"]!)! - balanced) < 1e-12, "\(backend) fold \(fold)")
            // ROC AUC by counting pairs (ties half).
            let scores = foldRows.map { Double($0["score_AD"]!)! }
            var won = 0.0
            for i in foldRows.indices where truth[i] {
                for j in foldRows.indices where !truth[j] { won += scores[i] > scores[j] ? 1 : scores[i] == scores[j] ? 0.5 : 0 }
            }
            #expect(abs(Double(expected["roc_auc"]!)! - won / (positives * negatives)) < 1e-9, "\(backend) fold \(fold)")
        }
        let mean = try #require(metrics.first { $0["backend"] == backend && $0["fold"] == "mean" })
        bestBalancedAccuracy = max(bestBalancedAccuracy, Double(mean["balanced_accuracy"]!)!)
    }
    // The quick demo is small and short, but its best back end still beats chance.
    #expect(bestBalancedAccuracy > 0.6)

    // A rerun resumes everything and reproduces the numbers.
    let again = try runBuiltExecutable("adwb", ["demo", "--quick", "--dir", scratch.path("demo"), "--out", scratch.path("report-2"), "--threads", "2"],
                                       scratch: scratch)
    #expect(again.status == 0 && again.stderr.contains("reusing") && !again.stderr.contains("training ("))
    #expect(try Data(contentsOf: scratch.url("report/metrics.tsv")) == Data(contentsOf: scratch.url("report-2/metrics.tsv")))
}

@Test func compareRefusesAMissingOrBadExperiment() throws {
    let scratch = try ScratchFolder("compare-bad")
    defer { scratch.remove() }
    try "name: x\nmanifest: none.tsv\nbackends: []\nfoldz: 3\n".write(to: scratch.url("bad.yaml"), atomically: true, encoding: .utf8)
    let run = try runBuiltExecutable("adwb", ["compare", "--config", scratch.path("bad.yaml")], scratch: scratch)
    #expect(run.status != 0 && run.stderr.contains("unknown option 'foldz'"), "\(run.stderr)")
}

/// A TSV file as one dictionary per row.
private func table(_ url: URL) throws -> [[String: String]] {
    let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
    guard let header = lines.first else { return [] }
    return lines.dropFirst().map { Dictionary(uniqueKeysWithValues: zip(header, $0)) }
}
