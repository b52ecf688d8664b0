/* test_worker.c - the real cairn-worker (--isolation none) against a fake
 * scheduler in this process: an nng rep socket that decodes every request
 * with msg.h and answers it. It checks what the worker says on the wire:
 * HELLO, POLLs with the right free slots and held leases, a malformed
 * lease reported as failed by its id while the others in the same WORK
 * still start, a lease without a valid id only freeing its slot, STARTED
 * -> LOG -> RESULT in order, the environment a task gets, output with NUL
 * and invalid UTF-8 bytes, and a clean exit on SIGTERM. A second worker,
 * with one slot and a prefetch of two, shows the queue: leases beyond the
 * slot wait (listed in POLLs, so renewed), start one by one as the slot
 * frees, a queued lease taken back never starts, and a RESULT's BATCH asks
 * for more work and starts what its ACK brings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "err.h"
#include "fs.h"
#include "msg.h"
#include "proto.h"
#include "util.h"

#define HEARTBEAT_MS 200
#define SLOTS 4

/* What the fake scheduler saw. */
struct seen {
    int hellos;
    struct msg hello;
    int polls_after_done; /* POLLs with every slot free and nothing held, after the results */
    int started[8];       /* per lease id: order of arrival (1-based), 0 = never */
    int first_log[8];
    int result_at[8];
    struct msg_result result[8];
    struct sb log[8];
    int events;
    int batches;
    int batches_asking;   /* BATCHes with free > 0 */
    int held_queued;      /* POLLs that listed queued leases 5 and 6 while lease 1 ran */
    int unexpected;
    char unexpected_why[256];
};

struct fake {
    nng_socket sock;
    char url[64];
    char dir[64];
    pid_t pid;
    struct seen seen;
    bool work_sent;
    bool prefetch;      /* the second test: one slot, prefetch 2 */
    int all_free;       /* POLL.free once nothing is held */
    bool cancel_sent, ack_work_sent;
};

static void
seen_note(struct seen *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (!s->unexpected)
        vsnprintf(s->unexpected_why, sizeof(s->unexpected_why), fmt, ap);
    va_end(ap);
    s->unexpected++;
}

/* A lease as the scheduler's lease_json builds it. */
static json_t *
lease(json_int_t id, json_t *argv, json_t *env)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:i, s:s, s:o, s:o, s:s, s:I, s:f, s:I, s:I, s:b, s:[], "
                     "s:[], s:n, s:n}",
                     "lease_id", id, "dag", "d", "run_id", "manual__1", "task", "t", "attempt", 1,
                     "logical_date", "2026-01-01T00:00:00Z", "argv", argv, "env", env, "image",
                     "host", "timeout_ms", (json_int_t)20000, "cpus", 1.0, "memory", (json_int_t)0,
                     "pids", (json_int_t)0, "network", 0, "inputs", "outputs", "code", "metrics");
}

static json_t *
first_work(void)
{
    json_t *good =
        lease(1, json_pack("[s]", "env"),
              json_pack("[s, s, s]", "CAIRN_DAG=d", "CAIRN_RUN_ID=manual__1", "FOO=bar baz"));
    json_t *no_memory = lease(2, json_pack("[s]", "true"), json_array());
    json_object_del(no_memory, "memory"); /* must not be read as "unlimited" */
    json_t *no_id = lease(3, json_pack("[s]", "true"), json_array());
    json_object_set_new(no_id, "lease_id", json_string("3"));
    json_t *bytes = lease(4, json_pack("[s, s]", "printf", "a\\000b\\377c\\n"), json_array());
    return json_pack("{s:[o, o, o, o], s:[]}", "leases", good, no_memory, no_id, bytes, "cancel");
}

