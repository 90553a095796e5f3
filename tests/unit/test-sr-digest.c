/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the digest of ferry's trailer (sr-io.c's hashing section,
 * the xl header's SR_XL_OPTFLAG_FERRY_POLY1305 and the trailer code of
 * sr-stream.c).
 *
 * A stream whose digest starts at its xl header is hashed with Poly1305
 * under the public key in sr.h, the header says so, and the trailer holds
 * the tag then zeros (checked here against OpenSSL's one-shot MAC, so the
 * format is pinned, not just self-consistent).  Files of the first format
 * (SHA-256, no flag) still read; a trailer whose algorithm is not the one
 * the header announced is refused; a flipped byte is found either way.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "harness.h"
#include "sr.h"

/* xl header + config, libxl header, libxl END: a stream's smallest shape. */
static void write_body(struct sr_io *io, bool with_hdr)
{
    static const char cfg[] = "{\"c_info\":{}}";

    if ( with_hdr )
        ASSERT_EQ(sr_write_xl_hdr(io, SR_XL_FLAG_JSON | SR_XL_FLAG_STREAMV2,
                                  cfg, sizeof(cfg)), 0);
    ASSERT_EQ(sr_write_libxl_hdr(io), 0);
    ASSERT_EQ(sr_write_record(io, SR_LIBXL, SR_LIBXL_END, NULL, 0), 0);
}

/* A hashed stream written as the save engine writes it (caller frees). */
static uint8_t *new_stream(size_t *len)
{
    struct sr_io *io;
    const uint8_t *p;
    uint8_t *copy;

    ASSERT_EQ(sr_io_open_mem_writer(&io), 0);
    ASSERT_EQ(sr_io_hash_start(io), 0);
    write_body(io, true);
    ASSERT_EQ(sr_write_ferry_trailer(io), 0);
    p = sr_io_mem_data(io, len);
    copy = malloc(*len);
    ASSERT(copy);
    memcpy(copy, p, *len);
    sr_io_close(io);
    return copy;
}

/* Read a stream as restore does: hash, xl header, libxl, trailer. */
static int read_stream(const uint8_t *buf, size_t len, bool *present,
                       char *msg, size_t msglen)
{
    struct sr_libxl_hdr lh;
    struct sr_xl_hdr xh;
    struct sr_rec rec;
    struct sr_io *io;
    uint32_t cfg_len;
    void *cfg = NULL;
    int rc;

    sr_rec_init(&rec);
    ASSERT_EQ(sr_io_open_mem_reader(&io, buf, len), 0);
    if ( !(rc = sr_io_hash_start(io)) &&
         !(rc = sr_read_xl_hdr(io, &xh, &cfg, &cfg_len)) &&
         !(rc = sr_read_libxl_hdr(io, &lh)) &&
         !(rc = sr_read_record(io, SR_LIBXL, &rec)) )
        rc = sr_read_ferry_trailer(io, present);
    snprintf(msg, msglen, "%s", sr_io_errmsg(io));
    free(cfg);
    sr_rec_free(&rec);
    sr_io_close(io);
    return rc;
}

static void poly1305(const uint8_t *buf, size_t len, uint8_t tag[16])
{
    static const char key[] = SR_FERRY_POLY1305_KEY;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "POLY1305", NULL);
    EVP_MAC_CTX *c = EVP_MAC_CTX_new(mac);
    size_t out = 0;

    ASSERT(c);
    ASSERT(EVP_MAC_init(c, (const unsigned char *)key, 32, NULL));
    ASSERT(EVP_MAC_update(c, buf, len));
    ASSERT(EVP_MAC_final(c, tag, &out, 16));
    ASSERT_EQ(out, (size_t)16);
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(mac);
}

/* The first format: no flag, SHA-256 of everything before the trailer. */
static uint8_t *sha256_stream(size_t *len)
{
    struct sr_ferry_trailer t = {
        .version = htole32(SR_FERRY_TRAILER_VERSION),
        .algorithm = htole32(SR_FERRY_TRAILER_SHA256),
    };
    struct sr_io *io;
    const uint8_t *p;
    uint8_t *copy;
    size_t n;

    ASSERT_EQ(sr_io_open_mem_writer(&io), 0);
    write_body(io, true);       /* not hashing: the header stays plain */
    p = sr_io_mem_data(io, &n);
    copy = malloc(n + sizeof(t));
    ASSERT(copy);
    memcpy(copy, p, n);
    sr_io_close(io);
    memcpy(t.magic, SR_FERRY_TRAILER_MAGIC, sizeof(t.magic));
    t.covered = htole64(n);
    SHA256(copy, n, t.digest);
    memcpy(copy + n, &t, sizeof(t));
    *len = n + sizeof(t);
    return copy;
}

