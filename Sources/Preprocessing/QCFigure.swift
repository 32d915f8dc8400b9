import Foundation
import Reports
import VolumeIO

/// Quality-control figures of registered scans: three orthogonal slices of the image with the
/// template's edges (and optionally a brain mask's boundary) drawn on top, as one RGB PNG.
///
/// Every figure looks the same whichever order the voxels are stored in (RAS, LPS, LIA...):
/// the volume is read along the world axes its affine's voxel axes are closest to
/// (`AffineGeometry.ioOrientation`, nibabel's `io_orientation`), and the panels are, left to
/// right,
///
///     sagittal (x fixed): anterior on the left, superior at the top
///     coronal  (y fixed): subject's left on the left (neurological), superior at the top
///     axial    (z fixed): subject's left on the left (neurological), anterior at the top
///
/// Each panel carries small letters at the middle of its edges (A/P, S/I, L/R) when every
/// panel is at least `letterMinimumSize` pixels on each side. Oblique grids are shown along their closest
/// world axes, without resampling.
public enum QCFigure {
    /// An 8-bit RGB colour.
    public struct Colour: Sendable, Equatable {
        public var red: UInt8
        public var green: UInt8
        public var blue: UInt8

        public init(red: UInt8, green: UInt8, blue: UInt8) {
            (self.red, self.green, self.blue) = (red, green, blue)
        }

        /// Red-orange: the default for template edges.
        public static let orange = Colour(red: 255, green: 80, blue: 0)
        /// Cyan: the default for mask boundaries.
        public static let cyan = Colour(red: 0, green: 210, blue: 255)
    }

    /// Opacity of edge and boundary pixels over the grey image.
    static let overlayOpacity = 0.75
    /// Template edges are the thinned gradient maxima at or above this percentile of all
    /// thinned maxima of the three slices.
    static let edgePercentile = 75.0
    /// Width in pixels of the grey separator between panels.
    static let gap = 4
    static let separatorGrey: UInt8 = 80
    /// Letters are drawn only when every panel is at least this many pixels wide and high.
    static let letterMinimumSize = 48
    /// Panel pixels per letter pixel (at least 1), of the smallest panel side.
    static let letterDivisor = 96
    static let letterColour = Colour(red: 255, green: 230, blue: 0)
    /// Largest panel side in pixels, so a mistaken `pixelsPerMillimetre` cannot ask for a
    /// gigapixel image.
    static let maximumPanelSide = 8192

