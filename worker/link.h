/* link.h - the worker's connection to the scheduler (prefix: link_).
 *
 * One nng req socket, dialled to the scheduler (workers behind NAT work),
 * and two threads with their own contexts on it:
 *   - the poll thread registers (HELLO -> WELCOME), then sends POLL (free
 *     slots, the leases held here: the heartbeat that renews them) and waits
 *     for WORK (new leases, leases to cancel), which it hands to the loop
 *     through link_take_work and wake_cb;
 *   - the sender thread delivers STARTED, LOG and RESULT in order, several
 *     at a time in one BATCH, and retries each until the scheduler answers,
 *     so a scheduler restart loses no result or log line.
 * Every message goes through msg_pack/msg_unpack (common/msg.h).
 *
 * Threads: link_send, link_take_work, link_slot_free, link_set_held, link_set_queued,
 * link_drain, link_artifact_uri and link_shutdown may be called from any
 * thread (the loop's, in the worker); they take the link's lock briefly.
 * wake_cb runs on the poll thread. link_open, link_start and link_close
 * belong to the thread that runs the worker.
 */
#ifndef CAIRN_LINK_H
#define CAIRN_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "proto.h"

struct link;
struct ident;

/* Borrowed until link_close. */
struct link_config {
    const char *url;  /* the scheduler's nng URL */
    const char *name; /* the worker's name in every message */
    const char *host;
    int slots;
    int prefetch; /* leases taken beyond the slots, queued by the caller */
    const struct msg_kv *labels;
    size_t nlabels;
    const struct msg_gpu *gpus; /* announced in HELLO; borrowed for the link's life */
    size_t ngpus;
    const char *images_dir; /* its unpacked images are listed in every POLL (image_gc.h) */
    const struct proto_key *key; /* copied; NULL = no token */
    const struct ident *ident;   /* a tls+tcp:// link: the worker's certificate, or NULL */
    const char *server_name;     /* the name the scheduler's certificate must carry */
    int artifacts_direct;        /* --artifacts-direct: LINK_DIRECT_AUTO (reach the store
                                    itself if its marker is there), _YES, _NO */
    const char *api_url;         /* --api: the scheduler's HTTP API, or NULL (the link's host
                                    and the port WELCOME names) */
    void (*wake_cb)(void *ud);   /* leases or cancels arrived (poll thread) */
    void *ud;
};

#define LINK_DIRECT_AUTO 0
#define LINK_DIRECT_YES 1
#define LINK_DIRECT_NO 2

/* Open the socket and dial (nng reconnects by itself); no thread runs yet.
 * *out is set only on success. Returns 0, CAIRN_EINVAL (the URL cannot be
 * dialled) or CAIRN_EIO (socket), with the message in err. */
int link_open(struct link **out, const struct link_config *cfg, char *err, size_t errlen);
/* Start the poll and sender threads. 0 or CAIRN_EIO. */
int link_start(struct link *l);

/* Queue m for the sender (STARTED, LOG or RESULT); what m owns is taken
 * and m is zeroed. */
/* Bytes of LOG data queued for the scheduler and not yet answered: what
 * back-pressure on chatty tasks looks at (attempt.c). Any thread. */
size_t link_queued_log_bytes(struct link *l);
void link_send(struct link *l, struct msg *m);
/* Move what WORKs brought since the last call into *out (a PROTO_WORK
 * message: leases, refused leases, cancels), which the caller msg_clears;
 * out->type is 0 if nothing came. Each lease and refused lease holds a
 * slot until link_slot_free. */
void link_take_work(struct link *l, struct msg *out);
/* A slot is free again: its attempt ended, or its lease was never started. */
void link_slot_free(struct link *l);
/* The leases held here, listed in every POLL (copied): those of running
 * attempts, and those queued to start when a slot frees. */
void link_set_held(struct link *l, const int64_t *ids, size_t n);
void link_set_queued(struct link *l, const int64_t *ids, size_t n);
/* Shutting down: POLL offers no slot and never waits (heartbeats go on). */
void link_drain(struct link *l);
/* The artifact store the scheduler named in WELCOME (malloc'd), or NULL. */
char *link_artifact_uri(struct link *l);

/* Stop asking for work: the threads end once the sender has nothing left
 * (or cannot deliver it). */
/* Whether the worker reads and writes the scheduler's artifact store
 * itself (false: through the API), as decided after the last WELCOME: with
 * LINK_DIRECT_AUTO, when the store is a file store whose marker file
 * (ROOT/.cairn-store-id) holds the id WELCOME gave (or WELCOME gave none:
 * an older scheduler). Any thread. */
bool link_artifacts_direct(struct link *l);
/* The scheduler's HTTP API ("http://host:port"), malloc'd, or NULL if
 * unknown (no --api and WELCOME named no port). Any thread. */
char *link_api_url(struct link *l);
/* The scheduler's lease TTL (WELCOME), or 0 before the first. */
int64_t link_lease_ttl_ms(struct link *l);

void link_shutdown(struct link *l);
/* Wait up to flush_ms for the queue to empty, stop the threads, close the
 * socket (giving up on nng after 2 s: see close_within) and free l. NULL is
 * a no-op. */
void link_close(struct link *l, int flush_ms);

#endif
