#!/bin/sh
# ferry's quick start: build ferry, start two hosts on this machine, run
# guests on both, and show what they do.
#
#   ./demo.sh
#
# It installs the build dependencies it lacks (Debian packages: the list
# is need_pkgs in tests/run.sh, among them libjson-c-dev), builds in
# build/plain, starts two ferry-hv daemons (hosts A and B, run directories
# under a temporary directory), creates a memdirty guest on A and a
# checksum guest on B, shows `xl list` on both hosts and the guests'
# consoles, live-migrates a busy memdirty guest from A to B with
# `xl migrate` (progress shown, then its summary line: total time,
# downtime, bytes and rate, passes), shows both hosts' `xl list` again, then
# shuts everything down.  Nothing outside the temporary
# directory and build/ is touched; only the daemons started here are
# stopped.
set -eu

top=$(cd "$(dirname "$0")" && pwd)
cd "$top"
sh tests/run.sh --build-only >/dev/null

B="$top/build/plain"
XL="$B/xl/xl"
T=$(mktemp -d "${TMPDIR:-/tmp}/ferry-demo.XXXXXX")
export FERRY_GUEST_PATH="$B/guests"

stop() {
    for h in A B; do
        [ -f "$T/$h/ferry-hv.pid" ] && kill "$(cat "$T/$h/ferry-hv.pid")" 2>/dev/null
    done
    sleep 0.5
    rm -rf "$T"
}
trap stop EXIT INT TERM

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

run "$B/hypervisor/ferry-hv" --run-dir "$T/A" --memory 1G
run "$B/hypervisor/ferry-hv" --run-dir "$T/B" --memory 1G

run "$XL" -H "$T/A" create examples/memdirty.cfg
# -e: no monitor, so the finished checksum domain stays to be looked at.
run "$XL" -H "$T/B" create -e examples/checksum.cfg 'cmdline="steps=3000000"'
sleep 1
run "$XL" -H "$T/A" list
run "$XL" -H "$T/B" list

say "$XL -H $T/A console memdirty | head -5"
"$XL" -H "$T/A" console memdirty | head -5
say "$XL -H $T/B console checksum | cat     (waits for the result)"
timeout 60 "$XL" -H "$T/B" console checksum | cat
run "$XL" -H "$T/B" list
run "$XL" -H "$T/B" destroy checksum

run "$XL" -H "$T/A" pause memdirty
run "$XL" -H "$T/A" list memdirty
run "$XL" -H "$T/A" unpause memdirty
run "$XL" -H "$T/A" shutdown -w memdirty

# The main event: a live migration of a busy guest from A to B.
run "$XL" -H "$T/A" create -e examples/memdirty.cfg 'name="mover"' \
    'memory=64' 'cmdline="wss=32M rate=64M"'
sleep 1
# -t: the progress bar even when this script's output is not a terminal.
run "$XL" -t -H "$T/A" migrate -e mover "local:$T/B"
run "$XL" -H "$T/A" list
run "$XL" -H "$T/B" list
say "$XL -H $T/B console mover | tail -3"
timeout 2 "$XL" -H "$T/B" console mover | tail -3
run "$XL" -H "$T/B" destroy mover
run "$XL" -H "$T/A" audit
run "$XL" -H "$T/B" audit
