#!/usr/bin/python3
"""A recording stopped through the API stays stopped across restarts of
mmsd itself: a real mmsd on 127.0.0.1 with [mmsd] state_dir, real
recordings, real SIGTERMs and starts on the same config.

Kept: a pipeline stopped through the API, mmsd stopped (SIGTERM sent the
moment the API answered) and started again: that pipeline says recording
false and writes no segment while another records; started through the
API, and mmsd restarted again, it records.

Unwritable: a state_dir that cannot be made or written does not keep mmsd
from running and recording; a stop through the API still stops, says why
it may not outlive a restart (the API, /metrics, the log) and leaves
/healthz alone.

Shared: a second mmsd given a state_dir that a running mmsd has is
refused at start (exit 1, the first one's pid in the log) and records
nothing, while the first runs on; once the first has exited it starts.

None: without state_dir or $STATE_DIRECTORY the start-up log says a stop
lasts until mmsd restarts, and a stop still stops.

Unreadable: a recording-off that is there but cannot be read starts every
recording stopped, /healthz says why (503); once the file can be written
again the reason goes. Its state directory comes as systemd gives it,
$STATE_DIRECTORY, with no state_dir in the config.

Added: a pipeline added by a reload is held to the stops as one
configured at start: named in the file (though not configured at start,
or removed by an earlier reload), or the file unreadable, it starts
stopped; started through the API, it records and the file lets it go.

Down: a stop given while the pipeline cannot start (its input is not
there yet) is taken (200, "pending": true) and kept; when the input
comes, the pipeline runs and records nothing until a start.

Answered when saved: the answer to a stop or a start waits until the
file that keeps it is on disk ("saved": true), so a crash of mmsd right
after the answer cannot forget it; a write held longer than 2 s (a hung
state_dir, played by a preloaded open() that waits for a gate file)
answers with "saved": false and why, and the API goes on meanwhile.

Env: MMS_BUILD_DIR (mmsd), MMS_SOURCE_DIR, MMS_SLOW_OPEN_LIB (the shim).
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mmsd_harness import (MODEL, Api, Daemon, check, finish, free_port,  # noqa: E402
                          metric, wait_for)

LAVFI = "lavfi:testsrc2=size=160x120:rate=25"
NAMES = ("off", "on")


def config(port, state_dir, dirs):
    text = "[mmsd]\nlisten = 127.0.0.1:%d\nlog_level = info\nmodel = %s\n" % (port, MODEL)
    if state_dir:
        text += "state_dir = %s\n" % state_dir
    for n in NAMES:
        text += ("\n[pipeline %s]\ninput = %s\nmode = live\nsize = 64x128\nthreads = 1\n"
                 "output = null\nrecord_dir = %s\n" % (n, LAVFI, dirs[n]))
    return text


class Room:
    """Two recording pipelines, off and on, and the calls the checks make."""

    def __init__(self, tmp, name, state_dir, systemd=False):
        """systemd: state_dir comes as systemd passes it, $STATE_DIRECTORY
        (a list, the first one mmsd's), and the config names none."""
        self.tmp, self.name, self.state_dir = tmp, name, state_dir
        self.port = free_port()
        self.dirs = {n: os.path.join(tmp, "%s-rec-%s" % (name, n)) for n in NAMES}
        self.conf = config(self.port, None if systemd else state_dir, self.dirs)
        self.env = {"STATE_DIRECTORY": state_dir + ":" + tmp} if systemd else {}
        self.api = Api(self.port)
        self.runs = 0
        self.d = None

    def start(self):
        self.runs += 1
        self.d = Daemon(self.tmp, self.conf, name="%s-%d" % (self.name, self.runs), env=self.env)
        return self.d

    def stop(self, what):
        if self.d.p.poll() is None:
            self.d.signal(signal.SIGTERM)
            check(self.d.wait(60) == 0, "%s: mmsd exits 0 on SIGTERM" % what)
        text = self.d.text()
        check("Sanitizer" not in text and "runtime error:" not in text,
              "%s: no sanitizer report" % what)

    def pipe(self, name):
        return self.api.json("GET", "/api/v1/pipelines/" + name)[1] or {}

    def rec(self, name):
        return self.pipe(name).get("recording", {})

    def files(self, name):
        d = self.dirs[name]
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def post(self, name, action):
        return self.api.json("POST", "/api/v1/pipelines/%s/recording" % name,
                             {"action": action})

    def running(self):
        """Both pipelines run and have written two seconds of frames."""
        return wait_for(lambda: all(self.pipe(n).get("state") == "running"
                                    and self.pipe(n).get("stats", {}).get("written", 0) >= 50
                                    for n in NAMES), 120)

    def state_file(self):
        try:
            with open(os.path.join(self.state_dir, "recording-off")) as f:
                return f.read()
        except OSError:
            return None


def stopped_names(text):
    return [x for x in (text or "").splitlines() if x and not x.startswith("#")]


# ------------------------------------------------------------ kept

def run_kept_across_restarts(tmp):
    state = os.path.join(tmp, "state")
    os.mkdir(state)
    room = Room(tmp, "kept", state)
    room.start()
    try:
        check(wait_for(lambda: all(room.rec(n).get("file") for n in NAMES), 120),
              "kept: both pipelines run and record")
        st, r = room.post("off", "stop")
        check(st == 200 and r and r.get("recording") is False and r.get("state_error") is None,
              "kept: off stopped through the API (%s %s)" % (st, r))
        # At once: a stop just before a restart must not be lost.
    finally:
        room.stop("kept, first run")
    check(stopped_names(room.state_file()) == ["off"],
          "kept: %s/recording-off names off alone: %r" % (state, room.state_file()))
    check((room.state_file() or "").startswith("#"), "kept: the file starts with a comment")
    check(not os.path.exists(os.path.join(state, "recording-off.tmp")), "kept: no .tmp left")
    before = {n: room.files(n) for n in NAMES}
    # A pipeline no longer in the file, and a line that is no name.
    with open(os.path.join(state, "recording-off"), "a") as f:
        f.write("ghost\nnot a name\n")

    d = room.start()
    try:
        check(room.running(), "kept: after a restart both pipelines run and write frames")
        r = room.rec("off")
        check(r.get("recording") is False and r.get("segments") == 0 and not r.get("file"),
              "kept: off, stopped before the restart, stays stopped: %s" % r)
        check("pipeline off: its recording stays stopped" in d.text(),
              "kept: the log says off stays stopped")
        check(wait_for(lambda: len(room.files("on")) > len(before["on"]), 60)
              and room.rec("on").get("recording") is True,
              "kept: on records after the restart: %s" % room.files("on"))
        check(room.files("off") == before["off"],
              "kept: off wrote no new segment: %s, before %s" % (room.files("off"), before["off"]))
        check("pipeline off: recording to" not in d.text(),
              "kept: the log has off open no segment")
        check("recording-off: 1 line that is not a pipeline name skipped (the first is line 4)"
              in d.text(), "kept: the line that is no name is skipped, with a warning")
        st, r = room.post("off", "start")
        check(st == 200 and r and r.get("recording") is True,
              "kept: off started through the API (%s %s)" % (st, r))
        check(wait_for(lambda: room.state_file() is not None
                       and stopped_names(room.state_file()) == ["ghost"], 30),
              "kept: the start is saved, ghost (no such pipeline) kept for its name: %r"
              % room.state_file())
        check(wait_for(lambda: len(room.files("off")) > len(before["off"]), 60),
              "kept: off records once started")
    finally:
        room.stop("kept, second run")
    started = room.files("off")

    d = room.start()
    try:
        check(room.running(), "kept: after the second restart both pipelines run")
        check(wait_for(lambda: len(room.files("off")) > len(started), 60)
              and room.rec("off").get("recording") is True,
              "kept: off, started before the restart, records after it: %s" % room.files("off"))
        check("its recording stays stopped" not in d.text(),
              "kept: no pipeline is said to stay stopped")
        # A pipeline removed by a reload leaves its stop to its name.
        st, r = room.post("on", "stop")
        check(st == 200 and wait_for(lambda: sorted(stopped_names(room.state_file())) ==
                                     ["ghost", "on"], 30),
              "kept: on stopped and saved: %r" % room.state_file())
        n = d.text().count("reloaded ")
        d.write(room.conf.split("\n[pipeline on]")[0])
        d.signal(signal.SIGHUP)
        check(wait_for(lambda: d.text().count("reloaded ") > n, 30)
              and "1 removed" in d.text().split("reloaded ")[-1],
              "kept: a reload removes on")
        check(wait_for(lambda: sorted(stopped_names(room.state_file())) == ["ghost", "on"], 30),
              "kept: on, removed, stays in the file for its name: %r" % room.state_file())
    finally:
        room.stop("kept, third run")


# ------------------------------------------------------------ unwritable

def run_unwritable(tmp):
    # A regular file where a directory should be: no directory can be made
    # or written under it, by root either.
    blocker = os.path.join(tmp, "a-file")
    open(blocker, "w").close()
    state = os.path.join(blocker, "state")
    room = Room(tmp, "unwritable", state)
    d = room.start()
    try:
        check(wait_for(lambda: all(room.rec(n).get("file") for n in NAMES), 120),
              "unwritable: mmsd runs and both pipelines record")
        check("recording stops cannot be saved" in d.text(),
              "unwritable: the log says so at start")
        err = room.rec("on").get("state_error") or ""
        check("Not a directory" in err and "cannot be read or saved" in err,
              "unwritable: the API says so from the start, before any stop: %r" % err)
        st, r = room.post("off", "stop")
        check(st == 200 and r and r.get("recording") is False,
              "unwritable: the stop through the API still answers 200 (%s %s)" % (st, r))
        check(r and r.get("saved") is False and "Not a directory" in (r.get("save_error") or "")
              and r.get("state_error") == r.get("save_error"),
              "unwritable: the answer says this stop was not saved, and why: %s" % r)
        check(wait_for(lambda: "cannot save the recording stops" in d.text(), 30),
              "unwritable: the log says the stop could not be saved")
        err = room.rec("off").get("state_error") or ""
        check("recording-off" in err and "Not a directory" in err,
              "unwritable: the API says why the stop may not outlive a restart: %r" % err)
        st, _, body = room.api.req("GET", "/metrics")
        check(st == 200 and metric(body.decode(), "mmsd_state_failed") == 1,
              "unwritable: mmsd_state_failed is 1")
        check(wait_for(lambda: not room.rec("off").get("file"), 30),
              "unwritable: off's segment is finalised")
        n = len(room.files("on"))
        check(room.rec("on").get("recording") is True and n >= 1,
              "unwritable: on goes on recording")
        reasons = (room.api.json("GET", "/healthz")[1] or {}).get("reasons", [])
        check(not [x for x in reasons if "recording stops" in x],
              "unwritable: /healthz is not made unhealthy by it: %s" % reasons)
    finally:
        room.stop("unwritable")
    check(os.path.isfile(blocker) and os.path.getsize(blocker) == 0,
          "unwritable: nothing was written in the file's place")


# ------------------------------------------------------------ none

def run_none(tmp):
    room = Room(tmp, "none", None)
    d = room.start()
    try:
        check(wait_for(lambda: all(room.rec(n).get("file") for n in NAMES), 120),
              "none: without a state directory both pipelines record")
        check("recording stops through the API last until mmsd restarts: no state_dir"
              in d.text(), "none: the start-up log says a stop lasts until a restart")
        st, r = room.post("off", "stop")
        check(st == 200 and r and r.get("recording") is False and r.get("state_error") is None,
              "none: a stop still stops, with no state_error (%s %s)" % (st, r))
        check(r and r.get("saved") is False and "no state_dir" in (r.get("save_error") or ""),
              "none: the answer says the stop is not saved, and why: %s" % r)
    finally:
        room.stop("none")


# ------------------------------------------------------------ added

def added_conf(port, state, rec, names):
    text = "[mmsd]\nlisten = 127.0.0.1:%d\nlog_level = info\nmodel = %s\nstate_dir = %s\n" % (
        port, MODEL, state)
    for n in names:
        text += ("\n[pipeline %s]\ninput = %s\nmode = live\nsize = 64x128\nthreads = 1\n"
                 "output = null\nrecord_dir = %s\n" % (n, LAVFI, os.path.join(rec, n)))
    return text


def wait_running(api, names, what):
    pipe = lambda n: api.json("GET", "/api/v1/pipelines/" + n)[1] or {}  # noqa: E731
    check(wait_for(lambda: all(pipe(n).get("state") == "running" and
                               pipe(n).get("stats", {}).get("written", 0) >= 25
                               for n in names), 120), "%s: %s running" % (what, names))
    return pipe


def reload_to(d, api, conf, names, what):
    before = d.text().count("reloaded ")
    d.write(conf)
    d.signal(signal.SIGHUP)
    check(wait_for(lambda: d.text().count("reloaded ") > before, 30), "%s: reloaded" % what)
    return wait_running(api, names, what)


def run_reload_added(tmp, unreadable):
    what = "added-unreadable" if unreadable else "added"
    state, rec = os.path.join(tmp, what + "-state"), os.path.join(tmp, what + "-rec")
    os.mkdir(state)
    saved = os.path.join(state, "recording-off")
    if unreadable:
        os.mkdir(saved)  # a directory in its place: there, but not readable as the file
    else:
        with open(saved, "w") as f:
            f.write("# stopped\nb\n")
    port = free_port()
    api = Api(port)
    d = Daemon(tmp, added_conf(port, state, rec, ["a"]), name=what)
    try:
        wait_running(api, ["a"], what + " start")
        pipe = reload_to(d, api, added_conf(port, state, rec, ["a", "b"]), ["a", "b"],
                         what + " b added")
        files = os.listdir(os.path.join(rec, "b")) if os.path.isdir(os.path.join(rec, "b")) else []
        check(pipe("b").get("recording", {}).get("recording") is False and files == [],
              "%s: b, added by a reload, starts stopped (%s)" % (what, files))
        if unreadable:
            return
        pipe = reload_to(d, api, added_conf(port, state, rec, ["a"]), ["a"], what + " b removed")
        pipe = reload_to(d, api, added_conf(port, state, rec, ["a", "b"]), ["a", "b"],
                         what + " b added again")
        check(pipe("b").get("recording", {}).get("recording") is False,
              "%s: removed and added again, b stays stopped" % what)
        with open(saved) as f:
            check(stopped_names(f.read()) == ["b"], "%s: the file still names b" % what)
        st, r = api.json("POST", "/api/v1/pipelines/b/recording", {"action": "start"})
        check(st == 200 and wait_for(lambda: os.listdir(os.path.join(rec, "b")), 30),
              "%s: started through the API, b records" % what)
        check(wait_for(lambda: stopped_names(open(saved).read()) == [], 10),
              "%s: and the file lets it go (%s)" % (what, open(saved).read()))
    finally:
        if d.p.poll() is None:
            d.signal(signal.SIGTERM)
            check(d.wait(60) == 0, "%s: mmsd exits 0 on SIGTERM" % what)


# ------------------------------------------------------------ down

def run_stop_while_down(tmp):
    state, rec = os.path.join(tmp, "down-state"), os.path.join(tmp, "down-rec")
    clip = os.path.join(tmp, "down-later.mp4")
    os.mkdir(state)
    port = free_port()
    conf = ("[mmsd]\nlisten = 127.0.0.1:%d\nlog_level = info\nmodel = %s\nstate_dir = %s\n"
            "\n[pipeline cam]\ninput = %s\nmode = live\nsize = 64x128\nthreads = 1\n"
            "output = null\nrecord_dir = %s\n" % (port, MODEL, state, clip, rec))
    api = Api(port)
    d = Daemon(tmp, conf, name="down")
    try:
        pipe = lambda: api.json("GET", "/api/v1/pipelines/cam")[1] or {}  # noqa: E731
        check(wait_for(lambda: pipe().get("state") in ("connecting", "failed"), 60),
              "down: a missing input leaves the pipeline down (%s)" % pipe().get("state"))
        st, r = api.json("POST", "/api/v1/pipelines/cam/recording", {"action": "stop"})
        check(st == 200 and r and r.get("recording") is False and r.get("pending") is True,
              "down: a stop while down is taken, pending (%s %s)" % (st, r))
        saved = os.path.join(state, "recording-off")
        check(wait_for(lambda: os.path.exists(saved), 10), "down: the stop is saved")
        with open(saved) as f:
            check(stopped_names(f.read()) == ["cam"], "down: the file names the pipeline")
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc2=size=160x120:rate=25", "-t", "30", "-c:v", "libx264",
                        "-preset", "ultrafast", clip + ".tmp.mp4"], check=True)
        os.rename(clip + ".tmp.mp4", clip)
        check(wait_for(lambda: pipe().get("state") == "running"
                       and pipe().get("stats", {}).get("written", 0) >= 50, 120),
              "down: the pipeline runs once its input is there")
        files = sorted(os.listdir(rec)) if os.path.isdir(rec) else []
        check(files == [] and pipe().get("recording", {}).get("recording") is False,
              "down: the recording stopped while down stays stopped (%s)" % files)
        st, r = api.json("POST", "/api/v1/pipelines/cam/recording", {"action": "start"})
        check(st == 200 and r and r.get("pending") is False, "down: a start once running is "
              "not pending (%s %s)" % (st, r))
        check(wait_for(lambda: os.path.isdir(rec) and os.listdir(rec), 30),
              "down: started, it records")
    finally:
        if d.p.poll() is None:
            d.signal(signal.SIGTERM)
            check(d.wait(60) == 0, "down: mmsd exits 0 on SIGTERM")


