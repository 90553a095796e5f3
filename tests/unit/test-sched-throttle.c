/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the migration throttle (domain_set_throttle and
 * sched_throttle_charge in hypervisor/vcpu.c), the scheduler cap that a
 * live migration sets while pre-copy does not converge.
 *
 * The account is checked on a simulated clock, where the share is exact:
 * a vCPU throttled p% runs (100 - p)% of the time, and one unthrottled
 * is never parked.  Then a real runner: a guest vCPU spinning in a loop
 * gets at most its capped share of the wall clock while throttled, and
 * runs again when the throttle is lifted.  Lifting happens where a
 * migration ends: log-dirty switched off, or the domain resumed.
 */
#include <time.h>

#include "hvtest.h"
#include "isa.h"

#define MS 1000000ULL

/*
 * Run a vCPU on a simulated clock for wall_ns in steps of step_ns,
 * parking it whenever the account says so; the ns it ran.
 */
static uint64_t simulate(unsigned int pct, uint64_t step_ns, uint64_t wall_ns,
                         unsigned int *parks)
{
    struct sched_throttle t = { 0 };
    uint64_t now = 0, ran = 0;

    *parks = 0;
    while ( now < wall_ns )
    {
        uint64_t until;

        now += step_ns;
        ran += step_ns;
        until = sched_throttle_charge(&t, pct, now, step_ns);
        if ( until )
        {
            ASSERT(until > now - step_ns);
            (*parks)++;
            now = until > now ? until : now;
        }
    }
    return ran;
}

TEST(throttled_vcpu_gets_the_capped_share)
{
    static const unsigned int pcts[] = { 20, 50, 80, 99 };
    unsigned int parks;

    for ( unsigned int i = 0; i < ARRAY_SIZE(pcts); i++ )
    {
        /* 100 us steps over 10 s of simulated time. */
        uint64_t ran = simulate(pcts[i], 100000, 10000 * MS, &parks);
        uint64_t want = 10000 * MS * (100 - pcts[i]) / 100;

        DIAG("throttle %u%%: ran %llu ns of 10 s, %u parks", pcts[i],
             (unsigned long long)ran, parks);
        /* Within one step per period of the cap. */
        ASSERT(ran <= want + want / 50 + 200000);
        ASSERT(ran + want / 50 + 200000 >= want);
        ASSERT(parks > 0);
    }
}

TEST(a_step_longer_than_the_budget_is_carried_over)
{
    unsigned int parks;
    /* 7 ms steps against a 1 ms budget (90%): the overrun is owed. */
    uint64_t ran = simulate(90, 7 * MS, 10000 * MS, &parks);

    DIAG("throttle 90%% with 7 ms steps: ran %llu ns of 10 s, %u parks",
         (unsigned long long)ran, parks);
    ASSERT(ran <= 1000 * MS + 14 * MS);
    ASSERT(ran + 14 * MS >= 1000 * MS);
}

TEST(unthrottled_vcpu_is_never_parked_and_lifting_forgets_the_debt)
{
    struct sched_throttle t = { 0 };
    unsigned int parks;

    ASSERT_EQ(simulate(0, 100000, 1000 * MS, &parks), 1000 * MS);
    ASSERT_EQ(parks, 0);
    /* Deep in debt at 99%, then lifted: it runs at once, owing nothing. */
    ASSERT(sched_throttle_charge(&t, 99, 50 * MS, 50 * MS));
    ASSERT_EQ(sched_throttle_charge(&t, 0, 51 * MS, MS), 0);
    ASSERT_EQ(t.ran, 0);
    ASSERT_EQ(sched_throttle_charge(&t, 99, 51 * MS + 1000, 1000), 0);
}

