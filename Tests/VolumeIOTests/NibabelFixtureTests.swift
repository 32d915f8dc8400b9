import Foundation
import Testing
import TensorCore
@testable import VolumeIO

/// Every volume in Tests/Fixtures/Volumes (always) and in ../shared/data (when present) is read
/// and compared with what nibabel 5.4.2 made of it: Tests/Fixtures/volume_fixtures.json, written
/// by Tests/Fixtures/make_volume_fixtures.py.
enum VolumeFixtures {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let volumes = fixtures.appendingPathComponent("Volumes")
    /// ../shared/data beside the repository (CI has it; a bare clone may not).
    static let shared = fixtures.deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("shared/data")
    static var sharedIsPresent: Bool { FileManager.default.fileExists(atPath: shared.appendingPathComponent("SHA256SUMS").path) }

    struct Statistics: Decodable {
        let sum, mean, min, max: Double
        let nonfinite: Int
    }

    struct Entry: Decodable, CustomTestStringConvertible {
        let root: String
        let path: String
        let nibabel_class: String?
        let loaded_via: String?
        let error: String?
        let gzip_error: String?
        let header_loads: Bool
        let byte_order: String?
        let header_shape: [Int]?
        let datatype: String?
        let qform_code: Int?
        let sform_code: Int?
        let affine: [[Double]]?
        let voxel_size: [Double]?
        let axcodes: String?
        let slope: Double?
        let inter: Double?
        let extension_codes: [Int]?
        let volume_count: Int?
        let volume0: Statistics?
        let last_volume: Statistics?
        let all: Statistics?
        let probe: [[Double]]?

        var url: URL { (root == "shared" ? VolumeFixtures.shared : VolumeFixtures.volumes).appendingPathComponent(path) }
        var testDescription: String { "\(root)/\(path)" }
        /// nibabel read the voxels (through nib.load, or from_file_map for the .img.gz pair it
        /// cannot find by itself) and the gzip stream checks out.
        var readable: Bool { all != nil && gzip_error == nil }
    }

    struct Written: Decodable {
        struct Source: Decodable {
            let root: String
            let path: String
        }

        let source: Source
        let output: String
        let datatype: String
        let volume: Int?
        let affine: [[Double]]
        let sform_code: Int
        let qform_code: Int
        let shape: [Int]
        let all: Statistics
    }

    struct Table: Decodable {
        let nibabel_version: String
        let files: [Entry]
        let written: [Written]
    }

    static let table: Table = {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        do {
            return try decoder.decode(Table.self, from: Data(contentsOf: fixtures.appendingPathComponent("volume_fixtures.json")))
        } catch {
            fatalError("cannot read volume_fixtures.json: \(error)")
        }
    }()

    static var localEntries: [Entry] { table.files.filter { $0.root == "fixtures" } }
    static var sharedEntries: [Entry] { table.files.filter { $0.root == "shared" } }
}

/// |a − b| ≤ atol + rtol·|b|.
func close(_ a: Double, _ b: Double, rtol: Double = 1e-6, atol: Double = 1e-6) -> Bool {
    abs(a - b) <= atol + rtol * abs(b)
}

private func checkStatistics(_ ours: VoxelStatistics, _ theirs: VolumeFixtures.Statistics, _ what: String, _ entry: VolumeFixtures.Entry) {
    #expect(ours.nonFinite == theirs.nonfinite, "\(entry) \(what): non-finite count")
    // Our voxels are Float32 (one rounding of nibabel's float64 value): relative 1e-6 covers it.
    #expect(close(ours.sum, theirs.sum, rtol: 1e-6, atol: 1e-3), "\(entry) \(what): sum \(ours.sum) vs \(theirs.sum)")
    #expect(close(ours.mean, theirs.mean, rtol: 1e-6, atol: 1e-6), "\(entry) \(what): mean \(ours.mean) vs \(theirs.mean)")
    #expect(close(ours.minimum, theirs.min, rtol: 1e-7, atol: 0), "\(entry) \(what): min \(ours.minimum) vs \(theirs.min)")
    #expect(close(ours.maximum, theirs.max, rtol: 1e-7, atol: 0), "\(entry) \(what): max \(ours.maximum) vs \(theirs.max)")
}

/// Header fields: dims, datatype, byte order, codes, scaling, extensions and nibabel's affine.
private func checkHeader(_ header: VolumeHeader, _ entry: VolumeFixtures.Entry) throws {
    #expect(header.dims == entry.header_shape, "\(entry): dims")
    #expect(header.datatype.description == entry.datatype, "\(entry): datatype")
    #expect((header.byteOrder == .bigEndian ? ">" : "<") == entry.byte_order, "\(entry): byte order")
    if header.format != .analyze {
        #expect(header.qformCode == entry.qform_code && header.sformCode == entry.sform_code, "\(entry): transform codes")
        #expect(header.extensionCodes == entry.extension_codes, "\(entry): extensions \(header.extensionCodes)")
    }
    #expect(header.scaling?.slope == entry.slope, "\(entry): slope")
    if let inter = entry.inter { #expect(header.scaling?.intercept == inter, "\(entry): intercept") }
    #expect(header.volumeCount == entry.volume_count, "\(entry): volume count")
    // CIFTI files have no affine in nibabel (their geometry is in the XML extension).
    guard let affine = entry.affine else { return }
    for r in 0..<4 {
        for c in 0..<4 {
            #expect(close(header.affine[r, c], affine[r][c], rtol: 1e-9, atol: 1e-9),
                    "\(entry): affine[\(r),\(c)] \(header.affine[r, c]) vs \(affine[r][c])")
        }
    }
    #expect(header.affine.axisCodes == entry.axcodes, "\(entry): orientation")
    let sizes = try #require(entry.voxel_size)
    #expect(zip(header.affine.voxelSizes, sizes).allSatisfy { close($0, $1, rtol: 1e-12, atol: 1e-12) }, "\(entry): voxel size")
}

