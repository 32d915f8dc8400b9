import Foundation
import TensorCore
import VolumeIO

/// The transforms a registration stage may search.
public enum TransformModel: String, Sendable, Codable, CaseIterable {
    /// 6 degrees of freedom: rotation and translation.
    case rigid
    /// 12 degrees of freedom: any linear map (rotation, scaling, shear) and translation.
    case affine
}

/// How the search starts.
public enum RegistrationStart: String, Sendable, Codable, CaseIterable {
    /// Translate the moving image's intensity centre of mass onto the template's.
    case centreOfMass = "com"
    /// Translate the moving grid's centre onto the template grid's centre.
    case gridCentre = "centre"
    /// Start from the scanner coordinates as they are.
    case identity
}

/// One stage of a registration: a transform model searched over a coarse-to-fine pyramid.
public struct RegistrationStage: Sendable, Codable, Equatable {
    public var model: TransformModel
    /// Pyramid levels, coarse to fine, as multiples of the template's voxel size (ANTs'
    /// "shrink factors"): 4, 2, 1 on a 1 mm template registers at 4 mm, 2 mm, then 1 mm.
    public var shrinkFactors: [Int]

    public init(model: TransformModel, shrinkFactors: [Int]) {
        self.model = model
        self.shrinkFactors = shrinkFactors
    }
}

/// Settings of `AffineRegistration`. Every choice is an option; the defaults follow common
/// practice (ANTs' rigid-then-affine, multi-resolution, centre-of-mass start).
public struct RegistrationOptions: Sendable, Codable, Equatable {
    /// Default: rigid at 4× and 2× the template's voxel size, then affine at 4×, 2×, 1×.
    public var stages: [RegistrationStage] = [
        RegistrationStage(model: .rigid, shrinkFactors: [4, 2]),
        RegistrationStage(model: .affine, shrinkFactors: [4, 2, 1]),
    ]
    public var start: RegistrationStart = .centreOfMass
    /// Optimiser iterations per level.
    public var iterations: Int = 100
    /// Cost samples per level: template voxels of the sampling region at the level's
    /// spacing, thinned by a regular stride to at most this many.
    public var maxSamples: Int = 150_000
    /// Stop a level when a step moves no point of the brain by more than this share of the
    /// level's voxel size.
    public var tolerance: Double = 0.01
    /// Below this final correlation the registration fails (a template of another modality
    /// or contrast, or no overlap of anatomy).
    public var failBelowCorrelation: Double = 0.1
    /// Below this final correlation the result carries a warning.
    public var warnBelowCorrelation: Double = 0.5
    /// The share of samples that must stay inside the moving image.
    public var minimumOverlap: Double = 0.5

    public init() {}

    public func validate() throws(PreprocessingError) {
        func fail(_ name: String, _ value: Any, _ reason: String) -> PreprocessingError {
            .invalidOption(name: name, value: "\(value)", reason: reason)
        }
        guard !stages.isEmpty else { throw fail("registration stages", "[]", "at least one stage is needed") }
        for stage in stages {
            guard !stage.shrinkFactors.isEmpty, stage.shrinkFactors.allSatisfy({ (1...32).contains($0) }) else {
                throw fail("shrink factors", stage.shrinkFactors, "each level needs a factor in 1...32")
            }
        }
        guard (1...10_000).contains(iterations) else { throw fail("iterations", iterations, "must be 1...10000") }
        guard (1_000...100_000_000).contains(maxSamples) else { throw fail("samples", maxSamples, "must be 1000...100000000") }
        guard tolerance.isFinite, tolerance > 0, tolerance < 1 else { throw fail("tolerance", tolerance, "must be in (0, 1)") }
        guard failBelowCorrelation.isFinite, warnBelowCorrelation.isFinite, (-1...1).contains(failBelowCorrelation),
              (-1...1).contains(warnBelowCorrelation) else {
            throw fail("correlation thresholds", [failBelowCorrelation, warnBelowCorrelation], "must be in [-1, 1]")
        }
        guard minimumOverlap.isFinite, (0.01...1).contains(minimumOverlap) else { throw fail("minimum overlap", minimumOverlap, "must be in 0.01...1") }
    }
}

