/* SPDX-License-Identifier: MIT */
/*
 * Guest hypercalls: the `hcall` instruction of the guest ISA lands here
 * with the hypercall number in rax and arguments in rdi, rsi, rdx, r10, r8
 * (Xen's x86-64 PV convention).  Arguments that are guest pointers are
 * copied through the guest's page tables (copy_from_guest/copy_to_guest in
 * vcpu.c); a pointer the guest cannot reach gives -EFAULT, as on Xen.
 *
 * Batched hypercalls (mmu_update, mmuext_op, memory_op extents) are
 * processed in chunks through a bounce buffer.  Between chunks, if the
 * domain or vCPU has been asked to pause, the hypercall stops with a
 * continuation exactly as Xen's do: the argument registers are advanced
 * past the work done, mmu_update/mmuext_op mark the count with
 * MMU_UPDATE_PREEMPTED so that *pdone accumulates, and the guest
 * re-executes the hcall instruction when it runs again.  A hostile guest
 * can therefore make one hypercall as long as it likes without delaying a
 * pause, a save or a migration.
 */
#include <stdlib.h>
#include <string.h>

#include "hv.h"
#include "isa.h"

#define CHUNK 256


#define XENVER_version 0
#define VCPUOP_is_up   3

/* Should a long hypercall stop here and continue later? */
static bool must_yield(const struct vcpu *v)
{
    const struct domain *d = v->domain;

    return atomic_load(&d->controller_pause_count) ||
           atomic_load(&v->pause_count) || domain_is_dying(d) ||
           atomic_load(&d->is_shut_down);
}

/* ------------------------------------------------------------------------
 * mmu_update and mmuext_op
 * ------------------------------------------------------------------------ */

typedef long (*batch_fn)(void *reqs, unsigned int count, unsigned int *done,
                         unsigned int foreigndom);

static long mmu_update_fn(void *reqs, unsigned int count, unsigned int *done,
                          unsigned int foreigndom)
{
    return do_mmu_update(reqs, count, done, foreigndom);
}

static long mmuext_fn(void *reqs, unsigned int count, unsigned int *done,
                      unsigned int foreigndom)
{
    return do_mmuext_op(reqs, count, done, foreigndom);
}

/* rdi = requests, rsi = count (| MMU_UPDATE_PREEMPTED), rdx = pdone. */
static long batch_hypercall(struct vcpu *v, struct cpu_user_regs *regs,
                            int *action, size_t elem, batch_fn fn)
{
    uint8_t buf[CHUNK * sizeof(struct mmu_update)];
    uint64_t uptr = regs->rdi, pdone = regs->rdx;
    uint32_t count = (uint32_t)regs->rsi, total = 0;
    unsigned int fd = (unsigned int)regs->r10;
    bool cont = count & MMU_UPDATE_PREEMPTED;
    long rc = 0;

    _Static_assert(sizeof(struct mmuext_op) <= sizeof(struct mmu_update) * 2,
                   "bounce buffer");
    count &= ~MMU_UPDATE_PREEMPTED;
    if ( cont && pdone && copy_from_guest(v, &total, pdone, sizeof(total)) )
        return -EFAULT;
    while ( count && !rc )
    {
        unsigned int n = min(count, (uint32_t)(sizeof(buf) / elem)), done = 0;

        if ( copy_from_guest(v, buf, uptr, n * elem) )
            return -EFAULT;
        do {
            rc = fn(buf, n, &done, fd);
        } while ( rc == -ERESTART );
        total += done;
        uptr += (uint64_t)done * elem;
        count -= done;
        if ( !rc && count && must_yield(v) )
        {
            /* Continuation: re-execute with the rest, pdone accumulating. */
            regs->rdi = uptr;
            regs->rsi = count | MMU_UPDATE_PREEMPTED;
            if ( pdone && copy_to_guest(v, pdone, &total, sizeof(total)) )
                return -EFAULT;
            *action = ISA_HCALL_RESTART;
            return 0;
        }
    }
    if ( pdone && copy_to_guest(v, pdone, &total, sizeof(total)) )
        return -EFAULT;
    return rc;
}

/* ------------------------------------------------------------------------
 * memory_op
 * ------------------------------------------------------------------------ */

/* The guest's struct xen_memory_reservation (32 bytes). */
struct guest_reservation
{
    uint64_t extent_start;
    uint64_t nr_extents;
    uint32_t extent_order;
    uint32_t mem_flags;
    uint16_t domid;
    uint16_t pad[3];
};

