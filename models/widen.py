"""Grow an mms-rt model file to twice its width, computing the same function
(Net2WiderNet, Chen et al. 2016, "Net2Net").

A wider network trained from scratch loses to the narrow one that went
through the whole chain of fine-tunes; growing the shipped model lets the
wide one start where the narrow one is. Every channel c of a layer with C
channels gets a copy c + C (BatchNorm parameters and statistics copied).
A convolution reading a widened input splits each original input channel's
weights between its two copies in fractions r and 1 - r, r drawn once per
channel, so the sum over the copies is the original weight and the output
is unchanged; unequal fractions let the copies drift apart under training
(equal halves would keep them identical forever). The decoder reads
[skip, upsampled] concatenations, whose halves are widened separately.

    widen.py MODEL -o OUT [--seed S]
"""

import argparse
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mmsnet  # noqa: E402
import reference  # noqa: E402
import safetensors_io  # noqa: E402



def source_channels(segments):
    """For an input made of segments of the given widths, each widened to
    twice itself by tiling: the original channel behind every new one."""
    src, base = [], 0
    for c in segments:
        src += [base + i for i in range(c)] * 2
        base += c
    return torch.tensor(src)


def widen_conv(w, out_twice, in_segments, gen, lo=0.25, hi=0.75):
    """A conv weight (O, I, kh, kw) for the widened layer. in_segments: the
    widths of the input's segments (None: the input is not widened)."""
    if out_twice:
        w = torch.cat([w, w], 0)
    if in_segments is None:
        return w.clone()
    assert sum(in_segments) == w.shape[1]
    src = source_channels(in_segments)
    r = lo + (hi - lo) * torch.rand(w.shape[1], generator=gen, dtype=torch.float64)
    frac, seen = torch.empty(len(src), dtype=torch.float64), set()
    for j, s in enumerate(src.tolist()):
        frac[j] = r[s] if s not in seen else 1 - r[s]
        seen.add(s)
    return (w[:, src].double() * frac.view(1, -1, 1, 1)).to(w.dtype)


def widen_bn(sd, prefix, out):
    for k in ("weight", "bias", "running_mean", "running_var"):
        out[prefix + k] = torch.cat([sd[prefix + k]] * 2)
    out[prefix + "num_batches_tracked"] = sd[prefix + "num_batches_tracked"].clone()


def _conv_inputs(model):
    """Each conv's input segments: None for the RGB input, else the widths of
    the concatenated parts it reads."""
    segs = {}
    for name, m in model.named_modules():
        if not isinstance(m, nn.Conv2d):
            continue
        if m.in_channels == 3:
            segs[name] = None
        else:
            segs[name] = [m.in_channels]
    widths = [model.stem[0].out_channels] + [s[-1].conv2.out_channels for s in model.layers]
    y = widths[-1]
    for i, (skip, block) in enumerate(zip(reversed(widths[:-1]), model.dec)):
        segs[f"dec.{i}.conv1"] = [skip, y]
        y = block.conv2.out_channels
    return segs


def widen_state(model, sd, seed=0):
    """The state dict of the twice-wide model."""
    gen = torch.Generator().manual_seed(seed)
    out, segs = {}, _conv_inputs(model)
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            twice = m.out_channels != 1
            out[name + ".weight"] = widen_conv(sd[name + ".weight"], twice, segs[name], gen)
            if m.bias is not None:
                b = sd[name + ".bias"]
                out[name + ".bias"] = torch.cat([b, b]) if twice else b.clone()
        elif isinstance(m, nn.BatchNorm2d):
            widen_bn(sd, name + ".", out)
    missing = set(sd) - set(out)
    if missing:
        raise ValueError(f"widen: tensors not widened: {sorted(missing)[:5]}")
    return out


def wide_meta(meta):
    if meta.get("mms.arch") != "mms-rt":
        raise SystemExit(f"widen.py: only mms-rt grows, not {meta.get('mms.arch')!r}")
    net = mmsnet.build("mms-rt", meta)
    out = {k: v for k, v in meta.items() if not k.startswith("int8")}
    widths = [net.stem[0].out_channels] + [s[-1].conv2.out_channels for s in net.layers]
    decoder = [b.conv2.out_channels for b in net.dec]
    out["mms.widths"] = ",".join(str(2 * v) for v in widths)
    out["mms.decoder"] = ",".join(str(2 * v) for v in decoder)
    out["mms.blocks"] = ",".join(str(len(s)) for s in net.layers)
    return net, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--seed", type=int, default=0, help="draws the split fractions")
    args = ap.parse_args()
    narrow, meta = reference.load(args.model)
    net, meta = wide_meta(meta)
    state = widen_state(narrow, narrow.state_dict(), args.seed)
    wide = mmsnet.build("mms-rt", meta)
    wide.load_state_dict(state)                       # strict: every tensor has its place
    meta["train.widened_from"] = os.path.basename(args.model)
    safetensors_io.save_file(wide.state_dict(), args.output, meta)
    print(f"widen.py: {args.output}: widths {meta['mms.widths']}, decoder {meta['mms.decoder']}")


if __name__ == "__main__":
    main()
