import Foundation
import TensorCore
import VolumeIO

/// One rendered synthetic scan: the T1-weighted image, its brain mask, its tissue labels
/// (all on one grid) and the ground-truth volumes measured on the labels.
public struct SyntheticScan: Sendable {
    /// T1-weighted intensities (integers, white matter about 600-800 depending on the site).
    public var t1: Volume
    /// 1 inside the nominal brain envelope (brain, ventricles, sulcal CSF), else 0.
    public var mask: Volume
    /// `Tissue` raw values.
    public var labels: Volume
    /// Both hippocampi (mL), counted on `labels`.
    public var hippocampusML: Double
    /// Lateral and third ventricles (mL), counted on `labels`.
    public var ventriclesML: Double
    /// The scan's pose: head coordinates (the template's world, mm) → this scan's world (mm),
    /// a rotation times the participant's head scale plus a shift. The true answer of an
    /// affine registration of this scan to the cohort's template.
    public var headToWorld: Affine
}

/// Turns participants and sessions into voxels. The canonical anatomy (structure positions
/// and the folding pattern) is the same for every cohort; participants vary around it.
struct SyntheticRenderer: Sendable {
    let options: SyntheticCohortOptions

    // MARK: Canonical anatomy (head coordinates, mm, RAS, origin at the brain's centre)

    static let brainRadii = Vec3(x: 57.5, y: 75.5, z: 64.5)
    /// Scalp, skull and a CSF layer: the head's radii exceed the brain's by this much.
    static let headMargin: Float = 14

    /// Right lateral ventricle (body, frontal horn, atrium), scaled as one piece about its
    /// centre; the left one mirrors it.
    static let rightLateralVentricle = [
        Ellipsoid(centre: Vec3(x: 6, y: -2, z: 14), radii: Vec3(x: 5.5, y: 22, z: 7)),
        Ellipsoid(centre: Vec3(x: 9, y: 17, z: 9), radii: Vec3(x: 5.5, y: 9, z: 7)),
        Ellipsoid(centre: Vec3(x: 15, y: -25, z: 8), radii: Vec3(x: 6.5, y: 10, z: 7)),
    ]
    static let rightLateralVentricleCentre = Vec3(x: 9, y: -3, z: 11)
    /// The right temporal horn, above and lateral to the hippocampus.
    static let rightTemporalHorn = Ellipsoid(centre: Vec3(x: 33, y: -12, z: -20), radii: Vec3(x: 2.5, y: 12, z: 3),
                                             orientation: .rotation(Vec3(x: 0.35, y: 0, z: 0)))
    static let thirdVentricle = Ellipsoid(centre: Vec3(x: 0, y: -8, z: 0), radii: Vec3(x: 1.5, y: 11, z: 7))
    /// Thalamus, caudate head, putamen (right).
    static let rightDeepGreyMatter = [
        Ellipsoid(centre: Vec3(x: 10, y: -13, z: 3), radii: Vec3(x: 8.5, y: 14, z: 9)),
        Ellipsoid(centre: Vec3(x: 14, y: 11, z: 10), radii: Vec3(x: 5, y: 10, z: 7)),
        Ellipsoid(centre: Vec3(x: 24, y: 3, z: 0), radii: Vec3(x: 6, y: 14, z: 9)),
    ]
    /// The right hippocampus: long axis anterior-posterior, its anterior end lower.
    static let rightHippocampus = Ellipsoid(centre: Vec3(x: 26, y: -16, z: -30), radii: Vec3(x: 6.5, y: 19, z: 7),
                                            orientation: .rotation(Vec3(x: 0.45, y: 0, z: 0)))

    /// The folding pattern: wave vectors of wavelength 16-24 mm in fixed random directions.
    static let sulcalWaves: (vectors: [Vec3], phases: [Float]) = {
        var random = Xoshiro256StarStar(seed: 0x5EED_F01D)
        var vectors: [Vec3] = []
        var phases: [Float] = []
        for _ in 0..<12 {
            var direction = Vec3(x: random.portableNormal(), y: random.portableNormal(), z: random.portableNormal())
            direction = (1 / max(direction.length, 1e-3)) * direction
            let wavelength = 16 + 8 * random.nextUnitFloat()
            vectors.append((2 * .pi / wavelength) * direction)
            phases.append(Float(random.nextUnitDouble() * 2 * .pi))
        }
        return (vectors, phases)
    }()

