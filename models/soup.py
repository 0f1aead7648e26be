"""A uniform model soup (Wortsman et al., ICML 2022, "Model soups"): the
element-wise mean of the weights of several model files fine-tuned from
one starting file.

Fine-tunes of one start stay in one basin of the loss, so their average is
itself a good network - often a better one than each, and at the cost of
one. Runs of different starts are not: their channels are permuted against
each other and the average is noise, so every input must carry the same
train.init in its card. BatchNorm running statistics are averaged as well
(each a mean over its run's last batches); the int8 calibration belonged to
one file's activations and is dropped (models/calibrate.sh redoes it).

    soup.py A.safetensors B.safetensors [...] -o OUT.safetensors
"""

import argparse
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import safetensors_io  # noqa: E402

# keys of the card that describe one run and would be wrong on the average
_PER_RUN = ("train.val_dice", "train.command", "train.seed", "train.iter", "int8")


def average(models):
    """models: [(tensors, meta)] -> (tensors, meta) of the uniform soup.
    Raises ValueError when they are not fine-tunes of one start or do not
    hold the same tensors."""
    if len(models) < 2:
        raise ValueError("soup: needs at least two model files")
    (first, meta0), rest = models[0], models[1:]
    init = meta0.get("train.init", "")
    for k, (t, meta) in enumerate(rest, 2):
        if meta.get("train.init", "") != init or not init:
            raise ValueError(f"soup: model {k} was not fine-tuned from {init or 'a named start'!r} "
                             f"(its train.init: {meta.get('train.init', '')!r})")
        if meta.get("mms.arch") != meta0.get("mms.arch") or set(t) != set(first):
            raise ValueError(f"soup: model {k} is another network than model 1")
        for name, v in t.items():
            if v.shape != first[name].shape or v.dtype != first[name].dtype:
                raise ValueError(f"soup: model {k}: {name} is {tuple(v.shape)} {v.dtype}, "
                                 f"model 1 has {tuple(first[name].shape)} {first[name].dtype}")
    out = {}
    for name, v in first.items():
        if v.is_floating_point():
            out[name] = torch.stack([t[name].double() for t, _ in models]).mean(0).to(v.dtype)
        else:   # counters such as num_batches_tracked: the first's
            out[name] = v.clone()
    meta = {k: v for k, v in meta0.items() if not k.startswith(_PER_RUN)}
    meta["train.soup"] = str(len(models))
    return out, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    try:
        models = [safetensors_io.load_file(p) for p in args.models]
        tensors, meta = average(models)
    except (OSError, ValueError, struct.error) as e:
        raise SystemExit(f"soup.py: {e}")
    meta["train.soup_of"] = ",".join(os.path.basename(os.path.dirname(os.path.abspath(p))) or p
                                     for p in args.models)
    safetensors_io.save_file(tensors, args.output, meta)
    print(f"soup.py: {args.output}: the mean of {len(models)} models")


if __name__ == "__main__":
    main()
