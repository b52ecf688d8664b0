#ifndef CAIRN_BOUNDED_H
#define CAIRN_BOUNDED_H

#include <stdbool.h>

/* Run fn(arg) on a thread of its own and wait at most ms for it. Returns
 * true if it finished in time. If not, the thread is left running (detached)
 * and the caller must neither wait for it nor free what fn uses: this is for
 * teardown steps of a process about to exit that a library can hang in
 * (nng 1.5's nng_close, nanomsg/nng#1543), so a stop never hangs. */
bool bounded_run(void (*fn)(void *arg), void *arg, int ms);

#endif
