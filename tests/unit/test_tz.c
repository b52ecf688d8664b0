/* Tests for tz.c: TZif files, POSIX TZ footers, offsets and the DST policy.
 *
 * Real transitions come from the system tz database; tests that need it are
 * skipped when it is missing. Hand-made TZif files are written to a private
 * $TZDIR to cover versions, footer rules and malformed input.
 */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cal.h"
#include "err.h"
#include "testlib.h"
#include "tz.h"

#define H 3600

static int64_t
utc(int y, int mo, int d, int h, int mi)
{
    return cal_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60;
}

/* Local wall-clock seconds: the same arithmetic, named for the reader. */
static int64_t
wall(int y, int mo, int d, int h, int mi)
{
    return utc(y, mo, d, h, mi);
}

static int
have_tzdata(void)
{
    return access("/usr/share/zoneinfo/America/New_York", R_OK) == 0 &&
           access("/usr/share/zoneinfo/Australia/Adelaide", R_OK) == 0 &&
           access("/usr/share/zoneinfo/Europe/Berlin", R_OK) == 0;
}

#define NEED_TZDATA()                                                                              \
    do {                                                                                           \
        if (!have_tzdata())                                                                        \
            skip();                                                                                \
    } while (0)

static const struct tz *
load(const char *name)
{
    const struct tz *z = NULL;
    int rc = tz_load(&z, name);
    if (rc != 0)
        fail_msg("tz_load(%s): %s", name, cairn_err_name(rc));
    assert_non_null(z);
    return z;
}

/* ---- A private TZDIR with hand-made files -------------------------------- */

static struct tl_dir tzdir;
static const char *tmpdir; /* tzdir.path */

static void
put32(FILE *f, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, f);
}

static void
put64(FILE *f, int64_t v)
{
    put32(f, (uint32_t)((uint64_t)v >> 32));
    put32(f, (uint32_t)v);
}

struct tzif_spec {
    char version; /* '\0', '2', '3' */
    int ntrans;
    const int64_t *trans;
    const unsigned char *idx;
    int ntypes;
    const int32_t *offs;
    const char *footer; /* v2+ only */
    int v1_decoy;       /* v2+: put different data in the v1 block */
};

static void
tzif_header(FILE *f, char version, uint32_t timecnt, uint32_t typecnt, uint32_t charcnt)
{
    fwrite("TZif", 1, 4, f);
    fputc(version, f);
    for (int i = 0; i < 15; i++)
        fputc(0, f);
    put32(f, 0); /* isutcnt */
    put32(f, 0); /* isstdcnt */
    put32(f, 0); /* leapcnt */
    put32(f, timecnt);
    put32(f, typecnt);
    put32(f, charcnt);
}

static void
tzif_block(FILE *f, const struct tzif_spec *s, int wide)
{
    for (int i = 0; i < s->ntrans; i++) {
        if (wide)
            put64(f, s->trans[i]);
        else
            put32(f, (uint32_t)(int32_t)s->trans[i]);
    }
    for (int i = 0; i < s->ntrans; i++)
        fputc(s->idx[i], f);
    for (int i = 0; i < s->ntypes; i++) {
        put32(f, (uint32_t)s->offs[i]);
        fputc(s->offs[i] > s->offs[0], f); /* isdst */
        fputc(0, f);                       /* abbreviation index */
    }
    fwrite("ZZZ", 1, 4, f); /* abbreviations, NUL included */
}

/* Write TZDIR/name, making its folder (name is at most two levels deep). */
static void
write_file(const char *name, const void *data, size_t len)
{
    char *path = tl_dir_file(&tzdir, "%s", name);
    char *slash = strrchr(path, '/');
    if (slash > path + strlen(tmpdir)) {
        *slash = '\0';
        mkdir(path, 0755);
        *slash = '/';
    }
    tl_write_file(path, data, len);
    free(path);
}

static void
write_tzif(const char *name, const struct tzif_spec *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    if (s->version == '\0') {
        tzif_header(f, '\0', (uint32_t)s->ntrans, (uint32_t)s->ntypes, 4);
        tzif_block(f, s, 0);
    } else {
        if (s->v1_decoy) {
            /* A v1 block that says +05:00 everywhere: readers must skip it. */
            static const int32_t decoy_off[1] = {5 * H};
            struct tzif_spec d = {.ntypes = 1, .offs = decoy_off};
            tzif_header(f, s->version, 0, 1, 4);
            tzif_block(f, &d, 0);
        } else {
            tzif_header(f, s->version, 0, (uint32_t)s->ntypes, 4);
            struct tzif_spec d = *s;
            d.ntrans = 0;
            tzif_block(f, &d, 0);
        }
        tzif_header(f, s->version, (uint32_t)s->ntrans, (uint32_t)s->ntypes, 4);
        tzif_block(f, s, 1);
        fprintf(f, "\n%s\n", s->footer ? s->footer : "");
    }
    fclose(f);
    write_file(name, buf, len);
    free(buf);
}

