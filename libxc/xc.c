/* SPDX-License-Identifier: MIT */
/*
 * libxc: the connection to a host's daemon and the calls that map one to
 * one onto control requests (see xc.h for the conventions).
 *
 * A call builds its request in the interface's scratch buffer, sends it,
 * and reads the whole response before returning, so one xc_interface
 * serves one thread at a time; callers that want parallel calls open one
 * interface per thread (the daemon gives each connection its own vCPU of
 * domain 0).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "xc.h"
#include "xc-private.h"

/* ------------------------------------------------------------------------
 * Logging
 * ------------------------------------------------------------------------ */

static void stderr_log(struct xc_logger *self, enum xc_loglvl lvl,
                       const char *msg)
{
    (void)self;
    fprintf(stderr, "%s%s\n", lvl >= XC_ERROR ? "ferry: error: " : "ferry: ",
            msg);
}

struct xc_logger *xc_stderr_logger(enum xc_loglvl min_level)
{
    static struct xc_logger l[XC_ERROR + 1];

    if ( min_level > XC_ERROR )
        min_level = XC_ERROR;
    l[min_level].log = stderr_log;
    l[min_level].min_level = min_level;
    return &l[min_level];
}

void xc__log(xc_interface *xch, enum xc_loglvl lvl, int errnoval,
             const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    int n;

    if ( !xch || !xch->logger || lvl < xch->logger->min_level )
        return;
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if ( errnoval && n >= 0 && (size_t)n < sizeof(msg) )
        snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s",
                 strerror(errnoval));
    xch->logger->log(xch->logger, lvl, msg);
}

/* ------------------------------------------------------------------------
 * Requests
 * ------------------------------------------------------------------------ */

static int write_full(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while ( len )
    {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if ( n < 0 && errno == EINTR )
            continue;
        if ( n <= 0 )
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Write a (small) header whole, passing fd with its first byte. */
static int send_with_fd(int sock, const void *buf, size_t len, int fd)
{
    union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(int))]; } u;
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = u.buf, .msg_controllen = sizeof(u.buf),
    };
    struct cmsghdr *cm;
    ssize_t n;

    memset(&u, 0, sizeof(u));
    cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    do {
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while ( n < 0 && errno == EINTR );
    if ( n < 0 )
        return -1;
    return write_full(sock, (const uint8_t *)buf + n, len - (size_t)n);
}

/* Read exactly len bytes; collect one passed fd if present. */
static int read_full(int fd, void *buf, size_t len, int *passed_fd)
{
    uint8_t *p = buf;

    while ( len )
    {
        union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(int))]; } u;
        struct iovec iov = { .iov_base = p, .iov_len = len };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n;

        if ( passed_fd )
        {
            msg.msg_control = u.buf;
            msg.msg_controllen = sizeof(u.buf);
        }
        n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
        if ( n < 0 && errno == EINTR )
            continue;
        if ( n == 0 )
        {
            errno = EPIPE;
            return -1;
        }
        if ( n < 0 )
            return -1;
        if ( passed_fd )
        {
            struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

            if ( cm && cm->cmsg_level == SOL_SOCKET &&
                 cm->cmsg_type == SCM_RIGHTS )
                memcpy(passed_fd, CMSG_DATA(cm), sizeof(int));
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Send one request; its header's seq in *seq. */
static int send_req(xc_interface *xch, unsigned int op, const void *req,
                    size_t req_len, const void *extra, size_t extra_len,
                    uint32_t *seq)
{
    struct ferry_ctl_hdr h = {
        .magic = FERRY_CTL_MAGIC, .version = FERRY_CTL_VERSION,
        .op = (uint16_t)op, .seq = ++xch->seq,
        .len = (uint32_t)(req_len + extra_len),
    };

    *seq = h.seq;
    if ( req_len + extra_len > FERRY_CTL_MAX_PAYLOAD )
    {
        errno = E2BIG;
        return -1;
    }
    if ( xch->send_fd >= 0 )
    {
        int fd = xch->send_fd;

        xch->send_fd = -1;
        if ( send_with_fd(xch->fd, &h, sizeof(h), fd) )
        {
            xc__log(xch, XC_ERROR, errno,
                    "lost the connection to ferry-hv at %s", xch->run_dir);
            return -1;
        }
    }
    else if ( write_full(xch->fd, &h, sizeof(h)) )
    {
        xc__log(xch, XC_ERROR, errno, "lost the connection to ferry-hv at %s",
                xch->run_dir);
        return -1;
    }
    if ( (req_len && write_full(xch->fd, req, req_len)) ||
         (extra_len && write_full(xch->fd, extra, extra_len)) )
    {
        xc__log(xch, XC_ERROR, errno, "lost the connection to ferry-hv at %s",
                xch->run_dir);
        return -1;
    }
    return 0;
}

/* Read the response to request seq of op into resp. */
static int recv_resp(xc_interface *xch, unsigned int op, uint32_t seq,
                     struct xc__resp *resp)
{
    struct ferry_ctl_hdr r;
    int *pfd = op == FERRY_CTL_HELLO ? &xch->mem_fd : NULL;

    resp->len = 0;
    if ( read_full(xch->fd, &r, sizeof(r), pfd) )
    {
        xc__log(xch, XC_ERROR, errno, "lost the connection to ferry-hv at %s",
                xch->run_dir);
        return -1;
    }
    if ( r.magic != FERRY_CTL_MAGIC || r.seq != seq || r.op != op )
    {
        xc__log(xch, XC_ERROR, 0, "garbled response from ferry-hv at %s",
                xch->run_dir);
        errno = EPROTO;
        return -1;
    }
    if ( r.rc == -EPROTONOSUPPORT || r.version != FERRY_CTL_VERSION )
    {
        xc__log(xch, XC_ERROR, 0,
                "ferry-hv at %s speaks control protocol version %u, this program speaks %u",
                xch->run_dir, r.version, FERRY_CTL_VERSION);
        errno = EPROTONOSUPPORT;
        return -1;
    }
    /* No request is answered with more than one message body. */
    if ( r.len > FERRY_CTL_MAX_PAYLOAD )
    {
        xc__log(xch, XC_ERROR, 0,
                "garbled response from ferry-hv at %s (%u bytes)",
                xch->run_dir, r.len);
        errno = EPROTO;
        return -1;
    }
    if ( r.len > resp->cap )
    {
        void *p = realloc(resp->buf, r.len);

        if ( !p )
            return -1;
        resp->buf = p;
        resp->cap = r.len;
    }
    if ( r.len && read_full(xch->fd, resp->buf, r.len, NULL) )
        return -1;
    resp->len = r.len;
    resp->rc = r.rc;
    if ( r.rc < 0 )
    {
        errno = -r.rc;
        return -1;
    }
    return r.rc;
}

static int copy_collect(xc_interface *xch);

int xc__call(xc_interface *xch, unsigned int op, const void *req,
             size_t req_len, const void *extra, size_t extra_len,
             struct xc__resp *resp)
{
    uint32_t seq;

    /*
     * Responses come in the order of the requests: a copy still in
     * flight is answered first (its outcome kept for xc_frames_wait()).
     */
    if ( xch->copy_pending )
        copy_collect(xch);
    resp->len = 0;
    if ( send_req(xch, op, req, req_len, extra, extra_len, &seq) )
        return -1;
    return recv_resp(xch, op, seq, resp);
}

/* A call whose whole response lands in xch->resp. */
static int call(xc_interface *xch, unsigned int op, const void *req,
                size_t req_len)
{
    return xc__call(xch, op, req, req_len, NULL, 0, &xch->resp);
}

/*
 * A fixed-size answer, copied out of xch->resp: 0, or -1 with EPROTO when
 * the daemon sent another size (a daemon of another version).
 */
static int answer_fixed(xc_interface *xch, void *dst, size_t len)
{
    if ( xch->resp.len != len )
    {
        errno = EPROTO;
        return -1;
    }
    memcpy(dst, xch->resp.buf, len);
    return 0;
}

/* ------------------------------------------------------------------------
 * Opening and closing
 * ------------------------------------------------------------------------ */

static int connect_host(xc_interface *xch)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    if ( snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", xch->run_dir,
                  FERRY_CTL_SOCKET) >= (int)sizeof(sa.sun_path) )
    {
        errno = ENAMETOOLONG;
        return -1;
    }
    xch->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if ( xch->fd < 0 )
        return -1;
    return connect(xch->fd, (struct sockaddr *)&sa, sizeof(sa));
}

