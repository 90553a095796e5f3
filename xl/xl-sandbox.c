/* SPDX-License-Identifier: MIT */
/*
 * xl-sandbox.c: the confined stream parser of xl restore and xl
 * migrate-receive (ferry-hv(8), THREAT MODEL).
 *
 * A builder session already keeps machine memory out of the process that
 * parses a save file or a migration stream.  But a parser that is taken
 * over runs as the daemon's user: it could connect to the daemon's socket
 * again and ask for a full session, open /proc/<daemon>/mem or the
 * machine-memory memfd under /proc/<daemon>/fd, ptrace the daemon, or run
 * a program.  So the parse runs in a child that first gives up any way to
 * get new authority.
 *
 * Which process is confined.  After the restore, xl names, unpauses and
 * commits the domain through its control session, speaks the rest of the
 * migration handshake, and forks the domain's monitor, which needs more
 * than a parser may have.  So the parent does all that and never parses
 * the page stream; a child does nothing else.  The parent opens the
 * builder session (the child has the same socket), forks, and the child:
 * sets up the session's staging area (a memfd, which it could not make
 * later), drops the control session and every fd but its input, the
 * builder socket, its report pipe and 0-2, sets PR_SET_NO_NEW_PRIVS and
 * the seccomp filter below (on every thread: SECCOMP_FILTER_FLAG_TSYNC),
 * and only then reads the stream.  A save file is read by the child
 * itself (the fd its parent opened); a channel's bytes (TLS, MAC'd
 * records, pipes) are read by the parent, which checks the transport's
 * integrity as before and forwards the plain stream down a pipe to the
 * child's copy of the channel's io, so that the digest runs on in the
 * child and the transport's state (TLS sequence numbers, record keys)
 * stays with the parent, which goes on with the handshake.  The parent
 * stops forwarding when the child reports its result or the channel
 * fails or stays idle past its timeout; then it closes the pipe, so a
 * child still short of bytes fails on end of stream, while one that has
 * all of them (the trailer is read exactly) finishes.
 *
 * What comes back is a fixed-size report (the engine's progress, for the
 * parent's progress bar and fault hooks, and the result), checked before
 * use: the domain it names must be the one bound to the builder session,
 * asked through the parent's copy of that session once the child is gone
 * (the daemon allows a builder session nothing else), and carry the uuid
 * the parent chose.  So a lying child cannot make the parent name,
 * unpause or destroy another domain.  Holding a copy of the session also
 * means that a child that fails or dies leaves nothing: the parent closes
 * the last copy and the host destroys the unfinished domain (ferry-hv
 * keeps a builder's domain only once told the build is done, which the
 * parent does when it settles the domain).  The xl header and the config JSON
 * before the page stream are read and parsed by the parent (json-c), as
 * the admission checks need them.
 *
 * The filter is a deny-list returning EPERM: the C library, OpenSSL, zlib
 * and the sanitizers (the CI runs the suite under ASan, UBSan and TSan)
 * make calls an allow-list would have to guess, and EPERM rather than a
 * kill keeps a sanitizer's report readable.  Denied, each for a reason:
 * - new connections: socket, connect, bind, listen, accept, accept4 (a
 *   second HELLO would get a full session);
 * - new fds on files: open, openat, openat2, creat, open_by_handle_at
 *   (/proc/<daemon>/mem, /proc/<daemon>/fd/N, anything on disk);
 *   io_uring_setup/enter/register (io_uring runs opens outside the
 *   filter); memfd_create, memfd_secret, userfaultfd, perf_event_open,
 *   bpf, fanotify_init (fds of kinds a parser has no use for);
 * - programs: execve, execveat (a new image would leave the parser's
 *   state, not the filter, behind, but nothing needs it);
 * - other processes: ptrace, process_vm_readv/writev, process_madvise,
 *   pidfd_open, pidfd_getfd (another process's fds: the daemon's memfd),
 *   pidfd_send_signal, kcmp, migrate_pages, move_pages; kill, tkill and
 *   tgkill except to this process (abort() and sanitizers signal
 *   themselves); prlimit64 except on this process; fork, vfork, clone
 *   without CLONE_THREAD (no process may outlive the parser holding the
 *   builder socket, which its parent questions afterwards), and clone3,
 *   whose flags a filter cannot read (ENOSYS, so the C library falls back
 *   to clone);
 * - changes to the file system by path or held fd: unlink(at),
 *   rename(at,at2), link(at), symlink(at), mkdir(at), rmdir, mknod(at),
 *   chmod, fchmod, fchmodat, chown, fchown, lchown, fchownat, truncate,
 *   ftruncate, utime(s), utimensat, futimesat, the xattr setters and
 *   removers (a parser running as root could otherwise open up a file for
 *   others);
 * - the machine and the kernel (for root): mount, umount2, pivot_root,
 *   chroot, unshare, setns, the new mount API (fsopen, fsconfig,
 *   fsmount, fspick, open_tree, move_mount, mount_setattr), personality,
 *   keyctl, add_key, request_key, kexec_load, kexec_file_load,
 *   init_module, finit_module, delete_module, reboot, swapon, swapoff,
 *   acct, quotactl, syslog, iopl, ioperm, settimeofday, clock_settime,
 *   clock_adjtime, adjtimex, sethostname, setdomainname, vhangup;
 * - ioctl TIOCSTI and TIOCLINUX (typing into the terminal on fd 0-2);
 * - any other architecture's calls (i386's int 0x80) and x32 numbers.
 *
 * What a taken-over parser can still do: everything its builder session
 * allows on its one domain (build it wrong; the daemon checks every
 * frame), write to the fds it keeps (its report pipe, with reports the
 * parent checks; fds 0-2, such as a terminal or a log), use the memory
 * and CPU its limits allow, and read what its memory holds, which is a
 * copy of its parent's (a TLS key or the fleet key loaded by
 * migrate-receive), but with no way to send it anywhere but 0-2 and the
 * report pipe.  Calls not listed (sched_setaffinity, setpriority of other
 * processes of the same user, signals to its own threads) are left.
 *
 * Style: Xen's xl/libxl style.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "xl-sandbox.h"
#include "xl-transport.h"

#if defined(__x86_64__)
#define SANDBOX_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SANDBOX_ARCH AUDIT_ARCH_AARCH64
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARG_LO(n) (offsetof(struct seccomp_data, args[n]))
#else
#define ARG_LO(n) (offsetof(struct seccomp_data, args[n]) + 4)
#endif

#define DENY (SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))
#define NOSYS (SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA))

/* The calls denied outright (see the header comment for why each). */
static const int denied[] = {
#ifdef __NR_socket
    __NR_socket, __NR_connect, __NR_bind, __NR_listen, __NR_accept4,
#endif
#ifdef __NR_accept
    __NR_accept,
#endif
#ifdef __NR_open
    __NR_open,
#endif
#ifdef __NR_creat
    __NR_creat,
#endif
    __NR_openat,
#ifdef __NR_openat2
    __NR_openat2,
#endif
    __NR_open_by_handle_at,
#ifdef __NR_io_uring_setup
    __NR_io_uring_setup, __NR_io_uring_enter, __NR_io_uring_register,
#endif
    __NR_memfd_create,
#ifdef __NR_memfd_secret
    __NR_memfd_secret,
#endif
    __NR_userfaultfd, __NR_perf_event_open, __NR_bpf, __NR_fanotify_init,
    __NR_execve, __NR_execveat,
    __NR_ptrace, __NR_process_vm_readv, __NR_process_vm_writev,
#ifdef __NR_process_madvise
    __NR_process_madvise,
#endif
#ifdef __NR_pidfd_open
    __NR_pidfd_open,
#endif
#ifdef __NR_pidfd_getfd
    __NR_pidfd_getfd,
#endif
#ifdef __NR_pidfd_send_signal
    __NR_pidfd_send_signal,
#endif
    __NR_kcmp, __NR_migrate_pages, __NR_move_pages,
#ifdef __NR_fork
    __NR_fork, __NR_vfork,
#endif
#ifdef __NR_unlink
    __NR_unlink, __NR_rename, __NR_link, __NR_symlink, __NR_mkdir,
    __NR_rmdir, __NR_mknod, __NR_chmod, __NR_chown, __NR_lchown,
    __NR_utime, __NR_utimes, __NR_futimesat,
#endif
    __NR_unlinkat, __NR_renameat,
#ifdef __NR_renameat2
    __NR_renameat2,
#endif
    __NR_linkat, __NR_symlinkat, __NR_mkdirat, __NR_mknodat,
    __NR_fchmod, __NR_fchmodat, __NR_fchown, __NR_fchownat,
    __NR_truncate, __NR_ftruncate, __NR_utimensat,
    __NR_setxattr, __NR_lsetxattr, __NR_fsetxattr,
    __NR_removexattr, __NR_lremovexattr, __NR_fremovexattr,
    __NR_mount, __NR_umount2, __NR_pivot_root, __NR_chroot,
    __NR_unshare, __NR_setns,
#ifdef __NR_fsopen
    __NR_fsopen, __NR_fsconfig, __NR_fsmount, __NR_fspick,
    __NR_open_tree, __NR_move_mount,
#endif
#ifdef __NR_mount_setattr
    __NR_mount_setattr,
#endif
    __NR_personality, __NR_keyctl, __NR_add_key, __NR_request_key,
    __NR_kexec_load,
#ifdef __NR_kexec_file_load
    __NR_kexec_file_load,
#endif
    __NR_init_module, __NR_finit_module, __NR_delete_module,
    __NR_reboot, __NR_swapon, __NR_swapoff, __NR_acct, __NR_quotactl,
    __NR_syslog,
#ifdef __NR_iopl
    __NR_iopl, __NR_ioperm,
#endif
    __NR_settimeofday, __NR_clock_settime, __NR_clock_adjtime,
    __NR_adjtimex, __NR_sethostname, __NR_setdomainname, __NR_vhangup,
};

