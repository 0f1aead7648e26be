#!/usr/bin/env python3
"""Writes fuzz/corpus/<target>/: small seeds for each fuzz target.

Run from anywhere: python3 fuzz/seeds.py. Needs ffmpeg for the image and
video seeds. The files are committed; this script says how they were made
and makes them again (byte for byte for all but the ffmpeg outputs).
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")
TOKEN = "fuzz-Token_0123456789"  # fuzz/http_server.h FUZZ_TOKEN_VALUE


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    assert len(data) < 50 * 1024, (target, name, len(data))
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- model: safetensors ----

def shipped():
    path = os.path.join(ROOT, "models", "mms-rt.safetensors")
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        meta = header.pop("__metadata__")
        tensors = {}
        for name, t in header.items():
            a, b = t["data_offsets"]
            f.seek(base + a)
            tensors[name] = (t["dtype"], t["shape"], f.read(b - a))
    return meta, tensors


def safetensors(meta, tensors):
    """tensors: list of (name, dtype, shape, bytes)."""
    header, off, blob = {}, 0, b""
    if meta is not None:
        header["__metadata__"] = meta
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [off, off + len(data)]}
        off += len(data)
        blob += data
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-(8 + len(h)) % 8)  # writers align the data to 8 bytes
    return struct.pack("<Q", len(h)) + h + blob


def model_seeds():
    meta, t = shipped()
    card = {k: v for k, v in meta.items() if k.startswith("mms.")}
    pick = lambda *names: [(n, *t[n]) for n in names]
    stem = ["stem.0.weight", "stem.1.weight", "stem.1.bias", "stem.1.running_mean",
            "stem.1.running_var", "stem.1.num_batches_tracked"]
    # The shipped card with its first convolution and batch norm.
    put("model", "rt-stem0", safetensors(card, pick(*stem)))
    # ... and the second, so the graph gets two layers further.
    stem3 = [n for n in t if n.startswith("stem.3.") or n.startswith("stem.4.")]
    put("model", "rt-stem", safetensors(dict(meta, **{"train.command": "x"}),
                                        pick(*(stem + sorted(stem3)))))
    # One tensor, a card with the architecture's own keys and int8 metadata.
    put("model", "rt-keys", safetensors(
        dict(card, **{"mms.widths": "16,32,64,128,256", "mms.blocks": "1,1,2,1",
                      "mms.decoder": "96,48,32,16", "mms.leaky_slope": "0.01",
                      "int8.check": "passed", "int8.speed": "avx2:1.23"}),
        pick("final.weight", "final.bias") +
        [("int8.absmax", "F32", [3], struct.pack("<3f", 1.0, 2.5, 0.25))]))
    # The paper's architecture, its keys, and tensors of every dtype.
    put("model", "r2n-dtypes", safetensors(
        {"mms.arch": "res2net-unet", "mms.input": "352x352", "mms.mean": "0.5, 0.5, 0.5",
         "mms.std": "0.25,0.25,0.25", "mms.threshold": "0.5", "mms.layers": "3,4,23",
         "mms.base_width": "26", "mms.scale": "4", "mms.decoder": "256,128,64,32",
         "format": "pt"},
        [("a", "F16", [2, 2], b"\0<" * 4), ("b", "BF16", [3], b"\x80?" * 3),
         ("c", "F64", [1], struct.pack("<d", 1.5)), ("d", "I64", [], struct.pack("<q", 7)),
         ("e", "I32", [2], struct.pack("<2i", -1, 1)), ("f", "I8", [4], b"\x01\x02\xfe\xff"),
         ("g", "U8", [1, 1, 1, 1, 1, 1, 1, 1], b"\x05"), ("h", "BOOL", [2], b"\x00\x01"),
         ("i", "F32", [0, 3], b"")]))
    put("model", "no-meta", safetensors(None, pick("stem.1.bias")))
    put("model", "empty-header", struct.pack("<Q", 2) + b"{}")


# ---- config ----

def config_seeds():
    example = open(os.path.join(ROOT, "systemd", "mmsd.conf.example")).read()
    put("config", "example.conf", example)
    put("config", "minimal.conf", "[pipeline cam]\ninput = /dev/video0\n")
    put("config", "full.conf", """; every key, both spellings
[mmsd]
listen = [::1]:0
model = /usr/share/mmsd/models/mms-rt.safetensors
threads = 2
log-level = debug
token_file = /etc/mmsd/token
allowed_hosts = mmsd.example, or-3.local

[pipeline or1]
input = rtsp://admin:secret@10.0.0.5:554/stream1?token=abc
input_option = rtsp_transport=tcp
input_option = stimeout=5000000
output = /var/lib/mmsd/out.mp4
output = udp://239.0.0.1:5000?pkt_size=1316
output = rtmp://live.example/app/streamkey
output = null
window = yes
model = /opt/models/int8.safetensors
precision = int8
threads = 4
size = 288x512
style = outline
alpha = 0.3
color = FF0000
every = 3
smooth = 0.8
mode = live
meta = /tmp/meta.jsonl
record_dir = /var/lib/mmsd/or1
segment_seconds = 60
record_format = mkv

