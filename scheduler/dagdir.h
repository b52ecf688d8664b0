/* dagdir.h - the DAG folder (prefix: dagdir_).
 *
 * Every *.yaml / *.yml file of --dags and of its folders (recursively, at
 * most 8 deep; names starting with '.' and folders reached through a
 * symbolic link are skipped) is loaded; a file that changed (mtime or size)
 * is loaded again. A file that fails keeps its DAG's last good
 * version and shows its errors; a removed file keeps the DAG's history. Each
 * version's source is stored, so a run always finds the version it started
 * with. Rescans happen on inotify events (coalesced) and every 2 s.
 */
#ifndef CAIRN_SCHED_DAGDIR_H
#define CAIRN_SCHED_DAGDIR_H

#include <uv.h>

struct sched;

void dagdir_rescan(struct sched *s);
/* The fs event callback (h->data is the struct sched): rescan soon. */
void dagdir_fsev_cb(uv_fs_event_t *h, const char *filename, int events, int status);

#endif
