# SPDX-License-Identifier: MIT
#
# checksum: a deterministic computation over memory reached through
# page tables of every level, which it keeps changing; for checking that
# save, restore and migration preserve memory and page tables exactly.
#
#   steps=N      steps to run (default 1000000)
#
# It takes NFRAMES pages of its free memory: NDATA data pages ("slots"),
# a private page-table tree (NL1 L1 tables of 32 entries, 2 L2 tables of 4
# entries, 2 L3 tables of 2 entries) and a window page.  It builds the
# tree, pins every table of it and hooks one L3 into slot 1 of its boot L4,
# so that slot s is reached at
#
#   PRIV + (s >> 7) << 30 + ((s >> 5) & 3) << 21 + (s & 31) << 12
#
# through L4[1], an L3, an L2 and an L1.  It fills the slots through that
# tree with a PRNG sequence, then runs N steps: each reads a quadword of a
# pseudo-random slot, mixes it into the hash h and writes h back elsewhere
# in that slot.  Every 64 steps it remaps the window (update_va_mapping) to
# the data frame of a pseudo-random PFN taken from the P2M list and reads
# and writes through it; every 1024 steps it swaps the L1 entries of two
# slots, and 512 steps later it changes an upper level: swaps two L2
# entries (moving two L1 tables between L2 slots and tables), swaps the two
# entries of each L3 (moving the L2 tables; the two L3s always name them
# in opposite orders), or points L4[1] at the other L3.  So what a slot's
# VA reaches depends on every level of the tables, and a restore that got
# any entry of any level wrong changes the result.
#
# Which table sits where is kept in shadow arrays of frame indices (the
# layout is in PFNs, never MFNs); the entries themselves are read back
# from the tables when two are swapped.  Only PFNs (relative to the first
# free PFN) and memory contents reach h, never an MFN, so the same steps
# give the same result on every run, on any host, however often the guest
# is paused, saved or migrated; the model in
# tests/unit/test-checksum-model.c computes the same result on flat
# memory.  At the end it mixes the slots (in slot order) and the window
# into h, prints "result: <16 hex digits>" and powers off.  Control
# requests are handled every 4096 steps, between complete page-table
# updates.  See ferry-guests(7).

        .equ VIRT_BASE, 0x400000
        .org VIRT_BASE
        .entry start
        .include "common.inc"

        .equ NDATA, 256                 # data slots (pages); a power of 2
        .equ SEED, 0x243F6A8885A308D3
        .equ PRIV, 0x8000000000         # the slots' VA: L4 slot 1
        .equ PRIV_SLOT, 1

# The frames, as indices from the first free PFN.
        .equ F_L1, NDATA                # NL1 L1 tables, 32 slots each
        .equ NL1, 8
        .equ F_L2, F_L1 + NL1           # 2 L2 tables, 4 L1 tables each
        .equ F_L3, F_L2 + 2             # 2 L3 tables, 2 L2 tables each
        .equ F_WIN, F_L3 + 2            # the window's own page
        .equ NFRAMES, F_WIN + 1
        .equ NPT, F_WIN - F_L1          # private page-table frames

        .equ C_WIN, 8                   # our globals, at C: window VA
        .equ C_STEPS, 16
        .equ C_CUR3, 24                 # which L3 L4[PRIV_SLOT] names
        .equ C_REQ, 32                  # two mmu_update requests
        .equ C_L3M, 64                  # L3 t entry i: L2 C_L3M[2t + i]
        .equ C_L2M, 96                  # L2 u entry i: L1 C_L2M[4u + i]

        .align 8
C:      .space 160
reqs:   .space NPT * 16                 # mmu_update requests
ops:    .space NPT * 24                 # mmuext ops
vas:    .space NDATA * 8                # the slots' VAs, from slot_va
name:   .asciz "checksum"
s_up:   .asciz ": up steps="
s_result:
        .asciz "result: "
s_steps_key:
        .asciz "steps="
s_small:
        .asciz "too little free memory for the slots and tables, pages"
s_uvm:  .asciz "update_va_mapping(window)"
        .align 8

start:  mov rdi, name
        call rt_init
        mov r14, C
        mov rdi, s_steps_key
        mov rsi, 1000000
        call parse_arg
        stq [r14 + C_STEPS], rax
        ldq rdi, [r15 + G_FIRST_FREE]
        ldq rsi, [r15 + G_NR_PAGES]
        sub rsi, rdi
        cmp rsi, NFRAMES
        jb too_small
        add rdi, F_WIN
        call pfn_va
        stq [r14 + C_WIN], rax
        call lb_name
        mov rdi, s_up
        call lb_str
        ldq rdi, [r14 + C_STEPS]
        call lb_dec
        call lb_end
        call build_tree

