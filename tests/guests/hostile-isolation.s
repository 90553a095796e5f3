# hostile-isolation: a guest kernel that reaches for memory that is not its
# own, as a 64-bit PV kernel in ring 3 would on Xen.  Handlers for #PF and
# #GP (set_trap_table) record the vector, error code and faulting address
# and resume after the access.  One line per access:
#
#   isolation: <R|W|X> <address> vec=<vector, ff: no fault> ec=<code> cr2=<address>
#
# then two hypercalls that pass a pointer into Xen's range, each printed as
# "isolation: <name> rc=<rax>", and "isolation: done".  t0018 checks every
# line against what Xen gives.
        .include "../../guests/abi.inc"
        .equ BASE, 0x400000
        .equ SLOT0, 0xFFFF000000000000  # L4 slot 0 of the upper half
        .equ V_VEC, 0
        .equ V_EC, 8
        .equ V_CR2, 16
        .equ V_RESUME, 24
        .org BASE
        .entry start

start:  mov r12, rsi                    # start_info
        mov rax, HYPERVISOR_set_trap_table
        mov rdi, traps
        hcall

        # Each of Xen's L4 slots 256..271, read then written.  Slot 258
        # (the linear map) is probed at its self-map address, where every
        # level is present, so only the missing U/S bit stops the access.
        mov r13, 256
slots:  shl r14, r13, 39
        movabs r1, SLOT0
        or r14, r14, r1
        cmp r13, 258
        jne probe_slot
        movabs r1, (258 << 30) | (258 << 21) | (258 << 12)
        or r14, r14, r1
probe_slot:
        mov rdi, 0
        mov rsi, r14
        call probe
        mov rdi, 1
        mov rsi, r14
        call probe
        add r13, r13, 1
        cmp r13, 272
        jb slots

        # A fetch from the direct map (slot 262).
        mov rdi, 2
        movabs rsi, SLOT0 | (262 << 39)
        call probe
        # Outside every mapping: an empty lower-half slot, the unmapped
        # page past the direct map, a non-canonical address (#GP).
        mov rdi, 0
        movabs rsi, 0x700000000000
        call probe
        mov rdi, 1
        movabs rsi, 0x700000000000
        call probe
        ldq r14, [r12 + SI_NR_PAGES]
        shl r14, r14, 12
        add r14, r14, BASE
        mov rdi, 0
        mov rsi, r14
        call probe
        mov rdi, 1
        mov rsi, r14
        call probe
        mov rdi, 0
        movabs rsi, 0x800000000000
        call probe
        # Its own L4, mapped read-only: a write is a protection fault.
        mov rdi, 1
        ldq rsi, [r12 + SI_PT_BASE]
        call probe

        # Hypercall arguments in Xen's range: -EFAULT, even for the
        # read-only M2P that the guest itself may read.
        mov rax, HYPERVISOR_console_io
        mov rdi, CONSOLEIO_write
        mov rsi, 16
        movabs rdx, SLOT0 | (262 << 39)
        hcall
        mov r1, name_directmap
        call report
        mov rax, HYPERVISOR_console_io
        mov rdi, CONSOLEIO_write
        mov rsi, 16
        movabs rdx, SLOT0 | (256 << 39)
        hcall
        mov r1, name_ro_mpt
        call report

        mov r1, msg_done
        mov r3, msg_done_end - msg_done
        call print
        mov r8, 0                       # SHUTDOWN_poweroff
        jmp shutdown

# probe(rdi = 0 read, 1 write, 2 fetch; rsi = address): access it once
# and print what happened.  Changes r0-r3 and r5-r9.
probe:  mov r3, vars
        mov r5, -1
        stq [r3 + V_VEC], r5
        mov r5, 0
        stq [r3 + V_EC], r5
        stq [r3 + V_CR2], r5
        mov r5, probe_done
        stq [r3 + V_RESUME], r5
        cmp rdi, 1
        je p_write
        cmp rdi, 2
        je p_fetch
        ldq r5, [rsi]
        jmp probe_done
p_write:
        mov r5, 0
        stq [rsi], r5
        jmp probe_done
p_fetch:
        jmp rsi
probe_done:
        mov r9, rsi                     # puthex uses r6 (rsi) and r7 (rdi)
        mov r5, ops
        add r5, r5, rdi
        ldb r5, [r5]
        mov r6, line
        stb [r6 + 11], r5
        mov r1, r9
        mov r6, line + 29               # end of the address field
        mov r7, 16
        call puthex
        mov r3, vars
        ldq r1, [r3 + V_VEC]
        mov r6, line + 36
        mov r7, 2
        call puthex
        mov r3, vars
        ldq r1, [r3 + V_EC]
        mov r6, line + 44
        mov r7, 4
        call puthex
        mov r3, vars
        ldq r1, [r3 + V_CR2]
        mov r6, line + 65
        mov r7, 16
        call puthex
        mov r1, line
        mov r3, line_end - line
        jmp print

# The fault handlers: r1 = error code, r2 = faulting address; the frame
# (after the two pushes) holds the interrupted rip at [sp + 40].
pf_handler:
        push r3
        push r5
        mov r5, 14
        jmp record
gp_handler:
        push r3
        push r5
        mov r5, 13
record: mov r3, vars
        stq [r3 + V_VEC], r5
        stq [r3 + V_EC], r1
        stq [r3 + V_CR2], r2
        ldq r5, [r3 + V_RESUME]
        stq [sp + 40], r5
        pop r5
        pop r3
        iret

# report: print "isolation: <name at r1, 16 bytes> rc=<rax, 16 digits>".
report: mov r2, rline + 11
        mov r3, 16
        copy r2, r1, r3
        mov r1, rax
        mov r6, rline_end - 1
        mov r7, 16
        call puthex
        mov r1, rline
        mov r3, rline_end - rline
        jmp print

        .include "lib.inc"

        .align 8
traps:  .byte 13, 0
        .word 0
        .long 0
        .quad gp_handler
        .byte 14, 0
        .word 0
        .long 0
        .quad pf_handler
        .quad 0, 0                      # end of the table
vars:   .space 32
ops:    .ascii "RWX"
line:   .ascii "isolation: ? 0000000000000000 vec=00 ec=0000 cr2=0000000000000000\n"
line_end:
rline:  .ascii "isolation:                  rc=0000000000000000\n"
rline_end:
name_directmap: .ascii "hcall-directmap "
name_ro_mpt:    .ascii "hcall-ro-m2p    "
msg_done:       .ascii "isolation: done\n"
msg_done_end:
        .align 8
