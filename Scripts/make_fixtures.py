"""Regenerates every reference fixture under Tests/Fixtures (deterministic). Run with a Python that has
transformers, torch, open_clip_torch, scikit-image, tokenizers, safetensors and pillow (see README)."""
import os
import runpy

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
# Tokenizer files first (the CLIP checkpoints link to them), then the families in the order they were added (later
# scripts reuse earlier outputs). Every other *_fixtures.py in the folder follows in name order, so a new family's script needs no
# entry here.
FIRST = ["tokenizer_fixtures.py", "tokenizer_stage_fixtures.py", "sentencepiece_fixtures.py", "image_fixtures.py",
         "clip_fixtures.py", "naflex_fixtures.py", "smolvlm_processor_fixtures.py", "siglip_fixtures.py",
         "chat_template_fixtures.py", "llama_fixtures.py", "llava_fixtures.py", "smolvlm_fixtures.py",
         "florence2_fixtures.py", "training_fixtures.py"]
rest = sorted(n for n in os.listdir(HERE) if n.endswith("_fixtures.py") and n not in FIRST)
for name in FIRST + rest:
    path = os.path.join(HERE, name)
    if os.path.exists(path):
        print(f"== {name}", flush=True)
        runpy.run_path(path, run_name="__main__")
