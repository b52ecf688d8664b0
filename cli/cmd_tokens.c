/* cmd_tokens.c - `cairn tokens create`: a new API token, appended to the
 * scheduler's tokens file (tokfile.h; docs/cli.md, docs/api.md).
 *
 * Offline: it writes the file the scheduler reads with --api-tokens (which
 * rereads it when it changes). The token is printed once, on stdout; only
 * its SHA-256 is stored. Exit codes as cli.h says.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "opt.h"
#include "tokfile.h"

struct tokens_args {
    const char *role, *file;
};

static const struct opt tokens_create_opts[] = {
    OPT_REQ("--file", NULL, "FILE", struct tokens_args, file,
            "the tokens file (created 0600 if missing; the scheduler's --api-tokens)"),
    OPT_CHOICE("--role", NULL, "viewer|operator|admin", struct tokens_args, role,
               "what the token may do (default viewer)"),
};

static const struct opt_cmd tokens_create_cmd = {
    .name = "tokens create",
    .args = "NAME",
    .max_args = 1,
    .about = "Make a new API token called NAME, append its line (name, role, SHA-256)\n"
             "to FILE and print the token once. viewer reads, operator also triggers,\n"
             "clears, retries, cancels, pauses and backfills, admin also collects artifacts.",
    OPT_TABLE(tokens_create_opts),
};

static int
tokens_create(int argc, char **argv)
{
    struct tokens_args a = {0};
    int nargs, rc = opt_parse(&tokens_create_cmd, argc, argv, &a, &nargs);
    if (rc != OPT_GO)
        return rc;
    if (nargs != 1)
        return cli_usage_error("tokens create needs a NAME");
    char token[TOKF_TOKEN_LEN + 1], err[512];
    if (tokf_create(a.file, argv[1], a.role ? a.role : "viewer", token, err, sizeof(err)) != 0) {
        fprintf(stderr, "cairn: %s\n", err);
        return 1;
    }
    printf("%s\n", token);
    fprintf(stderr, "cairn: token '%s' (%s) added to %s; it is shown only now\n", argv[1],
            a.role ? a.role : "viewer", a.file);
    memset(token, 0, sizeof(token));
    return 0;
}

static const struct opt_sub tokens_subs[] = {
    {"create", &tokens_create_cmd, tokens_create},
};

static const struct opt_group tokens_group = {
    .name = "tokens",
    .about = "Manage the scheduler's API tokens.",
    OPT_SUBS(tokens_subs),
};

static int
tokens_main(int argc, char **argv)
{
    return opt_dispatch(&tokens_group, argc, argv);
}

const struct cli_command cmd_tokens = {"tokens", tokens_main, NULL, &tokens_group};