#define NR_DENIED (sizeof(denied) / sizeof(denied[0]))
/* Fixed part: arch check (3), x32 (2 on x86-64), clone3 (2), clone (5),
 * kill-like (3 x 5), prlimit64 (6), ioctl (6), allow (1). */
#define PROG_MAX (2 * NR_DENIED + 48)

#define STMT(c, k) ((struct sock_filter)BPF_STMT((c), (k)))
#define JUMP(c, k, t, f) ((struct sock_filter)BPF_JUMP((c), (k), (t), (f)))
#define LD_NR STMT(BPF_LD | BPF_W | BPF_ABS, \
                   offsetof(struct seccomp_data, nr))

/*
 * The filter.  Each rule reloads the call number and either returns at
 * once or falls through to the next, so no jump is longer than a rule.
 */
static unsigned int build_filter(struct sock_filter *f, uint32_t self)
{
    static const int self_only[] = { __NR_kill, __NR_tkill, __NR_tgkill };
    unsigned int n = 0;

    f[n++] = STMT(BPF_LD | BPF_W | BPF_ABS,
                  offsetof(struct seccomp_data, arch));
    f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, SANDBOX_ARCH, 1, 0);
    f[n++] = STMT(BPF_RET | BPF_K, DENY);
    f[n++] = LD_NR;
