"""What the mmsd tests share: the daemon, a UDP feeder, the systemd notify
socket, HTTP calls and small checks. Real processes and sockets only."""
import http.client
import json
import os
import re
import socket
import subprocess
import threading
import time

SRC = os.environ["MMS_SOURCE_DIR"]
BUILD = os.environ["MMS_BUILD_DIR"]
MMSD = os.path.join(BUILD, "mmsd")
MMS = os.path.join(BUILD, "mms")
MODEL = os.path.join(SRC, "models", "mms-rt.safetensors")

failures = []


def check(cond, what):
    """Reports one behaviour; the test fails at the end if any check failed."""
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
        # MPEG-TS may list the stream once per program: the first line.
        return int(r.stdout.strip().splitlines()[0].split(",")[0])
    except (ValueError, IndexError):
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
    def __init__(self, tmp, conf_text, name="mmsd", env=None, preexec=None, binary=None):
        self.conf = os.path.join(tmp, name + ".conf")
        self.log = os.path.join(tmp, name + ".log")
        self.write(conf_text)
        e = dict(os.environ)
        e.update(env or {})
        self.logf = open(self.log, "w")
        self.p = subprocess.Popen([binary or MMSD, "-c", self.conf], stdout=self.logf, stderr=self.logf,
                                  env=e, preexec_fn=preexec)

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




def finish(name):
    if failures:
        print("%s: %d check(s) failed" % (name, len(failures)))
        for f in failures:
            print("  " + f)
        return 1
    print("%s: all checks passed" % name)
    return 0
