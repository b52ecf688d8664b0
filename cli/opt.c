/* opt.c - the parser and the help of the `cairn` commands' option tables
 * (see opt.h).
 *
 * It owns nothing past a call: the tables are the commands' static data,
 * parsed values are borrowed from argv, and the only memory it allocates is
 * the array of an OPT_T_LIST option, which the caller frees with
 * opt_list_free.
 *
 * opt_parse reads argv twice with the same scanner (opt__scan): once to
 * check it, storing nothing, and, if it holds no error and no --help, once
 * more to store the values and gather the positional arguments. So a
 * command's struct is untouched when it is given a usage error, and the
 * first problem on the command line, from the left, is the one reported
 * (as when --help comes before or after a bad option).
 *
 * Messages go to stderr as "cairn: NAME: ..." followed by the usage lines;
 * the exit code of a usage error is 2.
 */
#include "opt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Usage lines and `cairn help` lines are wrapped to this many columns. */
#define OPT_WIDTH 80

void
opt_list_free(struct opt_list *l)
{
    if (!l)
        return;
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

/* s as a whole decimal number from min (0 or 1) to max (0: no limit) */
static int
opt__count_ok(const char *s, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return !errno && end != s && !*end && v >= min && (max <= 0 || v <= max);
}

static int
opt__is_help(const char *a)
{
    return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0;
}

/* Whether a is an option word: starts with '-' and is not "-" alone. */
static int
opt__is_option(const char *a)
{
    return a[0] == '-' && a[1] != '\0';
}

/* The entry of cmd named by the first n bytes of a (name or alias). */
static const struct opt *
opt__find(const struct opt_cmd *cmd, const char *a, size_t n)
{
    for (size_t i = 0; i < cmd->nopts; i++) {
        const struct opt *o = &cmd->opts[i];
        if ((strlen(o->name) == n && strncmp(o->name, a, n) == 0) ||
            (o->alias && strlen(o->alias) == n && strncmp(o->alias, a, n) == 0))
            return o;
    }
    return NULL;
}

/* ---- usage lines --------------------------------------------------------- */

/* A line being filled up to OPT_WIDTH; units are never broken. */
struct opt_line {
    FILE *out;
    int col;    /* columns used on the current line */
    int indent; /* where a continuation line starts */
};

static void
opt__put(struct opt_line *l, const char *unit)
{
    int n = (int)strlen(unit);
    if (l->col > l->indent && l->col + 1 + n > OPT_WIDTH) {
        fprintf(l->out, "\n%*s", l->indent, "");
        l->col = l->indent;
    } else if (l->col > 0) {
        fputc(' ', l->out);
        l->col++;
    }
    fputs(unit, l->out);
    l->col += n;
}

/* "[--dag D]", "--from DATE", "[--json]", "[--param NAME=VALUE]..." */
static void
opt__unit(const struct opt *o, struct sb *sb)
{
    sb_printf(sb, "%s%s%s%s%s%s", o->required ? "" : "[", o->name, o->arg ? " " : "",
              o->arg ? o->arg : "", o->required ? "" : "]", o->type == OPT_T_LIST ? "..." : "");
}

/* "NAME ARGS [OPTIONS]" after lead (which the continuation lines are
 * indented under), wrapped, and a newline. */
static void
opt__line(const struct opt_cmd *cmd, const char *lead, int with_server, FILE *out)
{
    struct opt_line l = {out, 0, 0};
    struct sb sb;
    sb_init(&sb);
    sb_printf(&sb, "%s%s", lead, cmd->name);
    l.indent = (int)sb.len + 1;
    if (l.indent > 40)
        l.indent = (int)strlen(lead) + 4;
    opt__put(&l, sb.buf);
    sb_free(&sb);
    if (cmd->args)
        opt__put(&l, cmd->args);
    /* required options first, as they read like arguments */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < cmd->nopts; i++) {
            const struct opt *o = &cmd->opts[i];
            if (o->required != (pass == 0) || (!with_server && !strcmp(o->name, "--server")))
                continue;
            sb_init(&sb);
            opt__unit(o, &sb);
            opt__put(&l, sb.buf);
            sb_free(&sb);
        }
    }
    fputc('\n', out);
}

