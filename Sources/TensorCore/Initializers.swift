/// Weight initialisers. Each draws from a caller-supplied seeded generator.
public enum Initializer {
    /// Uniform on `[-bound, bound]`.
    public static func uniform(shape: [Int], bound: Float, using generator: inout some RandomNumberGenerator) -> Tensor {
        Tensor(uninitializedShape: shape) { out in
            for i in 0..<out.count { out[i] = (2 * generator.nextUnitFloat() - 1) * bound }
        }
    }

    /// Normal with mean 0 and standard deviation `std`.
    public static func normal(shape: [Int], std: Float, using generator: inout some RandomNumberGenerator) -> Tensor {
        Tensor(uninitializedShape: shape) { out in
            for i in 0..<out.count { out[i] = generator.nextStandardNormal() * std }
        }
    }

    /// He (Kaiming) uniform for ReLU layers (He et al. 2015): `bound = sqrt(6 / fanIn)`.
    public static func heUniform(shape: [Int], fanIn: Int, using generator: inout some RandomNumberGenerator) -> Tensor {
        uniform(shape: shape, bound: (6 / Float(max(1, fanIn))).squareRoot(), using: &generator)
    }

    /// He (Kaiming) normal: `std = sqrt(2 / fanIn)`.
    public static func heNormal(shape: [Int], fanIn: Int, using generator: inout some RandomNumberGenerator) -> Tensor {
        normal(shape: shape, std: (2 / Float(max(1, fanIn))).squareRoot(), using: &generator)
    }

    /// Xavier (Glorot) uniform for sigmoid/tanh layers (Glorot & Bengio 2010):
    /// `bound = sqrt(6 / (fanIn + fanOut))`.
    public static func xavierUniform(shape: [Int], fanIn: Int, fanOut: Int, using generator: inout some RandomNumberGenerator) -> Tensor {
        uniform(shape: shape, bound: (6 / Float(max(1, fanIn + fanOut))).squareRoot(), using: &generator)
    }
}
