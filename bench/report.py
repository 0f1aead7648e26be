#!/usr/bin/env python3
"""Gathers bench/peers.sh's steps into one table and one JSON file.

  report.py WORK_DIR --json OUT.json --model M --threads T --iters N --warmup W

WORK_DIR holds `steps` (one line per row: ID<TAB>LABEL<TAB>PRECISION) and,
per ID, either ID.skip (the reason a row was not attempted) or ID.out,
ID.err and ID.rc of the command that ran it. A command's row is the JSON
object on its stdout (`mms bench --json`, or the helpers' one line); with
none, the row failed and its reason is the end of its stderr. So a peer that
cannot run still has a row saying why, and nothing here needs the peer.

Ratios are each row's median over mmsd fp32's median: > 1 means slower than
mmsd. Exit status 1 when mmsd fp32 has no figure, else 0.
"""

import argparse
import datetime
import json
import os
import platform
import sys

# The /proc/cpuinfo flags that decide which precisions can be fast here,
# printed beside mmsd's own ISA summary.
MATRIX_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
                "amx_tile", "amx_bf16", "amx_int8")


def cpuinfo_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [fl for fl in MATRIX_FLAGS if fl in have]
    except OSError:
        pass
    return []


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def json_object(text):
    """The JSON object a command printed: the whole output (mms bench's is
    indented over several lines) or, failing that, its last line that is one."""
    text = text.strip()
    try:
        obj = json.loads(text)
        return obj if isinstance(obj, dict) else None
    except ValueError:
        pass
    for line in reversed(text.splitlines()):
        try:
            obj = json.loads(line)
            if isinstance(obj, dict):
                return obj
        except ValueError:
            continue
    return None


def tail(text, n=2):
    lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
    return " | ".join(lines[-n:])[:400]


def row_of(work, sid, label, precision):
    skip = os.path.join(work, sid + ".skip")
    if os.path.exists(skip):
        return {"label": label, "precision": precision, "status": "skipped",
                "reason": read(skip).strip()}
    out, err = read(os.path.join(work, sid + ".out")), read(os.path.join(work, sid + ".err"))
    rc = read(os.path.join(work, sid + ".rc")).strip()
    obj = json_object(out)
    if obj is None or "status" not in obj and "median_ms" not in obj:
        reason = tail(err) or f"exit status {rc}, no output"
        row = {"label": label, "precision": precision, "status": "failed", "reason": reason}
        if label == "mmsd" and precision != "fp32":
            # mms refuses a precision it does not implement (exit 1, one line).
            row.update(status="not available", reason="not available in mmsd yet: " + reason)
        return row
    row = {"label": label, **obj, "precision": precision}
    row.setdefault("engine", "mms bench" if label == "mmsd" else label)
    row.setdefault("status", "ok")
    ran = obj.get("precision", precision)
    if ran != precision:
        # e.g. a future mmsd falling back to fp32 on a CPU without bf16.
        row["note"] = (row.get("note", "") + "; " if row.get("note") else "") + f"ran as {ran}"
        row["precision_ran"] = ran
    return row


def fmt(v):
    return f"{v:.2f}" if isinstance(v, (int, float)) else "-"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--json", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--iters", type=int, required=True)
    ap.add_argument("--warmup", type=int, required=True)
    args = ap.parse_args()

    steps = [l.split("\t") for l in read(os.path.join(args.work, "steps")).splitlines() if l]
    rows = [row_of(args.work, *s) for s in steps]
    base = next((r for r in rows if r["label"] == "mmsd" and r["precision"] == "fp32"), None)
    base_ms = base.get("median_ms") if base and base["status"] == "ok" else None
    for r in rows:
        if base_ms and r["status"] == "ok" and r.get("median_ms"):
            r["ratio_to_mmsd_fp32"] = round(r["median_ms"] / base_ms, 3)

    cpu = dict((base or {}).get("cpu") or {})
    cpu["cpuinfo_flags"] = cpuinfo_flags()
    size = (base or {}).get("size", "?")
    try:
        load = float(read(os.path.join(args.work, "loadavg")).split()[0])
    except (IndexError, ValueError):
        load = None
    doc = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "host": platform.node(), "model": args.model, "size": size,
           "threads": args.threads, "iters": args.iters, "warmup": args.warmup,
           "loadavg_before": load, "cpu": cpu, "rows": rows}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")

    print(f"CPU        {cpu.get('name', '?')}, {cpu.get('cpus', '?')} CPUs visible")
    print(f"ISA flags  {cpu.get('flags', '?')} (mms);  /proc/cpuinfo: "
          f"{' '.join(cpu['cpuinfo_flags']) or 'none of ' + ' '.join(MATRIX_FLAGS)}")
    print(f"oneDNN ISA {cpu.get('onednn_isa', '?')}")
    print(f"network    {os.path.basename(args.model)} {size}, {args.threads} threads, "
          f"median of {args.iters} runs after {args.warmup} warm-up")
    if load is not None and load > 1.0:
        # The export before timing adds well under 0.5; a first run's
        # installs can add more (rerun: they are not repeated).
        print(f"WARNING    load average {load:.2f} before timing: other work was running, "
              "so these figures are noise; rerun on an idle machine")
    print()
    names = [r.get("engine") if r["status"] == "ok" and r.get("engine") and r["label"] != "mmsd"
             else r["label"] for r in rows]
    wn = max(len("engine"), *(len(n) for n in names))
    print(f"{'engine':<{wn}}  {'precision':<9}  {'median ms':>9}  {'p90 ms':>9}  "
          f"{'x mmsd fp32':>11}  status")
    notes = []
    for name, r in zip(names, rows):
        status = r["status"]
        text = r.get("reason") or r.get("note")
        if text:
            notes.append(text)
            status += f" [{len(notes)}]"
        print(f"{name:<{wn}}  {r['precision']:<9}  {fmt(r.get('median_ms')):>9}  "
              f"{fmt(r.get('p90_ms')):>9}  {fmt(r.get('ratio_to_mmsd_fp32')):>11}  {status}")
    if notes:
        print()
        for i, t in enumerate(notes, 1):
            print(f"[{i}] {t}")
    print()
    print(f"x mmsd fp32 = median / mmsd fp32 median (> 1: slower than mmsd). JSON: {args.json}")
    return 0 if base_ms else 1


if __name__ == "__main__":
    sys.exit(main())