    /// Directions of the brain envelope's low-frequency bumps.
    static let shapeVectors = [Vec3(x: 2, y: 0.5, z: 0), Vec3(x: 0, y: 2.5, z: 1), Vec3(x: 0.5, y: -1, z: 2.5), Vec3(x: 1.5, y: 1.5, z: -1.5)]

    /// The anatomy of one participant at one session.
    func anatomy(_ participant: SyntheticParticipant, _ session: SyntheticSession) -> Anatomy {
        let ageing = Float(session.age - 70)
        let severity = Float(session.severity)
        let brainRadii = Self.brainRadii
        let margin = Self.headMargin
        let head = Ellipsoid(centre: Vec3(x: 0, y: 0, z: 0),
                             radii: Vec3(x: brainRadii.x + margin, y: brainRadii.y + margin, z: brainRadii.z + margin))
        let brain = Ellipsoid(centre: Vec3(x: 0, y: 0, z: 0), radii: brainRadii)
        let shape = WaveField(vectors: Self.shapeVectors, phases: participant.brainShapePhases, amplitudes: [Float](repeating: 0.007, count: 4))
        let waves = Self.sulcalWaves
        let sulci = WaveField(vectors: waves.vectors, phases: zip(waves.phases, participant.sulcalPhaseJitter).map { $0 + $1 },
                              amplitudes: [Float](repeating: 1, count: waves.vectors.count))

        let ventricleScale = max(0.3, participant.ventricleFactor * (1 + 0.03 * ageing) * (1 + 0.6 * severity))
        let rightVentricles = Self.rightLateralVentricle.map { $0.scaledVolume(ventricleScale, about: Self.rightLateralVentricleCentre) }
            + [Self.rightTemporalHorn.scaledVolume(ventricleScale)]
        let ventricles = rightVentricles + rightVentricles.map(\.mirrored) + [Self.thirdVentricle.scaledVolume(ventricleScale)]
        let deep = Self.rightDeepGreyMatter.map { $0.scaledVolume(participant.deepGreyFactor) }
        let nominalHippocampus = Self.rightHippocampus.scaledVolume(participant.hippocampusFactor)
        let hippocampalLoss = clamp((1 - 0.005 * ageing) * (1 - 0.25 * severity), 0.2, 1.2)
        let atrophied = nominalHippocampus.scaledVolume(hippocampalLoss)
        return Anatomy(
            head: head, brain: brain, brainShape: shape, sulci: sulci,
            corticalThickness: 3 * participant.thicknessFactor,
            globalThinning: clamp(0.004 * (Float(session.age) - 60), 0, 0.2) + 0.10 * severity,
            medialTemporalThinning: 0.35 * severity,
            ventricles: ventricles,
            deepGreyMatter: deep + deep.map(\.mirrored),
            hippocampi: [nominalHippocampus, nominalHippocampus.mirrored],
            atrophiedHippocampi: [atrophied, atrophied.mirrored])
    }

    // MARK: Scan geometry

    /// The voxel grid: `options.shape` at `options.voxelSize`, RAS, centred on the origin;
    /// with `varyGeometry`, some scans get another voxel size (same field of view) or
    /// flipped axes.
    func grid(_ random: inout Xoshiro256StarStar) -> (shape: [Int], affine: Affine) {
        var voxel = options.voxelSize
        var shape = options.shape
        var signs: [Double] = [1, 1, 1]
        if options.varyGeometry {
            let sizeDraw = random.nextUnitDouble()
            if sizeDraw < 1.0 / 3 {
                let newVoxel = options.voxelSize * (sizeDraw < 1.0 / 6 ? 0.875 : 1.125)
                shape = shape.map { Int((Double($0) * options.voxelSize / newVoxel).rounded()) }
                voxel = newVoxel
            }
            let flipDraw = random.nextUnitDouble()
            if flipDraw < 1.0 / 3 { signs = flipDraw < 1.0 / 6 ? [-1, 1, 1] : [-1, -1, 1] }
        }
        var rows: [[Double]] = []
        for axis in 0..<3 {
            var row = [0.0, 0, 0, 0]
            row[axis] = signs[axis] * voxel
            row[3] = -signs[axis] * voxel * Double(shape[axis] - 1) / 2
            rows.append(row)
        }
        return (shape, Affine(rows: rows[0], rows[1], rows[2]))
    }

