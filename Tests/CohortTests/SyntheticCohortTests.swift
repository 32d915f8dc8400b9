import Foundation
import Testing
import TensorCore
import TestSupport
@testable import Cohort
import VolumeIO

/// A small recipe: 3 mm voxels on a 64^3 grid keep renders cheap in tests.
func smallRecipe(participants: Int, seed: UInt64 = 1, effect: Double = 1) -> SyntheticCohortOptions {
    var options = SyntheticCohortOptions()
    options.participants = participants
    options.seed = seed
    options.effect = effect
    options.shape = [64, 64, 64]
    options.voxelSize = 3
    return options
}

/// Per-condition means of the baseline scans' hippocampal and ventricular volumes (mL) and
/// of cortical grey-matter voxels, rendered in memory.
func conditionMeans(_ options: SyntheticCohortOptions) throws -> [Diagnosis: (hippocampus: Double, ventricles: Double, cortex: Double, severity: Double)] {
    var sums: [Diagnosis: (Double, Double, Double, Double, Int)] = [:]
    for participant in try SyntheticCohort.participants(options) {
        let scan = SyntheticCohort.render(participant, session: 0, options: options)
        let cortex = Double(scan.labels.data.scalars.filter { $0 == Float(Tissue.corticalGreyMatter.rawValue) }.count)
        let old = sums[participant.condition] ?? (0, 0, 0, 0, 0)
        sums[participant.condition] = (old.0 + scan.hippocampusML, old.1 + scan.ventriclesML, old.2 + cortex, old.3 + participant.severity, old.4 + 1)
    }
    return sums.mapValues { ($0.0 / Double($0.4), $0.1 / Double($0.4), $0.2 / Double($0.4), $0.3 / Double($0.4)) }
}

