"""PyTorch side of `vlm bench-llm --model DIR --image IMG` for SmolVLM: transformers' Idefics3ForConditionalGeneration
(SmolVLM v1 checkpoints are model_type idefics3) on the published SmolVLM-256M/500M-Instruct architectures with
random weights, the Idefics3 image processor with the PIL backend (LANCZOS, longest edge 2048, 512-px tiles: a
512x384 photo becomes 4x3 tiles + the global image = 13 x 64 = 832 image tokens), the same prompt text, decode
length and threads. Times, in fp32 and bf16: the image encode (get_image_features: the tiles through the SigLIP
tower + connector), time to first token (processor output -> first logits: image encode + decoder prefill), and
greedy decode tokens/s with the KV cache. Prints one JSON object per dtype.

    python Benchmarks/bench_torch_smolvlm.py --config smolvlm-256m --save /tmp/smolvlm-256m-bench \\
        --tokenizer-from Tests/Fixtures/smolvlm/smolvlm-tiny --image /tmp/photo-512x384.png
    python Benchmarks/bench_torch_smolvlm.py --model /tmp/smolvlm-256m-bench --image /tmp/photo-512x384.png --threads 2

--save writes the checkpoint (random weights, bf16 as the Hub ships, the tokenizer files of --tokenizer-from with
its <image> id, the real processor configs) to a directory outside the repository; --image writes a 512x384 crop
of a scikit-image photograph there when the file does not exist.
"""
import argparse
import json
import os
import shutil
import time

import torch

CONFIGS = {
    # HuggingFaceTB/SmolVLM-256M-Instruct: SmolLM2-135M-shaped decoder, SigLIP B/16 at 512 px, pixel shuffle 4.
    "smolvlm-256m": dict(text=dict(vocab_size=49280, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                                   num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                                   rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=False),
                         vision=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                                     image_size=512, patch_size=16)),
    # HuggingFaceTB/SmolVLM-500M-Instruct: SmolLM2-360M-shaped decoder, the same tower.
    "smolvlm-500m": dict(text=dict(vocab_size=49280, hidden_size=960, intermediate_size=2560, num_hidden_layers=32,
                                   num_attention_heads=15, num_key_value_heads=5, max_position_embeddings=8192,
                                   rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=False),
                         vision=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                                     image_size=512, patch_size=16)),
}
PROCESSOR = {"do_convert_rgb": True, "do_image_splitting": True, "do_normalize": True, "do_pad": True, "do_rescale": True,
             "do_resize": True, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
             "image_processor_type": "Idefics3ImageProcessor", "max_image_size": {"longest_edge": 512}, "resample": 1,
             "rescale_factor": 0.00392156862745098, "size": {"longest_edge": 2048}}
QUESTION = "Describe this image in detail, please."


