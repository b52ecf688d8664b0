/* ui.h - the scheduler's web UI (prefix: ui_).
 *
 * One self-contained HTML page (inline CSS and JavaScript, no external
 * resources) served at "/". It reads the JSON API of docs/api.md from the
 * browser and shows the DAGs with their load errors, recent runs, a run's
 * tasks, task logs (followed while the attempt runs) and the workers.
 */
#ifndef CAIRN_UI_H
#define CAIRN_UI_H

#include <stddef.h>

/* The page as UTF-8 text (Content-Type: text/html; charset=utf-8). Static
 * storage, NUL-terminated; *len (len may be NULL) is its length without the
 * NUL. */
const char *ui_index_html(size_t *len);

#endif
