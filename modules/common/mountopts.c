/* SPDX-License-Identifier: Apache-2.0 */
/* See mountopts.h. */
#include "mountopts.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>

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

int
mountopts_parse(const berth_mount_t *m, unsigned long *flags, char *data, size_t len)
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

int
mountopts_is_bind(const berth_mount_t *m, unsigned long flags)
{
    return strcmp(m->type, "bind") == 0 || (flags & MS_BIND);
}

int
mountopts_mount(const berth_mount_t *m, const char *target, unsigned long extra, char *errbuf,
                size_t errlen)
{
    unsigned long flags;
    char data[8192];
    if (mountopts_parse(m, &flags, data, sizeof(data)) < 0) {
        snprintf(errbuf, errlen, "mount options of %s are too long", m->source);
        return -1;
    }
    int bind = mountopts_is_bind(m, flags);
    /* a read-only bind takes two steps: the bind, then a remount that applies the flags */
    unsigned long first = bind ? flags & ~(unsigned long)MS_RDONLY : flags | extra;
    if (mount(m->source, target, m->type, first, data) < 0 ||
        (bind && ((flags | extra) & MS_RDONLY) &&
         mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | flags, NULL) < 0)) {
        snprintf(errbuf, errlen, "mount %s (type %s, options %s) on %s: %s", m->source, m->type,
                 data, target, strerror(errno));
        return -1;
    }
    return 0;
}
