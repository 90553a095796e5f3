/* SPDX-License-Identifier: MIT */
/*
 * ferry_parse_size (common/size.c), the one parser of sizes written by
 * people: the units and their cases, the default unit, the edge of 64
 * bits, and everything that is not a size.  Its users (ferry-hv --memory,
 * xl.cfg memory/maxmem, the fleet's max-memory, xl migrate --bandwidth)
 * have their own tests beside their other tests.
 */
#include <errno.h>
#include <stdint.h>

#include "harness.h"
#include "common/size.h"

static void expect_size(const char *s, unsigned int dflt, uint64_t bytes)
{
    uint64_t v = 12345;

    ASSERT_EQ(ferry_parse_size(s, dflt, &v), 0);
    ASSERT_EQ(v, bytes);
}

static void expect_refused(const char *s, int rc)
{
    uint64_t v = 12345;

    ASSERT_EQ(ferry_parse_size(s, SIZE_DEFAULT_BYTES, &v), rc);
    ASSERT_EQ(v, 12345);        /* untouched on failure */
}

TEST(size_units_are_powers_of_1024_in_any_case)
{
    static const char *const k[] = { "3k", "3K", "3kb", "3KB", "3kib",
                                     "3KiB", "3KIB" };
    unsigned int i;

    for ( i = 0; i < sizeof(k) / sizeof(k[0]); i++ )
        expect_size(k[i], SIZE_DEFAULT_BYTES, 3072);
    expect_size("100MiB", SIZE_DEFAULT_BYTES, 100ULL << 20);
    expect_size("100M", SIZE_DEFAULT_BYTES, 100ULL << 20);
    expect_size("2g", SIZE_DEFAULT_BYTES, 2ULL << 30);
    expect_size("2GB", SIZE_DEFAULT_BYTES, 2ULL << 30);
    expect_size("5TiB", SIZE_DEFAULT_BYTES, 5ULL << 40);
    expect_size("7b", SIZE_DEFAULT_MIB, 7);
    expect_size("7B", SIZE_DEFAULT_MIB, 7);
}

TEST(size_bare_number_takes_the_callers_unit)
{
    expect_size("512", SIZE_DEFAULT_BYTES, 512);
    expect_size("512", SIZE_DEFAULT_KIB, 512ULL << 10);
    expect_size("512", SIZE_DEFAULT_MIB, 512ULL << 20);
    expect_size("0", SIZE_DEFAULT_MIB, 0);
    /* Decimal always: no octal, as in strtol base 0. */
    expect_size("0100", SIZE_DEFAULT_BYTES, 100);
    /* A unit overrides the default. */
    expect_size("1G", SIZE_DEFAULT_MIB, 1ULL << 30);
}

TEST(size_overflow_refused_at_the_64_bit_edge)
{
    expect_size("18446744073709551615", SIZE_DEFAULT_BYTES, UINT64_MAX);
    expect_refused("18446744073709551616", -ERANGE);
    expect_refused("99999999999999999999999999", -ERANGE);
    expect_size("16777215T", SIZE_DEFAULT_BYTES, 16777215ULL << 40);
    expect_refused("16777216T", -ERANGE);
    expect_size("17179869183G", SIZE_DEFAULT_BYTES, 17179869183ULL << 30);
    expect_refused("17179869184G", -ERANGE);
    /* The default unit counts too: 2^44 MiB is 2^64 bytes. */
    ASSERT_EQ(ferry_parse_size("17592186044416", SIZE_DEFAULT_MIB,
                               &(uint64_t){ 0 }), -ERANGE);
    expect_size("17592186044415", SIZE_DEFAULT_BYTES, 17592186044415ULL);
}

TEST(size_garbage_refused)
{
    static const char *const bad[] = {
        "", "M", "-1", "+1", " 1", "1 ", "1 M", "1.5G", "0x10", "1e3",
        "1MM", "1MiBs", "1i", "1iB", "1Mi", "1KiBB", "1P", "1E", "ten",
        "1,000", "1_000", "1\n",
    };
    unsigned int i;

    for ( i = 0; i < sizeof(bad) / sizeof(bad[0]); i++ )
        expect_refused(bad[i], -EINVAL);
    ASSERT_EQ(ferry_parse_size(NULL, SIZE_DEFAULT_BYTES, &(uint64_t){ 0 }),
              -EINVAL);
}

TEST(size_error_words)
{
    ASSERT_STR(ferry_size_error(-ERANGE), "is too large");
    ASSERT_STR(ferry_size_error(-EINVAL),
               "is not a size (digits, then optionally B, K, M, G or T)");
}
