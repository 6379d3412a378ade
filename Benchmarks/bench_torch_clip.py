"""PyTorch side of the CLIP benchmark: transformers' CLIPModel with random weights, the same configuration, batch
and thread count as `vlm bench`, timed the same way (warm-up, then the median of repeated runs). Prints one JSON
object like `vlm bench --format json`.

    python Benchmarks/bench_torch_clip.py --config b32 --batch 8 --threads 2
    python Benchmarks/bench_torch_clip.py --engine torch-bf16 ...  # torch.autocast(cpu, bfloat16)
    python Benchmarks/bench_torch_clip.py --engine ort ...         # ONNX Runtime fp32 (image tower only)
    python Benchmarks/bench_torch_clip.py --engine ort-int8 ...    # ONNX Runtime, quantize_dynamic (QInt8 weights)

The ONNX engines export the image tower (get_image_features) with torch.onnx.export into a temporary directory
and time onnxruntime's InferenceSession (intra-op threads = --threads, sequential execution); quantize_dynamic is
ORT's dynamic int8 (per-tensor uint8 activations computed at run time, int8 weights), the ORT int8 peer of
`vlm bench --precision int8`.
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
    ap.add_argument("--engine", default="torch", choices=["torch", "torch-bf16", "ort", "ort-int8"])
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
    if args.engine.startswith("ort"):
        t_img = ort_image_seconds(model, pixels, args)
        import onnxruntime
        print(json.dumps({
            "engine": f"onnxruntime {onnxruntime.__version__} {'dynamic int8 (quantize_dynamic, QInt8 weights)' if args.engine == 'ort-int8' else 'fp32'}",
            "config": args.config, "batch": args.batch, "threads": args.threads,
            "image_per_s": args.batch / t_img, "image_batch_ms": t_img * 1000,
        }))
        return
    bf16 = args.engine == "torch-bf16"
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        t_img = timed(lambda: model.get_image_features(pixel_values=pixels), args.seconds)
        t_txt77 = timed(lambda: model.get_text_features(input_ids=ids77, attention_mask=mask77), args.seconds)
        t_txtL = timed(lambda: model.get_text_features(input_ids=idsL, attention_mask=maskL), args.seconds)
    print(json.dumps({
        "engine": f"pytorch {torch.__version__} transformers {'bf16 autocast' if bf16 else 'fp32'} ({args.attn})",
        "config": args.config, "batch": args.batch, "threads": args.threads,
        "image_per_s": args.batch / t_img,
        "text_per_s": args.batch / t_txt77,
        "text_per_s_padded_longest": args.batch / t_txtL,
        "image_batch_ms": t_img * 1000, "text_batch_ms": t_txt77 * 1000,
    }))


class ImageTower(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        out = self.model.get_image_features(pixel_values=pixel_values)
        return out if isinstance(out, torch.Tensor) else out.pooler_output


def ort_image_seconds(model, pixels, args):
    """Median seconds per batch of the exported image tower under onnxruntime."""
    import os
    import tempfile
    import onnxruntime as ort
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "vision.onnx")
        with torch.inference_mode():
            torch.onnx.export(ImageTower(model), (pixels,), path, input_names=["pixel_values"], output_names=["embeds"],
                              opset_version=17, dynamo=False)
        if args.engine == "ort-int8":
            from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic
            pre = os.path.join(tmp, "vision-pre.onnx")
            try:
                quant_pre_process(path, pre)
            except Exception:  # pre-processing is an optimisation; quantize the plain export if it fails
                pre = path
            quantized = os.path.join(tmp, "vision-int8.onnx")
            quantize_dynamic(pre, quantized, weight_type=QuantType.QInt8)
            path = quantized
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        feed = {"pixel_values": pixels.numpy()}
        return timed(lambda: session.run(None, feed), args.seconds)

if __name__ == "__main__":
    main()
