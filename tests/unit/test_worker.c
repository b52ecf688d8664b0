/* test_worker.c - the real cairn-worker (--isolation none, and runc where
 * there is root and runc) against a fake scheduler in this process: an nng
 * rep socket that decodes every request with msg.h and answers it. It
 * checks what the worker says on the wire: HELLO, POLLs with the right
 * free slots and held leases, a malformed lease reported as failed by its
 * id while the others in the same WORK still start, a lease without a
 * valid id only freeing its slot, STARTED -> LOG -> RESULT in order, the
 * environment a task gets, output with NUL and invalid UTF-8 bytes, and a
 * clean exit on SIGTERM; the last lines of stderr in RESULT; fan-in inputs
 * from a real artifact store (and a large fan-in through inputs.h
 * directly); host mounts allowed and refused (mounts.h directly,
 * and in real containers). A worker with one slot and a prefetch of two
 * shows the queue: leases beyond the slot wait (listed in POLLs, so
 * renewed), start one by one as the slot frees, a queued lease taken back
 * never starts, and a RESULT's BATCH asks for more work and starts what its
 * ACK brings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "artifact.h"
#include "err.h"
#include "fs.h"
#include "inputs.h"
#include "mounts.h"
#include "msg.h"
#include "proto.h"
#include "tail.h"
#include "testlib.h"
#include "util.h"

#define HEARTBEAT_MS 200
#define SLOTS 4
#define MAXL 16 /* lease ids 1..MAXL-1 */

