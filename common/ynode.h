/* ynode.h - YAML documents as trees that remember where each node was
 * (prefix: ynode_).
 *
 * Built on libyaml's event parser. Every node keeps its 1-based line and
 * column, so a validator can point at the exact node that is wrong.
 * Duplicate mapping keys are reported (at the second key) and the later
 * value is dropped. Aliases are expanded by copying the anchored node (with a
 * node budget against "billion laughs"). Merge keys work: "<<: *a" or
 * "<<: [*a, *b]" (or inline mappings) add the entries of those mappings that
 * the mapping does not write itself, at the place of "<<", the earlier
 * mapping winning; a plain "<<" key never reaches the tree (a quoted one is
 * an ordinary key). Merged entries are the anchored nodes, with their
 * positions.
 * Only the first document is used; a second one is an error.
 *
 * Two classic mistakes get a plain message instead of libyaml's: a tab in
 * indentation, and a template written without quotes ({{ ds }}, which YAML
 * reads as a mapping inside a mapping, or a syntax error when more follows
 * it): "templates must be quoted: "{{ ds }}"". A template read as a mapping
 * is replaced in the tree by a scalar holding its source text, so callers
 * do not report a second error about the same value.
 *
 * All nodes and strings live in one arena owned by struct ydoc: pointers
 * into the tree are valid until ydoc_free().
 */
#ifndef CAIRN_YNODE_H
#define CAIRN_YNODE_H

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"

enum ynode_type { YNODE_SCALAR, YNODE_SEQ, YNODE_MAP };

struct ynode {
    enum ynode_type type;
    int line;      /* 1-based */
    int col;       /* 1-based */
    bool quoted;   /* scalar written in quotes or as a block scalar */
    bool is_null;  /* plain scalar "", "~", "null", "Null", "NULL" */
    const char *str; /* scalar text, NUL-terminated (may contain NULs: len) */
    size_t len;
    struct ynode **keys; /* YNODE_MAP: keys[i] (scalars) -> vals[i] */
    struct ynode **vals; /* YNODE_MAP values; YNODE_SEQ items */
    size_t n;
};

struct ydoc;

/* Parse buf (len bytes). On success sets *root (NULL for an empty document)
 * and *out and returns 0; errors found along the way (duplicate keys) are
 * added to dl and parsing goes on. On a syntax error returns CAIRN_EPARSE
 * with the error in dl and sets nothing. file is used in diagnostics only. */
int ydoc_parse(struct ydoc **out, struct ynode **root, const char *buf, size_t len,
               const char *file, struct diag_list *dl);
void ydoc_free(struct ydoc *d);

/* Map lookup by key (linear; maps in DAG files are small, except `tasks`,
 * which callers iterate). Returns the value or NULL; *key_out (may be NULL)
 * gets the key node. */
struct ynode *ynode_get(const struct ynode *map, const char *key, struct ynode **key_out);

/* Human name of a node's kind for "expected X, got Y" messages:
 * "a string", "a list", "a mapping", "null". */
const char *ynode_kind(const struct ynode *n);

#endif
