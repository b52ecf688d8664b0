/* suggest.h - "did you mean" for a run id or task name that the scheduler
 * does not know (prefix: suggest_), as `cairn validate` has for keys and
 * tasks: after a 404, the commands that name a RUN (and a TASK) look up what
 * exists and print the closest, or what there is.
 *
 * For a single-threaded command-line program: hints go to stderr as
 * "  hint: ..." lines under the "cairn: MESSAGE" line they explain.
 * Pointers passed in are borrowed for the call.
 */
#ifndef CAIRN_SUGGEST_H
#define CAIRN_SUGGEST_H

#include <stddef.h>

/* The words of cands (n of them; NULL entries are skipped) that word may
 * have meant: those at the smallest edit distance (str_distance) from it,
 * if that is at most 2 and less than word's length; else the one candidate
 * that starts with word, if only one does. Sets out[0] .. out[k-1]
 * (borrowed from cands, in their order; at most max) and returns k, 0 if
 * none is close (out untouched). A word equal to a candidate returns it. */
size_t suggest_closest(const char *word, const char *const *cands, size_t n, const char **out,
                       size_t max);

/* After the scheduler answered 404 to a request about run_id (of DAG dag;
 * NULL: any DAG) or about its task (NULL: the request named no task): find
 * out, through the API on server, which of them does not exist and print
 * a hint: "  hint: did you mean 'X'?", else what exists ("run R has tasks
 * a, b, c", the latest runs of the DAG, the DAG that has a run with that
 * id). Prints nothing when both exist or the scheduler cannot tell. */
void suggest_after_404(const char *server, const char *run_id, const char *dag, const char *task);

#endif
