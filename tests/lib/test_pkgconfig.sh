#!/bin/sh
# libmms as its users get it: the build installed into a staged root
# (DESTDIR, as a package build does), tests/lib/mms_client.c compiled from
# the installed <mms/mms.h> with `pkg-config --cflags --libs mms` alone,
# run on real frames and held to `mms segment` on the same input (same
# mask, same logits, byte for byte); then the ways opening and running
# must fail, each with its errno and one line saying why. Also what the
# install holds: the soname, the exported symbols (the public API and
# nothing else), a header without FFmpeg or oneDNN, mms and mmsd linked
# against libmms.so.0.
# Env: MMS_BUILD_DIR, MMS_SOURCE_DIR, MMS_BIN, CMAKE, CC, MMS_CLIENT_CFLAGS
# (the sanitizer flags the library was built with, if any). Real frames
# come from ../shared/data (required under CI=true; else synthetic ones).

set -u
BUILD=${MMS_BUILD_DIR:?MMS_BUILD_DIR must name the build tree}
SRC=${MMS_SOURCE_DIR:?MMS_SOURCE_DIR must name the source root}
MMS=${MMS_BIN:?MMS_BIN must name the mms binary}
CMAKE=${CMAKE:-cmake}
CC=${CC:-cc}
# The default model must come from the tree under test, not the caller.
unset MMS_MODEL

. "$(dirname "$0")/../lib.sh"
lib_start lib-pkgconfig

for tool in "$CMAKE" pkg-config "$CC" ffmpeg ffprobe readelf nm cmp; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool is needed" >&2; exit 1; }
done

# ---- the staged install ----
ROOT="$T/root"
if ! DESTDIR="$ROOT" "$CMAKE" --install "$BUILD" >"$T/install.log" 2>&1; then
    fail "cmake --install: $(tail -5 "$T/install.log")"
    finish lib_pkgconfig
fi
PC=$(find "$ROOT" -path '*/pkgconfig/mms.pc' | head -n 1)
HDR=$(find "$ROOT" -path '*/include/mms/mms.h' | head -n 1)
LIB=$(find "$ROOT" -name 'libmms.so.*.*' -type f | head -n 1)
MODEL=$(find "$ROOT" -path '*/share/mmsd/models/mms-rt.safetensors' | head -n 1)
BIN=$(find "$ROOT" -path '*/bin/mms' -type f | head -n 1)
MMSD=$(find "$ROOT" -path '*/bin/mmsd' -type f | head -n 1)
for f in PC HDR LIB MODEL BIN MMSD; do
    eval "v=\$$f"
    [ -n "$v" ] || { fail "the install has no $f: $(find "$ROOT" -type f | head -20)"; finish lib_pkgconfig; }
done
LIBDIR=$(dirname "$LIB")

# ---- what is installed ----
abi=$(sed -n 's/^#define MMS_ABI_VERSION \([0-9]*\)$/\1/p' "$HDR")
soname=$(readelf -d "$LIB" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ -n "$abi" ] && [ "$soname" = "libmms.so.$abi" ] ||
    fail "soname '$soname', header's MMS_ABI_VERSION '$abi'"
[ "$(readlink "$LIBDIR/libmms.so")" = "$soname" ] && [ -e "$LIBDIR/$soname" ] ||
    fail "libmms.so -> $(readlink "$LIBDIR/libmms.so"), expected -> $soname"

# The exported functions are exactly those the header marks MMS_API.
grep -o 'MMS_API[^(]*(' "$HDR" | grep -o 'mms_[a-z0-9_]*($' | tr -d '(' | sort >"$T/api"
nm -D --defined-only "$LIB" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort >"$T/exported"
[ -s "$T/api" ] && cmp -s "$T/api" "$T/exported" ||
    fail "exported symbols differ from the header's API: $(diff "$T/api" "$T/exported" | head -20 | tr '\n' ' ')"
nm -D --defined-only "$LIB" | grep -q ' mms_run@@MMS_0$' || fail "mms_run is not versioned MMS_0"

