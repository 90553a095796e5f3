/* SPDX-License-Identifier: MIT */
/*
 * The auditor: recompute every frame's reference counts from scratch and
 * compare them with the frame table.
 *
 * It runs at quiescent points (no hypercall in flight on the audited
 * domains): from tests, and after every hypercall when the daemon is built
 * with --enable-debug-audit or host.audit_every_hypercall is set.  It is one
 * pass over the frame table that adds every reference each holder owns into
 * a scratch array (accumulate), then one pass that compares (compare), so
 * a 64 MiB host takes well under a millisecond.  When a count is wrong, a
 * second, focused run of the same accumulation breaks the expected count
 * down by holder, which is what makes the message useful:
 *
 *   mfn 0x1234 (d1 pfn 0x10): general count 3, expected 4
 *   (alloc 1, l1 maps 2, pinned 1)
 *
 * Holders and what they own (reference sections 2-4, 9):
 *  - PGC_allocated: one general ref.
 *  - A present entry of a validated L1 table: one general ref on the frame
 *    it maps, plus a writable type ref if it has RW; frames outside RAM or
 *    owned by DOMID_IO (MMIO) carry none.  Grant mappings (_PAGE_GNTTAB) own
 *    exactly the same refs, so they are counted here too.
 *  - A present, non-self entry of a validated Lk table (k = 2..4, guest
 *    slots only): one general ref plus an L(k-1) type ref, or an Lk type ref
 *    when the target is a same-level table (a linear entry).
 *  - A PGT_partial table: entries [0, nr_validated_ptes) as above, and entry
 *    [nr_validated_ptes] one general ref only if partial_flags holds
 *    PTF_partial_set.  The partial table itself holds one extra general ref
 *    and its type count is exactly the one the partial state owns.
 *  - PGT_pinned: one general and one type ref.
 *  - Each vCPU's guest_table and guest_table_user: general + L4 type ref;
 *    each of its GDT frames and shadow-mapped LDT pages: general +
 *    seg_desc type ref; a pending old_guest_table: a general ref, plus a
 *    type ref unless it is partial.
 *  - A Xen-heap frame shared with a domain: its PGC_allocated ref, and one
 *    type ref that the sharing keeps for ever.
 *  - A grant device mapping (GNTMAP_device_map), which has no PTE: one
 *    general ref on the granted frame, plus a writable type ref unless it
 *    is read-only.  The granter's active entry counts them (devr, devw).
 *
 * The invariants of reference section 9, and how each is checked:
 *  1. General count: accumulated as above, compared exactly for every frame
 *     owned by a live domain; free and anonymous frames must have none.
 *  2. Type count: accumulated as above, compared exactly; every typed
 *     holder also records the type it needs, and a frame whose type field
 *     differs (or that two holders need as different types) is reported.
 *  3. general >= type + [allocated] for domain-heap frames: checked
 *     directly (it also follows from 1 and 2).
 *  4. Writable vs page table: an RW L1 entry needs the writable type, a
 *     table entry needs a table type, so a frame referenced both ways fails
 *     the type check of 2.  RW linear or self entries are reported.
 *  5. A page-table type with count 0 must be neither validated nor
 *     partial: checked for every owned frame.  Conversely a non-zero count
 *     must be validated or partial (nothing is validate-locked at rest).
 *  6. PGT_partial: type count 1 (from 2: the partial state is its only type
 *     holder), not validated, nr_validated_ptes <= 512, page-table type.
 *  7. PGT_pinned: a page-table type, validated, count >= 1.
 *  8. linear_pt_count of every validated or partial table: the number of
 *     same-level linear entries it holds (> 0) or minus the number of
 *     tables using it linearly (< 0), never both.  Recounted and compared.
 *  9. tot_pages == the non-xen-heap frames the domain owns, each on its
 *     page list exactly once; xenheap_pages and extra_pages likewise.  The
 *     lists are walked (with a length bound) and every owned frame must be
 *     on the right one (or on relmem_list while it is being destroyed).
 * 10. M2P INVALID for free frames.  Not for frames a domain owns, shared
 *     Xen-heap frames included: as on Xen (set_gpfn_from_mfn has no
 *     xen-heap check), a guest may point the M2P entry of any frame it
 *     holds, its shared_info and grant frames too, with
 *     MMU_MACHPHYS_UPDATE.  Sharing sets INVALID and freeing sets it again.
 * 11. Slots 256..271 of every validated L4 of a live domain hold what
 *     init_xen_l4_slots writes (run on a scratch copy); slot 256 may also
 *     be empty or the idle table's RO M2P entry (m2p_strict, fill_ro_mpt).
 *     Present guest entries carry the guest adjustments (US on L1-L4, A on
 *     L4) and no disallowed flags.
 * 12. A property of failing hypercalls: checked by the tests that fail
 *     them, with this auditor before and after.
 * 13. A property of runs (preempted == uninterrupted): not checked here.
 * 14. Free frames have count 0, type 0, no owner and are free in the heap
 *     bitmap (and vice versa, and the bitmap's population is free_pages);
 *     a dead domain owns nothing but frames other domains still hold (a
 *     grant mapping), each with exactly the refs its holders own.
 * 15. Scrubbing (host.c): a free frame is marked PGC_need_scrub exactly
 *     when it is in the scrub bitmap (whose population is nr_need_scrub)
 *     and exactly when its maybe_nonzero bit is set; a free frame without
 *     the mark holds zeros.  Reading frames is the costly part, so each
 *     audit reads at most AUDIT_ZERO_FRAMES of them, going on from where
 *     the last one stopped; a series of audits covers the host.  The audit
 *     holds scrub_lock, so no scrubber batch is in flight while it looks.
 *
 * Everything checked here is a state no guest action can reach: a guest
 * may do anything Xen permits (the hostile-guest suite runs under --audit),
 * so a violation is a hypervisor bug, and auditing after every hypercall
 * stops the daemon on one.
 *
 * Frames owned by DOMID_XEN (MFN 0, the M2P, xenmap's page tables, whose L3
 * frames carry PGT_locked while map_pages_to_xen works on them) and DOMID_IO
 * are only checked for being in use.  Frames of a dying domain are checked
 * for ownership and list membership only: relinquish_resources leaves
 * their counts in between states on purpose; their validated tables are
 * still scanned, because the refs those hold on other frames are real.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "hv.h"

/* One frame's expected state, accumulated from its holders. */
struct audit_frame
{
    uint32_t gen;           /* general refs */
    uint32_t typ;           /* type refs */
    uint32_t lin_entries;   /* same-level linear entries this table holds */
    uint32_t lin_uses;      /* same-level tables holding it linearly */
    uint8_t want;           /* type field (>> 61) typed holders need, 0 none */
    uint8_t flags;
    uint16_t pad;
};

