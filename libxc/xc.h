/* SPDX-License-Identifier: MIT */
/*
 * xc.h: libxc, ferry's toolstack library — the one public header.
 *
 * libxc talks to one host's hypervisor daemon (ferry-hv) over the control
 * socket in that host's run directory, one request per call, batched where
 * Xen batches (getpageframeinfo3, mmu_update, mmuext_op, populate_physmap,
 * foreign mapping).  It never prints and never exits: errors are returned
 * and described through the logger the caller passed to
 * xc_interface_open().
 *
 * Conventions (as Xen's libxc):
 *  - functions return 0 on success, -1 on failure with errno set (the
 *    hypervisor's error as a positive errno), unless documented otherwise;
 *  - every failure is also logged at XC_ERROR with what was being done;
 *  - "mfn" is a machine frame of this host, "pfn" a guest's
 *    pseudo-physical frame.
 *
 * Foreign mapping is zero copy: the whole of the host's machine memory is
 * mapped into the process once, at xc_interface_open(), from the file
 * descriptor the daemon passes; mapping a domain's frames asks the daemon
 * to check ownership and returns pointers into that mapping.  A read-only
 * mapping points into a read-only view, so a stray write faults.
 */
#ifndef FERRY_XC_H
#define FERRY_XC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../hypervisor/include/public/abi.h"

#define XC_HAVE_FOREIGN_FRAMES 1

typedef uint64_t xen_pfn_t;
typedef struct xc_interface xc_interface;

/* ------------------------------------------------------------------------
 * Logging
 * ------------------------------------------------------------------------ */

enum xc_loglvl { XC_DEBUG, XC_INFO, XC_WARN, XC_ERROR };

/* The caller's logger: called with a complete message, no newline. */
struct xc_logger
{
    void (*log)(struct xc_logger *self, enum xc_loglvl lvl, const char *msg);
    enum xc_loglvl min_level;       /* messages below are dropped */
};

/* A logger that writes "ferry: <msg>" lines to stderr. */
struct xc_logger *xc_stderr_logger(enum xc_loglvl min_level);

/* ------------------------------------------------------------------------
 * Opening a host
 * ------------------------------------------------------------------------ */

/*
 * Connect to the daemon of the host whose run directory is run_dir, check
 * the protocol version and map machine memory.  Returns NULL (errno set,
 * the reason logged) if there is no daemon, it speaks another protocol
 * version, or the caller is not allowed.
 */
xc_interface *xc_interface_open(const char *run_dir, struct xc_logger *log);

/*
 * Session kinds (the daemon's FERRY_SESSION_*; ferry-hv(8), THREAT
 * MODEL).  A full session, xc_interface_open()'s, maps machine memory and
 * may issue every request.  The others never hold machine memory and may
 * issue only their own requests (others fail with EPERM): a control
 * session the control plane (lists, names, pause, unpause, destroy,
 * consoles) and nothing that writes a frame; a builder session is bound
 * by its xc_domain_create() to the domain it creates and may act on
 * nothing else, its pages written and read only with xc_frames_write()
 * and xc_frames_read().  A process that parses untrusted input holds
 * nothing more than these.
 */
enum xc_session
{
    XC_SESSION_FULL,
    XC_SESSION_CONTROL,
    XC_SESSION_BUILDER,
};
xc_interface *xc_interface_open_session(const char *run_dir,
                                        struct xc_logger *log,
                                        enum xc_session kind);
/* A builder session to xch's host, logging through xch's logger. */
xc_interface *xc_builder_open(xc_interface *xch);
/*
 * A builder session says its domain is complete (FERRY_CTL_BUILD_DONE):
 * until then, closing the session (or the process ending) makes the
 * daemon destroy the domain; after it, the domain outlives the session,
 * which can no longer act on it.
 */
int xc_domain_build_done(xc_interface *xch, uint32_t domid);
/* Whether this session holds the host's machine memory (full only). */
bool xc_has_machine_memory(const xc_interface *xch);
/* Idempotent on NULL. */
void xc_interface_close(xc_interface *xch);
/* The session's socket (a confined process keeps it open), or -1. */
int xc_interface_fd(const xc_interface *xch);
const char *xc_run_dir(const xc_interface *xch);

