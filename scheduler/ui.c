/* ui.c - the web UI page (see ui.h).
 *
 * Owns nothing at run time: the page is bytes compiled into the scheduler, so
 * it needs no files. Its sources are files in scheduler/ui/ (index.html
 * loads the others like any page, so the folder also opens in a browser):
 *   index.html  the page's markup; names the style sheet and the scripts
 *   app.css     the style sheet (light and dark colours)
 *   app.js      shared code: HTML building with escaping, API calls (with
 *               ETags), formats
 *   data.js     cached reads (a DAG's detail per version, runs incrementally)
 *   graph.js    the graph (dagre.min.js lays it out; big ones virtualised)
 *   grid.js     the runs x tasks grid (virtualised, keyboard)
 *   charts.js   metric line charts
 *   views.js    the views (DAGs, runs with metrics, workers, backfills)
 *   dag.js      the DAG page (graph, grid, source, params, metrics)
 *   task.js     the task instance panel;  run.js  the run page and Gantt
 *   actions.js  the action buttons and their dialogs
 *   models.js   the models view (releases per DAG and task)
 *   log.js      the log viewer
 *   main.js     routing, the refresh loop and start-up
 * At build time cmake/embed.cmake inlines them into one page (the CSS in a
 * <style>, the scripts in order in one <script>) and writes it as a C array
 * (ui__page) in the build folder (scheduler/ui_page.c); editing any file in
 * scheduler/ui/ rebuilds it.
 *
 * Views (location hash): docs/ui.md. Every view reloads every 2 s, each GET
 * with the ETag of its last answer (a 304 reuses it); a log that is not
 * complete is polled every second with offset=next_offset. Only the
 * endpoints of docs/api.md are used, with relative URLs (the page also works
 * behind a proxy under a path prefix).
 */
#include "ui.h"

/* Generated from scheduler/ui/ (cmake/embed.cmake): the page's bytes followed
 * by a NUL, and their number without the NUL. */
extern const unsigned char ui__page[];
extern const size_t ui__page_len;

const char *
ui_index_html(size_t *len)
{
    if (len)
        *len = ui__page_len;
    return (const char *)ui__page;
}