static int map_memory(xc_interface *xch)
{
    size_t len = xch->mem_bytes;

    if ( xch->mem_fd < 0 )
    {
        errno = EPROTO;
        return -1;
    }
    xch->mem_rw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
                       xch->mem_fd, 0);
    if ( xch->mem_rw == MAP_FAILED )
    {
        xch->mem_rw = NULL;
        return -1;
    }
    xch->mem_ro = mmap(NULL, len, PROT_READ, MAP_SHARED, xch->mem_fd, 0);
    if ( xch->mem_ro == MAP_FAILED )
    {
        xch->mem_ro = NULL;
        return -1;
    }
    return 0;
}

xc_interface *xc_interface_open_session(const char *run_dir,
                                        struct xc_logger *log,
                                        enum xc_session kind)
{
    xc_interface *xch = calloc(1, sizeof(*xch));
    struct ferry_ctl_hello_resp hello;
    struct ferry_ctl_hello_req q = { .kind = kind };
    int saved;

    if ( !xch )
        return NULL;
    xch->fd = -1;
    xch->mem_fd = -1;
    xch->send_fd = -1;
    xch->kind = kind;
    xch->logger = log;
    xch->run_dir = strdup(run_dir);
    if ( !xch->run_dir )
        goto fail;
    if ( connect_host(xch) )
    {
        xc__log(xch, XC_ERROR, errno,
                "cannot connect to ferry-hv at %s/%s (is the host running?)",
                run_dir, FERRY_CTL_SOCKET);
        goto fail;
    }
    /* A full session says nothing, as clients before session kinds did. */
    if ( call(xch, FERRY_CTL_HELLO, &q,
              kind == XC_SESSION_FULL ? 0 : sizeof(q)) < 0 )
        goto fail;
    if ( answer_fixed(xch, &hello, sizeof(hello)) )
    {
        xc__log(xch, XC_ERROR, 0, "bad HELLO response from ferry-hv at %s",
                run_dir);
        goto fail;
    }
    xch->max_page = hello.max_page;
    xch->mem_bytes = hello.mem_bytes;
    xch->m2p_first_mfn = hello.m2p_first_mfn;
    if ( kind != XC_SESSION_FULL )
    {
        /* Lesser sessions never hold machine memory, even if offered. */
        if ( xch->mem_fd >= 0 )
            close(xch->mem_fd);
        xch->mem_fd = -1;
        return xch;
    }
    if ( map_memory(xch) )
    {
        xc__log(xch, XC_ERROR, errno, "cannot map the machine memory of %s",
                run_dir);
        goto fail;
    }
    return xch;

 fail:
    saved = errno;
    xc_interface_close(xch);
    errno = saved;
    return NULL;
}

xc_interface *xc_interface_open(const char *run_dir, struct xc_logger *log)
{
    return xc_interface_open_session(run_dir, log, XC_SESSION_FULL);
}

xc_interface *xc_builder_open(xc_interface *xch)
{
    return xc_interface_open_session(xch->run_dir, xch->logger,
                                     XC_SESSION_BUILDER);
}

bool xc_has_machine_memory(const xc_interface *xch)
{
    return xch->mem_fd >= 0;
}

void xc_interface_close(xc_interface *xch)
{
    if ( !xch )
        return;
    if ( xch->staging )
        munmap(xch->staging, xch->staging_bytes);
    free(xch->copy_mfns);
    if ( xch->mem_rw )
        munmap(xch->mem_rw, xch->mem_bytes);
    if ( xch->mem_ro )
        munmap(xch->mem_ro, xch->mem_bytes);
    if ( xch->mem_fd >= 0 )
        close(xch->mem_fd);
    if ( xch->fd >= 0 )
        close(xch->fd);
    free(xch->resp.buf);
    free(xch->scratch.buf);
    free(xch->run_dir);
    free(xch);
}

const char *xc_run_dir(const xc_interface *xch)
{
    return xch->run_dir;
}

int xc_interface_fd(const xc_interface *xch)
{
    return xch ? xch->fd : -1;
}

uint64_t xc_max_page(const xc_interface *xch)
{
    return xch->max_page;
}

