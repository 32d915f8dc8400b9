import Cohort
import Foundation
import Testing
import TensorCore
import TestSupport
import VolumeIO
@testable import Preprocessing

/// A small synthetic cohort (5 participants, 64³ at 3 mm) and its template, made once.
private enum JobFixture {
    static let options: SyntheticCohortOptions = {
        var options = SyntheticCohortOptions()
        options.participants = 5
        options.seed = 4
        options.shape = [64, 64, 64]
        options.voxelSize = 3
        options.secondSessionFraction = 0.2
        options.varyGeometry = true
        return options
    }()

    static let folder = FileManager.default.temporaryDirectory.appendingPathComponent("adwb-preprocess-job-\(getpid())")

    static let manifest: URL = {
        atexit { try? FileManager.default.removeItem(at: JobFixture.folder) }
        do {
            return try SyntheticCohort.generate(options, to: folder.appendingPathComponent("cohort"), generator: "PreprocessJobTests").manifestURL
        } catch {
            fatalError("cannot generate the preprocessing test cohort: \(error)")
        }
    }()

    static let template: Template = {
        do {
            let scan = try SyntheticCohort.template(options)
            return try Template(image: scan.t1, mask: scan.mask, name: "synthetic template 64^3 at 3 mm")
        } catch {
            fatalError("cannot render the template: \(error)")
        }
    }()

    static func job(_ output: URL, options: PreprocessingOptions = PreprocessingOptions(), manifest: URL = manifest) throws -> PreprocessJob {
        try PreprocessJob.prepare(output)
        var job = PreprocessJob(manifest: manifest, output: output, preprocessor: try ScanPreprocessor(options: options, template: template))
        job.workers = 2
        return job
    }
}

/// Every file under `folder` (relative path → bytes), the records' timings left out.
private func contents(of folder: URL) throws -> [String: Data] {
    var files: [String: Data] = [:]
    let enumerator = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil)
    while let url = enumerator?.nextObject() as? URL {
        guard !url.hasDirectoryPath, !url.lastPathComponent.hasSuffix(".json") else { continue }
        files[String(url.path.dropFirst(folder.path.count + 1))] = try Data(contentsOf: url)
    }
    return files
}