#define AF_ON_LIST    0x01  /* on its owner's page list */
#define AF_ON_XENLIST 0x02  /* on its owner's xenpage list */
#define AF_CONFLICT   0x04  /* typed holders need two different types */
#define AF_FOCUS      0x08  /* held by the domain audit_domain looks at */

enum ref_kind
{
    K_ALLOC, K_L1, K_L2, K_L3, K_L4, K_LINEAR, K_PINNED, K_PARTIAL,
    K_PARTIAL_SET, K_CR3, K_CR3_USER, K_GDT, K_LDT, K_OLD_GUEST, K_XENHEAP,
    K_DEVMAP, NR_KINDS
};

static const char *const kind_name[NR_KINDS] = {
    [K_ALLOC] = "alloc",
    [K_L1] = "l1 maps",
    [K_L2] = "l2 entries",
    [K_L3] = "l3 entries",
    [K_L4] = "l4 entries",
    [K_LINEAR] = "linear entries",
    [K_PINNED] = "pinned",
    [K_PARTIAL] = "partial",
    [K_PARTIAL_SET] = "partial_set entry",
    [K_CR3] = "guest_table",
    [K_CR3_USER] = "guest_table_user",
    [K_GDT] = "gdt",
    [K_LDT] = "ldt",
    [K_OLD_GUEST] = "old_guest_table",
    [K_XENHEAP] = "xen-heap share",
    [K_DEVMAP] = "grant device maps",
};

struct audit
{
    struct audit_frame *f;
    uint64_t *free_bitmap;          /* copy taken under heap_lock */
    uint64_t *scrub_bitmap;         /* likewise */
    uint64_t free_pages;
    uint64_t nr_need_scrub;
    uint64_t zero_budget;           /* frames left to read this audit */
    struct domain **byid;           /* domain_by_id snapshot, refs held */
    struct domain *focus;           /* audit_domain's domain, or NULL */

    /* Explain mode: accumulate only the holders of one frame, by kind. */
    bool explaining;
    mfn_t explain_mfn;
    uint32_t gen_by[NR_KINDS];
    uint32_t typ_by[NR_KINDS];

    char *msg;
    size_t len;
    int rc;
};

#define TYPE_IDX(t) ((unsigned int)(((t) & PGT_type_mask) >> PG_shift(3)))

static const char *const type_name[8] = {
    "none", "L1", "L2", "L3", "L4", "seg_desc", "shared", "writable",
};

/* ------------------------------------------------------------------------
 * Reporting
 * ------------------------------------------------------------------------ */

static struct domain *owner_of(const struct audit *a, mfn_t mfn)
{
    unsigned int o = atomic_load(&mfn_to_page(mfn)->owner);

    return o ? a->byid[o - 1] : NULL;
}

/* Does a violation about this frame concern the audited domain? */
static bool frame_in_scope(const struct audit *a, mfn_t mfn)
{
    return !a->focus || owner_of(a, mfn) == a->focus ||
           (a->f[mfn].flags & AF_FOCUS);
}

static void report(struct audit *a, const char *fmt, va_list ap)
{
    a->rc = -EILSEQ;
    if ( a->len )
        vsnprintf(a->msg, a->len, fmt, ap);
}

/* A violation about the domain d (not about one frame). */
static void __attribute__((format(printf, 3, 4)))
dom_fail(struct audit *a, const struct domain *d, const char *fmt, ...)
{
    va_list ap;

    if ( a->rc || a->explaining || (a->focus && a->focus != d) )
        return;
    va_start(ap, fmt);
    report(a, fmt, ap);
    va_end(ap);
}

/* Write "mfn X (dN pfn P): " in front of a frame's violation. */
static void frame_prefix(mfn_t mfn, char *buf, size_t len)
{
    unsigned int o = atomic_load(&mfn_to_page(mfn)->owner);
    uint64_t pfn = get_gpfn_from_mfn(mfn);
    uint64_t caf = atomic_load(&mfn_to_page(mfn)->count_info);
    char pfns[32];

    if ( VALID_M2P(pfn) )
        snprintf(pfns, sizeof(pfns), "pfn %#lx", (unsigned long)pfn);
    else
        snprintf(pfns, sizeof(pfns), "pfn INVALID");
    if ( o )
        snprintf(buf, len, "mfn %#lx (d%u %s): ", (unsigned long)mfn, o - 1,
                 pfns);
    else if ( (caf & PGC_state) == PGC_state_free )
        snprintf(buf, len, "mfn %#lx (free %s): ", (unsigned long)mfn, pfns);
    else
        snprintf(buf, len, "mfn %#lx (anonymous %s): ", (unsigned long)mfn,
                 pfns);
}

static void __attribute__((format(printf, 3, 4)))
frame_fail(struct audit *a, mfn_t mfn, const char *fmt, ...)
{
    char prefix[96];
    char body[384];
    va_list ap;

    if ( a->rc || a->explaining || !frame_in_scope(a, mfn) )
        return;
    frame_prefix(mfn, prefix, sizeof(prefix));
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    a->rc = -EILSEQ;
    if ( a->len )
        snprintf(a->msg, a->len, "%s%s", prefix, body);
}

