/* hmap.h - string -> size_t hash map, open addressing (prefix: hmap_).
 * Keys are borrowed: they must outlive the map. */
#ifndef CAIRN_HMAP_H
#define CAIRN_HMAP_H

#include <stdbool.h>
#include <stddef.h>

struct hmap_slot {
    const char *key;
    size_t val;
};

struct hmap {
    struct hmap_slot *slots;
    size_t cap; /* power of two */
    size_t n;
};

void hmap_init(struct hmap *m);
void hmap_free(struct hmap *m);
/* Insert or replace. Returns true if the key was new. */
bool hmap_put(struct hmap *m, const char *key, size_t val);
/* Remove a key; returns true if it was there. */
bool hmap_del(struct hmap *m, const char *key);
/* Returns true and *val if present. */
bool hmap_get(const struct hmap *m, const char *key, size_t *val);

#endif
