/* err.h - one table of Cairn error codes.
 *
 * Functions return 0 on success or a negative CAIRN_E* code. Foreign codes
 * (errno, MDB_*, nng, libuv) are translated at the edge of the module that
 * calls the foreign library. The human message, where there is one, goes into
 * a caller-supplied buffer or a struct diag_list.
 */
#ifndef CAIRN_ERR_H
#define CAIRN_ERR_H

#include <stdarg.h>
#include <stddef.h>

#define CAIRN_ERR_MAP(XX)                                                      \
    XX(NOMEM, "out of memory")                                                 \
    XX(INVAL, "invalid argument")                                              \
    XX(PARSE, "parse error")                                                   \
    XX(NOENT, "not found")                                                     \
    XX(EXIST, "already exists")                                                \
    XX(IO, "input/output error")                                               \
    XX(RANGE, "value out of range")                                            \
    XX(PROTO, "protocol error")                                                \
    XX(AUTH, "authentication failed")                                          \
    XX(STATE, "invalid state")                                                 \
    XX(FULL, "no space left")                                                  \
    XX(TIMEOUT, "timed out")                                                   \
    XX(STORE, "state store error")                                             \
    XX(NET, "network error")                                                   \
    XX(RUNTIME, "container runtime error")                                     \
    XX(VERSION, "unsupported version")

enum cairn_err {
    CAIRN_OK = 0,
#define XX(name, msg) CAIRN_E##name,
    CAIRN_ERR_FIRST_ = -1000,
    CAIRN_ERR_MAP(XX)
#undef XX
};

/* Static message for a code; never NULL. */
const char *cairn_strerror(int code);
/* Static symbolic name ("CAIRN_ENOENT"); never NULL. */
const char *cairn_err_name(int code);

/* The one errno -> code map: ENOENT/ENOTDIR -> CAIRN_ENOENT, EEXIST ->
 * CAIRN_EEXIST, ENOMEM -> CAIRN_ENOMEM, ENOSPC/EDQUOT -> CAIRN_EFULL,
 * EACCES/EPERM/EROFS -> CAIRN_EIO as every other errno (0 -> 0). Modules
 * with a foreign library (LMDB, nng, libuv) map its own codes first and
 * pass errno values here. */
int cairn_from_errno(int e);

/* Format into an optional error buffer: a no-op when err is NULL or errlen
 * is 0. Returns code, so `return errf(CAIRN_EINVAL, err, errlen, ...)`. */
int errf(int code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same with a va_list. */
int verrf(int code, char *err, size_t errlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

#endif