/* A file holding nothing but a footer rule, whose standard offset is off0. */
static void
write_rule_zone(const char *name, const char *footer, int32_t off0)
{
    int32_t offs[1] = {off0};
    struct tzif_spec s = {.version = '2', .ntypes = 1, .offs = offs, .footer = footer};
    write_tzif(name, &s);
}

static int
setup_tmpdir(void **state)
{
    (void)state;
    if (tl_dir_make(&tzdir, "tz") != 0)
        return -1;
    tmpdir = tzdir.path;
    tz_cache_clear();
    unsetenv("TZDIR");
    return 0;
}

static int
teardown_tmpdir(void **state)
{
    (void)state;
    tz_cache_clear();
    unsetenv("TZDIR");
    return tl_dir_remove(&tzdir) == 0 ? 0 : -1;
}

static void
use_tmpdir(void)
{
    tz_cache_clear();
    setenv("TZDIR", tmpdir, 1);
}

/* ---- Names and loading --------------------------------------------------- */

static void
test_utc_builtin(void **state)
{
    (void)state;
    use_tmpdir(); /* an empty database */
    const struct tz *z = load("UTC");
    assert_string_equal(tz_name(z), "UTC");
    assert_int_equal(tz_offset_at(z, 0), 0);
    assert_int_equal(tz_offset_at(z, utc(2026, 7, 1, 0, 0)), 0);
    z = load("Etc/UTC");
    assert_string_equal(tz_name(z), "Etc/UTC");
    enum tz_local_kind k = TZ_LOCAL_GAP;
    assert_int_equal(tz_local_to_utc(z, 12345, &k), 12345);
    assert_int_equal(k, TZ_LOCAL_NORMAL);

    const struct tz *other;
    assert_int_equal(tz_load(&other, "Europe/Berlin"), CAIRN_ENOENT);

    /* NULL means UTC everywhere. */
    assert_string_equal(tz_name(NULL), "UTC");
    assert_int_equal(tz_offset_at(NULL, 99), 0);
    assert_int_equal(tz_utc_to_local(NULL, 99), 99);
    assert_int_equal(tz_local_to_utc(NULL, 99, NULL), 99);
}

static void
test_bad_names(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",          "../etc/passwd",   "/etc/passwd",       "Europe/../UTC",
        "Europe/..", "Foo Bar",         "Europe/Berlin.bak", "a\\b",
        "zone;rm",   "Europe/Berlin\n", "Mars/Olympus_Mons", "America",
        "Nope",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const struct tz *z = (const struct tz *)&bad; /* must stay untouched */
        int rc = tz_load(&z, bad[i]);
        if (rc != CAIRN_ENOENT)
            fail_msg("'%s': want CAIRN_ENOENT, got %s", bad[i], cairn_err_name(rc));
        assert_ptr_equal(z, (const struct tz *)&bad);
    }
    const struct tz *z;
    assert_int_equal(tz_load(&z, NULL), CAIRN_EINVAL);
    assert_int_equal(tz_load(NULL, "UTC"), CAIRN_EINVAL);
}

