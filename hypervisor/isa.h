/* SPDX-License-Identifier: MIT */
/*
 * isa.h: ferry's guest instruction set, its interpreter interface and the
 * guest image format.
 *
 * Every vCPU of a ferry PV guest is a thread that runs a guest program on a
 * small 64-bit CPU defined here.  The interpreter (hypervisor/isa-exec.c)
 * knows nothing of page tables: every fetch, load and store goes through
 * the callbacks of struct isa_ops, which the vCPU runner implements on top
 * of the guest's own x86-64 page tables.  The assembler (guests/as.c)
 * produces images in the format defined at the bottom of this file.
 * man/ferry-isa.7 is the user's manual of all three; keep them in step.
 *
 * THE STATE
 *
 * The whole CPU state is the struct cpu_user_regs inside the vCPU's
 * vcpu_guest_context: sixteen general registers, rip and rflags.  The
 * interpreter keeps nothing between instructions, so the registers a
 * migration stream carries are enough to continue exactly where the guest
 * stopped.  Registers are numbered in x86 order:
 *
 *   r0 rax   r4 rsp (sp)   r8  r8    r12 r12
 *   r1 rcx   r5 rbp        r9  r9    r13 r13
 *   r2 rdx   r6 rsi        r10 r10   r14 r14
 *   r3 rbx   r7 rdi        r11 r11   r15 r15
 *
 * rflags holds the condition flags at their x86 positions (CF bit 0, ZF 6,
 * SF 7, OF 11).  add, sub, neg, and, or, xor, cmp and test set all four as
 * x86 does, iret restores them from its frame, and every other instruction
 * leaves rflags alone.  PF and AF are not modelled, and no instruction
 * writes any other bit (IF, bit 9, belongs to the vCPU runner's event
 * delivery).
 *
 * PRECISE FAULTS
 *
 * An instruction either completes or has no architectural effect at all:
 * registers, rip, rflags and memory are as they were before it, so it can
 * be executed again once the fault is handled, or after a migration.  The
 * interpreter computes results into locals, performs the instruction's
 * memory accesses, and only then writes registers.  Each instruction makes
 * at most one store call (or one fill or copy call), and the callbacks
 * promise that a store either writes every byte or none.
 *
 * ENCODING
 *
 * An instruction is one little-endian 64-bit word, 8-byte aligned:
 *
 *   bits  0..7   opcode
 *   bits  8..11  field a (a register: usually the destination or address)
 *   bits 12..15  field b (a register: usually the source)
 *   bits 16..19  field c (a register: a second source or a length)
 *   bits 20..31  reserved, zero
 *   bits 32..63  imm, a signed 32-bit immediate or displacement
 *
 * movabs alone is followed by a second word holding a 64-bit immediate.
 * Fields an instruction does not use must be zero; an instruction word
 * with a non-zero unused field, a reserved bit set or an unknown opcode
 * raises the invalid-opcode fault, and so does the all-zero word.  Branch
 * and call targets are relative to the following instruction.
 */
#ifndef FERRY_ISA_H
#define FERRY_ISA_H

#include <stddef.h>
#include <stdint.h>

#include "include/public/abi.h"

/* Bump when an instruction is added or changes meaning. */
#define FERRY_ISA_VERSION 2U     /* 2: ldesc */

#define ISA_NR_REGS   16U
#define ISA_INSN_SIZE 8U

/* rflags bits (x86 positions). */
#define ISA_RFLAGS_CF (1UL << 0)
#define ISA_RFLAGS_ZF (1UL << 6)
#define ISA_RFLAGS_SF (1UL << 7)
#define ISA_RFLAGS_IF (1UL << 9)
#define ISA_RFLAGS_OF (1UL << 11)
#define ISA_RFLAGS_ARITH (ISA_RFLAGS_CF | ISA_RFLAGS_ZF | ISA_RFLAGS_SF | \
                          ISA_RFLAGS_OF)

