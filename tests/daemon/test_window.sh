#!/bin/sh
# mmsd's window closed by its user, under an Xvfb of its own: only the
# window closes, the pipeline and its recording go on
# (tests/daemon/test_window.py). Fails under CI=true when Xvfb is missing;
# skips otherwise.
set -u
PY=${PYTHON:-/usr/bin/python3}
. "$(dirname "$0")/../lib.sh"
lib_start daemon-window
need_xvfb 60 800x600x24
# Leak checking off as in tests/cli/test_run_window.sh: the X11 libraries
# SDL loads and unloads leave what no suppression can name.
ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" SDL_VIDEODRIVER=x11 \
    SDL_RENDER_DRIVER=software "$PY" "$(dirname "$0")/test_window.py" || fail "test_window.py"
finish "${0##*/}"
