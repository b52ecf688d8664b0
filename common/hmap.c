#include "hmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static uint64_t
hmap_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

void
hmap_init(struct hmap *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->n = 0;
}

void
hmap_free(struct hmap *m)
{
    free(m->slots);
    hmap_init(m);
}

static void
hmap_rehash(struct hmap *m, size_t ncap)
{
    struct hmap_slot *old = m->slots;
    size_t ocap = m->cap;
    m->slots = xcalloc(ncap, sizeof(*m->slots));
    m->cap = ncap;
    m->n = 0;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].key)
            hmap_put(m, old[i].key, old[i].val);
    free(old);
}

bool
hmap_put(struct hmap *m, const char *key, size_t val)
{
    if ((m->n + 1) * 4 >= m->cap * 3)
        hmap_rehash(m, m->cap ? m->cap * 2 : 16);
    size_t i = (size_t)hmap_hash(key) & (m->cap - 1);
    while (m->slots[i].key) {
        if (strcmp(m->slots[i].key, key) == 0) {
            m->slots[i].val = val;
            return false;
        }
        i = (i + 1) & (m->cap - 1);
    }
    m->slots[i].key = key;
    m->slots[i].val = val;
    m->n++;
    return true;
}

bool
hmap_get(const struct hmap *m, const char *key, size_t *val)
{
    if (!m->cap)
        return false;
    size_t i = (size_t)hmap_hash(key) & (m->cap - 1);
    while (m->slots[i].key) {
        if (strcmp(m->slots[i].key, key) == 0) {
            if (val)
                *val = m->slots[i].val;
            return true;
        }
        i = (i + 1) & (m->cap - 1);
    }
    return false;
}

bool
hmap_del(struct hmap *m, const char *key)
{
    if (!m->cap)
        return false;
    size_t mask = m->cap - 1, i = (size_t)hmap_hash(key) & mask;
    while (m->slots[i].key && strcmp(m->slots[i].key, key) != 0)
        i = (i + 1) & mask;
    if (!m->slots[i].key)
        return false;
    /* backward-shift deletion keeps probe chains intact */
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->slots[j].key)
            break;
        size_t home = (size_t)hmap_hash(m->slots[j].key) & mask;
        /* move j into the hole at i if its home is not in (i, j] */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].key = NULL;
    m->slots[i].val = 0;
    m->n--;
    return true;
}
