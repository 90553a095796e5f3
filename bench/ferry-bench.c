/* SPDX-License-Identifier: MIT */
/*
 * ferry-bench: the save/restore and live-migration benchmark (issue 4
 * item 8, issue 5 item 8).  `make bench` builds and runs it; it is not a
 * test and asserts nothing: it prints a table of figures, each against
 * its aim, and says which aims are met.
 *
 * What it does, all on this machine and in one run:
 * - measures the yardsticks the aims are ratios of: single-thread memcpy
 *   bandwidth, sequential durable file write bandwidth (write + fsync in
 *   the directory the save files go to), and a plain loopback TCP copy;
 *   it also times the digests OpenSSL offers, for the record;
 * - for each domain size (1 GiB and 4 GiB; --quick: 16 and 64 MiB) starts
 *   two ferry-hv daemons of its own (run directories under a temporary
 *   directory, stopped by pid at the end, whatever happens), builds an
 *   `idle` domain with libxc, fills every free data page of it (PFNs from
 *   the builder's first_free_pfn: never page tables, start_info or the
 *   P2M) with incompressible bytes while it is paused, lets it run, asks
 *   it to suspend, and runs the real engines on it (sr_save_domain to
 *   /dev/null, sr_save_domain to an atomic file committed with fsync,
 *   sr_restore_domain from that file, which is then in the page cache,
 *   into the second host).  Each operation opens the host afresh, as an
 *   xl process does, so first-touch costs of its mappings are counted;
 * - live migration over loopback with the real `xl migrate --json`, when
 *   the xl binary has that verb.
 *
 * Invariants: nothing is left behind: domains are destroyed, daemons
 * stopped by the pids they wrote, files and directories removed.  The
 * program only ever signals processes it started.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "common/size.h"
#include "../libxc/xc.h"
#include "../saverestore/sr.h"
#include "../xl/xl-cfg.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define NS_PER_S 1000000000ULL
#define MAP_BATCH 1024
#define MAX_ROWS 128

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* This process's CPU time: what the engines cost, whatever else runs. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static double secs(uint64_t ns)
{
    return (double)ns / NS_PER_S;
}

static double gbps(uint64_t bytes, uint64_t ns)
{
    return ns ? (double)bytes / (double)ns : 0.0;   /* bytes/ns = GB/s */
}

static void __attribute__((format(printf, 1, 2))) note(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("# ", stdout);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

/* Fault a range in with one call instead of one fault per page. */
static void populate(void *p, size_t len, bool write)
{
#ifdef MADV_POPULATE_WRITE
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)4095;

    if ( !madvise((void *)a, len + ((uintptr_t)p - a),
                  write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) )
        return;
#endif
    if ( write )
        memset(p, 0, len);
}

