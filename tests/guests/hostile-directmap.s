# hostile-directmap: a guest kernel with no trap table that reads the first
# byte of Xen's direct map of machine memory (L4 slot 262).  On Xen that
# entry lacks _PAGE_USER and the kernel runs in ring 3: the read is a page
# fault (error code 0x1, present), and with no handler the domain crashes.
        .include "../../guests/abi.inc"
        .equ BASE, 0x400000
        .org BASE
        .entry start

start:  movabs r1, 0xFFFF830000000000
        ldq r2, [r1]
        mov r1, msg
        mov rax, HYPERVISOR_console_io
        mov rdi, CONSOLEIO_write
        mov rsi, msg_end - msg
        mov rdx, msg
        hcall
        halt
        jmp start

msg:    .ascii "directmap: read machine memory\n"
msg_end:
        .align 8
