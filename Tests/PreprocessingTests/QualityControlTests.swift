import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import Preprocessing
import Reports
import TensorCore
import Testing
import TestSupport
import VolumeIO

/// Small synthetic volumes, built from a function of canonical (RAS) voxel coordinates and
/// stored in any orientation, for the QC figure and page.
enum QCFixtures {
    /// A volume whose canonical voxel (x, y, z) — counted from the L, P and I ends, `extents`
    /// voxels of `spacing` mm along the world x, y, z axes — holds `value(x, y, z)`, stored
    /// with voxel axes in the order and directions of `orientation` (e.g. "RAS", "LPS", "LIA").
    static func volume(_ orientation: String = "RAS", extents: [Int], spacing: [Double] = [1, 1, 1], origin: [Double] = [-4, -5, -3],
                       value: (Int, Int, Int) -> Float) throws -> Volume {
        let codes: [Character: (world: Int, sign: Int)] = ["R": (0, 1), "L": (0, -1), "A": (1, 1), "P": (1, -1), "S": (2, 1), "I": (2, -1)]
        let axes = try orientation.map { try #require(codes[$0]) }
        let shape = axes.map { extents[$0.world] }
        var rows = (0..<3).map { w in [0, 0, 0, origin[w]] }
        for (axis, (world, sign)) in axes.enumerated() {
            rows[world][axis] = Double(sign) * spacing[world]
            if sign < 0 { rows[world][3] += spacing[world] * Double(extents[world] - 1) }
        }
        var scalars = [Float](repeating: 0, count: shape.reduce(1, *))
        for i in 0..<shape[0] {
            for j in 0..<shape[1] {
                for k in 0..<shape[2] {
                    var canonical = [0, 0, 0]
                    for (axis, index) in [i, j, k].enumerated() {
                        let (world, sign) = axes[axis]
                        canonical[world] = sign > 0 ? index : extents[world] - 1 - index
                    }
                    scalars[(i * shape[1] + j) * shape[2] + k] = value(canonical[0], canonical[1], canonical[2])
                }
            }
        }
        return try Volume(data: Tensor(shape: shape, scalars: scalars), affine: Affine(rows: rows[0], rows[1], rows[2]))
    }

    /// The RGB triple at pixel (x, y).
    static func pixel(_ canvas: QCFigure.Canvas, _ x: Int, _ y: Int) -> [UInt8] {
        let start = (y * canvas.width + x) * 3
        return Array(canvas.pixels[start..<(start + 3)])
    }

    /// Pixels of `frame` (panel-relative coordinates) where `test` holds.
    static func pixels(_ canvas: QCFigure.Canvas, panel: Int, where test: ([UInt8]) -> Bool) -> [(x: Int, y: Int)] {
        let frame = canvas.frames[panel]
        var found: [(x: Int, y: Int)] = []
        for y in 0..<frame.height {
            for x in 0..<frame.width where test(pixel(canvas, frame.x + x, frame.y + y)) { found.append((x, y)) }
        }
        return found
    }

    static func isGrey(_ rgb: [UInt8]) -> Bool { rgb[0] == rgb[1] && rgb[1] == rgb[2] }

    /// Width and height from a PNG's signature and `IHDR` chunk, nil if they are not there.
    static func pngSize(_ data: Data) -> (width: Int, height: Int, colourType: UInt8)? {
        let bytes = [UInt8](data)
        guard bytes.count >= 33, bytes.starts(with: [137, 80, 78, 71, 13, 10, 26, 10]), bytes[12..<16].elementsEqual("IHDR".utf8) else { return nil }
        func bigEndian(_ offset: Int) -> Int { bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | Int($1) } }
        return (bigEndian(16), bigEndian(20), bytes[25])
    }
}

private typealias F = QCFixtures

