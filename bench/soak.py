#!/usr/bin/python3
"""bench/soak.py: mmsd for N frames at full speed, watching memory and files.

One mmsd pipeline reads a synthetic source (lavfi testsrc2, mode offline:
as fast as it can) and writes the annotated video to `null` and to a
recording cut into short segments, so that encoders, segment files and
the whole per-frame path turn over many times. Every few seconds the
script samples the daemon's frame counter (/metrics), its RSS and its open
file descriptors and threads (/proc), and at the end says whether

  * RSS grew by less than --max-rss-growth MB after the warm-up (the first
    --warmup frames), and
  * the descriptors and threads after the warm-up stayed within
    --max-fd-spread of each other (a segment file open and closing).

With --asan BUILD it instead runs BUILD's mmsd (an ASan build, which
carries LeakSanitizer) for --frames frames, stops it with SIGTERM and fails
on any sanitizer report in its log.

Writes out/soak/samples.tsv and out/soak/summary.json; exits 0 when every
check passed, 1 when one failed, 2 on bad usage. A script for people, not
a CI test (100,000 frames take a quarter of an hour and more).

  bench/soak.py --frames 100000
  bench/soak.py --asan build-asan --frames 3000
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric(text, name, label):
    """The value of the series NAME whose labels include LABEL."""
    for line in text.splitlines():
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\} (\S+)$', line)
        if m and m.group(1) == name and label in m.group(2).split(","):
            return float(m.group(3))
    return None


def proc_status(pid):
    rss = threads = None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024.0
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, threads, len(os.listdir(f"/proc/{pid}/fd"))


def cpu_line():
    name, flags = platform.processor() or "?", []
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and name in ("?", ""):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                flags = [x for x in ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni",
                                     "amx_tile", "amx_int8") if x in have]
                break
    return f"{name} ({' '.join(flags)})"


def config(args, port, rec):
    return f"""[mmsd]
listen = 127.0.0.1:{port}
log_level = notice

