import Foundation
import TensorCore

/// A point or vector in millimetres.
struct Vec3: Sendable, Equatable {
    var x, y, z: Float

    static func + (a: Vec3, b: Vec3) -> Vec3 { Vec3(x: a.x + b.x, y: a.y + b.y, z: a.z + b.z) }
    static func - (a: Vec3, b: Vec3) -> Vec3 { Vec3(x: a.x - b.x, y: a.y - b.y, z: a.z - b.z) }
    static func * (s: Float, a: Vec3) -> Vec3 { Vec3(x: s * a.x, y: s * a.y, z: s * a.z) }
    func dot(_ b: Vec3) -> Float { x * b.x + y * b.y + z * b.z }
    var length: Float { dot(self).squareRoot() }
}

/// A 3x3 matrix, rows first.
struct Mat3: Sendable, Equatable {
    var r0, r1, r2: Vec3

    static let identity = Mat3(r0: Vec3(x: 1, y: 0, z: 0), r1: Vec3(x: 0, y: 1, z: 0), r2: Vec3(x: 0, y: 0, z: 1))

    func apply(_ v: Vec3) -> Vec3 { Vec3(x: r0.dot(v), y: r1.dot(v), z: r2.dot(v)) }

    var transposed: Mat3 {
        Mat3(r0: Vec3(x: r0.x, y: r1.x, z: r2.x), r1: Vec3(x: r0.y, y: r1.y, z: r2.y), r2: Vec3(x: r0.z, y: r1.z, z: r2.z))
    }

    static func * (a: Mat3, b: Mat3) -> Mat3 {
        let bt = b.transposed
        return Mat3(r0: bt.apply(a.r0), r1: bt.apply(a.r1), r2: bt.apply(a.r2))
    }

    /// Rotation by `angles` (radians) about x, then y, then z.
    static func rotation(_ angles: Vec3) -> Mat3 {
        let (cx, sx) = (FastMath.cos(angles.x), FastMath.sin(angles.x))
        let (cy, sy) = (FastMath.cos(angles.y), FastMath.sin(angles.y))
        let (cz, sz) = (FastMath.cos(angles.z), FastMath.sin(angles.z))
        let rx = Mat3(r0: Vec3(x: 1, y: 0, z: 0), r1: Vec3(x: 0, y: cx, z: -sx), r2: Vec3(x: 0, y: sx, z: cx))
        let ry = Mat3(r0: Vec3(x: cy, y: 0, z: sy), r1: Vec3(x: 0, y: 1, z: 0), r2: Vec3(x: -sy, y: 0, z: cy))
        let rz = Mat3(r0: Vec3(x: cz, y: -sz, z: 0), r1: Vec3(x: sz, y: cz, z: 0), r2: Vec3(x: 0, y: 0, z: 1))
        return rz * ry * rx
    }
}

/// A solid ellipsoid, optionally rotated: inside when `|R (p - centre) / radii| <= 1`.
struct Ellipsoid: Sendable {
    var centre: Vec3
    var radii: Vec3
    /// Maps world offsets into the ellipsoid's own axes.
    var orientation: Mat3 = .identity

    /// The squared ellipsoidal norm of `p` (1 on the surface).
    @inline(__always)
    func norm2(_ p: Vec3) -> Float {
        let d = orientation.apply(p - centre)
        let u = d.x / radii.x, v = d.y / radii.y, w = d.z / radii.z
        return u * u + v * v + w * w
    }

    @inline(__always)
    func contains(_ p: Vec3) -> Bool { norm2(p) <= 1 }

    /// The same ellipsoid with its volume multiplied by `factor` (radii by its cube root).
    func scaledVolume(_ factor: Float) -> Ellipsoid {
        var copy = self
        copy.radii = FastMath.cbrt(max(factor, 1e-3)) * radii
        return copy
    }

