#!/usr/bin/python3
"""mmsd against the attacks of issue 14, end to end: real daemons on
127.0.0.1, real sockets.

Secrets in URLs (finding 1): sources and outputs with a password, a
passphrase and an RTMP stream key; none of them shows in /healthz (open
without the token), the API, the status page, /metrics, the log or
--print-config, while the redacted URLs still say which camera failed.
Browsers (finding 2): a foreign Host (DNS rebinding) gets 421, a
cross-origin or text/plain POST to the recording is refused and the
recording goes on; allowed_hosts lets a configured name in; HEAD answers
like GET. Held sockets (finding 5): 64 idle connections do not keep a
client with the token out. Tokens (finding 7): a 600-character token counts
whole, 4096 characters is the most, and a longer one stops the start with
a message that does not show it.

The secrets are made up; failures print what was checked, never a secret.
Env: MMS_BUILD_DIR (mmsd), MMS_SOURCE_DIR.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mmsd_harness import (MMSD, MODEL, Api, Daemon, check, finish, free_port,  # noqa: E402
                          wait_for)

CAM_PW = "CamPassw0rd"
OUT_PW = "OutPassw0rd"
PASSPHRASE = "Sup3rSecretPhrase"
STREAM_KEY = "live_1234_abcdef"
SECRETS = (CAM_PW, OUT_PW, PASSPHRASE, STREAM_KEY)


def leaked(text):
    """Which secrets (by number, not by value) a text holds."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return [i for i, s in enumerate(SECRETS) if s in text]


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def stop(d):
    if d.p.poll() is None:
        d.signal(signal.SIGTERM)
        if d.wait(60) is None:
            d.p.kill()


def run_secrets(tmp):
    port, closed, uport = free_port(), free_port(), free_port(socket.SOCK_DGRAM)
    token = write(os.path.join(tmp, "token"), "s3cret-token\n")
    conf = ("[mmsd]\nlisten = 127.0.0.1:%d\ntoken_file = %s\nlog_level = debug\nmodel = %s\n\n"
            "[pipeline cam]\ninput = rtsp://admin:%s@127.0.0.1:%d/stream1\nsize = 64x128\n"
            "threads = 1\noutput = null\n\n"
            "[pipeline out]\ninput = lavfi:testsrc2=size=160x120:rate=25\nmode = live\n"
            "size = 64x128\nthreads = 1\n"
            "output = udp://mms:%s@127.0.0.1:%d?pkt_size=1316&passphrase=%s\n\n"
            "[pipeline rtmp]\ninput = lavfi:testsrc2=size=160x120:rate=25\nmode = live\n"
            "size = 64x128\nthreads = 1\noutput = rtmp://127.0.0.1:%d/live/%s\n"
            % (port, token, MODEL, CAM_PW, closed, OUT_PW, uport, PASSPHRASE, closed,
               STREAM_KEY))
    d = Daemon(tmp, conf, name="secrets")
    noauth, api = Api(port), Api(port, token="s3cret-token")
    try:
        def cam_reason():
            h = noauth.json("GET", "/healthz")[1] or {}
            return [r for r in h.get("reasons", []) if r.startswith("cam: cannot start")]

        reasons = wait_for(cam_reason, 90)
        check(reasons and "rtsp://***@127.0.0.1:%d/stream1" % closed in reasons[0],
              "/healthz still names the camera that failed, its password hidden")
        wait_for(lambda: (api.json("GET", "/api/v1/pipelines/out")[1] or {})
                 .get("state") == "running", 60)
        time.sleep(2)
        st, _, health = noauth.req("GET", "/healthz")
        check(st == 503 and not leaked(health),
              "/healthz without the token shows no secret (leaks: %s)" % leaked(health))
        check(b"rtmp://127.0.0.1:%d/live/***" % closed in health,
              "/healthz still names the RTMP output that failed, its stream key hidden")
        st, _, listed = api.req("GET", "/api/v1/pipelines")
        check(st == 200 and not leaked(listed),
              "the API shows no secret (leaks: %s)" % leaked(listed))
        st, p = api.json("GET", "/api/v1/pipelines/out")
        outs = [o["output"] for o in (p or {}).get("outputs", [])]
        check(("udp://***@127.0.0.1:%d?pkt_size=1316&passphrase=***" % uport) in outs,
              "the API names the output with its secrets hidden")
        st, _, page = noauth.req("GET", "/?access_token=s3cret-token")
        check(st == 200 and not leaked(page), "the status page shows no secret (leaks: %s)"
              % leaked(page))
        st, _, metrics = api.req("GET", "/metrics")
        check(st == 200 and not leaked(metrics) and
              b'output="udp://***@127.0.0.1:%d' % uport in metrics,
              "metric labels name the output, its secrets hidden (leaks: %s)" % leaked(metrics))
    finally:
        stop(d)
    log = d.text()
    check(not leaked(log), "the log shows no secret (leaks: %s)" % leaked(log))
    check("rtsp://***@127.0.0.1" in log, "the log still names the camera")
    r = subprocess.run([MMSD, "-c", d.conf, "--print-config"], capture_output=True, text=True)
    check(r.returncode == 0 and not leaked(r.stdout) and "rtmp://127.0.0.1:%d/live/***" % closed
          in r.stdout, "--print-config shows no secret (leaks: %s)" % leaked(r.stdout))
    return d.log


def raw(port, data):
    out = b""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(data)
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except OSError:
        return out
    s.close()
    return out


def post_recording(port, action, headers):
    body = ('{"action":"%s"}' % action).encode()
    head = "".join("%s: %s\r\n" % kv for kv in headers.items())
    return raw(port, b"POST /api/v1/pipelines/cam/recording HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
               b"%sContent-Length: %d\r\nConnection: close\r\n\r\n%s"
               % (port, head.encode(), len(body), body))


