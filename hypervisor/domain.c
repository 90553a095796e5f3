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
 * Destruction (domain_kill, at the end of the file) undoes everything the
 * domain holds, in Xen's order, as a restartable sequence, and returns the
 * xen-heap frames allocated for it (shared_info, grant frames) to the heap
 * once nothing references them; after it every frame the domain owned is
 * free, except frames other domains still hold, which go with their last
 * reference.
 *
 * Invariants (checked by the auditor):
 *  - tot_pages == number of non-xen-heap frames whose owner is d;
 *  - every such frame is on d's page list, every shared xen-heap frame on
 *    its xenpage list, and no frame on two lists -- except while a
 *    destruction pass runs, when visited frames wait on relmem_list.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static void page_list_add(struct page_info *pg, uint32_t *head,
                          uint32_t *tail)
{
    uint32_t link = (uint32_t)page_to_mfn(pg) + 1;

    pg->list_prev = 0;
    pg->list_next = *head;
    if ( *head )
        mfn_to_page(*head - 1)->list_prev = link;
    else
        *tail = link;
    *head = link;
}

/*
 * Take pg off whichever of two lists holds it: destruction parks visited
 * pages on relmem_list, and a page may be freed while it sits there.  Only
 * a list's ends name the list; a page in the middle just unlinks.
 */
static void page_list_del2(struct page_info *pg, uint32_t *head1,
                           uint32_t *tail1, uint32_t *head2, uint32_t *tail2)
{
    uint32_t link = (uint32_t)page_to_mfn(pg) + 1;

    if ( (!pg->list_prev && *head1 == link) ||
         (!pg->list_next && *tail1 == link) )
        page_list_del(pg, head1, tail1);
    else if ( (!pg->list_prev && *head2 == link) ||
              (!pg->list_next && *tail2 == link) )
        page_list_del(pg, head2, tail2);
    else
    {
        BUG_ON(!pg->list_prev || !pg->list_next);
        page_list_del(pg, head1, tail1);
    }
}

/* Append list 2 to list 1, leaving list 2 empty. */
static void page_list_splice(uint32_t *head1, uint32_t *tail1,
                             uint32_t *head2, uint32_t *tail2)
{
    if ( !*head2 )
        return;
    if ( *tail1 )
    {
        mfn_to_page(*tail1 - 1)->list_next = *head2;
        mfn_to_page(*head2 - 1)->list_prev = *tail1;
    }
    else
        *head1 = *head2;
    *tail1 = *tail2;
    *head2 = *tail2 = 0;
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
    /*
     * The xen-heap frames destruction could not give back (still mapped
     * when it finished) go now, as Xen frees them at its final destroy.
     */
    if ( d->shared_info_mfn &&
         !free_xenheap_frame_if_unused(d, d->shared_info_mfn) )
        printk("d%u: shared_info %#lx still referenced, leaked\n",
               d->domain_id, (unsigned long)d->shared_info_mfn);
    grant_table_free(d);
    domain_rt_destroy(d);
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
    return domain_create_as(domid, flags, max_vcpus, NULL, 0, d_out);
}

int domain_create_as(domid_t domid, unsigned int flags,
                     unsigned int max_vcpus, const uint8_t handle[16],
                     uint32_t ssidref, struct domain **d_out)
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
    if ( handle )
        memcpy(d->handle, handle, sizeof(d->handle));
    d->ssidref = ssidref;
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
    /* Domain 0 and the special owners have no shared_info, nor guests. */
    if ( !special && (shared_info_init(d) || domain_rt_init(d)) )
        goto fail;

    atomic_store_explicit(&d->listed, true, memory_order_release);
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
    if ( d && (!atomic_load_explicit(&d->listed, memory_order_acquire) ||
               !get_domain(d)) )
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

struct domain *lock_domain_by_id(domid_t domid)
{
    /* The special domains (DOMID_XEN, DOMID_IO) are not on Xen's list. */
    if ( domid >= DOMID_FIRST_RESERVED )
        return NULL;
    return get_domain_by_id(domid);
}

