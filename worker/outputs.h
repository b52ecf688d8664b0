/* outputs.h - an attempt's outputs and metrics (prefix: outputs_).
 *
 * After a successful attempt the worker stores every declared output in the
 * artifact store (hashed, copied, fsynced: up to gigabytes) and reads the
 * metrics file (a flat JSON object of numbers). That runs on libuv's thread
 * pool, so the loop keeps starting tasks and streaming logs meanwhile; the
 * attempt keeps its slot and its lease until its result is sent.
 *
 * outputs_collect is called on the loop thread and done_cb runs there. The
 * store, the folder and the names are borrowed until done_cb.
 */
#ifndef CAIRN_OUTPUTS_H
#define CAIRN_OUTPUTS_H

#include <stddef.h>

#include <uv.h>

#include "artifact.h"
#include "msg.h"
#include "xfer.h"

struct outputs_spec {
    const char *dir;    /* the attempt's outputs folder */
    char *const *names; /* the declared outputs, stored in this order */
    size_t nnames;
    const char *metrics_file; /* one of the outputs, or NULL */
    struct art_store *store;  /* NULL: no output is stored (metrics only); with remote, the
                                 worker's blob cache */
    int64_t max_size;         /* bytes one output may have (its length); 0 = no limit */
    int64_t max_total;        /* bytes all of them may have together; 0 = no limit */
    const struct xfer_remote *remote; /* NULL: store is the scheduler's; else each output
                                         goes to the cache, then through the API (xfer.h) */
};

/* What the job found. outputs and metrics are malloc'd arrays of what they
 * own (msg.h's types, ready for a RESULT); done_cb may take them (set the
 * pointers to NULL), else they are freed after it returns. error is "" or
 * why the attempt fails: a declared output missing ("declared output 'x'
 * was not written to /outputs") or not stored, outputs over max_size or
 * max_total (checked before any is stored, so none is: "output 'x' is
 * 3221225472 bytes, over max_output_size 1GiB"), a metrics file that is not a
 * JSON object of numbers. The outputs stored before an error stay listed,
 * and so do the metrics read before it. */
struct outputs_result {
    struct msg_output *outputs;
    size_t noutputs;
    struct msg_metric *metrics;
    size_t nmetrics;
    char error[512];
};

typedef void outputs_done_cb(void *ud, struct outputs_result *res);

/* Queue the job on loop's thread pool; done_cb(ud, res) follows on the
 * loop thread. If the pool refuses the job (a loop that is closing) it runs
 * at once and done_cb is called before outputs_collect returns. */
void outputs_collect(uv_loop_t *loop, const struct outputs_spec *spec, outputs_done_cb *done_cb,
                     void *ud);

#endif
