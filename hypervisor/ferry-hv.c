/* SPDX-License-Identifier: MIT */
/*
 * ferry-hv: the hypervisor daemon, one per host.
 *
 *   ferry-hv --run-dir DIR --memory SIZE
 *            [--migrate-listen [tcp://|tls://]ADDR:PORT]...
 *            [--tls-cert F] [--tls-key F] [--tls-ca F] [--tls-allow F]
 *            [--tls-crl F] [--xl PATH] [--migrate-max N]
 *            [--migrate-per-peer N] [--migrate-idle-timeout S]
 *            [--migrate-insecure] [--foreground] [--verbose] [--audit]
 *            [--no-background-scrub]
 *
 * The daemon owns the host's machine memory (DIR/memory, a file mapped
 * shared so toolstack processes can map frames of it), serves the control
 * socket DIR/control.sock (0600, and the peer's uid must be ours), and
 * logs to DIR/ferry-hv.log, which is also the ring that `xl dmesg` reads.
 *
 * Start-up is synchronous for scripts: without --foreground the daemon
 * forks, and the parent exits 0 only once the child has set up its memory
 * (populated in the background, see host.c) and is listening (or non-zero
 * with the child's error), so `ferry-hv ... && xl list` never races.  One daemon per run directory: DIR/ferry-hv.pid is
 * locked for the daemon's lifetime.
 *
 * Incoming migrations (--migrate-listen): the daemon only listens.  Per
 * accepted connection it starts `xl -H DIR migrate-receive --fd 3` with the
 * connection as fd 3 (adding --tls-cert/--tls-key/--tls-ca for a tls://
 * listener, and --tls-allow, --tls-crl), logs it, and reaps it on SIGCHLD;
 * at most --migrate-max receivers run at once, and at most
 * --migrate-per-peer for one peer address; further connections are closed
 * at once.  The receiver authenticates its peer (the fleet key
 * DIR/migrate.key on tcp://, certificates on tls://) within 10 s and then
 * gives up on a peer idle for --migrate-idle-timeout.  The hypervisor
 * itself has no TLS code and never reads the stream: the receiver is an
 * ordinary toolstack client of this host.  A tcp:// listener needs the
 * fleet key; without one it starts only on a loopback address and only
 * with --migrate-insecure.
 *
 * SIGTERM or SIGINT: stop accepting requests, destroy every domain, remove
 * the memory file, the socket and the pid file, exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "common/path.h"
#include "common/size.h"
#include "hv.h"
#include "control.h"
#include "include/public/control.h"

#define MIGRATE_MAX_LISTEN     4
#define MIGRATE_MAX_DEFAULT    16
#define MIGRATE_MAX_LIMIT      256
#define MIGRATE_PER_PEER_DEFAULT 4
#define MIGRATE_IDLE_DEFAULT   60

#ifndef FERRY_SBINDIR
#define FERRY_SBINDIR "/usr/local/sbin"
#endif
#ifndef FERRY_BINDIR
#define FERRY_BINDIR "/usr/local/bin"
#endif

struct options
{
    const char *run_dir;
    uint64_t memory_bytes;
    const char *migrate_listen[MIGRATE_MAX_LISTEN];
    unsigned int nr_listen;
    const char *tls_cert, *tls_key, *tls_ca, *tls_allow, *tls_crl;
    const char *xl;
    unsigned int migrate_max, migrate_per_peer, migrate_idle;
    bool migrate_insecure;
    bool foreground;
    bool verbose;
    bool audit;
    bool no_background_scrub;
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: ferry-hv --run-dir DIR --memory SIZE\n"
            "                [--migrate-listen [tcp://|tls://]ADDR:PORT]...\n"
            "                [--tls-cert F] [--tls-key F] [--tls-ca F]\n"
            "                [--tls-allow F] [--tls-crl F]\n"
            "                [--xl PATH] [--migrate-max N] [--migrate-per-peer N]\n"
            "                [--migrate-idle-timeout S] [--migrate-insecure]\n"
            "                [--foreground] [--verbose] [--audit]\n"
            "                [--no-background-scrub]\n"
            "\n"
            "Run one ferry host: a hypervisor owning SIZE of machine memory\n"
            "(bytes, or suffix K, M, G or T, e.g. 2G or 512MiB), controlled\n"
            "through DIR/control.sock.\n"
            "\n"
            "  -d, --run-dir DIR            the host's directory (created if absent)\n"
            "  -m, --memory SIZE            machine memory, e.g. 2G\n"
            "  -l, --migrate-listen A:P     accept migrations on A:P\n"
            "                               (tls://A:P over TLS; repeatable)\n"
            "      --tls-cert F             host certificate (tls://)\n"
            "      --tls-key F              its private key\n"
            "      --tls-ca F               CA of senders' certificates\n"
            "      --tls-allow F            allow-list of sender DNs (tls://)\n"
            "      --tls-crl F              CRL of the CA (tls://)\n"
            "      --xl PATH                xl run as migration receiver\n"
            "      --migrate-max N          concurrent migrations (16)\n"
            "      --migrate-per-peer N     of them from one address (4)\n"
            "      --migrate-idle-timeout S drop a peer idle for S s (60)\n"
            "      --migrate-insecure       tcp:// on loopback without a key\n"
            "  -F, --foreground             do not detach; log to stderr too\n"
            "  -v, --verbose                log debug lines to stderr (with -F)\n"
            "  -a, --audit                  run the auditor after every hypercall\n"
            "      --no-background-scrub    zero freed memory only when it is\n"
            "                               allocated again\n"
            "  -h, --help                   this text\n"
            "\n"
            "See ferry-hv(8).\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        { "run-dir", required_argument, NULL, 'd' },
        { "memory", required_argument, NULL, 'm' },
        { "migrate-listen", required_argument, NULL, 'l' },
        { "tls-cert", required_argument, NULL, 'C' },
        { "tls-key", required_argument, NULL, 'K' },
        { "tls-ca", required_argument, NULL, 'A' },
        { "xl", required_argument, NULL, 'X' },
        { "migrate-max", required_argument, NULL, 'M' },
        { "migrate-per-peer", required_argument, NULL, 'P' },
        { "migrate-idle-timeout", required_argument, NULL, 'I' },
        { "migrate-insecure", no_argument, NULL, 'N' },
        { "tls-allow", required_argument, NULL, 'W' },
        { "tls-crl", required_argument, NULL, 'R' },
        { "foreground", no_argument, NULL, 'F' },
        { "verbose", no_argument, NULL, 'v' },
        { "audit", no_argument, NULL, 'a' },
        { "no-background-scrub", no_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    while ( (c = getopt_long(argc, argv, "d:m:l:Fvah", longopts, NULL)) != -1 )
    {
        switch ( c )
        {
        case 'd': o->run_dir = optarg; break;
        case 'm':
        {
            int rc = ferry_parse_size(optarg, SIZE_DEFAULT_BYTES,
                                      &o->memory_bytes);

            if ( rc )
            {
                fprintf(stderr, "ferry-hv: --memory '%s' %s\n", optarg,
                        ferry_size_error(rc));
                return 2;
            }
            break;
        }
        case 'l':
            if ( o->nr_listen == MIGRATE_MAX_LISTEN )
            {
                fprintf(stderr, "ferry-hv: at most %d --migrate-listen\n",
                        MIGRATE_MAX_LISTEN);
                return 2;
            }
            o->migrate_listen[o->nr_listen++] = optarg;
            break;
        case 'C': o->tls_cert = optarg; break;
        case 'K': o->tls_key = optarg; break;
        case 'A': o->tls_ca = optarg; break;
        case 'X': o->xl = optarg; break;
        case 'M':
        {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);

            if ( *end || end == optarg || v < 1 || v > MIGRATE_MAX_LIMIT )
            {
                fprintf(stderr, "ferry-hv: invalid --migrate-max '%s' "
                        "(1..%d)\n", optarg, MIGRATE_MAX_LIMIT);
                return 2;
            }
            o->migrate_max = (unsigned int)v;
            break;
        }
        case 'P':
        case 'I':
        {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            unsigned long max = c == 'P' ? MIGRATE_MAX_LIMIT : 86400;

            if ( *end || end == optarg || v < 1 || v > max )
            {
                fprintf(stderr, "ferry-hv: invalid --migrate-%s '%s' "
                        "(1..%lu)\n", c == 'P' ? "per-peer" : "idle-timeout",
                        optarg, max);
                return 2;
            }
            if ( c == 'P' )
                o->migrate_per_peer = (unsigned int)v;
            else
                o->migrate_idle = (unsigned int)v;
            break;
        }
        case 'N': o->migrate_insecure = true; break;
        case 'W': o->tls_allow = optarg; break;
        case 'R': o->tls_crl = optarg; break;
        case 'F': o->foreground = true; break;
        case 'v': o->verbose = true; break;
        case 'a': o->audit = true; break;
        case 'S': o->no_background_scrub = true; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return 2;
        }
    }
    if ( optind != argc )
    {
        fprintf(stderr, "ferry-hv: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if ( !o->run_dir || !o->memory_bytes )
    {
        fprintf(stderr, "ferry-hv: --run-dir and --memory are required\n");
        usage(stderr);
        return 2;
    }
    if ( o->memory_bytes < (16ULL << 20) )
    {
        fprintf(stderr, "ferry-hv: --memory must be at least 16M\n");
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Run directory: created owner-only, locked by the pid file.
 * ------------------------------------------------------------------------ */

