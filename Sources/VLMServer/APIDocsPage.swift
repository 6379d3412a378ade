import Foundation

/// `GET /docs`: the OpenAPI document rendered on the server as one self-contained HTML page (no scripts, no
/// external resources: the server may run where nothing can be fetched): every route with its parameters,
/// request body, responses and guard, then every schema.
enum APIDocsPage {
    static func html(_ document: JSONObject) -> String {
        let info = document["info"] as? JSONObject ?? [:]
        let paths = document["paths"] as? [String: JSONObject] ?? [:]
        let components = document["components"] as? JSONObject ?? [:]
        let schemas = components["schemas"] as? [String: JSONObject] ?? [:]
        let responses = components["responses"] as? [String: JSONObject] ?? [:]
        var out = """
        <!doctype html><html lang="en"><head><meta charset="utf-8"><title>\(escape(info["title"] as? String ?? "API"))</title>
        <style>body{font:15px/1.45 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}
        h2{border-bottom:1px solid #ccc;margin-top:2em}.op{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin:1em 0}
        .m{font-weight:bold;text-transform:uppercase;display:inline-block;min-width:4.5em}.get{color:#07a}.post{color:#080}.delete{color:#b00}
        code,pre{font-family:ui-monospace,monospace;font-size:13px}pre{background:#f6f6f6;padding:.6em;overflow:auto}
        table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}
        .lock{color:#a60}</style></head><body>
        <h1>\(escape(info["title"] as? String ?? "API"))</h1><p>\(escape(info["description"] as? String ?? ""))</p>
        <p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI \(escape(document["openapi"] as? String ?? ""))).</p>
        <h2>Routes</h2>

        """
        for path in paths.keys.sorted() {
            let item = paths[path] ?? [:]
            for method in ["get", "post", "delete"] {
                guard let op = item[method] as? JSONObject else { continue }
                out += operation(method: method, path: path, op, responses: responses)
            }
        }
        out += "<h2>Schemas</h2>\n"
        for name in schemas.keys.sorted() {
            out += "<h3 id=\"schema-\(escape(name))\">\(escape(name))</h3><pre>\(escape(pretty(schemas[name] ?? [:])))</pre>\n"
        }
        return out + "</body></html>\n"
    }

    static func operation(method: String, path: String, _ op: JSONObject, responses shared: [String: JSONObject]) -> String {
        var out = "<div class=\"op\"><p><span class=\"m \(method)\">\(method)</span> <code>\(escape(path))</code> — \(escape(op["summary"] as? String ?? ""))"
        if op["security"] != nil { out += " <span class=\"lock\">(needs <code>Authorization: Bearer &lt;key&gt;</code>)</span>" }
        out += "</p>"
        if let d = op["description"] as? String { out += "<p>\(escape(d))</p>" }
        if let params = op["parameters"] as? [JSONObject] {
            out += "<p>Parameters:</p><table><tr><th>name</th><th>in</th><th>schema</th><th></th></tr>"
            for p in params {
                out += "<tr><td><code>\(escape(p["name"] as? String ?? ""))</code></td><td>\(escape(p["in"] as? String ?? ""))</td>"
                out += "<td><code>\(escape(pretty(p["schema"] as? JSONObject ?? [:], compact: true)))</code></td><td>\(escape(p["description"] as? String ?? ""))</td></tr>"
            }
            out += "</table>"
        }
        if let body = op["requestBody"] as? JSONObject, let content = body["content"] as? [String: JSONObject] {
            for (type, media) in content.sorted(by: { $0.key < $1.key }) {
                out += "<p>Request body (<code>\(escape(type))</code>): \(schemaLink(media["schema"] as? JSONObject))</p>"
                if let example = media["example"] as? JSONObject { out += "<p>Example:</p><pre>\(escape(pretty(example)))</pre>" }
            }
        }
        out += "<table><tr><th>status</th><th>meaning</th><th>body</th></tr>"
        let responses = op["responses"] as? [String: JSONObject] ?? [:]
        for code in responses.keys.sorted() {
            var response = responses[code] ?? [:]
            if let ref = response["$ref"] as? String, let resolved = shared[String(ref.split(separator: "/").last ?? "")] { response = resolved }
            let content = response["content"] as? [String: JSONObject] ?? [:]
            let bodies = content.sorted(by: { $0.key < $1.key }).map { "<code>\(escape($0.key))</code> \(schemaLink($0.value["schema"] as? JSONObject))" }
            out += "<tr><td>\(escape(code))</td><td>\(escape(response["description"] as? String ?? ""))</td><td>\(bodies.joined(separator: "<br>"))</td></tr>"
        }
        return out + "</table></div>\n"
    }

    static func schemaLink(_ schema: JSONObject?) -> String {
        guard let schema else { return "" }
        if let ref = schema["$ref"] as? String, let name = ref.split(separator: "/").last {
            return "<a href=\"#schema-\(escape(String(name)))\">\(escape(String(name)))</a>"
        }
        return "<code>\(escape(pretty(schema, compact: true)))</code>"
    }

    static func pretty(_ value: JSONObject, compact: Bool = false) -> String {
        let options: JSONSerialization.WritingOptions = compact ? [.sortedKeys, .withoutEscapingSlashes] : [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: options) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}
