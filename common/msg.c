/* msg.c - the typed messages of the worker protocol (prefix: msg_).
 *
 * Owns the mapping between each message body of proto.h and its struct in
 * msg.h, in both directions, and nothing else: no I/O, no state, no
 * threads (every function may be called from any thread at once).
 *
 * Each message is one table of its members (struct msg__field: JSON key,
 * kind, whether it is required, its range, where it lives in the struct),
 * in wire order (msg_impl.h). Three generic walks read a table: decode,
 * encode, clear (msg_table.c). Members that are more than a scalar or a list of scalars (labels, a
 * lease's inputs and mounts, a result's outputs and metrics, WORK's leases,
 * BATCH's items, ACK's results) have a hook of their own.
 *
 * Decoding is strict and total. A decoder builds into a local struct and
 * copies it to the caller only when every required member is present and
 * well-typed, so a refused message leaves the caller a zeroed struct, never
 * a half-built one. Values are checked with proto.h's value checkers
 * (proto_value_*), which keep the wording of proto_get_*; this module adds
 * the member's path, so an error names the exact place ("field
 * 'leases[2].memory' must be an integer"). Unknown members are ignored: a
 * newer peer may add optional ones.
 *
 * Encoding produces, member for member and in the same order, the JSON the
 * daemons built by hand before this module existed (scheduler/engine.c's
 * lease and replies; the worker's HELLO, POLL, STARTED, LOG, RESULT and
 * BATCH), plus msg_version on HELLO and WELCOME, which older peers ignore.
 * An encoder returns NULL only for a struct that is not well-formed (msg.h).
 */
#include "msg.h"
#include "msg_impl.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "util.h"

/* ---- checks ---- */

bool
msg_sha256_valid(const char *s)
{
    if (!s)
        return false;
    for (size_t i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return s[64] == '\0';
}

/* jansson's own rule (utf.c): no overlong forms, no surrogates, nothing
 * above U+10FFFF; NUL is a character like any other. */
bool
msg_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        unsigned c = p[i];
        size_t n;
        uint32_t cp;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i < n)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || (n == 3 && cp < 0x800) ||
            (n == 4 && cp < 0x10000))
            return false;
        i += n;
    }
    return true;
}

/* ---- HELLO, WELCOME, POLL ---- */

static int
msg__labels_decode(const json_t *v, const char *name, void *base, char *err, size_t errlen)
{
    struct msg_hello *h = base;
    const char *k;
    json_t *x;

    if (!v)
        return 0;
    if (!json_is_object(v))
        return errf(CAIRN_EPROTO, err, errlen, "field '%s' must be an object", name);
    h->labels = xcalloc(json_object_size(v) + 1, sizeof(*h->labels));
    json_object_foreach((json_t *)v, k, x)
    {
        char buf[MSG__PATH_MAX];
        const char *s = NULL;
        int rc = proto_value_str(x, msg__member(buf, sizeof(buf), name, k), &s, err, errlen);

        if (rc)
            return rc;
        h->labels[h->nlabels].key = xstrdup(k);
        h->labels[h->nlabels].value = xstrdup(s);
        h->nlabels++;
    }
    return 0;
}

static json_t *
msg__labels_encode(struct msg__enc *e, const void *base)
{
    const struct msg_hello *h = base;
    json_t *o = json_object();

    for (size_t i = 0; i < h->nlabels; i++)
        msg__put(e, o, h->labels[i].key, msg__jstr(e, h->labels[i].value));
    return o;
}

static void
msg__labels_clear(void *base)
{
    struct msg_hello *h = base;

    for (size_t i = 0; i < h->nlabels; i++) {
        free(h->labels[i].key);
        free(h->labels[i].value);
    }
    free(h->labels);
}

static const struct msg__hook msg__labels = {msg__labels_decode, msg__labels_encode,
                                             msg__labels_clear};

#define G(m) MSG__F(struct msg_gpu, m)
static const struct msg__field msg__gpu_fields[] = {
    {"index", MSG__INT, MSG__REQ, 0, MSG_GPU_INDEX_MAX, 0, G(index), 0, NULL},
    {"model", MSG__STR, MSG__EMPTY, 0, 0, 0, G(model), 0, NULL},
};
#undef G
MSG__CODEC(msg__gpu, struct msg_gpu, msg__gpu_fields)

/* HELLO's gpus: each {index, model}, the indices distinct. */
static int
msg__gpus_decode(const json_t *v, const char *name, void *base, char *err, size_t errlen)
{
    char ebuf[MSG__PATH_MAX], fbuf[MSG__PATH_MAX];
    struct msg_hello *h = base;
    int rc;

    if (!v)
        return 0;
    if (!json_is_array(v))
        return errf(CAIRN_EPROTO, err, errlen, "field '%s' must be an array", name);
    if (json_array_size(v) > MSG_GPUS_MAX)
        return errf(CAIRN_EPROTO, err, errlen, "field '%s' must have at most %d elements", name,
                    MSG_GPUS_MAX);
    h->gpus = xcalloc(json_array_size(v) + 1, sizeof(*h->gpus));
    for (size_t i = 0; i < json_array_size(v); i++) {
        const char *ip = msg__index(ebuf, sizeof(ebuf), name, i);

        if ((rc = msg__gpu_decode(json_array_get(v, i), ip, &h->gpus[i], err, errlen)) != 0)
            return rc;
        h->ngpus = i + 1;
        for (size_t k = 0; k < i; k++)
            if (h->gpus[k].index == h->gpus[i].index)
                return errf(CAIRN_EPROTO, err, errlen, "field '%s' repeats GPU %lld",
                            msg__member(fbuf, sizeof(fbuf), ip, "index"),
                            (long long)h->gpus[i].index);
    }
    return 0;
}