@Suite struct QCFigureTests {
    /// Panel sizes in pixels: extent × voxel size × k / smallest voxel size, k = ⌈ppmm · smallest voxel⌉.
    @Test(arguments: [
        // spacing, pixels per mm, (sagittal w×h, coronal w×h, axial w×h) for extents 6 × 8 × 5
        ([1.0, 1.5, 3.0], 2.0, [24, 30, 12, 30, 12, 24]),
        ([1.0, 1.5, 3.0], 1.0, [12, 15, 6, 15, 6, 12]),
        ([2.0, 2.0, 2.0], 2.0, [32, 20, 24, 20, 24, 32]),
        ([0.8, 0.8, 1.6], 3.0, [24, 30, 18, 30, 18, 24]),
        ([1.0, 1.7, 1.0], 1.0, [14, 5, 6, 5, 6, 14]),  // 8 × 1.7 mm = 13.6 px, rounded
    ])
    func sizeFollowsGridAndVoxelSizes(spacing: [Double], pixelsPerMillimetre: Double, expected: [Int]) throws {
        let volume = try F.volume(extents: [6, 8, 5], spacing: spacing) { x, y, z in Float(x + y + z + 1) }
        let figure = try QCFigure.triplet(image: volume, template: volume, pixelsPerMillimetre: pixelsPerMillimetre)
        let width = expected[0] + expected[2] + expected[4] + 2 * QCFigure.gap
        let height = max(expected[1], expected[3], expected[5])
        #expect(figure.width == width && figure.height == height)
        let header = try #require(F.pngSize(figure.png), "not a PNG")
        #expect(header.width == width && header.height == height && header.colourType == 2)

        let canvas = try QCFigure.render(image: volume, template: volume, mask: nil, centre: nil, pixelsPerMillimetre: pixelsPerMillimetre,
                                         edgeColour: .orange, maskColour: .cyan, label: "image")
        #expect(canvas.frames.map { [$0.width, $0.height] }.joined().elementsEqual(expected))
        #expect(canvas.frames.map(\.y) == expected.enumerated().filter { $0.offset % 2 == 1 }.map { (height - $0.element) / 2 })
        #expect(figure.png == PNGImage.rgb(width: canvas.width, height: canvas.height, pixels: canvas.pixels))
    }

