/* SPDX-License-Identifier: MIT */
/*
 * Running guests: one thread per vCPU executing the guest ISA (isa.h)
 * through the guest's own x86-64 page tables.
 *
 * THE MMU
 *
 * Every fetch, load and store of the guest is translated by walking the
 * four-level tables rooted at the vCPU's guest_table (the kernel base that
 * NEW_BASEPTR or setvcpucontext installed; ferry guests always run in
 * kernel mode).  As on Xen, a 64-bit PV guest kernel runs in ring 3: every
 * access is a user-mode access, so Present, U/S, RW and NX are enforced at
 * every level.  Guest entries carry _PAGE_USER (adjust_guest_l*e); the
 * hypervisor's entries in L4 slots 256..271 (direct map, M2P, linear map)
 * do not, except the read-only M2P of slot 256, which guests may read as
 * on Xen.  Accessed bits are set at every level and the dirty bit in the
 * leaf on a write, with atomic ors, as the hardware does (Xen whitelists
 * A/D changes, so this never invalidates a validated table).  A small
 * software TLB caches translations; it is flushed wherever Xen flushes a
 * TLB (flush_tlb_domain and the mmuext TLB ops bump v->tlb_flush_gen).
 *
 * SAFETY OF CACHED TRANSLATIONS
 *
 * A translation cached in a TLB, or held during one access, names a
 * machine frame.  If that frame could be freed and handed to another
 * domain meanwhile, a guest could write another guest's memory.  Xen
 * prevents this with TLB-flush timestamps checked at allocation; ferry
 * makes flush_tlb_domain() synchronous instead: it bumps each vCPU's
 * flush generation and then waits until that vCPU is not inside a guest
 * memory access (access_seq is odd only inside one, and the vCPU re-checks
 * the generation after making it odd).  Frames leave a domain only after
 * such a flush (free_domheap_pages), so no access can reach a frame the
 * domain no longer owns.
 *
 * LOG-DIRTY
 *
 * A writable TLB entry is created only after the frame has been marked
 * dirty, and CLEAN flushes the domain's TLBs, so the first write to a page
 * after each CLEAN marks it, as Xen's shadow write faults do, at no cost
 * to the writes after it.
 *
 * RUNNER STATES
 *
 *   parked --(runnable: unpaused, online, initialised, not blocked,
 *             not shut down)--> running --(not runnable / fault / halt /
 *             block)--> parked;  any state --(domain_rt_stop)--> gone
 *
 * domain_rt_sync() returns when every runner is parked, which is how
 * pausing a domain is synchronous, as in Xen.
 *
 * THE THROTTLE
 *
 * A runnable vCPU of a throttled domain (domain_set_throttle) that has
 * used its share of the current period leaves run() and waits parked
 * until the period ends: parked rather than sleeping while "running", so
 * that a pause during a throttled migration still takes effect at once.
 * Only the runner reads and writes its own account.
 */
#include <inttypes.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hv.h"
#include "isa.h"

#define TLB_ENTRIES 64
#define STEP_BUDGET 4096            /* instructions between checks */
#define CONSOLE_RING DOMAIN_CONSOLE_RING

/* The end of the hypervisor's range, L4 slots 256..271 (Xen's). */
#define HYPERVISOR_VIRT_END HV_L4_SLOT_VIRT(ROOT_PAGETABLE_LAST_XEN_SLOT + 1)

#define TLB_W 1ULL                  /* writable translation */
#define TLB_X 2ULL                  /* executable */
#define TLB_VALID 4ULL

struct tlb_entry
{
    uint64_t vpn;                   /* va >> 12 */
    uint64_t val;                   /* mfn << 12 | TLB_* */
};

struct vcpu_rt
{
    struct vcpu *v;
    pthread_t thread;
    bool has_thread;
    struct tlb_entry tlb[TLB_ENTRIES];
    uint64_t tlb_gen;               /* generation the TLB was flushed at */
    _Atomic uint64_t access_seq;    /* odd while inside a guest access */
    _Atomic uint64_t timer_deadline;    /* ns of hv_system_time; 0: none */
    uint64_t last_pte;              /* leaf entry of the last failed walk */
    struct sched_throttle thr;      /* the runner's own */
    uint64_t throttled_until;       /* parked by the throttle until; 0 */
};

/*
 * A domain's console ring.  It has its own reference count so that it can
 * outlive the domain: a console reader that attached while the domain was
 * alive keeps it (control.c) and reads to the last byte the guest wrote,
 * even after the domain's monitor has destroyed it (as xenconsoled drains
 * a dead domain's ring to its clients before closing their pty).
 */
struct domain_console
{
    _Atomic unsigned int refcnt;
    domid_t domid;
    pthread_mutex_t lock;
    uint64_t prod;                  /* bytes ever written */
    char ring[CONSOLE_RING];
};