struct domain *lock_domain_by_any_id(domid_t domid)
{
    struct domain *d = current->domain;

    if ( domid != DOMID_SELF )
        return lock_domain_by_id(domid);
    return get_domain(d) ? d : NULL;
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
    /* Synchronous, as Xen's: no vCPU of d runs guest code after this. */
    domain_rt_sync(d);
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
    {
        atomic_store(&d->creation_finished, true);
        domain_rt_kick(d);
    }
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
    domain_state_changed();
}

void domain_state_changed(void)
{
    pthread_mutex_lock(&host.state_lock);
    pthread_cond_broadcast(&host.state_cond);
    pthread_mutex_unlock(&host.state_lock);
}

/*
 * The flags are set before domain_state_changed() takes state_lock, and
 * read here under it: a change between our check and the wait cannot be
 * missed.
 */
void domain_wait_shutdown(struct domain *d, unsigned int timeout_ms)
{
    struct timespec until;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if ( until.tv_nsec >= 1000000000L )
    {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&host.state_lock);
    while ( !atomic_load(&d->is_shut_down) &&
            atomic_load(&d->state) == DOMSTATE_ALIVE &&
            pthread_cond_timedwait(&host.state_cond, &host.state_lock,
                                   &until) == 0 )
        ;
    pthread_mutex_unlock(&host.state_lock);
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
        free_heap_pages(pg, order, false);
        return NULL;
    }
    return pg;
}

/*
 * The frames a destruction frees, batched: one TLB flush and one heap_lock
 * for up to FREE_BATCH frames instead of one each (most of a large
 * domain's destruction was these, per frame).  Only the thread running
 * d's relinquish_resources batches d's frames, and it empties the batch
 * before it returns (a continuation included), so no frame waits in a
 * batch across a return, nor where an audit could see it.  The domain's
 * vCPUs are stopped by then; the flush before the frames reach the heap
 * is kept all the same.
 */
#define FREE_BATCH 256

static _Thread_local struct
{
    struct domain *d;               /* being relinquished here, or NULL */
    unsigned int nr;
    mfn_t mfn[FREE_BATCH];
} free_batch;

