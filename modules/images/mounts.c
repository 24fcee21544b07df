/* SPDX-License-Identifier: Apache-2.0 */
/* containerd mount lists made real for the differ: flags parsed as mount(8) does, the rest as data. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "images.h"

typedef struct flag_word {
    const char *word;
    unsigned long set, clear;
} flag_word_t;

static const flag_word_t flag_words[] = {
    {"ro", MS_RDONLY, 0},
    {"rw", 0, MS_RDONLY},
    {"bind", MS_BIND, 0},
    {"rbind", MS_BIND | MS_REC, 0},
    {"nosuid", MS_NOSUID, 0},
    {"suid", 0, MS_NOSUID},
    {"nodev", MS_NODEV, 0},
    {"dev", 0, MS_NODEV},
    {"noexec", MS_NOEXEC, 0},
    {"exec", 0, MS_NOEXEC},
    {"noatime", MS_NOATIME, 0},
    {"relatime", MS_RELATIME, 0},
    {"strictatime", MS_STRICTATIME, 0},
    {"sync", MS_SYNCHRONOUS, 0},
    {"defaults", 0, 0},
};

/* Splits options into mount flags and the comma-joined data string; 0, or -1 when data overflows. */
static int
parse_options(const berth_mount_t *m, unsigned long *flags, char *data, size_t len)
{
    size_t used = 0;
    *flags = 0;
    data[0] = '\0';
    for (size_t i = 0; i < m->n_options; i++) {
        const flag_word_t *w = NULL;
        for (size_t j = 0; j < sizeof(flag_words) / sizeof(flag_words[0]); j++)
            if (strcmp(m->options[i], flag_words[j].word) == 0)
                w = &flag_words[j];
        if (w) {
            *flags = (*flags | w->set) & ~w->clear;
            continue;
        }
        int n = snprintf(data + used, len - used, "%s%s", used ? "," : "", m->options[i]);
        if (n < 0 || (size_t)n >= len - used)
            return -1;
        used += (size_t)n;
    }
    return 0;
}

static int
is_bind(const berth_mount_t *m, unsigned long flags)
{
    return strcmp(m->type, "bind") == 0 || (flags & MS_BIND);
}

int
mounts_acquire(differ_t *d, const berth_mount_t *m, size_t n, int readonly, mounted_t *out,
               berth_error_t **err)
{
    if (n != 1)
        return d->api->error_make(err, BERTH_ENOTIMPL, "%zu mounts: the differ takes exactly one",
                                  n);
    unsigned long flags;
    char data[8192];
    if (parse_options(m, &flags, data, sizeof(data)) < 0)
        return d->api->error_make(err, BERTH_EINVAL, "mount options of %s are too long", m->source);
    out->point[0] = '\0';
    if (is_bind(m, flags)) {
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
    if (mount(m->source, out->point, m->type, flags | (readonly ? MS_RDONLY : 0), data) < 0) {
        int e = errno;
        rmdir(out->point);
        out->point[0] = '\0';
        return d->api->error_make(err, BERTH_EINVAL, "mount %s (type %s, options %s): %s",
                                  m->source, m->type, data, strerror(e));
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
