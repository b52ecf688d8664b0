#include "err.h"

#include <errno.h>
#include <stdio.h>

const char *
cairn_strerror(int code)
{
    switch (code) {
    case CAIRN_OK:
        return "success";
#define XX(name, msg)                                                          \
    case CAIRN_E##name:                                                        \
        return msg;
        CAIRN_ERR_MAP(XX)
#undef XX
    default:
        return "unknown error";
    }
}

const char *
cairn_err_name(int code)
{
    switch (code) {
    case CAIRN_OK:
        return "CAIRN_OK";
#define XX(name, msg)                                                          \
    case CAIRN_E##name:                                                        \
        return "CAIRN_E" #name;
        CAIRN_ERR_MAP(XX)
#undef XX
    default:
        return "CAIRN_EUNKNOWN";
    }
}

int
cairn_from_errno(int e)
{
    switch (e) {
    case 0:
        return 0;
    case ENOENT:
    case ENOTDIR:
        return CAIRN_ENOENT;
    case EEXIST:
        return CAIRN_EEXIST;
    case ENOMEM:
        return CAIRN_ENOMEM;
    case ENOSPC:
    case EDQUOT:
        return CAIRN_EFULL;
    default:
        return CAIRN_EIO;
    }
}

int
verrf(int code, char *err, size_t errlen, const char *fmt, va_list ap)
{
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    return code;
}

int
errf(int code, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verrf(code, err, errlen, fmt, ap);
    va_end(ap);
    return code;
}
