#include "proto.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "err.h"

#define PROTO__MAGIC "CRN"
#define PROTO__MAGIC_LEN 3
#define PROTO__KEY_MIN 16
#define PROTO__KEY_MAX sizeof(((struct proto_key *)0)->key)
/* Bytes of a token file that are read: far more than a valid token needs. */
#define PROTO__FILE_MAX 4096

/* Header offsets. */
#define PROTO__OFF_VERSION 3
#define PROTO__OFF_TYPE 4
#define PROTO__OFF_FLAGS 6
#define PROTO__OFF_BODY_LEN 8

static const char *const proto__names[] = {
    [PROTO_HELLO] = "HELLO",   [PROTO_WELCOME] = "WELCOME", [PROTO_POLL] = "POLL",
    [PROTO_WORK] = "WORK",     [PROTO_STARTED] = "STARTED", [PROTO_LOG] = "LOG",
    [PROTO_RESULT] = "RESULT", [PROTO_ACK] = "ACK",         [PROTO_ERROR] = "ERROR",
    [PROTO_BATCH] = "BATCH",
};
#define PROTO__NTYPES (sizeof(proto__names) / sizeof(proto__names[0]))

static int proto__fail(int code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
proto__fail(int code, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    verrf(code, err, errlen, fmt, ap);
    va_end(ap);
    return code;
}

static bool
proto__type_known(int type)
{
    return type > 0 && (size_t)type < PROTO__NTYPES && proto__names[type] != NULL;
}

const char *
proto_type_name(int type)
{
    return proto__type_known(type) ? proto__names[type] : "UNKNOWN";
}

/* ---- tokens ---- */

static bool
proto__space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* The token inside buf[0, n): blank lines and spaces before it skipped, cut at
 * the first newline, trailing whitespace trimmed. */
static void
proto__token_span(const unsigned char *buf, size_t n, size_t *start, size_t *len)
{
    size_t a = 0, b;

    while (a < n && proto__space(buf[a]))
        a++;
    b = a;
    while (b < n && buf[b] != '\n')
        b++;
    while (b > a && proto__space(buf[b - 1]))
        b--;
    *start = a;
    *len = b - a;
}

int
proto_key_load(struct proto_key *k, const char *path, char *err, size_t errlen)
{
    unsigned char buf[PROTO__FILE_MAX];
    struct stat st;
    size_t n = 0, start, len;
    ssize_t r;
    int fd, rc = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return proto__fail(CAIRN_EIO, err, errlen, "cannot open token file %s: %s", path,
                           strerror(errno));
    if (fstat(fd, &st) != 0) {
        rc = proto__fail(CAIRN_EIO, err, errlen, "cannot stat token file %s: %s", path,
                         strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = proto__fail(CAIRN_EINVAL, err, errlen, "token file %s is not a regular file", path);
        goto out;
    }
    if (st.st_mode & 077) {
        rc = proto__fail(CAIRN_EINVAL, err, errlen,
                         "token file %s is accessible by group or others (mode %04o); "
                         "run: chmod 600 %s",
                         path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    while (n < sizeof(buf)) {
        r = read(fd, buf + n, sizeof(buf) - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = proto__fail(CAIRN_EIO, err, errlen, "cannot read token file %s: %s", path,
                             strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    proto__token_span(buf, n, &start, &len);
    if (len < PROTO__KEY_MIN) {
        rc = proto__fail(CAIRN_EINVAL, err, errlen,
                         "token in %s is %zu bytes; at least %d are needed "
                         "(make one with: openssl rand -hex 32)",
                         path, len, PROTO__KEY_MIN);
        goto out;
    }
    if (len > PROTO__KEY_MAX) {
        rc = proto__fail(CAIRN_EINVAL, err, errlen,
                         "token in %s is longer than %zu bytes "
                         "(make one with: openssl rand -hex 32)",
                         path, PROTO__KEY_MAX);
        goto out;
    }
    memset(k, 0, sizeof(*k));
    memcpy(k->key, buf + start, len);
    k->len = len;
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    close(fd);
    return rc;
}

void
proto_key_from_string(struct proto_key *k, const char *token)
{
    size_t start, len;

    memset(k, 0, sizeof(*k));
    if (!token)
        return;
    proto__token_span((const unsigned char *)token, strlen(token), &start, &len);
    if (len > PROTO__KEY_MAX)
        len = PROTO__KEY_MAX;
    memcpy(k->key, token + start, len);
    k->len = len;
}

/* ---- frames ---- */

static void
proto__put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void
proto__put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static unsigned
proto__get16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | (unsigned)p[1];
}

static uint32_t
proto__get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* HMAC-SHA256 of buf[0, n) into mac (PROTO_MAC_LEN bytes). */
static int
proto__mac(const struct proto_key *k, const unsigned char *buf, size_t n, unsigned char *mac)
{
    unsigned int maclen = 0;

    if (!HMAC(EVP_sha256(), k->key, (int)k->len, buf, n, mac, &maclen) || maclen != PROTO_MAC_LEN)
        return CAIRN_EAUTH;
    return 0;
}

int
proto_encode(const struct proto_key *k, int type, const void *json_body, unsigned char **out,
             size_t *outlen)
{
    const json_t *body = json_body;
    bool sign = k && k->len > 0;
    unsigned char *buf;
    size_t blen, total;
    char *text;

    if (!proto__type_known(type) || (body && !json_is_object(body)))
        return CAIRN_EINVAL;
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (body && !text)
        return CAIRN_EINVAL;
    blen = text ? strlen(text) : 2;
    if (blen > PROTO_MAX_BODY) {
        free(text);
        return CAIRN_ERANGE;
    }
    total = PROTO_HEADER_LEN + blen + (sign ? PROTO_MAC_LEN : 0);
    buf = malloc(total);
    if (!buf) {
        free(text);
        return CAIRN_ENOMEM;
    }
    memcpy(buf, PROTO__MAGIC, PROTO__MAGIC_LEN);
    buf[PROTO__OFF_VERSION] = PROTO_VERSION;
    proto__put16(buf + PROTO__OFF_TYPE, (unsigned)type);
    proto__put16(buf + PROTO__OFF_FLAGS, sign ? PROTO_F_MAC : 0);
    proto__put32(buf + PROTO__OFF_BODY_LEN, (uint32_t)blen);
    memcpy(buf + PROTO_HEADER_LEN, text ? text : "{}", blen);
    free(text);
    if (sign && proto__mac(k, buf, PROTO_HEADER_LEN + blen, buf + PROTO_HEADER_LEN + blen)) {
        free(buf);
        return CAIRN_EAUTH;
    }
    *out = buf;
    *outlen = total;
    return 0;
}

static const char *
proto__json_kind(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    default:
        return "an object";
    }
}

int
proto_decode(const struct proto_key *k, const unsigned char *buf, size_t len, int *type,
             void **json_body, char *err, size_t errlen)
{
    bool have_key = k && k->len > 0, signed_frame;
    unsigned char mac[PROTO_MAC_LEN];
    unsigned version, t, flags;
    uint32_t blen;
    size_t want;
    json_error_t jerr;
    json_t *body;

    if (len < PROTO_HEADER_LEN)
        return proto__fail(CAIRN_EPROTO, err, errlen,
                           "frame too short: %zu bytes, the header alone is %d", len,
                           PROTO_HEADER_LEN);
    if (memcmp(buf, PROTO__MAGIC, PROTO__MAGIC_LEN) != 0)
        return proto__fail(CAIRN_EPROTO, err, errlen, "bad magic: not a Cairn frame");
    version = buf[PROTO__OFF_VERSION];
    if (version != PROTO_VERSION)
        return proto__fail(CAIRN_EVERSION, err, errlen,
                           "peer speaks protocol version %u, this build speaks version %d; "
                           "run the same Cairn release on scheduler and workers",
                           version, PROTO_VERSION);
    t = proto__get16(buf + PROTO__OFF_TYPE);
    flags = proto__get16(buf + PROTO__OFF_FLAGS);
    if (flags & ~(unsigned)PROTO_F_MAC)
        return proto__fail(CAIRN_EPROTO, err, errlen, "unknown flags 0x%04x in frame header",
                           flags & ~(unsigned)PROTO_F_MAC);
    blen = proto__get32(buf + PROTO__OFF_BODY_LEN);
    if (blen > PROTO_MAX_BODY)
        return proto__fail(CAIRN_EPROTO, err, errlen,
                           "body of %" PRIu32 " bytes exceeds the limit of %u bytes", blen,
                           PROTO_MAX_BODY);
    signed_frame = flags & PROTO_F_MAC;
    want = PROTO_HEADER_LEN + (size_t)blen + (signed_frame ? PROTO_MAC_LEN : 0);
    if (len != want)
        return proto__fail(CAIRN_EPROTO, err, errlen,
                           "frame is %zu bytes but its header says %zu (body %" PRIu32 " bytes%s)",
                           len, want, blen, signed_frame ? " + MAC" : "");
    if (have_key && !signed_frame)
        return proto__fail(CAIRN_EAUTH, err, errlen,
                           "message is not signed; is the worker's --token-file set?");
    if (!have_key && signed_frame)
        return proto__fail(CAIRN_EAUTH, err, errlen,
                           "message is signed but no token is configured here; "
                           "set --token-file to the same token on both sides");
    if (have_key) {
        if (proto__mac(k, buf, PROTO_HEADER_LEN + blen, mac) != 0)
            return proto__fail(CAIRN_EAUTH, err, errlen, "cannot compute HMAC-SHA256");
        if (CRYPTO_memcmp(mac, buf + PROTO_HEADER_LEN + blen, PROTO_MAC_LEN) != 0)
            return proto__fail(CAIRN_EAUTH, err, errlen, "bad signature: the token does not match");
    }
    if (!proto__type_known((int)t))
        return proto__fail(CAIRN_EPROTO, err, errlen, "unknown message type %u", t);
    /* JSON_DECODE_ANY only so that a scalar body gets the clearer "must be a
     * JSON object" message below; jansson bounds the nesting depth. */
    body = json_loadb((const char *)buf + PROTO_HEADER_LEN, blen,
                      JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!body)
        return proto__fail(CAIRN_EPROTO, err, errlen, "%s body is not valid JSON: %s (byte %d)",
                           proto__names[t], jerr.text, jerr.position);
    if (!json_is_object(body)) {
        proto__fail(CAIRN_EPROTO, err, errlen, "%s body must be a JSON object, not %s",
                    proto__names[t], proto__json_kind(body));
        json_decref(body);
        return CAIRN_EPROTO;
    }
    *type = (int)t;
    *json_body = body;
    return 0;
}

/* ---- typed field access ---- */

/* The field's value, or NULL if absent; CAIRN_EPROTO if obj is no object. */
static int
proto__field(const void *obj, const char *field, json_t **v, char *err, size_t errlen)
{
    const json_t *o = obj;

    if (!json_is_object(o))
        return proto__fail(CAIRN_EPROTO, err, errlen, "expected a JSON object holding field '%s'",
                           field);
    *v = json_object_get(o, field);
    return 0;
}

static int
proto__missing(const char *field, char *err, size_t errlen)
{
    return proto__fail(CAIRN_EPROTO, err, errlen, "missing field '%s'", field);
}

int
proto_value_str(const void *value, const char *name, const char **out, char *err, size_t errlen)
{
    const json_t *v = value;
    const char *s;

    if (!v)
        return proto__missing(name, err, errlen);
    if (!json_is_string(v))
        return proto__fail(CAIRN_EPROTO, err, errlen, "field '%s' must be a string", name);
    s = json_string_value(v);
    if (strlen(s) != json_string_length(v))
        return proto__fail(CAIRN_EPROTO, err, errlen, "field '%s' must not contain NUL bytes",
                           name);
    *out = s;
    return 0;
}

int
proto_value_int(const void *value, const char *name, int64_t lo, int64_t hi, int64_t *out,
                char *err, size_t errlen)
{
    const json_t *v = value;
    json_int_t i;

    if (!v)
        return proto__missing(name, err, errlen);
    if (!json_is_integer(v))
        return proto__fail(CAIRN_EPROTO, err, errlen, "field '%s' must be an integer", name);
    i = json_integer_value(v);
    if (i < lo || i > hi)
        return proto__fail(CAIRN_EPROTO, err, errlen,
                           "field '%s' is %lld, must be between %lld and %lld", name, (long long)i,
                           (long long)lo, (long long)hi);
    *out = (int64_t)i;
    return 0;
}

int
proto_value_number(const void *value, const char *name, double lo, double hi, double *out,
                   char *err, size_t errlen)
{
    const json_t *v = value;
    double d;

    if (!v)
        return proto__missing(name, err, errlen);
    if (!json_is_number(v))
        return proto__fail(CAIRN_EPROTO, err, errlen, "field '%s' must be a number", name);
    d = json_number_value(v);
    if (!(d >= lo && d <= hi))
        return proto__fail(CAIRN_EPROTO, err, errlen, "field '%s' is %g, must be between %g and %g",
                           name, d, lo, hi);
    *out = d;
    return 0;
}

int
proto_value_bool(const void *value, const char *name, int *out, char *err, size_t errlen)
{
    const json_t *v = value;

    if (!v)
        return proto__missing(name, err, errlen);
    if (!json_is_boolean(v))
        return proto__fail(CAIRN_EPROTO, err, errlen, "field '%s' must be true or false", name);
    *out = json_is_true(v);
    return 0;
}

int
proto_get_str(const void *obj, const char *field, const char **out, char *err, size_t errlen)
{
    json_t *v = NULL;
    int rc = proto__field(obj, field, &v, err, errlen);

    if (rc)
        return rc;
    if (!v)
        return proto__missing(field, err, errlen);
    return proto_value_str(v, field, out, err, errlen);
}

int
proto_opt_str(const void *obj, const char *field, const char **out, char *err, size_t errlen)
{
    json_t *v = NULL;
    int rc = proto__field(obj, field, &v, err, errlen);

    if (rc || !v || json_is_null(v))
        return rc;
    return proto_value_str(v, field, out, err, errlen);
}

int
proto_get_int(const void *obj, const char *field, int64_t lo, int64_t hi, int64_t *out, char *err,
              size_t errlen)
{
    json_t *v = NULL;
    int rc = proto__field(obj, field, &v, err, errlen);

    if (rc)
        return rc;
    if (!v)
        return proto__missing(field, err, errlen);
    return proto_value_int(v, field, lo, hi, out, err, errlen);
}

int
proto_opt_int(const void *obj, const char *field, int64_t lo, int64_t hi, int64_t *out, char *err,
              size_t errlen)
{
    json_t *v = NULL;
    int rc = proto__field(obj, field, &v, err, errlen);

    if (rc || !v || json_is_null(v))
        return rc;
    return proto_value_int(v, field, lo, hi, out, err, errlen);
}

int
proto_get_bool(const void *obj, const char *field, int *out, char *err, size_t errlen)
{
    json_t *v = NULL;
    int rc = proto__field(obj, field, &v, err, errlen);

    if (rc)
        return rc;
    if (!v)
        return proto__missing(field, err, errlen);
    return proto_value_bool(v, field, out, err, errlen);
}

int
proto_opt_bool(const void *obj, const char *field, int *out, char *err, size_t errlen)
{
    json_t *v = NULL;
    int rc = proto__field(obj, field, &v, err, errlen);

    if (rc || !v || json_is_null(v))
        return rc;
    return proto_value_bool(v, field, out, err, errlen);
}

int
proto_get_array(const void *obj, const char *field, void **out, char *err, size_t errlen)
{
    json_t *v = NULL;
    int rc = proto__field(obj, field, &v, err, errlen);

    if (rc)
        return rc;
    if (!v)
        return proto__missing(field, err, errlen);
    if (!json_is_array(v))
        return proto__fail(CAIRN_EPROTO, err, errlen, "field '%s' must be an array", field);
    *out = v;
    return 0;
}

int
proto_get_object(const void *obj, const char *field, void **out, char *err, size_t errlen)
{
    json_t *v = NULL;
    int rc = proto__field(obj, field, &v, err, errlen);

    if (rc)
        return rc;
    if (!v)
        return proto__missing(field, err, errlen);
    if (!json_is_object(v))
        return proto__fail(CAIRN_EPROTO, err, errlen, "field '%s' must be an object", field);
    *out = v;
    return 0;
}
