/* SPDX-License-Identifier: Apache-2.0 */
/* libarchive, opened on first use (lazylib.h): layers read (apply, unpack, import) and written (diff, export).
 * Opening it maps libxml2, ICU and libstdc++ too. */
#ifndef BERTH_COMMON_LIB_ARCHIVE_H
#define BERTH_COMMON_LIB_ARCHIVE_H

#include <archive.h>
#include <archive_entry.h>

#include "lazylib.h"

#define LIBARCHIVE_SYMBOLS(X)                \
    X(archive_entry_atime)                   \
    X(archive_entry_atime_is_set)            \
    X(archive_entry_atime_nsec)              \
    X(archive_entry_clear)                   \
    X(archive_entry_copy_stat)               \
    X(archive_entry_filetype)                \
    X(archive_entry_free)                    \
    X(archive_entry_gid)                     \
    X(archive_entry_hardlink)                \
    X(archive_entry_mtime)                   \
    X(archive_entry_mtime_nsec)              \
    X(archive_entry_new)                     \
    X(archive_entry_pathname)                \
    X(archive_entry_perm)                    \
    X(archive_entry_rdevmajor)               \
    X(archive_entry_rdevminor)               \
    X(archive_entry_set_filetype)            \
    X(archive_entry_set_gname)               \
    X(archive_entry_set_hardlink)            \
    X(archive_entry_set_pathname)            \
    X(archive_entry_set_perm)                \
    X(archive_entry_set_size)                \
    X(archive_entry_set_symlink)             \
    X(archive_entry_set_uname)               \
    X(archive_entry_size)                    \
    X(archive_entry_symlink)                 \
    X(archive_entry_uid)                     \
    X(archive_entry_xattr_add_entry)         \
    X(archive_entry_xattr_next)              \
    X(archive_entry_xattr_reset)             \
    X(archive_error_string)                  \
    X(archive_read_data)                     \
    X(archive_read_free)                     \
    X(archive_read_new)                      \
    X(archive_read_next_header)              \
    X(archive_read_open)                     \
    X(archive_read_support_filter_all)       \
    X(archive_read_support_format_gnutar)    \
    X(archive_read_support_format_raw)       \
    X(archive_read_support_format_tar)       \
    X(archive_set_error)                     \
    X(archive_write_close)                   \
    X(archive_write_data)                    \
    X(archive_write_free)                    \
    X(archive_write_header)                  \
    X(archive_write_new)                     \
    X(archive_write_open)                    \
    X(archive_write_open2)                   \
    X(archive_write_set_bytes_in_last_block) \
    X(archive_write_set_bytes_per_block)     \
    X(archive_write_set_format_pax_restricted)

LAZYLIB_DECLARE(libarchive, LIBARCHIVE_SYMBOLS)

#endif
