/* cairn-scheduler: the composition root. Reads the options and the config
 * file, then puts the parts together on one libuv loop: the engine
 * (engine.h), the backfills (backfill.h), the worker link over nng (wire.h,
 * whose requests go to sched_handle_request) and the HTTP server with the
 * API and the UI (http.h, api.h); on SIGTERM/SIGINT it stops them in order
 * (the engine answers and commits what is pending first). */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <curl/curl.h>
#include <uv.h>

#include "api.h"
#include "api_blobs.h"
#include "apiguard.h"
#include "artifact.h"
#include "backfill.h"
#include "engine.h"
#include "err.h"
#include "fs.h"
#include "http.h"
#include "ident.h"
#include "log.h"
#include "proto.h"
#include "schedmetrics.h"
#include "store.h"
#include "storetool.h"
#include "units.h"
#include "util.h"
#include "notifier.h"
#include "wire.h"
#include "ynode.h"

#define DEFAULT_CONFIG "/etc/cairn/cairn.yaml"

struct opts {
    char *dags, *data, *listen, *http, *token_file, *log_level, *log_format, *models,
        *max_state_size;
    char *tls_cert, *tls_key, *tls_ca;
    char *secrets_dir;
    char *api_tokens, *http_allowed_hosts;
    char *ui_url;
    char *artifacts, *artifacts_endpoint, *artifacts_region, *artifacts_path_style,
        *artifacts_credentials;
    int64_t lease_ttl_ms;
    char *http_per_ip; /* connections one address may hold (--http-max-conns-per-ip) */
    char *http_out;    /* response bytes held for all clients (--http-response-memory) */
    int64_t notify_attempts, notify_backoff_ms;
};

static void
usage(FILE *out)
{
    fputs("usage: cairn-scheduler --dags DIR --data DIR [--listen NNG_URL] [--http HOST:PORT]\n"
          "                       [--config FILE] [--token-file FILE] [--lease-ttl MS]\n"
          "                       [--models DIR] [--max-state-size SIZE] [--secrets-dir DIR]\n"
          "                       [--tls-cert FILE --tls-key FILE --tls-ca FILE] [--insecure]\n"
          "                       [--api-tokens FILE] [--http-allowed-hosts H1,H2,...]\n"
          "                       [--http-max-conns-per-ip N] [--http-response-memory SIZE]\n"
          "                       [--log-level error|warn|notice|info|debug]\n"
          "                       [--registry-auth FILE] [--registry-ca FILE]\n"
          "                       [--insecure-registry HOST:PORT]... [--pin-timeout SECONDS]\n"
          "                       [--log-format text|json] [--ui-url URL]\n"
          "                       [--notify-attempts N] [--notify-backoff MS]\n"
          "                       [--artifacts URI] [--artifacts-endpoint URL]\n"
          "                       [--artifacts-region REGION] [--artifacts-path-style 0|1]\n"
          "                       [--artifacts-credentials FILE]\n"
          "       cairn-scheduler --data DIR --check\n"
          "       cairn-scheduler --data DIR --backup DEST\n"
          "Defaults: --listen tcp://127.0.0.1:7781, --http 127.0.0.1:7780, --models DATA/models\n"
          "(where tasks' `publish:` outputs go). Port 0 in --listen or --http binds a free port;\n"
          "the CAIRN-START log line names the ones bound. The state store's map grows as\n"
          "needed, up to --max-state-size (e.g. 50Gi; default: no limit). --check reads every\n"
          "record of the store and says whether it is sound; --backup writes a compacted copy\n"
          "to DEST/data.mdb, also while a scheduler runs. A YAML config file (" DEFAULT_CONFIG "\n"
          "when present) may set dags, data, listen, http, token_file, lease_ttl_ms, models,\n"
          "max_state_size, log_level, log_format, tls_cert, tls_key, tls_ca, api_tokens,\n"
          "http_allowed_hosts, http_max_conns_per_ip, http_response_memory and ui_url; flags\n"
          "win. One address may hold 128 HTTP connections (loopback exempt);\n"
          "--http-max-conns-per-ip N (0: no limit) sets it for every address, loopback\n"
          "included. Past --http-response-memory (default 64Mi) of answers held for clients,\n"
          "those that stopped reading are dropped.\n"
          "The registry flags are those of cairn-worker: the scheduler resolves each image\n"
          "tag to a digest when a run starts (off its loop; the run waits, \"pinning\", at most\n"
          "--pin-timeout seconds per tag, default 10).\n"
          "--tls-cert/--tls-key/--tls-ca run the worker link as mutual TLS (a tls+tcp://\n"
          "--listen address; `cairn certs init` makes the files). A --listen address that is\n"
          "not loopback needs TLS or --token-file; --insecure starts without either.\n"
          "The config may also set secrets_dir. --secrets-dir holds one file\n"
          "per secret of tasks' `secrets:` (named by the secret, mode 0600, owned by this\n"
          "user); without it $CREDENTIALS_DIRECTORY (systemd credentials) is used.\n"
          "Without --api-tokens the API is unauthenticated and --http must be a loopback\n"
          "address; with it, every API call needs 'Authorization: Bearer TOKEN' (docs/api.md).\n"
          "--log-format json writes each log line as one JSON object (ts, level, msg_id,\n"
          "msg, prog).\n"
          "--ui-url is the address in notifications' links to the UI (default: the --http\n"
          "address as bound). A notification is tried --notify-attempts times (default 8),\n"
          "waiting --notify-backoff ms (default 1000) after the first failed try, twice as\n"
          "long after each further one (at most 5 minutes).\n"
          "--artifacts is where task outputs go: a folder (default DATA/artifacts) or\n"
          "s3://BUCKET/PREFIX on an S3-compatible store, with --artifacts-endpoint (e.g.\n"
          "http://127.0.0.1:9000 for MinIO; default AWS), --artifacts-region (default\n"
          "us-east-1), --artifacts-path-style 1 (bucket in the path; the default with an\n"
          "endpoint) and credentials from --artifacts-credentials FILE (0600:\n"
          "aws_access_key_id = ..., aws_secret_access_key = ...) or $AWS_ACCESS_KEY_ID and\n"
          "$AWS_SECRET_ACCESS_KEY. Workers reach the store with credentials of their own\n"
          "(cairn-worker --artifacts-credentials); the scheduler never sends or stores them.\n"
          "The config may set artifacts, artifacts_endpoint, artifacts_region,\n"
          "artifacts_path_style and artifacts_credentials.\n",
          out);
}