static long memop_extents(struct vcpu *v, unsigned int cmd, uint64_t arg)
{
    struct guest_reservation g;
    struct xen_memory_reservation r;
    uint64_t ext[CHUNK];
    uint64_t done = 0;

    if ( copy_from_guest(v, &g, arg, sizeof(g)) )
        return -EFAULT;
    while ( done < g.nr_extents )
    {
        uint64_t n = min(g.nr_extents - done, (uint64_t)CHUNK);
        uint64_t va = g.extent_start + done * sizeof(uint64_t);
        long ret;

        if ( g.extent_start && copy_from_guest(v, ext, va, n * sizeof(*ext)) )
            return done ? (long)done : -EFAULT;
        memset(&r, 0, sizeof(r));
        r.extent_start = g.extent_start ? ext : NULL;
        r.nr_extents = n;
        r.extent_order = g.extent_order;
        r.mem_flags = g.mem_flags;
        r.domid = g.domid;
        unsigned int c = cmd;

        do {
            ret = do_memory_op(&c, &r);
        } while ( ret == -ERESTART );
        if ( ret < 0 )
            return done ? (long)done : ret;
        if ( g.extent_start &&
             copy_to_guest(v, va, ext, (size_t)ret * sizeof(*ext)) )
            return -EFAULT;
        done += (uint64_t)ret;
        if ( (uint64_t)ret < n )
            break;
    }
    return (long)done;
}

static long hc_memory_op(struct vcpu *v, struct cpu_user_regs *regs)
{
    unsigned int cmd = (unsigned int)regs->rdi & MEMOP_CMD_MASK;
    domid_t domid;

    switch ( cmd )
    {
    case XENMEM_increase_reservation:
    case XENMEM_decrease_reservation:
    case XENMEM_populate_physmap:
        return memop_extents(v, cmd, regs->rsi);
    case XENMEM_maximum_ram_page:
        return do_memory_op(&cmd, NULL);
    case XENMEM_current_reservation:
    case XENMEM_maximum_reservation:
    case XENMEM_maximum_gpfn:
        if ( copy_from_guest(v, &domid, regs->rsi, sizeof(domid)) )
            return -EFAULT;
        return do_memory_op(&cmd, &(struct xen_memory_domain){ .domid = domid });
    case XENMEM_add_to_physmap:
    case XENMEM_remove_from_physmap:
    case XENMEM_add_to_physmap_batch:
        /* A PV guest is not translated: Xen says -EACCES, so do we. */
        return -EACCES;
    default:
        return -ENOSYS;
    }
}

/* ------------------------------------------------------------------------
 * Scheduling, timers, console, version
 * ------------------------------------------------------------------------ */

static long hc_sched_op(struct vcpu *v, struct cpu_user_regs *regs,
                        int *action)
{
    uint32_t reason;

    switch ( regs->rdi )
    {
    case SCHEDOP_yield:
        *action = ISA_HCALL_STOP;
        return 0;
    case SCHEDOP_block:
    {
        uint8_t *vi = (uint8_t *)map_domain_page(v->domain->shared_info_mfn) +
                      SHINFO_VCPU_INFO(v->vcpu_id);

        /* Unmask events, and block unless one is already pending. */
        __atomic_store_n(vi + VCPU_INFO_UPCALL_MASK, 0, __ATOMIC_RELAXED);
        if ( !__atomic_load_n(vi + VCPU_INFO_UPCALL_PENDING, __ATOMIC_ACQUIRE) )
            atomic_store(&v->blocked, true);
        *action = ISA_HCALL_STOP;
        return 0;
    }
    case SCHEDOP_shutdown:
        if ( copy_from_guest(v, &reason, regs->rsi, sizeof(reason)) )
            return -EFAULT;
        printk("d%u: shutdown requested by the guest (reason %u)",
               v->domain->domain_id, reason);
        domain_shutdown(v->domain, reason);
        *action = ISA_HCALL_STOP;
        return 0;
    case SCHEDOP_shutdown_code:
    {
        int none = -1;

        if ( copy_from_guest(v, &reason, regs->rsi, sizeof(reason)) )
            return -EFAULT;
        atomic_compare_exchange_strong(&v->domain->shutdown_code, &none,
                                       (int)reason);
        return 0;
    }
    case SCHEDOP_remote_shutdown:
        return -EPERM;
    default:
        return -ENOSYS;
    }
}

