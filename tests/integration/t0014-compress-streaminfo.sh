#!/bin/sh
# xl save -z and xl stream-info (ferry-stream(5)).
#
# A mostly-zero guest's compressed save is a small fraction of the plain
# one; stream-info, with no host at all, reads both and reports the same
# stream (exact counts for the domain's size); a checksum guest saved
# compressed mid-run restores on another host and gives the known result;
# a truncated file, a corrupted header field, a corrupted data page and
# records out of order make stream-info exit 1 naming the record and its
# offset; a corrupt zlib stream is refused by xl restore naming the offset,
# leaving nothing behind; an unknown mandatory flag is refused with Xen's
# message.
. "$(dirname "$0")/lib.sh"

if ! grep -q '"stream-info"' "$top_srcdir/xl/xl-cmdtable.c"; then
    echo "1..0 # SKIP xl stream-info is not there"
    exit 77
fi

plan 20
start_host A 256M || exit 99
start_host B 256M || exit 99
A=$T/A B=$T/B
ex="$top_srcdir/examples"

# Finished, or not there at all (a failed step before): stop waiting.
finished_or_gone() { finished "$1" "$2" || no_domain "$1" "$2"; }
# The value of one key of a stream-info output file.
key() { sed -n "s/^$2: //p" "$1"; }
# The count column of one record type in the table.
count_of() { awk -v l="$2" -v t="$3" '$1 == l && $2 == t { print $3 }' "$1"; }
# The offset of the first libxc record (X86_PV_INFO): xl header, config,
# libxl header, LIBXC_CONTEXT, libxc image and domain headers.
first_libxc() { echo $((48 + $(u32 "$1" 44) + 16 + 8 + 24 + 16)); }
# Write byte value $3 (decimal) at offset $2 of file $1.
poke() {
    printf "\\$(printf '%03o' "$3")" |
        dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}
show() { sed 's/^/# /' "$1"; }
# How errors name records (sr-stream.c's words), and Xen's refusal.
PD='libxc record 0x00000001 (PAGE_DATA)'
PVI='libxc record 0x00000002 (X86_PV_INFO)'
SDE='libxc record 0x00000010 (STATIC_DATA_END)'
ANY='libxc record 0x[0-9a-f]* ([A-Z_0-9]*)'
UNSUP='which are not supported; need newer xl'

# ---- an idle guest, plain and compressed -------------------------------
xlh "$A" create -e "$ex/idle.cfg" >/dev/null 2>&1
xlh "$A" save -c idle "$T/plain.save" >/dev/null 2>&1 &&
xlh "$A" save -z idle "$T/z.save" >"$T/z.out" 2>&1
rc=$?
psize=$(wc -c <"$T/plain.save") zsize=$(wc -c <"$T/z.save")
diag "idle: plain $psize bytes, -z $zsize bytes"
# Untouched pages are PFNs only (XALLOC): what is left is mostly the
# boot structures' data, which compresses less than zeros did.
if [ $rc -eq 0 ] && [ $((zsize * 2)) -lt "$psize" ] &&
   grep -q "^Saving to $T/z.save new xl format (info 0x80000003/0x80000000/" \
       "$T/z.out"; then
    ok "xl save -z: flag 0x80000000, under half the plain file"
else
    fail "xl save -z: flag 0x80000000, under half the plain file"
    show "$T/z.out"
fi

# stream-info runs without a host: no -H, no FERRY_RUNDIR that exists.
si() { FERRY_RUNDIR=$T/nohost "$XL" stream-info "$@"; }
si "$T/plain.save" >"$T/plain.info" 2>&1
rc=$?
if [ $rc -eq 0 ] &&
   [ "$(key "$T/plain.info" result)" = ok ] &&
   [ "$(key "$T/plain.info" compression)" = none ] &&
   [ "$(key "$T/plain.info" digest)" = ok ] &&
   [ "$(key "$T/plain.info" config_name)" = idle ] &&
   [ "$(key "$T/plain.info" config_memory_mib)" = 16 ] &&
   [ "$(key "$T/plain.info" p2m_end_pfn)" = 0xfff ] &&
   [ $(($(key "$T/plain.info" pages_data) +
        $(key "$T/plain.info" pages_xalloc))) = 4096 ] &&
   [ "$(key "$T/plain.info" pages_xalloc)" -gt 3000 ] &&
   [ "$(key "$T/plain.info" page_data_records)" = 4 ] &&
   [ "$(key "$T/plain.info" pfns_distinct)" = 4096 ] &&
   [ "$(key "$T/plain.info" pfns_repeated)" = 0 ] &&
   [ "$(key "$T/plain.info" pages_l4_pinned)" = 1 ] &&
   [ "$(key "$T/plain.info" vcpus)" = 0 ] &&
   [ "$(key "$T/plain.info" stream_bytes)" = "$psize" ] &&
   [ "$(count_of "$T/plain.info" libxc PAGE_DATA)" = 4 ] &&
   [ "$(count_of "$T/plain.info" libxc X86_PV_VCPU_BASIC)" = 1 ] &&
   [ "$(count_of "$T/plain.info" libxc X86_PV_INFO)" = 1 ] &&
   [ "$(count_of "$T/plain.info" libxl END)" = 1 ]; then
    ok "stream-info, plain: 4 PAGE_DATA, 4096 pages, 1 vCPU, digest ok"