# Fill the slots: quadword q holds x_q, x_0 = SEED, x_q+1 = mix(x_q, q).
        mov r12, 0
        mov rbp, SEED
fill:   mix rbp, r12
        shr rdi, r12, 9
        call slot_va
        and r1, r12, 511
        shl r1, 3
        add r1, rax
        stq [r1], rbp
        add r12, 1
        cmp r12, NDATA * 512
        jb fill

# The steps.  r12: step n; r13: h; rbp: x.
        mov r12, 0
        mov r13, 0
step:   ldq r0, [r14 + C_STEPS]
        cmp r12, r0
        jae finish
        mov rbp, r12
        mix rbp, r13                    # x = f(n ^ h)
        and r1, rbp, NDATA - 1          # slot
        shl r1, 3
        ldq rax, [r1 + vas]
        shr r2, rbp, 20                 # quadword read
        and r2, 511
        shl r2, 3
        add r2, rax
        ldq r1, [r2]
        mix r13, r1
        shr r2, rbp, 32                 # quadword written
        and r2, 511
        shl r2, 3
        add r2, rax
        stq [r2], r13
        and r0, r12, 63
        cmp r0, 63
        jne no_window
        call window
no_window:
        and r0, r12, 1023
        cmp r0, 511
        jne no_upper
        call upper
no_upper:
        and r0, r12, 1023
        cmp r0, 1023
        jne no_swap
        call swap
no_swap:
        and r0, r12, 4095
        cmp r0, 4095
        jne no_control
        call check_control
no_control:
        add r12, 1
        jmp step

# slot_va(rdi = slot) -> rax: the slot's VA in the private tree (the
# steps take it from vas[], which build_tree fills).
slot_va:
        shr rax, rdi, 7                 # L3 index
        shl rax, 30
        shr r1, rdi, 5                  # L2 index
        and r1, 3
        shl r1, 21
        or rax, r1
        and r1, rdi, 31                 # L1 index
        shl r1, 12
        or rax, r1
        mov r1, PRIV
        or rax, r1
        ret

# Remap the window to the frame of data PFN first_free + (h >> 8) % NDATA,
# then read, mix and write through it.
window: shr rdi, r13, 8
        and rdi, NDATA - 1
        ldq r0, [r15 + G_FIRST_FREE]
        add rdi, r0
        call pfn_to_mfn
        shl rsi, rax, 12
        or rsi, PTE_DATA
        ldq rdi, [r14 + C_WIN]
        mov rdx, UVMF_INVLPG
        mov rax, HYPERVISOR_update_va_mapping
        hcall
        cmp rax, 0
        jne window_fail
        ldq r1, [r14 + C_WIN]
        and r2, r13, 511
        shl r2, 3
        add r2, r1
        ldq r0, [r2]
        mix r13, r0
        add r2, r13, 7
        and r2, 511
        shl r2, 3
        add r2, r1
        stq [r2], r13
        ret
window_fail:
        mov rsi, rax
        mov rdi, s_uvm
        jmp die_rc

# slot_l1(rdi = slot) -> rax = the frame of the L1 table that maps it now,
# rdx = the index of its entry there; from the shadow arrays.
slot_l1:
        ldq r1, [r14 + C_CUR3]
        shl r1, 1
        shr r0, rdi, 7
        add r1, r0                      # 2 * L3 + L3 index
        shl r1, 3
        add r1, r14
        ldq r1, [r1 + C_L3M]            # the L2 table
        shl r1, 2
        shr r0, rdi, 5
        and r0, 3
        add r1, r0                      # 4 * L2 + L2 index
        shl r1, 3
        add r1, r14
        ldq rax, [r1 + C_L2M]           # the L1 table
        add rax, F_L1
        and rdx, rdi, 31
        ret

# Swap the L1 entries of slots a = (x >> 40) % NDATA and b = (x >> 50) %
# NDATA (b = a + 1 if equal).
swap:   push r12
        push r13
        shr r12, rbp, 40
        and r12, NDATA - 1
        shr r13, rbp, 50
        and r13, NDATA - 1
        cmp r12, r13
        jne swap_ab
        add r13, 1
        and r13, NDATA - 1
swap_ab:
        mov rdi, r12
        call slot_l1
        push rax
        push rdx
        mov rdi, r13
        call slot_l1
        mov r10, rdx
        mov rdx, rax
        pop rsi
        pop rdi
        call swap2
        pop r13
        pop r12
        ret

