import Foundation
import Testing
@testable import Cohort

@Suite struct CohortSummaryTests {
    static let manifest = Manifest(directory: URL(fileURLWithPath: "/data"), rows: [
        ManifestRow(participantID: "sub-1", sessionID: "ses-M000", path: "1a.nii", diagnosis: .cn, age: 70, sex: "F", mmse: 30, cdr: 0),
        ManifestRow(participantID: "sub-1", sessionID: "ses-M012", path: "1b.nii", diagnosis: .mci, age: 71, sex: "F", mmse: 27, cdr: 0.5),
        ManifestRow(participantID: "sub-2", sessionID: "ses-M000", path: "2.nii", diagnosis: .cn, age: 80, sex: "male", mmse: 28, cdr: 0),
        ManifestRow(participantID: "sub-3", sessionID: "ses-M000", path: "3.nii", diagnosis: .ad, age: 75, sex: "M", cdr: 1),
        ManifestRow(participantID: "sub-4", sessionID: "ses-M000", path: "4.nii", diagnosis: nil, sex: "F"),
    ])

    @Test func groupsByFirstLabelledSessionAndCountsScans() throws {
        let summary = CohortSummary(Self.manifest)
        #expect(summary.groups.map(\.name) == ["CN", "AD", "unlabeled"])
        let cn = summary.groups[0]
        // sub-1 converts to MCI at month 12 but counts as CN (its first labelled session), with both scans.
        #expect(cn.participants == 2 && cn.scans == 3)
        #expect(cn.age.n == 3 && cn.age.mean == 221.0 / 3 && cn.age.min == 70 && cn.age.max == 80)
        let mean = 221.0 / 3
        let sd = (([70.0, 71, 80].map { ($0 - mean) * ($0 - mean) }.reduce(0, +)) / 2).squareRoot()
        #expect(abs((cn.age.sd ?? 0) - sd) < 1e-12)
        #expect(cn.sex == ["F": 1, "M": 1])
        #expect(cn.cdr == ["0": 2, "0.5": 1])
        let ad = summary.groups[1]
        #expect(ad.mmse.n == 0 && ad.mmse.mean == nil && ad.age.sd == nil)
        #expect(summary.groups[2].participants == 1 && summary.groups[2].cdr == ["n/a": 1])
        // The text table has a header and one line per group.
        let lines = summary.text.split(separator: "\n")
        #expect(lines.count == 4 && lines[1].hasPrefix("CN") && lines[1].contains("73.7 ± 5.5"))
    }
}
