import Cohort
import Foundation
import TensorCore
import VolumeIO

/// The registration target: a T1 template and, optionally, its brain mask on the same grid.
public struct Template: Sendable {
    public var image: Volume
    public var mask: Volume?
    /// How it is named in records: a path, or "built-in synthetic template".
    public var name: String
    /// SHA-256 over the image's (and mask's) voxels and affines: part of every cache key.
    public var fingerprint: String

    /// - Throws: `.gridMismatch` when the mask is not on the image's grid; image checks as
    ///   `AffineRegistration` makes them.
    public init(image: Volume, mask: Volume?, name: String) throws(PreprocessingError) {
        try AffineRegistration.checkImage(image, name: name)
        if let mask {
            try InputValidation.requireSameGrid(mask, as: image, label: name + " mask")
            guard mask.data.scalars.contains(where: { $0 != 0 }) else { throw .noForeground(path: name + " mask", reason: "the mask is empty") }
        }
        (self.image, self.mask, self.name) = (image, mask, name)
        var bytes = Data()
        for volume in [image] + (mask.map { [$0] } ?? []) {
            bytes += Data(volume.shape.map(String.init).joined(separator: "x").utf8)
            bytes += Data(volume.affine.entries.map { "\($0)" }.joined(separator: ",").utf8)
            volume.data.withUnsafeBufferPointer { bytes += Data(buffer: $0) }
        }
        fingerprint = SHA256.hex(bytes)
    }
}

/// One scan's inputs, read and checked.
public struct ScanInputs: Sendable {
    public var image: Volume
    /// The manifest's brain mask (`mask_path`), on the image's grid.
    public var mask: Volume?
    /// The manifest's label image (`label_path`), on the image's grid.
    public var labels: Volume?
    /// How errors name the scan: its image path.
    public var name: String

    public init(image: Volume, mask: Volume? = nil, labels: Volume? = nil, name: String) {
        (self.image, self.mask, self.labels, self.name) = (image, mask, labels, name)
    }

    /// Reads the image (3-D only, finite voxels), the mask and the labels (same grid).
    public static func read(image: URL, mask: URL?, labels: URL?) throws(PreprocessingError) -> ScanInputs {
        func load(_ url: URL) throws(PreprocessingError) -> Volume {
            do {
                let header = try VolumeReader.checkReadable(url)
                guard header.volumeCount == 1 else {
                    throw PreprocessingError.unsupportedVolume(path: url.path, reason: "a 4-D image with \(header.volumeCount) volumes; preprocessing takes one 3-D scan per manifest row")
                }
                return try VolumeReader.read(url)
            } catch let error as PreprocessingError {
                throw error
            } catch let error as VolumeError {
                throw .volume(error)
            } catch {
                throw .unsupportedVolume(path: url.path, reason: "\(error)")
            }
        }
        let volume = try load(image)
        var inputs = ScanInputs(image: volume, name: image.path)
        for (url, slot) in [(mask, \ScanInputs.mask), (labels, \ScanInputs.labels)] {
            guard let url else { continue }
            let other = try load(url)
            try InputValidation.requireSameGrid(other, as: volume, label: url.path)
            inputs[keyPath: slot] = other
        }
        return inputs
    }
}

/// What preprocessing made of one scan.
public struct PreprocessedScan: Sendable {
    /// The preprocessed image: in template space (on the output grid) when registered, else
    /// on the (reoriented) scan grid.
    public var image: Volume
    /// The brain mask on the same grid: the skull strip's, or the manifest's without that step.
    public var mask: Volume?
    /// The labels on the same grid (nearest neighbour).
    public var labels: Volume?
    public var registration: RegistrationResult?
    /// Which method made the mask (nil without skull stripping).
    public var skullStrip: SkullStripMethod?
    /// Dice of the mask against the manifest's mask, when another method made it.
    public var dice: Double?
    public var warnings: [String]
    /// Seconds per step.
    public var seconds: [String: Double]
}

/// Runs the preprocessing steps on one scan.
public struct ScanPreprocessor: Sendable {
    public var options: PreprocessingOptions
    public var template: Template?

    /// - Throws: `.invalidOption` when a step needs a template and there is none.
    public init(options: PreprocessingOptions, template: Template?) throws(PreprocessingError) {
        try options.validate()
        if options.steps.contains(.register), template == nil {
            throw .invalidOption(name: "steps", value: "register", reason: "registration needs a template")
        }
        if options.skullStrip == .template, template?.mask == nil {
            throw .invalidOption(name: "skull strip", value: "template", reason: "the template has no brain mask (give --template-mask)")
        }
        (self.options, self.template) = (options, template)
    }

    /// The grid registered outputs land on.
    public var outputGrid: Grid? { options.outputGrid ?? template.map { Grid($0.image) } }

