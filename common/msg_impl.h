/* msg_impl.h - the inside of the msg module (common/msg.c and
 * common/msg_table.c); nothing outside them includes it.
 *
 * A message is one table of its members, in wire order: struct msg__field
 * gives each member's JSON key, kind, flags, range and place in the struct.
 * msg_table.c walks a table to decode, encode or clear; msg.c holds the
 * tables and the hooks of the members that are more than a scalar or a
 * list of scalars.
 */
#ifndef CAIRN_MSG_IMPL_H
#define CAIRN_MSG_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

/* Longest member path kept in an error ("items[3].body.outputs[1].sha256"
 * is 35); a longer one (a label key an operator typed) is cut. */
#define MSG__PATH_MAX 256

/* "base.key" ("key" when base is NULL or ""), and "base[i]", in buf. */
const char *msg__member(char *buf, size_t n, const char *base, const char *key);
const char *msg__index(char *buf, size_t n, const char *base, size_t i);
/* 0 if j is an object; else CAIRN_EPROTO naming path (or the body). */
int msg__obj_check(const json_t *j, const char *path, char *err, size_t errlen);

/* Any member that could not be made (NULL string, invalid UTF-8, a real
 * that is not finite, out of memory) marks it bad: the encoder returns NULL. */
struct msg__enc {
    bool bad;
};

/* Set or append v (a new reference, taken; NULL marks e bad). */
void msg__put(struct msg__enc *e, json_t *obj, const char *key, json_t *v);
void msg__push(struct msg__enc *e, json_t *arr, json_t *v);
/* json_string(s), marking e bad for NULL or invalid UTF-8. */
json_t *msg__jstr(struct msg__enc *e, const char *s);
/* obj, or NULL (obj released) if e is bad. */
json_t *msg__done(struct msg__enc *e, json_t *obj);

enum msg__kind {
    MSG__STR,    /* char * */
    MSG__INT,    /* int64_t */
    MSG__INTC,   /* int */
    MSG__BOOL,   /* bool */
    MSG__NUM,    /* double, >= 0 */
    MSG__STRV,   /* char ** (NULL-terminated) + size_t count */
    MSG__IDS,    /* int64_t * (lease ids, >= 1) + size_t count */
    MSG__INTS,   /* int64_t * (each in lo..hi) + size_t count */
    MSG__CUSTOM, /* a hook */
};

enum {
    MSG__REQ = 1 << 0,      /* required (else: absent or null = the default) */
    MSG__NONEMPTY = 1 << 1, /* a string or array that must not be empty */
    MSG__KV = 1 << 2,       /* every string of the array is K=V */
    MSG__EMPTY = 1 << 3,    /* string: absent decodes as "", NULL encodes as "" */
    MSG__IF_SET = 1 << 4,   /* encoded only when non-NULL (string), true (bool), not 0 (integer) */
    MSG__OR_NULL = 1 << 5,  /* string: NULL encodes as JSON null */
    MSG__DEF_ZERO = 1 << 6, /* integer: 0 encodes as the default */
    MSG__VERSION = 1 << 7,  /* integer: 0 encodes as MSG_VERSION */
    MSG__NO_NUL = 1 << 8,   /* string: a NUL in data_len bytes is not encodable (LOG) */
    MSG__WITH_LEN = 1 << 9, /* string: its length is at noff (size_t) */
};

struct msg__field;

/* A member with its own shape. decode gets the member's value (NULL if
 * absent), its path and the struct; encode returns the member's JSON (NULL
 * to leave it out, marking e bad if that is an error); clear frees it. */
struct msg__hook {
    int (*decode)(const json_t *v, const char *name, void *base, char *err, size_t errlen);
    json_t *(*encode)(struct msg__enc *e, const void *base);
    void (*clear)(void *base);
};

struct msg__field {
    const char *key;
    enum msg__kind kind;
    unsigned flags;
    int64_t lo, hi; /* integers: the range */
    int64_t def;    /* integers: the value when absent */
    size_t off;     /* the member in the struct */
    size_t noff;    /* arrays, WITH_LEN strings: the count */
    const struct msg__hook *hook;
};

#define MSG__F(type, member) offsetof(type, member)
#define MSG__N(t) (sizeof(t) / sizeof((t)[0]))

void msg__strv_free(char **v, size_t n);
/* Decode the members of j (at path; NULL at the top) into base, which
 * must be zeroed; on failure what was decoded is freed and base zeroed. */
int msg__decode_fields(const struct msg__field *t, size_t n, const json_t *j, const char *path,
                       void *base, size_t size, char *err, size_t errlen);
/* A new object with the members of base, or NULL if one cannot be made. */
json_t *msg__encode_fields(const struct msg__field *t, size_t n, const void *base);
/* Free what the members of base own (base itself is not zeroed). */
void msg__clear_fields(const struct msg__field *t, size_t n, void *base);

/* The members of one struct type: decode, encode, clear. */
#define MSG__CODEC(name, type, table)                                                              \
    static int name##_decode(const json_t *j, const char *path, type *out, char *err,              \
                             size_t errlen)                                                        \
    {                                                                                              \
        type x;                                                                                    \
        int rc;                                                                                    \
        memset(&x, 0, sizeof(x));                                                                  \
        memset(out, 0, sizeof(*out));                                                              \
        rc = msg__decode_fields(table, MSG__N(table), j, path, &x, sizeof(x), err, errlen);        \
        if (rc == 0)                                                                               \
            *out = x;                                                                              \
        return rc;                                                                                 \
    }                                                                                              \
    static json_t *name##_encode(const type *x)                                                    \
    {                                                                                              \
        return msg__encode_fields(table, MSG__N(table), x);                                        \
    }                                                                                              \
    static void name##_clear(type *x)                                                              \
    {                                                                                              \
        if (!x)                                                                                    \
            return;                                                                                \
        msg__clear_fields(table, MSG__N(table), x);                                                \
        memset(x, 0, sizeof(*x));                                                                  \
    }

#endif
