/* SPDX-License-Identifier: MIT */
/*
 * The guest CPU: an interpreter for ferry's instruction set (isa.h,
 * man/ferry-isa.7).
 *
 * isa_step() runs a vCPU's program for a budget of instructions on the
 * registers of its vcpu_guest_context.  It owns no memory and no state of
 * its own: instruction fetch, loads, stores and the bulk operations go
 * through the caller's isa_ops, which translate through the guest's page
 * tables, and hypercalls and time come from the caller too.  The hot loop
 * allocates nothing and makes no system call.
 *
 * Invariant: an instruction has an architectural effect only if all its
 * callbacks succeeded.  Each case below reads its operands, performs its
 * one memory operation (loads have no side effects, and a store, fill or
 * copy is all-or-nothing by the isa_ops contract), and writes registers,
 * rflags and rip last.  So a fault or an abort leaves regs exactly as they
 * were before the instruction, and running the same instruction again
 * after the fault is repaired, possibly on another host, gives the same
 * result as if the fault had never happened.
 */
#include <errno.h>
#include <string.h>

#include "hv.h"
#include "isa.h"

/* Field masks of the instruction word. */
#define M_OP  0x00000000000000FFULL
#define M_A   0x0000000000000F00ULL
#define M_B   0x000000000000F000ULL
#define M_C   0x00000000000F0000ULL
#define M_IMM 0xFFFFFFFF00000000ULL

/*
 * The bits each opcode may set: the opcode and the fields it uses.  Zero
 * for undefined opcodes, and for ISA_OP_UD so that the all-zero word (the
 * contents of fresh memory) is invalid.
 */
