/* SPDX-License-Identifier: MIT */
/*
 * Tests of the hypervisor's own address space (hypervisor/xenmap.c):
 * the idle page table xenmap_init builds, map_pages_to_xen's superpages
 * (direct 2 MiB / 1 GiB entries, shattering, coalescing: test 26 of the
 * reference, section 10), modify/destroy over partial superpages,
 * xen_map_to_mfn, and the XSA-345 L3 lock under a storm of concurrent
 * maps, coalesces and unmaps.
 *
 * Leaf mappings use MFNs past the end of machine memory (as MMIO would be)
 * so that 1 GiB of them costs nothing; the tables themselves are real
 * frames, and each test checks that every one of them returns to the heap.
 */
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "hvtest.h"

#define PH          PAGE_HYPERVISOR
#define PH_RO       PAGE_HYPERVISOR_RO
#define SZ_2M       (1UL << 21)
#define SZ_1G       (1UL << 30)
#define FR_2M       512UL
#define FR_1G       (1UL << 18)
#define XEN_PT_CAF  (PGC_xen_heap | PGC_state_inuse | 1)

/* Test VAs in the vmap area (1 GiB aligned) and MFNs past machine memory. */
#define TVA(gb)     (HV_VMAP_VIRT_START + (uint64_t)(gb) * SZ_1G)
#define FAKE_MFN    0x4000000UL         /* aligned to 1 GiB of frames */

/* ------------------------------------------------------------------------
 * Walking the idle table from the test
 * ------------------------------------------------------------------------ */

static intpte_t *table(mfn_t mfn)
{
    return map_domain_page(mfn);
}

