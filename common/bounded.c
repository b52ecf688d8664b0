#include "bounded.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "util.h"

struct bounded__job {
    void (*fn)(void *arg);
    void *arg;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool done;
    bool abandoned; /* the waiter gave up: the thread frees the job */
};

static void
bounded__job_free(struct bounded__job *j)
{
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cond);
    free(j);
}

static void *
bounded__main(void *p)
{
    struct bounded__job *j = p;
    j->fn(j->arg);
    pthread_mutex_lock(&j->mu);
    j->done = true;
    bool abandoned = j->abandoned;
    pthread_cond_signal(&j->cond);
    pthread_mutex_unlock(&j->mu);
    if (abandoned)
        bounded__job_free(j);
    return NULL;
}

bool
bounded_run(void (*fn)(void *arg), void *arg, int ms)
{
    struct bounded__job *j = xcalloc(1, sizeof(*j));
    pthread_t th;
    j->fn = fn;
    j->arg = arg;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cond, NULL);
    if (pthread_create(&th, NULL, bounded__main, j) != 0) {
        fn(arg); /* no thread to spare: run it here, unbounded */
        bounded__job_free(j);
        return true;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&j->mu);
    int rc = 0;
    while (!j->done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&j->cond, &j->mu, &ts);
    bool done = j->done;
    if (!done)
        j->abandoned = true;
    pthread_mutex_unlock(&j->mu);
    if (!done) {
        pthread_detach(th);
        return false;
    }
    pthread_join(th, NULL);
    bounded__job_free(j);
    return true;
}
