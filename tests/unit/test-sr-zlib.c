/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the compression section of saverestore/sr-io.c (ferry's
 * SR_XL_FLAG_FERRY_ZLIB files, ferry-stream(5)).
 *
 * What must hold: bytes round-trip exactly whatever the chunking of the
 * backend; the offset, record offsets and the running digest count the
 * uncompressed stream, so a compressed and a plain stream of the same
 * bytes have the same digest; plain bytes after the end of a zlib stream
 * are not lost to zlib's read-ahead; a corrupt or truncated compressed
 * stream fails with a message naming the uncompressed offset; sync pushes
 * out everything written so far; misuse is refused, not undefined.
 */
#include <errno.h>

#include "harness.h"
#include "sr.h"
#include "srtest.h"

#define HDR_LEN 48

/* Half zero pages, half a xorshift sequence: some of each kind. */
static uint8_t *payload(size_t len)
{
    uint8_t *p = calloc(1, len);
    uint64_t x = 0x9e3779b97f4a7c15ULL;

    ASSERT(p);
    for ( size_t i = 0; i < len; i++ )
    {
        if ( (i / 4096) % 2 )
            continue;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = x;
    }
    return p;
}

/* A plain 48-byte "header", then data compressed, in one buffer. */
static uint8_t *compressed(const uint8_t *data, size_t len, size_t *out)
{
    struct sr_io *io = writer();
    uint8_t hdr[HDR_LEN];
    uint8_t *buf;

    memset(hdr, 'H', sizeof(hdr));
    ASSERT_EQ(sr_io_write(io, hdr, sizeof(hdr)), 0);
    ASSERT_EQ(sr_io_deflate_start(io, 1), 0);
    ASSERT(sr_io_compressing(io));
    ASSERT_EQ(sr_io_write(io, data, len), 0);
    ASSERT_EQ(sr_io_deflate_end(io), 0);
    ASSERT(!sr_io_compressing(io));
    ASSERT_EQ(sr_io_offset(io), HDR_LEN + len);
    buf = take(io, out);
    ASSERT_EQ(sr_io_raw_offset(io), *out);
    ASSERT_EQ(sr_io_close(io), 0);
    return buf;
}

/* A reader of z (or its first zlen bytes) past the plain header,
 * inflating from there on. */
static struct sr_io *inflating_reader(const uint8_t *z, size_t zlen)
{
    struct sr_io *io = reader(z, zlen);
    uint8_t hdr[HDR_LEN];

    ASSERT_EQ(sr_io_read(io, hdr, sizeof(hdr)), 0);
    ASSERT_EQ(sr_io_inflate_start(io), 0);
    return io;
}

TEST(round_trip_counts_uncompressed_bytes)
{
    size_t len = 3 << 20, zlen;
    uint8_t *data = payload(len), *z, *back = malloc(len);
    uint8_t hdr[HDR_LEN], extra;
    struct sr_io *io;

    z = compressed(data, len, &zlen);
    DIAG("%zu bytes compressed to %zu", len, zlen);
    ASSERT(zlen < HDR_LEN + len / 2 + len / 20);
    io = reader(z, zlen);
    ASSERT_EQ(sr_io_read(io, hdr, sizeof(hdr)), 0);
    ASSERT_EQ(hdr[0], 'H');
    ASSERT_EQ(sr_io_inflate_start(io), 0);
    /* In odd pieces, as the record layer reads. */
    for ( size_t off = 0; off < len; )
    {
        size_t n = 1 + (off * 7919) % 100000;

        if ( n > len - off )
            n = len - off;
        ASSERT_EQ(sr_io_read(io, back + off, n), 0);
        off += n;
        ASSERT_EQ(sr_io_offset(io), HDR_LEN + off);
    }
    ASSERT(!memcmp(back, data, len));
    ASSERT_EQ(sr_io_read(io, &extra, 1), -ENODATA);
    ASSERT_EQ(sr_io_raw_offset(io), zlen);
    sr_io_close(io);
    free(z);
    free(data);
    free(back);
}