#ifdef __x86_64__
    f[n++] = JUMP(BPF_JMP | BPF_JGE | BPF_K, __X32_SYSCALL_BIT, 0, 1);
    f[n++] = STMT(BPF_RET | BPF_K, DENY);
#endif
    for (unsigned int i = 0; i < NR_DENIED; i++) {
        f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)denied[i], 0, 1);
        f[n++] = STMT(BPF_RET | BPF_K, DENY);
    }
#ifdef __NR_clone3
    f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1);
    f[n++] = STMT(BPF_RET | BPF_K, NOSYS);
#endif
    /* clone: threads only (the flags are the first argument on x86-64
     * and arm64 alike). */
    f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 4);
    f[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(0));
    f[n++] = JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 0, 1);
    f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[n++] = STMT(BPF_RET | BPF_K, DENY);
    /* Signals to this process only: the pid (the thread group for
     * tgkill) is the first argument, an int. */
    for (unsigned int i = 0; i < 3; i++) {
        f[n++] = LD_NR;
        f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)self_only[i],
                      0, 3);
        f[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(0));
        f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, self, 1, 0);
        f[n++] = STMT(BPF_RET | BPF_K, DENY);
    }
    f[n++] = LD_NR;
    f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_prlimit64, 0, 4);
    f[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(0));
    f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 2, 0);
    f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, self, 1, 0);
    f[n++] = STMT(BPF_RET | BPF_K, DENY);
    f[n++] = LD_NR;
    f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 4);
    f[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(1));
    f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, TIOCSTI, 1, 0);
    f[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, TIOCLINUX, 0, 1);
    f[n++] = STMT(BPF_RET | BPF_K, DENY);
    f[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    return n;
}

