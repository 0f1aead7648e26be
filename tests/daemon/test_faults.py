#!/usr/bin/python3
"""Issue 14's faults injected into `mms run` and mmsd, end to end: real
ffmpeg encodes, real daemons and sockets on 127.0.0.1.

Damaged video: H.264 with bits flipped by `ffmpeg -bsf:v noise`, a
fragmented MP4 and a Matroska file cut in half, and both at once: `mms run`
exits 3 (as documented for damaged input) with its outputs whole, mmsd
counts the decode errors (API, /metrics, log) and its recording of what
could be decoded plays. A picture size change mid-stream (MPEG-TS of two
sizes, from a file and sent over UDP one after the other): every frame
goes on at the first size, the pixels are the new picture scaled, masks
are still computed and drawn, the recording plays. SIGKILL while mmsd and
`mms run` record: the segment plays to within 2 s of the kill, never past
it. A model on SIGHUP that cannot load (a new path to a truncated file,
or the running file corrupted in place with another key changed): the
pipeline keeps running with the model it has, the log says why, and a
later good reload restarts it with the new model; a corrupted model file
whose section did not change is not read again. A source that never
connects. A record_dir that exists but cannot be written at start (mmsd
runs as nobody when root): the pipeline runs, the recording fails with
the reason in /healthz, the API and /metrics, and records by itself once
the directory is writable. A corrupt model header at start. A SIGTERM
during the warm-up inference.

Every fault trial is counted; the end prints "fault: ..." lines, one per
fault, for docs/reliability.md.

Env: MMS_BUILD_DIR (mmsd, mms), MMS_SOURCE_DIR.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mmsd_harness import (MMS, MMSD, MODEL, Api, Daemon, Feeder, check,  # noqa: E402
                          finish, free_port, metric, wait_for)

W, H = 320, 240          # every source starts at this size
BIG_W, BIG_H = 640, 360  # and some change to this one
FPS = 25
NOBODY = 65534

trials = {}  # fault -> [trials, failed checks]


def fault(name, ok_):
    """One trial of a fault: counted, and failed when its checks failed."""
    t = trials.setdefault(name, [0, 0])
    t[0] += 1
    t[1] += 0 if ok_ else 1


def ff(*args):
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y"] + list(args), check=True)


def cut(src, dst, fraction):
    with open(src, "rb") as f:
        data = f.read()
    with open(dst, "wb") as f:
        f.write(data[:int(len(data) * fraction)])
    return dst


def frames_of(path):
    """(pts_time, width, height) of every frame ffprobe decodes."""
    r = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                        "frame=pts_time,width,height", "-of", "csv=p=0", path],
                       capture_output=True, text=True)
    out = []
    for line in r.stdout.split():
        parts = line.strip(",").split(",")
        try:
            out.append((float(parts[0]), int(parts[1]), int(parts[2])))
        except (ValueError, IndexError):
            pass
    return out


def gray(path, w=W, h=H, vf=None):
    """Every frame's luma as an array (frames, h, w)."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", path]
    if vf:
        cmd += ["-vf", vf]
    raw = subprocess.run(cmd + ["-f", "rawvideo", "-pix_fmt", "gray", "-"],
                         capture_output=True).stdout
    n = len(raw) // (w * h)
    return np.frombuffer(raw[:n * w * h], np.uint8).reshape(n, h, w).astype(int)


def segments(d):
    return sorted(os.path.join(d, f) for f in os.listdir(d)) if os.path.isdir(d) else []


SYNTH = {}  # (w, h) -> a 10 s clip of `mms synth`


def synth_clip(w, h):
    if (w, h) not in SYNTH:
        path = os.path.join(tempfile.mkdtemp(prefix="mms-faults-synth-"), "%dx%d.mp4" % (w, h))
        subprocess.run([MMS, "synth", "-o", path, "--frames", "250", "--size", "%dx%d" % (w, h)],
                       check=True, capture_output=True)
        SYNTH[(w, h)] = path
    return SYNTH[(w, h)]


