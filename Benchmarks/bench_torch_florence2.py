"""PyTorch peer of `vlm bench-florence`: Florence2ForConditionalGeneration (transformers 5.25) with random weights in
the Florence-2-base / -large configuration, one random 768x768 image: the encoder side (vision tower, projector,
BART encoder) and <CAPTION> / <OD>-length prompts answered with beam search (num_beams 3, no_repeat_ngram_size 3,
exactly --tokens new tokens), fp32 and bf16, median of --repeats runs.

    python Benchmarks/bench_torch_florence2.py --config base [--threads 2]
"""
import argparse
import json
import statistics
import time

import torch
from transformers import BartConfig, Florence2Config, Florence2ForConditionalGeneration, Florence2VisionConfig

CONFIGS = {
    "base": dict(embed_dim=[128, 256, 512, 1024], num_heads=[4, 8, 16, 32], num_groups=[4, 8, 16, 32], projection_dim=768,
                 d_model=768, layers=6, heads=12, ffn=3072),
    "large": dict(embed_dim=[256, 512, 1024, 2048], num_heads=[8, 16, 32, 64], num_groups=[8, 16, 32, 64], projection_dim=1024,
                  d_model=1024, layers=12, heads=16, ffn=4096),
}


def build(name):
    c = CONFIGS[name]
    vision = Florence2VisionConfig(embed_dim=c["embed_dim"], num_heads=c["num_heads"], num_groups=c["num_groups"],
                                   projection_dim=c["projection_dim"], depths=[1, 1, 9, 1], window_size=12)
    text = BartConfig(vocab_size=51328, d_model=c["d_model"], encoder_layers=c["layers"], decoder_layers=c["layers"],
                      encoder_attention_heads=c["heads"], decoder_attention_heads=c["heads"], encoder_ffn_dim=c["ffn"],
                      decoder_ffn_dim=c["ffn"], max_position_embeddings=1024)
    return Florence2ForConditionalGeneration(Florence2Config(vision_config=vision.to_dict(), text_config=text.to_dict(),
                                                             image_token_id=51289)).eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="base", choices=list(CONFIGS))
    ap.add_argument("--side", type=int, default=768)
    ap.add_argument("--beams", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build(args.config)
    pixels = torch.rand(1, 3, args.side, args.side) * 4 - 2
    with torch.no_grad():
        n_image = model.get_image_features(pixel_values=pixels).pooler_output.shape[1]

    def prompt(words):
        return torch.tensor([[51289] * n_image + [0] + [100 + i for i in range(words)] + [2]])

    def median(fn):
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    for dtype in [torch.float32, torch.bfloat16]:
        m = model.to(dtype)
        px = pixels.to(dtype)
        with torch.no_grad():
            # The encoder side plus one decoder step (Florence2Model.forward runs the decoder too).
            encoder = median(lambda: m.model(input_ids=prompt(7), pixel_values=px, decoder_input_ids=torch.tensor([[2]])))

            def answer(words):
                m.generate(input_ids=prompt(words), pixel_values=px, num_beams=args.beams, no_repeat_ngram_size=3,
                           max_new_tokens=args.tokens, min_new_tokens=args.tokens, do_sample=False)
            caption = median(lambda: answer(7))
            od = median(lambda: answer(10))
        print(json.dumps({"engine": f"torch-{str(dtype).replace('torch.', '')}", "config": args.config, "image_side": args.side,
                          "encoder_seconds": encoder, "caption_seconds": caption, "od_seconds": od, "beams": args.beams,
                          "new_tokens": args.tokens, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
