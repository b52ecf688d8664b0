/* test_proto.c - the scheduler <-> worker wire protocol: frames, MACs, token
 * files, typed getters, and one real nng req/rep exchange with a forked peer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "err.h"
#include "proto.h"
#include "testlib.h"
#include "util.h"

#define TOKEN_A "0123456789abcdef0123456789abcdef"
#define TOKEN_B "fedcba9876543210fedcba9876543210"

/* A string literal and its length (embedded NULs included). */
#define LIT(s) (s), (sizeof(s) - 1)

/* Sentinels that must survive a failed decode. */
#define TYPE_UNTOUCHED (-12345)
static char body_untouched;

/* ---- helpers ---- */

/* A representative body for each message type, as proto.h describes them. */
static json_t *
sample_body(int type)
{
    switch (type) {
    case PROTO_HELLO:
        return json_pack("{s:s, s:i, s:{s:s, s:s}, s:I, s:s}", "worker", "w-1", "slots", 4,
                         "labels", "gpu", "a100", "zone", "eu-1", "pid", (json_int_t)4242, "host",
                         "node1.example");
    case PROTO_WELCOME:
        return json_pack("{s:I, s:I}", "lease_ttl_ms", (json_int_t)30000, "heartbeat_ms",
                         (json_int_t)5000);
    case PROTO_POLL:
        return json_pack("{s:s, s:i, s:[I, I], s:I}", "worker", "w-1", "free", 2, "leases",
                         (json_int_t)7, (json_int_t)8, "wait_ms", (json_int_t)25000);
    case PROTO_WORK:
        return json_pack(
            "{s:[{s:I, s:s, s:s, s:s, s:i, s:s, s:[s, s, s], s:[s], s:s, s:I, s:f, s:I, s:i, "
            "s:b, s:[{s:s, s:s, s:s}], s:[s]}], s:[I]}",
            "leases", "lease_id", (json_int_t)9, "dag", "iris-retrain", "run_id",
            "scheduled__2026-01-02T03:00:00", "task", "train", "attempt", 1, "logical_date",
            "2026-01-02", "argv", "python3", "/pipeline/train.py", "--fast", "env",
            "PYTHONUNBUFFERED=1", "image", "host", "timeout_ms", (json_int_t)600000, "cpus", 1.5,
            "memory", (json_int_t)536870912, "pids", 256, "network", 0, "inputs", "name", "raw",
            "uri", "cas://ab/abcdef", "sha256",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "outputs",
            "model.pkl", "cancel", (json_int_t)3);
    case PROTO_STARTED:
        return json_pack("{s:s, s:I}", "worker", "w-1", "lease_id", (json_int_t)9);
    case PROTO_LOG:
        return json_pack("{s:s, s:I, s:i, s:I, s:s}", "worker", "w-1", "lease_id", (json_int_t)9,
                         "stream", 2, "offset", (json_int_t)1048576, "data",
                         "epoch 1: loss=0.25 \xc3\xa9\xe2\x9c\x93\n\ttab \"quoted\" \\\n");
    case PROTO_RESULT:
        return json_pack("{s:s, s:I, s:i, s:i, s:b, s:b, s:I, s:n, s:[{s:s, s:s, s:I, s:s}], "
                         "s:{s:f, s:I}}",
                         "worker", "w-1", "lease_id", (json_int_t)9, "exit_code", 0, "signal", 0,
                         "oom", 0, "timed_out", 0, "duration_ms", (json_int_t)12345, "error",
                         "outputs", "name", "model.pkl", "sha256",
                         "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", "size",
                         (json_int_t)5, "uri", "cas://2c/2cf24dba", "metrics", "accuracy", 0.953125,
                         "epochs", (json_int_t)10);
    case PROTO_ACK:
        return json_pack("{s:b, s:s}", "ok", 0, "reason", "lease 9 is not current");
    case PROTO_ERROR:
        return json_pack("{s:i, s:s}", "code", CAIRN_EPROTO, "message",
                         "field 'slots' must be an integer");
    default:
        return NULL;
    }
}

/* Build a frame by hand, independently of proto_encode: version, type, flags
 * and the claimed body length are free; the MAC (if k) covers everything
 * written before it, and is appended when flags has PROTO_F_MAC. */
static unsigned char *
raw_frame(unsigned version, unsigned type, unsigned flags, const char *body, size_t blen,
          uint32_t claimed, const struct proto_key *k, size_t *outlen)
{
    size_t n = PROTO_HEADER_LEN + blen;
    size_t total = n + ((flags & PROTO_F_MAC) ? PROTO_MAC_LEN : 0);
    unsigned char *f = xmalloc(total);
    unsigned int maclen = 0;

    memcpy(f, "CRN", 3);
    f[3] = (unsigned char)version;
    f[4] = (unsigned char)(type >> 8);
    f[5] = (unsigned char)type;
    f[6] = (unsigned char)(flags >> 8);
    f[7] = (unsigned char)flags;
    f[8] = (unsigned char)(claimed >> 24);
    f[9] = (unsigned char)(claimed >> 16);
    f[10] = (unsigned char)(claimed >> 8);
    f[11] = (unsigned char)claimed;
    if (blen)
        memcpy(f + PROTO_HEADER_LEN, body, blen);
    if (flags & PROTO_F_MAC) {
        if (k && k->len) {
            assert_non_null(HMAC(EVP_sha256(), k->key, (int)k->len, f, n, f + n, &maclen));
            assert_int_equal(maclen, PROTO_MAC_LEN);
        } else {
            memset(f + n, 0xA5, PROTO_MAC_LEN);
        }
    }
    *outlen = total;
    return f;
}

/* A well-formed v1 frame around body (signed iff k has a token). */
static unsigned char *
body_frame(unsigned type, const char *body, size_t blen, const struct proto_key *k, size_t *outlen)
{
    unsigned flags = (k && k->len) ? PROTO_F_MAC : 0;

    return raw_frame(PROTO_VERSION, type, flags, body, blen, (uint32_t)blen, k, outlen);
}

/* Decode and expect failure with code; checks outputs are untouched and that
 * err got a message. Returns nothing; err is left in errbuf for the caller. */
static void
expect_fail(const struct proto_key *k, const unsigned char *buf, size_t len, int code, char *errbuf,
            size_t errlen)
{
    int type = TYPE_UNTOUCHED;
    void *body = &body_untouched;
    int rc;

    errbuf[0] = '\0';
    rc = proto_decode(k, buf, len, &type, &body, errbuf, errlen);
    if (rc != code)
        fail_msg("decode of %zu bytes: got %s (%s), want %s", len, cairn_err_name(rc), errbuf,
                 cairn_err_name(code));
    assert_int_equal(type, TYPE_UNTOUCHED);
    assert_ptr_equal(body, &body_untouched);
    assert_true(strlen(errbuf) > 0);
}

