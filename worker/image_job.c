/* image_job.c - prepare an attempt's image off the loop; apply its config
 * (see image_job.h). */
#include "image_job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "imgref.h"
#include "util.h"

#define CACHE_SLOTS 16

struct imgjob_cache {
    struct {
        char *ref;
        struct image_info info; /* lock_fd -1: no claim on the image */
        uint64_t used;
    } e[CACHE_SLOTS];
    uint64_t clock;
};

struct imgjob {
    uv_work_t req;
    const struct image_opts *o;
    struct imgjob_cache *cache;
    char *ref;
    imgjob_done_cb *done_cb;
    void *ud;
    struct image_info info;
    struct sb log;
    uv_mutex_t mu;
    char error[1024];
};

static void
job_log_cb(void *ud, const char *line)
{
    struct imgjob *j = ud;
    uv_mutex_lock(&j->mu);
    sb_puts(&j->log, line);
    sb_putc(&j->log, '\n');
    uv_mutex_unlock(&j->mu);
}

static void
job_work(uv_work_t *req)
{
    struct imgjob *j = req->data;
    char err[512] = "";
    if (image_prepare(j->o, j->ref, job_log_cb, j, &j->info, err, sizeof(err)) != 0)
        snprintf(j->error, sizeof(j->error), "image %s: %s", j->ref, err[0] ? err : "failed");
}

static void
job_done(uv_work_t *req, int status)
{
    struct imgjob *j = req->data;
    if (status != 0 && !j->error[0])
        snprintf(j->error, sizeof(j->error), "image %s: the job was cancelled", j->ref);
    if (!j->error[0])
        imgjob_cache_put(j->cache, j->ref, &j->info);
    j->done_cb(j->ud, &j->info, j->log.buf ? j->log.buf : "", j->error);
    image_info_clear(&j->info);
    sb_free(&j->log);
    uv_mutex_destroy(&j->mu);
    free(j->ref);
    free(j);
}

void
imgjob_start(uv_loop_t *loop, const struct image_opts *o, struct imgjob_cache *cache,
             const char *ref, imgjob_done_cb *done_cb, void *ud)
{
    struct imgjob *j = xcalloc(1, sizeof(*j));
    j->o = o;
    j->cache = cache;
    j->ref = xstrdup(ref);
    j->done_cb = done_cb;
    j->ud = ud;
    j->req.data = j;
    sb_init(&j->log);
    uv_mutex_init(&j->mu);
    if (uv_queue_work(loop, &j->req, job_work, job_done) != 0) {
        job_work(&j->req);
        job_done(&j->req, 0);
    }
}

/* ---- the cache of pinned images ---- */

/* A registry reference with a digest: it names one image for good. */
static bool
pinned(const char *ref)
{
    struct imgref r;
    if (!ref || imgref_parse(ref, &r, NULL, 0) != 0)
        return false;
    bool yes = r.kind == IMGREF_REGISTRY && r.digest;
    imgref_clear(&r);
    return yes;
}

struct imgjob_cache *
imgjob_cache_new(void)
{
    return xcalloc(1, sizeof(struct imgjob_cache));
}

void
imgjob_cache_free(struct imgjob_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        free(c->e[i].ref);
        image_info_clear(&c->e[i].info);
    }
    free(c);
}

void
imgjob_cache_put(struct imgjob_cache *c, const char *ref, const struct image_info *info)
{
    if (!c || !info->rootfs || !pinned(ref))
        return;
    size_t k = 0;
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        if (c->e[i].ref && !strcmp(c->e[i].ref, ref)) {
            k = i;
            break;
        }
        if (c->e[i].used < c->e[k].used)
            k = i; /* empty (0) or least recently used */
    }
    free(c->e[k].ref);
    image_info_clear(&c->e[k].info);
    c->e[k].ref = xstrdup(ref);
    image_info_copy(info, &c->e[k].info);
    c->e[k].used = ++c->clock;
}

