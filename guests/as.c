/* SPDX-License-Identifier: MIT */
/*
 * The guest assembler: text in ferry's assembly language (man/ferry-isa.7)
 * to a guest image (hypervisor/isa.h), and the image file reader and
 * writer that the domain builder shares.
 *
 * The assembler makes three passes over the source.  Pass 0 lays the
 * program out: it defines labels and decides the one size that can vary,
 * that of `mov reg, expr` (8 bytes when the value is known and fits in 32
 * signed bits, 16 otherwise).  Pass 1 lays it out again with those sizes
 * fixed, so that .equ symbols defined from later labels get their values.
 * Pass 2 emits the bytes, now that every symbol is known.  Because sizes
 * never change after pass 0, a label has the same value in every pass;
 * the passes check that.
 *
 * Errors are sticky: the first one is recorded as "file:line: problem" and
 * everything after it is skipped.  Nothing here prints or exits; the
 * ferry-as command decides what to do with the message.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "as.h"

#define min(a, b) ((a) < (b) ? (a) : (b))

/* Where the location counter starts unless .org moves it first. */
#define AS_DEFAULT_BASE 0x400000ULL

struct val
{
    uint64_t v;
    bool undef;             /* uses a symbol not (yet) defined */
};

struct sym
{
    char *name;
    uint64_t value;
    bool defined;
    unsigned int line;      /* where it was defined */
};

struct as
{
    const char *file;
    unsigned int line;
    unsigned int pass;      /* 0: sizing, 1: resolving, 2: emitting */
    const char *p;          /* cursor in the current line */
    char *err;
    size_t errlen;
    int rc;                 /* first error, sticky */

    struct sym *syms;
    size_t nr_syms, syms_cap;

    uint8_t *wide;          /* per `mov reg, expr`: 16 bytes? (pass 0) */
    size_t nr_wide, wide_cap, wide_idx;

    bool started;           /* anything emitted or reserved yet? */
    uint64_t base, loc;
    uint64_t end;           /* highest location reached */
    uint64_t emit_end;      /* end of the last emitted byte */
    uint8_t *buf;
    size_t buf_cap;
    bool have_entry;
    uint64_t entry;
    unsigned int entry_line;
    unsigned int depth;     /* .include nesting */
};

/* ------------------------------------------------------------------------
 * Errors and small helpers
 * ------------------------------------------------------------------------ */

static void __attribute__((format(printf, 2, 3)))
as_error(struct as *as, const char *fmt, ...)
{
    va_list ap;
    int n;

    if ( as->rc )
        return;
    as->rc = -EINVAL;
    if ( !as->errlen )
        return;
    if ( as->line )
        n = snprintf(as->err, as->errlen, "%s:%u: ", as->file, as->line);
    else
        n = snprintf(as->err, as->errlen, "%s: ", as->file);
    if ( n < 0 || (size_t)n >= as->errlen )
        return;
    va_start(ap, fmt);
    vsnprintf(as->err + n, as->errlen - n, fmt, ap);
    va_end(ap);
}

static void as_nomem(struct as *as)
{
    if ( as->rc )
        return;
    as_error(as, "out of memory");
    as->rc = -ENOMEM;
}

static bool is_ident_start(char c)
{
    return isalpha((unsigned char)c) || c == '_' || c == '.';
}

static bool is_ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '$';
}

static void skip_ws(struct as *as)
{
    while ( *as->p == ' ' || *as->p == '\t' || *as->p == '\r' )
        as->p++;
}

/* At the end of the statement: end of line or a comment. */
static bool at_end(struct as *as)
{
    skip_ws(as);
    return *as->p == '\0' || *as->p == '#' || *as->p == ';';
}

static bool accept(struct as *as, char c)
{
    skip_ws(as);
    if ( *as->p != c )
        return false;
    as->p++;
    return true;
}

static void expect(struct as *as, char c, const char *what)
{
    if ( !accept(as, c) )
        as_error(as, "expected '%c' %s", c, what);
}

/* Read an identifier into name (truncated to size); returns its length. */
static size_t read_ident(struct as *as, char *name, size_t size)
{
    const char *s = as->p;
    size_t n;

    while ( is_ident_char(*as->p) )
        as->p++;
    n = as->p - s;
    if ( n >= size )
    {
        as_error(as, "name '%.20s...' is too long", s);
        n = size - 1;
    }
    memcpy(name, s, n);
    name[n] = '\0';
    return n;
}

/* ------------------------------------------------------------------------
 * Registers and symbols
 * ------------------------------------------------------------------------ */

static const char *const reg_names[ISA_NR_REGS] = {
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
};

/* Register number of name, or -1. */
static int reg_number(const char *name)
{
    if ( (name[0] == 'r' || name[0] == 'R') &&
         isdigit((unsigned char)name[1]) )
    {
        char *end;
        unsigned long n = strtoul(name + 1, &end, 10);

        if ( !*end && n < ISA_NR_REGS && !(name[1] == '0' && name[2]) )
            return (int)n;
        return -1;
    }
    if ( !strcasecmp(name, "sp") )
        return ISA_RSP;
    for ( unsigned int i = 0; i < 8; i++ )
        if ( !strcasecmp(name, reg_names[i]) )
            return (int)i;
    return -1;
}

static struct sym *sym_find(struct as *as, const char *name)
{
    for ( size_t i = 0; i < as->nr_syms; i++ )
        if ( !strcmp(as->syms[i].name, name) )
            return &as->syms[i];
    return NULL;
}

static struct sym *sym_get(struct as *as, const char *name)
{
    struct sym *s = sym_find(as, name), *n;

    if ( s )
        return s;
    if ( as->nr_syms == as->syms_cap )
    {
        size_t cap = as->syms_cap ? 2 * as->syms_cap : 64;

        n = realloc(as->syms, cap * sizeof(*n));
        if ( !n )
            goto nomem;
        as->syms = n;
        as->syms_cap = cap;
    }
    s = &as->syms[as->nr_syms];
    memset(s, 0, sizeof(*s));
    s->name = strdup(name);
    if ( !s->name )
        goto nomem;
    as->nr_syms++;
    return s;