    /// Sagittal, coronal and axial slices of `image`, side by side, with `template`'s edges
    /// and `mask`'s boundary drawn on top.
    ///
    /// - Slices pass through `centre` (world mm, RAS+) or, by default, the grid's middle voxel
    ///   (index `n / 2` along each world axis, counted from the L, P and I ends).
    /// - Pixels are square with side `v / k` mm, `v` the smallest voxel size and
    ///   `k = max(1, ⌈pixelsPerMillimetre · v⌉)`: voxels are enlarged by nearest neighbour, the
    ///   finest axis by the integer factor `k`, and a panel axis of `n` voxels of `d` mm spans
    ///   `round(n · d · k / v)` pixels, so anisotropic voxels keep the anatomy's proportions.
    ///   Panels are centred vertically and separated by 4 grey pixels.
    /// - Grey levels: the 1st percentile of the image's finite nonzero voxels → black, the
    ///   99th → white, linear in between (an image without nonzero voxels is black).
    /// - Template edges (`edgeColour`): the in-plane gradient magnitude of each template slice
    ///   (central differences in mm), thinned to its maxima across the edge (Canny's
    ///   non-maximum suppression, without hysteresis; Canny 1986, IEEE PAMI 8:679), kept at or
    ///   above the 75th percentile of the thinned maxima of the three slices. Non-finite
    ///   template voxels count as 0.
    /// - Mask boundary (`maskColour`): voxels of `mask` above 0 with a 4-neighbour in the
    ///   slice that is not (or that lies outside the grid). Template edges are drawn over it.
    ///
    /// - Parameters:
    ///   - image: The scan, e.g. registered to the template; shape `[X, Y, Z]`.
    ///   - template: Volume whose edges are drawn, on `image`'s grid; nil for none.
    ///   - mask: Brain mask on `image`'s grid; nil for none.
    ///   - centre: World point (mm, RAS+) the three slices pass through.
    ///   - pixelsPerMillimetre: The least number of pixels per mm (see above), > 0.
    ///   - label: Names the image in errors (e.g. its path).
    /// - Returns: The PNG (8-bit RGB) and its size in pixels.
    /// - Throws: `.gridMismatch` when `template` or `mask` is on another grid than `image`
    ///   (extents, or affine entries differing by more than 10⁻⁴ relative);
    ///   `.unsupportedVolume` for an empty grid or an affine without three distinct axes;
    ///   `.invalidOption` for a `centre` outside the grid or a bad `pixelsPerMillimetre`.
    public static func triplet(
        image: Volume, template: Volume?, mask: Volume? = nil, centre: [Double]? = nil, pixelsPerMillimetre: Double = 2,
        edgeColour: Colour = .orange, maskColour: Colour = .cyan, label: String = "image"
    ) throws(PreprocessingError) -> (png: Data, width: Int, height: Int) {
        let canvas = try render(image: image, template: template, mask: mask, centre: centre, pixelsPerMillimetre: pixelsPerMillimetre,
                                edgeColour: edgeColour, maskColour: maskColour, label: label)
        return (PNGImage.rgb(width: canvas.width, height: canvas.height, pixels: canvas.pixels), canvas.width, canvas.height)
    }

    /// An RGB image and where its panels are.
    struct Canvas {
        var width: Int
        var height: Int
        /// `width × height` RGB triples, row-major, row 0 at the top.
        var pixels: [UInt8]
        /// Sagittal, coronal and axial panel frames in pixels.
        var frames: [(x: Int, y: Int, width: Int, height: Int)]
    }