int xc_host_info(xc_interface *xch, struct xc_host_info *info)
{
    struct ferry_ctl_host_info_resp r;

    if ( call(xch, FERRY_CTL_HOST_INFO, NULL, 0) < 0 )
        return -1;
    if ( answer_fixed(xch, &r, sizeof(r)) )
        return -1;
    memset(info, 0, sizeof(*info));
    info->total_pages = r.total_pages;
    info->free_pages = r.free_pages;
    info->nr_cpus = r.nr_cpus;
    info->nr_domains = r.nr_domains;
    info->xen_major = r.xen_major;
    info->xen_minor = r.xen_minor;
    memcpy(info->xen_extra, r.xen_extra, sizeof(info->xen_extra));
    memcpy(info->version, r.version, sizeof(info->version));
    info->xen_extra[sizeof(info->xen_extra) - 1] = '\0';
    info->version[sizeof(info->version) - 1] = '\0';
    info->uptime_ms = r.uptime_ms;
    return 0;
}

/* ------------------------------------------------------------------------
 * Domains
 * ------------------------------------------------------------------------ */

static int domid_call(xc_interface *xch, unsigned int op, uint32_t domid,
                      const char *what)
{
    struct ferry_ctl_domid q = { .domid = (domid_t)domid };

    if ( domid > 0xFFFF )
    {
        errno = EINVAL;
        return -1;
    }
    if ( call(xch, op, &q, sizeof(q)) < 0 )
    {
        xc__log(xch, errno == ESRCH ? XC_DEBUG : XC_ERROR, errno,
                "%s of domain %u failed", what, domid);
        return -1;
    }
    return 0;
}

int xc_domain_create(xc_interface *xch, uint32_t *domid,
                     unsigned int max_vcpus, const uint8_t handle[16])
{
    struct ferry_ctl_create_req q = {
        .domid = (domid_t)*domid, .max_vcpus = max_vcpus,
    };
    struct ferry_ctl_domid r;

    if ( handle )
        memcpy(q.handle, handle, sizeof(q.handle));
    if ( call(xch, FERRY_CTL_DOMAIN_CREATE, &q, sizeof(q)) < 0 )
    {
        xc__log(xch, XC_ERROR, errno, "cannot create a domain");
        return -1;
    }
    if ( answer_fixed(xch, &r, sizeof(r)) )
        return -1;
    *domid = r.domid;
    return 0;
}

int xc_domain_destroy(xc_interface *xch, uint32_t domid)
{
    return domid_call(xch, FERRY_CTL_DOMAIN_DESTROY, domid, "destroy");
}

int xc_domain_build_done(xc_interface *xch, uint32_t domid)
{
    return domid_call(xch, FERRY_CTL_BUILD_DONE, domid, "build completion");
}

int xc_domain_pause(xc_interface *xch, uint32_t domid)
{
    return domid_call(xch, FERRY_CTL_DOMAIN_PAUSE, domid, "pause");
}

int xc_domain_unpause(xc_interface *xch, uint32_t domid)
{
    return domid_call(xch, FERRY_CTL_DOMAIN_UNPAUSE, domid, "unpause");
}

int xc_domain_resume(xc_interface *xch, uint32_t domid, bool cancel)
{
    struct vcpu_guest_context ctxt;

    if ( cancel )
    {
        /* Xen's modify_returncode: the suspend hypercall returns 1. */
        if ( xc_vcpu_getcontext(xch, domid, 0, &ctxt) )
            return -1;
        ctxt.user_regs.rax = 1;
        if ( xc_vcpu_setcontext(xch, domid, 0, &ctxt) )
            return -1;
    }
    return domid_call(xch, FERRY_CTL_DOMAIN_RESUME, domid, "resume");
}

int xc_domain_getinfo_single(xc_interface *xch, uint32_t domid,
                             xc_domaininfo_t *info)
{
    if ( domid_call(xch, FERRY_CTL_DOMAIN_GETINFO, domid, "getinfo") )
        return -1;
    return answer_fixed(xch, info, sizeof(*info));
}

int xc_domain_wait_shutdown(xc_interface *xch, uint32_t domid,
                            unsigned int timeout_ms, xc_domaininfo_t *info)
{
    struct ferry_ctl_wait_req q = { .domid = (domid_t)domid,
                                    .timeout_ms = timeout_ms };

    if ( xc__call(xch, FERRY_CTL_DOMAIN_WAIT, &q, sizeof(q), NULL, 0,
                  &xch->resp) < 0 )
    {
        if ( errno != ESRCH )
            xc__log(xch, XC_ERROR, errno, "cannot wait for domain %u",
                    domid);
        return -1;
    }
    return answer_fixed(xch, info, sizeof(*info));
}

int xc_domain_getinfolist(xc_interface *xch, uint32_t first,
                          unsigned int max, xc_domaininfo_t *info)
{
    struct ferry_ctl_list_req q = { .first = (domid_t)first };
    unsigned int n = 0;

    while ( n < max )
    {
        size_t got;

        q.max = min(max - n, 1024U);
        if ( call(xch, FERRY_CTL_DOMAIN_LIST, &q, sizeof(q)) < 0 )
        {
            xc__log(xch, XC_ERROR, errno, "cannot list domains");
            return -1;
        }
        got = xch->resp.len / sizeof(*info);
        memcpy(info + n, xch->resp.buf, got * sizeof(*info));
        n += (unsigned int)got;
        if ( got < q.max )
            break;
        q.first = (domid_t)(info[n - 1].domain + 1);
    }
    return (int)n;
}

int xc_domain_setmaxmem(xc_interface *xch, uint32_t domid,
                        uint64_t max_memkb)
{
    struct ferry_ctl_max_mem_req q = {
        .domid = (domid_t)domid, .max_memkb = max_memkb,
    };

    if ( call(xch, FERRY_CTL_DOMAIN_MAX_MEM, &q, sizeof(q)) < 0 )
    {
        xc__log(xch, XC_ERROR, errno, "cannot set max_mem of domain %u",
                domid);
        return -1;
    }
    return 0;
}

int xc_domain_shutdown_request(xc_interface *xch, uint32_t domid,
                               unsigned int reason)
{
    struct ferry_ctl_shutdown_req q = {
        .domid = (domid_t)domid, .reason = reason,
    };

    if ( call(xch, FERRY_CTL_DOMAIN_SHUTDOWN, &q, sizeof(q)) < 0 )
    {
        xc__log(xch, XC_ERROR, errno, "cannot ask domain %u to shut down",
                domid);
        return -1;
    }
    return 0;
}

