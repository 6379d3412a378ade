/// The generator's only source of randomness: SplitMix64 (Steele, Lea & Flood, "Fast splittable
/// pseudorandom number generators", OOPSLA 2014), the same algorithm as Java's SplittableRandom.
///
/// Why this one: it is a few lines of wrapping 64-bit integer arithmetic, so a seed gives the same stream on
/// every machine, OS and Swift version (Swift's `SystemRandomNumberGenerator` is not seedable and the
/// standard library's `random(in:using:)` algorithms are not documented as stable). Every derived value
/// below (integers in a range, doubles) uses explicit integer math for the same reason.
///
///     state &+= 0x9E3779B97F4A7C15
///     z = state
///     z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
///     z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
///     return z ^ (z >> 31)
public struct SceneRandom: Sendable {
    public private(set) var state: UInt64

    public init(state: UInt64) { self.state = state }

    /// The SplitMix64 output function, also used as a 64-bit hash to derive independent seeds.
    @inline(__always)
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The stream for scene `index` of `split` under the user's `seed`, sub-stream `stream`
    /// (0 = layout, 1 = text choices, 2 = background noise). Each scene has its own stream, so scene i can be
    /// produced without producing 0..<i (random access, parallel generation), and changing how text is chosen
    /// never moves a pixel.
    public static func forScene(seed: UInt64, split: SceneSplit, index: Int, stream: UInt64) -> SceneRandom {
        var h = mix(seed &+ 0x9E37_79B9_7F4A_7C15)
        h = mix(h ^ split.streamTag)
        h = mix(h ^ UInt64(truncatingIfNeeded: index))
        h = mix(h ^ (stream &* 0xD1B5_4A32_D192_ED03))
        return SceneRandom(state: h)
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    /// Uniform integer in 0..<bound by the multiply-high method (bias below 2^-32 for the small bounds used here).
    public mutating func int(_ bound: Int) -> Int {
        guard bound > 1 else { return 0 }
        return Int(next().multipliedFullWidth(by: UInt64(bound)).high)
    }

    /// Uniform integer in a closed range.
    public mutating func int(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + int(range.upperBound - range.lowerBound + 1)
    }

    /// Uniform double in [0, 1) with 53 random bits (exact: no platform rounding involved).
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform double in [lo, hi).
    public mutating func double(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * unit() }

    public mutating func bool(_ probability: Double = 0.5) -> Bool { unit() < probability }

    /// A uniformly chosen element (nil only for an empty array).
    public mutating func pick<T>(_ items: [T]) -> T? { items.isEmpty ? nil : items[int(items.count)] }

    /// Fisher-Yates shuffle driven by this stream.
    public mutating func shuffle<T>(_ items: inout [T]) {
        guard items.count > 1 else { return }
        for i in stride(from: items.count - 1, to: 0, by: -1) { items.swapAt(i, int(i + 1)) }
    }
}
