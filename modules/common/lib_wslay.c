/* SPDX-License-Identifier: Apache-2.0 */
#include "lib_wslay.h"

LAZYLIB_DEFINE(libwslay, LIBWSLAY_SONAME, LIBWSLAY_SYMBOLS, NULL)
