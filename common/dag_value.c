/* dag_value.c - reading one YAML node as the value a field expects, and
 * saying what is wrong with it when it is not.
 *
 * Owns the loader's diagnostics (dag__err/dag__nerr: every error of the
 * module goes through them, so `quiet` silences inherited defaults in one
 * place), the "did you mean" suggestions, unknown-key checks and the typed
 * readers (string, bool, integer, number, duration, size, list of strings,
 * mapping of strings) with the name rules they share. Readers never keep a
 * node: they copy what they accept into malloc'd strings the caller owns,
 * and set their out-parameter only when the value is accepted (dag_int.h).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag_int.h"
#include "units.h"
#include "util.h"

static void verr(struct dag__loader *l, int line, int col, const char *code, const char *hint,
                 const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));

static void
verr(struct dag__loader *l, int line, int col, const char *code, const char *hint, const char *fmt,
     va_list ap)
{
    if (l->quiet)
        return;
    struct sb sb;
    size_t idx;
    sb_init(&sb);
    sb_vprintf(&sb, fmt, ap);
    char *key = xasprintf("%d:%d:%s:%s", line, col, code, sb.buf ? sb.buf : "");
    if (hmap_get(&l->said, key, &idx)) {
        free(key); /* said already: the same node, reached again */
    } else {
        xgrow((void **)&l->said_keys, &l->capsaid, l->nsaid + 1, sizeof(*l->said_keys));
        l->said_keys[l->nsaid++] = key;
        hmap_put(&l->said, key, 0);
        diag_add(l->dl, DIAG_ERROR, l->file, line, col, code, hint, "%s", sb.buf ? sb.buf : "");
    }
    sb_free(&sb);
}

void
dag__err(struct dag__loader *l, int line, int col, const char *code, const char *hint,
         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(l, line, col, code, hint, fmt, ap);
    va_end(ap);
}

void
dag__nerr(struct dag__loader *l, const struct ynode *n, const char *code, const char *hint,
          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(l, n->line, n->col, code, hint, fmt, ap);
    va_end(ap);
}

/* Position of byte `off` inside a scalar, for errors inside a string. */
void
dag__scalar_pos(const struct ynode *n, int off, int *line, int *col)
{
    *line = n->line;
    *col = n->col;
    if (memchr(n->str, '\n', n->len))
        return; /* multi-line: point at the scalar itself */
    *col = n->col + off + (n->quoted ? 1 : 0);
}

/* "did you mean 'x'?" from a NULL-terminated list, or NULL. */
char *
dag__suggest(const char *word, const char *const *cands, size_t ncands)
{
    size_t best = (size_t)-1, cap = strlen(word) <= 3 ? 1 : (strlen(word) <= 6 ? 2 : 3);
    const char *pick = NULL;
    for (size_t i = 0; (ncands ? i < ncands : cands[i] != NULL); i++) {
        size_t dd = str_distance(word, cands[i], cap);
        if (dd <= cap && dd < best) {
            best = dd;
            pick = cands[i];
        }
    }
    return pick ? xasprintf("did you mean '%s'?", pick) : NULL;
}

char *
dag__suggest_task(struct dag__loader *l, const char *word)
{
    size_t best = (size_t)-1, cap = strlen(word) <= 3 ? 1 : (strlen(word) <= 6 ? 2 : 3);
    const char *pick = NULL;
    for (size_t i = 0; i < l->d->ntasks; i++) {
        size_t dd = str_distance(word, l->d->tasks[i].name, cap);
        if (dd <= cap && dd < best) {
            best = dd;
            pick = l->d->tasks[i].name;
        }
    }
    return pick ? xasprintf("did you mean '%s'?", pick) : NULL;
}

/* Keys of other tools (Airflow, Compose, Argo, GitLab CI) that a new user
 * writes for one of Cairn's: the hint names Cairn's key, when it is a key
 * of the mapping at hand. */
static const struct {
    const char *word, *key;
} key_aliases[] = {
    {"bash_command", "command"},
    {"cmd", "command"},
    {"concurrency", "max_active_tasks"},
    {"cron", "schedule"},
    {"dag_id", "dag"},
    {"default_args", "defaults"},
    {"dependencies", "needs"},
    {"depends_on", "needs"},
    {"environment", "env"},
    {"execution_timeout", "timeout"},
    {"gpu", "gpus"},
    {"nvidia.com/gpu", "gpus"},
    {"schedule_interval", "schedule"},
    {"script", "command"},
    {"upstream", "needs"},
};

