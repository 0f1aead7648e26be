#!/usr/bin/python3
"""mmsseg, the GStreamer element, in gst-launch-1.0 pipelines.

- gst-inspect-1.0 lists it with its properties, from the build tree and
  as cmake --install puts it (with the installed libmms.so.0);
- filesrc ! decodebin ! videoconvert ! I420 ! mmsseg style=mask ! filesink:
  every frame's tool fraction and box equal to `mms run --style mask --meta`
  on the same file (both decode it with libavcodec, so the same frames);
- every=5: frames 5k..5k+4 carry frame 5k's mask, as mms run --every 5 says;
- style=fill: the output differs from the input only where the mask is, and
  does differ there;
- refused: a missing and a truncated model file (gst-launch fails with the
  library's message, the one `mms segment` prints), style=bogus, every=0
  (GLib refuses the value: the property keeps 1);
- the meta, read by an application (tests/gst/test_meta.c).

Env: MMS_BUILD_DIR, MMS_SOURCE_DIR, MMS_BIN, CMAKE, MMS_GST_PLUGIN_DIR,
MMS_GST_META_CHECK, MMS_GST_PRELOAD (the ASan runtime for gst-launch when
the plugin is sanitized). The video comes from ../shared/data, required
under CI=true.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

SRC = os.environ["MMS_SOURCE_DIR"]
MMS = os.environ["MMS_BIN"]
BUILD = os.environ["MMS_BUILD_DIR"]
PLUGIN_DIR = os.environ["MMS_GST_PLUGIN_DIR"]
META_CHECK = os.environ["MMS_GST_META_CHECK"]
PRELOAD = os.environ.get("MMS_GST_PRELOAD", "")
MODEL = os.path.join(SRC, "models", "mms-rt.safetensors")
# MMS_GST_VIDEO: another path, e.g. a missing one to try the test without the data.
VIDEO = os.environ.get("MMS_GST_VIDEO") or os.path.join(
    SRC, "..", "shared", "data", "video", "cholec80_video01_10s.mp4")
# Enough frames for a scene with tools coming and going, few enough for the
# network to run them twice within the test's time (and under ASan).
FRAMES = 30
W, H = 1280, 720

failures = 0


def fail(msg):
    global failures
    failures += 1
    print("FAIL: " + msg, file=sys.stderr)


def gst_env(sanitized=True):
    env = dict(os.environ)
    env["GST_PLUGIN_PATH"] = PLUGIN_DIR
    # A registry of the test's own: the user's cache is not touched and a
    # stale entry for the plugin cannot stand in for the one just built.
    env["GST_REGISTRY"] = os.path.join(T, "registry.bin")
    env["MMS_MODEL"] = MODEL
    # Plugins are loaded in the process itself, not in gst-plugin-scanner:
    # a sanitized plugin needs the runtime that process has (preloaded, or
    # the sanitized test program's own).
    env["GST_REGISTRY_FORK"] = "no"
    env.pop("GST_DEBUG", None)
    if PRELOAD:
        # ASan build. gst-launch-1.0 is not sanitized: the runtime goes in
        # first (test_meta.c is, and needs none). Leaks are not checked in
        # these processes: gst-launch-1.0 and GLib keep what they allocated
        # until exit, and in test_meta.c, which does gst_deinit(),
        # LeakSanitizer's tracer crashes (SIGSEGV) on the dynamic TLS of a
        # thread in the dlopen'd plugins, or with use_tls=0 reports GLib's
        # per-thread caches. Memory errors and UBSan still fail the test;
        # the drawing's leaks are checked by lib_draw, the engine's by lib_api.
        if sanitized:
            env["LD_PRELOAD"] = PRELOAD
        env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0"
    return env


def launch(*elements, timeout=300):
    """gst-launch-1.0 with the elements joined by '!'; (rc, stderr)."""
    args = ["gst-launch-1.0", "-q"]
    for i, e in enumerate(elements):
        if i:
            args.append("!")
        args.extend(e.split())
    p = subprocess.run(args, env=gst_env(), capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def source(path):
    return [f"filesrc location={path}", "decodebin", "videoconvert", "video/x-raw,format=I420"]


def read_frames(path):
    size = W * H * 3 // 2
    d = np.fromfile(path, np.uint8)
    if d.size % size:
        fail(f"{path}: {d.size} bytes is not a whole number of {W}x{H} I420 frames")
        return np.zeros((0, size), np.uint8)
    return d.reshape(-1, size)


def luma(frame):
    return frame[: W * H].reshape(H, W)


def measure(tool):
    """(fraction as mms run prints it, box) of a boolean mask."""
    n = int(tool.sum())
    frac = "%.6f" % (n / tool.size)
    if not n:
        return frac, None
    ys, xs = np.nonzero(tool)
    return frac, [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]


def mms_meta(clip, *extra):
    meta = os.path.join(T, "meta.jsonl")
    p = subprocess.run(
        [MMS, "run", "-i", clip, "--offline", "--style", "mask", "--precision", "fp32",
         "--model", MODEL, "--meta", meta, "-o", "null", *extra],
        capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        fail(f"mms run {' '.join(extra)} exited {p.returncode}: {p.stderr[-400:]}")
        return []
    with open(meta) as f:
        return [json.loads(line) for line in f]


def check_inspect():
    p = subprocess.run(["gst-inspect-1.0", "mmsseg"], env=gst_env(), capture_output=True,
                       text=True, timeout=120)
    if p.returncode != 0:
        fail(f"gst-inspect-1.0 mmsseg exited {p.returncode}: {p.stderr[-400:]}")
        return
    for word in ["GstMmsSeg", "libgstmms.so", "model", "precision", "threads", "style",
                 "alpha", "color", "every", "tta", "format: I420"]:
        if word not in p.stdout:
            fail(f"gst-inspect-1.0 mmsseg does not say {word!r}")
    # And an element that is not there is not listed: the check can fail.
    p = subprocess.run(["gst-inspect-1.0", "mmssegx"], env=gst_env(), capture_output=True,
                       text=True, timeout=120)
    if p.returncode == 0:
        fail("gst-inspect-1.0 lists an element that does not exist")


def check_masks(clip):
    """style=mask frames against mms run's meta, frame by frame."""
    out = os.path.join(T, "mask.yuv")
    rc, err = launch(*source(clip), "mmsseg style=mask precision=fp32",
                     f"filesink location={out}")
    if rc != 0:
        fail(f"the style=mask pipeline exited {rc}: {err[-600:]}")
        return None
    frames = read_frames(out)
    ref = mms_meta(clip)
    if len(frames) != FRAMES or len(ref) != FRAMES:
        fail(f"{len(frames)} frames from mmsseg, {len(ref)} meta lines from mms run, "
             f"expected {FRAMES}")
    masks, tool_frames = [], 0
    for i, (fr, m) in enumerate(zip(frames, ref)):
        y = luma(fr)
        # Limited range: the mask is drawn as 235 on 16, nothing else.
        odd = int(((y != 16) & (y != 235)).sum())
        if odd:
            fail(f"frame {i}: {odd} luma pixels neither 16 nor 235")
        tool = y == 235
        masks.append(tool)
        frac, box = measure(tool)
        tool_frames += box is not None
        want = ("%.6f" % m["tool_fraction"], m["bbox"])
        if (frac, box) != want:
            fail(f"frame {i}: mmsseg fraction {frac} box {box}, mms run {want[0]} {want[1]}")
    if tool_frames == 0:
        fail("no tool in any frame: the comparison proves nothing")
    print(f"ok: {len(frames)} masks equal to mms run's ({tool_frames} with tool)")
    return masks