/// What a registration found.
public struct RegistrationResult: Sendable, Codable, Equatable {
    /// Template world → scan world (RAS mm): the scan's point that corresponds to template
    /// point x is `transform · x`. Resampling the scan onto the template grid through it
    /// brings the scan into template space.
    public var transform: Affine
    /// The starting transform (e.g. the centre-of-mass shift).
    public var initial: Affine
    /// Normalised cross-correlation between the template and the registered scan over the
    /// template's sampling region at the finest level (1 = identical up to brightness).
    public var correlation: Double
    /// One record per pyramid level, in the order run.
    public var levels: [LevelRecord]
    /// Fits that are suspicious but not failures (low correlation, large scaling).
    public var warnings: [String]

    public struct LevelRecord: Sendable, Codable, Equatable {
        public var model: TransformModel
        public var shrinkFactor: Int
        /// The level's template voxel size (mm).
        public var spacing: [Double]
        public var samples: Int
        public var iterations: Int
        public var evaluations: Int
        public var startCorrelation: Double
        public var endCorrelation: Double
    }

    /// Scan world → template world.
    public func inverse() throws(PreprocessingError) -> Affine {
        do { return try transform.inverse() } catch { throw .registrationFailed(path: "transform", reason: "singular transform") }
    }
}

/// Affine registration of a scan (moving) to a template (fixed) by maximising their
/// normalised cross-correlation: centre-of-mass start, then stages (rigid, affine) over an
/// image pyramid (Gaussian-smoothed, decimated), L-BFGS with analytic gradients of the
/// trilinearly interpolated scan. Deterministic: the same inputs and options give the same
/// transform whatever the thread count.
public struct AffineRegistration: Sendable {
    public var options: RegistrationOptions

    public init(options: RegistrationOptions = RegistrationOptions()) {
        self.options = options
    }

