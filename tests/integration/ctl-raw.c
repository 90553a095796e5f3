/* SPDX-License-Identifier: MIT */
/*
 * ctl-raw: raw control-socket access and TAP output for the integration
 * programs that speak the protocol themselves (see ctl-raw.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl-raw.h"
#include "../../hypervisor/include/public/control.h"

int tap_n, tap_failed;

void result(int ok, const char *fmt, ...)
{
    va_list ap;

    printf("%sok %d - ", ok ? "" : "not ", ++tap_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    /* A check that hangs next should not hide the ones before it. */
    fflush(stdout);
    tap_failed += !ok;
}

int open_raw(const char *rundir)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM, 0), saved;

    if ( fd < 0 )
        return -1;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", rundir,
             FERRY_CTL_SOCKET);
    if ( connect(fd, (struct sockaddr *)&sa, sizeof(sa)) )
    {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int connect_raw(const char *rundir)
{
    int fd = open_raw(rundir);

    if ( fd < 0 )
    {
        perror("connect");
        exit(99);
    }
    return fd;
}

int raw_hello(int fd, int kind, int *got_fd)
{
    struct ferry_ctl_hello_req q = { .kind = (uint32_t)(kind < 0 ? 0 : kind) };
    struct ferry_ctl_hdr h = {
        .magic = FERRY_CTL_MAGIC, .version = FERRY_CTL_VERSION,
        .op = FERRY_CTL_HELLO, .seq = 1,
        .len = kind < 0 ? 0 : sizeof(q),
    };
    uint8_t buf[sizeof(struct ferry_ctl_hdr) +
                sizeof(struct ferry_ctl_hello_resp)];
    union { struct cmsghdr align; char c[CMSG_SPACE(sizeof(int))]; } u;
    struct iovec iov = { .iov_base = buf, .iov_len = sizeof(h) };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                          .msg_control = u.c, .msg_controllen = sizeof(u.c) };
    struct cmsghdr *cm;
    struct ferry_ctl_hdr r;
    size_t got = 0;

    if ( got_fd )
        *got_fd = 0;
    if ( send(fd, &h, sizeof(h), MSG_NOSIGNAL) != sizeof(h) ||
         (kind >= 0 && send(fd, &q, sizeof(q), MSG_NOSIGNAL) != sizeof(q)) )
        return 1;
    /* The header, with any descriptor, then the body. */
    while ( got < sizeof(h) )
    {
        ssize_t k;

        iov.iov_base = buf + got;
        iov.iov_len = sizeof(h) - got;
        k = recvmsg(fd, &msg, 0);
        if ( k <= 0 )
            return 1;
        for ( cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm) )
            if ( cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS )
            {
                int passed;

                memcpy(&passed, CMSG_DATA(cm), sizeof(int));
                close(passed);
                if ( got_fd )
                    *got_fd = 1;
            }
        msg.msg_control = NULL;
        msg.msg_controllen = 0;
        got += (size_t)k;
    }
    memcpy(&r, buf, sizeof(r));
    while ( r.len && got < sizeof(h) + r.len && got < sizeof(buf) )
    {
        ssize_t k = read(fd, buf + got, sizeof(buf) - got);

        if ( k <= 0 )
            return 1;
        got += (size_t)k;
    }
    return r.rc;
}