# Change an upper level, chosen by (x >> 40) % 4: 0 or 1, swap L2
# positions p = (x >> 42) % 8 and q = p ^ (1 + (x >> 45) % 7) (position
# 4u + i is entry i of L2 table u); 2, swap the two entries of each L3
# table; 3, point L4[PRIV_SLOT] at the other L3 table.  The two L3 tables
# always name the L2 tables in opposite orders, so that every upper-level
# entry matters: had a restore pointed any of them at another table of its
# level, the slots would reach other pages.
upper:  shr r0, rbp, 40
        and r0, 3
        cmp r0, 2
        jb up_l2
        je up_l3
        ldq r0, [r14 + C_CUR3]
        xor r0, 1
        stq [r14 + C_CUR3], r0
        add rdi, r0, F_L3
        ldq r0, [r15 + G_FIRST_FREE]
        add rdi, r0
        jmp hook_l3
up_l3:  ldq r0, [r14 + C_L3M]
        ldq r1, [r14 + C_L3M + 8]
        stq [r14 + C_L3M], r1
        stq [r14 + C_L3M + 8], r0
        ldq r0, [r14 + C_L3M + 16]
        ldq r1, [r14 + C_L3M + 24]
        stq [r14 + C_L3M + 16], r1
        stq [r14 + C_L3M + 24], r0
        mov rdi, F_L3
        mov rsi, 0
        mov rdx, F_L3
        mov r10, 1
        call swap2
        mov rdi, F_L3 + 1
        mov rsi, 0
        mov rdx, F_L3 + 1
        mov r10, 1
        jmp swap2
up_l2:  shr r8, rbp, 42
        and r8, 7
        shr r9, rbp, 45
        rem r9, r9, 7
        add r9, 1
        xor r9, r8
        shl r1, r8, 3
        add r1, r14
        shl r2, r9, 3
        add r2, r14
        ldq r0, [r1 + C_L2M]
        ldq r10, [r2 + C_L2M]
        stq [r1 + C_L2M], r10
        stq [r2 + C_L2M], r0
        shr rdi, r8, 2
        add rdi, F_L2
        and rsi, r8, 3
        shr rdx, r9, 2
        add rdx, F_L2
        and r10, r9, 3
        jmp swap2

# ent(rdi = table frame, rsi = entry index) -> rax = the entry's machine
# address, rdx = its value, read through the direct map.
ent:    ldq r0, [r15 + G_FIRST_FREE]
        add rdi, r0
        shl rsi, 3
        push rsi
        push rdi
        call pfn_va
        pop rdi
        pop rsi
        add r8, rax, rsi
        ldq rdx, [r8]
        push rdx
        push rsi
        call pfn_to_mfn
        pop rsi
        pop rdx
        shl rax, 12
        add rax, rsi
        ret

# swap2(rdi = frame a, rsi = entry a, rdx = frame b, r10 = entry b): swap
# two page-table entries in one mmu_update, then flush the TLB.
swap2:  push rdx
        push r10
        call ent
        stq [r14 + C_REQ], rax          # req[0].ptr = &a
        stq [r14 + C_REQ + 24], rdx     # req[1].val = a
        pop rsi
        pop rdi
        call ent
        stq [r14 + C_REQ + 16], rax     # req[1].ptr = &b
        stq [r14 + C_REQ + 8], rdx      # req[0].val = b
        lea rdi, [r14 + C_REQ]
        mov rsi, 2
        call mmu_update_self
        jmp flush_tlb

# put_ent(rdi = table frame, rsi = entry index, rdx = frame named, r10 =
# flags): write the entry through the direct map (before the table frame
# is one).
put_ent:
        ldq r0, [r15 + G_FIRST_FREE]
        add rdi, r0
        add r8, rdx, r0
        shl rsi, 3
        push rsi
        push r8
        push r10
        call pfn_va
        pop r10
        pop rdi
        pop rsi
        add rsi, rax
        push rsi
        push r10
        call pfn_to_mfn
        pop r10
        pop rsi
        shl rax, 12
        or rax, r10
        stq [rsi], rax
        ret

# build_tree(): zero the window and the table frames and write the tables
# while the direct map still maps them writable, map the table frames
# read-only, pin every table, then hook L3 table 0 into L4[PRIV_SLOT].
# The shadows start as the tables: L1 v maps slots 32v..32v+31, L2 u
# entry i names L1 4u + i, L3 t entry i names L2 i ^ t.
build_tree:
        push r12
        push r13
        mov r12, F_L1
bt_zero:
        ldq rdi, [r15 + G_FIRST_FREE]
        add rdi, r12
        call pfn_va
        mov r1, 0
        mov r2, 4096
        fillq rax, r1, r2
        add r12, 1
        cmp r12, NFRAMES
        jb bt_zero
        mov r12, 0                      # the L1 entries
