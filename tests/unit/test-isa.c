/* SPDX-License-Identifier: MIT */
/*
 * Tests of the guest instruction set: the interpreter (hypervisor/
 * isa-exec.c) and the assembler (guests/as.c).
 *
 * Programs are assembled from text with the library and run by isa_step()
 * over a flat test memory: TMEM_PAGES pages at the assembler's default
 * base, each page absent, read-only or writable, so tests can make any
 * access fault and then "fix the mapping" as the vCPU runner will.  The
 * properties checked are the ones the rest of ferry relies on: exact
 * results and flags, precise faults (nothing changes when an instruction
 * faults, and it can simply be run again), and runs that stop after any
 * number of instructions and resume from the saved registers alone, which
 * is what migration does.
 */
#include <errno.h>
#include <unistd.h>

#include "harness.h"
#include "isa.h"
#include "as.h"

#define TMEM_BASE  0x400000ULL
#define TMEM_PAGES 64U
#define TMEM_SIZE  (TMEM_PAGES * PAGE_SIZE)
#define TMEM_TOP   (TMEM_BASE + TMEM_SIZE)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define P_NONE 0
#define P_RO   1
#define P_RW   3

struct tcpu
{
    uint8_t *mem;
    uint8_t perm[TMEM_PAGES];
    unsigned int nr_stores, nr_fills, nr_copies;
    unsigned int abort_stores;      /* abort the next store if set */
    /* The last hypercall. */
    unsigned int nr_hcalls;
    uint64_t hc_args[6];            /* rax, rdi, rsi, rdx, r10, r8 */
    long hc_ret;
    int hc_action;
    uint64_t now;
};

/* ------------------------------------------------------------------------
 * The test MMU: flat memory with per-page permissions
 * ------------------------------------------------------------------------ */

/*
 * Check every page of [va, va + len) for an access; on failure fill f as
 * an MMU would (cr2 = first byte of the range in the bad page).
 */
static int tmem_check(struct tcpu *tc, uint64_t va, unsigned int len,
                      bool write, uint32_t ec, struct isa_fault *f)
{
    uint64_t end = va + len;

    for ( uint64_t p = va & ~(PAGE_SIZE - 1); p < end; p += PAGE_SIZE )
    {
        uint64_t idx = (p - TMEM_BASE) >> PAGE_SHIFT;
        unsigned int perm = (p >= TMEM_BASE && p < TMEM_TOP) ? tc->perm[idx]
                                                             : P_NONE;

        if ( perm == P_NONE || (write && perm != P_RW) )
        {
            f->vector = ISA_VEC_PF;
            f->va = p > va ? p : va;
            f->error_code = ec | (write ? ISA_PFEC_WRITE : 0) |
                            (perm != P_NONE ? ISA_PFEC_PRESENT : 0);
            return ISA_OP_FAULT;
        }
    }
    return ISA_OP_OK;
}

static uint8_t *tmem(struct tcpu *tc, uint64_t va)
{
    return tc->mem + (va - TMEM_BASE);
}

static int t_fetch(void *cpu, uint64_t va, void *buf, unsigned int len,
                   struct isa_fault *f)
{
    int rc = tmem_check(cpu, va, len, false, ISA_PFEC_INSN, f);

    if ( !rc )
        memcpy(buf, tmem(cpu, va), len);
    return rc;
}

static int t_load(void *cpu, uint64_t va, void *buf, unsigned int len,
                  struct isa_fault *f)
{
    int rc = tmem_check(cpu, va, len, false, 0, f);

    if ( !rc )
        memcpy(buf, tmem(cpu, va), len);
    return rc;
}

static int t_store(void *cpu, uint64_t va, const void *buf, unsigned int len,
                   struct isa_fault *f)
{
    struct tcpu *tc = cpu;
    int rc;

    if ( tc->abort_stores )
    {
        tc->abort_stores--;
        return ISA_OP_ABORT;
    }
    rc = tmem_check(tc, va, len, true, 0, f);
    if ( !rc )
    {
        memcpy(tmem(tc, va), buf, len);
        tc->nr_stores++;
    }
    return rc;
}

static int t_fill(void *cpu, uint64_t va, uint64_t pattern, unsigned int len,
                  struct isa_fault *f)
{
    struct tcpu *tc = cpu;
    int rc = tmem_check(tc, va, len, true, 0, f);

    if ( rc )
        return rc;
    for ( unsigned int i = 0; i < len; i++ )
        *tmem(tc, va + i) = (uint8_t)(pattern >> (8 * (i & 7)));
    tc->nr_fills++;
    return ISA_OP_OK;
}

static int t_copy(void *cpu, uint64_t dst, uint64_t src, unsigned int len,
                  struct isa_fault *f)
{
    struct tcpu *tc = cpu;
    int rc = tmem_check(tc, src, len, false, 0, f);

    if ( !rc )
        rc = tmem_check(tc, dst, len, true, 0, f);
    if ( rc )
        return rc;
    memmove(tmem(tc, dst), tmem(tc, src), len);
    tc->nr_copies++;
    return ISA_OP_OK;
}

/* Hypercall 100 maps page r7 (a VA) writable, as a fault handler would. */
#define HC_MAP 100

static long t_hypercall(void *cpu, struct cpu_user_regs *r, int *action)
{
    struct tcpu *tc = cpu;

    tc->nr_hcalls++;
    tc->hc_args[0] = r->rax;
    tc->hc_args[1] = r->rdi;
    tc->hc_args[2] = r->rsi;
    tc->hc_args[3] = r->rdx;
    tc->hc_args[4] = r->r10;
    tc->hc_args[5] = r->r8;
    if ( r->rax == HC_MAP )
    {
        tc->perm[(r->rdi - TMEM_BASE) >> PAGE_SHIFT] = P_RW;
        return 0;
    }
    *action = tc->hc_action;
    return tc->hc_ret;
}

static uint64_t t_time(void *cpu)
{
    struct tcpu *tc = cpu;

    return tc->now += 1000;
}

static const struct isa_ops ops_bulk = {
    .fetch = t_fetch, .load = t_load, .store = t_store, .fill = t_fill,
    .copy = t_copy, .hypercall = t_hypercall, .time = t_time,
};

/* No fetch, fill, copy or hypercall: the interpreter's fallbacks. */
static const struct isa_ops ops_plain = {
    .load = t_load, .store = t_store, .time = t_time,
};

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

static void assemble(const char *src, struct ferry_image *img)
{
    char err[256];
    int rc = ferry_as_assemble(src, "test.s", img, err, sizeof(err));

    if ( rc )
        FAIL("assembly failed (%d): %s", rc, err);
}

/* Assemble, load at the image base, all pages writable, regs at entry. */
static void setup(struct tcpu *tc, struct cpu_user_regs *r, const char *src)
{
    struct ferry_image img = FERRY_IMAGE_INIT;

    memset(tc, 0, sizeof(*tc));
    memset(r, 0, sizeof(*r));
    tc->mem = calloc(1, TMEM_SIZE);
    ASSERT(tc->mem);
    memset(tc->perm, P_RW, sizeof(tc->perm));
    assemble(src, &img);
    ASSERT(img.base >= TMEM_BASE && img.base + img.size <= TMEM_TOP);
    memcpy(tmem(tc, img.base), img.bytes, img.size);
    r->rip = img.entry;
    r->rsp = TMEM_TOP;
    r->rflags = 0x2;
    ferry_image_dispose(&img);
}

static void teardown(struct tcpu *tc)
{
    free(tc->mem);
    tc->mem = NULL;
}

/* Run to halt (failing the test on any other stop). */
static void run_to_halt(struct tcpu *tc, struct cpu_user_regs *r,
                        const struct isa_ops *ops)
{
    struct isa_fault f;
    int rc = isa_step(r, ops, tc, 1000000, &f);

    if ( rc == ISA_EXIT_FAULT )
        FAIL("fault vector %u va %#" PRIx64 " at rip %#" PRIx64, f.vector,
             f.va, f.rip);
    ASSERT_EQ(rc, ISA_EXIT_HALT);
}

/* Assemble and run a program to halt with all memory writable. */
static void run_src(struct tcpu *tc, struct cpu_user_regs *r,
                    const char *src)
{
    setup(tc, r, src);
    run_to_halt(tc, r, &ops_bulk);
}

static uint64_t rd64(struct tcpu *tc, uint64_t va)
{
    uint64_t v;

    memcpy(&v, tmem(tc, va), 8);
    return v;
}

static void set_perm(struct tcpu *tc, uint64_t va, uint8_t perm)
{
    tc->perm[(va - TMEM_BASE) >> PAGE_SHIFT] = perm;
}

#define FLAGS(r) ((r)->rflags & ISA_RFLAGS_ARITH)
#define CF ISA_RFLAGS_CF
#define ZF ISA_RFLAGS_ZF
#define SF ISA_RFLAGS_SF
#define OF ISA_RFLAGS_OF

/* ------------------------------------------------------------------------
 * Registers, arithmetic and flags
 * ------------------------------------------------------------------------ */

