import Foundation
import Testing
import TensorCore

@Test func fastExpIsAccurateAcrossTheFloatRange() {
    var worst = 0.0
    var x: Float = -87.3
    while x <= 88.3 {
        let relative = abs(Double(FastMath.exp(x)) - Foundation.exp(Double(x))) / Foundation.exp(Double(x))
        worst = max(worst, relative)
        x += 0.0137
    }
    #expect(worst < 3e-7, "worst relative error \(worst)")
    #expect(FastMath.exp(0) == 1)
}

@Test func fastExpClampsAndKeepsNaN() {
    #expect(FastMath.exp(1000) == .infinity && FastMath.exp(89) == .infinity)
    let nearMax: Float = 88.7
    let exact = Foundation.exp(Double(nearMax))
    #expect(abs(Double(FastMath.exp(nearMax)) - exact) / exact < 3e-7)
    #expect(FastMath.exp(-1000) == 0)
    let denormal = FastMath.exp(-95)  // 5.5e-42, below the normal range
    let tiny = Foundation.exp(Double(Float(-95)))
    #expect(denormal > 0 && abs(Double(denormal) - tiny) / tiny < 1e-3)
    #expect(FastMath.exp(.nan).isNaN)
    #expect(FastMath.sigmoid(.nan).isNaN)
    #expect(FastMath.sigmoid(-.infinity) == 0 && FastMath.sigmoid(.infinity) == 1)
    #expect(FastMath.sigmoid(-200) == 0 && FastMath.sigmoid(200) == 1)
}