static char *
suggest_key(const char *word, const char *const *known)
{
    for (size_t i = 0; i < sizeof(key_aliases) / sizeof(*key_aliases); i++) {
        if (strcmp(word, key_aliases[i].word) != 0)
            continue;
        for (size_t j = 0; known[j]; j++)
            if (!strcmp(known[j], key_aliases[i].key))
                return xasprintf("did you mean '%s'?", known[j]);
    }
    return dag__suggest(word, known, 0);
}

void
dag__check_keys(struct dag__loader *l, const struct ynode *map, const char *const *known,
                const char *where, int extensions)
{
    for (size_t i = 0; i < map->n; i++) {
        const struct ynode *k = map->keys[i];
        int ok = extensions && !strncmp(k->str, "x-", 2);
        for (size_t j = 0; known[j]; j++)
            if (strcmp(k->str, known[j]) == 0)
                ok = 1;
        if (!ok) {
            char *hint = suggest_key(k->str, known);
            dag__nerr(l, k, "unknown-key", hint, "unknown key '%s' in %s", k->str, where);
            free(hint);
        }
    }
}

int
dag__expect(struct dag__loader *l, const struct ynode *n, enum ynode_type t, const char *field)
{
    if (n->type == t && !(t == YNODE_SCALAR && n->is_null))
        return 0;
    const char *want = t == YNODE_SCALAR ? "a string" : t == YNODE_SEQ ? "a list" : "a mapping";
    dag__nerr(l, n, "wrong-type", NULL, "'%s' must be %s, got %s", field, want, ynode_kind(n));
    return -1;
}

int
dag__get_str(struct dag__loader *l, const struct ynode *n, const char *field, char **out)
{
    if (dag__expect(l, n, YNODE_SCALAR, field))
        return -1;
    if (strlen(n->str) != n->len) {
        dag__nerr(l, n, "wrong-type", NULL, "'%s' contains a NUL byte", field);
        return -1;
    }
    free(*out);
    *out = xstrdup(n->str);
    return 0;
}

int
dag__get_bool(struct dag__loader *l, const struct ynode *n, const char *field, bool *out)
{
    if (n->type == YNODE_SCALAR && !n->quoted) {
        if (!strcmp(n->str, "true") || !strcmp(n->str, "True") || !strcmp(n->str, "TRUE")) {
            *out = true;
            return 0;
        }
        if (!strcmp(n->str, "false") || !strcmp(n->str, "False") || !strcmp(n->str, "FALSE")) {
            *out = false;
            return 0;
        }
    }
    if (n->type == YNODE_SCALAR && n->quoted) {
        dag__nerr(l, n, "wrong-type", "write true or false without quotes",
                  "'%s' must be true or false, got the quoted string \"%s\"", field, n->str);
        return -1;
    }
    dag__nerr(l, n, "wrong-type", NULL, "'%s' must be true or false, got %s%s%s%s", field,
              n->type == YNODE_SCALAR ? "'" : "", n->type == YNODE_SCALAR ? n->str : ynode_kind(n),
              n->type == YNODE_SCALAR ? "'" : "", "");
    return -1;
}

