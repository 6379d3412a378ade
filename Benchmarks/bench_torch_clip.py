"""PyTorch side of the CLIP benchmark: transformers' CLIPModel in fp32 with random weights, the same
configuration, batch and thread count as `vlm bench`, timed the same way (warm-up, then the median of
repeated runs). Prints one JSON object like `vlm bench --format json`.

    python Benchmarks/bench_torch_clip.py --config b32 --batch 8 --threads 2
    python Benchmarks/bench_torch_clip.py --config b32 --save /tmp/clip-b32-random   # writes the checkpoint only

--save DIR writes the same random-initialised model as a Hugging Face checkpoint directory (config.json,
model.safetensors, the real CLIP tokenizer files from Tests/Fixtures/tokenizers/clip, a default
CLIPImageProcessor config) for `vlm serve`/`vlm bench --model` runs at real size (e.g. Benchmarks/server_load.sh).
Text is timed both as users call it (padding="max_length", 77 tokens, as CLIP was trained and as most
pipelines do) and padded to the longest prompt only.
"""
import argparse
import json
import statistics
import time

import torch
from transformers import CLIPConfig, CLIPModel

PRESETS = {
    "b32": dict(),
    "b16": dict(vision_config=dict(patch_size=16)),
    "l14": dict(vision_config=dict(patch_size=14, hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                   num_attention_heads=16),
                text_config=dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12), projection_dim=768),
}
PROMPT_LENGTHS = [7, 8, 9, 7, 10, 8, 7, 9]  # "a photo of a {label}." with BOS/EOS: short prompts


def timed(fn, seconds, min_runs=3):
    fn()  # warm-up
    times = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def save(model, out):
    import os
    import shutil
    from transformers import CLIPImageProcessor
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    CLIPImageProcessor(size={"shortest_edge": model.config.vision_config.image_size},
                       crop_size={"height": model.config.vision_config.image_size,
                                  "width": model.config.vision_config.image_size}).save_pretrained(out)
    tokenizer = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "tokenizers", "clip")
    for name in os.listdir(tokenizer):
        shutil.copy(os.path.join(tokenizer, name), os.path.join(out, name))
    print(f"wrote {out}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="b32", choices=sorted(PRESETS))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    ap.add_argument("--save", metavar="DIR", help="write the random checkpoint to DIR and exit")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = CLIPConfig(**PRESETS[args.config])
    cfg._attn_implementation = args.attn
    model = CLIPModel(cfg).eval()
    if args.save:
        save(model, args.save)
        return
    size = cfg.vision_config.image_size
    pixels = torch.randn(args.batch, 3, size, size)
    lengths = [PROMPT_LENGTHS[i % len(PROMPT_LENGTHS)] for i in range(args.batch)]

    def ids(pad_to):
        rows, mask = [], []
        for n in lengths:
            row = [49406] + [320 + (7 * i) % 4000 for i in range(n - 2)] + [49407]
            rows.append(row + [49407] * (pad_to - n))
            mask.append([1] * n + [0] * (pad_to - n))
        return torch.tensor(rows), torch.tensor(mask)

    ids77, mask77 = ids(77)
    idsL, maskL = ids(max(lengths))
    with torch.inference_mode():
        t_img = timed(lambda: model.get_image_features(pixel_values=pixels), args.seconds)
        t_txt77 = timed(lambda: model.get_text_features(input_ids=ids77, attention_mask=mask77), args.seconds)
        t_txtL = timed(lambda: model.get_text_features(input_ids=idsL, attention_mask=maskL), args.seconds)
    print(json.dumps({
        "engine": f"pytorch {torch.__version__} transformers fp32 ({args.attn})",
        "config": args.config, "batch": args.batch, "threads": args.threads,
        "image_per_s": args.batch / t_img,
        "text_per_s": args.batch / t_txt77,
        "text_per_s_padded_longest": args.batch / t_txtL,
        "image_batch_ms": t_img * 1000, "text_batch_ms": t_txt77 * 1000,
    }))


if __name__ == "__main__":
    main()
