/* test_opt.c - the CLI's option parser and help (cli/opt.c): parsing, the
 * messages of usage errors, --help, usage lines and sub-command dispatch. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* The parser is part of the cairn executable, not of a library: build it
 * into this test. */
#include "../../cli/opt.c"

/* ---- a command to parse with -------------------------------------------- */

struct targs {
    const char *dag, *limit, *out, *mode, *server, *lines, *upto;
    struct opt_list params;
    int json, follow;
};

static const struct opt_cmd t_show_cmd, t_list_cmd;
static const struct opt_cmd *const t_family[] = {&t_list_cmd, &t_show_cmd, NULL};

static const struct opt t_list_opts[] = {
    OPT_STR("--dag", NULL, "D", struct targs, dag, "only the runs of DAG D"),
    OPT_FLAG("--follow", "-f", struct targs, follow, "keep printing"),
    OPT_FLAG("--json", NULL, struct targs, json, "print JSON"),
    OPT_NUM("--limit", NULL, "N", 50, struct targs, limit, "at most N"),
    OPT_CHOICE("--mode", NULL, "none|failed|all", struct targs, mode, "what to redo"),
    OPT_REQ("-o", "--output", "FILE", struct targs, out, "where to write"),
    OPT_LIST("--param", NULL, "NAME=VALUE", struct targs, params, "set a parameter"),
    OPT_SERVER(struct targs, server),
};

static const struct opt_cmd t_list_cmd = {
    .name = "t list",
    .args = "RUN [TASK]",
    .max_args = 2,
    .extra_hint = " (quote it)",
    .about = "List things.",
    OPT_TABLE(t_list_opts),
    .family = t_family,
};

static const struct opt t_show_opts[] = {
    OPT_FLAG("--json", NULL, struct targs, json, "print JSON"),
};

static const struct opt_cmd t_show_cmd = {
    .name = "t show",
    .args = "RUN",
    .max_args = 1,
    OPT_TABLE(t_show_opts),
    .family = t_family,
};

/* Counts that may be 0 (OPT_NUM0), with and without an upper bound. */
static const struct opt t_count_opts[] = {
    OPT_NUM0("--lines", NULL, "N", 0, struct targs, lines, "show N lines (0: none)"),
    OPT_NUM0("--upto", NULL, "N", 9, struct targs, upto, "at most 9"),
};

static const struct opt_cmd t_count_cmd = {
    .name = "t count",
    .max_args = 0,
    OPT_TABLE(t_count_opts),
};

/* ---- capturing stdout and stderr ------------------------------------------ */

struct capture {
    int fd, saved;
    FILE *tmp;
};

static void
capture_start(struct capture *c, int fd)
{
    fflush(fd == 1 ? stdout : stderr);
    c->fd = fd;
    c->tmp = tmpfile();
    assert_non_null(c->tmp);
    c->saved = dup(fd);
    dup2(fileno(c->tmp), fd);
}

/* What was written since capture_start (malloc'd). */
static char *
capture_end(struct capture *c)
{
    fflush(c->fd == 1 ? stdout : stderr);
    dup2(c->saved, c->fd);
    close(c->saved);
    long n = ftell(c->tmp);
    char *buf = xcalloc(1, (size_t)n + 1);
    rewind(c->tmp);
    assert_int_equal(fread(buf, 1, (size_t)n, c->tmp), (size_t)n);
    fclose(c->tmp);
    return buf;
}

/* Parse the words of line (split at spaces) as argv of cmd; the return
 * value, what went to stdout and stderr (the caller frees them). */
struct result {
    int rc, nargs;
    char *out, *err;
    char *argv[32];
    char *copy;
};

static void
parse_line(const struct opt_cmd *cmd, const char *line, struct targs *a, struct result *r)
{
    int argc = 0;
    r->copy = xstrdup(line);
    for (char *p = r->copy; *p;) {
        r->argv[argc++] = p;
        p += strcspn(p, " ");
        if (*p)
            *p++ = '\0';
    }
    r->argv[argc] = NULL;
    r->nargs = -7;
    struct capture co, ce;
    capture_start(&co, 1);
    capture_start(&ce, 2);
    r->rc = opt_parse(cmd, argc, r->argv, a, &r->nargs);
    r->err = capture_end(&ce);
    r->out = capture_end(&co);
}

static void
result_free(struct result *r)
{
    free(r->out);
    free(r->err);
    free(r->copy);
}