    // MARK: Rendering

    /// How one scan was acquired: head pose, tissue intensities, bias field and noise.
    struct Acquisition {
        /// Rotation (radians, about x then y then z) and translation (mm) of the head.
        var angles = Vec3(x: 0, y: 0, z: 0)
        var translation = Vec3(x: 0, y: 0, z: 0)
        /// Intensity of each tissue, indexed by `Tissue.rawValue`.
        var table: [Float]
        /// Rician noise standard deviation.
        var sigma: Float = 0
        /// Coefficients of the log bias field's quadratic polynomial.
        var bias = [Float](repeating: 0, count: 9)
        var noiseSeed: UInt64 = 0
    }

    /// Tissue intensities of a site (0 = A, 1 = B, ...) before per-scan jitter: white matter
    /// about 600-800, the other tissues by their relative T1 signal.
    static func siteTable(_ siteIndex: Float, jitter: () -> Float = { 0 }) -> (table: [Float], whiteMatter: Float) {
        let whiteMatter = 700 * (1 + 0.15 * FastMath.sin(1.7 * siteIndex + 0.3))
        var table = [Float](repeating: 0, count: Tissue.allCases.count)
        for tissue in Tissue.allCases {
            var relative = tissue.relativeT1
            if tissue == .corticalGreyMatter || tissue == .hippocampus || tissue == .deepGreyMatter { relative += 0.03 * FastMath.cos(2.3 * siteIndex) }
            table[Int(tissue.rawValue)] = whiteMatter * relative * (1 + 0.03 * jitter())
        }
        return (table, whiteMatter)
    }

    func render(_ participant: SyntheticParticipant, _ session: SyntheticSession) -> SyntheticScan {
        var random = Xoshiro256StarStar(seed: session.seed)
        let (shape, affine) = grid(&random)
        // Pose: world p = t + R S q for head coordinates q.
        let angles = Vec3(x: clampedNormal(&random, 0.05, 0.14), y: clampedNormal(&random, 0.05, 0.14), z: clampedNormal(&random, 0.05, 0.14))
        let translation = Vec3(x: clampedNormal(&random, 3, 6), y: clampedNormal(&random, 3, 6), z: clampedNormal(&random, 3, 6))
        // Intensities: site scale and contrast, per-scan jitter.
        let siteIndex = Float(participant.site.unicodeScalars.last.map { Int($0.value) - 65 } ?? 0)
        let (table, whiteMatter) = Self.siteTable(siteIndex) { clampedNormal(&random, 1, 3) }
        let sigma = Float(options.noise) * whiteMatter * (1 + 0.25 * FastMath.sin(0.9 * siteIndex + 1))
        let bias = (0..<9).map { _ in Float(options.biasField) / 3 * clampedNormal(&random, 1, 3) }
        let acquisition = Acquisition(angles: angles, translation: translation, table: table, sigma: sigma, bias: bias,
                                      noiseSeed: random.next())
        return render(anatomy(participant, session), headScale: participant.headScale, shape: shape, affine: affine,
                      acquisition: acquisition)
    }

