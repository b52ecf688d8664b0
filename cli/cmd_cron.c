/* cmd_cron.c - `cairn cron next|prev EXPR`: when a schedule fires, offline
 * (common/cron.c and common/tz.c; the syntax is docs/cron.md).
 *
 * It owns the option tables of cron next and cron prev and the message for a
 * bad expression, with a caret under the column cron_parse names. Exit codes:
 * 0 printed, 1 a bad expression or zone, or no fire time within 5 years, 2 a
 * usage error (a bad TIME or -n too).
 */
#include <stdio.h>
#include <string.h>

#include "cal.h"
#include "cli.h"
#include "cliutil.h"
#include "cron.h"
#include "err.h"
#include "opt.h"
#include "tz.h"
#include "util.h"

#define CRON_CLI_DEFAULT_N 5
#define CRON_CLI_MAX_N 100000

/* Echo the expression and put a caret under column col. */
static void
cron_cli_caret(const char *expr, int col)
{
    size_t len = strlen(expr);
    if (col < 0)
        col = 0;
    if ((size_t)col > len)
        col = (int)len;
    fprintf(stderr, "  %s\n  ", expr);
    for (int i = 0; i < col; i++)
        fputc(expr[i] == '\t' ? '\t' : ' ', stderr);
    fputs("^\n", stderr);
}

struct cron_cli_args {
    const char *zone, *when, *count;
};

#define CRON_CLI_TIME_HELP                                                                         \
    "TIME is YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS] (wall clock in ZONE), or either\n"                  \
    "followed by Z or +HH:MM / -HH:MM for an absolute instant.\n"                                  \
    "See docs/cron.md for the syntax and the daylight saving time policy."

static const struct opt cron_cli_next_opts[] = {
    OPT_STR("--after", NULL, "TIME", struct cron_cli_args, when, "start after TIME (default: now)"),
    OPT_STR("-n", "--count", "N", struct cron_cli_args, count,
            "how many times to print (default 5)"),
    OPT_STR("--tz", NULL, "ZONE", struct cron_cli_args, zone,
            "the IANA zone the schedule runs in (default UTC)"),
};

static const struct opt cron_cli_prev_opts[] = {
    OPT_STR("--before", NULL, "TIME", struct cron_cli_args, when,
            "start before TIME (default: now)"),
    OPT_STR("-n", "--count", "N", struct cron_cli_args, count,
            "how many times to print (default 5)"),
    OPT_STR("--tz", NULL, "ZONE", struct cron_cli_args, zone,
            "the IANA zone the schedule runs in (default UTC)"),
};

static const struct opt_cmd cron_cli_next_cmd, cron_cli_prev_cmd;
static const struct opt_cmd *const cron_cli_family[] = {&cron_cli_next_cmd, &cron_cli_prev_cmd,
                                                        NULL};

static const struct opt_cmd cron_cli_next_cmd = {
    .name = "cron next",
    .args = "EXPR",
    .max_args = 1,
    .extra_hint = " (quote the expression)",
    .about = "Print the next N fire times of a cron expression, one per line, in ISO 8601\n"
             "with the zone's UTC offset.\n\n" CRON_CLI_TIME_HELP,
    OPT_TABLE(cron_cli_next_opts),
    .family = cron_cli_family,
};

static const struct opt_cmd cron_cli_prev_cmd = {
    .name = "cron prev",
    .args = "EXPR",
    .max_args = 1,
    .extra_hint = " (quote the expression)",
    .about = "Print the previous N fire times of a cron expression, newest first, one per\n"
             "line, in ISO 8601 with the zone's UTC offset.\n\n" CRON_CLI_TIME_HELP,
    OPT_TABLE(cron_cli_prev_opts),
    .family = cron_cli_family,
};

static int cron_cli_run(int argc, char **argv);

static const struct opt_sub cron_cli_subs[] = {
    {"next", &cron_cli_next_cmd, cron_cli_run},
    {"prev", &cron_cli_prev_cmd, cron_cli_run},
};

static const struct opt_group cron_cli_group = {
    .name = "cron",
    .about = "Print the next (or previous) N fire times of a cron expression, one per\n"
             "line, in ISO 8601 with the zone's UTC offset.\n\n" CRON_CLI_TIME_HELP,
    OPT_SUBS(cron_cli_subs),
};

static int
cron_cli_main(int argc, char **argv)
{
    return opt_dispatch(&cron_cli_group, argc, argv);
}

const struct cli_command cmd_cron = {"cron", cron_cli_main, NULL, &cron_cli_group};

/* cron next|prev EXPR; argv[0] says which. */
static int
cron_cli_run(int argc, char **argv)
{
    int backward = strcmp(argv[0], "prev") == 0;
    const struct opt_cmd *cmd = backward ? &cron_cli_prev_cmd : &cron_cli_next_cmd;
    struct cron_cli_args a = {0};
    int nargs, prc = opt_parse(cmd, argc, argv, &a, &nargs);
    if (prc != OPT_GO)
        return prc;
    if (nargs == 0)
        return opt_fail(cmd, "missing cron expression", NULL);
    const char *expr = argv[1], *zone = a.zone, *when = a.when, *count = a.count;
    const char *when_opt = backward ? "--before" : "--after";

    long n = CRON_CLI_DEFAULT_N;
    if (count && (cli_parse_positive(count, &n) != 0 || n > CRON_CLI_MAX_N))
        return cli_usage_error("cron: -n wants a number from 1 to %d, got '%s'", CRON_CLI_MAX_N,
                               count);

    struct cron c;
    char msg[256];
    int col = 0;
    if (cron_parse(&c, expr, msg, sizeof(msg), &col) != 0) {
        fprintf(stderr, "cairn: bad cron expression '%s': %s\n", expr, msg);
        cron_cli_caret(expr, col);
        return 1;
    }

    const struct tz *z = NULL;
    if (zone) {
        int rc = tz_load(&z, zone);
        if (rc == CAIRN_ENOENT) {
            fprintf(stderr,
                    "cairn: unknown time zone '%s' (expected an IANA name such as "
                    "UTC or Europe/Berlin)\n",
                    zone);
            return 1;
        }
        if (rc != 0) {
            fprintf(stderr, "cairn: cannot load time zone '%s': %s\n", zone, cairn_strerror(rc));
            return 1;
        }
    }

    int64_t t;
    if (when) {
        int has_time, has_offset;
        if (cal_parse(when, &t, &has_time, &has_offset) != 0)
            return cli_usage_error("cron: bad time '%s' for %s (expected YYYY-MM-DD, "
                                   "YYYY-MM-DDTHH:MM[:SS], optionally with Z or +HH:MM)",
                                   when, when_opt);
        if (!has_offset)
            t = tz_local_to_utc(z, t, NULL);
    } else {
        t = clock_wall_ms() / 1000;
    }

    int utc_style = !z || strcmp(tz_name(z), "UTC") == 0 || strcmp(tz_name(z), "Etc/UTC") == 0;
    for (long i = 0; i < n; i++) {
        int64_t tick = backward ? cron_prev(&c, z, t) : cron_next(&c, z, t);
        if (tick == -1) {
            char from[48];
            cal_format_iso(t, tz_offset_at(z, t), utc_style, from, sizeof(from));
            fprintf(stderr, "cairn: '%s' does not fire within 5 years %s %s\n", expr,
                    backward ? "before" : "after", from);
            return 1;
        }
        char buf[48];
        cal_format_iso(tick, tz_offset_at(z, tick), utc_style, buf, sizeof(buf));
        puts(buf);
        t = tick;
    }
    return 0;
}
