"""How far transformers 5.x' default torchvision image processors are from the PIL backend SwiftVLM matches: the
share of differing pixel values on scikit-image photographs, and the image-embedding cosine between the two on a
SigLIP-B/16 checkpoint (random weights from bench_torch_siglip.py --save /tmp/sb/siglip-b16-224).

    python Benchmarks/pil_vs_torchvision.py
"""
import numpy as np, torch, skimage.data as data
from PIL import Image
from transformers import CLIPImageProcessor, CLIPImageProcessorPil, SiglipImageProcessor, SiglipImageProcessorPil, SiglipModel
names=["astronaut","chelsea","coffee","rocket","hubble_deep_field","immunohistochemistry","motorcycle_left","retina","cat"]
imgs=[Image.fromarray(getattr(data,n)()).convert("RGB") for n in names if hasattr(data,n)]
for fast,pil,label in [(CLIPImageProcessor(),CLIPImageProcessorPil(),"clip"),(SiglipImageProcessor(),SiglipImageProcessorPil(),"siglip")]:
    a=fast(images=imgs,return_tensors="pt")["pixel_values"]; b=pil(images=imgs,return_tensors="pt")["pixel_values"]
    d=(a-b).abs()
    print(label, type(fast).__name__, "frac differing", float((d>1e-6).float().mean()), "max", float(d.max()))
    if label=="siglip":
        m=SiglipModel.from_pretrained("/tmp/sb/siglip-b16-224").eval()
        with torch.no_grad():
            ea=torch.nn.functional.normalize(m.get_image_features(pixel_values=a).pooler_output if hasattr(m.get_image_features(pixel_values=a),'pooler_output') else m.get_image_features(pixel_values=a),dim=-1)
            eb=torch.nn.functional.normalize(m.get_image_features(pixel_values=b).pooler_output if hasattr(m.get_image_features(pixel_values=b),'pooler_output') else m.get_image_features(pixel_values=b),dim=-1)
        print("cosine torchvision vs PIL (random SigLIP-B/16):", (ea*eb).sum(-1).tolist())
