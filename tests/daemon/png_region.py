#!/usr/bin/env python3
"""How much is drawn in a box of a screenshot.

    png_region.py OUT.png X Y W H

prints one line of JSON:
    {"nonblank": F, "mean": [R, G, B], "distinct_colours": N, ...}
nonblank is the fraction of the box's pixels whose colour differs from the
box's most common colour by more than 24 in any channel: about 0 for an
empty page area or a flat placeholder, large for a painted video frame.

The PNG is decoded by the ffmpeg CLI to raw RGB; the rest is the standard
library (no PIL, and no numpy, which the pyenv python3 on PATH may lack),
fast enough for a screenshot. The box is clipped to the image and an empty
box is an error. Exit status 0, or 1 with one line on stderr.
"""

import collections
import json
import subprocess
import sys

THRESHOLD = 24


def fail(msg):
    sys.stderr.write("png_region.py: %s\n" % msg)
    sys.exit(1)


def png_size(path):
    # The IHDR chunk: width and height right after the signature.
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        fail("%s: not a PNG" % path)
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def read_rgb(path):
    w, h = png_size(path)
    proc = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", path, "-frames:v", "1",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        fail("%s: ffmpeg cannot decode it: %s" % (path, proc.stderr.decode(errors="replace").strip()))
    if len(proc.stdout) != w * h * 3:
        fail("%s: ffmpeg gave %d bytes for %dx%d" % (path, len(proc.stdout), w, h))
    return w, h, proc.stdout


def main(argv):
    if len(argv) != 6:
        sys.stderr.write("usage: png_region.py OUT.png X Y W H\n")
        return 2
    try:
        x, y, bw, bh = (int(v) for v in argv[2:6])
    except ValueError:
        fail("X Y W H must be integers")
    if bw <= 0 or bh <= 0:
        fail("empty box %dx%d" % (bw, bh))
    try:
        w, h, rgb = read_rgb(argv[1])
    except OSError as e:
        fail("%s: %s" % (argv[1], e.strerror))
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + bw, w), min(y + bh, h)
    if x0 >= x1 or y0 >= y1:
        fail("box %d,%d %dx%d is outside the %dx%d image" % (x, y, bw, bh, w, h))

    # Each pixel as a 3-byte string: counting them is one C-speed pass.
    counts = collections.Counter()
    for row in range(y0, y1):
        line = rgb[(row * w + x0) * 3:(row * w + x1) * 3]
        counts.update(line[i:i + 3] for i in range(0, len(line), 3))
    n = (x1 - x0) * (y1 - y0)
    mode = counts.most_common(1)[0][0]
    differ = 0
    sums = [0, 0, 0]
    for px, k in counts.items():
        for c in range(3):
            sums[c] += px[c] * k
        if max(abs(px[c] - mode[c]) for c in range(3)) > THRESHOLD:
            differ += k

    print(json.dumps({
        "nonblank": round(differ / n, 4),
        "mean": [round(v / n, 1) for v in sums],
        "distinct_colours": len(counts),
        "mode": "#%02x%02x%02x" % tuple(mode),
        "box": [x0, y0, x1 - x0, y1 - y0],
        "image": [w, h],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
