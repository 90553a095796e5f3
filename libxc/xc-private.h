/* SPDX-License-Identifier: MIT */
/*
 * xc-private.h: libxc's internals, shared by its files (prefix xc__).
 */
#ifndef FERRY_XC_PRIVATE_H
#define FERRY_XC_PRIVATE_H

#include "xc.h"
#include "../hypervisor/include/public/control.h"

#ifndef min
#define min(a, b) ((a) < (b) ? (a) : (b))
#endif

struct xc__resp
{
    void *buf;
    size_t len, cap;
    int rc;
};

struct xc_interface
{
    int fd;                     /* control socket */
    char *run_dir;
    struct xc_logger *logger;
    uint32_t seq;
    struct xc__resp resp;       /* the last response */
    struct xc__resp scratch;

    unsigned int kind;          /* XC_SESSION_* */
    int send_fd;                /* fd to pass with the next request */
    uint8_t *staging;           /* builder: the staging memfd, mapped */
    size_t staging_bytes;       /* two halves of XC_STAGING_PAGES pages */
    /*
     * A builder's pipelined write (xc_frames_write_start): the half a
     * copy in flight reads is the other one than `fill`; its request's
     * seq, domain and frames (for the message if it fails), and once
     * its answer is in, its outcome until xc_frames_wait() returns it.
     */
    unsigned int fill;          /* 0 or 1: the half callers may fill */
    bool copy_pending;          /* a FRAME_COPY's answer is still due */
    bool copy_done;             /* ... came in; copy_errno is its outcome */
    uint32_t copy_seq;
    uint32_t copy_domid;
    unsigned int copy_n;
    xen_pfn_t *copy_mfns;       /* XC_STAGING_PAGES entries */
    int copy_errno;

    int mem_fd;                 /* machine memory, passed at HELLO */
    uint64_t mem_bytes;
    uint64_t max_page;
    uint64_t m2p_first_mfn;
    uint8_t *mem_rw;            /* whole-memory views */
    uint8_t *mem_ro;
};

/* Log through the caller's logger; errnoval != 0 appends strerror. */
void xc__log(xc_interface *xch, enum xc_loglvl lvl, int errnoval,
             const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Send op with req followed by extra; read the response into resp.
 * Returns the response rc (>= 0), or -1 with errno on a transport error or
 * a negative rc from the daemon.
 */
int xc__call(xc_interface *xch, unsigned int op, const void *req,
             size_t req_len, const void *extra, size_t extra_len,
             struct xc__resp *resp);

#endif /* FERRY_XC_PRIVATE_H */
