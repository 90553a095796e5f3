/* SPDX-License-Identifier: MIT */
/*
 * memory_op, grant tables and domain destruction: reference tests 18, 19,
 * 20, 25 and 27, reservation accounting, assign_pages limits, destruction
 * preempted at every stage, and grant map/unmap between two domains.
 *
 * (Test 22, pause counts, is domctl's and lives in test-domctl.c.)
 */
#include <sys/mman.h>

#include "hvtest.h"

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

/* memory_op run to completion through its continuations. */
static long memop(unsigned int cmd, void *arg)
{
    long rc;

    do {
        rc = do_memory_op(&cmd, arg);
    } while ( rc == -ERESTART );
    return rc;
}

static long reservation(unsigned int op, uint64_t *list, unsigned int nr,
                        unsigned int order, domid_t domid)
{
    struct xen_memory_reservation r = {
        .extent_start = list,
        .nr_extents = nr,
        .extent_order = order,
        .domid = domid,
    };

    return memop(op, &r);
}

static long populate(uint64_t *list, unsigned int nr, unsigned int order)
{
    return reservation(XENMEM_populate_physmap, list, nr, order, DOMID_SELF);
}

static long decrease(uint64_t *list, unsigned int nr)
{
    return reservation(XENMEM_decrease_reservation, list, nr, 0, DOMID_SELF);
}

static long memop_domain(unsigned int op, domid_t domid)
{
    struct xen_memory_domain md = { .domid = domid };

    return memop(op, &md);
}

static long add_to_physmap(unsigned int space, uint64_t idx, uint64_t gpfn)
{
    struct xen_add_to_physmap x = {
        .domid = DOMID_SELF, .space = space, .idx = idx, .gpfn = gpfn,
    };

    return memop(XENMEM_add_to_physmap, &x);
}

static long remove_from_physmap(uint64_t gpfn)
{
    struct xen_remove_from_physmap x = { .domid = DOMID_SELF, .gpfn = gpfn };

    return memop(XENMEM_remove_from_physmap, &x);
}

static uint32_t tot_pages(struct domain *d)
{
    return atomic_load(&d->tot_pages);
}

/*
 * A frame is back in the heap: nothing about it survives (invariant 14)
 * but the mark saying it waits for its scrub.
 */
#define ASSERT_FRAME_FREE(mfn)                                            \
    do {                                                                  \
        ASSERT_HEX(hvtest_caf(mfn) & ~PGC_need_scrub, PGC_state_free);    \
        ASSERT_HEX(hvtest_taf(mfn), 0);                                   \
        ASSERT(page_get_owner(mfn_to_page(mfn)) == NULL);                 \
        ASSERT_HEX(get_gpfn_from_mfn(mfn), INVALID_M2P_ENTRY);            \
    } while ( 0 )

/* The destroyed d gave back everything: its n frames and its pages. */
static void assert_all_freed(struct domain *d, const mfn_t *mfns,
                             unsigned int n, uint64_t free_before)
{
    ASSERT_EQ(tot_pages(d), 0);
    for ( unsigned int i = 0; i < n; i++ )
        ASSERT_FRAME_FREE(mfns[i]);
    ASSERT_EQ(hv_free_pages(), free_before);
}

/* Destroy d as the toolstack, to the end; returns the -ERESTARTs seen. */
static unsigned int destroy_counting(struct domain *d)
{
    unsigned int restarts = 0;
    int rc;

    set_current(host.dom0->vcpu[0]);
    while ( (rc = domain_kill(d)) == -ERESTART )
        restarts++;
    ASSERT_EQ(rc, 0);
    return restarts;
}

/* A translated (Arm-style) domain; current becomes its vCPU 0. */
static struct domain *translated_domain(unsigned int max_pages)
{
    struct domain *d;

    set_current(host.dom0->vcpu[0]);
    ASSERT_EQ(domain_create(DOMID_ANY, DOMCREATE_translated, 1, &d), 0);
    ASSERT_EQ(domctl_max_mem(d, (uint64_t)max_pages << 2), 0);
    hvtest_as(d, 0);
    return d;
}

/*
 * A PV domain's kernel address space: L4 -> L3 -> L2 -> L1 at index 0 of
 * each, pinned and installed as vCPU 0's base, so VA 0x0..0x1FF000 goes
 * through l1.  current is d's vCPU 0 on return.
 */
struct space
{
    mfn_t l4, l3, l2, l1;
};

static struct space make_space(struct domain *d, pfn_t pfn)
{
    struct space s;

    hvtest_as(d, 0);
    s.l4 = hvtest_frame(d, pfn);
    s.l3 = hvtest_frame(d, pfn + 1);
    s.l2 = hvtest_frame(d, pfn + 2);
    s.l1 = hvtest_frame(d, pfn + 3);
    hvtest_write_pte(s.l4, 0, hvtest_pte(s.l3, _PAGE_RW));
    hvtest_write_pte(s.l3, 0, hvtest_pte(s.l2, _PAGE_RW));
    hvtest_write_pte(s.l2, 0, hvtest_pte(s.l1, _PAGE_RW));
    ASSERT_EQ(hvtest_mmuext(MMUEXT_PIN_L4_TABLE, s.l4), 0);
    ASSERT_EQ(hvtest_mmuext(MMUEXT_NEW_BASEPTR, s.l4), 0);
    return s;
}

/* Grant ref of granter to grantee: flags, domid, frame. */
/* Frame 0 of granter's grant table, set up by granter itself. */
static struct grant_entry_v1 *grant_entries(struct domain *granter)
{
    struct gnttab_setup_table st = { .dom = DOMID_SELF, .nr_frames = 1 };
    uint64_t gframe = 0;
    struct vcpu *saved = current;

    st.frame_list = &gframe;
    hvtest_as(granter, 0);
    ASSERT_EQ(do_grant_table_op(GNTTABOP_setup_table, &st, 1), 0);
    ASSERT_EQ(st.status, GNTST_okay);
    set_current(saved);
    return map_domain_page(gframe);
}

static void write_grant(struct domain *granter, grant_ref_t ref,
                        uint16_t flags, domid_t grantee, uint32_t frame)
{
    struct grant_entry_v1 *e = grant_entries(granter) + ref;

    e->domid = grantee;
    e->frame = frame;
    e->flags = flags;
}

/*
 * The start of most grant tests: domain *a (max_pages a_pages) grants its
 * frame at PFN 0x30 as ref 5 to domain *b (b_vcpus vCPUs), which gets an
 * address space (*s, if s is not NULL).  Returns the granted frame.
 */
static mfn_t grant_setup(struct domain **a, unsigned int a_pages,
                         struct domain **b, unsigned int b_vcpus,
                         struct space *s)
{
    struct space space;
    mfn_t f;

    *a = hvtest_domain(a_pages, 1);
    f = hvtest_frame(*a, 0x30);
    *b = hvtest_domain(16, b_vcpus);
    space = make_space(*b, 0);
    if ( s )
        *s = space;
    write_grant(*a, 5, GTF_permit_access, (*b)->domain_id, (uint32_t)f);
    return f;
}

static uint16_t grant_flags(struct domain *granter, grant_ref_t ref)
{
    return grant_entries(granter)[ref].flags;
}

/* No mapping of a's ref 5 (frame f) is left: f is back to caf0. */
static void assert_grant_unmapped(struct domain *a, mfn_t f, uint64_t caf0)
{
    ASSERT_HEX(hvtest_caf(f), caf0);
    ASSERT_HEX(hvtest_tcount(f), 0);
    ASSERT_HEX(grant_flags(a, 5), GTF_permit_access);
}

static struct gnttab_map_grant_ref map_grant(uint64_t addr, uint32_t flags,
                                             grant_ref_t ref, domid_t dom)
{
    struct gnttab_map_grant_ref op = {
        .host_addr = addr, .flags = flags, .ref = ref, .dom = dom,
        .status = 99,
    };

    ASSERT_EQ(do_grant_table_op(GNTTABOP_map_grant_ref, &op, 1), 0);
    return op;
}

static int16_t unmap_grant(uint64_t addr, grant_handle_t handle)
{
    struct gnttab_unmap_grant_ref op = {
        .host_addr = addr, .handle = handle, .status = 99,
    };

    ASSERT_EQ(do_grant_table_op(GNTTABOP_unmap_grant_ref, &op, 1), 0);
    return op.status;
}

/*
 * The grant PTE: P|RW|A|D|NX|GNTTAB, plus US|GUEST_KERNEL (kernel map);
 * _PAGE_GNTTAB is 0 in a release build.
 */
static intpte_t grant_pte(mfn_t mfn, bool rw)
{
    return (mfn << PAGE_SHIFT) | _PAGE_PRESENT | _PAGE_ACCESSED |
           _PAGE_DIRTY | _PAGE_USER | (rw ? _PAGE_RW : 0) |
           put_pte_flags(_PAGE_GUEST_KERNEL | _PAGE_GNTTAB) | _PAGE_NX;
}

/* ------------------------------------------------------------------------
 * populate_physmap, decrease_reservation, accounting (tests 18, 19, 20)
 * ------------------------------------------------------------------------ */

