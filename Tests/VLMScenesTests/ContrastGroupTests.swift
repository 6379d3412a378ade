import Foundation
import Testing
@testable import VLMScenes

/// Contrast groups (minimal pairs for training): valid scenes, distinct and true captions, split rules kept,
/// members reproducible one at a time, and edits that are actually minimal.
struct ContrastGroupTests {
    @Test(arguments: [KindSelection.single, .multi, .mixed])
    func groupsAreValidDistinctAndTrue(kind: KindSelection) throws {
        let generator = try SceneGenerator(seed: 7)
        for group in 0 ..< 40 {
            let scenes = try generator.contrastGroup(group: group, size: 8, split: .train, kind: kind)
            #expect(scenes.count == 8)
            #expect(scenes[0] == (try generator.scene(index: group, split: .train, kind: kind)))
            let texts = scenes.map { SceneText(scene: $0, seed: 7) }
            #expect(Set(texts.map(\.caption)).count == 8, "captions repeat in group \(group): \(texts.map(\.caption))")
            for (scene, text) in zip(scenes, texts) {
                #expect(SceneGenerator.isValid(scene))
                #expect(SceneGenerator.satisfiesSplit(scene), "held-out composition in a train group: \(text.caption)")
                for c in text.captions { #expect(c.claim.evaluate(scene.objects) == .true, "\(c.text)") }
                for n in text.negatives { #expect(n.caption.claim.evaluate(scene.objects) == .false, "\(n.caption.text)") }
                let config = generator.config
                for o in scene.objects {
                    #expect(o.x - o.radius >= config.border - 1e-12 && o.x + o.radius <= 1 - config.border + 1e-12)
                    #expect(o.y - o.radius >= config.border - 1e-12 && o.y + o.radius <= 1 - config.border + 1e-12)
                }
                for i in scene.objects.indices {
                    for j in scene.objects.indices where i < j {
                        #expect(SceneGeometry.separated(scene.objects[i], scene.objects[j], margin: config.margin))
                    }
                }
            }
        }
    }

    @Test func membersAloneEqualTheGroup() throws {
        let generator = try SceneGenerator(seed: 3)
        let scenes = try generator.contrastGroup(group: 11, size: 4, split: .test, kind: .mixed)
        for m in 0 ..< 4 {
            let alone = try generator.contrastMember(group: 11, member: m, size: 4, split: .test, kind: .mixed)
            #expect(alone.scene == scenes[m])
            #expect(alone.image == generator.renderer.render(scenes[m]))
        }
        #expect(throws: SceneError.self) { try generator.contrastMember(group: 0, member: 4, size: 4, split: .train) }
        #expect(throws: SceneError.self) { try generator.contrastGroup(group: 0, size: 0, split: .train) }
    }

    /// The training source's cache hands out exactly what `contrastMember` makes, from many threads at once
    /// and after evicting groups (capacity 3 with 12 groups in play).
    @Test func cacheEqualsContrastMember() throws {
        let generator = try SceneGenerator(seed: 4)
        let cache = ContrastGroupCache(generator: generator, size: 4, split: .train, kind: .mixed, capacity: 3)
        let indices = (0 ..< 48).map { ($0 * 29) % 48 }  // every index once, groups interleaved
        let results = UnsafeMutableBufferPointer<GeneratedScene?>.allocate(capacity: indices.count)
        results.initialize(repeating: nil)
        defer { results.deallocate() }
        DispatchQueue.concurrentPerform(iterations: indices.count) { i in
            results[i] = try? cache.member(group: indices[i] / 4, member: indices[i] % 4)
        }
        for (i, index) in indices.enumerated() {
            let direct = try generator.contrastMember(group: index / 4, member: index % 4, size: 4, split: .train, kind: .mixed)
            #expect(results[i]?.scene == direct.scene && results[i]?.image == direct.image, "index \(index)")
            #expect(results[i]?.text.caption == direct.text.caption)
        }
        #expect(throws: SceneError.self) { try cache.member(group: 0, member: 4) }
    }

    /// Single-object groups are mostly one colour with different shapes: within such a group only shape tells
    /// the captions apart, which is what the groups are for.
    @Test func singleObjectGroupsVaryShapeAtFixedColour() throws {
        let generator = try SceneGenerator(seed: 5)
        var sameColourShapeChanges = 0, members = 0
        for group in 0 ..< 30 {
            let scenes = try generator.contrastGroup(group: group, size: 8, split: .train, kind: .single)
            let base = scenes[0].objects[0]
            for s in scenes.dropFirst() {
                members += 1
                if s.objects[0].colour == base.colour && s.objects[0].shape != base.shape { sameColourShapeChanges += 1 }
            }
        }
        #expect(Double(sameColourShapeChanges) / Double(members) > 0.4, "\(sameColourShapeChanges) of \(members)")
    }

    /// Relation groups contain the attribute-swapped twin or the mirrored relation of some member: the pairs the
    /// binding test asks about.
    @Test func relationGroupsContainBindingAndRelationTwins() throws {
        let generator = try SceneGenerator(seed: 9)
        var twins = 0, groups = 0
        for group in 0 ..< 200 {
            let base = try generator.scene(index: group, split: .train, kind: .multi)
            guard base.structure == .relation else { continue }
            groups += 1
            let scenes = try generator.contrastGroup(group: group, size: 8, split: .train, kind: .multi)
            let captions = Set(scenes.map { SceneText(scene: $0, seed: 9).caption })
            let hasTwin = scenes.contains { s in
                let text = SceneText(scene: s, seed: 9)
                return [SceneNegative.Kind.swap, .relation].contains { k in text.negative(k).map(captions.contains) ?? false }
            }
            if hasTwin { twins += 1 }
        }
        #expect(groups > 20)
        #expect(Double(twins) / Double(groups) > 0.5, "\(twins) of \(groups)")
    }
}