# ------------------------------------------------------------ shared

def run_shared(tmp):
    state = os.path.join(tmp, "state-shared")
    os.mkdir(state)
    first, second = Room(tmp, "shared-a", state), Room(tmp, "shared-b", state)
    a = first.start()
    try:
        check(first.running(), "shared: the first mmsd runs")
        b = second.start()
        check(b.wait(60) == 1, "shared: the second mmsd exits 1")
        text = b.text()
        want = "held by another mmsd (pid %d)" % a.p.pid
        check(want in text and "give each mmsd its own state_dir" in text,
              "shared: the second says which mmsd holds the state_dir: %r" % text[-600:])
        check(all(second.files(n) == [] for n in NAMES), "shared: the second recorded nothing")
        st, r = first.post("off", "stop")
        check(st == 200 and r and r.get("recording") is False and r.get("state_error") is None,
              "shared: the first still answers and saves its stops (%s %s)" % (st, r))
        check(wait_for(lambda: stopped_names(first.state_file()) == ["off"], 30),
              "shared: the stops are the first one's: %r" % first.state_file())
    finally:
        first.stop("shared, first")
        second.stop("shared, second refused")
    second.start()
    try:
        check(second.running(), "shared: once the first has exited the second starts")
        check(second.rec("off").get("recording") is False,
              "shared: and keeps the stop the first saved")
    finally:
        second.stop("shared, second")


