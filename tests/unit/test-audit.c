/* SPDX-License-Identifier: MIT */
/*
 * Tests of the auditor (hypervisor/audit.c): it must accept every
 * consistent state, including the partial states between continuations,
 * and find each kind of broken state.
 *
 * Every test builds the same clean scenario (a pinned 4-level tree that is
 * also the vCPU's base, writable data mappings, a read-only self-map and a
 * linear L2 pair), checks a few of its counts by hand so that the auditor
 * is not the only judge, then corrupts one thing through the frame table,
 * asserts that audit_host() returns -EILSEQ naming the frame and the
 * expected value, restores it and asserts the host is clean again.
 */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hvtest.h"

struct scenario
{
    struct domain *d;
    mfn_t l4, l3, l2, l2b, l1, data[3];
};

static struct scenario s;

/*
 * l4[0] -> l3[0] -> l2[0] -> l1: data[0], data[1] RW, data[2] RO, l1 RO;
 * l2[1] -> l2b read-only (linear), l2b pinned on its own; l4 pinned and
 * installed as the base of vCPU 0.
 */
static void build_in_host(void)
{
    s.d = hvtest_domain(64, 2);
    s.l4 = hvtest_frame(s.d, 0x10);
    s.l3 = hvtest_frame(s.d, 0x11);
    s.l2 = hvtest_frame(s.d, 0x12);
    s.l2b = hvtest_frame(s.d, 0x13);
    s.l1 = hvtest_frame(s.d, 0x14);
    for ( unsigned int i = 0; i < 3; i++ )
        s.data[i] = hvtest_frame(s.d, 0x20 + i);

    hvtest_write_pte(s.l1, 0, hvtest_pte(s.data[0], _PAGE_RW));
    hvtest_write_pte(s.l1, 1, hvtest_pte(s.data[1], _PAGE_RW));
    hvtest_write_pte(s.l1, 2, hvtest_pte(s.data[2], 0));
    hvtest_write_pte(s.l1, 3, hvtest_pte(s.l1, 0));
    hvtest_write_pte(s.l2, 0, hvtest_pte(s.l1, _PAGE_RW | _PAGE_USER));
    hvtest_write_pte(s.l3, 0, hvtest_pte(s.l2, _PAGE_RW | _PAGE_USER));
    hvtest_write_pte(s.l4, 0, hvtest_pte(s.l3, _PAGE_RW | _PAGE_USER));

    ASSERT_EQ(hvtest_mmuext(MMUEXT_PIN_L4_TABLE, s.l4), 0);
    ASSERT_EQ(hvtest_mmuext(MMUEXT_NEW_BASEPTR, s.l4), 0);
    ASSERT_EQ(hvtest_mmuext(MMUEXT_PIN_L2_TABLE, s.l2b), 0);
    ASSERT_EQ(hvtest_pt_update(s.l2, 1, hvtest_pte(s.l2b, 0)), 0);
}

static void build(void)
{
    hvtest_host(HVTEST_MEM_MB);
    build_in_host();
}

/* audit_host must fail and its message contain both needles. */
static void expect_broken(const char *needle1, const char *needle2)
{
    char msg[512];

    ASSERT_EQ(audit_host(msg, sizeof(msg)), -EILSEQ);
    DIAG("auditor: %s", msg);
    ASSERT_CONTAINS(msg, needle1);
    if ( needle2 )
        ASSERT_CONTAINS(msg, needle2);
}

/* "mfn 0x1234 (d1 pfn 0x20): " as the auditor names a domain's frame. */
static const char *frame_name(mfn_t mfn)
{
    static char buf[4][96];
    static unsigned int n;
    char *b = buf[n++ % 4];

    snprintf(b, sizeof(buf[0]), "mfn %#lx (d%u pfn %#lx): ",
             (unsigned long)mfn, s.d->domain_id,
             (unsigned long)get_gpfn_from_mfn(mfn));
    return b;
}

