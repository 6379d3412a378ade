"""PyTorch side of the training benchmark: one contrastive training step (forward, backward, global-norm
clipping at 1, torch.optim.AdamW, the logit_scale clamp) of transformers' CLIPModel with the same from-scratch
preset, batch, caption length and thread count as `vlm bench-train`, on the same kind of synthetic batch
(Gaussian pixels, distinct fixed-length captions). Prints one JSON object like `vlm bench-train --format json`.

    python Benchmarks/bench_torch_train.py --config tiny --batch 64 --tokens 12 --threads 2
"""
import argparse
import json
import math
import statistics
import time

import torch
from transformers import CLIPConfig, CLIPModel

# CLIPPresets in Sources/VLMTraining/DataTokenizer.swift: 64x64 images, patch 8, quick_gelu.
PRESETS = {
    "micro": dict(v=(32, 64, 1, 2), t=(32, 64, 1, 2), proj=32, patch=16),
    "tiny": dict(v=(128, 512, 4, 4), t=(128, 512, 3, 4), proj=128, patch=8),
    "small": dict(v=(192, 768, 6, 6), t=(128, 512, 4, 4), proj=128, patch=8),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="tiny", choices=sorted(PRESETS))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=12)
    ap.add_argument("--vocab", type=int, default=69)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    p = PRESETS[a.config]
    (vh, vi, vl, vn), (th, ti, tl, tn) = p["v"], p["t"]
    cfg = CLIPConfig(
        vision_config=dict(hidden_size=vh, intermediate_size=vi, num_hidden_layers=vl, num_attention_heads=vn,
                           image_size=64, patch_size=p["patch"], hidden_act="quick_gelu"),
        text_config=dict(hidden_size=th, intermediate_size=ti, num_hidden_layers=tl, num_attention_heads=tn,
                         vocab_size=a.vocab, max_position_embeddings=max(a.tokens, 16), hidden_act="quick_gelu",
                         bos_token_id=a.vocab - 3, eos_token_id=a.vocab - 2, pad_token_id=a.vocab - 1),
        projection_dim=p["proj"])
    model = CLIPModel(cfg).train()
    pixels = torch.randn(a.batch, 3, 64, 64)
    v = a.vocab
    ids = torch.tensor([[v - 3] + [(b * 7 + i * 13) % (v - 3) for i in range(a.tokens - 2)] + [v - 2]
                        for b in range(a.batch)])
    decay = [q for n, q in model.named_parameters() if q.ndim >= 2 and "embedding" not in n]
    rest = [q for n, q in model.named_parameters() if not (q.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.98), eps=1e-6)

    def step():
        out = model(input_ids=ids, pixel_values=pixels, return_loss=True)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))

    for _ in range(3):
        step()
    times = []
    start = time.perf_counter()
    while len(times) < 5 or time.perf_counter() - start < a.seconds:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(json.dumps(dict(engine=f"pytorch {torch.__version__} fp32", config=a.config, batch=a.batch, tokens=a.tokens,
                          threads=torch.get_num_threads(), steps=len(times), step_ms=med * 1000,
                          samples_per_s=a.batch / med)))


if __name__ == "__main__":
    main()