static void
expect_body_fail(const struct proto_key *k, const char *body, size_t blen, const char *needle)
{
    char err[256];
    size_t len;
    unsigned char *f = body_frame(PROTO_HELLO, body, blen, k, &len);

    expect_fail(k, f, len, CAIRN_EPROTO, err, sizeof(err));
    if (needle && !strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
    free(f);
}

static void
expect_body_ok(const struct proto_key *k, const char *body)
{
    char err[256] = "";
    size_t len;
    unsigned char *f = body_frame(PROTO_ACK, body, strlen(body), k, &len);
    void *j = NULL;
    int type = 0;

    if (proto_decode(k, f, len, &type, &j, err, sizeof(err)) != 0)
        fail_msg("body %s refused: %s", body, err);
    assert_int_equal(type, PROTO_ACK);
    assert_true(json_is_object((json_t *)j));
    json_decref(j);
    free(f);
}

/* ---- names ---- */

static void
test_type_names(void **state)
{
    static const char *const want[] = {"UNKNOWN", "HELLO", "WELCOME", "POLL", "WORK",
                                       "STARTED", "LOG",   "RESULT",  "ACK",  "ERROR",
                                       "BATCH"};

    (void)state;
    for (int t = 0; t <= PROTO_BATCH; t++)
        assert_string_equal(proto_type_name(t), want[t]);
    assert_string_equal(proto_type_name(11), "UNKNOWN");
    assert_string_equal(proto_type_name(-1), "UNKNOWN");
    assert_string_equal(proto_type_name(0xffff), "UNKNOWN");
    assert_string_equal(proto_type_name(INT_MAX), "UNKNOWN");
}

/* ---- encode / decode ---- */

static void
roundtrip_all(const struct proto_key *enc, const struct proto_key *dec)
{
    for (int t = PROTO_HELLO; t <= PROTO_ERROR; t++) {
        json_t *body = sample_body(t);
        unsigned char *f = NULL;
        size_t len = 0;
        void *got = NULL;
        int type = 0;
        char err[256] = "";
        int rc;

        assert_non_null(body);
        assert_int_equal(proto_encode(enc, t, body, &f, &len), 0);
        rc = proto_decode(dec, f, len, &type, &got, err, sizeof(err));
        if (rc != 0)
            fail_msg("%s: %s", proto_type_name(t), err);
        assert_int_equal(type, t);
        assert_true(json_equal(body, got));
        json_decref(got);
        json_decref(body);
        free(f);
    }
}

static void
test_roundtrip_unsigned(void **state)
{
    struct proto_key none;

    (void)state;
    proto_key_from_string(&none, NULL);
    assert_int_equal(none.len, 0);
    roundtrip_all(&none, &none);
    roundtrip_all(NULL, NULL);
    roundtrip_all(&none, NULL);
}

static void
test_roundtrip_signed(void **state)
{
    struct proto_key k;

    (void)state;
    proto_key_from_string(&k, TOKEN_A);
    assert_int_equal(k.len, strlen(TOKEN_A));
    roundtrip_all(&k, &k);
}

/* The exact bytes: header fields big-endian, compact JSON, MAC = HMAC-SHA256
 * over header + body, computed here independently. */
static void
test_wire_format(void **state)
{
    struct proto_key k;
    unsigned char *f = NULL;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    size_t len = 0;
    json_t *body = json_pack("{s:i}", "a", 1);
    static const unsigned char hdr[] = {'C', 'R', 'N', 1, 0, 3, 0, 0, 0, 0, 0, 2};
    static const unsigned char hdr_signed[] = {'C', 'R', 'N', 1, 0, 8, 0, 1, 0, 0, 0, 7};

    (void)state;
    assert_int_equal(proto_encode(NULL, PROTO_POLL, NULL, &f, &len), 0);
    assert_int_equal(len, PROTO_HEADER_LEN + 2);
    assert_memory_equal(f, hdr, sizeof(hdr));
    assert_memory_equal(f + PROTO_HEADER_LEN, "{}", 2);
    free(f);

    proto_key_from_string(&k, TOKEN_A);
    assert_int_equal(proto_encode(&k, PROTO_ACK, body, &f, &len), 0);
    assert_int_equal(len, PROTO_HEADER_LEN + 7 + PROTO_MAC_LEN);
    assert_memory_equal(f, hdr_signed, sizeof(hdr_signed));
    assert_memory_equal(f + PROTO_HEADER_LEN, "{\"a\":1}", 7);
    assert_non_null(
        HMAC(EVP_sha256(), TOKEN_A, (int)strlen(TOKEN_A), f, PROTO_HEADER_LEN + 7, mac, &maclen));
    assert_int_equal(maclen, PROTO_MAC_LEN);
    assert_memory_equal(f + PROTO_HEADER_LEN + 7, mac, PROTO_MAC_LEN);
    free(f);
    json_decref(body);
}

static void
test_encode_rejects(void **state)
{
    json_t *arr = json_array();
    json_t *obj = json_object();
    unsigned char *f = (unsigned char *)&body_untouched;
    size_t len = 7;

    (void)state;
    assert_int_equal(proto_encode(NULL, 0, obj, &f, &len), CAIRN_EINVAL);
    assert_int_equal(proto_encode(NULL, 11, obj, &f, &len), CAIRN_EINVAL);
    assert_int_equal(proto_encode(NULL, -1, obj, &f, &len), CAIRN_EINVAL);
    assert_int_equal(proto_encode(NULL, PROTO_HELLO, arr, &f, &len), CAIRN_EINVAL);
    assert_ptr_equal(f, &body_untouched);
    assert_int_equal(len, 7);
    json_decref(arr);
    json_decref(obj);
}

/* A body of exactly PROTO_MAX_BODY bytes is accepted; one byte more is not,
 * on either side. */
static void
test_body_limit(void **state)
{
    const size_t over = PROTO_MAX_BODY + 1;
    char *text = xmalloc(over);
    unsigned char *f;
    size_t len;
    void *got = NULL;
    int type = 0;
    char err[256];
    json_t *big;

    (void)state;
    /* {"d":"aaa...a"} of exactly PROTO_MAX_BODY bytes. */
    memset(text, 'a', over);
    memcpy(text, "{\"d\":\"", 6);
    memcpy(text + PROTO_MAX_BODY - 2, "\"}", 2);
    f = body_frame(PROTO_LOG, text, PROTO_MAX_BODY, NULL, &len);
    assert_int_equal(proto_decode(NULL, f, len, &type, &got, err, sizeof(err)), 0);
    assert_int_equal(json_string_length(json_object_get(got, "d")), PROTO_MAX_BODY - 8);
    free(f);

    /* Re-encoding what was decoded fits exactly. */
    assert_int_equal(proto_encode(NULL, PROTO_LOG, got, &f, &len), 0);
    assert_int_equal(len, PROTO_HEADER_LEN + PROTO_MAX_BODY);
    free(f);
    json_decref(got);

    /* One byte more: the encoder refuses it... */
    memset(text, 'a', over);
    big = json_pack("{s:s%}", "d", text, (size_t)(PROTO_MAX_BODY - 7));
    assert_non_null(big);
    f = NULL;
    assert_int_equal(proto_encode(NULL, PROTO_LOG, big, &f, &len), CAIRN_ERANGE);
    assert_null(f);
    json_decref(big);

    /* ...and so does the decoder, even when the bytes are all there. */
    memcpy(text, "{\"d\":\"", 6);
    memcpy(text + over - 2, "\"}", 2);
    f = raw_frame(PROTO_VERSION, PROTO_LOG, 0, text, over, (uint32_t)over, NULL, &len);
    expect_fail(NULL, f, len, CAIRN_EPROTO, err, sizeof(err));
    assert_non_null(strstr(err, "exceeds"));
    free(f);
    free(text);
}

/* ---- authentication ---- */

static void
test_auth(void **state)
{
    struct proto_key a, b, none;
    json_t *body = sample_body(PROTO_HELLO);
    unsigned char *fa, *fn;
    size_t la, ln;
    char err[256];

    (void)state;
    proto_key_from_string(&a, TOKEN_A);
    proto_key_from_string(&b, TOKEN_B);
    proto_key_from_string(&none, "");
    assert_int_equal(proto_encode(&a, PROTO_HELLO, body, &fa, &la), 0);
    assert_int_equal(proto_encode(&none, PROTO_HELLO, body, &fn, &ln), 0);

    expect_fail(&b, fa, la, CAIRN_EAUTH, err, sizeof(err));
    assert_string_equal(err, "bad signature: the token does not match");

    /* A key that is a prefix of the right one is still wrong. */
    b = a;
    b.len = 16;
    expect_fail(&b, fa, la, CAIRN_EAUTH, err, sizeof(err));

    expect_fail(&none, fa, la, CAIRN_EAUTH, err, sizeof(err));
    expect_fail(NULL, fa, la, CAIRN_EAUTH, err, sizeof(err));
    assert_non_null(strstr(err, "signed"));

    expect_fail(&a, fn, ln, CAIRN_EAUTH, err, sizeof(err));
    assert_string_equal(err, "message is not signed; is the worker's --token-file set?");

    /* Flipping any one bit of a signed frame is caught: in the header by the
     * header checks or the MAC, in the body or the MAC by the MAC. */
    for (size_t i = 0; i < la; i++) {
        for (int bit = 0; bit < 8; bit++) {
            int type = TYPE_UNTOUCHED;
            void *got = &body_untouched;
            int rc;

            fa[i] ^= (unsigned char)(1u << bit);
            rc = proto_decode(&a, fa, la, &type, &got, err, sizeof(err));
            if (rc == 0)
                fail_msg("bit %d of byte %zu flipped and still accepted", bit, i);
            if (i >= PROTO_HEADER_LEN)
                assert_int_equal(rc, CAIRN_EAUTH);
            assert_int_equal(type, TYPE_UNTOUCHED);
            fa[i] ^= (unsigned char)(1u << bit);
        }
    }
    /* Unchanged, it still decodes. */
    {
        void *got = NULL;
        int type = 0;

        assert_int_equal(proto_decode(&a, fa, la, &type, &got, err, sizeof(err)), 0);
        json_decref(got);
    }
    free(fa);
    free(fn);
    json_decref(body);
}

/* ---- malformed frames ---- */

static void
test_truncated(void **state)
{
    struct proto_key k;
    json_t *body = sample_body(PROTO_RESULT);
    const struct proto_key *keys[2] = {NULL, &k};
    char err[256];

    (void)state;
    proto_key_from_string(&k, TOKEN_A);
    for (int s = 0; s < 2; s++) {
        unsigned char *f, *copy;
        size_t len;

        assert_int_equal(proto_encode(keys[s], PROTO_RESULT, body, &f, &len), 0);
        /* Each prefix in its own exact-size buffer so ASan sees any overread. */
        for (size_t n = 0; n < len; n++) {
            copy = xmalloc(n);
            memcpy(copy, f, n);
            expect_fail(keys[s], n ? copy : NULL, n, CAIRN_EPROTO, err, sizeof(err));
            free(copy);
        }
        /* One byte too many is as wrong as one too few. */
        copy = xmalloc(len + 1);
        memcpy(copy, f, len);
        copy[len] = '\n';
        expect_fail(keys[s], copy, len + 1, CAIRN_EPROTO, err, sizeof(err));
        assert_non_null(strstr(err, "header says"));
        free(copy);
        free(f);
    }
    json_decref(body);
}

static void
test_header_errors(void **state)
{
    static const char body[] = "{\"ok\":true}";
    const size_t blen = sizeof(body) - 1;
    struct proto_key k;
    unsigned char *f;
    size_t len;
    char err[256];

    (void)state;
    proto_key_from_string(&k, TOKEN_A);

    /* Magic. */
    f = body_frame(PROTO_ACK, body, blen, NULL, &len);
    f[0] = 'X';
    expect_fail(NULL, f, len, CAIRN_EPROTO, err, sizeof(err));
    assert_non_null(strstr(err, "magic"));
    f[0] = 'C';
    f[2] = 'n';
    expect_fail(NULL, f, len, CAIRN_EPROTO, err, sizeof(err));
    free(f);
    f = body_frame(PROTO_ACK, LIT("{}"), NULL, &len);
    memcpy(f, "GET / HTTP/1.1\r\n\r\n", PROTO_HEADER_LEN);
    expect_fail(NULL, f, len, CAIRN_EPROTO, err, sizeof(err));
    free(f);

    /* Versions: checked before anything that could differ between versions,
     * and the message names both. */
    {
        static const unsigned versions[] = {0, 2, 255};

        for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
            char want[32];

            f = raw_frame(versions[i], PROTO_ACK, 0, body, blen, (uint32_t)blen, NULL, &len);
            expect_fail(NULL, f, len, CAIRN_EVERSION, err, sizeof(err));
            snprintf(want, sizeof(want), "version %u", versions[i]);
            assert_non_null(strstr(err, want));
            assert_non_null(strstr(err, "version 1"));
            expect_fail(&k, f, len, CAIRN_EVERSION, err, sizeof(err));
            free(f);
        }
        /* A v2 header with a longer, different layout is still EVERSION. */
        f = raw_frame(2, 0xbeef, 0xffff, body, blen, 0xffffffffu, NULL, &len);
        expect_fail(NULL, f, len, CAIRN_EVERSION, err, sizeof(err));
        free(f);
    }

    /* Unknown flag bits. */
    {
        static const unsigned flags[] = {0x0002, 0x8000, 0x0003, 0xffff};

        for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
            f = raw_frame(PROTO_VERSION, PROTO_ACK, flags[i], body, blen, (uint32_t)blen, &k, &len);
            expect_fail(&k, f, len, CAIRN_EPROTO, err, sizeof(err));
            assert_non_null(strstr(err, "flags"));
            expect_fail(NULL, f, len, CAIRN_EPROTO, err, sizeof(err));
            free(f);
        }
    }

    /* body_len lies, both ways, signed and unsigned. */
    {
        static const uint32_t lies[] = {0, 1, 10, 12, 13, 44, 0x7fffffffu, 0xffffffffu};

        for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
            f = raw_frame(PROTO_VERSION, PROTO_ACK, 0, body, blen, lies[i], NULL, &len);
            expect_fail(NULL, f, len, CAIRN_EPROTO, err, sizeof(err));
            free(f);
            f = raw_frame(PROTO_VERSION, PROTO_ACK, PROTO_F_MAC, body, blen, lies[i], &k, &len);
            expect_fail(&k, f, len, CAIRN_EPROTO, err, sizeof(err));
            free(f);
        }
        /* A signed frame's length read as if unsigned: body_len + MAC would
         * be the body. */
        f = raw_frame(PROTO_VERSION, PROTO_ACK, 0, body, blen, (uint32_t)(blen + PROTO_MAC_LEN),
                      NULL, &len);
        expect_fail(NULL, f, len, CAIRN_EPROTO, err, sizeof(err));
        free(f);
    }

    /* body_len beyond the limit with only the header present. */
    f = raw_frame(PROTO_VERSION, PROTO_ACK, 0, NULL, 0, PROTO_MAX_BODY + 1, NULL, &len);
    expect_fail(NULL, f, len, CAIRN_EPROTO, err, sizeof(err));
    assert_non_null(strstr(err, "exceeds"));
    free(f);

    /* Unknown types: refused after the MAC, so also when signed. */
    {
        static const unsigned types[] = {0, 11, 0x100, 0xffff};

        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
            f = body_frame(types[i], body, blen, NULL, &len);
            expect_fail(NULL, f, len, CAIRN_EPROTO, err, sizeof(err));
            assert_non_null(strstr(err, "unknown message type"));
            free(f);
            f = body_frame(types[i], body, blen, &k, &len);
            expect_fail(&k, f, len, CAIRN_EPROTO, err, sizeof(err));
            free(f);
        }
    }
}