TEST(digest_is_of_the_uncompressed_stream)
{
    size_t len = 1 << 20, zlen, plen;
    uint8_t *data = payload(len), *z, *back = malloc(len);
    uint8_t d_plain[SR_SHA256_LEN], d_z[SR_SHA256_LEN], d_read[SR_SHA256_LEN];
    uint8_t hdr[HDR_LEN] = { 0 };
    struct sr_io *io = writer();

    ASSERT_EQ(sr_io_hash_start(io), 0);
    ASSERT_EQ(sr_io_write(io, hdr, sizeof(hdr)), 0);
    ASSERT_EQ(sr_io_write(io, data, len), 0);
    ASSERT_EQ(sr_io_hash_final(io, d_plain), 0);
    free(take(io, &plen));
    sr_io_close(io);

    io = writer();
    ASSERT_EQ(sr_io_hash_start(io), 0);
    ASSERT_EQ(sr_io_write(io, hdr, sizeof(hdr)), 0);
    ASSERT_EQ(sr_io_deflate_start(io, 1), 0);
    ASSERT_EQ(sr_io_write(io, data, len), 0);
    ASSERT_EQ(sr_io_hash_final(io, d_z), 0);
    ASSERT_EQ(sr_io_deflate_end(io), 0);
    z = take(io, &zlen);
    sr_io_close(io);
    ASSERT(!memcmp(d_plain, d_z, sizeof(d_z)));
    ASSERT(zlen < plen);

    io = reader(z, zlen);
    ASSERT_EQ(sr_io_hash_start(io), 0);
    ASSERT_EQ(sr_io_read(io, hdr, sizeof(hdr)), 0);
    ASSERT_EQ(sr_io_inflate_start(io), 0);
    ASSERT_EQ(sr_io_read(io, back, len), 0);
    ASSERT_EQ(sr_io_hash_final(io, d_read), 0);
    ASSERT(!memcmp(d_plain, d_read, sizeof(d_read)));
    sr_io_close(io);
    free(z);
    free(data);
    free(back);
}

TEST(plain_bytes_after_the_zlib_stream_are_not_lost)
{
    static const char tail[] = "ready\n";
    size_t len = 100000, zlen;
    uint8_t *data = payload(len), *z, *back = malloc(len);
    uint8_t hdr[HDR_LEN] = { 0 };
    char got[sizeof(tail)];
    struct sr_io *io = writer();

    ASSERT_EQ(sr_io_write(io, hdr, sizeof(hdr)), 0);
    ASSERT_EQ(sr_io_deflate_start(io, 1), 0);
    ASSERT_EQ(sr_io_write(io, data, len), 0);
    ASSERT_EQ(sr_io_deflate_end(io), 0);
    ASSERT_EQ(sr_io_write(io, tail, sizeof(tail)), 0);
    z = take(io, &zlen);
    sr_io_close(io);

    /* zlib reads ahead into the tail; the io must hand it back. */
    io = inflating_reader(z, zlen);
    ASSERT_EQ(sr_io_read(io, back, len), 0);
    ASSERT_EQ(sr_io_read(io, got, sizeof(got)), 0);
    ASSERT(!memcmp(got, tail, sizeof(tail)));
    ASSERT(!sr_io_compressing(io));
    ASSERT_EQ(sr_io_offset(io), HDR_LEN + len + sizeof(tail));
    ASSERT_EQ(sr_io_raw_offset(io), zlen);
    sr_io_close(io);
    free(z);
    free(data);
    free(back);
}

TEST(corrupt_stream_names_the_uncompressed_offset)
{
    size_t len = 200000, zlen;
    uint8_t *data = payload(len), *z, *back = malloc(len);
    struct sr_io *io;

    z = compressed(data, len, &zlen);
    z[HDR_LEN] ^= 0xff;                 /* zlib's header byte */
    io = inflating_reader(z, zlen);
    ASSERT_EQ(sr_io_read(io, back, len), -EINVAL);
    ASSERT_CONTAINS(sr_io_errmsg(io),
                    "compressed stream corrupt at offset 48");
    /* Sticky. */
    ASSERT_EQ(sr_io_read(io, back, 1), -EINVAL);
    sr_io_close(io);
    free(z);
    free(data);
    free(back);
}

TEST(truncated_compressed_stream_is_enodata)
{
    size_t len = 500000, zlen;
    uint8_t *data = payload(len), *z, *back = malloc(len);
    struct sr_io *io;

    z = compressed(data, len, &zlen);
    io = inflating_reader(z, zlen - 100);
    ASSERT_EQ(sr_io_read(io, back, len), -ENODATA);
    ASSERT_CONTAINS(sr_io_errmsg(io), "stream truncated at offset");
    ASSERT(sr_io_offset(io) < HDR_LEN + len);
    sr_io_close(io);
    free(z);
    free(data);
    free(back);
}

/* A backend that moves 1..7 bytes per call, like a slow pipe. */
struct trickle
{
    const uint8_t *buf;
    size_t len, pos;
    unsigned int n;
};

static ssize_t trickle_read(void *arg, void *buf, size_t len)
{
    struct trickle *t = arg;
    size_t n = 1 + t->n++ % 7;

    if ( n > len )
        n = len;
    if ( n > t->len - t->pos )
        n = t->len - t->pos;
    memcpy(buf, t->buf + t->pos, n);
    t->pos += n;
    return n;
}