    /// The cohort's template: the canonical anatomy (a cognitively normal 70-year-old of
    /// average head size and shape) in head coordinates (no pose: world = head coordinates),
    /// site A's contrast, without noise or bias field, on the recipe's grid.
    func renderTemplate() -> SyntheticScan {
        let canonical = SyntheticParticipant(
            id: "template", condition: .cn, isLabeled: true, sex: "F", site: "site-A", baselineAge: 70, severity: 0,
            sessions: [], headScale: Vec3(x: 1, y: 1, z: 1), brainShapePhases: [0, 0, 0, 0],
            sulcalPhaseJitter: [Float](repeating: 0, count: 12), hippocampusFactor: 1, ventricleFactor: 1,
            thicknessFactor: 1, deepGreyFactor: 1)
        let session = SyntheticSession(id: "template", months: 0, age: 70, severity: 0, mmse: 30, cdr: 0, seed: 0)
        var plain = options
        plain.varyGeometry = false
        var unused = Xoshiro256StarStar(seed: 0)
        let (shape, affine) = SyntheticRenderer(options: plain).grid(&unused)
        return render(anatomy(canonical, session), headScale: canonical.headScale, shape: shape, affine: affine,
                      acquisition: Acquisition(table: Self.siteTable(0).table))
    }

    /// Renders `anatomy` scaled by `headScale` and posed by `acquisition` onto the grid.
    private func render(_ anatomy: Anatomy, headScale s: Vec3, shape: [Int], affine: Affine, acquisition: Acquisition) -> SyntheticScan {
        let rotation = Mat3.rotation(acquisition.angles)
        let rotationT = rotation.transposed
        let translation = acquisition.translation
        let toHead = Mat3(r0: (1 / s.x) * rotationT.r0, r1: (1 / s.y) * rotationT.r1, r2: (1 / s.z) * rotationT.r2)
        func column(_ c: Int) -> Vec3 { Vec3(x: Float(affine[0, c]), y: Float(affine[1, c]), z: Float(affine[2, c])) }
        let origin = toHead.apply(column(3) - translation)
        let step = (toHead.apply(column(0)), toHead.apply(column(1)), toHead.apply(column(2)))
        let (table, sigma, bias, noiseSeed) = (acquisition.table, acquisition.sigma, acquisition.bias, acquisition.noiseSeed)

        let (nx, ny, nz) = (shape[0], shape[1], shape[2])
        let count = nx * ny * nz
        var labels = [UInt8](repeating: 0, count: count)
        var maskValues = [UInt8](repeating: 0, count: count)
        var intensity = [Float](repeating: 0, count: count)
        labels.withUnsafeMutableBufferPointer { labelBuffer in
            maskValues.withUnsafeMutableBufferPointer { maskBuffer in
                intensity.withUnsafeMutableBufferPointer { values in
                    let (labelOut, maskOut, valueOut) = (labelBuffer, maskBuffer, values)
                    Engine.parallelRanges(nx) { range in
                        for i in range {
                            for j in 0..<ny {
                                let row = origin + Float(i) * step.0 + Float(j) * step.1
                                for k in 0..<nz {
                                    let (tissue, inBrain) = anatomy.tissue(at: row + Float(k) * step.2)
                                    let index = (i * ny + j) * nz + k
                                    labelOut[index] = tissue.rawValue
                                    maskOut[index] = inBrain ? 1 : 0
                                    valueOut[index] = table[Int(tissue.rawValue)]
                                }
                            }
                        }
                    }
                }
            }
        }
        intensity = Self.binomialBlur(intensity, shape: shape)
        // Bias field (smooth, in scanner coordinates), then Rician noise, rounded to integers.
        let world0 = column(3), worldStep = (column(0), column(1), column(2))
        intensity.withUnsafeMutableBufferPointer { values in
            let out = values
            Engine.parallelRanges(nx) { range in
                for i in range {
                    for j in 0..<ny {
                        for k in 0..<nz {
                            let p = (1.0 / 80) * (world0 + Float(i) * worldStep.0 + Float(j) * worldStep.1 + Float(k) * worldStep.2)
                            var exponent = bias[0] * p.x + bias[1] * p.y + bias[2] * p.z
                            exponent += bias[3] * (p.x * p.x - 1.0 / 3) + bias[4] * (p.y * p.y - 1.0 / 3) + bias[5] * (p.z * p.z - 1.0 / 3)
                            exponent += bias[6] * p.x * p.y + bias[7] * p.x * p.z + bias[8] * p.y * p.z
                            let index = (i * ny + j) * nz + k
                            let (n1, n2) = Self.normalPair(noiseSeed, index)
                            let real = out[index] * FastMath.exp(exponent) + sigma * n1
                            let imaginary = sigma * n2
                            out[index] = min(32767, (real * real + imaginary * imaginary).squareRoot().rounded())
                        }
                    }
                }
            }
        }
        let voxelML = abs(affine.linearPart.determinant3) / 1000
        let hippocampus = labels.reduce(0) { $0 + ($1 == Tissue.hippocampus.rawValue ? 1 : 0) }
        let ventricles = labels.reduce(0) { $0 + ($1 == Tissue.ventricles.rawValue ? 1 : 0) }
        func volume(_ values: [Float]) -> Volume {
            // The shape is 3-D by construction.
            try! Volume(data: Tensor(shape: shape, scalars: values), affine: affine)
        }
        // Head → world: p = t + R S q, in double precision from the same Float parameters.
        let rows = [rotation.r0, rotation.r1, rotation.r2]
        let scale = [Double(s.x), Double(s.y), Double(s.z)]
        let shift = [Double(translation.x), Double(translation.y), Double(translation.z)]
        let headToWorld = Affine(entries: (0..<3).flatMap { r in
            [Double(rows[r].x) * scale[0], Double(rows[r].y) * scale[1], Double(rows[r].z) * scale[2], shift[r]]
        } + [0, 0, 0, 1])
        return SyntheticScan(t1: volume(intensity), mask: volume(maskValues.map(Float.init)), labels: volume(labels.map(Float.init)),
                             hippocampusML: Double(hippocampus) * voxelML, ventriclesML: Double(ventricles) * voxelML,
                             headToWorld: headToWorld)
    }