 nomem:
    as_nomem(as);
    return NULL;
}

/*
 * Define name = value at the current line.  A second definition on another
 * line is an error; the same line defines it again in every pass, and a
 * label must get the same value each time.
 */
static void sym_define(struct as *as, const char *name, uint64_t value,
                       bool label)
{
    struct sym *s;

    if ( reg_number(name) >= 0 )
    {
        as_error(as, "'%s' is a register name", name);
        return;
    }
    s = sym_get(as, name);
    if ( !s )
        return;
    if ( s->defined && s->line != as->line )
    {
        as_error(as, "symbol '%s' already defined on line %u", name,
                 s->line);
        return;
    }
    if ( label && s->defined && s->value != value )
    {
        as_error(as, "label '%s' moved between passes (assembler bug)",
                 name);
        return;
    }
    s->value = value;
    s->defined = true;
    s->line = as->line;
}

/* ------------------------------------------------------------------------
 * Expressions
 *
 * Two precedence levels, all left-associative: * / % << >> & bind tighter
 * than + - | ^.  Unary - ~ + and parentheses.  Arithmetic is on 64 bits,
 * wrapping; / and % are signed.
 * ------------------------------------------------------------------------ */

static struct val expr_sum(struct as *as);

static struct val number(struct as *as)
{
    struct val r = { 0, false };
    unsigned int radix = 10;
    const char *s = as->p;
    bool overflow = false, any = false;

    if ( s[0] == '0' && (s[1] == 'x' || s[1] == 'X') )
        radix = 16, as->p += 2;
    else if ( s[0] == '0' && (s[1] == 'b' || s[1] == 'B') )
        radix = 2, as->p += 2;
    for ( ;; as->p++ )
    {
        unsigned int d;
        char c = *as->p;

        if ( isdigit((unsigned char)c) )
            d = c - '0';
        else if ( radix == 16 && isxdigit((unsigned char)c) )
            d = (tolower((unsigned char)c) - 'a') + 10;
        else if ( c == '_' && any )
            continue;
        else
            break;
        if ( d >= radix )
            break;
        if ( r.v > (UINT64_MAX - d) / radix )
            overflow = true;
        r.v = r.v * radix + d;
        any = true;
    }
    if ( *as->p == 'K' || *as->p == 'M' || *as->p == 'G' )
    {
        unsigned int shift = *as->p == 'K' ? 10 : *as->p == 'M' ? 20 : 30;

        if ( r.v >> (64 - shift) )
            overflow = true;
        r.v <<= shift;
        as->p++;
    }
    if ( !any || is_ident_char(*as->p) )
    {
        while ( is_ident_char(*as->p) )
            as->p++;
        as_error(as, "bad number '%.*s'", (int)(as->p - s), s);
    }
    else if ( overflow )
        as_error(as, "number '%.*s' does not fit in 64 bits",
                 (int)(as->p - s), s);
    return r;
}

/* One character of a string or character literal, escapes decoded. */
static int lit_char(struct as *as, char quote)
{
    char c = *as->p;

    if ( c == '\0' )
    {
        as_error(as, "missing closing %c", quote);
        return -1;
    }
    as->p++;
    if ( c != '\\' )
        return (unsigned char)c;
    c = *as->p++;
    switch ( c )
    {
    case 'n': return '\n';
    case 't': return '\t';
    case 'r': return '\r';
    case '0': return '\0';
    case '\\': return '\\';
    case '\'': return '\'';
    case '"': return '"';
    case 'x':
        if ( isxdigit((unsigned char)as->p[0]) &&
             isxdigit((unsigned char)as->p[1]) )
        {
            char hex[3] = { as->p[0], as->p[1], '\0' };

            as->p += 2;
            return (int)strtoul(hex, NULL, 16);
        }
        break;
    default:
        break;
    }
    as->p--;
    as_error(as, "bad escape '\\%c'", c ? c : ' ');
    return -1;
}

static struct val primary(struct as *as)
{
    struct val r = { 0, false };
    char name[128];

    skip_ws(as);
    if ( isdigit((unsigned char)*as->p) )
        return number(as);
    if ( accept(as, '(') )
    {
        r = expr_sum(as);
        expect(as, ')', "to close '('");
        return r;
    }
    if ( *as->p == '\'' )
    {
        int c;

        as->p++;
        c = lit_char(as, '\'');
        if ( c >= 0 )
            r.v = (uint64_t)c;
        if ( *as->p != '\'' )
            as_error(as, "missing closing '");
        else
            as->p++;
        return r;
    }
    if ( *as->p == '.' && !is_ident_char(as->p[1]) )
    {
        as->p++;
        r.v = as->loc;
        return r;
    }
    if ( is_ident_start(*as->p) )
    {
        struct sym *s;

        read_ident(as, name, sizeof(name));
        if ( reg_number(name) >= 0 )
        {
            as_error(as, "register '%s' used in an expression", name);
            return r;
        }
        s = sym_find(as, name);
        if ( s && s->defined )
            r.v = s->value;
        else if ( as->pass == 2 )
            as_error(as, "undefined symbol '%s'", name);
        else
            r.undef = true;
        return r;
    }
    if ( *as->p == '\0' || *as->p == '#' || *as->p == ';' )
        as_error(as, "expected an expression at the end of the line");
    else
        as_error(as, "expected an expression at '%.20s'", as->p);
    return r;
}

static struct val unary(struct as *as)
{
    struct val r;

    skip_ws(as);
    if ( accept(as, '-') )
    {
        r = unary(as);
        r.v = -r.v;
        return r;
    }
    if ( accept(as, '~') )
    {
        r = unary(as);
        r.v = ~r.v;
        return r;
    }
    if ( accept(as, '+') )
        return unary(as);
    return primary(as);
}

static struct val binop(struct as *as, char op, struct val l, struct val r)
{
    struct val v = { 0, l.undef || r.undef };

