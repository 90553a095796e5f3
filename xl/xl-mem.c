/* SPDX-License-Identifier: MIT */
/*
 * xl mem-max: set a domain's maximum memory (tools/xl/xl_mem.c).  Style:
 * Xen's xl/libxl style.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "xl.h"

/*
 * Xen's parse_mem_size_kb: a decimal number with one optional suffix, b
 * (bytes), k (KiB), m (MiB, the default), g (GiB) or t (TiB); the size in
 * KiB, or -1 if it is not one or does not fit in 63 bits.
 */
static int64_t parse_mem_size_kb(const char *mem)
{
    char *end;
    unsigned long long v;
    unsigned int shift;

    errno = 0;
    if (!isdigit((unsigned char)*mem))
        return -1;
    v = strtoull(mem, &end, 10);
    if (errno || strlen(end) > 1)
        return -1;
    switch (tolower((unsigned char)*end)) {
    case 'b': return (int64_t)(v >> 10);
    case 'k': shift = 0; break;
    case '\0':
    case 'm': shift = 10; break;
    case 'g': shift = 20; break;
    case 't': shift = 30; break;
    default: return -1;
    }
    if (v > (unsigned long long)INT64_MAX >> shift)
        return -1;
    return (int64_t)(v << shift);
}

int main_memmax(int argc, char **argv)
{
    xc_interface *xch;
    uint32_t domid;
    const char *mem;
    int64_t kb;
    int opt, rc = EXIT_SUCCESS;

    while ((opt = xl_getopt(argc, argv, "h", NULL, "mem-max", 2, &rc)) != -1)
        if (opt == -2)
            return rc;
    xch = xl_open_host();
    if (find_domain(xch, argv[optind], &domid))
        return EXIT_FAILURE;
    mem = argv[optind + 1];
    kb = parse_mem_size_kb(mem);
    if (kb == -1) {
        fprintf(stderr, "invalid memory size: %s\n", mem);
        return EXIT_FAILURE;
    }
    if (xc_domain_setmaxmem(xch, domid, (uint64_t)kb)) {
        fprintf(stderr, "cannot set domid %u static max memory to : %s\n",
                domid, mem);
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}
