import Foundation
import Testing
import VLMTensor
@testable import VLMTraining

/// Deterministic test values (SplitMix64 -> uniform in [-scale, scale)).
struct TestRandom {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> Float {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Float(z >> 40) / Float(1 << 24) * 2 - 1
    }
    mutating func tensor(_ shape: [Int], scale: Float = 1) -> Tensor {
        let t = Tensor(zeros: shape)
        for i in 0 ..< t.count { t[i] = next() * scale }
        return t
    }
    mutating func index(_ n: Int) -> Int { min(Int((next() + 1) / 2 * Float(n)), n - 1) }
}

/// Σ y ⊙ r in Double: a scalar whose gradient with respect to y is r.
func dot(_ y: Tensor, _ r: Tensor) -> Double {
    var s = 0.0
    for i in 0 ..< y.count { s += Double(y[i]) * Double(r[i]) }
    return s
}

/// Central-difference check of `analytic` = d loss / d `value` at `samples` entries (all if nil):
/// (loss(v + h) - loss(v - h)) / 2h, the forward in float32 and the loss summed in Double.
/// Passes when |fd - analytic| <= atol + rtol · |analytic|. Returns the worst |fd - analytic|.
@discardableResult
func checkGradient(_ label: String, value: Tensor, analytic: Tensor, samples: Int? = nil, h: Float = 1e-2,
                   atol: Double = 1e-3, rtol: Double = 1e-2, seed: UInt64 = 7, loss: () throws -> Double) rethrows -> Double {
    #expect(value.count == analytic.count, "\(label): gradient has \(analytic.count) values for \(value.count)")
    var rng = TestRandom(seed)
    let indices = samples.map { n in (0 ..< min(n, value.count)).map { _ in rng.index(value.count) } } ?? Array(0 ..< value.count)
    var worst = 0.0
    for i in indices {
        let saved = value[i]
        value[i] = saved + h
        let plus = try loss()
        value[i] = saved - h
        let minus = try loss()
        value[i] = saved
        let fd = (plus - minus) / (2 * Double(h))
        let an = Double(analytic[i])
        let err = abs(fd - an)
        worst = max(worst, err)
        #expect(err <= atol + rtol * abs(an), "\(label)[\(i)]: finite difference \(fd) vs analytic \(an)")
    }
    return worst
}