static void free_batch_flush(void)
{
    if ( !free_batch.nr )
        return;
    flush_tlb_domain(free_batch.d);
    hv_free_heap_page_list(free_batch.mfn, free_batch.nr, false);
    free_batch.nr = 0;
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
        spin_lock(&d->page_alloc_lock);
    for ( unsigned int i = 0; d && i < nr; i++ )
    {
        if ( xenheap )
            page_list_del2(&pg[i], &d->xenpage_list_head,
                           &d->xenpage_list_tail, &d->relmem_list_head,
                           &d->relmem_list_tail);
        else
            page_list_del2(&pg[i], &d->page_list_head, &d->page_list_tail,
                           &d->relmem_list_head, &d->relmem_list_tail);
        if ( !xenheap && (atomic_load(&pg[i].count_info) & PGC_extra) )
            atomic_fetch_sub(&d->extra_pages, 1);
    }
    if ( d && xenheap )
        atomic_fetch_sub(&d->xenheap_pages, nr);
    else if ( d )
        drop_ref = atomic_fetch_sub(&d->tot_pages, nr) == nr;

    /*
     * A xen-heap frame leaves the domain under page_alloc_lock, so that
     * free_xenheap_frame_if_unused() sees it either still owned or done
     * with.
     */
    for ( unsigned int i = 0; xenheap && i < nr; i++ )
    {
        page_set_owner(&pg[i], NULL);
        atomic_store(&pg[i].type_info, 0);
        atomic_store(&pg[i].count_info, PGC_xen_heap | PGC_state_inuse);
    }
    if ( d )
        spin_unlock(&d->page_alloc_lock);

    /*
     * A domain frame: every write to it set its maybe_nonzero bit, so the
     * heap knows whether it needs a scrub (need_scrub false).
     */
    if ( d && d == free_batch.d && !xenheap && !order )
    {
        free_batch.mfn[free_batch.nr++] = page_to_mfn(pg);
        if ( free_batch.nr == FREE_BATCH || drop_ref )
            free_batch_flush();
    }
    else
    {
        /*
         * No vCPU of d may still be writing through a stale translation
         * once the frame can belong to someone else (vcpu.c explains the
         * flush).
         */
        if ( d )
            flush_tlb_domain(d);
        if ( !xenheap )
            free_heap_pages(pg, order, false);
    }
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

/* ------------------------------------------------------------------------
 * Destruction (xen/common/domain.c domain_kill, xen/arch/x86/domain.c
 * domain_relinquish_resources and relinquish_memory)
 *
 * A restartable sequence: each stage either completes or returns -ERESTART
 * with its progress recorded (d->relinquish_stage, pages moved to
 * relmem_list, a vCPU's old_guest_table, PGT_partial in a page), and the
 * next call resumes there.  The stages run in Xen's order; by the end no
 * reference held by the domain's own state remains, so every frame it owned
 * has been freed, except frames other domains still reference (a grant
 * mapping), which go when those references do (invariant 14).
 * ------------------------------------------------------------------------ */

/*
 * Xen serialises destroydomain under the domctl lock.  ferry's kills take
 * this lock, outermost of all: it is held across put_domain().
 */
static pthread_mutex_t kill_lock = PTHREAD_MUTEX_INITIALIZER;

enum relinquish_stage
{
    REL_gnttab,             /* the domain's mappings of others' grants */
    REL_mappings,           /* a translated domain's p2m */
    REL_paging,             /* log-dirty */
    REL_vcpu_pagetables,    /* base tables, deferred puts, GDTs */
    REL_xen,                /* the xen-heap frames shared with it */
    REL_l4,                 /* page_list, breaking L4 tables */
    REL_l3,                 /* ... L3 tables */
    REL_l2,                 /* ... L2 tables */
    REL_done,
};

/* type_info bits destruction changes itself, by cmpxchg (add may be -1). */
static uint64_t type_info_modify(struct page_info *pg, uint64_t clear,
                                 uint64_t set, uint64_t add)
{
    uint64_t x = atomic_load(&pg->type_info), nx;

    do {
        nx = ((x & ~clear) | set) + add;
    } while ( !atomic_compare_exchange_weak(&pg->type_info, &x, nx) );
    return x;
}

/* Put pg back at the head of its list: the next call starts with it. */
static void relinquish_requeue(struct domain *d, struct page_info *pg,
                               uint32_t *head, uint32_t *tail)
{
    spin_lock(&d->page_alloc_lock);
    page_list_add(pg, head, tail);
    spin_unlock(&d->page_alloc_lock);
}

/*
 * One page of a relinquish pass, holding the reference the caller took:
 * drop the pin and the allocation reference, then force-devalidate it if
 * it is a still validated (or partial) table of the pass's level.  The
 * domain is dead, so a top-most table still validated is referenced only
 * circularly (linear entries) or is half-done: devalidating it breaks those
 * references, and its type count is left to the puts that follow.
 * -ERESTART: pg is back on its list, state recorded in it.
 */
static int relinquish_page(struct domain *d, struct page_info *pg,
                           uint32_t *head, uint32_t *tail, uint64_t type)
{
    uint64_t x, y;
    int ret = 0;

    if ( type_info_modify(pg, PGT_pinned, 0, 0) & PGT_pinned )
        ret = put_page_and_type_preemptible(pg);
    switch ( ret )
    {
    case 0:
        break;
    case -EINTR:
        /* PGT_validated is set again: re-pin, so next time finds it. */
        ASSERT(atomic_load(&pg->type_info) & PGT_validated);
        type_info_modify(pg, 0, PGT_pinned, 0);
        goto requeue;
    case -ERESTART:
        /*
         * PGT_partial is set instead: the devalidation below finishes it
         * next time.  The pin's general ref goes now, as the put did not
         * drop it.
         */
        put_page(pg);
        goto requeue;
    default:
        BUG();
    }

    put_page_alloc_ref(pg);

    y = atomic_load(&pg->type_info);
    for ( ; ; )
    {
        x = y;
        if ( (x & PGT_type_mask) != type ||
             !(x & (PGT_validated | PGT_partial)) )
            break;
        if ( !atomic_compare_exchange_weak(&pg->type_info, &y,
                                           x & ~(PGT_validated |
                                                 PGT_partial)) )
            continue;

        switch ( devalidate_page(pg, x, true) )
        {
        case 0:
            break;
        case -EINTR:
            type_info_modify(pg, 0, PGT_validated, 0);
            if ( x & PGT_partial )
                put_page(pg);
            goto requeue;
        case -ERESTART:
            /*
             * PGT_partial holds a type ref and a general ref.  Coming in
             * with it, both exist and the ref we took goes; otherwise the
             * type count grows by one and our ref becomes the partial one.
             */
            relinquish_requeue(d, pg, head, tail);
            if ( !(x & PGT_partial) )
                type_info_modify(pg, 0, 0, 1);
            type_info_modify(pg, 0, PGT_partial, 0);
            if ( x & PGT_partial )
                put_page(pg);
            return -ERESTART;
        default:
            BUG();
        }
        if ( x & PGT_partial )
        {
            type_info_modify(pg, 0, 0, (uint64_t)-1);
            put_page(pg);
        }
        break;
    }
    return 0;

 requeue:
    relinquish_requeue(d, pg, head, tail);
    put_page(pg);
    return -ERESTART;
}

/*
 * Visit every page of a list once per pass: visited pages wait on
 * relmem_list (the list's head is always the next to do), and go back when
 * the list is empty.  page_alloc_lock is not recursive in ferry, so it is
 * held only to move pages between lists; the reference taken on each page
 * keeps it from being freed meanwhile.  A visited page goes onto relmem
 * under the same hold of the lock that takes the next page off the list,
 * and only then loses our reference (which may free it): one lock round
 * per page rather than two.
 */
static int relinquish_memory(struct domain *d, bool xenpages, uint64_t type)
{
    uint32_t *head = xenpages ? &d->xenpage_list_head : &d->page_list_head;
    uint32_t *tail = xenpages ? &d->xenpage_list_tail : &d->page_list_tail;
    struct page_info *visited = NULL;   /* on relmem next, ref still held */
    int ret;

    for ( ; ; )
    {
        struct page_info *pg = NULL;
        struct domain *owner = NULL;
        bool preempt = visited && hypercall_preempt_check();

        spin_lock(&d->page_alloc_lock);
        /* Put the page on the list and /then/ potentially free it. */
        if ( visited )
            page_list_add_tail(visited, &d->relmem_list_head,
                               &d->relmem_list_tail);
        /* Preempted, the next call goes on from here. */
        if ( !preempt && !*head )
            page_list_splice(head, tail, &d->relmem_list_head,
                             &d->relmem_list_tail);
        else if ( !preempt )
        {
            pg = mfn_to_page(*head - 1);
            page_list_del(pg, head, tail);
            /* Grab a reference so the page won't disappear from under us. */
            owner = page_get_owner_and_reference(pg);
            /* No owner: someone is freeing it, and takes it off relmem. */
            if ( unlikely(!owner) )
                page_list_add_tail(pg, &d->relmem_list_head,
                                   &d->relmem_list_tail);
        }
        spin_unlock(&d->page_alloc_lock);
        if ( visited )
            put_page(visited);
        visited = NULL;
        if ( preempt )
            return -ERESTART;
        if ( !pg )
            return 0;
        if ( unlikely(!owner) )
            continue;
        BUG_ON(owner != d);

        ret = relinquish_page(d, pg, head, tail, type);
        if ( ret )
            return ret;
        visited = pg;
    }
}

/* Base tables (with any deferred put), LDT and GDT frames of every vCPU. */
static int relinquish_vcpus(struct domain *d)
{
    struct vcpu *v;
    int rc;

    for_each_vcpu ( d, v )
    {
        rc = vcpu_destroy_pagetables(v);
        if ( rc )
            return rc;
    }
    for_each_vcpu ( d, v )
    {
        pv_destroy_ldt(v);
        pv_destroy_gdt(v);
    }
    return 0;
}

static int relinquish_stages(struct domain *d)
{
    int rc = 0;

    for ( ; ; )
    {
        switch ( (enum relinquish_stage)d->relinquish_stage )
        {
        case REL_gnttab:
            rc = gnttab_release_mappings(d);
            break;
        case REL_mappings:
            if ( d->translated )
                relinquish_p2m_mapping(d);
            break;
        case REL_paging:
            paging_teardown(d);
            break;
        case REL_vcpu_pagetables:
            rc = relinquish_vcpus(d);
            break;
        case REL_xen:
            rc = relinquish_memory(d, true, ~0ULL);
            break;
        case REL_l4:
            rc = relinquish_memory(d, false, PGT_l4_page_table);
            break;
        case REL_l3:
            rc = relinquish_memory(d, false, PGT_l3_page_table);
            break;
        case REL_l2:
            rc = relinquish_memory(d, false, PGT_l2_page_table);
            break;
        case REL_done:
            return 0;
        default:
            BUG();
        }
        if ( rc )
            return rc;
        d->relinquish_stage++;
    }
}

/* The stages, with d's frames batched (free_batch) while they run. */
static int domain_relinquish_resources(struct domain *d)
{
    int rc;

    ASSERT(!free_batch.d);
    free_batch.d = d;
    rc = relinquish_stages(d);
    free_batch_flush();
    free_batch.d = NULL;
    return rc;
}

bool free_xenheap_frame_if_unused(struct domain *d, mfn_t mfn)
{
    struct page_info *pg = mfn_to_page(mfn);
    bool unused;

    /*
     * free_domheap_pages() lets go of a xen-heap frame under
     * page_alloc_lock: seen there with no count and no owner, it is done
     * with and nobody can take a reference again (the count is 0).
     */
    spin_lock(&d->page_alloc_lock);
    unused = !(atomic_load(&pg->count_info) & PGC_count_mask) &&
             !page_get_owner(pg);
    spin_unlock(&d->page_alloc_lock);
    if ( unused )
    {
        ASSERT(atomic_load(&pg->count_info) & PGC_xen_heap);
        /* The hypervisor writes xen-heap frames without recording it. */
        free_heap_pages(pg, 0, true);
    }
    return unused;
}

int domain_kill(struct domain *d)
{
    struct vcpu *v;
    int rc = 0;

    if ( current && d == current->domain )
        return -EINVAL;

    pthread_mutex_lock(&kill_lock);
    switch ( atomic_load(&d->state) )
    {
    case DOMSTATE_ALIVE:
        /*
         * Paused for good (Xen's domain_pause): once this returns no vCPU
         * of d runs guest code, so its tables can go.
         */
        for_each_vcpu ( d, v )
            vcpu_pause(v);
        atomic_store(&d->state, DOMSTATE_DYING);
        domain_state_changed();
        /*
         * End the runner threads now, before any resource goes: a parked
         * runner still fires its vCPU's timer into shared_info, which the
         * relinquish below frees.
         */
        domain_rt_stop(d);
        /* fall through */
    case DOMSTATE_DYING:
        rc = domain_relinquish_resources(d);
        if ( rc )
            break;
        /* The xen-heap frames the hypervisor allocated for it. */
        if ( d->shared_info_mfn &&
             free_xenheap_frame_if_unused(d, d->shared_info_mfn) )
            __atomic_store_n(&d->shared_info_mfn, 0, __ATOMIC_RELAXED);
        grant_table_destroy(d);
        /*
         * The runners' state stays until domain_free(), because frees of
         * d's frames by other domains still flush d's vCPUs through it.
         */
        atomic_store(&d->state, DOMSTATE_DEAD);
        /* The domain list's reference. */
        put_domain(d);
        break;
    case DOMSTATE_DEAD:
        break;
    }
    pthread_mutex_unlock(&kill_lock);
    return rc;
}