TEST(clean_scenario_has_the_counts_of_invariants_1_and_2)
{
    char msg[512];

    build();
    /* alloc + one RW L1 entry. */
    ASSERT_HEX(hvtest_caf(s.data[0]), PGC_allocated | 2);
    ASSERT_HEX(hvtest_taf(s.data[0]), PGT_writable_page | PGT_validated | 1);
    /* alloc + one RO L1 entry, no type. */
    ASSERT_HEX(hvtest_caf(s.data[2]), PGC_allocated | 2);
    ASSERT_EQ(hvtest_tcount(s.data[2]), 0);
    /* alloc + the L2 entry + its own read-only self-map. */
    ASSERT_HEX(hvtest_caf(s.l1), PGC_allocated | 3);
    ASSERT_HEX(hvtest_taf(s.l1), PGT_l1_page_table | PGT_validated | 1);
    /* alloc + pin + the linear entry of l2. */
    ASSERT_HEX(hvtest_caf(s.l2b), PGC_allocated | 3);
    ASSERT_HEX(hvtest_taf(s.l2b),
               PGT_l2_page_table | PGT_pinned | PGT_validated | 2);
    ASSERT_EQ(page_linear_pt_count(mfn_to_page(s.l2b)), -1);
    ASSERT_EQ(page_linear_pt_count(mfn_to_page(s.l2)), 1);
    /* alloc + pin + guest_table. */
    ASSERT_HEX(hvtest_caf(s.l4), PGC_allocated | 3);
    ASSERT_HEX(hvtest_taf(s.l4),
               PGT_l4_page_table | PGT_pinned | PGT_validated | 2);

    ASSERT_EQ(audit_host(msg, sizeof(msg)), 0);
    ASSERT_STR(msg, "");
    ASSERT_EQ(audit_domain(s.d, msg, sizeof(msg)), 0);
    ASSERT_EQ(audit_domain(host.dom0, msg, sizeof(msg)), 0);
    hvtest_done();
}

