/* SPDX-License-Identifier: MIT */
/*
 * sandbox-probe: the confinement of xl's stream parser (xl-sandbox.c,
 * issue 10), tried from inside as a taken-over parser would.  Run by
 * t0019-least-privilege.sh with the host's run directory, the daemon's
 * pid and a save file; prints TAP (its plan first).
 *
 * It sets up what xl's parser child sets up (a builder session and its
 * staging area, the save file's io), confines itself with
 * xl_sandbox_enter(), and restores the file with the engine.  At the
 * first report of the memory phase, in the middle of the stream, it tries
 * what the confinement is for: a new connection to the daemon's socket,
 * opening /proc/<daemon>/mem and the daemon's machine-memory memfd under
 * /proc/<daemon>/fd for writing, ptrace, process_vm_readv, pidfd_open and
 * a signal to the daemon, running a program, a new process, an x32 call.
 * Each must fail with EPERM (clone3 with ENOSYS); a signal to itself and
 * a new thread must still work; and the restore must then finish, the
 * domain it built being bound to the builder session.  The domain is
 * destroyed at the end.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>

#include "xc.h"
#include "xl.h"
#include "xl-sandbox.h"
#include "../../hypervisor/include/public/control.h"

/* The globals of xl that the transport (linked with xl-sandbox.c) reads. */
int minmsglevel = XC_WARN;
bool progress_use_cr;
bool timestamps;
const char *run_dir;

#define PLAN 17

static int n, failed;
static pid_t daemon_pid;
static int pre_sock = -1;
static struct sockaddr_un daemon_sa = { .sun_family = AF_UNIX };
static char memfd_path[300];
static bool probed;