/* Register numbers with x86 names. */
enum isa_reg
{
    ISA_RAX, ISA_RCX, ISA_RDX, ISA_RBX, ISA_RSP, ISA_RBP, ISA_RSI, ISA_RDI,
    ISA_R8, ISA_R9, ISA_R10, ISA_R11, ISA_R12, ISA_R13, ISA_R14, ISA_R15,
};

/* Register n (0..15) inside the x86 register file. */
static inline uint64_t *isa_reg(struct cpu_user_regs *regs, unsigned int n)
{
    static const uint8_t off[ISA_NR_REGS] = {
        offsetof(struct cpu_user_regs, rax),
        offsetof(struct cpu_user_regs, rcx),
        offsetof(struct cpu_user_regs, rdx),
        offsetof(struct cpu_user_regs, rbx),
        offsetof(struct cpu_user_regs, rsp),
        offsetof(struct cpu_user_regs, rbp),
        offsetof(struct cpu_user_regs, rsi),
        offsetof(struct cpu_user_regs, rdi),
        offsetof(struct cpu_user_regs, r8),
        offsetof(struct cpu_user_regs, r9),
        offsetof(struct cpu_user_regs, r10),
        offsetof(struct cpu_user_regs, r11),
        offsetof(struct cpu_user_regs, r12),
        offsetof(struct cpu_user_regs, r13),
        offsetof(struct cpu_user_regs, r14),
        offsetof(struct cpu_user_regs, r15),
    };

    return (uint64_t *)((char *)regs + off[n & (ISA_NR_REGS - 1)]);
}

/*
 * Opcodes.  When adding one, also update isa_formats[] in isa-exec.c, the
 * assembler's table in guests/as.c and man/ferry-isa.7, and bump
 * FERRY_ISA_VERSION.
 */
enum isa_opcode
{
    ISA_OP_UD      = 0x00,  /* the all-zero word: invalid opcode */
    ISA_OP_NOP     = 0x01,
    ISA_OP_HALT    = 0x02,
    ISA_OP_HCALL   = 0x03,
    ISA_OP_RDTIME  = 0x04,  /* a = time */
    ISA_OP_RET     = 0x05,
    ISA_OP_IRET    = 0x06,
    ISA_OP_LDESC   = 0x07,  /* a = the descriptor selector b names */
    ISA_OP_MOV     = 0x08,  /* a = b */
    ISA_OP_MOVI    = 0x09,  /* a = sign-extended imm */
    ISA_OP_MOVABS  = 0x0A,  /* a = the next word */
    ISA_OP_LEA     = 0x0B,  /* a = b + imm */
    ISA_OP_NOT     = 0x0C,  /* a = ~b */
    ISA_OP_NEG     = 0x0D,  /* a = -b, flags */
    ISA_OP_MIX     = 0x0E,  /* a = mix(a, b) */

    /* ALU, register form: a = b OP c.  Immediate form: a = b OP imm. */
    ISA_OP_ALU_R   = 0x10,
    ISA_OP_ALU_I   = 0x20,
#define ISA_ALU_ADD  0x0U
#define ISA_ALU_SUB  0x1U
#define ISA_ALU_MUL  0x2U
#define ISA_ALU_DIV  0x3U   /* unsigned */
#define ISA_ALU_REM  0x4U   /* unsigned */
#define ISA_ALU_IDIV 0x5U   /* signed, truncating */
#define ISA_ALU_IREM 0x6U   /* signed, sign of the dividend */
#define ISA_ALU_AND  0x7U
#define ISA_ALU_OR   0x8U
#define ISA_ALU_XOR  0x9U
#define ISA_ALU_SHL  0xAU
#define ISA_ALU_SHR  0xBU
#define ISA_ALU_SAR  0xCU
#define ISA_ALU_CMP  0xDU   /* flags of b - c; a unused */
#define ISA_ALU_TEST 0xEU   /* flags of b & c; a unused */
#define ISA_ALU_NR   0xFU

