"""PyTorch side of the SigLIP / SigLIP2 benchmark: transformers' SiglipModel / Siglip2Model in fp32 with random
weights of the real base architectures, timed as `vlm bench --model DIR` times SwiftVLM (warm-up, then the
median of repeated runs; same batch, threads and inputs). Prints one JSON object like `vlm bench --format json`.

    python Benchmarks/bench_torch_siglip.py --config siglip-b16-224 --save /tmp/siglip-b16-224 --tokenizer-from Tests/Fixtures/siglip/siglip-tiny
    python Benchmarks/bench_torch_siglip.py --config siglip-b16-224 --batch 8 --threads 2

--save DIR writes the same random model as a checkpoint directory transformers and `vlm` both load (config.json,
model.safetensors, the image processor config, and the tokenizer files copied from --tokenizer-from: the ids
are synthetic, only the files' presence matters). Texts are 64 tokens (padding="max_length", as SiglipProcessor
pads them); NaFlex images are square, so they fill max_num_patches (256) patches.
"""
import argparse
import json
import os
import shutil
import statistics
import time

import torch

PRESETS = {
    # google/siglip-base-patch16-224: transformers' SiglipConfig defaults.
    "siglip-b16-224": dict(kind="siglip"),
    # google/siglip2-base-patch16-naflex: Siglip2Config defaults (patch 16, 256 patches), 256k Gemma vocabulary.
    "siglip2-b16-naflex": dict(kind="siglip2", text=dict(vocab_size=256000)),
}


def timed(fn, seconds, min_runs=3):
    fn()  # warm-up
    times = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def build(name):
    spec = PRESETS[name]
    torch.manual_seed(0)
    if spec["kind"] == "siglip":
        from transformers import SiglipConfig, SiglipModel
        config = SiglipConfig()
        config.architectures = ["SiglipModel"]
        return SiglipModel(config).eval(), spec
    from transformers import Siglip2Config, Siglip2Model
    config = Siglip2Config(text_config=spec.get("text", {}))
    config.architectures = ["Siglip2Model"]
    return Siglip2Model(config).eval(), spec


def save(model, spec, d, tokenizer_from):
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d)
    if spec["kind"] == "siglip":
        pre = {"image_processor_type": "SiglipImageProcessor", "do_resize": True, "size": {"height": 224, "width": 224},
               "resample": 3, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
               "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
    else:
        pre = {"image_processor_type": "Siglip2ImageProcessor", "do_resize": True, "resample": 2, "do_rescale": True,
               "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": [0.5, 0.5, 0.5],
               "image_std": [0.5, 0.5, 0.5], "patch_size": 16, "max_num_patches": 256}
    with open(os.path.join(d, "preprocessor_config.json"), "w") as f:
        json.dump(pre, f, indent=2)
    for n in os.listdir(tokenizer_from):
        if n.startswith("tokenizer") or n in ("spiece.model", "special_tokens_map.json"):
            shutil.copy(os.path.join(tokenizer_from, n), os.path.join(d, n))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="siglip-b16-224", choices=sorted(PRESETS))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--save")
    ap.add_argument("--tokenizer-from")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, spec = build(args.config)
    if args.save:
        save(model, spec, args.save, args.tokenizer_from)
        print(json.dumps({"saved": args.save}))
        return
    b = args.batch
    g = torch.Generator().manual_seed(42)
    if spec["kind"] == "siglip":
        size = model.config.vision_config.image_size
        pixel = dict(pixel_values=torch.randn(b, 3, size, size, generator=g))
    else:
        p = model.config.vision_config.patch_size
        n = model.config.vision_config.num_patches
        side = int(n ** 0.5)
        pixel = dict(pixel_values=torch.randn(b, n, 3 * p * p, generator=g),
                     pixel_attention_mask=torch.ones(b, n, dtype=torch.long),
                     spatial_shapes=torch.tensor([[side, side]] * b))
    vocab = model.config.text_config.vocab_size
    ids = torch.randint(0, vocab, (b, 64), generator=g)
    with torch.inference_mode():
        image_t = timed(lambda: model.get_image_features(**pixel), args.seconds)
        text_t = timed(lambda: model.get_text_features(input_ids=ids), args.seconds)
    print(json.dumps({"engine": f"pytorch {torch.__version__} fp32", "config": args.config, "batch": b,
                      "threads": torch.get_num_threads(), "image_per_s": b / image_t, "text_per_s": b / text_t,
                      "image_batch_ms": image_t * 1000, "text_batch_ms": text_t * 1000}))


if __name__ == "__main__":
    main()
