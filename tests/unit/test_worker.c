/* test_worker.c - the real cairn-worker (--isolation none, and runc where
 * there is root and runc) against a fake scheduler in this process: an nng
 * rep socket that decodes every request with msg.h and answers it. It
 * checks what the worker says on the wire: HELLO, POLLs with the right
 * free slots and held leases, a malformed lease reported as failed by its
 * id while the others in the same WORK still start, a lease without a
 * valid id only freeing its slot, STARTED -> LOG -> RESULT in order, the
 * environment a task gets, output with NUL and invalid UTF-8 bytes, and a
 * clean exit on SIGTERM; the last lines of stderr in RESULT. */
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
    json_t *work;    /* the first WORK (taken); NULL = first_work() */
    char *artifacts; /* the store named in WELCOME, or NULL */
    int want[MAXL];  /* the leases whose RESULTs end the run; none = 1, 2 and 4 */
    int nwant;
    const char *isolation; /* NULL = none */
    const char *extra[8];  /* more arguments for the worker */
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
            30000, HEARTBEAT_MS, f->artifacts ? xstrdup(f->artifacts) : NULL, MSG_VERSION};
        return;
    case PROTO_POLL:
        if (!f->work_sent) {
            *raw = f->work ? f->work : first_work();
            f->work = NULL;
            f->work_sent = true;
            return;
        }
        if (fake_done(f) && req->u.poll.free == SLOTS && req->u.poll.nleases == 0)
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
                            "info"};
    size_t n = 15;
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

int
main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_on_the_wire),
        cmocka_unit_test(test_stderr_tail),
        cmocka_unit_test(test_tail_chunks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
