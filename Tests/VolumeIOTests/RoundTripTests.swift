import Foundation
import Testing
import TensorCore
import TestSupport
@testable import VolumeIO

/// A seeded volume with values uniform in [low, high), optionally rounded to integers.
func randomVolume(_ shape: [Int], seed: UInt64, low: Float, high: Float, integers: Bool = false, affine: Affine) throws -> Volume {
    var generator = Xoshiro256StarStar(seed: seed)
    let data = Tensor(uninitializedShape: shape) { out in
        for i in 0..<out.count {
            let value = low + (high - low) * generator.nextUnitFloat()
            out[i] = integers ? value.rounded(.down) : value
        }
    }
    return try Volume(data: data, affine: affine)
}

/// An oblique affine: rotation about two axes, anisotropic voxels, exactly representable offsets.
let obliqueAffine: Affine = {
    let (a, b) = (0.3, -0.2)
    let rx = Affine(rows: [1, 0, 0, 0], [0, cos(a), -sin(a), 0], [0, sin(a), cos(a), 0])
    let rz = Affine(rows: [cos(b), -sin(b), 0, 0], [sin(b), cos(b), 0, 0], [0, 0, 1, 0])
    return Affine(rows: [1, 0, 0, -80.5], [0, 1, 0, 12.25], [0, 0, 1, -40]) * rz * rx * Affine.scaling([1.5, 2, 3.25])
}()

/// The affine as the header stores it: every entry rounded to Float32.
func float32Rounded(_ affine: Affine) -> Affine { Affine(entries: affine.entries.map { Double(Float($0)) }) }

@Suite struct RoundTripTests {
    @Test(arguments: ["v.nii", "v.nii.gz", "V.NII.GZ"])
    func float32RoundTripIsExact(_ name: String) throws {
        try withTemporaryDirectory { directory in
            let volume = try randomVolume([9, 7, 5], seed: 1, low: -1000, high: 1000, affine: obliqueAffine)
            let url = directory.appendingPathComponent(name)
            try VolumeWriter.write(volume, to: url)
            let back = try VolumeReader.read(url)
            #expect(back.data == volume.data)
            #expect(back.affine == float32Rounded(obliqueAffine))
            let header = try #require(back.header)
            #expect(header.datatype == .float32 && header.sformCode == 2 && header.qformCode == 2)
            #expect(header.format == .nifti1 && !header.isPair && header.voxOffset == 352)
        }
    }

    @Test(arguments: [VoxelType.int16, .uint8, .int8, .uint16, .int32, .float64])
    func integerValuedDataRoundTripsExactlyWithoutScaling(_ type: VoxelType) throws {
        try withTemporaryDirectory { directory in
            let range = type.integerRange ?? -1e6...1e6
            let volume = try randomVolume([6, 5, 4], seed: 2, low: Float(max(range.lowerBound, -30000)),
                                          high: Float(min(range.upperBound, 30000)), integers: true, affine: .scaling([2, 2, 2]))
            let url = directory.appendingPathComponent("v.nii.gz")
            try VolumeWriter.write(volume, to: url, options: VolumeWriteOptions(datatype: type, scaling: .none))
            let back = try VolumeReader.read(url)
            #expect(back.data == volume.data)
            #expect(back.header?.datatype == type)
        }
    }

    @Test func automaticScalingQuantisesWithinHalfAStep() throws {
        try withTemporaryDirectory { directory in
            let volume = try randomVolume([8, 8, 8], seed: 3, low: -2.5, high: 7.25, affine: .identity)
            for type in [VoxelType.int16, .uint8] {
                let url = directory.appendingPathComponent("\(type).nii")
                try VolumeWriter.write(volume, to: url, options: VolumeWriteOptions(datatype: type))
                let back = try VolumeReader.read(url)
                let scaling = try #require(back.header?.scaling)
                let range = try #require(type.integerRange)
                let span = Double(volume.data.scalars.max()!) - Double(volume.data.scalars.min()!)
                #expect(abs(scaling.slope - span / (range.upperBound - range.lowerBound)) < 1e-6 * scaling.slope)
                let worst = zip(back.data.scalars, volume.data.scalars).map { abs(Double($0) - Double($1)) }.max() ?? 0
                #expect(worst <= scaling.slope / 2 * 1.001 + 1e-5, "\(type): error \(worst), slope \(scaling.slope)")
            }
        }
    }

