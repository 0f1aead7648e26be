"""Precise BatchNorm statistics for a model file (Wu and Johnson 2021,
"Rethinking 'Batch' in BatchNorm").

A fine-tune's running statistics are an exponential average over its last
few batches of augmented views, while the engine normalises clean frames
with them. This recomputes each BatchNorm layer's running mean and variance
as the exact population statistics of its input over the training split's
labeled frames, unaugmented, with the engine's preprocessing. Layers go in
forward order with the network in eval mode, so each layer sees the inputs
the engine will feed it once the layers before it are updated. Weights and
affine parameters are left alone; the int8 calibration is dropped, since it
belonged to the old statistics.

    precise_bn.py MODEL -o OUT [--folder-weights cataract=2]
"""

import argparse
import collections
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import data  # noqa: E402
import reference  # noqa: E402
import safetensors_io  # noqa: E402


class _Enough(Exception):
    """Stops a forward pass once the layer being measured has its input."""


def bn_layers(model, x):
    """The model's BatchNorm layers in the order a forward pass reaches them."""
    order = []
    hooks = [m.register_forward_pre_hook(lambda m, _inp: order.append(m))
             for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in hooks:
            h.remove()
    return order


def input_moments(model, bn, frames, weights):
    """Weighted per-channel mean and variance of bn's input over frames."""
    acc = {}

    def grab(_m, inp):
        x = inp[0].double()
        acc["s1"] = acc.get("s1", 0) + acc["w"] * x.sum(dim=(0, 2, 3))
        acc["s2"] = acc.get("s2", 0) + acc["w"] * (x * x).sum(dim=(0, 2, 3))
        acc["n"] = acc.get("n", 0) + acc["w"] * x[:, 0].numel()
        raise _Enough

    hook = bn.register_forward_pre_hook(grab)
    try:
        with torch.no_grad():
            for x, w in zip(frames, weights):
                acc["w"] = w
                try:
                    model(x)
                except _Enough:
                    pass
    finally:
        hook.remove()
    mean = acc["s1"] / acc["n"]
    return mean, (acc["s2"] / acc["n"] - mean * mean).clamp_min(0)


def recompute(model, frames, weights):
    """Replaces every BatchNorm layer's running statistics, in place."""
    if not frames or len(frames) != len(weights) or min(weights) <= 0:
        raise ValueError("precise_bn: need frames, each with a positive weight")
    model.eval()
    for bn in bn_layers(model, frames[0]):
        mean, var = input_moments(model, bn, frames, weights)
        bn.running_mean.copy_(mean.float())
        bn.running_var.copy_(var.float())
    return model


def training_frames(meta, split, root, spec):
    """The training split's frames, preprocessed as the engine does, each
    weighted so a folder's frames together weigh its folder weight (spec:
    train.py's --folder-weights)."""
    folders = [f for f in data.LABELED if split[f]["train"]]
    try:
        fw = data.parse_folder_weights(spec, folders)
    except ValueError as e:
        raise SystemExit(f"precise_bn.py: --folder-weights: {e}")
    hw = tuple(int(v) for v in meta["mms.input"].lower().split("x"))
    mean = [float(v) for v in meta["mms.mean"].split(",")]
    std = [float(v) for v in meta["mms.std"].split(",")]
    ds = data.Labeled(root, split, folders, "train", hw)
    x = data.normalize(ds.img, mean, std)
    n = collections.Counter(ds.folders)
    return list(x.split(1)), [fw[f] / n[f] for f in ds.folders]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--folder-weights", default="cataract=2",
                    help="each folder's share of the statistics (default: the training draws')")
    ap.add_argument("--data", default=data.DEFAULT_DATA)
    ap.add_argument("--split", default=data.DEFAULT_SPLIT)
    args = ap.parse_args()
    model, meta = reference.load(args.model)
    frames, weights = training_frames(meta, data.load_split(args.split), args.data,
                                      args.folder_weights)
    recompute(model, frames, weights)
    meta = {k: v for k, v in meta.items() if not k.startswith("int8")}
    meta["train.precise_bn"] = f"{len(frames)} training-split frames, folder weights " \
                               f"{args.folder_weights or 'equal'}"
    safetensors_io.save_file(model.state_dict(), args.output, meta)
    print(f"precise_bn.py: {args.output}: {len(frames)} frames")


if __name__ == "__main__":
    main()