/// nibabel's failure, translated to the error we give for the same file.
private func expectedError(_ entry: VolumeFixtures.Entry, _ error: VolumeError) -> Bool {
    let reason = entry.gzip_error ?? entry.error ?? ""
    switch error {
    case .missingImageFile: return reason.hasPrefix("FileNotFoundError")
    case .truncatedGzip: return reason.hasPrefix("EOFError")
    case .truncatedData: return reason.hasPrefix("OSError: Expected")
    case .corruptGzip: return reason.hasPrefix("BadGzipFile")
    case .emptyFile: return reason.contains("Empty file")
    case .notAVolume: return reason.contains("Cannot work out file type")
    default: return false
    }
}

private func check(_ entry: VolumeFixtures.Entry) throws {
    let url = entry.url
    if entry.header_loads && entry.header_shape != nil {
        try checkHeader(try VolumeReader.readHeader(url), entry)
    }
    guard entry.readable else {
        do {
            _ = try VolumeReader.read(url, options: VolumeReadOptions(nonFinite: .keep))
            Issue.record("\(entry): nibabel fails (\(entry.gzip_error ?? entry.error ?? "?")) but we read it")
        } catch let error as VolumeError {
            #expect(expectedError(entry, error), "\(entry): nibabel says \(entry.gzip_error ?? entry.error ?? "?"), we say \(error)")
            #expect(error.path.hasSuffix(url.lastPathComponent) || error.path.contains(url.deletingPathExtension().lastPathComponent),
                    "\(entry): the error names the file: \(error)")
        }
        return
    }
    let count = try #require(entry.volume_count)
    let first = try VolumeReader.read(url, options: VolumeReadOptions(volumeIndex: 0, nonFinite: .keep))
    try checkHeader(try #require(first.header), entry)
    #expect(first.shape == Array((entry.header_shape ?? []).prefix(3)) + [Int](repeating: 1, count: max(0, 3 - (entry.header_shape ?? []).count)))
    checkStatistics(VoxelStatistics(first.data), try #require(entry.volume0), "volume 0", entry)
    let last = try VolumeReader.read(url, options: VolumeReadOptions(volumeIndex: count - 1, nonFinite: .keep))
    checkStatistics(VoxelStatistics(last.data), try #require(entry.last_volume), "last volume", entry)
    var all = VoxelStatistics()
    var probes: [Int: [[Double]]] = [:]
    for probe in entry.probe ?? [] { probes[Int(probe[3]), default: []].append(probe) }
    try VolumeReader.forEachVolume(url) { index, volume in
        volume.withUnsafeBufferPointer { all.accumulate($0) }
        for probe in probes[index] ?? [] {
            let value = Double(volume[Int(probe[0]), Int(probe[1]), Int(probe[2])])
            #expect(value == probe[4] || close(value, probe[4], rtol: 1e-7, atol: 0) || (value.isNaN && probe[4].isNaN),
                    "\(entry): voxel \(probe.prefix(4).map { Int($0) }) = \(value), nibabel \(probe[4])")
        }
    }
    checkStatistics(all, try #require(entry.all), "all volumes", entry)
}

@Suite struct NibabelFixtureTests {
    @Test func tableCoversTheCommittedVolumes() {
        #expect(VolumeFixtures.table.nibabel_version == "5.4.2")
        #expect(VolumeFixtures.localEntries.count >= 50)
        #expect(VolumeFixtures.localEntries.filter(\.readable).count >= 40)
    }

    @Test(arguments: VolumeFixtures.localEntries)
    func committedVolumeMatchesNibabel(_ entry: VolumeFixtures.Entry) throws {
        try check(entry)
    }

    /// Every volume in ../shared/data; CI has the folder, a bare clone may not.
    @Test(arguments: VolumeFixtures.sharedIsPresent ? VolumeFixtures.sharedEntries : [])
    func sharedVolumeMatchesNibabel(_ entry: VolumeFixtures.Entry) throws {
        try check(entry)
    }

    @Test func sharedDataIsCoveredWhenPresent() {
        guard VolumeFixtures.sharedIsPresent else {
            print("skipped \(VolumeFixtures.sharedEntries.count) ../shared/data volumes: \(VolumeFixtures.shared.path) is not present")
            return
        }
        #expect(VolumeFixtures.sharedEntries.count >= 36)
    }
}