TEST(populate_physmap_writes_mfn_back_and_m2p_pv_add_to_physmap_eacces)
{
    struct domain *d;
    uint64_t list[2] = { 0x10, 0x11 };
    struct xen_add_to_physmap_batch b = { .domid = DOMID_SELF, .size = 0 };
    unsigned int cmd = XENMEM_add_to_physmap_batch;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(16, 1);

    ASSERT_EQ(populate(list, 2, 0), 2);
    for ( unsigned int i = 0; i < 2; i++ )
    {
        /* The list now holds the MFN; the M2P maps it back to the GPFN. */
        ASSERT_NE(list[i], 0x10 + i);
        ASSERT_HEX(get_gpfn_from_mfn(list[i]), 0x10 + i);
        ASSERT_FRAME(list[i], PGC_allocated | 1, 0);
        ASSERT(page_get_owner(mfn_to_page(list[i])) == d);
    }
    ASSERT_EQ(tot_pages(d), 2);
    ASSERT_EQ(memop_domain(XENMEM_current_reservation, DOMID_SELF), 2);

    /* PV domains have no physmap in the hypervisor. */
    ASSERT_EQ(add_to_physmap(XENMAPSPACE_shared_info, 0, 5), -EACCES);
    ASSERT_EQ(add_to_physmap(XENMAPSPACE_gmfn, 0x10, 5), -EACCES);
    ASSERT_EQ(remove_from_physmap(0x10), -EACCES);
    ASSERT_EQ(do_memory_op(&cmd, &b), -EACCES);
    ASSERT_HEX(get_gpfn_from_mfn(list[0]), 0x10);

    HVTEST_AUDIT_CLEAN();
    hvtest_destroy(d);
    hvtest_done();
}

TEST(decrease_reservation_of_pinned_l1_lingers_until_unpin)
{
    struct domain *d;
    uint64_t list[1] = { 0x20 };
    mfn_t mfn;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(16, 1);
    ASSERT_EQ(populate(list, 1, 0), 1);
    mfn = list[0];
    ASSERT_EQ(hvtest_mmuext(MMUEXT_PIN_L1_TABLE, mfn), 0);
    ASSERT_HEX(hvtest_caf(mfn), PGC_allocated | 2);
    ASSERT_EQ(tot_pages(d), 1);

    /* Returns 1: only PGC_allocated goes; the pin keeps the frame. */
    ASSERT_EQ(decrease(list, 1), 1);
    ASSERT_HEX(hvtest_caf(mfn), 1);
    ASSERT_HEX(hvtest_taf(mfn), PGT_l1_page_table | PGT_validated |
                                PGT_pinned | 1);
    ASSERT_EQ(tot_pages(d), 1);
    ASSERT_HEX(get_gpfn_from_mfn(mfn), 0x20);
    HVTEST_AUDIT_CLEAN();

    /* The unpin drops the last reference: the frame is freed. */
    ASSERT_EQ(hvtest_mmuext(MMUEXT_UNPIN_TABLE, mfn), 0);
    ASSERT_EQ(tot_pages(d), 0);
    ASSERT_FRAME_FREE(mfn);
    HVTEST_AUDIT_CLEAN();

    /* A frame that is no longer ours: processing stops, 0 done. */
    ASSERT_EQ(decrease(list, 1), 0);
    ASSERT(hv_log_contains("Bad page free for Dom"));

    hvtest_destroy(d);
    hvtest_done();
}

TEST(max_mem_below_tot_pages_populate_returns_0_until_raised)
{
    struct domain *d;
    uint64_t list[4] = { 0, 1, 2, 3 }, more[1] = { 4 };
    uint64_t free_before;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(4, 1);
    ASSERT_EQ(populate(list, 4, 0), 4);

    set_current(host.dom0->vcpu[0]);
    ASSERT_EQ(domctl_max_mem(d, 2 << 2), 0);
    hvtest_as(d, 0);
    free_before = hv_free_pages();
    hv_log_clear();

    /* Over max_pages: no extent, and nothing else changes. */
    ASSERT_EQ(populate(more, 1, 0), 0);
    ASSERT_HEX(more[0], 4);
    ASSERT_EQ(tot_pages(d), 4);
    ASSERT_EQ(hv_free_pages(), free_before);
    ASSERT(hv_log_contains("Could not allocate order=0 extent: id="));
    ASSERT_EQ(memop_domain(XENMEM_maximum_reservation, DOMID_SELF), 2);
    HVTEST_AUDIT_CLEAN();

    set_current(host.dom0->vcpu[0]);
    ASSERT_EQ(domctl_max_mem(d, 5 << 2), 0);
    hvtest_as(d, 0);
    ASSERT_EQ(populate(more, 1, 0), 1);
    ASSERT_HEX(get_gpfn_from_mfn(more[0]), 4);
    ASSERT_EQ(tot_pages(d), 5);
    HVTEST_AUDIT_CLEAN();

    hvtest_destroy(d);
    hvtest_done();
}

TEST(assign_pages_e2big_at_max_pages_eperm_above)
{
    struct domain *d;
    struct page_info *pg;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(2, 1);
    hvtest_frame(d, 0);
    hvtest_frame(d, 1);

    pg = alloc_heap_pages(0, 0);
    ASSERT(pg);
    ASSERT_EQ(assign_pages(pg, 1, d, 0), -E2BIG);
    ASSERT(hv_log_contains("Over-allocation for d"));
    ASSERT(hv_log_contains(": 3 > 2"));

    set_current(host.dom0->vcpu[0]);
    ASSERT_EQ(domctl_max_mem(d, 1 << 2), 0);
    hvtest_as(d, 0);
    /* tot_pages already above max_pages. */
    ASSERT_EQ(assign_pages(pg, 1, d, 0), -EPERM);
    /* MEMF_no_refcount (PGC_extra) pages are not limited. */
    ASSERT_EQ(assign_pages(pg, 1, d, MEMF_no_refcount), 0);
    ASSERT_HEX(hvtest_caf(page_to_mfn(pg)), PGC_allocated | PGC_extra | 1);
    ASSERT_EQ(tot_pages(d), 3);
    ASSERT_EQ(memop_domain(XENMEM_current_reservation, DOMID_SELF), 2);
    HVTEST_AUDIT_CLEAN();

    hvtest_destroy(d);
    hvtest_done();
}

TEST(populate_decrease_accounting_order1_m2p_invalid_after_free)
{
    struct domain *d;
    uint64_t list[3] = { 0x40, 0x42, 0x44 }, mfns[3], big[1] = { 0 };
    uint64_t free_before;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(64, 1);
    free_before = hv_free_pages();

    /* A domU's extents are at most order 9: nothing happens above. */
    ASSERT_EQ(populate(big, 1, 10), 0);
    ASSERT_EQ(hv_free_pages(), free_before);

    ASSERT_EQ(populate(list, 3, 1), 3);
    ASSERT_EQ(tot_pages(d), 6);
    ASSERT_EQ(hv_free_pages(), free_before - 6);
    for ( unsigned int i = 0; i < 3; i++ )
    {
        mfns[i] = list[i];
        ASSERT_EQ(mfns[i] % 2, 0);
        ASSERT_HEX(get_gpfn_from_mfn(mfns[i]), 0x40 + 2 * i);
        ASSERT_HEX(get_gpfn_from_mfn(mfns[i] + 1), 0x41 + 2 * i);
    }
    ASSERT_EQ(memop_domain(XENMEM_current_reservation, DOMID_SELF), 6);
    ASSERT_EQ(memop_domain(XENMEM_maximum_reservation, DOMID_SELF), 64);
    HVTEST_AUDIT_CLEAN();

    /* Decrease the 6 frames one by one (order-0 extents of MFNs). */
    {
        uint64_t each[6];

        for ( unsigned int i = 0; i < 6; i++ )
            each[i] = mfns[i / 2] + i % 2;
        ASSERT_EQ(decrease(each, 6), 6);
    }
    ASSERT_EQ(tot_pages(d), 0);
    ASSERT_EQ(hv_free_pages(), free_before);
    for ( unsigned int i = 0; i < 3; i++ )
    {
        ASSERT_FRAME_FREE(mfns[i]);
        ASSERT_FRAME_FREE(mfns[i] + 1);
    }
    ASSERT_EQ(memop_domain(XENMEM_current_reservation, DOMID_SELF), 0);
    HVTEST_AUDIT_CLEAN();

    hvtest_destroy(d);
    hvtest_done();
}

