/* table.c - aligned text tables for the CLI's human output (see table.h).
 *
 * A struct table owns copies of its titles and cells until table_free;
 * widths are computed when it is printed.
 */
#include "table.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

struct table_cell {
    char *text;
    const char *color; /* static SGR string or NULL */
};

struct table_col {
    char *title;
    enum table_align align;
};

struct table {
    struct table_col *cols;
    size_t ncols, cols_cap;
    struct table_cell *cells; /* nrows * ncols, row-major */
    size_t nrows, cells_cap;
    size_t next; /* next cell of the current row */
};

struct table *
table_new(void)
{
    return xcalloc(1, sizeof(struct table));
}

void
table_free(struct table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->ncols; i++)
        free(t->cols[i].title);
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i].text);
    free(t->cols);
    free(t->cells);
    free(t);
}

void
table_add_column(struct table *t, const char *title, enum table_align align)
{
    if (t->nrows > 0)
        return;
    xgrow((void **)&t->cols, &t->cols_cap, t->ncols + 1, sizeof(*t->cols));
    t->cols[t->ncols].title = xstrdup(title);
    t->cols[t->ncols].align = align;
    t->ncols++;
}

void
table_add_row(struct table *t)
{
    size_t need = (t->nrows + 1) * t->ncols;
    xgrow((void **)&t->cells, &t->cells_cap, need ? need : 1, sizeof(*t->cells));
    memset(t->cells + t->nrows * t->ncols, 0, t->ncols * sizeof(*t->cells));
    t->nrows++;
    t->next = 0;
}

static void
table__put(struct table *t, char *text, const char *color)
{
    if (t->nrows == 0 || t->next >= t->ncols) {
        free(text);
        return;
    }
    struct table_cell *c = &t->cells[(t->nrows - 1) * t->ncols + t->next++];
    c->text = text;
    c->color = color;
}

void
table_cell(struct table *t, const char *text)
{
    table__put(t, text && *text ? xstrdup(text) : NULL, NULL);
}

void
table_cell_color(struct table *t, const char *text, const char *color)
{
    table__put(t, text && *text ? xstrdup(text) : NULL, color);
}

void
table_cellf(struct table *t, const char *fmt, ...)
{
    struct sb sb;
    va_list ap;
    sb_init(&sb);
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    char *s = sb_take(&sb);
    if (!*s) {
        free(s);
        s = NULL;
    }
    table__put(t, s, NULL);
}

size_t
table_rows(const struct table *t)
{
    return t->nrows;
}

/* Display width: UTF-8 characters (continuation bytes do not count). */
static size_t
table__width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

void
table_put_color(FILE *out, const char *text, const char *sgr, int color)
{
    if (color && sgr)
        fprintf(out, "\033[%sm%s\033[0m", sgr, text);
    else
        fputs(text, out);
}

static void
table__print_cell(FILE *out, const char *text, const char *color, size_t width,
                  enum table_align align, int last, int use_color)
{
    size_t w = table__width(text);
    size_t pad = width > w ? width - w : 0;
    if (align == TABLE_RIGHT)
        fprintf(out, "%*s", (int)pad, "");
    table_put_color(out, text, color, use_color);
    if (align == TABLE_LEFT && !last)
        fprintf(out, "%*s", (int)pad, "");
}

void
table_print(const struct table *t, FILE *out, int color)
{
    if (t->ncols == 0)
        return;
    size_t *widths = xcalloc(t->ncols, sizeof(*widths));
    for (size_t c = 0; c < t->ncols; c++)
        widths[c] = table__width(t->cols[c].title);
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c].text;
            size_t w = table__width(s ? s : "-");
            if (w > widths[c])
                widths[c] = w;
        }
    }
    for (size_t c = 0; c < t->ncols; c++) {
        if (c > 0)
            fputs("  ", out);
        table__print_cell(out, t->cols[c].title, color ? "1" : NULL, widths[c], t->cols[c].align,
                          c + 1 == t->ncols, color);
    }
    fputc('\n', out);
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const struct table_cell *cell = &t->cells[r * t->ncols + c];
            if (c > 0)
                fputs("  ", out);
            table__print_cell(out, cell->text ? cell->text : "-", cell->text ? cell->color : NULL,
                              widths[c], t->cols[c].align, c + 1 == t->ncols, color);
        }
        fputc('\n', out);
    }
    free(widths);
}

int
table_use_color(FILE *out)
{
    const char *no = getenv("NO_COLOR");
    if (no && *no)
        return 0;
    const char *term = getenv("TERM");
    if (term && strcmp(term, "dumb") == 0)
        return 0;
    return isatty(fileno(out));
}

const char *
table_state_color(const char *state)
{
    static const struct {
        const char *state;
        const char *sgr;
    } map[] = {
        {"alive", "32"},   {"cancelled", "31"},    {"failed", "31"},       {"leased", "36"},          {"lost", "31"},
        {"pending", "2"},  {"queued", "2"},        {"running", "36"},         {"skipped", "35"},
        {"success", "32"}, {"up_for_retry", "33"}, {"upstream_failed", "33"},
    };
    if (!state)
        return NULL;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i].state, state) == 0)
            return map[i].sgr;
    return NULL;
}
