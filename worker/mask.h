/* mask.h - secret values masked out of a task's output stream (prefix: mask_).
 *
 * A mask is built from a lease's secret values. Every value is replaced by
 * "***" in the bytes fed to it, and so are its standard base64 form (with
 * and without '=' padding) and its URL-encoded form (percent-encoding of
 * every byte but A-Z a-z 0-9 - . _ ~, with upper- and lower-case hex
 * digits, and with '+' for spaces), whenever these differ from the value.
 * A value split across two writes is still found: the last max-1 bytes
 * fed (max being the longest form) are held back until the next feed or
 * mask_flush, so the output lags the input by at most that many bytes;
 * when no form holds a newline (the usual case), everything up to the
 * last newline fed comes out at once, so whole lines are never held back
 * (stdout and stderr, masked apart, then interleave line by line).
 * Empty values mask nothing. One mask per stream (stdout, stderr), and one
 * more over the log the two make as they interleave, so a value written
 * half to each (both halves held back, then flushed side by side) is
 * masked too.
 */
#ifndef CAIRN_MASK_H
#define CAIRN_MASK_H

#include <stddef.h>

#include "util.h"

#define MASK_REPLACEMENT "***"

struct mask;

/* A mask of n values (each NUL-terminated; copied). *out is set;
 * allocation aborts on failure. n may be 0: then bytes pass unchanged. */
void mask_new(struct mask **out, const char *const *values, size_t n);
/* Wipe the held bytes and forms, and free. NULL is a no-op. */
void mask_free(struct mask *m);

/* Feed len bytes; append what can be let out, masked, to out. */
void mask_feed(struct mask *m, const char *data, size_t len, struct sb *out);
/* The end of the stream: append the held bytes, masked. */
void mask_flush(struct mask *m, struct sb *out);

/* Whether the mask has any value to look for. */
int mask_active(const struct mask *m);

#endif
