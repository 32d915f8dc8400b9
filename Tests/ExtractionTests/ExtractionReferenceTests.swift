import Autoencoders
import Foundation
import NeuralNet
import Patches
import TensorCore
import Testing
import TestSupport
import VolumeIO
@testable import Extraction

/// Extraction against an independent reference and its own invariants:
///
/// 1. PyTorch: maps and features of the fixture volume with the fixture weights
///    (Tests/Fixtures/make_extraction_fixtures.py) for the CAE encoder and the three SAE
///    variants, every pooling and two grids, in one slab and in one map row per slab.
/// 2. Tiling: features and whole maps are byte-identical whatever the slab budget.
/// 3. Map geometry: map extents, the map's affine, the 4-D NIfTI written from it.
/// 4. Region grid: PyTorch's adaptive bounds, coverage, rejection of grids finer than the map.
/// 5. Errors: scans smaller than the encoder's field of view or the grid, bad options.
private typealias Ref = ExtractionReference

@Suite struct ExtractionReferenceTests {
    // MARK: - 1. PyTorch reference

    /// What each fixture variant extracts with.
    struct Variant: CustomTestStringConvertible, Sendable {
        let name: String
        let model: ModelKind
        let saeLevels: Int?
        let deep: DeepSAELayers
        /// The expected map's key in `expected.safetensors`.
        let map: String
        let mapChannels: Int
        let featureChannels: Int
        var testDescription: String { name }

        var run: PretrainedRun { model == .cae ? Ref.caeRun : Ref.saeRun }

        func options(_ pooling: RegionPooling, _ grid: [Int]) -> ExtractionOptions {
            Ref.options(pooling: pooling, grid: grid, saeLevels: saeLevels, saeDeepLayers: deep)
        }
    }

    static let variants = [
        Variant(name: "cae.encoder", model: .cae, saeLevels: nil, deep: .grid, map: "cae.map", mapChannels: 8, featureChannels: 8),
        Variant(name: "sae.level1", model: .sae, saeLevels: 1, deep: .grid, map: "sae.map.1", mapChannels: 6, featureChannels: 6),
        Variant(name: "sae.grid", model: .sae, saeLevels: nil, deep: .grid, map: "sae.map.grid", mapChannels: 3, featureChannels: 3),
        Variant(name: "sae.pooled", model: .sae, saeLevels: 2, deep: .pooled, map: "sae.map.1", mapChannels: 6, featureChannels: 3),
    ]

    @Test(arguments: variants)
    func featuresAndMapsEqualPyTorch(_ variant: Variant) throws {
        let run = variant.run
        let expectedMap = try #require(Ref.expected[variant.map])
        for pooling in [RegionPooling.mean, .max] {
            for grid in [[2, 2, 2], [3, 2, 1]] {
                let key = "\(variant.name).\(pooling.rawValue).\(grid.map(String.init).joined(separator: "x"))"
                let expected = try #require(Ref.expected[key], "fixture \(key)")
                // One slab (the default budget) and one map row per slab (a budget of 0).
                for megabytes in [256, 0] {
                    let extractor = try FeatureExtractor(run: run, options: variant.options(pooling, grid), resources: Ref.tiles(megabytes))
                    #expect(extractor.encoder.mapChannels == variant.mapChannels)
                    #expect(extractor.encoder.featureChannels == variant.featureChannels)
                    #expect(extractor.featureCount == expected.count, "\(key)")
                    let scan = try extractor.extract(ScanSource(name: "fixture", image: Ref.volume),
                                                     networks: try extractor.encoder.makeNetworks(), keepMap: true)
                    let worst = Ref.closeness(scan.features, expected.scalars)
                    #expect(worst == 0, "\(key), \(megabytes) MB: features differ from PyTorch's by up to \(worst) beyond rtol 1e-5 / atol 1e-6")
                    let map = try #require(scan.map)
                    #expect(map.values.shape == expectedMap.shape, "\(key): map shape")
                    let mapWorst = Ref.closeness(map.values.scalars, expectedMap.scalars)
                    #expect(mapWorst == 0, "\(key), \(megabytes) MB: map differs from PyTorch's by up to \(mapWorst)")
                    #expect(scan.inputShape == Ref.volumeShape)
                }
            }
        }
    }