static void
test_malformed_files(void **state)
{
    (void)state;
    use_tmpdir();
    const struct tz *z = NULL;

    write_file("Bad/Text", "hello, world\n", 13);
    assert_int_equal(tz_load(&z, "Bad/Text"), CAIRN_EPARSE);
    write_file("Bad/Empty", "", 0);
    assert_int_equal(tz_load(&z, "Bad/Empty"), CAIRN_EPARSE);

    /* A good file cut short at every length must be refused, never read
     * past its end. */
    int64_t trans[2] = {1000, 2000};
    unsigned char idx[2] = {1, 0};
    int32_t offs[2] = {0, H};
    struct tzif_spec s = {.version = '2',
                          .ntrans = 2,
                          .trans = trans,
                          .idx = idx,
                          .ntypes = 2,
                          .offs = offs,
                          .footer = "XXX0"};
    write_tzif("Good/Two", &s);
    char path[256];
    snprintf(path, sizeof(path), "%s/Good/Two", tmpdir);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char buf[512];
    size_t len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    assert_true(len > 100 && len < sizeof(buf));
    assert_int_equal(tz_load(&z, "Good/Two"), 0);
    assert_int_equal(tz_offset_at(z, 1500), H);
    for (size_t cut = 0; cut + 1 < len; cut++) {
        char name[32];
        snprintf(name, sizeof(name), "Cut/%zu", cut);
        write_file(name, buf, cut);
        const struct tz *c = NULL;
        int rc = tz_load(&c, name);
        if (rc != CAIRN_EPARSE)
            fail_msg("file cut at %zu of %zu: want CAIRN_EPARSE, got %d", cut, len, rc);
        assert_null(c);
    }

    /* Bad footers. */
    write_rule_zone("Bad/Footer1", "EST5EDT,M3.2.0", -5 * H);
    assert_int_equal(tz_load(&z, "Bad/Footer1"), CAIRN_EPARSE);
    write_rule_zone("Bad/Footer2", "EST5EDT,M13.2.0,M11.1.0", -5 * H);
    assert_int_equal(tz_load(&z, "Bad/Footer2"), CAIRN_EPARSE);
    write_rule_zone("Bad/Footer3", "<+05", 5 * H);
    assert_int_equal(tz_load(&z, "Bad/Footer3"), CAIRN_EPARSE);
    write_rule_zone("Bad/Footer4", "E5", -5 * H);
    assert_int_equal(tz_load(&z, "Bad/Footer4"), CAIRN_EPARSE);
    write_rule_zone("Bad/Footer5", "EST5EDT,J0,J365", -5 * H);
    assert_int_equal(tz_load(&z, "Bad/Footer5"), CAIRN_EPARSE);
    write_rule_zone("Bad/Footer6", "EST5EDT,M3.2.0/168,M11.1.0", -5 * H);
    assert_int_equal(tz_load(&z, "Bad/Footer6"), CAIRN_EPARSE);

    /* A type index beyond the type table. */
    unsigned char bad_idx[2] = {1, 7};
    s.idx = bad_idx;
    write_tzif("Bad/Index", &s);
    assert_int_equal(tz_load(&z, "Bad/Index"), CAIRN_EPARSE);
    /* Transitions out of order. */
    int64_t back[2] = {2000, 1000};
    s.idx = idx;
    s.trans = back;
    write_tzif("Bad/Order", &s);
    assert_int_equal(tz_load(&z, "Bad/Order"), CAIRN_EPARSE);
}

static void
test_versions(void **state)
{
    (void)state;
    use_tmpdir();
    /* v1: 32-bit transitions, no footer; the last offset holds afterwards. */
    int64_t trans[3] = {-1000000000, 0, 1000000000};
    unsigned char idx[3] = {1, 0, 2};
    int32_t offs[3] = {-5 * H, -4 * H, 3 * H + 1800};
    struct tzif_spec s = {
        .version = '\0', .ntrans = 3, .trans = trans, .idx = idx, .ntypes = 3, .offs = offs};
    write_tzif("V/One", &s);
    const struct tz *z = load("V/One");
    assert_int_equal(tz_offset_at(z, -2000000000), -5 * H); /* before: type 0 */
    assert_int_equal(tz_offset_at(z, -1000000000), -4 * H);
    assert_int_equal(tz_offset_at(z, -1), -4 * H);
    assert_int_equal(tz_offset_at(z, 0), -5 * H);
    assert_int_equal(tz_offset_at(z, 999999999), -5 * H);
    assert_int_equal(tz_offset_at(z, 1000000000), 3 * H + 1800);
    assert_int_equal(tz_offset_at(z, INT64_C(4000000000)), 3 * H + 1800);

    /* v2 and v3 with 64-bit times beyond 2038, read from the second block. */
    int64_t wide[2] = {INT64_C(-5000000000), INT64_C(5000000000)};
    unsigned char widx[2] = {1, 0};
    int32_t woffs[2] = {H, 2 * H};
    struct tzif_spec w = {.version = '2',
                          .ntrans = 2,
                          .trans = wide,
                          .idx = widx,
                          .ntypes = 2,
                          .offs = woffs,
                          .footer = "",
                          .v1_decoy = 1};
    write_tzif("V/Two", &w);
    w.version = '3';
    write_tzif("V/Three", &w);
    const char *names[2] = {"V/Two", "V/Three"};
    for (int i = 0; i < 2; i++) {
        z = load(names[i]);
        assert_int_equal(tz_offset_at(z, INT64_C(-6000000000)), H);
        assert_int_equal(tz_offset_at(z, INT64_C(-5000000000)), 2 * H);
        assert_int_equal(tz_offset_at(z, INT64_C(4999999999)), 2 * H);
        /* Empty footer: the last transition's type stays. */
        assert_int_equal(tz_offset_at(z, INT64_C(5000000000)), H);
        assert_int_equal(tz_offset_at(z, INT64_C(9000000000)), H);
    }
}

