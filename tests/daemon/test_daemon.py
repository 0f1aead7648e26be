#!/usr/bin/python3
"""mmsd end to end: a real daemon on 127.0.0.1 fed over UDP by a real ffmpeg.

Checks, each reported on its own: systemd notifications (STATUS, READY=1
after the warm-up, WATCHDOG=1, STOPPING=1), /healthz, /metrics counters
rising, the pipeline API, runtime settings, recording stopped and started
through the API (segment files decode with ffprobe and hold frames), bad
requests answered 4xx while frames keep flowing, the MJPEG preview, source
loss (NO SIGNAL, 503) and reconnection, SIGHUP adding and removing a
pipeline without touching the running one, a bad reload kept out, SIGKILL
mid-recording leaving a playable file, SIGTERM finalising, a token enforced
off loopback, and refusals at start (no token off loopback, truncated
model).

Env: MMS_BUILD_DIR (mmsd, mms), MMS_SOURCE_DIR.
"""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SRC = os.environ["MMS_SOURCE_DIR"]
BUILD = os.environ["MMS_BUILD_DIR"]
MMSD = os.path.join(BUILD, "mmsd")
MMS = os.path.join(BUILD, "mms")
MODEL = os.path.join(SRC, "models", "mms-rt.safetensors")

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout, step=0.2):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class Api:
    def __init__(self, port, host="127.0.0.1", token=None):
        self.host, self.port, self.token = host, port, token

    def req(self, method, path, body=None, headers=None, token=True):
        h = dict(headers or {})
        if self.token and token:
            h["Authorization"] = "Bearer " + self.token
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            h["Content-Type"] = "application/json"
        try:
            c = http.client.HTTPConnection(self.host, self.port, timeout=10)
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            c.close()
            return r.status, dict(r.getheaders()), data
        except OSError as e:
            return None, {}, str(e).encode()

    def json(self, method, path, body=None, **kw):
        st, hd, data = self.req(method, path, body, **kw)
        try:
            return st, json.loads(data)
        except ValueError:
            return st, None


def metric(text, name, **labels):
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$', line)
        if not m or m.group(1) != name:
            continue
        got = ",".join(sorted((m.group(3) or "").split(","))) if m.group(3) else ""
        if got == want:
            return float(m.group(4))
    return None


def ffprobe_frames(path):
    r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                        "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path],
                       capture_output=True, text=True)
    try:
        return int(r.stdout.strip().split(",")[0])
    except ValueError:
        return -1


class Feeder:
    """ffmpeg sending a 25 fps test pattern as MPEG-TS over UDP, in real time."""

    def __init__(self, port):
        self.port, self.p = port, None

    def start(self):
        self.p = subprocess.Popen(
            ["ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i",
             "testsrc2=size=320x240:rate=25", "-c:v", "mpeg2video", "-q:v", "5", "-g", "25",
             "-f", "mpegts", "udp://127.0.0.1:%d?pkt_size=1316" % self.port],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        if self.p:
            self.p.kill()
            self.p.wait()
            self.p = None


class Notify:
    """The systemd side of Type=notify: a datagram socket in $NOTIFY_SOCKET,
    read all the time as systemd does (a full socket would block the sender)."""

    def __init__(self, path):
        self.path = path
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(path)
        self.msgs = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            m = self.s.recv(4096).decode()
            with self.lock:
                self.msgs.append(m)

    def poll(self):
        with self.lock:
            return list(self.msgs)


class Daemon:
    def __init__(self, tmp, conf_text, name="mmsd", env=None):
        self.conf = os.path.join(tmp, name + ".conf")
        self.log = os.path.join(tmp, name + ".log")
        self.write(conf_text)
        e = dict(os.environ)
        e.update(env or {})
        self.logf = open(self.log, "w")
        self.p = subprocess.Popen([MMSD, "-c", self.conf], stdout=self.logf, stderr=self.logf,
                                  env=e)

    def write(self, text):
        with open(self.conf, "w") as f:
            f.write(text)

    def text(self):
        with open(self.log) as f:
            return f.read()

    def signal(self, sig):
        self.p.send_signal(sig)

    def wait(self, timeout=60):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()


def pipeline_conf(name, uport, rec, extra=""):
    return ("[pipeline %s]\ninput = udp://127.0.0.1:%d\nmode = live\nsize = 160x288\n"
            "threads = 1\noutput = null\nrecord_dir = %s\nsegment_seconds = 3\n%s"
            % (name, uport, rec, extra))


def main():
    tmp = tempfile.mkdtemp(prefix="mms-daemon-")
    rec = os.path.join(tmp, "rec")
    os.mkdir(rec)
    port, uport = free_port(), free_port(socket.SOCK_DGRAM)
    notify = Notify(os.path.join(tmp, "notify.sock"))
    base = ("[mmsd]\nlisten = 127.0.0.1:%d\nlog_level = debug\nmodel = %s\n\n" % (port, MODEL)
            + pipeline_conf("cam", uport, rec))
    feeder = Feeder(uport)
    feeder.start()
    d = Daemon(tmp, base, env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "2000000"})
    api = Api(port)
    try:
        run_main_daemon(tmp, rec, d, api, feeder, notify, base, port, uport)
    finally:
        feeder.stop()
        if d.p.poll() is None:
            d.p.kill()
            d.p.wait()
    run_token_daemon(tmp)
    run_refusals(tmp)
    if failures:
        print("%d check(s) failed" % len(failures))
        for f in failures:
            print("  " + f)
        return 1
    print("all checks passed")
    return 0