static void
body_errors_with(const struct proto_key *k)
{
    static const char *const not_objects[] = {"[]",    "[1,2]", "1",    "-1.5",
                                              "\"x\"", "null",  "true", "false"};
    char deep[6000];
    size_t n = 0;

    for (size_t i = 0; i < sizeof(not_objects) / sizeof(not_objects[0]); i++)
        expect_body_fail(k, not_objects[i], strlen(not_objects[i]), "must be a JSON object");

    /* Not JSON at all, or only partly. */
    expect_body_fail(k, LIT(""), "not valid JSON");
    expect_body_fail(k, LIT("   "), "not valid JSON");
    expect_body_fail(k, LIT("{"), "not valid JSON");
    expect_body_fail(k, LIT("{\"a\":}"), "not valid JSON");
    expect_body_fail(k, LIT("{} {}"), "not valid JSON");
    expect_body_fail(k, LIT("{}x"), "not valid JSON");
    expect_body_fail(k, LIT("{'a':1}"), "not valid JSON");
    expect_body_fail(k, LIT("{\"a\":1,}"), "not valid JSON");
    expect_body_fail(k, LIT("{\"a\":NaN}"), "not valid JSON");
    expect_body_fail(k, LIT("{\"a\":99999999999999999999999}"), "not valid JSON");

    /* Invalid UTF-8: a stray continuation byte, a lone lead byte, an overlong
     * '/', a UTF-16 surrogate, a code point above U+10FFFF; in values and
     * in keys. */
    expect_body_fail(k, LIT("{\"a\":\"\xff\"}"), "not valid JSON");
    expect_body_fail(k, LIT("{\"a\":\"\x80\"}"), "not valid JSON");
    expect_body_fail(k, LIT("{\"a\":\"\xc3\"}"), "not valid JSON");
    expect_body_fail(k, LIT("{\"a\":\"\xc0\xaf\"}"), "not valid JSON");
    expect_body_fail(k, LIT("{\"a\":\"\xed\xa0\x80\"}"), "not valid JSON");
    expect_body_fail(k, LIT("{\"a\":\"\xf4\x90\x80\x80\"}"), "not valid JSON");
    expect_body_fail(k, LIT("{\"\xfe\":1}"), "not valid JSON");
    /* A lone surrogate escape is not a character either. */
    expect_body_fail(k, LIT("{\"a\":\"\\ud800\"}"), "not valid JSON");

    /* NUL: escaped, raw inside a string, raw between tokens. */
    expect_body_fail(k, LIT("{\"a\":\"x\\u0000y\"}"), "not valid JSON");
    expect_body_fail(k, LIT("{\"a\":\"x\0y\"}"), "not valid JSON");
    expect_body_fail(k, LIT("{\"a\":1}\0"), "not valid JSON");
    expect_body_fail(k, LIT("{\"a\":\"\n\"}"), "not valid JSON");

    /* Duplicate keys, at the top and nested. */
    expect_body_fail(k, LIT("{\"a\":1,\"a\":2}"), "duplicate");
    expect_body_fail(k, LIT("{\"a\":{\"b\":1,\"b\":1}}"), "duplicate");
    expect_body_fail(k, LIT("{\"l\":[{\"x\":1,\"y\":2,\"x\":3}]}"), "duplicate");

    /* Nesting deeper than the parser allows is refused, not a stack overflow. */
    n += (size_t)snprintf(deep, sizeof(deep), "{\"a\":");
    while (n < 5005)
        deep[n++] = '[';
    expect_body_fail(k, deep, n, "not valid JSON");

    /* Things that are fine. */
    expect_body_ok(k, "{}");
    expect_body_ok(k, " \t\r\n{ \"a\" : [ 1 , { } ] }\n");
    expect_body_ok(k, "{\"a\":\"\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80\\ud83d\\ude00\"}");
    expect_body_ok(k, "{\"a\":1,\"A\":2,\"b\":{\"a\":3}}");
}

