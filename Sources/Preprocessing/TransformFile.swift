import Foundation
import TensorCore
import VolumeIO

/// Registration transforms on disk, in three forms:
/// - `.txt`-style plain matrix: our convention, 4 rows of 4 numbers, template world → scan
///   world in RAS mm (`#` lines are comments);
/// - ITK / ANTs (`Insight Transform File V1.0`, `AffineTransform_double_3_3`): the same map in
///   ITK's LPS physical space, fixed (template) point → moving (scan) point, which is what
///   `antsApplyTransforms -r template.nii.gz -i scan.nii.gz -t file.txt` and SimpleITK's
///   `ReadTransform` + `Resample` expect;
/// - FSL FLIRT (`.mat`): scan → template in FSL's scaled-voxel coordinates (voxel × pixdim,
///   x flipped when the image's affine has a positive determinant), as
///   `flirt -in scan -ref template -applyxfm -init file.mat` expects.
public enum TransformFile {
    /// RAS ↔ LPS: negate x and y.
    static let rasToLPS = Affine(rows: [-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 1, 0])

    // MARK: Plain matrix

    /// The plain 4x4 text, with `comment` lines first.
    public static func matrixText(_ transform: Affine, comment: [String] = []) -> String {
        let header = comment.map { "# " + $0 + "\n" }.joined()
        return header + (0..<4).map { r in (0..<4).map { c in format(transform[r, c]) }.joined(separator: " ") }
            .joined(separator: "\n") + "\n"
    }

