/* metrics.h - counters, gauges and histograms kept in memory, written in
 * the Prometheus text exposition format 0.0.4 (prefix: metrics_).
 *
 * A registry holds families (one metric name each, with a fixed list of
 * label names); a family holds one series per distinct tuple of label
 * values. The daemons register their families once at start and update
 * them as things happen (counters, histograms) or refill them just before
 * a scrape (gauges: metrics_clear, then metrics_set). Label values are
 * copied and escaped when written; callers keep cardinality bounded (no
 * run ids as labels).
 *
 * Not thread-safe: a registry is used by one thread (the libuv loop).
 */
#ifndef CAIRN_METRICS_H
#define CAIRN_METRICS_H

#include <stddef.h>

#define METRICS_LABELS_MAX 4

/* The content type of what metrics_render writes. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM };

struct metrics;
struct metrics_family;

/* Bucket upper bounds in seconds, for durations from milliseconds to an
 * hour (tasks, runs) and from 100 us to seconds (loop, commits). */
extern const double metrics_buckets_long[];
extern const size_t metrics_nbuckets_long;
extern const double metrics_buckets_short[];
extern const size_t metrics_nbuckets_short;

/* A new, empty registry. Never fails (memory exhaustion aborts). */
struct metrics *metrics_new(void);
/* Release m and its families. m may be NULL. */
void metrics_free(struct metrics *m);

/* Register a family: name (a valid metric name), help (one line), type,
 * labels a comma-separated list of at most METRICS_LABELS_MAX label names
 * ("" or NULL for none), and for a histogram its nbuckets ascending upper
 * bounds (copied; +Inf is implied). Families are written in the order they
 * were registered. The family is owned by m; the pointer stays valid until
 * metrics_free. A family without labels is written even before it moved
 * (as 0). */
struct metrics_family *metrics_family(struct metrics *m, const char *name, enum metrics_type type,
                                      const char *help, const char *labels, const double *buckets,
                                      size_t nbuckets);

/* Add v (>= 0 for a counter) to the series with label values lv (as many
 * as the family has labels; NULL values count as ""). f may be NULL (a
 * no-op), so code paths without a registry need no checks. */
void metrics_add(struct metrics_family *f, const char *const *lv, double v);
/* Set a gauge's series to v. */
void metrics_set(struct metrics_family *f, const char *const *lv, double v);
/* Count one observation v in a histogram's series. */
void metrics_observe(struct metrics_family *f, const char *const *lv, double v);
/* Drop every series of f (a gauge refilled before each scrape). */
void metrics_clear(struct metrics_family *f);
/* Drop the series of f whose label number label (0-based) is value. */
void metrics_drop(struct metrics_family *f, size_t label, const char *value);

/* The whole registry in the text format (malloc'd, NUL-terminated; *len
 * its length without the NUL). */
char *metrics_render(const struct metrics *m, size_t *len);

#endif
