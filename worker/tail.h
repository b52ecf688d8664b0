/* tail.h - the last lines of an attempt's stderr (prefix: tail_).
 *
 * A RESULT carries the end of what the task wrote to stderr (msg.h's
 * stderr_tail), so a failure can be read without fetching the log. The
 * attempt feeds every stderr chunk here as it arrives (stdout never: the
 * container module reads the two on separate pipes); what is kept is
 * bounded whatever the task writes: the last TAIL_LINES lines, each cut at
 * TAIL_LINE_MAX bytes (the rest of a longer line is dropped), at most
 * TAIL_BYTES in all (older lines go first). A last line without its
 * newline counts.
 *
 * A struct tail owns its memory; tail_free(NULL) is a no-op. One thread at
 * a time (the loop's, in the worker).
 */
#ifndef CAIRN_TAIL_H
#define CAIRN_TAIL_H

#include <stddef.h>

#define TAIL_LINES 20
#define TAIL_BYTES 4096
#define TAIL_LINE_MAX 512

struct tail;

/* A new, empty tail (allocation aborts on failure). */
struct tail *tail_new(void);
void tail_free(struct tail *t);

/* Take len bytes of the stream (data is borrowed for the call). */
void tail_feed(struct tail *t, const char *data, size_t len);

/* The lines kept, oldest first, without their newline, as a NULL-terminated
 * array of malloc'd strings (*out) and its count (*n), both set always
 * (*out NULL and *n 0 when nothing was written). Each line is sendable
 * UTF-8: a NUL and every byte that is not part of a valid UTF-8 sequence
 * (a character cut at TAIL_LINE_MAX too) is '?'. t is emptied. */
void tail_take(struct tail *t, char ***out, size_t *n);

#endif
