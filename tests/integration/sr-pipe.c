/* SPDX-License-Identifier: MIT */
/*
 * sr-pipe: copy a running domain live from one host to another through
 * the save/restore engines alone, without xl migrate's handshake.  Used
 * by t0013-live-stream.sh to test the live engine (saverestore/sr-save.c
 * live mode, sr-restore.c for live streams) on its own.
 *
 *   sr-pipe [options] RUNDIR_A RUNDIR_B DOMAIN
 *
 * The main thread runs sr_save_domain(live) on host A's DOMAIN (a name
 * or an ID) into one end of a socketpair, with a suspend callback that
 * asks the guest to suspend as xl save does; a second thread reads the
 * xl header from the other end and runs sr_restore_domain(xl_hdr_read,
 * stream_continues) on host B.  After the stream the saver writes one
 * more byte, which the restorer must find right after the trailer: the
 * restore engine read nothing past it.  The new domain gets the source's
 * name and config (or --name) and is unpaused unless -p; the source is
 * left suspended, for the caller to destroy.
 *
 * --cancel-after MS raises the save's cancel flag after MS ms.
 *
 * Output, one "key value" per line on stdout: iterations, pages_sent,
 * pages_resent, bytes, pages_received, verify_mismatches, domid,
 * downtime_ms (suspend to the restored domain being ready), finish_ms.
 * Exit 0 on success; 1 with the engines' messages on stderr otherwise.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "xc.h"
#include "sr.h"

#define AFTER_TRAILER 'G'       /* the byte the saver sends after it */