/* What the fake scheduler saw. */
struct seen {
    int hellos;
    struct msg hello;
    int polls_after_done; /* POLLs with every slot free and nothing held, after the results */
    int started[MAXL];    /* per lease id: order of arrival (1-based), 0 = never */
    int first_log[MAXL];
    int result_at[MAXL];
    struct msg_result result[MAXL];
    struct sb log[MAXL];
    int events;
    int batches;
    int polls_holding; /* POLLs that listed at least one held lease */
    int batches_asking; /* BATCHes with free > 0 */
    int held_queued;    /* POLLs that listed queued leases 5 and 6 while lease 1 ran */
    size_t last_held;  /* how many the last POLL listed */
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
    /* what a test sets before fake_run */
    json_t *work;      /* the first WORK (taken); NULL = first_work() */
    json_t *queue;     /* or: leases handed out as POLLs offer free slots */
    json_t *next_work; /* a WORK for the next POLL (taken), e.g. a cancel */
    char *artifacts;   /* the store named in WELCOME, or NULL */
    int want[MAXL];    /* the leases whose RESULTs end the run; none = 1, 2 and 4 */
    int nwant;
    const char *isolation; /* NULL = none */
    const char *extra[8];  /* more arguments for the worker */
    int all_free;          /* POLL.free once nothing is held; 0 = SLOTS */
    bool prefetch;         /* the prefetch test's answers */
    bool cancel_sent, ack_work_sent;
    /* what fake_run leaves */
    int status;
    char *wlog;
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

static bool
all_done(const struct seen *s)
{
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

static bool
fake_done(const struct fake *f)
{
    if (f->nwant == 0)
        return all_done(&f->seen);
    for (int i = 0; i < f->nwant; i++)
        if (!f->seen.result_at[f->want[i]])
            return false;
    return true;
}

/* Note one STARTED, LOG or RESULT (a RESULT is moved out of it). */
static void
record(struct seen *s, int type, struct msg_item *it)
{
    int64_t id = type == PROTO_STARTED ? it->u.started.lease_id
                 : type == PROTO_LOG   ? it->u.log.lease_id
                                       : it->u.result.lease_id;
    if (id < 1 || id > MAXL - 1) {
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
        rep->u.welcome = (struct msg_welcome){
            30000, HEARTBEAT_MS, f->artifacts ? xstrdup(f->artifacts) : NULL, MSG_VERSION, NULL, 0};
        return;
    case PROTO_POLL:
        s->last_held = req->u.poll.nleases;
        if (req->u.poll.nleases)
            s->polls_holding++;
        if (f->prefetch && !s->result_at[1] && poll_holds(&req->u.poll, 5) &&
            poll_holds(&req->u.poll, 6))
            s->held_queued++;
        if (f->prefetch && !f->cancel_sent && poll_holds(&req->u.poll, 6)) {
            /* lease 6 is taken back while it waits in the queue */
            *raw = json_pack("{s:[], s:[i]}", "leases", "cancel", 6);
            f->cancel_sent = true;
            return;
        }
        if (f->next_work) {
            *raw = f->next_work;
            f->next_work = NULL;
            return;
        }
        if (f->queue && json_array_size(f->queue) > 0 && req->u.poll.free > 0) {
            json_t *leases = json_array();
            while (json_array_size(leases) < (size_t)req->u.poll.free &&
                   json_array_size(f->queue) > 0) {
                json_array_append(leases, json_array_get(f->queue, 0));
                json_array_remove(f->queue, 0);
            }
            *raw = json_pack("{s:o, s:[]}", "leases", leases, "cancel");
            return;
        }
        if (!f->work_sent && !f->queue) {
            *raw = f->work ? f->work : first_work();
            f->work = NULL;
            f->work_sent = true;
            return;
        }
        if (fake_done(f) && req->u.poll.free == (f->all_free ? f->all_free : SLOTS) &&
            req->u.poll.nleases == 0)
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
start_worker(struct fake *f)
{
    char *bin = xasprintf("%s/worker/cairn-worker", CAIRN_BINARY_DIR);
    char *data = xasprintf("%s/data", f->dir);
    char *log = xasprintf("%s/worker.log", f->dir);
    const char *argv[32] = {bin,
                            "--scheduler",
                            f->url,
                            "--data",
                            data,
                            "--name",
                            "tw",
                            "--slots",
                            "4",
                            "--labels",
                            "zone=eu-1",
                            "--isolation",
                            f->isolation ? f->isolation : "none",
                            "--log-level",
                            "info",
                            "--prefetch",
                            "0"};
    size_t n = 17;
    for (size_t i = 0; i < 8 && f->extra[i]; i++)
        argv[n++] = f->extra[i];
    argv[n] = NULL;
    f->pid = fork();
    assert_true(f->pid >= 0);
    if (f->pid == 0) {
        FILE *o = freopen(log, "w", stderr);
        (void)o;
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    free(bin);
    free(data);
    free(log);
}

/* A fresh folder and a listening socket. */
static void
fake_begin(struct fake *f)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/cairn-tw-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    for (int i = 0; i < MAXL; i++)
        sb_init(&f->seen.log[i]);
    nng_listener lst;
    nng_sockaddr sa;
    assert_int_equal(nng_rep0_open(&f->sock), 0);
    nng_socket_set_size(f->sock, NNG_OPT_RECVMAXSZ, PROTO_MAX_FRAME);
    assert_int_equal(nng_listen(f->sock, "tcp://127.0.0.1:0", &lst, 0), 0);
    assert_int_equal(nng_listener_get_addr(lst, NNG_OPT_LOCADDR, &sa), 0);
    snprintf(f->url, sizeof(f->url), "tcp://127.0.0.1:%u", (unsigned)ntohs(sa.s_in.sa_port));
}

/* The worker's log so far (malloc'd, "" if none). */
static char *
worker_log(const struct fake *f)
{
    char *path = xasprintf("%s/worker.log", f->dir), *text = NULL;
    size_t len = 0;
    if (fs_read_all(path, 0, &text, &len) != 0)
        text = xstrdup("");
    free(path);
    return text;
}

/* Serve until the worker's log has what (or 20 s passed). */
static bool
serve_until_logged(struct fake *f, const char *what)
{
    int64_t deadline = clock_mono_ms() + 20000;
    bool found = false;
    while (!found && clock_mono_ms() < deadline) {
        serve_one(f, 50);
        char *log = worker_log(f);
        found = strstr(log, what) != NULL;
        free(log);
    }
    return found;
}

/* Stop the worker with SIGTERM, serving it until it is gone, and read its
 * log; fails the test on anything unexpected, a missing result or an
 * unclean exit. */
static void
fake_stop(struct fake *f)
{
    /* SIGTERM: the worker drains and exits */
    assert_int_equal(kill(f->pid, SIGTERM), 0);
    f->status = -1;
    int64_t deadline = clock_mono_ms() + 15000;
    while (clock_mono_ms() < deadline && waitpid(f->pid, &f->status, WNOHANG) == 0)
        serve_one(f, 50);
    if (!WIFEXITED(f->status)) {
        kill(f->pid, SIGKILL);
        waitpid(f->pid, &f->status, 0);
    }
    nng_close(f->sock);
    char *logpath = xasprintf("%s/worker.log", f->dir);
    size_t wlen = 0;
    fs_read_all(logpath, 0, &f->wlog, &wlen);
    free(logpath);
    struct seen *s = &f->seen;
    if (s->unexpected)
        fail_msg("%d unexpected things, first: %s\nworker log:\n%s", s->unexpected,
                 s->unexpected_why, f->wlog ? f->wlog : "");
    if (!fake_done(f))
        fail_msg("results missing\nworker log:\n%s", f->wlog ? f->wlog : "");
    if (!WIFEXITED(f->status) || WEXITSTATUS(f->status) != 0)
        fail_msg("worker exit status %d\nworker log:\n%s", f->status, f->wlog ? f->wlog : "");
}

/* Start the worker, serve it until the results are in and a POLL says
 * every slot is free (twice), then fake_stop. */
static void
fake_run(struct fake *f)
{
    start_worker(f);
    int64_t deadline = clock_mono_ms() + 20000;
    while (clock_mono_ms() < deadline && f->seen.polls_after_done < 2)
        serve_one(f, 200);
    fake_stop(f);
}

static void
fake_end(struct fake *f)
{
    struct seen *s = &f->seen;
    msg_clear(&s->hello);
    for (int i = 0; i < MAXL; i++) {
        sb_free(&s->log[i]);
        msg_result_clear(&s->result[i]);
    }
    json_decref(f->work);
    json_decref(f->queue);
    json_decref(f->next_work);
    free(f->artifacts);
    free(f->wlog);
    tl_rmtree(f->dir);
}

static void
test_worker_on_the_wire(void **state)
{
    (void)state;
    struct fake f;
    /* until the three results are in and a POLL says every slot is free,
     * then SIGTERM: the worker drains (nothing runs) and exits cleanly */
    fake_begin(&f);
    fake_run(&f);
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
    fake_end(&f);
}

/* ---- prefetch: leases beyond the slots ---- */

static void
test_worker_prefetch(void **state)
{
    (void)state;
    struct fake f;
    fake_begin(&f);
    /* one slot, two queued: a slow lease, then two that must wait */
    f.extra[0] = "--slots";
    f.extra[1] = "1";
    f.extra[2] = "--prefetch";
    f.extra[3] = "2";
    f.all_free = 3;
    f.prefetch = true;
    f.work = json_pack("{s:[o, o, o], s:[]}", "leases",
                       lease(1, json_pack("[s, s]", "sleep", "0.6"), json_array()),
                       lease(5, json_pack("[s]", "true"), json_array()),
                       lease(6, json_pack("[s]", "true"), json_array()), "cancel");
    f.want[0] = 1;
    f.want[1] = 5;
    f.want[2] = 7;
    f.nwant = 3;
    fake_run(&f);
    struct seen *s = &f.seen;

    assert_int_equal(s->hello.u.hello.slots, 1);
    assert_int_equal(s->hello.u.hello.prefetch, 2);
    /* the queued leases were renewed while they waited */
    if (s->held_queued < 1)
        fail_msg("no POLL listed the queued leases 5 and 6\nworker log:\n%s", f.wlog);
    /* one slot: lease 5 starts only once lease 1 has ended */
    assert_true(s->started[1] > 0);
    assert_true(s->started[5] > s->result_at[1]);
    /* lease 6 was taken back while queued: never started, never reported */
    assert_int_equal(s->started[6], 0);
    assert_int_equal(s->result_at[6], 0);
    assert_non_null(strstr(f.wlog, "lease 6 (d/manual__1/t): taken back by the scheduler"));
    /* a RESULT went in a BATCH asking for work, and the ACK's lease ran */
    assert_true(s->batches_asking >= 1);
    assert_true(s->started[7] > s->result_at[5]);
    assert_int_equal(s->result[7].exit_code, 0);
    fake_end(&f);
}

/* ---- the last lines of stderr ---- */

static json_t *
sh_lease(json_int_t id, const char *script)
{
    return lease(id, json_pack("[s, s, s]", "sh", "-c", script), json_array());
}

static char *
repeat(char c, size_t n)
{
    char *s = xmalloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void
test_stderr_tail(void **state)
{
    (void)state;
    struct fake f;
    fake_begin(&f);
    /* 1: 30 lines on each stream, a line too long, bytes that are not
     * UTF-8, a NUL, and a last line without its newline */
    json_t *l1 =
        sh_lease(1, "i=1; while [ $i -le 30 ]; do echo o$i; echo e$i >&2; i=$((i+1)); "
                    "done; printf '%0600d\\n' 0 >&2; printf 'bad \\377\\376 ok "
                    "\\303\\251\\n' >&2; printf 'a\\000b\\n' >&2; printf last >&2; exit 3");
    /* 2: 20 lines of 400 bytes: only the last 10 fit in 4 KiB */
    json_t *l2 = sh_lease(2, "i=1; while [ $i -le 20 ]; do printf '%0400d\\n' $i >&2; "
                             "i=$((i+1)); done");
    /* 3: nothing on stderr */
    json_t *l3 = sh_lease(3, "echo only stdout");
    /* 4: a character cut at 512 bytes */
    json_t *l4 = sh_lease(4, "printf '%0511d\\303\\251zzz\\n' 0 >&2; echo x");
    f.work = json_pack("{s:[o, o, o, o], s:[]}", "leases", l1, l2, l3, l4, "cancel");
    f.nwant = 4;
    for (int i = 0; i < 4; i++)
        f.want[i] = i + 1;
    fake_run(&f);
    struct seen *s = &f.seen;

    struct msg_result *r = &s->result[1];
    assert_int_equal(r->exit_code, 3);
    if (r->nstderr_tail != 20)
        fail_msg("%zu lines in the tail\nworker log:\n%s", r->nstderr_tail, f.wlog);
    for (int i = 0; i < 16; i++) {
        char want[8];
        snprintf(want, sizeof(want), "e%d", 15 + i);
        assert_string_equal(r->stderr_tail[i], want);
    }
    char *zeros = repeat('0', 512);
    assert_string_equal(r->stderr_tail[16], zeros);
    free(zeros);
    assert_string_equal(r->stderr_tail[17], "bad ?? ok \xc3\xa9");
    assert_string_equal(r->stderr_tail[18], "a?b");
    assert_string_equal(r->stderr_tail[19], "last");
    assert_null(r->stderr_tail[20]);
    /* the log itself still has both streams, whole */
    assert_non_null(strstr(s->log[1].buf, "o30\n"));
    assert_non_null(strstr(s->log[1].buf, "e30\n"));
    assert_non_null(strstr(s->log[1].buf, "e1\n"));

    r = &s->result[2];
    assert_int_equal(r->exit_code, 0);
    assert_int_equal(r->nstderr_tail, 10);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(strlen(r->stderr_tail[i]), 400);
        assert_int_equal(strtol(r->stderr_tail[i], NULL, 10), 11 + i);
    }

    assert_int_equal(s->result[3].exit_code, 0);
    assert_int_equal(s->result[3].nstderr_tail, 0);
    assert_null(s->result[3].stderr_tail);

    r = &s->result[4];
    assert_int_equal(r->nstderr_tail, 1);
    char *cut = repeat('0', 512);
    cut[511] = '?';
    assert_string_equal(r->stderr_tail[0], cut);
    free(cut);
    fake_end(&f);
}

/* tail.h on its own: chunks split anywhere, an empty line, a line cut. */
static void
test_tail_chunks(void **state)
{
    (void)state;
    struct tail *t = tail_new();
    char **v;
    size_t n;
    tail_take(t, &v, &n);
    assert_null(v);
    assert_int_equal(n, 0);
    const char *text = "one\n\ntw\xc3\xa9\nthree";
    for (const char *p = text; *p; p++)
        tail_feed(t, p, 1); /* a byte at a time: a character across chunks */
    tail_take(t, &v, &n);
    assert_int_equal(n, 4);
    assert_string_equal(v[0], "one");
    assert_string_equal(v[1], "");
    assert_string_equal(v[2], "tw\xc3\xa9");
    assert_string_equal(v[3], "three");
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
    /* taken: empty again; a trailing newline leaves no partial line */
    tail_feed(t, "x\n", 2);
    tail_take(t, &v, &n);
    assert_int_equal(n, 1);
    assert_string_equal(v[0], "x");
    free(v[0]);
    free(v);
    /* one line of 100,000 bytes fed in pieces: its first 512 bytes */
    char *big = repeat('y', 100000);
    big[0] = 'b';
    for (size_t off = 0; off < 100000; off += 777)
        tail_feed(t, big + off, 100000 - off < 777 ? 100000 - off : 777);
    tail_take(t, &v, &n);
    assert_int_equal(n, 1);
    assert_int_equal(strlen(v[0]), TAIL_LINE_MAX);
    assert_int_equal(v[0][0], 'b');
    free(v[0]);
    free(v);
    free(big);
    tail_free(t);
    tail_free(NULL);
}

/* ---- fan-in inputs ---- */

/* Store content as a blob; hex gets its digest. */
static void
put_blob(struct art_store *st, const char *dir, const char *content, char hex[ART_HEX_LEN + 1])
{
    char *tmp = xasprintf("%s/blob.tmp", dir);
    char err[256];
    tl_write_text(tmp, content);
    if (art_put_file(st, tmp, hex, NULL, NULL, err, sizeof(err)) != 0)
        fail_msg("art_put_file: %s", err);
    unlink(tmp);
    free(tmp);
}

/* A lease whose one input (or two, with raw) is the fan-in "models". */
static json_t *
fan_lease(json_int_t id, const char *manifest_hex, const char *raw_hex, const char *script)
{
    json_t *l = sh_lease(id, script);
    json_t *ins = json_object_get(l, "inputs");
    json_array_append_new(ins, json_pack("{s:s, s:s, s:s, s:s}", "name", "models", "sha256",
                                         manifest_hex, "uri", "file:///x", "manifest_file",
                                         "model.pkl"));
    if (raw_hex)
        json_array_append_new(ins, json_pack("{s:s, s:s, s:s}", "name", "raw", "sha256", raw_hex,
                                             "uri", "file:///y"));
    return l;
}

static void
test_fan_in(void **state)
{
    (void)state;
    struct fake f;
    fake_begin(&f);
    char *root = xasprintf("%s/store", f.dir);
    struct art_store *st;
    char err[256];
    assert_int_equal(art_open(&st, root, err, sizeof(err)), 0);
    f.artifacts = xstrdup(art_uri(st));

    /* 50 instances: most made model.pkl (every tenth the same bytes as
     * instance 0), some made another file or nothing, one failed */
    json_t *insts = json_array(), *want = json_array();
    char hex[ART_HEX_LEN + 1], first[ART_HEX_LEN + 1] = "";
    for (int i = 0; i < 50; i++) {
        json_t *item = json_pack("{s:s, s:i}", "shard", i % 2 ? "odd" : "even", "n", i);
        json_t *outs = json_object();
        const char *state_s = "success";
        if (i == 5) {
            state_s = "failed";
        } else if (i % 10 == 3) {
            /* nothing */
        } else if (i % 10 == 7) {
            put_blob(st, f.dir, "other", hex);
            json_object_set_new(
                outs, "other.txt",
                json_pack("{s:s, s:i, s:s}", "sha256", hex, "size", 5, "uri", "file:///z"));
        } else {
            char *content = i % 10 == 9 ? xstrdup("model-0\n") : xasprintf("model-%d\n", i);
            put_blob(st, f.dir, content, hex);
            if (i == 0)
                memcpy(first, hex, sizeof(hex));
            json_object_set_new(outs, "model.pkl",
                                json_pack("{s:s, s:I, s:s}", "sha256", hex, "size",
                                          (json_int_t)strlen(content), "uri", "file:///m"));
            json_array_append_new(
                want, json_pack("{s:i, s:O, s:s}", "index", i, "item", item, "sha256", hex));
            free(content);
        }
        json_t *inst = json_pack("{s:i, s:o, s:s}", "index", i, "item", item, "state", state_s);
        if (i != 5)
            json_object_set_new(inst, "outputs", outs);
        else
            json_decref(outs);
        json_array_append_new(insts, inst);
    }
    json_t *mj = json_pack("{s:s, s:o}", "task", "train", "instances", insts);
    char *mtext = json_dumps(mj, JSON_COMPACT);
    json_decref(mj);
    char man[ART_HEX_LEN + 1], raw[ART_HEX_LEN + 1];
    put_blob(st, f.dir, mtext, man);
    free(mtext);
    put_blob(st, f.dir, "a,b\n1,2\n", raw);

    /* the malformed and the missing, one lease each */
    char bad_json[ART_HEX_LEN + 1], no_index[ART_HEX_LEN + 1], twice[ART_HEX_LEN + 1];
    char no_blob[ART_HEX_LEN + 1], corrupt[ART_HEX_LEN + 1], not_list[ART_HEX_LEN + 1];
    char bad_sha[ART_HEX_LEN + 1], victim[ART_HEX_LEN + 1];
    put_blob(st, f.dir, "{\"task\": \"train\", \"instances\": [", bad_json);
    char *t = xasprintf("{\"instances\": [{\"index\": 0, \"outputs\": {\"model.pkl\": "
                        "{\"sha256\": \"%s\"}}}, {\"item\": 1, \"outputs\": {}}]}",
                        first);
    put_blob(st, f.dir, t, no_index);
    free(t);
    t = xasprintf("{\"instances\": [{\"index\": 1, \"outputs\": {\"model.pkl\": {\"sha256\": "
                  "\"%s\"}}}, {\"index\": 1, \"outputs\": {\"model.pkl\": {\"sha256\": \"%s\"}}}]}",
                  first, first);
    put_blob(st, f.dir, t, twice);
    free(t);
    const char *absent = "0000000000000000000000000000000000000000000000000000000000000001";
    t = xasprintf("{\"instances\": [{\"index\": 0, \"outputs\": {\"model.pkl\": {\"sha256\": "
                  "\"%s\"}}}]}",
                  absent);
    put_blob(st, f.dir, t, no_blob);
    free(t);
    put_blob(st, f.dir, "a model that will rot\n", victim);
    t = xasprintf("{\"instances\": [{\"index\": 4, \"outputs\": {\"model.pkl\": {\"sha256\": "
                  "\"%s\"}}}]}",
                  victim);
    put_blob(st, f.dir, t, corrupt);
    free(t);
    char *vpath = NULL;
    assert_int_equal(art_blob_path(st, victim, &vpath), 0);
    assert_int_equal(tl_sh("chmod u+w %s && echo rotten > %s", vpath, vpath), 0);
    free(vpath);
    put_blob(st, f.dir, "{\"task\": \"train\", \"instances\": {}}", not_list);
    put_blob(st, f.dir,
             "{\"instances\": [{\"index\": 0, \"outputs\": {\"model.pkl\": "
             "{\"sha256\": \"ABC\"}}}]}",
             bad_sha);

    char *seen = xasprintf("%s/seen", f.dir);
    char *script = xasprintf("cp -r \"$CAIRN_INPUTS\" %s && ls -A \"$CAIRN_INPUTS\"", seen);
    f.queue = json_pack("[o, o, o, o, o, o, o, o, o]", fan_lease(1, man, raw, script),
                        fan_lease(2, bad_json, NULL, "true"), fan_lease(3, no_index, NULL, "true"),
                        fan_lease(4, twice, NULL, "true"), fan_lease(5, no_blob, NULL, "true"),
                        fan_lease(6, corrupt, NULL, "true"), fan_lease(7, absent, NULL, "true"),
                        fan_lease(8, not_list, NULL, "true"), fan_lease(9, bad_sha, NULL, "true"));
    assert_non_null(f.queue);
    f.nwant = 9;
    for (int i = 0; i < 9; i++)
        f.want[i] = i + 1;
    fake_run(&f);
    struct seen *s = &f.seen;

    /* 1: every instance's file at models/<index>/model.pkl, the list, the
     * plain input beside it, nothing else (the manifest is not left) */
    if (s->result[1].exit_code != 0)
        fail_msg("lease 1: exit %d, %s\nworker log:\n%s", s->result[1].exit_code,
                 s->result[1].error, f.wlog);
    assert_string_equal(s->log[1].buf, "models\nraw\n");
    char *p = xasprintf("%s/models/manifest.json", seen);
    json_error_t je;
    json_t *got = json_load_file(p, JSON_REJECT_DUPLICATES, &je);
    free(p);
    if (!got)
        fail_msg("manifest.json: %s", je.text);
    assert_int_equal(json_array_size(want), 39);
    if (!json_equal(got, want)) {
        char *a = json_dumps(want, JSON_COMPACT), *b = json_dumps(got, JSON_COMPACT);
        fail_msg("manifest.json:\nwant %s\ngot  %s", a, b);
    }
    json_decref(got);
    for (int i = 0; i < 50; i++) {
        p = xasprintf("%s/models/%d/model.pkl", seen, i);
        char *text = tl_read_file(p, NULL);
        bool made = i != 5 && i % 10 != 3 && i % 10 != 7;
        if (made) {
            char *w = i % 10 == 9 ? xstrdup("model-0\n") : xasprintf("model-%d\n", i);
            if (!text || strcmp(text, w) != 0)
                fail_msg("instance %d: %s", i, text ? text : "(missing)");
            free(w);
        } else {
            assert_null(text);
            free(p);
            p = xasprintf("%s/models/%d", seen, i);
            assert_false(tl_exists(p)); /* no folder for an instance without the file */
        }
        free(text);
        free(p);
    }
    p = xasprintf("%s/raw", seen);
    char *text = tl_read_file(p, NULL);
    assert_string_equal(text, "a,b\n1,2\n");
    free(text);
    free(p);

    /* 2-9: refused before they start, the input named */
    static const char *const why[] = {
        NULL,
        NULL,
        "cannot start the task: input 'models': malformed manifest: ",
        "cannot start the task: input 'models': malformed manifest: instances[1].index must be "
        "a non-negative integer",
        "cannot start the task: input 'models': malformed manifest: index 1 appears twice",
        "cannot start the task: cannot fetch input 'models' (instance 0, model.pkl): artifact "
        "0000000000000000000000000000000000000000000000000000000000000001 is not in the store",
        "cannot start the task: cannot fetch input 'models' (instance 4, model.pkl): artifact ",
        "cannot start the task: cannot fetch input 'models' (its manifest): artifact "
        "0000000000000000000000000000000000000000000000000000000000000001 is not in the store",
        "cannot start the task: input 'models': malformed manifest: it must be an object with an "
        "array 'instances'",
        "cannot start the task: input 'models': malformed manifest: "
        "instances[0].outputs.model.pkl.sha256 must be 64 lower-case hex digits",
    };
    for (int id = 2; id <= 9; id++) {
        assert_int_equal(s->started[id], 0);
        assert_int_equal(s->result[id].exit_code, -1);
        if (strncmp(s->result[id].error, why[id], strlen(why[id])) != 0)
            fail_msg("lease %d: '%s', want '%s...'", id, s->result[id].error, why[id]);
    }
    assert_non_null(strstr(s->result[6].error, "is corrupt: its content hashes to"));
    assert_non_null(strstr(s->result[2].error, "instances[0]: '[' or '{' expected near end of "
                                               "file (at byte 32)"));
    json_decref(want);
    free(script);
    free(seen);
    art_close(st);
    free(root);
    fake_end(&f);
}

/* Peak resident memory of this process so far, in KiB. */
static long
max_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* A large fan-in through inputs.h on this thread: every instance's folder
 * and file, one manifest.json line each, and memory that does not grow
 * with the manifest (it is read an instance at a time: a jansson tree of
 * this one would take 1.8 KB an instance). The instances share 1,000
 * blobs, each linked N/1,000 times and hashed once. N is 20,000 here
 * (making 20,000 folders takes seconds on ext4);
 * CAIRN_TEST_FAN_IN=100000 runs the size the worker promises. */
static void
test_fan_in_large(void **state)
{
    struct tl_dir *d = *state;
    enum { BLOBS = 1000 };
    const char *env = getenv("CAIRN_TEST_FAN_IN");
    long N = env ? strtol(env, NULL, 10) : 20000;
    assert_true(N >= BLOBS && N <= 10000000);
    char *root = tl_dir_file(d, "store");
    struct art_store *st;
    char err[256];
    assert_int_equal(art_open(&st, root, err, sizeof(err)), 0);
    char(*hex)[ART_HEX_LEN + 1] = xcalloc(BLOBS, sizeof(*hex));
    for (int i = 0; i < BLOBS; i++) {
        char content[32];
        snprintf(content, sizeof(content), "blob %d\n", i);
        put_blob(st, d->path, content, hex[i]);
    }
    /* the manifest, written as text (as the scheduler would stream it) */
    char *mpath = tl_dir_file(d, "manifest.json");
    FILE *m = fopen(mpath, "w");
    assert_non_null(m);
    fputs("{\"task\": \"score\", \"instances\": [", m);
    for (long i = 0; i < N; i++)
        fprintf(m,
                "%s{\"index\": %ld, \"item\": \"s3://bucket/part-%06ld\", \"state\": "
                "\"success\", \"outputs\": {\"scores.parquet\": {\"sha256\": \"%s\", "
                "\"size\": 12, \"uri\": \"file:///x\"}}}",
                i ? ", " : "", i, i, hex[i % BLOBS]);
    fputs("]}", m);
    assert_int_equal(fclose(m), 0);
    char man[ART_HEX_LEN + 1];
    assert_int_equal(art_put_file(st, mpath, man, NULL, NULL, err, sizeof(err)), 0);

    struct msg_input in = {"scores", "file:///m", man, "scores.parquet"};
    char *dir = tl_dir_file(d, "inputs");
    struct inputs_spec spec = {st, dir, &in, 1, NULL, NULL, NULL};
    struct inputs_result res;
    long rss0 = max_rss_kb();
    inputs_fetch_now(&spec, &res);
    long grew = max_rss_kb() - rss0;
    if (res.error[0])
        fail_msg("%s", res.error);
#ifndef __SANITIZE_ADDRESS__ /* (AddressSanitizer keeps freed memory aside: it grows) */
    if (grew > 16 * 1024)
        fail_msg("a fan-in over %ld instances took %ld KiB more memory", N, grew);
#else
    (void)grew;
#endif
    assert_int_equal(res.n, 1);
    char *folder = tl_dir_file(d, "inputs/scores");
    assert_string_equal(res.paths[0], folder);
    /* 100,000 folders and the list */
    assert_int_equal(tl_sh("test $(ls %s | wc -l) -eq %ld", folder, N + 1), 0);
    char *last = tl_dir_file(d, "inputs/scores/%ld/scores.parquet", N - 1);
    char *text = tl_read_file(last, NULL);
    char want[32];
    snprintf(want, sizeof(want), "blob %ld\n", (N - 1) % BLOBS);
    assert_string_equal(text, want);
    free(text);
    char *list = tl_dir_file(d, "inputs/scores/manifest.json");
    json_error_t je;
    json_t *got = json_load_file(list, 0, &je);
    assert_non_null(got);
    assert_int_equal(json_array_size(got), (size_t)N);
    json_t *e = json_array_get(got, 12345);
    assert_int_equal(json_integer_value(json_object_get(e, "index")), 12345);
    assert_string_equal(json_string_value(json_object_get(e, "item")), "s3://bucket/part-012345");
    assert_string_equal(json_string_value(json_object_get(e, "sha256")), hex[12345 % BLOBS]);
    json_decref(got);
    inputs_result_clear(&res);
    free(list);
    free(last);
    free(folder);
    free(dir);
    free(mpath);
    free(hex);
    art_close(st);
    free(root);
}

/* A lease taken back, and the worker stopped, while inputs are fetched:
 * neither task starts, each RESULT says why. The inputs are blobs that
 * are FIFOs in the store, so fetching them blocks (in the digest check's
 * open) until this test opens them for writing. */
static void
test_fetch_cancelled_or_interrupted(void **state)
{
    (void)state;
    struct fake f;
    fake_begin(&f);
    char *root = xasprintf("%s/store", f.dir);
    struct art_store *st;
    char err[256];
    assert_int_equal(art_open(&st, root, err, sizeof(err)), 0);
    f.artifacts = xstrdup(art_uri(st));
    const char *hex[] = {"ab00000000000000000000000000000000000000000000000000000000000001",
                         "ab00000000000000000000000000000000000000000000000000000000000002"};
    char *fifo[2];
    for (int i = 0; i < 2; i++) {
        fifo[i] = xasprintf("%s/blobs/sha256/ab/%s", root, hex[i] + 2);
        assert_int_equal(tl_sh("mkdir -p %s/blobs/sha256/ab && mkfifo %s", root, fifo[i]), 0);
    }
    json_t *l1 = sh_lease(1, "echo ran"), *l2 = sh_lease(2, "echo ran");
    json_array_append_new(json_object_get(l1, "inputs"),
                          json_pack("{s:s, s:s, s:s}", "name", "in", "sha256", hex[0], "uri", "-"));
    json_array_append_new(json_object_get(l2, "inputs"),
                          json_pack("{s:s, s:s, s:s}", "name", "in", "sha256", hex[1], "uri", "-"));
    f.work = json_pack("{s:[o, o], s:[]}", "leases", l1, l2, "cancel");
    f.nwant = 2;
    f.want[0] = 1;
    f.want[1] = 2;
    start_worker(&f);

    /* both held while fetching: the POLLs list them (their heartbeat) */
    int64_t deadline = clock_mono_ms() + 20000;
    while (clock_mono_ms() < deadline && (f.seen.polls_holding < 2 || f.seen.last_held != 2))
        serve_one(&f, 50);
    assert_int_equal(f.seen.last_held, 2);
    f.next_work = json_pack("{s:[], s:[I]}", "leases", "cancel", (json_int_t)2);
    assert_true(serve_until_logged(&f, "while its inputs are fetched"));
    assert_int_equal(kill(f.pid, SIGTERM), 0);
    assert_true(serve_until_logged(&f, "CAIRN-SIGNAL"));
    for (int i = 0; i < 2; i++) {
        int fd = -1;
        for (int k = 0; k < 400 && fd < 0; k++) {
            fd = open(fifo[i], O_WRONLY | O_NONBLOCK);
            if (fd < 0)
                serve_one(&f, 10);
        }
        assert_true(fd >= 0);
        close(fd);
    }
    fake_stop(&f);
    struct seen *s = &f.seen;
    assert_int_equal(s->started[1], 0);
    assert_int_equal(s->started[2], 0);
    assert_int_equal(s->result[1].exit_code, -1);
    assert_true(s->result[1].interrupted);
    assert_string_equal(s->result[1].error, "the worker was stopped before the task started");
    assert_int_equal(s->result[2].exit_code, -1);
    assert_string_equal(s->result[2].error, "the lease was taken back before the task started");
    for (int i = 0; i < 2; i++)
        free(fifo[i]);
    art_close(st);
    free(root);
    fake_end(&f);
}

/* ---- host mounts ---- */

static json_t *
mount_lease(json_int_t id, const char *host, const char *path, bool ro, const char *script)
{
    json_t *l = sh_lease(id, script);
    json_object_set_new(l, "mounts",
                        json_pack("[{s:s, s:s, s:b}]", "host", host, "path", path, "readonly", ro));
    return l;
}

/* mounts.h on its own: the allow list, the checks and their messages. */
static void
test_mounts_check(void **state)
{
    struct tl_dir *d = *state;
    char *data = tl_dir_file(d, "data"), *models = tl_dir_file(d, "models");
    char *link = tl_dir_file(d, "data/up");
    assert_int_equal(tl_sh("mkdir -p %s/a/b %s && ln -s .. %s", data, models, link), 0);
    char *given = xasprintf("%s//", data); /* shown without the slashes */
    const char *dirs[] = {given, models};
    struct mounts_allow *a = NULL;
    struct mounts_bind *b = NULL;
    char err[512];
    assert_int_equal(mounts_allow_new(&a, dirs, 2, err, sizeof(err)), 0);

    char *sub = xasprintf("%s/a/b", data);
    struct msg_mount ok[] = {{sub, "/data//x/", true}, {models, "/models", false}};
    assert_int_equal(mounts_check(a, "w1", ok, 2, false, &b, err, sizeof(err)), 0);
    assert_string_equal(b[0].source, sub);
    assert_string_equal(b[0].dest, "/data/x");
    assert_true(b[0].readonly);
    assert_string_equal(b[1].dest, "/models");
    assert_false(b[1].readonly);
    mounts_binds_free(b, 2);

    struct msg_mount etc = {"/etc", "/etc", true};
    b = (struct mounts_bind *)&etc; /* untouched on failure */
    assert_int_equal(mounts_check(a, "w1", &etc, 1, false, &b, err, sizeof(err)), CAIRN_EINVAL);
    assert_ptr_equal(b, (struct mounts_bind *)&etc);
    char *want = xasprintf("host mount /etc is not allowed on worker w1 (allowed: %s, %s); start "
                           "the worker with --allow-mount",
                           data, models);
    assert_string_equal(err, want);
    free(want);
    /* a folder beside an allowed one with the same beginning */
    char *beside = xasprintf("%sx", data);
    struct msg_mount bm = {beside, "/x", true};
    assert_int_equal(mounts_check(a, "w1", &bm, 1, false, &b, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, "is not allowed on worker w1"));
    /* a link out of an allowed folder */
    char *out = xasprintf("%s/up", data);
    struct msg_mount lm = {out, "/up", true};
    assert_int_equal(mounts_check(a, "w1", &lm, 1, false, &b, err, sizeof(err)), CAIRN_EINVAL);
    want = xasprintf("host mount %s is not allowed on worker w1 (allowed: %s, %s); start the "
                     "worker with --allow-mount (%s resolves to %s)",
                     out, data, models, out, d->path);
    assert_string_equal(err, want);
    free(want);
    /* missing; one of Cairn's mount points; isolation none */
    char *missing = xasprintf("%s/nope", data);
    struct msg_mount mm = {missing, "/nope", true};
    assert_int_equal(mounts_check(a, "w1", &mm, 1, false, &b, err, sizeof(err)), CAIRN_EINVAL);
    want =
        xasprintf("host mount %s cannot be used on worker w1: No such file or directory", missing);
    assert_string_equal(err, want);
    free(want);
    struct msg_mount own = {sub, "/inputs/x", true};
    assert_int_equal(mounts_check(a, "w1", &own, 1, false, &b, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, "one of Cairn's own mount points"));
    assert_int_equal(mounts_check(a, "w1", ok, 1, true, &b, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, "with --isolation none there is no container"));
    struct msg_mount same = {sub, sub, true};
    assert_int_equal(mounts_check(a, "w1", &same, 1, true, &b, err, sizeof(err)), 0);
    mounts_binds_free(b, 1);
    /* nothing allowed */
    assert_int_equal(mounts_check(NULL, "w2", ok, 1, false, &b, err, sizeof(err)), CAIRN_EINVAL);
    want = xasprintf("host mount %s is not allowed on worker w2 (allowed: none); start the worker "
                     "with --allow-mount",
                     sub);
    assert_string_equal(err, want);
    free(want);
    assert_int_equal(mounts_check(NULL, "w2", NULL, 0, false, &b, err, sizeof(err)), 0);
    assert_null(b);
    mounts_allow_free(a);
    mounts_allow_free(NULL);

    /* the list itself: relative or missing folders are refused */
    const char *rel[] = {"data"};
    a = NULL;
    assert_int_equal(mounts_allow_new(&a, rel, 1, err, sizeof(err)), CAIRN_EINVAL);
    assert_null(a);
    const char *gone[] = {missing};
    assert_int_equal(mounts_allow_new(&a, gone, 1, err, sizeof(err)), CAIRN_ENOENT);
    assert_non_null(strstr(err, "No such file or directory"));
    free(missing);
    free(out);
    free(beside);
    free(sub);
    free(given);
    free(link);
    free(data);
    free(models);
}

/* The worker refuses a lease whose mount is not allowed at once (never
 * STARTED), and runs one that is. */
static void
test_mounts_refused(void **state)
{
    (void)state;
    struct fake f;
    fake_begin(&f);
    char *allowed = xasprintf("%s/allowed", f.dir);
    char *data = xasprintf("%s/data", allowed), *escape = xasprintf("%s/escape", allowed);
    assert_int_equal(
        tl_sh("mkdir -p %s && echo hello > %s/hello && ln -s /etc %s", data, data, escape), 0);
    f.extra[0] = "--allow-mount";
    f.extra[1] = allowed;
    char *cat = xasprintf("cat %s/hello", data);
    f.work = json_pack("{s:[o, o, o, o], s:[]}", "leases", mount_lease(1, data, data, true, cat),
                       mount_lease(2, "/etc", "/etc", true, "cat /etc/hostname"),
                       mount_lease(3, escape, escape, true, "true"),
                       mount_lease(4, data, "/data", true, "true"), "cancel");
    f.nwant = 4;
    for (int i = 0; i < 4; i++)
        f.want[i] = i + 1;
    fake_run(&f);
    struct seen *s = &f.seen;
    assert_int_equal(s->result[1].exit_code, 0);
    assert_string_equal(s->log[1].buf, "hello\n");
    char *want = xasprintf("host mount /etc is not allowed on worker tw (allowed: %s); start the "
                           "worker with --allow-mount",
                           allowed);
    assert_string_equal(s->result[2].error, want);
    free(want);
    want = xasprintf("host mount %s is not allowed on worker tw (allowed: %s); start the worker "
                     "with --allow-mount (%s resolves to /etc)",
                     escape, allowed, escape);
    assert_string_equal(s->result[3].error, want);
    free(want);
    assert_non_null(strstr(s->result[4].error, "with --isolation none there is no container"));
    for (int id = 2; id <= 4; id++) {
        assert_int_equal(s->started[id], 0);
        assert_int_equal(s->result[id].exit_code, -1);
    }
    free(cat);
    free(data);
    free(escape);
    free(allowed);
    fake_end(&f);
}

/* Real containers: an allowed host folder is seen read-only (or written
 * where the lease says so); a link out of the allowed folder is refused. */
static void
test_mounts_in_containers(void **state)
{
    (void)state;
    if (geteuid() != 0 || !tl_have_program("runc")) {
        fprintf(stderr, "test_worker: containers skipped: they need root and runc\n");
        skip();
    }
    struct fake f;
    fake_begin(&f);
    f.isolation = "runc";
    char *allowed = xasprintf("%s/allowed", f.dir);
    char *data = xasprintf("%s/data", allowed), *scratch = xasprintf("%s/scratch", allowed);
    char *escape = xasprintf("%s/escape", allowed);
    assert_int_equal(tl_sh("mkdir -p %s %s && echo hello > %s/hello && ln -s /etc %s", data,
                           scratch, data, escape),
                     0);
    f.extra[0] = "--allow-mount";
    f.extra[1] = allowed;
    json_t *l1 = mount_lease(1, data, "/data", true,
                             "cat /data/hello; if touch /data/x 2>/tmp/e; then echo writable; "
                             "else grep -q 'Read-only' /tmp/e && echo read-only; fi; "
                             "echo w > /scratch/out && echo scratch-ok");
    json_array_append_new(
        json_object_get(l1, "mounts"),
        json_pack("{s:s, s:s, s:b}", "host", scratch, "path", "/scratch", "readonly", 0));
    f.work = json_pack("{s:[o, o], s:[]}", "leases", l1,
                       mount_lease(2, escape, "/etc2", true, "true"), "cancel");
    f.nwant = 2;
    f.want[0] = 1;
    f.want[1] = 2;
    fake_run(&f);
    struct seen *s = &f.seen;
    if (s->result[1].exit_code != 0)
        fail_msg("exit %d: %s\nlog: %s\nworker log:\n%s", s->result[1].exit_code,
                 s->result[1].error, s->log[1].buf, f.wlog);
    assert_string_equal(s->log[1].buf, "hello\nread-only\nscratch-ok\n");
    char *p = xasprintf("%s/out", scratch);
    char *text = tl_read_file(p, NULL);
    assert_string_equal(text, "w\n");
    free(text);
    free(p);
    p = xasprintf("%s/x", data);
    assert_false(tl_exists(p));
    free(p);
    assert_int_equal(s->started[2], 0);
    assert_non_null(strstr(s->result[2].error, "resolves to /etc)"));
    /* the worker's log says what it mounted */
    assert_non_null(strstr(f.wlog, "CAIRN-TASK-MOUNT"));
    free(data);
    free(scratch);
    free(escape);
    free(allowed);
    fake_end(&f);
}

/* A temporary folder for a test, removed in the teardown (also after a
 * failed assertion). */
static int
dir_setup(void **state)
{
    struct tl_dir *d = xcalloc(1, sizeof(*d));
    if (tl_dir_make(d, "worker") != 0) {
        free(d);
        return -1;
    }
    *state = d;
    return 0;
}

static int
dir_teardown(void **state)
{
    struct tl_dir *d = *state;
    tl_dir_remove(d);
    free(d);
    return 0;
}

/* An argument picks the tests by name (a cmocka filter: "test_fan_in*"). */
int
main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_on_the_wire),
        cmocka_unit_test(test_worker_prefetch),
        cmocka_unit_test(test_stderr_tail),
        cmocka_unit_test(test_tail_chunks),
        cmocka_unit_test(test_fan_in),
        cmocka_unit_test_setup_teardown(test_fan_in_large, dir_setup, dir_teardown),
        cmocka_unit_test(test_fetch_cancelled_or_interrupted),
        cmocka_unit_test_setup_teardown(test_mounts_check, dir_setup, dir_teardown),
        cmocka_unit_test(test_mounts_refused),
        cmocka_unit_test(test_mounts_in_containers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
