import Cohort
import Foundation
import Testing
@testable import Extraction

@Suite struct FeatureMapNameTests {
    func row(_ participant: String, _ session: String, line: Int) -> ManifestRow {
        var row = ManifestRow(participantID: participant, sessionID: session, path: "x.nii.gz", diagnosis: nil)
        row.line = line
        return row
    }

    @Test func namesAreBIDSLikeUniqueAndStayInTheFolder() {
        let rows = [row("sub-01", "ses-M00", line: 2), row("sub_1", "a", line: 3), row("sub", "1_a", line: 4),
                    row("../etc", "x/y", line: 5), row("..", ".", line: 6)]
        let names = Extraction.featureMapNames(rows)
        #expect(names[0] == "sub-01_ses-M00_features.nii.gz")
        // Two rows whose names would coincide each get their line, so neither overwrites the other.
        #expect(names[1] == "sub_1_a_line3_features.nii.gz" && names[2] == "sub_1_a_line4_features.nii.gz")
        #expect(Set(names).count == names.count)
        // A line suffix that meets another row's natural name, and names differing only in case.
        let tricky = [row("sub?1", "ses", line: 2), row("sub-1", "ses", line: 3), row("sub-1", "ses_line2", line: 4),
                      row("Sub-A", "x", line: 5), row("sub-a", "x", line: 6)]
        let trickyNames = Extraction.featureMapNames(tricky)
        #expect(Set(trickyNames.map { $0.lowercased() }).count == tricky.count, "\(trickyNames)")
        for name in names { #expect(!name.contains("/") && !name.hasPrefix("."), "\(name)") }
    }
}
