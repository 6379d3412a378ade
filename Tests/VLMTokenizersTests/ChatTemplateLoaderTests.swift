import Foundation
import VLMTestSupport
import Testing

@testable import VLMTokenizers

extension ChatTemplateTests {
    /// Template lookup in a checkpoint directory, in transformers 5's order.
    @Suite struct Loader {
        func checkpoint(_ files: [String: String]) throws -> URL {
            let dir = TestScratch.root.appendingPathComponent("chat-template-\(UUID().uuidString)")
            for (path, text) in files {
                let url = dir.appendingPathComponent(path)
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try text.write(to: url, atomically: true, encoding: .utf8)
            }
            return dir
        }

        @Test func jinjaFileWinsOverJSONFiles() throws {
            let dir = try checkpoint([
                "chat_template.jinja": "from jinja",
                "chat_template.json": #"{"chat_template": "from json"}"#,
                "tokenizer_config.json": #"{"chat_template": "from tokenizer"}"#,
            ])
            defer { try? FileManager.default.removeItem(at: dir) }
            #expect(try ChatTemplateLoader.source(in: dir) == "from jinja")
        }

        @Test func processorJSONThenTokenizerConfig() throws {
            let both = try checkpoint([
                "chat_template.json": #"{"chat_template": "{{ 'processor' }}"}"#,
                "tokenizer_config.json": #"{"chat_template": "from tokenizer"}"#,
            ])
            defer { try? FileManager.default.removeItem(at: both) }
            #expect(try ChatTemplateLoader.load(from: both).render([:]) == "processor")

            let tokenizerOnly = try checkpoint(["tokenizer_config.json": #"{"chat_template": "only \u00e9"}"#])
            defer { try? FileManager.default.removeItem(at: tokenizerOnly) }
            #expect(try ChatTemplateLoader.source(in: tokenizerOnly) == "only é")
        }

        @Test func namedTemplatesPickDefaultOrToolUse() throws {
            let dir = try checkpoint([
                "tokenizer_config.json": #"""
                    {"chat_template": [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}, {"name": "rag", "template": "R"}],
                     "bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>"}
                    """#
            ])
            defer { try? FileManager.default.removeItem(at: dir) }
            #expect(try ChatTemplateLoader.source(in: dir) == "D")
            #expect(try ChatTemplateLoader.source(in: dir, withTools: true) == "T")
            #expect(try ChatTemplateLoader.source(in: dir, name: "rag") == "R")
            #expect(throws: ChatTemplateError.self) { try ChatTemplateLoader.source(in: dir, name: "missing") }
            let tokens = try ChatTemplateLoader.specialTokens(in: dir)
            #expect(tokens.bos == "<s>")
            #expect(tokens.eos == "</s>")
        }

        @Test func additionalTemplatesDirectory() throws {
            let dir = try checkpoint([
                "chat_template.jinja": "main",
                "additional_chat_templates/tool_use.jinja": "tools",
            ])
            defer { try? FileManager.default.removeItem(at: dir) }
            #expect(try ChatTemplateLoader.templates(in: dir) == ["default": "main", "tool_use": "tools"])
            #expect(try ChatTemplateLoader.source(in: dir, withTools: true) == "tools")
        }

        @Test func missingOrAmbiguousTemplatesAreErrors() throws {
            let empty = try checkpoint(["tokenizer_config.json": #"{"eos_token": "</s>"}"#])
            defer { try? FileManager.default.removeItem(at: empty) }
            #expect(throws: ChatTemplateError.self) { try ChatTemplateLoader.source(in: empty) }

            let noDefault = try checkpoint(["tokenizer_config.json": #"{"chat_template": [{"name": "a", "template": "A"}]}"#])
            defer { try? FileManager.default.removeItem(at: noDefault) }
            #expect(throws: ChatTemplateError.self) { try ChatTemplateLoader.source(in: noDefault) }
        }
    }
}
