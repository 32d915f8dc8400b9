import Foundation
import Testing
import TensorCore
import TestSupport
@testable import VolumeIO
@testable import Preprocessing

/// `volume` with its axes rearranged by index arithmetic alone (not by `Reorientation`): new
/// axis n is old axis `permutation[n]`, read backwards when `flipped[n]`; the affine keeps
/// every voxel's world position. Also returns the axis codes the result should have.
func rearranged(_ volume: Volume, _ permutation: [Int], _ flipped: [Bool]) throws -> (volume: Volume, codes: String) {
    let old = volume.shape
    let new = permutation.map { old[$0] }
    var values = [Float](repeating: 0, count: volume.data.count)
    let source = volume.data.scalars
    for o0 in 0..<new[0] {
        for o1 in 0..<new[1] {
            for o2 in 0..<new[2] {
                let o = [o0, o1, o2]
                var u = [0, 0, 0]
                for n in 0..<3 { u[permutation[n]] = flipped[n] ? old[permutation[n]] - 1 - o[n] : o[n] }
                values[(o0 * new[1] + o1) * new[2] + o2] = source[(u[0] * old[1] + u[1]) * old[2] + u[2]]
            }
        }
    }
    var first = [0.0, 0, 0]
    for n in 0..<3 where flipped[n] { first[permutation[n]] = Double(old[permutation[n]] - 1) }
    let origin = volume.affine.apply(first)
    var rows: [[Double]] = []
    for r in 0..<3 {
        rows.append((0..<3).map { n in (flipped[n] ? -1 : 1) * volume.affine[r, permutation[n]] } + [origin[r]])
    }
    let positive = Array(volume.affine.axisCodes)
    let opposite: [Character: Character] = ["R": "L", "L": "R", "A": "P", "P": "A", "S": "I", "I": "S"]
    let codes = String((0..<3).map { n in flipped[n] ? opposite[positive[permutation[n]]] ?? "?" : positive[permutation[n]] })
    let affine = Affine(rows: rows[0], rows[1], rows[2])
    return (try Volume(data: Tensor(shape: new, scalars: values), affine: affine), codes)
}

/// Largest entry difference between two affines.
func largestDifference(_ a: Affine, _ b: Affine) -> Double {
    zip(a.entries, b.entries).map { abs($0 - $1) }.max() ?? .infinity
}

@Suite struct ReorientationTests {
    /// 5×6×7 distinct random values on a RAS grid with anisotropic voxels and an off-centre origin.
    static let base = try! ResamplingFixtures.randomVolume([5, 6, 7], seed: 7,
                                                           affine: .scaling([1.2, 0.9, 2.5], origin: [-30.5, 12.25, -7]))

