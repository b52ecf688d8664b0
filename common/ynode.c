#include "ynode.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "err.h"
#include "hmap.h"
#include "util.h"

#define YNODE_BUDGET 4000000 /* nodes per document, aliases included */
#define YNODE_MAX_DEPTH 256

struct arena_blk {
    struct arena_blk *next;
    size_t used, cap;
    char data[];
};

struct anchor {
    char *name;
    struct ynode *node;
};

struct ydoc {
    struct arena_blk *blk;
    struct anchor *anchors;
    size_t nanchors, capanchors;
    size_t nodes;
};

static void *
arena_alloc(struct ydoc *d, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (!d->blk || d->blk->used + n > d->blk->cap) {
        size_t cap = n > 65536 ? n : 65536;
        struct arena_blk *b = xmalloc(sizeof(*b) + cap);
        b->next = d->blk;
        b->used = 0;
        b->cap = cap;
        d->blk = b;
    }
    void *p = d->blk->data + d->blk->used;
    d->blk->used += n;
    return p;
}

static char *
arena_strndup(struct ydoc *d, const char *s, size_t n)
{
    char *p = arena_alloc(d, n + 1);
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void
ydoc_free(struct ydoc *d)
{
    if (!d)
        return;
    while (d->blk) {
        struct arena_blk *n = d->blk->next;
        free(d->blk);
        d->blk = n;
    }
    for (size_t i = 0; i < d->nanchors; i++)
        free(d->anchors[i].name);
    free(d->anchors);
    free(d);
}

/* A growable list of child pointers, kept in malloc memory while a
 * collection is open, copied into the arena when it closes. */
struct frame {
    struct ynode *node;
    struct ynode **keys, **vals;
    size_t n, cap;
    struct ynode *pending_key; /* map: key waiting for its value */
    char *anchor;
    struct hmap *keyset;       /* big maps: key -> index, for duplicate checks */
};

struct builder {
    struct ydoc *doc;
    const char *file;
    struct diag_list *dl;
    struct frame *stack;
    size_t depth, cap;
    struct ynode *root;
    int failed;
};

static struct ynode *
node_new(struct builder *b, enum ynode_type t, const yaml_mark_t *m)
{
    struct ynode *n = arena_alloc(b->doc, sizeof(*n));
    memset(n, 0, sizeof(*n));
    n->type = t;
    n->line = (int)m->line + 1;
    n->col = (int)m->column + 1;
    b->doc->nodes++;
    return n;
}

static struct ynode *
node_copy(struct builder *b, const struct ynode *src, int line, int col)
{
    if (b->doc->nodes >= YNODE_BUDGET)
        return NULL;
    struct ynode *n = arena_alloc(b->doc, sizeof(*n));
    *n = *src;
    n->line = line;
    n->col = col;
    b->doc->nodes++;
    if (src->n) {
        n->vals = arena_alloc(b->doc, src->n * sizeof(*n->vals));
        for (size_t i = 0; i < src->n; i++) {
            n->vals[i] = node_copy(b, src->vals[i], src->vals[i]->line, src->vals[i]->col);
            if (!n->vals[i])
                return NULL;
        }
        if (src->type == YNODE_MAP) {
            n->keys = arena_alloc(b->doc, src->n * sizeof(*n->keys));
            for (size_t i = 0; i < src->n; i++)
                n->keys[i] = src->keys[i];
        }
    }
    return n;
}

static void
anchor_add(struct builder *b, const char *name, struct ynode *n)
{
    struct ydoc *d = b->doc;
    /* later definitions shadow earlier ones, as YAML says */
    xgrow((void **)&d->anchors, &d->capanchors, d->nanchors + 1, sizeof(*d->anchors));
    d->anchors[d->nanchors].name = xstrdup(name);
    d->anchors[d->nanchors].node = n;
    d->nanchors++;
}

static struct ynode *
anchor_find(struct builder *b, const char *name)
{
    for (size_t i = b->doc->nanchors; i-- > 0;)
        if (strcmp(b->doc->anchors[i].name, name) == 0)
            return b->doc->anchors[i].node;
    return NULL;
}

static int
is_null_scalar(const char *s, size_t len, bool quoted)
{
    if (quoted)
        return 0;
    return len == 0 || (len == 1 && s[0] == '~') ||
           (len == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) ||
                         !memcmp(s, "NULL", 4)));
}

