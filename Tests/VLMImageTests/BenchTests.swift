import Foundation
import Testing
import VLMTensor
@testable import VLMImage

/// Timing of decode + CLIP preprocessing of a large JPEG. Opt-in (it needs a big file, and debug timings mean
/// nothing): VLM_IMAGE_BENCH=/path/big.jpg swift test -c release -Xswiftc -enable-testing --filter BenchTests
@Suite struct BenchTests {
    static let path = ProcessInfo.processInfo.environment["VLM_IMAGE_BENCH"]

    @Test(.enabled(if: path != nil)) func decodeAndPreprocessLargeJPEG() throws {
        let url = URL(fileURLWithPath: Self.path ?? "")
        let data = try Data(contentsOf: url)
        let processor = ImageProcessor(config: .clip)
        func ms(_ start: DispatchTime) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6 }
        var best = (decode: Double.infinity, resize: Double.infinity, rest: Double.infinity)
        for _ in 0..<5 {
            let t0 = DispatchTime.now()
            let image = try ImageDecoder.decode(data)
            let d = ms(t0)
            let t1 = DispatchTime.now()
            let (h, w) = try processor.resizeTarget(height: image.height, width: image.width)
            let resized = try resize(image, width: w, height: h, filter: .bicubic)
            let r = ms(t1)
            let t2 = DispatchTime.now()
            let t = try pixelValues(try centerCrop(resized, height: 224, width: 224), mean: ImageProcessorConfig.openAIClipMean, std: ImageProcessorConfig.openAIClipStd)
            let rest = ms(t2)
            best = (min(best.decode, d), min(best.resize, r), min(best.rest, rest))
            #expect(t.shape == [3, 224, 224])
        }
        print("bench \(url.lastPathComponent): decode \(best.decode) ms, resize \(best.resize) ms, crop+normalize \(best.rest) ms")
        if let golden = ProcessInfo.processInfo.environment["VLM_IMAGE_BENCH_GOLDEN"] {
            let want = try Npy.read(URL(fileURLWithPath: golden)).floats
            let got = try processor.preprocess(try ImageDecoder.decode(data)).scalars
            #expect(zip(want, got).map { abs($0 - $1) }.max() ?? 1 <= 1e-5)
        }
    }
}