    public func process(_ inputs: ScanInputs) throws(PreprocessingError) -> PreprocessedScan {
        var (image, givenMask, labels) = (inputs.image, inputs.mask, inputs.labels)
        var seconds: [String: Double] = [:]
        var warnings: [String] = []
        func timed<T>(_ step: String, _ body: () throws(PreprocessingError) -> T) throws(PreprocessingError) -> T {
            let start = Date()
            defer { seconds[step, default: 0] += Date().timeIntervalSince(start) }
            return try body()
        }
        let statistics = VoxelStatistics(image.data)
        guard statistics.nonFinite == 0 else { throw .nonFiniteVoxels(path: inputs.name, count: statistics.nonFinite) }
        guard statistics.maximum > statistics.minimum else {
            throw .noForeground(path: inputs.name, reason: "every voxel is \(statistics.minimum)")
        }

        if options.steps.contains(.reorient) {
            try timed("reorient") { () throws(PreprocessingError) in
                image = try Reorientation.toRAS(image, name: inputs.name)
                givenMask = try givenMask.map { mask throws(PreprocessingError) in try Reorientation.toRAS(mask, name: inputs.name + " mask") }
                labels = try labels.map { labels throws(PreprocessingError) in try Reorientation.toRAS(labels, name: inputs.name + " labels") }
            }
        }

        var registration: RegistrationResult?
        if options.steps.contains(.register), let template {
            let result = try timed("register") { () throws(PreprocessingError) in
                try AffineRegistration(options: options.registration).register(image, to: template.image, templateMask: template.mask, name: inputs.name)
            }
            warnings += result.warnings
            registration = result
        }

        var mask: Volume?
        var method: SkullStripMethod?
        var dice: Double?
        if options.steps.contains(.skullstrip) {
            let chosen = try resolvedMethod(hasGivenMask: givenMask != nil, name: inputs.name)
            method = chosen
            let brain = try timed("skullstrip") { () throws(PreprocessingError) -> Volume in
                switch chosen {
                case .given, .auto:
                    // `resolvedMethod` returned .given only with a mask.
                    guard let givenMask else { throw .invalidOption(name: "skull strip", value: "given", reason: "\(inputs.name) has no mask_path") }
                    return try BinaryMask(nonzeroOf: givenMask).volume
                case .template:
                    guard let registration, let templateMask = template?.mask else {
                        throw .invalidOption(name: "skull strip", value: "template", reason: "needs a registration and a template mask")
                    }
                    // The template's mask pulled into the scan: linear weights, kept above one half.
                    // Binarised first (nonzero = inside, as everywhere), then pulled with linear weights.
                    let pulled = try Resampler.resample(BinaryMask(nonzeroOf: templateMask).volume, onto: Grid(image), transform: try registration.inverse(),
                                                        interpolation: .linear, name: "template mask")
                    return BinaryMask(grid: Grid(pulled), voxels: pulled.data.scalars.map { $0 >= 0.5 }).volume
                case .builtin:
                    return try BrainExtraction.extractBrain(image, options: options.brainExtraction, label: inputs.name)
                }
            }
            if chosen != .given, let givenMask {
                dice = try Overlap.dice(brain, givenMask, label: inputs.name + " mask")
            }
            image = try BrainExtraction.applyMask(brain, to: image, label: inputs.name)
            mask = brain
        }

        // Without skull stripping, the manifest's brain mask (when there is one) still says
        // where the brain is: statistics are taken in it and it goes to the outputs.
        if mask == nil, let givenMask {
            mask = try BinaryMask(nonzeroOf: givenMask).volume
        }
        // Bias field and normalisation are measured inside the brain mask, or inside the head
        // (`BrainExtraction.headMask`) when there is none.
        if options.steps.contains(.biasfield) || options.steps.contains(.normalise) {
            let region: Volume
            if let mask {
                region = mask
            } else {
                region = try timed("skullstrip") { () throws(PreprocessingError) in
                    try BrainExtraction.headMask(image, options: options.brainExtraction, label: inputs.name)
                }
            }
            if options.steps.contains(.biasfield) {
                image = try timed("biasfield") { () throws(PreprocessingError) in
                    try options.biasField.correct(image, mask: region, label: inputs.name).corrected
                }
            }
            if options.steps.contains(.normalise) {
                image = try timed("normalise") { () throws(PreprocessingError) -> Volume in
                    switch options.normalisation {
                    case .zscore: return try IntensityNormalisation.zScore(image, mask: region, label: inputs.name)
                    case .minmax: return try IntensityNormalisation.minMax(image, mask: region, percentiles: options.clipPercentiles, label: inputs.name)
                    }
                }
            }
        }

        if let registration, let grid = outputGrid {
            try timed("resample") { () throws(PreprocessingError) in
                image = try Resampler.resample(image, onto: grid, transform: registration.transform, interpolation: options.interpolation)
                mask = try mask.map { m throws(PreprocessingError) in try Resampler.resample(m, onto: grid, transform: registration.transform, interpolation: .nearest) }
                labels = try labels.map { l throws(PreprocessingError) in try Resampler.resample(l, onto: grid, transform: registration.transform, interpolation: .nearest) }
            }
        }
        return PreprocessedScan(image: image, mask: mask, labels: labels, registration: registration,
                                skullStrip: method, dice: dice, warnings: warnings, seconds: seconds)
    }

    /// `.auto` resolved for one scan.
    func resolvedMethod(hasGivenMask: Bool, name: String) throws(PreprocessingError) -> SkullStripMethod {
        switch options.skullStrip {
        case .auto:
            if hasGivenMask { return .given }
            if options.steps.contains(.register), template?.mask != nil { return .template }
            return .builtin
        case .given:
            guard hasGivenMask else {
                throw .invalidOption(name: "skull strip", value: "given", reason: "\(name): the manifest row has no mask_path")
            }
            return .given
        case .template, .builtin:
            return options.skullStrip
        }
    }
}
