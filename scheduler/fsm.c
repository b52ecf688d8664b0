/* fsm.c - the task state machine's rules (fsm.h) and the state names of
 * engine.h. Pure functions: no engine state, no I/O. */
#include "fsm.h"

#include <math.h>
#include <string.h>

#include "engine.h"

static const char *const ti_state_names[] = {"pending", "queued", "leased", "running", "success",
                                             "failed", "up_for_retry", "upstream_failed",
                                             "skipped", "cancelled"};

static const char *const run_state_names[] = {"queued", "running", "success", "failed",
                                              "cancelled"};

const char *
sched_ti_state_name(enum ti_state s)
{
    return (unsigned)s < TI_NSTATES ? ti_state_names[s] : "?";
}

int
sched_ti_state_parse(const char *s)
{
    for (int i = 0; i < TI_NSTATES; i++)
        if (!strcmp(s, ti_state_names[i]))
            return i;
    return -1;
}

const char *
sched_run_state_name(enum run_state s)
{
    return (unsigned)s < RUN_NSTATES ? run_state_names[s] : "?";
}

int
sched_run_state_parse(const char *s)
{
    for (int i = 0; i < RUN_NSTATES; i++)
        if (!strcmp(s, run_state_names[i]))
            return i;
    return -1;
}

bool
sched_ti_terminal(enum ti_state s)
{
    return s == TI_SUCCESS || s == TI_FAILED || s == TI_UPSTREAM_FAILED || s == TI_SKIPPED ||
           s == TI_CANCELLED;
}

bool
sched_run_finished(enum run_state s)
{
    return s == RUN_SUCCESS || s == RUN_FAILED || s == RUN_CANCELLED;
}

void
fsm_count_one(struct fsm_upstreams *u, enum ti_state st)
{
    if (!sched_ti_terminal(st))
        return;
    u->done++;
    u->success += st == TI_SUCCESS;
    u->failed += st == TI_FAILED;
    u->upstream_failed += st == TI_UPSTREAM_FAILED;
    u->skipped += st == TI_SKIPPED;
}

enum ti_state
fsm_decide(enum dag_trigger rule, const struct fsm_upstreams *u)
{
    if (u->n == 0)
        return TI_QUEUED;
    bool all = u->done == u->n;
    bool anyfail = u->failed || u->upstream_failed;
    switch (rule) {
    case DAG_TRIGGER_ALL_SUCCESS:
        if (anyfail)
            return TI_UPSTREAM_FAILED;
        if (u->skipped)
            return TI_SKIPPED;
        return all ? TI_QUEUED : TI_PENDING;
    case DAG_TRIGGER_ALL_DONE:
        return all ? TI_QUEUED : TI_PENDING;
    case DAG_TRIGGER_ALL_FAILED:
        if (u->success || u->skipped)
            return TI_SKIPPED;
        return all ? TI_QUEUED : TI_PENDING;
    case DAG_TRIGGER_ONE_SUCCESS:
        if (u->success)
            return TI_QUEUED;
        if (all)
            return anyfail ? TI_UPSTREAM_FAILED : TI_SKIPPED;
        return TI_PENDING;
    case DAG_TRIGGER_ONE_FAILED:
        if (anyfail)
            return TI_QUEUED;
        return all ? TI_SKIPPED : TI_PENDING;
    case DAG_TRIGGER_NONE_FAILED:
        if (anyfail)
            return TI_UPSTREAM_FAILED;
        return all ? TI_QUEUED : TI_PENDING;
    }
    return TI_PENDING;
}

int64_t
fsm_retry_delay(int64_t delay_ms, double backoff, int64_t max_ms, int counted)
{
    double d = (double)delay_ms * pow(backoff, counted > 1 ? counted - 1 : 0);
    if (d > (double)max_ms)
        d = (double)max_ms;
    return (int64_t)d;
}

bool
fsm_may_retry(int counted, int retries)
{
    return counted <= retries;
}

bool
fsm_failed_like(enum ti_state st)
{
    return st == TI_FAILED || st == TI_UPSTREAM_FAILED || st == TI_CANCELLED;
}

const char *
fsm_attempt_state(enum ti_state st)
{
    switch (st) {
    case TI_LEASED:
        return "leased";
    case TI_RUNNING:
        return "running";
    case TI_SUCCESS:
        return "success";
    case TI_CANCELLED:
        return "cancelled";
    default:
        return "failed";
    }
}
