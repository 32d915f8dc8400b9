import Cohort
import Foundation
import Testing
import TestSupport
import VolumeIO

// `adwb preprocess` end to end on a tiny cohort (4 participants, 48³ at 4 mm), with the
// built-in template and with a template given by path.

@Suite struct PreprocessCommandTests {
    private func cohort(_ scratch: ScratchFolder) throws -> URL {
        var options = SyntheticCohortOptions()
        options.participants = 4
        options.shape = [48, 48, 48]
        options.voxelSize = 4
        options.secondSessionFraction = 0
        return try SyntheticCohort.generate(options, to: scratch.url("cohort"), generator: "PreprocessCommandTests").manifestURL
    }

    @Test func preprocessWritesTheManifestAndQCPageAndRerunsFromCache() throws {
        let scratch = try ScratchFolder("preprocess-cli")
        defer { scratch.remove() }
        let manifest = try cohort(scratch)
        let arguments = ["preprocess", "--manifest", manifest.path, "--out", scratch.path("out"), "--threads", "2"]
        let first = try runBuiltExecutable("adwb", arguments, scratch: scratch)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("manifest: \(scratch.url("out").appendingPathComponent("manifest.tsv").path)"), "\(first.stdout)")
        #expect(first.stdout.contains("QC page: "), "\(first.stdout)")
        #expect(first.stderr.contains("4 scans (4 computed, 0 reused"), "\(first.stderr)")
        let written = try Manifest(contentsOf: scratch.url("out/manifest.tsv"))
        #expect(written.rows.count == 4 && written.rows.allSatisfy { $0.maskPath != nil })
        // The built-in template's grid.
        let image = try VolumeReader.read(written.url(for: written.rows[0].path))
        #expect(image.shape == [96, 96, 96] && image.voxelSizes == [2, 2, 2])
        let again = try runBuiltExecutable("adwb", arguments, scratch: scratch)
        #expect(again.status == 0 && again.stderr.contains("4 scans (0 computed, 4 reused"), "\(again.stderr)")
    }

    @Test func aTemplateByPathAndAPresetGrid() throws {
        let scratch = try ScratchFolder("preprocess-cli-template")
        defer { scratch.remove() }
        let manifest = try cohort(scratch)
        let template = try SyntheticCohort.template(SyntheticCohortOptions())
        try VolumeWriter.write(template.t1, to: scratch.url("template.nii.gz"))
        try VolumeWriter.write(template.mask, to: scratch.url("template_mask.nii.gz"))
        let result = try runBuiltExecutable("adwb", ["preprocess", "--manifest", manifest.path, "--out", scratch.path("out"),
                                                     "--template", scratch.path("template.nii.gz"), "--template-mask", scratch.path("template_mask.nii.gz"),
                                                     "--grid", "mni2mm", "--skull-strip", "template", "--normalise", "minmax"], scratch: scratch)
        #expect(result.status == 0, "\(result.stderr)")
        let written = try Manifest(contentsOf: scratch.url("out/manifest.tsv"))
        let image = try VolumeReader.read(written.url(for: written.rows[0].path))
        #expect(image.shape == [91, 109, 91])
        #expect(image.data.scalars.allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(written.rows.allSatisfy { Double($0.extra["brain_mask_dice"] ?? "") ?? 0 > 0.8 }, "\(written.rows.map { $0.extra["brain_mask_dice"] ?? "" })")
    }

    @Test func badArgumentsAreRefusedBeforeAnyWork() throws {
        let scratch = try ScratchFolder("preprocess-cli-bad")
        defer { scratch.remove() }
        let manifest = try cohort(scratch)
        for (arguments, message) in [(["--steps", "register,teleport"], "unknown step 'teleport'"),
                                     (["--template-mask", "m.nii.gz"], "--template-mask needs --template"),
                                     (["--grid", "mni9mm"], "--grid 'mni9mm'"),
                                     (["--shard", "3/2"], "--shard '3/2'"),
                                     (["--steps", "skullstrip", "--skull-strip", "template"], "add the register step")] {
            let result = try runBuiltExecutable("adwb", ["preprocess", "--manifest", manifest.path, "--out", scratch.path("out-bad")] + arguments, scratch: scratch)
            #expect(result.status != 0 && result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.path("out-bad/manifest.tsv")))
    }
}
