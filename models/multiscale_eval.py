#!/usr/bin/python3
"""Multi-scale test-time augmentation of a model file, on the validation frames
staged by `data.py stage --out /tmp/valstage`: the logits at several input
sizes, each resized to the frame, averaged (with and without flip); mean
Dice per folder for each combination. Measured in the twentieth session, not
adopted.

Usage: /usr/bin/python3 models/multiscale_eval.py MODEL.safetensors
"""
import sys, os, itertools, numpy as np, torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mmsnet, yuv
from reference import load
from agreement import decode_mask
torch.set_num_threads(2)
F = torch.nn.functional
model, meta = load(sys.argv[1]); root = "/tmp/valstage"
mean = [float(v) for v in meta["mms.mean"].split(",")]; std = [float(v) for v in meta["mms.std"].split(",")]
sizes = [(288,512),(224,384),(256,448),(320,576),(352,640),(192,352)]
combos = [((288,512),)] + [((288,512), s) for s in sizes[1:]] + [((288,512),(224,384),(352,640)), ((288,512),(256,448),(320,576))]
def dice(m, gt):
    a, b = m.sum(), gt.sum(); return 1.0 if a + b == 0 else 2 * (m & gt).sum() / (a + b)
keys = [(c, fl) for c in combos for fl in (False, True)]
tot = {k: 0 for k in keys}
for f in ["cholec80-v01", "endovis15", "cataract"]:
    d = os.path.join(root, f, "image"); ds = {k: [] for k in keys}
    for n in sorted(os.listdir(d)):
        rgb = torch.from_numpy(yuv.decode(os.path.join(d, n)).copy())
        H = tuple(rgb.shape[:2])
        gt = torch.from_numpy(decode_mask(os.path.join(root, f, "mask", os.path.splitext(n)[0] + ".png")) > 127)
        L = {}
        with torch.no_grad():
            for s in sizes:
                x = mmsnet.preprocess(rgb, s, mean, std)
                a = model(x); b = model(x.flip(3)).flip(3)
                L[s] = (F.interpolate(a, size=H, mode="bilinear", align_corners=False),
                        F.interpolate((a + b) / 2, size=H, mode="bilinear", align_corners=False))
        for c, fl in keys:
            l = sum(L[s][1 if fl else 0] for s in c) / len(c)
            ds[(c, fl)].append(dice((l[0, 0] > 0), gt).item())
    print(f, flush=True)
    for k in keys:
        tot[k] += np.mean(ds[k]) / 3
        print("  ", "+".join(f"{s[0]}x{s[1]}" for s in k[0]), "flip" if k[1] else "one", f"{np.mean(ds[k]):.4f}", flush=True)
print("mean")
for k, v in sorted(tot.items(), key=lambda kv: -kv[1]):
    print("  ", "+".join(f"{s[0]}x{s[1]}" for s in k[0]), "flip" if k[1] else "one", f"{v:.4f}")
