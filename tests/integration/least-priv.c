/* SPDX-License-Identifier: MIT */
/*
 * least-priv: the session kinds of the control protocol (issue 10, least
 * privilege in the toolstack), tried against a running ferry-hv as a
 * compromised stream parser would.  Run by t0019-least-privilege.sh with
 * the host's run directory and the domid of a running victim domain;
 * prints TAP (its plan first).
 *
 * A builder session gets no machine-memory fd; acts on nothing before its
 * create; is bound by that create to its own domain and cannot create
 * another or name the victim in any op; cannot use ops outside its
 * allow-list (foreign map, mmu_update, pause, list, a memory op outside
 * the restore's); can write and read back its own frames, but not a
 * frame of the victim, a free frame, a frame past the end, nor its own
 * page table once pinned; and a batch with one bad frame writes nothing.
 * Pipelined writes (xc_frames_write_start, as the restore engine makes
 * them): the next batch is composed in the other half of the staging
 * area than the one the daemon is copying; and after a batch that fails,
 * no later batch is written, whichever call collects the failure.
 * A control session gets no fd and cannot write a frame by any op.  A
 * second HELLO (asking for a full session) is refused.  Only a bound
 * builder says BUILD_DONE, of its own domain and once; after it the
 * builder cannot change the domain, which outlives the session.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl-raw.h"
#include "xc.h"
#include "../../hypervisor/include/public/control.h"

#define PLAN 42

static const char *rundir;
/* rc of a libxc call that should fail with errno want. */
static int fails_with(int rc, int want)
{
    int e = errno;

    if ( rc >= 0 )
        printf("# succeeded, expected %s\n", strerror(want));
    else if ( e != want )
        printf("# failed with %s, expected %s\n", strerror(e), strerror(want));
    return rc < 0 && e == want;
}

/* The refusals are the point: libxc's messages about them are not news. */
static void quiet_log(struct xc_logger *self, enum xc_loglvl lvl,
                      const char *msg)
{
    (void)self;
    (void)lvl;
    (void)msg;
}
static struct xc_logger quiet = { .log = quiet_log, .min_level = XC_ERROR };

