import Dispatch
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore
import SwiftProtobuf

typealias Proto = Milvus_Proto_Milvus_MilvusService
typealias Status = Milvus_Proto_Common_Status
typealias FieldData = Milvus_Proto_Schema_FieldData
typealias KeyValue = Milvus_Proto_Common_KeyValuePair

/// A thin async client for the MilvusService RPCs SwiftVLM uses: one HTTP/2 connection (grpc-swift 2),
/// per-call deadline, `authorization` metadata, retries with exponential backoff while the server is
/// UNAVAILABLE (down, restarting) or reports a retriable error, and every error status turned into
/// `MilvusError`.
final class MilvusClient: @unchecked Sendable {
    let uri: MilvusURI
    let options: MilvusOptions
    private let grpc: GRPCClient<HTTP2ClientTransport.Posix>
    private let service: Proto.Client<HTTP2ClientTransport.Posix>
    private let runner: Task<Void, Never>
    private let metadata: Metadata
    /// TCP connections this client has opened (1 while the server stays up; tests read it).
    let connections: ConnectionCounter

    init(uri: MilvusURI, options: MilvusOptions) throws {
        self.uri = uri
        self.options = options
        let transport: HTTP2ClientTransport.Posix
        let connections = ConnectionCounter()
        self.connections = connections
        // Every new connection gets the PING answerer first in its (plaintext) pipeline: see PingAnsweringHandler.
        let config = HTTP2ClientTransport.Posix.Config.defaults { config in
            config.channelDebuggingCallbacks.onCreateTCPConnection = { channel in
                connections.opened()
                return channel.eventLoop.makeCompletedFuture {
                    if ProcessInfo.processInfo.environment["VLM_MILVUS_NO_PING_ANSWER"] == nil {
                        try channel.pipeline.syncOperations.addHandler(PingAnsweringHandler(), position: .first)
                    }
                }
            }
        }
        do {
            transport = try HTTP2ClientTransport.Posix(target: .dns(host: uri.host, port: uri.port), transportSecurity: .plaintext, config: config)
        } catch {
            throw MilvusError.unreachable(address: uri.address, detail: "\(error)")
        }
        let client = GRPCClient(transport: transport)
        grpc = client
        service = Proto.Client(wrapping: client)
        runner = Task { try? await client.runConnections() }
        var metadata: Metadata = [:]
        if let token = options.token ?? uri.credentials, !token.isEmpty {
            metadata.addString(Data(token.utf8).base64EncodedString(), forKey: "authorization")
        }
        if let database = uri.database { metadata.addString(database, forKey: "dbname") }
        self.metadata = metadata
    }

    deinit {
        grpc.beginGracefulShutdown()
    }

    func close() { grpc.beginGracefulShutdown() }

    var callOptions: CallOptions {
        var o = CallOptions.defaults
        o.timeout = options.timeout
        o.maxResponseMessageBytes = 512 << 20
        o.maxRequestMessageBytes = 64 << 20
        return o
    }

    var database: String { uri.database ?? "" }
    var collection: String { uri.collection }

    // MARK: Calls

    /// Runs one RPC; retries while Milvus is unavailable or says the error is retriable, up to `window`.
    func call<R: Sendable>(_ operation: String, window: Duration? = nil, _ body: @Sendable (Proto.Client<HTTP2ClientTransport.Posix>, Metadata, CallOptions) async throws -> R,
                           status: (R) -> Status?) async throws -> R {
        let clock = ContinuousClock()
        let deadline = clock.now + (window ?? options.retryWindow)
        var delay = Duration.milliseconds(100)
        while true {
            let reply: R
            do {
                reply = try await body(service, metadata, callOptions)
            } catch let error as RPCError where Self.transient(error.code) {
                guard clock.now + delay < deadline else {
                    throw MilvusError.unreachable(address: uri.address, detail: "\(error.code): \(error.message)")
                }
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
                continue
            } catch let error as RPCError {
                throw MilvusError.server(operation: operation, code: error.code.rawValue, reason: "\(error.code): \(error.message)")
            }
            if let s = status(reply), Self.failed(s) {
                if Self.retriable(s), clock.now + delay < deadline {
                    try await Task.sleep(for: delay)
                    delay = min(delay * 2, .seconds(5))
                    continue
                }
                throw MilvusError.server(operation: operation, code: Int(s.code != 0 ? s.code : s.errorCode), reason: s.reason.isEmpty ? s.detail : s.reason)
            }
            return reply
        }
    }

    /// Counts the connections a client opens (from grpc-swift's event loops).
    final class ConnectionCounter: @unchecked Sendable {
        private let lock = NSLock()
        private var count = 0
        func opened() { lock.withLock { count += 1 } }
        var value: Int { lock.withLock { count } }
    }

