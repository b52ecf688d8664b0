/* util.h - allocation helpers and a growable string buffer (prefix: xs_, sb_). */
#ifndef CAIRN_UTIL_H
#define CAIRN_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Allocation that aborts on out-of-memory: used only where a failure could
 * not be handled more usefully than by stopping (small, bounded objects). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Grow *arr (of *cap elements of size elem) so that it holds at least need. */
void xgrow(void **arr, size_t *cap, size_t need, size_t elem);

struct sb {
    char *buf; /* always NUL-terminated once anything was appended */
    size_t len;
    size_t cap;
};

void sb_init(struct sb *sb);
void sb_free(struct sb *sb);
void sb_append(struct sb *sb, const char *s, size_t n);
void sb_puts(struct sb *sb, const char *s);
void sb_putc(struct sb *sb, char c);
void sb_printf(struct sb *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vprintf(struct sb *sb, const char *fmt, va_list ap);
/* Hand the buffer to the caller (never NULL; "" if empty) and reset sb. */
char *sb_take(struct sb *sb);

/* Levenshtein distance, capped: returns cap+1 as soon as it exceeds cap. */
size_t str_distance(const char *a, const char *b, size_t cap);

/* Monotonic and wall clocks. */
int64_t clock_mono_ms(void);
int64_t clock_wall_ms(void);

#endif
