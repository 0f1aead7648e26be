#!/usr/bin/python3
"""Fan-out through a media server: mmsd pushes ONE RTMP stream to a real
nginx with Debian's libnginx-mod-rtmp, run from the repo's
systemd/nginx-rtmp.conf.example (only its listen address changed), and
several viewers (ffmpeg clients standing in for OR displays) pull it.

  - three viewers each decode frames of the stream mmsd publishes;
  - one viewer is killed (a display unplugged): mmsd's frames keep flowing,
    its output stays up (mmsd_outputs_down 0, no output error, no reopen,
    /healthz 200), nginx saw a single publish, and the two other viewers
    keep decoding; a fourth viewer joining later decodes too;
  - the stream key is not printed by mmsd: not in its log, /healthz, the
    API, /metrics or the status page, which show rtmp://.../live/***;
  - mmsd_source_fps and mmsd_pipeline_live of the real feed are 25 and 1;
  - nginx restarted: mmsd reports its output down, reopens it by itself
    once nginx is back, and a viewer decodes the stream again.

The feed is a real ffmpeg sending MPEG-TS over UDP at 25 fps. A missing
nginx or RTMP module fails the test. Env: MMS_BUILD_DIR, MMS_SOURCE_DIR.
"""
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mmsd_harness import (MODEL, SRC, Api, Daemon, Feeder, check, failures,  # noqa: E402
                          finish, free_port, metric, wait_for)

MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
EXAMPLE = os.path.join(SRC, "systemd", "nginx-rtmp.conf.example")
# Under ThreadSanitizer mmsd composes a few frames a second, not 25.
SLOW = os.environ.get("MMS_SANITIZE") == "thread"


class Nginx:
    """nginx in the foreground with its prefix, pid and logs in tmp: the
    main context written here, the rtmp block the repo's example."""

    def __init__(self, tmp, port):
        self.tmp, self.port = tmp, port
        self.log = os.path.join(tmp, "nginx-error.log")
        with open(EXAMPLE) as f:
            rtmp, n = re.subn(r"(?m)^(\s*)listen 1935;$", r"\1listen 127.0.0.1:%d;" % port,
                              f.read())
        check(n == 1, "the example has one 'listen 1935;' to change")
        with open(os.path.join(tmp, "mmsd-rtmp.conf"), "w") as f:
            f.write(rtmp)
        self.conf = os.path.join(tmp, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write("load_module %s;\ndaemon off;\nworker_processes 1;\npid %s/nginx.pid;\n"
                    "error_log %s info;\nevents { worker_connections 64; }\n"
                    "include %s/mmsd-rtmp.conf;\n" % (MODULE, tmp, self.log, tmp))
        self.bin = shutil.which("nginx") or "/usr/sbin/nginx"
        self.p = None

    def test(self):
        r = subprocess.run([self.bin, "-t", "-p", self.tmp, "-c", self.conf, "-e", self.log],
                           capture_output=True, text=True)
        return r.returncode == 0, r.stderr.strip()

    def start(self):
        self.p = subprocess.Popen([self.bin, "-p", self.tmp, "-c", self.conf, "-e", self.log],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=open(os.path.join(self.tmp, "nginx.stderr"), "w"))

    def listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.5).close()
            return True
        except OSError:
            return False

    def text(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.terminate()  # fast shutdown: the master ends its worker
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


class Viewer:
    """ffmpeg pulling the stream and decoding every frame into nothing;
    -progress keeps the count of frames decoded so far in a file."""

    def __init__(self, tmp, i, url):
        self.progress = os.path.join(tmp, "viewer%d.progress" % i)
        self.err = open(os.path.join(tmp, "viewer%d.log" % i), "w")
        self.p = subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-stats_period", "0.25",
                                   "-progress", self.progress, "-i", url, "-map", "0:v:0",
                                   "-f", "null", "-"],
                                  stdout=subprocess.DEVNULL, stderr=self.err)

    def frames(self):
        try:
            with open(self.progress) as f:
                got = re.findall(r"(?m)^frame=(\d+)$", f.read())
            return int(got[-1]) if got else 0
        except OSError:
            return 0

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        self.err.close()


def scrape(api):
    st, _, body = api.req("GET", "/metrics")
    return body.decode() if st == 200 else ""


