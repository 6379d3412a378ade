"""PyTorch side of `vlm bench-llm`: transformers LlamaForCausalLM with random weights, the same architecture,
prompt length, decode length and thread count; prefill and greedy decode with a KV cache, fp32 (and bf16
with --dtype bfloat16). Prints one JSON object.

    python Benchmarks/bench_torch_llm.py --config smollm2-360m --prompt 128 --tokens 64 --threads 2
"""
import argparse
import json
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

PRESETS = {
    "smollm2-360m": dict(vocab_size=49152, hidden_size=960, intermediate_size=2560, num_hidden_layers=32,
                         num_attention_heads=15, num_key_value_heads=5, max_position_embeddings=8192,
                         rms_norm_eps=1e-5, tie_word_embeddings=True, rope_theta=100000.0),
    "smollm2-135m": dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                         rms_norm_eps=1e-5, tie_word_embeddings=True, rope_theta=100000.0),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="smollm2-360m", choices=sorted(PRESETS))
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    model = LlamaForCausalLM(LlamaConfig(**PRESETS[args.config])).eval().to(dtype)
    ids = torch.randint(0, model.config.vocab_size, (1, args.prompt))
    with torch.inference_mode():
        model.generate(ids[:, :8], max_new_tokens=2, do_sample=False, pad_token_id=0)  # warm-up
        t0 = time.perf_counter()
        out = model(ids, use_cache=True)
        t1 = time.perf_counter()
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
                      "prefill_tokens_per_s": args.prompt / (t1 - t0),
                      "decode_tokens_per_s": args.tokens / (t3 - t2)}))


if __name__ == "__main__":
    main()