TEST(registers_are_x86_order_in_cpu_user_regs)
{
    struct cpu_user_regs r;
    struct tcpu tc;

    run_src(&tc, &r,
            "mov r0, 100\n mov r1, 101\n mov r2, 102\n mov r3, 103\n"
            "mov r4, 104\n mov r5, 105\n mov r6, 106\n mov r7, 107\n"
            "mov r8, 108\n mov r9, 109\n mov r10, 110\n mov r11, 111\n"
            "mov r12, 112\n mov r13, 113\n mov r14, 114\n mov r15, 115\n"
            "halt\n");
    ASSERT_EQ(r.rax, 100); ASSERT_EQ(r.rcx, 101); ASSERT_EQ(r.rdx, 102);
    ASSERT_EQ(r.rbx, 103); ASSERT_EQ(r.rsp, 104); ASSERT_EQ(r.rbp, 105);
    ASSERT_EQ(r.rsi, 106); ASSERT_EQ(r.rdi, 107); ASSERT_EQ(r.r8, 108);
    ASSERT_EQ(r.r9, 109); ASSERT_EQ(r.r10, 110); ASSERT_EQ(r.r11, 111);
    ASSERT_EQ(r.r12, 112); ASSERT_EQ(r.r13, 113); ASSERT_EQ(r.r14, 114);
    ASSERT_EQ(r.r15, 115);
    teardown(&tc);

    /* The aliases name the same registers. */
    run_src(&tc, &r,
            "mov rax, 1\n mov rcx, 2\n mov rdx, 3\n mov rbx, 4\n"
            "mov rbp, 6\n mov rsi, 7\n mov rdi, 8\n mov sp, 5\n"
            "mov r9, rdi\n halt\n");
    ASSERT_EQ(r.rax, 1); ASSERT_EQ(r.rcx, 2); ASSERT_EQ(r.rdx, 3);
    ASSERT_EQ(r.rbx, 4); ASSERT_EQ(r.rsp, 5); ASSERT_EQ(r.rbp, 6);
    ASSERT_EQ(r.rsi, 7); ASSERT_EQ(r.rdi, 8); ASSERT_EQ(r.r9, 8);
    teardown(&tc);
}

TEST(arith_results)
{
    struct cpu_user_regs r;
    struct tcpu tc;

    run_src(&tc, &r,
            "mov r1, 7\n"
            "add r2, r1, 5\n"           /* 12 */
            "sub r3, r1, 10\n"          /* -3 */
            "mul r5, r3, r1\n"          /* -21 */
            "mov r6, 100\n div r6, 7\n"             /* 14 */
            "mov r7, 100\n rem r7, 7\n"             /* 2 */
            "mov r8, -100\n idiv r8, 7\n"           /* -14 */
            "mov r9, -100\n irem r9, 7\n"           /* -2 */
            "mov r10, -100\n div r10, r1\n"         /* unsigned */
            "mov r11, 0xF0F0\n and r11, 0xFF\n or r11, 0x100\n"
            "xor r11, 0x1\n"                        /* 0x1F1 */
            "mov r12, 1\n shl r12, 65\n"            /* count & 63 */
            "mov r13, -16\n sar r13, 2\n"           /* -4 */
            "mov r14, -16\n shr r14, 60\n"          /* 15 */
            "mov r15, 5\n not r15\n"                /* ~5 */
            "mov r0, 5\n neg r0\n"                  /* -5 */
            "lea r4, [r1 - 8]\n"                    /* -1 */
            "halt\n");
    ASSERT_EQ(r.rdx, 12);
    ASSERT_EQ((int64_t)r.rbx, -3);
    ASSERT_EQ((int64_t)r.rbp, -21);
    ASSERT_EQ(r.rsi, 14);
    ASSERT_EQ(r.rdi, 2);
    ASSERT_EQ((int64_t)r.r8, -14);
    ASSERT_EQ((int64_t)r.r9, -2);
    ASSERT_HEX(r.r10, (uint64_t)-100 / 7);
    ASSERT_HEX(r.r11, 0x1F1);
    ASSERT_EQ(r.r12, 2);
    ASSERT_EQ((int64_t)r.r13, -4);
    ASSERT_EQ(r.r14, 15);
    ASSERT_HEX(r.r15, ~5ULL);
    ASSERT_EQ((int64_t)r.rax, -5);
    ASSERT_HEX(r.rsp, ~0ULL);
    teardown(&tc);
}

/* Flags after `OP r1, r2` for x, y; rflags starts with all four set. */
static uint64_t flags_of(const char *op, uint64_t x, uint64_t y,
                         uint64_t *res)
{
    struct cpu_user_regs r;
    struct tcpu tc;
    char src[256];
    uint64_t fl;

    snprintf(src, sizeof(src),
             "movabs r1, %#" PRIx64 "\n movabs r2, %#" PRIx64 "\n"
             "%s r1, r2\n halt\n", x, y, op);
    setup(&tc, &r, src);
    r.rflags = 0x2 | ISA_RFLAGS_ARITH | ISA_RFLAGS_IF;
    run_to_halt(&tc, &r, &ops_bulk);
    ASSERT(r.rflags & ISA_RFLAGS_IF);
    ASSERT(r.rflags & 0x2);
    fl = FLAGS(&r);
    if ( res )
        *res = r.rcx;
    teardown(&tc);
    return fl;
}

TEST(flags_as_x86_for_add_sub_logic)
{
    uint64_t res;

    ASSERT_HEX(flags_of("add", 1, 2, &res), 0);
    ASSERT_EQ(res, 3);
    ASSERT_HEX(flags_of("add", ~0ULL, 1, &res), CF | ZF);
    ASSERT_EQ(res, 0);
    ASSERT_HEX(flags_of("add", 0x7FFFFFFFFFFFFFFFULL, 1, NULL), OF | SF);
    ASSERT_HEX(flags_of("add", 1ULL << 63, 1ULL << 63, NULL), CF | OF | ZF);
    ASSERT_HEX(flags_of("sub", 5, 5, NULL), ZF);
    ASSERT_HEX(flags_of("sub", 1, 2, NULL), CF | SF);
    ASSERT_HEX(flags_of("sub", 1ULL << 63, 1, NULL), OF);
    ASSERT_HEX(flags_of("cmp", 1, 2, &res), CF | SF);
    ASSERT_EQ(res, 1);                      /* cmp writes nothing */
    ASSERT_HEX(flags_of("and", 0xF0, 0x0F, NULL), ZF);
    ASSERT_HEX(flags_of("or", 1ULL << 63, 0, NULL), SF);
    ASSERT_HEX(flags_of("xor", 3, 3, NULL), ZF);
    ASSERT_HEX(flags_of("test", 1ULL << 63, 1ULL << 63, &res), SF);
    ASSERT_EQ(res, 1ULL << 63);
    /* Instructions that do not set flags leave all four alone. */
    ASSERT_HEX(flags_of("mul", 0, 0, NULL), ISA_RFLAGS_ARITH);
    ASSERT_HEX(flags_of("shl", 1, 1, NULL), ISA_RFLAGS_ARITH);
    ASSERT_HEX(flags_of("mov", 0, 0, NULL), ISA_RFLAGS_ARITH);
    ASSERT_HEX(flags_of("not", 0, 0, NULL), ISA_RFLAGS_ARITH);
    ASSERT_HEX(flags_of("mix", 0, 0, NULL), ISA_RFLAGS_ARITH);
    /* neg is 0 - x. */
    ASSERT_HEX(flags_of("neg", 0, 0, NULL), ZF);
    ASSERT_HEX(flags_of("neg", 0, 1, &res), CF | SF);
    ASSERT_HEX(res, ~0ULL);
    ASSERT_HEX(flags_of("neg", 0, 1ULL << 63, NULL), CF | SF | OF);
}

/* ------------------------------------------------------------------------
 * Branches
 * ------------------------------------------------------------------------ */

static bool branch_taken(const char *jcc, uint64_t x, uint64_t y)
{
    struct cpu_user_regs r;
    struct tcpu tc;
    char src[512];
    bool taken;

    snprintf(src, sizeof(src),
             "        mov r0, 0\n"
             "        movabs r1, %#" PRIx64 "\n"
             "        movabs r2, %#" PRIx64 "\n"
             "        cmp r1, r2\n"
             "        %s yes\n"
             "        halt\n"
             "yes:    mov r0, 1\n"
             "        halt\n", x, y, jcc);
    run_src(&tc, &r, src);
    taken = r.rax;
    teardown(&tc);
    return taken;
}

TEST(every_branch_condition)
{
    static const uint64_t vals[] = {
        0, 1, 2, ~0ULL, 1ULL << 63, (1ULL << 63) - 1, 0x80, ~0ULL - 1,
    };

    for ( unsigned int i = 0; i < ARRAY_SIZE(vals); i++ )
        for ( unsigned int j = 0; j < ARRAY_SIZE(vals); j++ )
        {
            uint64_t x = vals[i], y = vals[j];
            int64_t sx = (int64_t)x, sy = (int64_t)y;
            const struct { const char *jcc; bool want; } c[] = {
                { "jmp", true },
                { "jeq", x == y }, { "je", x == y }, { "jz", x == y },
                { "jne", x != y }, { "jnz", x != y },
                { "jlt", sx < sy }, { "jl", sx < sy }, { "jle", sx <= sy },
                { "jgt", sx > sy }, { "jg", sx > sy }, { "jge", sx >= sy },
                { "jb", x < y }, { "jc", x < y }, { "jbe", x <= y },
                { "ja", x > y }, { "jae", x >= y }, { "jnc", x >= y },
            };

            for ( unsigned int k = 0; k < ARRAY_SIZE(c); k++ )
                if ( branch_taken(c[k].jcc, x, y) != c[k].want )
                    FAIL("%s after cmp %#" PRIx64 ", %#" PRIx64
                         ": taken %d, expected %d", c[k].jcc, x, y,
                         !c[k].want, c[k].want);
        }
}