static char *path_in(const char *dir, const char *name)
{
    char *p;

    if ( asprintf(&p, "%s/%s", dir, name) < 0 )
        return NULL;
    return p;
}

static int lock_run_dir(const char *dir, char *err, size_t errlen)
{
    char *pidfile = path_in(dir, "ferry-hv.pid");
    char buf[32] = "";
    int fd;

    if ( mkdir(dir, 0700) < 0 && errno != EEXIST )
    {
        snprintf(err, errlen, "cannot create run directory %s: %s", dir,
                 strerror(errno));
        free(pidfile);
        return -1;
    }
    fd = pidfile ? open(pidfile, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
    if ( fd < 0 )
    {
        snprintf(err, errlen, "cannot open %s/ferry-hv.pid: %s", dir,
                 strerror(errno));
        free(pidfile);
        return -1;
    }
    free(pidfile);
    if ( flock(fd, LOCK_EX | LOCK_NB) < 0 )
    {
        ssize_t n = read(fd, buf, sizeof(buf) - 1);

        buf[n > 0 ? n : 0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        snprintf(err, errlen, "run directory %s is in use by ferry-hv pid %s",
                 dir, buf[0] ? buf : "?");
        close(fd);
        return -1;
    }
    return fd;
}

static void write_pid(int fd)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

    if ( ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)n, 0) == n )
        return;
}

