/* SPDX-License-Identifier: MIT */
/*
 * Toolstack operations (domctls) and log-dirty: max_mem, getdomaininfo
 * through a domain's life, pause counting, get/setvcpucontext and the
 * references a vCPU's base tables and GDT hold, getpageframeinfo3's type
 * words (the post-migration page-state rule), and shadow_op log-dirty.
 * Reference sections 6 and 10 (tests 21-24); values are Xen's.
 */
#include <pthread.h>
#include <time.h>

#include "hvtest.h"
#include "../../hypervisor/include/public/control.h"

#define PGC_ALLOC_1 (PGC_allocated | 1)

/* Toolstack operations act for domain 0, never for the target. */
static void as_dom0(void)
{
    set_current(host.dom0->vcpu[0]);
}

/* A minimal context for a 64-bit PV kernel with base table l4. */
static void kernel_ctxt(struct vcpu_guest_context *c, mfn_t l4)
{
    memset(c, 0, sizeof(*c));
    c->flags = VGCF_in_kernel | VGCF_online;
    c->user_regs.rip = 0xffffffff81000000ULL;
    c->user_regs.rsp = 0xffffffff81800000ULL;
    c->user_regs.cs = 0xe033;
    c->user_regs.ss = 0xe02b;
    c->kernel_ss = 0xe02b;
    c->ctrlreg[3] = xen_pfn_to_cr3(l4);
}

static int peek(struct domain *d, unsigned int op, uint8_t *bitmap,
                uint64_t pages, struct xen_domctl_shadow_op *out)
{
    struct xen_domctl_shadow_op sc = {
        .op = op, .dirty_bitmap = bitmap, .pages = pages,
    };
    int rc = domctl_shadow_op(d, &sc);

    if ( out )
        *out = sc;
    return rc;
}

static int shadow(struct domain *d, unsigned int op, unsigned int mode)
{
    struct xen_domctl_shadow_op sc = { .op = op, .mode = mode };

    return domctl_shadow_op(d, &sc);
}

static bool bit(const uint8_t *bm, uint64_t pfn)
{
    return bm[pfn / 8] & (1U << (pfn % 8));
}

/* ------------------------------------------------------------------------
 * max_mem (6.2)
 * ------------------------------------------------------------------------ */

