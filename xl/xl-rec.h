/* SPDX-License-Identifier: MIT */
/*
 * xl-rec.h: the MAC'd records of authenticated tcp:// migrations (see
 * xl-transport.c and ferry-hv(8), THREAT MODEL).
 *
 * A record is a 4-byte big-endian length n (1..XL_REC_MAX), n bytes of
 * data and a 16-byte tag.  The tag is ChaCha20-Poly1305's over the length
 * and the data as associated data (nothing is encrypted), under the
 * direction's 32-byte session key, with the record's sequence number as
 * the nonce: a record changed, dropped, replayed or moved on the path
 * fails the check of the first record it disturbs.  Poly1305 runs at
 * several times HMAC-SHA256's speed, which capped migration throughput.
 */
#ifndef FERRY_XL_REC_H
#define FERRY_XL_REC_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define XL_REC_HDR_LEN      4
#define XL_REC_TAG_LEN      16
#define XL_REC_KEY_LEN      32
/* Payload bytes per record: large enough that the tag and the header
 * cost nothing, small enough to verify before handing any byte on. */
#define XL_REC_MAX          (256U << 10)

/* A context holding key (NULL on failure; free with EVP_CIPHER_CTX_free). */
EVP_CIPHER_CTX *xl_rec_key(const uint8_t key[XL_REC_KEY_LEN]);

/* The header of an n-byte record (1 <= n <= XL_REC_MAX). */
void xl_rec_hdr(uint32_t n, uint8_t hdr[XL_REC_HDR_LEN]);

/* A header's length: 0, or -EBADMSG when it is 0 or over XL_REC_MAX. */
int xl_rec_len(const uint8_t hdr[XL_REC_HDR_LEN], uint32_t *n);

/* The tag of record seq: 0 or -EIO. */
int xl_rec_tag(EVP_CIPHER_CTX *ctx, uint64_t seq,
               const uint8_t hdr[XL_REC_HDR_LEN], const void *data,
               size_t len, uint8_t tag[XL_REC_TAG_LEN]);

/* Whether tag is record seq's for hdr and data (which may lie apart):
 * 0, -EBADMSG or -EIO. */
int xl_rec_check(EVP_CIPHER_CTX *ctx, uint64_t seq,
                 const uint8_t hdr[XL_REC_HDR_LEN], const void *data,
                 size_t len, const uint8_t tag[XL_REC_TAG_LEN]);

/*
 * Whether a whole record (header, data, tag) as received is record seq:
 * 0, -EBADMSG (a bad length or a tag that does not match), -EAGAIN
 * (fewer than the record's bytes: a stream that ends here is truncated)
 * or -EIO.  On 0, *n is its data length (the data starts at rec + 4).
 */
int xl_rec_open(EVP_CIPHER_CTX *ctx, uint64_t seq, const uint8_t *rec,
                size_t have, uint32_t *n);

#endif
