#!/bin/sh
# A bounded fuzz run of the stream reader for `make check`: real save
# files are made on a fresh host (a small checksum guest saved plain and,
# when xl save has -z, compressed), mkstream turns them into a shrunk, a
# minimal and a few hostile variants, and fuzz-driver runs the fuzz target
# over them and the committed seeds (tests/fuzz/corpus), then over
# deterministic mutations of them for FUZZ_SECONDS (3 by default).  Any
# crash or sanitizer report fails the test; the driver's message says how
# to replay the input.  The long run with libFuzzer is `make fuzz`.
. "$(dirname "$0")/../integration/lib.sh"

MK="$top_builddir/tests/integration/mkstream"
DRV="$top_builddir/tests/fuzz/fuzz-driver"
C=$T/corpus
mkdir -p "$C"

plan 4
start_host A 64M || exit 99
A=$T/A
check "a small checksum guest" xlh "$A" create -e \
    "$top_srcdir/examples/checksum.cfg" 'memory=8' 'cmdline="steps=100000000"'
wait_for 10 console_has "$A" checksum 'checksum: up' ||
    diag "checksum did not start"
check "xl save -c" xlh "$A" save -c checksum "$C/plain.save"
if "$XL" save -h 2>&1 | grep -q -- '^-z'; then
    xlh "$A" save -c -z checksum "$C/zlib.save" >/dev/null 2>&1 ||
        diag "xl save -z failed"
fi
xlh "$A" destroy checksum
stop_all_hosts

# Variants of a shrunk copy (page tables and one data page), so that
# mutations of them run fast; an operation that finds nothing to change
# in so small a stream is left out.
made=""
if "$MK" rewrite "$C/plain.save" "$C/shrink.save" shrink >/dev/null; then
    for op in minimal inject-optional l2-pse l1-reserved cr3-outside \
              gdt-outside pfn-beyond; do
        "$MK" rewrite "$C/shrink.save" "$C/$op.save" "$op" \
            >/dev/null 2>&1 && made="$made $op"
    done
fi
[ -n "$made" ] && ok "the corpus: plain, shrunk,$made" ||
    fail "the corpus could not be made"

"$DRV" -t "${FUZZ_SECONDS:-3}" -s "${FUZZ_SEED:-1}" \
    "$top_srcdir/tests/fuzz/corpus" "$C" >"$T/fuzz.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q '^ok 2 - ' "$T/fuzz.out"; then
    ok "fuzz-driver: $(sed -n 's/^ok [12] - //p' "$T/fuzz.out" | tr '\n' ';')"
else
    fail "fuzz-driver exited with $rc"
    sed 's/^/# /' "$T/fuzz.out" | head -60
fi
done_testing
