/* SPDX-License-Identifier: MIT */
/*
 * xl-transport.h: the byte channel between `xl migrate` (the sender) and
 * `xl migrate-receive` (the receiver), whatever carries it.
 *
 * A channel is opened by the sender from the <host> argument of xl
 * migrate, or by the receiver from its stdin/stdout or an inherited
 * socket.  Above it, xl-migrate.c speaks Xen's handshake and the ferry
 * preamble through an sr_io (xl_chan_io()); this layer knows nothing of
 * the protocol.  Target forms (sender side):
 *
 *   HOST             sh -c "exec <ssh> HOST xl [-t] [-T] [-v...]
 *                    migrate-receive <recv args>", stdin/stdout on pipes
 *                    (Xen's behaviour).  With ssh command "" (-s ''),
 *                    HOST is the whole shell command, as in Xen.
 *   local:RUNDIR     this xl binary (/proc/self/exe) run directly as
 *                    `xl -H RUNDIR [-t] [-T] [-v...] migrate-receive
 *                    <recv args>` with pipes; no shell.
 *   tcp://ADDR:PORT  a TCP connection to `ferry-hv --migrate-listen
 *                    ADDR:PORT` on the target, which runs `xl -H <its run
 *                    dir> migrate-receive --fd N` on it.  recv args are
 *                    NOT sent (there is no command line); what the
 *                    receiver must know travels in the ferry preamble.
 *   tls://ADDR:PORT  the same with TLS on top, to a listener started as
 *                    `ferry-hv --migrate-listen tls://ADDR:PORT`.  ADDR is
 *                    an IPv4 address, a host name, or [IPv6].
 *
 * TLS (tls:// only): TLS 1.2 or later, mutual authentication.  Each side
 * presents its certificate and key and verifies the peer's certificate
 * chain against the fleet CA file (and the CRL file when there is one);
 * the peer must present a certificate signed by that CA or the handshake
 * fails.  The sender also checks that the target's certificate names the
 * host or address it dialled (or the name pinned with tls.name); the
 * receiver accepts only a sender whose subject DN matches a line of the
 * allow-list file (see xl_dn_allowed).  Default files are those of the
 * host xl talks to (-H): <run dir>/tls/host.pem, host.key, ca.pem,
 * allowed-dn, and crl.pem if it exists.
 *
 * Fleet key (tcp:// only): before anything else, each side proves that it
 * holds the fleet key (32 secret bytes, <run dir>/migrate.key by
 * default): the receiver sends a nonce, the sender its own nonce and an
 * HMAC-SHA256 over both under the key, the receiver its HMAC under
 * another label.  Every byte after that travels in records (xl-rec.h),
 * each with a ChaCha20-Poly1305 tag under a per-direction key derived
 * with HMAC-SHA256 from the key and both nonces, the record's sequence
 * number as the nonce, over its length and its data:
 * a byte changed, dropped, replayed or reordered on the path fails the
 * read that meets it ("record N from ADDR failed its MAC").  A receiver
 * started with insecure and no key file says so, and then only a sender
 * started with insecure talks to it (plain bytes, no proof either way).
 * The receiver gives a peer 10 s to prove it holds the key.
 *
 * Invariants:
 * - Functions return 0 or a negative errno and, on failure, put a one-line
 *   message (no trailing newline) naming the target, the file or the TLS
 *   failure in err[]; they never print or exit.  err may be NULL.
 * - SIGPIPE is set to SIG_IGN by xl_chan_connect()/xl_chan_accept() (and
 *   restored to SIG_DFL in the children we exec), so a dead peer shows as
 *   EPIPE on write and end-of-stream on read, never as a signal.
 * - TCP channels have TCP_NODELAY and SO_KEEPALIVE (idle 5 s, interval
 *   2 s, 3 probes), and while an operation waits with bytes the peer has
 *   not acknowledged, the link is declared down (-ETIMEDOUT, "no
 *   acknowledgement from ADDR:PORT for 10 s: the link is down") when
 *   nothing has come back from the peer for 10 s.  So a cut link fails the
 *   next read or write within about 10-15 s instead of hanging, while a
 *   receiver that is merely slow to read (its window closed, but it still
 *   answers window probes) is waited for.  (TCP_USER_TIMEOUT is not used:
 *   Linux applies it to a closed window too, and killed such healthy
 *   connections after 10 s.)
 * - Reads and writes are blocking.  An EINTR is retried unless the cancel
 *   flag given to xl_chan_set_cancel() is set, in which case the operation
 *   fails with -ECANCELED.  With xl_chan_set_timeout(), an operation that
 *   makes no progress for that long fails with -ETIMEDOUT.  Errors are
 *   sticky in the sr_io (see sr.h).
 * - The channel owns its fds, its sr_io, its TLS session and its child.
 *   Nothing is shared between channels, so a second channel to the same
 *   target (xl_chan_reopen, for "resolve") is independent of the first.
 * - Not thread-safe: one thread uses a channel at a time (xl_chan_pid()
 *   and reading the cancel flag excepted).  The channel's own writer
 *   thread (xl_chan_async) is invisible to its caller.
 */