TEST(populate_preempted_continues_at_start_extent)
{
    struct domain *d;
    uint64_t list[5] = { 7, 8, 9, 10, 11 };
    struct xen_memory_reservation r = {
        .extent_start = list, .nr_extents = 5, .domid = DOMID_SELF,
    };
    unsigned int cmd = XENMEM_populate_physmap, restarts = 0;
    long rc;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(16, 1);
    host.preempt_every = 1;

    /* The first call does extent 0, then asks to continue at 1. */
    rc = do_memory_op(&cmd, &r);
    ASSERT_EQ(rc, -ERESTART);
    ASSERT_HEX(cmd, XENMEM_populate_physmap | (1U << MEMOP_EXTENT_SHIFT));
    ASSERT_EQ(tot_pages(d), 1);
    restarts = 1;
    while ( (rc = do_memory_op(&cmd, &r)) == -ERESTART )
        restarts++;
    host.preempt_every = 0;

    ASSERT_EQ(rc, 5);
    ASSERT_EQ(restarts, 4);
    ASSERT_EQ(tot_pages(d), 5);
    for ( unsigned int i = 0; i < 5; i++ )
        ASSERT_HEX(get_gpfn_from_mfn(list[i]), 7 + i);

    /* A start extent at or past the end returns it unchanged. */
    cmd = XENMEM_populate_physmap | (5U << MEMOP_EXTENT_SHIFT);
    ASSERT_EQ(do_memory_op(&cmd, &r), 5);
    ASSERT_EQ(tot_pages(d), 5);
    HVTEST_AUDIT_CLEAN();

    hvtest_destroy(d);
    hvtest_done();
}

