"""Writes a LLaVA-1.5-shaped checkpoint with random weights for `vlm bench-llm --model` and
`Benchmarks/bench_torch_llm.py --model`: a CLIP ViT-L/14 vision tower at 336 px (24 layers, 1024 wide, 576 image
tokens), LLaVA-1.5's two-layer GELU projector, and a real-size Llama-family LM (default: the SmolLM2-360M
architecture). transformers' own LlavaForConditionalGeneration with its default initialisation, saved as the
Hub's llava-hf checkpoints name their tensors (vision_tower.vision_model.*, language_model.model.*), in bf16 by
default (as llava-hf ships), plus a CLIPImageProcessor config.
The tokenizer and chat template come from the llava-chat fixture (--tokenizer-from), so `vlm bench-llm --model
OUT --image FILE` times a whole turn. Weights go to /tmp, never into the repository.

    /root/vlmpy/bin/python Benchmarks/make_llava_bench.py --out /tmp/llava-vitl336-smollm2-360m
"""
import argparse
import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file

# The v5 -> llava-hf tensor renaming is the fixtures' (one rule for tests and benchmarks).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Scripts", "fixtures"))
from llava_fixtures import old_layout as hub_name  # noqa: E402
from transformers import CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

LMS = {
    "smollm2-360m": dict(vocab_size=49152, hidden_size=960, intermediate_size=2560, num_hidden_layers=32,
                         num_attention_heads=15, num_key_value_heads=5, max_position_embeddings=8192,
                         rms_norm_eps=1e-5, tie_word_embeddings=True, rope_theta=100000.0,
                         bos_token_id=1, eos_token_id=2),
    "smollm2-1.7b": dict(vocab_size=49152, hidden_size=2048, intermediate_size=8192, num_hidden_layers=24,
                         num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=8192,
                         rms_norm_eps=1e-5, tie_word_embeddings=True, rope_theta=130000.0,
                         bos_token_id=1, eos_token_id=2),
}

# openai/clip-vit-large-patch14-336, as llava-hf/llava-1.5-*-hf configure it.
VIT_L14_336 = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                   image_size=336, patch_size=14, hidden_act="quick_gelu", projection_dim=768, layer_norm_eps=1e-5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--lm", default="smollm2-360m", choices=sorted(LMS))
    ap.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    ap.add_argument("--tokenizer-from", default=os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "llava", "llava-chat"),
                    help="copy this checkpoint's tokenizer and chat template (its <image> id becomes image_token_index), so "
                         "`vlm bench-llm --model OUT --image FILE` can run a whole turn through the processor")
    args = ap.parse_args()
    if os.path.abspath(args.out).startswith(os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))):
        raise SystemExit("write the weights outside the repository (e.g. /tmp)")
    text = LlamaConfig(**LMS[args.lm])
    tokenizer = json.load(open(os.path.join(args.tokenizer_from, "tokenizer.json")))
    image_token = next(t["id"] for t in tokenizer["added_tokens"] if t["content"] == "<image>")
    config = LlavaConfig(vision_config=CLIPVisionConfig(**VIT_L14_336), text_config=text, image_token_index=image_token,
                         vision_feature_layer=-2, vision_feature_select_strategy="default",
                         projector_hidden_act="gelu", image_seq_length=576,
                         tie_word_embeddings=text.tie_word_embeddings)
    config.architectures = ["LlavaForConditionalGeneration"]
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config).eval().to(getattr(torch, args.dtype))
    os.makedirs(args.out, exist_ok=True)
    config.save_pretrained(args.out)
    state = {hub_name(k): v.detach().contiguous() for k, v in model.state_dict().items()
             if not (text.tie_word_embeddings and k == "lm_head.weight")}  # tied: the embedding table is the head
    save_file(state, os.path.join(args.out, "model.safetensors"), metadata={"format": "pt"})
    CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336}).save_pretrained(args.out)
    for name in ["tokenizer.json", "tokenizer_config.json", "chat_template.json"]:
        shutil.copy(os.path.join(args.tokenizer_from, name), args.out)
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.out}: {params / 1e6:.0f}M parameters ({args.dtype}), image token {image_token}")


if __name__ == "__main__":
    main()