/* ------------------------------------------------------------------------
 * Accumulation: every holder adds what it owns
 * ------------------------------------------------------------------------ */

/*
 * Holder `holder` owns refs on mfn: a general ref if gen, a type ref of
 * type `want` (a PGT_* type, or 0 for "whatever the frame has") if typed.
 */
static void add_ref(struct audit *a, const struct domain *holder, mfn_t mfn,
                    enum ref_kind k, bool gen, bool typed, uint64_t want)
{
    struct audit_frame *f;
    unsigned int w;

    if ( a->explaining )
    {
        if ( mfn == a->explain_mfn )
        {
            a->gen_by[k] += gen;
            a->typ_by[k] += typed;
        }
        return;
    }

    f = &a->f[mfn];
    f->gen += gen;
    f->typ += typed;
    if ( a->focus && holder == a->focus )
        f->flags |= AF_FOCUS;
    if ( !typed || !want )
        return;
    w = TYPE_IDX(want);
    if ( !f->want )
        f->want = (uint8_t)w;
    else if ( f->want != w )
        f->flags |= AF_CONFLICT;
}

/* A linear (same-level) relationship: table holds an entry using target. */
static void add_linear(struct audit *a, mfn_t table, mfn_t target)
{
    if ( a->explaining )
        return;
    a->f[table].lin_entries++;
    a->f[target].lin_uses++;
}

static void hold_l1e(struct audit *a, struct domain *d, mfn_t table,
                     unsigned int slot, intpte_t e)
{
    mfn_t m = pte_mfn(e);
    uint32_t flags = get_pte_flags(e);
    struct domain *o;

    /* Frames outside RAM and MMIO frames (DOMID_IO) carry no refs. */
    if ( !mfn_valid(m) )
        return;
    o = owner_of(a, m);
    if ( o && o == host.dom_io )
        return;

    if ( flags & l1_disallow_mask(d) & ~_PAGE_GNTTAB )
        frame_fail(a, table, "L1 slot %#x = %#lx has disallowed flags %#x",
                   slot, (unsigned long)e,
                   flags & l1_disallow_mask(d) & ~_PAGE_GNTTAB);
    else if ( !(e & _PAGE_USER) )
        frame_fail(a, table, "L1 slot %#x = %#lx lacks the guest adjustment "
                   "(_PAGE_USER)", slot, (unsigned long)e);

    add_ref(a, d, m, K_L1, true, e & _PAGE_RW, PGT_writable_page);
}

/*
 * Entry `slot` of the level-`level` table `table` (level 2..4) holds refs
 * on its target: general only (the partial_set entry) or general + type.
 */
static void hold_lne(struct audit *a, struct domain *d, mfn_t table,
                     unsigned int level, unsigned int slot, intpte_t e,
                     bool typed)
{
    static const enum ref_kind kind[5] = { 0, 0, K_L2, K_L3, K_L4 };
    mfn_t m = pte_mfn(e);
    uint64_t ttaf;
    bool linear;

    /* A self-map is a linear entry that holds nothing. */
    if ( m == table )
    {
        if ( e & _PAGE_RW )
            frame_fail(a, table, "L%u slot %#x maps the table itself with "
                       "RW", level, slot);
        return;
    }
    if ( !mfn_valid(m) )
    {
        frame_fail(a, table, "L%u slot %#x = %#lx references mfn %#lx "
                   "outside RAM", level, slot, (unsigned long)e,
                   (unsigned long)m);
        return;
    }
    if ( owner_of(a, m) != d )
        frame_fail(a, table, "L%u slot %#x references mfn %#lx of another "
                   "owner", level, slot, (unsigned long)m);
    /* The partial_set entry is written back adjusted only once it is done. */
    if ( !typed )
        ;
    else if ( get_pte_flags(e) & BASE_DISALLOW_MASK )
        frame_fail(a, table, "L%u slot %#x = %#lx has disallowed flags %#x",
                   level, slot, (unsigned long)e,
                   get_pte_flags(e) & BASE_DISALLOW_MASK);
    else if ( !(e & _PAGE_USER) || (level == 4 && !(e & _PAGE_ACCESSED)) )
        frame_fail(a, table, "L%u slot %#x = %#lx lacks the guest "
                   "adjustment", level, slot, (unsigned long)e);

    ttaf = atomic_load(&mfn_to_page(m)->type_info);
    linear = PGT_pt_level(ttaf) == level;
    if ( linear )
    {
        if ( e & _PAGE_RW )
            frame_fail(a, table, "L%u slot %#x is a linear entry with RW",
                       level, slot);
        add_linear(a, table, m);
        add_ref(a, d, m, typed ? K_LINEAR : K_PARTIAL_SET, true, typed,
                PGT_for_level(level));
    }
    else
        add_ref(a, d, m, typed ? kind[level] : K_PARTIAL_SET, true, typed,
                PGT_for_level(level - 1));
}

/* Slots 256..271 of a validated L4 against a scratch init_xen_l4_slots. */
static void check_xen_l4_slots(struct audit *a, struct domain *d, mfn_t mfn,
                               const intpte_t *l4t)
{
    intpte_t scratch[L1_PAGETABLE_ENTRIES];
    const intpte_t *idle = map_domain_page(host.idle_pg_table);
    intpte_t ro_mpt = __atomic_load_n(&idle[ROOT_PAGETABLE_FIRST_XEN_SLOT],
                                      __ATOMIC_RELAXED);

    unmap_domain_page(idle);
    memcpy(scratch, l4t, sizeof(scratch));
    init_xen_l4_slots(scratch, mfn, d);
    for ( unsigned int i = ROOT_PAGETABLE_FIRST_XEN_SLOT;
          i <= ROOT_PAGETABLE_LAST_XEN_SLOT; i++ )
    {
        /* The RO M2P slot comes and goes with m2p_strict and the base. */
        if ( i == ROOT_PAGETABLE_FIRST_XEN_SLOT &&
             (l4t[i] == 0 || l4t[i] == ro_mpt) )
            continue;
        if ( l4t[i] != scratch[i] )
        {
            frame_fail(a, mfn, "L4 Xen slot %u = %#lx, expected %#lx", i,
                       (unsigned long)l4t[i], (unsigned long)scratch[i]);
            return;
        }
    }
}

