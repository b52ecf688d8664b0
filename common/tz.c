/* tz.c - TZif reader, POSIX TZ rules and local time mapping (see tz.h).
 *
 * A zone is a table of transitions (UTC instant -> offset in effect from
 * then on) plus, for instants after the last transition, the POSIX TZ rule
 * of the file's footer. Leap second records are skipped: Cairn counts POSIX
 * seconds.
 */
#include "tz.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cal.h"
#include "err.h"
#include "util.h"

#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"
#define TZ_MAX_FILE (1 << 20)
#define TZ_MAX_NAME 255
/* UTC offsets are limited to +-26 hours; tz_local_to_utc relies on it. */
#define TZ_MAX_OFFSET (26 * 3600)
/* Rule times (the "/time" of a POSIX rule) may range over +-167 hours. */
/* Rule years are computed for instants within +-10^15 s (30 million years). */
#define TZ_RULE_LIMIT INT64_C(1000000000000000)

/* A day of the year on which a POSIX rule switches. */
struct tz_rdate {
    char kind;    /* 'J' (1..365, no Feb 29), 'N' (0..365), 'M' (month.week.day) */
    int n;        /* J and N: the day; M: the month */
    int week;     /* M: 1..5, 5 = last */
    int wday;     /* M: 0..6, 0 = Sunday */
    int32_t time; /* seconds after local midnight, may be negative or > 24h */
};

struct tz_rule {
    int32_t std_off; /* seconds east */
    int32_t dst_off;
    bool has_dst;
    struct tz_rdate start; /* into DST, in standard local time */
    struct tz_rdate end;   /* out of DST, in daylight local time */
};

struct tz {
    char *name;
    size_t ntrans;
    int64_t *trans;    /* ascending UTC instants */
    int32_t *off;      /* offset in effect from trans[i] on */
    int32_t first_off; /* offset before trans[0] (time type 0) */
    bool has_rule;
    struct tz_rule rule;
    struct tz *next; /* cache list */
};

static pthread_mutex_t tz_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tz *tz_cache;

/* An interval [start, end) of constant offset; INT64_MIN/MAX when open. */
struct tz_span {
    int32_t off;
    int64_t start;
    int64_t end;
};

/* ---- POSIX TZ rules ---------------------------------------------------- */

static int
tz__num(const char **pp, int maxdigits, int *out)
{
    const char *p = *pp;
    int v = 0, n = 0;
    while (*p >= '0' && *p <= '9') {
        if (++n > maxdigits)
            return CAIRN_EPARSE;
        v = v * 10 + (*p - '0');
        p++;
    }
    if (n == 0)
        return CAIRN_EPARSE;
    *out = v;
    *pp = p;
    return 0;
}

/* [+-]hh[:mm[:ss]] with hh <= maxh; seconds, sign applied. */
static int
tz__hms(const char **pp, int maxh, int32_t *out)
{
    const char *p = *pp;
    int sign = 1, h = 0, m = 0, s = 0;
    if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        p++;
    }
    if (tz__num(&p, 3, &h) != 0 || h > maxh)
        return CAIRN_EPARSE;
    if (*p == ':') {
        p++;
        if (tz__num(&p, 2, &m) != 0 || m > 59)
            return CAIRN_EPARSE;
        if (*p == ':') {
            p++;
            if (tz__num(&p, 2, &s) != 0 || s > 59)
                return CAIRN_EPARSE;
        }
    }
    *out = sign * (h * 3600 + m * 60 + s);
    *pp = p;
    return 0;
}

/* A zone abbreviation: letters (3 or more), or <...> of [A-Za-z0-9+-]. */
static int
tz__abbr(const char **pp)
{
    const char *p = *pp;
    size_t n = 0;
    if (*p == '<') {
        p++;
        while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
               *p == '+' || *p == '-') {
            p++;
            n++;
        }
        if (*p != '>' || n == 0)
            return CAIRN_EPARSE;
        p++;
    } else {
        while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) {
            p++;
            n++;
        }
        if (n < 3)
            return CAIRN_EPARSE;
    }
    *pp = p;
    return 0;
}