struct xc_host_info
{
    uint64_t total_pages;
    uint64_t free_pages;
    uint32_t nr_cpus;
    uint32_t nr_domains;
    uint32_t xen_major, xen_minor;
    char xen_extra[16];
    char version[32];
    uint64_t uptime_ms;
};
int xc_host_info(xc_interface *xch, struct xc_host_info *info);
uint64_t xc_max_page(const xc_interface *xch);

/* ------------------------------------------------------------------------
 * Domains
 * ------------------------------------------------------------------------ */

typedef struct xen_domctl_getdomaininfo xc_domaininfo_t;

#define XC_DOMAIN_NAME_MAX 64       /* bytes, with the NUL */

/* *domid: DOMID_ANY to let the host choose; returns the ID chosen. */
int xc_domain_create(xc_interface *xch, uint32_t *domid,
                     unsigned int max_vcpus, const uint8_t handle[16]);
int xc_domain_destroy(xc_interface *xch, uint32_t domid);
int xc_domain_pause(xc_interface *xch, uint32_t domid);
int xc_domain_unpause(xc_interface *xch, uint32_t domid);
/*
 * Resume a domain that shut down with SHUTDOWN_suspend, in place.  With
 * cancel, the guest's suspend hypercall returns 1 ("cancelled": it runs on
 * in the same domain, as after a failed or checkpointing save).
 */
int xc_domain_resume(xc_interface *xch, uint32_t domid, bool cancel);
int xc_domain_getinfo_single(xc_interface *xch, uint32_t domid,
                             xc_domaininfo_t *info);
/*
 * Block until the domain has shut down (any reason) or is dying, or until
 * timeout_ms has passed (the hypervisor caps one call at a second: loop
 * for longer); *info is its state then, whichever came first.  Fails with
 * errno ESRCH once the domain is gone.
 */
int xc_domain_wait_shutdown(xc_interface *xch, uint32_t domid,
                            unsigned int timeout_ms, xc_domaininfo_t *info);
/* Fills up to max entries for domains with id >= first; returns count. */
int xc_domain_getinfolist(xc_interface *xch, uint32_t first,
                          unsigned int max, xc_domaininfo_t *info);
int xc_domain_setmaxmem(xc_interface *xch, uint32_t domid,
                        uint64_t max_memkb);

/* Ask the guest to shut down (SHUTDOWN_* reason); it acts when it can. */
int xc_domain_shutdown_request(xc_interface *xch, uint32_t domid,
                               unsigned int reason);
/* Read the guest's console from *cursor; returns bytes (>= 0) or -1.
 * *lost counts bytes the ring overwrote before they were read. */
int64_t xc_console_read(xc_interface *xch, uint32_t domid, char *buf,
                        size_t len, uint64_t *cursor, uint64_t *lost);

/* The toolstack's name and config blob of a domain (xenstore's role). */
int xc_domain_set_meta(xc_interface *xch, uint32_t domid, const char *name,
                       const void *blob, size_t blob_len);
/* When the toolstack first named the domain (seconds since the Epoch;
 * 0 for domain 0), as libxl_vm_get_start_time. */
int xc_domain_start_time(xc_interface *xch, uint32_t domid,
                         uint64_t *start_time);
/* *blob is malloc'd (NULL if none); the caller frees it. */
int xc_domain_get_meta(xc_interface *xch, uint32_t domid, char *name,
                       size_t name_len, void **blob, size_t *blob_len);
/*
 * Compare-and-swap rename: the domain's name becomes name only if it is
 * expect now, atomically in the hypervisor.  Fails with errno EBUSY
 * (nothing changed) when the name is not expect, EEXIST when another
 * domain is called name.
 */
int xc_domain_rename(xc_interface *xch, uint32_t domid, const char *expect,
                     const char *name);

/*
 * The migration throttle (ferry): withhold pct percent (0..99) of each of
 * the domain's vCPUs' time, 0 lifting it.  The hypervisor also lifts it
 * when log-dirty is switched off and when the domain is resumed.  Returns
 * 0, or -1 with errno (EINVAL above 99).
 */
int xc_domain_set_throttle(xc_interface *xch, uint32_t domid,
                           unsigned int pct);
/* The throttle in force, in *pct; 0 or -1 with errno. */
int xc_domain_get_throttle(xc_interface *xch, uint32_t domid,
                           unsigned int *pct);

/* ------------------------------------------------------------------------
 * vCPUs
 * ------------------------------------------------------------------------ */

int xc_vcpu_getcontext(xc_interface *xch, uint32_t domid, uint32_t vcpu,
                       struct vcpu_guest_context *ctxt);
