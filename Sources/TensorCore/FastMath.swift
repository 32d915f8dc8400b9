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
}
