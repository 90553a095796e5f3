/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of general and type references (hypervisor/page.c): the
 * count_info and type_info words after each operation, the return
 * conventions of the wrappers, the exact log lines, and the type rules
 * that keep writable pages and page tables apart (reference sections 2, 3
 * and tests 1-3 of section 10).
 */
#include "hvtest.h"

#define T_SEG   PGT_seg_desc_page

static struct domain *setup(void)
{
    hvtest_host(HVTEST_MEM_MB);
    return hvtest_domain(64, 2);
}

/* ------------------------------------------------------------------------
 * General references
 * ------------------------------------------------------------------------ */

TEST(get_page_owner_mismatch_logs_error_line_and_keeps_count)
{
    struct domain *d1 = setup(), *d2 = hvtest_domain(8, 1);
    mfn_t m = hvtest_frame(d1, 0x20);

    hv_log_clear();
    ASSERT_EQ(get_page(mfn_to_page(m), d2), false);
    ASSERT(hvtest_log_has("Error mfn %05lx: rd=d%u od=d%u caf=8000000000000001 "
                   "taf=0000000000000000", (unsigned long)m, d2->domain_id,
                   d1->domain_id));
    ASSERT_HEX(hvtest_caf(m), ALLOC | 1);

    ASSERT_EQ(get_page(mfn_to_page(m), d1), true);
    ASSERT_HEX(hvtest_caf(m), ALLOC | 2);
    put_page(mfn_to_page(m));
    ASSERT_HEX(hvtest_caf(m), ALLOC | 1);
    hvtest_done();
}

TEST(get_page_of_free_frame_fails_with_od_null)
{
    struct domain *d = setup();
    struct page_info *pg = alloc_heap_pages(0, 0);
    mfn_t m = page_to_mfn(pg);

    free_heap_pages(pg, 0, false);
    hv_log_clear();
    ASSERT_EQ(get_page(pg, d), false);
    ASSERT(hvtest_log_has("Error mfn %05lx: rd=d%u od=NULL", (unsigned long)m,
                   d->domain_id));
    ASSERT_HEX(hvtest_caf(m), PGC_state_free);
    ASSERT_EQ(page_get_owner_and_reference(pg) == NULL, true);
    hvtest_done();
}