def run_main_daemon(tmp, rec, d, api, feeder, notify, base, port, uport):
    # ---- start: notifications, health ----
    ready = wait_for(lambda: "READY=1" in notify.poll(), 120)
    check(ready, "READY=1 sent")
    msgs = notify.poll()
    if ready:
        i = msgs.index("READY=1")
        check(any(m.startswith("STATUS=warm-up") for m in msgs[:i]),
              "STATUS=warm-up inference comes before READY=1: %s" % msgs[:i])
    healthy = wait_for(lambda: api.req("GET", "/healthz")[0] == 200, 60)
    st, h = api.json("GET", "/healthz")
    check(healthy and h and h["status"] == "ok", "/healthz 200 once frames flow: %s" % h)
    check(wait_for(lambda: "WATCHDOG=1" in notify.poll(), 5), "WATCHDOG=1 sent")

    # ---- metrics ----
    st, _, m1 = api.req("GET", "/metrics")
    time.sleep(2)
    st2, hd, m2 = api.req("GET", "/metrics")
    m1, m2 = m1.decode(), m2.decode()
    check(st == 200 and hd.get("Content-Type", "").startswith("text/plain"), "/metrics 200 text")
    for stage in ("decoded", "inferred", "written"):
        a = metric(m1, "mmsd_frames_total", pipeline="cam", stage=stage)
        b = metric(m2, "mmsd_frames_total", pipeline="cam", stage=stage)
        check(a is not None and b is not None and b > a,
              "mmsd_frames_total{stage=%s} rises: %s -> %s" % (stage, a, b))
    names = {l.split("{")[0].split(" ")[0] for l in m2.splitlines() if l and l[0] != "#"}
    check(names and all(n.startswith("mmsd_") for n in names), "every metric is mmsd_*")
    check((metric(m2, "mmsd_stage_latency_seconds_count", pipeline="cam", stage="infer") or 0) > 0,
          "inference latency histogram has samples")
    check(metric(m2, "mmsd_stage_latency_seconds_bucket", pipeline="cam", stage="infer",
                 le="+Inf") is not None, "histogram has a +Inf bucket")
    check(metric(m2, "mmsd_source_signal", pipeline="cam") == 1, "mmsd_source_signal 1")
    check(metric(m2, "mmsd_recording", pipeline="cam") == 1, "mmsd_recording 1")

    # ---- pipeline API ----
    st, j = api.json("GET", "/api/v1/pipelines")
    check(st == 200 and j and [p["name"] for p in j["pipelines"]] == ["cam"],
          "/api/v1/pipelines lists cam")
    st, p = api.json("GET", "/api/v1/pipelines/cam")
    check(st == 200 and p["state"] == "running" and p["source"]["width"] == 320
          and p["mode"] == "live", "/api/v1/pipelines/cam running 320 wide, live")
    st, e = api.json("GET", "/api/v1/pipelines/nope")
    check(st == 404 and "nope" in e["error"], "unknown pipeline 404")

    # ---- runtime settings ----
    st, r = api.json("PATCH", "/api/v1/pipelines/cam", {"style": "outline", "alpha": 0.3})
    check(st == 200 and r["settings"]["style"] == "outline" and r["settings"]["alpha"] == 0.3,
          "PATCH style+alpha 200: %s" % r)
    st, r = api.json("PATCH", "/api/v1/pipelines/cam", {"style": "fill", "alpha": "7"})
    check(st == 400 and "alpha" in r["error"], "PATCH bad alpha 400: %s" % r)
    st, p = api.json("GET", "/api/v1/pipelines/cam")
    check(p["settings"]["style"] == "outline", "a refused PATCH changes nothing")
    st, r = api.json("PATCH", "/api/v1/pipelines/cam", {"input": "x"})
    check(st == 400 and "cannot change" in r["error"], "PATCH input 400")
    st, r = api.json("PATCH", "/api/v1/pipelines/cam", {"bogus": 1})
    check(st == 400 and "unknown" in r["error"], "PATCH unknown key 400")

    # ---- recording: segments, stop and start through the API ----
    time.sleep(4)
    segs = sorted(f for f in os.listdir(rec) if f.startswith("cam-"))
    check(len(segs) >= 2, "segments of 3 s rotate: %s" % segs)
    check(all(re.match(r"^cam-\d{8}T\d{6}Z(-\d+)?\.mp4$", f) for f in segs),
          "segment names cam-YYYYmmddTHHMMSSZ.mp4: %s" % segs)
    r = subprocess.run([MMS, "ctl", "--url", "http://127.0.0.1:%d" % port, "record", "cam",
                        "stop"], capture_output=True, text=True)
    check(r.returncode == 0, "mms ctl record cam stop: %s" % (r.stdout + r.stderr))
    time.sleep(1)
    st, p = api.json("GET", "/api/v1/pipelines/cam")
    check(not p["recording"]["recording"] and p["recording"]["file"] == "",
          "recording stopped: %s" % p["recording"])
    segs = sorted(f for f in os.listdir(rec) if f.startswith("cam-"))
    frames = [ffprobe_frames(os.path.join(rec, f)) for f in segs]
    check(all(n > 0 for n in frames), "every stopped segment decodes: %s" % frames)
    check(sum(frames) >= 150, "segments hold the frames (>= 6 s at 25 fps): %d" % sum(frames))
    st, r = api.json("POST", "/api/v1/pipelines/cam/recording", {"action": "start"})
    check(st == 200 and r["recording"], "POST recording start 200")
    time.sleep(2)
    st, p = api.json("GET", "/api/v1/pipelines/cam")
    newfile = p["recording"]["file"]
    check(newfile and os.path.basename(newfile) not in segs, "a new segment after start")
    st, r = api.json("POST", "/api/v1/pipelines/cam/recording", {"action": "pause"})
    check(st == 400, "POST recording bad action 400")

    # ---- preview ----
    st, hd, jpg = api.req("GET", "/preview/cam.jpg")
    check(st == 200 and jpg[:2] == b"\xff\xd8" and hd.get("Content-Type") == "image/jpeg",
          "/preview/cam.jpg is a JPEG")
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /preview/cam.mjpeg HTTP/1.1\r\nHost: x\r\n\r\n")
    buf = b""
    end = time.time() + 5
    while buf.count(b"--mmsdframe") < 3 and time.time() < end:
        buf += s.recv(65536)
    s.close()
    check(b"multipart/x-mixed-replace" in buf and buf.count(b"\xff\xd8") >= 2,
          "MJPEG stream sends several JPEG parts")
    st, _, _ = api.req("GET", "/preview/nope.mjpeg")
    check(st == 404, "preview of an unknown pipeline 404")
    st, hd, page = api.req("GET", "/")
    check(st == 200 and b'src="/preview/cam.mjpeg"' in page, "status page embeds the preview")

    # ---- bad requests while frames flow ----
    before = api.json("GET", "/api/v1/pipelines/cam")[1]["stats"]["decoded"]

    def raw(data):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(data)
        out = b""
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                out += b
        except OSError:
            pass
        s.close()
        return out

    check(raw(b"BLAH\r\n\r\n").startswith(b"HTTP/1.1 400"), "garbage request 400")
    check(raw(b"GET / HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n")[:12] == b"HTTP/1.1 431",
          "oversized header 431")
    check(raw(b"PATCH /api/v1/pipelines/cam HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n")[:12]
          == b"HTTP/1.1 413", "oversized body 413")
    st, r = api.json("PATCH", "/api/v1/pipelines/cam", "{not json")
    check(st == 400, "malformed JSON 400")
    st, _, _ = api.req("DELETE", "/api/v1/pipelines/cam")
    check(st == 405, "DELETE 405")
    st, _, _ = api.req("GET", "/nowhere")
    check(st == 404, "unknown path 404")
    time.sleep(1.5)
    after = api.json("GET", "/api/v1/pipelines/cam")[1]["stats"]["decoded"]
    check(after > before + 10, "frames keep flowing through bad requests: %d -> %d"
          % (before, after))
    check(api.req("GET", "/healthz")[0] == 200, "still healthy after bad requests")

    # ---- SIGHUP: add a pipeline, leave cam alone; a bad file is kept out ----
    cam_file = api.json("GET", "/api/v1/pipelines/cam")[1]["recording"]["file"]
    clip = os.path.join(tmp, "clip.mkv")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=160x120:rate=25", "-t", "2", "-c:v", "ffv1", clip], check=True)
    second = os.path.join(tmp, "second.mkv")
    d.write(base + "\n[pipeline second]\ninput = %s\nsize = 160x288\nthreads = 1\n"
            "output = %s\n" % (clip, second))
    d.signal(signal.SIGHUP)
    names = wait_for(lambda: [p["name"] for p in
                              (api.json("GET", "/api/v1/pipelines")[1] or {"pipelines": []})
                              ["pipelines"]] == ["cam", "second"] and True, 10)
    check(names, "SIGHUP added pipeline 'second'")
    fin = wait_for(lambda: api.json("GET", "/api/v1/pipelines/second")[1]["state"] == "finished",
                   60)
    check(fin, "the added pipeline ran its file to the end")
    check(ffprobe_frames(second) == 50, "its output has the 50 frames: %d" % ffprobe_frames(second))
    p = api.json("GET", "/api/v1/pipelines/cam")[1]
    check(p["recording"]["file"] == cam_file or p["recording"]["segments"] > 0,
          "cam kept running through the reload")
    check("cam: changed" not in d.text() and "pipeline cam: running" in d.text()
          and d.text().count("pipeline cam: running") == 1, "cam was not restarted by SIGHUP")
    d.write(base + "\n[pipeline broken]\nbogus_key = 1\n")
    d.signal(signal.SIGHUP)
    time.sleep(1)
    check("the running config stays" in d.text(), "a bad config on SIGHUP is refused and logged")
    check(d.p.poll() is None and "second" in [p["name"] for p in api.json(
        "GET", "/api/v1/pipelines")[1]["pipelines"]], "the daemon kept its pipelines")
    d.write(base)
    d.signal(signal.SIGHUP)
    gone = wait_for(lambda: [p["name"] for p in api.json("GET", "/api/v1/pipelines")[1]
                             ["pipelines"]] == ["cam"], 10)
    check(gone, "SIGHUP removed 'second'")

    # ---- source loss and reconnection ----
    feeder.stop()
    lost = wait_for(lambda: api.req("GET", "/healthz")[0] == 503, 10)
    st, h = api.json("GET", "/healthz")
    check(lost and any("no signal" in r or "no frames" in r for r in h["reasons"]),
          "source lost: /healthz 503 with the reason: %s" % h)
    wait_for(lambda: api.json("GET", "/api/v1/pipelines/cam")[1]["state"] == "no-signal", 10)
    st, p = api.json("GET", "/api/v1/pipelines/cam")
    check(p["state"] == "no-signal", "state no-signal: %s" % p["state"])
    w1 = p["stats"]["written"]
    time.sleep(1)
    w2 = api.json("GET", "/api/v1/pipelines/cam")[1]["stats"]["written"]
    check(w2 > w1, "NO SIGNAL frames keep the outputs going: %d -> %d" % (w1, w2))
    feeder.start()
    back = wait_for(lambda: api.req("GET", "/healthz")[0] == 200, 40)
    check(back, "source back: /healthz 200 again")
    m = api.req("GET", "/metrics")[2].decode()
    check((metric(m, "mmsd_reconnects_total", pipeline="cam") or 0) >= 1,
          "mmsd_reconnects_total >= 1")
    check(all(re.match(r"^<[0-7]>", l) for l in d.text().splitlines() if l),
          "every log line starts with a journald <N> priority")

    # ---- SIGKILL mid-recording: the open segment still plays ----
    # Killed 2 s into a segment: fragments are a second long, so at least
    # the first second (25 frames) must be there.
    def cur_file():
        return api.json("GET", "/api/v1/pipelines/cam")[1]["recording"]["file"]
    first = cur_file()
    wait_for(lambda: cur_file() != first, 10, step=0.05)
    cur = cur_file()
    time.sleep(2)
    d.signal(signal.SIGKILL)
    d.wait()
    n = ffprobe_frames(cur) if cur else -1
    check(n >= 25, "SIGKILL 2 s into a segment leaves it playable with >= 25 frames: %s %d"
          % (cur, n))
    done = [ffprobe_frames(os.path.join(rec, f)) for f in sorted(os.listdir(rec))]
    check(all(n > 0 for n in done[:-1]), "every earlier segment still plays: %s" % done)