void
opt_usage(const struct opt_cmd *cmd, FILE *out)
{
    opt__line(cmd, "usage: cairn ", 1, out);
}

void
opt_summary(const struct opt_cmd *cmd, int indent, FILE *out)
{
    char lead[32];
    snprintf(lead, sizeof(lead), "%*s", indent < 30 ? indent : 30, "");
    opt__line(cmd, lead, 0, out);
}

/* "-f, --follow", "-o, --output FILE", "--dag D", "-n N" */
static void
opt__left(const struct opt *o, struct sb *sb)
{
    const char *shrt = NULL, *lng = o->name;
    if (o->alias && o->name[1] == '-') {
        shrt = o->alias;
    } else if (o->alias) {
        shrt = o->name;
        lng = o->alias;
    }
    sb_printf(sb, "%s%s%s%s%s", shrt ? shrt : "", shrt ? ", " : "", lng, o->arg ? " " : "",
              o->arg ? o->arg : "");
}

/* "  LEFT  help text", the text wrapped at word boundaries under itself. */
static void
opt__help_line(const char *left, size_t width, const char *help, FILE *out)
{
    struct opt_line l = {out, 0, 2 + (int)width + 2};
    fprintf(out, "  %-*s ", (int)width, left);
    l.col = l.indent - 1;
    for (const char *p = help; *p;) {
        size_t n = strcspn(p, " ");
        char *word = xstrndup(p, n);
        opt__put(&l, word);
        free(word);
        p += n + strspn(p + n, " ");
    }
    fputc('\n', out);
}

/* title ("options:") and a line per option of cmd; -h/--help last when
 * with_help. */
static void
opt__options(const struct opt_cmd *cmd, const char *title, int with_help, FILE *out)
{
    size_t width = strlen("-h, --help");
    for (size_t i = 0; i < cmd->nopts; i++) {
        struct sb sb;
        sb_init(&sb);
        opt__left(&cmd->opts[i], &sb);
        if (sb.len > width)
            width = sb.len;
        sb_free(&sb);
    }
    fprintf(out, "\n%s\n", title);
    for (size_t i = 0; i < cmd->nopts; i++) {
        struct sb sb;
        sb_init(&sb);
        opt__left(&cmd->opts[i], &sb);
        opt__help_line(sb.buf, width, cmd->opts[i].help, out);
        sb_free(&sb);
    }
    if (with_help)
        opt__help_line("-h, --help", width, "print this help", out);
}

void
opt_help(const struct opt_cmd *cmd, FILE *out)
{
    opt_usage(cmd, out);
    if (cmd->about)
        fprintf(out, "\n%s\n", cmd->about);
    opt__options(cmd, "options:", 1, out);
}

/* ---- messages ------------------------------------------------------------ */

int
opt_fail(const struct opt_cmd *cmd, const char *what, const char *arg)
{
    if (arg)
        fprintf(stderr, "cairn: %s: %s '%s'\n", cmd->name, what, arg);
    else
        fprintf(stderr, "cairn: %s: %s\n", cmd->name, what);
    opt_usage(cmd, stderr);
    return 2;
}

const char *
opt_closest(const char *word, const char *const *cands, size_t n)
{
    const char *w = word + strspn(word, "-");
    size_t len = strlen(w), best = (size_t)-1;
    size_t cap = len <= 3 ? 1 : (len <= 6 ? 2 : 3);
    const char *pick = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!cands[i])
            continue;
        size_t d = str_distance(w, cands[i] + strspn(cands[i], "-"), cap);
        if (d <= cap && d < len && d < best) {
            best = d;
            pick = cands[i];
        }
    }
    return pick;
}

/* The names and aliases of cmd's options, and --help, into a malloc'd array
 * (*n entries; aliases may be NULL). */
