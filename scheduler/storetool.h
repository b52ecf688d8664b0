/* storetool.h - the state store's own tools, run instead of the scheduler
 * (prefix: storetool_).
 *
 * `cairn-scheduler --data DIR --check` walks every record of the store in a
 * child process and decodes each as its table's records must be; a record
 * that does not decode is named, a page LMDB cannot read or one that
 * crashes the walk is reported as damage. `--backup DEST` writes a
 * consistent, compacted copy of the store (DIR/state/data.mdb) to
 * DEST/data.mdb (LMDB's mdb_env_copy2), also while a scheduler runs on DIR;
 * restoring it is copying it back to DIR/state/data.mdb. Neither makes a
 * store where there is none. Both print what they found to out and return
 * the process's exit code: 0 good, 1 damaged or failed, 2 the store cannot
 * be opened at all.
 *
 * Every start checks the store in a child before the scheduler serves
 * (main.c), how deeply depending on how the last scheduler on it stopped.
 * A damaged store is refused with a clear message instead of crashing the
 * scheduler on the first request that reads a bad page; a record that is
 * sound LMDB but does not decode is answered, where it is read, as an
 * error for that request (store.h).
 */
#ifndef CAIRN_SCHED_STORETOOL_H
#define CAIRN_SCHED_STORETOOL_H

#include <stdbool.h>
#include <stdio.h>

/* How deeply storetool_check looks. Every depth reads every page and
 * checks that each table's keys come in order. */
enum storetool_depth {
    STORETOOL_PAGES, /* a start after a clean stop: no record is decoded */
    STORETOOL_START, /* a start after an unclean one (killed, crashed): every
                        record a start reads is decoded; the task instances,
                        attempts and artifact pointers of finished runs are
                        read, not decoded, so the cost does not grow with the
                        finished history (docs/operations.md) */
    STORETOOL_FULL,  /* --check: every record decoded */
};
int storetool_check(const char *data_dir, enum storetool_depth depth, FILE *out);
int storetool_backup(const char *data_dir, const char *dest, FILE *out);

/* The scheduler's start and clean stop: a marker (DIR/state/running, with
 * the pid) exists while a scheduler runs on DIR. storetool_started returns
 * 1 if the marker of an earlier start was still there (it was killed or
 * crashed: the caller checks the store before using it), 0 if not, -1 if
 * the marker cannot be written (errno set). storetool_stopped removes it. */
int storetool_started(const char *data_dir);
void storetool_stopped(const char *data_dir);

#endif