static void
test_body_errors(void **state)
{
    struct proto_key k;

    (void)state;
    proto_key_from_string(&k, TOKEN_A);
    body_errors_with(NULL);
    body_errors_with(&k);
}

/* ---- random input ---- */

static uint64_t rng_state;

static uint64_t
rng_next(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

static size_t
rng_below(size_t n)
{
    return (size_t)(rng_next() % n);
}

/* Decode anything: any result but a crash is fine, and the result must be
 * one of the documented ones, with outputs set iff it succeeded. */
static int
decode_any(const struct proto_key *k, const unsigned char *buf, size_t len)
{
    int type = TYPE_UNTOUCHED;
    void *body = &body_untouched;
    char err[256] = "";
    int rc = proto_decode(k, buf, len, &type, &body, err, sizeof(err));

    if (rc == 0) {
        assert_string_not_equal(proto_type_name(type), "UNKNOWN");
        assert_true(json_is_object((json_t *)body));
        json_decref(body);
        return 0;
    }
    if (rc != CAIRN_EPROTO && rc != CAIRN_EVERSION && rc != CAIRN_EAUTH)
        fail_msg("unexpected %s", cairn_err_name(rc));
    assert_int_equal(type, TYPE_UNTOUCHED);
    assert_ptr_equal(body, &body_untouched);
    assert_true(err[0] != '\0');
    return rc;
}

static void
test_random_garbage(void **state)
{
    static const char alphabet[] = "{}[]\":,0123456789-+.eEtruefalsnl\\u \t\n\xc3\xa9\xff\0ab";
    struct proto_key k;
    unsigned char *valid[PROTO_ERROR + 1][2];
    size_t valid_len[PROTO_ERROR + 1][2];
    unsigned char buf[512];
    int accepted = 0, mutated_signed_accepted = 0;

    (void)state;
    rng_state = UINT64_C(0x9e3779b97f4a7c15);
    proto_key_from_string(&k, TOKEN_A);
    for (int t = PROTO_HELLO; t <= PROTO_ERROR; t++) {
        json_t *b = sample_body(t);

        assert_int_equal(proto_encode(NULL, t, b, &valid[t][0], &valid_len[t][0]), 0);
        assert_int_equal(proto_encode(&k, t, b, &valid[t][1], &valid_len[t][1]), 0);
        json_decref(b);
    }

    for (int i = 0; i < 10000; i++) {
        size_t len;
        unsigned char *f;

        switch (i % 3) {
        case 0: /* Pure noise, exact-size buffer. */
            len = rng_below(80);
            f = xmalloc(len);
            for (size_t j = 0; j < len; j++)
                f[j] = (unsigned char)rng_next();
            decode_any(NULL, f, len);
            decode_any(&k, f, len);
            free(f);
            break;
        case 1: { /* A good header around JSON-ish noise: reaches the parser. */
            size_t blen = rng_below(sizeof(buf));
            unsigned type = (unsigned)rng_below(12);
            int sign = (int)rng_below(2);

            if (rng_below(4) == 0) {
                /* Sometimes a small valid object. */
                blen = (size_t)snprintf((char *)buf, sizeof(buf), "{\"k%u\":%u}",
                                        (unsigned)rng_below(100), (unsigned)rng_below(1000));
            } else {
                for (size_t j = 0; j < blen; j++)
                    buf[j] = (unsigned char)alphabet[rng_below(sizeof(alphabet) - 1)];
                if (blen && rng_below(2))
                    buf[0] = '{';
            }
            f = body_frame(type, (const char *)buf, blen, sign ? &k : NULL, &len);
            if (decode_any(sign ? &k : NULL, f, len) == 0)
                accepted++;
            /* The wrong side of the token never accepts it. */
            assert_int_equal(decode_any(sign ? NULL : &k, f, len), CAIRN_EAUTH);
            free(f);
            break;
        }
        default: { /* A valid frame with a few bytes changed. */
            int t = PROTO_HELLO + (int)rng_below(PROTO_ERROR);
            int sign = (int)rng_below(2);
            int edits = 1 + (int)rng_below(4);

            len = valid_len[t][sign];
            f = xmalloc(len);
            memcpy(f, valid[t][sign], len);
            for (int e = 0; e < edits; e++) {
                size_t pos = rng_below(len);
                unsigned char nb = (unsigned char)rng_next();

                if (nb == f[pos])
                    nb ^= 0x40;
                f[pos] = nb;
            }
            if (decode_any(sign ? &k : NULL, f, len) == 0 && sign)
                mutated_signed_accepted++;
            /* Sometimes also cut it short. */
            decode_any(sign ? &k : NULL, f, rng_below(len));
            free(f);
            break;
        }
        }
    }
    assert_int_equal(mutated_signed_accepted, 0);
    /* The structured noise did reach the JSON parser and sometimes pass. */
    assert_true(accepted > 0);
    for (int t = PROTO_HELLO; t <= PROTO_ERROR; t++) {
        free(valid[t][0]);
        free(valid[t][1]);
    }
}

/* ---- token files ---- */

static void
expect_key_fail(const char *path, int code, const char *needle)
{
    struct proto_key k;
    char err[512] = "";

    memset(&k, 0x5a, sizeof(k));
    assert_int_equal(proto_key_load(&k, path, err, sizeof(err)), code);
    if (needle && !strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
    /* *k is set only on success. */
    for (size_t i = 0; i < sizeof(k.key); i++)
        assert_int_equal(k.key[i], 0x5a);
}

static void
test_key_file(void **state)
{
    static const char tok[] = TOKEN_A;
    char path[128], err[512];
    struct tl_dir d;
    struct proto_key k, s;
    char text[256];

    (void)state;
    assert_int_equal(tl_dir_make(&d, "proto"), 0);
    snprintf(path, sizeof(path), "%s/token", d.path);

    /* Missing. */
    expect_key_fail(path, CAIRN_EIO, "cannot open");

    /* Modes: only the owner may have any access. */
    {
        static const mode_t bad[] = {0644, 0640, 0604, 0660, 0620, 0602, 0610, 0601, 0444, 0777};
        static const mode_t good[] = {0600, 0400, 0700};

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            tl_write_file_mode(path, tok, strlen(tok), bad[i]);
            expect_key_fail(path, CAIRN_EINVAL, "chmod 600");
            assert_int_equal(chmod(path, 0600), 0);
        }
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
            tl_write_file_mode(path, tok, strlen(tok), good[i]);
            assert_int_equal(proto_key_load(&k, path, err, sizeof(err)), 0);
            assert_int_equal(k.len, strlen(tok));
            assert_memory_equal(k.key, tok, k.len);
            assert_int_equal(chmod(path, 0600), 0);
        }
    }

    /* Trimming: surrounding whitespace and blank lines go, the first line is
     * the token, CRLF works, inner spaces stay. */
    snprintf(text, sizeof(text), "\n  \t%s \r\nsecond line is ignored\n", tok);
    tl_write_file_mode(path, text, strlen(text), 0600);
    assert_int_equal(proto_key_load(&k, path, err, sizeof(err)), 0);
    assert_int_equal(k.len, strlen(tok));
    assert_memory_equal(k.key, tok, k.len);
    /* The same text through proto_key_from_string gives the same key. */
    proto_key_from_string(&s, text);
    assert_int_equal(s.len, k.len);
    assert_memory_equal(s.key, k.key, k.len);

    tl_write_file_mode(path, LIT("correct horse battery staple\n"), 0400);
    assert_int_equal(proto_key_load(&k, path, err, sizeof(err)), 0);
    assert_int_equal(k.len, 28);
    assert_int_equal(chmod(path, 0600), 0);

    /* Lengths: 16..64 bytes. */
    memset(text, 'x', sizeof(text));
    tl_write_file_mode(path, text, 15, 0600);
    expect_key_fail(path, CAIRN_EINVAL, "at least 16");
    tl_write_file_mode(path, text, 16, 0600);
    assert_int_equal(proto_key_load(&k, path, err, sizeof(err)), 0);
    assert_int_equal(k.len, 16);
    tl_write_file_mode(path, text, 64, 0600);
    assert_int_equal(proto_key_load(&k, path, err, sizeof(err)), 0);
    assert_int_equal(k.len, 64);
    tl_write_file_mode(path, text, 65, 0600);
    expect_key_fail(path, CAIRN_EINVAL, "longer than 64");
    tl_write_file_mode(path, LIT(""), 0600);
    expect_key_fail(path, CAIRN_EINVAL, "at least 16");
    tl_write_file_mode(path, LIT(" \n\n\t \n"), 0600);
    expect_key_fail(path, CAIRN_EINVAL, "at least 16");
    /* Short first line, long second: the first line is what counts. */
    tl_write_file_mode(path, LIT("short\n0123456789abcdef0123\n"), 0600);
    expect_key_fail(path, CAIRN_EINVAL, "at least 16");
    /* A huge one-line file is refused, not truncated. */
    {
        size_t big = 10000;
        char *huge = xmalloc(big);

        memset(huge, 'k', big);
        tl_write_file_mode(path, huge, big, 0600);
        expect_key_fail(path, CAIRN_EINVAL, "longer than 64");
        free(huge);
    }

    /* Not a regular file. */
    assert_int_equal(chmod(d.path, 0700), 0);
    expect_key_fail(d.path, CAIRN_EINVAL, "regular file");

    /* err may be NULL. */
    tl_write_file_mode(path, LIT("short"), 0600);
    assert_int_equal(proto_key_load(&k, path, NULL, 0), CAIRN_EINVAL);

    /* A key loaded from a file talks to one built from the same string. */
    tl_write_file_mode(path, tok, strlen(tok), 0600);
    assert_int_equal(proto_key_load(&k, path, err, sizeof(err)), 0);
    proto_key_from_string(&s, TOKEN_A "\n");
    {
        json_t *b = sample_body(PROTO_STARTED);
        unsigned char *f;
        size_t len;
        void *got = NULL;
        int type = 0;

        assert_int_equal(proto_encode(&k, PROTO_STARTED, b, &f, &len), 0);
        assert_int_equal(proto_decode(&s, f, len, &type, &got, err, sizeof(err)), 0);
        assert_true(json_equal(b, got));
        json_decref(got);
        json_decref(b);
        free(f);
    }

    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(d.path), 0);
    tl_dir_remove(&d);
}

