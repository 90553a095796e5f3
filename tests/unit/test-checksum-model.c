/* SPDX-License-Identifier: MIT */
/*
 * A model of the checksum guest (guests/checksum.s, ferry-guests(7)) on
 * flat memory, with no hypervisor and no assembler: the reference for
 * the results the tests expect of the real guest.
 *
 * It is written from the guest's description, not from ferry's sources:
 * mix() is the `mix` instruction as ferry-isa(7) defines it; memory is an
 * array of pages indexed by PFN - first_free; the guest's private
 * page-table tree is four arrays (the data page each L1 entry names, the
 * L1 table each L2 entry names, the L2 table each L3 entry names, the L3
 * table L4[1] names), and a slot's VA is resolved through them as the
 * hardware walk resolves the guest's loads and stores.  Beside the
 * tables the model keeps the guest's shadow of them, from which the guest
 * computes which entries to change; the two agree unless a test breaks
 * the tables, as a wrong restore would.
 *
 * tests/checksum-results lists the guest's results for the step counts
 * the tests run.  The shell tests take their expectations from it
 * (lib.sh: checksum_expect), t0005 compares the real guest on a real
 * ferry-hv with it, and checksum_reference_model_* here computes every
 * line with the model, so no expected value is one recorded from a ferry
 * run.  When the guest changes, change the model with it and take the new
 * results from this test's diagnostics.
 *
 * checksum_upper_levels_* show, on the model, what the guest's
 * upper-level changes are for: pointing any one L2, L3 or L4 entry of
 * the live tree at another table of its level, or putting back the upper
 * levels of an earlier moment, changes the result (t0017 does the latter
 * to a real save file).
 */
#include <errno.h>

#include "harness.h"

#define NDATA       256                 /* data pages (slots) */
#define QWORDS      512                 /* quadwords in a page */
#define NL1         8                   /* L1 tables, 32 slots each */
#define L1_ENTRIES  32
#define NL2         2                   /* L2 tables, 4 L1 tables each */
#define L2_ENTRIES  4
#define NL3         2                   /* L3 tables, 2 L2 tables each */
#define L3_ENTRIES  2
#define WIN_PAGE    NDATA               /* the window's own (zeroed) page */
#define SEED        0x243F6A8885A308D3ULL

/* Where the results and the manual page are. */
#ifndef FERRY_TOP_SRCDIR
#define FERRY_TOP_SRCDIR "."
#endif
#define RESULTS_FILE FERRY_TOP_SRCDIR "/tests/checksum-results"
#define GUESTS_MAN   FERRY_TOP_SRCDIR "/man/ferry-guests.7"

/* The step counts the integration tests run. */
static const uint64_t steps_used[] = { 100000, 1000000, 3000000 };

struct tree
{
    unsigned int l1[NL1][L1_ENTRIES];   /* data page */
    unsigned int l2[NL2][L2_ENTRIES];   /* L1 table */
    unsigned int l3[NL3][L3_ENTRIES];   /* L2 table */
    unsigned int l4;                    /* L3 table in L4[1] */
};

struct model
{
    uint64_t mem[NDATA + 1][QWORDS];
    struct tree t;                      /* the page tables */
    struct tree shadow;                 /* the guest's idea of them */
    unsigned int win;                   /* the page the window maps */
    uint64_t h;
    unsigned int upper_ops[4];          /* how often each change ran */
};

/* ferry-isa(7), mix a, b. */
static uint64_t mix(uint64_t a, uint64_t b)
{
    uint64_t x = (a ^ b) * 0x9E3779B97F4A7C15ULL;

    return x ^ (x >> 29);
}

static void swap_u(unsigned int *a, unsigned int *b)
{
    unsigned int t = *a;

    *a = *b;
    *b = t;
}

/* The page slot @s reaches: L4[1] -> L3 -> L2 -> L1, as the VA says. */
static unsigned int resolve(const struct tree *t, unsigned int s)
{
    unsigned int l2 = t->l3[t->l4][s >> 7];
    unsigned int l1 = t->l2[l2][(s >> 5) & 3];

    return t->l1[l1][s & 31];
}

static void model_init(struct model *m)
{
    uint64_t x = SEED;
    unsigned int i, j;

    memset(m, 0, sizeof(*m));
    for ( i = 0; i < NL1; i++ )
        for ( j = 0; j < L1_ENTRIES; j++ )
            m->t.l1[i][j] = i * L1_ENTRIES + j;
    for ( i = 0; i < NL2; i++ )
        for ( j = 0; j < L2_ENTRIES; j++ )
            m->t.l2[i][j] = i * L2_ENTRIES + j;
    for ( i = 0; i < NL3; i++ )
        for ( j = 0; j < L3_ENTRIES; j++ )
            m->t.l3[i][j] = i ^ j;
    m->t.l4 = 0;
    m->shadow = m->t;
    m->win = WIN_PAGE;

    for ( i = 0; i < NDATA * QWORDS; i++ )
    {
        x = mix(x, i);
        m->mem[resolve(&m->t, i / QWORDS)][i % QWORDS] = x;
    }
}