static const uint64_t isa_formats[256] = {
    [ISA_OP_NOP]    = M_OP,
    [ISA_OP_HALT]   = M_OP,
    [ISA_OP_HCALL]  = M_OP,
    [ISA_OP_RDTIME] = M_OP | M_A,
    [ISA_OP_RET]    = M_OP,
    [ISA_OP_IRET]   = M_OP,
    [ISA_OP_LDESC]  = M_OP | M_A | M_B,
    [ISA_OP_MOV]    = M_OP | M_A | M_B,
    [ISA_OP_MOVI]   = M_OP | M_A | M_IMM,
    [ISA_OP_MOVABS] = M_OP | M_A,
    [ISA_OP_LEA]    = M_OP | M_A | M_B | M_IMM,
    [ISA_OP_NOT]    = M_OP | M_A | M_B,
    [ISA_OP_NEG]    = M_OP | M_A | M_B,
    [ISA_OP_MIX]    = M_OP | M_A | M_B,

    [ISA_OP_ALU_R + ISA_ALU_ADD]  = M_OP | M_A | M_B | M_C,
    [ISA_OP_ALU_R + ISA_ALU_SUB]  = M_OP | M_A | M_B | M_C,
    [ISA_OP_ALU_R + ISA_ALU_MUL]  = M_OP | M_A | M_B | M_C,
    [ISA_OP_ALU_R + ISA_ALU_DIV]  = M_OP | M_A | M_B | M_C,
    [ISA_OP_ALU_R + ISA_ALU_REM]  = M_OP | M_A | M_B | M_C,
    [ISA_OP_ALU_R + ISA_ALU_IDIV] = M_OP | M_A | M_B | M_C,
    [ISA_OP_ALU_R + ISA_ALU_IREM] = M_OP | M_A | M_B | M_C,
    [ISA_OP_ALU_R + ISA_ALU_AND]  = M_OP | M_A | M_B | M_C,
    [ISA_OP_ALU_R + ISA_ALU_OR]   = M_OP | M_A | M_B | M_C,
    [ISA_OP_ALU_R + ISA_ALU_XOR]  = M_OP | M_A | M_B | M_C,
    [ISA_OP_ALU_R + ISA_ALU_SHL]  = M_OP | M_A | M_B | M_C,
    [ISA_OP_ALU_R + ISA_ALU_SHR]  = M_OP | M_A | M_B | M_C,
    [ISA_OP_ALU_R + ISA_ALU_SAR]  = M_OP | M_A | M_B | M_C,
    [ISA_OP_ALU_R + ISA_ALU_CMP]  = M_OP | M_B | M_C,
    [ISA_OP_ALU_R + ISA_ALU_TEST] = M_OP | M_B | M_C,

    [ISA_OP_ALU_I + ISA_ALU_ADD]  = M_OP | M_A | M_B | M_IMM,
    [ISA_OP_ALU_I + ISA_ALU_SUB]  = M_OP | M_A | M_B | M_IMM,
    [ISA_OP_ALU_I + ISA_ALU_MUL]  = M_OP | M_A | M_B | M_IMM,
    [ISA_OP_ALU_I + ISA_ALU_DIV]  = M_OP | M_A | M_B | M_IMM,
    [ISA_OP_ALU_I + ISA_ALU_REM]  = M_OP | M_A | M_B | M_IMM,
    [ISA_OP_ALU_I + ISA_ALU_IDIV] = M_OP | M_A | M_B | M_IMM,
    [ISA_OP_ALU_I + ISA_ALU_IREM] = M_OP | M_A | M_B | M_IMM,
    [ISA_OP_ALU_I + ISA_ALU_AND]  = M_OP | M_A | M_B | M_IMM,
    [ISA_OP_ALU_I + ISA_ALU_OR]   = M_OP | M_A | M_B | M_IMM,
    [ISA_OP_ALU_I + ISA_ALU_XOR]  = M_OP | M_A | M_B | M_IMM,
    [ISA_OP_ALU_I + ISA_ALU_SHL]  = M_OP | M_A | M_B | M_IMM,
    [ISA_OP_ALU_I + ISA_ALU_SHR]  = M_OP | M_A | M_B | M_IMM,
    [ISA_OP_ALU_I + ISA_ALU_SAR]  = M_OP | M_A | M_B | M_IMM,
    [ISA_OP_ALU_I + ISA_ALU_CMP]  = M_OP | M_B | M_IMM,
    [ISA_OP_ALU_I + ISA_ALU_TEST] = M_OP | M_B | M_IMM,

    [ISA_OP_JCC + ISA_CC_ALWAYS] = M_OP | M_IMM,
    [ISA_OP_JCC + ISA_CC_EQ]     = M_OP | M_IMM,
    [ISA_OP_JCC + ISA_CC_NE]     = M_OP | M_IMM,
    [ISA_OP_JCC + ISA_CC_LT]     = M_OP | M_IMM,
    [ISA_OP_JCC + ISA_CC_LE]     = M_OP | M_IMM,
    [ISA_OP_JCC + ISA_CC_GT]     = M_OP | M_IMM,
    [ISA_OP_JCC + ISA_CC_GE]     = M_OP | M_IMM,
    [ISA_OP_JCC + ISA_CC_B]      = M_OP | M_IMM,
    [ISA_OP_JCC + ISA_CC_BE]     = M_OP | M_IMM,
    [ISA_OP_JCC + ISA_CC_A]      = M_OP | M_IMM,
    [ISA_OP_JCC + ISA_CC_AE]     = M_OP | M_IMM,
    [ISA_OP_JMPR]  = M_OP | M_B,
    [ISA_OP_CALL]  = M_OP | M_IMM,
    [ISA_OP_CALLR] = M_OP | M_B,
    [ISA_OP_PUSH]  = M_OP | M_B,
    [ISA_OP_POP]   = M_OP | M_A,

    [ISA_OP_LDB]  = M_OP | M_A | M_B | M_IMM,
    [ISA_OP_LDW]  = M_OP | M_A | M_B | M_IMM,
    [ISA_OP_LDL]  = M_OP | M_A | M_B | M_IMM,
    [ISA_OP_LDQ]  = M_OP | M_A | M_B | M_IMM,
    [ISA_OP_LDSB] = M_OP | M_A | M_B | M_IMM,
    [ISA_OP_LDSW] = M_OP | M_A | M_B | M_IMM,
    [ISA_OP_LDSL] = M_OP | M_A | M_B | M_IMM,
    [ISA_OP_STB]  = M_OP | M_A | M_B | M_IMM,
    [ISA_OP_STW]  = M_OP | M_A | M_B | M_IMM,
    [ISA_OP_STL]  = M_OP | M_A | M_B | M_IMM,
    [ISA_OP_STQ]  = M_OP | M_A | M_B | M_IMM,

    [ISA_OP_FILLB] = M_OP | M_A | M_B | M_C,
    [ISA_OP_FILLQ] = M_OP | M_A | M_B | M_C,
    [ISA_OP_COPY]  = M_OP | M_A | M_B | M_C,
};

