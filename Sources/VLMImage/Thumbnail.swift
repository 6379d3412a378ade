import Foundation

/// Small JPEG previews of photos (a search page's result grid): upright (EXIF orientation applied), alpha
/// composited on white, longest edge at most `maxEdge` (never enlarged), Pillow's bicubic filter.
///
/// Memory: the decoded original (width x height x 3 bytes, refused above `maxPixels` from the header, before
/// any pixel buffer exists) plus the output-bounded resize (`resizeAndCenterCrop` with the crop equal to the
/// target: the thumbnail and one intermediate pass of at most maxEdge x the original's other side).
public enum Thumbnail {
    /// The thumbnail's size for a `width` x `height` image: longest edge `maxEdge` (or the image's own size
    /// when smaller), the other side rounded, at least 1.
    public static func size(width: Int, height: Int, maxEdge: Int) -> (width: Int, height: Int) {
        let longest = max(width, height)
        guard longest > maxEdge else { return (width, height) }
        let scale = Double(maxEdge) / Double(longest)
        return (max(1, min(maxEdge, Int((Double(width) * scale).rounded()))), max(1, min(maxEdge, Int((Double(height) * scale).rounded()))))
    }

    /// The JPEG bytes of `data`'s thumbnail (any format `ImageDecoder` reads). `maxEdge` in 16...4096.
    public static func jpeg(_ data: Data, maxEdge: Int = 256, maxPixels: Int = ImageDecoder.defaultMaxPixels,
                            quality: Int = 85) throws -> Data {
        guard (16 ... 4096).contains(maxEdge) else { throw ImageError.invalidArgument("thumbnail edge \(maxEdge) is outside 16...4096") }
        let image = try ImageDecoder.decode(data, maxPixels: maxPixels, alpha: .compositeOnWhite)
        let (w, h) = size(width: image.width, height: image.height, maxEdge: maxEdge)
        let small = try (w, h) == (image.width, image.height) ? image
            : resizeAndCenterCrop(image, width: w, height: h, filter: .bicubic, cropHeight: h, cropWidth: w)
        do { return try ImageEncoder.jpeg(width: w, height: h, rgb: small.pixels, quality: quality) } catch {
            throw ImageError.invalidArgument("thumbnail: \(error)")
        }
    }
}