@Suite struct SyntheticAnatomyTests {
    @Test func masksAndLabelsMatchTheImage() throws {
        let options = smallRecipe(participants: 3)
        for participant in try SyntheticCohort.participants(options) {
            let scan = SyntheticCohort.render(participant, session: 0, options: options)
            #expect(scan.t1.shape == [64, 64, 64] && scan.mask.shape == scan.t1.shape && scan.labels.shape == scan.t1.shape)
            #expect(scan.t1.affine == scan.mask.affine && scan.labels.affine == scan.t1.affine)
            let brainTissues: Set<UInt8> = [2, 3, 4, 5, 6]
            var sums = [Double](repeating: 0, count: Tissue.allCases.count)
            var counts = [Int](repeating: 0, count: Tissue.allCases.count)
            for index in 0..<scan.t1.data.count {
                let label = UInt8(scan.labels.data.scalars[index])
                let inMask = scan.mask.data.scalars[index] == 1
                // Brain tissue is always inside the mask; scalp, skull and air never are.
                if brainTissues.contains(label) { #expect(inMask); if !inMask { return } }
                if label == 0 || label == 7 || label == 8 { #expect(!inMask); if inMask { return } }
                sums[Int(label)] += Double(scan.t1.data.scalars[index])
                counts[Int(label)] += 1
            }
            let mean = { (tissue: Tissue) in sums[Int(tissue.rawValue)] / Double(max(counts[Int(tissue.rawValue)], 1)) }
            // T1 contrast: WM > deep GM > cortical GM > CSF > air, skull dark, scalp bright.
            #expect(mean(.whiteMatter) > mean(.deepGreyMatter) && mean(.deepGreyMatter) > mean(.corticalGreyMatter))
            #expect(mean(.corticalGreyMatter) > mean(.csf) && mean(.csf) > mean(.background))
            #expect(mean(.scalp) > mean(.skull))
            // Every structure is present, and grey matter is a real share of the brain.
            #expect(counts.allSatisfy { $0 > 0 })
            let brain = Double(brainTissues.map { counts[Int($0)] }.reduce(0, +))
            #expect(Double(counts[2]) / brain > 0.15)
            // The integers a T1 is stored as.
            #expect(scan.t1.data.scalars.allSatisfy { $0 == $0.rounded() && $0 >= 0 })
        }
    }

    @Test func diseaseShrinksHippocampiAndEnlargesVentriclesByTheRequestedEffect() throws {
        let means = try conditionMeans(smallRecipe(participants: 90))
        let cn = try #require(means[.cn]), mci = try #require(means[.mci]), ad = try #require(means[.ad])
        // Direction: CN > MCI > AD for hippocampi and cortex, the reverse for ventricles.
        #expect(cn.hippocampus > mci.hippocampus && mci.hippocampus > ad.hippocampus)
        #expect(cn.ventricles < mci.ventricles && mci.ventricles < ad.ventricles)
        #expect(cn.cortex > ad.cortex)
        // Size: at effect 1, AD hippocampi are 25% smaller and ventricles 60% larger than CN's,
        // scaled by the drawn severities (mean about 1); participants vary, hence the tolerance.
        #expect(abs(ad.hippocampus / cn.hippocampus - (1 - 0.25 * ad.severity)) < 0.08)
        #expect(abs(ad.ventricles / cn.ventricles - (1 + 0.6 * ad.severity)) < 0.25)
        #expect(abs(ad.severity - 1) < 0.2 && abs(mci.severity - 0.5) < 0.1)
    }

    @Test func effectZeroLeavesTheClassesAlike() throws {
        let means = try conditionMeans(smallRecipe(participants: 30, effect: 0))
        let cn = try #require(means[.cn]), ad = try #require(means[.ad])
        #expect(ad.severity == 0)
        #expect(abs(ad.hippocampus / cn.hippocampus - 1) < 0.12)
        #expect(abs(ad.ventricles / cn.ventricles - 1) < 0.35)
    }

    @Test func proportionsUnlabelledSharesAndSessionsAreExact() throws {
        var options = smallRecipe(participants: 40)
        let participants = try SyntheticCohort.participants(options)
        let count = { (d: Diagnosis) in participants.filter { $0.condition == d }.count }
        #expect(count(.cn) == 20 && count(.mci) == 12 && count(.ad) == 8)
        #expect(participants.filter { !$0.isLabeled }.count == 4 + 2 + 2)  // 20% of each class, rounded
        #expect(participants.filter { $0.sessions.count == 2 }.count == 5 + 3 + 2)
        #expect(Set(participants.map(\.id)).count == 40 && participants[0].id == "sub-0001")
        options.proportions = [1, 0, 1]
        options.unlabeledFraction = 0
        let twoClasses = try SyntheticCohort.participants(options)
        #expect(twoClasses.filter { $0.condition == .mci }.isEmpty && twoClasses.allSatisfy(\.isLabeled))
        // The second session is a year later and, for AD, more severe.
        for participant in participants where participant.sessions.count == 2 {
            #expect(participant.sessions[1].age == participant.sessions[0].age + 1 && participant.sessions[1].id == "ses-M012")
            if participant.condition == .ad { #expect(participant.sessions[1].severity > participant.sessions[0].severity) }
        }
    }

    @Test func recipeOutOfRangeIsAClearError() {
        var options = smallRecipe(participants: 4)
        options.shape = [32, 32, 32]  // 96 mm: too small for a head
        #expect(throws: CohortError.self) { try options.validate() }
        options = smallRecipe(participants: 4)
        options.proportions = [0, 0, 0]
        #expect { try options.validate() } throws: { ($0 as? CohortError)?.description.contains("proportions") == true }
    }

    @Test func variedGeometryChangesGridsButNotAnatomy() throws {
        var options = smallRecipe(participants: 12)
        options.varyGeometry = true
        var voxelSizes: Set<Double> = []
        var orientations: Set<String> = []
        for participant in try SyntheticCohort.participants(options) {
            let scan = SyntheticCohort.render(participant, session: 0, options: options)
            voxelSizes.insert((scan.t1.voxelSizes[0] * 1000).rounded() / 1000)
            orientations.insert(scan.t1.affine.axisCodes)
            // Field of view kept: about 192 mm whatever the voxel size.
            #expect(abs(Double(scan.t1.shape[0]) * scan.t1.voxelSizes[0] - 192) < 4)
            #expect(scan.hippocampusML > 2 && scan.hippocampusML < 9)
        }
        #expect(voxelSizes.count > 1 && orientations.count > 1)
    }
}

@Suite struct SyntheticCohortFileTests {
    @Test func twoRunsWithOneSeedAreByteIdentical() throws {
        try withTemporaryDirectory { directory in
            let options = smallRecipe(participants: 4, seed: 11)
            let first = directory.appendingPathComponent("a"), second = directory.appendingPathComponent("b")
            let summary = try SyntheticCohort.generate(options, to: first, generator: "test")
            _ = try SyntheticCohort.generate(options, to: second, generator: "test")
            let files = try FileManager.default.subpathsOfDirectory(atPath: first.path).sorted()
            #expect(files.filter { $0.hasSuffix(".nii.gz") }.count == 3 * summary.scans)
            #expect(try FileManager.default.subpathsOfDirectory(atPath: second.path).sorted() == files)
            for file in files where !file.hasSuffix("anat") && file.contains(".") {
                let a = try Data(contentsOf: first.appendingPathComponent(file))
                let b = try Data(contentsOf: second.appendingPathComponent(file))
                #expect(a == b, "\(file) differs")
            }
            // Another seed gives other scans.
            let third = directory.appendingPathComponent("c")
            _ = try SyntheticCohort.generate(smallRecipe(participants: 4, seed: 12), to: third, generator: "test")
            let path = "sub-0001/ses-M000/anat/sub-0001_ses-M000_T1w.nii.gz"
            #expect(try Data(contentsOf: first.appendingPathComponent(path)) != Data(contentsOf: third.appendingPathComponent(path)))
        }
    }

    @Test func writtenCohortReadsBackAndValidates() throws {
        try withTemporaryDirectory { directory in
            let summary = try SyntheticCohort.generate(smallRecipe(participants: 10, seed: 5), to: directory, generator: "test")
            let manifest = try Manifest(contentsOf: summary.manifestURL)
            #expect(manifest.rows.count == summary.scans && manifest.participants.count == 10)
            #expect(manifest.extraColumns == ["synth_condition", "synth_severity", "hippocampus_ml", "ventricles_ml"])
            #expect(manifest.rows.filter { $0.diagnosis == nil }.count >= 2)
            let validation = ManifestValidator.validate(summary.manifestURL,
                options: ManifestValidationOptions(checkIntensities: true, folds: 2))
            #expect(validation.errors.isEmpty, "\(validation.errors)")
            // Read back through our reader: the T1 is int16, the mask and labels uint8, and the
            // recorded ground truth matches the label map.
            let row = manifest.rows[0]
            let t1 = try VolumeReader.read(manifest.url(for: row.path))
            let labels = try VolumeReader.read(manifest.url(for: try #require(row.labelPath)))
            let mask = try VolumeReader.read(manifest.url(for: try #require(row.maskPath)))
            #expect(t1.header?.datatype == .int16 && labels.header?.datatype == .uint8 && mask.header?.datatype == .uint8)
            #expect(t1.affine == labels.affine && t1.shape == mask.shape)
            let voxelML = 27.0 / 1000
            let hippocampus = Double(labels.data.scalars.filter { $0 == 5 }.count) * voxelML
            let recorded = try #require(row.extra["hippocampus_ml"].flatMap { Double($0) })
            #expect(abs(hippocampus - recorded) < 0.001)
            // The folder is also a BIDS dataset the importer reads back to the same scans.
            let imported = try CohortImporter.fromBIDS(directory).manifest
            #expect(imported.rows.map(\.path) == manifest.rows.map(\.path))
            #expect(imported.rows.map(\.diagnosis) == manifest.rows.map(\.diagnosis))
        }
    }

    @Test func refusesToOverwriteAFolderThatIsNotASyntheticCohort() throws {
        try withTemporaryDirectory { directory in
            try Data("keep me".utf8).write(to: directory.appendingPathComponent("notes.txt"))
            #expect(throws: CohortError.self) { _ = try SyntheticCohort.generate(smallRecipe(participants: 2), to: directory, generator: "test") }
            #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("notes.txt").path))
            // An earlier synthetic cohort is replaced (no participant folders left over).
            let cohort = directory.appendingPathComponent("cohort")
            _ = try SyntheticCohort.generate(smallRecipe(participants: 3), to: cohort, generator: "test")
            _ = try SyntheticCohort.generate(smallRecipe(participants: 2), to: cohort, generator: "test")
            let subjects = try FileManager.default.contentsOfDirectory(atPath: cohort.path).filter { $0.hasPrefix("sub-") }
            #expect(subjects.sorted() == ["sub-0001", "sub-0002"])
        }
    }
}

/// Thread counts are process-wide: run in a child process.
@Suite struct SyntheticDeterminismTests {
    @Test func scansAreIdenticalForEveryThreadCount() async {
        await #expect(processExitsWith: .success) {
            var options = smallRecipe(participants: 3, seed: 21)
            options.varyGeometry = true
            guard let participants = try? SyntheticCohort.participants(options) else { Issue.record("recipe"); return }
            var renders: [[Tensor]] = []
            for threads in [1, 2, 3] {
                Engine.setThreads(threads)
                renders.append(participants.flatMap { participant -> [Tensor] in
                    let scan = SyntheticCohort.render(participant, session: 0, options: options)
                    return [scan.t1.data, scan.mask.data, scan.labels.data]
                })
            }
            #expect(renders[0] == renders[1] && renders[1] == renders[2])
        }
    }
}