    /// The figure `triplet` encodes; see there.
    static func render(
        image: Volume, template: Volume?, mask: Volume?, centre: [Double]?, pixelsPerMillimetre: Double,
        edgeColour: Colour, maskColour: Colour, label: String
    ) throws(PreprocessingError) -> Canvas {
        let grid = try OrientedGrid(image, label: label)
        for (other, name) in [(template, "template"), (mask, "mask")] {
            if let other { try InputValidation.requireSameGrid(other, as: image, label: name) }
        }
        guard pixelsPerMillimetre.isFinite, pixelsPerMillimetre > 0 else {
            throw .invalidOption(name: "pixelsPerMillimetre", value: "\(pixelsPerMillimetre)", reason: "must be a positive number")
        }
        let finest = (0..<3).map(grid.spacing).min() ?? 1
        let factor = max(1, Int((pixelsPerMillimetre * finest - 1e-9).rounded(.up)))
        let pixelSize = finest / Double(factor)
        func pixels(_ axis: Int) -> Int { max(1, Int((Double(grid.extent(axis)) * grid.spacing(axis) / pixelSize).rounded())) }
        guard (0..<3).allSatisfy({ pixels($0) <= maximumPanelSide }) else {
            throw .invalidOption(name: "pixelsPerMillimetre", value: "\(pixelsPerMillimetre)",
                                 reason: "panels of \((0..<3).map(pixels)) pixels exceed \(maximumPanelSide)")
        }

        let through = try grid.canonicalVoxel(centre, affine: image.affine, label: label)
        let slices = Panel.allCases.map { grid.slice($0, through: through) }
        let sizes = Panel.allCases.map { (width: pixels($0.column.axis), height: pixels($0.row.axis)) }
        let window = greyWindow(image.data.scalars)
        let imageSlices = slices.map { $0.values(image) }
        let edges = template.map { template in
            templateEdges(slices.map { (values: $0.values(template), slice: $0) })
        }
        let boundaries = mask.map { mask in slices.map { maskBoundary($0.values(mask), slice: $0) } }

        let width = sizes.reduce(0) { $0 + $1.width } + 2 * gap
        let height = sizes.map(\.height).max() ?? 1
        // One letter size for all panels, from the smallest panel side.
        let smallest = sizes.map { min($0.width, $0.height) }.min() ?? 0
        let letterScale = smallest >= letterMinimumSize ? max(1, smallest / letterDivisor) : nil
        var canvas = Canvas(width: width, height: height, pixels: [UInt8](repeating: 0, count: width * height * 3), frames: [])
        var x = 0
        for (index, panel) in Panel.allCases.enumerated() {
            let frame = (x: x, y: (height - sizes[index].height) / 2, width: sizes[index].width, height: sizes[index].height)
            canvas.frames.append(frame)
            let slice = slices[index]
            // Pixel → voxel by nearest neighbour: pixel q of P covers voxel ⌊(2q + 1)·n / 2P⌋.
            let rowVoxel = (0..<frame.height).map { (2 * $0 + 1) * slice.rows / (2 * frame.height) }
            let columnVoxel = (0..<frame.width).map { (2 * $0 + 1) * slice.columns / (2 * frame.width) }
            for row in 0..<frame.height {
                for column in 0..<frame.width {
                    let voxel = rowVoxel[row] * slice.columns + columnVoxel[column]
                    let level = grey(imageSlices[index][voxel], window: window)
                    var colour = Colour(red: level, green: level, blue: level)
                    if boundaries?[index][voxel] ?? false { colour = blend(colour, maskColour) }
                    if edges?[index][voxel] ?? false { colour = blend(colour, edgeColour) }
                    canvas.set(x: frame.x + column, y: frame.y + row, colour)
                }
            }
            if let letterScale { canvas.letter(panel.letters, in: frame, scale: letterScale) }
            x += frame.width
            if index < 2 {
                for column in x..<(x + gap) {
                    for row in 0..<height { canvas.set(x: column, y: row, Colour(red: separatorGrey, green: separatorGrey, blue: separatorGrey)) }
                }
                x += gap
            }
        }
        return canvas
    }

    // MARK: Orientation

    /// The three panels: the world axis each holds fixed and the world axes (0 x, 1 y, 2 z)
    /// along its columns (left → right) and rows (top → bottom), `reversed` when they run
    /// towards L, P or I.
    enum Panel: CaseIterable {
        case sagittal, coronal, axial

        var fixed: Int {
            switch self {
            case .sagittal: 0
            case .coronal: 1
            case .axial: 2
            }
        }

        var column: (axis: Int, reversed: Bool) {
            switch self {
            case .sagittal: (1, true)  // anterior on the left
            case .coronal, .axial: (0, false)  // subject's left on the left
            }
        }

        var row: (axis: Int, reversed: Bool) {
            switch self {
            case .sagittal, .coronal: (2, true)  // superior at the top
            case .axial: (1, true)  // anterior at the top
            }
        }

        /// Letters at the top, bottom, left and right edges.
        var letters: (top: Character, bottom: Character, left: Character, right: Character) {
            switch self {
            case .sagittal: ("S", "I", "A", "P")
            case .coronal: ("S", "I", "L", "R")
            case .axial: ("A", "P", "L", "R")
            }
        }
    }

    /// A volume's voxels addressed in canonical (RAS) order: canonical voxel `(x, y, z)`
    /// counts from the subject's left, posterior and inferior ends along the voxel axes
    /// closest to the world x, y and z axes.
    struct OrientedGrid {
        /// Stored extents `[X, Y, Z]` and voxel sizes (mm).
        let shape: [Int]
        let voxelSizes: [Double]
        /// For world axis w: the voxel axis closest to it.
        let voxelAxis: [Int]
        /// For world axis w: whether that voxel axis runs towards L, P or I.
        let reversed: [Bool]

