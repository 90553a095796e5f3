# SPDX-License-Identifier: MIT
#
# checksum: a deterministic computation over memory reached through the
# guest's page tables, which it keeps changing; for checking that save,
# restore and migration preserve memory and page tables exactly.
#
#   steps=N      steps to run (default 1000000)
#
# It fills NDATA pages of its free memory ("slots") with a PRNG sequence,
# then runs N steps: each reads a quadword of a pseudo-random slot, mixes
# it into the hash h and writes h back elsewhere in that slot.  Every 64
# steps it remaps a window VA (the slot after the data) to the data frame
# of a pseudo-random PFN taken from the P2M list (update_va_mapping) and
# reads and writes through it; every 1024 steps it swaps the L1 entries of
# two slots (mmu_update), so what a slot's VA reaches depends on the page
# tables.  Only PFNs (relative to the first free PFN) and memory contents
# reach h, never an MFN, so the same steps give the same result on every
# run, on any host, however often the guest is paused, saved or migrated.
# At the end it mixes the slots into h, prints "result: <16 hex digits>"
# and powers off.  Control requests are handled every 4096 steps, between
# complete page-table updates.  See ferry-guests(7).

        .equ VIRT_BASE, 0x400000
        .org VIRT_BASE
        .entry start
        .include "common.inc"

        .equ NDATA, 256                 # data slots (pages); a power of 2
        .equ SEED, 0x243F6A8885A308D3

        .equ C_DATA, 0                  # our globals, at C: VA of slot 0
        .equ C_WIN, 8                   # VA of the window
        .equ C_STEPS, 16
        .equ C_REQ, 32                  # two mmu_update requests

        .align 8
C:      .space 64
name:   .asciz "checksum"
s_up:   .asciz ": up steps="
s_result:
        .asciz "result: "
s_steps_key:
        .asciz "steps="
s_small:
        .asciz "too little free memory for the data slots, pages"
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
        cmp rsi, NDATA + 1
        jb too_small
        call pfn_va
        stq [r14 + C_DATA], rax
        add rax, NDATA * 4096
        stq [r14 + C_WIN], rax
        call lb_name
        mov rdi, s_up
        call lb_str
        ldq rdi, [r14 + C_STEPS]
        call lb_dec
        call lb_end

# Fill the slots: quadword q holds x_q, x_0 = SEED, x_q+1 = mix(x_q, q).
        ldq rbx, [r14 + C_DATA]
        mov r12, 0
        mov rbp, SEED
fill:   mix rbp, r12
        shl r1, r12, 3
        add r1, rbx
        stq [r1], rbp
        add r12, 1
        cmp r12, NDATA * 512
        jb fill

# The steps.  r12: step n; r13: h; rbx: slot 0's VA; rbp: x.
        mov r12, 0
        mov r13, 0
step:   ldq r0, [r14 + C_STEPS]
        cmp r12, r0
        jae finish
        mov rbp, r12
        mix rbp, r13                    # x = f(n ^ h)
        and r1, rbp, NDATA - 1          # slot
        shl r1, 12
        add r1, rbx
        shr r2, rbp, 20                 # quadword read
        and r2, 511
        shl r2, 3
        add r2, r1
        ldq r0, [r2]
        mix r13, r0
        shr r2, rbp, 32                 # quadword written
        and r2, 511
        shl r2, 3
        add r2, r1
        stq [r2], r13
        and r0, r12, 63
        cmp r0, 63
        jne no_window
        call window
no_window:
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

# Swap the L1 entries of slots a = (x >> 40) % NDATA and b = (x >> 50) %
# NDATA (b = a + 1 if equal), in one mmu_update, then flush the TLB.
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
        shl rdi, r12, 12
        add rdi, rbx
        call l1e_maddr
        stq [r14 + C_REQ], rax          # req[0].ptr = &l1e(a)
        ldq r0, [r15 + G_L1E_VA]
        ldq r0, [r0]
        stq [r14 + C_REQ + 24], r0      # req[1].val = l1e(a)
        shl rdi, r13, 12
        add rdi, rbx
        call l1e_maddr
        stq [r14 + C_REQ + 16], rax     # req[1].ptr = &l1e(b)
        ldq r0, [r15 + G_L1E_VA]
        ldq r0, [r0]
        stq [r14 + C_REQ + 8], r0       # req[0].val = l1e(b)
        lea rdi, [r14 + C_REQ]
        mov rsi, 2
        call mmu_update_self
        call flush_tlb
        pop r13
        pop r12
        ret

# Mix every quadword of every slot and of the window into h, in VA order.
finish: mov r12, 0
fin_loop:
        shl r1, r12, 3
        add r1, rbx
        ldq r0, [r1]
        mix r13, r0
        add r12, 1
        cmp r12, (NDATA + 1) * 512
        jb fin_loop
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
