#!/usr/bin/python3
"""mmsd's status page in a real browser.

Headless Chromium renders http://HOST:PORT/: the preview of a pipeline with
frames shows a picture where the page puts it (x=24, y=72, 640x360), while
the preview of a pipeline whose source is not up shows the plain NO SIGNAL
card (screenshot.sh, as an operator's browser would first paint it).

Then the page is used as a person would, through the DevTools protocol
(cdp.py): a mouse click on "outline" and Enter on the recording button,
reached with Tab, change the pipeline as the API then reports; each button
is a Tab stop with a visible focus ring; the chart draws the samples it
polled; the script and style run under the page's Content-Security-Policy.
With a token, the page opened as /?access_token=TOKEN works the same and
never carries the token in its HTML; once the daemon has another token, the
page's request is refused (401) and the page says so; a recording stop that could not be saved says why in
the card's table; with the daemon gone,
a click shows an error instead of doing nothing.

Env: MMS_BUILD_DIR, MMS_SOURCE_DIR; MMS_PAGE_SCREENSHOT=FILE.png also saves
the page as the browser shows it after the clicks (with a fuller chart).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Browser, CdpError, find_chromium  # noqa: E402
from mmsd_harness import (MODEL, Api, Daemon, Feeder, check, finish, free_port,  # noqa: E402
                          wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))
TOKEN_1, TOKEN_2 = "page-t0ken-one", "page-t0ken-two"

# Collects what the Content-Security-Policy blocked, before the page's script runs.
CSP_WATCH = ("window.__csp = []; document.addEventListener('securitypolicyviolation', "
             "e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")


def region(png, x, y, w, h):
    r = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "png_region.py"), png, str(x),
                        str(y), str(w), str(h)], capture_output=True, text=True)
    return json.loads(r.stdout) if r.returncode == 0 else {"nonblank": -1, "error": r.stderr}


def pipe_conf(name, port, extra=""):
    return ("\n[pipeline %s]\ninput = udp://127.0.0.1:%d\nmode = live\nsize = 160x288\n"
            "threads = 1\n%s" % (name, port, extra))


def api_style(api, name):
    st, j = api.json("GET", "/api/v1/pipelines/" + name)
    return j["settings"]["style"] if st == 200 and j else None


def api_recording(api, name):
    st, j = api.json("GET", "/api/v1/pipelines/" + name)
    return j["recording"]["recording"] if st == 200 and j else None


def q(sel):
    return json.dumps(sel)


def text(page, sel):
    return page.eval("(document.querySelector(%s) || {}).textContent" % q(sel))


def previews(tmp, port):
    """The first paint of the page, as screenshot.sh takes it."""
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


def headers_and_html(api):
    st, hd, page = api.req("GET", "/")
    check(st == 200 and b"<img" in page, "GET / is an HTML page with previews")
    csp = {k.lower(): v for k, v in hd.items()}.get("content-security-policy", "")
    check("default-src 'none'" in csp and "script-src 'sha256-" in csp and
          "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp,
          "the page has a strict Content-Security-Policy: %s" % csp)
    check(b"<script src" not in page and b"http://" not in page.split(b"<main")[0] and
          b"@import" not in page, "nothing is loaded from elsewhere")
    return page


def card_sel(name, sel=""):
    return "#card-%s %s" % (name, sel)


def use_page(b, port, api, tmp, shot):
    """The page of the daemon without a token: mouse, keyboard, chart."""
    page = b.page("http://127.0.0.1:%d/" % port, CSP_WATCH)
    drawn = page.wait("+document.querySelector(%s).dataset.samples >= 3"
                      % q(card_sel("cam", "canvas")), 15)
    check(drawn, "the page polled the API and charted 3 samples")
    # The chart's pixels in the fps colour, not only its counter.
    blue = page.eval("(() => {const c = document.querySelector(%s);"
                     " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                     " let n = 0; for (let i = 0; i < d.length; i += 4)"
                     "  if (d[i] < 60 && Math.abs(d[i+1] - 115) < 30 && d[i+2] > 200) n++;"
                     " return n;})()" % q(card_sel("cam", "canvas")))
    check(blue and blue > 20, "the chart has an fps line drawn (%s blue pixels)" % blue)
    check(page.eval("getComputedStyle(document.querySelector('header')).backgroundColor")
          == "rgb(27, 31, 36)", "the inline style sheet applies under the CSP")
    check(page.eval("document.querySelectorAll('[role=status], [role=alert]').length") >= 5,
          "each card has a status and an alert region, the page one for the connection")
    check(page.eval("document.querySelector(%s).getAttribute('aria-pressed')"
                    % q(card_sel("cam", "button[data-style=fill]"))) == "true",
          "fill, the configured style, shows pressed")
    check(text(page, card_sel("dark", "button.recbtn")) == "Recording not configured" and
          page.eval("document.querySelector(%s).disabled" % q(card_sel("dark", "button.recbtn"))),
          "without record_dir the recording button is disabled and says why")

    # A mouse click on "outline".
    page.click(card_sel("cam", "button[data-style=outline]"))
    check(wait_for(lambda: api_style(api, "cam") == "outline", 5),
          "a click on outline: the API reports style outline")
    pressed = ("[...document.querySelectorAll(%s)].filter(b => b.getAttribute('aria-pressed')"
               " === 'true').map(b => b.dataset.style).join()" % q(card_sel("cam", "button.style")))
    page.wait(pressed + " === 'outline'", 5)
    check(page.eval(pressed) == "outline", "only outline shows pressed (%s)" % page.eval(pressed))
    check(text(page, card_sel("cam", ".msg")) == "cam: style outline",
          "the change is announced in the card's status region")

    # Every enabled button is a Tab stop, in order, with a visible focus ring,
    # from the top (a click on the header starts the Tab order there).
    page.click("header")
    stops, rings = [], []
    for _ in range(12):
        page.key("Tab")
        s = page.eval("(() => {const e = document.activeElement; const c = e.closest('.card');"
                      " const f = getComputedStyle(e); return [(c ? c.dataset.name : '-') + ':'"
                      " + (e.dataset.style || e.className), f.outlineStyle + ' ' + f.outlineWidth];"
                      "})()")
        stops.append(s[0])
        rings.append(s[1])
    want = ["cam:fill", "cam:outline", "cam:mask", "cam:off", "cam:recbtn on",
            "dark:fill", "dark:outline", "dark:mask", "dark:off"]
    check(stops[:9] == want, "Tab reaches every button in order: %s" % stops)
    check(all(r.startswith("solid") and float(r.split()[1][:-2]) >= 2 for r in rings[:9]),
          "each focused button has a visible focus ring: %s" % rings[:9])

    # Enter on the recording button: stop, then start again.
    page.click("header")
    for _ in range(5):
        page.key("Tab")
    check(page.eval("document.activeElement.matches(%s)" % q(card_sel("cam", "button.recbtn"))),
          "five Tabs reach cam's recording button")
    check(api_recording(api, "cam") is True, "cam records from the start (record_dir)")
    page.key("Enter")
    check(wait_for(lambda: api_recording(api, "cam") is False, 5),
          "Enter on 'Stop recording': the API reports the recording off")
    # Its state_dir has no directory: the stop cannot outlive a restart.
    saved = page.wait("document.querySelector(%s).textContent.includes('warning: ')"
                      % q(card_sel("cam", ".rec")), 10)
    check(saved and "recording-off" in text(page, card_sel("cam", ".rec")),
          "a stop that could not be saved: the table says why: %s"
          % text(page, card_sel("cam", ".rec")))
    page.wait("document.querySelector(%s).textContent.startsWith('cam: recording')"
              % q(card_sel("cam", ".msg")), 5)
    msg = text(page, card_sel("cam", ".msg")) or ""
    check(page.wait("document.activeElement.textContent === 'Start recording'", 5) and
          msg.startswith("cam: recording stopped \u2014 not saved: cannot create ")
          and "recording-off.tmp" in msg,
          "the button now offers to start, the stop is announced, and that it is not saved "
          "(%s)" % msg)
    page.key("Enter")
    check(wait_for(lambda: api_recording(api, "cam") is True, 5),
          "Enter on 'Start recording': the API reports the recording on")
    check(page.wait("document.activeElement.textContent === 'Stop recording'", 5) and
          page.wait("document.querySelector(%s).textContent.startsWith('on')"
                    % q(card_sel("cam", ".rec")), 5),
          "the button offers to stop again, the table says on")
    check(page.eval("window.__csp.length === 0 && document.getElementById('conn').textContent"
                    " === ''"), "no CSP violation, no connection error: %s"
          % page.eval("window.__csp"))

    page.eval("document.activeElement.blur()")
    if shot:
        page.wait("+document.querySelector(%s).dataset.samples >= 25"
                  % q(card_sel("cam", "canvas")), 30)
    png = shot or os.path.join(tmp, "page-after.png")
    page.screenshot(png)
    check(os.path.getsize(png) > 10000, "the page as shown after the clicks: %s (%d bytes)"
          % (png, os.path.getsize(png)))
    return page


def token_page(b, port, api):
    """A page opened with the token: it works, and it carries no token."""
    url = "http://127.0.0.1:%d/?access_token=%s" % (port, TOKEN_1)
    st, _, html = api.req("GET", "/?access_token=" + TOKEN_1, token=False)
    check(st == 200 and TOKEN_1.encode() not in html,
          "with a token: GET /?access_token= is the page, without the token in it")
    check(api.req("GET", "/", token=False)[0] == 401, "with a token: GET / without it is 401")
    page = b.page(url, CSP_WATCH)
    check(page.wait("+document.querySelector(%s).dataset.samples >= 2"
                    % q(card_sel("or1", "canvas")), 15),
          "with a token: the page's polls are let in (the chart has samples)")
    check(page.wait("document.querySelector('#preview-or1').naturalWidth > 0", 10),
          "with a token: the preview <img> is let in")
    page.click(card_sel("or1", "button[data-style=mask]"))
    check(wait_for(lambda: api_style(api, "or1") == "mask", 5),
          "with a token: a click on mask changes the style")
    return page


def main():
    if not find_chromium():
        check(False, "Chromium is installed (apt-get install chromium)")
        return finish("page")
    tmp = tempfile.mkdtemp(prefix="mms-page-")
    shot = os.environ.get("MMS_PAGE_SCREENSHOT")
    port, uport, dark = free_port(), free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    conf = ("[mmsd]\nlisten = 127.0.0.1:%d\nmodel = %s\nstate_dir = %s/no/state\n"
            % (port, MODEL, tmp))
    conf += pipe_conf("cam", uport, "record_dir = %s/rec\n" % tmp) + pipe_conf("dark", dark)
    # The same set-up with a token, its pipeline without a source.
    tport = free_port()
    tok_file = os.path.join(tmp, "token")
    with open(tok_file, "w") as f:
        f.write(TOKEN_1 + "\n")
    tconf = ("[mmsd]\nlisten = 127.0.0.1:%d\nmodel = %s\ntoken_file = %s\n"
             % (tport, MODEL, tok_file)) + pipe_conf("or1", free_port(socket.SOCK_DGRAM))
    feeder = Feeder(uport)
    feeder.start()
    d = Daemon(tmp, conf)
    td = None
    api, tapi = Api(port), Api(tport, token=TOKEN_1)
    b = None
    start = time.time()
    try:
        up = wait_for(lambda: api.req("GET", "/preview/cam.jpg")[0] == 200, 90)
        check(up, "the cam preview has a frame")
        headers_and_html(api)
        previews(tmp, port)
        # Only now: its warm-up would slow the first (two cores, ASan).
        td = Daemon(tmp, tconf, name="mmsd-token")
        b = Browser(1400, 900)
        page = use_page(b, port, api, tmp, shot)
        check(wait_for(lambda: tapi.req("GET", "/api/v1/pipelines")[0] == 200, 60),
              "the daemon with a token answers")
        tpage = token_page(b, tport, tapi)

        # The token changes under the open page: its next request is refused.
        td.p.kill()
        td.wait()
        with open(tok_file, "w") as f:
            f.write(TOKEN_2 + "\n")
        td = Daemon(tmp, tconf, name="mmsd-token2")
        tapi = Api(tport, token=TOKEN_2)
        check(wait_for(lambda: tapi.req("GET", "/api/v1/pipelines")[0] == 200, 60),
              "the daemon is back with another token")
        tpage.click(card_sel("or1", "button[data-style=outline]"))
        tpage.wait("document.querySelector(%s).textContent" % q(card_sel("or1", ".err")), 5)
        err = text(tpage, card_sel("or1", ".err"))
        check(err and "HTTP 401" in err and "token" in err,
              "a stale token: the click is refused and the page says so: %s" % err)
        check(api_style(tapi, "or1") == "fill", "a stale token: the style is unchanged")
        tpage.wait("document.getElementById('conn').textContent.includes('401')", 5)
        conn = tpage.eval("document.getElementById('conn').textContent")
        check("401" in conn, "a stale token: the page says it is not updated: %s" % conn)

        # The daemon goes away: a click says it failed.
        d.p.kill()
        d.wait()
        page.click(card_sel("cam", "button[data-style=mask]"))
        err = page.wait("document.querySelector(%s).textContent" % q(card_sel("cam", ".err")), 5)
        check(err and "did not answer" in err and "style mask" in err,
              "mmsd gone: the click shows an error, not nothing: %s" % err)
        check(page.eval("document.querySelector(%s).getAttribute('role')"
                        % q(card_sel("cam", ".err"))) == "alert", "errors are in a role=alert")
        check(page.wait("document.getElementById('conn').textContent", 5),
              "mmsd gone: the header says the numbers are not updated")
    except CdpError as e:
        check(False, "the browser session: %s" % e)
        if b:
            with open(os.path.join(b.profile, "chromium.log"), errors="replace") as f:
                print("".join(f.readlines()[-5:]))
    finally:
        if b:
            b.close()
        feeder.stop()
        for x in (d, td):
            if x:
                x.p.kill()
                x.wait()
        print("page: %.1f s with the daemons up" % (time.time() - start))
    shutil.rmtree(tmp, ignore_errors=True)
    return finish("page")


if __name__ == "__main__":
    sys.exit(main())