    /// Rods parallel to x, y and z meet each mid-slice in one bright voxel right (+2),
    /// anterior (+3) and superior (+1) of the centre: the sagittal panel shows it top left
    /// (anterior left), the coronal top right, the axial top right (anterior up, neurological).
    @Test func markerLandsInTheExpectedQuadrantOfEachPanel() throws {
        let extents = [9, 11, 10], centre = [4, 5, 5], target = [6, 8, 6]
        let volume = try F.volume(extents: extents) { x, y, z in
            let rods = (y == target[1] && z == target[2]) || (x == target[0] && z == target[2]) || (x == target[0] && y == target[1])
            return rods ? 100 : 10
        }
        let canvas = try QCFigure.render(image: volume, template: nil, mask: nil, centre: nil, pixelsPerMillimetre: 2,
                                         edgeColour: .orange, maskColour: .cyan, label: "image")
        // Voxel (column, row) of the marker in each panel, 2 pixels per voxel.
        let expected = [(extents[1] - 1 - target[1], extents[2] - 1 - target[2]),  // sagittal: y reversed, z reversed
                        (target[0], extents[2] - 1 - target[2]),  // coronal: x, z reversed
                        (target[0], extents[1] - 1 - target[1])]  // axial: x, y reversed
        #expect(centre == (0..<3).map { extents[$0] / 2 })
        for panel in 0..<3 {
            let frame = canvas.frames[panel]
            let white = F.pixels(canvas, panel: panel) { $0 == [255, 255, 255] }
            let (column, row) = expected[panel]
            #expect(white.map { [$0.x, $0.y] } == [[2 * column, 2 * row], [2 * column + 1, 2 * row], [2 * column, 2 * row + 1], [2 * column + 1, 2 * row + 1]],
                    "panel \(panel)")
            #expect(F.pixels(canvas, panel: panel) { $0 != [0, 0, 0] && $0 != [255, 255, 255] }.isEmpty, "panel \(panel) has other grey levels")
            let top = white.allSatisfy { $0.y < frame.height / 2 }
            let left = white.allSatisfy { $0.x < frame.width / 2 }
            #expect(top, "panel \(panel): the marker is superior (sagittal, coronal) or anterior (axial)")
            #expect(left == (panel == 0), "panel \(panel): anterior is on the left of the sagittal slice, the subject's right on the right of the others")
        }
    }

    /// The same anatomy stored RAS, LPS, LIA or ASR gives the same PNG bytes, with an anisotropic
    /// grid, a template and a mask.
    @Test(arguments: ["LPS", "LIA", "ASR", "PIL"])
    func storageOrderDoesNotChangeTheFigure(_ orientation: String) throws {
        let extents = [10, 12, 9], spacing = [1.0, 1.25, 2.0]
        func anatomy(_ x: Int, _ y: Int, _ z: Int) -> Float { Float(x * 3 + y * y + 5 * z + (x == 7 && y == 9 ? 40 : 0)) }
        func brain(_ x: Int, _ y: Int, _ z: Int) -> Float { (2...7).contains(x) && (3...9).contains(y) && (2...6).contains(z) ? 1 : 0 }
        func render(_ orientation: String) throws -> Data {
            let image = try F.volume(orientation, extents: extents, spacing: spacing, value: anatomy)
            let template = try F.volume(orientation, extents: extents, spacing: spacing) { x, y, z in x > 5 ? 80 : y < 4 ? 20 : 0 }
            let mask = try F.volume(orientation, extents: extents, spacing: spacing, value: brain)
            return try QCFigure.triplet(image: image, template: template, mask: mask).png
        }
        let reference = try render("RAS")
        #expect(try render(orientation) == reference)
        // A world centre picks the same slices too.
        let ras = try F.volume("RAS", extents: extents, spacing: spacing, value: anatomy)
        let other = try F.volume(orientation, extents: extents, spacing: spacing, value: anatomy)
        let point = ras.affine.apply([3, 7, 2])
        #expect(try QCFigure.triplet(image: other, template: nil, centre: point).png == QCFigure.triplet(image: ras, template: nil, centre: point).png)
    }

    /// A template step at x = 5.5 gives edges in voxel columns x = 5 and 6 of the coronal and
    /// axial panels, on every row, and none elsewhere: not in the flat regions either side,
    /// and not in the sagittal panel, which cuts x = 4 where the template is flat.
    @Test func edgesMarkTheTemplateStepOnly() throws {
        let image = try F.volume(extents: [9, 9, 9]) { _, _, _ in 50 }
        let template = try F.volume(extents: [9, 9, 9]) { x, _, _ in x >= 6 ? 100 : 0 }
        let canvas = try QCFigure.render(image: image, template: template, mask: nil, centre: nil, pixelsPerMillimetre: 2,
                                         edgeColour: .orange, maskColour: .cyan, label: "image")
        #expect(F.pixels(canvas, panel: 0) { !F.isGrey($0) }.isEmpty)
        for panel in 1...2 {
            let coloured = F.pixels(canvas, panel: panel) { !F.isGrey($0) }
            let expected = (0..<18).flatMap { y in (10..<14).map { x in (x: x, y: y) } }
            #expect(coloured.map { [$0.x, $0.y] }.sorted { ($0[1], $0[0]) < ($1[1], $1[0]) } == expected.map { [$0.x, $0.y] }, "panel \(panel)")
            let blended = QCFigure.blend(QCFigure.Colour(red: 255, green: 255, blue: 255), .orange)
            #expect(coloured.allSatisfy { F.pixel(canvas, canvas.frames[panel].x + $0.x, canvas.frames[panel].y + $0.y) == [blended.red, blended.green, blended.blue] })
        }
        // A flat template has no edges at all.
        let flat = try F.volume(extents: [9, 9, 9]) { _, _, _ in 7 }
        let plain = try QCFigure.render(image: image, template: flat, mask: nil, centre: nil, pixelsPerMillimetre: 2,
                                        edgeColour: .orange, maskColour: .cyan, label: "image")
        #expect((0..<3).allSatisfy { F.pixels(plain, panel: $0) { !F.isGrey($0) }.isEmpty })
    }

    /// The mask's boundary is drawn on its outermost voxels, not inside or outside it.
    @Test func maskBoundaryOutlinesTheMask() throws {
        let image = try F.volume(extents: [9, 9, 9]) { _, _, _ in 50 }
        let mask = try F.volume(extents: [9, 9, 9]) { x, y, z in [x, y, z].allSatisfy { (2...6).contains($0) } ? 1 : 0 }
        let canvas = try QCFigure.render(image: image, template: nil, mask: mask, centre: nil, pixelsPerMillimetre: 1,
                                         edgeColour: .orange, maskColour: .cyan, label: "image")
        for panel in 0..<3 {
            let coloured = Set(F.pixels(canvas, panel: panel) { !F.isGrey($0) }.map { [$0.x, $0.y] })
            // Voxels 2…6 along both panel axes (reversed axes of 9 voxels map 2…6 onto 2…6).
            let ring = Set((2...6).flatMap { a in (2...6).map { b in [a, b] } }.filter { $0.contains(2) || $0.contains(6) })
            #expect(coloured == ring, "panel \(panel)")
        }
    }

    /// Panels of at least 48 pixels carry the direction letters at the middle of their left
    /// and top edges: A and S (sagittal), L and S (coronal), L and A (axial).
    @Test func lettersMarkTheDirections() throws {
        let volume = try F.volume(extents: [30, 34, 26]) { x, y, z in Float(x + y + z) }
        let canvas = try QCFigure.render(image: volume, template: nil, mask: nil, centre: nil, pixelsPerMillimetre: 2,
                                         edgeColour: .orange, maskColour: .cyan, label: "image")
        let yellow = QCFigure.letterColour
        func glyph(panel: Int, left: Int, top: Int) -> [UInt8] {
            let frame = canvas.frames[panel]
            return (0..<5).map { row in
                (0..<3).reduce(UInt8(0)) { bits, column in
                    let rgb = F.pixel(canvas, frame.x + left + column, frame.y + top + row)
                    return bits << 1 | (rgb == [yellow.red, yellow.green, yellow.blue] ? 1 : 0)
                }
            }
        }
        for (panel, (leftLetter, topLetter)) in [("A", "S"), ("L", "S"), ("L", "A")].enumerated() {
            let frame = canvas.frames[panel]
            #expect(glyph(panel: panel, left: 1, top: (frame.height - 5) / 2) == QCFigure.glyphs[Character(leftLetter)], "panel \(panel)")
            #expect(glyph(panel: panel, left: (frame.width - 3) / 2, top: 1) == QCFigure.glyphs[Character(topLetter)], "panel \(panel)")
        }
        // Below 48 pixels a side, no letters.
        let small = try QCFigure.render(image: try F.volume(extents: [20, 30, 30]) { x, _, _ in Float(x) }, template: nil, mask: nil,
                                        centre: nil, pixelsPerMillimetre: 1, edgeColour: .orange, maskColour: .cyan, label: "image")
        #expect((0..<3).allSatisfy { F.pixels(small, panel: $0) { !F.isGrey($0) }.isEmpty })
    }

    @Test func badInputsThrowTypedErrors() throws {
        let image = try F.volume(extents: [6, 6, 6]) { x, _, _ in Float(x) }
        let smaller = try F.volume(extents: [6, 6, 5]) { x, _, _ in Float(x) }
        let shifted = try F.volume(extents: [6, 6, 6], origin: [0, 0, 1]) { x, _, _ in Float(x) }
        #expect {
            try QCFigure.triplet(image: image, template: smaller)
        } throws: { error in
            guard case let .gridMismatch(path, _, _) = error as? PreprocessingError else { return false }
            return path == "template"
        }
        #expect {
            try QCFigure.triplet(image: image, template: nil, mask: shifted)
        } throws: { error in
            guard case let .gridMismatch(path, _, _) = error as? PreprocessingError else { return false }
            return path == "mask"
        }
        #expect {
            try QCFigure.triplet(image: image, template: nil, centre: [100, 0, 0])
        } throws: { error in
            guard case let .invalidOption(name, _, _) = error as? PreprocessingError else { return false }
            return name == "centre"
        }
        #expect {
            try QCFigure.triplet(image: image, template: nil, pixelsPerMillimetre: 0)
        } throws: { error in
            guard case let .invalidOption(name, _, _) = error as? PreprocessingError else { return false }
            return name == "pixelsPerMillimetre"
        }
        let flattened = try Volume(data: image.data, affine: Affine(rows: [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]))
        #expect {
            try QCFigure.triplet(image: flattened, template: nil)
        } throws: { error in
            guard case .unsupportedVolume = error as? PreprocessingError else { return false }
            return true
        }
    }

    /// Grey levels: the 1st percentile of the nonzero voxels is black and the 99th white.
    @Test func greyWindowUsesNonzeroPercentiles() {
        let values: [Float] = [0, 0, 0] + (1...101).map(Float.init) + [.nan]
        let window = QCFigure.greyWindow(values)
        #expect(window?.low == 2 && window?.high == 100)
        #expect(QCFigure.grey(1, window: window) == 0 && QCFigure.grey(100, window: window) == 255 && QCFigure.grey(51, window: window) == 128)
        #expect(QCFigure.greyWindow([0, 0, .infinity]) == nil)
    }
}

