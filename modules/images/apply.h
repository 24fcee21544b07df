/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Applying one image layer (a tar stream, gzip/zstd/uncompressed) beneath a directory, safely.
 *
 * Every entry is resolved inside the root with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), so symlinks
 * in the layer or already in the root are followed but clamped inside it (containerd's fs.RootPath
 * semantics) and nothing outside the root can change; every metadata change is made on an opened fd or with
 * AT_SYMLINK_NOFOLLOW (CVE-2021-32760, containerd#12961). Entry names with ".." components, absolute names,
 * whiteouts of "." or "..", a symlink or hardlink entry named "." or "/", and hardlinks whose target leaves
 * the root are refused with InvalidArgument naming the entry. The decompressed stream is hashed as it is
 * read (the diffID) and drained to its end. Decompression is bounded by max_bytes and max_ratio.
 */
#ifndef BERTH_IMAGES_APPLY_H
#define BERTH_IMAGES_APPLY_H
#include <stddef.h>
#include <stdint.h>

#include <berth/content.h>
#include <berth/error.h>
#include <berth/module.h>

typedef struct layer_apply_opts {
    /* 0: whiteouts delete what they name (the root is a mounted, merged view: overlay records the
     * deletion itself). 1: the root is an overlay upperdir: a whiteout becomes a 0/0 character device and an
     * opaque marker the xattr trusted.overlay.opaque=y, as containerd's overlay apply writes them. */
    int overlay_whiteouts;
    int allow_devices;  /* block and character device entries (not whiteouts); refused when 0 */
    uint64_t max_bytes; /* the decompressed stream may not exceed this; 0: no bound */
    uint64_t
        max_ratio; /* decompressed bytes per compressed byte (after the first 1 MiB); 0: no bound */
} layer_apply_opts_t;

typedef struct layer_apply_result {
    char diff_id[BERTH_DIGEST_MAX]; /* "sha256:<hex>" of the decompressed tar stream */
    uint64_t size;                  /* decompressed bytes */
    uint64_t entries;
} layer_apply_result_t;

/* Reads the next compressed bytes into buf; *got 0 at the end. Returns 0 or a negative BERTH_E*. */
typedef int (*layer_read_fn)(void *user, void *buf, size_t len, size_t *got, berth_error_t **err);

/* Applies the layer read through `read` beneath root_fd (a directory fd). Returns 0 or a negative BERTH_E*
 * with *err naming the entry and what was wrong: InvalidArgument for a hostile or malformed archive
 * (including a truncated one), ResourceExhausted for a bomb, Internal/IO for filesystem failures. On error
 * the root may hold part of the layer: the caller discards it. */
int layer_apply(const berth_core_api_t *api, int root_fd, layer_read_fn read, void *user,
                const layer_apply_opts_t *opts, layer_apply_result_t *res, berth_error_t **err);

#endif /* BERTH_IMAGES_APPLY_H */
