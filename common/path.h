/* SPDX-License-Identifier: MIT */
/*
 * Finding the files of an installed ferry where they are now.  configure
 * fixes the install directories (bindir, sbindir, pkgdatadir) at build
 * time, but an install may be staged (make install DESTDIR=...), installed
 * under another prefix (make install prefix=...) or moved.  The programs
 * then look for each other and for their data relative to where they run,
 * keeping the layout the configured directories have relative to each
 * other, before they try the configured paths themselves.
 */
#ifndef FERRY_COMMON_PATH_H
#define FERRY_COMMON_PATH_H

#include <stddef.h>

/*
 * The configured path @target as seen from the running program, whose
 * configured directory was @own_dir: with @own_dir = /usr/local/sbin and
 * @target = /usr/local/bin/xl, a program running as /tmp/d/usr/local/sbin/
 * ferry-hv gets /tmp/d/usr/local/bin/xl.  Writes it to @buf and returns
 * @buf, or NULL when the program does not run from a directory that ends
 * as @own_dir does below the two paths' common part, or @buf is too small.
 */
char *ferry_relocate(const char *own_dir, const char *target, char *buf,
                     size_t len);

#endif /* FERRY_COMMON_PATH_H */