# The header stands alone: standard headers only, no FFmpeg or oneDNN.
grep '#include' "$HDR" | grep -v -E '<(stddef|stdint)\.h>' >"$T/inc" && fail "header includes: $(cat "$T/inc")"
grep -n -i -E 'AVFrame|AVCodec|dnnl|json_|libav' "$HDR" >"$T/types" && fail "header names: $(cat "$T/types")"

for b in "$BIN" "$MMSD"; do
    readelf -d "$b" | grep -q "(NEEDED).*\[$soname\]" || fail "${b##*/} is not linked against $soname"
done

# ---- pkg-config ----
# mms.pc names the real prefix: the configured one in a staged install,
# the one given to `cmake --install --prefix`.
configured=$(sed -n 's/^CMAKE_INSTALL_PREFIX:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
grep -q "^prefix=$configured\$" "$PC" || fail "staged mms.pc: $(grep '^prefix=' "$PC"), expected $configured"
if "$CMAKE" --install "$BUILD" --prefix "$T/prefix" >"$T/install2.log" 2>&1; then
    pc2=$(find "$T/prefix" -path '*/pkgconfig/mms.pc' | head -n 1)
    [ -n "$pc2" ] && grep -q "^prefix=$T/prefix\$" "$pc2" &&
        PKG_CONFIG_PATH="$(dirname "$pc2")" pkg-config --cflags mms | grep -q -- "-I$T/prefix/include" ||
        fail "--prefix $T/prefix: mms.pc says $(grep '^prefix=' "$pc2")"
else
    fail "cmake --install --prefix: $(tail -5 "$T/install2.log")"
fi
export PKG_CONFIG_PATH="$(dirname "$PC")" PKG_CONFIG_SYSROOT_DIR="$ROOT"
ver=$(pkg-config --modversion mms) || fail "pkg-config --modversion mms"
flags=$(pkg-config --cflags --libs mms) || fail "pkg-config --cflags --libs mms"
# libmms-dev depends on libmms0 alone: mms.pc must need no other .pc file
# (json-c's would need libjson-c-dev installed).
PKG_CONFIG_LIBDIR="$(dirname "$PC")" pkg-config --cflags --libs mms >/dev/null 2>"$T/alone.log" ||
    fail "mms.pc needs other packages' .pc files: $(cat "$T/alone.log")"
case "$flags" in
*"$SRC"* | *"$BUILD"*) fail "pkg-config flags reach into the source or build tree: $flags" ;;
esac
case "$flags" in
*"-I$(dirname "$(dirname "$HDR")")"*"-L$LIBDIR"* | *"-L$LIBDIR"*"-I$(dirname "$(dirname "$HDR")")"*) ;;
*) fail "pkg-config flags do not name the installed header and library: $flags" ;;
esac
"$MMS" --version | grep -q "^mms $ver (libmms $ver)\$" ||
    fail "mms --version '$("$MMS" --version)', mms.pc says $ver"
LD_LIBRARY_PATH="$LIBDIR" "$MMSD" --version | grep -q "^mmsd $ver (libmms $ver)\$" ||
    fail "installed mmsd --version '$(LD_LIBRARY_PATH="$LIBDIR" "$MMSD" --version 2>&1)'"

# ---- the client, from the installed header and pkg-config alone ----
# shellcheck disable=SC2086 # the flags are words
if ! "$CC" -std=c11 -pedantic -Wall -Wextra -Werror ${MMS_CLIENT_CFLAGS:-} \
    -o "$T/mms_client" "$SRC/tests/lib/mms_client.c" $flags >"$T/cc.log" 2>&1; then
    fail "the client does not build: $(head -c 800 "$T/cc.log")"
    finish lib_pkgconfig
fi
readelf -d "$T/mms_client" | grep -q "(NEEDED).*\[$soname\]" || fail "the client does not need $soname"
LD_LIBRARY_PATH="$LIBDIR" ldd "$T/mms_client" | grep -q "$soname => $LIBDIR/$soname" ||
    fail "the client does not load the installed library: $(LD_LIBRARY_PATH="$LIBDIR" ldd "$T/mms_client" | grep mms)"

client() { LD_LIBRARY_PATH="$LIBDIR" "$T/mms_client" "$@"; }