static int
tz__rdate(const char **pp, struct tz_rdate *d)
{
    const char *p = *pp;
    int v;
    d->week = d->wday = 0;
    if (*p == 'J') {
        p++;
        if (tz__num(&p, 3, &v) != 0 || v < 1 || v > 365)
            return CAIRN_EPARSE;
        d->kind = 'J';
        d->n = v;
    } else if (*p == 'M') {
        p++;
        if (tz__num(&p, 2, &v) != 0 || v < 1 || v > 12 || *p++ != '.')
            return CAIRN_EPARSE;
        d->n = v;
        if (tz__num(&p, 1, &v) != 0 || v < 1 || v > 5 || *p++ != '.')
            return CAIRN_EPARSE;
        d->week = v;
        if (tz__num(&p, 1, &v) != 0 || v > 6)
            return CAIRN_EPARSE;
        d->wday = v;
        d->kind = 'M';
    } else {
        if (tz__num(&p, 3, &v) != 0 || v > 365)
            return CAIRN_EPARSE;
        d->kind = 'N';
        d->n = v;
    }
    d->time = 7200;
    if (*p == '/') {
        p++;
        if (tz__hms(&p, 167, &d->time) != 0)
            return CAIRN_EPARSE;
    }
    *pp = p;
    return 0;
}

/* Parse a POSIX TZ string such as "EST5EDT,M3.2.0,M11.1.0". */
static int
tz__parse_rule(const char *s, struct tz_rule *r)
{
    const char *p = s;
    int32_t v;
    memset(r, 0, sizeof(*r));
    if (tz__abbr(&p) != 0 || tz__hms(&p, 24, &v) != 0)
        return CAIRN_EPARSE;
    r->std_off = -v; /* POSIX counts hours west */
    if (*p == '\0')
        return 0;
    if (tz__abbr(&p) != 0)
        return CAIRN_EPARSE;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*p != ',' && *p != '\0') {
        if (tz__hms(&p, 24, &v) != 0)
            return CAIRN_EPARSE;
        r->dst_off = -v;
    }
    if (*p == '\0') {
        /* No rule given: the US rules, as other implementations do. */
        r->start = (struct tz_rdate){'M', 3, 2, 0, 7200};
        r->end = (struct tz_rdate){'M', 11, 1, 0, 7200};
        return 0;
    }
    if (*p++ != ',' || tz__rdate(&p, &r->start) != 0 || *p++ != ',' ||
        tz__rdate(&p, &r->end) != 0 || *p != '\0')
        return CAIRN_EPARSE;
    return 0;
}

/* Local seconds (in the offset in effect before it) of a switch in year. */
static int64_t
tz__rdate_local(const struct tz_rdate *d, int year)
{
    int64_t days;
    if (d->kind == 'J') {
        days = cal_days_from_civil(year, 1, 1) + d->n - 1;
        if (d->n >= 60 && cal_days_in_month(year, 2) == 29)
            days++;
    } else if (d->kind == 'N') {
        days = cal_days_from_civil(year, 1, 1) + d->n;
    } else {
        int64_t first = cal_days_from_civil(year, d->n, 1);
        int wd = (int)(((first + 4) % 7 + 7) % 7);
        int day = (d->wday - wd + 7) % 7 + (d->week - 1) * 7; /* 0-based */
        int dim = cal_days_in_month(year, d->n);
        while (day >= dim)
            day -= 7;
        days = first + day;
    }
    return days * 86400 + d->time;
}