static const char **
opt__names(const struct opt_cmd *cmd, size_t *n)
{
    const char **v = xcalloc(2 * cmd->nopts + 1, sizeof(*v));
    for (size_t i = 0; i < cmd->nopts; i++) {
        v[2 * i] = cmd->opts[i].name;
        v[2 * i + 1] = cmd->opts[i].alias;
    }
    v[2 * cmd->nopts] = "--help";
    *n = 2 * cmd->nopts + 1;
    return v;
}

/* "cairn: NAME: unknown option 'X'" with a suggestion: the closest option of
 * cmd, or the sub-command of its family that takes X. */
static int
opt__unknown(const struct opt_cmd *cmd, const char *a, size_t n)
{
    char *word = xstrndup(a, n);
    size_t nn;
    const char **names = opt__names(cmd, &nn);
    const char *close = opt_closest(word, names, nn);
    const struct opt_cmd *other = NULL;
    for (size_t i = 0; !close && cmd->family && cmd->family[i]; i++)
        if (cmd->family[i] != cmd && opt__find(cmd->family[i], word, n)) {
            other = cmd->family[i];
            break;
        }
    if (close)
        fprintf(stderr, "cairn: %s: unknown option '%s' (did you mean '%s'?)\n", cmd->name, a,
                close);
    else if (other)
        fprintf(stderr, "cairn: %s: unknown option '%s' (it is an option of %s)\n", cmd->name, a,
                other->name);
    else
        fprintf(stderr, "cairn: %s: unknown option '%s'\n", cmd->name, a);
    opt_usage(cmd, stderr);
    free(names);
    free(word);
    return 2;
}

/* "none|failed|all" has the word v. */
static int
opt__choice_ok(const char *words, const char *v)
{
    size_t n = strlen(v);
    for (const char *p = words; *p;) {
        size_t k = strcspn(p, "|");
        if (k == n && strncmp(p, v, n) == 0)
            return 1;
        p += k + (p[k] == '|');
    }
    return 0;
}

/* "cairn: NAME: --reprocess takes none, failed or all, not 'x'" */
static int
opt__bad_choice(const struct opt_cmd *cmd, const struct opt *o, const char *v)
{
    struct sb sb;
    sb_init(&sb);
    sb_printf(&sb, "%s takes ", o->name);
    size_t nwords = 1;
    for (const char *p = o->arg; *p; p++)
        nwords += *p == '|';
    size_t k = 0;
    for (const char *p = o->arg; *p; k++) {
        size_t len = strcspn(p, "|");
        sb_printf(&sb, "%s%.*s", k == 0 ? "" : (k + 1 == nwords ? " or " : ", "), (int)len, p);
        p += len + (p[len] == '|');
    }
    sb_puts(&sb, ", not");
    int rc = opt_fail(cmd, sb.buf, v);
    sb_free(&sb);
    return rc;
}

/* ---- parsing ------------------------------------------------------------- */

/* Check argv against cmd and, when args is not NULL, store what it holds
 * (see opt.h). Returns OPT_GO, 0 (help printed) or 2 (usage error). */