// MARK: - Page

extension XMLTree {
    /// The `tr` elements inside `tbody`, each with its cells' texts.
    func bodyRows() -> [(row: Element, cells: [String])] {
        elements.indices.filter { elements[$0].name == "tr" && elements[$0].parent.map { elements[$0].name } == "tbody" }.map { row in
            (elements[row], elements.filter { $0.parent == row && $0.name == "td" }.map(\.text))
        }
    }
}

@Suite struct QCPageTests {
    static let hostile = "<script>alert('x')</script>&"

    static func entries() -> [QCEntry] {
        func figure(_ participant: String) -> QCEntry.Figure {
            QCEntry.Figure(file: QCPage.figureFileName(participantID: participant, sessionID: "ses-01"), width: 120, height: 40)
        }
        return [
            QCEntry(participantID: "sub-01", sessionID: "ses-01", figure: figure("sub-01"), ncc: 0.95, cost: -0.95, dice: 0.97),
            QCEntry(participantID: "sub-02", sessionID: "ses-01", figure: figure("sub-02"), ncc: 0.60, cost: -0.60),
            QCEntry(participantID: hostile, sessionID: "ses-01", figure: figure(hostile), ncc: 0.93, cost: -0.93),
            QCEntry(participantID: "sub-04", sessionID: "ses-01", status: .failed(reason: "registration diverged & left the <field of view>")),
            QCEntry(participantID: "sub-05", sessionID: "ses-01", figure: figure("sub-05"), ncc: 0.96, cost: -0.96,
                    warnings: ["mask touches the field of view"], status: .warning),
            QCEntry(participantID: "sub-06", sessionID: "ses-01", figure: figure("sub-06"), ncc: 0.94, cost: -0.94),
        ]
    }

