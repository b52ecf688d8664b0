/* table.h - aligned text tables for the CLI's human output (prefix: table_).
 *
 * Build a table column by column, then row by row, then print it:
 *
 *     struct table *t = table_new();
 *     table_add_column(t, "TASK", TABLE_LEFT);
 *     table_add_column(t, "ATTEMPTS", TABLE_RIGHT);
 *     table_add_row(t);
 *     table_cell(t, "train");
 *     table_cellf(t, "%d/%d", 2, 3);
 *     table_print(t, stdout, table_use_color(stdout));
 *     table_free(t);
 *
 * Columns are separated by two spaces; widths count UTF-8 characters, not
 * bytes. Empty or missing cells print as "-". The last column is not padded.
 * Allocation failures abort (see util.h).
 */
#ifndef CAIRN_TABLE_H
#define CAIRN_TABLE_H

#include <stdio.h>

enum table_align {
    TABLE_LEFT,
    TABLE_RIGHT,
};

struct table;

struct table *table_new(void);
/* table may be NULL. */
void table_free(struct table *t);

/* Columns must all be added before the first row. title is copied. */
void table_add_column(struct table *t, const char *title, enum table_align align);

/* Start a new row; the cells that follow fill it from the left. Cells beyond
 * the number of columns are ignored. */
void table_add_row(struct table *t);

/* Append a cell to the current row (text copied; NULL or "" prints "-"). */
void table_cell(struct table *t, const char *text);
void table_cellf(struct table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append a cell printed in an SGR color ("32" is green; see table_state_color)
 * when table_print is asked for color. color may be NULL (no color). */
void table_cell_color(struct table *t, const char *text, const char *color);

/* Number of rows added so far. */
size_t table_rows(const struct table *t);

/* Print the header and the rows; color nonzero wraps colored cells in ANSI
 * escape sequences. */
void table_print(const struct table *t, FILE *out, int color);

/* Whether to use color on out: it is a terminal, NO_COLOR is unset or empty
 * and TERM is not "dumb". */
int table_use_color(FILE *out);

/* The SGR color for a run, task or worker state ("success", "failed",
 * "running", "alive", ...), or NULL for none. Static string. */
const char *table_state_color(const char *state);

/* Write text to out in color (when color is nonzero and sgr not NULL). */
void table_put_color(FILE *out, const char *text, const char *sgr, int color);

#endif
