/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for xl/xl-rec.c, the MAC'd records of authenticated tcp://
 * migrations.
 *
 * What must hold (ferry-hv(8), THREAT MODEL): a record that arrives as
 * it was sent passes; any byte changed on the path (length, data or tag)
 * fails; a record replayed, dropped or moved fails because its sequence
 * number is not the one expected; a record under another key fails; a
 * stream cut anywhere inside a record is incomplete (never passed on),
 * and a length of 0 or over the maximum is refused before any read.
 */
#include <errno.h>

#include "harness.h"
#include "xl-rec.h"

#define NREC 4

struct stream {
    uint8_t buf[NREC * (XL_REC_HDR_LEN + 1000 + XL_REC_TAG_LEN)];
    size_t off[NREC + 1];       /* where each record starts; the end */
};

static EVP_CIPHER_CTX *key_ctx(uint8_t fill)
{
    uint8_t key[XL_REC_KEY_LEN];
    EVP_CIPHER_CTX *ctx;

    memset(key, fill, sizeof(key));
    ctx = xl_rec_key(key);
    ASSERT(ctx);
    return ctx;
}

/* NREC records of the same 1000 bytes, sequence numbers 0..: only the
 * sequence number tells them apart. */
static void seal(EVP_CIPHER_CTX *ctx, struct stream *s)
{
    size_t o = 0;

    for (unsigned int r = 0; r < NREC; r++) {
        uint32_t n = 1000;

        s->off[r] = o;
        xl_rec_hdr(n, s->buf + o);
        for (uint32_t i = 0; i < n; i++)
            s->buf[o + XL_REC_HDR_LEN + i] = (uint8_t)(i * 7);
        ASSERT_EQ(xl_rec_tag(ctx, r, s->buf + o, s->buf + o +
                             XL_REC_HDR_LEN, n, s->buf + o +
                             XL_REC_HDR_LEN + n), 0);
        o += XL_REC_HDR_LEN + n + XL_REC_TAG_LEN;
    }
    s->off[NREC] = o;
}

static int open_rec(EVP_CIPHER_CTX *ctx, const struct stream *s,
                    unsigned int r, uint64_t seq)
{
    uint32_t n;

    return xl_rec_open(ctx, seq, s->buf + s->off[r],
                       s->off[r + 1] - s->off[r], &n);
}

TEST(intact_records_pass)
{
    EVP_CIPHER_CTX *tx = key_ctx(1), *rx = key_ctx(1);
    struct stream s;
    uint32_t n;

    seal(tx, &s);
    for (unsigned int r = 0; r < NREC; r++) {
        ASSERT_EQ(xl_rec_open(rx, r, s.buf + s.off[r],
                              s.off[r + 1] - s.off[r], &n), 0);
        ASSERT_EQ(n, 1000);
    }
    EVP_CIPHER_CTX_free(tx);
    EVP_CIPHER_CTX_free(rx);
}

TEST(every_flipped_byte_is_detected)
{
    EVP_CIPHER_CTX *tx = key_ctx(1), *rx = key_ctx(1);
    struct stream s;

    seal(tx, &s);
    /* Every byte of record 1 (header, data and tag), one bit at a time. */
    for (size_t i = s.off[1]; i < s.off[2]; i++) {
        for (unsigned int bit = 0; bit < 8; bit += 3) {
            int rc;

            s.buf[i] ^= (uint8_t)(1U << bit);
            rc = open_rec(rx, &s, 1, 1);
            s.buf[i] ^= (uint8_t)(1U << bit);
            /* A changed length is refused or leaves the record short. */
            if (rc != -EBADMSG && !(i < s.off[1] + 4 && rc == -EAGAIN))
                FAIL("byte %zu bit %u of the record: rc %d", i - s.off[1],
                     bit, rc);
        }
    }
    ASSERT_EQ(open_rec(rx, &s, 1, 1), 0);
    EVP_CIPHER_CTX_free(tx);
    EVP_CIPHER_CTX_free(rx);
}