    /// Scaled about `pivot` so that its volume is multiplied by `factor`: a group of
    /// ellipsoids scaled about one pivot keeps its shape, so its union's volume scales exactly.
    func scaledVolume(_ factor: Float, about pivot: Vec3) -> Ellipsoid {
        var copy = scaledVolume(factor)
        copy.centre = pivot + FastMath.cbrt(max(factor, 1e-3)) * (centre - pivot)
        return copy
    }

    /// Mirrored through the mid-sagittal plane (x -> -x).
    var mirrored: Ellipsoid {
        var copy = self
        copy.centre.x = -centre.x
        let m = orientation
        // The mirror image uses R M with M = diag(-1, 1, 1) (negating R's first column); negating
        // the first row too keeps a proper rotation and leaves the norm unchanged.
        copy.orientation = Mat3(r0: Vec3(x: m.r0.x, y: -m.r0.y, z: -m.r0.z),
                                r1: Vec3(x: -m.r1.x, y: m.r1.y, z: m.r1.z),
                                r2: Vec3(x: -m.r2.x, y: m.r2.y, z: m.r2.z))
        return copy
    }
}

/// A smooth random field as a sum of plane waves, `g(p) = sum a_m sin(k_m . p + phi_m)`:
/// its zero set is a network of curved sheets, which become the sulci.
struct WaveField: Sendable {
    var vectors: [Vec3]
    var phases: [Float]
    var amplitudes: [Float]

    /// The value and the gradient's length at `p`.
    @inline(__always)
    func valueAndSlope(_ p: Vec3) -> (value: Float, slope: Float) {
        var value: Float = 0
        var gradient = Vec3(x: 0, y: 0, z: 0)
        for m in 0..<vectors.count {
            let k = vectors[m]
            let angle = k.dot(p) + phases[m]
            let (sine, cosine) = FastMath.sinCos(angle)
            value += amplitudes[m] * sine
            gradient = gradient + (amplitudes[m] * cosine) * k
        }
        return (value, gradient.length)
    }

    @inline(__always)
    func value(_ p: Vec3) -> Float {
        var value: Float = 0
        for m in 0..<vectors.count { value += amplitudes[m] * FastMath.sin(vectors[m].dot(p) + phases[m]) }
        return value
    }
}

/// One scan's anatomy in *head coordinates* (millimetres, RAS: x right, y anterior,
/// z superior, origin at the brain's centre), before pose, intensities and noise.
///
/// Layers from outside in: scalp, skull, extra-cerebral CSF, the brain envelope (an ellipsoid
/// with low-frequency bumps), the cortical grey-matter ribbon (folded by sulci that cut down
/// from the surface along the zero sheets of a wave field, and by the interhemispheric
/// fissure), white matter, and the deep structures: lateral and third ventricles, thalamus,
/// caudate, putamen and hippocampi. Atrophy removes grey matter from the pial side (the
/// brain surface moves in, sulci widen), shrinks the hippocampi (the space becomes CSF) and
/// enlarges the ventricles.
struct Anatomy: Sendable {
    /// Outer surface of the scalp.
    var head: Ellipsoid
    var scalpThickness: Float = 5
    var skullThickness: Float = 6
    /// The nominal (pre-atrophy) brain envelope.
    var brain: Ellipsoid
    /// Low-frequency relative bumps of the brain envelope.
    var brainShape: WaveField
    /// Sulcal sheets.
    var sulci: WaveField
    /// Depth of the sulci below the brain surface (mm).
    var sulcalDepth: Float = 20
    /// Width of the sulcal CSF cleft before atrophy (mm).
    var sulcalWidth: Float = 1.5
    /// Depth of the interhemispheric fissure (mm) and its width before atrophy.
    var fissureDepth: Float = 30
    var fissureWidth: Float = 2
    /// Cortical ribbon thickness before atrophy (mm).
    var corticalThickness: Float = 3
    /// Grey matter lost from the pial side everywhere, as a fraction of the thickness.
    var globalThinning: Float = 0
    /// Extra fraction lost around the medial temporal lobes (Gaussian weight, sigma 16 mm).
    var medialTemporalThinning: Float = 0
    var medialTemporalCentres: [Vec3] = [Vec3(x: 30, y: -14, z: -44), Vec3(x: -30, y: -14, z: -44)]
    var ventricles: [Ellipsoid]
    var deepGreyMatter: [Ellipsoid]
    /// Hippocampi at their nominal size and after atrophy.
    var hippocampi: [Ellipsoid]
    var atrophiedHippocampi: [Ellipsoid]