/* Attach a finished node to the collection on top of the stack. */
static void
attach(struct builder *b, struct ynode *n)
{
    if (b->depth == 0) {
        b->root = n;
        return;
    }
    struct frame *f = &b->stack[b->depth - 1];
    if (f->node->type == YNODE_SEQ) {
        xgrow((void **)&f->vals, &f->cap, f->n + 1, sizeof(*f->vals));
        f->vals[f->n++] = n;
        return;
    }
    if (!f->pending_key) {
        if (n->type != YNODE_SCALAR) {
            diag_add(b->dl, DIAG_ERROR, b->file, n->line, n->col, "yaml-key", NULL,
                     "mapping keys must be plain strings, not %s", ynode_kind(n));
            /* use an empty key so the value pairs up and is ignored below */
            n = node_new(b, YNODE_SCALAR, &(yaml_mark_t){0, (size_t)n->line - 1,
                                                          (size_t)n->col - 1});
            n->str = "";
            n->is_null = true;
        } else if (!n->quoted && n->len == 2 && memcmp(n->str, "<<", 2) == 0) {
            diag_add(b->dl, DIAG_ERROR, b->file, n->line, n->col, "yaml-merge",
                     "put shared task settings under `defaults:`",
                     "YAML merge keys ('<<') are not supported");
        }
        f->pending_key = n;
        return;
    }
    struct ynode *key = f->pending_key;
    f->pending_key = NULL;
    /* duplicate keys: a linear look for small maps, a hash for big ones
     * (a DAG's `tasks` may hold thousands) */
    size_t dup = SIZE_MAX;
    if (f->keyset) {
        size_t idx;
        if (hmap_get(f->keyset, key->str, &idx) && f->keys[idx]->len == key->len &&
            memcmp(f->keys[idx]->str, key->str, key->len) == 0)
            dup = idx;
    } else {
        for (size_t i = 0; i < f->n && dup == SIZE_MAX; i++)
            if (f->keys[i]->len == key->len && memcmp(f->keys[i]->str, key->str, key->len) == 0)
                dup = i;
    }
    if (dup != SIZE_MAX) {
        char hint[64];
        snprintf(hint, sizeof(hint), "first defined at line %d", f->keys[dup]->line);
        diag_add(b->dl, DIAG_ERROR, b->file, key->line, key->col, "duplicate-key", hint,
                 "duplicate key '%s'", key->str);
        return;
    }
    if (f->n + 1 > f->cap) {
        size_t cap = f->cap;
        xgrow((void **)&f->vals, &cap, f->n + 1, sizeof(*f->vals));
        f->keys = xrealloc(f->keys, cap * sizeof(*f->keys));
        f->cap = cap;
    }
    f->keys[f->n] = key;
    f->vals[f->n] = n;
    f->n++;
    if (!f->keyset && f->n > 32) {
        f->keyset = xcalloc(1, sizeof(*f->keyset));
        hmap_init(f->keyset);
        for (size_t i = 0; i < f->n; i++)
            hmap_put(f->keyset, f->keys[i]->str, i);
    } else if (f->keyset) {
        hmap_put(f->keyset, key->str, f->n - 1);
    }
}

static void
frame_push(struct builder *b, struct ynode *n, const char *anchor)
{
    xgrow((void **)&b->stack, &b->cap, b->depth + 1, sizeof(*b->stack));
    struct frame *f = &b->stack[b->depth++];
    memset(f, 0, sizeof(*f));
    f->node = n;
    f->anchor = anchor ? xstrdup(anchor) : NULL;
}

static struct ynode *
frame_pop(struct builder *b)
{
    struct frame *f = &b->stack[--b->depth];
    struct ynode *n = f->node;
    n->n = f->n;
    if (f->n) {
        n->vals = arena_alloc(b->doc, f->n * sizeof(*n->vals));
        memcpy(n->vals, f->vals, f->n * sizeof(*n->vals));
        if (n->type == YNODE_MAP) {
            n->keys = arena_alloc(b->doc, f->n * sizeof(*n->keys));
            memcpy(n->keys, f->keys, f->n * sizeof(*n->keys));
        }
    }
    if (f->anchor) {
        anchor_add(b, f->anchor, n);
        free(f->anchor);
    }
    if (f->keyset) {
        hmap_free(f->keyset);
        free(f->keyset);
    }
    free(f->keys);
    free(f->vals);
    return n;
}

static void
builder_cleanup(struct builder *b)
{
    while (b->depth) {
        struct frame *f = &b->stack[--b->depth];
        if (f->keyset) {
            hmap_free(f->keyset);
            free(f->keyset);
        }
        free(f->keys);
        free(f->vals);
        free(f->anchor);
    }
    free(b->stack);
}

static void
syntax_error(struct builder *b, const yaml_parser_t *p)
{
    const yaml_mark_t *m = &p->problem_mark;
    const char *what = p->problem ? p->problem : "malformed YAML";
    if (p->context) {
        diag_add(b->dl, DIAG_ERROR, b->file, (int)m->line + 1, (int)m->column + 1,
                 "yaml-syntax", NULL, "YAML syntax error: %s %s (line %d)", what, p->context,
                 (int)p->context_mark.line + 1);
    } else {
        diag_add(b->dl, DIAG_ERROR, b->file, (int)m->line + 1, (int)m->column + 1,
                 "yaml-syntax", NULL, "YAML syntax error: %s", what);
    }
}