struct restorer
{
    xc_interface *xch;
    int fd;
    uint32_t flags;
    struct sr_restore_args args;
    struct sr_restore_result res;
    char msg[512];
    int rc;
    bool next_byte_ok;
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void usage(void)
{
    fprintf(stderr, "usage: sr-pipe [--debug] [-p] [--name NAME] "
            "[--max-iters N] [--dirty-target PAGES] [--max-downtime MS] "
            "[--bandwidth BYTES/S] [--timeout MS] [--on-timeout abort|force] "
            "[--cancel-after MS] [-v] "
            "RUNDIR_A RUNDIR_B DOMAIN\n");
    exit(2);
}

/* A domain of host A by ID or by name. */
static int find_domain(xc_interface *xch, const char *spec, uint32_t *domid)
{
    xc_domaininfo_t info[256];
    char name[XC_DOMAIN_NAME_MAX], *end;
    unsigned long id = strtoul(spec, &end, 10);
    int n;

    if ( *spec && !*end )
    {
        *domid = (uint32_t)id;
        return 0;
    }
    n = xc_domain_getinfolist(xch, 0, 256, info);
    for ( int i = 0; i < n; i++ )
    {
        if ( xc_domain_get_meta(xch, info[i].domain, name, sizeof(name),
                                NULL, NULL) == 0 && !strcmp(name, spec) )
        {
            *domid = info[i].domain;
            return 0;
        }
    }
    return -1;
}

/* -v: one line on stderr per pass of the saver, with its figures. */
struct watcher
{
    uint64_t t0;
    enum sr_phase phase;
    unsigned int iteration;
};

static void progress_cb(void *arg, const struct sr_progress *p)
{
    struct watcher *w = arg;

    if ( p->phase == w->phase && p->iteration == w->iteration )
        return;
    w->phase = p->phase;
    w->iteration = p->iteration;
    fprintf(stderr, "sr-pipe: %8.3f s %-9s iteration %u pages %" PRIu64
            " dirty %" PRIu64 " throughput %" PRIu64 " B/s dirty rate %"
            PRIu64 " B/s expected downtime %" PRIu64 " ms\n",
            (now_ns() - w->t0) / 1e9, sr_phase_name(p->phase), p->iteration,
            p->pass_total, p->dirty_pages, p->throughput, p->dirty_rate,
            p->expected_downtime_ms);
}

/* --cancel-after MS: raise the saver's cancel flag from another thread. */
struct canceller
{
    uint64_t ms;
    _Atomic bool flag;
};

static void *cancel_thread(void *arg)
{
    struct canceller *c = arg;
    struct timespec ts = { (time_t)(c->ms / 1000),
                           (long)(c->ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
    atomic_store(&c->flag, true);
    return NULL;
}

/* The suspend callback: ask the guest, wait until it has suspended. */
struct suspender
{
    xc_interface *xch;
    uint32_t domid;
};

static int suspend_cb(void *arg)
{
    struct suspender *s = arg;
    xc_domaininfo_t info;

    if ( xc_domain_shutdown_request(s->xch, s->domid, SHUTDOWN_suspend) )
        return -errno;
    for ( int i = 0; i < 30000; i++ )
    {
        struct timespec tick = { 0, 1000 * 1000 };

        if ( xc_domain_getinfo_single(s->xch, s->domid, &info) )
            return -errno;
        if ( (info.flags & XEN_DOMINF_shutdown) &&
             ((info.flags >> XEN_DOMINF_shutdownshift) &
              XEN_DOMINF_shutdownmask) == SHUTDOWN_suspend )
            return 0;
        nanosleep(&tick, NULL);
    }
    return -ETIMEDOUT;
}

/* The receiving side, as xl migrate-receive does it. */
static void *restore_thread(void *arg)
{
    struct restorer *r = arg;
    struct sr_io *io = NULL;
    struct sr_xl_hdr hdr;
    void *config = NULL;
    uint32_t config_len = 0;
    char c;

    r->rc = sr_io_open_fd(&io, r->fd, false);
    if ( !r->rc )
        r->rc = sr_io_hash_start(io);
    if ( !r->rc )
        r->rc = sr_read_xl_hdr(io, &hdr, &config, &config_len);
    if ( r->rc )
    {
        snprintf(r->msg, sizeof(r->msg), "xl header: %s", sr_io_errmsg(io));
        goto out;
    }
    r->args.xl_hdr_read = true;
    r->args.xl_mandatory_flags = hdr.mandatory_flags;
    r->args.stream_continues = true;
    r->rc = sr_restore_domain(io, &r->args, &r->res, r->msg, sizeof(r->msg));
    if ( r->rc )
        goto out;
    /* The engine must have left the next byte where it was. */
    r->next_byte_ok = read(r->fd, &c, 1) == 1 && c == AFTER_TRAILER;
 out:
    /* A failed restore must not leave the saver blocked on a full pipe. */
    if ( r->rc )
        shutdown(r->fd, SHUT_RDWR);
    free(config);
    sr_io_close(io);
    return NULL;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "debug", no_argument, NULL, 'd' },
        { "name", required_argument, NULL, 'n' },
        { "max-iters", required_argument, NULL, 'i' },
        { "dirty-target", required_argument, NULL, 't' },
        { "max-downtime", required_argument, NULL, 'D' },
        { "bandwidth", required_argument, NULL, 'b' },
        { "timeout", required_argument, NULL, 'T' },
        { "on-timeout", required_argument, NULL, 'o' },
        { "verbose", no_argument, NULL, 'v' },
        { "cancel-after", required_argument, NULL, 'c' },
        { NULL, 0, NULL, 0 },
    };
    struct sr_precopy_policy pol = { 0 };
    struct sr_save_stats st = { 0 };
    struct restorer r = { .rc = -1 };
    struct suspender sus;
    struct sr_save_args sa = { 0 };
    struct sr_io *io = NULL;
    xc_interface *xa, *xb;
    xc_domaininfo_t info;
    char name[XC_DOMAIN_NAME_MAX], msg[512] = "";
    const char *newname = NULL;
    void *blob = NULL;
    size_t blob_len = 0;
    bool debug = false, paused = false;
    struct watcher watch = { .phase = SR_PHASE_DONE, .iteration = ~0U };
    struct canceller canc = { .ms = 0 };
    pthread_t cthr;
    pthread_t thr;
    uint32_t domid;
    char *json;
    int sv[2], c, rc;
    uint64_t t_ready;

    while ( (c = getopt_long(argc, argv, "pv", opts, NULL)) != -1 )
    {
        switch ( c )
        {
        case 'd': debug = true; break;
        case 'p': paused = true; break;
        case 'c': canc.ms = strtoull(optarg, NULL, 0); break;
        case 'v':
            sa.progress = progress_cb;
            sa.progress_arg = &watch;
            break;
        case 'n': newname = optarg; break;
        case 'i': pol.max_iterations = (unsigned int)atoi(optarg); break;
        case 't': pol.target_dirty_pages = strtoull(optarg, NULL, 0); break;
        case 'D': pol.max_downtime_ms = strtoull(optarg, NULL, 0); break;
        case 'b': pol.bandwidth_limit = strtoull(optarg, NULL, 0); break;
        case 'T': pol.timeout_ms = strtoull(optarg, NULL, 0); break;
        case 'o':
            pol.timeout_action = strcmp(optarg, "force") ? SR_TIMEOUT_ABORT
                                                          : SR_TIMEOUT_FORCE;
            break;
        default: usage();
        }
    }
    if ( argc - optind != 3 )
        usage();
    signal(SIGPIPE, SIG_IGN);
    xa = xc_interface_open(argv[optind], xc_stderr_logger(XC_ERROR));
    xb = xc_interface_open(argv[optind + 1], xc_stderr_logger(XC_ERROR));
    if ( !xa || !xb )
        return 1;
    if ( find_domain(xa, argv[optind + 2], &domid) ||
         xc_domain_getinfo_single(xa, domid, &info) ||
         xc_domain_get_meta(xa, domid, name, sizeof(name), &blob,
                            &blob_len) || !blob_len )
    {
        fprintf(stderr, "sr-pipe: no domain %s on %s\n", argv[optind + 2],
                argv[optind]);
        return 1;
    }
    if ( !(json = calloc(1, blob_len + 1)) )
        return 1;
    memcpy(json, blob, blob_len);

    if ( socketpair(AF_UNIX, SOCK_STREAM, 0, sv) )
    {
        perror("socketpair");
        return 1;
    }
    r.xch = xb;
    r.fd = sv[1];
    r.args = (struct sr_restore_args){
        .xch = xb,
        .paused = true,
        .max_vcpus = info.max_vcpu_id + 1,
        .max_memkb = info.max_pages * 4,
        /* The stream is the source domain's own: admitted as it is. */
        .admitted_memkb = info.max_pages * 4,
    };
    memcpy(r.args.uuid, info.handle, sizeof(r.args.uuid));
    if ( pthread_create(&thr, NULL, restore_thread, &r) )
        return 1;

    sus = (struct suspender){ .xch = xa, .domid = domid };
    sa.xch = xa;
    sa.domid = domid;
    sa.config_json = json;
    sa.suspend = suspend_cb;
    sa.suspend_arg = &sus;
    sa.live = true;
    sa.debug = debug;
    sa.trailer = true;
    sa.policy = &pol;
    sa.stats = &st;
    watch.t0 = now_ns();
    if ( canc.ms )
    {
        sa.cancel = &canc.flag;
        if ( pthread_create(&cthr, NULL, cancel_thread, &canc) )
            return 1;
        pthread_detach(cthr);
    }
    rc = sr_io_open_fd(&io, sv[0], false);
    if ( !rc )
        rc = sr_save_domain(io, &sa, msg, sizeof(msg));
    if ( !rc && write(sv[0], (char[]){ AFTER_TRAILER }, 1) != 1 )
        rc = -errno;
    sr_io_close(io);
    shutdown(sv[0], SHUT_WR);
    pthread_join(thr, NULL);
    t_ready = now_ns();
    if ( rc )
        fprintf(stderr, "sr-pipe: save: %s\n", msg);
    if ( r.rc )
        fprintf(stderr, "sr-pipe: restore: %s\n", r.msg);
    if ( !rc && !r.rc && !r.next_byte_ok )
    {
        fprintf(stderr, "sr-pipe: restore read past the trailer\n");
        rc = -EPROTO;
    }
    printf("iterations %u\npages_sent %" PRIu64 "\npages_resent %" PRIu64
           "\nbytes %" PRIu64 "\npages_received %" PRIu64
           "\nverify_mismatches %" PRIu64 "\n", st.iterations, st.pages_sent,
           st.pages_resent, st.bytes, r.res.pages_received,
           r.res.verify_mismatches);
    if ( !rc && !r.rc )
    {
        printf("domid %u\ndowntime_ms %" PRIu64 "\nfinish_ms %" PRIu64
               "\nlive_ms %" PRIu64 "\n", r.res.domid,
               (t_ready - st.t_suspended_ns) / 1000000,
               (r.res.t_done_ns - r.res.t_last_page_ns) / 1000000,
               (st.t_suspended_ns - st.t_start_ns) / 1000000);
        if ( xc_domain_set_meta(xb, r.res.domid, newname ? newname : name,
                                json, strlen(json)) ||
             (!paused && xc_domain_unpause(xb, r.res.domid)) )
        {
            fprintf(stderr, "sr-pipe: cannot name or unpause domain %u\n",
                    r.res.domid);
            xc_domain_destroy(xb, r.res.domid);
            rc = -1;
        }
    }
    close(sv[0]);
    close(sv[1]);
    free(r.res.config_json);
    free(json);
    free(blob);
    xc_interface_close(xa);
    xc_interface_close(xb);
    return rc || r.rc ? 1 : 0;
}