    @Test func pageParsesAsXMLWithOneSortedRowAndFigurePerScan() throws {
        let entries = Self.entries()
        let html = QCPage.render(entries: entries, title: "QC <run>", settings: [("template", "MNI152 2009a & 2 mm"), ("registration", "affine")])
        let page = try XMLTree(html)
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(!html.lowercased().contains("<script"))
        #expect(page.all("script").isEmpty)
        #expect(page.all("section").map { $0.attributes["id"] ?? "" } == ["summary", "settings", "figures"])

        let rows = page.bodyRows().filter { $0.cells.count == QCPage.tableHeader.count }
        // Failed first, then increasing NCC.
        #expect(rows.map { $0.cells[1] } == ["sub-04", "sub-02", Self.hostile, "sub-06", "sub-01", "sub-05"])
        #expect(rows.map { $0.cells[0] } == (1...6).map(String.init))
        #expect(rows[0].cells[3] == "failed: registration diverged & left the <field of view>")
        #expect(rows[0].cells[4] == "failed" && rows[1].cells[4] == "low NCC" && rows[5].cells[4] == "warnings")
        #expect(rows[0].row.attributes["style"] != nil && rows[1].row.attributes["style"] != nil && rows[2].row.attributes["style"] == nil)
        #expect(rows[1].cells[5] == "0.6000" && rows[4].cells[7] == "0.970" && rows[1].cells[7] == "—")

        // One img per scan with a figure, in the table's order; every row links to its figure.
        let images = page.all("img")
        let withFigures = QCPage.worstFirst(entries).compactMap(\.figure)
        #expect(images.map { $0.attributes["src"] ?? "" } == withFigures.map(\.file))
        #expect(images.allSatisfy { !($0.attributes["src"] ?? "/").contains("/") && $0.attributes["width"] == "120" })
        let figureIDs = page.all("figure").map { $0.attributes["id"] ?? "" }
        #expect(figureIDs == (1...6).map { "scan-\($0)" })
        #expect(page.all("a").compactMap { $0.attributes["href"] }.filter { $0.hasPrefix("#scan-") } == figureIDs.map { "#\($0)" })
        let failedFigure = try #require(page.all("figure").first)
        #expect(failedFigure.text.contains("No figure") && failedFigure.text.contains("registration diverged & left the <field of view>"))
        #expect(page.all("td").contains { $0.text == "MNI152 2009a & 2 mm" })
        #expect(page.all("title").first?.text == "QC <run>")
    }

