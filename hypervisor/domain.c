/* SPDX-License-Identifier: MIT */
/*
 * Domains and vCPUs: creation, lookup and reference counting, pausing,
 * shutdown, and the ownership and accounting of frames
 * (xen/common/domain.c, xen/common/page_alloc.c).
 *
 * A struct domain lives while anyone holds a reference: the domain list
 * holds one from creation until destruction completes, each hypercall or
 * control request that looks a domain up holds one for its duration, and a
 * domain that owns frames holds one on itself (taken when tot_pages leaves
 * 0, dropped when it returns to 0), so a frame's owner pointer is always
 * valid while the frame is referenced.
 *
 * Invariants (checked by the auditor):
 *  - tot_pages == number of non-xen-heap frames whose owner is d;
 *  - every such frame is on d's page list, every shared xen-heap frame on
 *    its xenpage list, and no frame on two lists.
 */
#include <stdlib.h>
#include <string.h>

#include "hv.h"

/* ------------------------------------------------------------------------
 * Page lists: intrusive, linked by MFN + 1 (0 terminates)
 * ------------------------------------------------------------------------ */

static void page_list_add_tail(struct page_info *pg, uint32_t *head,
                               uint32_t *tail)
{
    uint32_t link = (uint32_t)page_to_mfn(pg) + 1;

    pg->list_next = 0;
    pg->list_prev = *tail;
    if ( *tail )
        mfn_to_page(*tail - 1)->list_next = link;
    else
        *head = link;
    *tail = link;
}

static void page_list_del(struct page_info *pg, uint32_t *head,
                          uint32_t *tail)
{
    if ( pg->list_prev )
        mfn_to_page(pg->list_prev - 1)->list_next = pg->list_next;
    else
        *head = pg->list_next;
    if ( pg->list_next )
        mfn_to_page(pg->list_next - 1)->list_prev = pg->list_prev;
    else
        *tail = pg->list_prev;
    pg->list_next = pg->list_prev = 0;
}

int domain_for_each_page(struct domain *d, bool xenpages,
                         int (*fn)(struct page_info *pg, void *arg), void *arg)
{
    uint32_t link;
    int rc = 0;

    spin_lock(&d->page_alloc_lock);
    link = xenpages ? d->xenpage_list_head : d->page_list_head;
    while ( link && !rc )
    {
        struct page_info *pg = mfn_to_page(link - 1);

        link = pg->list_next;
        rc = fn(pg, arg);
    }
    spin_unlock(&d->page_alloc_lock);
    return rc;
}

/* ------------------------------------------------------------------------
 * Creation and lookup
 * ------------------------------------------------------------------------ */

static struct vcpu *vcpu_create(struct domain *d, unsigned int id)
{
    struct vcpu *v = calloc(1, sizeof(*v));

    if ( !v )
        return NULL;
    v->vcpu_id = id;
    v->domain = d;
    atomic_store(&v->is_down, true);
    return v;
}

static void domain_free(struct domain *d)
{
    host.domain_by_id[d->domain_id] = NULL;
    for ( unsigned int i = 0; i < d->max_vcpus; i++ )
        free(d->vcpu[i]);
    free(d->vcpu);
    free(d->p2m);
    free(d->logdirty.bitmap);
    spin_lock_destroy(&d->logdirty.lock);
    spin_lock_destroy(&d->p2m_lock);
    spin_lock_destroy(&d->page_alloc_lock);
    free(d);
}

/* Pick the domain ID: the lowest free one after the last allocated. */
static int domid_pick(domid_t want, bool special, domid_t *out)
{
    if ( want == DOMID_ANY )
    {
        for ( unsigned int n = 1; n < DOMID_FIRST_RESERVED; n++ )
        {
            domid_t id = (domid_t)((host.last_domid + n) % DOMID_FIRST_RESERVED);

            if ( id != 0 && !host.domain_by_id[id] )
            {
                host.last_domid = id;
                *out = id;
                return 0;
            }
        }
        return -ENOMEM;
    }
    if ( want >= DOMID_FIRST_RESERVED && !special )
        return -EINVAL;
    if ( host.domain_by_id[want] )
        return -EEXIST;
    *out = want;
    return 0;
}

/* The shared_info page: a xen-heap frame shared writable with the guest. */
static int shared_info_init(struct domain *d)
{
    struct page_info *pg = alloc_heap_pages(0, 0);

    if ( !pg )
        return -ENOMEM;
    atomic_store(&pg->count_info, PGC_state_inuse);
    d->shared_info_mfn = page_to_mfn(pg);
    share_xen_page_with_guest(pg, d, true);
    return 0;
}

