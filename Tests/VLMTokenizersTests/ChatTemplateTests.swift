import Foundation
import Testing

@testable import VLMTokenizers

/// Unit tests of the Jinja interpreter. Expected strings were produced by jinja2 3.1.6 through
/// transformers' `_compile_jinja_template` (trim_blocks, lstrip_blocks, sandbox).
@Suite struct ChatTemplateTests {
    func render(_ source: String, _ context: [String: JinjaValue] = [:]) throws -> String {
        try ChatTemplate(source).render(context)
    }

    @Test func trimBlocksDropsTheNewlineAfterATag() throws {
        #expect(try render("{% for m in ms %}\n{{ m }}\n{% endfor %}", ["ms": ["a", "b"]]) == "a\nb\n")
    }

    @Test func minusStripsAllWhitespaceAcrossLines() throws {
        #expect(try render("x \n {%- if true -%} \n y \n {%- endif -%} \n z") == "xyz")
    }

    @Test func lstripBlocksOnlyStripsBeforeBlockTags() throws {
        #expect(try render("  {% if true %}x{% endif %}\n  {{ 'v' }}") == "x  v")
    }

    @Test func loopVariables() throws {
        let out = try render("{% for x in [10,20,30] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}|{% endfor %}")
        #expect(out == "10TrueFalse33|21FalseFalse32|32FalseTrue31|")
    }

    @Test func namespaceSurvivesLoopScopes() throws {
        let source = "{% set ns = namespace(n=0) %}{% for m in ms %}{% if m != 'x' %}{% set ns.n = ns.n + 1 %}{% endif %}{% endfor %}{{ ns.n }}"
        #expect(try render(source, ["ms": ["a", "x", "b"]]) == "2")
    }