    switch ( op )
    {
    case '+': v.v = l.v + r.v; break;
    case '-': v.v = l.v - r.v; break;
    case '|': v.v = l.v | r.v; break;
    case '^': v.v = l.v ^ r.v; break;
    case '*': v.v = l.v * r.v; break;
    case '&': v.v = l.v & r.v; break;
    case '<': v.v = r.v >= 64 ? 0 : l.v << r.v; break;
    case '>': v.v = r.v >= 64 ? 0 : l.v >> r.v; break;
    default:                                    /* '/' and '%' */
        if ( v.undef )
            break;
        if ( r.v == 0 )
            as_error(as, "division by zero in an expression");
        else if ( l.v == (1ULL << 63) && r.v == ~0ULL )
            v.v = op == '/' ? l.v : 0;
        else if ( op == '/' )
            v.v = (uint64_t)((int64_t)l.v / (int64_t)r.v);
        else
            v.v = (uint64_t)((int64_t)l.v % (int64_t)r.v);
        break;
    }
    return v;
}

/* The operator at the cursor of a level ("*%/&<>" or "+-|^"), or 0. */
static char peek_op(struct as *as, const char *ops)
{
    char c;

    skip_ws(as);
    c = *as->p;
    if ( !c || !strchr(ops, c) )
        return 0;
    if ( c == '<' || c == '>' )
    {
        if ( as->p[1] != c )
            return 0;
        as->p++;
    }
    as->p++;
    return c;
}

static struct val expr_product(struct as *as)
{
    struct val l = unary(as);
    char op;

    while ( !as->rc && (op = peek_op(as, "*/%&<>")) )
        l = binop(as, op, l, unary(as));
    return l;
}

static struct val expr_sum_rest(struct as *as, struct val l)
{
    char op;

    while ( !as->rc && (op = peek_op(as, "+-|^")) )
        l = binop(as, op, l, expr_product(as));
    return l;
}

static struct val expr_sum(struct as *as)
{
    return expr_sum_rest(as, expr_product(as));
}

/* An expression whose value must be known now (it shapes the layout). */
static uint64_t expr_now(struct as *as, const char *what)
{
    struct val v = expr_sum(as);

    if ( v.undef && !as->rc )
        as_error(as, "%s must be known here: no forward references", what);
    return v.v;
}

/* ------------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------------ */

static void start(struct as *as)
{
    if ( !as->started )
    {
        as->started = true;
        as->base = as->loc;
        as->end = as->emit_end = as->loc;
    }
}

/* Move the location counter n bytes on, emitting bytes if given. */
static void advance(struct as *as, const void *bytes, uint64_t n)
{
    uint64_t off, need;

    start(as);
    if ( as->loc + n < as->loc )
    {
        as_error(as, "location counter wraps past the end of the address "
                 "space");
        return;
    }
    if ( bytes && as->pass == 2 && n )
    {
        off = as->loc - as->base;
        need = off + n;
        if ( need > FERRY_IMAGE_MAX_SIZE )
        {
            as_error(as, "image larger than %lu MiB",
                     FERRY_IMAGE_MAX_SIZE >> 20);
            return;
        }
        if ( need > as->buf_cap )
        {
            size_t cap = as->buf_cap ? as->buf_cap : 4096;
            uint8_t *nb;

            while ( cap < need )
                cap *= 2;
            nb = realloc(as->buf, cap);
            if ( !nb )
            {
                as_nomem(as);
                return;
            }
            memset(nb + as->buf_cap, 0, cap - as->buf_cap);
            as->buf = nb;
            as->buf_cap = cap;
        }
        memcpy(as->buf + off, bytes, n);
        if ( as->loc + n > as->emit_end )
            as->emit_end = as->loc + n;
    }
    as->loc += n;
    if ( as->loc > as->end )
        as->end = as->loc;
}

static void emit_le(struct as *as, uint64_t v, unsigned int len)
{
    uint8_t b[8];

    for ( unsigned int i = 0; i < len; i++, v >>= 8 )
        b[i] = (uint8_t)v;
    advance(as, b, len);
}

/* Emit an instruction word; the location must be 8-byte aligned. */
static void emit_insn(struct as *as, unsigned int op, unsigned int a,
                      unsigned int b, unsigned int c, int32_t imm)
{
    if ( as->loc & (ISA_INSN_SIZE - 1) )
    {
        as_error(as, "instruction at %#llx is not 8-byte aligned "
                 "(add .align 8)", (unsigned long long)as->loc);
        return;
    }
    emit_le(as, isa_encode(op, a, b, c, imm), 8);
}

/* Does v fit in len bytes, read as unsigned or as signed? */
static bool fits_bytes(uint64_t v, unsigned int len)
{
    int64_t sv = (int64_t)v;

    if ( len >= 8 )
        return true;
    return !(v >> (8 * len)) || (sv < 0 && sv >= -(1LL << (8 * len - 1)));
}

static bool fits_s32(uint64_t v)
{
    return (int64_t)v == (int64_t)(int32_t)(uint32_t)v;
}

/* An immediate for the imm field (checked once values are final). */
static int32_t imm32(struct as *as, struct val v)
{
    if ( as->pass == 2 && !fits_s32(v.v) )
        as_error(as, "immediate %#llx does not fit in a signed 32-bit field "
                 "(load it into a register with mov)",
                 (unsigned long long)v.v);
    return (int32_t)(uint32_t)v.v;
}

/* ------------------------------------------------------------------------
 * Operands
 * ------------------------------------------------------------------------ */

enum opd_kind { OPD_REG, OPD_MEM, OPD_IMM };

struct operand
{
    enum opd_kind kind;
    unsigned int reg;       /* OPD_REG; base of OPD_MEM */
    struct val v;           /* OPD_IMM; displacement of OPD_MEM */
};

/* If a register name is at the cursor, consume it and return its number. */
static int try_reg(struct as *as)
{
    const char *s;
    char name[8];
    size_t n = 0;
    int r;

    skip_ws(as);
    s = as->p;
    while ( is_ident_char(s[n]) && n < sizeof(name) - 1 )
    {
        name[n] = s[n];
        n++;
    }
    name[n] = '\0';
    if ( !n || is_ident_char(s[n]) || (r = reg_number(name)) < 0 )
        return -1;
    as->p = s + n;
    return r;
}

