/* dag_int.h - what the files of the DAG module share among themselves
 * (prefix: dag__). Not for use outside common/dag*.c: the public interface
 * is dag.h.
 *
 * Loading a file is one pass of a struct dag__loader over the node tree of
 * ynode.h:
 *
 *   dag_load.c    entry points, DAG-level fields, the order of the passes
 *   dag_value.c   typed readers of YAML nodes that report what is wrong
 *   dag_task.c    task fields, `defaults:`, building and freeing a task
 *   dag_params.c  `params:` and per-run overrides
 *   dag_event.c   `trigger:`: the events that create runs
 *   dag_graph.c   `needs`, cycles, topological order, downstream lists,
 *                 ancestry, `inputs`
 *   dag_map.c     fan-out: `matrix`, `map`, `max_parallel`, what a mapped
 *                 task changes for the others, instance names
 *   dag_refs.c    names inside strings: templates and `when` references
 *   dag_render.c  what a run needs from a loaded DAG (dag.h's run functions)
 *
 * Every diagnostic goes through dag__err()/dag__nerr(), which honour
 * loader.quiet. Nodes (struct ynode) are borrowed from the document being
 * loaded and valid until the loader finishes; strings copied into the model
 * are malloc'd and owned by the struct dag.
 */
#ifndef CAIRN_DAG_INT_H
#define CAIRN_DAG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dag.h"
#include "hmap.h"
#include "ynode.h"

struct sb;

struct dag__loader {
    const char *file;
    struct diag_list *dl;
    struct dag *d;
    struct hmap tasks;      /* name -> index; keys borrowed from d->tasks[i].name */
    struct ynode *defaults; /* the `defaults:` mapping, or NULL */
    int quiet;              /* parsing inherited defaults: errors already reported */
    int *visit;             /* scratch for ancestor searches */
    /* Tasks whose upstreams are not all known: a `needs` item did not
     * resolve (reported there), here or further up. Their "not upstream"
     * checks are skipped, since the missing edge may be the one they miss.
     * One per task, allocated with the tasks. */
    unsigned char *incomplete;
    /* Names of tasks rejected whole (a bad name, not a mapping): reported
     * once, then not "unknown" where other tasks name them. Keys borrowed
     * from the document. */
    struct hmap broken;
    /* Every error reported, as "line:col:code:message" (owned strings):
     * a node reached twice (an alias, a merge key) is reported once. */
    struct hmap said;
    char **said_keys;
    size_t nsaid, capsaid;
    int when_default_reported;
    int stamp;
    int cyclic;                 /* the graph has a cycle (reported): no ancestry checks */
    struct dag__task_src *srcs; /* one per task (d->tasks), for checks across tasks */
};

/* Nodes of a task (or of `defaults:`) kept for the checks that need the
 * whole DAG: dependencies, inputs, templates, `when`. */
struct dag__task_src {
    const struct ynode *map;
    const struct ynode *needs;        /* seq */
    const struct ynode *inputs;       /* map */
    const struct ynode *when;         /* scalar */
    const struct ynode *command;      /* seq */
    const struct ynode *env;          /* map: only the task's own */
    const struct ynode *metrics_keys; /* seq */
    const struct ynode *publish;      /* seq */
    const struct ynode *map_val;      /* `map:`'s value of from/zip (scalar), checked later */
    const struct ynode *max_parallel; /* the value, checked once the graph is known */
    const struct ynode *gpu_type;     /* the task's own resources.gpu_type (not a default's) */
    int when_inherited, command_inherited, inputs_inherited, needs_inherited;
    /* `map`/`matrix` was wrong (reported): whether the task is mapped is
     * unknown, so checks that depend on it are left out */
    int map_bad;
    /* a matrix: its keys (malloc'd, freed by dag__src_fini) and how many of
     * its matrix_items combinations have each */
    char **matrix_keys;
    size_t *matrix_key_items;
    size_t nmatrix_keys, matrix_items;
};

/* --- dag_value.c: diagnostics and typed readers --- */