    static func transient(_ code: RPCError.Code) -> Bool { code == .unavailable || code == .deadlineExceeded || code == .resourceExhausted }
    /// Errors a restarting or busy Milvus reports (rate limits; not ready, not loaded yet or no shard leader while
    /// it recovers): worth another try within the window.
    static func retriable(_ s: Status) -> Bool {
        if s.retriable || [8, 9].contains(s.code) { return true }
        let reason = (s.reason + " " + s.detail).lowercased()
        return ["not ready", "not loaded", "not healthy", "stopping", "no available shard", "shard leader", "not found channel",
                "channel not found", "node not found", "service unavailable", "recovering"].contains { reason.contains($0) }
    }
    static func failed(_ s: Status) -> Bool { s.code != 0 || s.errorCode != 0 }

    // MARK: Collection management

    func hasCollection(window: Duration? = nil) async throws -> Bool {
        var r = Milvus_Proto_Milvus_HasCollectionRequest()
        (r.dbName, r.collectionName) = (database, collection)
        let req = r
        return try await call("HasCollection", window: window, { try await $0.hasCollection(req, metadata: $1, options: $2) }, status: { $0.status }).value
    }

    func describeCollection() async throws -> Milvus_Proto_Milvus_DescribeCollectionResponse {
        var r = Milvus_Proto_Milvus_DescribeCollectionRequest()
        (r.dbName, r.collectionName) = (database, collection)
        let req = r
        return try await call("DescribeCollection", { try await $0.describeCollection(req, metadata: $1, options: $2) }, status: { $0.status })
    }

    func createCollection(schema: Milvus_Proto_Schema_CollectionSchema, consistency: Milvus_Proto_Common_ConsistencyLevel) async throws {
        var r = Milvus_Proto_Milvus_CreateCollectionRequest()
        (r.dbName, r.collectionName) = (database, collection)
        r.schema = try schema.serializedData()
        r.shardsNum = Int32(options.shards)
        r.consistencyLevel = consistency
        let req = r
        _ = try await call("CreateCollection", { try await $0.createCollection(req, metadata: $1, options: $2) }, status: { $0 })
    }

    func dropCollection() async throws {
        var r = Milvus_Proto_Milvus_DropCollectionRequest()
        (r.dbName, r.collectionName) = (database, collection)
        let req = r
        _ = try await call("DropCollection", { try await $0.dropCollection(req, metadata: $1, options: $2) }, status: { $0 })
    }

    func createIndex(field: String, params: [String: String]) async throws {
        var r = Milvus_Proto_Milvus_CreateIndexRequest()
        (r.dbName, r.collectionName, r.fieldName) = (database, collection, field)
        r.extraParams = params.sorted { $0.key < $1.key }.map { p in KeyValue.with { kv in (kv.key, kv.value) = (p.key, p.value) } }
        let req = r
        _ = try await call("CreateIndex", { try await $0.createIndex(req, metadata: $1, options: $2) }, status: { $0 })
    }

    func describeIndex(field: String) async throws -> [Milvus_Proto_Milvus_IndexDescription] {
        var r = Milvus_Proto_Milvus_DescribeIndexRequest()
        (r.dbName, r.collectionName, r.fieldName) = (database, collection, field)
        let req = r
        do {
            return try await call("DescribeIndex", { try await $0.describeIndex(req, metadata: $1, options: $2) }, status: { $0.status }).indexDescriptions
        } catch MilvusError.server(_, _, let reason) where reason.lowercased().contains("index not found") || reason.lowercased().contains("index doesn't exist") {
            return []
        }
    }

