/* SPDX-License-Identifier: Apache-2.0 */
/* containerd's mount lists made real: options split into mount(2) flags and data as mount(8) does. */
#ifndef BERTH_MODULES_MOUNTOPTS_H
#define BERTH_MODULES_MOUNTOPTS_H

#include <stddef.h>

#include <berth/snapshot.h>

/* Splits options into flags and the comma-joined data string; 0, or -1 when data would overflow. */
int mountopts_parse(const berth_mount_t *m, unsigned long *flags, char *data, size_t len);
/* 1 for a bind mount (type "bind" or a bind/rbind option). */
int mountopts_is_bind(const berth_mount_t *m, unsigned long flags);
/* Mounts m on target (extra flags or'ed in, e.g. MS_RDONLY); 0, or -1 with errbuf saying why. */
int mountopts_mount(const berth_mount_t *m, const char *target, unsigned long extra, char *errbuf,
                    size_t errlen);

#endif