static void
test_key_from_string(void **state)
{
    struct proto_key k;
    char big[100];

    (void)state;
    proto_key_from_string(&k, NULL);
    assert_int_equal(k.len, 0);
    proto_key_from_string(&k, "");
    assert_int_equal(k.len, 0);
    proto_key_from_string(&k, " \t\n");
    assert_int_equal(k.len, 0);
    proto_key_from_string(&k, "  secret token \n");
    assert_int_equal(k.len, 12);
    assert_memory_equal(k.key, "secret token", 12);
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    proto_key_from_string(&k, big);
    assert_int_equal(k.len, sizeof(k.key));
}

/* ---- typed getters ---- */

static void
test_getters(void **state)
{
    json_t *o =
        json_pack("{s:s, s:i, s:I, s:f, s:s, s:b, s:n, s:[], s:{}, s:I, s:I}", "name", "w-1",
                  "slots", 4, "big", (json_int_t)INT64_MAX, "real", 1.0, "num", "7", "flag", 1,
                  "nothing", "list", "map", "neg", (json_int_t)-5, "min", (json_int_t)INT64_MIN);
    json_t *arr = json_array();
    const char *s = "untouched";
    int64_t i = 77;
    int b = 9;
    void *p = NULL;
    char err[256];

    (void)state;
    json_object_set_new(o, "nul", json_stringn("a\0b", 3));

    assert_int_equal(proto_get_str(o, "name", &s, err, sizeof(err)), 0);
    assert_string_equal(s, "w-1");
    assert_int_equal(proto_get_int(o, "slots", 0, 1024, &i, err, sizeof(err)), 0);
    assert_int_equal(i, 4);
    assert_int_equal(proto_get_int(o, "big", INT64_MIN, INT64_MAX, &i, err, sizeof(err)), 0);
    assert_true(i == INT64_MAX);
    assert_int_equal(proto_get_int(o, "min", INT64_MIN, 0, &i, err, sizeof(err)), 0);
    assert_true(i == INT64_MIN);
    assert_int_equal(proto_get_bool(o, "flag", &b, err, sizeof(err)), 0);
    assert_int_equal(b, 1);
    assert_int_equal(proto_get_array(o, "list", &p, err, sizeof(err)), 0);
    assert_true(json_is_array((json_t *)p));
    assert_int_equal(proto_get_object(o, "map", &p, err, sizeof(err)), 0);
    assert_true(json_is_object((json_t *)p));

    /* Failures leave *out alone and name the field. */
    s = "untouched";
    i = 77;
    b = 9;
    p = NULL;
    assert_int_equal(proto_get_str(o, "missing", &s, err, sizeof(err)), CAIRN_EPROTO);
    assert_string_equal(err, "missing field 'missing'");
    assert_int_equal(proto_get_str(o, "slots", &s, err, sizeof(err)), CAIRN_EPROTO);
    assert_string_equal(err, "field 'slots' must be a string");
    assert_int_equal(proto_get_str(o, "nothing", &s, err, sizeof(err)), CAIRN_EPROTO);
    assert_int_equal(proto_get_str(o, "nul", &s, err, sizeof(err)), CAIRN_EPROTO);
    assert_non_null(strstr(err, "NUL"));
    assert_string_equal(s, "untouched");

    assert_int_equal(proto_get_int(o, "slots", 5, 10, &i, err, sizeof(err)), CAIRN_EPROTO);
    assert_string_equal(err, "field 'slots' is 4, must be between 5 and 10");
    assert_int_equal(proto_get_int(o, "slots", 0, 3, &i, err, sizeof(err)), CAIRN_EPROTO);
    assert_int_equal(proto_get_int(o, "neg", 0, 10, &i, err, sizeof(err)), CAIRN_EPROTO);
    assert_int_equal(proto_get_int(o, "real", 0, 10, &i, err, sizeof(err)), CAIRN_EPROTO);
    assert_string_equal(err, "field 'real' must be an integer");
    assert_int_equal(proto_get_int(o, "num", 0, 10, &i, err, sizeof(err)), CAIRN_EPROTO);
    assert_int_equal(proto_get_int(o, "flag", 0, 10, &i, err, sizeof(err)), CAIRN_EPROTO);
    assert_int_equal(proto_get_int(o, "nothing", 0, 10, &i, err, sizeof(err)), CAIRN_EPROTO);
    assert_int_equal(proto_get_int(o, "missing", 0, 10, &i, err, sizeof(err)), CAIRN_EPROTO);
    assert_int_equal(i, 77);

    assert_int_equal(proto_get_bool(o, "slots", &b, err, sizeof(err)), CAIRN_EPROTO);
    assert_int_equal(proto_get_bool(o, "name", &b, err, sizeof(err)), CAIRN_EPROTO);
    assert_int_equal(proto_get_bool(o, "missing", &b, err, sizeof(err)), CAIRN_EPROTO);
    assert_int_equal(b, 9);
    assert_int_equal(proto_get_array(o, "map", &p, err, sizeof(err)), CAIRN_EPROTO);
    assert_int_equal(proto_get_object(o, "list", &p, err, sizeof(err)), CAIRN_EPROTO);
    assert_int_equal(proto_get_array(o, "missing", &p, err, sizeof(err)), CAIRN_EPROTO);
    assert_null(p);

    /* Optional: absent or null leaves *out alone; present must be right. */
    assert_int_equal(proto_opt_str(o, "missing", &s, err, sizeof(err)), 0);
    assert_int_equal(proto_opt_str(o, "nothing", &s, err, sizeof(err)), 0);
    assert_string_equal(s, "untouched");
    assert_int_equal(proto_opt_str(o, "name", &s, err, sizeof(err)), 0);
    assert_string_equal(s, "w-1");
    assert_int_equal(proto_opt_str(o, "slots", &s, err, sizeof(err)), CAIRN_EPROTO);
    assert_int_equal(proto_opt_int(o, "missing", 0, 10, &i, err, sizeof(err)), 0);
    assert_int_equal(proto_opt_int(o, "nothing", 0, 10, &i, err, sizeof(err)), 0);
    assert_int_equal(i, 77);
    assert_int_equal(proto_opt_int(o, "slots", 0, 10, &i, err, sizeof(err)), 0);
    assert_int_equal(i, 4);
    assert_int_equal(proto_opt_int(o, "slots", 0, 3, &i, err, sizeof(err)), CAIRN_EPROTO);
    assert_int_equal(proto_opt_int(o, "name", 0, 3, &i, err, sizeof(err)), CAIRN_EPROTO);
    assert_int_equal(proto_opt_bool(o, "missing", &b, err, sizeof(err)), 0);
    assert_int_equal(b, 9);
    assert_int_equal(proto_opt_bool(o, "flag", &b, err, sizeof(err)), 0);
    assert_int_equal(b, 1);
    assert_int_equal(proto_opt_bool(o, "slots", &b, err, sizeof(err)), CAIRN_EPROTO);

    /* Not an object at all, or NULL: an error, not a crash. */
    assert_int_equal(proto_get_str(arr, "name", &s, err, sizeof(err)), CAIRN_EPROTO);
    assert_int_equal(proto_get_int(NULL, "name", 0, 1, &i, err, sizeof(err)), CAIRN_EPROTO);
    assert_int_equal(proto_opt_str(NULL, "name", &s, err, sizeof(err)), CAIRN_EPROTO);
    assert_int_equal(proto_opt_int(arr, "name", 0, 1, &i, NULL, 0), CAIRN_EPROTO);

    /* On a decoded message. */
    {
        json_t *hello = sample_body(PROTO_HELLO);
        unsigned char *f;
        size_t len;
        void *got = NULL;
        int type = 0;
        const char *worker = NULL;
        int64_t slots = 0;

        assert_int_equal(proto_encode(NULL, PROTO_HELLO, hello, &f, &len), 0);
        assert_int_equal(proto_decode(NULL, f, len, &type, &got, err, sizeof(err)), 0);
        assert_int_equal(proto_get_str(got, "worker", &worker, err, sizeof(err)), 0);
        assert_string_equal(worker, "w-1");
        assert_int_equal(proto_get_int(got, "slots", 1, 1024, &slots, err, sizeof(err)), 0);
        assert_int_equal(slots, 4);
        assert_int_equal(proto_get_object(got, "labels", &p, err, sizeof(err)), 0);
        json_decref(got);
        json_decref(hello);
        free(f);
    }

    json_decref(arr);
    json_decref(o);
}

