/* SPDX-License-Identifier: Apache-2.0 */
/* zlib, opened on first use (lazylib.h): gzip layers written (diff, import) and SPDY's header blocks (cri).
 * zlib's deflateInit/inflateInit are macros over the versioned functions, called here as such:
 *   libz.deflateInit2_(&z, level, method, bits, mem, strategy, ZLIB_VERSION, (int)sizeof(z_stream)) */
#ifndef BERTH_COMMON_LIB_Z_H
#define BERTH_COMMON_LIB_Z_H

#include <zlib.h>

#include "lazylib.h"

#define LIBZ_SYMBOLS(X)     \
    X(deflate)              \
    X(deflateEnd)           \
    X(deflateInit_)         \
    X(deflateInit2_)        \
    X(deflateSetDictionary) \
    X(inflate)              \
    X(inflateEnd)           \
    X(inflateInit_)         \
    X(inflateSetDictionary)

LAZYLIB_DECLARE(libz, LIBZ_SYMBOLS)

#endif