TEST(backward_branch_loop_and_register_jump)
{
    struct cpu_user_regs r;
    struct tcpu tc;

    run_src(&tc, &r,
            "        mov r1, 10\n"
            "        mov r0, 0\n"
            "loop:   add r0, r1\n"
            "        sub r1, 1\n"
            "        jne loop\n"
            "        mov r2, done\n"
            "        jmp r2\n"
            "        mov r0, 999\n"
            "done:   halt\n");
    ASSERT_EQ(r.rax, 55);
    ASSERT_EQ(r.rcx, 0);
    teardown(&tc);
}

/* ------------------------------------------------------------------------
 * Stack: call, ret, push, pop
 * ------------------------------------------------------------------------ */

TEST(call_ret_push_pop_through_the_stack)
{
    struct cpu_user_regs r;
    struct tcpu tc;

    /* Recursive factorial: every frame goes through memory at r4. */
    run_src(&tc, &r,
            "        mov r7, 10\n"
            "        call fact\n"
            "        mov r3, r0\n"
            "        mov r1, 0x1111\n"
            "        mov r2, 0x2222\n"
            "        push r1\n"
            "        push r2\n"
            "        pop r5\n"
            "        pop r6\n"
            "        mov r8, sub1\n"
            "        call r8\n"
            "        halt\n"
            "fact:   cmp r7, 1\n"
            "        jgt more\n"
            "        mov r0, 1\n"
            "        ret\n"
            "more:   push r7\n"
            "        sub r7, 1\n"
            "        call fact\n"
            "        pop r7\n"
            "        mul r0, r7\n"
            "        ret\n"
            "sub1:   mov r9, 77\n"
            "        ret\n");
    ASSERT_EQ(r.rbx, 3628800);
    ASSERT_EQ(r.rbp, 0x2222);
    ASSERT_EQ(r.rsi, 0x1111);
    ASSERT_EQ(r.r9, 77);
    ASSERT_HEX(r.rsp, TMEM_TOP);
    /* The last push left its value below the stack top. */
    ASSERT_HEX(rd64(&tc, TMEM_TOP - 16), 0x2222);
    teardown(&tc);

    /* pop into rsp leaves rsp holding the popped value, as on x86. */
    run_src(&tc, &r, "mov r1, 0x12345\n push r1\n pop sp\n halt\n");
    ASSERT_HEX(r.rsp, 0x12345);
    teardown(&tc);
}

/* ------------------------------------------------------------------------
 * Loads and stores
 * ------------------------------------------------------------------------ */

TEST(loads_and_stores_of_every_width)
{
    struct cpu_user_regs r;
    struct tcpu tc;
    uint64_t d = TMEM_BASE + 8 * PAGE_SIZE;
    char src[1024];

    snprintf(src, sizeof(src),
             "        movabs r1, %#" PRIx64 "\n"
             "        movabs r2, 0x8899AABBCCDDEEFF\n"
             "        stq [r1], r2\n"
             "        stl [r1 + 8], r2\n"
             "        stw [r1 + 12], r2\n"
             "        stb [r1 + 14], r2\n"
             "        ldb r3, [r1]\n"
             "        ldw r5, [r1]\n"
             "        ldl r6, [r1]\n"
             "        ldq r7, [r1]\n"
             "        ldsb r8, [r1]\n"
             "        ldsw r9, [r1]\n"
             "        ldsl r10, [r1]\n"
             "        ldsb r11, [r1 + 16]\n"
             "        add r1, 4096 - 3\n"       /* page-crossing */
             "        stq [r1 + 0], r2\n"
             "        ldq r12, [r1]\n"
             "        ldl r13, [r1 + -1]\n"
             "        halt\n", d);
    run_src(&tc, &r, src);
    ASSERT_HEX(rd64(&tc, d), 0x8899AABBCCDDEEFFULL);
    ASSERT_HEX(rd64(&tc, d + 8), 0x00FFEEFFCCDDEEFFULL);
    ASSERT_HEX(r.rbx, 0xFF);
    ASSERT_HEX(r.rbp, 0xEEFF);
    ASSERT_HEX(r.rsi, 0xCCDDEEFF);
    ASSERT_HEX(r.rdi, 0x8899AABBCCDDEEFFULL);
    ASSERT_HEX(r.r8, ~0ULL);
    ASSERT_HEX(r.r9, 0xFFFFFFFFFFFFEEFFULL);
    ASSERT_HEX(r.r10, 0xFFFFFFFFCCDDEEFFULL);
    ASSERT_HEX(r.r11, 0);
    ASSERT_HEX(r.r12, 0x8899AABBCCDDEEFFULL);
    ASSERT_HEX(r.r13, 0xDDEEFF00);
    ASSERT_HEX(rd64(&tc, d + PAGE_SIZE - 3), 0x8899AABBCCDDEEFFULL);
    teardown(&tc);
}

/* ------------------------------------------------------------------------
 * fill and copy
 * ------------------------------------------------------------------------ */

static void check_fill_copy(const struct isa_ops *ops)
{
    struct cpu_user_regs r;
    struct tcpu tc;
    uint64_t d = TMEM_BASE + 16 * PAGE_SIZE;
    char src[1024];

    snprintf(src, sizeof(src),
             "        movabs r1, %#" PRIx64 "\n"
             "        mov r2, 0x1A5\n"
             "        mov r3, 4096\n"
             "        fillb r1, r2, r3\n"           /* a whole page */
             "        lea r5, [r1 + 4096 + 100]\n"
             "        movabs r2, 0x0807060504030201\n"
             "        mov r3, 4096\n"
             "        fillq r5, r2, r3\n"           /* crosses a page */
             "        lea r6, [r1 + 3 * 4096]\n"
             "        mov r3, 16\n"
             "        copy r6, r5, r3\n"
             "        lea r7, [r6 + 1]\n"
             "        copy r7, r6, r3\n"            /* overlapping */
             "        mov r3, 0\n"
             "        copy r7, r0, r3\n"            /* empty: no access */
             "        halt\n", d);
    setup(&tc, &r, src);
    run_to_halt(&tc, &r, ops);
    for ( unsigned int i = 0; i < PAGE_SIZE; i++ )
        if ( *tmem(&tc, d + i) != 0xA5 )
            FAIL("fillb: byte %u is %#x", i, *tmem(&tc, d + i));
    for ( unsigned int i = 0; i < PAGE_SIZE; i++ )
        if ( *tmem(&tc, d + PAGE_SIZE + 100 + i) != (i & 7) + 1 )
            FAIL("fillq: byte %u is %#x", i,
                 *tmem(&tc, d + PAGE_SIZE + 100 + i));
    ASSERT_EQ(*tmem(&tc, d + 2 * PAGE_SIZE + 100), 0);
    ASSERT_EQ(*tmem(&tc, d + 3 * PAGE_SIZE), 1);
    /* memmove semantics: the copy one byte up repeats the first byte. */
    ASSERT_HEX(rd64(&tc, d + 3 * PAGE_SIZE), 0x0706050403020101ULL);
    ASSERT_HEX(rd64(&tc, d + 3 * PAGE_SIZE + 9), 0x0807060504030201ULL);
    if ( ops->fill )
    {
        ASSERT_EQ(tc.nr_fills, 2);
        ASSERT_EQ(tc.nr_copies, 2);
    }
    else
        ASSERT_EQ(tc.nr_stores, 4);     /* one store per bulk instruction */
    teardown(&tc);
}

TEST(fill_and_copy_with_bulk_callbacks)
{
    check_fill_copy(&ops_bulk);
}

TEST(fill_and_copy_fallback_without_bulk_callbacks)
{
    check_fill_copy(&ops_plain);
}

TEST(fill_longer_than_a_page_is_gp_fault)
{
    struct cpu_user_regs r, before;
    struct tcpu tc;
    struct isa_fault f;

    setup(&tc, &r,
          "        mov r1, 0x408000\n"
          "        mov r2, 0xFF\n"
          "        mov r3, 4097\n"
          "        fillb r1, r2, r3\n"
          "        halt\n");
    ASSERT_EQ(isa_step(&r, &ops_bulk, &tc, 3, &f), ISA_EXIT_BUDGET);
    before = r;
    ASSERT_EQ(isa_step(&r, &ops_bulk, &tc, 10, &f), ISA_EXIT_FAULT);
    ASSERT_EQ(f.vector, ISA_VEC_GP);
    ASSERT_EQ(f.retired, 0);
    ASSERT_HEX(f.rip, before.rip);
    ASSERT(!memcmp(&r, &before, sizeof(r)));
    ASSERT_EQ(tc.nr_fills, 0);
    ASSERT_EQ(*tmem(&tc, 0x408000), 0);
    teardown(&tc);
}

