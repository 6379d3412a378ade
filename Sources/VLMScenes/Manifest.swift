import Foundation

/// One line of manifest.jsonl. Field names are snake_case JSON so Python tools read them directly.
public struct ManifestRecord: Codable, Equatable, Sendable {
    public struct Object: Codable, Equatable, Sendable {
        public var shape: String
        public var colour: String
        public var size: String
        /// Centre, normalised 0...1 (origin top-left, y down), rounded to 1e-4.
        public var x: Double
        public var y: Double
        /// Half-side of the bounding square, normalised.
        public var radius: Double
        /// Bounding square in pixels of the written image: [x0, y0, x1, y1].
        public var bbox: [Double]
        public var rgb: [Int]
    }

    public struct NegativeCaption: Codable, Equatable, Sendable {
        public var type: String
        public var caption: String
    }

    public struct RelationFact: Codable, Equatable, Sendable {
        public var subject: Int
        public var relation: String
        public var object: Int
    }

    public struct Heldout: Codable, Equatable, Sendable {
        public var pairs: [String]
        public var triples: [String]
    }

    public var index: Int
    public var file: String
    public var split: String
    public var kind: String
    public var structure: String
    /// Canonical caption (mentions every object).
    public var caption: String
    /// All true captions, canonical first.
    public var captions: [String]
    /// Verified-false edits of the canonical caption, one per applicable type.
    public var negatives: [NegativeCaption]
    /// Zero-shot class ("red circle") of single-object scenes.
    public var label: String?
    public var objects: [Object]
    /// Every strict pairwise relation (indices into objects).
    public var relations: [RelationFact]
    public var questions: [SceneQuestion]
    public var background: Int
    /// Held-out compositions present (empty outside the heldout split).
    public var heldout: Heldout

    public init(_ generated: GeneratedScene, file: String) {
        let scene = generated.scene, text = generated.text
        let size = Double(generated.image.width)
        func round(_ v: Double, _ scale: Double) -> Double { (v * scale).rounded() / scale }
        index = scene.index
        self.file = file
        split = scene.split.rawValue
        kind = scene.kind.rawValue
        structure = scene.structure.rawValue
        caption = text.caption
        captions = text.captions.map(\.text)
        negatives = text.negatives.map { NegativeCaption(type: $0.kind.rawValue, caption: $0.caption.text) }
        label = text.label
        objects = scene.objects.map { o in
            Object(shape: o.shape.rawValue, colour: o.colour.rawValue, size: o.size.rawValue,
                   x: round(o.x, 1e4), y: round(o.y, 1e4), radius: round(o.radius, 1e4),
                   bbox: [o.x - o.radius, o.y - o.radius, o.x + o.radius, o.y + o.radius].map { round($0 * size, 100) },
                   rgb: o.rgb.map { Int($0) })
        }
        relations = scene.strictRelations.map { RelationFact(subject: $0.subject, relation: $0.relation.rawValue, object: $0.object) }
        questions = text.questions
        background = Int(scene.background.level)
        heldout = Heldout(pairs: scene.heldoutPairs.map(\.name), triples: scene.heldoutTriples.map(\.description))
    }
}

/// dataset.json: how the files were made and the vocabulary evaluation needs (class names, held-out lists).
public struct DatasetInfo: Codable, Equatable, Sendable {
    public struct VocabularyInfo: Codable, Equatable, Sendable {
        public var shapes: [String]
        public var colours: [String: [Int]]
        public var sizes: [String]
        public var relations: [String]
        public var countWords: [String]
    }

    public var generator: String
    public var prng: String
    public var seed: UInt64
    public var split: String
    public var kind: String
    public var count: Int
    public var imageSize: Int
    public var imageFormat: String
    public var config: SceneConfig
    public var vocabulary: VocabularyInfo
    /// All colour-shape class names, shape-major (zero-shot label set), and those seen in train/test.
    public var labels: [String]
    public var seenLabels: [String]
    public var heldoutPairs: [String]
    public var heldoutTriples: [String]
    public var manifest: String

    public init(seed: UInt64, split: SceneSplit, kind: KindSelection, count: Int, config: SceneConfig, imageFormat: String) {
        generator = SceneGenerator.version
        prng = "SplitMix64 per scene; state = mix(mix(mix(mix(seed + 0x9E3779B97F4A7C15) ^ splitTag) ^ index) ^ stream * 0xD1B54A32D192ED03)"
        self.seed = seed
        self.split = split.rawValue
        self.kind = kind.rawValue
        self.count = count
        imageSize = config.size
        self.imageFormat = imageFormat
        self.config = config
        vocabulary = VocabularyInfo(
            shapes: SceneShape.allCases.map(\.rawValue),
            colours: Dictionary(uniqueKeysWithValues: SceneColour.allCases.map { c in (c.rawValue, [Int(c.rgb.0), Int(c.rgb.1), Int(c.rgb.2)]) }),
            sizes: ObjectSize.allCases.map(\.rawValue),
            relations: SceneRelation.allCases.map(\.rawValue),
            countWords: SceneVocabulary.countWords)
        labels = SceneVocabulary.allTypes.map(\.name)
        seenLabels = SceneVocabulary.seenTypes.map(\.name)
        heldoutPairs = SceneVocabulary.heldoutPairs.map(\.name)
        heldoutTriples = SceneVocabulary.heldoutTriples.map(\.description)
        manifest = "manifest.jsonl"
    }

    enum CodingKeys: String, CodingKey {
        case generator, prng, seed, split, kind, count, config, vocabulary, labels, manifest
        case imageSize = "image_size", imageFormat = "image_format", seenLabels = "seen_labels"
        case heldoutPairs = "heldout_pairs", heldoutTriples = "heldout_triples"
    }
}

extension DatasetInfo.VocabularyInfo {
    enum CodingKeys: String, CodingKey {
        case shapes, colours, sizes, relations
        case countWords = "count_words"
    }
}