    /// A [1, 2, 1] / 4 blur along each axis (edges clamped): the scanner's point-spread
    /// function, which gives boundaries their partial-volume mixtures.
    static func binomialBlur(_ values: [Float], shape: [Int]) -> [Float] {
        let (nx, ny, nz) = (shape[0], shape[1], shape[2])
        var source = values
        var target = values
        for axis in 0..<3 {
            let stride = [ny * nz, nz, 1][axis]
            let extent = shape[axis]
            source.withUnsafeBufferPointer { input in
                target.withUnsafeMutableBufferPointer { output in
                    let (src, dst) = (input, output)
                    Engine.parallelRanges(nx) { range in
                        for i in range {
                            for j in 0..<ny {
                                for k in 0..<nz {
                                    let index = (i * ny + j) * nz + k
                                    let position = axis == 0 ? i : axis == 1 ? j : k
                                    let before = position > 0 ? src[index - stride] : src[index]
                                    let after = position < extent - 1 ? src[index + stride] : src[index]
                                    dst[index] = 0.25 * before + 0.5 * src[index] + 0.25 * after
                                }
                            }
                        }
                    }
                }
            }
            swap(&source, &target)
        }
        return source
    }

    /// Two independent standard normals for voxel `index`, from a counter-based hash (so the
    /// noise does not depend on how voxels are split among threads).
    @inline(__always)
    static func normalPair(_ seed: UInt64, _ index: Int) -> (Float, Float) {
        var mixer = SplitMix64(seed: seed ^ (UInt64(index) &* 0xD1B5_4A32_D192_ED03))
        let bits = mixer.next()
        let u1 = (Float(bits >> 40) + 0.5) * (1.0 / 16_777_216.0)
        let u2 = Float((bits >> 8) & 0xFF_FFFF) * (1.0 / 16_777_216.0)
        let radius = (-2 * FastMath.log(u1)).squareRoot()
        let (sine, cosine) = FastMath.sinCos(2 * .pi * u2)
        return (radius * cosine, radius * sine)
    }
}

/// A normal draw with standard deviation `sd`, clamped to +-`limit`.
func clampedNormal(_ random: inout Xoshiro256StarStar, _ sd: Float, _ limit: Float) -> Float {
    clamp(sd * random.portableNormal(), -limit, limit)
}

extension Array where Element == Double {
    /// Determinant of a row-major 3x3 matrix.
    var determinant3: Double {
        self[0] * (self[4] * self[8] - self[5] * self[7]) - self[1] * (self[3] * self[8] - self[5] * self[6])
            + self[2] * (self[3] * self[7] - self[4] * self[6])
    }
}