int xl_sandbox_enter(char *err, size_t len)
{
#ifdef SANDBOX_ARCH
    struct sock_filter f[PROG_MAX];
    struct sock_fprog prog;
    EVP_MD *md;
    EVP_MAC *mac;
    long rc;

    /*
     * OpenSSL reads its configuration and sets up its providers on first
     * use, opening files: have that done while it still can, so that the
     * digest of the stream works inside.
     */
    OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL);
    md = EVP_MD_fetch(NULL, "SHA256", NULL);
    mac = EVP_MAC_fetch(NULL, "POLY1305", NULL);
    EVP_MD_free(md);
    EVP_MAC_free(mac);

    prog.len = (unsigned short)build_filter(f, (uint32_t)getpid());
    prog.filter = f;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
        snprintf(err, len, "cannot set no_new_privs: %s", strerror(errno));
        return -errno;
    }
    /* TSYNC: threads already running (a sanitizer's, an io's) too. */
    rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                 SECCOMP_FILTER_FLAG_TSYNC, &prog);
    if (rc) {
        int e = rc > 0 ? EBUSY : errno;

        snprintf(err, len, "cannot install the seccomp filter: %s%s",
                 strerror(e), rc > 0 ? " (a thread could not take it)" : "");
        return -e;
    }
    return 0;
#else
    snprintf(err, len, "no seccomp filter for this architecture");
    return -ENOSYS;
#endif
}

int xl_close_fds_except(const int *keep, unsigned int n)
{
    unsigned int from = 3;

    /* Ascending walk over the kept fds, closing the gaps between them. */
    for (;;) {
        unsigned int next = UINT_MAX;

        for (unsigned int i = 0; i < n; i++)
            if (keep[i] >= (int)from && (unsigned int)keep[i] < next)
                next = (unsigned int)keep[i];
        if (next > from && close_range(from, next - 1, 0))
            return -errno;
        if (next == UINT_MAX)
            return 0;
        from = next + 1;
    }
}

/* ------------------------------------------------------------------------
 * The parser child and its reports
 * ------------------------------------------------------------------------ */

enum { MSG_PROGRESS = 1, MSG_DONE = 2, MSG_CREATED = 3 };

struct parser_msg {
    uint32_t kind;
    int32_t rc;
    struct sr_progress prog;
    uint32_t domid;
    uint32_t digest_checked;
    uint64_t pages_received, verify_mismatches;
    uint64_t t_last_page_ns, t_done_ns;
    char msg[512];
};

/* One write each, so that reports never interleave or split. */
_Static_assert(sizeof(struct parser_msg) <= PIPE_BUF,
               "a parser report must fit one atomic pipe write");

static int msg_write(int fd, const struct parser_msg *m)
{
    ssize_t n;

    do {
        n = write(fd, m, sizeof(*m));
    } while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof(*m) ? 0 : -1;
}