TEST(memory_info_ops_max_ram_page_gpfn_machphys_list)
{
    struct domain *d, *e;
    uint64_t chunks[4] = { 0 };
    struct xen_machphys_mfn_list ml = { .max_extents = 4,
                                        .extent_start = chunks };
    unsigned int cmd = XENMEM_maximum_ram_page | (1U << MEMOP_EXTENT_SHIFT);
    uint64_t m2p_bytes;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(16, 1);

    ASSERT_EQ(memop(XENMEM_maximum_ram_page, NULL), (long)host.max_page);
    ASSERT_EQ(do_memory_op(&cmd, NULL), -EINVAL);

    /* max_pfn 0 counts as 1: highest GPFN 0. */
    ASSERT_EQ(memop_domain(XENMEM_maximum_gpfn, DOMID_SELF), 0);
    *(uint64_t *)((uint8_t *)map_domain_page(d->shared_info_mfn) + 3088) =
        0x1000;
    ASSERT_EQ(memop_domain(XENMEM_maximum_gpfn, DOMID_SELF), 0xFFF);

    /* One MFN per 2 MiB of M2P, starting at the M2P's first frame. */
    m2p_bytes = host.max_page * 8;
    ASSERT_EQ(memop(XENMEM_machphys_mfn_list, &ml), 0);
    ASSERT_EQ(ml.nr_extents, (m2p_bytes + (2U << 20) - 1) >> 21);
    ASSERT_HEX(chunks[0], host.m2p_first_mfn);

    /* Another domU's numbers are not ours to read; unknown is -ESRCH. */
    e = hvtest_domain(8, 1);
    hvtest_as(d, 0);
    ASSERT_EQ(memop_domain(XENMEM_current_reservation, e->domain_id),
              -EPERM);
    ASSERT_EQ(memop_domain(XENMEM_current_reservation, 0x7000), -ESRCH);
    set_current(host.dom0->vcpu[0]);
    ASSERT_EQ(memop_domain(XENMEM_maximum_reservation, e->domain_id), 8);
    ASSERT_EQ(memop(63, NULL), -ENOSYS);

    hvtest_destroy(e);
    hvtest_destroy(d);
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * Destruction (test 25)
 * ------------------------------------------------------------------------ */

/*
 * A domain holding everything destruction must undo: a pinned 4-level tree
 * (L4 -> L3 -> {L2b, L2a}, L2a -> L1 -> data, L2a's slot 1 a read-only
 * linear entry to L2b), the same L4 as CR3, a GDT frame and a populated
 * frame.  Fills mfns[] with every frame it owns (shared_info included).
 */
static unsigned int build_busy_domain(struct domain *d, mfn_t *mfns,
                                      unsigned int nr_l1)
{
    mfn_t l4, l3, l2a, l2b, gdt, data;
    uint64_t list[1] = { 0x100 }, gdt_frames[1];
    unsigned int n = 0;

    hvtest_as(d, 0);
    l4 = mfns[n++] = hvtest_frame(d, 0);
    l3 = mfns[n++] = hvtest_frame(d, 1);
    l2b = mfns[n++] = hvtest_frame(d, 2);
    l2a = mfns[n++] = hvtest_frame(d, 3);
    data = mfns[n++] = hvtest_frame(d, 4);
    gdt = mfns[n++] = hvtest_frame(d, 5);
    hvtest_write_pte(l4, 0, hvtest_pte(l3, _PAGE_RW));
    /* L2b first: a linear entry may only name an already validated L2. */
    hvtest_write_pte(l3, 0, hvtest_pte(l2b, _PAGE_RW));
    hvtest_write_pte(l3, 1, hvtest_pte(l2a, _PAGE_RW));
    hvtest_write_pte(l2a, 1, hvtest_pte(l2b, 0));
    for ( unsigned int i = 0; i < nr_l1; i++ )
    {
        mfn_t l1 = mfns[n++] = hvtest_frame(d, 16 + i);

        hvtest_write_pte(l2a, 2 + i, hvtest_pte(l1, _PAGE_RW));
        for ( unsigned int j = 0; j < 8; j++ )
            hvtest_write_pte(l1, j, hvtest_pte(data, _PAGE_RW));
    }

    ASSERT_EQ(hvtest_mmuext(MMUEXT_PIN_L4_TABLE, l4), 0);
    ASSERT_EQ(hvtest_mmuext(MMUEXT_NEW_BASEPTR, l4), 0);
    gdt_frames[0] = gdt;
    ASSERT_EQ(pv_set_gdt(d->vcpu[0], gdt_frames, 512), 0);
    ASSERT_EQ(populate(list, 1, 0), 1);
    mfns[n++] = list[0];
    mfns[n++] = d->shared_info_mfn;

    /* What destruction has to undo. */
    ASSERT_HEX(hvtest_taf(l4), PGT_l4_page_table | PGT_validated |
                               PGT_pinned | 2);
    ASSERT_HEX(hvtest_caf(l4), PGC_allocated | 3);
    ASSERT_HEX(hvtest_taf(l2b), PGT_l2_page_table | PGT_validated | 2);
    ASSERT_EQ(page_linear_pt_count(mfn_to_page(l2a)), 1);
    ASSERT_EQ(page_linear_pt_count(mfn_to_page(l2b)), -1);
    ASSERT_HEX(hvtest_taf(gdt), PGT_seg_desc_page | PGT_validated | 1);
    ASSERT_HEX(hvtest_taf(data), PGT_writable_page | PGT_validated |
                                 (8 * nr_l1));
    HVTEST_AUDIT_CLEAN();
    return n;
}

/* Does any byte of the frame differ from zero? */
static bool frame_dirty(mfn_t mfn)
{
    const uint8_t *p = map_domain_page(mfn);

    for ( unsigned int i = 0; i < PAGE_SIZE; i++ )
        if ( p[i] )
            return true;
    return false;
}

/*
 * Issue 10: no later owner reads what a destroyed domain (or one that
 * ballooned a frame out) left in its frames: its RAM and its shared_info
 * alike.  Freed, they wait for their scrub (host.c); every frame the heap
 * hands out afterwards reads as zero.
 */
TEST(freed_frames_are_scrubbed_before_reuse)
{
    static struct page_info *held[HVTEST_MEM_MB << 8];
    struct page_info *pg;
    struct domain *d;
    mfn_t data, gone, si;
    uint64_t gmfn;
    unsigned int n = 0, seen = 0;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(16, 1);
    data = hvtest_frame(d, 0x30);
    gone = hvtest_frame(d, 0x31);
    si = d->shared_info_mfn;
    /* The guest's writes (recorded as its CPU records them). */
    hv_frame_written(data);
    memset(map_domain_page(data), 0xa5, PAGE_SIZE);
    hv_frame_written(gone);
    memset(map_domain_page(gone), 0x5a, PAGE_SIZE);
    /* The hypervisor's own, which nothing records. */
    memset((uint8_t *)map_domain_page(si) + 1024, 0x3c, 512);

    /* Ballooned out by a live domain (PV: by MFN). */
    hvtest_as(d, 0);
    gmfn = gone;
    ASSERT_EQ(decrease(&gmfn, 1), 1);
    ASSERT_FRAME_FREE(gone);
    ASSERT_HEX(hvtest_caf(gone), PGC_state_free | PGC_need_scrub);

    hvtest_destroy(d);
    ASSERT_FRAME_FREE(data);
    ASSERT_HEX(hvtest_caf(data), PGC_state_free | PGC_need_scrub);
    ASSERT_HEX(hvtest_caf(si), PGC_state_free | PGC_need_scrub);
    HVTEST_AUDIT_CLEAN();

    /* Take every free frame: each reads as zero, the three included. */
    while ( (pg = alloc_heap_pages(0, 0)) )
    {
        mfn_t m = page_to_mfn(pg);

        ASSERT(n < ARRAY_SIZE(held));
        held[n++] = pg;
        if ( frame_dirty(m) )
            FAIL("frame %#lx handed out holding data", (unsigned long)m);
        ASSERT(!hv_frame_maybe_nonzero(m));
        seen += m == data || m == gone || m == si;
    }
    ASSERT_EQ(seen, 3);
    while ( n )
        free_heap_pages(held[--n], 0, false);
    ASSERT_EQ(hv_scrub_pending(), 0);
    hvtest_done();
}

TEST(destroy_pinned_tree_cr3_gdt_linear_l2_frees_every_frame)
{
    struct domain *d;
    mfn_t mfns[32];
    uint64_t free_before;
    unsigned int n;

    hvtest_host(HVTEST_MEM_MB);
    free_before = hv_free_pages();
    d = hvtest_domain(64, 1);
    n = build_busy_domain(d, mfns, 2);
    ASSERT_EQ(tot_pages(d), n - 1);

    /* Keep the struct to look at it after the list's reference goes. */
    ASSERT(get_domain(d));
    ASSERT_EQ(destroy_counting(d), 0);
    ASSERT_EQ(atomic_load(&d->state), DOMSTATE_DEAD);
    assert_all_freed(d, mfns, n, free_before);
    ASSERT_EQ(atomic_load(&d->xenheap_pages), 0);
    /* Destroying a dead domain again is a no-op. */
    ASSERT_EQ(domain_kill(d), 0);
    put_domain(d);

    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(destroy_preempted_at_every_stage_still_frees_everything)
{
    static const unsigned int every[] = { 1, 2, 3, 7 };

    hvtest_host(HVTEST_MEM_MB);
    for ( unsigned int k = 0; k < ARRAY_SIZE(every); k++ )
    {
        struct domain *d;
        mfn_t mfns[32];
        uint64_t free_before = hv_free_pages();
        unsigned int n, restarts;

        d = hvtest_domain(64, 1);
        n = build_busy_domain(d, mfns, 4);
        ASSERT(get_domain(d));

        set_current(host.dom0->vcpu[0]);
        host.preempt_every = every[k];
        /* The first call goes no further than the first preemption. */
        ASSERT_EQ(domain_kill(d), -ERESTART);
        ASSERT_EQ(atomic_load(&d->state), DOMSTATE_DYING);
        ASSERT(domain_is_dying(d));
        restarts = 1 + destroy_counting(d);
        host.preempt_every = 0;
        DIAG("preempt_every %u: %u restarts", every[k], restarts);
        if ( every[k] == 1 )
            ASSERT(restarts >= 30);

        ASSERT_EQ(atomic_load(&d->state), DOMSTATE_DEAD);
        assert_all_freed(d, mfns, n, free_before);
        put_domain(d);
        HVTEST_AUDIT_CLEAN();
    }
    hvtest_done();
}

TEST(destroy_with_pin_interrupted_mid_tree_finishes_partial_pages)
{
    struct domain *d;
    mfn_t l4, l3, l2, l1a, l1b, data, mfns[8];
    uint64_t free_before;
    unsigned int done = 0, n = 0;

    hvtest_host(HVTEST_MEM_MB);
    free_before = hv_free_pages();
    d = hvtest_domain(16, 1);
    l4 = mfns[n++] = hvtest_frame(d, 0);
    l3 = mfns[n++] = hvtest_frame(d, 1);
    l2 = mfns[n++] = hvtest_frame(d, 2);
    l1a = mfns[n++] = hvtest_frame(d, 3);
    l1b = mfns[n++] = hvtest_frame(d, 4);
    data = mfns[n++] = hvtest_frame(d, 5);
    mfns[n++] = d->shared_info_mfn;
    hvtest_write_pte(l4, 0, hvtest_pte(l3, _PAGE_RW));
    hvtest_write_pte(l3, 0, hvtest_pte(l2, _PAGE_RW));
    hvtest_write_pte(l2, 0, hvtest_pte(l1a, _PAGE_RW));
    hvtest_write_pte(l2, 1, hvtest_pte(l1b, _PAGE_RW));
    hvtest_write_pte(l1a, 0, hvtest_pte(data, _PAGE_RW));
    hvtest_write_pte(l1b, 0, hvtest_pte(data, _PAGE_RW));

    /* The pin stops before L2 entry 1: the tree is left partial. */
    hv_inject_preempt(d->vcpu[0], 2, 1, INVALID_MFN, PREEMPT_PROMOTE, 1);
    ASSERT_EQ(hvtest_mmuext_once(MMUEXT_PIN_L4_TABLE, l4, &done), -ERESTART);
    ASSERT_HEX(hvtest_taf(l4) & (PGT_partial | PGT_count_mask),
               PGT_partial | 1);
    ASSERT_HEX(hvtest_taf(l2) & (PGT_partial | PGT_count_mask),
               PGT_partial | 1);
    ASSERT_HEX(hvtest_tcount(data), 1);
    ASSERT(get_domain(d));

    /* The guest never resumes: destruction finishes the partial pages. */
    destroy_counting(d);
    assert_all_freed(d, mfns, n, free_before);
    put_domain(d);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(destroy_self_einval_and_dom0_dies_in_host_dispose)
{
    struct domain *d, *e;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(16, 2);
    ASSERT_EQ(domain_kill(d), -EINVAL);
    ASSERT_EQ(atomic_load(&d->state), DOMSTATE_ALIVE);

    /* Domains left alive, with tables, go with the host (LSan checks). */
    build_busy_domain(d, (mfn_t[32]){ 0 }, 1);
    e = hvtest_domain(16, 1);
    make_space(e, 0);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * The xen-heap GFN of translated domains (test 27)
 * ------------------------------------------------------------------------ */

TEST(xenheap_gfn_add_twice_ebusy_until_removed)
{
    struct domain *d;
    struct page_info *si;
    uint64_t gframe = 0, free_before;
    struct gnttab_setup_table st = { .dom = DOMID_SELF, .nr_frames = 1,
                                     .frame_list = &gframe };
    mfn_t si_mfn, gt_mfn;

    hvtest_host(HVTEST_MEM_MB);
    free_before = hv_free_pages();
    d = translated_domain(16);
    ASSERT(d->translated);
    si_mfn = d->shared_info_mfn;
    si = mfn_to_page(si_mfn);
    ASSERT_HEX(page_get_xenheap_gfn(si), INVALID_GFN);

    /* At A: mapped, GFN recorded, M2P untouched (invariant 10). */
    ASSERT_EQ(add_to_physmap(XENMAPSPACE_shared_info, 0, 0x100), 0);
    ASSERT_HEX(page_get_xenheap_gfn(si), 0x100);
    ASSERT_HEX(gfn_to_mfn(d, 0x100), si_mfn);
    ASSERT_HEX(get_gpfn_from_mfn(si_mfn), INVALID_M2P_ENTRY);

    /* Again at B: -EBUSY, nothing changes; the same GFN is busy too. */
    ASSERT_EQ(add_to_physmap(XENMAPSPACE_shared_info, 0, 0x200), -EBUSY);
    ASSERT_EQ(add_to_physmap(XENMAPSPACE_shared_info, 0, 0x100), -EBUSY);
    ASSERT_HEX(page_get_xenheap_gfn(si), 0x100);
    ASSERT_HEX(gfn_to_mfn(d, 0x200), INVALID_MFN);
    ASSERT_HEX(gfn_to_mfn(d, 0x100), si_mfn);
    ASSERT_EQ(add_to_physmap(XENMAPSPACE_shared_info, 1, 0x200), -EINVAL);

    /* Removal checks the MFN it is told about. */
    ASSERT_EQ(guest_physmap_remove_page(d, 0x100, si_mfn + 1, 0), -EILSEQ);
    ASSERT_HEX(page_get_xenheap_gfn(si), 0x100);

    /* Remove A, add at B. */
    ASSERT_EQ(remove_from_physmap(0x100), 0);
    ASSERT_HEX(page_get_xenheap_gfn(si), INVALID_GFN);
    ASSERT_HEX(gfn_to_mfn(d, 0x100), INVALID_MFN);
    ASSERT_EQ(remove_from_physmap(0x100), -ENOENT);
    ASSERT_EQ(add_to_physmap(XENMAPSPACE_shared_info, 0, 0x200), 0);
    ASSERT_HEX(page_get_xenheap_gfn(si), 0x200);
    ASSERT_HEX(gfn_to_mfn(d, 0x200), si_mfn);

    /* Grant frames follow the same rule; setup_table reports the GFN. */
    ASSERT_EQ(add_to_physmap(XENMAPSPACE_grant_table, 0, 0x300), 0);
    ASSERT_EQ(add_to_physmap(XENMAPSPACE_grant_table, 0, 0x301), -EBUSY);
    ASSERT_EQ(do_grant_table_op(GNTTABOP_setup_table, &st, 1), 0);
    ASSERT_EQ(st.status, GNTST_okay);
    ASSERT_HEX(gframe, 0x300);
    gt_mfn = gfn_to_mfn(d, 0x300);
    ASSERT_HEX(page_get_xenheap_gfn(mfn_to_page(gt_mfn)), 0x300);
    ASSERT_HEX(get_gpfn_from_mfn(gt_mfn), INVALID_M2P_ENTRY);

    /* Mapping a xen-heap frame over another unhooks the one there. */
    ASSERT_EQ(remove_from_physmap(0x300), 0);
    ASSERT_EQ(add_to_physmap(XENMAPSPACE_grant_table, 0, 0x200), 0);
    ASSERT_HEX(page_get_xenheap_gfn(si), INVALID_GFN);
    ASSERT_HEX(page_get_xenheap_gfn(mfn_to_page(gt_mfn)), 0x200);
    HVTEST_AUDIT_CLEAN();

    hvtest_destroy(d);
    ASSERT_EQ(hv_free_pages(), free_before);
    hvtest_done();
}

/* The competing caller: shared_info at GFN 0x200, just before our lock. */
static unsigned int xenheap_race_fired;

static void xenheap_race_add_elsewhere(struct domain *d, mfn_t mfn,
                                       uint64_t gfn)
{
    (void)d;
    (void)mfn;
    (void)gfn;
    atomic_store(&hv_xenheap_add_race, NULL);
    xenheap_race_fired++;
    ASSERT_EQ(add_to_physmap(XENMAPSPACE_shared_info, 0, 0x200), 0);
}

/*
 * Two add_to_physmap calls of shared_info race, one at GFN 0x10, where a
 * RAM frame is, one at 0x200.  The one that loses gets -EBUSY and must
 * have changed nothing: Arm's Xen checks and sets under one p2m write
 * lock.  Checking, dropping the lock to give the RAM frame back, then
 * checking again would answer -EBUSY with the guest's frame at 0x10 gone.
 */
TEST(xenheap_gfn_race_ebusy_has_no_side_effect)
{
    struct domain *d;
    uint64_t list[1] = { 0x10 }, free_before;
    mfn_t ram, si_mfn;

    hvtest_host(HVTEST_MEM_MB);
    free_before = hv_free_pages();
    d = translated_domain(16);
    si_mfn = d->shared_info_mfn;
    ASSERT_EQ(populate(list, 1, 0), 1);
    ram = gfn_to_mfn(d, 0x10);
    ASSERT(mfn_valid(ram));

    xenheap_race_fired = 0;
    atomic_store(&hv_xenheap_add_race, xenheap_race_add_elsewhere);
    ASSERT_EQ(add_to_physmap(XENMAPSPACE_shared_info, 0, 0x10), -EBUSY);
    atomic_store(&hv_xenheap_add_race, NULL);
    ASSERT_EQ(xenheap_race_fired, 1);

    /* The winner's entry; the loser's destination exactly as it was. */
    ASSERT_HEX(page_get_xenheap_gfn(mfn_to_page(si_mfn)), 0x200);
    ASSERT_HEX(gfn_to_mfn(d, 0x200), si_mfn);
    ASSERT_HEX(gfn_to_mfn(d, 0x10), ram);
    ASSERT_HEX(hvtest_caf(ram), PGC_allocated | 1);
    ASSERT_HEX(get_gpfn_from_mfn(ram), 0x10);
    ASSERT_EQ(tot_pages(d), 1);
    HVTEST_AUDIT_CLEAN();

    /* Unraced, the RAM frame goes back to the heap once replaced. */
    ASSERT_EQ(remove_from_physmap(0x200), 0);
    ASSERT_EQ(add_to_physmap(XENMAPSPACE_shared_info, 0, 0x10), 0);
    ASSERT_HEX(gfn_to_mfn(d, 0x10), si_mfn);
    ASSERT_HEX(page_get_xenheap_gfn(mfn_to_page(si_mfn)), 0x10);
    ASSERT_EQ(tot_pages(d), 0);
    ASSERT_FRAME_FREE(ram);
    HVTEST_AUDIT_CLEAN();

    hvtest_destroy(d);
    ASSERT_EQ(hv_free_pages(), free_before);
    hvtest_done();
}

TEST(translated_populate_decrease_and_gmfn_move)
{
    struct domain *d;
    uint64_t list[2] = { 0x10, 0x11 }, free_before;
    mfn_t m0, m1;

    hvtest_host(HVTEST_MEM_MB);
    free_before = hv_free_pages();
    d = translated_domain(16);

    /* Translated: the list keeps GFNs; the p2m and M2P hold the map. */
    ASSERT_EQ(populate(list, 2, 0), 2);
    ASSERT_HEX(list[0], 0x10);
    m0 = gfn_to_mfn(d, 0x10);
    m1 = gfn_to_mfn(d, 0x11);
    ASSERT(mfn_valid(m0) && mfn_valid(m1));
    ASSERT_HEX(get_gpfn_from_mfn(m0), 0x10);

    /* Move GFN 0x10's frame to 0x20; a wrong source is -EXDEV. */
    ASSERT_EQ(add_to_physmap(XENMAPSPACE_gmfn, 0x10, 0x20), 0);
    ASSERT_HEX(gfn_to_mfn(d, 0x20), m0);
    ASSERT_HEX(gfn_to_mfn(d, 0x10), INVALID_MFN);
    ASSERT_HEX(get_gpfn_from_mfn(m0), 0x20);
    ASSERT_EQ(add_to_physmap(XENMAPSPACE_gmfn, 0x10, 0x21), -EINVAL);

    /* Moving onto a RAM frame gives that frame back. */
    ASSERT_EQ(add_to_physmap(XENMAPSPACE_gmfn, 0x20, 0x11), 0);
    ASSERT_HEX(gfn_to_mfn(d, 0x11), m0);
    ASSERT_EQ(tot_pages(d), 1);
    ASSERT_FRAME_FREE(m1);

    /* decrease_reservation takes GFNs here. */
    list[0] = 0x11;
    ASSERT_EQ(decrease(list, 1), 1);
    ASSERT_EQ(tot_pages(d), 0);
    ASSERT_FRAME_FREE(m0);
    ASSERT_HEX(gfn_to_mfn(d, 0x11), INVALID_MFN);
    HVTEST_AUDIT_CLEAN();

    hvtest_destroy(d);
    ASSERT_EQ(hv_free_pages(), free_before);
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * Grant tables
 * ------------------------------------------------------------------------ */

TEST(grant_setup_table_limits_and_frames)
{
    struct domain *d;
    uint64_t frames[4] = { 0 };
    struct gnttab_setup_table st = { .dom = DOMID_SELF, .nr_frames = 4,
                                     .frame_list = frames };
    struct gnttab_query_size qs = { .dom = DOMID_SELF };
    uint64_t free_before;

    hvtest_host(HVTEST_MEM_MB);
    free_before = hv_free_pages();
    d = hvtest_domain(16, 1);

    ASSERT_EQ(do_grant_table_op(GNTTABOP_setup_table, &st, 2), -EINVAL);
    ASSERT_EQ(do_grant_table_op(GNTTABOP_query_size, &qs, 1), 0);
    ASSERT_EQ(qs.status, GNTST_okay);
    ASSERT_EQ(qs.nr_frames, 1);
    ASSERT_EQ(qs.max_nr_frames, 64);

    st.nr_frames = 65;
    ASSERT_EQ(do_grant_table_op(GNTTABOP_setup_table, &st, 1), 0);
    ASSERT_EQ(st.status, GNTST_general_error);
    ASSERT(hv_log_contains("is limited to 64 grant-table frames"));

    st.nr_frames = 4;
    ASSERT_EQ(do_grant_table_op(GNTTABOP_setup_table, &st, 1), 0);
    ASSERT_EQ(st.status, GNTST_okay);
    ASSERT(hv_log_contains("grant table from 1 to 4 frames"));
    for ( unsigned int i = 0; i < 4; i++ )
    {
        /* Xen-heap, shared writable, M2P invalid, owned by d. */
        ASSERT_HEX(hvtest_caf(frames[i]), PGC_xen_heap | PGC_allocated | 1);
        ASSERT_HEX(hvtest_taf(frames[i]), PGT_writable_page |
                                          PGT_validated | 1);
        ASSERT_HEX(get_gpfn_from_mfn(frames[i]), INVALID_M2P_ENTRY);
        ASSERT(page_get_owner(mfn_to_page(frames[i])) == d);
        for ( unsigned int j = 0; j < i; j++ )
            ASSERT_NE(frames[i], frames[j]);
    }
    ASSERT_EQ(atomic_load(&d->xenheap_pages), 5);
    ASSERT_EQ(do_grant_table_op(GNTTABOP_query_size, &qs, 1), 0);
    ASSERT_EQ(qs.nr_frames, 4);
    ASSERT_EQ(do_grant_table_op(42, &qs, 1), -ENOSYS);
    qs.dom = 0x7000;
    ASSERT_EQ(do_grant_table_op(GNTTABOP_query_size, &qs, 1), 0);
    ASSERT_EQ(qs.status, GNTST_bad_domain);
    HVTEST_AUDIT_CLEAN();

    hvtest_destroy(d);
    for ( unsigned int i = 0; i < 4; i++ )
        ASSERT_FRAME_FREE(frames[i]);
    ASSERT_EQ(hv_free_pages(), free_before);
    hvtest_done();
}

TEST(grant_map_unmap_counts_general_and_writable_between_two_domains)
{
    struct domain *a, *b;
    struct space s;
    struct gnttab_map_grant_ref m;
    mfn_t f;
    uint64_t caf0, taf0;

    hvtest_host(HVTEST_MEM_MB);
    f = grant_setup(&a, 16, &b, 1, &s);
    caf0 = hvtest_caf(f);
    taf0 = hvtest_taf(f);
    ASSERT_HEX(caf0, PGC_allocated | 1);
    ASSERT_HEX(taf0, 0);

    /* B maps A's ref 5 writable at VA 0x3000: L1 slot 3. */
    hvtest_as(b, 0);
    m = map_grant(0x3000, GNTMAP_host_map, 5, a->domain_id);
    ASSERT_EQ(m.status, GNTST_okay);
    ASSERT_HEX(m.dev_bus_addr, f << PAGE_SHIFT);
    ASSERT_FRAME(f, caf0 + 1, PGT_writable_page | PGT_validated | 1);
    ASSERT_HEX(hvtest_read_pte(s.l1, 3), grant_pte(f, true));
    ASSERT_HEX(grant_flags(a, 5),
               GTF_permit_access | GTF_reading | GTF_writing);
    HVTEST_AUDIT_CLEAN();

    /* Unmap: the PTE goes, and the counts are back where they were. */
    hvtest_as(b, 0);
    ASSERT_EQ(unmap_grant(0x3000, m.handle), GNTST_okay);
    ASSERT_HEX(hvtest_read_pte(s.l1, 3), 0);
    ASSERT_HEX(hvtest_caf(f), caf0);
    /* A writable type keeps its type and validated bit at count 0. */
    ASSERT_HEX(hvtest_taf(f), PGT_writable_page | PGT_validated);
    ASSERT_HEX(grant_flags(a, 5), GTF_permit_access);
    HVTEST_AUDIT_CLEAN();

    /* The handle is free again. */
    hvtest_as(b, 0);
    ASSERT_EQ(unmap_grant(0x3000, m.handle), GNTST_bad_handle);
    ASSERT(hv_log_contains("Zero flags for d"));

    /* Read-only: one general ref, no type ref, no RW in the PTE. */
    m = map_grant(0x4000, GNTMAP_host_map | GNTMAP_readonly, 5,
                  a->domain_id);
    ASSERT_EQ(m.status, GNTST_okay);
    ASSERT_FRAME(f, caf0 + 1, PGT_writable_page | PGT_validated);
    ASSERT_HEX(hvtest_read_pte(s.l1, 4), grant_pte(f, false));
    ASSERT_HEX(grant_flags(a, 5), GTF_permit_access | GTF_reading);
    HVTEST_AUDIT_CLEAN();
    hvtest_as(b, 0);
    ASSERT_EQ(unmap_grant(0x4000, m.handle), GNTST_okay);
    ASSERT_HEX(hvtest_caf(f), caf0);
    ASSERT_HEX(grant_flags(a, 5), GTF_permit_access);

    /* By PTE machine address (contains_pte): slot 6 of B's L1. */
    m = map_grant((s.l1 << PAGE_SHIFT) + 6 * 8,
                  GNTMAP_host_map | GNTMAP_contains_pte, 5, a->domain_id);
    ASSERT_EQ(m.status, GNTST_okay);
    ASSERT_HEX(hvtest_read_pte(s.l1, 6), grant_pte(f, true));
    ASSERT_FRAME(f, caf0 + 1, PGT_writable_page | PGT_validated | 1);
    HVTEST_AUDIT_CLEAN();
    hvtest_as(b, 0);
    {
        struct gnttab_unmap_grant_ref u = {
            .host_addr = (s.l1 << PAGE_SHIFT) + 6 * 8, .handle = m.handle,
        };

        ASSERT_EQ(do_grant_table_op(GNTTABOP_unmap_grant_ref, &u, 1), 0);
        ASSERT_EQ(u.status, GNTST_okay);
    }
    ASSERT_HEX(hvtest_caf(f), caf0);
    ASSERT_HEX(hvtest_tcount(f), 0);
    HVTEST_AUDIT_CLEAN();

    hvtest_destroy(b);
    hvtest_destroy(a);
    hvtest_done();
}

TEST(grant_map_status_codes_as_xen)
{
    struct domain *a, *b, *c;
    mfn_t f, g, l1;
    struct space s;
    uint64_t caf_f;

    hvtest_host(HVTEST_MEM_MB);
    a = hvtest_domain(16, 1);
    f = hvtest_frame(a, 0x30);
    l1 = hvtest_frame(a, 0x31);
    b = hvtest_domain(16, 1);
    s = make_space(b, 0);
    c = hvtest_domain(16, 1);
    g = hvtest_frame(c, 0x40);
    write_grant(a, 1, GTF_permit_access, b->domain_id, (uint32_t)f);
    write_grant(a, 2, GTF_permit_access, c->domain_id, (uint32_t)f);
    write_grant(a, 3, GTF_permit_access | GTF_readonly, b->domain_id,
                (uint32_t)f);
    write_grant(a, 4, GTF_permit_access, b->domain_id, (uint32_t)g);
    write_grant(a, 6, GTF_permit_access, b->domain_id, (uint32_t)l1);
    hvtest_as(a, 0);
    ASSERT_EQ(hvtest_mmuext(MMUEXT_PIN_L1_TABLE, l1), 0);
    caf_f = hvtest_caf(f);
    hvtest_as(b, 0);

    ASSERT_EQ(map_grant(0x3000, 0, 1, a->domain_id).status,
              GNTST_bad_gntref);
    ASSERT(hv_log_contains("Bad flags in grant map op: 0"));
    ASSERT_EQ(map_grant(0x3000, GNTMAP_host_map, 1, 0x7000).status,
              GNTST_bad_domain);
    ASSERT_EQ(map_grant(0x3000, GNTMAP_host_map, 512, a->domain_id).status,
              GNTST_bad_gntref);
    ASSERT(hv_log_contains("Bad ref 0x200 for d"));
    /* Granted to another domain. */
    ASSERT_EQ(map_grant(0x3000, GNTMAP_host_map, 2, a->domain_id).status,
              GNTST_general_error);
    ASSERT(hv_log_contains("Bad flags (1) or dom"));
    /* Read-only grant, writable map. */
    ASSERT_EQ(map_grant(0x3000, GNTMAP_host_map, 3, a->domain_id).status,
              GNTST_general_error);
    ASSERT(hv_log_contains("Attempt to write-pin a r/o grant entry"));
    ASSERT_HEX(grant_flags(a, 3), GTF_permit_access | GTF_readonly);
    /* The frame named is not the granter's. */
    ASSERT_EQ(map_grant(0x3000, GNTMAP_host_map, 4, a->domain_id).status,
              GNTST_bad_page);
    ASSERT_HEX(grant_flags(a, 4), GTF_permit_access);
    /* A writable map of a page table cannot get the writable type. */
    ASSERT_EQ(map_grant(0x3000, GNTMAP_host_map, 6, a->domain_id).status,
              GNTST_general_error);
    ASSERT(hv_log_contains("Could not pin grant frame"));
    ASSERT_HEX(grant_flags(a, 6), GTF_permit_access);
    /* No L1 for the address: nothing stays behind. */
    ASSERT_EQ(map_grant(0x40000000, GNTMAP_host_map, 1,
                        a->domain_id).status, GNTST_general_error);
    ASSERT(hv_log_contains("Could not find L1 PTE for linear address"));
    ASSERT_EQ(map_grant(0x3004, GNTMAP_host_map | GNTMAP_contains_pte, 1,
                        a->domain_id).status, GNTST_general_error);
    ASSERT(hv_log_contains("Misaligned PTE address"));
    ASSERT_HEX(hvtest_caf(f), caf_f);
    ASSERT_HEX(hvtest_tcount(f), 0);
    ASSERT_HEX(grant_flags(a, 1), GTF_permit_access);
    ASSERT_HEX(hvtest_read_pte(s.l1, 3), 0);
    /* Unknown handles. */
    ASSERT_EQ(unmap_grant(0x3000, 12345), GNTST_bad_handle);
    HVTEST_AUDIT_CLEAN();

    hvtest_destroy(c);
    hvtest_destroy(b);
    hvtest_destroy(a);
    hvtest_done();
}

TEST(grant_unmap_after_pte_changed_underneath_general_error)
{
    struct domain *a, *b;
    struct space s;
    struct gnttab_map_grant_ref m;
    mfn_t f;
    uint64_t caf0;

    hvtest_host(HVTEST_MEM_MB);
    f = grant_setup(&a, 16, &b, 1, &s);
    caf0 = hvtest_caf(f);

    hvtest_as(b, 0);
    m = map_grant(0x3000, GNTMAP_host_map, 5, a->domain_id);
    ASSERT_EQ(m.status, GNTST_okay);

    /* B zaps the grant PTE with mmu_update: that drops the page refs. */
    ASSERT_EQ(hvtest_pt_update(s.l1, 3, 0), 0);
    ASSERT_HEX(hvtest_caf(f), caf0);
    ASSERT_HEX(hvtest_tcount(f), 0);

    /* The entry no longer matches: general_error, counts untouched. */
    hv_log_clear();
    ASSERT_EQ(unmap_grant(0x3000, m.handle), GNTST_general_error);
    ASSERT(hv_log_contains("doesn't match grant"));
    ASSERT_HEX(hvtest_caf(f), caf0);
    ASSERT_HEX(hvtest_tcount(f), 0);
    /* The pins are stale: the granter still sees the grant in use. */
    ASSERT_HEX(grant_flags(a, 5),
               GTF_permit_access | GTF_reading | GTF_writing);
    HVTEST_AUDIT_CLEAN();

    /* A PTE now mapping another frame does not match either. */
    {
        mfn_t other = hvtest_frame(b, 0x50);

        hvtest_as(b, 0);
        ASSERT_EQ(hvtest_pt_update(s.l1, 3, hvtest_pte(other, _PAGE_RW)),
                  0);
        ASSERT_EQ(unmap_grant(0x3000, m.handle), GNTST_general_error);
        ASSERT_HEX(hvtest_tcount(other), 1);
    }

    /* B's destruction releases the stale pins. */
    hvtest_destroy(b);
    ASSERT_HEX(grant_flags(a, 5), GTF_permit_access);
    ASSERT_HEX(hvtest_caf(f), caf0);
    HVTEST_AUDIT_CLEAN();
    hvtest_destroy(a);
    hvtest_done();
}

/*
 * PTE bit 62 in the release build ferry mirrors (_PAGE_GNTTAB is 0): the
 * L1 disallow mask lets a guest set it, a grant PTE does not carry it, and
 * dropping a grant PTE through mmu_update (an implicit unmap) just drops
 * its refs: no log line, no fault, the mapper keeps running.  A debug Xen
 * refuses the bit (-EINVAL, "Bad L1 flags 400000"), marks grant PTEs with
 * it and faults the mapper on the implicit unmap.
 */
TEST(gnttab_pte_bit_62_is_the_guests_in_release_builds)
{
    const intpte_t bit62 = 1ULL << 62;
    struct domain *a, *b;
    struct gnttab_map_grant_ref m;
    struct space s;
    mfn_t f, own;
    uint64_t caf0;

    hvtest_host(HVTEST_MEM_MB);
    f = grant_setup(&a, 16, &b, 1, &s);
    caf0 = hvtest_caf(f);
    ASSERT_HEX(l1_disallow_mask(b), 0xFF000098U);
    ASSERT_HEX(l1_disallow_mask(b) & (1U << 22), 0);

    /* B's own frame, mapped RW with bit 62: accepted and kept. */
    hvtest_as(b, 0);
    own = hvtest_frame(b, 0x40);
    hv_log_clear();
    ASSERT_EQ(hvtest_pt_update(s.l1, 2, hvtest_pte(own, _PAGE_RW) | bit62),
              0);
    ASSERT_HEX(hvtest_read_pte(s.l1, 2),
               (own << PAGE_SHIFT) | bit62 | (1ULL << 52) | 0x07);
    ASSERT_FRAME(own, PGC_allocated | 2, PGT_writable_page | PGT_validated |
                 1);
    HVTEST_AUDIT_CLEAN();
    ASSERT_EQ(hvtest_pt_update(s.l1, 2, 0), 0);
    ASSERT_FRAME(own, PGC_allocated | 1, PGT_writable_page | PGT_validated);

    /* A grant PTE: P|RW|US|A|D, GUEST_KERNEL, NX; bit 62 clear. */
    m = map_grant(0x3000, GNTMAP_host_map, 5, a->domain_id);
    ASSERT_EQ(m.status, GNTST_okay);
    ASSERT_HEX(hvtest_read_pte(s.l1, 3),
               (f << PAGE_SHIFT) | 0x8010000000000067ULL);
    ASSERT_EQ(hvtest_read_pte(s.l1, 3) & bit62, 0);

    /* The implicit unmap: refs dropped, nothing logged, B not crashed. */
    ASSERT_EQ(hvtest_pt_update(s.l1, 3, 0), 0);
    ASSERT_HEX(hvtest_caf(f), caf0);
    ASSERT_HEX(hvtest_tcount(f), 0);
    ASSERT(!hv_log_contains("implicitly unmap"));
    ASSERT(!hv_log_contains("Bad L1 flags"));
    ASSERT_EQ(atomic_load(&b->is_shutting_down), false);
    HVTEST_AUDIT_CLEAN();

    hvtest_destroy(b);
    hvtest_destroy(a);
    hvtest_done();
}

TEST(grant_destroy_mapper_drops_pte_refs_and_pins)
{
    struct domain *a, *b;
    mfn_t f;
    uint64_t caf0;

    hvtest_host(HVTEST_MEM_MB);
    f = grant_setup(&a, 16, &b, 1, NULL);
    caf0 = hvtest_caf(f);
    hvtest_as(b, 0);
    ASSERT_EQ(map_grant(0x3000, GNTMAP_host_map, 5, a->domain_id).status,
              GNTST_okay);
    ASSERT_EQ(map_grant(0x5000, GNTMAP_host_map | GNTMAP_readonly, 5,
                        a->domain_id).status, GNTST_okay);
    ASSERT_HEX(hvtest_caf(f), caf0 + 2);
    ASSERT_HEX(hvtest_tcount(f), 1);

    /* The mapper dies with the grants still mapped. */
    hvtest_destroy(b);
    ASSERT(hv_log_contains("Grant release 0 ref 0x5 flags 0x2 d"));
    assert_grant_unmapped(a, f, caf0);
    HVTEST_AUDIT_CLEAN();

    hvtest_destroy(a);
    hvtest_done();
}

TEST(grant_destroy_granter_while_mapped_frame_lingers_until_unmap)
{
    struct domain *a, *b;
    struct gnttab_map_grant_ref m;
    uint64_t free_before;
    mfn_t f;

    hvtest_host(HVTEST_MEM_MB);
    free_before = hv_free_pages();
    f = grant_setup(&a, 16, &b, 1, NULL);
    hvtest_as(b, 0);
    m = map_grant(0x3000, GNTMAP_host_map, 5, a->domain_id);
    ASSERT_EQ(m.status, GNTST_okay);

    /* A dies: its frame stays, held by B's mapping, and so does A. */
    ASSERT(get_domain(a));
    hvtest_destroy(a);
    ASSERT_EQ(atomic_load(&a->state), DOMSTATE_DEAD);
    ASSERT_EQ(tot_pages(a), 1);
    ASSERT_HEX(hvtest_caf(f), 1);
    ASSERT_HEX(hvtest_tcount(f), 1);
    ASSERT(page_get_owner(mfn_to_page(f)) == a);

    /* B unmaps: the last reference goes, the frame is freed. */
    hvtest_as(b, 0);
    ASSERT_EQ(unmap_grant(0x3000, m.handle), GNTST_okay);
    ASSERT_EQ(tot_pages(a), 0);
    ASSERT_FRAME_FREE(f);
    put_domain(a);
    HVTEST_AUDIT_CLEAN();

    hvtest_destroy(b);
    ASSERT_EQ(hv_free_pages(), free_before);
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * Concurrency (for ThreadSanitizer and the final counts)
 * ------------------------------------------------------------------------ */

struct grant_worker
{
    struct domain *self, *granter;
    unsigned int vcpu;
    uint64_t addr;              /* VA, or PTE address with contains_pte */
    uint32_t flags;
    unsigned int rounds, mapped;
};

/* Map and unmap one grant over and over; every map that works unmaps. */
static void *grant_worker(void *arg)
{
    struct grant_worker *w = arg;

    hvtest_as(w->self, w->vcpu);
    for ( unsigned int i = 0; i < w->rounds; i++ )
    {
        struct gnttab_map_grant_ref m = {
            .host_addr = w->addr, .flags = w->flags, .ref = 5,
            .dom = w->granter->domain_id,
        };
        struct gnttab_unmap_grant_ref u = { .host_addr = w->addr };

        if ( do_grant_table_op(GNTTABOP_map_grant_ref, &m, 1) ||
             m.status != GNTST_okay )
            continue;
        w->mapped++;
        u.handle = m.handle;
        if ( do_grant_table_op(GNTTABOP_unmap_grant_ref, &u, 1) ||
             u.status != GNTST_okay )
            FAIL("unmap of a live mapping: status %d", u.status);
    }
    set_current(NULL);
    return NULL;
}

struct memop_worker
{
    struct domain *self;
    unsigned int rounds;
};

/* Populate and give back frames over and over. */
static void *memop_worker(void *arg)
{
    struct memop_worker *w = arg;

    hvtest_as(w->self, 0);
    for ( unsigned int i = 0; i < w->rounds; i++ )
    {
        uint64_t list[4] = { 0x200, 0x201, 0x202, 0x203 };

        if ( populate(list, 4, 0) != 4 || decrease(list, 4) != 4 )
            FAIL("populate/decrease round %u", i);
    }
    set_current(NULL);
    return NULL;
}

TEST(grant_maps_from_two_vcpus_race_granter_memops_counts_return)
{
    struct domain *a, *b;
    struct space s;
    mfn_t f;
    uint64_t caf0, free_before;
    pthread_t t[3];
    struct grant_worker g0, g1;
    struct memop_worker mw;

    hvtest_host(HVTEST_MEM_MB);
    free_before = hv_free_pages();
    f = grant_setup(&a, 32, &b, 2, &s);
    caf0 = hvtest_caf(f);
    set_current(NULL);

    g0 = (struct grant_worker){ .self = b, .vcpu = 0, .addr = 0x3000,
                                .flags = GNTMAP_host_map, .granter = a,
                                .rounds = 300 };
    g1 = (struct grant_worker){ .self = b, .vcpu = 1,
                                .addr = (s.l1 << PAGE_SHIFT) + 4 * 8,
                                .flags = GNTMAP_host_map |
                                         GNTMAP_contains_pte |
                                         GNTMAP_readonly,
                                .granter = a, .rounds = 300 };
    mw = (struct memop_worker){ .self = a, .rounds = 100 };
    ASSERT_EQ(pthread_create(&t[0], NULL, grant_worker, &g0), 0);
    ASSERT_EQ(pthread_create(&t[1], NULL, grant_worker, &g1), 0);
    ASSERT_EQ(pthread_create(&t[2], NULL, memop_worker, &mw), 0);
    for ( unsigned int i = 0; i < 3; i++ )
        pthread_join(t[i], NULL);

    ASSERT_EQ(g0.mapped, 300);
    ASSERT_EQ(g1.mapped, 300);
    assert_grant_unmapped(a, f, caf0);
    ASSERT_EQ(tot_pages(a), 1);
    HVTEST_AUDIT_CLEAN();

    hvtest_destroy(b);
    hvtest_destroy(a);
    ASSERT_EQ(hv_free_pages(), free_before);
    hvtest_done();
}

TEST(grant_maps_race_granter_destruction_every_frame_freed)
{
    struct domain *a, *b;
    uint64_t free_before;
    pthread_t t;
    struct grant_worker g;
    mfn_t f;

    hvtest_host(HVTEST_MEM_MB);
    free_before = hv_free_pages();
    f = grant_setup(&a, 32, &b, 1, NULL);
    ASSERT(get_domain(a));

    g = (struct grant_worker){ .self = b, .vcpu = 0, .addr = 0x3000,
                               .flags = GNTMAP_host_map, .granter = a,
                               .rounds = 2000 };
    ASSERT_EQ(pthread_create(&t, NULL, grant_worker, &g), 0);
    /* Kill A while B maps and unmaps its grant. */
    set_current(host.dom0->vcpu[0]);
    host.preempt_every = 3;
    destroy_counting(a);
    pthread_join(t, NULL);
    host.preempt_every = 0;

    /* Whatever B managed to map, it unmapped: A's frame is gone. */
    ASSERT_EQ(atomic_load(&a->state), DOMSTATE_DEAD);
    ASSERT_EQ(tot_pages(a), 0);
    ASSERT_FRAME_FREE(f);
    put_domain(a);
    HVTEST_AUDIT_CLEAN();

    hvtest_destroy(b);
    ASSERT_EQ(hv_free_pages(), free_before);
    hvtest_done();
}

TEST(grant_device_map_holds_refs_without_pte_released_at_destroy)
{
    struct domain *a, *b;
    struct gnttab_map_grant_ref m;
    struct gnttab_unmap_grant_ref u = { 0 };
    mfn_t f;
    uint64_t caf0;

    hvtest_host(HVTEST_MEM_MB);
    a = hvtest_domain(16, 1);
    f = hvtest_frame(a, 0x30);
    b = hvtest_domain(16, 1);
    write_grant(a, 5, GTF_permit_access, b->domain_id, (uint32_t)f);
    caf0 = hvtest_caf(f);

    /* A device mapping: the same refs as a host one, and no PTE. */
    hvtest_as(b, 0);
    m = map_grant(0, GNTMAP_device_map, 5, a->domain_id);
    ASSERT_EQ(m.status, GNTST_okay);
    ASSERT_HEX(m.dev_bus_addr, f << PAGE_SHIFT);
    ASSERT_FRAME(f, caf0 + 1, PGT_writable_page | PGT_validated | 1);

    /* A wrong bus address is refused; the right one unmaps. */
    u.handle = m.handle;
    u.dev_bus_addr = (f + 1) << PAGE_SHIFT;
    ASSERT_EQ(do_grant_table_op(GNTTABOP_unmap_grant_ref, &u, 1), 0);
    ASSERT_EQ(u.status, GNTST_bad_dev_addr);
    ASSERT(hv_log_contains("Bus address doesn't match gntref"));
    u.dev_bus_addr = f << PAGE_SHIFT;
    ASSERT_EQ(do_grant_table_op(GNTTABOP_unmap_grant_ref, &u, 1), 0);
    ASSERT_EQ(u.status, GNTST_okay);
    assert_grant_unmapped(a, f, caf0);

    /* Device and host at once take two general refs. */
    make_space(b, 0);
    m = map_grant(0x3000, GNTMAP_device_map | GNTMAP_host_map, 5,
                  a->domain_id);
    ASSERT_EQ(m.status, GNTST_okay);
    ASSERT_HEX(hvtest_caf(f), caf0 + 2);
    ASSERT_HEX(hvtest_tcount(f), 2);

    /*
     * The mapper dies: the PTE's refs go with its tables, the device's
     * with its grant mappings.
     */
    hvtest_destroy(b);
    assert_grant_unmapped(a, f, caf0);
    HVTEST_AUDIT_CLEAN();

    hvtest_destroy(a);
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * Background population of machine memory (issue 11 aim 6)
 * ------------------------------------------------------------------------ */

/* Is every page of frames [mfn, mfn + nr) resident in the memory file? */
static bool frames_resident(mfn_t mfn, uint64_t nr)
{
    unsigned char vec[POPULATE_CHUNK_FRAMES];

    ASSERT(nr <= POPULATE_CHUNK_FRAMES);
    ASSERT_EQ(mincore(map_domain_page(mfn), nr * PAGE_SIZE, vec), 0);
    for ( uint64_t i = 0; i < nr; i++ )
        if ( !(vec[i] & 1) )
            return false;
    return true;
}

static uint8_t pattern(uint64_t pfn, unsigned int off)
{
    return (uint8_t)(pfn * 131 + off * 7 + 1);
}

/*
 * The host answers before its memory is populated: a domain built while
 * the background thread has not reached its frames gets populated frames
 * (the allocator populates them; no page fault in a page loop), zeroed,
 * and what it writes survives the thread populating around it later.
 * The thread is held at its start, so "not reached yet" is certain.
 */
TEST(domain_built_while_machine_memory_is_populated_in_background)
{
    struct host_params p = {
        .memory_bytes = (uint64_t)HVTEST_MEM_MB << 20,
        .nr_control_vcpus = 2,
        .populate_held = true,
    };
    const unsigned int nr = 700;    /* more than one chunk */
    mfn_t mfn[700], last;
    struct domain *d;

    ASSERT_EQ(host_init(&p), 0);
    set_current(host.dom0->vcpu[0]);
    last = host.max_page - 1;
    /* Held: only what host_init allocated (M2P, Xen's tables) is in. */
    ASSERT(atomic_load(&host.populated_chunks) < host_nr_populate_chunks());
    ASSERT(!host_frame_populated(last));
    ASSERT(!frames_resident(last, 1));

    d = hvtest_domain(nr, 1);
    for ( unsigned int i = 0; i < nr; i++ )
    {
        uint8_t *v;

        mfn[i] = hvtest_frame(d, 0x100 + i);
        /* Resident before anyone touched it: the allocator populated it. */
        ASSERT(host_frame_populated(mfn[i]));
        ASSERT(frames_resident(mfn[i], 1));
        v = map_domain_page(mfn[i]);
        for ( unsigned int o = 0; o < PAGE_SIZE; o += 512 )
        {
            ASSERT_EQ(v[o], 0);
            v[o] = pattern(0x100 + i, o);
        }
    }
    /* Still held: the domain was built while population had not run. */
    ASSERT(!host_frame_populated(last));
    ASSERT(!frames_resident(last, 1));

    host_populate_release();
    host_populate_wait();
    ASSERT_EQ(atomic_load(&host.populated_chunks), host_nr_populate_chunks());
    for ( mfn_t m = 0; m < host.max_page; m += POPULATE_CHUNK_FRAMES )
        ASSERT(frames_resident(m, POPULATE_CHUNK_FRAMES));
    for ( unsigned int i = 0; i < nr; i++ )
    {
        const uint8_t *v = map_domain_page(mfn[i]);

        for ( unsigned int o = 0; o < PAGE_SIZE; o += 512 )
            ASSERT_EQ(v[o], pattern(0x100 + i, o));
    }
    HVTEST_AUDIT_CLEAN();
    hvtest_destroy(d);
    hvtest_done();
}