def make_clips(tmp):
    """The inputs: 4 s (100 frames) of H.264 at 320x240, and their damage."""
    c = {}
    src = ["-f", "lavfi", "-i", "testsrc2=size=%dx%d:rate=%d" % (W, H, FPS)]
    enc = ["-c:v", "libx264", "-preset", "ultrafast", "-g", str(FPS), "-pix_fmt", "yuv420p"]
    frag = ["-movflags", "frag_keyframe+empty_moov+default_base_moof"]
    clean = os.path.join(tmp, "clean.mp4")
    ff(*src, "-frames:v", "100", *enc, *frag, clean)
    # Bits flipped in the H.264 packets, about one byte in 2000 (noise's
    # generator is seeded the same every run: the same damage each time).
    c["noisy"] = os.path.join(tmp, "noisy.mp4")
    ff("-i", clean, "-c", "copy", "-bsf:v", "noise=amount=2000", c["noisy"])
    c["cut"] = cut(clean, os.path.join(tmp, "cut.mp4"), 0.5)
    noisy_frag = os.path.join(tmp, "noisy-frag.mp4")
    ff("-i", clean, "-c", "copy", "-bsf:v", "noise=amount=2000", *frag, noisy_frag)
    c["noisycut"] = cut(noisy_frag, os.path.join(tmp, "noisycut.mp4"), 0.6)
    mkv = os.path.join(tmp, "clean.mkv")
    ff("-i", clean, "-c", "copy", mkv)
    c["cutmkv"] = cut(mkv, os.path.join(tmp, "cut.mkv"), 0.5)
    # 2 s at 320x240, then 2 s at 640x360, timestamps running on: one
    # MPEG-TS file whose picture size changes at frame 50. The pictures are
    # `mms synth`'s, whose tools every model finds (a test pattern holds
    # none, and a model that paints none on it is right).
    a, b = os.path.join(tmp, "a.ts"), os.path.join(tmp, "b.ts")
    ff("-i", synth_clip(W, H), "-frames:v", "50", *enc, "-f", "mpegts", a)
    ff("-i", synth_clip(BIG_W, BIG_H), "-frames:v", "50", *enc, "-output_ts_offset", "2",
       "-f", "mpegts", b)
    c["resize"] = os.path.join(tmp, "resize.ts")
    with open(c["resize"], "wb") as f:
        for p in (a, b):
            with open(p, "rb") as g:
                f.write(g.read())
    return c


DAMAGED = {  # name: (what, least frames that must still play)
    "noisy": ("bit-flipped H.264 (noise=amount=2000)", 90),
    "cut": ("fragmented MP4 cut in half", 25),
    "noisycut": ("bit-flipped fragmented MP4 cut at 60 %", 25),
    "cutmkv": ("Matroska cut in half", 25),
}


# ------------------------------------------------------------ mms run

def run_cli_damaged(tmp, clips):
    for name, (what, least) in DAMAGED.items():
        out = os.path.join(tmp, "cli-%s.mkv" % name)
        r = subprocess.run([MMS, "run", "-i", clips[name], "-o", out, "--size", "160x288",
                            "--threads", "1"], capture_output=True, text=True)
        n = len(frames_of(out))
        ok_ = check(r.returncode == 3 and "the input had decode errors" in r.stderr,
                    "mms run, %s: exit 3, says the input had decode errors (exit %d: %s)"
                    % (what, r.returncode, r.stderr.strip().splitlines()[-1:]))
        ok_ &= check(least <= n <= 100, "mms run, %s: the output plays %d frames (>= %d)"
                     % (what, n, least))
        ok_ &= check("Sanitizer" not in r.stderr and "runtime error:" not in r.stderr,
                     "mms run, %s: no sanitizer report" % what)
        fault("truncated" if "cut" in name and "noisy" not in name else "bit-flipped", ok_)


def run_cli_resize(tmp, clips):
    """Frames keep their first size, and a mask drawn on the new picture
    covers what the per-frame metadata says the network found."""
    out, meta = os.path.join(tmp, "cli-resize.mkv"), os.path.join(tmp, "cli-resize.jsonl")
    r = subprocess.run([MMS, "run", "-i", clips["resize"], "-o", out, "--style", "mask",
                        "--meta", meta, "--size", "160x288", "--threads", "1"],
                       capture_output=True, text=True)
    fr = frames_of(out)
    ok_ = check(r.returncode == 0 and len(fr) == 100 and {(w, h) for _, w, h in fr} == {(W, H)},
                "mms run, size change at frame 50: exit 0, 100 frames, all %dx%d (exit %d, "
                "%d frames, sizes %s)" % (W, H, r.returncode, len(fr),
                                          sorted({(w, h) for _, w, h in fr})))
    with open(meta) as f:
        lines = [json.loads(line) for line in f]
    masks = gray(out)
    after = [(lines[i]["tool_fraction"], float((masks[i] > 127).mean()))
             for i in range(55, min(len(lines), len(masks)))]
    ok_ &= check(len(after) == 45 and all(0.01 < t < 0.99 and abs(t - m) < 0.02 for t, m in after),
                 "mms run, size change: every frame after it has its mask drawn, as much as "
                 "the network found (tool fraction vs drawn, frames 55..99: %s)"
                 % ["%.3f/%.3f" % tm for tm in after[:3]])
    fault("resolution change", ok_)


def wait_file(d, old, timeout):
    """The first file in d not in old, noticed within 20 ms of its making."""
    end = time.time() + timeout
    while time.time() < end:
        new = [f for f in segments(d) if f not in old]
        if new:
            return new[0], time.time()
        time.sleep(0.02)
    return None, None


