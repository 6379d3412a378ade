"""PyTorch side of the generative training benchmark: one training step (forward, backward, global-norm clipping
at 1, torch.optim.AdamW with no decay on 1-D tensors) of transformers' LlavaForConditionalGeneration loaded from
the same checkpoint, with the same batch shape, scored tokens, frozen or trained vision tower and thread count as
`vlm bench-train-vlm`. Prints one JSON object like `vlm bench-train-vlm --format json`.

    python Benchmarks/bench_torch_train_vlm.py --model Models/scenes-vlm --batch 32 --tokens 110 --answer 24 --threads 2
    (--autocast bf16: the forward under bf16 autocast, the peer of `vlm bench-train-vlm --compute bf16`)
"""
import argparse
import json
import statistics
import time

import torch
from transformers import LlavaForConditionalGeneration


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="Models/scenes-vlm")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=110)
    ap.add_argument("--answer", type=int, default=24)
    ap.add_argument("--freeze-vision", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--autocast", choices=["none", "bf16"], default="none",
                    help="bf16: the forward under torch.autocast('cpu', bfloat16) (the peer of `--compute bf16`)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration.from_pretrained(a.model, dtype=torch.float32, attn_implementation="sdpa")
    model.train()
    cfg = model.config
    image_id, image_tokens = cfg.image_token_id, cfg.image_seq_length
    vocab = cfg.text_config.vocab_size
    words = max(1, min(image_id, vocab) - 3)
    ids, labels = [], []
    for b in range(a.batch):
        text = [(b * 7 + t * 13) % words + 3 for t in range(a.tokens - image_tokens - 1)]
        seq = [cfg.text_config.bos_token_id] + text[:2] + [image_id] * image_tokens + text[2:]
        ids.append(seq)
        labels.append([tok if i >= a.tokens - a.answer else -100 for i, tok in enumerate(seq)])
    input_ids, labels = torch.tensor(ids), torch.tensor(labels)
    v = cfg.vision_config
    pixels = torch.randn(a.batch, 3, v.image_size, v.image_size)
    if a.freeze_vision:
        for p in model.model.vision_tower.parameters():
            p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.05},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=1e-4, betas=(0.9, 0.98), eps=1e-8)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.autocast == "bf16"):
            loss = model(input_ids=input_ids, pixel_values=pixels, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    for _ in range(3):
        step()
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < a.seconds or len(times) < 5:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(json.dumps({"engine": f"pytorch {torch.__version__} {'bf16 autocast' if a.autocast == 'bf16' else 'fp32'}", "batch": a.batch, "tokens": a.tokens, "answer": a.answer,
                      "freeze_vision": a.freeze_vision, "threads": a.threads, "steps": len(times), "step_ms": med * 1000,
                      "samples_per_s": a.batch / med, "tokens_per_s": a.batch * a.tokens / med}))


if __name__ == "__main__":
    main()