def run_browsers(tmp):
    """The default set-up, loopback without a token, against a page."""
    port = free_port()
    rec = os.path.join(tmp, "rec")
    conf = ("[mmsd]\nlisten = 127.0.0.1:%d\nallowed_hosts = or1.example\nmodel = %s\n\n"
            "[pipeline cam]\ninput = lavfi:testsrc2=size=160x120:rate=25\nmode = live\n"
            "size = 64x128\nthreads = 1\noutput = null\nrecord_dir = %s\n" % (port, MODEL, rec))
    d = Daemon(tmp, conf, name="browsers")
    api = Api(port)

    def recording():
        return (api.json("GET", "/api/v1/pipelines/cam")[1] or {}).get("recording", {}).get(
            "recording")

    try:
        check(wait_for(recording, 90), "the recording runs")
        r = raw(port, b"GET /api/v1/pipelines HTTP/1.1\r\nHost: attacker-rebind.example\r\n"
                      b"Connection: close\r\n\r\n")
        check(r.startswith(b"HTTP/1.1 421") and b"cam" not in r,
              "Host: attacker-rebind.example gets 421 and nothing of the pipelines")
        r = raw(port, b"GET /api/v1/pipelines HTTP/1.1\r\nHost: or1.example:%d\r\n"
                      b"Connection: close\r\n\r\n" % port)
        check(r.startswith(b"HTTP/1.1 200"), "Host: an allowed_hosts name gets 200")
        r = post_recording(port, "stop", {"Origin": "http://evil.example",
                                          "Content-Type": "text/plain"})
        check(r.startswith(b"HTTP/1.1 403"), "a cross-origin text/plain POST is 403: %s"
              % r[:12])
        r = post_recording(port, "stop", {"Content-Type": "text/plain"})
        check(r.startswith(b"HTTP/1.1 415"), "a text/plain POST is 415: %s" % r[:12])
        r = post_recording(port, "stop", {"Origin": "http://evil.example",
                                          "Content-Type": "application/json"})
        check(r.startswith(b"HTTP/1.1 403"), "a cross-origin JSON POST is 403: %s" % r[:12])
        time.sleep(0.5)
        check(recording(), "none of them stopped the recording")
        r = post_recording(port, "stop", {"Origin": "http://127.0.0.1:%d" % port,
                                          "Content-Type": "application/json"})
        check(r.startswith(b"HTTP/1.1 200") and wait_for(lambda: not recording(), 10),
              "the page's own POST stops it")
        st, hd, body = api.req("HEAD", "/healthz")
        st2, hd2, body2 = api.req("GET", "/healthz")
        check(st == st2 and body == b"" and hd.get("Content-Length") == hd2.get("Content-Length"),
              "HEAD /healthz answers like GET, without the body: %s %s" % (st, st2))
    finally:
        stop(d)
    return d.log


def run_tokens(tmp):
    port = free_port()
    long_tok = "".join("abcdefghijklmnopqrstuvwxyz0123456789"[(i * 7) % 36] for i in range(600))
    path = write(os.path.join(tmp, "long-token"), long_tok + "\n")
    d = Daemon(tmp, "[mmsd]\nlisten = 127.0.0.1:%d\ntoken_file = %s\nmodel = %s\n"
               % (port, path, MODEL), name="longtoken")
    try:
        whole = wait_for(lambda: Api(port, token=long_tok).req("GET", "/api/v1/pipelines")[0]
                         == 200, 30)
        check(whole, "a 600-character token counts whole")
        check(Api(port, token=long_tok[:511]).req("GET", "/api/v1/pipelines")[0] == 401,
              "its first 511 characters are refused")
        check(Api(port).req("GET", "/api/v1/pipelines?access_token=" + long_tok)[0] == 200,
              "the whole token in ?access_token= counts too")
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
        time.sleep(0.3)
        ok = sum(Api(port, token=long_tok).req("GET", "/api/v1/pipelines")[0] == 200
                 for _ in range(20))
        check(ok == 20, "with 64 idle sockets held, %d of 20 requests with the token got 200"
              % ok)
        for s in held:
            s.close()
    finally:
        stop(d)
    logs = [d.log]
    for n, want in ((4096, None), (4097, 1)):
        tok = "t" * (n - 8) + "Zq9Xw7Vy"
        path = write(os.path.join(tmp, "token-%d" % n), tok + "\n")
        p2 = free_port()
        d = Daemon(tmp, "[mmsd]\nlisten = 127.0.0.1:%d\ntoken_file = %s\nmodel = %s\n"
                   % (p2, path, MODEL), name="token%d" % n)
        try:
            if want is None:
                ok = wait_for(lambda: Api(p2, token=tok).req("GET", "/api/v1/pipelines")[0]
                              == 200, 30)
                check(ok, "a %d-character token is taken" % n)
            else:
                rc = d.wait(30)
                text = d.text()
                check(rc == want and "longer than 4096 characters" in text
                      and "Zq9Xw7Vy" not in text,
                      "a %d-character token stops the start (exit %s) with a clear message "
                      "that does not show it" % (n, rc))
        finally:
            stop(d)
        logs.append(d.log)
    return logs


def main():
    tmp = tempfile.mkdtemp(prefix="mms-attacks-")
    logs = [run_secrets(tmp), run_browsers(tmp)] + run_tokens(tmp)
    for log in logs:
        with open(log) as f:
            text = f.read()
        check("Sanitizer" not in text and "runtime error:" not in text,
              "%s: no sanitizer report" % os.path.basename(log))
    return finish("attacks")


if __name__ == "__main__":
    sys.exit(main())