/* Report an error at line:col unless l->quiet. hint may be NULL. */
void dag__err(struct dag__loader *l, int line, int col, const char *code, const char *hint,
              const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* The same at a node's position. */
void dag__nerr(struct dag__loader *l, const struct ynode *n, const char *code, const char *hint,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Position of byte `off` inside a scalar, for errors inside a string. */
void dag__scalar_pos(const struct ynode *n, int off, int *line, int *col);

/* "did you mean 'x'?" (malloc'd) from cands, or NULL. cands is
 * NULL-terminated when ncands is 0, else ncands long. */
char *dag__suggest(const char *word, const char *const *cands, size_t ncands);
/* The same over the names of the tasks loaded so far. */
char *dag__suggest_task(struct dag__loader *l, const char *word);

/* An error for every key of map that is not in known (NULL-terminated);
 * where names the mapping in the message ("task", "resources"). With
 * extensions, keys starting with "x-" are let through (a home for anchors,
 * as Compose's extension fields). */
void dag__check_keys(struct dag__loader *l, const struct ynode *map, const char *const *known,
                     const char *where, int extensions);

/* 0 if n is of type t (a non-null scalar for YNODE_SCALAR), else an error
 * naming field and -1. */
int dag__expect(struct dag__loader *l, const struct ynode *n, enum ynode_type t, const char *field);

/* Typed readers: 0 and *out set, or -1 with the error reported. get_str
 * replaces (frees) a previous *out. */
int dag__get_str(struct dag__loader *l, const struct ynode *n, const char *field, char **out);
int dag__get_bool(struct dag__loader *l, const struct ynode *n, const char *field, bool *out);
int dag__get_int(struct dag__loader *l, const struct ynode *n, const char *field, long long lo,
                 long long hi, long long *out);
int dag__get_number(struct dag__loader *l, const struct ynode *n, const char *field, double lo,
                    double *out);
int dag__get_duration(struct dag__loader *l, const struct ynode *n, const char *field,
                      int64_t *out);
int dag__get_size(struct dag__loader *l, const struct ynode *n, const char *field, int64_t *out);
/* A scalar as JSON into out: unquoted numbers (normalised to JSON's
 * grammar: "+1" -> 1, ".5" -> 0.5) and true/false as themselves, anything
 * else as a string. 0, or -1 with an error naming `what` for null, a
 * collection or a NUL byte. */
int dag__scalar_json(struct dag__loader *l, const struct ynode *n, const char *what,
                     struct sb *out);
/* n bytes of s as a JSON string (quotes included). */
void dag__json_str(struct sb *out, const char *s, size_t n);

/* A list of strings: replaces *out and *nout (a NULL-terminated malloc'd array)
 * with the items that are strings; -1 if any item was not. */
int dag__get_strlist(struct dag__loader *l, const struct ynode *n, const char *field, char ***out,
                     size_t *nout);
/* Merge a mapping of scalars into *kv (later wins); env_names checks the
 * keys as environment variable names. */
void dag__get_kv_map(struct dag__loader *l, const struct ynode *n, const char *field,
                     struct dag_kv **kv, size_t *nkv, int env_names);

/* A decimal number as YAML users write it (no hex, inf or nan). */
int dag__parse_number(const char *s, double *out);

/* Name rules: DAG and task names ([a-z0-9_-], upper case if allow_upper),
 * identifiers ([A-Za-z_][A-Za-z0-9_]*), plain file names. 1 if valid. */
int dag__valid_name(const char *s, int allow_upper);
int dag__valid_ident(const char *s);
int dag__valid_filename(const char *s);

void dag__strv_free(char **v, size_t n);
void dag__kv_free(struct dag_kv *kv, size_t n);
int dag__kv_cmp(const void *a, const void *b);

/* --- dag_task.c: task fields ------------------------------------------ */

/* Is name one of the keys of a task (command, needs, ...)? */
int dag__is_task_key(const char *name);
void dag__task_init(struct dag_task *t);
/* Free what t owns (not t itself). */
void dag__task_fini(struct dag_task *t);
/* Fill a task from its mapping, with `defaults:` (l->defaults) under it;
 * is_defaults checks the `defaults:` mapping itself. src is filled with the
 * nodes the whole-DAG checks need. */
void dag__parse_task(struct dag__loader *l, const struct ynode *map, struct dag_task *t,
                     struct dag__task_src *src, int is_defaults);
/* Free what src owns (not the nodes, which are the document's). */
void dag__src_fini(struct dag__task_src *src);

/* --- dag_resources.c: `resources` ------------------------------------- */

/* Apply a `resources:` mapping to t (key by key: a key it does not set
 * keeps what defaults gave); inherited: n is `defaults:`'s. */
void dag__parse_resources(struct dag__loader *l, const struct ynode *n, struct dag_task *t,
                          struct dag__task_src *src, int inherited);
/* The checks of the merged result (a task's own gpu_type needs gpus). */
void dag__check_resources(struct dag__loader *l, const struct dag_task *t,
                          const struct dag__task_src *src);

/* --- dag_params.c ----------------------------------------------------- */

void dag__parse_params(struct dag__loader *l, const struct ynode *n);

/* --- dag_event.c: `trigger:` ---------------------------------------- */

/* Read `trigger:` into d->conds (after `params:`: it declares the params
 * events give a run that the file did not). */
void dag__parse_trigger(struct dag__loader *l, const struct ynode *n);
void dag__conds_free(struct dag_event_cond *c, size_t n);

/* --- dag_graph.c: the graph ------------------------------------------- */

/* Resolve task ti's `needs` to indices (unknown, self, repeated: errors).
 * An unknown name makes the task incomplete. */
void dag__resolve_needs(struct dag__loader *l, size_t ti, const struct dag__task_src *src);
/* Downstream lists and d->topo, and incompleteness passed downstream; on a
 * cycle an error naming its tasks and -1. srcs has one entry per task. */
int dag__order_tasks(struct dag__loader *l, struct dag__task_src *srcs);
/* Has a reference to the unknown task name from the task of src been
 * reported already: the name is in the task's own `needs` (which reported
 * it) or names a task rejected whole? Then it is not reported again. */
int dag__unknown_reported(const struct dag__loader *l, const struct dag__task_src *src,
                          const char *name);
/* Is task anc an ancestor of task t? Needs l->visit (ntasks ints). */
int dag__is_ancestor(struct dag__loader *l, size_t anc, size_t t);
/* Resolve task ti's `inputs` against its ancestors' outputs. */
void dag__resolve_inputs(struct dag__loader *l, size_t ti, const struct dag__task_src *src);

/* --- dag_map.c: fan-out ---------------------------------------------- */

/* Is name a fan-out key (map, matrix, max_parallel)? They are never taken
 * from `defaults:`. */
int dag__is_fanout_key(const char *name);
/* Read a task's `matrix` (expanded here), `map` and `max_parallel`; in
 * `defaults:` (t NULL) each of them is an error. */
void dag__parse_fanout(struct dag__loader *l, const struct ynode *map, struct dag_task *t,
                       struct dag__task_src *src);
/* The checks that need the graph: `map: {from|zip}` against `needs`,
 * `max_parallel` and `publish` against whether the task is mapped. Run in
 * topological order, so an upstream's map_bad is known. */
void dag__check_fanout(struct dag__loader *l, size_t ti, struct dag__task_src *src);
/* Task ti is mapped; or, with its map wrong, it may be (no error then). */
int dag__mapped(const struct dag__loader *l, size_t ti);
int dag__maybe_mapped(const struct dag__loader *l, size_t ti);
/* Does task ti zip task ui (map: {zip: ui})? */
int dag__zips(const struct dag__loader *l, size_t ti, size_t ui);
void dag__map_fini(struct dag_map *m);

/* --- dag_notify.c: `notify:` and `deadline:` ---------------------------- */

/* Read a `notify:` list into *out (*nout entries); self is the task it
 * belongs to, or -1 for the DAG's. */
void dag__parse_notify(struct dag__loader *l, const struct ynode *n, struct dag_notify **out,
                       size_t *nout, long self);
/* Read a `deadline:` (task_level: after_start only). */
void dag__parse_deadline(struct dag__loader *l, const struct ynode *n, struct dag_deadline *out,
                         int task_level);
/* Once every task is known: the metric tasks of every entry. */
void dag__resolve_notify(struct dag__loader *l);
void dag__notify_free(struct dag_notify *v, size_t n);

/* --- dag_refs.c: names inside strings --------------------------------- */

/* Parse task ti's `when` and check what it refers to. */
void dag__check_when(struct dag__loader *l, size_t ti, const struct dag__task_src *src);
/* Check the {{ }} names of one scalar; what names the field ("command").
 * ti is the task the string belongs to, or (size_t)-1 for `defaults:`. */
void dag__check_template(struct dag__loader *l, size_t ti, const struct dag__task_src *src,
                         const struct ynode *n, const char *what);
/* The same for task ti's own command items and env values. */
void dag__check_templates(struct dag__loader *l, size_t ti, const struct dag__task_src *src);

#endif
