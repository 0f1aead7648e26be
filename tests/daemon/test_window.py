#!/usr/bin/python3
"""mmsd with `window = yes` under an X server (tests/daemon/test_window.sh
starts Xvfb): the window is closed as its close button closes it, by the
WM_DELETE_WINDOW message a window manager sends (through libX11, as
xdotool would). The window alone closes: it leaves the screen and the API
says it is closed; the pipeline keeps running, writing and recording, it
is healthy and not counted down, and the recording still takes a stop
through the API.

Env: MMS_BUILD_DIR (mmsd), MMS_SOURCE_DIR, DISPLAY.
"""
import ctypes
import os
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mmsd_harness import (MODEL, Api, Daemon, check, finish, free_port, metric,  # noqa: E402
                          wait_for)

CLIENT_MESSAGE = 33  # X.h


class ClientMessage(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong),
                ("send_event", ctypes.c_int), ("display", ctypes.c_void_p),
                ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                ("format", ctypes.c_int), ("l", ctypes.c_long * 5)]


class XEvent(ctypes.Union):
    _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]


class X:
    """The few libX11 calls a window manager's close needs."""

    def __init__(self):
        x = self.x = ctypes.CDLL("libX11.so.6")
        x.XOpenDisplay.restype = ctypes.c_void_p
        x.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x.XDefaultRootWindow.restype = ctypes.c_ulong
        x.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        x.XQueryTree.argtypes = [ctypes.c_void_p, ctypes.c_ulong,
                                 ctypes.POINTER(ctypes.c_ulong), ctypes.POINTER(ctypes.c_ulong),
                                 ctypes.POINTER(ctypes.POINTER(ctypes.c_ulong)),
                                 ctypes.POINTER(ctypes.c_uint)]
        x.XFetchName.argtypes = [ctypes.c_void_p, ctypes.c_ulong,
                                 ctypes.POINTER(ctypes.c_char_p)]
        x.XFree.argtypes = [ctypes.c_void_p]
        x.XInternAtom.restype = ctypes.c_ulong
        x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        x.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long,
                                 ctypes.POINTER(XEvent)]
        x.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
        x.XCloseDisplay.argtypes = [ctypes.c_void_p]
        self.dpy = x.XOpenDisplay(None)
        if not self.dpy:
            raise RuntimeError("cannot open display %s" % os.environ.get("DISPLAY"))

    def windows(self, name):
        """The top-level windows called `name`."""
        x, found = self.x, []
        x.XSync(self.dpy, 0)
        root, parent = ctypes.c_ulong(), ctypes.c_ulong()
        kids, n = ctypes.POINTER(ctypes.c_ulong)(), ctypes.c_uint()
        if not x.XQueryTree(self.dpy, x.XDefaultRootWindow(self.dpy), ctypes.byref(root),
                            ctypes.byref(parent), ctypes.byref(kids), ctypes.byref(n)):
            return found
        for i in range(n.value):
            title = ctypes.c_char_p()
            if x.XFetchName(self.dpy, kids[i], ctypes.byref(title)) and title.value:
                if title.value.decode() == name:
                    found.append(kids[i])
                x.XFree(title)
        if kids:
            x.XFree(kids)
        return found

    def close(self, window):
        """WM_DELETE_WINDOW, as a window manager sends for the close button."""
        x = self.x
        ev = XEvent()
        ev.xclient.type = CLIENT_MESSAGE
        ev.xclient.window = window
        ev.xclient.message_type = x.XInternAtom(self.dpy, b"WM_PROTOCOLS", 0)
        ev.xclient.format = 32
        ev.xclient.l[0] = x.XInternAtom(self.dpy, b"WM_DELETE_WINDOW", 0)
        x.XSendEvent(self.dpy, window, 0, 0, ctypes.byref(ev))
        x.XSync(self.dpy, 0)


def main():
    tmp = tempfile.mkdtemp(prefix="mms-window-")
    port = free_port()
    rec = os.path.join(tmp, "rec")
    conf = ("[mmsd]\nlisten = 127.0.0.1:%d\nlog_level = info\nmodel = %s\n\n"
            "[pipeline cam]\ninput = lavfi:testsrc2=size=160x120:rate=25\nmode = live\n"
            "size = 64x128\nthreads = 1\noutput = null\nwindow = yes\nrecord_dir = %s\n"
            % (port, MODEL, rec))
    x = X()
    d = Daemon(tmp, conf, name="window")
    api = Api(port)

    def cam():
        return api.json("GET", "/api/v1/pipelines/cam")[1] or {}

    def window_output():
        return ([o for o in cam().get("outputs", []) if o.get("output") == "window"] or [{}])[0]

    try:
        check(wait_for(lambda: cam().get("state") == "running"
                       and cam().get("recording", {}).get("file"), 120),
              "cam runs and records, its window open")
        wins = wait_for(lambda: x.windows("mmsd"), 30)
        check(wins and len(wins) == 1, "one window called mmsd on the screen: %s" % wins)
        check(window_output().get("state") == "up", "the API says the window is up: %s"
              % window_output())
        if wins:
            x.close(wins[0])
        closed = wait_for(lambda: window_output().get("state") == "closed", 30)
        check(closed, "the API says the window is closed: %s" % window_output())
        check("window: closed by its user" in window_output().get("reason", ""),
              "the API says why: %s" % window_output().get("reason"))
        check(wait_for(lambda: not x.windows("mmsd"), 30), "the window left the screen")
        before = cam()
        written0 = before.get("stats", {}).get("written", 0)
        frames0 = before.get("recording", {}).get("frames", 0)
        check(wait_for(lambda: cam().get("stats", {}).get("written", 0) >= written0 + 25
                       and cam().get("recording", {}).get("frames", 0) >= frames0 + 25, 60),
              "cam goes on writing and recording without its window")
        after = cam()
        check(after.get("state") == "running" and after.get("healthy") is True,
              "cam is still running and healthy: %s %s"
              % (after.get("state"), after.get("reasons")))
        check(after.get("stats", {}).get("outputs_down") == 0,
              "a window its user closed is not an output down (API)")
        metrics = api.req("GET", "/metrics")[2].decode()
        check(metric(metrics, "mmsd_outputs_down", pipeline="cam") == 0,
              "... nor in /metrics: %s" % metric(metrics, "mmsd_outputs_down", pipeline="cam"))
        check(api.req("GET", "/healthz")[0] == 200, "/healthz is 200")
        check("pipeline cam: window: closed by its user; it goes on without it" in d.text(),
              "the log says the window closed and the pipeline goes on")
        st, r = api.json("POST", "/api/v1/pipelines/cam/recording", {"action": "stop"})
        check(st == 200 and r and r.get("recording") is False,
              "the recording still takes a stop through the API (%s %s)" % (st, r))
    finally:
        if d.p.poll() is None:
            d.signal(signal.SIGTERM)
            check(d.wait(60) == 0, "mmsd exits 0 on SIGTERM")
        text = d.text()
        check("Sanitizer" not in text and "runtime error:" not in text, "no sanitizer report")
    return finish("window")


if __name__ == "__main__":
    sys.exit(main())