static void
test_cache(void **state)
{
    (void)state;
    NEED_TZDATA();
    tz_cache_clear();
    unsetenv("TZDIR");
    const struct tz *a = load("Europe/Berlin");
    const struct tz *b = load("Europe/Berlin");
    assert_ptr_equal(a, b);
    assert_string_equal(tz_name(a), "Europe/Berlin");
    assert_ptr_not_equal(a, load("America/New_York"));
}

struct loader {
    const struct tz *got[4];
    int failures;
};

static const char *const thread_zones[4] = {"Europe/Berlin", "America/New_York",
                                            "Australia/Adelaide", "UTC"};

static void *
loader_cb(void *arg)
{
    struct loader *l = arg;
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < 4; i++) {
            const struct tz *z = NULL;
            if (tz_load(&z, thread_zones[i]) != 0 || (l->got[i] && l->got[i] != z))
                l->failures++;
            l->got[i] = z;
        }
    }
    return NULL;
}

static void
test_cache_threads(void **state)
{
    (void)state;
    NEED_TZDATA();
    tz_cache_clear();
    unsetenv("TZDIR");
    struct loader l[4];
    pthread_t th[4];
    memset(l, 0, sizeof(l));
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, loader_cb, &l[i]), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(l[i].failures, 0);
        for (int k = 0; k < 4; k++)
            assert_ptr_equal(l[i].got[k], l[0].got[k]);
    }
    assert_int_equal(tz_offset_at(l[2].got[0], utc(2026, 7, 1, 0, 0)), 2 * H);
}

/* ---- Offsets and local time on real transitions ------------------------- */

static void
expect_local(const struct tz *z, int64_t local, int64_t want, enum tz_local_kind want_kind)
{
    enum tz_local_kind k = (enum tz_local_kind) - 1;
    int64_t got = tz_local_to_utc(z, local, &k);
    if (got != want || k != want_kind) {
        char a[48], b[48];
        cal_format_iso(got, 0, 1, a, sizeof(a));
        cal_format_iso(want, 0, 1, b, sizeof(b));
        fail_msg("%s: local %lld -> %s kind %d, want %s kind %d", tz_name(z), (long long)local, a,
                 (int)k, b, (int)want_kind);
    }
    assert_int_equal(tz_local_to_utc(z, local, NULL), want);
}

