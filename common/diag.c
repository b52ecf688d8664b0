#include "diag.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void
diag_list_init(struct diag_list *dl)
{
    memset(dl, 0, sizeof(*dl));
}

void
diag_list_free(struct diag_list *dl)
{
    for (size_t i = 0; i < dl->n; i++) {
        free(dl->items[i].file);
        free(dl->items[i].code);
        free(dl->items[i].msg);
        free(dl->items[i].hint);
    }
    free(dl->items);
    diag_list_init(dl);
}

void
diag_add(struct diag_list *dl, enum diag_severity sev, const char *file, int line, int col,
         const char *code, const char *hint, const char *fmt, ...)
{
    xgrow((void **)&dl->items, &dl->cap, dl->n + 1, sizeof(*dl->items));
    struct diag *d = &dl->items[dl->n++];
    struct sb sb;
    va_list ap;

    d->severity = sev;
    d->file = xstrdup(file ? file : "<input>");
    d->line = line;
    d->col = col;
    d->code = xstrdup(code ? code : "error");
    d->hint = hint ? xstrdup(hint) : NULL;
    sb_init(&sb);
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    d->msg = sb_take(&sb);
    if (sev == DIAG_ERROR)
        dl->nerrors++;
}

static int
diag_cmp(const void *pa, const void *pb)
{
    const struct diag *a = pa, *b = pb;
    int c = strcmp(a->file, b->file);
    if (c)
        return c;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    if (a->col != b->col)
        return a->col < b->col ? -1 : 1;
    return 0;
}

void
diag_sort(struct diag_list *dl)
{
    /* insertion sort keeps equal positions in the order they were found */
    for (size_t i = 1; i < dl->n; i++) {
        struct diag tmp = dl->items[i];
        size_t j = i;
        while (j > 0 && diag_cmp(&dl->items[j - 1], &tmp) > 0) {
            dl->items[j] = dl->items[j - 1];
            j--;
        }
        dl->items[j] = tmp;
    }
}

void
diag_print(const struct diag_list *dl, FILE *out)
{
    for (size_t i = 0; i < dl->n; i++) {
        const struct diag *d = &dl->items[i];
        const char *sev = d->severity == DIAG_ERROR ? "error" : "warning";
        if (d->line > 0)
            fprintf(out, "%s:%d:%d: %s: %s\n", d->file, d->line, d->col, sev, d->msg);
        else
            fprintf(out, "%s: %s: %s\n", d->file, sev, d->msg);
        if (d->hint)
            fprintf(out, "  hint: %s\n", d->hint);
    }
}

void
diag_to_json(const struct diag_list *dl, void *json_array)
{
    json_t *arr = json_array;
    for (size_t i = 0; i < dl->n; i++) {
        const struct diag *d = &dl->items[i];
        json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:s, s:s}", "severity",
                              d->severity == DIAG_ERROR ? "error" : "warning", "file", d->file,
                              "line", d->line, "column", d->col, "code", d->code, "message",
                              d->msg);
        if (!o)
            continue;
        if (d->hint)
            json_object_set_new(o, "hint", json_string(d->hint));
        json_array_append_new(arr, o);
    }
}