static void parse_operand(struct as *as, struct operand *o)
{
    int r;

    memset(o, 0, sizeof(*o));
    skip_ws(as);
    if ( accept(as, '[') )
    {
        struct val zero = { 0, false };

        o->kind = OPD_MEM;
        r = try_reg(as);
        if ( r < 0 )
        {
            as_error(as, "expected a base register after '['");
            return;
        }
        o->reg = (unsigned int)r;
        o->v = expr_sum_rest(as, zero);
        expect(as, ']', "to close the memory operand");
        return;
    }
    r = try_reg(as);
    if ( r >= 0 )
    {
        o->kind = OPD_REG;
        o->reg = (unsigned int)r;
        return;
    }
    o->kind = OPD_IMM;
    o->v = expr_sum(as);
}

/* Parse the comma-separated operands of a statement; returns how many. */
static unsigned int parse_operands(struct as *as, struct operand *o,
                                   unsigned int max)
{
    unsigned int n = 0;

    if ( at_end(as) )
        return 0;
    do {
        if ( n == max )
        {
            as_error(as, "too many operands");
            return n;
        }
        parse_operand(as, &o[n++]);
    } while ( !as->rc && accept(as, ',') );
    if ( !as->rc && !at_end(as) )
        as_error(as, "unexpected '%.20s'", as->p);
    return n;
}

/* ------------------------------------------------------------------------
 * Instructions
 * ------------------------------------------------------------------------ */

enum insn_kind
{
    IK_NONE,        /* no operands */
    IK_A,           /* reg -> a */
    IK_B,           /* reg -> b */
    IK_MOV,         /* reg, reg | reg, expr */
    IK_MOVABS,      /* reg, expr: always 16 bytes */
    IK_LEA,         /* reg, [reg + disp] */
    IK_UNARY,       /* reg[, reg] */
    IK_MIX,         /* reg, reg */
    IK_ALU,         /* reg, reg|expr | reg, reg, reg|expr */
    IK_CMP,         /* reg, reg|expr */
    IK_JCC,         /* expr */
    IK_JMP,         /* expr | reg */
    IK_CALL,        /* expr | reg */
    IK_LOAD,        /* reg, [reg + disp] */
    IK_STORE,       /* [reg + disp], reg */
    IK_BULK,        /* reg, reg, reg */
};

struct insn
{
    const char *name;
    uint8_t kind;
    uint8_t op;             /* opcode, ALU operation or condition */
};

static const struct insn insns[] = {
    { "ud", IK_NONE, ISA_OP_UD },       { "nop", IK_NONE, ISA_OP_NOP },
    { "halt", IK_NONE, ISA_OP_HALT },   { "hcall", IK_NONE, ISA_OP_HCALL },
    { "ret", IK_NONE, ISA_OP_RET },     { "iret", IK_NONE, ISA_OP_IRET },
    { "rdtime", IK_A, ISA_OP_RDTIME },  { "pop", IK_A, ISA_OP_POP },
    { "push", IK_B, ISA_OP_PUSH },
    { "mov", IK_MOV, 0 },               { "movabs", IK_MOVABS, 0 },
    { "lea", IK_LEA, ISA_OP_LEA },
    { "not", IK_UNARY, ISA_OP_NOT },    { "neg", IK_UNARY, ISA_OP_NEG },
    { "mix", IK_MIX, ISA_OP_MIX },      { "ldesc", IK_MIX, ISA_OP_LDESC },
    { "add", IK_ALU, ISA_ALU_ADD },     { "sub", IK_ALU, ISA_ALU_SUB },
    { "mul", IK_ALU, ISA_ALU_MUL },     { "div", IK_ALU, ISA_ALU_DIV },
    { "rem", IK_ALU, ISA_ALU_REM },     { "idiv", IK_ALU, ISA_ALU_IDIV },
    { "irem", IK_ALU, ISA_ALU_IREM },   { "and", IK_ALU, ISA_ALU_AND },
    { "or", IK_ALU, ISA_ALU_OR },       { "xor", IK_ALU, ISA_ALU_XOR },
    { "shl", IK_ALU, ISA_ALU_SHL },     { "shr", IK_ALU, ISA_ALU_SHR },
    { "sar", IK_ALU, ISA_ALU_SAR },
    { "cmp", IK_CMP, ISA_ALU_CMP },     { "test", IK_CMP, ISA_ALU_TEST },
    { "jmp", IK_JMP, ISA_CC_ALWAYS },   { "call", IK_CALL, 0 },
    { "jeq", IK_JCC, ISA_CC_EQ },       { "je", IK_JCC, ISA_CC_EQ },
    { "jz", IK_JCC, ISA_CC_EQ },        { "jne", IK_JCC, ISA_CC_NE },
    { "jnz", IK_JCC, ISA_CC_NE },       { "jlt", IK_JCC, ISA_CC_LT },
    { "jl", IK_JCC, ISA_CC_LT },        { "jle", IK_JCC, ISA_CC_LE },
    { "jgt", IK_JCC, ISA_CC_GT },       { "jg", IK_JCC, ISA_CC_GT },
    { "jge", IK_JCC, ISA_CC_GE },       { "jb", IK_JCC, ISA_CC_B },
    { "jc", IK_JCC, ISA_CC_B },         { "jbe", IK_JCC, ISA_CC_BE },
    { "ja", IK_JCC, ISA_CC_A },         { "jae", IK_JCC, ISA_CC_AE },
    { "jnc", IK_JCC, ISA_CC_AE },
    { "ldb", IK_LOAD, ISA_OP_LDB },     { "ldw", IK_LOAD, ISA_OP_LDW },
    { "ldl", IK_LOAD, ISA_OP_LDL },     { "ldq", IK_LOAD, ISA_OP_LDQ },
    { "ldsb", IK_LOAD, ISA_OP_LDSB },   { "ldsw", IK_LOAD, ISA_OP_LDSW },
    { "ldsl", IK_LOAD, ISA_OP_LDSL },
    { "stb", IK_STORE, ISA_OP_STB },    { "stw", IK_STORE, ISA_OP_STW },
    { "stl", IK_STORE, ISA_OP_STL },    { "stq", IK_STORE, ISA_OP_STQ },
    { "fillb", IK_BULK, ISA_OP_FILLB }, { "fillq", IK_BULK, ISA_OP_FILLQ },
    { "copy", IK_BULK, ISA_OP_COPY },
};

