#!/usr/bin/python3
"""mmsd's status page in a real browser: headless Chromium renders http://HOST:PORT/
and the preview of a pipeline with frames shows a picture where the page puts
it (x=24, y=72, 640x360), while the preview of a pipeline whose source is not
up shows the plain NO SIGNAL card.

Env: MMS_BUILD_DIR, MMS_SOURCE_DIR.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mmsd_harness import (MODEL, Api, Daemon, Feeder, check, finish, free_port,  # noqa: E402
                          wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))


def region(png, x, y, w, h):
    r = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "png_region.py"), png, str(x),
                        str(y), str(w), str(h)], capture_output=True, text=True)
    return json.loads(r.stdout) if r.returncode == 0 else {"nonblank": -1, "error": r.stderr}


def main():
    tmp = tempfile.mkdtemp(prefix="mms-page-")
    port, uport, dark = free_port(), free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    conf = "[mmsd]\nlisten = 127.0.0.1:%d\nmodel = %s\n" % (port, MODEL)
    for name, p in (("cam", uport), ("dark", dark)):
        conf += ("\n[pipeline %s]\ninput = udp://127.0.0.1:%d\nmode = live\nsize = 160x288\n"
                 "threads = 1\n" % (name, p))
    feeder = Feeder(uport)
    feeder.start()
    d = Daemon(tmp, conf)
    api = Api(port)
    try:
        up = wait_for(lambda: api.req("GET", "/preview/cam.jpg")[0] == 200, 90)
        check(up, "the cam preview has a frame")
        st, _, page = api.req("GET", "/")
        check(st == 200 and b"<img" in page, "GET / is an HTML page with previews")
        png = os.path.join(tmp, "page.png")
        r = subprocess.run(["sh", os.path.join(HERE, "screenshot.sh"),
                            "http://127.0.0.1:%d/" % port, png, "1400", "900", "3000"],
                           capture_output=True, text=True)
        check(r.returncode == 0 and os.path.exists(png), "Chromium took a screenshot: %s"
              % (r.stdout + r.stderr).strip())
        cam = region(png, 24 + 4, 72 + 4, 640 - 8, 360 - 8)
        check(cam["nonblank"] > 0.5 and cam.get("distinct_colours", 0) > 100,
              "the cam preview shows a picture: %s" % cam)
        # Second card: 16 padding + 656 card + 16 gap, then 8 padding.
        darkbox = region(png, 696 + 4, 72 + 4, 640 - 8, 360 - 8)
        check(0 <= darkbox["nonblank"] < 0.1 and darkbox.get("distinct_colours", 99999) < 1000,
              "the sourceless preview is a plain card, not a picture: %s" % darkbox)
        check(all(30 < c < 80 for c in darkbox.get("mean", [0])),
              "the sourceless preview is the grey NO SIGNAL card: %s" % darkbox)
    finally:
        feeder.stop()
        d.p.kill()
        d.wait()
    return finish("page")


if __name__ == "__main__":
    sys.exit(main())
