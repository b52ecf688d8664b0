/* units.h - durations and sizes as users write them (prefix: units_).
 *
 * Durations: one or more <integer><unit> groups, unit in d h m s ms, e.g.
 * "30s", "10m", "2h", "1h30m", "1d", "500ms"; a bare "0" is zero. No sign,
 * no spaces, no repeated or out-of-order units (h before m before s).
 * Sizes: <integer>[unit], unit in K M G T (powers of 1000) or Ki Mi Gi Ti
 * (powers of 1024), optional trailing 'B' ("500MB"); a bare integer is
 * bytes ("100", also "100B"). Units are case-sensitive.
 *
 * Errors: CAIRN_EPARSE for text that does not follow the rules above,
 * CAIRN_ERANGE for a value that does not fit in an int64_t. The message is
 * written for end users and names the input, e.g.
 *   "invalid duration '5x': unknown unit 'x' (use ms, s, m, h, d)".
 * err may be NULL (or errlen 0) when the caller does not want the message; it
 * is always NUL-terminated otherwise, truncated to errlen. The input string is
 * borrowed and not retained.
 */
#ifndef CAIRN_UNITS_H
#define CAIRN_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* A buffer of this size always holds units_format_duration's output. */
#define UNITS_DURATION_BUFSZ 32

/* Return 0 and set *out, or CAIRN_EPARSE/CAIRN_ERANGE with a message.
 * *out is set only on success. */
int units_parse_duration(const char *s, int64_t *out_ms, char *err, size_t errlen);
int units_parse_size(const char *s, int64_t *out_bytes, char *err, size_t errlen);
/* "1h30m", "250ms", "0s", "1d2h": the largest units first, zero groups left
 * out. For ms >= 0 the output parses back (units_parse_duration) to the same
 * value. A negative ms is written with a leading '-' (for logs only; it does
 * not parse back). Output is truncated to len (always NUL-terminated when
 * len > 0); UNITS_DURATION_BUFSZ bytes are always enough. */
void units_format_duration(int64_t ms, char *buf, size_t len);
/* A size as users read it: "10MiB", "3GiB", "1536KiB" for a whole number of
 * KiB, MiB, GiB or TiB (the largest such unit), else "12345 bytes". Always
 * NUL-terminated when len > 0; UNITS_SIZE_BUFSZ bytes are always enough. */
#define UNITS_SIZE_BUFSZ 32
void units_format_size(int64_t bytes, char *buf, size_t len);

#endif
