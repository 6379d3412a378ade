/// Reads a generated caption back into the claim it makes, so a caption can be scored by its meaning ("every
/// object's attributes right, nothing extra") instead of by string equality with one reference wording.
/// Accepts the canonical grammar `SceneClaim.text` writes: "two red circles and a small blue square",
/// "a red circle left of a blue square"; anything else is unparseable (and so scored wrong).
public enum SceneCaptionParser {
    public static func parse(_ text: String) -> SceneClaim? {
        let words = text.lowercased().replacingOccurrences(of: ",", with: " ").replacingOccurrences(of: ".", with: " ")
            .split(whereSeparator: { $0.isWhitespace }).map(String.init)
        guard !words.isEmpty else { return nil }
        for relation in SceneRelation.allCases {
            let r = relation.rawValue.split(separator: " ").map(String.init)
            for start in words.indices where start + r.count <= words.count && Array(words[start ..< start + r.count]) == r {
                guard let subject = description(words[..<start]), let object = description(words[(start + r.count)...]) else { continue }
                return .relation(subject, relation, object)
            }
        }
        var groups: [ObjectGroup] = []
        var rest = words[...]
        while !rest.isEmpty {
            // "A, B and C": the commas are gone, so groups follow each other directly or after "and".
            if !groups.isEmpty, rest.first == "and" { rest = rest.dropFirst() }
            guard let (group, used) = group(rest) else { return nil }
            groups.append(group)
            rest = rest.dropFirst(used)
        }
        return groups.isEmpty ? nil : .exactly(groups)
    }

    /// True when the caption parses, its claim holds, and it accounts for every object (a relation caption
    /// must be about a two-object scene; an `exactly` claim covers every object by definition).
    public static func isFaithful(_ text: String, objects: [SceneObject]) -> Bool {
        guard let claim = parse(text), claim.evaluate(objects) == .true else { return false }
        if case .relation = claim { return objects.count == 2 }
        return true
    }

    /// "a [size] colour shape" (article required).
    static func description(_ words: ArraySlice<String>) -> ObjectDescription? {
        guard let (group, used) = group(words), used == words.count, group.count == 1 else { return nil }
        return ObjectDescription(size: group.size, colour: group.colour, shape: group.shape)
    }

    /// "a|an|two|three|four [size] colour shape(s)": the group and how many words it used.
    static func group(_ words: ArraySlice<String>) -> (ObjectGroup, Int)? {
        var i = words.startIndex
        guard i < words.endIndex else { return nil }
        let count: Int
        if words[i] == "a" || words[i] == "an" {
            count = 1
        } else if let n = SceneVocabulary.countWords.firstIndex(of: words[i]), n >= 2 {
            count = n
        } else {
            return nil
        }
        i += 1
        var size: ObjectSize?
        if i < words.endIndex, let s = ObjectSize(rawValue: words[i]) {
            size = s
            i += 1
        }
        guard i + 1 < words.endIndex, let colour = SceneColour(rawValue: words[i]) else { return nil }
        let noun = words[i + 1]
        guard let shape = SceneShape.allCases.first(where: { (count == 1 ? $0.rawValue : $0.plural) == noun }) else { return nil }
        return (ObjectGroup(count: count, colour: colour, shape: shape, size: size), i + 2 - words.startIndex)
    }
}
