/* inputs.h - an attempt's inputs (prefix: inputs_).
 *
 * Before a task starts, the worker fetches each input of its lease from the
 * artifact store into the attempt's folder, digest checked (hard links to
 * the blob where the store is local, copies otherwise: art_fetch), and the
 * container mounts each read-only at /inputs/NAME. Two kinds:
 *
 *   a plain input: one blob, fetched to DIR/NAME;
 *   a fan-in input (msg_input.manifest_file set): its blob is a manifest of
 *     a mapped task's instances, JSON {task, instances: [{index, item,
 *     state, outputs: {FILE: {sha256, size, uri}}}]}. For every instance
 *     whose outputs name manifest_file, that blob goes to
 *     DIR/NAME/<index>/<manifest_file>, and DIR/NAME/manifest.json lists
 *     them: [{"index": i, "item": ..., "sha256": ...}, ...] in the
 *     manifest's order (instances without the file are left out). The
 *     manifest is parsed once; each distinct digest is hashed once; the
 *     work is linear in the number of instances.
 *
 * This can be a lot of work (a fan-in over 100,000 instances, inputs of
 * gigabytes to copy and hash), so inputs_fetch runs it on libuv's thread
 * pool, as outputs.h does the outputs; inputs_fetch_now is the same work
 * on the calling thread.
 */
#ifndef CAIRN_INPUTS_H
#define CAIRN_INPUTS_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "artifact.h"
#include "msg.h"
#include "xfer.h"

/* Borrowed until done_cb (or until inputs_fetch_now returns). */
struct inputs_spec {
    struct art_store *store;        /* the store (thread-safe: artifact.h); with remote, the
                                       worker's blob cache */
    const char *dir;                /* DIR: the attempt's inputs folder, made here */
    const struct msg_input *inputs; /* the lease's inputs */
    size_t ninputs;
    const struct xfer_remote *remote; /* NULL: the store is the scheduler's, reached
                                         directly; else blobs come through its API into
                                         the cache first (xfer.h) */
    const char *code_tree; /* the run's code snapshot to build first (codetree.h), or NULL */
    const char *code_root; /* where built snapshots are kept (DATA/code) */
};

/* What the job did. paths[i] is the host path of inputs[i] (DIR/NAME, a
 * file or, for a fan-in, a folder), malloc'd; error is "" or why the
 * attempt cannot start, naming the input ("cannot fetch input 'raw': ...",
 * "input 'models': malformed manifest: ..."). On error, paths holds what
 * was fetched before it (the rest NULL). */
struct inputs_result {
    char **paths; /* ninputs entries (+ a NULL), freed after done_cb */
    size_t n;
    char error[512];
    bool unavailable; /* an input could not be reached (not the task's fault) */
    char *code_path;  /* the built code snapshot's folder, or NULL; freed after done_cb
                         unless taken (set to NULL) */
};

typedef void inputs_done_cb(void *ud, struct inputs_result *res);

/* Queue the job on loop's thread pool; done_cb(ud, res) follows on the
 * loop thread (res is valid only during the call). If the pool refuses the
 * job it runs at once and done_cb is called before inputs_fetch returns. */
void inputs_fetch(uv_loop_t *loop, const struct inputs_spec *spec, inputs_done_cb *done_cb,
                  void *ud);

/* The same work, here and now: res is filled (free it with
 * inputs_result_clear). */
void inputs_fetch_now(const struct inputs_spec *spec, struct inputs_result *res);
void inputs_result_clear(struct inputs_result *res);

#endif
