/* tail.c - the last lines of an attempt's stderr (prefix: tail_).
 *
 * Owns a ring of the last TAIL_LINES complete lines (each at most
 * TAIL_LINE_MAX bytes) and the line being written. Feeding is O(bytes) and
 * allocates nothing: a line longer than TAIL_LINE_MAX keeps its start and
 * drops the rest until its newline. The byte bound (TAIL_BYTES) and the
 * UTF-8 repair are applied once, in tail_take.
 */
#include "tail.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "util.h"

struct tail__line {
    char buf[TAIL_LINE_MAX];
    size_t len;
};

struct tail {
    struct tail__line ring[TAIL_LINES];
    size_t head; /* where the next complete line goes */
    size_t n;    /* complete lines in the ring */
    struct tail__line cur;
    bool in_line; /* bytes came since the last newline */
};

struct tail *
tail_new(void)
{
    return xcalloc(1, sizeof(struct tail));
}

void
tail_free(struct tail *t)
{
    free(t);
}

static void
tail__push(struct tail *t)
{
    t->ring[t->head] = t->cur;
    t->head = (t->head + 1) % TAIL_LINES;
    if (t->n < TAIL_LINES)
        t->n++;
    t->cur.len = 0;
    t->in_line = false;
}

static void
tail__append(struct tail *t, const char *p, size_t n)
{
    size_t room = TAIL_LINE_MAX - t->cur.len;

    if (n > room)
        n = room;
    memcpy(t->cur.buf + t->cur.len, p, n);
    t->cur.len += n;
}

void
tail_feed(struct tail *t, const char *data, size_t len)
{
    const char *p = data, *end = data + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);

        tail__append(t, p, n);
        if (n)
            t->in_line = true;
        if (!nl)
            break;
        tail__push(t);
        p = nl + 1;
    }
}

/* Every byte that does not start a valid UTF-8 sequence (msg_utf8_valid's
 * rules, one sequence at a time) and every NUL becomes '?'. */
static void
tail__repair(char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;

        if (c == 0) {
            s[i++] = '?';
        } else if (c < 0x80) {
            i++;
        } else if (i + n <= len && msg_utf8_valid(s + i, n)) {
            i += n;
        } else {
            s[i++] = '?';
        }
    }
}

void
tail_take(struct tail *t, char ***out, size_t *n)
{
    const struct tail__line *lines[TAIL_LINES + 1];
    size_t count = 0, first = 0, bytes = 0;

    for (size_t i = 0; i < t->n; i++)
        lines[count++] = &t->ring[(t->head + TAIL_LINES - t->n + i) % TAIL_LINES];
    if (t->in_line)
        lines[count++] = &t->cur; /* a partial last line counts */
    while (count - first > TAIL_LINES)
        first++;
    for (size_t i = first; i < count; i++)
        bytes += lines[i]->len;
    while (bytes > TAIL_BYTES)
        bytes -= lines[first++]->len;

    *out = NULL;
    *n = 0;
    if (first < count) {
        char **v = xcalloc(count - first + 1, sizeof(*v));

        for (size_t i = first; i < count; i++) {
            char *s = xmalloc(lines[i]->len + 1);

            memcpy(s, lines[i]->buf, lines[i]->len);
            s[lines[i]->len] = '\0';
            tail__repair(s, lines[i]->len);
            v[i - first] = s;
        }
        *out = v;
        *n = count - first;
    }
    memset(t, 0, sizeof(*t));
}