TEST(fill_crossing_into_absent_page_writes_nothing)
{
    struct cpu_user_regs r, before;
    struct tcpu tc;
    struct isa_fault f;

    setup(&tc, &r,
          "        mov r1, 0x408800\n"
          "        mov r2, 0xFF\n"
          "        mov r3, 4096\n"
          "        fillb r1, r2, r3\n"
          "        halt\n");
    set_perm(&tc, 0x409000, P_NONE);
    ASSERT_EQ(isa_step(&r, &ops_plain, &tc, 3, &f), ISA_EXIT_BUDGET);
    before = r;
    ASSERT_EQ(isa_step(&r, &ops_plain, &tc, 10, &f), ISA_EXIT_FAULT);
    ASSERT_EQ(f.vector, ISA_VEC_PF);
    ASSERT_HEX(f.va, 0x409000);
    ASSERT_HEX(f.error_code, ISA_PFEC_WRITE);
    ASSERT(!memcmp(&r, &before, sizeof(r)));
    ASSERT_EQ(*tmem(&tc, 0x408800), 0);
    set_perm(&tc, 0x409000, P_RW);
    run_to_halt(&tc, &r, &ops_plain);
    ASSERT_EQ(*tmem(&tc, 0x408800), 0xFF);
    ASSERT_EQ(*tmem(&tc, 0x4097FF), 0xFF);
    ASSERT_EQ(*tmem(&tc, 0x409800), 0);
    teardown(&tc);
}

/* ------------------------------------------------------------------------
 * Precise faults
 * ------------------------------------------------------------------------ */

TEST(faulting_load_changes_nothing_and_restarts)
{
    struct cpu_user_regs r, before;
    struct tcpu tc;
    struct isa_fault f;

    setup(&tc, &r,
          "        mov r1, 0x40A000\n"
          "        mov r2, 5\n"
          "        cmp r2, 6\n"             /* flags: CF SF */
          "        ldq r2, [r1 + 8]\n"
          "        add r2, 1\n"
          "        halt\n");
    *(uint64_t *)tmem(&tc, 0x40A008) = 41;
    set_perm(&tc, 0x40A000, P_NONE);

    ASSERT_EQ(isa_step(&r, &ops_bulk, &tc, 100, &f), ISA_EXIT_FAULT);
    ASSERT_EQ(f.retired, 3);
    ASSERT_EQ(f.vector, ISA_VEC_PF);
    ASSERT_HEX(f.va, 0x40A008);
    ASSERT_HEX(f.error_code, 0);
    ASSERT_HEX(f.rip, TMEM_BASE + 24);
    ASSERT_HEX(r.rip, TMEM_BASE + 24);
    ASSERT_EQ(r.rdx, 5);
    ASSERT_HEX(FLAGS(&r), CF | SF);

    /* Faulting again is idempotent: nothing moved. */
    before = r;
    ASSERT_EQ(isa_step(&r, &ops_bulk, &tc, 100, &f), ISA_EXIT_FAULT);
    ASSERT_EQ(f.retired, 0);
    ASSERT(!memcmp(&r, &before, sizeof(r)));

    /* Fix the mapping and the same instruction completes. */
    set_perm(&tc, 0x40A000, P_RO);
    run_to_halt(&tc, &r, &ops_bulk);
    ASSERT_EQ(r.rdx, 42);
    teardown(&tc);
}

TEST(faulting_store_push_call_ret_are_precise)
{
    static const char *const progs[] = {
        "mov r1, 0x40C000\n mov r2, 7\n stq [r1 - 4], r2\n halt\n",
        "mov r1, 0x40C000\n mov r2, 7\n stb [r1], r2\n halt\n",
        "mov sp, 0x40C008\n mov r2, 7\n push r2\n halt\n",
        "mov sp, 0x40C008\n mov r2, 7\n call f\n halt\n f: halt\n",
        "mov sp, 0x40C000\n mov r2, 7\n pop r2\n halt\n",
        "mov sp, 0x40C000\n mov r2, 7\n ret\n",
        "mov sp, 0x40BFF0\n mov r2, 7\n iret\n",
    };

    for ( unsigned int i = 0; i < ARRAY_SIZE(progs); i++ )
    {
        struct cpu_user_regs r, before;
        struct tcpu tc;
        struct isa_fault f;
        uint64_t mem0, mem1;

        setup(&tc, &r, progs[i]);
        set_perm(&tc, 0x40C000, i < 4 ? P_RO : P_NONE);
        mem0 = rd64(&tc, 0x40BFF8);
        mem1 = rd64(&tc, 0x40C000);
        ASSERT_EQ(isa_step(&r, &ops_bulk, &tc, 2, &f), ISA_EXIT_BUDGET);
        before = r;
        if ( isa_step(&r, &ops_bulk, &tc, 10, &f) != ISA_EXIT_FAULT )
            FAIL("program %u did not fault", i);
        ASSERT_EQ(f.vector, ISA_VEC_PF);
        ASSERT_EQ(f.retired, 0);
        ASSERT_HEX(f.va, 0x40C000);
        ASSERT_HEX(f.error_code, i < 4 ? ISA_PFEC_WRITE | ISA_PFEC_PRESENT
                                       : 0);
        if ( memcmp(&r, &before, sizeof(r)) )
            FAIL("program %u: registers changed by a faulting instruction",
                 i);
        /* A page-crossing store wrote nothing on its mapped side. */
        ASSERT_HEX(rd64(&tc, 0x40BFF8), mem0);
        ASSERT_HEX(rd64(&tc, 0x40C000), mem1);
        teardown(&tc);
    }
}

TEST(fetch_fault_reports_instruction_fetch)
{
    struct cpu_user_regs r;
    struct tcpu tc;
    struct isa_fault f;

    setup(&tc, &r,
          "        mov r1, 0x40D000\n"
          "        jmp r1\n");
    set_perm(&tc, 0x40D000, P_NONE);
    ASSERT_EQ(isa_step(&r, &ops_bulk, &tc, 10, &f), ISA_EXIT_FAULT);
    ASSERT_EQ(f.vector, ISA_VEC_PF);
    ASSERT_HEX(f.va, 0x40D000);
    ASSERT_HEX(f.error_code, ISA_PFEC_INSN);
    ASSERT_HEX(f.rip, 0x40D000);
    ASSERT_HEX(r.rip, 0x40D000);
    ASSERT_EQ(f.retired, 2);
    teardown(&tc);
}

TEST(movabs_second_word_fetch_fault_is_precise)
{
    struct cpu_user_regs r;
    struct tcpu tc;
    struct isa_fault f;
    char src[256];

    /* movabs in the last 8 bytes of a page: its immediate is on the next. */
    snprintf(src, sizeof(src),
             ".org 0x400000\n mov r1, 3\n .org 0x400FF8\n"
             "movabs r1, 0x1122334455667788\n halt\n");
    setup(&tc, &r, src);
    set_perm(&tc, 0x401000, P_NONE);
    ASSERT_EQ(isa_step(&r, &ops_bulk, &tc, 1, &f), ISA_EXIT_BUDGET);
    r.rip = 0x400FF8;
    ASSERT_EQ(isa_step(&r, &ops_bulk, &tc, 10, &f), ISA_EXIT_FAULT);
    ASSERT_HEX(f.va, 0x401000);
    ASSERT_HEX(f.error_code, ISA_PFEC_INSN);
    ASSERT_HEX(f.rip, 0x400FF8);
    ASSERT_EQ(r.rcx, 3);
    set_perm(&tc, 0x401000, P_RO);
    run_to_halt(&tc, &r, &ops_bulk);
    ASSERT_HEX(r.rcx, 0x1122334455667788ULL);
    teardown(&tc);
}

TEST(callback_abort_stops_before_the_instruction)
{
    struct cpu_user_regs r, before;
    struct tcpu tc;
    struct isa_fault f;

    setup(&tc, &r, "mov r2, 9\n push r2\n halt\n");
    ASSERT_EQ(isa_step(&r, &ops_bulk, &tc, 1, &f), ISA_EXIT_BUDGET);
    before = r;
    tc.abort_stores = 1;
    ASSERT_EQ(isa_step(&r, &ops_bulk, &tc, 10, &f), ISA_EXIT_ABORT);
    ASSERT_EQ(f.retired, 0);
    ASSERT(!memcmp(&r, &before, sizeof(r)));
    run_to_halt(&tc, &r, &ops_bulk);
    ASSERT_HEX(r.rsp, TMEM_TOP - 8);
    ASSERT_EQ(rd64(&tc, TMEM_TOP - 8), 9);
    teardown(&tc);
}

/* Run up to the instruction at a fault, check DE and that nothing moved. */
static void expect_fault(const char *src, unsigned int before_insns,
                         unsigned int vector)
{
    struct cpu_user_regs r, before;
    struct tcpu tc;
    struct isa_fault f;

    setup(&tc, &r, src);
    if ( before_insns )
        ASSERT_EQ(isa_step(&r, &ops_bulk, &tc, before_insns, &f),
                  ISA_EXIT_BUDGET);
    before = r;
    if ( isa_step(&r, &ops_bulk, &tc, 10, &f) != ISA_EXIT_FAULT )
        FAIL("no fault from: %s", src);
    if ( f.vector != vector )
        FAIL("vector %u, expected %u, from: %s", f.vector, vector, src);
    ASSERT_EQ(f.retired, 0);
    ASSERT_HEX(f.rip, before.rip);
    ASSERT_EQ(f.error_code, 0);
    if ( memcmp(&r, &before, sizeof(r)) )
        FAIL("registers changed by: %s", src);
    teardown(&tc);
}

