/* cairn-worker: takes leases from the scheduler and runs each attempt in
 * its own runc container. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "link.h"
#include "log.h"
#include "units.h"
#include "util.h"

static void
usage(FILE *out)
{
    fputs("usage: cairn-worker --scheduler NNG_URL --data DIR [--slots N] [--name NAME]\n"
          "                    [--labels k=v,...] [--token-file FILE] [--runtime PATH]\n"
          "                    [--isolation runc|none] [--allow-mount DIR]... [--prefetch N]\n"
          "                    [--log-level LEVEL] [--max-log-size SIZE]\n"
          "                    [--tls-cert FILE --tls-key FILE --tls-ca FILE]\n"
          "                    [--tls-server-name NAME]\n"
          "                    [--gpus 0,1] [--gpu-model NAME] [--gpu-dev-dir DIR]\n"
          "                    [--registry-auth FILE] [--registry-ca FILE]\n"
          "                    [--insecure-registry HOST:PORT]... [--image-cache-size SIZE]\n"
          "                    [--metrics HOST:PORT] [--log-format text|json]\n"
          "                    [--artifacts-credentials FILE]\n"
          "                    [--artifacts-direct auto|yes|no] [--api URL] [--api-ca FILE]\n"
          "                    [--blob-cache-size SIZE|none]\n"
          "--allow-mount DIR lets tasks mount DIR or a folder below it (a task's mounts:\n"
          "host folders in its container); repeat it for several. Without it, a task with\n"
          "mounts is refused.\n"
          "--prefetch N holds up to N leases beyond the slots, started the moment a slot\n"
          "frees (default: four times the slots, at least 8, at most 64; 0 turns it off;\n"
          "the scheduler fills it only with about a second of work a slot).\n"
          "--max-log-size SIZE cuts each attempt's log there with a marker and drops the\n"
          "rest of its output (default 100Mi; 0: no limit); the task goes on.\n"
          "--isolation none runs tasks as plain child processes, without a container: it is\n"
          "for development and benchmarks only and is unsafe (docs/containers.md).\n"
          "--gpus names the NVIDIA GPUs to offer by index (default: every /dev/nvidiaN);\n"
          "--gpu-model names their model where the driver does not; --gpu-dev-dir looks for\n"
          "the device nodes in DIR instead of /dev (tests with stand-in nodes).\n"
          "--registry-auth reads registry credentials from a Docker-style config.json;\n"
          "--registry-ca trusts the CA bundle FILE for registries; --insecure-registry\n"
          "reaches HOST:PORT over plain HTTP (repeat it for several); --image-cache-size\n"
          "bounds the unpacked images and their blobs (default 20Gi).\n"
          "--tls-cert/--tls-key/--tls-ca run the link as mutual TLS (a tls+tcp:// --scheduler\n"
          "address); the certificate's name must be the worker's --name. The scheduler's\n"
          "certificate must be named --tls-server-name (default: the --scheduler host).\n"
          "--artifacts-direct: auto (the default) reads and writes the artifact store\n"
          "directly when this host sees it (its folder holds the scheduler's marker file\n"
          ".cairn-store-id), else through the scheduler's HTTP API; yes and no force it.\n"
          "--api URL is that API (default http://SCHEDULER-HOST:PORT, the port the scheduler\n"
          "names); --api-ca trusts FILE for an https URL (e.g. behind a TLS proxy).\n"
          "--blob-cache-size bounds the blobs kept in DATA/blob-cache from that API, the\n"
          "least recently used going first (default 10Gi; none: no limit).\n"
          "--metrics HOST:PORT serves the worker's metrics (Prometheus text format) at\n"
          "http://HOST:PORT/metrics.\n"
          "--log-format json writes each log line as one JSON object (ts, level, msg_id,\n"
          "msg, prog).\n"
          "--artifacts-credentials FILE holds this worker's credentials for an S3 artifact\n"
          "store (0600: aws_access_key_id = ..., aws_secret_access_key = ...); without it\n"
          "$AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY. The scheduler names the store\n"
          "(endpoint, region, path style) but never sends credentials; tasks cannot read\n"
          "the file.\n",
          out);
}

/* The command line (allow: room for every --allow-mount value), then the
 * agent. Returns the process's exit code. */
