import Foundation
import VLMImage
import VLMLayers
import VLMTensor

// MARK: - SigLIP2 (NaFlex)

/// Siglip2Model (model_type "siglip2") is SigLIPModel with another vision input: the processor's patch sequences
/// (Siglip2ImageProcessor: images resized to at most max_num_patches patches, keeping the aspect ratio, patches
/// flattened in (ky, kx, channel) order and padded), a patch mask and each image's grid. The Hub's SigLIP2
/// FixRes checkpoints (e.g. google/siglip2-base-patch16-224) are model_type "siglip" and load as SigLIP.
extension SigLIPModel {
    public static let siglip2Family = ModelFamily(name: "SigLIP2", modelTypes: ["siglip2"], architectures: ["Siglip2Model"],
                                                  kind: .embedding, loadStored: { .dualEncoder(try SigLIPModel.load(directory: $0, storage: $1)) }) {
        .dualEncoder(try SigLIPModel.load(directory: $0))
    }

    /// pixels: pixel_values [B, N, p*p*channels], patchMask (pixel_attention_mask) [B*N] and spatialShapes
    /// [B] (rows, columns) -> [B, P], unnormalised (Siglip2Model.get_image_features' pooler_output).
    /// The encoder and the pooling head ignore padded patches (mask 0); each image's position table is resized
    /// to its grid.
    func naflexImageFeatures(_ pixels: PixelInputs) throws -> Tensor {
        let v = config.visionConfig, x = pixels.pixelValues
        let expected = "[B, max_num_patches, \(v.patchWidth)] with pixel_attention_mask [B * max_num_patches] and spatial_shapes [B] (rows, columns)"
        guard x.rank == 3, x.shape[2] == v.patchWidth, x.shape[1] > 0 else {
            throw ModelError.invalidInput("pixel_values have shape \(x.shape); this SigLIP2 (NaFlex) model takes \(expected)")
        }
        let b = x.shape[0], n = x.shape[1]
        guard let mask = pixels.patchMask, mask.count == b * n else {
            throw ModelError.invalidInput("pixel_attention_mask has \(pixels.patchMask?.count ?? 0) entries for pixel_values \(x.shape); this model takes \(expected)")
        }
        guard let grids = pixels.spatialShapes, grids.count == b else {
            throw ModelError.invalidInput("spatial_shapes has \(pixels.spatialShapes?.count ?? 0) grids for \(b) images; this model takes \(expected)")
        }
        for (i, g) in grids.enumerated() {
            // resize_positional_embeddings' checks: positive sizes that fit max_length.
            guard g.rows > 0, g.columns > 0, g.rows * g.columns <= n else {
                throw ModelError.invalidInput("spatial_shapes[\(i)] = (\(g.rows), \(g.columns)) does not fit \(n) patches")
            }
            guard mask[(i * n) ..< (i * n + n)].contains(where: { $0 != 0 }) else {
                throw ModelError.invalidInput("pixel_attention_mask of image \(i) has no patch")
            }
        }
        if b == 0 { return Tensor(zeros: [0, embeddingDim]) }
        let keyMask = mask.map { $0 != 0 ? UInt8(1) : 0 }
        let hidden = vision.lastHiddenState(vision.embeddings(patches: x, grids: grids), batch: b, length: n, keyMask: keyMask)
        return try pooledOrThrow(hidden, batch: b, length: n, keyMask: keyMask)
    }
}