TEST(divide_by_zero_and_overflow_are_de_faults)
{
    expect_fault("mov r1, 5\n mov r2, 0\n div r1, r2\n", 2, ISA_VEC_DE);
    expect_fault("mov r1, 5\n mov r2, 0\n rem r1, r2\n", 2, ISA_VEC_DE);
    expect_fault("mov r1, 5\n mov r2, 0\n idiv r3, r1, r2\n", 2, ISA_VEC_DE);
    expect_fault("mov r1, 5\n mov r2, 0\n irem r1, 0\n", 2, ISA_VEC_DE);
    expect_fault("movabs r1, 0x8000000000000000\n mov r2, -1\n"
                 "idiv r1, r2\n", 2, ISA_VEC_DE);
    expect_fault("movabs r1, 0x8000000000000000\n mov r2, -1\n"
                 "irem r1, -1\n", 2, ISA_VEC_DE);
}

TEST(illegal_opcodes_and_encodings_are_ud_faults)
{
    expect_fault("mov r1, 1\n ud\n", 1, ISA_VEC_UD);
    expect_fault("mov r1, 1\n .quad 0\n", 1, ISA_VEC_UD);
    expect_fault("mov r1, 1\n .quad 0x1F\n", 1, ISA_VEC_UD);        /* ALU */
    expect_fault("mov r1, 1\n .quad 0xFF\n", 1, ISA_VEC_UD);
    expect_fault("mov r1, 1\n .quad 0x101\n", 1, ISA_VEC_UD);  /* nop, a=1 */
    expect_fault("mov r1, 1\n .quad 0x100001\n", 1, ISA_VEC_UD); /* rsvd */
    expect_fault("mov r1, 1\n .quad 0x0000000100000001\n", 1,
                 ISA_VEC_UD);                                   /* nop imm */
    expect_fault("mov r1, 1\n .quad 0x31D\n", 1, ISA_VEC_UD);     /* cmp a */
    expect_fault("mov r1, 0x400004\n jmp r1\n", 2, ISA_VEC_UD);  /* rip&7 */
}

/* ------------------------------------------------------------------------
 * Hypercalls and time
 * ------------------------------------------------------------------------ */

TEST(hcall_passes_xen_abi_args_and_returns_rax)
{
    struct cpu_user_regs r;
    struct tcpu tc;
    struct isa_fault f;

    setup(&tc, &r,
          "        mov rax, 29\n mov rdi, 1\n mov rsi, 2\n mov rdx, 3\n"
          "        mov r10, 4\n mov r8, 5\n mov rcx, 6\n mov r11, 7\n"
          "        hcall\n"
          "        mov r9, rax\n"
          "        hcall\n"
          "        halt\n");
    tc.hc_ret = -EINVAL;
    ASSERT_EQ(isa_step(&r, &ops_bulk, &tc, 9, &f), ISA_EXIT_BUDGET);
    ASSERT_EQ(tc.nr_hcalls, 1);
    ASSERT_EQ(tc.hc_args[0], 29);
    ASSERT_EQ(tc.hc_args[1], 1);
    ASSERT_EQ(tc.hc_args[2], 2);
    ASSERT_EQ(tc.hc_args[3], 3);
    ASSERT_EQ(tc.hc_args[4], 4);
    ASSERT_EQ(tc.hc_args[5], 5);
    ASSERT_EQ((int64_t)r.rax, -EINVAL);
    ASSERT_EQ(r.rcx, 6);                /* nothing else clobbered */
    ASSERT_EQ(r.r11, 7);
    ASSERT_EQ(r.rdi, 1);

    /* A continuation: rip stays on hcall, rax untouched; then it's redone. */
    ASSERT_EQ(isa_step(&r, &ops_bulk, &tc, 1, &f), ISA_EXIT_BUDGET);
    tc.hc_action = ISA_HCALL_RESTART;
    tc.hc_ret = 0;
    ASSERT_EQ(isa_step(&r, &ops_bulk, &tc, 10, &f), ISA_EXIT_HCALL);
    ASSERT_EQ(f.retired, 0);
    ASSERT_HEX(r.rip, TMEM_BASE + 80);
    ASSERT_EQ((int64_t)r.rax, -EINVAL);
    ASSERT_EQ(tc.nr_hcalls, 2);

    /* Stop: the hcall completes and the run ends after it. */
    tc.hc_action = ISA_HCALL_STOP;
    tc.hc_ret = 123;
    ASSERT_EQ(isa_step(&r, &ops_bulk, &tc, 10, &f), ISA_EXIT_HCALL);
    ASSERT_EQ(f.retired, 1);
    ASSERT_HEX(r.rip, TMEM_BASE + 88);
    ASSERT_EQ(r.rax, 123);
    ASSERT_EQ(tc.nr_hcalls, 3);
    ASSERT_EQ((int64_t)r.r9, -EINVAL);
    run_to_halt(&tc, &r, &ops_bulk);
    teardown(&tc);

    /* Without a hypercall callback every hypercall returns -ENOSYS. */
    setup(&tc, &r, "mov rax, 1\n hcall\n halt\n");
    run_to_halt(&tc, &r, &ops_plain);
    ASSERT_EQ((int64_t)r.rax, -ENOSYS);
    teardown(&tc);
}

TEST(rdtime_reads_the_time_callback)
{
    struct cpu_user_regs r;
    struct tcpu tc;

    setup(&tc, &r, "rdtime r3\n rdtime r12\n halt\n");
    tc.now = 5000;
    run_to_halt(&tc, &r, &ops_bulk);
    ASSERT_EQ(r.rbx, 6000);
    ASSERT_EQ(r.r12, 7000);
    teardown(&tc);
}

/*
 * A descriptor callback: selector 0x10 reads a fixed descriptor, 0x14 (an
 * LDT selector) faults as an unmappable LDT page would, others are #GP.
 */
static int t_desc(void *cpu, uint16_t sel, uint64_t *desc,
                  struct isa_fault *f)
{
    (void)cpu;
    if ( sel == 0x10 )
    {
        *desc = 0x00cff2000000ffffULL;
        return ISA_OP_OK;
    }
    f->vector = sel == 0x14 ? ISA_VEC_PF : ISA_VEC_GP;
    f->error_code = sel == 0x14 ? 0 : sel & 0xfffc;
    f->va = sel == 0x14 ? 0x7000 : 0;
    return ISA_OP_FAULT;
}

TEST(ldesc_reads_through_the_desc_callback_faults_precisely)
{
    static const struct isa_ops ops_desc = {
        .load = t_load, .store = t_store, .desc = t_desc,
    };
    struct cpu_user_regs r, before;
    struct tcpu tc;
    struct isa_fault f;

    setup(&tc, &r, "mov r3, 0x10\n ldesc r5, r3\n halt\n");
    run_to_halt(&tc, &r, &ops_desc);
    ASSERT_HEX(r.rbp, 0x00cff2000000ffffULL);
    teardown(&tc);

    /* A fault of the callback changes nothing and names the instruction. */
    setup(&tc, &r, "mov r3, 0x14\n mov r5, 7\n ldesc r5, r3\n halt\n");
    ASSERT_EQ(isa_step(&r, &ops_desc, &tc, 2, &f), ISA_EXIT_BUDGET);
    before = r;
    ASSERT_EQ(isa_step(&r, &ops_desc, &tc, 10, &f), ISA_EXIT_FAULT);
    ASSERT_EQ(f.vector, ISA_VEC_PF);
    ASSERT_HEX(f.va, 0x7000);
    ASSERT_HEX(f.rip, before.rip);
    ASSERT(!memcmp(&r, &before, sizeof(r)));
    teardown(&tc);

    /* Without the callback every selector is #GP(selector & ~3). */
    setup(&tc, &r, "mov r3, 0x13\n ldesc r5, r3\n halt\n");
    ASSERT_EQ(isa_step(&r, &ops_plain, &tc, 10, &f), ISA_EXIT_FAULT);
    ASSERT_EQ(f.vector, ISA_VEC_GP);
    ASSERT_HEX(f.error_code, 0x10);
    teardown(&tc);

    /* Encoding: opcode 07, a and b; c and imm must be zero. */
    ASSERT_STR(isa_opcode_name(ISA_OP_LDESC), "ldesc");
    expect_fault("mov r1, 1\n .quad 0x10307\n", 1, ISA_VEC_UD);
}

/* ------------------------------------------------------------------------
 * Fault delivery and iret
 * ------------------------------------------------------------------------ */