else
    fail "stream-info, plain: 4 PAGE_DATA, 4096 pages, 1 vCPU, digest ok"
    show "$T/plain.info"
fi

si "$T/z.save" >"$T/z.info" 2>&1
rc=$?
# Apart from the file itself and its flag, the same stream.
same() {
    grep -v '^file\|^compression\|^xl_mandatory_flags' "$1"
}
same "$T/plain.info" >"$T/plain.same"
same "$T/z.info" >"$T/z.same"
if [ $rc -eq 0 ] && [ "$(key "$T/z.info" compression)" = zlib ] &&
   [ "$(key "$T/z.info" xl_mandatory_flags)" = \
     "0x80000003 json,streamv2,ferry-zlib" ] &&
   [ "$(key "$T/z.info" file_bytes)" = "$zsize" ] &&
   cmp -s "$T/plain.same" "$T/z.same"; then
    ok "stream-info, compressed: the same stream as the plain file"
else
    fail "stream-info, compressed: the same stream as the plain file"
    diff "$T/plain.same" "$T/z.same" | show /dev/stdin
    show "$T/z.info"
fi

# ---- a checksum guest saved compressed mid-run, restored on B ----------
check "A: checksum, steps=3000000" \
    xlh "$A" create -e "$ex/checksum.cfg" 'cmdline="steps=3000000"'
wait_for 10 console_has "$A" checksum 'up steps=' ||
    diag "no output from checksum yet"
check "A: xl save -z checksum mid-run" xlh "$A" save -z checksum "$T/cs.save"
si "$T/cs.save" >"$T/cs.info" 2>&1
rc=$?
if [ $rc -eq 0 ] &&
   [ $(($(key "$T/cs.info" pages_data) +
        $(key "$T/cs.info" pages_xalloc))) = 8192 ] &&
   [ "$(key "$T/cs.info" page_data_records)" = 8 ] &&
   [ "$(key "$T/cs.info" config_memory_mib)" = 32 ] &&
   [ "$(count_of "$T/cs.info" libxc X86_PV_VCPU_BASIC)" = 1 ] &&
   [ "$(key "$T/cs.info" digest)" = ok ]; then
    ok "stream-info of the checksum save: 8 PAGE_DATA, 8192 pages"
else
    fail "stream-info of the checksum save: 8 PAGE_DATA, 8192 pages"
    show "$T/cs.info"
fi
xlh "$B" restore -e "$T/cs.save" >"$T/cs.out" 2>&1
rc=$?
if [ $rc -eq 0 ] &&
   grep -q '^ Savefile is compressed with zlib (ferry)' "$T/cs.out"; then
    ok "B: xl restore of the compressed file"
else
    fail "B: xl restore of the compressed file"
    show "$T/cs.out"
fi
wait_for 240 finished_or_gone "$B" checksum ||
    diag "checksum did not finish on B"
r=$(result_of "$B" checksum)
e=$(checksum_expect 3000000)
[ "$r" = "$e" ] && ok "B: the restored guest's result $r" ||
    fail "B: result '$r', expected $e"
check "B: auditor clean" xlh "$B" audit
xlh "$B" destroy checksum

# ---- bad files: stream-info exits 1 naming the record and offset ------
# Cut inside the last data page, so that a PAGE_DATA record is short.
cut=$(page_data_pages "$T/plain.save" | awk '{ p = $1 } END { print p + 100 }')
head -c "$cut" "$T/plain.save" >"$T/trunc.save"
si "$T/trunc.save" >"$T/trunc.info" 2>&1
rc=$?
if [ $rc -eq 1 ] && [ "$(key "$T/trunc.info" result)" = bad ] &&
   grep -q "^error: $PD at offset [0-9]*: truncated at offset $cut\$" \
       "$T/trunc.info"; then
    ok "stream-info: truncated file, PAGE_DATA and offset named"
else
    fail "stream-info: truncated file, PAGE_DATA and offset named ($rc)"
    show "$T/trunc.info"
fi

head -c $((zsize / 2)) "$T/z.save" >"$T/ztrunc.save"
si "$T/ztrunc.save" >"$T/ztrunc.info" 2>&1
rc=$?
if [ $rc -eq 1 ] &&
   grep -q "^error: $ANY at offset [0-9]*: truncated at offset [0-9]*\$" \
       "$T/ztrunc.info"; then
    ok "stream-info: truncated compressed file, record and offset named"
else
    fail "stream-info: truncated compressed file, record and offset named"
    show "$T/ztrunc.info"