#ifndef FERRY_XL_TRANSPORT_H
#define FERRY_XL_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct sr_io;
struct xl_chan;

#define XL_CHAN_ERRLEN 512

enum xl_chan_kind {
    XL_CHAN_SSH,        /* HOST (a shell command; ssh unless -s) */
    XL_CHAN_LOCAL,      /* local:RUNDIR */
    XL_CHAN_TCP,        /* tcp://ADDR:PORT */
    XL_CHAN_TLS,        /* tls://ADDR:PORT */
    XL_CHAN_STDIO,      /* receiver: stdin/stdout */
    XL_CHAN_FD,         /* receiver: an inherited socket (--fd N) */
};

/*
 * TLS files.  NULL members take the defaults (see above): for the sender
 * those of the -H run dir; the receiver is given explicit paths by its
 * caller (ferry-hv passes its own).  Paths are copied by the calls that
 * take them.
 */
struct xl_tls_files {
    const char *cert;   /* PEM certificate (chain) presented to the peer */
    const char *key;    /* PEM private key of cert */
    const char *ca;     /* PEM CA certificate(s) the peer must chain to */
    const char *crl;    /* PEM CRL(s) of the CA: NULL, the default if it
                         * exists; "" for none */
    const char *allow;  /* receiver: the allow-list of sender DNs */
    const char *name;   /* sender: the name the target's certificate must
                         * carry; NULL: the host or address dialled */
};

/* The fleet key for tcp://.  key_file NULL: <run dir>/migrate.key. */
struct xl_auth {
    const char *key_file;
    bool insecure;      /* no key: talk without one (see above) */
};

/* How the sender reaches its receiver. */
struct xl_chan_opts {
    /* Shell command for HOST targets: NULL means "ssh"; "" means HOST is
     * the whole command (xl migrate -s ''). */
    const char *ssh_command;
    /* Arguments after "migrate-receive" for HOST and local: targets, e.g.
     * {"-e", "-d", NULL}; NULL for none.  Ignored for tcp:// and tls://.
     * xl's global -t, -T and -v are added from xl's own globals
     * (progress_use_cr or a tty on stderr, timestamps, minmsglevel). */
    const char *const *recv_args;
    struct xl_tls_files tls;    /* tls:// only */
    struct xl_auth auth;        /* tcp:// only */
    /* Connect timeout in ms for tcp/tls (connect + TLS handshake); 0
     * means 15000. */
    int connect_timeout_ms;
};

/* ---- sender ---------------------------------------------------------- */

/*
 * Open a channel to target (one of the forms above).  For HOST/local the
 * child is started and the call returns at once (a receiver that fails to
 * start shows as end-of-stream on the first read; its stderr is ours, as
 * in Xen).  For tcp:// and tls:// it returns once connected (and the TLS
 * handshake done, peer verified).  Errors: -EINVAL bad target string,
 * -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH..., -EPROTO TLS failure
 * (err names it: "TLS handshake with tls://...: certificate verify
 * failed", "peer refused our certificate", "target is not a TLS listener
 * (try tcp://)"), -ENOENT/-EACCES for a TLS file (err names the file).
 */