TEST(fault_delivery_frame_and_iret_resume)
{
    struct cpu_user_regs r, before;
    struct tcpu tc;
    struct isa_fault f, nested;
    uint64_t handler, sp;
    int rc;

    /*
     * The handler maps the faulting page (r2) with a hypercall, counts the
     * fault and returns; the load is then re-executed and succeeds.  r1,
     * r2 and the flags come back as they were.
     */
    setup(&tc, &r,
          "        mov r1, 0x111\n"
          "        mov r2, 0x40E010\n"
          "        cmp r1, 0x222\n"          /* CF SF */
          "        ldq r3, [r2]\n"
          "        halt\n"
          "handler:\n"
          "        mov r13, r1\n"
          "        mov r14, r2\n"
          "        add r15, 1\n"             /* clears CF SF */
          "        push rax\n push rdi\n"
          "        mov rax, 100\n"
          "        mov rdi, r2\n"
          "        hcall\n"
          "        pop rdi\n pop rax\n"
          "        iret\n");
    handler = TMEM_BASE + 5 * 8;
    *(uint64_t *)tmem(&tc, 0x40E010) = 0xABCDEF;
    set_perm(&tc, 0x40E000, P_NONE);

    rc = isa_step(&r, &ops_bulk, &tc, 100, &f);
    ASSERT_EQ(rc, ISA_EXIT_FAULT);
    before = r;
    sp = r.rsp;
    ASSERT_EQ(isa_deliver_fault(&r, &ops_bulk, &tc, handler, &f, &nested),
              ISA_OP_OK);
    ASSERT_HEX(r.rsp, sp - 32);
    ASSERT_HEX(rd64(&tc, sp - 32), 0x111);
    ASSERT_HEX(rd64(&tc, sp - 24), 0x40E010);
    ASSERT_HEX(rd64(&tc, sp - 16), before.rflags);
    ASSERT_HEX(rd64(&tc, sp - 8), before.rip);
    ASSERT_HEX(r.rcx, 0);               /* error code: not present, read */
    ASSERT_HEX(r.rdx, 0x40E010);        /* cr2 */
    ASSERT_HEX(r.rip, handler);

    run_to_halt(&tc, &r, &ops_bulk);
    ASSERT_HEX(r.r13, 0);
    ASSERT_HEX(r.r14, 0x40E010);
    ASSERT_EQ(r.r15, 1);
    ASSERT_HEX(r.rbx, 0xABCDEF);
    ASSERT_HEX(r.rcx, 0x111);
    ASSERT_HEX(r.rdx, 0x40E010);
    ASSERT_HEX(FLAGS(&r), CF | SF);
    ASSERT_HEX(r.rsp, sp);
    teardown(&tc);
}

TEST(fault_delivery_onto_bad_stack_is_nested_fault)
{
    struct cpu_user_regs r, before;
    struct tcpu tc;
    struct isa_fault f, nested;

    setup(&tc, &r, "mov sp, 0x40F010\n ud\n");
    set_perm(&tc, 0x40F000, P_RO);
    ASSERT_EQ(isa_step(&r, &ops_bulk, &tc, 10, &f), ISA_EXIT_FAULT);
    ASSERT_EQ(f.vector, ISA_VEC_UD);
    before = r;
    ASSERT_EQ(isa_deliver_fault(&r, &ops_bulk, &tc, TMEM_BASE, &f, &nested),
              ISA_OP_FAULT);
    ASSERT_EQ(nested.vector, ISA_VEC_PF);
    ASSERT_HEX(nested.va, 0x40F000);
    ASSERT_HEX(nested.error_code, ISA_PFEC_WRITE | ISA_PFEC_PRESENT);
    ASSERT(!memcmp(&r, &before, sizeof(r)));
    teardown(&tc);
}

/* ------------------------------------------------------------------------
 * Stopping and resuming: the property migration relies on
 * ------------------------------------------------------------------------ */

/*
 * Fill 8 pages with a pattern derived from time, copy some, then mix every
 * quadword into a checksum with calls, pushes and a loop.  Results: r0
 * checksum, r3 sum of loop counters, [0x420000] the checksum stored.
 */
static const char checksum_src[] =
    "        .equ DATA, 0x410000\n"
    "        .equ NPAGES, 8\n"
    "        .entry main\n"
    "main:   mov r6, DATA\n"
    "        mov r7, NPAGES\n"
    "        rdtime r2\n"
    "        mov r3, 4K\n"
    "fill:   fillq r6, r2, r3\n"
    "        add r2, 0x01010101\n"
    "        add r6, 4096\n"
    "        sub r7, 1\n"
    "        jne fill\n"
    "        mov r6, DATA\n"
    "        lea r5, [r6 + 4096 * 2 + 8]\n"
    "        mov r3, 100\n"
    "        copy r5, r6, r3\n"
    "        mov r0, 0\n"
    "        mov r3, 0\n"
    "        mov r7, NPAGES * 4096 / 8\n"
    "loop:   call step\n"
    "        add r6, 8\n"
    "        sub r7, 1\n"
    "        jne loop\n"
    "        mov r1, result\n"
    "        stq [r1], r0\n"
    "        halt\n"
    "step:   push r7\n"
    "        ldq r1, [r6]\n"
    "        mix r0, r1\n"
    "        pop r7\n"
    "        add r3, r7\n"
    "        ret\n"
    "        .org 0x420000\n"
    "result: .quad 0\n";

struct run_result
{
    struct cpu_user_regs regs;
    uint64_t stored;
    uint64_t retired;
    unsigned int stops;
};

/*
 * Run the checksum program with budget n per isa_step; between steps,
 * "migrate": copy memory and the register file into a fresh CPU and drop
 * the old one, so nothing but memory and cpu_user_regs survives.
 */
static void run_checksum(unsigned int n, struct run_result *res)
{
    struct cpu_user_regs r;
    struct tcpu tc;
    struct isa_fault f;
    int rc;

    memset(res, 0, sizeof(*res));
    setup(&tc, &r, checksum_src);
    tc.now = 0x5000;
    for ( ;; )
    {
        struct tcpu moved;
        struct cpu_user_regs saved;

        rc = isa_step(&r, &ops_bulk, &tc, n, &f);
        res->retired += f.retired;
        res->stops++;
        if ( rc != ISA_EXIT_BUDGET )
            break;
        ASSERT_EQ(f.retired, n);
        saved = r;
        memset(&r, 0xA5, sizeof(r));
        r = saved;
        if ( res->stops % 997 )
            continue;
        moved = tc;
        moved.mem = malloc(TMEM_SIZE);
        ASSERT(moved.mem);
        memcpy(moved.mem, tc.mem, TMEM_SIZE);
        teardown(&tc);
        tc = moved;
    }
    ASSERT_EQ(rc, ISA_EXIT_HALT);
    res->regs = r;
    res->stored = rd64(&tc, 0x420000);
    teardown(&tc);
}

TEST(checksum_same_when_stopped_and_resumed_every_n)
{
    static const unsigned int budgets[] = { 1, 2, 3, 7, 64, 1000 };
    struct run_result one, part;

    run_checksum(10000000, &one);
    ASSERT_EQ(one.stops, 1);
    ASSERT_NE(one.stored, 0);
    ASSERT_HEX(one.stored, one.regs.rax);
    ASSERT_EQ(one.regs.rbx, (8 * 4096 / 8) * (8 * 4096 / 8 + 1) / 2);
    for ( unsigned int i = 0; i < ARRAY_SIZE(budgets); i++ )
    {
        run_checksum(budgets[i], &part);
        ASSERT_EQ(part.retired, one.retired);
        ASSERT_EQ(part.stops, (one.retired + budgets[i] - 1) / budgets[i]);
        ASSERT_HEX(part.stored, one.stored);
        if ( memcmp(&part.regs, &one.regs, sizeof(one.regs)) )
            FAIL("budget %u: final registers differ", budgets[i]);
    }
}

/* ------------------------------------------------------------------------
 * The assembler
 * ------------------------------------------------------------------------ */

static uint64_t img_q(const struct ferry_image *img, uint64_t va)
{
    uint64_t v;

    ASSERT(va >= img->base && va + 8 <= img->base + img->size);
    memcpy(&v, img->bytes + (va - img->base), 8);
    return v;
}

