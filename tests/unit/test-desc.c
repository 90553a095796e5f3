/* SPDX-License-Identifier: MIT */
/*
 * Tests of the descriptor-table hypercalls and the LDT's lazy mapping
 * (hypervisor/descriptor-tables.c, mmu.c, vcpu.c): set_gdt (#2),
 * update_descriptor (#10) and update_va_mapping_otherdomain (#22) as a
 * guest's hcall reaches them, and the guest CPU's ldesc instruction, which
 * maps an LDT page on first use as Xen's #PF handler does.
 *
 * The type rules under test are Xen's: a frame in a GDT or mapped as an
 * LDT page holds a PGT_seg_desc_page type reference, so it can never be
 * mapped writable (-EBUSY from the L1 update), and a writably mapped frame
 * can never join a GDT (-EINVAL) or an LDT (the guest gets the #PF).
 * Every scenario ends with the auditor, which counts the seg_desc
 * references, and most with the domain's destruction.
 */
#include <time.h>

#include "hv.h"
#undef ASSERT
#include "hvtest.h"
#include "isa.h"

#define T_SEG PGT_seg_desc_page

/* type_info words: seg_desc / writable, validated, with a count. */
#define TAF_SEG_1  0xA400000000000001ULL
#define TAF_SEG_0  0xA400000000000000ULL
#define TAF_WR_1   0xE400000000000001ULL
#define TAF_WR_0   0xE400000000000000ULL
#define TAF_L1_1   0x2400000000000001ULL

/* A VA whose L4, L3 and L2 slots are all 0: L1 slot n. */
#define VA(n) ((uint64_t)(n) << PAGE_SHIFT)

/* Descriptors: flat 64-bit code DPL 0 (becomes DPL 3), flat data DPL 3. */
#define DESC_CODE_DPL0 0x00af9a000000ffffULL
#define DESC_CODE_DPL3 0x00affa000000ffffULL
#define DESC_DATA_DPL3 0x00cff2000000ffffULL

/*
 * A domain whose vCPU 0 runs on L4 -> L3 -> L2 -> L1, the L1 mapping
 * VA(0) `code` (read-only), VA(1) `ldt` (read-only), VA(2) `stack`
 * (writable), VA(3) `gdt` (read-only) and VA(4) `data` (writable).
 */
struct guest
{
    struct domain *d;
    mfn_t l4, l3, l2, l1, code, ldt, stack, gdt, data;
};

static void build_guest(struct guest *g, struct domain *d, pfn_t base)
{
    g->d = d;
    g->l4 = hvtest_frame(d, base);
    g->l3 = hvtest_frame(d, base + 1);
    g->l2 = hvtest_frame(d, base + 2);
    g->l1 = hvtest_frame(d, base + 3);
    g->code = hvtest_frame(d, base + 4);
    g->ldt = hvtest_frame(d, base + 5);
    g->stack = hvtest_frame(d, base + 6);
    g->gdt = hvtest_frame(d, base + 7);
    g->data = hvtest_frame(d, base + 8);
    hvtest_write_pte(g->l4, 0, hvtest_pte(g->l3, _PAGE_RW | _PAGE_USER));
    hvtest_write_pte(g->l3, 0, hvtest_pte(g->l2, _PAGE_RW | _PAGE_USER));
    hvtest_write_pte(g->l2, 0, hvtest_pte(g->l1, _PAGE_RW | _PAGE_USER));
    hvtest_write_pte(g->l1, 0, hvtest_pte(g->code, 0));
    hvtest_write_pte(g->l1, 1, hvtest_pte(g->ldt, 0));
    hvtest_write_pte(g->l1, 2, hvtest_pte(g->stack, _PAGE_RW));
    hvtest_write_pte(g->l1, 3, hvtest_pte(g->gdt, 0));
    hvtest_write_pte(g->l1, 4, hvtest_pte(g->data, _PAGE_RW));
    hvtest_as(d, 0);
    ASSERT_EQ(hvtest_mmuext(MMUEXT_PIN_L4_TABLE, g->l4), 0);
    ASSERT_EQ(new_guest_cr3(g->l4), 0);
}

static struct domain *setup(struct guest *g)
{
    hvtest_host(HVTEST_MEM_MB);
    build_guest(g, hvtest_domain(256, 1), 0x100);
    return g->d;
}