/*
 * Swap L1 entries: the guest finds each slot's entry through its shadow,
 * reads both entries from the tables and writes each into the other.
 */
static void swap_l1(struct model *m, uint64_t x)
{
    unsigned int a = (x >> 40) % NDATA, b = (x >> 50) % NDATA;
    unsigned int la, lb;

    if ( a == b )
        b = (a + 1) % NDATA;
    la = m->shadow.l2[m->shadow.l3[m->shadow.l4][a >> 7]][(a >> 5) & 3];
    lb = m->shadow.l2[m->shadow.l3[m->shadow.l4][b >> 7]][(b >> 5) & 3];
    swap_u(&m->t.l1[la][a & 31], &m->t.l1[lb][b & 31]);
}

/* One change of an upper level, chosen by x as the guest chooses it. */
static void change_upper(struct model *m, uint64_t x)
{
    unsigned int op = (x >> 40) & 3, p, q;

    m->upper_ops[op]++;
    switch ( op )
    {
    case 0:
    case 1:
        p = (x >> 42) & 7;
        q = p ^ (1 + (unsigned int)((x >> 45) % 7));
        swap_u(&m->shadow.l2[p / 4][p % 4], &m->shadow.l2[q / 4][q % 4]);
        swap_u(&m->t.l2[p / 4][p % 4], &m->t.l2[q / 4][q % 4]);
        break;
    case 2:
        for ( p = 0; p < NL3; p++ )
        {
            swap_u(&m->shadow.l3[p][0], &m->shadow.l3[p][1]);
            swap_u(&m->t.l3[p][0], &m->t.l3[p][1]);
        }
        break;
    case 3:
        m->shadow.l4 ^= 1;
        m->t.l4 = m->shadow.l4;
        break;
    }
}

/* Steps [from, to). */
static void model_run(struct model *m, uint64_t from, uint64_t to)
{
    uint64_t n, x;
    unsigned int page;

    for ( n = from; n < to; n++ )
    {
        x = mix(n, m->h);
        page = resolve(&m->t, x % NDATA);
        m->h = mix(m->h, m->mem[page][(x >> 20) % QWORDS]);
        m->mem[page][(x >> 32) % QWORDS] = m->h;
        if ( n % 64 == 63 )
        {
            m->win = (m->h >> 8) % NDATA;
            m->h = mix(m->h, m->mem[m->win][m->h % QWORDS]);
            m->mem[m->win][(m->h + 7) % QWORDS] = m->h;
        }
        if ( n % 1024 == 511 )
            change_upper(m, x);
        if ( n % 1024 == 1023 )
            swap_l1(m, x);
    }
}

static uint64_t model_finish(struct model *m)
{
    uint64_t h = m->h;
    unsigned int s, q;

    for ( s = 0; s < NDATA; s++ )
        for ( q = 0; q < QWORDS; q++ )
            h = mix(h, m->mem[resolve(&m->t, s)][q]);
    for ( q = 0; q < QWORDS; q++ )
        h = mix(h, m->mem[m->win][q]);
    return h;
}

static uint64_t checksum_model(uint64_t steps)
{
    struct model *m = malloc(sizeof(*m));
    uint64_t r;

    ASSERT(m);
    model_init(m);
    model_run(m, 0, steps);
    r = model_finish(m);
    free(m);
    return r;
}

/* ---------------------------------------------------------------------
 * The results the tests expect
 * --------------------------------------------------------------------- */

struct result
{
    uint64_t steps, value;
};

/*
 * The "STEPS RESULT" lines of tests/checksum-results (# starts a
 * comment); at most @max.
 */
static unsigned int read_results(struct result *r, unsigned int max)
{
    FILE *f = fopen(RESULTS_FILE, "r");
    char line[256];
    unsigned int n = 0;

    if ( !f )
        FAIL("cannot open %s: %s", RESULTS_FILE, strerror(errno));
    while ( fgets(line, sizeof(line), f) )
    {
        unsigned long long s, v;
        char end;

        if ( line[0] == '#' || line[0] == '\n' )
            continue;
        if ( sscanf(line, "%llu %16llx%c", &s, &v, &end) != 3 ||
             end != '\n' )
            FAIL("%s: not \"STEPS RESULT\": %s", RESULTS_FILE, line);
        ASSERT(n < max);
        r[n].steps = s;
        r[n].value = v;
        n++;
    }
    fclose(f);
    return n;
}

TEST_TIMEOUT(checksum_reference_model_gives_the_expected_results, 120)
{
    struct result r[16];
    unsigned int n = read_results(r, 16), i, k;
    uint64_t got;

    for ( k = 0; k < sizeof(steps_used) / sizeof(steps_used[0]); k++ )
    {
        for ( i = 0; i < n && r[i].steps != steps_used[k]; i++ )
            ;
        if ( i == n )
            FAIL("%s has no result for steps=%" PRIu64, RESULTS_FILE,
                 steps_used[k]);
    }
    for ( i = 0; i < n; i++ )
    {
        got = checksum_model(r[i].steps);
        DIAG("%" PRIu64 " %016" PRIx64, r[i].steps, got);
        ASSERT_HEX(got, r[i].value);
    }
}