static int
opt__scan(const struct opt_cmd *cmd, int argc, char **argv, char *args, int *nargs)
{
    int npos = 0, only_args = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (only_args || !opt__is_option(a)) {
            if (cmd->max_args >= 0 && npos >= cmd->max_args) {
                fprintf(stderr, "cairn: %s: unexpected argument '%s'%s\n", cmd->name, a,
                        cmd->extra_hint ? cmd->extra_hint : "");
                opt_usage(cmd, stderr);
                return 2;
            }
            if (args)
                argv[1 + npos] = a;
            npos++;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_args = 1;
            continue;
        }
        if (opt__is_help(a)) {
            opt_help(cmd, stdout);
            return 0;
        }
        const char *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        const struct opt *o = opt__find(cmd, a, n);
        if (!o)
            return opt__unknown(cmd, a, n);
        if (o->type == OPT_T_FLAG) {
            if (eq) {
                fprintf(stderr, "cairn: %s: option '%.*s' takes no value\n", cmd->name, (int)n, a);
                opt_usage(cmd, stderr);
                return 2;
            }
            if (args)
                *(int *)(args + o->off) = 1;
            continue;
        }
        const char *v;
        if (eq) {
            v = eq + 1;
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            fprintf(stderr, "cairn: %s: option '%s' needs a value (%s)\n", cmd->name, a, o->arg);
            opt_usage(cmd, stderr);
            return 2;
        }
        switch (o->type) {
        case OPT_T_NUM:
        case OPT_T_NUM0: {
            long min = o->type == OPT_T_NUM0 ? 0 : 1;
            if (!opt__count_ok(v, min, o->max)) {
                char what[96];
                if (o->max > 0)
                    snprintf(what, sizeof(what), "%s takes a number from %ld to %ld, not", o->name,
                             min, o->max);
                else if (min == 0)
                    snprintf(what, sizeof(what), "%s takes a number (0 or more), not", o->name);
                else
                    snprintf(what, sizeof(what), "%s takes a positive number, not", o->name);
                return opt_fail(cmd, what, v);
            }
            break;
        }
        case OPT_T_CHOICE:
            if (!opt__choice_ok(o->arg, v))
                return opt__bad_choice(cmd, o, v);
            break;
        default:
            break;
        }
        if (!args)
            continue;
        if (o->type == OPT_T_LIST) {
            struct opt_list *l = (struct opt_list *)(void *)(args + o->off);
            xgrow((void **)&l->v, &l->cap, l->n + 1, sizeof(*l->v));
            l->v[l->n++] = v;
        } else {
            *(const char **)(void *)(args + o->off) = v;
        }
    }
    if (nargs)
        *nargs = npos;
    return OPT_GO;
}

int
opt_parse(const struct opt_cmd *cmd, int argc, char **argv, void *args, int *nargs)
{
    int rc = opt__scan(cmd, argc, argv, NULL, NULL);
    if (rc != OPT_GO)
        return rc;
    return opt__scan(cmd, argc, argv, args, nargs);
}

/* ---- groups -------------------------------------------------------------- */

void
opt_group_help(const struct opt_group *g, FILE *out)
{
    const struct opt_cmd *own = NULL; /* the sub-command without a word, if any */
    for (size_t i = 0; i < g->nsubs; i++) {
        opt__line(g->subs[i].cmd, i == 0 ? "usage: cairn " : "       cairn ", 1, out);
        if (!g->subs[i].word)
            own = g->subs[i].cmd;
    }
    if (g->about)
        fprintf(out, "\n%s\n", g->about);
    else if (own && own->about)
        fprintf(out, "\n%s\n", own->about);
    for (size_t i = 0; i < g->nsubs; i++) {
        const struct opt_cmd *c = g->subs[i].cmd;
        if (c->nopts == 0)
            continue;
        char *title = xasprintf("options of cairn %s:", c->name);
        opt__options(c, title, 0, out);
        free(title);
    }
    const char *example = NULL;
    for (size_t i = 0; i < g->nsubs && !example; i++)
        example = g->subs[i].word;
    if (example)
        fprintf(out,
                "\n-h, --help after a sub-command prints its help alone (cairn %s %s --help).\n",
                g->name, example);
}

static void
opt__group_usage(const struct opt_group *g)
{
    for (size_t i = 0; i < g->nsubs; i++)
        opt__line(g->subs[i].cmd, i == 0 ? "usage: cairn " : "       cairn ", 1, stderr);
}

/* The option of any of g's sub-commands that the first n bytes of a name. */
static const struct opt *
opt__group_find(const struct opt_group *g, const char *a, size_t n)
{
    for (size_t i = 0; i < g->nsubs; i++) {
        const struct opt *o = opt__find(g->subs[i].cmd, a, n);
        if (o)
            return o;
    }
    return NULL;
}

