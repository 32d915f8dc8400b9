import Testing
import TensorCore
@testable import Learn

@Suite struct StandardiserTests {
    @Test func fittedOnTrainingRowsOnly() throws {
        let train = try Tensor(shape: [3, 2], scalars: [1, 10, 2, 10, 3, 10])
        let fitted = try Standardiser().fit(train)
        #expect(fitted.mean == [2, 10])
        #expect(abs(fitted.scale[0] - (2.0 / 3).squareRoot()) < 1e-12)
        #expect(fitted.scale[1] == 1)  // constant column: scale 1, not a division by zero
        let z = try fitted.transform(try Tensor(shape: [1, 2], scalars: [4, 12]))
        #expect(abs(Double(z.scalars[0]) - 2 / (2.0 / 3).squareRoot()) < 1e-5)
        #expect(z.scalars[1] == 2)
    }
}
