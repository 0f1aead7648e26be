"""Grow an mms-rt model file wider (up to twice), computing the same function
(Net2WiderNet, Chen et al. 2016, "Net2Net").

A wider network trained from scratch loses to the narrow one that went
through the whole chain of fine-tunes; growing the shipped model lets the
wide one start where the narrow one is. The plan maps each width C to a
new width N, C <= N <= 2C (the engine wants multiples of 16): channels
0 .. N - C - 1 of a layer get a copy each, appended after the C originals
(BatchNorm parameters and statistics copied).
A convolution reading a widened input splits each original input channel's
weights between its two copies in fractions r and 1 - r, r drawn once per
channel, so the sum over the copies is the original weight and the output
is unchanged; unequal fractions let the copies drift apart under training
(equal halves would keep them identical forever). The decoder reads
[skip, upsampled] concatenations, whose halves are widened separately.

    widen.py MODEL -o OUT --widths 32,48,96,192,384 --decoder 144,80,48,32 [--seed S]
"""

import argparse
import collections
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mmsnet  # noqa: E402
import reference  # noqa: E402
import safetensors_io  # noqa: E402



def make_plan(old, new):
    """The width map from the narrow network's widths to the wide one's, in
    the same order; one width may not grow two ways."""
    if len(old) != len(new):
        raise ValueError(f"widen: {len(new)} widths given for {len(old)}")
    plan = {}
    for c, n in zip(old, new):
        if not c <= n <= 2 * c:
            raise ValueError(f"widen: {c} channels cannot grow to {n} (at most one copy each)")
        if plan.setdefault(c, n) != n:
            raise ValueError(f"widen: {c} channels cannot grow to both {plan[c]} and {n}")
    return plan


def source_channels(segments, plan):
    """For an input made of segments of the given widths, each grown by the
    plan: the original channel behind every new one."""
    src, base = [], 0
    for c in segments:
        src += [base + i for i in range(c)] + [base + i for i in range(plan[c] - c)]
        base += c
    return torch.tensor(src)


def _grow_rows(t, plan):
    return torch.cat([t, t[: plan[t.shape[0]] - t.shape[0]]], 0)


def widen_conv(w, out_grows, in_segments, gen, plan, lo=0.25, hi=0.75):
    """A conv weight (O, I, kh, kw) for the widened layer. in_segments: the
    widths of the input's segments (None: the input is not widened). An
    input channel without a copy keeps its whole weight."""
    if out_grows:
        w = _grow_rows(w, plan)
    if in_segments is None:
        return w.clone()
    assert sum(in_segments) == w.shape[1]
    src = source_channels(in_segments, plan)
    copied = {s for s, n in collections.Counter(src.tolist()).items() if n > 1}
    r = lo + (hi - lo) * torch.rand(w.shape[1], generator=gen, dtype=torch.float64)
    frac, seen = torch.empty(len(src), dtype=torch.float64), set()
    for j, s in enumerate(src.tolist()):
        frac[j] = 1.0 if s not in copied else (r[s] if s not in seen else 1 - r[s])
        seen.add(s)
    return (w[:, src].double() * frac.view(1, -1, 1, 1)).to(w.dtype)


def widen_bn(sd, prefix, out, plan):
    for k in ("weight", "bias", "running_mean", "running_var"):
        out[prefix + k] = _grow_rows(sd[prefix + k], plan)
    out[prefix + "num_batches_tracked"] = sd[prefix + "num_batches_tracked"].clone()


def narrow_widths(net):
    widths = [net.stem[0].out_channels] + [s[-1].conv2.out_channels for s in net.layers]
    return widths, [b.conv2.out_channels for b in net.dec]


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
    widths, _ = narrow_widths(model)
    y = widths[-1]
    for i, (skip, block) in enumerate(zip(reversed(widths[:-1]), model.dec)):
        segs[f"dec.{i}.conv1"] = [skip, y]
        y = block.conv2.out_channels
    return segs


def widen_state(model, sd, plan, seed=0):
    """The state dict of the grown model."""
    gen = torch.Generator().manual_seed(seed)
    out, segs = {}, _conv_inputs(model)
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            grows = m.out_channels != 1
            out[name + ".weight"] = widen_conv(sd[name + ".weight"], grows, segs[name], gen, plan)
            if m.bias is not None:
                b = sd[name + ".bias"]
                out[name + ".bias"] = _grow_rows(b, plan) if grows else b.clone()
        elif isinstance(m, nn.BatchNorm2d):
            widen_bn(sd, name + ".", out, plan)
    missing = set(sd) - set(out)
    if missing:
        raise ValueError(f"widen: tensors not widened: {sorted(missing)[:5]}")
    return out


def wide_meta(meta, widths, decoder):
    """The narrow network, the wide one's card and the width plan."""
    if meta.get("mms.arch") != "mms-rt":
        raise SystemExit(f"widen.py: only mms-rt grows, not {meta.get('mms.arch')!r}")
    net = mmsnet.build("mms-rt", meta)
    old_w, old_d = narrow_widths(net)
    try:
        plan = make_plan(old_w + old_d, list(widths) + list(decoder))
    except ValueError as e:
        raise SystemExit(f"widen.py: {e}")
    out = {k: v for k, v in meta.items() if not k.startswith("int8")}
    out["mms.widths"] = ",".join(str(v) for v in widths)
    out["mms.decoder"] = ",".join(str(v) for v in decoder)
    return net, out, plan


def _ints(s):
    return [int(v) for v in s.split(",")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--widths", type=_ints, required=True, help="the wide encoder's widths")
    ap.add_argument("--decoder", type=_ints, required=True, help="the wide decoder's widths")
    ap.add_argument("--seed", type=int, default=0, help="draws the split fractions")
    args = ap.parse_args()
    narrow, meta = reference.load(args.model)
    _, meta, plan = wide_meta(meta, args.widths, args.decoder)
    state = widen_state(narrow, narrow.state_dict(), plan, args.seed)
    wide = mmsnet.build("mms-rt", meta)
    wide.load_state_dict(state)                       # strict: every tensor has its place
    meta["train.widened_from"] = os.path.basename(args.model)
    safetensors_io.save_file(wide.state_dict(), args.output, meta)
    print(f"widen.py: {args.output}: widths {meta['mms.widths']}, decoder {meta['mms.decoder']}")


if __name__ == "__main__":
    main()
