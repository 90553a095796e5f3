# scan: counts the 8-byte words of all its memory (every PFN, through the
# direct map) and of its shared_info that hold marker.s's marker, prints
# "scan: words <hex> hits <hex>" and powers off.  A fresh domain must find
# none: freed memory is scrubbed.
        .include "../../guests/abi.inc"
        .equ BASE, 0x400000
        .equ MARK_A, 0x5ca1ab1e0ddba11
        .equ MARK_B, 0x0f0e0d0c0b0a0908
        .org BASE
        .entry start

start:  mov r12, rsi                    # start_info
        movabs r9, MARK_A
        movabs r10, MARK_B
        xor r9, r9, r10                 # r9 = the marker, never stored
        ldq r13, [r12 + SI_NR_PAGES]
        shl r13, r13, 12
        add r13, r13, BASE              # the end of the direct map
        mov rdi, r13                    # map shared_info just past it
        ldq rsi, [r12 + SI_SHARED_INFO]
        or rsi, rsi, PTE_SHINFO
        mov rdx, UVMF_INVLPG
        mov rax, HYPERVISOR_update_va_mapping
        hcall
        add r13, r13, 4096              # scan shared_info too
        mov r1, BASE
        mov r11, 0                      # hits
scan:   ldq r5, [r1]                    # four words a round: the end
        cmp r5, r9                      # is a multiple of 4096
        jne n1
        add r11, r11, 1
n1:     ldq r5, [r1 + 8]
        cmp r5, r9
        jne n2
        add r11, r11, 1
n2:     ldq r5, [r1 + 16]
        cmp r5, r9
        jne n3
        add r11, r11, 1
n3:     ldq r5, [r1 + 24]
        cmp r5, r9
        jne n4
        add r11, r11, 1
n4:     add r1, r1, 32
        cmp r1, r13
        jb scan

        mov r1, r13
        sub r1, r1, BASE
        shr r1, r1, 3                   # words scanned
        mov r6, line + 28
        mov r7, 16
        call puthex
        mov r1, r11
        mov r6, line + 50
        mov r7, 16
        call puthex
        mov r1, line
        mov r3, line_end - line
        call print
        mov r8, 0                       # SHUTDOWN_poweroff
        jmp shutdown

        .include "lib.inc"

line:   .ascii "scan: words 0000000000000000 hits 0000000000000000\n"
line_end:
        .align 8
