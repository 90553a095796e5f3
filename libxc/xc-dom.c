/* SPDX-License-Identifier: MIT */
/*
 * The PV domain builder (Xen: libxenguest's xg_dom_*), for ferry guest
 * images (hypervisor/isa.h, "THE IMAGE FORMAT").
 *
 * Pseudo-physical layout the builder lays out, in PFN order from 0, each
 * region mapped at virt_base + (pfn << 12) like Xen's bootstrap area:
 *
 *   image + bss | P2M list | P2M frame-list pages (mid, top) | start_info
 *   | boot stack | page tables (L4, L3s, L2s, L1s) | free memory ...
 *
 * Unlike Xen's builder, which maps only the bootstrap area, ferry's maps
 * every PFN of the domain at virt_base + (pfn << 12) (a "direct map"), so
 * small guests need no page-table code to use their memory; page-table
 * frames are mapped read-only, as every PV page-table frame must be.  The
 * slot just past the last PFN (virt_base + (nr_pages << 12)) is left empty
 * inside an existing L1 table: that is where guests map shared_info with
 * update_va_mapping (see ferry-guests(7)).
 *
 * vCPU 0 starts at the image's entry with rsi = the virtual address of
 * start_info and rsp at the top of the boot stack, in kernel mode, with its
 * L4 pinned and installed as ctrlreg[3] — Xen's x86-64 PV boot ABI.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xc.h"
#include "xc-private.h"
#include "../hypervisor/isa.h"

#define STACK_PAGES 4
#define PT_FLAGS (_PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED)
#define FPP 512                     /* P2M entries per frame */

struct layout
{
    uint64_t virt_base;
    uint64_t nr_pages;
    uint64_t image_pages;
    uint64_t p2m_pfn, p2m_pages;
    uint64_t fll_pfn, fll_pages;    /* mid pages, then the top page */
    uint64_t si_pfn;
    uint64_t stack_pfn;
    uint64_t pt_pfn, nr_l3, nr_l2, nr_l1, pt_pages;
    uint64_t first_free_pfn;
};

/* Tables needed to map [va, va + len) at level `level` (1: L1 tables). */
static uint64_t tables_for(uint64_t va, uint64_t len, unsigned int level)
{
    unsigned int shift = 12 + 9 * level;
    uint64_t first = va >> shift, last = (va + len - 1) >> shift;

    return last - first + 1;
}

static int plan(const struct ferry_image_header *h, uint64_t nr_pages,
                struct layout *l)
{
    uint64_t span;

    memset(l, 0, sizeof(*l));
    l->virt_base = h->base;
    l->nr_pages = nr_pages;
    l->image_pages = (h->image_size + h->bss_size + PAGE_SIZE - 1) >> PAGE_SHIFT;
    l->p2m_pfn = l->image_pages;
    l->p2m_pages = (nr_pages * 8 + PAGE_SIZE - 1) >> PAGE_SHIFT;
    l->fll_pfn = l->p2m_pfn + l->p2m_pages;
    l->fll_pages = (l->p2m_pages + FPP - 1) / FPP + 1;
    l->si_pfn = l->fll_pfn + l->fll_pages;
    l->stack_pfn = l->si_pfn + 1;
    l->pt_pfn = l->stack_pfn + STACK_PAGES;
    /* Map every PFN plus the empty shared_info slot after the last. */
    span = (nr_pages + 1) << PAGE_SHIFT;
    l->nr_l1 = tables_for(l->virt_base, span, 1);
    l->nr_l2 = tables_for(l->virt_base, span, 2);
    l->nr_l3 = tables_for(l->virt_base, span, 3);
    l->pt_pages = 1 + l->nr_l3 + l->nr_l2 + l->nr_l1;
    l->first_free_pfn = l->pt_pfn + l->pt_pages;
    if ( l->first_free_pfn > nr_pages )
        return -ENOMEM;
    return 0;
}

