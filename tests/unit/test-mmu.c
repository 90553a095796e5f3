/* SPDX-License-Identifier: MIT */
/*
 * Tests of the guest memory-management hypercalls (hypervisor/mmu.c):
 * mmu_update, mmuext_op, update_va_mapping and new_guest_cr3, against the
 * exact counts, type words, return codes and log lines of Xen (reference
 * xen-pv-mm.md sections 4.10, 5.1-5.3 and the tests of section 10).
 *
 * Each test builds its page tables by writing raw entries into fresh
 * frames, which hold no type yet, and then drives only the hypercalls, the
 * way a PV guest or the domain builder does.  Type words are written out in
 * hex as in the reference: 0x2C00000000000001 is L1|pinned|validated|1.
 */
#include <pthread.h>

#include "hv.h"
/* The harness's ASSERT (fail the test) replaces hv.h's (abort the host). */
#undef ASSERT
#include "hvtest.h"

/* type_info words of the reference */
#define TAF_L1_PINNED  0x2C00000000000001ULL
#define TAF_L1_VAL1    0x2400000000000001ULL
#define TAF_L1_DEVAL   0x2000000000000000ULL
#define TAF_L2_PINNED  0x4C00000000000001ULL
#define TAF_L2_VAL1    0x4400000000000001ULL
#define TAF_L2_DEVAL   0x4000000000000000ULL
#define TAF_L3_VAL1    0x6400000000000001ULL
#define TAF_L3_DEVAL   0x6000000000000000ULL
#define TAF_L4_PINNED  0x8C00000000000001ULL
#define TAF_L4_VAL1    0x8400000000000001ULL
#define TAF_L4_DEVAL   0x8000000000000000ULL
#define TAF_WR_1       0xE400000000000001ULL
#define TAF_WR_0       0xE400000000000000ULL

#define PTE_GUEST_KERNEL (1ULL << 52)
#define XEN_L4_SELF_FLAGS 0x8000000000000063ULL

/* A VA whose L4, L3 and L2 slots are all 0: L1 slot n. */
#define VA(n) ((uint64_t)(n) << PAGE_SHIFT)

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

static struct domain *setup(void)
{
    hvtest_host(HVTEST_MEM_MB);
    return hvtest_domain(256, 2);
}

static long pin(unsigned int level, mfn_t mfn)
{
    return hvtest_mmuext(MMUEXT_PIN_L1_TABLE + level - 1, mfn);
}

static long unpin(mfn_t mfn)
{
    return hvtest_mmuext(MMUEXT_UNPIN_TABLE, mfn);
}

static long mmuext(const struct mmuext_op *op, unsigned int foreigndom)
{
    struct mmuext_op copy = *op;
    unsigned int done = 0;
    long rc;

    do {
        rc = do_mmuext_op(&copy, 1, &done, foreigndom);
    } while ( rc == -ERESTART );
    return rc;
}

static uint64_t pt_ptr(mfn_t table, unsigned int idx, unsigned int cmd)
{
    return ((table << PAGE_SHIFT) + idx * sizeof(intpte_t)) | cmd;
}

/* One request of any command, with a foreigndom, to completion. */
static long mmu_one(uint64_t ptr, uint64_t val, unsigned int foreigndom)
{
    struct mmu_update req = { .ptr = ptr, .val = val };
    unsigned int done = 0;
    long rc;

    do {
        rc = do_mmu_update(&req, 1, &done, foreigndom);
    } while ( rc == -ERESTART );
    return rc;
}

static uint64_t gen(struct domain *d, unsigned int n)
{
    return atomic_load(&d->vcpu[n]->tlb_flush_gen);
}

/* getpageframeinfo3 of one frame, asked as the toolstack. */
static uint64_t pfinfo(struct domain *d, mfn_t mfn)
{
    struct vcpu *v = current;
    uint64_t a = mfn;

    set_current(host.dom0->vcpu[0]);
    ASSERT_EQ(domctl_getpageframeinfo3(d, 1, &a), 0);
    set_current(v);
    return a;
}

/* The log holds a line with this text (fmt takes one frame number). */
#define ASSERT_LOG(fmt, mfn)                                              \
    do {                                                                  \
        char l_[160];                                                     \
        snprintf(l_, sizeof(l_), fmt, (unsigned long)(mfn));              \
        if ( !hv_log_contains(l_) )                                       \
            FAIL("log lacks \"%s\"", l_);                                 \
    } while ( 0 )

/*
 * A four-level tree: L4[0] -> L3[0] -> L2[0] -> L1, whose slot 0 maps
 * `rw` writable and slot 1 maps `ro` read-only (VA(0) and VA(1)).
 */
struct tree
{
    mfn_t l4, l3, l2, l1, rw, ro;
};

static void build_tree(struct domain *d, struct tree *t, pfn_t base)
{
    t->l4 = hvtest_frame(d, base);
    t->l3 = hvtest_frame(d, base + 1);
    t->l2 = hvtest_frame(d, base + 2);
    t->l1 = hvtest_frame(d, base + 3);
    t->rw = hvtest_frame(d, base + 4);
    t->ro = hvtest_frame(d, base + 5);
    hvtest_write_pte(t->l4, 0, hvtest_pte(t->l3, _PAGE_RW | _PAGE_USER));
    hvtest_write_pte(t->l3, 0, hvtest_pte(t->l2, _PAGE_RW | _PAGE_USER));
    hvtest_write_pte(t->l2, 0, hvtest_pte(t->l1, _PAGE_RW | _PAGE_USER));
    hvtest_write_pte(t->l1, 0, hvtest_pte(t->rw, _PAGE_RW));
    hvtest_write_pte(t->l1, 1, hvtest_pte(t->ro, 0));
}

/* Test 5's state of a pinned tree that is nobody's base. */
static void assert_tree_pinned(const struct tree *t)
{
    ASSERT_FRAME(t->l4, ALLOC | 2, TAF_L4_PINNED);
    ASSERT_FRAME(t->l3, ALLOC | 2, TAF_L3_VAL1);
    ASSERT_FRAME(t->l2, ALLOC | 2, TAF_L2_VAL1);
    ASSERT_FRAME(t->l1, ALLOC | 2, TAF_L1_VAL1);
    ASSERT_FRAME(t->rw, ALLOC | 2, TAF_WR_1);
    ASSERT_FRAME(t->ro, ALLOC | 2, 0);
}

/* Every table of the tree devalidated, every data ref gone. */
static void assert_tree_released(struct domain *d, const struct tree *t)
{
    ASSERT_FRAME(t->l4, ALLOC | 1, TAF_L4_DEVAL);
    ASSERT_FRAME(t->l3, ALLOC | 1, TAF_L3_DEVAL);
    ASSERT_FRAME(t->l2, ALLOC | 1, TAF_L2_DEVAL);
    ASSERT_FRAME(t->l1, ALLOC | 1, TAF_L1_DEVAL);
    ASSERT_FRAME(t->rw, ALLOC | 1, TAF_WR_0);
    ASSERT_HEX(hvtest_caf(t->ro), ALLOC | 1);
    ASSERT_HEX(pfinfo(d, t->l4), XEN_DOMCTL_PFINFO_NOTAB);
    ASSERT_HEX(pfinfo(d, t->l3), XEN_DOMCTL_PFINFO_NOTAB);
    ASSERT_HEX(pfinfo(d, t->l2), XEN_DOMCTL_PFINFO_NOTAB);
    ASSERT_HEX(pfinfo(d, t->l1), XEN_DOMCTL_PFINFO_NOTAB);
}

/* A pinned tree installed as the vCPU's kernel base. */
static void tree_as_base(struct domain *d, struct tree *t, pfn_t base)
{
    build_tree(d, t, base);
    ASSERT_EQ(pin(4, t->l4), 0);
    ASSERT_EQ(hvtest_mmuext(MMUEXT_NEW_BASEPTR, t->l4), 0);
    ASSERT_HEX(current->guest_table, t->l4);
}

/* ------------------------------------------------------------------------
 * Test 5 and 6: a whole hierarchy, base pointers
 * ------------------------------------------------------------------------ */