TEST(new_streams_announce_and_use_poly1305)
{
    struct sr_ferry_trailer t;
    struct sr_xl_hdr h;
    uint8_t tag[16], zero[16] = { 0 }, *buf;
    size_t len;

    buf = new_stream(&len);
    memcpy(&h, buf, sizeof(h));
    ASSERT_HEX(h.optional_flags, SR_XL_OPTFLAG_FERRY_POLY1305);
    memcpy(&t, buf + len - sizeof(t), sizeof(t));
    ASSERT_EQ(le32toh(t.algorithm), SR_FERRY_TRAILER_POLY1305);
    ASSERT_EQ(le64toh(t.covered), (uint64_t)(len - sizeof(t)));
    poly1305(buf, len - sizeof(t), tag);
    ASSERT(!memcmp(t.digest, tag, 16));
    ASSERT(!memcmp(t.digest + 16, zero, 16));
    free(buf);
}

TEST(new_streams_round_trip_and_catch_a_flipped_byte)
{
    char msg[256];
    bool present;
    uint8_t *buf;
    size_t len;

    buf = new_stream(&len);
    ASSERT_EQ(read_stream(buf, len, &present, msg, sizeof(msg)), 0);
    ASSERT(present);
    /* A byte of the config, then one of the header itself. */
    buf[60] ^= 0x40;
    ASSERT_EQ(read_stream(buf, len, &present, msg, sizeof(msg)), -EILSEQ);
    ASSERT(strstr(msg, "digest mismatch"));
    buf[60] ^= 0x40;
    buf[47] ^= 0x01;            /* optional_data_len */
    ASSERT(read_stream(buf, len, &present, msg, sizeof(msg)) != 0);
    free(buf);
}

TEST(sha256_files_of_the_first_format_still_read)
{
    char msg[256];
    bool present;
    uint8_t *buf;
    size_t len;

    buf = sha256_stream(&len);
    ASSERT_EQ(read_stream(buf, len, &present, msg, sizeof(msg)), 0);
    ASSERT(present);
    buf[60] ^= 1;               /* inside the config */
    ASSERT_EQ(read_stream(buf, len, &present, msg, sizeof(msg)), -EILSEQ);
    ASSERT(strstr(msg, "digest mismatch"));
    free(buf);
}

TEST(a_trailer_algorithm_other_than_announced_is_refused)
{
    struct sr_ferry_trailer t;
    char msg[256];
    bool present;
    uint8_t *buf;
    size_t len;

    /* Flag set, trailer says SHA-256. */
    buf = new_stream(&len);
    memcpy(&t, buf + len - sizeof(t), sizeof(t));
    t.algorithm = htole32(SR_FERRY_TRAILER_SHA256);
    memcpy(buf + len - sizeof(t), &t, sizeof(t));
    ASSERT_EQ(read_stream(buf, len, &present, msg, sizeof(msg)), -EINVAL);
    ASSERT(strstr(msg, "announced"));
    free(buf);

    /* No flag, trailer says Poly1305. */
    buf = sha256_stream(&len);
    memcpy(&t, buf + len - sizeof(t), sizeof(t));
    t.algorithm = htole32(SR_FERRY_TRAILER_POLY1305);
    memcpy(buf + len - sizeof(t), &t, sizeof(t));
    ASSERT_EQ(read_stream(buf, len, &present, msg, sizeof(msg)), -EINVAL);
    ASSERT(strstr(msg, "announced"));
    free(buf);

    /* An algorithm nobody defined. */
    buf = new_stream(&len);
    memcpy(&t, buf + len - sizeof(t), sizeof(t));
    t.algorithm = htole32(7);
    memcpy(buf + len - sizeof(t), &t, sizeof(t));
    ASSERT_EQ(read_stream(buf, len, &present, msg, sizeof(msg)),
              -EOPNOTSUPP);
    free(buf);
}

TEST(a_digest_not_started_at_the_header_stays_sha256)
{
    uint8_t got[SR_SHA256_LEN], want[SR_SHA256_LEN];
    struct sr_xl_hdr h;
    struct sr_io *io;
    const uint8_t *p;
    size_t len;

    /* One byte hashed before the header: no switch, no flag. */
    ASSERT_EQ(sr_io_open_mem_writer(&io), 0);
    ASSERT_EQ(sr_io_hash_start(io), 0);
    ASSERT_EQ(sr_io_write(io, "x", 1), 0);
    write_body(io, true);
    ASSERT_EQ(sr_io_hash_alg(io), SR_FERRY_TRAILER_SHA256);
    ASSERT_EQ(sr_io_hash_final(io, got), 0);
    p = sr_io_mem_data(io, &len);
    memcpy(&h, p + 1, sizeof(h));
    ASSERT_EQ(h.optional_flags, 0);
    SHA256(p, len, want);
    ASSERT(!memcmp(got, want, sizeof(got)));
    sr_io_close(io);
}
