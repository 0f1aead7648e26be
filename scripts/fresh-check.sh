#!/bin/bash
# Proves that the README's two commands work on a fresh Debian 12: builds a
# minbase bookworm root, clones the committed HEAD into it, and runs
# ./scripts/demo.sh then ./scripts/test.sh there under chroot with a clean
# environment. It catches what a reused machine hides: packages installed by
# hand, files left in /tmp, variables in the shell. A check for people, not
# part of CI: it needs root, the network (the apt mirror) and about 30
# minutes on two cores (more the first time, for debootstrap).

# The functions run through `step` and the EXIT trap, which shellcheck 0.9
# does not follow once the last line ends in exit (see there).
# shellcheck disable=SC2317
set -euo pipefail
# Job control puts every step in a process group of its own, so an
# interrupted check can end a step with all its children (debootstrap, dpkg).
set -m

usage() {
    cat <<'EOF'
Usage: scripts/fresh-check.sh [OPTIONS]

Runs ./scripts/demo.sh and ./scripts/test.sh of the committed HEAD in a fresh
Debian 12 (bookworm, debootstrap --variant=minbase) chroot. Needs root.

  --keep            keep the work root (WORKDIR/root) after the run
  --rebuild-root    build the cached pristine root again (debootstrap)
  --no-apt-cache    download every .deb again instead of sharing the cache
  --workdir DIR     work directory (default /var/tmp/mmsd-fresh-check/run-DATE)
  --mirror URL      Debian mirror for debootstrap (default: the host's apt
                    sources' bookworm mirror, else http://deb.debian.org/debian)
  --jobs N          passed to the scripts as JOBS (build parallelism)
  --deb             instead of the two commands: build the Debian package of
                    HEAD here (dpkg-buildpackage), run lintian on it, install
                    it in the fresh root with apt and run the service there
                    in the foreground on the Cholec80 clip
                    (scripts/deb-service-check.sh)
  -v, --verbose     also show every step's log as it runs
  -h, --help        this text

The pristine root is cached in ${XDG_CACHE_HOME:-/var/tmp}/mmsd-fresh-root and
copied afresh for every run; downloaded packages in .../mmsd-fresh-apt. Logs
stay in WORKDIR/logs. Exit status 0 when both commands pass, 1 otherwise (the
failing step's last lines are printed), 2 on bad usage.
EOF
}

die() { echo "fresh-check: $*" >&2; exit 1; }
say() { printf 'fresh-check: [%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Mount points under $1, deepest first, as the kernel sees them; the paths
# have no spaces (checked above), so mountinfo's escapes do not matter.
mounts_under() {
    awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
        awk '{ print length($0), $0 }' | sort -rn | cut -d' ' -f2-
}

# Anything still running with its root inside the chroot was started by this
# check (a test's leaked Xvfb, a daemon a postinst started); it would keep
# the mounts busy.
kill_chroot_procs() {
    local p sig pids
    for sig in TERM KILL; do
        pids=""
        for p in /proc/[0-9]*; do
            [ "$(readlink "$p/root" 2>/dev/null)" = "$1" ] && pids="$pids ${p#/proc/}"
        done
        [ -n "$pids" ] || return 0
        say "ending processes left in the chroot ($sig):$pids"
        # shellcheck disable=SC2086
        kill -s "$sig" $pids 2>/dev/null || true
        sleep 2
    done
}

unmount_under() {
    local m
    for m in $(mounts_under "$1"); do
        umount "$m" 2>/dev/null || umount -l "$m" || say "could not unmount $m"
    done
    [ -z "$(mounts_under "$1")" ]
}

# rm -rf through a bind mount of /dev or ../shared would delete the host's
# files, so nothing is removed while anything is still mounted below it.
safe_rm() {
    [ -e "$1" ] || return 0
    if [ -n "$(mounts_under "$1")" ]; then
        say "NOT removing $1: still mounted below it: $(mounts_under "$1" | tr '\n' ' ')"
        return 1
    fi
    rm -rf --one-file-system "$1"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$step_pid" ]; then
        kill -- "-$step_pid" 2>/dev/null || true
        wait "$step_pid" 2>/dev/null || true
    fi
    if [ -d "$root" ]; then
        kill_chroot_procs "$root"
        unmount_under "$root" || say "mounts remain under $root"
        if [ "$keep" = 1 ]; then
            say "kept the work root: $root (mounts are gone; remove with rm -rf --one-file-system)"
        else
            say "removing the work root (--keep keeps it)"
            safe_rm "$root" || true
        fi
    fi
    if [ -n "$building_root" ] && [ -d "$building_root" ]; then
        kill_chroot_procs "$building_root"
        unmount_under "$building_root" || true
        safe_rm "$building_root" || true
    fi
    say "logs: $logs"
    exit "$rc"
}

# Runs a step with its output in logs/NAME.log; on failure prints the log's
# tail and stops the check.
step() {
    local name=$1 start=$SECONDS rc=0
    shift
    say "$name ..."
    # In the background because bash ignores set -e inside a function run
    # as `f || rc=$?`; a job keeps it, so a step stops at its first error.
    # No terminal input: a background group that read it would be stopped.
    if [ "$verbose" = 1 ]; then
        ("$@" 2>&1 | tee "$logs/$name.log") </dev/null &
    else
        "$@" </dev/null >"$logs/$name.log" 2>&1 &
    fi
    step_pid=$!
    wait "$step_pid" || rc=$?
    step_pid=""
    if [ $rc -ne 0 ]; then
        say "$name FAILED (exit $rc) after $(elapsed $((SECONDS - start))); last lines of $logs/$name.log:"
        tail -n 40 "$logs/$name.log" | redact | sed 's/^/    /' >&2
        exit 1
    fi
    say "$name done in $(elapsed $((SECONDS - start)))"
}

elapsed() { printf '%dh%02dm%02ds' $(($1 / 3600)) $(($1 % 3600 / 60)) $(($1 % 60)); }

# The host's apt sources name the mirror it is allowed to reach; a fresh
# install would use the same one.
detect_mirror() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk '$1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) == "bookworm") { print $i; exit }
            }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'BEGIN { RS = ""; FS = "\n" }
            {
                types = uris = suites = ""; enabled = "yes"
                for (i = 1; i <= NF; i++) {
                    l = $i; k = tolower(l); sub(/:.*/, "", k); sub(/^[^:]*:[ \t]*/, "", l)
                    if (k == "types") types = " " l " "
                    else if (k == "uris") uris = l
                    else if (k == "suites") suites = " " l " "
                    else if (k == "enabled") enabled = tolower(l)
                }
                if (enabled != "no" && types ~ / deb / && suites ~ / bookworm /) {
                    split(uris, u, /[ \t]+/); print u[1]; exit
                }
            }' "$f"
    done
}

build_root() {
    command -v debootstrap >/dev/null 2>&1 || {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap ||
            { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap; }
    }
    debootstrap --variant=minbase bookworm "$building_root" "$mirror"
}

setup_etc() {
    local name f k
    name=$(uname -n)
    # What the Debian installer writes; minbase writes none, and the tests
    # connect to `localhost`.
    printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n' \
        "$name" >"$root/etc/hosts"
    echo "$name" >"$root/etc/hostname"
    rm -f "$root/etc/resolv.conf"
    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
    # The host's sources replace debootstrap's one line, so the chroot gets
    # the same suites (updates, security) and mirror as the host.
    local copied=0
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        [ "$copied" = 1 ] || rm -f "$root/etc/apt/sources.list"
        copied=1
        cp "$f" "$root$f"
        # A keyring the sources point at but minbase lacks (debian-archive-keyring is there).
        grep -hoiE 'signed-by[=:][[:space:]]*/[^] ,]+' "$f" | sed -E 's/^[^=:]*[=:][[:space:]]*//' |
            while read -r k; do
                if [ -f "$k" ] && [ ! -e "$root$k" ]; then
                    mkdir -p "$root$(dirname "$k")" && cp "$k" "$root$k"
                fi
            done || true
    done
    # Daemons a postinst would start under sysvinit rules (no systemd runs in
    # a chroot) would outlive the check and keep its mounts busy.
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 755 "$root/usr/sbin/policy-rc.d"
    grep -h . "$root"/etc/apt/sources.list "$root"/etc/apt/sources.list.d/* 2>/dev/null | grep -v '^#' |
        redact || true
}

setup_src() {
    mkdir -p "$root/src"
    # A clone, not the work tree: only what is committed counts. The commit
    # read at the start, since others may commit while the root is built.
    git clone --no-hardlinks --no-checkout "$repo" "$root/src/main"
    git -C "$root/src/main" checkout -q "$commit"
    git -C "$root/src/main" log -1 --format='%H %s'
    mkdir -p "$root/src/shared"
    if [ -d "$shared" ]; then
        # Read-only: ../shared is input data, and a test writing there is a bug.
        mount --bind "$shared" "$root/src/shared"
        mount -o remount,bind,ro "$root/src/shared"
        echo "../shared: $shared, bound read-only"
    else
        echo "../shared is missing ($shared): the tests that need it fail under CI=true"
    fi
}

setup_mounts() {
    mount -t proc proc "$root/proc"
    mount -t sysfs sysfs "$root/sys" 2>/dev/null || {
        mount --rbind /sys "$root/sys"
        mount --make-rslave "$root/sys"
    }
    mount --bind /dev "$root/dev"
    # A slave before anything is mounted below it: on a host whose / is shared
    # (systemd), mounts under the chroot's /dev would otherwise show up, and
    # be unmounted, in the host's /dev.
    mount --make-rslave "$root/dev"
    mount --bind /dev/pts "$root/dev/pts"
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/tmp"
    if [ "$apt_cache" = 1 ]; then
        # Only the download is shared; every package is still installed.
        mkdir -p "$apt_dir"
        mount --bind "$apt_dir" "$root/var/cache/apt/archives"
        echo "apt archives shared with $apt_dir"
    fi
    mounts_under "$root"
}

# The package of the checked commit, built on this machine from a clone.
build_deb() {
    local src=$workdir/deb/mmsd missing
    git clone --no-hardlinks --no-checkout "$repo" "$src"
    git -C "$src" checkout -q "$commit"
    # dpkg-checkbuilddeps exits 1 exactly when something is missing: under
    # pipefail that would end the step before the install below.
    missing=$(cd "$src" && dpkg-checkbuilddeps 2>&1 | sed -n 's/.*Unmet build dependencies: //p' |
        sed 's/([^)]*)//g') || true
    # lintian checks the result (lint_deb); missing, it would pass silently.
    command -v lintian >/dev/null || missing="$missing lintian"
    if [ -n "${missing// /}" ]; then
        echo "installing build dependencies: $missing"
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
    fi
    (cd "$src" && dpkg-buildpackage -us -uc -b)
    ls -l "$workdir"/deb/*.deb
}

lint_deb() {
    command -v lintian >/dev/null || { echo "lintian is not installed" >&2; return 1; }
    lintian -I --tag-display-limit 0 "$workdir"/deb/*_amd64.deb 2>&1 |
        grep -v '^running with root privileges' || true
}

install_deb() {
    local p
    for p in mmsd libmms0 libmms-dev gstreamer1.0-mms; do
        cp "$workdir"/deb/"${p}"_*_amd64.deb "$root/tmp/"
    done
    # With the GStreamer tools and plugins a user of the element would have.
    in_chroot /bin/sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q /tmp/*_amd64.deb gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-libav'
}

# A mirror URL may carry a user and password (an authenticated proxy):
# the logs show it without them.
redact() {
    sed -E 's#(://)[^/@[:space:]]+@#\1***@#g'
}

in_chroot() {
    local env=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
        CI=true LANG=C.UTF-8 TERM=dumb USER=root LOGNAME=root SHELL=/bin/sh)
    [ -z "$jobs" ] || env+=("JOBS=$jobs")
    chroot "$root" /usr/bin/env -i "${env[@]}" /bin/sh -c 'cd /src/main && exec "$@"' sh "$@"
}

main() {
    keep=0 rebuild=0 apt_cache=1 verbose=0 workdir="" mirror="" jobs="" deb=0
    while [ $# -gt 0 ]; do
        case $1 in
        --keep) keep=1 ;;
        --rebuild-root) rebuild=1 ;;
        --no-apt-cache) apt_cache=0 ;;
        --workdir) [ $# -ge 2 ] || { usage >&2; exit 2; }; workdir=$2; shift ;;
        --mirror) [ $# -ge 2 ] || { usage >&2; exit 2; }; mirror=$2; shift ;;
        --jobs) [ $# -ge 2 ] || { usage >&2; exit 2; }; jobs=$2; shift ;;
        --deb) deb=1 ;;
        -v | --verbose) verbose=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "fresh-check: unknown argument: $1" >&2; usage >&2; exit 2 ;;
        esac
        shift
    done
    case $jobs in '' | *[!0-9]*) [ -z "$jobs" ] || { echo "fresh-check: --jobs wants a number" >&2; exit 2; } ;; esac

    [ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, mount, chroot); try: sudo $0"
    repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel) || die "not inside the git repository"
    shared=$(cd "$repo/.." && pwd)/shared
    commit=$(git -C "$repo" rev-parse HEAD)
    if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
        say "note: the work tree has uncommitted changes; the check runs the committed HEAD"
    fi

    cache_base=${XDG_CACHE_HOME:-/var/tmp}
    cache=$cache_base/mmsd-fresh-root
    apt_dir=$cache_base/mmsd-fresh-apt
    [ -n "$workdir" ] || workdir=/var/tmp/mmsd-fresh-check/run-$(date +%Y%m%dT%H%M%S)
    case $workdir in *[[:space:]]*) die "--workdir: no spaces, please (mountinfo escapes them)" ;; esac
    mkdir -p "$workdir/logs"
    workdir=$(cd "$workdir" && pwd -P)
    root=$workdir/root
    logs=$workdir/logs
    [ ! -e "$root" ] || die "$root already exists; pick another --workdir"

    building_root="" step_pid=""
    trap cleanup EXIT
    trap 'say "interrupted"; exit 130' INT
    trap 'say "terminated"; exit 143' TERM

    # --- the pristine root, cached --------------------------------------------------
    [ -n "$mirror" ] || mirror=$(detect_mirror | head -n 1)
    [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
    total_start=$SECONDS
    say "commit $commit; work directory $workdir"
    if [ "$rebuild" = 1 ] && [ -d "$cache" ]; then
        safe_rm "$cache" || die "cannot remove the cached root $cache"
    fi
    if [ ! -x "$cache/bin/sh" ]; then
        say "building the pristine root in $cache from $(printf '%s' "$mirror" | redact) (once; --rebuild-root redoes it)"
        mkdir -p "$cache_base"
        building_root=$cache.new.$$
        step debootstrap build_root
        # Renamed only when whole, so an interrupted debootstrap is never reused.
        mv "$building_root" "$cache"
        building_root=""
    fi

    # --- the work root: a copy, the sources, the mounts ----------------------------
    mkdir "$root"
    step copy-root cp -a "$cache/." "$root/"

    step setup-etc setup_etc
    step setup-src setup_src
    step setup-mounts setup_mounts

    if [ "$deb" = 1 ]; then
        # --- the Debian package, installed and started ------------------------------
        step deb-build build_deb
        step lintian lint_deb
        step deb-install install_deb
        step deb-service in_chroot ./scripts/deb-service-check.sh \
            /src/shared/data/video/cholec80_video01_10s.mp4
        say "PASSED in $(elapsed $((SECONDS - total_start))) (commit ${commit:0:12}); lintian:"
        sed 's/^/    /' "$logs/lintian.log" >&2
        grep -h '^deb-service-check: ok' "$logs/deb-service.log" | sed 's/^/    /' >&2
        return 0
    fi

    # --- the README's two commands --------------------------------------------------
    step demo in_chroot ./scripts/demo.sh
    step test in_chroot ./scripts/test.sh

    # ctest's summary line for each variant, e.g. "100% tests passed, 0 tests
    # failed out of 42", after test.sh's "== release: tests" marker.
    say "PASSED in $(elapsed $((SECONDS - total_start))) (commit ${commit:0:12})"
    awk '/^== [a-z]+: tests/ { v = $2; sub(/:$/, "", v) }
         /tests passed, .* tests failed out of/ { printf "    %-8s %s\n", v ":", $0 }
         /^Total Test time/ { printf "    %-8s %s\n", v ":", $0 }' "$logs/test.log" >&2
    grep -h '^annotated video:' "$logs/demo.log" | sed 's/^/    demo:    /' >&2 || true
}

# bash reads a script as it runs it; one compound command is parsed whole
# before it runs, so a commit or checkout that changes this file during the
# check leaves bash nothing more to read from it.
{ main "$@"; exit; }
