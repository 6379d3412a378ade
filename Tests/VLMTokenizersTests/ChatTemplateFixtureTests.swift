import Foundation
import Testing
import VLMTestSupport

@testable import VLMTokenizers

/// Reference renderings produced by Scripts/fixtures/chat_template_fixtures.py with transformers.
enum ChatTemplateFixtures {
    static func load(_ name: String) throws -> JinjaObject {
        let value = try JinjaValue(jsonData: Data(contentsOf: Fixtures.url("chat_templates/\(name)")))
        guard case .object(let o) = value else { throw ChatTemplateError.runtime("fixture \(name) is not an object") }
        return o
    }

    /// The fixture script pins `strftime_now` to 2024-09-05 10:30 local time.
    static var fixedNow: Date {
        var components = DateComponents()
        (components.year, components.month, components.day, components.hour, components.minute) = (2024, 9, 5, 10, 30)
        return Calendar(identifier: .gregorian).date(from: components) ?? Date(timeIntervalSince1970: 0)
    }

    static func string(_ o: JinjaObject, _ key: String) -> String? { o[key]?.stringValue }

    /// Checks a thrown error against the Python exception recorded in the fixture.
    static func matches(_ error: Error, type: String, message: String) -> Bool {
        guard let e = error as? ChatTemplateError else { return false }
        switch e {
        case .raised(let m): return type == "TemplateError" && m == message
        case .runtime(let m), .limitExceeded(let m): return type != "TemplateError" && m.contains(message)
        case .syntax: return type == "TemplateSyntaxError"
        case .notFound: return false
        }
    }
}

extension ChatTemplateTests {
@Suite struct Fixtures {
    /// Every family case renders byte-identical to transformers, through `render` and `apply`.
    @Test func familiesMatchTransformers() throws {
        let fixture = try ChatTemplateFixtures.load("families.json")
        guard case .object(let templates)? = fixture["templates"], case .array(let cases)? = fixture["cases"] else {
            Issue.record("malformed families.json")
            return
        }
        var compiled: [String: ChatTemplate] = [:]
        var checked = 0
        for case .object(let c) in cases {
            let family = ChatTemplateFixtures.string(c, "template") ?? ""
            let name = "\(family)/\(ChatTemplateFixtures.string(c, "name") ?? "")/agp=\(c["add_generation_prompt"]?.isTruthy ?? false)"
            guard case .object(let info)? = templates[family], let source = info["source"]?.stringValue else {
                Issue.record("\(name): unknown template")
                continue
            }
            if compiled[family] == nil {
                var template = try ChatTemplate(source)
                template.now = { ChatTemplateFixtures.fixedNow }
                compiled[family] = template
            }
            guard let template = compiled[family] else { continue }
            let agp = c["add_generation_prompt"]?.isTruthy ?? false
            let bos = info["bos_token"]?.stringValue
            let eos = info["eos_token"]?.stringValue
            var extra: [String: JinjaValue] = [:]
            if case .object(let e)? = c["extra"] { for (k, v) in e.pairs { extra[k] = v } }
            if let tools = c["tools"] { extra["tools"] = tools }

            // The exact variables transformers' render_jinja_template passes.
            var context: [String: JinjaValue] = ["messages": ChatTemplate.aliasReasoningFields(c["messages"] ?? .none), "tools": .none, "documents": .none,
                "add_generation_prompt": .bool(agp)]
            if let bos { context["bos_token"] = .string(bos) }
            if let eos { context["eos_token"] = .string(eos) }
            for (k, v) in extra { context[k] = v }

            // The public API, when the messages are chat messages.
            var messages: [ChatMessage]? = nil
            if case .array(let items)? = c["messages"] { messages = try? items.map { try ChatMessage($0) } }

            if c["continue_final_message"]?.isTruthy ?? false {
                // Only reachable through apply(), as in transformers.
                guard let messages else {
                    Issue.record("\(name): continue_final_message case without chat messages")
                    continue
                }
                do {
                    let applied = try template.apply(
                        messages: messages, addGenerationPrompt: agp, bosToken: bos, eosToken: eos, extra: extra, continueFinalMessage: true)
                    #expect(applied == c["expected"]?.stringValue, "\(name) continue_final_message")
                } catch {
                    #expect(c["error"] != nil, "\(name): unexpected \(error)")
                }
            } else if let expected = c["expected"]?.stringValue {
                let rendered = try template.render(context)
                #expect(rendered == expected, "\(name)")
                if let messages {
                    let applied = try template.apply(messages: messages, addGenerationPrompt: agp, bosToken: bos, eosToken: eos, extra: extra)
                    #expect(applied == expected, "\(name) via apply()")
                }
            } else {
                let type = ChatTemplateFixtures.string(c, "error_type") ?? ""
                let message = ChatTemplateFixtures.string(c, "error") ?? ""
                do {
                    let rendered = try template.render(context)
                    Issue.record("\(name): expected error \(type): \(message), rendered \(rendered.debugDescription)")
                } catch {
                    #expect(ChatTemplateFixtures.matches(error, type: type, message: message), "\(name): got \(error), expected \(type): \(message)")
                }
            }
            checked += 1
        }
        #expect(checked >= 550)
    }

    /// Small templates probing one jinja2 rule each, rendered by jinja2 with transformers' settings.
    @Test func interpreterProbesMatchJinja2() throws {
        let fixture = try ChatTemplateFixtures.load("interpreter.json")
        guard case .array(let cases)? = fixture["cases"] else {
            Issue.record("malformed interpreter.json")
            return
        }
        #expect(cases.count >= 450)
        for case .object(let c) in cases {
            let name = ChatTemplateFixtures.string(c, "name") ?? ""
            let source = ChatTemplateFixtures.string(c, "template") ?? ""
            var context: [String: JinjaValue] = [:]
            if case .object(let o)? = c["context"] { for (k, v) in o.pairs { context[k] = v } }
            let expected = c["expected"]?.stringValue
            let type = ChatTemplateFixtures.string(c, "error_type") ?? ""
            let message = ChatTemplateFixtures.string(c, "error") ?? ""
            do {
                var template = try ChatTemplate(source)
                template.now = { ChatTemplateFixtures.fixedNow }
                let rendered = try template.render(context)
                if let expected {
                    #expect(rendered == expected, "\(name)")
                } else {
                    Issue.record("\(name): expected error \(type): \(message), rendered \(rendered.debugDescription)")
                }
            } catch let error as ChatTemplateError {
                if expected != nil {
                    Issue.record("\(name): unexpected error \(error)")
                } else if case .syntax(let line, _, _) = error {
                    #expect(type == "TemplateSyntaxError", "\(name): \(error)")
                    if let pythonLine = c["error_line"]?.integerValue { #expect(line == pythonLine, "\(name): \(error)") }
                } else {
                    #expect(ChatTemplateFixtures.matches(error, type: type, message: message), "\(name): got \(error), expected \(type): \(message)")
                }
            }
        }
    }
}
}
