import Foundation
import Testing
import VLMTestSupport

/// `vlm ask / caption / chat` as a user runs them, on the tiny llava-hf checkpoint (Tests/Fixtures/llava/llava-chat).
@Suite(.serialized) struct GenerateCLITests {
    let model = Fixtures.url("llava/llava-chat").path
    let image = Fixtures.url("clip/images/chelsea.jpg").path

    struct Reference: Decodable {
        struct Case: Decodable { let question: String; let greedy: [Int]; let text: String }
        let cases: [Case]
    }

    @Test func askPrintsTheAnswerAloneOnStdout() throws {
        let ref: Reference = try Fixtures.json("llava/llava-chat.reference.json")
        let c = ref.cases[0]
        // The tiny checkpoint's EOS may come up before the reference's forced length; --stop-free greedy with
        // max tokens equal to the reference answers the same prefix.
        let r = try Executables.run(["ask", "--model", model, image, c.question, "--max-tokens", "\(c.greedy.count)"])
        #expect(r.status == 0, "\(r.stderr)")
        let printed = r.stdout.hasSuffix("\n") ? String(r.stdout.dropLast()) : r.stdout
        #expect(c.text.hasPrefix(printed) && !printed.isEmpty)
        #expect(r.stderr.contains("tokens/s"))
    }

    @Test func chatKeepsTurnsAndSurvivesBadImages() throws {
        let input = "hello\n/image /nonexistent.png\n/image \(image)\nwhat is it?\n/quit\n"
        let r = try Executables.run(["chat", "--model", model, "--max-tokens", "4"], stdin: Data(input.utf8))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("/nonexistent.png"))
        #expect(r.stderr.components(separatedBy: "tokens/s decode").count == 3)  // two answered turns
    }

    @Test func generativeCommandsRefuseWrongModelsAndInputs() throws {
        let clip = Fixtures.url("clip/tiny-a").path
        let wrong = try Executables.run(["ask", "--model", clip, image, "what?"])
        #expect(wrong.status == 1 && wrong.stderr.hasPrefix("error: ") && wrong.stderr.contains("model_type"))
        let missing = try Executables.run(["caption", "--model", model, "/nonexistent/cat.jpg"])
        #expect(missing.status == 1 && missing.stderr.contains("/nonexistent/cat.jpg"))
        let badTopP = try Executables.run(["ask", "--model", model, image, "q", "--top-p", "2"])
        #expect(badTopP.status == 1 && badTopP.stderr.contains("top-p"))
    }
}

/// Issue 5 part 10 from the command line: exit code 1 and one line naming the problem.
@Suite(.serialized) struct GenerateCLIErrorTests {
    let model = Fixtures.url("llava/llava-chat").path
    let image = Fixtures.url("clip/images/chelsea.jpg").path

    func expectOneLineError(_ r: Executables.Result, _ words: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 1, "\(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.hasPrefix("error: ") && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)", sourceLocation: sourceLocation)
        for w in words { #expect(r.stderr.contains(w), "\(r.stderr)", sourceLocation: sourceLocation) }
        #expect(r.stdout.isEmpty, sourceLocation: sourceLocation)
    }

    @Test func imageTokenCountMismatch() throws {
        expectOneLineError(try Executables.run(["ask", "--model", model, image, "what is <image>?"]),
                           ["2 image token(s) '<image>' (id 556) but 1 image(s)"])
    }

    @Test func promptLongerThanContext() throws {
        let long = Array(repeating: "hello world", count: 200).joined(separator: " ")
        expectOneLineError(try Executables.run(["ask", "--model", model, image, long]), ["16 of them image tokens", "context is 256 tokens"])
    }

    @Test func tokenizerWithoutImageToken() throws {
        let dir = try GenerativeFixtures.withoutImageToken()
        expectOneLineError(try Executables.run(["caption", "--model", dir.path, image]), ["no token for image_token_index 556"])
    }

    @Test func imageForTextOnlyModelAndTemplateRefusals() throws {
        let dir = try GenerativeFixtures.textOnly()
        expectOneLineError(try Executables.run(["ask", "--model", dir.path, image, "what?"]), ["text-only"])
        // `vlm chat` keeps the session after a refused turn (one line on stderr), and text-only chat works.
        let r = try Executables.run(["chat", "--model", dir.path, "--max-tokens", "3"], stdin: Data("hello\n/quit\n".utf8))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("tokens/s decode"))
    }
}

/// `--precision` from the command line: int8 keeps the tiny checkpoint's greedy answer (its quantization noise
/// is far below this fixture's logit margins, checked at the model level in WeightStorageTests), int4 runs,
/// and a precision an embedding model cannot run is one clear line.
@Suite(.serialized) struct PrecisionCLITests {
    let model = Fixtures.url("llava/llava-chat").path
    let image = Fixtures.url("clip/images/chelsea.jpg").path

    @Test func generativePrecisionsRunAndEmbeddingModelsRefuseThem() throws {
        let fp32 = try Executables.run(["ask", "--model", model, image, "what?", "--max-tokens", "4", "--precision", "fp32"])
        let int8 = try Executables.run(["ask", "--model", model, image, "what?", "--max-tokens", "4", "--precision", "int8"])
        let int4 = try Executables.run(["ask", "--model", model, image, "what?", "--max-tokens", "4", "--precision", "int4"])
        #expect(fp32.status == 0 && int8.status == 0 && int4.status == 0, "\(fp32.stderr) \(int8.stderr) \(int4.stderr)")
        #expect(int8.stdout == fp32.stdout && !fp32.stdout.isEmpty)
        let clip = Fixtures.url("clip/tiny-a").path
        // Embedding models take --precision too (both towers' weights): int8 vectors close to fp32's.
        let exact = try Executables.run(["embed", "--model", clip, "--text", "a cat", "--format", "json"])
        let reduced = try Executables.run(["embed", "--model", clip, "--precision", "int8", "--text", "a cat", "--format", "json"])
        #expect(exact.status == 0 && reduced.status == 0, "\(exact.stderr) \(reduced.stderr)")
        func vector(_ out: String) -> [Float] {
            let rows = (try? JSONSerialization.jsonObject(with: Data(out.utf8))) as? [[String: Any]]
            return (rows?.first?["embedding"] as? [Double])?.map(Float.init) ?? []
        }
        let (a, b) = (vector(exact.stdout), vector(reduced.stdout))
        #expect(!a.isEmpty && a.count == b.count && a != b, "\(exact.stdout) \(reduced.stdout)")
        #expect(zip(a, b).reduce(Float(0)) { $0 + $1.0 * $1.1 } > 0.999)
        let unknown = try Executables.run(["ask", "--model", model, image, "q", "--precision", "int2"])
        #expect(unknown.status != 0 && unknown.stderr.contains("precision"))
    }
}
