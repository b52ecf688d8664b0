/* hmacsig.h - HMAC-SHA256 signatures of request bodies (prefix: hsig_).
 *
 * The header a signed request carries is "sha256=" followed by the 64
 * lower- or upper-case hex digits of HMAC-SHA256(key, body), the form
 * GitHub's webhooks use (X-Hub-Signature-256); Cairn calls it
 * X-Cairn-Signature. Pure computation (OpenSSL's HMAC): no I/O.
 */
#ifndef CAIRN_HMACSIG_H
#define CAIRN_HMACSIG_H

#include <stdbool.h>
#include <stddef.h>

#define HSIG_HEADER "X-Cairn-Signature"
#define HSIG_HEX_LEN 64

/* The header value for body signed with key: "sha256=<64 hex>" into out
 * (at least 7 + HSIG_HEX_LEN + 1 bytes). */
void hsig_sign(const void *key, size_t keylen, const void *body, size_t len, char *out,
               size_t outlen);

/* Does header (may be NULL) sign body with key? Compared in constant time;
 * false for a missing, malformed or wrong signature, or an empty key. */
bool hsig_verify(const void *key, size_t keylen, const void *body, size_t len,
                 const char *header);

/* A key file's content as the key: without one trailing "\n" or "\r\n". */
size_t hsig_key_len(const char *text, size_t len);

#endif