def run_token_daemon(tmp):
    port = free_port()
    tok = os.path.join(tmp, "token")
    with open(tok, "w") as f:
        f.write("s3cret-token\n")
    notify = Notify(os.path.join(tmp, "notify2.sock"))
    d = Daemon(tmp, "[mmsd]\nlisten = 0.0.0.0:%d\ntoken_file = %s\nmodel = %s\n"
               % (port, tok, MODEL), name="token", env={"NOTIFY_SOCKET": notify.path})
    try:
        wait_for(lambda: "READY=1" in notify.poll(), 60)
        noauth, good = Api(port), Api(port, token="s3cret-token")
        bad = Api(port, token="wrong")
        check(noauth.req("GET", "/api/v1/pipelines")[0] == 401, "off loopback: no token 401")
        check(bad.req("GET", "/metrics")[0] == 401, "off loopback: wrong token 401")
        check(good.req("GET", "/api/v1/pipelines")[0] == 200, "off loopback: token 200")
        check(noauth.req("GET", "/healthz")[0] == 200, "off loopback: /healthz open")
        d.signal(signal.SIGTERM)
        rc = d.wait(30)
        check(rc == 0, "SIGTERM: exit 0 (got %s)" % rc)
        check("STOPPING=1" in notify.poll(), "STOPPING=1 sent")
    finally:
        if d.p.poll() is None:
            d.p.kill()


def run_refusals(tmp):
    port = free_port()
    d = Daemon(tmp, "[mmsd]\nlisten = 0.0.0.0:%d\nmodel = %s\n" % (port, MODEL), name="notoken")
    rc = d.wait(30)
    check(rc == 2 and "token_file" in d.text(), "off loopback without token_file: exit 2 (%s): %s"
          % (rc, d.text().strip()[-200:]))
    trunc = os.path.join(tmp, "trunc.safetensors")
    with open(MODEL, "rb") as f, open(trunc, "wb") as g:
        g.write(f.read(5000))
    notify = Notify(os.path.join(tmp, "notify3.sock"))
    d = Daemon(tmp, "[mmsd]\nlisten = 127.0.0.1:%d\nmodel = %s\n" % (port, trunc),
               name="trunc", env={"NOTIFY_SOCKET": notify.path})
    rc = d.wait(30)
    check(rc == 1 and "cannot start: model" in d.text(), "truncated model: exit 1 (%s): %s"
          % (rc, d.text().strip()[-200:]))
    check("READY=1" not in notify.poll(), "truncated model: never READY")


if __name__ == "__main__":
    sys.exit(main())