static struct tz_span
tz__rule_span(const struct tz_rule *r, int64_t utc)
{
    struct tz_span sp = {r->std_off, INT64_MIN, INT64_MAX};
    if (!r->has_dst)
        return sp;

    struct cal_tm tm;
    int64_t ev[6] = {0};
    bool dst[6] = {false};
    int n = 0;
    /* Keep the year arithmetic defined for absurd instants. */
    int64_t probe = utc;
    if (probe < -TZ_RULE_LIMIT)
        probe = -TZ_RULE_LIMIT;
    if (probe > TZ_RULE_LIMIT)
        probe = TZ_RULE_LIMIT;
    cal_split(probe + r->std_off, &tm);
    for (int y = tm.year - 1; y <= tm.year + 1; y++) {
        int64_t e = tz__rdate_local(&r->end, y) - r->dst_off;
        int64_t s = tz__rdate_local(&r->start, y) - r->std_off;
        /* Keep the events sorted; on a tie the start wins (all-year DST). */
        int64_t add[2] = {e, s};
        bool add_dst[2] = {false, true};
        for (int k = 0; k < 2; k++) {
            int i = n++;
            while (i > 0 && ev[i - 1] > add[k]) {
                ev[i] = ev[i - 1];
                dst[i] = dst[i - 1];
                i--;
            }
            ev[i] = add[k];
            dst[i] = add_dst[k];
        }
    }
    int last = -1;
    for (int i = 0; i < n; i++)
        if (ev[i] <= utc)
            last = i;
    if (last < 0) {
        sp.off = dst[0] ? r->std_off : r->dst_off;
        sp.end = ev[0];
        return sp;
    }
    sp.off = dst[last] ? r->dst_off : r->std_off;
    sp.start = ev[last];
    sp.end = last + 1 < n ? ev[last + 1] : INT64_MAX;
    return sp;
}

/* ---- Offsets ------------------------------------------------------------ */

/* The raw interval around utc: one table entry or one rule period. */
static struct tz_span
tz__raw_span(const struct tz *z, int64_t utc)
{
    struct tz_span sp = {z->first_off, INT64_MIN, INT64_MAX};
    if (z->ntrans == 0) {
        if (z->has_rule)
            return tz__rule_span(&z->rule, utc);
        return sp;
    }
    if (utc < z->trans[0]) {
        sp.end = z->trans[0];
        return sp;
    }
    size_t lo = 0, hi = z->ntrans; /* last i with trans[i] <= utc */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= utc)
            lo = mid;
        else
            hi = mid;
    }
    if (lo + 1 < z->ntrans) {
        sp.off = z->off[lo];
        sp.start = z->trans[lo];
        sp.end = z->trans[lo + 1];
        return sp;
    }
    if (z->has_rule) {
        sp = tz__rule_span(&z->rule, utc);
        if (sp.start < z->trans[lo])
            sp.start = z->trans[lo];
        return sp;
    }
    sp.off = z->off[lo];
    sp.start = z->trans[lo];
    return sp;
}

/* The maximal interval of constant offset around utc (neighbouring entries
 * that only change the abbreviation or the DST flag are merged). */
static struct tz_span
tz__span(const struct tz *z, int64_t utc)
{
    struct tz_span sp = tz__raw_span(z, utc);
    for (int i = 0; i < 16 && sp.start != INT64_MIN; i++) {
        struct tz_span prev = tz__raw_span(z, sp.start - 1);
        if (prev.off != sp.off)
            break;
        sp.start = prev.start;
    }
    for (int i = 0; i < 16 && sp.end != INT64_MAX; i++) {
        struct tz_span next = tz__raw_span(z, sp.end);
        if (next.off != sp.off)
            break;
        sp.end = next.end;
    }
    return sp;
}

const char *
tz_name(const struct tz *z)
{
    return z ? z->name : "UTC";
}

int
tz_offset_at(const struct tz *z, int64_t utc)
{
    if (!z)
        return 0;
    return tz__raw_span(z, utc).off;
}

int
tz_offset_span(const struct tz *z, int64_t utc, int64_t *start, int64_t *end)
{
    struct tz_span sp = {0, INT64_MIN, INT64_MAX};
    if (z)
        sp = tz__span(z, utc);
    if (start)
        *start = sp.start;
    if (end)
        *end = sp.end;
    return sp.off;
}

int64_t
tz_utc_to_local(const struct tz *z, int64_t utc)
{
    return utc + tz_offset_at(z, utc);
}