/* The guest's hcall: number and arguments in Xen's registers. */
static long hcall(struct vcpu *v, uint64_t nr, uint64_t rdi, uint64_t rsi,
                  uint64_t rdx, uint64_t r10)
{
    struct cpu_user_regs regs = {
        .rax = nr, .rdi = rdi, .rsi = rsi, .rdx = rdx, .r10 = r10,
    };
    int action = ISA_HCALL_CONTINUE;

    set_current(v);
    return hv_guest_hypercall(v, &regs, &action);
}

/* The guest's view of a frame, for writing: the write is recorded. */
static uint64_t *words(mfn_t mfn)
{
    hv_frame_written(mfn);
    return map_domain_page(mfn);
}

/* ------------------------------------------------------------------------
 * set_gdt
 * ------------------------------------------------------------------------ */

TEST(set_gdt_hypercall_types_frames_seg_desc_never_writable)
{
    struct guest g;
    struct domain *d = setup(&g);
    struct vcpu *v = d->vcpu[0];
    mfn_t g1 = hvtest_frame(d, 0x200), bad = hvtest_frame(d, 0x201);
    uint64_t *list = words(g.data);

    words(g.gdt)[2] = DESC_CODE_DPL0;
    words(g1)[3] = DESC_DATA_DPL3;
    list[0] = g.gdt;
    list[1] = g1;

    /* Two frames for 513 entries, from the guest's frame list. */
    ASSERT_EQ(hcall(v, __HYPERVISOR_set_gdt, VA(4), 513, 0, 0), 0);
    ASSERT_EQ(v->gdt_ents, 513);
    ASSERT_HEX(v->gdt_frames[0], g.gdt);
    ASSERT_HEX(v->gdt_frames[1], g1);
    /* gdt: alloc, its read-only L1 mapping, the GDT. */
    ASSERT_FRAME(g.gdt, ALLOC | 3, TAF_SEG_1);
    ASSERT_FRAME(g1, ALLOC | 2, TAF_SEG_1);
    ASSERT_HEX(words(g.gdt)[2], DESC_CODE_DPL3);
    HVTEST_AUDIT_CLEAN();

    /* A GDT frame can never be mapped writable. */
    hv_log_clear();
    ASSERT_EQ(hvtest_pt_update(g.l1, 3, hvtest_pte(g.gdt, _PAGE_RW)), -EBUSY);
    ASSERT(hvtest_log_has("Bad type (saw a400000000000001 != exp "
                          "e000000000000000) for mfn %05lx (pfn 00107)",
                          (unsigned long)g.gdt));
    ASSERT(!(hvtest_read_pte(g.l1, 3) & _PAGE_RW));
    ASSERT_FRAME(g.gdt, ALLOC | 3, TAF_SEG_1);

    /* A writable frame can never become a GDT frame; the old GDT stays. */
    hv_log_clear();
    list[0] = g.data;
    ASSERT_EQ(hcall(v, __HYPERVISOR_set_gdt, VA(4), 1, 0, 0), -EINVAL);
    ASSERT(hvtest_log_has("Bad type (saw e400000000000001 != exp "
                          "a000000000000000) for mfn %05lx (pfn 00108)",
                          (unsigned long)g.data));
    ASSERT_FRAME(g.data, ALLOC | 2, TAF_WR_1);
    ASSERT_EQ(v->gdt_ents, 513);
    ASSERT_FRAME(g1, ALLOC | 2, TAF_SEG_1);

    /* Nor can a page table, or a frame with a bad descriptor. */
    list[0] = g.l1;
    ASSERT_EQ(hcall(v, __HYPERVISOR_set_gdt, VA(4), 1, 0, 0), -EINVAL);
    words(bad)[7] = 0x0000890000000067ULL;      /* a present TSS */
    list[0] = g.gdt;
    list[1] = bad;
    ASSERT_EQ(hcall(v, __HYPERVISOR_set_gdt, VA(4), 1024, 0, 0), -EINVAL);
    /* The first frame's reference was taken and given back. */
    ASSERT_FRAME(g.gdt, ALLOC | 3, TAF_SEG_1);
    ASSERT_FRAME(bad, ALLOC | 1, 0);
    ASSERT_EQ(v->gdt_ents, 513);

    /* The count is checked before the list is read; then the list. */
    ASSERT_EQ(hcall(v, __HYPERVISOR_set_gdt, 0xdead0000, 7169, 0, 0),
              -EINVAL);
    ASSERT_EQ(hcall(v, __HYPERVISOR_set_gdt, 0xdead0000, 7168, 0, 0),
              -EFAULT);
    ASSERT_EQ(v->gdt_ents, 513);

    /* entries is Xen's unsigned int: 2^32 is an empty GDT. */
    ASSERT_EQ(hcall(v, __HYPERVISOR_set_gdt, VA(4), 1ULL << 32, 0, 0), 0);
    ASSERT_EQ(v->gdt_ents, 0);
    ASSERT_HEX(v->gdt_frames[0], 0);
    ASSERT_FRAME(g.gdt, ALLOC | 2, TAF_SEG_0);
    ASSERT_FRAME(g1, ALLOC | 1, TAF_SEG_0);
    /* Released, the frame may be mapped writable again. */
    ASSERT_EQ(hvtest_pt_update(g.l1, 3, hvtest_pte(g.gdt, _PAGE_RW)), 0);
    ASSERT_FRAME(g.gdt, ALLOC | 2, TAF_WR_1);

    /* Destruction drops a live GDT's references. */
    list[0] = g1;
    ASSERT_EQ(hcall(v, __HYPERVISOR_set_gdt, VA(4), 16, 0, 0), 0);
    ASSERT_FRAME(g1, ALLOC | 2, TAF_SEG_1);
    HVTEST_AUDIT_CLEAN();
    hvtest_destroy(d);
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * update_descriptor and check_descriptor
 * ------------------------------------------------------------------------ */

/* check_descriptor on one descriptor: accepted?  *out: after fix-up. */
static bool check(uint64_t desc, uint64_t *out)
{
    *out = desc;
    return check_descriptor(out);
}

TEST(update_descriptor_checks_as_check_descriptor)
{
    uint64_t out;

    /* Not present: anything goes, unchanged. */
    ASSERT(check(0x0000090000000000ULL, &out));
    ASSERT_HEX(out, 0x0000090000000000ULL);
    /* Code and data: the DPL is raised to the guest kernel's 3. */
    ASSERT(check(DESC_CODE_DPL0, &out));
    ASSERT_HEX(out, DESC_CODE_DPL3);
    ASSERT(check(0x00cf92000000ffffULL, &out));
    ASSERT_HEX(out, 0x00cff2000000ffffULL);
    /* A present system descriptor of type 0 (a gate's second half). */
    ASSERT(check(0x0000800000001234ULL, &out));
    ASSERT_HEX(out, 0x0000800000001234ULL);
    /* TSS, LDT and interrupt gates are refused. */
    ASSERT(!check(0x0000890000000067ULL, &out));
    ASSERT(!check(0x0000820000000fffULL, &out));
    ASSERT(!check(0x00008e0000100000ULL, &out));
    /* A call gate to a guest selector: DPL 0, old DPL 3 in the RPL. */
    ASSERT(check(0x0000ec0000080000ULL, &out));
    ASSERT_HEX(out, 0x00008c00000b0000ULL);
    /* To Xen's flat kernel CS, or an LDT selector: accepted. */
    ASSERT(check(0x0000ec00e0330000ULL, &out));
    ASSERT_HEX(out, 0x00008c00e0330000ULL);
    ASSERT(check(0x0000ec00e0040000ULL, &out));
    ASSERT_HEX(out, 0x00008c00e0070000ULL);
    /* To one of Xen's reserved GDT entries: refused. */
    ASSERT(!check(0x0000ec00e0000000ULL, &out));
    ASSERT(!check(0x0000ec00e0080000ULL, &out));
    /* Reserved bits (the parameter count) set: refused. */
    ASSERT(!check(0x0000ec0100080000ULL, &out));
}

TEST(update_descriptor_needs_a_seg_desc_able_frame)
{
    struct guest g;
    struct domain *d = setup(&g);
    struct domain *d2 = hvtest_domain(16, 1);
    struct vcpu *v = d->vcpu[0];
    mfn_t plain = hvtest_frame(d, 0x200), foreign = hvtest_frame(d2, 0x10);
    uint64_t list[1] = { g.gdt };

    hvtest_as(d, 0);
    ASSERT_EQ(pv_set_gdt(v, list, 512), 0);

    /* Into a GDT frame: checked, fixed up, written; the type stays. */
    ASSERT_EQ(hcall(v, __HYPERVISOR_update_descriptor,
                    (g.gdt << PAGE_SHIFT) + 5 * 8, DESC_CODE_DPL0, 0, 0), 0);
    ASSERT_HEX(words(g.gdt)[5], DESC_CODE_DPL3);
    ASSERT_FRAME(g.gdt, ALLOC | 3, TAF_SEG_1);

    /* What check_descriptor refuses is never written. */
    ASSERT_EQ(hcall(v, __HYPERVISOR_update_descriptor,
                    (g.gdt << PAGE_SHIFT) + 6 * 8, 0x0000890000000067ULL, 0,
                    0), -EINVAL);
    ASSERT_HEX(words(g.gdt)[6], 0);
    /* A misaligned address would corrupt two descriptors. */
    ASSERT_EQ(hcall(v, __HYPERVISOR_update_descriptor,
                    (g.gdt << PAGE_SHIFT) + 4, DESC_DATA_DPL3, 0, 0), -EINVAL);

    /* A page table in use cannot take the writable type: refused. */
    hv_log_clear();
    ASSERT_EQ(hcall(v, __HYPERVISOR_update_descriptor,
                    (g.l1 << PAGE_SHIFT) + 100 * 8, DESC_DATA_DPL3, 0, 0),
              -EINVAL);
    ASSERT(hvtest_log_has("Bad type (saw 2400000000000001 != exp "
                          "e000000000000000) for mfn %05lx (pfn 00103)",
                          (unsigned long)g.l1));
    ASSERT_HEX(hvtest_read_pte(g.l1, 100), 0);
    ASSERT_FRAME(g.l1, ALLOC | 2, TAF_L1_1);

    /* Another domain's frame, or no frame at all: refused. */
    ASSERT_EQ(hcall(v, __HYPERVISOR_update_descriptor,
                    foreign << PAGE_SHIFT, DESC_DATA_DPL3, 0, 0), -EINVAL);
    ASSERT_HEX(words(foreign)[0], 0);
    ASSERT_EQ(hcall(v, __HYPERVISOR_update_descriptor,
                    host.max_page << PAGE_SHIFT, DESC_DATA_DPL3, 0, 0),
              -EINVAL);

    /* Any other frame: written through a passing writable type. */
    ASSERT_EQ(hcall(v, __HYPERVISOR_update_descriptor,
                    (plain << PAGE_SHIFT) + 8, DESC_DATA_DPL3, 0, 0), 0);
    ASSERT_HEX(words(plain)[1], DESC_DATA_DPL3);
    ASSERT_FRAME(plain, ALLOC | 1, TAF_WR_0);
    ASSERT_EQ(hcall(v, __HYPERVISOR_update_descriptor,
                    (g.data << PAGE_SHIFT) + 16, DESC_CODE_DPL0, 0, 0), 0);
    ASSERT_HEX(words(g.data)[2], DESC_CODE_DPL3);
    ASSERT_FRAME(g.data, ALLOC | 2, TAF_WR_1);
    HVTEST_AUDIT_CLEAN();
    hvtest_destroy(d2);
    hvtest_destroy(d);
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * update_va_mapping_otherdomain
 * ------------------------------------------------------------------------ */

TEST(va_mapping_otherdomain_for_a_domain_the_caller_may_map)
{
    struct guest g, pg;
    struct domain *d = setup(&g), *priv, *d2 = hvtest_domain(16, 1);
    mfn_t f = hvtest_frame(d2, 0x10), own = hvtest_frame(d, 0x300);
    uint64_t va = VA(5);

    /* An unprivileged guest may not map another domain's frame. */
    ASSERT_EQ(hcall(d->vcpu[0], __HYPERVISOR_update_va_mapping_otherdomain,
                    va, hvtest_pte(f, 0), UVMF_INVLPG, d2->domain_id),
              -EPERM);
    ASSERT_HEX(hvtest_read_pte(g.l1, 5), 0);
    ASSERT_HEX(hvtest_caf(f), ALLOC | 1);
    /* Its own domid is not foreign; an unknown one does not exist. */
    ASSERT_EQ(hcall(d->vcpu[0], __HYPERVISOR_update_va_mapping_otherdomain,
                    va, hvtest_pte(own, 0), 0, d->domain_id), -ESRCH);
    ASSERT_EQ(hcall(d->vcpu[0], __HYPERVISOR_update_va_mapping_otherdomain,
                    va, hvtest_pte(own, 0), 0, 0x7000), -ESRCH);
    /* DOMID_SELF is the caller's own memory. */
    ASSERT_EQ(hcall(d->vcpu[0], __HYPERVISOR_update_va_mapping_otherdomain,
                    va, hvtest_pte(own, 0), 0, DOMID_SELF), 0);
    ASSERT_HEX(hvtest_caf(own), ALLOC | 2);

    /* A privileged guest may map d2's frame into its own tables. */
    ASSERT_EQ(domain_create(DOMID_ANY, DOMCREATE_privileged, 1, &priv), 0);
    ASSERT_EQ(domctl_max_mem(priv, 256 << 2), 0);
    build_guest(&pg, priv, 0x100);
    ASSERT_EQ(hcall(priv->vcpu[0], __HYPERVISOR_update_va_mapping_otherdomain,
                    va, hvtest_pte(f, 0), UVMF_INVLPG, d2->domain_id), 0);
    ASSERT_HEX(hvtest_read_pte(pg.l1, 5) & PTE_MFN_MASK, f << PAGE_SHIFT);
    ASSERT_HEX(hvtest_caf(f), ALLOC | 2);
    HVTEST_AUDIT_CLEAN();
    /* And unmap it again. */
    ASSERT_EQ(hcall(priv->vcpu[0], __HYPERVISOR_update_va_mapping_otherdomain,
                    va, 0, UVMF_INVLPG, d2->domain_id), 0);
    ASSERT_HEX(hvtest_caf(f), ALLOC | 1);
    HVTEST_AUDIT_CLEAN();
    hvtest_destroy(priv);
    hvtest_destroy(d2);
    hvtest_destroy(d);
    hvtest_done();
}

/* ------------------------------------------------------------------------
 * The LDT, mapped on the guest's first use
 * ------------------------------------------------------------------------ */

/* The program at VA(0): ldesc r0, r3; halt; then the fault handler: halt. */
#define RIP_DONE    (VA(0) + 16)
#define RIP_FAULTED (VA(0) + 24)

static void load_program(struct guest *g)
{
    uint64_t *code = words(g->code);
    struct vcpu *v = g->d->vcpu[0];

    code[0] = isa_encode(ISA_OP_LDESC, ISA_RAX, ISA_RBX, 0, 0);
    code[1] = isa_encode(ISA_OP_HALT, 0, 0, 0, 0);
    code[2] = isa_encode(ISA_OP_HALT, 0, 0, 0, 0);
    v->ctxt.trap_ctxt[ISA_VEC_GP].address = VA(0) + 16;
    v->ctxt.trap_ctxt[ISA_VEC_PF].address = VA(0) + 16;
}

/* Run vCPU 0 from VA(0) with r3 = sel until it halts; the domain stays paused. */
static void run_ldesc(struct guest *g, uint16_t sel)
{
    struct vcpu *v = g->d->vcpu[0], *me = current;
    struct timespec ts = { 0, 1000000 };
    unsigned int waited = 0;

    v->ctxt.user_regs.rip = VA(0);
    v->ctxt.user_regs.rsp = VA(3);
    v->ctxt.user_regs.rax = 0x5a5a;
    v->ctxt.user_regs.rbx = sel;
    v->ctxt.user_regs.rcx = v->ctxt.user_regs.rdx = 0x77;
    v->is_initialised = true;
    atomic_store(&v->is_down, false);
    atomic_store(&v->blocked, false);
    set_current(host.dom0->vcpu[0]);
    ASSERT_EQ(domctl_unpausedomain(g->d), 0);
    while ( !atomic_load(&v->blocked) && waited++ < 10000 )
        nanosleep(&ts, NULL);
    ASSERT_EQ(domctl_pausedomain(g->d), 0);
    ASSERT(atomic_load(&v->blocked));
    set_current(me);
}

static long set_ldt(uint64_t base, unsigned int ents)
{
    struct mmuext_op op = { .cmd = MMUEXT_SET_LDT, .arg1.linear_addr = base,
                            .arg2.nr_ents = ents };
    unsigned int done = 0;

    return do_mmuext_op(&op, 1, &done, DOMID_SELF);
}

TEST(ldt_seg_desc_ref_on_first_use_never_writable)
{
    struct guest g;
    struct domain *d = setup(&g);
    struct vcpu *v = d->vcpu[0];
    struct cpu_user_regs *r = &v->ctxt.user_regs;

    load_program(&g);
    words(g.ldt)[1] = DESC_DATA_DPL3;
    words(g.ldt)[2] = DESC_CODE_DPL0;
    ASSERT_EQ(set_ldt(VA(1), 512), 0);
    /* SET_LDT alone maps nothing: Xen maps the LDT lazily. */
    ASSERT_HEX(v->ldt_frames[0], 0);
    ASSERT_FRAME(g.ldt, ALLOC | 2, 0);

    /* First use of LDT entry 1 (selector 0xf): mapped, typed seg_desc. */
    run_ldesc(&g, 0xf);
    ASSERT_HEX(r->rip, RIP_DONE);
    ASSERT_HEX(r->rax, DESC_DATA_DPL3);
    ASSERT_HEX(v->ldt_frames[0], g.ldt);
    ASSERT_FRAME(g.ldt, ALLOC | 3, TAF_SEG_1);
    /* Validation fixed entry 2 up in place. */
    ASSERT_HEX(words(g.ldt)[2], DESC_CODE_DPL3);
    HVTEST_AUDIT_CLEAN();
    /* Used again: nothing more is taken. */
    run_ldesc(&g, 0x17);
    ASSERT_HEX(r->rax, DESC_CODE_DPL3);
    ASSERT_FRAME(g.ldt, ALLOC | 3, TAF_SEG_1);

    /* An LDT page can never be mapped writable. */
    hvtest_as(d, 0);
    hv_log_clear();
    ASSERT_EQ(hvtest_pt_update(g.l1, 1, hvtest_pte(g.ldt, _PAGE_RW)), -EBUSY);
    ASSERT(hvtest_log_has("Bad type (saw a400000000000001 != exp "
                          "e000000000000000) for mfn %05lx (pfn 00105)",
                          (unsigned long)g.ldt));
    ASSERT_FRAME(g.ldt, ALLOC | 3, TAF_SEG_1);

    /* A new LDT drops the mapping; then the page may become writable. */
    ASSERT_EQ(set_ldt(VA(1), 1), 0);
    ASSERT_HEX(v->ldt_frames[0], 0);
    ASSERT_FRAME(g.ldt, ALLOC | 2, TAF_SEG_0);
    ASSERT_EQ(hvtest_pt_update(g.l1, 1, hvtest_pte(g.ldt, _PAGE_RW)), 0);
    ASSERT_FRAME(g.ldt, ALLOC | 2, TAF_WR_1);

    /* Beyond the LDT's limit: #GP, error code the selector. */
    run_ldesc(&g, 0xf);
    ASSERT_HEX(r->rip, RIP_FAULTED);
    ASSERT_HEX(r->rcx, 0xc);
    ASSERT_HEX(r->rax, 0x5a5a);

    /* A writable page can never become an LDT page: the guest's #PF. */
    ASSERT_EQ(set_ldt(VA(1), 512), 0);
    run_ldesc(&g, 0xf);
    ASSERT_HEX(r->rip, RIP_FAULTED);
    ASSERT_HEX(r->rcx, 0);
    ASSERT_HEX(r->rdx, VA(1) + 8);
    ASSERT_HEX(r->rax, 0x5a5a);
    ASSERT_HEX(v->ldt_frames[0], 0);
    ASSERT_FRAME(g.ldt, ALLOC | 2, TAF_WR_1);

    /* Nor can a page table (mapped read-only); an unmapped page faults. */
    hvtest_as(d, 0);
    ASSERT_EQ(set_ldt(VA(6), 512), 0);
    ASSERT_EQ(hvtest_pt_update(g.l1, 6, hvtest_pte(g.l1, 0)), 0);
    run_ldesc(&g, 0x4);
    ASSERT_HEX(r->rip, RIP_FAULTED);
    ASSERT_HEX(r->rdx, VA(6));
    ASSERT_FRAME(g.l1, ALLOC | 3, TAF_L1_1);
    hvtest_as(d, 0);
    ASSERT_EQ(set_ldt(VA(7), 512), 0);
    run_ldesc(&g, 0x4);
    ASSERT_HEX(r->rip, RIP_FAULTED);
    ASSERT_HEX(r->rdx, VA(7));

    /* Past the canonical boundary: #GP with the offset and TI. */
    hvtest_as(d, 0);
    ASSERT_EQ(set_ldt((1ULL << 47) - PAGE_SIZE, 8192), 0);
    run_ldesc(&g, (512 << 3) | 4);
    ASSERT_HEX(r->rip, RIP_FAULTED);
    ASSERT_HEX(r->rcx, 0x1004);
    ASSERT_HEX(r->rdx, 0);

    /* The GDT through the same instruction: entries past it read 0. */
    hvtest_as(d, 0);
    words(g.gdt)[3] = DESC_DATA_DPL3;
    ASSERT_EQ(pv_set_gdt(v, &g.gdt, 16), 0);
    run_ldesc(&g, 0x1b);
    ASSERT_HEX(r->rip, RIP_DONE);
    ASSERT_HEX(r->rax, DESC_DATA_DPL3);
    run_ldesc(&g, 513 << 3);
    ASSERT_HEX(r->rip, RIP_DONE);
    ASSERT_HEX(r->rax, 0);
    run_ldesc(&g, FIRST_RESERVED_GDT_ENTRY << 3);
    ASSERT_HEX(r->rip, RIP_FAULTED);
    ASSERT_HEX(r->rcx, FIRST_RESERVED_GDT_ENTRY << 3);
    HVTEST_AUDIT_CLEAN();
    hvtest_destroy(d);
    hvtest_done();
}

TEST(ldt_seg_desc_refs_dropped_by_new_baseptr_reset_and_destruction)
{
    struct guest g;
    struct domain *d = setup(&g);
    struct vcpu *v = d->vcpu[0];
    mfn_t ldt2 = hvtest_frame(d, 0x200);

    load_program(&g);
    /* The LDT's second page at VA(5), used through entry 512. */
    ASSERT_EQ(hvtest_pt_update(g.l1, 5, hvtest_pte(ldt2, 0)), 0);
    ASSERT_EQ(set_ldt(VA(4), 1024), 0);
    run_ldesc(&g, (512 << 3) | 4);
    ASSERT_HEX(v->ctxt.user_regs.rip, RIP_DONE);
    ASSERT_HEX(v->ldt_frames[0], 0);
    ASSERT_HEX(v->ldt_frames[1], ldt2);
    ASSERT_FRAME(ldt2, ALLOC | 3, TAF_SEG_1);
    HVTEST_AUDIT_CLEAN();

    /* NEW_BASEPTR to other tables drops the shadow (Xen's new_guest_cr3). */
    hvtest_as(d, 0);
    {
        struct guest g2;

        build_guest(&g2, d, 0x400);
        ASSERT_HEX(v->ldt_frames[1], 0);
        ASSERT_FRAME(ldt2, ALLOC | 2, TAF_SEG_0);
        ASSERT_EQ(new_guest_cr3(g.l4), 0);
    }

    /* Mapped again, then the vCPU is reset by the toolstack. */
    run_ldesc(&g, (512 << 3) | 4);
    ASSERT_FRAME(ldt2, ALLOC | 3, TAF_SEG_1);
    set_current(host.dom0->vcpu[0]);
    ASSERT_EQ(domctl_setvcpucontext(d, 0, NULL), 0);
    ASSERT_HEX(v->ldt_frames[1], 0);
    ASSERT_FRAME(ldt2, ALLOC | 2, TAF_SEG_0);
    HVTEST_AUDIT_CLEAN();

    /* And a live mapping is dropped when the domain dies. */
    hvtest_as(d, 0);
    ASSERT_EQ(new_guest_cr3(g.l4), 0);
    run_ldesc(&g, (512 << 3) | 4);
    ASSERT_FRAME(ldt2, ALLOC | 3, TAF_SEG_1);
    HVTEST_AUDIT_CLEAN();
    hvtest_destroy(d);
    ASSERT(page_get_owner(mfn_to_page(ldt2)) == NULL);
    /* Free, and marked for a scrub: the guest wrote descriptors there. */
    ASSERT_FRAME(ldt2, PGC_state_free | PGC_need_scrub, 0);
    hvtest_done();
}
