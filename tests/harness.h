/* SPDX-License-Identifier: MIT */
/*
 * The unit-test harness.
 *
 * A test file defines tests with TEST(name) { ... } and links with
 * tests/runner.c, which gives it main().  Each test runs in a child process
 * of its own with a timeout, so a crash, a sanitizer report or a hang fails
 * that test alone.  Output is TAP: "1..N", then "ok N - name" or
 * "not ok N - name" with the failed assertion as a diagnostic line.
 *
 * Assertions print both operands, in hex where the values are frame or
 * type words, so a failure says what was expected and what was seen.
 * Test names say which rule or hazard they guard (xsa299_..., bad_type_...).
 */
#ifndef FERRY_TESTS_HARNESS_H
#define FERRY_TESTS_HARNESS_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*test_fn)(void);

struct test_entry
{
    const char *name;
    test_fn fn;
    unsigned int timeout_s;     /* 0: the default */
    const char *skip_reason;    /* set at run time by TEST_SKIP */
};

void test__register(const char *name, test_fn fn, unsigned int timeout_s);
void test__fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
void test__skip(const char *why) __attribute__((noreturn));
void test__diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define TEST_TIMEOUT(name, secs)                                          \
    static void test_##name(void);                                        \
    __attribute__((constructor)) static void test_reg_##name(void)        \
    { test__register(#name, test_##name, (secs)); }                       \
    static void test_##name(void)

#define TEST(name) TEST_TIMEOUT(name, 0)

#define TEST_SKIP(why) test__skip(why)
#define DIAG(...) test__diag(__VA_ARGS__)

#define FAIL(...) test__fail(__FILE__, __LINE__, __VA_ARGS__)

#define ASSERT(cond)                                                      \
    do {                                                                  \
        if ( !(cond) )                                                    \
            FAIL("assertion failed: %s", #cond);                          \
    } while ( 0 )

#define ASSERT_EQ(a, b)                                                   \
    do {                                                                  \
        long long a_ = (long long)(a), b_ = (long long)(b);               \
        if ( a_ != b_ )                                                   \
            FAIL("%s == %s: %lld != %lld", #a, #b, a_, b_);               \
    } while ( 0 )

#define ASSERT_NE(a, b)                                                   \
    do {                                                                  \
        long long a_ = (long long)(a), b_ = (long long)(b);               \
        if ( a_ == b_ )                                                   \
            FAIL("%s != %s: both are %lld", #a, #b, a_);                  \
    } while ( 0 )

#define ASSERT_HEX(a, b)                                                  \
    do {                                                                  \
        uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                  \
        if ( a_ != b_ )                                                   \
            FAIL("%s == %s: %#" PRIx64 " != %#" PRIx64, #a, #b, a_, b_);  \
    } while ( 0 )

#define ASSERT_STR(a, b)                                                  \
    do {                                                                  \
        const char *a_ = (a), *b_ = (b);                                  \
        if ( !a_ || !b_ || strcmp(a_, b_) )                               \
            FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b,                    \
                 a_ ? a_ : "(null)", b_ ? b_ : "(null)");                 \
    } while ( 0 )

#define ASSERT_CONTAINS(hay, needle)                                      \
    do {                                                                  \
        const char *h_ = (hay), *n_ = (needle);                           \
        if ( !h_ || !strstr(h_, n_) )                                     \
            FAIL("%s contains \"%s\": it is \"%s\"", #hay, n_,            \
                 h_ ? h_ : "(null)");                                     \
    } while ( 0 )

/*
 * Scratch directories for tests that make files: a fresh one under
 * $TMPDIR (or /tmp) whose name starts with prefix (malloc'd; the test
 * removes it), and how many entries one holds, "." and ".." aside.
 */
char *test_tmp_dir(const char *prefix);
int test_dir_entries(const char *dir);

#endif /* FERRY_TESTS_HARNESS_H */
