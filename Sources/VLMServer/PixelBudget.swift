import Foundation
import VLMImage

/// The decoded pixels of all requests in flight, bounded (ServerConfig.maxPixelsInFlight): a request's images
/// are measured from their headers first, refused whole when they alone exceed the budget (422), answered 503
/// with Retry-After when other requests hold too much of it right now, and only then decoded. Without this a
/// 20 MB body of small, highly compressed 25-megapixel PNGs would decode to tens of gigabytes.
public final class PixelBudget: @unchecked Sendable {
    private let lock = NSLock()
    private var used = 0

    public init() {}

    /// Pixels currently reserved.
    public var inUse: Int { lock.withLock { used } }

    /// Reserves `pixels` under `limit`, or throws `overloaded` (503) when that would exceed it.
    func reserve(_ pixels: Int, limit: Int, retryAfter: Int) throws -> Reservation {
        try lock.withLock {
            guard used + pixels <= limit else { throw ServerError.overloaded(retryAfter: retryAfter) }
            used += pixels
        }
        return Reservation(budget: self, pixels: pixels)
    }

    fileprivate func release(_ pixels: Int) { lock.withLock { used -= pixels } }

    /// Pixels held by one request; returned to the budget when released or dropped.
    final class Reservation: @unchecked Sendable {
        private let budget: PixelBudget
        private var pixels: Int
        fileprivate init(budget: PixelBudget, pixels: Int) {
            self.budget = budget
            self.pixels = pixels
        }
        func release() {
            budget.release(pixels)
            pixels = 0
        }
        deinit { budget.release(pixels) }
    }
}

extension RequestInput {
    /// Decodes a request's images under the server's pixel budget: every header is read first (each image
    /// within `maxImagePixels`, 422 naming it; all together within `maxPixelsInFlight`, 422), the pixels are
    /// reserved (503 while other requests hold the budget), then decoded. `index(i)` is the image's position in
    /// the request for error messages. Keep the reservation until the decoded images are dropped.
    static func images(_ values: [String], config: ServerConfig, count: Int, index: (Int) -> Int = { $0 })
        throws -> (images: [RGBImage], reservation: PixelBudget.Reservation) {
        var bytes: [Data] = []
        var total = 0
        for (i, value) in values.enumerated() {
            do {
                let data = try imageBytes(value)
                let (_, width, height) = try ImageDecoder.probe(data)
                guard width * height <= config.maxImagePixels else {
                    throw ServerError.imageTooLarge(width: width, height: height, limit: config.maxImagePixels)
                }
                total += width * height
                bytes.append(data)
            } catch let error as ServerError {
                throw error.at(index: index(i), count: count)
            } catch {
                throw ServerError.from(error).at(index: index(i), count: count)
            }
        }
        guard total <= config.maxPixelsInFlight else {
            throw ServerError.imageTooLargeToProcess("the request's \(values.count) images total \(total) pixels; the server takes at most \(config.maxPixelsInFlight) pixels per request (--max-pixels-in-flight)")
        }
        let reservation = try config.pixelBudget.reserve(total, limit: config.maxPixelsInFlight, retryAfter: config.retryAfterSeconds)
        let images = try bytes.enumerated().map { i, data -> RGBImage in
            do { return try ImageDecoder.decode(data, maxPixels: config.maxImagePixels, alpha: .compositeOnWhite) } catch {
                throw ServerError.from(error).at(index: index(i), count: count)
            }
        }
        return (images, reservation)
    }
}