struct domain_rt
{
    struct domain *d;
    pthread_mutex_t lock;
    pthread_cond_t wake;            /* runners wait here */
    pthread_cond_t parked;          /* domain_rt_sync waits here */
    unsigned int nr_running;
    _Atomic bool stopping;      /* read unlocked by runnable() */

    struct domain_console *con;     /* the domain's reference */

    struct vcpu_rt *vrt;            /* d->max_vcpus entries */
};

uint64_t hv_system_time(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static struct vcpu_rt *vrt_of(const struct vcpu *v)
{
    return v->runner;
}

/* ------------------------------------------------------------------------
 * TLB flushes (synchronous, see the top of the file)
 * ------------------------------------------------------------------------ */

void flush_tlb_domain(struct domain *d)
{
    struct vcpu *v;

    if ( !d || !d->vcpu )
        return;
    /* The time pages' TLB-flush timestamps are taken from. */
    atomic_fetch_add_explicit(&host.tlbflush_clock, 1, memory_order_relaxed);
    for_each_vcpu ( d, v )
        atomic_fetch_add(&v->tlb_flush_gen, 1);
    for_each_vcpu ( d, v )
    {
        struct vcpu_rt *r = vrt_of(v);
        uint64_t seq;

        if ( !r || v == current )
            continue;
        seq = atomic_load(&r->access_seq);
        /* Wait for the access in flight (if any) to finish. */
        while ( (seq & 1) && atomic_load(&r->access_seq) == seq )
            cpu_relax();
    }
}

static void tlb_check_flush(struct vcpu_rt *r)
{
    uint64_t gen = atomic_load(&r->v->tlb_flush_gen);

    if ( gen != r->tlb_gen )
    {
        memset(r->tlb, 0, sizeof(r->tlb));
        r->tlb_gen = gen;
    }
}

static void access_begin(struct vcpu_rt *r)
{
    atomic_fetch_add(&r->access_seq, 1);    /* seq_cst: odd, then check */
    tlb_check_flush(r);
}

static void access_end(struct vcpu_rt *r)
{
    atomic_fetch_add(&r->access_seq, 1);
}

/* ------------------------------------------------------------------------
 * The page-table walk
 * ------------------------------------------------------------------------ */

#define WALK_WRITE 1U
#define WALK_FETCH 2U

/*
 * Bits 63..47 all equal.  Shifting left first would overflow a signed
 * value for every non-canonical address a guest names (undefined).
 */
static bool is_canonical(uint64_t va)
{
    return ((int64_t)va >> 47) == ((int64_t)va >> 63);
}

/*
 * Set bits in a live page-table entry (A, D) if not yet set.  As in Xen's
 * guest_walk_tables, the table whose entry changed is dirty: a live
 * migration must send it again.
 */
static void pte_set_bits(struct domain *d, mfn_t table, intpte_t *p,
                         intpte_t e, intpte_t bits)
{
    if ( (e & bits) == bits )
        return;
    __atomic_fetch_or(p, bits, __ATOMIC_RELAXED);
    paging_mark_dirty(d, table);
}

/*
 * Translate va for access `acc` as the MMU does for a ring-3 access, which
 * is what every access of a 64-bit PV guest kernel is on Xen.  Returns
 * ISA_OP_OK with *mfn and the permissions, or ISA_OP_FAULT with f filled
 * (#PF or #GP).
 *
 * As on hardware, the walk first looks for a complete translation: a
 * missing entry at any level is a not-present fault (P clear in the error
 * code), whatever the permissions of the levels above it.  Only a complete
 * translation is checked for permissions, accumulated over all four
 * levels: every entry must have U/S, a write needs RW everywhere and a
 * fetch NX nowhere; a violation is a protection fault (P set).  The error
 * code always has U/S (a user-mode access) and, for a fetch, I/D (Xen runs
 * with NX on).  Accessed and dirty bits are set only once the access is
 * allowed, so a refused access writes nothing, and never into the
 * hypervisor's own tables behind slots 256..271.
 */
static int walk(struct vcpu_rt *r, uint64_t va, unsigned int acc, mfn_t *mfn,
                uint64_t *perms, struct isa_fault *f)
{
    mfn_t table = r->v->guest_table;
    mfn_t tables[4];
    intpte_t *ptrs[4], ptes[4];
    bool w = true, x = true, u = true;
    unsigned int n = 0;
    uint64_t pfec = ISA_PFEC_USER |
                    (acc & WALK_WRITE ? ISA_PFEC_WRITE : 0) |
                    (acc & WALK_FETCH ? ISA_PFEC_INSN : 0);

    if ( !is_canonical(va) )
    {
        f->vector = ISA_VEC_GP;
        f->error_code = 0;
        f->va = va;
        return ISA_OP_FAULT;
    }
    r->last_pte = 0;
    for ( int level = 4; level >= 1; level-- )
    {
        unsigned int idx = (va >> (12 + 9 * (level - 1))) & 511;
        intpte_t *p, e;

        if ( !table || !mfn_valid(table) )
            goto pf;
        p = (intpte_t *)map_domain_page(table) + idx;
        e = __atomic_load_n(p, __ATOMIC_ACQUIRE);
        r->last_pte = e;
        if ( !(e & _PAGE_PRESENT) )
            goto pf;
        tables[n] = table;
        ptrs[n] = p;
        ptes[n++] = e;
        w &= !!(e & _PAGE_RW);
        x &= !(e & _PAGE_NX);
        u &= !!(e & _PAGE_USER);
        if ( level == 1 || ((level == 2 || level == 3) && (e & _PAGE_PSE)) )
        {
            uint64_t span = 1ULL << (12 + 9 * (level - 1));
            mfn_t base = pte_mfn(e) & ~((span >> PAGE_SHIFT) - 1);

            *mfn = base + ((va & (span - 1)) >> PAGE_SHIFT);
            break;
        }
        table = pte_mfn(e);
    }
    if ( !u || ((acc & WALK_WRITE) && !w) || ((acc & WALK_FETCH) && !x) )
    {
        pfec |= ISA_PFEC_PRESENT;
        goto pf;
    }
    if ( !mfn_valid(*mfn) )
        goto pf;
    for ( unsigned int i = 0; i < n; i++ )
        pte_set_bits(r->v->domain, tables[i], ptrs[i], ptes[i],
                     _PAGE_ACCESSED |
                     ((i == n - 1 && (acc & WALK_WRITE)) ? _PAGE_DIRTY : 0));
    *perms = (w ? TLB_W : 0) | (x ? TLB_X : 0);
    return ISA_OP_OK;

 pf:
    f->vector = ISA_VEC_PF;
    f->error_code = (uint32_t)pfec;
    f->va = va;
    return ISA_OP_FAULT;
}

/* Translate through the TLB; marks the frame dirty on a first write. */
static int translate(struct vcpu_rt *r, uint64_t va, unsigned int acc,
                     mfn_t *mfn, struct isa_fault *f)
{
    struct tlb_entry *t = &r->tlb[(va >> PAGE_SHIFT) % TLB_ENTRIES];
    uint64_t need = TLB_VALID | ((acc & WALK_WRITE) ? TLB_W : 0) |
                    ((acc & WALK_FETCH) ? TLB_X : 0);
    uint64_t perms;
    int rc;

    if ( t->vpn == va >> PAGE_SHIFT && (t->val & need) == need )
    {
        *mfn = t->val >> PAGE_SHIFT;
        return ISA_OP_OK;
    }
    rc = walk(r, va, acc, mfn, &perms, f);
    if ( rc != ISA_OP_OK )
        return rc;
    /*
     * Cache write permission only for an access that writes, after the
     * frame is marked dirty: the first write after a CLEAN (which flushes)
     * marks the page again.
     */
    if ( acc & WALK_WRITE )
    {
        /* What a shadow write fault is on Xen: count it while logging. */
        if ( paging_mode_log_dirty(r->v->domain) )
            paging_note_write_fault(r->v->domain);
        paging_mark_dirty(r->v->domain, *mfn);
    }
    else
        perms &= ~TLB_W;
    t->vpn = va >> PAGE_SHIFT;
    t->val = (*mfn << PAGE_SHIFT) | perms | TLB_VALID;
    return ISA_OP_OK;
}

/*
 * Copy between guest virtual memory and buf, page by page.  For stores
 * every page is translated before any byte is written, so a store either
 * happens whole or not at all (the ISA's precise-fault promise).
 */
static int guest_access(struct vcpu_rt *r, uint64_t va, void *buf,
                        size_t len, unsigned int acc, struct isa_fault *f)
{
    mfn_t mfns[3];
    unsigned int n = 0;
    uint64_t end = va + len;
    uint8_t *b = buf;
    int rc = ISA_OP_OK;

    if ( len > 2 * PAGE_SIZE )
        return ISA_OP_ABORT;
    access_begin(r);
    for ( uint64_t p = va & ~(PAGE_SIZE - 1); p < end; p += PAGE_SIZE )
    {
        rc = translate(r, p < va ? va : p, acc, &mfns[n++], f);
        if ( rc != ISA_OP_OK )
            goto out;
    }
    n = 0;
    for ( uint64_t p = va; p < end; )
    {
        size_t chunk = min((size_t)(end - p),
                           (size_t)(PAGE_SIZE - (p & (PAGE_SIZE - 1))));
        uint8_t *host_p = (uint8_t *)map_domain_page(mfns[n++]) +
                          (p & (PAGE_SIZE - 1));

        if ( acc & WALK_WRITE )
            memcpy(host_p, b, chunk);
        else
            memcpy(b, host_p, chunk);
        b += chunk;
        p += chunk;
    }
 out:
    access_end(r);
    return rc;
}

/* ------------------------------------------------------------------------
 * The ISA callbacks
 * ------------------------------------------------------------------------ */

static int op_fetch(void *cpu, uint64_t va, void *buf, unsigned int len,
                    struct isa_fault *f)
{
    return guest_access(cpu, va, buf, len, WALK_FETCH, f);
}

static int op_load(void *cpu, uint64_t va, void *buf, unsigned int len,
                   struct isa_fault *f)
{
    return guest_access(cpu, va, buf, len, 0, f);
}

static int op_store(void *cpu, uint64_t va, const void *buf, unsigned int len,
                    struct isa_fault *f)
{
    return guest_access(cpu, va, (void *)buf, len, WALK_WRITE, f);
}

static int op_fill(void *cpu, uint64_t va, uint64_t pattern, unsigned int len,
                   struct isa_fault *f)
{
    uint8_t buf[ISA_BULK_MAX];

    for ( unsigned int i = 0; i < len; i++ )
        buf[i] = (uint8_t)(pattern >> (8 * (i % 8)));
    return guest_access(cpu, va, buf, len, WALK_WRITE, f);
}

static uint64_t op_time(void *cpu)
{
    (void)cpu;
    return hv_system_time();
}

/*
 * The descriptor a selector names (the ldesc instruction), read as an x86
 * CPU reads it when it loads a segment register, with Xen's tables behind
 * it.  The GDT's frames are there since set_gdt took them; entries past
 * them read as zero, as Xen's zero page does, and ferry has no descriptors
 * of its own to show in the reserved ones.  An LDT page is mapped on its
 * first use (Xen's handle_ldt_mapping_fault): if it cannot be, the guest
 * gets the page fault at ldt_base + offset, or #GP if that address is not
 * canonical.  The mapping takes references, so it is bracketed like a
 * hypercall for the auditor.
 */
static int op_desc(void *cpu, uint16_t sel, uint64_t *desc,
                   struct isa_fault *f)
{
    struct vcpu_rt *r = cpu;
    struct vcpu *v = r->v;
    unsigned int idx = sel >> 3, offset = sel & ~7U;
    mfn_t mfn;

    if ( !(sel & 4) )
    {
        if ( idx >= FIRST_RESERVED_GDT_ENTRY )
            goto gp;
        mfn = v->gdt_frames[idx / 512];
        if ( !mfn )
        {
            *desc = 0;
            return ISA_OP_OK;
        }
    }
    else
    {
        if ( idx >= v->ctxt.ldt_ents )
            goto gp;
        mfn = v->ldt_frames[offset >> PAGE_SHIFT];
        if ( !mfn )
        {
            uint64_t va = v->ctxt.ldt_base + offset;
            bool mapped;

            hv_audit_before_hypercall();
            mapped = pv_map_ldt_shadow_page(offset);
            hv_audit_after_hypercall("an LDT mapping fault");
            if ( !mapped )
            {
                f->vector = is_canonical(va) ? ISA_VEC_PF : ISA_VEC_GP;
                f->error_code = is_canonical(va) ? 0 : offset | 4;
                f->va = is_canonical(va) ? va : 0;
                return ISA_OP_FAULT;
            }
            mfn = v->ldt_frames[offset >> PAGE_SHIFT];
        }
    }
    *desc = __atomic_load_n((uint64_t *)map_domain_page(mfn) +
                            (offset & (PAGE_SIZE - 1)) / 8, __ATOMIC_RELAXED);
    return ISA_OP_OK;

 gp:
    f->vector = ISA_VEC_GP;
    f->error_code = sel & 0xfffc;
    f->va = 0;
    return ISA_OP_FAULT;
}

static long op_hypercall(void *cpu, struct cpu_user_regs *regs, int *action)
{
    struct vcpu_rt *r = cpu;

    return hv_guest_hypercall(r->v, regs, action);
}

static const struct isa_ops guest_ops = {
    .fetch = op_fetch,
    .load = op_load,
    .store = op_store,
    .fill = op_fill,
    .copy = NULL,                   /* bounce through load + store */
    .hypercall = op_hypercall,
    .time = op_time,
    .desc = op_desc,
};

/* Hypercall argument copies: -EFAULT unless every byte is reachable. */
static int copy_guest(struct vcpu *v, void *buf, uint64_t va, size_t len,
                      unsigned int acc)
{
    struct vcpu_rt *r = vrt_of(v);
    struct isa_fault f;

    /*
     * Xen's __addr_ok: the hypervisor never reads or writes its own range
     * (slots 256..271, the read-only M2P included) for a guest, nor
     * non-canonical addresses above the lower half.
     */
    if ( !r || (va >= (1ULL << 47) && va < HYPERVISOR_VIRT_END) )
        return -EFAULT;
    while ( len )
    {
        size_t chunk = min(len, (size_t)PAGE_SIZE);

        if ( guest_access(r, va, buf, chunk, acc, &f) != ISA_OP_OK )
            return -EFAULT;
        buf = (uint8_t *)buf + chunk;
        va += chunk;
        len -= chunk;
    }
    return 0;
}

int copy_from_guest(struct vcpu *v, void *dst, uint64_t va, size_t len)
{
    return copy_guest(v, dst, va, len, 0);
}

int copy_to_guest(struct vcpu *v, uint64_t va, const void *src, size_t len)
{
    return copy_guest(v, (void *)src, va, len, WALK_WRITE);
}

/* ------------------------------------------------------------------------
 * Events, timers and the control word
 * ------------------------------------------------------------------------ */

static uint8_t *shinfo(struct domain *d)
{
    return map_domain_page(__atomic_load_n(&d->shared_info_mfn,
                                           __ATOMIC_RELAXED));
}

/* Set the pending bits of event port on vCPU vcpu_id, waking no one. */
static void mark_event(struct domain *d, unsigned int vcpu_id,
                       unsigned int port)
{
    uint8_t *si = shinfo(d);
    uint64_t *pending = (uint64_t *)(si + SHINFO_EVTCHN_PENDING);
    uint8_t *vi = si + SHINFO_VCPU_INFO(vcpu_id);

    __atomic_fetch_or(&pending[port / 64], 1ULL << (port % 64),
                      __ATOMIC_RELAXED);
    __atomic_fetch_or((uint64_t *)(vi + VCPU_INFO_PENDING_SEL),
                      1ULL << (port / 64), __ATOMIC_RELAXED);
    __atomic_store_n(vi + VCPU_INFO_UPCALL_PENDING, 1, __ATOMIC_RELEASE);
}

/* Raise event port on vCPU vcpu_id: set pending bits, wake the runner. */
static void send_event(struct domain *d, unsigned int vcpu_id,
                       unsigned int port)
{
    mark_event(d, vcpu_id, port);
    domain_rt_kick(d);
}

static bool event_pending(struct vcpu *v)
{
    uint8_t *vi = shinfo(v->domain) + SHINFO_VCPU_INFO(v->vcpu_id);

    return __atomic_load_n(vi + VCPU_INFO_UPCALL_PENDING, __ATOMIC_ACQUIRE);
}

int domain_request_shutdown(struct domain *d, unsigned int reason)
{
    mfn_t mfn = __atomic_load_n(&d->shared_info_mfn, __ATOMIC_RELAXED);
    struct page_info *pg = mfn ? mfn_to_page(mfn) : NULL;
    uint64_t *ctl;

    if ( reason > SHUTDOWN_soft_reset )
        return -EINVAL;
    /*
     * Hold a reference on shared_info while writing it: a destroy running
     * at the same time may free it, and the frame must not be written
     * once it can belong to someone else.
     */
    if ( domain_is_dying(d) || !pg || !get_page(pg, d) )
        return -ESRCH;
    ctl = (uint64_t *)((uint8_t *)map_domain_page(mfn) + SHINFO_FERRY_CONTROL);
    __atomic_store_n(ctl, FERRY_CONTROL_MAGIC | (reason + 1), __ATOMIC_RELEASE);
    send_event(d, 0, FERRY_CONTROL_PORT);
    put_page(pg);
    return 0;
}

void vcpu_set_timer(struct vcpu *v, uint64_t deadline)
{
    struct vcpu_rt *r = vrt_of(v);

    if ( r )
        atomic_store(&r->timer_deadline, deadline);
    domain_rt_kick(v->domain);
}

/*
 * Fire the timer if due: returns true if it did.  The runner itself calls
 * this with rt->lock held (locked) while it waits; then it must not kick
 * (domain_rt_kick takes rt->lock), and need not: it re-checks at once.
 */
static bool timer_check(struct vcpu_rt *r, bool locked)
{
    uint64_t dl = atomic_load(&r->timer_deadline);

    if ( !dl || hv_system_time() < dl )
        return false;
    atomic_store(&r->timer_deadline, 0);
    if ( locked )
        mark_event(r->v->domain, r->v->vcpu_id, FERRY_TIMER_PORT);
    else
        send_event(r->v->domain, r->v->vcpu_id, FERRY_TIMER_PORT);
    return true;
}

/* ------------------------------------------------------------------------
 * The console ring
 * ------------------------------------------------------------------------ */

void domain_console_put(struct domain *d, const char *buf, size_t len)
{
    struct domain_rt *rt = d->rt;
    struct domain_console *con = rt ? rt->con : NULL;

    if ( !con )
        return;
    pthread_mutex_lock(&con->lock);
    for ( size_t i = 0; i < len; i++ )
        con->ring[(con->prod + i) % CONSOLE_RING] = buf[i];
    con->prod += len;
    pthread_mutex_unlock(&con->lock);
}

struct domain_console *domain_console_get(struct domain *d)
{
    struct domain_console *con = d->rt ? d->rt->con : NULL;

    if ( con )
        atomic_fetch_add(&con->refcnt, 1);
    return con;
}

void console_put(struct domain_console *con)
{
    if ( con && atomic_fetch_sub(&con->refcnt, 1) == 1 )
    {
        pthread_mutex_destroy(&con->lock);
        free(con);
    }
}

domid_t console_domid(const struct domain_console *con)
{
    return con->domid;
}

size_t console_read(struct domain_console *con, char *buf, size_t len,
                    uint64_t *cursor, uint64_t *lost)
{
    uint64_t from = *cursor;
    size_t n = 0;

    pthread_mutex_lock(&con->lock);
    *lost = 0;
    if ( con->prod > CONSOLE_RING && from < con->prod - CONSOLE_RING )
    {
        *lost = con->prod - CONSOLE_RING - from;
        from = con->prod - CONSOLE_RING;
    }
    if ( from > con->prod )
        from = con->prod;
    while ( from < con->prod && n < len )
        buf[n++] = con->ring[from++ % CONSOLE_RING];
    pthread_mutex_unlock(&con->lock);
    *cursor = from;
    return n;
}

/* ------------------------------------------------------------------------
 * Crashes and faults
 * ------------------------------------------------------------------------ */

void domain_crash(struct domain *d, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    hv_printk(HVLOG_ERR, "d%u: domain crashed: %s", d->domain_id, msg);
    domain_shutdown(d, SHUTDOWN_crash);
}

static void handle_fault(struct vcpu_rt *r, struct isa_fault *f)
{
    struct vcpu *v = r->v;
    struct cpu_user_regs *regs = &v->ctxt.user_regs;
    uint64_t handler = f->vector < 256 ? v->ctxt.trap_ctxt[f->vector].address
                                       : 0;
    struct isa_fault nested;

    /*
     * The walk computed the hardware's error code, U/S set.  Xen re-sets
     * that bit for the guest's mode before delivering (pv_inject_event):
     * a ferry guest always runs in kernel mode, so it sees U/S clear.
     */
    if ( f->vector == ISA_VEC_PF )
        f->error_code &= ~ISA_PFEC_USER;
    if ( handler &&
         isa_deliver_fault(regs, &guest_ops, r, handler, f, &nested) ==
         ISA_OP_OK )
        return;
    if ( f->vector == ISA_VEC_PF )
        domain_crash(v->domain,
                     "vCPU %u: unhandled page fault at %#" PRIx64
                     " (rip %#" PRIx64 ", error code %#x, pte %#" PRIx64 ")",
                     v->vcpu_id, f->va, f->rip, f->error_code, r->last_pte);
    else
        domain_crash(v->domain,
                     "vCPU %u: unhandled fault vector %u at rip %#" PRIx64,
                     v->vcpu_id, f->vector, f->rip);
}

/* ------------------------------------------------------------------------
 * Runner threads
 * ------------------------------------------------------------------------ */

static bool runnable(const struct vcpu *v)
{
    const struct domain *d = v->domain;

    return !d->rt->stopping && !domain_is_dying(d) &&
           atomic_load(&d->controller_pause_count) == 0 &&
           atomic_load(&v->pause_count) == 0 &&
           !atomic_load(&v->is_down) && v->is_initialised &&
           v->guest_table && !atomic_load(&d->is_shut_down) &&
           !atomic_load(&v->blocked);
}

/* Run guest code until the vCPU stops being runnable. */
static void run(struct vcpu_rt *r)
{
    struct vcpu *v = r->v;
    struct isa_fault f;

    while ( runnable(v) )
    {
        uint64_t t0 = hv_system_time();
        int why = isa_step(&v->ctxt.user_regs, &guest_ops, r, STEP_BUDGET, &f);
        uint64_t t1 = hv_system_time();
        unsigned int pct = atomic_load(&v->domain->throttle_pct);

        atomic_fetch_add(&v->cpu_time, t1 - t0);
        if ( pct || r->thr.ran )
            r->throttled_until = sched_throttle_charge(&r->thr, pct, t1,
                                                       t1 - t0);
        switch ( why )
        {
        case ISA_EXIT_FAULT:
            handle_fault(r, &f);
            break;
        case ISA_EXIT_HALT:
            /* halt: wait for an event, as hlt with interrupts on. */
            if ( !event_pending(v) )
                atomic_store(&v->blocked, true);
            break;
        case ISA_EXIT_ABORT:
            domain_crash(v->domain, "vCPU %u: internal error at rip %#" PRIx64,
                         v->vcpu_id, v->ctxt.user_regs.rip);
            break;
        default:
            break;
        }
        timer_check(r, false);
        if ( r->throttled_until )
            return;
    }
}

/* Wait on rt->wake (rt->lock held) until woken or the deadline dl. */
static void wait_until(struct domain_rt *rt, uint64_t dl)
{
    struct timespec ts;
    uint64_t now = hv_system_time();
    uint64_t wait = dl > now ? dl - now : 0;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(wait / 1000000000ULL);
    ts.tv_nsec += (long)(wait % 1000000000ULL);
    if ( ts.tv_nsec >= 1000000000L )
    {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&rt->wake, &rt->lock, &ts);
}

/* Block until runnable or stopping; wakes on timer deadlines and events. */
static bool wait_runnable(struct domain_rt *rt, struct vcpu_rt *r)
{
    struct vcpu *v = r->v;

    for ( ;; )
    {
        if ( rt->stopping )
            return false;
        if ( atomic_load(&v->blocked) &&
             (event_pending(v) || timer_check(r, true)) )
            atomic_store(&v->blocked, false);
        if ( runnable(v) )
        {
            /* Out of its share: parked until the period ends, unless the
             * throttle was lifted meanwhile (which wakes us). */
            uint64_t until = r->throttled_until;

            if ( !until || !atomic_load(&v->domain->throttle_pct) ||
                 hv_system_time() >= until )
            {
                r->throttled_until = 0;
                return true;
            }
            wait_until(rt, until);
            continue;
        }

        uint64_t dl = atomic_load(&r->timer_deadline);

        if ( dl && atomic_load(&v->blocked) )
            wait_until(rt, dl);
        else
            pthread_cond_wait(&rt->wake, &rt->lock);
    }
}

static void *runner_main(void *arg)
{
    struct vcpu_rt *r = arg;
    struct domain_rt *rt = r->v->domain->rt;

    set_current(r->v);
    pthread_mutex_lock(&rt->lock);
    while ( wait_runnable(rt, r) )
    {
        rt->nr_running++;
        atomic_store(&r->v->running, true);
        atomic_store(&r->v->processor, max(sched_getcpu(), 0));
        pthread_mutex_unlock(&rt->lock);

        run(r);

        pthread_mutex_lock(&rt->lock);
        atomic_store(&r->v->running, false);
        rt->nr_running--;
        pthread_cond_broadcast(&rt->parked);
    }
    pthread_mutex_unlock(&rt->lock);
    /* A deferred put left by the guest's last hypercall. */
    while ( put_old_guest_table(r->v) == -ERESTART )
        ;
    set_current(NULL);
    return NULL;
}

/* ------------------------------------------------------------------------
 * The domain runtime's life cycle
 * ------------------------------------------------------------------------ */

int domain_rt_init(struct domain *d)
{
    struct domain_rt *rt = calloc(1, sizeof(*rt));

    if ( !rt )
        return -ENOMEM;
    rt->d = d;
    rt->con = malloc(sizeof(*rt->con));
    rt->vrt = calloc(d->max_vcpus ? d->max_vcpus : 1, sizeof(*rt->vrt));
    if ( !rt->con || !rt->vrt )
    {
        free(rt->con);
        free(rt->vrt);
        free(rt);
        return -ENOMEM;
    }
    atomic_init(&rt->con->refcnt, 1);
    rt->con->domid = d->domain_id;
    rt->con->prod = 0;
    pthread_mutex_init(&rt->con->lock, NULL);
    pthread_mutex_init(&rt->lock, NULL);
    pthread_cond_init(&rt->wake, NULL);
    pthread_cond_init(&rt->parked, NULL);
    for ( unsigned int i = 0; i < d->max_vcpus; i++ )
    {
        rt->vrt[i].v = d->vcpu[i];
        d->vcpu[i]->runner = &rt->vrt[i];
    }
    d->rt = rt;
    return 0;
}

void domain_rt_kick(struct domain *d)
{
    struct domain_rt *rt = d->rt;

    if ( !rt )
        return;
    pthread_mutex_lock(&rt->lock);
    for ( unsigned int i = 0; i < d->max_vcpus && !rt->stopping; i++ )
    {
        struct vcpu_rt *r = &rt->vrt[i];

        if ( r->has_thread || !r->v->is_initialised ||
             atomic_load(&r->v->is_down) )
            continue;
        if ( pthread_create(&r->thread, NULL, runner_main, r) == 0 )
            r->has_thread = true;
        else
            domain_crash(d, "cannot start a thread for vCPU %u", i);
    }
    pthread_cond_broadcast(&rt->wake);
    pthread_mutex_unlock(&rt->lock);
}

uint64_t sched_throttle_charge(struct sched_throttle *t, unsigned int pct,
                               uint64_t now, uint64_t ran_ns)
{
    uint64_t share, budget, earned;

    if ( !pct )
    {
        /* Unthrottled: nothing owed, and a later throttle starts afresh. */
        t->pct = 0;
        t->start = now;
        t->ran = 0;
        return 0;
    }
    pct = min(pct, SCHED_THROTTLE_MAX);
    share = 100 - pct;
    budget = SCHED_THROTTLE_PERIOD_NS * share / 100;
    if ( pct != t->pct )
    {
        /* A new cap counts from now, with one budget in hand. */
        t->pct = pct;
        t->start = now > SCHED_THROTTLE_PERIOD_NS
                   ? now - SCHED_THROTTLE_PERIOD_NS : 0;
        t->ran = 0;
    }
    t->ran += ran_ns;
    /*
     * The vCPU earns share% of the wall clock since start.  It may bank
     * at most one period's budget (a vCPU that was blocked gains no
     * right to a long burst); once it has run more than it earned it is
     * parked until it has earned a budget again, so that it runs and
     * parks in slices of about one period.
     */
    earned = (now - t->start) * share / 100;
    if ( earned > t->ran + budget )
    {
        t->start = now - (t->ran + budget) * 100 / share;
        earned = t->ran + budget;
    }
    if ( t->ran <= earned )
        return 0;
    return t->start + (t->ran + budget) * 100 / share;
}

int domain_set_throttle(struct domain *d, unsigned int pct)
{
    struct domain_rt *rt = d->rt;
    unsigned int old;

    if ( pct > SCHED_THROTTLE_MAX )
        return -EINVAL;
    old = atomic_exchange(&d->throttle_pct, pct);
    if ( old == pct )
        return 0;
    printk("d%u: vCPU throttle %u%% (was %u%%)", d->domain_id, pct, old);
    /* A lower cap may let parked runners go at once. */
    if ( rt && pct < old )
    {
        pthread_mutex_lock(&rt->lock);
        pthread_cond_broadcast(&rt->wake);
        pthread_mutex_unlock(&rt->lock);
    }
    return 0;
}

void domain_rt_sync(struct domain *d)
{
    struct domain_rt *rt = d->rt;

    if ( !rt )
        return;
    pthread_mutex_lock(&rt->lock);
    while ( rt->nr_running )
        pthread_cond_wait(&rt->parked, &rt->lock);
    pthread_mutex_unlock(&rt->lock);
}

void vcpu_pause(struct vcpu *v)
{
    struct domain_rt *rt = v->domain->rt;

    atomic_fetch_add(&v->pause_count, 1);
    if ( !rt || v == current )
        return;
    pthread_mutex_lock(&rt->lock);
    while ( atomic_load(&v->running) )
        pthread_cond_wait(&rt->parked, &rt->lock);
    pthread_mutex_unlock(&rt->lock);
}

void vcpu_unpause(struct vcpu *v)
{
    if ( atomic_fetch_sub(&v->pause_count, 1) == 1 )
        domain_rt_kick(v->domain);
}

void domain_pause(struct domain *d)
{
    struct vcpu *v;

    for_each_vcpu ( d, v )
        vcpu_pause(v);
}

void domain_unpause(struct domain *d)
{
    struct vcpu *v;

    for_each_vcpu ( d, v )
        vcpu_unpause(v);
}

void domain_rt_stop(struct domain *d)
{
    struct domain_rt *rt = d->rt;

    if ( !rt )
        return;
    pthread_mutex_lock(&rt->lock);
    rt->stopping = true;
    pthread_cond_broadcast(&rt->wake);
    pthread_mutex_unlock(&rt->lock);
    for ( unsigned int i = 0; i < d->max_vcpus; i++ )
        if ( rt->vrt[i].has_thread )
        {
            pthread_join(rt->vrt[i].thread, NULL);
            rt->vrt[i].has_thread = false;
        }
}

/*
 * The runtime's memory goes only with the domain itself: until then other
 * threads (a frame of d freed by someone else's hypercall) may still call
 * flush_tlb_domain(d), which reads each vCPU's runner.
 */
void domain_rt_destroy(struct domain *d)
{
    struct domain_rt *rt = d->rt;

    if ( !rt )
        return;
    domain_rt_stop(d);
    for ( unsigned int i = 0; i < d->max_vcpus; i++ )
        d->vcpu[i]->runner = NULL;
    d->rt = NULL;
    pthread_mutex_destroy(&rt->lock);
    pthread_cond_destroy(&rt->wake);
    pthread_cond_destroy(&rt->parked);
    console_put(rt->con);
    free(rt->vrt);
    free(rt);
}