        init(_ volume: Volume, label: String) throws(PreprocessingError) {
            guard volume.shape.allSatisfy({ $0 >= 1 }) else {
                throw .unsupportedVolume(path: label, reason: "empty grid \(volume.shape)")
            }
            guard volume.affine.isFinite, let orientation = try? AffineGeometry.ioOrientation(volume.affine) else {
                throw .unsupportedVolume(path: label, reason: "the affine is not finite or cannot be decomposed")
            }
            var voxelAxis = [Int](repeating: -1, count: 3), reversed = [false, false, false]
            for (axis, mapped) in orientation.enumerated() {
                guard let (world, sign) = mapped else {
                    throw .unsupportedVolume(path: label, reason: "voxel axis \(axis) maps to no world direction (\(volume.affine.axisCodes))")
                }
                (voxelAxis[world], reversed[world]) = (axis, sign < 0)
            }
            // ioOrientation never gives two voxel axes one world axis, so all three are set.
            (shape, voxelSizes, self.voxelAxis, self.reversed) = (volume.shape, volume.voxelSizes, voxelAxis, reversed)
        }

        /// Voxels along world axis `w`.
        func extent(_ w: Int) -> Int { shape[voxelAxis[w]] }
        /// Voxel size (mm) along world axis `w`.
        func spacing(_ w: Int) -> Double { voxelSizes[voxelAxis[w]] }

        /// The canonical voxel nearest world point `centre` (halves rounded towards R, A, S),
        /// or the grid's middle voxel `n / 2` along each axis when `centre` is nil.
        func canonicalVoxel(_ centre: [Double]?, affine: Affine, label: String) throws(PreprocessingError) -> [Int] {
            guard let centre else { return (0..<3).map { extent($0) / 2 } }
            guard centre.count == 3, centre.allSatisfy(\.isFinite) else {
                throw .invalidOption(name: "centre", value: "\(centre)", reason: "must be three finite world coordinates (mm)")
            }
            let toVoxel: Affine
            do { toVoxel = try affine.inverse() } catch {
                throw .unsupportedVolume(path: label, reason: "the affine is singular")
            }
            let voxel = toVoxel.apply(centre)
            return try (0..<3).map { w throws(PreprocessingError) -> Int in
                let n = Double(extent(w)), stored = voxel[voxelAxis[w]]
                let canonical = reversed[w] ? n - 1 - stored : stored
                guard canonical >= -0.5, canonical < n - 0.5 else {
                    throw .invalidOption(name: "centre", value: "\(centre)", reason: "outside the grid of \(label)")
                }
                // The epsilon keeps a point midway between voxels on the same voxel whichever
                // way the grid is stored.
                return min(Int((canonical + 0.5 + 1e-6).rounded(.down)), extent(w) - 1)
            }
        }

        /// The voxels of `panel`'s plane through canonical voxel `through`, in display order.
        func slice(_ panel: Panel, through: [Int]) -> Slice {
            let strides = [shape[1] * shape[2], shape[2], 1]
            // Canonical coordinate c along world axis w is stored index c or n − 1 − c.
            func offset(_ w: Int, _ c: Int) -> Int { (reversed[w] ? extent(w) - 1 - c : c) * strides[voxelAxis[w]] }
            let (row, column) = (panel.row, panel.column)
            let rows = extent(row.axis), columns = extent(column.axis)
            let base = offset(panel.fixed, through[panel.fixed])
            var indices = [Int]()
            indices.reserveCapacity(rows * columns)
            for r in 0..<rows {
                let rowOffset = offset(row.axis, row.reversed ? rows - 1 - r : r)
                for c in 0..<columns {
                    indices.append(base + rowOffset + offset(column.axis, column.reversed ? columns - 1 - c : c))
                }
            }
            return Slice(rows: rows, columns: columns, rowSpacing: spacing(row.axis), columnSpacing: spacing(column.axis), indices: indices)
        }
    }

    /// One panel's voxels: `rows × columns` flat indices into a volume's data, row-major,
    /// row 0 at the top of the panel; spacings in mm.
    struct Slice {
        var rows: Int
        var columns: Int
        var rowSpacing: Double
        var columnSpacing: Double
        var indices: [Int]