static json_t *
msg__gpus_encode(struct msg__enc *e, const void *base)
{
    const struct msg_hello *h = base;
    json_t *arr;

    if (!h->ngpus)
        return NULL; /* absent: what a worker without GPUs always sent */
    arr = json_array();
    for (size_t i = 0; i < h->ngpus; i++) {
        json_t *g = msg__gpu_encode(&h->gpus[i]);

        if (!g)
            e->bad = true;
        msg__push(e, arr, g);
    }
    return arr;
}

static void
msg__gpus_clear(void *base)
{
    struct msg_hello *h = base;

    for (size_t i = 0; i < h->ngpus; i++)
        msg__gpu_clear(&h->gpus[i]);
    free(h->gpus);
}

static const struct msg__hook msg__gpus = {msg__gpus_decode, msg__gpus_encode, msg__gpus_clear};

#define H(m) MSG__F(struct msg_hello, m)
static const struct msg__field msg__hello_fields[] = {
    {"worker", MSG__STR, MSG__REQ | MSG__NONEMPTY, 0, 0, 0, H(worker), 0, NULL},
    {"slots", MSG__INT, MSG__REQ, 1, 100000, 0, H(slots), 0, NULL},
    {"labels", MSG__CUSTOM, 0, 0, 0, 0, 0, 0, &msg__labels},
    {"pid", MSG__INT, 0, 0, INT64_MAX, 0, H(pid), 0, NULL},
    {"host", MSG__STR, MSG__EMPTY, 0, 0, 0, H(host), 0, NULL},
    {"msg_version", MSG__INT, MSG__VERSION, 1, INT64_MAX, 1, H(version), 0, NULL},
    {"prefetch", MSG__INT, MSG__IF_SET, 0, 1000, 0, H(prefetch), 0, NULL},
    {"gpus", MSG__CUSTOM, 0, 0, 0, 0, 0, 0, &msg__gpus},
    {"cert", MSG__STR, MSG__IF_SET, 0, 0, 0, H(cert), 0, NULL},
    {"cert_sig", MSG__STR, MSG__IF_SET, 0, 0, 0, H(cert_sig), 0, NULL},
    {"cert_ts", MSG__INT, MSG__IF_SET, 0, INT64_MAX, 0, H(cert_ts), 0, NULL},
    {"nonce", MSG__STR, MSG__IF_SET, 0, 0, 0, H(nonce), 0, NULL},
    {"direct_stores", MSG__STRV, MSG__IF_SET, 0, 0, 0, H(direct_stores), H(ndirect_stores), NULL},
};
#undef H
MSG__CODEC(msg__hello, struct msg_hello, msg__hello_fields)

#define W(m) MSG__F(struct msg_welcome, m)
static const struct msg__field msg__welcome_fields[] = {
    {"lease_ttl_ms", MSG__INT, MSG__REQ, 1, INT64_MAX, 0, W(lease_ttl_ms), 0, NULL},
    {"heartbeat_ms", MSG__INT, MSG__REQ, 1, INT64_MAX, 0, W(heartbeat_ms), 0, NULL},
    {"artifacts", MSG__STR, MSG__IF_SET, 0, 0, 0, W(artifacts), 0, NULL},
    {"store_id", MSG__STR, MSG__IF_SET, 0, 0, 0, W(store_id), 0, NULL},
    {"api_port", MSG__INT, MSG__IF_SET, 0, 65535, 0, W(api_port), 0, NULL},
    {"msg_version", MSG__INT, MSG__VERSION, 1, INT64_MAX, 1, W(version), 0, NULL},
};
#undef W
MSG__CODEC(msg__welcome, struct msg_welcome, msg__welcome_fields)

#define P(m) MSG__F(struct msg_poll, m)
static const struct msg__field msg__poll_fields[] = {
    {"worker", MSG__STR, MSG__REQ, 0, 0, 0, P(worker), 0, NULL},
    {"free", MSG__INT, MSG__REQ, 0, 100000, 0, P(free), 0, NULL},
    {"leases", MSG__IDS, 0, 0, 0, 0, P(leases), P(nleases), NULL},
    {"wait_ms", MSG__INT, 0, 0, 600000, 0, P(wait_ms), 0, NULL},
    {"images", MSG__STRV, MSG__IF_SET, 0, 0, 0, P(images), P(nimages), NULL},
    {"image_sizes", MSG__INTS, MSG__IF_SET, 0, INT64_MAX, 0, P(image_sizes), P(nimage_sizes),
     NULL},
    {"seq", MSG__INT, MSG__IF_SET, 0, INT64_MAX, 0, P(seq), 0, NULL},
    {"gave_up", MSG__INTS, MSG__IF_SET, 1, INT64_MAX, 0, P(gave_up), P(ngave_up), NULL},
};
#undef P
MSG__CODEC(msg__poll, struct msg_poll, msg__poll_fields)

/* ---- leases and WORK ---- */