    /// Registers `moving` to `template`.
    /// - Parameters:
    ///   - templateMask: where to measure the fit (nonzero voxels, on the template's grid),
    ///     e.g. the template's brain mask so that a whole-head scan is matched by its brain;
    ///     without it, every template voxel above zero counts.
    ///   - name: how errors name the scan (its path).
    public func register(_ moving: Volume, to template: Volume, templateMask: Volume? = nil,
                         name: String = "scan") throws(PreprocessingError) -> RegistrationResult {
        try options.validate()
        try Self.checkImage(moving, name: name)
        try Self.checkImage(template, name: "template")
        if let templateMask { try InputValidation.requireSameGrid(templateMask, as: template, label: "template mask") }
        let templateVoxel = template.voxelSizes
        let region = templateMask.map { mask in mask.data.scalars.map { $0 != 0 } } ?? template.data.scalars.map { $0 > 0 }
        guard region.contains(true) else { throw .noForeground(path: templateMask == nil ? "template" : "template mask", reason: "no voxel to measure the fit in") }

        // Levels are built once per shrink factor and shared by the stages.
        var levelCache: [Int: (cost: CorrelationCost, centre: [Double], radius: Double)] = [:]
        var interiorCosts: [Int: CorrelationCost] = [:]
        func level(_ factor: Int) throws(PreprocessingError) -> (cost: CorrelationCost, centre: [Double], radius: Double) {
            if let cached = levelCache[factor] { return cached }
            let spacing = templateVoxel.map { $0 * Double(factor) }
            let sigma = factor > 1 ? 0.5 * (spacing.max() ?? 0) : 0
            // Every level keeps at least 2 voxels per axis (the interpolation needs a cell).
            let fixed = LevelImage(template, factors: template.shape.map { min(factor, $0 - 1) }, sigma: sigma)
            let movingFactors = zip(moving.voxelSizes, moving.shape).map { size, extent in
                min(max(1, Int((spacing.min() ?? 1) / size + 1e-6)), extent - 1)
            }
            let movingSigma = (moving.voxelSizes.max() ?? 0) < (spacing.max() ?? 0) * 0.9 ? 0.5 * (spacing.max() ?? 0) : 0
            let movingLevel = LevelImage(moving, factors: movingFactors, sigma: movingSigma)
            let interior = Self.decimate(region, shape: template.shape, factors: template.shape.map { min(factor, $0 - 1) })
            let levelRegion = Self.dilateOnce(interior, shape: fixed.shape)
            func stride(_ region: [Bool]) -> Int { max(1, (region.reduce(0) { $0 + ($1 ? 1 : 0) } + options.maxSamples - 1) / options.maxSamples) }
            let cost = try CorrelationCost(fixed: fixed, region: levelRegion, stride: stride(levelRegion), moving: movingLevel)
            interiorCosts[factor] = try CorrelationCost(fixed: fixed, region: interior, stride: stride(interior), moving: movingLevel)
            // Centre of rotation and scaling: the intensity centre of the samples; radius: their RMS distance to it.
            let (centre, radius) = Self.centreAndRadius(cost)
            levelCache[factor] = (cost, centre, radius)
            return (cost, centre, radius)
        }

        let coarsest = options.stages.flatMap(\.shrinkFactors).max() ?? 1
        let reference = try level(coarsest)
        let centre = reference.centre, radius = max(reference.radius, 1)
        var a = [1.0, 0, 0, 0, 1, 0, 0, 0, 1]
        var t = [0.0, 0, 0]   // y = A (x − c) + c + t
        switch options.start {
        case .identity: break
        case .gridCentre:
            let movingCentre = Grid(moving).centre, templateCentre = Grid(template).centre
            t = (0..<3).map { movingCentre[$0] - templateCentre[$0] }
        case .centreOfMass:
            // The same rule on both images, so like is matched with like.
            let movingCentre = try Self.centreOfMass(moving, name: name)
            let templateCentre = try Self.centreOfMass(template, name: "template")
            t = (0..<3).map { movingCentre[$0] - templateCentre[$0] }
        }
        let initial = Self.affine(a: a, t: t, centre: centre)
        var records: [RegistrationResult.LevelRecord] = []
        var correlation = 0.0
        for stage in options.stages {
            for factor in stage.shrinkFactors {
                let (cost, _, _) = try level(factor)
                let spacing = templateVoxel.map { $0 * Double(factor) }
                let parameters = StageParameters(model: stage.model, baseA: a, baseT: t, centre: centre, radius: radius)
                var startCorrelation: Double?
                let minimumOverlap = options.minimumOverlap
                let optimiser = LBFGS(maxStep: 2 * (spacing.max() ?? 1), tolerance: options.tolerance * (spacing.min() ?? 1),
                                      maxIterations: options.iterations)
                let outcome = optimiser.minimise(from: parameters.zero) { p in
                    let (stageA, stageT) = parameters.transform(p)
                    let b = Self.shift(a: stageA, t: stageT, centre: centre)
                    let evaluation = cost.evaluate(a: stageA, b: b)
                    guard evaluation.overlap >= minimumOverlap else { return nil }
                    if startCorrelation == nil { startCorrelation = evaluation.correlation }
                    // Cost 1 − NCC; with b = c + t − A c: dC/dA|t = −(gA − gB cᵀ), dC/dt = −gB.
                    var gradientA = evaluation.gradientA
                    for r in 0..<3 { for c in 0..<3 { gradientA[r * 3 + c] -= evaluation.gradientB[r] * centre[c] } }
                    let gradient = parameters.gradient(p, costByA: gradientA.map { -$0 }, costByT: evaluation.gradientB.map { -$0 })
                    return (1 - evaluation.correlation, gradient)
                }
                guard let outcome else {
                    throw .registrationFailed(path: name, reason: "at the \(Self.spacingText(spacing)) level fewer than "
                        + "\(Int(minimumOverlap * 100))% of the template's samples fall inside the scan: the images do not overlap "
                        + "(check the scan's orientation and field of view, or start with --registration-start centre)")
                }
                (a, t) = parameters.transform(outcome.parameters)
                correlation = 1 - outcome.value
                records.append(.init(model: stage.model, shrinkFactor: factor, spacing: spacing, samples: cost.sampleCount,
                                     iterations: outcome.iterations, evaluations: outcome.evaluations,
                                     startCorrelation: startCorrelation ?? correlation, endCorrelation: correlation))
            }
        }
        let transform = Self.affine(a: a, t: t, centre: centre)
        var warnings: [String] = []
        // Inside the region itself (not its dilated border, whose edge alone can correlate),
        // an image of inverted contrast correlates negatively with the template.
        if let finest = options.stages.last?.shrinkFactors.last, let interior = interiorCosts[finest] {
            let inside = interior.evaluate(a: a, b: Self.shift(a: a, t: t, centre: centre)).correlation
            guard inside >= options.failBelowCorrelation else {
                throw .registrationFailed(path: name, reason: String(format: "inside the template's %@ the fitted scan correlates %.3f with it "
                    + "(threshold %.2f): is the template the same modality and contrast (e.g. T1) as the scan?",
                    templateMask == nil ? "foreground" : "mask", inside, options.failBelowCorrelation))
            }
        }
        guard correlation >= options.failBelowCorrelation else {
            throw .registrationFailed(path: name, reason: String(format: "the best fit correlates only %.3f with the template "
                + "(threshold %.2f): is the template the same modality and contrast (e.g. T1) as the scan?", correlation, options.failBelowCorrelation))
        }
        if correlation < options.warnBelowCorrelation {
            warnings.append(String(format: "low correlation with the template (%.3f < %.2f): check the QC figure; "
                + "a template of another modality or a failed fit?", correlation, options.warnBelowCorrelation))
        }
        let determinant = a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6]) + a[2] * (a[3] * a[7] - a[4] * a[6])
        if !(0.5...2).contains(determinant) {
            warnings.append(String(format: "the fitted transform changes volume by a factor %.2f: implausible for a head; check the QC figure", determinant))
        }
        return RegistrationResult(transform: transform, initial: initial, correlation: correlation, levels: records, warnings: warnings)
    }

    /// How far apart two transforms send the nonzero voxels of `mask` (world mm): the mean
    /// and the largest distance. With a registration's result and the true transform, its error.
    public static func displacement(_ a: Affine, _ b: Affine, over mask: Volume) -> (mean: Double, max: Double) {
        let values = mask.data.scalars
        let (ny, nz) = (mask.shape[1], mask.shape[2])
        var sum = 0.0, largest = 0.0, count = 0.0
        for index in values.indices where values[index] != 0 {
            let x = mask.affine.apply([Double(index / (ny * nz)), Double((index / nz) % ny), Double(index % nz)])
            let (p, q) = (a.apply(x), b.apply(x))
            let d = ((p[0] - q[0]) * (p[0] - q[0]) + (p[1] - q[1]) * (p[1] - q[1]) + (p[2] - q[2]) * (p[2] - q[2])).squareRoot()
            (sum, largest, count) = (sum + d, max(largest, d), count + 1)
        }
        return (sum / max(count, 1), largest)
    }

    // MARK: Helpers

    /// y = A (x − c) + c + t as an affine.
    static func affine(a: [Double], t: [Double], centre c: [Double]) -> Affine {
        let b = shift(a: a, t: t, centre: c)
        return Affine(rows: [a[0], a[1], a[2], b[0]], [a[3], a[4], a[5], b[1]], [a[6], a[7], a[8], b[2]])
    }

    /// b = c + t − A c: the translation column of y = A (x − c) + c + t.
    static func shift(a: [Double], t: [Double], centre c: [Double]) -> [Double] {
        (0..<3).map { r -> Double in
            let moved: Double = a[r * 3] * c[0] + a[r * 3 + 1] * c[1] + a[r * 3 + 2] * c[2]
            return c[r] + t[r] - moved
        }
    }

    static func spacingText(_ spacing: [Double]) -> String {
        spacing.map { String(format: "%.3g", $0) }.joined(separator: "x") + " mm"
    }

    /// Finite, non-constant, and large enough for a pyramid.
    static func checkImage(_ volume: Volume, name: String) throws(PreprocessingError) {
        guard volume.shape.allSatisfy({ $0 >= 4 }) else {
            throw .unsupportedVolume(path: name, reason: "shape \(volume.shape) is too small to register (at least 4 voxels per axis)")
        }
        guard volume.affine.isFinite, (try? volume.affine.inverse()) != nil else {
            throw .unsupportedVolume(path: name, reason: "its affine is singular or not finite")
        }
        let statistics = VoxelStatistics(volume.data)
        guard statistics.nonFinite == 0 else { throw .nonFiniteVoxels(path: name, count: statistics.nonFinite) }
        guard statistics.maximum > statistics.minimum else {
            throw .noForeground(path: name, reason: "every voxel is \(statistics.minimum)")
        }
    }

    /// The intensity-weighted centre (world mm) of the voxels above a tenth of the robust
    /// maximum (the 99.5th percentile of a strided subsample), so background noise and a
    /// few hot voxels do not move it.
    static func centreOfMass(_ volume: Volume, name: String) throws(PreprocessingError) -> [Double] {
        let values = volume.data.scalars
        let strideForPercentile = max(1, values.count / 200_000)
        var subsample = Swift.stride(from: 0, to: values.count, by: strideForPercentile).map { values[$0] }
        subsample.sort()
        let high = Double(subsample[min(subsample.count - 1, Int(0.995 * Double(subsample.count - 1)))])
        let threshold = Float(0.1 * high)
        let (nx, ny, nz) = (volume.shape[0], volume.shape[1], volume.shape[2])
        var sums = [0.0, 0, 0, 0]
        for i in 0..<nx {
            for j in 0..<ny {
                let row = (i * ny + j) * nz
                for k in 0..<nz {
                    let v = values[row + k]
                    guard v > threshold else { continue }
                    let w = Double(v)
                    sums[0] += w
                    sums[1] += w * Double(i)
                    sums[2] += w * Double(j)
                    sums[3] += w * Double(k)
                }
            }
        }
        guard high > 0, sums[0] > 0 else { throw .noForeground(path: name, reason: "no voxel is above zero") }
        return volume.affine.apply([sums[1] / sums[0], sums[2] / sums[0], sums[3] / sums[0]])
    }

    /// The intensity-weighted centre of a cost's samples (world mm) and their RMS distance to it.
    static func centreAndRadius(_ cost: CorrelationCost) -> ([Double], Double) {
        var weightSum = 0.0, sum = [0.0, 0, 0], points: [[Double]] = []
        points.reserveCapacity(cost.sampleCount)
        for s in 0..<cost.sampleCount {
            let p = cost.fixedAffine.apply([Double(cost.positions[3 * s]), Double(cost.positions[3 * s + 1]), Double(cost.positions[3 * s + 2])])
            points.append(p)
            let w = max(Double(cost.fixedValues[s]), 0)
            weightSum += w
            for r in 0..<3 { sum[r] += w * p[r] }
        }
        let centre = weightSum > 0 ? sum.map { $0 / weightSum } : (0..<3).map { r in points.reduce(0) { $0 + $1[r] } / Double(max(points.count, 1)) }
        let meanSquare = points.reduce(0) { total, p in total + (0..<3).reduce(0) { $0 + (p[$1] - centre[$1]) * (p[$1] - centre[$1]) } }
        return (centre, (meanSquare / Double(max(points.count, 1))).squareRoot())
    }

    /// The region at every `factors[a]`-th voxel along axis `a` (as `LevelImage` decimates).
    static func decimate(_ region: [Bool], shape: [Int], factors: [Int]) -> [Bool] {
        guard factors != [1, 1, 1] else { return region }
        let newShape = (0..<3).map { (shape[$0] + factors[$0] - 1) / factors[$0] }
        var out = [Bool](repeating: false, count: newShape.reduce(1, *))
        for i in 0..<newShape[0] {
            for j in 0..<newShape[1] {
                for k in 0..<newShape[2] {
                    out[(i * newShape[1] + j) * newShape[2] + k] = region[((i * factors[0]) * shape[1] + j * factors[1]) * shape[2] + k * factors[2]]
                }
            }
        }
        return out
    }

    /// The region grown by one voxel (26-neighbourhood, as three separable passes), so the
    /// region's border (often the strongest edge, e.g. the brain's surface) is measured from
    /// both sides.
    static func dilateOnce(_ region: [Bool], shape: [Int]) -> [Bool] {
        var current = region
        for axis in 0..<3 {
            let stride = shape[(axis + 1)...].reduce(1, *), length = shape[axis]
            var next = current
            for index in current.indices where current[index] {
                let position = (index / stride) % length
                if position > 0 { next[index - stride] = true }
                if position < length - 1 { next[index + stride] = true }
            }
            current = next
        }
        return current
    }
}

