#!/usr/bin/env python3
"""Reference logits from the PyTorch definition, for the engine's exactness tests.

  reference.py MODEL --size HxW --seed S --input IN.f32 --logits OUT.f32
writes a deterministic N(0,1) input (3xHxW float32, already normalised) and the
network's logits (1xHxW float32) for it. With --image FILE.f32 given as an
existing input, that input is used instead of a random one.
"""

import argparse
import os

import numpy as np
import torch

import mmsnet
import safetensors_io


def load(path):
    tensors, meta = safetensors_io.load_file(path)
    model = mmsnet.build(meta["mms.arch"], meta)
    missing, _ = model.load_state_dict(tensors, strict=False)
    if missing:
        raise SystemExit(f"reference.py: {path}: missing tensors {missing[:5]}")
    return model.eval(), meta


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--size", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--input", required=True)
    ap.add_argument("--logits", required=True)
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    model, _ = load(args.model)
    if os.path.exists(args.input):
        x = torch.from_numpy(np.fromfile(args.input, dtype="<f4").reshape(1, 3, h, w))
    else:
        x = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(args.seed))
        x.numpy().astype("<f4").tofile(args.input)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 1, h, w), y.shape
    y.numpy().astype("<f4").tofile(args.logits)


if __name__ == "__main__":
    main()
