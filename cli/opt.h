/* opt.h - the option tables of the `cairn` commands and the one parser that
 * reads argv with them and prints their --help (prefix: opt_).
 *
 * Each command describes itself once, in a struct opt_cmd: its name, its
 * positional arguments, what it does, and a table of its options (sorted by
 * name). The same description drives parsing, `cairn CMD --help`, the usage
 * lines printed after a usage error and the lines of `cairn help`, so they
 * cannot disagree. A command with sub-commands (`runs list|show|...`) is a
 * struct opt_group of such descriptions.
 *
 *     struct runs_args { const char *dag, *server; int json; };
 *     static const struct opt runs_show_opts[] = {
 *         OPT_STR("--dag", NULL, "D", struct runs_args, dag, "the DAG of RUN"),
 *         OPT_FLAG("--json", NULL, struct runs_args, json, "print the run as JSON"),
 *         OPT_SERVER(struct runs_args, server),
 *     };
 *     static const struct opt_cmd runs_show_cmd = {
 *         .name = "runs show", .args = "RUN", .max_args = 1,
 *         .about = "Show one run and its tasks.", OPT_TABLE(runs_show_opts),
 *     };
 *     ...
 *     struct runs_args a = {0};
 *     int n, rc = opt_parse(&runs_show_cmd, argc, argv, &a, &n);
 *     if (rc != OPT_GO)
 *         return rc; // --help printed (0) or a usage error (2)
 *     // argv[1] .. argv[n] are the positional arguments
 *
 * The syntax: `--opt VALUE` or `--opt=VALUE` (short names too: `-n 3`,
 * `-n=3`), options and positional arguments in any order, `--` ends the
 * options, a lone `-` is a positional argument, `-h`/`--help` anywhere prints
 * the help. An unknown option is an error that names the closest known one.
 *
 * For a single-threaded command-line program: messages go to stderr with a
 * "cairn: " prefix, help to stdout; allocation failures abort (util.h).
 */
#ifndef CAIRN_OPT_H
#define CAIRN_OPT_H

#include <stddef.h>
#include <stdio.h>

enum opt_type {
    OPT_T_FLAG,   /* no value; the int field becomes 1 */
    OPT_T_STR,    /* the const char * field points at the value (the last one given wins) */
    OPT_T_NUM,    /* OPT_T_STR whose value must be a whole number from 1 to max (0: no limit) */
    OPT_T_NUM0,   /* OPT_T_NUM that also takes 0 ("--error-lines 0": none) */
    OPT_T_CHOICE, /* OPT_T_STR whose value must be one of the words of arg ("none|failed|all") */
    OPT_T_LIST,   /* repeatable; every value is appended to the struct opt_list field */
};

/* Where an OPT_T_LIST option's values go: v[0] .. v[n-1], in the order given,
 * borrowed from argv. Start it zeroed; opt_list_free releases the array. */
struct opt_list {
    const char **v;
    size_t n, cap;
};

void opt_list_free(struct opt_list *l);

/* One option of a command. */
struct opt {
    const char *name;  /* as shown in the usage line: "--dag", or "-n" */
    const char *alias; /* the other spelling ("-f" for "--follow"), or NULL */
    const char *arg;   /* the value's name in usage and help ("D"); NULL for a flag */
    const char *help;  /* one line for --help */
    enum opt_type type;
    size_t off;   /* where the value goes: offsetof the field in the command's struct */
    long max;     /* OPT_T_NUM, OPT_T_NUM0: the largest value accepted, 0 for no limit */
    int required; /* shown without brackets in the usage line; the command checks it */
};

/* The entries, with the field's type checked at compile time: a flag's field
 * is an int, a value's a const char *, a list's a struct opt_list. */
#define OPT__OFF(type, field, ctype) _Generic(((type *)0)->field, ctype : offsetof(type, field))
#define OPT_FLAG(name, alias, type, field, help)                                                   \
    {                                                                                              \
        name, alias, NULL, help, OPT_T_FLAG, OPT__OFF(type, field, int), 0, 0                      \
    }
#define OPT_STR(name, alias, arg, type, field, help)                                               \
    {                                                                                              \
        name, alias, arg, help, OPT_T_STR, OPT__OFF(type, field, const char *), 0, 0               \
    }
#define OPT_REQ(name, alias, arg, type, field, help)                                               \
    {                                                                                              \
        name, alias, arg, help, OPT_T_STR, OPT__OFF(type, field, const char *), 0, 1               \
    }
#define OPT_NUM(name, alias, arg, max, type, field, help)                                          \
    {                                                                                              \
        name, alias, arg, help, OPT_T_NUM, OPT__OFF(type, field, const char *), max, 0             \
    }
#define OPT_NUM0(name, alias, arg, max, type, field, help)                                         \
    {                                                                                              \
        name, alias, arg, help, OPT_T_NUM0, OPT__OFF(type, field, const char *), max, 0            \
    }