/// A stage's search space around the transform it starts from, in millimetre-like units:
/// rotations as arc length at the samples' RMS radius, linear-map changes times that radius,
/// translations in mm, so one step size suits every parameter.
struct StageParameters {
    let model: TransformModel
    let baseA: [Double]
    let baseT: [Double]
    let centre: [Double]
    let radius: Double

    var zero: [Double] { [Double](repeating: 0, count: model == .rigid ? 6 : 12) }

    /// (A, t) of parameter vector `p`.
    func transform(_ p: [Double]) -> (a: [Double], t: [Double]) {
        switch model {
        case .rigid:
            let rotation = Self.rotation([p[0] / radius, p[1] / radius, p[2] / radius])
            return (Self.multiply(rotation, baseA), (0..<3).map { baseT[$0] + p[3 + $0] })
        case .affine:
            return ((0..<9).map { baseA[$0] + p[$0] / radius }, (0..<3).map { baseT[$0] + p[9 + $0] })
        }
    }

    /// The gradient in parameter space from the cost's gradient with respect to A (at fixed t) and t.
    func gradient(_ p: [Double], costByA: [Double], costByT: [Double]) -> [Double] {
        switch model {
        case .rigid:
            // dA/dω by central differences of the rotation (exact to ~1e-10; the rotation is cheap).
            let omega = [p[0] / radius, p[1] / radius, p[2] / radius]
            let h = 1e-6
            var out = [Double](repeating: 0, count: 6)
            for k in 0..<3 {
                var plus = omega, minus = omega
                plus[k] += h
                minus[k] -= h
                let dA = zip(Self.multiply(Self.rotation(plus), baseA), Self.multiply(Self.rotation(minus), baseA)).map { ($0 - $1) / (2 * h) }
                out[k] = zip(dA, costByA).reduce(0) { $0 + $1.0 * $1.1 } / radius
            }
            for r in 0..<3 { out[3 + r] = costByT[r] }
            return out
        case .affine:
            return costByA.map { $0 / radius } + costByT
        }
    }

    /// Rotation matrix (row by row) of rotation vector `w` (axis × angle in radians), Rodrigues' formula.
    static func rotation(_ w: [Double]) -> [Double] {
        let angle = (w[0] * w[0] + w[1] * w[1] + w[2] * w[2]).squareRoot()
        guard angle > 1e-12 else { return [1, -w[2], w[1], w[2], 1, -w[0], -w[1], w[0], 1] }
        let (x, y, z) = (w[0] / angle, w[1] / angle, w[2] / angle)
        let (c, s) = (cos(angle), sin(angle))
        let v = 1 - c
        return [c + x * x * v, x * y * v - z * s, x * z * v + y * s,
                y * x * v + z * s, c + y * y * v, y * z * v - x * s,
                z * x * v - y * s, z * y * v + x * s, c + z * z * v]
    }

    static func multiply(_ a: [Double], _ b: [Double]) -> [Double] {
        (0..<9).map { index in
            let (r, c) = (index / 3, index % 3)
            return a[r * 3] * b[c] + a[r * 3 + 1] * b[3 + c] + a[r * 3 + 2] * b[6 + c]
        }
    }
}