def killed_segment(what, path, t0, t1):
    """The playable duration of a segment made at t0 and killed at t1:
    within 2 s of t1 - t0, and not longer (t0 may be seen late by a poll
    on a busy machine: 0.5 s of slack)."""
    fr = frames_of(path) if path else []
    want = t1 - t0
    span = fr[-1][0] - fr[0][0] + 1.0 / FPS if fr else 0
    count = len(fr) / FPS
    ok_ = check(fr and want - 2 <= span <= want + 0.5 and want - 2 <= count <= want + 0.5,
                "%s: SIGKILL %.2f s into a segment: it plays %.2f s (%d frames, %.2f s at "
                "%d fps): %.2f s lost, at most 2" % (what, want, span, len(fr), count, FPS,
                                                     want - min(span, count)))
    fault("SIGKILL while recording", ok_)


def run_cli_sigkill(tmp):
    rec = os.path.join(tmp, "cli-rec")
    p = subprocess.Popen([MMS, "run", "-i", "lavfi:testsrc2=size=%dx%d:rate=%d" % (W, H, FPS),
                          "--live", "-o", "null", "--record-dir", rec, "--size", "160x288",
                          "--threads", "1"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        path, t0 = wait_file(rec, [], 60)
        if path:
            time.sleep(3.3)
        p.send_signal(signal.SIGKILL)
        t1 = time.time()
    finally:
        p.kill()
        p.wait()
    killed_segment("mms run --record-dir", path, t0 or t1, t1)


def as_nobody():
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


class Unwritable:
    """A directory in /tmp with a read-only record_dir in it, and what a
    process needs to run there as nobody when the test is root (root writes
    anywhere): the binaries, the libmms.so.0 they load and the model copied
    in, since nobody may not reach the build tree (a clone in /root, 0700).
    Otherwise the process runs as we do."""

    def __init__(self, prefix):
        self.root = os.geteuid() == 0
        self.base = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.base, 0o755)
        self.ro = os.path.join(self.base, "rec")
        os.mkdir(self.ro)
        os.chmod(self.ro, 0o555)
        self.preexec = as_nobody if self.root else None
        self.mms, self.mmsd, self.model = MMS, MMSD, MODEL
        self.env = dict(os.environ)
        if self.root:
            self.mms, self.mmsd, self.model = (shutil.copy(p, self.base)
                                               for p in (MMS, MMSD, MODEL))
            # Their RUNPATH names the build tree: the library goes beside
            # them, found first through LD_LIBRARY_PATH.
            shutil.copy(os.path.join(os.path.dirname(MMS), "libmms.so.0"), self.base)
            self.env["LD_LIBRARY_PATH"] = self.base
            # A sanitizer that cannot read its suppressions stops the process.
            for k in ("ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS"):
                if k not in self.env:
                    continue
                opts = self.env[k].split(":")
                for i, o in enumerate(opts):
                    if o.startswith("suppressions=") and os.path.isfile(o[13:]):
                        copy = os.path.join(self.base, k.lower() + ".supp")
                        shutil.copy(o[13:], copy)
                        opts[i] = "suppressions=" + copy
                self.env[k] = ":".join(opts)

    def writable_file(self, name):
        path = os.path.join(self.base, name)
        open(path, "w").close()
        if self.root:
            os.chown(path, NOBODY, NOBODY)
        return path

    def fix(self):
        """What an administrator does: the directory given to the user."""
        if self.root:
            os.chown(self.ro, NOBODY, NOBODY)
        os.chmod(self.ro, 0o755)

    def remove(self):
        shutil.rmtree(self.base, ignore_errors=True)


def run_cli_unwritable(tmp):
    u = Unwritable("mms-faults-cli-ro-")
    out = u.writable_file("out.mkv")
    r = subprocess.run([u.mms, "run", "-i", "lavfi:testsrc2=size=%dx%d:rate=%d:duration=1"
                        % (W, H, FPS), "-o", out, "--record-dir", u.ro, "--size", "160x288",
                        "--threads", "1", "--model", u.model], capture_output=True, text=True,
                       preexec_fn=u.preexec, env=u.env)
    n = len(frames_of(out))
    ok_ = check(r.returncode == 1 and "the recording failed" in r.stderr and u.ro in r.stderr
                and "not writable" in r.stderr and n == 25,
                "mms run, read-only --record-dir: exit 1, says why, the output is whole "
                "(exit %d, %d frames: %s)" % (r.returncode, n, r.stderr.strip().splitlines()[-1:]))
    ok_ &= check(os.listdir(u.ro) == [], "mms run, read-only --record-dir: nothing written there")
    fault("unwritable record_dir at start", ok_)
    u.remove()


# ------------------------------------------------------------ mmsd: files and reloads

def files_conf(port, tmp, clips, cam_model, cam_extra=""):
    conf = "[mmsd]\nlisten = 127.0.0.1:%d\nlog_level = info\nmodel = %s\n\n" % (port, MODEL)
    for name in list(DAMAGED) + ["resize"]:
        conf += ("[pipeline %s]\ninput = %s\nsize = 160x288\nthreads = 1\noutput = null\n"
                 "record_dir = %s/rec/%s\n" % (name, clips[name], tmp, name))
        if name == "resize":
            conf += "style = off\nmeta = %s/resize.jsonl\n" % tmp
        conf += "\n"
    return conf + ("[pipeline cam]\ninput = lavfi:testsrc2=size=%dx%d:rate=%d\nmode = live\n"
                   "size = 160x288\nthreads = 1\noutput = null\nrecord_dir = %s/rec/cam\n"
                   "model = %s\n%s" % (W, H, FPS, tmp, cam_model, cam_extra))


def run_files_and_reloads(tmp, clips):
    port = free_port()
    good1, good2 = os.path.join(tmp, "good1.safetensors"), os.path.join(tmp, "good2.safetensors")
    shutil.copy(MODEL, good1)
    shutil.copy(MODEL, good2)
    bad = cut(MODEL, os.path.join(tmp, "bad.safetensors"), 0.5)
    d = Daemon(tmp, files_conf(port, tmp, clips, good1), name="files")
    api = Api(port)

    def pipe(name):
        return api.json("GET", "/api/v1/pipelines/" + name)[1] or {}

    try:
        names = list(DAMAGED) + ["resize"]
        done = wait_for(lambda: all(pipe(n).get("state") == "finished" for n in names), 120)
        check(done, "mmsd: every file pipeline ran to its end: %s"
              % {n: pipe(n).get("state") for n in names})
        m = api.req("GET", "/metrics")[2].decode()
        log = d.text()
        for name, (what, least) in DAMAGED.items():
            st = pipe(name).get("stats", {})
            segs = segments(os.path.join(tmp, "rec", name))
            fr = frames_of(segs[0]) if len(segs) == 1 else []
            ok_ = check(st.get("decode_errors", 0) >= 1
                        and (metric(m, "mmsd_decode_errors_total", pipeline=name) or 0) >= 1,
                        "mmsd, %s: decode errors counted (API %s, /metrics %s)"
                        % (what, st.get("decode_errors"),
                           metric(m, "mmsd_decode_errors_total", pipeline=name)))
            ok_ &= check("pipeline %s: finished: %d frames written; the input had damaged "
                         "frames" % (name, st.get("written", -1)) in log,
                         "mmsd, %s: the log says the input was damaged" % what)
            ok_ &= check(least <= len(fr) == st.get("written"),
                         "mmsd, %s: the recording plays every frame written, %d of %s (>= %d)"
                         % (what, len(fr), st.get("written"), least))
            fault("truncated" if "cut" in name and "noisy" not in name else "bit-flipped", ok_)
        check_files_resize(tmp, clips, pipe("resize"), m, log)
        check_reloads(tmp, d, api, pipe, clips, port, good1, good2, bad)
    finally:
        if d.p.poll() is None:
            d.signal(signal.SIGTERM)
            check(d.wait(60) == 0, "mmsd (files): SIGTERM exit 0")
    no_sanitizer(d)


def check_files_resize(tmp, clips, p, m, log):
    st = p.get("stats", {})
    segs = segments(os.path.join(tmp, "rec", "resize"))
    fr = frames_of(segs[0]) if len(segs) == 1 else []
    ok_ = check(st.get("written") == 100 and st.get("decode_errors") == 0
                and "resize: finished: 100 frames written\n" in log,
                "mmsd, size change at frame 50: 100 frames written, no decode error "
                "(%s)" % st)
    ok_ &= check(len(fr) == 100 and {(w, h) for _, w, h in fr} == {(W, H)},
                 "mmsd, size change: the recording plays 100 frames, all %dx%d (%d, %s)"
                 % (W, H, len(fr), sorted({(w, h) for _, w, h in fr})))
    # The pixels after the change are the new picture scaled to the first
    # size (style off: the recording is the source as decoded).
    got = gray(segs[0]) if segs else np.zeros((0, H, W), int)
    want = gray(clips["resize"], vf="scale=%d:%d:flags=bilinear" % (W, H))
    diffs = [float(np.abs(got[i] - want[i]).mean()) for i in range(min(len(got), len(want)))]
    ok_ &= check(len(diffs) == 100 and max(diffs) < 6,
                 "mmsd, size change: each frame is its source picture, scaled after the "
                 "change (mean |diff| at most %.2f; frame 49 %.2f, 50 %.2f)"
                 % (max(diffs, default=-1), diffs[49] if len(diffs) > 50 else -1,
                    diffs[50] if len(diffs) > 50 else -1))
    with open(os.path.join(tmp, "resize.jsonl")) as f:
        meta = [json.loads(line) for line in f]
    ok_ &= check(len(meta) == 100 and all(x["mask_pts"] == x["pts"] and x["tool_fraction"] > 0.01
                                          for x in meta[50:]),
                 "mmsd, size change: a mask computed on every new-size frame "
                 "(tool fraction %s)" % [x["tool_fraction"] for x in meta[50:53]])
    fault("resolution change", ok_)


def check_reloads(tmp, d, api, pipe, clips, port, good1, good2, bad):
    """cam runs with good1. Each reload: the state of cam, the log and
    whether inference goes on with the model it has."""
    running = wait_for(lambda: pipe("cam").get("state") == "running"
                       and pipe("cam").get("recording", {}).get("file"), 60)
    check(running, "mmsd: cam runs and records with good1")
    rec0 = pipe("cam").get("recording", {}).get("file")

    def reload(text, mark):
        n = d.text().count("reloaded ")
        d.write(text)
        d.signal(signal.SIGHUP)
        wait_for(lambda: d.text().count("reloaded ") > n, 10, step=0.05)
        return d.text()[len(mark):]

    def still_running(what):
        p1 = pipe("cam")
        time.sleep(1)
        p2 = pipe("cam")
        i1, i2 = (p.get("stats", {}).get("inferred", 0) for p in (p1, p2))
        return check(p2.get("state") == "running" and p2.get("model") == good1
                     and p2.get("recording", {}).get("file") == rec0 and i2 > i1 + 10
                     and p2.get("stats", {}).get("inference_errors") == 0,
                     "%s: cam not restarted, still infers with good1 (%s, model %s, "
                     "inferred %d -> %d, same segment %s)"
                     % (what, p2.get("state"), p2.get("model"), i1, i2,
                        p2.get("recording", {}).get("file") == rec0))

    def healthy_cam():
        st, h = api.json("GET", "/healthz")
        return not [r for r in (h or {}).get("reasons", []) if r.startswith("cam:")]

    # 1. A new model path, to a truncated file.
    log = reload(files_conf(port, tmp, clips, bad), d.text())
    ok_ = check("reload: pipeline cam: cannot load its model: %s:" % bad in log
                and "truncated" in log and "it keeps running as it was" in log
                and "0 changed, 1 refused" in log,
                "SIGHUP to a truncated model: refused, the log says why: %s"
                % [x for x in log.splitlines() if "reload" in x])
    ok_ &= still_running("SIGHUP to a truncated model")
    ok_ &= check(healthy_cam(), "SIGHUP to a truncated model: /healthz has nothing against cam")
    fault("corrupt model on SIGHUP", ok_)

    # 2. The running model's own file corrupted in place, its section as it
    # runs: nothing to reload (the file is not read again).
    cut(MODEL, good1 + ".tmp", 0.5)
    os.replace(good1 + ".tmp", good1)
    log = reload(files_conf(port, tmp, clips, good1), d.text())
    ok_ = check("0 changed, 0 refused" in log and "cam: changed" not in log,
                "SIGHUP, the running model's file truncated in place, its section unchanged: "
                "nothing restarted: %s" % [x for x in log.splitlines() if "reload" in x])
    ok_ &= still_running("the model file truncated in place")
    fault("model file corrupted in place, SIGHUP", ok_)

    # 3. Same path, now truncated, and a key changed that takes a restart
    # (segment_seconds): refused too, and nothing of the section applies.
    log = reload(files_conf(port, tmp, clips, good1, "segment_seconds = 7\nstyle = outline\n"),
                 d.text())
    ok_ = check("reload: pipeline cam: cannot load its model: %s:" % good1 in log
                and "0 changed, 1 refused" in log,
                "SIGHUP changing cam's segment_seconds, its model file truncated in place: "
                "refused: %s" % [x for x in log.splitlines() if "reload" in x])
    ok_ &= still_running("a change with the model file truncated in place")
    ok_ &= check(pipe("cam").get("settings", {}).get("style") == "fill",
                 "the refused section's style did not apply")
    fault("corrupt model on SIGHUP", ok_)
    # A change of runtime settings alone reads no model: it applies.
    log = reload(files_conf(port, tmp, clips, good1, "style = outline\n"), d.text())
    check("cam: settings changed by reload; applied without a restart" in log
          and "1 changed, 0 refused" in log
          and wait_for(lambda: pipe("cam").get("settings", {}).get("style") == "outline", 10),
          "SIGHUP changing cam's style alone, its model file truncated in place: applied "
          "without reading it: %s" % [x for x in log.splitlines() if "reload" in x])
    still_running("a style change with the model file truncated in place")

    # 4. A good model at last: cam restarts with it.
    log = reload(files_conf(port, tmp, clips, good2), d.text())
    back = wait_for(lambda: pipe("cam").get("state") == "running"
                    and pipe("cam").get("model") == good2
                    and pipe("cam").get("recording", {}).get("file") not in (None, "", rec0), 60)
    p1 = pipe("cam")
    time.sleep(1)
    p2 = pipe("cam")
    check("cam: changed by reload" in log and "1 changed, 0 refused" in log and back
          and p2.get("stats", {}).get("inferred", 0) > p1.get("stats", {}).get("inferred", 0)
          + 10, "a later good reload restarts cam with good2, which infers and records "
          "(%s, %s)" % (p2.get("state"), p2.get("model")))
    check(all(pipe(n).get("state") == "finished" for n in list(DAMAGED) + ["resize"]),
          "the reloads left the finished file pipelines alone")


# ------------------------------------------------------------ mmsd: live

class Sender:
    """ffmpeg sending H.264 in MPEG-TS over UDP in real time."""

    def __init__(self, port, w, h, seconds=None):
        t = ["-t", str(seconds)] if seconds else []
        # mms synth's pictures, looped: tools for the masks to follow.
        self.p = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-v", "error", "-re", "-stream_loop", "-1", "-i",
             synth_clip(w, h)] + t
            + ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g",
               str(FPS), "-pix_fmt", "yuv420p", "-f", "mpegts",
               "udp://127.0.0.1:%d?pkt_size=1316" % port],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        self.p.kill()
        self.p.wait()


