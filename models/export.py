#!/usr/bin/env python3
"""Export an MMS network to a safetensors model file with its model card.

  export.py random --arch mms-rt [--set widths=16,32,...] [--seed 0] -o FILE
      deterministic random weights (and non-trivial batch-norm statistics, so
      that folding is exercised): the engine's exactness tests and the
      placeholder default model use these.
  export.py checkpoint --arch mms-res2net101 CKPT.pth -o FILE
      a PyTorch state_dict (e.g. the official code's Model_1.pth) plus the card.
"""

import argparse
import sys

import torch

import mmsnet
import safetensors_io


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.Conv2d):
                fan_in = mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                if mod.bias is not None:
                    mod.bias.copy_(torch.randn(mod.bias.shape, generator=g) * 0.1)
            elif isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                mod.weight.copy_(0.5 + 0.5 * torch.rand(c, generator=g))
                mod.bias.copy_(torch.randn(c, generator=g) * 0.1)
                mod.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                mod.running_var.copy_(0.5 + torch.rand(c, generator=g))
        # Centre the logits so about half the pixels are tool: a mask test on
        # an all-background output would prove nothing.
        model.eval()
        y = model(torch.randn(1, 3, 128, 224, generator=g))
        model.final.bias -= y.median()
    return model


def parse_sets(sets):
    params = {}
    for s in sets or []:
        k, _, v = s.partition("=")
        if not v:
            sys.exit(f"export.py: --set {s!r}: expected key=value")
        params[k] = v
    return params


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["random", "checkpoint"])
    ap.add_argument("checkpoint", nargs="?")
    ap.add_argument("--arch", default="mms-rt")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="architecture parameter, e.g. layers=1,1,1 (res2net-unet) or widths=... (mms-rt)")
    ap.add_argument("--size", default="288x512", help="model input HxW")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()

    params = parse_sets(args.set)
    meta = mmsnet.card_metadata(args.arch, params, tuple(int(v) for v in args.size.split("x")))
    model = mmsnet.build(args.arch, meta)
    if args.mode == "random":
        randomize(model, args.seed)
        state = model.state_dict()
    else:
        if not args.checkpoint:
            sys.exit("export.py checkpoint: CKPT.pth is required")
        state = torch.load(args.checkpoint, map_location="cpu")
        state = state.get("state_dict", state)
        model.load_state_dict(state, strict=False)
    safetensors_io.save_file(state, args.output, meta)


if __name__ == "__main__":
    main()
