/* SPDX-License-Identifier: MIT */
/*
 * ctl-abuse: send malformed control requests to a running ferry-hv and
 * check that each gets the error it should, that the daemon keeps serving,
 * and that no domain is disturbed.  Run by t0002-control-protocol.sh with
 * the host's run directory as its argument; prints TAP (29 checks, and
 * room for MORE-PLANNED more that the caller prints after them).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl-raw.h"
#include "xc.h"
#include "../../hypervisor/include/public/control.h"

static const char *rundir;
static void send_all(int fd, const void *p, size_t len)
{
    /* The daemon may have closed: the reply check then reports it. */
    ssize_t r = send(fd, p, len, MSG_NOSIGNAL);

    (void)r;
}

static void send_req(int fd, uint16_t version, uint32_t magic, uint16_t op,
                     const void *payload, uint32_t len, uint32_t claimed)
{
    struct ferry_ctl_hdr h = {
        .magic = magic, .version = version, .op = op, .seq = 7,
        .len = claimed,
    };

    send_all(fd, &h, sizeof(h));
    if ( len )
        send_all(fd, payload, len);
}

/* Read one response; returns its rc, or 1 if the connection closed. */
static int read_resp(int fd, void *buf, size_t cap, uint32_t *len)
{
    struct ferry_ctl_hdr h;
    size_t got = 0;

    while ( got < sizeof(h) )
    {
        ssize_t r = recv(fd, (char *)&h + got, sizeof(h) - got, 0);

        if ( r <= 0 )
            return 1;
        got += (size_t)r;
    }
    if ( h.len > cap )
        return 2;
    for ( got = 0; got < h.len; )
    {
        ssize_t r = recv(fd, (char *)buf + got, h.len - got, 0);

        if ( r <= 0 )
            return 1;
        got += (size_t)r;
    }
    if ( len )
        *len = h.len;
    return h.rc;
}

static bool closed(int fd)
{
    char c;

    return recv(fd, &c, 1, 0) <= 0;
}

/* One request on a fresh HELLO'd connection; returns the rc. */
static int one(uint16_t op, const void *p, uint32_t len)
{
    static char buf[1 << 20];
    int fd = connect_raw(rundir), rc;

    raw_hello(fd, -1, NULL);
    send_req(fd, FERRY_CTL_VERSION, FERRY_CTL_MAGIC, op, p, len, len);
    rc = read_resp(fd, buf, sizeof(buf), NULL);
    close(fd);
    return rc;
}

static void test_framing(void)
{
    char junk[64] = "garbage garbage garbage";
    int fd;

    fd = connect_raw(rundir);
    send_req(fd, FERRY_CTL_VERSION, 0xdeadbeef, FERRY_CTL_HELLO, NULL, 0, 0);
    result(closed(fd), "bad magic closes the connection");
    close(fd);

    fd = connect_raw(rundir);
    send_req(fd, FERRY_CTL_VERSION + 1, FERRY_CTL_MAGIC, FERRY_CTL_HELLO,
             NULL, 0, 0);
    result(read_resp(fd, junk, sizeof(junk), NULL) == -EPROTONOSUPPORT &&
           closed(fd), "wrong version: -EPROTONOSUPPORT, then closed");
    close(fd);

    fd = connect_raw(rundir);
    send_req(fd, FERRY_CTL_VERSION, FERRY_CTL_MAGIC, FERRY_CTL_HOST_INFO,
             NULL, 0, 0);
    result(read_resp(fd, junk, sizeof(junk), NULL) == -EPROTO,
           "a request before HELLO: -EPROTO");
    close(fd);

    fd = connect_raw(rundir);
    raw_hello(fd, -1, NULL);
    send_req(fd, FERRY_CTL_VERSION, FERRY_CTL_MAGIC, FERRY_CTL_HOST_INFO,
             NULL, 0, FERRY_CTL_MAX_PAYLOAD + 1);
    result(read_resp(fd, junk, sizeof(junk), NULL) == -E2BIG && closed(fd),
           "payload over the cap: -E2BIG, then closed");
    close(fd);

    /* Truncated: the header promises 100 bytes, 10 arrive, then EOF. */
    fd = connect_raw(rundir);
    raw_hello(fd, -1, NULL);
    send_req(fd, FERRY_CTL_VERSION, FERRY_CTL_MAGIC, FERRY_CTL_DOMAIN_GETINFO,
             junk, 10, 100);
    close(fd);
    fd = connect_raw(rundir);
    result(raw_hello(fd, -1, NULL) == 0,
           "a truncated request does not stop the daemon");
    close(fd);

    /* A truncated header. */
    fd = connect_raw(rundir);
    send_all(fd, junk, 7);
    close(fd);
    fd = connect_raw(rundir);
    result(raw_hello(fd, -1, NULL) == 0,
           "a truncated header does not stop the daemon");
    close(fd);
}

