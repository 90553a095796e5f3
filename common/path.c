/* SPDX-License-Identifier: MIT */
/*
 * ferry_relocate (common/path.h): an installed file's path relative to
 * the running program.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "path.h"

/* Length of the longest common leading run of whole path components. */
static size_t common_dirs(const char *a, const char *b)
{
    size_t i = 0, last = 0;

    while ( a[i] && a[i] == b[i] )
    {
        if ( a[i] == '/' )
            last = i;
        i++;
    }
    /* One path ends where the other has a '/': a whole component too. */
    if ( (!a[i] && b[i] == '/') || (!b[i] && a[i] == '/') ||
         (!a[i] && !b[i]) )
        last = i;
    return last;
}

char *ferry_relocate(const char *own_dir, const char *target, char *buf,
                     size_t len)
{
    char self[PATH_MAX], *slash;
    size_t common, dirlen, restlen;
    const char *own_rest;
    ssize_t n;
    int w;

    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if ( n <= 0 )
        return NULL;
    self[n] = '\0';
    slash = strrchr(self, '/');
    if ( !slash )
        return NULL;
    *slash = '\0';
    dirlen = (size_t)(slash - self);

    common = common_dirs(own_dir, target);
    own_rest = own_dir + common;        /* e.g. "/sbin" */
    restlen = strlen(own_rest);
    if ( restlen > dirlen || strcmp(self + dirlen - restlen, own_rest) )
        return NULL;
    self[dirlen - restlen] = '\0';      /* the prefix it runs under now */
    w = snprintf(buf, len, "%s%s", self, target + common);
    return w > 0 && (size_t)w < len ? buf : NULL;
}
