#!/usr/bin/env python3
"""Exports a model file's network to ONNX for the ONNX Runtime and OpenCV
rows of bench/peers.sh, with one check input and PyTorch's logits for it,
so each ONNX engine can show it computes the same network before it is
timed.

  export_onnx.py MODEL --size HxW --out DIR
writes DIR/net.onnx, DIR/check_input.f32 (1x3xHxW, N(0,1), seed 0),
DIR/check_logits.f32 (1x1xHxW, PyTorch fp32 eval) and DIR/export.json (one
JSON line describing them, also printed).

The weights are the model file's, loaded by models/reference.py exactly as
PyTorch's own row and the engine's exactness tests load them. Opset 13:
Resize with align_corners (the decoder's x2 upsampling) is exact there, and
both ONNX Runtime and OpenCV 4.6 import it. Shapes are static (batch 1, the
benchmark size): every engine is timed on the one shape mmsd runs.
"""

import argparse
import json
import os
import sys

import warnings

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "models"))
from reference import load  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--size", required=True, help="HxW")
    ap.add_argument("--out", required=True)
    ap.add_argument("--opset", type=int, default=13)
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    os.makedirs(args.out, exist_ok=True)
    model, meta = load(args.model)
    x = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x)
    path = os.path.join(args.out, "net.onnx")
    # 1.13's exporter warns about the shape of every prim::Constant it folds;
    # the shapes here are static and the check below tests the result.
    warnings.filterwarnings("ignore", category=UserWarning, module="torch.onnx")
    torch.onnx.export(model, x, path, opset_version=args.opset, input_names=["input"],
                      output_names=["logits"], do_constant_folding=True)
    x.numpy().astype("<f4").tofile(os.path.join(args.out, "check_input.f32"))
    y.numpy().astype("<f4").tofile(os.path.join(args.out, "check_logits.f32"))
    desc = json.dumps({"onnx": path, "opset": args.opset, "model": args.model,
                       "arch": meta["mms.arch"], "size": f"{h}x{w}", "torch": torch.__version__})
    with open(os.path.join(args.out, "export.json"), "w") as f:
        f.write(desc + "\n")
    print(desc)


if __name__ == "__main__":
    main()