# ------------------------------------------------------------ unreadable

def run_unreadable(tmp):
    state = os.path.join(tmp, "state-unreadable")
    os.mkdir(state)
    # A directory in the file's place: no user can read it as a file.
    os.mkdir(os.path.join(state, "recording-off"))
    room = Room(tmp, "unreadable", state, systemd=True)
    d = room.start()

    def health():
        return room.api.json("GET", "/healthz")

    try:
        check(room.running(), "unreadable: mmsd runs both pipelines")
        for n in NAMES:
            r = room.rec(n)
            check(r.get("recording") is False and r.get("segments") == 0,
                  "unreadable: %s starts stopped: %s" % (n, r))
        check("cannot read the recording stops" in d.text(), "unreadable: the log says why")
        st, h = health()
        reasons = (h or {}).get("reasons", [])
        check(st == 503 and [x for x in reasons if "cannot read the recording stops" in x],
              "unreadable: /healthz is 503 and says why: %s %s" % (st, reasons))
        # The operator puts it right, then starts what may record.
        shutil.rmtree(os.path.join(state, "recording-off"))
        st, r = room.post("on", "start")
        check(st == 200 and r and r.get("recording") is True,
              "unreadable: on started through the API (%s %s)" % (st, r))
        check(wait_for(lambda: stopped_names(room.state_file()) == ["off"]
                       and room.state_file().startswith("#"), 30),
              "unreadable: the stops are saved again, off alone: %r" % room.state_file())
        check(wait_for(lambda: not [x for x in (health()[1] or {}).get("reasons", [])
                                    if "recording stops" in x], 30),
              "unreadable: /healthz no longer gives the reason")
        check(wait_for(lambda: room.files("on"), 60), "unreadable: on records once started")
        check(room.files("off") == [], "unreadable: off never recorded")
    finally:
        room.stop("unreadable")


