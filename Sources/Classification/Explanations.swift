import Autoencoders
import Cohort
import Extraction
import Foundation
import TensorCore
import VolumeIO

/// The explanation maps of a run, assembled as its back end finishes: the record for
/// `metrics.json` and the files waiting to be written (with the run's other outputs).
struct Explanations {
    var record: ExplanationRecord
    var pending: [(url: URL, write: () throws(ClassificationError) -> Void)] = []

    static let occlusionPrefix = "occlusion_"
    static let weightsStem = "svm_weights"
    static let weightsTable = "svm_weights.tsv"

    /// Every file name a run may write (for clearing an earlier run's leftovers).
    static var fileNames: [String] {
        Diagnosis.allCases.flatMap { ["\(occlusionPrefix)\($0.rawValue).nii.gz", "\(weightsStem)_\($0.rawValue).nii.gz"] }
            + ["\(weightsStem).nii.gz", weightsTable]
    }

    init(settings: ExplanationSettings) {
        var resolved = settings
        resolved.occlusionStride = settings.stride
        record = ExplanationRecord(settings: resolved, files: [], scansPerClass: nil, notes: [])
    }

    /// Queues a float32 NIfTI of `values [X, Y, Z]` (flat, X slowest) on the grid of `affine`.
    mutating func addVolume(_ name: String, values: [Float], shape: Triple, affine: Affine, out: URL, entry: ExplanationRecord.File) {
        let url = out.appendingPathComponent(name)
        pending.append((url, { () throws(ClassificationError) in
            do {
                try VolumeWriter.write(try Volume(data: try Tensor(shape: shape.array, scalars: values), affine: affine), to: url)
            } catch { throw .io("\(url.path): \(error)") }
        }))
        record.files.append(entry)
    }

    // MARK: CNN

    /// The occlusion maps' files: `occlusion_<CLASS>.nii.gz` per class that has one.
    mutating func add(_ occlusion: OcclusionMaps, classes: [String], shape: Triple, out: URL) {
        record.scansPerClass = Dictionary(uniqueKeysWithValues: zip(classes, occlusion.scansPerClass))
        record.notes += occlusion.notes
        guard let affine = occlusion.affine else { return }
        let settings = record.settings
        for map in occlusion.maps {
            let name = classes[map.classIndex]
            let file = "\(Self.occlusionPrefix)\(name).nii.gz"
            addVolume(file, values: map.map.scalars, shape: shape, affine: affine, out: out, entry: ExplanationRecord.File(
                file: file, kind: "occlusion", className: name, scans: map.scans,
                values: "mean drop in P(\(name)) when a \(settings.occlusionCube)-voxel cube over the voxel is set to \(settings.occlusionFill) in normalised intensity (stride \(settings.stride)), over \(map.scans) correctly classified validation scan(s); positive: the region supports \(name)"))
        }
    }

    // MARK: linear SVM

    /// A fitted SVM pipeline as explanations need it.
    struct FittedSVM {
        /// Decision values `[n, m]` of pipeline inputs `[n, d]`.
        var decision: (Tensor) throws -> Tensor
        /// The pipeline's training inputs `[n, d]` and their names.
        var train: Tensor
        var names: [String]
        var classes: [String]
        var linearKernel: Bool
        var liblinear: Bool
    }

    /// The weights per decision column (or a note why there are none), and `svm_weights.tsv`.
    /// - Returns: for each map, its class and the weights per unit and per training SD, `[d]` each.
    mutating func weights(_ svm: FittedSVM, out: URL) throws(ClassificationError) -> [(classIndex: Int, perUnit: [Double], perSD: [Double])]? {
        guard svm.linearKernel else {
            record.notes.append("SVM weight maps need a linear kernel; this SVM's kernel is not linear")
            return nil
        }
        guard let columns = SVMWeights.columnClasses(classes: svm.classes.count, liblinear: svm.liblinear) else {
            record.notes.append("no SVM weight maps for \(svm.classes.count) classes with the smo solver: its decision values are one-vs-one pairs, not one column per class (the liblinear solver gives one-vs-rest weights)")
            return nil
        }
        let (mean, sd) = SVMWeights.moments(svm.train)
        let perUnit = try SVMWeights.probe(svm.decision, at: mean, steps: SVMWeights.steps(sd))
        guard perUnit.count == columns.count else {
            throw .io("probing the SVM's weights: \(perUnit.count) decision columns for \(columns.count) classes")
        }
        let maps = zip(columns, perUnit).map { c, w in (classIndex: c, perUnit: w, perSD: zip(w, sd).map { $0 * $1 }) }
        let names = maps.map { svm.classes[$0.classIndex] }
        var text = (["feature"] + names.map { "weight_\($0)" } + names.map { "weight_per_sd_\($0)" }).joined(separator: "\t") + "\n"
        for (j, feature) in svm.names.enumerated() {
            text += ([feature] + maps.map { "\($0.perUnit[j])" } + maps.map { "\($0.perSD[j])" }).joined(separator: "\t") + "\n"
        }
        let url = out.appendingPathComponent(Self.weightsTable)
        pending.append((url, { () throws(ClassificationError) in try ClassifyJob.write(Data(text.utf8), to: url) }))
        record.files.append(ExplanationRecord.File(
            file: Self.weightsTable, kind: "svm_weights_table", className: names.count == 1 ? names[0] : nil, scans: nil,
            values: "the decision function's weight per unit of each input (weight_<class>) and per training standard deviation (weight_per_sd_<class>); positive argues for the class"))
        return maps
    }

