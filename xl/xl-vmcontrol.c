/* SPDX-License-Identifier: MIT */
/*
 * xl's domain life-cycle verbs: destroy, pause, unpause, suspend, resume.  Messages and
 * exit codes follow tools/xl/xl_vmcontrol.c.  Style: Xen's xl/libxl style.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "xl.h"

int main_destroy(int argc, char **argv)
{
    bool force = false;
    xc_interface *xch;
    uint32_t domid;
    int opt, rc = EXIT_SUCCESS;

    while ((opt = xl_getopt(argc, argv, "fh", NULL, "destroy", 1, &rc)) != -1) {
        switch (opt) {
        case -2: return rc;
        case 'f': force = true; break;
        }
    }
    xch = xl_open_host();
    if (find_domain(xch, argv[optind], &domid))
        return EXIT_FAILURE;
    if (domid == 0 && !force) {
        fprintf(stderr, "Destroying Domain 0 is not allowed unless -f is given.\n");
        return EXIT_FAILURE;
    }
    if (xc_domain_destroy(xch, domid)) {
        fprintf(stderr, "destroy failed (rc=%d)\n", -errno);
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}

/* pause and unpause: xl ignores the result once the domain resolves. */
static int pause_unpause(int argc, char **argv, const char *verb,
                         int (*op)(xc_interface *, uint32_t))
{
    xc_interface *xch;
    uint32_t domid;
    int opt, rc = EXIT_SUCCESS;

    while ((opt = xl_getopt(argc, argv, "h", NULL, verb, 1, &rc)) != -1)
        if (opt == -2)
            return rc;
    xch = xl_open_host();
    if (find_domain(xch, argv[optind], &domid))
        return EXIT_FAILURE;
    op(xch, domid);
    return EXIT_SUCCESS;
}

int main_pause(int argc, char **argv)
{
    return pause_unpause(argc, argv, "pause", xc_domain_pause);
}

int main_unpause(int argc, char **argv)
{
    return pause_unpause(argc, argv, "unpause", xc_domain_unpause);
}

/*
 * xl suspend: ask the guest to suspend itself (ferry's control word, the
 * request a save makes) and wait until it has; xl resume: let a suspended
 * guest run on in place, its suspend hypercall returning 1 ("cancelled").
 */
int main_suspend(int argc, char **argv)
{
    xc_interface *xch;
    uint32_t domid;
    int opt, rc = EXIT_SUCCESS;

    while ((opt = xl_getopt(argc, argv, "h", NULL, "suspend", 1, &rc)) != -1)
        if (opt == -2)
            return rc;
    xch = xl_open_host();
    if (find_domain(xch, argv[optind], &domid))
        return EXIT_FAILURE;
    return xl_suspend_domain(xch, domid, NULL) ? EXIT_FAILURE : EXIT_SUCCESS;
}

int main_resume(int argc, char **argv)
{
    xc_interface *xch;
    uint32_t domid;
    int opt, rc = EXIT_SUCCESS;

    while ((opt = xl_getopt(argc, argv, "h", NULL, "resume", 1, &rc)) != -1)
        if (opt == -2)
            return rc;
    xch = xl_open_host();
    if (find_domain(xch, argv[optind], &domid))
        return EXIT_FAILURE;
    if (xc_domain_resume(xch, domid, true)) {
        fprintf(stderr, "resume failed (rc=%d)\n", -errno);
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}
