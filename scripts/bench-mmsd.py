#!/usr/bin/python3
"""mmsd under a live load: a clip looped in real time over UDP into one
pipeline with the default model, recording on and one browser on the MJPEG
preview; prints what /api/v1/pipelines says over SECONDS as JSON (rates,
drops, CPU cores used, stage percentiles).

  scripts/bench-mmsd.py [BUILD_DIR] [CLIP] [SECONDS]
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "daemon"))
os.environ["MMS_SOURCE_DIR"] = ROOT
os.environ["MMS_BUILD_DIR"] = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
from mmsd_harness import Api, Daemon, free_port, wait_for  # noqa: E402

clip = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
    ROOT, "..", "shared", "data", "video", "cholec80_video01_10s.mp4")
span = float(sys.argv[3]) if len(sys.argv) > 3 else 40
tmp = tempfile.mkdtemp(prefix="mms-bench-")
os.makedirs(tmp + "/rec")
port, uport = free_port(), free_port(socket.SOCK_DGRAM)
feed = subprocess.Popen(["ffmpeg", "-v", "error", "-re", "-stream_loop", "-1", "-i", clip, "-an", "-c", "copy",
                         "-f", "mpegts", "udp://127.0.0.1:%d?pkt_size=1316" % uport], stdin=subprocess.DEVNULL)
conf = ("[mmsd]\nlisten = 127.0.0.1:%d\n\n[pipeline or1]\ninput = udp://127.0.0.1:%d\nrecord_dir = %s/rec\n"
        "segment_seconds = 600\n" % (port, uport, tmp))
d = Daemon(tmp, conf)
api = Api(port)
wait_for(lambda: api.req("GET", "/healthz")[0] == 200, 60)
# one browser watching the preview
stop = False
def viewer():
    s = socket.create_connection(("127.0.0.1", port)); s.sendall(b"GET /preview/or1.mjpeg HTTP/1.1\r\n\r\n")
    n = 0
    while not stop:
        n += len(s.recv(65536))
    print("preview bytes", n, file=sys.stderr)
t = threading.Thread(target=viewer, daemon=True); t.start()
time.sleep(5)
p0 = api.json("GET", "/api/v1/pipelines/or1")[1]; c0 = open("/proc/%d/stat" % d.p.pid).read().split()
t0 = time.time(); time.sleep(span); t1 = time.time()
p1 = api.json("GET", "/api/v1/pipelines/or1")[1]; c1 = open("/proc/%d/stat" % d.p.pid).read().split()
cpu = (int(c1[13]) + int(c1[14]) - int(c0[13]) - int(c0[14])) / os.sysconf("SC_CLK_TCK") / (t1 - t0)
dt = t1 - t0
s0, s1 = p0["stats"], p1["stats"]
out = {"seconds": round(dt, 1), "source": p1["source"], "decoded_fps": round((s1["decoded"] - s0["decoded"]) / dt, 2),
       "inferred_fps": round((s1["inferred"] - s0["inferred"]) / dt, 2), "written_fps": round((s1["written"] - s0["written"]) / dt, 2),
       "dropped": s1["dropped"] - s0["dropped"], "cpu_cores": round(cpu, 2), "latency_ms": p1["latency_ms"], "recording": p1["recording"]}
print(json.dumps(out, indent=1))
stop = True
d.signal(15)
print("mmsd exit status", d.wait(30), file=sys.stderr)
feed.kill()
