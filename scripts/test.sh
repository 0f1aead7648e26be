#!/bin/sh
# Builds mmsd twice (optimised, and with AddressSanitizer + UBSan) and runs
# the whole test suite on both. This is the README's test command and all
# that CI runs.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
JOBS=${JOBS:-2}

for variant in release asan; do
    dir=build-test-$variant
    flags="-DCMAKE_BUILD_TYPE=Release"
    [ $variant = asan ] && flags="-DCMAKE_BUILD_TYPE=RelWithDebInfo -DMMS_SANITIZE=ON"
    echo "== $variant: build" >&2
    # shellcheck disable=SC2086
    cmake -S . -B "$dir" $flags >/dev/null
    cmake --build "$dir" -j"$JOBS"
    echo "== $variant: tests" >&2
    ctest --test-dir "$dir" --output-on-failure -j1
done
echo "== all tests passed (release and asan)" >&2
