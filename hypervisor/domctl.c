/* SPDX-License-Identifier: MIT */
/*
 * Toolstack operations on a domain (domctls): max_mem, getdomaininfo,
 * pause/unpause, get/setvcpucontext and getpageframeinfo3, with the pieces
 * of vCPU state they install or tear down: the base page tables here, the
 * GDT and LDT through descriptor-tables.c (xen/common/domctl.c,
 * xen/arch/x86/domctl.c, xen/arch/x86/domain.c).  Log-dirty (shadow_op)
 * lives in paging.c.
 *
 * These run on a control thread acting as a vCPU of domain 0 (`current`),
 * on a domain the toolstack keeps paused while it changes vCPU state, as
 * Xen's domctls pause it around arch_set_info_guest().
 *
 * Invariants:
 *  - an initialised vCPU's guest_table (and guest_table_user, if non-zero)
 *    holds one general + one L4 type reference, and each frame of its GDT
 *    one general + one seg_desc type reference (reference section 9, 1-2);
 *    vcpu_reset() and domain destruction drop them;
 *  - a set on an initialised vCPU never changes which frames it holds:
 *    only an identical cr3 / user cr3 / GDT / LDT is accepted;
 *  - getpageframeinfo3 holds a general reference on each frame while it
 *    reads the frame's type, so the frame cannot be freed and reused under
 *    it.
 */
#include <limits.h>
#include <string.h>

#include "hv.h"
#include "include/public/control.h"

/* EFLAGS bits (xen/arch/x86/include/asm/x86-defns.h). */
#define X86_EFLAGS_MBS  0x00000002ULL
#define X86_EFLAGS_IF   0x00000200ULL
#define X86_EFLAGS_VM   0x00020000ULL
#define X86_EFLAGS_ALL  0x003F7FD5ULL

/* Guest kernel RPL of a 64-bit PV guest: its kernel runs in ring 3. */
#define GUEST_KERNEL_RPL 3U

/* The vm_assist types a 64-bit PV guest may set (NATIVE_VM_ASSIST_VALID). */
#define VM_ASSIST_VALID 0x10000003FULL

#define HYPERVISOR_VIRT_END 0xFFFF880000000000ULL
#define L4_SLOT_RO_MPT      256U

/* ------------------------------------------------------------------------
 * max_mem, pause, unpause
 * ------------------------------------------------------------------------ */

/*
 * The new limit applies to future allocations only: Xen deliberately does
 * not compare it with tot_pages, so a domain above its new limit simply
 * cannot allocate until it is back below it.
 */
int domctl_max_mem(struct domain *d, uint64_t max_memkb)
{
    uint64_t new_max = max_memkb >> (PAGE_SHIFT - 10);

    spin_lock(&d->page_alloc_lock);
    atomic_store(&d->max_pages, (uint32_t)min(new_max, (uint64_t)UINT_MAX));
    spin_unlock(&d->page_alloc_lock);
    return 0;
}

/* A domain cannot pause itself: it would never run again to unpause. */
int domctl_pausedomain(struct domain *d)
{
    if ( current && d == current->domain )
        return -EINVAL;
    return domain_pause_by_systemcontroller(d);
}

int domctl_unpausedomain(struct domain *d)
{
    return domain_unpause_by_systemcontroller(d);
}

/*
 * resumedomain (Xen's domain_resume): undo a shutdown, so that a guest
 * that suspended itself for a save runs on where it stopped (the toolstack
 * first sets the suspend hypercall's return value, 1 for "cancelled").
 */
int domctl_resumedomain(struct domain *d)
{
    if ( current && d == current->domain )
        return -EINVAL;
    if ( domain_is_dying(d) )
        return -EINVAL;
    atomic_store(&d->shutdown_code, -1);
    atomic_store(&d->is_shutting_down, false);
    atomic_store(&d->is_shut_down, false);
    /* A source resumed after a failed migration runs at full speed. */
    domain_set_throttle(d, 0);
    domain_rt_kick(d);
    return 0;
}

/* ------------------------------------------------------------------------
 * getdomaininfo
 * ------------------------------------------------------------------------ */

int domctl_getdomaininfo(struct domain *d,
                         struct xen_domctl_getdomaininfo *info)
{
    uint32_t flags = XEN_DOMINF_blocked;
    uint64_t cpu_time = 0;
    struct vcpu *v;