TEST(replayed_dropped_or_moved_records_fail)
{
    EVP_CIPHER_CTX *tx = key_ctx(1), *rx = key_ctx(1);
    struct stream s;

    seal(tx, &s);
    ASSERT_EQ(open_rec(rx, &s, 0, 0), 0);
    /* Record 0 again where 1 is expected (replay); record 2 there
     * (record 1 dropped); record 1 after 2 (reordered). */
    ASSERT_EQ(open_rec(rx, &s, 0, 1), -EBADMSG);
    ASSERT_EQ(open_rec(rx, &s, 2, 1), -EBADMSG);
    ASSERT_EQ(open_rec(rx, &s, 1, 3), -EBADMSG);
    EVP_CIPHER_CTX_free(tx);
    EVP_CIPHER_CTX_free(rx);
}

/* The receiver's direct path: data apart from its header and tag. */
TEST(check_apart_matches_open)
{
    EVP_CIPHER_CTX *tx = key_ctx(1), *rx = key_ctx(1);
    struct stream s;
    uint8_t data[1000];
    const uint8_t *hdr, *tag;

    seal(tx, &s);
    hdr = s.buf + s.off[2];
    tag = hdr + XL_REC_HDR_LEN + sizeof(data);
    memcpy(data, hdr + XL_REC_HDR_LEN, sizeof(data));
    ASSERT_EQ(xl_rec_check(rx, 2, hdr, data, sizeof(data), tag), 0);
    ASSERT_EQ(xl_rec_check(rx, 1, hdr, data, sizeof(data), tag), -EBADMSG);
    data[999] ^= 0x80;
    ASSERT_EQ(xl_rec_check(rx, 2, hdr, data, sizeof(data), tag), -EBADMSG);
    data[999] ^= 0x80;
    ASSERT_EQ(xl_rec_check(rx, 2, hdr, data, sizeof(data) - 1, tag),
              -EBADMSG);
    EVP_CIPHER_CTX_free(tx);
    EVP_CIPHER_CTX_free(rx);
}

TEST(another_key_fails)
{
    EVP_CIPHER_CTX *tx = key_ctx(1), *rx = key_ctx(2);
    struct stream s;

    seal(tx, &s);
    for (unsigned int r = 0; r < NREC; r++)
        ASSERT_EQ(open_rec(rx, &s, r, r), -EBADMSG);
    EVP_CIPHER_CTX_free(tx);
    EVP_CIPHER_CTX_free(rx);
}

TEST(truncated_record_is_never_passed)
{
    EVP_CIPHER_CTX *tx = key_ctx(1), *rx = key_ctx(1);
    struct stream s;
    uint32_t n;

    seal(tx, &s);
    for (size_t have = 0; have < s.off[1]; have++)
        ASSERT_EQ(xl_rec_open(rx, 0, s.buf, have, &n), -EAGAIN);
    ASSERT_EQ(xl_rec_open(rx, 0, s.buf, s.off[1], &n), 0);
    EVP_CIPHER_CTX_free(tx);
    EVP_CIPHER_CTX_free(rx);
}

TEST(bad_lengths_are_refused)
{
    uint8_t hdr[XL_REC_HDR_LEN];
    uint32_t n;

    xl_rec_hdr(0, hdr);
    ASSERT_EQ(xl_rec_len(hdr, &n), -EBADMSG);
    xl_rec_hdr(XL_REC_MAX + 1, hdr);
    ASSERT_EQ(xl_rec_len(hdr, &n), -EBADMSG);
    memset(hdr, 0xff, sizeof(hdr));
    ASSERT_EQ(xl_rec_len(hdr, &n), -EBADMSG);
    xl_rec_hdr(XL_REC_MAX, hdr);
    ASSERT_EQ(xl_rec_len(hdr, &n), 0);
    ASSERT_EQ(n, XL_REC_MAX);
}
