import Foundation

/// The demographics table papers report for a cohort ("Table 1"): per diagnosis group,
/// participants, scans, age, sex, MMSE and CDR. A participant counts under the diagnosis of
/// its first labelled session (as the splits stratify); ages and scores are over scans.
public struct CohortSummary: Sendable, Codable, Equatable {
    /// Mean and sample standard deviation of the known values.
    public struct Statistic: Sendable, Codable, Equatable {
        public var n: Int
        public var mean: Double?
        public var sd: Double?
        public var min: Double?
        public var max: Double?

        init(_ values: [Double]) {
            n = values.count
            guard !values.isEmpty else { return }
            let mean = values.reduce(0, +) / Double(values.count)
            self.mean = mean
            sd = values.count > 1 ? (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1)).squareRoot() : nil
            min = values.min()
            max = values.max()
        }
    }

    public struct Group: Sendable, Codable, Equatable {
        /// `CN`, `MCI`, `AD` or `unlabeled`.
        public var name: String
        public var participants: Int
        public var scans: Int
        public var age: Statistic
        public var mmse: Statistic
        /// Participants per sex value as written (e.g. `F`, `M`).
        public var sex: [String: Int]
        /// Scans per CDR value.
        public var cdr: [String: Int]
        /// Participants per site.
        public var sites: [String: Int]
    }

    public var groups: [Group]

    public init(_ manifest: Manifest) {
        let strata = ParticipantGroups(manifest)
        var firstRow: [String: ManifestRow] = [:]
        var rowsOf: [String: [ManifestRow]] = [:]
        for row in manifest.rows {
            if firstRow[row.participantID] == nil { firstRow[row.participantID] = row }
            rowsOf[row.participantID, default: []].append(row)
        }
        let order: [Diagnosis?] = Diagnosis.allCases.map { $0 } + [nil]
        groups = order.compactMap { stratum in
            let participants = strata.participants.filter { strata.stratum[$0] == stratum }
            guard !participants.isEmpty else { return nil }
            let rows = participants.flatMap { rowsOf[$0] ?? [] }
            var sex: [String: Int] = [:]
            var sites: [String: Int] = [:]
            for participant in participants {
                let first = firstRow[participant]
                sex[first?.sex?.uppercased().prefix(1).description ?? "n/a", default: 0] += 1
                sites[first?.site ?? "n/a", default: 0] += 1
            }
            var cdr: [String: Int] = [:]
            for row in rows { cdr[row.cdr.map(ManifestRow.format) ?? "n/a", default: 0] += 1 }
            return Group(name: stratum?.rawValue ?? "unlabeled", participants: participants.count, scans: rows.count,
                         age: Statistic(rows.compactMap(\.age)), mmse: Statistic(rows.compactMap(\.mmse)),
                         sex: sex, cdr: cdr, sites: sites)
        }
    }

    /// A fixed-width text table, one line per group.
    public var text: String {
        func statistic(_ s: Statistic) -> String {
            guard let mean = s.mean else { return "-" }
            return String(format: "%.1f", mean) + (s.sd.map { String(format: " ± %.1f", $0) } ?? "")
        }
        func counts(_ values: [String: Int]) -> String {
            values.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        }
        let header = ["group", "participants", "scans", "age", "sex", "MMSE", "CDR (scans)"]
        let rows = groups.map { group in
            [group.name, String(group.participants), String(group.scans), statistic(group.age), counts(group.sex),
             statistic(group.mmse), counts(group.cdr)]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        return ([header] + rows).map { row in
            zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n") + "\n"
    }
}