static bool kinds_are(const struct operand *o, unsigned int n,
                      unsigned int got, const char *kinds)
{
    if ( got != n || strlen(kinds) != n )
        return false;
    for ( unsigned int i = 0; i < n; i++ )
        if ( (kinds[i] == 'r' && o[i].kind != OPD_REG) ||
             (kinds[i] == 'm' && o[i].kind != OPD_MEM) ||
             (kinds[i] == 'i' && o[i].kind != OPD_IMM) )
            return false;
    return true;
}

/* The relative displacement of a branch to target from this instruction. */
static int32_t branch_disp(struct as *as, struct val target)
{
    uint64_t d = target.v - (as->loc + ISA_INSN_SIZE);

    if ( as->pass != 2 )
        return 0;
    if ( target.v & (ISA_INSN_SIZE - 1) )
        as_error(as, "branch target %#llx is not 8-byte aligned",
                 (unsigned long long)target.v);
    else if ( !fits_s32(d) )
        as_error(as, "branch target %#llx is out of range",
                 (unsigned long long)target.v);
    return (int32_t)(uint32_t)d;
}

/* Is this `mov reg, expr` 16 bytes long?  Decided in pass 0, kept after. */
static bool mov_is_wide(struct as *as, struct val v)
{
    bool wide;

    if ( as->pass == 0 )
    {
        if ( as->nr_wide == as->wide_cap )
        {
            size_t cap = as->wide_cap ? 2 * as->wide_cap : 64;
            uint8_t *n = realloc(as->wide, cap);

            if ( !n )
            {
                as_nomem(as);
                return false;
            }
            as->wide = n;
            as->wide_cap = cap;
        }
        wide = v.undef || !fits_s32(v.v);
        as->wide[as->nr_wide++] = wide;
        return wide;
    }
    if ( as->wide_idx >= as->nr_wide )
    {
        as_error(as, "mov sizes changed between passes (assembler bug)");
        return false;
    }
    return as->wide[as->wide_idx++];
}

static void emit_movabs(struct as *as, unsigned int reg, uint64_t v)
{
    emit_insn(as, ISA_OP_MOVABS, reg, 0, 0, 0);
    emit_le(as, v, 8);
}

/* Assemble one instruction whose operands follow at the cursor. */
static void assemble_insn(struct as *as, const struct insn *in)
{
    struct operand o[3];
    unsigned int n = parse_operands(as, o, 3);
    const char *nm = in->name;

    if ( as->rc )
        return;
    switch ( in->kind )
    {
    case IK_NONE:
        if ( n )
            goto bad;
        emit_insn(as, in->op, 0, 0, 0, 0);
        return;
    case IK_A:
    case IK_B:
        if ( !kinds_are(o, 1, n, "r") )
            goto bad;
        emit_insn(as, in->op, in->kind == IK_A ? o[0].reg : 0,
                  in->kind == IK_B ? o[0].reg : 0, 0, 0);
        return;
    case IK_MOV:
        if ( kinds_are(o, 2, n, "rr") )
            emit_insn(as, ISA_OP_MOV, o[0].reg, o[1].reg, 0, 0);
        else if ( !kinds_are(o, 2, n, "ri") )
            goto bad;
        else if ( mov_is_wide(as, o[1].v) )
            emit_movabs(as, o[0].reg, o[1].v.v);
        else
            emit_insn(as, ISA_OP_MOVI, o[0].reg, 0, 0, imm32(as, o[1].v));
        return;
    case IK_MOVABS:
        if ( !kinds_are(o, 2, n, "ri") )
            goto bad;
        emit_movabs(as, o[0].reg, o[1].v.v);
        return;
    case IK_LEA:
    case IK_LOAD:
        if ( !kinds_are(o, 2, n, "rm") )
            goto bad;
        emit_insn(as, in->op, o[0].reg, o[1].reg, 0, imm32(as, o[1].v));
        return;
    case IK_STORE:
        if ( !kinds_are(o, 2, n, "mr") )
            goto bad;
        emit_insn(as, in->op, o[0].reg, o[1].reg, 0, imm32(as, o[0].v));
        return;
    case IK_UNARY:
        if ( kinds_are(o, 1, n, "r") )
            emit_insn(as, in->op, o[0].reg, o[0].reg, 0, 0);
        else if ( kinds_are(o, 2, n, "rr") )
            emit_insn(as, in->op, o[0].reg, o[1].reg, 0, 0);
        else
            goto bad;
        return;
    case IK_MIX:
        if ( !kinds_are(o, 2, n, "rr") )
            goto bad;
        emit_insn(as, in->op, o[0].reg, o[1].reg, 0, 0);
        return;
    case IK_ALU:
        if ( kinds_are(o, 2, n, "rr") )
            emit_insn(as, ISA_OP_ALU_R + in->op, o[0].reg, o[0].reg,
                      o[1].reg, 0);
        else if ( kinds_are(o, 2, n, "ri") )
            emit_insn(as, ISA_OP_ALU_I + in->op, o[0].reg, o[0].reg, 0,
                      imm32(as, o[1].v));
        else if ( kinds_are(o, 3, n, "rrr") )
            emit_insn(as, ISA_OP_ALU_R + in->op, o[0].reg, o[1].reg,
                      o[2].reg, 0);
        else if ( kinds_are(o, 3, n, "rri") )
            emit_insn(as, ISA_OP_ALU_I + in->op, o[0].reg, o[1].reg, 0,
                      imm32(as, o[2].v));
        else
            goto bad;
        return;
    case IK_CMP:
        if ( kinds_are(o, 2, n, "rr") )
            emit_insn(as, ISA_OP_ALU_R + in->op, 0, o[0].reg, o[1].reg, 0);
        else if ( kinds_are(o, 2, n, "ri") )
            emit_insn(as, ISA_OP_ALU_I + in->op, 0, o[0].reg, 0,
                      imm32(as, o[1].v));
        else
            goto bad;
        return;
    case IK_JCC:
    case IK_JMP:
    case IK_CALL:
        if ( in->kind != IK_JCC && kinds_are(o, 1, n, "r") )
            emit_insn(as, in->kind == IK_JMP ? ISA_OP_JMPR : ISA_OP_CALLR,
                      0, o[0].reg, 0, 0);
        else if ( kinds_are(o, 1, n, "i") )
            emit_insn(as, in->kind == IK_CALL ? ISA_OP_CALL
                                              : ISA_OP_JCC + in->op,
                      0, 0, 0, branch_disp(as, o[0].v));
        else
            goto bad;
        return;
    case IK_BULK:
        if ( !kinds_are(o, 3, n, "rrr") )
            goto bad;
        emit_insn(as, in->op, o[0].reg, o[1].reg, o[2].reg, 0);
        return;
    }

 bad:
    switch ( in->kind )
    {
    case IK_NONE:   as_error(as, "'%s' takes no operands", nm); break;
    case IK_A:
    case IK_B:      as_error(as, "'%s' takes one register", nm); break;
    case IK_MOV:
    case IK_MOVABS: as_error(as, "usage: %s reg, reg|value", nm); break;
    case IK_LEA:
    case IK_LOAD:   as_error(as, "usage: %s reg, [reg + disp]", nm); break;
    case IK_STORE:  as_error(as, "usage: %s [reg + disp], reg", nm); break;
    case IK_UNARY:  as_error(as, "usage: %s reg[, reg]", nm); break;
    case IK_MIX:    as_error(as, "usage: %s reg, reg", nm); break;
    case IK_ALU:
        as_error(as, "usage: %s reg, [reg,] reg|value", nm);
        break;
    case IK_CMP:    as_error(as, "usage: %s reg, reg|value", nm); break;
    case IK_JCC:    as_error(as, "usage: %s label", nm); break;
    case IK_JMP:
    case IK_CALL:   as_error(as, "usage: %s label|reg", nm); break;
    case IK_BULK:   as_error(as, "usage: %s reg, reg, reg", nm); break;
    }
}

