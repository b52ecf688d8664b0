/* diag.h - diagnostics that say where: FILE:LINE:COL: severity: message.
 *
 * A struct diag_list collects every problem found in one pass, so a user sees
 * all errors of a file at once. Lines and columns are 1-based; 0 means
 * "the whole file".
 */
#ifndef CAIRN_DIAG_H
#define CAIRN_DIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum diag_severity { DIAG_ERROR, DIAG_WARNING };

struct diag {
    enum diag_severity severity;
    char *file;  /* owned */
    int line;
    int col;
    char *code;  /* owned; stable kind of error, e.g. "unknown-task" */
    char *msg;   /* owned */
    char *hint;  /* owned, may be NULL */
};

struct diag_list {
    struct diag *items;
    size_t n;
    size_t cap;
    size_t nerrors;
};

void diag_list_init(struct diag_list *dl);
void diag_list_free(struct diag_list *dl);

/* Append a diagnostic. file is copied; hint may be NULL. */
void diag_add(struct diag_list *dl, enum diag_severity sev, const char *file, int line,
              int col, const char *code, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

/* Sort by file, line, column (stable), so output reads top to bottom. */
void diag_sort(struct diag_list *dl);

/* "FILE:LINE:COL: error: message" lines, then "  hint: ..." lines. */
void diag_print(const struct diag_list *dl, FILE *out);

/* Append every diagnostic to a JSON array (a json_t*, passed as void* so this
 * header does not pull jansson into every user). */
void diag_to_json(const struct diag_list *dl, void *json_array);

#endif
