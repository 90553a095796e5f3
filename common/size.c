/* SPDX-License-Identifier: MIT */
/*
 * ferry_parse_size: the one parser of sizes written by people
 * (common/size.h has the syntax).  Unlike Xen's parse_size_and_unit,
 * which it resembles, it refuses what it does not understand and every
 * overflow, because its input comes from command lines and files rather
 * than from a boot loader.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <strings.h>

#include "size.h"

/* The units, with the shift each stands for. */
static const struct {
    const char *name;
    unsigned int shift;
} units[] = {
    { "b", 0 },
    { "k", 10 }, { "kb", 10 }, { "kib", 10 },
    { "m", 20 }, { "mb", 20 }, { "mib", 20 },
    { "g", 30 }, { "gb", 30 }, { "gib", 30 },
    { "t", 40 }, { "tb", 40 }, { "tib", 40 },
};

int ferry_parse_size(const char *s, unsigned int default_shift,
                     uint64_t *bytes_r)
{
    uint64_t v = 0;
    unsigned int shift = default_shift, i;
    const char *p = s;

    if ( !s || *p < '0' || *p > '9' )
        return -EINVAL;
    for ( ; *p >= '0' && *p <= '9'; p++ )
    {
        unsigned int d = (unsigned int)(*p - '0');

        if ( v > (UINT64_MAX - d) / 10 )
            return -ERANGE;
        v = v * 10 + d;
    }
    if ( *p )
    {
        for ( i = 0; i < sizeof(units) / sizeof(units[0]); i++ )
            if ( !strcasecmp(p, units[i].name) )
                break;
        if ( i == sizeof(units) / sizeof(units[0]) )
            return -EINVAL;
        shift = units[i].shift;
    }
    if ( shift >= 64 || v > (UINT64_MAX >> shift) )
        return -ERANGE;
    *bytes_r = v << shift;
    return 0;
}

const char *ferry_size_error(int rc)
{
    if ( rc == -ERANGE )
        return "is too large";
    return "is not a size (digits, then optionally B, K, M, G or T)";
}