    /// Reads a plain 4x4 matrix (16 numbers on 4 lines; `#` comments and blank lines ignored).
    public static func readMatrix(_ url: URL) throws(PreprocessingError) -> Affine {
        let text = try read(url)
        var rows: [[Double]] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," })
            let numbers = fields.compactMap { Double($0) }
            guard numbers.count == 4, fields.count == 4, numbers.allSatisfy(\.isFinite) else {
                throw .invalidTransformFile(path: url.path, line: index + 1, reason: "expected 4 finite numbers, found '\(line)'")
            }
            rows.append(numbers)
        }
        guard rows.count == 4 else {
            throw .invalidTransformFile(path: url.path, line: 0, reason: "expected 4 rows of 4 numbers, found \(rows.count) rows")
        }
        guard rows[3] == [0, 0, 0, 1] else {
            throw .invalidTransformFile(path: url.path, line: 0, reason: "the last row must be 0 0 0 1, found \(rows[3])")
        }
        return Affine(entries: rows.flatMap { $0 })
    }

    // MARK: ITK / ANTs

    /// ITK's text form of `transform` (template world → scan world, RAS mm).
    public static func itkText(_ transform: Affine) -> String {
        let lps = rasToLPS * transform * rasToLPS
        let parameters = (0..<3).flatMap { r in (0..<3).map { c in lps[r, c] } } + (0..<3).map { lps[$0, 3] }
        return """
        #Insight Transform File V1.0
        #Transform 0
        Transform: AffineTransform_double_3_3
        Parameters: \(parameters.map(format).joined(separator: " "))
        FixedParameters: 0 0 0

        """
    }

    /// Reads an ITK text transform (`AffineTransform_double_3_3` or
    /// `MatrixOffsetTransformBase_double_3_3`, with its centre) as template → scan in RAS.
    public static func readITK(_ url: URL) throws(PreprocessingError) -> Affine {
        let text = try read(url)
        var parameters: [Double]?, fixed: [Double] = [0, 0, 0], kind: String?
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            func numbers(_ prefix: String) throws(PreprocessingError) -> [Double] {
                let fields = line.dropFirst(prefix.count).split(separator: " ")
                let values = fields.compactMap { Double($0) }
                guard values.count == fields.count, values.allSatisfy(\.isFinite) else {
                    throw .invalidTransformFile(path: url.path, line: index + 1, reason: "not a list of finite numbers: '\(line)'")
                }
                return values
            }
            if line.hasPrefix("Transform:") {
                guard kind == nil else {
                    throw .invalidTransformFile(path: url.path, line: index + 1, reason: "more than one transform; composite files are not read")
                }
                kind = line.dropFirst("Transform:".count).trimmingCharacters(in: .whitespaces)
            } else if line.hasPrefix("Parameters:") {
                parameters = try numbers("Parameters:")
            } else if line.hasPrefix("FixedParameters:") {
                fixed = try numbers("FixedParameters:")
            }
        }
        guard let kind, ["AffineTransform_double_3_3", "MatrixOffsetTransformBase_double_3_3", "AffineTransform_float_3_3",
                         "MatrixOffsetTransformBase_float_3_3"].contains(kind) else {
            throw .invalidTransformFile(path: url.path, line: 0, reason: "no 3-D affine transform found (Transform: \(kind ?? "missing"))")
        }
        guard let parameters, parameters.count == 12, fixed.count == 3 else {
            throw .invalidTransformFile(path: url.path, line: 0, reason: "an affine needs 12 Parameters and 3 FixedParameters")
        }
        // T(x) = A (x − c) + t + c.
        let a = Array(parameters[0..<9]), t = Array(parameters[9..<12])
        let offset = (0..<3).map { r in t[r] + fixed[r] - (a[r * 3] * fixed[0] + a[r * 3 + 1] * fixed[1] + a[r * 3 + 2] * fixed[2]) }
        let lps = Affine(rows: [a[0], a[1], a[2], offset[0]], [a[3], a[4], a[5], offset[1]], [a[6], a[7], a[8], offset[2]])
        return rasToLPS * lps * rasToLPS
    }

    // MARK: FSL

    /// Voxel → FSL scaled-voxel coordinates of a grid.
    static func fslCoordinates(_ grid: Grid) -> Affine {
        let zooms = grid.voxelSizes
        var scaled = Affine.scaling(zooms)
        let l = grid.affine.linearPart
        let determinant = l[0] * (l[4] * l[8] - l[5] * l[7]) - l[1] * (l[3] * l[8] - l[5] * l[6]) + l[2] * (l[3] * l[7] - l[4] * l[6])
        if determinant > 0 {
            // x' = (nx − 1 − x) · dx
            scaled[0, 0] = -zooms[0]
            scaled[0, 3] = Double(grid.shape[0] - 1) * zooms[0]
        }
        return scaled
    }

    /// The FLIRT matrix of `transform` (template world → scan world): scan FSL coordinates →
    /// template FSL coordinates.
    public static func fslMatrix(_ transform: Affine, scan: Grid, template: Grid) throws(PreprocessingError) -> Affine {
        do {
            return fslCoordinates(template) * (try template.affine.inverse()) * (try transform.inverse()) * scan.affine
                * (try fslCoordinates(scan).inverse())
        } catch {
            throw .registrationFailed(path: "transform", reason: "a singular transform or grid has no FSL form")
        }
    }

    /// The template → scan world transform of a FLIRT matrix between these grids.
    public static func transform(fromFSL matrix: Affine, scan: Grid, template: Grid) throws(PreprocessingError) -> Affine {
        do {
            let scanToTemplate = template.affine * (try fslCoordinates(template).inverse()) * matrix * fslCoordinates(scan)
                * (try scan.affine.inverse())
            return try scanToTemplate.inverse()
        } catch {
            throw .registrationFailed(path: "transform", reason: "a singular FLIRT matrix or grid")
        }
    }

    // MARK: Files

    /// Writes `text` to `url` through a temporary name and a rename.
    public static func write(_ text: String, to url: URL) throws(PreprocessingError) {
        do { try AtomicFile.write(Data(text.utf8), to: url) } catch { throw .cannotWrite(path: url.path, reason: "\(error)") }
    }

    static func read(_ url: URL) throws(PreprocessingError) -> String {
        guard let data = FileManager.default.contents(atPath: url.path), let text = String(data: data, encoding: .utf8) else {
            throw .invalidTransformFile(path: url.path, line: 0, reason: "cannot read the file as UTF-8 text")
        }
        return text
    }

    /// Shortest text that reads back to the same Double.
    static func format(_ value: Double) -> String {
        value == 0 ? "0" : "\(value)"
    }
}
