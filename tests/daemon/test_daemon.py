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
off loopback, a first run with a record_dir to make (made 0750; one that
cannot be made fails the recording alone and a start retries), the mode
as configured and in effect for auto, live and offline pipelines, and
refusals at start (no token off loopback, truncated model).

Env: MMS_BUILD_DIR (mmsd, mms), MMS_SOURCE_DIR.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mmsd_harness import (MMS, MODEL, Api, Daemon, Feeder, Notify, check, ffprobe_frames,  # noqa: E402
                          finish, free_port, metric, wait_for)


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
    run_full_disk(tmp)
    run_first_run(tmp)
    run_modes(tmp)
    run_refusals(tmp)
    run_any_port(tmp)
    run_bad_font(tmp)
    for log in sorted(f for f in os.listdir(tmp) if f.endswith(".log")):
        with open(os.path.join(tmp, log)) as f:
            text = f.read()
        check("Sanitizer" not in text and "runtime error:" not in text,
              "%s: no sanitizer report" % log)
    return finish("daemon")


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
    for stage in ("dropped", "skipped"):
        check(metric(m2, "mmsd_frames_total", pipeline="cam", stage=stage) is not None,
              "mmsd_frames_total{stage=%s} is there" % stage)
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
    check(all(re.match(r"^cam-\d{8}T\d{6}Z(_\d{4})?\.mp4$", f) for f in segs),
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
    s.sendall(b"GET /preview/cam.mjpeg HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port)
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
    st, r = api.json("PATCH", "/api/v1/pipelines/cam", "{not json",
                     headers={"Content-Type": "application/json"})
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
    check(wait_for(lambda: "the running config stays" in d.text(), 30),
          "a bad config on SIGHUP is refused and logged")
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
        check(noauth.req("GET", "/?access_token=s3cret-token")[0] == 200
              and noauth.req("GET", "/api/v1/pipelines?access_token=s3cret-token")[0] == 200,
              "off loopback: the browser's ?access_token= works")
        check(noauth.req("GET", "/?access_token=s3cret")[0] == 401,
              "off loopback: a wrong ?access_token= is 401")
        d.signal(signal.SIGTERM)
        rc = d.wait(30)
        check(rc == 0, "SIGTERM: exit 0 (got %s)" % rc)
        check("STOPPING=1" in notify.poll(), "STOPPING=1 sent")
    finally:
        if d.p.poll() is None:
            d.p.kill()


def run_full_disk(tmp):
    """A recording that hits a full disk (here: a file-size limit, EFBIG)
    stops with the error in health and metrics, which say it is retried;
    frames and preview go on, and the retry records into a new segment
    (the limit is per file, so a new one has room)."""
    import resource
    rec = os.path.join(tmp, "rec-full")
    os.mkdir(rec)
    port, uport = free_port(), free_port(socket.SOCK_DGRAM)
    feeder = Feeder(uport)
    feeder.start()
    limit = 150 * 1024

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    d = Daemon(tmp, "[mmsd]\nlisten = 127.0.0.1:%d\nmodel = %s\n\n" % (port, MODEL)
               + pipeline_conf("cam", uport, rec).replace("segment_seconds = 3",
                                                          "segment_seconds = 600"),
               name="full", preexec=small_files)
    api = Api(port)
    try:
        failed = wait_for(lambda: (api.json("GET", "/api/v1/pipelines/cam")[1] or {})
                          .get("recording", {}).get("error"), 90)
        check(failed, "the recording fails at the size limit: %s" % failed)

        def health_says_retrying():
            st, h = api.json("GET", "/healthz")
            return st == 503 and [r for r in h["reasons"]
                                  if "recording failed" in r and "retrying" in r]
        said = wait_for(health_says_retrying, 30, step=0.1)
        check(said, "full disk: /healthz 503 says recording failed, retrying: %s" % said)

        def metrics_say_retrying():
            m = api.req("GET", "/metrics")[2].decode()
            return (metric(m, "mmsd_recording_failed", pipeline="cam") == 1
                    and metric(m, "mmsd_recording_retrying", pipeline="cam") == 1
                    and (metric(m, "mmsd_recording_errors_total", pipeline="cam") or 0) >= 1
                    and metric(m, "mmsd_recording", pipeline="cam") == 0)
        check(wait_for(metrics_say_retrying, 30, step=0.1),
              "full disk: mmsd_recording_failed 1, retrying 1, errors_total >= 1, recording 0")
        def api_says_retrying():
            r = (api.json("GET", "/api/v1/pipelines/cam")[1] or {}).get("recording", {})
            return r.get("retrying") is True and r.get("retry_in_ms", -1) >= 0
        check(wait_for(api_says_retrying, 30, step=0.05),
              "full disk: the API's recording says retrying, with retry_in_ms")
        resumed = wait_for(lambda: len([f for f in os.listdir(rec) if f.endswith(".mp4")]) >= 2
                           and (api.json("GET", "/api/v1/pipelines/cam")[1] or {})
                           .get("recording", {}).get("segments", 0) >= 2, 30)
        check(resumed, "full disk: the retry records into a new segment: %s"
              % sorted(os.listdir(rec)))
        w1 = api.json("GET", "/api/v1/pipelines/cam")[1]["stats"]["written"]
        time.sleep(1.5)
        w2 = api.json("GET", "/api/v1/pipelines/cam")[1]["stats"]["written"]
        check(w2 > w1 + 10, "full disk: frames keep flowing: %d -> %d" % (w1, w2))
        st, _, jpg = api.req("GET", "/preview/cam.jpg")
        check(st == 200 and jpg[:2] == b"\xff\xd8", "full disk: the preview keeps going")
        files = sorted(os.listdir(rec))
        frames = ffprobe_frames(os.path.join(rec, files[0])) if files else -1
        check(frames > 0, "full disk: what was recorded plays: %s %d" % (files, frames))
        check(d.p.poll() is None, "full disk: the daemon is still running")
        feeder.stop()
        d.signal(signal.SIGTERM)
        rc = d.wait(60)
        check(rc == 0, "SIGTERM with a running pipeline: exit 0 (got %s)" % rc)
        check("pipeline cam: stopped" in d.text(), "SIGTERM: the pipeline was stopped in order")
    finally:
        feeder.stop()
        if d.p.poll() is None:
            d.p.kill()
            d.wait()


def run_first_run(tmp):
    """A record_dir that does not exist yet is made (parents too, 0750); one
    that cannot be made (a file in the way) stops the recording alone: the
    pipeline runs and writes its outputs, /healthz, the API and /metrics say
    why, and a start through the API tries again."""
    made = os.path.join(tmp, "state", "made", "rec")
    blocker = os.path.join(tmp, "blocker")
    with open(blocker, "w") as f:
        f.write("in the way\n")
    blocked = os.path.join(blocker, "rec")
    out = os.path.join(tmp, "blocked-out.mkv")
    port = free_port()
    conf = "[mmsd]\nlisten = 127.0.0.1:%d\nmodel = %s\n\n" % (port, MODEL)
    for name, rec, output in (("made", made, "null"), ("blocked", blocked, out)):
        conf += ("[pipeline %s]\ninput = lavfi:testsrc2=size=320x240:rate=25\nmode = live\n"
                 "size = 64x128\nthreads = 1\noutput = %s\nrecord_dir = %s\n\n"
                 % (name, output, rec))
    d = Daemon(tmp, conf, name="firstrun")
    api = Api(port)

    def pipe(name):
        return api.json("GET", "/api/v1/pipelines/" + name)[1] or {}

    def rec_file(name):
        return pipe(name).get("recording", {}).get("file")

    def dir_mode(path):
        return oct(os.stat(path).st_mode & 0o7777) if os.path.isdir(path) else None

    try:
        running = wait_for(lambda: all(pipe(n).get("state") == "running"
                                       for n in ("made", "blocked")), 90)
        check(running, "first run: both pipelines run despite their record_dir: %s / %s"
              % (pipe("made").get("reasons"), pipe("blocked").get("reasons")))
        seg = wait_for(lambda: rec_file("made"), 20)
        check(seg and os.path.dirname(seg) == made,
              "a missing record_dir is made and recorded into: %s" % seg)
        check(dir_mode(made) == "0o750", "the made record_dir is 0750: %s" % dir_mode(made))

        p = pipe("blocked")
        r = p.get("recording", {})
        check(not r.get("recording") and r.get("errors", 0) >= 1
              and blocked in (r.get("error") or "") and "Not a directory" in r.get("error"),
              "unmakeable record_dir: the API's recording says why: %s" % r)
        w1 = p.get("stats", {}).get("written", 0)
        time.sleep(1.5)
        w2 = pipe("blocked").get("stats", {}).get("written", 0)
        check(w2 > w1 + 10, "unmakeable record_dir: frames keep flowing: %d -> %d" % (w1, w2))
        st, h = api.json("GET", "/healthz")
        reasons = (h or {}).get("reasons", [])
        check(st == 503 and any(x.startswith("blocked: recording failed:")
                                and "Not a directory" in x and "retrying" in x for x in reasons)
              and not any(x.startswith("made:") for x in reasons),
              "unmakeable record_dir: /healthz 503 names the recording, retried: %s" % reasons)
        m = api.req("GET", "/metrics")[2].decode()
        check(metric(m, "mmsd_recording_failed", pipeline="blocked") == 1
              and metric(m, "mmsd_recording", pipeline="blocked") == 0
              and metric(m, "mmsd_recording_retrying", pipeline="blocked") == 1
              and (metric(m, "mmsd_recording_errors_total", pipeline="blocked") or 0) >= 1
              and metric(m, "mmsd_recording_failed", pipeline="made") == 0
              and metric(m, "mmsd_recording_retrying", pipeline="made") == 0
              and metric(m, "mmsd_recording", pipeline="made") == 1,
              "unmakeable record_dir: mmsd_recording_failed 1, retrying 1, recording 0 "
              "(made: 0, 0, 1)")
        check("pipeline blocked: recording failed" in d.text(), "the failure is logged")

        os.unlink(blocker)
        st, r = api.json("POST", "/api/v1/pipelines/blocked/recording", {"action": "start"})
        check(st == 200 and r and r["recording"] and not r["error"],
              "the way cleared, POST recording start 200: %s" % r)
        seg2 = wait_for(lambda: rec_file("blocked"), 20)
        check(seg2 and os.path.dirname(seg2) == blocked and dir_mode(blocked) == "0o750",
              "the start made the record_dir and records into it: %s %s"
              % (seg2, dir_mode(blocked)))
        healthy = wait_for(lambda: api.req("GET", "/healthz")[0] == 200, 20)
        check(healthy, "recording again: /healthz 200: %s" % (api.json("GET", "/healthz")[1]))
        d.signal(signal.SIGTERM)
        rc = d.wait(60)
        check(rc == 0, "first run: SIGTERM exit 0 (got %s)" % rc)
        n = ffprobe_frames(out)
        check(n > 25, "the pipeline without a recording wrote its output file: %d frames" % n)
        n1, n2 = (ffprobe_frames(f) if f else -1 for f in (seg, seg2))
        check(n1 > 0 and n2 > 0, "both recordings play: %d, %d frames" % (n1, n2))
    finally:
        if d.p.poll() is None:
            d.p.kill()
            d.wait()


def run_modes(tmp):
    """The API reports the mode as configured and the one in effect: auto is
    live for a stream and offline for a file, and unknown (null) until its
    source has opened; live and offline are themselves even before."""
    clip = os.path.join(tmp, "modes-clip.mkv")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=160x120:rate=25", "-t", "2", "-c:v", "ffv1", clip], check=True)
    port, uport = free_port(), free_port(socket.SOCK_DGRAM)
    silent = [free_port(socket.SOCK_DGRAM) for _ in range(2)]  # nothing is sent there
    pipes = {  # name: (input, mode line, (mode, effective_mode) expected)
        "auto-stream": ("udp://127.0.0.1:%d" % uport, "", ("auto", "live")),
        "auto-file": (clip, "", ("auto", "offline")),
        "auto-waiting": ("udp://127.0.0.1:%d" % silent[0], "", ("auto", None)),
        "live": ("lavfi:testsrc2=size=160x120:rate=25", "mode = live\n", ("live", "live")),
        "live-waiting": ("udp://127.0.0.1:%d" % silent[1], "mode = live\n", ("live", "live")),
        "offline": ("lavfi:testsrc2=size=160x120:rate=25:duration=2", "mode = offline\n",
                    ("offline", "offline")),
    }
    conf = "[mmsd]\nlisten = 127.0.0.1:%d\nmodel = %s\n" % (port, MODEL)
    for name, (inp, mode, _) in pipes.items():
        conf += ("\n[pipeline %s]\ninput = %s\n%ssize = 64x128\nthreads = 1\noutput = null\n"
                 % (name, inp, mode))
    feeder = Feeder(uport)
    feeder.start()
    d = Daemon(tmp, conf, name="modes")
    api = Api(port)

    def listed():
        return {p["name"]: p for p in (api.json("GET", "/api/v1/pipelines")[1]
                                       or {"pipelines": []})["pipelines"]}

    def settled():
        ps = listed()
        return len(ps) == len(pipes) and all(
            ps[n]["state"] in (("running",) if n == "auto-stream" else ("running", "finished"))
            for n in ("auto-stream", "auto-file", "live", "offline")) and ps

    try:
        ps = wait_for(settled, 90) or listed()
        for name, (_, _, want) in pipes.items():
            p = ps.get(name, {})
            got = (p.get("mode", "absent"), p.get("effective_mode", "absent"))
            check(got == want, "%s (%s): mode, effective_mode %s, want %s"
                  % (name, p.get("state"), got, want))
            st, one = api.json("GET", "/api/v1/pipelines/" + name)
            one = one or {}
            check(st == 200 and (one.get("mode"), one.get("effective_mode", "absent")) == want,
                  "/api/v1/pipelines/%s says the same" % name)
        check(ps.get("auto-waiting", {}).get("state") in ("starting", "connecting"),
              "auto-waiting has no source yet: %s" % ps.get("auto-waiting", {}).get("state"))
    finally:
        feeder.stop()
        if d.p.poll() is None:
            d.p.kill()
            d.wait()


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



def run_any_port(tmp):
    """listen with port 0: the kernel picks a free port and the ready line names it."""
    d = Daemon(tmp, "[mmsd]\nlisten = 127.0.0.1:0\nmodel = %s\n" % MODEL, name="anyport")
    try:
        m = wait_for(lambda: re.search(r"ready: .*API on http://127\.0\.0\.1:(\d+)", d.text()), 60)
        check(m and int(m.group(1)) > 0, "port 0: the ready line names the bound port: %s"
              % d.text().strip()[-300:])
        if m:
            st, _, _ = Api(int(m.group(1))).req("GET", "/healthz")
            check(st in (200, 503), "port 0: /healthz answers on the named port (%s)" % st)
    finally:
        d.signal(signal.SIGTERM)
        check(d.wait(30) == 0, "port 0: exits 0 on SIGTERM")


def run_bad_font(tmp):
    """font names a file that is not there: one warning naming it, and mmsd runs on with
    the bitmap font."""
    font = os.path.join(tmp, "missing.ttf")
    d = Daemon(tmp, "[mmsd]\nlisten = 127.0.0.1:0\nmodel = %s\nfont = %s\n" % (MODEL, font),
               name="badfont")
    try:
        m = wait_for(lambda: re.search(r"ready: .*API on http://127\.0\.0\.1:(\d+)", d.text()), 60)
        check(m, "bad font: mmsd still starts: %s" % d.text().strip()[-300:])
        want = "<4>font %s: No such file or directory; text on video is drawn with the built-in " \
               "8x8 font" % font
        check(d.text().count(want) == 1, "bad font: one warning naming it: %s"
              % d.text().strip()[-400:])
    finally:
        d.signal(signal.SIGTERM)
        check(d.wait(30) == 0, "bad font: exits 0 on SIGTERM")


if __name__ == "__main__":
    sys.exit(main())
