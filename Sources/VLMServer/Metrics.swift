import Foundation
import Hummingbird

/// Prometheus metrics, kept by hand (no metrics package): per-route request counters and latency
/// histograms, in-flight requests, encoder batch sizes and durations, queue rejections. Queue depth is read
/// live from the batcher at scrape time. One lock guards everything; updates are a few integer adds.
public final class ServerMetrics: @unchecked Sendable {
    struct Histogram {
        let bounds: [Double]
        var counts: [UInt64]
        var sum: Double = 0
        var count: UInt64 = 0

        init(bounds: [Double]) {
            self.bounds = bounds
            counts = Array(repeating: 0, count: bounds.count)
        }

        mutating func observe(_ value: Double) {
            // Stored per bucket (not cumulative); rendering accumulates, as the text format wants `le` buckets.
            if let i = bounds.firstIndex(where: { value <= $0 }) { counts[i] += 1 }
            sum += value
            count += 1
        }
    }

    struct RequestKey: Hashable { let route: String, method: String, status: Int }
    struct RouteKey: Hashable { let route: String, method: String }

    static let latencyBounds: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    static let batchBounds: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096]

    private let lock = NSLock()
    private var requests: [RequestKey: UInt64] = [:]
    private var latencies: [RouteKey: Histogram] = [:]
    private var inFlight = 0
    private var batchSizes: [String: Histogram] = [:]
    private var batchSeconds: [String: Histogram] = [:]
    private var encodedItems: [String: UInt64] = [:]
    private var rejectedItems: [String: UInt64] = [:]
    private let started = Date()

    public init() {}

    func requestStarted() {
        lock.withLock { inFlight += 1 }
    }

    func requestFinished(route: String, method: String, status: Int, seconds: Double) {
        lock.withLock {
            inFlight -= 1
            requests[RequestKey(route: route, method: method, status: status), default: 0] += 1
            latencies[RouteKey(route: route, method: method), default: Histogram(bounds: Self.latencyBounds)].observe(seconds)
        }
    }

    func batchRan(kind: String, size: Int, seconds: Double) {
        lock.withLock {
            batchSizes[kind, default: Histogram(bounds: Self.batchBounds)].observe(Double(size))
            batchSeconds[kind, default: Histogram(bounds: Self.latencyBounds)].observe(seconds)
            encodedItems[kind, default: 0] += UInt64(size)
        }
    }

    func rejected(kind: String, count: Int) {
        lock.withLock { rejectedItems[kind, default: 0] += UInt64(count) }
    }

    /// Largest batch seen for `kind` (tests use it to check that batching happened).
    func maxBatchBucket(kind: String) -> Double? {
        lock.lock()
        defer { lock.unlock() }
        guard let h = batchSizes[kind] else { return nil }
        return h.counts.lastIndex(where: { $0 > 0 }).map { h.bounds[$0] }
    }

    /// The Prometheus text exposition format (version 0.0.4).
    func render(queueDepths: [String: Int], queueCapacity: Int, indexSize: Int?) -> String {
        lock.lock()
        defer { lock.unlock() }
        var out = ""
        func header(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        func histogram(_ name: String, _ labels: String, _ h: Histogram) {
            var cumulative: UInt64 = 0
            let sep = labels.isEmpty ? "" : ","
            for (bound, c) in zip(h.bounds, h.counts) {
                cumulative += c
                out += "\(name)_bucket{\(labels)\(sep)le=\"\(Self.number(bound))\"} \(cumulative)\n"
            }
            out += "\(name)_bucket{\(labels)\(sep)le=\"+Inf\"} \(h.count)\n"
            let braces = labels.isEmpty ? "" : "{\(labels)}"
            out += "\(name)_sum\(braces) \(Self.number(h.sum))\n\(name)_count\(braces) \(h.count)\n"
        }

        header("vlm_http_requests_total", "counter", "HTTP requests by route, method and status.")
        for (k, v) in requests.sorted(by: { ($0.key.route, $0.key.method, $0.key.status) < ($1.key.route, $1.key.method, $1.key.status) }) {
            out += "vlm_http_requests_total{route=\"\(Self.escape(k.route))\",method=\"\(k.method)\",status=\"\(k.status)\"} \(v)\n"
        }
        header("vlm_http_request_duration_seconds", "histogram", "Time to produce a response, by route and method.")
        for (k, h) in latencies.sorted(by: { ($0.key.route, $0.key.method) < ($1.key.route, $1.key.method) }) {
            histogram("vlm_http_request_duration_seconds", "route=\"\(Self.escape(k.route))\",method=\"\(k.method)\"", h)
        }
        header("vlm_http_requests_in_flight", "gauge", "Requests being handled now.")
        out += "vlm_http_requests_in_flight \(inFlight)\n"
        header("vlm_batch_size", "histogram", "Items per encoder batch, by kind (text, image).")
        for (k, h) in batchSizes.sorted(by: { $0.key < $1.key }) { histogram("vlm_batch_size", "kind=\"\(k)\"", h) }
        header("vlm_batch_duration_seconds", "histogram", "Encoder time per batch, by kind.")
        for (k, h) in batchSeconds.sorted(by: { $0.key < $1.key }) { histogram("vlm_batch_duration_seconds", "kind=\"\(k)\"", h) }
        header("vlm_encoded_items_total", "counter", "Items encoded, by kind.")
        for (k, v) in encodedItems.sorted(by: { $0.key < $1.key }) { out += "vlm_encoded_items_total{kind=\"\(k)\"} \(v)\n" }
        header("vlm_queue_rejected_items_total", "counter", "Items refused with 503 because the queue was full, by kind.")
        for (k, v) in rejectedItems.sorted(by: { $0.key < $1.key }) { out += "vlm_queue_rejected_items_total{kind=\"\(k)\"} \(v)\n" }
        header("vlm_queue_depth", "gauge", "Items waiting for the encoder, by kind.")
        for (k, v) in queueDepths.sorted(by: { $0.key < $1.key }) { out += "vlm_queue_depth{kind=\"\(k)\"} \(v)\n" }
        header("vlm_queue_capacity", "gauge", "Items each queue holds before requests get 503.")
        out += "vlm_queue_capacity \(queueCapacity)\n"
        if let indexSize {
            header("vlm_index_size", "gauge", "Vectors in the index.")
            out += "vlm_index_size \(indexSize)\n"
        }
        header("vlm_uptime_seconds", "gauge", "Seconds since the server started.")
        out += "vlm_uptime_seconds \(Self.number(Date().timeIntervalSince(started)))\n"
        return out
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    static func number(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : String(x)
    }
}

/// Counts every request (including 404s for unknown routes) under its route pattern, never the raw path,
/// so a client probing random URLs cannot blow up the number of series.
struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics
    static var knownMethods: Set<String> { ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"] }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = DispatchTime.now().uptimeNanoseconds
        let route = context.endpointPath ?? "unmatched"
        let method = Self.knownMethods.contains(request.method.rawValue) ? request.method.rawValue : "OTHER"
        metrics.requestStarted()
        var status = 500
        defer {
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            metrics.requestFinished(route: route, method: method, status: status, seconds: seconds)
        }
        do {
            let response = try await next(request, context)
            status = response.status.code
            return response
        } catch let error as HTTPResponseError {
            status = error.status.code
            throw error
        } catch is CancellationError {
            status = 499  // nginx's "client closed request"
            throw CancellationError()
        }
    }
}
