@testable import Classification
import Cohort
import Foundation
import Learn
import Testing
import TestSupport
import VolumeIO

/// ica-svm on voxels (`--manifest`): spatial ICA of the training scans, SVM on the loadings.
@Suite struct VoxelICATests {
    static func request(out: URL, manifest: URL = VolumeCohort.manifest) -> ClassifyRequest {
        var request = ClassifyRequest(backend: .icaSVM, task: .adVsCN, split: VolumeCohort.split, out: out)
        request.manifest = manifest
        request.seed = 2
        request.ica.components = 4
        request.ica.voxelDownsample = 2
        request.svm.kernel = "linear"
        request.svm.cValues = [0.1, 1]
        request.svm.innerFolds = 2
        return request
    }

    @Test func voxelICAWritesItsComponentMapsOnTheDownsampledGrid() throws {
        let scratch = try ScratchFolder("classify-voxel-ica")
        defer { scratch.remove() }
        let out = scratch.url("out")
        let (report, files) = try ClassifyJob.run(Self.request(out: out))
        let names = files.map { $0.lastPathComponent }
        #expect(names == [ClassifyJob.predictionsFile, ClassifyJob.metricsFile, ClassifyJob.componentsFile])
        let split = try SplitFolder(VolumeCohort.split)
        try checkOutputs(out, expected: expectedLines(split, task: .adVsCN), task: .adVsCN)

        let ica = try #require(report.ica)
        #expect(ica.input == "voxels" && ica.components == 4)
        #expect(ica.grid == [16, 16, 16], "grid \(String(describing: ica.grid))")
        let voxels = try #require(ica.voxels)
        #expect(voxels > 100 && voxels < 16 * 16 * 16, "\(voxels) voxels selected")
        #expect(ica.iterations != nil && ica.converged != nil)
        #expect(report.trainScans == 8 && report.trainParticipants == 8)
        let written = try Fixture.report(out)
        #expect(written.ica == report.ica && written.icaSettings == Self.request(out: out).ica)

        // The maps: a 4-D NIfTI, one 16³ frame per component, on the block-averaged grid.
        let url = out.appendingPathComponent(ClassifyJob.componentsFile)
        let header = try VolumeReader.readHeader(url)
        #expect(header.spatialShape == [16, 16, 16] && header.volumeCount == 4, "dims \(header.dims)")
        var frames: [[Float]] = []
        try VolumeReader.forEachVolume(url) { _, frame in frames.append(frame.scalars) }
        #expect(frames.count == 4)
        for (c, frame) in frames.enumerated() {
            let nonzero = frame.filter { $0 != 0 }.count
            #expect(nonzero > 0 && nonzero <= voxels, "component \(c): \(nonzero) non-zero voxels, \(voxels) selected")
            #expect(frame.allSatisfy { $0.isFinite })
        }
        // Voxel (a, b, c) of the maps is the centre of the 2×2×2 block of scan voxels from (2a, 2b, 2c).
        let trainScan = split.train.url(for: split.train.rows[0].path)
        let scanAffine = try VolumeReader.readHeader(trainScan).affine
        for voxel in [[0.0, 0, 0], [3, 7, 11], [15, 15, 15]] {
            let mapped = header.affine.apply(voxel)
            let centre = scanAffine.apply(voxel.map { 2 * $0 + 0.5 })
            let distance = zip(mapped, centre).map { abs($0 - $1) }.max() ?? .infinity
            #expect(distance < 1e-3, "map voxel \(voxel) at \(mapped), block centre at \(centre)")
        }
        #expect(abs(header.affine.voxelSizes[0] - 2 * scanAffine.voxelSizes[0]) < 1e-4)
    }

    @Test func tooManyComponentsForTheTrainingScansIsAnInvalidOption() throws {
        let scratch = try ScratchFolder("classify-voxel-components")
        defer { scratch.remove() }
        var request = Self.request(out: scratch.url("out"))
        request.ica.components = 8  // 8 training scans: at most 7
        let error = Fixture.failure(request)
        guard case let .invalidOption(message)? = error else {
            Issue.record("expected invalidOption, got \(String(describing: error))")
            return
        }
        #expect(message.contains("1 to 7"), "\(message)")
    }

    /// A scan on another grid than the training scans' (here: the same voxels, shifted 7 mm)
    /// is refused, naming the set, its line in that file, and the scan.
    @Test(arguments: ["train", "validation"])
    func aScanOnAnotherGridIsABadScanNamingIt(set: String) throws {
        let scratch = try ScratchFolder("classify-voxel-grid-\(set)")
        defer { scratch.remove() }
        let split = try SplitFolder(VolumeCohort.split)
        let manifest = set == "train" ? split.train : split.validation
        // Not the first training scan (the others are compared with it).
        let splitIndex = set == "train" ? 2 : 1
        let target = manifest.rows[splitIndex]
        let splitLine = try #require(target.line)

        // The cohort's manifest, rows reversed (so manifest lines differ from split lines),
        // with the target's image and mask moved to another grid.
        let (moved, manifestLine) = try VolumeCohort.manifestReplacing(target, stem: "moved", at: scratch.url("manifest.tsv")) {
            try VolumeCohort.copyShifted($0, to: $1, shift: 7)
        }
        #expect(manifestLine != splitLine)

        let out = scratch.url("out")
        let error = Fixture.failure(Self.request(out: out, manifest: scratch.url("manifest.tsv")))
        guard case let .badScan(message)? = error else {
            Issue.record("expected badScan, got \(String(describing: error))")
            return
        }
        #expect(message.contains(moved.path), "the message does not name the scan: \(message)")
        #expect(message.contains("\(set).tsv"), "the message does not name the set: \(message)")
        // The line given with the split file's name must be the row's line in that file.
        #expect(!message.contains("\(set).tsv line \(manifestLine):") || manifestLine == splitLine,
                "the message gives the manifest's line \(manifestLine) as a line of \(set).tsv (its line there is \(splitLine)): \(message)")
        #expect(message.contains("\(set).tsv line \(splitLine)"), "expected '\(set).tsv line \(splitLine)' in: \(message)")
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent(ClassifyJob.predictionsFile).path))
    }

    /// "Nothing is written until the fit succeeded": an SVM that cannot be fitted (or invalid
    /// SVM options) must not leave the ICA maps behind, which would block a rerun.
    @Test func aFailedSVMLeavesNoComponentMaps() throws {
        let scratch = try ScratchFolder("classify-voxel-fail")
        defer { scratch.remove() }
        var tooManyFolds = Self.request(out: scratch.url("folds"))
        tooManyFolds.svm.innerFolds = 5  // four training participants per class
        var badKernel = Self.request(out: scratch.url("kernel"))
        badKernel.svm.kernel = "foo"
        for (name, request) in [("inner folds 5", tooManyFolds), ("kernel foo", badKernel)] {
            let error = Fixture.failure(request)
            #expect(error != nil, "\(name) was accepted")
            if request.svm.kernel == "foo", case .invalidOption? = error {} else if request.svm.kernel == "foo" {
                Issue.record("kernel foo with voxel ICA: expected invalidOption, got \(String(describing: error))")
            }
            let written = (try? FileManager.default.contentsOfDirectory(atPath: request.out.path)) ?? []
            #expect(written.isEmpty, "\(name): the failed run (\(String(describing: error))) left \(written) in --out")
        }
    }
}