/* ---- a real nng exchange with a forked peer ---- */

/* Garbage the parent sends after the echo round trips. */
#define NNG_GARBAGE 6
#define NNG_BIG_LOG (2u * 1024 * 1024)
#define NNG_REQUESTS (PROTO_ERROR + 1 + NNG_GARBAGE)
#define NNG_TIMEOUT_MS 20000

/* The child: a rep socket that answers each request with the decoded message
 * encoded again, or with ERROR {code, message} if it cannot decode it. No
 * cmocka here: failures are exit codes. */
static int
child_serve(int ready_fd, int done_fd, const struct proto_key *k)
{
    nng_socket s;
    nng_listener l;
    nng_sockaddr sa;
    uint16_t port;
    char c;
    int rc = 0;

    if (nng_rep0_open(&s) != 0)
        return 10;
    if (nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, PROTO_MAX_FRAME) != 0 ||
        nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, NNG_TIMEOUT_MS) != 0 ||
        nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, NNG_TIMEOUT_MS) != 0) {
        rc = 11;
        goto out;
    }
    if (nng_listen(s, "tcp://127.0.0.1:0", &l, 0) != 0 ||
        nng_listener_get_addr(l, NNG_OPT_LOCADDR, &sa) != 0 || sa.s_family != NNG_AF_INET) {
        rc = 12;
        goto out;
    }
    port = ntohs(sa.s_in.sa_port);
    if (write(ready_fd, &port, sizeof(port)) != (ssize_t)sizeof(port)) {
        rc = 13;
        goto out;
    }
    for (int i = 0; i < NNG_REQUESTS; i++) {
        nng_msg *m = NULL;
        unsigned char *out = NULL;
        size_t outlen = 0;
        char err[256] = "";
        void *body = NULL;
        int type = 0, drc;

        if (nng_recvmsg(s, &m, 0) != 0) {
            rc = 20;
            goto out;
        }
        drc = proto_decode(k, nng_msg_body(m), nng_msg_len(m), &type, &body, err, sizeof(err));
        nng_msg_free(m);
        if (drc == 0) {
            drc = proto_encode(k, type, body, &out, &outlen);
            json_decref(body);
        } else {
            json_t *e = json_pack("{s:i, s:s}", "code", drc, "message", err);

            drc = e ? proto_encode(k, PROTO_ERROR, e, &out, &outlen) : CAIRN_ENOMEM;
            json_decref(e);
        }
        if (drc != 0) {
            rc = 21;
            goto out;
        }
        drc = nng_send(s, out, outlen, 0);
        free(out);
        if (drc != 0) {
            rc = 22;
            goto out;
        }
    }
    /* Stay up until the parent has read every reply. */
    if (read(done_fd, &c, 1) != 1)
        rc = 30;