static void test_fields(void)
{
    struct ferry_ctl_domid bogus = { .domid = 5000 };
    struct ferry_ctl_domid xen = { .domid = DOMID_XEN };
    struct ferry_ctl_domid zero = { .domid = 0 };
    struct ferry_ctl_create_req hvm = { .domid = DOMID_ANY, .flags = 1,
                                        .max_vcpus = 1 };
    struct ferry_ctl_create_req many = { .domid = DOMID_ANY,
                                         .max_vcpus = 100000 };
    struct ferry_ctl_pfinfo_req pf = { .domid = 5000, .num = 1025 };
    struct ferry_ctl_list_req list = { .first = 0, .max = 5000 };
    char big[64] = { 0 };

    result(one(FERRY_CTL_DOMAIN_GETINFO, &bogus, sizeof(bogus)) == -ESRCH,
           "bogus domid: -ESRCH");
    result(one(FERRY_CTL_DOMAIN_DESTROY, &xen, sizeof(xen)) == -ESRCH,
           "destroy of DOMID_XEN: -ESRCH");
    result(one(FERRY_CTL_DOMAIN_DESTROY, &zero, sizeof(zero)) == -ESRCH,
           "destroy of domain 0 through the protocol: -ESRCH");
    result(one(FERRY_CTL_DOMAIN_GETINFO, big, sizeof(bogus) + 1) == -EINVAL,
           "payload one byte too long: -EINVAL");
    result(one(FERRY_CTL_DOMAIN_GETINFO, big, 1) == -EINVAL,
           "payload too short: -EINVAL");
    result(one(FERRY_CTL_DOMAIN_CREATE, &hvm, sizeof(hvm)) == -EOPNOTSUPP,
           "an HVM domain: -EOPNOTSUPP");
    result(one(FERRY_CTL_DOMAIN_CREATE, &many, sizeof(many)) == -EINVAL,
           "100000 vCPUs: -EINVAL");
    result(one(FERRY_CTL_GETPAGEFRAMEINFO3, &pf, sizeof(pf)) == -E2BIG,
           "getpageframeinfo3 of 1025 frames: -E2BIG");
    result(one(FERRY_CTL_DOMAIN_LIST, &list, sizeof(list)) == -E2BIG,
           "list of 5000 domains: -E2BIG");
    result(one(999, NULL, 0) == -ENOSYS, "unknown op: -ENOSYS");
}

/*
 * A log-dirty bitmap is built by the daemon: one asked for 2^32 pages
 * (512 MiB) of a domain of @max_pages is refused before it is allocated;
 * one of the domain's size gets past that check (log-dirty is off, so
 * the op itself then fails otherwise).
 */
static void shadow_bound(uint32_t domid, uint64_t max_pages)
{
    struct ferry_ctl_shadow_req q = {
        .domid = domid, .op = XEN_DOMCTL_SHADOW_OP_PEEK, .want_bitmap = 1,
        .pages = 1ULL << 32,
    };
    int rc;

    result(one(FERRY_CTL_SHADOW_OP, &q, sizeof(q)) == -E2BIG,
           "shadow_op bitmap of 2^32 pages for a domain of %llu: -E2BIG",
           (unsigned long long)max_pages);
    q.pages = max_pages;
    rc = one(FERRY_CTL_SHADOW_OP, &q, sizeof(q));
    result(rc != -E2BIG, "shadow_op bitmap of the domain's %llu pages: not"
           " refused for its size (%d)", (unsigned long long)max_pages, rc);
}

/*
 * A maximum memory of 2^32 pages (16 TiB) is the toolstack's to set, but
 * a bitmap of that size (512 MiB) is more than one answer can carry: it
 * is refused before it is built, whatever the domain claims.
 */
static void shadow_bound_answer(xc_interface *xch, uint32_t domid)
{
    struct ferry_ctl_shadow_req q = {
        .domid = domid, .op = XEN_DOMCTL_SHADOW_OP_PEEK, .want_bitmap = 1,
        .pages = (1ULL << 32) - 1,
    };

    if ( xc_domain_setmaxmem(xch, domid, 1ULL << 44) )
    {
        result(0, "set a maximum memory of 16 TiB: %s", strerror(errno));
        return;
    }
    result(one(FERRY_CTL_SHADOW_OP, &q, sizeof(q)) == -E2BIG,
           "shadow_op bitmap of 2^32-1 pages for a domain of 16 TiB maximum"
           " (past one answer): -E2BIG");
    q.pages = ((uint64_t)FERRY_CTL_MAX_PAYLOAD -
               sizeof(struct ferry_ctl_shadow_resp)) * 8;
    result(one(FERRY_CTL_SHADOW_OP, &q, sizeof(q)) != -E2BIG,
           "shadow_op bitmap that just fits one answer: not refused for its"
           " size");
    xc_domain_setmaxmem(xch, domid, 64);
}

/* The memory queries take no extents: a request that sends some (to be
 * copied into the answer) is refused. */