    /// The fixture volume is read with nibabel's axes and affine, and used as stored
    /// (`normalization = none`).
    @Test func fixtureVolumeIsReadAsNibabelDoes() throws {
        let scan = try Ref.extract(Ref.saeRun, Ref.volume, options: Ref.options(grid: [1, 1, 1]))
        #expect(scan.inputShape == Triple(23, 19, 21))
        #expect(scan.affine == Affine(rows: [-2, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72]))
        let normalised = try NormalisedScan.load(ScanSource(name: "fixture", image: Ref.volume),
                                                 options: Ref.saeRun.config.patches)
        let low = normalised.values.min() ?? .nan, high = normalised.values.max() ?? .nan
        #expect(low == 0 && high == 1, "values as stored: the script scales them to [0, 1]")
    }

    // MARK: - 2. Tiling

    /// The ExtractionFixtures runs (trained, not the reference weights), three ways: the CAE
    /// encoder, the two-level SAE on the grid, and per region.
    @Test(arguments: ["cae", "sae.grid", "sae.pooled"])
    func slabsGiveTheSameBytes(_ name: String) throws {
        let baseOptions = Ref.options(grid: [3, 2, 4], saeDeepLayers: name == "sae.pooled" ? .pooled : .grid)
        let run = try PretrainedRun.load(name == "cae" ? ExtractionCohort.caeRun : ExtractionCohort.saeRun)
        let folder = temporaryFolder("tiling-\(name)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        // Odd extents everywhere (pooling floors, regions overlap); the large one needs several
        // slabs even with 1 MB.
        let volumes: [(Triple, [Int])] = [(Triple(37, 29, 31), [0]), (Triple(61, 53, 47), [0, 1])]
        for (index, (shape, budgets)) in volumes.enumerated() {
            let url = folder.appendingPathComponent("odd\(index).nii.gz")
            try Ref.writeVolume(shape, seed: 100 + UInt64(index), to: url)
            for pooling in [RegionPooling.mean, .max] {
                var options = baseOptions
                options.pooling = pooling
                let encoder = try FeatureEncoder(run: run, options: options)
                let mapRows = encoder.mapShape(for: shape).d
                let wholeRows = encoder.mapRowsPerSlab(inputShape: shape, bytes: ExtractionResources().tileMegabytes * 1_000_000)
                #expect(wholeRows >= mapRows, "\(name) \(shape): the default budget holds the whole map")
                let whole = try Ref.extract(run, url, options: options, keepMap: true)
                let wholeMap = try #require(whole.map)
                #expect(wholeMap.values.shape == [encoder.mapChannels] + encoder.mapShape(for: shape).array)
                for megabytes in budgets {
                    let rows = encoder.mapRowsPerSlab(inputShape: shape, bytes: megabytes * 1_000_000)
                    let slabs = (mapRows + rows - 1) / rows
                    #expect(slabs > 1, "\(name) \(shape) at \(megabytes) MB: \(slabs) slab(s) of \(rows) rows would not test tiling")
                    if megabytes == 0 { #expect(rows == 1) }
                    let tiled = try Ref.extract(run, url, options: options, resources: Ref.tiles(megabytes), keepMap: true)
                    let tiledMap = try #require(tiled.map)
                    let what = "\(name) \(shape) \(pooling) at \(megabytes) MB (\(slabs) slabs of \(rows) rows)"
                    #expect(tiledMap.values.shape == wholeMap.values.shape)
                    #expect(tiledMap.affine == wholeMap.affine)
                    // Close in any case (a slab that read the wrong rows would be far off)...
                    let featureGap = Ref.closeness(tiled.features, whole.features, rtol: 1e-6, atol: 1e-6)
                    let mapGap = Ref.closeness(tiledMap.values.scalars, wholeMap.values.scalars, rtol: 1e-6, atol: 1e-6)
                    #expect(featureGap == 0 && mapGap == 0, "\(what): features off by \(featureGap), map by \(mapGap) beyond 1e-6")
                    // ...and, as `ExtractionResources.tileMegabytes` promises, the same bytes.
                    let featureDifference = Ref.bitDifference(tiled.features, whole.features)
                    #expect(featureDifference == nil, "\(what): features: \(featureDifference ?? "")")
                    if pooling == .mean {  // the map does not depend on the pooling
                        let mapDifference = Ref.bitDifference(tiledMap.values.scalars, wholeMap.values.scalars)
                        #expect(mapDifference == nil, "\(what): maps: \(mapDifference ?? "")")
                    }
                }
            }
        }
    }

    /// Each slab's input rows lie in the volume, start on a multiple of the strides, and
    /// together the slabs' map rows cover the map once.
    @Test func slabInputRowsAreAlignedAndCoverTheMap() throws {
        let runs = [("cae", Ref.caeRun), ("sae", Ref.saeRun)]
        for (name, run) in runs {
            let encoder = try FeatureEncoder(run: run, options: Ref.options(grid: [1, 1, 1]))
            let alignment = name == "cae" ? 4 : 1
            for n in [8, 9, 10, 11, 23, 37, 40] {
                let mapRows = encoder.mapShape(for: Triple(n, 9, 9)).d
                for rowsPerSlab in 1...max(1, mapRows) {
                    var covered = 0
                    for start in stride(from: 0, to: mapRows, by: rowsPerSlab) {
                        let rows = start..<min(start + rowsPerSlab, mapRows)
                        let input = encoder.inputRows(forMapRows: rows, inputExtent: n)
                        #expect(input.lowerBound >= 0 && input.upperBound <= n, "\(name) n=\(n) rows \(rows): input \(input)")
                        #expect(input.lowerBound % alignment == 0, "\(name) n=\(n) rows \(rows): input starts at \(input.lowerBound)")
                        let first = encoder.firstMapRow(ofSlabStartingAt: input.lowerBound)
                        let produced = encoder.mapShape(for: Triple(input.count, 9, 9)).d
                        #expect(first <= rows.lowerBound && rows.upperBound <= first + produced,
                                "\(name) n=\(n) rows \(rows): the slab \(input) yields map rows \(first)..<\(first + produced)")
                        covered += rows.count
                    }
                    #expect(covered == mapRows)
                }
            }
        }
    }

    // MARK: - 3. Map geometry

    @Test(arguments: [ModelKind.cae, .sae])
    func mapShapeAffineAndNIfTI(_ kind: ModelKind) throws {
        let run = kind == .cae ? Ref.caeRun : Ref.saeRun
        let (scale, offset, expectedShape) = kind == .cae ? (4.0, 1.5, Triple(5, 4, 5)) : (1.0, 2.0, Triple(19, 15, 17))
        let extractor = try FeatureExtractor(run: run, options: Ref.options(grid: [2, 2, 2]))
        let encoder = extractor.encoder
        #expect(encoder.mapShape(for: Ref.volumeShape) == expectedShape)
        for axis in 0..<3 {
            let mapping = encoder.mapToInput(axis: axis)
            #expect(mapping.scale == scale && mapping.offset == offset, "axis \(axis): \(mapping)")
        }
        // The map extents for many inputs, against the layers' arithmetic.
        for n in 1...40 {
            let shape = Triple(n, n + 3, n + 6)
            let extent: (Int) -> Int = kind == .cae ? { $0 / 2 / 2 } : { max(0, $0 - 4) }
            #expect(encoder.mapShape(for: shape) == Triple(extent(shape.d), extent(shape.h), extent(shape.w)), "input \(shape)")
        }

        let scan = try extractor.extract(ScanSource(name: "fixture", image: Ref.volume),
                                         networks: try encoder.makeNetworks(), keepMap: true)
        let map = try #require(scan.map)
        let channels = encoder.mapChannels
        #expect(map.values.shape == [channels] + expectedShape.array)
        // Map voxel j sits at input voxel scale·j + offset, in the scan's world.
        for voxel in [[0.0, 0, 0], [1, 2, 3], [Double(expectedShape.d - 1), Double(expectedShape.h - 1), Double(expectedShape.w - 1)]] {
            let world = map.affine.apply(voxel)
            let input = scan.affine.apply(voxel.map { scale * $0 + offset })
            let gap = zip(world, input).map { abs($0 - $1) }.max() ?? .nan
            #expect(gap < 1e-9, "map voxel \(voxel): \(world) vs input voxel's \(input)")
        }
        let origin = map.affine.apply([0, 0, 0])
        let expectedOrigin = [90 - 2 * offset, -126 + 2 * offset, -72 + 2 * offset]
        let originGap = zip(origin, expectedOrigin).map { abs($0 - $1) }.max() ?? .nan
        #expect(originGap < 1e-9, "map origin \(origin)")

        let folder = temporaryFolder("map-\(kind.rawValue)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let url = folder.appendingPathComponent("map.nii.gz")
        try map.write(to: url)
        let header = try VolumeReader.readHeader(url)
        #expect(header.dims == expectedShape.array + [channels])
        #expect(header.volumeCount == channels)
        #expect(header.datatype == .float32)
        let size = expectedShape.product
        for c in [0, channels / 2, channels - 1] {
            let frame = try VolumeReader.read(url, options: VolumeReadOptions(volumeIndex: c))
            #expect(frame.shape == expectedShape.array)
            let stored = Array(map.values.scalars[(c * size)..<((c + 1) * size)])
            let frameDifference = Ref.bitDifference(frame.data.scalars, stored)
            #expect(frameDifference == nil, "channel \(c): \(frameDifference ?? "")")
            let affineGap = zip(frame.affine.entries, map.affine.entries).map { abs($0 - $1) }.max() ?? .nan
            #expect(affineGap < 1e-4, "channel \(c): file affine \(frame.affine), map \(map.affine)")
            let fileOrigin = frame.affine.apply([0, 0, 0])
            let fileGap = zip(fileOrigin, expectedOrigin).map { abs($0 - $1) }.max() ?? .nan
            #expect(fileGap < 1e-4, "channel \(c): file origin \(fileOrigin)")
        }
    }

    // MARK: - 4. Region grid

    /// PyTorch's adaptive pooling bounds, computed in floating point as its docs state them.
    static func torchBounds(_ i: Int, n: Int, g: Int) -> Range<Int> {
        Int((Double(i * n) / Double(g)).rounded(.down))..<Int((Double((i + 1) * n) / Double(g)).rounded(.up))
    }

    static let boundCases: [(Int, Int)] = [(1, 1), (2, 1), (4, 4), (5, 2), (5, 3), (4, 3), (7, 3), (10, 3), (17, 5), (6, 4), (19, 7), (64, 64), (65, 64), (100, 7)]

    @Test(arguments: boundCases)
    func regionBoundsArePyTorchs(_ n: Int, _ g: Int) throws {
        // The case on each axis in turn (the others small and different), so axes cannot be mixed up.
        for axis in 0..<3 {
            var extents = [3, 2, 5], regions = [2, 1, 3]
            (extents[axis], regions[axis]) = (n, g)
            let grid = try RegionGrid(mapShape: Triple(extents[0], extents[1], extents[2]), grid: regions)
            #expect(grid.count == regions.reduce(1, *))
            var covered = Set<Int>()
            for i in 0..<g {
                let bounds = grid.bounds(i, axis: axis)
                #expect(bounds == Self.torchBounds(i, n: n, g: g), "n=\(n) g=\(g) axis \(axis) region \(i)")
                #expect(!bounds.isEmpty)
                covered.formUnion(bounds)
            }
            #expect(covered == Set(0..<n), "n=\(n) g=\(g): regions cover the axis")
            #expect(grid.bounds(0, axis: axis).lowerBound == 0 && grid.bounds(g - 1, axis: axis).upperBound == n)
        }
    }

    @Test func regionNumberingIsChannelMajorRowMajor() throws {
        let grid = try RegionGrid(mapShape: Triple(9, 8, 7), grid: [3, 2, 4])
        var region = 0
        for i in 0..<3 {
            for j in 0..<2 {
                for k in 0..<4 {
                    let (a, b, c) = grid.indices(of: region)
                    #expect(a == i && b == j && c == k, "region \(region)")
                    region += 1
                }
            }
        }
        #expect(region == grid.count)
    }

    @Test func gridsFinerThanTheMapAreRejected() {
        let map = Triple(5, 4, 3)
        for grid in [[6, 1, 1], [1, 5, 1], [1, 1, 4], [0, 1, 1], [1, -1, 1], [2, 2], [1, 1, 1, 1]] {
            #expect(throws: ExtractionError.self, "grid \(grid) on a 5x4x3 map") { _ = try RegionGrid(mapShape: map, grid: grid) }
        }
        // The largest grid the map takes: one voxel per region.
        #expect(throws: Never.self) { _ = try RegionGrid(mapShape: map, grid: [5, 4, 3]) }
    }

    /// The pooler against a direct computation, on a random map fed in uneven slabs
    /// (overlapping regions cross slab boundaries).
    @Test(arguments: [RegionPooling.mean, .max])
    func poolerMatchesDirectPooling(_ pooling: RegionPooling) throws {
        let (channels, shape) = (3, Triple(11, 7, 5))
        let grid = try RegionGrid(mapShape: shape, grid: [4, 3, 2])
        let map = TestSupport.randomTensor([channels] + shape.array, seed: 5)
        var direct = [Float]()
        for c in 0..<channels {
            for region in 0..<grid.count {
                let (i, j, k) = grid.indices(of: region)
                var values = [Float]()
                for x in grid.bounds(i, axis: 0) {
                    for y in grid.bounds(j, axis: 1) {
                        for z in grid.bounds(k, axis: 2) { values.append(map.scalars[((c * shape.d + x) * shape.h + y) * shape.w + z]) }
                    }
                }
                direct.append(pooling == .max ? values.max()! : Float(values.reduce(0.0) { $0 + Double($1) } / Double(values.count)))
            }
        }
        var pooler = RegionPooler(grid: grid, channels: channels, pooling: pooling)
        let plane = shape.h * shape.w
        var start = 0
        for rows in [3, 1, 4, 3] {
            // A slab [1, C, s, Y, Z] holding one row more than is added, as the tiler's slabs may.
            let slabRows = min(rows + 1, shape.d - start)
            var values = [Float]()
            for c in 0..<channels {
                let base = (c * shape.d + start) * plane
                values += map.scalars[base..<(base + slabRows * plane)]
            }
            let slab = try Tensor(shape: [1, channels, slabRows, shape.h, shape.w], scalars: values)
            pooler.add(slab, firstRow: start, rows: start..<(start + rows))
            start += rows
        }
        #expect(start == shape.d)
        let pooled = pooler.result()
        #expect(Ref.closeness(pooled, direct, rtol: 1e-6, atol: 1e-7) == 0)
    }

    // MARK: - 5. Errors

    @Test func scansSmallerThanTheFieldOfViewNameTheirFileAndLine() throws {
        let folder = temporaryFolder("small-scans")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        // SAE: 5 voxels per axis at least; CAE with two poolings: 4.
        let cases: [(ModelKind, Triple)] = [(.sae, Triple(4, 12, 12)), (.sae, Triple(12, 12, 4)), (.cae, Triple(3, 12, 12)), (.cae, Triple(12, 3, 12))]
        for (index, (kind, shape)) in cases.enumerated() {
            let url = folder.appendingPathComponent("small\(index).nii.gz")
            try Ref.writeVolume(shape, seed: UInt64(index), to: url)
            let run = kind == .cae ? Ref.caeRun : Ref.saeRun
            do {
                _ = try Ref.extract(run, url, options: Ref.options(grid: [1, 1, 1]), line: 7)
                Issue.record("\(kind) on \(shape): no error")
            } catch let ExtractionError.unusableScan(path, line, reason) {
                #expect(path == url.path)
                #expect(line == 7)
                #expect(reason.contains("field of view"), "\(reason)")
                let message = ExtractionError.unusableScan(path: path, line: line, reason: reason).description
                #expect(message.hasPrefix("manifest line 7: \(url.path): "), "\(message)")
            }
        }
    }

    @Test func gridFinerThanTheMapIsAScanError() throws {
        let folder = temporaryFolder("grid-too-fine")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let url = folder.appendingPathComponent("scan.nii.gz")
        try Ref.writeVolume(Triple(8, 9, 10), seed: 1, to: url)  // SAE map 4x5x6
        let run = Ref.saeRun
        for grid in [[5, 1, 1], [1, 6, 1], [1, 1, 7]] {
            let extractor = try FeatureExtractor(run: run, options: Ref.options(grid: grid))
            #expect(throws: ExtractionError.self) { _ = try extractor.regionGrid(forInputShape: Triple(8, 9, 10)) }
            do {
                _ = try extractor.extract(ScanSource(name: "scan", image: url, line: 4), networks: try extractor.encoder.makeNetworks())
                Issue.record("grid \(grid): no error")
            } catch let ExtractionError.unusableScan(path, line, reason) {
                #expect(path == url.path && line == 4)
                #expect(reason.contains("grid") && reason.contains("4x5x6"), "\(reason)")
            }
        }
        // The finest grid the map takes works.
        let scan = try Ref.extract(run, url, options: Ref.options(grid: [4, 5, 6]))
        #expect(scan.features.count == 3 * 4 * 5 * 6)
    }

    /// Through a manifest: the too-small scan is reported with its manifest line (the run
    /// stops), or left out and listed with `skipBad`.
    @Test func extractionRunReportsTooSmallScans() throws {
        let folder = temporaryFolder("run-small")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Ref.volume, to: folder.appendingPathComponent("good.nii"))
        try Ref.writeVolume(Triple(12, 4, 12), seed: 3, to: folder.appendingPathComponent("small.nii.gz"))
        let manifest = folder.appendingPathComponent("manifest.tsv")
        try Data("participant_id\tsession_id\tpath\tdiagnosis\nsub-01\tses-M000\tgood.nii\tCN\nsub-02\tses-M000\tsmall.nii.gz\tAD\n".utf8)
            .write(to: manifest)
        let small = folder.appendingPathComponent("small.nii.gz").path
        let run = Ref.saeRun
        do {
            _ = try Extraction.run(run, manifest: manifest, options: Ref.options(grid: [2, 2, 2]))
            Issue.record("no error")
        } catch let ExtractionError.badScans(messages) {
            #expect(messages.count == 1)
            let message = messages.first ?? ""
            #expect(message.contains("line 3") && message.contains(small) && message.contains("field of view"), "\(message)")
        }
        let set = try Extraction.run(run, manifest: manifest, options: Ref.options(grid: [2, 2, 2]), skipBad: true)
        #expect(set.record.rows.count == 1)
        #expect(set.record.rows.first?.participantID == "sub-01")
        #expect(set.record.skipped.count == 1)
        #expect(set.record.skipped.first?.line == 3)
        #expect(set.record.skipped.first?.path == small)
        #expect(set.values.shape == [1, 3 * 8])
    }

    @Test func optionsOutsideTheirRangesAreRejected() throws {
        for grid in [[0, 1, 1], [65, 1, 1], [1, 1, 0], [1, 65, 1], [2, 2], [2, 2, 2, 2], [-1, 3, 3]] {
            #expect(throws: ExtractionError.self, "grid \(grid)") { try Ref.options(grid: grid).validate() }
        }
        for grid in [[1, 1, 1], [64, 64, 64], [3, 1, 2]] {
            #expect(throws: Never.self, "grid \(grid)") { try Ref.options(grid: grid).validate() }
        }
        #expect(throws: ExtractionError.self) { try Ref.options(saeLevels: 0).validate() }
        // The encoder checks the options, and SAE levels against the model's.
        #expect(throws: ExtractionError.self) { _ = try FeatureEncoder(run: Ref.caeRun, options: Ref.options(grid: [0, 1, 1])) }
        #expect(throws: ExtractionError.self) { _ = try FeatureEncoder(run: Ref.saeRun, options: Ref.options(saeLevels: 3)) }
        let two = try FeatureEncoder(run: Ref.saeRun, options: Ref.options(saeLevels: 2))
        #expect(two.mapChannels == 3)
    }
}
