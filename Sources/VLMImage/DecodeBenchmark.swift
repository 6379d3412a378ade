import Dispatch
import Foundation
import VLMTensor

/// Decode and preprocess throughput per file format, as a photo library's ingest pays it: read the file,
/// decode to RGB (EXIF orientation applied), then one processor's pixel values. The PIL side of the same
/// measurement is Benchmarks/bench_decode_pil.py (same files, same steps).
public enum DecodeBenchmark {
    public struct Row: Encodable, Sendable {
        /// The container format as decoded (extension of the files, e.g. "heic", "avif" share HEIF decoding).
        public let format: String
        public let files: Int
        public let megapixels: Double
        /// Read + decode (+ orientation) per image, milliseconds (median over the repeats).
        public let decodeMilliseconds: Double
        /// The processor's resize/crop/normalise per image, milliseconds (median over the repeats).
        public let preprocessMilliseconds: Double
        public var imagesPerSecond: Double { 1000 / max(decodeMilliseconds + preprocessMilliseconds, 1e-9) }

        enum CodingKeys: String, CodingKey {
            case format, files, megapixels, decodeMilliseconds = "decode_ms", preprocessMilliseconds = "preprocess_ms"
            case imagesPerSecond = "images_per_s"
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(format, forKey: .format)
            try c.encode(files, forKey: .files)
            try c.encode(megapixels, forKey: .megapixels)
            try c.encode(decodeMilliseconds, forKey: .decodeMilliseconds)
            try c.encode(preprocessMilliseconds, forKey: .preprocessMilliseconds)
            try c.encode(imagesPerSecond, forKey: .imagesPerSecond)
        }
    }

    /// Times every file `repeats` times (after one untimed pass) and groups them by extension. Files that do not
    /// decode are an error naming them: a benchmark over the wrong files is worse than none.
    public static func run(files: [URL], repeats: Int, processor: any ImageInputProcessor) throws -> [Row] {
        guard repeats >= 1 else { throw ImageError.invalidArgument("repeats must be >= 1") }
        var groups: [String: [URL]] = [:]
        for url in files { groups[url.pathExtension.lowercased(), default: []].append(url) }
        func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
        func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
        return try groups.keys.sorted().map { format in
            let urls = groups[format] ?? []
            var decode: [Double] = [], preprocess: [Double] = []
            var pixels = 0
            for url in urls {
                let image = try ImageDecoder.load(url, alpha: .compositeOnWhite)  // warm the page cache and code paths
                _ = try processor.pixelInputs([image])
                pixels += image.width * image.height
                var d: [Double] = [], p: [Double] = []
                for _ in 0 ..< repeats {
                    let t0 = now()
                    let decoded = try ImageDecoder.load(url, alpha: .compositeOnWhite)
                    let t1 = now()
                    _ = try processor.pixelInputs([decoded])
                    let t2 = now()
                    d.append(Double(t1 - t0) / 1e6)
                    p.append(Double(t2 - t1) / 1e6)
                }
                decode.append(median(d))
                preprocess.append(median(p))
            }
            let n = Double(max(urls.count, 1))
            return Row(format: format, files: urls.count, megapixels: Double(pixels) / n / 1e6,
                       decodeMilliseconds: decode.reduce(0, +) / n, preprocessMilliseconds: preprocess.reduce(0, +) / n)
        }
    }
}
