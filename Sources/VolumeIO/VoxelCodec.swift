import TensorCore

/// A stored voxel type: loads from and stores to raw (possibly unaligned, possibly
/// byte-swapped) file bytes.
protocol StoredVoxel {
    /// The value at `pointer`, converted to Float32 with a single rounding.
    static func float(at pointer: UnsafeRawPointer, swapped: Bool) -> Float
    /// The value at `pointer`, exactly (up to Float64's 53 bits for 64-bit integers).
    static func double(at pointer: UnsafeRawPointer, swapped: Bool) -> Double
    /// Stores `value`, already rounded and inside the type's range, little-endian.
    static func store(_ value: Double, at pointer: UnsafeMutableRawPointer)
}

extension FixedWidthInteger {
    @inline(__always) static func loaded(at pointer: UnsafeRawPointer, swapped: Bool) -> Self {
        let raw = pointer.loadUnaligned(as: Self.self)
        return swapped ? raw.byteSwapped : raw
    }
}

extension UInt8: StoredVoxel {
    static func float(at p: UnsafeRawPointer, swapped: Bool) -> Float { Float(p.load(as: UInt8.self)) }
    static func double(at p: UnsafeRawPointer, swapped: Bool) -> Double { Double(p.load(as: UInt8.self)) }
    static func store(_ v: Double, at p: UnsafeMutableRawPointer) { p.storeBytes(of: UInt8(v), as: UInt8.self) }
}

extension Int8: StoredVoxel {
    static func float(at p: UnsafeRawPointer, swapped: Bool) -> Float { Float(p.load(as: Int8.self)) }
    static func double(at p: UnsafeRawPointer, swapped: Bool) -> Double { Double(p.load(as: Int8.self)) }
    static func store(_ v: Double, at p: UnsafeMutableRawPointer) { p.storeBytes(of: Int8(v), as: Int8.self) }
}

/// Multi-byte integers share one implementation.
protocol StoredInteger: StoredVoxel, FixedWidthInteger {}
extension StoredInteger {
    static func float(at p: UnsafeRawPointer, swapped: Bool) -> Float { Float(loaded(at: p, swapped: swapped)) }
    static func double(at p: UnsafeRawPointer, swapped: Bool) -> Double { Double(loaded(at: p, swapped: swapped)) }
    static func store(_ v: Double, at p: UnsafeMutableRawPointer) { p.storeBytes(of: Self(v).littleEndian, toByteOffset: 0, as: Self.self) }
}
extension Int16: StoredInteger {}
extension UInt16: StoredInteger {}
extension Int32: StoredInteger {}
extension UInt32: StoredInteger {}
extension Int64: StoredInteger {}
extension UInt64: StoredInteger {}

extension Float: StoredVoxel {
    static func float(at p: UnsafeRawPointer, swapped: Bool) -> Float { Float(bitPattern: UInt32.loaded(at: p, swapped: swapped)) }
    static func double(at p: UnsafeRawPointer, swapped: Bool) -> Double { Double(float(at: p, swapped: swapped)) }
    static func store(_ v: Double, at p: UnsafeMutableRawPointer) {
        p.storeBytes(of: Float(v).bitPattern.littleEndian, toByteOffset: 0, as: UInt32.self)
    }
}

extension Double: StoredVoxel {
    static func float(at p: UnsafeRawPointer, swapped: Bool) -> Float { Float(double(at: p, swapped: swapped)) }
    static func double(at p: UnsafeRawPointer, swapped: Bool) -> Double { Double(bitPattern: UInt64.loaded(at: p, swapped: swapped)) }
    static func store(_ v: Double, at p: UnsafeMutableRawPointer) {
        p.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 0, as: UInt64.self)
    }
}

/// Converts between a file's voxel order and the workbench's.
///
/// NIfTI and Analyze store a volume with i fastest (Fortran order over (i, j, k)); the
/// workbench holds it as a Tensor `[X, Y, Z]` with k fastest (C order), so that
/// `data[i, j, k]` is voxel (i, j, k) as in nibabel's arrays. Both directions transpose in
/// 16×16 tiles of (i, k) for each j, split over the engine's workers by j.
enum VoxelCodec {
    static let tile = 16
    /// Encoding's tile: 32 measured fastest for uint8 output (the writes are the strided side).
    static let encodeTile = 32

