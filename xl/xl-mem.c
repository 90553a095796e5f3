/* SPDX-License-Identifier: MIT */
/*
 * xl mem-max: set a domain's maximum memory (tools/xl/xl_mem.c).  Style:
 * Xen's xl/libxl style.
 */
#include <stdlib.h>

#include "common/size.h"
#include "xl.h"

int main_memmax(int argc, char **argv)
{
    xc_interface *xch;
    uint32_t domid;
    const char *mem;
    uint64_t bytes;
    int opt, rc = EXIT_SUCCESS;

    while ((opt = xl_getopt(argc, argv, "h", NULL, "mem-max", 2, &rc)) != -1)
        if (opt == -2)
            return rc;
    xch = xl_open_host();
    if (find_domain(xch, argv[optind], &domid))
        return EXIT_FAILURE;
    mem = argv[optind + 1];
    /* MiB without a unit, as Xen's parse_mem_size_kb; ferry's one size
     * syntax (xl.cfg(5)) otherwise. */
    if (ferry_parse_size(mem, SIZE_DEFAULT_MIB, &bytes)) {
        fprintf(stderr, "invalid memory size: %s\n", mem);
        return EXIT_FAILURE;
    }
    if (xc_domain_setmaxmem(xch, domid, bytes >> 10)) {
        fprintf(stderr, "cannot set domid %u static max memory to : %s\n",
                domid, mem);
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}
