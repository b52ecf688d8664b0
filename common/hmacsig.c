/* hmacsig.c - HMAC-SHA256 request signatures (hmacsig.h). */
#include "hmacsig.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

static bool
hsig__mac(const void *key, size_t keylen, const void *body, size_t len, unsigned char md[32])
{
    unsigned int mdlen = 0;
    static const unsigned char empty = 0;
    if (!HMAC(EVP_sha256(), key, (int)keylen, len ? body : &empty, len, md, &mdlen))
        return false;
    return mdlen == 32;
}

void
hsig_sign(const void *key, size_t keylen, const void *body, size_t len, char *out, size_t outlen)
{
    unsigned char md[32];
    if (outlen == 0)
        return;
    out[0] = '\0';
    if (!hsig__mac(key, keylen, body, len, md) || outlen < 7 + HSIG_HEX_LEN + 1)
        return;
    memcpy(out, "sha256=", 7);
    for (int i = 0; i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

static int
hsig__nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool
hsig_verify(const void *key, size_t keylen, const void *body, size_t len, const char *header)
{
    unsigned char md[32], given[32];
    if (!header || keylen == 0 || strncmp(header, "sha256=", 7) != 0)
        return false;
    const char *hex = header + 7;
    if (strlen(hex) != HSIG_HEX_LEN)
        return false;
    for (int i = 0; i < 32; i++) {
        int hi = hsig__nibble(hex[2 * i]), lo = hsig__nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        given[i] = (unsigned char)(hi << 4 | lo);
    }
    if (!hsig__mac(key, keylen, body, len, md))
        return false;
    return CRYPTO_memcmp(md, given, sizeof(md)) == 0;
}

size_t
hsig_key_len(const char *text, size_t len)
{
    if (len && text[len - 1] == '\n') {
        len--;
        if (len && text[len - 1] == '\r')
            len--;
    }
    return len;
}