    @Test func everyAxisPermutationAndFlipComesBackToRAS() throws {
        let base = Self.base
        #expect(base.affine.axisCodes == "RAS")
        let permutations = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]
        var seen = Set<String>()
        for permutation in permutations {
            for flips in 0..<8 {
                let flipped = (0..<3).map { flips >> $0 & 1 == 1 }
                let (moved, codes) = try rearranged(base, permutation, flipped)
                #expect(moved.affine.axisCodes == codes)
                seen.insert(codes)
                let back = try Reorientation.toRAS(moved)
                #expect(back.shape == base.shape, "\(codes)")
                #expect(back.data.scalars == base.data.scalars, "\(codes)")
                #expect(largestDifference(back.affine, base.affine) < 1e-12, "\(codes): \(back.affine)")
                #expect(back.affine.axisCodes == "RAS")
            }
        }
        #expect(seen.count == 48)
    }

    @Test func aVolumeAlreadyInRASOrderIsReturnedUnchanged() throws {
        let volume = try VolumeReader.read(ResamplingFixtures.volumes.appendingPathComponent("generated/sform_wins.nii"))
        #expect(volume.affine.axisCodes == "RAS")
        let same = try Reorientation.toRAS(volume)
        #expect(same.affine.entries == volume.affine.entries)
        #expect(same.data == volume.data)
        #expect(same.header == volume.header)
    }

    @Test func obliqueVoxelsKeepTheirWorldPositions() throws {
        // Rotated 25° about (1, 2, 3), anisotropic, with y and z reversed: axis codes not RAS.
        let rotation = ResamplingFixtures.rotation(axis: [1, 2, 3], degrees: 25)
        let affine = ResamplingFixtures.affine(rotation, scaled: [1.1, -0.8, -1.7], translation: [12.5, -3.25, 40])
        let count = 4 * 5 * 6
        var generator = Xoshiro256StarStar(seed: 3)
        let values = (0..<count).map(Float.init).shuffled(using: &generator)
        let volume = try Volume(data: Tensor(shape: [4, 5, 6], scalars: values), affine: affine)
        #expect(volume.affine.axisCodes != "RAS")
        let ras = try Reorientation.toRAS(volume)
        #expect(ras.affine.axisCodes == "RAS")
        #expect(ras.shape.sorted() == volume.shape.sorted())
        // Each value is unique, so it names its source voxel.
        var sourceIndex: [Float: Int] = [:]
        for (index, value) in values.enumerated() { sourceIndex[value] = index }
        let shape = ras.shape
        for (index, value) in ras.data.scalars.enumerated() {
            let o = [Double(index / (shape[1] * shape[2])), Double(index / shape[2] % shape[1]), Double(index % shape[2])]
            let u = sourceIndex[value] ?? -1
            let source = [Double(u / 30), Double(u / 6 % 5), Double(u % 6)]
            let from = volume.affine.apply(source), to = ras.affine.apply(o)
            #expect(zip(from, to).allSatisfy { abs($0 - $1) < 1e-9 }, "voxel \(o) came from \(source): \(to) vs \(from)")
        }
    }

    @Test(arguments: ["LPS", "LIA", "ASR", "SPL", "IRP", "PIL", "lps"])
    func reorientingToAnyCodesAndBackIsLossless(_ codes: String) throws {
        let base = Self.base
        let moved = try Reorientation.reorient(base, to: codes)
        #expect(moved.affine.axisCodes == codes.uppercased())
        let map = try Reorientation.indexTransform(base, to: codes)
        #expect(largestDifference(moved.affine, base.affine * map) == 0)
        let back = try Reorientation.reorient(try Reorientation.reorient(moved, to: "LIA"), to: "RAS")
        #expect(back.data == base.data)
        #expect(largestDifference(back.affine, base.affine) < 1e-12)
    }

    @Test(arguments: ["", "RA", "RASS", "RAX", "RRS", "LRA", "AAS", "R A", "RAS "])
    func codesThatAreNotOneLetterPerWorldAxisAreRejected(_ codes: String) {
        #expect(thrownKind { _ = try Reorientation.reorient(Self.base, to: codes) } == "invalidOption")
    }

    @Test func degenerateAffinesAreRejected() throws {
        var flat = Affine.scaling([1, 1, 1])
        flat[2, 2] = 0
        let zeroAxis = try Volume(data: Self.base.data, affine: flat)
        #expect(thrownKind { _ = try Reorientation.toRAS(zeroAxis) } == "unsupportedVolume")
        var broken = Affine.scaling([1, 1, 1])
        broken[0, 3] = .nan
        let notFinite = try Volume(data: Self.base.data, affine: broken)
        #expect(thrownKind { _ = try Reorientation.toRAS(notFinite) } == "unsupportedVolume")
    }

    /// toRAS agrees with nibabel's `as_closest_canonical` on real files, and what it writes
    /// reads back with the same grid, voxels and transform codes.
    @Test(arguments: ResamplingFixtures.load().canonical)
    func matchesNibabelAndSurvivesTheWriter(_ reference: ResamplingFixtures.Canonical) throws {
        let volume = try VolumeReader.read(ResamplingFixtures.volumes.appendingPathComponent(reference.path))
        #expect(volume.affine.axisCodes == reference.source_axcodes)
        let ras = try Reorientation.toRAS(volume, name: reference.path)
        #expect(ras.shape == reference.shape)
        #expect(ras.affine.axisCodes == reference.axcodes)
        let expected = Affine(entries: reference.affine.flatMap { $0 })
        #expect(largestDifference(ras.affine, expected) < 1e-5, "\(ras.affine)\nvs nibabel\n\(expected)")
        for (voxel, value) in zip(reference.probe_voxels, reference.probe_values) {
            #expect(Double(ras.data[voxel[0], voxel[1], voxel[2]]) == value, "voxel \(voxel)")
        }
        let header = try #require(ras.header)
        #expect(header.dims.prefix(3).elementsEqual(ras.shape))
        #expect(header.affine == ras.affine && header.quaternion == nil)
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("ras.nii.gz")
            try VolumeWriter.write(ras, to: url)
            let back = try VolumeReader.read(url)
            #expect(back.data == ras.data)
            #expect(largestDifference(back.affine, ras.affine) < 1e-5)
            let original = try #require(volume.header)
            #expect(back.header?.sformCode == [original.sformCode, original.qformCode].first { $0 > 0 })
            let units = original.xyztUnits & 0x07
            #expect(back.header?.xyztUnits == (units == 0 ? 2 : units))
        }
    }

    @Test func headerAxesFollowThePermutation() throws {
        var header = try #require(try VolumeReader.read(ResamplingFixtures.volumes.appendingPathComponent("generated/anatomical_le.nii")).header)
        header.dimInfo = 1 | 2 << 2 | 3 << 4 // frequency i, phase j, slice k
        header.pixdim = [1, 1.5, 2.5, 3.5, 1, 0, 0, 0]
        let moved = Reorientation.regridded(header, shape: [25, 33, 41], affine: .identity, sourceAxis: [2, 0, 1])
        #expect(moved.dimInfo == 2 | 3 << 2 | 1 << 4)
        #expect(moved.pixdim == [1, 3.5, 1.5, 2.5, 1, 0, 0, 0])
        #expect(moved.dims == [25, 33, 41])
        #expect(moved.affine == .identity && moved.quaternion == nil)
        #expect(moved.sformCode == header.sformCode && moved.qformCode == header.qformCode)
    }
}