# ---- the frames ----
DATA="$SRC/../shared/data/labeled"
PNG="$DATA/cholec80-v01/image"
JPG="$DATA/endovis15/image"
real=1
if [ -d "$PNG" ] && [ -d "$JPG" ]; then
    png=$(find "$PNG" -name '*.png' | sort | head -n 1)
    jpg=$(find "$JPG" -name '*.jpg' | sort | head -n 1)
    [ -n "$png" ] && [ -n "$jpg" ] || fail "no images in $PNG or $JPG"
elif [ "${CI:-}" = true ]; then
    fail "../shared/data/labeled is missing (CI=true needs it)"
    finish lib_pkgconfig
else
    echo "note: ../shared/data not found; synthetic frames instead"
    real=0
    png="$T/synth.png" jpg="$T/synth.jpg"
    ffmpeg -nostdin -v error -f lavfi -i testsrc2=size=640x360 -frames:v 1 "$png" &&
        ffmpeg -nostdin -v error -f lavfi -i testsrc2=size=640x480 -frames:v 1 \
            -pix_fmt yuvj420p "$jpg" || fail "ffmpeg could not make the frames"
fi
ffmpeg -nostdin -v error -y -i "$png" -c:v ppm -pix_fmt rgb24 -f image2 "$T/frame.ppm" ||
    fail "ffmpeg: $png to PPM"
# The JPEG's own planes, unconverted (no -pix_fmt): what its decoder gives
# mms segment before core/yuv.h turns them into RGB.
[ "$(ffprobe -v error -select_streams v:0 -show_entries stream=pix_fmt -of csv=p=0 "$jpg")" = yuvj420p ] ||
    fail "$jpg is not 4:2:0"
jsize=$(ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=s=x:p=0 "$jpg")
ffmpeg -nostdin -v error -y -i "$jpg" -f rawvideo "$T/frame.yuv" || fail "ffmpeg: $jpg to raw"

# payload PGM: the pixels after a PGM/PNG-converted header, for comparing.
gray() { ffmpeg -nostdin -v error -y -i "$1" -pix_fmt gray -c:v pgm -f image2 "$2"; }

