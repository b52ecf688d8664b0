/* cmd_standalone.c - `cairn standalone`: a scheduler and one worker in the
 * foreground, the way a laptop user starts.
 *
 * It owns the two child processes: it finds the daemons next to this binary
 * (else on PATH), starts both, and on SIGINT or SIGTERM stops the worker
 * first, so its last results reach the scheduler, then the scheduler; when
 * either exits the other is stopped. Exit codes: 0 both ended cleanly, 1 one
 * did not (or the DAG folder cannot be read), 2 a usage error.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "cliutil.h"
#include "fs.h"
#include "opt.h"
#include "util.h"

static volatile sig_atomic_t stop_signal;

static void
on_signal(int sig)
{
    stop_signal = sig;
}

/* The daemon next to this cairn binary (build tree or install), else PATH. */
static char *
find_daemon(const char *name, const char *subdir)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            char *cands[3] = {xasprintf("%s/../%s/%s", self, subdir, name),
                              xasprintf("%s/../sbin/%s", self, name),
                              xasprintf("%s/%s", self, name)};
            char *found = NULL;
            for (size_t i = 0; i < 3; i++) {
                if (!found && access(cands[i], X_OK) == 0)
                    found = cands[i];
                else
                    free(cands[i]);
            }
            if (found)
                return found;
        }
    }
    return xstrdup(name); /* execvp searches PATH */
}

static pid_t
spawn(char **argv)
{
    pid_t pid = fork();
    if (pid == 0) {
        execvp(argv[0], argv);
        fprintf(stderr, "cairn: standalone: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

struct standalone_args {
    const char *dags, *data, *http, *listen, *slots, *isolation;
};

static const struct opt standalone_opts[] = {
    OPT_STR("--dags", NULL, "DIR", struct standalone_args, dags,
            "the DAG folder the scheduler loads (default: dags)"),
    OPT_STR("--data", NULL, "DIR", struct standalone_args, data,
            "where both keep their state: DIR/scheduler and DIR/worker (default: .cairn)"),
    OPT_STR("--http", NULL, "HOST:PORT", struct standalone_args, http,
            "where the API and the web UI listen (default: 127.0.0.1:7780)"),
    OPT_STR("--isolation", NULL, "runc|none", struct standalone_args, isolation,
            "how the worker runs tasks: in runc containers, or as plain processes (default: "
            "runc)"),
    OPT_STR("--listen", NULL, "NNG_URL", struct standalone_args, listen,
            "where the scheduler listens for its worker (default: tcp://127.0.0.1:7781)"),
    OPT_STR("--slots", NULL, "N", struct standalone_args, slots,
            "how many tasks the worker runs at once (default: the number of CPUs)"),
};

static const struct opt_cmd standalone_cmd = {
    .name = "standalone",
    .max_args = 0,
    .about = "Run a scheduler and one worker in the foreground (defaults: --dags dags,\n"
             "--data .cairn, the API and UI on 127.0.0.1:7780). Ctrl-C stops both.",
    OPT_TABLE(standalone_opts),
};

static int
standalone_main(int argc, char **argv)
{
    struct standalone_args a = {
        .dags = "dags",
        .data = ".cairn",
        .http = "127.0.0.1:7780",
        .listen = "tcp://127.0.0.1:7781",
        .isolation = "runc",
    };
    int nargs, rc = opt_parse(&standalone_cmd, argc, argv, &a, &nargs);
    if (rc != OPT_GO)
        return rc;
    const char *dags = a.dags, *data = a.data, *http = a.http, *listen = a.listen, *slots = a.slots,
               *isolation = a.isolation;
    if (access(dags, R_OK) != 0) {
        fprintf(stderr, "cairn: standalone: cannot read the DAG folder '%s': %s\n", dags,
                strerror(errno));
        return 1;
    }
    char *sched_bin = find_daemon("cairn-scheduler", "scheduler");
    char *worker_bin = find_daemon("cairn-worker", "worker");
    char *sdata = xasprintf("%s/scheduler", data), *wdata = xasprintf("%s/worker", data);
    if (fs_mkdirs(data) != 0) {
        fprintf(stderr, "cairn: standalone: cannot create %s: %s\n", data, strerror(errno));
        return 1;
    }
    char *sargv[] = {sched_bin, "--dags", (char *)dags, "--data", sdata, "--listen",
                     (char *)listen, "--http", (char *)http, NULL};
    char *wargv[] = {worker_bin, "--scheduler", (char *)listen, "--data", wdata, "--name",
                     "standalone", "--isolation", (char *)isolation, slots ? "--slots" : NULL,
                     (char *)slots, NULL};
    cli_on_signal(SIGINT, on_signal);
    cli_on_signal(SIGTERM, on_signal);
    pid_t sp = spawn(sargv);
    pid_t wp = sp > 0 ? spawn(wargv) : -1;
    fprintf(stderr, "cairn: standalone: scheduler (pid %d) and worker (pid %d); API and UI on "
                    "http://%s/ ; Ctrl-C stops both\n",
            (int)sp, (int)wp, http);
    int alive = (sp > 0) + (wp > 0);
    rc = 0;
    while (alive > 0) {
        int st;
        pid_t p = waitpid(-1, &st, 0);
        if (p < 0 && errno == EINTR) {
            if (stop_signal) {
                /* the worker first, so its last results reach the scheduler */
                if (wp > 0)
                    kill(wp, SIGTERM);
                if (sp > 0 && wp <= 0)
                    kill(sp, SIGTERM);
                stop_signal = 0;
            }
            continue;
        }
        if (p < 0)
            break;
        alive--;
        if (p == wp) {
            wp = -1;
            if (sp > 0)
                kill(sp, SIGTERM);
        } else if (p == sp) {
            sp = -1;
            if (wp > 0)
                kill(wp, SIGTERM);
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            rc = 1;
    }
    free(sched_bin);
    free(worker_bin);
    free(sdata);
    free(wdata);
    return rc;
}

const struct cli_command cmd_standalone = {"standalone", standalone_main, &standalone_cmd, NULL};
