/* mask.c - secret values masked out of output streams (mask.h). */
#include "mask.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

struct mask {
    char **forms; /* the values and their encodings, longest first, distinct */
    size_t *lens;
    size_t n;
    size_t maxlen;
    bool newline;    /* a form holds '\n': a match may span lines */
    bool first[256]; /* a form starts with this byte */
    struct sb carry; /* the held-back tail of what was fed */
    struct sb work;
};

static void
mask__add(struct mask *m, char *form, size_t len)
{
    if (!len) {
        free(form);
        return;
    }
    for (size_t i = 0; i < m->n; i++)
        if (m->lens[i] == len && !memcmp(m->forms[i], form, len)) {
            OPENSSL_cleanse(form, len);
            free(form);
            return;
        }
    m->forms = xrealloc(m->forms, (m->n + 1) * sizeof(*m->forms));
    m->lens = xrealloc(m->lens, (m->n + 1) * sizeof(*m->lens));
    /* longest first: a longer form containing a shorter one wins */
    size_t at = 0;
    while (at < m->n && m->lens[at] >= len)
        at++;
    memmove(m->forms + at + 1, m->forms + at, (m->n - at) * sizeof(*m->forms));
    memmove(m->lens + at + 1, m->lens + at, (m->n - at) * sizeof(*m->lens));
    m->forms[at] = form;
    m->lens[at] = len;
    m->n++;
    if (len > m->maxlen)
        m->maxlen = len;
    m->first[(unsigned char)form[0]] = true;
    if (memchr(form, '\n', len))
        m->newline = true;
}

static char *
mask__base64(const unsigned char *s, size_t n, bool pad, size_t *outlen)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = xmalloc(4 * ((n + 2) / 3) + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        o[k++] = tab[(v >> 18) & 63];
        o[k++] = tab[(v >> 12) & 63];
        if (i + 1 < n)
            o[k++] = tab[(v >> 6) & 63];
        else if (pad)
            o[k++] = '=';
        if (i + 2 < n)
            o[k++] = tab[v & 63];
        else if (pad)
            o[k++] = '=';
    }
    o[k] = '\0';
    *outlen = k;
    return o;
}

static char *
mask__urlencode(const unsigned char *s, size_t n, bool lower, bool plus, size_t *outlen)
{
    const char *hex = lower ? "0123456789abcdef" : "0123456789ABCDEF";
    char *o = xmalloc(3 * n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            o[k++] = (char)c;
        } else if (c == ' ' && plus) {
            o[k++] = '+';
        } else {
            o[k++] = '%';
            o[k++] = hex[c >> 4];
            o[k++] = hex[c & 15];
        }
    }
    o[k] = '\0';
    *outlen = k;
    return o;
}

void
mask_new(struct mask **out, const char *const *values, size_t n)
{
    struct mask *m = xcalloc(1, sizeof(*m));
    sb_init(&m->carry);
    sb_init(&m->work);
    for (size_t i = 0; i < n; i++) {
        const unsigned char *v = (const unsigned char *)values[i];
        size_t len = strlen(values[i]), fl;
        if (!len)
            continue;
        mask__add(m, xstrdup(values[i]), len);
        char *f = mask__base64(v, len, true, &fl);
        mask__add(m, f, fl);
        f = mask__base64(v, len, false, &fl);
        mask__add(m, f, fl);
        for (int lower = 0; lower < 2; lower++)
            for (int plus = 0; plus < 2; plus++) {
                f = mask__urlencode(v, len, lower, plus, &fl);
                mask__add(m, f, fl);
            }
    }
    *out = m;
}

int
mask_active(const struct mask *m)
{
    return m && m->n > 0;
}

static void
mask__wipe(struct sb *b)
{
    if (b->buf)
        OPENSSL_cleanse(b->buf, b->cap);
    sb_free(b);
}

void
mask_free(struct mask *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        OPENSSL_cleanse(m->forms[i], m->lens[i]);
        free(m->forms[i]);
    }
    free(m->forms);
    free(m->lens);
    mask__wipe(&m->carry);
    mask__wipe(&m->work);
    free(m);
}

/* Mask buf[0..len): every position below `decide` is settled (a form
 * starting there lies wholly in buf); the rest is held back. */
static void
mask__run(struct mask *m, const char *buf, size_t len, size_t decide, struct sb *out)
{
    size_t i = 0, run = 0;
    while (i < decide) {
        size_t hit = 0;
        if (m->first[(unsigned char)buf[i]])
            for (size_t k = 0; k < m->n; k++)
                if (i + m->lens[k] <= len && !memcmp(buf + i, m->forms[k], m->lens[k])) {
                    hit = m->lens[k];
                    break;
                }
        if (!hit) {
            i++;
            continue;
        }
        if (i > run)
            sb_append(out, buf + run, i - run);
        sb_append(out, MASK_REPLACEMENT, strlen(MASK_REPLACEMENT));
        i += hit;
        run = i;
    }
    if (i > run)
        sb_append(out, buf + run, i - run);
    /* what is left is held until more comes */
    size_t keep = len - i;
    struct sb *c = &m->carry;
    if (buf == c->buf) {
        memmove(c->buf, c->buf + i, keep);
        OPENSSL_cleanse(c->buf + keep, c->len - keep);
        c->len = keep;
    } else {
        if (c->len)
            OPENSSL_cleanse(c->buf, c->len);
        c->len = 0;
        sb_append(c, buf + i, keep);
    }
}

void
mask_feed(struct mask *m, const char *data, size_t len, struct sb *out)
{
    if (!m->n) {
        sb_append(out, data, len);
        return;
    }
    const char *buf = data;
    size_t blen = len;
    if (m->carry.len) {
        struct sb *w = &m->work;
        if (w->len)
            OPENSSL_cleanse(w->buf, w->len);
        w->len = 0;
        sb_append(w, m->carry.buf, m->carry.len);
        sb_append(w, data, len);
        buf = w->buf;
        blen = w->len;
    }
    size_t hold = m->maxlen - 1;
    size_t decide = blen > hold ? blen - hold : 0;
    if (!m->newline) {
        /* no match spans a newline: the lines before the last are settled */
        const char *nl = memrchr(buf, '\n', blen);
        if (nl && (size_t)(nl - buf) + 1 > decide)
            decide = (size_t)(nl - buf) + 1;
    }
    mask__run(m, buf, blen, decide, out);
}

void
mask_flush(struct mask *m, struct sb *out)
{
    if (!m->carry.len)
        return;
    mask__run(m, m->carry.buf, m->carry.len, m->carry.len, out);
}