#define OPT_CHOICE(name, alias, words, type, field, help)                                          \
    {                                                                                              \
        name, alias, words, help, OPT_T_CHOICE, OPT__OFF(type, field, const char *), 0, 0          \
    }
#define OPT_LIST(name, alias, arg, type, field, help)                                              \
    {                                                                                              \
        name, alias, arg, help, OPT_T_LIST, OPT__OFF(type, field, struct opt_list), 0, 0           \
    }
/* --server URL, which every command that talks to the scheduler takes. */
#define OPT_SERVER(type, field)                                                                    \
    OPT_STR("--server", NULL, "URL", type, field,                                                  \
            "the scheduler (default: $CAIRN_SERVER or http://127.0.0.1:7780)")

/* A command: `cairn NAME ARGS [OPTIONS]`. */
struct opt_cmd {
    const char *name;       /* "trigger", "runs list": the usage line and messages use it */
    const char *args;       /* positional arguments in the usage line ("RUN TASK"), or NULL */
    int max_args;           /* how many positional arguments it takes; negative: any number */
    const char *extra_hint; /* added to "unexpected argument 'X'", or NULL */
    const char *about;      /* what the command does, for --help (may hold newlines) */
    const struct opt *opts; /* sorted by name */
    size_t nopts;
    /* The other sub-commands of its group (NULL-terminated), or NULL: an
     * option of one of them is named as such when this one refuses it. */
    const struct opt_cmd *const *family;
};

#define OPT_TABLE(t) .opts = (t), .nopts = sizeof(t) / sizeof((t)[0])

/* What opt_parse returns when the command should go on. */
#define OPT_GO (-1)

/* Parse argv[1..argc-1] (argv[0] is the command's name) with cmd's table
 * into the struct args (of the type the table's offsets refer to). Values
 * are borrowed from argv. Positional arguments are moved to argv[1] ..
 * argv[*nargs] (in their order; argv's order is changed).
 * Returns OPT_GO with *nargs set and args filled, or:
 *   0  -h/--help was given: the help went to stdout
 *   2  a usage error (unknown option, missing or bad value, too many
 *      arguments): "cairn: NAME: ..." and the usage went to stderr
 * and then args and *nargs are untouched. */
int opt_parse(const struct opt_cmd *cmd, int argc, char **argv, void *args, int *nargs);

/* The usage lines of cmd ("usage: cairn NAME ARGS [--opt V]...", wrapped),
 * to out. */
void opt_usage(const struct opt_cmd *cmd, FILE *out);

/* `cairn NAME --help`: the usage, the about text and one line per option. */
void opt_help(const struct opt_cmd *cmd, FILE *out);

/* One line (wrapped if long) for `cairn help`: "NAME ARGS [--opt V]...",
 * indented by indent, without --server (which `cairn help` names once). */
void opt_summary(const struct opt_cmd *cmd, int indent, FILE *out);

/* Print "cairn: NAME: " + what + " 'arg'" and cmd's usage to stderr;
 * returns 2, the usage-error exit code, for chaining. arg may be NULL. */
int opt_fail(const struct opt_cmd *cmd, const char *what, const char *arg);

/* The word of cands (n of them; NULL entries are skipped) closest to word,
 * by str_distance over the text after any leading dashes; NULL if none is
 * close: at most 1 edit for up to 3 characters, 2 for up to 6, else 3, and
 * fewer edits than word has characters. Borrowed from cands. */
const char *opt_closest(const char *word, const char *const *cands, size_t n);

/* ---- commands with sub-commands ------------------------------------------ */

struct opt_sub {
    const char *word;                  /* "list"; NULL: reached only as no_word/other_word */
    const struct opt_cmd *cmd;         /* its table */
    int (*run)(int argc, char **argv); /* called with argv[0] = its word (or the group's) */
};

/* `cairn NAME SUB ...`: the sub-command is the first positional argument,
 * wherever it is among the options. */
struct opt_group {
    const char *name;  /* "runs" */
    const char *about; /* for `cairn NAME --help` */
    const struct opt_sub *subs;
    size_t nsubs;
    const struct opt_sub *no_word;    /* run when no sub-command is named; NULL: an error */
    const struct opt_sub *other_word; /* run when the first word names none (it stays an
                                         argument); NULL: an error */
};

#define OPT_SUBS(t) .subs = (t), .nsubs = sizeof(t) / sizeof((t)[0])

/* Find the sub-command in argv (argv[0] is the group's name) and run it;
 * returns its exit code. Without one, -h/--help (or the word "help") prints
 * the group's help (exit 0); otherwise a missing or unknown sub-command, or
 * an option that no sub-command takes, is a usage error (exit 2). */
int opt_dispatch(const struct opt_group *g, int argc, char **argv);

/* `cairn NAME --help` of a group: each sub-command's usage, the group's
 * about (else that of its sub-command without a word, as `cairn backfill
 * DAG`), and the options of each sub-command. */
void opt_group_help(const struct opt_group *g, FILE *out);

#endif
