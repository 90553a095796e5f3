# SPDX-License-Identifier: MIT
#
# pagetables: keeps creating and destroying "processes" the PV way, for
# testing page-table validation, pinning, ballooning and their migration.
# It takes no parameters.  Each round:
#
#   1. takes 4 data frames, 4 table frames (L4, L3, L2, L1) and 1 balloon
#      frame from its free memory (the window moves 4 PFNs a round, so
#      last round's table frames are this round's data frames);
#   2. zeroes the table frames, maps them read-only in the direct map
#      (mmu_update on their L1 entries), then writes the tree through
#      mmu_update: the L1 maps the data frames at a private VA window
#      (PRIV, L4 slot 1), and the L4 also carries the boot L4's entries so
#      the guest keeps running on it;
#   3. pins the L4, switches to it (MMUEXT_NEW_BASEPTR), writes the data
#      frames through PRIV and reads them back, switches back, unpins;
#   4. checks the data frames through the direct map, maps the old table
#      frames writable again and uses them as data;
#   5. balloons the balloon frame out (decrease_reservation, after
#      clearing its direct-map entry) and back in (populate_physmap),
#      updating its P2M entry and direct-map entry, and uses it.
#
# Anything read back wrong prints "pagetables: MISMATCH ...".  It prints
# "pagetables: round N" after rounds 1, 2, 4, 8, ... and otherwise at most
# once a second, and handles control requests between rounds, when no
# private tree exists and the P2M list is complete.  See ferry-guests(7).

        .equ VIRT_BASE, 0x400000
        .org VIRT_BASE
        .entry start
        .include "common.inc"

        .equ PRIV, 0x8000000000         # L4 slot 1, L3 0, L2 0, L1 0-3
        .equ PRIV_SLOT, 1
        .equ MAX_REGION, 4096
        .equ SALT, 0x7061676574626c73   # "pagetbls"

        .equ P_W, 0                     # our globals, at P: window spread
        .equ P_LAST_PRINT, 8
        .equ P_NREQ, 16
        .equ P_BAD, 24
        .equ P_PFN, 32                  # verify(): the PFN being checked
        .equ P_EXT, 40                  # one extent for memory_op
        .equ P_RES, 48                  # struct xen_memory_reservation
        .equ P_OPS, 80                  # two struct mmuext_op
        .equ P_REQ1, 128                # one mmu_update request

        .align 8
P:      .space 256
reqs:   .space 300 * 16
name:   .asciz "pagetables"
s_up:   .asciz ": up region="
s_round:
        .asciz ": round "
s_mismatch:
        .asciz ": MISMATCH round "
s_pfn:  .asciz " pfn "
s_at:   .asciz " offset "
s_wanted:
        .asciz " expected "
s_got:  .asciz " got "
s_small:
        .asciz "too little free memory, pages"
s_decrease:
        .asciz "decrease_reservation"
s_populate:
        .asciz "populate_physmap"
        .align 8

# pattern(rdi = round, rsi = which frame of the round) -> rax.
pattern:
        shl rax, rdi, 8
        or rax, rsi
        mov r1, SALT
        mix rax, r1
        ret

# verify(rdi = VA, rsi = expected; P_PFN = the PFN, for the message):
# quadwords 0, 256 and 511 of the page must hold the value.
verify: push rbx
        push rbp
        mov rbx, rdi
        mov rbp, rsi
        mov rdx, 0
        call vf_one
        mov rdx, 2048
        call vf_one
        mov rdx, 4088
        call vf_one
        pop rbp
        pop rbx
        ret
vf_one: add r1, rbx, rdx
        ldq r0, [r1]
        cmp r0, rbp
        jne vf_bad
        ret
vf_bad: push r0
        push rdx
        call lb_name
        mov rdi, s_mismatch
        call lb_str
        mov rdi, r12
        call lb_dec
        mov rdi, s_pfn
        call lb_str
        ldq rdi, [r14 + P_PFN]
        call lb_dec
        mov rdi, s_at
        call lb_str
        pop rdi
        call lb_dec
        mov rdi, s_wanted
        call lb_str
        mov rdi, rbp
        call lb_hex
        mov rdi, s_got
        call lb_str
        pop rdi
        call lb_hex
        call lb_end
        ldq r0, [r14 + P_BAD]
        add r0, 1
        stq [r14 + P_BAD], r0
        ret

# set_l1(rdi = pfn, rsi = new PTE): rewrite the direct-map L1 entry of pfn
# with mmu_update.  The caller flushes the TLB.
set_l1: push rsi
        call pfn_va
        mov rdi, rax
        call l1e_maddr
        pop rsi
        stq [r14 + P_REQ1], rax
        stq [r14 + P_REQ1 + 8], rsi
        lea rdi, [r14 + P_REQ1]
        mov rsi, 1
        jmp mmu_update_self

# map_pfn(rdi = pfn, rsi = PTE flags): direct-map entry = its MFN | flags.
map_pfn:
        push rdi
        push rsi
        call pfn_to_mfn
        pop rsi
        pop rdi
        shl rax, 12
        or rsi, rax
        jmp set_l1