/* The prefetch test's first WORK: a slow lease, then two that must wait. */
static json_t *
prefetch_work(void)
{
    json_t *slow = lease(1, json_pack("[s, s]", "sleep", "0.6"), json_array());
    json_t *next = lease(5, json_pack("[s]", "true"), json_array());
    json_t *taken = lease(6, json_pack("[s]", "true"), json_array());
    return json_pack("{s:[o, o, o], s:[]}", "leases", slow, next, taken, "cancel");
}

static bool
all_done(const struct fake *f)
{
    const struct seen *s = &f->seen;
    if (f->prefetch)
        return s->result_at[1] && s->result_at[5] && s->result_at[7];
    return s->result_at[1] && s->result_at[2] && s->result_at[4];
}

static bool
poll_holds(const struct msg_poll *p, int64_t id)
{
    for (size_t i = 0; i < p->nleases; i++)
        if (p->leases[i] == id)
            return true;
    return false;
}

/* Note one STARTED, LOG or RESULT (a RESULT is moved out of it). */
static void
record(struct seen *s, int type, struct msg_item *it)
{
    int64_t id = type == PROTO_STARTED ? it->u.started.lease_id
                 : type == PROTO_LOG   ? it->u.log.lease_id
                                       : it->u.result.lease_id;
    if (id < 1 || id > 7) {
        seen_note(s, "%s for unknown lease %lld", proto_type_name(type), (long long)id);
        return;
    }
    s->events++;
    if (type == PROTO_STARTED) {
        s->started[id] = s->events;
    } else if (type == PROTO_LOG) {
        if (!s->first_log[id])
            s->first_log[id] = s->events;
        if (it->u.log.offset != (int64_t)s->log[id].len)
            seen_note(s, "LOG offset %lld, have %zu", (long long)it->u.log.offset, s->log[id].len);
        sb_append(&s->log[id], it->u.log.data, it->u.log.data_len);
    } else {
        if (s->result_at[id])
            seen_note(s, "two RESULTs for lease %lld", (long long)id);
        s->result_at[id] = s->events;
        msg_result_clear(&s->result[id]);
        s->result[id] = it->u.result;
        memset(&it->u.result, 0, sizeof(it->u.result)); /* kept */
    }
}

/* The answer to one request: *rep to msg_pack, or (the first WORK, whose
 * bad leases a struct cannot hold) *raw, a JSON body. */
