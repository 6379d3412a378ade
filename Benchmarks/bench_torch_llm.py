"""PyTorch side of `vlm bench-llm`: transformers LlamaForCausalLM with random weights, the same architecture,
prompt length, decode length and thread count; prefill and greedy decode with a KV cache, fp32 (and bf16
with --dtype bfloat16). Prints one JSON object.

    python Benchmarks/bench_torch_llm.py --config smollm2-360m --prompt 128 --tokens 64 --threads 2

With --model DIR (a llava checkpoint, e.g. from Benchmarks/make_llava_bench.py) it runs what `vlm bench-llm
--model DIR` runs: the prompt is BOS + one image's tokens + --prompt random text tokens; the image encode
(get_image_features: vision tower + projector) is timed on its own, then the decoder prefill on the merged
embeddings, then greedy decode. The same random-ids recipe is used, not the same ids (weights are random too).
"""
import argparse
import json
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM, LlavaForConditionalGeneration

PRESETS = {
    "smollm2-360m": dict(vocab_size=49152, hidden_size=960, intermediate_size=2560, num_hidden_layers=32,
                         num_attention_heads=15, num_key_value_heads=5, max_position_embeddings=8192,
                         rms_norm_eps=1e-5, tie_word_embeddings=True, rope_theta=100000.0),
    "smollm2-1.7b": dict(vocab_size=49152, hidden_size=2048, intermediate_size=8192, num_hidden_layers=24,
                         num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=8192,
                         rms_norm_eps=1e-5, tie_word_embeddings=True, rope_theta=130000.0),
    "smollm2-135m": dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                         rms_norm_eps=1e-5, tie_word_embeddings=True, rope_theta=100000.0),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="smollm2-360m", choices=sorted(PRESETS))
    ap.add_argument("--model", help="llava checkpoint directory (image encode + prefill with its image tokens)")
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prefill-runs", type=int, default=3, help="timed prefills; the median is reported")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    if args.model:
        return bench_llava(args, dtype)
    model = LlamaForCausalLM(LlamaConfig(**PRESETS[args.config])).eval().to(dtype)
    ids = torch.randint(0, model.config.vocab_size, (1, args.prompt))
    with torch.inference_mode():
        model.generate(ids[:, :8], max_new_tokens=2, do_sample=False, pad_token_id=0)  # warm-up
        # Prefill as generate() runs it (logits of the last position only, logits_to_keep=1), as SwiftVLM's prefill
        # computes them; one untimed run, then the median of --prefill-runs, each into a fresh cache.
        model(ids, use_cache=True, logits_to_keep=1)
        times = []
        for _ in range(args.prefill_runs):
            t0 = time.perf_counter()
            out = model(ids, use_cache=True, logits_to_keep=1)
            times.append(time.perf_counter() - t0)
        prefill_s = sorted(times)[len(times) // 2]
        past = out.past_key_values
        nxt = out.logits[:, -1:].argmax(-1)
        t2 = time.perf_counter()
        for _ in range(args.tokens):
            out = model(nxt, past_key_values=past, use_cache=True)
            past = out.past_key_values
            nxt = out.logits[:, -1:].argmax(-1)
        t3 = time.perf_counter()
    print(json.dumps({"engine": f"pytorch {torch.__version__} transformers {args.dtype}", "config": args.config,
                      "threads": args.threads, "prompt_tokens": args.prompt, "decode_tokens": args.tokens,
                      "prefill_tokens_per_s": args.prompt / prefill_s,
                      "decode_tokens_per_s": args.tokens / (t3 - t2)}))


def bench_llava(args, dtype):
    model = LlavaForConditionalGeneration.from_pretrained(args.model, dtype=dtype).eval()
    c = model.config
    n_image = (c.vision_config.image_size // c.vision_config.patch_size) ** 2
    text = torch.randint(0, c.text_config.vocab_size, (args.prompt,))
    text[text == c.image_token_index] = 0
    bos = c.text_config.bos_token_id if c.text_config.bos_token_id is not None else 1
    ids = torch.cat([torch.tensor([bos]), torch.full((n_image,), c.image_token_index), text])[None]
    s = c.vision_config.image_size
    pixels = (torch.rand(1, 3, s, s) * 4 - 2).to(dtype)
    embed = model.get_input_embeddings()
    vision_params = sum(p.numel() for n, p in model.named_parameters() if "vision_tower" in n or "multi_modal_projector" in n)
    with torch.inference_mode():
        # Warm-up, as `vlm bench-llm` does: one image encode, a short prefill and two decode steps.
        model.get_image_features(pixel_values=pixels, vision_feature_layer=c.vision_feature_layer,
                                 vision_feature_select_strategy=c.vision_feature_select_strategy)
        out = model(input_ids=text[None, :8], use_cache=True)
        for _ in range(2):
            out = model(input_ids=out.logits[:, -1:].argmax(-1), past_key_values=out.past_key_values, use_cache=True)
        t0 = time.perf_counter()
        features = model.get_image_features(pixel_values=pixels, vision_feature_layer=c.vision_feature_layer,
                                            vision_feature_select_strategy=c.vision_feature_select_strategy).pooler_output
        features = torch.cat(list(features), dim=0)
        embeds = embed(ids)
        embeds[ids == c.image_token_index] = features.to(embeds.dtype)
        t_image = time.perf_counter()
        out = model(inputs_embeds=embeds, use_cache=True)
        t1 = time.perf_counter()
        past = out.past_key_values
        nxt = out.logits[:, -1:].argmax(-1)
        t2 = time.perf_counter()
        for _ in range(args.tokens):
            out = model(input_ids=nxt, past_key_values=past, use_cache=True)
            past = out.past_key_values
            nxt = out.logits[:, -1:].argmax(-1)
        t3 = time.perf_counter()
    total = ids.shape[1]
    print(json.dumps({"engine": f"pytorch {torch.__version__} transformers {args.dtype}", "config": args.model,
                      "threads": args.threads, "prompt_tokens": total, "decode_tokens": args.tokens,
                      "image_tokens": n_image, "image_encode_s": t_image - t0, "vision_parameters": vision_params,
                      "prefill_tokens_per_s": total / (t1 - t_image),
                      "prefill_with_image_tokens_per_s": total / (t1 - t0),
                      "decode_tokens_per_s": args.tokens / (t3 - t2)}))


if __name__ == "__main__":
    main()
