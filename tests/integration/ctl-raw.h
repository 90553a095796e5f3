/* SPDX-License-Identifier: MIT */
/*
 * ctl-raw: the pieces shared by the integration programs that speak the
 * control protocol on the socket themselves rather than through libxc
 * (ctl-abuse, least-priv): opening the socket, a raw HELLO, and the TAP
 * lines they print.  A failure to reach the daemon at all is a hard error
 * of the test (exit 99), not a check that failed.
 */
#ifndef FERRY_TESTS_INTEGRATION_CTL_RAW_H
#define FERRY_TESTS_INTEGRATION_CTL_RAW_H

/* TAP: checks printed so far, and how many of them failed. */
extern int tap_n, tap_failed;

/* Print "ok N - ..." or "not ok N - ..." and count a failure. */
void result(int ok, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A socket connected to rundir's control socket, or -1 with errno set. */
int open_raw(const char *rundir);

/* The same, but a failure exits 99. */
int connect_raw(const char *rundir);

/*
 * Send one HELLO asking for session kind (an empty HELLO, the default
 * full session, for kind < 0) and read its answer.  Returns the answer's
 * rc, or 1 if the connection failed or closed.  A descriptor passed with
 * the answer is closed at once; *got_fd (if not NULL) says whether one
 * came.
 */
int raw_hello(int fd, int kind, int *got_fd);

#endif /* FERRY_TESTS_INTEGRATION_CTL_RAW_H */
