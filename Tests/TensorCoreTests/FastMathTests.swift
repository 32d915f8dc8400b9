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

@Test func portableSinAndCosMatchTheDoublePrecisionLibrary() {
    var worst = 0.0
    var x: Float = -200
    while x <= 200 {
        worst = max(worst, abs(Double(FastMath.sin(x)) - Foundation.sin(Double(x))))
        worst = max(worst, abs(Double(FastMath.cos(x)) - Foundation.cos(Double(x))))
        x += 0.00731
    }
    #expect(worst < 1e-6, "worst absolute error \(worst)")
    #expect(FastMath.sin(0) == 0 && FastMath.cos(0) == 1)
    #expect(FastMath.sin(-1.25) == -FastMath.sin(1.25) && FastMath.cos(-1.25) == FastMath.cos(1.25))
}

@Test func portableLogAndCubeRootMatchTheDoublePrecisionLibrary() {
    var worstLog = 0.0, worstCbrt = 0.0
    var x: Float = 1e-30
    while x < 1e30 {
        let log = Foundation.log(Double(x))
        worstLog = max(worstLog, abs(Double(FastMath.log(x)) - log) / max(1, abs(log)))
        let cbrt = Foundation.cbrt(Double(x))
        worstCbrt = max(worstCbrt, abs(Double(FastMath.cbrt(x)) - cbrt) / cbrt)
        x *= 1.0137
    }
    #expect(worstLog < 2e-7, "worst log error \(worstLog)")
    #expect(worstCbrt < 1e-6, "worst cbrt error \(worstCbrt)")
    #expect(FastMath.log(1) == 0)
    #expect(FastMath.log(0).isNaN && FastMath.log(-1).isNaN && FastMath.log(.infinity).isNaN && FastMath.log(.nan).isNaN)
}
