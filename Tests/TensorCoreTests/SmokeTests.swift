import Testing
import TensorCore
import TestSupport

@Test func randomTensorIsSeeded() {
    #expect(TestSupport.randomTensor([3, 4], seed: 1) == TestSupport.randomTensor([3, 4], seed: 1))
    #expect(TestSupport.randomTensor([3, 4], seed: 1) != TestSupport.randomTensor([3, 4], seed: 2))
}