bool
imgjob_cached(struct imgjob_cache *c, const struct image_opts *o, const char *ref,
              struct image_info *out)
{
    for (size_t i = 0; c && ref && i < CACHE_SLOTS; i++) {
        if (!c->e[i].ref || strcmp(c->e[i].ref, ref) != 0)
            continue;
        if (image_reuse(o, &c->e[i].info, out) != 0)
            return false;
        c->e[i].used = ++c->clock;
        return true;
    }
    return false;
}

static size_t
strv_len(const char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

char **
imgjob_argv(const struct image_info *info, const char *const *argv)
{
    const char *const *ep = (const char *const *)info->entrypoint;
    const char *const *rest = strv_len(argv) ? argv : (const char *const *)info->cmd;
    size_t ne = strv_len(ep), nr = strv_len(rest);
    char **out = xcalloc(ne + nr + 1, sizeof(*out));
    for (size_t i = 0; i < ne; i++)
        out[i] = xstrdup(ep[i]);
    for (size_t i = 0; i < nr; i++)
        out[ne + i] = xstrdup(rest[i]);
    return out;
}

static int
env_has(char **env, const char *kv)
{
    size_t kl = strcspn(kv, "=");
    for (size_t i = 0; env && env[i]; i++)
        if (!strncmp(env[i], kv, kl) && env[i][kl] == '=')
            return 1;
    return 0;
}

char **
imgjob_env(const struct image_info *info, char **env)
{
    size_t ne = strv_len((const char *const *)env), ni = strv_len((const char *const *)info->env);
    char **out = xcalloc(ne + ni + 1, sizeof(*out));
    size_t n = 0;
    for (size_t i = 0; i < ni; i++)
        if (strchr(info->env[i], '=') && !env_has(env, info->env[i]))
            out[n++] = xstrdup(info->env[i]);
    for (size_t i = 0; i < ne; i++)
        out[n++] = env[i];
    free(env);
    return out;
}

void
imgjob_strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static int
all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* Field 2 (the id) and field 3 (the group, for passwd) of the line whose
 * first field is name, in the image's file. */
static int
lookup(const char *rootfs, const char *file, const char *name, uint32_t *id, uint32_t *gid)
{
    char *p = xasprintf("%s/etc/%s", rootfs, file);
    FILE *f = fopen(p, "r");
    free(p);
    if (!f)
        return -1;
    char line[1024];
    int rc = -1;
    size_t nl = strlen(name);
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, name, nl) != 0 || line[nl] != ':')
            continue;
        char *f2 = strchr(line + nl + 1, ':');
        if (!f2)
            break;
        *id = (uint32_t)strtoul(f2 + 1, NULL, 10);
        char *f3 = strchr(f2 + 1, ':');
        if (gid && f3)
            *gid = (uint32_t)strtoul(f3 + 1, NULL, 10);
        rc = 0;
        break;
    }
    fclose(f);
    return rc;
}

int
imgjob_user(const struct image_info *info, bool *has, uint32_t *uid, uint32_t *gid, char *err,
            size_t errlen)
{
    *has = false;
    if (!info->user)
        return 0;
    char *u = xstrdup(info->user);
    char *g = strchr(u, ':');
    if (g)
        *g++ = '\0';
    int rc = 0;
    uint32_t pgid = 0;
    if (all_digits(u)) {
        *uid = (uint32_t)strtoul(u, NULL, 10);
        /* the primary group of a numeric user: its passwd line if any */
        pgid = 0;
    } else if (lookup(info->rootfs, "passwd", u, uid, &pgid) != 0) {
        rc =
            errf(CAIRN_ENOENT, err, errlen, "image user '%s' is not in the image's /etc/passwd", u);
    }
    if (rc == 0) {
        if (!g)
            *gid = pgid;
        else if (all_digits(g))
            *gid = (uint32_t)strtoul(g, NULL, 10);
        else if (lookup(info->rootfs, "group", g, gid, NULL) != 0)
            rc = errf(CAIRN_ENOENT, err, errlen,
                      "image group '%s' is not in the image's /etc/group", g);
    }
    if (rc == 0)
        *has = true;
    free(u);
    return rc;
}
