/* metrics.c - in-memory metrics and their text exposition (metrics.h). */
#include "metrics.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "util.h"

const double metrics_buckets_long[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1,    2.5,  5,    10,
                                       30,   60,   120, 300,  600, 1800, 3600, 7200, 21600};
const size_t metrics_nbuckets_long = sizeof(metrics_buckets_long) / sizeof(double);
const double metrics_buckets_short[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                        0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};
const size_t metrics_nbuckets_short = sizeof(metrics_buckets_short) / sizeof(double);

struct metrics__series {
    char *key; /* label values joined by \x1f: the index's key */
    char *lv[METRICS_LABELS_MAX];
    double value;      /* counter, gauge; a histogram's sum */
    uint64_t count;    /* a histogram's observations */
    uint64_t *buckets; /* a histogram's counts per bucket (not cumulative) */
};

struct metrics_family {
    char *name;
    char *help;
    enum metrics_type type;
    char *labels[METRICS_LABELS_MAX];
    size_t nlabels;
    double *bounds;
    size_t nbounds;
    struct metrics__series **series;
    size_t nseries, capseries;
    struct hmap ix; /* key -> index in series */
};

struct metrics {
    struct metrics_family **fam;
    size_t nfam, capfam;
};

struct metrics *
metrics_new(void)
{
    return xcalloc(1, sizeof(struct metrics));
}

static void
metrics__series_free(struct metrics__series *se)
{
    free(se->key);
    for (size_t i = 0; i < METRICS_LABELS_MAX; i++)
        free(se->lv[i]);
    free(se->buckets);
    free(se);
}

void
metrics_clear(struct metrics_family *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nseries; i++)
        metrics__series_free(f->series[i]);
    f->nseries = 0;
    hmap_free(&f->ix);
    hmap_init(&f->ix);
}

void
metrics_drop(struct metrics_family *f, size_t label, const char *value)
{
    if (!f || label >= f->nlabels)
        return;
    size_t k = 0;
    hmap_free(&f->ix);
    hmap_init(&f->ix);
    for (size_t i = 0; i < f->nseries; i++) {
        struct metrics__series *se = f->series[i];
        if (!strcmp(se->lv[label], value)) {
            metrics__series_free(se);
            continue;
        }
        f->series[k] = se;
        hmap_put(&f->ix, se->key, k++);
    }
    f->nseries = k;
}

void
metrics_free(struct metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nfam; i++) {
        struct metrics_family *f = m->fam[i];
        metrics_clear(f);
        hmap_free(&f->ix);
        free(f->series);
        free(f->name);
        free(f->help);
        for (size_t k = 0; k < f->nlabels; k++)
            free(f->labels[k]);
        free(f->bounds);
        free(f);
    }
    free(m->fam);
    free(m);
}

struct metrics_family *
metrics_family(struct metrics *m, const char *name, enum metrics_type type, const char *help,
               const char *labels, const double *buckets, size_t nbuckets)
{
    struct metrics_family *f = xcalloc(1, sizeof(*f));
    f->name = xstrdup(name);
    f->help = xstrdup(help ? help : "");
    f->type = type;
    hmap_init(&f->ix);
    if (labels && *labels) {
        const char *p = labels;
        while (*p && f->nlabels < METRICS_LABELS_MAX) {
            size_t n = strcspn(p, ",");
            f->labels[f->nlabels] = xmalloc(n + 1);
            memcpy(f->labels[f->nlabels], p, n);
            f->labels[f->nlabels++][n] = '\0';
            p += n;
            if (*p == ',')
                p++;
        }
    }
    if (type == METRICS_HISTOGRAM && nbuckets) {
        f->bounds = xmalloc(nbuckets * sizeof(double));
        memcpy(f->bounds, buckets, nbuckets * sizeof(double));
        f->nbounds = nbuckets;
    }
    xgrow((void **)&m->fam, &m->capfam, m->nfam + 1, sizeof(*m->fam));
    m->fam[m->nfam++] = f;
    return f;
}

static struct metrics__series *
metrics__series(struct metrics_family *f, const char *const *lv)
{
    size_t len = 1;
    for (size_t i = 0; i < f->nlabels; i++)
        len += strlen(lv && lv[i] ? lv[i] : "") + 1;
    char *key = xmalloc(len), *p = key;
    for (size_t i = 0; i < f->nlabels; i++) {
        const char *v = lv && lv[i] ? lv[i] : "";
        size_t n = strlen(v);
        memcpy(p, v, n);
        p += n;
        *p++ = '\x1f';
    }
    *p = '\0';
    size_t at;
    if (hmap_get(&f->ix, key, &at)) {
        free(key);
        return f->series[at];
    }
    struct metrics__series *se = xcalloc(1, sizeof(*se));
    se->key = key;
    for (size_t i = 0; i < f->nlabels; i++)
        se->lv[i] = xstrdup(lv && lv[i] ? lv[i] : "");
    if (f->type == METRICS_HISTOGRAM)
        se->buckets = xcalloc(f->nbounds + 1, sizeof(uint64_t));
    xgrow((void **)&f->series, &f->capseries, f->nseries + 1, sizeof(*f->series));
    f->series[f->nseries] = se;
    hmap_put(&f->ix, se->key, f->nseries++);
    return se;
}

