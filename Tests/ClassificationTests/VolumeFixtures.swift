import Autoencoders
@testable import Classification
import Cohort
import Foundation
import TensorCore
import Testing
import VolumeIO

/// A tiny labelled synthetic cohort for the back ends that read scans (voxel ICA, the CNN
/// on whole volumes): 20 participants (10 CN, 10 AD), 32³ voxels at 6 mm, one session each;
/// split with 20% of each class held out as test and two folds of the rest (split-0: 8
/// training, 8 validation, 4 test participants). Generated once per process, removed at exit.
enum VolumeCohort {
    static let folder = FileManager.default.temporaryDirectory.appendingPathComponent("adwb-classify-cohort-\(getpid())")

    static let manifest: URL = {
        atexit { try? FileManager.default.removeItem(at: VolumeCohort.folder) }
        var options = SyntheticCohortOptions()
        options.participants = 20
        options.seed = 21
        options.shape = [32, 32, 32]
        options.voxelSize = 6
        options.proportions = [0.5, 0, 0.5]
        options.unlabeledFraction = 0
        options.secondSessionFraction = 0
        do {
            return try SyntheticCohort.generate(options, to: folder.appendingPathComponent("cohort"), generator: "ClassificationTests").manifestURL
        } catch {
            fatalError("cannot generate the classification test cohort: \(error)")
        }
    }()

    /// `split/split-0` (with `split/test.tsv`).
    static let split: URL = {
        let directory = folder.appendingPathComponent("split")
        do {
            let source = try Manifest(contentsOf: manifest)
            try CohortSplitter.split(source, options: SplitOptions(folds: 2, testFraction: 0.2, seed: 3)).write(to: directory, source: source)
        } catch {
            fatalError("cannot split the classification test cohort: \(error)")
        }
        return directory.appendingPathComponent("split-0")
    }()

    /// A two-level CAE (4 and 8 channels, 3³ kernels, 8³ z-scored patches), trained briefly:
    /// its encoder maps a 32³ scan to 8 channels of 8³.
    static let caeRun: URL = {
        var config = PretrainConfig(model: .cae)
        config.seed = 4
        config.patches.size = [8, 8, 8]
        config.patches.patchesPerEpoch = 128
        config.cae!.channels = [4, 8]
        config.training.batchSize = 16
        config.training.epochs = 2
        config.training.validationFraction = 0.2
        config.training.validationPatches = 32
        let output = folder.appendingPathComponent("run-cae")
        do {
            // On the split's training participants only: classify refuses a run that saw the
            // participants it evaluates.
            _ = try Pretraining.start(config: config, manifest: split.appendingPathComponent("train.tsv"), output: output).trainer.run()
        } catch {
            fatalError("cannot train the classification test CAE: \(error)")
        }
        return output
    }()

    /// The cohort's manifest as header and rows of fields, every path made absolute.
    static func absoluteManifest() throws -> (header: [String], rows: [[String]]) {
        let folder = manifest.deletingLastPathComponent()
        let text = try String(contentsOf: manifest, encoding: .utf8)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        let header = lines[0].split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        let pathColumns = header.indices.filter { ["path", "mask_path", "label_path"].contains(header[$0]) }
        let rows = lines.dropFirst().map { line -> [String] in
            var fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            for column in pathColumns where column < fields.count && !fields[column].isEmpty && !fields[column].hasPrefix("/") {
                fields[column] = folder.appendingPathComponent(fields[column]).standardizedFileURL.path
            }
            return fields
        }
        return (header, rows)
    }

    /// Writes the cohort's manifest to `url` with its rows reversed (so manifest lines differ
    /// from split lines) and `target`'s image and mask replaced by `copy(source, destination)`
    /// copies named `<stem>_T1w.nii.gz` and `<stem>_mask.nii.gz` beside it.
    /// - Returns: the replaced image and the target's line in the written manifest.
    static func manifestReplacing(_ target: ManifestRow, stem: String, at url: URL,
                                  copy: (URL, URL) throws -> Void) throws -> (image: URL, manifestLine: Int) {
        var (header, rows) = try absoluteManifest()
        rows.reverse()
        let (pathColumn, maskColumn) = (header.firstIndex(of: "path")!, header.firstIndex(of: "mask_path")!)
        guard let row = rows.firstIndex(where: { $0[0] == target.participantID && $0[1] == target.sessionID }) else {
            throw CocoaError(.fileReadNoSuchFile)
        }
        let folder = url.deletingLastPathComponent()
        let (image, mask) = (folder.appendingPathComponent("\(stem)_T1w.nii.gz"), folder.appendingPathComponent("\(stem)_mask.nii.gz"))
        try copy(URL(fileURLWithPath: rows[row][pathColumn]), image)
        try copy(URL(fileURLWithPath: rows[row][maskColumn]), mask)
        rows[row][pathColumn] = image.path
        rows[row][maskColumn] = mask.path
        try writeManifest(header: header, rows: rows, to: url)
        return (image, row + 2)
    }

    static func writeManifest(header: [String], rows: [[String]], to url: URL) throws {
        try Data((([header] + rows).map { $0.joined(separator: "\t") }.joined(separator: "\n") + "\n").utf8).write(to: url)
    }

    /// Copies `source` to `destination` with the affine's translation moved by `shift` mm
    /// along x: the same voxels on another grid.
    static func copyShifted(_ source: URL, to destination: URL, shift: Double) throws {
        let volume = try VolumeReader.read(source)
        var affine = volume.affine
        affine.entries[3] += shift
        try VolumeWriter.write(try Volume(data: volume.data, affine: affine), to: destination)
    }
}

extension VolumeCohort {
    /// Copies `source` to `destination` keeping only the first `depth` slices along z: a
    /// scan on a smaller grid.
    static func copyCropped(_ source: URL, to destination: URL, depth: Int) throws {
        let volume = try VolumeReader.read(source)
        let shape = volume.shape
        var scalars: [Float] = []
        for x in 0..<shape[0] {
            for y in 0..<shape[1] {
                for z in 0..<depth { scalars.append(volume.data.scalars[(x * shape[1] + y) * shape[2] + z]) }
            }
        }
        try VolumeWriter.write(try Volume(data: try Tensor(shape: [shape[0], shape[1], depth], scalars: scalars), affine: volume.affine), to: destination)
    }
}