/* A validated or partial table of level `level` owned by d. */
static void scan_table(struct audit *a, struct domain *d, mfn_t mfn,
                       unsigned int level, uint64_t taf)
{
    struct page_info *pg = mfn_to_page(mfn);
    const intpte_t *map = map_domain_page(mfn);
    unsigned int end = L1_PAGETABLE_ENTRIES, pset = L1_PAGETABLE_ENTRIES;
    intpte_t t[L1_PAGETABLE_ENTRIES];

    /* Entries are written atomically elsewhere: read them likewise. */
    for ( unsigned int i = 0; i < L1_PAGETABLE_ENTRIES; i++ )
        t[i] = __atomic_load_n(&map[i], __ATOMIC_RELAXED);
    unmap_domain_page(map);

    if ( taf & PGT_partial )
    {
        end = min(page_nr_validated_ptes(pg), L1_PAGETABLE_ENTRIES);
        if ( page_partial_flags(pg) & PTF_partial_set )
            pset = end;
    }
    for ( unsigned int i = 0; i < end; i++ )
    {
        intpte_t e = t[i];

        if ( !(e & _PAGE_PRESENT) )
            continue;
        if ( level == 1 )
            hold_l1e(a, d, mfn, i, e);
        else if ( level != 4 || is_guest_l4_slot(i) )
            hold_lne(a, d, mfn, level, i, e, true);
    }
    if ( pset < L1_PAGETABLE_ENTRIES && (t[pset] & _PAGE_PRESENT) &&
         level > 1 )
        hold_lne(a, d, mfn, level, pset, t[pset], false);
    if ( level == 4 && (taf & PGT_validated) && !a->explaining &&
         !domain_is_dying(d) )
        check_xen_l4_slots(a, d, mfn, t);
}

static void account_vcpu(struct audit *a, struct domain *d, struct vcpu *v)
{
    unsigned int nr_gdt = (v->gdt_ents + 511) / 512;
    struct page_info *old = v->old_guest_table;

    if ( v->guest_table && mfn_valid(v->guest_table) )
        add_ref(a, d, v->guest_table, K_CR3, true, true, PGT_l4_page_table);
    if ( v->guest_table_user && mfn_valid(v->guest_table_user) )
        add_ref(a, d, v->guest_table_user, K_CR3_USER, true, true,
                PGT_l4_page_table);
    for ( unsigned int i = 0; i < nr_gdt && i < ARRAY_SIZE(v->gdt_frames);
          i++ )
        if ( v->gdt_frames[i] && mfn_valid(v->gdt_frames[i]) )
            add_ref(a, d, v->gdt_frames[i], K_GDT, true, true,
                    PGT_seg_desc_page);
    for ( unsigned int i = 0; i < ARRAY_SIZE(v->ldt_frames); i++ )
        if ( v->ldt_frames[i] && mfn_valid(v->ldt_frames[i]) )
            add_ref(a, d, v->ldt_frames[i], K_LDT, true, true,
                    PGT_seg_desc_page);
    if ( !old )
        return;
    /* A partial one's type ref is the one its PGT_partial owns. */
    add_ref(a, d, page_to_mfn(old), K_OLD_GUEST, true,
            !v->old_guest_table_partial, 0);
    if ( v->old_guest_ptpg &&
         PGT_type_equal(atomic_load(&old->type_info),
                        atomic_load(&v->old_guest_ptpg->type_info)) )
        add_linear(a, page_to_mfn(v->old_guest_ptpg), page_to_mfn(old));
}

/* One frame's own holders: allocation, pin, partial state, its entries. */
static void account_frame(struct audit *a, mfn_t mfn)
{
    struct page_info *pg = mfn_to_page(mfn);
    uint64_t caf = atomic_load(&pg->count_info);
    uint64_t taf = atomic_load(&pg->type_info);
    struct domain *d;
    unsigned int level;

    if ( (caf & PGC_state) == PGC_state_free )
        return;
    d = owner_of(a, mfn);
    if ( !d || d == host.dom_xen || d == host.dom_io )
        return;

    if ( caf & PGC_allocated )
        add_ref(a, d, mfn, K_ALLOC, true, false, 0);
    if ( caf & PGC_xen_heap )
        add_ref(a, d, mfn, K_XENHEAP, false, true, 0);
    if ( taf & PGT_pinned )
        add_ref(a, d, mfn, K_PINNED, true, true, 0);
    if ( taf & PGT_partial )
        add_ref(a, d, mfn, K_PARTIAL, true, true, 0);
    level = PGT_pt_level(taf);
    if ( level && (taf & (PGT_validated | PGT_partial)) )
        scan_table(a, d, mfn, level, taf);
}

/* The refs of nr_ro + nr_rw device mappings of mfn by domain `mapper`. */
static void account_device_pins(void *arg, domid_t mapper, mfn_t mfn,
                                unsigned int nr_ro, unsigned int nr_rw)
{
    struct audit *a = arg;
    const struct domain *holder =
        mapper < ARRAY_SIZE(host.domain_by_id) ? a->byid[mapper] : NULL;

    if ( !mfn_valid(mfn) )
        return;
    for ( unsigned int i = 0; i < nr_ro; i++ )
        add_ref(a, holder, mfn, K_DEVMAP, true, false, 0);
    for ( unsigned int i = 0; i < nr_rw; i++ )
        add_ref(a, holder, mfn, K_DEVMAP, true, true, PGT_writable_page);
}

