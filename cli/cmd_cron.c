/* cmd_cron.c - `cairn cron next|prev EXPR`: show when a schedule fires. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cal.h"
#include "cli.h"
#include "cliutil.h"
#include "cron.h"
#include "err.h"
#include "tz.h"
#include "util.h"

#define CRON_CLI_DEFAULT_N 5
#define CRON_CLI_MAX_N 100000

static const char cron_cli_usage[] =
    "usage: cairn cron next EXPR [--tz ZONE] [--after TIME] [-n N]\n"
    "       cairn cron prev EXPR [--tz ZONE] [--before TIME] [-n N]\n"
    "\n"
    "Print the next (or previous) N fire times of a cron expression, one per\n"
    "line, in ISO 8601 with the zone's UTC offset.\n"
    "\n"
    "  --tz ZONE       IANA zone the schedule runs in (default UTC)\n"
    "  --after TIME    start after TIME (next; default now)\n"
    "  --before TIME   start before TIME (prev; default now)\n"
    "  -n N            how many times to print (default 5)\n"
    "\n"
    "TIME is YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS] (wall clock in ZONE), or either\n"
    "followed by Z or +HH:MM / -HH:MM for an absolute instant.\n"
    "See docs/cron.md for the syntax and the daylight saving time policy.\n";

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

int
cmd_cron(int argc, char **argv)
{
    const char *expr = NULL, *zone = NULL, *when = NULL, *count = NULL;
    bool opts_done = false;
    int backward;

    if (argc < 2) {
        cli_usage_error("cron: missing subcommand (next or prev)");
        fputs(cron_cli_usage, stderr);
        return 2;
    }
    if (cli_is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
        fputs(cron_cli_usage, stdout);
        return 0;
    }
    if (strcmp(argv[1], "next") == 0)
        backward = 0;
    else if (strcmp(argv[1], "prev") == 0)
        backward = 1;
    else
        return cli_usage_error("cron: unknown subcommand '%s' (expected next or prev)", argv[1]);

    const char *when_opt = backward ? "--before" : "--after";
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        int r;
        if (!opts_done && a[0] == '-' && a[1] != '\0') {
            if (strcmp(a, "--") == 0) {
                opts_done = true;
            } else if (cli_is_help(a)) {
                fputs(cron_cli_usage, stdout);
                return 0;
            } else if ((r = cli_opt_value(argc, argv, &i, "--tz", &zone)) != 0 ||
                       (r = cli_opt_value(argc, argv, &i, when_opt, &when)) != 0 ||
                       (r = cli_opt_value(argc, argv, &i, "--count", &count)) != 0 ||
                       (r = cli_opt_value(argc, argv, &i, "-n", &count)) != 0) {
                if (r < 0)
                    return cli_usage_error("cron: option %s needs a value", a);
            } else {
                cli_usage_error("cron %s: unknown option '%s'", argv[1], a);
                fputs(cron_cli_usage, stderr);
                return 2;
            }
            continue;
        }
        if (expr)
            return cli_usage_error("cron %s: unexpected argument '%s' (quote the expression)",
                                   argv[1], a);
        expr = a;
    }
    if (!expr) {
        cli_usage_error("cron %s: missing cron expression", argv[1]);
        fputs(cron_cli_usage, stderr);
        return 2;
    }

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
