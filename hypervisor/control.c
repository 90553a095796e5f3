/* SPDX-License-Identifier: MIT */
/*
 * The control-socket server: one thread per toolstack connection, each
 * acting as a vCPU of domain 0 (see control.h), decoding requests of the
 * protocol in include/public/control.h and calling the hypervisor's
 * domctls and hypercalls.
 *
 * Every request is validated before anything acts on it: the header (magic,
 * version, op, length cap), then the payload's exact length for its op and
 * every count inside it.  A bad request gets an error response naming
 * nothing but its errno (the daemon's log says more); it never reaches the
 * hypervisor core with a field out of range.  Only a version mismatch or
 * an unreadable header closes the connection, because after those the
 * stream cannot be trusted to be in step.
 *
 * Connection life cycle:
 *
 *   accept -> [peer uid check] -> wait HELLO -> serving -> closed
 *                 | other uid        | other op: -EPROTO, closed
 *                 v                  v
 *               refused           closed
 *
 * Least privilege.  HELLO chooses the session's kind (full, control or
 * builder: include/public/control.h) once; each op names the kinds that
 * may issue it (ops[].kinds), and any other gets -EPERM before its
 * handler runs.  Only a full session receives the machine-memory memfd;
 * the others cannot map any frame, so for them the ownership checks are
 * the only way to a frame, not advice.  A builder session binds itself
 * to the domain its DOMAIN_CREATE makes, holding a reference to it (so
 * the domid cannot be reused while the session lives), and every later
 * op must name that domain (bound_domid_ok): a process that parses an
 * untrusted stream (xl restore, xl migrate-receive) builds its domain
 * through one and can write no other frame.  Its page data passes
 * through a staging memfd it gives the daemon, copied by FRAME_COPY
 * after each frame's owner and type are checked, as Xen's restore
 * writes only through foreign mappings of the domain's own frames.
 *
 * A builder's domain is its own until it says BUILD_DONE: a session that
 * closes before that (its parser crashed, was killed, or was taken over
 * and exited) has its half-built domain destroyed here, so that no
 * paused husk keeps the host's memory.  Xen leaves a killed restore's
 * domain behind, paused; ferry does not.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "hv.h"
#include "control.h"
#include "include/public/control.h"

/* ------------------------------------------------------------------------
 * Connections and their dom0 vCPUs
 * ------------------------------------------------------------------------ */

struct ctl_buf
{
    uint8_t *p;
    size_t len, cap;
};

struct ctl_conn
{
    int fd;
    unsigned int slot;              /* which vCPU of domain 0 */
    bool hello_done;
    struct ctl_buf out;             /* response payload being built */
    int pass_fd;                    /* fd to send with the response, or -1 */
    int recv_fd;                    /* fd that came with the request, or -1 */
    unsigned int kind;              /* FERRY_SESSION_*, set by HELLO */
    struct domain *bound;           /* builder: its domain (a reference) */
    bool built;                     /* builder: BUILD_DONE said, keep it */
    uint8_t *staging;               /* builder: its staging memfd, mapped */
    size_t staging_bytes;
    /* The console ring this connection reads, kept past its domain's end
     * until the reader has drained it (h_console_read). */
    struct domain_console *con;
};

static struct
{
    pthread_mutex_t lock;
    pthread_cond_t idle;
    bool slot_busy[CTL_MAX_CONNECTIONS];
    int conn_fd[CTL_MAX_CONNECTIONS];
    unsigned int nr_conns;
    bool stopping;
    struct timespec started;
} ctl = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .idle = PTHREAD_COND_INITIALIZER,
};

/* Toolstack metadata per domain (Xen keeps it in xenstore). */
struct dom_meta
{
    struct domain *d;               /* identity: cleared when d goes */
    char name[FERRY_NAME_MAX];
    void *blob;
    uint32_t blob_len;
    uint64_t start_time;            /* when first named (Epoch seconds) */
};
static pthread_mutex_t meta_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dom_meta *meta;       /* DOMID_FIRST_RESERVED entries */

