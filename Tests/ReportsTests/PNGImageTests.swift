import Foundation
import Reports
import Testing

/// PNG files decoded back by the tests' own reader (zlib only, no image tools).
@Suite struct PNGImageTests {
    /// Deterministic pseudo-random bytes (a 64-bit LCG's high byte).
    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
    }

    @Test(arguments: [(1, 1), (3, 2), (1, 7), (97, 61)])
    func grayscaleRoundTrips(width: Int, height: Int) throws {
        let pixels = Self.bytes(width * height, seed: UInt64(width * 1000 + height))
        let png = try DecodedPNG(PNGImage.grayscale(width: width, height: height, pixels: pixels))
        #expect(png.chunkTypes == ["IHDR", "IDAT", "IEND"])
        #expect(png.width == width && png.height == height)
        #expect(png.bitDepth == 8 && png.colorType == 0 && png.interlace == 0)
        #expect(png.pixels == pixels)
    }

    @Test(arguments: [(1, 1), (5, 3), (64, 33)])
    func rgbRoundTrips(width: Int, height: Int) throws {
        let pixels = Self.bytes(width * height * 3, seed: UInt64(width + height))
        let png = try DecodedPNG(PNGImage.rgb(width: width, height: height, pixels: pixels))
        #expect(png.chunkTypes == ["IHDR", "IDAT", "IEND"])
        #expect(png.width == width && png.height == height)
        #expect(png.bitDepth == 8 && png.colorType == 2 && png.interlace == 0)
        #expect(png.pixels == pixels)
    }

    @Test func smoothImagesCompressAndBytesAreDeterministic() throws {
        let width = 256, height = 128
        let pixels = (0..<(width * height)).map { UInt8(($0 % width + $0 / width) % 256) }
        let first = PNGImage.grayscale(width: width, height: height, pixels: pixels)
        #expect(first == PNGImage.grayscale(width: width, height: height, pixels: pixels))
        #expect(first.count < pixels.count / 4)
        #expect(try DecodedPNG(first).pixels == pixels)
    }
}