/* ------------------------------------------------------------------------
 * Directives
 * ------------------------------------------------------------------------ */

static void dir_org(struct as *as)
{
    uint64_t v = expr_now(as, "the .org address");

    if ( as->rc )
        return;
    if ( !as->started )
        as->loc = v;
    else if ( v < as->loc )
        as_error(as, ".org %#llx moves backwards (location is %#llx)",
                 (unsigned long long)v, (unsigned long long)as->loc);
    else
        advance(as, NULL, v - as->loc);
}

static void dir_align(struct as *as)
{
    uint64_t a = expr_now(as, "the alignment");

    if ( as->rc )
        return;
    if ( !a || (a & (a - 1)) || a > (1ULL << 30) )
        as_error(as, ".align %llu: not a power of two up to 1G",
                 (unsigned long long)a);
    else
        advance(as, NULL, -as->loc & (a - 1));
}

static void dir_space(struct as *as)
{
    uint64_t n = expr_now(as, "the .space size");
    struct val fill = { 0, false };

    if ( accept(as, ',') )
        fill = expr_sum(as);
    if ( as->rc )
        return;
    if ( !fits_bytes(fill.v, 1) )
        as_error(as, ".space fill value %#llx does not fit in a byte",
                 (unsigned long long)fill.v);
    else if ( !fill.v && !fill.undef )
        advance(as, NULL, n);            /* reserved: may end up in bss */
    else if ( n > FERRY_IMAGE_MAX_SIZE )
        as_error(as, ".space %llu is larger than an image",
                 (unsigned long long)n);
    else
    {
        uint8_t chunk[256];

        memset(chunk, (int)(fill.v & 0xFF), sizeof(chunk));
        for ( uint64_t done = 0; done < n && !as->rc; done += sizeof(chunk) )
            advance(as, chunk, min(n - done, sizeof(chunk)));
    }
}

static void dir_data(struct as *as, unsigned int len, const char *name)
{
    do {
        struct val v = expr_sum(as);

        if ( as->rc )
            return;
        if ( as->pass == 2 && !fits_bytes(v.v, len) )
        {
            as_error(as, "value %#llx does not fit in %s",
                     (unsigned long long)v.v, name);
            return;
        }
        emit_le(as, v.v, len);
    } while ( accept(as, ',') );
}

static void dir_ascii(struct as *as, bool nul)
{
    do {
        skip_ws(as);
        if ( *as->p != '"' )
        {
            as_error(as, "expected a string in double quotes");
            return;
        }
        as->p++;
        while ( !as->rc && *as->p != '"' )
        {
            int c = lit_char(as, '"');

            if ( c >= 0 )
                emit_le(as, (uint64_t)c, 1);
        }
        if ( as->rc )
            return;
        as->p++;
        if ( nul )
            emit_le(as, 0, 1);
    } while ( accept(as, ',') );
}

static void dir_equ(struct as *as)
{
    char name[128];
    struct val v;

    skip_ws(as);
    if ( !is_ident_start(*as->p) )
    {
        as_error(as, "usage: .equ NAME, value");
        return;
    }
    read_ident(as, name, sizeof(name));
    expect(as, ',', "after the .equ name");
    v = expr_sum(as);
    if ( !as->rc && !v.undef )
        sym_define(as, name, v.v, false);
}

static void dir_entry(struct as *as)
{
    struct val v = expr_sum(as);

    if ( as->pass == 2 && !as->rc )
    {
        if ( as->have_entry )
        {
            as_error(as, ".entry given twice (first on line %u)",
                     as->entry_line);
            return;
        }
        as->have_entry = true;
        as->entry = v.v;
        as->entry_line = as->line;
    }
}

static void run_source(struct as *as, const char *src);