out:
    nng_close(s);
    return rc;
}

/* Send one frame and return the reply decoded (type and body). */
static void
exchange(nng_socket s, const struct proto_key *k, const unsigned char *frame, size_t len, int *type,
         json_t **body)
{
    nng_msg *m = NULL;
    char err[256] = "";
    void *got = NULL;
    int rc;

    assert_int_equal(nng_send(s, (void *)frame, len, 0), 0);
    assert_int_equal(nng_recvmsg(s, &m, 0), 0);
    rc = proto_decode(k, nng_msg_body(m), nng_msg_len(m), type, &got, err, sizeof(err));
    nng_msg_free(m);
    if (rc != 0)
        fail_msg("reply does not decode: %s", err);
    *body = got;
}

static void
expect_error_reply(nng_socket s, const struct proto_key *k, const unsigned char *frame, size_t len,
                   int code)
{
    json_t *body = NULL;
    int type = 0;
    int64_t got_code = 0;
    const char *msg = NULL;
    char err[256];

    exchange(s, k, frame, len, &type, &body);
    assert_int_equal(type, PROTO_ERROR);
    assert_int_equal(proto_get_int(body, "code", INT32_MIN, -1, &got_code, err, sizeof(err)), 0);
    if (got_code != code)
        fail_msg("ERROR code %s, want %s", cairn_err_name((int)got_code), cairn_err_name(code));
    assert_int_equal(proto_get_str(body, "message", &msg, err, sizeof(err)), 0);
    assert_true(strlen(msg) > 0);
    json_decref(body);
}

