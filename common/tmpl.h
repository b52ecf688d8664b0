/* tmpl.h - {{ name }} templates in commands and env (prefix: tmpl_).
 *
 * Known names: ds, ds_nodash, ts, data_interval_start, data_interval_end,
 * run_id, dag, task, params.NAME; in a mapped task (see tmpl_scope) also
 * item, item.KEY (item.KEY.INNER ...) and map_index; and the aggregates
 * max, min, avg, sum, count and argmax written FN(TASK.metrics.NAME).
 * Spaces inside the braces are optional. A name may be followed by the one
 * filter, "| shquote" ({{ params.x | shquote }}): the value is then written
 * single-quoted for sh, each ' inside as '\'' (an unknown filter is an
 * error at the filter). "{{" without a closing "}}" is an
 * error. Text outside {{ }} is copied verbatim, single braces included;
 * there is no other escape.
 *
 * Precisely: a template starts at each "{{" and ends at the first "}}" after
 * it. What lies between, less leading and trailing spaces and tabs, is the
 * name; it must be non-empty and made only of letters, digits, '_', '-' and
 * '.', or be an aggregate: a function name (letters, digits, '_'), '(', a
 * reference TASK.metrics.NAME, ')', with spaces and tabs allowed before the
 * '(' and around the reference. A name is either one of the fixed names
 * above, "params." followed by the name of a DAG parameter, an item name or
 * an aggregate. Values are inserted as they are: a value that itself
 * contains "{{" is not expanded again.
 *
 * Errors (all CAIRN_EPARSE): "{{" with no "}}" after it and an empty
 * "{{ }}" are reported at the offset of the "{{"; a name with an invalid
 * character or an unknown name is reported at the offset of the name (the
 * first byte after "{{" and any spaces); an item name outside a mapped task
 * at the name; what is wrong inside an aggregate at its reference (an
 * unknown function at the name). Only the first problem is reported.
 * err and hint may be NULL (or have length 0); errpos may be NULL. All
 * strings passed in are borrowed for the duration of the call only.
 * Every function runs in time linear in the length of s (plus one parameter
 * look-up per params.NAME, and one pass over an item's JSON per item name).
 */
#ifndef CAIRN_TMPL_H
#define CAIRN_TMPL_H

#include <stdbool.h>
#include <stddef.h>

/* Does a parameter of that name exist? name is the part after "params.". */
typedef bool (*tmpl_param_fn)(void *ud, const char *name);

/* Check every {{ }} in s. Returns 0 if all are known, else CAIRN_EPARSE with
 * err ("unknown template name 'dss'") and *errpos = 0-based byte offset of
 * the name (or of the "{{" for a syntax error). A hint (did you mean) is
 * written to hint (may be NULL / empty when none): "did you mean 'ds'?".
 * has_param may be NULL: then every "params.NAME" is accepted. Since
 * has_param can only answer yes or no, no hint is offered for a misspelt
 * parameter name; use tmpl_check_params for that. On success err and hint
 * are set to "" and *errpos to -1. */
int tmpl_check(const char *s, tmpl_param_fn has_param, void *ud, char *err, size_t errlen,
               int *errpos, char *hint, size_t hintlen);

/* The name of parameter number i (counting from 0), or NULL when i is past
 * the last one. The string is borrowed until the check call returns. */
typedef const char *(*tmpl_param_at_fn)(void *ud, size_t i);

/* As tmpl_check, but the caller lists its parameters through param_at (NULL
 * means the DAG has no parameters), which lets a misspelt parameter get a
 * hint too: "{{ params.min_acurracy }}" -> "did you mean
 * 'params.min_accuracy'?". Each params.NAME costs one pass over the list. */
int tmpl_check_params(const char *s, tmpl_param_at_fn param_at, void *ud, char *err, size_t errlen,
                      int *errpos, char *hint, size_t hintlen);

/* What a string may use besides the fixed names, for tmpl_check_scope. ud
 * is passed to every callback. */