    /* Branches: rip = next + imm if the condition holds. */
    ISA_OP_JCC     = 0x30,
#define ISA_CC_ALWAYS 0x0U
#define ISA_CC_EQ     0x1U  /* ZF */
#define ISA_CC_NE     0x2U  /* !ZF */
#define ISA_CC_LT     0x3U  /* SF != OF */
#define ISA_CC_LE     0x4U  /* ZF || SF != OF */
#define ISA_CC_GT     0x5U  /* !ZF && SF == OF */
#define ISA_CC_GE     0x6U  /* SF == OF */
#define ISA_CC_B      0x7U  /* CF */
#define ISA_CC_BE     0x8U  /* CF || ZF */
#define ISA_CC_A      0x9U  /* !CF && !ZF */
#define ISA_CC_AE     0xAU  /* !CF */
#define ISA_CC_NR     0xBU
    ISA_OP_JMPR    = 0x3B,  /* rip = b */
    ISA_OP_CALL    = 0x3C,  /* push next; rip = next + imm */
    ISA_OP_CALLR   = 0x3D,  /* push next; rip = b */
    ISA_OP_PUSH    = 0x3E,  /* push b */
    ISA_OP_POP     = 0x3F,  /* pop a */

    /* Loads: a = [b + imm].  Stores: [a + imm] = b. */
    ISA_OP_LDB     = 0x40,
    ISA_OP_LDW     = 0x41,
    ISA_OP_LDL     = 0x42,
    ISA_OP_LDQ     = 0x43,
    ISA_OP_LDSB    = 0x44,
    ISA_OP_LDSW    = 0x45,
    ISA_OP_LDSL    = 0x46,
    ISA_OP_STB     = 0x48,
    ISA_OP_STW     = 0x49,
    ISA_OP_STL     = 0x4A,
    ISA_OP_STQ     = 0x4B,

    /* Bulk: c bytes at [a], at most ISA_BULK_MAX. */
    ISA_OP_FILLB   = 0x50,  /* with the low byte of b */
    ISA_OP_FILLQ   = 0x51,  /* with the 8 bytes of b, little-endian */
    ISA_OP_COPY    = 0x52,  /* from [b], as memmove */
};

/* Field extraction from an instruction word. */
#define ISA_F_OP(w)  ((unsigned int)((w) & 0xFF))
#define ISA_F_A(w)   ((unsigned int)(((w) >> 8) & 0xF))
#define ISA_F_B(w)   ((unsigned int)(((w) >> 12) & 0xF))
#define ISA_F_C(w)   ((unsigned int)(((w) >> 16) & 0xF))
#define ISA_F_IMM(w) ((int64_t)(int32_t)(uint32_t)((w) >> 32))

/* Build an instruction word (the assembler and tests). */
static inline uint64_t isa_encode(unsigned int op, unsigned int a,
                                  unsigned int b, unsigned int c, int32_t imm)
{
    return (uint64_t)(op & 0xFF) | ((uint64_t)(a & 0xF) << 8) |
           ((uint64_t)(b & 0xF) << 12) | ((uint64_t)(c & 0xF) << 16) |
           ((uint64_t)(uint32_t)imm << 32);
}

/* Largest fill or copy: one page, so the MMU can do it in one piece. */
#define ISA_BULK_MAX PAGE_SIZE

/*
 * Faults, numbered as the x86 exception vectors they mirror.  The fault
 * handler of vector v is trap_ctxt[v].address of the vcpu_guest_context.
 */
#define ISA_VEC_DE 0U       /* divide error: div/rem by zero, idiv overflow */
#define ISA_VEC_UD 6U       /* invalid opcode or encoding, misaligned rip */
#define ISA_VEC_GP 13U      /* general protection: fill/copy > one page,
                               a selector beyond its table (error code:
                               the selector, RPL bits clear) */