# ------------------------------------------------------------ answered when saved

class Post(threading.Thread):
    """A recording change in the background: its answer, when it came, and
    the state file as it was the moment the answer came."""

    def __init__(self, room, name, action):
        super().__init__(daemon=True)
        self.room, self.name, self.action = room, name, action
        self.answer, self.file, self.secs = (None, None), None, None

    def run(self):
        t0 = time.time()
        self.answer = self.room.post(self.name, self.action)
        self.secs = time.time() - t0
        self.file = self.room.state_file()


def run_answered_when_saved(tmp):
    lib = os.environ.get("MMS_SLOW_OPEN_LIB", "")
    check(os.path.isfile(lib), "saved: the open shim is built: %r" % lib)
    if not os.path.isfile(lib):
        return
    state = os.path.join(tmp, "state-slow")
    os.mkdir(state)
    gate = os.path.join(tmp, "state-gate")
    open(gate, "w").close()
    room = Room(tmp, "saved", state)
    room.env.update({"LD_PRELOAD": lib, "MMS_SLOW_OPEN": "/state-slow/recording-off.tmp",
                     "MMS_SLOW_OPEN_GATE": gate,
                     "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "")
                     + ":verify_asan_link_order=0"})
    room.start()

    def hold_writes():
        os.remove(gate)
        if os.path.isdir(gate + ".held"):
            os.rmdir(gate + ".held")

    try:
        check(room.running(), "saved: mmsd runs both pipelines")
        hold_writes()
        stop = Post(room, "off", "stop")
        stop.start()
        check(wait_for(lambda: os.path.isdir(gate + ".held"), 30, step=0.05),
              "saved: the state file's write is held in its open")
        # A second change while the first is being written: saved by the
        # write after it, so answered after that one.
        stop_on = Post(room, "on", "stop")
        stop_on.start()
        time.sleep(0.3)
        check(stop.is_alive() and stop_on.is_alive(),
              "saved: no answer while the file is not written")
        open(gate, "w").close()
        stop.join(20)
        stop_on.join(20)
        st, r = stop.answer
        check(st == 200 and r and r.get("recording") is False and r.get("saved") is True
              and r.get("save_error") is None,
              "saved: the stop answers 200, saved, once written (%s %s)" % (st, r))
        check(stopped_names(stop.file) in (["off"], ["off", "on"]),
              "saved: the file names off when the answer comes: %r" % stop.file)
        st, r = stop_on.answer
        check(st == 200 and r and r.get("saved") is True,
              "saved: the change made meanwhile is saved too (%s %s)" % (st, r))
        check(stopped_names(stop_on.file) == ["off", "on"],
              "saved: the file names both when its answer comes: %r" % stop_on.file)

        hold_writes()
        start = Post(room, "off", "start")
        start.start()
        check(wait_for(lambda: os.path.isdir(gate + ".held"), 30, step=0.05)
              and room.api.json("GET", "/healthz")[0] == 200,
              "saved: the API answers while the write is held")
        start.join(20)
        st, r = start.answer
        check(st == 200 and r and r.get("recording") is True and r.get("saved") is False
              and "still being written" in (r.get("save_error") or ""),
              "saved: a write held past 2 s answers saved false and why (%s %s)" % (st, r))
        check(start.secs is not None and 1.5 <= start.secs <= 8,
              "saved: that answer waited about 2 s: %s" % start.secs)
        check(stopped_names(start.file) == ["off", "on"],
              "saved: the file still names off then: %r" % start.file)
        open(gate, "w").close()
        check(wait_for(lambda: stopped_names(room.state_file()) == ["on"], 30),
              "saved: the held write lands later: %r" % room.state_file())
        st, r = room.post("on", "start")
        check(st == 200 and r and r.get("saved") is True and r.get("recording") is True,
              "saved: the next change saves at once (%s %s)" % (st, r))
        check(stopped_names(room.state_file()) == [] and room.state_file().startswith("#"),
              "saved: and is in the file when answered: %r" % room.state_file())
    finally:
        if not os.path.exists(gate):
            open(gate, "w").close()
        room.stop("saved")


def main():
    tmp = tempfile.mkdtemp(prefix="mms-state-")
    os.environ.pop("STATE_DIRECTORY", None)  # a test run under systemd
    run_kept_across_restarts(tmp)
    run_unwritable(tmp)
    run_none(tmp)
    run_shared(tmp)
    run_unreadable(tmp)
    run_stop_while_down(tmp)
    run_reload_added(tmp, False)
    run_reload_added(tmp, True)
    run_answered_when_saved(tmp)
    return finish("state")


if __name__ == "__main__":
    sys.exit(main())
