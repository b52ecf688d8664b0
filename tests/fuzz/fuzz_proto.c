/* fuzz_proto.c - libFuzzer target for proto_decode and the typed messages
 * on top of it (msg_decode, msg_unpack).
 *
 * Each input is decoded three ways: with no token, with a token (so only the
 * header and MAC checks run), and re-signed with that token (the input is
 * taken as a frame without its MAC; the MAC flag is set and a valid MAC
 * appended) so the type and JSON checks also run on the signed path. A
 * decoded message must be an object of a known type, and must survive
 * encode -> decode unchanged. Its body then goes through msg_decode: it is
 * refused with CAIRN_EPROTO and a message, or the struct it gives encodes
 * (never NULL: a decoded struct is well-formed), decodes again, and encodes
 * to the same JSON; msg_unpack of the frame agrees with the two steps.
 *
 * Build: clang -fsanitize=fuzzer,address -Icommon tests/fuzz/fuzz_proto.c
 *        common/msg.c common/proto.c common/util.c common/err.c common/log.c
 *        -ljansson -lcrypto
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "err.h"
#include "msg.h"
#include "proto.h"

#define FUZZ_TOKEN "fuzz-token-0123456789abcdef"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The typed layer on a body proto_decode accepted. */
static void
fuzz__msg(const struct proto_key *k, const unsigned char *buf, size_t len, int type,
          const json_t *body)
{
    char err[256], err2[256];
    struct msg m, again, unpacked;
    json_t *enc, *enc2;
    int rc, rc2;

    err[0] = '\0';
    rc = msg_decode(type, body, &m, err, sizeof(err));
    rc2 = msg_unpack(k, buf, len, &unpacked, err2, sizeof(err2));
    if (rc != rc2)
        abort();
    if (rc != 0) {
        if (rc != CAIRN_EPROTO || err[0] == '\0' || !memchr(err, '\0', sizeof(err)))
            abort();
        if (strcmp(err, err2) != 0)
            abort();
        return;
    }
    if (m.type != type || unpacked.type != type)
        abort();
    enc = msg_encode(&m);
    enc2 = msg_encode(&unpacked);
    if (!enc || !enc2 || !json_equal(enc, enc2))
        abort();
    json_decref(enc2);
    msg_clear(&unpacked);
    /* what encodes decodes again, to the same JSON */
    if (msg_decode(type, enc, &again, err, sizeof(err)) != 0)
        abort();
    enc2 = msg_encode(&again);
    if (!enc2 || !json_equal(enc, enc2))
        abort();
    json_decref(enc2);
    json_decref(enc);
    msg_clear(&again);
    msg_clear(&m);
}

static void
fuzz__check(const struct proto_key *k, const unsigned char *buf, size_t len)
{
    char err[256];
    void *body = NULL, *again = NULL;
    unsigned char *out = NULL;
    size_t outlen = 0;
    int type = 0, type2 = 0;
    int rc;

    err[0] = '\0';
    rc = proto_decode(k, buf, len, &type, &body, err, sizeof(err));
    if (rc != 0) {
        if (rc != CAIRN_EPROTO && rc != CAIRN_EVERSION && rc != CAIRN_EAUTH)
            abort();
        if (err[0] == '\0' || !memchr(err, '\0', sizeof(err)))
            abort();
        return;
    }
    if (!json_is_object((json_t *)body) || strcmp(proto_type_name(type), "UNKNOWN") == 0)
        abort();
    /* What decodes encodes again; only a body near the limit may not fit,
     * since re-serialising can lengthen it (reals, escapes). */
    rc = proto_encode(k, type, body, &out, &outlen);
    if (rc == 0) {
        if (proto_decode(k, out, outlen, &type2, &again, err, sizeof(err)) != 0)
            abort();
        if (type2 != type || !json_equal((json_t *)body, (json_t *)again))
            abort();
        json_decref((json_t *)again);
        free(out);
    } else if (rc != CAIRN_ERANGE) {
        abort();
    }
    fuzz__msg(k, buf, len, type, body);
    json_decref((json_t *)body);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct proto_key key;
    static int ready;
    unsigned char *signed_buf;
    unsigned int maclen = 0;

    if (!ready) {
        proto_key_from_string(&key, FUZZ_TOKEN);
        ready = 1;
    }
    fuzz__check(NULL, data, size);
    fuzz__check(&key, data, size);

    if (size < PROTO_HEADER_LEN || size > PROTO_HEADER_LEN + PROTO_MAX_BODY)
        return 0;
    signed_buf = malloc(size + PROTO_MAC_LEN);
    if (!signed_buf)
        return 0;
    memcpy(signed_buf, data, size);
    signed_buf[7] |= PROTO_F_MAC;
    if (HMAC(EVP_sha256(), key.key, (int)key.len, signed_buf, size, signed_buf + size, &maclen) &&
        maclen == PROTO_MAC_LEN)
        fuzz__check(&key, signed_buf, size + PROTO_MAC_LEN);
    free(signed_buf);
    return 0;
}
