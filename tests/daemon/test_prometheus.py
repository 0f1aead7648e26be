#!/usr/bin/python3
"""A real Prometheus (Debian's prometheus) scraping a real mmsd with the
repo's systemd/prometheus.yml.example and evaluating systemd/mmsd.rules.yml:
what promtool's unit tests cannot show, that the scrape config (with its
bearer token option uncommented) reaches an mmsd that requires a token, and
that the rules' names and label values match what mmsd really exports.

  - mmsd with a token_file answers /metrics 401 without it; Prometheus,
    given the token file through the example's authorization lines,
    scrapes it: up{job="mmsd"} 1, mmsd_source_fps 25, mmsd_pipeline_live 1;
  - a record_dir that cannot be made: MmsdRecordingFailed becomes active
    (pending or firing) for that pipeline, and for no other;
  - healthy, the other pipeline raises no MmsdPipelineDown, MmsdNoSignal,
    MmsdOutputDown, nor MmsdDown;
  - its feed stopped: MmsdNoSignal becomes active for it.

The example's intervals are shortened to 1 s so that this runs in seconds;
the rules are loaded as they are. Env: MMS_BUILD_DIR, MMS_SOURCE_DIR.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mmsd_harness import (MODEL, SRC, Api, Daemon, Feeder, check, failures,  # noqa: E402
                          finish, free_port, wait_for)

EXAMPLE = os.path.join(SRC, "systemd", "prometheus.yml.example")
RULES = os.path.join(SRC, "systemd", "mmsd.rules.yml")


def config(tmp, target, token_file):
    """The example, for this test: the target, the rules and the token file
    put in, the token lines uncommented, intervals 1 s, no node job."""
    with open(EXAMPLE) as f:
        text = f.read()
    subs = [(r'"127\.0\.0\.1:8089"', '"%s"' % target),
            (r"/etc/prometheus/mmsd\.rules\.yml", RULES),
            (r"(?m)^    # authorization:$", "    authorization:"),
            (r"(?m)^    #   type: Bearer$", "      type: Bearer"),
            (r"(?m)^    #   credentials_file: .*$", "      credentials_file: %s" % token_file),
            (r"(?m)^(\s*(scrape|evaluation)_interval:) 15s", r"\1 1s"),
            (r"(?m)^(\s*scrape_timeout:) 10s", r"\1 1s"),
            (r"(?ms)^  # node_exporter.*\Z", "")]
    for pat, rep in subs:
        text, n = re.subn(pat, rep, text)
        check(n >= 1, "the example has %s to change" % pat)
    path = os.path.join(tmp, "prometheus.yml")
    with open(path, "w") as f:
        f.write(text)
    return path


class Prometheus:
    def __init__(self, tmp, conf, port):
        self.port = port
        self.log = open(os.path.join(tmp, "prometheus.log"), "w")
        self.p = subprocess.Popen(
            [shutil.which("prometheus") or "/usr/bin/prometheus", "--config.file", conf,
             "--storage.tsdb.path", os.path.join(tmp, "tsdb"),
             "--web.listen-address", "127.0.0.1:%d" % port, "--log.level", "warn"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)

    def query(self, q):
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (self.port,
                                                       urllib.parse.urlencode({"query": q}))
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                doc = json.load(r)
            return doc["data"]["result"] if doc.get("status") == "success" else None
        except (OSError, ValueError, KeyError):
            return None

    def value(self, q):
        res = self.query(q) or []
        return float(res[0]["value"][1]) if len(res) == 1 else None

    def alerts(self, name):
        """{pipeline or instance: state} of the active alerts called name."""
        res = self.query('ALERTS{alertname="%s"}' % name) or []
        return {r["metric"].get("pipeline", r["metric"].get("instance")):
                r["metric"]["alertstate"] for r in res}

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.log.close()


def main():
    tmp = tempfile.mkdtemp(prefix="mms-prometheus-")
    port, pport, uport = free_port(), free_port(), free_port(socket.SOCK_DGRAM)
    token = os.path.join(tmp, "mmsd.token")
    with open(token, "w") as f:
        f.write("prom-%d-token\n" % os.getpid())
    blocker = os.path.join(tmp, "not-a-dir")
    open(blocker, "w").close()
    conf = ("[mmsd]\nlisten = 127.0.0.1:%d\ntoken_file = %s\nmodel = %s\n\n"
            "[pipeline cam]\ninput = udp://127.0.0.1:%d\nmode = live\nsize = 64x128\n"
            "threads = 1\noutput = null\n\n"
            "[pipeline rec]\ninput = lavfi:testsrc2=size=160x120:rate=25\nmode = live\n"
            "size = 64x128\nthreads = 1\nrecord_dir = %s/rec\n"
            % (port, token, MODEL, uport, blocker))
    feeder = Feeder(uport)
    feeder.start()
    d = Daemon(tmp, conf)
    prom = None
    try:
        api = Api(port)
        check(wait_for(lambda: api.req("GET", "/healthz")[0] is not None, 60), "mmsd answers")
        check(api.req("GET", "/metrics")[0] == 401, "mmsd's /metrics wants the token: 401")
        prom = Prometheus(tmp, config(tmp, "127.0.0.1:%d" % port, token), pport)
        up = wait_for(lambda: prom.value('up{job="mmsd"}') == 1, 30)
        check(up, "Prometheus scrapes mmsd with the token: up{job=\"mmsd\"} %s"
              % prom.value('up{job="mmsd"}'))
        fps = wait_for(lambda: prom.value('mmsd_source_fps{pipeline="cam"}') == 25 and
                       prom.value('mmsd_pipeline_live{pipeline="cam"}') == 1, 30)
        check(fps, "Prometheus has mmsd_source_fps 25 and mmsd_pipeline_live 1 of the feed")

        rec = wait_for(lambda: prom.alerts("MmsdRecordingFailed"), 30)
        check(rec and set(rec) == {"rec"}, "a record_dir that cannot be made: "
              "MmsdRecordingFailed active for that pipeline alone: %s" % rec)
        wait_for(lambda: prom.value('mmsd_source_signal{pipeline="cam"}') == 1, 30)
        quiet = {a: prom.alerts(a) for a in ("MmsdDown", "MmsdPipelineDown", "MmsdNoSignal",
                                             "MmsdOutputDown")}
        check(quiet == {a: {} for a in quiet}, "healthy: no down, no-signal or output alert: %s"
              % quiet)

        feeder.stop()
        lost = wait_for(lambda: prom.alerts("MmsdNoSignal"), 40)
        check(lost and set(lost) == {"cam"},
              "the feed stopped: MmsdNoSignal active for cam: %s" % lost)
    finally:
        feeder.stop()
        if prom:
            prom.stop()
        d.signal(signal.SIGTERM)
        rc = d.wait()
    check(rc == 0, "SIGTERM: exit 0 (%s)" % rc)
    log = d.text()
    check("ERROR: AddressSanitizer" not in log and "runtime error" not in log,
          "no sanitizer report in the daemon log")
    if failures:
        print("--- mmsd log ---\n" + log[-2000:])
        with open(os.path.join(tmp, "prometheus.log")) as f:
            print("--- prometheus log ---\n" + f.read()[-2000:])
    if not failures:  # kept for a look when something failed
        shutil.rmtree(tmp, ignore_errors=True)
    return finish("prometheus")


if __name__ == "__main__":
    sys.exit(main())
