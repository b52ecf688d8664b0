/* libFuzzer target: the DAG loader (YAML parse, merge keys, validation,
 * templates, `when`, cron) must never crash, leak or hang on any input, and
 * a DAG that loads must keep the promises of dag.h. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dag.h"
#include "diag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const own_mounts[] = {"/inputs", "/outputs", "/workspace", "/pipeline",
                                         "/tmp",    "/proc",    "/dev",       "/sys"};

/* What dag.h promises about a loaded task; abort() shows up as a crash. */
static void
check_task(const struct dag *d, size_t i)
{
    const struct dag_task *t = &d->tasks[i];
    if (t->ncommand < 1)
        abort();
    for (size_t j = 0; j < t->ninputs; j++) {
        const struct dag_input *in = &t->inputs[j];
        if (in->task_idx >= d->ntasks || in->task_idx == i ||
            strcmp(d->tasks[in->task_idx].name, in->task) != 0)
            abort();
    }
    for (size_t j = 0; j < t->nmounts; j++) {
        const struct dag_mount *m = &t->mounts[j];
        if (m->host[0] != '/' || m->path[0] != '/' || !strcmp(m->path, "/") ||
            strstr(m->path, "/../") || strstr(m->host, "//") || strstr(m->path, "//"))
            abort();
        for (size_t k = 0; k < sizeof(own_mounts) / sizeof(*own_mounts); k++) {
            size_t len = strlen(own_mounts[k]);
            if (!strncmp(m->path, own_mounts[k], len) && (!m->path[len] || m->path[len] == '/'))
                abort();
        }
        for (size_t k = 0; k < j; k++)
            if (!strcmp(t->mounts[k].path, m->path))
                abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct diag_list dl;
    struct dag *d = NULL;
    diag_list_init(&dl);
    int rc = dag_load_buffer(&d, (const char *)data, size, "fuzz.yaml", &dl);
    if ((rc == 0) != (dl.nerrors == 0))
        abort(); /* a DAG is returned exactly when there was no error */
    if (rc == 0) {
        /* a DAG that loads must render every task */
        struct dag_run_ctx rc2 = {1767225600, 1767312000, "fuzz", NULL, 0};
        for (size_t i = 0; i < d->ntasks; i++) {
            char **argv = NULL, **envp = NULL, err[256];
            check_task(d, i);
            if (dag_render_task(d, i, &rc2, &argv, &envp, err, sizeof(err)) == 0) {
                dag_strv_free(argv);
                dag_strv_free(envp);
            }
        }
        dag_free(d);
    }
    diag_list_free(&dl);
    return 0;
}