static long hc_console_io(struct vcpu *v, struct cpu_user_regs *regs)
{
    char buf[1024];
    uint64_t count = regs->rsi, va = regs->rdx;

    switch ( regs->rdi )
    {
    case CONSOLEIO_write:
        while ( count )
        {
            size_t n = min(count, (uint64_t)sizeof(buf));

            if ( copy_from_guest(v, buf, va, n) )
                return -EFAULT;
            domain_console_put(v->domain, buf, n);
            count -= n;
            va += n;
        }
        return 0;
    case CONSOLEIO_read:
        if ( count > INT32_MAX )
            return -E2BIG;
        return -EPERM;              /* the console domain only */
    default:
        return -ENOSYS;
    }
}

static long hc_vm_assist(struct vcpu *v, struct cpu_user_regs *regs)
{
    struct domain *d = v->domain;
    uint64_t type = regs->rsi;

    if ( type != VMASST_TYPE_writable_pagetables &&
         type != VMASST_TYPE_m2p_strict )
        return -EINVAL;
    switch ( regs->rdi )
    {
    case VMASST_CMD_enable:
        __atomic_fetch_or(&d->vm_assist, 1ULL << type, __ATOMIC_RELAXED);
        return 0;
    case VMASST_CMD_disable:
        __atomic_fetch_and(&d->vm_assist, ~(1ULL << type), __ATOMIC_RELAXED);
        return 0;
    default:
        return -ENOSYS;
    }
}

/* ------------------------------------------------------------------------
 * Grant tables: only the ops whose structures carry no guest pointer need
 * no translation; setup_table carries one (the frame list).
 * ------------------------------------------------------------------------ */

struct guest_setup_table
{
    domid_t dom;
    uint16_t pad;
    uint32_t nr_frames;
    int16_t status;
    uint16_t pad2[3];
    uint64_t frame_list;
};

static long hc_grant_table_op(struct vcpu *v, struct cpu_user_regs *regs)
{
    /* Xen's order: grant_table_op(cmd, uop, count). */
    unsigned int cmd = (unsigned int)regs->rdi, count = (unsigned int)regs->rdx;
    uint64_t uop = regs->rsi;
    long rc;

    switch ( cmd )
    {
    case GNTTABOP_setup_table:
    {
        struct guest_setup_table g;
        struct gnttab_setup_table s;
        uint64_t frames[64];

        if ( count != 1 )
            return -EINVAL;
        if ( copy_from_guest(v, &g, uop, sizeof(g)) )
            return -EFAULT;
        memset(&s, 0, sizeof(s));
        s.dom = g.dom;
        s.nr_frames = g.nr_frames;
        s.frame_list = frames;
        if ( g.nr_frames > ARRAY_SIZE(frames) )
            s.nr_frames = ARRAY_SIZE(frames) + 1;   /* over the max */
        rc = do_grant_table_op(cmd, &s, 1);
        g.status = s.status;
        if ( !rc && s.status == GNTST_okay &&
             copy_to_guest(v, g.frame_list, frames,
                           s.nr_frames * sizeof(uint64_t)) )
            return -EFAULT;
        if ( copy_to_guest(v, uop, &g, sizeof(g)) )
            return -EFAULT;
        return rc;
    }
    case GNTTABOP_map_grant_ref:
    case GNTTABOP_unmap_grant_ref:
    {
        size_t elem = cmd == GNTTABOP_map_grant_ref
                      ? sizeof(struct gnttab_map_grant_ref)
                      : sizeof(struct gnttab_unmap_grant_ref);
        uint8_t buf[16 * sizeof(struct gnttab_map_grant_ref)];

        while ( count )
        {
            unsigned int n = min(count, 16U);

            if ( copy_from_guest(v, buf, uop, n * elem) )
                return -EFAULT;
            rc = do_grant_table_op(cmd, buf, n);
            if ( copy_to_guest(v, uop, buf, n * elem) )
                return -EFAULT;
            if ( rc )
                return rc;
            count -= n;
            uop += n * elem;
        }
        return 0;
    }
    default:
        return -ENOSYS;
    }
}

/*
 * set_trap_table (Xen's do_set_trap_table): an array of struct trap_info
 * ended by an entry whose address is 0; each entry replaces the handler of
 * its vector.  A null array clears the whole table.  The handlers live in
 * the vCPU context, so they travel with it in a migration stream.
 */
