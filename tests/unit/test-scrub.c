/* SPDX-License-Identifier: MIT */
/*
 * Scrubbing freed memory (issue 10; issue 11 for its cost): freeing marks
 * a frame that may hold data PGC_need_scrub, the background scrubber or
 * the allocation that takes the frame next zeroes it (host.c), and no
 * frame the heap hands out ever holds an earlier owner's data.  The
 * domains here write their frames as a guest does (the write recorded by
 * hv_frame_written), then are destroyed or give frames back; whatever is
 * allocated afterwards, alone or racing the scrubber from several
 * threads, must read as zero.
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "hvtest.h"

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

static void host_with_scrubber(bool background)
{
    struct host_params p = {
        .memory_bytes = (uint64_t)HVTEST_MEM_MB << 20,
        .nr_control_vcpus = 2,
        .scrub_background = background,
    };
    int rc = host_init(&p);

    if ( rc )
        FAIL("host_init: %d", rc);
    set_current(host.dom0->vcpu[0]);
}

/* The first non-zero byte's offset in the frame, or -1. */
static long first_data(mfn_t mfn)
{
    const uint64_t *p = map_domain_page(mfn);

    for ( unsigned int i = 0; i < PAGE_SIZE / 8; i++ )
        if ( __atomic_load_n(&p[i], __ATOMIC_RELAXED) )
            return (long)i * 8;
    return -1;
}

/* Write a pattern into mfn as a guest would: recorded first. */
static void guest_write(mfn_t mfn, uint8_t fill)
{
    hv_frame_written(mfn);
    memset(map_domain_page(mfn), fill, PAGE_SIZE);
}

/*
 * A domain with nr frames, every one written with a non-zero pattern, and
 * room for one more.
 */
static struct domain *written_domain(unsigned int nr)
{
    struct domain *d = hvtest_domain(nr + 1, 1);

    for ( unsigned int i = 0; i < nr; i++ )
        guest_write(hvtest_frame(d, i), (uint8_t)(0x11 + i % 200));
    return d;
}

