import VolumeIO

/// Overlap of two masks on one grid (nonzero voxels are inside), e.g. an automatic brain
/// mask against a reference.
public enum Overlap {
    /// The Sørensen-Dice coefficient
    /// ```
    /// Dice = 2 |A ∩ B| / (|A| + |B|)      in [0, 1]
    /// ```
    /// 1 when both masks are empty (they agree everywhere).
    /// - Throws: `.gridMismatch` (naming `b`'s `label`) unless both share extents and affine
    ///   (within 1e-4 mm).
    public static func dice(_ a: Volume, _ b: Volume, label: String = "second mask") throws(PreprocessingError) -> Double {
        let (both, sizeA, sizeB) = try counts(a, b, label: label)
        return sizeA + sizeB == 0 ? 1 : 2 * Double(both) / Double(sizeA + sizeB)
    }

    /// The Jaccard index (intersection over union)
    /// ```
    /// J = |A ∩ B| / |A ∪ B| = Dice / (2 − Dice)
    /// ```
    /// 1 when both masks are empty. Throws as `dice`.
    public static func jaccard(_ a: Volume, _ b: Volume, label: String = "second mask") throws(PreprocessingError) -> Double {
        let (both, sizeA, sizeB) = try counts(a, b, label: label)
        let union = sizeA + sizeB - both
        return union == 0 ? 1 : Double(both) / Double(union)
    }

    /// `|A ∩ B|`, `|A|`, `|B|` after the grid check.
    private static func counts(_ a: Volume, _ b: Volume, label: String) throws(PreprocessingError) -> (Int, Int, Int) {
        try InputValidation.requireSameGrid(b, as: a, label: label)
        var (both, sizeA, sizeB) = (0, 0, 0)
        for (x, y) in zip(a.data.scalars, b.data.scalars) {
            let (inA, inB) = (x != 0, y != 0)
            if inA { sizeA += 1 }
            if inB { sizeB += 1 }
            if inA && inB { both += 1 }
        }
        return (both, sizeA, sizeB)
    }
}
