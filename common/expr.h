/* expr.h - `when:` conditions (prefix: expr_).
 *
 * Grammar:
 *   or   := and ('or' and)*
 *   and  := not ('and' not)*
 *   not  := 'not' not | cmp
 *   cmp  := prim (('=='|'!='|'<'|'<='|'>'|'>=') prim)?
 *   prim := NUMBER | STRING | 'true' | 'false' | REF | AGG | '(' or ')'
 *   REF  := IDENT '.' 'metrics' '.' IDENT | 'params' '.' IDENT
 *   AGG  := ('max'|'min'|'avg'|'sum'|'count'|'argmax') '(' IDENT '.' 'metrics' '.' IDENT ')'
 * An aggregate is over a mapped task's instances (count: how many have the
 * metric; argmax: the index of the largest); it is a number. Spaces may
 * separate its tokens (max ( t.metrics.x )); a word followed by '(' that is
 * not one of the six is an error ("unknown function"), and so is a param
 * inside the parentheses. Aggregates do not nest and do not count towards
 * EXPR_MAX_DEPTH.
 * STRING is '...' or "..." with backslash escapes for the quote and '\\'.
 * Numbers: decimal with optional fraction/exponent and leading '-'.
 * A value used as a condition must be boolean (comparison, and/or/not,
 * true/false); numbers compare numerically, strings lexically; comparing a
 * number with a string is an evaluation error, except that a param string
 * that parses fully as a number compares as that number.
 *
 * Details the grammar above leaves open:
 * - The parts of a reference are made of letters, digits, '_' and '-'. The
 *   first part starts with a letter or '_', or with a digit when the
 *   reference has the form TASK.metrics.NAME (task names may start with a
 *   digit: "2nd-stage.metrics.f1"). A reference is written without spaces.
 *   Keywords (and or not true false) are lowercase.
 * - NUMBER is '-'? DIGITS ('.' DIGITS)? ([eE] [+-]? DIGITS)?, e.g. 3, -0.5,
 *   1e-3; ".5" and "1." are errors. The same rule decides whether a param
 *   string "parses fully as a number".
 * - The escapes are \\, \' and \" (in either kind of quote); any other
 *   backslash is an error.
 * - Booleans compare only with == and !=. Two strings compare lexically even
 *   when both look like numbers. A chained comparison (a < b < c) is an error.
 * - 'and' and 'or' evaluate left to right and stop as soon as the result is
 *   known: a reference on the side not evaluated is not looked up, so it is
 *   not an error if it is missing. Operands of and/or/not must be booleans.
 * - Nesting (each '(' and each 'not') is limited to EXPR_MAX_DEPTH levels and
 *   the source to EXPR_MAX_LEN bytes, so hostile input cannot exhaust the
 *   stack; both are reported as parse errors.
 */
#ifndef CAIRN_EXPR_H
#define CAIRN_EXPR_H

#include <stdbool.h>
#include <stddef.h>

#define EXPR_MAX_DEPTH 100
#define EXPR_MAX_LEN 65536

struct expr;

/* Parse src. On error returns CAIRN_EPARSE, err ("expected ')' ...") and
 * *errpos (0-based byte offset). Sets *out only on success; the caller then
 * owns it and frees it with expr_free. src is not retained. err may be NULL
 * (or errlen 0), errpos may be NULL; on success err is "" and *errpos -1.
 * Errors point where the problem is: an unknown character at itself, a
 * missing value or ')' at the token found instead (the end of src if none),
 * a malformed reference at its first byte. */
int expr_parse(struct expr **out, const char *src, char *err, size_t errlen, int *errpos);
/* Free a parsed expression; NULL is a no-op. */
void expr_free(struct expr *e);

/* Visit each reference in source order. task is NULL for params.NAME.
 * The reference inside an aggregate is not visited (expr_foreach_agg does).
 * pos is the 0-based offset of the reference in src. A nonzero return from
 * cb stops the walk and is returned; otherwise returns 0. task and name are
 * owned by e and valid while e is. */
typedef int (*expr_ref_fn)(void *ud, const char *task, const char *name, int pos);
int expr_foreach_ref(const struct expr *e, expr_ref_fn cb, void *ud);

enum expr_type { EXPR_T_NUM, EXPR_T_STR, EXPR_T_BOOL };
struct expr_val {
    enum expr_type type;
    double num;
    const char *str; /* borrowed from the lookup's owner for the eval call */
    bool b;
};

/* Resolve a reference; return 0 and fill *out, or nonzero if missing.
 * task is NULL for params.NAME. *out starts zeroed; a string value must
 * stay valid until expr_eval returns. */
typedef int (*expr_lookup_fn)(void *ud, const char *task, const char *name, struct expr_val *out);

/* Evaluate. Returns 0 and *result, or CAIRN_ENOENT (a missing reference:
 * err names it, e.g. "metric 'accuracy' of task 'evaluate' is missing",
 * "param 'min_acc' is not set") or CAIRN_EINVAL (type error, e.g.
 * "condition must be true or false, got a number") with err filled.
 * *result is set only on success; err may be NULL. */
int expr_eval(const struct expr *e, expr_lookup_fn lookup, void *ud, bool *result, char *err,
              size_t errlen);

/* Aggregates: visit each in source order (fn is "max", "min", "avg", "sum",
 * "count" or "argmax"; pos as for expr_foreach_ref, at the function's name;
 * fn, task and name are owned by e), and evaluate with agg resolving them
 * (0 and *out, a number; nonzero when the task has no instance with that
 * metric: CAIRN_ENOENT "no instance of task 'train' has metric 'accuracy'").
 * expr_eval is expr_eval_agg with agg NULL: an aggregate is then an
 * evaluation error (CAIRN_EINVAL). Short-circuiting applies to aggregates as
 * to references: one on a side not evaluated is not resolved. */
typedef int (*expr_agg_ref_fn)(void *ud, const char *fn, const char *task, const char *name,
                               int pos);
int expr_foreach_agg(const struct expr *e, expr_agg_ref_fn cb, void *ud);
typedef int (*expr_agg_fn)(void *ud, const char *fn, const char *task, const char *name,
                           double *out);
int expr_eval_agg(const struct expr *e, expr_lookup_fn lookup, expr_agg_fn agg, void *ud,
                  bool *result, char *err, size_t errlen);

#endif