TEST(round_trip_through_a_trickling_backend)
{
    static const struct sr_io_user_ops ops = { .read = trickle_read };
    size_t len = 64 << 10, zlen;
    uint8_t *data = payload(len), *z, *back = malloc(len);
    uint8_t hdr[HDR_LEN];
    struct trickle t = { 0 };
    struct sr_io *io;

    z = compressed(data, len, &zlen);
    t.buf = z;
    t.len = zlen;
    ASSERT_EQ(sr_io_open_user(&io, &ops, &t), 0);
    ASSERT_EQ(sr_io_read(io, hdr, sizeof(hdr)), 0);
    ASSERT_EQ(sr_io_inflate_start(io), 0);
    ASSERT_EQ(sr_io_read(io, back, len), 0);
    ASSERT(!memcmp(back, data, len));
    sr_io_close(io);
    free(z);
    free(data);
    free(back);
}

TEST(records_keep_uncompressed_offsets)
{
    static const uint8_t body[8] = { 8, 4 };    /* X86_PV_INFO */
    struct sr_io *io = writer();
    uint8_t hdr[HDR_LEN] = { 0 };
    struct sr_rec rec;
    uint8_t *z;
    size_t zlen;

    ASSERT_EQ(sr_io_write(io, hdr, sizeof(hdr)), 0);
    ASSERT_EQ(sr_io_deflate_start(io, 1), 0);
    ASSERT_EQ(sr_write_record(io, SR_LIBXC, SR_LIBXC_X86_PV_INFO, body,
                              sizeof(body)), 0);
    ASSERT_EQ(sr_write_record(io, SR_LIBXC, SR_LIBXC_END, NULL, 0), 0);
    ASSERT_EQ(sr_io_offset(io), HDR_LEN + 16 + 8);
    z = take(io, &zlen);        /* before the end: nothing flushed yet */
    ASSERT_EQ(zlen, HDR_LEN);
    free(z);
    /* Ending the zlib stream writes it out. */
    ASSERT_EQ(sr_io_deflate_end(io), 0);
    z = take(io, &zlen);
    sr_io_close(io);

    io = inflating_reader(z, zlen);
    sr_rec_init(&rec);
    ASSERT_EQ(sr_read_record(io, SR_LIBXC, &rec), 0);
    ASSERT_EQ(rec.type, SR_LIBXC_X86_PV_INFO);
    ASSERT_EQ(rec.offset, HDR_LEN);
    ASSERT_EQ(sr_read_record(io, SR_LIBXC, &rec), 0);
    ASSERT_EQ(rec.type, SR_LIBXC_END);
    ASSERT_EQ(rec.offset, HDR_LEN + 16);
    sr_rec_free(&rec);
    sr_io_close(io);
    free(z);
}

TEST(sync_pushes_out_everything_written)
{
    size_t len = 300000, zlen;
    uint8_t *data = payload(len), *z, *back = malloc(len);
    struct sr_io *io = writer();

    ASSERT_EQ(sr_io_deflate_start(io, 1), 0);
    ASSERT_EQ(sr_io_write(io, data, len), 0);
    ASSERT_EQ(sr_io_sync(io), 0);
    ASSERT(sr_io_compressing(io));
    z = take(io, &zlen);
    sr_io_close(io);

    /* The stream is not finished, but every byte written is readable. */
    io = reader(z, zlen);
    ASSERT_EQ(sr_io_inflate_start(io), 0);
    ASSERT_EQ(sr_io_read(io, back, len), 0);
    ASSERT(!memcmp(back, data, len));
    sr_io_close(io);
    free(z);
    free(data);
    free(back);
}

TEST(misuse_is_refused)
{
    struct sr_io *io = writer();

    ASSERT_EQ(sr_io_deflate_start(io, 10), -EINVAL);
    ASSERT_CONTAINS(sr_io_errmsg(io), "level 10");
    sr_io_close(io);

    io = writer();
    ASSERT_EQ(sr_io_deflate_start(io, 1), 0);
    ASSERT_EQ(sr_io_inflate_start(io), -EINVAL);
    ASSERT_CONTAINS(sr_io_errmsg(io), "compression started twice");
    sr_io_close(io);

    /* Not compressing: ending is a no-op. */
    io = writer();
    ASSERT_EQ(sr_io_deflate_end(io), 0);
    ASSERT_EQ(sr_io_close(io), 0);
}

TEST(restart_reuses_the_stream)
{
    size_t len = 50000, zlen;
    uint8_t *data = payload(len), *z, *back = malloc(len);
    struct sr_io *io = writer();

    for ( int i = 0; i < 3; i++ )
    {
        ASSERT_EQ(sr_io_deflate_start(io, 1), 0);
        ASSERT_EQ(sr_io_write(io, data, len), 0);
        ASSERT_EQ(sr_io_deflate_end(io), 0);
    }
    z = take(io, &zlen);
    sr_io_close(io);
    io = reader(z, zlen);
    for ( int i = 0; i < 3; i++ )
    {
        ASSERT_EQ(sr_io_inflate_start(io), 0);
        ASSERT_EQ(sr_io_read(io, back, len), 0);
        ASSERT(!memcmp(back, data, len));
    }
    ASSERT_EQ(sr_io_read(io, back, 1), -ENODATA);
    sr_io_close(io);
    free(z);
    free(data);
    free(back);
}
