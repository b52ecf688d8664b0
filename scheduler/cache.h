/* cache.h - keys of the step cache (prefix: cache_).
 *
 * A task with `cache: true` is looked up under a key before it is leased: the
 * SHA-256 of everything that decides what it computes (docs/dag-yaml.md,
 * "The step cache"):
 *
 *   - the DAG's and the task's name (a cache entry never crosses tasks);
 *   - the image's identity: "host", or the rootfs path with the device,
 *     inode and modification time of its root folder (what the worker names
 *     its rootfs skeleton after; a change below the top level of an image
 *     folder is not seen: publish a changed image under a new path);
 *   - the rendered argv and the rendered env of the DAG (not the CAIRN_*
 *     variables, which change with every run and attempt);
 *   - the declared outputs and the metrics file;
 *   - the `code:` folder's content: every file's relative path, exec bit,
 *     size and SHA-256, symbolic links' targets, folders' names (`.git`,
 *     `.hg`, `.svn`, `__pycache__` and `*.pyc` are left out);
 *   - each input's name and digest, in the declared order.
 *
 * Hashing a code folder reads every file once; the index remembers each
 * file's digest with its device, inode, size, mtime and ctime, so a later
 * key costs one lstat per file until a file changes. Everything here runs on
 * the scheduler's loop thread; an index is not thread-safe.
 */
#ifndef CAIRN_CACHE_H
#define CAIRN_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CACHE_HEX_LEN 64
/* A code folder with more entries than this is not hashed: tasks that
 * mount it are not cached (the key fails with CAIRN_ERANGE). */
#define CACHE_CODE_MAX_ENTRIES 50000

struct cache_index;

struct cache_input {
    const char *name;   /* mounted at /inputs/<name> */
    const char *sha256; /* the artifact's digest */
};

struct cache_spec {
    const char *dag;
    const char *task;
    const char *image;          /* "host", an absolute rootfs path, or a pulled image */
    char *const *argv;          /* rendered, NULL-terminated */
    char *const *envp;          /* rendered "K=V" of the DAG's env, NULL-terminated */
    char *const *outputs;       /* declared outputs (metrics file included) */
    size_t noutputs;
    const char *metrics;        /* or NULL */
    const char *code_dir;       /* host folder mounted at /pipeline, or NULL */
    const struct cache_input *inputs;
    size_t ninputs;
    const char *image_digest;   /* a pulled image: the run's digest for it, or NULL */
    const char *host_fingerprint; /* image host: the installed software's (imagepin.h), or NULL */
    char *const *entrypoint;    /* the task's `entrypoint:` when it has one, else NULL */
    bool has_entrypoint;
    const char *code_digest;    /* the run's code snapshot (codesnap.h): stands for code_dir's
                                   content, which is then not read; or NULL */
};

/* A new, empty index of file digests. Never fails (aborts on OOM). */
struct cache_index *cache_index_new(void);
/* NULL is a no-op. */
void cache_index_free(struct cache_index *ix);

/* The key of spec into hex (64 characters + NUL). Returns 0, or a negative
 * code with err set when the key cannot be computed (the task then runs and
 * is not stored): CAIRN_EIO (a code folder or file that cannot be read),
 * CAIRN_ERANGE (a code folder too big or too deep). */
int cache_key(struct cache_index *ix, const struct cache_spec *spec,
              char hex[CACHE_HEX_LEN + 1], char *err, size_t errlen);

/* The digest of a code folder alone, as it goes into a key (for tests and
 * tools). Same errors as cache_key. */
int cache_code_digest(struct cache_index *ix, const char *dir, char hex[CACHE_HEX_LEN + 1],
                      char *err, size_t errlen);

#endif
