import ArgumentParser
import Foundation
import VolumeIO

/// The `--datatype` values: VoxelType's names (its raw values are NIfTI codes, which the
/// help would otherwise show).
enum DatatypeArgument: String, CaseIterable, ExpressibleByArgument {
    case uint8, int8, int16, uint16, int32, uint32, int64, uint64, float32, float64

    var voxelType: VoxelType {
        // Every case is named after a VoxelType (checked by VolumeCommandTests).
        VoxelType.allCases.first { $0.description == rawValue } ?? .float32
    }
}

extension NonFinitePolicy: ExpressibleByArgument {}
extension OutputScaling: ExpressibleByArgument {}

/// `adwb info FILE...`: one block (or JSON line) per file, like nib-ls / fslinfo.
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Describe NIfTI-1/2 and Analyze 7.5 volumes: format, dims, datatype, voxel size, orientation, affine, scaling, data range.",
        discussion: "Exits non-zero when any file could not be read (its block is then a one-line error)."
    )

    @Flag(help: "One JSON object per file and line: dims, datatype, voxel_size, affine, orientation, min, max, mean, ... or error.")
    var json = false

    @Argument(help: "Volume files (.nii, .nii.gz, .hdr, .img, .img.gz).")
    var files: [String]

    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one file") }
    }

    func run() throws {
        compute.apply()
        var failed = 0
        for (index, file) in files.enumerated() {
            let summary = VolumeSummary.inspect(URL(fileURLWithPath: file))
            if summary.error != nil { failed += 1 }
            if json {
                print(summary.json)
            } else {
                if index > 0 { print("") }
                print(summary.text)
            }
        }
        if failed > 0 { throw ExitCode(1) }
    }
}

/// `adwb convert IN OUT`: any readable volume to NIfTI-1 `.nii` / `.nii.gz`.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a NIfTI-1/2 or Analyze 7.5 volume (one 3-D volume of it) to NIfTI-1 .nii or .nii.gz.",
        discussion: "The output keeps the data and the affine (sform and qform set from it); prints where it was written."
    )

    @Argument(help: "Input volume.")
    var input: String

    @Argument(help: "Output file, .nii or .nii.gz.")
    var output: String

    @Option(help: "Output datatype.")
    var datatype: DatatypeArgument = .float32

    @Option(help: "Which 3-D volume of a 4-D input (0-based).")
    var volume = 0

    @Option(help: "Integer outputs: automatic (scl_slope/scl_inter when values are not integers in range) or none (error instead).")
    var scaling: OutputScaling = .automatic

    @Option(name: .customLong("gzip-level"), help: "zlib level for .nii.gz, 0-9.")
    var gzipLevel = 1

    @Option(name: .customLong("non-finite"), help: "NaN/inf voxels in the input: reject, keep, or zero.")
    var nonFinite: NonFinitePolicy = .reject

    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if volume < 0 { throw ValidationError("--volume must be ≥ 0, got \(volume)") }
        if !(0...9).contains(gzipLevel) { throw ValidationError("--gzip-level must be 0...9, got \(gzipLevel)") }
    }

    func run() throws {
        compute.apply()
        let source = try VolumeReader.read(URL(fileURLWithPath: input), options: VolumeReadOptions(volumeIndex: volume, nonFinite: nonFinite))
        try VolumeWriter.write(source, to: URL(fileURLWithPath: output),
                               options: VolumeWriteOptions(datatype: datatype.voxelType, scaling: scaling, compressionLevel: gzipLevel))
        print("wrote \(output)")
    }
}
