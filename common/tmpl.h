/* tmpl.h - {{ name }} templates in commands and env (prefix: tmpl_).
 *
 * Known names: ds, ds_nodash, ts, data_interval_start, data_interval_end,
 * run_id, dag, task, params.NAME. Spaces inside the braces are optional.
 * "{{" without a closing "}}" is an error. Text outside {{ }} is copied
 * verbatim, single braces included; there is no other escape.
 *
 * Precisely: a template starts at each "{{" and ends at the first "}}" after
 * it. What lies between, less leading and trailing spaces and tabs, is the
 * name; it must be non-empty and made only of letters, digits, '_', '-' and
 * '.'. A name is either one of the fixed names above or "params." followed
 * by the name of a DAG parameter. Values are inserted as they are: a value
 * that itself contains "{{" is not expanded again.
 *
 * Errors (all CAIRN_EPARSE): "{{" with no "}}" after it and an empty
 * "{{ }}" are reported at the offset of the "{{"; a name with an invalid
 * character or an unknown name is reported at the offset of the name (the
 * first byte after "{{" and any spaces). Only the first problem is reported.
 * err and hint may be NULL (or have length 0); errpos may be NULL. All
 * strings passed in are borrowed for the duration of the call only.
 * Every function runs in time linear in the length of s (plus one parameter
 * look-up per params.NAME).
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

struct tmpl_ctx {
    const char *ds, *ds_nodash, *ts;
    const char *data_interval_start, *data_interval_end;
    const char *run_id, *dag, *task;
    /* value of params.NAME, or NULL if unknown */
    const char *(*param)(void *ud, const char *name);
    void *ud;
};

/* Render s into a malloc'd *out (the caller frees it). Returns CAIRN_EPARSE
 * (err filled) for a syntax error (as tmpl_check) or a name that is unknown
 * at render time: a NULL field of ctx, a NULL ctx->param, or ctx->param
 * returning NULL. *out is set only on success. ctx and its strings are
 * borrowed for the call. */
int tmpl_render(const char *s, const struct tmpl_ctx *ctx, char **out, char *err, size_t errlen);

#endif