static int buf_reserve(struct ctl_buf *b, size_t more)
{
    size_t want = b->len + more;

    if ( want <= b->cap )
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while ( cap < want )
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if ( !p )
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

static void *buf_put(struct ctl_buf *b, const void *data, size_t len)
{
    void *dst;

    if ( buf_reserve(b, len) )
        return NULL;
    dst = b->p + b->len;
    if ( data )
        memcpy(dst, data, len);
    else
        memset(dst, 0, len);
    b->len += len;
    return dst;
}

/* ------------------------------------------------------------------------
 * Wire I/O: whole messages only
 * ------------------------------------------------------------------------ */

static int read_full(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;

    while ( len )
    {
        ssize_t n = read(fd, p, len);

        if ( n < 0 && errno == EINTR )
            continue;
        if ( n <= 0 )
            return n == 0 ? -EPIPE : -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/*
 * Read the request header, collecting a descriptor passed with it
 * (SCM_RIGHTS) into c->recv_fd; any more than one are closed at once.
 */
static int read_hdr(struct ctl_conn *c, struct ferry_ctl_hdr *h)
{
    uint8_t *p = (uint8_t *)h;
    size_t len = sizeof(*h);

    while ( len )
    {
        union { struct cmsghdr align; char buf[CMSG_SPACE(4 * sizeof(int))]; } u;
        struct iovec iov = { .iov_base = p, .iov_len = len };
        struct msghdr msg = {
            .msg_iov = &iov, .msg_iovlen = 1,
            .msg_control = u.buf, .msg_controllen = sizeof(u.buf),
        };
        struct cmsghdr *cm;
        ssize_t n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC);

        if ( n < 0 && errno == EINTR )
            continue;
        if ( n <= 0 )
            return n == 0 ? -EPIPE : -errno;
        for ( cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm) )
        {
            size_t nfd;

            if ( cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS )
                continue;
            nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for ( size_t i = 0; i < nfd; i++ )
            {
                int fd;

                memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                if ( c->recv_fd < 0 )
                    c->recv_fd = fd;
                else
                    close(fd);
            }
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int send_response(struct ctl_conn *c, const struct ferry_ctl_hdr *req,
                         int rc)
{
    struct ferry_ctl_hdr h = {
        .magic = FERRY_CTL_MAGIC, .version = FERRY_CTL_VERSION,
        .op = req->op, .seq = req->seq,
    };
    struct iovec iov[2] = {
        { .iov_base = &h, .iov_len = sizeof(h) },
        { .iov_base = c->out.p },
    };
    union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(int))]; } u;
    struct msghdr msg = { .msg_iov = iov };
    size_t total, sent = 0;

    /* No client reads a longer answer: every op bounds its own first. */
    if ( rc >= 0 && c->out.len > FERRY_CTL_MAX_PAYLOAD )
    {
        gdprintk(XENLOG_WARNING, "control: op %u built a %zu-byte answer,"
                 " over the cap", req->op, c->out.len);
        rc = -E2BIG;
    }
    h.rc = rc;
    h.len = rc < 0 ? 0 : (uint32_t)c->out.len;
    iov[1].iov_len = h.len;
    msg.msg_iovlen = h.len ? 2 : 1;
    total = sizeof(h) + h.len;

    if ( c->pass_fd >= 0 && rc >= 0 )
    {
        struct cmsghdr *cm;

        memset(&u, 0, sizeof(u));
        msg.msg_control = u.buf;
        msg.msg_controllen = sizeof(u.buf);
        cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &c->pass_fd, sizeof(int));
    }
    while ( sent < total )
    {
        ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);

        if ( n < 0 && errno == EINTR )
            continue;
        if ( n <= 0 )
            return -errno;
        sent += (size_t)n;
        msg.msg_control = NULL;
        msg.msg_controllen = 0;
        /* Advance the iovecs past what was sent. */
        while ( msg.msg_iovlen && (size_t)n >= msg.msg_iov->iov_len )
        {
            n -= (ssize_t)msg.msg_iov->iov_len;
            msg.msg_iov++;
            msg.msg_iovlen--;
        }
        if ( msg.msg_iovlen )
        {
            msg.msg_iov->iov_base = (uint8_t *)msg.msg_iov->iov_base + n;
            msg.msg_iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Request helpers
 * ------------------------------------------------------------------------ */

/* Payload must be exactly fixed + n * elem bytes (n bounded by max). */
static int check_len(size_t len, size_t fixed, uint64_t n, size_t elem,
                     uint64_t max)
{
    if ( n > max )
        return -E2BIG;
    if ( len != fixed + n * elem )
        return -EINVAL;
    return 0;
}

/* Look up a domain the toolstack may act on (not the special ones). */
static struct domain *ctl_domain(domid_t domid)
{
    struct domain *d;

    if ( domid >= DOMID_FIRST_RESERVED )
        return NULL;
    d = get_domain_by_id(domid);
    if ( d && d->is_privileged )
    {
        put_domain(d);
        return NULL;
    }
    return d;
}

#define WITH_DOMAIN(domid, d)                                           \
    struct domain *d = ctl_domain(domid);                               \
    if ( !d )                                                           \
        return -ESRCH

/* ------------------------------------------------------------------------
 * Handlers: each validates its payload, acts, and fills c->out.
 * ------------------------------------------------------------------------ */

static int h_hello(struct ctl_conn *c, const void *p, size_t len)
{
    const struct ferry_ctl_hello_req *q = p;
    struct ferry_ctl_hello_resp r = {
        .max_page = host.max_page,
        .mem_bytes = host.max_page << PAGE_SHIFT,
        .m2p_first_mfn = host.m2p_first_mfn,
        .m2p_nr_frames = host.m2p_nr_frames,
        .page_shift = PAGE_SHIFT,
        .nr_cpus = (uint32_t)sysconf(_SC_NPROCESSORS_ONLN),
    };

    if ( c->hello_done )
        return -EBUSY;              /* a session's kind is chosen once */
    if ( len && (len != sizeof(*q) || q->pad ||
                 q->kind > FERRY_SESSION_BUILDER) )
        return -EINVAL;
    snprintf(r.version, sizeof(r.version), "%s", PACKAGE_VERSION);
    c->kind = len ? q->kind : FERRY_SESSION_FULL;
    c->hello_done = true;
    if ( c->kind == FERRY_SESSION_FULL )
        c->pass_fd = host.mem_fd;
    return buf_put(&c->out, &r, sizeof(r)) ? 0 : -ENOMEM;
}

static int h_host_info(struct ctl_conn *c, const void *p, size_t len)
{
    struct ferry_ctl_host_info_resp r = {
        .total_pages = host.max_page,
        .free_pages = hv_free_pages(),
        .nr_cpus = (uint32_t)sysconf(_SC_NPROCESSORS_ONLN),
        .xen_major = 4, .xen_minor = 22,
    };
    struct timespec now;

    (void)p;
    if ( len )
        return -EINVAL;
    spin_lock(&host.domlist_lock);
    for ( unsigned int i = 0; i < DOMID_FIRST_RESERVED; i++ )
        r.nr_domains += host.domain_by_id[i] != NULL;
    spin_unlock(&host.domlist_lock);
    snprintf(r.xen_extra, sizeof(r.xen_extra), "-ferry");
    snprintf(r.version, sizeof(r.version), "%s", PACKAGE_VERSION);
    clock_gettime(CLOCK_MONOTONIC, &now);
    r.uptime_ms = (uint64_t)(now.tv_sec - ctl.started.tv_sec) * 1000 +
                  (uint64_t)(now.tv_nsec / 1000000) -
                  (uint64_t)(ctl.started.tv_nsec / 1000000);
    return buf_put(&c->out, &r, sizeof(r)) ? 0 : -ENOMEM;
}

static int h_create(struct ctl_conn *c, const void *p, size_t len)
{
    const struct ferry_ctl_create_req *q = p;
    struct ferry_ctl_domid r = { 0 };
    struct domain *d;
    int rc;

    if ( len != sizeof(*q) )
        return -EINVAL;
    if ( q->flags & XEN_DOMCTL_CDF_hvm )
        return -EOPNOTSUPP;             /* ferry runs PV guests only */
    if ( q->flags & ~XEN_DOMCTL_CDF_hvm )
        return -EINVAL;
    if ( q->max_vcpus == 0 || q->max_vcpus > 128 )
        return -EINVAL;
    if ( q->domid != DOMID_ANY && (q->domid == 0 ||
                                   q->domid >= DOMID_FIRST_RESERVED) )
        return -EINVAL;
    if ( c->kind == FERRY_SESSION_BUILDER && c->bound )
        return -EPERM;              /* one domain per builder session */
    rc = domain_create_as(q->domid, 0, q->max_vcpus, q->handle, q->ssidref,
                          &d);
    if ( rc )
        return rc;
    r.domid = d->domain_id;
    /* Bind before anyone else can act on the new domain through us. */
    if ( c->kind == FERRY_SESSION_BUILDER && get_domain(d) )
        c->bound = d;
    printk("d%u: created (%u vCPUs)", d->domain_id, q->max_vcpus);
    return buf_put(&c->out, &r, sizeof(r)) ? 0 : -ENOMEM;
}

/* Requests whose payload is just a domid and whose answer is an rc. */
static int domid_request(const void *p, size_t len,
                         int (*fn)(struct domain *d))
{
    const struct ferry_ctl_domid *q = p;
    int rc;

    if ( len != sizeof(*q) )
        return -EINVAL;
    WITH_DOMAIN(q->domid, d);
    rc = fn(d);
    put_domain(d);
    return rc;
}

static int destroy_domain(struct domain *d)
{
    domid_t domid = d->domain_id;
    int rc;

    do {
        rc = domain_kill(d);
    } while ( rc == -ERESTART );
    if ( !rc )
    {
        ctl_forget_domain(domid);
        printk("d%u: destroyed", domid);
    }
    return rc;
}

static int h_destroy(struct ctl_conn *c, const void *p, size_t len)
{
    (void)c;
    return domid_request(p, len, destroy_domain);
}

static int h_pause(struct ctl_conn *c, const void *p, size_t len)
{
    (void)c;
    return domid_request(p, len, domctl_pausedomain);
}

static int h_unpause(struct ctl_conn *c, const void *p, size_t len)
{
    (void)c;
    return domid_request(p, len, domctl_unpausedomain);
}

static int h_resume(struct ctl_conn *c, const void *p, size_t len)
{
    (void)c;
    return domid_request(p, len, domctl_resumedomain);
}

/* Answer with d's getdomaininfo, and drop the caller's reference. */
static int put_info(struct ctl_conn *c, struct domain *d)
{
    struct xen_domctl_getdomaininfo info;
    int rc = domctl_getdomaininfo(d, &info);

    put_domain(d);
    if ( rc )
        return rc;
    return buf_put(&c->out, &info, sizeof(info)) ? 0 : -ENOMEM;
}

static int h_getinfo(struct ctl_conn *c, const void *p, size_t len)
{
    const struct ferry_ctl_domid *q = p;
    struct domain *d;

    if ( len != sizeof(*q) )
        return -EINVAL;
    /* Domain 0 is listed too, as xl list shows Domain-0. */
    d = q->domid < DOMID_FIRST_RESERVED ? get_domain_by_id(q->domid) : NULL;
    return d ? put_info(c, d) : -ESRCH;
}

static int h_wait(struct ctl_conn *c, const void *p, size_t len)
{
    const struct ferry_ctl_wait_req *q = p;
    struct domain *d;

    if ( len != sizeof(*q) || q->pad )
        return -EINVAL;
    d = q->domid < DOMID_FIRST_RESERVED ? get_domain_by_id(q->domid) : NULL;
    if ( !d )
        return -ESRCH;
    domain_wait_shutdown(d, q->timeout_ms < FERRY_CTL_WAIT_MAX_MS
                            ? q->timeout_ms : FERRY_CTL_WAIT_MAX_MS);
    return put_info(c, d);
}

static int h_list(struct ctl_conn *c, const void *p, size_t len)
{
    const struct ferry_ctl_list_req *q = p;
    unsigned int n = 0;

    if ( len != sizeof(*q) )
        return -EINVAL;
    if ( q->max > 1024 )
        return -E2BIG;
    for ( unsigned int id = q->first; id < DOMID_FIRST_RESERVED && n < q->max;
          id++ )
    {
        struct xen_domctl_getdomaininfo info;
        struct domain *d = host.domain_by_id[id] ? get_domain_by_id((domid_t)id)
                                                 : NULL;

        if ( !d )
            continue;
        if ( !domctl_getdomaininfo(d, &info) )
        {
            if ( !buf_put(&c->out, &info, sizeof(info)) )
            {
                put_domain(d);
                return -ENOMEM;
            }
            n++;
        }
        put_domain(d);
    }
    return 0;
}

static int h_max_mem(struct ctl_conn *c, const void *p, size_t len)
{
    const struct ferry_ctl_max_mem_req *q = p;
    int rc;

    (void)c;
    if ( len != sizeof(*q) )
        return -EINVAL;
    WITH_DOMAIN(q->domid, d);
    rc = domctl_max_mem(d, q->max_memkb);
    put_domain(d);
    return rc;
}

static int h_set_meta(struct ctl_conn *c, const void *p, size_t len)
{
    const struct ferry_ctl_meta *q = p;
    void *blob = NULL;
    int rc = 0;

    (void)c;
    if ( len < sizeof(*q) )
        return -EINVAL;
    rc = check_len(len, sizeof(*q), q->blob_len, 1, FERRY_META_BLOB_MAX);
    if ( rc )
        return rc;
    if ( !memchr(q->name, '\0', sizeof(q->name)) || !q->name[0] )
        return -EINVAL;
    WITH_DOMAIN(q->domid, d);
    if ( q->blob_len && !(blob = malloc(q->blob_len)) )
    {
        put_domain(d);
        return -ENOMEM;
    }
    if ( blob )
        memcpy(blob, q + 1, q->blob_len);

    pthread_mutex_lock(&meta_lock);
    /* Names are unique among live domains, as libxl requires. */
    for ( unsigned int id = 0; id < DOMID_FIRST_RESERVED; id++ )
        if ( id != q->domid && meta[id].d && !strcmp(meta[id].name, q->name) &&
             host.domain_by_id[id] == meta[id].d )
            rc = -EEXIST;
    if ( !rc )
    {
        struct dom_meta *m = &meta[q->domid];

        free(m->blob);
        /* A domain starts when the toolstack first names it, as libxl
         * writes start_time when it creates (or restores) a domain. */
        if ( m->d != d )
            m->start_time = (uint64_t)time(NULL);
        m->d = d;
        snprintf(m->name, sizeof(m->name), "%s", q->name);
        m->blob = blob;
        m->blob_len = q->blob_len;
        blob = NULL;
    }
    pthread_mutex_unlock(&meta_lock);
    free(blob);
    put_domain(d);
    return rc;
}

/*
 * Rename a domain only if its name is still the one the caller expects:
 * a compare-and-swap under meta_lock, the lock every name change takes.
 * A migration's commit ("x--incoming" -> "x") and its abort
 * ("x--incoming" -> "x--aborted") both go through here, so at most one of
 * them succeeds; the loser gets -EBUSY and nothing changes.
 */
static int h_rename(struct ctl_conn *c, const void *p, size_t len)
{
    const struct ferry_ctl_rename_req *q = p;
    int rc = 0;

    (void)c;
    if ( len != sizeof(*q) ||
         !memchr(q->expect, '\0', sizeof(q->expect)) ||
         !memchr(q->name, '\0', sizeof(q->name)) || !q->name[0] )
        return -EINVAL;
    WITH_DOMAIN(q->domid, d);

    pthread_mutex_lock(&meta_lock);
    struct dom_meta *m = &meta[q->domid];
    if ( m->d != d || strcmp(m->name, q->expect) )
        rc = -EBUSY;
    for ( unsigned int id = 0; !rc && id < DOMID_FIRST_RESERVED; id++ )
        if ( id != q->domid && meta[id].d && !strcmp(meta[id].name, q->name) &&
             host.domain_by_id[id] == meta[id].d )
            rc = -EEXIST;
    if ( !rc )
        snprintf(m->name, sizeof(m->name), "%s", q->name);
    pthread_mutex_unlock(&meta_lock);
    put_domain(d);
    return rc;
}

static int h_throttle(struct ctl_conn *c, const void *p, size_t len)
{
    const struct ferry_ctl_throttle_req *q = p;
    struct ferry_ctl_throttle_resp r = { 0 };
    int rc = 0;

    if ( len != sizeof(*q) || q->set > 1 || q->pad || q->pad2 )
        return -EINVAL;
    WITH_DOMAIN(q->domid, d);
    if ( q->set )
        rc = domain_set_throttle(d, q->pct);
    r.pct = atomic_load(&d->throttle_pct);
    put_domain(d);
    if ( rc )
        return rc;
    return buf_put(&c->out, &r, sizeof(r)) ? 0 : -ENOMEM;
}

static int h_get_meta(struct ctl_conn *c, const void *p, size_t len)
{
    const struct ferry_ctl_domid *q = p;
    struct ferry_ctl_meta r = { 0 };
    int rc = 0;

    if ( len != sizeof(*q) || q->domid >= DOMID_FIRST_RESERVED )
        return -EINVAL;
    struct domain *d = get_domain_by_id(q->domid);
    if ( !d )
        return -ESRCH;
    r.domid = q->domid;
    pthread_mutex_lock(&meta_lock);
    if ( meta[q->domid].d == d )
    {
        snprintf(r.name, sizeof(r.name), "%s", meta[q->domid].name);
        r.blob_len = meta[q->domid].blob_len;
        r.start_time = meta[q->domid].start_time;
        if ( !buf_put(&c->out, &r, sizeof(r)) ||
             (r.blob_len && !buf_put(&c->out, meta[q->domid].blob, r.blob_len)) )
            rc = -ENOMEM;
    }
    else if ( q->domid == 0 )
    {
        snprintf(r.name, sizeof(r.name), "Domain-0");
        rc = buf_put(&c->out, &r, sizeof(r)) ? 0 : -ENOMEM;
    }
    else
        rc = buf_put(&c->out, &r, sizeof(r)) ? 0 : -ENOMEM;
    pthread_mutex_unlock(&meta_lock);
    put_domain(d);
    return rc;
}

static int h_getcontext(struct ctl_conn *c, const void *p, size_t len)
{
    const struct ferry_ctl_vcpu_req *q = p;
    struct vcpu_guest_context *ctxt;
    int rc;

    if ( len != sizeof(*q) )
        return -EINVAL;
    WITH_DOMAIN(q->domid, d);
    ctxt = buf_put(&c->out, NULL, sizeof(*ctxt));
    rc = ctxt ? domctl_getvcpucontext(d, q->vcpu, ctxt) : -ENOMEM;
    put_domain(d);
    return rc;
}

static int h_vcpu_getinfo(struct ctl_conn *c, const void *p, size_t len)
{
    const struct ferry_ctl_vcpu_req *q = p;
    struct xen_domctl_getvcpuinfo *info;
    int rc;

    if ( len != sizeof(*q) )
        return -EINVAL;
    WITH_DOMAIN(q->domid, d);
    info = buf_put(&c->out, NULL, sizeof(*info));
    rc = info ? domctl_getvcpuinfo(d, q->vcpu, info) : -ENOMEM;
    put_domain(d);
    return rc;
}

static int h_setcontext(struct ctl_conn *c, const void *p, size_t len)
{
    const struct ferry_ctl_vcpu_req *q = p;
    struct vcpu_guest_context ctxt;
    int rc;

    (void)c;
    if ( len != sizeof(*q) && len != sizeof(*q) + sizeof(ctxt) )
        return -EINVAL;
    WITH_DOMAIN(q->domid, d);
    if ( len > sizeof(*q) )
        memcpy(&ctxt, q + 1, sizeof(ctxt));
    do {
        rc = domctl_setvcpucontext(d, q->vcpu,
                                   len > sizeof(*q) ? &ctxt : NULL);
    } while ( rc == -ERESTART );
    put_domain(d);
    return rc;
}

static int h_pfinfo3(struct ctl_conn *c, const void *p, size_t len)
{
    const struct ferry_ctl_pfinfo_req *q = p;
    uint64_t *arr;
    int rc;

    if ( len < sizeof(*q) )
        return -EINVAL;
    if ( q->num > XEN_DOMCTL_PFINFO_MAX )
        return -E2BIG;
    rc = check_len(len, sizeof(*q), q->num, sizeof(uint64_t),
                   XEN_DOMCTL_PFINFO_MAX);
    if ( rc )
        return rc;
    WITH_DOMAIN(q->domid, d);
    arr = buf_put(&c->out, q + 1, q->num * sizeof(uint64_t));
    rc = arr ? hv_getpageframeinfo3(d, q->num, arr, q->flags) : -ENOMEM;
    put_domain(d);
    return rc;
}

static int h_shadow(struct ctl_conn *c, const void *p, size_t len)
{
    const struct ferry_ctl_shadow_req *q = p;
    struct ferry_ctl_shadow_resp *r;
    struct xen_domctl_shadow_op sc = { 0 };
    uint8_t *bitmap = NULL;
    int rc;

    if ( len != sizeof(*q) )
        return -EINVAL;
    if ( q->want_bitmap > 1 || q->pages > (1ULL << 32) )
        return -EINVAL;
    WITH_DOMAIN(q->domid, d);
    /*
     * Xen writes the bitmap into the caller's buffer; here the daemon
     * builds it, so its size is bounded by the domain's PFN space (what
     * the saver asks for: its shared_info max_pfn + 1), or its maximum
     * memory, before anything is allocated.
     */
    /*
     * Both figures are the domain's to inflate (a guest writes its
     * max_pfn; a toolstack may set any maximum memory), so the bitmap
     * must also fit one answer (FERRY_CTL_MAX_PAYLOAD: 256 GiB of PFN
     * space), which is all a client could read anyway.
     */
    if ( q->want_bitmap &&
         (q->pages > max(domain_get_maximum_gpfn(d) + 1,
                         (uint64_t)atomic_load(&d->max_pages)) ||
          (q->pages + 7) / 8 > FERRY_CTL_MAX_PAYLOAD - sizeof(*r)) )
    {
        put_domain(d);
        return -E2BIG;
    }
    r = buf_put(&c->out, NULL, sizeof(*r));
    if ( r && q->want_bitmap )
        bitmap = buf_put(&c->out, NULL, (q->pages + 7) / 8);
    if ( !r || (q->want_bitmap && !bitmap) )
    {
        put_domain(d);
        return -ENOMEM;
    }
    r = (struct ferry_ctl_shadow_resp *)c->out.p;
    if ( q->want_bitmap )
        bitmap = c->out.p + sizeof(*r);
    sc.op = q->op;
    sc.mode = q->mode;
    sc.pages = q->pages;
    sc.dirty_bitmap = bitmap;
    do {
        rc = domctl_shadow_op(d, &sc);
    } while ( rc == -ERESTART );
    put_domain(d);
    r->pages = sc.pages;
    r->stats = sc.stats;
    r->mb = sc.mb;
    return rc;
}

/* Run a toolstack mmu_update/mmuext_op batch as dom0 to completion. */
static int h_mmu(struct ctl_conn *c, const void *p, size_t len, bool ext)
{
    const struct ferry_ctl_mmu_req *q = p;
    size_t elem = ext ? sizeof(struct mmuext_op) : sizeof(struct mmu_update);
    struct ferry_ctl_mmu_resp *r;
    void *copy;
    unsigned int done = 0;
    long rc;

    if ( len < sizeof(*q) )
        return -EINVAL;
    rc = check_len(len, sizeof(*q), q->count, elem, 4096);
    if ( rc )
        return (int)rc;
    /* The hypercall may write back into its arguments: work on a copy. */
    copy = malloc(q->count * elem + 1);
    if ( !copy )
        return -ENOMEM;
    memcpy(copy, q + 1, q->count * elem);
    do {
        rc = ext ? do_mmuext_op(copy, q->count, &done, q->foreigndom)
                 : do_mmu_update(copy, q->count, &done, q->foreigndom);
    } while ( rc == -ERESTART );
    free(copy);
    r = buf_put(&c->out, NULL, sizeof(*r));
    if ( !r )
        return -ENOMEM;
    r->done = done;
    return (int)rc;
}

static int h_mmu_update(struct ctl_conn *c, const void *p, size_t len)
{
    return h_mmu(c, p, len, false);
}

static int h_mmuext(struct ctl_conn *c, const void *p, size_t len)
{
    return h_mmu(c, p, len, true);
}

static int h_memop(struct ctl_conn *c, const void *p, size_t len)
{
    const struct ferry_ctl_memop_req *q = p;
    struct ferry_ctl_memop_resp *r;
    struct xen_memory_reservation res = { 0 };
    uint64_t *ext;
    long ret;
    int rc;

    if ( len < sizeof(*q) )
        return -EINVAL;
    rc = check_len(len, sizeof(*q), q->nr_extents, sizeof(uint64_t),
                   1ULL << 20);
    if ( rc )
        return rc;
    if ( q->domid >= DOMID_FIRST_RESERVED )
        return -ESRCH;
    /* The queries take no extents, so none is copied into an answer. */
    if ( q->nr_extents &&
         (q->cmd == XENMEM_maximum_ram_page ||
          q->cmd == XENMEM_current_reservation ||
          q->cmd == XENMEM_maximum_reservation ||
          q->cmd == XENMEM_maximum_gpfn) )
        return -EINVAL;
    r = buf_put(&c->out, NULL, sizeof(*r));
    ext = r ? buf_put(&c->out, q + 1, q->nr_extents * sizeof(uint64_t)) : NULL;
    if ( !r || (!ext && q->nr_extents) )
        return -ENOMEM;
    ext = (uint64_t *)(c->out.p + sizeof(*r));

    switch ( q->cmd )
    {
    case XENMEM_increase_reservation:
    case XENMEM_decrease_reservation:
    case XENMEM_populate_physmap:
        res.extent_start = ext;
        res.nr_extents = q->nr_extents;
        res.extent_order = q->extent_order;
        res.mem_flags = q->mem_flags;
        res.domid = q->domid;
        {
            unsigned int cmd = q->cmd;

            do {
                ret = do_memory_op(&cmd, &res);
            } while ( ret == -ERESTART );
        }
        break;
    case XENMEM_maximum_ram_page:
    {
        unsigned int cmd = q->cmd;

        ret = do_memory_op(&cmd, NULL);
        break;
    }
    case XENMEM_current_reservation:
    case XENMEM_maximum_reservation:
    case XENMEM_maximum_gpfn:
    {
        struct xen_memory_domain md = { .domid = q->domid };
        unsigned int cmd = q->cmd;

        ret = do_memory_op(&cmd, &md);
        break;
    }
    default:
        return -EOPNOTSUPP;
    }
    r = (struct ferry_ctl_memop_resp *)c->out.p;
    r->ret = ret;
    return ret < 0 ? (int)ret : 0;
}

/*
 * Foreign mapping: the toolstack already maps the whole memory file (from
 * HELLO); here the daemon checks, frame by frame, that each MFN belongs to
 * the domain, and for writable mappings that it is not a page table that
 * the hypervisor has validated (Xen refuses those with a writable type).
 * The answer is one errno per frame, so a batch with a bad frame still
 * maps the good ones, as privcmd does.
 */
static int h_foreign_map(struct ctl_conn *c, const void *p, size_t len)
{
    const struct ferry_ctl_map_req *q = p;
    const uint64_t *mfns;
    int32_t *err;
    int rc;

    if ( len < sizeof(*q) )
        return -EINVAL;
    rc = check_len(len, sizeof(*q), q->num, sizeof(uint64_t), 1U << 20);
    if ( rc )
        return rc;
    if ( !q->prot || (q->prot & ~(FERRY_MAP_READ | FERRY_MAP_WRITE)) )
        return -EINVAL;
    WITH_DOMAIN(q->domid, d);
    err = buf_put(&c->out, NULL, q->num * sizeof(int32_t));
    if ( !err && q->num )
    {
        put_domain(d);
        return -ENOMEM;
    }
    mfns = (const uint64_t *)(q + 1);
    for ( uint32_t i = 0; i < q->num; i++ )
    {
        struct page_info *pg;
        uint64_t t;

        if ( !mfn_valid(mfns[i]) )
        {
            err[i] = -EINVAL;
            continue;
        }
        pg = mfn_to_page(mfns[i]);
        if ( page_get_owner(pg) != d )
        {
            err[i] = -EPERM;
            continue;
        }
        t = atomic_load(&pg->type_info);
        if ( (q->prot & FERRY_MAP_WRITE) && PGT_pt_level(t) &&
             (t & PGT_count_mask) )
        {
            err[i] = -EBUSY;
            continue;
        }
        /*
         * The toolstack writes through its own mapping, unseen: from now
         * on the frame may hold data (the saver must read it).
         */
        if ( q->prot & FERRY_MAP_WRITE )
            hv_frame_written(mfns[i]);
        err[i] = 0;
    }
    put_domain(d);
    return 0;
}

/*
 * A builder's staging area: a memfd it made, sealed against shrinking so
 * that the mapping here can never fault past its end whatever the client
 * does to the file afterwards.  Mapped once, populated, for the
 * session's life.
 */
static int h_staging(struct ctl_conn *c, const void *p, size_t len)
{
    const struct ferry_ctl_staging_req *q = p;
    struct stat st;
    void *m;
    int seals;

    if ( len != sizeof(*q) || c->recv_fd < 0 )
        return -EINVAL;
    if ( c->staging )
        return -EBUSY;
    if ( !q->bytes || q->bytes > FERRY_STAGING_MAX ||
         (q->bytes & (PAGE_SIZE - 1)) )
        return -EINVAL;
    seals = fcntl(c->recv_fd, F_GET_SEALS);
    if ( seals < 0 || !(seals & F_SEAL_SHRINK) )
        return -EINVAL;
    if ( fstat(c->recv_fd, &st) || !S_ISREG(st.st_mode) ||
         (uint64_t)st.st_size < q->bytes )
        return -EINVAL;
    m = mmap(NULL, q->bytes, PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_POPULATE, c->recv_fd, 0);
    if ( m == MAP_FAILED )
        return -errno;
    c->staging = m;
    c->staging_bytes = q->bytes;
    return 0;
}

/* Drop the references frame_copy took on pages[0..n). */
static void put_frames(struct page_info **pages, uint32_t n, bool write)
{
    for ( uint32_t i = 0; i < n; i++ )
    {
        if ( write )
            put_page_and_type(pages[i]);
        else
            put_page(pages[i]);
    }
}

/*
 * Copy pages between the builder's staging area and frames of its bound
 * domain.  Each frame is held (a general reference, and the writable
 * type for a write, which a page table in use cannot take: Xen's rule
 * for a writable foreign mapping) before anything is copied, so that no
 * frame changes owner or becomes a live page table under the copy.
 */
static int h_frame_copy(struct ctl_conn *c, const void *p, size_t len)
{
    const struct ferry_ctl_copy_req *q = p;
    struct ferry_ctl_copy_resp *r;
    struct page_info **pages;
    const uint64_t *mfns;
    bool write;
    uint32_t held = 0;
    int rc;

    if ( len < sizeof(*q) )
        return -EINVAL;
    rc = check_len(len, sizeof(*q), q->num, sizeof(uint64_t),
                   c->staging_bytes >> PAGE_SHIFT);
    if ( rc )
        return rc;
    if ( (q->dir != FERRY_COPY_TO_FRAMES &&
          q->dir != FERRY_COPY_FROM_FRAMES) || q->pad || q->pad2 ||
         (q->offset & (PAGE_SIZE - 1)) || !c->staging ||
         q->offset > c->staging_bytes ||
         ((uint64_t)q->num << PAGE_SHIFT) > c->staging_bytes - q->offset )
        return -EINVAL;
    r = buf_put(&c->out, NULL, sizeof(*r));
    pages = malloc((q->num + 1) * sizeof(*pages));
    if ( !r || !pages )
    {
        free(pages);
        return -ENOMEM;
    }
    write = q->dir == FERRY_COPY_TO_FRAMES;
    mfns = (const uint64_t *)(q + 1);
    for ( ; held < q->num; held++ )
    {
        struct page_info *pg;

        if ( !mfn_valid(mfns[held]) )
        {
            rc = -EINVAL;
            break;
        }
        pg = mfn_to_page(mfns[held]);
        if ( !get_page(pg, c->bound) )
        {
            rc = -EPERM;
            break;
        }
        if ( write && !get_page_type(pg, PGT_writable_page) )
        {
            put_page(pg);
            rc = -EBUSY;
            break;
        }
        pages[held] = pg;
    }
    if ( !rc )
    {
        for ( uint32_t i = 0; i < q->num; i++ )
        {
            uint8_t *stage = c->staging + q->offset +
                             ((size_t)i << PAGE_SHIFT);
            void *frame = map_domain_page(mfns[i]);

            /* From now on the frame may hold data (the saver must read it). */
            if ( write )
            {
                hv_frame_written(mfns[i]);
                memcpy(frame, stage, PAGE_SIZE);
            }
            else
                memcpy(stage, frame, PAGE_SIZE);
            unmap_domain_page(frame);
        }
    }
    else
        r->bad = held;
    put_frames(pages, held, write);
    free(pages);
    return rc;
}

/*
 * The builder's domain is complete: from now on it outlives the session
 * (which may issue no more ops on it, builder_allows), as any domain
 * made by a full session does.
 */
static int h_build_done(struct ctl_conn *c, const void *p, size_t len)
{
    const struct ferry_ctl_domid *q = p;

    if ( len != sizeof(*q) || q->pad[0] || q->pad[1] || q->pad[2] )
        return -EINVAL;
    if ( !c->bound || c->built )
        return -EPERM;
    if ( atomic_load(&c->bound->state) != DOMSTATE_ALIVE )
        return -ESRCH;              /* destroyed while being built */
    c->built = true;
    printk("d%u: built", c->bound->domain_id);
    return 0;
}

static int h_dmesg(struct ctl_conn *c, const void *p, size_t len)
{
    const struct ferry_ctl_console_req *q = p;
    struct ferry_ctl_console_resp *r;
    uint64_t cursor;
    size_t n;

    if ( len != sizeof(*q) || (q->flags & ~FERRY_CONSOLE_CLEAR) )
        return -EINVAL;
    if ( q->max > (1U << 20) )
        return -E2BIG;
    r = buf_put(&c->out, NULL, sizeof(*r));
    if ( !r || buf_reserve(&c->out, q->max) )
        return -ENOMEM;
    cursor = q->cursor;
    n = hv_console_read((char *)c->out.p + c->out.len, q->max, &cursor);
    if ( q->flags & FERRY_CONSOLE_CLEAR )
        hv_console_clear(cursor);
    r = (struct ferry_ctl_console_resp *)c->out.p;
    /* The ring may have overwritten what the reader had not read yet. */
    r->lost = cursor - n > q->cursor
              ? (uint32_t)min(cursor - n - q->cursor, (uint64_t)UINT32_MAX)
              : 0;
    r->cursor = cursor;
    r->len = (uint32_t)n;
    c->out.len += n;
    return 0;
}

/*
 * A reader keeps the ring of the domain it reads (one per connection), so
 * that a domain destroyed the moment it powers off (by its monitor, say)
 * still gives an attached `xl console` every byte it wrote: reads go on
 * from the kept ring, and only once it is drained does the reader get
 * -ESRCH, "the domain is gone".  A new domain that got the same ID has a
 * ring of its own, which a later read attaches to.
 */
static int h_console_read(struct ctl_conn *c, const void *p, size_t len)
{
    const struct ferry_ctl_console_req *q = p;
    struct ferry_ctl_console_resp *r;
    struct domain_console *now = NULL, *con;
    struct domain *d;
    uint64_t cursor, lost = 0;
    bool alive, gone = false;
    size_t n = 0, want;

    if ( len != sizeof(*q) || q->flags )
        return -EINVAL;
    if ( q->max > (1U << 20) )
        return -E2BIG;
    d = ctl_domain(q->domid);
    alive = d != NULL;
    if ( d )
    {
        now = domain_console_get(d);
        put_domain(d);
    }
    if ( c->con && console_domid(c->con) == q->domid && c->con != now )
    {
        gone = true;                /* the domain it was reading ended */
        console_put(now);
    }
    else if ( now == c->con )
        console_put(now);           /* already kept */
    else
    {
        console_put(c->con);
        c->con = now;
    }
    con = c->con && console_domid(c->con) == q->domid ? c->con : NULL;
    if ( !con && !alive )
        return -ESRCH;
    /* A read returns at most what the ring holds: reserve no more. */
    want = min((size_t)q->max, (size_t)DOMAIN_CONSOLE_RING);
    r = buf_put(&c->out, NULL, sizeof(*r));
    if ( !r || buf_reserve(&c->out, want) )
        return -ENOMEM;
    cursor = q->cursor;
    if ( con )
        n = console_read(con, (char *)c->out.p + c->out.len, want, &cursor,
                         &lost);
    if ( gone && !n && !lost )
    {
        console_put(c->con);
        c->con = NULL;
        return -ESRCH;
    }
    r = (struct ferry_ctl_console_resp *)c->out.p;
    r->cursor = cursor;
    r->len = (uint32_t)n;
    r->lost = (uint32_t)min(lost, (uint64_t)UINT32_MAX);
    c->out.len += n;
    return 0;
}

static int h_shutdown(struct ctl_conn *c, const void *p, size_t len)
{
    const struct ferry_ctl_shutdown_req *q = p;
    int rc;

    (void)c;
    if ( len != sizeof(*q) )
        return -EINVAL;
    if ( q->reason > SHUTDOWN_soft_reset )
        return -EINVAL;
    WITH_DOMAIN(q->domid, d);
    rc = domain_request_shutdown(d, q->reason);
    put_domain(d);
    return rc;
}

/*
 * Pause (or unpause) every guest, so that no guest hypercall is in flight
 * while the auditor reads the frame table; returns the domains it paused,
 * with a reference held on each.
 */
static unsigned int pause_all(struct domain **paused, unsigned int max)
{
    unsigned int n = 0;

    for ( unsigned int id = 1; id < DOMID_FIRST_RESERVED && n < max; id++ )
    {
        struct domain *d = host.domain_by_id[id] ? ctl_domain((domid_t)id)
                                                 : NULL;

        if ( !d )
            continue;
        if ( domain_pause_by_systemcontroller(d) )
        {
            put_domain(d);
            continue;
        }
        paused[n++] = d;
    }
    return n;
}

static void unpause_all(struct domain **paused, unsigned int n)
{
    for ( unsigned int i = 0; i < n; i++ )
    {
        domain_unpause_by_systemcontroller(paused[i]);
        put_domain(paused[i]);
    }
}

/*
 * The auditor's invariants hold at quiescent points only: every guest is
 * paused for the check (synchronously, so no guest hypercall is half
 * done), then unpaused.  Another toolstack request running at the same
 * moment can still make the result unreliable; scripts audit when they
 * are not changing the host.
 */
static int h_audit(struct ctl_conn *c, const void *p, size_t len)
{
    static struct domain *paused[DOMID_FIRST_RESERVED];
    static pthread_mutex_t audit_lock = PTHREAD_MUTEX_INITIALIZER;
    char msg[1024] = "";
    unsigned int n;
    int rc;

    (void)p;
    if ( len )
        return -EINVAL;
    pthread_mutex_lock(&audit_lock);
    n = pause_all(paused, ARRAY_SIZE(paused));
    rc = audit_host(msg, sizeof(msg));
    unpause_all(paused, n);
    pthread_mutex_unlock(&audit_lock);
    if ( rc && !buf_put(&c->out, msg, strlen(msg) + 1) )
        return -ENOMEM;
    /* The audit result is the payload: a failed audit is not a failed call. */
    return rc ? 1 : 0;
}

typedef int (*ctl_handler)(struct ctl_conn *c, const void *p, size_t len);

#define S_FULL      (1U << FERRY_SESSION_FULL)
#define S_CONTROL   (1U << FERRY_SESSION_CONTROL)
#define S_BUILDER   (1U << FERRY_SESSION_BUILDER)

static const struct
{
    const char *name;
    ctl_handler fn;
    /* Sleeps: kept out of the audit bracket, which would stall audits. */
    bool blocks;
    /* The session kinds that may issue it (S_*): the allow-lists. */
    unsigned int kinds;
} ops[FERRY_CTL_NR_OPS] = {
    [FERRY_CTL_HELLO] = { "hello", h_hello,
        .kinds = S_FULL | S_CONTROL | S_BUILDER },
    [FERRY_CTL_HOST_INFO] = { "host_info", h_host_info,
        .kinds = S_FULL | S_CONTROL | S_BUILDER },
    [FERRY_CTL_DOMAIN_CREATE] = { "domain_create", h_create,
        .kinds = S_FULL | S_BUILDER },
    [FERRY_CTL_DOMAIN_DESTROY] = { "domain_destroy", h_destroy,
        .kinds = S_FULL | S_CONTROL | S_BUILDER },
    [FERRY_CTL_DOMAIN_PAUSE] = { "domain_pause", h_pause,
        .kinds = S_FULL | S_CONTROL },
    [FERRY_CTL_DOMAIN_UNPAUSE] = { "domain_unpause", h_unpause,
        .kinds = S_FULL | S_CONTROL },
    [FERRY_CTL_DOMAIN_GETINFO] = { "domain_getinfo", h_getinfo,
        .kinds = S_FULL | S_CONTROL | S_BUILDER },
    [FERRY_CTL_DOMAIN_LIST] = { "domain_list", h_list,
        .kinds = S_FULL | S_CONTROL },
    [FERRY_CTL_DOMAIN_MAX_MEM] = { "domain_max_mem", h_max_mem,
        .kinds = S_FULL | S_BUILDER },
    [FERRY_CTL_DOMAIN_SHUTDOWN] = { "domain_shutdown", h_shutdown,
        .kinds = S_FULL | S_CONTROL },
    [FERRY_CTL_DOMAIN_SET_META] = { "domain_set_meta", h_set_meta,
        .kinds = S_FULL | S_CONTROL },
    [FERRY_CTL_DOMAIN_GET_META] = { "domain_get_meta", h_get_meta,
        .kinds = S_FULL | S_CONTROL },
    [FERRY_CTL_VCPU_GETCONTEXT] = { "vcpu_getcontext", h_getcontext,
        .kinds = S_FULL | S_CONTROL | S_BUILDER },
    [FERRY_CTL_VCPU_SETCONTEXT] = { "vcpu_setcontext", h_setcontext,
        .kinds = S_FULL | S_BUILDER },
    [FERRY_CTL_GETPAGEFRAMEINFO3] = { "getpageframeinfo3", h_pfinfo3,
        .kinds = S_FULL | S_BUILDER },
    [FERRY_CTL_SHADOW_OP] = { "shadow_op", h_shadow,
        .kinds = S_FULL },
    [FERRY_CTL_MMU_UPDATE] = { "mmu_update", h_mmu_update,
        .kinds = S_FULL },
    [FERRY_CTL_MMUEXT_OP] = { "mmuext_op", h_mmuext,
        .kinds = S_FULL | S_BUILDER },
    [FERRY_CTL_MEMORY_OP] = { "memory_op", h_memop,
        .kinds = S_FULL | S_BUILDER },
    [FERRY_CTL_FOREIGN_MAP] = { "foreign_map", h_foreign_map,
        .kinds = S_FULL },
    [FERRY_CTL_CONSOLE_READ] = { "console_read", h_console_read,
        .kinds = S_FULL | S_CONTROL },
    [FERRY_CTL_DMESG_READ] = { "dmesg_read", h_dmesg,
        .kinds = S_FULL | S_CONTROL },
    [FERRY_CTL_AUDIT] = { "audit", h_audit,
        .kinds = S_FULL },
    [FERRY_CTL_DOMAIN_RESUME] = { "domain_resume", h_resume,
        .kinds = S_FULL },
    [FERRY_CTL_DOMAIN_RENAME] = { "domain_rename", h_rename,
        .kinds = S_FULL | S_CONTROL },
    [FERRY_CTL_VCPU_GETINFO] = { "vcpu_getinfo", h_vcpu_getinfo,
        .kinds = S_FULL | S_CONTROL },
    [FERRY_CTL_DOMAIN_WAIT] = { "domain_wait", h_wait, .blocks = true,
        .kinds = S_FULL | S_CONTROL },
    [FERRY_CTL_DOMAIN_THROTTLE] = { "domain_throttle", h_throttle,
        .kinds = S_FULL },
    [FERRY_CTL_STAGING] = { "staging", h_staging, .kinds = S_BUILDER },
    [FERRY_CTL_FRAME_COPY] = { "frame_copy", h_frame_copy,
        .kinds = S_BUILDER },
    [FERRY_CTL_BUILD_DONE] = { "build_done", h_build_done,
        .kinds = S_BUILDER },
};

/* ------------------------------------------------------------------------
 * The connection loop
 * ------------------------------------------------------------------------ */

/*
 * A builder session acts on its bound domain only.  Every op on its
 * allow-list that names a domain names it at the start of the payload
 * (the memory op after its command, the MMU-extension op as the
 * foreign domain); the handler then finds the same domain, as the
 * session's reference keeps the domid from being reused.  Memory ops are
 * limited to the reservation and populate calls a restore makes, MMU
 * extensions to pinning and unpinning (which check each frame's owner
 * against the foreign domain, as Xen's do).
 */
static int builder_allows(const struct ctl_conn *c, unsigned int op,
                          const uint8_t *p, size_t len)
{
    domid_t domid;

    switch ( op )
    {
    case FERRY_CTL_HELLO:
    case FERRY_CTL_HOST_INFO:
        return 0;
    case FERRY_CTL_DOMAIN_CREATE:   /* h_create binds, once */
    case FERRY_CTL_STAGING:
        return c->built ? -EPERM : 0;
    case FERRY_CTL_MEMORY_OP:
    {
        struct ferry_ctl_memop_req q;

        if ( len < sizeof(q) )
            return -EINVAL;
        memcpy(&q, p, sizeof(q));
        switch ( q.cmd )
        {
        case XENMEM_maximum_ram_page:
            return 0;
        case XENMEM_increase_reservation:
        case XENMEM_decrease_reservation:
        case XENMEM_populate_physmap:
        case XENMEM_current_reservation:
        case XENMEM_maximum_reservation:
        case XENMEM_maximum_gpfn:
            break;
        default:
            return -EPERM;
        }
        domid = q.domid;
        break;
    }
    case FERRY_CTL_MMUEXT_OP:
    {
        struct ferry_ctl_mmu_req q;
        struct mmuext_op o;

        if ( len < sizeof(q) )
            return -EINVAL;
        memcpy(&q, p, sizeof(q));
        if ( (uint64_t)q.count * sizeof(o) > len - sizeof(q) )
            return -EINVAL;
        for ( uint32_t i = 0; i < q.count; i++ )
        {
            memcpy(&o, p + sizeof(q) + i * sizeof(o), sizeof(o));
            if ( o.cmd > MMUEXT_UNPIN_TABLE )
                return -EPERM;
        }
        if ( !c->bound || q.foreigndom != c->bound->domain_id )
            return -EPERM;
        return 0;
    }
    default:
        if ( len < sizeof(domid) )
            return -EINVAL;
        memcpy(&domid, p, sizeof(domid));
        break;
    }
    /* A finished domain is no longer the builder's to change. */
    return c->bound && !c->built && domid == c->bound->domain_id ? 0
                                                                 : -EPERM;
}

/*
 * A builder session closed before BUILD_DONE: destroy its domain, unless
 * it (or anyone) already has.  Runs on the connection's thread as its
 * dom0 vCPU, holding no lock, bracketed like a request so that --audit
 * sees no kill half done; domain_kill takes its locks in hv.h's order.
 * The session's reference keeps the domid from being reused until the
 * caller drops it, so the metadata forgotten is this domain's.
 */
static void builder_abandoned(struct ctl_conn *c)
{
    struct domain *d = c->bound;

    if ( atomic_load(&d->state) == DOMSTATE_DEAD )
        return;
    printk("d%u: its builder went away before the domain was complete;"
           " destroying it", d->domain_id);
    hv_audit_before_hypercall();
    destroy_domain(d);
    hv_audit_after_hypercall("builder_abandoned");
}

/* Serve one request.  Returns < 0 when the connection must close. */
static int serve_one(struct ctl_conn *c, uint8_t **payload, size_t *cap)
{
    struct ferry_ctl_hdr h;
    int rc;

    rc = read_hdr(c, &h);
    if ( rc )
        return rc;
    if ( h.magic != FERRY_CTL_MAGIC )
    {
        gdprintk(XENLOG_WARNING, "control: bad magic %#x, closing", h.magic);
        return -EPROTO;
    }
    c->out.len = 0;
    c->pass_fd = -1;
    if ( h.version != FERRY_CTL_VERSION )
    {
        printk("control: client speaks protocol version %u, ferry-hv speaks %u",
               h.version, FERRY_CTL_VERSION);
        send_response(c, &h, -EPROTONOSUPPORT);
        return -EPROTONOSUPPORT;
    }
    if ( h.len > FERRY_CTL_MAX_PAYLOAD )
    {
        send_response(c, &h, -E2BIG);
        return -E2BIG;              /* cannot skip that much safely */
    }
    if ( h.len > *cap )
    {
        uint8_t *p = realloc(*payload, h.len);

        if ( !p )
            return -ENOMEM;
        *payload = p;
        *cap = h.len;
    }
    rc = read_full(c->fd, *payload, h.len);
    if ( rc )
        return rc;

    if ( !c->hello_done && h.op != FERRY_CTL_HELLO )
        rc = -EPROTO;
    else if ( h.op >= FERRY_CTL_NR_OPS || !ops[h.op].fn || h.rc || h.pad )
        rc = h.op >= FERRY_CTL_NR_OPS || !ops[h.op].fn ? -ENOSYS : -EINVAL;
    else if ( !(ops[h.op].kinds & (1U << c->kind)) )
        rc = -EPERM;                /* not on this session's allow-list */
    else if ( c->kind == FERRY_SESSION_BUILDER &&
              (rc = builder_allows(c, h.op, *payload, h.len)) )
        ;
    else if ( ops[h.op].blocks )
        rc = ops[h.op].fn(c, *payload, h.len);
    else
    {
        /* Bracketed like a hypercall, so that --audit sees no op half-done. */
        hv_audit_before_hypercall();
        rc = ops[h.op].fn(c, *payload, h.len);
        hv_audit_after_hypercall(ops[h.op].name);
    }
    if ( rc < 0 && rc != -ESRCH )
        gdprintk(XENLOG_DEBUG, "control: %s -> %d",
                 h.op < FERRY_CTL_NR_OPS && ops[h.op].name ? ops[h.op].name
                                                          : "unknown", rc);
    /* STAGING keeps its mapping, not the descriptor; others take none. */
    if ( c->recv_fd >= 0 )
        close(c->recv_fd);
    c->recv_fd = -1;
    if ( send_response(c, &h, rc) )
        return -EPIPE;
    return c->hello_done ? 0 : -EPROTO;
}

static bool peer_allowed(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if ( getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 )
        return false;
    return cred.uid == geteuid() || cred.uid == 0;
}

static void *conn_thread(void *arg)
{
    struct ctl_conn *c = arg;
    uint8_t *payload = NULL;
    size_t cap = 0;

    set_current(host.dom0->vcpu[c->slot]);
    while ( serve_one(c, &payload, &cap) == 0 )
        ;
    /* Finish any deferred put this vCPU still holds (it may be on a
     * frame of the builder's domain, which could then not be freed). */
    while ( put_old_guest_table(current) == -ERESTART )
        ;
    if ( c->bound && !c->built )
        builder_abandoned(c);
    set_current(NULL);
    console_put(c->con);
    if ( c->staging )
        munmap(c->staging, c->staging_bytes);
    if ( c->recv_fd >= 0 )
        close(c->recv_fd);
    if ( c->bound )
        put_domain(c->bound);
    free(payload);
    free(c->out.p);

    /* Close under the lock: ctl_shutdown() shuts down busy slots' fds. */
    pthread_mutex_lock(&ctl.lock);
    close(c->fd);
    ctl.slot_busy[c->slot] = false;
    ctl.nr_conns--;
    pthread_cond_broadcast(&ctl.idle);
    pthread_mutex_unlock(&ctl.lock);
    free(c);
    return NULL;
}

void ctl_accept(int fd)
{
    struct ctl_conn *c;
    pthread_t t;
    pthread_attr_t attr;
    int slot = -1;

    if ( !peer_allowed(fd) )
    {
        printk("control: refused a connection from another user");
        close(fd);
        return;
    }
    pthread_mutex_lock(&ctl.lock);
    for ( unsigned int i = 0; i < CTL_MAX_CONNECTIONS && !ctl.stopping; i++ )
        if ( !ctl.slot_busy[i] )
        {
            slot = (int)i;
            ctl.slot_busy[i] = true;
            ctl.conn_fd[i] = fd;
            ctl.nr_conns++;
            break;
        }
    pthread_mutex_unlock(&ctl.lock);
    if ( slot < 0 )
    {
        printk("control: too many connections (%u), refusing one",
               CTL_MAX_CONNECTIONS);
        close(fd);
        return;
    }

    c = calloc(1, sizeof(*c));
    if ( c )
    {
        c->fd = fd;
        c->slot = (unsigned int)slot;
        c->pass_fd = -1;
        c->recv_fd = -1;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if ( pthread_create(&t, &attr, conn_thread, c) == 0 )
        {
            pthread_attr_destroy(&attr);
            return;
        }
        pthread_attr_destroy(&attr);
        free(c);
    }
    close(fd);
    pthread_mutex_lock(&ctl.lock);
    ctl.slot_busy[slot] = false;
    ctl.nr_conns--;
    pthread_mutex_unlock(&ctl.lock);
}

int ctl_init(const char *run_dir, char *err, size_t errlen)
{
    (void)run_dir;
    clock_gettime(CLOCK_MONOTONIC, &ctl.started);
    meta = calloc(DOMID_FIRST_RESERVED, sizeof(*meta));
    if ( !meta )
    {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

void ctl_shutdown(void)
{
    pthread_mutex_lock(&ctl.lock);
    ctl.stopping = true;
    /* Wake the threads blocked reading requests, then wait for them all. */
    for ( unsigned int i = 0; i < CTL_MAX_CONNECTIONS; i++ )
        if ( ctl.slot_busy[i] )
            shutdown(ctl.conn_fd[i], SHUT_RDWR);
    while ( ctl.nr_conns )
        pthread_cond_wait(&ctl.idle, &ctl.lock);
    pthread_mutex_unlock(&ctl.lock);

    pthread_mutex_lock(&meta_lock);
    if ( meta )
        for ( unsigned int i = 0; i < DOMID_FIRST_RESERVED; i++ )
            free(meta[i].blob);
    free(meta);
    meta = NULL;
    pthread_mutex_unlock(&meta_lock);
}

void ctl_forget_domain(unsigned int domid)
{
    if ( domid >= DOMID_FIRST_RESERVED )
        return;
    pthread_mutex_lock(&meta_lock);
    if ( meta )
    {
        free(meta[domid].blob);
        memset(&meta[domid], 0, sizeof(meta[domid]));
    }
    pthread_mutex_unlock(&meta_lock);
}