    memset(info, 0, sizeof(*info));
    info->domain = d->domain_id;
    info->max_vcpu_id = UINT32_MAX;     /* XEN_INVALID_MAX_VCPU_ID */

    /* Blocked only if every online vCPU is; running if any is. */
    for_each_vcpu ( d, v )
    {
        cpu_time += atomic_load(&v->cpu_time);
        info->max_vcpu_id = v->vcpu_id;
        if ( atomic_load(&v->is_down) )
            continue;
        if ( !atomic_load(&v->blocked) )
            flags &= ~XEN_DOMINF_blocked;
        if ( atomic_load(&v->running) )
            flags |= XEN_DOMINF_running;
        info->nr_online_vcpus++;
    }
    info->cpu_time = cpu_time;

    /*
     * Xen ORs in the raw shutdown code shifted left by 16.  It is ~0U until
     * the domain shuts down, so bits 31:16 read as all ones before then;
     * the toolstack only looks at bits 23:16 when XEN_DOMINF_shutdown is
     * set.  ferry reports exactly the same word.
     */
    info->flags = (info->nr_online_vcpus ? flags : 0) |
        (atomic_load(&d->state) == DOMSTATE_DEAD ? XEN_DOMINF_dying : 0) |
        (atomic_load(&d->is_shut_down) ? XEN_DOMINF_shutdown : 0) |
        (atomic_load(&d->controller_pause_count) > 0 ?
         XEN_DOMINF_paused : 0) |
        ((uint32_t)atomic_load(&d->shutdown_code) <<
         XEN_DOMINF_shutdownshift);

    info->ssidref = d->ssidref;
    info->tot_pages = atomic_load(&d->tot_pages);
    info->max_pages = atomic_load(&d->max_pages);
    /* For PV (and on Arm) the frame is named by its MFN. */
    info->shared_info_frame = __atomic_load_n(&d->shared_info_mfn,
                                              __ATOMIC_RELAXED);
    info->cpupool = 0;
    memcpy(info->handle, d->handle, sizeof(info->handle));
    return 0;
}

/* ------------------------------------------------------------------------
 * Base page tables
 * ------------------------------------------------------------------------ */

/* The frame mfn with a general reference, if d owns it. */
static struct page_info *get_page_from_mfn(mfn_t mfn, struct domain *d)
{
    struct page_info *pg;

    if ( !mfn_valid(mfn) )
        return NULL;
    pg = mfn_to_page(mfn);
    return get_page(pg, d) ? pg : NULL;
}

/*
 * Slot 256 of a 64-bit L4 is the guest's read-only view of the M2P.
 * Without VMASST m2p_strict validation leaves it empty and installing the
 * table as a kernel base fills it; with m2p_strict a user base loses it.
 */
static void fill_ro_mpt(mfn_t mfn)
{
    intpte_t *l4t = map_domain_page(mfn);
    const intpte_t *idle = map_domain_page(host.idle_pg_table);

    if ( !__atomic_load_n(&l4t[L4_SLOT_RO_MPT], __ATOMIC_RELAXED) )
        __atomic_store_n(&l4t[L4_SLOT_RO_MPT], idle[L4_SLOT_RO_MPT],
                         __ATOMIC_RELAXED);
    unmap_domain_page(idle);
    unmap_domain_page(l4t);
}

static void zap_ro_mpt(mfn_t mfn)
{
    intpte_t *l4t = map_domain_page(mfn);

    __atomic_store_n(&l4t[L4_SLOT_RO_MPT], 0, __ATOMIC_RELAXED);
    unmap_domain_page(l4t);
}

static bool m2p_strict(const struct domain *d)
{
    return d->vm_assist & (1ULL << VMASST_TYPE_m2p_strict);
}

int vcpu_destroy_pagetables(struct vcpu *v)
{
    struct page_info *pg = NULL;
    mfn_t mfn = v->guest_table;
    bool put_user = true;
    int rc = put_old_guest_table(v);

    if ( rc )
        return rc;

    v->guest_table = 0;
    /* The kernel table first, then the user table, until one is cut short. */
    do {
        if ( mfn )
        {
            pg = mfn_to_page(mfn);
            rc = put_page_and_type_preemptible(pg);
            mfn = 0;
        }
        if ( !rc && put_user )
        {
            mfn = v->guest_table_user;
            v->guest_table_user = 0;
            put_user = false;
        }
    } while ( mfn );

    /* An interrupted put is finished by put_old_guest_table() next time. */
    switch ( rc )
    {
    case -EINTR:
    case -ERESTART:
        v->old_guest_ptpg = NULL;
        v->old_guest_table = pg;
        v->old_guest_table_partial = (rc == -ERESTART);
        rc = -ERESTART;
        break;
    default:
        ASSERT(rc == 0);
        break;
    }
    return rc;
}

