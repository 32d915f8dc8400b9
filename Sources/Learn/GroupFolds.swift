import TensorCore

/// Participant-level folds: every sample of a group (participant) falls in the same fold, so
/// no participant is on both sides of a split (scikit-learn's `StratifiedGroupKFold` in
/// spirit: groups are dealt to folds class by class, in a seeded order).
public enum GroupFolds {
    /// `k` (train, test) index pairs over `groups.count` samples.
    ///
    /// Each group takes the label of its first sample; groups are shuffled with `seed` within
    /// each label and dealt round-robin to the folds, so every fold gets a share of every class
    /// that has at least `k` participants.
    /// - Throws: `invalidOption` when `k < 2` or there are fewer groups than folds.
    public static func split(groups: [String], labels: [Int], folds k: Int, seed: UInt64) throws(LearnError)
        -> [(train: [Int], test: [Int])]
    {
        precondition(groups.count == labels.count, "GroupFolds: \(groups.count) groups, \(labels.count) labels")
        var order: [String] = []
        var label: [String: Int] = [:]
        for (i, g) in groups.enumerated() {
            if label[g] == nil { order.append(g); label[g] = labels[i] }
        }
        guard k >= 2 else { throw .invalidOption(name: "folds", value: "\(k)", reason: "at least 2 are needed") }
        guard order.count >= k else {
            throw .invalidOption(name: "folds", value: "\(k)", reason: "only \(order.count) participants to share among them")
        }
        var rng = Xoshiro256StarStar(seed: seed)
        var fold = [String: Int]()
        var next = 0
        for value in Set(label.values).sorted() {
            var groupsOfLabel = order.filter { label[$0] == value }
            groupsOfLabel.seededShuffle(using: &rng)
            for g in groupsOfLabel { fold[g] = next % k; next += 1 }
        }
        return (0..<k).map { f in
            var train: [Int] = [], test: [Int] = []
            for (i, g) in groups.enumerated() { if fold[g] == f { test.append(i) } else { train.append(i) } }
            return (train, test)
        }
    }
}
