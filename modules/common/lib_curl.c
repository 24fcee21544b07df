/* SPDX-License-Identifier: Apache-2.0 */
#include "lib_curl.h"

static const char *
global_init(void)
{
    return libcurl.curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? NULL
                                                                     : "curl_global_init failed";
}

LAZYLIB_DEFINE(libcurl, LIBCURL_SONAME, LIBCURL_SYMBOLS, global_init)