static void accumulate(struct audit *a)
{
    for ( unsigned int id = 0; id < ARRAY_SIZE(host.domain_by_id); id++ )
    {
        struct domain *d = a->byid[id];
        struct vcpu *v;

        if ( !d || d == host.dom_xen || d == host.dom_io )
            continue;
        for_each_vcpu ( d, v )
            account_vcpu(a, d, v);
        gnttab_audit_device_pins(d, account_device_pins, a);
    }
    for ( mfn_t mfn = 0; mfn < host.max_page; mfn++ )
        account_frame(a, mfn);
}

/* Break the expected counts of one frame down by holder. */
static void explain(struct audit *a, mfn_t mfn, bool type, char *buf,
                    size_t len)
{
    size_t n = 0;
    bool any = false;

    memset(a->gen_by, 0, sizeof(a->gen_by));
    memset(a->typ_by, 0, sizeof(a->typ_by));
    a->explaining = true;
    a->explain_mfn = mfn;
    accumulate(a);
    a->explaining = false;

    n += snprintf(buf + n, len - n, "(");
    for ( unsigned int k = 0; k < NR_KINDS && n < len; k++ )
    {
        uint32_t c = type ? a->typ_by[k] : a->gen_by[k];

        if ( !c )
            continue;
        n += snprintf(buf + n, len - n, "%s%s %u", any ? ", " : "",
                      kind_name[k], c);
        any = true;
    }
    if ( n < len )
        snprintf(buf + n, len - n, "%s)", any ? "" : "no holders");
}

/* ------------------------------------------------------------------------
 * Domains: page lists and their counters (invariants 9 and 14)
 * ------------------------------------------------------------------------ */

/*
 * The lists a domain's frames live on.  While a destruction pass runs,
 * the frames it has visited wait on relmem_list (Xen's arch.relmem_list),
 * domain-heap and xen-heap frames alike; they still count.
 */
enum { LIST_PAGE, LIST_XENPAGE, LIST_RELMEM };
static const char *const list_name[] = { "page", "xenpage", "relmem" };

struct list_counts
{
    uint64_t dom, xen, extra;   /* domain-heap, xen-heap, PGC_extra frames */
};

static void walk_list(struct audit *a, struct domain *d, unsigned int which,
                      struct list_counts *c)
{
    uint32_t link = which == LIST_PAGE ? d->page_list_head :
                    which == LIST_XENPAGE ? d->xenpage_list_head :
                    d->relmem_list_head;
    uint64_t n = 0;

    while ( link )
    {
        mfn_t mfn = link - 1;
        struct page_info *pg;
        uint64_t caf;
        bool xen;

        if ( !mfn_valid(mfn) || n++ > host.max_page )
        {
            dom_fail(a, d, "d%u: %s list corrupt at link %#x",
                     d->domain_id, list_name[which], link);
            break;
        }
        pg = mfn_to_page(mfn);
        caf = atomic_load(&pg->count_info);
        xen = caf & PGC_xen_heap;
        if ( a->f[mfn].flags & (AF_ON_LIST | AF_ON_XENLIST) )
            frame_fail(a, mfn, "on d%u's %s list twice (or on two lists)",
                       d->domain_id, list_name[which]);
        a->f[mfn].flags |= xen ? AF_ON_XENLIST : AF_ON_LIST;
        if ( owner_of(a, mfn) != d )
            frame_fail(a, mfn, "on d%u's %s list but not owned by it",
                       d->domain_id, list_name[which]);
        else if ( (which == LIST_PAGE && xen) ||
                  (which == LIST_XENPAGE && !xen) )
            frame_fail(a, mfn, "on d%u's %s list with count_info %#lx",
                       d->domain_id, list_name[which], (unsigned long)caf);
        if ( xen )
            c->xen++;
        else
        {
            c->dom++;
            c->extra += !!(caf & PGC_extra);
        }
        link = pg->list_next;
    }
}

static void check_domain(struct audit *a, struct domain *d)
{
    struct list_counts c = { 0 };

    spin_lock(&d->page_alloc_lock);
    walk_list(a, d, LIST_PAGE, &c);
    walk_list(a, d, LIST_XENPAGE, &c);
    walk_list(a, d, LIST_RELMEM, &c);
    if ( c.dom != atomic_load(&d->tot_pages) )
        dom_fail(a, d, "d%u: tot_pages %u, but %lu frames on its page list",
                 d->domain_id, atomic_load(&d->tot_pages),
                 (unsigned long)c.dom);
    else if ( c.xen != atomic_load(&d->xenheap_pages) )
        dom_fail(a, d, "d%u: xenheap_pages %u, but %lu frames on its "
                 "xenpage list", d->domain_id,
                 atomic_load(&d->xenheap_pages), (unsigned long)c.xen);
    else if ( c.extra != atomic_load(&d->extra_pages) )
        dom_fail(a, d, "d%u: extra_pages %u, but %lu PGC_extra frames",
                 d->domain_id, atomic_load(&d->extra_pages),
                 (unsigned long)c.extra);
    spin_unlock(&d->page_alloc_lock);
}

/* ------------------------------------------------------------------------
 * Comparison
 * ------------------------------------------------------------------------ */

static bool bitmap_free(const struct audit *a, mfn_t mfn)
{
    return a->free_bitmap[mfn / 64] & (1ULL << (mfn % 64));
}

/*
 * Clean free frames read per audit (1 MiB: a 64 MiB host's audit costs
 * twice as much with 4 MiB, ten times under ThreadSanitizer), and where
 * the next starts.
 */
#define AUDIT_ZERO_FRAMES 256
static uint64_t zero_cursor;        /* under scratch_lock */

/*
 * A free frame changes only under the heap's control, which an audit
 * holds still (scrub_lock, quiescence): a plain memcmp, which is also
 * one range check under ThreadSanitizer rather than 512 atomic loads.
 */
static bool frame_zero(mfn_t mfn)
{
    static const uint8_t zero[PAGE_SIZE];

    return !memcmp(map_domain_page(mfn), zero, PAGE_SIZE);
}

