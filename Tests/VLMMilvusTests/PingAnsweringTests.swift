import NIOCore
import NIOEmbedded
import XCTest
@testable import VLMMilvus

/// The PING answerer below the HTTP/2 handler: server PINGs are answered with an ACK of the same payload and not
/// passed on; every other byte is passed on unchanged and in order, however the stream is cut into reads.
final class PingAnsweringTests: XCTestCase {
    /// One HTTP/2 frame: 9-byte header (24-bit length, type, flags, 31-bit stream id) + payload.
    static func frame(type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, payload: [UInt8]) -> [UInt8] {
        let n = payload.count
        return [UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff), type, flags,
                UInt8(stream >> 24 & 0x7f), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff)] + payload
    }

    static let goPing: [UInt8] = [2, 4, 16, 16, 9, 14, 7, 7]  // grpc-go's BDP ping payload

    func testPingsAreAnsweredAndEverythingElsePassesUnchangedAtEverySplit() throws {
        let settings = Self.frame(type: 0x4, payload: [0, 3, 0, 0, 0, 100])
        let ping1 = Self.frame(type: 0x6, payload: Self.goPing)
        let data = Self.frame(type: 0x0, flags: 0x1, stream: 1, payload: Array(0 ..< 40).map { UInt8($0) })
        let pingAck = Self.frame(type: 0x6, flags: 0x1, payload: [9, 9, 9, 9, 9, 9, 9, 9])  // an ACK: passed on
        let ping2 = Self.frame(type: 0x6, payload: [1, 2, 3, 4, 5, 6, 7, 8])
        let headers = Self.frame(type: 0x1, flags: 0x4, stream: 3, payload: [0x88])
        let stream = settings + ping1 + data + pingAck + ping2 + headers
        let passed = settings + data + pingAck + headers
        let answers = Self.frame(type: 0x6, flags: 0x1, payload: Self.goPing) + Self.frame(type: 0x6, flags: 0x1, payload: [1, 2, 3, 4, 5, 6, 7, 8])

        // Every two-cut split of the stream into three reads, and byte-at-a-time.
        var splits: [[Int]] = [Array(1 ..< stream.count)]
        for a in stride(from: 1, to: stream.count, by: 3) { for b in stride(from: a, to: stream.count, by: 5) { splits.append([a, b]) } }
        for cuts in splits {
            let channel = EmbeddedChannel(handler: PingAnsweringHandler())
            var start = 0
            for end in cuts + [stream.count] where end > start {
                try channel.writeInbound(ByteBuffer(bytes: stream[start ..< end]))
                start = end
            }
            var got: [UInt8] = []
            while let b: ByteBuffer = try channel.readInbound() { got += b.readableBytesView }
            var wrote: [UInt8] = []
            while let b: ByteBuffer = try channel.readOutbound() { wrote += b.readableBytesView }
            XCTAssertEqual(got, passed, "cuts \(cuts)")
            XCTAssertEqual(wrote, answers, "cuts \(cuts)")
            XCTAssertTrue(try channel.finish().isClean)
        }
    }

    func testAMalformedPingIsLeftToTheHTTP2Handler() throws {
        // A PING whose length is not 8 is a connection error the HTTP/2 handler reports: passed on, not answered.
        let bad = Self.frame(type: 0x6, payload: [1, 2, 3])
        let channel = EmbeddedChannel(handler: PingAnsweringHandler())
        try channel.writeInbound(ByteBuffer(bytes: bad))
        var got: [UInt8] = []
        while let b: ByteBuffer = try channel.readInbound() { got += b.readableBytesView }
        XCTAssertEqual(got, bad)
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self))
    }
}