/* Read from one of the two console rings (a domain's, or the host's). */
static int64_t ring_read(xc_interface *xch, unsigned int op, uint32_t domid,
                         unsigned int flags, char *buf, size_t len,
                         uint64_t *cursor, uint64_t *lost)
{
    struct ferry_ctl_console_req q = {
        .domid = (domid_t)domid, .flags = (uint16_t)flags,
        .max = (uint32_t)min(len, (size_t)1 << 20), .cursor = *cursor,
    };
    struct ferry_ctl_console_resp r;

    if ( call(xch, op, &q, sizeof(q)) < 0 )
        return -1;
    if ( xch->resp.len < sizeof(r) )
    {
        errno = EPROTO;
        return -1;
    }
    memcpy(&r, xch->resp.buf, sizeof(r));
    if ( xch->resp.len != sizeof(r) + r.len || r.len > len )
    {
        errno = EPROTO;
        return -1;
    }
    memcpy(buf, (uint8_t *)xch->resp.buf + sizeof(r), r.len);
    *cursor = r.cursor;
    if ( lost )
        *lost = r.lost;
    return r.len;
}

int64_t xc_console_read(xc_interface *xch, uint32_t domid, char *buf,
                        size_t len, uint64_t *cursor, uint64_t *lost)
{
    return ring_read(xch, FERRY_CTL_CONSOLE_READ, domid, 0, buf, len, cursor,
                     lost);
}

int xc_domain_set_meta(xc_interface *xch, uint32_t domid, const char *name,
                       const void *blob, size_t blob_len)
{
    struct ferry_ctl_meta q = { .domid = (domid_t)domid };

    if ( strlen(name) >= sizeof(q.name) || blob_len > FERRY_META_BLOB_MAX )
    {
        errno = E2BIG;
        return -1;
    }
    strcpy(q.name, name);
    q.blob_len = (uint32_t)blob_len;
    if ( xc__call(xch, FERRY_CTL_DOMAIN_SET_META, &q, sizeof(q), blob,
                  blob_len, &xch->resp) < 0 )
    {
        xc__log(xch, XC_ERROR, errno, "cannot name domain %u '%s'", domid,
                name);
        return -1;
    }
    return 0;
}

int xc_domain_rename(xc_interface *xch, uint32_t domid, const char *expect,
                     const char *name)
{
    struct ferry_ctl_rename_req q = { .domid = (domid_t)domid };

    if ( strlen(expect) >= sizeof(q.expect) || strlen(name) >= sizeof(q.name) )
    {
        errno = E2BIG;
        return -1;
    }
    strcpy(q.expect, expect);
    strcpy(q.name, name);
    if ( xc__call(xch, FERRY_CTL_DOMAIN_RENAME, &q, sizeof(q), NULL, 0,
                  &xch->resp) < 0 )
    {
        /* EBUSY is an answer (someone else renamed it first), not a
         * fault: the caller decides what it means. */
        int err = errno;

        xc__log(xch, err == EBUSY ? XC_INFO : XC_ERROR, err,
                "cannot rename domain %u '%s' to '%s'", domid, expect, name);
        errno = err;
        return -1;
    }
    return 0;
}

static int throttle_op(xc_interface *xch, uint32_t domid, bool set,
                       unsigned int *pct)
{
    struct ferry_ctl_throttle_req q = {
        .domid = (domid_t)domid, .set = set, .pct = *pct,
    };
    struct ferry_ctl_throttle_resp r;

    if ( call(xch, FERRY_CTL_DOMAIN_THROTTLE, &q, sizeof(q)) < 0 )
        return -1;
    if ( answer_fixed(xch, &r, sizeof(r)) )
        return -1;
    *pct = r.pct;
    return 0;
}

int xc_domain_set_throttle(xc_interface *xch, uint32_t domid,
                           unsigned int pct)
{
    if ( throttle_op(xch, domid, true, &pct) )
    {
        int err = errno;

        xc__log(xch, XC_ERROR, err, "cannot throttle domain %u to %u%%",
                domid, pct);
        errno = err;
        return -1;
    }
    return 0;
}

int xc_domain_get_throttle(xc_interface *xch, uint32_t domid,
                           unsigned int *pct)
{
    *pct = 0;
    return throttle_op(xch, domid, false, pct);
}

static int get_meta(xc_interface *xch, uint32_t domid,
                    struct ferry_ctl_meta *r)
{
    if ( domid_call(xch, FERRY_CTL_DOMAIN_GET_META, domid, "get_meta") )
        return -1;
    if ( xch->resp.len < sizeof(*r) )
    {
        errno = EPROTO;
        return -1;
    }
    memcpy(r, xch->resp.buf, sizeof(*r));
    if ( xch->resp.len != sizeof(*r) + r->blob_len )
    {
        errno = EPROTO;
        return -1;
    }
    r->name[sizeof(r->name) - 1] = '\0';
    return 0;
}

int xc_domain_start_time(xc_interface *xch, uint32_t domid,
                         uint64_t *start_time)
{
    struct ferry_ctl_meta r;

    if ( get_meta(xch, domid, &r) )
        return -1;
    *start_time = r.start_time;
    return 0;
}

int xc_domain_get_meta(xc_interface *xch, uint32_t domid, char *name,
                       size_t name_len, void **blob, size_t *blob_len)
{
    struct ferry_ctl_meta r;

    if ( get_meta(xch, domid, &r) )
        return -1;
    snprintf(name, name_len, "%s", r.name);
    if ( blob )
    {
        *blob = NULL;
        if ( r.blob_len )
        {
            *blob = malloc(r.blob_len + 1);
            if ( !*blob )
                return -1;
            memcpy(*blob, (uint8_t *)xch->resp.buf + sizeof(r), r.blob_len);
            ((char *)*blob)[r.blob_len] = '\0';
        }
    }
    if ( blob_len )
        *blob_len = r.blob_len;
    return 0;
}

/* ------------------------------------------------------------------------
 * vCPUs
 * ------------------------------------------------------------------------ */

int xc_vcpu_getcontext(xc_interface *xch, uint32_t domid, uint32_t vcpu,
                       struct vcpu_guest_context *ctxt)
{
    struct ferry_ctl_vcpu_req q = { .domid = (domid_t)domid, .vcpu = vcpu };