/*
 * Invariant 15 for free frame mfn.  A frame in a chunk not populated yet
 * has never been allocated, and reading it would populate it: skipped.
 */
static void check_scrub(struct audit *a, mfn_t mfn, uint64_t caf)
{
    bool marked = caf & PGC_need_scrub;
    bool listed = a->scrub_bitmap[mfn / 64] & (1ULL << (mfn % 64));
    bool nonzero = atomic_load_explicit(&host.maybe_nonzero[mfn / 64],
                                        memory_order_relaxed) &
                   (1ULL << (mfn % 64));

    if ( marked != listed )
        frame_fail(a, mfn, "free, %s PGC_need_scrub but %s the scrub bitmap",
                   marked ? "with" : "without", listed ? "in" : "not in");
    else if ( marked != nonzero )
        frame_fail(a, mfn, "free, %s PGC_need_scrub but maybe_nonzero %s",
                   marked ? "with" : "without", nonzero ? "set" : "clear");
}

static void check_zero_window(struct audit *a)
{
    uint64_t mfn = zero_cursor;

    for ( uint64_t n = 0; n < host.max_page && a->zero_budget && !a->rc;
          n++, mfn = (mfn + 1) % host.max_page )
    {
        uint64_t caf = atomic_load(&mfn_to_page(mfn)->count_info);

        if ( caf != PGC_state_free || !bitmap_free(a, mfn) ||
             !host_frame_populated(mfn) )
            continue;
        a->zero_budget--;
        if ( !frame_zero(mfn) )
            frame_fail(a, mfn, "free without PGC_need_scrub but holds data");
    }
    zero_cursor = mfn;
}

static void compare_free(struct audit *a, mfn_t mfn, uint64_t caf,
                         uint64_t taf)
{
    const struct audit_frame *f = &a->f[mfn];

    if ( (caf & PGC_state) != PGC_state_free || !bitmap_free(a, mfn) )
        frame_fail(a, mfn, "count_info %#lx but %s in the heap bitmap",
                   (unsigned long)caf, bitmap_free(a, mfn) ? "free" : "used");
    else if ( (caf & ~PGC_need_scrub) != PGC_state_free || taf )
        frame_fail(a, mfn, "free with count_info %#lx type_info %#lx",
                   (unsigned long)caf, (unsigned long)taf);
    else if ( atomic_load(&mfn_to_page(mfn)->owner) )
        frame_fail(a, mfn, "free but owned");
    else if ( get_gpfn_from_mfn(mfn) != INVALID_M2P_ENTRY )
        frame_fail(a, mfn, "free with M2P %#lx, expected INVALID",
                   (unsigned long)get_gpfn_from_mfn(mfn));
    else if ( f->gen || f->typ )
        frame_fail(a, mfn, "free but referenced: general count 0, "
                   "expected %u", f->gen);
    else
        check_scrub(a, mfn, caf);
}

static void count_mismatch(struct audit *a, mfn_t mfn, bool type,
                           uint64_t have, uint64_t want, uint64_t taf)
{
    char why[256];

    if ( a->rc || !frame_in_scope(a, mfn) )
        return;
    explain(a, mfn, type, why, sizeof(why));
    if ( type )
        frame_fail(a, mfn, "type count %lu, expected %lu %s, type_info %#lx",
                   (unsigned long)have, (unsigned long)want, why,
                   (unsigned long)taf);
    else
        frame_fail(a, mfn, "general count %lu, expected %lu %s",
                   (unsigned long)have, (unsigned long)want, why);
}

/*
 * The type word and the type its holders need (invariants 4-7): these
 * come first, because a wrong type or a broken state word explains a count
 * mismatch better than the count does.
 */
static void check_type_word(struct audit *a, mfn_t mfn, uint64_t taf)
{
    struct page_info *pg = mfn_to_page(mfn);
    const struct audit_frame *f = &a->f[mfn];
    uint64_t tc = taf & PGT_count_mask;
    unsigned int level = PGT_pt_level(taf), t = TYPE_IDX(taf);

    if ( f->flags & AF_CONFLICT )
        frame_fail(a, mfn, "held as two different types, type_info %#lx",
                   (unsigned long)taf);
    else if ( f->want && f->want != t )
        frame_fail(a, mfn, "type %s, but held as %s, type_info %#lx",
                   type_name[t], type_name[f->want], (unsigned long)taf);
    else if ( taf & PGT_locked )
        frame_fail(a, mfn, "page lock held at a quiescent point, "
                   "type_info %#lx", (unsigned long)taf);
    else if ( (taf & PGT_partial) &&
              (!level || (taf & PGT_validated) || tc != 1 ||
               page_nr_validated_ptes(pg) > L1_PAGETABLE_ENTRIES) )
        frame_fail(a, mfn, "bad partial state: type count %lu, expected 1, "
                   "type_info %#lx, nr_validated_ptes %u", (unsigned long)tc,
                   (unsigned long)taf, page_nr_validated_ptes(pg));
    else if ( level && !tc && (taf & PGT_validated) )
        frame_fail(a, mfn, "page table with type count 0 is validated, "
                   "type_info %#lx", (unsigned long)taf);
    else if ( tc && !(taf & (PGT_validated | PGT_partial)) )
        frame_fail(a, mfn, "type count %lu but neither validated nor "
                   "partial, type_info %#lx", (unsigned long)tc,
                   (unsigned long)taf);
    else if ( (taf & PGT_pinned) && (!level || !(taf & PGT_validated)) )
        frame_fail(a, mfn, "pinned but type_info %#lx", (unsigned long)taf);
}

