#!/bin/sh
# xl restore: a checksum guest saved mid-run with xl save on host A is
# restored on host B (whose machine frames differ), resumes there, is
# saved again mid-run and restored on A, and gives the same result as an
# uninterrupted run, which gives the result of the guest's model; the auditor is clean on both hosts; a
# truncated file and a file with a corrupted page-table entry are refused
# with a message and leave no domain and no memory behind.
. "$(dirname "$0")/lib.sh"

if ! grep -q '"save"' "$top_srcdir/xl/xl-cmdtable.c"; then
    echo "1..0 # SKIP xl save is not there"
    exit 77
fi

plan 19
start_host A 256M || exit 99
start_host B 384M || exit 99
A=$T/A B=$T/B
ex="$top_srcdir/examples"
STEPS='cmdline="steps=3000000"'

# The reference: one uninterrupted run on A.
check "A: checksum, uninterrupted" \
    xlh "$A" create -e "$ex/checksum.cfg" "$STEPS"
wait_for 120 finished "$A" checksum || diag "checksum did not finish on A"
EXPECT=$(result_of "$A" checksum)
xlh "$A" destroy checksum
[ "$EXPECT" = "$(checksum_expect 3000000)" ] &&
    ok "A: the uninterrupted run gives the model's result $EXPECT" ||
    fail "A: uninterrupted result '$EXPECT', the model's $(checksum_expect 3000000)"

# Shift B's frames so that the restored guest gets other MFNs.
check "B: a filler domain" xlh "$B" create -e "$ex/idle.cfg" 'name="filler"'
check "A: checksum again" xlh "$A" create -e "$ex/checksum.cfg" "$STEPS"
sleep 0.5
check "A: xl save mid-run" xlh "$A" save checksum "$T/cs.save"
check "A: auditor clean after the save" xlh "$A" audit

# Corrupted copies, refused on B before the good one is restored.
freeB=$(free_mib "$B")
head -c 1000000 "$T/cs.save" >"$T/trunc.save"
xlh "$B" restore -e "$T/trunc.save" >"$T/trunc.out" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q 'restore' "$T/trunc.out" &&
   no_domain "$B" checksum && [ "$(free_mib "$B")" = "$freeB" ]; then
    ok "B: truncated file refused, nothing left"
    sed 's/^/# /' "$T/trunc.out"
else
    fail "B: truncated file refused, nothing left"
    sed 's/^/# /' "$T/trunc.out"
fi

# The offset of the first present entry of the first page-table page.
find_pte() {
    page_data_pages "$1" | while read -r p t; do
        [ "$t" = 0 ] && continue
        i=0
        while [ $i -lt 512 ]; do
            if [ $(( $(u8 "$1" $((p + i * 8))) & 1 )) = 1 ]; then
                echo $((p + i * 8)); return 0
            fi
            i=$((i + 1))
        done
    done | head -1
}

pte=$(find_pte "$T/cs.save")
if [ -n "$pte" ]; then
    cp "$T/cs.save" "$T/bad.save"
    # Byte 5 of the entry is in its frame bits: the PFN goes far past
    # the guest's memory.
    printf '\377' | dd of="$T/bad.save" bs=1 seek=$((pte + 5)) conv=notrunc \
        2>/dev/null
    xlh "$B" restore -e "$T/bad.save" >"$T/bad.out" 2>&1
    rc=$?
    if [ $rc -ne 0 ] && grep -q 'PAGE_DATA' "$T/bad.out" &&
       no_domain "$B" checksum && [ "$(free_mib "$B")" = "$freeB" ]; then
        ok "B: corrupted page-table entry refused, nothing left"
        sed 's/^/# /' "$T/bad.out"
    else
        fail "B: corrupted page-table entry refused, nothing left"
        sed 's/^/# /' "$T/bad.out"
    fi
else
    fail "B: found a page-table page in the save file"
fi
check "B: auditor clean after the refusals" xlh "$B" audit

# The good file, on B, left paused.
xlh "$B" restore -p -e "$T/cs.save" >"$T/restore.out" 2>&1
rc=$?
if [ $rc -eq 0 ] &&
   grep -q "^Loading new save file $T/cs.save (new xl fmt info 0x3/0x[0-9a-f]*/" \
       "$T/restore.out" &&
   grep -q '^ Savefile contains xl domain config in JSON format' \
       "$T/restore.out" &&
   grep -q '^Parsing config from <saved>' "$T/restore.out"; then
    ok "B: xl restore -p, with Xen's messages"
else
    fail "B: xl restore -p, with Xen's messages"
    sed 's/^/# /' "$T/restore.out"
fi
check "B: auditor clean after the restore" xlh "$B" audit
check "B: the domain is left paused" \
    sh -c "\"$XL\" -H \"$B\" list checksum | grep -q -- '--p---'"
xlh "$B" restore -e "$T/cs.save" >"$T/dup.out" 2>&1
rc=$?
n=$("$XL" -H "$B" list | grep -c '^checksum ')
if [ $rc -ne 0 ] && [ "$n" = 1 ] &&
   grep -q 'Domain with name "checksum" already exists.' "$T/dup.out"; then
    ok "B: a second restore under the same name is refused"
else
    fail "B: a second restore under the same name is refused ($n)"
    sed 's/^/# /' "$T/dup.out"
fi
xlh "$B" unpause checksum
wait_for 10 console_has "$B" checksum 'resumed' &&
    ok "B: the guest resumed in the new domain" ||
    { fail "B: the guest resumed in the new domain"
      console_dump "$B" checksum | sed 's/^/# /'; }

# Again, back to A: the restored guest's P2M and frame list must be
# right for the saver to walk them.
check "B: xl save of the restored guest, mid-run" \
    xlh "$B" save checksum "$T/cs2.save"
check "A: xl restore of it" xlh "$A" restore -e "$T/cs2.save"
wait_for 120 finished "$A" checksum || diag "checksum did not finish on A"
ra=$(result_of "$A" checksum)
[ -n "$EXPECT" ] && [ "$ra" = "$EXPECT" ] &&
    ok "A: result after two restores $ra" ||
    fail "A: result '$ra', expected '$EXPECT'"
check "B: auditor clean at the end" xlh "$B" audit
check "A: auditor clean at the end" xlh "$A" audit
xlh "$A" destroy checksum
xlh "$B" destroy filler
done_testing