static void
answer(struct fake *f, struct msg *req, struct msg *rep, json_t **raw)
{
    struct seen *s = &f->seen;
    memset(rep, 0, sizeof(*rep));
    *raw = NULL;
    switch (req->type) {
    case PROTO_HELLO:
        s->hellos++;
        msg_clear(&s->hello);
        s->hello = *req;
        memset(req, 0, sizeof(*req));
        rep->type = PROTO_WELCOME;
        rep->u.welcome = (struct msg_welcome){30000, HEARTBEAT_MS, NULL, MSG_VERSION};
        return;
    case PROTO_POLL:
        if (!f->work_sent) {
            *raw = f->prefetch ? prefetch_work() : first_work();
            f->work_sent = true;
            return;
        }
        if (f->prefetch && !s->result_at[1] && poll_holds(&req->u.poll, 5) &&
            poll_holds(&req->u.poll, 6))
            s->held_queued++;
        if (f->prefetch && !f->cancel_sent && poll_holds(&req->u.poll, 6)) {
            /* lease 6 is taken back while it waits in the queue */
            *raw = json_pack("{s:[], s:[i]}", "leases", "cancel", 6);
            f->cancel_sent = true;
            return;
        }
        if (all_done(f) && req->u.poll.free == f->all_free && req->u.poll.nleases == 0)
            s->polls_after_done++;
        usleep(20000);          /* a long poll, shortened */
        rep->type = PROTO_WORK; /* empty */
        return;
    case PROTO_STARTED:
    case PROTO_LOG:
    case PROTO_RESULT: {
        struct msg_item it = {.type = req->type};
        if (req->type == PROTO_STARTED)
            it.u.started = req->u.started;
        else if (req->type == PROTO_LOG)
            it.u.log = req->u.log;
        else
            it.u.result = req->u.result;
        record(s, req->type, &it);
        if (req->type == PROTO_RESULT)
            memset(&req->u.result, 0, sizeof(req->u.result));
        rep->type = PROTO_ACK;
        rep->u.ack.ok = true;
        rep->u.ack.reason = xstrdup("");
        return;
    }
    case PROTO_BATCH: {
        struct msg_batch *b = &req->u.batch;
        s->batches++;
        rep->type = PROTO_ACK;
        rep->u.ack.ok = true;
        rep->u.ack.results = xcalloc(b->nitems + 1, sizeof(*rep->u.ack.results));
        rep->u.ack.nresults = b->nitems;
        for (size_t i = 0; i < b->nitems; i++) {
            if (b->items[i].type == 0)
                seen_note(s, "a BATCH item did not decode: %s", b->items[i].error);
            else
                record(s, b->items[i].type, &b->items[i]);
            rep->u.ack.results[i].ok = true;
            rep->u.ack.results[i].reason = xstrdup("");
        }
        if (b->free > 0)
            s->batches_asking++;
        if (f->prefetch && b->free > 0 && s->result_at[5] && !f->ack_work_sent) {
            /* the answer to a BATCH that asks brings the next lease */
            json_t *w = json_pack("{s:[o], s:[]}", "leases",
                                  lease(7, json_pack("[s]", "true"), json_array()), "cancel");
            struct msg tmp;
            char err[256];
            json_t *body = json_pack("{s:b, s:o}", "ok", 1, "work", w);
            if (msg_decode(PROTO_ACK, body, &tmp, err, sizeof(err)) != 0)
                seen_note(s, "cannot make the ACK: %s", err);
            json_decref(body);
            rep->u.ack.work = tmp.u.ack.work;
            tmp.u.ack.work = NULL;
            msg_clear(&tmp);
            f->ack_work_sent = true;
        }
        return;
    }
    default:
        seen_note(s, "unexpected request %s", proto_type_name(req->type));
        rep->type = PROTO_ERROR;
        rep->u.error.code = xstrdup("proto");
        rep->u.error.message = xstrdup("not a request");
    }
}

/* Serve one request if one comes within ms; false if none came. */
static bool
serve_one(struct fake *f, int ms)
{
    nng_msg *m = NULL;
    nng_socket_set_ms(f->sock, NNG_OPT_RECVTIMEO, ms);
    if (nng_recvmsg(f->sock, &m, 0) != 0)
        return false;
    struct msg req, rep;
    json_t *raw = NULL;
    char err[256];
    int rc = msg_unpack(NULL, nng_msg_body(m), nng_msg_len(m), &req, err, sizeof(err));
    nng_msg_free(m);
    if (rc != 0) {
        seen_note(&f->seen, "a request did not decode: %s", err);
        memset(&rep, 0, sizeof(rep));
        rep.type = PROTO_ERROR;
        rep.u.error.code = xstrdup("proto");
        rep.u.error.message = xstrdup(err);
    } else {
        answer(f, &req, &rep, &raw);
        msg_clear(&req);
    }
    unsigned char *buf;
    size_t len;
    if (raw)
        assert_int_equal(proto_encode(NULL, PROTO_WORK, raw, &buf, &len), 0);
    else
        assert_int_equal(msg_pack(NULL, &rep, &buf, &len), 0);
    json_decref(raw);
    msg_clear(&rep);
    assert_int_equal(nng_send(f->sock, buf, len, 0), 0);
    free(buf);
    return true;
}