static int
run(int argc, char **argv, const char **allow, const char **insecure)
{
    struct agent_config cfg;
    char host[256] = "localhost", metrics_host[256];
    const char *labels = NULL, *level = NULL, *format = NULL, *isolation = "runc";
    memset(&cfg, 0, sizeof(cfg));
    gethostname(host, sizeof(host) - 1);
    cfg.host = host;
    cfg.name = host;
    cfg.slots = (int)sysconf(_SC_NPROCESSORS_ONLN);
    cfg.runtime = "runc";
    cfg.prefetch = -1; /* the default: four times the slots (below) */
    cfg.max_log_size = 100LL << 20;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "cairn-worker: %s needs a value\n", a);
            usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--scheduler"))
            cfg.scheduler_url = v;
        else if (!strcmp(a, "--data"))
            cfg.data_dir = v;
        else if (!strcmp(a, "--slots")) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 4096) {
                fprintf(stderr, "cairn-worker: --slots takes 1..4096, got '%s'\n", v);
                return 2;
            }
            cfg.slots = (int)n;
        } else if (!strcmp(a, "--prefetch")) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || !*v || n < 0 || n > 1000) {
                fprintf(stderr, "cairn-worker: --prefetch takes 0..1000, got '%s'\n", v);
                return 2;
            }
            cfg.prefetch = (int)n;
        } else if (!strcmp(a, "--max-log-size")) {
            char uerr[128];
            if (units_parse_size(v, &cfg.max_log_size, uerr, sizeof(uerr)) != 0) {
                fprintf(stderr, "cairn-worker: --max-log-size: %s\n", uerr);
                return 2;
            }
        } else if (!strcmp(a, "--name"))
            cfg.name = v;
        else if (!strcmp(a, "--labels"))
            labels = v;
        else if (!strcmp(a, "--token-file"))
            cfg.token_file = v;
        else if (!strcmp(a, "--artifacts-credentials"))
            cfg.artifacts_credentials = v;
        else if (!strcmp(a, "--tls-cert"))
            cfg.tls_cert = v;
        else if (!strcmp(a, "--tls-key"))
            cfg.tls_key = v;
        else if (!strcmp(a, "--tls-ca"))
            cfg.tls_ca = v;
        else if (!strcmp(a, "--artifacts-direct")) {
            if (!strcmp(v, "auto"))
                cfg.artifacts_direct = LINK_DIRECT_AUTO;
            else if (!strcmp(v, "yes"))
                cfg.artifacts_direct = LINK_DIRECT_YES;
            else if (!strcmp(v, "no"))
                cfg.artifacts_direct = LINK_DIRECT_NO;
            else {
                fprintf(stderr, "cairn-worker: --artifacts-direct takes auto, yes or no, got "
                                "'%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--api"))
            cfg.api_url = v;
        else if (!strcmp(a, "--api-ca"))
            cfg.api_ca = v;
        else if (!strcmp(a, "--tls-server-name"))
            cfg.tls_server_name = v;
        else if (!strcmp(a, "--runtime"))
            cfg.runtime = v;
        else if (!strcmp(a, "--isolation"))
            isolation = v;
        else if (!strcmp(a, "--log-level"))
            level = v;
        else if (!strcmp(a, "--log-format"))
            format = v;
        else if (!strcmp(a, "--allow-mount"))
            allow[cfg.nallow_mounts++] = v;
        else if (!strcmp(a, "--gpus"))
            cfg.gpus = v;
        else if (!strcmp(a, "--gpu-model"))
            cfg.gpu_model = v;
        else if (!strcmp(a, "--gpu-dev-dir"))
            cfg.gpu_dev_dir = v;
        else if (!strcmp(a, "--registry-auth"))
            cfg.registry_auth = v;
        else if (!strcmp(a, "--registry-ca"))
            cfg.registry_ca = v;
        else if (!strcmp(a, "--insecure-registry"))
            insecure[cfg.ninsecure_registries++] = v;
        else if (!strcmp(a, "--blob-cache-size")) {
            char e[128] = "";
            if (!strcmp(v, "none"))
                cfg.blob_cache_size = -1;
            else if (units_parse_size(v, &cfg.blob_cache_size, e, sizeof(e)) != 0 ||
                     cfg.blob_cache_size <= 0) {
                fprintf(stderr, "cairn-worker: --blob-cache-size: %s\n",
                        e[0] ? e : "must be more than 0 (or none)");
                return 2;
            }
        } else if (!strcmp(a, "--image-cache-size")) {
            char e[128];
            if (units_parse_size(v, &cfg.image_cache_size, e, sizeof(e)) != 0 ||
                cfg.image_cache_size <= 0) {
                fprintf(stderr, "cairn-worker: --image-cache-size: %s\n",
                        e[0] ? e : "must be more than 0");
                return 2;
            }
        } else if (!strcmp(a, "--metrics")) {
            /* HOST:PORT, [v6]:PORT; port 0 picks a free one */
            char *colon = strrchr(v, ':'), *end;
            long port = colon ? strtol(colon + 1, &end, 10) : -1;
            if (!colon || colon == v || !colon[1] || *end || port < 0 || port > 65535) {
                fprintf(stderr, "cairn-worker: --metrics takes HOST:PORT, got '%s'\n", v);
                return 2;
            }
            char *mh = metrics_host;
            size_t hl = (size_t)(colon - v);
            if (v[0] == '[' && hl >= 2 && colon[-1] == ']') {
                v++;
                hl -= 2;
            }
            if (hl >= sizeof(metrics_host)) {
                fprintf(stderr, "cairn-worker: --metrics: host too long\n");
                return 2;
            }
            memcpy(mh, v, hl);
            mh[hl] = '\0';
            cfg.metrics_host = mh;
            cfg.metrics_port = (int)port;
        } else {
            fprintf(stderr, "cairn-worker: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (!cfg.scheduler_url || !cfg.data_dir) {
        fprintf(stderr, "cairn-worker: --scheduler and --data are required\n");
        usage(stderr);
        return 2;
    }
    if (cfg.prefetch < 0) /* the scheduler keeps it to about a second of work a slot */
        cfg.prefetch = cfg.slots < 2 ? 8 : cfg.slots < 16 ? 4 * cfg.slots : 64;
    if (!strcmp(isolation, "none"))
        cfg.isolation_none = true;
    else if (strcmp(isolation, "runc") != 0) {
        fprintf(stderr, "cairn-worker: --isolation takes runc or none\n");
        return 2;
    }
    int lv = LOG_INFO;
    if (level && (lv = log_level_parse(level)) < 0) {
        fprintf(stderr, "cairn-worker: unknown log level '%s'\n", level);
        return 2;
    }
    int lf = LOG_FORMAT_TEXT;
    if (format && (lf = log_format_parse(format)) < 0) {
        fprintf(stderr, "cairn-worker: --log-format takes text or json, got '%s'\n", format);
        return 2;
    }
    log_init("cairn-worker", lv);
    log_set_format((enum log_format)lf);
    json_t *lj = json_object();
    if (labels && *labels) {
        char *copy = xstrdup(labels), *save = NULL;
        for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(kv, '=');
            if (!eq || eq == kv) {
                fprintf(stderr, "cairn-worker: --labels takes k=v,k=v; got '%s'\n", kv);
                free(copy);
                json_decref(lj);
                return 2;
            }
            *eq = '\0';
            json_object_set_new(lj, kv, json_string(eq + 1));
        }
        free(copy);
    }
    char *ljs = json_dumps(lj, JSON_COMPACT);
    json_decref(lj);
    cfg.labels_json = ljs;
    cfg.allow_mounts = allow;
    cfg.insecure_registries = insecure;
    int rc = agent_run(&cfg);
    free(ljs);
    return rc;
}

int
main(int argc, char **argv)
{
    const char **allow = xcalloc((size_t)argc + 1, sizeof(*allow));
    const char **insecure = xcalloc((size_t)argc + 1, sizeof(*insecure));
    int rc = run(argc, argv, allow, insecure);
    free(allow);
    free(insecure);
    return rc;
}
