#!/usr/bin/python3
"""A network output whose receiver goes away and comes back: mmsd streams
MPEG-TS over tcp:// to a receiver on 127.0.0.1 (a real socket here), the
receiver closes, mmsd reports the output down while its frames keep flowing,
the receiver listens again and mmsd reopens the output by itself, and what
the new receiver gets is video ffprobe decodes.

Env: MMS_BUILD_DIR, MMS_SOURCE_DIR.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mmsd_harness import (MODEL, Api, Daemon, Feeder, check, ffprobe_frames, finish,  # noqa: E402
                          free_port, metric, wait_for)


class Receiver:
    """Accepts one connection on 127.0.0.1:port and keeps what arrives."""

    def __init__(self, port, path):
        self.path, self.bytes, self.conn = path, 0, None
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", port))
        self.ls.listen(1)
        self.out = open(path, "wb")
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        try:
            self.conn, _ = self.ls.accept()
            while True:
                b = self.conn.recv(65536)
                if not b:
                    break
                self.out.write(b)
                self.bytes += len(b)
        except OSError:
            pass

    def close(self):
        for s in (self.conn, self.ls):
            if s:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
        self.t.join(5)
        self.out.close()

    def first_byte(self):
        with open(self.path, "rb") as f:
            return f.read(1)


def counters(api):
    st, _, body = api.req("GET", "/metrics")
    text = body.decode() if st == 200 else ""
    get = lambda n: metric(text, n, pipeline="cam")  # noqa: E731
    return {"errors": get("mmsd_output_errors_total"), "reopens": get("mmsd_output_reopens_total"),
            "down": get("mmsd_outputs_down")}


def written(api):
    st, _, body = api.req("GET", "/metrics")
    return metric(body.decode(), "mmsd_frames_total", pipeline="cam", stage="written") or 0


def main():
    tmp = tempfile.mkdtemp(prefix="mms-output-")
    port, uport, oport = free_port(), free_port(socket.SOCK_DGRAM), free_port()
    conf = ("[mmsd]\nlisten = 127.0.0.1:%d\nmodel = %s\n\n[pipeline cam]\n"
            "input = udp://127.0.0.1:%d\nmode = live\nsize = 160x288\nthreads = 1\n"
            "output = tcp://127.0.0.1:%d\n" % (port, MODEL, uport, oport))
    first = Receiver(oport, os.path.join(tmp, "first.ts"))
    feeder = Feeder(uport)
    feeder.start()
    d = Daemon(tmp, conf)
    api = Api(port)
    second = None
    try:
        up = wait_for(lambda: api.req("GET", "/healthz")[0] == 200 and first.bytes > 20000, 90)
        check(up, "the receiver gets the stream (%d bytes) and /healthz is 200" % first.bytes)
        c = counters(api)
        check(c == {"errors": 0, "reopens": 0, "down": 0}, "no output errors yet: %s" % c)

        first.close()
        down = wait_for(lambda: counters(api)["down"] == 1, 20)
        c = counters(api)
        check(down and c["errors"] >= 1, "the receiver gone, the output is down: %s" % c)
        st, _, body = api.req("GET", "/healthz")
        check(st == 503 and b"an output is down" in body and b"127.0.0.1:%d" % oport in body,
              "/healthz is 503 and names the output: %d %r" % (st, body[:300]))
        w0 = written(api)
        time.sleep(2)
        check(written(api) - w0 >= 30,
              "frames keep flowing while the output is down (+%d in 2 s)" % (written(api) - w0))
        check(counters(api)["reopens"] == 0, "no reopen while nobody listens")

        second = Receiver(oport, os.path.join(tmp, "second.ts"))
        back = wait_for(lambda: counters(api)["reopens"] >= 1, 40)
        check(back, "the output is reopened once the receiver listens: %s" % counters(api))
        got = wait_for(lambda: second.bytes > 30000, 20)
        check(got, "the new receiver gets the stream (%d bytes)" % second.bytes)
        time.sleep(2)  # two more seconds of video for ffprobe
        check(counters(api)["down"] == 0, "no output down after the reopen")
        check(wait_for(lambda: api.req("GET", "/healthz")[0] == 200, 10),
              "/healthz is 200 again")
        st, doc = api.json("GET", "/api/v1/pipelines/cam")
        stats = (doc or {}).get("stats", {})
        check(stats.get("output_reopens", 0) >= 1 and stats.get("outputs_down") == 0,
              "the API reports the reopen: %s" % stats)
    finally:
        feeder.stop()
        d.signal(signal.SIGTERM)
        rc = d.wait()
        if second:
            second.close()
    check(rc == 0, "SIGTERM: exit 0 (%s)" % rc)
    check(second is not None and second.first_byte() == b"\x47",
          "the reopened stream starts on an MPEG-TS packet")
    n = ffprobe_frames(os.path.join(tmp, "second.ts")) if second else -1
    check(n >= 25, "ffprobe decodes the reopened stream: %d frames" % n)
    log = d.text()
    check("an output failed" in log and "open again" in log,
          "the log says the output failed and opened again")
    check("ERROR: AddressSanitizer" not in log and "runtime error" not in log,
          "no sanitizer report in the daemon log")
    return finish("output")


if __name__ == "__main__":
    sys.exit(main())
