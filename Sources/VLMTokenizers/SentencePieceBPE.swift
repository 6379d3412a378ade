import Foundation

/// sentencepiece's BPE (bpe_model.cc `SampleEncode` with alpha 0, 0.2.3): the normalized text is split into
/// chars (user-defined pieces whole and frozen), then the adjacent pair whose concatenation is the
/// highest-scoring piece is merged, leftmost first on ties, until no pair is a piece. UNUSED pieces take part in
/// merges and are re-split afterwards (`resegment`). Merges come from piece scores, not a merge list.
extension SentencePieceProcessor {
    private struct Symbol {
        var prev: Int
        var next: Int
        var freeze: Bool
        var start: Int
        var length: Int
    }

    private struct Pair {
        let score: Float
        let left: Int
        let right: Int
        let size: Int
    }

    /// SymbolPairComparator on the float's bit pattern: a higher score first, then the smaller left index.
    private static func lowerPriority(_ a: Pair, _ b: Pair) -> Bool {
        let i1 = Int32(bitPattern: a.score.bitPattern), i2 = Int32(bitPattern: b.score.bitPattern)
        if (i1 & i2) < 0 { return i1 > i2 || (i1 == i2 && a.left > b.left) }
        let less = (i1 ^ i2) < 0 ? i1 < 0 : i1 < i2
        return less || (i1 == i2 && a.left > b.left)
    }

    /// PieceToIdNoReserved, then the reserved/unknown check: the id of a mergeable piece, nil otherwise.
    private func mergeableID<C: Collection>(_ piece: C) -> Int? where C.Element == UInt8 {
        guard let id = trie.lookup(piece) else { return nil }  // `trie` holds NORMAL, USER_DEFINED, UNUSED
        return id == unkID ? nil : id
    }

    func encodeBPE(_ normalized: [UInt8]) -> [(range: Range<Int>, id: Int)] {
        if normalized.isEmpty { return [] }
        var symbols: [Symbol] = []
        var pos = 0
        while pos < normalized.count {
            let (length, found) = prefixMatch(normalized, from: pos)
            let index = symbols.count
            symbols.append(Symbol(prev: index - 1, next: pos + length < normalized.count ? index + 1 : -1,
                                  freeze: found, start: pos, length: length))
            pos += length
        }
        var heap = BinaryHeap<Pair>(lowerPriority: Self.lowerPriority)
        // rev_merge: an UNUSED merged piece (by its bytes) -> the two halves it was made of.
        var revMerge: [[UInt8]: (Range<Int>, Range<Int>)] = [:]
        func maybeAdd(_ left: Int, _ right: Int) {
            guard left >= 0, right >= 0 else { return }
            let l = symbols[left], r = symbols[right]
            guard !l.freeze, !r.freeze else { return }
            let range = l.start ..< l.start + l.length + r.length
            guard let id = mergeableID(normalized[range]) else { return }
            heap.push(Pair(score: model.pieces[id].score, left: left, right: right, size: range.count))
            if model.pieces[id].type == .unused {
                revMerge[Array(normalized[range])] = (l.start ..< l.start + l.length, r.start ..< r.start + r.length)
            }
        }
        for i in 1 ..< max(1, symbols.count) { maybeAdd(i - 1, i) }
        while let top = heap.pop() {
            let l = symbols[top.left], r = symbols[top.right]
            // Stale: a side was merged away or grew since the pair was pushed.
            if l.length == 0 || r.length == 0 || l.length + r.length != top.size { continue }
            symbols[top.left].length += r.length
            symbols[top.left].next = r.next
            if r.next >= 0 { symbols[r.next].prev = top.left }
            symbols[top.right].length = 0
            maybeAdd(symbols[top.left].prev, top.left)
            maybeAdd(top.left, symbols[top.left].next)
        }
        var out: [(range: Range<Int>, id: Int)] = []
        func resegment(_ range: Range<Int>, depth: Int) {
            let piece = normalized[range]
            let id = trie.lookup(piece) ?? unkID
            if depth > 100 { out.append((range, id)); return }  // kMaxBpeResegmentDepth
            guard id >= 0, id != unkID else { out.append((range, unkID)); return }
            guard model.pieces[id].type == .unused else { out.append((range, id)); return }
            guard let halves = revMerge[Array(piece)] else { out.append((range, unkID)); return }
            // The halves are recorded by position of the first occurrence; re-base them onto this range.
            let shift = range.lowerBound - halves.0.lowerBound
            resegment(halves.0.lowerBound + shift ..< halves.0.upperBound + shift, depth: depth + 1)
            resegment(halves.1.lowerBound + shift ..< halves.1.upperBound + shift, depth: depth + 1)
        }
        var index = 0
        while index != -1 && index < symbols.count {
            let s = symbols[index]
            resegment(s.start ..< s.start + s.length, depth: 0)
            index = s.next
        }
        return out
    }
}

/// A binary max-heap by `lowerPriority` (std::priority_queue with a comparator).
struct BinaryHeap<Element> {
    private var items: [Element] = []
    let lowerPriority: (Element, Element) -> Bool

    init(lowerPriority: @escaping (Element, Element) -> Bool) { self.lowerPriority = lowerPriority }

    mutating func push(_ e: Element) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard lowerPriority(items[parent], items[i]) else { break }
            items.swapAt(parent, i)
            i = parent
        }
    }

    mutating func pop() -> Element? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var top = i
                if l < items.count && lowerPriority(items[top], items[l]) { top = l }
                if r < items.count && lowerPriority(items[top], items[r]) { top = r }
                if top == i { break }
                items.swapAt(i, top)
                i = top
            }
        }
        return first
    }
}
