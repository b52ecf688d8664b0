#include "err.h"

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
