import Foundation
import Testing
import TensorCore
import VolumeIO
@testable import Preprocessing

/// `Morphology` against scipy.ndimage (fixtures by Tests/Fixtures/make_morphology_fixtures.py,
/// committed: no Python at run time) and, for anisotropic voxels, against a brute-force ball.
@Suite struct MorphologyTests {
    /// One random mask and what scipy made of it.
    struct Case: Decodable, CustomTestStringConvertible {
        struct Ball: Decodable {
            let radius: Double
            let footprint_size: Int
            let eroded, eroded_border1, dilated, opened, closed: String
        }
        let name: String
        let shape: [Int]
        let mask: String
        let labels: [Int32]
        let component_count: Int
        let largest, filled: String
        let balls: [Ball]

        var testDescription: String { name }

        /// A packed-bit hex string (numpy.packbits, C order) as a mask on this case's grid.
        func unpack(_ hex: String, voxelSize: Double = 1) -> BinaryMask {
            let bytes = stride(from: 0, to: hex.count, by: 2).map { offset -> UInt8 in
                let start = hex.index(hex.startIndex, offsetBy: offset)
                return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16) ?? 0
            }
            let count = shape.reduce(1, *)
            let voxels = (0..<count).map { bytes[$0 / 8] & (0x80 >> UInt8($0 % 8)) != 0 }
            return BinaryMask(grid: Grid(shape: shape, affine: .scaling([voxelSize, voxelSize, voxelSize])), voxels: voxels)
        }
    }

    struct Fixture: Decodable {
        let scipy: String
        let cases: [Case]
    }

    static let fixture: Fixture = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/Preprocessing/morphology.json")
        // The fixture is committed with the tests; a missing one fails every test here.
        guard let data = try? Data(contentsOf: url), let fixture = try? JSONDecoder().decode(Fixture.self, from: data) else {
            return Fixture(scipy: "missing: \(url.path)", cases: [])
        }
        return fixture
    }()

    static var cases: [Case] { fixture.cases }

    @Test func fixtureHasTheThreeCases() {
        #expect(Self.cases.map(\.name) == ["blobs", "salt", "cavities"], "fixture: scipy \(Self.fixture.scipy)")
    }

    @Test(arguments: cases)
    func ballOperationsEqualScipy(_ scipyCase: Case) {
        // The same balls at 1 mm and, scaled, at 2 mm voxels: the metric is in millimetres.
        for voxelSize in [1.0, 2.0] {
            let mask = scipyCase.unpack(scipyCase.mask, voxelSize: voxelSize)
            for ball in scipyCase.balls {
                let r = ball.radius * voxelSize
                let context = "\(scipyCase.name) r=\(ball.radius) voxels at \(voxelSize) mm"
                #expect(Self.ballOffsets(radius: r, spacing: [voxelSize, voxelSize, voxelSize]).count == ball.footprint_size, "\(context)")
                #expect(Morphology.erode(mask, radius: r).voxels == scipyCase.unpack(ball.eroded).voxels, "erosion \(context)")
                #expect(Morphology.erode(mask, radius: r, borderValue: true).voxels == scipyCase.unpack(ball.eroded_border1).voxels,
                        "erosion, border 1, \(context)")
                #expect(Morphology.dilate(mask, radius: r).voxels == scipyCase.unpack(ball.dilated).voxels, "dilation \(context)")
                #expect(Morphology.open(mask, radius: r).voxels == scipyCase.unpack(ball.opened).voxels, "opening \(context)")
                #expect(Morphology.close(mask, radius: r).voxels == scipyCase.unpack(ball.closed).voxels, "closing \(context)")
            }
        }
    }

    @Test(arguments: cases)
    func componentsAndHolesEqualScipy(_ scipyCase: Case) {
        let mask = scipyCase.unpack(scipyCase.mask)
        let components = Morphology.components(mask)
        #expect(components.labels == scipyCase.labels, "\(scipyCase.name): scipy.ndimage.label")
        #expect(components.sizes.count == scipyCase.component_count)
        #expect(components.sizes.reduce(0, +) == mask.count)
        #expect(Morphology.largestComponent(mask).voxels == scipyCase.unpack(scipyCase.largest).voxels, "\(scipyCase.name)")
        #expect(Morphology.fillHoles(mask).voxels == scipyCase.unpack(scipyCase.filled).voxels, "\(scipyCase.name): binary_fill_holes")
    }

    // MARK: Anisotropic voxels against a brute-force ball

    /// The ball's offsets by definition: `Σ (o_a s_a)² ≤ r² (1 + 1e-9)`.
    static func ballOffsets(radius: Double, spacing: [Double]) -> [[Int]] {
        let reach = spacing.map { Int((radius / $0).rounded(.down)) }
        var offsets: [[Int]] = []
        for a in -reach[0]...reach[0] {
            for b in -reach[1]...reach[1] {
                for c in -reach[2]...reach[2] {
                    let squared = [a, b, c].enumerated().reduce(0.0) { $0 + pow(Double($1.element) * spacing[$1.offset], 2) }
                    if squared <= radius * radius * (1 + 1e-9) { offsets.append([a, b, c]) }
                }
            }
        }
        return offsets
    }

    /// Brute-force erosion (`erode: true`, outside = `border`) or dilation (outside = false).
    static func bruteForce(_ mask: BinaryMask, radius: Double, erode: Bool, border: Bool = false) -> [Bool] {
        let shape = mask.shape
        let offsets = ballOffsets(radius: radius, spacing: mask.grid.voxelSizes)
        func value(_ i: Int, _ j: Int, _ k: Int) -> Bool {
            guard (0..<shape[0]).contains(i), (0..<shape[1]).contains(j), (0..<shape[2]).contains(k) else { return border }
            return mask.voxels[(i * shape[1] + j) * shape[2] + k]
        }
        var out = [Bool](repeating: false, count: mask.voxels.count)
        for i in 0..<shape[0] {
            for j in 0..<shape[1] {
                for k in 0..<shape[2] {
                    let hits = offsets.lazy.map { value(i + $0[0], j + $0[1], k + $0[2]) }
                    out[(i * shape[1] + j) * shape[2] + k] = erode ? !hits.contains(false) : hits.contains(true)
                }
            }
        }
        return out
    }

    static func randomMask(_ shape: [Int], spacing: [Double], density: Float, seed: UInt64) -> BinaryMask {
        var generator = Xoshiro256StarStar(seed: seed)
        let voxels = (0..<shape.reduce(1, *)).map { _ in generator.nextUnitFloat() < density }
        return BinaryMask(grid: Grid(shape: shape, affine: .scaling(spacing)), voxels: voxels)
    }

    @Test(arguments: [(0.9, 1.3, 2.1, 2.7), (1.0, 1.0, 3.0, 3.0), (0.7, 1.9, 1.1, 1.4), (2.0, 2.0, 2.0, 1.5)])
    func anisotropicBallEqualsBruteForce(_ sx: Double, _ sy: Double, _ sz: Double, _ radius: Double) {
        let spacing = [sx, sy, sz]
        for (density, seed) in [(Float(0.5), UInt64(1)), (0.85, 2), (0.1, 3)] {
            let mask = Self.randomMask([13, 11, 9], spacing: spacing, density: density, seed: seed)
            let context = "spacing \(spacing) r=\(radius) density \(density)"
            #expect(Morphology.dilate(mask, radius: radius).voxels == Self.bruteForce(mask, radius: radius, erode: false), "dilation \(context)")
            #expect(Morphology.erode(mask, radius: radius).voxels == Self.bruteForce(mask, radius: radius, erode: true), "erosion \(context)")
            #expect(Morphology.erode(mask, radius: radius, borderValue: true).voxels
                    == Self.bruteForce(mask, radius: radius, erode: true, border: true), "erosion, border 1, \(context)")
            // Closing as if the background went on forever: the brute force's outside is
            // background for the dilation and, for the erosion, whatever the dilation reached,
            // i.e. nothing beyond r of the grid, so padding by ⌊r/s⌋ + 1 is exact.
            let pad = spacing.map { Int((radius / $0).rounded(.down)) + 1 }
            let padded = Self.padded(mask, pad)
            let closed = Self.bruteForce(BinaryMask(grid: padded.grid, voxels: Self.bruteForce(padded, radius: radius, erode: false)),
                                         radius: radius, erode: true)
            #expect(Morphology.close(mask, radius: radius).voxels == Self.cropped(closed, padded.shape, pad, mask.shape), "closing \(context)")
        }
    }

    static func padded(_ mask: BinaryMask, _ pad: [Int]) -> BinaryMask {
        let shape = mask.shape
        let big = (0..<3).map { shape[$0] + 2 * pad[$0] }
        var voxels = [Bool](repeating: false, count: big.reduce(1, *))
        for i in 0..<shape[0] { for j in 0..<shape[1] { for k in 0..<shape[2] {
            voxels[((i + pad[0]) * big[1] + j + pad[1]) * big[2] + k + pad[2]] = mask.voxels[(i * shape[1] + j) * shape[2] + k]
        } } }
        return BinaryMask(grid: Grid(shape: big, affine: mask.grid.affine), voxels: voxels)
    }

    static func cropped(_ voxels: [Bool], _ big: [Int], _ pad: [Int], _ shape: [Int]) -> [Bool] {
        var out: [Bool] = []
        for i in 0..<shape[0] { for j in 0..<shape[1] { for k in 0..<shape[2] {
            out.append(voxels[((i + pad[0]) * big[1] + j + pad[1]) * big[2] + k + pad[2]])
        } } }
        return out
    }

    @Test func distanceTransformEqualsBruteForce() {
        let spacing = [1.2, 0.8, 2.5]
        let mask = Self.randomMask([9, 12, 7], spacing: spacing, density: 0.04, seed: 11)
        let distance = DistanceTransform.squaredDistance(to: mask.voxels, shape: mask.shape, spacing: spacing)
        let features = mask.voxels.indices.filter { mask.voxels[$0] }.map { [$0 / 84, ($0 / 7) % 12, $0 % 7] }
        var worst = 0.0
        for index in mask.voxels.indices {
            let p = [index / 84, (index / 7) % 12, index % 7]
            let exact = features.map { f in (0..<3).reduce(0.0) { $0 + pow(Double(p[$1] - f[$1]) * spacing[$1], 2) } }.min() ?? .infinity
            worst = max(worst, abs(distance[index] - exact))
        }
        #expect(!features.isEmpty)
        #expect(worst < 1e-9, "largest |EDT − brute force| = \(worst) mm²")
        #expect(DistanceTransform.squaredDistance(to: [Bool](repeating: false, count: 8), shape: [2, 2, 2], spacing: [1, 1, 1])
                .allSatisfy { $0 == .infinity })
    }

    @Test func ballSmallerThanAVoxelIsTheIdentity() {
        let mask = Self.randomMask([6, 5, 4], spacing: [1, 2, 3], density: 0.5, seed: 5)
        #expect(Morphology.erode(mask, radius: 0.99) == mask)
        #expect(Morphology.dilate(mask, radius: 0) == mask)
        #expect(Morphology.close(mask, radius: 0.5) == mask)
        // Just above 1 mm the ball reaches the two neighbours along the 1 mm axis only.
        let dot = BinaryMask(grid: mask.grid, voxels: (0..<120).map { $0 == (2 * 5 + 2) * 4 + 1 })
        #expect(Morphology.dilate(dot, radius: 1.5).count == 3)
    }

    @Test func emptyAndFullMasks() {
        let grid = Grid(shape: [5, 4, 3], affine: .identity)
        let empty = BinaryMask(grid: grid, voxels: [Bool](repeating: false, count: 60))
        let full = BinaryMask(grid: grid, voxels: [Bool](repeating: true, count: 60))
        #expect(Morphology.dilate(empty, radius: 2) == empty)
        #expect(Morphology.largestComponent(empty) == empty)
        #expect(Morphology.components(empty).sizes.isEmpty)
        #expect(Morphology.fillHoles(empty) == empty)
        #expect(Morphology.erode(full, radius: 1, borderValue: true) == full)
        #expect(Morphology.erode(full, radius: 1).count == 3 * 2 * 1, "scipy's border erodes one voxel from each face")
        #expect(Morphology.fillHoles(full) == full)
    }

    @Test func largestComponentTieGoesToTheFirst() {
        // Two single voxels, 6-disconnected (diagonal neighbours).
        let grid = Grid(shape: [2, 2, 1], affine: .identity)
        let mask = BinaryMask(grid: grid, voxels: [true, false, false, true])
        #expect(Morphology.components(mask).sizes == [1, 1])
        #expect(Morphology.largestComponent(mask).voxels == [true, false, false, false])
    }
}