static int
parse_int(const char *s, long long *out)
{
    char *end;
    if (!*s)
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int
dag__get_int(struct dag__loader *l, const struct ynode *n, const char *field, long long lo,
             long long hi, long long *out)
{
    long long v;
    if (n->type != YNODE_SCALAR || n->is_null || n->quoted || parse_int(n->str, &v)) {
        dag__nerr(l, n, "wrong-type", NULL, "'%s' must be a whole number, got %s%s%s", field,
                  n->type == YNODE_SCALAR && !n->is_null ? "'" : "",
                  n->type == YNODE_SCALAR && !n->is_null ? n->str : ynode_kind(n),
                  n->type == YNODE_SCALAR && !n->is_null ? "'" : "");
        return -1;
    }
    if (v < lo || v > hi) {
        if (v < 0 && lo >= 0)
            dag__nerr(l, n, "out-of-range", NULL, "'%s' must not be negative, got %lld", field, v);
        else
            dag__nerr(l, n, "out-of-range", NULL, "'%s' must be between %lld and %lld, got %lld",
                      field, lo, hi, v);
        return -1;
    }
    *out = v;
    return 0;
}

int
dag__parse_number(const char *s, double *out)
{
    char *end;
    if (!*s)
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return -1;
    /* strtod takes hex, inf, nan: a YAML user means decimal */
    for (const char *p = s; *p; p++)
        if (!strchr("0123456789+-.eE", *p))
            return -1;
    *out = v;
    return 0;
}

int
dag__get_number(struct dag__loader *l, const struct ynode *n, const char *field, double lo,
                double *out)
{
    double v;
    if (n->type != YNODE_SCALAR || n->is_null || n->quoted || dag__parse_number(n->str, &v)) {
        dag__nerr(l, n, "wrong-type", NULL, "'%s' must be a number, got %s", field,
                  n->type == YNODE_SCALAR && !n->is_null ? n->str : ynode_kind(n));
        return -1;
    }
    if (v < lo) {
        dag__nerr(l, n, "out-of-range", NULL, "'%s' must be at least %g, got %g", field, lo, v);
        return -1;
    }
    *out = v;
    return 0;
}

int
dag__get_duration(struct dag__loader *l, const struct ynode *n, const char *field, int64_t *out)
{
    char msg[256];
    if (dag__expect(l, n, YNODE_SCALAR, field))
        return -1;
    if (units_parse_duration(n->str, out, msg, sizeof(msg)) != 0) {
        dag__nerr(l, n, "bad-duration", "durations look like 30s, 10m, 2h, 1h30m, 1d", "'%s': %s",
                  field, msg);
        return -1;
    }
    return 0;
}

int
dag__get_size(struct dag__loader *l, const struct ynode *n, const char *field, int64_t *out)
{
    char msg[256];
    if (dag__expect(l, n, YNODE_SCALAR, field))
        return -1;
    if (units_parse_size(n->str, out, msg, sizeof(msg)) != 0) {
        dag__nerr(l, n, "bad-size", "sizes look like 512Mi, 1Gi, 500M", "'%s': %s", field, msg);
        return -1;
    }
    return 0;
}

/* Never '[' or ']': an instance name TASK[INDEX] (dag_instance_name) cannot
 * be a task's name. */
int
dag__valid_name(const char *s, int allow_upper)
{
    size_t n = strlen(s);
    if (n == 0 || n > DAG_NAME_MAX)
        return 0;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              (allow_upper && c >= 'A' && c <= 'Z')))
            return 0;
    }
    return 1;
}

int
dag__valid_ident(const char *s)
{
    if (!*s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return 0;
    return 1;
}

int
dag__valid_filename(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255 || !strcmp(s, ".") || !strcmp(s, ".."))
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return 0;
    return 1;
}

void
dag__json_str(struct sb *out, const char *s, size_t n)
{
    sb_putc(out, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            sb_printf(out, "\\%c", c);
        else if (c == '\n')
            sb_puts(out, "\\n");
        else if (c == '\t')
            sb_puts(out, "\\t");
        else if (c == '\r')
            sb_puts(out, "\\r");
        else if (c < 0x20 || c == 0x7f)
            sb_printf(out, "\\u%04x", c);
        else
            sb_putc(out, (char)c);
    }
    sb_putc(out, '"');
}

/* A YAML number (dag__parse_number accepted it) in JSON's grammar: no '+',
 * no leading zeros, a digit on both sides of '.', the value unchanged. */
static void
json_number(struct sb *out, const char *s)
{
    const char *p = s, *ip, *fp = NULL;
    size_t il, fl = 0;
    if (*p == '-')
        sb_putc(out, *p++);
    else if (*p == '+')
        p++;
    ip = p;
    while (*p >= '0' && *p <= '9')
        p++;
    il = (size_t)(p - ip);
    if (*p == '.') {
        fp = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        fl = (size_t)(p - fp);
    }
    while (il > 1 && *ip == '0') {
        ip++;
        il--;
    }
    if (il)
        sb_append(out, ip, il);
    else
        sb_putc(out, '0');
    if (fl) {
        sb_putc(out, '.');
        sb_append(out, fp, fl);
    }
    if (*p == 'e' || *p == 'E') {
        sb_putc(out, 'e');
        p++;
        if (*p == '-')
            sb_putc(out, *p++);
        else if (*p == '+')
            p++;
        sb_puts(out, p);
    }
}