static int listen_control(const char *dir, char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if ( snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir,
                  FERRY_CTL_SOCKET) >= (int)sizeof(sa.sun_path) )
    {
        snprintf(err, errlen, "run directory path too long for a socket: %s",
                 dir);
        return -1;
    }
    unlink(sa.sun_path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if ( fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
         chmod(sa.sun_path, 0600) < 0 || listen(fd, 64) < 0 )
    {
        snprintf(err, errlen, "cannot listen on %s: %s", sa.sun_path,
                 strerror(errno));
        if ( fd >= 0 )
            close(fd);
        return -1;
    }
    return fd;
}

/* ------------------------------------------------------------------------
 * Incoming migrations: listen, spawn one xl receiver per connection, reap.
 * ------------------------------------------------------------------------ */

struct mig_listener
{
    int fd;
    bool tls;
    bool insecure;                      /* tcp:// without a fleet key */
    bool loopback;                      /* bound to a loopback address */
    char addr[INET6_ADDRSTRLEN + 32];   /* "tcp://ADDR:PORT" as bound */
};

struct mig_receiver
{
    pid_t pid;
    char peer[INET6_ADDRSTRLEN + 16];
    char addr[INET6_ADDRSTRLEN];        /* the peer's address, no port */
};

static struct
{
    struct mig_listener l[MIGRATE_MAX_LISTEN];
    unsigned int nr_l;
    struct mig_receiver *r;
    unsigned int nr_r, max_r, per_peer;
    char *run_dir, *logpath, *addrpath;
    const char *xl;
    char *cert, *key, *ca, *allow, *crl;
    char idle[16];
    bool spawn_path;            /* xl is looked up in PATH */
} mig;

static char *abs_path(const char *path)
{
    char *p, cwd[PATH_MAX];

    if ( path[0] == '/' )
        return strdup(path);
    if ( !getcwd(cwd, sizeof(cwd)) || asprintf(&p, "%s/%s", cwd, path) < 0 )
        return NULL;
    return p;
}

/* "[tcp://|tls://]HOST:PORT" or "...[V6]:PORT": host and port in place. */
static int parse_listen(char *spec, bool *tls, char **hostp, char **port)
{
    char *colon;

    *tls = false;
    if ( !strncmp(spec, "tls://", 6) )
    {
        *tls = true;
        spec += 6;
    }
    else if ( !strncmp(spec, "tcp://", 6) )
        spec += 6;
    if ( *spec == '[' )
    {
        char *close = strchr(spec, ']');

        if ( !close || close[1] != ':' )
            return -EINVAL;
        *close = '\0';
        *hostp = spec + 1;
        *port = close + 2;
    }
    else
    {
        colon = strrchr(spec, ':');
        if ( !colon || strchr(spec, ':') != colon )
            return -EINVAL;
        *colon = '\0';
        *hostp = spec;
        *port = colon + 1;
    }
    if ( !**hostp || !**port ||
         strspn(*port, "0123456789") != strlen(*port) )
        return -EINVAL;
    return 0;
}