    @Test func thresholdIsMedianMinusThreeScaledMADOfScansThatDidNotFail() throws {
        let nccs = [0.9, 0.92, 0.94, 0.96, 0.5]
        var entries = nccs.enumerated().map { QCEntry(participantID: "sub-\($0.offset)", sessionID: "s", ncc: $0.element) }
        entries.append(QCEntry(participantID: "bad", sessionID: "s", ncc: -1, status: .failed(reason: "diverged")))
        entries.append(QCEntry(participantID: "none", sessionID: "s", ncc: .nan))
        // median 0.92, absolute deviations 0.02, 0, 0.02, 0.04, 0.42 → MAD 0.02.
        let threshold = try #require(QCPage.nccThreshold(entries))
        #expect(abs(threshold - (0.92 - 3 * 1.4826 * 0.02)) < 1e-12)
        #expect(entries.map { QCPage.flag($0, threshold: threshold) } == [nil, nil, nil, nil, .lowNCC, .failed, nil])
        #expect(QCPage.nccThreshold([QCEntry(participantID: "a", sessionID: "b")]) == nil)
    }

    @Test func figureNamesAreDistinctAndSafe() {
        let ids = ["sub-01", "sub_01", "sub.01", "../../etc/passwd", Self.hostile, "café", "sub~2D01", ""]
        let names = ids.map { QCPage.figureFileName(participantID: $0, sessionID: "ses-1") }
        #expect(Set(names).count == ids.count)
        #expect(names[0] == "sub-01_ses-1.png")
        #expect(names.allSatisfy { name in name.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || "0123456789-_~.".unicodeScalars.contains($0)) } })
        #expect(names.allSatisfy { !$0.contains("/") && !$0.hasPrefix(".") })
        #expect(QCPage.figureFileName(participantID: "a_b", sessionID: "c") != QCPage.figureFileName(participantID: "a", sessionID: "b_c"))
    }

    @Test func writeStoresFiguresAndTheIndexInsideQC() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("qc-page-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let volume = try QCFixtures.volume(extents: [6, 7, 5]) { x, y, z in Float(1 + x * y + z) }
        let triplet = try QCFigure.triplet(image: volume, template: volume)
        let hostile = "../../\(Self.hostile)"
        let figure = try QCPage.writeFigure(triplet, participantID: hostile, sessionID: "ses-01", to: root)
        let folder = root.appendingPathComponent(QCPage.folder)
        #expect(try Data(contentsOf: folder.appendingPathComponent(figure.file)) == triplet.png)
        #expect(figure.width == triplet.width && figure.height == triplet.height)

        let entries = [QCEntry(participantID: hostile, sessionID: "ses-01", figure: figure, ncc: 0.9)]
        let url = try QCPage.write(entries: entries, title: "QC", settings: [], to: root)
        #expect(url == folder.appendingPathComponent(QCPage.indexFile))
        #expect(try String(contentsOf: url, encoding: .utf8) == QCPage.render(entries: entries, title: "QC", settings: []))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == [figure.file, QCPage.indexFile].sorted())
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.path) == [QCPage.folder])

        let blocker = root.appendingPathComponent("file")
        try Data().write(to: blocker)
        #expect {
            try QCPage.write(entries: entries, title: "QC", settings: [], to: blocker)
        } throws: { error in
            guard case .cannotWrite = error as? PreprocessingError else { return false }
            return true
        }
    }

    @Test func entryRoundTripsThroughJSON() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        for entry in Self.entries() {
            let data = try encoder.encode(entry)
            #expect(try JSONDecoder().decode(QCEntry.self, from: data) == entry)
        }
        let failed = String(decoding: try encoder.encode(Self.entries()[3]), as: UTF8.self)
        #expect(failed.contains("\"participant_id\":\"sub-04\""))
        #expect(failed.contains("\"status\":{\"reason\":\"registration diverged & left the <field of view>\",\"state\":\"failed\"}"))
    }
}