@Suite(.serialized) struct PreprocessJobTests {
    @Test func runWritesRegisteredScansManifestTransformsAndQC() throws {
        try withTemporaryDirectory { root in
            let output = root.appendingPathComponent("out")
            let summary = try JobFixture.job(output).run()
            let source = try Manifest(contentsOf: JobFixture.manifest)
            #expect(summary.records.count == source.rows.count && summary.failed.isEmpty && summary.reused == 0)
            let manifestURL = try #require(summary.manifestURL)
            let written = try Manifest(contentsOf: manifestURL)
            #expect(written.rows.map(\.participantID) == source.rows.map(\.participantID))
            #expect(written.extraColumns.suffix(3) == ["source_path", "registration_ncc", "brain_mask_dice"])
            let templateGrid = Grid(JobFixture.template.image)
            for (row, record) in zip(written.rows, summary.records) {
                let image = try VolumeReader.read(written.url(for: row.path))
                let mask = try VolumeReader.read(written.url(for: try #require(row.maskPath)))
                #expect(Grid(image).matches(templateGrid) && Grid(mask).matches(templateGrid))
                // z-scored inside the brain in native space: mean 0, SD 1; interpolation onto the
                // template grid smooths a little (scans of other voxel sizes lose ~10% SD).
                var (sum, squares, count) = (0.0, 0.0, 0.0)
                for (v, m) in zip(image.data.scalars, mask.data.scalars) where m != 0 {
                    (sum, squares, count) = (sum + Double(v), squares + Double(v) * Double(v), count + 1)
                }
                let mean = sum / count, sd = (squares / count - mean * mean).squareRoot()
                #expect(abs(mean) < 0.1 && sd > 0.85 && sd < 1.05, "\(row.participantID): mean \(mean), SD \(sd)")
                #expect(row.extra["source_path"] == source.url(for: source.rows.first { $0.participantID == row.participantID && $0.sessionID == row.sessionID }!.path).path)
                // The three transform files say the same thing.
                let registration = try #require(record.registration)
                #expect(record.transforms.count == 3)
                let ras = try TransformFile.readMatrix(output.appendingPathComponent(record.transforms[0]))
                let itk = try TransformFile.readITK(output.appendingPathComponent(record.transforms[1]))
                let flirt = try TransformFile.readMatrix(output.appendingPathComponent(record.transforms[2]))
                let scanGrid = Grid(try VolumeReader.read(URL(fileURLWithPath: try #require(row.extra["source_path"]))))
                let fromFSL = try TransformFile.transform(fromFSL: flirt, scan: scanGrid, template: templateGrid)
                for other in [ras, itk, fromFSL] {
                    #expect(zip(other.entries, registration.transform.entries).allSatisfy { abs($0 - $1) < 1e-6 }, "\(other) vs \(registration.transform)")
                }
                #expect(registration.correlation > 0.8)
                #expect(FileManager.default.fileExists(atPath: output.appendingPathComponent("qc/" + (try #require(record.qcFigure)).file).path))
            }
            let page = try String(contentsOf: try #require(summary.qcPage), encoding: .utf8)
            for row in written.rows { #expect(page.contains(row.participantID)) }
            let record = try JSONSerialization.jsonObject(with: Data(contentsOf: output.appendingPathComponent("preprocess.json"))) as? [String: Any]
            #expect((record?["scans"] as? [Any])?.count == source.rows.count)
            #expect(FileManager.default.fileExists(atPath: output.appendingPathComponent("template/template_T1w.nii.gz").path))
        }
    }

    /// A rerun reuses every scan (same bytes on disk); another option recomputes them all.
    @Test func rerunReusesFinishedScansAndOptionChangesRecompute() throws {
        try withTemporaryDirectory { root in
            let output = root.appendingPathComponent("out")
            _ = try JobFixture.job(output).run()
            let before = try contents(of: output)
            let again = try JobFixture.job(output).run()
            #expect(again.reused == again.records.count)
            #expect(try contents(of: output) == before)
            var options = PreprocessingOptions()
            options.normalisation = .minmax
            let changed = try JobFixture.job(output, options: options).run()
            #expect(changed.reused == 0)
        }
    }

    /// Shards together with a final unsharded run give what one run gives, byte for byte.
    @Test func shardsAndAFinalRunEqualOneRun() throws {
        try withTemporaryDirectory { root in
            let whole = root.appendingPathComponent("whole"), sharded = root.appendingPathComponent("sharded")
            _ = try JobFixture.job(whole).run()
            var seen = 0
            for index in 1...3 {
                var job = try JobFixture.job(sharded)
                job.shard = Shard(index: index, count: 3)
                let part = try job.run()
                #expect(part.manifestURL == nil && part.qcPage == nil)
                seen += part.records.count
            }
            #expect(seen == (try Manifest(contentsOf: JobFixture.manifest)).rows.count)
            let final = try JobFixture.job(sharded).run()
            #expect(final.reused == final.records.count)
            #expect(try contents(of: whole) == contents(of: sharded))
        }
    }

    /// A NaN voxel, a 4-D image and an image without foreground stop the run with the scan's
    /// name and nothing written for it; with skipBad they are listed and left out.
    @Test func badScansStopTheRunOrAreSkipped() throws {
        try withTemporaryDirectory { root in
            let source = try Manifest(contentsOf: JobFixture.manifest)
            let cohort = root.appendingPathComponent("cohort")
            try FileManager.default.createDirectory(at: cohort, withIntermediateDirectories: true)
            var rows = source.rows.map { row -> ManifestRow in
                var row = row
                row.path = source.url(for: row.path).path
                row.maskPath = row.maskPath.map { source.url(for: $0).path }
                row.labelPath = row.labelPath.map { source.url(for: $0).path }
                return row
            }
            // Each replacement on its own row's grid, so only the intended fault is found.
            func original(_ index: Int) throws -> Volume { try VolumeReader.read(URL(fileURLWithPath: rows[index].path)) }
            let first = try original(0), second = try original(1), third = try original(2)
            var nan = first.data.scalars
            nan[100] = .nan
            try VolumeWriter.write(try Volume(data: Tensor(shape: first.shape, scalars: nan), affine: first.affine),
                                   to: cohort.appendingPathComponent("nan.nii.gz"))
            try VolumeWriter.write(frames: [second.data, second.data], affine: second.affine, to: cohort.appendingPathComponent("4d.nii.gz"))
            try VolumeWriter.write(try Volume(data: Tensor(shape: third.shape, scalars: [Float](repeating: 3, count: third.data.count)), affine: third.affine),
                                   to: cohort.appendingPathComponent("flat.nii.gz"))
            for (index, name) in ["nan.nii.gz", "4d.nii.gz", "flat.nii.gz"].enumerated() {
                rows[index].path = cohort.appendingPathComponent(name).path
                rows[index].labelPath = nil
            }
            let manifestURL = cohort.appendingPathComponent("manifest.tsv")
            try Manifest(directory: cohort, rows: rows, optionalColumns: source.optionalColumns, extraColumns: source.extraColumns).write(to: manifestURL)

            let output = root.appendingPathComponent("out")
            var job = try JobFixture.job(output, manifest: manifestURL)
            job.workers = 1
            do {
                _ = try job.run()
                Issue.record("a NaN scan was preprocessed")
            } catch {
                guard case let .scan(failure)? = error as? PreprocessJobError else { Issue.record("\(error)"); return }
                #expect(failure.participantID == rows[0].participantID && failure.reason.contains("nan.nii.gz") && failure.reason.contains("non-finite"), "\(failure)")
            }
            #expect(!FileManager.default.fileExists(atPath: output.appendingPathComponent("manifest.tsv").path))
            job.skipBad = true
            let summary = try job.run()
            #expect(summary.failed.map(\.participantID) == Array(rows.prefix(3).map(\.participantID)))
            #expect(summary.failed[1].reason.contains("4-D"), "\(summary.failed[1])")
            #expect(summary.failed[2].reason.contains("no foreground"), "\(summary.failed[2])")
            #expect(summary.records.count == rows.count - 3)
            let written = try Manifest(contentsOf: try #require(summary.manifestURL))
            #expect(written.rows.count == rows.count - 3)
            let page = try String(contentsOf: try #require(summary.qcPage), encoding: .utf8)
            #expect(page.contains("4-D"))
        }
    }

    /// The built-in skull strip is scored against the manifest's true masks; without
    /// registration the outputs stay on each scan's own (RAS) grid.
    @Test func builtInSkullStripInNativeSpaceReportsDice() throws {
        try withTemporaryDirectory { root in
            var options = PreprocessingOptions()
            options.steps = [.reorient, .skullstrip, .normalise]
            options.skullStrip = .builtin
            let summary = try JobFixture.job(root.appendingPathComponent("out"), options: options).run()
            let written = try Manifest(contentsOf: try #require(summary.manifestURL))
            for (row, record) in zip(written.rows, summary.records) {
                let dice = try #require(record.dice)
                #expect(dice >= 0.9, "\(row.participantID): Dice \(dice)")
                #expect(record.transforms.isEmpty && record.registration == nil)
                let image = try VolumeReader.read(written.url(for: row.path))
                #expect(image.affine.axisCodes == "RAS")
                #expect(row.path.contains("space-native"))
            }
        }
    }

    @Test func foldersAndOptionsAreCheckedFirst() throws {
        try withTemporaryDirectory { root in
            let foreign = root.appendingPathComponent("foreign")
            try FileManager.default.createDirectory(at: foreign, withIntermediateDirectories: true)
            try Data("x".utf8).write(to: foreign.appendingPathComponent("notes.txt"))
            #expect(throws: PreprocessingError.self) { try PreprocessJob.prepare(foreign) }
            var options = PreprocessingOptions()
            options.skullStrip = .template
            options.steps = [.skullstrip]
            #expect(throws: PreprocessingError.self) { try ScanPreprocessor(options: options, template: JobFixture.template) }
            #expect(throws: PreprocessingError.self) { try ScanPreprocessor(options: PreprocessingOptions(), template: nil) }
            options = PreprocessingOptions()
            options.clipPercentiles = [99, 1]
            #expect(throws: PreprocessingError.self) { try options.validate() }
            // Another shard's marker being written (a temporary name) does not make the folder foreign.
            let racing = root.appendingPathComponent("racing")
            try FileManager.default.createDirectory(at: racing, withIntermediateDirectories: true)
            try Data().write(to: racing.appendingPathComponent("." + PreprocessJob.marker + ".tmp-123"))
            try PreprocessJob.prepare(racing)
            // Labels keep their values: the smallest exact type.
            func labels(_ values: [Float]) throws -> Volume { try Volume(data: Tensor(shape: [values.count, 1, 1], scalars: values), affine: .identity) }
            #expect(PreprocessJob.labelType(try labels([0, 3, 255])) == .uint8)
            #expect(PreprocessJob.labelType(try labels([0, 1035, 2035])) == .int16)
            #expect(PreprocessJob.labelType(try labels([-1, 70_000])) == .int32)
            #expect(PreprocessJob.labelType(try labels([0, 0.5])) == .float32)
            // Output names never climb out of the folder or hide.
            for hostile in ["../../etc/passwd", ".hidden", "a/b", ""] {
                let name = FileNames.safeComponent(hostile)
                #expect(!name.contains("/") && !name.hasPrefix(".") && !name.isEmpty, "\(hostile) → \(name)")
            }
        }
    }
}