TEST(assembler_expressions_directives_and_layout)
{
    struct ferry_image img = FERRY_IMAGE_INIT;

    assemble("# comment line\n"
             "        .equ base, 0x1000000     ; trailing comment\n"
             "        .equ SZ, 2M\n"
             "        .org base + 4096*3\n"
             "start:  nop\n"
             "        .quad base + 4096*3, SZ, 1K, 1G, 0b101, 1_000\n"
             "        .quad (2 + 3) * 4 - 1, -1, 7 / 2, -7 / 2, 7 % 3\n"
             "        .quad 1 << 12 | 0x67, 0xFF & ~0xF, 3 ^ 1, 'A', '\\n'\n"
             "        .quad end - start, .\n"
             "        .long 0xDEADBEEF, -1\n"
             "        .word 0xBEEF\n"
             "        .byte 1, 2, -1, 255\n"
             "        .ascii \"ab\", \"c\"\n"
             "        .asciz \"d\\x41\\t\"\n"
             "        .align 8\n"
             "after:  halt\n"
             "        .space 16, 0x5A\n"
             "end:    .quad 0\n"
             "        .space 100\n"
             "        .align 4096\n"
             "        .entry after\n", &img);
    ASSERT_HEX(img.base, 0x1003000);
    ASSERT_EQ(img.isa_version, FERRY_ISA_VERSION);
    ASSERT_HEX(img_q(&img, 0x1003000), ISA_OP_NOP);
    ASSERT_HEX(img_q(&img, 0x1003008), 0x1003000);
    ASSERT_HEX(img_q(&img, 0x1003010), 2 << 20);
    ASSERT_HEX(img_q(&img, 0x1003018), 1024);
    ASSERT_HEX(img_q(&img, 0x1003020), 1 << 30);
    ASSERT_HEX(img_q(&img, 0x1003028), 5);
    ASSERT_HEX(img_q(&img, 0x1003030), 1000);
    ASSERT_HEX(img_q(&img, 0x1003038), 19);
    ASSERT_HEX(img_q(&img, 0x1003040), ~0ULL);
    ASSERT_HEX(img_q(&img, 0x1003048), 3);
    ASSERT_HEX(img_q(&img, 0x1003050), (uint64_t)-3);
    ASSERT_HEX(img_q(&img, 0x1003058), 1);
    ASSERT_HEX(img_q(&img, 0x1003060), 0x1067);
    ASSERT_HEX(img_q(&img, 0x1003068), 0xF0);
    ASSERT_HEX(img_q(&img, 0x1003070), 2);
    ASSERT_HEX(img_q(&img, 0x1003078), 'A');
    ASSERT_HEX(img_q(&img, 0x1003080), '\n');
    ASSERT_HEX(img_q(&img, 0x1003090), 0x1003090);      /* '.' */
    ASSERT_HEX(img_q(&img, 0x1003098), 0xFFFFFFFFDEADBEEFULL);
    ASSERT_HEX(img_q(&img, 0x1003088), 0xC8);            /* end - start */
    /* .word, .byte, "ab" "c" "d" "A" "\t" NUL, then padding to 8. */
    ASSERT_HEX(img_q(&img, 0x10030A0), 0x6261FFFF0201BEEFULL);
    ASSERT_HEX(img_q(&img, 0x10030A8), 0x0000000009416463ULL);
    ASSERT_HEX(img.entry, 0x10030B0);
    ASSERT_HEX(img_q(&img, 0x10030B0), ISA_OP_HALT);
    ASSERT_HEX(img_q(&img, 0x10030B8), 0x5A5A5A5A5A5A5A5AULL);
    /* end: .quad 0 is emitted; .space 100 and .align are bss. */
    ASSERT_EQ(img.size, 0x10030D0 - 0x1003000);
    ASSERT_EQ(img.bss_size, 0x1004000 - 0x10030D0);
    ferry_image_dispose(&img);
    ferry_image_dispose(&img);          /* idempotent */
}

TEST(mov_immediate_size_follows_the_value)
{
    struct ferry_image img = FERRY_IMAGE_INIT;

    /* Known and small: 8 bytes; forward reference or large: 16. */
    assemble("back:   mov r1, 5\n"
             "        mov r2, back\n"
             "        mov r3, fwd\n"
             "        mov r4, 0x80000000\n"
             "        mov r5, -0x80000000\n"
             "        movabs r6, 1\n"
             "fwd:    halt\n", &img);
    ASSERT_HEX(img_q(&img, 0x400000), isa_encode(ISA_OP_MOVI, 1, 0, 0, 5));
    ASSERT_HEX(img_q(&img, 0x400008),
               isa_encode(ISA_OP_MOVI, 2, 0, 0, 0x400000));
    ASSERT_HEX(img_q(&img, 0x400010), isa_encode(ISA_OP_MOVABS, 3, 0, 0, 0));
    ASSERT_HEX(img_q(&img, 0x400018), 0x400048);
    ASSERT_HEX(img_q(&img, 0x400020), isa_encode(ISA_OP_MOVABS, 4, 0, 0, 0));
    ASSERT_HEX(img_q(&img, 0x400028), 0x80000000);
    ASSERT_HEX(img_q(&img, 0x400030),
               isa_encode(ISA_OP_MOVI, 5, 0, 0, INT32_MIN));
    ASSERT_HEX(img_q(&img, 0x400038), isa_encode(ISA_OP_MOVABS, 6, 0, 0, 0));
    ASSERT_HEX(img_q(&img, 0x400048), ISA_OP_HALT);
    ASSERT_EQ(img.size, 0x50);
    ASSERT_EQ(img.bss_size, 0);
    ASSERT_HEX(img.entry, 0x400000);
    ferry_image_dispose(&img);
}

TEST(encoding_of_each_instruction_form)
{
    struct ferry_image img = FERRY_IMAGE_INIT;

    assemble("        add r1, r2\n"
             "        add r1, r2, r3\n"
             "        sub r1, 8\n"
             "        xor r4, r5, -2\n"
             "        cmp r6, r7\n"
             "        test r6, 0x10\n"
             "        ldq r8, [r9 + 16]\n"
             "        stw [r10 - 4], r11\n"
             "        lea r12, [sp]\n"
             "        jne . - 8\n"
             "        call . + 16\n"
             "        push r13\n"
             "        pop r14\n"
             "        copy r1, r2, r3\n"
             "        not r5\n"
             "        rdtime r15\n"
             "        ldesc r2, r9\n", &img);
    ASSERT_HEX(img_q(&img, 0x400000),
               isa_encode(ISA_OP_ALU_R + ISA_ALU_ADD, 1, 1, 2, 0));
    ASSERT_HEX(img_q(&img, 0x400008),
               isa_encode(ISA_OP_ALU_R + ISA_ALU_ADD, 1, 2, 3, 0));
    ASSERT_HEX(img_q(&img, 0x400010),
               isa_encode(ISA_OP_ALU_I + ISA_ALU_SUB, 1, 1, 0, 8));
    ASSERT_HEX(img_q(&img, 0x400018),
               isa_encode(ISA_OP_ALU_I + ISA_ALU_XOR, 4, 5, 0, -2));
    ASSERT_HEX(img_q(&img, 0x400020),
               isa_encode(ISA_OP_ALU_R + ISA_ALU_CMP, 0, 6, 7, 0));
    ASSERT_HEX(img_q(&img, 0x400028),
               isa_encode(ISA_OP_ALU_I + ISA_ALU_TEST, 0, 6, 0, 0x10));
    ASSERT_HEX(img_q(&img, 0x400030), isa_encode(ISA_OP_LDQ, 8, 9, 0, 16));
    ASSERT_HEX(img_q(&img, 0x400038), isa_encode(ISA_OP_STW, 10, 11, 0, -4));
    ASSERT_HEX(img_q(&img, 0x400040), isa_encode(ISA_OP_LEA, 12, 4, 0, 0));
    ASSERT_HEX(img_q(&img, 0x400048),
               isa_encode(ISA_OP_JCC + ISA_CC_NE, 0, 0, 0, -16));
    ASSERT_HEX(img_q(&img, 0x400050), isa_encode(ISA_OP_CALL, 0, 0, 0, 8));
    ASSERT_HEX(img_q(&img, 0x400058), isa_encode(ISA_OP_PUSH, 0, 13, 0, 0));
    ASSERT_HEX(img_q(&img, 0x400060), isa_encode(ISA_OP_POP, 14, 0, 0, 0));
    ASSERT_HEX(img_q(&img, 0x400068), isa_encode(ISA_OP_COPY, 1, 2, 3, 0));
    ASSERT_HEX(img_q(&img, 0x400070), isa_encode(ISA_OP_NOT, 5, 5, 0, 0));
    ASSERT_HEX(img_q(&img, 0x400078), isa_encode(ISA_OP_RDTIME, 15, 0, 0, 0));
    ASSERT_HEX(img_q(&img, 0x400080), isa_encode(ISA_OP_LDESC, 2, 9, 0, 0));
    ASSERT_STR(isa_opcode_name(ISA_OP_LDQ), "ldq");
    ASSERT_STR(isa_opcode_name(ISA_OP_JCC + ISA_CC_BE), "jbe");
    ASSERT_STR(isa_opcode_name(ISA_OP_ALU_I + ISA_ALU_SAR), "sar");
    ASSERT(isa_opcode_name(0x1F) == NULL);
    ferry_image_dispose(&img);
}

/* Assembling src must fail with a message containing want. */
static void expect_as_error(const char *src, const char *want)
{
    struct ferry_image img = FERRY_IMAGE_INIT;
    char err[256];
    int rc = ferry_as_assemble(src, "bad.s", &img, err, sizeof(err));

    if ( rc != -EINVAL )
        FAIL("'%s' assembled (rc %d), expected error '%s'", src, rc, want);
    ASSERT_CONTAINS(err, want);
    ASSERT(img.bytes == NULL);
    ASSERT_EQ(img.size, 0);
}

