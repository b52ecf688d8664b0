/* api_blobs.h - artifact bytes for workers that cannot see the store
 * (prefix: api_blobs_); see docs/architecture.md, "Artifacts without a
 * shared folder", and docs/api.md, "Blob routes for workers".
 *
 * A worker that cannot reach the artifact store itself gets its inputs and
 * puts its outputs through these routes, over the scheduler's HTTP API:
 *
 *   GET  /api/v1/leases/{lease}/blobs/{sha}           an input's bytes (Range: bytes=N- resumes)
 *   GET  /api/v1/leases/{lease}/uploads/{sha}         {"offset": N} received so far, or
 *                                                     {"stored": true} if the store has it
 *   PUT  /api/v1/leases/{lease}/uploads/{sha}?offset=N  the next chunk (at most
 *                                                     HTTP_BODY_MAX bytes), appended at N
 *   POST /api/v1/leases/{lease}/uploads/{sha}/commit?size=N  check and store it:
 *                                                     {"sha256", "size", "uri"}
 *
 * Who may call them: the holder of a live lease, with the credential that
 * lease carried ("Authorization: Bearer <xfer_token>"; random, 256 bits,
 * made at lease time, kept in memory only, gone when the lease ends). No
 * credential, a wrong one, or one of a lease that ended: 401. A lease may
 * read only its own inputs (for a fan-in input, the manifest and the
 * instances' files it names): any other blob is 403. So the API tokens of
 * people (--api-tokens) play no part, and a worker reads nothing it was
 * not leased. These routes take no cookie or other ambient credential, so
 * the API's browser checks (Content-Type, Origin) do not apply to them.
 *
 * Memory and the loop: a download is a file body (http.h: read on libuv's
 * thread pool a chunk at a time, hashed as it goes out, cut short if the
 * stored blob does not match its name). An upload is received a chunk per
 * request: each chunk is written to DATA/uploads/<lease>-<sha>.part and
 * hashed on the thread pool; the commit compares the running digest and
 * size with the claimed ones (a mismatch is 422 digest_mismatch and the
 * upload is dropped) and stores the file with art_put_file (which hashes it
 * again), also on the thread pool. A chunk at an offset other than the
 * bytes received is 409 with the offset, so a client resumes where the
 * scheduler is. Uploads of a lease that ends are removed.
 */
#ifndef CAIRN_SCHED_API_BLOBS_H
#define CAIRN_SCHED_API_BLOBS_H

#include <jansson.h>

#include "api.h"
#include "model.h"

struct sched;

/* Give ti's new lease (its JSON, about to be sent) a fresh credential and
 * the set of blobs it may read (the sha256 of each of lease's inputs; for a
 * fan-in input also its instances' files). */
void api_blobs_grant(struct sched *s, struct sched_ti *ti, json_t *lease);

/* ti's lease ended: its credential stops working, its uploads are
 * dropped. */
void api_blobs_revoke(struct sched *s, struct sched_ti *ti);

/* At start: for a file store, the marker a worker checks to know it sees
 * the store itself (ROOT/.cairn-store-id, made once with a random id, read
 * afterwards), told to workers in WELCOME ("" for a store without local files). Also
 * clears DATA/uploads of what a previous run left. Returns 0 or CAIRN_EIO
 * (err says why). */
int api_blobs_init(struct sched *s, char *err, size_t errlen);

/* The API's port, told to workers in WELCOME (they reach the API at the
 * link's host unless given --api). */
void api_blobs_set_port(struct sched *s, int port);

void api_blobs_get(struct sched *s, struct http_conn *c, const struct http_req *req,
                   const struct route_params *p);
void api_blobs_upload_status(struct sched *s, struct http_conn *c, const struct http_req *req,
                             const struct route_params *p);
void api_blobs_upload_put(struct sched *s, struct http_conn *c, const struct http_req *req,
                          const struct route_params *p);
void api_blobs_commit(struct sched *s, struct http_conn *c, const struct http_req *req,
                      const struct route_params *p);

#endif