static void
test_new_york(void **state)
{
    (void)state;
    NEED_TZDATA();
    tz_cache_clear();
    unsetenv("TZDIR");
    const struct tz *z = load("America/New_York");
    int64_t spring = utc(2026, 3, 8, 7, 0); /* 02:00 EST -> 03:00 EDT */
    int64_t fall = utc(2026, 11, 1, 6, 0);  /* 02:00 EDT -> 01:00 EST */
    assert_int_equal(spring, 1772953200);
    assert_int_equal(fall, 1793512800);

    assert_int_equal(tz_offset_at(z, spring - 1), -5 * H);
    assert_int_equal(tz_offset_at(z, spring), -4 * H);
    assert_int_equal(tz_offset_at(z, fall - 1), -4 * H);
    assert_int_equal(tz_offset_at(z, fall), -5 * H);
    assert_int_equal(tz_utc_to_local(z, spring), wall(2026, 3, 8, 3, 0));
    assert_int_equal(tz_utc_to_local(z, spring - 1), wall(2026, 3, 8, 2, 0) - 1);

    int64_t s, e;
    assert_int_equal(tz_offset_span(z, utc(2026, 7, 1, 0, 0), &s, &e), -4 * H);
    assert_int_equal(s, spring);
    assert_int_equal(e, fall);
    assert_int_equal(tz_offset_span(z, utc(2026, 7, 1, 0, 0), NULL, NULL), -4 * H);

    /* Gap: [02:00, 03:00) does not exist; it maps to 03:00 EDT. */
    expect_local(z, wall(2026, 3, 8, 1, 59), spring - 60, TZ_LOCAL_NORMAL);
    expect_local(z, wall(2026, 3, 8, 2, 0), spring, TZ_LOCAL_GAP);
    expect_local(z, wall(2026, 3, 8, 2, 30), spring, TZ_LOCAL_GAP);
    expect_local(z, wall(2026, 3, 8, 2, 59) + 59, spring, TZ_LOCAL_GAP);
    expect_local(z, wall(2026, 3, 8, 3, 0), spring, TZ_LOCAL_NORMAL);
    expect_local(z, wall(2026, 3, 8, 3, 1), spring + 60, TZ_LOCAL_NORMAL);

    /* Overlap: [01:00, 02:00) happens twice; the first (EDT) is taken. */
    expect_local(z, wall(2026, 11, 1, 0, 59), fall - H - 60, TZ_LOCAL_NORMAL);
    expect_local(z, wall(2026, 11, 1, 1, 0), fall - H, TZ_LOCAL_OVERLAP);
    expect_local(z, wall(2026, 11, 1, 1, 30), utc(2026, 11, 1, 5, 30), TZ_LOCAL_OVERLAP);
    expect_local(z, wall(2026, 11, 1, 1, 59) + 59, fall - 1, TZ_LOCAL_OVERLAP);
    expect_local(z, wall(2026, 11, 1, 2, 0), fall + H, TZ_LOCAL_NORMAL);

    /* After 2037 the file's table ends and the footer rule takes over:
     * second Sunday of March and first Sunday of November 2040. */
    assert_int_equal(tz_offset_at(z, utc(2040, 3, 11, 7, 0) - 1), -5 * H);
    assert_int_equal(tz_offset_at(z, utc(2040, 3, 11, 7, 0)), -4 * H);
    assert_int_equal(tz_offset_at(z, utc(2040, 11, 4, 6, 0) - 1), -4 * H);
    assert_int_equal(tz_offset_at(z, utc(2040, 11, 4, 6, 0)), -5 * H);
    expect_local(z, wall(2040, 3, 11, 2, 30), utc(2040, 3, 11, 7, 0), TZ_LOCAL_GAP);
    expect_local(z, wall(2040, 11, 4, 1, 30), utc(2040, 11, 4, 5, 30), TZ_LOCAL_OVERLAP);
    expect_local(z, wall(2100, 7, 1, 12, 0), utc(2100, 7, 1, 16, 0), TZ_LOCAL_NORMAL);

    /* Before standard time (1883) New York kept local mean time. */
    assert_int_equal(tz_offset_at(z, utc(1850, 1, 1, 0, 0)), -17762);
}

static void
test_berlin(void **state)
{
    (void)state;
    NEED_TZDATA();
    tz_cache_clear();
    unsetenv("TZDIR");
    const struct tz *z = load("Europe/Berlin");
    int64_t spring = utc(2026, 3, 29, 1, 0); /* 02:00 CET -> 03:00 CEST */
    int64_t fall = utc(2026, 10, 25, 1, 0);  /* 03:00 CEST -> 02:00 CET */
    assert_int_equal(tz_offset_at(z, spring - 1), H);
    assert_int_equal(tz_offset_at(z, spring), 2 * H);
    assert_int_equal(tz_offset_at(z, fall - 1), 2 * H);
    assert_int_equal(tz_offset_at(z, fall), H);

    expect_local(z, wall(2026, 3, 29, 1, 59), spring - 60, TZ_LOCAL_NORMAL);
    expect_local(z, wall(2026, 3, 29, 2, 0), spring, TZ_LOCAL_GAP);
    expect_local(z, wall(2026, 3, 29, 2, 30), spring, TZ_LOCAL_GAP);
    expect_local(z, wall(2026, 3, 29, 3, 0), spring, TZ_LOCAL_NORMAL);
    expect_local(z, wall(2026, 10, 25, 1, 59), utc(2026, 10, 24, 23, 59), TZ_LOCAL_NORMAL);
    expect_local(z, wall(2026, 10, 25, 2, 0), utc(2026, 10, 25, 0, 0), TZ_LOCAL_OVERLAP);
    expect_local(z, wall(2026, 10, 25, 2, 30), utc(2026, 10, 25, 0, 30), TZ_LOCAL_OVERLAP);
    expect_local(z, wall(2026, 10, 25, 3, 0), utc(2026, 10, 25, 2, 0), TZ_LOCAL_NORMAL);
}

