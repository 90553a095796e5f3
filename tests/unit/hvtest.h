/* SPDX-License-Identifier: MIT */
/*
 * Helpers for unit tests of the hypervisor core: a small host per test,
 * domains with frames at chosen PFNs, raw PTE writes, and hypercalls run
 * once (to observe a preempted state) or to completion.
 *
 * Every test process makes its own host (tests run in separate processes),
 * and the helpers fail the test on any unexpected error, so a test body
 * reads as the scenario it checks.
 */
#ifndef FERRY_TESTS_HVTEST_H
#define FERRY_TESTS_HVTEST_H

/* hv.h first: the harness's ASSERT (fail the test) replaces hv.h's. */
#include "hv.h"
#undef ASSERT
#include "harness.h"

#define HVTEST_MEM_MB 64

/* Make the host (memory_mb of machine memory) and act as domain 0. */
void hvtest_host(unsigned int memory_mb);
/* A PV domain with max_pages and nr_vcpus vCPUs; current becomes its vCPU 0. */
struct domain *hvtest_domain(unsigned int max_pages, unsigned int nr_vcpus);
/* One frame for d with M2P = pfn (the helper of populate_physmap). */
mfn_t hvtest_frame(struct domain *d, pfn_t pfn);
/* Act as vCPU n of d. */
void hvtest_as(struct domain *d, unsigned int n);

/* PTE helpers: a present entry for mfn with flags (P is added). */
intpte_t hvtest_pte(mfn_t mfn, uint64_t flags);
void hvtest_write_pte(mfn_t table, unsigned int idx, intpte_t val);
intpte_t hvtest_read_pte(mfn_t table, unsigned int idx);

uint64_t hvtest_count(mfn_t mfn);       /* general count, without flags */
uint64_t hvtest_caf(mfn_t mfn);         /* whole count_info */
uint64_t hvtest_taf(mfn_t mfn);         /* whole type_info */
uint64_t hvtest_tcount(mfn_t mfn);      /* type count */

/* Short names for the count_info and type_info bits tests check. */
#define ALLOC   PGC_allocated
#define VALID   PGT_validated
#define PINNED  PGT_pinned
#define PARTIAL PGT_partial
#define T_L1    PGT_l1_page_table
#define T_L2    PGT_l2_page_table
#define T_L3    PGT_l3_page_table
#define T_L4    PGT_l4_page_table
#define T_WR    PGT_writable_page

/* Both words of a frame at once, so a failure shows which one broke. */
#define ASSERT_FRAME(mfn, caf, taf)                                       \
    do {                                                                  \
        ASSERT_HEX(hvtest_caf(mfn), (caf));                               \
        ASSERT_HEX(hvtest_taf(mfn), (taf));                               \
    } while ( 0 )

/* One mmuext_op, called once (may return -ERESTART) or to completion. */
long hvtest_mmuext_once(unsigned int cmd, mfn_t mfn, unsigned int *done);
long hvtest_mmuext(unsigned int cmd, mfn_t mfn);
/* One MMU_NORMAL_PT_UPDATE of entry idx of table to val, to completion. */
long hvtest_pt_update(mfn_t table, unsigned int idx, intpte_t val);

/* Does the hypervisor's log hold the formatted line?  (DIAGs if not.) */
bool hvtest_log_has(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Fail the test unless the auditor finds the host consistent. */
#define HVTEST_AUDIT_CLEAN()                                              \
    do {                                                                  \
        char m_[512];                                                     \
        if ( audit_host(m_, sizeof(m_)) )                                 \
            FAIL("auditor: %s", m_);                                      \
    } while ( 0 )

/* Destroy d to completion, check every frame came back, dispose the host. */
void hvtest_destroy(struct domain *d);
void hvtest_done(void);

#endif /* FERRY_TESTS_HVTEST_H */