#define ISA_VEC_PF 14U      /* page fault, reported by the isa_ops */

/* Page-fault error code bits (x86). */
#define ISA_PFEC_PRESENT (1U << 0)
#define ISA_PFEC_WRITE   (1U << 1)
#define ISA_PFEC_USER    (1U << 2)
#define ISA_PFEC_INSN    (1U << 4)

struct isa_fault
{
    unsigned int vector;    /* ISA_VEC_* */
    uint32_t error_code;    /* ISA_PFEC_* for #PF, 0 otherwise */
    uint64_t va;            /* #PF: the faulting address (cr2) */
    uint64_t rip;           /* the faulting instruction */
    unsigned int retired;   /* instructions completed by this isa_step */
};

/*
 * Callback results.  A callback that fails with ISA_OP_FAULT fills in
 * vector (ISA_VEC_PF), error_code and va of the isa_fault it was given;
 * the interpreter adds rip.  ISA_OP_ABORT stops the run before the
 * instruction takes effect, without a fault (a crashed domain, a pause
 * request noticed inside the MMU); isa_step then returns ISA_EXIT_ABORT.
 */
#define ISA_OP_OK    0
#define ISA_OP_FAULT 1
#define ISA_OP_ABORT 2

/* What a hypercall callback asks of the run (*action). */
#define ISA_HCALL_CONTINUE 0    /* rax = result, go on */
#define ISA_HCALL_STOP     1    /* rax = result, rip past hcall, stop */
#define ISA_HCALL_RESTART  2    /* continuation: rax and rip untouched, stop */

/*
 * The memory and service callbacks; cpu is the caller's cookie.
 *
 * fetch, load and store move len bytes (1..ISA_BULK_MAX) between guest
 * virtual address va and buf: 8 bytes or less, except 32 for iret and
 * fault delivery and up to a page in the bulk fallbacks below.  va may be
 * unaligned and the range may cross a page boundary.  A store or fill
 * either writes every byte or none: translate every page first, then
 * write.  fetch may be NULL (load is used).
 *
 * fill writes len bytes at va, byte i being pattern byte (i % 8) in
 * little-endian order; copy moves len bytes from src to dst as memmove
 * does.  len is 1..ISA_BULK_MAX, so at most two pages per side.  Both are
 * all-or-nothing like store, and may be NULL (the interpreter then uses a
 * bounce buffer and one load and one store).
 *
 * hypercall runs hypercall number rax with arguments rdi, rsi, rdx, r10,
 * r8 (Xen's x86-64 PV convention) and returns the result for rax; it may
 * change other registers, and sets *action (ISA_HCALL_*), which the
 * interpreter initialises to ISA_HCALL_CONTINUE.  NULL: every hypercall
 * returns -ENOSYS.
 *
 * time returns the value of rdtime (ferry: guest system time in ns).
 * NULL: rdtime reads 0.
 *
 * desc reads into *desc the 8-byte descriptor that selector sel names in
 * the vCPU's GDT (bit 2 clear) or LDT (bit 2 set), as an x86 CPU does when
 * it loads a segment register; a selector beyond the table raises #GP,
 * and reading an LDT page may fault as the vCPU runner decides (#PF).
 * NULL: every selector raises #GP.
 */
struct isa_ops
{
    int (*fetch)(void *cpu, uint64_t va, void *buf, unsigned int len,
                 struct isa_fault *f);
    int (*load)(void *cpu, uint64_t va, void *buf, unsigned int len,
                struct isa_fault *f);
    int (*store)(void *cpu, uint64_t va, const void *buf, unsigned int len,
                 struct isa_fault *f);
    int (*fill)(void *cpu, uint64_t va, uint64_t pattern, unsigned int len,
                struct isa_fault *f);
    int (*copy)(void *cpu, uint64_t dst, uint64_t src, unsigned int len,
                struct isa_fault *f);
    long (*hypercall)(void *cpu, struct cpu_user_regs *regs, int *action);
    uint64_t (*time)(void *cpu);
    int (*desc)(void *cpu, uint16_t sel, uint64_t *desc,
                struct isa_fault *f);
};