static intpte_t rd(const intpte_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static intpte_t l4e_of(uint64_t va)
{
    return rd(table(host.idle_pg_table) + ((va >> 39) & 511));
}

static intpte_t l3e_of(uint64_t va)
{
    intpte_t l4e = l4e_of(va);

    ASSERT(l4e & _PAGE_PRESENT);
    return rd(table(pte_mfn(l4e)) + ((va >> 30) & 511));
}

static intpte_t l2e_of(uint64_t va)
{
    intpte_t l3e = l3e_of(va);

    if ( !(l3e & _PAGE_PRESENT) || (l3e & _PAGE_PSE) )
        FAIL("l2e_of(%#" PRIx64 "): L3 entry is %#" PRIx64, va, l3e);
    return rd(table(pte_mfn(l3e)) + ((va >> 21) & 511));
}

static intpte_t l1e_of(uint64_t va)
{
    intpte_t l2e = l2e_of(va);

    if ( !(l2e & _PAGE_PRESENT) || (l2e & _PAGE_PSE) )
        FAIL("l1e_of(%#" PRIx64 "): L2 entry is %#" PRIx64, va, l2e);
    return rd(table(pte_mfn(l2e)) + ((va >> 12) & 511));
}

static intpte_t pte(mfn_t mfn, uint64_t flags)
{
    return (mfn << PAGE_SHIFT) | flags;
}

static intpte_t flags_of(intpte_t e)
{
    return e & ~PTE_MFN_MASK;
}

static bool frame_is_free(mfn_t mfn)
{
    return (hvtest_caf(mfn) & PGC_state) == PGC_state_free;
}

/* Check a table frame as xenmap keeps it. */
static void check_table_frame(mfn_t mfn)
{
    if ( !mfn_valid(mfn) )
        FAIL("table mfn %#" PRIx64 " past machine memory", mfn);
    if ( hvtest_caf(mfn) != XEN_PT_CAF )
        FAIL("table mfn %#" PRIx64 ": count_info %#" PRIx64, mfn,
             hvtest_caf(mfn));
    if ( page_get_owner(mfn_to_page(mfn)) != host.dom_xen )
        FAIL("table mfn %#" PRIx64 " not owned by DOMID_XEN", mfn);
    if ( hvtest_taf(mfn) != 0 )
        FAIL("table mfn %#" PRIx64 ": type_info %#" PRIx64, mfn,
             hvtest_taf(mfn));
}

/*
 * Walk every table reachable from the idle L4.  Each must be an in-use
 * DOMID_XEN frame referenced once; returns how many there are.
 */
static uint64_t walk_level(mfn_t mfn, unsigned int level, uint8_t *seen)
{
    intpte_t *t = table(mfn);
    uint64_t n = 1;

    check_table_frame(mfn);
    if ( seen[mfn]++ )
        FAIL("table mfn %#" PRIx64 " referenced twice", mfn);
    if ( level == 1 )
        return 1;
    for ( unsigned int i = 0; i < 512; i++ )
    {
        intpte_t e = rd(&t[i]);

        if ( !(e & _PAGE_PRESENT) || (level < 4 && (e & _PAGE_PSE)) )
            continue;
        n += walk_level(pte_mfn(e), level - 1, seen);
    }
    return n;
}

static uint64_t walk_all_tables(void)
{
    uint8_t *seen = calloc(host.max_page, 1);
    uint64_t n;

    ASSERT(seen);
    n = walk_level(host.idle_pg_table, 4, seen);
    free(seen);
    ASSERT_EQ(n, hv_xenmap_nr_tables());
    return n;
}

/* Make a 2 MiB superpage at va for mfn (both aligned) from 512 4K maps. */
static void make_pse_2m(uint64_t va, mfn_t mfn, uint64_t flags)
{
    ASSERT_EQ(map_pages_to_xen(va, mfn, FR_2M, flags), 0);
    ASSERT_HEX(l2e_of(va), pte(mfn, flags | _PAGE_PSE));
}

static void make_pse_1g(uint64_t va, mfn_t mfn, uint64_t flags)
{
    ASSERT_EQ(map_pages_to_xen(va, mfn, FR_1G, flags), 0);
    ASSERT_HEX(l3e_of(va), pte(mfn, flags | _PAGE_PSE));
}

/* ------------------------------------------------------------------------
 * xenmap_init
 * ------------------------------------------------------------------------ */

/*
 * 64 MiB: an M2P of 32 frames.  Tables: the L4, 12 L3s (slots 256 and
 * 261..271), an L2 and an L1 for each M2P view, one L2 for the direct map
 * (32 superpages of 2 MiB) = 18.
 */
TEST(init_idle_table_holds_m2p_views_and_direct_map)
{
    uint64_t run;
    intpte_t *l4t;

    hvtest_host(HVTEST_MEM_MB);
    ASSERT(host.idle_pg_table != 0);
    ASSERT_EQ(host.m2p_nr_frames, 32);
    ASSERT_EQ(walk_all_tables(), 18);

    l4t = table(host.idle_pg_table);
    for ( unsigned int s = 0; s < 512; s++ )
    {
        intpte_t e = rd(&l4t[s]);

        if ( s == 256 )
            ASSERT_HEX(flags_of(e), __PAGE_HYPERVISOR_RO | _PAGE_USER);
        else if ( s >= 261 && s <= 271 )
            ASSERT_HEX(flags_of(e), __PAGE_HYPERVISOR);
        else if ( e )
            FAIL("L4 slot %u: %#" PRIx64 ", expected empty", s, e);
    }

    /* Both M2P views cover the whole allocated run, 4 KiB pages here. */
    for ( run = 1; run < host.m2p_nr_frames; run <<= 1 )
        ;
    for ( uint64_t i = 0; i < run; i++ )
    {
        uint64_t ro = RO_MPT_VIRT_START + i * PAGE_SIZE;
        uint64_t rw = HV_RDWR_MPT_VIRT_START + i * PAGE_SIZE;

        ASSERT_HEX(xen_map_to_mfn(ro), host.m2p_first_mfn + i);
        ASSERT_HEX(l1e_of(ro), pte(host.m2p_first_mfn + i, HV_RO_MPT_FLAGS));
        ASSERT_HEX(xen_map_to_mfn(rw), host.m2p_first_mfn + i);
        ASSERT_HEX(l1e_of(rw), pte(host.m2p_first_mfn + i, PH));
    }
    ASSERT_HEX(xen_map_to_mfn(RO_MPT_VIRT_START + run * PAGE_SIZE),
               INVALID_MFN);
    /* A guest walking to its M2P needs U at every level and never RW. */
    ASSERT_HEX(flags_of(l3e_of(RO_MPT_VIRT_START)),
               __PAGE_HYPERVISOR_RO | _PAGE_USER);
    ASSERT_HEX(flags_of(l2e_of(RO_MPT_VIRT_START)),
               __PAGE_HYPERVISOR_RO | _PAGE_USER);
    /* What a guest reads there is the M2P itself. */
    host.m2p[77] = 0x1234;
    ASSERT_HEX(((uint64_t *)map_domain_page(
                   xen_map_to_mfn(RO_MPT_VIRT_START)))[77], 0x1234);
    host.m2p[77] = INVALID_M2P_ENTRY;

    /* The direct map: every machine frame, as 2 MiB pages. */
    ASSERT_HEX(l2e_of(HV_DIRECTMAP_VIRT_START), pte(0, PH | _PAGE_PSE));
    ASSERT_HEX(l2e_of(HV_DIRECTMAP_VIRT_START + 31 * SZ_2M),
               pte(31 * FR_2M, PH | _PAGE_PSE));
    ASSERT_EQ(l2e_of(HV_DIRECTMAP_VIRT_START + 32 * SZ_2M), 0);
    for ( mfn_t m = 0; m < host.max_page; m += 997 )
        ASSERT_HEX(xen_map_to_mfn(HV_DIRECTMAP_VIRT_START + m * PAGE_SIZE),
                   m);
    ASSERT_HEX(xen_map_to_mfn(HV_DIRECTMAP_VIRT_START +
                              (host.max_page - 1) * PAGE_SIZE),
               host.max_page - 1);
    ASSERT_HEX(xen_map_to_mfn(HV_DIRECTMAP_VIRT_START +
                              host.max_page * PAGE_SIZE), INVALID_MFN);
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * Test 26: coalescing 512 single pages, then splitting for one page
 * ------------------------------------------------------------------------ */

TEST(test26_512_single_page_maps_coalesce_into_one_pse_l2e)
{
    uint64_t va = TVA(0) + 3 * SZ_2M, free0;
    mfn_t mfn = FAKE_MFN + 3 * FR_2M, l1mfn;

    hvtest_host(HVTEST_MEM_MB);
    free0 = hv_free_pages();
    for ( unsigned int i = 0; i < 511; i++ )
        ASSERT_EQ(map_pages_to_xen(va + i * PAGE_SIZE, mfn + i, 1, PH), 0);
    /* One short: an L2 and an L1 were allocated, nothing coalesced. */
    ASSERT_EQ(hv_free_pages(), free0 - 2);
    ASSERT_HEX(flags_of(l2e_of(va)), __PAGE_HYPERVISOR);
    l1mfn = pte_mfn(l2e_of(va));
    for ( unsigned int i = 0; i < 511; i++ )
        ASSERT_HEX(l1e_of(va + i * PAGE_SIZE), pte(mfn + i, PH));
    ASSERT_EQ(l1e_of(va + 511 * PAGE_SIZE), 0);

    ASSERT_EQ(map_pages_to_xen(va + 511 * PAGE_SIZE, mfn + 511, 1, PH), 0);
    ASSERT_HEX(l2e_of(va), pte(mfn, PH | _PAGE_PSE));
    ASSERT_EQ(hv_free_pages(), free0 - 1);
    ASSERT(frame_is_free(l1mfn));
    ASSERT(page_get_owner(mfn_to_page(l1mfn)) == NULL);
    /* The L2 holds that one entry and nothing else. */
    for ( unsigned int i = 0; i < 512; i++ )
        if ( i != 3 )
            ASSERT_EQ(l2e_of(TVA(0) + i * SZ_2M), 0);
    for ( unsigned int i = 0; i < 512; i++ )
        ASSERT_HEX(xen_map_to_mfn(va + i * PAGE_SIZE), mfn + i);
    walk_all_tables();
    hvtest_done();
}

TEST(test26_remap_one_page_splits_into_511_equal_and_1_different)
{
    uint64_t va = TVA(0), free0;
    mfn_t mfn = FAKE_MFN;
    unsigned int equal = 0, k = 100;

    hvtest_host(HVTEST_MEM_MB);
    free0 = hv_free_pages();
    for ( unsigned int i = 0; i < 512; i++ )
        ASSERT_EQ(map_pages_to_xen(va + i * PAGE_SIZE, mfn + i, 1, PH), 0);
    ASSERT_HEX(l2e_of(va), pte(mfn, PH | _PAGE_PSE));

    ASSERT_EQ(map_pages_to_xen(va + k * PAGE_SIZE, mfn + k, 1, PH_RO), 0);
    ASSERT_HEX(flags_of(l2e_of(va)), __PAGE_HYPERVISOR);
    ASSERT_EQ(hv_free_pages(), free0 - 2);
    for ( unsigned int i = 0; i < 512; i++ )
    {
        intpte_t e = l1e_of(va + i * PAGE_SIZE);

        if ( i == k )
            ASSERT_HEX(e, pte(mfn + k, PH_RO));
        else
        {
            ASSERT_HEX(e, pte(mfn + i, PH));
            equal++;
        }
        ASSERT_HEX(xen_map_to_mfn(va + i * PAGE_SIZE), mfn + i);
    }
    ASSERT_EQ(equal, 511);

    /* Mapping it back as PAGE_HYPERVISOR coalesces again. */
    ASSERT_EQ(map_pages_to_xen(va + k * PAGE_SIZE, mfn + k, 1, PH), 0);
    ASSERT_HEX(l2e_of(va), pte(mfn, PH | _PAGE_PSE));
    ASSERT_EQ(hv_free_pages(), free0 - 1);
    ASSERT_EQ(destroy_xen_mappings(va, va + SZ_2M), 0);
    ASSERT_EQ(hv_free_pages(), free0);
    walk_all_tables();
    hvtest_done();
}

TEST(map_inside_superpage_that_already_maps_it_is_skipped)
{
    uint64_t va = TVA(0) + SZ_2M, free0;
    mfn_t mfn = FAKE_MFN + FR_2M;

    hvtest_host(HVTEST_MEM_MB);
    make_pse_2m(va, mfn, PH);
    free0 = hv_free_pages();
    /* Same frame and flags, or flags differing only in A and D: skip. */
    ASSERT_EQ(map_pages_to_xen(va + 7 * PAGE_SIZE, mfn + 7, 1, PH), 0);
    ASSERT_EQ(map_pages_to_xen(va + 9 * PAGE_SIZE, mfn + 9, 3,
                               PH & ~(_PAGE_ACCESSED | _PAGE_DIRTY)), 0);
    ASSERT_HEX(l2e_of(va), pte(mfn, PH | _PAGE_PSE));
    ASSERT_EQ(hv_free_pages(), free0);

    /* Another frame with the same flags: split, and no coalescing. */
    ASSERT_EQ(map_pages_to_xen(va + 7 * PAGE_SIZE, 0x12345, 1, PH), 0);
    ASSERT_EQ(hv_free_pages(), free0 - 1);
    ASSERT_HEX(l1e_of(va + 7 * PAGE_SIZE), pte(0x12345, PH));
    ASSERT_HEX(l1e_of(va + 8 * PAGE_SIZE), pte(mfn + 8, PH));
    ASSERT_HEX(xen_map_to_mfn(va + 7 * PAGE_SIZE), 0x12345);

    /* Same inside a 1 GiB page. */
    make_pse_1g(TVA(1), FAKE_MFN, PH);
    free0 = hv_free_pages();
    ASSERT_EQ(map_pages_to_xen(TVA(1) + 5 * SZ_2M + PAGE_SIZE,
                               FAKE_MFN + 5 * FR_2M + 1, 1, PH), 0);
    ASSERT_HEX(l3e_of(TVA(1)), pte(FAKE_MFN, PH | _PAGE_PSE));
    ASSERT_EQ(hv_free_pages(), free0);
    ASSERT_EQ(destroy_xen_mappings(TVA(0), TVA(2)), 0);
    walk_all_tables();
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * Direct superpages and alignment
 * ------------------------------------------------------------------------ */

TEST(aligned_2m_run_writes_pse_entry_and_frees_old_l1)
{
    uint64_t va = TVA(0) + 4 * SZ_2M, free0;
    mfn_t l1mfn;

    hvtest_host(HVTEST_MEM_MB);
    free0 = hv_free_pages();
    ASSERT_EQ(map_pages_to_xen(va + 5 * PAGE_SIZE, 0x999, 3, PH_RO), 0);
    ASSERT_EQ(hv_free_pages(), free0 - 2);
    l1mfn = pte_mfn(l2e_of(va));

    ASSERT_EQ(map_pages_to_xen(va, FAKE_MFN, FR_2M, PH_RO), 0);
    ASSERT_HEX(l2e_of(va), pte(FAKE_MFN, PH_RO | _PAGE_PSE));
    ASSERT(frame_is_free(l1mfn));
    ASSERT_EQ(hv_free_pages(), free0 - 1);
    ASSERT_HEX(xen_map_to_mfn(va + 6 * PAGE_SIZE), FAKE_MFN + 6);
    ASSERT_EQ(destroy_xen_mappings(va, va + SZ_2M), 0);
    ASSERT_EQ(hv_free_pages(), free0);
    hvtest_done();
}

TEST(misaligned_mfn_or_map_small_pages_never_make_superpages)
{
    uint64_t va = TVA(0), free0;

    hvtest_host(HVTEST_MEM_MB);
    free0 = hv_free_pages();
    /* VA aligned, MFN not: 512 4 KiB entries that cannot coalesce. */
    ASSERT_EQ(map_pages_to_xen(va, FAKE_MFN + 1, FR_2M, PH), 0);
    ASSERT_HEX(flags_of(l2e_of(va)), __PAGE_HYPERVISOR);
    for ( unsigned int i = 0; i < 512; i++ )
        ASSERT_HEX(l1e_of(va + i * PAGE_SIZE), pte(FAKE_MFN + 1 + i, PH));
    ASSERT_EQ(hv_free_pages(), free0 - 2);

    /* MAP_SMALL_PAGES: 4 KiB entries, kept as they are. */
    ASSERT_EQ(map_pages_to_xen(va + SZ_2M, FAKE_MFN, 2 * FR_2M,
                               PH | MAP_SMALL_PAGES), 0);
    ASSERT_HEX(flags_of(l2e_of(va + SZ_2M)), __PAGE_HYPERVISOR);
    ASSERT_HEX(flags_of(l2e_of(va + 2 * SZ_2M)), __PAGE_HYPERVISOR);
    ASSERT_HEX(l1e_of(va + SZ_2M + 3 * PAGE_SIZE),
               pte(FAKE_MFN + 3, PH | MAP_SMALL_PAGES));
    ASSERT_EQ(hv_free_pages(), free0 - 4);
    ASSERT_EQ(destroy_xen_mappings(va, va + 3 * SZ_2M), 0);
    ASSERT_EQ(hv_free_pages(), free0);
    walk_all_tables();
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * 1 GiB pages
 * ------------------------------------------------------------------------ */

TEST(coalesce_512_superpages_into_1g_and_free_the_l2)
{
    uint64_t va = TVA(2), free0;
    mfn_t l2mfn;

    hvtest_host(HVTEST_MEM_MB);
    free0 = hv_free_pages();
    /* 511 runs of 2 MiB, the last 2 MiB one 4 KiB page at a time. */
    for ( unsigned int r = 0; r < 511; r++ )
        ASSERT_EQ(map_pages_to_xen(va + r * SZ_2M, FAKE_MFN + r * FR_2M,
                                   FR_2M, PH), 0);
    ASSERT_HEX(flags_of(l3e_of(va)), __PAGE_HYPERVISOR);
    l2mfn = pte_mfn(l3e_of(va));
    ASSERT_EQ(hv_free_pages(), free0 - 1);
    for ( unsigned int i = 0; i < 511; i++ )
        ASSERT_EQ(map_pages_to_xen(va + 511 * SZ_2M + i * PAGE_SIZE,
                                   FAKE_MFN + 511 * FR_2M + i, 1, PH), 0);
    ASSERT_EQ(hv_free_pages(), free0 - 2);
    ASSERT_EQ(map_pages_to_xen(va + 511 * SZ_2M + 511 * PAGE_SIZE,
                               FAKE_MFN + 511 * FR_2M + 511, 1, PH), 0);
    /* L1 -> 2 MiB entry, then L2 -> 1 GiB entry: both tables freed. */
    ASSERT_HEX(l3e_of(va), pte(FAKE_MFN, PH | _PAGE_PSE));
    ASSERT(frame_is_free(l2mfn));
    ASSERT_EQ(hv_free_pages(), free0);
    ASSERT_HEX(xen_map_to_mfn(va + SZ_1G - PAGE_SIZE), FAKE_MFN + FR_1G - 1);
    ASSERT_HEX(xen_map_to_mfn(va + 77 * SZ_2M + 3 * PAGE_SIZE),
               FAKE_MFN + 77 * FR_2M + 3);

    /* Not PAGE_HYPERVISOR: 512 runs stay 512 entries of 2 MiB. */
    for ( unsigned int r = 0; r < 512; r++ )
        ASSERT_EQ(map_pages_to_xen(TVA(3) + r * SZ_2M, FAKE_MFN + r * FR_2M,
                                   FR_2M, PH_RO), 0);
    ASSERT_HEX(flags_of(l3e_of(TVA(3))), __PAGE_HYPERVISOR);
    ASSERT_HEX(l2e_of(TVA(3) + 9 * SZ_2M),
               pte(FAKE_MFN + 9 * FR_2M, PH_RO | _PAGE_PSE));
    ASSERT_EQ(destroy_xen_mappings(TVA(2), TVA(4)), 0);
    ASSERT_EQ(hv_free_pages(), free0);
    walk_all_tables();
    hvtest_done();
}

TEST(aligned_1g_map_replaces_l2_tree_and_frees_every_table)
{
    uint64_t va = TVA(1), free0;

    hvtest_host(HVTEST_MEM_MB);
    free0 = hv_free_pages();
    ASSERT_EQ(map_pages_to_xen(va + PAGE_SIZE, 0x55, 1, PH), 0);
    ASSERT_EQ(map_pages_to_xen(va + 9 * SZ_2M, 0x66, 4, PH_RO), 0);
    ASSERT_EQ(map_pages_to_xen(va + 300 * SZ_2M + SZ_2M - PAGE_SIZE, 0x77, 1,
                               PH), 0);
    ASSERT_EQ(map_pages_to_xen(va + 12 * SZ_2M, FAKE_MFN, FR_2M, PH), 0);
    ASSERT_EQ(hv_free_pages(), free0 - 4);      /* L2 + 3 L1 */

    /* Any flags: the 1 GiB path needs only alignment and length. */
    make_pse_1g(va, FAKE_MFN, PH_RO);
    ASSERT_EQ(hv_free_pages(), free0);
    ASSERT_HEX(xen_map_to_mfn(va + PAGE_SIZE), FAKE_MFN + 1);
    walk_all_tables();

    /* 1 GiB + 2 MiB + 1 page: one of each size. */
    ASSERT_EQ(map_pages_to_xen(TVA(2), 2 * FAKE_MFN, FR_1G + FR_2M + 1, PH),
              0);
    ASSERT_HEX(l3e_of(TVA(2)), pte(2 * FAKE_MFN, PH | _PAGE_PSE));
    ASSERT_HEX(l2e_of(TVA(3)), pte(2 * FAKE_MFN + FR_1G, PH | _PAGE_PSE));
    ASSERT_HEX(l1e_of(TVA(3) + SZ_2M), pte(2 * FAKE_MFN + FR_1G + FR_2M, PH));
    ASSERT_EQ(destroy_xen_mappings(TVA(1), TVA(4)), 0);
    ASSERT_EQ(hv_free_pages(), free0);
    hvtest_done();
}

TEST(map_4k_inside_1g_page_shatters_to_l2_then_l1)
{
    uint64_t va = TVA(1), free0, target = va + 5 * SZ_2M + 7 * PAGE_SIZE;

    hvtest_host(HVTEST_MEM_MB);
    make_pse_1g(va, FAKE_MFN, PH);
    free0 = hv_free_pages();
    ASSERT_EQ(map_pages_to_xen(target, FAKE_MFN + 5 * FR_2M + 7, 1, PH_RO),
              0);
    ASSERT_EQ(hv_free_pages(), free0 - 2);
    ASSERT_HEX(flags_of(l3e_of(va)), __PAGE_HYPERVISOR);
    for ( unsigned int j = 0; j < 512; j++ )
        if ( j != 5 )
            ASSERT_HEX(l2e_of(va + j * SZ_2M),
                       pte(FAKE_MFN + j * FR_2M, PH | _PAGE_PSE));
    ASSERT_HEX(flags_of(l2e_of(va + 5 * SZ_2M)), __PAGE_HYPERVISOR);
    for ( unsigned int i = 0; i < 512; i++ )
        ASSERT_HEX(l1e_of(va + 5 * SZ_2M + i * PAGE_SIZE),
                   pte(FAKE_MFN + 5 * FR_2M + i, i == 7 ? PH_RO : PH));
    ASSERT_HEX(xen_map_to_mfn(target), FAKE_MFN + 5 * FR_2M + 7);
    ASSERT_HEX(xen_map_to_mfn(va + 400 * SZ_2M + 1 * PAGE_SIZE),
               FAKE_MFN + 400 * FR_2M + 1);

    /* Restoring the page coalesces all the way back to 1 GiB. */
    ASSERT_EQ(map_pages_to_xen(target, FAKE_MFN + 5 * FR_2M + 7, 1, PH), 0);
    ASSERT_HEX(l3e_of(va), pte(FAKE_MFN, PH | _PAGE_PSE));
    ASSERT_EQ(hv_free_pages(), free0);
    walk_all_tables();
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * destroy_xen_mappings / modify_xen_mappings
 * ------------------------------------------------------------------------ */

TEST(destroy_one_page_of_2m_page_shatters_then_frees_empty_tables)
{
    uint64_t va = TVA(0) + 8 * SZ_2M, free0;
    mfn_t mfn = FAKE_MFN + 8 * FR_2M;

    hvtest_host(HVTEST_MEM_MB);
    free0 = hv_free_pages();
    make_pse_2m(va, mfn, PH);
    ASSERT_EQ(destroy_xen_mappings(va + 3 * PAGE_SIZE, va + 4 * PAGE_SIZE), 0);
    ASSERT_EQ(hv_free_pages(), free0 - 2);
    for ( unsigned int i = 0; i < 512; i++ )
        ASSERT_HEX(l1e_of(va + i * PAGE_SIZE),
                   i == 3 ? 0 : pte(mfn + i, PH));
    ASSERT_HEX(xen_map_to_mfn(va + 3 * PAGE_SIZE), INVALID_MFN);
    ASSERT_HEX(xen_map_to_mfn(va + 4 * PAGE_SIZE), mfn + 4);

    /* Emptying the L1 frees it, and then the L2 it was the last of. */
    ASSERT_EQ(destroy_xen_mappings(va, va + SZ_2M), 0);
    ASSERT_EQ(l3e_of(va), 0);
    ASSERT_EQ(hv_free_pages(), free0);
    walk_all_tables();
    hvtest_done();
}

TEST(destroy_part_of_1g_page_shatters_partly_covered_superpages)
{
    uint64_t va = TVA(1), free0;

    hvtest_host(HVTEST_MEM_MB);
    make_pse_1g(va, FAKE_MFN, PH);
    free0 = hv_free_pages();
    /* Pages 256..1279: half of 2 MiB #0, all of #1, half of #2. */
    ASSERT_EQ(destroy_xen_mappings(va + SZ_2M / 2, va + 2 * SZ_2M +
                                   SZ_2M / 2), 0);
    ASSERT_EQ(hv_free_pages(), free0 - 3);
    ASSERT_EQ(l2e_of(va + SZ_2M), 0);
    ASSERT_HEX(l2e_of(va + 3 * SZ_2M), pte(FAKE_MFN + 3 * FR_2M,
                                           PH | _PAGE_PSE));
    for ( uint64_t p = 0; p < 3 * FR_2M; p++ )
    {
        bool gone = p >= 256 && p < 1280;

        ASSERT_HEX(xen_map_to_mfn(va + p * PAGE_SIZE),
                   gone ? INVALID_MFN : FAKE_MFN + p);
    }
    ASSERT_HEX(l1e_of(va + 255 * PAGE_SIZE), pte(FAKE_MFN + 255, PH));
    ASSERT_EQ(l1e_of(va + 256 * PAGE_SIZE), 0);
    walk_all_tables();

    ASSERT_EQ(destroy_xen_mappings(va, va + SZ_1G), 0);
    ASSERT_EQ(l3e_of(va), 0);
    ASSERT_EQ(hv_free_pages(), free0);
    hvtest_done();
}

TEST(modify_changes_only_nx_d_a_rw_p_and_shatters_partial_superpages)
{
    uint64_t va = TVA(0), free0;

    hvtest_host(HVTEST_MEM_MB);
    free0 = hv_free_pages();
    make_pse_2m(va, FAKE_MFN, PH | _PAGE_GLOBAL);
    /* One page read-only: the 2 MiB page becomes an L1. */
    ASSERT_EQ(modify_xen_mappings(va + 9 * PAGE_SIZE, va + 10 * PAGE_SIZE,
                                  PH_RO), 0);
    ASSERT_EQ(hv_free_pages(), free0 - 2);
    ASSERT_HEX(l1e_of(va + 9 * PAGE_SIZE),
               pte(FAKE_MFN + 9, PH_RO | _PAGE_GLOBAL));
    ASSERT_HEX(l1e_of(va + 10 * PAGE_SIZE),
               pte(FAKE_MFN + 10, PH | _PAGE_GLOBAL));
    /* The whole 2 MiB back to RW, with U asked for (and ignored). */
    ASSERT_EQ(modify_xen_mappings(va, va + SZ_2M, PH | _PAGE_USER), 0);
    ASSERT_HEX(l1e_of(va + 9 * PAGE_SIZE),
               pte(FAKE_MFN + 9, PH | _PAGE_GLOBAL));
    ASSERT_HEX(flags_of(l2e_of(va)), __PAGE_HYPERVISOR);  /* no coalesce */

    /* A whole 1 GiB page keeps its size; only the five flags change. */
    make_pse_1g(TVA(1), FAKE_MFN, PH | _PAGE_GLOBAL);
    ASSERT_EQ(modify_xen_mappings(TVA(1), TVA(2), PH_RO), 0);
    ASSERT_HEX(l3e_of(TVA(1)), pte(FAKE_MFN, PH_RO | _PAGE_GLOBAL |
                                   _PAGE_PSE));
    /* A 2 MiB slice of it: shattered to L2, that entry modified whole. */
    ASSERT_EQ(modify_xen_mappings(TVA(1) + SZ_2M, TVA(1) + 2 * SZ_2M, PH),
              0);
    ASSERT_HEX(l2e_of(TVA(1) + SZ_2M), pte(FAKE_MFN + FR_2M,
                                           PH | _PAGE_GLOBAL | _PAGE_PSE));
    ASSERT_HEX(l2e_of(TVA(1)), pte(FAKE_MFN, PH_RO | _PAGE_GLOBAL |
                                   _PAGE_PSE));
    ASSERT_EQ(hv_free_pages(), free0 - 3);
    ASSERT_EQ(destroy_xen_mappings(TVA(0), TVA(2)), 0);
    ASSERT_EQ(hv_free_pages(), free0);
    walk_all_tables();
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * xen_map_to_mfn and running out of frames
 * ------------------------------------------------------------------------ */

TEST(xen_map_to_mfn_answers_each_page_size_and_allocates_nothing)
{
    uint64_t tables;

    hvtest_host(HVTEST_MEM_MB);
    make_pse_1g(TVA(1), FAKE_MFN, PH);
    make_pse_2m(TVA(2), FAKE_MFN + 0x1000, PH);
    ASSERT_EQ(map_pages_to_xen(TVA(3) + 5 * PAGE_SIZE, 0x4242, 1, PH), 0);
    tables = hv_xenmap_nr_tables();

    ASSERT_HEX(xen_map_to_mfn(TVA(1) + 0x12345678), FAKE_MFN + 0x12345);
    ASSERT_HEX(xen_map_to_mfn(TVA(2) + 0x1ff000), FAKE_MFN + 0x1000 + 0x1ff);
    ASSERT_HEX(xen_map_to_mfn(TVA(3) + 5 * PAGE_SIZE + 0x10), 0x4242);
    ASSERT_HEX(xen_map_to_mfn(TVA(3) + 6 * PAGE_SIZE), INVALID_MFN);
    ASSERT_HEX(xen_map_to_mfn(TVA(2) + SZ_2M), INVALID_MFN);
    ASSERT_HEX(xen_map_to_mfn(TVA(4)), INVALID_MFN);
    ASSERT_HEX(xen_map_to_mfn(0x1000), INVALID_MFN);
    /* Slot 257 has no L3: the lookup must not make one. */
    ASSERT_HEX(xen_map_to_mfn(HV_L4_SLOT_VIRT(257)), INVALID_MFN);
    ASSERT_EQ(l4e_of(HV_L4_SLOT_VIRT(257)), 0);
    ASSERT_EQ(hv_xenmap_nr_tables(), tables);
    ASSERT_EQ(destroy_xen_mappings(TVA(1), TVA(4)), 0);
    hvtest_done();
}

TEST(map_without_free_frames_fails_enomem_and_keeps_what_it_built)
{
    struct page_info **held;
    uint64_t n = 0, free0, tables0;

    hvtest_host(HVTEST_MEM_MB);
    free0 = hv_free_pages();
    tables0 = hv_xenmap_nr_tables();
    held = calloc(free0, sizeof(*held));
    ASSERT(held);
    /* Leave exactly one frame: the L2 gets it, the L1 cannot. */
    while ( n + 1 < free0 && (held[n] = alloc_heap_pages(0, MEMF_no_scrub)) )
        n++;
    ASSERT_EQ(hv_free_pages(), 1);
    ASSERT_EQ(map_pages_to_xen(TVA(0) + PAGE_SIZE, 0x77, 1, PH), -ENOMEM);
    ASSERT_EQ(hv_xenmap_nr_tables(), tables0 + 1);
    ASSERT_HEX(flags_of(l3e_of(TVA(0))), __PAGE_HYPERVISOR);
    ASSERT_EQ(l2e_of(TVA(0)), 0);
    /* Shattering needs a frame too. */
    ASSERT_EQ(hv_free_pages(), 0);
    ASSERT_EQ(map_pages_to_xen(TVA(1), FAKE_MFN, FR_1G, PH), 0);
    ASSERT_EQ(map_pages_to_xen(TVA(1), 0x77, 1, PH), -ENOMEM);
    ASSERT_HEX(l3e_of(TVA(1)), pte(FAKE_MFN, PH | _PAGE_PSE));
    ASSERT_EQ(destroy_xen_mappings(TVA(1), TVA(1) + PAGE_SIZE), -ENOMEM);

    for ( uint64_t i = 0; i < n; i++ )
        if ( held[i] )
            free_heap_pages(held[i], 0, false);
    free(held);
    ASSERT_EQ(map_pages_to_xen(TVA(0) + PAGE_SIZE, 0x77, 1, PH), 0);
    ASSERT_HEX(xen_map_to_mfn(TVA(0) + PAGE_SIZE), 0x77);
    ASSERT_EQ(destroy_xen_mappings(TVA(0), TVA(2)), 0);
    ASSERT_EQ(hv_free_pages(), free0);
    ASSERT_EQ(hv_xenmap_nr_tables(), tables0);
    hvtest_done();
}

TEST(xenmap_dispose_returns_every_table_frame)
{
    uint64_t free0, tables;

    hvtest_host(HVTEST_MEM_MB);
    ASSERT_EQ(map_pages_to_xen(TVA(0), FAKE_MFN + 1, 3 * FR_2M, PH), 0);
    make_pse_1g(TVA(1), FAKE_MFN, PH);
    free0 = hv_free_pages();
    tables = hv_xenmap_nr_tables();
    ASSERT_EQ(walk_all_tables(), tables);
    xenmap_dispose();
    ASSERT_EQ(host.idle_pg_table, 0);
    ASSERT_EQ(hv_xenmap_nr_tables(), 0);
    ASSERT_EQ(hv_free_pages(), free0 + tables);
    set_current(NULL);
    host_dispose();
}

/* ------------------------------------------------------------------------
 * XSA-345: the L3 lock
 * ------------------------------------------------------------------------ */

struct lock_probe
{
    uint64_t va;
    _Atomic bool done;
};

static void *map_one_page(void *arg)
{
    struct lock_probe *p = arg;

    if ( map_pages_to_xen(p->va, 0x4321, 1, PH) )
        FAIL("map_pages_to_xen in probe thread");
    atomic_store(&p->done, true);
    return NULL;
}

TEST(xsa345_update_waits_for_the_l3_lock_of_its_512g_only)
{
    struct page_info *l3pg;
    struct lock_probe same = { .va = TVA(0) }, other;
    pthread_t t1, t2;

    hvtest_host(HVTEST_MEM_MB);
    other.va = HV_DIRECTMAP_VIRT_START + 100 * SZ_1G;
    atomic_store(&other.done, false);
    atomic_store(&same.done, false);
    l3pg = mfn_to_page(pte_mfn(l4e_of(TVA(0))));
    ASSERT_EQ(atomic_load(&l3pg->type_info), 0);

    /* Hold slot 261's L3 lock as another CPU would. */
    atomic_fetch_or(&l3pg->type_info, PGT_locked);
    ASSERT_EQ(pthread_create(&t1, NULL, map_one_page, &same), 0);
    ASSERT_EQ(pthread_create(&t2, NULL, map_one_page, &other), 0);
    ASSERT_EQ(pthread_join(t2, NULL), 0);
    ASSERT(atomic_load(&other.done));       /* slot 262: another lock */
    usleep(100 * 1000);
    ASSERT(!atomic_load(&same.done));
    ASSERT_EQ(l3e_of(TVA(0)), 0);           /* nothing written meanwhile */
    atomic_fetch_and(&l3pg->type_info, ~PGT_locked);
    ASSERT_EQ(pthread_join(t1, NULL), 0);
    ASSERT(atomic_load(&same.done));
    ASSERT_HEX(xen_map_to_mfn(TVA(0)), 0x4321);
    /* Released after each iteration: the word is back to 0. */
    ASSERT_EQ(atomic_load(&l3pg->type_info), 0);
    ASSERT_EQ(destroy_xen_mappings(TVA(0), TVA(1)), 0);
    hvtest_done();
}

/*
 * The storm.  All threads work in one 1 GiB range (STORM) of slot 261, and
 * every mapping any of them makes there follows one rule: page p maps
 * STORM_MFN + p (read-write or read-only).  So at any time a present leaf
 * that breaks the rule, a table frame that is free or referenced twice, or
 * a freed table (BUG in free_xen_pagetable) means the tables were
 * corrupted.  Meanwhile one thread owns a second range (CHECK) in the same
 * L3 table: it alone maps there, so each lookup must return exactly what
 * it mapped last, even while the storm frees and reallocates frames.
 */
#define STORM       TVA(1)
#define STORM_MFN   FAKE_MFN
#define HOT_RUNS    8                   /* 16 MiB where most work happens */
#define CHECK       TVA(2)
#define CHECK_PAGES 1024
#define STORM_SECS  3

struct storm
{
    _Atomic bool stop;
    struct timespec start;
    uint64_t expect[CHECK_PAGES];
    _Atomic uint64_t ops;
};

static struct storm storm;

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static bool storm_over(unsigned int i)
{
    struct timespec now;

    if ( atomic_load(&storm.stop) )
        return true;
    if ( i % 16 )
        return false;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ( now.tv_sec - storm.start.tv_sec >= STORM_SECS )
        atomic_store(&storm.stop, true);
    return atomic_load(&storm.stop);
}

/* A page of the storm: mostly in the hot 16 MiB, sometimes anywhere. */
static uint64_t storm_page(uint64_t *s)
{
    uint64_t r = rnd(s);

    return (r & 7) ? r % (HOT_RUNS * FR_2M) : r % FR_1G;
}

static void storm_map(uint64_t p, uint64_t nr, uint64_t flags)
{
    if ( map_pages_to_xen(STORM + p * PAGE_SIZE, STORM_MFN + p, nr, flags) )
        FAIL("storm: map_pages_to_xen(%#" PRIx64 ", %" PRIu64 ") failed",
             p, nr);
}

/* Map 4 KiB pages, a quarter read-only (shattering what they hit). */
static void *storm_mapper(void *arg)
{
    uint64_t s = (uintptr_t)arg;

    for ( unsigned int i = 0; i < 200000 && !storm_over(i); i++ )
    {
        storm_map(storm_page(&s), 1, (rnd(&s) & 3) ? PH : PH_RO);
        atomic_fetch_add(&storm.ops, 1);
    }
    return NULL;
}

/*
 * Coalesce: the whole 1 GiB at once (freeing the L2 and every L1), a hot
 * run page by page (L1 -> 2 MiB), the whole 1 GiB run by run (L2 -> 1 GiB
 * once all 512 are 2 MiB pages), or one hot run at once.
 */
static void *storm_coalescer(void *arg)
{
    uint64_t s = (uintptr_t)arg;

    for ( unsigned int i = 0; i < 20000 && !storm_over(i); i++ )
    {
        uint64_t r = rnd(&s) % HOT_RUNS, how = rnd(&s) % 16;

        if ( how < 3 )
            storm_map(0, FR_1G, PH);
        else if ( how < 6 )
            for ( uint64_t p = 0; p < FR_2M; p++ )
                storm_map(r * FR_2M + p, 1, PH);
        else if ( how == 6 )
            for ( r = 0; r < 512; r++ )
                storm_map(r * FR_2M, FR_2M, PH);
        else
            storm_map(r * FR_2M, FR_2M, PH);
        atomic_fetch_add(&storm.ops, 1);
    }
    return NULL;
}

/*
 * Unmap ranges of 1..1024 pages, often across 2 MiB boundaries, now and
 * then up to 128 MiB (through 1 GiB pages) or all of it.
 */
static void *storm_destroyer(void *arg)
{
    uint64_t s = (uintptr_t)arg;

    for ( unsigned int i = 0; i < 100000 && !storm_over(i); i++ )
    {
        uint64_t p = storm_page(&s), n = 1 + rnd(&s) % 1024, how = rnd(&s);

        if ( !(how % 64) )
            n = 1 + rnd(&s) % (64 * FR_2M);
        else if ( !(how % 251) )
        {
            p = 0;
            n = FR_1G;
        }

        n = min(n, FR_1G - p);
        if ( destroy_xen_mappings(STORM + p * PAGE_SIZE,
                                  STORM + (p + n) * PAGE_SIZE) )
            FAIL("storm: destroy_xen_mappings failed");
        atomic_fetch_add(&storm.ops, 1);
    }
    return NULL;
}

/* Look up storm pages: unmapped, or mapped by the rule. */
static void *storm_looker(void *arg)
{
    uint64_t s = (uintptr_t)arg;

    for ( unsigned int i = 0; i < 400000 && !storm_over(i); i++ )
    {
        uint64_t p = storm_page(&s);
        mfn_t m = xen_map_to_mfn(STORM + p * PAGE_SIZE);

        if ( m != INVALID_MFN && m != STORM_MFN + p )
            FAIL("storm: page %#" PRIx64 " maps %#" PRIx64, p, m);
    }
    return NULL;
}

/* The one writer of CHECK: each answer must be its own last mapping. */
static void *storm_checker(void *arg)
{
    uint64_t s = (uintptr_t)arg;

    for ( unsigned int i = 0; i < 200000 && !storm_over(i); i++ )
    {
        uint64_t p = rnd(&s) % CHECK_PAGES, how = rnd(&s) % 8;
        uint64_t va = CHECK + p * PAGE_SIZE;
        mfn_t m = 0x100000 + rnd(&s) % 0x100000;

        if ( how == 0 )
        {
            ASSERT_EQ(destroy_xen_mappings(va, va + PAGE_SIZE), 0);
            storm.expect[p] = INVALID_MFN;
        }
        else if ( how == 1 )
        {
            /* A whole aligned run: a 2 MiB page. */
            p &= ~(FR_2M - 1);
            m &= ~(FR_2M - 1);
            ASSERT_EQ(map_pages_to_xen(CHECK + p * PAGE_SIZE, m, FR_2M, PH),
                      0);
            for ( uint64_t j = 0; j < FR_2M; j++ )
                storm.expect[p + j] = m + j;
        }
        else
        {
            ASSERT_EQ(map_pages_to_xen(va, m, 1, (how & 1) ? PH : PH_RO), 0);
            storm.expect[p] = m;
        }
        p = rnd(&s) % CHECK_PAGES;
        if ( xen_map_to_mfn(CHECK + p * PAGE_SIZE) != storm.expect[p] )
            FAIL("check page %#" PRIx64 ": %#" PRIx64 " != %#" PRIx64, p,
                 xen_map_to_mfn(CHECK + p * PAGE_SIZE), storm.expect[p]);
    }
    return NULL;
}

/* Every present leaf under the storm's L3 entry follows the rule. */
static void check_storm_leaves(void)
{
    intpte_t l3e = l3e_of(STORM), *l2t, *l1t;

    if ( !(l3e & _PAGE_PRESENT) )
        return;
    if ( l3e & _PAGE_PSE )
    {
        ASSERT_HEX(l3e, pte(STORM_MFN, PH | _PAGE_PSE));
        return;
    }
    l2t = table(pte_mfn(l3e));
    for ( unsigned int j = 0; j < 512; j++ )
    {
        intpte_t l2e = rd(&l2t[j]);

        if ( !(l2e & _PAGE_PRESENT) )
            continue;
        if ( l2e & _PAGE_PSE )
        {
            ASSERT_HEX(pte_mfn(l2e), STORM_MFN + j * FR_2M);
            continue;
        }
        l1t = table(pte_mfn(l2e));
        for ( unsigned int i = 0; i < 512; i++ )
        {
            intpte_t l1e = rd(&l1t[i]);

            if ( !l1e )
                continue;
            if ( flags_of(l1e) != PH && flags_of(l1e) != PH_RO )
                FAIL("storm leaf %u/%u: %#" PRIx64, j, i, l1e);
            ASSERT_HEX(pte_mfn(l1e), STORM_MFN + j * FR_2M + i);
        }
    }
}

TEST_TIMEOUT(xsa345_concurrent_map_coalesce_unmap, 60)
{
    void *(*const fns[])(void *) = {
        storm_mapper, storm_mapper, storm_mapper, storm_mapper,
        storm_coalescer, storm_coalescer, storm_destroyer, storm_destroyer,
        storm_looker, storm_checker,
    };
    pthread_t t[ARRAY_SIZE(fns)];
    uint64_t free0, tables0;
    struct page_info *l3pg;

    hvtest_host(HVTEST_MEM_MB);
    free0 = hv_free_pages();
    tables0 = hv_xenmap_nr_tables();
    for ( unsigned int p = 0; p < CHECK_PAGES; p++ )
        storm.expect[p] = INVALID_MFN;
    clock_gettime(CLOCK_MONOTONIC, &storm.start);
    /* Two cores make the windows rare: yield inside each of them. */
    atomic_store(&hv_xenmap_widen_races, true);
    for ( unsigned int i = 0; i < ARRAY_SIZE(fns); i++ )
        ASSERT_EQ(pthread_create(&t[i], NULL, fns[i],
                                 (void *)(uintptr_t)(0x9E3779B97F4A7C15ULL *
                                                     (i + 1))), 0);
    for ( unsigned int i = 0; i < ARRAY_SIZE(fns); i++ )
        ASSERT_EQ(pthread_join(t[i], NULL), 0);
    atomic_store(&hv_xenmap_widen_races, false);
    DIAG("%" PRIu64 " storm operations", atomic_load(&storm.ops));

    /* Quiescent: the structure is sound and the check range exact. */
    walk_all_tables();
    check_storm_leaves();
    for ( unsigned int p = 0; p < CHECK_PAGES; p++ )
        ASSERT_HEX(xen_map_to_mfn(CHECK + p * PAGE_SIZE), storm.expect[p]);
    l3pg = mfn_to_page(pte_mfn(l4e_of(STORM)));
    ASSERT_EQ(atomic_load(&l3pg->type_info), 0);

    /* Unmapped, every table frame is back in the heap. */
    ASSERT_EQ(destroy_xen_mappings(STORM, CHECK + SZ_1G), 0);
    ASSERT_EQ(l3e_of(STORM), 0);
    ASSERT_EQ(l3e_of(CHECK), 0);
    ASSERT_EQ(hv_xenmap_nr_tables(), tables0);
    ASSERT_EQ(hv_free_pages(), free0);
    walk_all_tables();
    hvtest_done();
}
