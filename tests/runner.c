/* SPDX-License-Identifier: MIT */
/*
 * The unit-test runner: main() for every tests/unit/test-*.c program.
 *
 * Tests register themselves from constructors (TEST() in harness.h).  The
 * runner forks one child per test, waits for it with a timeout, and prints
 * TAP.  A child passes by returning from its test function; it fails by an
 * assertion (exit 1), by a signal, by a sanitizer report (non-zero exit), or
 * by running past its timeout (killed, reported "timed out").  Exit 77 from
 * the child means the test skipped itself.
 *
 * Usage: test-foo [-l] [NAME-SUBSTRING...]
 *   -l lists the tests; names select tests whose name contains a substring.
 * FERRY_TEST_TIMEOUT_MULTIPLIER scales every timeout (sanitizer builds).
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define MAX_TESTS 512
#define DEFAULT_TIMEOUT_S 60
#define EXIT_SKIP 77

static struct test_entry tests[MAX_TESTS];
static unsigned int nr_tests;

void test__register(const char *name, test_fn fn, unsigned int timeout_s)
{
    if ( nr_tests == MAX_TESTS )
    {
        fprintf(stderr, "runner: more than %d tests\n", MAX_TESTS);
        abort();
    }
    tests[nr_tests].name = name;
    tests[nr_tests].fn = fn;
    tests[nr_tests].timeout_s = timeout_s;
    nr_tests++;
}

void test__fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    fprintf(stdout, "# %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
    _exit(1);
}

void test__skip(const char *why)
{
    fprintf(stdout, "# SKIP-REASON %s\n", why);
    fflush(stdout);
    _exit(EXIT_SKIP);
}

void test__diag(const char *fmt, ...)
{
    va_list ap;

    fputs("# ", stdout);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

char *test_tmp_dir(const char *prefix)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char *dir = NULL;

    ASSERT(asprintf(&dir, "%s/%s-XXXXXX", base, prefix) > 0);
    ASSERT(mkdtemp(dir));
    return dir;
}

int test_dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    ASSERT(d);
    while ( (e = readdir(d)) )
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static unsigned int timeout_multiplier(void)
{
    const char *s = getenv("FERRY_TEST_TIMEOUT_MULTIPLIER");
    long m = s ? strtol(s, NULL, 10) : 1;

    return m > 0 ? (unsigned int)m : 1;
}

static int wait_with_timeout(pid_t pid, unsigned int timeout_s, int *status)
{
    struct timespec start, now, nap = { 0, 2 * 1000 * 1000 };

    clock_gettime(CLOCK_MONOTONIC, &start);
    for ( ;; )
    {
        pid_t r = waitpid(pid, status, WNOHANG);

        if ( r == pid )
            return 0;
        if ( r < 0 && errno != EINTR )
            return -1;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ( now.tv_sec - start.tv_sec >= (time_t)timeout_s )
        {
            kill(pid, SIGKILL);
            waitpid(pid, status, 0);
            return 1;
        }
        nanosleep(&nap, NULL);
        if ( nap.tv_nsec < 50 * 1000 * 1000 )
            nap.tv_nsec *= 2;
    }
}

/* Run one test in a child; print its TAP line.  Returns 1 on failure. */
static int run_one(unsigned int n, const struct test_entry *t)
{
    unsigned int timeout = (t->timeout_s ? t->timeout_s : DEFAULT_TIMEOUT_S) *
                           timeout_multiplier();
    int status = 0, r;
    pid_t pid;

    fflush(stdout);
    pid = fork();
    if ( pid < 0 )
    {
        printf("not ok %u - %s # fork failed: %s\n", n, t->name,
               strerror(errno));
        return 1;
    }
    if ( pid == 0 )
    {
        t->fn();
        fflush(stdout);
        exit(0);
    }

    r = wait_with_timeout(pid, timeout, &status);
    if ( r == 1 )
    {
        printf("not ok %u - %s # timed out after %us\n", n, t->name, timeout);
        return 1;
    }
    if ( r < 0 )
    {
        printf("not ok %u - %s # waitpid: %s\n", n, t->name, strerror(errno));
        return 1;
    }
    if ( WIFEXITED(status) && WEXITSTATUS(status) == EXIT_SKIP )
    {
        printf("ok %u - %s # SKIP\n", n, t->name);
        return 0;
    }
    if ( WIFEXITED(status) && WEXITSTATUS(status) == 0 )
    {
        printf("ok %u - %s\n", n, t->name);
        return 0;
    }
    if ( WIFSIGNALED(status) )
        printf("not ok %u - %s # killed by signal %d\n", n, t->name,
               WTERMSIG(status));
    else
        printf("not ok %u - %s # exit status %d\n", n, t->name,
               WEXITSTATUS(status));
    return 1;
}

static int selected(const char *name, int argc, char **argv, int first)
{
    if ( first >= argc )
        return 1;
    for ( int i = first; i < argc; i++ )
        if ( strstr(name, argv[i]) )
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    unsigned int n = 0, failed = 0, total = 0;
    int first = 1;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if ( argc > 1 && !strcmp(argv[1], "-l") )
    {
        for ( unsigned int i = 0; i < nr_tests; i++ )
            printf("%s\n", tests[i].name);
        return 0;
    }

    for ( unsigned int i = 0; i < nr_tests; i++ )
        total += selected(tests[i].name, argc, argv, first);
    printf("1..%u\n", total);
    for ( unsigned int i = 0; i < nr_tests; i++ )
        if ( selected(tests[i].name, argc, argv, first) )
            failed += run_one(++n, &tests[i]);
    return failed ? 1 : 0;
}
