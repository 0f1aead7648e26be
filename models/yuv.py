"""Y'CbCr -> RGB24 exactly as the C engine converts (core/yuv.h): the
frame's matrix and range, bilinear chroma at its siting (JPEG: centred;
H.264: co-sited columns, rows midway), rounded to an integer before the
matrix, fixed-point lookup tables in 1/65536 units, round half up, clamp.

  decode(path) -> HxWx3 uint8, the RGB the engine computes from the file.
"""

import json
import subprocess

import numpy as np

K = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722), "bt2020": (0.2627, 0.0593),
     "smpte240m": (0.212, 0.087), "fcc": (0.30, 0.11)}
# ffprobe's color_space names -> the matrix; anything else reads as BT.601.
MATRIX = {"bt709": "bt709", "fcc": "fcc", "smpte240m": "smpte240m", "bt2020nc": "bt2020",
          "bt2020c": "bt2020"}
LAYOUT = {"yuv420p": (1, 1, 0), "yuvj420p": (1, 1, 1), "yuv422p": (1, 0, 0),
          "yuvj422p": (1, 0, 1), "yuv444p": (0, 0, 0), "yuvj444p": (0, 0, 1)}
SITE = {"center": (1, 1), "topleft": (0, 0), "top": (1, 0), "left": (0, 1)}


def _fix(v):
    # lround: half away from zero
    return (np.sign(v) * np.floor(np.abs(v) * 65536.0 + 0.5)).astype(np.int64)


def lut(matrix, full):
    kr, kb = K[matrix]
    kg = 1.0 - kr - kb
    i = np.arange(256, dtype=np.float64)
    y = (i - (0 if full else 16)) * (1.0 if full else 255.0 / 219.0)
    c = (i - 128) * (1.0 if full else 255.0 / 224.0)
    return (_fix(y), _fix(2 * (1 - kr) * c), _fix(-2 * (1 - kb) * kb / kg * c),
            _fix(-2 * (1 - kr) * kr / kg * c), _fix(2 * (1 - kb) * c))


def taps(n_luma, sub, site, n):
    x = np.arange(n_luma)
    if not sub:
        return x, x, np.zeros_like(x)
    q = 2 * x - site
    j = np.where(q >= 0, q >> 2, -1)
    f = q - 4 * j
    return np.clip(j, 0, n - 1), np.minimum(j + 1, n - 1), f


def to_rgb(Y, U, V, subx, suby, site_x, site_y, matrix, full):
    h, w = Y.shape
    ly, rv, gu, gv, bu = lut(matrix, full)
    x0, x1, fx = taps(w, subx, site_x, U.shape[1])
    y0, y1, fy = taps(h, suby, site_y, U.shape[0])

    def chroma(C):
        C = C.astype(np.int64)
        a = C[y0][:, x0] * (4 - fx) + C[y0][:, x1] * fx
        b = C[y1][:, x0] * (4 - fx) + C[y1][:, x1] * fx
        return (a * (4 - fy)[:, None] + b * fy[:, None] + 8) >> 4

    u, v, yy = chroma(U), chroma(V), ly[Y]
    out = [yy + rv[v], yy + gu[u] + gv[v], yy + bu[u]]
    return np.stack([np.clip((c + 32768) >> 16, 0, 255) for c in out], -1).astype(np.uint8)


def probe(path):
    r = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                        "stream=width,height,pix_fmt,color_space,color_range,chroma_location",
                        "-of", "json", path], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)["streams"][0]


def decode(path):
    s = probe(path)
    w, h, fmt = int(s["width"]), int(s["height"]), s["pix_fmt"]
    if fmt not in LAYOUT:
        # RGB files (PNG...): the decoder's own pixels.
        raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt",
                              "rgb24", "-"], capture_output=True, check=True).stdout
        return np.frombuffer(raw, np.uint8).reshape(h, w, 3)
    subx, suby, jfull = LAYOUT[fmt]
    full = bool(jfull) or s.get("color_range") == "pc"
    site = SITE.get(s.get("chroma_location"), (1 if full else 0, 1))
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", fmt,
                          "-"], capture_output=True, check=True).stdout
    cw, ch = (w + subx) >> subx, (h + suby) >> suby
    b = np.frombuffer(raw, np.uint8)
    Y = b[:w * h].reshape(h, w)
    U = b[w * h:w * h + cw * ch].reshape(ch, cw)
    V = b[w * h + cw * ch:w * h + 2 * cw * ch].reshape(ch, cw)
    return to_rgb(Y, U, V, subx, suby, site[0], site[1],
                  MATRIX.get(s.get("color_space"), "bt601"), full)
