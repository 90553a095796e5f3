/* SPDX-License-Identifier: MIT */
/*
 * srtest.h: memory-backed sr_io helpers shared by the save/restore stream
 * unit tests (test-sr-stream.c, test-sr-zlib.c).  A failed open ends the
 * test through the harness's ASSERT, so callers need no checks.
 */
#ifndef FERRY_TESTS_SRTEST_H
#define FERRY_TESTS_SRTEST_H

#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "sr.h"

static inline struct sr_io *writer(void)
{
    struct sr_io *io;

    ASSERT_EQ(sr_io_open_mem_writer(&io), 0);
    return io;
}

static inline struct sr_io *reader(const void *buf, size_t len)
{
    struct sr_io *io;

    ASSERT_EQ(sr_io_open_mem_reader(&io, buf, len), 0);
    return io;
}

/* A copy of what io wrote (caller frees). */
static inline uint8_t *take(struct sr_io *io, size_t *len)
{
    const uint8_t *p = sr_io_mem_data(io, len);
    uint8_t *copy = malloc(*len + 1);

    ASSERT(copy);
    memcpy(copy, p, *len);
    return copy;
}

#endif /* FERRY_TESTS_SRTEST_H */