/* Invariants 2, 3 and 8: the type count, and the linear count. */
static void compare_type(struct audit *a, mfn_t mfn, uint64_t caf,
                         uint64_t taf)
{
    struct page_info *pg = mfn_to_page(mfn);
    const struct audit_frame *f = &a->f[mfn];
    uint64_t tc = taf & PGT_count_mask;
    unsigned int level = PGT_pt_level(taf);

    if ( tc != f->typ )
        count_mismatch(a, mfn, true, tc, f->typ, taf);
    else if ( !(caf & PGC_xen_heap) &&
              (caf & PGC_count_mask) < tc + !!(caf & PGC_allocated) )
        frame_fail(a, mfn, "general count %lu below type count %lu + "
                   "allocation", (unsigned long)(caf & PGC_count_mask),
                   (unsigned long)tc);
    if ( a->rc || !level || !(taf & (PGT_validated | PGT_partial)) )
        return;

    /* Invariant 8: one sense only, and the right magnitude. */
    if ( f->lin_entries && f->lin_uses )
        frame_fail(a, mfn, "holds %u linear entries and is used linearly "
                   "by %u tables", f->lin_entries, f->lin_uses);
    else
    {
        int expect = f->lin_entries ? (int)f->lin_entries :
                     -(int)f->lin_uses;

        if ( page_linear_pt_count(pg) != expect )
            frame_fail(a, mfn, "linear_pt_count %d, expected %d",
                       page_linear_pt_count(pg), expect);
    }
}

static void compare_frame(struct audit *a, mfn_t mfn)
{
    struct page_info *pg = mfn_to_page(mfn);
    uint64_t caf = atomic_load(&pg->count_info);
    uint64_t taf = atomic_load(&pg->type_info);
    unsigned int o = atomic_load(&pg->owner);
    const struct audit_frame *f = &a->f[mfn];
    struct domain *d;

    if ( (caf & PGC_state) == PGC_state_free || bitmap_free(a, mfn) )
    {
        compare_free(a, mfn, caf, taf);
        return;
    }
    if ( !o )
    {
        if ( (caf & PGC_count_mask) || (taf & PGT_count_mask) || f->gen ||
             f->typ )
            frame_fail(a, mfn, "anonymous with count_info %#lx type_info "
                       "%#lx, expected general count %u", (unsigned long)caf,
                       (unsigned long)taf, f->gen);
        return;
    }
    d = a->byid[o - 1];
    if ( !d )
    {
        frame_fail(a, mfn, "owner d%u does not exist", o - 1);
        return;
    }
    if ( d == host.dom_xen || d == host.dom_io )
        return;
    if ( caf & PGC_xen_heap )
    {
        /* Its M2P entry is the guest's to set (invariant 10). */
        if ( !(f->flags & AF_ON_XENLIST) )
            frame_fail(a, mfn, "shared xen-heap frame not on d%u's xenpage "
                       "list", d->domain_id);
    }
    else if ( !(f->flags & AF_ON_LIST) )
        frame_fail(a, mfn, "owned by d%u but not on its page list",
                   d->domain_id);
    if ( a->rc )
        return;

    /*
     * A dead domain keeps only frames that others still hold (a grant
     * mapping, as Xen keeps a zombie domain): someone must, and exactly as
     * many refs as they own.
     */
    if ( atomic_load(&d->state) == DOMSTATE_DEAD )
    {
        if ( !f->gen )
            frame_fail(a, mfn, "owned by dead d%u and held by nobody",
                       d->domain_id);
        else if ( (caf & PGC_count_mask) != f->gen )
            count_mismatch(a, mfn, false, caf & PGC_count_mask, f->gen,
                           taf);
        return;
    }
    if ( domain_is_dying(d) )
        return;

    check_type_word(a, mfn, taf);
    if ( !a->rc && (caf & PGC_count_mask) != f->gen )
        count_mismatch(a, mfn, false, caf & PGC_count_mask, f->gen, taf);
    if ( !a->rc )
        compare_type(a, mfn, caf, taf);
}

/* ------------------------------------------------------------------------
 * Set-up and the entry points
 * ------------------------------------------------------------------------ */

/*
 * The scratch arrays are kept from one audit to the next: fresh ones would
 * cost more in page faults than the audit itself.  scratch_lock also
 * serialises audits, which share them.
 */
static pthread_mutex_t scratch_lock = PTHREAD_MUTEX_INITIALIZER;
static struct
{
    uint64_t max_page;
    struct audit_frame *f;
    uint64_t *free_bitmap;
    uint64_t *scrub_bitmap;
    struct domain **byid;
} scratch;

static int scratch_get(struct audit *a)
{
    size_t words = (host.max_page + 63) / 64;

    if ( scratch.max_page != host.max_page || !scratch.f )
    {
        free(scratch.f);
        free(scratch.free_bitmap);
        free(scratch.scrub_bitmap);
        scratch.f = calloc(host.max_page, sizeof(*scratch.f));
        scratch.free_bitmap = calloc(words, sizeof(uint64_t));
        scratch.scrub_bitmap = calloc(words, sizeof(uint64_t));
        scratch.max_page = host.max_page;
        if ( !scratch.byid )
            scratch.byid = calloc(ARRAY_SIZE(host.domain_by_id),
                                  sizeof(*scratch.byid));
        if ( !scratch.f || !scratch.free_bitmap || !scratch.scrub_bitmap ||
             !scratch.byid )
        {
            free(scratch.f);
            scratch.f = NULL;
            return -ENOMEM;
        }
    }
    else
    {
        memset(scratch.f, 0, host.max_page * sizeof(*scratch.f));
        memset(scratch.byid, 0,
               ARRAY_SIZE(host.domain_by_id) * sizeof(*scratch.byid));
    }
    a->f = scratch.f;
    a->free_bitmap = scratch.free_bitmap;
    a->scrub_bitmap = scratch.scrub_bitmap;
    a->byid = scratch.byid;
    return 0;
}