static int check_image(xc_interface *xch, const void *image, size_t len,
                       const struct ferry_image_header **hp)
{
    const struct ferry_image_header *h = image;
    uint64_t end;

    if ( len < sizeof(*h) || memcmp(h->magic, FERRY_IMAGE_MAGIC, 8) )
    {
        xc__log(xch, XC_ERROR, 0, "not a ferry guest image (bad magic)");
        return -EINVAL;
    }
    if ( h->version != FERRY_IMAGE_VERSION ||
         h->header_size != FERRY_IMAGE_HEADER_SIZE ||
         h->isa_version > FERRY_ISA_VERSION || h->flags || h->reserved )
    {
        xc__log(xch, XC_ERROR, 0,
                "guest image version %u (ISA %u) is not supported by this builder (image format %u, ISA %u)",
                h->version, h->isa_version, FERRY_IMAGE_VERSION,
                FERRY_ISA_VERSION);
        return -EINVAL;
    }
    end = h->base + h->image_size + h->bss_size;
    if ( h->image_size != len - sizeof(*h) || (h->base & (PAGE_SIZE - 1)) ||
         end < h->base || h->entry < h->base ||
         h->entry >= h->base + h->image_size || (h->entry & 7) )
    {
        xc__log(xch, XC_ERROR, 0,
                "guest image is malformed (base %#llx, entry %#llx, size %llu of %zu bytes)",
                (unsigned long long)h->base, (unsigned long long)h->entry,
                (unsigned long long)h->image_size, len - sizeof(*h));
        return -EINVAL;
    }
    /* The whole direct map must stay canonical and out of Xen's slots. */
    if ( h->base >= 0x0000800000000000ULL && h->base < 0xFFFF880000000000ULL )
    {
        xc__log(xch, XC_ERROR, 0,
                "guest image base %#llx is not a guest virtual address",
                (unsigned long long)h->base);
        return -EINVAL;
    }
    *hp = h;
    return 0;
}

/* ------------------------------------------------------------------------
 * Writing into the new domain
 * ------------------------------------------------------------------------ */

struct build
{
    xc_interface *xch;
    uint32_t domid;
    struct layout l;
    xen_pfn_t *p2m;                 /* pfn -> mfn */
    void **va;                      /* pfn -> our mapping */
};

static uint64_t *page64(struct build *b, uint64_t pfn)
{
    return b->va[pfn];
}

static uint64_t pte(struct build *b, uint64_t pfn, uint64_t flags)
{
    return (b->p2m[pfn] << PAGE_SHIFT) | flags;
}

static bool is_pt_pfn(const struct layout *l, uint64_t pfn)
{
    return pfn >= l->pt_pfn && pfn < l->pt_pfn + l->pt_pages;
}

/* Build L4 -> L3 -> L2 -> L1 mapping every PFN at virt_base + pfn * 4K. */
static void build_page_tables(struct build *b)
{
    const struct layout *l = &b->l;
    uint64_t l4 = l->pt_pfn, l3 = l4 + 1, l2 = l3 + l->nr_l3,
             l1 = l2 + l->nr_l2;
    uint64_t base = l->virt_base;
    uint64_t b3 = base >> 39, b2 = base >> 30, b1 = base >> 21;

    for ( uint64_t pfn = 0; pfn <= l->nr_pages; pfn++ )
    {
        uint64_t va = base + (pfn << PAGE_SHIFT);
        uint64_t i3 = (va >> 39) - b3, i2 = (va >> 30) - b2, i1 = (va >> 21) - b1;

        page64(b, l4)[(va >> 39) & 511] = pte(b, l3 + i3, PT_FLAGS);
        page64(b, l3 + i3)[(va >> 30) & 511] = pte(b, l2 + i2, PT_FLAGS);
        page64(b, l2 + i2)[(va >> 21) & 511] = pte(b, l1 + i1, PT_FLAGS);
        if ( pfn == l->nr_pages )
            break;                  /* the empty shared_info slot */
        page64(b, l1 + i1)[(va >> 12) & 511] =
            pte(b, pfn, is_pt_pfn(l, pfn) ? (PT_FLAGS & ~_PAGE_RW) | _PAGE_NX
                                          : PT_FLAGS);
    }
}

