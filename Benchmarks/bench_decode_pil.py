"""PIL side of `vlm bench-decode`: the same files, the same steps — read, decode to RGB with the EXIF orientation
applied (transformers' load_image: Image.open, ImageOps.exif_transpose, convert("RGB")), then CLIP's 224-pixel
pixel values (CLIPImageProcessorPil: shortest edge 224 bicubic, centre crop, rescale, normalise). Median of
--repeat timed runs per file after one untimed pass, averaged per format (file extension). One thread.

    python Benchmarks/bench_decode_pil.py --make /tmp/formats     # writes the files, then times them
    vlm bench-decode /tmp/formats/*

--make writes one real photograph (scikit-image's astronaut, 512x512, and a 2048x1536 upscale of chelsea, the
size of a phone photo) in every format the project decodes: JPEG (quality 90), PNG, WebP (lossy q90), HEIC and
AVIF (pillow-heif, quality 90), TIFF (deflate), BMP, GIF.
"""
import argparse
import glob
import json
import os
import statistics
import time


def make(out):
    import pillow_heif
    import skimage.data
    from PIL import Image

    pillow_heif.register_heif_opener()
    os.makedirs(out, exist_ok=True)
    photos = {"astronaut": Image.fromarray(skimage.data.astronaut()),
              "chelsea2048": Image.fromarray(skimage.data.chelsea()).resize((2048, 1536), Image.Resampling.BICUBIC)}
    for name, im in photos.items():
        im.save(os.path.join(out, f"{name}.jpg"), quality=90)
        im.save(os.path.join(out, f"{name}.png"))
        im.save(os.path.join(out, f"{name}.webp"), quality=90)
        im.save(os.path.join(out, f"{name}.heic"), quality=90)
        im.save(os.path.join(out, f"{name}.avif"), quality=90)
        im.save(os.path.join(out, f"{name}.tif"), compression="tiff_deflate")
        im.save(os.path.join(out, f"{name}.bmp"))
        im.save(os.path.join(out, f"{name}.gif"))


def bench(files, repeats):
    import pillow_heif
    from PIL import Image, ImageOps
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    pillow_heif.register_heif_opener()
    processor = CLIPImageProcessorPil(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})

    def load(path):
        with Image.open(path) as im:
            return ImageOps.exif_transpose(im).convert("RGB")

    groups = {}
    for f in files:
        groups.setdefault(os.path.splitext(f)[1].lstrip(".").lower(), []).append(f)
    rows = []
    for fmt in sorted(groups):
        decode, preprocess, pixels = [], [], 0
        for f in groups[fmt]:
            im = load(f)
            processor(images=im, return_tensors="np")
            pixels += im.width * im.height
            d, p = [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                im = load(f)
                t1 = time.perf_counter()
                processor(images=im, return_tensors="np")
                t2 = time.perf_counter()
                d.append((t1 - t0) * 1e3)
                p.append((t2 - t1) * 1e3)
            decode.append(statistics.median(d))
            preprocess.append(statistics.median(p))
        n = len(groups[fmt])
        row = {"format": fmt, "files": n, "megapixels": pixels / n / 1e6, "decode_ms": sum(decode) / n,
               "preprocess_ms": sum(preprocess) / n}
        row["images_per_s"] = 1000 / (row["decode_ms"] + row["preprocess_ms"])
        rows.append(row)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--make", help="write the benchmark files into this directory first")
    ap.add_argument("files", nargs="*")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    files = args.files
    if args.make:
        make(args.make)
        files = files or sorted(glob.glob(os.path.join(args.make, "*")))
    import torch
    torch.set_num_threads(1)
    print("format  files  megapixels  decode ms  preprocess ms  images/s   (PIL)")
    for r in bench(files, args.repeat):
        print(f"{r['format']:<6} {r['files']:6d} {r['megapixels']:11.2f} {r['decode_ms']:10.2f} {r['preprocess_ms']:14.2f} {r['images_per_s']:9.1f}")


if __name__ == "__main__":
    main()