static void check_zero(struct page_info *pg, unsigned int order,
                       const char *who)
{
    for ( unsigned int i = 0; i < (1U << order); i++ )
    {
        mfn_t mfn = page_to_mfn(pg) + i;
        long off = first_data(mfn);

        if ( off >= 0 )
            FAIL("%s: frame %#lx handed out holding data at offset %ld",
                 who, (unsigned long)mfn, off);
        if ( hv_frame_maybe_nonzero(mfn) )
            FAIL("%s: frame %#lx handed out zeroed, maybe_nonzero set",
                 who, (unsigned long)mfn);
    }
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned int multiplier(void)
{
    const char *s = getenv("FERRY_TEST_TIMEOUT_MULTIPLIER");

    return s && atoi(s) > 0 ? (unsigned int)atoi(s) : 1;
}

/* ------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------ */

/*
 * No scrubber thread: every frame a destroyed domain wrote is still
 * marked, so each one comes back zeroed by the allocation itself, in runs
 * of several orders; frames the domain never wrote come back unmarked.
 */
TEST(scrub_allocation_zeroes_a_destroyed_domains_frames)
{
    static struct page_info *held[HVTEST_MEM_MB << 8];
    static unsigned int orders[HVTEST_MEM_MB << 8];
    unsigned int nr = 2048, n = 0, order = 0;
    uint64_t free_before, marked = 0;
    struct page_info *pg;
    struct domain *d;
    mfn_t clean;

    host_with_scrubber(false);
    d = written_domain(nr);
    clean = hvtest_frame(d, nr);        /* allocated, never written */
    free_before = hv_free_pages();
    hvtest_destroy(d);
    /* Its written frames and its shared_info, which the hypervisor wrote. */
    ASSERT_EQ(hv_scrub_pending(), nr + 1);
    ASSERT_HEX(hvtest_caf(clean), PGC_state_free);
    ASSERT(!hv_frame_maybe_nonzero(clean));
    HVTEST_AUDIT_CLEAN();
    ASSERT(hv_free_pages() > free_before);

    /* Orders 0, 1, 2, 3, 0, 1 ...: runs meet marked frames in any place. */
    while ( (pg = alloc_heap_pages(order, 0)) ||
            (order && (pg = alloc_heap_pages(order = 0, 0))) )
    {
        ASSERT(n < ARRAY_SIZE(held));
        check_zero(pg, order, "allocation");
        for ( unsigned int i = 0; i < (1U << order); i++ )
            marked += hv_frame_maybe_nonzero(page_to_mfn(pg) + i);
        orders[n] = order;
        held[n++] = pg;
        order = (order + 1) % 4;
    }
    ASSERT_EQ(marked, 0);
    ASSERT_EQ(hv_scrub_pending(), 0);
    ASSERT_EQ(hv_free_pages(), 0);
    /* Give them back; unwritten since, they come back clean. */
    while ( n-- )
        free_heap_pages(held[n], orders[n], false);
    ASSERT_EQ(hv_scrub_pending(), 0);
    hvtest_done();
}

/*
 * The background scrubber alone: after a destroy it zeroes every marked
 * frame and clears the marks, so the heap is clean without any
 * allocation; the auditor reads the clean free frames and finds zeros.
 */
TEST_TIMEOUT(scrub_background_zeroes_every_marked_frame, 60)
{
    unsigned int nr = 4096;
    double until;
    struct domain *d;
    uint64_t marked = 0;

    host_with_scrubber(true);
    d = written_domain(nr);
    hvtest_destroy(d);
    until = now_s() + 20.0 * multiplier();
    while ( hv_scrub_pending() && now_s() < until )
        usleep(1000);
    ASSERT_EQ(hv_scrub_pending(), 0);
    for ( mfn_t mfn = 0; mfn < host.max_page; mfn++ )
    {
        uint64_t caf = hvtest_caf(mfn);

        if ( (caf & PGC_state) != PGC_state_free )
            continue;
        marked += !!(caf & PGC_need_scrub);
        if ( host_frame_populated(mfn) && first_data(mfn) >= 0 )
            FAIL("free frame %#lx holds data after the scrub",
                 (unsigned long)mfn);
    }
    ASSERT_EQ(marked, 0);
    /* 64 audits read 64 x 1 MiB: the whole 64 MiB host. */
    for ( unsigned int i = 0; i < 64; i++ )
        HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

/*
 * Allocations racing the scrubber: rounds of a written domain destroyed,
 * then threads that allocate runs of orders 0 to 2 as fast as they can
 * while the scrubber works through the same frames, check that each run
 * reads as zero, write it (recorded), and free it again, which marks it
 * for the scrubber once more.  A frame handed out mid-scrub, or marked
 * and not zeroed, shows up as data.
 */
#define RACE_THREADS 3
#define RACE_ROUNDS 12
#define RACE_HOLD 64

static void *race_thread(void *arg)
{
    unsigned int seed = (unsigned int)(uintptr_t)arg * 2654435761U + 1;
    struct page_info *pg[RACE_HOLD];
    unsigned int order[RACE_HOLD];

    for ( unsigned int it = 0; it < 24; it++ )
    {
        unsigned int n = 0;

        while ( n < RACE_HOLD )
        {
            seed = seed * 1103515245U + 12345U;
            order[n] = (seed >> 16) % 3;
            pg[n] = alloc_heap_pages(order[n], 0);
            if ( !pg[n] )
                break;
            check_zero(pg[n], order[n], "racing allocation");
            for ( unsigned int i = 0; i < (1U << order[n]); i++ )
                guest_write(page_to_mfn(pg[n]) + i, (uint8_t)(0x80 | it));
            n++;
        }
        while ( n-- )
            free_heap_pages(pg[n], order[n], false);
    }
    return NULL;
}

TEST_TIMEOUT(scrub_allocations_racing_the_scrubber_never_see_data, 120)
{
    pthread_t t[RACE_THREADS];
    double until;

    host_with_scrubber(true);
    for ( unsigned int r = 0; r < RACE_ROUNDS; r++ )
    {
        struct domain *d = written_domain(3072);

        hvtest_destroy(d);
        for ( unsigned int i = 0; i < RACE_THREADS; i++ )
            ASSERT_EQ(pthread_create(&t[i], NULL, race_thread,
                                     (void *)(uintptr_t)(r * 8 + i)), 0);
        for ( unsigned int i = 0; i < RACE_THREADS; i++ )
            pthread_join(t[i], NULL);
        HVTEST_AUDIT_CLEAN();
    }
    /* And the scrubber catches up with what the threads left. */
    until = now_s() + 20.0 * multiplier();
    while ( hv_scrub_pending() && now_s() < until )
        usleep(1000);
    ASSERT_EQ(hv_scrub_pending(), 0);
    hvtest_done();
}

/*
 * The auditor's side of the invariant: a free frame without the mark
 * that holds data, or a mark that disagrees with the scrub bitmap or
 * with maybe_nonzero, is reported.
 */
TEST(scrub_auditor_reports_an_unmarked_free_frame_with_data)
{
    struct page_info *pg;
    mfn_t mfn;
    char msg[512];

    host_with_scrubber(false);
    pg = alloc_heap_pages(0, 0);
    ASSERT(pg);
    mfn = page_to_mfn(pg);
    free_heap_pages(pg, 0, false);
    ASSERT_HEX(hvtest_caf(mfn), PGC_state_free);
    HVTEST_AUDIT_CLEAN();

    /* Data in a frame the heap believes clean (a write nobody recorded). */
    ((uint8_t *)map_domain_page(mfn))[100] = 0x42;
    for ( unsigned int i = 0; i < 64 && !audit_host(msg, sizeof(msg)); i++ )
        ;
    ASSERT(strstr(msg, "free without PGC_need_scrub but holds data"));
    ((uint8_t *)map_domain_page(mfn))[100] = 0;
    HVTEST_AUDIT_CLEAN();

    /* A mark the scrub bitmap does not know. */
    atomic_fetch_or(&mfn_to_page(mfn)->count_info, PGC_need_scrub);
    ASSERT_EQ(audit_host(msg, sizeof(msg)), -EILSEQ);
    ASSERT(strstr(msg, "with PGC_need_scrub but not in the scrub bitmap"));
    atomic_fetch_and(&mfn_to_page(mfn)->count_info, ~PGC_need_scrub);
    hvtest_done();
}