    if ( call(xch, FERRY_CTL_VCPU_GETCONTEXT, &q, sizeof(q)) < 0 )
    {
        xc__log(xch, XC_ERROR, errno,
                "cannot get the context of vCPU %u of domain %u", vcpu, domid);
        return -1;
    }
    return answer_fixed(xch, ctxt, sizeof(*ctxt));
}

int xc_vcpu_getinfo(xc_interface *xch, uint32_t domid, uint32_t vcpu,
                    xc_vcpuinfo_t *info)
{
    struct ferry_ctl_vcpu_req q = { .domid = (domid_t)domid, .vcpu = vcpu };

    if ( call(xch, FERRY_CTL_VCPU_GETINFO, &q, sizeof(q)) < 0 )
    {
        xc__log(xch, XC_ERROR, errno,
                "cannot get the state of vCPU %u of domain %u", vcpu, domid);
        return -1;
    }
    return answer_fixed(xch, info, sizeof(*info));
}

int xc_vcpu_setcontext(xc_interface *xch, uint32_t domid, uint32_t vcpu,
                       const struct vcpu_guest_context *ctxt)
{
    struct ferry_ctl_vcpu_req q = { .domid = (domid_t)domid, .vcpu = vcpu };

    if ( xc__call(xch, FERRY_CTL_VCPU_SETCONTEXT, &q, sizeof(q), ctxt,
                  ctxt ? sizeof(*ctxt) : 0, &xch->resp) < 0 )
    {
        xc__log(xch, XC_ERROR, errno,
                "cannot set the context of vCPU %u of domain %u", vcpu, domid);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Memory
 * ------------------------------------------------------------------------ */

int xc_get_pfn_type_batch(xc_interface *xch, uint32_t domid,
                          unsigned int num, xen_pfn_t *arr)
{
    return xc_get_pfn_type_batch_flags(xch, domid, num, arr, 0);
}

int xc_get_pfn_type_batch_flags(xc_interface *xch, uint32_t domid,
                                unsigned int num, xen_pfn_t *arr,
                                unsigned int flags)
{
    for ( unsigned int done = 0; done < num; )
    {
        unsigned int n = min(num - done, (unsigned int)XEN_DOMCTL_PFINFO_MAX);
        struct ferry_ctl_pfinfo_req q = {
            .domid = (domid_t)domid,
            .flags = (flags & XC_PFINFO_ZERO) ? FERRY_PFINFO_ZERO : 0,
            .num = n,
        };

        if ( xc__call(xch, FERRY_CTL_GETPAGEFRAMEINFO3, &q, sizeof(q),
                      arr + done, n * sizeof(*arr), &xch->resp) < 0 )
        {
            xc__log(xch, XC_ERROR, errno,
                    "getpageframeinfo3 of %u frames of domain %u failed", n,
                    domid);
            return -1;
        }
        if ( xch->resp.len != n * sizeof(*arr) )
        {
            errno = EPROTO;
            return -1;
        }
        memcpy(arr + done, xch->resp.buf, xch->resp.len);
        done += n;
    }
    return 0;
}

int64_t xc_shadow_control(xc_interface *xch, uint32_t domid, unsigned int op,
                          uint8_t *bitmap, uint64_t pages, unsigned int mode,
                          struct xc_shadow_op_stats *stats)
{
    struct ferry_ctl_shadow_req q = {
        .domid = (domid_t)domid, .op = op, .mode = mode,
        .want_bitmap = bitmap ? 1 : 0, .pages = pages,
    };
    struct ferry_ctl_shadow_resp r;

    if ( call(xch, FERRY_CTL_SHADOW_OP, &q, sizeof(q)) < 0 )
    {
        xc__log(xch, XC_ERROR, errno, "shadow op %u on domain %u failed", op,
                domid);
        return -1;
    }
    if ( xch->resp.len < sizeof(r) ||
         xch->resp.len != sizeof(r) + (bitmap ? (pages + 7) / 8 : 0) )
    {
        errno = EPROTO;
        return -1;
    }
    memcpy(&r, xch->resp.buf, sizeof(r));
    if ( bitmap )
        memcpy(bitmap, (uint8_t *)xch->resp.buf + sizeof(r), (pages + 7) / 8);
    if ( stats )
    {
        stats->fault_count = r.stats.fault_count;
        stats->dirty_count = r.stats.dirty_count;
    }
    return (int64_t)r.pages;
}

static int mmu_call(xc_interface *xch, unsigned int op, void *ops,
                    size_t elem, unsigned int count, unsigned int foreigndom,
                    unsigned int *done)
{
    struct ferry_ctl_mmu_req q = { .foreigndom = foreigndom };
    struct ferry_ctl_mmu_resp r = { 0 };
    unsigned int sent = 0;
    int rc = 0;

    while ( sent < count && !rc )
    {
        q.count = min(count - sent, 4096U);
        rc = xc__call(xch, op, &q, sizeof(q), (uint8_t *)ops + sent * elem,
                      q.count * elem, &xch->resp);
        if ( xch->resp.len == sizeof(r) )
            memcpy(&r, xch->resp.buf, sizeof(r));
        sent += rc < 0 ? r.done : q.count;
    }
    if ( done )
        *done = sent;
    return rc < 0 ? -1 : 0;
}

int xc_mmu_update(xc_interface *xch, struct mmu_update *reqs,
                  unsigned int count, unsigned int foreigndom,
                  unsigned int *done)
{
    if ( mmu_call(xch, FERRY_CTL_MMU_UPDATE, reqs, sizeof(*reqs), count,
                  foreigndom, done) )
    {
        xc__log(xch, XC_ERROR, errno, "mmu_update of %u entries failed",
                count);
        return -1;
    }
    return 0;
}

int xc_mmuext_op(xc_interface *xch, struct mmuext_op *ops,
                 unsigned int count, uint32_t domid)
{
    if ( mmu_call(xch, FERRY_CTL_MMUEXT_OP, ops, sizeof(*ops), count, domid,
                  NULL) )
    {
        xc__log(xch, XC_ERROR, errno, "mmuext_op of %u ops on domain %u failed",
                count, domid);
        return -1;
    }
    return 0;
}

int xc_mmuext_op_done(xc_interface *xch, struct mmuext_op *ops,
                      unsigned int count, uint32_t domid,
                      unsigned int *done)
{
    return mmu_call(xch, FERRY_CTL_MMUEXT_OP, ops, sizeof(*ops), count,
                    domid, done);
}

/* One memory_op with an extent list, updated in place; returns ret. */
static int64_t memop(xc_interface *xch, unsigned int cmd, uint32_t domid,
                     unsigned long nr, unsigned int order,
                     unsigned int mem_flags, xen_pfn_t *extents)
{
    struct ferry_ctl_memop_req q = {
        .cmd = cmd, .domid = (domid_t)domid, .extent_order = order,
        .mem_flags = mem_flags, .nr_extents = nr,
    };
    struct ferry_ctl_memop_resp r;

    if ( xc__call(xch, FERRY_CTL_MEMORY_OP, &q, sizeof(q), extents,
                  nr * sizeof(*extents), &xch->resp) < 0 )
        return -1;
    if ( xch->resp.len != sizeof(r) + nr * sizeof(*extents) )
    {
        errno = EPROTO;
        return -1;
    }
    memcpy(&r, xch->resp.buf, sizeof(r));
    if ( nr )
        memcpy(extents, (uint8_t *)xch->resp.buf + sizeof(r),
               nr * sizeof(*extents));
    return r.ret;
}

int xc_domain_populate_physmap_exact(xc_interface *xch, uint32_t domid,
                                     unsigned long nr, unsigned int order,
                                     unsigned int mem_flags,
                                     xen_pfn_t *extents)
{
    for ( unsigned long done = 0; done < nr; )
    {
        unsigned long n = min(nr - done, 1UL << 19);
        int64_t ret = memop(xch, XENMEM_populate_physmap, domid, n, order,
                            mem_flags, extents + done);

        if ( ret != (int64_t)n )
        {
            if ( ret >= 0 )
                errno = ENOMEM;
            xc__log(xch, XC_ERROR, errno,
                    "populate_physmap of domain %u: %lld of %lu extents of order %u",
                    domid, (long long)(ret < 0 ? 0 : ret) + (long long)done,
                    nr, order);
            return -1;
        }
        done += n;
    }
    return 0;
}

int xc_domain_decrease_reservation_exact(xc_interface *xch, uint32_t domid,
                                         unsigned long nr, unsigned int order,
                                         xen_pfn_t *mfns)
{
    int64_t ret = memop(xch, XENMEM_decrease_reservation, domid, nr, order, 0,
                        mfns);

    if ( ret != (int64_t)nr )
    {
        if ( ret >= 0 )
            errno = EINVAL;
        xc__log(xch, XC_ERROR, errno,
                "decrease_reservation of domain %u: %lld of %lu extents",
                domid, (long long)ret, nr);
        return -1;
    }
    return 0;
}

int xc_maximum_ram_page(xc_interface *xch, uint64_t *max_mfn)
{
    int64_t ret = memop(xch, XENMEM_maximum_ram_page, DOMID_SELF, 0, 0, 0,
                        NULL);

    if ( ret < 0 )
        return -1;
    *max_mfn = (uint64_t)ret;
    return 0;
}

/* ------------------------------------------------------------------------
 * Foreign mapping
 * ------------------------------------------------------------------------ */

/* Frames per FOREIGN_MAP request: its MFNs must fit one message body
 * (FERRY_CTL_MAX_PAYLOAD, 8 MiB), so a 4 GiB domain takes two. */
#define MAP_CHUNK (1U << 19)

/* One FOREIGN_MAP request, num <= MAP_CHUNK. */
static int map_chunk(xc_interface *xch, uint32_t domid, int prot,
                     const xen_pfn_t *mfns, unsigned int num, void **ptrs,
                     int *err)
{
    struct ferry_ctl_map_req q = {
        .domid = (domid_t)domid,
        .prot = (prot & XC_MAP_WRITE) ? FERRY_MAP_READ | FERRY_MAP_WRITE
                                      : FERRY_MAP_READ,
        .num = num,
    };
    uint8_t *base = (prot & XC_MAP_WRITE) ? xch->mem_rw : xch->mem_ro;
    const int32_t *e;
    int some_failed = 0;

    if ( xc__call(xch, FERRY_CTL_FOREIGN_MAP, &q, sizeof(q), mfns,
                  num * sizeof(*mfns), &xch->resp) < 0 )
    {
        xc__log(xch, XC_ERROR, errno, "cannot map %u frames of domain %u",
                num, domid);
        return -1;
    }
    if ( xch->resp.len != num * sizeof(int32_t) )
    {
        errno = EPROTO;
        return -1;
    }
    e = xch->resp.buf;
    for ( unsigned int i = 0; i < num; i++ )
    {
        err[i] = e[i];
        ptrs[i] = e[i] ? NULL : base + (mfns[i] << PAGE_SHIFT);
        some_failed |= e[i] != 0;
    }
    return some_failed;
}

int xc_map_foreign_frames(xc_interface *xch, uint32_t domid, int prot,
                          const xen_pfn_t *mfns, unsigned int num,
                          void **ptrs, int *err)
{
    int rc, some_failed = 0;

    for ( unsigned int i = 0; i < num; i += MAP_CHUNK )
    {
        unsigned int n = num - i < MAP_CHUNK ? num - i : MAP_CHUNK;

        rc = map_chunk(xch, domid, prot, mfns + i, n, ptrs + i, err + i);
        if ( rc < 0 )
            return rc;
        some_failed |= rc;
    }
    return some_failed;
}

void *xc_map_foreign_frame(xc_interface *xch, uint32_t domid, int prot,
                           xen_pfn_t mfn)
{
    void *p;
    int err;

    if ( xc_map_foreign_frames(xch, domid, prot, &mfn, 1, &p, &err) < 0 )
        return NULL;
    if ( err )
    {
        errno = -err;
        return NULL;
    }
    return p;
}

/*
 * Copying through the machine-memory file instead of the mapping.  A
 * process's first touch of a page of its mapping costs a fault of 11-15
 * us here whether or not the page is resident (the host builds its shadow
 * of our page tables one page at a time; MADV_POPULATE_* does not help),
 * so an xl that reads a GiB through a fresh mapping spends seconds in
 * faults.  pread()/pwrite() on the file copy through the kernel's own,
 * warm, mapping into the caller's buffer, which is reused and so warm
 * too: measured 4-12x faster on this machine (ferry-bench).  The frames
 * were checked when they were mapped; only the range is checked here.
 */
static int mapped_copy(xc_interface *xch, const void *mapped, uint8_t *rbuf,
                       const uint8_t *wbuf, size_t len)
{
    bool write = wbuf != NULL;
    const uint8_t *p = mapped;
    /* A frame mapped for writing may be read too, through either view. */
    const uint8_t *base = !write && xch->mem_rw && p >= xch->mem_rw &&
                          (uint64_t)(p - xch->mem_rw) < xch->mem_bytes
                          ? xch->mem_rw
                          : write ? xch->mem_rw : xch->mem_ro;
    size_t done = 0;

    if ( !base || p < base || (uint64_t)(p - base) > xch->mem_bytes ||
         len > xch->mem_bytes - (uint64_t)(p - base) )
    {
        errno = EINVAL;
        return -1;
    }
    while ( done < len )
    {
        off_t off = (off_t)(p - base) + done;
        ssize_t n = write
            ? pwrite(xch->mem_fd, wbuf + done, len - done, off)
            : pread(xch->mem_fd, rbuf + done, len - done, off);

        if ( n < 0 && errno == EINTR )
            continue;
        if ( n <= 0 )
        {
            if ( n == 0 )
                errno = EIO;
            xc__log(xch, XC_ERROR, errno, "cannot %s %zu bytes of machine "
                    "memory at %#llx", write ? "write" : "read", len - done,
                    (unsigned long long)off);
            return -1;
        }
        done += n;
    }
    return 0;
}

int xc_mapped_read(xc_interface *xch, const void *mapped, void *buf,
                   size_t len)
{
    return mapped_copy(xch, mapped, buf, NULL, len);
}

int xc_mapped_write(xc_interface *xch, void *mapped, const void *buf,
                    size_t len)
{
    return mapped_copy(xch, mapped, NULL, buf, len);
}

/* ------------------------------------------------------------------------
 * Copying whole frames (every session kind that may write frames)
 * ------------------------------------------------------------------------ */

/*
 * A builder's staging area: a memfd sealed so that it can never shrink
 * under the daemon's mapping, populated here once and reused for every
 * batch, so that neither side pays a fault per page.  Two halves of
 * XC_STAGING_PAGES pages: the daemon copies a batch out of one while
 * the caller fills the other (xc_frames_write_start).
 */
#define HALF_BYTES ((size_t)XC_STAGING_PAGES * PAGE_SIZE)

static uint8_t *staging_half(xc_interface *xch, unsigned int i)
{
    return xch->staging + i * HALF_BYTES;
}

static int staging_setup(xc_interface *xch)
{
    struct ferry_ctl_staging_req q = { .bytes = 2 * HALF_BYTES };
    void *m = MAP_FAILED;
    int fd = -1, rc = -1, saved;

    xch->copy_mfns = malloc(XC_STAGING_PAGES * sizeof(*xch->copy_mfns));
    if ( !xch->copy_mfns )
        goto out;
    fd = memfd_create("ferry-staging", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if ( fd < 0 )
        goto out;
    if ( ftruncate(fd, (off_t)q.bytes) ||
         fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) )
        goto out;
    m = mmap(NULL, q.bytes, PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_POPULATE, fd, 0);
    if ( m == MAP_FAILED )
        goto out;
    xch->send_fd = fd;
    if ( call(xch, FERRY_CTL_STAGING, &q, sizeof(q)) < 0 )
        goto out;
    xch->staging = m;
    xch->staging_bytes = q.bytes;
    xch->fill = 0;
    m = MAP_FAILED;
    rc = 0;
 out:
    saved = errno;
    if ( rc )
    {
        xc__log(xch, XC_ERROR, errno, "cannot set up a staging area with ferry-hv at %s",
                xch->run_dir);
        free(xch->copy_mfns);
        xch->copy_mfns = NULL;
    }
    if ( m != MAP_FAILED )
        munmap(m, q.bytes);
    if ( fd >= 0 )
        close(fd);
    xch->send_fd = -1;
    errno = saved;
    return rc;
}

/* The daemon's answer to a failed FRAME_COPY of mfns[0..n), logged. */
static void copy_failed(xc_interface *xch, uint32_t domid, unsigned int dir,
                        const xen_pfn_t *mfns, unsigned int n)
{
    struct ferry_ctl_copy_resp r = { .bad = n };
    int saved = errno;

    if ( xch->resp.len == sizeof(r) )
        memcpy(&r, xch->resp.buf, sizeof(r));
    xc__log(xch, XC_ERROR, saved, "cannot %s frame %#llx of domain %u",
            dir == FERRY_COPY_TO_FRAMES ? "write" : "read",
            r.bad < n ? (unsigned long long)mfns[r.bad] : 0ULL, domid);
    errno = saved;
}

/* One FRAME_COPY of n <= XC_STAGING_PAGES frames at the fill half. */
static int frame_copy(xc_interface *xch, uint32_t domid, unsigned int dir,
                      const xen_pfn_t *mfns, unsigned int n)
{
    struct ferry_ctl_copy_req q = {
        .domid = (domid_t)domid, .dir = dir, .num = n,
        .offset = xch->fill * HALF_BYTES,
    };

    if ( xc__call(xch, FERRY_CTL_FRAME_COPY, &q, sizeof(q), mfns,
                  n * sizeof(*mfns), &xch->resp) >= 0 )
        return 0;
    copy_failed(xch, domid, dir, mfns, n);
    return -1;
}

/*
 * The answer to the copy in flight, if any: its outcome is kept in
 * copy_errno until xc_frames_wait() hands it over, whoever collected it.
 */
static int copy_collect(xc_interface *xch)
{
    int rc;

    if ( !xch->copy_pending )
        return 0;
    xch->copy_pending = false;
    xch->copy_done = true;
    rc = recv_resp(xch, FERRY_CTL_FRAME_COPY, xch->copy_seq, &xch->resp);
    if ( rc < 0 )
    {
        copy_failed(xch, xch->copy_domid, FERRY_COPY_TO_FRAMES,
                    xch->copy_mfns, xch->copy_n);
        xch->copy_errno = errno ? errno : EIO;
        return -1;
    }
    xch->copy_errno = 0;
    return 0;
}

int xc_frames_wait(xc_interface *xch)
{
    copy_collect(xch);
    if ( !xch->copy_done )
        return 0;
    xch->copy_done = false;
    if ( !xch->copy_errno )
        return 0;
    errno = xch->copy_errno;
    return -1;
}

/* Full sessions: checked, then through the machine-memory file. */
static int frames_mapped(xc_interface *xch, uint32_t domid, bool write,
                         const xen_pfn_t *mfns, unsigned int n, uint8_t *buf)
{
    void **ptrs = malloc((n + 1) * sizeof(*ptrs));
    int *errs = malloc((n + 1) * sizeof(*errs));
    int rc = -1;

    if ( !ptrs || !errs )
        goto out;
    if ( xc_map_foreign_frames(xch, domid, write ? XC_MAP_WRITE : XC_MAP_READ,
                               mfns, n, ptrs, errs) )
    {
        for ( unsigned int i = 0; i < n; i++ )
            if ( errs[i] )
            {
                errno = -errs[i];
                xc__log(xch, XC_ERROR, errno, "cannot map frame %#llx of domain %u",
                        (unsigned long long)mfns[i], domid);
                break;
            }
        goto out;
    }
    for ( unsigned int i = 0, j; i < n; i = j )
    {
        /* One call per run of frames adjacent in machine memory. */
        for ( j = i + 1; j < n && (uint8_t *)ptrs[j] ==
                                  (uint8_t *)ptrs[j - 1] + PAGE_SIZE; j++ )
            ;
        if ( write ? xc_mapped_write(xch, ptrs[i], buf + (size_t)i * PAGE_SIZE,
                                     (size_t)(j - i) * PAGE_SIZE)
                   : xc_mapped_read(xch, ptrs[i], buf + (size_t)i * PAGE_SIZE,
                                    (size_t)(j - i) * PAGE_SIZE) )
            goto out;
    }
    rc = 0;
 out:
    free(ptrs);
    free(errs);
    return rc;
}

static int frames_copy(xc_interface *xch, uint32_t domid, bool write,
                       const xen_pfn_t *mfns, unsigned int n, uint8_t *buf)
{
    uint8_t *stage;

    if ( xch->kind == XC_SESSION_FULL )
        return n ? frames_mapped(xch, domid, write, mfns, n, buf) : 0;
    if ( xch->kind != XC_SESSION_BUILDER )
    {
        errno = EPERM;
        return -1;
    }
    /* Nothing after a failed pipelined write: it is reported first. */
    if ( xc_frames_wait(xch) )
        return -1;
    if ( !xch->staging && n && staging_setup(xch) )
        return -1;
    stage = n ? staging_half(xch, xch->fill) : NULL;
    for ( unsigned int i = 0; i < n; i += XC_STAGING_PAGES )
    {
        unsigned int k = n - i < XC_STAGING_PAGES ? n - i : XC_STAGING_PAGES;
        size_t bytes = (size_t)k * PAGE_SIZE;

        /* Pages composed in the staging area itself are there already. */
        if ( write && buf != stage )
            memcpy(stage, buf + (size_t)i * PAGE_SIZE, bytes);
        if ( frame_copy(xch, domid, write ? FERRY_COPY_TO_FRAMES
                                          : FERRY_COPY_FROM_FRAMES,
                        mfns + i, k) )
            return -1;
        if ( !write && buf != stage )
            memcpy(buf + (size_t)i * PAGE_SIZE, stage, bytes);
    }
    return 0;
}

void *xc_frames_buffer(xc_interface *xch, unsigned int n)
{
    if ( xch->kind != XC_SESSION_BUILDER || n > XC_STAGING_PAGES ||
         (!xch->staging && staging_setup(xch)) )
        return NULL;
    return staging_half(xch, xch->fill);
}

int xc_frames_write_start(xc_interface *xch, uint32_t domid,
                          const xen_pfn_t *mfns, unsigned int n,
                          const void *src)
{
    struct ferry_ctl_copy_req q = {
        .domid = (domid_t)domid, .dir = FERRY_COPY_TO_FRAMES, .num = n,
    };
    uint8_t *stage;

    if ( xch->kind != XC_SESSION_BUILDER || n > XC_STAGING_PAGES || !n )
        return xc_frames_write(xch, domid, mfns, n, src);
    /* One copy in flight at most, and none after one that failed. */
    if ( xc_frames_wait(xch) ||
         (!xch->staging && staging_setup(xch)) )
        return -1;
    stage = staging_half(xch, xch->fill);
    if ( src != stage )
        memcpy(stage, src, (size_t)n * PAGE_SIZE);
    q.offset = xch->fill * HALF_BYTES;
    if ( send_req(xch, FERRY_CTL_FRAME_COPY, &q, sizeof(q), mfns,
                  n * sizeof(*mfns), &xch->copy_seq) )
        return -1;
    memcpy(xch->copy_mfns, mfns, n * sizeof(*mfns));
    xch->copy_n = n;
    xch->copy_domid = domid;
    xch->copy_pending = true;
    /* The daemon reads this half until its answer: fill the other. */
    xch->fill ^= 1;
    return 0;
}

int xc_frames_write(xc_interface *xch, uint32_t domid, const xen_pfn_t *mfns,
                    unsigned int n, const void *src)
{
    return frames_copy(xch, domid, true, mfns, n, (uint8_t *)src);
}

int xc_frames_read(xc_interface *xch, uint32_t domid, const xen_pfn_t *mfns,
                   unsigned int n, void *dst)
{
    return frames_copy(xch, domid, false, mfns, n, dst);
}

const uint64_t *xc_m2p(const xc_interface *xch)
{
    if ( !xch->mem_ro )
        return NULL;
    return (const uint64_t *)(xch->mem_ro + (xch->m2p_first_mfn << PAGE_SHIFT));
}

/* ------------------------------------------------------------------------
 * Logs
 * ------------------------------------------------------------------------ */

int64_t xc_dmesg_read(xc_interface *xch, char *buf, size_t len,
                      uint64_t *cursor, bool clear)
{
    return ring_read(xch, FERRY_CTL_DMESG_READ, DOMID_XEN,
                     clear ? FERRY_CONSOLE_CLEAR : 0, buf, len, cursor, NULL);
}

int xc_audit(xc_interface *xch, char *msg, size_t len)
{
    int rc = call(xch, FERRY_CTL_AUDIT, NULL, 0);

    if ( rc < 0 )
        return -1;
    if ( rc > 0 && len )
        snprintf(msg, len, "%.*s", (int)xch->resp.len, (char *)xch->resp.buf);
    return rc > 0 ? 1 : 0;
}