static void
test_adelaide(void **state)
{
    (void)state;
    NEED_TZDATA();
    tz_cache_clear();
    unsetenv("TZDIR");
    const struct tz *z = load("Australia/Adelaide");
    int64_t back = utc(2026, 4, 4, 16, 30);     /* Apr 5 03:00 ACDT -> 02:00 ACST */
    int64_t forward = utc(2026, 10, 3, 16, 30); /* Oct 4 02:00 ACST -> 03:00 ACDT */
    int acst = 9 * H + 1800, acdt = 10 * H + 1800;
    assert_int_equal(tz_offset_at(z, back - 1), acdt);
    assert_int_equal(tz_offset_at(z, back), acst);
    assert_int_equal(tz_offset_at(z, forward - 1), acst);
    assert_int_equal(tz_offset_at(z, forward), acdt);

    expect_local(z, wall(2026, 4, 5, 1, 59), utc(2026, 4, 4, 15, 29), TZ_LOCAL_NORMAL);
    expect_local(z, wall(2026, 4, 5, 2, 0), utc(2026, 4, 4, 15, 30), TZ_LOCAL_OVERLAP);
    expect_local(z, wall(2026, 4, 5, 2, 30), utc(2026, 4, 4, 16, 0), TZ_LOCAL_OVERLAP);
    expect_local(z, wall(2026, 4, 5, 3, 0), utc(2026, 4, 4, 17, 30), TZ_LOCAL_NORMAL);
    expect_local(z, wall(2026, 10, 4, 2, 0), forward, TZ_LOCAL_GAP);
    expect_local(z, wall(2026, 10, 4, 2, 30), forward, TZ_LOCAL_GAP);
    expect_local(z, wall(2026, 10, 4, 3, 0), forward, TZ_LOCAL_NORMAL);
    expect_local(z, wall(2026, 10, 4, 1, 59), forward - 60, TZ_LOCAL_NORMAL);

    /* Lord Howe moves by 30 minutes: the gap is [02:00, 02:30). */
    const struct tz *lh = load("Australia/Lord_Howe");
    expect_local(lh, wall(2026, 10, 4, 2, 15), utc(2026, 10, 3, 15, 30), TZ_LOCAL_GAP);
    expect_local(lh, wall(2026, 10, 4, 2, 30), utc(2026, 10, 3, 15, 30), TZ_LOCAL_NORMAL);
    expect_local(lh, wall(2026, 4, 5, 1, 45), utc(2026, 4, 4, 14, 45), TZ_LOCAL_OVERLAP);
}

/* Every instant round-trips through local time, except the second pass of a
 * repeated hour, which maps to the first. */
static void
test_round_trip(void **state)
{
    (void)state;
    NEED_TZDATA();
    tz_cache_clear();
    unsetenv("TZDIR");
    static const char *const zones[] = {
        "America/New_York", "Europe/Berlin",    "Australia/Adelaide", "Australia/Lord_Howe",
        "Pacific/Chatham",  "America/Santiago", "Europe/Dublin",      "Pacific/Apia"};
    for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
        const struct tz *z = load(zones[i]);
        for (int64_t u = utc(2010, 1, 1, 0, 0); u < utc(2045, 1, 1, 0, 0); u += 7 * 3593) {
            int64_t local = tz_utc_to_local(z, u);
            enum tz_local_kind k;
            int64_t back = tz_local_to_utc(z, local, &k);
            assert_int_not_equal(k, TZ_LOCAL_GAP);
            if (k == TZ_LOCAL_NORMAL)
                assert_int_equal(back, u);
            else
                assert_true(back <= u && tz_utc_to_local(z, back) == local);
        }
    }
}

/* ---- POSIX TZ footers ---------------------------------------------------- */

/* A zone made of the footer alone must agree with the real zone's table
 * over years when the rule held; this covers M rules with default, negative
 * and over-24h times, names in <>, half-hour and 45-minute offsets, and
 * negative DST. */