int
ydoc_parse(struct ydoc **out, struct ynode **root, const char *buf, size_t len,
           const char *file, struct diag_list *dl)
{
    yaml_parser_t p;
    yaml_event_t ev;
    struct builder b;
    int done = 0, ndocs = 0, rc = 0;

    memset(&b, 0, sizeof(b));
    b.doc = xcalloc(1, sizeof(*b.doc));
    b.file = file;
    b.dl = dl;
    if (!yaml_parser_initialize(&p)) {
        ydoc_free(b.doc);
        return CAIRN_ENOMEM;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);

    while (!done) {
        if (!yaml_parser_parse(&p, &ev)) {
            syntax_error(&b, &p);
            rc = CAIRN_EPARSE;
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++ndocs > 1) {
                diag_add(dl, DIAG_ERROR, file, (int)ev.start_mark.line + 1,
                         (int)ev.start_mark.column + 1, "yaml-multidoc",
                         "put each DAG in a file of its own",
                         "a DAG file holds one YAML document; found a second one");
                rc = CAIRN_EPARSE;
                done = 1;
            }
            break;
        case YAML_SCALAR_EVENT: {
            struct ynode *n = node_new(&b, YNODE_SCALAR, &ev.start_mark);
            n->str = arena_strndup(b.doc, (const char *)ev.data.scalar.value,
                                   ev.data.scalar.length);
            n->len = ev.data.scalar.length;
            n->quoted = ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
            n->is_null = is_null_scalar(n->str, n->len, n->quoted);
            if (ev.data.scalar.anchor)
                anchor_add(&b, (const char *)ev.data.scalar.anchor, n);
            attach(&b, n);
            break;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            int is_seq = ev.type == YAML_SEQUENCE_START_EVENT;
            if (b.depth >= YNODE_MAX_DEPTH) {
                diag_add(dl, DIAG_ERROR, file, (int)ev.start_mark.line + 1,
                         (int)ev.start_mark.column + 1, "yaml-depth", NULL,
                         "YAML nested deeper than %d levels", YNODE_MAX_DEPTH);
                rc = CAIRN_EPARSE;
                done = 1;
                break;
            }
            struct ynode *n =
                node_new(&b, is_seq ? YNODE_SEQ : YNODE_MAP, &ev.start_mark);
            const yaml_char_t *anchor =
                is_seq ? ev.data.sequence_start.anchor : ev.data.mapping_start.anchor;
            frame_push(&b, n, (const char *)anchor);
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: {
            struct frame *f = &b.stack[b.depth - 1];
            if (f->pending_key) { /* cannot happen with libyaml; be safe */
                f->pending_key = NULL;
            }
            attach(&b, frame_pop(&b));
            break;
        }
        case YAML_ALIAS_EVENT: {
            struct ynode *a = anchor_find(&b, (const char *)ev.data.alias.anchor);
            struct ynode *n = NULL;
            if (!a) {
                diag_add(dl, DIAG_ERROR, file, (int)ev.start_mark.line + 1,
                         (int)ev.start_mark.column + 1, "yaml-alias", NULL,
                         "unknown alias '*%s'", ev.data.alias.anchor);
                rc = CAIRN_EPARSE;
                done = 1;
                break;
            }
            n = node_copy(&b, a, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1);
            if (!n) {
                diag_add(dl, DIAG_ERROR, file, (int)ev.start_mark.line + 1,
                         (int)ev.start_mark.column + 1, "yaml-too-large", NULL,
                         "document expands to more than %d nodes through aliases",
                         YNODE_BUDGET);
                rc = CAIRN_EPARSE;
                done = 1;
                break;
            }
            attach(&b, n);
            break;
        }
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    builder_cleanup(&b);
    if (rc) {
        ydoc_free(b.doc);
        return rc;
    }
    *root = b.root;
    *out = b.doc;
    return 0;
}

struct ynode *
ynode_get(const struct ynode *map, const char *key, struct ynode **key_out)
{
    if (!map || map->type != YNODE_MAP)
        return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < map->n; i++) {
        if (map->keys[i]->len == kl && memcmp(map->keys[i]->str, key, kl) == 0) {
            if (key_out)
                *key_out = map->keys[i];
            return map->vals[i];
        }
    }
    return NULL;
}

const char *
ynode_kind(const struct ynode *n)
{
    if (!n)
        return "nothing";
    switch (n->type) {
    case YNODE_SEQ:
        return "a list";
    case YNODE_MAP:
        return "a mapping";
    default:
        return n->is_null ? "null" : "a string";
    }
}
