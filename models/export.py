#!/usr/bin/env python3
"""Export an MMS network to a safetensors model file with its model card.

  export.py random --arch mms-rt [--set widths=16,32,...] [--seed 0] -o FILE
      deterministic random weights (and non-trivial batch-norm statistics, so
      that folding is exercised): the engine's exactness tests and the
      placeholder default model use these.
  export.py checkpoint --arch mms-res2net101 CKPT.pth -o FILE
      a PyTorch state_dict (e.g. the official code's Model_1.pth) plus the card.
  export.py last RUN_DIR -o FILE
      a train.py run's last checkpoint (ckpt_last.pt), where its model.safetensors
      holds the checkpoint validation picked: the card is the run's, with the
      last iteration's validation figures from log.jsonl.
"""

import argparse
import json
import os
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


def load_checkpoint(path):
    """A state_dict as torch.save wrote it: bare, under "state_dict", or with
    nn.DataParallel's "module." prefix on every name."""
    try:
        state = torch.load(path, map_location="cpu")
    except Exception as e:  # torch raises anything from EOFError to pickle errors
        sys.exit(f"export.py: {path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        sys.exit(f"export.py: {path}: holds a {type(state).__name__}, not a state_dict")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _val_row(run, it):
    """log.jsonl's validation of the network at iteration it, or None."""
    try:
        with open(os.path.join(run, "log.jsonl")) as f:
            rows = [json.loads(line) for line in f if '"event": "val"' in line]
    except (OSError, ValueError):
        return None
    return next((r for r in rows if r.get("it") == it), None)


def export_last(run, output):
    """The run's last network, so that a model chosen by the rule "the last
    checkpoint, no pick" ships as itself. The card keeps the run's
    provenance (train.command, seed, split) and says which iteration it is;
    an int8 calibration is dropped, since it belongs to the picked weights."""
    path = os.path.join(run, "ckpt_last.pt")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
        _, meta = safetensors_io.load_file(os.path.join(run, "model.safetensors"))
        net = ck.get("best", {}).get("net", 0) if ck.get("mode") == "mms" else 0
        state, it = ck["nets"][net], int(ck["it"])
    except Exception as e:  # torch raises anything from EOFError to pickle errors
        sys.exit(f"export.py last: {run}: not a finished train.py run ({type(e).__name__}: {e})")
    meta = {k: v for k, v in meta.items() if not k.startswith("int8.") and not k.startswith("train.val_dice")}
    meta.update({"train.iter": str(it), "train.network": f"F{net + 1}", "train.export": "last"})
    row = _val_row(run, it)
    if row is not None and f"F{net + 1}" in row:
        v = row[f"F{net + 1}"]
        meta["train.val_dice"] = f"{v['score']:.4f}"
        for k, d in v.items():
            if k not in ("score", "frames") and isinstance(d, float):
                meta[f"train.val_dice.{k}"] = f"{d:.4f}"
    model = mmsnet.build(meta["mms.arch"], meta)
    model.load_state_dict(state)
    safetensors_io.save_file(model.state_dict(), output, meta)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["random", "checkpoint", "last"])
    ap.add_argument("checkpoint", nargs="?")
    ap.add_argument("--arch", default="mms-rt")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="architecture parameter, e.g. layers=1,1,1 (res2net-unet) or widths=... (mms-rt)")
    ap.add_argument("--size", default="288x512", help="model input HxW")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--output", required=True)
    # Intermixed: the README writes the checkpoint after the options
    # (`checkpoint --arch A CKPT.pth -o OUT`), which plain parse_args refuses.
    args = ap.parse_intermixed_args()

    if args.mode == "last":
        if not args.checkpoint:
            sys.exit("export.py last: RUN_DIR is required")
        return export_last(args.checkpoint, args.output)
    params = parse_sets(args.set)
    meta = mmsnet.card_metadata(args.arch, params, tuple(int(v) for v in args.size.split("x")))
    model = mmsnet.build(args.arch, meta)
    if args.mode == "random":
        randomize(model, args.seed)
        state = model.state_dict()
    else:
        if not args.checkpoint:
            sys.exit("export.py checkpoint: CKPT.pth is required")
        state = load_checkpoint(args.checkpoint)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing:
            sys.exit(f"export.py: {args.checkpoint} is not a {args.arch} state_dict: "
                     f"{len(missing)} of its tensors are missing, e.g. {', '.join(missing[:3])}")
        if unexpected:
            # e.g. an encoder stage the network never runs: left out of the file
            print(f"export.py: {len(unexpected)} tensors the network does not use left out, "
                  f"e.g. {', '.join(unexpected[:3])}", file=sys.stderr)
        state = model.state_dict()
    safetensors_io.save_file(state, args.output, meta)


if __name__ == "__main__":
    main()
