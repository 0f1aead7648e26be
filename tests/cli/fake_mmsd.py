#!/usr/bin/env python3
"""A stand-in for mmsd's HTTP API, for tests/cli/test_ctl.sh.

Serves canned pipelines in the shape the daemon's API promises and logs
every request (method, path, Host, Authorization, Content-Type, body) as
one JSON line, so the test can check what `mms ctl` sent and not only what
it printed. Python standard library only.

Pipelines with special names misbehave on purpose: "slow" never answers
in time, "garbage" answers something that is not HTTP, "short" cuts its
body short, "huge" answers 17 MiB, "drop" closes without answering,
"notjson" answers 200 with text. MISBEHAVIOURS lists the rest: chunked
bodies whole, cut and broken, a bad status line, bodies that stall or
trickle, errors without mmsd's JSON, a redirect.
"""
import argparse
import copy
import json
import os
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OR1 = {
    "name": "or1", "state": "running", "reasons": [], "input": "udp://127.0.0.1:5000",
    "mode": "auto", "effective_mode": "live", "model": "/usr/share/mmsd/models/mms-rt.safetensors",
    "source": {"width": 854, "height": 480, "fps": 25.0, "signal": True},
    "settings": {"style": "fill", "alpha": 0.45, "color": "00ff66", "every": 1},
    "stats": {"decoded": 100, "inferred": 90, "dropped": 10, "skipped": 4, "written": 100,
              "reconnects": 0, "decode_errors": 0, "fps": 24.9},
    "recording": {"enabled": True, "recording": True,
                  "file": "/var/lib/mmsd/rec/or1-20261126T201000Z.mp4",
                  "segments": 1, "errors": 0, "error": ""},
    "latency_ms": {"infer": {"p50": 20.1, "p95": 25.0, "p99": 30.2, "max": 41.0}},
}
# Recording configured but off; fields a later daemon might add; no fps yet.
OR2 = {
    "name": "or2", "state": "no-signal", "reasons": ["no frame for 5 s"],
    "input": "srt://10.0.0.2:9000", "mode": "live", "healthy": False,
    "future": {"nested": [1, 2]},
    "source": {"width": 1920, "height": 1080, "signal": False},
    "settings": {"style": "outline", "alpha": 0.3, "color": "ff0000", "every": 2, "new": True},
    "stats": {"decoded": 5, "inferred": 5, "dropped": 0, "written": 5, "output_errors": 0},
    "recording": {"enabled": True, "recording": False, "file": None, "segments": 0,
                  "errors": 0, "error": None},
    "latency_ms": {},
}
# Recording failed.
OR3 = {
    "name": "or3", "state": "failed", "reasons": ["cannot open input"],
    "stats": {"decoded": 0, "inferred": 0, "dropped": 0, "written": 0, "fps": 0.0},
    "recording": {"enabled": True, "recording": False, "file": "/rec/or3.mp4",
                  "segments": 2, "errors": 1, "error": "disk full"},
}
# The least a pipeline may say: recording not configured, nothing measured.
OR4 = {"name": "or4", "state": "starting"}
PIPELINES = [OR1, OR2, OR3, OR4]

METRICS = (
    "# HELP mmsd_frames_decoded_total Frames decoded.\n"
    "# TYPE mmsd_frames_decoded_total counter\n"
    'mmsd_frames_decoded_total{pipeline="or1"} 100\n'
    'mmsd_frames_decoded_total{pipeline="or2"} 5\n'
    'mmsd_fps{pipeline="or1"} 24.9\n'
)

STYLES = ("fill", "outline", "mask", "off")


