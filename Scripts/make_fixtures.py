"""Regenerates every reference fixture under Tests/Fixtures (deterministic). Run with a Python that has
transformers, torch, open_clip_torch, scikit-image, tokenizers, safetensors and pillow (see README)."""
import os
import runpy

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
# Tokenizer files first: the CLIP checkpoints link to them.
for name in ["tokenizer_fixtures.py", "tokenizer_stage_fixtures.py", "sentencepiece_fixtures.py", "image_fixtures.py",
             "clip_fixtures.py", "naflex_fixtures.py", "smolvlm_processor_fixtures.py", "siglip_fixtures.py",
             "chat_template_fixtures.py", "llama_fixtures.py", "llava_fixtures.py", "smolvlm_fixtures.py", "florence2_fixtures.py",
             "training_fixtures.py", "quant_fixtures.py"]:
    path = os.path.join(HERE, name)
    if os.path.exists(path):
        print(f"== {name}")
        runpy.run_path(path, run_name="__main__")