# same LABEL IMAGE CLIENT-INPUT [CLIENT ARGS...] -- [SEGMENT ARGS...]:
# the client's mask and logits against mms segment's.
same() {
    label=$1 image=$2 input=$3
    shift 3
    cargs="" sargs=""
    while [ $# -gt 0 ] && [ "$1" != -- ]; do cargs="$cargs $1"; shift; done
    [ $# -gt 0 ] && shift
    sargs="$*"
    rm -rf "$T/ref" "$T/raw"
    stem=$(basename "$image"); stem=${stem%.*}
    # shellcheck disable=SC2086
    if ! check_exit 0 "$MMS" segment $sargs --out "$T/ref" --raw "$T/raw" "$image"; then
        return
    fi
    # shellcheck disable=SC2086
    if ! check_exit 0 env LD_LIBRARY_PATH="$LIBDIR" "$T/mms_client" $cargs "$input" \
        "$T/client.pgm" "$T/client.f32"; then
        return
    fi
    grep -q '^precision ' "$T/out" || fail "$label: the client printed no precision"
    gray "$T/ref/$stem.png" "$T/ref.pgm" || { fail "$label: ffmpeg: $T/ref/$stem.png"; return; }
    cmp -s "$T/ref.pgm" "$T/client.pgm" || fail "$label: the library's mask differs from mms segment's"
    cmp -s "$T/raw/$stem.f32" "$T/client.f32" ||
        fail "$label: the library's logits differ from mms segment's"
    # A mask that is all one value would compare equal for the wrong reason
    # as easily; the real frames have tools in them.
    n=$(tail -c +16 "$T/client.pgm" | tr -d '\000' | wc -c)
    [ "$n" -gt 0 ] || [ "$real" = 0 ] || fail "$label: an empty mask"
    echo "ok: $label ($(sed -n 's/^precision //p' "$T/out"))"
}

same "RGB fp32" "$png" "$T/frame.ppm" -m "$MODEL" -p fp32 -- --model "$MODEL" --precision fp32
same "RGB int8" "$png" "$T/frame.ppm" -m "$MODEL" -p int8 -- --model "$MODEL" --precision int8
same "RGB auto, 1 thread" "$png" "$T/frame.ppm" -m "$MODEL" -p auto -t 1 -- \
    --model "$MODEL" --precision auto --threads 1
# The default model (path NULL) is found where the installed library
# looks: $MMS_MODEL here, since the staged root is not the prefix.
MMS_MODEL="$MODEL" same "RGB default model" "$png" "$T/frame.ppm" -m - -p fp32 -- --precision fp32
same "YUV 4:2:0 fp32" "$jpg" "$T/frame.yuv" -m "$MODEL" -p fp32 -y "$jsize" -- \
    --model "$MODEL" --precision fp32
same "YUV 4:2:0 int8" "$jpg" "$T/frame.yuv" -m "$MODEL" -p int8 -y "$jsize" -- \
    --model "$MODEL" --precision int8
# bf16 where the CPU has native bf16 (as /proc/cpuinfo says), else fp32
# saying why; with oneDNN held back (ONEDNN_MAX_CPU_ISA), either.
if [ -n "${ONEDNN_MAX_CPU_ISA:-}" ]; then want='^precision \(bf16: asked for\|fp32: .*no native bf16\)'
elif grep -qw 'amx_bf16\|avx512_bf16' /proc/cpuinfo; then want='^precision bf16: asked for'
else want='^precision fp32: .*no native bf16'; fi
client -m "$MODEL" -p bf16 "$T/frame.ppm" "$T/bf16.pgm" >"$T/out" 2>"$T/err" &&
    grep -q "$want" "$T/out" ||
    fail "bf16: not '$want': $(cat "$T/out" "$T/err")"

# ---- failures: each its errno and one line ----
# refused CODE TEXT CLIENT-ARGS...: exit 1, stderr one line ending "(CODE)"
# and containing TEXT.
refused() {
    code=$1 text=$2
    shift 2
    check_exit 1 env LD_LIBRARY_PATH="$LIBDIR" "$T/mms_client" "$@" || return
    [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "^mms_client: .*($code)\$" "$T/err" &&
        grep -q -- "$text" "$T/err" ||
        fail "expected one line with '$text' and ($code): $(cat "$T/err")"
}
size=$(wc -c <"$MODEL")
head -c 4 "$MODEL" >"$T/short.safetensors"
head -c 1000 "$MODEL" >"$T/header-cut.safetensors"
head -c $((size / 2)) "$MODEL" >"$T/half.safetensors"
: >"$T/empty.safetensors"
refused -2 "$T/missing.safetensors" -m "$T/missing.safetensors" "$T/frame.ppm" "$T/m.pgm"
MMS_MODEL="$T/gone.safetensors" refused -2 "$T/gone.safetensors" -m - "$T/frame.ppm" "$T/m.pgm"
refused -22 "short.safetensors" -m "$T/short.safetensors" "$T/frame.ppm" "$T/m.pgm"
refused -22 "header-cut.safetensors" -m "$T/header-cut.safetensors" "$T/frame.ppm" "$T/m.pgm"
refused -22 "half.safetensors" -m "$T/half.safetensors" "$T/frame.ppm" "$T/m.pgm"
refused -22 "empty.safetensors" -m "$T/empty.safetensors" "$T/frame.ppm" "$T/m.pgm"
refused -22 "frame.ppm" -m "$T/frame.ppm" "$T/frame.ppm" "$T/m.pgm"
refused -22 "frame size 0x360" -m "$MODEL" -s 0x360 "$T/frame.ppm" "$T/m.pgm"
refused -22 "frame size 640x-1" -m "$MODEL" -s 640x-1 "$T/frame.ppm" "$T/m.pgm"
refused -22 "frame size 20000x360" -m "$MODEL" -s 20000x360 "$T/frame.ppm" "$T/m.pgm"
[ -e "$T/m.pgm" ] && fail "a refused run wrote a mask"

finish lib_pkgconfig