static const char *const isa_names[256] = {
    [ISA_OP_UD] = "ud", [ISA_OP_NOP] = "nop", [ISA_OP_HALT] = "halt",
    [ISA_OP_HCALL] = "hcall", [ISA_OP_RDTIME] = "rdtime",
    [ISA_OP_RET] = "ret", [ISA_OP_IRET] = "iret", [ISA_OP_LDESC] = "ldesc",
    [ISA_OP_MOV] = "mov", [ISA_OP_MOVI] = "mov", [ISA_OP_MOVABS] = "movabs",
    [ISA_OP_LEA] = "lea",
    [ISA_OP_NOT] = "not", [ISA_OP_NEG] = "neg", [ISA_OP_MIX] = "mix",
#define ALU_NAMES(base)                                                    \
    [base + ISA_ALU_ADD] = "add", [base + ISA_ALU_SUB] = "sub",            \
    [base + ISA_ALU_MUL] = "mul", [base + ISA_ALU_DIV] = "div",            \
    [base + ISA_ALU_REM] = "rem", [base + ISA_ALU_IDIV] = "idiv",          \
    [base + ISA_ALU_IREM] = "irem", [base + ISA_ALU_AND] = "and",          \
    [base + ISA_ALU_OR] = "or", [base + ISA_ALU_XOR] = "xor",              \
    [base + ISA_ALU_SHL] = "shl", [base + ISA_ALU_SHR] = "shr",            \
    [base + ISA_ALU_SAR] = "sar", [base + ISA_ALU_CMP] = "cmp",            \
    [base + ISA_ALU_TEST] = "test"
    ALU_NAMES(ISA_OP_ALU_R),
    ALU_NAMES(ISA_OP_ALU_I),
#undef ALU_NAMES
    [ISA_OP_JCC + ISA_CC_ALWAYS] = "jmp", [ISA_OP_JCC + ISA_CC_EQ] = "jeq",
    [ISA_OP_JCC + ISA_CC_NE] = "jne", [ISA_OP_JCC + ISA_CC_LT] = "jlt",
    [ISA_OP_JCC + ISA_CC_LE] = "jle", [ISA_OP_JCC + ISA_CC_GT] = "jgt",
    [ISA_OP_JCC + ISA_CC_GE] = "jge", [ISA_OP_JCC + ISA_CC_B] = "jb",
    [ISA_OP_JCC + ISA_CC_BE] = "jbe", [ISA_OP_JCC + ISA_CC_A] = "ja",
    [ISA_OP_JCC + ISA_CC_AE] = "jae", [ISA_OP_JMPR] = "jmp",
    [ISA_OP_CALL] = "call", [ISA_OP_CALLR] = "call", [ISA_OP_PUSH] = "push",
    [ISA_OP_POP] = "pop", [ISA_OP_LDB] = "ldb", [ISA_OP_LDW] = "ldw",
    [ISA_OP_LDL] = "ldl", [ISA_OP_LDQ] = "ldq", [ISA_OP_LDSB] = "ldsb",
    [ISA_OP_LDSW] = "ldsw", [ISA_OP_LDSL] = "ldsl", [ISA_OP_STB] = "stb",
    [ISA_OP_STW] = "stw", [ISA_OP_STL] = "stl", [ISA_OP_STQ] = "stq",
    [ISA_OP_FILLB] = "fillb", [ISA_OP_FILLQ] = "fillq",
    [ISA_OP_COPY] = "copy",
};

