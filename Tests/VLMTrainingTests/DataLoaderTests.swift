import Foundation
import Testing
import VLMImage
import VLMTokenizers
import VLMTestSupport
@testable import VLMTraining

/// A scratch directory removed when the test ends.
final class TempDir {
    let url: URL
    init() throws {
        url = TestScratch.root.appendingPathComponent("vlm-traincli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    func write(_ name: String, _ text: String) throws -> URL {
        let u = url.appendingPathComponent(name)
        try Data(text.utf8).write(to: u)
        return u
    }
}

@Suite struct DataLoaderTests {
    @Test func jsonlReadsBothKeyStylesAndResolvesRelativePaths() throws {
        let dir = try TempDir()
        let file = try dir.write("data.jsonl", """
        {"image": "img/a.png", "caption": "a red circle", "label": "red circle", "split": "train"}

        {"file": "/abs/b.png", "text": "two blue squares", "captions": ["two blue squares", "a picture of two blue squares"], "negatives": [{"type": "swap", "caption": "two red squares"}, "three blue squares"]}
        """)
        let data = try PairedDataLoader.load(path: file)
        #expect(data.count == 2)
        let a = try data.sample(at: 0), b = try data.sample(at: 1)
        guard case .file(let ua) = a.image, case .file(let ub) = b.image else { Issue.record("expected files"); return }
        #expect(ua.path == dir.url.appendingPathComponent("img/a.png").path)
        #expect(ub.path == "/abs/b.png")
        #expect(a.label == "red circle" && a.split == "train" && a.captions == ["a red circle"])
        #expect(b.captions.count == 2)
        #expect(b.negatives == [NegativeCaption(type: "swap", caption: "two red squares"), NegativeCaption(type: "negative", caption: "three blue squares")])
        #expect(a.origin == "data.jsonl:1" && b.origin == "data.jsonl:3")
        #expect(data.splits == ["train"])
    }

    @Test func jsonlErrorsNameFileAndLine() throws {
        let dir = try TempDir()
        let cases: [(String, String)] = [
            ("{\"image\": \"a.png\", \"caption\": \"ok\"}\n{\"image\": \"b.png\"", "bad.jsonl:2: invalid JSON"),
            ("{\"image\": \"a.png\", \"caption\": \"ok\"}\n{\"image\": \"b.png\"}", "bad.jsonl:2: missing caption"),
            ("{\"caption\": \"x\"}", "bad.jsonl:1: missing image path"),
            ("[1, 2]", "bad.jsonl:1: expected a JSON object"),
            ("{\"image\": 3, \"caption\": \"x\"}", "bad.jsonl:1: 'image' must be a string"),
            ("{\"image\": \"a\", \"caption\": \"x\", \"negatives\": [3]}", "bad.jsonl:1: a negative must be"),
        ]
        for (text, expected) in cases {
            let file = try dir.write("bad.jsonl", text)
            do {
                _ = try PairedDataLoader.load(path: file)
                Issue.record("no error for \(text)")
            } catch {
                #expect("\(error)".contains(expected), "\(error) should contain \(expected)")
            }
        }
    }

