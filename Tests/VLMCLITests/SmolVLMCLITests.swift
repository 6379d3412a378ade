import Foundation
import Testing
import VLMTestSupport

/// `vlm ask / caption / chat` on the tiny SmolVLM checkpoints (Scripts/fixtures/smolvlm_fixtures.py) as a user
/// runs them: the answer is transformers' greedy text; several images in one chat turn; bad input is one line.
@Suite(.serialized) struct SmolVLMCLITests {
    let model = Fixtures.url("smolvlm/smolvlm-tiny").path
    let chelsea = Fixtures.url("clip/images/chelsea.jpg").path
    let astronaut = Fixtures.url("clip/images/astronaut.jpg").path

    struct Reference: Decodable {
        struct Case: Decodable { let name: String; let question: String; let greedy: [Int]; let text: String; let input_ids: [Int] }
        let cases: [Case]
    }

    func reference(_ name: String) throws -> Reference.Case {
        let ref: Reference = try Fixtures.json("smolvlm/smolvlm-tiny.reference.json")
        return try #require(ref.cases.first { $0.name == name })
    }

    @Test func askPrintsTransformersAnswer() throws {
        let c = try reference("split")
        let r = try Executables.run(["ask", "--model", model, chelsea, c.question, "--max-tokens", "\(c.greedy.count)"])
        #expect(r.status == 0, "\(r.stderr)")
        let printed = r.stdout.hasSuffix("\n") ? String(r.stdout.dropLast()) : r.stdout
        #expect(!printed.isEmpty && c.text.hasPrefix(printed), "\(printed)")
        #expect(r.stderr.contains("tokens/s"))
    }

    @Test func chatTakesSeveralImagesInOneTurn() throws {
        let c = try reference("two-images")
        let r = try Executables.run(["chat", "--model", model, "--image", chelsea, "--image", astronaut,
                                     "--max-tokens", "\(c.greedy.count)"], stdin: Data("\(c.question)\n/quit\n".utf8))
        #expect(r.status == 0, "\(r.stderr)")
        let printed = r.stdout.trimmingCharacters(in: .newlines)
        #expect(!printed.isEmpty && c.text.hasPrefix(printed), "\(printed)")
        // The prompt held both images' tiles: its token count is the reference's.
        #expect(r.stderr.contains("[\(c.input_ids.count) prompt tokens"), "\(r.stderr)")
    }

    @Test func maxImageEdgeCutsTilesAndBadValuesAreRefused() throws {
        let capped = try Executables.run(["ask", "--model", model, chelsea, "what?", "--max-tokens", "2", "--max-image-edge", "32"])
        #expect(capped.status == 0, "\(capped.stderr)")
        let bad = try Executables.run(["ask", "--model", model, chelsea, "what?", "--max-image-edge", "0"])
        #expect(bad.status == 1 && bad.stderr.hasPrefix("error: ") && bad.stderr.contains("--max-image-edge"), "\(bad.stderr)")
        let twice = try Executables.run(["ask", "--model", model, chelsea, "compare <image> and this"])
        #expect(twice.status == 1 && twice.stderr.contains("2 image token(s)") && twice.stderr.contains("1 image(s)"), "\(twice.stderr)")
    }
}
