#!/bin/sh
# The window beside a stalled stream, under Xvfb: `mms run --live --window`
# streams to a tcp:// receiver that accepts and never reads (a frozen
# display across the room) while screenshots are taken a second apart for
# 16 s; every one must differ from the one before (the test pattern moves),
# so the window never froze while the stream was stalled, failed and was
# reopened. 1280x720, so that the stream stalls within the run even where a
# socket buffers megabytes. Fails under CI=true when Xvfb, xwd or ffmpeg is
# missing; skips otherwise.
set -u
: "${MMS_BIN:?}"
PY=${PYTHON:-/usr/bin/python3}
. "$(dirname "$0")/../lib.sh"
lib_start window-stall
cd "$T"
need xwd ffmpeg
need_xvfb 90 1400x900x24

# The receiver: accepts every connection, reads nothing, a small window.
# Its output goes nowhere, so that nothing it leaves behind holds the test's.
"$PY" - port >/dev/null 2>&1 <<'PYEOF' &
import socket, sys
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
ls.bind(("127.0.0.1", 0))
ls.listen(8)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(ls.getsockname()[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
held = []
while True:
    held.append(ls.accept()[0])
PYEOF
spawned $!
wait_for port 50 || { echo "FAIL: the receiver did not start" >&2; exit 1; }

# Leak checking is off as in tests/cli/test_run_window.sh: the X11/GL
# libraries SDL loads and unloads leave what no suppression can name.
ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" SDL_RENDER_DRIVER=software \
    "$MMS_BIN" run -i lavfi:testsrc2=size=1280x720:rate=25 --live --window \
    -o "tcp://127.0.0.1:$(cat port)" --size 64x128 --threads 1 2>run.log &
MPID=$!
spawned $MPID
# The first picture can take seconds under a sanitizer on a loaded machine:
# wait (up to 30 s) for the test pattern's colours on screen, then 2 s more.
for i in $(seq 60); do
    xwd -root -silent >shot0.xwd
    levels=$(ffmpeg -v error -i shot0.xwd -f rawvideo -pix_fmt gray - |
             "$PY" -c 'import sys; print(len(set(sys.stdin.buffer.read())))')
    [ "${levels:-0}" -gt 32 ] && break
    sleep 0.5
done
sleep 2
for i in $(seq 16); do
    xwd -root -silent >"shot$i.xwd"
    sleep 1
done
kill -INT $MPID
wait $MPID
echo "mms run: exit $? ($(tail -1 run.log))"
reaped $MPID
"$PY" - <<'PYEOF'
import subprocess
import numpy as np
def read(i):
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", "shot%d.xwd" % i, "-f", "rawvideo",
                          "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).astype(int)
shots = [read(i) for i in range(1, 17)]
diffs = [float(np.abs(b - a).mean()) for a, b in zip(shots, shots[1:])]
print("mean change between screenshots a second apart:", " ".join("%.2f" % d for d in diffs))
assert shots[0].std() > 10, "nothing on screen: the test would prove nothing"
frozen = [i + 1 for i, d in enumerate(diffs) if d < 0.05]
assert not frozen, "the window froze between screenshots %s" % frozen
PYEOF
