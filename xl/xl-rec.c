/* SPDX-License-Identifier: MIT */
/*
 * xl-rec.c: the MAC'd records of authenticated tcp:// migrations (the
 * format is in xl-rec.h).
 *
 * The AEAD is used with associated data only, which is exactly Poly1305
 * under a one-time key that ChaCha20 derives from the session key and the
 * nonce: a fresh key per record, as Poly1305 requires, without a key
 * schedule of our own.  Nonces never repeat under one key: each direction
 * has its own key and the sequence number only grows.
 */
#include <errno.h>
#include <openssl/crypto.h>

#include "xl-rec.h"

EVP_CIPHER_CTX *xl_rec_key(const uint8_t key[XL_REC_KEY_LEN])
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

    if (ctx && EVP_EncryptInit_ex(ctx, EVP_chacha20_poly1305(), NULL, key,
                                  NULL) == 1)
        return ctx;
    EVP_CIPHER_CTX_free(ctx);
    return NULL;
}

void xl_rec_hdr(uint32_t n, uint8_t hdr[XL_REC_HDR_LEN])
{
    hdr[0] = (uint8_t)(n >> 24);
    hdr[1] = (uint8_t)(n >> 16);
    hdr[2] = (uint8_t)(n >> 8);
    hdr[3] = (uint8_t)n;
}

int xl_rec_len(const uint8_t hdr[XL_REC_HDR_LEN], uint32_t *n)
{
    *n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
         (uint32_t)hdr[2] << 8 | hdr[3];
    return *n == 0 || *n > XL_REC_MAX ? -EBADMSG : 0;
}

int xl_rec_tag(EVP_CIPHER_CTX *ctx, uint64_t seq,
               const uint8_t hdr[XL_REC_HDR_LEN], const void *data,
               size_t len, uint8_t tag[XL_REC_TAG_LEN])
{
    uint8_t nonce[12] = { 0 }, none[16];
    int outl;

    if (len > XL_REC_MAX)
        return -EIO;
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(seq >> (56 - 8 * i));
    /* Key kept from xl_rec_key; the nonce restarts the one-time key. */
    if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &outl, hdr, XL_REC_HDR_LEN) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &outl, data, (int)len) != 1 ||
        EVP_EncryptFinal_ex(ctx, none, &outl) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, XL_REC_TAG_LEN,
                            tag) != 1)
        return -EIO;
    return 0;
}

int xl_rec_check(EVP_CIPHER_CTX *ctx, uint64_t seq,
                 const uint8_t hdr[XL_REC_HDR_LEN], const void *data,
                 size_t len, const uint8_t tag[XL_REC_TAG_LEN])
{
    uint8_t want[XL_REC_TAG_LEN];

    if (xl_rec_tag(ctx, seq, hdr, data, len, want))
        return -EIO;
    return CRYPTO_memcmp(want, tag, XL_REC_TAG_LEN) ? -EBADMSG : 0;
}

int xl_rec_open(EVP_CIPHER_CTX *ctx, uint64_t seq, const uint8_t *rec,
                size_t have, uint32_t *n)
{
    int rc;

    if (have < XL_REC_HDR_LEN)
        return -EAGAIN;
    if ((rc = xl_rec_len(rec, n)))
        return rc;
    if (have < XL_REC_HDR_LEN + (size_t)*n + XL_REC_TAG_LEN)
        return -EAGAIN;
    return xl_rec_check(ctx, seq, rec, rec + XL_REC_HDR_LEN, *n,
                        rec + XL_REC_HDR_LEN + *n);
}
