import Foundation
@testable import VLMServer

/// A small JSON Schema checker for the subset /openapi.json uses (type, properties, required, items, enum,
/// anyOf, oneOf, allOf, $ref, nullable, minimum, maximum, minItems, maxItems, pattern, additionalProperties). Returns the
/// violations, each naming the JSON path; empty means the value conforms.
struct SchemaCheck {
    let schemas: [String: JSONObject]

    init(document: JSONObject) {
        schemas = ((document["components"] as? JSONObject)?["schemas"] as? [String: JSONObject]) ?? [:]
    }

    func violations(_ value: Any?, _ schema: JSONObject, at path: String = "$") -> [String] {
        if let ref = schema["$ref"] as? String {
            let name = String(ref.split(separator: "/").last ?? "")
            guard let target = schemas[name] else { return ["\(path): unresolved \(ref)"] }
            return violations(value, target, at: path)
        }
        guard let value, !(value is NSNull) else {
            return schema["nullable"] as? Bool == true ? [] : ["\(path): null where a value is required"]
        }
        var out: [String] = []
        if let all = schema["allOf"] as? [JSONObject] { for s in all { out += violations(value, s, at: path) } }
        if let any = schema["anyOf"] as? [JSONObject], !any.contains(where: { violations(value, $0, at: path).isEmpty }) {
            out.append("\(path): matches none of anyOf")
        }
        if let one = schema["oneOf"] as? [JSONObject] {
            let n = one.filter { violations(value, $0, at: path).isEmpty }.count
            if n != 1 { out.append("\(path): matches \(n) of oneOf (exactly 1 expected)") }
        }
        if let values = schema["enum"] as? [Any], !values.contains(where: { Self.same($0, value) }) {
            out.append("\(path): \(value) not in enum \(values)")
        }
        guard let type = schema["type"] as? String else { return out }
        switch type {
        case "object":
            guard let object = value as? [String: Any] else { return out + ["\(path): not an object"] }
            for key in schema["required"] as? [String] ?? [] where object[key] == nil { out.append("\(path): missing '\(key)'") }
            let properties = schema["properties"] as? [String: JSONObject] ?? [:]
            for (key, v) in object {
                if let p = properties[key] { out += violations(v, p, at: "\(path).\(key)") }
                else if let extra = schema["additionalProperties"] as? JSONObject { out += violations(v, extra, at: "\(path).\(key)") }
            }
        case "array":
            guard let array = value as? [Any] else { return out + ["\(path): not an array"] }
            if let max = schema["maxItems"] as? Int, array.count > max { out.append("\(path): more than \(max) items") }
            if let min = schema["minItems"] as? Int, array.count < min { out.append("\(path): fewer than \(min) items") }
            if let items = schema["items"] as? JSONObject {
                for (i, v) in array.enumerated() { out += violations(v, items, at: "\(path)[\(i)]") }
            }
        case "string":
            guard let string = value as? String else { return out + ["\(path): not a string"] }
            if let pattern = schema["pattern"] as? String, string.range(of: pattern, options: .regularExpression) == nil {
                out.append("\(path): '\(string.prefix(40))' does not match \(pattern)")
            }
        case "boolean":
            if !Self.isBool(value) { out.append("\(path): not a boolean") }
        case "integer", "number":
            guard !Self.isBool(value), let n = value as? NSNumber else { return out + ["\(path): not a number"] }
            let d = n.doubleValue
            if type == "integer", d.rounded() != d { out.append("\(path): \(d) is not an integer") }
            if let min = schema["minimum"] as? Int, d < Double(min) { out.append("\(path): \(d) < \(min)") }
            if let max = schema["maximum"] as? Int, d > Double(max) { out.append("\(path): \(d) > \(max)") }
        default:
            out.append("\(path): unknown schema type \(type)")
        }
        return out
    }

    static func isBool(_ value: Any) -> Bool {
        if let n = value as? NSNumber { return String(cString: n.objCType) == "c" || type(of: value) == Bool.self }
        return value is Bool
    }

    static func same(_ a: Any, _ b: Any) -> Bool {
        if let x = a as? String, let y = b as? String { return x == y }
        if isBool(a) || isBool(b) { return isBool(a) && isBool(b) && (a as? Bool) == (b as? Bool) }
        if let x = a as? NSNumber, let y = b as? NSNumber { return x.doubleValue == y.doubleValue }
        return false
    }
}
