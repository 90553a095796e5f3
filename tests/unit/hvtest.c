/* SPDX-License-Identifier: MIT */
/* Helpers for unit tests of the hypervisor core: see hvtest.h. */
#include <stdarg.h>

#include "hvtest.h"

void hvtest_host(unsigned int memory_mb)
{
    struct host_params p = {
        .memory_bytes = (uint64_t)memory_mb << 20,
        .nr_control_vcpus = 2,
    };
    int rc = host_init(&p);

    if ( rc )
        FAIL("host_init: %d", rc);
    set_current(host.dom0->vcpu[0]);
}

struct domain *hvtest_domain(unsigned int max_pages, unsigned int nr_vcpus)
{
    struct domain *d;
    int rc;

    set_current(host.dom0->vcpu[0]);
    rc = domain_create(DOMID_ANY, 0, nr_vcpus, &d);
    if ( rc )
        FAIL("domain_create: %d", rc);
    rc = domctl_max_mem(d, (uint64_t)max_pages << 2);
    if ( rc )
        FAIL("max_mem: %d", rc);
    hvtest_as(d, 0);
    return d;
}

mfn_t hvtest_frame(struct domain *d, pfn_t pfn)
{
    struct page_info *pg = alloc_domheap_pages(d, 0, 0);

    if ( !pg )
        FAIL("no frame for d%u pfn %#" PRIx64, d->domain_id, pfn);
    set_gpfn_from_mfn(page_to_mfn(pg), pfn);
    return page_to_mfn(pg);
}

void hvtest_as(struct domain *d, unsigned int n)
{
    ASSERT(n < d->max_vcpus);
    set_current(d->vcpu[n]);
}

intpte_t hvtest_pte(mfn_t mfn, uint64_t flags)
{
    return (mfn << PAGE_SHIFT) | flags | _PAGE_PRESENT;
}

void hvtest_write_pte(mfn_t table, unsigned int idx, intpte_t val)
{
    /* As the guest CPU does, record the write before making it. */
    hv_frame_written(table);
    ((intpte_t *)map_domain_page(table))[idx] = val;
}

intpte_t hvtest_read_pte(mfn_t table, unsigned int idx)
{
    return ((intpte_t *)map_domain_page(table))[idx];
}

uint64_t hvtest_caf(mfn_t mfn)
{
    return atomic_load(&mfn_to_page(mfn)->count_info);
}

uint64_t hvtest_count(mfn_t mfn)
{
    return hvtest_caf(mfn) & PGC_count_mask;
}

uint64_t hvtest_taf(mfn_t mfn)
{
    return atomic_load(&mfn_to_page(mfn)->type_info);
}

uint64_t hvtest_tcount(mfn_t mfn)
{
    return hvtest_taf(mfn) & PGT_count_mask;
}

long hvtest_mmuext_once(unsigned int cmd, mfn_t mfn, unsigned int *done)
{
    struct mmuext_op op = { .cmd = cmd, .arg1.mfn = mfn };

    return do_mmuext_op(&op, 1, done, DOMID_SELF);
}

long hvtest_mmuext(unsigned int cmd, mfn_t mfn)
{
    unsigned int done = 0;
    long rc;

    do {
        rc = hvtest_mmuext_once(cmd, mfn, &done);
    } while ( rc == -ERESTART );
    return rc;
}

long hvtest_pt_update(mfn_t table, unsigned int idx, intpte_t val)
{
    struct mmu_update req = {
        .ptr = ((table << PAGE_SHIFT) + idx * sizeof(intpte_t)) |
               MMU_NORMAL_PT_UPDATE,
        .val = val,
    };
    unsigned int done = 0;
    long rc;

    do {
        rc = do_mmu_update(&req, 1, &done, DOMID_SELF);
    } while ( rc == -ERESTART );
    return rc;
}

void hvtest_destroy(struct domain *d)
{
    uint64_t before;
    int rc;

    set_current(host.dom0->vcpu[0]);
    before = hv_free_pages();
    (void)before;
    do {
        rc = domain_kill(d);
    } while ( rc == -ERESTART );
    if ( rc )
        FAIL("domain_kill: %d", rc);
}

void hvtest_done(void)
{
    HVTEST_AUDIT_CLEAN();
    set_current(NULL);
    host_dispose();
}

bool hvtest_log_has(const char *fmt, ...)
{
    char needle[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(needle, sizeof(needle), fmt, ap);
    va_end(ap);
    if ( !hv_log_contains(needle) )
        DIAG("log lacks \"%s\"", needle);
    return hv_log_contains(needle);
}
