#!/bin/sh
# The main job on the shipped default model, from a fresh clone: installs
# what is missing, builds, and runs `mms run` on a video. With no input
# given it first generates a synthetic endoscopy-like clip (tissue texture,
# specular highlights, a circular scope, moving instruments, and their
# exact masks), so nothing is downloaded. It writes the annotated video to
# out/demo/annotated.mp4 and opens a window when a display exists.
#   scripts/demo.sh [INPUT]          INPUT: a file, /dev/videoN, rtsp://...
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh --run
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"${JOBS:-2}" --target mms mmsd

out=out/demo
mkdir -p "$out"
if [ $# -eq 0 ]; then
    ./build/mms synth -o "$out/synthetic.mp4" --frames 250 --size 1280x720 --masks "$out/masks"
    set -- "$out/synthetic.mp4"
fi
window=
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
    window=--window
fi
./build/mms info
./build/mms run -i "$1" -o "$out/annotated.mp4" --meta "$out/frames.jsonl" $window
echo "annotated video: $out/annotated.mp4, per-frame data: $out/frames.jsonl" >&2