int xl_chan_connect(struct xl_chan **chp, const char *target,
                    const struct xl_chan_opts *opts,
                    char *err, size_t errlen);

/* A new, independent channel to the same target with the same options
 * (e.g. for "resolve" after the first channel broke). */
int xl_chan_reopen(const struct xl_chan *ch, struct xl_chan **newp,
                   char *err, size_t errlen);

/* The shell command run for a HOST target (NULL for other kinds); for
 * messages such as Xen's "(command run was: %s )". */
const char *xl_chan_rune(const struct xl_chan *ch);

/* ---- receiver -------------------------------------------------------- */

/*
 * Accept the sender's side.  fd < 0: stdin (read) / stdout (write); the
 * channel dups them and points fds 0 and 1 at /dev/null so that nothing
 * else can write into the stream.  fd >= 0: a connected socket inherited
 * from ferry-hv (--fd N); the channel owns it.  tls non-NULL (socket
 * only): act as TLS server, require and verify a client certificate
 * signed by tls->ca; all three files must then be given (no defaults),
 * and the client's subject must be on tls->allow.  A socket without tls:
 * the fleet key exchange (auth: the key file, or insecure), within 10 s.
 * A failed handshake returns -EPROTO with err naming the failure (e.g.
 * "TLS handshake with 127.0.0.1:40112 failed: peer did not return a
 * certificate"); the caller logs it and exits 1.
 */
int xl_chan_accept(struct xl_chan **chp, int fd,
                   const struct xl_tls_files *tls,
                   const struct xl_auth *auth,
                   char *err, size_t errlen);

/*
 * Whether dn (RFC 2253 form, as `openssl x509 -noout -subject -nameopt
 * RFC2253` prints it) matches a line of the allow-list file: one pattern
 * per line, fnmatch(3) globs ('*', '?', '[...]'), blank lines and lines
 * starting with '#' ignored.  1 yes, 0 no, -errno if the file cannot be
 * read.
 */
int xl_dn_allowed(const char *file, const char *dn);

/* "ADDR:PORT" of the peer for socket channels, else "" (for logging). */
const char *xl_chan_peer(const struct xl_chan *ch);

/* The TLS cipher suite the channel negotiated, or NULL when not TLS. */
const char *xl_chan_tls_cipher(const struct xl_chan *ch);

/* ---- both sides ------------------------------------------------------ */

enum xl_chan_kind xl_chan_kind(const struct xl_chan *ch);

/*
 * The channel's byte stream as an sr_io, owned by the channel (do not
 * sr_io_close it).  Reads are buffered inside the channel; use only this
 * io (or xl_chan_read_line, which goes through it) to read.
 */
struct sr_io *xl_chan_io(struct xl_chan *ch);

/*
 * For a parent that forwards the stream to a confined parser
 * (xl-sandbox.c) instead of reading it through the io: whether bytes are
 * buffered in the channel already (a read returns at once); a wait until
 * the channel (1) or fd (2) is readable, under the channel's timeout and
 * link watch (-ETIMEDOUT, -ECANCELED, -errno); and a read of what comes
 * (at most len bytes; 0 at end of stream, or -errno, the io's error set
 * when the transport has more to say, such as a record's failed MAC).  These bypass the io's digest, which the parser
 * keeps.
 */
bool xl_chan_pending(const struct xl_chan *ch);
int xl_chan_wait_read(struct xl_chan *ch, int fd);
ssize_t xl_chan_read_some(struct xl_chan *ch, void *buf, size_t len);

/*
 * Read one '\n'-terminated line of at most len-1 bytes (the newline is
 * stripped, a NUL added).  -E2BIG if no newline within len-1 bytes,
 * -ENODATA at end of stream; other errors from the io.
 */
int xl_chan_read_line(struct xl_chan *ch, char *buf, size_t len);