char *ferry_as_read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int saved;

    if ( !f )
        return NULL;
    for ( ;; )
    {
        if ( len + 4096 + 1 > cap )
        {
            char *n = realloc(buf, cap = (cap ? cap * 2 : 8192));

            if ( !n )
                goto fail;
            buf = n;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);

        len += got;
        if ( got == 0 )
            break;
    }
    if ( ferror(f) )
        goto fail;
    fclose(f);
    buf[len] = '\0';
    return buf;
 fail:
    /* The caller reports errno: keep fread's or realloc's. */
    saved = errno;
    fclose(f);
    free(buf);
    errno = saved;
    return NULL;
}

/*
 * .include "file": assemble another file in place, as if its lines stood
 * here.  A relative name is looked up next to the including file.  The
 * file is read again in every pass; messages name it and its own lines.
 */
static void dir_include(struct as *as)
{
    char name[1024], path[2048];
    size_t n = 0;
    const char *slash, *saved_file = as->file, *saved_p;
    unsigned int saved_line = as->line;
    char *src;

    skip_ws(as);
    if ( *as->p != '"' )
    {
        as_error(as, "usage: .include \"file\"");
        return;
    }
    as->p++;
    while ( !as->rc && *as->p != '"' )
    {
        int c = lit_char(as, '"');

        if ( c > 0 && n + 1 < sizeof(name) )
            name[n++] = (char)c;
    }
    if ( as->rc )
        return;
    as->p++;
    name[n] = '\0';
    if ( as->depth >= 8 )
    {
        as_error(as, ".include nested too deeply (at \"%s\")", name);
        return;
    }
    slash = strrchr(as->file, '/');
    if ( name[0] != '/' && slash )
        snprintf(path, sizeof(path), "%.*s/%s",
                 (int)(slash - as->file), as->file, name);
    else
        snprintf(path, sizeof(path), "%s", name);
    src = ferry_as_read_file(path);
    if ( !src )
    {
        as_error(as, "cannot read included file %s: %s", path,
                 strerror(errno));
        return;
    }
    saved_p = as->p;
    as->depth++;
    as->file = path;
    as->line = 0;
    run_source(as, src);
    free(src);
    as->depth--;
    /* An error message already names the included file and its line. */
    as->file = saved_file;
    as->line = saved_line;
    as->p = saved_p;
}

static void directive(struct as *as, const char *name)
{
    if ( !strcmp(name, ".org") )
        dir_org(as);
    else if ( !strcmp(name, ".align") )
        dir_align(as);
    else if ( !strcmp(name, ".space") || !strcmp(name, ".skip") )
        dir_space(as);
    else if ( !strcmp(name, ".quad") )
        dir_data(as, 8, ".quad");
    else if ( !strcmp(name, ".long") )
        dir_data(as, 4, ".long");
    else if ( !strcmp(name, ".word") )
        dir_data(as, 2, ".word");
    else if ( !strcmp(name, ".byte") )
        dir_data(as, 1, ".byte");
    else if ( !strcmp(name, ".ascii") )
        dir_ascii(as, false);
    else if ( !strcmp(name, ".asciz") )
        dir_ascii(as, true);
    else if ( !strcmp(name, ".equ") || !strcmp(name, ".set") )
        dir_equ(as);
    else if ( !strcmp(name, ".entry") )
        dir_entry(as);
    else if ( !strcmp(name, ".include") )
        dir_include(as);
    else
    {
        as_error(as, "unknown directive '%s'", name);
        return;
    }
    if ( !as->rc && !at_end(as) )
        as_error(as, "unexpected '%.20s'", as->p);
}

/* ------------------------------------------------------------------------
 * Statements and passes
 * ------------------------------------------------------------------------ */

static const struct insn *find_insn(const char *name)
{
    for ( size_t i = 0; i < sizeof(insns) / sizeof(insns[0]); i++ )
        if ( !strcasecmp(insns[i].name, name) )
            return &insns[i];
    return NULL;
}

/* One line: labels, then a directive or an instruction, then a comment. */
static void statement(struct as *as)
{
    char name[128];
    const struct insn *in;

    for ( ;; )
    {
        if ( at_end(as) )
            return;
        if ( !is_ident_start(*as->p) )
        {
            as_error(as, "unexpected '%.20s'", as->p);
            return;
        }
        read_ident(as, name, sizeof(name));
        if ( as->rc )
            return;
        if ( !accept(as, ':') )
            break;
        sym_define(as, name, as->loc, true);
        if ( as->rc )
            return;
    }
    if ( name[0] == '.' )
    {
        directive(as, name);
        return;
    }
    in = find_insn(name);
    if ( !in )
    {
        as_error(as, "unknown instruction '%s'", name);
        return;
    }
    assemble_insn(as, in);
}

/* The lines of one source text; lines are copied so they end in a NUL. */
static void run_source(struct as *as, const char *src)
{
    char *line = NULL;
    size_t cap = 0;

    while ( *src && !as->rc )
    {
        const char *nl = strchr(src, '\n');
        size_t len = nl ? (size_t)(nl - src) : strlen(src);

        if ( len + 1 > cap )
        {
            char *n = realloc(line, len + 1);

            if ( !n )
            {
                as_nomem(as);
                break;
            }
            line = n;
            cap = len + 1;
        }
        memcpy(line, src, len);
        line[len] = '\0';
        as->line++;
        if ( memchr(line, '\0', len) )
        {
            as_error(as, "NUL byte in the source");
            break;
        }
        as->p = line;
        statement(as);
        src += len + (nl ? 1 : 0);
    }
    free(line);
}

/* One pass over the program. */
static void run_pass(struct as *as, const char *src, unsigned int pass)
{
    as->pass = pass;
    as->started = false;
    as->loc = as->base = as->end = as->emit_end = AS_DEFAULT_BASE;
    as->wide_idx = 0;
    as->have_entry = false;
    as->line = 0;
    run_source(as, src);
}