int64_t
tz_local_to_utc(const struct tz *z, int64_t local, enum tz_local_kind *kind)
{
    if (kind)
        *kind = TZ_LOCAL_NORMAL;
    if (!z)
        return local;

    /* Any solution u of u + off(u) == local lies within 26 hours of
     * local - off(local), so in the span found there or a neighbour. */
    struct tz_span sp[3];
    int n = 0;
    struct tz_span mid = tz__span(z, local - tz_offset_at(z, local));
    if (mid.start != INT64_MIN)
        sp[n++] = tz__span(z, mid.start - 1);
    sp[n++] = mid;
    if (mid.end != INT64_MAX)
        sp[n++] = tz__span(z, mid.end);

    int found = 0;
    int64_t best = 0;
    for (int i = 0; i < n; i++) {
        int64_t u = local - sp[i].off;
        if (u >= sp[i].start && u < sp[i].end) {
            if (found == 0 || u < best)
                best = u;
            found++;
        }
    }
    if (found > 0) {
        if (kind && found > 1)
            *kind = TZ_LOCAL_OVERLAP;
        return best;
    }
    for (int i = 0; i + 1 < n; i++) {
        int64_t t = sp[i + 1].start;
        if (t + sp[i].off <= local && local < t + sp[i + 1].off) {
            if (kind)
                *kind = TZ_LOCAL_GAP;
            return t;
        }
    }
    return local - mid.off; /* not reached with offsets that change rarely */
}

/* ---- TZif files --------------------------------------------------------- */

static uint32_t
tz__be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t
tz__be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)tz__be32(p) << 32 | tz__be32(p + 4));
}

struct tz_hdr {
    char version;
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

/* Read a header; strict checks only for the block that will be used (the
 * v1 block of a v2+ file is skipped, whatever it holds). */
static int
tz__hdr(const unsigned char *p, size_t len, struct tz_hdr *h, bool strict)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        return CAIRN_EPARSE;
    h->version = (char)p[4];
    h->isutcnt = tz__be32(p + 20);
    h->isstdcnt = tz__be32(p + 24);
    h->leapcnt = tz__be32(p + 28);
    h->timecnt = tz__be32(p + 32);
    h->typecnt = tz__be32(p + 36);
    h->charcnt = tz__be32(p + 40);
    if (!strict)
        return 0;
    if (h->typecnt == 0 || h->typecnt > 256 || h->charcnt == 0 || h->charcnt > 65536 ||
        h->timecnt > 1000000 || h->leapcnt > 100000 ||
        (h->isutcnt != 0 && h->isutcnt != h->typecnt) ||
        (h->isstdcnt != 0 && h->isstdcnt != h->typecnt))
        return CAIRN_EPARSE;
    return 0;
}