def mask_run(clip, label, prop, *run_args):
    """style=mask frames of mmsseg with prop, and mms run's meta with
    run_args; None after a failure."""
    out = os.path.join(T, label + ".yuv")
    rc, err = launch(*source(clip), f"mmsseg style=mask precision=fp32 {prop}",
                     f"filesink location={out}")
    if rc != 0:
        fail(f"the {prop} pipeline exited {rc}: {err[-600:]}")
        return None
    frames = read_frames(out)
    ref = mms_meta(clip, *run_args)
    if len(frames) != FRAMES or len(ref) != FRAMES:
        fail(f"{prop}: {len(frames)} frames, {len(ref)} meta lines")
    return frames, ref


def check_tta(clip, masks):
    """tta=flip against mms run --tta flip, frame by frame; and flip
    changes some mask, or the comparison would not tell them apart."""
    got = mask_run(clip, "tta", "tta=flip", "--tta", "flip")
    if not got:
        return
    differ = 0
    for i, (fr, m) in enumerate(zip(*got)):
        tool = luma(fr) == 235
        differ += bool((tool != masks[i]).any())
        frac, box = measure(tool)
        want = ("%.6f" % m["tool_fraction"], m["bbox"])
        if (frac, box) != want:
            fail(f"tta=flip frame {i}: mmsseg {frac} {box}, mms run --tta flip {want[0]} {want[1]}")
    if not differ:
        fail("tta=flip made the same masks as one pass: the property does nothing")
    print(f"ok: tta=flip masks equal to mms run --tta flip's ({differ} differ from one pass)")