int main(int argc, char **argv)
{
    struct xc_logger *log = &quiet;
    xc_interface *full, *b, *ctl;
    xc_domaininfo_t info;
    uint32_t victim, mine = DOMID_ANY, other = DOMID_ANY;
    xen_pfn_t ext[2], victim_mfn, free_mfn, bad[2];
    static uint8_t page[3][4096], back[4096];
    uint8_t *stage, *next;
    struct mmuext_op pin = { .cmd = MMUEXT_PIN_L1_TABLE };
    struct mmu_update mu = { 0 };
    void *ptr;
    int err, fd, got_fd;

    if ( argc != 3 )
    {
        fprintf(stderr, "usage: least-priv RUNDIR VICTIM-DOMID\n");
        return 99;
    }
    rundir = argv[1];
    victim = (uint32_t)atoi(argv[2]);
    printf("1..%d\n", PLAN);

    full = xc_interface_open(rundir, xc_stderr_logger(XC_ERROR));
    if ( !full || xc_domain_getinfo_single(full, victim, &info) )
        return 99;
    victim_mfn = info.shared_info_frame;
    free_mfn = xc_max_page(full) - 1;

    /* What HELLO hands out, seen on the wire. */
    fd = connect_raw(rundir);
    result(raw_hello(fd, -1, &got_fd) == 0 && got_fd,
           "a full session's HELLO carries the machine-memory fd");
    close(fd);
    fd = connect_raw(rundir);
    result(raw_hello(fd, FERRY_SESSION_BUILDER, &got_fd) == 0 && !got_fd,
           "a builder session's HELLO carries no fd");
    result(raw_hello(fd, -1, &got_fd) == -EBUSY && !got_fd,
           "a second HELLO asking for a full session is refused, no fd");
    close(fd);
    fd = connect_raw(rundir);
    result(raw_hello(fd, FERRY_SESSION_CONTROL, &got_fd) == 0 && !got_fd,
           "a control session's HELLO carries no fd");
    close(fd);

    b = xc_interface_open_session(rundir, log, XC_SESSION_BUILDER);
    if ( !b )
        return 99;
    result(!xc_has_machine_memory(b) && !xc_m2p(b),
           "a builder session maps no machine memory");
    result(fails_with(xc_domain_getinfo_single(b, victim, &info), EPERM),
           "unbound: getinfo of the victim is refused");
    result(xc_domain_create(b, &mine, 1, NULL) == 0 &&
           xc_domain_setmaxmem(b, mine, 1024) == 0,
           "the builder creates its domain and sets its maximum memory");
    result(fails_with(xc_domain_create(b, &other, 1, NULL), EPERM),
           "a second create is refused (no rebinding)");
    result(xc_domain_getinfo_single(b, mine, &info) == 0,
           "getinfo of its own domain works");
    result(fails_with(xc_domain_getinfo_single(b, victim, &info), EPERM),
           "bound: getinfo of the victim is refused");
    result(fails_with(xc_domain_destroy(b, victim), EPERM),
           "destroying the victim is refused");
    result(fails_with(xc_domain_setmaxmem(b, victim, 1024), EPERM),
           "setmaxmem of the victim is refused");
    ext[0] = 0;
    result(fails_with(xc_domain_populate_physmap_exact(b, victim, 1, 0, 0,
                                                       ext), EPERM),
           "populating the victim's memory is refused");
    pin.arg1.mfn = victim_mfn;
    result(fails_with(xc_mmuext_op(b, &pin, 1, victim), EPERM),
           "an MMU extension op on the victim is refused");
    result(fails_with(xc_domain_pause(b, mine), EPERM),
           "pause is not on a builder's allow-list");
    result(fails_with(xc_domain_getinfolist(b, 0, 16, &info), EPERM),
           "listing domains is not on a builder's allow-list");
    result(fails_with(xc_map_foreign_frames(b, mine, XC_MAP_WRITE,
                                            &victim_mfn, 1, &ptr, &err),
                      EPERM),
           "foreign mapping is not on a builder's allow-list");
    mu.ptr = (victim_mfn << 12) | MMU_MACHPHYS_UPDATE;
    result(fails_with(xc_mmu_update(b, &mu, 1, mine, NULL), EPERM),
           "mmu_update is not on a builder's allow-list");

    /* Its own frames: written and read back through the staging area. */
    ext[0] = 0;
    ext[1] = 1;
    if ( xc_domain_populate_physmap_exact(b, mine, 2, 0, 0, ext) )
        return 99;
    memset(page[0], 0x5a, sizeof(page[0]));
    memset(page[1], 0, sizeof(page[1]));
    result(xc_frames_write(b, mine, ext, 2, page) == 0 &&
           xc_frames_read(b, mine, ext, 1, back) == 0 &&
           !memcmp(back, page[0], sizeof(back)),
           "its own frames are written and read back");
    result(fails_with(xc_frames_write(b, mine, &victim_mfn, 1, page[1]),
                      EPERM),
           "writing a frame of the victim is refused");
    result(fails_with(xc_frames_read(b, mine, &victim_mfn, 1, back), EPERM),
           "reading a frame of the victim is refused");
    result(fails_with(xc_frames_write(b, mine, &free_mfn, 1, page[1]), EPERM),
           "writing a frame of no domain is refused");
    bad[0] = xc_max_page(full) + 5;
    result(fails_with(xc_frames_write(b, mine, bad, 1, page[1]), EINVAL),
           "writing past the last frame is refused");
    result(fails_with(xc_frames_write(b, victim, ext, 1, page[1]), EPERM),
           "a copy naming the victim's domid is refused");
    bad[0] = ext[0];
    bad[1] = victim_mfn;
    memset(page[0], 0xa5, sizeof(page[0]));
    result(fails_with(xc_frames_write(b, mine, bad, 2, page), EPERM) &&
           xc_frames_read(b, mine, ext, 1, back) == 0 && back[0] == 0x5a,
           "a batch with one bad frame writes none of it");
    /* Pipelined: batch N+1 is composed while batch N is copied. */
    stage = xc_frames_buffer(b, 1);
    if ( !stage )
        return 99;
    memset(stage, 0x11, sizeof(back));
    result(xc_frames_write_start(b, mine, &ext[0], 1, stage) == 0 &&
           (next = xc_frames_buffer(b, 1)) != NULL && next != stage &&
           memset(next, 0x22, sizeof(back)) &&
           xc_frames_wait(b) == 0 &&
           xc_frames_read(b, mine, ext, 1, back) == 0 &&
           back[0] == 0x11 && back[sizeof(back) - 1] == 0x11,
           "a pipelined batch is copied from its own half of the staging"
           " area, not the one the next batch is composed in");
    bad[0] = ext[0];
    bad[1] = victim_mfn;
    memset(page[0], 0x33, sizeof(page[0]));
    memset(page[1], 0x33, sizeof(page[1]));
    memset(page[2], 0x44, sizeof(page[2]));
    result(xc_frames_write_start(b, mine, bad, 2, page) == 0 &&
           fails_with(xc_frames_write_start(b, mine, ext, 1, page[2]),
                      EPERM) &&
           xc_frames_wait(b) == 0 &&
           xc_frames_read(b, mine, ext, 1, back) == 0 && back[0] == 0x11,
           "after a pipelined batch with a bad frame, the next batch is"
           " refused with its error and neither is written");
    result(xc_frames_write_start(b, mine, bad, 2, page) == 0 &&
           xc_domain_getinfo_single(b, mine, &info) == 0 &&
           fails_with(xc_frames_write(b, mine, ext, 1, page[2]), EPERM) &&
           xc_frames_read(b, mine, ext, 1, back) == 0 && back[0] == 0x11,
           "a failed pipelined batch collected by another call still"
           " stops the next write");
    pin.arg1.mfn = ext[1];
    result(xc_mmuext_op(b, &pin, 1, mine) == 0,
           "its own zeroed frame is pinned as an L1 table");
    result(fails_with(xc_frames_write(b, mine, &ext[1], 1, page[0]), EBUSY),
           "raw data into its own pinned page table is refused");
    result(xc_frames_read(b, mine, &ext[1], 1, back) == 0,
           "its own pinned page table may be read");
    result(xc_domain_getinfo_single(full, victim, &info) == 0 &&
           !(info.flags & XEN_DOMINF_dying),
           "the victim is still there");
    result(xc_domain_destroy(b, mine) == 0,
           "the builder destroys its own domain");
    xc_interface_close(b);

    /*
     * BUILD_DONE: only a bound builder says it, of its own domain, once;
     * after it the domain outlives the session, which can no longer
     * change it.
     */
    b = xc_interface_open_session(rundir, log, XC_SESSION_BUILDER);
    if ( !b )
        return 99;
    mine = DOMID_ANY;
    result(fails_with(xc_domain_build_done(b, victim), EPERM),
           "unbound: build_done is refused");
    if ( xc_domain_create(b, &mine, 1, NULL) )
        return 99;
    result(fails_with(xc_domain_build_done(b, victim), EPERM) &&
           fails_with(xc_domain_build_done(full, mine), EPERM),
           "build_done of another's domain, or from a full session, is refused");
    result(xc_domain_build_done(b, mine) == 0 &&
           fails_with(xc_domain_build_done(b, mine), EPERM),
           "the builder says build_done of its domain, once");
    result(fails_with(xc_domain_setmaxmem(b, mine, 2048), EPERM) &&
           fails_with(xc_domain_destroy(b, mine), EPERM),
           "after build_done the builder can no longer change its domain");
    xc_interface_close(b);
    result(xc_domain_getinfo_single(full, mine, &info) == 0 &&
           !(info.flags & XEN_DOMINF_dying) &&
           xc_domain_destroy(full, mine) == 0,
           "a built domain outlives its builder session");

    ctl = xc_interface_open_session(rundir, log, XC_SESSION_CONTROL);
    if ( !ctl )
        return 99;
    result(xc_domain_getinfo_single(ctl, victim, &info) == 0 &&
           !xc_has_machine_memory(ctl),
           "a control session sees domains and no machine memory");
    result(fails_with(xc_map_foreign_frames(ctl, victim, XC_MAP_WRITE,
                                            &victim_mfn, 1, &ptr, &err),
                      EPERM),
           "a control session cannot map frames");
    ext[0] = 0;
    result(fails_with(xc_domain_populate_physmap_exact(ctl, victim, 1, 0, 0,
                                                       ext), EPERM) &&
           fails_with(xc_mmu_update(ctl, &mu, 1, victim, NULL), EPERM) &&
           fails_with(xc_frames_write(ctl, victim, &victim_mfn, 1, page[1]),
                      EPERM),
           "a control session cannot populate, update the MMU or copy frames");
    other = DOMID_ANY;
    result(fails_with(xc_domain_create(ctl, &other, 1, NULL), EPERM),
           "a control session cannot create a domain");
    xc_interface_close(ctl);
    xc_interface_close(full);
    return tap_failed ? 1 : 0;
}