# add_req(rdi = table pfn, rsi = entry index, rdx = value): append an
# mmu_update request for that entry of that table.
add_req:
        push rsi
        push rdx
        call pfn_to_mfn
        pop rdx
        pop rsi
        shl rax, 12
        shl rsi, 3
        add rax, rsi
        ldq r1, [r14 + P_NREQ]
        shl r9, r1, 4
        mov r8, reqs
        add r9, r8
        stq [r9], rax
        stq [r9 + 8], rdx
        add r1, 1
        stq [r14 + P_NREQ], r1
        ret

# mfn_pte(rdi = pfn, rsi = flags) -> rax = its MFN << 12 | flags.
mfn_pte:
        push rsi
        call pfn_to_mfn
        pop rsi
        shl rax, 12
        or rax, rsi
        ret

# ext_op(rdi = index 0/1, rsi = cmd, rdx = pfn whose MFN is arg1).
ext_op: mul r8, rdi, 24
        lea r9, [r14 + P_OPS]
        add r9, r8
        stl [r9], rsi
        mov r0, 0
        stl [r9 + 4], r0
        stq [r9 + 16], r0
        push r9
        mov rdi, rdx
        call pfn_to_mfn
        pop r9
        stq [r9 + 8], rax
        ret

# memop(rdi = cmd, rsi = extent value) -> rax = the extent after the call;
# dies unless exactly one extent was done.
memop:  push rbx
        mov rbx, rdi
        stq [r14 + P_EXT], rsi
        lea r1, [r14 + P_EXT]
        stq [r14 + P_RES], r1           # extent_start
        mov r1, 1
        stq [r14 + P_RES + 8], r1       # nr_extents
        mov r1, 0
        stq [r14 + P_RES + 16], r1      # extent_order, mem_flags
        mov r1, DOMID_SELF
        stq [r14 + P_RES + 24], r1      # domid, pad
        mov rdi, rbx
        lea rsi, [r14 + P_RES]
        mov rax, HYPERVISOR_memory_op
        hcall
        cmp rax, 1
        jne memop_fail
        ldq rax, [r14 + P_EXT]
        pop rbx
        ret
memop_fail:
        mov rsi, rax
        mov rdi, s_decrease
        cmp rbx, XENMEM_decrease_reservation
        je memop_die
        mov rdi, s_populate
memop_die:
        jmp die_rc

start:  mov rdi, name
        call rt_init
        mov r14, P
        ldq r0, [r15 + G_NR_PAGES]
        ldq r1, [r15 + G_FIRST_FREE]
        sub rsi, r0, r1
        cmp rsi, 16
        jb too_small
        cmp rsi, MAX_REGION
        jbe region_ok
        mov rsi, MAX_REGION
region_ok:
        push rsi
        sub rsi, 8
        stq [r14 + P_W], rsi
        rdtime r0
        stq [r14 + P_LAST_PRINT], r0
        mov r0, 0
        stq [r14 + P_BAD], r0
        call lb_name
        mov rdi, s_up
        call lb_str
        pop rdi
        call lb_dec
        call lb_end
        mov r12, 0

# r12: round; r13: its first PFN (d0..d3, then t0..t3 = L4..L1, then b).
round:  shl r0, r12, 2
        ldq r1, [r14 + P_W]
        rem r0, r0, r1
        ldq r13, [r15 + G_FIRST_FREE]
        add r13, r0

# 1-2. Zero the table frames, then map them read-only.
        mov rbx, 4
zero:   add rdi, r13, rbx
        call pfn_va
        mov r1, 0
        mov r2, 4096
        fillq rax, r1, r2
        add rbx, 1
        cmp rbx, 8
        jb zero
        mov rbx, 4
ro:     add rdi, r13, rbx
        mov rsi, PTE_RO
        call map_pfn
        add rbx, 1
        cmp rbx, 8
        jb ro
        call flush_tlb

# 3. The tree, through mmu_update.
        mov r0, 0
        stq [r14 + P_NREQ], r0
        mov rbx, 0
l1:     add rdi, r13, rbx
        mov rsi, PTE_DATA
        call mfn_pte
        mov rdx, rax
        add rdi, r13, 7
        mov rsi, rbx
        call add_req
        add rbx, 1
        cmp rbx, 4
        jb l1
        add rdi, r13, 7                 # L2[0] -> L1
        mov rsi, PTE_TABLE
        call mfn_pte
        mov rdx, rax
        add rdi, r13, 6
        mov rsi, 0
        call add_req
        add rdi, r13, 6                 # L3[0] -> L2
        mov rsi, PTE_TABLE
        call mfn_pte
        mov rdx, rax
        add rdi, r13, 5
        mov rsi, 0
        call add_req
        add rdi, r13, 5                 # L4[PRIV_SLOT] -> L3
        mov rsi, PTE_TABLE
        call mfn_pte
        mov rdx, rax
        add rdi, r13, 4
        mov rsi, PRIV_SLOT
        call add_req
        mov rbx, 0                      # the boot L4's guest entries
