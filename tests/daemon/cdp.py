"""Headless Chromium driven through the DevTools protocol over a pipe
(--remote-debugging-pipe: commands in on fd 3, answers and events out on
fd 4, each a JSON text ended by a NUL byte), with the Python standard
library only. Enough for the status-page test: open a page, run script in
it, click, type, take a screenshot."""
import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time


def find_chromium():
    """The real binary rather than Debian's /usr/bin/chromium wrapper, as
    screenshot.sh does; CHROMIUM names another."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    for b in ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(b)
        if path:
            return path
    return None


class CdpError(Exception):
    pass


class Browser:
    def __init__(self, width=1400, height=900, binary=None):
        self.width, self.height = width, height
        self.profile = tempfile.mkdtemp(prefix="mms-cdp-")
        self.log = open(os.path.join(self.profile, "chromium.log"), "w")
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        # Out of the way of 3 and 4, so that the child's dup2 cannot clobber one.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_r, from_w)]
        for fd in (to_r, from_w):
            os.close(fd)

        def child():
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.p = subprocess.Popen(
            [binary or find_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--user-data-dir=" + self.profile, "--no-first-run",
             "--no-default-browser-check", "--disable-extensions",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--mute-audio", "--hide-scrollbars", "--force-device-scale-factor=1",
             "--window-size=%d,%d" % (width, height), "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, close_fds=False,
            preexec_fn=child)
        for fd in high:
            os.close(fd)
        self.w, self.r = to_w, from_r
        self.buf = b""
        self.events = []
        self.next_id = 0

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except (CdpError, OSError):
            pass
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        for fd in (self.w, self.r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def _recv(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.time()
            if left <= 0 or not select.select([self.r], [], [], left)[0]:
                raise CdpError("no answer from Chromium in time")
            data = os.read(self.r, 1 << 20)
            if not data:
                raise CdpError("Chromium closed the pipe (exit status %s)" % self.p.poll())
            self.buf += data
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=None, timeout=15):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self.w, data):]
        deadline = time.time() + timeout
        while True:
            m = self._recv(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise CdpError("%s: %s" % (method, m["error"].get("message")))
                return m.get("result", {})
            self.events.append(m)

    def page(self, url="about:blank", init_script=None):
        """A new tab showing url; init_script runs in every document it
        loads, before the page's own scripts."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
        return Page(self, session, url, init_script)


class Page:
    def __init__(self, browser, session, url, init_script=None):
        self.b, self.s = browser, session
        for m in ("Page.enable", "Runtime.enable"):
            self.call(m)
        if init_script:
            self.call("Page.addScriptToEvaluateOnNewDocument", {"source": init_script})
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": browser.width, "height": browser.height, "deviceScaleFactor": 1,
                   "mobile": False})
        # Focus and :focus-visible as in a window the user is looking at.
        self.call("Emulation.setFocusEmulationEnabled", {"enabled": True})
        if url != "about:blank":
            self.navigate(url)

    def call(self, method, params=None, timeout=15):
        return self.b.call(method, params, self.s, timeout)

    def navigate(self, url):
        r = self.call("Page.navigate", {"url": url})
        if r.get("errorText"):
            raise CdpError("%s: %s" % (url, r["errorText"]))

    def eval(self, expr, timeout=15):
        """The value of a JavaScript expression (awaited if a promise)."""
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                           "awaitPromise": True}, timeout)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise CdpError("%s: %s" % (expr, d.get("exception", {}).get("description")
                                       or d.get("text")))
        return r["result"].get("value")

    def wait(self, expr, timeout=10, step=0.1):
        """Waits until expr is truthy; its last value."""
        end = time.time() + timeout
        while True:
            try:
                v = self.eval(expr)
            except CdpError:
                v = None
            if v or time.time() > end:
                return v
            time.sleep(step)

    def click(self, selector):
        """A real mouse click (press and release) in the middle of the element."""
        box = self.eval("(() => {const e = document.querySelector(%s); if (!e) return null;"
                        " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
                        " return [r.x + r.width / 2, r.y + r.height / 2];})()"
                        % json.dumps(selector))
        if not box:
            raise CdpError("nothing on the page matches %s" % selector)
        x, y = box
        self.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        for t in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": t, "x": x, "y": y, "button": "left",
                                                   "buttons": 1 if t == "mousePressed" else 0,
                                                   "clickCount": 1})

    def key(self, name, shift=False):
        """One key pressed and released, as the keyboard sends it: Tab or Enter, Space."""
        codes = {"Tab": (9, ""), "Enter": (13, "\r"), " ": (32, " ")}
        vk, text = codes[name]
        down = {"type": "keyDown", "key": name, "code": "Space" if name == " " else name,
                "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk,
                "modifiers": 8 if shift else 0}
        if text:
            down["text"] = down["unmodifiedText"] = text
        self.call("Input.dispatchKeyEvent", down)
        up = dict(down, type="keyUp")
        up.pop("text", None)
        up.pop("unmodifiedText", None)
        self.call("Input.dispatchKeyEvent", up)

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png"}, timeout=30)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