def check_every(clip, masks):
    got = mask_run(clip, "every", "every=5", "--every", "5")
    if not got:
        return
    frames, ref = got
    changed = 0
    for i, fr in enumerate(frames):
        tool = luma(fr) == 235
        if not np.array_equal(tool, masks[i - i % 5]):
            fail(f"every=5: frame {i} is not frame {i - i % 5}'s mask")
        changed += i % 5 != 0 and not np.array_equal(masks[i], masks[i - i % 5])
        if i < len(ref):
            want = ("%.6f" % ref[i]["tool_fraction"], ref[i]["bbox"])
            if measure(tool) != want:
                fail(f"every=5: frame {i} {measure(tool)}, mms run --every 5 {want}")
    # Were the masks the same on every frame, every=5 could do nothing.
    if not changed:
        fail("every=5: the masks never change between network runs: the check proves nothing")
    print(f"ok: every=5 repeats the masks ({changed} frames differ from every=1)")


def check_fill(clip, masks):
    inp, out = os.path.join(T, "in.yuv"), os.path.join(T, "fill.yuv")
    rc, err = launch(*source(clip), f"filesink location={inp}")
    if rc != 0:
        fail(f"the plain pipeline exited {rc}: {err[-600:]}")
        return
    rc, err = launch(*source(clip), "mmsseg style=fill precision=fp32 color=0xff00ff alpha=0.5",
                     f"filesink location={out}")
    if rc != 0:
        fail(f"the style=fill pipeline exited {rc}: {err[-600:]}")
        return
    a, b = read_frames(inp), read_frames(out)
    if len(a) != len(b) or len(a) != len(masks):
        fail(f"fill: {len(a)} input frames, {len(b)} output, {len(masks)} masks")
        return
    cw, ch = W // 2, H // 2
    for i, (x, y, tool) in enumerate(zip(a, b, masks)):
        dl = luma(x) != luma(y)
        if (dl & ~tool).any():
            fail(f"fill: frame {i}: {int((dl & ~tool).sum())} luma pixels changed off the mask")
        # Magenta at 0.5 moves every tool pixel's luma but for the few
        # already near its own.
        if tool.any() and (dl & tool).sum() < 0.9 * tool.sum():
            fail(f"fill: frame {i}: only {int((dl & tool).sum())} of {int(tool.sum())} "
                 "tool pixels changed")
        # A chroma sample changes only where one of its 2x2 luma pixels is tool.
        near = tool.reshape(ch, 2, cw, 2).any(axis=(1, 3))
        for p, off in (("Cb", W * H), ("Cr", W * H + cw * ch)):
            dc = x[off: off + cw * ch].reshape(ch, cw) != y[off: off + cw * ch].reshape(ch, cw)
            if (dc & ~near).any():
                fail(f"fill: frame {i}: {int((dc & ~near).sum())} {p} samples changed off the mask")
    print("ok: fill changes the frames where the mask is, and only there")