def check_setting(key, value):
    """The daemon's message for a bad setting, or None."""
    if key == "style" and value not in STYLES:
        return 'style="%s": expected fill, outline, mask or off' % value
    if key == "alpha":
        try:
            a = float(value)
        except ValueError:
            return 'alpha="%s": not a number' % value
        if not 0 <= a <= 1:
            return 'alpha="%s": out of range 0..1' % value
    if key == "color" and not re.fullmatch(r"[0-9a-fA-F]{6}", value):
        return 'color="%s": expected RRGGBB' % value
    if key == "every" and not (value.isdigit() and int(value) >= 1):
        return 'every="%s": expected a whole number from 1' % value
    if key not in ("style", "alpha", "color", "every"):
        return "unknown setting '%s'" % key
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-mmsd"

    def log_message(self, fmt, *args):
        pass

    def log_request_line(self, body):
        entry = {
            "method": self.command, "path": self.path,
            "host": self.headers.get("Host"),
            "auth": self.headers.get("Authorization"),
            "content_type": self.headers.get("Content-Type"),
            "connection": self.headers.get("Connection"),
            "body": body.decode("utf-8", "replace") if body else None,
        }
        with self.server.log_lock:
            with open(self.server.log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def send(self, status, body, ctype="application/json", headers=()):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def send_json(self, status, obj):
        self.send(status, json.dumps(obj) + "\n")

    def error(self, status, msg, headers=()):
        self.send(status, json.dumps({"error": msg}) + "\n", headers=headers)

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        self.log_request_line(body)
        path = self.path
        if self.server.token and path != "/healthz" and \
                self.headers.get("Authorization") != "Bearer " + self.server.token:
            return self.error(401, "Unauthorized",
                              [("WWW-Authenticate", 'Bearer realm="mmsd"')])
        if path == "/healthz":
            return self.healthz()
        if path == "/metrics":
            return self.metrics()
        if path == "/api/v1/pipelines":
            if self.command != "GET":
                return self.error(405, "method not allowed (allowed: GET)")
            return self.send_json(200, {"pipelines": PIPELINES})
        m = re.fullmatch(r"/api/v1/pipelines/([^/]*)(/recording)?", path)
        if not m:
            return self.error(404, "not found")
        name, rec = m.group(1), m.group(2)
        if self.misbehave(name):
            return None
        p = next((p for p in PIPELINES if p["name"] == name), None)
        if p is None:
            return self.error(404, "no pipeline '%s'" % name)
        if rec:
            if self.command != "POST":
                return self.error(405, "method not allowed (allowed: POST)")
            return self.recording(p, body)
        if self.command == "GET":
            return self.send_json(200, p)
        if self.command == "PATCH":
            return self.patch(p, body)
        return self.error(405, "method not allowed (allowed: GET, PATCH)")

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = handle_any

    def healthz(self):
        # No Content-Length: the body ends when the connection closes.
        status = self.server.health_status()
        ok = status == 200
        body = json.dumps({"status": "ok" if ok else "unhealthy",
                           "reasons": [] if ok else ["or3: cannot open input"],
                           "pipelines": {}}) + "\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body.encode())
        self.close_connection = True

    def metrics(self):
        # Chunked, in small pieces, the way a proxy might pass it on.
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        data = METRICS.encode()
        for i in range(0, len(data), 7):
            piece = data[i:i + 7]
            self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\nX-Trailer: yes\r\n\r\n")
        self.close_connection = True

    def head(self, status, headers):
        self.wfile.write(b"HTTP/1.1 %s\r\n" % status.encode())
        for h in headers + ["Connection: close"]:
            self.wfile.write(h.encode() + b"\r\n")
        self.wfile.write(b"\r\n")

    def chunked(self, status, data, piece=5, end=b"0\r\n\r\n"):
        self.head(status, ["Content-Type: application/json", "Transfer-Encoding: chunked"])
        for i in range(0, len(data), piece):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data[i:i + piece]), data[i:i + piece]))
        self.wfile.write(end)

    def trickle(self):
        """One byte every 0.1 s of a 1000-byte body: never idle, never done."""
        self.head("200 OK", ["Content-Type: application/json", "Content-Length: 1000"])
        for _ in range(1000):
            self.wfile.write(b" ")
            time.sleep(0.1)

    def misbehave(self, name):
        if name not in MISBEHAVIOURS and name not in ("slow", "garbage", "short", "huge",
                                                      "drop", "notjson"):
            return False
        try:
            self.misbehave_as(name)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should have
        self.close_connection = True
        return True

    def misbehave_as(self, name):
        w = self.wfile
        if name in MISBEHAVIOURS:
            MISBEHAVIOURS[name](self)
        elif name == "slow":
            time.sleep(60)
            self.send_json(200, OR1)
        elif name == "garbage":
            w.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        elif name == "short":
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{\"na")
        elif name == "huge":
            self.send(200, b'"' + b"x" * (17 << 20) + b'"')
        elif name == "drop":
            pass
        elif name == "notjson":
            self.send(200, "all fine\n", "text/plain")

    def recording(self, p, body):
        try:
            action = json.loads(body).get("action")
        except (ValueError, AttributeError):
            action = None
        if action not in ("start", "stop"):
            return self.error(400, 'action must be "start" or "stop"')
        if "recording" not in p:
            return self.error(409, "pipeline '%s' has no record_dir: recording is not "
                                   "configured" % p["name"])
        r = copy.deepcopy(p["recording"])
        r["recording"] = action == "start"
        if action == "start":
            r["error"] = ""
            r["file"] = r.get("file") or "/var/lib/mmsd/rec/%s-new.mp4" % p["name"]
        # or3's state_dir is full: the change is made, and not saved.
        r["saved"] = p["name"] != "or3"
        r["save_error"] = None if r["saved"] else \
            "cannot write /var/lib/mmsd/recording-off.tmp: No space left\x1b[2J on device"
        return self.send_json(200, r)

    def patch(self, p, body):
        try:
            changes = json.loads(body)
        except ValueError:
            return self.error(400, "the body is not JSON")
        if not isinstance(changes, dict) or not changes:
            return self.error(400, "no settings given")
        settings = copy.deepcopy(p.get("settings", {}))
        for k, v in changes.items():
            # Stricter than mmsd, which also takes numbers: ctl promises strings.
            if not isinstance(v, str):
                return self.error(400, "%s: the value must be a string" % k)
            msg = check_setting(k, v)
            if msg:
                return self.error(400, msg)
            settings[k] = float(v) if k == "alpha" else int(v) if k == "every" else v
        return self.send_json(200, {"settings": settings})