    /// Decodes one stored volume `raw` (`X·Y·Z` voxels of `type`) into `out` `[X, Y, Z]`,
    /// applying `scaling` in Float64 before the one rounding to Float32.
    static func decode(_ raw: UnsafeRawBufferPointer, type: VoxelType, swapped: Bool, scaling: LinearScaling?,
                       shape: [Int], into out: UnsafeMutableBufferPointer<Float>) {
        // An explicit switch (not an opened existential) so each type gets a specialised loop.
        switch type {
        case .uint8: decode(UInt8.self, raw, swapped: swapped, scaling: scaling, shape: shape, into: out)
        case .int8: decode(Int8.self, raw, swapped: swapped, scaling: scaling, shape: shape, into: out)
        case .int16: decode(Int16.self, raw, swapped: swapped, scaling: scaling, shape: shape, into: out)
        case .uint16: decode(UInt16.self, raw, swapped: swapped, scaling: scaling, shape: shape, into: out)
        case .int32: decode(Int32.self, raw, swapped: swapped, scaling: scaling, shape: shape, into: out)
        case .uint32: decode(UInt32.self, raw, swapped: swapped, scaling: scaling, shape: shape, into: out)
        case .int64: decode(Int64.self, raw, swapped: swapped, scaling: scaling, shape: shape, into: out)
        case .uint64: decode(UInt64.self, raw, swapped: swapped, scaling: scaling, shape: shape, into: out)
        case .float32: decode(Float.self, raw, swapped: swapped, scaling: scaling, shape: shape, into: out)
        case .float64: decode(Double.self, raw, swapped: swapped, scaling: scaling, shape: shape, into: out)
        }
    }

