#!/usr/bin/env python3
"""OpenCV DNN row of bench/peers.sh: times net.forward() of the exported
network with Debian's OpenCV (python3-opencv), its own CPU backend, and
prints one JSON line with the keys of `mms bench --json`.

  cv_bench.py ONNX_DIR --threads T --iters N --warmup W

ONNX_DIR is export_onnx.py's output. The check input's logits are compared
with PyTorch's first, so the row shows that OpenCV's importer built the
same network (an op it mis-imports would otherwise time something else).
"""

import argparse
import json
import os
import statistics
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("onnx_dir")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    row = {"engine": "opencv dnn", "precision": "fp32", "threads": args.threads,
           "iters": args.iters}
    try:
        import cv2
    except ImportError as e:
        print(json.dumps({**row, "status": "skipped",
                          "reason": f"no cv2 for /usr/bin/python3 ({e}); install python3-opencv"}))
        return 0
    row["engine"] = f"opencv {cv2.__version__} dnn, backend opencv, cpu"
    try:
        import numpy as np
        with open(os.path.join(args.onnx_dir, "export.json")) as f:
            h, w = (int(v) for v in json.load(f)["size"].split("x"))
        x = np.fromfile(os.path.join(args.onnx_dir, "check_input.f32"), dtype="<f4")
        ref = np.fromfile(os.path.join(args.onnx_dir, "check_logits.f32"), dtype="<f4")
        x = x.reshape(1, 3, h, w)
        # setNumThreads sets OpenCV's parallel_for_ pool (pthreads or
        # OpenMP, whichever the build chose); the DNN module's layers run on it.
        cv2.setNumThreads(args.threads)
        net = cv2.dnn.readNetFromONNX(os.path.join(args.onnx_dir, "net.onnx"))
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        net.setInput(x)
        y = net.forward()
        diff = float(np.abs(y.reshape(-1) - ref).max())
        row["check_max_abs_diff"] = float(f"{diff:.3g}")
        row["check_ok"] = diff <= 1e-3
        # Each run sets the input again, as a program feeding frames would.
        for _ in range(args.warmup):
            net.setInput(x)
            net.forward()
        ms = []
        for _ in range(args.iters):
            t = time.perf_counter()
            net.setInput(x)
            net.forward()
            ms.append((time.perf_counter() - t) * 1e3)
    except Exception as e:  # noqa: BLE001 - the reason goes into the row
        msg = " ".join(f"{type(e).__name__}: {e}".split())
        print(json.dumps({**row, "status": "failed", "reason": msg[:400]}))
        return 1
    ms.sort()
    med = statistics.median(ms)
    row.update({"status": "ok", "size": f"{h}x{w}",
                # p90 by nearest rank, ceil(0.9 n), as cli/cmd_bench.c.
                "median_ms": round(med, 3), "p90_ms": round(ms[-(-9 * len(ms) // 10) - 1], 3),
                "min_ms": round(ms[0], 3), "fps": round(1000 / med, 2)})
    if not row["check_ok"]:
        row["note"] = f"logits differ from PyTorch by {row['check_max_abs_diff']} (> 1e-3)"
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