    /// The map's file name: `svm_weights.nii.gz` for two classes, else per class.
    func weightsFile(_ className: String, maps: Int) -> String {
        maps == 1 ? "\(Self.weightsStem).nii.gz" : "\(Self.weightsStem)_\(className).nii.gz"
    }

    /// Weight maps of an SVM on voxel ICA loadings, on the scans' grid.
    mutating func addVoxelWeights(_ svm: FittedSVM, ica: SpatialICA, out: URL) throws(ClassificationError) {
        guard let maps = try weights(svm, out: out) else { return }
        let layout = ica.layout
        for map in maps {
            let name = svm.classes[map.classIndex]
            let file = weightsFile(name, maps: maps.count)
            let values = layout.scanGradient(try ica.voxelGradient(map.perUnit))
            addVolume(file, values: values, shape: layout.scanShape, affine: layout.scanAffine, out: out, entry: ExplanationRecord.File(
                file: file, kind: "svm_weights", className: name, scans: nil,
                values: "derivative of the SVM decision value for \(name) with respect to the voxel's normalised intensity, through the ICA loadings (P S (SᵀS)⁻¹ w on the \(layout.factor)×\(layout.factor)×\(layout.factor) block grid, spread to the block's voxels / \(layout.factor * layout.factor * layout.factor)); positive: a brighter voxel argues for \(name)"))
        }
    }

    /// Weight maps of an SVM on deep features (directly or through FastICA), painted through
    /// the extraction's pooling regions onto the scans' grid.
    mutating func addFeatureWeights(_ svm: FittedSVM, table: FeatureTable, out: URL) throws(ClassificationError) {
        guard let maps = try weights(svm, out: out) else { return }
        let geometry: (shape: Triple, affine: Affine, boxes: [[Range<Int>]], regions: Int)
        switch Self.regionGeometry(table) {
        case let .success(found): geometry = found
        case let .failure(problem):
            record.notes.append("no SVM weight map in the scans' space: \(problem.message); svm_weights.tsv has the weights per feature")
            return
        }
        for map in maps {
            let name = svm.classes[map.classIndex]
            let file = weightsFile(name, maps: maps.count)
            let values = SVMWeights.paint(SVMWeights.regionMagnitudes(map.perSD, regions: geometry.regions), boxes: geometry.boxes, shape: geometry.shape)
            addVolume(file, values: values, shape: geometry.shape, affine: geometry.affine, out: out, entry: ExplanationRecord.File(
                file: file, kind: "svm_weights", className: name, scans: nil,
                values: "root-sum-square over channels of the SVM weights (for \(name), per training SD of each feature) of the pooling region whose receptive field holds the voxel, averaged where regions overlap; a magnitude (a channel's sign is arbitrary), 0 outside every region"))
        }
    }

    struct GeometryProblem: Error { var message: String }

    /// Where the features' regions lie in the scans: the extraction's record (from the
    /// folder's `summary.json`), the scans' common grid, and each region's input-voxel box.
    static func regionGeometry(_ table: FeatureTable) -> Result<(shape: Triple, affine: Affine, boxes: [[Range<Int>]], regions: Int), GeometryProblem> {
        let record: ExtractionRecord
        do {
            guard let found = try ExtractionOutput.record(in: table.directory) else {
                return .failure(GeometryProblem(message: "\(table.directory.path) has no extraction record in its \(ExtractionOutput.summaryFile) (extracted by an older adwb: extract again)"))
            }
            record = found
        } catch { return .failure(GeometryProblem(message: "\(error)")) }
        guard table.names == FeatureExport.featureNames(record) else {
            return .failure(GeometryProblem(message: "the features' names do not follow the extraction record's channels and grid"))
        }
        guard let first = record.rows.first, first.shape.count == 3, first.affine.count == 16, first.affine.allSatisfy(\.isFinite) else {
            return .failure(GeometryProblem(message: "the extraction record has no scan grid"))
        }
        let affine = Affine(entries: first.affine)
        for row in record.rows where row.shape != first.shape || row.affine.count != 16 || !VoxelLayout.sameGrid(Affine(entries: row.affine), affine) {
            return .failure(GeometryProblem(message: "the extracted scans are not on one grid (\(row.participantID) \(row.sessionID) is \(row.shape), \(first.participantID) \(first.sessionID) \(first.shape) or another affine): a region is not one place in every scan"))
        }
        let shape = Triple(first.shape[0], first.shape[1], first.shape[2])
        do {
            let run = try PretrainedRun.load(URL(fileURLWithPath: record.model))
            guard SHA256.hex(run.configJSON) == record.modelConfigSha256 else {
                return .failure(GeometryProblem(message: "\(record.model)'s config.json has changed since the extraction"))
            }
            let encoder = try FeatureEncoder(run: run, options: record.options)
            let grid = try RegionGrid(mapShape: encoder.mapShape(for: shape), grid: record.options.grid)
            return .success((shape, affine, SVMWeights.regionBoxes(encoder: encoder, grid: grid, inputShape: shape), grid.count))
        } catch {
            return .failure(GeometryProblem(message: "the encoder of \(record.model): \(error)"))
        }
    }
}
