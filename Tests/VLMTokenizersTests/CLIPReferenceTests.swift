import Foundation
import Testing
import VLMTestSupport
@testable import VLMTokenizers

/// Ids, truncation, padding and decoding against transformers' CLIPTokenizer on the adversarial corpus.
@Suite struct CLIPReferenceTests {
    enum Layout: String, CaseIterable, Sendable { case tokenizerJSON, vocabMerges }

    func tokenizer(_ layout: Layout) throws -> PretrainedTokenizer {
        switch layout {
        case .tokenizerJSON: return try Shared.fromJSON.get()
        case .vocabMerges: return try Shared.fromVocabMerges.get()
        }
    }

    @Test(arguments: Layout.allCases)
    func corpusIDs(layout: Layout) throws {
        let ref = try Shared.reference.get()
        let tok = try tokenizer(layout)
        #expect(ref.cases.count > 50)
        for c in ref.cases {
            let expected = layout == .vocabMerges ? (c.ids_vocab_merges ?? c.ids) : c.ids
            let ids = try tok.encode(c.text, addSpecialTokens: true)
            #expect(ids == expected, "\(layout) case \(c.name): \(c.text.debugDescription)")
            let plain = try tok.encode(c.text, addSpecialTokens: false)
            if layout == .tokenizerJSON || c.ids_vocab_merges == nil {
                #expect(plain == c.ids_no_special, "\(layout) case \(c.name) without special tokens")
            }
        }
    }

    @Test(arguments: Layout.allCases)
    func truncationKeepsBOSAndEOS(layout: Layout) throws {
        let ref = try Shared.reference.get()
        let tok = try tokenizer(layout)
        for c in ref.cases {
            let expected = layout == .vocabMerges ? (c.ids_truncated_vocab_merges ?? c.ids_truncated) : c.ids_truncated
            let ids = try tok.encode(c.text, maxLength: ref.model_max_length)
            #expect(ids == expected, "\(layout) truncated case \(c.name)")
            #expect(ids.count <= 77 && ids.first == ref.bos_token_id && ids.last == ref.eos_token_id)
        }
        // The corpus has texts beyond 77 tokens, so truncation is exercised.
        #expect(ref.cases.contains { $0.ids.count > 77 })
    }

    @Test func bothLoadingPathsAgreeInTheReference() throws {
        // transformers itself: tokenizer.json vs vocab.json + merges.txt, and the raw tokenizers backend.
        let ref = try Shared.reference.get()
        for c in ref.cases {
            #expect(!c.divergent_loading_paths, "transformers' two loading paths disagree on \(c.name)")
            #expect(c.ids_raw_tokenizer_json == nil, "raw tokenizers disagrees with transformers on \(c.name)")
        }
    }

    @Test func batchPadding() throws {
        let ref = try Shared.reference.get()
        for b in ref.batches {
            let tok = try tokenizer(b.layout == "vocab_merges" ? .vocabMerges : .tokenizerJSON)
            let padding: Padding
            switch b.padding {
            case "max_length": padding = .maxLength(b.max_length ?? 77)
            default: padding = .longest
            }
            let batch = try tok.encodeBatch(b.texts, maxLength: b.max_length, padding: padding)
            #expect(batch.inputIDs == b.input_ids, "\(b.layout) \(b.padding)")
            #expect(batch.attentionMask == b.attention_mask, "\(b.layout) \(b.padding) mask")
        }
        let tok = try tokenizer(.tokenizerJSON)
        let unpadded = try tok.encodeBatch(["a photo of a cat", ""], maxLength: nil, padding: .none)
        #expect(unpadded.inputIDs.map(\.count) == [7, 2])
        #expect(unpadded.attentionMask == [[1, 1, 1, 1, 1, 1, 1], [1, 1]])
    }

    @Test(arguments: Layout.allCases)
    func decode(layout: Layout) throws {
        let ref = try Shared.reference.get()
        let tok = try tokenizer(layout)
        for c in ref.cases {
            #expect(tok.decode(c.ids, skipSpecialTokens: false) == c.decode, "\(layout) decode \(c.name)")
            #expect(tok.decode(c.ids, skipSpecialTokens: true) == c.decode_skip_special, "\(layout) decode skip \(c.name)")
        }
        for d in ref.decodes {
            #expect(tok.decode(d.ids, skipSpecialTokens: false) == d.decode, "\(layout) decode \(d.ids)")
            #expect(tok.decode(d.ids, skipSpecialTokens: true) == d.decode_skip_special, "\(layout) decode skip \(d.ids)")
        }
    }