/* Why isa_step returned. */
#define ISA_EXIT_BUDGET 0   /* ran budget instructions */
#define ISA_EXIT_HALT   1   /* executed halt; rip is past it */
#define ISA_EXIT_HCALL  2   /* the hypercall callback asked to stop */
#define ISA_EXIT_FAULT  3   /* *fault describes it; nothing was changed */
#define ISA_EXIT_ABORT  4   /* a callback returned ISA_OP_ABORT */

/*
 * Run up to budget instructions from regs->rip.  Returns ISA_EXIT_*; in
 * every case fault->retired counts the instructions that completed, and
 * regs holds the state after the last of them.
 */
int isa_step(struct cpu_user_regs *regs, const struct isa_ops *ops,
             void *cpu, unsigned int budget, struct isa_fault *fault);

/*
 * Enter the guest's fault handler, as the vCPU runner does when it
 * delivers a fault (handler: trap_ctxt[fault->vector].address, which the
 * runner checks is non-zero; if it is zero the domain crashes instead).
 * Pushes a 32-byte frame below rsp with one store:
 *
 *   [rsp + 0]  the interrupted r1 (rcx)
 *   [rsp + 8]  the interrupted r2 (rdx)
 *   [rsp + 16] the interrupted rflags
 *   [rsp + 24] rip of the faulting instruction
 *
 * then sets r1 = error code, r2 = faulting address (#PF; 0 otherwise) and
 * rip = handler.  iret undoes exactly this.  Returns ISA_OP_OK, or the
 * store's failure with *nested filled in (a fault while delivering a fault:
 * the runner crashes the domain), in which case regs are untouched.
 */
int isa_deliver_fault(struct cpu_user_regs *regs, const struct isa_ops *ops,
                      void *cpu, uint64_t handler,
                      const struct isa_fault *fault, struct isa_fault *nested);

/* A mnemonic for an opcode ("ldq", "jne" ...), or NULL if undefined. */
const char *isa_opcode_name(unsigned int op);

/*
 * THE IMAGE FORMAT
 *
 * A guest image is a 64-byte header followed by image_size bytes, all
 * little-endian.  The domain builder maps the bytes at virtual address
 * base, bss_size zero bytes after them, and starts vCPU 0 at entry.
 * A reader accepts format version FERRY_IMAGE_VERSION only, requires
 * header_size == 64, isa_version <= FERRY_ISA_VERSION, flags == 0,
 * reserved == 0, an 8-byte aligned entry inside the bytes, and
 * base + image_size + bss_size not to wrap.
 */
#define FERRY_IMAGE_MAGIC       "FERRYIMG"
#define FERRY_IMAGE_VERSION     1U
#define FERRY_IMAGE_HEADER_SIZE 64U
#define FERRY_IMAGE_MAX_SIZE    (256UL << 20)   /* stored bytes */

struct ferry_image_header
{
    char magic[8];          /* "FERRYIMG", no NUL */
    uint32_t version;       /* FERRY_IMAGE_VERSION */
    uint32_t header_size;   /* 64 */
    uint64_t base;          /* virtual address of the first byte */
    uint64_t entry;         /* virtual address of the first instruction */
    uint64_t image_size;    /* bytes following the header */
    uint64_t bss_size;      /* zero bytes mapped after them */
    uint32_t isa_version;   /* FERRY_ISA_VERSION the program needs */
    uint32_t flags;         /* 0 */
    uint64_t reserved;      /* 0 */
};
_Static_assert(sizeof(struct ferry_image_header) == FERRY_IMAGE_HEADER_SIZE,
               "ferry_image_header is 64 bytes");

#endif /* FERRY_ISA_H */
