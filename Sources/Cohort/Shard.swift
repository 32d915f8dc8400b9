/// The share of a manifest one run takes: shard `index` of `count` takes the contiguous block
/// of rows `⌊(index−1)·N/count⌋ ..< ⌊index·N/count⌋`, so the array jobs of a cluster scheduler
/// (`--shard $SLURM_ARRAY_TASK_ID/N`) together cover every row once. Used by `adwb extract`
/// and `adwb preprocess`, which wrap parsing and validation in their own errors.
public struct Shard: Sendable, Codable, Equatable, CustomStringConvertible {
    public var index: Int
    public var count: Int

    public static let whole = Shard(index: 1, count: 1)

    /// How to write a shard, for error messages.
    public static let syntax = "write i/n with 1 <= i <= n <= 100000, e.g. 3/8"

    public init(index: Int, count: Int) { (self.index, self.count) = (index, count) }

    /// `i/n`, or nil unless 1 ≤ i ≤ n ≤ 100000.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else { return nil }
        self.init(index: i, count: n)
        guard isValid else { return nil }
    }

    /// Whether `1 ≤ index ≤ count ≤ 100000`.
    public var isValid: Bool { (1...100_000).contains(count) && (1...count).contains(index) }

    /// The manifest rows (0-based positions) of this shard among `total` (a valid shard).
    public func rows(of total: Int) -> Range<Int> { ((index - 1) * total / count)..<(index * total / count) }

    public var description: String { "\(index)/\(count)" }
}