/* splitmix64: fast, and its output does not compress. */
static void fill_random(void *buf, size_t len, uint64_t *state)
{
    uint64_t *q = buf, s = *state;

    for ( size_t i = 0; i < len / 8; i++ )
    {
        uint64_t z = (s += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        q[i] = z ^ (z >> 31);
    }
    *state = s;
}

/* ------------------------------------------------------------------------
 * The results table
 * ------------------------------------------------------------------------ */

struct row
{
    char figure[64];
    char value[24];     /* e.g. "2.31 GB/s" */
    char ratio[32];     /* e.g. "0.15x memcpy" */
    char aim[24];
    const char *result; /* "met", "NOT MET", "n/a", "info" */
};

static struct row rows[MAX_ROWS];
static unsigned int nr_rows;

static struct row *row_new(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static struct row *row_new(const char *fmt, ...)
{
    static struct row spare;
    struct row *r = nr_rows < MAX_ROWS ? &rows[nr_rows++] : &spare;
    va_list ap;

    memset(r, 0, sizeof(*r));
    va_start(ap, fmt);
    vsnprintf(r->figure, sizeof(r->figure), fmt, ap);
    va_end(ap);
    r->result = "info";
    return r;
}

/* A throughput figure as a ratio of a yardstick, aim ratio >= min. */
static void row_rate(const char *figure, uint64_t bytes, uint64_t ns,
                     double base_gbps, const char *base, double min)
{
    struct row *r = row_new("%s", figure);
    double v = gbps(bytes, ns), q = base_gbps > 0 ? v / base_gbps : 0;

    snprintf(r->value, sizeof(r->value), "%.2f GB/s", v);
    snprintf(r->ratio, sizeof(r->ratio), "%.3fx %s", q, base);
    if ( min > 0 )
    {
        snprintf(r->aim, sizeof(r->aim), ">= %.2fx", min);
        r->result = q >= min ? "met" : "NOT MET";
    }
}

/* A figure that could not be measured: the line is still printed. */
static void row_na(const char *figure, const char *aim, const char *why)
{
    struct row *r = row_new("%s", figure);

    snprintf(r->value, sizeof(r->value), "-");
    snprintf(r->ratio, sizeof(r->ratio), "%.31s", why);
    snprintf(r->aim, sizeof(r->aim), "%s", aim);
    r->result = "n/a";
}

static void print_table(void)
{
    unsigned int met = 0, missed = 0, na = 0;

    printf("\n%-44s %12s  %-22s %-10s %s\n", "figure", "value", "ratio",
           "aim", "result");
    for ( unsigned int i = 0; i < nr_rows; i++ )
    {
        const struct row *r = &rows[i];

        printf("%-44s %12s  %-22s %-10s %s\n", r->figure, r->value, r->ratio,
               r->aim, r->result);
        met += !strcmp(r->result, "met");
        missed += !strcmp(r->result, "NOT MET");
        na += !strcmp(r->result, "n/a");
    }
    printf("\nbench: %u aims met, %u not met, %u not measured\n", met, missed,
           na);
}

/* ------------------------------------------------------------------------
 * Yardsticks: memcpy, durable file writes, digests, loopback TCP
 * ------------------------------------------------------------------------ */

/* Best of several copies of a resident buffer (the first touch is not
 * what memcpy costs). */
static double measure_memcpy(size_t len)
{
    uint8_t *a = mmap(NULL, len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint8_t *b = mmap(NULL, len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint64_t best = UINT64_MAX, seed = 1;

    if ( a == MAP_FAILED || b == MAP_FAILED )
        return 0;
    populate(a, len, true);
    populate(b, len, true);
    fill_random(a, len, &seed);
    memset(b, 1, len);
    for ( int i = 0; i < 6; i++ )
    {
        uint64_t t = now_ns();

        memcpy(i & 1 ? a : b, i & 1 ? b : a, len);
        __asm__ volatile("" : : "r"(a), "r"(b) : "memory");
        t = now_ns() - t;
        if ( t < best )
            best = t;
    }
    munmap(a, len);
    munmap(b, len);
    return gbps(len, best);
}

/* write() in 4 MiB blocks then fsync, as a save to a file does. */
static double measure_disk(const char *dir, size_t len)
{
    const size_t blk = 4 * MiB;
    char path[PATH_MAX];
    uint8_t *buf = malloc(blk);
    uint64_t seed = 7, t;
    double r = 0;
    int fd;

    snprintf(path, sizeof(path), "%.*s/disk-bench", PATH_MAX / 2, dir);
    if ( !buf )
        return 0;
    fill_random(buf, blk, &seed);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if ( fd < 0 )
        goto out;
    t = now_ns();
    for ( size_t done = 0; done < len; done += blk )
        if ( write(fd, buf, blk) != (ssize_t)blk )
            goto out_close;
    if ( fsync(fd) )
        goto out_close;
    r = gbps(len, now_ns() - t);
 out_close:
    close(fd);
    unlink(path);
 out:
    free(buf);
    return r;
}

/* One digest or MAC over a resident buffer, fed as the engines do. */
static double measure_digest(const char *name, const uint8_t *buf,
                             size_t len)
{
    const size_t chunk = 4 * MiB;
    unsigned char out[64], key[32] = { 1 }, iv[12] = { 0 };
    double r = 0;
    uint64_t t;

    if ( !strcmp(name, "GMAC") || !strcmp(name, "POLY1305") )
    {
        EVP_MAC *mac = EVP_MAC_fetch(NULL, name, NULL);
        EVP_MAC_CTX *c = mac ? EVP_MAC_CTX_new(mac) : NULL;
        OSSL_PARAM p[3] = { OSSL_PARAM_END, OSSL_PARAM_END, OSSL_PARAM_END };
        char gcm[] = "AES-128-GCM";
        size_t ol;

        if ( !strcmp(name, "GMAC") )
        {
            p[0] = OSSL_PARAM_construct_utf8_string("cipher", gcm, 0);
            p[1] = OSSL_PARAM_construct_octet_string("iv", iv, sizeof(iv));
        }
        t = now_ns();
        if ( c && EVP_MAC_init(c, key, !strcmp(name, "GMAC") ? 16 : 32, p) )
        {
            for ( size_t o = 0; o < len; o += chunk )
                EVP_MAC_update(c, buf + o, chunk);
            EVP_MAC_final(c, out, &ol, sizeof(out));
            r = gbps(len, now_ns() - t);
        }
        EVP_MAC_CTX_free(c);
        EVP_MAC_free(mac);
    }
    else
    {
        EVP_MD *md = EVP_MD_fetch(NULL, name, NULL);
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        unsigned int ol;

        t = now_ns();
        if ( md && c && EVP_DigestInit_ex(c, md, NULL) )
        {
            for ( size_t o = 0; o < len; o += chunk )
                EVP_DigestUpdate(c, buf + o, chunk);
            EVP_DigestFinal_ex(c, out, &ol);
            r = gbps(len, now_ns() - t);
        }
        EVP_MD_CTX_free(c);
        EVP_MD_free(md);
    }
    return r;
}

/* The stream library's own digest path: sr_io writes to /dev/null. */
static double measure_sr_io_digest(const uint8_t *buf, size_t len)
{
    const size_t chunk = 4 * MiB;
    uint8_t out[SR_SHA256_LEN];
    struct sr_io *io = NULL;
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    uint64_t t;
    double r = 0;

    if ( fd < 0 || sr_io_open_fd(&io, fd, true) )
    {
        if ( fd >= 0 )
            close(fd);
        return 0;
    }
    t = now_ns();
    /* A digest that starts at an xl header, as the engines' do. */
    if ( !sr_io_hash_start(io) &&
         !sr_write_xl_hdr(io, SR_XL_FLAG_STREAMV2, NULL, 0) )
    {
        for ( size_t o = 0; o < len; o += chunk )
            sr_io_write(io, buf + o, chunk);
        if ( !sr_io_hash_final(io, out) )
            r = gbps(len, now_ns() - t);
    }
    sr_io_close(io);
    return r;
}

struct tcp_sink
{
    int fd;
    uint64_t bytes;
};

static void *tcp_sink_main(void *arg)
{
    struct tcp_sink *s = arg;
    const size_t len = 4 * MiB;
    uint8_t *buf = malloc(len);
    ssize_t n;

    if ( buf )
    {
        populate(buf, len, true);
        while ( (n = read(s->fd, buf, len)) > 0 )
            s->bytes += n;
    }
    free(buf);
    return NULL;
}

/* A plain copy over loopback TCP: one thread writes, one reads. */
static double measure_loopback(size_t total)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof(sa);
    const size_t len = 4 * MiB;
    struct tcp_sink sink = { .fd = -1 };
    int lfd, cfd = -1;
    pthread_t th;
    uint8_t *buf = NULL;
    uint64_t t, seed = 3;
    double r = 0;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if ( lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
         listen(lfd, 1) || getsockname(lfd, (struct sockaddr *)&sa, &sl) )
        goto out;
    cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if ( cfd < 0 || connect(cfd, (struct sockaddr *)&sa, sizeof(sa)) )
        goto out;
    if ( (sink.fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0 ||
         !(buf = malloc(len)) )
        goto out;
    fill_random(buf, len, &seed);
    if ( pthread_create(&th, NULL, tcp_sink_main, &sink) )
        goto out;
    t = now_ns();
    for ( size_t done = 0; done < total; )
    {
        ssize_t n = write(cfd, buf, len);

        if ( n <= 0 )
            break;
        done += n;
    }
    shutdown(cfd, SHUT_WR);
    pthread_join(th, NULL);
    r = gbps(sink.bytes, now_ns() - t);
 out:
    free(buf);
    if ( sink.fd >= 0 )
        close(sink.fd);
    if ( cfd >= 0 )
        close(cfd);
    if ( lfd >= 0 )
        close(lfd);
    return r;
}

/* ------------------------------------------------------------------------
 * Hosts: ferry-hv daemons of our own
 * ------------------------------------------------------------------------ */

struct host
{
    char dir[PATH_MAX];
    pid_t pid;          /* from its pid file; 0: not running */
};

static char top_builddir[PATH_MAX];
static char tmp_dir[PATH_MAX / 2];
static struct host *all_hosts[8];
static unsigned int nr_hosts;

static int run_wait(char *const argv[], bool quiet)
{
    pid_t pid = fork();
    int st;

    if ( pid < 0 )
        return -1;
    if ( pid == 0 )
    {
        if ( quiet )
        {
            int fd = open("/dev/null", O_WRONLY);

            if ( fd >= 0 )
            {
                dup2(fd, 1);
                dup2(fd, 2);
            }
        }
        execv(argv[0], argv);
        _exit(127);
    }
    while ( waitpid(pid, &st, 0) < 0 )
        if ( errno != EINTR )
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * The fleet key every host of this run shares (as ferry-creds(8) would
 * install it), so that tcp:// migrations authenticate as in production.
 */
static int install_fleet_key(const char *dir)
{
    static char hex[65];
    char path[PATH_MAX + 16];
    int fd, ok;

    if ( !hex[0] )
    {
        unsigned char k[32];
        int r = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

        if ( r < 0 || read(r, k, sizeof(k)) != (ssize_t)sizeof(k) )
        {
            if ( r >= 0 )
                close(r);
            return -1;
        }
        close(r);
        for ( int i = 0; i < 32; i++ )
            snprintf(hex + 2 * i, 3, "%02x", k[i]);
    }
    if ( mkdir(dir, 0700) < 0 && errno != EEXIST )
        return -1;
    snprintf(path, sizeof(path), "%s/migrate.key", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if ( fd < 0 )
        return -1;
    ok = dprintf(fd, "%s\n", hex) == 65;
    return close(fd) == 0 && ok ? 0 : -1;
}

/*
 * ferry-hv returns once the daemon serves its socket (see ferry-hv(8)).
 * port > 0: it also listens for migrations on 127.0.0.1:port, running
 * our xl for each.
 */
static int host_start(struct host *h, const char *name, uint64_t mem_mib,
                      int port)
{
    char hv[PATH_MAX + 32], mem[32], pidf[PATH_MAX + 16];
    char o_dir[] = "--run-dir", o_mem[] = "--memory", o_xl[] = "--xl";
    char o_l[] = "--migrate-listen", xl[PATH_MAX + 16], listen[64];
    char *argv[] = { hv, o_dir, h->dir, o_mem, mem, o_xl, xl, o_l, listen,
                     NULL };
    FILE *f;
    long pid = 0;

    snprintf(hv, sizeof(hv), "%s/hypervisor/ferry-hv", top_builddir);
    snprintf(h->dir, sizeof(h->dir), "%s/%.32s", tmp_dir, name);
    snprintf(mem, sizeof(mem), "%" PRIu64 "M", mem_mib);
    snprintf(xl, sizeof(xl), "%s/xl/xl", top_builddir);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    if ( port <= 0 )
        argv[5] = NULL;
    if ( install_fleet_key(h->dir) || run_wait(argv, false) != 0 )
        return -1;
    snprintf(pidf, sizeof(pidf), "%s/ferry-hv.pid", h->dir);
    if ( !(f = fopen(pidf, "r")) )
        return -1;
    if ( fscanf(f, "%ld", &pid) != 1 )
        pid = 0;
    fclose(f);
    if ( pid <= 0 )
        return -1;
    h->pid = (pid_t)pid;
    if ( nr_hosts < sizeof(all_hosts) / sizeof(all_hosts[0]) )
        all_hosts[nr_hosts++] = h;
    return 0;
}

/* Stop two daemons at once (they are not our children: poll until they
 * are gone; SIGKILL after 10 s). */
static void hosts_stop(struct host *a, struct host *b)
{
    struct host *h[2] = { a, b };

    for ( int k = 0; k < 2; k++ )
        if ( h[k] && h[k]->pid > 0 )
            kill(h[k]->pid, SIGTERM);
    for ( int k = 0; k < 2; k++ )
    {
        if ( !h[k] || h[k]->pid <= 0 )
            continue;
        for ( int i = 0; i < 1000 && !kill(h[k]->pid, 0); i++ )
            usleep(10000);
        if ( !kill(h[k]->pid, 0) )
            kill(h[k]->pid, SIGKILL);
        h[k]->pid = 0;
    }
}

static void host_stop(struct host *h)
{
    hosts_stop(h, NULL);
}

static void stop_all_hosts(void)
{
    for ( unsigned int i = 0; i < nr_hosts; i++ )
        host_stop(all_hosts[i]);
    nr_hosts = 0;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st; (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Remove the run directories, config files and save files we made. */
static void remove_tmp_dir(void)
{
    nftw(tmp_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void on_signal(int sig)
{
    stop_all_hosts();
    remove_tmp_dir();
    signal(sig, SIG_DFL);
    raise(sig);
}

static xc_interface *host_open(const struct host *h)
{
    return xc_interface_open(h->dir, xc_stderr_logger(XC_ERROR));
}

/* ------------------------------------------------------------------------
 * The domain under test
 * ------------------------------------------------------------------------ */

struct dom
{
    uint32_t domid;
    uint64_t mib;
    uint8_t uuid[16];
    char *json;
    uint64_t first_free_pfn;
    uint64_t filled_pages;
};

static void *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    void *buf = NULL;
    long n;

    if ( !f )
        return NULL;
    if ( !fseek(f, 0, SEEK_END) && (n = ftell(f)) > 0 &&
         !fseek(f, 0, SEEK_SET) && (buf = malloc(n)) &&
         fread(buf, 1, n, f) != (size_t)n )
    {
        free(buf);
        buf = NULL;
    }
    else if ( buf )
        *len = n;
    fclose(f);
    return buf;
}

/* The domain's JSON config, as xl would have stored it. */
static char *config_json(const char *name, const char *kernel, uint64_t mib,
                         const char *cmdline, uint8_t uuid[16])
{
    struct ferry_domain_config dc;
    struct xlcfg_error err;
    char path[PATH_MAX + 16];
    char *json = NULL;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s.cfg", tmp_dir, name);
    if ( !(f = fopen(path, "w")) )
        return NULL;
    fprintf(f, "name = \"%s\"\nmemory = %" PRIu64 "\nvcpus = 1\n"
            "kernel = \"%s\"\n", name, mib, kernel);
    if ( cmdline )
        fprintf(f, "cmdline = \"%s\"\n", cmdline);
    fprintf(f, "on_crash = \"preserve\"\n");
    fclose(f);
    ferry_domain_config_init(&dc);
    if ( !ferry_domain_config_load(&dc, path, NULL, 0, NULL, &err) )
    {
        json = ferry_domain_config_to_json(&dc);
        memcpy(uuid, dc.uuid, 16);
    }
    else
        note("config: %s", err.msg);
    ferry_domain_config_dispose(&dc);
    return json;
}

/* Build a domain of mib MiB running a shipped guest, paused. */
static int dom_build(xc_interface *xch, struct dom *d, const char *name,
                     uint64_t mib, const char *guest, const char *cmdline)
{
    char img[PATH_MAX + 32];
    struct xc_dom_args args = { .cmdline = cmdline };
    struct xc_dom_result res;
    void *image;
    int rc = -1;

    snprintf(img, sizeof(img), "%s/guests/%s.img", top_builddir, guest);
    d->mib = mib;
    d->domid = DOMID_ANY;
    if ( !(image = read_whole(img, &args.image_len)) )
    {
        note("cannot read %s", img);
        return -1;
    }
    if ( !(d->json = config_json(name, img, mib, cmdline, d->uuid)) )
        goto out;
    if ( xc_domain_create(xch, &d->domid, 1, d->uuid) )
    {
        d->domid = DOMID_ANY;
        goto out;
    }
    args.image = image;
    args.nr_pages = mib << 8;
    if ( xc_domain_set_meta(xch, d->domid, name, d->json,
                            strlen(d->json)) ||
         xc_domain_setmaxmem(xch, d->domid, mib * 1024) ||
         xc_dom_build_pv(xch, d->domid, &args, &res) )
        goto out;
    d->first_free_pfn = res.first_free_pfn;
    rc = 0;
 out:
    free(image);
    return rc;
}

/*
 * Fill the free PFNs with random bytes: find the domain's frames through
 * the M2P (the frames it owns map; the others fail with -EPERM), and
 * write those whose PFN is at or past first_free_pfn.
 */
static int dom_fill(xc_interface *xch, struct dom *d)
{
    const uint64_t *m2p = xc_m2p(xch);
    uint64_t max = xc_max_page(xch), seed = 0x5eed ^ d->mib;
    xen_pfn_t mfns[MAP_BATCH];
    void *ptrs[MAP_BATCH];
    int errs[MAP_BATCH];

    d->filled_pages = 0;
    for ( uint64_t base = 0; base < max; base += MAP_BATCH )
    {
        unsigned int n = max - base < MAP_BATCH ? max - base : MAP_BATCH;

        for ( unsigned int i = 0; i < n; i++ )
            mfns[i] = base + i;
        if ( xc_map_foreign_frames(xch, d->domid, XC_MAP_WRITE, mfns, n,
                                   ptrs, errs) < 0 )
            return -1;
        for ( unsigned int i = 0; i < n; i++ )
        {
            uint64_t pfn = m2p[base + i];
            unsigned int run = 1;

            if ( !ptrs[i] || pfn < d->first_free_pfn || pfn >= d->mib << 8 )
                continue;
            /* One populate call for a run of adjacent frames. */
            while ( i + run < n && ptrs[i + run] &&
                    m2p[base + i + run] >= d->first_free_pfn &&
                    m2p[base + i + run] < d->mib << 8 )
                run++;
            populate(ptrs[i], (size_t)run * 4096, true);
            fill_random(ptrs[i], (size_t)run * 4096, &seed);
            d->filled_pages += run;
            i += run - 1;
        }
    }
    return 0;
}

static bool dom_is_suspended(xc_interface *xch, uint32_t domid)
{
    xc_domaininfo_t info;

    return !xc_domain_getinfo_single(xch, domid, &info) &&
           (info.flags & XEN_DOMINF_shutdown) &&
           ((info.flags >> XEN_DOMINF_shutdownshift) &
            XEN_DOMINF_shutdownmask) == SHUTDOWN_suspend;
}

/* Ask the guest to suspend itself (it acts within 100 ms) and wait. */
static int dom_suspend(xc_interface *xch, uint32_t domid)
{
    if ( xc_domain_shutdown_request(xch, domid, SHUTDOWN_suspend) )
        return -1;
    for ( int i = 0; i < 600; i++ )
    {
        if ( dom_is_suspended(xch, domid) )
            return 0;
        usleep(50000);
    }
    return -1;
}

/* ------------------------------------------------------------------------
 * Save and restore through the real engines
 * ------------------------------------------------------------------------ */

struct op_result
{
    bool ok;
    uint64_t ns;
    uint64_t cpu;               /* this process's CPU time */
    uint64_t bytes;
    char msg[512];
};

/* One save of the suspended domain to /dev/null or to an atomic file,
 * from a fresh connection to the host (as an xl process). */
static void op_save(const struct host *h, const struct dom *d,
                    const char *path, struct op_result *o)
{
    struct sr_save_args a = {
        .domid = d->domid, .config_json = d->json, .trailer = true,
    };
    struct sr_io *io = NULL;
    xc_interface *xch;
    uint64_t t, c;
    int rc, fd = -1;

    memset(o, 0, sizeof(*o));
    if ( !(xch = host_open(h)) )
    {
        snprintf(o->msg, sizeof(o->msg), "cannot open host %.200s", h->dir);
        return;
    }
    a.xch = xch;
    t = now_ns();
    c = cpu_ns();
    if ( path )
        rc = sr_io_open_atomic(&io, path);
    else if ( (fd = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0 )
        rc = -errno;
    else
        rc = sr_io_open_fd(&io, fd, true);
    if ( rc )
    {
        if ( fd >= 0 )
            close(fd);
        snprintf(o->msg, sizeof(o->msg), "open: %s", strerror(-rc));
        goto out;
    }
    rc = sr_save_domain(io, &a, o->msg, sizeof(o->msg));
    o->bytes = sr_io_offset(io);
    if ( rc )
        sr_io_abort(io);
    else if ( path )
        rc = sr_io_commit(io);
    else
        rc = sr_io_close(io);
    o->ns = now_ns() - t;
    o->cpu = cpu_ns() - c;
    if ( rc && !o->msg[0] )
        snprintf(o->msg, sizeof(o->msg), "%s", strerror(-rc));
    o->ok = !rc;
 out:
    xc_interface_close(xch);
}

/* Restore the file into a new paused domain on h, then destroy it. */
static void op_restore(const struct host *h, const struct dom *d,
                       const char *path, struct op_result *o)
{
    struct sr_restore_args a = {
        .paused = true, .max_vcpus = 1, .max_memkb = d->mib * 1024,
        .admitted_memkb = d->mib * 1024,    /* the bench's own file */
    };
    struct sr_restore_result r = { 0 };
    struct sr_io *io = NULL;
    xc_interface *xch;
    uint64_t t, c;
    int rc, fd;

    memset(o, 0, sizeof(*o));
    memcpy(a.uuid, d->uuid, sizeof(a.uuid));
    if ( !(xch = host_open(h)) )
    {
        snprintf(o->msg, sizeof(o->msg), "cannot open host %.200s", h->dir);
        return;
    }
    a.xch = xch;
    t = now_ns();
    c = cpu_ns();
    if ( (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 ||
         (rc = sr_io_open_fd(&io, fd, true)) )
    {
        snprintf(o->msg, sizeof(o->msg), "open %.200s: %s", path,
                 strerror(errno));
        if ( fd >= 0 )
            close(fd);
        goto out;
    }
    rc = sr_restore_domain(io, &a, &r, o->msg, sizeof(o->msg));
    o->bytes = sr_io_offset(io);
    sr_io_close(io);
    o->ns = now_ns() - t;
    o->cpu = cpu_ns() - c;
    o->ok = !rc && r.digest_checked;
    if ( !rc && !r.digest_checked )
        snprintf(o->msg, sizeof(o->msg), "the digest was not checked");
    if ( !rc )
    {
        note("restore: last page %.3f s, finish %.3f s after it",
             secs(r.t_last_page_ns - t), secs(r.t_done_ns - r.t_last_page_ns));
        xc_domain_destroy(xch, r.domid);
    }
    free(r.config_json);
 out:
    xc_interface_close(xch);
}

/* ------------------------------------------------------------------------
 * One domain size: build, fill, save x2 to /dev/null, save to a file,
 * restore from it
 * ------------------------------------------------------------------------ */

struct yardsticks
{
    double memcpy_gbps;
    double disk_gbps;
    double tcp_gbps;
};

struct size_result
{
    uint64_t mib;
    bool done;
    uint64_t ns_null, ns_file, ns_restore;
};

static const char *size_name(uint64_t mib, char *buf, size_t len)
{
    if ( mib % 1024 == 0 )
        snprintf(buf, len, "%" PRIu64 " GiB", mib / 1024);
    else
        snprintf(buf, len, "%" PRIu64 " MiB", mib);
    return buf;
}

static int free_port(void);
static bool xl_has_migrate(void);
static void migration_rows(const struct host *a, const struct host *b,
                           int port, uint64_t mib, bool have,
                           const struct yardsticks *y);

/* mig: also the three migrations of this size, with the same hosts. */
static void bench_size(uint64_t mib, const struct yardsticks *y,
                       const char *file_dir, struct size_result *sr,
                       bool mig)
{
    struct host a = { .pid = 0 }, b = { .pid = 0 };
    struct dom d = { .domid = DOMID_ANY };
    struct op_result o1, o2, of, orr;
    char sz[32], path[PATH_MAX + 32], fig[64], why[64] = "";
    uint64_t host_mib = mib + mib / 16 + 64, t;
    xc_interface *xch = NULL;
    char an[16], bn[16];
    int port = 0;

    size_name(mib, sz, sizeof(sz));
    memset(sr, 0, sizeof(*sr));
    sr->mib = mib;
    snprintf(an, sizeof(an), "A%" PRIu64, mib);
    snprintf(bn, sizeof(bn), "B%" PRIu64, mib);
    snprintf(path, sizeof(path), "%s/bench-%" PRIu64 ".save", file_dir, mib);
    memset(&o1, 0, sizeof(o1));
    o2 = of = orr = o1;

    t = now_ns();
    port = mig ? free_port() : 0;
    if ( host_start(&a, an, host_mib, 0) ||
         host_start(&b, bn, host_mib, port) )
    {
        snprintf(why, sizeof(why), "cannot start ferry-hv");
        goto out;
    }
    note("%s: two hosts of %" PRIu64 " MiB up in %.2f s", sz, host_mib,
         secs(now_ns() - t));
    if ( !(xch = host_open(&a)) )
    {
        snprintf(why, sizeof(why), "cannot open host A");
        goto out;
    }
    t = now_ns();
    if ( dom_build(xch, &d, "bench", mib, "idle", NULL) )
    {
        snprintf(why, sizeof(why), "cannot build the domain");
        goto out;
    }
    note("%s: domain %u built in %.2f s", sz, d.domid, secs(now_ns() - t));
    t = now_ns();
    if ( dom_fill(xch, &d) )
    {
        snprintf(why, sizeof(why), "cannot fill the domain");
        goto out;
    }
    note("%s: %" PRIu64 " pages (%.0f MiB) filled with random bytes in "
         "%.2f s", sz, d.filled_pages, d.filled_pages / 256.0,
         secs(now_ns() - t));
    if ( xc_domain_unpause(xch, d.domid) || dom_suspend(xch, d.domid) )
    {
        snprintf(why, sizeof(why), "the domain did not suspend");
        goto out;
    }

    /* Twice to /dev/null: the second shows the cost without the first
     * touches of the kernel's page tables of the shared memory. */
    op_save(&a, &d, NULL, &o1);
    op_save(&a, &d, NULL, &o2);
    op_save(&a, &d, path, &of);
    if ( of.ok )
        op_restore(&b, &d, path, &orr);
    note("%s: save to /dev/null %.3f s and %.3f s, to file %.3f s, restore "
         "%.3f s; stream %" PRIu64 " bytes", sz, secs(o1.ns), secs(o2.ns),
         secs(of.ns), secs(orr.ns), of.bytes);
    note("%s: CPU time of this process: %.3f s, %.3f s, %.3f s, %.3f s",
         sz, secs(o1.cpu), secs(o2.cpu), secs(of.cpu), secs(orr.cpu));
    for ( const struct op_result *o = &o1; o; o = o == &o1 ? &o2 : o == &o2
          ? &of : o == &of ? &orr : NULL )
        if ( !o->ok && o->msg[0] )
            note("%s: failed: %s", sz, o->msg);
    sr->done = o1.ok && of.ok && orr.ok;
    sr->ns_null = o1.ns;
    sr->ns_file = of.ns;
    sr->ns_restore = orr.ns;
 out:
    if ( why[0] )
        note("%s: %s", sz, why);
    snprintf(fig, sizeof(fig), "save %s to /dev/null (digest on)", sz);
    if ( o1.ok )
        row_rate(fig, o1.bytes, o1.ns, y->memcpy_gbps, "memcpy", 0.25);
    else
        row_na(fig, ">= 0.25x", why[0] ? why : "save failed");
    snprintf(fig, sizeof(fig), "save %s to disk file, fsync", sz);
    if ( of.ok )
        row_rate(fig, of.bytes, of.ns, y->disk_gbps, "disk write", 0.8);
    else
        row_na(fig, ">= 0.80x", why[0] ? why : "save failed");
    snprintf(fig, sizeof(fig), "restore %s from cached file", sz);
    if ( orr.ok )
        row_rate(fig, orr.bytes, orr.ns, y->memcpy_gbps, "memcpy", 0.2);
    else
        row_na(fig, ">= 0.20x", why[0] ? why : "restore failed");
    if ( xch )
    {
        if ( d.domid != DOMID_ANY )
            xc_domain_destroy(xch, d.domid);
        xc_interface_close(xch);
    }
    free(d.json);
    unlink(path);
    if ( mig )
        migration_rows(&a, &b, why[0] ? -1 : port, mib, xl_has_migrate(),
                       y);
    hosts_stop(&a, &b);
    nr_hosts = 0;
}

/* The bigger size's time over the smaller's, against their size ratio. */
static void linearity_rows(const struct size_result *s, unsigned int n)
{
    static const char *const what[] = { "save to /dev/null", "save to file",
                                        "restore" };

    for ( unsigned int k = 0; k < 3; k++ )
    {
        const struct size_result *lo = &s[0], *hi = &s[n - 1];
        char a[32], b[32], fig[64];
        struct row *r;
        uint64_t nlo, nhi;
        double want, got;

        snprintf(fig, sizeof(fig), "%.17s time %.9s / %.9s", what[k],
                 size_name(hi->mib, a, sizeof(a)),
                 size_name(lo->mib, b, sizeof(b)));
        if ( n < 2 || !lo->done || !hi->done )
        {
            row_na(fig, "linear", "sizes not both measured");
            continue;
        }
        nlo = k == 0 ? lo->ns_null : k == 1 ? lo->ns_file : lo->ns_restore;
        nhi = k == 0 ? hi->ns_null : k == 1 ? hi->ns_file : hi->ns_restore;
        want = (double)hi->mib / lo->mib;
        got = nlo ? (double)nhi / nlo : 0;
        r = row_new("%s", fig);
        snprintf(r->value, sizeof(r->value), "%.2f", got);
        snprintf(r->ratio, sizeof(r->ratio), "size ratio %.0f", want);
        snprintf(r->aim, sizeof(r->aim), "<= %.1f", want * 1.15);
        r->result = got <= want * 1.15 ? "met" : "NOT MET";
    }
}

/* ------------------------------------------------------------------------
 * Live migration over loopback (xl migrate --json)
 * ------------------------------------------------------------------------ */

static bool xl_has_migrate(void)
{
    char cmd[PATH_MAX + 64];
    char line[256];
    bool found = false;
    FILE *p;

    /* A few tries: another build may be replacing xl right now. */
    snprintf(cmd, sizeof(cmd), "'%s/xl/xl' 2>&1", top_builddir);
    for ( int i = 0; i < 3 && !found; i++ )
    {
        if ( i )
            sleep(1);
        if ( !(p = popen(cmd, "r")) )
            continue;
        while ( fgets(line, sizeof(line), p) )
            if ( !strncmp(line, " migrate ", 9) )
                found = true;
        pclose(p);
    }
    return found;
}

/* A free loopback port (bound then released: the listener binds it). */
static int free_port(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ( fd >= 0 && !bind(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
         !getsockname(fd, (struct sockaddr *)&sa, &sl) )
        port = ntohs(sa.sin_port);
    if ( fd >= 0 )
        close(fd);
    return port;
}

/* Number member key of the object o; -1 if absent or not a number. */
static double json_num(struct json_object *o, const char *key)
{
    uint64_t v;

    return xlcfg_json_get_u64(o, key, &v) ? -1 : (double)v;
}

struct mig_result
{
    bool ok;
    double total_ms, downtime_ms, iterations, bytes, resent, finish_ms;
    char why[96];
};

/* Run xl -H A migrate --json NAME tcp://127.0.0.1:PORT; read its summary. */
static void run_migrate(const struct host *a, int port, const char *name,
                        struct mig_result *m)
{
    char cmd[3 * PATH_MAX], line[4096];
    bool summary = false;
    FILE *p;
    int st;

    snprintf(cmd, sizeof(cmd), "'%s/xl/xl' -H '%s' migrate --json %s "
             "tcp://127.0.0.1:%d 2>'%s/migrate.err'", top_builddir, a->dir,
             name, port, tmp_dir);
    if ( !(p = popen(cmd, "r")) )
    {
        snprintf(m->why, sizeof(m->why), "cannot run xl migrate");
        return;
    }
    while ( fgets(line, sizeof(line), p) )
    {
        struct json_object *o = NULL;
        const char *v;

        if ( !xlcfg_json_parse("xl migrate", line, strlen(line), &o,
                               NULL) &&
             !xlcfg_json_get_string(o, "event", &v) &&
             !strcmp(v, "summary") )
        {
            summary = true;
            m->ok = !xlcfg_json_get_string(o, "status", &v) &&
                    !strcmp(v, "ok");
            m->total_ms = json_num(o, "total-time");
            m->downtime_ms = json_num(o, "downtime");
            m->iterations = json_num(o, "iterations");
            m->bytes = json_num(o, "transferred");
            m->resent = json_num(o, "pages_resent");
            m->finish_ms = json_num(o, "receiver_finish_ms");
        }
        json_object_put(o);
    }
    st = pclose(p);
    if ( !summary )
        snprintf(m->why, sizeof(m->why), "no summary (xl status %d)",
                 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    else if ( !m->ok )
        snprintf(m->why, sizeof(m->why), "migration failed");
}

/* One migration A -> B of a fresh domain dirtying at rate k; B is left
 * empty again. */
static void migrate_one(const struct host *a, const struct host *b,
                        int port, uint64_t mib, unsigned int k,
                        const struct yardsticks *y)
{
    static const char *const rate_name[] = { "0", "100M", "1G" };
    struct dom d = { .domid = DOMID_ANY };
    struct mig_result m = { .ok = false };
    char sz[32], fig[64], cmdline[64];
    uint64_t wss = mib / 4;
    xc_interface *xch = NULL, *xchb;
    struct row *r;
    FILE *f;

    size_name(mib, sz, sizeof(sz));
    if ( port <= 0 || !(xch = host_open(a)) )
    {
        snprintf(m.why, sizeof(m.why), "no hosts");
        goto out;
    }
    /* Rate 0: an idle guest (nothing dirtied); else memdirty over a
     * quarter of memory at the rate.  The rest is random either way. */
    snprintf(cmdline, sizeof(cmdline), "wss=%" PRIu64 "M rate=%s",
             wss ? wss : 1, rate_name[k]);
    if ( dom_build(xch, &d, "mbench", mib, k ? "memdirty" : "idle",
                   k ? cmdline : NULL) ||
         dom_fill(xch, &d) || xc_domain_unpause(xch, d.domid) )
    {
        snprintf(m.why, sizeof(m.why), "cannot build the domain");
        goto out;
    }
    usleep(300000);             /* memdirty reaches its rate */
    run_migrate(a, port, "mbench", &m);
    /* 127: another build was replacing xl just then; the domain is
     * still on A (nothing ran), so try once more. */
    if ( !m.ok && strstr(m.why, "status 127") )
    {
        sleep(2);
        memset(&m, 0, sizeof(m));
        run_migrate(a, port, "mbench", &m);
    }
    if ( m.ok )
        note("migrate %s dirty %s/s: total %.0f ms, downtime %.0f ms, "
             "%.0f iterations, %.0f MB sent, %.0f pages resent, receiver "
             "finish %.0f ms", sz, rate_name[k], m.total_ms, m.downtime_ms,
             m.iterations, m.bytes / 1e6, m.resent, m.finish_ms);
    else
    {
        char err[512] = "", path[PATH_MAX + 16];

        snprintf(path, sizeof(path), "%s/migrate.err", tmp_dir);
        if ( (f = fopen(path, "r")) )
        {
            if ( !fgets(err, sizeof(err), f) )
                err[0] = '\0';
            fclose(f);
        }
        note("migrate %s dirty %s/s: %s: %s", sz, rate_name[k], m.why, err);
    }
 out:
    snprintf(fig, sizeof(fig), "migrate %s dirty %s/s: throughput", sz,
             rate_name[k]);
    if ( m.ok && m.total_ms > 0 )
        row_rate(fig, (uint64_t)m.bytes, (uint64_t)(m.total_ms * 1e6),
                 y->tcp_gbps, "loopback", 0.8);
    else
        row_na(fig, ">= 0.80x", m.why[0] ? m.why : "not run");
    snprintf(fig, sizeof(fig), "migrate %s dirty %s/s: downtime", sz,
             rate_name[k]);
    if ( m.ok )
    {
        double aim = mib <= 1024 ? (k == 0 ? 5 : k == 1 ? 20 : 0) : 0;

        r = row_new("%s", fig);
        snprintf(r->value, sizeof(r->value), "%.0f ms", m.downtime_ms);
        snprintf(r->ratio, sizeof(r->ratio), "finish %.0f ms, %.0f it",
                 m.finish_ms, m.iterations);
        if ( aim > 0 )
        {
            snprintf(r->aim, sizeof(r->aim), "<= %.0f ms", aim);
            r->result = m.downtime_ms <= aim ? "met" : "NOT MET";
        }
    }
    else
        row_na(fig, k == 0 ? "<= 5 ms" : k == 1 ? "<= 20 ms" : "-",
               m.why[0] ? m.why : "not run");
    /* Whatever happened, neither host keeps the domain. */
    if ( xch )
    {
        if ( d.domid != DOMID_ANY )
            xc_domain_destroy(xch, d.domid);
        xc_interface_close(xch);
    }
    if ( (xchb = host_open(b)) )
    {
        xc_domaininfo_t info[16];
        int nr = xc_domain_getinfolist(xchb, 1, 16, info);

        for ( int i = 0; i < nr; i++ )
            xc_domain_destroy(xchb, info[i].domain);
        xc_interface_close(xchb);
    }
    free(d.json);
}

/* The migration lines of a size, run (have) or not. */
static void migration_rows(const struct host *a, const struct host *b,
                           int port, uint64_t mib, bool have,
                           const struct yardsticks *y)
{
    static const char *const rates[] = { "0", "100M", "1G" };
    char sz[32], fig[64];

    for ( unsigned int k = 0; k < 3; k++ )
    {
        if ( have )
        {
            migrate_one(a, b, port, mib, k, y);
            continue;
        }
        size_name(mib, sz, sizeof(sz));
        snprintf(fig, sizeof(fig), "migrate %s dirty %s/s: throughput",
                 sz, rates[k]);
        row_na(fig, ">= 0.80x", "xl has no migrate verb yet");
        snprintf(fig, sizeof(fig), "migrate %s dirty %s/s: downtime",
                 sz, rates[k]);
        row_na(fig, k == 0 ? "<= 5 ms" : k == 1 ? "<= 20 ms" : "-",
               "xl has no migrate verb yet");
    }
}

/* ------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: ferry-bench [--quick] [--sizes MIB,MIB] [--dir DIR]\n"
            "  --quick       small domains (16 and 64 MiB; migration 16 MiB "
            "only):\n                checks that it runs\n"
            "  --sizes LIST  domain sizes, MiB without a unit (1024,4G)\n"
            "  --dir DIR     where save files go (default $TMPDIR or "
            "/var/tmp)\n"
            "  --no-migrate  skip live migration\n");
}

static int find_builddir(void)
{
    char exe[PATH_MAX], *slash;
    ssize_t n;

    if ( getenv("top_builddir") )
    {
        snprintf(top_builddir, sizeof(top_builddir), "%s",
                 getenv("top_builddir"));
        return 0;
    }
    if ( (n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) < 0 )
        return -1;
    exe[n] = '\0';
    /* .../bench/ferry-bench -> ... */
    for ( int i = 0; i < 2; i++ )
    {
        if ( !(slash = strrchr(exe, '/')) )
            return -1;
        *slash = '\0';
    }
    snprintf(top_builddir, sizeof(top_builddir), "%s", exe);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "quick", no_argument, NULL, 'q' },
        { "sizes", required_argument, NULL, 's' },
        { "dir", required_argument, NULL, 'd' },
        { "no-migrate", no_argument, NULL, 'M' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    uint64_t sizes[8] = { 1024, 4096 };
    unsigned int nr_sizes = 2;
    struct size_result res[8];
    struct yardsticks y;
    const char *dir = NULL;
    char file_dir[PATH_MAX];
    bool quick = false, migrate = true;
    size_t ylen;
    uint8_t *buf;
    uint64_t seed = 11;
    int c;

    while ( (c = getopt_long(argc, argv, "qs:d:Mh", longopts, NULL)) != -1 )
    {
        switch ( c )
        {
        case 'q':
            quick = true;
            sizes[0] = 16;
            sizes[1] = 64;
            break;
        case 's':
        {
            /* Sizes as everywhere (common/size.h), MiB without a unit. */
            char list[256], *tok, *save = NULL;
            uint64_t bytes;

            snprintf(list, sizeof(list), "%s", optarg);
            nr_sizes = 0;
            for ( tok = strtok_r(list, ",", &save); tok && nr_sizes < 8;
                  tok = strtok_r(NULL, ",", &save) )
            {
                int rc = ferry_parse_size(tok, SIZE_DEFAULT_MIB, &bytes);

                if ( rc || !bytes || bytes % (1 << 20) )
                {
                    fprintf(stderr, "ferry-bench: --sizes: '%s' %s\n", tok,
                            rc ? ferry_size_error(rc)
                               : "is not a whole number of MiB, at least 1");
                    return 2;
                }
                sizes[nr_sizes++] = bytes >> 20;
            }
            break;
        }
        case 'd':
            dir = optarg;
            break;
        case 'M':
            migrate = false;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if ( find_builddir() )
    {
        fprintf(stderr, "ferry-bench: cannot find the build directory\n");
        return 1;
    }
    if ( !dir )
        dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
    snprintf(tmp_dir, sizeof(tmp_dir), "%s/ferry-bench.XXXXXX", dir);
    if ( !mkdtemp(tmp_dir) )
    {
        fprintf(stderr, "ferry-bench: cannot create a directory in %s: %s\n",
                dir, strerror(errno));
        return 1;
    }
    snprintf(file_dir, sizeof(file_dir), "%s", tmp_dir);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    setvbuf(stdout, NULL, _IOLBF, 0);

    note("ferry-bench: build %s, files in %s", top_builddir, tmp_dir);
    ylen = quick ? 64 * MiB : 256 * MiB;
    y.memcpy_gbps = measure_memcpy(ylen);
    y.disk_gbps = measure_disk(file_dir, quick ? 64 * MiB : GiB);
    y.tcp_gbps = migrate ? measure_loopback(quick ? 128 * MiB : 2 * GiB) : 0;
    {
        struct row *r = row_new("yardstick: memcpy, one thread");

        snprintf(r->value, sizeof(r->value), "%.2f GB/s", y.memcpy_gbps);
        r = row_new("yardstick: durable file write");
        snprintf(r->value, sizeof(r->value), "%.2f GB/s", y.disk_gbps);
        r = row_new("yardstick: loopback TCP copy");
        snprintf(r->value, sizeof(r->value), "%.2f GB/s", y.tcp_gbps);
    }
    if ( (buf = malloc(ylen)) )
    {
        static const char *const algs[] = { "SHA256", "SHA1", "BLAKE2B-512",
                                            "GMAC", "POLY1305" };

        populate(buf, ylen, true);
        fill_random(buf, ylen, &seed);
        for ( unsigned int i = 0; i < 5; i++ )
        {
            struct row *r = row_new("digest speed: %s", algs[i]);
            double v = measure_digest(algs[i], buf, ylen);

            snprintf(r->value, sizeof(r->value), "%.2f GB/s", v);
            snprintf(r->ratio, sizeof(r->ratio), "%.3fx memcpy",
                     y.memcpy_gbps > 0 ? v / y.memcpy_gbps : 0);
        }
        {
            struct row *r = row_new("digest speed: sr_io, as the engines hash");
            double v = measure_sr_io_digest(buf, ylen);

            snprintf(r->value, sizeof(r->value), "%.2f GB/s", v);
            snprintf(r->ratio, sizeof(r->ratio), "%.3fx memcpy",
                     y.memcpy_gbps > 0 ? v / y.memcpy_gbps : 0);
        }
        free(buf);
    }

    /* --quick: one size is enough to show that migration runs. */
    for ( unsigned int i = 0; i < nr_sizes; i++ )
        bench_size(sizes[i], &y, file_dir, &res[i],
                   migrate && (!quick || i == 0));
    linearity_rows(res, nr_sizes);

    stop_all_hosts();
    remove_tmp_dir();
    print_table();
    return 0;
}
