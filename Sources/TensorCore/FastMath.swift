/// Branch-free elementary functions for elementwise kernels: straight-line code the compiler
/// vectorises, where a call to libm's `expf` per element does not (the sparse-autoencoder
/// epoch spent a quarter of its time in `expf` and the loop around it).
public enum FastMath {
    /// `e^x` by Cody–Waite range reduction and the Cephes `expf` polynomial:
    /// ```
    /// x = n·ln 2 + r, |r| ≤ ln 2 / 2,   e^x = 2^⌊n/2⌋ · 2^(n−⌊n/2⌋) · P(r)
    /// ```
    /// Relative error below 3e-7 wherever the result is a normal float; overflows to +∞ above
    /// ≈ 88.72 and underflows through the denormals to 0 below ≈ −104, as `expf` does
    /// (splitting 2^n in two keeps both factors representable at the ends). NaN stays NaN.
    @inlinable
    public static func exp(_ x: Float) -> Float {
        // Written as selects so NaN passes through unchanged.
        let clamped = x < -104 ? -104 : (x > 89 ? 89 : x)
        // Adding 1.5·2^23 rounds to the nearest integer and leaves it in the low mantissa bits.
        let magic: Float = 12_582_912
        let shifted = clamped * 1.442_695_04 + magic
        let n = shifted - magic
        let r = clamped - n * 0.693_359_375 - n * -2.121_944_4e-4
        var p: Float = 1.987_569_15e-4
        p = p * r + 1.398_199_95e-3
        p = p * r + 8.333_451_9e-3
        p = p * r + 4.166_579_6e-2
        p = p * r + 1.666_666_55e-1
        p = p * r + 5.000_000_1e-1
        let y = p * r * r + r + 1
        let exponent = Int32(bitPattern: shifted.bitPattern &- magic.bitPattern)
        let half = exponent >> 1
        let first = Float(bitPattern: UInt32(bitPattern: half &+ 127) &<< 23)
        let second = Float(bitPattern: UInt32(bitPattern: exponent &- half &+ 127) &<< 23)
        return y * first * second
    }

    /// The logistic function `1 / (1 + e^−x)` through `exp`: exactly 0 and 1 far out, as in
    /// single-precision PyTorch, and never NaN from a finite or infinite input.
    @inlinable
    public static func sigmoid(_ x: Float) -> Float { 1 / (1 + exp(-x)) }

    // MARK: Portable functions
    //
    // The C library's sinf/cosf/logf may pick other code (FMA or not) on other CPUs and then
    // differ in the last bit. These use only IEEE-754 additions, multiplications and
    // conversions, so every machine computes the same bits: what seeded generators whose
    // output must be identical everywhere (the synthetic cohort) are built on.

    /// Cody-Waite reduction of `|x|` by pi/4 as in Cephes' `sinf`/`cosf`: the reduced
    /// argument in [-pi/4, pi/4] and the octant (0-7).
    @inlinable
    static func reduceQuarterPi(_ x: Float) -> (r: Float, octant: Int) {
        let magnitude = Swift.abs(x)
        var j = Int(magnitude * 1.273_239_5)  // 4 / pi
        var y = Float(j)
        if j & 1 == 1 {
            j += 1
            y += 1
        }
        let r = ((magnitude - y * 0.785_156_25) - y * 2.418_756_5e-4) - y * 3.774_895e-8
        return (r, j & 7)
    }

    @inlinable
    static func sinPolynomial(_ r: Float) -> Float {
        let z = r * r
        return ((-1.951_529_6e-4 * z + 8.332_161e-3) * z - 1.666_665_5e-1) * z * r + r
    }

    @inlinable
    static func cosPolynomial(_ r: Float) -> Float {
        let z = r * r
        return ((2.443_315_7e-5 * z - 1.388_731_6e-3) * z + 4.166_664_6e-2) * z * z - 0.5 * z + 1
    }

    /// sin x and cos x with one range reduction (absolute error below 1e-6 for |x| <= 8192;
    /// beyond, the reduction loses accuracy).
    @inlinable
    public static func sinCos(_ x: Float) -> (sin: Float, cos: Float) {
        var (r, octant) = reduceQuarterPi(x)
        var negativeSin = x < 0, negativeCos = false
        if octant > 3 {
            negativeSin.toggle()
            negativeCos.toggle()
            octant -= 4
        }
        if octant > 1 { negativeCos.toggle() }
        let (s, c) = (sinPolynomial(r), cosPolynomial(r))
        let swapped = octant == 1 || octant == 2
        let sine = swapped ? c : s, cosine = swapped ? s : c
        return (negativeSin ? -sine : sine, negativeCos ? -cosine : cosine)
    }

    /// sin x (see `sinCos`).
    @inlinable
    public static func sin(_ x: Float) -> Float { sinCos(x).sin }

    /// cos x (see `sinCos`).
    @inlinable
    public static func cos(_ x: Float) -> Float { sinCos(x).cos }

    /// Natural logarithm of a positive normal float (Cephes' `logf`; relative error below
    /// 2e-7). Zero, negative, subnormal and non-finite inputs give NaN.
    @inlinable
    public static func log(_ x: Float) -> Float {
        guard x.isNormal, x > 0 else { return .nan }
        let bits = x.bitPattern
        var exponent = Float(Int((bits >> 23) & 0xFF) - 126)
        var m = Float(bitPattern: (bits & 0x007F_FFFF) | 0x3F00_0000)  // in [0.5, 1)
        if m < 0.707_106_78 {
            exponent -= 1
            m = m + m - 1
        } else {
            m -= 1
        }
        let z = m * m
        var y: Float = 7.037_683_6e-2
        y = y * m - 1.151_461_0e-1
        y = y * m + 1.167_699_9e-1
        y = y * m - 1.242_014_1e-1
        y = y * m + 1.424_932_3e-1
        y = y * m - 1.666_805_8e-1
        y = y * m + 2.000_071_5e-1
        y = y * m - 2.499_999_4e-1
        y = y * m + 3.333_333_1e-1
        y = y * m * z
        y += -2.121_944_4e-4 * exponent
        y += -0.5 * z
        return m + y + 0.693_359_375 * exponent
    }

    /// Cube root of a positive float, as exp(log(x) / 3) with a Newton step (relative error
    /// below 1e-6 for normal inputs).
    @inlinable
    public static func cbrt(_ x: Float) -> Float {
        let guess = exp(log(x) / 3)
        return guess - (guess * guess * guess - x) / (3 * guess * guess)
    }
}