/*
 * The reason a side gives when it stops in the middle of a stream (a
 * "ferry-error ..." line), written and read even after the io has failed.
 * An io error is sticky (sr.h), but it belongs to one direction: when a
 * record from the sender fails its MAC, or the receiver resets the
 * connection under the sender's writes, the other direction still
 * carries the line.  While the io is healthy these go through it (as
 * xl_chan_read_line); after it failed, straight through the channel
 * (records, TLS or plain bytes).  0 or a negative errno.
 */
int xl_chan_write_reason(struct xl_chan *ch, const char *line);
int xl_chan_read_reason(struct xl_chan *ch, char *buf, size_t len);

/*
 * A writer thread for a stream (the sender's live save), on or off.
 * While on, writes are copied into a ring of 256 KiB buffers (4 MiB in
 * all) and return; a second thread sends each full buffer: as one record
 * for authenticated tcp://, through SSL_write for tls://, or into the
 * pipe.  So the caller prepares the next data while the last is MAC'd,
 * encrypted and copied into the socket, and small writes share records.
 * A read first waits until everything written has been sent.  Turning
 * it off sends what is left and stops the thread: 0, or the first send
 * error (the io holds it and its message).  A send error shows on the
 * next write; reads still work, so the peer's reason can be read.
 * xl_chan_set_cancel, xl_chan_set_timeout, xl_chan_write_reason and
 * xl_chan_shutdown_write turn it off first; xl_chan_close drops what is
 * still queued.  The cancel flag and the timeout apply to the writer's
 * waits as to the caller's.
 */
int xl_chan_async(struct xl_chan *ch, bool on);

/* Poll this flag on EINTR (see above); NULL to clear. */
void xl_chan_set_cancel(struct xl_chan *ch, const _Atomic bool *cancel);

/* 0: block forever (the default).  Otherwise a read or write that makes no
 * progress for ms milliseconds fails with -ETIMEDOUT. */
void xl_chan_set_timeout(struct xl_chan *ch, int ms);

/*
 * Half-close: tell the peer we will write no more (it reads end-of-stream)
 * while we can still read.  Pipes: closes the write pipe; TCP:
 * shutdown(SHUT_WR); TLS: close_notify then shutdown(SHUT_WR).
 */
int xl_chan_shutdown_write(struct xl_chan *ch);

/* The child process (HOST/local channels), else -1; for tests and
 * messages.  Still valid after the child was reaped. */
pid_t xl_chan_pid(const struct xl_chan *ch);

/*
 * Wait up to timeout_ms (-1: forever, 0: just poll) for the child to
 * exit and reap it.  Returns 0 and *status (waitpid status) once reaped
 * (also on later calls), -EAGAIN if still running at the timeout,
 * -ECHILD if the channel has no child.
 */
int xl_chan_wait(struct xl_chan *ch, int timeout_ms, int *status);

/*
 * Close the channel and free it.  A child still running is given its
 * end-of-stream and up to 10 s to exit (it may be aborting: destroying its
 * half-built domain), and is reaped.  If it is still running after that,
 * an ssh child is sent SIGTERM and reaped (the remote receiver then reads
 * end-of-stream and aborts by itself); a local: receiver is never killed
 * (killing it could leave its half-built domain behind) and is left to
 * finish on its own.  status (may be NULL) gets the child's waitpid
 * status, or -1 if there was no child or it was left running.  Returns
 * the io's sticky error, else 0.  xl_chan_close(NULL) is a no-op.
 */
int xl_chan_close(struct xl_chan *ch, int *status);

/* Default TLS file of the host xl talks to: "<run dir>/tls/<name>"
 * (malloc'd; NULL on ENOMEM).  name is "host.pem", "host.key" or
 * "ca.pem". */
char *xl_tls_default_path(const char *name);

/* The default fleet key file of the host xl talks to:
 * "<run dir>/migrate.key" (malloc'd; NULL on ENOMEM). */
char *xl_auth_default_path(void);

/*
 * Read a fleet key file: 64 hex digits (a newline may follow).  It must
 * not be readable by group or others.  0, or -errno with err naming the
 * file and what is wrong with it.
 */
int xl_auth_load_key(const char *path, unsigned char key[32], char *err,
                     size_t errlen);

#endif /* FERRY_XL_TRANSPORT_H */