/* line must be a usage error whose message contains want; a is untouched. */
static void
usage_error(const char *line, const char *want)
{
    struct targs a, before;
    memset(&a, 0, sizeof(a));
    a.dag = "untouched";
    before = a;
    struct result r;
    parse_line(&t_list_cmd, line, &a, &r);
    if (r.rc != 2 || !strstr(r.err, want))
        fail_msg("'%s': rc %d, stderr '%s', want 2 and '%s'", line, r.rc, r.err, want);
    assert_memory_equal(&a, &before, sizeof(a));
    assert_int_equal(r.nargs, -7);
    assert_string_equal(r.out, "");
    /* the usage follows the message */
    assert_non_null(strstr(r.err, "\nusage: cairn t list RUN [TASK] -o FILE"));
    result_free(&r);
}

/* ---- tests ------------------------------------------------------------- */

static void
test_values_and_flags(void **state)
{
    (void)state;
    struct targs a = {0};
    struct result r;
    parse_line(&t_list_cmd,
               "list r1 --dag d1 --json --limit=7 -o out.bin --param a=1 t2 --param=b=2=3 -f "
               "--mode failed --dag d2",
               &a, &r);
    assert_int_equal(r.rc, OPT_GO);
    assert_string_equal(r.err, "");
    assert_string_equal(a.dag, "d2"); /* the last one wins */
    assert_int_equal(a.json, 1);
    assert_int_equal(a.follow, 1);
    assert_string_equal(a.limit, "7");
    assert_string_equal(a.out, "out.bin");
    assert_string_equal(a.mode, "failed");
    assert_null(a.server);
    assert_int_equal(a.params.n, 2);
    assert_string_equal(a.params.v[0], "a=1");
    assert_string_equal(a.params.v[1], "b=2=3");
    assert_int_equal(r.nargs, 2);
    assert_string_equal(r.argv[1], "r1");
    assert_string_equal(r.argv[2], "t2");
    opt_list_free(&a.params);
    opt_list_free(&a.params); /* again: a no-op */
    opt_list_free(NULL);
    result_free(&r);
}

static void
test_aliases_dash_and_double_dash(void **state)
{
    (void)state;
    struct targs a = {0};
    struct result r;
    /* a value is taken as it is, even when it starts with '-'; "-" alone and
     * everything after "--" are arguments */
    parse_line(&t_list_cmd, "list --output - --dag --json -- --json", &a, &r);
    assert_int_equal(r.rc, OPT_GO);
    assert_string_equal(a.out, "-");
    assert_string_equal(a.dag, "--json");
    assert_int_equal(a.json, 0);
    assert_int_equal(r.nargs, 1);
    assert_string_equal(r.argv[1], "--json");
    result_free(&r);

    memset(&a, 0, sizeof(a));
    parse_line(&t_list_cmd, "list - -o=x", &a, &r);
    assert_int_equal(r.rc, OPT_GO);
    assert_int_equal(r.nargs, 1);
    assert_string_equal(r.argv[1], "-");
    assert_string_equal(a.out, "x");
    result_free(&r);
}

static void
test_usage_errors(void **state)
{
    (void)state;
    usage_error("list --jsn", "t list: unknown option '--jsn' (did you mean '--json'?)");
    usage_error("list -dag x", "unknown option '-dag' (did you mean '--dag'?)");
    usage_error("list --zzz", "t list: unknown option '--zzz'\n");
    usage_error("list -x", "t list: unknown option '-x'\n"); /* no guess from one letter */
    usage_error("list --dag", "t list: option '--dag' needs a value (D)");
    usage_error("list --json=1", "t list: option '--json' takes no value");
    usage_error("list --limit 0", "t list: --limit takes a number from 1 to 50, not '0'");
    usage_error("list --limit 51", "--limit takes a number from 1 to 50, not '51'");
    usage_error("list --limit 3x", "--limit takes a number from 1 to 50, not '3x'");
    usage_error("list --mode some", "t list: --mode takes none, failed or all, not 'some'");
    usage_error("list a b c", "t list: unexpected argument 'c' (quote it)");
    /* the first problem from the left is the one reported */
    usage_error("list --zzz --limit 0", "unknown option '--zzz'");
    usage_error("list --limit 0 --zzz", "--limit takes");
    usage_error("list --limit 0 --help", "--limit takes");
}

