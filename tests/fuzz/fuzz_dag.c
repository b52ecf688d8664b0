/* libFuzzer target: the DAG loader (YAML parse, validation, templates,
 * `when`, cron) must never crash, leak or hang on any input. */
#include <stddef.h>
#include <stdint.h>

#include "dag.h"
#include "diag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct diag_list dl;
    struct dag *d = NULL;
    diag_list_init(&dl);
    if (dag_load_buffer(&d, (const char *)data, size, "fuzz.yaml", &dl) == 0) {
        /* a DAG that loads must render every task */
        struct dag_run_ctx rc = {1767225600, 1767312000, "fuzz", NULL, 0};
        for (size_t i = 0; i < d->ntasks; i++) {
            char **argv = NULL, **envp = NULL, err[256];
            if (dag_render_task(d, i, &rc, &argv, &envp, err, sizeof(err)) == 0) {
                dag_strv_free(argv);
                dag_strv_free(envp);
            }
        }
        dag_free(d);
    }
    diag_list_free(&dl);
    return 0;
}