TEST(max_mem_sets_pages_without_tot_pages_check)
{
    struct domain *d;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(16, 1);
    for ( pfn_t p = 0; p < 8; p++ )
        hvtest_frame(d, p);
    as_dom0();

    ASSERT_EQ(domctl_max_mem(d, 4 * 1024), 0);
    ASSERT_EQ(atomic_load(&d->max_pages), 1024);
    /* kB are rounded down to whole pages. */
    ASSERT_EQ(domctl_max_mem(d, 4 * 5 + 3), 0);
    ASSERT_EQ(atomic_load(&d->max_pages), 5);
    /* Below tot_pages is accepted: allocation just stops. */
    ASSERT_EQ(atomic_load(&d->tot_pages), 8);
    ASSERT(alloc_domheap_pages(d, 0, 0) == NULL);
    /* Clamped to UINT_MAX pages. */
    ASSERT_EQ(domctl_max_mem(d, ~0ULL), 0);
    ASSERT_HEX(atomic_load(&d->max_pages), 0xFFFFFFFFU);
    ASSERT_EQ(domctl_max_mem(d, (uint64_t)UINT32_MAX << 2), 0);
    ASSERT_HEX(atomic_load(&d->max_pages), 0xFFFFFFFFU);
    ASSERT_EQ(domctl_max_mem(d, ((uint64_t)UINT32_MAX << 2) - 4), 0);
    ASSERT_HEX(atomic_load(&d->max_pages), 0xFFFFFFFEU);
    HVTEST_AUDIT_CLEAN();
    hvtest_destroy(d);
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * getdomaininfo (6.3) and pause counting (6.4, test 22)
 * ------------------------------------------------------------------------ */

TEST(getdomaininfo_fields_through_life_cycle)
{
    struct xen_domctl_getdomaininfo info;
    struct vcpu_guest_context c;
    struct domain *d;
    mfn_t l4;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(32, 3);
    l4 = hvtest_frame(d, 0x10);
    hvtest_frame(d, 0x11);
    d->ssidref = 0x1234;
    memset(d->handle, 0xab, sizeof(d->handle));
    as_dom0();

    /* Fresh: paused by the controller, no vCPU online, no shutdown code. */
    ASSERT_EQ(domctl_getdomaininfo(d, &info), 0);
    ASSERT_EQ(info.domain, d->domain_id);
    ASSERT_HEX(info.flags, XEN_DOMINF_paused | 0xFFFF0000U);
    ASSERT_EQ(info.tot_pages, 2);
    ASSERT_EQ(info.max_pages, 32);
    ASSERT_HEX(info.shared_info_frame, d->shared_info_mfn);
    ASSERT_EQ(info.nr_online_vcpus, 0);
    ASSERT_EQ(info.max_vcpu_id, 2);
    ASSERT_EQ(info.ssidref, 0x1234);
    ASSERT_EQ(info.handle[0], 0xab);
    ASSERT_EQ(info.handle[15], 0xab);
    ASSERT_EQ(info.cpupool, 0);
    ASSERT_EQ(info.cpu_time, 0);

    /*
     * Bring vCPU 0 online (the domain stays paused, so no guest code
     * runs and the vCPU states below are the test's own).
     */
    kernel_ctxt(&c, l4);
    ASSERT_EQ(domctl_setvcpucontext(d, 0, &c), 0);
    ASSERT_EQ(domctl_getdomaininfo(d, &info), 0);
    ASSERT_EQ(info.nr_online_vcpus, 1);
    ASSERT_HEX(info.flags, XEN_DOMINF_paused | 0xFFFF0000U);

    /* Blocked only when every online vCPU is; running when any is. */
    atomic_store(&d->vcpu[0]->blocked, true);
    ASSERT_EQ(domctl_getdomaininfo(d, &info), 0);
    ASSERT_HEX(info.flags,
               XEN_DOMINF_paused | XEN_DOMINF_blocked | 0xFFFF0000U);
    atomic_store(&d->vcpu[1]->is_down, false);
    ASSERT_EQ(domctl_getdomaininfo(d, &info), 0);
    ASSERT_EQ(info.nr_online_vcpus, 2);
    ASSERT_HEX(info.flags, XEN_DOMINF_paused | 0xFFFF0000U);
    atomic_store(&d->vcpu[1]->running, true);
    atomic_store(&d->vcpu[1]->cpu_time, 1000);
    atomic_store(&d->vcpu[2]->cpu_time, 234);
    ASSERT_EQ(domctl_getdomaininfo(d, &info), 0);
    ASSERT_HEX(info.flags,
               XEN_DOMINF_paused | XEN_DOMINF_running | 0xFFFF0000U);
    ASSERT_EQ(info.cpu_time, 1234);
    atomic_store(&d->vcpu[1]->running, false);
    atomic_store(&d->vcpu[1]->is_down, true);
    atomic_store(&d->vcpu[0]->blocked, false);

    /* Offline again, then unpaused: no flags but the shutdown field. */
    ASSERT_EQ(domctl_setvcpucontext(d, 0, NULL), 0);
    ASSERT_EQ(domctl_unpausedomain(d), 0);
    ASSERT_EQ(domctl_getdomaininfo(d, &info), 0);
    ASSERT_EQ(info.nr_online_vcpus, 0);
    ASSERT_HEX(info.flags, 0xFFFF0000U);

    /* Shutdown: the flag and the code in bits 23:16; first code wins. */
    domain_shutdown(d, SHUTDOWN_suspend);
    domain_shutdown(d, SHUTDOWN_crash);
    ASSERT_EQ(domctl_getdomaininfo(d, &info), 0);
    ASSERT_HEX(info.flags, XEN_DOMINF_shutdown |
                           (SHUTDOWN_suspend << XEN_DOMINF_shutdownshift));
    ASSERT_EQ((info.flags >> XEN_DOMINF_shutdownshift) &
              XEN_DOMINF_shutdownmask, SHUTDOWN_suspend);

    /* Killed: "dying" only once destruction has completed. */
    ASSERT(get_domain(d));
    hvtest_destroy(d);
    ASSERT_EQ(atomic_load(&d->state), DOMSTATE_DEAD);
    ASSERT_EQ(domctl_getdomaininfo(d, &info), 0);
    ASSERT(info.flags & XEN_DOMINF_dying);
    ASSERT_EQ(info.tot_pages, 0);
    put_domain(d);
    hvtest_done();
}

TEST(getdomaininfo_no_vcpus_max_vcpu_id_invalid)
{
    struct xen_domctl_getdomaininfo info;
    struct domain *d;

    hvtest_host(HVTEST_MEM_MB);
    as_dom0();
    ASSERT_EQ(domain_create(DOMID_ANY, 0, 0, &d), 0);
    ASSERT_EQ(domctl_getdomaininfo(d, &info), 0);
    ASSERT_HEX(info.max_vcpu_id, 0xFFFFFFFFU);
    ASSERT_EQ(info.nr_online_vcpus, 0);
    ASSERT_HEX(info.flags, XEN_DOMINF_paused | 0xFFFF0000U);
    hvtest_destroy(d);
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * DOMAIN_WAIT (ferry's VIRQ_DOM_EXC): blocks until the guest shuts down
 * ------------------------------------------------------------------------ */

static uint64_t mono_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void *shut_down_later(void *arg)
{
    struct timespec nap = { 0, 100 * 1000 * 1000 };

    nanosleep(&nap, NULL);
    domain_shutdown(arg, SHUTDOWN_suspend);
    return NULL;
}

TEST(wait_shutdown_times_out_wakes_on_shutdown_and_returns_at_once_after)
{
    struct domain *d;
    pthread_t t;
    uint64_t t0, waited;

    hvtest_host(HVTEST_MEM_MB);
    as_dom0();
    d = hvtest_domain(16, 1);

    /* Running: the full timeout passes. */
    t0 = mono_ms();
    domain_wait_shutdown(d, 150);
    waited = mono_ms() - t0;
    ASSERT(waited >= 150);
    ASSERT(!atomic_load(&d->is_shut_down));

    /* Woken by the shutdown itself, long before the timeout. */
    ASSERT_EQ(pthread_create(&t, NULL, shut_down_later, d), 0);
    t0 = mono_ms();
    domain_wait_shutdown(d, 5000);
    waited = mono_ms() - t0;
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT(atomic_load(&d->is_shut_down));
    ASSERT(waited >= 50 && waited < 2000);

    /* Already shut down: no wait at all. */
    t0 = mono_ms();
    domain_wait_shutdown(d, 5000);
    ASSERT(mono_ms() - t0 < 1000);
    hvtest_destroy(d);
    hvtest_done();
}

TEST(pause_count_255_limit_and_unpause_underflow)
{
    struct domain *d;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(16, 1);
    as_dom0();

    /* Created paused with count 1. */
    ASSERT_EQ(atomic_load(&d->controller_pause_count), 1);
    ASSERT(domain_is_paused(d));
    ASSERT(!atomic_load(&d->creation_finished));
    ASSERT_EQ(domctl_unpausedomain(d), 0);
    ASSERT(atomic_load(&d->creation_finished));
    ASSERT(!domain_is_paused(d));
    ASSERT_EQ(domctl_unpausedomain(d), -EINVAL);
    ASSERT_EQ(atomic_load(&d->controller_pause_count), 0);

    for ( unsigned int i = 0; i < 255; i++ )
        ASSERT_EQ(domctl_pausedomain(d), 0);
    ASSERT_EQ(atomic_load(&d->controller_pause_count), 255);
    ASSERT_EQ(domctl_pausedomain(d), -EOVERFLOW);
    ASSERT_EQ(atomic_load(&d->controller_pause_count), 255);

    /* A domain cannot pause itself. */
    hvtest_as(d, 0);
    ASSERT_EQ(domctl_pausedomain(d), -EINVAL);
    as_dom0();
    hvtest_destroy(d);
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * getpageframeinfo3 (6.6, tests 3 and 21)
 * ------------------------------------------------------------------------ */

static uint64_t pfinfo1(struct domain *d, uint64_t mfn)
{
    uint64_t a = mfn;

    as_dom0();
    if ( domctl_getpageframeinfo3(d, 1, &a) )
        FAIL("getpageframeinfo3 failed");
    return a;
}

TEST(pfinfo3_num_over_1024_e2big)
{
    static uint64_t arr[1025];
    struct domain *d;
    mfn_t mfn;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(16, 1);
    mfn = arr[0] = hvtest_frame(d, 0);
    as_dom0();
    ASSERT_EQ(domctl_getpageframeinfo3(d, 1025, arr), -E2BIG);
    /* Nothing was overwritten. */
    ASSERT_HEX(arr[0], mfn);
    ASSERT_EQ(domctl_getpageframeinfo3(d, 1024, arr), 0);
    ASSERT_HEX(arr[0], XEN_DOMCTL_PFINFO_NOTAB);
    hvtest_destroy(d);
    hvtest_done();
}

TEST(pfinfo3_xtab_for_special_free_foreign_and_broken)
{
    struct domain *d, *e;
    struct page_info *extra, *free_pg;
    mfn_t data, foreign, broken;
    uint64_t a[6];

    hvtest_host(HVTEST_MEM_MB);
    e = hvtest_domain(16, 1);
    foreign = hvtest_frame(e, 0);
    d = hvtest_domain(16, 1);
    data = hvtest_frame(d, 0);
    broken = hvtest_frame(d, 1);
    extra = alloc_domheap_pages(d, 0, MEMF_no_refcount);
    ASSERT(extra);
    free_pg = alloc_heap_pages(0, 0);
    ASSERT(free_pg);
    free_heap_pages(free_pg, 0, false);
    atomic_fetch_or(&mfn_to_page(broken)->count_info, PGC_broken);

    a[0] = data;
    a[1] = d->shared_info_mfn;
    a[2] = page_to_mfn(extra);
    a[3] = page_to_mfn(free_pg);
    a[4] = foreign;
    a[5] = broken;
    as_dom0();
    hv_log_clear();
    ASSERT_EQ(domctl_getpageframeinfo3(d, 6, a), 0);
    ASSERT_HEX(a[0], XEN_DOMCTL_PFINFO_NOTAB);
    ASSERT_HEX(a[1], 0xF0000000U);     /* shared_info: xen-heap */
    ASSERT_HEX(a[2], 0xF0000000U);     /* PGC_extra */
    ASSERT_HEX(a[3], 0xF0000000U);     /* free */
    ASSERT_HEX(a[4], 0xF0000000U);     /* another domain's */
    ASSERT_HEX(a[5], 0xD0000000U);     /* PGC_broken */
    /* get_page() said why the foreign frame was refused. */
    ASSERT(hv_log_contains("Error mfn"));
    /* The lookups' references were all dropped again. */
    ASSERT_HEX(hvtest_caf(data), PGC_ALLOC_1);
    ASSERT_HEX(hvtest_caf(foreign), PGC_ALLOC_1);
    ASSERT_HEX(hvtest_count(d->shared_info_mfn), 1);

    atomic_fetch_and(&mfn_to_page(broken)->count_info, ~PGC_broken);
    ASSERT(get_page(extra, d));
    put_page_alloc_ref(extra);
    put_page(extra);
    HVTEST_AUDIT_CLEAN();
    hvtest_destroy(d);
    hvtest_destroy(e);
    hvtest_done();
}

/*
 * Zero pages (issue 11): with FERRY_PFINFO_ZERO, an ordinary page whose
 * frame nothing wrote since it left the heap reads XALLOC, so that a
 * saver sends its PFN only.  Every write path must clear that for good:
 * a hypercall that copies into the page (MMUEXT_COPY_PAGE), one that
 * writes zeros over data (CLEAR_PAGE: the page is zero again, but the
 * bit stays, which is conservative), a page that served as a page table
 * and went back to ordinary data, and any paging_mark_dirty() (the guest
 * CPU's writes and copy_to_guest go through it).  The heap's scrub is
 * what makes a frame untouched again.
 */
static uint64_t pfinfo_zero(struct domain *d, uint64_t mfn)
{
    uint64_t a = mfn;

    as_dom0();
    if ( hv_getpageframeinfo3(d, 1, &a, FERRY_PFINFO_ZERO) )
        FAIL("getpageframeinfo3 with FERRY_PFINFO_ZERO failed");
    return a;
}

static bool frame_is_zero(mfn_t mfn)
{
    const uint64_t *p = map_domain_page(mfn);

    for ( unsigned int i = 0; i < PAGE_SIZE / 8; i++ )
        if ( p[i] )
            return false;
    return true;
}

TEST(zero_pages_untouched_frames_read_xalloc)
{
    struct mmuext_op op;
    unsigned int done = 0;
    struct domain *d;
    mfn_t a, b, c, l1, g;
    uint64_t arr[2];

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(16, 1);
    a = hvtest_frame(d, 0);
    b = hvtest_frame(d, 1);
    c = hvtest_frame(d, 2);
    l1 = hvtest_frame(d, 3);
    g = hvtest_frame(d, 4);

    /* Fresh frames: XALLOC with the flag, NOTAB (Xen's answer) without. */
    ASSERT_HEX(pfinfo_zero(d, a), XEN_DOMCTL_PFINFO_XALLOC);
    ASSERT(frame_is_zero(a));
    ASSERT_HEX(pfinfo1(d, a), XEN_DOMCTL_PFINFO_NOTAB);
    /* Flags it does not know are refused, the array untouched. */
    arr[0] = a;
    ASSERT_EQ(hv_getpageframeinfo3(d, 1, arr, 0x2), -EINVAL);
    ASSERT_HEX(arr[0], a);

    /* Written by a hypercall only: data from then on. */
    memset(map_domain_page(c), 0x5a, PAGE_SIZE);    /* the source */
    hv_frame_written(c);
    hvtest_as(d, 0);
    op = (struct mmuext_op){ .cmd = MMUEXT_COPY_PAGE, .arg1.mfn = a,
                             .arg2.src_mfn = c };
    ASSERT_EQ(do_mmuext_op(&op, 1, &done, DOMID_SELF), 0);
    ASSERT(!frame_is_zero(a));
    ASSERT_HEX(pfinfo_zero(d, a), XEN_DOMCTL_PFINFO_NOTAB);

    /* Written, then cleared back to zero: still sent as data. */
    hvtest_as(d, 0);
    op = (struct mmuext_op){ .cmd = MMUEXT_CLEAR_PAGE, .arg1.mfn = a };
    done = 0;
    ASSERT_EQ(do_mmuext_op(&op, 1, &done, DOMID_SELF), 0);
    ASSERT(frame_is_zero(a));
    ASSERT_HEX(pfinfo_zero(d, a), XEN_DOMCTL_PFINFO_NOTAB);

    /* Any write Xen marks dirty (the guest CPU's included). */
    paging_mark_dirty(d, b);
    ASSERT_HEX(pfinfo_zero(d, b), XEN_DOMCTL_PFINFO_NOTAB);

    /*
     * A page table, even an empty one: a table is written by the
     * hypervisor on the guest's behalf, so once validated it stays data
     * after it went back to an ordinary page.
     */
    hvtest_as(d, 0);
    ASSERT_EQ(hvtest_mmuext(MMUEXT_PIN_L1_TABLE, l1), 0);
    ASSERT_HEX(pfinfo_zero(d, l1),
               XEN_DOMCTL_PFINFO_L1TAB | XEN_DOMCTL_PFINFO_LPINTAB);
    hvtest_as(d, 0);
    ASSERT_EQ(hvtest_mmuext(MMUEXT_UNPIN_TABLE, l1), 0);
    ASSERT(get_page_and_type(mfn_to_page(l1), d, PGT_writable_page));
    ASSERT_HEX(pfinfo_zero(d, l1), XEN_DOMCTL_PFINFO_NOTAB);
    put_page_and_type(mfn_to_page(l1));

    /* An untouched frame in the same batch is still XALLOC. */
    arr[0] = b;
    arr[1] = g;
    as_dom0();
    ASSERT_EQ(hv_getpageframeinfo3(d, 2, arr, FERRY_PFINFO_ZERO), 0);
    ASSERT_HEX(arr[0], XEN_DOMCTL_PFINFO_NOTAB);
    ASSERT_HEX(arr[1], XEN_DOMCTL_PFINFO_XALLOC);
    HVTEST_AUDIT_CLEAN();
    hvtest_destroy(d);
    hvtest_done();
}

/*
 * Allocate order-0 frames until the heap hands out mfn (the allocator
 * moves on from its last run, so it comes round), then give the others
 * back.
 */
static void alloc_frame_again(mfn_t mfn)
{
    static struct page_info *held[HVTEST_MEM_MB << 8];
    unsigned int n = 0;
    struct page_info *pg;

    while ( (pg = alloc_heap_pages(0, 0)) && page_to_mfn(pg) != mfn )
    {
        ASSERT(n < ARRAY_SIZE(held));
        held[n++] = pg;
    }
    ASSERT(pg);
    while ( n )
        free_heap_pages(held[--n], 0, false);
}

TEST(zero_pages_scrub_makes_a_frame_untouched_again)
{
    struct page_info *pg;
    struct domain *d;
    mfn_t mfn, own;

    hvtest_host(HVTEST_MEM_MB);
    pg = alloc_heap_pages(0, 0);
    ASSERT(pg);
    mfn = page_to_mfn(pg);
    ASSERT(!hv_frame_maybe_nonzero(mfn));
    memset(map_domain_page(mfn), 0xa5, PAGE_SIZE);
    hv_frame_written(mfn);
    ASSERT(hv_frame_maybe_nonzero(mfn));
    /* Freed, it waits for its scrub and still counts as written. */
    free_heap_pages(pg, 0, false);
    ASSERT_HEX(hvtest_caf(mfn), PGC_state_free | PGC_need_scrub);
    ASSERT(hv_frame_maybe_nonzero(mfn));
    HVTEST_AUDIT_CLEAN();
    /* The allocation that takes it again scrubs it and forgets the write. */
    alloc_frame_again(mfn);
    ASSERT(frame_is_zero(mfn));
    ASSERT(!hv_frame_maybe_nonzero(mfn));
    free_heap_pages(mfn_to_page(mfn), 0, false);
    ASSERT_HEX(hvtest_caf(mfn), PGC_state_free);

    /* A domain's written frame, when the domain goes, likewise. */
    d = hvtest_domain(16, 1);
    own = hvtest_frame(d, 0);
    memset(map_domain_page(own), 0x3c, 64);
    paging_mark_dirty(d, own);
    ASSERT_HEX(pfinfo_zero(d, own), XEN_DOMCTL_PFINFO_NOTAB);
    hvtest_destroy(d);
    ASSERT_HEX(hvtest_caf(own), PGC_state_free | PGC_need_scrub);
    alloc_frame_again(own);
    ASSERT(frame_is_zero(own));
    ASSERT(!hv_frame_maybe_nonzero(own));
    free_heap_pages(mfn_to_page(own), 0, false);
    hvtest_done();
}

/*
 * Grant frames are xen-heap frames shared with the guest (Xen's
 * gnttab_grow_table shares them as shared_info is shared), so
 * getpageframeinfo3 reports them XTAB, as Xen's is_special_page() makes
 * it: the saver must not copy them as guest memory.  That holds for the
 * table's first frame and for one the table grew by, and while the guest
 * maps a frame writable.
 */
TEST(grant_frame_pfinfo_xtab)
{
    struct gnttab_setup_table st = { .dom = DOMID_SELF, .nr_frames = 2 };
    uint64_t gframe[2] = { 0, 0 }, a[3];
    struct domain *d;
    mfn_t data;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(16, 1);
    data = hvtest_frame(d, 0);
    st.frame_list = gframe;
    hvtest_as(d, 0);
    ASSERT_EQ(do_grant_table_op(GNTTABOP_setup_table, &st, 1), 0);
    ASSERT_EQ(st.status, GNTST_okay);
    ASSERT(gframe[0] != 0 && gframe[1] != 0 && gframe[0] != gframe[1]);
    ASSERT_HEX(hvtest_caf(gframe[0]), PGC_allocated | PGC_xen_heap | 1);
    ASSERT_HEX(hvtest_caf(gframe[1]), PGC_allocated | PGC_xen_heap | 1);

    /* The guest's writable mapping of frame 0: general + type ref. */
    ASSERT(get_page_and_type(mfn_to_page(gframe[0]), d, PGT_writable_page));

    a[0] = gframe[0];
    a[1] = gframe[1];
    a[2] = data;
    as_dom0();
    ASSERT_EQ(domctl_getpageframeinfo3(d, 3, a), 0);
    ASSERT_HEX(a[0], 0xF0000000U);
    ASSERT_HEX(a[1], 0xF0000000U);
    ASSERT_HEX(a[2], XEN_DOMCTL_PFINFO_NOTAB);
    /* The lookups' references were dropped again. */
    ASSERT_HEX(hvtest_caf(gframe[0]), PGC_allocated | PGC_xen_heap | 2);
    ASSERT_HEX(hvtest_caf(gframe[1]), PGC_allocated | PGC_xen_heap | 1);
    ASSERT_HEX(hvtest_caf(data), PGC_ALLOC_1);

    put_page_and_type(mfn_to_page(gframe[0]));
    HVTEST_AUDIT_CLEAN();
    hvtest_destroy(d);
    hvtest_done();
}

TEST(pfinfo3_pinned_l1_is_lpintab_then_notab_after_unpin)
{
    struct domain *d;
    mfn_t l1;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(16, 1);
    l1 = hvtest_frame(d, 3);
    ASSERT_EQ(hvtest_mmuext(MMUEXT_PIN_L1_TABLE, l1), 0);
    ASSERT_HEX(pfinfo1(d, l1), 0x90000000U);   /* LPINTAB | L1TAB */

    hvtest_as(d, 0);
    ASSERT_EQ(hvtest_mmuext(MMUEXT_UNPIN_TABLE, l1), 0);
    /* Type kept, count 0, not validated: reported as a plain page. */
    ASSERT_HEX(hvtest_taf(l1), PGT_l1_page_table);
    ASSERT_HEX(pfinfo1(d, l1), XEN_DOMCTL_PFINFO_NOTAB);
    HVTEST_AUDIT_CLEAN();
    hvtest_destroy(d);
    hvtest_done();
}

TEST(pfinfo3_validated_unpinned_table_and_devalidated_l2_notab)
{
    struct domain *d;
    mfn_t l2, l1, data;
    uint64_t a[3];

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(16, 1);
    l2 = hvtest_frame(d, 0);
    l1 = hvtest_frame(d, 1);
    data = hvtest_frame(d, 2);
    hvtest_write_pte(l1, 0, hvtest_pte(data, _PAGE_RW));
    hvtest_write_pte(l2, 0, hvtest_pte(l1, _PAGE_RW));
    ASSERT_EQ(hvtest_mmuext(MMUEXT_PIN_L2_TABLE, l2), 0);

    /* The L1 is validated through the L2, not pinned: plain L1TAB. */
    a[0] = l2;
    a[1] = l1;
    a[2] = data;
    as_dom0();
    ASSERT_EQ(domctl_getpageframeinfo3(d, 3, a), 0);
    ASSERT_HEX(a[0], XEN_DOMCTL_PFINFO_LPINTAB | XEN_DOMCTL_PFINFO_L2TAB);
    ASSERT_HEX(a[1], XEN_DOMCTL_PFINFO_L1TAB);
    ASSERT_HEX(a[2], XEN_DOMCTL_PFINFO_NOTAB);

    /* Unpinning devalidates both tables: both read NOTAB, types kept. */
    hvtest_as(d, 0);
    ASSERT_EQ(hvtest_mmuext(MMUEXT_UNPIN_TABLE, l2), 0);
    ASSERT_HEX(hvtest_taf(l2), PGT_l2_page_table);
    ASSERT_HEX(hvtest_taf(l1), PGT_l1_page_table);
    a[0] = l2;
    a[1] = l1;
    as_dom0();
    ASSERT_EQ(domctl_getpageframeinfo3(d, 2, a), 0);
    ASSERT_HEX(a[0], XEN_DOMCTL_PFINFO_NOTAB);
    ASSERT_HEX(a[1], XEN_DOMCTL_PFINFO_NOTAB);
    HVTEST_AUDIT_CLEAN();
    hvtest_destroy(d);
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * get/setvcpucontext (6.7, test 23)
 * ------------------------------------------------------------------------ */

TEST(vcpucontext_enodata_einval_and_cr3_refs_round_trip)
{
    struct vcpu_guest_context c, out;
    struct domain *d, *e;
    mfn_t l4, other_l4;

    hvtest_host(HVTEST_MEM_MB);
    e = hvtest_domain(16, 1);
    other_l4 = hvtest_frame(e, 0);
    d = hvtest_domain(16, 2);
    l4 = hvtest_frame(d, 7);
    as_dom0();

    ASSERT_EQ(domctl_getvcpucontext(d, 0, &out), -ENODATA);
    ASSERT_EQ(domctl_getvcpucontext(d, 2, &out), -EINVAL);
    kernel_ctxt(&c, l4);
    ASSERT_EQ(domctl_setvcpucontext(d, 2, &c), -EINVAL);

    /* Another domain's frame as cr3: refused, nothing held. */
    kernel_ctxt(&c, other_l4);
    ASSERT_EQ(domctl_setvcpucontext(d, 0, &c), -EINVAL);
    ASSERT_FRAME(other_l4, PGC_ALLOC_1, 0);
    ASSERT(!d->vcpu[0]->is_initialised);

    /* Own L4: one general + one L4 type reference. */
    kernel_ctxt(&c, l4);
    c.user_regs.rax = 0x1122334455667788ULL;
    c.user_regs.rflags = 0x3046;        /* IOPL 3, ZF, PF */
    ASSERT_EQ(domctl_setvcpucontext(d, 0, &c), 0);
    ASSERT_FRAME(l4, PGC_allocated | 2, PGT_l4_page_table | PGT_validated | 1);
    ASSERT_EQ(d->vcpu[0]->guest_table, l4);
    ASSERT(!atomic_load(&d->vcpu[0]->is_down));
    HVTEST_AUDIT_CLEAN();

    ASSERT_EQ(domctl_getvcpucontext(d, 0, &out), 0);
    ASSERT_HEX(out.ctrlreg[3], l4 << 12);
    ASSERT_HEX(out.ctrlreg[1], 0);
    ASSERT_HEX(out.flags, VGCF_i387_valid | VGCF_in_kernel | VGCF_online);
    ASSERT_HEX(out.user_regs.rax, 0x1122334455667788ULL);
    /* IF and the reserved bit forced on, IOPL kept. */
    ASSERT_HEX(out.user_regs.rflags, 0x3246);
    ASSERT_HEX(out.user_regs.cs, 0xe033);
    ASSERT_EQ(out.gdt_ents, 0);
    ASSERT_HEX(out.gdt_frames[0], 0);
    ASSERT_HEX(out.ldt_base, 0);

    /* Initialised: the same frames are accepted, others are not. */
    ASSERT_EQ(domctl_setvcpucontext(d, 0, &c), 0);
    ASSERT_HEX(hvtest_caf(l4), PGC_allocated | 2);
    c.ctrlreg[3] = xen_pfn_to_cr3(hvtest_frame(d, 8));
    ASSERT_EQ(domctl_setvcpucontext(d, 0, &c), -EOPNOTSUPP);
    kernel_ctxt(&c, l4);
    c.ctrlreg[1] = xen_pfn_to_cr3(l4);
    ASSERT_EQ(domctl_setvcpucontext(d, 0, &c), -EOPNOTSUPP);
    ASSERT_HEX(hvtest_caf(l4), PGC_allocated | 2);

    /* A null context resets the vCPU and drops both references. */
    ASSERT_EQ(domctl_setvcpucontext(d, 0, NULL), 0);
    ASSERT(!d->vcpu[0]->is_initialised);
    ASSERT(atomic_load(&d->vcpu[0]->is_down));
    ASSERT_EQ(d->vcpu[0]->guest_table, 0);
    ASSERT_FRAME(l4, PGC_ALLOC_1, PGT_l4_page_table);
    ASSERT_EQ(domctl_getvcpucontext(d, 0, &out), -ENODATA);
    HVTEST_AUDIT_CLEAN();
    hvtest_destroy(d);
    hvtest_destroy(e);
    hvtest_done();
}

TEST(setvcpucontext_user_table_and_offline)
{
    struct vcpu_guest_context c, out;
    struct domain *d;
    mfn_t l4, ul4;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(16, 2);
    l4 = hvtest_frame(d, 0);
    ul4 = hvtest_frame(d, 1);
    as_dom0();

    /* Neither kernel mode nor a user table: refused. */
    kernel_ctxt(&c, l4);
    c.flags = VGCF_online;
    ASSERT_EQ(domctl_setvcpucontext(d, 1, &c), -EINVAL);
    ASSERT_HEX(hvtest_caf(l4), PGC_ALLOC_1);

    /* User mode with a user table, offline. */
    c.flags = 0;
    c.ctrlreg[1] = xen_pfn_to_cr3(ul4);
    ASSERT_EQ(domctl_setvcpucontext(d, 1, &c), 0);
    ASSERT_HEX(hvtest_caf(l4), PGC_allocated | 2);
    ASSERT_FRAME(ul4, PGC_allocated | 2,
                 PGT_l4_page_table | PGT_validated | 1);
    ASSERT(atomic_load(&d->vcpu[1]->is_down));
    ASSERT_EQ(domctl_getvcpucontext(d, 1, &out), 0);
    ASSERT_HEX(out.ctrlreg[1], ul4 << 12);
    ASSERT_HEX(out.flags, VGCF_i387_valid);
    HVTEST_AUDIT_CLEAN();

    /* Initialised: dropping the user table is not accepted. */
    c.ctrlreg[1] = 0;
    c.flags = VGCF_in_kernel;
    ASSERT_EQ(domctl_setvcpucontext(d, 1, &c), -EOPNOTSUPP);
    c.ctrlreg[1] = xen_pfn_to_cr3(ul4);
    c.flags = VGCF_online;
    ASSERT_EQ(domctl_setvcpucontext(d, 1, &c), 0);
    ASSERT(!atomic_load(&d->vcpu[1]->is_down));

    ASSERT_EQ(domctl_setvcpucontext(d, 1, NULL), 0);
    ASSERT_HEX(hvtest_caf(l4), PGC_ALLOC_1);
    ASSERT_HEX(hvtest_caf(ul4), PGC_ALLOC_1);
    HVTEST_AUDIT_CLEAN();
    hvtest_destroy(d);
    hvtest_done();
}

TEST(setvcpucontext_canonical_ldt_gdt_and_self_checks)
{
    struct vcpu_guest_context c;
    struct domain *d;
    mfn_t l4;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(16, 1);
    l4 = hvtest_frame(d, 0);
    as_dom0();

    kernel_ctxt(&c, l4);
    c.user_regs.rip = 0x0000800000000000ULL;
    ASSERT_EQ(domctl_setvcpucontext(d, 0, &c), -EINVAL);
    kernel_ctxt(&c, l4);
    c.kernel_sp = 0x8000000000000000ULL;
    ASSERT_EQ(domctl_setvcpucontext(d, 0, &c), -EINVAL);
    kernel_ctxt(&c, l4);
    c.gs_base_user = 0x00F0000000000000ULL;
    ASSERT_EQ(domctl_setvcpucontext(d, 0, &c), -EINVAL);
    kernel_ctxt(&c, l4);
    c.syscall_callback_eip = 0x1000000000000000ULL;
    ASSERT_EQ(domctl_setvcpucontext(d, 0, &c), -EINVAL);
    kernel_ctxt(&c, l4);
    c.trap_ctxt[14].address = 0x0001000000000000ULL;
    ASSERT_EQ(domctl_setvcpucontext(d, 0, &c), -EINVAL);
    kernel_ctxt(&c, l4);
    c.ldt_base = 0x1008;
    c.ldt_ents = 1;
    ASSERT_EQ(domctl_setvcpucontext(d, 0, &c), -EINVAL);
    kernel_ctxt(&c, l4);
    c.ldt_base = 0x1000;
    c.ldt_ents = 8193;
    ASSERT_EQ(domctl_setvcpucontext(d, 0, &c), -EINVAL);
    kernel_ctxt(&c, l4);
    c.gdt_ents = 14 * 512 + 1;          /* a 15th frame */
    ASSERT_EQ(domctl_setvcpucontext(d, 0, &c), -EINVAL);
    kernel_ctxt(&c, l4);
    c.debugreg[7] = 1ULL << 32;
    ASSERT_EQ(domctl_setvcpucontext(d, 0, &c), -EINVAL);
    kernel_ctxt(&c, l4);
    c.vm_assist = 1ULL << 6;
    ASSERT_EQ(domctl_setvcpucontext(d, 0, &c), -EINVAL);
    ASSERT_FRAME(l4, PGC_ALLOC_1, 0);

    /* The target's own vCPU cannot set its context this way. */
    kernel_ctxt(&c, l4);
    hvtest_as(d, 0);
    ASSERT_EQ(domctl_setvcpucontext(d, 0, &c), -EINVAL);
    ASSERT_EQ(domctl_getvcpucontext(d, 0, &c), -EINVAL);
    as_dom0();
    HVTEST_AUDIT_CLEAN();
    hvtest_destroy(d);
    hvtest_done();
}

TEST(setvcpucontext_gdt_frames_take_seg_desc_refs)
{
    struct vcpu_guest_context c, out;
    struct domain *d, *e;
    mfn_t l4, g0, g1, foreign;

    hvtest_host(HVTEST_MEM_MB);
    e = hvtest_domain(16, 1);
    foreign = hvtest_frame(e, 0);
    d = hvtest_domain(16, 1);
    l4 = hvtest_frame(d, 0);
    g0 = hvtest_frame(d, 1);
    g1 = hvtest_frame(d, 2);
    as_dom0();

    /* A foreign second frame: -EINVAL, the first frame's refs undone. */
    kernel_ctxt(&c, l4);
    c.gdt_ents = 513;
    c.gdt_frames[0] = g0;
    c.gdt_frames[1] = foreign;
    ASSERT_EQ(domctl_setvcpucontext(d, 0, &c), -EINVAL);
    ASSERT_HEX(hvtest_caf(g0), PGC_ALLOC_1);
    ASSERT_EQ(hvtest_tcount(g0), 0);
    ASSERT_HEX(hvtest_caf(l4), PGC_ALLOC_1);
    ASSERT(!d->vcpu[0]->is_initialised);

    c.gdt_frames[1] = g1;
    ASSERT_EQ(domctl_setvcpucontext(d, 0, &c), 0);
    ASSERT_FRAME(g0, PGC_allocated | 2, PGT_seg_desc_page | PGT_validated | 1);
    ASSERT_HEX(hvtest_taf(g1), PGT_seg_desc_page | PGT_validated | 1);
    ASSERT_EQ(domctl_getvcpucontext(d, 0, &out), 0);
    ASSERT_EQ(out.gdt_ents, 513);
    ASSERT_HEX(out.gdt_frames[0], g0);
    ASSERT_HEX(out.gdt_frames[1], g1);
    ASSERT_HEX(out.gdt_frames[2], 0);
    HVTEST_AUDIT_CLEAN();

    /* A different GDT on an initialised vCPU is not accepted. */
    c.gdt_ents = 512;
    ASSERT_EQ(domctl_setvcpucontext(d, 0, &c), -EOPNOTSUPP);

    /* Reset: seg_desc counts drop to 0, the type stays validated. */
    ASSERT_EQ(domctl_setvcpucontext(d, 0, NULL), 0);
    ASSERT_FRAME(g0, PGC_ALLOC_1, PGT_seg_desc_page | PGT_validated);
    ASSERT_HEX(hvtest_taf(g1), PGT_seg_desc_page | PGT_validated);
    ASSERT_EQ(d->vcpu[0]->gdt_ents, 0);
    ASSERT_HEX(hvtest_caf(l4), PGC_ALLOC_1);
    HVTEST_AUDIT_CLEAN();
    hvtest_destroy(d);
    hvtest_destroy(e);
    hvtest_done();
}

/*
 * A base table whose validation is preempted: setvcpucontext returns
 * -ERESTART with the progress kept in the tables; calling again finishes
 * with exactly the references of an uninterrupted run.
 */
TEST(setvcpucontext_preempted_l4_validation_continues)
{
    struct vcpu_guest_context c;
    struct domain *d;
    mfn_t l4, l3, l2a, l2b;
    unsigned int restarts = 0;
    int rc;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(16, 1);
    l4 = hvtest_frame(d, 0);
    l3 = hvtest_frame(d, 1);
    l2a = hvtest_frame(d, 2);
    l2b = hvtest_frame(d, 3);
    hvtest_write_pte(l4, 0, hvtest_pte(l3, _PAGE_RW));
    hvtest_write_pte(l3, 0, hvtest_pte(l2a, _PAGE_RW));
    hvtest_write_pte(l3, 1, hvtest_pte(l2b, _PAGE_RW));
    as_dom0();

    hv_inject_preempt(current, 3, 1, l3, PREEMPT_PROMOTE, 1);
    kernel_ctxt(&c, l4);
    while ( (rc = domctl_setvcpucontext(d, 0, &c)) == -ERESTART )
    {
        ASSERT(!d->vcpu[0]->is_initialised);
        restarts++;
    }
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(restarts, 1);
    ASSERT_FRAME(l4, PGC_allocated | 2, PGT_l4_page_table | PGT_validated | 1);
    ASSERT_FRAME(l3, PGC_allocated | 2, PGT_l3_page_table | PGT_validated | 1);
    ASSERT_HEX(hvtest_taf(l2b), PGT_l2_page_table | PGT_validated | 1);
    HVTEST_AUDIT_CLEAN();

    ASSERT_EQ(domctl_setvcpucontext(d, 0, NULL), 0);
    ASSERT_HEX(hvtest_caf(l4), PGC_ALLOC_1);
    ASSERT_FRAME(l3, PGC_ALLOC_1, PGT_l3_page_table);
    ASSERT_HEX(hvtest_caf(l2a), PGC_ALLOC_1);
    HVTEST_AUDIT_CLEAN();
    hvtest_destroy(d);
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * Log-dirty (6.8, test 24)
 * ------------------------------------------------------------------------ */

TEST(logdirty_enable_twice_einval_and_target_checks)
{
    struct domain *d, *novcpu;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(16, 1);
    ASSERT_EQ(domain_create(DOMID_ANY, 0, 0, &novcpu), 0);
    as_dom0();

    ASSERT(!paging_mode_log_dirty(d));
    ASSERT_EQ(shadow(d, XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, 0), 0);
    ASSERT(paging_mode_log_dirty(d));
    ASSERT_EQ(shadow(d, XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, 0), -EINVAL);
    ASSERT_EQ(shadow(d, XEN_DOMCTL_SHADOW_OP_ENABLE,
                     XEN_DOMCTL_SHADOW_ENABLE_LOG_DIRTY), -EINVAL);
    ASSERT_EQ(shadow(d, XEN_DOMCTL_SHADOW_OP_OFF, 0), 0);
    ASSERT(!paging_mode_log_dirty(d));
    ASSERT_EQ(shadow(d, XEN_DOMCTL_SHADOW_OP_ENABLE,
                     XEN_DOMCTL_SHADOW_ENABLE_LOG_DIRTY), 0);
    ASSERT(paging_mode_log_dirty(d));

    /* CLEAN/PEEK mode may hold only LOGDIRTY_FINAL. */
    ASSERT_EQ(shadow(d, XEN_DOMCTL_SHADOW_OP_PEEK,
                     XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL), 0);
    ASSERT_EQ(shadow(d, XEN_DOMCTL_SHADOW_OP_CLEAN, 2), -EINVAL);
    ASSERT_EQ(shadow(d, 99, 0), -EINVAL);

    /* No allocation pool in ferry: accepted, reads as 0. */
    {
        struct xen_domctl_shadow_op sc = {
            .op = XEN_DOMCTL_SHADOW_OP_SET_ALLOCATION, .mb = 8,
        };

        ASSERT_EQ(domctl_shadow_op(d, &sc), 0);
        sc.op = XEN_DOMCTL_SHADOW_OP_GET_ALLOCATION;
        sc.mb = 77;
        ASSERT_EQ(domctl_shadow_op(d, &sc), 0);
        ASSERT_EQ(sc.mb, 0);
    }

    /* Not on oneself, nor on a domain without vCPU 0. */
    hvtest_as(d, 0);
    ASSERT_EQ(shadow(d, XEN_DOMCTL_SHADOW_OP_OFF, 0), -EINVAL);
    ASSERT(hv_log_contains("Tried to do a paging op on itself."));
    as_dom0();
    ASSERT_EQ(shadow(novcpu, XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, 0),
              -EINVAL);
    ASSERT(!paging_mode_log_dirty(novcpu));

    hvtest_destroy(novcpu);
    /* Nor on a dying one; destruction frees the bitmap. */
    ASSERT(get_domain(d));
    hvtest_destroy(d);
    ASSERT(!paging_mode_log_dirty(d));
    ASSERT(d->logdirty.bitmap == NULL);
    ASSERT_EQ(shadow(d, XEN_DOMCTL_SHADOW_OP_PEEK, 0), -EINVAL);
    put_domain(d);
    hvtest_done();
}

TEST(logdirty_peek_keeps_clean_resets_bits_at_pfns)
{
    static uint8_t bm[0x40000 / 8];
    struct xen_domctl_shadow_op sc;
    struct domain *d, *e;
    mfn_t a, b, c, foreign;

    hvtest_host(HVTEST_MEM_MB);
    e = hvtest_domain(16, 1);
    foreign = hvtest_frame(e, 5);
    d = hvtest_domain(16, 1);
    a = hvtest_frame(d, 5);
    b = hvtest_frame(d, 0x8001);        /* the second leaf */
    c = hvtest_frame(d, 0x3ffff);
    as_dom0();

    /* Disabled: marks are ignored. */
    paging_mark_dirty(d, a);
    ASSERT_EQ(shadow(d, XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, 0), 0);
    ASSERT_EQ(peek(d, XEN_DOMCTL_SHADOW_OP_PEEK, NULL, 0x40000, &sc), 0);
    ASSERT_EQ(sc.stats.dirty_count, 0);

    paging_mark_dirty(d, a);
    paging_mark_dirty(d, a);            /* counted once */
    paging_mark_dirty(d, b);
    paging_mark_dirty(d, c);
    paging_mark_pfn_dirty(d, 0x20);
    /* Not marked: M2P-invalid shared_info, another domain's frame. */
    paging_mark_dirty(d, d->shared_info_mfn);
    paging_mark_dirty(d, foreign);
    paging_mark_pfn_dirty(d, INVALID_M2P_ENTRY);
    paging_note_write_fault(d);
    paging_note_write_fault(d);

    memset(bm, 0xff, sizeof(bm));
    ASSERT_EQ(peek(d, XEN_DOMCTL_SHADOW_OP_PEEK, bm, 0x40000, &sc), 0);
    ASSERT_EQ(sc.stats.dirty_count, 4);
    ASSERT_EQ(sc.stats.fault_count, 2);
    ASSERT_EQ(sc.pages, 0x40000);
    ASSERT(bit(bm, 5) && bit(bm, 0x8001) && bit(bm, 0x3ffff) &&
           bit(bm, 0x20));
    ASSERT(!bit(bm, 4) && !bit(bm, 6) && !bit(bm, 0x8000) &&
           !bit(bm, 0x10000));
    {
        unsigned int n = 0;

        for ( size_t i = 0; i < sizeof(bm); i++ )
            n += (unsigned int)__builtin_popcount(bm[i]);
        ASSERT_EQ(n, 4);
    }

    /* PEEK again: unchanged.  CLEAN: same answer, then all reset. */
    ASSERT_EQ(peek(d, XEN_DOMCTL_SHADOW_OP_PEEK, bm, 0x40000, &sc), 0);
    ASSERT_EQ(sc.stats.dirty_count, 4);
    memset(bm, 0, sizeof(bm));
    ASSERT_EQ(peek(d, XEN_DOMCTL_SHADOW_OP_CLEAN, bm, 0x40000, &sc), 0);
    ASSERT_EQ(sc.stats.dirty_count, 4);
    ASSERT_EQ(sc.stats.fault_count, 2);
    ASSERT(bit(bm, 5) && bit(bm, 0x3ffff));
    memset(bm, 0xff, sizeof(bm));
    ASSERT_EQ(peek(d, XEN_DOMCTL_SHADOW_OP_CLEAN, bm, 0x40000, &sc), 0);
    ASSERT_EQ(sc.stats.dirty_count, 0);
    ASSERT_EQ(sc.stats.fault_count, 0);
    for ( size_t i = 0; i < sizeof(bm); i++ )
        if ( bm[i] )
            FAIL("byte %zu is %#x after a second CLEAN", i, bm[i]);

    /* A marked PFN after CLEAN is counted afresh. */
    paging_mark_dirty(d, b);
    ASSERT_EQ(peek(d, XEN_DOMCTL_SHADOW_OP_PEEK, NULL, 0x40000, &sc), 0);
    ASSERT_EQ(sc.stats.dirty_count, 1);

    /* OFF frees the bitmap; re-enabling starts from nothing. */
    ASSERT_EQ(shadow(d, XEN_DOMCTL_SHADOW_OP_OFF, 0), 0);
    ASSERT(d->logdirty.bitmap == NULL);
    ASSERT_EQ(shadow(d, XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, 0), 0);
    memset(bm, 0xff, sizeof(bm));
    ASSERT_EQ(peek(d, XEN_DOMCTL_SHADOW_OP_PEEK, bm, 0x40000, &sc), 0);
    ASSERT_EQ(sc.stats.dirty_count, 0);
    ASSERT_EQ(bm[0x8001 / 8], 0);
    hvtest_destroy(d);
    hvtest_destroy(e);
    hvtest_done();
}

TEST(logdirty_partial_byte_and_pages_trimmed_to_trie)
{
    uint8_t bm[3];
    struct xen_domctl_shadow_op sc;
    struct domain *d;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(16, 1);
    as_dom0();
    ASSERT_EQ(shadow(d, XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, 0), 0);
    paging_mark_pfn_dirty(d, 0);
    paging_mark_pfn_dirty(d, 17);
    paging_mark_pfn_dirty(d, 18);       /* beyond `pages`: not copied */

    /* 18 PFNs: ceil(18 / 8) = 3 bytes, no more. */
    memset(bm, 0xee, sizeof(bm));
    ASSERT_EQ(peek(d, XEN_DOMCTL_SHADOW_OP_PEEK, bm, 18, &sc), 0);
    ASSERT_EQ(sc.pages, 18);
    ASSERT_HEX(bm[0], 0x01);
    ASSERT_HEX(bm[1], 0x00);
    ASSERT_HEX(bm[2], 0x06);            /* the whole byte is copied */
    ASSERT_EQ(sc.stats.dirty_count, 3);

    /* PFN bits above 41 are ignored, as in Xen's four-level trie. */
    paging_mark_pfn_dirty(d, (1ULL << 42) + 18);
    ASSERT_EQ(peek(d, XEN_DOMCTL_SHADOW_OP_PEEK, NULL, 18, &sc), 0);
    ASSERT_EQ(sc.stats.dirty_count, 3);

    /* A null bitmap asks for stats; `pages` is cut to what is covered. */
    ASSERT_EQ(peek(d, XEN_DOMCTL_SHADOW_OP_CLEAN, NULL, 1ULL << 50, &sc), 0);
    ASSERT_HEX(sc.pages, 1ULL << 42);
    ASSERT_EQ(sc.stats.dirty_count, 3);
    memset(bm, 0xee, sizeof(bm));
    ASSERT_EQ(peek(d, XEN_DOMCTL_SHADOW_OP_PEEK, bm, 24, &sc), 0);
    ASSERT_HEX(bm[0] | bm[1] | bm[2], 0);
    hvtest_destroy(d);
    hvtest_done();
}

TEST(logdirty_pin_and_machphys_update_mark_pfns)
{
    static uint8_t bm[0x100 / 8];
    struct xen_domctl_shadow_op sc;
    struct mmu_update req;
    unsigned int done = 0;
    struct domain *d;
    mfn_t l1, data;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(16, 1);
    l1 = hvtest_frame(d, 0x10);
    data = hvtest_frame(d, 0x20);
    as_dom0();
    ASSERT_EQ(shadow(d, XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, 0), 0);

    /* Pinning validates the table: its PFN is marked. */
    hvtest_as(d, 0);
    ASSERT_EQ(hvtest_mmuext(MMUEXT_PIN_L1_TABLE, l1), 0);
    as_dom0();
    ASSERT_EQ(peek(d, XEN_DOMCTL_SHADOW_OP_CLEAN, bm, 0x100, &sc), 0);
    ASSERT(bit(bm, 0x10));
    ASSERT(!bit(bm, 0x20));

    /* MMU_MACHPHYS_UPDATE marks the new PFN, not the old one. */
    hvtest_as(d, 0);
    req.ptr = (data << PAGE_SHIFT) | MMU_MACHPHYS_UPDATE;
    req.val = 0x42;
    ASSERT_EQ(do_mmu_update(&req, 1, &done, DOMID_SELF), 0);
    ASSERT_EQ(get_gpfn_from_mfn(data), 0x42);
    as_dom0();
    memset(bm, 0, sizeof(bm));
    ASSERT_EQ(peek(d, XEN_DOMCTL_SHADOW_OP_CLEAN, bm, 0x100, &sc), 0);
    ASSERT_EQ(sc.stats.dirty_count, 1);
    ASSERT(bit(bm, 0x42));
    ASSERT(!bit(bm, 0x20));

    hvtest_as(d, 0);
    ASSERT_EQ(hvtest_mmuext(MMUEXT_UNPIN_TABLE, l1), 0);
    as_dom0();
    HVTEST_AUDIT_CLEAN();
    hvtest_destroy(d);
    hvtest_done();
}

/*
 * Markers on several threads against CLEANs on another: every PFN marked
 * is reported by exactly one CLEAN or the final PEEK, and the bitmap grows
 * under the markers' feet without losing bits (run under TSan too).
 */
#define LD_THREADS 4
#define LD_PFNS_PER_THREAD 20000

struct ld_arg
{
    struct domain *d;
    unsigned int id;
};

static void *ld_marker(void *p)
{
    struct ld_arg *a = p;

    for ( uint64_t i = 0; i < LD_PFNS_PER_THREAD; i++ )
    {
        /* Spread over many leaves so that nodes are added concurrently. */
        uint64_t pfn = i * LD_THREADS + a->id;

        paging_mark_pfn_dirty(a->d, pfn * 97);
        paging_mark_pfn_dirty(a->d, pfn * 97);
    }
    return NULL;
}

TEST_TIMEOUT(logdirty_concurrent_marks_and_cleans_lose_nothing, 120)
{
    const uint64_t total = (uint64_t)LD_THREADS * LD_PFNS_PER_THREAD;
    const uint64_t pages = total * 97;
    uint8_t *seen = calloc(pages / 8 + 1, 1);
    uint8_t *bm = calloc(pages / 8 + 1, 1);
    struct ld_arg args[LD_THREADS];
    pthread_t t[LD_THREADS];
    struct xen_domctl_shadow_op sc;
    struct domain *d;
    uint64_t n = 0;

    ASSERT(seen && bm);
    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(16, 1);
    as_dom0();
    ASSERT_EQ(shadow(d, XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, 0), 0);

    for ( unsigned int i = 0; i < LD_THREADS; i++ )
    {
        args[i].d = d;
        args[i].id = i;
        ASSERT_EQ(pthread_create(&t[i], NULL, ld_marker, &args[i]), 0);
    }
    for ( unsigned int round = 0; round < 30; round++ )
    {
        ASSERT_EQ(peek(d, XEN_DOMCTL_SHADOW_OP_CLEAN, bm, pages, &sc), 0);
        for ( uint64_t i = 0; i < pages / 8 + 1; i++ )
            seen[i] |= bm[i];
    }
    for ( unsigned int i = 0; i < LD_THREADS; i++ )
        pthread_join(t[i], NULL);
    ASSERT_EQ(peek(d, XEN_DOMCTL_SHADOW_OP_CLEAN, bm, pages, &sc), 0);
    for ( uint64_t i = 0; i < pages / 8 + 1; i++ )
    {
        seen[i] |= bm[i];
        n += (uint64_t)__builtin_popcount(seen[i]);
    }
    ASSERT_EQ(n, total);
    for ( uint64_t p = 0; p < total; p++ )
        if ( !bit(seen, p * 97) )
            FAIL("pfn %#" PRIx64 " was never reported", p * 97);

    /* OFF while nobody marks; then marks are ignored. */
    ASSERT_EQ(shadow(d, XEN_DOMCTL_SHADOW_OP_OFF, 0), 0);
    paging_mark_pfn_dirty(d, 1);
    ASSERT(d->logdirty.bitmap == NULL);
    free(seen);
    free(bm);
    hvtest_destroy(d);
    hvtest_done();
}

/*
 * OFF frees the trie while markers may be inside it: it must wait for them
 * (under ASan a use after free, under TSan a race, if it did not).
 */
static _Atomic bool ld_stop;

static void *ld_toggle_marker(void *p)
{
    struct ld_arg *a = p;

    for ( uint64_t i = 0; !atomic_load(&ld_stop); i++ )
        paging_mark_pfn_dirty(a->d, (i * 7919 + a->id) % (1ULL << 24));
    return NULL;
}

TEST_TIMEOUT(logdirty_off_waits_for_markers, 120)
{
    struct ld_arg args[LD_THREADS];
    pthread_t t[LD_THREADS];
    struct xen_domctl_shadow_op sc;
    struct domain *d;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(16, 1);
    as_dom0();
    for ( unsigned int i = 0; i < LD_THREADS; i++ )
    {
        args[i].d = d;
        args[i].id = i;
        ASSERT_EQ(pthread_create(&t[i], NULL, ld_toggle_marker, &args[i]), 0);
    }
    for ( unsigned int round = 0; round < 1000; round++ )
    {
        ASSERT_EQ(shadow(d, XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, 0), 0);
        ASSERT_EQ(peek(d, XEN_DOMCTL_SHADOW_OP_CLEAN, NULL, 1ULL << 24, &sc),
                  0);
        ASSERT_EQ(shadow(d, XEN_DOMCTL_SHADOW_OP_OFF, 0), 0);
        ASSERT(d->logdirty.bitmap == NULL);
    }
    atomic_store(&ld_stop, true);
    for ( unsigned int i = 0; i < LD_THREADS; i++ )
        pthread_join(t[i], NULL);
    hvtest_destroy(d);
    hvtest_done();
}