TEST(put_page_alloc_ref_then_last_put_frees_frame)
{
    struct domain *d = setup();
    mfn_t m = hvtest_frame(d, 0x21);
    struct page_info *pg = mfn_to_page(m);
    uint64_t free0, tot0 = atomic_load(&d->tot_pages);

    /* A writable type ref comes and goes; the type stays, count 0. */
    ASSERT_EQ(get_page_and_type(pg, d, T_WR), true);
    ASSERT_FRAME(m, ALLOC | 2, T_WR | VALID | 1);
    put_page_type(pg);
    ASSERT_FRAME(m, ALLOC | 2, T_WR | VALID);

    free0 = hv_free_pages();
    put_page_alloc_ref(pg);
    ASSERT_FRAME(m, 1, T_WR | VALID);
    /* A second call finds no allocation ref and does nothing. */
    get_page_light(pg);
    put_page_alloc_ref(pg);
    ASSERT_HEX(hvtest_caf(m), 2);
    put_page(pg);
    ASSERT_EQ(hv_free_pages(), free0);

    /* The last ref frees it: writable type cleared, M2P invalid. */
    put_page(pg);
    ASSERT_EQ(hv_free_pages(), free0 + 1);
    ASSERT_FRAME(m, PGC_state_free, 0);
    ASSERT_HEX(get_gpfn_from_mfn(m), INVALID_M2P_ENTRY);
    ASSERT_EQ(atomic_load(&d->tot_pages), tot0 - 1);
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * Type references: conventions and log lines
 * ------------------------------------------------------------------------ */

TEST(get_page_type_return_conventions_boolean_vs_errno)
{
    struct domain *d = setup();
    mfn_t m = hvtest_frame(d, 0x22);
    struct page_info *pg = mfn_to_page(m);

    /* Boolean wrapper: 1 on success, 0 on failure, never an errno. */
    ASSERT_EQ(get_page_type(pg, T_WR), 1);
    ASSERT_EQ(get_page_type(pg, T_L1), 0);
    /* Preemptible variant: 0 or -errno. */
    ASSERT_EQ(get_page_type_preemptible(pg, T_WR), 0);
    ASSERT_EQ(get_page_type_preemptible(pg, T_L1), -EINVAL);
    ASSERT_EQ(_get_page_type(pg, T_SEG, false), -EINVAL);
    ASSERT_HEX(hvtest_taf(m), T_WR | VALID | 2);

    /* put_page_type_preemptible: 0 when nothing was interrupted. */
    ASSERT_EQ(put_page_type_preemptible(pg), 0);
    put_page_type(pg);
    ASSERT_HEX(hvtest_taf(m), T_WR | VALID);

    /* get_page_and_type: boolean, undoes the general ref on failure. */
    ASSERT_EQ(get_page_and_type(pg, d, T_L1), true);
    ASSERT_FRAME(m, ALLOC | 2, T_L1 | VALID | 1);
    ASSERT_EQ(get_page_and_type(pg, d, T_WR), false);
    ASSERT_FRAME(m, ALLOC | 2, T_L1 | VALID | 1);
    ASSERT_EQ(put_page_and_type_preemptible(pg), 0);
    ASSERT_FRAME(m, ALLOC | 1, T_L1);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(bad_type_log_line_exact_text)
{
    struct domain *d = setup();
    mfn_t q = hvtest_frame(d, 0x12);
    struct page_info *pg = mfn_to_page(q);

    ASSERT_EQ(get_page_type(pg, T_WR), 1);
    hv_log_clear();
    ASSERT_EQ(get_page_type(pg, T_L1), 0);
    ASSERT(hvtest_log_has("d%uv0 Bad type (saw e400000000000001 != exp "
                   "2000000000000000) for mfn %05lx (pfn 00012)",
                   d->domain_id, (unsigned long)q));
    ASSERT_HEX(hvtest_taf(q), T_WR | VALID | 1);
    put_page_type(pg);
    hvtest_done();
}

TEST(bad_type_silent_for_possible_linear_attempts)
{
    struct domain *d = setup();
    mfn_t m = hvtest_frame(d, 0x30);
    struct page_info *pg = mfn_to_page(m);

    /* An empty L2 validates trivially (L2+ only preemptibly). */
    ASSERT_EQ(get_page(pg, d), true);
    ASSERT_EQ(get_page_type_preemptible(pg, T_L2), 0);
    ASSERT_FRAME(m, ALLOC | 2, T_L2 | VALID | 1);

    /* Saw L2, want L1: maybe a linear entry, so no line. */
    hv_log_clear();
    ASSERT_EQ(get_page_type(pg, T_L1), 0);
    ASSERT_EQ(hv_log_contains("Bad type"), false);
    /* Saw L2, want L3: logged. */
    ASSERT_EQ(get_page_type(pg, T_L3), 0);
    ASSERT(hvtest_log_has("Bad type (saw 4400000000000001 != exp 6000000000000000)"
                   " for mfn %05lx (pfn 00030)", (unsigned long)m));
    ASSERT_EQ(put_page_and_type_preemptible(pg), 0);
    ASSERT_FRAME(m, ALLOC | 1, T_L2);
    hvtest_done();
}

/* get_page_and_type(): a foreign owner fails before any type is taken. */
TEST(get_page_and_type_wrong_owner_takes_nothing)
{
    struct domain *d1 = setup(), *d2 = hvtest_domain(8, 1);
    mfn_t m = hvtest_frame(d1, 0x31);

    ASSERT_EQ(get_page_and_type(mfn_to_page(m), d2, T_WR), false);
    ASSERT_FRAME(m, ALLOC | 1, 0);
    hvtest_done();
}

TEST(count_limits_reserve_last_ref_for_get_page_light)
{
    struct domain *d = setup();
    mfn_t m = hvtest_frame(d, 0x35);
    struct page_info *pg = mfn_to_page(m);

    /* Count -2: the last value is get_page_light()'s. */
    atomic_store(&pg->count_info, ALLOC | (PGC_count_mask - 1));
    ASSERT_EQ(page_get_owner_and_reference(pg) == NULL, true);
    ASSERT_EQ(get_page(pg, d), false);
    get_page_light(pg);
    ASSERT_HEX(hvtest_caf(m), ALLOC | PGC_count_mask);
    atomic_store(&pg->count_info, ALLOC | 1);

    /* A saturated type count refuses one more. */
    atomic_store(&pg->type_info, T_WR | VALID | PGT_count_mask);
    hv_log_clear();
    ASSERT_EQ(get_page_type(pg, T_WR), false);
    ASSERT(hvtest_log_has("Type count overflow on mfn %05lx", (unsigned long)m));
    atomic_store(&pg->type_info, 0);
    hvtest_done();
}

/*
 * The count_info layout of x86-64 Xen built with CONFIG_SHADOW_PAGING
 * (xen/arch/x86/include/asm/mm.h at c447b73): flags in bits 63..56, the
 * count in 55..0.  A build without shadow paging has a 57-bit count, but
 * PV log-dirty needs shadow paging, so that layout is not the one ferry
 * mirrors.
 */
TEST(count_info_layout_shadow_paging)
{
    struct domain *d;
    mfn_t m;
    struct page_info *pg;

    ASSERT_HEX(PGC_allocated,       0x8000000000000000ULL);
    ASSERT_HEX(PGC_xen_heap,        0x4000000000000000ULL);
    ASSERT_HEX(PGC_extra,           0x2000000000000000ULL);
    ASSERT_HEX(PGC_broken,          0x1000000000000000ULL);
    ASSERT_HEX(PGC_state,           0x0C00000000000000ULL);
    ASSERT_HEX(PGC_state_offlining, 0x0400000000000000ULL);
    ASSERT_HEX(PGC_state_offlined,  0x0800000000000000ULL);
    ASSERT_HEX(PGC_state_free,      0x0C00000000000000ULL);
    ASSERT_HEX(PGC_need_scrub,      0x0200000000000000ULL);
    ASSERT_HEX(PGC_shadowed_pt,     0x0100000000000000ULL);
    ASSERT_EQ(PGC_count_width, 56);
    ASSERT_HEX(PGC_count_mask,      0x00FFFFFFFFFFFFFFULL);
    /* Every bit is a flag or count, and no two overlap. */
    ASSERT_HEX(PGC_allocated | PGC_xen_heap | PGC_extra | PGC_broken |
               PGC_state | PGC_need_scrub | PGC_shadowed_pt |
               PGC_count_mask, ~0ULL);
    ASSERT_HEX(PGC_shadowed_pt & PGC_count_mask, 0);

    /* References count below bit 56 and leave it alone. */
    d = setup();
    m = hvtest_frame(d, 0x36);
    pg = mfn_to_page(m);
    atomic_store(&pg->count_info, ALLOC | PGC_shadowed_pt | 1);
    ASSERT_EQ(get_page(pg, d), true);
    ASSERT_HEX(hvtest_caf(m), 0x8100000000000002ULL);
    put_page(pg);
    atomic_store(&pg->count_info, ALLOC | 0x00FFFFFFFFFFFFFEULL);
    ASSERT_EQ(get_page(pg, d), false);
    get_page_light(pg);
    ASSERT_HEX(hvtest_caf(m), 0x80FFFFFFFFFFFFFFULL);
    atomic_store(&pg->count_info, ALLOC | 1);
    hvtest_done();
}

TEST(validate_locked_page_preemptible_wait_returns_eintr)
{
    struct domain *d = setup();
    mfn_t m = hvtest_frame(d, 0x36);
    struct page_info *pg = mfn_to_page(m);

    /* Another CPU holds the validation lock (count 1, not validated). */
    atomic_store(&pg->type_info, T_L1 | 1);
    host.preempt_every = 1;
    ASSERT_EQ(get_page_type_preemptible(pg, T_L1), -EINTR);
    ASSERT_HEX(hvtest_taf(m), T_L1 | 1);
    host.preempt_every = 0;
    /* A wrong type is refused at once, lock or not. */
    ASSERT_EQ(get_page_type_preemptible(pg, T_WR), -EINVAL);
    atomic_store(&pg->type_info, T_L1);
    ASSERT_FRAME(m, ALLOC | 1, T_L1);
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * Type changes, devalidation, TLB flushes
 * ------------------------------------------------------------------------ */

TEST(devalidated_l1_keeps_type_2000000000000000)
{
    struct domain *d = setup();
    mfn_t l1 = hvtest_frame(d, 0x40), data = hvtest_frame(d, 0x41);
    struct page_info *pg = mfn_to_page(l1);

    hvtest_write_pte(l1, 7, hvtest_pte(data, _PAGE_RW));
    ASSERT_EQ(get_page_and_type(pg, d, T_L1), true);
    ASSERT_FRAME(l1, ALLOC | 2, T_L1 | VALID | 1);
    ASSERT_FRAME(data, ALLOC | 2, T_WR | VALID | 1);
    /* Stored entries carry the PV adjustment (US|GUEST_KERNEL). */
    ASSERT_HEX(hvtest_read_pte(l1, 7),
               hvtest_pte(data, _PAGE_RW | _PAGE_USER) | (1ULL << 52));

    /* Last type ref: devalidated, entries released, type kept. */
    put_page_and_type(pg);
    ASSERT_FRAME(l1, ALLOC | 1, T_L1);
    ASSERT_FRAME(data, ALLOC | 1, T_WR | VALID);
    HVTEST_AUDIT_CLEAN();

    /* Same type again: re-validated from the contents. */
    ASSERT_EQ(get_page_and_type(pg, d, T_L1), true);
    ASSERT_FRAME(data, ALLOC | 2, T_WR | VALID | 1);
    put_page_and_type(pg);

    /* Count 0 permits a type change: the L1 becomes writable. */
    ASSERT_EQ(get_page_and_type(pg, d, T_WR), true);
    ASSERT_FRAME(l1, ALLOC | 2, T_WR | VALID | 1);
    put_page_and_type(pg);
    ASSERT_FRAME(l1, ALLOC | 1, T_WR | VALID);
    hvtest_done();
}

TEST(unpinned_l1_reported_notab_type_kept)
{
    struct domain *d = setup();
    mfn_t l1 = hvtest_frame(d, 0x45);
    uint64_t info;

    /* Test 3: pinned, the saver sees an L1 table that is pinned ... */
    ASSERT_EQ(hvtest_mmuext(MMUEXT_PIN_L1_TABLE, l1), 0);
    info = l1;
    ASSERT_EQ(domctl_getpageframeinfo3(d, 1, &info), 0);
    ASSERT_HEX(info, 0x90000000U);
    ASSERT_FRAME(l1, ALLOC | 2, 0x2C00000000000001ULL);

    /* ... unpinned, the L1 type stays with count 0 and is NOTAB. */
    ASSERT_EQ(hvtest_mmuext(MMUEXT_UNPIN_TABLE, l1), 0);
    ASSERT_FRAME(l1, ALLOC | 1, 0x2000000000000000ULL);
    info = l1;
    ASSERT_EQ(domctl_getpageframeinfo3(d, 1, &info), 0);
    ASSERT_HEX(info, 0);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(pin_l1_self_map_ro_ok_rw_ebusy)
{
    struct domain *d = setup();
    mfn_t p = hvtest_frame(d, 0x50), r = hvtest_frame(d, 0x51);

    /* Test 1: read-only self map: alloc + pin + self mapping. */
    hvtest_write_pte(p, 0, hvtest_pte(p, 0));
    ASSERT_EQ(hvtest_mmuext(MMUEXT_PIN_L1_TABLE, p), 0);
    ASSERT_FRAME(p, ALLOC | 3, 0x2C00000000000001ULL);
    HVTEST_AUDIT_CLEAN();

    /* RW self map: the writable type ref on a would-be L1 fails. */
    hvtest_write_pte(r, 0, hvtest_pte(r, _PAGE_RW));
    hv_log_clear();
    ASSERT_EQ(hvtest_mmuext(MMUEXT_PIN_L1_TABLE, r), -EBUSY);
    ASSERT_FRAME(r, ALLOC | 1, 0);
    ASSERT(hvtest_log_has("Could not get page type PGT_writable_page"));
    ASSERT(hvtest_log_has("Error getting mfn %05lx (pfn 00051) from L1 entry "
                   "%016lx for l1e_owner d%u, pg_owner d%u", (unsigned long)r,
                   (unsigned long)hvtest_pte(r, _PAGE_RW), d->domain_id,
                   d->domain_id));
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(pin_over_writable_mapping_rejected)
{
    struct domain *d = setup();
    mfn_t a = hvtest_frame(d, 0x60), q = hvtest_frame(d, 0x61);

    /* Test 2: Q mapped writable by a pinned L1 cannot become an L1. */
    hvtest_write_pte(a, 3, hvtest_pte(q, _PAGE_RW));
    ASSERT_EQ(hvtest_mmuext(MMUEXT_PIN_L1_TABLE, a), 0);
    ASSERT_FRAME(q, ALLOC | 2, 0xE400000000000001ULL);

    hv_log_clear();
    ASSERT_EQ(hvtest_mmuext(MMUEXT_PIN_L1_TABLE, q), -EINVAL);
    ASSERT_FRAME(q, ALLOC | 2, 0xE400000000000001ULL);
    ASSERT(hvtest_log_has("Bad type (saw e400000000000001 != exp 2000000000000000)"
                   " for mfn %05lx (pfn 00061)", (unsigned long)q));
    /* Nor an L2 (and not via get_page_and_type either). */
    ASSERT_EQ(get_page_and_type(mfn_to_page(q), d, T_SEG), false);
    ASSERT_FRAME(q, ALLOC | 2, 0xE400000000000001ULL);
    HVTEST_AUDIT_CLEAN();

    /* Unpinning the mapper devalidates it and frees Q's writable ref. */
    ASSERT_EQ(hvtest_mmuext(MMUEXT_UNPIN_TABLE, a), 0);
    ASSERT_FRAME(a, ALLOC | 1, T_L1);
    ASSERT_FRAME(q, ALLOC | 1, T_WR | VALID);
    /* Now the pin works and re-types Q. */
    ASSERT_EQ(hvtest_mmuext(MMUEXT_PIN_L1_TABLE, q), 0);
    ASSERT_FRAME(q, ALLOC | 2, 0x2C00000000000001ULL);
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}

TEST(type_change_flushes_tlbs_of_owner_vcpus)
{
    struct domain *d = setup();
    mfn_t m = hvtest_frame(d, 0x70);
    struct page_info *pg = mfn_to_page(m);
    uint64_t g0 = atomic_load(&d->vcpu[0]->tlb_flush_gen);
    uint64_t g1 = atomic_load(&d->vcpu[1]->tlb_flush_gen);

    /* none -> writable: a type change. */
    ASSERT_EQ(get_page_type(pg, T_WR), 1);
    ASSERT_EQ(atomic_load(&d->vcpu[0]->tlb_flush_gen), g0 + 1);
    ASSERT_EQ(atomic_load(&d->vcpu[1]->tlb_flush_gen), g1 + 1);
    put_page_type(pg);
    /* writable -> writable at count 0: validated already, no flush. */
    ASSERT_EQ(get_page_type(pg, T_WR), 1);
    ASSERT_EQ(atomic_load(&d->vcpu[1]->tlb_flush_gen), g1 + 1);
    put_page_type(pg);
    /* writable -> L1: flush. */
    ASSERT_EQ(get_page_type(pg, T_L1), 1);
    ASSERT_EQ(atomic_load(&d->vcpu[1]->tlb_flush_gen), g1 + 2);
    put_page_type(pg);
    /* L1 (count 0, not validated) -> L1: re-validation, same type. */
    ASSERT_EQ(get_page_type(pg, T_L1), 1);
    ASSERT_EQ(atomic_load(&d->vcpu[1]->tlb_flush_gen), g1 + 2);
    put_page_type(pg);
    hvtest_done();
}

TEST(segdesc_page_validates_descriptors_and_keeps_validated)
{
    struct domain *d = setup();
    mfn_t m = hvtest_frame(d, 0x80), bad = hvtest_frame(d, 0x81);
    uint64_t *desc = map_domain_page(m);
    struct page_info *pg = mfn_to_page(m);

    /* The test writes descriptors as the guest would. */
    hv_frame_written(m);
    hv_frame_written(bad);

    /* Flat 64-bit code segment, DPL 0: accepted, DPL raised to 3. */
    desc[1] = 0x00af9a000000ffffULL;
    /* Flat data segment, DPL 3: accepted as is. */
    desc[2] = 0x00cff2000000ffffULL;
    ASSERT_EQ(get_page_and_type(pg, d, T_SEG), true);
    ASSERT_FRAME(m, ALLOC | 2, T_SEG | VALID | 1);
    ASSERT_HEX(desc[1], 0x00affa000000ffffULL);
    ASSERT_HEX(desc[2], 0x00cff2000000ffffULL);
    ASSERT_HEX(desc[0], 0);
    /* Non-PT types keep validated at count 0. */
    put_page_and_type(pg);
    ASSERT_FRAME(m, ALLOC | 1, T_SEG | VALID);

    /* A present TSS descriptor (system type 9) is refused. */
    ((uint64_t *)map_domain_page(bad))[5] = 0x0000890000000067ULL;
    ASSERT_EQ(get_page_and_type(mfn_to_page(bad), d, T_SEG), false);
    ASSERT_FRAME(bad, ALLOC | 1, 0);
    ASSERT(hv_log_contains("Error while validating mfn"));
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * page_lock
 * ------------------------------------------------------------------------ */

TEST(page_lock_takes_type_ref_and_fails_on_unvalidated)
{
    struct domain *d = setup();
    mfn_t l1 = hvtest_frame(d, 0x90), w = hvtest_frame(d, 0x91);
    struct page_info *pg = mfn_to_page(l1);

    ASSERT_EQ(hvtest_mmuext(MMUEXT_PIN_L1_TABLE, l1), 0);
    ASSERT_EQ(page_lock(pg), true);
    ASSERT_HEX(hvtest_taf(l1), T_L1 | PGT_locked | PINNED | VALID | 2);
    page_unlock(pg);
    ASSERT_HEX(hvtest_taf(l1), T_L1 | PINNED | VALID | 1);

    /* Devalidated (count 0): cannot be locked. */
    ASSERT_EQ(hvtest_mmuext(MMUEXT_UNPIN_TABLE, l1), 0);
    ASSERT_EQ(page_lock(pg), false);
    ASSERT_HEX(hvtest_taf(l1), T_L1);

    /* Validated but count 0 (writable, unused): cannot be locked. */
    ASSERT_EQ(get_page_type(mfn_to_page(w), T_WR), 1);
    put_page_type(mfn_to_page(w));
    ASSERT_EQ(page_lock(mfn_to_page(w)), false);
    ASSERT_HEX(hvtest_taf(w), T_WR | VALID);

    /* Validate-locked (count 1, not validated): cannot be locked. */
    atomic_store(&pg->type_info, T_L1 | 1);
    ASSERT_EQ(page_lock(pg), false);
    ASSERT_HEX(hvtest_taf(l1), T_L1 | 1);
    atomic_store(&pg->type_info, T_L1);
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * Concurrency: the cmpxchg loops under contention
 * ------------------------------------------------------------------------ */

#define RACE_THREADS 4
#define RACE_ROUNDS  20000

static pthread_barrier_t race_start;

struct race
{
    struct domain *d;
    mfn_t l1;
    unsigned int vcpu;
    unsigned int got;
};

/* Take and drop L1 type refs; may lose to the writable thread. */
static void *race_l1(void *arg)
{
    struct race *r = arg;
    struct page_info *pg = mfn_to_page(r->l1);

    set_current(r->d->vcpu[r->vcpu]);
    pthread_barrier_wait(&race_start);
    for ( unsigned int i = 0; i < RACE_ROUNDS; i++ )
        if ( get_page_and_type(pg, r->d, T_L1) )
        {
            r->got++;
            put_page_and_type(pg);
        }
    return NULL;
}

/* Try to make the same frame writable whenever its type count is 0. */
static void *race_wr(void *arg)
{
    struct race *r = arg;
    struct page_info *pg = mfn_to_page(r->l1);

    set_current(r->d->vcpu[r->vcpu]);
    pthread_barrier_wait(&race_start);
    for ( unsigned int i = 0; i < RACE_ROUNDS; i++ )
        if ( get_page_type(pg, T_WR) )
        {
            r->got++;
            put_page_type(pg);
        }
    return NULL;
}

TEST_TIMEOUT(concurrent_type_refs_conserve_counts, 120)
{
    struct domain *d;
    struct race r[RACE_THREADS + 1];
    pthread_t th[RACE_THREADS + 1];
    mfn_t l1, data[4];
    unsigned int got_l1 = 0;

    hvtest_host(HVTEST_MEM_MB);
    d = hvtest_domain(64, RACE_THREADS + 1);
    l1 = hvtest_frame(d, 0xa0);
    for ( unsigned int i = 0; i < 4; i++ )
    {
        data[i] = hvtest_frame(d, 0xa1 + i);
        hvtest_write_pte(l1, i, hvtest_pte(data[i], _PAGE_RW));
    }
    /* One thread per vCPU; the writable one logs "Bad type" lines. */
    pthread_barrier_init(&race_start, NULL, RACE_THREADS + 1);
    for ( unsigned int i = 0; i <= RACE_THREADS; i++ )
    {
        r[i] = (struct race){ .d = d, .l1 = l1, .vcpu = i };
        if ( pthread_create(&th[i], NULL, i < RACE_THREADS ? race_l1 : race_wr,
                            &r[i]) )
            FAIL("pthread_create");
    }
    for ( unsigned int i = 0; i <= RACE_THREADS; i++ )
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&race_start);
    set_current(d->vcpu[0]);

    for ( unsigned int i = 0; i < RACE_THREADS; i++ )
        got_l1 += r[i].got;
    DIAG("L1 refs taken %u, writable refs taken %u", got_l1,
         r[RACE_THREADS].got);
    ASSERT(got_l1 > 0);

    /* Every ref went back: whatever type won last, its count is 0. */
    ASSERT_HEX(hvtest_caf(l1), ALLOC | 1);
    ASSERT_HEX(hvtest_tcount(l1), 0);
    ASSERT_EQ(hvtest_taf(l1) & PGT_partial, 0);
    for ( unsigned int i = 0; i < 4; i++ )
    {
        ASSERT_HEX(hvtest_caf(data[i]), ALLOC | 1);
        ASSERT_HEX(hvtest_tcount(data[i]), 0);
    }
    HVTEST_AUDIT_CLEAN();
    hvtest_done();
}
