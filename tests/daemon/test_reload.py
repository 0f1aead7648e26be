#!/usr/bin/python3
"""What a reload does to a pipeline that is being replaced: a real mmsd on
127.0.0.1, real reloads (SIGHUP).

Removed while being replaced: a pipeline whose source is a named pipe with
no writer is stuck opening it, so a reload that changes it leaves the old
one going (stop asked, not yet gone) for as long as the test wants. A
second reload that removes it from the file must remove it for good (the
log counts it removed; no pipeline of that name starts once the old one
ends); one that changes it again, or a third that adds it back, starts it
with what the file says last.

Env: MMS_BUILD_DIR (mmsd), MMS_SOURCE_DIR.
"""
import errno
import os
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


def main():
    tmp = tempfile.mkdtemp(prefix="mms-reload-")
    run_removed_while_replaced(tmp)
    return finish("reload")


if __name__ == "__main__":
    sys.exit(main())