static void sockaddr_text(const struct sockaddr *sa, char *buf, size_t len)
{
    char name[INET6_ADDRSTRLEN] = "?", port[8] = "?";

    getnameinfo(sa, sa->sa_family == AF_INET6 ?
                sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
                name, sizeof(name), port, sizeof(port),
                NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(buf, len, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
             name, port);
}

static bool is_loopback(const struct sockaddr *sa)
{
    if ( sa->sa_family == AF_INET )
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr)
                >> 24) == 127;
    if ( sa->sa_family == AF_INET6 )
    {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

        return IN6_IS_ADDR_LOOPBACK(a) ||
               (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

/* Bind and listen on spec; port 0 picks a free port (see DIR/migrate.addr). */
static int open_listener(const char *spec, struct mig_listener *ml,
                         char *err, size_t errlen)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
    };
    struct addrinfo *res = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char *copy = strdup(spec), *name, *port, where[INET6_ADDRSTRLEN + 20];
    int fd = -1, one = 1, gai, rc = -1;

    if ( !copy || parse_listen(copy, &ml->tls, &name, &port) )
    {
        snprintf(err, errlen, "--migrate-listen %s: expected "
                 "[tcp://|tls://]ADDR:PORT (IPv6: [ADDR]:PORT)", spec);
        goto out;
    }
    gai = getaddrinfo(name, port, &hints, &res);
    if ( gai )
    {
        snprintf(err, errlen, "--migrate-listen %s: %s", spec,
                 gai_strerror(gai));
        goto out;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if ( fd < 0 ||
         setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
         bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
         listen(fd, 16) < 0 ||
         getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 )
    {
        snprintf(err, errlen, "--migrate-listen %s: %s", spec,
                 strerror(errno));
        if ( fd >= 0 )
            close(fd);
        goto out;
    }
    sockaddr_text((struct sockaddr *)&ss, where, sizeof(where));
    snprintf(ml->addr, sizeof(ml->addr), "%s://%s", ml->tls ? "tls" : "tcp",
             where);
    ml->loopback = is_loopback((struct sockaddr *)&ss);
    ml->fd = fd;
    rc = 0;
 out:
    if ( res )
        freeaddrinfo(res);
    free(copy);
    return rc;
}

/* The TLS files the receivers get: given, else DIR/tls/...; must exist. */
static int tls_file(const char *given, const char *name, char **out,
                    char *err, size_t errlen)
{
    char *def = NULL;

    if ( !given && asprintf(&def, "%s/tls/%s", mig.run_dir, name) < 0 )
        def = NULL;
    *out = given ? abs_path(given) : def;
    if ( !*out )
    {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if ( access(*out, R_OK) < 0 )
    {
        snprintf(err, errlen, "TLS file %s: %s", *out, strerror(errno));
        return -1;
    }
    return 0;
}

/*
 * A tcp:// listener needs the fleet key its receivers prove themselves
 * with.  Without one it would let anyone drive this host, so it starts
 * only where nobody else can reach it, and only when asked to.
 */
static int check_key(const struct options *o, struct mig_listener *ml,
                     char *err, size_t errlen)
{
    char *path = path_in(mig.run_dir, "migrate.key");
    struct stat st;
    int rc = 0;

    if ( !path )
    {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if ( stat(path, &st) == 0 )
    {
        if ( st.st_mode & 077 )
        {
            snprintf(err, errlen, "fleet key %s is readable by others "
                     "(mode %03o): make it mode 600", path,
                     (unsigned int)(st.st_mode & 0777));
            rc = -1;
        }
    }
    else if ( errno != ENOENT )
    {
        snprintf(err, errlen, "fleet key %s: %s", path, strerror(errno));
        rc = -1;
    }
    else if ( o->migrate_insecure && ml->loopback )
    {
        ml->insecure = true;
        hv_printk(HVLOG_WARNING, "ferry-hv: %s runs without a fleet key "
                  "(--migrate-insecure): any local user can migrate to "
                  "this host", ml->addr);
    }
    else
    {
        snprintf(err, errlen, "--migrate-listen %s: no fleet key %s (create "
                 "it with ferry-creds); a tcp:// listener without one would "
                 "accept anyone, so it runs only on a loopback address and "
                 "only with --migrate-insecure", ml->addr, path);
        rc = -1;
    }
    free(path);
    return rc;
}

/*
 * Which xl to run as the receiver: --xl; else, for a daemon run from a
 * build tree (DIR/hypervisor/ferry-hv), that tree's DIR/xl/xl; else the
 * xl installed beside this daemon (bindir's, found from where the daemon
 * runs: common/path.h); else the configured bindir's; else the first in
 * PATH.  An xl of another tree or another install would speak another
 * version of the protocol, or be Xen's.
 */
static void choose_xl(const struct options *o)
{
    static const char tree[] = "/hypervisor";
    static char path[PATH_MAX + 16];
    char self[PATH_MAX], *slash;
    ssize_t n;

    if ( o->xl )
    {
        mig.xl = o->xl;
        return;
    }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if ( n > 0 )
    {
        self[n] = '\0';
        slash = strrchr(self, '/');
        if ( slash && (size_t)(slash - self) >= sizeof(tree) - 1 &&
             !strncmp(slash - (sizeof(tree) - 1), tree, sizeof(tree) - 1) )
        {
            *slash = '\0';
            snprintf(path, sizeof(path), "%s/../xl/xl", self);
            if ( access(path, X_OK) == 0 )
            {
                mig.xl = path;
                return;
            }
        }
    }
    if ( ferry_relocate(FERRY_SBINDIR, FERRY_BINDIR "/xl", path,
                        sizeof(path)) && access(path, X_OK) == 0 )
        mig.xl = path;
    else if ( access(FERRY_BINDIR "/xl", X_OK) == 0 )
        mig.xl = FERRY_BINDIR "/xl";
    else
    {
        mig.xl = "xl";
        mig.spawn_path = true;
    }
}

/* Record the bound addresses for scripts (port 0 means "any free"). */
static void write_addr_file(void)
{
    FILE *f;

    if ( asprintf(&mig.addrpath, "%s/migrate.addr", mig.run_dir) < 0 )
    {
        mig.addrpath = NULL;
        return;
    }
    f = fopen(mig.addrpath, "we");
    if ( !f )
        return;
    for ( unsigned int i = 0; i < mig.nr_l; i++ )
        fprintf(f, "%s\n", mig.l[i].addr);
    fclose(f);
}

static int migrate_init(const struct options *o, const char *logpath,
                        char *err, size_t errlen)
{
    bool any_tls = false;
    unsigned int i;

    if ( !o->nr_listen )
        return 0;
    mig.run_dir = realpath(o->run_dir, NULL);
    mig.logpath = abs_path(logpath);
    mig.max_r = o->migrate_max ? o->migrate_max : MIGRATE_MAX_DEFAULT;
    mig.r = calloc(mig.max_r, sizeof(*mig.r));
    if ( !mig.run_dir || !mig.logpath || !mig.r )
    {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    choose_xl(o);
    for ( i = 0; i < o->nr_listen; i++ )
    {
        if ( open_listener(o->migrate_listen[i], &mig.l[i], err, errlen) )
            return -1;
        mig.nr_l++;
        any_tls |= mig.l[i].tls;
    }
    if ( any_tls &&
         (tls_file(o->tls_cert, "host.pem", &mig.cert, err, errlen) ||
          tls_file(o->tls_key, "host.key", &mig.key, err, errlen) ||
          tls_file(o->tls_ca, "ca.pem", &mig.ca, err, errlen) ||
          tls_file(o->tls_allow, "allowed-dn", &mig.allow, err, errlen)) )
        return -1;
    if ( any_tls && o->tls_crl &&
         tls_file(o->tls_crl, "crl.pem", &mig.crl, err, errlen) )
        return -1;
    for ( i = 0; i < mig.nr_l; i++ )
        if ( !mig.l[i].tls && check_key(o, &mig.l[i], err, errlen) )
            return -1;
    mig.per_peer = o->migrate_per_peer ? o->migrate_per_peer
                                       : MIGRATE_PER_PEER_DEFAULT;
    snprintf(mig.idle, sizeof(mig.idle), "%u",
             o->migrate_idle ? o->migrate_idle : MIGRATE_IDLE_DEFAULT);
    write_addr_file();
    for ( i = 0; i < mig.nr_l; i++ )
        printk("ferry-hv: accepting migrations on %s (receiver: %s)",
               mig.l[i].addr, mig.xl);
    return 0;
}

/*
 * Start the receiver with the connection as its fd 3, stdin and stdout on
 * /dev/null, stderr appended to our log file, default signal dispositions
 * and an empty mask (ours blocks the signals signalfd reads), in its own
 * process group.
 */
static pid_t spawn_receiver(int cfd, const struct mig_listener *ml)
{
    const char *argv[24];
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, dfl;
    int argc = 0, rc;
    pid_t pid = -1;

    argv[argc++] = mig.xl;
    argv[argc++] = "-H";
    argv[argc++] = mig.run_dir;
    argv[argc++] = "migrate-receive";
    argv[argc++] = "--fd";
    argv[argc++] = "3";
    argv[argc++] = "--idle-timeout";
    argv[argc++] = mig.idle;
    if ( ml->tls )
    {
        argv[argc++] = "--tls-cert";
        argv[argc++] = mig.cert;
        argv[argc++] = "--tls-key";
        argv[argc++] = mig.key;
        argv[argc++] = "--tls-ca";
        argv[argc++] = mig.ca;
        argv[argc++] = "--tls-allow";
        argv[argc++] = mig.allow;
        if ( mig.crl )
        {
            argv[argc++] = "--tls-crl";
            argv[argc++] = mig.crl;
        }
    }
    else if ( ml->insecure )
        argv[argc++] = "--insecure";
    argv[argc] = NULL;

    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    sigaddset(&dfl, SIGTERM);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGHUP);
    sigaddset(&dfl, SIGCHLD);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, mig.logpath,
                                     O_WRONLY | O_APPEND | O_CREAT, 0600);
    /* cfd is never 3 (see migrate_accept): dup2 gives a new fd 3 without
     * close-on-exec, and every other fd of ours is close-on-exec. */
    posix_spawn_file_actions_adddup2(&fa, cfd, 3);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dfl);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
                             POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    rc = mig.spawn_path
         ? posix_spawnp(&pid, mig.xl, &fa, &at, (char *const *)argv, environ)
         : posix_spawn(&pid, mig.xl, &fa, &at, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if ( rc )
    {
        errno = rc;
        return -1;
    }
    return pid;
}

static void migrate_accept(const struct mig_listener *ml)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char peer[INET6_ADDRSTRLEN + 16], addr[INET6_ADDRSTRLEN] = "?";
    int cfd = accept4(ml->fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
    unsigned int i, same = 0;
    pid_t pid;

    if ( cfd < 0 )
        return;
    if ( cfd == 3 )
    {
        int moved = fcntl(cfd, F_DUPFD_CLOEXEC, 4);

        close(cfd);
        if ( moved < 0 )
            return;
        cfd = moved;
    }
    sockaddr_text((struct sockaddr *)&ss, peer, sizeof(peer));
    getnameinfo((struct sockaddr *)&ss, sl, addr, sizeof(addr), NULL, 0,
                NI_NUMERICHOST);
    for ( i = 0; i < mig.nr_r; i++ )
        same += !strcmp(mig.r[i].addr, addr);
    if ( mig.nr_r == mig.max_r )
    {
        hv_printk(HVLOG_WARNING, "ferry-hv: migration from %s on %s refused:"
                  " %u incoming migrations already running", peer, ml->addr,
                  mig.nr_r);
        close(cfd);
        return;
    }
    /* One peer cannot take every slot: others can still migrate here. */
    if ( same >= mig.per_peer )
    {
        hv_printk(HVLOG_WARNING, "ferry-hv: migration from %s on %s refused:"
                  " %u connections from %s already (--migrate-per-peer)",
                  peer, ml->addr, same, addr);
        close(cfd);
        return;
    }
    pid = spawn_receiver(cfd, ml);
    close(cfd);
    if ( pid < 0 )
    {
        hv_printk(HVLOG_ERR, "ferry-hv: migration from %s on %s: cannot "
                  "start %s: %s", peer, ml->addr, mig.xl, strerror(errno));
        return;
    }
    mig.r[mig.nr_r].pid = pid;
    snprintf(mig.r[mig.nr_r].peer, sizeof(mig.r[0].peer), "%s", peer);
    snprintf(mig.r[mig.nr_r].addr, sizeof(mig.r[0].addr), "%s", addr);
    mig.nr_r++;
    printk("ferry-hv: migration from %s on %s: receiver pid %ld", peer,
           ml->addr, (long)pid);
}

/* Reap our receivers (only ours: by pid) and log how each ended. */
static void migrate_reap(void)
{
    unsigned int i = 0;
    int st;

    while ( i < mig.nr_r )
    {
        pid_t r = waitpid(mig.r[i].pid, &st, WNOHANG);

        if ( r != mig.r[i].pid )
        {
            i++;
            continue;
        }
        if ( WIFEXITED(st) )
            printk("ferry-hv: migration receiver pid %ld (from %s) exited "
                   "with status %d", (long)r, mig.r[i].peer,
                   WEXITSTATUS(st));
        else
            printk("ferry-hv: migration receiver pid %ld (from %s) killed "
                   "by signal %d", (long)r, mig.r[i].peer,
                   WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        mig.r[i] = mig.r[--mig.nr_r];
    }
}

/* Stop listening; receivers still running are told to stop (by pid). */
static void migrate_shutdown(void)
{
    for ( unsigned int i = 0; i < mig.nr_l; i++ )
        close(mig.l[i].fd);
    mig.nr_l = 0;
    for ( unsigned int i = 0; i < mig.nr_r; i++ )
        kill(mig.r[i].pid, SIGTERM);
    if ( mig.addrpath )
        unlink(mig.addrpath);
    free(mig.addrpath);
    free(mig.r);
    free(mig.run_dir);
    free(mig.logpath);
    free(mig.cert);
    free(mig.key);
    free(mig.ca);
    free(mig.allow);
    free(mig.crl);
}

/* ------------------------------------------------------------------------
 * Start-up and the main loop
 * ------------------------------------------------------------------------ */

/* Tell the waiting parent how start-up went: "" for success. */
static void report_ready(int fd, const char *err)
{
    if ( fd < 0 )
        return;
    /* If the parent is gone there is nobody to tell: ignore a failure. */
    ssize_t n = write(fd, err, strlen(err) + 1);

    (void)n;
    close(fd);
}

/* Fork; the parent waits for the child's start-up report and exits. */
static int daemonize(void)
{
    int pipefd[2];
    pid_t pid;
    char msg[512];
    ssize_t n, got = 0;

    if ( pipe2(pipefd, O_CLOEXEC) < 0 )
        return -1;
    pid = fork();
    if ( pid < 0 )
        return -1;
    if ( pid == 0 )
    {
        close(pipefd[0]);
        setsid();
        return pipefd[1];
    }
    close(pipefd[1]);
    while ( got < (ssize_t)sizeof(msg) - 1 &&
            (n = read(pipefd[0], msg + got, sizeof(msg) - 1 - (size_t)got)) > 0 )
        got += n;
    msg[got] = '\0';
    if ( got == 0 )
    {
        fprintf(stderr, "ferry-hv: the daemon died during start-up\n");
        _exit(1);
    }
    if ( msg[0] )
    {
        fprintf(stderr, "ferry-hv: %s\n", msg);
        _exit(1);
    }
    _exit(0);
}

static int redirect_stdio(const char *logpath)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);

    (void)logpath;
    if ( null < 0 )
        return -1;
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    close(null);
    return 0;
}

static int setup_signals(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);     /* reaping migration receivers */
    /* Blocked in every thread (they inherit the mask); read via signalfd. */
    if ( pthread_sigmask(SIG_BLOCK, &set, NULL) )
        return -1;
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_CLOEXEC);
}