    /// Everything deep structures occupy lies inside this depth below the brain surface, so
    /// their tests are skipped nearer the surface.
    private var deepStructureDepth: Float { 12 }

    /// The tissue at `p` (head coordinates, mm) and whether `p` is inside the brain mask (the
    /// nominal brain envelope).
    @inline(__always)
    func tissue(at p: Vec3) -> (tissue: Tissue, inBrain: Bool) {
        let headDepth = depth(p, in: head, bumps: nil)
        if headDepth < 0 { return (.background, false) }
        if headDepth < scalpThickness { return (.scalp, false) }
        if headDepth < scalpThickness + skullThickness { return (.skull, false) }
        let brainDepth = depth(p, in: brain, bumps: brainShape)
        if brainDepth < 0 { return (.csf, false) }

        if brainDepth > deepStructureDepth {
            for ventricle in ventricles where ventricle.contains(p) { return (.ventricles, true) }
            for hippocampus in atrophiedHippocampi where hippocampus.contains(p) { return (.hippocampus, true) }
            for hippocampus in hippocampi where hippocampus.contains(p) { return (.csf, true) }
            for nucleus in deepGreyMatter where nucleus.contains(p) { return (.deepGreyMatter, true) }
        }
        // Distance to the nominal pial surface: the brain surface, the fissure's walls or a sulcus's.
        var surface = brainDepth
        if brainDepth < fissureDepth + corticalThickness {
            surface = min(surface, distanceBelow(cleft: abs(p.x) - fissureWidth / 2, depth: brainDepth, cleftDepth: fissureDepth))
        }
        if brainDepth < sulcalDepth + corticalThickness {
            let (value, slope) = sulci.valueAndSlope(p)
            let sheet = abs(value) / max(slope, 1e-3)
            surface = min(surface, distanceBelow(cleft: sheet - sulcalWidth / 2, depth: brainDepth, cleftDepth: sulcalDepth))
        }
        if surface < 0 { return (.csf, true) }
        guard surface < corticalThickness else { return (.whiteMatter, true) }
        var lost = globalThinning
        if medialTemporalThinning > 0 {
            var weight: Float = 0
            for centre in medialTemporalCentres {
                let d = p - centre
                weight = max(weight, FastMath.exp(-d.dot(d) / (2 * 16 * 16)))
            }
            lost += medialTemporalThinning * weight
        }
        return (surface < corticalThickness * min(lost, 0.9) ? .csf : .corticalGreyMatter, true)
    }

    /// Depth of `p` below the surface of `ellipsoid` (mm, negative outside), measured along
    /// the ray from the centre; `bumps` modulate the radius by `1 + bumps(direction)`.
    @inline(__always)
    private func depth(_ p: Vec3, in ellipsoid: Ellipsoid, bumps: WaveField?) -> Float {
        let offset = p - ellipsoid.centre
        let distance = offset.length
        guard distance > 1e-3 else { return .greatestFiniteMagnitude }
        var rho = ellipsoid.norm2(p).squareRoot()
        if let bumps { rho /= 1 + bumps.value((1 / distance) * offset) }
        return distance * (1 - rho) / rho
    }

    /// Distance from a point at `depth` below the surface, `cleft` mm beside a cleft's wall,
    /// to a cleft that cuts down to `cleftDepth`: beside the cleft while above its bottom,
    /// else to its bottom edge. Negative inside the cleft.
    @inline(__always)
    private func distanceBelow(cleft: Float, depth: Float, cleftDepth: Float) -> Float {
        if depth < cleftDepth { return cleft }
        let below = depth - cleftDepth
        let aside = max(0, cleft)
        return (below * below + aside * aside).squareRoot()
    }
}