/* online, blocked, running, cpu_time and cpu of one vCPU. */
typedef struct xen_domctl_getvcpuinfo xc_vcpuinfo_t;
int xc_vcpu_getinfo(xc_interface *xch, uint32_t domid, uint32_t vcpu,
                    xc_vcpuinfo_t *info);
/* ctxt NULL resets the vCPU. */
int xc_vcpu_setcontext(xc_interface *xch, uint32_t domid, uint32_t vcpu,
                       const struct vcpu_guest_context *ctxt);

/* ------------------------------------------------------------------------
 * Memory
 * ------------------------------------------------------------------------ */

/* In: MFNs; out: XEN_DOMCTL_PFINFO_* words.  Any num (split in 1024s). */
int xc_get_pfn_type_batch(xc_interface *xch, uint32_t domid,
                          unsigned int num, xen_pfn_t *arr);
/*
 * The same, with XC_PFINFO_ZERO: an ordinary page whose frame has not
 * been written since the domain got it reads XEN_DOMCTL_PFINFO_XALLOC
 * (it holds zeros).  An older daemon answers as without the flag.
 */
#define XC_PFINFO_ZERO 1U
int xc_get_pfn_type_batch_flags(xc_interface *xch, uint32_t domid,
                                unsigned int num, xen_pfn_t *arr,
                                unsigned int flags);

struct xc_shadow_op_stats
{
    uint32_t fault_count;
    uint32_t dirty_count;
};
/* Returns pages covered (>= 0) or -1.  bitmap may be NULL. */
int64_t xc_shadow_control(xc_interface *xch, uint32_t domid, unsigned int op,
                          uint8_t *bitmap, uint64_t pages, unsigned int mode,
                          struct xc_shadow_op_stats *stats);

/* mmu_update / mmuext_op on a domain's behalf (foreigndom as Xen's). */
int xc_mmu_update(xc_interface *xch, struct mmu_update *reqs,
                  unsigned int count, unsigned int foreigndom,
                  unsigned int *done);
int xc_mmuext_op(xc_interface *xch, struct mmuext_op *ops,
                 unsigned int count, uint32_t domid);
/* The same, saying in *done how many ops took effect (the hypervisor
 * stops at the first that fails) and logging nothing: for a caller to
 * whom a failure is an answer, not an error. */
int xc_mmuext_op_done(xc_interface *xch, struct mmuext_op *ops,
                      unsigned int count, uint32_t domid,
                      unsigned int *done);

/* Populate exactly nr extents of 2^order frames at the GPFNs in extents;
 * on return extents[] hold the MFNs.  All or nothing is not guaranteed:
 * on failure the frames populated so far stay (as Xen's). */
int xc_domain_populate_physmap_exact(xc_interface *xch, uint32_t domid,
                                     unsigned long nr, unsigned int order,
                                     unsigned int mem_flags,
                                     xen_pfn_t *extents);
int xc_domain_decrease_reservation_exact(xc_interface *xch, uint32_t domid,
                                         unsigned long nr, unsigned int order,
                                         xen_pfn_t *mfns);
int xc_maximum_ram_page(xc_interface *xch, uint64_t *max_mfn);

/* ------------------------------------------------------------------------
 * Foreign mapping (zero copy) and the M2P
 * ------------------------------------------------------------------------ */

#define XC_MAP_READ  1
#define XC_MAP_WRITE 2

/*
 * Map num machine frames of domid.  ptrs[i] is the frame's address, or
 * NULL with err[i] set (-EPERM: not the domain's; -EINVAL: no such frame;
 * -EBUSY: a validated page table asked for writing).  Returns 0 if every
 * frame mapped, 1 if some did not, -1 on failure of the call itself.
 * Nothing needs unmapping: the addresses stay valid until
 * xc_interface_close(), but a frame may change owner after the check.
 */
int xc_map_foreign_frames(xc_interface *xch, uint32_t domid, int prot,
                          const xen_pfn_t *mfns, unsigned int num,
                          void **ptrs, int *err);
/* One frame; NULL with errno on failure. */
void *xc_map_foreign_frame(xc_interface *xch, uint32_t domid, int prot,
                           xen_pfn_t mfn);
/*
 * Copy len bytes out of (into) frames that xc_map_foreign_frames mapped
 * for reading (writing), from mapped on, through the machine-memory file
 * rather than the mapping: no page of the mapping is touched, so a
 * process pays no first-touch fault per page (11-15 us each on a host
 * whose page tables are shadowed).  For runs of adjacent frames; 0, or -1
 * with errno (EINVAL: not inside this host's machine memory).
 */