void
metrics_add(struct metrics_family *f, const char *const *lv, double v)
{
    if (!f || f->type == METRICS_HISTOGRAM || (f->type == METRICS_COUNTER && !(v >= 0)))
        return;
    metrics__series(f, lv)->value += v;
}

void
metrics_set(struct metrics_family *f, const char *const *lv, double v)
{
    if (!f || f->type != METRICS_GAUGE)
        return;
    metrics__series(f, lv)->value = v;
}

void
metrics_observe(struct metrics_family *f, const char *const *lv, double v)
{
    if (!f || f->type != METRICS_HISTOGRAM || isnan(v))
        return;
    struct metrics__series *se = metrics__series(f, lv);
    size_t b = 0;
    while (b < f->nbounds && v > f->bounds[b])
        b++;
    se->buckets[b]++;
    se->count++;
    se->value += v;
}

/* ---- the text format ----------------------------------------------------- */

/* s with '\\' and newline escaped, and '"' too when quote (label values). */
static void
metrics__escaped(struct sb *o, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            sb_puts(o, "\\\\");
        else if (*s == '\n')
            sb_puts(o, "\\n");
        else if (*s == '"' && quote)
            sb_puts(o, "\\\"");
        else
            sb_putc(o, *s);
    }
}

static void
metrics__number(struct sb *o, double v)
{
    char b[64];
    if (isinf(v))
        snprintf(b, sizeof(b), "%s", v > 0 ? "+Inf" : "-Inf");
    else if (isnan(v))
        snprintf(b, sizeof(b), "NaN");
    else if (v == floor(v) && fabs(v) < 1e15)
        snprintf(b, sizeof(b), "%.0f", v);
    else {
        /* the shortest form that reads back as v */
        snprintf(b, sizeof(b), "%.15g", v);
        if (strtod(b, NULL) != v)
            snprintf(b, sizeof(b), "%.17g", v);
    }
    sb_puts(o, b);
}

/* name{labels...[,le="bound"]} value\n */
static void
metrics__sample(struct sb *o, const struct metrics_family *f, const struct metrics__series *se,
                const char *suffix, const char *le, double v)
{
    sb_puts(o, f->name);
    sb_puts(o, suffix);
    if (f->nlabels || le) {
        sb_puts(o, "{");
        for (size_t i = 0; i < f->nlabels; i++) {
            if (i)
                sb_puts(o, ",");
            sb_puts(o, f->labels[i]);
            sb_puts(o, "=\"");
            metrics__escaped(o, se ? se->lv[i] : "", true);
            sb_puts(o, "\"");
        }
        if (le) {
            sb_puts(o, f->nlabels ? ",le=\"" : "le=\"");
            sb_puts(o, le);
            sb_puts(o, "\"");
        }
        sb_puts(o, "}");
    }
    sb_puts(o, " ");
    metrics__number(o, v);
    sb_puts(o, "\n");
}

static void
metrics__histogram(struct sb *o, const struct metrics_family *f, const struct metrics__series *se)
{
    uint64_t cum = 0;
    char le[64];
    for (size_t b = 0; b <= f->nbounds; b++) {
        cum += se ? se->buckets[b] : 0;
        if (b < f->nbounds)
            snprintf(le, sizeof(le), "%.12g", f->bounds[b]);
        else
            snprintf(le, sizeof(le), "+Inf");
        metrics__sample(o, f, se, "_bucket", le, (double)cum);
    }
    metrics__sample(o, f, se, "_sum", NULL, se ? se->value : 0);
    metrics__sample(o, f, se, "_count", NULL, se ? (double)se->count : 0);
}

char *
metrics_render(const struct metrics *m, size_t *len)
{
    static const char *types[] = {"counter", "gauge", "histogram"};
    struct sb o;
    sb_init(&o);
    for (size_t i = 0; i < m->nfam; i++) {
        const struct metrics_family *f = m->fam[i];
        sb_puts(&o, "# HELP ");
        sb_puts(&o, f->name);
        sb_puts(&o, " ");
        metrics__escaped(&o, f->help, false);
        sb_puts(&o, "\n# TYPE ");
        sb_puts(&o, f->name);
        sb_puts(&o, " ");
        sb_puts(&o, types[f->type]);
        sb_puts(&o, "\n");
        if (!f->nseries && !f->nlabels) { /* a plain metric exists before it moves */
            if (f->type == METRICS_HISTOGRAM)
                metrics__histogram(&o, f, NULL);
            else
                metrics__sample(&o, f, NULL, "", NULL, 0);
        }
        for (size_t k = 0; k < f->nseries; k++) {
            if (f->type == METRICS_HISTOGRAM)
                metrics__histogram(&o, f, f->series[k]);
            else
                metrics__sample(&o, f, f->series[k], "", NULL, f->series[k]->value);
        }
    }
    *len = o.len;
    return sb_take(&o);
}