    @Test func slicing() throws {
        #expect(try render("{{ ms[1:] }}|{{ ms[::-1] }}|{{ ms[-1] }}|{{ 'abcdef'[1:-1:2] }}", ["ms": ["a", "x", "b"]])
            == "['x', 'b']|['b', 'x', 'a']|b|bd")
    }

    @Test func tojsonKeepsKeyOrderAndUnicode() throws {
        let tool: JinjaValue = ["name": "f", "d": "café ✓", "p": ["n": 1, "x": 1.5, "b": true, "z": nil, "l": []]]
        let out = try render("{{ t|tojson }}\n{{ t|tojson(indent=2) }}", ["t": tool])
        #expect(out == """
            {"name": "f", "d": "café ✓", "p": {"n": 1, "x": 1.5, "b": true, "z": null, "l": []}}
            {
              "name": "f",
              "d": "café ✓",
              "p": {
                "n": 1,
                "x": 1.5,
                "b": true,
                "z": null,
                "l": []
              }
            }
            """)
    }

    @Test func selectAndMapFilters() throws {
        let parts: JinjaValue = [["type": "image"], ["type": "text", "text": "a"], ["type": "text", "text": "b"]]
        let source = "{{ parts|selectattr('type', 'equalto', 'text')|map(attribute='text')|join(' ') }}|{{ parts|rejectattr('type', 'equalto', 'text')|list|length }}"
        #expect(try render(source, ["parts": parts]) == "a b|1")
    }

    @Test func testsAndDictMethods() throws {
        #expect(try render("{{ 'x' if m is string else m|length }} {{ m|first }}", ["m": ["p", "q"]]) == "2 p")
        let source = "{% if m.content is string %}S{% elif m.content is iterable %}I{% endif %}{{ m.missing is defined }}{{ m.get('role', 'r') }}"
        #expect(try render(source, ["m": ["content": [1]]]) == "IFalser")
    }

    @Test func raiseExceptionCarriesTheTemplateMessage() throws {
        #expect(throws: ChatTemplateError.raised("Conversation roles must alternate")) {
            try render("{{ raise_exception('Conversation roles must alternate') }}")
        }
    }

    @Test func undefinedPrintsEmptyButFailsWhenUsed() throws {
        #expect(try render("[{{ missing }}]") == "[]")
        do {
            _ = try render("{{ missing.attr }}")
            Issue.record("expected an error")
        } catch ChatTemplateError.runtime(let message) {
            #expect(message.contains("'missing' is undefined"))
        }
    }

    @Test func syntaxErrorsNameLineAndColumn() throws {
        do {
            _ = try ChatTemplate("line one\n  {% if %}x{% endif %}")
            Issue.record("expected a syntax error")
        } catch ChatTemplateError.syntax(let line, let column, _) {
            #expect(line == 2)
            #expect(column == 9)
        }
        do {
            _ = try ChatTemplate("ok\n\n{{ 'unterminated }}")
            Issue.record("expected a syntax error")
        } catch ChatTemplateError.syntax(let line, let column, _) {
            #expect(line == 3)
            #expect(column == 4)
        }
    }

    @Test func runawayTemplatesHitLimitsQuickly() throws {
        // 10^10 iterations: stopped by the iteration budget (lowered here to keep the test fast).
        var nested = try ChatTemplate("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")
        nested.limits.maxLoopIterations = 20_000
        #expect(throws: ChatTemplateError.limitExceeded("more than 20000 loop iterations")) { try nested.render([:]) }
        #expect(throws: ChatTemplateError.self) { try render("{% for i in range(10000000) %}{% endfor %}") }
        #expect(throws: ChatTemplateError.self) { try render("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}") }
        #expect(throws: ChatTemplateError.self) { try render("{{ 'x' * 100000000000 }}") }
        var small = try ChatTemplate("{% for i in range(1000) %}{{ 'abcdefghij' }}{% endfor %}")
        small.limits.maxOutputBytes = 5000
        #expect(throws: ChatTemplateError.self) { try small.render([:]) }
    }

    @Test func pathologicalNestingIsASyntaxErrorNotACrash() throws {
        let deep = String(repeating: "(", count: 10_000) + "1" + String(repeating: ")", count: 10_000)
        #expect(throws: ChatTemplateError.self) { try ChatTemplate("{{ \(deep) }}") }
        #expect(throws: ChatTemplateError.self) { try ChatTemplate("{{ " + String(repeating: "not ", count: 5000) + "x }}") }
        #expect(throws: ChatTemplateError.self) { try ChatTemplate(String(repeating: "{% if x %}", count: 5000)) }
        let fine = String(repeating: "(", count: 40) + "1" + String(repeating: ")", count: 40)
        #expect(try render("{{ \(fine) }}") == "1")
    }

    @Test func deepButLegalTemplatesRenderOnACooperativeThread() async throws {
        // 120 chained additions and a macro recursing to the call-depth limit, off the main thread.
        let chain = "{{ " + Array(repeating: "1", count: 120).joined(separator: " + ") + " }}"
        let recursive = "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{% else %}bottom{% endif %}{% endmacro %}{{ f(99) }}"
        let results = try await Task.detached { [chain, recursive] in
            (try ChatTemplate(chain).render([:]), try ChatTemplate(recursive).render([:]))
        }.value
        #expect(results.0 == "120")
        #expect(results.1 == "bottom")
        #expect(throws: ChatTemplateError.self) {
            try ChatTemplate("{{ " + Array(repeating: "1", count: 1000).joined(separator: " + ") + " }}")
        }
    }

    @Test func concurrentRendersShareOneTemplate() async throws {
        let template = try ChatTemplate("{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}")
        let outputs = try await withThrowingTaskGroup(of: String.self) { group in
            for i in 0..<8 {
                group.addTask {
                    try template.apply(messages: [ChatMessage(role: "user", text: "\(i)")], addGenerationPrompt: false, bosToken: nil, eosToken: nil)
                }
            }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(outputs == Set((0..<8).map { "user:\($0);" }))
    }

    @Test func pythonFloatRepr() {
        let cases: [(Double, String)] = [
            (1e16, "1e+16"), (123456789.0, "123456789.0"), (1e-5, "1e-05"), (0.0001, "0.0001"), (1.5e300, "1.5e+300"),
            (5e15, "5000000000000000.0"), (-0.5, "-0.5"), (1.0 / 3.0, "0.3333333333333333"), (2.5e-7, "2.5e-07"),
            (100.0, "100.0"), (0.1 + 0.2, "0.30000000000000004"), (-0.0, "-0.0"), (9999999999999998.0, "9999999999999998.0"), (1.2345678901234567e15, "1234567890123456.8"),
        ]
        for (value, expected) in cases { #expect(JinjaPython.floatRepr(value) == expected, "\(value)") }
    }

    @Test func orderedJSONKeepsKeysAndNumberKinds() throws {
        let value = try JinjaValue(json: #"{"z": 1, "a": [1.0, 2e3, -3], "m": {"\u00e9\ud83d\ude00": null}}"#)
        #expect(JinjaPython.repr(value) == "{'z': 1, 'a': [1.0, 2000.0, -3], 'm': {'é😀': None}}")
    }

    @Test func strftimeNowUsesTheTemplateClock() throws {
        var template = try ChatTemplate("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%A %B %-d %H:%M') }}")
        template.now = { ChatTemplateFixtures.fixedNow }
        #expect(try template.render([:]) == "05 Sep 2024|Thursday September 5 10:30")
    }

    @Test func applyWithMultimodalParts() throws {
        let llava = try ChatTemplate(
            "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}{% endfor %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
        )
        let messages = [ChatMessage(role: "user", parts: [.image, .text("What is this?")])]
        let out = try llava.apply(messages: messages, addGenerationPrompt: true, bosToken: "<s>", eosToken: "</s>")
        #expect(out == "USER: <image>\nWhat is this? ASSISTANT:")
    }

    @Test func chatMessageDecodesFromJSON() throws {
        let json = #"[{"role": "user", "content": "hi"}, {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "x"}]}]"#
        let messages = try JSONDecoder().decode([ChatMessage].self, from: Data(json.utf8))
        #expect(messages[0].content == .text("hi"))
        #expect(messages[1].content == .parts([.image, .text("x")]))
    }
}