int
dag__scalar_json(struct dag__loader *l, const struct ynode *n, const char *what, struct sb *out)
{
    double num;
    if (n->type != YNODE_SCALAR || n->is_null) {
        dag__nerr(l, n, "wrong-type", NULL, "%s must be a number, string or boolean, got %s", what,
                  ynode_kind(n));
        return -1;
    }
    if (strlen(n->str) != n->len) {
        dag__nerr(l, n, "wrong-type", NULL, "%s contains a NUL byte", what);
        return -1;
    }
    if (!n->quoted && dag__parse_number(n->str, &num) == 0)
        json_number(out, n->str);
    else if (!n->quoted && (!strcmp(n->str, "true") || !strcmp(n->str, "false")))
        sb_puts(out, n->str);
    else
        dag__json_str(out, n->str, n->len);
    return 0;
}

void
dag__strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void
dag__kv_free(struct dag_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

int
dag__kv_cmp(const void *a, const void *b)
{
    return strcmp(((const struct dag_kv *)a)->key, ((const struct dag_kv *)b)->key);
}

/* Merge a mapping of scalars into kv (later wins). */
void
dag__get_kv_map(struct dag__loader *l, const struct ynode *n, const char *field, struct dag_kv **kv,
                size_t *nkv, int env_names)
{
    if (dag__expect(l, n, YNODE_MAP, field))
        return;
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *k = n->keys[i], *v = n->vals[i];
        if (env_names) {
            if (!dag__valid_ident(k->str)) {
                dag__nerr(l, k, "bad-name", NULL,
                          "environment variable name '%s' must match [A-Za-z_][A-Za-z0-9_]*",
                          k->str);
                continue;
            }
            if (strncmp(k->str, "CAIRN_", 6) == 0) {
                dag__nerr(l, k, "reserved-name", NULL,
                          "environment variable '%s': names starting with CAIRN_ are reserved",
                          k->str);
                continue;
            }
        } else if (!*k->str) {
            dag__nerr(l, k, "bad-name", NULL, "empty key in '%s'", field);
            continue;
        }
        if (v->type != YNODE_SCALAR || (v->is_null)) {
            dag__nerr(l, v, "wrong-type", NULL, "'%s.%s' must be a string, got %s", field, k->str,
                      ynode_kind(v));
            continue;
        }
        size_t j;
        for (j = 0; j < *nkv; j++)
            if (!strcmp((*kv)[j].key, k->str))
                break;
        if (j == *nkv) {
            *kv = xrealloc(*kv, (*nkv + 1) * sizeof(**kv));
            (*kv)[j].key = xstrdup(k->str);
            (*kv)[j].value = NULL;
            (*nkv)++;
        }
        free((*kv)[j].value);
        (*kv)[j].value = xstrdup(v->str);
    }
}

int
dag__get_strlist(struct dag__loader *l, const struct ynode *n, const char *field, char ***out,
                 size_t *nout)
{
    if (n->type == YNODE_SCALAR && !n->is_null) {
        dag__nerr(l, n, "wrong-type", "write a list, e.g. [a, b]",
                  "'%s' must be a list, got a string", field);
        return -1;
    }
    if (dag__expect(l, n, YNODE_SEQ, field))
        return -1;
    char **v = xcalloc(n->n + 1, sizeof(*v));
    size_t k = 0;
    int bad = 0;
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *it = n->vals[i];
        if (it->type != YNODE_SCALAR || it->is_null) {
            dag__nerr(l, it, "wrong-type", NULL, "items of '%s' must be strings, got %s", field,
                      ynode_kind(it));
            bad = 1;
            continue;
        }
        v[k++] = xstrdup(it->str);
    }
    dag__strv_free(*out, *nout);
    *out = v;
    *nout = k;
    return bad ? -1 : 0;
}
