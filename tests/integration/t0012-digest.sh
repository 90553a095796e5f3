#!/bin/sh
# ferry's digest trailer: a saved file ends with the 56-byte FERRYSUM
# trailer after the libxl END; one flipped byte in a data page makes xl
# restore fail with the digest message and leave no domain and no memory
# behind (every page was already written into the paused domain); a file
# with the trailer cut off (as Xen writes it) still restores, unchecked;
# bytes after the trailer are refused.
. "$(dirname "$0")/lib.sh"

if ! grep -q '"save"' "$top_srcdir/xl/xl-cmdtable.c"; then
    echo "1..0 # SKIP xl save is not there"
    exit 77
fi

plan 8
start_host A 256M || exit 99
A=$T/A
ex="$top_srcdir/examples"

# A byte inside the last plain (NOTAB) data page of the file, so that
# the pages before it are written first (pages nothing wrote carry no
# data: the data pages are few, all in the first PAGE_DATA record).
find_data() {
    page_data_pages "$1" |
        awk '$2 == 0 { p = $1 + 100 } END { if ( p != "" ) print p }'
}

check "xl create idle" xlh "$A" create -e "$ex/idle.cfg"
sleep 0.5
check "xl save idle" xlh "$A" save idle "$T/idle.save"
trailer=$(tail -c 56 "$T/idle.save" | head -c 8)
[ "$trailer" = FERRYSUM ] && ok "the saved file ends with the trailer" ||
    fail "the saved file ends with the trailer ('$trailer')"
free0=$(free_mib "$A")

# One flipped byte in a data page.
pos=$(find_data "$T/idle.save")
if [ -n "$pos" ]; then
    diag "flipping the byte at offset $pos"
    cp "$T/idle.save" "$T/bad.save"
    b=$(u8 "$T/bad.save" "$pos")
    printf "\\$(printf '%03o' $((b ^ 255)))" |
        dd of="$T/bad.save" bs=1 seek="$pos" conv=notrunc 2>/dev/null
    xlh "$A" restore -e "$T/bad.save" >"$T/bad.out" 2>&1
    rc=$?
    if [ $rc -ne 0 ] &&
       grep -q 'digest mismatch: the file is corrupted' "$T/bad.out" &&
       no_domain "$A" idle && [ "$(free_mib "$A")" = "$free0" ]; then
        ok "a flipped data byte is refused, nothing left"
    else
        fail "a flipped data byte is refused, nothing left"
    fi
    sed 's/^/# /' "$T/bad.out"
else
    fail "found a plain data page in the save file"
fi

# Bytes after the trailer.
cp "$T/idle.save" "$T/long.save"
printf 'x' >>"$T/long.save"
xlh "$A" restore -e "$T/long.save" >"$T/long.out" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q 'after the ferry digest trailer' "$T/long.out" &&
   no_domain "$A" idle && [ "$(free_mib "$A")" = "$free0" ]; then
    ok "bytes after the trailer are refused, nothing left"
else
    fail "bytes after the trailer are refused, nothing left"
fi
sed 's/^/# /' "$T/long.out"

# The trailer cut off: Xen's form, restored unchecked.
size=$(wc -c <"$T/idle.save")
head -c $((size - 56)) "$T/idle.save" >"$T/xen.save"
xlh "$A" restore -e "$T/xen.save" >"$T/xen.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q 'no ferry digest: not checked' "$T/xen.out" &&
   ! no_domain "$A" idle; then
    ok "a file without the trailer restores, unchecked"
else
    fail "a file without the trailer restores, unchecked"
    sed 's/^/# /' "$T/xen.out"
fi
xlh "$A" destroy idle

# The good file restores, checked (no note).
xlh "$A" restore -e "$T/idle.save" >"$T/good.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && ! grep -q 'no ferry digest' "$T/good.out" &&
   ! no_domain "$A" idle; then
    ok "the good file restores, checked"
else
    fail "the good file restores, checked"
    sed 's/^/# /' "$T/good.out"
fi
check "auditor clean at the end" xlh "$A" audit
xlh "$A" destroy idle
done_testing