/* OPT_NUM0: a whole number, 0 included, up to its bound. */
static void
test_counts_from_zero(void **state)
{
    (void)state;
    struct targs a = {0};
    struct result r;
    parse_line(&t_count_cmd, "count --lines 0 --upto=0", &a, &r);
    assert_int_equal(r.rc, OPT_GO);
    assert_string_equal(a.lines, "0");
    assert_string_equal(a.upto, "0");
    result_free(&r);
    memset(&a, 0, sizeof(a));
    parse_line(&t_count_cmd, "count --lines 100000 --upto 9", &a, &r);
    assert_int_equal(r.rc, OPT_GO);
    assert_string_equal(a.lines, "100000");
    assert_string_equal(a.upto, "9");
    result_free(&r);
    static const char *const bad[][2] = {
        {"count --lines -1", "t count: --lines takes a number (0 or more), not '-1'"},
        {"count --lines x", "t count: --lines takes a number (0 or more), not 'x'"},
        {"count --lines 2.5", "t count: --lines takes a number (0 or more), not '2.5'"},
        {"count --lines=", "t count: --lines takes a number (0 or more), not ''"},
        {"count --upto 10", "t count: --upto takes a number from 0 to 9, not '10'"},
        {"count --upto -1", "t count: --upto takes a number from 0 to 9, not '-1'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&a, 0, sizeof(a));
        parse_line(&t_count_cmd, bad[i][0], &a, &r);
        if (r.rc != 2 || !strstr(r.err, bad[i][1]))
            fail_msg("'%s': rc %d, stderr '%s', want 2 and '%s'", bad[i][0], r.rc, r.err,
                     bad[i][1]);
        assert_null(a.lines);
        assert_null(a.upto);
        result_free(&r);
    }
}

static void
test_family_hint(void **state)
{
    (void)state;
    struct targs a = {0};
    struct result r;
    parse_line(&t_show_cmd, "show r --limit 3", &a, &r);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "t show: unknown option '--limit' (it is an option of t list)"));
    result_free(&r);
}

static void
test_help(void **state)
{
    (void)state;
    struct targs a = {0};
    struct result r;
    parse_line(&t_list_cmd, "list --bad=1x --help", &a, &r);
    assert_int_equal(r.rc, 2); /* the error came first */
    result_free(&r);

    parse_line(&t_list_cmd, "list r1 --json -h --zzz", &a, &r);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    assert_int_equal(a.json, 0); /* nothing stored */
    const char *want =
        "usage: cairn t list RUN [TASK] -o FILE [--dag D] [--follow] [--json] [--limit N]\n"
        "                    [--mode none|failed|all] [--param NAME=VALUE]...\n"
        "                    [--server URL]\n"
        "\n"
        "List things.\n"
        "\n"
        "options:\n"
        "  --dag D                 only the runs of DAG D\n"
        "  -f, --follow            keep printing\n"
        "  --json                  print JSON\n"
        "  --limit N               at most N\n"
        "  --mode none|failed|all  what to redo\n"
        "  -o, --output FILE       where to write\n"
        "  --param NAME=VALUE      set a parameter\n"
        "  --server URL            the scheduler (default: $CAIRN_SERVER or\n"
        "                          http://127.0.0.1:7780)\n"
        "  -h, --help              print this help\n";
    assert_string_equal(r.out, want);
    result_free(&r);
}

static void
test_summary_wraps(void **state)
{
    (void)state;
    struct capture c;
    capture_start(&c, 1);
    opt_summary(&t_list_cmd, 2, stdout);
    char *out = capture_end(&c);
    /* no --server, continuation lines under the arguments, none over 80 */
    assert_string_equal(out,
                        "  t list RUN [TASK] -o FILE [--dag D] [--follow] [--json] [--limit N]\n"
                        "         [--mode none|failed|all] [--param NAME=VALUE]...\n");
    for (char *line = out; *line;) {
        size_t n = strcspn(line, "\n");
        assert_true(n <= 80);
        line += n + (line[n] == '\n');
    }
    free(out);
}

/* ---- dispatch ------------------------------------------------------------ */

static char last_run[256];

static int
t_record(int argc, char **argv)
{
    struct sb sb;
    sb_init(&sb);
    for (int i = 0; i < argc; i++)
        sb_printf(&sb, "%s%s", i ? " " : "", argv[i]);
    snprintf(last_run, sizeof(last_run), "%s", sb.buf);
    sb_free(&sb);
    return 42;
}

static const struct opt_sub t_subs[] = {
    {"list", &t_list_cmd, t_record},
    {"show", &t_show_cmd, t_record},
};
static const struct opt_group t_group = {.name = "t", .about = "Things.", OPT_SUBS(t_subs)};
static const struct opt_group t_group_dflt = {
    .name = "t", OPT_SUBS(t_subs), .no_word = &t_subs[0], .other_word = &t_subs[1]};

/* A group whose first sub-command has no word, as `cairn backfill DAG`. */
static const struct opt_sub t_subs_own[] = {
    {NULL, &t_list_cmd, t_record},
    {"show", &t_show_cmd, t_record},
};
static const struct opt_group t_group_own = {
    .name = "t", OPT_SUBS(t_subs_own), .other_word = &t_subs_own[0]};