static void serve(int lfd, int sfd)
{
    struct pollfd pfd[2 + MIGRATE_MAX_LISTEN] = {
        { .fd = lfd, .events = POLLIN },
        { .fd = sfd, .events = POLLIN },
    };
    unsigned int i, n = 2 + mig.nr_l;

    for ( i = 0; i < mig.nr_l; i++ )
        pfd[2 + i] = (struct pollfd){ .fd = mig.l[i].fd, .events = POLLIN };
    for ( ;; )
    {
        if ( poll(pfd, n, -1) < 0 )
        {
            if ( errno == EINTR )
                continue;
            break;
        }
        if ( pfd[1].revents )
        {
            struct signalfd_siginfo si;

            if ( read(sfd, &si, sizeof(si)) == sizeof(si) &&
                 si.ssi_signo == SIGCHLD )
            {
                migrate_reap();
                continue;
            }
            printk("ferry-hv: signal %u, shutting down", si.ssi_signo);
            break;
        }
        for ( i = 0; i < mig.nr_l; i++ )
            if ( pfd[2 + i].revents & POLLIN )
                migrate_accept(&mig.l[i]);
        if ( pfd[0].revents & POLLIN )
        {
            int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

            if ( cfd >= 0 )
                ctl_accept(cfd);
        }
    }
}