/* Xen's vcpu_reset() for a PV vCPU: back to "never initialised". */
static int vcpu_reset(struct vcpu *v)
{
    int rc;

    /*
     * Xen's arch_vcpu_reset leaves the LDT's shadow mappings until the
     * next SET_LDT or NEW_BASEPTR, so a re-initialised vCPU could read a
     * descriptor of its old LDT through them.  ferry drops them with the
     * GDT, so that ldt_frames always shows the vCPU's current LDT.
     */
    pv_destroy_ldt(v);
    pv_destroy_gdt(v);
    rc = vcpu_destroy_pagetables(v);
    if ( rc )
        return rc;
    atomic_store(&v->is_down, true);
    v->is_initialised = false;
    atomic_store(&v->blocked, false);
    /* A final continuation's rc belongs to the hypercall the reset ended. */
    v->hcall_cont_rc = 0;
    return 0;
}

/* ------------------------------------------------------------------------
 * getvcpucontext
 * ------------------------------------------------------------------------ */

static void arch_get_info_guest(struct vcpu *v, struct vcpu_guest_context *c)
{
    const struct domain *d = v->domain;

    *c = v->ctxt;

    /* v->ctxt.flags' in_kernel bit is the vCPU's current mode. */
    c->flags = (v->ctxt.flags & ~VGCF_in_kernel) | VGCF_i387_valid;
    if ( !atomic_load(&v->is_down) )
        c->flags |= VGCF_online;

    c->ldt_base = v->ctxt.ldt_ents ? v->ctxt.ldt_base : 0;
    for ( unsigned int i = 0; i < ARRAY_SIZE(c->gdt_frames); i++ )
        c->gdt_frames[i] = i < FIRST_RESERVED_GDT_PAGE ? v->gdt_frames[i]
                                                       : 0;
    c->gdt_ents = v->gdt_ents;
    c->ctrlreg[3] = xen_pfn_to_cr3(v->guest_table);
    c->ctrlreg[1] = v->guest_table_user ?
                    xen_pfn_to_cr3(v->guest_table_user) : 0;
    if ( v->ctxt.flags & VGCF_in_kernel )
        c->flags |= VGCF_in_kernel;
    c->vm_assist = d->vm_assist;
}

int domctl_getvcpucontext(struct domain *d, unsigned int vcpu,
                          struct vcpu_guest_context *ctxt)
{
    struct vcpu *v;

    /* A vCPU cannot read its own context this way: it is not paused. */
    if ( vcpu >= d->max_vcpus || !(v = d->vcpu[vcpu]) || v == current )
        return -EINVAL;
    if ( !v->is_initialised )
        return -ENODATA;

    memset(ctxt, 0, sizeof(*ctxt));
    /* The registers live in v->ctxt while the vCPU runs: stop it first. */
    vcpu_pause(v);
    arch_get_info_guest(v, ctxt);
    vcpu_unpause(v);
    return 0;
}

/*
 * XEN_DOMCTL_getvcpuinfo: a snapshot, taken without pausing the vCPU (the
 * fields are read one by one, as Xen reads its runstate).
 */
int domctl_getvcpuinfo(struct domain *d, unsigned int vcpu,
                       struct xen_domctl_getvcpuinfo *info)
{
    struct vcpu *v;

    if ( vcpu >= d->max_vcpus || !(v = d->vcpu[vcpu]) )
        return -EINVAL;
    memset(info, 0, sizeof(*info));
    info->vcpu = vcpu;
    info->online = !atomic_load(&v->is_down);
    info->blocked = atomic_load(&v->blocked);
    info->running = atomic_load(&v->running);
    info->cpu = (uint32_t)atomic_load(&v->processor);
    info->cpu_time = atomic_load(&v->cpu_time);
    return 0;
}

/* ------------------------------------------------------------------------
 * setvcpucontext
 * ------------------------------------------------------------------------ */

static bool is_canonical_address(uint64_t a)
{
    return ((int64_t)a >> 47) == ((int64_t)a >> 63);
}

/* Below the hypervisor's hole, or above it (Xen's __addr_ok). */
static bool addr_ok(uint64_t a)
{
    return a < (1ULL << 47) || a >= HYPERVISOR_VIRT_END;
}