TEST(set_throttle_bounds_and_where_it_is_lifted)
{
    struct domain *d;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(16, 1);
    set_current(host.dom0->vcpu[0]);
    ASSERT_EQ(domain_set_throttle(d, SCHED_THROTTLE_MAX + 1), -EINVAL);
    ASSERT_EQ(atomic_load(&d->throttle_pct), 0);
    ASSERT_EQ(domain_set_throttle(d, 40), 0);
    ASSERT_EQ(atomic_load(&d->throttle_pct), 40);
    ASSERT(hvtest_log_has("d%u: vCPU throttle 40%% (was 0%%)", d->domain_id));

    /* Log-dirty off ends a migration, whoever did it or did not. */
    {
        struct xen_domctl_shadow_op sc = {
            .op = XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY,
        };

        ASSERT_EQ(domctl_shadow_op(d, &sc), 0);
        ASSERT_EQ(atomic_load(&d->throttle_pct), 40);
        sc.op = XEN_DOMCTL_SHADOW_OP_OFF;
        ASSERT_EQ(domctl_shadow_op(d, &sc), 0);
        ASSERT_EQ(atomic_load(&d->throttle_pct), 0);
    }
    /* So does resuming the source after a failed migration. */
    ASSERT_EQ(domain_set_throttle(d, 99), 0);
    ASSERT_EQ(domctl_resumedomain(d), 0);
    ASSERT_EQ(atomic_load(&d->throttle_pct), 0);
    hvtest_destroy(d);
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * A real runner
 * ------------------------------------------------------------------------ */

#define VA(n) ((uint64_t)(n) << PAGE_SHIFT)

/* vCPU 0 of d spins at VA(0) (jmpr rbx, rbx = VA(0)) on its own tables. */
static void build_spinner(struct domain *d)
{
    mfn_t l4 = hvtest_frame(d, 0x100), l3 = hvtest_frame(d, 0x101);
    mfn_t l2 = hvtest_frame(d, 0x102), l1 = hvtest_frame(d, 0x103);
    mfn_t code = hvtest_frame(d, 0x104);
    uint64_t *w = map_domain_page(code);
    struct vcpu *v = d->vcpu[0];

    hv_frame_written(code);         /* as the domain builder's write is */
    w[0] = isa_encode(ISA_OP_JMPR, 0, ISA_RBX, 0, 0);
    hvtest_write_pte(l4, 0, hvtest_pte(l3, _PAGE_RW | _PAGE_USER));
    hvtest_write_pte(l3, 0, hvtest_pte(l2, _PAGE_RW | _PAGE_USER));
    hvtest_write_pte(l2, 0, hvtest_pte(l1, _PAGE_RW | _PAGE_USER));
    hvtest_write_pte(l1, 0, hvtest_pte(code, 0));
    hvtest_as(d, 0);
    ASSERT_EQ(hvtest_mmuext(MMUEXT_PIN_L4_TABLE, l4), 0);
    ASSERT_EQ(new_guest_cr3(l4), 0);
    v->ctxt.user_regs.rip = VA(0);
    v->ctxt.user_regs.rbx = VA(0);
    v->is_initialised = true;
    atomic_store(&v->is_down, false);
    atomic_store(&v->blocked, false);
}

/* The share of the wall clock vCPU 0 of d ran during the next ms ms. */
static double share(struct domain *d, unsigned int ms)
{
    struct vcpu *v = d->vcpu[0];
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    uint64_t c0 = atomic_load(&v->cpu_time), t0 = hv_system_time(), c1, t1;

    nanosleep(&ts, NULL);
    c1 = atomic_load(&v->cpu_time);
    t1 = hv_system_time();
    return (double)(c1 - c0) / (double)(t1 - t0);
}

TEST_TIMEOUT(runner_keeps_to_the_cap_and_runs_again_when_lifted, 60)
{
    struct domain *d;
    double before, throttled, lifted;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(16, 1);
    build_spinner(d);
    set_current(host.dom0->vcpu[0]);
    ASSERT_EQ(domctl_unpausedomain(d), 0);

    before = share(d, 300);
    ASSERT_EQ(domain_set_throttle(d, 95), 0);
    share(d, 50);                       /* the old period's end */
    /*
     * The account charges each step's wall time, so a step during which
     * the host descheduled our runner counts whole against one window:
     * the best of three windows keeps such a hiccup out, while a broken
     * cap shows in all three.
     */
    throttled = share(d, 400);
    for ( unsigned int i = 0; i < 2; i++ )
    {
        double s = share(d, 400);

        if ( s < throttled )
            throttled = s;
    }
    ASSERT_EQ(domain_set_throttle(d, 0), 0);
    lifted = share(d, 300);
    DIAG("share of the wall clock: %.3f unthrottled, %.3f throttled 95%%,"
         " %.3f lifted", before, throttled, lifted);
    /* The cap is 5%; a step may overrun a period by its length. */
    ASSERT(throttled <= 0.08);
    /* Lifted, it is no longer held to the cap (on a loaded machine the
     * host scheduler alone decides how far above it). */
    ASSERT(lifted > 2 * throttled && lifted > 0.1);

    ASSERT_EQ(domctl_pausedomain(d), 0);
    hvtest_destroy(d);
    hvtest_done();
}
