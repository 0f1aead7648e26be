#!/usr/bin/env python3
"""Latency of a model file's network in PyTorch, in the strongest CPU modes
PyTorch 1.13 has, one JSON line with the same statistics and keys as
`mms bench --json`, so the two can be set side by side
(scripts/bench-vs-torch.sh, bench/peers.sh).

  --precision fp32  eval, torch.jit.trace + torch.jit.freeze (folds
                    batch-norm, fuses conv+relu through oneDNN) and
                    channels_last memory format.
  --precision bf16  the same under torch.autocast("cpu", bfloat16). Only
                    where the CPU has native bf16 (avx512_bf16 or AMX):
                    elsewhere PyTorch emulates it, slower than fp32, and the
                    figure would say nothing; the row is then "skipped"
                    with the reason (--force runs it anyway, to test the
                    path).
  --precision int8  post-training static quantisation with FX graph mode
                    (prepare_fx / convert_fx) on the first quantised engine
                    of x86, fbgemm, onednn this build has, calibrated on a
                    few training-split frames of ../shared/data (random
                    inputs if there are none), then traced and frozen.

A configuration that cannot run prints a row with "status": "skipped" (exit
0) or "failed" (exit 1) and the reason, never a traceback alone: the caller
puts that reason in its table.
"""

import argparse
import copy
import itertools
import json
import os
import statistics
import sys
import time

import torch

from reference import load

HERE = os.path.dirname(os.path.abspath(__file__))