TEST(extra_general_ref_named_with_expected_count_and_holders)
{
    char want[160];

    build();
    atomic_fetch_add(&mfn_to_page(s.data[0])->count_info, 1);
    snprintf(want, sizeof(want), "%sgeneral count 3, expected 2 "
             "(alloc 1, l1 maps 1)", frame_name(s.data[0]));
    expect_broken(want, NULL);
    atomic_fetch_sub(&mfn_to_page(s.data[0])->count_info, 1);
    HVTEST_AUDIT_CLEAN();

    /* A missing general ref on the base: the breakdown lists every holder. */
    atomic_fetch_sub(&mfn_to_page(s.l4)->count_info, 1);
    snprintf(want, sizeof(want), "%sgeneral count 2, expected 3 "
             "(alloc 1, pinned 1, guest_table 1)", frame_name(s.l4));
    expect_broken(want, NULL);
    atomic_fetch_add(&mfn_to_page(s.l4)->count_info, 1);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(dropped_type_ref_named_with_expected_type_count)
{
    char want[160];

    build();
    atomic_fetch_sub(&mfn_to_page(s.l4)->type_info, 1);
    snprintf(want, sizeof(want), "%stype count 1, expected 2 "
             "(pinned 1, guest_table 1)", frame_name(s.l4));
    expect_broken(want, NULL);
    atomic_fetch_add(&mfn_to_page(s.l4)->type_info, 1);
    HVTEST_AUDIT_CLEAN();

    /* A writable ref too many on a data frame. */
    atomic_fetch_add(&mfn_to_page(s.data[1])->type_info, 1);
    snprintf(want, sizeof(want), "%stype count 2, expected 1 "
             "(l1 maps 1)", frame_name(s.data[1]));
    expect_broken(want, NULL);
    atomic_fetch_sub(&mfn_to_page(s.data[1])->type_info, 1);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(validated_l1_with_type_count_0_violates_invariant_5)
{
    mfn_t l1x;
    char want[160];

    build();
    l1x = hvtest_frame(s.d, 0x30);
    ASSERT_EQ(hvtest_mmuext(MMUEXT_PIN_L1_TABLE, l1x), 0);
    ASSERT_EQ(hvtest_mmuext(MMUEXT_UNPIN_TABLE, l1x), 0);
    ASSERT_HEX(hvtest_taf(l1x), PGT_l1_page_table);
    HVTEST_AUDIT_CLEAN();

    atomic_fetch_or(&mfn_to_page(l1x)->type_info, PGT_validated);
    snprintf(want, sizeof(want), "%spage table with type count 0 is "
             "validated, type_info %#lx", frame_name(l1x),
             (unsigned long)(PGT_l1_page_table | PGT_validated));
    expect_broken(want, NULL);
    atomic_fetch_and(&mfn_to_page(l1x)->type_info, ~PGT_validated);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(garbage_in_l4_xen_slot_258_violates_invariant_11)
{
    intpte_t good;
    char want[160];

    build();
    good = hvtest_read_pte(s.l4, 258);
    ASSERT_HEX(good, (s.l4 << PAGE_SHIFT) | 0x8000000000000063UL);
    hvtest_write_pte(s.l4, 258, 0xdeadb000UL | _PAGE_PRESENT | _PAGE_RW);
    snprintf(want, sizeof(want), "%sL4 Xen slot 258 = 0xdeadb003, "
             "expected %#lx", frame_name(s.l4), (unsigned long)good);
    expect_broken(want, NULL);
    hvtest_write_pte(s.l4, 258, good);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(free_frame_with_m2p_entry_violates_invariant_10)
{
    struct page_info *pg;
    mfn_t mfn;
    char want[160];

    build();
    pg = alloc_heap_pages(0, 0);
    ASSERT(pg != NULL);
    mfn = page_to_mfn(pg);
    free_heap_pages(pg, 0, false);
    HVTEST_AUDIT_CLEAN();

    set_gpfn_from_mfn(mfn, 0x42);
    snprintf(want, sizeof(want), "mfn %#lx (free pfn 0x42): free with M2P "
             "0x42, expected INVALID", (unsigned long)mfn);
    expect_broken(want, NULL);
    set_gpfn_from_mfn(mfn, INVALID_M2P_ENTRY);
    HVTEST_AUDIT_CLEAN();

    /* A free frame that a validated L1 still maps: a use after free. */
    hvtest_write_pte(s.l1, 5, hvtest_pte(mfn, _PAGE_USER));
    snprintf(want, sizeof(want), "mfn %#lx (free pfn INVALID): free but "
             "referenced: general count 0, expected 1", (unsigned long)mfn);
    expect_broken(want, NULL);
    hvtest_write_pte(s.l1, 5, 0);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(wrong_tot_pages_violates_invariant_9)
{
    uint32_t tot;
    char want[160];

    build();
    tot = atomic_load(&s.d->tot_pages);
    ASSERT_EQ(tot, 8);
    atomic_fetch_add(&s.d->tot_pages, 1);
    snprintf(want, sizeof(want), "d%u: tot_pages 9, but 8 frames on its "
             "page list", s.d->domain_id);
    expect_broken(want, NULL);
    atomic_fetch_sub(&s.d->tot_pages, 1);
    HVTEST_AUDIT_CLEAN();

    /* A frame owned by d but missing from its page list. */
    atomic_fetch_sub(&s.d->tot_pages, 1);
    spin_lock(&s.d->page_alloc_lock);
    {
        struct page_info *pg = mfn_to_page(s.data[2]);
        uint32_t prev = pg->list_prev, next = pg->list_next;

        mfn_to_page(prev - 1)->list_next = next;
        if ( next )
            mfn_to_page(next - 1)->list_prev = prev;
        else
            s.d->page_list_tail = prev;
        spin_unlock(&s.d->page_alloc_lock);
        snprintf(want, sizeof(want), "%sowned by d%u but not on its page "
                 "list", frame_name(s.data[2]), s.d->domain_id);
        expect_broken(want, NULL);
        spin_lock(&s.d->page_alloc_lock);
        mfn_to_page(prev - 1)->list_next = (uint32_t)s.data[2] + 1;
        if ( next )
            mfn_to_page(next - 1)->list_prev = (uint32_t)s.data[2] + 1;
        else
            s.d->page_list_tail = (uint32_t)s.data[2] + 1;
    }
    spin_unlock(&s.d->page_alloc_lock);
    atomic_fetch_add(&s.d->tot_pages, 1);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(partial_with_type_count_2_violates_invariant_6)
{
    struct page_info *pg;
    uint64_t taf;
    char want[160];

    build();
    pg = mfn_to_page(s.l2b);
    taf = atomic_load(&pg->type_info);
    ASSERT_EQ(taf & PGT_count_mask, 2);
    atomic_store(&pg->type_info,
                 (taf & ~(PGT_validated | PGT_pinned)) | PGT_partial);
    snprintf(want, sizeof(want), "%sbad partial state: type count 2, "
             "expected 1", frame_name(s.l2b));
    expect_broken(want, NULL);
    atomic_store(&pg->type_info, taf);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(wrong_linear_count_violates_invariant_8)
{
    char want[160];

    build();
    ASSERT(inc_linear_entries(mfn_to_page(s.l2)));
    snprintf(want, sizeof(want), "%slinear_pt_count 2, expected 1",
             frame_name(s.l2));
    expect_broken(want, NULL);
    dec_linear_entries(mfn_to_page(s.l2));
    HVTEST_AUDIT_CLEAN();

    /* The used side: l2b is used once, not twice. */
    ASSERT(inc_linear_uses(mfn_to_page(s.l2b)));
    snprintf(want, sizeof(want), "%slinear_pt_count -2, expected -1",
             frame_name(s.l2b));
    expect_broken(want, NULL);
    dec_linear_uses(mfn_to_page(s.l2b));
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(writable_type_on_a_table_violates_invariant_4)
{
    struct page_info *pg;
    uint64_t taf;
    char want[160];

    build();
    pg = mfn_to_page(s.l1);
    taf = atomic_load(&pg->type_info);
    atomic_store(&pg->type_info,
                 (taf & ~PGT_type_mask) | PGT_writable_page);
    snprintf(want, sizeof(want), "%stype writable, but held as L1",
             frame_name(s.l1));
    expect_broken(want, NULL);
    atomic_store(&pg->type_info, taf);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

/*
 * Issue 13 item 7: a guest may point the M2P entry of its own shared_info
 * with MMU_MACHPHYS_UPDATE (Xen's set_gpfn_from_mfn has no xen-heap
 * check).  That is a state a guest can reach, so the auditor accepts it.
 */
TEST(machphys_shared_info_audit_accepts_a_guest_set_m2p)
{
    struct mmu_update req;
    unsigned int done = 0;
    mfn_t si;

    build();
    si = s.d->shared_info_mfn;
    ASSERT_HEX(get_gpfn_from_mfn(si), INVALID_M2P_ENTRY);
    hvtest_as(s.d, 0);
    req = (struct mmu_update){ .ptr = (si << PAGE_SHIFT) | MMU_MACHPHYS_UPDATE,
                               .val = 0x77 };
    ASSERT_EQ(do_mmu_update(&req, 1, &done, DOMID_SELF), 0);
    ASSERT_HEX(get_gpfn_from_mfn(si), 0x77);
    HVTEST_AUDIT_CLEAN();

    /* The frame's counts are still checked: one ref too many is found. */
    atomic_fetch_add(&mfn_to_page(si)->count_info, 1);
    expect_broken("general count 2, expected 1", "alloc 1");
    atomic_fetch_sub(&mfn_to_page(si)->count_info, 1);
    HVTEST_AUDIT_CLEAN();

    /* Freed with the domain, the frame's M2P entry is INVALID again. */
    hvtest_destroy(s.d);
    ASSERT_HEX(get_gpfn_from_mfn(si), INVALID_M2P_ENTRY);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

/* One GNTTABOP_map_grant_ref as the current vCPU. */
static struct gnttab_map_grant_ref grant_map(uint32_t flags, grant_ref_t ref,
                                             domid_t dom)
{
    struct gnttab_map_grant_ref op = { .flags = flags, .ref = ref,
                                       .dom = dom, .status = 99 };

    ASSERT_EQ(do_grant_table_op(GNTTABOP_map_grant_ref, &op, 1), 0);
    return op;
}

/*
 * Issue 13 item 7: a live GNTMAP_device_map grant holds a general ref on
 * the granted frame (and a writable type ref unless read-only) that no
 * PTE owns.  The auditor counts them, so device mappings, writable and
 * read-only, audit clean; a ref too many or too few is still named.
 */
TEST(device_map_audit_counts_device_mapping_refs)
{
    struct gnttab_setup_table st = { .dom = DOMID_SELF, .nr_frames = 1 };
    struct gnttab_unmap_grant_ref u = { 0 };
    struct gnttab_map_grant_ref rw, ro;
    struct grant_entry_v1 *e;
    struct domain *b;
    uint64_t gframe = 0;
    mfn_t f = 0;

    build();
    b = hvtest_domain(16, 1);
    f = s.data[2];                  /* mapped read-only by s.l1 only */
    hvtest_as(s.d, 0);
    st.frame_list = &gframe;
    ASSERT_EQ(do_grant_table_op(GNTTABOP_setup_table, &st, 1), 0);
    ASSERT_EQ(st.status, GNTST_okay);
    e = map_domain_page(gframe);
    e[5] = (struct grant_entry_v1){ .flags = GTF_permit_access,
                                    .domid = b->domain_id,
                                    .frame = (uint32_t)f };
    HVTEST_AUDIT_CLEAN();

    hvtest_as(b, 0);
    rw = grant_map(GNTMAP_device_map, 5, s.d->domain_id);
    ASSERT_EQ(rw.status, GNTST_okay);
    ro = grant_map(GNTMAP_device_map | GNTMAP_readonly, 5, s.d->domain_id);
    ASSERT_EQ(ro.status, GNTST_okay);
    /* alloc + l1 map + two device maps; one writable type ref. */
    ASSERT_FRAME(f, ALLOC | 4, T_WR | VALID | 1);
    HVTEST_AUDIT_CLEAN();

    atomic_fetch_add(&mfn_to_page(f)->count_info, 1);
    expect_broken("general count 5, expected 4", "grant device maps 2");
    atomic_fetch_sub(&mfn_to_page(f)->count_info, 2);
    expect_broken("general count 3, expected 4", "grant device maps 2");
    atomic_fetch_add(&mfn_to_page(f)->count_info, 1);
    HVTEST_AUDIT_CLEAN();

    /* Unmapped, the refs go, and so does what the auditor expects. */
    u.handle = rw.handle;
    u.dev_bus_addr = f << PAGE_SHIFT;
    ASSERT_EQ(do_grant_table_op(GNTTABOP_unmap_grant_ref, &u, 1), 0);
    ASSERT_EQ(u.status, GNTST_okay);
    ASSERT_FRAME(f, ALLOC | 3, T_WR | VALID);
    HVTEST_AUDIT_CLEAN();
    u.handle = ro.handle;
    ASSERT_EQ(do_grant_table_op(GNTTABOP_unmap_grant_ref, &u, 1), 0);
    ASSERT_EQ(u.status, GNTST_okay);
    ASSERT_FRAME(f, ALLOC | 2, T_WR | VALID);
    HVTEST_AUDIT_CLEAN();

    hvtest_destroy(b);
    hvtest_done();
}

TEST(audit_domain_reports_only_the_audited_domain)
{
    struct domain *d2;
    mfn_t l1;
    char msg[512];

    build();
    d2 = hvtest_domain(16, 1);
    l1 = hvtest_frame(d2, 0);
    ASSERT_EQ(hvtest_mmuext(MMUEXT_PIN_L1_TABLE, l1), 0);
    HVTEST_AUDIT_CLEAN();

    atomic_fetch_add(&mfn_to_page(s.data[0])->count_info, 1);
    ASSERT_EQ(audit_domain(d2, msg, sizeof(msg)), 0);
    ASSERT_EQ(audit_domain(s.d, msg, sizeof(msg)), -EILSEQ);
    ASSERT_CONTAINS(msg, frame_name(s.data[0]));
    atomic_fetch_sub(&mfn_to_page(s.data[0])->count_info, 1);
    ASSERT_EQ(audit_domain(s.d, msg, sizeof(msg)), 0);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

/*
 * Reference 10, test 7: preempted before entry 1 of the L3 while pinning
 * the L4, the L3 and the L4 are both partial; the auditor must accept that
 * state (partial refs and the partial_set entry) and the end state.
 */
TEST(partial_states_between_continuations_audit_clean)
{
    mfn_t l4, l3, l2a, l2c;
    unsigned int done = 0, restarts = 0;
    long rc;

    build();
    l4 = hvtest_frame(s.d, 0x40);
    l3 = hvtest_frame(s.d, 0x41);
    l2a = hvtest_frame(s.d, 0x42);
    l2c = hvtest_frame(s.d, 0x43);
    hvtest_write_pte(l3, 0, hvtest_pte(l2a, _PAGE_RW | _PAGE_USER));
    hvtest_write_pte(l3, 1, hvtest_pte(l2c, _PAGE_RW | _PAGE_USER));
    hvtest_write_pte(l4, 3, hvtest_pte(l3, _PAGE_RW | _PAGE_USER));

    hv_inject_preempt(current, 3, 1, l3, PREEMPT_PROMOTE, 1);
    while ( (rc = hvtest_mmuext_once(MMUEXT_PIN_L4_TABLE, l4, &done)) ==
            -ERESTART )
    {
        restarts++;
        if ( restarts == 1 )
        {
            ASSERT(hvtest_taf(l3) & PGT_partial);
            ASSERT(hvtest_taf(l4) & PGT_partial);
        }
        HVTEST_AUDIT_CLEAN();
    }
    ASSERT_EQ(rc, 0);
    ASSERT(restarts >= 1);
    HVTEST_AUDIT_CLEAN();

    /* Unpin it with preemption in the demotion; audit at every stop. */
    hv_inject_preempt(current, 3, 1, l3, PREEMPT_DEMOTE, 1);
    hv_inject_preempt(current, 2, 0, INVALID_MFN, PREEMPT_DEMOTE, 1);
    done = 0;
    while ( (rc = hvtest_mmuext_once(MMUEXT_UNPIN_TABLE, l4, &done)) ==
            -ERESTART )
        HVTEST_AUDIT_CLEAN();
    ASSERT_EQ(rc, 0);
    hv_clear_preempt(current);
    /* A later hypercall finishes any deferred put. */
    ASSERT_EQ(hvtest_mmuext(MMUEXT_TLB_FLUSH_LOCAL, 0), 0);
    HVTEST_AUDIT_CLEAN();
    ASSERT_EQ(hvtest_tcount(l3), 0);
    ASSERT_HEX(hvtest_caf(l3), PGC_allocated | 1);
    hvtest_done();
}

TEST(host_audit_of_64mib_takes_milliseconds)
{
    struct timespec t0, t1;
    const char *m = getenv("FERRY_TEST_TIMEOUT_MULTIPLIER");
    long mult = m ? strtol(m, NULL, 10) : 1, us;
    char msg[512];

    build();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for ( unsigned int i = 0; i < 10; i++ )
        ASSERT_EQ(audit_host(msg, sizeof(msg)), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    us = ((t1.tv_sec - t0.tv_sec) * 1000000L +
          (t1.tv_nsec - t0.tv_nsec) / 1000) / 10;
    DIAG("audit_host of %lu frames: %ld us", (unsigned long)host.max_page,
         us);
    ASSERT(us < 20000 * (mult > 0 ? mult : 1));
    hvtest_done();
}

TEST(audit_after_hypercall_bugs_on_a_broken_host)
{
    pid_t pid;
    int status;

    build();
    host.audit_every_hypercall = true;
    hv_audit_before_hypercall();
    hv_audit_after_hypercall("clean");

    pid = fork();
    ASSERT(pid >= 0);
    if ( pid == 0 )
    {
        atomic_fetch_add(&mfn_to_page(s.data[0])->count_info, 1);
        hv_audit_before_hypercall();
        hv_audit_after_hypercall("mmu_update");
        _exit(0);
    }
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT(WIFSIGNALED(status));
    ASSERT_EQ(WTERMSIG(status), SIGABRT);
    host.audit_every_hypercall = false;
    hvtest_done();
}

/*
 * Between the continuations of a domain's destruction the auditor checks
 * what still holds (ownership, lists, the refs its validated tables hold
 * on others) and leaves the in-between counts of the dying domain alone;
 * once it is dead it must own nothing.
 */
TEST(destroy_continuations_audit_clean)
{
    struct domain *d2;
    uint64_t free_before;
    unsigned int restarts = 0;
    mfn_t l1;
    int rc;

    hvtest_host(HVTEST_MEM_MB);
    free_before = hv_free_pages();
    build_in_host();
    d2 = hvtest_domain(16, 1);
    l1 = hvtest_frame(d2, 0);
    ASSERT_EQ(hvtest_mmuext(MMUEXT_PIN_L1_TABLE, l1), 0);
    HVTEST_AUDIT_CLEAN();

    set_current(host.dom0->vcpu[0]);
    host.preempt_every = 3;
    while ( (rc = domain_kill(s.d)) == -ERESTART )
    {
        restarts++;
        HVTEST_AUDIT_CLEAN();
    }
    host.preempt_every = 0;
    ASSERT_EQ(rc, 0);
    DIAG("%u continuations", restarts);
    HVTEST_AUDIT_CLEAN();
    hvtest_destroy(d2);
    HVTEST_AUDIT_CLEAN();
    ASSERT_EQ(hv_free_pages(), free_before);
    hvtest_done();
}