        /// The slice's values in `volume` (on the grid the slice was cut from).
        func values(_ volume: Volume) -> [Float] {
            let data = volume.data.scalars
            return indices.map { data[$0] }
        }
    }

    // MARK: Grey levels and overlays

    /// The 1st and 99th percentiles of the finite nonzero `values`, nil when there are none.
    static func greyWindow(_ values: [Float]) -> (low: Float, high: Float)? {
        let sorted = values.filter { $0 != 0 && $0.isFinite }.sorted()
        guard !sorted.isEmpty else { return nil }
        return (percentile(sorted, 1), percentile(sorted, 99))
    }

    /// Linear interpolation between the closest ranks (numpy's default) of ascending `sorted`,
    /// which is not empty; `q` in 0…100.
    static func percentile(_ sorted: [Float], _ q: Double) -> Float {
        let position = q / 100 * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down)), upper = min(lower + 1, sorted.count - 1)
        let fraction = Float(position - Double(lower))
        return sorted[lower] + fraction * (sorted[upper] - sorted[lower])
    }

    /// `window.low` → 0, `window.high` → 255, clamped; without spread, values at or above it
    /// are white; non-finite values and a nil window give black.
    static func grey(_ value: Float, window: (low: Float, high: Float)?) -> UInt8 {
        guard let window, value.isFinite else { return 0 }
        guard window.high > window.low else { return value >= window.high ? 255 : 0 }
        let level = (Double(value - window.low) / Double(window.high - window.low) * 255).rounded()
        return UInt8(min(max(level, 0), 255))
    }

    /// `overlay` over `base` at `overlayOpacity`.
    static func blend(_ base: Colour, _ overlay: Colour) -> Colour {
        func mix(_ a: UInt8, _ b: UInt8) -> UInt8 { UInt8(((1 - overlayOpacity) * Double(a) + overlayOpacity * Double(b)).rounded()) }
        return Colour(red: mix(base.red, overlay.red), green: mix(base.green, overlay.green), blue: mix(base.blue, overlay.blue))
    }

    /// Thin edges of the template slices: per voxel of each slice, whether it is an edge (see
    /// `triplet`). The percentile threshold is shared by the slices, so an edge is an edge in
    /// all three panels alike; a template without gradient has no edges.
    static func templateEdges(_ slices: [(values: [Float], slice: Slice)]) -> [[Bool]] {
        let maxima = slices.map { suppressedGradient($0.values.map { $0.isFinite ? $0 : 0 }, slice: $0.slice) }
        let positive = maxima.joined().filter { $0 > 0 }.sorted()
        guard !positive.isEmpty else { return maxima.map { [Bool](repeating: false, count: $0.count) } }
        let threshold = percentile(positive, edgePercentile)
        return maxima.map { slice in slice.map { $0 > 0 && $0 >= threshold } }
    }

    /// In-plane gradient magnitude (per mm; central differences, one-sided at the slice's
    /// border) where it is a maximum along the gradient direction (quantised to 0°, 45°, 90°,
    /// 135°; ties kept), else 0.
    static func suppressedGradient(_ values: [Float], slice: Slice) -> [Float] {
        let (rows, columns) = (slice.rows, slice.columns)
        func derivative(_ lower: Int, _ upper: Int, _ step: Int, _ spacing: Double, at base: Int) -> Float {
            upper > lower ? Float(Double(values[base + upper * step] - values[base + lower * step]) / (Double(upper - lower) * spacing)) : 0
        }
        var gx = [Float](repeating: 0, count: values.count), gy = gx, magnitude = gx
        for r in 0..<rows {
            for c in 0..<columns {
                let index = r * columns + c
                gx[index] = derivative(max(c - 1, 0), min(c + 1, columns - 1), 1, slice.columnSpacing, at: r * columns)
                gy[index] = derivative(max(r - 1, 0), min(r + 1, rows - 1), columns, slice.rowSpacing, at: c)
                magnitude[index] = (gx[index] * gx[index] + gy[index] * gy[index]).squareRoot()
            }
        }
        func at(_ r: Int, _ c: Int) -> Float {
            r >= 0 && r < rows && c >= 0 && c < columns ? magnitude[r * columns + c] : 0
        }
        let tan22 = Float(0.41421356)  // tan 22.5°
        var suppressed = [Float](repeating: 0, count: values.count)
        for r in 0..<rows {
            for c in 0..<columns {
                let index = r * columns + c
                let (x, y, m) = (gx[index], gy[index], magnitude[index])
                guard m > 0 else { continue }
                let (dr, dc): (Int, Int)
                if abs(y) <= tan22 * abs(x) { (dr, dc) = (0, 1) }
                else if abs(x) <= tan22 * abs(y) { (dr, dc) = (1, 0) }
                else { (dr, dc) = (1, x * y > 0 ? 1 : -1) }
                if m >= at(r + dr, c + dc) && m >= at(r - dr, c - dc) { suppressed[index] = m }
            }
        }
        return suppressed
    }

    /// Voxels of the slice inside the mask (> 0) with a 4-neighbour outside it or off the slice.
    static func maskBoundary(_ values: [Float], slice: Slice) -> [Bool] {
        let (rows, columns) = (slice.rows, slice.columns)
        func inside(_ r: Int, _ c: Int) -> Bool {
            r >= 0 && r < rows && c >= 0 && c < columns && values[r * columns + c] > 0
        }
        return (0..<(rows * columns)).map { index in
            let (r, c) = (index / columns, index % columns)
            return inside(r, c) && !(inside(r - 1, c) && inside(r + 1, c) && inside(r, c - 1) && inside(r, c + 1))
        }
    }

    // MARK: Letters

    /// 3 × 5 bitmaps of the direction letters, one 3-bit row each, top row first, high bit left.
    static let glyphs: [Character: [UInt8]] = [
        "A": [0b010, 0b101, 0b111, 0b101, 0b101],
        "P": [0b110, 0b101, 0b110, 0b100, 0b100],
        "S": [0b011, 0b100, 0b010, 0b001, 0b110],
        "I": [0b111, 0b010, 0b010, 0b010, 0b111],
        "L": [0b100, 0b100, 0b100, 0b100, 0b111],
        "R": [0b110, 0b101, 0b110, 0b101, 0b101],
    ]
}