static int audit_begin(struct audit *a, struct domain *focus, char *msg,
                       size_t len)
{
    size_t words = (host.max_page + 63) / 64;

    memset(a, 0, sizeof(*a));
    a->focus = focus;
    a->msg = msg;
    a->len = len;
    if ( len )
        msg[0] = '\0';
    pthread_mutex_lock(&scratch_lock);
    /* Released by audit_end, which runs whatever happens here. */
    spin_lock(&host.scrub_lock);
    if ( scratch_get(a) )
        return -ENOMEM;

    /* Keep every domain alive while we look at it. */
    spin_lock(&host.domlist_lock);
    for ( unsigned int id = 0; id < ARRAY_SIZE(host.domain_by_id); id++ )
    {
        struct domain *d = host.domain_by_id[id];

        if ( d && get_domain(d) )
            a->byid[id] = d;
    }
    spin_unlock(&host.domlist_lock);

    spin_lock(&host.heap_lock);
    memcpy(a->free_bitmap, host.free_bitmap, words * sizeof(uint64_t));
    memcpy(a->scrub_bitmap, host.scrub_bitmap, words * sizeof(uint64_t));
    a->free_pages = host.free_pages;
    a->nr_need_scrub = host.nr_need_scrub;
    BUG_ON(host.scrub_held_mask);   /* scrub_lock keeps batches out */
    spin_unlock(&host.heap_lock);
    a->zero_budget = AUDIT_ZERO_FRAMES;
    return 0;
}

static void audit_end(struct audit *a)
{
    if ( a->byid )
        for ( unsigned int id = 0; id < ARRAY_SIZE(host.domain_by_id); id++ )
            if ( a->byid[id] )
                put_domain(a->byid[id]);
    spin_unlock(&host.scrub_lock);
    pthread_mutex_unlock(&scratch_lock);
}

static void check_heap(struct audit *a)
{
    uint64_t n = 0, dirty = 0, stray = 0;

    for ( uint64_t w = 0; w < (host.max_page + 63) / 64; w++ )
    {
        n += (uint64_t)__builtin_popcountll(a->free_bitmap[w]);
        dirty += (uint64_t)__builtin_popcountll(a->scrub_bitmap[w]);
        stray |= a->scrub_bitmap[w] & ~a->free_bitmap[w];
    }
    if ( a->focus )
        return;
    if ( n != a->free_pages )
    {
        a->rc = -EILSEQ;
        if ( a->len )
            snprintf(a->msg, a->len, "heap: free_pages %lu, but %lu frames "
                     "free in the bitmap", (unsigned long)a->free_pages,
                     (unsigned long)n);
    }
    else if ( dirty != a->nr_need_scrub || stray )
    {
        a->rc = -EILSEQ;
        if ( a->len )
            snprintf(a->msg, a->len, "heap: nr_need_scrub %lu, but %lu "
                     "frames in the scrub bitmap%s",
                     (unsigned long)a->nr_need_scrub, (unsigned long)dirty,
                     stray ? ", some of them not free" : "");
    }
}

static int audit_run(struct domain *focus, char *msg, size_t len)
{
    struct audit a;
    int rc = audit_begin(&a, focus, msg, len);

    if ( rc )
    {
        if ( len )
            snprintf(msg, len, "auditor: out of memory");
        goto out;
    }

    check_heap(&a);
    for ( unsigned int id = 0; id < ARRAY_SIZE(host.domain_by_id); id++ )
        if ( a.byid[id] && !a.rc )
            check_domain(&a, a.byid[id]);
    if ( !a.rc )
        accumulate(&a);
    for ( mfn_t mfn = 0; mfn < host.max_page && !a.rc; mfn++ )
        compare_frame(&a, mfn);
    if ( !a.rc )
        check_zero_window(&a);
    rc = a.rc;

 out:
    audit_end(&a);
    return rc;
}

int audit_domain(struct domain *d, char *msg, size_t len)
{
    return audit_run(d, msg, len);
}

int audit_host(char *msg, size_t len)
{
    return audit_run(NULL, msg, len);
}

/* ------------------------------------------------------------------------
 * Auditing after every hypercall (--enable-debug-audit)
 *
 * Hypercalls hold audit_lock shared while they run; the audit after one
 * takes it exclusively, so it sees a host with no hypercall in flight.  The
 * lock prefers writers, or a busy host would starve the auditor.  Nested
 * entries (a hypercall made from inside another) only count depth.  A
 * hypercall may wait for another thread (a synchronous pause waits for the
 * vCPU to stop), and that thread may be waiting here for the exclusive
 * lock: so the audit gives up after AUDIT_WAIT_MS rather than deadlock,
 * and a later hypercall's audit covers the state instead.
 * ------------------------------------------------------------------------ */

#define AUDIT_WAIT_MS 100

static pthread_rwlock_t audit_lock;
static pthread_once_t audit_lock_once = PTHREAD_ONCE_INIT;
static _Thread_local unsigned int hypercall_depth;

static void audit_lock_init(void)
{
    pthread_rwlockattr_t attr;

    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr,
        PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&audit_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
}

static bool audit_every_hypercall(void)
{
#ifdef HV_AUDIT_EVERY_HYPERCALL
    return true;
#else
    return host.audit_every_hypercall;
#endif
}

void hv_audit_before_hypercall(void)
{
    if ( !audit_every_hypercall() )
        return;
    pthread_once(&audit_lock_once, audit_lock_init);
    if ( hypercall_depth++ == 0 )
        pthread_rwlock_rdlock(&audit_lock);
}

void hv_audit_after_hypercall(const char *what)
{
    struct timespec until;
    char msg[512];
    int rc;

    if ( hypercall_depth )
    {
        if ( --hypercall_depth )
            return;
        pthread_rwlock_unlock(&audit_lock);
    }
    if ( !audit_every_hypercall() )
        return;
    pthread_once(&audit_lock_once, audit_lock_init);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += AUDIT_WAIT_MS * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    if ( pthread_rwlock_timedwrlock(&audit_lock, &until) )
        return;
    rc = audit_host(msg, sizeof(msg));
    pthread_rwlock_unlock(&audit_lock);
    if ( rc )
    {
        hv_printk(HVLOG_ERR, "audit after %s: %s", what, msg);
        BUG();
    }
}
