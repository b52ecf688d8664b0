#include "units.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "err.h"

/* How much of the user's input an error message repeats. */
#define UNITS__ECHO_MAX 40

struct units__unit {
    const char *name;
    int64_t factor;
};

/* Largest first: the order groups must appear in. */
static const struct units__unit units__dur[] = {
    {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1},
};
#define UNITS__NDUR (sizeof(units__dur) / sizeof(units__dur[0]))
#define UNITS__DUR_LIST "ms, s, m, h, d"

#define UNITS__K INT64_C(1000)
#define UNITS__M (UNITS__K * UNITS__K)
#define UNITS__G (UNITS__M * UNITS__K)
#define UNITS__T (UNITS__G * UNITS__K)
#define UNITS__KI INT64_C(1024)
#define UNITS__MI (UNITS__KI * UNITS__KI)
#define UNITS__GI (UNITS__MI * UNITS__KI)
#define UNITS__TI (UNITS__GI * UNITS__KI)
static const struct units__unit units__size[] = {
    {"", 1},           {"B", 1},           {"K", UNITS__K},   {"KB", UNITS__K},
    {"M", UNITS__M},   {"MB", UNITS__M},   {"G", UNITS__G},   {"GB", UNITS__G},
    {"T", UNITS__T},   {"TB", UNITS__T},   {"Ki", UNITS__KI}, {"KiB", UNITS__KI},
    {"Mi", UNITS__MI}, {"MiB", UNITS__MI}, {"Gi", UNITS__GI}, {"GiB", UNITS__GI},
    {"Ti", UNITS__TI}, {"TiB", UNITS__TI},
};
#define UNITS__NSIZE (sizeof(units__size) / sizeof(units__size[0]))
#define UNITS__SIZE_LIST "K, M, G, T, Ki, Mi, Gi, Ti, optionally followed by B"