static uint16_t fixup_guest_selector(uint16_t sel)
{
    return (sel & 3) >= GUEST_KERNEL_RPL ? sel
                                         : (uint16_t)((sel & ~3U) |
                                                      GUEST_KERNEL_RPL);
}

/*
 * The checks and fix-ups Xen applies to every register a context carries,
 * made on the caller's copy before anything of the vCPU changes.
 */
static int check_guest_context(struct vcpu *v, struct vcpu_guest_context *c)
{
    struct cpu_user_regs *r = &c->user_regs;

    if ( c->debugreg[6] != (uint32_t)c->debugreg[6] ||
         c->debugreg[7] != (uint32_t)c->debugreg[7] )
        return -EINVAL;
    for ( unsigned int i = 0; i < 4; i++ )
        if ( !addr_ok(c->debugreg[i]) )
            return -EINVAL;

    if ( !is_canonical_address(r->rip) ||
         !is_canonical_address(r->rsp) ||
         !is_canonical_address(c->kernel_sp) ||
         (c->ldt_ents && !is_canonical_address(c->ldt_base)) ||
         !is_canonical_address(c->fs_base) ||
         !is_canonical_address(c->gs_base_kernel) ||
         !is_canonical_address(c->gs_base_user) ||
         !is_canonical_address(c->event_callback_eip) ||
         !is_canonical_address(c->syscall_callback_eip) ||
         !is_canonical_address(c->failsafe_callback_eip) )
        return -EINVAL;

    r->ss = fixup_guest_selector(r->ss);
    c->kernel_ss = fixup_guest_selector((uint16_t)c->kernel_ss);
    r->cs = fixup_guest_selector(r->cs);
    for ( unsigned int i = 0; i < ARRAY_SIZE(c->trap_ctxt); i++ )
    {
        if ( !is_canonical_address(c->trap_ctxt[i].address) )
            return -EINVAL;
        c->trap_ctxt[i].cs = fixup_guest_selector(c->trap_ctxt[i].cs);
    }

    if ( !addr_ok(c->ldt_base) )
        return -EINVAL;
    if ( (c->ldt_base & (PAGE_SIZE - 1)) || c->ldt_ents > MAX_LDT_ENTS )
        return -EINVAL;

    /*
     * Long mode has no vm86; real interrupts stay enabled (the guest's
     * virtual IF is its event mask); reserved bits read as Xen sets them.
     */
    r->rflags = (r->rflags & X86_EFLAGS_ALL & ~X86_EFLAGS_VM) |
                X86_EFLAGS_MBS | X86_EFLAGS_IF;

    if ( v->vcpu_id == 0 && (c->vm_assist & ~VM_ASSIST_VALID) )
        return -EINVAL;
    if ( (c->gdt_ents + 511) / 512 > FIRST_RESERVED_GDT_PAGE )
        return -EINVAL;
    return 0;
}

/* An initialised vCPU keeps its frames: only identical ones are accepted. */
static bool same_frames(const struct vcpu *v,
                        const struct vcpu_guest_context *c)
{
    unsigned int nr_gdt_frames = (c->gdt_ents + 511) / 512;
    bool fail = xen_pfn_to_cr3(v->guest_table) != c->ctrlreg[3];

    if ( !v->guest_table_user )
        fail |= c->ctrlreg[1] || !(c->flags & VGCF_in_kernel);
    else
        fail |= xen_pfn_to_cr3(v->guest_table_user) != c->ctrlreg[1];

    fail |= v->gdt_ents != c->gdt_ents;
    for ( unsigned int i = 0; !fail && i < nr_gdt_frames; i++ )
        fail = v->gdt_frames[i] != c->gdt_frames[i];

    fail |= v->ctxt.ldt_ents != c->ldt_ents;
    if ( v->ctxt.ldt_ents )
        fail |= v->ctxt.ldt_base != c->ldt_base;
    return !fail;
}

/*
 * Install ctrlreg[3] (and ctrlreg[1]) as the vCPU's base tables.  Each
 * takes a general ref and a preemptible L4 type ref.  On -ERESTART the
 * type refs taken so far are parked (the kernel table in
 * v->old_guest_table, a partially validated table in its PGT_partial
 * state) and the retry picks them up again.
 */
