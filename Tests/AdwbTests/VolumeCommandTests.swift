import ArgumentParser
import Foundation
import Testing
@testable import adwb
import VolumeIO

private let volumes = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/Volumes")
private let anatomical = volumes.appendingPathComponent("shared-copies/nifti-edge-cases/nibabel/anatomical.nii").path

@Test func infoParsesFilesAndJSONFlag() throws {
    let command = try #require(try ADWorkbench.parseAsRoot(["info", "--json", "a.nii", "b.nii.gz"]) as? InfoCommand)
    #expect(command.json && command.files == ["a.nii", "b.nii.gz"])
    #expect(throws: (any Error).self) { _ = try ADWorkbench.parseAsRoot(["info"]) }
}

@Test func infoExitsNonZeroWhenAnyFileFails() throws {
    let good = try #require(try ADWorkbench.parseAsRoot(["info", anatomical]) as? InfoCommand)
    try good.run()
    let mixed = try #require(try ADWorkbench.parseAsRoot(["info", "--json", anatomical, "/no/such/file.nii"]) as? InfoCommand)
    #expect(throws: ExitCode(1)) { try mixed.run() }
}

@Test func convertWritesANiftiThatReadsBack() throws {
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("convert-\(UUID().uuidString).nii.gz")
    defer { try? FileManager.default.removeItem(at: output) }
    let command = try #require(try ADWorkbench.parseAsRoot(["convert", anatomical, output.path, "--datatype", "int16"]) as? ConvertCommand)
    try command.run()
    let source = try VolumeReader.read(URL(fileURLWithPath: anatomical))
    let written = try VolumeReader.read(output)
    #expect(written.data == source.data && written.affine == source.affine && written.header?.datatype == .int16)
}

@Test func datatypeNamesAreTheVoxelTypes() {
    #expect(DatatypeArgument.allCases.map(\.voxelType.description) == DatatypeArgument.allCases.map(\.rawValue))
    #expect(Set(DatatypeArgument.allCases.map(\.voxelType)) == Set(VoxelType.allCases))
}

@Test func convertValidatesItsOptions() {
    #expect(throws: (any Error).self) { _ = try ADWorkbench.parseAsRoot(["convert", "a.nii", "b.nii", "--datatype", "complex64"]) }
    #expect(throws: (any Error).self) { _ = try ADWorkbench.parseAsRoot(["convert", "a.nii", "b.nii", "--volume", "-1"]) }
    #expect(throws: (any Error).self) { _ = try ADWorkbench.parseAsRoot(["convert", "a.nii", "b.nii", "--gzip-level", "10"]) }
    #expect(throws: (any Error).self) { _ = try ADWorkbench.parseAsRoot(["convert", "a.nii", "b.nii", "--non-finite", "drop"]) }
}