int xc_mapped_read(xc_interface *xch, const void *mapped, void *buf,
                   size_t len);
int xc_mapped_write(xc_interface *xch, void *mapped, const void *buf,
                    size_t len);
/* The host's M2P, read-only: entry mfn is the frame's PFN (full
 * sessions; NULL for the others, which see no machine memory). */
const uint64_t *xc_m2p(const xc_interface *xch);

/*
 * Copy n whole frames of domid from (to) src (dst), n pages laid end to
 * end.  Each frame must be the domain's (EPERM), and one written must
 * not be a page table in use (EBUSY); nothing is copied unless every
 * frame of a batch passes.  A full session checks and copies through its
 * machine memory; a builder session through a staging memfd of two
 * halves of XC_STAGING_PAGES pages it gives the daemon, which checks and
 * copies; a control session gets EPERM.  On a builder session these
 * first wait for a pipelined write (below), and fail with its error if
 * it failed.
 */
#define XC_STAGING_PAGES 1024
int xc_frames_write(xc_interface *xch, uint32_t domid, const xen_pfn_t *mfns,
                    unsigned int n, const void *src);
int xc_frames_read(xc_interface *xch, uint32_t domid, const xen_pfn_t *mfns,
                   unsigned int n, void *dst);
/*
 * Builder sessions: the half of the staging area no copy is reading, to
 * compose up to n pages in place and pass as the src of
 * xc_frames_write() or xc_frames_write_start(), which then copy them
 * only once (into the frames).  NULL for other sessions or n too large.
 * Valid until the next xc_frames_* call.
 */
void *xc_frames_buffer(xc_interface *xch, unsigned int n);
/*
 * A pipelined xc_frames_write() of n <= XC_STAGING_PAGES pages: the
 * request is sent and the call returns without its answer, and the next
 * xc_frames_buffer() is the other half, so that the caller composes the
 * next batch while the daemon copies this one.  One write is in flight
 * at most: starting another first waits for it, and if it failed returns
 * its error and sends nothing.  Any other call also takes its answer
 * first (responses come in order), keeping its outcome for
 * xc_frames_wait().  Other sessions, or n out of range: as
 * xc_frames_write().
 */
int xc_frames_write_start(xc_interface *xch, uint32_t domid,
                          const xen_pfn_t *mfns, unsigned int n,
                          const void *src);
/* The outcome of the last xc_frames_write_start() not yet waited for:
 * 0 (or none), or -1 with errno (logged, naming the frame refused). */
int xc_frames_wait(xc_interface *xch);

/* ------------------------------------------------------------------------
 * The PV domain builder (xc-dom.c)
 * ------------------------------------------------------------------------ */

struct xc_dom_args
{
    const void *image;          /* a ferry guest image (isa.h), whole */
    size_t image_len;
    uint64_t nr_pages;          /* memory to populate */
    const char *cmdline;        /* into start_info.cmd_line (may be NULL) */
};

struct xc_dom_result
{
    uint64_t virt_base;
    uint64_t start_info_pfn, start_info_mfn;
    uint64_t shared_info_mfn;
    uint64_t pt_base_pfn;
    uint64_t first_free_pfn;
};

/*
 * Build a PV guest into the (created, paused, max_mem set) domain: populate
 * its memory, load the image, build and pin its page tables, fill
 * start_info, the P2M and shared_info, and set vCPU 0's context.  The
 * domain stays paused.  On failure the caller destroys the domain.
 */
int xc_dom_build_pv(xc_interface *xch, uint32_t domid,
                    const struct xc_dom_args *args,
                    struct xc_dom_result *res);

/* ------------------------------------------------------------------------
 * Logs
 * ------------------------------------------------------------------------ */

/* Read the hypervisor's log from *cursor (0: the oldest kept); returns
 * bytes read into buf (>= 0) and advances *cursor, or -1.  With clear,
 * what was read is forgotten: later reads start after it (xl dmesg -c). */
int64_t xc_dmesg_read(xc_interface *xch, char *buf, size_t len,
                      uint64_t *cursor, bool clear);
/* Run the hypervisor's auditor: 0 clean, 1 with msg filled, -1 error. */
int xc_audit(xc_interface *xch, char *msg, size_t len);

#endif /* FERRY_XC_H */