static void
test_footer_matches_table(void **state)
{
    (void)state;
    NEED_TZDATA();
    struct {
        const char *zone, *footer;
        int32_t std;
    } cases[] = {
        {"America/New_York", "EST5EDT,M3.2.0,M11.1.0", -5 * H},
        {"Europe/Berlin", "CET-1CEST,M3.5.0,M10.5.0/3", H},
        {"Australia/Adelaide", "ACST-9:30ACDT,M10.1.0,M4.1.0/3", 9 * H + 1800},
        {"Australia/Lord_Howe", "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", 10 * H + 1800},
        {"America/Nuuk", "<-02>2<-01>,M3.5.0/-1,M10.5.0/0", -2 * H},
        {"Asia/Jerusalem", "IST-2IDT,M3.4.4/26,M10.5.0", 2 * H},
        {"America/Santiago", "<-04>4<-03>,M9.1.6/24,M4.1.6/24", -4 * H},
        {"Europe/Dublin", "IST-1GMT0,M10.5.0,M3.5.0/1", H},
        {"Pacific/Chatham", "<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45", 12 * H + 2700},
        {"Antarctica/Troll", "<+00>0<+02>-2,M3.5.0/1,M10.5.0/3", 0},
        {"Asia/Tokyo", "JST-9", 9 * H},
    };
    const size_t n = sizeof(cases) / sizeof(cases[0]);
    const struct tz *real[sizeof(cases) / sizeof(cases[0])];

    tz_cache_clear();
    unsetenv("TZDIR");
    for (size_t i = 0; i < n; i++)
        real[i] = load(cases[i].zone);
    setenv("TZDIR", tmpdir, 1); /* the real zones stay cached */
    for (size_t i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof(name), "Rule/Z%zu", i);
        write_rule_zone(name, cases[i].footer, cases[i].std);
        const struct tz *r = load(name);
        for (int64_t u = utc(2027, 1, 1, 0, 0); u < utc(2037, 12, 1, 0, 0); u += 3 * 3607) {
            int want = tz_offset_at(real[i], u), got = tz_offset_at(r, u);
            if (want != got) {
                char a[48];
                cal_format_iso(u, 0, 1, a, sizeof(a));
                fail_msg("%s (%s) at %s: table says %d, rule says %d", cases[i].zone,
                         cases[i].footer, a, want, got);
            }
            int64_t local = tz_utc_to_local(r, u);
            assert_int_equal(tz_local_to_utc(r, local, NULL),
                             tz_local_to_utc(real[i], local, NULL));
        }
    }
}

static void
expect_switch(const struct tz *z, int64_t at, int before, int after)
{
    if (tz_offset_at(z, at - 1) != before || tz_offset_at(z, at) != after) {
        char a[48];
        cal_format_iso(at, 0, 1, a, sizeof(a));
        fail_msg("%s at %s: want %d -> %d, got %d -> %d", tz_name(z), a, before, after,
                 tz_offset_at(z, at - 1), tz_offset_at(z, at));
    }
}

static void
test_footer_julian_and_times(void **state)
{
    (void)state;
    use_tmpdir();

    /* Jn counts 1..365 and never Feb 29: J60 is March 1 even in 2028. */
    write_rule_zone("Rule/J", "AAA3BBB,J60/2,J300/2", -3 * H);
    const struct tz *z = load("Rule/J");
    expect_switch(z, utc(2028, 3, 1, 5, 0), -3 * H, -2 * H);
    expect_switch(z, utc(2027, 3, 1, 5, 0), -3 * H, -2 * H);
    expect_switch(z, utc(2028, 10, 27, 4, 0), -2 * H, -3 * H);
    expect_switch(z, utc(2027, 10, 27, 4, 0), -2 * H, -3 * H);

    /* n counts 0..365 with Feb 29: day 59 is Feb 29 in 2028, March 1 in 2027. */
    write_rule_zone("Rule/N", "<-03>3<-02>,59/2,299", -3 * H);
    z = load("Rule/N");
    expect_switch(z, utc(2028, 2, 29, 5, 0), -3 * H, -2 * H);
    expect_switch(z, utc(2027, 3, 1, 5, 0), -3 * H, -2 * H);
    expect_switch(z, utc(2028, 10, 26, 4, 0), -2 * H, -3 * H);
    expect_switch(z, utc(2027, 10, 27, 4, 0), -2 * H, -3 * H);

    /* Times below zero and beyond a day move the switch to another date:
     * first Sunday of March 2026 (the 1st) at -30h, last Saturday of October
     * (the 31st) at +150h. */
    write_rule_zone("Rule/Far", "AAA-1BBB-3,M3.1.0/-30,M10.5.6/150", H);
    z = load("Rule/Far");
    expect_switch(z, utc(2026, 2, 27, 17, 0), H, 3 * H);
    expect_switch(z, utc(2026, 11, 6, 3, 0), 3 * H, H);

    /* hh:mm:ss offsets and times. */
    write_rule_zone("Rule/Secs", "XXX3:30:15YYY2:15,M4.1.0/1:30:30,M9.5.0/0:00:01",
                    -(3 * H + 1815));
    z = load("Rule/Secs");
    /* April 5 2026 01:30:30 at -3:30:15 -> 05:00:45Z. */
    expect_switch(z, utc(2026, 4, 5, 5, 0) + 45, -(3 * H + 1815), -(2 * H + 900));
    /* Sept 27 2026 00:00:01 at -2:15 -> 02:15:01Z. */
    expect_switch(z, utc(2026, 9, 27, 2, 15) + 1, -(2 * H + 900), -(3 * H + 1815));

    /* All-year DST (RFC 8536): starts Jan 1 00:00, ends Dec 31 25:00. */
    write_rule_zone("Rule/AllYear", "EST5EDT,0/0,J365/25", -5 * H);
    z = load("Rule/AllYear");
    for (int64_t u = utc(2026, 1, 1, 0, 0); u < utc(2030, 1, 1, 0, 0); u += 3 * 3607)
        assert_int_equal(tz_offset_at(z, u), -4 * H);

    /* DST named without a rule: the US rules, one hour ahead. */
    write_rule_zone("Rule/Default", "AAA10BBB", -10 * H);
    z = load("Rule/Default");
    assert_int_equal(tz_offset_at(z, utc(2026, 7, 1, 0, 0)), -9 * H);
    assert_int_equal(tz_offset_at(z, utc(2026, 1, 1, 0, 0)), -10 * H);

    /* Only standard time. */
    write_rule_zone("Rule/Fixed", "<+0530>-5:30", 5 * H + 1800);
    z = load("Rule/Fixed");
    assert_int_equal(tz_offset_at(z, utc(2026, 7, 1, 0, 0)), 5 * H + 1800);
    int64_t s, e;
    tz_offset_span(z, 0, &s, &e);
    assert_true(s == INT64_MIN && e == INT64_MAX);
}