TEST(pin_l4_hierarchy_counts_then_new_baseptr_adds_general_and_type_ref)
{
    struct domain *d = setup();
    struct tree t;

    build_tree(d, &t, 0x100);
    ASSERT_EQ(pin(4, t.l4), 0);
    assert_tree_pinned(&t);
    ASSERT_HEX(pfinfo(d, t.l4),
               XEN_DOMCTL_PFINFO_L4TAB | XEN_DOMCTL_PFINFO_LPINTAB);
    ASSERT_HEX(pfinfo(d, t.l3), XEN_DOMCTL_PFINFO_L3TAB);
    ASSERT_HEX(pfinfo(d, t.l2), XEN_DOMCTL_PFINFO_L2TAB);
    ASSERT_HEX(pfinfo(d, t.l1), XEN_DOMCTL_PFINFO_L1TAB);
    ASSERT_HEX(pfinfo(d, t.rw), XEN_DOMCTL_PFINFO_NOTAB);
    /* Guest entries carry the 4.7 adjustments; slot 258 is Xen's. */
    ASSERT_HEX(hvtest_read_pte(t.l4, 0),
               (t.l3 << PAGE_SHIFT) | _PAGE_PRESENT | _PAGE_RW | _PAGE_USER |
               _PAGE_ACCESSED);
    ASSERT_HEX(hvtest_read_pte(t.l4, 258),
               (t.l4 << PAGE_SHIFT) | XEN_L4_SELF_FLAGS);
    ASSERT_HEX(hvtest_read_pte(t.l1, 1),
               hvtest_pte(t.ro, _PAGE_USER) | PTE_GUEST_KERNEL);

    ASSERT_EQ(hvtest_mmuext(MMUEXT_NEW_BASEPTR, t.l4), 0);
    ASSERT_HEX(current->guest_table, t.l4);
    ASSERT_FRAME(t.l4, ALLOC | 3, TAF_L4_PINNED + 1);
    /* The rest of the tree is referenced once, through the L4, as before. */
    ASSERT_HEX(hvtest_taf(t.l3), TAF_L3_VAL1);

    /* Re-installing the same base only reloads it. */
    ASSERT_EQ(hvtest_mmuext(MMUEXT_NEW_BASEPTR, t.l4), 0);
    ASSERT_FRAME(t.l4, ALLOC | 3, TAF_L4_PINNED + 1);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(unpin_of_current_base_keeps_tree_then_base_switch_devalidates_it)
{
    struct domain *d = setup();
    struct tree t;
    mfn_t l4b;

    tree_as_base(d, &t, 0x100);
    ASSERT_EQ(unpin(t.l4), 0);
    /* Only the pin went: the base still holds the tree. */
    ASSERT_FRAME(t.l4, ALLOC | 2, TAF_L4_VAL1);
    ASSERT_HEX(hvtest_taf(t.l3), TAF_L3_VAL1);
    ASSERT_HEX(hvtest_taf(t.l1), TAF_L1_VAL1);
    ASSERT_HEX(hvtest_taf(t.rw), TAF_WR_1);
    ASSERT_HEX(pfinfo(d, t.l4), XEN_DOMCTL_PFINFO_L4TAB);
    HVTEST_AUDIT_CLEAN();

    /* An empty L4 becomes the base; the old one loses its last refs. */
    l4b = hvtest_frame(d, 0x200);
    ASSERT_EQ(hvtest_mmuext(MMUEXT_NEW_BASEPTR, l4b), 0);
    ASSERT_HEX(current->guest_table, l4b);
    ASSERT_FRAME(l4b, ALLOC | 2, TAF_L4_VAL1);
    assert_tree_released(d, &t);
    ASSERT(!current->old_guest_table);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(new_user_baseptr_holds_one_general_and_one_l4_ref_and_mfn0_clears)
{
    struct domain *d = setup();
    struct tree t;
    mfn_t u = hvtest_frame(d, 0x200);

    tree_as_base(d, &t, 0x100);
    ASSERT_EQ(hvtest_mmuext(MMUEXT_NEW_USER_BASEPTR, u), 0);
    ASSERT_HEX(current->guest_table_user, u);
    ASSERT_FRAME(u, ALLOC | 2, TAF_L4_VAL1);
    /* The same table as kernel and user base: two refs of each kind. */
    ASSERT_EQ(hvtest_mmuext(MMUEXT_NEW_USER_BASEPTR, t.l4), 0);
    ASSERT_FRAME(t.l4, ALLOC | 4, TAF_L4_PINNED + 2);
    ASSERT_FRAME(u, ALLOC | 1, TAF_L4_DEVAL);
    ASSERT_EQ(hvtest_mmuext(MMUEXT_NEW_USER_BASEPTR, 0), 0);
    ASSERT_HEX(current->guest_table_user, 0);
    ASSERT_FRAME(t.l4, ALLOC | 3, TAF_L4_PINNED + 1);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(new_baseptr_errors_eperm_foreign_and_einval_untypeable)
{
    struct domain *d = setup();
    struct domain *d2 = hvtest_domain(16, 1);
    struct mmuext_op op = { .cmd = MMUEXT_NEW_BASEPTR };
    struct tree t;
    mfn_t q;

    hvtest_as(d, 0);
    build_tree(d, &t, 0x100);
    ASSERT_EQ(pin(4, t.l4), 0);

    /* rw is writable-typed through the L1: it cannot become an L4. */
    hv_log_clear();
    ASSERT_EQ(hvtest_mmuext(MMUEXT_NEW_BASEPTR, t.rw), -EINVAL);
    ASSERT_LOG("Error while installing new baseptr %05lx", t.rw);
    ASSERT_HEX(current->guest_table, 0);
    ASSERT_FRAME(t.rw, ALLOC | 2, TAF_WR_1);

    /* A frame of another domain. */
    q = hvtest_frame(d2, 0x10);
    hvtest_as(d, 0);
    ASSERT_EQ(hvtest_mmuext(MMUEXT_NEW_BASEPTR, q), -EINVAL);
    ASSERT_FRAME(q, ALLOC | 1, 0);

    /* Only for the caller's own vCPU: the control domain gets -EPERM. */
    set_current(host.dom0->vcpu[0]);
    op.arg1.mfn = t.l4;
    ASSERT_EQ(mmuext(&op, d->domain_id), -EPERM);
    op.cmd = MMUEXT_NEW_USER_BASEPTR;
    ASSERT_EQ(mmuext(&op, d->domain_id), -EPERM);
    hvtest_as(d, 0);
    ASSERT_HEX(hvtest_taf(t.l4), TAF_L4_PINNED);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * Test 2 and the early-pagetables hazard
 * ------------------------------------------------------------------------ */

TEST(early_pagetables_pin_with_writable_mapping_fails)
{
    struct domain *d = setup();
    mfn_t l = hvtest_frame(d, 0x10), q = hvtest_frame(d, 0x11);

    /*
     * Linux-under-Xen 2011: the kernel built a new page table in a frame it
     * still mapped writable and pinned it.  Xen must refuse.
     */
    hvtest_write_pte(l, 0, hvtest_pte(q, _PAGE_RW));
    ASSERT_EQ(pin(1, l), 0);
    ASSERT_FRAME(q, ALLOC | 2, TAF_WR_1);

    hv_log_clear();
    ASSERT_EQ(pin(1, q), -EINVAL);
    ASSERT_LOG("Bad type (saw e400000000000001 != exp 2000000000000000) "
               "for mfn %05lx", q);
    ASSERT_LOG("Error -22 while pinning mfn %05lx", q);
    ASSERT_FRAME(q, ALLOC | 2, TAF_WR_1);
    HVTEST_AUDIT_CLEAN();

    /* The fix: make the mapping read-only first, then pin. */
    ASSERT_EQ(hvtest_pt_update(l, 0, hvtest_pte(q, 0)), 0);
    ASSERT_FRAME(q, ALLOC | 2, TAF_WR_0);
    ASSERT_EQ(pin(1, q), 0);
    ASSERT_FRAME(q, ALLOC | 3, TAF_L1_PINNED);

    /* And now it cannot be made writable again. */
    ASSERT_EQ(hvtest_pt_update(l, 0, hvtest_pte(q, _PAGE_RW)), -EBUSY);
    ASSERT_HEX(hvtest_read_pte(l, 0) & _PAGE_RW, 0);
    ASSERT_FRAME(q, ALLOC | 3, TAF_L1_PINNED);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * Test 3 and 4: a devalidated table
 * ------------------------------------------------------------------------ */

TEST(devalidated_unpin_then_pt_update_becomes_writable_and_repin_revalidates)
{
    struct domain *d = setup();
    mfn_t p = hvtest_frame(d, 0x10), data = hvtest_frame(d, 0x11);
    intpte_t pcd = hvtest_pte(data, _PAGE_PCD);

    hvtest_write_pte(p, 0, hvtest_pte(data, 0));
    ASSERT_EQ(pin(1, p), 0);
    ASSERT_HEX(hvtest_taf(p), TAF_L1_PINNED);
    ASSERT_HEX(hvtest_caf(data), ALLOC | 2);
    ASSERT_HEX(pfinfo(d, p),
               XEN_DOMCTL_PFINFO_L1TAB | XEN_DOMCTL_PFINFO_LPINTAB);

    /* Test 3: unpinned, the table keeps its type but not its validation. */
    ASSERT_EQ(unpin(p), 0);
    ASSERT_FRAME(p, ALLOC | 1, TAF_L1_DEVAL);
    ASSERT_HEX(hvtest_caf(data), ALLOC | 1);
    ASSERT_HEX(pfinfo(d, p), XEN_DOMCTL_PFINFO_NOTAB);
    HVTEST_AUDIT_CLEAN();

    /*
     * Test 4: a "page-table update" into it is a raw write into a page
     * that silently becomes writable.  The entry is invalid as a PTE
     * (PCD) and nothing checks it now.
     */
    ASSERT_EQ(hvtest_pt_update(p, 3, pcd), 0);
    ASSERT_HEX(hvtest_taf(p), TAF_WR_0);
    ASSERT_HEX(hvtest_read_pte(p, 3), pcd);
    ASSERT_HEX(hvtest_caf(data), ALLOC | 1);
    ASSERT_HEX(pfinfo(d, p), XEN_DOMCTL_PFINFO_NOTAB);
    HVTEST_AUDIT_CLEAN();

    /* Re-pinning re-validates what was written, and refuses it. */
    hv_log_clear();
    ASSERT_EQ(pin(1, p), -EINVAL);
    ASSERT(hv_log_contains("Bad L1 flags 0x10"));
    ASSERT_LOG("Error -22 while pinning mfn %05lx", p);
    ASSERT_FRAME(p, ALLOC | 1, 0);
    ASSERT_HEX(hvtest_caf(data), ALLOC | 1);
    HVTEST_AUDIT_CLEAN();

    /* A valid entry in its place: the pin validates and succeeds. */
    ASSERT_EQ(hvtest_pt_update(p, 3, hvtest_pte(data, 0)), 0);
    ASSERT_HEX(hvtest_taf(p), TAF_WR_0);
    ASSERT_EQ(pin(1, p), 0);
    ASSERT_FRAME(p, ALLOC | 2, TAF_L1_PINNED);
    ASSERT_HEX(hvtest_caf(data), ALLOC | 3);
    ASSERT_HEX(hvtest_read_pte(p, 3),
               hvtest_pte(data, _PAGE_USER) | PTE_GUEST_KERNEL);
    ASSERT_HEX(pfinfo(d, p),
               XEN_DOMCTL_PFINFO_L1TAB | XEN_DOMCTL_PFINFO_LPINTAB);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * Test 12: the L1 fast path
 * ------------------------------------------------------------------------ */

TEST(l1_fastpath_flag_changes_take_no_refs_rw_toggle_moves_writable_count)
{
    struct domain *d = setup();
    mfn_t l = hvtest_frame(d, 0x10), data = hvtest_frame(d, 0x11);
    const uint64_t quiet = _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY |
                           _PAGE_GLOBAL | _PAGE_AVAIL | _PAGE_NX;
    struct mmu_update req;
    unsigned int done = 0;

    (void)d;
    hvtest_write_pte(l, 0, hvtest_pte(data, _PAGE_RW | _PAGE_USER));
    ASSERT_EQ(pin(1, l), 0);
    ASSERT_FRAME(data, ALLOC | 2, TAF_WR_1);

    /* A, D, US, G, NX and AVAIL change: no refcount moves. */
    ASSERT_EQ(hvtest_pt_update(l, 0, hvtest_pte(data, _PAGE_RW | quiet)), 0);
    ASSERT_HEX(hvtest_read_pte(l, 0), hvtest_pte(data, _PAGE_RW | quiet));
    ASSERT_FRAME(data, ALLOC | 2, TAF_WR_1);

    /* RW off and on: the writable type count follows. */
    ASSERT_EQ(hvtest_pt_update(l, 0, hvtest_pte(data, _PAGE_USER)), 0);
    ASSERT_FRAME(data, ALLOC | 2, TAF_WR_0);
    ASSERT_EQ(hvtest_pt_update(l, 0, hvtest_pte(data, _PAGE_RW | _PAGE_USER)),
              0);
    ASSERT_FRAME(data, ALLOC | 2, TAF_WR_1);

    /* PRESERVE_AD keeps the A/D bits already in the entry. */
    ASSERT_EQ(hvtest_pt_update(l, 0, hvtest_pte(data, _PAGE_RW | _PAGE_USER |
                                                _PAGE_ACCESSED |
                                                _PAGE_DIRTY)), 0);
    req.ptr = pt_ptr(l, 0, MMU_PT_UPDATE_PRESERVE_AD);
    req.val = hvtest_pte(data, _PAGE_RW | _PAGE_USER);
    ASSERT_EQ(do_mmu_update(&req, 1, &done, DOMID_SELF), 0);
    ASSERT_EQ(done, 1);
    ASSERT_HEX(hvtest_read_pte(l, 0),
               hvtest_pte(data, _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED |
                                _PAGE_DIRTY | _PAGE_GLOBAL));

    /* Non-present: both refs go; non-present bits are stored unchecked. */
    ASSERT_EQ(hvtest_pt_update(l, 0, 0xdead000 | _PAGE_PCD), 0);
    ASSERT_HEX(hvtest_read_pte(l, 0), 0xdead000 | _PAGE_PCD);
    ASSERT_FRAME(data, ALLOC | 1, TAF_WR_0);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * Test 13 and preemption: continuations
 * ------------------------------------------------------------------------ */

TEST(deferred_put_of_replaced_l2_entry_runs_between_requests_pdone_totals)
{
    struct domain *d = setup();
    mfn_t l2 = hvtest_frame(d, 0x10), l1a = hvtest_frame(d, 0x11);
    mfn_t l1b = hvtest_frame(d, 0x12), da = hvtest_frame(d, 0x13);
    mfn_t db = hvtest_frame(d, 0x14);
    struct mmu_update reqs[3];
    unsigned int done = 0;
    uint64_t g0, g1;

    hvtest_write_pte(l2, 0, hvtest_pte(l1a, _PAGE_RW | _PAGE_USER));
    hvtest_write_pte(l1a, 0, hvtest_pte(da, _PAGE_RW));
    ASSERT_EQ(pin(2, l2), 0);
    ASSERT_HEX(hvtest_taf(l1a), TAF_L1_VAL1);
    ASSERT_HEX(hvtest_taf(da), TAF_WR_1);

    /* #0 maps db through l1a; #1 replaces l1a by l1b; #2 writes l1a. */
    reqs[0].ptr = pt_ptr(l1a, 1, MMU_NORMAL_PT_UPDATE);
    reqs[0].val = hvtest_pte(db, 0);
    reqs[1].ptr = pt_ptr(l2, 0, MMU_NORMAL_PT_UPDATE);
    reqs[1].val = hvtest_pte(l1b, _PAGE_RW | _PAGE_USER);
    reqs[2].ptr = pt_ptr(l1a, 5, MMU_NORMAL_PT_UPDATE);
    reqs[2].val = hvtest_pte(db, 0);

    /*
     * l1b is typed already, so that no type change (which flushes on its
     * own) hides the flush the L2 update owes.
     */
    ASSERT_EQ(pin(1, l1b), 0);
    g0 = gen(d, 0);
    g1 = gen(d, 1);
    ASSERT_EQ(do_mmu_update(reqs, 3, &done, DOMID_SELF), -ERESTART);
    ASSERT_EQ(done, 2);
    /* The old L1's refs are still held when #1 has returned. */
    ASSERT(current->old_guest_table == mfn_to_page(l1a));
    ASSERT_FRAME(l1a, ALLOC | 2, TAF_L1_VAL1);
    ASSERT_HEX(hvtest_taf(da), TAF_WR_1);
    ASSERT_HEX(hvtest_caf(db), ALLOC | 2);
    ASSERT_FRAME(l1b, ALLOC | 3, TAF_L1_PINNED + 1);
    /* The L2 change flushed every vCPU of the tables' owner. */
    ASSERT_EQ(gen(d, 0), g0 + 1);
    ASSERT_EQ(gen(d, 1), g1 + 1);

    /*
     * The continuation drops them before #2, which then finds l1a
     * devalidated: a raw write, the page becomes writable, and the value
     * is stored as given (no adjustment, no ref).
     */
    ASSERT_EQ(do_mmu_update(reqs, 3, &done, DOMID_SELF), 0);
    ASSERT_EQ(done, 3);
    ASSERT(!current->old_guest_table);
    ASSERT_FRAME(l1a, ALLOC | 1, TAF_WR_0);
    ASSERT_FRAME(da, ALLOC | 1, TAF_WR_0);
    ASSERT_HEX(hvtest_caf(db), ALLOC | 1);
    ASSERT_HEX(hvtest_read_pte(l1a, 5), hvtest_pte(db, 0));
    ASSERT_HEX(hvtest_taf(l1b), TAF_L1_PINNED + 1);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(deferred_put_after_last_request_returns_final_rc_in_continuation)
{
    struct domain *d = setup();
    mfn_t l2 = hvtest_frame(d, 0x10), l1a = hvtest_frame(d, 0x11);
    struct mmu_update reqs[2];
    unsigned int done = 0;

    (void)d;
    hvtest_write_pte(l2, 0, hvtest_pte(l1a, _PAGE_RW | _PAGE_USER));
    ASSERT_EQ(pin(2, l2), 0);

    /* #0 zaps the L2 entry (deferred put); #1 fails with -ENOSYS. */
    reqs[0].ptr = pt_ptr(l2, 0, MMU_NORMAL_PT_UPDATE);
    reqs[0].val = 0;
    reqs[1].ptr = pt_ptr(l2, 1, 5);
    reqs[1].val = 0;

    ASSERT_EQ(do_mmu_update(reqs, 2, &done, DOMID_SELF), -ERESTART);
    ASSERT_EQ(done, 1);
    ASSERT_HEX(hvtest_taf(l1a), TAF_L1_VAL1);
    ASSERT_EQ(do_mmu_update(reqs, 2, &done, DOMID_SELF), -ENOSYS);
    ASSERT_EQ(done, 1);
    ASSERT_HEX(hvtest_taf(l1a), TAF_L1_DEVAL);

    /* The last request replaced an entry: a final continuation, rc 0. */
    ASSERT_EQ(hvtest_pt_update(l2, 0, hvtest_pte(l1a, _PAGE_USER)), 0);
    ASSERT_HEX(hvtest_taf(l1a), TAF_L1_VAL1);
    done = 0;
    ASSERT_EQ(do_mmu_update(reqs, 1, &done, DOMID_SELF), -ERESTART);
    ASSERT_EQ(done, 1);
    ASSERT_HEX(hvtest_taf(l1a), TAF_L1_VAL1);
    ASSERT_EQ(do_mmu_update(reqs, 1, &done, DOMID_SELF), 0);
    ASSERT_EQ(done, 1);
    ASSERT_EQ(current->hcall_cont_rc, 0);
    ASSERT_HEX(hvtest_taf(l1a), TAF_L1_DEVAL);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(failed_request_with_parked_table_carries_its_rc_to_the_continuation)
{
    struct domain *d = setup();
    mfn_t l3 = hvtest_frame(d, 0x10), l2x = hvtest_frame(d, 0x11);
    mfn_t l1x = hvtest_frame(d, 0x12), data = hvtest_frame(d, 0x13);
    struct mmu_update req = {
        .ptr = pt_ptr(l3, 0, MMU_NORMAL_PT_UPDATE),
        .val = hvtest_pte(l2x, _PAGE_RW | _PAGE_USER),
    };
    struct mmuext_op flush = { .cmd = MMUEXT_TLB_FLUSH_LOCAL };
    unsigned int done = 0, fdone = 0;

    (void)d;
    ASSERT_EQ(pin(3, l3), 0);
    /* l2x: entry 0 is fine, entry 1 a superpage (Bad L2 flags 80). */
    hvtest_write_pte(l2x, 0, hvtest_pte(l1x, _PAGE_RW | _PAGE_USER));
    hvtest_write_pte(l2x, 1, hvtest_pte(data, _PAGE_PSE | _PAGE_USER));

    /*
     * Validation of l2x fails after entry 0: l2x is parked, half
     * validated, in old_guest_table and the request fails.  The error
     * waits for the put to finish.
     */
    hv_log_clear();
    ASSERT_EQ(do_mmu_update(&req, 1, &done, DOMID_SELF), -ERESTART);
    ASSERT_EQ(done, 0);
    ASSERT(hv_log_contains("Bad L2 flags 80"));
    ASSERT(current->old_guest_table == mfn_to_page(l2x));
    ASSERT_HEX(hvtest_taf(l1x), TAF_L1_VAL1);
    ASSERT_HEX(hvtest_read_pte(l3, 0), 0);

    /* Another hypercall may finish the put; it does not take the rc. */
    ASSERT_EQ(do_mmuext_op(&flush, 1, &fdone, DOMID_SELF), 0);
    ASSERT_EQ(fdone, 1);
    ASSERT(!current->old_guest_table);
    ASSERT_HEX(hvtest_taf(l1x), TAF_L1_DEVAL);

    ASSERT_EQ(do_mmu_update(&req, 1, &done, DOMID_SELF), -EINVAL);
    ASSERT_EQ(done, 0);
    ASSERT_EQ(current->hcall_cont_rc, 0);
    ASSERT_FRAME(l2x, ALLOC | 1, TAF_L2_DEVAL);
    ASSERT_HEX(hvtest_caf(l1x), ALLOC | 1);
    ASSERT_HEX(hvtest_caf(data), ALLOC | 1);
    ASSERT_FRAME(l3, ALLOC | 2, 0x6C00000000000001ULL);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(preempted_pin_l4_returns_erestart_then_completes_like_test5)
{
    struct domain *d = setup();
    struct tree t;
    unsigned int done = 0;

    (void)d;
    build_tree(d, &t, 0x100);
    /* Test 7 with j = 0, k = 1: preempt before L3 entry 1. */
    hv_inject_preempt(current, 3, 1, t.l3, PREEMPT_PROMOTE, 1);

    ASSERT_EQ(hvtest_mmuext_once(MMUEXT_PIN_L4_TABLE, t.l4, &done),
              -ERESTART);
    ASSERT_EQ(done, 0);
    ASSERT_HEX(hvtest_taf(t.l3), TAF_L3_DEVAL | PGT_partial | 1);
    ASSERT_EQ(page_nr_validated_ptes(mfn_to_page(t.l3)), 1);
    ASSERT_EQ(page_partial_flags(mfn_to_page(t.l3)), 0);
    ASSERT_HEX(hvtest_caf(t.l3), ALLOC | 3);
    ASSERT_HEX(hvtest_taf(t.l4), TAF_L4_DEVAL | PGT_partial | 1);
    ASSERT_EQ(page_nr_validated_ptes(mfn_to_page(t.l4)), 0);
    ASSERT_EQ(page_partial_flags(mfn_to_page(t.l4)), PTF_partial_set);
    ASSERT_HEX(hvtest_caf(t.l4), ALLOC | 2);
    ASSERT_HEX(hvtest_taf(t.l2), TAF_L2_VAL1);
    ASSERT(!current->old_guest_table);

    ASSERT_EQ(hvtest_mmuext_once(MMUEXT_PIN_L4_TABLE, t.l4, &done), 0);
    ASSERT_EQ(done, 1);
    assert_tree_pinned(&t);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(preempted_unpin_parks_put_and_batch_stops_before_next_op)
{
    struct domain *d = setup();
    struct tree t;
    mfn_t c = hvtest_frame(d, 0x200);
    struct mmuext_op ops[2] = {
        { .cmd = MMUEXT_UNPIN_TABLE },
        { .cmd = MMUEXT_PIN_L1_TABLE, .arg1.mfn = c },
    };
    unsigned int done = 0;

    build_tree(d, &t, 0x100);
    ops[0].arg1.mfn = t.l4;
    ASSERT_EQ(pin(4, t.l4), 0);
    hv_inject_preempt(current, 3, 100, t.l3, PREEMPT_DEMOTE, 1);

    /*
     * The unpin succeeds (the pin is gone) but its put is interrupted and
     * parked; the batch stops before op 1, which must not run first.
     */
    ASSERT_EQ(do_mmuext_op(ops, 2, &done, DOMID_SELF), -ERESTART);
    ASSERT_EQ(done, 1);
    ASSERT(current->old_guest_table == mfn_to_page(t.l4));
    ASSERT_HEX(hvtest_taf(t.l4), TAF_L4_DEVAL | PGT_partial | 1);
    ASSERT_HEX(hvtest_taf(t.l3), TAF_L3_DEVAL | PGT_partial | 1);
    ASSERT_EQ(page_nr_validated_ptes(mfn_to_page(t.l3)), 101);
    ASSERT_HEX(hvtest_taf(c), 0);

    ASSERT_EQ(do_mmuext_op(ops, 2, &done, DOMID_SELF), 0);
    ASSERT_EQ(done, 2);
    ASSERT(!current->old_guest_table);
    assert_tree_released(d, &t);
    ASSERT_HEX(hvtest_taf(c), TAF_L1_PINNED);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(failed_double_pin_of_l2_in_batch_drops_surplus_refs_via_continuation)
{
    struct domain *d = setup();
    mfn_t a = hvtest_frame(d, 0x10), c = hvtest_frame(d, 0x12);
    struct mmuext_op ops[3] = {
        { .cmd = MMUEXT_PIN_L2_TABLE, .arg1.mfn = a },
        { .cmd = MMUEXT_PIN_L2_TABLE, .arg1.mfn = a },
        { .cmd = MMUEXT_PIN_L1_TABLE, .arg1.mfn = c },
    };
    unsigned int done = 0;

    (void)d;
    ASSERT_EQ(do_mmuext_op(ops, 3, &done, DOMID_SELF), -ERESTART);
    ASSERT_EQ(done, 1);
    ASSERT(current->old_guest_table == mfn_to_page(a));
    ASSERT_HEX(hvtest_taf(a), TAF_L2_PINNED + 1);
    ASSERT_EQ(do_mmuext_op(ops, 3, &done, DOMID_SELF), -EINVAL);
    ASSERT_EQ(done, 1);
    ASSERT(!current->old_guest_table);
    ASSERT_FRAME(a, ALLOC | 2, TAF_L2_PINNED);
    /* The failed op stopped the batch: op 2 never ran. */
    ASSERT_HEX(hvtest_taf(c), 0);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * Test 14, 15, 16, 17: errors
 * ------------------------------------------------------------------------ */

TEST(double_pin_einval_counts_unchanged_unpin_unpinned_einval)
{
    struct domain *d = setup();
    struct domain *d2 = hvtest_domain(16, 1);
    mfn_t p = hvtest_frame(d, 0x10), q = hvtest_frame(d, 0x11);
    mfn_t f;
    unsigned int done = 0;

    f = hvtest_frame(d2, 0x10);
    hvtest_as(d, 0);
    ASSERT_EQ(pin(1, p), 0);
    hv_log_clear();
    ASSERT_EQ(pin(1, p), -EINVAL);
    ASSERT_LOG("mfn %05lx already pinned", p);
    ASSERT_FRAME(p, ALLOC | 2, TAF_L1_PINNED);

    /* An L2's surplus refs are dropped through old_guest_table. */
    ASSERT_EQ(pin(2, q), 0);
    ASSERT_EQ(hvtest_mmuext_once(MMUEXT_PIN_L2_TABLE, q, &done), -ERESTART);
    ASSERT_EQ(done, 0);
    ASSERT_HEX(hvtest_taf(q), TAF_L2_PINNED + 1);
    ASSERT_EQ(hvtest_mmuext_once(MMUEXT_PIN_L2_TABLE, q, &done), -EINVAL);
    ASSERT_EQ(done, 0);
    ASSERT_FRAME(q, ALLOC | 2, TAF_L2_PINNED);
    /* Pinned as L2, it cannot be pinned as another level. */
    ASSERT_EQ(pin(1, q), -EINVAL);
    ASSERT_HEX(hvtest_taf(q), TAF_L2_PINNED);

    ASSERT_EQ(unpin(p), 0);
    hv_log_clear();
    ASSERT_EQ(unpin(p), -EINVAL);
    ASSERT_LOG("mfn %05lx not pinned", p);
    ASSERT_FRAME(p, ALLOC | 1, TAF_L1_DEVAL);

    /* Another domain's frame is not ours to (un)pin. */
    ASSERT_EQ(pin(1, f), -EINVAL);
    ASSERT_EQ(unpin(f), -EINVAL);
    {
        char line[64];

        snprintf(line, sizeof(line), "mfn %05lx bad, or bad owner d%d",
                 (unsigned long)f, d->domain_id);
        ASSERT(hv_log_contains(line));
    }
    ASSERT_FRAME(f, ALLOC | 1, 0);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(mmu_update_foreigndom_and_command_errors)
{
    struct domain *d = setup();
    struct domain *d2 = hvtest_domain(16, 1);
    struct domain *novcpu;
    mfn_t l2 = hvtest_frame(d, 0x10), l1 = hvtest_frame(d, 0x11);
    mfn_t data = hvtest_frame(d, 0x12), f;
    unsigned int pfd;

    f = hvtest_frame(d2, 0x10);
    ASSERT_EQ(domain_create(DOMID_ANY, 0, 0, &novcpu), 0);
    hvtest_as(d, 0);
    ASSERT_EQ(pin(2, l2), 0);
    ASSERT_EQ(pin(1, l1), 0);

    /* FD: one's own numeric domid is not DOMID_SELF. */
    hv_log_clear();
    ASSERT_EQ(mmu_one(pt_ptr(l1, 0, 0), hvtest_pte(data, 0), d->domain_id),
              -ESRCH);
    ASSERT(hv_log_contains("Cannot specify itself as foreign domain"));
    ASSERT_EQ(mmu_one(pt_ptr(l1, 0, 0), hvtest_pte(data, 0), 0x7000),
              -ESRCH);
    /* PFD: unknown, or without vCPU 0. */
    ASSERT_EQ(mmu_one(pt_ptr(l1, 0, 0), 0, (0x7000U + 1) << 16 | DOMID_SELF),
              -ESRCH);
    pfd = (novcpu->domain_id + 1U) << 16;
    ASSERT_EQ(mmu_one(pt_ptr(l1, 0, 0), 0, pfd | DOMID_SELF), -EINVAL);

    /* Commands 4..7 do not exist. */
    for ( unsigned int cmd = 4; cmd < 8; cmd++ )
        ASSERT_EQ(mmu_one(pt_ptr(l1, 0, cmd), 0, DOMID_SELF), -ENOSYS);

    /* A domU may not name another domain's frames or tables (XSM). */
    ASSERT_EQ(mmu_one(pt_ptr(l1, 0, 0), hvtest_pte(f, 0), d2->domain_id),
              -EPERM);
    pfd = (d2->domain_id + 1U) << 16;
    ASSERT_EQ(mmu_one(pt_ptr(f, 0, MMU_MACHPHYS_UPDATE), 7, pfd | DOMID_SELF),
              -EPERM);

    /* L2..L4 updates need FD == PFD (as the control domain here). */
    set_current(host.dom0->vcpu[0]);
    pfd = (d->domain_id + 1U) << 16;
    ASSERT_EQ(mmu_one(pt_ptr(l2, 1, 0), hvtest_pte(l1, _PAGE_USER),
                      pfd | d2->domain_id), -EINVAL);
    ASSERT_HEX(hvtest_read_pte(l2, 1), 0);
    ASSERT_EQ(mmu_one(pt_ptr(l2, 1, 0), hvtest_pte(l1, _PAGE_USER),
                      pfd | d->domain_id), 0);
    ASSERT_HEX(hvtest_taf(l1), TAF_L1_PINNED + 1);
    ASSERT_EQ(mmu_one(pt_ptr(l2, 1, 0), 0, pfd | d->domain_id), 0);
    ASSERT_HEX(hvtest_taf(l1), TAF_L1_PINNED);
    hvtest_as(d, 0);

    /* A translated (HVM-like) domain has no PV MMU to drive. */
    {
        struct domain *hvm;
        struct mmuext_op op = { .cmd = MMUEXT_PIN_L1_TABLE, .arg1.mfn = 1 };

        ASSERT_EQ(domain_create(DOMID_ANY, DOMCREATE_translated, 1, &hvm), 0);
        set_current(host.dom0->vcpu[0]);
        ASSERT_EQ(mmuext(&op, hvm->domain_id), -EINVAL);
        pfd = (hvm->domain_id + 1U) << 16;
        ASSERT_EQ(mmu_one(pt_ptr(l1, 0, 0), 0, pfd | hvm->domain_id),
                  -EOPNOTSUPP);
        hvtest_as(d, 0);
    }

    /* MACHPHYS: our own frame, any value; the new PFN is recorded. */
    ASSERT_EQ(mmu_one(pt_ptr(data, 0, MMU_MACHPHYS_UPDATE), 0x1234,
                      DOMID_SELF), 0);
    ASSERT_HEX(get_gpfn_from_mfn(data), 0x1234);
    hv_log_clear();
    ASSERT_EQ(mmu_one(pt_ptr(f, 0, MMU_MACHPHYS_UPDATE), 0x1234, DOMID_SELF),
              -EINVAL);
    ASSERT(hv_log_contains("Could not get page for mach->phys update"));
    ASSERT_HEX(get_gpfn_from_mfn(f), 0x10);

    /* A normal update of a frame that is not ours. */
    hv_log_clear();
    ASSERT_EQ(mmu_one(pt_ptr(f, 0, 0), 0, DOMID_SELF), -EINVAL);
    ASSERT(hv_log_contains("Could not get page for normal update"));
    ASSERT_FRAME(f, ALLOC | 1, 0);
    ASSERT_EQ(mmu_one(pt_ptr(host.max_page + 5, 0, 0), 0, DOMID_SELF),
              -EINVAL);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(update_va_mapping_without_l2_entry_is_einval_and_flushes_nothing)
{
    struct domain *d = setup();
    struct tree t;
    mfn_t extra = hvtest_frame(d, 0x300);
    uint64_t g0, g1;

    /* No base yet: nothing to walk. */
    ASSERT_EQ(do_update_va_mapping(VA(2), hvtest_pte(extra, 0),
                                   UVMF_TLB_FLUSH | UVMF_ALL), -EINVAL);
    tree_as_base(d, &t, 0x100);
    /* Typed writable once, so that mapping it RW changes no type. */
    ASSERT_EQ(hvtest_mmuext(MMUEXT_CLEAR_PAGE, extra), 0);
    ASSERT_HEX(hvtest_taf(extra), TAF_WR_0);

    g0 = gen(d, 0);
    g1 = gen(d, 1);
    /* L2 slot 1 is empty; Xen's slots and non-canonical VAs are refused. */
    ASSERT_EQ(do_update_va_mapping(0x200000, hvtest_pte(extra, 0),
                                   UVMF_TLB_FLUSH | UVMF_ALL), -EINVAL);
    ASSERT_EQ(do_update_va_mapping(0xFFFF800000000000UL, hvtest_pte(extra, 0),
                                   UVMF_INVLPG | UVMF_ALL), -EINVAL);
    ASSERT_EQ(do_update_va_mapping(0x0000900000000000UL, hvtest_pte(extra, 0),
                                   UVMF_INVLPG | UVMF_ALL), -EINVAL);
    /* A bad new entry: the L1 is found, the update refused. */
    ASSERT_EQ(do_update_va_mapping(VA(2), hvtest_pte(extra, _PAGE_PCD),
                                   UVMF_TLB_FLUSH | UVMF_ALL), -EINVAL);
    ASSERT_EQ(gen(d, 0), g0);
    ASSERT_EQ(gen(d, 1), g1);
    ASSERT_HEX(hvtest_caf(extra), ALLOC | 1);

    /* Success: INVLPG of the local vCPU only. */
    ASSERT_EQ(do_update_va_mapping(VA(2), hvtest_pte(extra, 0),
                                   UVMF_INVLPG | UVMF_LOCAL), 0);
    ASSERT_HEX(hvtest_read_pte(t.l1, 2),
               hvtest_pte(extra, _PAGE_USER) | PTE_GUEST_KERNEL);
    ASSERT_HEX(hvtest_caf(extra), ALLOC | 2);
    ASSERT_EQ(gen(d, 0), g0 + 1);
    ASSERT_EQ(gen(d, 1), g1);

    /* A flush of all vCPUs. */
    ASSERT_EQ(do_update_va_mapping(VA(2), hvtest_pte(extra, _PAGE_RW),
                                   UVMF_TLB_FLUSH | UVMF_ALL), 0);
    ASSERT_HEX(hvtest_taf(extra), TAF_WR_1);
    ASSERT_EQ(gen(d, 0), g0 + 2);
    ASSERT_EQ(gen(d, 1), g1 + 1);

    /* A guest vCPU bitmap at VA(1) (the `ro` page) naming vCPU 1. */
    hv_frame_written(t.ro);
    *(uint64_t *)map_domain_page(t.ro) = 2;
    ASSERT_EQ(do_update_va_mapping(VA(2), hvtest_pte(extra, 0),
                                   VA(1) | UVMF_TLB_FLUSH), 0);
    ASSERT_EQ(gen(d, 0), g0 + 2);
    ASSERT_EQ(gen(d, 1), g1 + 2);
    ASSERT_HEX(hvtest_taf(extra), TAF_WR_0);
    /* An unmapped bitmap: the entry changed, nothing flushed, -EFAULT. */
    ASSERT_EQ(do_update_va_mapping(VA(2), 0, 0x300000 | UVMF_TLB_FLUSH),
              -EFAULT);
    ASSERT_HEX(hvtest_read_pte(t.l1, 2), 0);
    ASSERT_HEX(hvtest_caf(extra), ALLOC | 1);
    ASSERT_EQ(gen(d, 0), g0 + 2);
    ASSERT_EQ(gen(d, 1), g1 + 2);

    /* _otherdomain: one's own domid is -ESRCH. */
    ASSERT_EQ(do_update_va_mapping_otherdomain(VA(2), 0, 0, d->domain_id),
              -ESRCH);
    ASSERT_EQ(do_update_va_mapping_otherdomain(VA(2), 0, 0, DOMID_SELF), 0);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(mapping_foreign_or_free_frame_ebusy_mmio_without_permission_eperm)
{
    struct domain *d = setup();
    struct domain *d2 = hvtest_domain(16, 1);
    mfn_t t = hvtest_frame(d, 0x10), f, freed;
    struct page_info *pg;

    f = hvtest_frame(d2, 0x10);
    hvtest_as(d, 0);
    ASSERT_EQ(pin(1, t), 0);

    hv_log_clear();
    ASSERT_EQ(hvtest_pt_update(t, 0, hvtest_pte(f, 0)), -EBUSY);
    ASSERT(hv_log_contains("Error getting mfn"));
    ASSERT_HEX(hvtest_caf(f), ALLOC | 1);
    ASSERT_EQ(hvtest_pt_update(t, 0, hvtest_pte(f, _PAGE_RW)), -EBUSY);
    ASSERT_FRAME(f, ALLOC | 1, 0);

    pg = alloc_heap_pages(0, 0);
    ASSERT(pg);
    freed = page_to_mfn(pg);
    free_heap_pages(pg, 0, false);
    ASSERT_EQ(hvtest_pt_update(t, 1, hvtest_pte(freed, 0)), -EBUSY);
    ASSERT_HEX(hvtest_count(freed), 0);

    ASSERT_EQ(hvtest_pt_update(t, 2, hvtest_pte(host.max_page + 16, 0)),
              -EPERM);
    ASSERT_HEX(hvtest_read_pte(t, 0), 0);
    ASSERT_HEX(hvtest_read_pte(t, 1), 0);
    ASSERT_HEX(hvtest_read_pte(t, 2), 0);
    ASSERT_FRAME(t, ALLOC | 2, TAF_L1_PINNED);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(log_dirty_marks_pinned_table_and_the_new_pfn_of_machphys_update)
{
    struct domain *d = setup();
    mfn_t l = hvtest_frame(d, 0x10), data = hvtest_frame(d, 0x11);
    mfn_t dst = hvtest_frame(d, 0x12);
    struct xen_domctl_shadow_op sc = {
        .op = XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY,
    };
    uint8_t bitmap[0x80 / 8] = { 0 };

    set_current(host.dom0->vcpu[0]);
    ASSERT_EQ(domctl_shadow_op(d, &sc), 0);
    hvtest_as(d, 0);

    ASSERT_EQ(pin(1, l), 0);                            /* pfn 0x10 */
    ASSERT_EQ(mmu_one(pt_ptr(data, 0, MMU_MACHPHYS_UPDATE), 0x40,
                      DOMID_SELF), 0);                  /* pfn 0x40 */
    ASSERT_EQ(hvtest_mmuext(MMUEXT_CLEAR_PAGE, dst), 0);    /* pfn 0x12 */

    set_current(host.dom0->vcpu[0]);
    sc = (struct xen_domctl_shadow_op){
        .op = XEN_DOMCTL_SHADOW_OP_CLEAN, .dirty_bitmap = bitmap,
        .pages = 0x80,
    };
    ASSERT_EQ(domctl_shadow_op(d, &sc), 0);
    hvtest_as(d, 0);
    ASSERT_EQ(sc.stats.dirty_count, 3);
    ASSERT_HEX(bitmap[0x10 / 8], (1U << (0x10 % 8)) | (1U << (0x12 % 8)));
    ASSERT_HEX(bitmap[0x40 / 8], 1U << (0x40 % 8));
    /* The MFN's old PFN is not marked: only the new one is. */
    ASSERT_EQ(bitmap[0x11 / 8] & (1U << (0x11 % 8)), 0);
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * A malicious guest
 * ------------------------------------------------------------------------ */

TEST(malicious_rw_mapping_of_pinned_table_is_ebusy_counts_unchanged)
{
    struct domain *d = setup();
    struct tree t;
    mfn_t p = hvtest_frame(d, 0x10);

    tree_as_base(d, &t, 0x100);
    ASSERT_EQ(pin(1, p), 0);

    /* Map a pinned L1, or its own L1, writable: refused. */
    ASSERT_EQ(hvtest_pt_update(t.l1, 5, hvtest_pte(p, _PAGE_RW)), -EBUSY);
    ASSERT_EQ(hvtest_pt_update(t.l1, 6, hvtest_pte(t.l1, _PAGE_RW)), -EBUSY);
    ASSERT_EQ(do_update_va_mapping(VA(7), hvtest_pte(t.l4, _PAGE_RW), 0),
              -EBUSY);
    ASSERT_EQ(do_update_va_mapping(VA(7), hvtest_pte(t.l2, _PAGE_RW), 0),
              -EBUSY);
    ASSERT_HEX(hvtest_read_pte(t.l1, 5), 0);
    ASSERT_HEX(hvtest_read_pte(t.l1, 6), 0);
    ASSERT_HEX(hvtest_read_pte(t.l1, 7), 0);
    ASSERT_FRAME(p, ALLOC | 2, TAF_L1_PINNED);
    ASSERT_FRAME(t.l1, ALLOC | 2, TAF_L1_VAL1);
    ASSERT_FRAME(t.l4, ALLOC | 3, TAF_L4_PINNED + 1);

    /* Read-only is fine: one more general ref, no type change. */
    ASSERT_EQ(do_update_va_mapping(VA(7), hvtest_pte(t.l1, 0), 0), 0);
    ASSERT_FRAME(t.l1, ALLOC | 3, TAF_L1_VAL1);
    /* ... and the fast path cannot turn it writable. */
    ASSERT_EQ(do_update_va_mapping(VA(7), hvtest_pte(t.l1, _PAGE_RW), 0),
              -EBUSY);
    ASSERT_HEX(hvtest_read_pte(t.l1, 7) & _PAGE_RW, 0);
    ASSERT_HEX(hvtest_caf(t.l1), ALLOC | 3);

    /* Raw writes need a writable type, which a validated table refuses. */
    ASSERT_EQ(hvtest_mmuext(MMUEXT_CLEAR_PAGE, p), -EINVAL);
    ASSERT_HEX(hvtest_taf(p), TAF_L1_PINNED);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(malicious_pin_of_table_mapping_itself_writable_fails)
{
    struct domain *d = setup();
    mfn_t p = hvtest_frame(d, 0x10), r = hvtest_frame(d, 0x11);
    mfn_t q = hvtest_frame(d, 0x12);

    /* Test 1: an L1 mapping itself RW cannot be validated. */
    hvtest_write_pte(p, 0, hvtest_pte(p, _PAGE_RW));
    ASSERT_EQ(pin(1, p), -EBUSY);
    ASSERT_FRAME(p, ALLOC | 1, 0);
    /* ... read-only it can: alloc + pin + self mapping. */
    hvtest_write_pte(r, 0, hvtest_pte(r, 0));
    ASSERT_EQ(pin(1, r), 0);
    ASSERT_FRAME(r, ALLOC | 3, TAF_L1_PINNED);

    /* An L2 mapping itself RW: a writable linear table is refused. */
    hvtest_write_pte(q, 0, hvtest_pte(q, _PAGE_RW));
    hv_log_clear();
    ASSERT_EQ(pin(2, q), -EINVAL);
    ASSERT(hv_log_contains("Attempt to create linear p.t. with write perms"));
    ASSERT_FRAME(q, ALLOC | 1, 0);
    ASSERT(!current->old_guest_table);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(malicious_update_of_xen_l4_slots_is_einval)
{
    struct domain *d = setup();
    mfn_t l4 = hvtest_frame(d, 0x10), l3 = hvtest_frame(d, 0x11);
    intpte_t self;

    ASSERT_EQ(pin(4, l4), 0);
    self = hvtest_read_pte(l4, 258);
    ASSERT_HEX(self, (l4 << PAGE_SHIFT) | XEN_L4_SELF_FLAGS);

    hv_log_clear();
    ASSERT_EQ(hvtest_pt_update(l4, 258, hvtest_pte(l3, _PAGE_USER)), -EINVAL);
    ASSERT(hv_log_contains("L4 update in Xen-private area, slot 0x102"));
    ASSERT_EQ(hvtest_pt_update(l4, 258, 0), -EINVAL);
    ASSERT_EQ(hvtest_pt_update(l4, 256, 0), -EINVAL);
    ASSERT_EQ(hvtest_pt_update(l4, 271, 0), -EINVAL);
    ASSERT_HEX(hvtest_read_pte(l4, 258), self);
    ASSERT_FRAME(l3, ALLOC | 1, 0);

    /* The guest's own slots on either side are fine. */
    ASSERT_EQ(hvtest_pt_update(l4, 255, hvtest_pte(l3, _PAGE_USER)), 0);
    ASSERT_EQ(hvtest_pt_update(l4, 272, 0), 0);
    ASSERT_HEX(hvtest_taf(l3), TAF_L3_VAL1);
    /* PSE in an L4 entry is disallowed. */
    ASSERT_EQ(hvtest_pt_update(l4, 255, hvtest_pte(l3, _PAGE_PSE)), -EINVAL);
    ASSERT_HEX(hvtest_taf(l3), TAF_L3_VAL1);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * The other mmuext_op commands
 * ------------------------------------------------------------------------ */

TEST(mmuext_tlb_flush_ops_bump_the_named_vcpus)
{
    struct domain *d = setup();
    struct tree t;
    struct mmuext_op op = { 0 };
    uint64_t g0, g1;

    tree_as_base(d, &t, 0x100);
    hv_frame_written(t.ro);
    *(uint64_t *)map_domain_page(t.ro) = 2;     /* bitmap: vCPU 1 */
    g0 = gen(d, 0);
    g1 = gen(d, 1);

    op.cmd = MMUEXT_TLB_FLUSH_LOCAL;
    ASSERT_EQ(mmuext(&op, DOMID_SELF), 0);
    ASSERT_EQ(gen(d, 0), g0 + 1);
    ASSERT_EQ(gen(d, 1), g1);

    op.cmd = MMUEXT_TLB_FLUSH_MULTI;
    op.arg2.vcpumask = VA(1);
    ASSERT_EQ(mmuext(&op, DOMID_SELF), 0);
    ASSERT_EQ(gen(d, 0), g0 + 1);
    ASSERT_EQ(gen(d, 1), g1 + 1);

    op.cmd = MMUEXT_INVLPG_MULTI;
    op.arg2.vcpumask = VA(9);                   /* unmapped */
    ASSERT_EQ(mmuext(&op, DOMID_SELF), -EINVAL);
    ASSERT_EQ(gen(d, 1), g1 + 1);

    op.cmd = MMUEXT_INVLPG_ALL;
    op.arg1.linear_addr = 0xFFFF800000001000UL; /* Xen's: ignored */
    ASSERT_EQ(mmuext(&op, DOMID_SELF), 0);
    ASSERT_EQ(gen(d, 0), g0 + 1);
    op.arg1.linear_addr = VA(3);
    ASSERT_EQ(mmuext(&op, DOMID_SELF), 0);
    ASSERT_EQ(gen(d, 0), g0 + 2);
    ASSERT_EQ(gen(d, 1), g1 + 2);

    op.cmd = MMUEXT_TLB_FLUSH_ALL;
    ASSERT_EQ(mmuext(&op, DOMID_SELF), 0);
    ASSERT_EQ(gen(d, 0), g0 + 3);
    ASSERT_EQ(gen(d, 1), g1 + 3);

    op.cmd = MMUEXT_FLUSH_CACHE;
    ASSERT_EQ(mmuext(&op, DOMID_SELF), -EACCES);
    op.cmd = MMUEXT_FLUSH_CACHE_GLOBAL;
    ASSERT_EQ(mmuext(&op, DOMID_SELF), -EACCES);
    d->cache_flush_permitted = true;
    ASSERT_EQ(mmuext(&op, DOMID_SELF), 0);

    /* Another domain's TLB is not the caller's business. */
    set_current(host.dom0->vcpu[0]);
    op.cmd = MMUEXT_TLB_FLUSH_ALL;
    ASSERT_EQ(mmuext(&op, d->domain_id), -EPERM);
    hvtest_as(d, 0);
    ASSERT_EQ(gen(d, 1), g1 + 3);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(mmuext_set_ldt_clear_copy_super_and_unknown_commands)
{
    struct domain *d = setup();
    struct domain *d2 = hvtest_domain(16, 1);
    mfn_t a = hvtest_frame(d, 0x10), b = hvtest_frame(d, 0x11);
    mfn_t l = hvtest_frame(d, 0x12), f;
    struct mmuext_op op = { 0 };
    uint8_t *pa = map_domain_page(a), *pb = map_domain_page(b);

    /* The test writes a and b as their guest would. */
    hv_frame_written(a);
    hv_frame_written(b);
    f = hvtest_frame(d2, 0x10);
    hvtest_as(d, 0);

    op.cmd = MMUEXT_SET_LDT;
    op.arg1.linear_addr = 0x10000;
    op.arg2.nr_ents = 8193;
    ASSERT_EQ(mmuext(&op, DOMID_SELF), -EINVAL);
    op.arg2.nr_ents = 16;
    op.arg1.linear_addr = 0x10008;
    ASSERT_EQ(mmuext(&op, DOMID_SELF), -EINVAL);
    op.arg1.linear_addr = 0xFFFF800000000000UL;
    ASSERT_EQ(mmuext(&op, DOMID_SELF), -EINVAL);
    ASSERT_EQ(current->ctxt.ldt_ents, 0);
    op.arg1.linear_addr = 0x10000;
    ASSERT_EQ(mmuext(&op, DOMID_SELF), 0);
    ASSERT_HEX(current->ctxt.ldt_base, 0x10000);
    ASSERT_EQ(current->ctxt.ldt_ents, 16);
    op.arg2.nr_ents = 0;
    ASSERT_EQ(mmuext(&op, DOMID_SELF), 0);
    ASSERT_HEX(current->ctxt.ldt_base, 0);
    ASSERT_EQ(current->ctxt.ldt_ents, 0);

    /* COPY then CLEAR: writable-typable RAM of FD; no type left behind. */
    memset(pb, 0x5a, PAGE_SIZE);
    op = (struct mmuext_op){ .cmd = MMUEXT_COPY_PAGE, .arg1.mfn = a,
                             .arg2.src_mfn = b };
    ASSERT_EQ(mmuext(&op, DOMID_SELF), 0);
    ASSERT_EQ(pa[0], 0x5a);
    ASSERT_EQ(pa[PAGE_SIZE - 1], 0x5a);
    ASSERT_FRAME(a, ALLOC | 1, TAF_WR_0);
    ASSERT_HEX(hvtest_caf(b), ALLOC | 1);
    op = (struct mmuext_op){ .cmd = MMUEXT_CLEAR_PAGE, .arg1.mfn = b };
    ASSERT_EQ(mmuext(&op, DOMID_SELF), 0);
    ASSERT_EQ(pb[0], 0);
    ASSERT_EQ(pb[PAGE_SIZE - 1], 0);

    /* Not to a page table, not to another domain's frame. */
    ASSERT_EQ(pin(1, l), 0);
    hv_log_clear();
    op.arg1.mfn = l;
    ASSERT_EQ(mmuext(&op, DOMID_SELF), -EINVAL);
    ASSERT_LOG("Error clearing mfn %05lx", l);
    op = (struct mmuext_op){ .cmd = MMUEXT_COPY_PAGE, .arg1.mfn = l,
                             .arg2.src_mfn = a };
    ASSERT_EQ(mmuext(&op, DOMID_SELF), -EINVAL);
    ASSERT_LOG("Error copying to mfn %05lx", l);
    op.arg1.mfn = a;
    op.arg2.src_mfn = f;
    ASSERT_EQ(mmuext(&op, DOMID_SELF), -EINVAL);
    ASSERT_LOG("Error copying from mfn %05lx", f);
    ASSERT_FRAME(l, ALLOC | 2, TAF_L1_PINNED);
    ASSERT_HEX(hvtest_caf(f), ALLOC | 1);
    /* The control domain may clear a domU's frame (FD = the domU). */
    set_current(host.dom0->vcpu[0]);
    hv_frame_written(f);
    memset(map_domain_page(f), 1, 8);
    op = (struct mmuext_op){ .cmd = MMUEXT_CLEAR_PAGE, .arg1.mfn = f };
    ASSERT_EQ(mmuext(&op, d2->domain_id), 0);
    ASSERT_HEX(*(uint64_t *)map_domain_page(f), 0);
    hvtest_as(d, 0);
    /* ... a domU may not (XSM). */
    ASSERT_EQ(mmuext(&op, d2->domain_id), -EPERM);

    op.cmd = MMUEXT_MARK_SUPER;
    ASSERT_EQ(mmuext(&op, DOMID_SELF), -EOPNOTSUPP);
    op.cmd = MMUEXT_UNMARK_SUPER;
    ASSERT_EQ(mmuext(&op, DOMID_SELF), -EOPNOTSUPP);
    op.cmd = 14;
    ASSERT_EQ(mmuext(&op, DOMID_SELF), -ENOSYS);
    op.cmd = 99;
    ASSERT_EQ(mmuext(&op, DOMID_SELF), -ENOSYS);
    ASSERT_EQ(mmuext(&op, d->domain_id), -ESRCH);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(control_domain_builds_and_pins_a_domu_tree_with_foreigndom)
{
    struct domain *d = setup();
    struct tree t;
    struct mmuext_op op = { .cmd = MMUEXT_PIN_L4_TABLE };
    unsigned int pfd = (d->domain_id + 1U) << 16;

    /* As the domain builder and the restorer do. */
    build_tree(d, &t, 0x100);
    set_current(host.dom0->vcpu[0]);
    op.arg1.mfn = t.l4;
    ASSERT_EQ(mmuext(&op, d->domain_id), 0);
    assert_tree_pinned(&t);
    ASSERT(!host.dom0->vcpu[0]->old_guest_table);
    /* Then updates the domU's L1 as its PT owner. */
    ASSERT_EQ(mmu_one(pt_ptr(t.l1, 1, 0), 0, pfd | d->domain_id), 0);
    ASSERT_HEX(hvtest_caf(t.ro), ALLOC | 1);
    hvtest_as(d, 0);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * Concurrency
 * ------------------------------------------------------------------------ */

#define RACE_ROUNDS 2000

struct racer
{
    struct vcpu *v;
    mfn_t l1, data;
    unsigned int slot;
    long bad;                   /* first unexpected rc, 0 if none */
};

/*
 * One vCPU thread: map the shared data frame RW, then RO, then not at all,
 * in its own slot of the shared L1, alternating mmu_update and
 * update_va_mapping.  Every call must succeed.
 */
static void *racer_run(void *arg)
{
    struct racer *r = arg;

    set_current(r->v);
    for ( unsigned int i = 0; i < RACE_ROUNDS && !r->bad; i++ )
    {
        long rc = hvtest_pt_update(r->l1, r->slot,
                                   hvtest_pte(r->data, _PAGE_RW));

        if ( !rc )
            rc = do_update_va_mapping(VA(r->slot), hvtest_pte(r->data, 0),
                                      UVMF_INVLPG | UVMF_LOCAL);
        if ( !rc )
            rc = hvtest_pt_update(r->l1, r->slot, 0);
        if ( rc )
            r->bad = rc;
    }
    set_current(NULL);
    return NULL;
}

TEST_TIMEOUT(concurrent_l1_updates_from_two_vcpus_keep_exact_counts, 120)
{
    struct domain *d = setup();
    struct tree t;
    struct racer r[2];
    pthread_t th[2];

    tree_as_base(d, &t, 0x100);
    /* vCPU 1 runs on the same page tables. */
    hvtest_as(d, 1);
    ASSERT_EQ(hvtest_mmuext(MMUEXT_NEW_BASEPTR, t.l4), 0);
    hvtest_as(d, 0);

    for ( unsigned int n = 0; n < 2; n++ )
    {
        r[n] = (struct racer){ .v = d->vcpu[n], .l1 = t.l1, .data = t.rw,
                               .slot = 10 + n };
        ASSERT_EQ(pthread_create(&th[n], NULL, racer_run, &r[n]), 0);
    }
    for ( unsigned int n = 0; n < 2; n++ )
        ASSERT_EQ(pthread_join(th[n], NULL), 0);
    hvtest_as(d, 0);

    ASSERT_EQ(r[0].bad, 0);
    ASSERT_EQ(r[1].bad, 0);
    /* Only slot 0's mapping is left: alloc + 1, writable count 1. */
    ASSERT_FRAME(t.rw, ALLOC | 2, TAF_WR_1);
    ASSERT_FRAME(t.l1, ALLOC | 2, TAF_L1_VAL1);
    ASSERT_FRAME(t.l4, ALLOC | 4, TAF_L4_PINNED + 2);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}