/* The P2M list and Xen's 3-level frame list the saver walks. */
static void build_p2m(struct build *b)
{
    const struct layout *l = &b->l;
    uint64_t top = l->fll_pfn + l->fll_pages - 1;

    for ( uint64_t pfn = 0; pfn < l->nr_pages; pfn++ )
        page64(b, l->p2m_pfn + pfn / FPP)[pfn % FPP] = b->p2m[pfn];
    for ( uint64_t i = 0; i < l->p2m_pages; i++ )
        page64(b, l->fll_pfn + i / FPP)[i % FPP] = b->p2m[l->p2m_pfn + i];
    for ( uint64_t i = 0; i + 1 < l->fll_pages; i++ )
        page64(b, top)[i] = b->p2m[l->fll_pfn + i];
}

static void build_start_info(struct build *b, const char *cmdline,
                             uint64_t shared_info_mfn)
{
    const struct layout *l = &b->l;
    struct start_info *si = b->va[l->si_pfn];

    memset(si, 0, PAGE_SIZE);
    snprintf(si->magic, sizeof(si->magic), "xen-3.0-x86_64");
    si->nr_pages = l->nr_pages;
    si->shared_info = shared_info_mfn << PAGE_SHIFT;
    si->pt_base = l->virt_base + (l->pt_pfn << PAGE_SHIFT);
    si->nr_pt_frames = l->pt_pages;
    si->mfn_list = l->virt_base + (l->p2m_pfn << PAGE_SHIFT);
    si->first_p2m_pfn = l->p2m_pfn;
    si->nr_p2m_frames = l->p2m_pages;
    if ( cmdline )
        snprintf((char *)si->cmd_line, sizeof(si->cmd_line), "%s", cmdline);
}

static int build_shared_info(struct build *b, uint64_t shared_info_mfn)
{
    uint8_t *si = xc_map_foreign_frame(b->xch, b->domid, XC_MAP_WRITE,
                                       shared_info_mfn);

    if ( !si )
        return -errno;
    memset(si, 0, PAGE_SIZE);
    /* Events start masked on every vCPU until the guest unmasks them. */
    for ( unsigned int v = 0; v < 32; v++ )
        si[SHINFO_VCPU_INFO(v) + VCPU_INFO_UPCALL_MASK] = 1;
    *(uint64_t *)(si + SHINFO_MAX_PFN) = b->l.nr_pages;
    *(uint64_t *)(si + SHINFO_PFN_TO_MFN_FLL) =
        b->p2m[b->l.fll_pfn + b->l.fll_pages - 1];
    return 0;
}

/* Pin the L4 (validating every table) and start vCPU 0 at entry. */
static int boot_vcpu(struct build *b, uint64_t entry)
{
    const struct layout *l = &b->l;
    struct vcpu_guest_context ctxt;
    struct mmuext_op pin = {
        .cmd = MMUEXT_PIN_L4_TABLE, .arg1.mfn = b->p2m[l->pt_pfn],
    };

    if ( xc_mmuext_op(b->xch, &pin, 1, b->domid) )
        return -errno;
    memset(&ctxt, 0, sizeof(ctxt));
    ctxt.flags = VGCF_in_kernel | VGCF_online;
    ctxt.user_regs.rip = entry;
    ctxt.user_regs.rsp = l->virt_base +
                         ((l->stack_pfn + STACK_PAGES) << PAGE_SHIFT);
    ctxt.user_regs.rsi = l->virt_base + (l->si_pfn << PAGE_SHIFT);
    ctxt.user_regs.rflags = 1UL << 9;   /* IF */
    ctxt.user_regs.cs = 0xe033;         /* FLAT_KERNEL_CS */
    ctxt.user_regs.ss = 0xe02b;         /* FLAT_KERNEL_SS */
    ctxt.kernel_ss = 0xe02b;
    ctxt.kernel_sp = ctxt.user_regs.rsp;
    ctxt.ctrlreg[3] = xen_pfn_to_cr3(b->p2m[l->pt_pfn]);
    if ( xc_vcpu_setcontext(b->xch, b->domid, 0, &ctxt) )
        return -errno;
    return 0;
}

