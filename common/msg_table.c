/* msg_table.c - the field tables of the msg module (prefix: msg__).
 *
 * Owns the three walks over a message's table of members (msg_impl.h):
 * decode (strict: every required member present and well-typed, each
 * checked with proto.h's value checkers, errors naming the member's path),
 * encode (members in table order, the JSON the daemons always sent), and
 * clear. No state: any thread may call any function at any time.
 */
#include "msg.h"
#include "msg_impl.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "util.h"

/* ---- paths ---- */

/* "base.key", or "key" at the top level. */
const char *
msg__member(char *buf, size_t n, const char *base, const char *key)
{
    if (!base || !*base)
        return key;
    if (snprintf(buf, n, "%s.%s", base, key) >= (int)n)
        buf[n - 1] = '\0'; /* cut: still names the place */
    return buf;
}

/* "base[i]". */
const char *
msg__index(char *buf, size_t n, const char *base, size_t i)
{
    if (snprintf(buf, n, "%s[%zu]", base ? base : "", i) >= (int)n)
        buf[n - 1] = '\0';
    return buf;
}

int
msg__obj_check(const json_t *j, const char *path, char *err, size_t errlen)
{
    if (json_is_object(j))
        return 0;
    if (path && *path)
        return errf(CAIRN_EPROTO, err, errlen, "field '%s' must be an object", path);
    return errf(CAIRN_EPROTO, err, errlen, "message body must be a JSON object");
}

/* ---- the encoder's builder ---- */

void
msg__put(struct msg__enc *e, json_t *obj, const char *key, json_t *v)
{
    if (!obj || !key || !v || json_object_set_new(obj, key, v) != 0)
        e->bad = true;
}

void
msg__push(struct msg__enc *e, json_t *arr, json_t *v)
{
    if (!arr || !v || json_array_append_new(arr, v) != 0)
        e->bad = true;
}

json_t *
msg__jstr(struct msg__enc *e, const char *s)
{
    json_t *v = s ? json_string(s) : NULL;

    if (!v)
        e->bad = true;
    return v;
}

