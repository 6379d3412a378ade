import Foundation
import Testing
import VLMTensor
import VLMTestSupport
@testable import VLMImage

/// Tests/Fixtures/images/manifest.json, written by Scripts/fixtures/image_fixtures.py.
struct ImageManifest: Decodable {
    struct Resize: Decodable {
        let source: String
        let filter: Int
        let width: Int
        let height: Int
        let file: String
    }
    struct Config: Decodable {
        let pixels: [String]
        let crops: [String]
    }
    let good: [String]
    let bad: [String: String]
    let alpha: [String]
    let configs: [String: Config]
    let resize: [Resize]

    static func load() throws -> ImageManifest { try Fixtures.json("images/manifest.json") }
}

func imageFixture(_ relative: String) -> URL { Fixtures.url("images/" + relative) }

/// A uint8 [H, W, 3] golden as an RGBImage.
func goldenImage(_ relative: String) throws -> RGBImage {
    let a = try Npy.read(imageFixture(relative))
    guard a.shape.count == 3, a.shape[2] == 3, let px = a.uint8s else {
        throw ImageError.invalidArgument("\(relative): expected uint8 [H, W, 3], got \(a.dtype) \(a.shape)")
    }
    return try RGBImage(width: a.shape[1], height: a.shape[0], pixels: px)
}

/// Number of differing bytes and the first difference, for readable failures.
func diff(_ a: [UInt8], _ b: [UInt8]) -> (count: Int, first: Int?) {
    guard a.count == b.count else { return (max(a.count, b.count), 0) }
    var n = 0
    var first: Int?
    for i in 0..<a.count where a[i] != b[i] {
        n += 1
        if first == nil { first = i }
    }
    return (n, first)
}