bt_l1:  shr rdi, r12, 5
        add rdi, F_L1
        and rsi, r12, 31
        mov rdx, r12
        mov r10, PTE_DATA
        call put_ent
        add r12, 1
        cmp r12, NDATA
        jb bt_l1
        mov r12, 0                      # the L2 entries and their shadow
bt_l2:  shl r1, r12, 3
        add r1, r14
        stq [r1 + C_L2M], r12
        shr rdi, r12, 2
        add rdi, F_L2
        and rsi, r12, 3
        add rdx, r12, F_L1
        mov r10, PTE_TABLE
        call put_ent
        add r12, 1
        cmp r12, NL1
        jb bt_l2
        mov r12, 0                      # the L3 entries and their shadow
bt_l3:  shr r13, r12, 1
        and r0, r12, 1
        xor r13, r0                     # i ^ t
        shl r1, r12, 3
        add r1, r14
        stq [r1 + C_L3M], r13
        shr rdi, r12, 1
        add rdi, F_L3
        and rsi, r12, 1
        add rdx, r13, F_L2
        mov r10, PTE_TABLE
        call put_ent
        add r12, 1
        cmp r12, 4
        jb bt_l3
        mov r0, 0
        stq [r14 + C_CUR3], r0
        mov r12, 0                      # the slots' VAs
bt_vas: mov rdi, r12
        call slot_va
        shl r1, r12, 3
        mov r2, vas
        add r1, r2
        stq [r1], rax
        add r12, 1
        cmp r12, NDATA
        jb bt_vas
        mov r12, 0                      # read-only maps, and pins
bt_ro:  ldq rdi, [r15 + G_FIRST_FREE]
        add rdi, r12
        add rdi, F_L1
        push rdi
        call pfn_va
        mov rdi, rax
        call l1e_maddr
        shl r13, r12, 4
        mov r1, reqs
        add r13, r1
        stq [r13], rax
        pop rdi
        call pfn_to_mfn
        shl r8, rax, 12
        or r8, PTE_RO
        stq [r13 + 8], r8
        mul r13, r12, 24
        mov r1, ops
        add r13, r1
        stq [r13 + 8], rax
        mov r1, 0
        stl [r13 + 4], r1
        stq [r13 + 16], r1
        mov r1, MMUEXT_PIN_L1_TABLE
        cmp r12, F_L2 - F_L1
        jb bt_cmd
        mov r1, MMUEXT_PIN_L2_TABLE
        cmp r12, F_L3 - F_L1
        jb bt_cmd
        mov r1, MMUEXT_PIN_L3_TABLE
bt_cmd: stl [r13], r1
        add r12, 1
        cmp r12, NPT
        jb bt_ro
        mov rdi, reqs
        mov rsi, NPT
        call mmu_update_self
        call flush_tlb
        mov rdi, ops
        mov rsi, NPT
        call mmuext_self
        ldq rdi, [r15 + G_FIRST_FREE]
        add rdi, F_L3
        call hook_l3
        pop r13
        pop r12
        ret

# hook_l3(rdi = PFN of one of our L3 tables): point L4[PRIV_SLOT] of the
# boot tables at it, then flush the TLB.
hook_l3:
        call pfn_to_mfn
        shl rax, 12
        or rax, PTE_TABLE
        stq [r14 + C_REQ + 8], rax
        ldq rdi, [r15 + G_PT_PFN]
        call pfn_to_mfn
        shl rax, 12
        add rax, PRIV_SLOT * 8
        stq [r14 + C_REQ], rax
        lea rdi, [r14 + C_REQ]
        mov rsi, 1
        call mmu_update_self
        jmp flush_tlb

# Mix every quadword of every slot (in slot order) and then of the window
# into h.
finish: mov r12, 0
fin_loop:
        shr rdi, r12, 9
        call slot_va
        and r1, r12, 511
        shl r1, 3
        add r1, rax
        ldq r0, [r1]
        mix r13, r0
        add r12, 1
        cmp r12, NDATA * 512
        jb fin_loop
        ldq rbx, [r14 + C_WIN]
        mov r12, 0
fin_win:
        shl r1, r12, 3
        add r1, rbx
        ldq r0, [r1]
        mix r13, r0
        add r12, 1
        cmp r12, 512
        jb fin_win
        mov rdi, s_result
        call lb_str
        mov rdi, r13
        call lb_hex
        call lb_end
        mov rdi, SHUTDOWN_poweroff
        jmp do_shutdown

too_small:
        mov rdi, s_small
        jmp die_rc