extension QCFigure.Canvas {
    mutating func set(x: Int, y: Int, _ colour: QCFigure.Colour) {
        let start = (y * width + x) * 3
        (pixels[start], pixels[start + 1], pixels[start + 2]) = (colour.red, colour.green, colour.blue)
    }

    /// Draws the four letters at the middle of `frame`'s edges, `scale × scale` pixels per
    /// glyph pixel, `scale` pixels in from the edge.
    mutating func letter(_ letters: (top: Character, bottom: Character, left: Character, right: Character),
                         in frame: (x: Int, y: Int, width: Int, height: Int), scale: Int) {
        let (glyphWidth, glyphHeight) = (3 * scale, 5 * scale)
        let middleX = frame.x + (frame.width - glyphWidth) / 2, middleY = frame.y + (frame.height - glyphHeight) / 2
        let placements = [(letters.top, middleX, frame.y + scale), (letters.bottom, middleX, frame.y + frame.height - glyphHeight - scale),
                          (letters.left, frame.x + scale, middleY), (letters.right, frame.x + frame.width - glyphWidth - scale, middleY)]
        for (character, left, top) in placements {
            guard let rows = QCFigure.glyphs[character] else { continue }
            for (row, bits) in rows.enumerated() {
                for column in 0..<3 where bits & (0b100 >> column) != 0 {
                    for dy in 0..<scale {
                        for dx in 0..<scale { set(x: left + column * scale + dx, y: top + row * scale + dy, QCFigure.letterColour) }
                    }
                }
            }
        }
    }
}