static void
opts_free(struct opts *o)
{
    free(o->dags);
    free(o->data);
    free(o->listen);
    free(o->http);
    free(o->token_file);
    free(o->log_level);
    free(o->log_format);
    free(o->models);
    free(o->max_state_size);
    free(o->tls_cert);
    free(o->tls_key);
    free(o->tls_ca);
    free(o->secrets_dir);
    free(o->api_tokens);
    free(o->http_allowed_hosts);
    free(o->http_per_ip);
    free(o->http_out);
    free(o->ui_url);
    free(o->artifacts);
    free(o->artifacts_endpoint);
    free(o->artifacts_region);
    free(o->artifacts_path_style);
    free(o->artifacts_credentials);
}

static void
set(char **dst, const char *v)
{
    free(*dst);
    *dst = xstrdup(v);
}

/* Read a flat YAML mapping of settings. Unknown keys are errors. */
static int
load_config(struct opts *o, const char *path, int required)
{
    char *text = NULL;
    size_t len = 0;
    if (fs_read_all(path, 0, &text, &len) != 0) {
        if (!required && errno == ENOENT)
            return 0;
        fprintf(stderr, "cairn-scheduler: cannot read config %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct diag_list dl;
    struct ydoc *doc = NULL;
    struct ynode *root = NULL;
    int rc = 0;
    diag_list_init(&dl);
    if (ydoc_parse(&doc, &root, text, len, path, &dl) != 0 || (root && root->type != YNODE_MAP)) {
        if (!dl.n)
            diag_add(&dl, DIAG_ERROR, path, 1, 1, "config", NULL, "config must be a mapping");
        rc = -1;
    }
    for (size_t i = 0; root && root->type == YNODE_MAP && i < root->n; i++) {
        const struct ynode *k = root->keys[i], *v = root->vals[i];
        if (v->type != YNODE_SCALAR) {
            diag_add(&dl, DIAG_ERROR, path, v->line, v->col, "config", NULL,
                     "'%s' must be a string", k->str);
            rc = -1;
            continue;
        }
        if (!strcmp(k->str, "dags"))
            set(&o->dags, v->str);
        else if (!strcmp(k->str, "data"))
            set(&o->data, v->str);
        else if (!strcmp(k->str, "listen"))
            set(&o->listen, v->str);
        else if (!strcmp(k->str, "http"))
            set(&o->http, v->str);
        else if (!strcmp(k->str, "token_file"))
            set(&o->token_file, v->str);
        else if (!strcmp(k->str, "tls_cert"))
            set(&o->tls_cert, v->str);
        else if (!strcmp(k->str, "tls_key"))
            set(&o->tls_key, v->str);
        else if (!strcmp(k->str, "tls_ca"))
            set(&o->tls_ca, v->str);
        else if (!strcmp(k->str, "log_level"))
            set(&o->log_level, v->str);
        else if (!strcmp(k->str, "log_format"))
            set(&o->log_format, v->str);
        else if (!strcmp(k->str, "models"))
            set(&o->models, v->str);
        else if (!strcmp(k->str, "max_state_size"))
            set(&o->max_state_size, v->str);
        else if (!strcmp(k->str, "secrets_dir"))
            set(&o->secrets_dir, v->str);
        else if (!strcmp(k->str, "api_tokens"))
            set(&o->api_tokens, v->str);
        else if (!strcmp(k->str, "http_allowed_hosts"))
            set(&o->http_allowed_hosts, v->str);
        else if (!strcmp(k->str, "http_max_conns_per_ip"))
            set(&o->http_per_ip, v->str);
        else if (!strcmp(k->str, "http_response_memory"))
            set(&o->http_out, v->str);
        else if (!strcmp(k->str, "ui_url"))
            set(&o->ui_url, v->str);
        else if (!strcmp(k->str, "artifacts"))
            set(&o->artifacts, v->str);
        else if (!strcmp(k->str, "artifacts_endpoint"))
            set(&o->artifacts_endpoint, v->str);
        else if (!strcmp(k->str, "artifacts_region"))
            set(&o->artifacts_region, v->str);
        else if (!strcmp(k->str, "artifacts_path_style"))
            set(&o->artifacts_path_style, v->str);
        else if (!strcmp(k->str, "artifacts_credentials"))
            set(&o->artifacts_credentials, v->str);
        else if (!strcmp(k->str, "lease_ttl_ms"))
            o->lease_ttl_ms = strtoll(v->str, NULL, 10);
        else {
            diag_add(&dl, DIAG_ERROR, path, k->line, k->col, "config", NULL, "unknown setting '%s'",
                     k->str);
            rc = -1;
        }
    }
    diag_print(&dl, stderr);
    diag_list_free(&dl);
    ydoc_free(doc);
    free(text);
    return rc;
}

/* The composition root's parts: the engine, its backfills, the worker link
 * and the HTTP server, all on one loop. */
struct app {
    struct sched *sched;
    struct bf_set *bfs;
    struct wire *wire;
    struct http_server *http;
    struct apiguard guard;
    struct proto_key key;
    struct ident *ident;
    uv_signal_t sig_term, sig_int;
    int closing; /* the engine and the HTTP server, until both are closed */
    uv_timer_t stop_watch; /* says what is still open when a stop is slow */
};

static struct app app;

/* Whether an nng URL can be reached only from this host: ipc:// and
 * inproc://, or a TCP address on loopback (127.0.0.0/8, ::1, localhost). */
static bool
url_is_local(const char *url)
{
    if (!strncmp(url, "ipc://", 6) || !strncmp(url, "inproc://", 9))
        return true;
    const char *h = strstr(url, "://");
    if (!h)
        return false;
    h += 3;
    const char *end = strrchr(h, ':');
    size_t n = end ? (size_t)(end - h) : strlen(h);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if ((n == 3 && !strncmp(h, "::1", 3)) || (n == 9 && !strncmp(h, "localhost", 9)))
        return true;
    return n >= 4 && !strncmp(h, "127.", 4);
}

/* Raise the soft limit on open files to the hard one, and keep the HTTP
 * connections below it with room for the store, the logs and the wire. */
static size_t
http_conns_cap(void)
{
    struct rlimit rl;
    const rlim_t reserve = 256;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return HTTP_CONNS_MAX;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= HTTP_CONNS_MAX + reserve)
        return HTTP_CONNS_MAX;
    size_t cap = rl.rlim_cur > reserve + 16 ? (size_t)(rl.rlim_cur - reserve) : 16;
    LOG(LOG_WARN, "CAIRN-HTTP-CONNS",
        "the open-file limit is %llu: the HTTP API takes at most %zu connections",
        (unsigned long long)rl.rlim_cur, cap);
    return cap;
}

static void
closed_one(void)
{
    if (--app.closing == 0) {
        uv_close((uv_handle_t *)&app.sig_term, NULL);
        uv_close((uv_handle_t *)&app.sig_int, NULL);
        uv_close((uv_handle_t *)&app.stop_watch, NULL);
    }
}

static void
stop_walk_cb(uv_handle_t *h, void *arg)
{
    struct sb *b = arg;
    if (h == (uv_handle_t *)&app.stop_watch || uv_is_closing(h))
        return;
    sb_printf(b, "%s%s%s", b->len ? ", " : "", uv_handle_type_name(uv_handle_get_type(h)),
                uv_is_active(h) ? "" : " (inactive)");
}

/* The stop has taken 5 s: name what keeps it open, for the report. */
static void
stop_watch_cb(uv_timer_t *t)
{
    struct sb b;
    sb_init(&b);
    uv_walk(t->loop, stop_walk_cb, &b);
    LOG(LOG_WARN, "CAIRN-STOP-SLOW", "still stopping after 5 s: %d part%s not closed, open "
        "handles: %s", app.closing, app.closing == 1 ? "" : "s", b.len ? b.buf : "none");
    sb_free(&b);
}

static void
engine_stopped_cb(void *ud)
{
    (void)ud;
    closed_one();
}

static void
http_closed_cb(void *ud)
{
    (void)ud;
    closed_one();
}

static void
signal_cb(uv_signal_t *h, int signum)
{
    (void)h;
    LOG(LOG_NOTICE, "CAIRN-SIGNAL", "got signal %d: draining", signum);
    uv_signal_stop(&app.sig_term);
    uv_signal_stop(&app.sig_int);
    /* the engine answers and commits what is pending, then the link and the
     * HTTP server close */
    app.closing = 2;
    uv_timer_start(&app.stop_watch, stop_watch_cb, 5000, 0);
    uv_unref((uv_handle_t *)&app.stop_watch);
    sched_stop(app.sched, engine_stopped_cb, NULL);
    wire_stop(app.wire);
    app.wire = NULL;
    http_server_close(app.http, http_closed_cb, NULL);
    app.http = NULL;
}

static void
wire_request_cb(void *ud, struct wire_req *req)
{
    sched_handle_request(ud, req);
}

static void
wire_gone_cb(void *ud, uint32_t pipe)
{
    sched_link_gone(ud, pipe);
}

int
main(int argc, char **argv)
{
    struct opts o;
    struct opts cli;
    const char *config = NULL, *backup = NULL;
    struct imgreg_opts reg = {0};
    static const char *insecure_regs[64];
    reg.insecure = insecure_regs;
    bool check = false, insecure = false;
    memset(&o, 0, sizeof(o));
    memset(&cli, 0, sizeof(cli));
    /* Big buffers (wire frames up to 16 MiB, HTTP bodies, rendered lists)
     * each get a mapping of their own, returned to the system when freed.
     * glibc's default raises this threshold to the largest block freed so
     * far, after which 16 MiB frames pile up in its arenas: 120 frames from
     * a stranger left the scheduler 130-300 MB bigger for good. */
    mallopt(M_MMAP_THRESHOLD, 512 * 1024);
    /* Small blocks freed coalesce as they are freed (no fastbins; the
     * per-thread cache still serves the hot sizes), not all at once in the
     * malloc_trim after a big run leaves memory: that trim took 178 ms, 83
     * ms of the loop's CPU, after a 30,000-instance run, and 15 ms so. */
    mallopt(M_MXFAST, 0);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--check")) {
            check = true;
            continue;
        }
        if (!strcmp(a, "--insecure")) {
            insecure = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "cairn-scheduler: %s needs a value\n", a);
            usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--dags"))
            set(&cli.dags, v);
        else if (!strcmp(a, "--data"))
            set(&cli.data, v);
        else if (!strcmp(a, "--listen"))
            set(&cli.listen, v);
        else if (!strcmp(a, "--http"))
            set(&cli.http, v);
        else if (!strcmp(a, "--token-file"))
            set(&cli.token_file, v);
        else if (!strcmp(a, "--tls-cert"))
            set(&cli.tls_cert, v);
        else if (!strcmp(a, "--tls-key"))
            set(&cli.tls_key, v);
        else if (!strcmp(a, "--tls-ca"))
            set(&cli.tls_ca, v);
        else if (!strcmp(a, "--log-level"))
            set(&cli.log_level, v);
        else if (!strcmp(a, "--log-format"))
            set(&cli.log_format, v);
        else if (!strcmp(a, "--models"))
            set(&cli.models, v);
        else if (!strcmp(a, "--api-tokens"))
            set(&cli.api_tokens, v);
        else if (!strcmp(a, "--http-allowed-hosts"))
            set(&cli.http_allowed_hosts, v);
        else if (!strcmp(a, "--http-max-conns-per-ip"))
            set(&cli.http_per_ip, v);
        else if (!strcmp(a, "--http-response-memory"))
            set(&cli.http_out, v);
        else if (!strcmp(a, "--lease-ttl"))
            cli.lease_ttl_ms = strtoll(v, NULL, 10);
        else if (!strcmp(a, "--config"))
            config = v;
        else if (!strcmp(a, "--backup"))
            backup = v;
        else if (!strcmp(a, "--max-state-size"))
            set(&cli.max_state_size, v);
        else if (!strcmp(a, "--registry-auth"))
            reg.auth_file = v;
        else if (!strcmp(a, "--registry-ca"))
            reg.ca_file = v;
        else if (!strcmp(a, "--pin-timeout")) {
            char *end = NULL;
            long t = strtol(v, &end, 10);
            if (!end || *end || t < 1 || t > 3600) {
                fprintf(stderr, "cairn-scheduler: --pin-timeout wants whole seconds from 1 to "
                                "3600, not '%s'\n", v);
                return 2;
            }
            reg.timeout_s = t;
        }
        else if (!strcmp(a, "--insecure-registry")) {
            if (reg.ninsecure == sizeof(insecure_regs) / sizeof(insecure_regs[0])) {
                fprintf(stderr, "cairn-scheduler: at most 64 --insecure-registry\n");
                return 2;
            }
            insecure_regs[reg.ninsecure++] = v;
        }
        else if (!strcmp(a, "--secrets-dir"))
            set(&cli.secrets_dir, v);
        else if (!strcmp(a, "--ui-url"))
            set(&cli.ui_url, v);
        else if (!strcmp(a, "--notify-attempts") || !strcmp(a, "--notify-backoff")) {
            bool att = !strcmp(a, "--notify-attempts");
            char *end;
            long long x = strtoll(v, &end, 10);
            if (*end || x < 1 || x > (att ? 100 : 3600000)) {
                fprintf(stderr, "cairn-scheduler: %s takes %s, got '%s'\n", a,
                        att ? "1..100" : "1..3600000 (ms)", v);
                return 2;
            }
            if (att)
                cli.notify_attempts = x;
            else
                cli.notify_backoff_ms = x;
        }
        else if (!strcmp(a, "--artifacts"))
            set(&cli.artifacts, v);
        else if (!strcmp(a, "--artifacts-endpoint"))
            set(&cli.artifacts_endpoint, v);
        else if (!strcmp(a, "--artifacts-region"))
            set(&cli.artifacts_region, v);
        else if (!strcmp(a, "--artifacts-path-style"))
            set(&cli.artifacts_path_style, v);
        else if (!strcmp(a, "--artifacts-credentials"))
            set(&cli.artifacts_credentials, v);
        else {
            fprintf(stderr, "cairn-scheduler: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (load_config(&o, config ? config : DEFAULT_CONFIG, config != NULL) != 0)
        return 2;
#define MERGE(f)                                                                                   \
    if (cli.f) {                                                                                   \
        free(o.f);                                                                                 \
        o.f = cli.f;                                                                               \
    }
    MERGE(dags)
    MERGE(data)
    MERGE(listen)
    MERGE(http)
    MERGE(token_file)
    MERGE(log_level)
    MERGE(log_format)
    MERGE(models)
    MERGE(max_state_size)
    MERGE(tls_cert)
    MERGE(tls_key)
    MERGE(tls_ca)
    MERGE(secrets_dir)
    MERGE(api_tokens)
    MERGE(http_allowed_hosts)
    MERGE(http_per_ip)
    MERGE(http_out)
    MERGE(ui_url)
    MERGE(artifacts)
    MERGE(artifacts_endpoint)
    MERGE(artifacts_region)
    MERGE(artifacts_path_style)
    MERGE(artifacts_credentials)
    if (cli.lease_ttl_ms)
        o.lease_ttl_ms = cli.lease_ttl_ms;
    if (cli.notify_attempts)
        o.notify_attempts = cli.notify_attempts;
    if (cli.notify_backoff_ms)
        o.notify_backoff_ms = cli.notify_backoff_ms;
    if (o.http_per_ip) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(o.http_per_ip, &end, 10);
        if (errno || end == o.http_per_ip || *end || o.http_per_ip[0] == '-' || n > 1000000) {
            fprintf(stderr, "cairn-scheduler: --http-max-conns-per-ip takes a number of "
                    "connections (0: no limit), got '%s'\n", o.http_per_ip);
            opts_free(&o);
            return 2;
        }
    }
    int64_t http_out = (int64_t)HTTP_OUT_BUDGET;
    if (o.http_out) {
        char uerr[160];
        if (units_parse_size(o.http_out, &http_out, uerr, sizeof(uerr)) != 0 || http_out < 1) {
            fprintf(stderr, "cairn-scheduler: --http-response-memory takes a size such as "
                    "64Mi, got '%s'\n", o.http_out);
            opts_free(&o);
            return 2;
        }
    }
    int format = LOG_FORMAT_TEXT;
    if (o.log_format && (format = log_format_parse(o.log_format)) < 0) {
        fprintf(stderr, "cairn-scheduler: --log-format takes text or json, got '%s'\n",
                o.log_format);
        opts_free(&o);
        return 2;
    }
    log_set_format((enum log_format)format);
    if ((check || backup) && !o.data) {
        fprintf(stderr, "cairn-scheduler: --%s needs --data\n", check ? "check" : "backup");
        return 2;
    }
    if (check || backup) {
        log_init("cairn-scheduler", LOG_WARN);
        int trc = check ? storetool_check(o.data, STORETOOL_FULL, stdout) : 0;
        if (backup && trc == 0)
            trc = storetool_backup(o.data, backup, stdout);
        opts_free(&o);
        return trc;
    }
    int64_t max_state = 0;
    if (o.max_state_size) {
        char serr[256] = "";
        if (units_parse_size(o.max_state_size, &max_state, serr, sizeof(serr)) != 0 ||
            max_state < 1 << 20) {
            fprintf(stderr, "cairn-scheduler: --max-state-size: %s\n",
                    max_state < 1 << 20 && !serr[0] ? "at least 1Mi" : serr);
            return 2;
        }
    }
    if (!o.dags || !o.data) {
        fprintf(stderr, "cairn-scheduler: --dags and --data are required\n");
        usage(stderr);
        return 2;
    }
    int level = LOG_INFO;
    if (o.log_level && (level = log_level_parse(o.log_level)) < 0) {
        fprintf(stderr, "cairn-scheduler: unknown log level '%s'\n", o.log_level);
        return 2;
    }
    log_init("cairn-scheduler", level);

    struct sched_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.dags_dir = o.dags;
    cfg.data_dir = o.data;
    cfg.lease_ttl_ms = o.lease_ttl_ms;
    cfg.notify_attempts = (int)o.notify_attempts;
    cfg.notify_backoff_ms = o.notify_backoff_ms;
    cfg.models_dir = o.models;
    cfg.max_state_size = (size_t)max_state;
    cfg.registry = reg;
    cfg.secrets_dir = o.secrets_dir;
    cfg.token_file = o.token_file;
    /* the files of the scheduler's own keys, hidden from image-host tasks
     * (the lease names them; paths as the host sees them) */
    static char *hidden_abs[SCHED_HIDDEN_MAX + 1];
    size_t nhidden = 0;
    const char *hidden_src[] = {o.token_file, o.api_tokens, o.tls_key, o.artifacts_credentials};
    for (size_t i = 0; i < sizeof(hidden_src) / sizeof(*hidden_src); i++) {
        char *abs = hidden_src[i] ? realpath(hidden_src[i], NULL) : NULL;
        if (abs)
            hidden_abs[nhidden++] = abs;
    }
    cfg.hidden = (const char *const *)hidden_abs;
    struct art_open_opts art_opts = {.endpoint = o.artifacts_endpoint,
                                     .region = o.artifacts_region,
                                     .path_style = -1,
                                     .credentials_file = o.artifacts_credentials};
    if (o.artifacts_path_style) {
        if (strcmp(o.artifacts_path_style, "0") != 0 && strcmp(o.artifacts_path_style, "1") != 0) {
            fprintf(stderr, "cairn-scheduler: --artifacts-path-style takes 0 or 1, got '%s'\n",
                    o.artifacts_path_style);
            return 2;
        }
        art_opts.path_style = o.artifacts_path_style[0] - '0';
    }
    cfg.artifacts = o.artifacts;
    cfg.artifacts_opts = &art_opts;
    cfg.link.reply = wire_reply;
    cfg.link.drop = wire_drop;
    const char *listen_url = o.listen ? o.listen : "tcp://127.0.0.1:7781";
    char *hp = xstrdup(o.http ? o.http : "127.0.0.1:7780");
    char *colon = strrchr(hp, ':');
    if (!colon) {
        fprintf(stderr, "cairn-scheduler: --http takes HOST:PORT, got '%s'\n", hp);
        return 2;
    }
    *colon = '\0';
    const char *http_host = hp[0] == '[' ? hp + 1 : hp;
    if (hp[0] == '[' && colon > hp && colon[-1] == ']')
        colon[-1] = '\0';
    int http_port = (int)strtol(colon + 1, NULL, 10);

    /* who may call the API: settled before the store is touched */
    char gerr[512];
    if (!o.api_tokens && !apiguard_is_loopback(http_host)) {
        fprintf(stderr,
                "cairn-scheduler: --http %s:%d is not a loopback address and the API has no "
                "--api-tokens: refusing to serve an unauthenticated API to the network (create "
                "tokens with `cairn tokens create`, or bind 127.0.0.1)\n",
                http_host, http_port);
        free(hp);
        opts_free(&o);
        return 1;
    }
    if (apiguard_init(&app.guard, NULL, o.api_tokens, http_host, o.http_allowed_hosts, gerr,
                      sizeof(gerr)) != 0) {
        fprintf(stderr, "cairn-scheduler: %s\n", gerr);
        apiguard_free(&app.guard);
        free(hp);
        opts_free(&o);
        return 1;
    }

    /* check the store before serving it: a scheduler that was killed or
     * crashed may have left it damaged (a full disk, a bad page), and a
     * disk may damage it under a stopped one (then the quick check, which
     * reads every page without decoding the records, finds it) */
    char *mdb = xasprintf("%s/state/data.mdb", o.data);
    struct stat msb;
    bool exists = stat(mdb, &msb) == 0;
    free(mdb);
    int unclean = storetool_started(o.data);
    if (unclean < 0) {
        fprintf(stderr, "cairn-scheduler: cannot write to %s/state: %s\n", o.data, strerror(errno));
        free(hp);
        opts_free(&o);
        return 1;
    }
    if (exists) {
        if (unclean)
            LOG(LOG_NOTICE, "CAIRN-STORE-CHECK",
                "the last scheduler on %s did not stop cleanly: checking the state store",
                o.data);
        int64_t t0 = clock_mono_ms();
        int crc = storetool_check(o.data, unclean ? STORETOOL_START : STORETOOL_PAGES, stderr);
        LOG(unclean ? LOG_NOTICE : LOG_INFO, "CAIRN-STORE-CHECK", "%s in %lld ms",
            unclean ? "checked the records a start reads" : "checked every page",
            (long long)(clock_mono_ms() - t0));
        if (crc == 2) { /* it cannot be opened: the check said why */
            free(hp);
            opts_free(&o);
            return 1;
        }
        if (crc != 0) {
            LOG(LOG_ERR, "CAIRN-STORE-DAMAGED",
                "the state store at %s/state is damaged (above): not starting; restore a "
                "backup (docs/operations.md)",
                o.data);
            free(hp);
            opts_free(&o);
            return 1; /* the marker stays: the next start checks again */
        }
    }
    uv_loop_t loop;
    /* before any thread: image tags are resolved on the thread pool */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    uv_loop_init(&loop);
    char err[512];
    int rc = 0;
    if (o.token_file && (rc = proto_key_load(&app.key, o.token_file, err, sizeof(err))) != 0)
        goto fail;
    if ((o.tls_cert || o.tls_key || o.tls_ca) &&
        (rc = ident_load(&app.ident, o.tls_cert, o.tls_key, o.tls_ca, err, sizeof(err))) != 0)
        goto fail;
    cfg.ident = app.ident;
    cfg.token = app.key.len > 0;
    if ((strncmp(listen_url, "tls+", 4) == 0) != (app.ident != NULL)) {
        snprintf(err, sizeof(err),
                 app.ident ? "--tls-cert needs a tls+tcp:// --listen address, not %s"
                           : "%s is a TLS address: give --tls-cert, --tls-key and --tls-ca",
                 listen_url);
        rc = CAIRN_EINVAL;
        goto fail;
    }
    /* secrets go only to workers that proved who they are */
    cfg.link_authenticated = app.key.len > 0 || app.ident != NULL;
    if (!url_is_local(listen_url) && !app.ident && app.key.len == 0) {
        if (!insecure) {
            snprintf(err, sizeof(err),
                     "the worker link %s is not on loopback: give it TLS (--tls-cert, --tls-key, "
                     "--tls-ca and a tls+tcp:// address) or a token (--token-file), or start "
                     "with --insecure to accept any process that can reach it", listen_url);
            rc = CAIRN_EINVAL;
            goto fail;
        }
        LOG(LOG_WARN, "CAIRN-INSECURE",
            "INSECURE: the worker link %s is open to the network without TLS or a token: any "
            "process that reaches it can take tasks (and their env) and post results",
            listen_url);
    }
    if ((rc = sched_new(&app.sched, &loop, &cfg, err, sizeof(err))) != 0)
        goto fail;
    app.guard.sched = app.sched;
    if ((rc = bf_open(&app.bfs, app.sched)) != 0) {
        snprintf(err, sizeof(err), "cannot read backfills: %s",
                 store_last_error(sched_store(app.sched)));
        goto fail;
    }
    sched_set_backfills(app.sched, app.bfs);
    if ((rc = wire_start(&app.wire, &loop, listen_url, &app.key, app.ident, wire_request_cb,
                         app.sched, err, sizeof(err))) != 0)
        goto fail;
    wire_on_gone(app.wire, wire_gone_cb);
    if ((rc = http_server_start(&app.http, &loop, http_host, http_port, apiguard_handle,
                                &app.guard)) != 0) {
        snprintf(err, sizeof(err), "cannot serve HTTP on %s:%d", http_host, http_port);
        goto fail;
    }
    http_server_set_max_conns(app.http, http_conns_cap());
    http_server_set_response_memory(app.http, (size_t)http_out);
    if (o.http_per_ip) /* given: it applies to loopback peers too */
        http_server_set_max_per_ip(app.http, (size_t)strtoull(o.http_per_ip, NULL, 10), 1);
    api_blobs_set_port(app.sched, http_server_port(app.http));
    if ((rc = api_blobs_init(app.sched, err, sizeof(err))) != 0)
        goto fail;
    http_server_set_observer(app.http, smet_http, app.sched);
    {
        /* links to the UI in notifications: --ui-url, else the bound address */
        char *ui = o.ui_url ? xstrdup(o.ui_url)
                            : xasprintf("http://%s:%d", http_host, http_server_port(app.http));
        size_t ul = strlen(ui);
        while (ul && ui[ul - 1] == '/')
            ui[--ul] = '\0';
        ntf_set_ui_url(app.sched, ui);
        free(ui);
    }
    LOG(LOG_NOTICE, "CAIRN-START",
        "scheduler ready: dags %s, data %s, workers %s, http %s:%d, models %s, artifacts %s",
        cfg.dags_dir, cfg.data_dir, wire_url(app.wire), http_host, http_server_port(app.http),
        sched_models_dir(app.sched), art_uri(sched_artifacts(app.sched)));
    if (o.api_tokens)
        LOG(LOG_NOTICE, "CAIRN-API-AUTH", "the HTTP API needs bearer tokens from %s (%zu tokens)",
            o.api_tokens, app.guard.tokens.n);
    else
        LOG(LOG_WARN, "CAIRN-API-AUTH",
            "the HTTP API is unauthenticated (no --api-tokens): it serves loopback only, and "
            "any local user can call it");
    uv_signal_init(&loop, &app.sig_term);
    uv_signal_init(&loop, &app.sig_int);
    uv_timer_init(&loop, &app.stop_watch);
    uv_signal_start(&app.sig_term, signal_cb, SIGTERM);
    uv_signal_start(&app.sig_int, signal_cb, SIGINT);
    uv_run(&loop, UV_RUN_DEFAULT);
fail:
    if (rc) {
        fprintf(stderr, "cairn-scheduler: %s\n", err);
        if (app.wire)
            wire_stop(app.wire);
        if (app.http)
            http_server_close(app.http, NULL, NULL);
        uv_run(&loop, UV_RUN_NOWAIT); /* let the closed handles go */
    }
    bf_free(app.bfs);
    apiguard_free(&app.guard);
    sched_free(app.sched);
    ident_free(app.ident);
    uv_loop_close(&loop);
    if (!rc) {
        storetool_stopped(o.data);
        LOG(LOG_NOTICE, "CAIRN-STOPPED", "scheduler stopped");
    }
    free(hp);
    opts_free(&o);
    return rc ? 1 : 0;
}