[pipeline lab.2_x-y]
input = lavfi:testsrc2=size=320x240:rate=25
mode = offline
style = off
""")
    put("config", "errors.conf", "[mmsd]\nlisten = 0.0.0.0:80\n[pipeline a]\n[pipeline a]\n"
        "input = x\nbogus = 1\n[other]\nk=v\nno equals here\n")
    put("config", "continued.conf", "# comment\n[pipeline p]\ninput = file.mp4 ; trailing\n"
        "  output = a.ts\n\t\n[pipeline q]\ninput=srt://h:1?passphrase=x\nalpha=1e-3\n")


# ---- HTTP requests: first byte 0 = the open server, 1 = the one with a token ----

def http_seeds():
    H = "Host: 127.0.0.1:8089\r\n"
    reqs = {
        "get-list": "GET /api/v1/pipelines HTTP/1.1\r\n" + H + "\r\n",
        "get-pipe": "GET /api/v1/pipelines/cam HTTP/1.1\r\n" + H + "Connection: close\r\n\r\n",
        "healthz-head": "HEAD /healthz HTTP/1.1\r\n" + H + "\r\n",
        "metrics-page": "GET /metrics HTTP/1.1\r\n" + H + "\r\nGET / HTTP/1.1\r\n" + H +
                        "\r\nGET /index.html?x=1 HTTP/1.0\r\n\r\n",
        "preview-jpg": "GET /preview/cam.jpg HTTP/1.1\r\n" + H + "\r\n",
        "preview-mjpeg": "GET /preview/cam.mjpeg HTTP/1.1\r\n" + H + "\r\n",
        "patch": "PATCH /api/v1/pipelines/cam HTTP/1.1\r\n" + H +
                 "Content-Type: application/json\r\nContent-Length: 28\r\n\r\n"
                 '{"alpha":0.5,"style":"mask"}',
        "record-chunked": "POST /api/v1/pipelines/cam/recording HTTP/1.1\r\n" + H +
                          "Content-Type: application/json; charset=utf-8\r\n"
                          "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
                          "a\r\n{\"action\":\r\n9\r\n\"start\"}\n\r\n0\r\n\r\n",
        "cross-origin": "POST /api/v1/pipelines/lab/recording HTTP/1.1\r\n"
                        "Host: attacker.example\r\nOrigin: http://evil.example\r\n"
                        "Content-Type: text/plain\r\nContent-Length: 17\r\n\r\n"
                        '{"action":"stop"}',
        "bad": "GET /api/v1/pipelines/%2e%2e/x HTTP/1.1\r\nHost: [::1]:80\r\n"
               "X: \x01\r\n\r\nBREW /pot HTTP/9.9\r\n\r\n",
        "delete-405": "DELETE /api/v1/pipelines/x.y-z_9 HTTP/1.1\r\n" + H + "\r\n",
    }
    for name, r in reqs.items():
        put("http", name, b"\x00" + r.encode("latin-1"))
    auth = "Authorization: Bearer " + TOKEN + "\r\n"
    put("http", "token-header", b"\x01" + ("GET /api/v1/pipelines/lab HTTP/1.1\r\n"
        "Host: mmsd.example\r\n" + auth + "\r\n").encode())
    put("http", "token-query", b"\x01" + ("GET /metrics?access_token=" +
        TOKEN.replace("_", "%5F") + " HTTP/1.1\r\nHost: cam.local:8089\r\n\r\n").encode())
    put("http", "token-wrong", b"\x01" + ("GET /api/v1/pipelines HTTP/1.1\r\n"
        "Host: 10.1.2.3\r\nAuthorization: Bearer nope\r\n\r\n"
        "GET /healthz HTTP/1.1\r\n\r\n").encode())
    put("http", "token-patch", b"\x01" + ("PATCH /api/v1/pipelines/cam HTTP/1.1\r\n"
        "Host: mmsd.example\r\nOrigin: http://mmsd.example\r\n" + auth +
        "Content-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"every\":\"2\"}").encode())


# ---- JSON bodies: first byte the route (fuzz/api_json.c) ----

def json_seeds():
    bodies = [
        (0, "patch-all", '{"style":"outline","alpha":0.25,"color":"ff00ff","every":2,"smooth":"0.5"}'),
        (0, "patch-bad", '{"alpha":"2","input":"x"}'),
        (0, "patch-types", '{"style":["fill"],"every":{"n":1},"alpha":true,"x":null}'),
        (2, "patch-nested", '{"a":{"b":{"c":[1,2,3e400,-0.0,"\\u00e9\\ud83d\\ude00"]}}}  \n'),
        (1, "record-start", '{"action":"start"}'),
        (1, "record-junk", '{"action":"stop"} {"action":"start"}'),
        (3, "record-other", '{"action":"stop","extra":1}'),
        (0, "many", "{" + ",".join('"k%d":%d' % (i, i) for i in range(20)) + "}"),
    ]
    for route, name, body in bodies:
        put("api_json", name, bytes([route]) + body.encode())
    put("api_json", "nul", b"\x01{\"action\":\"st\x00art\"}")


# ---- mms ctl answers (fuzz/ctl.c): byte 0 command|json<<3|raw<<4, byte 1 status ----

def ctl_seeds():
    pipe = {
        "name": "cam", "state": "running", "healthy": True, "reasons": ["ok", 3],
        "input": "rtsp://***@cam/s", "mode": "auto", "effective_mode": "live",
        "model": "/m.safetensors",
        "source": {"width": 1920, "height": 1080, "fps": 25.0, "signal": True},
        "settings": {"style": "fill", "alpha": 0.45, "color": "00ff66", "every": 1},
        "stats": {"fps": 24.9, "decoded": 1000, "inferred": 990, "dropped": 10,
                  "written": 1000, "reconnects": 0, "decode_errors": 1.5e300},
        "recording": {"enabled": True, "recording": True, "file": "seg\u001b[31m.mp4",
                      "segments": 3, "errors": 0, "error": ""},
        "latency_ms": {"decode": {"p50": 1, "p95": 2, "p99": 3, "max": 4},
                       "infer": {"p50": 30.5}},
    }
    j = lambda o: json.dumps(o).encode()
    put("ctl", "status-list", b"\x00\x00" + j({"pipelines": [pipe, {"name": 1}, {}]}))
    put("ctl", "status-one", b"\x01\x00" + j(pipe))
    put("ctl", "record", b"\x02\x00" + j({"enabled": True, "recording": False,
                                          "error": "disk\nfull"}))
    put("ctl", "set", b"\x03\x00" + j({"settings": {"alpha": 0.5, "x": [1, {"y": None}]}}))
    put("ctl", "health-503", b"\x04\x07" + j({"status": "unhealthy", "reasons": ["x"]}))
    put("ctl", "error-404", b"\x01\x05" + j({"error": "no pipeline 'cam'"}))
    put("ctl", "json", b"\x08\x00" + j({"pipelines": []}))
    put("ctl", "metrics-raw", b"\x15HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
        b"Content-Length: 30\r\n\r\nmmsd_up 1\nmmsd_frames{a=\"b\"} 2\n")
    put("ctl", "raw-chunked", b"\x10HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Fine\x01\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"pip\r\nf\r\nelines\": [{}]}\n\r\n0\r\n\r\n")
    put("ctl", "raw-close", b"\x12HTTP/1.0 409 Conflict\r\n\r\n{\"error\":\"not running\"}")
    put("ctl", "raw-short", b"\x11HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"name\":")


# ---- images and videos, made by ffmpeg ----

def ffmpeg(args, out):
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y"] + args + [out],
                   check=True)


def media_seeds():
    tmp = tempfile.mkdtemp()
    try:
        src = ["-f", "lavfi", "-i", "testsrc=size=32x24:rate=25"]
        for name, extra in [("rgb.png", []), ("gray16.png", ["-pix_fmt", "gray16be"]),
                            ("pal.png", ["-pix_fmt", "pal8"]), ("rgba.png", ["-pix_fmt", "rgba"]),
                            ("yuv420.jpg", ["-pix_fmt", "yuvj420p"]),
                            ("yuv444.jpg", ["-pix_fmt", "yuvj444p"]),
                            ("gray.jpg", ["-pix_fmt", "gray"]), ("bgr.bmp", []),
                            ("rgb.tiff", []), ("lossy.webp", [])]:
            out = os.path.join(tmp, name)
            ffmpeg(src + ["-frames:v", "1"] + extra, out)
            put("image", name, open(out, "rb").read())
        src = ["-f", "lavfi", "-i", "testsrc=size=32x32:rate=25"]
        x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "2", "-bf", "1"]
        for name, extra in [("clip.mp4", x264), ("frag.mp4", x264 + ["-movflags", "frag_keyframe+empty_moov"]),
                            ("clip.mkv", x264), ("clip.ts", x264), ("clip.flv", x264),
                            ("clip.h264", x264), ("mjpeg.avi", ["-c:v", "mjpeg"]),
                            ("vp9.webm", ["-c:v", "libvpx-vp9", "-deadline", "realtime"]),
                            ("hevc.mkv", ["-c:v", "libx265", "-preset", "ultrafast",
                                          "-x265-params", "log-level=none"])]:
            out = os.path.join(tmp, name)
            try:
                ffmpeg(src + ["-frames:v", "3", "-pix_fmt", "yuv420p"] + extra, out)
            except subprocess.CalledProcessError:
                print("seeds.py: no %s (this ffmpeg lacks an encoder)" % name, file=sys.stderr)
                continue
            put("source", name, open(out, "rb").read())
        # A Matroska file cut short, which the source counts as a decode error.
        data = open(os.path.join(tmp, "clip.mkv"), "rb").read()
        put("source", "cut.mkv", data[: len(data) * 2 // 3])
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    model_seeds()
    config_seeds()
    http_seeds()
    json_seeds()
    ctl_seeds()
    media_seeds()
