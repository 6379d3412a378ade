import NIOCore

/// Answers the server's HTTP/2 PING frames below the HTTP/2 handler, so that a busy connection to a Go gRPC
/// server (Milvus) stays up.
///
/// Why: a Go gRPC server estimates the bandwidth-delay product of every connection it reads from by sending a PING
/// after each batch of DATA it receives (one outstanding at a time: grpc-go's `bdpEstimator`), which on a
/// connection carrying small requests is one PING per request. swift-nio-http2's denial-of-service heuristics
/// (`controlFrameRateLimit`, 200 PING/SETTINGS frames per 30 s, not configurable through grpc-swift-nio-transport
/// 2.9) read that as a flood: after ~200 requests the client sends GOAWAY ENHANCE_YOUR_CALM and closes the
/// connection, failing every RPC in flight with UNAVAILABLE "Stream unexpectedly closed". Measured through
/// `vlm serve --index milvus://...`: a new connection every ~1.1 s at 200 searches/s, and each failed call retried
/// after the backoff (p99 ~100 ms at one client instead of ~5).
///
/// What it does: sits first in the pipeline of a plaintext connection (raw bytes from the socket; with TLS it would
/// go right after the TLS handler, which the client does not use today), follows the
/// server's frame boundaries (9-byte header: 24-bit length, type, flags, stream id; RFC 9113 section 4.1), and
/// replies to each PING without the ACK flag itself with an ACK carrying the same 8 bytes (section 6.7: "MUST send
/// a PING frame with the ACK flag set ... with an identical payload", ahead of other frames). The PING is not
/// passed on; every other byte is passed on unchanged and in order. The ACK is written at the head of the
/// pipeline, between whole frames of the HTTP/2 handler (which writes each frame within one event-loop turn).
/// `VLM_MILVUS_NO_PING_ANSWER=1` leaves it out (to compare, or should a server ever need it).
final class PingAnsweringHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let headerLength = 9
    static let pingType: UInt8 = 0x6
    static let ackFlag: UInt8 = 0x1

    /// Header bytes of the next frame not yet complete (held back until its type is known).
    private var header: ByteBuffer?
    /// Payload bytes of the current frame still to pass on.
    private var remaining = 0
    /// The header and payload of a PING being assembled (not passed on).
    private var ping: ByteBuffer?
    /// PINGs answered here (tests read it).
    private(set) var answered = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = unwrapInboundIn(data)
        while input.readableBytes > 0 {
            if remaining > 0 {
                // Inside a frame that goes on: pass on as much of it as arrived.
                let n = min(remaining, input.readableBytes)
                if let slice = input.readSlice(length: n) { context.fireChannelRead(wrapInboundOut(slice)) }
                remaining -= n
                continue
            }
            if var partial = ping {
                // Inside a PING: collect its 8 payload bytes.
                let need = Self.headerLength + 8 - partial.readableBytes
                guard var slice = input.readSlice(length: min(need, input.readableBytes)) else { break }
                partial.writeBuffer(&slice)
                if partial.readableBytes == Self.headerLength + 8 {
                    ping = nil
                    answer(partial, context: context)
                } else {
                    ping = partial
                }
                continue
            }
            // At a frame boundary: complete the header first.
            var head = header ?? context.channel.allocator.buffer(capacity: Self.headerLength)
            let need = Self.headerLength - head.readableBytes
            guard var slice = input.readSlice(length: min(need, input.readableBytes)) else { break }
            head.writeBuffer(&slice)
            guard head.readableBytes == Self.headerLength else {
                header = head
                continue
            }
            header = nil
            let view = head.readableBytesView
            let start = view.startIndex
            let length = Int(view[start]) << 16 | Int(view[start + 1]) << 8 | Int(view[start + 2])
            let type = view[start + 3], flags = view[start + 4]
            if type == Self.pingType, flags & Self.ackFlag == 0, length == 8 {
                ping = head
            } else {
                // Anything else (malformed PINGs included: the HTTP/2 handler judges those) goes on as it is.
                context.fireChannelRead(wrapInboundOut(head))
                remaining = length
            }
        }
    }

    /// frame: the 17 bytes of a PING without ACK -> the same frame with the ACK flag, written to the socket.
    private func answer(_ frame: ByteBuffer, context: ChannelHandlerContext) {
        var ack = frame
        ack.setInteger(Self.ackFlag, at: ack.readerIndex + 4)
        answered += 1
        context.writeAndFlush(wrapOutboundOut(ack), promise: nil)
    }
}