int main(int argc, char **argv)
{
    struct options o = { 0 };
    struct host_params hp = { 0 };
    char err[512] = "";
    char *logpath = NULL, *sockpath = NULL, *pidpath = NULL;
    FILE *log = NULL;
    int rc, lockfd = -1, lfd = -1, sfd = -1, ready = -1;

    rc = parse_options(argc, argv, &o);
    if ( rc )
        return rc;
    logpath = path_in(o.run_dir, "ferry-hv.log");
    sockpath = path_in(o.run_dir, FERRY_CTL_SOCKET);
    pidpath = path_in(o.run_dir, "ferry-hv.pid");
    if ( !logpath || !sockpath || !pidpath )
        return 1;

    /*
     * Non-dumpable: another unprivileged process of our user (a stream
     * parser taken over) can then neither ptrace us nor open our
     * /proc/PID/mem or /proc/PID/fd/N (the machine-memory memfd).  Root
     * is not stopped by this: xl's parser is also confined by seccomp
     * (xl/xl-sandbox.c).
     */
    if ( prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) )
    {
        fprintf(stderr, "ferry-hv: cannot make the daemon non-dumpable: %s\n",
                strerror(errno));
        return 1;
    }
    lockfd = lock_run_dir(o.run_dir, err, sizeof(err));
    if ( lockfd < 0 )
    {
        fprintf(stderr, "ferry-hv: %s\n", err);
        return 1;
    }
    if ( !o.foreground )
    {
        ready = daemonize();
        if ( ready < 0 )
        {
            fprintf(stderr, "ferry-hv: fork: %s\n", strerror(errno));
            return 1;
        }
        redirect_stdio(logpath);
    }
    write_pid(lockfd);

    log = fopen(logpath, "ae");
    if ( log )
        setvbuf(log, NULL, _IOLBF, 0);
    /* In the foreground the log goes to stderr; either way to the ring. */
    hv_log_set_sink(o.foreground ? stderr : log,
                    o.verbose ? HVLOG_DEBUG : HVLOG_INFO);

    sfd = setup_signals();
    hp.memory_bytes = o.memory_bytes;
    hp.nr_control_vcpus = CTL_MAX_CONNECTIONS;
    hp.scrub_background = !o.no_background_scrub;
    rc = host_init(&hp);
    if ( rc )
    {
        snprintf(err, sizeof(err), "cannot set up %llu MiB of machine memory: %s",
                 (unsigned long long)(o.memory_bytes >> 20), strerror(-rc));
        goto fail;
    }
    host.preempt_every = HV_PREEMPT_BUDGET;
    host.audit_every_hypercall = o.audit;