    private static func decode<T: StoredVoxel>(_: T.Type, _ raw: UnsafeRawBufferPointer, swapped: Bool,
                                               scaling: LinearScaling?, shape: [Int], into out: UnsafeMutableBufferPointer<Float>) {
        let (nx, ny, nz) = (shape[0], shape[1], shape[2])
        let size = MemoryLayout<T>.size
        precondition(raw.count >= nx * ny * nz * size && out.count == nx * ny * nz, "decode: buffer sizes disagree with \(shape)")
        let source = raw.baseAddress!
        let destination = out.baseAddress!
        let slope = scaling?.slope ?? 1, intercept = scaling?.intercept ?? 0
        // Slope 1 and intercept 0 (how most files say "unscaled") take the direct conversion.
        let scaled = slope != 1 || intercept != 0
        Engine.parallelRanges(ny, minimumPerWorker: max(1, 1 << 15 / max(1, nx * nz))) { rows in
            for j in rows {
                for k0 in stride(from: 0, to: nz, by: tile) {
                    let k1 = min(k0 + tile, nz)
                    for i0 in stride(from: 0, to: nx, by: tile) {
                        for i in i0..<min(i0 + tile, nx) {
                            let target = destination + (i * ny + j) * nz
                            var from = source + (i + nx * (j + ny * k0)) * size
                            let step = nx * ny * size
                            if scaled {
                                for k in k0..<k1 {
                                    target[k] = Float(T.double(at: from, swapped: swapped) * slope + intercept)
                                    from += step
                                }
                            } else {
                                for k in k0..<k1 {
                                    target[k] = T.float(at: from, swapped: swapped)
                                    from += step
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// What an unscaled integer encode found: the finite value range, and how many values were
    /// not integers inside the type's range (NaN and ±inf included).
    struct RangeCheck {
        var low = Float.infinity
        var high = -Float.infinity
        var unstorable = 0
    }

    /// Encodes `values` `[X, Y, Z]` into stored little-endian voxels of `type` in file order.
    ///
    /// Floating types store the value. Integer types with `scaling` store
    /// `round((value − intercept) / slope)`; without it they store the value and check, in the
    /// same pass, that it was an integer in range: the returned `RangeCheck` says whether the
    /// bytes are exact (`unstorable == 0`) or must be redone with a scaling.
    @discardableResult
    static func encode(_ values: UnsafeBufferPointer<Float>, shape: [Int], type: VoxelType, scaling: LinearScaling?,
                       into raw: UnsafeMutableRawBufferPointer) -> RangeCheck {
        func run<T: StoredVoxel>(_: T.Type) -> RangeCheck {
            encode(T.self, values, shape: shape, integerRange: type.integerRange, scaling: scaling, into: raw)
        }
        switch type {
        case .uint8: return run(UInt8.self)
        case .int8: return run(Int8.self)
        case .int16: return run(Int16.self)
        case .uint16: return run(UInt16.self)
        case .int32: return run(Int32.self)
        case .uint32: return run(UInt32.self)
        case .int64: return run(Int64.self)
        case .uint64: return run(UInt64.self)
        case .float32: return run(Float.self)
        case .float64: return run(Double.self)
        }
    }

    /// Float32 values of magnitude ≥ 2²³ are integers; below, `(|v| + 2²³) − 2²³` rounds to
    /// the nearest integer exactly (branch-free, unlike a call to `roundf`).
    @inline(__always) static func isIntegral(_ value: Float) -> Bool {
        let magnitude = abs(value)
        return magnitude >= 0x1p23 || (magnitude + 0x1p23) - 0x1p23 == magnitude
    }

    private static func encode<T: StoredVoxel>(_: T.Type, _ values: UnsafeBufferPointer<Float>, shape: [Int],
                                               integerRange: ClosedRange<Double>?,
                                               scaling: LinearScaling?, into raw: UnsafeMutableRawBufferPointer) -> RangeCheck {
        let (nx, ny, nz) = (shape[0], shape[1], shape[2])
        let size = MemoryLayout<T>.size
        precondition(raw.count == nx * ny * nz * size && values.count == nx * ny * nz, "encode: buffer sizes disagree with \(shape)")
        let source = values.baseAddress!
        let destination = raw.baseAddress!
        let slope = scaling?.slope ?? 1, intercept = scaling?.intercept ?? 0
        let quantise = integerRange != nil && scaling != nil
        let checked = integerRange != nil && scaling == nil
        // Clamping keeps out-of-range values (and rounding at the edges) from trapping the
        // conversion; a checked encode rejects them afterwards anyway.
        let lowest = integerRange?.lowerBound ?? 0, highest = integerRange?.upperBound ?? 0
        // The Float32 range check must not round outward (Float(Int32.max) is 2³¹).
        let lowBound = Double(Float(lowest)) >= lowest ? Float(lowest) : Float(lowest).nextUp
        let highBound = Double(Float(highest)) <= highest ? Float(highest) : Float(highest).nextDown
        let rowStride = nx * ny * size
        let workers = max(1, min(Engine.threads, ny, nx * ny * nz / (1 << 15)))
        var checks = [RangeCheck](repeating: RangeCheck(), count: workers)
        checks.withUnsafeMutableBufferPointer { slots in
            Engine.parallelWorkers(workers) { worker in
                var check = RangeCheck()
                for j in (ny * worker / workers)..<(ny * (worker + 1) / workers) {
                    for k0 in stride(from: 0, to: nz, by: encodeTile) {
                        let k1 = min(k0 + encodeTile, nz)
                        for i0 in stride(from: 0, to: nx, by: encodeTile) {
                            for i in i0..<min(i0 + encodeTile, nx) {
                                let from = source + (i * ny + j) * nz
                                var target = destination + (i + nx * (j + ny * k0)) * size
                                if quantise {
                                    for k in k0..<k1 {
                                        let level = ((Double(from[k]) - intercept) / slope).rounded()
                                        // NaN would pass through min/max and trap the conversion.
                                        T.store(level.isNaN ? 0 : min(max(level, lowest), highest), at: target)
                                        target += rowStride
                                    }
                                } else if checked {
                                    for k in k0..<k1 {
                                        let value = from[k]
                                        // NaN fails every comparison: it leaves low/high alone and is unstorable.
                                        check.low = value < check.low ? value : check.low
                                        check.high = value > check.high ? value : check.high
                                        let storable = isIntegral(value) && value >= lowBound && value <= highBound
                                        check.unstorable &+= storable ? 0 : 1
                                        T.store(storable ? Double(value) : 0, at: target)
                                        target += rowStride
                                    }
                                } else {
                                    for k in k0..<k1 {
                                        T.store(Double(from[k]), at: target)
                                        target += rowStride
                                    }
                                }
                            }
                        }
                    }
                }
                slots[worker] = check
            }
        }
        return checks.reduce(into: RangeCheck()) { total, part in
            total.low = min(total.low, part.low)
            total.high = max(total.high, part.high)
            total.unstorable += part.unstorable
        }
    }
}
