#!/bin/sh
# ferry's test command: install what the build needs, build, run `make check`
# in each configuration that must pass, and print one summary line.
#
#   tests/run.sh            the plain build, then ASan+UBSan, then TSan
#   tests/run.sh --quick    the plain build only
#
# Builds go to build/<config>/ beside the sources, so repeated runs reuse
# them.  The exit status is non-zero if any test failed in any build.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

quick=no
build_only=no
case "${1:-}" in
    --quick) quick=yes ;;
    --build-only) build_only=yes ;;
esac

need_pkgs="build-essential autoconf automake libtool pkg-config \
libxml2-dev zlib1g-dev uuid-dev libssl-dev libjson-c-dev openssl iproute2"

install_deps() {
    missing=""
    for p in $need_pkgs; do
        dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    echo "tests/run.sh: installing:$missing"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
}

total_pass=0
total_fail=0
total_skip=0
status=0

run_config() {
    name=$1; shift
    # Sanitizers slow everything down: scale the per-test timeouts.
    case $name in
        plain) FERRY_TEST_TIMEOUT_MULTIPLIER=1 ;;
        *) FERRY_TEST_TIMEOUT_MULTIPLIER=4 ;;
    esac
    export FERRY_TEST_TIMEOUT_MULTIPLIER
    dir="$top/build/$name"
    echo "=== $name: configure $*"
    mkdir -p "$dir"
    (cd "$dir" && "$top/configure" -q "$@") || { status=1; return; }
    echo "=== $name: make"
    make -s -C "$dir" -j"$(nproc)" || { status=1; return; }
    echo "=== $name: make check"
    if ! make -s -C "$dir" -j"$(nproc)" check; then
        status=1
        for log in $(grep -l '^:test-result: \(FAIL\|ERROR\)' \
                     $(find "$dir/tests" -name '*.trs') 2>/dev/null); do
            echo "--- ${log%.trs}.log"
            cat "${log%.trs}.log"
        done
    fi
    p=$(cat $(find "$dir/tests" -name '*.log' ! -name test-suite.log) 2>/dev/null |
        grep -c '^ok ' || true)
    s=$(cat $(find "$dir/tests" -name '*.log' ! -name test-suite.log) 2>/dev/null |
        grep -c '^ok .*# SKIP' || true)
    f=$(cat $(find "$dir/tests" -name '*.log' ! -name test-suite.log) 2>/dev/null |
        grep -c '^not ok ' || true)
    echo "=== $name: $((p - s)) passed, $f failed, $s skipped"
    total_pass=$((total_pass + p - s))
    total_fail=$((total_fail + f))
    total_skip=$((total_skip + s))
}

install_deps
[ -x configure ] && [ configure -nt configure.ac ] && [ -f Makefile.in ] ||
    autoreconf -fi >/dev/null

if [ "$build_only" = yes ]; then
    mkdir -p build/plain
    (cd build/plain && { [ -f Makefile ] || "$top/configure" -q; } && make -s -j"$(nproc)")
    exit $?
fi

run_config plain
if [ "$quick" = no ]; then
    run_config asan-ubsan --enable-asan --enable-ubsan
    run_config tsan --enable-tsan
fi

[ "$total_fail" -eq 0 ] || status=1
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
exit $status