[pipeline soak]
input = lavfi:testsrc2=size={args.source_size}:rate=25
mode = offline
output = null
size = {args.net_size}
precision = {args.precision}
style = fill
record_dir = {rec}
segment_seconds = {args.segment_seconds}
"""


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=100000)
    ap.add_argument("--warmup", type=int, default=5000, help="frames before the baseline sample")
    ap.add_argument("--source-size", default="640x360", help="testsrc2 frame size WxH")
    ap.add_argument("--net-size", default="0x0",
                    help="network input HxW, multiples of 32 for mms-rt (0x0: the model's)")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--segment-seconds", type=int, default=20,
                    help="recording segment length in stream seconds (25 fps)")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--max-rss-growth", type=float, default=5.0, help="MB")
    ap.add_argument("--max-fd-spread", type=int, default=2)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--asan", metavar="BUILD", help="LeakSanitizer run with BUILD's mmsd")
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "soak"))
    args = ap.parse_args()
    if args.frames < 1 or (not args.asan and args.frames <= args.warmup):
        ap.error("--frames must be > --warmup (or >= 1 with --asan)")
    mmsd = os.path.join(args.asan or args.build, "mmsd")
    if not os.access(mmsd, os.X_OK):
        ap.error(f"{mmsd}: not built")
    os.makedirs(args.out, exist_ok=True)

    tmp = tempfile.mkdtemp(prefix="mms-soak.")
    port = free_port()
    conf = os.path.join(tmp, "mmsd.conf")
    with open(conf, "w") as f:
        f.write(config(args, port, os.path.join(tmp, "rec")))
    env = dict(os.environ)
    if args.asan:
        env["ASAN_OPTIONS"] = "detect_leaks=1:halt_on_error=0"
        env["LSAN_OPTIONS"] = f"suppressions={ROOT}/tests/lsan.supp:print_suppressions=0"
    log_path = os.path.join(args.out, "asan.log" if args.asan else "mmsd.log")
    log = open(log_path, "w")
    p = subprocess.Popen([mmsd, "-c", conf], stdout=log, stderr=log, env=env)
    samples, t0, failed = [], time.time(), []
    try:
        while True:
            time.sleep(args.interval)
            if p.poll() is not None:
                failed.append(f"mmsd exited early with status {p.returncode} (see {log_path})")
                break
            try:
                text = scrape(port)
                frames = metric(text, "mmsd_frames_total", 'stage="written"') or 0
                inferred = metric(text, "mmsd_frames_total", 'stage="inferred"') or 0
            except OSError:
                continue  # not listening yet
            rss, threads, fds = proc_status(p.pid)
            samples.append((round(time.time() - t0, 1), int(frames), round(rss, 2), fds, threads,
                            int(inferred)))
            print("%7.1f s %8d frames  rss %7.2f MB  fds %3d  threads %2d  inferred %d"
                  % samples[-1], flush=True)
            if frames >= args.frames:
                break
            if frames == 0 and time.time() - t0 > 120:
                failed.append(f"no frame written in 120 s (see {log_path})")
                break
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                failed.append("mmsd did not stop within 60 s of SIGTERM")
        log.close()
        segments = len(os.listdir(os.path.join(tmp, "rec"))) if os.path.isdir(
            os.path.join(tmp, "rec")) else 0
        shutil.rmtree(tmp, ignore_errors=True)

    with open(os.path.join(args.out, "samples.tsv"), "w") as f:
        f.write("seconds\tframes\trss_mb\tfds\tthreads\tinferred\n")
        for s in samples:
            f.write("\t".join(map(str, s)) + "\n")
    summary = {"cpu": cpu_line(), "mmsd": mmsd, "frames_asked": args.frames,
               "source": f"lavfi testsrc2 {args.source_size} offline", "net_size": args.net_size,
               "precision": args.precision, "segment_seconds": args.segment_seconds,
               "segments": segments, "exit_status": p.returncode}
    if args.asan:
        text = open(log_path, errors="replace").read()
        reports = re.findall(r"ERROR: (?:AddressSanitizer|LeakSanitizer)[^\n]*|runtime error:[^\n]*",
                             text)
        summary.update(frames=samples[-1][1] if samples else 0, sanitizer_reports=len(reports))
        if reports:
            failed.append(f"{len(reports)} sanitizer reports, first: {reports[0]}")
    elif samples:
        warm = next((s for s in samples if s[1] >= args.warmup), None)
        last = samples[-1]
        after = [s for s in samples if warm and s[0] >= warm[0]]
        summary.update(
            frames=last[1], inferred=last[5], seconds=last[0], fps=round(last[1] / last[0], 1),
            rss_mb={"first": samples[0][2], "warm": warm and warm[2], "last": last[2],
                    "max": max(s[2] for s in samples)},
            fds={"warm": warm and warm[3], "last": last[3],
                 "min": min(s[3] for s in after) if after else None,
                 "max": max(s[3] for s in after) if after else None},
            threads={"warm": warm and warm[4], "last": last[4]})
        if last[1] < args.frames:
            failed.append(f"only {last[1]} of {args.frames} frames")
        if warm is None:
            failed.append("never got past the warm-up")
        else:
            growth = last[2] - warm[2]
            summary["rss_growth_mb"] = round(growth, 2)
            if growth >= args.max_rss_growth:
                failed.append(f"RSS grew {growth:.2f} MB after the warm-up "
                              f"(limit {args.max_rss_growth})")
            spread = summary["fds"]["max"] - summary["fds"]["min"]
            if spread > args.max_fd_spread:
                failed.append(f"open descriptors moved by {spread} after the warm-up")
            if len({s[4] for s in after}) > 1:
                failed.append("thread count changed after the warm-up")
    else:
        failed.append("no sample taken")
    summary["failed"] = failed
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