static void result(int ok, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void result(int ok, const char *fmt, ...)
{
    va_list ap;

    printf("%sok %d - ", ok ? "" : "not ", ++n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    failed += !ok;
}

/* A call that must be refused with want; what it gave otherwise. */
static void refused(long rc, int want, const char *what)
{
    int e = errno;
    bool ok = rc < 0 && e == want;

    result(ok, "confined: %s is refused (%s)", what, strerror(want));
    if ( !ok )
        printf("# %s: %s\n", what,
               rc < 0 ? strerror(e) : "succeeded");
}

static void *thread_fn(void *arg)
{
    return arg;
}

/* The daemon's machine-memory memfd, as /proc/<pid>/fd/N. */
static void find_memfd(void)
{
    char dir[32], link[256], path[300];
    struct dirent *de;
    DIR *d;

    snprintf(dir, sizeof(dir), "/proc/%ld/fd", (long)daemon_pid);
    d = opendir(dir);
    if ( !d )
        return;
    while ( (de = readdir(d)) )
    {
        ssize_t l;

        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        l = readlink(path, link, sizeof(link) - 1);
        if ( l <= 0 )
            continue;
        link[l] = '\0';
        if ( strstr(link, "ferry-machine-memory") )
            snprintf(memfd_path, sizeof(memfd_path), "%s", path);
    }
    closedir(d);
}

static void probe(void)
{
    char path[64];
    static char prog[] = "/bin/true";
    char *argv[] = { prog, NULL }, *envp[] = { NULL };
    struct iovec local, remote;
    pthread_t t;
    uint64_t word;
    pid_t pid;

    refused(socket(AF_UNIX, SOCK_STREAM, 0), EPERM, "socket");
    refused(connect(pre_sock, (struct sockaddr *)&daemon_sa,
                    sizeof(daemon_sa)), EPERM,
            "connect to the daemon's socket");
    snprintf(path, sizeof(path), "/proc/%ld/mem", (long)daemon_pid);
    refused(open(path, O_RDWR), EPERM, "open /proc/<daemon>/mem");
    refused(syscall(SYS_open, path, O_RDONLY, 0), EPERM,
            "the open call itself on /proc/<daemon>/mem");
    if ( memfd_path[0] )
        refused(open(memfd_path, O_RDWR), EPERM,
                "open the daemon's machine-memory memfd");
    else
        result(0, "the daemon's machine-memory memfd was found");
    refused(ptrace(PTRACE_ATTACH, daemon_pid, NULL, NULL), EPERM,
            "ptrace the daemon");
    local = (struct iovec){ &word, sizeof(word) };
    remote = (struct iovec){ (void *)4096, sizeof(word) };
    refused(process_vm_readv(daemon_pid, &local, 1, &remote, 1, 0), EPERM,
            "process_vm_readv of the daemon");
    refused(syscall(SYS_pidfd_open, daemon_pid, 0), EPERM,
            "pidfd_open of the daemon");
    refused(kill(daemon_pid, 0), EPERM, "a signal to the daemon");
    refused(execve(argv[0], argv, envp), EPERM, "execve");
    pid = fork();
    if ( pid == 0 )
        _exit(0);
    refused(pid, EPERM, "fork");
#ifdef __x86_64__
    refused(syscall(0x40000000 + SYS_getpid), EPERM, "an x32 call");
#else
    result(1, "# SKIP no x32 here");
#endif
    refused(syscall(SYS_clone3, NULL, 0), ENOSYS, "clone3");
    result(kill(getpid(), 0) == 0, "confined: a signal to itself works");
    result(pthread_create(&t, NULL, thread_fn, NULL) == 0 &&
           pthread_join(t, NULL) == 0, "confined: a new thread works");
}

static void progress(void *arg, const struct sr_progress *p)
{
    (void)arg;
    if ( !probed && p->phase == SR_PHASE_MEMORY )
    {
        probed = true;
        probe();
    }
}

int main(int argc, char **argv)
{
    struct sr_restore_args a = { .paused = true, .max_vcpus = 1 };
    struct sr_restore_result r;
    struct sr_io *io = NULL;
    xc_domaininfo_t info;
    xc_interface *b;
    char msg[512], err[256];
    int fd;

    if ( argc != 4 )
    {
        fprintf(stderr, "usage: sandbox-probe RUNDIR DAEMON-PID SAVEFILE\n");
        return 99;
    }
    daemon_pid = (pid_t)atol(argv[2]);
    printf("1..%d\n", PLAN);
    snprintf(daemon_sa.sun_path, sizeof(daemon_sa.sun_path), "%s/%s",
             argv[1], FERRY_CTL_SOCKET);
    find_memfd();
    pre_sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    b = xc_interface_open_session(argv[1], xc_stderr_logger(XC_ERROR),
                                  XC_SESSION_BUILDER);
    fd = open(argv[3], O_RDONLY | O_CLOEXEC);
    if ( pre_sock < 0 || !b || !xc_frames_buffer(b, 1) || fd < 0 ||
         sr_io_open_fd(&io, fd, true) )
    {
        perror("sandbox-probe: setting up");
        return 99;
    }
    result(xl_sandbox_enter(err, sizeof(err)) == 0, "xl_sandbox_enter");
    if ( n != 1 || failed )
        printf("# %s\n", err);

    /* The saved guest (examples/idle.cfg): 1 vCPU, 16 MiB. */
    a.builder = b;
    a.max_memkb = 16 * 1024;
    a.admitted_memkb = 64 * 1024;
    a.progress = progress;
    result(sr_restore_domain(io, &a, &r, msg, sizeof(msg)) == 0 && probed,
           "confined: the stream is parsed to its end around the probes");
    if ( msg[0] )
        printf("# %s\n", msg);
    if ( !probed )
        printf("# no memory phase was reported\n");
    if ( xc_domain_getinfo_single(b, r.domid, &info) == 0 )
        xc_domain_destroy(b, r.domid);
    sr_io_close(io);
    xc_interface_close(b);
    while ( n < PLAN )
        result(0, "a probe that did not run");
    return failed ? 1 : 0;
}