def save(args):
    from safetensors.torch import save_file
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, LlamaConfig
    from transformers.models.idefics3.configuration_idefics3 import Idefics3VisionConfig

    spec = CONFIGS[args.config]
    tokenizer = json.load(open(os.path.join(args.tokenizer_from, "tokenizer.json")))
    image_id = next(t["id"] for t in tokenizer["added_tokens"] if t["content"] == "<image>")
    eou = next(t["id"] for t in tokenizer["added_tokens"] if t["content"] == "<end_of_utterance>")
    text = LlamaConfig(**spec["text"], bos_token_id=1, eos_token_id=eou, pad_token_id=2)
    vision = Idefics3VisionConfig(**spec["vision"])
    config = Idefics3Config(vision_config=vision.to_dict(), text_config=text.to_dict(), scale_factor=4,
                            image_token_id=image_id, tie_word_embeddings=False)
    config.architectures = ["Idefics3ForConditionalGeneration"]
    torch.manual_seed(0)
    model = Idefics3ForConditionalGeneration(config).eval()
    os.makedirs(args.save, exist_ok=True)
    config.save_pretrained(args.save)
    save_file({k: v.detach().to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()},
              os.path.join(args.save, "model.safetensors"), metadata={"format": "pt"})
    for name in ["tokenizer.json", "tokenizer_config.json", "chat_template.json"]:
        shutil.copy(os.path.join(args.tokenizer_from, name), args.save)
    with open(os.path.join(args.save, "preprocessor_config.json"), "w") as f:
        json.dump(dict(PROCESSOR, processor_class="Idefics3Processor"), f, indent=2)
    with open(os.path.join(args.save, "processor_config.json"), "w") as f:
        json.dump({"image_seq_len": 64, "processor_class": "Idefics3Processor"}, f, indent=2)
    print("saved", args.save, sum(p.numel() for p in model.parameters()) // 1_000_000, "M parameters")


def photo(path):
    from PIL import Image
    if not os.path.exists(path):
        from skimage import data
        Image.fromarray(data.chelsea()).resize((512, 384), Image.BICUBIC).save(path)
    return Image.open(path).convert("RGB")


def bench(args, dtype):
    from transformers import Idefics3ForConditionalGeneration, Idefics3Processor, PreTrainedTokenizerFast
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    torch.set_num_threads(args.threads)
    model = Idefics3ForConditionalGeneration.from_pretrained(args.model, dtype=dtype).eval()
    tokenizer = PreTrainedTokenizerFast.from_pretrained(args.model)
    template = json.load(open(os.path.join(args.model, "chat_template.json")))["chat_template"]
    pre = {k: v for k, v in PROCESSOR.items() if k != "image_processor_type"}
    processor = Idefics3Processor(image_processor=Idefics3ImageProcessorPil(**pre), tokenizer=tokenizer,
                                  image_seq_len=64, chat_template=template)
    image = photo(args.image)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    t_proc = time.perf_counter()
    inputs = processor(text=prompt, images=[[image]], return_tensors="pt")
    t_proc = time.perf_counter() - t_proc
    inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
    ids = inputs["input_ids"]
    with torch.inference_mode():
        model(**inputs)  # warm-up: one whole prefill
        t0 = time.perf_counter()
        model.model.get_image_features(inputs["pixel_values"], inputs["pixel_attention_mask"])
        encode = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = model(**inputs, use_cache=True)
        ttft = time.perf_counter() - t0
        past, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        t0 = time.perf_counter()
        for _ in range(args.tokens):
            out = model(input_ids=token, past_key_values=past, use_cache=True)
            past, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        decode = time.perf_counter() - t0
    weights = sum(p.numel() * p.element_size() for n, p in model.named_parameters() if "vision_model" not in n)
    return {"engine": f"pytorch {torch.__version__} transformers {dtype}", "threads": args.threads,
            "prompt_tokens": ids.shape[1], "image_tokens": int((ids == model.config.image_token_id).sum()),
            "tiles": int(inputs["pixel_values"].shape[1]), "processor_s": t_proc, "image_encode_s": encode,
            "time_to_first_token_s": ttft, "decode_tokens_per_s": args.tokens / decode, "decoder_weight_bytes": weights}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="smolvlm-256m", choices=sorted(CONFIGS))
    ap.add_argument("--save", help="write a random-weight checkpoint of --config here and exit")
    ap.add_argument("--tokenizer-from", default="Tests/Fixtures/smolvlm/smolvlm-tiny")
    ap.add_argument("--model", help="checkpoint directory written by --save")
    ap.add_argument("--image", default="/tmp/photo-512x384.png")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="both", choices=["float32", "bfloat16", "both"])
    args = ap.parse_args()
    if args.save:
        save(args)
        photo(args.image)
        return
    dtypes = [torch.float32, torch.bfloat16] if args.dtype == "both" else [getattr(torch, args.dtype)]
    for dtype in dtypes:
        print(json.dumps(bench(args, dtype)))


if __name__ == "__main__":
    main()
