#!/usr/bin/python3
"""What a reload does to a pipeline that is being replaced, and what an
operator's choices through the API become when a reload makes a pipeline
again: a real mmsd on 127.0.0.1, real reloads (SIGHUP), real recordings.

Removed while being replaced: a pipeline whose source is a named pipe with
no writer is stuck opening it, so a reload that changes it leaves the old
one going (stop asked, not yet gone) for as long as the test wants. A
second reload that removes it from the file must remove it for good (the
log counts it removed; no pipeline of that name starts once the old one
ends); one that changes it again, or a third that adds it back, starts it
with what the file says last.

Recording stopped through the API: after a reload that changes the
pipeline (so it is made again), a recording an operator stopped stays
stopped (no segment, the API says off) until started through the API;
one never stopped records again by itself.

Runtime settings: a reload that changes only alpha and style applies them
to the running pipeline, which goes on recording into the same segment.

A model whose open hangs (a hung network mount; tests/daemon/slow_open.c,
preloaded, holds the open until the test lets it go): while the reload
waits on it, the API answers and the pipeline runs as it was; a second
SIGHUP in the meantime reads the file again after it; once the open goes
through, the reload restarts the pipeline on the new model. A reload that
changes another pipeline does not read the model of one left unchanged,
so that model's hung mount holds nothing. SIGTERM while a reload waits
stops the pipelines at once and exits 0 when the open returns, the
reload left unapplied.

Many stuck starts: six pipelines stuck opening their sources hold six of
libuv's threads, more than its default four; mmsd sizes the pool so that
a reload still goes through and starts the pipeline it adds.

Env: MMS_BUILD_DIR (mmsd), MMS_SOURCE_DIR, MMS_SLOW_OPEN_LIB (the shim).
"""
import errno
import os
import shutil
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mmsd_harness import (MODEL, Api, Daemon, check, finish, free_port,  # noqa: E402
                          wait_for)

LAVFI = "lavfi:testsrc2=size=160x120:rate=25"


def section(name, inp, extra=""):
    return ("\n[pipeline %s]\ninput = %s\nmode = live\nsize = 64x128\nthreads = 1\n"
            "output = null\n%s" % (name, inp, extra))


def head(port):
    return "[mmsd]\nlisten = 127.0.0.1:%d\nlog_level = info\nmodel = %s\n" % (port, MODEL)


def reload(d, text):
    """Writes the file, sends SIGHUP and returns the reload's summary line."""
    n = d.text().count("reloaded ")
    d.write(text)
    d.signal(signal.SIGHUP)
    wait_for(lambda: d.text().count("reloaded ") > n, 30, step=0.05)
    lines = [x for x in d.text().splitlines() if "reloaded " in x]
    return lines[n] if len(lines) > n else ""


def open_writer(path, timeout):
    """Opens a named pipe for writing once its reader (mmsd, stuck in its
    open) is there, and closes it: the reader sees the end at once."""
    def attempt():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno == errno.ENXIO:  # no reader yet
                return False
            raise
        os.close(fd)
        return True
    return wait_for(attempt, timeout, step=0.05)


def stop(d, what):
    if d.p.poll() is None:
        d.signal(signal.SIGTERM)
        check(d.wait(60) == 0, "%s: mmsd exits 0 on SIGTERM" % what)
    text = d.text()
    check("Sanitizer" not in text and "runtime error:" not in text,
          "%s: no sanitizer report" % what)


# ------------------------------------------------------------ removed while replaced

