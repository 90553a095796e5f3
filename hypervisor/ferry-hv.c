/* SPDX-License-Identifier: MIT */
/*
 * ferry-hv: the hypervisor daemon, one per host.
 *
 *   ferry-hv --run-dir DIR --memory SIZE [--migrate-listen ADDR:PORT]
 *            [--foreground] [--verbose] [--audit]
 *
 * The daemon owns the host's machine memory (DIR/memory, a file mapped
 * shared so toolstack processes can map frames of it), serves the control
 * socket DIR/control.sock (0600, and the peer's uid must be ours), and
 * logs to DIR/ferry-hv.log, which is also the ring that `xl dmesg` reads.
 *
 * Start-up is synchronous for scripts: without --foreground the daemon
 * forks, and the parent exits 0 only once the child has its memory and is
 * listening (or non-zero with the child's error), so `ferry-hv ... && xl
 * list` never races.  One daemon per run directory: DIR/ferry-hv.pid is
 * locked for the daemon's lifetime.
 *
 * SIGTERM or SIGINT: stop accepting requests, destroy every domain, remove
 * the memory file, the socket and the pid file, exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "hv.h"
#include "control.h"
#include "include/public/control.h"

struct options
{
    const char *run_dir;
    uint64_t memory_bytes;
    const char *migrate_listen;
    bool foreground;
    bool verbose;
    bool audit;
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: ferry-hv --run-dir DIR --memory SIZE [--migrate-listen ADDR:PORT]\n"
            "                [--foreground] [--verbose] [--audit]\n"
            "\n"
            "Run one ferry host: a hypervisor owning SIZE of machine memory\n"
            "(suffix K, M or G), controlled through DIR/control.sock.\n"
            "\n"
            "  -d, --run-dir DIR            the host's directory (created if absent)\n"
            "  -m, --memory SIZE            machine memory, e.g. 2G\n"
            "  -l, --migrate-listen A:P     accept incoming migrations on A:P\n"
            "  -F, --foreground             do not detach; log to stderr too\n"
            "  -v, --verbose                log debug lines to stderr (with -F)\n"
            "  -a, --audit                  run the auditor after every hypercall\n"
            "  -h, --help                   this text\n"
            "\n"
            "See ferry-hv(8).\n");
}

/* Parse "512M", "2G", "65536K" or plain bytes. */
static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    unsigned int shift = 0;

    errno = 0;
    v = strtoull(s, &end, 10);
    if ( errno || end == s )
        return -EINVAL;
    switch ( *end )
    {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case '\0': break;
    default: return -EINVAL;
    }
    if ( *end == 'i' || *end == 'B' )
        end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
    if ( *end || v > (UINT64_MAX >> shift) )
        return -EINVAL;
    *out = (uint64_t)v << shift;
    return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        { "run-dir", required_argument, NULL, 'd' },
        { "memory", required_argument, NULL, 'm' },
        { "migrate-listen", required_argument, NULL, 'l' },
        { "foreground", no_argument, NULL, 'F' },
        { "verbose", no_argument, NULL, 'v' },
        { "audit", no_argument, NULL, 'a' },
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
            if ( parse_size(optarg, &o->memory_bytes) )
            {
                fprintf(stderr, "ferry-hv: invalid --memory size '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'l': o->migrate_listen = optarg; break;
        case 'F': o->foreground = true; break;
        case 'v': o->verbose = true; break;
        case 'a': o->audit = true; break;
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
    /* Blocked in every thread (they inherit the mask); read via signalfd. */
    if ( pthread_sigmask(SIG_BLOCK, &set, NULL) )
        return -1;
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_CLOEXEC);
}

static void serve(int lfd, int sfd)
{
    struct pollfd pfd[2] = {
        { .fd = lfd, .events = POLLIN },
        { .fd = sfd, .events = POLLIN },
    };

    for ( ;; )
    {
        if ( poll(pfd, 2, -1) < 0 )
        {
            if ( errno == EINTR )
                continue;
            break;
        }
        if ( pfd[1].revents )
        {
            struct signalfd_siginfo si;

            if ( read(sfd, &si, sizeof(si)) == sizeof(si) )
                printk("ferry-hv: signal %u, shutting down", si.ssi_signo);
            break;
        }
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
    char *mempath = NULL, *logpath = NULL, *sockpath = NULL, *pidpath = NULL;
    FILE *log = NULL;
    int rc, lockfd = -1, lfd = -1, sfd = -1, ready = -1;

    rc = parse_options(argc, argv, &o);
    if ( rc )
        return rc;
    mempath = path_in(o.run_dir, "memory");
    logpath = path_in(o.run_dir, "ferry-hv.log");
    sockpath = path_in(o.run_dir, FERRY_CTL_SOCKET);
    pidpath = path_in(o.run_dir, "ferry-hv.pid");
    if ( !mempath || !logpath || !sockpath || !pidpath )
        return 1;

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
    /* A memory file left by a daemon that crashed: we hold the lock now. */
    unlink(mempath);
    hp.memory_bytes = o.memory_bytes;
    hp.mem_path = mempath;
    hp.nr_control_vcpus = CTL_MAX_CONNECTIONS;
    rc = host_init(&hp);
    if ( rc )
    {
        snprintf(err, sizeof(err), "cannot set up %llu MiB of machine memory in %s: %s",
                 (unsigned long long)(o.memory_bytes >> 20), mempath,
                 strerror(-rc));
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
    rc = ctl_init(o.run_dir, o.migrate_listen, err, sizeof(err));
    if ( rc )
        goto fail;

    printk("ferry-hv %s: %llu MiB of machine memory (%llu frames) in %s, control socket %s",
           PACKAGE_VERSION, (unsigned long long)(host.max_page >> 8),
           (unsigned long long)host.max_page, mempath, sockpath);
    report_ready(ready, "");
    ready = -1;

    serve(lfd, sfd);

    close(lfd);
    unlink(sockpath);
    ctl_shutdown();
    host_dispose();
    printk("ferry-hv: stopped");
    unlink(pidpath);
    rc = 0;
    goto out;

 fail:
    if ( ready >= 0 )
        report_ready(ready, err);
    else
        fprintf(stderr, "ferry-hv: %s\n", err);
    if ( lfd >= 0 )
    {
        close(lfd);
        unlink(sockpath);
    }
    host_dispose();
    unlink(pidpath);
    rc = 1;
 out:
    if ( log )
        fclose(log);
    free(mempath);
    free(logpath);
    free(sockpath);
    free(pidpath);
    return rc;
}