int domain_create(domid_t domid, unsigned int flags, unsigned int max_vcpus,
                  struct domain **d_out)
{
    bool special = flags & DOMCREATE_privileged;
    struct domain *d = calloc(1, sizeof(*d));
    domid_t id;
    int rc;

    if ( !d )
        return -ENOMEM;
    spin_lock_init(&d->page_alloc_lock);
    spin_lock_init(&d->p2m_lock);
    spin_lock_init(&d->logdirty.lock);
    atomic_store(&d->refcnt, 1);
    atomic_store(&d->controller_pause_count, 1);
    atomic_store(&d->shutdown_code, -1);
    d->is_privileged = special;
    d->translated = flags & DOMCREATE_translated;
    d->max_vcpus = max_vcpus;
    d->vcpu = calloc(max_vcpus ? max_vcpus : 1, sizeof(*d->vcpu));
    if ( !d->vcpu )
        goto nomem;

    spin_lock(&host.domlist_lock);
    rc = domid_pick(domid, special, &id);
    if ( !rc )
    {
        d->domain_id = id;
        host.domain_by_id[id] = d;
    }
    spin_unlock(&host.domlist_lock);
    if ( rc )
    {
        free(d->vcpu);
        free(d);
        return rc;
    }

    for ( unsigned int i = 0; i < max_vcpus; i++ )
        if ( !(d->vcpu[i] = vcpu_create(d, i)) )
            goto fail;
    /* Domain 0 and the special owners have no shared_info of their own. */
    if ( !special && shared_info_init(d) )
        goto fail;

    *d_out = d;
    return 0;

 nomem:
    free(d);
    return -ENOMEM;
 fail:
    spin_lock(&host.domlist_lock);
    domain_free(d);
    spin_unlock(&host.domlist_lock);
    return -ENOMEM;
}

struct domain *get_domain_by_id(domid_t domid)
{
    struct domain *d;

    if ( domid >= ARRAY_SIZE(host.domain_by_id) )
        return NULL;
    spin_lock(&host.domlist_lock);
    d = host.domain_by_id[domid];
    if ( d && !get_domain(d) )
        d = NULL;
    spin_unlock(&host.domlist_lock);
    return d;
}

bool get_domain(struct domain *d)
{
    int old = atomic_load(&d->refcnt);

    do {
        if ( old <= 0 )
            return false;
    } while ( !atomic_compare_exchange_weak(&d->refcnt, &old, old + 1) );
    return true;
}

void put_domain(struct domain *d)
{
    if ( atomic_fetch_sub(&d->refcnt, 1) != 1 )
        return;
    spin_lock(&host.domlist_lock);
    domain_free(d);
    spin_unlock(&host.domlist_lock);
}

/* ------------------------------------------------------------------------
 * Pausing and shutdown
 * ------------------------------------------------------------------------ */

int domain_pause_by_systemcontroller(struct domain *d)
{
    int old = atomic_load(&d->controller_pause_count);

    do {
        /* The count may reach 255; the pause that would make it 256 fails. */
        if ( old >= 255 )
            return -EOVERFLOW;
    } while ( !atomic_compare_exchange_weak(&d->controller_pause_count, &old,
                                            old + 1) );
    return 0;
}

int domain_unpause_by_systemcontroller(struct domain *d)
{
    int old = atomic_load(&d->controller_pause_count);

    do {
        if ( old <= 0 )
            return -EINVAL;
    } while ( !atomic_compare_exchange_weak(&d->controller_pause_count, &old,
                                            old - 1) );
    if ( old == 1 )
        atomic_store(&d->creation_finished, true);
    return 0;
}

bool domain_is_paused(const struct domain *d)
{
    return atomic_load(&d->controller_pause_count) > 0;
}

void domain_shutdown(struct domain *d, unsigned int reason)
{
    int none = -1;

    /* The first writer wins; later reasons are ignored, as on Xen. */
    atomic_compare_exchange_strong(&d->shutdown_code, &none, (int)reason);
    atomic_store(&d->is_shutting_down, true);
    atomic_store(&d->is_shut_down, true);
}

/* ------------------------------------------------------------------------
 * Frame ownership and accounting
 * ------------------------------------------------------------------------ */