    @Test func valuesAnIntegerTypeCannotHoldAreErrors() throws {
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("v.nii")
            var data = Tensor(repeating: 1.5, shape: [2, 2, 2])
            let fractional = try Volume(data: data, affine: .identity)
            #expect(throws: VolumeError.valueNotRepresentable(path: url.path, value: 1.5, datatype: .int16)) {
                try VolumeWriter.write(fractional, to: url, options: VolumeWriteOptions(datatype: .int16, scaling: .none))
            }
            data[0, 0, 0] = .nan
            let withNaN = try Volume(data: data, affine: .identity)
            #expect(throws: VolumeError.self) { try VolumeWriter.write(withNaN, to: url, options: VolumeWriteOptions(datatype: .uint8)) }
            // NaN is a float32 value: written and read back as NaN when kept.
            try VolumeWriter.write(withNaN, to: url)
            #expect(try VolumeReader.read(url, options: VolumeReadOptions(nonFinite: .keep)).data[0, 0, 0].isNaN)
            #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("w.nii").path))
        }
    }

    /// Float32 cannot hold Int32.max: 2³¹ must be rejected (not trap), 2³¹ − 128 stored exactly.
    @Test func integerRangeEdgesDoNotRoundOutward() throws {
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("edge.nii")
            let largest = Float(Int32.max).nextDown
            let fits = try Volume(data: Tensor(repeating: largest, shape: [2, 1, 1]), affine: .identity)
            try VolumeWriter.write(fits, to: url, options: VolumeWriteOptions(datatype: .int32, scaling: .none))
            #expect(try VolumeReader.read(url).data.scalars == [largest, largest])
            let over = try Volume(data: Tensor(repeating: Float(Int32.max), shape: [2, 1, 1]), affine: .identity)
            #expect(throws: VolumeError.self) {
                try VolumeWriter.write(over, to: url, options: VolumeWriteOptions(datatype: .int32, scaling: .none))
            }
            // With automatic scaling it is stored, within half a step.
            try VolumeWriter.write(over, to: url, options: VolumeWriteOptions(datatype: .uint8))
            #expect(try VolumeReader.read(url).data.scalars.allSatisfy { abs($0 - Float(Int32.max)) <= 1 })
        }
    }

    @Test func outputNameAndLevelAreChecked() throws {
        try withTemporaryDirectory { directory in
            let volume = try Volume(data: Tensor(zeros: [2, 2, 2]), affine: .identity)
            #expect(throws: VolumeError.self) { try VolumeWriter.write(volume, to: directory.appendingPathComponent("v.hdr")) }
            #expect(throws: VolumeError.self) { try VolumeWriter.write(volume, to: directory.appendingPathComponent("v.mgz")) }
            #expect(throws: VolumeError.self) {
                try VolumeWriter.write(volume, to: directory.appendingPathComponent("v.nii.gz"), options: VolumeWriteOptions(compressionLevel: 12))
            }
            #expect(throws: VolumeError.self) {
                try VolumeWriter.write(volume, to: directory.appendingPathComponent("missing-dir/v.nii"))
            }
            // Nothing half-written is left behind.
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
        }
    }

    @Test func sourceTransformCodesAreKept() throws {
        try withTemporaryDirectory { directory in
            let source = VolumeFixtures.volumes.appendingPathComponent("shared-copies/nifti-edge-cases/nibabel/standard.nii.gz")
            let volume = try VolumeReader.read(source)
            #expect(volume.header?.qformCode == 0 && volume.header?.sformCode == 2)
            let url = directory.appendingPathComponent("standard.nii")
            try VolumeWriter.write(volume, to: url, options: VolumeWriteOptions(datatype: .uint8))
            let header = try VolumeReader.readHeader(url)
            // sform code kept; the qform gets it too because the affine has no shear.
            #expect(header.sformCode == 2 && header.qformCode == 2)
            #expect(header.affine == volume.affine && header.xyztUnits & 7 == 2)
        }
    }

    /// A scanner-space qform beside a different sform survives a read and write unchanged
    /// (nibabel keeps it too); an edited affine gets a qform of its own.
    @Test func sourceQformIsKeptWhileTheAffineIsUnchanged() throws {
        try withTemporaryDirectory { directory in
            let source = VolumeFixtures.volumes.appendingPathComponent("generated/sform_wins.nii")
            var volume = try VolumeReader.read(source)
            let original = try #require(volume.header)
            #expect(original.qformCode > 0 && original.sformCode > 0 && original.affineSource == .sform)
            let url = directory.appendingPathComponent("kept.nii")
            try VolumeWriter.write(volume, to: url)
            let kept = try VolumeReader.readHeader(url)
            #expect(kept.qformCode == original.qformCode && kept.quaternion == original.quaternion)
            #expect(kept.sformCode == original.sformCode && kept.affine == original.affine)

            volume.affine = Affine.scaling([3, 3, 3], origin: [-10, -20, -30])
            let moved = directory.appendingPathComponent("moved.nii")
            try VolumeWriter.write(volume, to: moved)
            let rewritten = try VolumeReader.readHeader(moved)
            let qformAffine = try AffineGeometry.affine(from: try #require(rewritten.quaternion))
            #expect(qformAffine == volume.affine && rewritten.affine == volume.affine)
        }
    }

    @Test func narrowRangesAndHugeAffinesAreHandled() throws {
        try withTemporaryDirectory { directory in
            var data = Tensor(zeros: [4, 4, 4])
            data[1, 2, 3] = 1e-30
            let tiny = try Volume(data: data, affine: .identity)
            for type in [VoxelType.uint8, .int64, .uint64] {
                let url = directory.appendingPathComponent("tiny-\(type).nii")
                try VolumeWriter.write(tiny, to: url, options: VolumeWriteOptions(datatype: type))
                let back = try VolumeReader.read(url)
                #expect(back.data.scalars.allSatisfy { abs($0) <= 1e-29 }, "\(type)")
                #expect(try #require(back.header?.scaling).slope > 0)
            }
            let huge = try Volume(data: Tensor(zeros: [2, 2, 2]), affine: Affine.scaling([1e39, 1, 1]))
            #expect(throws: VolumeError.self) { try VolumeWriter.write(huge, to: directory.appendingPathComponent("huge.nii")) }
        }
    }

    /// Files written by `adwb convert` and checked by nibabel (make_volume_fixtures.py --adwb):
    /// converting again gives the same bytes, and our reading of them agrees with nibabel's.
    @Test(arguments: VolumeFixtures.table.written.map(\.output))
    func writtenFilesMatchWhatNibabelChecked(_ output: String) throws {
        let record = try #require(VolumeFixtures.table.written.first { $0.output == output })
        try withTemporaryDirectory { directory in
            let source = VolumeFixtures.volumes.appendingPathComponent(record.source.path)
            let type = try #require(VoxelType(name: record.datatype))
            let volume = try VolumeReader.read(source, options: VolumeReadOptions(volumeIndex: record.volume ?? 0))
            let again = directory.appendingPathComponent(URL(fileURLWithPath: output).lastPathComponent)
            try VolumeWriter.write(volume, to: again, options: VolumeWriteOptions(datatype: type))
            let committed = VolumeFixtures.volumes.appendingPathComponent(output)
            #expect(try decompressedBytes(again) == decompressedBytes(committed), "\(output): the writer's bytes changed")

            let back = try VolumeReader.read(committed)
            #expect(back.shape == record.shape)
            #expect(back.header?.sformCode == record.sform_code && back.header?.qformCode == record.qform_code)
            for r in 0..<4 {
                for c in 0..<4 { #expect(back.affine[r, c] == record.affine[r][c], "\(output): affine[\(r),\(c)]") }
            }
            let statistics = VoxelStatistics(back.data)
            #expect(close(statistics.sum, record.all.sum, rtol: 1e-6, atol: 1e-3))
            #expect(close(statistics.minimum, record.all.min, rtol: 1e-7, atol: 0) && close(statistics.maximum, record.all.max, rtol: 1e-7, atol: 0))
        }
    }
}

@Test func batchedViewIsOneVolumeOneChannel() throws {
    let volume = try randomVolume([3, 4, 5], seed: 9, low: 0, high: 1, affine: .identity)
    let batch = volume.batched()
    #expect(batch.shape == [1, 1, 3, 4, 5] && batch.scalars == volume.data.scalars)
    #expect(throws: TensorError.self) { try Volume(data: Tensor(zeros: [3, 4]), affine: .identity) }
}

@Suite struct AffineTests {
    @Test func qformRoundTripsRotationsWithEitherHandedness() throws {
        for (index, flip) in [1.0, -1.0].enumerated() {
            let affine = obliqueAffine * Affine.scaling([1, 1, flip])
            let (q, exact) = try AffineGeometry.quaternionTransform(of: affine)
            #expect(exact && q.qfac == flip, "case \(index)")
            let back = try AffineGeometry.affine(from: q)
            #expect(zip(back.entries, affine.entries).allSatisfy { abs($0 - $1) < 1e-12 }, "case \(index)")
            #expect(q.zooms.enumerated().allSatisfy { abs($1 - [1.5, 2, 3.25][$0]) < 1e-12 })
        }
    }

    @Test func shearIsReportedAsInexact() throws {
        let sheared = Affine(rows: [1, 0.3, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0])
        #expect(try AffineGeometry.quaternionTransform(of: sheared).exact == false)
    }

    @Test func quaternionBeyondUnitIsAnError() {
        let q = QuaternionTransform(b: 0.8, c: 0.8, d: 0, qfac: 1, zooms: [1, 1, 1], offset: [0, 0, 0])
        #expect(throws: QuaternionError.self) { try AffineGeometry.affine(from: q) }
    }

    @Test func axisCodesFollowNibabel() {
        #expect(Affine.scaling([1, 1, 1]).axisCodes == "RAS")
        #expect(Affine.scaling([-1, -1, 1]).axisCodes == "LPS")
        // FreeSurfer conformed: i → Left, j → Inferior, k → Anterior.
        #expect(Affine(rows: [-1, 0, 0, 128], [0, 0, 1, -128], [0, -1, 0, 128]).axisCodes == "LIA")
        #expect(Affine(rows: [0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]).axisCodes == "ASR")
        #expect(Affine(rows: [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]).axisCodes == "R?S")
    }

    @Test func inverseUndoesTheAffine() throws {
        let inverse = try obliqueAffine.inverse()
        let product = inverse * obliqueAffine
        #expect(zip(product.entries, Affine.identity.entries).allSatisfy { abs($0 - $1) < 1e-12 })
        let world = obliqueAffine.apply([3, 4.5, -2])
        #expect(zip(inverse.apply(world), [3, 4.5, -2]).allSatisfy { abs($0 - $1) < 1e-10 })
        #expect(throws: AffineError.self) { try Affine.scaling([1, 0, 1]).inverse() }
    }

    @Test func voxelSizesAreColumnLengths() {
        #expect(zip(obliqueAffine.voxelSizes, [1.5, 2, 3.25]).allSatisfy { abs($0 - $1) < 1e-12 })
    }
}
