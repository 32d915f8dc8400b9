import Autoencoders
import Foundation
import NeuralNet
import Patches
import TensorCore
import VolumeIO

/// One scan's feature map before pooling: `values [C, X', Y', Z']` on the grid of `affine`
/// (the scan's affine composed with the map-to-input voxel mapping).
public struct FeatureMap: Sendable {
    public let values: Tensor
    public let affine: Affine

    /// The map as a 4-D NIfTI file (one frame per channel).
    public func write(to url: URL) throws {
        let (c, shape) = (values.shape[0], Array(values.shape.dropFirst()))
        let size = shape.reduce(1, *)
        let frames = try (0..<c).map { channel in
            try Tensor(shape: shape, scalars: Array(values.scalars[(channel * size)..<((channel + 1) * size)]))
        }
        try VolumeWriter.write(frames: frames, affine: affine, to: url)
    }
}

/// What extraction found for one scan.
public struct ScanFeatures: Sendable {
    /// `featureChannels · regions` values, channel first.
    public let features: [Float]
    public let inputShape: Triple
    public let affine: Affine
    /// Present when requested.
    public var map: FeatureMap?
}

/// Turns scans into feature vectors with a `FeatureEncoder`: read and normalise as in
/// training, encode slab by slab, pool over the region grid, apply the per-region network.
public struct FeatureExtractor: Sendable {
    public let encoder: FeatureEncoder
    public let options: ExtractionOptions
    /// The intensity normalisation the encoder was trained with.
    public let patchOptions: PatchSamplingOptions
    public let resources: ExtractionResources

    public init(run: PretrainedRun, options: ExtractionOptions, resources: ExtractionResources = ExtractionResources()) throws {
        try self.init(config: run.config, model: run.model, options: options, resources: resources)
    }

    /// An extractor for `model`, built as `config` describes.
    public init(config: PretrainConfig, model: any AutoencoderModel, options: ExtractionOptions,
                resources: ExtractionResources = ExtractionResources()) throws {
        encoder = try FeatureEncoder(config: config, model: model, options: options)
        self.options = options
        patchOptions = config.patches
        self.resources = resources
    }

    /// Features per scan.
    public var featureCount: Int { encoder.featureChannels * options.regionCount }

    /// The region grid for scans of `shape`.
    public func regionGrid(forInputShape shape: Triple) throws(ExtractionError) -> RegionGrid {
        try RegionGrid(mapShape: encoder.mapShape(for: shape), grid: options.grid)
    }

    /// Why scans of `shape` cannot be extracted (too small for the encoder's field of view or
    /// for the grid), or nil.
    public func geometryProblem(_ shape: Triple) -> String? {
        let map = encoder.mapShape(for: shape)
        guard map.product > 0 else { return "a \(shape.d)x\(shape.h)x\(shape.w) volume is smaller than the encoder's field of view" }
        do { _ = try regionGrid(forInputShape: shape) } catch { return error.description }
        return nil
    }

    /// Extracts one scan on `networks` (built by `encoder.makeNetworks()` for this thread).
    /// - Throws: `PatchError.badScan` for unusable files, `ExtractionError.unusableScan` for
    ///   scans the encoder or grid cannot cover or that give non-finite features.
    public func extract(_ source: ScanSource, networks: (map: Sequential, perRegion: Sequential?), keepMap: Bool = false) throws -> ScanFeatures {
        try features(of: try NormalisedScan.load(source, options: patchOptions), source: source, networks: networks, keepMap: keepMap)
    }

    /// Extracts a scan already read and normalised (`source` names it in errors).
    public func features(of scan: NormalisedScan, source: ScanSource, networks: (map: Sequential, perRegion: Sequential?),
                         keepMap: Bool = false) throws -> ScanFeatures {
        let mapShape = encoder.mapShape(for: scan.shape)
        func unusable(_ reason: String) -> ExtractionError { .unusableScan(path: source.image.path, line: source.line, reason: reason) }
        if let problem = geometryProblem(scan.shape) { throw unusable(problem) }
        let grid = try regionGrid(forInputShape: scan.shape)
        var pooler = RegionPooler(grid: grid, channels: encoder.mapChannels, pooling: options.pooling)
        var map = keepMap ? [Float](repeating: 0, count: encoder.mapChannels * mapShape.product) : []
        let slabRows = encoder.mapRowsPerSlab(inputShape: scan.shape, bytes: resources.tileMegabytes * 1_000_000)
        let (ny, nz) = (scan.shape.h, scan.shape.w)
        for start in stride(from: 0, to: mapShape.d, by: slabRows) {
            let rows = start..<min(start + slabRows, mapShape.d)
            let input = encoder.inputRows(forMapRows: rows, inputExtent: scan.shape.d)
            let slab = try Tensor(shape: [1, 1, input.count, ny, nz],
                                  scalars: Array(scan.values[(input.lowerBound * ny * nz)..<(input.upperBound * ny * nz)]))
            let output = try networks.map.forward(slab, mode: .inference)
            let firstRow = encoder.firstMapRow(ofSlabStartingAt: input.lowerBound)
            pooler.add(output, firstRow: firstRow, rows: rows)
            if keepMap { copyRows(output, firstRow: firstRow, rows: rows, mapShape: mapShape, into: &map) }
        }
        var features = pooler.result()
        if let perRegion = networks.perRegion {
            // [C, R] → [R, C] → per-region network → [R, C'] → [C', R].
            let pooled = try Tensor(shape: [encoder.mapChannels, grid.count], scalars: features).transposed()
            features = try perRegion.forward(pooled, mode: .inference).transposed().scalars
        }
        if let bad = features.firstIndex(where: { !$0.isFinite }) {
            throw unusable("feature \(bad) is \(features[bad]) (non-finite activations: check the scan's intensities and the model)")
        }
        var featureMap: FeatureMap?
        if keepMap {
            var mapAffine = Affine.identity
            for axis in 0..<3 {
                let (scale, offset) = encoder.mapToInput(axis: axis)
                mapAffine.entries[axis * 4 + axis] = scale
                mapAffine.entries[axis * 4 + 3] = offset
            }
            featureMap = FeatureMap(values: try Tensor(shape: [encoder.mapChannels] + mapShape.array, scalars: map), affine: scan.affine * mapAffine)
        }
        return ScanFeatures(features: features, inputShape: scan.shape, affine: scan.affine, map: featureMap)
    }

    /// Copies map rows `rows` of `slab [1, C, s, Y', Z']` (row 0 = global `firstRow`) into
    /// the whole map `[C, X', Y', Z']`.
    private func copyRows(_ slab: Tensor, firstRow: Int, rows: Range<Int>, mapShape: Triple, into map: inout [Float]) {
        let plane = mapShape.h * mapShape.w
        let slabRows = slab.shape[2]
        slab.withUnsafeBufferPointer { values in
            for c in 0..<encoder.mapChannels {
                for x in rows {
                    let source = (c * slabRows + x - firstRow) * plane
                    let target = (c * mapShape.d + x) * plane
                    for v in 0..<plane { map[target + v] = values[source + v] }
                }
            }
        }
    }
}
