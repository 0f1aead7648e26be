#!/usr/bin/python3
"""Hysteresis thresholds of a model file's probabilities, on the validation
frames staged by `data.py stage --out /tmp/valstage`: a mask is the
connected parts of p > lo that hold a pixel p > hi; mean Dice per folder for
each (lo, hi). Add `flip` for test-time flip. Measured in the twentieth
session, not adopted.

Usage: /usr/bin/python3 models/hysteresis_eval.py MODEL.safetensors [flip]
"""
import sys, os, numpy as np, torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mmsnet, yuv
from reference import load
from agreement import decode_mask
torch.set_num_threads(2)
F = torch.nn.functional
model, meta = load(sys.argv[1]); root = "/tmp/valstage"
flip = len(sys.argv) > 2 and sys.argv[2] == "flip"
hw = tuple(int(v) for v in meta["mms.input"].lower().split("x"))
mean = [float(v) for v in meta["mms.mean"].split(",")]; std = [float(v) for v in meta["mms.std"].split(",")]
def recon(seed, allow):
    m = seed & allow
    while True:
        for _ in range(16):
            m = (F.max_pool2d(m.float()[None, None], 3, 1, 1)[0, 0] > 0) & allow
        n = (F.max_pool2d(m.float()[None, None], 3, 1, 1)[0, 0] > 0) & allow
        if torch.equal(n, m): return m
        m = n
def dice(m, gt):
    a, b = m.sum(), gt.sum(); return 1.0 if a + b == 0 else (2 * (m & gt).sum() / (a + b)).item()
cfgs = [(lo, hi) for lo in (0.2, 0.3, 0.4, 0.5) for hi in (0.5, 0.6, 0.7, 0.8, 0.9)]
tot = {c: 0 for c in cfgs}
for f in ["cholec80-v01", "endovis15", "cataract"]:
    d = os.path.join(root, f, "image"); ds = {c: [] for c in cfgs}
    for n in sorted(os.listdir(d)):
        rgb = torch.from_numpy(yuv.decode(os.path.join(d, n)).copy())
        H = tuple(rgb.shape[:2])
        gt = torch.from_numpy(decode_mask(os.path.join(root, f, "mask", os.path.splitext(n)[0] + ".png")) > 127)
        with torch.no_grad():
            x = mmsnet.preprocess(rgb, hw, mean, std); l = model(x)
            if flip: l = (l + model(x.flip(3)).flip(3)) / 2
            p = torch.sigmoid(F.interpolate(l, size=H, mode="bilinear", align_corners=False))[0, 0]
        for lo, hi in cfgs:
            ds[(lo, hi)].append(dice(recon(p > hi, p > lo), gt))
    print(f, " ".join(f"{c[0]}/{c[1]}={np.mean(v):.4f}" for c, v in ds.items()), flush=True)
    for c in cfgs: tot[c] += np.mean(ds[c]) / 3
print("mean")
for c, v in sorted(tot.items(), key=lambda kv: -kv[1]): print(f"  {c[0]}/{c[1]} {v:.4f}")
