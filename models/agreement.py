#!/usr/bin/env python3
"""Do the C engine and the PyTorch reference agree on a model file?

  agreement.py MODEL IMAGE_DIR... [--mms build/mms] [--tta off|flip]

Segments every image with `mms segment` (the C engine) and with the PyTorch
definition (mmsnet.preprocess -> network -> mmsnet.postprocess), both from the
same decoded pixels (ffmpeg's decoder, which is the engine's, and yuv.py's
conversion, which is core/yuv.h's), and prints the
share of mask pixels on which they agree, per folder and overall. Exit status
1 when the overall agreement is below --min (default 99.9 %).
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

import mmsnet
import yuv
from reference import load


def decode_mask(path):
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height", "-of", "csv=p=0", path],
                           capture_output=True, text=True, check=True).stdout.strip()
    w, h = (int(v) for v in probe.split(",")[:2])
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt",
                          "gray", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(h, w)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--mms", default=os.path.join(os.path.dirname(__file__), "..", "build", "mms"))
    ap.add_argument("--min", type=float, default=99.9)
    ap.add_argument("--tta", choices=("off", "flip"), default="off",
                    help="both sides with test-time flip (mms segment --tta flip)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    model, meta = load(args.model)
    agree = total = 0
    for d in args.dirs:
        imgs = sorted(os.path.join(d, f) for f in os.listdir(d)
                      if f.lower().endswith((".png", ".jpg", ".jpeg")))
        a = t = 0
        with tempfile.TemporaryDirectory() as out:
            subprocess.run([args.mms, "segment", "--model", args.model, "--precision", "fp32",
                            "--threads", "2", "--tta", args.tta,
                            "--out", out] + imgs, check=True, stdout=subprocess.DEVNULL)
            for path in imgs:
                rgb = torch.from_numpy(yuv.decode(path).copy())
                ref = mmsnet.segment(model, meta, rgb, flip=args.tta == "flip").numpy()
                stem = os.path.splitext(os.path.basename(path))[0]
                c = decode_mask(os.path.join(out, stem + ".png")) > 127
                a += int((c == ref).sum())
                t += ref.size
        print(f"{d}: {len(imgs)} images, masks agree on {100.0 * a / t:.4f} % of pixels")
        agree += a
        total += t
    pct = 100.0 * agree / total
    print(f"overall: {pct:.4f} % of {total} pixels")
    sys.exit(0 if pct >= args.min else 1)


if __name__ == "__main__":
    main()