const char *isa_opcode_name(unsigned int op)
{
    if ( op > 0xFF || (op != ISA_OP_UD && !isa_formats[op]) )
        return NULL;
    return isa_names[op];
}

/* Little-endian loads and stores of guest data in host buffers. */
static inline uint64_t get_le(const uint8_t *p, unsigned int len)
{
    uint64_t v = 0;

    while ( len-- )
        v = (v << 8) | p[len];
    return v;
}

static inline void put_le(uint8_t *p, uint64_t v, unsigned int len)
{
    for ( unsigned int i = 0; i < len; i++, v >>= 8 )
        p[i] = (uint8_t)v;
}

static inline uint64_t flags_zs(uint64_t res)
{
    return (res ? 0 : ISA_RFLAGS_ZF) | ((res >> 63) ? ISA_RFLAGS_SF : 0);
}

static inline uint64_t flags_add(uint64_t x, uint64_t y, uint64_t res)
{
    return flags_zs(res) | (res < x ? ISA_RFLAGS_CF : 0) |
           ((((x ^ res) & (y ^ res)) >> 63) ? ISA_RFLAGS_OF : 0);
}

static inline uint64_t flags_sub(uint64_t x, uint64_t y, uint64_t res)
{
    return flags_zs(res) | (x < y ? ISA_RFLAGS_CF : 0) |
           ((((x ^ y) & (x ^ res)) >> 63) ? ISA_RFLAGS_OF : 0);
}

static inline bool cond_holds(unsigned int cc, uint64_t fl)
{
    bool zf = fl & ISA_RFLAGS_ZF, cf = fl & ISA_RFLAGS_CF;
    bool lt = !(fl & ISA_RFLAGS_SF) != !(fl & ISA_RFLAGS_OF);

    switch ( cc )
    {
    case ISA_CC_ALWAYS: return true;
    case ISA_CC_EQ:     return zf;
    case ISA_CC_NE:     return !zf;
    case ISA_CC_LT:     return lt;
    case ISA_CC_LE:     return zf || lt;
    case ISA_CC_GT:     return !zf && !lt;
    case ISA_CC_GE:     return !lt;
    case ISA_CC_B:      return cf;
    case ISA_CC_BE:     return cf || zf;
    case ISA_CC_A:      return !cf && !zf;
    default:            return !cf;             /* ISA_CC_AE */
    }
}

/*
 * One ALU operation.  Returns false for a divide error; otherwise *res is
 * the result and *fl the new rflags (unchanged for operations that do not
 * set flags).
 */
static inline bool alu(unsigned int op, uint64_t x, uint64_t y,
                       uint64_t *res, uint64_t *fl)
{
    uint64_t r = 0, nf = *fl & ~ISA_RFLAGS_ARITH;

    switch ( op )
    {
    case ISA_ALU_ADD:
        r = x + y;
        *fl = nf | flags_add(x, y, r);
        break;
    case ISA_ALU_SUB:
    case ISA_ALU_CMP:
        r = x - y;
        *fl = nf | flags_sub(x, y, r);
        break;
    case ISA_ALU_AND:
    case ISA_ALU_TEST:
        r = x & y;
        *fl = nf | flags_zs(r);
        break;
    case ISA_ALU_OR:
        r = x | y;
        *fl = nf | flags_zs(r);
        break;
    case ISA_ALU_XOR:
        r = x ^ y;
        *fl = nf | flags_zs(r);
        break;
    case ISA_ALU_MUL:
        r = x * y;
        break;
    case ISA_ALU_DIV:
    case ISA_ALU_REM:
        if ( y == 0 )
            return false;
        r = op == ISA_ALU_DIV ? x / y : x % y;
        break;
    case ISA_ALU_IDIV:
    case ISA_ALU_IREM:
        /* x86's idiv faults on INT64_MIN / -1 too: the quotient overflows. */
        if ( y == 0 || (x == (1ULL << 63) && y == ~0ULL) )
            return false;
        r = op == ISA_ALU_IDIV ? (uint64_t)((int64_t)x / (int64_t)y)
                               : (uint64_t)((int64_t)x % (int64_t)y);
        break;
    case ISA_ALU_SHL:
        r = x << (y & 63);
        break;
    case ISA_ALU_SHR:
        r = x >> (y & 63);
        break;
    default:                                    /* ISA_ALU_SAR */
        r = (x >> (y & 63)) | ((x >> 63) ? ~(~0ULL >> (y & 63)) : 0);
        break;
    }
    *res = r;
    return true;
}

