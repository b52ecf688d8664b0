/* art_driver.c - drive common/artifact.c for bench/artifacts.sh.
 *
 *   art_driver put STORE FILE       store FILE (one art_put_file), print the digest
 *   art_driver hash FILE            art_hash_file only, print the digest
 *   art_driver get STORE HEX DEST   art_fetch (a copy, digest checked)
 *   art_driver gc STORE MIN_AGE     art_gc with nothing kept, print the counts
 *
 * STORE is a folder, file:///... or s3://BUCKET/PREFIX?endpoint=...; an S3
 * store's credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or
 * the file named by ART_CREDENTIALS. put and get print the seconds taken
 * on stderr ("seconds: N").
 *   art_driver hit STORE FILE N     store FILE once, then time N more puts of
 *                                   the same content (the dedupe path),
 *                                   in-process; prints mean and median in us
 *
 * Not built by CMake; the script compiles it against libcairn_common.a.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "artifact.h"
#include "err.h"
#include "util.h"

static int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int
usage(void)
{
    fputs("usage: art_driver put STORE FILE | get STORE HEX DEST | gc STORE MIN_AGE | hash FILE |\n"
          "       hit STORE FILE N\n",
          stderr);
    return 2;
}

static struct art_store *
open_or_die(const char *where)
{
    struct art_store *s = NULL;
    char err[512];
    struct art_open_opts o = {.path_style = -1, .credentials_file = getenv("ART_CREDENTIALS")};
    int rc = art_open_with(&s, where, &o, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "art_open: %s: %s\n", cairn_err_name(rc), err);
        exit(1);
    }
    return s;
}

static int
put_once(struct art_store *s, const char *file, bool print)
{
    char hex[ART_HEX_LEN + 1], err[512];
    int64_t size = 0;
    int rc = art_put_file(s, file, hex, &size, NULL, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "art_put_file: %s: %s\n", cairn_err_name(rc), err);
        return 1;
    }
    if (print)
        printf("%s  %s (%lld bytes)\n", hex, file, (long long)size);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "put") == 0) {
        struct art_store *s = open_or_die(argv[2]);
        int64_t t0 = now_ns();
        int rc = put_once(s, argv[3], true);
        fprintf(stderr, "seconds: %.3f\n", (double)(now_ns() - t0) / 1e9);
        art_close(s);
        return rc;
    }
    if (argc == 5 && strcmp(argv[1], "get") == 0) {
        struct art_store *s = open_or_die(argv[2]);
        char err[512];
        int64_t t0 = now_ns();
        int rc = art_fetch(s, argv[3], argv[4], ART_FETCH_COPY, err, sizeof(err));
        if (rc != 0)
            fprintf(stderr, "art_fetch: %s: %s\n", cairn_err_name(rc), err);
        else
            fprintf(stderr, "seconds: %.3f\n", (double)(now_ns() - t0) / 1e9);
        art_close(s);
        return rc ? 1 : 0;
    }
    if (argc == 4 && strcmp(argv[1], "gc") == 0) {
        struct art_store *s = open_or_die(argv[2]);
        char err[512];
        struct art_gc_stats st;
        int rc = art_gc(s, NULL, 0, strtoll(argv[3], NULL, 10), &st, err, sizeof(err));
        if (rc != 0)
            fprintf(stderr, "art_gc: %s: %s\n", cairn_err_name(rc), err);
        printf("removed %zu (%lld bytes), kept %zu\n", st.blobs_removed, (long long)st.blob_bytes,
               st.blobs_kept);
        art_close(s);
        return rc ? 1 : 0;
    }
    if (argc == 3 && strcmp(argv[1], "hash") == 0) {
        char hex[ART_HEX_LEN + 1], err[512];
        int rc = art_hash_file(argv[2], hex, NULL, err, sizeof(err));
        if (rc != 0) {
            fprintf(stderr, "art_hash_file: %s: %s\n", cairn_err_name(rc), err);
            return 1;
        }
        printf("%s  %s\n", hex, argv[2]);
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "hit") == 0) {
        char *end;
        long n = strtol(argv[4], &end, 10);
        if (*end || n <= 0)
            return usage();
        struct art_store *s = open_or_die(argv[2]);
        if (put_once(s, argv[3], false) != 0)
            return 1;
        int64_t *t = xcalloc((size_t)n, sizeof(*t));
        int64_t sum = 0;
        for (long i = 0; i < n; i++) {
            int64_t t0 = now_ns();
            if (put_once(s, argv[3], false) != 0)
                return 1;
            t[i] = now_ns() - t0;
            sum += t[i];
        }
        qsort(t, (size_t)n, sizeof(*t), cmp_i64);
        printf("dedupe put of %s: mean %.1f us, median %.1f us, p99 %.1f us (%ld runs)\n", argv[3],
               (double)sum / (double)n / 1e3, (double)t[n / 2] / 1e3,
               (double)t[(n * 99) / 100] / 1e3, n);
        free(t);
        art_close(s);
        return 0;
    }
    return usage();
}