    @Test(arguments: Layout.allCases)
    func specialTokensAndSizes(layout: Layout) throws {
        let ref = try Shared.reference.get()
        let tok = try tokenizer(layout)
        #expect(tok.bosTokenID == ref.bos_token_id)
        #expect(tok.eosTokenID == ref.eos_token_id)
        #expect(tok.padTokenID == ref.pad_token_id)
        #expect(tok.vocabularySize == ref.vocab_size)
        #expect(tok.tokenID(for: "<|startoftext|>") == 49406)
        #expect(tok.tokenID(for: "cat</w>") == 2368)
        #expect(tok.tokenID(for: "no such token") == nil)
        #expect(tok.specialTokenCount == 2)
        #expect(TokenizerLoader.modelMaxLength(directory: Shared.clipDirectory) == 77)
        // The quirk transformers 5 produces from the checkpoint-shaped config: bos is matched after
        // normalization (so "<|StartOfText|>" is BOS), eos only verbatim.
        #expect(tok.addedTokens.map(\.normalized) == [true, false])
    }

    @Test func hubStyleTokenizerJSON() throws {
        // The hub's CLIP tokenizer.json (convert_slow_tokenizer) splits without the special-token literals;
        // ByteLevel's GPT-2 regex re-splits them anyway, so the ids must not change.
        let ref = try Shared.reference.get()
        let original = try String(contentsOf: Shared.clipDirectory.appendingPathComponent("tokenizer.json"), encoding: .utf8)
        let withSpecials = #""<\\|startoftext\\|>|<\\|endoftext\\|>|'s"#
        #expect(original.contains(withSpecials))
        let hub = original.replacingOccurrences(of: withSpecials, with: #""'s"#)
        let dir = try Shared.temporaryDirectory("clip-hub")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(hub.utf8).write(to: dir.appendingPathComponent("tokenizer.json"))
        for name in ["tokenizer_config.json", "special_tokens_map.json"] {
            try FileManager.default.copyItem(
                at: Shared.clipDirectory.appendingPathComponent(name), to: dir.appendingPathComponent(name))
        }
        let tok = try TokenizerLoader.loadPretrained(directory: dir)
        let split = (tok.preTokenizer as? SequencePreTokenizer)?.preTokenizers.first as? SplitPreTokenizer
        #expect(split?.pattern as? KnownPattern == .clipNoSpecials)
        for c in ref.cases {
            #expect(try tok.encode(c.text, addSpecialTokens: true) == c.ids, "hub-style \(c.name)")
        }
    }

    @Test func concurrentEncodesAgree() throws {
        let ref = try Shared.reference.get()
        let tok = try tokenizer(.tokenizerJSON)
        let texts = ref.cases.map(\.text)
        let results = UnsafeMutableBufferPointer<[Int]>.allocate(capacity: texts.count * 4)
        results.initialize(repeating: [])
        defer { results.deallocate() }
        DispatchQueue.concurrentPerform(iterations: texts.count * 4) { i in
            results[i] = (try? tok.encode(texts[i % texts.count], addSpecialTokens: true)) ?? [-1]
        }
        for (i, ids) in results.enumerated() {
            #expect(ids == ref.cases[i % texts.count].ids)
        }
    }

    @Test func publicAPIThroughTheExistential() throws {
        let tok: any Tokenizer = try TokenizerLoader.load(directory: Shared.clipDirectory)
        #expect(try tok.encode("a photo of a cat", maxLength: 77) == [49406, 320, 1125, 539, 320, 2368, 49407])
        #expect(try tok.encode("a photo of a cat", maxLength: nil) == [49406, 320, 1125, 539, 320, 2368, 49407])
        #expect(try tok.encode("a photo of a cat", maxLength: 4) == [49406, 320, 1125, 49407])
        #expect(try tok.encode("a photo of a cat", maxLength: 1) == [49406, 49407])
        #expect(tok.decode([49406, 320, 1125, 49407], skipSpecialTokens: true) == "a photo")
    }

    @Test func longInputIsLinear() throws {
        let tok = try tokenizer(.tokenizerJSON)
        // 50k chars of one unbroken letter run plus 15k words of prose: quadratic BPE, splitting or string
        // building would take minutes here; the heap-based merge takes a fraction of a second even in debug.
        let word = String(repeating: "abcdefghij", count: 5_000)
        let prose = String(repeating: "A photograph of an astronaut riding a horse. ", count: 2_000)
        let clock = ContinuousClock()
        let elapsed = try clock.measure {
            _ = try tok.encode(word, addSpecialTokens: true)
            _ = try tok.encode(prose, addSpecialTokens: true)
        }
        #expect(elapsed < .seconds(20), "long-text encode took \(elapsed)")
    }
}
