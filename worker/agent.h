/* agent.h - the worker agent (prefix: agent_).
 *
 * Threads: the libuv loop thread owns the running attempts (attempt.h, and
 * their containers: runc.h); the link's poll thread long-polls the
 * scheduler for leases (POLL doubles as heartbeat) and its sender thread
 * delivers STARTED, LOG and RESULT messages in order, retrying until the
 * scheduler answers, so nothing an attempt produced is lost while the
 * scheduler restarts (link.h). The threads talk to the loop through locked
 * queues and uv_async_send. The worker's modules: agent.c (lifecycle),
 * link.c, attempt.c, workdir.c, outputs.c and the container module
 * (runc.h).
 */
#ifndef CAIRN_AGENT_H
#define CAIRN_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct agent_config {
    const char *scheduler_url;
    const char *data_dir;
    const char *name;
    const char *host;
    int slots;
    int prefetch; /* leases held queued beyond the slots (0: none) */
    const char *labels_json; /* {"k":"v"} text */
    const char *token_file;
    const char *artifacts_credentials; /* --artifacts-credentials FILE (an S3 store), or NULL */
    const char *tls_cert, *tls_key, *tls_ca; /* mutual TLS on the link (all three) */
    int artifacts_direct;  /* --artifacts-direct auto|yes|no (link.h's LINK_DIRECT_*) */
    const char *api_url;   /* --api URL: the scheduler's HTTP API, or NULL */
    const char *api_ca;    /* --api-ca FILE: CA bundle for an https --api, or NULL */
    const char *tls_server_name; /* the scheduler certificate's name; NULL: the URL's host */
    const char *runtime;
    bool isolation_none;
    int64_t max_log_size; /* --max-log-size: bytes, 0 = no limit */
    const char *const *allow_mounts; /* --allow-mount folders */
    size_t nallow_mounts;
    const char *gpus;        /* --gpus 0,1, or NULL: find them (gpu.h) */
    const char *gpu_model;   /* --gpu-model, or NULL */
    const char *gpu_dev_dir; /* --gpu-dev-dir (tests), or NULL: /dev */
    const char *registry_auth;             /* --registry-auth config.json, or NULL */
    const char *registry_ca;               /* --registry-ca FILE, or NULL */
    const char *const *insecure_registries; /* --insecure-registry HOST:PORT */
    size_t ninsecure_registries;
    int64_t image_cache_size; /* --image-cache-size bytes (0: the default) */
    int64_t blob_cache_size;  /* --blob-cache-size bytes (0: the default, -1: no limit) */
    const char *metrics_host; /* --metrics HOST:PORT: where /metrics is served, or NULL */
    int metrics_port;
};

/* Run until SIGTERM/SIGINT (graceful: running attempts are stopped and their
 * results reported) . Returns a process exit code. */
int agent_run(const struct agent_config *cfg);

#endif
