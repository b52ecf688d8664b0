/* publish.h - the models folder (prefix: publish_).
 *
 * A task that declares `publish: [model.pkl]` has those outputs copied, when
 * it succeeds, from the artifact store into the scheduler's models folder
 * (`--models`, default DATA/models), next to a record of the run that made
 * them. Workers never write there: containers stay read-only except their
 * own /outputs, and any number of workers on any machines can run the task.
 *
 *   MODELS/DAG/TASK/releases/RELEASE/model.pkl     a copy of the blob, 0444
 *   MODELS/DAG/TASK/releases/RELEASE/publish.json  the record, 0444
 *   MODELS/DAG/TASK/latest -> releases/RELEASE     relative symbolic link
 *
 * A release is built in a temporary folder beside the others (every file
 * copied with its digest checked, then fsynced), renamed into place, and
 * only then is `latest` switched, by renaming a new link over it: a reader
 * that opens latest/model.pkl and latest/publish.json through one resolved
 * path sees one whole release, never a mix or half a file. Older releases
 * stay; nothing removes them. The `production` and `staging` links beside
 * `latest` are registry.h's.
 *
 * `latest` is the release of the newest logical date (ties: the newest
 * attempt), whatever order runs finish in: a release of an older date (a
 * backfill, a retry of an old run) is built and kept but does not take
 * `latest` from a newer one. The order is read from each release's
 * publish.json ("logical_date", "attempt"); a record without a logical date
 * never holds latest back.
 *
 * Publishing the same RELEASE again (a result resent after a scheduler
 * restart) keeps the release already there and points `latest` at it.
 */
#ifndef CAIRN_PUBLISH_H
#define CAIRN_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>

struct art_store;

struct publish_file {
    const char *name;   /* file name in the release (a declared output) */
    const char *sha256; /* its blob in the artifact store */
};

/* Publish files and record (the JSON text of publish.json) as RELEASE of
 * DAG/TASK under models_dir (created if missing). release is made safe for
 * a file name (characters outside [A-Za-z0-9._:+-] become '_'). On success
 * *dir_out (may be NULL) is the release folder (malloc'd). Errors:
 * CAIRN_ENOENT (a blob is not in the store), CAIRN_EPROTO (a blob does not
 * match its digest), CAIRN_EFULL, CAIRN_EIO; err says which file and why;
 * nothing is left half written and `latest` is unchanged. */
int publish_release(struct art_store *art, const char *models_dir, const char *dag,
                    const char *task, const char *release, const struct publish_file *files,
                    size_t nfiles, const char *record, char **dir_out, char *err, size_t errlen);

/* publish_release in two steps, for a copy made on another thread: build
 * RELEASE (any thread; `latest` unchanged), then switch `latest` to it (the
 * scheduler's loop, once the task is known to have succeeded) if its order
 * allows; *switched (may be NULL) says whether it did. Same errors as
 * publish_release. */
int publish_build(struct art_store *art, const char *models_dir, const char *dag, const char *task,
                  const char *release, const struct publish_file *files, size_t nfiles,
                  const char *record, char **dir_out, char *err, size_t errlen);
int publish_switch(const char *models_dir, const char *dag, const char *task, const char *release,
                   bool *switched, char *err, size_t errlen);

#endif