int xc_dom_build_pv(xc_interface *xch, uint32_t domid,
                    const struct xc_dom_args *a, struct xc_dom_result *res)
{
    const struct ferry_image_header *h;
    struct build b = { .xch = xch, .domid = domid };
    xc_domaininfo_t info;
    int *err = NULL;
    int rc;

    rc = check_image(xch, a->image, a->image_len, &h);
    if ( rc )
        goto out;
    rc = plan(h, a->nr_pages, &b.l);
    if ( rc )
    {
        xc__log(xch, XC_ERROR, 0,
                "%llu pages of memory are too few for this image and its boot structures",
                (unsigned long long)a->nr_pages);
        goto out;
    }
    rc = -ENOMEM;
    b.p2m = malloc(a->nr_pages * sizeof(*b.p2m));
    b.va = malloc(a->nr_pages * sizeof(*b.va));
    err = malloc(a->nr_pages * sizeof(*err));
    if ( !b.p2m || !b.va || !err )
        goto out;

    /* Memory: populate PFNs 0..nr_pages-1. */
    for ( uint64_t pfn = 0; pfn < a->nr_pages; pfn++ )
        b.p2m[pfn] = pfn;
    /* errno is only meaningful once the call has failed. */
    if ( xc_domain_populate_physmap_exact(xch, domid, a->nr_pages, 0, 0,
                                          b.p2m) )
    {
        rc = errno ? -errno : -ENOMEM;
        goto out;
    }
    /*
     * Only the boot area is written (every structure lies below
     * first_free_pfn): mapping the rest writable would mark all of it
     * possibly non-zero, and a save would then read and send it whole.
     */
    rc = xc_map_foreign_frames(xch, domid, XC_MAP_WRITE, b.p2m,
                               (unsigned int)b.l.first_free_pfn, b.va, err);
    if ( rc )
    {
        xc__log(xch, XC_ERROR, 0, "cannot map the new domain's memory");
        rc = -EFAULT;
        goto out;
    }

    /* The image, then the structures, then the vCPU. */
    for ( uint64_t off = 0; off < h->image_size; off += PAGE_SIZE )
        memcpy(b.va[off >> PAGE_SHIFT],
               (const uint8_t *)a->image + sizeof(*h) + off,
               min((uint64_t)PAGE_SIZE, h->image_size - off));
    build_page_tables(&b);
    build_p2m(&b);
    rc = xc_domain_getinfo_single(xch, domid, &info) ? -errno : 0;
    if ( rc )
        goto out;
    build_start_info(&b, a->cmdline, info.shared_info_frame);
    rc = build_shared_info(&b, info.shared_info_frame);
    if ( rc )
        goto out;
    rc = boot_vcpu(&b, h->entry);
    if ( rc )
        goto out;
    if ( res )
    {
        res->virt_base = b.l.virt_base;
        res->start_info_pfn = b.l.si_pfn;
        res->start_info_mfn = b.p2m[b.l.si_pfn];
        res->shared_info_mfn = info.shared_info_frame;
        res->pt_base_pfn = b.l.pt_pfn;
        res->first_free_pfn = b.l.first_free_pfn;
    }
    rc = 0;
 out:
    free(b.p2m);
    free(b.va);
    free(err);
    if ( rc )
    {
        errno = -rc;
        return -1;
    }
    return 0;
}