/* The mixing function of `mix`: cheap, and every input bit matters. */
static inline uint64_t isa_mix(uint64_t x, uint64_t y)
{
    x ^= y;
    x *= 0x9E3779B97F4A7C15ULL;
    return x ^ (x >> 29);
}

/*
 * fill and copy without a bulk callback: build or read the bytes in a
 * bounce buffer, then one store.  Out of line to keep the page-sized
 * buffer off the hot loop's stack frame.
 */
static __attribute__((noinline)) int bulk_fallback(
    const struct isa_ops *ops, void *cpu, unsigned int op, uint64_t dst,
    uint64_t src_or_pattern, unsigned int len, struct isa_fault *f)
{
    uint8_t buf[ISA_BULK_MAX];
    int rc;

    if ( op == ISA_OP_COPY )
    {
        rc = ops->load(cpu, src_or_pattern, buf, len, f);
        if ( rc )
            return rc;
    }
    else
    {
        for ( unsigned int i = 0; i < len; i++ )
            buf[i] = (uint8_t)(src_or_pattern >> (8 * (i & 7)));
    }
    return ops->store(cpu, dst, buf, len, f);
}

static int do_bulk(const struct isa_ops *ops, void *cpu, unsigned int op,
                   uint64_t dst, uint64_t src, uint64_t len,
                   struct isa_fault *f)
{
    if ( len == 0 )
        return ISA_OP_OK;
    if ( len > ISA_BULK_MAX )
    {
        f->vector = ISA_VEC_GP;
        f->error_code = 0;
        f->va = 0;
        return ISA_OP_FAULT;
    }
    if ( op == ISA_OP_FILLB )
        src = (src & 0xFF) * 0x0101010101010101ULL;
    if ( op == ISA_OP_COPY )
    {
        if ( ops->copy )
            return ops->copy(cpu, dst, src, (unsigned int)len, f);
    }
    else if ( ops->fill )
        return ops->fill(cpu, dst, src, (unsigned int)len, f);
    return bulk_fallback(ops, cpu, op, dst, src, (unsigned int)len, f);
}

static inline void set_fault(struct isa_fault *f, unsigned int vector)
{
    f->vector = vector;
    f->error_code = 0;
    f->va = 0;
}

