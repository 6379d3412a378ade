import Foundation

/// The Milvus server the Milvus tests use: `VLM_TEST_MILVUS=host:port` (Scripts/milvus-server.sh start runs one
/// on 127.0.0.1:19530; `.ci/run` does that). Tests skip visibly when it is unset or nothing listens there.
public enum MilvusTestServer {
    public static let howToStart = "start one with `Scripts/milvus-server.sh start` and set VLM_TEST_MILVUS=127.0.0.1:19530"

    /// host:port if set and reachable; otherwise the reason the tests are skipped.
    public static func address() -> Result<(host: String, port: Int), SkipReason> {
        guard let value = ProcessInfo.processInfo.environment["VLM_TEST_MILVUS"], !value.isEmpty else {
            return .failure(SkipReason(message: "VLM_TEST_MILVUS is not set: Milvus tests skipped (\(howToStart))"))
        }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else {
            return .failure(SkipReason(message: "VLM_TEST_MILVUS='\(value)' is not host:port"))
        }
        let host = String(parts[0])
        guard reachable(host: host, port: port) else {
            return .failure(SkipReason(message: "nothing listens at VLM_TEST_MILVUS=\(value): Milvus tests skipped (\(howToStart))"))
        }
        return .success((host, port))
    }

    public struct SkipReason: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// A TCP connect to host:port (IPv4 literal or "localhost"), 2 s at most.
    public static func reachable(host: String, port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &address.sin_addr) == 1 else { return false }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// A fresh collection name for one test.
    public static func collectionName(_ prefix: String) -> String {
        "\(prefix)_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12))"
    }
}
