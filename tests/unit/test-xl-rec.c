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

/* NREC records sealed under key 1, and a receiver holding key rx_fill. */
struct sealed {
    struct stream s;
    EVP_CIPHER_CTX *rx;
};

static void sealed_init(struct sealed *f, uint8_t rx_fill)
{
    EVP_CIPHER_CTX *tx = key_ctx(1);

    seal(tx, &f->s);
    EVP_CIPHER_CTX_free(tx);
    f->rx = key_ctx(rx_fill);
}

static void sealed_dispose(struct sealed *f)
{
    EVP_CIPHER_CTX_free(f->rx);
    f->rx = NULL;
}

/* Open record r of f's stream as the one with sequence number seq. */
static int open_rec(struct sealed *f, unsigned int r, uint64_t seq)
{
    uint32_t n;

    return xl_rec_open(f->rx, seq, f->s.buf + f->s.off[r],
                       f->s.off[r + 1] - f->s.off[r], &n);
}

TEST(intact_records_pass)
{
    struct sealed f;
    uint32_t n;

    sealed_init(&f, 1);
    for (unsigned int r = 0; r < NREC; r++) {
        ASSERT_EQ(xl_rec_open(f.rx, r, f.s.buf + f.s.off[r],
                              f.s.off[r + 1] - f.s.off[r], &n), 0);
        ASSERT_EQ(n, 1000);
    }
    sealed_dispose(&f);
}

TEST(every_flipped_byte_is_detected)
{
    struct sealed f;
    struct stream *s = &f.s;

    sealed_init(&f, 1);
    /* Every byte of record 1 (header, data and tag), one bit at a time. */
    for (size_t i = s->off[1]; i < s->off[2]; i++) {
        for (unsigned int bit = 0; bit < 8; bit += 3) {
            int rc;

            s->buf[i] ^= (uint8_t)(1U << bit);
            rc = open_rec(&f, 1, 1);
            s->buf[i] ^= (uint8_t)(1U << bit);
            /* A changed length is refused or leaves the record short. */
            if (rc != -EBADMSG && !(i < s->off[1] + 4 && rc == -EAGAIN))
                FAIL("byte %zu bit %u of the record: rc %d", i - s->off[1],
                     bit, rc);
        }
    }
    ASSERT_EQ(open_rec(&f, 1, 1), 0);
    sealed_dispose(&f);
}

TEST(replayed_dropped_or_moved_records_fail)
{
    /* Record 0 again where 1 is expected (replay); record 2 there
     * (record 1 dropped); record 1 after 2 (reordered). */
    static const struct {
        unsigned int rec;
        uint64_t seq;
        int rc;
    } cases[] = {
        { 0, 0, 0 },
        { 0, 1, -EBADMSG },
        { 2, 1, -EBADMSG },
        { 1, 3, -EBADMSG },
    };
    struct sealed f;

    sealed_init(&f, 1);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = open_rec(&f, cases[i].rec, cases[i].seq);

        if (rc != cases[i].rc)
            FAIL("record %u as sequence number %llu: rc %d, expected %d",
                 cases[i].rec, (unsigned long long)cases[i].seq, rc,
                 cases[i].rc);
    }
    sealed_dispose(&f);
}

/* The receiver's direct path: data apart from its header and tag. */
TEST(check_apart_matches_open)
{
    struct sealed f;
    uint8_t data[1000];
    const uint8_t *hdr, *tag;

    sealed_init(&f, 1);
    hdr = f.s.buf + f.s.off[2];
    tag = hdr + XL_REC_HDR_LEN + sizeof(data);
    memcpy(data, hdr + XL_REC_HDR_LEN, sizeof(data));
    ASSERT_EQ(xl_rec_check(f.rx, 2, hdr, data, sizeof(data), tag), 0);
    ASSERT_EQ(xl_rec_check(f.rx, 1, hdr, data, sizeof(data), tag),
              -EBADMSG);
    data[999] ^= 0x80;
    ASSERT_EQ(xl_rec_check(f.rx, 2, hdr, data, sizeof(data), tag),
              -EBADMSG);
    data[999] ^= 0x80;
    ASSERT_EQ(xl_rec_check(f.rx, 2, hdr, data, sizeof(data) - 1, tag),
              -EBADMSG);
    sealed_dispose(&f);
}

TEST(another_key_fails)
{
    struct sealed f;

    sealed_init(&f, 2);
    for (unsigned int r = 0; r < NREC; r++)
        ASSERT_EQ(open_rec(&f, r, r), -EBADMSG);
    sealed_dispose(&f);
}

TEST(truncated_record_is_never_passed)
{
    struct sealed f;
    uint32_t n;

    sealed_init(&f, 1);
    for (size_t have = 0; have < f.s.off[1]; have++)
        ASSERT_EQ(xl_rec_open(f.rx, 0, f.s.buf, have, &n), -EAGAIN);
    ASSERT_EQ(xl_rec_open(f.rx, 0, f.s.buf, f.s.off[1], &n), 0);
    sealed_dispose(&f);
}

TEST(bad_lengths_are_refused)
{
    /* A length of 0, one over the maximum, all ones; then the maximum. */
    static const struct {
        uint32_t len;
        int rc;
    } cases[] = {
        { 0, -EBADMSG },
        { XL_REC_MAX + 1, -EBADMSG },
        { UINT32_MAX, -EBADMSG },
        { XL_REC_MAX, 0 },
    };
    uint8_t hdr[XL_REC_HDR_LEN];
    uint32_t n;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc;

        xl_rec_hdr(cases[i].len, hdr);
        rc = xl_rec_len(hdr, &n);
        if (rc != cases[i].rc)
            FAIL("length %#x: rc %d, expected %d", cases[i].len, rc,
                 cases[i].rc);
    }
    ASSERT_EQ(n, XL_REC_MAX);
}
