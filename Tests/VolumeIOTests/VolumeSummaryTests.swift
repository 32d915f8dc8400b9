import Foundation
import Testing
import TensorCore
import TestSupport
@testable import VolumeIO

@Suite struct VolumeSummaryTests {
    @Test func summaryAgreesWithNibabelForEveryReadableCommittedFile() throws {
        for entry in VolumeFixtures.localEntries where entry.readable {
            let summary = VolumeSummary.inspect(entry.url)
            #expect(summary.error == nil, "\(entry)")
            #expect(summary.dims == entry.header_shape && summary.datatype == entry.datatype, "\(entry)")
            #expect(summary.orientation == (entry.axcodes ?? summary.orientation), "\(entry)")
            let all = try #require(entry.all)
            #expect(summary.nonfinite == all.nonfinite, "\(entry)")
            if let minimum = summary.min, let maximum = summary.max, let mean = summary.mean {
                #expect(close(minimum, all.min, rtol: 1e-7, atol: 0) && close(maximum, all.max, rtol: 1e-7, atol: 0), "\(entry)")
                #expect(close(mean, all.mean, rtol: 1e-6, atol: 1e-6), "\(entry)")
            }
        }
    }

    @Test func jsonHasTheDocumentedKeys() throws {
        let url = VolumeFixtures.volumes.appendingPathComponent("shared-copies/nifti-edge-cases/nibabel/functional.nii")
        let object = try #require(JSONSerialization.jsonObject(with: Data(VolumeSummary.inspect(url).json.utf8)) as? [String: Any])
        for key in ["file", "dims", "datatype", "voxel_size", "affine", "orientation", "min", "max", "mean"] {
            #expect(object[key] != nil, "missing \(key)")
        }
        #expect(object["error"] == nil)
        #expect(object["dims"] as? [Int] == [17, 21, 3, 20] && object["orientation"] as? String == "LAS")
        #expect((object["affine"] as? [[Double]])?.count == 4)
    }

    @Test func unreadableFilesGiveOneErrorLine() throws {
        let url = VolumeFixtures.volumes.appendingPathComponent("generated/truncated.nii.gz")
        let summary = VolumeSummary.inspect(url)
        let error = try #require(summary.error)
        #expect(error.contains("truncated gzip"))
        #expect(!summary.text.contains("\n") && summary.text.hasPrefix(url.path + ": error: "))
        let object = try #require(JSONSerialization.jsonObject(with: Data(summary.json.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["file", "error"])
    }

    @Test func textBlockNamesEveryField() {
        let url = VolumeFixtures.volumes.appendingPathComponent("shared-copies/nifti-edge-cases/nibabel/functional.nii")
        let text = VolumeSummary.inspect(url).text
        for label in ["format", "dims", "datatype", "voxel size", "orientation", "affine", "scaling", "data"] {
            #expect(text.contains("\n  \(label)"), "no \(label) line in\n\(text)")
        }
        #expect(text.contains("17 x 21 x 3 x 20") && text.contains("slope 0.075407"))
    }

    @Test func nonFinitePolicies() throws {
        let url = VolumeFixtures.volumes.appendingPathComponent("generated/nonfinite_float32.nii")
        #expect {
            try VolumeReader.read(url)
        } throws: { error in
            guard case let .nonFiniteVoxels(path, count, voxel, _) = error as? VolumeError else { return false }
            return path == url.path && count > 0 && voxel.count == 3
        }
        let kept = try VolumeReader.read(url, options: VolumeReadOptions(nonFinite: .keep))
        let zeroed = try VolumeReader.read(url, options: VolumeReadOptions(nonFinite: .zero))
        #expect(kept.data.scalars.contains { !$0.isFinite })
        #expect(zeroed.data.scalars.allSatisfy { $0.isFinite })
        for (a, b) in zip(kept.data.scalars, zeroed.data.scalars) where a.isFinite { #expect(a == b) }
    }

    @Test func endiannessTwinsReadTheSame() throws {
        let pairs = [("shared-copies/nifti-edge-cases/nibabel/anatomical.nii", "generated/anatomical_le.nii"),
                     ("generated/anatomical_analyze75_be.hdr", "shared-copies/nifti-edge-cases/generated/anatomical_analyze75.hdr")]
            + VoxelType.allCases.map { ("generated/dtype_\($0)_be.nii", "generated/dtype_\($0)_le.nii") }
        for (big, little) in pairs {
            let a = try VolumeReader.read(VolumeFixtures.volumes.appendingPathComponent(big))
            let b = try VolumeReader.read(VolumeFixtures.volumes.appendingPathComponent(little))
            #expect(a.header?.byteOrder == .bigEndian && b.header?.byteOrder == .littleEndian, "\(big)")
            #expect(a.data == b.data && a.affine == b.affine, "\(big) vs \(little)")
        }
    }