/* After the last pass: the image and its entry point. */
static void finish(struct as *as, struct ferry_image *out)
{
    out->base = as->base;
    out->size = as->emit_end - as->base;
    out->bss_size = as->end - as->emit_end;
    out->isa_version = FERRY_ISA_VERSION;
    out->entry = as->have_entry ? as->entry : as->base;
    as->line = as->have_entry ? as->entry_line : 0;     /* for messages */
    if ( !out->size )
        as_error(as, "the program is empty");
    else if ( (out->entry & (ISA_INSN_SIZE - 1)) || out->entry < out->base ||
              out->entry - out->base >= out->size )
        as_error(as, "entry point %#llx is not an aligned address inside "
                 "the image [%#llx, %#llx)",
                 (unsigned long long)out->entry,
                 (unsigned long long)out->base,
                 (unsigned long long)(out->base + out->size));
    if ( as->rc )
        return;
    out->bytes = as->buf;
    as->buf = NULL;
}

int ferry_as_assemble(const char *src, const char *filename,
                      struct ferry_image *out, char *err, size_t errlen)
{
    struct as as;

    memset(&as, 0, sizeof(as));
    as.file = filename ? filename : "<input>";
    as.err = err;
    as.errlen = errlen;
    if ( errlen )
        err[0] = '\0';
    ferry_image_dispose(out);

    for ( unsigned int pass = 0; pass < 3 && !as.rc; pass++ )
        run_pass(&as, src, pass);
    if ( !as.rc )
        finish(&as, out);

    for ( size_t i = 0; i < as.nr_syms; i++ )
        free(as.syms[i].name);
    free(as.syms);
    free(as.wide);
    free(as.buf);
    if ( as.rc )
        ferry_image_dispose(out);
    return as.rc;
}

void ferry_image_dispose(struct ferry_image *img)
{
    free(img->bytes);
    memset(img, 0, sizeof(*img));
}

/* ------------------------------------------------------------------------
 * The image file
 * ------------------------------------------------------------------------ */

static void put_le(uint8_t *p, uint64_t v, unsigned int len)
{
    for ( unsigned int i = 0; i < len; i++, v >>= 8 )
        p[i] = (uint8_t)v;
}

static uint64_t get_le(const uint8_t *p, unsigned int len)
{
    uint64_t v = 0;

    while ( len-- )
        v = (v << 8) | p[len];
    return v;
}

int ferry_image_write(const struct ferry_image *img, uint8_t **buf,
                      size_t *len)
{
    size_t n = FERRY_IMAGE_HEADER_SIZE + img->size;
    uint8_t *b = calloc(1, n);

    if ( !b )
        return -ENOMEM;
    memcpy(b, FERRY_IMAGE_MAGIC, 8);
    put_le(b + offsetof(struct ferry_image_header, version),
           FERRY_IMAGE_VERSION, 4);
    put_le(b + offsetof(struct ferry_image_header, header_size),
           FERRY_IMAGE_HEADER_SIZE, 4);
    put_le(b + offsetof(struct ferry_image_header, base), img->base, 8);
    put_le(b + offsetof(struct ferry_image_header, entry), img->entry, 8);
    put_le(b + offsetof(struct ferry_image_header, image_size), img->size, 8);
    put_le(b + offsetof(struct ferry_image_header, bss_size), img->bss_size,
           8);
    put_le(b + offsetof(struct ferry_image_header, isa_version),
           img->isa_version, 4);
    if ( img->size )
        memcpy(b + FERRY_IMAGE_HEADER_SIZE, img->bytes, img->size);
    *buf = b;
    *len = n;
    return 0;
}

#define HDR(b, field, len) \
    get_le((b) + offsetof(struct ferry_image_header, field), (len))

static int image_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int image_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if ( errlen )
    {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

int ferry_image_parse(const void *buf, size_t len, struct ferry_image *out,
                      char *err, size_t errlen)
{
    const uint8_t *b = buf;
    uint64_t base, entry, size, bss;
    uint32_t ver, hsize, isa, flags;

    ferry_image_dispose(out);
    if ( len < FERRY_IMAGE_HEADER_SIZE || memcmp(b, FERRY_IMAGE_MAGIC, 8) )
        return image_error(err, errlen, "not a ferry image (bad magic)");
    ver = HDR(b, version, 4);
    hsize = HDR(b, header_size, 4);
    base = HDR(b, base, 8);
    entry = HDR(b, entry, 8);
    size = HDR(b, image_size, 8);
    bss = HDR(b, bss_size, 8);
    isa = HDR(b, isa_version, 4);
    flags = HDR(b, flags, 4);
    if ( ver != FERRY_IMAGE_VERSION )
        return image_error(err, errlen, "image format version %u, expected %u",
                           ver, FERRY_IMAGE_VERSION);
    if ( hsize != FERRY_IMAGE_HEADER_SIZE )
        return image_error(err, errlen, "image header size %u, expected %u",
                           hsize, FERRY_IMAGE_HEADER_SIZE);
    if ( isa > FERRY_ISA_VERSION )
        return image_error(err, errlen, "image needs ISA version %u, this is "
                           "version %u", isa, FERRY_ISA_VERSION);
    if ( flags || HDR(b, reserved, 8) )
        return image_error(err, errlen, "image header has unknown flags or "
                           "non-zero reserved fields");
    if ( size > FERRY_IMAGE_MAX_SIZE || size != len - FERRY_IMAGE_HEADER_SIZE )
        return image_error(err, errlen, "image size %llu does not match the "
                           "%zu bytes after the header",
                           (unsigned long long)size,
                           len - FERRY_IMAGE_HEADER_SIZE);
    if ( base + size < base || base + size + bss < base + size )
        return image_error(err, errlen, "image wraps past the end of the "
                           "address space");
    if ( (entry & (ISA_INSN_SIZE - 1)) || entry < base ||
         entry - base >= size )
        return image_error(err, errlen, "entry point %#llx is not an aligned "
                           "address inside the image",
                           (unsigned long long)entry);
    out->bytes = malloc(size);
    if ( !out->bytes )
        return -ENOMEM;
    memcpy(out->bytes, b + FERRY_IMAGE_HEADER_SIZE, size);
    out->size = size;
    out->base = base;
    out->entry = entry;
    out->bss_size = bss;
    out->isa_version = isa;
    return 0;
}