static size_t
tz__block_len(const struct tz_hdr *h, size_t tsize)
{
    return (size_t)h->timecnt * tsize + h->timecnt + (size_t)h->typecnt * 6 + h->charcnt +
           (size_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

static void
tz__free_zone(struct tz *z)
{
    if (!z)
        return;
    free(z->name);
    free(z->trans);
    free(z->off);
    free(z);
}

/* Parse a TZif file image into z (name already set). */
static int
tz__parse_tzif(struct tz *z, const unsigned char *buf, size_t len)
{
    struct tz_hdr h;
    size_t tsize = 4;
    const unsigned char *p = buf;
    size_t avail = len;

    if (tz__hdr(p, avail, &h, false) != 0)
        return CAIRN_EPARSE;
    if (h.version == '\0' && tz__hdr(p, avail, &h, true) != 0)
        return CAIRN_EPARSE;
    if (h.version != '\0') {
        size_t skip = 44 + tz__block_len(&h, 4);
        if (skip > avail)
            return CAIRN_EPARSE;
        p += skip;
        avail -= skip;
        if (tz__hdr(p, avail, &h, true) != 0)
            return CAIRN_EPARSE;
        tsize = 8;
    }
    p += 44;
    avail -= 44;
    size_t blen = tz__block_len(&h, tsize);
    if (blen > avail)
        return CAIRN_EPARSE;

    const unsigned char *times = p;
    const unsigned char *idx = times + (size_t)h.timecnt * tsize;
    const unsigned char *types = idx + h.timecnt;
    int32_t toff[256];
    for (uint32_t i = 0; i < h.typecnt; i++) {
        const unsigned char *t = types + 6 * (size_t)i;
        int32_t o = (int32_t)tz__be32(t);
        if (o < -TZ_MAX_OFFSET || o > TZ_MAX_OFFSET || t[4] > 1 || t[5] >= h.charcnt)
            return CAIRN_EPARSE;
        toff[i] = o;
    }
    z->first_off = toff[0];
    if (h.timecnt > 0) {
        z->trans = xmalloc(h.timecnt * sizeof(*z->trans));
        z->off = xmalloc(h.timecnt * sizeof(*z->off));
        for (uint32_t i = 0; i < h.timecnt; i++) {
            int64_t t = tsize == 8 ? tz__be64(times + 8 * (size_t)i)
                                   : (int64_t)(int32_t)tz__be32(times + 4 * (size_t)i);
            if ((i > 0 && t <= z->trans[i - 1]) || idx[i] >= h.typecnt)
                return CAIRN_EPARSE;
            z->trans[i] = t;
            z->off[i] = toff[idx[i]];
        }
        z->ntrans = h.timecnt;
    }
    if (tsize == 8) {
        /* Footer: "\n" TZ-string "\n". */
        const unsigned char *f = p + blen;
        size_t flen = avail - blen;
        if (flen < 2 || f[0] != '\n')
            return CAIRN_EPARSE;
        const unsigned char *nl = memchr(f + 1, '\n', flen - 1);
        if (!nl)
            return CAIRN_EPARSE;
        size_t slen = (size_t)(nl - (f + 1));
        if (slen > 0) {
            char rule[256];
            if (slen >= sizeof(rule))
                return CAIRN_EPARSE;
            memcpy(rule, f + 1, slen);
            rule[slen] = '\0';
            if (memchr(rule, '\0', slen) || tz__parse_rule(rule, &z->rule) != 0)
                return CAIRN_EPARSE;
            z->has_rule = true;
        }
    }
    return 0;
}

static bool
tz__name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > TZ_MAX_NAME || name[0] == '/' || strstr(name, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '+' || c == '-' || c == '/'))
            return false;
    }
    return true;
}

static int
tz__read_file(const char *path, unsigned char **out, size_t *outlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOMEM ? CAIRN_ENOMEM : CAIRN_ENOENT;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return CAIRN_ENOENT;
    }
    if (st.st_size > TZ_MAX_FILE) {
        close(fd);
        return CAIRN_EPARSE;
    }
    size_t cap = (size_t)st.st_size;
    unsigned char *buf = xmalloc(cap + 1);
    size_t len = 0;
    while (len < cap) {
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    *out = buf;
    *outlen = len;
    return 0;
}

static int
tz__load_zone(struct tz **out, const char *name)
{
    struct tz *z = xcalloc(1, sizeof(*z));
    z->name = xstrdup(name);
    if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0) {
        *out = z; /* built in: no transitions, offset 0 */
        return 0;
    }

    const char *dir = getenv("TZDIR");
    if (!dir || !*dir)
        dir = TZ_DEFAULT_DIR;
    char *path = xasprintf("%s/%s", dir, name);
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = tz__read_file(path, &buf, &len);
    free(path);
    if (rc == 0)
        rc = tz__parse_tzif(z, buf, len);
    free(buf);
    if (rc != 0) {
        tz__free_zone(z);
        return rc;
    }
    *out = z;
    return 0;
}

int
tz_load(const struct tz **out, const char *name)
{
    if (!out || !name)
        return CAIRN_EINVAL;
    if (!tz__name_ok(name))
        return CAIRN_ENOENT;

    int rc = 0;
    pthread_mutex_lock(&tz_cache_lock);
    struct tz *z = tz_cache;
    while (z && strcmp(z->name, name) != 0)
        z = z->next;
    if (!z) {
        rc = tz__load_zone(&z, name);
        if (rc == 0) {
            z->next = tz_cache;
            tz_cache = z;
        }
    }
    pthread_mutex_unlock(&tz_cache_lock);
    if (rc == 0)
        *out = z;
    return rc;
}

void
tz_cache_clear(void)
{
    pthread_mutex_lock(&tz_cache_lock);
    struct tz *z = tz_cache;
    tz_cache = NULL;
    pthread_mutex_unlock(&tz_cache_lock);
    while (z) {
        struct tz *next = z->next;
        tz__free_zone(z);
        z = next;
    }
}