    @Test func csvQuotingAndErrors() throws {
        let dir = try TempDir()
        let file = try dir.write("pairs.csv", "\u{FEFF}Image,Caption,label\r\nimgs/1.png,\"a red, round \"\"circle\"\"\",red circle\n\"imgs/2.png\",\"two\nlines\",\n")
        let data = try PairedDataLoader.load(path: file)
        #expect(data.count == 2)
        #expect(try data.sample(at: 0).caption == "a red, round \"circle\"")
        #expect(try data.sample(at: 0).label == "red circle")
        #expect(try data.sample(at: 1).caption == "two\nlines")
        #expect(try data.sample(at: 1).label == nil)

        let bad: [(String, String)] = [
            ("file,caption\na.png,x,extra\n", "bad.csv:2: 3 fields"),
            ("picture,caption\na.png,x\n", "bad.csv:1: header has no image column"),
            ("image,caption\na.png,\"open\n", "bad.csv:2: unterminated"),
            ("image,caption\na.png,x\nb.png,\"a\"b\n", "bad.csv:3: text after a closing quote"),
        ]
        for (text, expected) in bad {
            let f = try dir.write("bad.csv", text)
            #expect(throws: (any Error).self) { try PairedDataLoader.load(path: f) }
            do { _ = try PairedDataLoader.load(path: f) } catch { #expect("\(error)".contains(expected), "\(error)") }
        }
    }

    @Test func directoryResolution() throws {
        let dir = try TempDir()
        #expect(throws: TrainingError.self) { try PairedDataLoader.resolve(dir.url) }
        _ = try dir.write("x.csv", "image,caption\na.png,b\n")
        #expect(try PairedDataLoader.resolve(dir.url).lastPathComponent == "x.csv")
        _ = try dir.write("manifest.jsonl", "{\"image\": \"a\", \"caption\": \"b\"}\n")
        #expect(try PairedDataLoader.resolve(dir.url).lastPathComponent == "manifest.jsonl")
        #expect(throws: TrainingError.self) { try PairedDataLoader.resolve(dir.url.appendingPathComponent("missing")) }
    }

    @Test func seededPermutationIsAPermutationAndStable() {
        let p = seededPermutation(100, seed: 7)
        #expect(Set(p) == Set(0 ..< 100))
        #expect(p == seededPermutation(100, seed: 7))
        #expect(p != seededPermutation(100, seed: 8))
    }
}

/// Word-level tokenizer files load through TokenizerLoader and give BOS ... EOS with EOS the highest id.
@Suite struct CheckpointAssetTests {
    @Test func wordLevelTokenizerRoundTrip() throws {
        let dir = try TempDir()
        let words = CheckpointAssets.words(in: ["A red circle, left of a Blue square.", "three stars"])
        #expect(words == [",", ".", "a", "blue", "circle", "left", "of", "red", "square", "stars", "three"])
        for (name, data) in try CheckpointAssets.wordLevelTokenizerFiles(words: words, maxLength: 8) {
            try data.write(to: dir.url.appendingPathComponent(name))
        }
        let tok = try TokenizerLoader.load(directory: dir.url)
        let ids = try tok.encode("A blue   STARS zebra.", maxLength: nil)
        let (vocab, bos, eos, _) = CheckpointAssets.vocabulary(words: words)
        #expect(ids == [bos, vocab["a"], vocab["blue"], vocab["stars"], 1, vocab["."], eos].compactMap { $0 })
        #expect(eos == vocab.count - 1)
        #expect(try tok.encode("a a a a a a a a a a", maxLength: 5).count == 5)
        #expect(TokenizerLoader.modelMaxLength(directory: dir.url) == 8)
        try CheckpointAssets.preprocessorConfig(imageSize: 64).write(to: dir.url.appendingPathComponent("preprocessor_config.json"))
        let processor = try ImageProcessor.load(directory: dir.url)
        #expect(processor.outputSize.height == 64 && processor.outputSize.width == 64)
    }
}

/// `groupSize > 1` (contrast groups): every batch holds whole groups of consecutive source indices, groups are
/// shuffled per epoch, and each epoch still visits every full group once.
@Suite struct GroupedBatchTests {
    @Test func batchesHoldWholeShuffledGroups() throws {
        let dir = try TempDir()
        let group = 4, groups = 12
        let samples = try (0 ..< group * groups + 3).map { i in
            PairedSample(image: .pixels(try RGBImage(width: 8, height: 8, pixels: [UInt8](repeating: UInt8(i), count: 8 * 8 * 3))),
                         caption: "w\(i)")
        }
        let words = CheckpointAssets.words(in: samples.map(\.caption))
        for (name, data) in try CheckpointAssets.wordLevelTokenizerFiles(words: words, maxLength: 8) {
            try data.write(to: dir.url.appendingPathComponent(name))
        }
        try CheckpointAssets.preprocessorConfig(imageSize: 8).write(to: dir.url.appendingPathComponent("preprocessor_config.json"))
        let tokenizer = try TokenizerLoader.load(directory: dir.url)
        let (vocab, _, _, _) = CheckpointAssets.vocabulary(words: words)
        let index = Dictionary(uniqueKeysWithValues: (0 ..< samples.count).compactMap { i in vocab["w\(i)"].map { ($0, i) } })
        var pipeline = try BatchPipeline(source: ArrayDataSource(samples), processor: ImageProcessor.load(directory: dir.url),
                                         tokenizer: tokenizer, maxTextLength: 8, batchSize: 8, seed: 3)
        pipeline.groupSize = group
        #expect(pipeline.batchesPerEpoch == group * groups / 8)
        var orders: [[Int]] = []
        for epoch in 0 ..< 2 {
            try pipeline.startEpoch(epoch)
            var seen: [Int] = []
            while let batch = try pipeline.nextBatch() {
                let ids = batch.ids.map { index[$0[1]] ?? -1 }
                #expect(ids.count == 8)
                for start in stride(from: 0, to: ids.count, by: group) {
                    let g = ids[start] / group
                    #expect(ids[start ..< start + group] == ArraySlice((g * group ..< g * group + group)), "batch \(ids)")
                }
                seen += ids
            }
            #expect(Set(seen) == Set(0 ..< group * groups), "the 3 samples of the partial group are never used")
            orders.append(seen)
        }
        #expect(orders[0] != orders[1])
        #expect(orders[0] != Array(0 ..< group * groups))
    }
}