static void memop_query_extents(void)
{
    struct
    {
        struct ferry_ctl_memop_req q;
        uint64_t ext[512];
    } m = { .q = { .cmd = XENMEM_maximum_ram_page, .nr_extents = 512 } };
    struct ferry_ctl_memop_req none = { .cmd = XENMEM_maximum_ram_page };

    result(one(FERRY_CTL_MEMORY_OP, &m, sizeof(m)) == -EINVAL &&
           one(FERRY_CTL_MEMORY_OP, &none, sizeof(none)) == 0,
           "memory_op maximum_ram_page with 512 extents: -EINVAL (none: 0)");
}

/* Two real domains: A may not map B's frames, nor B's domain A's. */
static void test_foreign_map(void)
{
    xc_interface *xch = xc_interface_open(rundir, NULL);
    uint32_t a = DOMID_ANY, b = DOMID_ANY;
    xen_pfn_t fa = 0, fb = 0;
    void *p;
    int err;

    if ( !xch || xc_domain_create(xch, &a, 1, NULL) ||
         xc_domain_create(xch, &b, 1, NULL) ||
         xc_domain_setmaxmem(xch, a, 64) || xc_domain_setmaxmem(xch, b, 64) ||
         xc_domain_populate_physmap_exact(xch, a, 1, 0, 0, &fa) ||
         xc_domain_populate_physmap_exact(xch, b, 1, 0, 0, &fb) )
    {
        result(0, "set up two domains: %s", strerror(errno));
        return;
    }
    result(xc_map_foreign_frames(xch, a, XC_MAP_READ, &fb, 1, &p, &err) == 1 &&
           err == -EPERM && !p, "mapping another domain's frame: -EPERM");
    result(xc_map_foreign_frames(xch, a, XC_MAP_WRITE, &fa, 1, &p, &err) == 0 &&
           p, "mapping the domain's own frame works");
    shadow_bound(a, 16);
    shadow_bound_answer(xch, a);
    fb = xc_max_page(xch) + 5;
    result(xc_map_foreign_frames(xch, a, XC_MAP_READ, &fb, 1, &p, &err) == 1 &&
           err == -EINVAL, "mapping a frame past the end: -EINVAL");
    result(xc_domain_destroy(xch, a) == 0 && xc_domain_destroy(xch, b) == 0,
           "both domains destroyed");
    xc_interface_close(xch);
}

/* Random messages: every one answered or the connection closed. */
static void test_garbage(void)
{
    unsigned int seed = 12345, answered = 0, closed_n = 0;
    char payload[512], buf[1 << 16];

    for ( int i = 0; i < 300; i++ )
    {
        int fd = connect_raw(rundir), rc;
        uint32_t len = (uint32_t)(rand_r(&seed) % sizeof(payload));
        uint16_t op = (uint16_t)(rand_r(&seed) % (FERRY_CTL_NR_OPS + 3));

        for ( uint32_t k = 0; k < len; k++ )
            payload[k] = (char)rand_r(&seed);
        if ( op == FERRY_CTL_DOMAIN_DESTROY || op == FERRY_CTL_DOMAIN_CREATE )
            op = FERRY_CTL_DOMAIN_GETINFO;  /* keep the host's domains */
        raw_hello(fd, -1, NULL);
        send_req(fd, FERRY_CTL_VERSION, FERRY_CTL_MAGIC, op, payload, len,
                 len);
        rc = read_resp(fd, buf, sizeof(buf), NULL);
        answered += rc != 1;
        closed_n += rc == 1;
        close(fd);
    }
    result(closed_n == 0, "300 random requests all answered (%u answered)",
           answered);
}

static void test_other_user(void)
{
    pid_t pid;
    int status;

    fflush(stdout);     /* or the child may print our TAP lines again */
    pid = fork();
    if ( pid == 0 )
    {
        int fd;

        if ( setgid(65534) || setuid(65534) )
            _exit(3);
        fd = open_raw(rundir);
        if ( fd < 0 )
            _exit(errno == EACCES ? 0 : 2);
        /* Connected anyway: the daemon must close without answering. */
        _exit(closed(fd) ? 0 : 1);
    }
    waitpid(pid, &status, 0);
    if ( WIFEXITED(status) && WEXITSTATUS(status) == 3 )
    {
        printf("ok %d - another user is refused # SKIP cannot change uid\n",
               ++tap_n);
        return;
    }
    result(WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "another user is refused");
}

int main(int argc, char **argv)
{
    xc_interface *xch;
    char msg[512];

    if ( argc != 2 && argc != 3 )
    {
        fprintf(stderr, "usage: ctl-abuse RUNDIR [MORE-PLANNED]\n");
        return 99;
    }
    rundir = argv[1];
    /* The caller may add checks of its own after ours (numbered 30 on). */
    printf("1..%d\n", 29 + (argc == 3 ? atoi(argv[2]) : 0));
    test_framing();
    test_fields();
    memop_query_extents();
    test_foreign_map();
    test_garbage();
    test_other_user();

    xch = xc_interface_open(rundir, NULL);
    result(xch != NULL, "the daemon still serves a normal client");
    result(xch && xc_audit(xch, msg, sizeof(msg)) == 0,
           "the auditor finds the host consistent");
    xc_interface_close(xch);
    return tap_failed ? 1 : 0;
}