def run_removed_while_replaced(tmp):
    port = free_port()
    fifos = {}
    for name in ("gone", "kept", "back"):
        fifos[name] = os.path.join(tmp, name + ".fifo")
        os.mkfifo(fifos[name])
    conf0 = head(port) + "".join(section(n, f) for n, f in fifos.items())
    # Every pipeline changed: each old one waits on its named pipe.
    conf1 = head(port) + "".join(section(n, LAVFI, "alpha = 0.3\n") for n in fifos)
    # gone and back leave the file; kept changes again.
    conf2 = head(port) + section("kept", LAVFI, "alpha = 0.6\n")
    # back comes back.
    conf3 = conf2 + section("back", LAVFI, "alpha = 0.55\n")
    # One threadpool thread per stuck open, and some for the rest.
    d = Daemon(tmp, conf0, name="replaced", env={"UV_THREADPOOL_SIZE": "8"})
    api = Api(port)

    def listed():
        ps = (api.json("GET", "/api/v1/pipelines")[1] or {}).get("pipelines", [])
        return [(p["name"], p["state"], p["settings"]["alpha"]) for p in ps]

    try:
        check(wait_for(lambda: "ready: 3 pipelines" in d.text(), 120),
              "replaced: mmsd is ready with the three pipelines")
        line = reload(d, conf1)
        check("0 added, 0 removed, 3 changed" in line,
              "replaced: the first reload changes the three stuck pipelines: %s" % line)
        check(sorted(n for n, s, _ in listed() if s == "stopping") == ["back", "gone", "kept"],
              "replaced: the three old pipelines are still going: %s" % listed())
        line = reload(d, conf2)
        check("0 added, 2 removed, 0 changed" in line,
              "replaced: a reload while they go counts gone and back removed: %s" % line)
        check(d.text().count("pipeline gone: removed by reload") == 1
              and d.text().count("pipeline back: removed by reload") == 1,
              "replaced: the log says gone and back were removed")
        reload(d, conf3)
        for name, path in fifos.items():
            check(open_writer(path, 60), "replaced: old %s's source opened, then ended" % name)
        settled = wait_for(lambda: not [p for p in listed() if p[1] != "running"]
                           and len(listed()) == 2 and listed(), 120)
        got = sorted(settled or listed())
        check(not [p for p in got if p[0] == "gone"],
              "replaced: gone, removed while its old pipeline went, never starts: %s" % got)
        check(("kept", "running", 0.6) in got,
              "replaced: kept, changed twice, runs with the last change (alpha 0.6): %s" % got)
        check(("back", "running", 0.55) in got,
              "replaced: back, removed then added again, runs as added (alpha 0.55): %s" % got)
        check(api.req("GET", "/api/v1/pipelines/gone")[0] == 404,
              "replaced: the API knows no pipeline gone")
    finally:
        # Whatever happened, nothing stays stuck on a named pipe.
        for path in fifos.values():
            open_writer(path, 0)
        stop(d, "replaced")


# ------------------------------------------------------------ recording kept off

def run_recording_stays_off(tmp):
    port = free_port()
    dirs = {n: os.path.join(tmp, "rec-" + n) for n in ("off", "on", "again")}

    # segment_seconds takes a restart; alpha alone would not (see
    # run_runtime_settings).
    def conf(seconds):
        return head(port) + "".join(
            section(n, LAVFI, "record_dir = %s\nsegment_seconds = %s\n" % (r, seconds))
            for n, r in dirs.items())

    d = Daemon(tmp, conf("300"), name="recording")
    api = Api(port)

    def pipe(name):
        return api.json("GET", "/api/v1/pipelines/" + name)[1] or {}

    def rec(name):
        return pipe(name).get("recording", {})

    def files(name):
        return sorted(os.listdir(dirs[name])) if os.path.isdir(dirs[name]) else []

    def post(name, action):
        return api.json("POST", "/api/v1/pipelines/%s/recording" % name, {"action": action})

    try:
        check(wait_for(lambda: all(rec(n).get("file") for n in dirs), 120),
              "recording: the three pipelines run and record")
        for name in ("off", "again"):
            st, r = post(name, "stop")
            check(st == 200 and r and r.get("recording") is False,
                  "recording: %s stopped through the API (%s %s)" % (name, st, r))
        check(wait_for(lambda: not rec("off").get("file") and not rec("again").get("file"), 30),
              "recording: the stopped segments are finalised")
        before = {n: files(n) for n in dirs}
        runs = d.text().count("pipeline off: running")
        line = reload(d, conf("301"))
        check("3 changed" in line, "recording: the reload changes the three pipelines: %s" % line)
        # The new pipelines are running and have written two seconds of frames.
        check(wait_for(lambda: d.text().count("pipeline off: running") > runs
                       and all(pipe(n).get("state") == "running"
                               and pipe(n).get("stats", {}).get("written", 0) >= 50
                               for n in dirs), 120),
              "recording: the three pipelines run again and write frames")
        r = rec("off")
        check(r.get("recording") is False and r.get("segments") == 0 and not r.get("file"),
              "recording: off, stopped before the reload, stays off: %s" % r)
        check(files("off") == before["off"],
              "recording: off wrote no new segment: %s, before %s" % (files("off"), before["off"]))
        after_reload = d.text().split(line, 1)[-1]
        check("pipeline off: recording to" not in after_reload,
              "recording: the log has off open no segment after the reload")
        check(wait_for(lambda: len(files("on")) > len(before["on"]), 60)
              and rec("on").get("recording") is True,
              "recording: on, never stopped, records again after the reload: %s" % files("on"))
        # Started again through the API: it records, and a later restart keeps it on.
        st, r = post("again", "start")
        check(st == 200 and r and r.get("recording") is True,
              "recording: again started through the API (%s %s)" % (st, r))
        check(wait_for(lambda: len(files("again")) > len(before["again"]), 60),
              "recording: again records once started")
        started = files("again")
        line = reload(d, conf("302"))
        check(wait_for(lambda: len(files("again")) > len(started), 120)
              and rec("again").get("recording") is True,
              "recording: again, started after its stop, records after the next reload too")
        check(rec("off").get("recording") is False and files("off") == before["off"],
              "recording: off stays off through a second reload")
    finally:
        stop(d, "recording")