/* A table whose last transition is followed by the rule: the rule applies
 * only after it, and spans merge entries that keep the same offset. */
static void
test_table_then_rule(void **state)
{
    (void)state;
    use_tmpdir();
    int64_t trans[3] = {utc(2020, 6, 1, 0, 0), utc(2021, 1, 1, 0, 0), utc(2021, 11, 7, 6, 0)};
    unsigned char idx[3] = {1, 2, 0};
    int32_t offs[3] = {-5 * H, -4 * H, -4 * H}; /* types 1 and 2 differ in name only */
    struct tzif_spec s = {.version = '2',
                          .ntrans = 3,
                          .trans = trans,
                          .idx = idx,
                          .ntypes = 3,
                          .offs = offs,
                          .footer = "EST5EDT,M3.2.0,M11.1.0"};
    write_tzif("Mixed/Zone", &s);
    const struct tz *z = load("Mixed/Zone");
    int64_t a, b;
    /* -4 from 2020-06-01 to 2021-11-07: two table entries, one span. */
    assert_int_equal(tz_offset_span(z, utc(2020, 12, 31, 0, 0), &a, &b), -4 * H);
    assert_int_equal(a, trans[0]);
    assert_int_equal(b, trans[2]);
    /* The table wins before its last transition (the rule would say -5). */
    assert_int_equal(tz_offset_at(z, utc(2021, 1, 15, 0, 0)), -4 * H);
    assert_int_equal(tz_offset_at(z, utc(2020, 1, 15, 0, 0)), -5 * H);
    /* After it, the rule: EST until the second Sunday of March 2022. */
    assert_int_equal(tz_offset_span(z, utc(2021, 12, 1, 0, 0), &a, &b), -5 * H);
    assert_int_equal(a, trans[2]);
    assert_int_equal(b, utc(2022, 3, 13, 7, 0));
    expect_switch(z, utc(2022, 3, 13, 7, 0), -5 * H, -4 * H);
    expect_switch(z, utc(2022, 11, 6, 6, 0), -4 * H, -5 * H);
    assert_int_equal(tz_offset_at(z, utc(2030, 7, 1, 0, 0)), -4 * H);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utc_builtin),
        cmocka_unit_test(test_bad_names),
        cmocka_unit_test(test_malformed_files),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_cache_threads),
        cmocka_unit_test(test_new_york),
        cmocka_unit_test(test_berlin),
        cmocka_unit_test(test_adelaide),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_footer_matches_table),
        cmocka_unit_test(test_footer_julian_and_times),
        cmocka_unit_test(test_table_then_rule),
    };
    return cmocka_run_group_tests(tests, setup_tmpdir, teardown_tmpdir);
}