def run_live(tmp):
    port, uport, rport = free_port(), free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    closed = free_port()
    rec = os.path.join(tmp, "live")
    common = "mode = live\nsize = 160x288\nthreads = 1\noutput = null\n"
    conf = ("[mmsd]\nlisten = 127.0.0.1:%d\nmodel = %s\n\n"
            "[pipeline cam]\ninput = udp://127.0.0.1:%d\n%srecord_dir = %s/cam\n\n"
            "[pipeline resize]\ninput = udp://127.0.0.1:%d\n%srecord_dir = %s/resize\n"
            "style = mask\nmeta = %s/resize-live.jsonl\n\n"
            "[pipeline never]\ninput = tcp://127.0.0.1:%d\n%s"
            % (port, MODEL, uport, common, rec, rport, common, rec, tmp, closed, common))
    feeder, small, big = Feeder(uport), Sender(rport, W, H), None
    feeder.start()
    d = Daemon(tmp, conf, name="live")
    api = Api(port)

    def pipe(name):
        return api.json("GET", "/api/v1/pipelines/" + name)[1] or {}

    try:
        up = wait_for(lambda: all(pipe(n).get("state") == "running" for n in ("cam", "resize"))
                      and pipe("resize").get("stats", {}).get("written", 0) > 25, 90)
        check(up, "mmsd (live): cam and resize run")

        # A source that never connects: retried, said, alone.
        st, h = api.json("GET", "/healthz")
        reasons = (h or {}).get("reasons", [])
        ok_ = check(pipe("never").get("state") == "connecting"
                    and any(r.startswith("never: cannot start: ") and "refused" in r
                            for r in reasons)
                    and not any(r.startswith(("cam:", "resize:")) for r in reasons),
                    "a source that never connects: connecting, /healthz says why, the others "
                    "are healthy: %s" % reasons)
        ok_ &= check(d.text().count("pipeline never: cannot start") == 1,
                     "a source that never connects: logged once, not at every retry")
        fault("source never connects", ok_)

        # The resize source changes its picture size: its camera restarts
        # at 640x360 (a new stream, timestamps from the start again).
        small.stop()
        d0 = pipe("resize").get("stats", {})
        big = Sender(rport, BIG_W, BIG_H, seconds=3)
        big.p.wait(30)
        time.sleep(0.5)
        p = pipe("resize")
        d1 = p.get("stats", {})
        st, r = api.json("POST", "/api/v1/pipelines/resize/recording", {"action": "stop"})
        ok_ = check(p.get("state") == "running" and d1.get("decoded", 0) - d0.get("decoded", 0)
                    >= 60 and d1.get("reconnects") == 0,
                    "live size change: frames keep coming (+%d decoded of 75 sent), no "
                    "reconnect (%s), %d decode errors"
                    % (d1.get("decoded", 0) - d0.get("decoded", 0), d1.get("reconnects"),
                       d1.get("decode_errors", -1)))
        segs = segments(os.path.join(rec, "resize"))
        fr = frames_of(segs[0]) if len(segs) == 1 else []
        ok_ &= check(st == 200 and len(fr) >= d1.get("written", 0) - 5
                     and {(w, h) for _, w, h in fr} == {(W, H)},
                     "live size change: the recording plays %d frames (%s written), all "
                     "%dx%d: %s" % (len(fr), d1.get("written"), W, H,
                                     sorted({(w, h) for _, w, h in fr})))
        # The last 60 frames are all at the new size. A network that stopped
        # at the change would leave its last mask drawn on each of them: one
        # fraction, where the moving synthetic tools give many.
        masks = gray(segs[0])[-60:] if segs else []
        drawn = [float((f > 127).mean()) for f in masks]
        ok_ &= check(len(drawn) == 60 and 0.02 < np.mean(drawn) < 0.98
                     and len({round(x, 4) for x in drawn}) >= 10,
                     "live size change: masks drawn on the new pictures, following them "
                     "(drawn fraction mean %.3f, %d different of 60)"
                     % (np.mean(drawn) if drawn else -1, len({round(x, 4) for x in drawn})))
        fault("resolution change", ok_)

        # SIGKILL 4.75 s into a segment started through the API. Fragments
        # are a second long, so 0.75 s plus the pipeline's latency, or a
        # second more, is lost: 0.75 leaves 1.75 s of latency to a busy
        # machine or a sanitizer build before 2 s are lost.
        # Caught up first: a pipeline that fell behind the sender (a busy
        # machine, an ASan build) would then decode faster than real time
        # and record more seconds than the wall clock saw.
        def steady():
            n0 = pipe("cam").get("stats", {}).get("decoded", 0)
            time.sleep(1)
            return 20 <= pipe("cam").get("stats", {}).get("decoded", 0) - n0 <= 30
        check(wait_for(steady, 20, step=0), "mmsd: cam decodes in real time before the kill")
        # A start taken in with the stop (before the next frame) would not
        # close the segment: the stop is seen done first.
        api.json("POST", "/api/v1/pipelines/cam/recording", {"action": "stop"})
        wait_for(lambda: pipe("cam").get("recording", {}).get("file") == "", 10, step=0.05)
        old = segments(os.path.join(rec, "cam"))
        api.json("POST", "/api/v1/pipelines/cam/recording", {"action": "start"})
        path, t0 = wait_file(os.path.join(rec, "cam"), old, 10)
        if path:
            time.sleep(4.75)
        d.signal(signal.SIGKILL)
        t1 = time.time()
        d.wait()
        killed_segment("mmsd", path, t0 or t1, t1)
        check(all(len(frames_of(s)) > 0 for s in old),
              "mmsd: the segments closed before the kill play")
    finally:
        feeder.stop()
        for s in (small, big):
            if s:
                s.stop()
        if d.p.poll() is None:
            d.p.kill()
            d.p.wait()
    no_sanitizer(d)


