/* readyq.c - the ready heap and the task instance lists (readyq.h). */
#include "readyq.h"

#include <stdint.h>

#include "core.h"
#include "util.h"

void
rq_list_init(struct sched_ti *head)
{
    head->lnext = head->lprev = head;
}

void
rq_list_add(struct sched_ti *head, struct sched_ti *ti)
{
    ti->lnext = head;
    ti->lprev = head->lprev;
    head->lprev->lnext = ti;
    head->lprev = ti;
}

void
rq_list_del(struct sched_ti *ti)
{
    if (!ti->lnext)
        return;
    ti->lprev->lnext = ti->lnext;
    ti->lnext->lprev = ti->lprev;
    ti->lnext = ti->lprev = NULL;
}

/* Higher priority first, then older runs, then topological order. */
static bool
rq__before(const struct sched_ti *a, const struct sched_ti *b)
{
    const struct dag_task *ta = &a->run->dv->dag->tasks[a->idx];
    const struct dag_task *tb = &b->run->dv->dag->tasks[b->idx];
    if (ta->priority != tb->priority)
        return ta->priority > tb->priority;
    if (a->run->seq != b->run->seq)
        return a->run->seq < b->run->seq;
    if (a->idx != b->idx)
        return a->idx < b->idx;
    return a->map_index < b->map_index;
}

static void
rq__swap(struct sched *s, size_t i, size_t j)
{
    struct sched_ti *t = s->heap[i];
    s->heap[i] = s->heap[j];
    s->heap[j] = t;
    s->heap[i]->heap_idx = i;
    s->heap[j]->heap_idx = j;
}

static void
rq__up(struct sched *s, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!rq__before(s->heap[i], s->heap[p]))
            break;
        rq__swap(s, i, p);
        i = p;
    }
}

static void
rq__down(struct sched *s, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->nheap && rq__before(s->heap[l], s->heap[m]))
            m = l;
        if (r < s->nheap && rq__before(s->heap[r], s->heap[m]))
            m = r;
        if (m == i)
            break;
        rq__swap(s, i, m);
        i = m;
    }
}

void
rq_push(struct sched *s, struct sched_ti *ti)
{
    xgrow((void **)&s->heap, &s->capheap, s->nheap + 1, sizeof(*s->heap));
    s->heap[s->nheap] = ti;
    ti->heap_idx = s->nheap++;
    rq__up(s, ti->heap_idx);
}

void
rq_remove(struct sched *s, struct sched_ti *ti)
{
    size_t i = ti->heap_idx;
    if (i == SIZE_MAX)
        return;
    s->nheap--;
    if (i != s->nheap) {
        s->heap[i] = s->heap[s->nheap];
        s->heap[i]->heap_idx = i;
        rq__down(s, i);
        rq__up(s, i);
    }
    ti->heap_idx = SIZE_MAX;
}

struct sched_ti *
rq_pop(struct sched *s)
{
    if (!s->nheap)
        return NULL;
    struct sched_ti *ti = s->heap[0];
    rq_remove(s, ti);
    return ti;
}