TEST(assembler_errors_name_file_line_and_problem)
{
    expect_as_error("nop\nnop\nfoo r1\n",
                    "bad.s:3: unknown instruction 'foo'");
    expect_as_error("nop\n jmp nowhere\n",
                    "bad.s:2: undefined symbol 'nowhere'");
    expect_as_error("x: nop\n\nx: nop\n",
                    "bad.s:3: symbol 'x' already defined on line 1");
    expect_as_error("add r1, 0x100000000\n",
                    "bad.s:1: immediate 0x100000000 does not fit in a signed "
                    "32-bit field");
    expect_as_error("nop\n .byte 1\n nop\n",
                    "bad.s:3: instruction at 0x400009 is not 8-byte aligned");
    expect_as_error("nop\n .org 0\n", "bad.s:2: .org 0 moves backwards");
    expect_as_error("mov r1, 12z\n", "bad.s:1: bad number '12z'");
    expect_as_error("mov r1, 99999999999999999999\n",
                    "bad.s:1: number '99999999999999999999' does not fit");
    expect_as_error("ldq r1, r2\n", "bad.s:1: usage: ldq reg, [reg + disp]");
    expect_as_error("stq r1, [r2]\n", "bad.s:1: usage: stq [reg + disp], reg");
    expect_as_error("add r1\n", "bad.s:1: usage: add reg, [reg,] reg|value");
    expect_as_error("halt r1\n", "bad.s:1: 'halt' takes no operands");
    expect_as_error("mov r1, r16 + 1\n",
                    "bad.s:1: undefined symbol 'r16'");
    expect_as_error("mov r1, 2 + r3\n",
                    "bad.s:1: register 'r3' used in an expression");
    expect_as_error("ldq r1, [5]\n",
                    "bad.s:1: expected a base register after '['");
    expect_as_error("ldq r1, [r2 + 8\n",
                    "bad.s:1: expected ']' to close the memory operand");
    expect_as_error(".byte 256\n",
                    "bad.s:1: value 0x100 does not fit in .byte");
    expect_as_error(".word -32769\n", "does not fit in .word");
    expect_as_error(".org fwd\nfwd: nop\n",
                    "bad.s:1: the .org address must be known here");
    expect_as_error(".align 3\n", "bad.s:1: .align 3: not a power of two");
    expect_as_error(".bogus 1\n", "bad.s:1: unknown directive '.bogus'");
    expect_as_error(".ascii \"abc\n", "bad.s:1: missing closing \"");
    expect_as_error(".ascii \"a\\q\"\n", "bad.s:1: bad escape '\\q'");
    expect_as_error(".equ r2, 5\n", "bad.s:1: 'r2' is a register name");
    expect_as_error("nop\n .quad 1 / 0\n",
                    "bad.s:2: division by zero in an expression");
    expect_as_error("jmp 0x400004\n",
                    "bad.s:1: branch target 0x400004 is not 8-byte aligned");
    expect_as_error("jmp 0x7fff00000000\n",
                    "bad.s:1: branch target 0x7fff00000000 is out of range");
    expect_as_error("nop\n .entry 0x500000\n",
                    "bad.s:2: entry point 0x500000 is not an aligned address");
    expect_as_error("# nothing\n", "bad.s: the program is empty");
    expect_as_error("mov r1, r2 r3\n", "bad.s:1: unexpected 'r3'");
    expect_as_error("nop\n.entry a\n.entry a\na: nop\n",
                    "bad.s:3: .entry given twice (first on line 2)");
    expect_as_error("mov r1, (1 + 2\n", "bad.s:1: expected ')' to close '('");
}

TEST(image_file_roundtrip_and_rejects)
{
    struct ferry_image img = FERRY_IMAGE_INIT, back = FERRY_IMAGE_INIT;
    uint8_t *buf = NULL;
    size_t len;
    char err[256];

    assemble(".org 0x600000\n nop\n start: halt\n .space 8192\n"
             ".entry start\n", &img);
    ASSERT_EQ(ferry_image_write(&img, &buf, &len), 0);
    ASSERT_EQ(len, 64 + 16);
    ASSERT(!memcmp(buf, "FERRYIMG", 8));
    ASSERT_EQ(buf[8], FERRY_IMAGE_VERSION);
    ASSERT_EQ(buf[12], 64);
    ASSERT_EQ(ferry_image_parse(buf, len, &back, err, sizeof(err)), 0);
    ASSERT_HEX(back.base, 0x600000);
    ASSERT_HEX(back.entry, 0x600008);
    ASSERT_EQ(back.size, 16);
    ASSERT_EQ(back.bss_size, 8192);
    ASSERT_EQ(back.isa_version, FERRY_ISA_VERSION);
    ASSERT(!memcmp(back.bytes, img.bytes, 16));

    buf[0] = 'X';
    ASSERT_EQ(ferry_image_parse(buf, len, &back, err, sizeof(err)), -EINVAL);
    ASSERT_STR(err, "not a ferry image (bad magic)");
    ASSERT(back.bytes == NULL);
    buf[0] = 'F';
    buf[8] = 2;
    ASSERT_EQ(ferry_image_parse(buf, len, &back, err, sizeof(err)), -EINVAL);
    ASSERT_STR(err, "image format version 2, expected 1");
    buf[8] = 1;
    ASSERT_EQ(ferry_image_parse(buf, len - 1, &back, err, sizeof(err)),
              -EINVAL);
    ASSERT_CONTAINS(err, "image size 16 does not match the 15 bytes");
    buf[offsetof(struct ferry_image_header, isa_version)] = 99;
    ASSERT_EQ(ferry_image_parse(buf, len, &back, err, sizeof(err)), -EINVAL);
    ASSERT_STR(err, "image needs ISA version 99, this is version 2");
    buf[offsetof(struct ferry_image_header, isa_version)] = 1;
    buf[offsetof(struct ferry_image_header, entry)] = 0x04;
    ASSERT_EQ(ferry_image_parse(buf, len, &back, err, sizeof(err)), -EINVAL);
    ASSERT_CONTAINS(err, "entry point 0x600004 is not an aligned address");
    buf[offsetof(struct ferry_image_header, entry)] = 0x08;
    buf[offsetof(struct ferry_image_header, reserved)] = 1;
    ASSERT_EQ(ferry_image_parse(buf, len, &back, err, sizeof(err)), -EINVAL);
    ASSERT_CONTAINS(err, "non-zero reserved");

    free(buf);
    ferry_image_dispose(&img);
    ferry_image_dispose(&back);
}

TEST(equ_may_use_labels_defined_later)
{
    struct cpu_user_regs r;
    struct tcpu tc;

    run_src(&tc, &r,
            "        mov r1, AFTER\n"
            "        mov r2, SIZE\n"
            "        ldq r3, [r1 - 8]\n"
            "        halt\n"
            "        .equ AFTER, table + 16\n"
            "        .equ SIZE, end - table\n"
            "table:  .quad 11, 22\n"
            "end:\n");
    ASSERT_HEX(r.rcx, TMEM_BASE + 48 + 16);     /* both movs are wide */
    ASSERT_EQ(r.rdx, 16);
    ASSERT_EQ(r.rbx, 22);
    teardown(&tc);
}

/* Write text to a fresh file under dir; returns its path in buf. */
static const char *write_tmp(char *buf, size_t len, const char *dir,
                             const char *name, const char *text)
{
    FILE *f;

    snprintf(buf, len, "%s/%s", dir, name);
    f = fopen(buf, "w");
    ASSERT(f);
    ASSERT_EQ(fputs(text, f) >= 0, 1);
    ASSERT_EQ(fclose(f), 0);
    return buf;
}

TEST(include_assembles_another_file_in_place)
{
    char dir[] = "/tmp/ferry-as-XXXXXX", top[256], inc[256], nest[256];
    char err[256], src[512];
    struct ferry_image img = FERRY_IMAGE_INIT;
    struct cpu_user_regs r;
    struct tcpu tc;
    int rc;

    ASSERT(mkdtemp(dir));
    /* A relative name is found next to the including file. */
    write_tmp(nest, sizeof(nest), dir, "nest.inc",
              "        .equ NESTED, 7\n");
    write_tmp(inc, sizeof(inc), dir, "lib.inc",
              "        .include \"nest.inc\"\n"
              "        .equ K, 40\n"
              "add2:   add r1, K + NESTED  # from lib.inc\n"
              "        ret\n");
    snprintf(src, sizeof(src),
             "        .entry start\n"
             "        .include \"%s\"\n"
             "start:  mov sp, 0x%llx\n"
             "        mov r1, 1\n"
             "        call add2\n"
             "        halt\n", inc, (unsigned long long)(TMEM_BASE + 0x1000));
    run_src(&tc, &r, src);
    ASSERT_EQ(r.rcx, 48);
    teardown(&tc);

    /* Errors inside an included file name it and its own line. */
    write_tmp(top, sizeof(top), dir, "top.s",
              "        nop\n"
              "        .include \"bad.inc\"\n");
    write_tmp(inc, sizeof(inc), dir, "bad.inc", "        nop\n  frob r1\n");
    rc = ferry_as_assemble("        nop\n        .include \"bad.inc\"\n",
                           top, &img, err, sizeof(err));
    ASSERT_EQ(rc, -EINVAL);
    snprintf(src, sizeof(src), "%s/bad.inc:2: unknown instruction 'frob'",
             dir);
    ASSERT_CONTAINS(err, src);
    rc = ferry_as_assemble("        .include \"missing.inc\"\n", top, &img,
                           err, sizeof(err));
    ASSERT_EQ(rc, -EINVAL);
    ASSERT_CONTAINS(err, "top.s:1: cannot read included file");
    ASSERT_CONTAINS(err, "missing.inc: No such file or directory");
    /* A file including itself stops at the nesting limit. */
    write_tmp(inc, sizeof(inc), dir, "loop.inc",
              "        .include \"loop.inc\"\n");
    rc = ferry_as_assemble("        .include \"loop.inc\"\n", top, &img,
                           err, sizeof(err));
    ASSERT_EQ(rc, -EINVAL);
    ASSERT_CONTAINS(err, "loop.inc:1: .include nested too deeply");
    ASSERT(img.bytes == NULL);

    for ( unsigned int i = 0; i < 5; i++ )
    {
        static const char *const names[] = {
            "nest.inc", "lib.inc", "bad.inc", "loop.inc", "top.s",
        };

        snprintf(inc, sizeof(inc), "%s/%s", dir, names[i]);
        ASSERT_EQ(unlink(inc), 0);
    }
    ASSERT_EQ(rmdir(dir), 0);
}
