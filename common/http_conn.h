/* http_conn.h - the HTTP server's connection and server state, shared by
 * the two files of the http module and by nothing else: http.c (a
 * connection's reading, responses and closing) and http_listen.c (the
 * listener, accepting connections, limits per address, server settings).
 * Users of the server include http.h only. */
#ifndef CAIRN_HTTP_CONN_H
#define CAIRN_HTTP_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http.h"
#include "httpparse.h"

#define HTTP_READ_MIN ((size_t)16 * 1024)      /* free space offered to each read */
#define HTTP_PIPELINE_MAX ((size_t)64 * 1024)  /* buffered while the handler works */
#define HTTP_SHRINK_ABOVE ((size_t)256 * 1024) /* give memory back after big bodies */
#define HTTP_LINGER_MS 2000
#define HTTP_FILE_CHUNK ((size_t)1024 * 1024) /* read and written at a time */
#define HTTP_FILE_BUFS 4 /* chunks of a file body in use at once (read ahead) */
#define HTTP_WRITE_CHUNK ((size_t)256 * 1024) /* of an in-memory body, at a time */

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int port;
    http_handler_fn handler;
    void *ud;
    uint64_t idle_ms;
    uint64_t head_ms; /* the most a request head may take to arrive */
    size_t max_conns;
    size_t max_per_ip;       /* connections from one address; 0: no limit */
    int per_ip_loopback;     /* the limit applies to loopback addresses too */
    uint64_t stall_ms;       /* a response the client stops reading for that long ends */
    size_t out_budget;       /* response bytes held for all clients, then slow ones go */
    size_t out_bytes;        /* response bytes held now (in-memory bodies) */
    struct http_conn *conns; /* open connections (not closing) */
    size_t nconns;
    size_t nclosing; /* handles (listener, connections') being closed */
    int closing;
    void (*done)(void *ud);
    void *done_ud;
    http_observe_fn observe;
    void *observe_ud;
};

struct http_conn {
    struct http_server *srv; /* NULL once both handles are closed */
    struct http_conn *prev;
    struct http_conn *next;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;    /* the response */
    uv_write_t creq;    /* the interim "100 Continue" */
    uv_shutdown_t sreq; /* lingering close */
    int handles;        /* open handles: tcp, timer */

    /* Input: bytes not yet consumed by a request. */
    char *in;
    size_t in_len;
    size_t in_cap;

    /* The request being read or with the handler (its head, body and
     * strings are the parser's copies, not c->in). */
    struct httpp pp;

    /* Output: an in-memory response, written HTTP_WRITE_CHUNK at a time. */
    char *out;
    size_t out_len, out_off; /* its size, and how much was handed to the socket */
    size_t out_acct;         /* bytes of it counted in srv->out_bytes */
    uint64_t out_progress;   /* loop time a chunk of it was last written */
    char ip[64];             /* the peer's address */
    int deferred;            /* a whole request waits for response memory */
    char *extra_hdr; /* one more header line for the next response, or NULL */
    int etag_on;     /* the next 200 gets an ETag (http_conn_etag) */
    char *etag_inm;  /* the request's If-None-Match, or NULL */
    char *etag_hdr;  /* "ETag: ..." for the response being made, or NULL */
    int close_after; /* the response being written ends the connection */

    /* A file body being sent after the head (http_respond_file). */
    int file_active;  /* the fields below are in use */
    int file_reading; /* a read job is on the thread pool: do not free c */
    int file_fd;
    uint64_t file_off;              /* where the next chunk to read starts */
    uint64_t file_rleft;            /* bytes still to read */
    uint64_t file_len;              /* the body's length */
    uint64_t file_left;             /* bytes not yet handed to the socket */
    char *file_buf[HTTP_FILE_BUFS]; /* chunk k is read into and written from
                                       file_buf[k % HTTP_FILE_BUFS] */
    uint64_t file_rk;               /* chunks [0, file_rk) were handed to a read job */
    uint64_t file_rdone;            /* chunks [0, file_rdone) are read and checked */
    uint64_t file_wk;               /* chunks [0, file_wk) were handed to the socket */
    int file_wr;                    /* a write (the head, or chunk file_wk - 1) is in flight */
    /* the read job: filled on the loop, run on the thread pool */
    uv_work_t file_work;
    char *file_jbuf;
    size_t file_jn; /* bytes asked for */
    uint64_t file_joff;
    int file_jlast;    /* the chunk completes the body */
    ssize_t file_jgot; /* bytes read, or -errno */
    int file_jrefused; /* the check refused it */
    int (*file_check)(void *ud, const void *data, size_t n, int last);
    void (*file_done)(void *ud, int ok);
    void *file_ud;

    uint64_t head_deadline; /* loop time by which the request being read (head, then
                               body) must be in; 0: none */
    int timed_out;          /* it did not: answering 408 */

    const char *route; /* what served the request (http_conn_set_route), or NULL */
    int busy;      /* a request is with the handler */
    int writing;   /* a response is being written */
    int reading;   /* uv_read_start is in effect */
    int lingering; /* closing: discarding input after our last response */
    int peer_eof;  /* the client shut down its side */
    int closing;   /* handles closing or closed */
};

/* http.c's connection steps the listener uses */
void http__conn_close(struct http_conn *c);
const char *http__peer(struct http_conn *c, char *buf, size_t len);
void http__read_start(struct http_conn *c);
void http__server_maybe_done(struct http_server *s);
void http__timer_arm(struct http_conn *c, uint64_t ms);

#endif
