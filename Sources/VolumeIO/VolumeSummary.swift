import Foundation

/// What `adwb info` reports about one file (like `nib-ls` or `fslinfo`), as text or JSON.
public struct VolumeSummary: Sendable, Codable, Equatable {
    public var file: String
    public var format: String?
    public var byte_order: String?
    /// True for `.hdr`/`.img` pairs.
    public var pair: Bool?
    /// All axes, `dim[1...dim[0]]`.
    public var dims: [Int]?
    public var datatype: String?
    public var voxel_size: [Double]?
    public var orientation: String?
    /// Rows of the 4×4 voxel-to-world affine.
    public var affine: [[Double]]?
    public var affine_source: String?
    public var qform_code: Int?
    public var sform_code: Int?
    public var scl_slope: Double?
    public var scl_inter: Double?
    public var units: String?
    public var volumes: Int?
    public var extensions: [Int]?
    /// Statistics over every voxel of every volume (finite values; `nonfinite` counts the rest).
    public var min: Double?
    public var max: Double?
    public var mean: Double?
    public var nonfinite: Int?
    /// Set instead of the fields above when the file could not be read.
    public var error: String?

    /// Reads `url` whole (streaming, one volume in memory at a time) and summarises it; a
    /// file that cannot be read gives a summary with `error` set.
    public static func inspect(_ url: URL) -> VolumeSummary {
        var summary = VolumeSummary(file: url.path)
        do {
            let (header, statistics) = try VolumeReader.statistics(url)
            summary.describe(header)
            summary.min = statistics.count > statistics.nonFinite ? statistics.minimum : nil
            summary.max = statistics.count > statistics.nonFinite ? statistics.maximum : nil
            summary.mean = statistics.mean.isFinite ? statistics.mean : nil
            summary.nonfinite = statistics.nonFinite
        } catch {
            summary.error = "\(error)"
        }
        return summary
    }

    private mutating func describe(_ header: VolumeHeader) {
        format = header.format.rawValue
        byte_order = header.byteOrder.rawValue
        pair = header.isPair
        dims = header.dims
        datatype = header.datatype.description
        voxel_size = header.affine.voxelSizes
        orientation = header.affine.axisCodes
        affine = (0..<4).map { r in (0..<4).map { c in header.affine[r, c] } }
        affine_source = header.affineSource.rawValue
        if header.format != .analyze {
            qform_code = header.qformCode
            sform_code = header.sformCode
        }
        scl_slope = header.scaling?.slope
        scl_inter = header.scaling?.intercept
        units = [header.spatialUnit, header.temporalUnit].compactMap { $0 }.joined(separator: ", ")
        volumes = header.volumeCount
        extensions = header.extensionCodes
    }

    /// One JSON object on one line (sorted keys), for scripts.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Every Double here is finite (the mean of all-NaN data is omitted), so encoding succeeds.
        guard let data = try? encoder.encode(self) else { return #"{"error":"cannot encode the summary","file":"\#(file)"}"# }
        return String(decoding: data, as: UTF8.self)
    }

    /// The block `adwb info` prints: the file name, then one indented line per field; or one
    /// line naming the file and the error.
    public var text: String {
        if let error { return "\(file): error: \(error.hasPrefix(file + ": ") ? String(error.dropFirst(file.count + 2)) : error)" }
        func number(_ value: Double) -> String {
            value == value.rounded() && abs(value) < 1e15 ? String(format: "%.0f", value) : String(format: "%.6g", value)
        }
        var lines = [file]
        func line(_ label: String, _ value: String) { lines.append("  " + label.padding(toLength: 13, withPad: " ", startingAt: 0) + value) }
        line("format", "\(format ?? "?")\(pair == true ? " (.hdr/.img pair)" : ""), \(byte_order ?? "?")")
        line("dims", (dims ?? []).map(String.init).joined(separator: " x ") + ((volumes ?? 1) > 1 ? "  (\(volumes!) volumes)" : ""))
        line("datatype", datatype ?? "?")
        line("voxel size", (voxel_size ?? []).map(number).joined(separator: " x ") + " " + (units?.split(separator: ",").first.map(String.init) ?? "mm"))
        let codes = qform_code.map { ", qform_code \($0), sform_code \(sform_code ?? 0)" } ?? ""
        line("orientation", "\(orientation ?? "?") (affine from \(affine_source ?? "?")\(codes))")
        for (index, row) in (affine ?? []).enumerated() {
            // Entries that print as zero print as 0, not -0.0000.
            line(index == 0 ? "affine" : "", row.map { String(format: "%10.4f", abs($0) < 5e-5 ? 0 : $0) }.joined(separator: " "))
        }
        line("scaling", scl_slope.map { "slope \(number($0)), intercept \(number(scl_inter ?? 0))" } ?? "none")
        if let extensions, !extensions.isEmpty { line("extensions", extensions.map { "code \($0)" }.joined(separator: ", ")) }
        if let units { line("units", units) }
        let statistics = [min.map { "min \(number($0))" }, max.map { "max \(number($0))" }, mean.map { "mean \(String(format: "%.6g", $0))" }]
            .compactMap { $0 }.joined(separator: "  ")
        line("data", statistics + ((nonfinite ?? 0) > 0 ? "  (\(nonfinite!) NaN/inf voxels)" : ""))
        return lines.joined(separator: "\n")
    }
}