static bool
msg__component_ok(const char *s)
{
    return s[0] && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

#define I(m) MSG__F(struct msg_input, m)
static const struct msg__field msg__input_fields[] = {
    {"name", MSG__STR, MSG__REQ, 0, 0, 0, I(name), 0, NULL},
    {"sha256", MSG__STR, MSG__REQ, 0, 0, 0, I(sha256), 0, NULL},
    {"uri", MSG__STR, MSG__REQ, 0, 0, 0, I(uri), 0, NULL},
    {"manifest_file", MSG__STR, MSG__IF_SET, 0, 0, 0, I(manifest_file), 0, NULL},
};
#undef I
MSG__CODEC(msg__input, struct msg_input, msg__input_fields)

static int
msg__inputs_decode(const json_t *v, const char *name, void *base, char *err, size_t errlen)
{
    char ebuf[MSG__PATH_MAX], fbuf[MSG__PATH_MAX];
    struct msg_lease *l = base;
    int rc;

    if (!v)
        return errf(CAIRN_EPROTO, err, errlen, "missing field '%s'", name);
    if (!json_is_array(v))
        return errf(CAIRN_EPROTO, err, errlen, "field '%s' must be an array", name);
    l->inputs = xcalloc(json_array_size(v) + 1, sizeof(*l->inputs));
    for (size_t i = 0; i < json_array_size(v); i++) {
        const char *ip = msg__index(ebuf, sizeof(ebuf), name, i);
        struct msg_input *x = &l->inputs[i];

        if ((rc = msg__input_decode(json_array_get(v, i), ip, x, err, errlen)) != 0)
            return rc;
        l->ninputs = i + 1;
        if (!msg__component_ok(x->name))
            return errf(CAIRN_EPROTO, err, errlen,
                        "field '%s' must be one path component (not empty, no '/', not . or ..)",
                        msg__member(fbuf, sizeof(fbuf), ip, "name"));
        if (!msg_sha256_valid(x->sha256))
            return errf(CAIRN_EPROTO, err, errlen, "field '%s' must be 64 lower-case hex digits",
                        msg__member(fbuf, sizeof(fbuf), ip, "sha256"));
        if (x->manifest_file && !msg__component_ok(x->manifest_file))
            return errf(CAIRN_EPROTO, err, errlen,
                        "field '%s' must be one path component (not empty, no '/', not . or ..)",
                        msg__member(fbuf, sizeof(fbuf), ip, "manifest_file"));
    }
    return 0;
}

static json_t *
msg__inputs_encode(struct msg__enc *e, const void *base)
{
    const struct msg_lease *l = base;
    json_t *arr = json_array();

    for (size_t i = 0; i < l->ninputs; i++) {
        json_t *in = msg__input_encode(&l->inputs[i]);

        if (!in)
            e->bad = true;
        msg__push(e, arr, in);
    }
    return arr;
}

static void
msg__inputs_clear(void *base)
{
    struct msg_lease *l = base;

    for (size_t i = 0; i < l->ninputs; i++)
        msg__input_clear(&l->inputs[i]);
    free(l->inputs);
}

static const struct msg__hook msg__inputs = {msg__inputs_decode, msg__inputs_encode,
                                             msg__inputs_clear};

/* Absolute, and no "." or ".." component (repeated '/' are let be). */
static bool
msg__abs_path_ok(const char *p)
{
    if (p[0] != '/')
        return false;
    for (const char *c = p; *c;) {
        size_t n;

        while (*c == '/')
            c++;
        n = strcspn(c, "/");
        if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        c += n;
    }
    return true;
}

#define M(m) MSG__F(struct msg_mount, m)
static const struct msg__field msg__mount_fields[] = {
    {"host", MSG__STR, MSG__REQ, 0, 0, 0, M(host), 0, NULL},
    {"path", MSG__STR, MSG__REQ, 0, 0, 0, M(path), 0, NULL},
    {"readonly", MSG__BOOL, MSG__REQ, 0, 0, 0, M(readonly), 0, NULL},
};
#undef M
MSG__CODEC(msg__mount, struct msg_mount, msg__mount_fields)

static int
msg__mounts_decode(const json_t *v, const char *name, void *base, char *err, size_t errlen)
{
    char ebuf[MSG__PATH_MAX], fbuf[MSG__PATH_MAX];
    struct msg_lease *l = base;
    int rc;

    if (!v)
        return 0;
    if (!json_is_array(v))
        return errf(CAIRN_EPROTO, err, errlen, "field '%s' must be an array", name);
    l->mounts = xcalloc(json_array_size(v) + 1, sizeof(*l->mounts));
    for (size_t i = 0; i < json_array_size(v); i++) {
        const char *mp = msg__index(ebuf, sizeof(ebuf), name, i);
        struct msg_mount *x = &l->mounts[i];

        if ((rc = msg__mount_decode(json_array_get(v, i), mp, x, err, errlen)) != 0)
            return rc;
        l->nmounts = i + 1;
        if (!msg__abs_path_ok(x->host))
            return errf(CAIRN_EPROTO, err, errlen,
                        "field '%s' must be an absolute path without . or .. parts",
                        msg__member(fbuf, sizeof(fbuf), mp, "host"));
        if (!msg__abs_path_ok(x->path))
            return errf(CAIRN_EPROTO, err, errlen,
                        "field '%s' must be an absolute path without . or .. parts",
                        msg__member(fbuf, sizeof(fbuf), mp, "path"));
    }
    return 0;
}

static json_t *
msg__mounts_encode(struct msg__enc *e, const void *base)
{
    const struct msg_lease *l = base;
    json_t *arr;

    if (!l->nmounts)
        return NULL; /* absent: what peers without mounts sent */
    arr = json_array();
    for (size_t i = 0; i < l->nmounts; i++) {
        json_t *m = msg__mount_encode(&l->mounts[i]);

        if (!m)
            e->bad = true;
        msg__push(e, arr, m);
    }
    return arr;
}

static void
msg__mounts_clear(void *base)
{
    struct msg_lease *l = base;

    for (size_t i = 0; i < l->nmounts; i++)
        msg__mount_clear(&l->mounts[i]);
    free(l->mounts);
}

static const struct msg__hook msg__mounts = {msg__mounts_decode, msg__mounts_encode,
                                             msg__mounts_clear};

#define L(m) MSG__F(struct msg_lease, m)
static const struct msg__field msg__lease_fields[] = {
    {"lease_id", MSG__INT, MSG__REQ, 1, INT64_MAX, 0, L(lease_id), 0, NULL},
    {"dag", MSG__STR, MSG__REQ, 0, 0, 0, L(dag), 0, NULL},
    {"run_id", MSG__STR, MSG__REQ, 0, 0, 0, L(run_id), 0, NULL},
    {"task", MSG__STR, MSG__REQ, 0, 0, 0, L(task), 0, NULL},
    {"attempt", MSG__INT, MSG__REQ, 1, INT64_MAX, 0, L(attempt), 0, NULL},
    {"logical_date", MSG__STR, MSG__REQ, 0, 0, 0, L(logical_date), 0, NULL},
    {"argv", MSG__STRV, MSG__REQ | MSG__NONEMPTY, 0, 0, 0, L(argv), L(nargv), NULL},
    {"env", MSG__STRV, MSG__REQ | MSG__KV, 0, 0, 0, L(env), L(nenv), NULL},
    {"image", MSG__STR, MSG__REQ, 0, 0, 0, L(image), 0, NULL},
    {"timeout_ms", MSG__INT, MSG__REQ, 0, INT64_MAX, 0, L(timeout_ms), 0, NULL},
    {"cpus", MSG__NUM, MSG__REQ, 0, 0, 0, L(cpus), 0, NULL},
    {"memory", MSG__INT, MSG__REQ, 0, INT64_MAX, 0, L(memory), 0, NULL},
    {"pids", MSG__INT, MSG__REQ, 0, INT64_MAX, 0, L(pids), 0, NULL},
    {"network", MSG__BOOL, MSG__REQ, 0, 0, 0, L(network), 0, NULL},
    {"inputs", MSG__CUSTOM, MSG__REQ, 0, 0, 0, 0, 0, &msg__inputs},
    {"outputs", MSG__STRV, MSG__REQ, 0, 0, 0, L(outputs), L(noutputs), NULL},
    /* null when absent, as the scheduler's json_pack "s?" always sent them */
    {"code", MSG__STR, MSG__OR_NULL, 0, 0, 0, L(code), 0, NULL},
    {"metrics", MSG__STR, MSG__OR_NULL, 0, 0, 0, L(metrics), 0, NULL},
    {"mounts", MSG__CUSTOM, 0, 0, 0, 0, 0, 0, &msg__mounts},
    /* absent for a task without GPUs: the lease an older worker knew */
    {"gpus", MSG__INTS, MSG__IF_SET, 0, MSG_GPU_INDEX_MAX, 0, L(gpus), L(ngpus), NULL},
    /* absent for a task without secrets */
    {"secrets", MSG__STRV, MSG__IF_SET | MSG__KV, 0, 0, 0, L(secrets), L(nsecrets), NULL},
    {"secret_names", MSG__STRV, MSG__IF_SET, 0, 0, 0, L(secret_names), L(nsecret_names), NULL},
    {"mask_paths", MSG__STRV, MSG__IF_SET, 0, 0, 0, L(mask_paths), L(nmask_paths), NULL},
    {"entrypoint", MSG__STRV, MSG__IF_SET, 0, 0, 0, L(entrypoint), L(nentrypoint), NULL},
    {"entrypoint_set", MSG__BOOL, MSG__IF_SET, 0, 0, 0, L(entrypoint_set), 0, NULL},
    /* absent unless the task sets max_log_size / on_log_limit: fail */
    {"max_log_size", MSG__INT, MSG__IF_SET, -1, INT64_MAX, 0, L(max_log_size), 0, NULL},
    {"log_limit_fail", MSG__BOOL, MSG__IF_SET, 0, 0, 0, L(log_limit_fail), 0, NULL},
    /* absent: no limit (a scheduler older than the limits) */
    {"max_output_size", MSG__INT, MSG__IF_SET, 0, INT64_MAX, 0, L(max_output_size), 0, NULL},
    {"max_outputs_size", MSG__INT, MSG__IF_SET, 0, INT64_MAX, 0, L(max_outputs_size), 0, NULL},
    {"xfer_token", MSG__STR, MSG__IF_SET, 0, 0, 0, L(xfer_token), 0, NULL},
    {"code_tree", MSG__STR, MSG__IF_SET, 0, 0, 0, L(code_tree), 0, NULL},
};
#undef L
MSG__CODEC(msg__lease, struct msg_lease, msg__lease_fields)

int
msg_lease_decode(const json_t *j, const char *path, struct msg_lease *out, char *err, size_t errlen)
{
    return msg__lease_decode(j, path, out, err, errlen);
}

json_t *
msg_lease_encode(const struct msg_lease *l)
{
    return msg__lease_encode(l);
}

void
msg_lease_clear(struct msg_lease *l)
{
    msg__lease_clear(l);
}

/* WORK's leases: each decoded on its own, so a bad one is kept in bad[]
 * (with its id if it had a valid one) and the others stand. */
static int
msg__leases_decode(const json_t *v, const char *name, void *base, char *err, size_t errlen)
{
    struct msg_work *w = base;
    size_t n;

    if (!v)
        return errf(CAIRN_EPROTO, err, errlen, "missing field '%s'", name);
    if (!json_is_array(v))
        return errf(CAIRN_EPROTO, err, errlen, "field '%s' must be an array", name);
    n = json_array_size(v);
    w->leases = xcalloc(n + 1, sizeof(*w->leases));
    w->bad = xcalloc(n + 1, sizeof(*w->bad));
    for (size_t i = 0; i < n; i++) {
        const json_t *lj = json_array_get(v, i);
        char path[MSG__PATH_MAX], why[512];
        int64_t id = 0;

        msg__index(path, sizeof(path), name, i);
        if (msg_lease_decode(lj, path, &w->leases[w->nleases], why, sizeof(why)) == 0) {
            w->nleases++;
            continue;
        }
        if (proto_value_int(json_object_get(lj, "lease_id"), "lease_id", 1, INT64_MAX, &id, NULL,
                            0) != 0)
            id = 0;
        w->bad[w->nbad].lease_id = id;
        w->bad[w->nbad].why = xstrdup(why);
        w->nbad++;
    }
    return 0;
}

static json_t *
msg__leases_encode(struct msg__enc *e, const void *base)
{
    const struct msg_work *w = base;
    json_t *arr = json_array();

    for (size_t i = 0; i < w->nleases; i++) {
        json_t *l = msg_lease_encode(&w->leases[i]);

        if (!l)
            e->bad = true;
        msg__push(e, arr, l);
    }
    return arr;
}

static void
msg__leases_clear(void *base)
{
    struct msg_work *w = base;

    for (size_t i = 0; i < w->nleases; i++)
        msg_lease_clear(&w->leases[i]);
    free(w->leases);
    for (size_t i = 0; i < w->nbad; i++)
        free(w->bad[i].why);
    free(w->bad);
}

static const struct msg__hook msg__leases = {msg__leases_decode, msg__leases_encode,
                                             msg__leases_clear};

static const struct msg__field msg__work_fields[] = {
    {"leases", MSG__CUSTOM, MSG__REQ, 0, 0, 0, 0, 0, &msg__leases},
    {"cancel", MSG__IDS, MSG__REQ, 0, 0, 0, MSG__F(struct msg_work, cancel),
     MSG__F(struct msg_work, ncancel), NULL},
};
MSG__CODEC(msg__work, struct msg_work, msg__work_fields)

/* ---- STARTED, LOG, RESULT ---- */

#define S(m) MSG__F(struct msg_started, m)
static const struct msg__field msg__started_fields[] = {
    {"worker", MSG__STR, MSG__REQ, 0, 0, 0, S(worker), 0, NULL},
    {"lease_id", MSG__INT, MSG__REQ, 1, INT64_MAX, 0, S(lease_id), 0, NULL},
    {"age_ms", MSG__INT, MSG__IF_SET, 0, INT64_MAX, 0, S(age_ms), 0, NULL},
};
#undef S
MSG__CODEC(msg__started, struct msg_started, msg__started_fields)

#define G(m) MSG__F(struct msg_log, m)
static const struct msg__field msg__log_fields[] = {
    {"worker", MSG__STR, MSG__REQ, 0, 0, 0, G(worker), 0, NULL},
    {"lease_id", MSG__INT, MSG__REQ, 1, INT64_MAX, 0, G(lease_id), 0, NULL},
    {"stream", MSG__INTC, MSG__DEF_ZERO, 1, 2, 1, G(stream), 0, NULL},
    {"offset", MSG__INT, MSG__REQ, 0, INT64_MAX, 0, G(offset), 0, NULL},
    {"data", MSG__STR, MSG__REQ | MSG__WITH_LEN | MSG__NO_NUL, 0, 0, 0, G(data), G(data_len), NULL},
};
#undef G
MSG__CODEC(msg__log, struct msg_log, msg__log_fields)

#define O(m) MSG__F(struct msg_output, m)
static const struct msg__field msg__output_fields[] = {
    {"name", MSG__STR, MSG__REQ, 0, 0, 0, O(name), 0, NULL},
    {"sha256", MSG__STR, MSG__REQ, 0, 0, 0, O(sha256), 0, NULL},
    {"size", MSG__INT, MSG__REQ, 0, INT64_MAX, 0, O(size), 0, NULL},
    {"uri", MSG__STR, MSG__REQ, 0, 0, 0, O(uri), 0, NULL},
};
#undef O
MSG__CODEC(msg__output, struct msg_output, msg__output_fields)

static int
msg__outputs_decode(const json_t *v, const char *name, void *base, char *err, size_t errlen)
{
    char ebuf[MSG__PATH_MAX], fbuf[MSG__PATH_MAX];
    struct msg_result *r = base;
    int rc;

    if (!v)
        return 0;
    if (!json_is_array(v))
        return errf(CAIRN_EPROTO, err, errlen, "field '%s' must be an array", name);
    r->outputs = xcalloc(json_array_size(v) + 1, sizeof(*r->outputs));
    for (size_t i = 0; i < json_array_size(v); i++) {
        const char *op = msg__index(ebuf, sizeof(ebuf), name, i);

        if ((rc = msg__output_decode(json_array_get(v, i), op, &r->outputs[i], err, errlen)) != 0)
            return rc;
        r->noutputs = i + 1;
        if (!msg_sha256_valid(r->outputs[i].sha256))
            return errf(CAIRN_EPROTO, err, errlen, "field '%s' must be 64 lower-case hex digits",
                        msg__member(fbuf, sizeof(fbuf), op, "sha256"));
    }
    return 0;
}

static json_t *
msg__outputs_encode(struct msg__enc *e, const void *base)
{
    const struct msg_result *r = base;
    json_t *arr = json_array();

    for (size_t i = 0; i < r->noutputs; i++) {
        json_t *o = msg__output_encode(&r->outputs[i]);

        if (!o)
            e->bad = true;
        msg__push(e, arr, o);
    }
    return arr;
}

static void
msg__outputs_clear(void *base)
{
    struct msg_result *r = base;

    for (size_t i = 0; i < r->noutputs; i++)
        msg__output_clear(&r->outputs[i]);
    free(r->outputs);
}

static const struct msg__hook msg__outputs = {msg__outputs_decode, msg__outputs_encode,
                                              msg__outputs_clear};

static int
msg__metrics_decode(const json_t *v, const char *name, void *base, char *err, size_t errlen)
{
    struct msg_result *r = base;
    const char *k;
    json_t *x;

    if (!v)
        return 0;
    if (!json_is_object(v))
        return errf(CAIRN_EPROTO, err, errlen, "field '%s' must be an object", name);
    r->metrics = xcalloc(json_object_size(v) + 1, sizeof(*r->metrics));
    json_object_foreach((json_t *)v, k, x)
    {
        struct msg_metric *m = &r->metrics[r->nmetrics];

        if (!json_is_number(x))
            continue; /* a task's metrics file is the task's own: dropped, not refused */
        m->name = xstrdup(k);
        m->integer = json_is_integer(x);
        m->ivalue = m->integer ? (int64_t)json_integer_value(x) : 0;
        m->value = json_number_value(x);
        r->nmetrics++;
    }
    return 0;
}

static json_t *
msg__metrics_encode(struct msg__enc *e, const void *base)
{
    const struct msg_result *r = base;
    json_t *o = json_object();

    for (size_t i = 0; i < r->nmetrics; i++) {
        const struct msg_metric *m = &r->metrics[i];

        msg__put(e, o, m->name,
                 m->integer ? json_integer((json_int_t)m->ivalue) : json_real(m->value));
    }
    return o;
}

static void
msg__metrics_clear(void *base)
{
    struct msg_result *r = base;

    for (size_t i = 0; i < r->nmetrics; i++)
        free(r->metrics[i].name);
    free(r->metrics);
}

static const struct msg__hook msg__metrics = {msg__metrics_decode, msg__metrics_encode,
                                              msg__metrics_clear};

#define R(m) MSG__F(struct msg_result, m)
static const struct msg__field msg__result_fields[] = {
    {"worker", MSG__STR, MSG__REQ, 0, 0, 0, R(worker), 0, NULL},
    {"lease_id", MSG__INT, MSG__REQ, 1, INT64_MAX, 0, R(lease_id), 0, NULL},
    {"exit_code", MSG__INTC, MSG__REQ, -1, 255, 0, R(exit_code), 0, NULL},
    {"signal", MSG__INTC, 0, 0, 128, 0, R(signal), 0, NULL},
    {"oom", MSG__BOOL, 0, 0, 0, 0, R(oom), 0, NULL},
    {"timed_out", MSG__BOOL, 0, 0, 0, 0, R(timed_out), 0, NULL},
    {"duration_ms", MSG__INT, 0, 0, INT64_MAX, 0, R(duration_ms), 0, NULL},
    {"error", MSG__STR, MSG__EMPTY, 0, 0, 0, R(error), 0, NULL},
    {"outputs", MSG__CUSTOM, 0, 0, 0, 0, 0, 0, &msg__outputs},
    {"metrics", MSG__CUSTOM, 0, 0, 0, 0, 0, 0, &msg__metrics},
    {"interrupted", MSG__BOOL, MSG__IF_SET, 0, 0, 0, R(interrupted), 0, NULL},
    {"input_unavailable", MSG__BOOL, MSG__IF_SET, 0, 0, 0, R(input_unavailable), 0, NULL},
    {"stderr_tail", MSG__STRV, MSG__IF_SET, 0, 0, 0, R(stderr_tail), R(nstderr_tail), NULL},
};
#undef R
MSG__CODEC(msg__result, struct msg_result, msg__result_fields)

int
msg_result_decode(const json_t *j, const char *path, struct msg_result *out, char *err,
                  size_t errlen)
{
    return msg__result_decode(j, path, out, err, errlen);
}

json_t *
msg_result_encode(const struct msg_result *r)
{
    return msg__result_encode(r);
}

void
msg_result_clear(struct msg_result *r)
{
    msg__result_clear(r);
}

/* ---- BATCH ---- */

static void
msg__item_clear(struct msg_item *it)
{
    if (it->type == PROTO_STARTED)
        msg__started_clear(&it->u.started);
    else if (it->type == PROTO_LOG)
        msg__log_clear(&it->u.log);
    else if (it->type == PROTO_RESULT)
        msg_result_clear(&it->u.result);
    free(it->error);
    memset(it, 0, sizeof(*it));
}

/* One item; on failure it->type stays 0 and the message is in err. */
static int
msg__item_decode(const json_t *j, const char *path, struct msg_item *it, char *err, size_t errlen)
{
    char bbuf[MSG__PATH_MAX], tbuf[MSG__PATH_MAX];
    const char *bpath = msg__member(bbuf, sizeof(bbuf), path, "body");
    const char *tpath = msg__member(tbuf, sizeof(tbuf), path, "type");
    json_t *body;
    int64_t type = 0;
    int rc;

    if ((rc = msg__obj_check(j, path, err, errlen)) != 0 ||
        (rc = proto_value_int(json_object_get(j, "type"), tpath, 1, 0xffff, &type, err, errlen)) !=
            0)
        return rc;
    if (type != PROTO_STARTED && type != PROTO_LOG && type != PROTO_RESULT)
        return errf(CAIRN_EPROTO, err, errlen,
                    "field '%s' is %lld (%s): only STARTED, LOG and RESULT can be batched", tpath,
                    (long long)type, proto_type_name((int)type));
    body = json_object_get(j, "body");
    if (!body)
        return errf(CAIRN_EPROTO, err, errlen, "missing field '%s'", bpath);
    if (type == PROTO_STARTED)
        rc = msg__started_decode(body, bpath, &it->u.started, err, errlen);
    else if (type == PROTO_LOG)
        rc = msg__log_decode(body, bpath, &it->u.log, err, errlen);
    else
        rc = msg_result_decode(body, bpath, &it->u.result, err, errlen);
    if (rc == 0)
        it->type = (int)type;
    return rc;
}

static int
msg__items_decode(const json_t *v, const char *name, void *base, char *err, size_t errlen)
{
    struct msg_batch *b = base;

    if (!v)
        return errf(CAIRN_EPROTO, err, errlen, "missing field '%s'", name);
    if (!json_is_array(v))
        return errf(CAIRN_EPROTO, err, errlen, "field '%s' must be an array", name);
    b->nitems = json_array_size(v);
    b->items = xcalloc(b->nitems + 1, sizeof(*b->items));
    for (size_t i = 0; i < b->nitems; i++) {
        char path[MSG__PATH_MAX], why[512];

        msg__index(path, sizeof(path), name, i);
        if (msg__item_decode(json_array_get(v, i), path, &b->items[i], why, sizeof(why)) != 0)
            b->items[i].error = xstrdup(why);
    }
    return 0;
}

static json_t *
msg__items_encode(struct msg__enc *e, const void *base)
{
    const struct msg_batch *b = base;
    json_t *arr = json_array();

    for (size_t i = 0; i < b->nitems; i++) {
        const struct msg_item *it = &b->items[i];
        json_t *body, *ij;

        if (it->type == PROTO_STARTED)
            body = msg__started_encode(&it->u.started);
        else if (it->type == PROTO_LOG)
            body = msg__log_encode(&it->u.log);
        else if (it->type == PROTO_RESULT)
            body = msg_result_encode(&it->u.result);
        else
            continue; /* a refused item (type 0) is decode-only */
        ij = json_object();
        msg__put(e, ij, "type", json_integer(it->type));
        msg__put(e, ij, "body", body);
        msg__push(e, arr, ij);
    }
    return arr;
}

static void
msg__items_clear(void *base)
{
    struct msg_batch *b = base;

    for (size_t i = 0; i < b->nitems; i++)
        msg__item_clear(&b->items[i]);
    free(b->items);
}

static const struct msg__hook msg__items = {msg__items_decode, msg__items_encode, msg__items_clear};

static const struct msg__field msg__batch_fields[] = {
    {"worker", MSG__STR, MSG__REQ, 0, 0, 0, MSG__F(struct msg_batch, worker), 0, NULL},
    {"items", MSG__CUSTOM, MSG__REQ, 0, 0, 0, 0, 0, &msg__items},
    {"free", MSG__INT, MSG__IF_SET, 0, 100000, 0, MSG__F(struct msg_batch, free), 0, NULL},
    {"seq", MSG__INT, MSG__IF_SET, 0, INT64_MAX, 0, MSG__F(struct msg_batch, seq), 0, NULL},
    {"gave_up", MSG__INTS, MSG__IF_SET, 1, INT64_MAX, 0, MSG__F(struct msg_batch, gave_up),
     MSG__F(struct msg_batch, ngave_up), NULL},
};
MSG__CODEC(msg__batch, struct msg_batch, msg__batch_fields)

/* ---- ACK, ERROR ---- */

/* One of a BATCH's results: an ACK whose own results are not looked at. */
#define A(m) MSG__F(struct msg_ack, m)
static const struct msg__field msg__result_ack_fields[] = {
    {"ok", MSG__BOOL, MSG__REQ, 0, 0, 0, A(ok), 0, NULL},
    {"reason", MSG__STR, MSG__EMPTY | MSG__IF_SET, 0, 0, 0, A(reason), 0, NULL},
    {"code", MSG__STR, MSG__IF_SET, 0, 0, 0, A(code), 0, NULL},
};
MSG__CODEC(msg__result_ack, struct msg_ack, msg__result_ack_fields)

static int
msg__results_decode(const json_t *v, const char *name, void *base, char *err, size_t errlen)
{
    char ebuf[MSG__PATH_MAX];
    struct msg_ack *a = base;
    int rc;

    if (!v)
        return 0;
    if (!json_is_array(v))
        return errf(CAIRN_EPROTO, err, errlen, "field '%s' must be an array", name);
    a->results = xcalloc(json_array_size(v) + 1, sizeof(*a->results));
    for (size_t i = 0; i < json_array_size(v); i++) {
        rc = msg__result_ack_decode(json_array_get(v, i), msg__index(ebuf, sizeof(ebuf), name, i),
                                    &a->results[i], err, errlen);
        if (rc)
            return rc;
        a->nresults = i + 1;
    }
    return 0;
}

static json_t *
msg__results_encode(struct msg__enc *e, const void *base)
{
    const struct msg_ack *a = base;
    json_t *arr;

    if (!a->results && !a->nresults)
        return NULL; /* absent */
    arr = json_array();
    for (size_t i = 0; i < a->nresults; i++) {
        json_t *r = msg__result_ack_encode(&a->results[i]);

        if (!r)
            e->bad = true;
        msg__push(e, arr, r);
    }
    return arr;
}

static void
msg__results_clear(void *base)
{
    struct msg_ack *a = base;

    for (size_t i = 0; i < a->nresults; i++)
        msg__result_ack_clear(&a->results[i]);
    free(a->results);
}

static const struct msg__hook msg__results = {msg__results_decode, msg__results_encode,
                                              msg__results_clear};

/* ACK's work: a WORK body of its own (leases decoded one by one) */
static int
msg__ack_work_decode(const json_t *v, const char *name, void *base, char *err, size_t errlen)
{
    struct msg_ack *a = base;
    struct msg_work w;

    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return errf(CAIRN_EPROTO, err, errlen, "field '%s' must be an object", name);
    int rc = msg__work_decode(v, name, &w, err, errlen);
    if (rc)
        return rc;
    a->work = xmalloc(sizeof(*a->work));
    *a->work = w;
    return 0;
}

static json_t *
msg__ack_work_encode(struct msg__enc *e, const void *base)
{
    const struct msg_ack *a = base;

    if (!a->work)
        return NULL; /* absent */
    json_t *w = msg__work_encode(a->work);
    if (!w)
        e->bad = true;
    return w;
}

static void
msg__ack_work_clear(void *base)
{
    struct msg_ack *a = base;

    if (a->work)
        msg__work_clear(a->work);
    free(a->work);
}

static const struct msg__hook msg__ack_work = {msg__ack_work_decode, msg__ack_work_encode,
                                               msg__ack_work_clear};

static const struct msg__field msg__ack_fields[] = {
    {"ok", MSG__BOOL, MSG__REQ, 0, 0, 0, A(ok), 0, NULL},
    {"reason", MSG__STR, MSG__EMPTY | MSG__IF_SET, 0, 0, 0, A(reason), 0, NULL},
    {"code", MSG__STR, MSG__IF_SET, 0, 0, 0, A(code), 0, NULL},
    {"results", MSG__CUSTOM, 0, 0, 0, 0, 0, 0, &msg__results},
    {"work", MSG__CUSTOM, 0, 0, 0, 0, 0, 0, &msg__ack_work},
};
#undef A
MSG__CODEC(msg__ack, struct msg_ack, msg__ack_fields)

static const struct msg__field msg__error_fields[] = {
    {"code", MSG__STR, MSG__REQ, 0, 0, 0, MSG__F(struct msg_error, code), 0, NULL},
    {"message", MSG__STR, MSG__REQ, 0, 0, 0, MSG__F(struct msg_error, message), 0, NULL},
};
MSG__CODEC(msg__error, struct msg_error, msg__error_fields)

/* ---- any message ---- */

int
msg_decode(int type, const json_t *body, struct msg *out, char *err, size_t errlen)
{
    struct msg m;
    int rc;

    memset(&m, 0, sizeof(m));
    memset(out, 0, sizeof(*out));
    switch (type) {
    case PROTO_HELLO:
        rc = msg__hello_decode(body, NULL, &m.u.hello, err, errlen);
        break;
    case PROTO_WELCOME:
        rc = msg__welcome_decode(body, NULL, &m.u.welcome, err, errlen);
        break;
    case PROTO_POLL:
        rc = msg__poll_decode(body, NULL, &m.u.poll, err, errlen);
        break;
    case PROTO_WORK:
        rc = msg__work_decode(body, NULL, &m.u.work, err, errlen);
        break;
    case PROTO_STARTED:
        rc = msg__started_decode(body, NULL, &m.u.started, err, errlen);
        break;
    case PROTO_LOG:
        rc = msg__log_decode(body, NULL, &m.u.log, err, errlen);
        break;
    case PROTO_RESULT:
        rc = msg_result_decode(body, NULL, &m.u.result, err, errlen);
        break;
    case PROTO_BATCH:
        rc = msg__batch_decode(body, NULL, &m.u.batch, err, errlen);
        break;
    case PROTO_ACK:
        rc = msg__ack_decode(body, NULL, &m.u.ack, err, errlen);
        break;
    case PROTO_ERROR:
        rc = msg__error_decode(body, NULL, &m.u.error, err, errlen);
        break;
    default:
        return errf(CAIRN_EPROTO, err, errlen, "unknown message type %d", type);
    }
    if (rc)
        return rc;
    m.type = type;
    *out = m;
    return 0;
}

json_t *
msg_encode(const struct msg *m)
{
    if (!m)
        return NULL;
    switch (m->type) {
    case PROTO_HELLO:
        return msg__hello_encode(&m->u.hello);
    case PROTO_WELCOME:
        return msg__welcome_encode(&m->u.welcome);
    case PROTO_POLL:
        return msg__poll_encode(&m->u.poll);
    case PROTO_WORK:
        return msg__work_encode(&m->u.work);
    case PROTO_STARTED:
        return msg__started_encode(&m->u.started);
    case PROTO_LOG:
        return msg__log_encode(&m->u.log);
    case PROTO_RESULT:
        return msg_result_encode(&m->u.result);
    case PROTO_BATCH:
        return msg__batch_encode(&m->u.batch);
    case PROTO_ACK:
        return msg__ack_encode(&m->u.ack);
    case PROTO_ERROR:
        return msg__error_encode(&m->u.error);
    default:
        return NULL;
    }
}

void
msg_clear(struct msg *m)
{
    if (!m)
        return;
    switch (m->type) {
    case PROTO_HELLO:
        msg__hello_clear(&m->u.hello);
        break;
    case PROTO_WELCOME:
        msg__welcome_clear(&m->u.welcome);
        break;
    case PROTO_POLL:
        msg__poll_clear(&m->u.poll);
        break;
    case PROTO_WORK:
        msg__work_clear(&m->u.work);
        break;
    case PROTO_STARTED:
        msg__started_clear(&m->u.started);
        break;
    case PROTO_LOG:
        msg__log_clear(&m->u.log);
        break;
    case PROTO_RESULT:
        msg_result_clear(&m->u.result);
        break;
    case PROTO_BATCH:
        msg__batch_clear(&m->u.batch);
        break;
    case PROTO_ACK:
        msg__ack_clear(&m->u.ack);
        break;
    case PROTO_ERROR:
        msg__error_clear(&m->u.error);
        break;
    default:
        break;
    }
    memset(m, 0, sizeof(*m));
}

int
msg_pack(const struct proto_key *k, const struct msg *m, unsigned char **out, size_t *outlen)
{
    json_t *body = msg_encode(m);
    int rc;

    if (!body)
        return CAIRN_EINVAL;
    rc = proto_encode(k, m->type, body, out, outlen);
    json_decref(body);
    return rc;
}

int
msg_unpack(const struct proto_key *k, const unsigned char *buf, size_t len, struct msg *out,
           char *err, size_t errlen)
{
    void *body = NULL;
    int type = 0;
    int rc = proto_decode(k, buf, len, &type, &body, err, errlen);

    if (rc) {
        memset(out, 0, sizeof(*out));
        return rc;
    }
    rc = msg_decode(type, body, out, err, errlen);
    json_decref(body);
    return rc;
}