def model_message(path):
    """The library's one line for a bad model file, as mms segment prints it."""
    img = os.path.join(T, "one.png")
    if not os.path.exists(img):
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc2=size=64x64", "-frames:v", "1", img], check=True)
    p = subprocess.run([MMS, "segment", "--model", path, "--out", os.path.join(T, "seg"), img],
                       capture_output=True, text=True, timeout=120)
    line = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
    if p.returncode == 0 or path not in line:
        fail(f"mms segment --model {path} exited {p.returncode}: {p.stderr[-300:]}")
    return line.split(": ", 1)[1] if line.startswith("mms") else line


def check_refusals(src):
    """src: the source elements (the clip's, or videotestsrc without the data)."""
    sink = "fakesink"
    missing = os.path.join(T, "missing.safetensors")
    cut = os.path.join(T, "cut.safetensors")
    with open(MODEL, "rb") as f, open(cut, "wb") as g:
        g.write(f.read(os.path.getsize(MODEL) // 2))
    for label, path in (("missing", missing), ("truncated", cut)):
        want = model_message(path)
        rc, err = launch(*src, f"mmsseg model={path}", sink)
        if rc == 0:
            fail(f"a {label} model: gst-launch exited 0")
        elif not want or want not in err:
            fail(f"a {label} model: the library's message {want!r} is not in: {err[-600:]}")
        else:
            print(f"ok: a {label} model fails the pipeline: {want}")
    for prop in ("style=bogus", "precision=fp64", "alpha=x", "tta=mirror"):
        rc, err = launch(*src, f"mmsseg {prop}", sink)
        name = prop.split("=")[0]
        if rc == 0 or f'could not set property "{name}"' not in err:
            fail(f"{prop}: gst-launch exited {rc}: {err[-400:]}")
    # Out of range: GLib refuses the value and says so; gst-launch itself
    # goes on (its rule for every element), with the property unchanged:
    # a mask per frame proves every stayed 1 (test_meta.c reads it back).
    for prop, name in (("every=0", "every"), ("every=1001", "every"), ("alpha=1.5", "alpha"),
                       ("color=0x1000000", "color")):
        rc, err = launch("videotestsrc num-buffers=2", "video/x-raw,format=I420,width=64,height=48",
                         f"mmsseg {prop} precision=fp32", sink)
        if f"out of range for property '{name}'" not in err:
            fail(f"{prop}: not refused: exit {rc}, {err[-400:]}")
    print("ok: bad models and property values refused")
    check_sizes()


def check_sizes():
    """The pads take the library's sizes: a scaler before mmsseg is asked
    for at most 16384 a side and the pipeline runs; without one, a frame
    too wide fails at linking, before any frame."""
    wide = "video/x-raw,format=I420,width=20000,height=16"
    rc, err = launch("videotestsrc num-buffers=1", wide, "videoscale",
                     f"mmsseg model={MODEL} precision=fp32", "fakesink")
    if rc != 0:
        fail(f"20000x16 through videoscale: gst-launch exited {rc}: {err[-400:]}")
    rc, err = launch("videotestsrc num-buffers=1", wide, f"mmsseg model={MODEL} precision=fp32",
                     "fakesink")
    if rc == 0 or "can't handle caps" not in err:
        fail(f"20000x16 without a scaler: exit {rc}, not refused at linking: {err[-400:]}")
    rc, err = launch("videotestsrc num-buffers=1", "video/x-raw,format=I420,width=16384,height=2",
                     f"mmsseg model={MODEL} precision=fp32", "fakesink")
    if rc != 0:
        fail(f"16384x2, the largest side: gst-launch exited {rc}: {err[-400:]}")
    print("ok: sizes over 16384 a side are negotiated down or refused at linking")


def check_installed():
    """The plugin as cmake --install puts it: under lib*/gstreamer-1.0,
    loading the installed libmms.so.0, not the build tree's."""
    root = os.path.join(T, "root")
    env = dict(os.environ, DESTDIR=root)
    p = subprocess.run([os.environ.get("CMAKE", "cmake"), "--install", BUILD], env=env,
                       capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        fail(f"cmake --install exited {p.returncode}: {p.stderr[-400:]}")
        return
    plugins = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
               if f == "libgstmms.so" and d.endswith("/gstreamer-1.0")]
    libs = [d for d, _, fs in os.walk(root) for f in fs if f == "libmms.so.0"]
    if len(plugins) != 1 or len(libs) != 1:
        fail(f"the install has plugins {plugins} and libmms.so.0 in {libs}")
        return
    if os.path.dirname(os.path.dirname(plugins[0])) != libs[0]:
        fail(f"{plugins[0]} is not in gstreamer-1.0 beside {libs[0]}/libmms.so.0")
    dyn = subprocess.run(["readelf", "-d", plugins[0]], capture_output=True, text=True).stdout
    if BUILD in dyn or "libmms.so.0" not in dyn:
        fail("the installed plugin reaches into the build tree or does not need libmms.so.0")
    env = gst_env()
    env["GST_PLUGIN_PATH"] = os.path.dirname(plugins[0])
    env["LD_LIBRARY_PATH"] = libs[0]
    p = subprocess.run(["gst-inspect-1.0", "mmsseg"], env=env, capture_output=True, text=True,
                       timeout=120)
    if p.returncode != 0 or plugins[0] not in p.stdout:
        fail(f"gst-inspect-1.0 does not find the installed plugin: {p.stderr[-300:]}")
    p = subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=2", "!",
                        "video/x-raw,format=I420,width=64,height=48", "!", "mmsseg", "!",
                        "fakesink"], env=env, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        fail(f"a pipeline with the installed plugin exited {p.returncode}: {p.stderr[-400:]}")
    else:
        print("ok: the installed plugin loads and runs")


def run_meta_check(video):
    # Sanitized itself (not preloaded), and it leaves GStreamer with
    # gst_deinit(), so its leaks are checked.
    p = subprocess.run([META_CHECK, video, MODEL], env=gst_env(sanitized=False),
                       capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        fail(f"test_meta exited {p.returncode}: {(p.stdout + p.stderr)[-1500:]}")
    else:
        print(p.stdout.strip())


def main():
    global T
    T = tempfile.mkdtemp(prefix="mms-gst-")
    try:
        for tool in ("gst-launch-1.0", "gst-inspect-1.0", "ffmpeg"):
            if not shutil.which(tool):
                fail(f"{tool} is needed")
                return
        check_inspect()
        check_installed()
        if not os.path.exists(VIDEO):
            if os.environ.get("CI") == "true":
                fail(f"{VIDEO} is missing (CI=true needs ../shared/data)")
                return
            print(f"note: {VIDEO} not found: no comparison with mms run, the rest on "
                  "videotestsrc")
            check_refusals(["videotestsrc num-buffers=5", "video/x-raw,format=I420"])
            run_meta_check("-")
            return
        # The first FRAMES frames as a file of their own (a stream copy:
        # the same packets, so the same decoded pictures in both programs).
        clip = os.path.join(T, "clip.mp4")
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", VIDEO, "-map", "0:v",
                        "-c", "copy", "-frames:v", str(FRAMES), clip], check=True)
        masks = check_masks(clip)
        if masks:
            check_tta(clip, masks)
            check_every(clip, masks)
            check_fill(clip, masks)
        check_refusals(source(clip))
        run_meta_check(clip)
    finally:
        shutil.rmtree(T, ignore_errors=True)


main()
if failures:
    print(f"{failures} check(s) failed", file=sys.stderr)
    sys.exit(1)
print("gst_mmsseg: all checks passed")
