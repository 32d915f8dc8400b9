import Testing
@testable import Learn

@Suite struct GroupFoldsTests {
    /// 12 participants, 1–3 sessions each, two classes.
    static let groups = (0..<12).flatMap { p in Array(repeating: "sub-\(p)", count: 1 + p % 3) }
    static let labels = groups.map { Int($0.dropFirst(4))! % 2 }

    @Test func noParticipantOnBothSides() throws {
        let folds = try GroupFolds.split(groups: Self.groups, labels: Self.labels, folds: 3, seed: 5)
        #expect(folds.count == 3)
        var tested: [Int] = []
        for (train, test) in folds {
            #expect(Set(train.map { Self.groups[$0] }).isDisjoint(with: test.map { Self.groups[$0] }))
            #expect(Set(train).union(test) == Set(Self.groups.indices))
            tested += test
        }
        #expect(tested.sorted() == Array(Self.groups.indices))  // every row tested exactly once
    }

    @Test func everyFoldGetsEveryClass() throws {
        for seed in 0..<5 as Range<UInt64> {
            for (_, test) in try GroupFolds.split(groups: Self.groups, labels: Self.labels, folds: 3, seed: seed) {
                #expect(Set(test.map { Self.labels[$0] }) == [0, 1])
            }
        }
    }

    @Test func seedDecidesTheAssignment() throws {
        let a = try GroupFolds.split(groups: Self.groups, labels: Self.labels, folds: 3, seed: 1)
        let b = try GroupFolds.split(groups: Self.groups, labels: Self.labels, folds: 3, seed: 1)
        #expect(a.map(\.test) == b.map(\.test))
        let others = try (2..<6 as Range<UInt64>).map { try GroupFolds.split(groups: Self.groups, labels: Self.labels, folds: 3, seed: $0).map(\.test) }
        #expect(others.contains { $0 != a.map(\.test) })
    }

    @Test func tooFewParticipantsIsAnOptionError() {
        #expect(throws: LearnError.self) { try GroupFolds.split(groups: ["a", "a", "b"], labels: [0, 0, 1], folds: 3, seed: 0) }
        #expect(throws: LearnError.self) { try GroupFolds.split(groups: ["a", "b"], labels: [0, 1], folds: 1, seed: 0) }
    }
}