/* "list, show, retry or cancel" */
static void
opt__words(const struct opt_group *g, struct sb *sb)
{
    size_t n = 0, k = 0;
    for (size_t i = 0; i < g->nsubs; i++)
        n += g->subs[i].word != NULL;
    for (size_t i = 0; i < g->nsubs; i++) {
        if (!g->subs[i].word)
            continue;
        sb_printf(sb, "%s%s", k == 0 ? "" : (k + 1 == n ? " or " : ", "), g->subs[i].word);
        k++;
    }
}

/* "cairn: NAME: unknown option 'X'", the closest option of any sub-command
 * suggested. */
static int
opt__group_unknown(const struct opt_group *g, const char *a)
{
    size_t n = 0, k = 0;
    for (size_t i = 0; i < g->nsubs; i++)
        n += 2 * g->subs[i].cmd->nopts;
    const char **names = xcalloc(n + 1, sizeof(*names));
    for (size_t i = 0; i < g->nsubs; i++)
        for (size_t j = 0; j < g->subs[i].cmd->nopts; j++) {
            names[k++] = g->subs[i].cmd->opts[j].name;
            names[k++] = g->subs[i].cmd->opts[j].alias;
        }
    names[k++] = "--help";
    const char *eq = strchr(a, '=');
    char *word = xstrndup(a, eq ? (size_t)(eq - a) : strlen(a));
    const char *close = opt_closest(word, names, k);
    if (close)
        fprintf(stderr, "cairn: %s: unknown option '%s' (did you mean '%s'?)\n", g->name, a, close);
    else
        fprintf(stderr, "cairn: %s: unknown option '%s'\n", g->name, a);
    opt__group_usage(g);
    free(word);
    free(names);
    return 2;
}

int
opt_dispatch(const struct opt_group *g, int argc, char **argv)
{
    int word = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opt__is_option(a)) {
            word = i;
            break;
        }
        if (strcmp(a, "--") == 0) {
            word = i + 1 < argc ? i + 1 : 0;
            break;
        }
        if (opt__is_help(a)) {
            opt_group_help(g, stdout);
            return 0;
        }
        const char *eq = strchr(a, '=');
        const struct opt *o = opt__group_find(g, a, eq ? (size_t)(eq - a) : strlen(a));
        if (!o)
            return opt__group_unknown(g, a);
        if (o->type != OPT_T_FLAG && !eq)
            i++; /* its value */
    }
    if (word) {
        const char *w = argv[word];
        for (size_t i = 0; i < g->nsubs; i++) {
            if (!g->subs[i].word || strcmp(g->subs[i].word, w) != 0)
                continue;
            /* argv[word] becomes the sub-command's argv[0] */
            memmove(argv + 2, argv + 1, (size_t)(word - 1) * sizeof(*argv));
            argv[1] = (char *)w;
            return g->subs[i].run(argc - 1, argv + 1);
        }
        if (strcmp(w, "help") == 0) {
            opt_group_help(g, stdout);
            return 0;
        }
        if (g->other_word)
            return g->other_word->run(argc, argv);
        const char **cands = xcalloc(g->nsubs, sizeof(*cands));
        for (size_t i = 0; i < g->nsubs; i++)
            cands[i] = g->subs[i].word;
        const char *close = opt_closest(w, cands, g->nsubs);
        struct sb sb;
        sb_init(&sb);
        opt__words(g, &sb);
        if (close)
            fprintf(stderr, "cairn: %s: unknown subcommand '%s' (did you mean '%s'?)\n", g->name, w,
                    close);
        else
            fprintf(stderr, "cairn: %s: unknown subcommand '%s' (expected %s)\n", g->name, w,
                    sb.buf);
        sb_free(&sb);
        free(cands);
        opt__group_usage(g);
        return 2;
    }
    if (g->no_word)
        return g->no_word->run(argc, argv);
    struct sb sb;
    sb_init(&sb);
    opt__words(g, &sb);
    fprintf(stderr, "cairn: %s: missing subcommand (%s)\n", g->name, sb.buf);
    sb_free(&sb);
    opt__group_usage(g);
    return 2;
}
