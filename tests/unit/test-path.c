/* SPDX-License-Identifier: MIT */
/*
 * ferry_relocate (common/path.c): a configured install path, seen from
 * where the program runs.  The program here is this test, in
 * BUILD/tests/unit; the configured directories are made up around that.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "common/path.h"

/* The directory this test runs from, and the one above tests/unit. */
static void self_dirs(char *dir, char *build)
{
    ssize_t n = readlink("/proc/self/exe", dir, PATH_MAX - 1);

    ASSERT(n > 0);
    dir[n] = '\0';
    *strrchr(dir, '/') = '\0';
    ASSERT(strlen(dir) > strlen("/tests/unit"));
    ASSERT_STR(dir + strlen(dir) - strlen("/tests/unit"), "/tests/unit");
    strcpy(build, dir);
    build[strlen(dir) - strlen("/tests/unit")] = '\0';
}

TEST(relocate_keeps_the_configured_layout_under_the_prefix_it_runs_in)
{
    char dir[PATH_MAX], build[PATH_MAX], buf[PATH_MAX + 64], want[PATH_MAX + 64];

    self_dirs(dir, build);
    /* Configured /opt/f/tests/unit and /opt/f/share/g: the prefix that
     * holds tests/unit now is BUILD, so share/g is BUILD/share/g. */
    snprintf(want, sizeof(want), "%s/share/g", build);
    ASSERT(ferry_relocate("/opt/f/tests/unit", "/opt/f/share/g", buf,
                          sizeof(buf)) == buf);
    ASSERT_STR(buf, want);
    /* A file in the program's own directory. */
    snprintf(want, sizeof(want), "%s/xl", dir);
    ASSERT(ferry_relocate("/opt/f/tests/unit", "/opt/f/tests/unit/xl", buf,
                          sizeof(buf)) == buf);
    ASSERT_STR(buf, want);
}

TEST(relocate_refuses_a_program_not_in_the_configured_place)
{
    char buf[PATH_MAX + 64];

    /* Configured .../sbin, but this test does not run from an sbin. */
    ASSERT(!ferry_relocate("/usr/local/sbin", "/usr/local/bin/xl", buf,
                           sizeof(buf)));
    /* Components are whole: "unit" is not "nit". */
    ASSERT(!ferry_relocate("/opt/f/nit", "/opt/f/share", buf, sizeof(buf)));
    /* Too small a buffer. */
    ASSERT(!ferry_relocate("/opt/f/tests/unit", "/opt/f/share/g", buf, 4));
}