# ------------------------------------------------------------ mmsd: unwritable record_dir

def run_unwritable(tmp):
    """mmsd starts with a record_dir that exists but that it cannot write."""
    u = Unwritable("mms-faults-mmsd-ro-")
    port = free_port()
    d = Daemon(u.base, "[mmsd]\nlisten = 127.0.0.1:%d\nmodel = %s\n\n[pipeline ro]\n"
               "input = lavfi:testsrc2=size=%dx%d:rate=%d\nmode = live\nsize = 160x288\n"
               "threads = 1\noutput = null\nrecord_dir = %s\n"
               % (port, u.model, W, H, FPS, u.ro), name="nobody", preexec=u.preexec,
               binary=u.mmsd, env=u.env)
    api = Api(port)
    ro = u.ro

    def pipe():
        return api.json("GET", "/api/v1/pipelines/ro")[1] or {}

    try:
        up = wait_for(lambda: pipe().get("state") == "running"
                      and pipe().get("recording", {}).get("error"), 90)
        r = pipe().get("recording", {})
        ok_ = check(up and not r.get("recording") and r.get("retrying")
                    and ro in r.get("error", "") and "not writable" in r.get("error", ""),
                    "unwritable record_dir at start: the API's recording says why and that it "
                    "retries: %s" % r)
        w1 = pipe().get("stats", {}).get("written", 0)
        time.sleep(1.5)
        w2 = pipe().get("stats", {}).get("written", 0)
        ok_ &= check(w2 > w1 + 20, "unwritable record_dir: frames keep flowing: %d -> %d"
                     % (w1, w2))
        st, h = api.json("GET", "/healthz")
        reasons = (h or {}).get("reasons", [])
        ok_ &= check(st == 503 and any(x.startswith("ro: recording failed: ") and ro in x
                                       and "retrying" in x for x in reasons),
                     "unwritable record_dir: /healthz 503 says the recording failed: %s"
                     % reasons)
        m = api.req("GET", "/metrics")[2].decode()
        ok_ &= check(metric(m, "mmsd_recording_failed", pipeline="ro") == 1
                     and metric(m, "mmsd_recording_retrying", pipeline="ro") == 1,
                     "unwritable record_dir: mmsd_recording_failed 1, retrying 1")
        ok_ &= check("pipeline ro: recording failed" in d.text() and os.listdir(ro) == [],
                     "unwritable record_dir: logged, nothing written there")
        u.fix()
        seg = wait_for(lambda: pipe().get("recording", {}).get("file"), 40)
        healthy = wait_for(lambda: api.req("GET", "/healthz")[0] == 200, 10)
        ok_ &= check(seg and os.path.dirname(seg) == ro and healthy,
                     "the directory made writable, the retry records into it by itself: %s"
                     % seg)
        time.sleep(1)
        d.signal(signal.SIGTERM)
        ok_ &= check(d.wait(60) == 0, "unwritable record_dir: SIGTERM exit 0")
        n = len(frames_of(seg)) if seg else -1
        ok_ &= check(n > 10, "the resumed recording plays: %d frames" % n)
        fault("unwritable record_dir at start", ok_)
    finally:
        if d.p.poll() is None:
            d.p.kill()
            d.p.wait()
    no_sanitizer(d)
    u.remove()