def run_runtime_settings(tmp):
    """A reload that changes only settings a running pipeline takes (alpha,
    style) applies them without a restart: the recording goes on in the
    same segment, the API shows the new values. One that changes anything
    else restarts it (run_recording_stays_off)."""
    port = free_port()
    rec = os.path.join(tmp, "rec-rt")
    d = Daemon(tmp, head(port) + section("cam", LAVFI, "record_dir = %s\nalpha = 0.3\n" % rec),
               name="runtime")
    api = Api(port)
    pipe = lambda: api.json("GET", "/api/v1/pipelines/cam")[1] or {}  # noqa: E731
    try:
        check(wait_for(lambda: pipe().get("recording", {}).get("file"), 120),
              "runtime: cam runs and records")
        seg = pipe()["recording"]["file"]
        runs = d.text().count("pipeline cam: running")
        line = reload(d, head(port) + section("cam", LAVFI, "record_dir = %s\nalpha = 0.7\n"
                                              "style = outline\n" % rec))
        check("1 changed" in line and "applied without a restart" in d.text(),
              "runtime: the reload takes the change without a restart: %s" % line)
        check(wait_for(lambda: pipe().get("settings", {}).get("alpha") == 0.7
                       and pipe().get("settings", {}).get("style") == "outline", 10),
              "runtime: the API shows the new settings: %s" % pipe().get("settings"))
        written = pipe().get("stats", {}).get("written", 0)
        check(wait_for(lambda: pipe().get("stats", {}).get("written", 0) > written + 25, 30),
              "runtime: frames go on being written")
        check(d.text().count("pipeline cam: running") == runs
              and pipe().get("recording", {}).get("file") == seg,
              "runtime: no restart, the same segment: %s" % pipe().get("recording", {}).get("file"))
    finally:
        stop(d, "runtime")


# ------------------------------------------------------------ a hung model