    @Test func volumeIndexOutOfRangeIsAnError() {
        let url = VolumeFixtures.volumes.appendingPathComponent("generated/four_d_int16.nii.gz")
        #expect(throws: VolumeError.volumeIndexOutOfRange(path: url.path, index: 3, count: 3)) {
            try VolumeReader.read(url, options: VolumeReadOptions(volumeIndex: 3))
        }
    }
}

/// Cases from the code review: names that decide the pair, FIFOs, extension floods, and files
/// of many tiny volumes.
@Suite struct PairAndStreamEdgeTests {
    static let pairHeader = "shared-copies/nifti-edge-cases/generated/anatomical_nifti1pair.hdr"
    static let pairImage = "shared-copies/nifti-edge-cases/generated/anatomical_nifti1pair.img"

    @Test func namedImageIsTheOneRead() throws {
        try withTemporaryDirectory { directory in
            let header = try Data(contentsOf: VolumeFixtures.volumes.appendingPathComponent(Self.pairHeader))
            let image = [UInt8](try Data(contentsOf: VolumeFixtures.volumes.appendingPathComponent(Self.pairImage)))
            try header.write(to: directory.appendingPathComponent("p.hdr"))
            try writeGzip(image, to: directory.appendingPathComponent("p.img.gz"))
            // A stale, different .img beside it must not be read when the .img.gz is named.
            try Data(repeating: 0, count: image.count).write(to: directory.appendingPathComponent("p.img"))
            let named = try VolumeReader.read(directory.appendingPathComponent("p.img.gz"))
            let reference = try VolumeReader.read(VolumeFixtures.volumes.appendingPathComponent(Self.pairHeader))
            #expect(named.data == reference.data)
            // Through the header, the plain .img is the pair's image (nibabel's choice too).
            #expect(try VolumeReader.read(directory.appendingPathComponent("p.hdr")).data.scalars.allSatisfy { $0 == 0 })
        }
    }

    @Test func singleFileMagicInAHdrIsReadAsAPair() throws {
        try withTemporaryDirectory { directory in
            var header = [UInt8](try Data(contentsOf: VolumeFixtures.volumes.appendingPathComponent(Self.pairHeader)))
            header[345] = UInt8(ascii: "+")  // "ni1" → "n+1", vox_offset stays 0
            try Data(header).write(to: directory.appendingPathComponent("q.hdr"))
            try Data(contentsOf: VolumeFixtures.volumes.appendingPathComponent(Self.pairImage)).write(to: directory.appendingPathComponent("q.img"))
            let volume = try VolumeReader.read(directory.appendingPathComponent("q.hdr"))
            #expect(volume.header?.isPair == true)
            #expect(volume.data == (try VolumeReader.read(VolumeFixtures.volumes.appendingPathComponent(Self.pairHeader))).data)
        }
    }

    @Test func fifoIsRejectedWithoutBlocking() throws {
        try withTemporaryDirectory { directory in
            let fifo = directory.appendingPathComponent("pipe.nii")
            #expect(mkfifo(fifo.path, 0o644) == 0)
            #expect(throws: VolumeError.cannotRead(path: fifo.path, reason: "not a regular file")) { try VolumeReader.read(fifo) }
        }
    }

    @Test func extensionFloodIsCappedAndManyTinyVolumesStreamFast() throws {
        try withTemporaryDirectory { directory in
            // 1×1×1×20000 int16 volumes after 5000 eight-byte extensions.
            let extensions = 5000, volumes = 20_000
            var block = HeaderBuilder(size: 352)
            block.int32(0, 348)
            for (axis, extent) in [4, 1, 1, 1, volumes, 1, 1, 1].enumerated() { block.int16(40 + 2 * axis, extent) }
            block.int16(70, VoxelType.int16.code)
            block.int16(72, 16)
            for axis in 0..<8 { block.float32(76 + 4 * axis, 1) }
            block.float32(108, Double(352 + 8 * extensions))
            block.string(344, "n+1", length: 4)
            var bytes = block.bytes
            bytes[348] = 1
            for _ in 0..<extensions { bytes += [8, 0, 0, 0, 6, 0, 0, 0] }
            for v in 0..<volumes { bytes += [UInt8(v & 0xff), UInt8((v >> 8) & 0x7f)] }
            let url = directory.appendingPathComponent("many.nii.gz")
            try writeGzip(bytes, to: url)
            let header = try VolumeReader.readHeader(url)
            #expect(header.extensionCodes.count == OpenedVolume.maximumExtensions)
            let (_, statistics) = try VolumeReader.statistics(url)
            #expect(statistics.count == volumes && statistics.maximum == Double(volumes - 1))
            #expect(statistics.sum == Double(volumes * (volumes - 1) / 2))
            let summary = VolumeSummary.inspect(url)
            #expect(summary.volumes == volumes && summary.extensions?.count == OpenedVolume.maximumExtensions)
        }
    }
}
