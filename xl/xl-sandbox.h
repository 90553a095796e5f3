/* SPDX-License-Identifier: MIT */
/*
 * xl-sandbox.h: the confined stream parser of xl restore and xl
 * migrate-receive (design in xl-sandbox.c; ferry-hv(8), THREAT MODEL).
 */
#ifndef FERRY_XL_SANDBOX_H
#define FERRY_XL_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "../libxc/xc.h"
#include "../saverestore/sr.h"

struct xl_chan;

/*
 * Confine the calling process for good: no new privileges, and a seccomp
 * filter under which the calls listed in xl-sandbox.c fail with EPERM, in
 * every thread.  0, or -errno with err naming what failed.
 */
int xl_sandbox_enter(char *err, size_t len);

/* Close every fd from 3 up except the n in keep.  0 or -errno. */
int xl_close_fds_except(const int *keep, unsigned int n);

/* A confined parser child running sr_restore_domain. */
struct xl_parser {
    pid_t pid;
    int msg_fd;             /* its reports (parent's end) */
    int data_fd;            /* the stream forwarded to it, or -1 */
    xc_interface *builder;  /* the parent's handle on the child's session */
};

/*
 * Fork the parser.  The child opens a builder session with xch's host and
 * its staging area, drops xch and every other fd, confines itself
 * (xl_sandbox_enter) and restores with args (its xch and builder
 * replaced): from fd in_fd (a save file, read by an io of its own) when io
 * is NULL, else from io, a channel's io whose further bytes the parent
 * forwards with xl_parser_finish().  args->progress is called in the
 * parent, for each report the child sends.  0, or -1 with msg.
 */
int xl_parser_start(struct xl_parser *p, xc_interface *xch, int in_fd,
                    struct sr_io *io, const struct sr_restore_args *args,
                    char *msg, size_t len);

/*
 * Wait for the parser's result, forwarding ch's bytes to it meanwhile when
 * ch is not NULL (the channel's timeout ends the stream as it ends a
 * read).  On success res holds the child's figures and
 * a domain checked through the builder session to be the one the child
 * built, with args->uuid (res->config_json is NULL: the parent has the
 * config), and with args->keep_builder, res->builder holds that session
 * (as sr_restore_domain's does).  On failure the session is closed, so the
 * host destroys a domain the child left unfinished.  0, or -1 with msg (the channel's failure when the stream
 * broke there, else the child's message).
 */
int xl_parser_finish(struct xl_parser *p, struct xl_chan *ch,
                     const struct sr_restore_args *args,
                     struct sr_restore_result *res, char *msg, size_t len);

#endif /* FERRY_XL_SANDBOX_H */