class Skip(Exception):
    """This configuration does not apply here (not an error)."""


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def calibration_frames(meta, h, w, n, data_root):
    """Up to n preprocessed frames, taken in turn from each labeled folder's
    training split (never validation, whatever the benchmark), as the
    engine would see them; an empty list if the data is not there."""
    try:
        import data as mdata
        import mmsnet
        from PIL import Image
        import numpy as np
    except ImportError:
        return []
    mean = [float(v) for v in meta.get("mms.mean", "0.485,0.456,0.406").split(",")]
    std = [float(v) for v in meta.get("mms.std", "0.229,0.224,0.225").split(",")]
    try:
        split = mdata.load_split()
    except (OSError, ValueError):
        return []
    folders = [f for f in mdata.LABELED if split.get(f, {}).get("train")]
    if not folders:
        return []
    # Evenly spaced over each folder's training list, folders in turn: the
    # first few frames of a list are consecutive, near-identical ones.
    per = -(-n // len(folders))
    picks = []
    for folder in folders:
        stems = split[folder]["train"]
        d = os.path.join(data_root, "labeled", folder, "image")
        picks.append([(d, s) for s in stems[::max(1, len(stems) // per)][:per]])
    frames = []
    for group in itertools.zip_longest(*picks):
        for d, stem in filter(None, group):
            path = mdata.find_file(d, stem)
            if path and len(frames) < n:
                rgb = np.asarray(Image.open(path).convert("RGB"))
                frames.append(mmsnet.preprocess(torch.from_numpy(rgb.copy()), (h, w), mean, std))
    return frames


def build(model, meta, x, args):
    """The network to time for args.precision, and notes for the row."""
    notes = []
    if args.precision == "fp32":
        with torch.no_grad():
            return torch.jit.freeze(torch.jit.trace(model, x)), notes

    if args.precision == "bf16":
        flags = cpu_flags()
        native = sorted(flags & {"avx512_bf16", "amx_bf16"})
        if not native and not args.force:
            raise Skip("CPU has neither avx512_bf16 nor amx_bf16: PyTorch would emulate bf16, "
                       "slower than fp32")
        if not native:
            notes.append("forced: no native bf16 on this CPU, emulated")
        else:
            notes.append("native: " + " ".join(native))
        # Tracing under autocast records its casts into the graph. The
        # JIT's own autocast pass must then be off (it would insert them a
        # second time), and autocast's weight-cast cache too: with it, the
        # trace holds cached bf16 copies and its sanity check fails.
        torch._C._jit_set_autocast_mode(False)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=False):
            net = torch.jit.freeze(torch.jit.trace(model, x, check_trace=False))
        h, w = x.shape[2:]
        frames = calibration_frames(meta, h, w, 1, args.data) or [x]
        notes.append(agreement(net, model, frames[0]))
        return net, notes

    # int8
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    have = torch.backends.quantized.supported_engines
    engine = next((e for e in ("x86", "fbgemm", "onednn") if e in have), None)
    if engine is None:
        raise Skip(f"no x86/fbgemm/onednn quantised engine in this torch (has {have})")
    if engine != "x86" and engine != "fbgemm":
        notes.append(f"engine {engine}: this torch has no x86/fbgemm (has {', '.join(have)})")
    else:
        notes.append(f"engine {engine}")
    torch.backends.quantized.engine = engine
    h, w = x.shape[2:]
    frames = calibration_frames(meta, h, w, args.calib, args.data)
    if frames:
        notes.append(f"calibrated on {len(frames)} training frames")
    else:
        notes.append("calibrated on random inputs (no frames in " + args.data + ")")
        g = torch.Generator().manual_seed(1)
        frames = [torch.randn(1, 3, h, w, generator=g) for _ in range(args.calib)]
    fp32 = copy.deepcopy(model).to(memory_format=torch.contiguous_format).eval()
    with torch.no_grad():
        prepared = prepare_fx(fp32, get_default_qconfig_mapping(engine), example_inputs=(x,))
        for f in frames:
            prepared(f.contiguous(memory_format=torch.channels_last))
        net = torch.jit.freeze(torch.jit.trace(convert_fx(prepared), x))
    notes.append(agreement(net, model, frames[0]))
    return net, notes


def agreement(net, model, frame):
    """How far a reduced precision moved the logits of one frame from fp32,
    and the share of mask pixels (logit > 0) that stayed: the speed of a
    network that no longer segments would mean nothing."""
    frame = frame.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = model(frame)
        out = net(frame).float()
    agree = ((out > 0) == (ref > 0)).float().mean().item()
    return (f"vs fp32 on one frame: mask agreement {agree:.4f}, "
            f"max |logit diff| {(out - ref).abs().max().item():.3g}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--size", default=None, help="HxW (default: the model card's)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--precision", choices=("fp32", "bf16", "int8"), default="fp32")
    ap.add_argument("--force", action="store_true",
                    help="bf16 even without native CPU support (emulated: tests the path only)")
    ap.add_argument("--calib", type=int, default=8, help="int8: calibration frames")
    ap.add_argument("--data", default=os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data")),
                    help="int8: data root with labeled/<folder>/image")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    model, meta = load(args.model)
    h, w = (int(v) for v in (args.size or meta["mms.input"]).split("x"))
    row = {"engine": f"pytorch {torch.__version__} jit.freeze channels_last",
           "model": args.model, "arch": meta["mms.arch"], "size": f"{h}x{w}",
           "precision": args.precision, "threads": args.threads, "iters": args.iters}
    if args.precision == "bf16":
        row["engine"] += " autocast"
    elif args.precision == "int8":
        row["engine"] = f"pytorch {torch.__version__} fx int8 jit.freeze channels_last"
    x = torch.randn(1, 3, h, w).contiguous(memory_format=torch.channels_last)
    model = model.to(memory_format=torch.channels_last)
    try:
        net, notes = build(model, meta, x, args)
        with torch.no_grad():
            for _ in range(args.warmup):
                net(x)
            times = []
            for _ in range(args.iters):
                t = time.perf_counter()
                net(x)
                times.append((time.perf_counter() - t) * 1e3)
    except Skip as e:
        print(json.dumps({**row, "status": "skipped", "reason": str(e)}))
        return 0
    except Exception as e:  # noqa: BLE001 - the reason goes into the row
        msg = " ".join(f"{type(e).__name__}: {e}".split())
        print(json.dumps({**row, "status": "failed", "reason": msg[:400]}))
        return 1
    from mmsnet import macs as count_macs
    macs = count_macs(model.to(memory_format=torch.contiguous_format), (h, w))
    times.sort()
    med = statistics.median(times)
    row.update({
        "status": "ok",
        # p90 by nearest rank, ceil(0.9 n), as cli/cmd_bench.c.
        "median_ms": round(med, 3), "p90_ms": round(times[-(-9 * len(times) // 10) - 1], 3),
        "min_ms": round(times[0], 3), "fps": round(1000 / med, 2),
        "gflops": round(2 * macs / med / 1e6, 2), "macs": macs})
    if notes:
        row["note"] = "; ".join(notes)
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
