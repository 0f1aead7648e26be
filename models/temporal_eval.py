#!/usr/bin/env python3
"""How steady and how right the masks of `mms run` are on a video.

Runs `mms run --offline --style mask` on the clip once per smoothing value,
decodes the mask video and reports, per value:
  flicker    mean fraction of pixels whose mask changes between consecutive
             frames (lower is steadier; the tools' own motion sets a floor)
  dice       mean Dice on the annotated frames (frame_NNNNN.png = decoded
             frame NNNNN), and its pooled precision and recall

  temporal_eval.py [--mms build/mms] [--model M] [--smooth 0,0.5,0.8] [--json]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VIDEO = os.path.join(REPO, "..", "shared", "data", "video")


def decode_gray(path):
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height", "-of", "csv=p=0", path],
                           check=True, capture_output=True, text=True).stdout
    w, h = (int(v) for v in probe.strip().split(",")[:2])
    raw = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", path, "-f", "rawvideo",
                          "-pix_fmt", "gray", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w)


def masks_of(args, smooth, tmp):
    out = os.path.join(tmp, f"mask-{smooth}.mkv")
    cmd = [args.mms, "run", "-i", args.clip, "-o", out, "--offline", "--style", "mask"]
    if args.model:
        cmd += ["--model", args.model]
    cmd += ["--tta", args.tta, "--precision", args.precision]
    if smooth:
        cmd += ["--smooth", str(smooth)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode not in (0, 3):
        sys.exit(f"temporal_eval: {' '.join(cmd)}: {r.stderr.strip()}")
    # The mask style draws luma 235 on 16; H.264 moves edges by a level or two.
    return decode_gray(out) > 127


def score(masks, gt_dir):
    flicker = float(np.mean([np.mean(a != b) for a, b in zip(masks[1:], masks[:-1])]))
    dices, tp, fp, fn = [], 0, 0, 0
    for f in sorted(os.listdir(gt_dir)):
        n = int(os.path.splitext(f)[0].split("_")[1])
        gt = np.asarray(Image.open(os.path.join(gt_dir, f)).convert("L")) > 127
        m = masks[n]
        a, b, c = int(np.sum(m & gt)), int(np.sum(m & ~gt)), int(np.sum(~m & gt))
        dices.append(2 * a / (2 * a + b + c) if a + b + c else 1.0)
        tp, fp, fn = tp + a, fp + b, fn + c
    return {"frames": int(masks.shape[0]), "flicker": round(flicker, 5),
            "dice": round(float(np.mean(dices)), 4), "annotated": len(dices),
            "precision": round(tp / (tp + fp), 4) if tp + fp else 1.0,
            "recall": round(tp / (tp + fn), 4) if tp + fn else 1.0}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mms", default=os.path.join(REPO, "build", "mms"))
    ap.add_argument("--model")
    ap.add_argument("--clip", default=os.path.join(VIDEO, "cholec80_video01_10s.mp4"))
    ap.add_argument("--gt", default=os.path.join(VIDEO, "cholec80_video01_10s_gt"))
    ap.add_argument("--smooth", default="0", help="comma-separated values of mms run --smooth")
    ap.add_argument("--tta", default="auto", help="mms run --tta: off, flip or auto (the default)")
    ap.add_argument("--precision", default="auto", help="mms run --precision")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for a in (float(v) for v in args.smooth.split(",")):
            rows.append(dict(smooth=a, **score(masks_of(args, a, tmp), args.gt)))
    for r in rows:
        print(json.dumps(r) if args.json else
              f"smooth {r['smooth']:.2f}: flicker {r['flicker']:.5f}  dice {r['dice']:.4f} "
              f"(precision {r['precision']:.4f}, recall {r['recall']:.4f}, "
              f"{r['annotated']} annotated of {r['frames']} frames)")


if __name__ == "__main__":
    main()
