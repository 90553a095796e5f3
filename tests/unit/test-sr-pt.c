/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for saverestore/sr-pt.c: page-table and vCPU-context
 * normalisation (the saver's MFN -> PFN rewrite) and localisation (the
 * restorer's PFN -> MFN rewrite).
 *
 * The tests build small synthetic maps.  The source host has 256 frames
 * (max_mfn 0xff) and the guest 16 (max_pfn 0xf), PFN p living in MFN
 * 0x40 + 3p, so the frames between them (0x41, 0x42 ...) belong to
 * nobody.  The destination host has 1024 frames and hands out new ones
 * from 0x200 upwards through the populate callback.  Every assertion
 * checks exact entry words, return codes and message texts (Xen's), since
 * a wrong frame or a lost flag bit in a restored page table is a guest
 * crash or an escape, and the messages are what a failed migration shows.
 */
#include <errno.h>

#include "harness.h"
#include "sr-pt.h"

/* ---------------------------------------------------------------------
 * Fixtures
 * --------------------------------------------------------------------- */

#define SRC_MAX_MFN   0xffU
#define GUEST_MAX_PFN 15U
#define DST_MAX_MFN   0x3ffU
#define DST_FIRST_MFN 0x200U

/* Where the source host keeps the guest's PFN @p. */
#define MFN(p) (0x40U + 3U * (p))

/* Every flag bit a PTE can carry outside the frame field. */
#define HIGH_BITS (_PAGE_NX | (0x7ffULL << 52))
#define LOW_FLAGS (_PAGE_AVAIL | _PAGE_DIRTY | _PAGE_ACCESSED | _PAGE_USER | \
                   _PAGE_RW | _PAGE_PRESENT)
#define PTE(frame, flags) (((uint64_t)(frame) << PAGE_SHIFT) | (flags))

#define L1 XEN_DOMCTL_PFINFO_L1TAB
#define L2 XEN_DOMCTL_PFINFO_L2TAB
#define L3 XEN_DOMCTL_PFINFO_L3TAB
#define L4 XEN_DOMCTL_PFINFO_L4TAB

/* The saver's view: the source host's M2P and the guest's P2M. */
struct src_fix
{
    uint64_t m2p[SRC_MAX_MFN + 1];
    uint64_t p2m[GUEST_MAX_PFN + 1];
    char msg[SR__PT_MSG_SIZE];
    struct sr__pt_ctx ctx;
};

static void src_init(struct src_fix *f, unsigned int flags)
{
    unsigned int i;

    memset(f, 0, sizeof(*f));
    for ( i = 0; i <= SRC_MAX_MFN; i++ )
        f->m2p[i] = SR__INVALID_FRAME;
    for ( i = 0; i <= GUEST_MAX_PFN; i++ )
    {
        f->p2m[i] = MFN(i);
        f->m2p[MFN(i)] = i;
    }
    f->ctx.max_mfn = SRC_MAX_MFN;
    f->ctx.m2p = f->m2p;
    f->ctx.max_pfn = GUEST_MAX_PFN;
    f->ctx.p2m = f->p2m;
    f->ctx.flags = flags;
    f->ctx.msg = f->msg;
    f->ctx.msg_size = sizeof(f->msg);
}

/*
 * The restorer's view: the destination host's M2P, the new domain's P2M
 * (empty until populated) and the types the stream declared.
 */
struct dst_fix
{
    uint64_t m2p[DST_MAX_MFN + 1];
    uint64_t p2m[GUEST_MAX_PFN + 1];
    uint32_t types[GUEST_MAX_PFN + 1];
    uint64_t next_mfn;
    unsigned int nr_calls;
    uint64_t called[SR__PT_ENTRIES];
    uint64_t fail_pfn;          /* populate of this PFN fails ... */
    int fail_rc;                /* ... returning this */
    bool fail_invalid;          /* ... or hands back INVALID */
    bool forget_m2p;            /* populate leaves the M2P stale */
    char msg[SR__PT_MSG_SIZE];
    struct sr__pt_ctx ctx;
};

static int dst_populate(void *arg, uint64_t pfn, uint64_t *mfn)
{
    struct dst_fix *f = arg;

    f->called[f->nr_calls++] = pfn;
    if ( pfn == f->fail_pfn )
    {
        if ( f->fail_invalid )
        {
            *mfn = SR__INVALID_FRAME;
            return 0;
        }
        return f->fail_rc;
    }

    *mfn = f->next_mfn++;
    if ( !f->forget_m2p )
        f->m2p[*mfn] = pfn;

    return 0;
}

static void dst_init(struct dst_fix *f)
{
    unsigned int i;

    memset(f, 0, sizeof(*f));
    for ( i = 0; i <= DST_MAX_MFN; i++ )
        f->m2p[i] = SR__INVALID_FRAME;
    for ( i = 0; i <= GUEST_MAX_PFN; i++ )
        f->p2m[i] = SR__INVALID_FRAME;
    f->next_mfn = DST_FIRST_MFN;
    f->fail_pfn = SR__INVALID_FRAME;
    f->ctx.max_mfn = DST_MAX_MFN;
    f->ctx.m2p = f->m2p;
    f->ctx.max_pfn = GUEST_MAX_PFN;
    f->ctx.p2m = f->p2m;
    f->ctx.populate = dst_populate;
    f->ctx.populate_arg = f;
    f->ctx.msg = f->msg;
    f->ctx.msg_size = sizeof(f->msg);
}

/* Give PFN @pfn the destination frame @mfn, as if populated earlier. */
static void dst_map(struct dst_fix *f, uint64_t pfn, uint64_t mfn)
{
    f->p2m[pfn] = mfn;
    f->m2p[mfn] = pfn;
}

/* A page-table page with a handful of interesting entries. */
static void fill_table(uint64_t *page, uint32_t type)
{
    memset(page, 0, SR__PT_ENTRIES * sizeof(*page));
    page[0] = PTE(MFN(0), _PAGE_PRESENT);
    page[1] = PTE(MFN(1), LOW_FLAGS | HIGH_BITS);
    page[2] = PTE(MFN(15), _PAGE_PRESENT | _PAGE_RW | _PAGE_NX);
    /* Not present: a swap entry whose "frame" is nobody's. */
    page[3] = 0x0000123456789ffeULL;
    page[511] = PTE(MFN(7), _PAGE_PRESENT | _PAGE_ACCESSED | (1ULL << 62));
    /* In an L1, bit 7 is PAT, not a superpage. */
    if ( type == L1 )
        page[4] = PTE(MFN(3), _PAGE_PRESENT | _PAGE_PAT | _PAGE_GLOBAL);
}

/* ---------------------------------------------------------------------
 * mfn_in_pseudophysmap
 * --------------------------------------------------------------------- */

TEST(pseudophysmap_accepts_only_guest_frames)
{
    struct src_fix f;

    src_init(&f, 0);
    ASSERT(sr__mfn_in_pseudophysmap(&f.ctx, MFN(0)));
    ASSERT(sr__mfn_in_pseudophysmap(&f.ctx, MFN(15)));
    /* Past the M2P. */
    ASSERT(!sr__mfn_in_pseudophysmap(&f.ctx, SRC_MAX_MFN + 1));
    ASSERT(!sr__mfn_in_pseudophysmap(&f.ctx, SR__INVALID_FRAME));
    /* Nobody's frame: M2P entry invalid. */
    ASSERT(!sr__mfn_in_pseudophysmap(&f.ctx, 0x41));
    /* Another domain's frame: its PFN is past this guest's max_pfn. */
    f.m2p[0x90] = GUEST_MAX_PFN + 1;
    ASSERT(!sr__mfn_in_pseudophysmap(&f.ctx, 0x90));
}

TEST(pseudophysmap_p2m_disagreeing_with_m2p_detected)
{
    struct src_fix f;

    src_init(&f, 0);
    /* M2P still says MFN(2) is PFN 2, but the guest moved PFN 2. */
    f.p2m[2] = 0x90;
    ASSERT(!sr__mfn_in_pseudophysmap(&f.ctx, MFN(2)));
    /* ... and 0x90 is not the guest's either: M2P says nothing. */
    ASSERT(!sr__mfn_in_pseudophysmap(&f.ctx, 0x90));
    /* The other frames are unaffected. */
    ASSERT(sr__mfn_in_pseudophysmap(&f.ctx, MFN(3)));
}

/* ---------------------------------------------------------------------
 * normalise_pagetable
 * --------------------------------------------------------------------- */

TEST(normalise_every_level_rewrites_frames_keeps_flags)
{
    static const uint32_t types[] = { L1, L2, L3, L4 };
    uint64_t src[SR__PT_ENTRIES], dst[SR__PT_ENTRIES];
    struct src_fix f;
    unsigned int t, i;

    src_init(&f, 0);
    for ( t = 0; t < 4; t++ )
    {
        fill_table(src, types[t]);
        memset(dst, 0xa5, sizeof(dst));
        ASSERT_EQ(sr__normalise_pagetable(&f.ctx, types[t], src, dst), 0);
        ASSERT_HEX(dst[0], 0x0000000000000001ULL);
        ASSERT_HEX(dst[1], 0xfff0000000001e67ULL);
        ASSERT_HEX(dst[2], 0x800000000000f003ULL);
        ASSERT_HEX(dst[3], 0x0000123456789ffeULL);
        ASSERT_HEX(dst[511], 0x4000000000007021ULL);
        if ( types[t] == L1 )
            ASSERT_HEX(dst[4], 0x0000000000003181ULL);
        else
            ASSERT_HEX(dst[4], 0);
        for ( i = 5; i < 511; i++ )
            ASSERT_HEX(dst[i], 0);
    }
}

TEST(normalise_then_localise_gives_back_every_entry)
{
    static const uint32_t types[] = {
        L1, L2, L3, L4 | XEN_DOMCTL_PFINFO_LPINTAB,
    };
    uint64_t src[SR__PT_ENTRIES], page[SR__PT_ENTRIES];
    struct src_fix s;
    struct dst_fix d;
    unsigned int t, i;

    src_init(&s, 0);
    /* Restoring onto the same frames must reproduce the table exactly. */
    dst_init(&d);
    d.ctx.max_mfn = SRC_MAX_MFN;
    for ( i = 0; i <= GUEST_MAX_PFN; i++ )
        dst_map(&d, i, MFN(i));

    for ( t = 0; t < 4; t++ )
    {
        fill_table(src, types[t]);
        ASSERT_EQ(sr__normalise_pagetable(&s.ctx, types[t], src, page), 0);
        ASSERT_EQ(sr__localise_pagetable(&d.ctx, types[t], page), 0);
        for ( i = 0; i < SR__PT_ENTRIES; i++ )
            ASSERT_HEX(page[i], src[i]);
    }
    ASSERT_EQ(d.nr_calls, 0);
}

TEST(localise_onto_new_frames_keeps_every_flag_bit)
{
    uint64_t page[SR__PT_ENTRIES];
    struct dst_fix d;

    dst_init(&d);
    dst_map(&d, 0, 0x3f0);
    dst_map(&d, 1, 0x301);
    dst_map(&d, 15, 0x2ff);
    dst_map(&d, 7, 0x200);
    memset(page, 0, sizeof(page));
    page[0] = PTE(0, _PAGE_PRESENT);
    page[1] = PTE(1, LOW_FLAGS | HIGH_BITS);
    page[2] = PTE(15, _PAGE_PRESENT | _PAGE_RW | _PAGE_NX);
    page[3] = 0x0000123456789ffeULL;
    page[511] = PTE(7, _PAGE_PRESENT | _PAGE_ACCESSED | (1ULL << 62));

    ASSERT_EQ(sr__localise_pagetable(&d.ctx, L2, page), 0);
    ASSERT_HEX(page[0], 0x00000000003f0001ULL);
    ASSERT_HEX(page[1], 0xfff0000000301e67ULL);
    ASSERT_HEX(page[2], 0x80000000002ff003ULL);
    ASSERT_HEX(page[3], 0x0000123456789ffeULL);
    ASSERT_HEX(page[511], 0x4000000000200021ULL);
    ASSERT_EQ(d.nr_calls, 0);
}

TEST(normalise_in_place_allowed)
{
    uint64_t page[SR__PT_ENTRIES];
    struct src_fix f;

    src_init(&f, 0);
    fill_table(page, L1);
    ASSERT_EQ(sr__normalise_pagetable(&f.ctx, L1, page, page), 0);
    ASSERT_HEX(page[1], 0xfff0000000001e67ULL);
    ASSERT_HEX(page[4], 0x0000000000003181ULL);
}

TEST(normalise_l4_xen_slots_cleared)
{
    uint64_t src[SR__PT_ENTRIES], dst[SR__PT_ENTRIES];
    struct src_fix f;
    unsigned int i;

    src_init(&f, 0);
    memset(src, 0, sizeof(src));
    src[255] = PTE(MFN(4), _PAGE_PRESENT | _PAGE_RW);
    /* The hypervisor's own frames: not the guest's, yet no error. */
    for ( i = ROOT_PAGETABLE_FIRST_XEN_SLOT;
          i <= ROOT_PAGETABLE_LAST_XEN_SLOT; i++ )
        src[i] = PTE(0x5 + i, _PAGE_PRESENT | _PAGE_RW);
    src[260] = 0xdead000;       /* even a non-present entry */
    src[272] = PTE(MFN(5), _PAGE_PRESENT);

    ASSERT_EQ(sr__normalise_pagetable(&f.ctx, L4, src, dst), 0);
    ASSERT_HEX(dst[255], 0x4003);
    for ( i = 256; i <= 271; i++ )
        ASSERT_HEX(dst[i], 0);
    ASSERT_HEX(dst[272], 0x5001);

    /* The same slots of a lower level are ordinary guest entries. */
    ASSERT_EQ(sr__normalise_pagetable(&f.ctx, L3, src, dst), -ERANGE);
    ASSERT_STR(f.msg, "Bad mfn for L3[256]: mfn 0x105, max 0xff");
}

TEST(normalise_pse_refused_at_l2_l3_l4)
{
    static const uint32_t types[] = { L2, L3, L4 };
    static const char *const msgs[] = {
        "Cannot migrate superpage (L2[7]: 0x00000000000430e3)",
        "Cannot migrate superpage (L3[7]: 0x00000000000430e3)",
        "Cannot migrate superpage (L4[7]: 0x00000000000430e3)",
    };
    uint64_t src[SR__PT_ENTRIES], dst[SR__PT_ENTRIES];
    struct src_fix f;
    unsigned int t;

    for ( t = 0; t < 3; t++ )
    {
        src_init(&f, 0);
        memset(src, 0, sizeof(src));
        src[7] = PTE(MFN(1), _PAGE_PRESENT | _PAGE_RW | _PAGE_PSE |
                     _PAGE_ACCESSED | _PAGE_DIRTY);
        /* Fatal once the guest is paused, as in Xen. */
        ASSERT_EQ(sr__normalise_pagetable(&f.ctx, types[t], src, dst),
                  -E2BIG);
        ASSERT_STR(f.msg, msgs[t]);
        /*
         * While it runs, the page may have stopped being a table since it
         * was typed: deferred (resent, and judged again, once paused).
         */
        src_init(&f, SR__PT_LIVE);
        ASSERT_EQ(sr__normalise_pagetable(&f.ctx, types[t], src, dst),
                  -EAGAIN);
        ASSERT_STR(f.msg, msgs[t]);
    }

    /* A non-present entry with bit 7 set is nobody's business. */
    src_init(&f, 0);
    src[7] = _PAGE_PSE | 0x1000;
    ASSERT_EQ(sr__normalise_pagetable(&f.ctx, L2, src, dst), 0);
    ASSERT_HEX(dst[7], 0x1080);
}

TEST(normalise_superpage_checked_before_frame)
{
    uint64_t src[SR__PT_ENTRIES], dst[SR__PT_ENTRIES];
    struct src_fix f;

    src_init(&f, 0);
    memset(src, 0, sizeof(src));
    src[3] = PTE(0x41, _PAGE_PRESENT | _PAGE_PSE);
    ASSERT_EQ(sr__normalise_pagetable(&f.ctx, L2, src, dst), -E2BIG);
    ASSERT_STR(f.msg, "Cannot migrate superpage (L2[3]: 0x0000000000041081)");
}

TEST(normalise_bad_mfn_eagain_while_live)
{
    uint64_t src[SR__PT_ENTRIES], dst[SR__PT_ENTRIES];
    struct src_fix f;

    src_init(&f, SR__PT_LIVE);
    fill_table(src, L1);
    src[9] = PTE(0x41, _PAGE_PRESENT | _PAGE_RW);
    ASSERT_EQ(sr__normalise_pagetable(&f.ctx, L1, src, dst), -EAGAIN);
    ASSERT_STR(f.msg, "Bad mfn for L1[9]: mfn 0x41, max 0xff, "
               "m2p[0x41] = 0xffffffffffffffff, max_pfn 0xf");
}

TEST(normalise_bad_mfn_fatal_when_paused)
{
    uint64_t src[SR__PT_ENTRIES], dst[SR__PT_ENTRIES];
    struct src_fix f;

    src_init(&f, 0);
    fill_table(src, L1);
    src[9] = PTE(0x41, _PAGE_PRESENT | _PAGE_RW);
    ASSERT_EQ(sr__normalise_pagetable(&f.ctx, L1, src, dst), -ERANGE);
    ASSERT_STR(f.msg, "Bad mfn for L1[9]: mfn 0x41, max 0xff, "
               "m2p[0x41] = 0xffffffffffffffff, max_pfn 0xf");

    /* A frame past the host's memory. */
    memset(src, 0, sizeof(src));
    src[0] = PTE(0x100, _PAGE_PRESENT);
    ASSERT_EQ(sr__normalise_pagetable(&f.ctx, L3, src, dst), -ERANGE);
    ASSERT_STR(f.msg, "Bad mfn for L3[0]: mfn 0x100, max 0xff");

    /* Without a message buffer the error is the same. */
    f.ctx.msg = NULL;
    ASSERT_EQ(sr__normalise_pagetable(&f.ctx, L3, src, dst), -ERANGE);
}

TEST(normalise_p2m_disagreeing_with_m2p_refused)
{
    uint64_t src[SR__PT_ENTRIES], dst[SR__PT_ENTRIES];
    struct src_fix f;

    src_init(&f, 0);
    f.p2m[2] = 0x90;
    memset(src, 0, sizeof(src));
    src[4] = PTE(MFN(2), _PAGE_PRESENT | _PAGE_USER);
    ASSERT_EQ(sr__normalise_pagetable(&f.ctx, L2, src, dst), -ERANGE);
    ASSERT_STR(f.msg, "Bad mfn for L2[4]: mfn 0x46, max 0xff, "
               "m2p[0x46] = 0x2, max_pfn 0xf, p2m[0x2] = 0x90");

    f.ctx.flags = SR__PT_LIVE;
    ASSERT_EQ(sr__normalise_pagetable(&f.ctx, L2, src, dst), -EAGAIN);
}

TEST(normalise_non_present_entries_untouched)
{
    uint64_t src[SR__PT_ENTRIES], dst[SR__PT_ENTRIES];
    struct src_fix f;
    unsigned int i;

    src_init(&f, 0);
    for ( i = 0; i < SR__PT_ENTRIES; i++ )
        src[i] = (0xfedcba9876543210ULL + i * 0x1002ULL) & ~_PAGE_PRESENT;
    ASSERT_EQ(sr__normalise_pagetable(&f.ctx, L1, src, dst), 0);
    for ( i = 0; i < SR__PT_ENTRIES; i++ )
        ASSERT_HEX(dst[i], src[i]);
}

TEST(normalise_other_types_copied_verbatim)
{
    static const uint32_t types[] = {
        XEN_DOMCTL_PFINFO_NOTAB, XEN_DOMCTL_PFINFO_XALLOC,
        XEN_DOMCTL_PFINFO_BROKEN, XEN_DOMCTL_PFINFO_XTAB,
    };
    uint64_t src[SR__PT_ENTRIES], dst[SR__PT_ENTRIES];
    struct src_fix f;
    unsigned int t, i;

    src_init(&f, 0);
    for ( i = 0; i < SR__PT_ENTRIES; i++ )
        src[i] = PTE(0x41 + i, _PAGE_PRESENT | _PAGE_PSE);
    for ( t = 0; t < 4; t++ )
    {
        memset(dst, 0, sizeof(dst));
        ASSERT_EQ(sr__normalise_pagetable(&f.ctx, types[t], src, dst), 0);
        for ( i = 0; i < SR__PT_ENTRIES; i++ )
            ASSERT_HEX(dst[i], src[i]);
        ASSERT(!sr__is_pagetable_type(types[t]));
    }
    ASSERT(sr__is_pagetable_type(L1 | XEN_DOMCTL_PFINFO_LPINTAB));
    ASSERT(sr__is_pagetable_type(L4));
}

/* ---------------------------------------------------------------------
 * localise_pagetable
 * --------------------------------------------------------------------- */

TEST(localise_pfn_past_max_pfn_refused_before_populating)
{
    uint64_t page[SR__PT_ENTRIES], copy[SR__PT_ENTRIES];
    struct dst_fix d;

    dst_init(&d);
    memset(page, 0, sizeof(page));
    page[1] = PTE(3, _PAGE_PRESENT);        /* would need populating */
    page[5] = PTE(GUEST_MAX_PFN + 1, _PAGE_PRESENT | _PAGE_RW |
                  _PAGE_ACCESSED | _PAGE_DIRTY);
    memcpy(copy, page, sizeof(page));

    ASSERT_EQ(sr__localise_pagetable(&d.ctx, L1, page), -ERANGE);
    ASSERT_STR(d.msg, "Bad pfn for L1[5] - pte 0000000000010063 "
               "(max_pfn 0xf)");
    ASSERT_EQ(memcmp(page, copy, sizeof(page)), 0);
    ASSERT_EQ(d.nr_calls, 0);
    ASSERT_HEX(d.p2m[3], SR__INVALID_FRAME);
}

TEST(localise_populates_each_missing_pfn_exactly_once)
{
    uint64_t page[SR__PT_ENTRIES];
    struct dst_fix d;

    dst_init(&d);
    dst_map(&d, 9, 0x3aa);
    memset(page, 0, sizeof(page));
    page[0] = PTE(3, _PAGE_PRESENT);
    page[1] = PTE(5, _PAGE_PRESENT | _PAGE_RW);
    page[2] = PTE(3, _PAGE_PRESENT | _PAGE_NX);
    page[3] = PTE(7, _PAGE_PRESENT);
    page[4] = PTE(5, _PAGE_PRESENT);
    page[5] = PTE(9, _PAGE_PRESENT);        /* already populated */
    page[6] = PTE(11, 0);                   /* not present: left alone */

    ASSERT_EQ(sr__localise_pagetable(&d.ctx, L1, page), 0);
    ASSERT_EQ(d.nr_calls, 3);
    ASSERT_HEX(d.called[0], 3);
    ASSERT_HEX(d.called[1], 5);
    ASSERT_HEX(d.called[2], 7);
    ASSERT_HEX(d.p2m[3], 0x200);
    ASSERT_HEX(d.p2m[5], 0x201);
    ASSERT_HEX(d.p2m[7], 0x202);
    ASSERT_HEX(d.p2m[11], SR__INVALID_FRAME);
    ASSERT_HEX(page[0], 0x200001);
    ASSERT_HEX(page[1], 0x201003);
    ASSERT_HEX(page[2], 0x8000000000200001ULL);
    ASSERT_HEX(page[3], 0x202001);
    ASSERT_HEX(page[4], 0x201001);
    ASSERT_HEX(page[5], 0x3aa001);
    ASSERT_HEX(page[6], 0xb000);

    /* A second table naming the same PFNs allocates nothing more. */
    memset(page, 0, sizeof(page));
    page[8] = PTE(7, _PAGE_PRESENT);
    ASSERT_EQ(sr__localise_pagetable(&d.ctx, L2, page), 0);
    ASSERT_EQ(d.nr_calls, 3);
    ASSERT_HEX(page[8], 0x202001);
}

TEST(localise_populate_failure_passed_on)
{
    uint64_t page[SR__PT_ENTRIES], copy[SR__PT_ENTRIES];
    struct dst_fix d;

    dst_init(&d);
    d.fail_pfn = 5;
    d.fail_rc = -ENOMEM;
    memset(page, 0, sizeof(page));
    page[0] = PTE(3, _PAGE_PRESENT);
    page[1] = PTE(5, _PAGE_PRESENT);
    memcpy(copy, page, sizeof(page));
    ASSERT_EQ(sr__localise_pagetable(&d.ctx, L1, page), -ENOMEM);
    ASSERT_STR(d.msg, "Failed to populate physmap for pfn 0x5");
    ASSERT_EQ(memcmp(page, copy, sizeof(page)), 0);
    ASSERT_EQ(d.nr_calls, 2);

    /* A positive return is still a failure. */
    dst_init(&d);
    d.fail_pfn = 5;
    d.fail_rc = 1;
    ASSERT_EQ(sr__localise_pagetable(&d.ctx, L1, page), -EIO);

    /* So is an invalid frame handed back. */
    dst_init(&d);
    d.fail_pfn = 5;
    d.fail_invalid = true;
    ASSERT_EQ(sr__localise_pagetable(&d.ctx, L1, page), -ENOMEM);
    ASSERT_STR(d.msg, "Populate physmap failed for pfn 0x5");
    ASSERT_HEX(d.p2m[5], SR__INVALID_FRAME);
}

TEST(localise_unpopulated_pfn_without_callback_refused)
{
    uint64_t page[SR__PT_ENTRIES];
    struct dst_fix d;

    dst_init(&d);
    d.ctx.populate = NULL;
    memset(page, 0, sizeof(page));
    page[2] = PTE(4, _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED |
                  _PAGE_DIRTY);
    ASSERT_EQ(sr__localise_pagetable(&d.ctx, L1, page), -ERANGE);
    ASSERT_STR(d.msg, "Bad mfn for L1[2] - pte 0000000000004063: "
               "mfn 0xffffffffffffffff, max 0x3ff");
    ASSERT_HEX(page[2], 0x4063);
}

TEST(localise_populated_frame_missing_from_m2p_refused)
{
    uint64_t page[SR__PT_ENTRIES];
    struct dst_fix d;

    dst_init(&d);
    d.forget_m2p = true;
    memset(page, 0, sizeof(page));
    page[0] = PTE(6, _PAGE_PRESENT);
    ASSERT_EQ(sr__localise_pagetable(&d.ctx, L1, page), -ERANGE);
    ASSERT_STR(d.msg, "Bad mfn for L1[0] - pte 0000000000006001: "
               "mfn 0x200, max 0x3ff, m2p[0x200] = 0xffffffffffffffff, "
               "max_pfn 0xf");
    ASSERT_HEX(page[0], 0x6001);
}

TEST(localise_pse_refused_at_l2_l3)
{
    uint64_t page[SR__PT_ENTRIES];
    struct dst_fix d;

    dst_init(&d);
    memset(page, 0, sizeof(page));
    page[0] = PTE(1, _PAGE_PRESENT);
    page[9] = PTE(2, _PAGE_PRESENT | _PAGE_PSE);
    ASSERT_EQ(sr__localise_pagetable(&d.ctx, L2, page), -E2BIG);
    ASSERT_STR(d.msg, "Cannot migrate superpage (L2[9]: 0x0000000000002081)");
    ASSERT_EQ(sr__localise_pagetable(&d.ctx, L3, page), -E2BIG);
    ASSERT_STR(d.msg, "Cannot migrate superpage (L3[9]: 0x0000000000002081)");
    ASSERT_EQ(d.nr_calls, 0);
    ASSERT_HEX(page[0], 0x1001);

    /* In an L1 the same bit is PAT. */
    ASSERT_EQ(sr__localise_pagetable(&d.ctx, L1, page), 0);
    ASSERT_HEX(page[0], 0x200001);
    ASSERT_HEX(page[9], 0x201081);
}

/* PWT, PCD and GLOBAL above L1 would fail the hypervisor's validation:
 * refused with the table and entry named, before anything is populated.
 * In an L1 they are left to the hypervisor (privileges decide). */
TEST(localise_refused_flags_above_l1)
{
    static const uint64_t bad[] = { _PAGE_PWT, _PAGE_PCD, _PAGE_GLOBAL };
    uint64_t page[SR__PT_ENTRIES];
    struct dst_fix d;
    unsigned int b;

    dst_init(&d);
    for ( b = 0; b < 3; b++ )
    {
        memset(page, 0, sizeof(page));
        page[0] = PTE(1, _PAGE_PRESENT);
        page[5] = PTE(2, _PAGE_PRESENT | bad[b]);
        ASSERT_EQ(sr__localise_pagetable(&d.ctx, L2, page), -EINVAL);
        ASSERT_EQ(sr__localise_pagetable(&d.ctx, L3, page), -EINVAL);
        ASSERT_EQ(sr__localise_pagetable(&d.ctx, L4, page), -EINVAL);
        ASSERT_EQ(d.nr_calls, 0);
        ASSERT_HEX(page[5], PTE(2, _PAGE_PRESENT | bad[b]));
    }
    ASSERT_STR(d.msg, "Bad flags for L4[5] - pte 0000000000002101 (flags "
               "0x100 are refused in an L4 table)");
    ASSERT_EQ(sr__localise_pagetable(&d.ctx, L1, page), 0);
    ASSERT_HEX(page[5], 0x201101);
}

TEST(localise_l4_xen_slots_left_zero)
{
    uint64_t page[SR__PT_ENTRIES];
    struct dst_fix d;
    unsigned int i;

    dst_init(&d);
    memset(page, 0, sizeof(page));
    page[255] = PTE(1, _PAGE_PRESENT | _PAGE_RW);
    /* A stream naming frames in the hypervisor's slots: dropped. */
    page[256] = PTE(2, _PAGE_PRESENT | _PAGE_RW);
    page[271] = PTE(GUEST_MAX_PFN + 7, _PAGE_PRESENT | _PAGE_PSE);
    page[272] = PTE(3, _PAGE_PRESENT);

    ASSERT_EQ(sr__localise_pagetable(&d.ctx, L4, page), 0);
    ASSERT_HEX(page[255], 0x200003);
    for ( i = 256; i <= 271; i++ )
        ASSERT_HEX(page[i], 0);
    ASSERT_HEX(page[272], 0x201001);
    /* Nothing was allocated for the dropped slots. */
    ASSERT_EQ(d.nr_calls, 2);
    ASSERT_HEX(d.p2m[2], SR__INVALID_FRAME);
}

TEST(localise_other_types_untouched)
{
    uint64_t page[SR__PT_ENTRIES];
    struct dst_fix d;

    dst_init(&d);
    memset(page, 0, sizeof(page));
    page[0] = PTE(GUEST_MAX_PFN + 100, _PAGE_PRESENT | _PAGE_PSE);
    ASSERT_EQ(sr__localise_pagetable(&d.ctx, XEN_DOMCTL_PFINFO_NOTAB, page),
              0);
    ASSERT_HEX(page[0], 0x73081);
    ASSERT_EQ(d.nr_calls, 0);
}

/* ---------------------------------------------------------------------
 * vCPU context
 * --------------------------------------------------------------------- */

/* A suspended vCPU as the source hypervisor reports it. */
static void vcpu_fill(struct vcpu_guest_context *c)
{
    memset(c, 0, sizeof(*c));
    c->flags = VGCF_in_kernel;
    c->user_regs.rdx = MFN(1);              /* start_info */
    c->user_regs.rip = 0x400123;
    c->gdt_ents = 513;                      /* two frames */
    c->gdt_frames[0] = MFN(4);
    c->gdt_frames[1] = MFN(5);
    c->gdt_frames[2] = 0xdeadbeef;          /* beyond gdt_ents: ignored */
    c->ctrlreg[3] = xen_pfn_to_cr3(MFN(6));
    c->ctrlreg[1] = xen_pfn_to_cr3(MFN(8));
}

/* The stream's declared types: cr3 pinned L4, cr1 L4, the rest data. */
static void dst_vcpu_types(struct dst_fix *d)
{
    unsigned int i;

    for ( i = 0; i <= GUEST_MAX_PFN; i++ )
    {
        d->types[i] = XEN_DOMCTL_PFINFO_NOTAB;
        dst_map(d, i, 0x300 + 2 * i);
    }
    d->types[6] = L4 | XEN_DOMCTL_PFINFO_LPINTAB;
    d->types[8] = L4;
    d->types[9] = L1;
    d->ctx.pfn_types = d->types;
}

TEST(vcpu_normalise_then_localise_round_trip)
{
    struct vcpu_guest_context c;
    struct src_fix s;
    struct dst_fix d;

    src_init(&s, 0);
    vcpu_fill(&c);
    ASSERT_EQ(sr__normalise_vcpu(&s.ctx, 0, &c), 0);
    ASSERT_HEX(c.user_regs.rdx, 1);
    ASSERT_HEX(c.gdt_frames[0], 4);
    ASSERT_HEX(c.gdt_frames[1], 5);
    ASSERT_HEX(c.gdt_frames[2], 0xdeadbeef);
    ASSERT_HEX(c.ctrlreg[3], 0x6000);
    ASSERT_HEX(c.ctrlreg[1], 0x8001);
    ASSERT_HEX(c.flags, VGCF_in_kernel);
    ASSERT_HEX(c.user_regs.rip, 0x400123);

    dst_init(&d);
    dst_vcpu_types(&d);
    ASSERT_EQ(sr__localise_vcpu(&d.ctx, 0, &c), 0);
    ASSERT_HEX(c.user_regs.rdx, 0x302);
    ASSERT_HEX(c.gdt_frames[0], 0x308);
    ASSERT_HEX(c.gdt_frames[1], 0x30a);
    ASSERT_HEX(c.gdt_frames[2], 0xdeadbeef);
    ASSERT_HEX(c.ctrlreg[3], 0x30c000);
    /* The "valid" bit is the stream's, not the hypervisor's. */
    ASSERT_HEX(c.ctrlreg[1], 0x310000);
    ASSERT_HEX(c.flags, VGCF_in_kernel | VGCF_online);
    ASSERT_HEX(c.user_regs.rip, 0x400123);
    ASSERT_EQ(d.nr_calls, 0);
}

TEST(vcpu_same_frames_round_trip_exactly)
{
    struct vcpu_guest_context c, orig;
    struct src_fix s;
    struct dst_fix d;
    unsigned int i;

    src_init(&s, 0);
    vcpu_fill(&orig);
    c = orig;
    ASSERT_EQ(sr__normalise_vcpu(&s.ctx, 0, &c), 0);

    dst_init(&d);
    d.ctx.max_mfn = SRC_MAX_MFN;
    for ( i = 0; i <= GUEST_MAX_PFN; i++ )
        dst_map(&d, i, MFN(i));
    ASSERT_EQ(sr__localise_vcpu(&d.ctx, 0, &c), 0);
    orig.flags |= VGCF_online;
    ASSERT_EQ(memcmp(&c, &orig, sizeof(c)), 0);
}

TEST(vcpu_cr3_low_bits_dropped_cr1_zero_kept)
{
    struct vcpu_guest_context c;
    struct src_fix s;
    struct dst_fix d;

    src_init(&s, 0);
    vcpu_fill(&c);
    c.ctrlreg[3] |= 0x18;                   /* PWT|PCD */
    c.ctrlreg[1] = 0;                       /* no user table */
    c.gdt_ents = 0;
    ASSERT_EQ(sr__normalise_vcpu(&s.ctx, 0, &c), 0);
    ASSERT_HEX(c.ctrlreg[3], 0x6000);
    ASSERT_HEX(c.ctrlreg[1], 0);
    ASSERT_HEX(c.gdt_frames[0], MFN(4));    /* no GDT: not converted */

    dst_init(&d);
    dst_vcpu_types(&d);
    ASSERT_EQ(sr__localise_vcpu(&d.ctx, 0, &c), 0);
    ASSERT_HEX(c.ctrlreg[1], 0);
    ASSERT_HEX(c.ctrlreg[3], 0x30c000);
}

TEST(vcpu_other_than_0_keeps_rdx)
{
    struct vcpu_guest_context c;
    struct src_fix s;
    struct dst_fix d;

    src_init(&s, 0);
    vcpu_fill(&c);
    c.user_regs.rdx = 0x41;                 /* not a frame at all */
    ASSERT_EQ(sr__normalise_vcpu(&s.ctx, 3, &c), 0);
    ASSERT_HEX(c.user_regs.rdx, 0x41);
    ASSERT_HEX(c.ctrlreg[3], 0x6000);

    dst_init(&d);
    dst_vcpu_types(&d);
    ASSERT_EQ(sr__localise_vcpu(&d.ctx, 3, &c), 0);
    ASSERT_HEX(c.user_regs.rdx, 0x41);
}

TEST(vcpu_normalise_cr3_outside_domain_refused)
{
    struct vcpu_guest_context c, orig;
    struct src_fix s;

    src_init(&s, 0);
    vcpu_fill(&orig);
    orig.ctrlreg[3] = xen_pfn_to_cr3(0x41);
    c = orig;
    ASSERT_EQ(sr__normalise_vcpu(&s.ctx, 0, &c), -ERANGE);
    ASSERT_STR(s.msg, "Bad mfn for vcpu0's cr3: mfn 0x41, max 0xff, "
               "m2p[0x41] = 0xffffffffffffffff, max_pfn 0xf");
    /* Nothing was half converted. */
    ASSERT_EQ(memcmp(&c, &orig, sizeof(c)), 0);

    /* Even while live: vCPU state is saved with the guest paused. */
    s.ctx.flags = SR__PT_LIVE;
    ASSERT_EQ(sr__normalise_vcpu(&s.ctx, 0, &c), -ERANGE);
}

TEST(vcpu_normalise_bad_frames_refused)
{
    struct vcpu_guest_context c;
    struct src_fix s;
    unsigned int i;

    src_init(&s, 0);
    vcpu_fill(&c);
    c.user_regs.rdx = 0x100;
    ASSERT_EQ(sr__normalise_vcpu(&s.ctx, 0, &c), -ERANGE);
    ASSERT_STR(s.msg, "Bad mfn for suspend record: mfn 0x100, max 0xff");

    vcpu_fill(&c);
    c.gdt_frames[1] = 0x42;
    ASSERT_EQ(sr__normalise_vcpu(&s.ctx, 2, &c), -ERANGE);
    ASSERT_STR(s.msg, "Bad mfn for frame 1 of vcpu2's GDT: mfn 0x42, "
               "max 0xff, m2p[0x42] = 0xffffffffffffffff, max_pfn 0xf");
    ASSERT_HEX(c.gdt_frames[0], MFN(4));

    vcpu_fill(&c);
    c.gdt_ents = SR__FIRST_RESERVED_GDT_ENTRY + 1;
    ASSERT_EQ(sr__normalise_vcpu(&s.ctx, 1, &c), -ERANGE);
    ASSERT_STR(s.msg, "GDT entry count (7169) out of range (max 7168)");

    /* 7168 entries, 14 frames, is the most allowed. */
    vcpu_fill(&c);
    c.gdt_ents = SR__FIRST_RESERVED_GDT_ENTRY;
    for ( i = 0; i < 14; i++ )
        c.gdt_frames[i] = MFN(i);
    c.gdt_frames[14] = 0x41;
    ASSERT_EQ(sr__normalise_vcpu(&s.ctx, 1, &c), 0);
    ASSERT_HEX(c.gdt_frames[13], 13);
    ASSERT_HEX(c.gdt_frames[14], 0x41);

    vcpu_fill(&c);
    s.p2m[8] = 0x90;                        /* P2M disagrees for cr1 */
    ASSERT_EQ(sr__normalise_vcpu(&s.ctx, 1, &c), -ERANGE);
    ASSERT_STR(s.msg, "Bad mfn for vcpu1's cr1: mfn 0x58, max 0xff, "
               "m2p[0x58] = 0x8, max_pfn 0xf, p2m[0x8] = 0x90");
}

TEST(vcpu_localise_frames_outside_domain_refused)
{
    struct vcpu_guest_context c, orig;
    struct dst_fix d;

    dst_init(&d);
    dst_vcpu_types(&d);
    memset(&orig, 0, sizeof(orig));
    orig.user_regs.rdx = 1;
    orig.gdt_ents = 16;
    orig.gdt_frames[0] = 4;
    orig.ctrlreg[3] = 0x10000;              /* PFN 16: past max_pfn */
    c = orig;
    ASSERT_EQ(sr__localise_vcpu(&d.ctx, 0, &c), -ERANGE);
    ASSERT_STR(d.msg, "cr3 (pfn 0x10) out of range");
    ASSERT_EQ(memcmp(&c, &orig, sizeof(c)), 0);

    c = orig;
    c.ctrlreg[3] = 0x9000;                  /* an L1, not an L4 */
    ASSERT_EQ(sr__localise_vcpu(&d.ctx, 0, &c), -EINVAL);
    ASSERT_STR(d.msg, "cr3 (pfn 0x9) has bad type 1, expected 4");

    c = orig;
    c.ctrlreg[3] = 0x6000;
    c.ctrlreg[1] = 0x9001;
    ASSERT_EQ(sr__localise_vcpu(&d.ctx, 0, &c), -EINVAL);
    ASSERT_STR(d.msg, "cr1 (pfn 0x9) has bad type 1, expected 4");

    c = orig;
    c.ctrlreg[3] = 0x6000;
    c.user_regs.rdx = 8;
    ASSERT_EQ(sr__localise_vcpu(&d.ctx, 0, &c), -EINVAL);
    ASSERT_STR(d.msg, "Start Info pfn 0x8 has bad type 4");

    c = orig;
    c.ctrlreg[3] = 0x6000;
    c.user_regs.rdx = 16;
    ASSERT_EQ(sr__localise_vcpu(&d.ctx, 0, &c), -ERANGE);
    ASSERT_STR(d.msg, "Start Info pfn 0x10 out of range");

    c = orig;
    c.ctrlreg[3] = 0x6000;
    c.gdt_frames[0] = 0x20;
    ASSERT_EQ(sr__localise_vcpu(&d.ctx, 0, &c), -ERANGE);
    ASSERT_STR(d.msg, "GDT frame 0 (pfn 0x20) out of range");

    c = orig;
    c.ctrlreg[3] = 0x6000;
    c.gdt_frames[0] = 9;
    ASSERT_EQ(sr__localise_vcpu(&d.ctx, 0, &c), -EINVAL);
    ASSERT_STR(d.msg, "GDT frame 0 (pfn 0x9) has bad type 1");

    /* A frame the new domain never got. */
    c = orig;
    c.ctrlreg[3] = 0x6000;
    d.p2m[4] = SR__INVALID_FRAME;
    ASSERT_EQ(sr__localise_vcpu(&d.ctx, 0, &c), -ERANGE);
    ASSERT_STR(d.msg, "GDT frame 0 has bad mfn: mfn 0xffffffffffffffff, "
               "max 0x3ff");
    ASSERT_EQ(d.nr_calls, 0);

    c = orig;
    c.ctrlreg[3] = 0x6000;
    c.gdt_ents = SR__FIRST_RESERVED_GDT_ENTRY + 1;
    ASSERT_EQ(sr__localise_vcpu(&d.ctx, 1, &c), -ERANGE);
    ASSERT_STR(d.msg, "GDT entry count (7169) out of range (max 7168)");
}

TEST(vcpu_localise_without_types_checks_frames_only)
{
    struct vcpu_guest_context c;
    struct dst_fix d;

    dst_init(&d);
    dst_vcpu_types(&d);
    d.ctx.pfn_types = NULL;
    memset(&c, 0, sizeof(c));
    c.user_regs.rdx = 8;
    c.ctrlreg[3] = 0x9000;
    ASSERT_EQ(sr__localise_vcpu(&d.ctx, 0, &c), 0);
    ASSERT_HEX(c.user_regs.rdx, 0x310);
    ASSERT_HEX(c.ctrlreg[3], 0x312000);

    /* A P2M the M2P does not confirm is still refused. */
    memset(&c, 0, sizeof(c));
    c.ctrlreg[3] = 0x9000;
    d.m2p[0x312] = 3;
    ASSERT_EQ(sr__localise_vcpu(&d.ctx, 1, &c), -ERANGE);
    ASSERT_STR(d.msg, "cr3 has bad mfn: mfn 0x312, max 0x3ff, "
               "m2p[0x312] = 0x3, max_pfn 0xf, p2m[0x3] = 0x306");
}
