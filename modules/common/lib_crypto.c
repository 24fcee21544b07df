/* SPDX-License-Identifier: Apache-2.0 */
#include "lib_crypto.h"

LAZYLIB_DEFINE(libcrypto, LIBCRYPTO_SONAME, LIBCRYPTO_SYMBOLS, NULL)