MISBEHAVIOURS = {
    # OR1 in 5-byte chunks: must read as if sent whole.
    "chunked": lambda h: h.chunked("200 OK", json.dumps(OR1).encode()),
    "chunkederr": lambda h: h.chunked("400 Bad Request",
                                      json.dumps({"error": "chunked error"}).encode()),
    "chunkcut": lambda h: h.chunked("200 OK", json.dumps(OR1).encode(), end=b""),
    "badchunk": lambda h: h.chunked("200 OK", b"", end=b"zz\r\n{}\r\n0\r\n\r\n"),
    "hugechunked": lambda h: h.chunked("200 OK", b"x" * (17 << 20), piece=1 << 20),
    "badstatus": lambda h: (h.head("2x0 OK", ["Content-Length: 2"]), h.wfile.write(b"{}")),
    # Headers and 10 of 100 bytes, then nothing.
    "slowbody": lambda h: (h.head("200 OK", ["Content-Length: 100"]),
                           h.wfile.write(b'{"name": "'), time.sleep(60)),
    "trickle": lambda h: h.trickle(),
    "emptyerr": lambda h: h.head("503 Service Unavailable", ["Content-Length: 0"]),
    # A proxy's error page: not JSON, two lines, an escape sequence.
    "plainerr": lambda h: h.send(502, "Bad Gateway\n\x1b[31mfrom the proxy\n", "text/plain"),
    "redirect": lambda h: h.head("302 Found", ["Location: /api/v1/pipelines/or1",
                                               "Content-Length: 0"]),
}


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def health_status(self):
        try:
            with open(self.health_file) as f:
                return int(f.read().strip())
        except (OSError, ValueError, TypeError):
            return 200


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port-file", required=True, help="where to write the bound port")
    ap.add_argument("--log", required=True, help="JSON lines, one per request")
    ap.add_argument("--token", help="require 'Authorization: Bearer TOKEN' (not for /healthz)")
    ap.add_argument("--health-file", help="holds the status /healthz answers (default 200)")
    ap.add_argument("--bind", default="127.0.0.1", help="address to listen on")
    a = ap.parse_args()

    if ":" in a.bind:
        Server.address_family = socket.AF_INET6
    srv = Server((a.bind, 0), Handler)
    srv.log_path, srv.log_lock = a.log, threading.Lock()
    srv.token, srv.health_file = a.token, a.health_file
    open(a.log, "a").close()
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, a.port_file)  # the test waits for the file: whole or absent
    srv.serve_forever()


if __name__ == "__main__":
    main()
