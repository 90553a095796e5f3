/* SPDX-License-Identifier: MIT */
/*
 * rename-cas: check the hypervisor's compare-and-swap rename
 * (xc_domain_rename), the commit point of a live migration.  Run by
 * t0020-migrate.sh as `rename-cas RUNDIR DOMID NAME OTHER`: domain DOMID
 * is called NAME and another domain OTHER.  A rename whose expected name
 * is wrong must fail with EBUSY and change nothing; a rename to a name
 * another domain has must fail with EEXIST; a rename with the right
 * expected name must succeed (and is undone).  Prints one line per
 * failed check; exits 0 if all passed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xc.h"

static int failed;

static void expect(int cond, const char *what)
{
    if ( !cond )
    {
        printf("FAILED: %s\n", what);
        failed++;
    }
}

static void name_is(xc_interface *xch, uint32_t domid, const char *want)
{
    char name[XC_DOMAIN_NAME_MAX] = "";

    expect(!xc_domain_get_meta(xch, domid, name, sizeof(name), NULL, NULL),
           "get_meta");
    if ( strcmp(name, want) )
    {
        printf("FAILED: name is '%s', expected '%s'\n", name, want);
        failed++;
    }
}

int main(int argc, char **argv)
{
    xc_interface *xch;
    uint32_t domid;
    char renamed[XC_DOMAIN_NAME_MAX];
    int rc;

    if ( argc != 5 )
    {
        fprintf(stderr, "usage: rename-cas RUNDIR DOMID NAME OTHER\n");
        return 2;
    }
    xch = xc_interface_open(argv[1], NULL);
    if ( !xch )
    {
        fprintf(stderr, "cannot open host %s\n", argv[1]);
        return 2;
    }
    domid = (uint32_t)strtoul(argv[2], NULL, 10);
    snprintf(renamed, sizeof(renamed), "%s--cas", argv[3]);

    /* Wrong expectation: EBUSY, nothing changed. */
    errno = 0;
    rc = xc_domain_rename(xch, domid, "not-its-name", renamed);
    expect(rc == -1 && errno == EBUSY, "wrong expect fails with EBUSY");
    name_is(xch, domid, argv[3]);

    /* The name of another live domain: EEXIST, nothing changed. */
    errno = 0;
    rc = xc_domain_rename(xch, domid, argv[3], argv[4]);
    expect(rc == -1 && errno == EEXIST, "clash fails with EEXIST");
    name_is(xch, domid, argv[3]);

    /* Right expectation: renamed; and a second, now stale, one loses. */
    expect(!xc_domain_rename(xch, domid, argv[3], renamed), "CAS rename");
    name_is(xch, domid, renamed);
    errno = 0;
    rc = xc_domain_rename(xch, domid, argv[3], "stale");
    expect(rc == -1 && errno == EBUSY, "stale expect fails with EBUSY");
    name_is(xch, domid, renamed);
    expect(!xc_domain_rename(xch, domid, renamed, argv[3]), "rename back");
    name_is(xch, domid, argv[3]);

    xc_interface_close(xch);
    return failed ? 1 : 0;
}