static bool
units__digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool
units__alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* "invalid <what> '<s>': <reason>", s shortened if long. */
static int units__fail(int code, char *err, size_t errlen, const char *what, const char *s,
                       const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int
units__fail(int code, char *err, size_t errlen, const char *what, const char *s, const char *fmt,
            ...)
{
    va_list ap;
    size_t slen = strlen(s);
    int n;

    if (!err || errlen == 0)
        return code;
    n = snprintf(err, errlen, "invalid %s '%.*s%s': ", what, UNITS__ECHO_MAX, s,
                 slen > UNITS__ECHO_MAX ? "..." : "");
    if (n < 0 || (size_t)n >= errlen)
        return code;
    va_start(ap, fmt);
    verrf(code, err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return code;
}

/* Read the digits at *pp into *out; false on int64 overflow. */
static bool
units__number(const char **pp, int64_t *out)
{
    const char *p = *pp;
    int64_t v = 0;

    for (; units__digit(*p); p++) {
        int d = *p - '0';
        if (v > (INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *pp = p;
    *out = v;
    return true;
}

static bool
units__mul(int64_t a, int64_t b, int64_t *out)
{
    if (a != 0 && b > INT64_MAX / a)
        return false;
    *out = a * b;
    return true;
}

/* Does any unit name match n bytes of s ignoring case? (for a hint) */
static bool
units__case_match(const struct units__unit *tab, size_t ntab, const char *s, size_t n)
{
    for (size_t i = 0; i < ntab; i++)
        if (strlen(tab[i].name) == n && n > 0 && strncasecmp(tab[i].name, s, n) == 0)
            return true;
    return false;
}

int
units_parse_duration(const char *s, int64_t *out_ms, char *err, size_t errlen)
{
    static const char what[] = "duration";
    const char *p = s;
    int64_t total = 0;
    int last = -1;

    if (err && errlen)
        err[0] = '\0';
    if (!s || !*s)
        return units__fail(CAIRN_EPARSE, err, errlen, what, s ? s : "",
                           "it is empty (write e.g. 30s, 10m or 1h30m)");
    if (strcmp(s, "0") == 0) {
        *out_ms = 0;
        return 0;
    }
    while (*p) {
        const char *num = p, *unit;
        int64_t v, part;
        size_t ulen;
        int idx = -1;

        if (*p == '-' && p == s)
            return units__fail(CAIRN_EPARSE, err, errlen, what, s, "durations cannot be negative");
        if (*p == ' ' || *p == '\t')
            return units__fail(CAIRN_EPARSE, err, errlen, what, s,
                               "spaces are not allowed (write e.g. 1h30m)");
        if (units__alpha(*p))
            return units__fail(CAIRN_EPARSE, err, errlen, what, s,
                               "missing number before unit '%c'", *p);
        if (!units__digit(*p))
            return units__fail(CAIRN_EPARSE, err, errlen, what, s,
                               "unexpected character '%c' (write e.g. 30s, 10m or 1h30m)", *p);
        if (!units__number(&p, &v))
            return units__fail(CAIRN_ERANGE, err, errlen, what, s, "the value is too large");
        if (*p == '.' || *p == ',')
            return units__fail(CAIRN_EPARSE, err, errlen, what, s,
                               "fractions are not allowed; combine units instead "
                               "(e.g. 1h30m rather than 1.5h)");
        unit = p;
        while (units__alpha(*p))
            p++;
        ulen = (size_t)(p - unit);
        if (ulen == 0) {
            if (*unit == '\0')
                return units__fail(CAIRN_EPARSE, err, errlen, what, s,
                                   "missing unit after '%.*s' (use " UNITS__DUR_LIST ")",
                                   (int)(unit - num), num);
            if (*unit == ' ' || *unit == '\t')
                return units__fail(CAIRN_EPARSE, err, errlen, what, s,
                                   "spaces are not allowed (write e.g. 1h30m)");
            return units__fail(
                CAIRN_EPARSE, err, errlen, what, s,
                "unexpected character '%c' after '%.*s' (expected a unit: " UNITS__DUR_LIST ")",
                *unit, (int)(unit - num), num);
        }
        for (size_t i = 0; i < UNITS__NDUR; i++) {
            if (strlen(units__dur[i].name) == ulen && memcmp(units__dur[i].name, unit, ulen) == 0) {
                idx = (int)i;
                break;
            }
        }
        if (idx < 0)
            return units__fail(CAIRN_EPARSE, err, errlen, what, s,
                               "unknown unit '%.*s' (use " UNITS__DUR_LIST "%s)", (int)ulen, unit,
                               units__case_match(units__dur, UNITS__NDUR, unit, ulen)
                                   ? "; units are lowercase"
                                   : "");
        if (idx == last)
            return units__fail(CAIRN_EPARSE, err, errlen, what, s, "unit '%s' appears twice",
                               units__dur[idx].name);
        if (idx < last)
            return units__fail(CAIRN_EPARSE, err, errlen, what, s,
                               "unit '%s' comes after '%s'; write larger units first "
                               "(d, h, m, s, ms), e.g. 1h30m",
                               units__dur[idx].name, units__dur[last].name);
        last = idx;
        if (!units__mul(v, units__dur[idx].factor, &part) || part > INT64_MAX - total)
            return units__fail(CAIRN_ERANGE, err, errlen, what, s, "the value is too large");
        total += part;
    }
    *out_ms = total;
    return 0;
}

int
units_parse_size(const char *s, int64_t *out_bytes, char *err, size_t errlen)
{
    static const char what[] = "size";
    const char *p = s, *unit;
    int64_t v, bytes;

    if (err && errlen)
        err[0] = '\0';
    if (!s || !*s)
        return units__fail(CAIRN_EPARSE, err, errlen, what, s ? s : "",
                           "it is empty (write e.g. 512Mi, 1Gi or 500M)");
    if (*p == '-')
        return units__fail(CAIRN_EPARSE, err, errlen, what, s, "sizes cannot be negative");
    if (*p == ' ' || *p == '\t')
        return units__fail(CAIRN_EPARSE, err, errlen, what, s, "spaces are not allowed");
    if (!units__digit(*p))
        return units__fail(CAIRN_EPARSE, err, errlen, what, s,
                           "expected a number (write e.g. 512Mi, 1Gi or 500M)");
    if (!units__number(&p, &v))
        return units__fail(CAIRN_ERANGE, err, errlen, what, s, "the value is too large");
    if (*p == '.' || *p == ',')
        return units__fail(CAIRN_EPARSE, err, errlen, what, s,
                           "fractions are not allowed; use a smaller unit "
                           "(e.g. 1536Mi rather than 1.5Gi)");
    unit = p;
    for (size_t i = 0; i < UNITS__NSIZE; i++) {
        if (strcmp(units__size[i].name, unit) == 0) {
            if (!units__mul(v, units__size[i].factor, &bytes))
                return units__fail(CAIRN_ERANGE, err, errlen, what, s, "the value is too large");
            *out_bytes = bytes;
            return 0;
        }
    }
    if (*unit == ' ' || *unit == '\t')
        return units__fail(CAIRN_EPARSE, err, errlen, what, s,
                           "spaces are not allowed (write e.g. 512Mi)");
    return units__fail(CAIRN_EPARSE, err, errlen, what, s,
                       "unknown unit '%.*s%s' (use " UNITS__SIZE_LIST "%s)", UNITS__ECHO_MAX, unit,
                       strlen(unit) > UNITS__ECHO_MAX ? "..." : "",
                       units__case_match(units__size, UNITS__NSIZE, unit, strlen(unit))
                           ? "; units are case-sensitive"
                           : "");
}

void
units_format_duration(int64_t ms, char *buf, size_t len)
{
    /* The magnitude as unsigned, so INT64_MIN is fine too. */
    uint64_t rest = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    size_t off = 0;

    if (!buf || len == 0)
        return;
    buf[0] = '\0';
    if (ms == 0) {
        snprintf(buf, len, "0s");
        return;
    }
    if (ms < 0)
        off += (size_t)snprintf(buf, len, "-");
    for (size_t i = 0; i < UNITS__NDUR && off < len; i++) {
        uint64_t f = (uint64_t)units__dur[i].factor;
        uint64_t n = rest / f;
        int w;

        rest %= f;
        if (n == 0)
            continue;
        w = snprintf(buf + off, len - off, "%llu%s", (unsigned long long)n, units__dur[i].name);
        if (w < 0)
            return;
        off += (size_t)w;
    }
}

void
units_format_size(int64_t bytes, char *buf, size_t len)
{
    static const char *const names[] = {"TiB", "GiB", "MiB", "KiB"};

    if (!buf || len == 0)
        return;
    for (int i = 0; i < 4 && bytes > 0; i++) {
        int64_t f = (int64_t)1 << (10 * (4 - i));
        if (bytes % f == 0) {
            snprintf(buf, len, "%lld%s", (long long)(bytes / f), names[i]);
            return;
        }
    }
    snprintf(buf, len, "%lld bytes", (long long)bytes);
}