def run_corrupt_model_at_start(tmp):
    """Bytes of the JSON header flipped: refused before READY, exit 1."""
    with open(MODEL, "rb") as f:
        data = bytearray(f.read())
    for i in range(20, 4000, 97):
        data[i] ^= 0x5a
    bad = os.path.join(tmp, "flipped.safetensors")
    with open(bad, "wb") as f:
        f.write(data)
    d = Daemon(tmp, "[mmsd]\nlisten = 127.0.0.1:%d\nmodel = %s\n" % (free_port(), bad),
               name="flipped")
    rc = d.wait(60)
    said = [x for x in d.text().splitlines() if "cannot start: model: %s:" % bad in x]
    ok_ = check(rc == 1 and said, "a model with a bit-flipped header at start: exit 1, says "
                "why (exit %s: %s)" % (rc, said or d.text().strip()[-200:]))
    fault("corrupt model at start", ok_)


def slow_model(tmp):
    """The shipped model whose card asks for a 2048x2048 input: its fp32
    warm-up (compile and one run) takes about a second here, long enough
    to be stopped in."""
    with open(MODEL, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        head = json.loads(f.read(n))
        data = f.read()
    head["__metadata__"]["mms.input"] = "2048x2048"
    text = json.dumps(head, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path = os.path.join(tmp, "slow.safetensors")
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + data)
    return path


def run_stop_during_warm_up(tmp):
    """SIGTERM while the warm-up inference runs on its worker thread,
    which reads the pipelines: mmsd must not free them under it, and must
    still end the stop once the warm-up is done (exit 0, "stopped")."""
    conf = "[mmsd]\nlisten = 127.0.0.1:%d\nmodel = %s\n" % (free_port(), slow_model(tmp))
    for n in ("a", "b"):
        conf += ("\n[pipeline %s]\ninput = lavfi:testsrc2=size=160x120:rate=25\n"
                 "output = null\nprecision = fp32\n" % n)
    d = Daemon(tmp, conf, name="warm-stop")
    check(wait_for(lambda: "STATUS=warm-up" in d.text() or "mmsd starting" in d.text(), 30,
                   step=0.01), "warm-up: mmsd starts")
    time.sleep(0.05)
    warming = "ready:" not in d.text()
    d.signal(signal.SIGTERM)
    rc = d.wait(30)  # killed at 30 s: -9
    text = d.text()
    ok_ = check(warming and rc == 0 and "<5>stopped" in text and "cannot start" not in text,
                "SIGTERM during the warm-up: exit 0 once it ends, stopped (warming %s, exit %s: "
                "%s)" % (warming, rc, text.strip()[-300:]))
    no_sanitizer(d)
    fault("stop during the warm-up", ok_)


def no_sanitizer(d):
    text = d.text()
    check("Sanitizer" not in text and "runtime error:" not in text,
          "%s: no sanitizer report" % os.path.basename(d.log))


def main():
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="mms-faults-")
    clips = make_clips(tmp)
    run_cli_damaged(tmp, clips)
    run_cli_resize(tmp, clips)
    run_cli_sigkill(tmp)
    run_cli_unwritable(tmp)
    run_corrupt_model_at_start(tmp)
    run_stop_during_warm_up(tmp)
    run_files_and_reloads(tmp, clips)
    run_live(tmp)
    run_unwritable(tmp)
    for name, (n, failed) in trials.items():
        print("fault: %s: %d trials, %s" % (name, n, "all as expected" if not failed
                                             else "%d failed" % failed))
    print("faults: %.0f s" % (time.time() - t0))
    return finish("faults")


if __name__ == "__main__":
    sys.exit(main())
