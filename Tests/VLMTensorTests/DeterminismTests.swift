import CVLM
import Testing
import VLMTensor
import VLMTestSupport

/// Largest elementwise difference (0 means bitwise equal for finite values).
func maxDifference(_ a: Tensor, _ b: Tensor) -> Float {
    zip(a.scalars, b.scalars).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

/// Results must not depend on how many threads ran them (training resumes, server batches and parity tests
/// all assume it): every output element sums in the same order whatever the task split. Each test holds the
/// KernelPaths lock: tests that force another ISA or thread count meanwhile would otherwise change the kernel path
/// between the two runs compared.
@Suite(.serialized) struct DeterminismTests {
    func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed)
        let t = Tensor(uninitialized: shape)
        for i in 0 ..< t.count { t[i] = rng.nextGaussian() }
        return t
    }

    @Test(arguments: [1, 7, 13, 14, 20, 29, 50, 77, 130])
    func linearIsBitwiseIdenticalForOneAndTwoThreads(m: Int) throws {
        try KernelPaths.exclusiveThrowing { try linearOneAndTwoThreads(m: m) }
    }

    func linearOneAndTwoThreads(m: Int) throws {
        let saved = Kernels.threads
        defer { Kernels.threads = saved }
        let x = random([m, 768], seed: 1), w = try PackedLinearWeight(weight: random([640, 768], seed: 2))
        let bias = random([640], seed: 3)
        Kernels.threads = 1
        let one = Ops.linear(x, w, bias: bias, activation: .gelu)
        Kernels.threads = 2
        let two = Ops.linear(x, w, bias: bias, activation: .gelu)
        #expect(one.scalars == two.scalars, "max |diff| \(maxDifference(one, two))")
        // General GEMM and attention too.
        let a = random([m, 300], seed: 4), b = random([300, 200], seed: 5)
        Kernels.threads = 1
        let g1 = Ops.matmul(a, b)
        Kernels.threads = 2
        let g2 = Ops.matmul(a, b)
        #expect(g1.scalars == g2.scalars, "max |diff| \(maxDifference(g1, g2))")
    }

    /// Few column panels and rows split into single-tile tasks: the case where K blocking used to follow the
    /// task's share of the rows (so 2 threads summed in a different order than 1).
    @Test(arguments: [(28, 32), (40, 16), (27, 64)])
    func narrowLinearSplitByRowsIsBitwiseIdentical(shape: (Int, Int)) throws {
        try KernelPaths.exclusiveThrowing { try narrowLinear(shape: shape) }
    }

    func narrowLinear(shape: (Int, Int)) throws {
        let saved = Kernels.threads
        defer { Kernels.threads = saved }
        let (m, n) = shape
        let x = random([m, 2048], seed: 6), w = try PackedLinearWeight(weight: random([n, 2048], seed: 7))
        Kernels.threads = 1
        let one = Ops.linear(x, w, bias: nil)
        Kernels.threads = 2
        let two = Ops.linear(x, w, bias: nil)
        #expect(one.scalars == two.scalars, "max |diff| \(maxDifference(one, two))")
    }
}

extension DeterminismTests {
    /// `Ops.linearChain` (an MLP's fc1 -> activation -> fc2, hidden rows kept one cache line longer when they would
    /// alias in L1) gives the bits of two `Ops.linear` calls, aliased width (512, 2048) or not (300), on 1 and 2 threads.
    @Test(arguments: [(40, 512), (300, 2048), (33, 300)])
    func linearChainEqualsTwoLinears(shape: (Int, Int)) throws {
        let (m, hidden) = shape
        try KernelPaths.exclusiveThrowing {
            let saved = Kernels.threads
            defer { Kernels.threads = saved }
            let x = random([2, m, 96], seed: 11)
            let w1 = try PackedLinearWeight(weight: random([hidden, 96], seed: 12)), b1 = random([hidden], seed: 13)
            let w2 = try PackedLinearWeight(weight: random([80, hidden], seed: 14)), b2 = random([80], seed: 15)
            for threads in [1, 2] {
                Kernels.threads = threads
                let chained = Ops.linearChain(x, w1, bias1: b1, activation: .quickGelu, w2, bias2: b2)
                let twice = Ops.linear(Ops.linear(x, w1, bias: b1, activation: .quickGelu), w2, bias: b2)
                #expect(chained.shape == [2, m, 80])
                #expect(chained.scalars == twice.scalars, "t=\(threads) hidden \(hidden): max |diff| \(maxDifference(chained, twice))")
            }
        }
    }
}