static void
start_worker(struct fake *f, const char *slots, const char *prefetch)
{
    char *bin = xasprintf("%s/worker/cairn-worker", CAIRN_BINARY_DIR);
    char *data = xasprintf("%s/data", f->dir);
    char *log = xasprintf("%s/worker.log", f->dir);
    f->pid = fork();
    assert_true(f->pid >= 0);
    if (f->pid == 0) {
        FILE *o = freopen(log, "w", stderr);
        (void)o;
        execl(bin, bin, "--scheduler", f->url, "--data", data, "--name", "tw", "--slots", slots,
              "--prefetch", prefetch, "--labels", "zone=eu-1", "--isolation", "none",
              "--log-level", "info", (char *)NULL);
        _exit(127);
    }
    free(bin);
    free(data);
    free(log);
}

/* Listen on a free port, start the worker, serve it until the results are
 * in and two POLLs say everything is free again, then SIGTERM it and serve
 * until it exits. Returns its wait status; *wlog is its log (malloc'd). */
static int
fake_run(struct fake *f, const char *slots, const char *prefetch, char **wlog)
{
    snprintf(f->dir, sizeof(f->dir), "/tmp/cairn-tw-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    for (int i = 0; i < 8; i++)
        sb_init(&f->seen.log[i]);

    nng_listener lst;
    nng_sockaddr sa;
    assert_int_equal(nng_rep0_open(&f->sock), 0);
    nng_socket_set_size(f->sock, NNG_OPT_RECVMAXSZ, PROTO_MAX_FRAME);
    assert_int_equal(nng_listen(f->sock, "tcp://127.0.0.1:0", &lst, 0), 0);
    assert_int_equal(nng_listener_get_addr(lst, NNG_OPT_LOCADDR, &sa), 0);
    snprintf(f->url, sizeof(f->url), "tcp://127.0.0.1:%u", (unsigned)ntohs(sa.s_in.sa_port));
    start_worker(f, slots, prefetch);

    int64_t deadline = clock_mono_ms() + 20000;
    while (clock_mono_ms() < deadline && f->seen.polls_after_done < 2)
        serve_one(f, 200);
    /* SIGTERM: the worker drains (nothing runs) and exits */
    assert_int_equal(kill(f->pid, SIGTERM), 0);
    int status = -1;
    deadline = clock_mono_ms() + 15000;
    while (clock_mono_ms() < deadline && waitpid(f->pid, &status, WNOHANG) == 0)
        serve_one(f, 50);
    if (!WIFEXITED(status)) {
        kill(f->pid, SIGKILL);
        waitpid(f->pid, &status, 0);
    }
    nng_close(f->sock);

    struct seen *s = &f->seen;
    char *logpath = xasprintf("%s/worker.log", f->dir);
    size_t wlen = 0;
    *wlog = NULL;
    fs_read_all(logpath, 0, wlog, &wlen);
    free(logpath);
    if (s->unexpected)
        fail_msg("%d unexpected things, first: %s\nworker log:\n%s", s->unexpected,
                 s->unexpected_why, *wlog ? *wlog : "");
    if (!all_done(f))
        fail_msg("results missing (1: %d, 2: %d, 4: %d, 5: %d, 7: %d)\nworker log:\n%s",
                 s->result_at[1], s->result_at[2], s->result_at[4], s->result_at[5],
                 s->result_at[7], *wlog ? *wlog : "");
    return status;
}

static void
fake_free(struct fake *f)
{
    struct seen *s = &f->seen;
    msg_clear(&s->hello);
    for (int i = 0; i < 8; i++) {
        sb_free(&s->log[i]);
        msg_result_clear(&s->result[i]);
    }
    fs_rmtree(f->dir);
}

static void
test_worker_on_the_wire(void **state)
{
    (void)state;
    struct fake f;
    memset(&f, 0, sizeof(f));
    f.all_free = SLOTS;
    char *wlog = NULL;
    int status = fake_run(&f, "4", "0", &wlog);
    struct seen *s = &f.seen;

    /* HELLO */
    assert_true(s->hellos >= 1);
    assert_string_equal(s->hello.u.hello.worker, "tw");
    assert_int_equal(s->hello.u.hello.slots, SLOTS);
    assert_int_equal(s->hello.u.hello.version, MSG_VERSION);
    assert_int_equal(s->hello.u.hello.nlabels, 1);
    assert_string_equal(s->hello.u.hello.labels[0].key, "zone");
    assert_string_equal(s->hello.u.hello.labels[0].value, "eu-1");
    assert_int_equal(s->hello.u.hello.pid, f.pid);

    /* the malformed lease: failed by its id, with the field's name, never started */
    assert_int_equal(s->started[2], 0);
    assert_int_equal(s->result[2].exit_code, -1);
    assert_string_equal(s->result[2].error, "malformed lease: missing field 'leases[1].memory'");
    /* the lease without a valid id: nothing to report it by */
    assert_int_equal(s->result_at[3], 0);
    assert_int_equal(s->started[3], 0);
    /* ... and every slot came back (POLL: free 4, nothing held) */
    assert_true(s->polls_after_done >= 2);

    /* the good leases of the same WORK: STARTED, LOG, RESULT in that order */
    for (int id = 1; id <= 4; id += 3) {
        assert_true(s->started[id] > 0);
        assert_true(s->first_log[id] > s->started[id]);
        assert_true(s->result_at[id] > s->first_log[id]);
        assert_int_equal(s->result[id].exit_code, 0);
        assert_string_equal(s->result[id].error, "");
        assert_false(s->result[id].interrupted);
        assert_string_equal(s->result[id].worker, "tw");
    }

    /* the environment: the lease's, then where the folders are, then PATH */
    char *want = xasprintf("CAIRN_DAG=d\nCAIRN_RUN_ID=manual__1\nFOO=bar baz\n"
                           "CAIRN_OUTPUTS=%s/data/work/1/outputs\n"
                           "CAIRN_INPUTS=%s/data/work/1/inputs\n"
                           "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n",
                           f.dir, f.dir);
    assert_string_equal(s->log[1].buf, want);
    free(want);
    /* a NUL and a byte that is not UTF-8: each sent as '?', nothing lost */
    assert_int_equal(s->log[4].len, 6);
    assert_string_equal(s->log[4].buf, "a?b?c\n");

    /* SIGTERM: a clean exit */
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("worker exit status %d\nworker log:\n%s", status, wlog ? wlog : "");

    free(wlog);
    fake_free(&f);
}

static void
test_worker_prefetch(void **state)
{
    (void)state;
    struct fake f;
    memset(&f, 0, sizeof(f));
    f.prefetch = true;
    f.all_free = 3; /* one slot and two queued */
    char *wlog = NULL;
    int status = fake_run(&f, "1", "2", &wlog);
    struct seen *s = &f.seen;

    assert_int_equal(s->hello.u.hello.slots, 1);
    assert_int_equal(s->hello.u.hello.prefetch, 2);
    /* the queued leases were renewed while they waited */
    if (s->held_queued < 1)
        fail_msg("no POLL listed the queued leases 5 and 6\nworker log:\n%s", wlog);
    /* one slot: lease 5 starts only once lease 1 has ended */
    assert_true(s->started[1] > 0);
    assert_true(s->started[5] > s->result_at[1]);
    /* lease 6 was taken back while queued: never started, never reported */
    assert_int_equal(s->started[6], 0);
    assert_int_equal(s->result_at[6], 0);
    assert_non_null(strstr(wlog, "lease 6 (d/manual__1/t): taken back by the scheduler"));
    /* a RESULT went in a BATCH asking for work, and the ACK's lease ran */
    assert_true(s->batches_asking >= 1);
    assert_true(s->started[7] > s->result_at[5]);
    assert_int_equal(s->result[7].exit_code, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("worker exit status %d\nworker log:\n%s", status, wlog ? wlog : "");
    free(wlog);
    fake_free(&f);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_on_the_wire),
        cmocka_unit_test(test_worker_prefetch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
