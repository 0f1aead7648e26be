#!/bin/sh
# The main job on the shipped default model, from a fresh clone: installs
# what is missing, builds, and segments a frame. With no image given, it
# generates an endoscopy-like test frame itself (tissue-coloured noise, a
# circular scope mask, a grey instrument) so nothing is downloaded.
#   scripts/demo.sh [IMAGE...]
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"${JOBS:-2}" --target mms mmsd

out=out/demo
mkdir -p "$out"
if [ $# -eq 0 ]; then
    # A reddish tissue texture, a dark scope vignette, a grey tool shaft.
    ffmpeg -loglevel error -y -f lavfi \
        -i "nullsrc=s=640x360,geq=r='150+40*sin(X/9)*cos(Y/13)+random(1)*30':g='60+20*sin(X/17)+random(1)*20':b='55+15*cos(Y/11)'" \
        -vf "drawbox=x=330:y=120:w=300:h=34:color=0x9a9a9a:t=fill,vignette=PI/3.2" \
        -frames:v 1 "$out/frame.png"
    set -- "$out/frame.png"
fi
./build/mms info
./build/mms segment --out "$out" "$@"
echo "masks written to $out/" >&2
