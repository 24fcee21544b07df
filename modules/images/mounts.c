/* SPDX-License-Identifier: Apache-2.0 */
/* containerd mount lists made real for the differ: flags parsed as mount(8) does, the rest as data. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "images.h"
#include "mountopts.h"

int
mounts_acquire(differ_t *d, const berth_mount_t *m, size_t n, int readonly, mounted_t *out,
               berth_error_t **err)
{
    if (n != 1)
        return d->api->error_make(err, BERTH_ENOTIMPL, "%zu mounts: the differ takes exactly one",
                                  n);
    unsigned long flags;
    char data[8192], why[1024];
    if (mountopts_parse(m, &flags, data, sizeof(data)) < 0)
        return d->api->error_make(err, BERTH_EINVAL, "mount options of %s are too long", m->source);
    out->point[0] = '\0';
    if (mountopts_is_bind(m, flags)) {
        /* the snapshot's own directory: use it in place, no mount needed */
        if ((flags & MS_RDONLY) && !readonly)
            return d->api->error_make(err, BERTH_EPRECONDITION, "mount %s is read-only", m->source);
        snprintf(out->root, sizeof(out->root), "%s", m->source);
        return 0;
    }
    snprintf(out->point, sizeof(out->point), "%s/mnt-XXXXXX", d->scratch);
    if (mkdtemp(out->point) == NULL)
        return d->api->error_make(err, BERTH_EIO, "mount point under %s: %s", d->scratch,
                                  strerror(errno));
    if (mountopts_mount(m, out->point, readonly ? MS_RDONLY : 0, why, sizeof(why)) < 0) {
        rmdir(out->point);
        out->point[0] = '\0';
        return d->api->error_make(err, BERTH_EINVAL, "%s", why);
    }
    snprintf(out->root, sizeof(out->root), "%s", out->point);
    return 0;
}

void
mounts_release(mounted_t *mt)
{
    if (mt->point[0] == '\0')
        return;
    if (umount2(mt->point, 0) < 0)
        umount2(mt->point, MNT_DETACH);
    rmdir(mt->point);
    mt->point[0] = '\0';
}
