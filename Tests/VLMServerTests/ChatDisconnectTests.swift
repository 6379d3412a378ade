import Foundation
import Hummingbird
import HummingbirdTesting
import SwiftVLM
import Testing
import VLMTestSupport
@testable import VLMServer
#if canImport(Glibc)
import Glibc
#endif

/// A real socket: the client reads the start of a streamed answer and hangs up; the failed write cancels the
/// generation, so the generator is free for the next request.
@Suite(.serialized) struct ChatDisconnectTests {
    /// Sends `body` to /v1/chat/completions, reads until `events` SSE events arrived, then closes the socket.
    static func readEventsThenHangUp(port: Int, body: String, events: Int) async throws -> String {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try blockingRead(port: port, body: body, events: events) })
            }
        }
    }

    /// Sends `body` with `Connection: close` and reads the whole response (a client of its own, so the test
    /// client's connection stays free for /metrics while this request is held).
    static func request(port: Int, body: String) async throws -> String {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try blockingRead(port: port, body: body, events: Int.max, close: true) })
            }
        }
    }

    static func blockingRead(port: Int, body: String, events: Int, close closeAfter: Bool = false) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw TestFailure("connect() failed") }
        let request = "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + (closeAfter ? "Connection: close\r\n" : "")
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
        let sent = request.utf8CString.withUnsafeBufferPointer { send(fd, $0.baseAddress, $0.count - 1, 0) }
        guard sent == request.utf8.count else { throw TestFailure("send() failed") }
        var received = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while String(decoding: received, as: UTF8.self).components(separatedBy: "data: ").count - 1 < events {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n == 0 && closeAfter { break }  // the whole response
            guard n > 0 else { throw TestFailure("connection ended early: \(String(decoding: received, as: UTF8.self))") }
            received += buffer[..<n]
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// Sleeps until `seconds` have passed, resuming after interruptions.
    static func sleep(seconds: Double) {
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9)
        while DispatchTime.now().uptimeNanoseconds < deadline { usleep(1000) }
    }

    @Test func hangingUpCancelsTheGeneration() async throws {
        let firstPiece = Gate()
        var engine = ChatEngine.pipeline(try ChatTestServer.pipeline())
        let real = engine.generate
        engine.generate = { prepared, options, onText, shouldStop in
            var o = options
            o.stopAtEOS = false  // the tiny model's EOS must not end the answer before the client leaves
            var pieces = 0
            return try real(prepared, o, { piece in
                let ok = onText(piece)
                pieces += 1
                // A slow generator: 1000 tokens take 20 s or more, far longer than noticing the hang-up takes even on a
                // loaded machine. (A deadline, not one usleep: signals from other tests' child processes cut usleep
                // short, and a CI run once finished all tokens before the starved writer saw the failed write.)
                if pieces == 1 { firstPiece.pass() } else { Self.sleep(seconds: 0.02) }
                return ok
            }, shouldStop)
        }
        let app = try buildApplication(config: ChatTestServer.config(), chatEngine: engine)
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let body = #"{"stream": true, "max_tokens": 1000, "messages": [{"role": "user", "content": "Tell me a story."}]}"#
            async let head = Self.readEventsThenHangUp(port: port, body: body, events: 2)
            try await eventually("the first piece") { firstPiece.enteredCount == 1 }
            let text = try await head  // role chunk and first piece read; the socket is closed now
            #expect(text.hasPrefix("HTTP/1.1 200") && text.contains("text/event-stream"))
            firstPiece.open()
            func value(_ series: String) async throws -> Double? {
                try parsePrometheus(try await client.get("/metrics").text).first { $0.series == series }?.value
            }
            do {
                try await eventually("the generation cancelled") { try await value(#"vlm_chat_requests_total{finish_reason="cancelled"}"#) == 1 }
            } catch {
                let chat = try await client.get("/metrics").text.split(separator: "\n").filter { $0.hasPrefix("vlm_chat_") && !$0.contains("_bucket") }
                throw TestFailure("\(error); metrics: \(chat.joined(separator: "; "))")
            }
            let generated = try #require(try await value("vlm_chat_completion_tokens_total"))
            #expect(generated < 1000, "\(generated) tokens generated for a client that left")
            #expect(try await value(#"vlm_chat_requests_total{finish_reason="length"}"#) == 0)
            // The generator serves the next client.
            let next = try await client.post("/v1/chat/completions", json: #"{"max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]}"#)
            #expect(try next.completion().usage["completion_tokens"] == 3)
        }
    }

    /// A streaming request waiting behind another gets SSE keep-alive comments; when its client hangs up, the
    /// failed write takes it out of the queue before it ever runs.
    @Test func queuedStreamingClientThatHangsUpLeavesTheQueue() async throws {
        let gate = Gate()
        let engine = ChatEngine.pipeline(try ChatTestServer.pipeline()).holding { gate.pass() }
        let config = ChatTestServer.config { $0.chatKeepAliveSeconds = 0.05 }
        let app = try buildApplication(config: config, chatEngine: engine)
        try await app.test(.live) { client in
            let port = try #require(client.port)
            async let first = Self.request(port: port, body: #"{"max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}"#)
            try await eventually("the generator holding the first request") { gate.enteredCount == 1 }
            let body = #"{"stream": true, "max_tokens": 2, "messages": [{"role": "user", "content": "hello"}]}"#
            let head = try await Self.readEventsThenHangUp(port: port, body: body, events: 1)  // the role chunk
            #expect(head.contains("chat.completion.chunk"))
            func value(_ series: String) async throws -> Double? {
                try parsePrometheus(try await client.get("/metrics").text).first { $0.series == series }?.value
            }
            try await eventually("the hung-up request out of the queue") {
                let depth = try await value("vlm_chat_queue_depth")
                let cancelled = try await value(#"vlm_chat_requests_total{finish_reason="cancelled"}"#)
                return depth == 0 && cancelled == 1
            }
            #expect(gate.enteredCount == 1, "the cancelled request never reached the generator")
            gate.open()
            #expect(try await first.hasPrefix("HTTP/1.1 200"))
            #expect(gate.enteredCount == 1)
        }
    }
}
