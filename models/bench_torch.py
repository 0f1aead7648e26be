#!/usr/bin/env python3
"""Latency of a model file's network in PyTorch, in the strongest CPU mode
PyTorch 1.13 has: eval, torch.jit.trace + torch.jit.freeze (folds batch-norm,
fuses conv+relu through oneDNN) and channels_last memory format. Same
statistics and JSON keys as `mms bench --json`, so the two can be set side by
side (scripts/bench-vs-torch.sh)."""

import argparse
import json
import statistics
import time

import torch

from reference import load


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--size", default=None, help="HxW (default: the model card's)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    model, meta = load(args.model)
    h, w = (int(v) for v in (args.size or meta["mms.input"]).split("x"))
    x = torch.randn(1, 3, h, w).contiguous(memory_format=torch.channels_last)
    model = model.to(memory_format=torch.channels_last)
    with torch.no_grad():
        net = torch.jit.freeze(torch.jit.trace(model, x))
        for _ in range(args.warmup):
            net(x)
        times = []
        for _ in range(args.iters):
            t = time.perf_counter()
            net(x)
            times.append((time.perf_counter() - t) * 1e3)
    from mmsnet import macs as count_macs
    macs = count_macs(model.to(memory_format=torch.contiguous_format), (h, w))
    times.sort()
    med = statistics.median(times)
    print(json.dumps({
        "engine": f"pytorch {torch.__version__} jit.freeze channels_last",
        "model": args.model, "arch": meta["mms.arch"], "size": f"{h}x{w}",
        "precision": "fp32", "threads": args.threads, "iters": args.iters,
        "median_ms": round(med, 3), "p90_ms": round(times[int(0.9 * (len(times) - 1))], 3),
        "min_ms": round(times[0], 3), "fps": round(1000 / med, 2),
        "gflops": round(2 * macs / med / 1e6, 2), "macs": macs}))


if __name__ == "__main__":
    main()