int isa_step(struct cpu_user_regs *regs, const struct isa_ops *ops,
             void *cpu, unsigned int budget, struct isa_fault *fault)
{
    int (*fetch)(void *, uint64_t, void *, unsigned int, struct isa_fault *) =
        ops->fetch ? ops->fetch : ops->load;
    struct isa_fault dummy;
    struct isa_fault *f = fault ? fault : &dummy;
    uint64_t *R[ISA_NR_REGS];
    unsigned int n = 0;
    int rc = ISA_EXIT_BUDGET, orc;

    for ( unsigned int i = 0; i < ISA_NR_REGS; i++ )
        R[i] = isa_reg(regs, i);

    for ( ; n < budget; n++ )
    {
        uint64_t rip = regs->rip, next = rip + ISA_INSN_SIZE;
        uint64_t fl = regs->rflags, w, v = 0, x, y;
        uint8_t b[32];
        unsigned int op, a, bf, c, len;
        int64_t imm;

        if ( unlikely(rip & (ISA_INSN_SIZE - 1)) )
        {
            set_fault(f, ISA_VEC_UD);
            goto raise;
        }
        orc = fetch(cpu, rip, b, ISA_INSN_SIZE, f);
        if ( unlikely(orc) )
            goto op_failed;
        w = get_le(b, 8);
        op = ISA_F_OP(w);
        if ( unlikely(!isa_formats[op] || (w & ~isa_formats[op])) )
        {
            set_fault(f, ISA_VEC_UD);
            goto raise;
        }
        a = ISA_F_A(w);
        bf = ISA_F_B(w);
        c = ISA_F_C(w);
        imm = ISA_F_IMM(w);

        switch ( op )
        {
        case ISA_OP_NOP:
            break;

        case ISA_OP_HALT:
            regs->rip = next;
            n++;
            rc = ISA_EXIT_HALT;
            goto out;

        case ISA_OP_HCALL:
        {
            int action = ISA_HCALL_CONTINUE;
            long ret = -ENOSYS;

            if ( ops->hypercall )
                ret = ops->hypercall(cpu, regs, &action);
            if ( action == ISA_HCALL_RESTART )
            {
                rc = ISA_EXIT_HCALL;
                goto out;
            }
            regs->rax = (uint64_t)ret;
            regs->rip = next;
            if ( action == ISA_HCALL_STOP )
            {
                n++;
                rc = ISA_EXIT_HCALL;
                goto out;
            }
            continue;
        }

        case ISA_OP_RDTIME:
            *R[a] = ops->time ? ops->time(cpu) : 0;
            break;

        case ISA_OP_RET:
            orc = ops->load(cpu, *R[ISA_RSP], b, 8, f);
            if ( unlikely(orc) )
                goto op_failed;
            *R[ISA_RSP] += 8;
            next = get_le(b, 8);
            break;

        case ISA_OP_IRET:
            orc = ops->load(cpu, *R[ISA_RSP], b, 32, f);
            if ( unlikely(orc) )
                goto op_failed;
            *R[ISA_RSP] += 32;
            regs->rcx = get_le(b, 8);
            regs->rdx = get_le(b + 8, 8);
            regs->rflags = (fl & ~ISA_RFLAGS_ARITH) |
                           (get_le(b + 16, 8) & ISA_RFLAGS_ARITH);
            next = get_le(b + 24, 8);
            break;

        case ISA_OP_LDESC:
            if ( !ops->desc )
            {
                set_fault(f, ISA_VEC_GP);
                f->error_code = (uint32_t)(*R[bf] & 0xfffc);
                goto raise;
            }
            orc = ops->desc(cpu, (uint16_t)*R[bf], &v, f);
            if ( unlikely(orc) )
                goto op_failed;
            *R[a] = v;
            break;

        case ISA_OP_MOV:
            *R[a] = *R[bf];
            break;

        case ISA_OP_MOVI:
            *R[a] = (uint64_t)imm;
            break;

        case ISA_OP_MOVABS:
            orc = fetch(cpu, next, b, 8, f);
            if ( unlikely(orc) )
                goto op_failed;
            *R[a] = get_le(b, 8);
            next += 8;
            break;

        case ISA_OP_LEA:
            *R[a] = *R[bf] + (uint64_t)imm;
            break;

        case ISA_OP_NOT:
            *R[a] = ~*R[bf];
            break;

        case ISA_OP_NEG:
            x = *R[bf];
            regs->rflags = (fl & ~ISA_RFLAGS_ARITH) | flags_sub(0, x, -x);
            *R[a] = -x;
            break;

        case ISA_OP_MIX:
            *R[a] = isa_mix(*R[a], *R[bf]);
            break;

        case ISA_OP_ALU_R ... ISA_OP_ALU_R + ISA_ALU_TEST:
        case ISA_OP_ALU_I ... ISA_OP_ALU_I + ISA_ALU_TEST:
            x = *R[bf];
            y = op < ISA_OP_ALU_I ? *R[c] : (uint64_t)imm;
            if ( unlikely(!alu(op & 0xF, x, y, &v, &fl)) )
            {
                set_fault(f, ISA_VEC_DE);
                goto raise;
            }
            regs->rflags = fl;
            if ( (op & 0xF) != ISA_ALU_CMP && (op & 0xF) != ISA_ALU_TEST )
                *R[a] = v;
            break;

        case ISA_OP_JCC ... ISA_OP_JCC + ISA_CC_AE:
            if ( cond_holds(op - ISA_OP_JCC, fl) )
                next += (uint64_t)imm;
            break;

        case ISA_OP_JMPR:
            next = *R[bf];
            break;

        case ISA_OP_CALL:
        case ISA_OP_CALLR:
            put_le(b, next, 8);
            orc = ops->store(cpu, *R[ISA_RSP] - 8, b, 8, f);
            if ( unlikely(orc) )
                goto op_failed;
            *R[ISA_RSP] -= 8;
            next = op == ISA_OP_CALL ? next + (uint64_t)imm : *R[bf];
            break;

        case ISA_OP_PUSH:
            put_le(b, *R[bf], 8);
            orc = ops->store(cpu, *R[ISA_RSP] - 8, b, 8, f);
            if ( unlikely(orc) )
                goto op_failed;
            *R[ISA_RSP] -= 8;
            break;

        case ISA_OP_POP:
            orc = ops->load(cpu, *R[ISA_RSP], b, 8, f);
            if ( unlikely(orc) )
                goto op_failed;
            /* As on x86, `pop rsp` leaves rsp holding the popped value. */
            *R[ISA_RSP] += 8;
            *R[a] = get_le(b, 8);
            break;

        case ISA_OP_LDB ... ISA_OP_LDSL:
            len = 1U << (op & 3);
            orc = ops->load(cpu, *R[bf] + (uint64_t)imm, b, len, f);
            if ( unlikely(orc) )
                goto op_failed;
            v = get_le(b, len);
            if ( op >= ISA_OP_LDSB && (v >> (8 * len - 1)) )
                v |= ~0ULL << (8 * len);
            *R[a] = v;
            break;

        case ISA_OP_STB ... ISA_OP_STQ:
            len = 1U << (op & 3);
            put_le(b, *R[bf], len);
            orc = ops->store(cpu, *R[a] + (uint64_t)imm, b, len, f);
            if ( unlikely(orc) )
                goto op_failed;
            break;

        case ISA_OP_FILLB ... ISA_OP_COPY:
            orc = do_bulk(ops, cpu, op, *R[a], *R[bf], *R[c], f);
            if ( unlikely(orc) )
                goto op_failed;
            break;

        default:
            /* Unreachable: isa_formats[] admits only the cases above. */
            BUG();
        }
        regs->rip = next;
        continue;

    op_failed:
        if ( orc == ISA_OP_ABORT )
        {
            rc = ISA_EXIT_ABORT;
            goto out;
        }
    raise:
        f->rip = rip;
        rc = ISA_EXIT_FAULT;
        goto out;
    }

 out:
    f->retired = n;
    return rc;
}

int isa_deliver_fault(struct cpu_user_regs *regs, const struct isa_ops *ops,
                      void *cpu, uint64_t handler,
                      const struct isa_fault *fault, struct isa_fault *nested)
{
    uint8_t frame[32];
    int rc;

    put_le(frame, regs->rcx, 8);
    put_le(frame + 8, regs->rdx, 8);
    put_le(frame + 16, regs->rflags, 8);
    put_le(frame + 24, fault->rip, 8);
    rc = ops->store(cpu, regs->rsp - sizeof(frame), frame, sizeof(frame),
                    nested);
    if ( rc )
        return rc;
    regs->rsp -= sizeof(frame);
    regs->rcx = fault->error_code;
    regs->rdx = fault->vector == ISA_VEC_PF ? fault->va : 0;
    regs->rip = handler;
    return ISA_OP_OK;
}