static int install_base_tables(struct vcpu *v,
                               const struct vcpu_guest_context *c)
{
    struct domain *d = v->domain;
    mfn_t mfn = xen_cr3_to_pfn(c->ctrlreg[3]);
    struct page_info *pg = get_page_from_mfn(mfn, d);
    int rc = 0;

    if ( !pg )
        rc = -EINVAL;
    else if ( pg == v->old_guest_table )
    {
        /* A retry after the user table was interrupted: take it back. */
        v->old_guest_table = NULL;
        put_page(pg);
    }
    else
    {
        rc = put_old_guest_table(v);
        if ( !rc )
            rc = get_page_type_preemptible(pg, PGT_root_page_table);
        switch ( rc )
        {
        case -EINTR:
            rc = -ERESTART;
            /* fall through */
        case -ERESTART:
            break;
        case 0:
            if ( !m2p_strict(d) )
                fill_ro_mpt(mfn);
            break;
        default:
            /* A failed validation may have parked the page (and our ref). */
            if ( current && pg == current->old_guest_table )
                pg = NULL;
            break;
        }
    }
    if ( rc )
        goto fail;

    v->guest_table = mfn;
    if ( !c->ctrlreg[1] )
        return 0;

    mfn = xen_cr3_to_pfn(c->ctrlreg[1]);
    pg = get_page_from_mfn(mfn, d);
    if ( !pg )
        rc = -EINVAL;
    else
    {
        rc = get_page_type_preemptible(pg, PGT_root_page_table);
        switch ( rc )
        {
        case -EINTR:
            rc = -ERESTART;
            /* fall through */
        case -ERESTART:
            /* Park the (fully validated) kernel table for the retry. */
            v->old_guest_ptpg = NULL;
            v->old_guest_table = mfn_to_page(v->guest_table);
            v->old_guest_table_partial = false;
            v->guest_table = 0;
            break;
        case 0:
            if ( m2p_strict(d) )
                zap_ro_mpt(mfn);
            break;
        default:
            if ( current && pg == current->old_guest_table )
                pg = NULL;
            break;
        }
    }
    if ( rc )
        goto fail;
    v->guest_table_user = mfn;
    return 0;

    /*
     * As in Xen, a failure of the user table after the kernel table was
     * installed leaves the kernel table in place (its refs are dropped by
     * a reset or by destruction) while the vCPU stays uninitialised.
     */
 fail:
    if ( pg )
        put_page(pg);
    pv_destroy_gdt(v);
    return rc;
}

static int arch_set_info_guest(struct vcpu *v,
                               const struct vcpu_guest_context *in)
{
    struct domain *d = v->domain;
    struct vcpu_guest_context c = *in;
    uint64_t flags = c.flags;
    int rc;

    rc = check_guest_context(v, &c);
    if ( rc )
        return rc;

    if ( !v->is_initialised )
    {
        if ( !(flags & VGCF_in_kernel) && !c.ctrlreg[1] )
            return -EINVAL;
    }
    else if ( !same_frames(v, &c) )
        return -EOPNOTSUPP;

    /*
     * The register state.  Xen keeps guest_table and the GDT frames apart
     * from the rest; ferry keeps the whole context in v->ctxt and answers
     * getvcpucontext's frame fields from the references actually held.
     * The LDT is recorded only at first initialisation (it must be equal
     * afterwards); debug registers 4 and 5 are ignored, as since Xen 4.11.
     */
    if ( v->is_initialised )
    {
        c.ldt_base = v->ctxt.ldt_base;
        c.ldt_ents = v->ctxt.ldt_ents;
    }
    c.debugreg[4] = c.debugreg[5] = 0;
    v->ctxt = c;

    if ( v->is_initialised )
        goto out;

    if ( v->vcpu_id == 0 )
        d->vm_assist = c.vm_assist;

    rc = current ? put_old_guest_table(current) : 0;
    if ( rc )
        return rc;

    rc = pv_set_gdt(v, c.gdt_frames, (unsigned int)c.gdt_ents);
    if ( rc )
        return rc;

    rc = install_base_tables(v, &c);
    if ( rc )
        return rc;

    v->is_initialised = true;

 out:
    atomic_store(&v->is_down, !(flags & VGCF_online));
    return 0;
}