boot_l4:
        cmp rbx, PRIV_SLOT
        je boot_next
        ldq r1, [r15 + G_SI]
        ldq r1, [r1 + SI_PT_BASE]
        shl r2, rbx, 3
        add r1, r2
        ldq rdx, [r1]
        cmp rdx, 0
        je boot_next
        add rdi, r13, 4
        mov rsi, rbx
        call add_req
boot_next:
        add rbx, 1
        cmp rbx, 256
        jb boot_l4
        mov rdi, reqs
        ldq rsi, [r14 + P_NREQ]
        call mmu_update_self

# 4. Pin the L4 and switch to it.
        mov rdi, 0
        mov rsi, MMUEXT_PIN_L4_TABLE
        add rdx, r13, 4
        call ext_op
        mov rdi, 1
        mov rsi, MMUEXT_NEW_BASEPTR
        add rdx, r13, 4
        call ext_op
        lea rdi, [r14 + P_OPS]
        mov rsi, 2
        call mmuext_self

# 5. Write the data frames through PRIV only, and read them back.
        mov rbx, 0
priv:   mov rdi, r12
        mov rsi, rbx
        call pattern
        mov rbp, PRIV
        shl r1, rbx, 12
        add rbp, r1
        mov r2, 4096
        fillq rbp, rax, r2
        add rdi, r13, rbx
        stq [r14 + P_PFN], rdi
        mov rdi, rbp
        mov rsi, rax
        call verify
        add rbx, 1
        cmp rbx, 4
        jb priv

# 6. Back to the boot tables; unpin ours.
        mov rdi, 0
        mov rsi, MMUEXT_NEW_BASEPTR
        ldq rdx, [r15 + G_PT_PFN]
        call ext_op
        mov rdi, 1
        mov rsi, MMUEXT_UNPIN_TABLE
        add rdx, r13, 4
        call ext_op
        lea rdi, [r14 + P_OPS]
        mov rsi, 2
        call mmuext_self

# 7. The data frames, through the direct map.
        mov rbx, 0
direct: add rdi, r13, rbx
        stq [r14 + P_PFN], rdi
        call pfn_va
        mov rbp, rax
        mov rdi, r12
        mov rsi, rbx
        call pattern
        mov rdi, rbp
        mov rsi, rax
        call verify
        add rbx, 1
        cmp rbx, 4
        jb direct

# 8-9. The table frames become writable data again.
        mov rbx, 4
rw:     add rdi, r13, rbx
        mov rsi, PTE_DATA
        call map_pfn
        add rbx, 1
        cmp rbx, 8
        jb rw
        call flush_tlb
        mov rbx, 4
reuse:  add rdi, r13, rbx
        stq [r14 + P_PFN], rdi
        call pfn_va
        mov rbp, rax
        mov rdi, r12
        mov rsi, rbx
        call pattern
        not rax
        mov r2, 4096
        fillq rbp, rax, r2
        mov rdi, rbp
        mov rsi, rax
        call verify
        add rbx, 1
        cmp rbx, 8
        jb reuse

# 10. Balloon frame b out and back in.
        add rbx, r13, 8
        mov rdi, rbx
        mov rsi, 0
        call set_l1
        call flush_tlb
        mov rdi, rbx
        call pfn_to_mfn
        mov rdi, XENMEM_decrease_reservation
        mov rsi, rax
        call memop
        ldq r1, [r15 + G_MFN_LIST]      # the P2M: b has no frame now
        shl r2, rbx, 3
        add r1, r2
        mov r0, -1
        stq [r1], r0
        mov rdi, XENMEM_populate_physmap
        mov rsi, rbx
        call memop
        ldq r1, [r15 + G_MFN_LIST]      # the P2M: b's new frame
        shl r2, rbx, 3
        add r1, r2
        stq [r1], rax
        mov rdi, rbx
        shl rsi, rax, 12
        or rsi, PTE_DATA
        call set_l1
        call flush_tlb
        stq [r14 + P_PFN], rbx
        mov rdi, rbx
        call pfn_va
        mov rbp, rax
        mov rdi, r12
        mov rsi, 8
        call pattern
        mov r2, 4096
        fillq rbp, rax, r2
        mov rdi, rbp
        mov rsi, rax
        call verify

# The round is complete: report, then take control requests.
        add r12, 1
        sub r0, r12, 1
        test r0, r12
        je say_round
        rdtime r0
        ldq r1, [r14 + P_LAST_PRINT]
        sub r0, r1
        cmp r0, NS_PER_SEC
        jb round_done
say_round:
        rdtime r0
        stq [r14 + P_LAST_PRINT], r0
        call lb_name
        mov rdi, s_round
        call lb_str
        mov rdi, r12
        call lb_dec
        call lb_end
round_done:
        call check_control
        jmp round

too_small:
        mov rdi, s_small
        jmp die_rc