int assign_pages(struct page_info *pg, unsigned int nr, struct domain *d,
                 unsigned int memflags)
{
    bool extra = memflags & MEMF_no_refcount;
    uint32_t tot;
    int rc = 0;

    spin_lock(&d->page_alloc_lock);
    if ( unlikely(domain_is_dying(d)) )
    {
        gdprintk(XENLOG_INFO, "Cannot assign page to domain%u -- dying.",
                 d->domain_id);
        rc = -EINVAL;
        goto out;
    }
    tot = atomic_load(&d->tot_pages) - atomic_load(&d->extra_pages);
    if ( !extra && unlikely(tot > atomic_load(&d->max_pages)) )
    {
        rc = -EPERM;
        goto out;
    }
    if ( !extra && unlikely((uint64_t)tot + nr > atomic_load(&d->max_pages)) )
    {
        gdprintk(XENLOG_INFO, "Over-allocation for d%u: %lu > %u",
                 d->domain_id, (unsigned long)tot + nr,
                 atomic_load(&d->max_pages));
        rc = -E2BIG;
        goto out;
    }

    if ( atomic_load(&d->tot_pages) == 0 && nr )
        get_domain(d);
    for ( unsigned int i = 0; i < nr; i++ )
    {
        uint64_t extra_bit = extra ? PGC_extra : 0;

        ASSERT(!page_get_owner(&pg[i]));
        page_set_owner(&pg[i], d);
        atomic_store(&pg[i].count_info,
                     PGC_state_inuse | PGC_allocated | extra_bit | 1);
        page_list_add_tail(&pg[i], &d->page_list_head, &d->page_list_tail);
    }
    atomic_fetch_add(&d->tot_pages, nr);
    if ( extra )
        atomic_fetch_add(&d->extra_pages, nr);
 out:
    spin_unlock(&d->page_alloc_lock);
    return rc;
}

struct page_info *alloc_domheap_pages(struct domain *d, unsigned int order,
                                      unsigned int memflags)
{
    struct page_info *pg = alloc_heap_pages(order, memflags);

    if ( !pg )
        return NULL;
    if ( d && assign_pages(pg, 1U << order, d, memflags) )
    {
        free_heap_pages(pg, order);
        return NULL;
    }
    return pg;
}

/*
 * Called when a frame's last general reference goes.  Domain frames go back
 * to the heap; xen-heap frames only leave the domain's xenpage list: the
 * hypervisor still owns them and frees them itself.
 */
void free_domheap_pages(struct page_info *pg, unsigned int order)
{
    struct domain *d = page_get_owner(pg);
    unsigned int nr = 1U << order;
    bool xenheap = atomic_load(&pg->count_info) & PGC_xen_heap;
    bool drop_ref = false;

    if ( d )
    {
        spin_lock(&d->page_alloc_lock);
        for ( unsigned int i = 0; i < nr; i++ )
        {
            if ( xenheap )
                page_list_del(&pg[i], &d->xenpage_list_head,
                              &d->xenpage_list_tail);
            else
                page_list_del(&pg[i], &d->page_list_head,
                              &d->page_list_tail);
            if ( !xenheap && (atomic_load(&pg[i].count_info) & PGC_extra) )
                atomic_fetch_sub(&d->extra_pages, 1);
        }
        if ( xenheap )
            atomic_fetch_sub(&d->xenheap_pages, nr);
        else
            drop_ref = atomic_fetch_sub(&d->tot_pages, nr) == nr;
        spin_unlock(&d->page_alloc_lock);
    }

    if ( xenheap )
    {
        for ( unsigned int i = 0; i < nr; i++ )
        {
            page_set_owner(&pg[i], NULL);
            atomic_store(&pg[i].type_info, 0);
            atomic_store(&pg[i].count_info, PGC_xen_heap | PGC_state_inuse);
        }
    }
    else
        free_heap_pages(pg, order);
    if ( drop_ref )
        put_domain(d);
}

void share_xen_page_with_guest(struct page_info *pg, struct domain *d,
                               bool writable)
{
    uint64_t type = writable ? PGT_writable_page : PGT_none;

    set_gpfn_from_mfn(page_to_mfn(pg), INVALID_M2P_ENTRY);
    atomic_store(&pg->type_info, type | PGT_validated | 1);
    page_set_owner(pg, d);
    spin_lock(&d->page_alloc_lock);
    atomic_store(&pg->count_info,
                 PGC_xen_heap | PGC_state_inuse | PGC_allocated | 1);
    page_list_add_tail(pg, &d->xenpage_list_head, &d->xenpage_list_tail);
    atomic_fetch_add(&d->xenheap_pages, 1);
    spin_unlock(&d->page_alloc_lock);
}