    /// Loads the collection into memory and waits until it is searchable.
    func load() async throws {
        var r = Milvus_Proto_Milvus_LoadCollectionRequest()
        (r.dbName, r.collectionName) = (database, collection)
        let req = r
        _ = try await call("LoadCollection", { try await $0.loadCollection(req, metadata: $1, options: $2) }, status: { $0 })
        var p = Milvus_Proto_Milvus_GetLoadingProgressRequest()
        (p.dbName, p.collectionName) = (database, collection)
        let progressRequest = p
        let clock = ContinuousClock(), deadline = clock.now + options.retryWindow
        while true {
            let reply = try await call("GetLoadingProgress", { try await $0.getLoadingProgress(progressRequest, metadata: $1, options: $2) }, status: { $0.status })
            if reply.progress >= 100 { return }
            guard clock.now < deadline else { throw MilvusError.server(operation: "LoadCollection", code: 0, reason: "still loading (\(reply.progress)%) after the retry window") }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    func flush() async throws {
        var r = Milvus_Proto_Milvus_FlushRequest()
        r.dbName = database
        r.collectionNames = [collection]
        let req = r
        _ = try await call("Flush", { try await $0.flush(req, metadata: $1, options: $2) }, status: { $0.status })
    }

    // MARK: Data

    func upsert(columns: [FieldData], rows: Int) async throws {
        var r = Milvus_Proto_Milvus_UpsertRequest()
        (r.dbName, r.collectionName) = (database, collection)
        r.fieldsData = columns
        r.numRows = UInt32(rows)
        let req = r
        noteWrite(try await call("Upsert", { try await $0.upsert(req, metadata: $1, options: $2) }, status: { $0.status }).timestamp)
    }

    func delete(expr: String) async throws {
        var r = Milvus_Proto_Milvus_DeleteRequest()
        (r.dbName, r.collectionName, r.expr) = (database, collection, expr)
        let req = r
        noteWrite(try await call("Delete", { try await $0.delete(req, metadata: $1, options: $2) }, status: { $0.status }).timestamp)
    }

    func query(expr: String, outputFields: [String], limit: Int? = nil, fast: Bool = false) async throws -> [FieldData] {
        var r = Milvus_Proto_Milvus_QueryRequest()
        (r.dbName, r.collectionName, r.expr) = (database, collection, expr)
        r.outputFields = outputFields
        if let limit { r.queryParams = [KeyValue.with { ($0.key, $0.value) = ("limit", "\(limit)") }] }
        (r.consistencyLevel, r.guaranteeTimestamp) = fast ? readLevel : (consistencyLevel, 0)
        let req = r
        return try await call("Query", { try await $0.query(req, metadata: $1, options: $2) }, status: { $0.status }).fieldsData
    }

    /// Query vectors in one request (nq = vectors.count); the result block holds each query's hits in
    /// turn, `topks[i]` of them for query i.
    func search(vectors: [[Float]], field: String, k: Int, ef: Int, filter: String, outputFields: [String]) async throws -> Milvus_Proto_Schema_SearchResultData {
        var value = Milvus_Proto_Common_PlaceholderValue()
        value.tag = "$0"
        value.type = .floatVector
        value.values = vectors.map { v in v.withUnsafeBufferPointer { Data(buffer: $0) } }
        var group = Milvus_Proto_Common_PlaceholderGroup()
        group.placeholders = [value]
        var r = Milvus_Proto_Milvus_SearchRequest()
        (r.dbName, r.collectionName, r.dsl, r.dslType) = (database, collection, filter, .boolExprV1)
        r.placeholderGroup = try group.serializedData()
        r.outputFields = outputFields
        r.nq = Int64(vectors.count)
        let params: [(String, String)] = [("anns_field", field), ("topk", "\(k)"), ("metric_type", "IP"),
                                          ("params", "{\"ef\": \(max(ef, k))}"), ("round_decimal", "-1")]
        r.searchParams = params.map { p in KeyValue.with { ($0.key, $0.value) = p } }
        (r.consistencyLevel, r.guaranteeTimestamp) = readLevel
        let req = r
        return try await call("Search", { try await $0.search(req, metadata: $1, options: $2) }, status: { $0.status }).results
    }

    private let writeLock = NSLock()
    private var lastWrite: UInt64 = 0

    /// Remembers the timestamp Milvus gave a write, for session reads.
    private func noteWrite(_ timestamp: UInt64) {
        writeLock.withLock { lastWrite = max(lastWrite, timestamp) }
    }

    /// The level of searches and point lookups: the configured fast level, or, once this client has written,
    /// "customized" with the last write's timestamp as guarantee (see `MilvusOptions.searchConsistency`).
    var readLevel: (Milvus_Proto_Common_ConsistencyLevel, UInt64) {
        let written = writeLock.withLock { lastWrite }
        if written > 0, options.searchConsistency != .strong { return (.customized, written) }
        return (Self.level(options.searchConsistency), 0)
    }

    var consistencyLevel: Milvus_Proto_Common_ConsistencyLevel { Self.level(options.consistency) }

    static func level(_ c: MilvusOptions.Consistency) -> Milvus_Proto_Common_ConsistencyLevel {
        switch c {
        case .strong: return .strong
        case .session: return .session
        case .bounded: return .bounded
        case .eventually: return .eventually
        }
    }
}

/// Runs async work from synchronous code: the synchronous `VectorIndex` API of the CLI, tests and start-up.
/// Never call it where many calls can be in flight from worker threads: on Linux Swift's global executor runs its
/// tasks on libdispatch's worker pool (a few threads per core, shared with every DispatchQueue), so the task
/// awaited here needs a worker that may not be free; once every worker waits here, nothing runs. The server uses
/// `MilvusIndex.makeAsync()` instead, which awaits the RPCs.
func blockingWait<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
        done.signal()
    }
    done.wait()
    guard let result = box.result else { throw MilvusError.malformedReply(operation: "call", reason: "no result") }
    return try result.get()
}

final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, Error>?
}
