import Foundation
import Testing
import VLMTensor
@testable import VLMTraining

@Suite struct HardNegativeTests {
    @Test("contrastive loss with extra negative texts: gradients and reduction to CLIP's loss")
    func negatives() {
        var rng = TestRandom(41)
        let img = rng.tensor([4, 6]), txt = rng.tensor([7, 6])  // 4 captions + 3 hard negatives
        let scale = Tensor(shape: [1], values: [1.1])
        let result = ContrastiveLoss.forward(imageEmbeds: img, textEmbeds: txt, logitScale: scale[0])
        let (dImg, dTxt, dScale) = ContrastiveLoss.backward(result, imageEmbeds: img, textEmbeds: txt)
        #expect(dTxt.shape == [7, 6])
        #expect(result.logitsPerImage.shape == [4, 7])
        let loss = { ContrastiveLoss.forward(imageEmbeds: img, textEmbeds: txt, logitScale: scale[0]).exactLoss }
        checkGradient("dImage", value: img, analytic: dImg, h: 1e-3, atol: 1e-4, loss: loss)
        checkGradient("dText", value: txt, analytic: dTxt, h: 1e-3, atol: 1e-4, loss: loss)
        checkGradient("dLogitScale", value: scale, analytic: Tensor(shape: [1], values: [dScale]), h: 1e-3, atol: 1e-4, loss: loss)
        // Negatives only add image->text candidates, so the loss can only grow.
        let plain = ContrastiveLoss.forward(imageEmbeds: img, textEmbeds: txt.rows(0 ..< 4), logitScale: scale[0]).exactLoss
        #expect(result.exactLoss > plain)
    }

    @Test("whole model: negatives reach the text tower's gradients")
    func modelWithNegatives() throws {
        let model = try microModel()
        var rng = TestRandom(42)
        let pixels = rng.tensor([3, 3, 6, 6])
        let ids = [[15, 3, 4, 16], [15, 5, 16], [15, 7, 8, 9, 16]], negatives = [[15, 4, 3, 16], [15, 9, 8, 7, 16]]
        let pass = try model.forward(pixels: pixels, ids: ids, negativeIDs: negatives)
        let grads = model.backward(pass)
        let emb = try #require(grads["text_model.embeddings.token_embedding.weight"])
        // Token 9 occurs in a caption and a negative; its row must carry gradient.
        #expect((0 ..< 8).contains { emb[9 * 8 + $0] != 0 })
        let without = try model.forward(pixels: pixels, ids: ids).exactLoss
        #expect(pass.exactLoss > without)
    }
}
