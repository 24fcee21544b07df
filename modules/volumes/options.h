/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A volume's driver options (abi/berth/volume.h): type ("", tmpfs, bind), size (tmpfs), device (bind), o
 * (tmpfs: mode, uid, gid, nr_inodes), checked and turned into what create needs. No module API here: the
 * unit test drives it directly.
 */
#ifndef BERTH_VOLUMES_OPTIONS_H
#define BERTH_VOLUMES_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

typedef enum vol_type { VOL_DIR = 0, VOL_TMPFS = 1, VOL_BIND = 2 } vol_type_t;

typedef struct volopts {
    vol_type_t type;
    uint64_t size;        /* tmpfs: bytes, 0 = the kernel's default */
    const char *device;   /* bind: the host path as given (points into the caller's values) */
    char tmpfs_data[512]; /* tmpfs: mount(2) data, "size=...,mode=..." ("" when nothing) */
} volopts_t;

/* The parallel arrays keys[i] = values[i], n of them. 0, or -1 with errbuf naming the bad option. */
int volopts_parse(size_t n, const char *const *keys, const char *const *values, volopts_t *out,
                  char *errbuf, size_t errlen);

/* "1024", "64k", "10m", "1g" (K, M, G too: powers of 1024). 0, or -1 with errbuf saying why. */
int volsize_parse(const char *s, uint64_t *out, char *errbuf, size_t errlen);

#endif