/* The table of results in ferry-guests(7): "STEPS<tab>RESULT" rows. */
TEST_TIMEOUT(checksum_reference_model_agrees_with_ferry_guests_7, 120)
{
    struct result r[16];
    unsigned int n = read_results(r, 16), rows = 0, i;
    FILE *f = fopen(GUESTS_MAN, "r");
    char line[256];

    if ( !f )
        FAIL("cannot open %s: %s", GUESTS_MAN, strerror(errno));
    while ( fgets(line, sizeof(line), f) )
    {
        unsigned long long s, v;
        char end;

        if ( sscanf(line, "%llu\t%16llx%c", &s, &v, &end) != 3 ||
             end != '\n' )
            continue;
        rows++;
        for ( i = 0; i < n && r[i].steps != s; i++ )
            ;
        if ( i == n )
            FAIL("ferry-guests(7) lists steps=%llu, %s does not", s,
                 RESULTS_FILE);
        ASSERT_HEX(v, r[i].value);
        ASSERT_HEX(checksum_model(s), v);
    }
    fclose(f);
    ASSERT(rows >= 3);
}

/* The model really changes every level, and tracks its tables. */
TEST(checksum_reference_model_changes_every_level)
{
    struct model *m = malloc(sizeof(*m));
    struct tree boot;

    ASSERT(m);
    model_init(m);
    boot = m->t;
    model_run(m, 0, 100000);
    DIAG("upper-level changes: L2 %u, L3 %u, L4 %u",
         m->upper_ops[0] + m->upper_ops[1], m->upper_ops[2],
         m->upper_ops[3]);
    ASSERT(m->upper_ops[0] + m->upper_ops[1] > 20);
    ASSERT(m->upper_ops[2] > 10);
    ASSERT(m->upper_ops[3] > 10);
    ASSERT(memcmp(boot.l1, m->t.l1, sizeof(boot.l1)));
    ASSERT(memcmp(boot.l2, m->t.l2, sizeof(boot.l2)));
    ASSERT(!memcmp(m->t.l2, m->shadow.l2, sizeof(m->t.l2)));
    ASSERT(!memcmp(m->t.l3, m->shadow.l3, sizeof(m->t.l3)));
    ASSERT_EQ(m->t.l4, m->shadow.l4);
    free(m);
}

/* ---------------------------------------------------------------------
 * What a wrong upper level does
 * --------------------------------------------------------------------- */

/* A suspend point: the guest checks for control requests after these. */
#define SAVE_AT(k) ((uint64_t)(k) * 4096)

#define RUN_STEPS 100000

enum wrong
{
    WRONG_L2,                           /* an L2 entry names another L1 */
    WRONG_L3,                           /* an L3 entry names another L2 */
    WRONG_L4,                           /* L4[1] names the other L3 */
    WRONG_STALE,                        /* every upper level of an earlier
                                           moment */
};

/*
 * Run to RUN_STEPS, "restored" at step @at with the upper levels broken
 * as @how says (the guest's shadow keeps what it wrote, as its memory
 * would), and return the result.
 */
static uint64_t run_restored_wrong(uint64_t at, enum wrong how)
{
    struct model *m = malloc(sizeof(*m));
    struct tree early;
    uint64_t r;

    ASSERT(m);
    model_init(m);
    model_run(m, 0, at / 2);
    early = m->t;
    model_run(m, at / 2, at);
    switch ( how )
    {
    case WRONG_L2:
        m->t.l2[1][2] = m->t.l2[0][0];
        break;
    case WRONG_L3:
        m->t.l3[m->t.l4][1] = m->t.l3[m->t.l4][0];
        break;
    case WRONG_L4:
        m->t.l4 ^= 1;
        break;
    case WRONG_STALE:
        ASSERT(memcmp(early.l2, m->t.l2, sizeof(early.l2)));
        memcpy(m->t.l2, early.l2, sizeof(early.l2));
        memcpy(m->t.l3, early.l3, sizeof(early.l3));
        m->t.l4 = early.l4;
        break;
    }
    model_run(m, at, RUN_STEPS);
    r = model_finish(m);
    free(m);
    return r;
}

TEST_TIMEOUT(checksum_upper_levels_a_wrong_entry_changes_the_result, 60)
{
    uint64_t good = checksum_model(RUN_STEPS);
    unsigned int k;

    for ( k = 1; k < RUN_STEPS / 4096; k += 5 )
    {
        ASSERT_NE(run_restored_wrong(SAVE_AT(k), WRONG_L2), good);
        ASSERT_NE(run_restored_wrong(SAVE_AT(k), WRONG_L3), good);
        ASSERT_NE(run_restored_wrong(SAVE_AT(k), WRONG_L4), good);
    }
}

TEST_TIMEOUT(checksum_upper_levels_stale_tables_change_the_result, 60)
{
    uint64_t good = checksum_model(RUN_STEPS);
    unsigned int k;

    for ( k = 2; k < RUN_STEPS / 4096; k += 3 )
        ASSERT_NE(run_restored_wrong(SAVE_AT(k), WRONG_STALE), good);
}