/* This is the only test that uses nng, and it forks before the parent makes
 * any nng call, so the child starts with a clean library. */
static void
test_nng_exchange(void **state)
{
    struct proto_key k, wrong;
    int ready[2], done[2];
    uint16_t port = 0;
    char url[64];
    nng_socket s;
    pid_t pid;
    int status = 0;

    (void)state;
    proto_key_from_string(&k, TOKEN_A);
    proto_key_from_string(&wrong, TOKEN_B);
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(done), 0);
    pid = tl_fork();
    if (pid == 0) {
        close(ready[0]);
        close(done[1]);
        _exit(child_serve(ready[1], done[0], &k));
    }
    close(ready[1]);
    close(done[0]);
    assert_int_equal(read(ready[0], &port, sizeof(port)), (ssize_t)sizeof(port));
    assert_true(port > 0);

    assert_int_equal(nng_req0_open(&s), 0);
    assert_int_equal(nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, PROTO_MAX_FRAME), 0);
    assert_int_equal(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, NNG_TIMEOUT_MS), 0);
    assert_int_equal(nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, NNG_TIMEOUT_MS), 0);
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", (unsigned)port);
    assert_int_equal(nng_dial(s, url, NULL, 0), 0);

    /* Every message type, signed, echoed back. */
    for (int t = PROTO_HELLO; t <= PROTO_ERROR; t++) {
        json_t *body = sample_body(t), *back = NULL;
        unsigned char *f;
        size_t len;
        int type = 0;

        assert_int_equal(proto_encode(&k, t, body, &f, &len), 0);
        exchange(s, &k, f, len, &type, &back);
        assert_int_equal(type, t);
        assert_true(json_equal(body, back));
        json_decref(back);
        json_decref(body);
        free(f);
    }
    /* A LOG bigger than nng's default receive limit. */
    {
        char *data = xmalloc(NNG_BIG_LOG + 1);
        json_t *body, *back = NULL;
        unsigned char *f;
        size_t len;
        int type = 0;

        memset(data, 'L', NNG_BIG_LOG);
        data[NNG_BIG_LOG] = '\0';
        body = json_pack("{s:s, s:I, s:i, s:I, s:s}", "worker", "w-1", "lease_id", (json_int_t)9,
                         "stream", 1, "offset", (json_int_t)0, "data", data);
        assert_int_equal(proto_encode(&k, PROTO_LOG, body, &f, &len), 0);
        assert_true(len > NNG_BIG_LOG);
        exchange(s, &k, f, len, &type, &back);
        assert_int_equal(type, PROTO_LOG);
        assert_true(json_equal(body, back));
        json_decref(back);
        json_decref(body);
        free(f);
        free(data);
    }

    /* Garbage: answered with ERROR, and the child carries on. */
    {
        unsigned char noise[100];
        unsigned char *f;
        size_t len;
        json_t *body = sample_body(PROTO_POLL);

        rng_state = UINT64_C(42);
        for (size_t i = 0; i < sizeof(noise); i++)
            noise[i] = (unsigned char)rng_next();
        expect_error_reply(s, &k, noise, sizeof(noise), CAIRN_EPROTO);
        expect_error_reply(s, &k, (const unsigned char *)"", 0, CAIRN_EPROTO);

        f = raw_frame(2, PROTO_POLL, 0, "{}", 2, 2, NULL, &len);
        expect_error_reply(s, &k, f, len, CAIRN_EVERSION);
        free(f);

        assert_int_equal(proto_encode(NULL, PROTO_POLL, body, &f, &len), 0);
        expect_error_reply(s, &k, f, len, CAIRN_EAUTH);
        free(f);

        assert_int_equal(proto_encode(&wrong, PROTO_POLL, body, &f, &len), 0);
        expect_error_reply(s, &k, f, len, CAIRN_EAUTH);
        free(f);

        f = body_frame(PROTO_POLL, LIT("{\"worker\":\"w\",\"worker\":\"w\"}"), &k, &len);
        expect_error_reply(s, &k, f, len, CAIRN_EPROTO);
        free(f);
        json_decref(body);
    }

    assert_int_equal(write(done[1], "x", 1), 1);
    close(done[1]);
    close(ready[0]);
    assert_int_equal(nng_close(s), 0);
    status = tl_wait(pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_roundtrip_unsigned),
        cmocka_unit_test(test_roundtrip_signed),
        cmocka_unit_test(test_wire_format),
        cmocka_unit_test(test_encode_rejects),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_body_errors),
        cmocka_unit_test(test_random_garbage),
        cmocka_unit_test(test_key_file),
        cmocka_unit_test(test_key_from_string),
        cmocka_unit_test(test_getters),
        cmocka_unit_test(test_nng_exchange),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