def hung_setup(tmp, what):
    """A copy of the model whose open waits for the gate file; the env that
    preloads the shim into mmsd. (None, ...) when the shim is not built."""
    lib = os.environ.get("MMS_SLOW_OPEN_LIB", "")
    check(os.path.isfile(lib), "%s: the open shim is built: %r" % (what, lib))
    hung = os.path.join(tmp, what)
    os.mkdir(hung)
    slow = os.path.join(hung, "slow-model.safetensors")
    shutil.copyfile(MODEL, slow)
    gate = os.path.join(tmp, what + "-gate")
    env = {"LD_PRELOAD": lib, "MMS_SLOW_OPEN": "/%s/slow-model.safetensors" % what,
           "MMS_SLOW_OPEN_GATE": gate,
           # The shim is preloaded ahead of the sanitizer's runtime.
           "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
    return (slow if os.path.isfile(lib) else None), gate, env


def run_hung_model(tmp):
    slow, gate, env = hung_setup(tmp, "hung")
    if not slow:
        return
    port = free_port()
    conf0 = head(port) + section("cam", LAVFI)
    conf1 = head(port) + section("cam", LAVFI, "model = %s\n" % slow)
    d = Daemon(tmp, conf0, name="hung", env=env)
    api = Api(port)

    def state():
        st, body = api.json("GET", "/api/v1/pipelines/cam")
        return (body or {}).get("state") if st == 200 else st

    try:
        check(wait_for(lambda: "ready: 1 pipeline" in d.text(), 120)
              and wait_for(lambda: state() == "running", 60), "hung: mmsd runs cam")
        d.write(conf1)
        d.signal(signal.SIGHUP)
        check(wait_for(lambda: os.path.isdir(gate + ".held"), 30),
              "hung: the reload's model check is held in its open")
        st = api.req("GET", "/healthz")[0]
        check(st == 200, "hung: /healthz answers while the reload waits: %s" % st)
        check(state() == "running", "hung: cam runs as it was: %s" % state())
        d.signal(signal.SIGHUP)
        check(wait_for(lambda: "the file is read again after it" in d.text(), 10),
              "hung: a second SIGHUP waits for the first reload")
        check("reloaded " not in d.text(), "hung: no reload is applied while it waits")
        open(gate, "w").close()
        check(wait_for(lambda: d.text().count("reloaded ") == 2, 60),
              "hung: both reloads end once the open goes through")
        lines = [x for x in d.text().splitlines() if "reloaded " in x]
        check(len(lines) == 2 and "0 added, 0 removed, 1 changed, 0 refused" in lines[0]
              and "0 added, 0 removed, 0 changed, 0 refused" in lines[1],
              "hung: the first restarts cam, the second finds nothing new: %s" % lines)
        check(wait_for(lambda: state() == "running", 60),
              "hung: cam runs again on the new model: %s" % state())
    finally:
        open(gate, "w").close()
        stop(d, "hung")


def run_hung_model_unchanged(tmp):
    slow, gate, env = hung_setup(tmp, "kept")
    if not slow:
        return
    open(gate, "w").close()  # open while mmsd starts
    port = free_port()
    conf0 = head(port) + section("a", LAVFI, "model = %s\n" % slow) + section("b", LAVFI)
    conf1 = head(port) + section("a", LAVFI, "model = %s\n" % slow) + \
        section("b", LAVFI, "segment_seconds = 7\n")
    d = Daemon(tmp, conf0, name="kept", env=env)
    api = Api(port)

    def running():
        ps = (api.json("GET", "/api/v1/pipelines")[1] or {}).get("pipelines", [])
        return sorted(p["name"] for p in ps if p["state"] == "running") == ["a", "b"]

    try:
        check(wait_for(running, 120), "kept: mmsd runs a on the model that will hang, and b")
        os.unlink(gate)  # the mount hangs
        line = reload(d, conf1)
        check("0 added, 0 removed, 1 changed, 0 refused" in line,
              "kept: a reload that changes b alone goes through: %s" % line)
        check(not os.path.isdir(gate + ".held"), "kept: a's model was not opened again")
    finally:
        open(gate, "w").close()
        stop(d, "kept")


def run_stop_during_reload(tmp):
    slow, gate, env = hung_setup(tmp, "term")
    if not slow:
        return
    port = free_port()
    d = Daemon(tmp, head(port) + section("cam", LAVFI), name="term", env=env)
    api = Api(port)
    try:
        check(wait_for(lambda: (api.json("GET", "/api/v1/pipelines/cam")[1] or {})
                       .get("state") == "running", 120), "term: mmsd runs cam")
        d.write(head(port) + section("cam", LAVFI, "model = %s\n" % slow))
        d.signal(signal.SIGHUP)
        check(wait_for(lambda: os.path.isdir(gate + ".held"), 30),
              "term: the reload's model check is held in its open")
        d.signal(signal.SIGTERM)
        check(wait_for(lambda: "pipeline cam: stopped" in d.text(), 30),
              "term: the stop does not wait for the reload")
        check(d.p.poll() is None, "term: mmsd waits for the held open before it exits")
        open(gate, "w").close()
        check(d.wait(60) == 0, "term: mmsd exits 0 once the open returns")
        check("reloaded " not in d.text(), "term: the reload is not applied")
    finally:
        open(gate, "w").close()
        stop(d, "term")


# ------------------------------------------------------------ many stuck starts

def run_many_stuck(tmp):
    check("UV_THREADPOOL_SIZE" not in os.environ,
          "stuck: UV_THREADPOOL_SIZE is not set around the test (mmsd sizes the pool)")
    port = free_port()
    fifos = [os.path.join(tmp, "stuck%d.fifo" % i) for i in range(6)]
    for f in fifos:
        os.mkfifo(f)
    conf0 = head(port) + "".join(section("s%d" % i, f) for i, f in enumerate(fifos))
    d = Daemon(tmp, conf0, name="stuck")
    api = Api(port)
    try:
        check(wait_for(lambda: "ready: 6 pipelines" in d.text(), 120),
              "stuck: mmsd is ready with six pipelines stuck opening")
        n = d.text().count("reloaded ")
        d.write(conf0 + section("fresh", LAVFI))
        d.signal(signal.SIGHUP)
        check(wait_for(lambda: d.text().count("reloaded ") > n, 30),
              "stuck: the reload goes through beside six stuck starts")
        check("1 added, 0 removed, 0 changed" in d.text(),
              "stuck: it adds the new pipeline")
        check(wait_for(lambda: (api.json("GET", "/api/v1/pipelines/fresh")[1] or {})
                       .get("state") == "running", 60), "stuck: the added pipeline runs")
    finally:
        # Each stuck start may still be on its way to its open (a model
        # check under ASan on a loaded machine): wait for its reader.
        for f in fifos:
            open_writer(f, 30)
        stop(d, "stuck")


def main():
    tmp = tempfile.mkdtemp(prefix="mms-reload-")
    run_removed_while_replaced(tmp)
    run_recording_stays_off(tmp)
    run_runtime_settings(tmp)
    run_hung_model(tmp)
    run_hung_model_unchanged(tmp)
    run_stop_during_reload(tmp)
    run_many_stuck(tmp)
    return finish("reload")


if __name__ == "__main__":
    sys.exit(main())