static void child_progress(void *arg, const struct sr_progress *p)
{
    struct parser_msg m = { .kind = MSG_PROGRESS, .prog = *p };

    msg_write(*(int *)arg, &m);
}

/*
 * The domain exists: the parent names it (args->created) through its
 * control session, which the child no longer has.  A failure there shows
 * in the parent, which then ends the stream.
 */
static int child_created(void *arg, uint32_t domid, char *msg, size_t len)
{
    struct parser_msg m = { .kind = MSG_CREATED, .domid = domid };

    (void)msg;
    (void)len;
    return msg_write(*(int *)arg, &m);
}

static ssize_t pipe_read(void *arg, void *buf, size_t len)
{
    ssize_t n;

    do {
        n = read(*(int *)arg, buf, len);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

static const struct sr_io_user_ops pipe_ops = { .read = pipe_read };

static _Noreturn void child_run(xc_interface *xch, xc_interface *builder,
                                int msg_fd, int in_fd, struct sr_io *io,
                                const struct sr_restore_args *args)
{
    struct sr_restore_args a = *args;
    struct sr_restore_result res = { 0 };
    struct parser_msg m = { .kind = MSG_DONE, .rc = -EIO };
    int keep[3] = { msg_fd, in_fd, xc_interface_fd(builder) };
    int rc;

    /* A parent gone shows as EPIPE on the report, not as a signal. */
    signal(SIGPIPE, SIG_IGN);
    /* The staging area is a memfd, which cannot be made once confined. */
    if (!xc_frames_buffer(builder, 1)) {
        snprintf(m.msg, sizeof(m.msg), "cannot set up a staging area with"
                 " the host: %s", strerror(errno));
        goto report;
    }
    xc_interface_close(xch);
    rc = xl_close_fds_except(keep, 3);
    if (!rc)
        rc = io ? sr_io_set_user(io, &pipe_ops, &in_fd)
                : sr_io_open_fd(&io, in_fd, true);
    if (rc) {
        snprintf(m.msg, sizeof(m.msg), "cannot set up the stream parser:"
                 " %s", strerror(-rc));
        goto report;
    }
    if (xl_sandbox_enter(m.msg, sizeof(m.msg))) {
        m.rc = -EPERM;
        goto report;
    }
    a.xch = NULL;
    a.builder = builder;
    a.progress = args->progress ? child_progress : NULL;
    a.progress_arg = &msg_fd;
    a.created = args->created ? child_created : NULL;
    a.created_arg = &msg_fd;
    /* The engine's buffers go with the child. */
    a.defer_release = false;
    m.rc = sr_restore_domain(io, &a, &res, m.msg, sizeof(m.msg));
    m.domid = res.domid;
    m.digest_checked = res.digest_checked;
    m.pages_received = res.pages_received;
    m.verify_mismatches = res.verify_mismatches;
    m.t_last_page_ns = res.t_last_page_ns;
    m.t_done_ns = res.t_done_ns;
 report:
    /* Nobody to name the domain: it goes. */
    if (msg_write(msg_fd, &m) && !m.rc)
        xc_domain_destroy(builder, res.domid);
    _exit(0);
}

int xl_parser_start(struct xl_parser *p, xc_interface *xch, int in_fd,
                    struct sr_io *io, const struct sr_restore_args *args,
                    char *msg, size_t len)
{
    int mp[2] = { -1, -1 }, dp[2] = { -1, -1 };
    pid_t parent;

    p->pid = -1;
    p->msg_fd = p->data_fd = -1;
    p->builder = xc_builder_open(xch);
    if (!p->builder) {
        snprintf(msg, len, "cannot open a builder session with the host:"
                 " %s", strerror(errno));
        return -1;
    }
    if (pipe2(mp, O_CLOEXEC) || (io && pipe2(dp, O_CLOEXEC))) {
        snprintf(msg, len, "cannot make a pipe: %s", strerror(errno));
        goto fail;
    }
    /* Whole batches per wakeup (xl-transport.c's widen_pipe). */
    if (io)
        fcntl(dp[1], F_SETPIPE_SZ, 1 << 20);
    fflush(NULL);
    parent = getpid();
    p->pid = fork();
    if (p->pid < 0) {
        snprintf(msg, len, "cannot fork the stream parser: %s",
                 strerror(errno));
        goto fail;
    }
    if (p->pid == 0) {
        /* A parser that outlived its xl (killed, or crashed) would go on
         * building a domain nobody will name: it dies with its parent,
         * and the builder session's close destroys the domain. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
            _exit(1);
        close(mp[0]);
        if (io)
            close(dp[1]);
        child_run(xch, p->builder, mp[1], io ? dp[0] : in_fd, io, args);
    }
    close(mp[1]);
    p->msg_fd = mp[0];
    if (io) {
        close(dp[0]);
        p->data_fd = dp[1];
        /* Written only when poll says so, between the child's reports. */
        fcntl(p->data_fd, F_SETFL, O_NONBLOCK);
    }
    return 0;
 fail:
    for (int i = 0; i < 2; i++) {
        if (mp[i] >= 0)
            close(mp[i]);
        if (dp[i] >= 0)
            close(dp[i]);
    }
    xc_interface_close(p->builder);
    p->builder = NULL;
    return -1;
}

/* Exactly one report: 0, or -1 at end of pipe (the child is gone). */
static int msg_read(int fd, struct parser_msg *m)
{
    size_t done = 0;
    ssize_t n;

    while (done < sizeof(*m)) {
        n = read(fd, (char *)m + done, sizeof(*m) - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

struct finish {
    struct xl_parser *p;
    const struct sr_restore_args *args;
    struct parser_msg result;
    bool done, gone;
    char created_err[256];      /* naming the new domain failed */
    uint64_t forwarded;         /* stream bytes the parent passed on */
};

static void stop_forwarding(struct xl_parser *p);

/* Take one report from the child. */
static void take_report(struct finish *f)
{
    struct parser_msg m;

    if (msg_read(f->p->msg_fd, &m)) {
        f->gone = true;
        return;
    }
    if (m.kind == MSG_PROGRESS && f->args->progress) {
        f->args->progress(f->args->progress_arg, &m.prog);
    } else if (m.kind == MSG_CREATED && f->args->created &&
               !f->created_err[0]) {
        xc_domaininfo_t info;

        /* Only a domain with our uuid (admission made it unique); the
         * builder session confirms it at the end. */
        if (xc_domain_getinfo_single(f->args->xch, m.domid, &info) ||
            info.domain != m.domid ||
            memcmp(info.handle, f->args->uuid, sizeof(info.handle)))
            snprintf(f->created_err, sizeof(f->created_err), "the stream"
                     " parser reported creating domain %u, which is not"
                     " the one it built", m.domid);
        else
            f->args->created(f->args->created_arg, m.domid, f->created_err,
                             sizeof(f->created_err));
        if (f->created_err[0])
            stop_forwarding(f->p);
    } else if (m.kind == MSG_DONE) {
        m.msg[sizeof(m.msg) - 1] = '\0';
        f->result = m;
        f->done = true;
    }
}

static void stop_forwarding(struct xl_parser *p)
{
    if (p->data_fd >= 0)
        close(p->data_fd);
    p->data_fd = -1;
}

/* Forward buf to the child, taking its reports meanwhile. */
static void forward(struct finish *f, const uint8_t *buf, size_t len)
{
    struct xl_parser *p = f->p;

    while (len && p->data_fd >= 0 && !f->done && !f->gone) {
        struct pollfd pf[2] = {
            { .fd = p->data_fd, .events = POLLOUT },
            { .fd = p->msg_fd, .events = POLLIN },
        };
        ssize_t n;

        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            stop_forwarding(p);
            return;
        }
        if (pf[1].revents) {
            take_report(f);
            continue;
        }
        n = write(p->data_fd, buf, len);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n < 0) {
            /* The child closed its end: its report says why. */
            stop_forwarding(p);
            return;
        }
        buf += n;
        len -= (size_t)n;
        f->forwarded += (uint64_t)n;
    }
}

#define FORWARD_BUF (256 * 1024)

int xl_parser_finish(struct xl_parser *p, struct xl_chan *ch,
                     const struct sr_restore_args *args,
                     struct sr_restore_result *res, char *msg, size_t len)
{
    struct finish f = { .p = p, .args = args };
    struct sr_io *io = ch ? xl_chan_io(ch) : NULL;
    xc_domaininfo_t info;
    char chan_err[256] = "";
    uint8_t *buf = NULL;
    int status = 0, rc = -1;
    ssize_t n;

    if (ch && !(buf = malloc(FORWARD_BUF))) {
        snprintf(chan_err, sizeof(chan_err), "out of memory");
        stop_forwarding(p);
    }
    while (!f.done && !f.gone) {
        if (p->data_fd < 0) {
            take_report(&f);
            continue;
        }
        n = xl_chan_wait_read(ch, p->msg_fd);
        if (n == 2) {
            take_report(&f);
            continue;
        }
        if (n == 1 && (n = xl_chan_read_some(ch, buf, FORWARD_BUF)) > 0) {
            forward(&f, buf, (size_t)n);
            continue;
        }
        /*
         * End of stream, a transport failure or the idle timeout: the
         * child gets end of stream, which fails it unless it already has
         * the whole stream.
         */
        if (n < 0) {
            if (!sr_io_error(io))
                sr_io_fail(io, (int)n, "read failed at offset %llu: %s",
                           (unsigned long long)(sr_io_offset(io) +
                                                f.forwarded),
                           strerror((int)-n));
            snprintf(chan_err, sizeof(chan_err), "%s", sr_io_errmsg(io));
        }
        stop_forwarding(p);
    }
    stop_forwarding(p);
    free(buf);
    close(p->msg_fd);
    p->msg_fd = -1;
    while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
        ;
    *res = (struct sr_restore_result){ .domid = 0 };
    if (!f.done) {
        if (chan_err[0])
            snprintf(msg, len, "%s", chan_err);
        else if (WIFSIGNALED(status))
            snprintf(msg, len, "the stream parser (pid %ld) died of signal"
                     " %d", (long)p->pid, WTERMSIG(status));
        else
            snprintf(msg, len, "the stream parser (pid %ld) ended without"
                     " a result", (long)p->pid);
        goto out;
    }
    if (f.created_err[0]) {
        snprintf(msg, len, "%s", f.created_err);
        goto out;
    }
    if (f.result.rc) {
        snprintf(msg, len, "%s", chan_err[0] ? chan_err : f.result.msg);
        goto out;
    }
    /*
     * The child is gone: its session is ours to ask.  A builder session
     * may look only at the domain bound to it.
     */
    if (f.result.domid >= DOMID_FIRST_RESERVED ||
        xc_domain_getinfo_single(p->builder, f.result.domid, &info) ||
        info.domain != f.result.domid ||
        memcmp(info.handle, args->uuid, sizeof(info.handle))) {
        snprintf(msg, len, "the stream parser reported domain %u, which is"
                 " not the one it built", f.result.domid);
        goto out;
    }
    snprintf(msg, len, "%s", f.result.msg);
    res->domid = f.result.domid;
    res->digest_checked = f.result.digest_checked;
    res->pages_received = f.result.pages_received;
    res->verify_mismatches = f.result.verify_mismatches;
    res->t_last_page_ns = f.result.t_last_page_ns;
    res->t_done_ns = f.result.t_done_ns;
    /* The session the domain dies with until the caller settles it. */
    if (args->keep_builder) {
        res->builder = p->builder;
        p->builder = NULL;
    }
    rc = 0;
 out:
    /* On failure the last copy of the session closes here, and the host
     * destroys whatever the child built and did not finish. */
    xc_interface_close(p->builder);
    p->builder = NULL;
    return rc;
}