int domctl_setvcpucontext(struct domain *d, unsigned int vcpu,
                          const struct vcpu_guest_context *ctxt)
{
    struct vcpu *v;
    int rc;

    /* The caller's own domain cannot be paused around the change. */
    if ( (current && d == current->domain) || vcpu >= d->max_vcpus ||
         !(v = d->vcpu[vcpu]) )
        return -EINVAL;

    /*
     * Xen pauses the domain around the change (vcpu_reset pauses the one
     * vCPU); pausing every vCPU covers both.  A null context resets the
     * vCPU.  -ERESTART: call again.
     */
    domain_pause(d);
    rc = ctxt ? arch_set_info_guest(v, ctxt) : vcpu_reset(v);
    domain_unpause(d);
    return rc;
}

/* ------------------------------------------------------------------------
 * getpageframeinfo3
 * ------------------------------------------------------------------------ */

/* Xen-heap frames shared with the guest and PGC_extra frames. */
static bool is_special_page(const struct page_info *pg)
{
    return atomic_load(&pg->count_info) & (PGC_xen_heap | PGC_extra);
}

/*
 * The frame a domain names by gfn, with a general reference.  PV domains
 * name frames by MFN; a translated domain goes through its p2m.
 */
static struct page_info *get_page_from_gfn(struct domain *d, uint64_t gfn)
{
    mfn_t mfn = gfn;

    if ( d->translated )
    {
        spin_lock(&d->p2m_lock);
        mfn = gfn < d->p2m_size ? d->p2m[gfn] : INVALID_MFN;
        spin_unlock(&d->p2m_lock);
    }
    return get_page_from_mfn(mfn, d);
}

static uint64_t pfinfo_type(struct page_info *pg)
{
    uint64_t type_info = atomic_load(&pg->type_info);
    uint64_t type = XEN_DOMCTL_PFINFO_NOTAB;

    switch ( type_info & PGT_type_mask )
    {
    case PGT_l1_page_table:
        type = XEN_DOMCTL_PFINFO_L1TAB;
        break;
    case PGT_l2_page_table:
        type = XEN_DOMCTL_PFINFO_L2TAB;
        break;
    case PGT_l3_page_table:
        type = XEN_DOMCTL_PFINFO_L3TAB;
        break;
    case PGT_l4_page_table:
        type = XEN_DOMCTL_PFINFO_L4TAB;
        break;
    }

    /*
     * A table that is not validated (devalidated at type count 0, or in
     * the middle of (de)validation) is reported as an ordinary page, so
     * the saver copies it as data instead of normalising it (Xen 4.16,
     * "x86/PV: make post-migration page state consistent").
     */
    if ( type_info & PGT_pinned )
        type |= XEN_DOMCTL_PFINFO_LPINTAB;
    else if ( !(type_info & PGT_validated) )
        type = XEN_DOMCTL_PFINFO_NOTAB;

    if ( atomic_load(&pg->count_info) & PGC_broken )
        type = XEN_DOMCTL_PFINFO_BROKEN;
    return type;
}

int domctl_getpageframeinfo3(struct domain *d, unsigned int num,
                             uint64_t *array)
{
    return hv_getpageframeinfo3(d, num, array, 0);
}

/*
 * With FERRY_PFINFO_ZERO, an ordinary page (NOTAB) whose frame nothing
 * has written since it left the heap (hv_frame_written) is reported as
 * XALLOC: it holds zeros, and a saver sends only its PFN.  The type and
 * the bit are read while the page reference is held, so the frame cannot
 * go back to the heap (and be scrubbed) in between.  A write after the
 * answer is the caller's business, as for any page it reads: under
 * log-dirty it is marked, otherwise the domain must not be running.
 */
int hv_getpageframeinfo3(struct domain *d, unsigned int num, uint64_t *array,
                         unsigned int flags)
{
    if ( num > XEN_DOMCTL_PFINFO_MAX )
        return -E2BIG;
    if ( flags & ~FERRY_PFINFO_ZERO )
        return -EINVAL;

    for ( unsigned int i = 0; i < num; i++ )
    {
        struct page_info *pg = get_page_from_gfn(d, array[i]);

        if ( !pg || is_special_page(pg) )
            array[i] = XEN_DOMCTL_PFINFO_XTAB;
        else
            array[i] = pfinfo_type(pg);
        if ( (flags & FERRY_PFINFO_ZERO) &&
             array[i] == XEN_DOMCTL_PFINFO_NOTAB &&
             !hv_frame_maybe_nonzero(page_to_mfn(pg)) )
            array[i] = XEN_DOMCTL_PFINFO_XALLOC;
        if ( pg )
            put_page(pg);
    }
    return 0;
}