fi

# X86_PV_INFO's guest width (its first body byte) set to 7.
info=$(first_libxc "$T/plain.save")
cp "$T/plain.save" "$T/width.save"
poke "$T/width.save" $((info + 8)) 7
si "$T/width.save" >"$T/width.info" 2>&1
rc=$?
if [ $rc -eq 1 ] &&
   grep -q "^error: $PVI at offset $info: guest width / page-table levels" \
       "$T/width.info"; then
    ok "stream-info: a flipped header byte, X86_PV_INFO at $info named"
else
    fail "stream-info: a flipped header byte, X86_PV_INFO at $info named"
    show "$T/width.info"
fi

# X86_PV_INFO (16 bytes) and STATIC_DATA_END (8) swapped: out of order.
cp "$T/plain.save" "$T/order.save"
dd if="$T/plain.save" of="$T/order.save" bs=1 skip=$((info + 16)) \
    seek="$info" count=8 conv=notrunc 2>/dev/null
dd if="$T/plain.save" of="$T/order.save" bs=1 skip="$info" \
    seek=$((info + 8)) count=16 conv=notrunc 2>/dev/null
si "$T/order.save" >"$T/order.info" 2>&1
rc=$?
if [ $rc -eq 1 ] &&
   grep -q "^error: $SDE at offset $info: the first record must be X86_PV" \
       "$T/order.info" &&
   grep -q "^error: $PVI at offset $((info + 8)): static data after STAT" \
       "$T/order.info" &&
   grep -q '^error: digest mismatch: the file is corrupted' "$T/order.info"
then
    ok "stream-info: records out of order, each named with its offset"
else
    fail "stream-info: records out of order, each named with its offset"
    show "$T/order.info"
fi

# A byte in a data page (the last plain one): only the digest can tell.
pos=$(page_data_pages "$T/plain.save" |
      awk '$2 == 0 { p = $1 + 100 } END { print p }')
cp "$T/plain.save" "$T/page.save"
poke "$T/page.save" "$pos" $(( $(u8 "$T/plain.save" "$pos") ^ 255 ))
si "$T/page.save" >"$T/page.info" 2>&1
rc=$?
if [ $rc -eq 1 ] && [ "$(key "$T/page.info" digest)" = bad ] &&
   grep -q '^error: digest mismatch: the file is corrupted' "$T/page.info"
then
    ok "stream-info: a flipped data byte, digest bad"
else
    fail "stream-info: a flipped data byte, digest bad"
    show "$T/page.info"
fi

# The zlib stream's first byte (its header) broken.
zstart=$((48 + $(u32 "$T/z.save" 44)))
cp "$T/z.save" "$T/zbad.save"
poke "$T/zbad.save" "$zstart" 0
freeB=$(free_mib "$B")
xlh "$B" restore -e "$T/zbad.save" >"$T/zbad.out" 2>&1
rc=$?
if [ $rc -ne 0 ] &&
   grep -q "compressed stream corrupt at offset $zstart (compressed byte" \
       "$T/zbad.out" &&
   no_domain "$B" idle && [ "$(free_mib "$B")" = "$freeB" ]; then
    ok "B: a corrupt zlib stream is refused naming the offset, nothing left"
else
    fail "B: a corrupt zlib stream is refused naming the offset"
fi
show "$T/zbad.out"
si "$T/zbad.save" >"$T/zbad.info" 2>&1
rc=$?
[ $rc -eq 1 ] &&
grep -q "^error: compressed stream corrupt at offset $zstart" \
    "$T/zbad.info" &&
    ok "stream-info: the corrupt zlib stream, offset named" ||
    { fail "stream-info: the corrupt zlib stream, offset named"
      show "$T/zbad.info"; }

# ---- an unknown mandatory flag (bit 30): Xen's refusal -----------------
cp "$T/plain.save" "$T/flag.save"
poke "$T/flag.save" 39 64
xlh "$B" restore -e "$T/flag.save" >"$T/flag.out" 2>&1
rc=$?
if [ $rc -ne 0 ] &&
   grep -q "^Savefile has mandatory flag(s) 0x40000000 $UNSUP\$" \
       "$T/flag.out" && no_domain "$B" idle; then
    ok "B: mandatory flag 0x40000000 refused with Xen's message"
else
    fail "B: mandatory flag 0x40000000 refused with Xen's message"
fi
show "$T/flag.out"
si "$T/flag.save" >"$T/flag.info" 2>&1
rc=$?
[ $rc -eq 1 ] &&
[ "$(key "$T/flag.info" xl_mandatory_flags)" = \
  "0x40000003 json,streamv2,unknown(0x40000000)" ] &&
    ok "stream-info: the unknown flag shown, exit 1" ||
    { fail "stream-info: the unknown flag shown, exit 1"
      show "$T/flag.info"; }

check "A: auditor clean at the end" xlh "$A" audit
check "B: auditor clean at the end" xlh "$B" audit
done_testing
