# SPDX-License-Identifier: MIT
#
# idle: ferry's quietest guest.  It says "idle: up", then sleeps in 100 ms
# steps (set_timer_op + SCHEDOP_block), acting on control requests
# (poweroff, reboot, suspend) whenever it wakes, and prints
# "idle: alive N" every 10 seconds.  See ferry-guests(7).

        .equ VIRT_BASE, 0x400000
        .org VIRT_BASE
        .entry start
        .include "common.inc"

        .equ TICK_NS, 100000000         # 100 ms
        .equ ALIVE_NS, 10000000000      # 10 s

name:   .asciz "idle"
s_up:   .asciz ": up"
s_alive:
        .asciz ": alive "
        .align 8

# rbx: the next time to say "alive"; r12: how many times we did.
start:  mov rdi, name
        call rt_init
        mov rdi, s_up
        call say
        rdtime rbx
        mov r1, ALIVE_NS
        add rbx, r1
        mov r12, 0
tick:   rdtime rdi
        add rdi, TICK_NS
        call sleep_until
        rdtime r0
        cmp r0, rbx
        jb tick
        mov r1, ALIVE_NS
        add rbx, r1
        cmp r0, rbx                     # far behind (paused)?  catch up
        jb alive
        add rbx, r0, r1
alive:  add r12, 1
        call lb_name
        mov rdi, s_alive
        call lb_str
        mov rdi, r12
        call lb_dec
        call lb_end
        jmp tick
