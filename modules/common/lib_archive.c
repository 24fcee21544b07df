/* SPDX-License-Identifier: Apache-2.0 */
#include "lib_archive.h"

LAZYLIB_DEFINE(libarchive, LIBARCHIVE_SONAME, LIBARCHIVE_SYMBOLS, NULL)