struct tmpl_scope {
    tmpl_param_at_fn param_at; /* the parameters, as for tmpl_check_params */
    void *ud;
    /* item, item.KEY and map_index are known (the task is mapped) */
    bool mapped;
    /* In a mapped task, may item.PATH (path: what follows "item.") be used?
     * 0 if so, else nonzero with err and hint (either may be NULL) filled.
     * NULL: every path is accepted. */
    int (*item)(void *ud, const char *path, char *err, size_t errlen, char *hint,
                size_t hintlen);
    /* May FN(TASK.metrics.NAME) be used? 0 if so, else nonzero with err and
     * hint filled ("task 'x' is not mapped"). NULL: every aggregate is an
     * error ("not available here"). */
    int (*agg)(void *ud, const char *fn, const char *task, const char *metric, char *err,
               size_t errlen, char *hint, size_t hintlen);
    /* hint for an item name in a task that is not mapped; NULL: a default */
    const char *unmapped_hint;
};

/* As tmpl_check_params, within a scope: item names are errors unless
 * scope->mapped, aggregates unless scope->agg accepts them. tmpl_check and
 * tmpl_check_params are this with a scope that is not mapped and has no
 * aggregates. */
int tmpl_check_scope(const char *s, const struct tmpl_scope *scope, char *err, size_t errlen,
                     int *errpos, char *hint, size_t hintlen);

struct tmpl_ctx {
    const char *ds, *ds_nodash, *ts;
    const char *data_interval_start, *data_interval_end;
    const char *run_id, *dag, *task;
    /* value of params.NAME, or NULL if unknown */
    const char *(*param)(void *ud, const char *name);
    void *ud;
    /* A mapped task's instance: its item as JSON text, and its index. NULL:
     * not an instance, item names have no value. {{ item }} writes a string
     * as its text (escapes decoded), every other value as compact JSON with
     * numbers spelt as in item_json (except a fraction or exponent of more
     * than 15 significant digits: its shortest exact form, so 0.1 written by
     * a JSON library as 0.10000000000000001 is 0.1); {{ item.A.B }} a member
     * the same way
     * (an error if a part is missing or not an object); {{ map_index }} the
     * index in decimal. */
    const char *item_json;
    long map_index;
    /* An aggregate's value: 0 and *out, nonzero if there is none. NULL: no
     * aggregate has a value. Written as an integer for argmax and count and
     * for whole numbers, else as the shortest %g that reads back exactly. */
    int (*aggregate)(void *ud, const char *fn, const char *task, const char *metric,
                     double *out);
    void *aggregate_ud;
    /* Item names without item_json and aggregates without aggregate are
     * copied as written instead of failing (previews: `cairn render`). */
    bool keep_unresolved;
};

/* Render s into a malloc'd *out (the caller frees it). Returns CAIRN_EPARSE
 * (err filled) for a syntax error (as tmpl_check) or a name that is unknown
 * at render time: a NULL field of ctx, a NULL ctx->param, ctx->param
 * returning NULL, an item name or aggregate without a value (see
 * keep_unresolved), item_json that is not JSON or lacks the key. *out is
 * set only on success. ctx and its strings are borrowed for the call. */
int tmpl_render(const char *s, const struct tmpl_ctx *ctx, char **out, char *err, size_t errlen);

/* n bytes of s single-quoted for sh (what | shquote writes) appended to out. */
struct sb;
void tmpl_shquote(struct sb *out, const char *s, size_t n);

/* The items of a mapped task's instances: each element of the JSON array
 * json (a matrix's items_json, a list param's value, the list a `from`
 * output holds), as the text of its JSON (len bytes at item, not
 * NUL-terminated, spelt as in json) for tmpl_ctx.item_json. cb's index
 * counts from 0; a nonzero return stops the walk and is returned. Returns
 * 0, or CAIRN_EPARSE (cb never called) when json is not one JSON array
 * (nesting is limited to 64 levels). Items may also be split with a JSON
 * library: numbers written with 17 digits render as their shortest form
 * (see tmpl_ctx). */
typedef int (*tmpl_item_fn)(void *ud, size_t index, const char *item, size_t len);
int tmpl_items_foreach(const char *json, tmpl_item_fn cb, void *ud);

#endif