#ifdef HV_AUDIT_EVERY_HYPERCALL
    host.audit_every_hypercall = true;
#endif
    lfd = listen_control(o.run_dir, err, sizeof(err));
    if ( lfd < 0 )
        goto fail;
    rc = ctl_init(o.run_dir, err, sizeof(err));
    if ( rc )
        goto fail;
    if ( migrate_init(&o, logpath, err, sizeof(err)) )
        goto fail;

    printk("ferry-hv %s: %llu MiB of machine memory (%llu frames), control socket %s",
           PACKAGE_VERSION, (unsigned long long)(host.max_page >> 8),
           (unsigned long long)host.max_page, sockpath);
    report_ready(ready, "");
    ready = -1;

    serve(lfd, sfd);

    close(lfd);
    unlink(sockpath);
    migrate_shutdown();
    ctl_shutdown();
    host_dispose();
    printk("ferry-hv: stopped");
    unlink(pidpath);
    rc = 0;
    goto out;

 fail:
    /*
     * Let go of everything, the run directory's lock last, before the
     * waiting parent hears of the failure: a caller that retries at once
     * (a corrected command line) must not find the directory still "in
     * use" by a daemon that is only tidying up.
     */
    migrate_shutdown();
    if ( lfd >= 0 )
    {
        close(lfd);
        unlink(sockpath);
    }
    host_dispose();
    unlink(pidpath);
    close(lockfd);
    if ( ready >= 0 )
        report_ready(ready, err);
    else
        fprintf(stderr, "ferry-hv: %s\n", err);
    rc = 1;
 out:
    if ( log )
        fclose(log);
    free(logpath);
    free(sockpath);
    free(pidpath);
    return rc;
}
