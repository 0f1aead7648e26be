#!/bin/sh
# Builds mmsd twice (optimised, and with AddressSanitizer + UBSan) and runs
# the whole test suite on both, then every fuzz target briefly (replaying
# the inputs of the bugs found so far first). This is the README's test
# command and all that CI runs. MMS_FUZZ_SECONDS=0 leaves the fuzzing out.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
JOBS=${JOBS:-2}

for variant in release asan; do
    dir=build-test-$variant
    # MMS_GST=ON: install-deps installed GStreamer, so a plugin that is not
    # built is an error here, not a quiet AUTO.
    flags="-DCMAKE_BUILD_TYPE=Release -DMMS_GST=ON"
    [ $variant = asan ] && flags="-DCMAKE_BUILD_TYPE=RelWithDebInfo -DMMS_SANITIZE=ON -DMMS_GST=ON"
    echo "== $variant: build" >&2
    # shellcheck disable=SC2086
    cmake -S . -B "$dir" $flags >/dev/null
    cmake --build "$dir" -j"$JOBS"
    echo "== $variant: tests" >&2
    ctest --test-dir "$dir" --output-on-failure -j1
done
fuzz=${MMS_FUZZ_SECONDS:-20}
if [ "$fuzz" != 0 ]; then
    echo "== fuzz: every target ${fuzz} s" >&2
    MMS_FUZZ_BUILD=build-test-fuzz ./fuzz/run.sh "$fuzz"
fi
echo "== all tests passed (release and asan; fuzz ${fuzz} s per target)" >&2
