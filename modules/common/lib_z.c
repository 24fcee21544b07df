/* SPDX-License-Identifier: Apache-2.0 */
#include "lib_z.h"

LAZYLIB_DEFINE(libz, LIBZ_SONAME, LIBZ_SYMBOLS, NULL)
