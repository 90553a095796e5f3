# SPDX-License-Identifier: MIT
#
# memdirty: rewrites a working set of its free memory page by page, as a
# busy guest does, for testing log-dirty, save and live migration.
#
#   wss=SIZE     bytes of the working set (default 64M; at most the free
#                memory)
#   rate=SIZE    bytes per second to write (default 0: as fast as it can)
#
# Each page is filled by one fillq with a value made from the pass number
# and the page's index; the next pass first checks that the page still
# holds it (three quadwords) and prints "memdirty: MISMATCH ..." if not.
# After passes 1, 2, 4, 8, ... and otherwise at most once a second it
# prints "memdirty: pass N pages P".  Control requests are handled every
# 256 pages.  See ferry-guests(7).

        .equ VIRT_BASE, 0x400000
        .org VIRT_BASE
        .entry start
        .include "common.inc"

        .equ CHUNK_PAGES, 256
        .equ SALT, 0x6d656d6469727479   # "memdirty"

        .equ M_PAGES, 0                 # our globals, at M
        .equ M_BASE, 8                  # VA of the first page
        .equ M_RATE, 16
        .equ M_CHUNK_NS, 24             # ns per CHUNK_PAGES at rate
        .equ M_TARGET, 32               # when the next chunk may start
        .equ M_LAST_PRINT, 40
        .equ M_BAD, 48                  # mismatches seen

        .align 8
M:      .space 64
name:   .asciz "memdirty"
s_up:   .asciz ": up wss="
s_rate: .asciz " rate="
s_pages:
        .asciz " pages="
s_pass: .asciz ": pass "
s_pgs:  .asciz " pages "
s_mismatch:
        .asciz ": MISMATCH at pfn "
s_expected:
        .asciz " offset "
s_wanted:
        .asciz " expected "
s_got:  .asciz " got "
s_wss:  .asciz "wss="
s_rate_key:
        .asciz "rate="
        .align 8

# pattern(rdi = pass, rsi = page index) -> rax.
pattern:
        shl rax, rdi, 32
        or rax, rsi
        mov r1, SALT
        mix rax, r1
        ret

start:  mov rdi, name
        call rt_init
        mov r14, M
        mov rdi, s_wss
        mov rsi, 64M
        call parse_arg
        mov rbx, rax                    # wss
        mov rdi, s_rate_key
        mov rsi, 0
        call parse_arg
        stq [r14 + M_RATE], rax
        shr r0, rbx, 12                 # pages, capped to the free memory
        ldq r1, [r15 + G_NR_PAGES]
        ldq r2, [r15 + G_FIRST_FREE]
        sub r1, r2
        cmp r0, r1
        jbe pages_ok
        mov r0, r1
pages_ok:
        cmp r0, 0
        jne pages_nz
        mov r0, 1
pages_nz:
        stq [r14 + M_PAGES], r0
        mov rdi, r2
        call pfn_va
        stq [r14 + M_BASE], rax
        # ns per chunk = CHUNK_PAGES * 4096 * 1e9 / rate
        ldq r1, [r14 + M_RATE]
        mov r0, 0
        cmp r1, 0
        je rate_done
        mov r0, CHUNK_PAGES * 4096 * NS_PER_SEC
        div r0, r0, r1
rate_done:
        stq [r14 + M_CHUNK_NS], r0
        rdtime r0
        stq [r14 + M_TARGET], r0
        stq [r14 + M_LAST_PRINT], r0
        mov r0, 0
        stq [r14 + M_BAD], r0
        call lb_name
        mov rdi, s_up
        call lb_str
        mov rdi, rbx
        call lb_dec
        mov rdi, s_rate
        call lb_str
        ldq rdi, [r14 + M_RATE]
        call lb_dec
        mov rdi, s_pages
        call lb_str
        ldq rdi, [r14 + M_PAGES]
        call lb_dec
        call lb_end

# rbx: pass number; r12: page index; r13: its VA; rbp: this pass's value.
        mov rbx, 0
pass:   mov r12, 0
        ldq r13, [r14 + M_BASE]
page:   cmp rbx, 0
        je write
        lea rdi, [rbx - 1]
        mov rsi, r12
        call pattern
        ldq r1, [r13]
        mov r2, 0
        cmp r1, rax
        jne mismatch
        ldq r1, [r13 + 2048]
        mov r2, 2048
        cmp r1, rax
        jne mismatch
        ldq r1, [r13 + 4088]
        mov r2, 4088
        cmp r1, rax
        jne mismatch
write:  mov rdi, rbx
        mov rsi, r12
        call pattern
        mov r1, 4096
        fillq r13, rax, r1
        add r12, 1
        add r13, 4096
        test r12, CHUNK_PAGES - 1
        jne next
        call chunk_done
next:   ldq r0, [r14 + M_PAGES]
        cmp r12, r0
        jb page
        add rbx, 1
        call check_control
        call pass_done
        jmp pass

# A page did not hold what the last pass wrote: r1 = what it held, r2 =
# the offset, rax = what it should have held.
mismatch:
        push r1
        push rax
        push r2
        call lb_name
        mov rdi, s_mismatch
        call lb_str
        ldq r0, [r14 + M_BASE]
        sub rdi, r13, r0
        shr rdi, 12
        ldq r0, [r15 + G_FIRST_FREE]
        add rdi, r0
        call lb_dec
        mov rdi, s_expected
        call lb_str
        pop rdi
        call lb_dec
        mov rdi, s_pass
        call lb_str
        mov rdi, rbx
        call lb_dec
        mov rdi, s_wanted
        call lb_str
        pop rdi
        call lb_hex
        mov rdi, s_got
        call lb_str
        pop rdi
        call lb_hex
        call lb_end
        ldq r0, [r14 + M_BAD]
        add r0, 1
        stq [r14 + M_BAD], r0
        jmp write

# After each CHUNK_PAGES pages: control requests, then pacing.  A target
# more than a second behind (we were paused) is reset rather than caught
# up with a burst.
chunk_done:
        call check_control
        ldq r1, [r14 + M_CHUNK_NS]
        cmp r1, 0
        je cd_ret
        ldq r0, [r14 + M_TARGET]
        add r0, r1
        stq [r14 + M_TARGET], r0
        rdtime r2
        mov r8, NS_PER_SEC
        add r8, r0
        cmp r2, r8
        jbe cd_behind_ok
        stq [r14 + M_TARGET], r2
        ret
cd_behind_ok:
        cmp r2, r0
        jae cd_ret
        mov rdi, r0
        call sleep_until
cd_ret: ret

# After pass rbx: say so on passes 2^k, else at most once a second.
pass_done:
        sub r0, rbx, 1
        test r0, rbx
        je pd_print
        rdtime r0
        ldq r1, [r14 + M_LAST_PRINT]
        sub r0, r1
        cmp r0, NS_PER_SEC
        jb pd_ret
pd_print:
        rdtime r0
        stq [r14 + M_LAST_PRINT], r0
        call lb_name
        mov rdi, s_pass
        call lb_str
        mov rdi, rbx
        call lb_dec
        mov rdi, s_pgs
        call lb_str
        ldq rdi, [r14 + M_PAGES]
        call lb_dec
        call lb_end
pd_ret: ret