json_t *
msg__done(struct msg__enc *e, json_t *obj)
{
    if (e->bad || !obj) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* ---- field tables ---- */

static void *
msg__at(void *base, size_t off)
{
    return (char *)base + off;
}

static const void *
msg__cat(const void *base, size_t off)
{
    return (const char *)base + off;
}

void
msg__strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

void
msg__clear_fields(const struct msg__field *t, size_t n, void *base)
{
    for (size_t i = 0; i < n; i++) {
        const struct msg__field *f = &t[i];

        switch (f->kind) {
        case MSG__STR:
        case MSG__IDS:
        case MSG__INTS:
            free(*(void **)msg__at(base, f->off));
            break;
        case MSG__STRV:
            msg__strv_free(*(char ***)msg__at(base, f->off), *(size_t *)msg__at(base, f->noff));
            break;
        case MSG__CUSTOM:
            f->hook->clear(base);
            break;
        default:
            break;
        }
    }
}

/* An array of strings, of lease ids or of integers in a range. */
static int
msg__decode_list(const struct msg__field *f, const json_t *v, const char *name, void *base,
                 char *err, size_t errlen)
{
    char ebuf[MSG__PATH_MAX];
    size_t len, i;
    char **sv = NULL;
    int64_t *iv = NULL;
    int rc = 0;

    if (!json_is_array(v))
        return errf(CAIRN_EPROTO, err, errlen, "field '%s' must be an array", name);
    len = json_array_size(v);
    if ((f->flags & MSG__NONEMPTY) && len == 0)
        return errf(CAIRN_EPROTO, err, errlen, "field '%s' must not be empty", name);
    if (f->kind == MSG__STRV)
        sv = xcalloc(len + 1, sizeof(*sv));
    else
        iv = xcalloc(len + 1, sizeof(*iv));
    for (i = 0; i < len && rc == 0; i++) {
        const char *ename = msg__index(ebuf, sizeof(ebuf), name, i);
        const char *s = NULL;

        if (iv) {
            rc = proto_value_int(json_array_get(v, i), ename, f->kind == MSG__IDS ? 1 : f->lo,
                                 f->kind == MSG__IDS ? INT64_MAX : f->hi, &iv[i], err, errlen);
            continue;
        }
        rc = proto_value_str(json_array_get(v, i), ename, &s, err, errlen);
        if (rc == 0 && (f->flags & MSG__KV) && (!strchr(s, '=') || s[0] == '='))
            rc = errf(CAIRN_EPROTO, err, errlen, "field '%s' must be K=V, not '%s'", ename, s);
        if (rc == 0)
            sv[i] = xstrdup(s);
    }
    if (rc) {
        msg__strv_free(sv, len);
        free(iv);
        return rc;
    }
    if (sv)
        *(char ***)msg__at(base, f->off) = sv;
    else
        *(int64_t **)msg__at(base, f->off) = iv;
    *(size_t *)msg__at(base, f->noff) = len;
    return 0;
}

static int
msg__decode_field(const struct msg__field *f, const json_t *v, const char *name, void *base,
                  char *err, size_t errlen)
{
    const char *s = NULL;
    int64_t i = 0;
    int b = 0, rc;

    switch (f->kind) {
    case MSG__STR:
        if ((rc = proto_value_str(v, name, &s, err, errlen)) != 0)
            return rc;
        if ((f->flags & MSG__NONEMPTY) && !*s)
            return errf(CAIRN_EPROTO, err, errlen, "field '%s' must not be empty", name);
        *(char **)msg__at(base, f->off) = xstrdup(s);
        if (f->flags & MSG__WITH_LEN)
            *(size_t *)msg__at(base, f->noff) = strlen(s);
        return 0;
    case MSG__INT:
    case MSG__INTC:
        if ((rc = proto_value_int(v, name, f->lo, f->hi, &i, err, errlen)) != 0)
            return rc;
        if (f->kind == MSG__INT)
            *(int64_t *)msg__at(base, f->off) = i;
        else
            *(int *)msg__at(base, f->off) = (int)i;
        return 0;
    case MSG__BOOL:
        if ((rc = proto_value_bool(v, name, &b, err, errlen)) != 0)
            return rc;
        *(bool *)msg__at(base, f->off) = b != 0;
        return 0;
    case MSG__NUM:
        return proto_value_number(v, name, 0, DBL_MAX, (double *)msg__at(base, f->off), err,
                                  errlen);
    case MSG__STRV:
    case MSG__IDS:
    case MSG__INTS:
        if (!v)
            return errf(CAIRN_EPROTO, err, errlen, "missing field '%s'", name);
        return msg__decode_list(f, v, name, base, err, errlen);
    default:
        return f->hook->decode(v, name, base, err, errlen);
    }
}

/* Decode the members of j (at path) into base, which must be zeroed. On
 * failure what was decoded is freed and base is zeroed again. */
int
msg__decode_fields(const struct msg__field *t, size_t n, const json_t *j, const char *path,
                   void *base, size_t size, char *err, size_t errlen)
{
    char buf[MSG__PATH_MAX];
    int rc;

    if ((rc = msg__obj_check(j, path, err, errlen)) != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        const struct msg__field *f = &t[i];
        json_t *v = json_object_get(j, f->key);
        bool present = v && !(json_is_null(v) && !(f->flags & MSG__REQ));

        if (f->kind == MSG__INT && f->def)
            *(int64_t *)msg__at(base, f->off) = f->def;
        if (f->kind == MSG__INTC && f->def)
            *(int *)msg__at(base, f->off) = (int)f->def;
        if (!present && !(f->flags & MSG__REQ) && f->kind != MSG__CUSTOM) {
            if (f->kind == MSG__STR && (f->flags & MSG__EMPTY))
                *(char **)msg__at(base, f->off) = xstrdup("");
            continue;
        }
        rc = msg__decode_field(f, present ? v : NULL, msg__member(buf, sizeof(buf), path, f->key),
                               base, err, errlen);
        if (rc) {
            msg__clear_fields(t, n, base);
            memset(base, 0, size);
            return rc;
        }
    }
    return 0;
}

static json_t *
msg__encode_field(struct msg__enc *e, const struct msg__field *f, const void *base)
{
    const char *s;
    int64_t i;
    size_t n;

    switch (f->kind) {
    case MSG__STR:
        s = *(char *const *)msg__cat(base, f->off);
        if (!s && (f->flags & MSG__EMPTY))
            s = "";
        if (!s && (f->flags & MSG__OR_NULL))
            return json_null();
        if (s && (f->flags & MSG__WITH_LEN)) {
            n = *(const size_t *)msg__cat(base, f->noff);
            if ((f->flags & MSG__NO_NUL) && memchr(s, '\0', n)) {
                e->bad = true; /* no peer would take it (proto.h) */
                return NULL;
            }
            return json_stringn(s, n);
        }
        if (!s && (f->flags & MSG__WITH_LEN) && *(const size_t *)msg__cat(base, f->noff) == 0)
            return json_string("");
        return msg__jstr(e, s);
    case MSG__INT:
    case MSG__INTC:
        i = f->kind == MSG__INT ? *(const int64_t *)msg__cat(base, f->off)
                                : *(const int *)msg__cat(base, f->off);
        if (i == 0 && (f->flags & MSG__DEF_ZERO))
            i = f->def;
        if (i == 0 && (f->flags & MSG__VERSION))
            i = MSG_VERSION;
        return json_integer((json_int_t)i);
    case MSG__BOOL:
        return json_boolean(*(const bool *)msg__cat(base, f->off));
    case MSG__NUM:
        return json_real(*(const double *)msg__cat(base, f->off));
    case MSG__STRV:
    case MSG__IDS:
    case MSG__INTS: {
        json_t *arr = json_array();

        n = *(const size_t *)msg__cat(base, f->noff);
        for (size_t k = 0; k < n; k++) {
            if (f->kind == MSG__STRV)
                msg__push(e, arr, msg__jstr(e, (*(char **const *)msg__cat(base, f->off))[k]));
            else
                msg__push(e, arr,
                          json_integer((json_int_t)(*(int64_t *const *)msg__cat(base, f->off))[k]));
        }
        return arr;
    }
    default:
        return f->hook->encode(e, base);
    }
}

json_t *
msg__encode_fields(const struct msg__field *t, size_t n, const void *base)
{
    struct msg__enc e = {false};
    json_t *o = json_object();

    for (size_t i = 0; i < n; i++) {
        const struct msg__field *f = &t[i];

        if ((f->flags & MSG__IF_SET) &&
            (f->kind == MSG__BOOL   ? !*(const bool *)msg__cat(base, f->off)
             : f->kind == MSG__INT  ? !*(const int64_t *)msg__cat(base, f->off)
             : f->kind == MSG__INTC ? !*(const int *)msg__cat(base, f->off)
                                    : !*(char *const *)msg__cat(base, f->off)))
            continue;
        if (f->kind == MSG__CUSTOM) {
            json_t *v = f->hook->encode(&e, base);

            if (v)
                msg__put(&e, o, f->key, v);
            continue;
        }
        msg__put(&e, o, f->key, msg__encode_field(&e, f, base));
    }
    return msg__done(&e, o);
}
