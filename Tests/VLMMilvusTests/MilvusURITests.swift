import XCTest
import VLMIndex
@testable import VLMMilvus

/// URI parsing, key derivation and expression quoting: no server needed.
final class MilvusURITests: XCTestCase {
    func testParsesHostPortDatabaseAndCollection() throws {
        let a = try MilvusURI(parsing: "milvus://milvus.internal:19531/shop/products")
        XCTAssertEqual(a.host, "milvus.internal")
        XCTAssertEqual(a.port, 19531)
        XCTAssertEqual(a.database, "shop")
        XCTAssertEqual(a.collection, "products")
        let b = try MilvusURI(parsing: "milvus://10.0.0.5/products")
        XCTAssertEqual(b.port, 19530)
        XCTAssertNil(b.database)
        let c = try MilvusURI(parsing: "milvus://root:secret@localhost:19530/products")
        XCTAssertEqual(c.credentials, "root:secret")
        XCTAssertEqual(c.description, "milvus://localhost:19530/products", "credentials never appear in messages")
    }

    func testRejectsMalformedURIsWithAReason() {
        for bad in ["http://h/c", "milvus://h:99999/c", "milvus://h", "milvus://h/a/b/c", "milvus://h/1abc", "milvus://h/bad-name", "milvus://:1/c"] {
            XCTAssertThrowsError(try MilvusURI(parsing: bad), bad) { error in
                XCTAssertTrue("\(error)".contains("invalid Milvus URI"), "\(error)")
            }
        }
    }

    func testKeysAreStablePositiveAndDistinct() {
        let k = Schema.key(path: "/data/a.jpg")
        XCTAssertEqual(k, Schema.key(path: "/data/a.jpg"))
        XCTAssertGreaterThanOrEqual(k, 0)
        XCTAssertNotEqual(k, Schema.key(path: "/data/b.jpg"))
        // SHA-256("abc") = ba7816bf8f01cfea...: the key is its first 63 bits, fixed across platforms and versions.
        XCTAssertEqual(Schema.key(path: "abc"), Int64(bitPattern: 0xba78_16bf_8f01_cfea & 0x7FFF_FFFF_FFFF_FFFF))
    }

    func testLiteralsEscapeQuotesBackslashesAndControls() {
        XCTAssertEqual(Schema.literal("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"")
    }

    func testDescriptionRoundTripsAndRejectsForeignText() {
        let d = Schema.Description(identity: ModelIdentity(fingerprint: "clip/abc/512", dim: 512))
        XCTAssertEqual(Schema.Description.parse(d.text), d)
        XCTAssertNil(Schema.Description.parse("products of the shop"))
        XCTAssertNil(Schema.Description.parse("{\"fingerprint\": \"x\", \"dim\": 3}"), "no format marker: not ours")
    }

    func testShardsSplitPathsDeterministically() throws {
        let paths = (0 ..< 1000).map { "d\($0 % 7)/img\($0).jpg" }
        let shards = try (0 ..< 3).map { try IndexShard(index: $0, count: 3) }
        for p in paths { XCTAssertEqual(shards.filter { $0.contains(relativePath: p) }.count, 1, p) }
        let sizes = shards.map { s in paths.filter { s.contains(relativePath: $0) }.count }
        XCTAssertTrue(sizes.allSatisfy { $0 > 250 }, "\(sizes)")
        XCTAssertEqual(IndexShard.fnv1a64("a"), 0xaf63_dc4c_8601_ec8c)  // FNV-1a 64 test vector
        XCTAssertThrowsError(try IndexShard(parsing: "3/3"))
        XCTAssertThrowsError(try IndexShard(parsing: "x"))
        XCTAssertEqual(try IndexShard(parsing: "1/4"), try IndexShard(index: 1, count: 4))
    }

    func testUnreachableServerGivesOneClearLine() throws {
        var options = MilvusOptions()
        options.connectWindow = .milliseconds(500)
        let uri = try MilvusURI(parsing: "milvus://127.0.0.1:1/nothing_here")
        XCTAssertThrowsError(try MilvusIndex.open(uri: uri, model: ModelIdentity(fingerprint: "m", dim: 4), options: options)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("cannot reach Milvus at 127.0.0.1:1"), text)
            XCTAssertFalse(text.contains("\n"), text)
        }
    }
}
