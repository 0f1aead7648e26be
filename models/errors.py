#!/usr/bin/env python3
"""Where a model's false positives are: each validation frame's false-positive
pixels split into connected components, each with its size, its box and
whether it lies along a labeled tool.

  errors.py MODEL --images DIR --masks DIR [--min-area 200] [--near 5]

A component that touches no labeled tool is something else painted as tool
(a cataract speculum hook, an unlabeled instrument, a reflection); one
within --near pixels of a labeled tool is mostly a tool drawn wider than
its label. `mms eval --sheet` shows the same errors to a person; this puts
numbers on them. The network runs in PyTorch (models/reference.py's
loading), which agrees with the C engine's fp32 masks.
"""

import argparse
import os
import sys

from collections import deque

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import data        # noqa: E402
import mmsnet      # noqa: E402
import reference   # noqa: E402


def _components(on):
    """8-connected components of a HxW bool array -> list of (ys, xs) arrays.
    A breadth-first walk over the set pixels only: false positives are a
    small part of a frame."""
    seen = np.zeros_like(on)
    h, w = on.shape
    out = []
    for y0, x0 in zip(*np.nonzero(on)):
        if seen[y0, x0]:
            continue
        seen[y0, x0] = True
        queue, ys, xs = deque([(y0, x0)]), [], []
        while queue:
            y, x = queue.popleft()
            ys.append(y)
            xs.append(x)
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    v, u = y + dy, x + dx
                    if 0 <= v < h and 0 <= u < w and on[v, u] and not seen[v, u]:
                        seen[v, u] = True
                        queue.append((v, u))
        out.append((np.array(ys), np.array(xs)))
    return out


def _dilate(m, near):
    k = 2 * near + 1
    t = torch.from_numpy(m.astype(np.float32))[None, None]
    return F.max_pool2d(t, k, stride=1, padding=near)[0, 0].numpy() > 0


def fp_components(pred, gt, min_area=200, near=5):
    """pred, gt: HxW bool. -> list of dicts (area, box y0 y1 x0 x1 in pixels,
    along_tool), largest first; components under min_area pixels are left
    out."""
    close = _dilate(gt, near)
    out = []
    for ys, xs in _components(pred & ~gt):
        if len(ys) < min_area:
            continue
        out.append({"area": int(len(ys)),
                    "box": (int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1),
                    "along_tool": bool(close[ys, xs].any())})
    return sorted(out, key=lambda c: -c["area"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--images", required=True)
    ap.add_argument("--masks", required=True)
    ap.add_argument("--min-area", type=int, default=200)
    ap.add_argument("--near", type=int, default=5, help="pixels: how close to a labeled tool is 'along' it")
    a = ap.parse_args()
    model, meta = reference.load(a.model)
    tot = {"tp": 0, "fp": 0, "fn": 0, "fp_along_tool": 0, "fp_elsewhere": 0}
    for f in sorted(os.listdir(a.images)):
        if not f.lower().endswith(data.IMG_EXT):
            continue
        stem = os.path.splitext(f)[0]
        rgb = data.read_rgb(os.path.join(a.images, f))
        gt = data.read_mask(data.find_file(a.masks, stem)).numpy().astype(bool)
        pred = mmsnet.segment(model, meta, rgb).numpy()
        tp, fp, fn = int((pred & gt).sum()), int((pred & ~gt).sum()), int((gt & ~pred).sum())
        comps = fp_components(pred, gt, a.min_area, a.near)
        for k, v in (("tp", tp), ("fp", fp), ("fn", fn)):
            tot[k] += v
        for c in comps:
            tot["fp_along_tool" if c["along_tool"] else "fp_elsewhere"] += c["area"]
        print(f"{stem}: tp {tp} fp {fp} fn {fn} dice {2 * tp / max(1, 2 * tp + fp + fn):.3f}")
        H, W = gt.shape
        for c in comps:
            y0, y1, x0, x1 = c["box"]
            print(f"  fp {c['area']:7d} px  rows {y0 / H:.2f}-{y1 / H:.2f} cols {x0 / W:.2f}-{x1 / W:.2f}  "
                  f"{'along a tool' if c['along_tool'] else 'elsewhere'}")
    prec = tot["tp"] / max(1, tot["tp"] + tot["fp"])
    print(f"total: tp {tot['tp']} fp {tot['fp']} fn {tot['fn']} precision {prec:.3f}; "
          f"fp along tools {tot['fp_along_tool']}, elsewhere {tot['fp_elsewhere']} "
          f"(components >= {a.min_area} px)")


if __name__ == "__main__":
    main()