def main():
    tmp = tempfile.mkdtemp(prefix="mms-fanout-")
    if not check(os.path.exists(MODULE), "%s exists (libnginx-mod-rtmp)" % MODULE):
        return finish("fanout")
    port, uport, rport = free_port(), free_port(socket.SOCK_DGRAM), free_port()
    key = "or1-" + secrets.token_hex(12)
    url = "rtmp://127.0.0.1:%d/live/%s" % (rport, key)
    shown = "rtmp://127.0.0.1:%d/live/***" % rport
    nginx = Nginx(tmp, rport)
    ok, why = nginx.test()
    if not check(ok, "nginx -t accepts the repo's rtmp block: %s" % why[-300:]):
        return finish("fanout")
    nginx.start()
    feeder = Feeder(uport)
    d = viewers = None
    try:
        check(wait_for(nginx.listening, 10), "nginx listens on 127.0.0.1:%d" % rport)
        feeder.start()
        conf = ("[mmsd]\nlisten = 127.0.0.1:%d\nmodel = %s\n\n[pipeline or1]\n"
                "input = udp://127.0.0.1:%d\nmode = live\nsize = 64x128\nthreads = 1\n"
                "output = %s\n" % (port, MODEL, uport, url))
        d = Daemon(tmp, conf)
        api = Api(port)
        published = wait_for(lambda: api.req("GET", "/healthz")[0] == 200 and
                             "publish: name='%s'" % key in nginx.text(), 90)
        check(published, "mmsd runs (/healthz 200) and publishes to nginx")

        viewers = [Viewer(tmp, i, url) for i in range(3)]
        want = 10 if SLOW else 50
        got = wait_for(lambda: all(v.frames() >= want for v in viewers), 40)
        check(got, "3 viewers decode frames through nginx: %s" % [v.frames() for v in viewers])
        check(nginx.text().count("play: name='%s'" % key) == 3, "nginx served 3 plays")

        text = scrape(api)
        m = lambda n, t=None: metric(t or text, n, pipeline="or1")  # noqa: E731
        before = {n: m(n) for n in ("mmsd_output_errors_total", "mmsd_output_reopens_total",
                                    "mmsd_outputs_down")}
        check(before == {"mmsd_output_errors_total": 0, "mmsd_output_reopens_total": 0,
                         "mmsd_outputs_down": 0}, "the output is up, never failed: %s" % before)
        check(m("mmsd_source_fps") == 25 and m("mmsd_pipeline_live") == 1,
              "mmsd_source_fps %s, mmsd_pipeline_live %s (a live 25 fps feed)"
              % (m("mmsd_source_fps"), m("mmsd_pipeline_live")))

        # A display unplugged: its connection dies without a goodbye.
        w0 = metric(text, "mmsd_frames_total", pipeline="or1", stage="written")
        f0 = [v.frames() for v in viewers]
        viewers[0].kill()
        downs, statuses = [], []
        end = time.time() + 4
        while time.time() < end:
            downs.append(m("mmsd_outputs_down", scrape(api)))
            statuses.append(api.req("GET", "/healthz")[0])
            time.sleep(0.25)
        text = scrape(api)
        w1 = metric(text, "mmsd_frames_total", pipeline="or1", stage="written")
        f1 = [v.frames() for v in viewers]
        check(w1 - w0 >= (8 if SLOW else 75),
              "mmsd's frames keep flowing after a viewer left (+%d in 4 s)" % (w1 - w0))
        check(set(downs) == {0} and set(statuses) == {200},
              "its output stays up all the while (mmsd_outputs_down %s, /healthz %s)"
              % (sorted(set(downs)), sorted(set(statuses))))
        after = {n: m(n) for n in before}
        check(after == before, "no output error or reopen: %s" % after)
        check(all(f1[i] - f0[i] >= (8 if SLOW else 75) for i in (1, 2)),
              "the other two viewers keep decoding (%s -> %s)" % (f0[1:], f1[1:]))
        check(nginx.text().count("publish: name='%s'" % key) == 1,
              "nginx saw one publish: mmsd never had to reconnect")

        late = Viewer(tmp, 3, url)
        viewers.append(late)
        check(wait_for(lambda: late.frames() >= want, 30),
              "a viewer joining later decodes too (%d frames)" % late.frames())

        # The key is mmsd's secret: shown redacted wherever mmsd shows the URL.
        st, doc = api.json("GET", "/api/v1/pipelines/or1")
        outs = [o.get("output") for o in (doc or {}).get("outputs", [])]
        check(shown in outs, "the API names the output %s: %s" % (shown, outs))
        seen = {p: api.req("GET", p)[2].decode(errors="replace")
                for p in ("/healthz", "/api/v1/pipelines", "/api/v1/pipelines/or1", "/metrics",
                          "/")}
        leaks = [p for p, body in seen.items() if key in body]
        check(not leaks, "no answer of mmsd holds the stream key: %s" % leaks)

        # nginx restarted (an upgrade): mmsd's output goes down and comes
        # back by itself, and displays can play again.
        for v in viewers:
            v.kill()
        nginx.stop()
        down = wait_for(lambda: m("mmsd_outputs_down", scrape(api)) == 1, 20)
        check(down, "nginx gone: mmsd reports its output down")
        w0 = metric(scrape(api), "mmsd_frames_total", pipeline="or1", stage="written")
        nginx.start()
        back = wait_for(lambda: m("mmsd_output_reopens_total", scrape(api)) >= 1 and
                        m("mmsd_outputs_down", scrape(api)) == 0, 40)
        w1 = metric(scrape(api), "mmsd_frames_total", pipeline="or1", stage="written")
        check(back and w1 > w0, "nginx back: mmsd reopened its output by itself, frames flowed "
              "meanwhile (+%d)" % (w1 - w0))
        again = Viewer(tmp, 4, url)
        viewers = [again]
        check(wait_for(lambda: again.frames() >= want, 30),
              "a viewer decodes the stream after the restart (%d frames)" % again.frames())
    finally:
        for v in viewers or []:
            v.kill()
        feeder.stop()
        rc = None
        if d:
            d.signal(signal.SIGTERM)
            rc = d.wait()
        nginx.stop()
    check(rc == 0, "SIGTERM: exit 0 (%s)" % rc)
    log = d.text() if d else ""
    check(log and key not in log and "an output failed: %s" % shown in log and
          "an output is open again: %s" % shown in log,
          "mmsd's log names the output failing and open again as %s, never the key" % shown)
    check("ERROR: AddressSanitizer" not in log and "runtime error" not in log,
          "no sanitizer report in the daemon log")
    if failures:
        print("--- mmsd log (key redacted) ---\n" + log.replace(key, "<KEY>")[-3000:])
        print("--- nginx log ---\n" + nginx.text()[-3000:])
    if not failures:  # kept for a look when something failed
        shutil.rmtree(tmp, ignore_errors=True)
    return finish("fanout")


if __name__ == "__main__":
    sys.exit(main())
