// (Overview only: no type is named VLMScenes, so module-qualified names like VLMScenes.SceneShape keep working.)
//
// VLMScenes: a deterministic synthetic image-text world for training and evaluating SwiftVLM's small CLIP.
//
// ## The world
// 1-4 upright objects on a neutral grey background. Each object has a shape (`SceneShape`: circle, square,
// triangle, star, cross, diamond, heart, ring), a colour (`SceneColour`: red, orange, yellow, green, cyan, blue,
// purple, white, black), a size (small / large, radius ratio ~1.6) and a position. Objects never touch
// (bounding squares at least `SceneConfig.margin` apart) and stay inside the image. Images are rendered
// at `SceneConfig.size` (default 64x64) with supersample x supersample anti-aliasing.
//
// Scene structures (`SceneStructure`): `object` (one object, kind `single`), and for kind `multi`:
// `relation` (two objects differing in colour and shape, placed so a relation holds strictly), `count`
// (2-4 objects of one colour-shape), `group` (3-4 objects of 2+ colour-shapes).
//
// ## Text
// Every caption is rendered from a `SceneClaim` and checked against object coordinates (`SceneClaim.evaluate`).
// Relations are only asserted when they hold strictly (see `SceneGeometry`), and negatives are only kept
// when certainly false, so ambiguous (diagonal) layouts are neither stated nor denied.
// - canonical caption (mentions every object): "a small red circle", "a red circle left of a blue square",
//   "three yellow stars", "two red circles and an orange cross";
// - paraphrases ("a blue square to the right of a red circle", "a picture of ...", sizes added, ...);
// - negatives, one per applicable type (`SceneNegative.Kind`): swap (attribute-swapped twin, the binding test),
//   order, relation flip, count, colour, shape, size;
// - zero-shot label for single-object scenes ("red circle"; the class list is `SceneVocabulary.allTypes`);
// - questions with unambiguous answers ("what colour is the circle?" -> "red", "how many stars are
//   there?" -> "three", "what is left of the blue square?" -> "a red circle").
//
// ## Splits
// `train` and `test` share one distribution (different random streams of the same seed); neither ever
// contains a held-out colour-shape pair (`SceneVocabulary.heldoutPairs`, one per shape) anywhere, nor a held-out
// shape-level relation triple (`SceneVocabulary.heldoutTriples`, both directions) holding strictly between two
// objects. Every `heldout` scene contains at least one of them, so it measures compositional generalisation.
//
// ## Determinism
// Scene `i` of a split is a pure function of (seed, split, i, config) via `SceneRandom` (SplitMix64 with
// per-scene derived streams): identical bytes on every machine, random access by index, and parallel
// generation give the same result. `SceneGenerator.version` names the output contract.
//
// ## Files
// `SceneDataset.export` writes images/NNNNNN.png, manifest.jsonl (`ManifestRecord` per line) and
// dataset.json (`DatasetInfo`: generator version, seed, config, vocabulary, labels, held-out lists), via a
// staging directory renamed into place at the end. `SceneDataset.generate` streams scenes in memory.
