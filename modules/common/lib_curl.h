/* SPDX-License-Identifier: Apache-2.0 */
/* libcurl, opened on first use (lazylib.h): registry pulls and pushes. Opening it maps OpenSSL, GnuTLS,
 * Kerberos, LDAP, SSH and more; the first load runs curl_global_init, never undone (lazylib.h). */
#ifndef BERTH_COMMON_LIB_CURL_H
#define BERTH_COMMON_LIB_CURL_H

/* curl's type-checking macros are function-like macros named like the functions: they would expand inside
 * libcurl.curl_easy_setopt(...) */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#include "lazylib.h"

#define LIBCURL_SYMBOLS(X)      \
    X(curl_easy_cleanup)        \
    X(curl_easy_escape)         \
    X(curl_easy_getinfo)        \
    X(curl_easy_init)           \
    X(curl_easy_perform)        \
    X(curl_easy_reset)          \
    X(curl_easy_setopt)         \
    X(curl_easy_strerror)       \
    X(curl_free)                \
    X(curl_getdate)             \
    X(curl_global_init)         \
    X(curl_multi_add_handle)    \
    X(curl_multi_cleanup)       \
    X(curl_multi_info_read)     \
    X(curl_multi_init)          \
    X(curl_multi_perform)       \
    X(curl_multi_poll)          \
    X(curl_multi_remove_handle) \
    X(curl_multi_setopt)        \
    X(curl_share_cleanup)       \
    X(curl_share_init)          \
    X(curl_share_setopt)        \
    X(curl_slist_append)        \
    X(curl_slist_free_all)

LAZYLIB_DECLARE(libcurl, LIBCURL_SYMBOLS)

#endif
