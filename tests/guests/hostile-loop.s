# hostile-loop: never stops making hypercalls, some of them huge batches
# that fail part-way.  The host must stay responsive: pausing and
# destroying it work at once and other domains keep running.
        .include "../../guests/abi.inc"
        .org 0x400000
        .entry start
start:  mov rax, HYPERVISOR_xen_version
        mov rdi, 0
        hcall
        mov rax, HYPERVISOR_mmu_update
        mov rdi, 0x400000               # requests: our own code, as garbage
        mov rsi, 0x7fffffff             # a count no guest memory can back
        mov rdx, 0
        mov r10, 0x7ff0
        hcall
        mov rax, HYPERVISOR_sched_op
        mov rdi, 0                      # SCHEDOP_yield
        hcall
        jmp start