static int
dispatch_line(const struct opt_group *g, const char *line, char **out, char **err)
{
    char *copy = xstrdup(line), *argv[32];
    int argc = 0;
    for (char *p = copy; *p;) {
        argv[argc++] = p;
        p += strcspn(p, " ");
        if (*p)
            *p++ = '\0';
    }
    argv[argc] = NULL;
    last_run[0] = '\0';
    struct capture co, ce;
    capture_start(&co, 1);
    capture_start(&ce, 2);
    int rc = opt_dispatch(g, argc, argv);
    *err = capture_end(&ce);
    *out = capture_end(&co);
    free(copy);
    return rc;
}

static void
test_dispatch(void **state)
{
    (void)state;
    char *out, *err;
    /* the sub-command is the first argument that is not an option or the
     * value of one */
    assert_int_equal(dispatch_line(&t_group, "t --dag show --json list r1", &out, &err), 42);
    assert_string_equal(last_run, "list --dag show --json r1");
    free(out);
    free(err);
    assert_int_equal(dispatch_line(&t_group, "t --dag=x show r1", &out, &err), 42);
    assert_string_equal(last_run, "show --dag=x r1");
    free(out);
    free(err);

    assert_int_equal(dispatch_line(&t_group, "t lsit", &out, &err), 2);
    assert_non_null(strstr(err, "cairn: t: unknown subcommand 'lsit' (did you mean 'list'?)\n"
                                "usage: cairn t list RUN [TASK]"));
    assert_non_null(strstr(err, "\n       cairn t show RUN [--json]\n"));
    free(out);
    free(err);
    assert_int_equal(dispatch_line(&t_group, "t zzz", &out, &err), 2);
    assert_non_null(strstr(err, "unknown subcommand 'zzz' (expected list or show)"));
    free(out);
    free(err);
    assert_int_equal(dispatch_line(&t_group, "t --json", &out, &err), 2);
    assert_non_null(strstr(err, "cairn: t: missing subcommand (list or show)"));
    free(out);
    free(err);
    assert_int_equal(dispatch_line(&t_group, "t --zzzz", &out, &err), 2);
    assert_non_null(strstr(err, "cairn: t: unknown option '--zzzz'\nusage: cairn t list"));
    free(out);
    free(err);
    /* an unknown option before the sub-command is the first problem */
    assert_int_equal(dispatch_line(&t_group, "t --jsn list r1", &out, &err), 2);
    assert_non_null(strstr(err, "cairn: t: unknown option '--jsn' (did you mean '--json'?)"));
    free(out);
    free(err);
    assert_int_equal(dispatch_line(&t_group, "t --limit=3x show", &out, &err), 42);
    assert_string_equal(last_run, "show --limit=3x"); /* the sub-command checks values */
    free(out);
    free(err);
    last_run[0] = '\0';
    assert_string_equal(last_run, "");

    for (int i = 0; i < 2; i++) {
        assert_int_equal(dispatch_line(&t_group, i ? "t help" : "t --json --help", &out, &err), 0);
        assert_string_equal(err, "");
        assert_non_null(strstr(out, "usage: cairn t list RUN [TASK]"));
        assert_non_null(strstr(out, "\nThings.\n"));
        free(out);
        free(err);
    }

    /* a group's help: the usage of each sub-command, then the options of
     * each; the about of the sub-command without a word when the group has
     * none */
    assert_int_equal(dispatch_line(&t_group_own, "t --help", &out, &err), 0);
    assert_non_null(strstr(out, "usage: cairn t list RUN [TASK]"));
    assert_non_null(strstr(out, "\n       cairn t show RUN [--json]\n"));
    assert_non_null(strstr(out, "\nList things.\n\noptions of cairn t list:\n  --dag D "));
    assert_non_null(strstr(out, "\n\noptions of cairn t show:\n  --json      print JSON\n"));
    assert_null(strstr(out, "  -h, --help"));
    assert_non_null(strstr(out, "\n-h, --help after a sub-command prints its help alone (cairn t "
                                "show --help).\n"));
    free(out);
    free(err);
    assert_int_equal(dispatch_line(&t_group_own, "t r1 --json", &out, &err), 42);
    assert_string_equal(last_run, "t r1 --json");
    free(out);
    free(err);

    /* a group that runs a sub-command without a word, or for another word */
    assert_int_equal(dispatch_line(&t_group_dflt, "t --json", &out, &err), 42);
    assert_string_equal(last_run, "t --json");
    free(out);
    free(err);
    assert_int_equal(dispatch_line(&t_group_dflt, "t d1 --json", &out, &err), 42);
    assert_string_equal(last_run, "t d1 --json");
    free(out);
    free(err);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_and_flags),
        cmocka_unit_test(test_aliases_dash_and_double_dash),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_counts_from_zero),
        cmocka_unit_test(test_family_hint),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_summary_wraps),
        cmocka_unit_test(test_dispatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