static long hc_set_trap_table(struct vcpu *v, uint64_t va)
{
    struct trap_info t;

    if ( !va )
    {
        memset(v->ctxt.trap_ctxt, 0, sizeof(v->ctxt.trap_ctxt));
        return 0;
    }
    for ( unsigned int i = 0; i < 256; i++, va += sizeof(t) )
    {
        if ( copy_from_guest(v, &t, va, sizeof(t)) )
            return -EFAULT;
        if ( !t.address )
            return 0;
        v->ctxt.trap_ctxt[t.vector] = t;
    }
    return 0;
}

/*
 * set_gdt (Xen's do_set_gdt): rdi = the guest address of an array of
 * ceil(entries / 512) frame numbers (u64), rsi = entries (an unsigned int,
 * as Xen's handler declares it).  The entry count is checked before the
 * copy so that the copy is bounded.
 */
static long hc_set_gdt(struct vcpu *v, uint64_t frame_list,
                       unsigned int entries)
{
    uint64_t frames[16];

    if ( entries > FIRST_RESERVED_GDT_ENTRY )
        return -EINVAL;
    if ( copy_from_guest(v, frames, frame_list,
                         (entries + 511) / 512 * sizeof(frames[0])) )
        return -EFAULT;
    return do_set_gdt(frames, entries);
}

/* ------------------------------------------------------------------------
 * The dispatcher
 * ------------------------------------------------------------------------ */

long hv_guest_hypercall(struct vcpu *v, struct cpu_user_regs *regs,
                        int *action)
{
    long rc;

    hv_audit_before_hypercall();
    switch ( regs->rax )
    {
    case __HYPERVISOR_set_trap_table:
        rc = hc_set_trap_table(v, regs->rdi);
        break;
    case __HYPERVISOR_mmu_update:
        rc = batch_hypercall(v, regs, action, sizeof(struct mmu_update),
                             mmu_update_fn);
        break;
    case __HYPERVISOR_set_gdt:
        rc = hc_set_gdt(v, regs->rdi, (unsigned int)regs->rsi);
        break;
    case __HYPERVISOR_update_descriptor:
        rc = do_update_descriptor(regs->rdi, regs->rsi);
        break;
    case __HYPERVISOR_mmuext_op:
        rc = batch_hypercall(v, regs, action, sizeof(struct mmuext_op),
                             mmuext_fn);
        break;
    case __HYPERVISOR_update_va_mapping:
        rc = do_update_va_mapping(regs->rdi, regs->rsi, regs->rdx);
        break;
    case __HYPERVISOR_memory_op:
        rc = hc_memory_op(v, regs);
        break;
    case __HYPERVISOR_sched_op:
        rc = hc_sched_op(v, regs, action);
        break;
    case __HYPERVISOR_set_timer_op:
        vcpu_set_timer(v, regs->rdi);
        rc = 0;
        break;
    case __HYPERVISOR_console_io:
        rc = hc_console_io(v, regs);
        break;
    case __HYPERVISOR_grant_table_op:
        rc = hc_grant_table_op(v, regs);
        break;
    case __HYPERVISOR_vm_assist:
        rc = hc_vm_assist(v, regs);
        break;
    case __HYPERVISOR_update_va_mapping_otherdomain:
        rc = do_update_va_mapping_otherdomain(regs->rdi, regs->rsi, regs->rdx,
                                              (domid_t)regs->r10);
        break;
    case __HYPERVISOR_xen_version:
        rc = regs->rdi == XENVER_version ? (4L << 16) | 22 : -ENOSYS;
        break;
    case __HYPERVISOR_vcpu_op:
        rc = regs->rdi == VCPUOP_is_up
             ? (regs->rsi < v->domain->max_vcpus &&
                !atomic_load(&v->domain->vcpu[regs->rsi]->is_down))
             : -ENOSYS;
        break;
    default:
        rc = -ENOSYS;
        break;
    }
    if ( host.audit_every_hypercall )
    {
        /* Audited once no hypercall or control op is in flight. */
        char what[64];

        snprintf(what, sizeof(what), "hypercall %lu of d%u",
                 (unsigned long)regs->rax, v->domain->domain_id);
        hv_audit_after_hypercall(what);
    }
    else
        hv_audit_after_hypercall("a hypercall");
    return rc;
}
